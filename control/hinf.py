"""Worst-case (H-infinity) state feedback: a robust baseline next to LQR and GPC.

The plant ``x_{t+1} = A x_t + B u_t + w_t`` with cost output ``z = [Q^1/2 x; R^1/2 u]``.
For a level ``gamma`` the full-information game ``min_u max_w sum |z|^2 - gamma^2 |w|^2``
has the value ``x'Px`` where ``P`` solves the game Riccati equation (a DARE with the
indefinite input weight ``blkdiag(R, -gamma^2 I)`` on the inputs ``[u; w]``) subject to
``gamma^2 I - P > 0``. The control is ``u = -K x``. As ``gamma -> inf`` this is LQR;
:func:`hinf_state_feedback` with ``gamma=None`` bisects for the smallest feasible level
and backs off by ``margin``.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from katazuke.control.lqr import check_system
from katazuke.errors import InputError

__all__ = ["hinf_state_feedback", "hinf_gain_for_gamma"]


def hinf_gain_for_gamma(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray,
                        gamma: float) -> tuple[np.ndarray, np.ndarray] | None:
    """``(K (m, n), P (n, n))`` of the game at level ``gamma``, or None if infeasible."""
    n, m = B.shape
    Baug = np.hstack([B, np.eye(n)])
    Raug = scipy.linalg.block_diag(R, -gamma * gamma * np.eye(n))
    try:
        P = scipy.linalg.solve_discrete_are(A, Baug, Q, Raug)
    except (np.linalg.LinAlgError, ValueError):
        return None
    P = 0.5 * (P + P.T)
    if not np.all(np.isfinite(P)) or np.linalg.eigvalsh(P).min() < -1e-9:
        return None
    if np.linalg.eigvalsh(gamma * gamma * np.eye(n) - P).min() <= 0:
        return None
    G = np.linalg.solve(Raug + Baug.T @ P @ Baug, Baug.T @ P @ A)
    K = G[:m]
    if np.abs(np.linalg.eigvals(A - B @ K)).max() >= 1.0:
        return None
    return K, P


def hinf_state_feedback(A: np.ndarray, B: np.ndarray, Q: np.ndarray | None = None,
                        R: np.ndarray | None = None, gamma: float | None = None,
                        margin: float = 1.2) -> tuple[np.ndarray, np.ndarray, float]:
    """H-infinity state-feedback gain.

    Args:
        A, B, Q, R: plant and cost weights (see :func:`katazuke.control.lqr.dlqr`).
        gamma: attenuation level; None: ``margin`` times the smallest feasible level
            (found by bisection).
        margin: back-off factor (> 1) from the optimal level.

    Returns:
        ``(K (m, n), P (n, n), gamma)``.

    Raises:
        InputError: no feasible level (``gamma`` too small or the plant not stabilisable).
    """
    A, B, Q, R = check_system(A, B, Q, R)
    if gamma is not None:
        sol = hinf_gain_for_gamma(A, B, Q, R, float(gamma))
        if sol is None:
            raise InputError(f"gamma = {gamma} is infeasible for this plant; increase gamma")
        return sol[0], sol[1], float(gamma)
    if margin <= 1.0:
        raise InputError(f"margin must be > 1; got {margin}")
    hi = 1.0
    while hinf_gain_for_gamma(A, B, Q, R, hi) is None:
        hi *= 2.0
        if hi > 1e8:
            raise InputError("no feasible H-infinity level below 1e8; check (A, B) stabilisability")
    lo = 0.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if hinf_gain_for_gamma(A, B, Q, R, mid) is None:
            lo = mid
        else:
            hi = mid
    g = hi * margin
    sol = hinf_gain_for_gamma(A, B, Q, R, g)
    if sol is None:  # pragma: no cover - feasibility is monotone in gamma
        raise InputError("H-infinity bisection failed; pass gamma explicitly")
    return sol[0], sol[1], g
