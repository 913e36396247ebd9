"""Grasp approach (pre-grasp, grasp, lift poses and their IK) and grasp verification.

A grasp is a pose ``T_base_grasp`` of ``panda_grasptarget`` (z = approach direction, y =
finger closing axis). The approach runs pre-grasp -> grasp -> lift: the pre-grasp is
backed off along the grasp's -z, the lift raised along the base's +z, and the IK of each is
seeded with the previous solution so the arm moves continuously (no wrist flips between
them). :func:`cartesian_path` densifies a straight tool motion into joint waypoints.

Grasp verification reads the fingers after closing: ``panda_finger_joint1/2`` positions
(0 .. 0.04 m each; opening = sum) and efforts (N; in the simulator the motor force, which
saturates at the configured 40 N per finger while squeezing and is ~0 when free). Measured
in the simulator (top-down grasps): a toy block of bbox width 44.9 mm held at 44.5 mm, a
mug of 66.2 mm at 61.3 mm, a duck of 49.4 mm at 40.3 mm (34.0 mm after lifting: curved
objects are held narrower than their box), every one at -40 N per finger.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass as _plain_dataclass
from typing import NamedTuple

import numpy as np

from katazuke.config import dataclass, field, non_negative, positive
from katazuke.errors import InputError
from katazuke.planning.manipulation.errors import IKError
from katazuke.planning.manipulation.kinematics import ArmModel, IKConfig, as_pose

__all__ = ["GraspCheckConfig", "GraspVerdict", "verify_grasp", "GRASP_CAUSES", "ApproachConfig",
           "ApproachPlan", "approach_poses", "solve_approach", "cartesian_path"]

#: Causes :func:`verify_grasp` reports (``"ok"`` when the grasp holds).
GRASP_CAUSES = ("ok", "missed", "not_blocked", "no_effort", "too_narrow", "too_wide")


@dataclass(frozen=True)
class GraspCheckConfig:
    """Thresholds of :func:`verify_grasp`."""

    closed_opening_m: float = positive(0.002, "an opening below this means the fingers closed "
                                              "on nothing (missed or dropped) (m)")
    blocked_margin_m: float = positive(0.002, "the fingers count as stopped by an object when "
                                              "they stay this much wider than commanded (m)")
    min_effort_n: float = positive(5.0, "least squeezing force per finger (N, absolute)")
    width_below_m: float = non_negative(0.02, "accepted opening below the expected width (m): "
                                              "curved objects are held narrower than their box")
    width_above_m: float = non_negative(0.008, "accepted opening above the expected width (m)")


class GraspVerdict(NamedTuple):
    """``(ok, cause)``: ``cause`` is one of :data:`GRASP_CAUSES`."""

    ok: bool
    cause: str


def _finger_values(x, name: str, combine) -> float:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size not in (1, 2) or not np.all(np.isfinite(a)):
        raise InputError(f"verify_grasp: {name} must be one finite number or the two finger "
                         f"joints' values; got {x!r}")
    return float(a[0]) if a.size == 1 else float(combine(a))


def verify_grasp(finger_opening_m, finger_effort_n, commanded_opening_m: float,
                 expected_width_m: float | None = None,
                 config: GraspCheckConfig | None = None) -> GraspVerdict:
    """Whether the gripper holds an object, from the finger width and effort after closing.

    Args:
        finger_opening_m: the opening (m), or the two finger joint positions ``(2,)``
            (``panda_finger_joint1/2``, summed).
        finger_effort_n: squeezing force per finger (N), or the two finger joint efforts
            ``(2,)`` (the weaker absolute value counts).
        commanded_opening_m: the opening the gripper was commanded to (m; 0 = close fully).
        expected_width_m: the object's width across the fingers (m), or None to skip the
            width check.
        config: :class:`GraspCheckConfig`.

    Returns:
        :class:`GraspVerdict` ``(ok, cause)``; checks in order: ``missed`` (fingers fully
        closed), ``not_blocked`` (fingers reached the commanded opening: nothing between
        them), ``no_effort`` (not squeezing), ``too_narrow`` / ``too_wide`` (the opening does
        not match the expected width: another or a slipped object), else ``ok``.

    Raises:
        InputError: non-finite or malformed values.
    """
    cfg = config or GraspCheckConfig()
    opening = _finger_values(finger_opening_m, "finger_opening_m", np.sum)
    effort = _finger_values(finger_effort_n, "finger_effort_n", lambda a: np.min(np.abs(a)))
    if not np.isfinite(commanded_opening_m) or commanded_opening_m < 0:
        raise InputError(f"verify_grasp: commanded_opening_m must be >= 0; got "
                         f"{commanded_opening_m}")
    if expected_width_m is not None and not (np.isfinite(expected_width_m)
                                             and expected_width_m > 0):
        raise InputError(f"verify_grasp: expected_width_m must be > 0 or None; got "
                         f"{expected_width_m}")
    if opening < cfg.closed_opening_m:
        return GraspVerdict(False, "missed")
    if opening < commanded_opening_m + cfg.blocked_margin_m:
        return GraspVerdict(False, "not_blocked")
    if abs(effort) < cfg.min_effort_n:
        return GraspVerdict(False, "no_effort")
    if expected_width_m is not None:
        if opening < expected_width_m - cfg.width_below_m:
            return GraspVerdict(False, "too_narrow")
        if opening > expected_width_m + cfg.width_above_m:
            return GraspVerdict(False, "too_wide")
    return GraspVerdict(True, "ok")


# --------------------------------------------------------------------------- approach
@dataclass(frozen=True)
class ApproachConfig:
    """Geometry and IK of :func:`solve_approach`."""

    pregrasp_offset_m: float = positive(0.10, "pre-grasp distance back along the grasp's -z (m)")
    lift_m: float = positive(0.10, "lift height along the base's +z after closing (m)")
    max_joint_jump_rad: float = positive(1.0, "largest joint change (inf-norm) accepted "
                                              "between consecutive poses (rad)")
    cartesian_step_m: float = positive(0.02, "waypoint spacing of the straight approach and "
                                             "lift motions (m)")
    flip_yaw: bool = field(default=True, metadata={
        "help": "accept the grasp turned by pi about its approach axis (parallel jaw "
                "symmetry); chosen once, at the pre-grasp"})
    ik: IKConfig = field(default_factory=IKConfig, metadata={"help": "IK settings"})


@_plain_dataclass(frozen=True)
class ApproachPlan:
    """Joint solutions of one grasp approach.

    Attributes:
        T_base_pregrasp, T_base_grasp, T_base_lift: ``(4, 4)`` tip poses (the grasp possibly
            turned by pi about z when ``flipped``).
        q_pregrasp, q_grasp, q_lift: ``(n,)`` joint angles (rad).
        approach_path: ``(K, n)`` joint waypoints pre-grasp -> grasp along the straight tool line.
        lift_path: ``(L, n)`` joint waypoints grasp -> lift.
        flipped: the grasp was turned by pi about its z.
    """

    T_base_pregrasp: np.ndarray
    T_base_grasp: np.ndarray
    T_base_lift: np.ndarray
    q_pregrasp: np.ndarray
    q_grasp: np.ndarray
    q_lift: np.ndarray
    approach_path: np.ndarray
    lift_path: np.ndarray
    flipped: bool


def approach_poses(T_base_grasp, pregrasp_offset_m: float = 0.10, lift_m: float = 0.10
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(T_base_pregrasp, T_base_grasp, T_base_lift)``, each ``(4, 4)``.

    The pre-grasp is the grasp moved by ``-pregrasp_offset_m`` along its own z (the approach
    direction), the lift the grasp raised by ``lift_m`` along the base's z; orientations are
    the grasp's.
    """
    T = as_pose(T_base_grasp, "T_base_grasp")
    pre = T.copy()
    pre[:3, 3] -= pregrasp_offset_m * T[:3, 2]
    lift = T.copy()
    lift[2, 3] += lift_m
    return pre, T.copy(), lift


def cartesian_path(arm: ArmModel, T_from, T_to, q_start, step_m: float = 0.02,
                   config: IKConfig | None = None, max_joint_jump_rad: float = 0.5
                   ) -> np.ndarray:
    """Joint waypoints moving the tip on the straight line ``T_from -> T_to``.

    The orientation is interpolated along the geodesic; each waypoint's IK is seeded with the
    previous solution (no restarts, so the branch never changes).

    Args:
        arm: the :class:`ArmModel`.
        T_from, T_to: ``(4, 4)`` tip poses in the base frame.
        q_start: ``(n,)`` joint angles at ``T_from`` (rad), the first row of the result.
        step_m: largest tip translation between waypoints (m).
        config: :class:`IKConfig` (its ``restarts`` are ignored).
        max_joint_jump_rad: largest joint change between waypoints (rad).

    Returns:
        ``(K, n)`` joint waypoints, ``K >= 2``.

    Raises:
        IKError: a waypoint is unreachable or needs a joint jump (a singularity or limit).
    """
    import pinocchio as pin

    A, B = as_pose(T_from, "T_from"), as_pose(T_to, "T_to")
    cfg = config or IKConfig()
    cfg_local = dataclasses.replace(cfg, restarts=0)
    q = arm.check_q(q_start, "q_start")
    dist = float(np.linalg.norm(B[:3, 3] - A[:3, 3]))
    k = max(1, int(np.ceil(dist / step_m)))
    w = pin.log3(A[:3, :3].T @ B[:3, :3])
    out = [q]
    for i in range(1, k + 1):
        s = i / k
        T = np.eye(4)
        T[:3, :3] = A[:3, :3] @ pin.exp3(s * w)
        T[:3, 3] = A[:3, 3] + s * (B[:3, 3] - A[:3, 3])
        q_next = arm.ik(T, q, cfg_local)
        if np.max(np.abs(q_next - q)) > max_joint_jump_rad:
            raise IKError(f"cartesian_path: the straight tool motion needs a joint jump of "
                          f"{np.max(np.abs(q_next - q)):.2f} rad at {s:.0%} of the way (limit or "
                          "singularity); approach from another direction")
        q = q_next
        out.append(q)
    return np.array(out)


def solve_approach(arm: ArmModel, T_base_grasp, q_seed, config: ApproachConfig | None = None,
                   rng: np.random.Generator | None = None) -> ApproachPlan:
    """IK for pre-grasp, grasp and lift with continuity, and the straight motions between.

    Args:
        arm: the :class:`ArmModel`.
        T_base_grasp: ``(4, 4)`` grasp pose of the tip in the base frame.
        q_seed: ``(n,)`` seed of the pre-grasp IK, e.g. the current arm state (rad).
        config: :class:`ApproachConfig`.
        rng: generator of the pre-grasp IK restarts.

    Returns:
        An :class:`ApproachPlan`.

    Raises:
        IKError: a pose is unreachable or the motion between two needs a joint jump.
    """
    cfg = config or ApproachConfig()
    poses = approach_poses(T_base_grasp, cfg.pregrasp_offset_m, cfg.lift_m)
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    sol = arm.solve_ik(poses[0], q_seed, cfg.ik, rng=rng, flip_yaw=cfg.flip_yaw)
    pre, grasp, lift = (T @ flip for T in poses) if sol.flipped else poses
    flipped = bool(sol.flipped)
    try:
        approach = cartesian_path(arm, pre, grasp, sol.q, cfg.cartesian_step_m, cfg.ik,
                                  cfg.max_joint_jump_rad)
    except IKError as first:
        # the grasp is the harder end (lowest, farthest): an arm branch that reaches the
        # pre-grasp may not stretch to it (a floor object at 0.65 m: every grasp of a tidy
        # run failed 1 attempt from the pre-grasp's solution). Solve the grasp itself with
        # restarts and draw the approach backwards from it.
        try:
            gsol = arm.solve_ik(poses[1], q_seed, cfg.ik, rng=rng, flip_yaw=cfg.flip_yaw)
            pre, grasp, lift = (T @ flip for T in poses) if gsol.flipped else poses
            approach = cartesian_path(arm, grasp, pre, gsol.q, cfg.cartesian_step_m, cfg.ik,
                                      cfg.max_joint_jump_rad)[::-1].copy()
        except IKError:
            raise first from None
        flipped = bool(gsol.flipped)
    lift_path = cartesian_path(arm, grasp, lift, approach[-1], cfg.cartesian_step_m, cfg.ik,
                               cfg.max_joint_jump_rad)
    return ApproachPlan(pre, grasp, lift, approach[0], approach[-1], lift_path[-1], approach,
                        lift_path, flipped)
