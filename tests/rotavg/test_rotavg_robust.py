"""Robust mode (GNC-TLS): planted outliers are rejected and the inlier problem certified."""
from __future__ import annotations

import numpy as np

from katazuke.perception.rotavg import (RotAvgConfig, RotationAveraging, angle_between,
                                        synthetic_graph)


def test_planted_outliers_are_rejected(aligned_error_deg) -> None:
    g, R_true, out = synthetic_graph(200, 10, 3.0, np.random.default_rng(11), outlier_fraction=0.2)
    res = RotationAveraging(RotAvgConfig(robust=True)).solve(g)
    rejected = np.zeros(g.num_edges, dtype=bool)
    rejected[res.rejected_edges] = True
    # Outliers that happen to agree with the truth within the threshold are harmless.
    true_res = np.degrees(angle_between(np.swapaxes(R_true[g.edges[:, 0]], 1, 2) @ R_true[g.edges[:, 1]],
                                        g.rotations))
    gross = out & (true_res > 20.0)
    assert rejected[gross].all()
    assert rejected[~out].mean() < 0.01
    assert res.certificate.certified
    clean = RotationAveraging().solve(g.select_edges(~out))
    err_robust = aligned_error_deg(res.rotations, R_true).mean()
    err_clean = aligned_error_deg(clean.rotations, R_true).mean()
    assert err_robust <= 2.0 * err_clean
    # Least squares on the same graph is far worse.
    ls = RotationAveraging().solve(g)
    assert aligned_error_deg(ls.rotations, R_true).mean() > 3 * err_robust


def test_robust_mode_on_clean_data_rejects_nothing() -> None:
    g, _, _ = synthetic_graph(60, 6, 2.0, np.random.default_rng(12))
    res = RotationAveraging(RotAvgConfig(robust=True)).solve(g)
    assert res.rejected_edges.size == 0 and res.certificate.certified
