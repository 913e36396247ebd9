"""Rotation averaging solver: recovery up to gauge, certificate, derivatives, staircase."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.errors import ConfigError, InputError
from katazuke.perception.rotavg import (RotAvgConfig, RotationAveraging, ViewGraph, certify,
                                        chordal_cost, exp_so3, log_so3, project_to_so3,
                                        quat_to_rot, random_rotations, rot_to_quat, rot_to_rpy,
                                        rpy_to_rot, spectral_init, synthetic_graph)
from katazuke.perception.rotavg.solver import _Problem


# -- SO(3) helpers -------------------------------------------------------------------------
def test_exp_log_quat_rpy_round_trips() -> None:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((200, 3)) * rng.uniform(0, 3.0, (200, 1))
    v = np.concatenate([v, 1e-9 * rng.standard_normal((5, 3)), [[np.pi - 1e-5, 0, 0]]])
    R = exp_so3(v)
    np.testing.assert_allclose(np.swapaxes(R, 1, 2) @ R, np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(exp_so3(log_so3(R)), R, atol=1e-9)
    np.testing.assert_allclose(quat_to_rot(rot_to_quat(R)), R, atol=1e-12)
    np.testing.assert_allclose(rpy_to_rot(rot_to_rpy(R)), R, atol=1e-9)
    M = R + 1e-2 * rng.standard_normal(R.shape)
    P = project_to_so3(M)
    assert np.all(np.linalg.det(P) > 0.999)


def test_gradient_and_hessian_match_finite_differences() -> None:
    rng = np.random.default_rng(1)
    g, _, _ = synthetic_graph(12, 4, 20.0, rng)
    prob = _Problem(g, g.weights, RotAvgConfig(), 0)
    R = random_rotations(12, rng)
    D, _ = prob.edge_terms(R)
    grad = 2.0 * prob.gradient(D).reshape(-1)        # gradient() is half the gradient
    H = 2.0 * np.asarray(prob.hessian(R))            # hessian() is half the Hessian (dense: n <= 120)

    def f(d: np.ndarray) -> float:
        return prob.cost(R @ exp_so3(d.reshape(-1, 3)))

    h = 1e-5
    E = np.eye(36)
    num_g = np.array([(f(h * e) - f(-h * e)) / (2 * h) for e in E])
    np.testing.assert_allclose(grad, num_g, rtol=1e-6, atol=1e-7)
    d = rng.standard_normal(36)
    # Second directional derivative along d equals d^T H d (symmetrised pull-back Hessian).
    num_h = (f(h * d) - 2 * f(0 * d) + f(-h * d)) / h ** 2
    assert num_h == pytest.approx(d @ H @ d, rel=1e-4)


# -- recovery and certificate --------------------------------------------------------------
@pytest.mark.parametrize("n, degree", [(30, 4), (700, 8)])  # dense eig / sparse LU or LOBPCG
def test_noise_free_rotations_are_recovered_up_to_gauge_and_certified(n: int, degree: int) -> None:
    g, R_true, _ = synthetic_graph(n, degree, 0.0, np.random.default_rng(2))
    res = RotationAveraging().solve(g)
    assert res.cost < 1e-12
    G = R_true[0] @ res.rotations[0].T  # node 0 is the anchor in both
    np.testing.assert_allclose(G[None] @ res.rotations, R_true, atol=1e-9)
    np.testing.assert_allclose(res.rotations[0], np.eye(3), atol=1e-12)  # anchor = identity
    c = res.certificate
    assert c.certified and c.min_eigenvalue > -c.tolerance
    assert c.dual_bound <= c.primal_cost + 1e-9


@pytest.mark.parametrize("backend", ["direct", "iterative"])
def test_moderate_noise_is_certified_and_beats_the_spectral_start(backend: str,
                                                                  aligned_error_deg) -> None:
    g, R_true, _ = synthetic_graph(400, 6, 10.0, np.random.default_rng(3))
    res = RotationAveraging(RotAvgConfig(backend=backend)).solve(g)
    c = res.certificate
    assert c.certified
    assert abs(c.min_eigenvalue) < 1e-8
    assert 0 <= c.duality_gap <= 1e-8 * c.primal_cost + 1e-12
    assert res.cost <= chordal_cost(g, spectral_init(g)) + 1e-12
    assert res.cost == pytest.approx(chordal_cost(g, res.rotations))
    # The optimum is a first-order point: Lambda is symmetric PSD-compatible and S X^T ~ 0.
    assert aligned_error_deg(res.rotations, R_true).mean() < 10.0
    # Certifying the returned rotations separately gives the same answer.
    c2 = certify(g, res.rotations, RotAvgConfig(backend=backend))
    assert c2.certified and c2.primal_cost == pytest.approx(res.cost)


def test_both_backends_reach_the_same_optimum(aligned_error_deg) -> None:
    g, _, _ = synthetic_graph(300, 5, 15.0, np.random.default_rng(4))
    a = RotationAveraging(RotAvgConfig(backend="direct")).solve(g)
    b = RotationAveraging(RotAvgConfig(backend="iterative")).solve(g)
    assert a.cost == pytest.approx(b.cost, rel=1e-10)
    assert aligned_error_deg(a.rotations, b.rotations).max() < 1e-5


def test_local_minimum_is_not_certified_and_the_staircase_escapes() -> None:
    """Seeded crafted case: high noise, random start -> rank-3 local minimum."""
    rng = np.random.default_rng(29)
    n = int(rng.integers(5, 12))
    g, _, _ = synthetic_graph(n, 3, float(rng.choice([40, 60, 90])), rng)
    R0 = random_rotations(n, rng)
    local = RotationAveraging(RotAvgConfig(staircase_max_rank=3)).solve(g, initial=R0)
    assert not local.certificate.certified
    assert local.certificate.min_eigenvalue < -0.1
    assert not certify(g, local.rotations).certified
    glob = RotationAveraging().solve(g, initial=R0)
    assert glob.certificate.certified
    assert glob.cost < local.cost - 1.0
    assert any("staircase certified" in note for note in glob.notes)


def test_non_tight_high_noise_case_reports_a_valid_lower_bound() -> None:
    rng = np.random.default_rng(5)
    n = int(rng.integers(5, 12))
    g, _, _ = synthetic_graph(n, 3, float(rng.choice([40, 60, 90])), rng)
    res = RotationAveraging().solve(g, initial=random_rotations(n, rng))
    c = res.certificate
    assert not c.certified
    assert c.rank > 3                       # bound from the higher-rank SDP factor
    assert c.dual_bound <= c.primal_cost
    # No other start does better than the certified-at-rank-p lower bound.
    for seed in range(5):
        other = RotationAveraging(RotAvgConfig(staircase_max_rank=3)).solve(
            g, initial=random_rotations(n, np.random.default_rng(100 + seed)))
        assert other.cost >= c.dual_bound - 1e-9


def test_weights_matter_and_unweighted_ignores_them() -> None:
    g, _, _ = synthetic_graph(40, 4, 10.0, np.random.default_rng(6))
    w = np.random.default_rng(7).uniform(0.1, 10.0, g.num_edges)
    gw = ViewGraph.from_arrays(g.num_nodes, g.edges, g.rotations, w)
    a = RotationAveraging().solve(gw)
    b = RotationAveraging(RotAvgConfig(weighted=False)).solve(gw)
    assert a.certificate.certified and b.certificate.certified
    assert a.cost == pytest.approx(chordal_cost(gw, a.rotations))
    assert b.cost == pytest.approx(chordal_cost(g, b.rotations))
    assert chordal_cost(gw, a.rotations) <= chordal_cost(gw, b.rotations) + 1e-12


# -- input handling ------------------------------------------------------------------------
def test_disconnected_graph_is_solved_per_component(aligned_error_deg) -> None:
    rng = np.random.default_rng(8)
    g1, R1, _ = synthetic_graph(20, 4, 0.0, rng)
    g2, R2, _ = synthetic_graph(15, 4, 0.0, rng)
    E = np.concatenate([g1.edges, g2.edges + 20])
    g = ViewGraph.from_arrays(36, E, np.concatenate([g1.rotations, g2.rotations]))  # node 35 isolated
    res = RotationAveraging().solve(g)
    assert [c.size for c in res.components] == [20, 15, 1]
    assert any("3 connected components" in note for note in res.notes)
    assert res.certificate.certified and res.cost < 1e-12
    assert aligned_error_deg(res.rotations[:20], R1).max() < 1e-4
    assert aligned_error_deg(res.rotations[20:35], R2).max() < 1e-4


def test_non_orthonormal_input_follows_the_rotation_rule() -> None:
    """Within ROTATION_TOL projected silently; 5 % off refused, naming edge and deviation."""
    from katazuke.perception.rotavg import ROTATION_TOL

    g, _, _ = synthetic_graph(10, 3, 1.0, np.random.default_rng(9))
    near = g.rotations.copy()
    near[0] *= 1.0 + 0.5 * ROTATION_TOL
    g2 = ViewGraph.from_arrays(10, g.edges, near)
    np.testing.assert_allclose(g2.rotations[0], g.rotations[0], atol=1e-12)
    bad = g.rotations.copy()
    bad[0] *= 1.05
    with pytest.raises(InputError, match=r"edge 0: relative rotation is not orthonormal "
                                         r"\(deviation 0\.05"):
        ViewGraph.from_arrays(10, g.edges, bad)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(edges=np.array([[0, 5]])), "outside 0..2"),
    (dict(edges=np.array([[1, 1]])), "self loop"),
    (dict(rotations=np.full((1, 3, 3), np.nan)), "NaN"),
    (dict(rotations=np.eye(3)[None] * np.array([1, 1, -1.0])), "reflection"),
    (dict(weights=np.array([-1.0])), "weights must be finite and > 0"),
    (dict(weights=np.array([1.0, 2.0])), "one entry per edge"),
    (dict(rotations=np.eye(3)[None].repeat(2, 0)), "shape (1, 3, 3)"),
])
def test_bad_arrays_are_input_errors(kwargs: dict, needle: str) -> None:
    args = dict(num_nodes=3, edges=np.array([[0, 1]]), rotations=np.eye(3)[None], weights=None)
    args.update(kwargs)
    with pytest.raises(InputError) as exc:
        ViewGraph.from_arrays(**args)
    assert needle in str(exc.value)


def test_bad_config_and_anchor() -> None:
    with pytest.raises(ConfigError):
        RotAvgConfig(robust_threshold_deg=0.0)
    g, _, _ = synthetic_graph(5, 2, 1.0, np.random.default_rng(10))
    with pytest.raises(InputError, match="anchor 9"):
        RotationAveraging(RotAvgConfig(anchor=9)).solve(g)
    res = RotationAveraging(RotAvgConfig(anchor=3)).solve(g)
    np.testing.assert_allclose(res.rotations[3], np.eye(3), atol=1e-12)
