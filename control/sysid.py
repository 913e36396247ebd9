"""Least-squares identification of ``x_{t+1} = A x_t + B u_t + w_t`` from trajectories.

The usual recipe (e.g. the explore-then-commit phase of GPC with unknown dynamics): drive
the plant with a stabilising feedback plus i.i.d. exploration noise
(:func:`exploration_actions`), record states and applied actions, then solve
``min_{A,B} sum_t ||x_{t+1} - A x_t - B u_t||^2 (+ ridge ||[A B]||^2)`` with
:func:`identify`.
"""
from __future__ import annotations

import numpy as np

from katazuke.errors import InputError

__all__ = ["identify", "exploration_actions"]


def identify(states: np.ndarray, actions: np.ndarray, ridge: float = 0.0
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares estimate of (A, B).

    Args:
        states: (T + 1, n) states x_0 .. x_T, or a list of such arrays (several trajectories).
        actions: (T, m) applied actions u_0 .. u_{T-1}, or a list matching ``states``.
        ridge: Tikhonov weight (>= 0) on ``||[A B]||_F^2``.

    Returns:
        ``(A (n, n), B (n, m), residuals (sum T, n))`` — residuals are the estimated
        disturbances ``x_{t+1} - A x_t - B u_t``.

    Raises:
        InputError: inconsistent lengths, too few samples, or a rank-deficient regressor
            (not enough excitation: add exploration noise).
    """
    if isinstance(states, (list, tuple)):
        if not isinstance(actions, (list, tuple)) or len(actions) != len(states):
            raise InputError("states and actions must both be lists of the same length")
        pairs = list(zip(states, actions))
    else:
        pairs = [(states, actions)]
    Z, Y = [], []
    n = m = None
    for X, U in pairs:
        X = np.asarray(X, dtype=np.float64)
        U = np.asarray(U, dtype=np.float64)
        if U.ndim == 1:
            U = U[:, None]
        if X.ndim != 2 or U.ndim != 2 or X.shape[0] != U.shape[0] + 1:
            raise InputError(f"states must be (T+1, n) and actions (T, m); got {X.shape} and {U.shape}")
        if n is None:
            n, m = X.shape[1], U.shape[1]
        elif (X.shape[1], U.shape[1]) != (n, m):
            raise InputError("all trajectories must have the same state and action sizes")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(U))):
            raise InputError("states/actions contain non-finite values")
        Z.append(np.hstack([X[:-1], U]))
        Y.append(X[1:])
    Zm = np.vstack(Z)
    Ym = np.vstack(Y)
    assert n is not None and m is not None
    if Zm.shape[0] < n + m:
        raise InputError(f"need at least n + m = {n + m} transitions; got {Zm.shape[0]}")
    if ridge < 0:
        raise InputError(f"ridge must be >= 0; got {ridge}")
    G = Zm.T @ Zm + ridge * np.eye(n + m)
    if ridge == 0 and np.linalg.matrix_rank(Zm) < n + m:
        raise InputError("regressor [x, u] is rank deficient: the data does not excite every "
                         "direction; add exploration noise or use ridge > 0")
    Theta = np.linalg.solve(G, Zm.T @ Ym).T  # (n, n + m)
    A, B = Theta[:, :n], Theta[:, n:]
    return A, B, Ym - Zm @ Theta.T


def exploration_actions(rng: np.random.Generator, T: int, m: int, scale: float = 1.0) -> np.ndarray:
    """I.i.d. Gaussian exploration noise (T, m) with standard deviation ``scale``."""
    if T < 1 or m < 1 or scale < 0:
        raise InputError(f"need T >= 1, m >= 1, scale >= 0; got {T}, {m}, {scale}")
    return scale * rng.standard_normal((T, m))
