"""Shrunk, seeded regression of rotation averaging with pinned figures.

- synthetic (seeded): a 40-node graph with 5 deg noise (least squares) and a 60-node graph
  with 15 % outliers (robust mode): cost, duality gap, certified, rejected edges, per-node
  error against the truth (mean and max, deg, up to gauge);
- real: ``smallGrid3D.g2o`` from the shared data (skipped when absent): cost, duality gap,
  certified, largest edge residual (deg).

Pinned in tests/rotavg/data/regression_rotavg_*.json: costs and errors ``rel=1e-6``, gaps
``abs=1e-6 * cost`` (they are ~0 when certified), counts exactly. Re-record after an intended
change with

    python -P -m pytest tests/rotavg/test_rotavg_regression.py --record-pinned

and review the JSON diff.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from katazuke.perception.rotavg import (RotAvgConfig, RotationAveraging, ViewGraph, angle_between,
                                        read_graph, synthetic_graph)

DATA = Path(__file__).resolve().parent / "data"


def _solution_figures(prefix: str, g: ViewGraph, res) -> dict[str, float]:
    R = res.rotations
    kept = np.setdiff1d(np.arange(g.num_edges), res.rejected_edges)
    I, J = g.edges[kept, 0], g.edges[kept, 1]
    residual = np.degrees(angle_between(np.swapaxes(R[I], 1, 2) @ R[J], g.rotations[kept]))
    return {f"{prefix}/cost": float(res.cost),
            f"{prefix}/duality_gap": float(res.certificate.duality_gap),
            f"{prefix}/certified": float(res.certificate.certified),
            f"{prefix}/rejected_edges": float(res.rejected_edges.size),
            f"{prefix}/max_edge_residual_deg": float(residual.max())}


def _tolerances(got: dict[str, float]) -> dict[str, tuple[float, float]]:
    tol = {}
    for k in got:
        if k.endswith("duality_gap"):
            tol[k] = (0.0, 1e-6 * got[k.replace("duality_gap", "cost")])
        elif k.endswith(("certified", "rejected_edges")):
            tol[k] = (0.0, 0.0)
        else:
            tol[k] = (1e-6, 0.0)
    return tol


def measure_synthetic(aligned_error_deg) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, args, cfg in [("ls_n40", (40, 6, 5.0, 31, 0.0), RotAvgConfig()),
                            ("robust_n60", (60, 8, 3.0, 32, 0.15), RotAvgConfig(robust=True))]:
        n, deg, noise, seed, outliers = args
        g, R_true, _ = synthetic_graph(n, deg, noise, np.random.default_rng(seed),
                                       outlier_fraction=outliers)
        res = RotationAveraging(cfg).solve(g)
        out.update(_solution_figures(name, g, res))
        err = aligned_error_deg(res.rotations, R_true)
        out[f"{name}/mean_error_deg"] = float(err.mean())
        out[f"{name}/max_error_deg"] = float(err.max())
    return out


def test_synthetic_graphs_match_pinned_figures(pinned, aligned_error_deg) -> None:
    got = measure_synthetic(aligned_error_deg)
    pinned(got, DATA / "regression_rotavg_synthetic.json", _tolerances(got))


def test_small_grid_file_matches_pinned_figures(pinned, shared_data: Path) -> None:
    p = shared_data / "rotavg" / "smallGrid3D.g2o"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    g = read_graph(p)
    got = _solution_figures("smallGrid3D", g, RotationAveraging().solve(g))
    pinned(got, DATA / "regression_rotavg_smallGrid3D.json", _tolerances(got))
