"""Task planning: which objects to tidy, in which order, and their per-item state.

The planner keeps one :class:`~katazuke.planning.tasks.items.TaskItem` per object id across
map updates (ids are stable in the object map), so re-planning never loses a state, an
attempt count or a cause. Ordering minimises travel: the robot goes object -> its container
-> next object, so only the legs "from where the robot is (the start, or the last
container) to the next object" depend on the order. Those legs come from a cost callback
(the navigator's path length on its costmap, ``inf`` when there is no path; Euclidean
distance by default), evaluated once per (start or container, object) pair per plan; the
order is greedy nearest-next, then improved by 2-opt reversals and single-item relocations.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from katazuke.errors import InputError
from katazuke.planning.tasks.config import TaskPlannerConfig, TidyConfig
from katazuke.planning.tasks.items import (Container, ItemState, MapObject, TaskItem,
                                           progress_fraction)

__all__ = ["TravelCost", "euclidean_cost", "TaskPlanner", "order_cost"]

#: ``travel_cost(from_xy, to_xy) -> float``: cost of driving between two map points (m or s),
#: ``math.inf`` when unreachable. The navigator supplies one from its costmap.
TravelCost = Callable[[tuple[float, float], tuple[float, float]], float]

#: Skip causes that a re-plan may revive (the world may have changed).
REVIVABLE_CAUSES = ("unreachable", "not_found", "container_unreachable", "no_container")


def euclidean_cost(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Straight-line distance between two map points, m."""
    return math.hypot(b[0] - a[0], b[1] - a[1])


def order_cost(order: Sequence[int], start_cost: np.ndarray, link_cost: np.ndarray) -> float:
    """Travel cost of visiting objects in ``order``.

    Args:
        order: object indices.
        start_cost: ``(N,)`` cost from the robot to each object.
        link_cost: ``(N, N)``: ``link_cost[i, j]`` = cost from object i's container to object j.
    """
    if not len(order):
        return 0.0
    total = float(start_cost[order[0]])
    for a, b in zip(order[:-1], order[1:]):
        total += float(link_cost[a, b])
    return total


def _improve(order: list[int], start_cost: np.ndarray, link_cost: np.ndarray,
             rounds: int) -> list[int]:
    """2-opt reversals and relocations of one item while they lower :func:`order_cost`."""
    best = order_cost(order, start_cost, link_cost)
    n = len(order)
    for _ in range(rounds):
        improved = False
        for i in range(n - 1):
            for j in range(i + 1, n):
                cand = order[:i] + order[i:j + 1][::-1] + order[j + 1:]
                c = order_cost(cand, start_cost, link_cost)
                if c < best - 1e-9:
                    order, best, improved = cand, c, True
        for i in range(n):
            for j in range(n):
                if i == j:
                    continue
                rest = order[:i] + order[i + 1:]
                cand = rest[:j] + [order[i]] + rest[j:]
                c = order_cost(cand, start_cost, link_cost)
                if c < best - 1e-9:
                    order, best, improved = cand, c, True
        if not improved:
            break
    return order


class TaskPlanner:
    """Per-item state and the tidy order over the current object map.

    Example:
        >>> planner = TaskPlanner(cfg)                     # doctest: +SKIP
        >>> planner.update_map(objects, containers)        # every map update
        >>> order = planner.plan((x, y), travel_cost)      # object ids, best first
        >>> planner.item(order[0]).transition(ItemState.ACTIVE)

    Args:
        config: the task manager's configuration (container assignment, planner knobs).
    """

    def __init__(self, config: TidyConfig) -> None:
        self.config = config
        self.cfg: TaskPlannerConfig = config.planner
        self._items: dict[int, TaskItem] = {}
        self._objects: dict[int, MapObject] = {}
        self._prior_containers = {c.id: Container(c.id, c.position, c.colour, c.size_xy)
                                  for c in config.containers if c.position is not None}
        self._containers: dict[str, Container] = dict(self._prior_containers)
        self._order: list[int] = []
        self._map_version = 0
        self._last_xyz: dict[int, tuple[float, float, float]] = {}   # item id -> last seen
        self._alias: dict[int, int] = {}      # old object id -> the id its item moved to
        self._renamed: dict[int, int] = {}    # renames since the last pop_renames()

    # ------------------------------------------------------------------ map
    @property
    def map_version(self) -> int:
        """Incremented by every :meth:`update_map` that changed the planning problem."""
        return self._map_version

    @property
    def objects(self) -> dict[int, MapObject]:
        """The latest map objects by id (a copy)."""
        return dict(self._objects)

    @property
    def containers(self) -> dict[str, Container]:
        """The known containers by id (a copy)."""
        return dict(self._containers)

    def update_map(self, objects: Iterable[MapObject],
                   containers: Iterable[Container] | None = None) -> bool:
        """Take a new object map. Items keep their state; new objects get PENDING items.

        Objects already inside their container get no item (nothing to do) unless they have
        one already (then it is left as is: a PLACED item stays placed). A PENDING item whose
        object vanished from the map is SKIPPED with cause ``"not_found"``, and revived
        when it reappears.

        Args:
            objects: the map's objects (not containers), ids unique.
            containers: the containers seen in the map; they replace the configured priors
                of the same id. ``None`` keeps the previous ones.

        Returns:
            True when anything relevant to the plan changed (objects added, removed, moved
            by more than 5 cm, recategorised, or containers changed).

        Raises:
            InputError: duplicate object ids.
        """
        new: dict[int, MapObject] = {}
        for o in objects:
            if o.id in new:
                raise InputError(f"object id {o.id} appears twice in the map; ids must be unique")
            if o.confidence < self.cfg.min_confidence:
                continue
            new[o.id] = o
        changed = False
        if containers is not None:
            cmap = {**self._prior_containers, **{c.id: c for c in containers}}
            changed |= cmap != self._containers
            self._containers = cmap
        if set(new) != set(self._objects):
            changed = True
        else:
            for oid, o in new.items():
                old = self._objects[oid]
                if (o.category != old.category or o.inside != old.inside
                        or math.dist(o.position, old.position) > 0.05):
                    changed = True
                    break
        self._objects = new
        changed |= self._hand_over(new)
        for oid, o in new.items():
            it = self._items.get(oid)
            if it is None:
                if self.is_inside_destination(o) or (self.cfg.ignore_in_containers
                                                     and self.container_of(o)):
                    continue
                if self._given_up_or_duplicate(o, new):
                    continue
                self._items[oid] = TaskItem(oid, o.category, self.destination_for(o))
            else:
                if it.state in (ItemState.PENDING, ItemState.SKIPPED):
                    it.category = o.category
                    if not it.user_destination:
                        it.destination = self.destination_for(o)
        for oid, it in self._items.items():
            if oid in new:
                self._last_xyz[oid] = new[oid].position
            elif it.state == ItemState.PENDING:
                it.transition(ItemState.SKIPPED, "not_found")
        if changed:
            self._map_version += 1
        return changed

    def _hand_over(self, new: dict[int, MapObject]) -> bool:
        """Give items whose object left the map to new objects near where it was last seen.

        The object map may forget an instance (a view missed it, the arm hid it) and create it
        again under a new id; without this the item would be lost (``not_found``) and a fresh
        PENDING item made for the same object. Items in hand or placed are not handed over
        (their object is expected to move). Nearest pairs first, each object once.
        """
        r = self.cfg.reassociate_radius_m
        if r <= 0:
            return False
        lost = [oid for oid, it in self._items.items() if oid not in new
                and oid in self._last_xyz
                and it.state not in (ItemState.IN_HAND, ItemState.PLACED)]
        fresh = [oid for oid in new if oid not in self._items]
        pairs = sorted((math.dist(self._last_xyz[a][:2], new[b].position[:2]), a, b)
                       for a in lost for b in fresh)
        done_a: set[int] = set()
        done_b: set[int] = set()
        for d, a, b in pairs:
            if d > r or a in done_a or b in done_b:
                continue
            done_a.add(a)
            done_b.add(b)
            it = self._items.pop(a)
            it.object_id = b
            self._items[b] = it
            self._last_xyz[b] = self._last_xyz.pop(a)
            self._alias[a] = b
            for k, v in list(self._alias.items()):
                if v == a:
                    self._alias[k] = b
            self._renamed[a] = b
            self._order = [b if i == a else i for i in self._order]
        return bool(done_a)

    def _given_up_or_duplicate(self, obj: MapObject, new: dict[int, MapObject]) -> bool:
        """Whether a new map object is a failed item's object seen again (within
        ``reassociate_radius_m`` of where it was), or a second instance of an unfinished
        item's object still in the map (within ``duplicate_radius_m``): no new item then, or
        a table leg detected as a bottle would be tried again under every new id."""
        for oid, it in self._items.items():
            last = self._last_xyz.get(oid)
            if last is None:
                continue
            d = math.dist(last[:2], obj.position[:2])
            if it.state == ItemState.FAILED and d <= self.cfg.reassociate_radius_m:
                return True
            if (not it.finished and it.state != ItemState.IN_HAND and oid in new
                    and d <= self.cfg.duplicate_radius_m):
                return True
        return False

    def resolve(self, object_id: int) -> int:
        """The id an object's item has now (itself unless the item was handed over)."""
        return self._alias.get(object_id, object_id)

    def pop_renames(self) -> dict[int, int]:
        """``{old id: new id}`` of the items handed over since the last call."""
        out, self._renamed = self._renamed, {}
        return out

    def container_of(self, obj: MapObject) -> str:
        """Id of a container the object is inside (its flag or a footprint), ``""`` if none."""
        if obj.inside:
            return obj.inside
        for cid in self._containers:
            if self.is_inside(obj, cid):
                return cid
        return ""

    def destination_for(self, obj: MapObject) -> str:
        """Container for an object: the configured assignment of its category, else the
        map's ``destination``, else ``""``."""
        return self.config.container_for(obj.category) or obj.destination.partition(":")[0]

    def is_inside(self, obj: MapObject, container_id: str) -> bool:
        """Whether ``obj`` is inside container ``container_id`` (its ``inside`` flag, or its xy
        within the container's footprint / ``container_radius_m`` of its centre)."""
        if not container_id:
            return False
        if obj.inside:
            return obj.inside == container_id
        c = self._containers.get(container_id)
        if c is None:
            return False
        dx, dy = obj.position[0] - c.position[0], obj.position[1] - c.position[1]
        if c.size_xy[0] > 0 and c.size_xy[1] > 0:
            return abs(dx) <= c.size_xy[0] / 2 and abs(dy) <= c.size_xy[1] / 2
        return math.hypot(dx, dy) <= self.cfg.container_radius_m

    def is_inside_destination(self, obj: MapObject) -> bool:
        """Whether ``obj`` already sits in the container it belongs in."""
        it = self._items.get(obj.id)
        dest = it.destination if it is not None else self.destination_for(obj)
        return self.is_inside(obj, dest)

    # ------------------------------------------------------------------ items
    def item(self, object_id: int) -> TaskItem:
        """The item of an object.

        Raises:
            InputError: no item for that id.
        """
        try:
            return self._items[self.resolve(object_id)]
        except KeyError:
            raise InputError(f"no task item for object {object_id}; known ids: "
                             f"{sorted(self._items)}") from None

    def has_item(self, object_id: int) -> bool:
        """Whether an item exists for ``object_id`` (or the id it was handed over to)."""
        return self.resolve(object_id) in self._items

    def ensure_item(self, object_id: int, destination: str = "") -> TaskItem:
        """The item for a map object, created (or re-opened to PENDING) for a user command.

        Args:
            object_id: a map object's id.
            destination: the user's container; ``""`` keeps the object's own destination.

        Raises:
            InputError: the object is not in the map.
        """
        obj = self._objects.get(object_id)
        if obj is None:
            raise InputError(f"object {object_id} is not in the object map; known ids: "
                             f"{sorted(self._objects)}")
        it = self._items.get(object_id)
        if it is None:
            it = TaskItem(object_id, obj.category, self.destination_for(obj))
            self._items[object_id] = it
        elif it.finished:
            it.transition(ItemState.PENDING)
            it.failures = 0
        if destination:
            it.destination = destination
            it.user_destination = True
        return it

    @property
    def items(self) -> list[TaskItem]:
        """All items: the last planned order first, then the rest by id."""
        seen = set(self._order)
        return ([self._items[i] for i in self._order if i in self._items]
                + [it for oid, it in sorted(self._items.items()) if oid not in seen])

    def progress(self) -> float:
        """Finished (placed, failed, skipped) / all items, in [0, 1]."""
        return progress_fraction(list(self._items.values()))

    def record_failure(self, object_id: int, cause: str) -> bool:
        """Count a failed try of an item; FAILED with ``cause`` at ``max_failures``, else back
        to PENDING (from ACTIVE / IN_HAND).

        Returns:
            True when the item is now FAILED.
        """
        it = self.item(object_id)
        it.failures += 1
        if it.failures >= self.cfg.max_failures:
            if it.state != ItemState.FAILED:
                it.transition(ItemState.FAILED, cause)
            return True
        if it.state in (ItemState.ACTIVE, ItemState.IN_HAND):
            it.transition(ItemState.PENDING)
        it.cause = cause          # last failure, for feedback; a PENDING item may carry it
        return False

    # ------------------------------------------------------------------ plan
    def plan(self, robot_xy: Sequence[float], travel_cost: TravelCost | None = None,
             only: Iterable[int] | None = None) -> list[int]:
        """Order the items still to do.

        Re-evaluates every PENDING item and every item SKIPPED for a revivable cause
        (unreachable, not found, no container): those that are reachable again go back to
        PENDING. PENDING items with no destination, or whose object or container cannot be
        reached (``travel_cost`` is ``inf``), are SKIPPED with that cause. Objects found
        inside their destination are SKIPPED ``"already_in_container"``, objects inside
        another container ``"in_another_container"`` (with ``ignore_in_containers``, unless a
        user chose the item's destination).

        Args:
            robot_xy: robot position in the map frame, m.
            travel_cost: cost callback (default :func:`euclidean_cost`).
            only: restrict to these object ids (a MOVE task).

        Returns:
            Object ids of PENDING items, in the order to tidy them.
        """
        cost = travel_cost or euclidean_cost
        rxy = (float(robot_xy[0]), float(robot_xy[1]))
        ids = sorted(self._items) if only is None else [i for i in only if i in self._items]
        todo: list[int] = []
        for oid in ids:
            it = self._items[oid]
            revivable = it.state == ItemState.SKIPPED and it.cause in REVIVABLE_CAUSES
            if it.state != ItemState.PENDING and not revivable:
                continue
            obj = self._objects.get(oid)
            if obj is None:
                if it.state == ItemState.PENDING:
                    it.transition(ItemState.SKIPPED, "not_found")
                continue
            if revivable:
                it.transition(ItemState.PENDING)
            if not it.user_destination:
                it.destination = self.destination_for(obj)
            if self.is_inside(obj, it.destination):
                it.transition(ItemState.SKIPPED, "already_in_container")
                continue
            if (self.cfg.ignore_in_containers and not it.user_destination
                    and self.container_of(obj)):
                it.transition(ItemState.SKIPPED, "in_another_container")
                continue
            if not it.destination or it.destination not in self._containers:
                it.transition(ItemState.SKIPPED, "no_container")
                continue
            todo.append(oid)
        if not todo:
            self._order = []
            return []
        oxy = [tuple(self._objects[i].position[:2]) for i in todo]
        dests = sorted({self._items[i].destination for i in todo})
        cxy = {d: tuple(self._containers[d].position[:2]) for d in dests}
        start = np.array([cost(rxy, p) for p in oxy], dtype=float)
        from_c = {d: np.array([cost(cxy[d], p) for p in oxy], dtype=float) for d in dests}
        to_c = np.array([cost(p, cxy[self._items[i].destination]) for i, p in zip(todo, oxy)])
        n = len(todo)
        link = np.stack([from_c[self._items[todo[k]].destination] for k in range(n)])
        # An object is reachable when the robot can get to it (from here or from some
        # container it will visit) and carry it on to its container.
        reach_obj = np.isfinite(start) | np.any(np.isfinite(link), axis=0)
        keep = []
        for k, oid in enumerate(todo):
            if not reach_obj[k]:
                self._items[oid].transition(ItemState.SKIPPED, "unreachable")
            elif not np.isfinite(to_c[k]):
                self._items[oid].transition(ItemState.SKIPPED, "container_unreachable")
            else:
                keep.append(k)
        order = self._greedy(keep, start, link)
        if self.cfg.improve_rounds and len(order) > 2 and np.all(
                np.isfinite(start[order])) and np.all(np.isfinite(link[np.ix_(order, order)])):
            order = _improve(order, start, link, self.cfg.improve_rounds)
        self._order = [todo[k] for k in order]
        return list(self._order)

    @staticmethod
    def _greedy(keep: list[int], start: np.ndarray, link: np.ndarray) -> list[int]:
        left = set(keep)
        order: list[int] = []
        while left:
            row = start if not order else link[order[-1]]
            nxt = min(left, key=lambda k: (row[k], k))
            order.append(nxt)
            left.remove(nxt)
        return order

    def snapshot(self) -> list[TaskItem]:
        """Copies of :attr:`items` (for feedback messages)."""
        return [it.copy() for it in self.items]

    def counts(self, ids: Iterable[int] | None = None) -> Mapping[str, int]:
        """Number of items per state name, over ``ids`` (default all)."""
        its = self._items.values() if ids is None else [self._items[i] for i in ids
                                                        if i in self._items]
        out = {s.name: 0 for s in ItemState}
        for it in its:
            out[it.state.name] += 1
        return out
