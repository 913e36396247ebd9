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
from typing import Literal, Sequence

import numpy as np

from katazuke.config import dataclass, field
from katazuke.control.gpc import GPC, GPCConfig
from katazuke.control.lqr import dlqr
from katazuke.errors import ConfigError, InputError

__all__ = ["ControllerConfig", "ErrorTracker", "TrackerOutput", "wrap_angle", "yaw_from_quaternion",
           "base_tracker", "arm_tracker"]


@dataclass(frozen=True)
class ControllerConfig:
    """Parameters of the base/arm tracking controller (one ROS parameter per field)."""

    mode: Literal["lqr", "gpc"] = field(default="lqr", metadata={
        "help": "lqr: u = -K e; gpc: LQR plus the online disturbance-action term"})
    rate_hz: float = field(default=20.0, metadata={"help": "control loop rate (Hz)"})
    odom_timeout_s: float = field(default=0.5, metadata={
        "help": "watchdog: odometry older than this (s, node clock) stops the base"})
    joint_state_timeout_s: float = field(default=0.5, metadata={
        "help": "watchdog: joint states older than this (s) stop the arm"})
    base_q_xy: float = field(default=1.0, metadata={"help": "LQR weight on x/y error (1/m^2)"})
    base_q_yaw: float = field(default=0.5, metadata={"help": "LQR weight on yaw error (1/rad^2)"})
    base_r_linear: float = field(default=0.05, metadata={
        "help": "LQR weight on linear velocity commands (s^2/m^2)"})
    base_r_angular: float = field(default=0.05, metadata={
        "help": "LQR weight on yaw-rate commands (s^2/rad^2)"})
    max_linear_speed: float = field(default=0.5, metadata={
        "help": "saturation of the planar speed |(vx, vy)| (m/s)"})
    max_angular_speed: float = field(default=1.0, metadata={"help": "saturation of |wz| (rad/s)"})
    arm_q: float = field(default=1.0, metadata={"help": "LQR weight on joint error (1/rad^2)"})
    arm_r: float = field(default=0.05, metadata={"help": "LQR weight on joint speed (s^2/rad^2)"})
    max_joint_speed: float = field(default=1.0, metadata={
        "help": "saturation of each joint speed command (rad/s)"})
    path_waypoint_tolerance: float = field(default=0.15, metadata={
        "help": "a path waypoint counts as reached within this distance (m)"})
    gpc_horizon: int = field(default=10, metadata={"help": "GPC memory H (steps)"})
    gpc_lr: float = field(default=0.5, metadata={"help": "GPC base step size"})
    gpc_lr_schedule: Literal["constant", "inv_sqrt", "inv_t", "adagrad"] = field(
        default="adagrad", metadata={"help": "GPC step-size schedule (see GPCConfig)"})
    gpc_radius: float = field(default=20.0, metadata={
        "help": "GPC projection radius on ||M||_F; cancelling a velocity bias needs "
                "sum_i M_i ~ -1/dt, so this scales with rate_hz"})
    guard_state_norm_gain: float = field(default=2.0, metadata={
        "help": "fallback to LQR if |e| exceeds gain * max(|e| at reference change, floor)"})
    guard_state_norm_floor: float = field(default=0.5, metadata={
        "help": "floor of the state-norm guard (m or rad)"})
    guard_max_correction: float = field(default=1.0, metadata={
        "help": "fallback to LQR if |u_gpc - u_lqr| exceeds this times the speed limit"})

    def __post_init__(self) -> None:
        positive = ["rate_hz", "odom_timeout_s", "joint_state_timeout_s", "base_q_xy", "base_q_yaw",
                    "base_r_linear", "base_r_angular", "max_linear_speed", "max_angular_speed",
                    "arm_q", "arm_r", "max_joint_speed", "path_waypoint_tolerance",
                    "guard_state_norm_gain", "guard_state_norm_floor", "guard_max_correction"]
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a finite number > 0; got {v!r}")
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


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Yaw (rad) of an xyzw quaternion (rotation about +z after projecting out roll/pitch)."""
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


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
