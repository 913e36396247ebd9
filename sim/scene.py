"""The scene of :class:`~katazuke.sim.TidyEnv`: room geometry, spawning, scattering, placing.

:class:`Scene` owns everything in the room that is not the robot: the room bodies
(floor, walls, table, shelf, containers; :mod:`katazuke.sim.world`), textured
distractors (rugs and posters), the episode's objects (:mod:`katazuke.sim.objects`),
their placement without overlaps, the segmentation look-up table and the ground truth
(object poses, containers, room boxes).
"""
from __future__ import annotations

import numpy as np

from katazuke.errors import KatazukeError
from katazuke.geometry import matrix_to_quat, pose_to_matrix, quat_to_matrix, rotation_z
from katazuke.sim.objects import ObjectKind, SpawnedObject, spawn_object
from katazuke.sim.world import CATEGORY_TO_CONTAINER, ContainerInfo, Room, build_room

__all__ = ["Scene", "footprint", "polys_overlap"]


def footprint(xy, yaw: float, size) -> np.ndarray:
    """Corners ``(4, 2)`` of a ``size`` (2,) rectangle centred at ``xy`` rotated by ``yaw``."""
    c, s = np.cos(yaw), np.sin(yaw)
    hx, hy = 0.5 * np.asarray(size)
    local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    return local @ np.array([[c, s], [-s, c]]) + np.asarray(xy)


def polys_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test for two convex polygons ``(N, 2)``."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        for e in edges:
            n = np.array([-e[1], e[0]])
            pa, pb = a @ n, b @ n
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


class Scene:
    """Room, distractors and objects of one environment.

    Args:
        p: the ``pybullet`` module (constants and pure math helpers).
        client: the environment's ``BulletClient``.
        data_path: the ``pybullet_data`` directory (object meshes).
        config: the environment's :class:`~katazuke.sim.EnvConfig`.
        error: the exception class raised on bad use (the env's ``SimError``).
    """

    def __init__(self, p, client, data_path: str, config,
                 error: type[Exception] = KatazukeError):
        self._p, self._client, self._data_path, self._config = p, client, data_path, config
        self._error = error
        self.room: Room | None = None
        self.objects: list[SpawnedObject] = []
        self.distractors: list[int] = []
        self.parked: set[int] = set()      # objects with no free spot this episode
        self.seg_lut = np.full(1, -1, dtype=np.int32)
        self._visual_links: dict[int, list[int]] = {}
        self._nominal: dict[int, tuple] = {}
        self._shape_cache: dict = {}

    # ------------------------------------------------------------------- build
    def build_room(self) -> Room:
        """Clear the episode's bookkeeping and build the room bodies (after a physics reset)."""
        c = self._client
        self._shape_cache = {}
        self.parked = set()
        self._visual_links = {}
        self._nominal = {}
        self.room = build_room(c)
        for b in [self.room.floor, *self.room.walls, self.room.table, self.room.shelf,
                  *self.room.container_bodies]:
            c.changeDynamics(b, -1, lateralFriction=0.8, restitution=0.05)
        return self.room

    def spawn_distractors(self, rng: np.random.Generator, count_range: tuple[int, int]) -> None:
        """Rugs on the floor and posters on the walls: textured clutter that is not an object.

        Args:
            rng: scene randomness.
            count_range: inclusive ``(min, max)`` number of distractors.
        """
        p, c = self._p, self._client
        self.distractors = []
        lo, hi = count_range
        h = self.room.size / 2
        for _ in range(int(rng.integers(lo, hi + 1))):
            if rng.random() < 0.5:
                he = [rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.6), 0.002]
                pos = [rng.uniform(-h + 1, h - 1), rng.uniform(-h + 1, h - 1), 0.002]
                yaw = rng.uniform(0, np.pi)
            else:
                wall = int(rng.integers(4))
                he = [rng.uniform(0.2, 0.5), 0.004, rng.uniform(0.2, 0.4)]
                along, z = rng.uniform(-h + 0.6, h - 0.6), rng.uniform(1.0, 1.7)
                pos, yaw = [[along, h - 0.006, z], [along, -h + 0.006, z],
                            [h - 0.006, along, z], [-h + 0.006, along, z]][wall], \
                    [0, 0, np.pi / 2, np.pi / 2][wall]
            vis = c.createVisualShape(p.GEOM_BOX, halfExtents=he)
            body = c.createMultiBody(0, -1, vis, pos, p.getQuaternionFromEuler([0, 0, yaw]))
            self.distractors.append(body)
            self.register_visual(body, None)

    def spawn(self, kind: ObjectKind, scale: float) -> SpawnedObject:
        """Add one object of ``kind`` (scaled by ``scale``), parked below the room."""
        # spawn far below the room, unrotated (so the bbox is measured tight), then place
        obj = spawn_object(self._client, kind, (0, 0, -5 - 0.5 * len(self.objects)),
                           (0, 0, 0, 1), scale, self._data_path, self._shape_cache)
        self.objects.append(obj)
        self.register_visual(obj.uid, kind.colour)
        return obj

    def register_visual(self, body: int, colour) -> None:
        """Record ``body``'s visual links and nominal colour; paint it ``colour`` (RGBA)."""
        shapes = self._client.getVisualShapeData(body)
        self._visual_links[body] = sorted({s[1] for s in shapes})
        self._nominal[body] = tuple(colour) if colour is not None else tuple(shapes[0][7])
        if colour is not None:
            for link in self._visual_links[body]:
                self._client.changeVisualShape(body, link, rgbaColor=list(colour))

    def rebuild_seg_lut(self) -> None:
        """Refresh :attr:`seg_lut` (index ``uid + 1`` -> object uid or -1) after spawning."""
        # the padding keeps the last entry -1
        lut = np.full(self._client.getNumBodies() + 64, -1, dtype=np.int32)
        for o in self.objects:
            lut[o.uid + 1] = o.uid
        self.seg_lut = lut

    # --------------------------------------------------------------- placement
    def scatter(self, rng: np.random.Generator, robot_xy, settle: bool = True) -> None:
        """Place every object on the floor, table or shelf without overlaps, then settle.

        Candidate footprints are checked against each other (oriented rectangles, with a
        1 cm gap), the robot's clearance circle and the containers before any body moves.

        Args:
            rng: placement randomness.
            robot_xy: ``(x, y)`` of the robot base (m); no floor object within
                ``config.robot_clearance`` of it.
            settle: run ``config.settle_steps`` physics steps afterwards.
        """
        c, cfg = self._client, self._config
        surfaces = self.room.surfaces
        weights = np.array([0.5, 0.3, 0.1, 0.1])[:len(surfaces)]
        weights = weights / weights.sum()
        placed: dict[str, list[np.ndarray]] = {s.name: [] for s in surfaces}
        boxes: dict[str, list[np.ndarray]] = {s.name: [] for s in surfaces}
        blocked = self.room.floor_obstacles
        blocked_boxes = [np.concatenate([b.min(axis=0), b.max(axis=0)]) for b in blocked]
        rx, ry = robot_xy

        def hits(poly, box, polys, pboxes) -> bool:
            # axis-aligned boxes first (cheap), the separating-axis test only on overlap
            for q, qb in zip(polys, pboxes):
                if box[0] < qb[2] and qb[0] < box[2] and box[1] < qb[3] and qb[1] < box[3] \
                        and polys_overlap(poly, q):
                    return True
            return False

        for obj in self.objects:
            for attempt in range(40):
                s = surfaces[int(rng.choice(len(surfaces), p=weights))]
                xy = rng.uniform(s.xy_min, s.xy_max)
                yaw = float(rng.uniform(-np.pi, np.pi))
                poly = footprint(xy, yaw, obj.rest_extent[:2] + 0.01)
                box = np.concatenate([poly.min(axis=0), poly.max(axis=0)])
                if s.name == "floor":
                    if np.hypot(xy[0] - rx, xy[1] - ry) < cfg.robot_clearance + 0.5 * max(
                            obj.rest_extent[:2]):
                        continue
                    if hits(poly, box, blocked, blocked_boxes):
                        continue
                if hits(poly, box, placed[s.name], boxes[s.name]):
                    continue
                placed[s.name].append(poly)
                boxes[s.name].append(box)
                if obj.uid in self.parked:
                    self.parked.discard(obj.uid)
                    c.changeDynamics(obj.uid, -1, mass=obj.kind.mass)
                self.set_object_pose(obj, xy[0], xy[1],
                                     s.z + 0.5 * obj.rest_extent[2] + 0.002, yaw)
                break
            else:  # no free spot: park it out of sight below the floor, frozen
                self.set_object_pose(obj, 0.0, 0.0, -3.0 - obj.uid * 0.3, 0.0)
                c.changeDynamics(obj.uid, -1, mass=0)
                self.parked.add(obj.uid)
        if settle:
            for _ in range(cfg.settle_steps):
                c.stepSimulation()

    def set_object_pose(self, obj: SpawnedObject, x: float, y: float, z: float,
                        yaw: float) -> None:
        """Put the bbox centre of ``obj`` at ``(x, y, z)`` in its resting orientation turned
        by ``yaw`` about world z; zero its velocity."""
        R = rotation_z(yaw) @ obj.rest_R
        com = np.array([x, y, z]) - R @ obj.centre_offset
        self._client.resetBasePositionAndOrientation(obj.uid, com.tolist(),
                                                     matrix_to_quat(R).tolist())
        self._client.resetBaseVelocity(obj.uid, [0, 0, 0], [0, 0, 0])

    def place_object(self, uid: int, x: float, y: float, yaw: float, support_z: float,
                     settle_steps: int = 24) -> None:
        """Put object ``uid`` upright at ``(x, y)`` with ``yaw``, resting on height
        ``support_z`` (m), and let it settle (evaluation set-ups)."""
        obj = self.object(uid, "place_object")
        self.set_object_pose(obj, x, y, support_z + 0.5 * obj.rest_extent[2] + 0.002, yaw)
        for _ in range(settle_steps):
            self._client.stepSimulation()

    def set_floor_friction(self, mu: float) -> None:
        """Floor friction coefficient of the floor body (object sliding)."""
        if self.room is not None:
            self._client.changeDynamics(self.room.floor, -1, lateralFriction=float(mu))

    @staticmethod
    def container_footprint(ci: ContainerInfo) -> np.ndarray:
        """Corners ``(4, 2)`` of container ``ci``'s footprint grown by 5 cm each side."""
        T = ci.T_world_container
        yaw = np.arctan2(T[1, 0], T[0, 0])
        return footprint(T[:2, 3], yaw, ci.extent[:2] + 0.1)

    # ------------------------------------------------------------ ground truth
    def object(self, uid: int, caller: str = "object") -> SpawnedObject:
        """The spawned object with body ``uid``."""
        obj = next((o for o in self.objects if o.uid == uid), None)
        if obj is None:
            raise self._error(f"{caller}: body {uid} is not an object of this episode")
        return obj

    def object_centre_pose(self, obj: SpawnedObject) -> np.ndarray:
        """``T_world_obj`` (4, 4) of ``obj``'s bounding-box centre frame."""
        pos, orn = self._client.getBasePositionAndOrientation(obj.uid)
        T = pose_to_matrix(pos, orn)
        T[:3, 3] = T[:3, 3] + T[:3, :3] @ obj.centre_offset
        return T

    def object_in_container(self, uid: int, container_id: str) -> bool:
        """Whether the bbox centre of body ``uid`` lies inside the container's walls."""
        ci = next((c for c in self.containers if c.id == container_id), None)
        if ci is None:
            raise self._error(f"unknown container {container_id!r}: use one of "
                              f"{[c.id for c in self.containers]}")
        obj = next((o for o in self.objects if o.uid == uid), None)
        if obj is None:
            raise self._error(f"body {uid} is not an object of this episode")
        pos, orn = self._client.getBasePositionAndOrientation(uid)
        centre = np.asarray(pos) + quat_to_matrix(orn) @ obj.centre_offset
        local = np.linalg.inv(ci.T_world_container) @ np.append(centre, 1.0)
        return bool(abs(local[0]) < ci.extent[0] / 2 and abs(local[1]) < ci.extent[1] / 2
                    and 0.0 <= local[2] <= ci.extent[2] + 0.05)

    @property
    def containers(self) -> list[ContainerInfo]:
        """The tidy-up destinations (empty before the room is built)."""
        return list(self.room.containers) if self.room else []

    def destination(self, obj: SpawnedObject) -> str:
        """Id of the container ``obj`` belongs in."""
        return CATEGORY_TO_CONTAINER[obj.kind.category]

    def room_boxes(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """World axis-aligned boxes of the walls, the table and the shelf.

        Returns:
            ``(name, lo, hi)`` per body: ``name`` is ``"wall"``, ``"table"`` or ``"shelf"``,
            ``lo``/``hi`` ``(3,)`` float64 corners in the world frame, m.
        """
        room = self.room
        bodies = [("wall", b) for b in room.walls] + [("table", room.table),
                                                      ("shelf", room.shelf)]
        out = []
        for name, body in bodies:
            lo, hi = (np.asarray(v, dtype=np.float64) for v in self._client.getAABB(body))
            out.append((name, lo, hi))
        return out

    # ------------------------------------------------------------ appearance
    def textured_bodies(self) -> list[tuple[int, str]]:
        """``(body, role)`` pairs the appearance randomizer recolours."""
        out = list(self.room.textured)
        out += [(ci, "container") for ci in self.room.container_bodies]
        out += [(d, "distractor") for d in self.distractors]
        out += [(o.uid, "object") for o in self.objects]
        return out

    def visual_links(self, body: int) -> list[int]:
        """Link indices of ``body`` that carry visual shapes."""
        if body not in self._visual_links:
            self._visual_links[body] = sorted({s[1] for s in
                                               self._client.getVisualShapeData(body)})
        return self._visual_links[body]

    def nominal_colour(self, body: int):
        """The catalogue colour of ``body`` (RGBA) or None."""
        if body not in self._nominal:
            shapes = self._client.getVisualShapeData(body)
            self._nominal[body] = tuple(shapes[0][7]) if shapes else None
        return self._nominal[body]
