"""The grasp-planning seam: :class:`Grasp`, :class:`GraspPlanner` and their errors.

Every grasp planner (the geometric baseline of :mod:`.geometric`, the Neural Descriptor
Field planner of a later issue) implements :class:`GraspPlanner`::

    grasps = planner.plan(points_base, category, scene_points_base)   # best first

and is measured by the same harness (``katazuke/bench/grasp.py``). :class:`Grasp` is the
library form of ``katazuke_interfaces/msg/GraspCandidate``: the pose of the Panda's
``panda_grasptarget`` frame (the point between the fingertips) in ``base_link``, the finger
opening before closing, a score comparable across planners, the planner's own energy and
its name.

Frames and units: every array is in ``base_link`` (x forward, y left, z up; the floor is
``z = 0`` on a flat floor), metres.

Grasp frame (``panda_grasptarget``): **z** is the approach direction (the fingers move
along +z into the object; a top-down grasp has z = (0, 0, -1) in ``base_link``), **y** is the
axis the fingers close along (the two fingertips sit at ``+-width_m / 2`` on y before
closing), **x** = y x z completes the right-handed frame. A grasp and its copy rotated by
pi about z are the same physical grasp; planners return one of the two.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import numpy as np

from katazuke.errors import InputError, KatazukeError

__all__ = ["Grasp", "GraspPlanner", "GraspPlanningError", "UnsupportedCategoryError",
           "NoGraspError", "MAX_OPENING_M", "check_points", "check_pose"]

#: The Panda gripper's largest finger opening, m.
MAX_OPENING_M = 0.08


class GraspPlanningError(KatazukeError):
    """Base class of the errors a :class:`GraspPlanner` raises on purpose."""


class UnsupportedCategoryError(GraspPlanningError, ValueError):
    """The planner does not handle this object category (see :attr:`GraspPlanner.categories`).

    Callers fall back to another planner or skip the object.
    """


class NoGraspError(GraspPlanningError):
    """No grasp passed the planner's checks (too wide, in collision, too few points, ...).

    The message says which check removed the candidates, e.g. "object is 0.11 m across its
    narrowest horizontal axis; the gripper opens 0.08 m".
    """


def check_pose(T: np.ndarray, name: str = "T_base_grasp") -> np.ndarray:
    """``(4, 4)`` float64 copy of a rigid transform, or :class:`InputError`.

    Raises:
        InputError: wrong shape, non-finite entries, a rotation block that is not orthonormal
            with determinant +1 (tolerance 1e-6), or a last row other than ``0 0 0 1``.
    """
    T = np.array(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise InputError(f"{name} must be a finite (4, 4) homogeneous transform; got shape "
                         f"{T.shape}")
    R = T[:3, :3]
    if (not np.allclose(R.T @ R, np.eye(3), atol=1e-6) or abs(np.linalg.det(R) - 1.0) > 1e-6
            or not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0])):
        raise InputError(f"{name} must be a rigid transform: orthonormal rotation with "
                         "determinant +1 and last row 0 0 0 1")
    return T


@dataclass(frozen=True, eq=False)
class Grasp:
    """One parallel-jaw grasp (the library form of ``GraspCandidate.msg``).

    Attributes:
        T_base_grasp: ``(4, 4)`` pose of ``panda_grasptarget`` in ``base_link``, m; z = approach
            direction, y = the axis the fingers close along (module docstring).
        width_m: finger opening before closing, m, in ``(0, MAX_OPENING_M]``.
        score: quality in ``[0, 1]``, higher is better, comparable across planners.
        energy: the planner's own cost, lower is better (NDF descriptor-matching energy); NaN
            when the planner has none.
        planner: name of the planner that produced it (``"geometric"``, ``"ndf"``, ...).
        kind: the grasp family in words (``"top"``, ``"side"``, ...; free text per planner).

    Raises:
        InputError: on construction, a pose that is not a rigid transform, a width outside
            ``(0, 0.08]`` m or a score outside ``[0, 1]``.
    """

    T_base_grasp: np.ndarray
    width_m: float
    score: float
    energy: float = math.nan
    planner: str = ""
    kind: str = ""

    def __post_init__(self) -> None:
        T = check_pose(self.T_base_grasp)
        T.setflags(write=False)
        object.__setattr__(self, "T_base_grasp", T)
        w, s = float(self.width_m), float(self.score)
        if not (math.isfinite(w) and 0.0 < w <= MAX_OPENING_M + 1e-9):
            raise InputError(f"Grasp.width_m must be in (0, {MAX_OPENING_M}] m; got {w}")
        if not (math.isfinite(s) and 0.0 <= s <= 1.0):
            raise InputError(f"Grasp.score must be in [0, 1]; got {s}")
        object.__setattr__(self, "width_m", w)
        object.__setattr__(self, "score", s)
        object.__setattr__(self, "energy", float(self.energy))

    @property
    def position(self) -> np.ndarray:
        """``(3,)`` grasp point (between the fingertips) in ``base_link``, m."""
        return self.T_base_grasp[:3, 3].copy()

    @property
    def approach(self) -> np.ndarray:
        """``(3,)`` unit approach direction (grasp z) in ``base_link``."""
        return self.T_base_grasp[:3, 2].copy()

    @property
    def closing_axis(self) -> np.ndarray:
        """``(3,)`` unit axis the fingers close along (grasp y) in ``base_link``."""
        return self.T_base_grasp[:3, 1].copy()

    def pregrasp(self, distance_m: float) -> np.ndarray:
        """``(4, 4)`` pose ``distance_m`` back along the approach (where the straight-line
        approach starts), ``base_link``."""
        T = self.T_base_grasp.copy()
        T[:3, 3] -= distance_m * T[:3, 2]
        return T

    def transformed(self, T_new_base: np.ndarray) -> "Grasp":
        """The same grasp expressed in another frame: ``T_new_grasp = T_new_base @ T_base_grasp``
        (e.g. ``T_world_base`` for the simulator's world frame)."""
        return Grasp(check_pose(T_new_base, "T_new_base") @ self.T_base_grasp, self.width_m,
                     self.score, self.energy, self.planner, self.kind)


def check_points(points: np.ndarray, name: str, min_points: int = 0) -> np.ndarray:
    """``(N, 3)`` float64 copy of a point array, or :class:`InputError` saying what to fix.

    Args:
        points: ``(N, 3)`` points, m.
        name: the argument's name, for the message.
        min_points: fewest points accepted.

    Raises:
        InputError: not ``(N, 3)``, non-finite entries, or fewer than ``min_points`` points.
    """
    try:
        P = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be an (N, 3) array of points in metres") from exc
    if P.ndim == 2 and P.shape[0] == 0 and min_points == 0:
        return P.reshape(0, 3)
    if P.ndim != 2 or P.shape[1] != 3:
        raise InputError(f"{name} must be an (N, 3) array of points in metres (base_link); got "
                         f"shape {P.shape}")
    if not np.all(np.isfinite(P)):
        bad = int(np.sum(~np.all(np.isfinite(P), axis=1)))
        raise InputError(f"{name} has {bad} non-finite point(s); drop NaN/inf depth returns "
                         "before planning")
    if len(P) < min_points:
        raise InputError(f"{name} has {len(P)} point(s); the planner needs at least "
                         f"{min_points} (segment the object from a closer or larger view, or "
                         "lower min_points)")
    return P


class GraspPlanner(abc.ABC):
    """The seam every grasp planner implements (geometric baseline, NDF, ...).

    Subclasses set :attr:`name` and :attr:`categories` and implement :meth:`_plan`;
    :meth:`plan` checks the inputs, the category and the outputs once for all of them.
    """

    #: Planner name, copied into :attr:`Grasp.planner` (``"geometric"``, ``"ndf"``, ...).
    name: str = ""

    @property
    @abc.abstractmethod
    def categories(self) -> tuple[str, ...]:
        """The object categories this planner handles."""

    @property
    def min_points(self) -> int:
        """Fewest object points :meth:`plan` accepts."""
        return 1

    def supports(self, category: str) -> bool:
        """Whether :meth:`plan` handles ``category``."""
        return category in self.categories

    def plan(self, points_base: np.ndarray, category: str,
             scene_points_base: np.ndarray | None = None) -> list[Grasp]:
        """Grasps for one segmented object, best first.

        Args:
            points_base: ``(N, 3)`` the object's points in ``base_link``, m (e.g. from
                :func:`~katazuke.planning.grasping.segment_object_points`).
            category: the object's category (the detector's label).
            scene_points_base: ``(M, 3)`` points of everything else near the object (support
                surface, neighbours) in ``base_link``, m, for collision checks; None or
                ``(0, 3)`` for none.

        Returns:
            Non-empty list of :class:`Grasp`, sorted by decreasing score.

        Raises:
            InputError: malformed points (shape, non-finite, fewer than :attr:`min_points`).
            UnsupportedCategoryError: ``category`` is not in :attr:`categories`.
            NoGraspError: no candidate passed the planner's checks.
        """
        if not isinstance(category, str):
            raise InputError(f"category must be a string; got {category!r}")
        if not self.supports(category):
            raise UnsupportedCategoryError(
                f"planner {self.name!r} does not handle category {category!r}; it handles "
                f"{list(self.categories)}")
        P = check_points(points_base, "points_base", self.min_points)
        S = check_points(np.zeros((0, 3)) if scene_points_base is None else scene_points_base,
                         "scene_points_base")
        grasps = self._plan(P, category, S)
        if not grasps:
            raise NoGraspError(f"planner {self.name!r} found no grasp for the {category}")
        return sorted(grasps, key=lambda g: -g.score)

    @abc.abstractmethod
    def _plan(self, points: np.ndarray, category: str, scene: np.ndarray) -> list[Grasp]:
        """Candidates for checked inputs (``(N, 3)``, ``(M, 3)`` float64, base_link, m).

        Raise :class:`NoGraspError` with the reason when every candidate fails a check.
        """
