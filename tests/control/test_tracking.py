"""ROS-free tracking core of the controller node: saturation, guard, convergence, angles."""
from __future__ import annotations

import math

import numpy as np
import pytest

from katazuke.config import load_config
from katazuke.control import (ControllerConfig, PathFollower, arm_tracker, base_tracker,
                              make_disturbance, wrap_angle, yaw_from_quaternion)
from katazuke.errors import ConfigError, InputError


def _simulate(tracker, e0: np.ndarray, bias: np.ndarray, steps: int) -> np.ndarray:
    e = e0.copy()
    for _ in range(steps):
        out = tracker.step(e)
        e = e + tracker.dt * (out.u + bias)
        e[2:3] = wrap_angle(e[2:3])
    return e


@pytest.mark.parametrize("mode", ["lqr", "gpc"])
def test_base_converges_and_gpc_removes_a_bias_offset(mode: str) -> None:
    cfg = ControllerConfig(mode=mode, rate_hz=20.0)
    tr = base_tracker(cfg)
    e0 = np.array([1.0, -0.5, 0.4])
    tr.reference_changed(e0)
    e = _simulate(tr, e0, np.array([0.1, -0.05, 0.05]), 1500)
    if mode == "lqr":          # proportional control leaves a steady-state offset
        assert 0.005 < np.linalg.norm(e) < 0.1
    else:                      # GPC learns to cancel the constant disturbance
        assert np.linalg.norm(e) < 0.005
        assert not tr.fallback_active


def test_saturation_scales_planar_speed_and_yaw_rate_separately() -> None:
    tr = base_tracker(ControllerConfig(max_linear_speed=0.3, max_angular_speed=0.5))
    out = tr.step(np.array([10.0, 10.0, 3.0]))
    assert out.saturated
    assert np.hypot(out.u[0], out.u[1]) == pytest.approx(0.3)
    assert abs(out.u[2]) == pytest.approx(0.5)
    assert out.u[0] == pytest.approx(out.u[1])  # direction kept


def test_guard_falls_back_to_lqr_and_says_why() -> None:
    tr = base_tracker(ControllerConfig(mode="gpc"))
    tr.reference_changed(np.array([0.2, 0.0, 0.0]))
    tr.step(np.array([0.2, 0.0, 0.0]))
    tr.step(np.array([0.19, 0.0, 0.0]))
    tr.gpc.M = np.full(tr.gpc.M.shape, 1e3)  # a misbehaving policy (e.g. bad model)
    tr.gpc._buf[...] = 1.0                    # with a non-zero disturbance history
    out = tr.step(np.array([0.18, 0.0, 0.0]))
    assert out.fallback_active and out.mode == "lqr" and "correction" in out.fallback_reason
    assert np.allclose(out.u, tr.saturate(-(tr.K @ np.array([0.18, 0.0, 0.0])))[0])
    tr.reference_changed(np.array([0.5, 0.0, 0.0]))  # a new goal re-arms GPC (M reset)
    out = tr.step(np.array([0.5, 0.0, 0.0]))
    assert out.mode == "gpc" and not out.fallback_active and np.all(tr.gpc.M == 0)
    # State-norm guard: the error grows far beyond where the goal started.
    out = tr.step(np.array([5.0, 0.0, 0.0]))
    assert out.fallback_active and "state norm" in out.fallback_reason


def test_yaw_residual_is_unwrapped_across_pi() -> None:
    tr = base_tracker(ControllerConfig(mode="gpc"))
    tr.step(np.array([0.0, 0.0, math.pi - 0.01]))
    out = tr.step(np.array([0.0, 0.0, -math.pi + 0.01]))  # 0.02 rad across the seam
    assert out.disturbance_norm < 0.5


def test_arm_tracker_and_helpers() -> None:
    tr = arm_tracker(ControllerConfig(max_joint_speed=0.2), 3)
    out = tr.step(np.array([1.0, -0.01, 0.0]))
    assert out.u[0] == pytest.approx(-0.2) and 0 < out.u[1] < 0.2 and out.u[2] == 0.0
    assert yaw_from_quaternion(0, 0, math.sin(0.3), math.cos(0.3)) == pytest.approx(0.6)
    assert wrap_angle(3 * math.pi) == pytest.approx(-math.pi)
    with pytest.raises(InputError, match="finite"):
        tr.step(np.array([np.nan, 0.0, 0.0]))


def test_config_validation_and_params_file(repo) -> None:
    with pytest.raises(ConfigError, match="rate_hz"):
        ControllerConfig(rate_hz=0.0)
    with pytest.raises(ConfigError, match=r"ControllerConfig.max_linear_speed must be a finite "
                                          r"number > 0; got nan"):
        load_config(ControllerConfig, {"max_linear_speed": float("nan")})
    with pytest.raises(ConfigError, match="mode"):
        load_config(ControllerConfig, {"mode": "pid"})
    import yaml

    # The node's params file nests the tracker settings under `controller.`.
    params = yaml.safe_load((repo / "launch/params/control.yaml").read_text())
    node = params["controller"]["ros__parameters"] or {}
    cfg = load_config(ControllerConfig, node.get("controller", {}) or {})
    assert cfg.mode in ("lqr", "gpc")


def test_path_follower_advances_past_reached_waypoints_and_holds_the_last() -> None:
    f = PathFollower([[0.3, 0.0, 0.0], [0.3, 0.3, 0.0], [0.0, 0.3, math.pi]], tolerance=0.15)
    np.testing.assert_allclose(f.advance(np.array([0.0, 0.0, 0.0])), [-0.3, 0.0, 0.0])
    assert f.index == 0
    e = f.advance(np.array([0.25, 0.0, 0.0]))        # within 0.15 m of the first
    assert f.index == 1 and e == pytest.approx([-0.05, -0.3, 0.0])
    e = f.advance(np.array([0.3, 0.25, -3.0]))       # second reached: on to the last
    assert f.index == 2 and e[:2] == pytest.approx([0.3, -0.05])
    assert e[2] == pytest.approx(wrap_angle(-3.0 - math.pi))     # yaw error wrapped
    f.advance(np.array([0.3, 0.3, 0.0]))             # never past the last, never back
    assert f.index == 2 and np.array_equal(f.reference, f.goal)
    skip = PathFollower(np.array([[0.1, 0.0, 0.0], [0.2, 0.0, 0.0], [2.0, 0.0, 0.0]]), 0.15)
    skip.advance(np.array([0.15, 0.0, 0.0]))         # several reached in one step
    assert skip.index == 2
    with pytest.raises(InputError, match="waypoint"):
        PathFollower([], 0.1)
    with pytest.raises(InputError, match="tolerance"):
        PathFollower([[0.0, 0.0, 0.0]], 0.0)


def test_disturbance_families_have_equal_energy_and_the_adversary_hurts_lqr() -> None:
    from katazuke.control import FAMILIES, dlqr, random_stabilisable
    from katazuke.control.regret import rollout_lqr

    rng = np.random.default_rng(0)
    s = random_stabilisable(3, 1, rng)
    K, _ = dlqr(s.A, s.B, s.Q, s.R)
    costs = {}
    for fam in FAMILIES:
        W = make_disturbance(fam, 2000, 3, np.random.default_rng(1), 0.1, (s.A, s.B, K, s.Q, s.R))
        assert W.shape == (2000, 3) and np.sqrt(np.mean(W ** 2)) == pytest.approx(0.1)
        costs[fam] = rollout_lqr(s.A, s.B, s.Q, s.R, K, W).sum()
    assert costs["adversarial"] == max(costs.values())
    with pytest.raises(InputError, match="unknown disturbance family"):
        make_disturbance("pink", 10, 2, rng)
