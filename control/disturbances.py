"""Disturbance sequences ``w_t`` (T, n) for the control benchmark.

Every family is scaled so that its root-mean-square per component is ``scale`` (same
energy across families), except where noted. ``adversarial`` is a bounded disturbance
chosen against a given LQR closed loop: a sinusoid at the frequency and along the input
direction where the closed-loop map from ``w`` to the cost output ``[Q^1/2 x; R^1/2 u]``
has the largest gain (the H-infinity worst case among sinusoids).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from katazuke.errors import InputError

__all__ = ["FAMILIES", "make_disturbance", "worst_case_sinusoid"]

FAMILIES: tuple[str, ...] = ("gaussian", "uniform", "sinusoidal", "step", "random_walk",
                             "adversarial")


def _rms_normalise(w: np.ndarray, scale: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(w * w)))
    return w * (scale / rms) if rms > 0 else w


def worst_case_sinusoid(A: np.ndarray, B: np.ndarray, K: np.ndarray, Q: np.ndarray,
                        R: np.ndarray, n_freq: int = 512) -> tuple[float, np.ndarray, float]:
    """Frequency and direction of the largest closed-loop gain ``w -> cost output``.

    Args:
        A, B: plant (n, n), (n, m). K: (m, n) gain (u = -Kx). Q, R: cost weights.
        n_freq: grid size over (0, pi] rad/sample.

    Returns:
        ``(omega rad/sample, v (n,) complex unit direction, gain)``.
    """
    n = A.shape[0]
    Acl = A - B @ K
    Cz = np.vstack([scipy.linalg.sqrtm(Q).real, -scipy.linalg.sqrtm(R).real @ K])
    best = (0.0, np.ones(n, dtype=complex) / np.sqrt(n), -1.0)
    for om in np.linspace(np.pi / n_freq, np.pi, n_freq):
        G = Cz @ np.linalg.inv(np.exp(1j * om) * np.eye(n) - Acl)
        _, s, Vh = np.linalg.svd(G)
        if s[0] > best[2]:
            best = (float(om), Vh[0].conj(), float(s[0]))
    return best


def make_disturbance(family: str, T: int, n: int, rng: np.random.Generator, scale: float = 0.1,
                     system: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
                     | None = None) -> np.ndarray:
    """Draw a disturbance sequence.

    Args:
        family: one of :data:`FAMILIES`.
        T: number of steps. n: state dimension.
        rng: random generator.
        scale: RMS per component.
        system: ``(A, B, K, Q, R)`` of the closed loop to attack; needed for 'adversarial'.

    Returns:
        (T, n) float64 array.

    Raises:
        InputError: unknown family or missing ``system`` for 'adversarial'.
    """
    if T < 1 or n < 1:
        raise InputError(f"need T >= 1 and n >= 1; got T={T}, n={n}")
    t = np.arange(T, dtype=np.float64)[:, None]
    if family == "gaussian":
        w = rng.standard_normal((T, n))
    elif family == "uniform":
        w = rng.uniform(-1.0, 1.0, size=(T, n))
    elif family == "sinusoidal":
        # A few incommensurate low frequencies per component (periods of 20-200 steps).
        k = 3
        om = rng.uniform(2 * np.pi / 200, 2 * np.pi / 20, size=(k, n))
        ph = rng.uniform(0, 2 * np.pi, size=(k, n))
        amp = rng.uniform(0.5, 1.0, size=(k, n))
        w = np.sum(amp[None] * np.sin(om[None] * t[:, :, None] + ph[None]), axis=1)  # (T, k, n) -> (T, n)
    elif family == "step":
        # Piecewise constant: a new random level every T/5 steps (a push, a slope, a load).
        n_seg = 5
        levels = rng.standard_normal((n_seg, n))
        seg = np.minimum((np.arange(T) * n_seg) // T, n_seg - 1)
        w = levels[seg]
    elif family == "random_walk":
        # Reflected random walk: slowly drifting bias, bounded in [-1, 1] per component.
        w = np.empty((T, n))
        cur = rng.uniform(-0.5, 0.5, size=n)
        steps = 0.05 * rng.standard_normal((T, n))
        for i in range(T):
            cur = cur + steps[i]
            cur = np.where(cur > 1.0, 2.0 - cur, cur)
            cur = np.where(cur < -1.0, -2.0 - cur, cur)
            w[i] = cur
    elif family == "adversarial":
        if system is None:
            raise InputError("the 'adversarial' family needs system=(A, B, K, Q, R)")
        A, B, K, Q, R = system
        om, v, _ = worst_case_sinusoid(A, B, K, Q, R)
        w = np.real(v[None, :] * np.exp(1j * om * t))
        # Bounded: clip each component to its own RMS envelope (a square-ish wave), which
        # keeps the energy at the resonant frequency and adds odd harmonics.
        w = np.sign(w) * np.minimum(np.abs(w), np.sqrt(np.mean(w * w, axis=0)))
    else:
        raise InputError(f"unknown disturbance family {family!r}; use one of {list(FAMILIES)}")
    return np.ascontiguousarray(_rms_normalise(w, scale))
