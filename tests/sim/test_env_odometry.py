"""Odometry noise scales with the motion: a base that does not move reports no drift, a moving
base drifts by a few percent of the distance travelled (TidyEnv public API only)."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.sim import Action, EnvConfig, TidyEnv

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def env():
    e = TidyEnv(EnvConfig(profile="none", n_objects=(0, 0), render_observation=False))
    yield e
    e.close()


def test_odometry_does_not_drift_while_standing_still(env):
    env.reset(seed=3)
    start = np.array(env.odometry()[:3])
    truth = np.array(env.base_pose())
    for _ in range(90):  # 3 s at 30 Hz, zero command
        obs = env.step(Action(base_twist=(0.0, 0.0, 0.0)))
    moved = np.abs(np.array(env.base_pose()) - truth)
    drift = np.abs(np.array(env.odometry()[:3]) - start)
    assert moved.max() < 1e-3, moved              # the base really stood still
    assert drift.max() < 1e-4, drift               # additive noise would drift ~1 cm here
    assert np.abs(obs.odometry[3:]).max() < 1e-3    # and reports ~zero velocity


def test_odometry_error_is_a_small_fraction_of_the_motion(env):
    env.reset(seed=3)
    x0, y0, yaw0 = env.odometry()[:3]
    tx0, ty0, _ = env.base_pose()
    for _ in range(60):
        env.step(Action(base_twist=(0.4, 0.0, 0.0)))
    x, y, yaw = env.odometry()[:3]
    tx, ty, _ = env.base_pose()
    travelled = np.hypot(tx - tx0, ty - ty0)
    assert travelled > 0.5
    err = abs(np.hypot(x - x0, y - y0) - travelled)
    assert 0.0 < err < 0.05 * travelled
