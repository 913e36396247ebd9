"""Per-item task state: the library twin of ``TaskItem.msg`` and ``TaskStatus.msg``.

The enum values equal the message constants, so the task-manager node converts 1:1
(``TaskItem.state = int(item.state)``, ``TaskStatus.state = int(phase)``).
"""
from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any, Iterable, Sequence

from katazuke.errors import InputError, KatazukeError

__all__ = ["ItemState", "TaskPhase", "TaskItem", "MapObject", "Container", "TransitionError",
           "TaskError", "FINISHED_STATES", "ALLOWED_TRANSITIONS", "progress_fraction",
           "split_object_map"]


class TaskError(KatazukeError):
    """Base class of the task library's errors."""


class TransitionError(TaskError, ValueError):
    """An item was asked to change state along a transition the item model forbids."""


class ItemState(enum.IntEnum):
    """State of one object in a task (values of ``TaskItem.msg``'s constants)."""

    PENDING = 0     #: not handled yet
    ACTIVE = 1      #: being approached / grasped now
    IN_HAND = 2     #: grasped and lifted, verified from finger width and effort
    PLACED = 3      #: released in its container, verified by perception
    FAILED = 4      #: given up after retries; ``cause`` says why
    SKIPPED = 5     #: not attempted (unreachable, no container, cancelled); ``cause`` says why


class TaskPhase(enum.IntEnum):
    """Task phase (values of ``TaskStatus.msg``'s constants)."""

    IDLE = 0
    PLANNING = 1
    NAVIGATING = 2
    GRASPING = 3
    PLACING = 4
    WAITING_FOR_USER = 5
    SUCCEEDED = 6
    FAILED = 7
    CANCELLED = 8
    EXPLORING = 9
    LOOKING = 10
    RECOVERING = 11


#: States that count as finished for the progress fraction.
FINISHED_STATES = frozenset({ItemState.PLACED, ItemState.FAILED, ItemState.SKIPPED})

#: state -> states it may move to. PLACED is reachable only from IN_HAND (an object must have
#: been grasped and lifted before it can be placed); a finished item is re-opened only to
#: PENDING (a revived unreachable item, a new user command about it).
ALLOWED_TRANSITIONS: dict[ItemState, frozenset[ItemState]] = {
    ItemState.PENDING: frozenset({ItemState.ACTIVE, ItemState.SKIPPED}),
    ItemState.ACTIVE: frozenset({ItemState.IN_HAND, ItemState.PENDING, ItemState.FAILED,
                                 ItemState.SKIPPED}),
    ItemState.IN_HAND: frozenset({ItemState.PLACED, ItemState.ACTIVE, ItemState.PENDING,
                                  ItemState.FAILED}),
    ItemState.PLACED: frozenset({ItemState.PENDING}),
    ItemState.FAILED: frozenset({ItemState.PENDING}),
    ItemState.SKIPPED: frozenset({ItemState.PENDING}),
}


@dataclasses.dataclass
class TaskItem:
    """One object of a task (``TaskItem.msg`` plus bookkeeping the message does not carry).

    Attributes:
        object_id: ``ObjectInstance.id`` of the object (stable across map updates).
        category: its category (``ObjectInstance.category``).
        destination: container id it goes to (``"bin_red"``), ``""`` when unknown.
        state: the item's :class:`ItemState`.
        attempts: grasp attempts so far.
        cause: failure / skip cause (``"grasp_failed"``, ``"unreachable"``, ...), ``""`` otherwise.
        failures: failed tries of any step (navigation, perception, grasp, place); the item
            is FAILED when it reaches the configured maximum. Not in the message.
        user_destination: True when a user command chose ``destination`` (a re-plan keeps it
            instead of the category's container). Not in the message.
    """

    object_id: int
    category: str
    destination: str
    state: ItemState = ItemState.PENDING
    attempts: int = 0
    cause: str = ""
    failures: int = 0
    user_destination: bool = False

    def transition(self, new: ItemState, cause: str = "") -> None:
        """Move to ``new``, checking :data:`ALLOWED_TRANSITIONS`.

        Args:
            new: target state.
            cause: the reason (kept for FAILED / SKIPPED, cleared for the other states).

        Raises:
            TransitionError: the transition is not allowed (e.g. PENDING -> PLACED).
        """
        new = ItemState(new)
        if new not in ALLOWED_TRANSITIONS[self.state]:
            allowed = ", ".join(s.name for s in sorted(ALLOWED_TRANSITIONS[self.state]))
            raise TransitionError(
                f"item {self.object_id}: cannot go from {self.state.name} to {new.name}; "
                f"from {self.state.name} it may go to {allowed}")
        if new in (ItemState.FAILED, ItemState.SKIPPED) and not cause:
            raise TransitionError(f"item {self.object_id}: {new.name} needs a cause")
        self.state = new
        self.cause = cause if new in (ItemState.FAILED, ItemState.SKIPPED) else ""

    @property
    def finished(self) -> bool:
        """True when PLACED, FAILED or SKIPPED."""
        return self.state in FINISHED_STATES

    def copy(self) -> "TaskItem":
        """An independent copy (for feedback snapshots)."""
        return dataclasses.replace(self)


def progress_fraction(items: Sequence[TaskItem]) -> float:
    """Fraction of ``items`` that are finished (placed, failed or skipped), in [0, 1].

    An empty task is complete (1.0).
    """
    if not items:
        return 1.0
    return sum(it.finished for it in items) / len(items)


def _xyz(value: Sequence[float], what: str) -> tuple[float, float, float]:
    try:
        xyz = tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be 3 numbers (x, y, z in metres); got {value!r}") from exc
    if len(xyz) != 3 or not all(math.isfinite(v) for v in xyz):
        raise InputError(f"{what} must be 3 finite numbers (x, y, z in metres); got {value!r}")
    return xyz  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class MapObject:
    """One object of the object map, as the task library sees it (from ``ObjectInstance``).

    Attributes:
        id: ``ObjectInstance.id`` (stable while the instance lives).
        category: detector category (``"toy"`` ...) or ``"unknown"``.
        position: box centre ``(x, y, z)`` in the map frame, metres.
        confidence: fused existence confidence in [0, 1].
        kind: finer kind (``"mug"``), ``""`` if unknown.
        colour: dominant colour name (``"red"``), ``""`` if unknown.
        destination: container the map says it belongs in, ``""`` if unknown (used only
            when the configured assignment has no container for ``category``).
        inside: id of the container the object is known to be inside, ``""`` when not known;
            the planner also tests the position against the container footprints.
    """

    id: int
    category: str
    position: tuple[float, float, float]
    confidence: float = 1.0
    kind: str = ""
    colour: str = ""
    destination: str = ""
    inside: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id <= 0:
            raise InputError(f"MapObject.id must be a positive integer (ObjectInstance.id; "
                             f"0 means 'none'); got {self.id!r}")
        object.__setattr__(self, "position", _xyz(self.position, f"MapObject {self.id} position"))
        if not 0.0 <= float(self.confidence) <= 1.0:
            raise InputError(f"MapObject {self.id}: confidence must be in [0, 1]; "
                             f"got {self.confidence!r}")


@dataclasses.dataclass(frozen=True)
class Container:
    """A tidy-up container in the map (``ObjectInstance`` of category ``container``,
    ``destination = "<id>:<colour>"``).

    Attributes:
        id: container id, e.g. ``"bin_red"``.
        position: centre ``(x, y, z)`` in the map frame, metres.
        colour: colour name (``"red"``), ``""`` if unknown.
        size_xy: footprint ``(sx, sy)`` in metres, axis-aligned in the map frame (the planner's
            "inside" test); ``(0, 0)`` uses the configured radius instead.
    """

    id: str
    position: tuple[float, float, float]
    colour: str = ""
    size_xy: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if not self.id:
            raise InputError("Container.id must be a non-empty string such as 'bin_red'")
        object.__setattr__(self, "position", _xyz(self.position, f"Container {self.id} position"))

    @classmethod
    def from_destination(cls, destination: str, position: Sequence[float],
                         size_xy: tuple[float, float] = (0.0, 0.0)) -> "Container":
        """Build from an ``ObjectInstance.destination`` of a container, ``"<id>:<colour>"``."""
        cid, _, colour = destination.partition(":")
        return cls(cid, tuple(position), colour, size_xy)  # type: ignore[arg-type]


def _yaw_of(q: object) -> float:
    x, y, z, w = (float(getattr(q, a)) for a in ("x", "y", "z", "w"))
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def split_object_map(instances: Iterable[Any]) -> tuple[list[MapObject], list[Container]]:
    """Convert ``ObjectInstance``-like records (any objects with its attribute names, e.g.
    the messages themselves; nothing is imported) into map objects and containers.

    Instances of category ``"container"`` become :class:`Container` (id and colour from
    ``destination = "<id>:<colour>"``, footprint from ``extent`` turned by the yaw of
    ``orientation`` into a map-axis-aligned box); the others :class:`MapObject`.

    Raises:
        InputError: a record lacks a field or has bad values.
    """
    objects: list[MapObject] = []
    containers: list[Container] = []
    for inst in instances:
        try:
            p = inst.position
            xyz = (p.x, p.y, p.z)
            if inst.category == "container":
                e = inst.extent
                yaw = _yaw_of(inst.orientation) if inst.has_orientation else 0.0
                c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
                size = (c * e.x + s * e.y, s * e.x + c * e.y)
                containers.append(Container.from_destination(inst.destination, xyz, size))
            else:
                objects.append(MapObject(int(inst.id), str(inst.category), xyz,
                                         float(inst.confidence), str(inst.kind),
                                         str(inst.dominant_color),
                                         str(inst.destination)))
        except AttributeError as exc:
            raise InputError(f"object map record {inst!r} lacks an ObjectInstance field: "
                             f"{exc}") from exc
    return objects, containers
