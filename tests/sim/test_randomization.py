"""Randomizers (save / randomize / restore), textures and control-experiment hooks."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.sim import Action, EnvConfig, SimError, TidyEnv
from katazuke.geometry import look_at
from katazuke.sim.textures import HELD_OUT_FAMILIES, TEXTURE_FAMILIES, TRAIN_FAMILIES, \
    make_texture

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def env():
    e = TidyEnv(EnvConfig(profile="train", render_observation=False, n_objects=(10, 10)))
    e.reset(seed=1)
    yield e
    e.close()


def test_texture_families_split_and_deterministic():
    assert not set(TRAIN_FAMILIES) & set(HELD_OUT_FAMILIES)
    assert set(TRAIN_FAMILIES) | set(HELD_OUT_FAMILIES) == set(TEXTURE_FAMILIES)
    for fam in TEXTURE_FAMILIES:
        a = make_texture(fam, np.random.default_rng(3), 32)
        b = make_texture(fam, np.random.default_rng(3), 32)
        c = make_texture(fam, np.random.default_rng(4), 32)
        assert a.shape == (32, 32, 3) and a.dtype == np.uint8
        assert np.array_equal(a, b) and not np.array_equal(a, c)
        assert a.std() > 1.0  # a pattern, not a flat colour


def test_save_randomize_restore_round_trip(env):
    T = look_at((1.5, -1.5, 1.5), (0.3, 0.8, 0.4))
    K = env.head_intrinsics()
    saved = [r.save() for r in env.randomizers]
    before = env.render(T, K, effects=False).rgb
    for r in env.randomizers:
        r.randomize(env)
    changed = env.render(T, K, effects=False).rgb
    assert np.mean(before != changed) > 0.2
    for r, s in zip(env.randomizers, saved):
        r.restore(s, env)
    after = env.render(T, env.head_intrinsics(), effects=False).rgb
    assert np.array_equal(before, after)
    # the generators were restored too: the next draw repeats
    draws = [r.rng.random() for r in env.randomizers]
    for r, s in zip(env.randomizers, saved):
        r.restore(s)
    assert draws == [r.rng.random() for r in env.randomizers]


def test_intrinsics_randomized_within_5_percent():
    fx = []
    for seed in range(6):
        e = TidyEnv(EnvConfig(profile="train", render_observation=False, n_objects=(0, 0),
                              include_robot=False))
        try:
            e.reset(seed=seed)
            fx.append(e.head_intrinsics()[0, 0])
        finally:
            e.close()
    nominal = 0.5 * 320 / np.tan(np.radians(70.0) / 2)
    assert np.all(np.abs(np.asarray(fx) / nominal - 1) <= 0.05 + 1e-9)
    assert np.ptp(fx) > 0


def test_disturbance_and_floor_friction_affect_the_base():
    e = TidyEnv(EnvConfig(profile="none", render_observation=False, n_objects=(0, 0)))
    try:
        def drive(mu, push):
            e.reset(seed=0)
            e.set_floor_friction(mu)
            e.set_base_disturbance(push)
            for _ in range(30):
                e.step(Action(base_twist=(0.5, 0.0, 0.0)))
            return np.array(e.base_pose()[:2])

        nominal = drive(0.8, (0.0, 0.0))
        pushed = drive(0.8, (0.0, 300.0))
        slippery = drive(0.02, (0.0, 0.0))
        assert np.linalg.norm(pushed - nominal) > 0.005      # the push moves the base
        assert np.linalg.norm(slippery) < np.linalg.norm(nominal) - 0.05  # traction-limited
        with pytest.raises(SimError, match="force_xy"):
            e.set_base_disturbance((1.0,))
        with pytest.raises(SimError, match="mu"):
            e.set_floor_friction(-1.0)
    finally:
        e.close()
