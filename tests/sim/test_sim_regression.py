"""Shrunk, seeded regression of the simulator with pinned figures (TidyEnv public API only).

One seeded episode (``train`` profile, seed 21): object count and pose statistics after
``reset``, pixel statistics of the head camera frame, and odometry and true base pose after a
fixed 2 s command sequence. Pinned in tests/sim/data/regression_sim.json (poses and odometry
``abs=1e-4`` m/rad, pixel means ``abs=0.5`` of 255, depth ``rel=1e-3``, counts exactly).
Re-record after an intended change with

    python -P -m pytest tests/sim/test_sim_regression.py --record-pinned

and review the JSON diff.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from katazuke.sim import Action, EnvConfig, TidyEnv

pytestmark = pytest.mark.sim

EXPECTED = Path(__file__).resolve().parent / "data" / "regression_sim.json"
COMMANDS = [((0.3, 0.0, 0.0), 20), ((0.0, 0.0, 0.8), 20), ((0.2, 0.1, -0.4), 20)]  # twist, steps


def measure() -> dict[str, float]:
    env = TidyEnv(EnvConfig(profile="train", render_observation=False))
    try:
        env.reset(seed=21)
        objs = env.ground_truth_objects()
        P = np.stack([o.T_world_obj[:3, 3] for o in objs])
        out = {"objects/count": float(len(objs)),
               "objects/held_out": float(sum(o.held_out for o in objs))}
        for a, axis in enumerate("xyz"):
            out[f"objects/mean_{axis}"] = float(P[:, a].mean())
            out[f"objects/std_{axis}"] = float(P[:, a].std())
        f = env.render_head()
        for c, name in enumerate("rgb"):
            out[f"head/mean_{name}"] = float(f.rgb[..., c].mean())
        finite = np.isfinite(f.depth)
        out["head/depth_finite_fraction"] = float(finite.mean())
        out["head/depth_mean_m"] = float(f.depth[finite].mean())
        out["head/segmented_objects"] = float(len({int(u) for u in np.unique(f.segmentation)}
                                                  & {o.id for o in objs}))
        for twist, steps in COMMANDS:
            for _ in range(steps):
                env.step(Action(base_twist=twist))
        for k, v in zip(("x", "y", "yaw"), env.odometry()[:3]):
            out[f"odometry/{k}"] = float(v)
        for k, v in zip(("x", "y", "yaw"), env.base_pose()):
            out[f"base/{k}"] = float(v)
        return out
    finally:
        env.close()


def _tolerance(key: str) -> tuple[float, float]:
    if key.endswith(("count", "held_out", "segmented_objects")):
        return 0.0, 0.0
    if key.startswith("head/mean_"):
        return 0.0, 0.5
    if key.startswith("head/"):
        return 1e-3, 0.0
    return 0.0, 1e-4


def test_seeded_episode_matches_pinned_figures(pinned) -> None:
    got = measure()
    pinned(got, EXPECTED, {k: _tolerance(k) for k in got})
