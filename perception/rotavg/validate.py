"""The one input-validation rule for rotations, whatever format they come in.

A rotation *as written* (a quaternion in g2o, a 3x3 matrix in 1DSfM, ``.npz`` or a service
request; TORO's roll/pitch/yaw are always a rotation) is measured by its **deviation**: the
size of the correction that turns it into a proper rotation, in its own representation's
norm:

- quaternion ``q``: ``| ||q|| - 1 |`` (normalising moves ``q`` by exactly this much);
- matrix ``M``: ``max_k |sigma_k(M) - 1|`` over its singular values, i.e. the spectral norm
  of ``M - R*`` for the nearest rotation ``R*`` (projecting moves ``M`` by exactly this).

The rule, applied by every reader of :mod:`.io` and by :meth:`ViewGraph.from_arrays`:

- deviation <= :data:`ROTATION_TOL` (``1e-2``): accepted; the value is normalised
  (quaternion) or projected to SO(3) (matrix) silently. Files printed with 4-6 significant
  digits deviate by 1e-6..1e-4; float32 values by ~1e-7.
- deviation > :data:`ROTATION_TOL`, a reflection (``det <= 0``), a zero quaternion, NaN
  or inf: :class:`~katazuke.errors.InputError` naming the source, the edge (index, and
  ``file:line`` for text formats) and the deviation found.

Why ``1e-2``: it is the bound the g2o reader already applied to quaternion norms, so no file
that loaded before is refused for its quaternions; the real graphs in ``shared/data/rotavg``
deviate by at most 1.7e-6 (1DSfM Madrid matrices, cubicle quaternions), four orders of
magnitude inside it; and a value 1 % off a rotation is not rounding but a unit, layout or
transcription error, which should stop the run rather than be averaged in. Before this rule
``.npz`` and 1DSfM matrices of any deviation were projected with a warning while g2o
quaternions beyond 1e-2 were refused.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from katazuke.errors import InputError

from .so3 import project_to_so3

__all__ = ["ROTATION_TOL", "rotation_deviation", "quaternion_deviation", "check_quaternions",
           "check_rotation_matrices"]

#: Largest accepted deviation of a rotation as written (see the module docstring).
ROTATION_TOL = 1e-2
# Matrices closer than this to orthonormal (||M^T M - I||_F) are kept bit for bit: they are
# already rotations to double precision.
_EXACT = 1e-12


def quaternion_deviation(q: np.ndarray) -> np.ndarray:
    """``| ||q|| - 1 |`` of quaternions ``(m, 4)`` -> ``(m,)``."""
    return np.abs(np.linalg.norm(np.asarray(q, dtype=np.float64), axis=-1) - 1.0)


def rotation_deviation(M: np.ndarray) -> np.ndarray:
    """``max_k |sigma_k(M) - 1|`` of matrices ``(m, 3, 3)`` -> ``(m,)`` (distance, in the
    spectral norm, to the nearest orthogonal matrix)."""
    s = np.linalg.svd(np.asarray(M, dtype=np.float64), compute_uv=False)
    return np.abs(s - 1.0).max(axis=-1)


def _where(source: str, k: int, lines: Sequence[int] | None) -> str:
    """``file:line`` for text formats (the line pins the edge), else ``source: edge k``."""
    return f"{source}:{lines[k]}" if lines is not None else f"{source}: edge {k}"


def _rule(tol: float) -> str:
    return (f"accepted deviation <= {tol:g}, see perception/rotavg/validate.py; fix or drop the "
            "edge")


def check_quaternions(q: np.ndarray, source: str, lines: Sequence[int] | None = None,
                      tol: float = ROTATION_TOL) -> np.ndarray:
    """Apply the rule to quaternions ``(m, 4)`` (any component order).

    Args:
        q: the quaternions as written.
        source: file or request name for the error message.
        lines: 1-based line of each quaternion (text formats), or None.
        tol: largest accepted deviation.

    Returns:
        ``q`` unchanged (the conversion to matrices normalises).

    Raises:
        InputError: a quaternion is not finite or deviates by more than ``tol``.
    """
    q = np.asarray(q, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(q).all(axis=-1))
    if bad.size:
        raise InputError(f"{_where(source, int(bad[0]), lines)}: quaternion contains NaN/inf")
    dev = quaternion_deviation(q)
    bad = np.flatnonzero(dev > tol)
    if bad.size:
        k = int(bad[0])
        raise InputError(f"{_where(source, k, lines)}: quaternion norm "
                         f"{float(np.linalg.norm(q[k])):.6g} is not 1 (deviation {dev[k]:.3g}; "
                         f"{bad.size} such edge(s); {_rule(tol)})")
    return q


def check_rotation_matrices(M: np.ndarray, source: str, lines: Sequence[int] | None = None,
                            tol: float = ROTATION_TOL) -> np.ndarray:
    """Apply the rule to matrices ``(m, 3, 3)``: reject, or return them projected to SO(3).

    Args:
        M: the matrices as written.
        source: file or request name for the error message.
        lines: 1-based line of each matrix (text formats), or None.
        tol: largest accepted deviation.

    Returns:
        ``(m, 3, 3)`` float64 rotations; matrices already orthonormal to double precision are
        returned unchanged, the others are their nearest rotation.

    Raises:
        InputError: a matrix is not finite, is a reflection (det <= 0) or deviates by more
            than ``tol``.
    """
    R = np.asarray(M, dtype=np.float64)
    if R.shape[0] == 0:
        return R
    bad = np.flatnonzero(~np.isfinite(R).all(axis=(1, 2)))
    if bad.size:
        raise InputError(f"{_where(source, int(bad[0]), lines)}: relative rotation contains NaN/inf")
    det = np.linalg.det(R)
    refl = np.flatnonzero(det <= 0)
    if refl.size:
        k = int(refl[0])
        raise InputError(f"{_where(source, k, lines)}: relative rotation has det {det[k]:.3g} <= 0 "
                         f"(a reflection, not a rotation; {refl.size} such edge(s))")
    err = np.linalg.norm(np.swapaxes(R, 1, 2) @ R - np.eye(3), axis=(1, 2))
    off = np.flatnonzero(err > _EXACT)
    if off.size:
        dev = rotation_deviation(R[off])
        bad = np.flatnonzero(dev > tol)
        if bad.size:
            k = int(off[bad[0]])
            raise InputError(f"{_where(source, k, lines)}: relative rotation is not orthonormal "
                             f"(deviation {dev[bad[0]]:.3g}: singular values "
                             f"{np.array2string(np.linalg.svd(R[k], compute_uv=False), precision=4)}"
                             f"; {bad.size} such edge(s); {_rule(tol)})")
        R = R.copy()
        R[off] = project_to_so3(R[off])
    return R
