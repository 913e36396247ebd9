"""LQR (infinite and finite horizon) and the H-infinity baseline, tested by properties."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.bench.control import dlqr_agreement
from katazuke.control import (dlqr, finite_horizon_lqr, hinf_state_feedback, random_stabilisable,
                              riccati_residual)
from katazuke.control.disturbances import make_disturbance
from katazuke.control.regret import rollout_lqr
from katazuke.errors import InputError


def test_both_control_packages_coexist() -> None:
    import control as pyctrl

    import katazuke.control as kc

    assert hasattr(pyctrl, "dlqr") and hasattr(pyctrl, "TransferFunction")
    assert kc.__name__ == "katazuke.control" and "GPC" in kc.__all__
    assert pyctrl.__file__ != kc.__file__


def test_gain_matches_python_control_on_20_random_systems() -> None:
    res = dlqr_agreement(20, np.random.default_rng(0))
    assert res["max_abs_gain_diff"] < 1e-8
    # Relative residual; the worst of these random systems is nearly uncontrollable
    # (||P|| ~ 3e8), where double precision leaves ~1e-7.
    assert res["max_riccati_residual"] < 1e-6


@pytest.mark.parametrize("seed", range(5))
def test_riccati_residual_and_closed_loop_stability(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = random_stabilisable(5, 2, rng, spectral_radius=1.3)
    K, P = dlqr(s.A, s.B, s.Q, s.R)
    assert riccati_residual(s.A, s.B, s.Q, s.R, P) < 1e-10
    assert np.abs(np.linalg.eigvals(s.A - s.B @ K)).max() < 1.0
    assert np.allclose(P, P.T) and np.linalg.eigvalsh(P).min() > 0


def test_finite_horizon_converges_to_the_dare_and_is_optimal() -> None:
    rng = np.random.default_rng(1)
    s = random_stabilisable(4, 2, rng)
    K, P = dlqr(s.A, s.B, s.Q, s.R)
    Ks, Ps = finite_horizon_lqr(s.A, s.B, s.Q, s.R, 300)
    assert np.abs(Ks[0] - K).max() < 1e-8 and np.abs(Ps[0] - P).max() < 1e-6
    # Cost-to-go of a short horizon equals the simulated cost of the time-varying policy.
    N = 6
    Ks, Ps = finite_horizon_lqr(s.A, s.B, s.Q, s.R, N, Qf=3 * np.eye(4))
    x0 = rng.standard_normal(4)
    x, cost = x0.copy(), 0.0
    for t in range(N):
        u = -Ks[t] @ x
        cost += x @ s.Q @ x + u @ s.R @ u
        x = s.A @ x + s.B @ u
    cost += 3 * x @ x
    assert cost == pytest.approx(x0 @ Ps[0] @ x0, rel=1e-10)
    # Any perturbation of the first action costs more.
    u0 = -Ks[0] @ x0 + 0.1 * rng.standard_normal(2)
    x = s.A @ x0 + s.B @ u0
    assert x0 @ s.Q @ x0 + u0 @ s.R @ u0 + x @ Ps[1] @ x > x0 @ Ps[0] @ x0


def test_bad_inputs_name_what_to_fix() -> None:
    with pytest.raises(InputError, match="A must be square"):
        dlqr(np.ones((2, 3)), np.ones((2, 1)))
    with pytest.raises(InputError, match="R must be positive definite"):
        dlqr(np.eye(2), np.ones((2, 1)), np.eye(2), np.zeros((1, 1)))
    with pytest.raises(InputError, match="stabilisable"):
        dlqr(np.diag([2.0, 0.5]), np.array([[0.0], [1.0]]))  # unstable mode not actuated
    with pytest.raises(InputError, match="horizon"):
        finite_horizon_lqr(np.eye(2), np.eye(2), None, None, 0)


def test_hinf_tends_to_lqr_and_resists_the_worst_case() -> None:
    rng = np.random.default_rng(2)
    s = random_stabilisable(3, 1, rng)
    K, _ = dlqr(s.A, s.B, s.Q, s.R)
    K_big, _, _ = hinf_state_feedback(s.A, s.B, s.Q, s.R, gamma=1e6)
    assert np.abs(K_big - K).max() < 1e-6
    K_h, _, gamma = hinf_state_feedback(s.A, s.B, s.Q, s.R)
    W = make_disturbance("adversarial", 2000, 3, rng, 0.1, (s.A, s.B, K, s.Q, s.R))
    assert rollout_lqr(s.A, s.B, s.Q, s.R, K_h, W).sum() < rollout_lqr(s.A, s.B, s.Q, s.R, K, W).sum()
    with pytest.raises(InputError, match="infeasible"):
        hinf_state_feedback(s.A, s.B, s.Q, s.R, gamma=0.5 * gamma / 1.2)
