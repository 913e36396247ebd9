"""Benchmark plants: discrete-time linear systems ``x_{t+1} = A x_t + B u_t + w_t``.

Each constructor returns a :class:`LinearSystem` with its cost weights, so a benchmark
can loop over systems without knowing what they model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from katazuke.errors import InputError

__all__ = ["LinearSystem", "random_stabilisable", "double_integrator", "holonomic_base",
           "arm_joint", "is_stabilisable", "benchmark_systems"]


@dataclass(frozen=True)
class LinearSystem:
    """A discrete-time LTI plant with a quadratic cost.

    Attributes:
        name: short identifier used in benchmark tables.
        A: (n, n) state matrix. B: (n, m) input matrix.
        Q: (n, n) PSD state cost. R: (m, m) PD input cost.
        dt: sampling period in seconds (informational).
    """

    name: str
    A: np.ndarray
    B: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    dt: float

    @property
    def n(self) -> int:
        return int(self.A.shape[0])

    @property
    def m(self) -> int:
        return int(self.B.shape[1])


def is_stabilisable(A: np.ndarray, B: np.ndarray, tol: float = 1e-9) -> bool:
    """PBH test: ``rank [A - lambda I, B] = n`` for every eigenvalue with ``|lambda| >= 1``."""
    n = A.shape[0]
    for lam in np.linalg.eigvals(A):
        if abs(lam) >= 1.0 - 1e-12:
            M = np.hstack([A - lam * np.eye(n), B])
            if np.linalg.matrix_rank(M, tol=tol * max(1.0, np.abs(M).max())) < n:
                return False
    return True


def random_stabilisable(n: int, m: int, rng: np.random.Generator,
                        spectral_radius: float = 1.1) -> LinearSystem:
    """A random stabilisable system, usually open-loop unstable.

    ``A`` is a random orthogonal-times-diagonal matrix scaled to the given spectral radius,
    ``B`` a Gaussian (n, m) matrix (redrawn until the PBH test passes); Q = I, R = I.

    Args:
        n: state dimension >= 1. m: input dimension >= 1.
        rng: random generator.
        spectral_radius: largest |eigenvalue| of A (> 1: unstable).
    """
    if n < 1 or m < 1:
        raise InputError(f"need n >= 1 and m >= 1; got n={n}, m={m}")
    for _ in range(100):
        U, _r = np.linalg.qr(rng.standard_normal((n, n)))
        eig = rng.uniform(0.3, 1.0, size=n) * spectral_radius
        eig[0] = spectral_radius
        A = U @ np.diag(eig * rng.choice([-1.0, 1.0], size=n)) @ U.T
        A = A + 0.1 * rng.standard_normal((n, n)) / np.sqrt(n)
        A *= spectral_radius / max(np.abs(np.linalg.eigvals(A)).max(), 1e-9)
        B = rng.standard_normal((n, m)) / np.sqrt(n)
        if is_stabilisable(A, B):
            return LinearSystem(f"random_n{n}_m{m}", A, B, np.eye(n), np.eye(m), 1.0)
    raise InputError("could not draw a stabilisable system in 100 tries")  # pragma: no cover


def double_integrator(dt: float = 0.1) -> LinearSystem:
    """Point mass on a line: state (position m, velocity m/s), input acceleration m/s^2."""
    A = np.array([[1.0, dt], [0.0, 1.0]])
    B = np.array([[0.5 * dt * dt], [dt]])
    return LinearSystem("double_integrator", A, B, np.diag([1.0, 0.1]), np.array([[0.1]]), dt)


def holonomic_base(dt: float = 0.05, damping_per_s: float = 0.5) -> LinearSystem:
    """Holonomic base linearised about rest, per axis (x, y, yaw) a damped double integrator.

    State (6,): [x m, y m, yaw rad, vx m/s, vy m/s, wz rad/s] in the world frame;
    input (3,): commanded accelerations [ax m/s^2, ay m/s^2, alpha rad/s^2].
    """
    a = np.exp(-damping_per_s * dt)
    Ad = np.array([[1.0, dt], [0.0, a]])
    Bd = np.array([[0.5 * dt * dt], [dt]])
    A = np.zeros((6, 6))
    B = np.zeros((6, 3))
    for i in range(3):
        idx = [i, 3 + i]
        A[np.ix_(idx, idx)] = Ad
        B[np.ix_(idx, [i])] = Bd
    Q = np.diag([1.0, 1.0, 0.5, 0.05, 0.05, 0.02])
    R = np.diag([0.05, 0.05, 0.02])
    return LinearSystem("holonomic_base", A, B, Q, R, dt)


def arm_joint(dt: float = 0.02, inertia: float = 0.05, damping: float = 0.02,
              gravity_stiffness: float = 0.4) -> LinearSystem:
    """One arm joint linearised about an upright (unstable) configuration.

    ``I qdd = tau - b qd + k q`` (k > 0: gravity pushes away from upright), discretised by
    the matrix exponential (zero-order hold). State (2,): [q rad, qd rad/s]; input (1,):
    torque N m.
    """
    Ac = np.array([[0.0, 1.0], [gravity_stiffness / inertia, -damping / inertia]])
    Bc = np.array([[0.0], [1.0 / inertia]])
    E = scipy.linalg.expm(np.block([[Ac, Bc], [np.zeros((1, 3))]]) * dt)
    A, B = E[:2, :2], E[:2, 2:]
    return LinearSystem("arm_joint", A, B, np.diag([1.0, 0.01]), np.array([[0.01]]), dt)


def benchmark_systems(rng: np.random.Generator) -> list[LinearSystem]:
    """The benchmark set: a random unstable system, double integrator, base, arm joint."""
    return [random_stabilisable(4, 2, rng), double_integrator(), holonomic_base(), arm_joint()]
