"""The static room: floor, walls, a table, a shelf and the tidy-up containers.

All furniture is built from box primitives (cheap to render with TinyRenderer and easy
to texture). Dimensions in metres; the room spans ``[-size/2, size/2]`` in x and y with
the floor top at z = 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from katazuke.geometry import se2_to_matrix

__all__ = ["ContainerInfo", "Surface", "Room", "build_room", "CONTAINER_SPECS",
           "CATEGORY_TO_CONTAINER"]


@dataclass(frozen=True)
class ContainerInfo:
    """A tidy-up destination.

    Attributes:
        id: destination id, e.g. ``"bin_red"``.
        colour: colour name, e.g. ``"red"``.
        T_world_container: ``(4, 4)`` pose of the container's bottom centre (floor level).
        extent: ``(3,)`` outer size (m).
        categories: object categories that belong in this container.
    """

    id: str
    colour: str
    T_world_container: np.ndarray
    extent: np.ndarray
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Surface:
    """A horizontal support where objects can be placed.

    Attributes:
        name: ``"floor"``, ``"table"``, ``"shelf_0"``, ...
        z: height of the support top (m).
        xy_min, xy_max: ``(2,)`` placement rectangle in world x, y (m), already shrunk by a
            margin so objects do not overhang.
        body: body id of the support (for contact checks).
    """

    name: str
    z: float
    xy_min: np.ndarray
    xy_max: np.ndarray
    body: int


# id, colour name, rgba, (x, y), yaw, categories
CONTAINER_SPECS: tuple[tuple, ...] = (
    ("bin_red", "red", (0.85, 0.12, 0.1, 1), (-1.9, -1.9), 0.0, ("toy", "soft")),
    ("bin_blue", "blue", (0.1, 0.25, 0.9, 1), (-0.9, -1.95), 0.0, ("kitchenware", "bottle")),
    ("bin_green", "green", (0.1, 0.7, 0.2, 1), (1.95, -0.9), np.pi / 2, ("stationery",)),
    ("bin_yellow", "yellow", (0.95, 0.8, 0.1, 1), (1.95, 0.2), np.pi / 2, ("box",)),
)
CATEGORY_TO_CONTAINER: dict[str, str] = {c: spec[0] for spec in CONTAINER_SPECS for c in spec[5]}
CONTAINER_EXTENT = np.array([0.4, 0.32, 0.18])
WALL_THICKNESS = 0.05


@dataclass
class Room:
    """Body ids and geometry of the static room.

    Attributes:
        size: side length of the square room (m).
        floor, walls, table, shelf: body ids (``walls`` is a list of 4).
        containers: :class:`ContainerInfo` per container, in :data:`CONTAINER_SPECS` order.
        container_bodies: body id per container.
        surfaces: placement surfaces (floor, table, shelf levels).
        textured: ``(body, role)`` pairs that appearance randomizers may re-texture.
        floor_obstacles: ``(4, 2)`` corner arrays (world x, y) of floor areas taken by
            furniture legs, the shelf and the containers (with a margin).
    """

    size: float
    floor: int
    walls: list[int]
    table: int
    shelf: int
    containers: list[ContainerInfo]
    container_bodies: list[int]
    surfaces: list[Surface]
    textured: list[tuple[int, str]] = field(default_factory=list)
    floor_obstacles: list[np.ndarray] = field(default_factory=list)


def _box_body(client, half_extents, position, yaw=0.0, rgba=(0.8, 0.8, 0.8, 1)) -> int:
    import pybullet as p

    col = client.createCollisionShape(p.GEOM_BOX, halfExtents=list(half_extents))
    vis = client.createVisualShape(p.GEOM_BOX, halfExtents=list(half_extents), rgbaColor=rgba)
    return client.createMultiBody(0.0, col, vis, list(position),
                                  p.getQuaternionFromEuler([0, 0, yaw]))


def _quad_body(client, half_extents, position, normal_axis: int, sign: float,
               rgba=(0.8, 0.8, 0.8, 1), tiles: float = 1.0) -> int:
    """A static box collider whose only visual is its face pointing along ``sign * axis``.

    Rendering one inward-facing quad instead of a 12-triangle box keeps TinyRenderer's
    per-pixel cost low for the big room surfaces (floor, walls). ``tiles`` repeats the
    texture that many times per metre.
    """
    import pybullet as p

    he = np.asarray(half_extents, dtype=np.float64)
    a, b = [k for k in range(3) if k != normal_axis]
    corners = []
    for ca, cb in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        v = np.zeros(3)
        v[normal_axis] = sign * he[normal_axis]
        v[a], v[b] = ca * he[a], cb * he[b]
        corners.append(v)
    n = np.zeros(3)
    n[normal_axis] = sign
    # counter-clockwise seen from the side the normal points to
    e1, e2 = corners[1] - corners[0], corners[2] - corners[0]
    idx = [0, 1, 2, 0, 2, 3] if np.dot(np.cross(e1, e2), n) > 0 else [0, 2, 1, 0, 3, 2]
    uvs = [[(c[a] + he[a]) * tiles, (c[b] + he[b]) * tiles] for c in corners]
    col = client.createCollisionShape(p.GEOM_BOX, halfExtents=he.tolist())
    vis = client.createVisualShape(p.GEOM_MESH, vertices=[c.tolist() for c in corners],
                                   indices=idx, uvs=uvs, normals=[n.tolist()] * 4,
                                   rgbaColor=list(rgba))
    return client.createMultiBody(0.0, col, vis, list(position))


def _compound_body(client, boxes, position, yaw=0.0, rgba=(0.8, 0.8, 0.8, 1)) -> int:
    """A static body made of several boxes ``[(half_extents, centre_offset), ...]``."""
    import pybullet as p

    he = [list(b[0]) for b in boxes]
    off = [list(b[1]) for b in boxes]
    col = client.createCollisionShapeArray([p.GEOM_BOX] * len(boxes), halfExtents=he,
                                           collisionFramePositions=off)
    vis = client.createVisualShapeArray([p.GEOM_BOX] * len(boxes), halfExtents=he,
                                        visualFramePositions=off,
                                        rgbaColors=[list(rgba)] * len(boxes))
    return client.createMultiBody(0.0, col, vis, list(position),
                                  p.getQuaternionFromEuler([0, 0, yaw]))


def build_room(client, size: float = 5.0, wall_height: float = 2.2) -> Room:
    """Create the static room in ``client`` and describe it.

    Layout (top view, x right, y up): table in the +y half, shelf against the +y wall on
    the -x side, containers along the -y and +x walls; the robot starts near the centre.
    """
    h = size / 2
    t = WALL_THICKNESS
    floor = _quad_body(client, (h + t, h + t, 0.025), (0, 0, -0.025), 2, 1.0,
                       rgba=(0.75, 0.7, 0.6, 1), tiles=0.6)
    half = wall_height / 2
    walls = [
        _quad_body(client, (h + t, t / 2, half), (0, h + t / 2, half), 1, -1.0, tiles=0.5),
        _quad_body(client, (h + t, t / 2, half), (0, -h - t / 2, half), 1, 1.0, tiles=0.5),
        _quad_body(client, (t / 2, h, half), (h + t / 2, 0, half), 0, -1.0, tiles=0.5),
        _quad_body(client, (t / 2, h, half), (-h - t / 2, 0, half), 0, 1.0, tiles=0.5),
    ]
    # table: top 1.2 x 0.7 at 0.55 m plus four legs
    tx, ty, tz = 0.4, 1.3, 0.55
    top = ((0.6, 0.35, 0.02), (0, 0, tz - 0.02))
    legs = [((0.025, 0.025, (tz - 0.04) / 2), (sx * 0.55, sy * 0.3, (tz - 0.04) / 2))
            for sx in (-1, 1) for sy in (-1, 1)]
    table = _compound_body(client, [top] + legs, (tx, ty, 0.0), rgba=(0.6, 0.45, 0.3, 1))
    # shelf: 1.0 wide, 0.35 deep, boards at 0.02, 0.45, 0.9 m, side panels, back panel
    sx, sy = -1.5, h - 0.2
    boards = [((0.5, 0.17, 0.015), (0, 0, z)) for z in (0.3, 0.75, 1.2)]
    sides = [((0.015, 0.17, 0.65), (sxx, 0, 0.65)) for sxx in (-0.515, 0.515)]
    back = [((0.5, 0.01, 0.65), (0, 0.17, 0.65))]
    shelf = _compound_body(client, boards + sides + back, (sx, sy, 0.0), rgba=(0.55, 0.4, 0.3, 1))

    containers, cbodies = [], []
    ex, ey, ez = CONTAINER_EXTENT / 2
    wt = 0.01
    for cid, colour, rgba, (cx, cy), yaw, cats in CONTAINER_SPECS:
        parts = [((ex, ey, wt), (0, 0, wt)),
                 ((wt, ey, ez), (ex - wt, 0, ez)), ((wt, ey, ez), (-ex + wt, 0, ez)),
                 ((ex, wt, ez), (0, ey - wt, ez)), ((ex, wt, ez), (0, -ey + wt, ez))]
        body = _compound_body(client, parts, (cx, cy, 0.0), yaw=yaw, rgba=rgba)
        cbodies.append(body)
        containers.append(ContainerInfo(cid, colour, se2_to_matrix(cx, cy, yaw),
                                        CONTAINER_EXTENT.copy(), cats))
    m = 0.06
    surfaces = [
        Surface("floor", 0.0, np.array([-h + 0.25, -h + 0.25]), np.array([h - 0.25, h - 0.25]),
                floor),
        Surface("table", tz, np.array([tx - 0.6 + m, ty - 0.35 + m]),
                np.array([tx + 0.6 - m, ty + 0.35 - m]), table),
    ]
    for i, z in enumerate((0.315, 0.765)):
        surfaces.append(Surface(f"shelf_{i}", z, np.array([sx - 0.5 + m, sy - 0.17 + m]),
                                np.array([sx + 0.5 - m, sy + 0.17 - m]), shelf))
    textured = [(floor, "floor")] + [(w, "wall") for w in walls] + [(table, "furniture"),
                                                                    (shelf, "furniture")]
    def rect(cx, cy, hx, hy, yaw=0.0, margin=0.05):
        c, s_ = np.cos(yaw), np.sin(yaw)
        local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [hx + margin, hy + margin]
        return local @ np.array([[c, s_], [-s_, c]]) + [cx, cy]

    obstacles = [rect(tx + lx, ty + ly, 0.025, 0.025) for _, (lx, ly, _) in legs]
    obstacles.append(rect(sx, sy, 0.53, 0.18))
    obstacles += [rect(ci.T_world_container[0, 3], ci.T_world_container[1, 3],
                       ci.extent[0] / 2, ci.extent[1] / 2,
                       float(np.arctan2(ci.T_world_container[1, 0], ci.T_world_container[0, 0])))
                  for ci in containers]
    return Room(size, floor, walls, table, shelf, containers, cbodies, surfaces, textured,
                obstacles)
