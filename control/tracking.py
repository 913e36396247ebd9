"""Reference tracking for velocity-commanded plants (holonomic base, arm joints), ROS-free.

The ROS 2 ``controller`` node is a thin adapter over :class:`ErrorTracker`. The tracked
plant is the error integrator

    e_{k+1} = e_k + dt * u_k + w_k

where ``e`` is the tracking error (state minus reference), ``u`` the commanded velocity
and ``w`` everything the model misses (wheel slip, a push, a moving reference, actuator
lag). LQR gives ``u = -K e``; GPC (:class:`~katazuke.control.gpc.GPC`) adds a learnt
disturbance-action term. Safety lives here too, so it is tested without ROS:

- saturation: commands are scaled into per-group norm limits (e.g. planar speed, yaw
  rate, each joint speed);
- a guard that falls back to LQR (and says why) when GPC misbehaves: a non-finite action,
  a GPC correction larger than ``guard_max_correction`` times the speed limit, or an error
  norm that grows beyond ``guard_state_norm_gain * max(|e| at reference change,
  guard_state_norm_floor)``. The fallback holds until the next reference change.
"""
from __future__ import annotations

import math
from dataclasses import dataclass as _plain_dataclass
from typing import Callable, Literal, Sequence

import numpy as np

from katazuke.config import dataclass, field, positive
from katazuke.control.gpc import GPC, GPCConfig
from katazuke.control.lqr import dlqr
from katazuke.errors import ConfigError, InputError
from katazuke.geometry import yaw_from_quaternion  # re-exported: part of this module's API

__all__ = ["ControllerConfig", "ErrorTracker", "TrackerOutput", "PathFollower",
           "TrajectoryFollower", "wrap_angle",
           "yaw_from_quaternion", "base_tracker", "arm_tracker"]


@dataclass(frozen=True)
class ControllerConfig:
    """Parameters of the base/arm tracking controller (the library part).

    ``rate_hz`` stays here: the discrete model ``B = dt I`` with ``dt = 1 / rate_hz`` sets
    the LQR gains and the GPC radius, so a tracker is designed for one rate. The node's own
    settings (watchdog timeouts, waypoint tolerance) are in the node's
    ``ControllerNodeConfig``, which nests this one as ``controller``.
    """

    mode: Literal["lqr", "gpc"] = field(default="lqr", metadata={
        "help": "lqr: u = -K e; gpc: LQR plus the online disturbance-action term"})
    rate_hz: float = positive(20.0, "control rate (Hz); the tracker's model step is 1 / rate_hz")
    base_q_xy: float = positive(1.0, "LQR weight on x/y error (1/m^2)")
    base_q_yaw: float = positive(0.5, "LQR weight on yaw error (1/rad^2)")
    base_r_linear: float = positive(0.05, "LQR weight on linear velocity commands (s^2/m^2)")
    base_r_angular: float = positive(0.05, "LQR weight on yaw-rate commands (s^2/rad^2)")
    max_linear_speed: float = positive(0.5, "saturation of the planar speed |(vx, vy)| (m/s)")
    max_angular_speed: float = positive(1.0, "saturation of |wz| (rad/s)")
    arm_q: float = positive(1.0, "LQR weight on joint error (1/rad^2)")
    arm_r: float = positive(0.05, "LQR weight on joint speed (s^2/rad^2)")
    max_joint_speed: float = positive(1.0, "saturation of each joint speed command (rad/s)")
    gpc_horizon: int = field(default=10, metadata={"help": "GPC memory H (steps)"})
    gpc_lr: float = field(default=0.5, metadata={"help": "GPC base step size"})
    gpc_lr_schedule: Literal["constant", "inv_sqrt", "inv_t", "adagrad"] = field(
        default="adagrad", metadata={"help": "GPC step-size schedule (see GPCConfig)"})
    gpc_radius: float = field(default=20.0, metadata={
        "help": "GPC projection radius on ||M||_F; cancelling a velocity bias needs "
                "sum_i M_i ~ -1/dt, so this scales with rate_hz"})
    guard_state_norm_gain: float = positive(
        2.0, "fallback to LQR if |e| exceeds gain * max(|e| at reference change, floor)")
    guard_state_norm_floor: float = positive(0.5, "floor of the state-norm guard (m or rad)")
    guard_max_correction: float = positive(
        1.0, "fallback to LQR if |u_gpc - u_lqr| exceeds this times the speed limit")

    def __post_init__(self) -> None:
        if self.mode not in ("lqr", "gpc"):
            raise ConfigError(f"mode must be 'lqr' or 'gpc'; got {self.mode!r}")

    def gpc_config(self) -> GPCConfig:
        return GPCConfig(horizon=self.gpc_horizon, lr=self.gpc_lr,
                         lr_schedule=self.gpc_lr_schedule, radius=self.gpc_radius)


@_plain_dataclass
class TrackerOutput:
    """One control step's result.

    Attributes:
        u: (d,) command after saturation (velocity units of the plant).
        saturated: the command was scaled down.
        mode: effective mode ('lqr' or 'gpc').
        fallback_active: GPC was requested but the guard replaced it with LQR.
        fallback_reason: why ('' if none).
        stage_cost: e'Qe + u'Ru of this step.
        disturbance_norm: |w| of the last observed transition (model residual).
        state_norm: |e|.
    """

    u: np.ndarray
    saturated: bool
    mode: str
    fallback_active: bool
    fallback_reason: str
    stage_cost: float
    disturbance_norm: float
    state_norm: float


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    """Wrap radians into [-pi, pi)."""
    return (a + np.pi) % (2.0 * np.pi) - np.pi


class ErrorTracker:
    """LQR or GPC tracking of ``e_{k+1} = e_k + dt u_k + w_k`` with saturation and a guard.

    Args:
        q: (d,) diagonal state weights. r: (d,) diagonal command weights.
        dt: control period (s).
        limits: saturation groups ``[(indices, max_norm), ...]``.
        mode: 'lqr' or 'gpc'.
        config: the controller config (GPC and guard parameters).
        angle_dims: indices of error components that are angles (unwrapped across +-pi
            when forming the model residual).
    """

    def __init__(self, q: Sequence[float], r: Sequence[float], dt: float,
                 limits: Sequence[tuple[Sequence[int], float]], mode: str,
                 config: ControllerConfig, angle_dims: Sequence[int] = ()) -> None:
        d = len(q)
        if len(r) != d or d < 1:
            raise InputError(f"q and r must have the same length >= 1; got {len(q)} and {len(r)}")
        if not dt > 0:
            raise InputError(f"dt must be > 0; got {dt}")
        self.dim = d
        self.dt = float(dt)
        self.Q = np.diag(np.asarray(q, dtype=np.float64))
        self.R = np.diag(np.asarray(r, dtype=np.float64))
        A = np.eye(d)
        B = self.dt * np.eye(d)
        self.K, _ = dlqr(A, B, self.Q, self.R)
        self.requested_mode = mode
        self.config = config
        self.gpc = GPC(A, B, self.Q, self.R, config.gpc_config(), K=self.K) if mode == "gpc" else None
        self._limits = [(np.asarray(idx, dtype=int), float(lim)) for idx, lim in limits]
        self._angle = np.zeros(d, dtype=bool)
        self._angle[list(angle_dims)] = True
        self._prev_e: np.ndarray | None = None
        self._prev_u: np.ndarray | None = None
        self._e0_norm = 0.0
        self.fallback_reason = ""
        self.cumulative_cost = 0.0
        self._w_norm = 0.0

    @property
    def fallback_active(self) -> bool:
        return bool(self.fallback_reason)

    def reference_changed(self, e: np.ndarray) -> None:
        """A new goal/path: forget history, clear any fallback, re-arm the guard at |e|."""
        self._prev_e = None
        self._prev_u = None
        self._e0_norm = float(np.linalg.norm(e)) if np.all(np.isfinite(e)) else 0.0
        self.fallback_reason = ""
        if self.gpc is not None:
            self.gpc.reset(keep_policy=True)

    def interrupt(self) -> None:
        """The loop was broken (e-stop, stale state): the next step starts a fresh transition."""
        self._prev_e = None
        self._prev_u = None
        if self.gpc is not None:
            self.gpc.reset(keep_policy=True)

    def saturate(self, u: np.ndarray) -> tuple[np.ndarray, bool]:
        """Scale each limit group into its norm bound. Returns ``(u_sat, saturated)``."""
        out = u.copy()
        sat = False
        for idx, lim in self._limits:
            nrm = float(np.linalg.norm(out[idx]))
            if nrm > lim:
                out[idx] *= lim / nrm
                sat = True
        return out, sat

    def _limit_scale(self) -> float:
        return float(np.sqrt(sum(lim * lim * len(idx) for idx, lim in self._limits)))

    def _fallback(self, reason: str) -> None:
        self.fallback_reason = reason
        if self.gpc is not None:  # the learnt M is suspect: start again from M = 0 later
            self.gpc.reset(keep_policy=False)

    def step(self, e: np.ndarray) -> TrackerOutput:
        """One control step at tracking error ``e`` (d,).

        Raises:
            InputError: ``e`` has the wrong shape or non-finite entries (the caller must
                reject such measurements before they get here).
        """
        e = np.asarray(e, dtype=np.float64)
        if e.shape != (self.dim,) or not np.all(np.isfinite(e)):
            raise InputError(f"tracking error must be a finite ({self.dim},) vector; got {e}")
        if self._prev_e is not None:
            e_model = e.copy()
            if self._angle.any():  # continuous angle for the residual
                de = wrap_angle(e - self._prev_e)
                e_model[self._angle] = (self._prev_e + de)[self._angle]
            self._w_norm = float(np.linalg.norm(e_model - self._prev_e - self.dt * self._prev_u))
            if self.gpc is not None and not self.fallback_active:
                self.gpc.update(e_model, self._prev_u)
        u_lqr = -(self.K @ e)
        mode = "lqr"
        if self.gpc is not None and not self.fallback_active:
            u_gpc = self.gpc.get_action(e)
            e_norm = float(np.linalg.norm(e))
            bound = self.config.guard_state_norm_gain * max(self._e0_norm,
                                                            self.config.guard_state_norm_floor)
            corr = float(np.linalg.norm(u_gpc - u_lqr))
            if not np.all(np.isfinite(u_gpc)):
                self._fallback("GPC produced a non-finite action")
            elif e_norm > bound:
                self._fallback(f"state norm {e_norm:.3g} exceeds guard bound {bound:.3g} under GPC")
            elif corr > self.config.guard_max_correction * self._limit_scale():
                self._fallback(f"GPC correction {corr:.3g} exceeds "
                               f"{self.config.guard_max_correction:g} x speed limit")
            else:
                mode = "gpc"
                u_lqr = u_gpc
        u, sat = self.saturate(u_lqr)
        stage = float(e @ self.Q @ e + u @ self.R @ u)
        self.cumulative_cost += stage
        self._prev_e = e
        self._prev_u = u
        return TrackerOutput(u=u, saturated=sat, mode=mode, fallback_active=self.fallback_active,
                             fallback_reason=self.fallback_reason, stage_cost=stage,
                             disturbance_norm=self._w_norm, state_norm=float(np.linalg.norm(e)))


def base_tracker(config: ControllerConfig) -> ErrorTracker:
    """Tracker for a holonomic base: error (x m, y m, yaw rad) in the odom frame,
    command (vx m/s, vy m/s, wz rad/s) in the odom frame (rotate into the base frame to send)."""
    c = config
    return ErrorTracker([c.base_q_xy, c.base_q_xy, c.base_q_yaw],
                        [c.base_r_linear, c.base_r_linear, c.base_r_angular], 1.0 / c.rate_hz,
                        [([0, 1], c.max_linear_speed), ([2], c.max_angular_speed)], c.mode, c,
                        angle_dims=[2])


def arm_tracker(config: ControllerConfig, n_joints: int) -> ErrorTracker:
    """Tracker for ``n_joints`` velocity-commanded joints (error rad, command rad/s)."""
    c = config
    return ErrorTracker([c.arm_q] * n_joints, [c.arm_r] * n_joints, 1.0 / c.rate_hz,
                        [([j], c.max_joint_speed) for j in range(n_joints)], c.mode, c)


class PathFollower:
    """Waypoints ``(x, y, yaw)`` followed in order; the last one is held as the goal.

    The reference advances to the next waypoint once the base is within ``tolerance``
    (planar distance, m) of the current one, possibly skipping several in one step.

    Args:
        waypoints: (N, 3) references (m, m, rad) in the odometry frame, N >= 1.
        tolerance: distance (m) at which a waypoint other than the last counts as reached.

    Raises:
        InputError: empty or non-finite waypoints, or a tolerance that is not > 0.
    """

    def __init__(self, waypoints: Sequence[Sequence[float]] | np.ndarray, tolerance: float) -> None:
        wp = np.asarray(waypoints, dtype=np.float64).reshape(-1, 3) if len(waypoints) else None
        if wp is None or not np.all(np.isfinite(wp)):
            raise InputError("a path needs at least one finite (x, y, yaw) waypoint")
        if not (math.isfinite(tolerance) and tolerance > 0):
            raise InputError(f"waypoint tolerance must be a finite number > 0 (m); got {tolerance}")
        self.waypoints = wp
        self.tolerance = float(tolerance)
        self.index = 0

    @property
    def reference(self) -> np.ndarray:
        """(3,) the waypoint currently tracked."""
        return self.waypoints[self.index]

    @property
    def goal(self) -> np.ndarray:
        """(3,) the last waypoint (held once reached)."""
        return self.waypoints[-1]

    def error(self, pose: np.ndarray) -> np.ndarray:
        """(3,) tracking error ``pose - reference`` with the yaw wrapped into [-pi, pi)."""
        e = np.asarray(pose, dtype=np.float64) - self.reference
        e[2] = wrap_angle(e[2])
        return e

    def advance(self, pose: np.ndarray) -> np.ndarray:
        """Move past every reached waypoint (never past the last) and return the error.

        Args:
            pose: (3,) current base pose (x m, y m, yaw rad) in the waypoints' frame.

        Returns:
            (3,) tracking error to the (possibly new) reference, yaw wrapped.
        """
        e = self.error(pose)
        while (self.index < len(self.waypoints) - 1
               and float(np.hypot(e[0], e[1])) < self.tolerance):
            self.index += 1
            e = self.error(pose)
        return e


class TrajectoryFollower:
    """A timed base reference with velocity feedforward (a stamped path).

    At time ``now`` the reference is ``sample(now - t0 - paused)``; the controller commands
    the feedforward plus its feedback on ``pose - reference``, so a pure tracking lag of the
    feedback loop (the reference moving away at speed) is cancelled by the feedforward. While
    the base lags more than ``hold_error_m`` behind the reference (a push, saturation), the
    reference clock pauses and the feedforward is zero, so the reference cannot run away.

    Args:
        sample: ``tau -> (pose (3,), velocity (3,))``, the reference and feedforward
            ``(vx, vy, wz)`` in the odometry frame at ``tau`` s from the start (clamped:
            after the end the last pose, zero velocity), e.g. ``TimedPath.sample``.
        duration: s from the first to the last reference.
        t0: clock time (s) of the first reference.
        goal: (3,) the last reference, held after ``duration``.
        hold_error_m: planar lag (m) above which the reference clock pauses.

    Raises:
        InputError: a non-finite duration, t0 or goal, or a hold error that is not > 0.
    """

    def __init__(self, sample: Callable[[float], tuple[np.ndarray, np.ndarray]], duration: float,
                 t0: float, goal: Sequence[float], hold_error_m: float = 0.3) -> None:
        goal_arr = np.asarray(goal, dtype=np.float64).reshape(3)
        if not (math.isfinite(duration) and duration >= 0 and math.isfinite(t0)
                and np.all(np.isfinite(goal_arr))):
            raise InputError("a trajectory needs a finite duration >= 0, start time and goal")
        if not (math.isfinite(hold_error_m) and hold_error_m > 0):
            raise InputError(f"hold_error_m must be a finite number > 0; got {hold_error_m}")
        self._sample = sample
        self.duration = float(duration)
        self.t0 = float(t0)
        self.goal = goal_arr
        self.hold_error_m = float(hold_error_m)
        self.paused = 0.0
        self._last_now: float | None = None

    def tau(self, now: float) -> float:
        """Reference time (s from the start, pauses excluded) at clock time ``now``."""
        return now - self.t0 - self.paused

    def finished(self, now: float) -> bool:
        return self.tau(now) >= self.duration

    def step(self, now: float, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Error ``pose - reference`` (yaw wrapped) and the feedforward at clock time ``now``.

        Args:
            now: clock time (s), non-decreasing between calls.
            pose: (3,) base pose (x, y, yaw) in the odometry frame.

        Returns:
            ``(e (3,), u_ff (3,))``; ``u_ff`` is zero while paused and after the end.
        """
        if self._last_now is not None and now < self._last_now:
            now = self._last_now  # a clock step back (sim reset) must not rewind the reference
        dt = 0.0 if self._last_now is None else now - self._last_now
        self._last_now = now
        ref, u_ff = self._sample(max(0.0, self.tau(now)))
        e = np.asarray(pose, dtype=np.float64) - ref
        e[2] = wrap_angle(e[2])
        if float(np.hypot(e[0], e[1])) > self.hold_error_m and not self.finished(now):
            self.paused += dt
            return e, np.zeros(3)
        return e, np.asarray(u_ff, dtype=np.float64)
