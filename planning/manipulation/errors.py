"""Named errors of the manipulation library (all :class:`~katazuke.errors.KatazukeError`)."""
from __future__ import annotations

from katazuke.errors import KatazukeError

__all__ = ["ManipulationError", "IKError", "PlanningError"]


class ManipulationError(KatazukeError):
    """Base class of the errors a manipulation step raises when it cannot do its job."""


class IKError(ManipulationError):
    """No joint configuration within the limits reaches the target pose to tolerance.

    Attributes:
        position_error_m: the best position error found over all restarts (m).
        rotation_error_rad: the rotation error of that best attempt (rad).
    """

    def __init__(self, message: str, position_error_m: float = float("nan"),
                 rotation_error_rad: float = float("nan")):
        super().__init__(message)
        self.position_error_m = float(position_error_m)
        self.rotation_error_rad = float(rotation_error_rad)


class PlanningError(ManipulationError):
    """No collision-free joint path was found (or start / goal themselves collide)."""
