"""Time parameterisation of joint paths: synchronised trapezoidal profiles per segment.

Each straight joint segment ``a -> b`` of a path is executed as ``q(t) = a + s(t) (b - a)``
with one trapezoidal (or triangular) profile ``s: 0 -> 1`` shared by all joints, starting
and ending at rest. The path parameter's limits are the tightest over the joints:
``s'max = min_i v_i / |d_i|`` and ``s''max = min_i a_i / |d_i|``, so every joint respects its
velocity and acceleration limit and all joints arrive together (the arm stays on the
checked straight segment). Stopping at every waypoint costs time but keeps the executed
path exactly the collision-checked one.
"""
from __future__ import annotations

from dataclasses import dataclass as _plain_dataclass

import numpy as np

from katazuke.config import dataclass, in_range, positive
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
        seg_params: ``(K - 1, 3)`` ``(s'max, s''max, t_accel)`` of each segment's profile.
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
        vmax, amax, ta = self.seg_params[k].T
        T = self.seg_times[k + 1] - self.seg_times[k]
        s, sd, sdd = _trapezoid(tau, T, vmax, amax, ta)
        d = self.waypoints[k + 1] - self.waypoints[k]
        return (self.waypoints[k] + s[:, None] * d, sd[:, None] * d, sdd[:, None] * d)

    def resample(self, dt_s: float) -> "JointTrajectory":
        """The same motion with points every ``dt_s`` seconds plus every waypoint."""
        t = np.union1d(np.arange(0.0, self.duration_s, dt_s), self.seg_times)
        p, v, a = self.sample(t)
        return JointTrajectory(self.joint_names, t, p, v, a, self.waypoints, self.seg_times,
                               self.seg_params)


def _trapezoid(tau, T, vmax, amax, ta):
    """Path parameter ``s, s', s''`` of rest-to-rest trapezoids (elementwise arrays)."""
    tau = np.asarray(tau, dtype=np.float64)
    acc = tau < ta
    dec = tau > T - ta
    s = np.where(acc, 0.5 * amax * tau ** 2,
                 np.where(dec, 1.0 - 0.5 * amax * (T - tau) ** 2, amax * ta * (tau - ta / 2)))
    sd = np.where(acc, amax * tau, np.where(dec, amax * (T - tau), amax * ta))
    sdd = np.where(acc, amax, np.where(dec, -amax, 0.0))
    sdd = np.where(tau >= T, 0.0, sdd)
    return np.clip(s, 0.0, 1.0), sd, sdd


def time_parameterize(path, velocity_limits, joint_names=None,
                      config: TrajectoryConfig | None = None) -> JointTrajectory:
    """Time a joint path with synchronised rest-to-rest trapezoids per segment.

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
    seg_times = [0.0]
    params = []
    for q0, q1 in zip(P[:-1], P[1:]):
        d = np.abs(q1 - q0)
        if not np.any(d > 0):
            params.append((1.0, 1.0, 0.0))
            seg_times.append(seg_times[-1])
            continue
        nz = d > 0
        sv = float(np.min(v[nz] / d[nz]))
        sa = float(np.min(a[nz] / d[nz]))
        ta = sv / sa
        if sa * ta * ta >= 1.0:         # triangular: the peak speed is never reached
            ta = float(np.sqrt(1.0 / sa))
            sv = sa * ta
            T = 2 * ta
        else:
            T = 1.0 / sv + ta
        params.append((sv, sa, ta))
        seg_times.append(seg_times[-1] + T)
    seg_times = np.array(seg_times)
    params = np.array(params)
    knots = [seg_times[:1]]
    for k, (sv, sa, ta) in enumerate(params):
        t0, t1 = seg_times[k], seg_times[k + 1]
        knots.append(np.array([t0 + ta, t1 - ta, t1]))
    t = np.unique(np.concatenate(knots))
    traj = JointTrajectory(names, t, np.zeros((len(t), n)), np.zeros((len(t), n)),
                           np.zeros((len(t), n)), P, seg_times, params)
    p, vel, acc = traj.sample(t)
    return JointTrajectory(names, t, p, vel, acc, P, seg_times, params)
