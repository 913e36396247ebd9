"""Discrete-time linear-quadratic regulators.

The plant is ``x_{t+1} = A x_t + B u_t (+ w_t)`` with stage cost ``x'Qx + u'Ru`` and the
control law ``u = -K x``.

- :func:`dlqr`: infinite-horizon gain from the discrete algebraic Riccati equation (DARE),
  solved with :func:`scipy.linalg.solve_discrete_are`.
- :func:`finite_horizon_lqr`: time-varying gains by the backward Riccati recursion.
- :func:`riccati_residual`: how far a ``P`` is from solving the DARE (for tests).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from katazuke.errors import InputError

__all__ = ["dlqr", "finite_horizon_lqr", "riccati_residual", "check_system", "closed_loop"]


def check_system(A: np.ndarray, B: np.ndarray, Q: np.ndarray | None = None,
                 R: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert ``(A, B, Q, R)`` to float64 arrays.

    Args:
        A: (n, n) state matrix.
        B: (n, m) input matrix.
        Q: (n, n) symmetric positive semi-definite state cost (identity if None).
        R: (m, m) symmetric positive definite input cost (identity if None).

    Returns:
        The four arrays as contiguous float64.

    Raises:
        InputError: wrong shapes, non-finite entries, or an indefinite cost.
    """
    A = np.ascontiguousarray(A, dtype=np.float64)
    B = np.ascontiguousarray(B, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InputError(f"A must be square (n, n); got shape {A.shape}")
    n = A.shape[0]
    if B.ndim == 1:
        B = B.reshape(n, 1) if B.shape[0] == n else B
    if B.ndim != 2 or B.shape[0] != n:
        raise InputError(f"B must have shape (n, m) with n = {n}; got {B.shape}")
    m = B.shape[1]
    Q = np.eye(n) if Q is None else np.ascontiguousarray(Q, dtype=np.float64)
    R = np.eye(m) if R is None else np.ascontiguousarray(R, dtype=np.float64)
    if Q.shape != (n, n):
        raise InputError(f"Q must have shape ({n}, {n}); got {Q.shape}")
    if R.shape != (m, m):
        raise InputError(f"R must have shape ({m}, {m}); got {R.shape}")
    for name, M in (("A", A), ("B", B), ("Q", Q), ("R", R)):
        if not np.all(np.isfinite(M)):
            raise InputError(f"{name} has non-finite entries; pass a finite matrix")
    if not np.allclose(Q, Q.T, atol=1e-12 * max(1.0, np.abs(Q).max())):
        raise InputError("Q must be symmetric; pass (Q + Q.T) / 2")
    if not np.allclose(R, R.T, atol=1e-12 * max(1.0, np.abs(R).max())):
        raise InputError("R must be symmetric; pass (R + R.T) / 2")
    if np.linalg.eigvalsh(Q).min() < -1e-10 * max(1.0, np.abs(Q).max()):
        raise InputError("Q must be positive semi-definite")
    if np.linalg.eigvalsh(R).min() <= 0.0:
        raise InputError("R must be positive definite (every input needs a cost)")
    return A, B, Q, R


def dlqr(A: np.ndarray, B: np.ndarray, Q: np.ndarray | None = None,
         R: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Infinite-horizon discrete-time LQR.

    Args:
        A: (n, n) state matrix.
        B: (n, m) input matrix.
        Q: (n, n) state cost, PSD (identity if None).
        R: (m, m) input cost, PD (identity if None).

    Returns:
        ``(K, P)``: the (m, n) gain for ``u = -K x`` and the (n, n) stabilising DARE
        solution ``P`` (the cost-to-go is ``x'Px``).

    Raises:
        InputError: bad shapes, or (A, B) not stabilisable / (A, Q) with unobservable
            modes on the unit circle so that no stabilising solution exists.
    """
    A, B, Q, R = check_system(A, B, Q, R)
    try:
        P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise InputError(f"no stabilising DARE solution ({exc}); check that (A, B) is "
                         "stabilisable and Q is positive definite on unstable modes") from exc
    P = 0.5 * (P + P.T)
    BtP = B.T @ P
    K = np.linalg.solve(R + BtP @ B, BtP @ A)
    return K, P


def riccati_residual(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray,
                     P: np.ndarray) -> float:
    """Relative Frobenius residual of the DARE ``P = Q + A'PA - A'PB (R + B'PB)^-1 B'PA``.

    Returns:
        ``||rhs - P||_F / max(1, ||P||_F)`` (dimensionless).
    """
    BtPA = B.T @ P @ A
    rhs = Q + A.T @ P @ A - BtPA.T @ np.linalg.solve(R + B.T @ P @ B, BtPA)
    return float(np.linalg.norm(rhs - P) / max(1.0, np.linalg.norm(P)))


def finite_horizon_lqr(A: np.ndarray, B: np.ndarray, Q: np.ndarray | None, R: np.ndarray | None,
                       horizon: int, Qf: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Finite-horizon LQR by the backward Riccati recursion.

    Minimises ``sum_{t<N} (x_t'Q x_t + u_t'R u_t) + x_N'Qf x_N``.

    Args:
        A, B, Q, R: as in :func:`dlqr`.
        horizon: N >= 1 steps.
        Qf: (n, n) terminal cost (Q if None).

    Returns:
        ``(Ks, Ps)``: gains (N, m, n) with ``u_t = -Ks[t] x_t``, and cost-to-go matrices
        (N + 1, n, n) with ``Ps[N] = Qf``.
    """
    A, B, Q, R = check_system(A, B, Q, R)
    if int(horizon) < 1:
        raise InputError(f"horizon must be >= 1; got {horizon}")
    n, m = B.shape
    Qf = Q if Qf is None else np.asarray(Qf, dtype=np.float64)
    if Qf.shape != (n, n):
        raise InputError(f"Qf must have shape ({n}, {n}); got {Qf.shape}")
    N = int(horizon)
    Ks = np.empty((N, m, n))
    Ps = np.empty((N + 1, n, n))
    Ps[N] = Qf
    for t in range(N - 1, -1, -1):
        P = Ps[t + 1]
        BtP = B.T @ P
        K = np.linalg.solve(R + BtP @ B, BtP @ A)
        Ks[t] = K
        Acl = A - B @ K
        Pn = Q + K.T @ R @ K + Acl.T @ P @ Acl  # Joseph form: stays symmetric PSD
        Ps[t] = 0.5 * (Pn + Pn.T)
    return Ks, Ps


def closed_loop(A: np.ndarray, B: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``A - B K`` (n, n)."""
    return np.asarray(A, dtype=np.float64) - np.asarray(B, dtype=np.float64) @ np.asarray(K, dtype=np.float64)
