"""Rigid-body geometry shared by every layer: quaternions, rotations, poses, yaw.

The one home of rotation <-> quaternion code in Katazuke (libraries, core and nodes all
import it; it imports only numpy, ``numpy-quaternion`` and :mod:`katazuke.errors`).

Conventions:
    * Quaternions are ``xyzw`` arrays ``(..., 4)`` (ROS messages and PyBullet order),
      ``w`` last. Functions that return one pick the sign with ``w >= 0``.
    * Rotations are ``(..., 3, 3)`` float64 matrices, poses ``(..., 4, 4)`` homogeneous
      matrices. ``T_a_b`` maps points expressed in frame ``b`` into frame ``a``.
    * Angles are radians, lengths metres.

Backend: the design card names **numpy-quaternion** (PyPI ``numpy-quaternion``, imported as
``quaternion``); it installs cleanly as a wheel beside numpy 2.4 / Python 3.11, so the
quaternion <-> matrix conversions and slerp go through it. Its order is ``wxyz``; the swap to
our ``xyzw`` happens here and nowhere else. It is imported on first use (not at import of
this module) because importing it pulls in ``scipy.interpolate`` (~0.3 s), which the
libraries that only need ``look_at`` or ``rotation_z`` should not pay for.
Matrix -> quaternion uses its vectorised Markley branch (``nonorthogonal=False``); the
default Bar-Itzhack branch runs one eigen-decomposition per matrix in a Python loop.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from katazuke.errors import InputError

__all__ = ["normalize_quaternion", "quat_to_matrix", "matrix_to_quat", "pose_to_matrix",
           "matrix_to_pose", "yaw_from_quaternion", "yaw_from_matrix", "yaw_to_quat",
           "rotation_z", "se2_to_matrix", "look_at", "world_to_base_twist", "slerp"]


@functools.cache
def _qlib() -> Any:
    import quaternion  # numpy-quaternion; see the module docstring for why it is lazy

    return quaternion


def normalize_quaternion(q_xyzw: Any) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` float64 xyzw from any non-zero, finite ones.

    Args:
        q_xyzw: ``(..., 4)`` quaternions, ``xyzw``; need not be unit length.

    Returns:
        ``(..., 4)`` float64 unit quaternions (the sign is kept).

    Raises:
        InputError: the last axis is not 4 long, or a quaternion is zero or not finite.
    """
    q = np.asarray(q_xyzw, dtype=np.float64)
    if q.ndim == 0 or q.shape[-1] != 4:
        raise InputError(f"a quaternion is 4 numbers x, y, z, w (shape (..., 4)); got shape {q.shape}")
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    bad = ~np.isfinite(n) | (n < 1e-12)
    if np.any(bad):
        first = q[np.broadcast_to(bad, q.shape)].reshape(-1, 4)[0]
        raise InputError(f"quaternion {first.tolist()} (xyzw) is zero or not finite: it has no "
                         "rotation; send a unit quaternion such as [0, 0, 0, 1] for identity")
    return q / n


def quat_to_matrix(q_xyzw: Any) -> np.ndarray:
    """Rotation matrices from quaternions (normalised first).

    Args:
        q_xyzw: ``(..., 4)`` quaternions, ``xyzw``.

    Returns:
        ``(..., 3, 3)`` float64 rotation matrices; ``q`` and ``-q`` give the same one.

    Raises:
        InputError: a quaternion is zero or not finite.
    """
    q = normalize_quaternion(q_xyzw)
    ql = _qlib()
    return ql.as_rotation_matrix(ql.from_float_array(q[..., [3, 0, 1, 2]]))


def matrix_to_quat(R: Any) -> np.ndarray:
    """Unit quaternions from rotation matrices.

    Args:
        R: ``(..., 3, 3)`` rotation matrices (orthonormal, det +1). A pose ``(..., 4, 4)``
            is not accepted: pass ``T[..., :3, :3]``.

    Returns:
        ``(..., 4)`` float64 unit quaternions, ``xyzw``, with ``w >= 0``.

    Raises:
        InputError: the last two axes are not ``(3, 3)`` or an entry is not finite.
    """
    R = np.asarray(R, dtype=np.float64)
    if R.ndim < 2 or R.shape[-2:] != (3, 3):
        raise InputError(f"rotation matrices have shape (..., 3, 3); got {R.shape}")
    if not np.all(np.isfinite(R)):
        raise InputError("rotation matrix has non-finite entries")
    wxyz = _qlib().as_float_array(_qlib().from_rotation_matrix(R, nonorthogonal=False))
    q = wxyz[..., [1, 2, 3, 0]]
    return q * np.where(q[..., 3:4] < 0, -1.0, 1.0)


def pose_to_matrix(position: Any, quat_xyzw: Any) -> np.ndarray:
    """Homogeneous poses from positions and quaternions.

    Args:
        position: ``(..., 3)`` translations (m).
        quat_xyzw: ``(..., 4)`` orientations, ``xyzw`` (normalised first).

    Returns:
        ``(..., 4, 4)`` float64 poses (batch shapes broadcast).
    """
    p = np.asarray(position, dtype=np.float64)
    R = quat_to_matrix(quat_xyzw)
    shape = np.broadcast_shapes(p.shape[:-1], R.shape[:-2])
    T = np.zeros(shape + (4, 4))
    T[..., :3, :3] = R
    T[..., :3, 3] = p
    T[..., 3, 3] = 1.0
    return T


def matrix_to_pose(T: Any) -> tuple[np.ndarray, np.ndarray]:
    """Split homogeneous poses ``(..., 4, 4)`` into positions ``(..., 3)`` (m) and quaternions
    ``(..., 4)`` xyzw with ``w >= 0``."""
    T = np.asarray(T, dtype=np.float64)
    if T.ndim < 2 or T.shape[-2:] != (4, 4):
        raise InputError(f"poses have shape (..., 4, 4); got {T.shape}")
    return T[..., :3, 3].copy(), matrix_to_quat(T[..., :3, :3])


def yaw_from_quaternion(x: Any, y: Any, z: Any, w: Any) -> Any:
    """Yaw (rad) of an xyzw quaternion: the heading of the rotated x axis in the x-y plane.

    Scalars give a ``float``; arrays broadcast and give an array.
    """
    if all(isinstance(v, (int, float)) for v in (x, y, z, w)):
        return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    x, y, z, w = (np.asarray(v, dtype=np.float64) for v in (x, y, z, w))
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def yaw_from_matrix(R: Any) -> Any:
    """Yaw (rad) of rotations ``(..., 3, 3)`` or poses ``(..., 4, 4)`` (heading of the rotated
    x axis); a single matrix gives a ``float``."""
    R = np.asarray(R, dtype=np.float64)
    yaw = np.arctan2(R[..., 1, 0], R[..., 0, 0])
    return float(yaw) if yaw.ndim == 0 else yaw


def yaw_to_quat(yaw: Any) -> np.ndarray:
    """Quaternions ``(..., 4)`` xyzw of rotations by ``yaw`` (rad) about +z."""
    h = 0.5 * np.asarray(yaw, dtype=np.float64)
    return np.stack([np.zeros_like(h), np.zeros_like(h), np.sin(h), np.cos(h)], axis=-1)


def rotation_z(yaw: Any) -> np.ndarray:
    """Rotations ``(..., 3, 3)`` about +z by ``yaw`` (rad, scalar or array)."""
    yaw = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.zeros(yaw.shape + (3, 3))
    R[..., 0, 0], R[..., 0, 1], R[..., 1, 0], R[..., 1, 1], R[..., 2, 2] = c, -s, s, c, 1.0
    return R


def se2_to_matrix(x: float, y: float, yaw: float, z: float = 0.0) -> np.ndarray:
    """``(4, 4)`` pose of a planar pose: at ``(x, y, z)`` m, rotated by ``yaw`` rad about +z."""
    T = np.eye(4)
    T[:3, :3] = rotation_z(yaw)
    T[:3, 3] = (x, y, z)
    return T


def look_at(eye: Any, target: Any, roll: float = 0.0) -> np.ndarray:
    """Camera optical-frame pose ``T_world_cam`` (4, 4) looking from ``eye`` at ``target``.

    The optical frame has z forward, x right and y down; world +z is "up" on the image
    unless the camera looks straight down, where world +x is used instead.

    Args:
        eye: ``(3,)`` camera position in the world (m).
        target: ``(3,)`` point looked at (m); must differ from ``eye``.
        roll: rotation of the camera about its optical axis (rad).
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    norm = np.linalg.norm(z)
    if not norm > 0:
        raise InputError(f"look_at: target equals eye {eye.tolist()}; give a point to look at")
    z /= norm
    up = np.array([0.0, 0.0, 1.0])
    if abs(float(z @ up)) > 0.999:
        up = np.array([1.0, 0.0, 0.0])
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1)
    if roll:
        c, s = np.cos(roll), np.sin(roll)
        R = R @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = eye
    return T


def world_to_base_twist(u_world: Any, yaw: float) -> tuple[float, float, float]:
    """A planar twist in the world frame expressed in the base frame of a robot at ``yaw``.

    Args:
        u_world: ``(3,)`` ``(vx, vy, wz)`` in the world (odom) frame (m/s, m/s, rad/s).
        yaw: the base's heading in that frame (rad).

    Returns:
        ``(vx, vy, wz)`` in the base frame (``wz`` is the same in both frames).
    """
    vx_w, vy_w, wz = (float(v) for v in u_world)
    c, s = math.cos(yaw), math.sin(yaw)
    return c * vx_w + s * vy_w, -s * vx_w + c * vy_w, wz


def slerp(q0_xyzw: Any, q1_xyzw: Any, a: Any) -> np.ndarray:
    """Spherical linear interpolation along the shorter arc between two orientations.

    Args:
        q0_xyzw: ``(..., 4)`` start quaternions, ``xyzw``.
        q1_xyzw: ``(..., 4)`` end quaternions, ``xyzw`` (``q1`` and ``-q1`` give the same).
        a: fraction in [0, 1] (scalar or broadcastable ``(...)``); 0 gives ``q0``.

    Returns:
        ``(..., 4)`` unit quaternions, ``xyzw``.
    """
    q0, q1 = normalize_quaternion(q0_xyzw), normalize_quaternion(q1_xyzw)
    q1 = q1 * np.where(np.sum(q0 * q1, axis=-1, keepdims=True) < 0, -1.0, 1.0)
    ql = _qlib()
    # np.slerp_vectorized is numpy-quaternion's ufunc form of slerp_evaluate (registered on
    # numpy by `import quaternion`); it broadcasts over the batch axes.
    wxyz = ql.as_float_array(np.slerp_vectorized(ql.from_float_array(q0[..., [3, 0, 1, 2]]),
                                                 ql.from_float_array(q1[..., [3, 0, 1, 2]]),
                                                 np.asarray(a, dtype=np.float64)))
    q = wxyz[..., [1, 2, 3, 0]]
    return q / np.linalg.norm(q, axis=-1, keepdims=True)
