"""Batched SO(3) helpers (numpy, vectorised over a leading axis).

All rotation arrays are ``(N, 3, 3)`` float64; rotation vectors are ``(N, 3)`` in
radians; quaternions are ``(N, 4)`` in ``xyzw`` order.
"""
from __future__ import annotations

import numpy as np

from katazuke.geometry import matrix_to_quat, quat_to_matrix

__all__ = ["hat", "exp_so3", "log_so3", "project_to_so3", "quat_to_rot", "rot_to_quat",
           "rpy_to_rot", "rot_to_rpy", "angle_between", "random_rotations"]


def hat(v: np.ndarray) -> np.ndarray:
    """Skew-symmetric matrices ``[v]_x`` of ``(N, 3)`` vectors, shape ``(N, 3, 3)``."""
    v = np.asarray(v, dtype=np.float64)
    out = np.zeros(v.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out


def exp_so3(v: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: rotation vectors ``(N, 3)`` [rad] -> rotations ``(N, 3, 3)``."""
    v = np.asarray(v, dtype=np.float64)
    th2 = np.einsum("...i,...i->...", v, v)
    th = np.sqrt(th2)
    small = th < 1e-4
    # Taylor series below 1e-4 rad keeps full precision where sin(th)/th cancels.
    a = np.where(small, 1.0 - th2 / 6.0 + th2 * th2 / 120.0, np.sin(th) / np.where(small, 1.0, th))
    b = np.where(small, 0.5 - th2 / 24.0 + th2 * th2 / 720.0,
                 (1.0 - np.cos(th)) / np.where(small, 1.0, th2))
    K = hat(v)
    eye = np.broadcast_to(np.eye(3), K.shape)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def log_so3(R: np.ndarray) -> np.ndarray:
    """Rotations ``(N, 3, 3)`` -> rotation vectors ``(N, 3)`` [rad], angle in [0, pi]."""
    R = np.asarray(R, dtype=np.float64)
    tr = np.einsum("...ii->...", R)
    cos = np.clip((tr - 1.0) / 2.0, -1.0, 1.0)
    th = np.arccos(cos)
    w = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0],
                  R[..., 1, 0] - R[..., 0, 1]], axis=-1)
    sin = np.sin(th)
    small = th < 1e-6
    scale = np.where(small, 0.5 + th * th / 12.0, th / (2.0 * np.where(small, 1.0, sin)))
    out = scale[..., None] * w
    near_pi = th > np.pi - 1e-3
    if np.any(near_pi):
        # Axis from the symmetric part: R + I = 2 cos^2 ... use the largest column of R + R^T.
        Rn = R[near_pi]
        B = 0.5 * (Rn + np.swapaxes(Rn, -1, -2)) - cos[near_pi][..., None, None] * np.eye(3)
        k = np.argmax(np.einsum("...ii->...i", B), axis=-1)
        axis = B[np.arange(len(k)), :, k]
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        sgn = np.sign(np.einsum("...i,...i->...", axis, w[near_pi]))
        sgn[sgn == 0] = 1.0
        out[near_pi] = axis * (sgn * th[near_pi])[..., None]
    return out


def project_to_so3(M: np.ndarray) -> np.ndarray:
    """Nearest rotations (Frobenius) to ``(N, 3, 3)`` matrices, via SVD with det fix."""
    U, _, Vt = np.linalg.svd(np.asarray(M, dtype=np.float64))
    d = np.sign(np.linalg.det(U @ Vt))
    d[d == 0] = 1.0
    U = U.copy()
    U[..., :, 2] *= d[..., None]
    return U @ Vt


def quat_to_rot(q: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(N, 4)`` xyzw -> rotations ``(N, 3, 3)`` (normalises first).

    The g2o ``VERTEX_SE3:QUAT`` / ``EDGE_SE3:QUAT`` lines store ``qx qy qz qw``, the same
    ``xyzw`` order as :func:`katazuke.geometry.quat_to_matrix`, which does the work.
    """
    return quat_to_matrix(q)


def rot_to_quat(R: np.ndarray) -> np.ndarray:
    """Rotations ``(N, 3, 3)`` -> unit quaternions ``(N, 4)`` xyzw with w >= 0
    (:func:`katazuke.geometry.matrix_to_quat`)."""
    return matrix_to_quat(R)


def rpy_to_rot(rpy: np.ndarray) -> np.ndarray:
    """TORO/GTSAM ``Rot3::Ypr`` convention: ``R = Rz(yaw) Ry(pitch) Rx(roll)``.

    Args:
        rpy: ``(N, 3)`` roll, pitch, yaw [rad].
    """
    rpy = np.asarray(rpy, dtype=np.float64)
    r, p, y = rpy[..., 0], rpy[..., 1], rpy[..., 2]
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    R = np.empty(rpy.shape[:-1] + (3, 3))
    R[..., 0, 0] = cy * cp
    R[..., 0, 1] = cy * sp * sr - sy * cr
    R[..., 0, 2] = cy * sp * cr + sy * sr
    R[..., 1, 0] = sy * cp
    R[..., 1, 1] = sy * sp * sr + cy * cr
    R[..., 1, 2] = sy * sp * cr - cy * sr
    R[..., 2, 0] = -sp
    R[..., 2, 1] = cp * sr
    R[..., 2, 2] = cp * cr
    return R


def rot_to_rpy(R: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rpy_to_rot`: rotations ``(N, 3, 3)`` -> ``(N, 3)`` roll, pitch, yaw."""
    R = np.asarray(R, dtype=np.float64)
    pitch = np.arcsin(np.clip(-R[..., 2, 0], -1.0, 1.0))
    roll = np.arctan2(R[..., 2, 1], R[..., 2, 2])
    yaw = np.arctan2(R[..., 1, 0], R[..., 0, 0])
    return np.stack([roll, pitch, yaw], axis=-1)


def angle_between(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """Geodesic angle [rad] between ``(N, 3, 3)`` rotation batches, shape ``(N,)``."""
    tr = np.einsum("...ij,...ij->...", Ra, Rb)  # tr(Ra^T Rb)
    return np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0))


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rotations uniform on SO(3) (Haar), shape ``(n, 3, 3)``."""
    q = rng.standard_normal((n, 4))
    return quat_to_rot(q)
