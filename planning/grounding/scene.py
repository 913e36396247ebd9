"""What grounding sees: a scene built from object-map instances only.

:class:`GroundingScene` holds the map's objects (category, kind, colour, size, position)
and containers, the robot's position and the furniture footprints the robot knows (the
task manager's ``vocabulary.furniture`` in ``launch/params/tidy.yaml``). Relations are
computed from *perceived* positions: which furniture an object is on (or the floor, or
which container it is in), its distance to the robot, its neighbours and left / right of
another object as seen from the robot. Ground truth never enters here.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from katazuke.errors import InputError
from katazuke.planning.tasks.config import FurnitureSpec, TidyConfig

__all__ = ["SceneObject", "SceneContainer", "GroundingScene", "FLOOR", "FLOOR_Z_MAX_M"]

#: Name of the floor as a support.
FLOOR = "floor"
#: An object whose box centre is below this height (m) and on no elevated surface is on the
#: floor (also under a table: the footprint test alone would say "on the table").
FLOOR_Z_MAX_M = 0.15
#: Margin (m) around a furniture or container footprint that still counts as on / in it.
_MARGIN_M = 0.05


@dataclasses.dataclass(frozen=True)
class SceneObject:
    """One object of the map as grounding sees it.

    Attributes:
        id: ``ObjectInstance.id``.
        category: detector category.
        kind: finer kind, ``""`` when the map does not know it.
        colour: dominant colour name, ``""`` when unknown.
        position: box centre ``(x, y, z)`` in the map frame, m.
        extent: box size ``(sx, sy, sz)``, m.
        destination: container id it belongs in (``""`` = unknown).
        support: ``"floor"``, a furniture name, or ``"in:<container id>"``.
    """

    id: int
    category: str
    kind: str
    colour: str
    position: tuple[float, float, float]
    extent: tuple[float, float, float]
    destination: str = ""
    support: str = FLOOR

    @property
    def volume(self) -> float:
        """Box volume, m^3 (at least 1 cm^3 so logs stay finite)."""
        return max(float(np.prod(self.extent)), 1e-6)


@dataclasses.dataclass(frozen=True)
class SceneContainer:
    """A tidy-up container: id, colour, the categories it takes, centre (m)."""

    id: str
    colour: str
    categories: tuple[str, ...]
    position: tuple[float, float, float]
    size_xy: tuple[float, float] = (0.0, 0.0)


def _inside(xy: Sequence[float], centre: Sequence[float], size: Sequence[float],
            margin: float) -> bool:
    return (size[0] > 0 and size[1] > 0
            and abs(xy[0] - centre[0]) <= size[0] / 2 + margin
            and abs(xy[1] - centre[1]) <= size[1] / 2 + margin)


class GroundingScene:
    """Objects, containers, furniture and the robot, with the relations grounding uses.

    Args:
        objects: the map's objects (containers excluded).
        containers: the containers (from the map, else the configured priors).
        furniture: furniture footprints (``FurnitureSpec`` with ``size_xy`` > 0; the floor
            and other entries without a footprint are ignored).
        robot_xy: robot position in the map frame, m.
    """

    def __init__(self, objects: Sequence[SceneObject], containers: Sequence[SceneContainer],
                 furniture: Sequence[FurnitureSpec], robot_xy: Sequence[float]) -> None:
        self.furniture = [f for f in furniture if f.size_xy[0] > 0 and f.size_xy[1] > 0]
        self.containers = list(containers)
        self.robot_xy = (float(robot_xy[0]), float(robot_xy[1]))
        self.objects = [dataclasses.replace(o, support=self.support_of(o.position))
                        for o in objects]
        ids = [o.id for o in self.objects]
        if len(set(ids)) != len(ids):
            raise InputError(f"GroundingScene: duplicate object ids in {sorted(ids)}")
        self._index = {o.id: i for i, o in enumerate(self.objects)}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_instances(cls, instances: Iterable[Any], config: TidyConfig,
                       robot_xy: Sequence[float]) -> "GroundingScene":
        """Build from ``ObjectInstance``-like records (the messages themselves, or any object
        with their attribute names; nothing is imported).

        Containers are the map's ``container`` instances (``destination = "<id>:<colour>"``);
        configured containers the map has not seen yet are added at their prior position.

        Raises:
            InputError: a record lacks an ``ObjectInstance`` field.
        """
        objects: list[SceneObject] = []
        seen: dict[str, SceneContainer] = {}
        cats = {c.id: c.categories for c in config.containers}
        for inst in instances:
            try:
                p, e = inst.position, inst.extent
                xyz = (float(p.x), float(p.y), float(p.z))
                if inst.category == "container":
                    cid, _, colour = str(inst.destination).partition(":")
                    seen[cid] = SceneContainer(cid, colour or str(inst.dominant_color),
                                               tuple(cats.get(cid, ())), xyz,
                                               (float(e.x), float(e.y)))
                    continue
                dest = str(inst.destination) or config.container_for(str(inst.category))
                objects.append(SceneObject(int(inst.id), str(inst.category), str(inst.kind),
                                           str(inst.dominant_color).lower(), xyz,
                                           (float(e.x), float(e.y), float(e.z)), dest))
            except AttributeError as exc:
                raise InputError(f"object map record {inst!r} lacks an ObjectInstance field: "
                                 f"{exc}") from exc
        for c in config.containers:
            if c.id not in seen and c.position is not None:
                seen[c.id] = SceneContainer(c.id, c.colour, tuple(c.categories),
                                            tuple(c.position), tuple(c.size_xy))
        # configured colours win: they are what users say
        conf = {c.id: c for c in config.containers}
        containers = [dataclasses.replace(s, colour=conf[s.id].colour or s.colour)
                      if s.id in conf else s for s in seen.values()]
        return cls(objects, containers, config.vocabulary.furniture, robot_xy)

    # ------------------------------------------------------------------ relations
    def support_of(self, position: Sequence[float]) -> str:
        """Where a point rests: ``"in:<container>"``, a furniture name, or ``"floor"``.

        Inside a container's footprint (below 0.4 m) -> that container. Inside a furniture
        footprint (5 cm margin) and above :data:`FLOOR_Z_MAX_M` -> that furniture; a low
        point inside a footprint is on the floor under it (a table), except for shelf-like
        furniture (its words name a shelf or bookcase), whose bottom board is at floor level.
        """
        xy = position[:2]
        z = float(position[2])
        for c in self.containers:
            size = c.size_xy if c.size_xy[0] > 0 else (0.3, 0.3)
            if _inside(xy, c.position, size, 0.0) and z < 0.4:
                return f"in:{c.id}"
        for f in self.furniture:
            if _inside(xy, f.center_xy, f.size_xy, _MARGIN_M):
                if z >= FLOOR_Z_MAX_M or _shelf_like(f):
                    return f.name
        return FLOOR

    def object(self, object_id: int) -> SceneObject:
        """The object with ``object_id``; :class:`InputError` if it is not in the scene."""
        i = self._index.get(int(object_id))
        if i is None:
            raise InputError(f"object {object_id} is not in the scene (ids: "
                             f"{sorted(self._index)})")
        return self.objects[i]

    def container(self, container_id: str) -> SceneContainer | None:
        """The container with this id, None when the scene has none."""
        return next((c for c in self.containers if c.id == container_id), None)

    def positions(self) -> np.ndarray:
        """``(N, 3)`` float64 object centres, m, in :attr:`objects` order."""
        if not self.objects:
            return np.zeros((0, 3))
        return np.array([o.position for o in self.objects], dtype=np.float64)

    def robot_distances(self) -> np.ndarray:
        """``(N,)`` xy distance of each object to the robot, m."""
        p = self.positions()
        return np.hypot(p[:, 0] - self.robot_xy[0], p[:, 1] - self.robot_xy[1])

    def side_of(self) -> np.ndarray:
        """``(N, N)`` signed side of object i relative to object j as seen from the robot:
        > 0 when i is to the robot's left of j, < 0 right, scaled to metres."""
        p = self.positions()[:, :2]
        if len(p) == 0:
            return np.zeros((0, 0))
        r = np.asarray(self.robot_xy)
        d = p - r                                   # viewing direction to each anchor j
        n = np.linalg.norm(d, axis=1, keepdims=True)
        d = d / np.maximum(n, 1e-6)
        rel = p[:, None, :] - p[None, :, :]         # (i, j): i - j
        # cross(d_j, rel_ij) > 0: i is counter-clockwise of the ray to j = robot's left
        return d[None, :, 0] * rel[..., 1] - d[None, :, 1] * rel[..., 0]

    def pair_distances(self) -> np.ndarray:
        """``(N, N)`` xy distances between objects, m."""
        p = self.positions()[:, :2]
        return np.linalg.norm(p[:, None, :] - p[None, :, :], axis=-1)

    def neighbour(self, object_id: int, max_m: float = 1.0) -> SceneObject | None:
        """The nearest other object or container within ``max_m`` (xy), None if none."""
        o = self.object(object_id)
        best, best_d = None, max_m
        for other in [*self.objects, *self.containers]:
            if other is o:
                continue
            d = math.hypot(other.position[0] - o.position[0], other.position[1] - o.position[1])
            if d < best_d:
                best, best_d = other, d
        return best


def _shelf_like(f: FurnitureSpec) -> bool:
    return any("shel" in w or "case" in w for w in (f.name, *f.words))
