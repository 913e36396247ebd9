"""Rotation averaging against its definitions (not against another code path):

- robust mode rejects exactly the edges whose residual angle exceeds
  ``robust_threshold_deg`` (chordal^2 = 8 sin^2(theta / 2));
- the certificate tolerance is ``certificate_tol`` times the *mean* weighted degree,
  on every solver path.
"""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.perception.rotavg import (RotAvgConfig, RotationAveraging, ViewGraph, certify,
                                        exp_so3, random_rotations, synthetic_graph)


def _graph_with_perturbed_edges(angles_deg: dict[tuple[int, int], float], n: int = 8,
                                heavy: float = 100.0) -> ViewGraph:
    """A complete graph with exact measurements; the edges in ``angles_deg`` are rotated by
    that angle (about a fixed axis) and weighted 1, all others ``heavy``. The heavy exact
    edges pin the solution to the truth, so a perturbed edge's residual is its angle."""
    rng = np.random.default_rng(4)
    R = random_rotations(n, rng)
    edges, rel, w = [], [], []
    for i in range(n):
        for j in range(i + 1, n):
            Rij = R[i].T @ R[j]
            if (i, j) in angles_deg:
                axis = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
                Rij = Rij @ exp_so3(np.deg2rad(angles_deg[i, j]) * axis[None])[0]
                w.append(1.0)
            else:
                w.append(heavy)
            edges.append((i, j))
            rel.append(Rij)
    return ViewGraph.from_arrays(n, np.array(edges), np.array(rel), np.array(w))


@pytest.mark.parametrize("threshold_deg", [15.0, 30.0])
def test_robust_threshold_is_the_residual_angle(threshold_deg: float) -> None:
    """An edge 1 deg under the threshold is kept, one 1 deg over is rejected."""
    under, over = (0, 1), (2, 3)
    g = _graph_with_perturbed_edges({under: threshold_deg - 1.0, over: threshold_deg + 1.0})
    res = RotationAveraging(RotAvgConfig(robust=True, robust_threshold_deg=threshold_deg)).solve(g)
    rejected = {tuple(e) for e in g.edges[res.rejected_edges].tolist()}
    assert rejected == {over}, rejected
    assert res.certificate.certified


def _mean_weighted_degree(g: ViewGraph) -> float:
    return 2.0 * float(g.weights.sum()) / g.num_nodes


@pytest.mark.parametrize("backend,expected", [("auto", "fast-dense"), ("dense", "dense"),
                                              ("direct", "direct"), ("iterative", "iterative")])
def test_certificate_tolerance_is_relative_to_the_mean_weighted_degree(backend, expected) -> None:
    rng = np.random.default_rng(8)
    g, _, _ = synthetic_graph(30, 5, 5.0, rng)
    g = ViewGraph(g.num_nodes, g.edges, g.rotations, rng.uniform(0.5, 3.0, g.num_edges), g.node_ids)
    cfg = RotAvgConfig(backend=backend, certificate_tol=2e-6)
    res = RotationAveraging(cfg).solve(g)
    assert res.backend == expected
    assert res.certificate.tolerance == pytest.approx(2e-6 * _mean_weighted_degree(g), rel=1e-12)
    assert certify(g, res.rotations, cfg).tolerance == pytest.approx(
        2e-6 * _mean_weighted_degree(g), rel=1e-12)
