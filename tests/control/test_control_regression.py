"""Shrunk, seeded regression of the control pipeline with pinned figures.

LQR and GPC (default config) on a double integrator and on a seeded random 4-state system,
each under a seeded sinusoidal and a Gaussian disturbance (T = 400): total cost of each
controller and their ratio. Pinned in tests/control/data/regression_control.json with
``rel=1e-6`` (the arithmetic is deterministic; a 20 % change fails by far). Re-record after an
intended change with

    python -P -m pytest tests/control/test_control_regression.py --record-pinned

and review the JSON diff.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from katazuke.control import GPCConfig, dlqr, double_integrator, make_disturbance, random_stabilisable
from katazuke.control.regret import rollout_gpc, rollout_lqr

EXPECTED = Path(__file__).resolve().parent / "data" / "regression_control.json"
T = 400


def measure() -> dict[str, float]:
    rng = np.random.default_rng(2024)
    systems = {"double_integrator": double_integrator(0.1),
               "random4": random_stabilisable(4, 2, rng)}
    out: dict[str, float] = {}
    for name, s in systems.items():
        K, _ = dlqr(s.A, s.B, s.Q, s.R)
        for family in ("sinusoidal", "gaussian"):
            W = make_disturbance(family, T, s.A.shape[0], np.random.default_rng(7), scale=0.1)
            lqr = float(rollout_lqr(s.A, s.B, s.Q, s.R, K, W).sum())
            gpc = float(rollout_gpc(s.A, s.B, s.Q, s.R, W, GPCConfig())[0].sum())
            out[f"{name}/{family}/lqr_cost"] = lqr
            out[f"{name}/{family}/gpc_cost"] = gpc
            out[f"{name}/{family}/gpc_over_lqr"] = gpc / lqr
    return out


def test_control_costs_match_pinned_figures(pinned) -> None:
    got = measure()
    pinned(got, EXPECTED, {k: (1e-6, 0.0) for k in got})
