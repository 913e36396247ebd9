"""Least-squares system identification."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.control import dlqr, exploration_actions, identify, random_stabilisable
from katazuke.errors import InputError


def test_identify_recovers_a_b_from_an_explored_closed_loop() -> None:
    rng = np.random.default_rng(0)
    s = random_stabilisable(4, 2, rng, spectral_radius=1.2)
    K, _ = dlqr(s.A, s.B, s.Q, s.R)
    T = 3000
    U_explore = exploration_actions(rng, T, 2, scale=1.0)
    X = np.zeros((T + 1, 4))
    U = np.zeros((T, 2))
    for t in range(T):
        U[t] = -K @ X[t] + U_explore[t]
        X[t + 1] = s.A @ X[t] + s.B @ U[t] + 0.05 * rng.standard_normal(4)
    A, B, res = identify(X, U)
    assert np.abs(A - s.A).max() < 0.02 and np.abs(B - s.B).max() < 0.02
    assert res.shape == (T, 4) and np.std(res) == pytest.approx(0.05, rel=0.1)
    # Several trajectories at once give the same estimate as their concatenation's pairs.
    A2, B2, _ = identify([X[:1501], X[1500:]], [U[:1500], U[1500:]])
    assert np.allclose(A2, A) and np.allclose(B2, B)


def test_identify_refuses_unexcited_data() -> None:
    rng = np.random.default_rng(1)
    s = random_stabilisable(3, 1, rng)
    K, _ = dlqr(s.A, s.B, s.Q, s.R)
    X = np.zeros((50, 3))
    X[0] = 1.0
    U = np.zeros((49, 1))
    for t in range(49):          # pure feedback, no noise: u is a linear function of x
        U[t] = -K @ X[t]
        X[t + 1] = s.A @ X[t] + s.B @ U[t]
    with pytest.raises(InputError, match="exploration noise"):
        identify(X, U)
    with pytest.raises(InputError, match=r"\(T\+1, n\)"):
        identify(X, U[:10])
