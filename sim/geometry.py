"""Small rigid-transform helpers shared by the simulator modules.

Poses are homogeneous ``(4, 4)`` float64 matrices; quaternions are ``xyzw`` (PyBullet's
order). ``T_a_b`` maps points expressed in frame ``b`` into frame ``a``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["quat_to_matrix", "matrix_to_quat", "pose_to_matrix", "yaw_matrix",
           "look_at", "rotation_z"]


def quat_to_matrix(q_xyzw) -> np.ndarray:
    """Rotation matrix ``(3, 3)`` float64 from a unit quaternion ``(4,)`` xyzw."""
    x, y, z, w = (float(v) for v in q_xyzw)
    n = x * x + y * y + z * z + w * w
    s = 2.0 / n if n > 0 else 0.0
    return np.array([
        [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
    ])


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(4,)`` xyzw (w >= 0) from a rotation matrix ``(3, 3)``."""
    R = np.asarray(R, dtype=np.float64)
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2]) * 2
        q = [0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] > R[2, 2]:
        s = np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2]) * 2
        q = [(R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1]) * 2
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s]
    q = np.asarray(q, dtype=np.float64)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def pose_to_matrix(position, quat_xyzw) -> np.ndarray:
    """``(4, 4)`` pose from a position ``(3,)`` (m) and a quaternion ``(4,)`` xyzw."""
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(quat_xyzw)
    T[:3, 3] = np.asarray(position, dtype=np.float64)
    return T


def rotation_z(yaw: float) -> np.ndarray:
    """``(3, 3)`` rotation about +z by ``yaw`` radians."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def yaw_matrix(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    """``(4, 4)`` pose at ``(x, y, z)`` metres rotated by ``yaw`` radians about +z."""
    T = np.eye(4)
    T[:3, :3] = rotation_z(yaw)
    T[:3, 3] = (x, y, z)
    return T


def look_at(eye, target, roll: float = 0.0) -> np.ndarray:
    """Camera optical-frame pose ``T_world_cam`` (4, 4) looking from ``eye`` at ``target``.

    The optical frame has z forward, x right and y down; world +z is "up" on the image
    unless the camera looks straight down, where world +x is used instead. ``roll``
    (rad) rotates the camera about its optical axis.
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
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
