"""Gradient Perturbation Control (GPC).

Agarwal, Bullins, Hazan, Kakade, Singh, "Online Control with Adversarial Disturbances",
ICML 2019. The plant is ``x_{t+1} = A x_t + B u_t + w_t`` with an arbitrary (possibly
adversarial) disturbance ``w_t``. The controller plays the disturbance-action policy

    u_t = -K x_t + sum_{i=1..H} M^(i) w_{t-i}

where ``K`` is a stabilising (LQR) gain and ``w_s = x_{s+1} - A x_s - B u_s`` is the
disturbance recovered from the model. After each transition it takes a projected online
gradient step on the *ideal* (counterfactual) cost: the cost at time t of the state that
playing the current ``M`` for the last H steps from a zero state would have produced.
That state and action are linear in ``M``, so for a cost with a known gradient (the
default quadratic cost) the gradient is exact and closed form::

    y(M) = sum_{d=1..L} Acl^{d-1} (B M . W_d + w_{t+1-d})        # counterfactual state
    v(M) = -K y(M) + M . W_0                                     # counterfactual action
    dL/dM = sum_d (Acl^{d-1} B)' g_y  W_d'  +  g_v W_0'

with ``W_d = [w_{t-d}, ..., w_{t-d-H+1}]``, a rollout length ``L >= H`` (long enough that
``Acl^L`` is negligible, so the surrogate is unbiased for slow closed loops) and ``g_y = dc/dy - K' dc/dv``, ``g_v = dc/dv``.
The disturbance history lives in a doubled ring buffer so that every window ``W_d`` is a
precomputed strided view: the hot path does a handful of small matrix products and no
Python loops over H.

With ``M = 0`` (e.g. ``lr = 0``) the controller is exactly LQR.
"""
from __future__ import annotations

import math
from typing import Callable, Literal, Protocol

import numpy as np
from numpy.lib.stride_tricks import as_strided

from katazuke.config import dataclass, field, in_range, non_negative, positive
from katazuke.control.lqr import check_system, dlqr
from katazuke.errors import ConfigError, InputError

__all__ = ["GPCConfig", "GPC", "QuadraticCost", "ConvexCost", "fd_cost_grad"]


class ConvexCost(Protocol):
    """A per-step convex cost ``c(x, u) -> float`` (x: (n,), u: (m,))."""

    def __call__(self, x: np.ndarray, u: np.ndarray) -> float: ...


@dataclass(frozen=True)
class GPCConfig:
    """Hyper-parameters of :class:`GPC`."""

    horizon: int = in_range(
        10, "H: number of past disturbances the policy uses (memory length), >= 1", 1, math.inf)
    lr: float = non_negative(
        0.5, "base step size eta_0 of online gradient descent (0 freezes M = 0, i.e. LQR)")
    lr_schedule: Literal["constant", "inv_sqrt", "inv_t", "adagrad"] = field(
        default="adagrad", metadata={
            "help": "step size at update t: constant eta_0; inv_sqrt eta_0/sqrt(t); inv_t "
                    "eta_0/t; adagrad eta_0/sqrt(sum of squared gradient norms) (scale free)"})
    radius: float = non_negative(
        2.0, "projection radius: M is kept in the Frobenius ball ||M||_F <= radius")
    rollout: int = field(default=0, metadata={
        "help": "length of the counterfactual rollout behind the ideal cost (steps, >= horizon); "
                "0: the smallest length with ||(A - BK)^L||_2 <= rollout_tol, at least horizon"})
    rollout_tol: float = field(default=1e-3, metadata={
        "help": "truncation tolerance of the automatic rollout length"})
    max_rollout: int = field(default=200, metadata={"help": "cap of the automatic rollout length"})
    grad_every: int = in_range(
        1, "take a gradient step every this many observed transitions (disturbances are "
           "recorded at every transition)", 1, math.inf)
    fd_step: float = positive(
        1e-6, "relative step of the central finite differences used for a cost without grad()")

    def __post_init__(self) -> None:
        if self.rollout != 0 and self.rollout < self.horizon:
            raise ConfigError(f"rollout must be 0 (auto) or >= horizon = {self.horizon}; "
                              f"got {self.rollout}")
        if not 0 < self.rollout_tol < 1:
            raise ConfigError(f"rollout_tol must be in (0, 1); got {self.rollout_tol}")
        if self.max_rollout < self.horizon:
            raise ConfigError(f"max_rollout must be >= horizon; got {self.max_rollout}")


class QuadraticCost:
    """``c(x, u) = x'Qx + u'Ru`` with its exact gradient.

    Args:
        Q: (n, n) PSD state weight.
        R: (m, m) PD input weight.
    """

    def __init__(self, Q: np.ndarray, R: np.ndarray) -> None:
        self.Q = np.ascontiguousarray(Q, dtype=np.float64)
        self.R = np.ascontiguousarray(R, dtype=np.float64)
        self._Q2 = 2.0 * self.Q
        self._R2 = 2.0 * self.R

    def __call__(self, x: np.ndarray, u: np.ndarray) -> float:
        return float(x @ self.Q @ x + u @ self.R @ u)

    def grad(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Partial derivatives ``(dc/dx (n,), dc/du (m,))``."""
        return self._Q2 @ x, self._R2 @ u


def fd_cost_grad(cost: Callable[[np.ndarray, np.ndarray], float], x: np.ndarray, u: np.ndarray,
                 rel_step: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Central finite-difference gradient of a scalar cost in ``(x, u)``.

    Args:
        cost: ``c(x, u) -> float``.
        x: (n,) state; u: (m,) action.
        rel_step: step relative to ``max(1, |z_i|)``.

    Returns:
        ``(dc/dx (n,), dc/du (m,))``.
    """
    n = x.shape[0]
    z = np.concatenate([x, u])
    h = rel_step * np.maximum(1.0, np.abs(z))
    Z = np.repeat(z[None, :], 2 * z.size, axis=0)
    idx = np.arange(z.size)
    Z[idx, idx] += h
    Z[z.size + idx, idx] -= h
    vals = np.fromiter((cost(r[:n], r[n:]) for r in Z), dtype=np.float64, count=2 * z.size)
    g = (vals[: z.size] - vals[z.size:]) / (2.0 * h)
    return g[:n], g[n:]


class GPC:
    """Online Gradient Perturbation Controller.

    Usage (one control step)::

        u = gpc.get_action(x)          # u_t = -K x_t + sum_i M_i w_{t-i}
        x_next = plant(u_applied)      # the node may saturate u before applying it
        gpc.update(x_next, u_applied)  # record w_t, gradient step on the ideal cost

    Args:
        A: (n, n) model state matrix (known or identified, see :mod:`katazuke.control.sysid`).
        B: (n, m) model input matrix.
        Q: (n, n) state cost of the default quadratic cost and of the LQR gain (I if None).
        R: (m, m) input cost (I if None).
        config: :class:`GPCConfig` (defaults if None).
        cost: per-step convex cost ``c(x, u)`` the gradient steps minimise; the quadratic
            ``x'Qx + u'Ru`` if None. If it has a ``grad(x, u)`` method that is used,
            otherwise central finite differences in ``(x, u)`` (exact chain rule through M).
        K: (m, n) stabilising gain; the LQR gain of (A, B, Q, R) if None.
    """

    def __init__(self, A: np.ndarray, B: np.ndarray, Q: np.ndarray | None = None,
                 R: np.ndarray | None = None, config: GPCConfig | None = None,
                 cost: ConvexCost | None = None, K: np.ndarray | None = None) -> None:
        A, B, Q, R = check_system(A, B, Q, R)
        self.config = config or GPCConfig()
        n, m = B.shape
        H = self.config.horizon
        self.n, self.m, self.H = n, m, H
        self.A, self.B, self.Q, self.R = A, B, Q, R
        if K is None:
            K, _ = dlqr(A, B, Q, R)
        K = np.ascontiguousarray(K, dtype=np.float64)
        if K.shape != (m, n):
            raise InputError(f"K must have shape ({m}, {n}); got {K.shape}")
        self.K = K
        self.Acl = A - B @ K
        rho = float(np.max(np.abs(np.linalg.eigvals(self.Acl))))
        if rho >= 1.0:
            raise InputError(f"A - B K is not stable (spectral radius {rho:.4f}); pass a "
                             "stabilising K or check (A, B)")
        self.cost: ConvexCost = cost if cost is not None else QuadraticCost(Q, R)
        # Precomputed maps of the counterfactual rollout (see module docstring). The rollout
        # is longer than the memory H when the closed loop is slow, so that the ideal cost
        # is not biased by truncating Acl^d.
        L_roll = self.config.rollout or self._auto_rollout()
        self.rollout = L_roll
        powers = np.empty((L_roll, n, n))
        powers[0] = np.eye(n)
        for d in range(1, L_roll):
            powers[d] = self.Acl @ powers[d - 1]
        self._Phicat = np.ascontiguousarray(powers.transpose(1, 0, 2).reshape(n, L_roll * n))
        self._Gcat = np.ascontiguousarray((powers @ B).transpose(1, 0, 2).reshape(n, L_roll * m))
        self._GcatT = np.ascontiguousarray(self._Gcat.T)
        self._KT = np.ascontiguousarray(K.T)
        # Policy parameters, flattened: u_M = Mflat @ [w_{t-1}; ...; w_{t-H}].
        self._Mflat = np.zeros((m, H * n))
        # Doubled ring buffer of disturbances, newest first: rows p..p+L-1 hold
        # w_{t-1}, w_{t-2}, ... (L = rollout + H), each written at p and p + L.
        L = L_roll + H
        self._L = L
        self._buf = np.zeros((2 * L, n))
        item = self._buf.itemsize
        self._windows = [self._buf[p:p + H].reshape(H * n) for p in range(L)]
        self._recent = [self._buf[p:p + L_roll].reshape(L_roll * n) for p in range(L)]
        self._stacks = [as_strided(self._buf[p:], shape=(L_roll + 1, H * n),
                                   strides=(n * item, item), writeable=False) for p in range(L)]
        self._p = 0
        self._Pfull = np.zeros((L_roll + 1, m))
        self._grad = np.zeros((m, H * n))
        self._x_pending = np.zeros(n)
        self._has_pending = False
        self._t = 0          # observed transitions
        self._n_steps = 0    # gradient steps taken
        self._g2_sum = 0.0   # adagrad accumulator
        self.last_disturbance = np.zeros(n)
        self.last_ideal_cost = 0.0

    def _auto_rollout(self) -> int:
        c = self.config
        P = np.linalg.matrix_power(self.Acl, c.horizon)
        L = c.horizon
        while L < c.max_rollout and np.linalg.norm(P, 2) > c.rollout_tol:
            P = self.Acl @ P
            L += 1
        return L

    # ------------------------------------------------------------------ policy
    @property
    def M(self) -> np.ndarray:
        """Policy matrices (H, m, n); ``M[i]`` multiplies ``w_{t-1-i}`` (a copy)."""
        return self._Mflat.reshape(self.m, self.H, self.n).transpose(1, 0, 2).copy()

    @M.setter
    def M(self, value: np.ndarray) -> None:
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (self.H, self.m, self.n):
            raise InputError(f"M must have shape ({self.H}, {self.m}, {self.n}); got {value.shape}")
        self._Mflat[...] = value.transpose(1, 0, 2).reshape(self.m, self.H * self.n)

    @property
    def steps(self) -> int:
        """Number of transitions observed by :meth:`update`."""
        return self._t

    def _check_vec(self, v: np.ndarray, size: int, name: str) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (size,):
            raise InputError(f"{name} must have shape ({size},); got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise InputError(f"{name} has non-finite entries: {v}")
        return v

    def lqr_action(self, x: np.ndarray) -> np.ndarray:
        """The stabilising part alone, ``-K x`` (m,)."""
        return -(self.K @ self._check_vec(x, self.n, "x"))

    def get_action(self, x: np.ndarray) -> np.ndarray:
        """Action at state ``x``: ``-K x + sum_i M_i w_{t-i}``.

        Args:
            x: (n,) float state (model coordinates).

        Returns:
            (m,) float64 action. ``x`` is remembered as the state the next
            :meth:`update` transition starts from.
        """
        x = self._check_vec(x, self.n, "x")
        self._x_pending[...] = x
        self._has_pending = True
        return self._Mflat @ self._windows[self._p] - self.K @ x

    # ------------------------------------------------------------------ learning
    def _step_size(self, gnorm2: float) -> float:
        c = self.config
        k = self._n_steps
        if c.lr_schedule == "constant":
            return c.lr
        if c.lr_schedule == "inv_sqrt":
            return c.lr / math.sqrt(k)
        if c.lr_schedule == "inv_t":
            return c.lr / k
        self._g2_sum += gnorm2
        return c.lr / math.sqrt(self._g2_sum) if self._g2_sum > 0.0 else 0.0

    def update(self, x_next: np.ndarray, u: np.ndarray,
               cost: ConvexCost | None = None) -> float:
        """Observe a transition and take a projected gradient step on the ideal cost.

        Args:
            x_next: (n,) state reached after applying ``u`` at the state last passed to
                :meth:`get_action`.
            u: (m,) the action actually applied there (after any saturation).
            cost: this step's cost function (time-varying costs); the constructor's if None.

        Returns:
            The stage cost ``c(x_t, u_t)`` of the observed step.

        Raises:
            InputError: no preceding :meth:`get_action`, or bad shapes / non-finite input.
        """
        if not self._has_pending:
            raise InputError("GPC.update() needs a preceding get_action(x) (the state the "
                             "transition started from); call reset() after a break")
        x_next = self._check_vec(x_next, self.n, "x_next")
        u = self._check_vec(u, self.m, "u")
        x = self._x_pending
        w = x_next - self.A @ x - self.B @ u
        self.last_disturbance = w
        # Push w_t: newest-first ring, pointer walks downwards.
        p = (self._p - 1) % self._L
        self._buf[p] = w
        self._buf[p + self._L] = w
        self._p = p
        self._t += 1
        self._has_pending = False
        c_fn = self.cost if cost is None else cost
        stage = float(c_fn(x, u))
        if self.config.lr > 0.0 and self._t % self.config.grad_every == 0:
            self._gradient_step(c_fn)
        return stage

    def _gradient_step(self, c_fn: ConvexCost) -> None:
        Lr, m = self.rollout, self.m
        Wst = self._stacks[self._p]                 # (Lr+1, H n): rows W_0 .. W_Lr
        UM = Wst @ self._Mflat.T                    # (Lr+1, m): M . W_d
        y = self._Gcat @ UM[1:].reshape(Lr * m) + self._Phicat @ self._recent[self._p]
        v = UM[0] - self.K @ y
        grad_fn = getattr(c_fn, "grad", None)
        if grad_fn is not None:
            gy, gv = grad_fn(y, v)
        else:
            gy, gv = fd_cost_grad(c_fn, y, v, self.config.fd_step)
        if isinstance(c_fn, QuadraticCost):  # y'Qy + v'Rv from the gradient already at hand
            self.last_ideal_cost = 0.5 * float(y @ gy + v @ gv)
        else:
            self.last_ideal_cost = float(c_fn(y, v))
        gy_tot = gy - self._KT @ gv
        P = self._Pfull
        P[0] = gv
        P[1:] = (self._GcatT @ gy_tot).reshape(Lr, m)
        np.matmul(P.T, Wst, out=self._grad)
        gnorm2 = float(np.einsum("ij,ij->", self._grad, self._grad))
        self._n_steps += 1
        eta = self._step_size(gnorm2)
        if eta == 0.0 or gnorm2 == 0.0:
            return
        self._Mflat -= eta * self._grad
        r = self.config.radius
        norm = math.sqrt(float(np.einsum("ij,ij->", self._Mflat, self._Mflat)))
        if norm > r:
            self._Mflat *= r / norm

    def reset(self, keep_policy: bool = True) -> None:
        """Forget the disturbance history (e.g. after an e-stop or a new goal).

        Args:
            keep_policy: keep the learnt ``M`` (True) or zero it (False: back to LQR and a
                fresh learning-rate schedule).
        """
        self._buf[...] = 0.0
        self._p = 0
        self._has_pending = False
        if not keep_policy:
            self._Mflat[...] = 0.0
            self._n_steps = 0
            self._g2_sum = 0.0
