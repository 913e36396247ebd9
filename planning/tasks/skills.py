"""The abstract skills the tidy-up behaviour drives (the seam to navigator and manipulator).

Every skill call starts the skill and returns at once with a :class:`SkillHandle`; the
behaviour polls ``handle.status()`` once per tick, so the tree ticks at a fixed rate and can
pre-empt or cancel at any tick (``handle.cancel()``, then :meth:`Skills.stop`). The task
manager node implements :class:`Skills` over the navigator's and manipulator's actions; tests
implement it with scripted outcomes.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Protocol, runtime_checkable

__all__ = ["SkillStatus", "SkillResult", "SkillHandle", "NavTarget", "Skills", "DoneHandle"]


class SkillStatus(enum.IntEnum):
    """State of one skill call."""

    RUNNING = 0
    SUCCESS = 1
    FAILURE = 2


@dataclasses.dataclass(frozen=True)
class SkillResult:
    """Outcome of a finished skill call.

    Attributes:
        status: SUCCESS or FAILURE.
        cause: failure cause in ``TaskItem.cause`` vocabulary (``"grasp_failed"``,
            ``"unreachable"``, ``"not_found"``, ``"dropped"``, ``"timeout"``, ...), ``""`` on
            success.
        message: human-readable detail.
        data: skill-specific payload, e.g. ``perceive``: the object's points ``(N, 3)``
            float64 in ``base_link``, metres.
    """

    status: SkillStatus
    cause: str = ""
    message: str = ""
    data: Any = None


@runtime_checkable
class SkillHandle(Protocol):
    """A running skill call."""

    def status(self) -> SkillStatus:
        """RUNNING, SUCCESS or FAILURE; cheap, non-blocking, called once per tick."""
        ...

    def result(self) -> SkillResult:
        """The outcome; valid once :meth:`status` is not RUNNING."""
        ...

    def cancel(self) -> None:
        """Stop the skill (idempotent); its motion is halted by :meth:`Skills.stop`."""
        ...


class DoneHandle:
    """A handle that is already finished (for skills that complete synchronously)."""

    def __init__(self, result: SkillResult) -> None:
        self._result = result

    def status(self) -> SkillStatus:
        return self._result.status

    def result(self) -> SkillResult:
        return self._result

    def cancel(self) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class NavTarget:
    """Where the navigator should take the base.

    The navigator chooses the base pose itself (a pre-grasp pose from which the arm reaches
    ``position``, or a pre-place pose beside the container; ``"goto"`` drives the base to
    ``position`` itself, a viewpoint of the room); ``approach`` asks for the
    ``approach``-th alternative (another side) after a failure.

    Attributes:
        position: the point to approach ``(x, y, z)``, map frame, metres.
        purpose: ``"pregrasp"``, ``"preplace"``, ``"look"`` or ``"goto"``.
        approach: index of the alternative approach pose, 0 = the navigator's best.
        object_id: the object being approached (0 for a container).
        container: the container being approached (``""`` for an object).
    """

    position: tuple[float, float, float]
    purpose: str
    approach: int = 0
    object_id: int = 0
    container: str = ""


class Skills(Protocol):
    """What the behaviour needs from the robot. Every method but :meth:`stop` starts a skill
    and returns a handle at once; none blocks."""

    def explore(self) -> SkillHandle:
        """Scan the room (turn the head / base) to fill the object map."""
        ...

    def navigate_to(self, target: NavTarget) -> SkillHandle:
        """Drive the base to a pose chosen for ``target``; fails with ``"unreachable"`` when
        no path exists."""
        ...

    def look_at(self, point: tuple[float, float, float]) -> SkillHandle:
        """Point the head camera at a map point (m)."""
        ...

    def perceive(self, object_id: int) -> SkillHandle:
        """Segment the object's points (detection box + depth); ``result().data`` holds them
        ``(N, 3)`` in ``base_link``; fails with ``"not_found"``."""
        ...

    def grasp(self, object_id: int) -> SkillHandle:
        """Plan and execute a grasp on the last perceived points of the object; fails with
        ``"grasp_failed"`` / ``"no_grasp"`` / ``"ik_failed"``."""
        ...

    def lift_and_verify(self) -> SkillHandle:
        """Lift and check the object is held (finger width and effort); fails ``"dropped"``."""
        ...

    def place(self, container_id: str) -> SkillHandle:
        """Move the held object over the container and release it."""
        ...

    def verify_placed(self, object_id: int, container_id: str) -> SkillHandle:
        """Check with perception that the object is inside the container."""
        ...

    def release(self) -> SkillHandle:
        """Put the held object down where the robot is (lower, open) when it cannot be carried
        on to its container."""
        ...

    def stow_arm(self) -> SkillHandle:
        """Move the arm to its stowed pose (safe for driving)."""
        ...

    def stop(self) -> None:
        """Halt the base and the arm now (zero velocity, hold position); synchronous."""
        ...
