"""The lean dense path for small graphs (perception/rotavg/fast.py) agrees with the general
solver: same cost, rotations, multipliers, dual bound and certificate on the same graphs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from katazuke.errors import InputError
from katazuke.perception.rotavg import (RotAvgConfig, RotationAveraging, ViewGraph, chordal_cost,
                                        read_graph, spectral_init,
                                        synthetic_graph)
from katazuke.perception.rotavg.fast import FAST_MAX_NODES, is_connected


def _graphs(shared_data: Path) -> list[tuple[str, ViewGraph]]:
    out = []
    for f in ["gtsam_Klaus3.g2o", "gtsam_pose3example.txt", "tinyGrid3D.g2o",
              "gtsam_pose3example-grid.txt"]:
        p = shared_data / "rotavg" / f
        if p.exists():
            out.append((f, read_graph(p)))
    rng = np.random.default_rng(3)
    for n, deg, noise in [(4, 3, 5.0), (20, 4, 10.0), (40, 6, 20.0), (100, 5, 1.0), (120, 10, 30.0)]:
        g, _, _ = synthetic_graph(n, deg, noise, rng)
        w = rng.uniform(0.5, 2.0, g.num_edges)  # non-uniform weights exercise the weighting
        out.append((f"synthetic n={n}", ViewGraph(g.num_nodes, g.edges, g.rotations, w, g.node_ids)))
    return out


def test_fast_path_agrees_with_general_path(shared_data: Path) -> None:
    fast_solver = RotationAveraging(RotAvgConfig())                 # auto: fast path
    general = RotationAveraging(RotAvgConfig(backend="dense"))     # the general dense path
    for name, g in _graphs(shared_data):
        a, b = fast_solver.solve(g), general.solve(g)
        assert a.backend == "fast-dense" and b.backend == "dense", name
        assert a.certificate.certified and b.certificate.certified, name
        assert abs(a.cost - b.cost) <= 1e-9 * max(b.cost, 1e-12), (name, a.cost, b.cost)
        assert a.cost == pytest.approx(chordal_cost(g, a.rotations), rel=1e-12, abs=1e-15)
        tol = a.certificate.tolerance
        assert tol == pytest.approx(b.certificate.tolerance)
        assert a.certificate.min_eigenvalue >= -tol and abs(
            a.certificate.min_eigenvalue - b.certificate.min_eigenvalue) <= tol, name
        assert a.certificate.dual_bound == pytest.approx(b.certificate.dual_bound, rel=1e-8, abs=1e-9)
        np.testing.assert_allclose(a.certificate.multipliers, b.certificate.multipliers, atol=1e-6)
        np.testing.assert_allclose(a.rotations, b.rotations, atol=1e-6)  # same gauge (anchor 0)
        assert np.allclose(a.rotations[0], np.eye(3))


def test_fast_path_with_initial_anchor_and_reused_workspace() -> None:
    rng = np.random.default_rng(5)
    solver = RotationAveraging(RotAvgConfig(anchor=3))
    ref = RotationAveraging(RotAvgConfig(anchor=3, backend="dense"))
    for n in (30, 60, 30):  # a size change and back: the workspace is re-sized correctly
        g, R_true, _ = synthetic_graph(n, 6, 5.0, rng)
        a = solver.solve(g, initial=R_true)
        b = ref.solve(g)
        assert a.backend == "fast-dense" and a.certificate.certified
        assert a.cost == pytest.approx(b.cost, rel=1e-9)
        np.testing.assert_allclose(a.rotations[3], np.eye(3), atol=1e-12)
        np.testing.assert_allclose(a.rotations, b.rotations, atol=1e-6)


def test_fast_spectral_init_matches_dense_eigensolver() -> None:
    rng = np.random.default_rng(7)
    for n, deg in ((6, 4), (50, 6), (FAST_MAX_NODES, 6)):
        g, _, _ = synthetic_graph(n, deg, 15.0, rng)
        fast_cost = chordal_cost(g, spectral_init(g))
        dense_cost = chordal_cost(g, spectral_init(g, backend="dense" if n <= 120 else "direct"))
        assert fast_cost == pytest.approx(dense_cost, rel=1e-5), n


def test_is_connected_matches_components() -> None:
    rng = np.random.default_rng(9)
    for trial in range(40):
        n = int(rng.integers(2, 40))
        m = int(rng.integers(0, 2 * n))
        E = rng.integers(0, n, size=(m, 2))
        E = E[E[:, 0] != E[:, 1]]
        g = ViewGraph(n, E, np.broadcast_to(np.eye(3), (E.shape[0], 3, 3)).copy(),
                      np.ones(E.shape[0]), np.arange(n))
        assert is_connected(n, E[:, 0], E[:, 1]) == (len(g.components()) == 1), trial
    # A path given in reverse order needs many label-propagation rounds.
    n = 50
    E = np.stack([np.arange(n - 1, 0, -1), np.arange(n - 2, -1, -1)], axis=1)
    assert is_connected(n, E[:, 0], E[:, 1])


def test_synthetic_graph_rejects_impossible_degree() -> None:
    with pytest.raises(InputError, match="complete graph"):
        synthetic_graph(6, 6, 1.0, np.random.default_rng(0))


def test_disconnected_small_graph_uses_general_path() -> None:
    rng = np.random.default_rng(11)
    g1, _, _ = synthetic_graph(10, 4, 5.0, rng)
    g2, _, _ = synthetic_graph(8, 4, 5.0, rng)
    E = np.concatenate([g1.edges, g2.edges + 10])
    g = ViewGraph.from_arrays(18, E, np.concatenate([g1.rotations, g2.rotations]))
    res = RotationAveraging().solve(g)
    assert res.backend != "fast-dense" and len(res.components) == 2
    assert res.certificate.certified
