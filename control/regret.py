"""Regret of online control against fixed controllers, ROS-free (the analysis behind
``katazuke bench control``, :mod:`katazuke.bench.control`, and the GPC/LQR property tests).

For a plant ``x_{t+1} = A x_t + B u_t + w_t`` (x_0 = 0) and a disturbance sequence W:

- :func:`rollout_lqr`: per-step cost of ``u = -K x``.
- :func:`rollout_gpc`: per-step cost of online :class:`~katazuke.control.gpc.GPC`.
- :func:`best_dac_in_hindsight`: the best *fixed* disturbance-action controller
  ``u_t = -K x_t + sum_i M_i w_{t-i}`` for the whole sequence. The trajectory is affine in
  ``vec(M)``, so the total quadratic cost is a least-squares problem; its normal equations
  are accumulated in chunks and solved at each checkpoint T (projected onto the same
  Frobenius ball GPC uses, by a trust-region bisection on the ridge).
- :func:`regret_exponent`: log-log slope of regret vs T.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from katazuke.control.gpc import GPC, GPCConfig
from katazuke.errors import InputError

__all__ = ["rollout_lqr", "rollout_gpc", "identify_by_exploration", "best_dac_in_hindsight",
           "regret_exponent", "checkpoints"]


def _stage_costs(X: np.ndarray, U: np.ndarray, Q: np.ndarray, R: np.ndarray) -> np.ndarray:
    return np.einsum("ti,ij,tj->t", X, Q, X) + np.einsum("ti,ij,tj->t", U, R, U)


def rollout_lqr(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, K: np.ndarray,
                W: np.ndarray) -> np.ndarray:
    """Per-step costs (T,) of ``u = -K x`` from ``x_0 = 0`` under disturbances W (T, n)."""
    T, n = W.shape
    X = np.empty((T, n))
    U = np.empty((T, B.shape[1]))
    x = np.zeros(n)
    for t in range(T):  # same arithmetic as rollout_gpc, so GPC with M = 0 matches bit for bit
        u = -(K @ x)
        X[t], U[t] = x, u
        x = A @ x + B @ u + W[t]
    return _stage_costs(X, U, Q, R)


def rollout_gpc(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, W: np.ndarray,
                config: GPCConfig, model: tuple[np.ndarray, np.ndarray] | None = None
                ) -> tuple[np.ndarray, GPC]:
    """Per-step costs (T,) of online GPC from ``x_0 = 0``.

    Args:
        A, B: true plant. Q, R: cost. W: (T, n) disturbances.
        config: GPC hyper-parameters.
        model: (A_est, B_est) the controller uses (the true plant if None).

    Returns:
        ``(costs (T,), the GPC object after the run)``. If the loop diverges (possible only
        with a wrong model, where the disturbance estimate feeds the state back through M)
        the costs from that step on are ``inf``.
    """
    Am, Bm = (A, B) if model is None else model
    gpc = GPC(Am, Bm, Q, R, config)
    T, n = W.shape
    X = np.empty((T, n))
    U = np.empty((T, B.shape[1]))
    x = np.zeros(n)
    for t in range(T):
        u = gpc.get_action(x)
        X[t], U[t] = x, u
        x = A @ x + B @ u + W[t]
        if not np.all(np.abs(x) < 1e12):
            costs = _stage_costs(X[:t + 1], U[:t + 1], Q, R)
            return np.concatenate([costs, np.full(T - t - 1, np.inf)]), gpc
        gpc.update(x, u)
    return _stage_costs(X, U, Q, R), gpc


def identify_by_exploration(A: np.ndarray, B: np.ndarray, K: np.ndarray, rng: np.random.Generator,
                            steps: int = 2000, explore_scale: float = 1.0,
                            noise_scale: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Explore-then-identify: run ``u = -K x + explore_scale * N(0, I)`` on the true plant
    with Gaussian process noise for ``steps`` steps, then least-squares (A, B).

    Returns:
        ``(A_est (n, n), B_est (n, m))``.
    """
    from katazuke.control.sysid import exploration_actions, identify

    n, m = B.shape
    E = exploration_actions(rng, steps, m, explore_scale)
    X = np.zeros((steps + 1, n))
    U = np.empty((steps, m))
    for t in range(steps):
        U[t] = -(K @ X[t]) + E[t]
        X[t + 1] = A @ X[t] + B @ U[t] + noise_scale * rng.standard_normal(n)
    A_est, B_est, _ = identify(X, U)
    return A_est, B_est


def checkpoints(T: int, k: int = 12, start: int = 100) -> np.ndarray:
    """k log-spaced integer horizons in [start, T], always ending at T."""
    if T <= start:
        return np.array([T])
    return np.unique(np.round(np.geomspace(start, T, k)).astype(int))


def _solve_ball(N: np.ndarray, b: np.ndarray, radius: float | None) -> np.ndarray:
    """argmin_theta theta'N theta + 2 b'theta  s.t. ||theta|| <= radius (None: unconstrained).

    Trust-region solution by bisection on the multiplier in N's eigenbasis.
    """
    lam, V = np.linalg.eigh(N)
    lam = np.maximum(lam, 0.0)
    c = V.T @ b
    floor = 1e-12 * max(1.0, float(lam.max()))

    def theta_c(mu: float) -> np.ndarray:
        return -c / (lam + mu + floor)

    tc = theta_c(0.0)
    if radius is None or np.linalg.norm(tc) <= radius:
        return V @ tc
    lo, hi = 0.0, max(1.0, float(lam.max()))
    while np.linalg.norm(theta_c(hi)) > radius:
        hi *= 4.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if np.linalg.norm(theta_c(mid)) > radius:
            lo = mid
        else:
            hi = mid
    return V @ theta_c(hi)


def best_dac_in_hindsight(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray,
                          K: np.ndarray, H: int, W: np.ndarray, Ts: Sequence[int],
                          radius: float | None = None, chunk: int = 256
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative cost of the best fixed disturbance-action controller on each prefix.

    Args:
        A, B, Q, R: plant and cost. K: (m, n) the stabilising gain GPC uses.
        H: memory length. W: (T, n) disturbances (known in hindsight).
        Ts: increasing prefix lengths <= T at which to solve.
        radius: Frobenius bound on M (the class GPC competes in); None: unconstrained.

    Returns:
        ``(costs (len(Ts),), M_T (H, m, n) the best M for the full prefix Ts[-1])``.
    """
    T, n = W.shape
    m = B.shape[1]
    p = m * H * n
    Ts = [int(v) for v in Ts]
    if not Ts or Ts != sorted(Ts) or Ts[-1] > T or Ts[0] < 1:
        raise InputError(f"Ts must be increasing in [1, {T}]; got {Ts}")
    Acl = A - B @ K
    # Windows [w_{t-1}, ..., w_{t-H}] (zeros before t = 0), flattened to (T, H n).
    Wpad = np.vstack([np.zeros((H, n)), W])
    sw = np.lib.stride_tricks.sliding_window_view(Wpad, H, axis=0)[:T]  # (T, n, H): Wpad[t + i]
    win = np.ascontiguousarray(sw[:, :, ::-1].transpose(0, 2, 1).reshape(T, H * n))
    N = np.zeros((p, p))
    bvec = np.zeros(p)
    const = 0.0
    out = np.empty(len(Ts))
    x0 = np.zeros(n)                 # M = 0 (LQR) trajectory
    J = np.zeros((n, p))             # d x_t / d vec(M), vec row-major over Mflat (m, H n)
    Jc = np.empty((chunk, n, p))
    Juc = np.empty((chunk, m, p))
    Xc = np.empty((chunk, n))
    Uc = np.empty((chunk, m))
    Hn = H * n
    ci = 0
    k = 0
    Qh = np.linalg.cholesky(Q + 1e-14 * np.eye(n))
    Rh = np.linalg.cholesky(R)

    def flush(c: int) -> float:
        Jq = np.matmul(Qh.T, Jc[:c]).reshape(-1, p)
        Ju = np.matmul(Rh.T, Juc[:c]).reshape(-1, p)
        xq = (Xc[:c] @ Qh).reshape(-1)
        uq = (Uc[:c] @ Rh).reshape(-1)
        N[...] += Jq.T @ Jq + Ju.T @ Ju
        bvec[...] += Jq.T @ xq + Ju.T @ uq
        return float(xq @ xq + uq @ uq)

    for t in range(T):
        u0 = -K @ x0
        Ju = -K @ J
        for i in range(m):
            Ju[i, i * Hn:(i + 1) * Hn] += win[t]
        Jc[ci], Juc[ci], Xc[ci], Uc[ci] = J, Ju, x0, u0
        ci += 1
        J = A @ J + B @ Ju
        x0 = Acl @ x0 + W[t]
        if ci == chunk or t + 1 == Ts[k]:
            const += flush(ci)
            ci = 0
        while k < len(Ts) and t + 1 == Ts[k]:
            theta = _solve_ball(N, bvec, radius)
            out[k] = const + 2.0 * float(bvec @ theta) + float(theta @ N @ theta)
            k += 1
        if k == len(Ts):
            break
    M = theta.reshape(m, H, n).transpose(1, 0, 2)
    return out, M


def regret_exponent(Ts: Sequence[int], regret: Sequence[float], min_T: int = 0) -> float | None:
    """Least-squares slope of log(regret) vs log(T).

    The fit uses the checkpoints with ``T >= min_T`` in the final stretch where regret stays
    positive (a power law describes a positive, growing regret; points before a sign change
    say nothing about the growth rate at the end).

    Returns:
        The slope, or None when the regret at the last checkpoint is <= 0 (the online
        controller did at least as well as the best fixed one) or fewer than 3 points remain.
    """
    Ts = np.asarray(Ts, dtype=float)
    r = np.asarray(regret, dtype=float)
    if r.size == 0 or r[-1] <= 0:
        return None
    nonpos = np.flatnonzero(r <= 0)
    start = nonpos[-1] + 1 if nonpos.size else 0
    keep = np.zeros(r.size, dtype=bool)
    keep[start:] = True
    keep &= Ts >= min_T
    if keep.sum() < 3:
        return None
    slope, _ = np.polyfit(np.log(Ts[keep]), np.log(r[keep]), 1)
    return float(slope)
