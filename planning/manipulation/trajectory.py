"""Time parameterisation of joint paths: synchronised trapezoids along the piecewise-linear path.

Each straight joint segment ``a -> b`` of a path is executed as ``q(t) = a + u(t) (b - a) / L``
(``L = |b - a|``) with one trapezoidal profile of the path length ``u`` shared by all joints,
so the arm stays exactly on the collision-checked segments. A segment's limits are the
tightest over its joints: ``u'max = min_i v_i L / |d_i|`` and ``u''max = min_i a_i L / |d_i|``.

The speed through an interior waypoint (a *junction*) is not forced to zero: the joint
velocity turns from ``w d_in / L_in`` to ``w d_out / L_out`` there, and ``w`` is the largest
speed whose per-joint velocity jump an acceleration of ``a_i`` absorbs within
``junction_dt_s`` (the look-ahead of CNC and 3-D printer motion planners: a straight
Cartesian approach of many short nearly collinear segments runs through at speed, a sharp
corner of a sampling planner's path is taken nearly at rest; ``junction_dt_s = 0`` stops at
every waypoint). A forward and a backward pass bound every junction speed by what the
acceleration limit reaches over the neighbouring segments; the path starts and ends at rest.
"""
from __future__ import annotations

from dataclasses import dataclass as _plain_dataclass

import numpy as np

from katazuke.config import dataclass, in_range, non_negative, positive
from katazuke.errors import InputError

__all__ = ["TrajectoryConfig", "JointTrajectory", "time_parameterize"]


@dataclass(frozen=True)
class TrajectoryConfig:
    """Limits of :func:`time_parameterize`."""

    velocity_scale: float = in_range(0.5, "fraction of the URDF velocity limits used", 1e-3, 1.0)
    acceleration_rad_s2: float = positive(3.0, "joint acceleration limit before scaling "
                                               "(rad/s^2, every joint)")
    acceleration_scale: float = in_range(0.5, "fraction of acceleration_rad_s2 used", 1e-3, 1.0)
    sample_dt_s: float = positive(0.05, "spacing of the points of JointTrajectory.resample (s)")
    junction_dt_s: float = non_negative(0.1, "a waypoint is passed at the speed whose joint "
                                             "velocity jump the acceleration limit absorbs in "
                                             "this time (s); 0 stops at every waypoint")


@_plain_dataclass(frozen=True)
class JointTrajectory:
    """A timed joint trajectory (the arrays of a ``trajectory_msgs/JointTrajectory``).

    Attributes:
        joint_names: ``(n,)`` names.
        times: ``(N,)`` seconds from the start, increasing, ``times[0] = 0``.
        positions: ``(N, n)`` rad.
        velocities: ``(N, n)`` rad/s.
        accelerations: ``(N, n)`` rad/s^2 (the value held after each point; 0 at the end).
        waypoints: ``(K, n)`` the input path (repeated rows dropped).
        seg_times: ``(K,)`` when each waypoint is reached (s).
        seg_params: ``(K - 1, 5)`` each segment's profile of its path length ``u``:
            ``(length L, entry speed, peak speed, exit speed, acceleration)`` (rad, rad/s,
            rad/s^2 in the joint-space norm).
    """

    joint_names: tuple[str, ...]
    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    accelerations: np.ndarray
    waypoints: np.ndarray
    seg_times: np.ndarray
    seg_params: np.ndarray

    @property
    def duration_s(self) -> float:
        """Total duration (s)."""
        return float(self.seg_times[-1])

    def sample(self, t) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact state at times ``t`` ``(T,)`` (clamped to ``[0, duration]``).

        Returns:
            ``(positions (T, n), velocities (T, n), accelerations (T, n))``.
        """
        t = np.clip(np.atleast_1d(np.asarray(t, dtype=np.float64)), 0.0, self.duration_s)
        k = np.clip(np.searchsorted(self.seg_times, t, side="right") - 1, 0,
                    len(self.seg_params) - 1)
        tau = t - self.seg_times[k]
        L, w0, vp, w1, A = self.seg_params[k].T
        u, ud, udd = _profile(tau, L, w0, vp, w1, A)
        d = self.waypoints[k + 1] - self.waypoints[k]
        inv = np.where(L > 0, 1.0 / np.where(L > 0, L, 1.0), 0.0)
        s = np.clip(u * inv, 0.0, 1.0)
        return (self.waypoints[k] + s[:, None] * d, (ud * inv)[:, None] * d,
                (udd * inv)[:, None] * d)

    def resample(self, dt_s: float) -> "JointTrajectory":
        """The same motion with points every ``dt_s`` seconds plus every waypoint."""
        t = np.union1d(np.arange(0.0, self.duration_s, dt_s), self.seg_times)
        p, v, a = self.sample(t)
        return JointTrajectory(self.joint_names, t, p, v, a, self.waypoints, self.seg_times,
                               self.seg_params)


def _phases(L, w0, vp, w1, A):
    """Durations of the acceleration, cruise and deceleration phases (elementwise)."""
    A = np.where(A > 0, A, 1.0)
    ta = np.maximum(vp - w0, 0.0) / A
    td = np.maximum(vp - w1, 0.0) / A
    du = L - (vp ** 2 - w0 ** 2) / (2 * A) - (vp ** 2 - w1 ** 2) / (2 * A)
    tc = np.where(vp > 0, np.maximum(du, 0.0) / np.where(vp > 0, vp, 1.0), 0.0)
    return ta, tc, td


def _profile(tau, L, w0, vp, w1, A):
    """Path length ``u, u', u''`` at ``tau`` into trapezoids ``w0 -> vp -> w1`` (elementwise)."""
    tau = np.asarray(tau, dtype=np.float64)
    ta, tc, td = _phases(L, w0, vp, w1, A)
    T = ta + tc + td
    tau = np.clip(tau, 0.0, T)
    ua = w0 * ta + 0.5 * A * ta ** 2
    uc = ua + vp * tc
    t2 = tau - ta - tc
    u = np.where(tau < ta, w0 * tau + 0.5 * A * tau ** 2,
                 np.where(t2 <= 0, ua + vp * (tau - ta), uc + vp * t2 - 0.5 * A * t2 ** 2))
    ud = np.where(tau < ta, w0 + A * tau, np.where(t2 <= 0, vp, vp - A * t2))
    udd = np.where(tau < ta, A, np.where(t2 <= 0, 0.0, -A))
    udd = np.where(tau >= T, 0.0, udd)
    return np.clip(u, 0.0, L), ud, udd


def time_parameterize(path, velocity_limits, joint_names=None,
                      config: TrajectoryConfig | None = None) -> JointTrajectory:
    """Time a joint path with synchronised trapezoids per segment, through its waypoints at the
    junction speeds of the module docstring (at rest with ``junction_dt_s = 0``).

    Args:
        path: ``(K, n)`` waypoints (rad), K >= 1; repeated waypoints are dropped.
        velocity_limits: ``(n,)`` joint velocity limits (rad/s), e.g. ``ArmModel.velocity_limits``.
        joint_names: ``(n,)`` names (default ``joint_0 ...``).
        config: :class:`TrajectoryConfig`.

    Returns:
        A :class:`JointTrajectory` with one point per waypoint and per phase change
        (acceleration end, deceleration start); :meth:`JointTrajectory.resample` densifies it.

    Raises:
        InputError: malformed path or limits.
    """
    cfg = config or TrajectoryConfig()
    P = np.asarray(path, dtype=np.float64)
    if P.ndim != 2 or len(P) < 1 or not np.all(np.isfinite(P)):
        raise InputError(f"time_parameterize: path must be finite (K, n) with K >= 1; got "
                         f"{P.shape}")
    n = P.shape[1]
    v = np.asarray(velocity_limits, dtype=np.float64) * cfg.velocity_scale
    if v.shape != (n,) or not np.all(v > 0):
        raise InputError(f"time_parameterize: velocity_limits must be ({n},) positive")
    a = np.full(n, cfg.acceleration_rad_s2 * cfg.acceleration_scale)
    names = tuple(joint_names) if joint_names is not None else tuple(f"joint_{i}" for i in range(n))
    if len(names) != n:
        raise InputError(f"time_parameterize: {len(names)} joint names for {n} joints")
    keep = np.concatenate([[True], np.any(np.abs(np.diff(P, axis=0)) > 1e-12, axis=1)])
    P = P[keep]
    if len(P) == 1:
        P = np.vstack([P, P])
    D = np.diff(P, axis=0)
    L = np.linalg.norm(D, axis=1)
    absd = np.abs(D)
    with np.errstate(divide="ignore", invalid="ignore"):
        V = np.where(L > 0, np.min(np.where(absd > 0, v * L[:, None] / absd, np.inf), axis=1), 0.0)
        A = np.where(L > 0, np.min(np.where(absd > 0, a * L[:, None] / absd, np.inf), axis=1), 1.0)
    # junction speeds: the joint velocity jump w |d_in/L_in - d_out/L_out|_i <= a_i dt
    W = np.zeros(len(P))
    if cfg.junction_dt_s > 0:
        for k in range(1, len(P) - 1):
            if L[k - 1] <= 0 or L[k] <= 0:
                continue
            jump = np.abs(D[k - 1] / L[k - 1] - D[k] / L[k])
            lim = np.min(np.where(jump > 1e-12, a * cfg.junction_dt_s / np.maximum(jump, 1e-12),
                                  np.inf))
            W[k] = min(lim, V[k - 1], V[k])
    for k in range(len(L)):                       # forward: what accelerating reaches
        W[k + 1] = min(W[k + 1], np.sqrt(W[k] ** 2 + 2 * A[k] * L[k]))
    for k in range(len(L) - 1, -1, -1):           # backward: what braking allows
        W[k] = min(W[k], np.sqrt(W[k + 1] ** 2 + 2 * A[k] * L[k]))
    peak = np.minimum(V, np.sqrt(np.maximum(A * L + 0.5 * (W[:-1] ** 2 + W[1:] ** 2), 0.0)))
    peak = np.maximum(peak, np.maximum(W[:-1], W[1:]))
    params = np.column_stack([L, W[:-1], peak, W[1:], A])
    ta, tc, td = _phases(L, W[:-1], peak, W[1:], A)
    seg_times = np.concatenate([[0.0], np.cumsum(ta + tc + td)])
    t0 = seg_times[:-1]
    t = np.unique(np.concatenate([seg_times, t0 + ta, t0 + ta + tc]))
    traj = JointTrajectory(names, t, np.zeros((len(t), n)), np.zeros((len(t), n)),
                           np.zeros((len(t), n)), P, seg_times, params)
    p, vel, acc = traj.sample(t)
    return JointTrajectory(names, t, p, vel, acc, P, seg_times, params)
