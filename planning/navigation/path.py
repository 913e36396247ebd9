"""Time parameterisation of base paths: stamps and velocity feedforward for the controller.

:func:`time_parameterize` turns ``(N, 3)`` ``(x, y, yaw)`` poses into a :class:`TimedPath`: a
trapezoidal speed profile along the path (``a_max`` from rest to rest, or from ``v_start``),
capped at ``v_max``, at ``sqrt(a_lat_max / curvature)`` in corners, and so that the yaw rate on
every segment stays within ``w_max`` (pure rotations get a trapezoidal ``w`` profile with
``alpha_max``). Each pose gets a time stamp (from 0 at the first pose) and the feedforward twist
``(vx, vy, wz)`` **in the path's frame** (``map`` / ``odom``, the frame of ``control/tracking.py``'s
world-frame command ``u`` before ``world_to_base_twist``); :meth:`TimedPath.velocity_base` gives
it in ``base_link`` at each pose.

For ``nav_msgs/Path``: pose ``i`` goes into ``poses[i].pose`` with
``poses[i].header.stamp = t0 + t[i]``. A consumer can rebuild the feedforward from such a
stamped path alone with :meth:`TimedPath.from_stamped`, and evaluate the reference and the
feedforward at its tick time with :meth:`TimedPath.sample`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass as _plain_dataclass

import numpy as np

from katazuke.config import dataclass, positive
from katazuke.errors import InputError
from katazuke.planning.navigation.global_planner import wrap_angle

__all__ = ["TimingConfig", "TimedPath", "time_parameterize"]


@dataclass(frozen=True)
class TimingConfig:
    """Speed limits of :func:`time_parameterize` (defaults below the base's limits in
    docs/interfaces.md: 0.6 m/s, 1.5 rad/s)."""

    v_max: float = positive(0.5, "linear speed limit, m/s")
    w_max: float = positive(1.0, "yaw rate limit, rad/s")
    a_max: float = positive(0.5, "linear acceleration limit along the path, m/s^2")
    alpha_max: float = positive(1.5, "yaw acceleration limit of pure rotations, rad/s^2")
    a_lat_max: float = positive(0.3, "lateral (centripetal) acceleration limit in corners, m/s^2")


@_plain_dataclass
class TimedPath:
    """A path with time stamps and feedforward velocities.

    Attributes:
        poses: ``(N, 3)`` ``(x, y, yaw)`` (m, m, rad) in the path's frame.
        t: ``(N,)`` seconds from the first pose, non-decreasing, ``t[0] = 0``.
        velocity: ``(N, 3)`` feedforward ``(vx, vy, wz)`` in the path's frame (m/s, m/s,
            rad/s) at each pose.
        speed: ``(N,)`` planar speed ``|(vx, vy)|`` at each pose, m/s.
    """

    poses: np.ndarray
    t: np.ndarray
    velocity: np.ndarray
    speed: np.ndarray

    @property
    def duration(self) -> float:
        """Time from the first to the last pose, s."""
        return float(self.t[-1])

    def velocity_base(self) -> np.ndarray:
        """``(N, 3)`` the feedforward in ``base_link`` at each pose (``vx`` forward)."""
        yaw = self.poses[:, 2]
        c, s = np.cos(yaw), np.sin(yaw)
        vx, vy, wz = self.velocity.T
        return np.column_stack([c * vx + s * vy, -s * vx + c * vy, wz])

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Reference pose and feedforward at time ``t`` (s from the start; clamped to the path).

        Returns:
            ``(pose (3,), velocity (3,))`` interpolated linearly between stamps (yaw along the
            shorter arc); after the end: the last pose and zero velocity.
        """
        if not math.isfinite(t):
            raise InputError(f"sample(t): t must be finite; got {t}")
        if t >= self.t[-1]:
            return self.poses[-1].copy(), np.zeros(3)
        if t <= 0:
            return self.poses[0].copy(), self.velocity[0].copy()
        i = int(np.searchsorted(self.t, t, side="right") - 1)
        dt = self.t[i + 1] - self.t[i]
        a = (t - self.t[i]) / dt if dt > 0 else 1.0
        p0, p1 = self.poses[i], self.poses[i + 1]
        pose = p0 + a * (p1 - p0)
        pose[2] = float(wrap_angle(p0[2] + a * wrap_angle(p1[2] - p0[2])))
        vel = self.velocity[i] + a * (self.velocity[i + 1] - self.velocity[i])
        return pose, vel

    @classmethod
    def from_stamped(cls, poses, t) -> "TimedPath":
        """Rebuild the feedforward of a stamped path (e.g. a received ``nav_msgs/Path``).

        Velocity at each interior pose is the average of its two segments' velocities (central
        difference), at the ends the adjacent segment's velocity when the stamps say the path
        starts or ends moving, else 0.

        Args:
            poses: ``(N, 3)`` ``(x, y, yaw)``.
            t: ``(N,)`` stamps (s, any origin), non-decreasing.
        """
        P = np.asarray(poses, np.float64).reshape(-1, 3)
        T = np.asarray(t, np.float64).ravel()
        if len(P) < 1 or len(T) != len(P) or not (np.all(np.isfinite(P))
                                                 and np.all(np.isfinite(T))):
            raise InputError("from_stamped needs N >= 1 finite poses and N finite stamps")
        if np.any(np.diff(T) < 0):
            raise InputError("from_stamped: stamps must be non-decreasing")
        T = T - T[0]
        if len(P) == 1:
            return cls(P.copy(), T, np.zeros((1, 3)), np.zeros(1))
        d = np.diff(P, axis=0)
        d[:, 2] = wrap_angle(d[:, 2])
        dt = np.diff(T)
        seg = np.where(dt[:, None] > 1e-9, d / np.maximum(dt, 1e-9)[:, None], 0.0)
        v = np.zeros_like(P)
        v[1:-1] = 0.5 * (seg[:-1] + seg[1:])
        speed = np.hypot(v[:, 0], v[:, 1])
        return cls(P.copy(), T, v, speed)


def _rest_to_rest_time(dist: float, v_max: float, a_max: float) -> float:
    """Time to cover ``dist`` from rest to rest under ``v_max``/``a_max`` (trapezoid)."""
    if dist <= 0:
        return 0.0
    if dist <= v_max * v_max / a_max:
        return 2.0 * math.sqrt(dist / a_max)
    return dist / v_max + v_max / a_max


def _segment_time(ds: float, v0: float, v1: float, v_max: float, a_max: float) -> float:
    """Least time over ``ds`` from speed ``v0`` to ``v1`` (both reachable: the passes made
    them so) under ``v_max`` / ``a_max``: accelerate, cruise if the peak is capped, brake.

    Between two slow ends the base speeds up in the segment: ``2 ds / (v0 + v1)`` (constant
    acceleration) would take 10^6 s over 5 cm starting from a creeping 1e-7 m/s odometry
    speed, which the navigator once planned."""
    v0, v1 = min(v0, v_max), min(v1, v_max)
    peak = min(v_max, math.sqrt(max(0.0, (2.0 * a_max * ds + v0 * v0 + v1 * v1) / 2.0)))
    if peak <= 1e-12:
        return 0.0
    d_acc = max(0.0, (peak * peak - v0 * v0) / (2.0 * a_max))
    d_dec = max(0.0, (peak * peak - v1 * v1) / (2.0 * a_max))
    cruise = max(0.0, ds - d_acc - d_dec)
    return (peak - v0) / a_max + (peak - v1) / a_max + cruise / peak


def time_parameterize(poses, config: TimingConfig | None = None,
                      v_start: float = 0.0) -> TimedPath:
    """Stamp a path with a trapezoidal, curvature-limited speed profile.

    Args:
        poses: ``(N, 3)`` ``(x, y, yaw)`` (m, m, rad), N >= 1 (e.g. ``GlobalPath.poses``).
        config: limits.
        v_start: speed at the first pose, m/s (0 from rest; capped at the limits there).

    Returns:
        :class:`TimedPath` ending at rest.

    Raises:
        InputError: malformed poses or a negative/non-finite ``v_start``.
    """
    cfg = config or TimingConfig()
    P = np.asarray(poses, np.float64)
    if P.ndim != 2 or P.shape[1] != 3 or len(P) < 1 or not np.all(np.isfinite(P)):
        raise InputError(f"poses must be a finite (N, 3) array of (x, y, yaw), N >= 1; got "
                         f"shape {P.shape}")
    if not (math.isfinite(v_start) and v_start >= 0):
        raise InputError(f"v_start must be a finite speed >= 0 (m/s); got {v_start}")
    n = len(P)
    if n == 1:
        return TimedPath(P.copy(), np.zeros(1), np.zeros((1, 3)), np.zeros(1))
    dxy = np.diff(P[:, :2], axis=0)
    ds = np.linalg.norm(dxy, axis=1)
    dyaw = wrap_angle(np.diff(P[:, 2]))
    moving = ds > 1e-6
    heading = np.arctan2(dxy[:, 1], dxy[:, 0])
    # speed limits at the poses: v_max, corners, and the yaw rate over the adjacent segments
    vlim = np.full(n, cfg.v_max)
    for i in range(1, n - 1):
        if moving[i - 1] and moving[i]:
            turn = abs(float(wrap_angle(heading[i] - heading[i - 1])))
            kappa = turn / (0.5 * (ds[i - 1] + ds[i]))
            if kappa > 1e-9:
                vlim[i] = min(vlim[i], math.sqrt(cfg.a_lat_max / kappa))
        else:
            vlim[i] = 0.0   # a pure rotation (or a zero-length step) next to this pose
    with np.errstate(divide="ignore"):
        seg_v = np.where(np.abs(dyaw) > 1e-9, cfg.w_max * ds / np.abs(dyaw), np.inf)
    vlim[:-1] = np.minimum(vlim[:-1], seg_v)
    vlim[1:] = np.minimum(vlim[1:], seg_v)
    v = vlim.copy()
    v[0] = min(v[0], v_start)
    v[-1] = 0.0
    for i in range(n - 1):
        v[i + 1] = min(v[i + 1], math.sqrt(v[i] ** 2 + 2 * cfg.a_max * ds[i]))
    for i in range(n - 2, -1, -1):
        v[i] = min(v[i], math.sqrt(v[i + 1] ** 2 + 2 * cfg.a_max * ds[i]))
    dt = np.zeros(n - 1)
    for i in range(n - 1):
        if not moving[i]:
            tt = 0.0
        else:
            vm = max(min(cfg.v_max, seg_v[i]), 1e-9)
            # constant acceleration between the poses' speeds (what sampling interpolates);
            # between two (nearly) resting ends that would crawl: speed up in the segment
            slowest = _rest_to_rest_time(ds[i], vm, cfg.a_max)
            mean = v[i] + v[i + 1]
            tt = 2.0 * ds[i] / mean if mean > 0 and 2.0 * ds[i] / mean <= slowest else \
                _segment_time(ds[i], v[i], v[i + 1], vm, cfg.a_max)
        t_rot = (abs(dyaw[i]) / cfg.w_max if moving[i]
                 else _rest_to_rest_time(abs(dyaw[i]), cfg.w_max, cfg.alpha_max))
        dt[i] = max(tt, t_rot)
    t = np.concatenate([[0.0], np.cumsum(dt)])
    # feedforward: speed along the direction of travel; yaw rate from the segments' rates
    unit = np.zeros((n - 1, 2))
    unit[moving] = dxy[moving] / ds[moving, None]
    u_pose = np.zeros((n, 2))
    u_pose[:-1] += unit
    u_pose[1:] += unit
    norm = np.linalg.norm(u_pose, axis=1)
    u_pose = np.where(norm[:, None] > 1e-9, u_pose / np.maximum(norm, 1e-9)[:, None], 0.0)
    w_seg = np.where(dt > 1e-9, dyaw / np.maximum(dt, 1e-9), 0.0)
    wz = np.zeros(n)
    wz[1:-1] = 0.5 * (w_seg[:-1] + w_seg[1:])
    if v[0] > 0:
        wz[0] = w_seg[0]
    vel = np.column_stack([u_pose * v[:, None], wz])
    return TimedPath(P.copy(), t, vel, v.copy())
