"""The ROS-free LQR-vs-GPC simulation harness (katazuke.bench.control_sim_harness)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from katazuke.errors import ConfigError, InputError
from katazuke.bench.control_sim_harness import (TRACKING_TOUR_WAYPOINTS, ControlSimConfig,
                                                DisturbanceEvent, Reference,
                                                constant_push_schedule, default_schedule,
                                                describe_schedule, figure_eight,
                                                force_and_friction, room_tour, run_episode)


def _hold(pose: tuple[float, float, float], seconds: float, dt: float) -> Reference:
    n = int(round(seconds / dt)) + 1
    return Reference("hold", np.arange(n) * dt, np.tile(np.asarray(pose, dtype=float), (n, 1)))


def test_figure_eight_starts_at_rest_and_respects_the_peak_speed() -> None:
    ref = figure_eight(60.0, 0.05, speed=0.3)
    v = np.hypot(*ref.feedforward()[:, :2].T)
    assert v[0] < 0.02                              # smooth start
    assert 0.25 < v.max() <= 0.3 + 1e-3
    assert np.allclose(ref.t[1:] - ref.t[:-1], 0.05)
    # it crosses its centre and visits both lobes
    assert ref.poses[:, 0].min() < -1.0 and ref.poses[:, 0].max() > 1.0


def test_room_tour_visits_every_waypoint_at_rest_within_the_free_floor() -> None:
    ref = room_tour(0.05, speed=0.33, dwell_s=0.5)
    w = np.asarray(TRACKING_TOUR_WAYPOINTS)
    for p in w:
        d = np.linalg.norm(ref.poses - p, axis=1)
        assert d.min() < 1e-9, f"waypoint {p} not visited"
    v = np.hypot(*ref.feedforward()[:, :2].T)
    assert v.max() <= 0.33 + 1e-3 and v[0] == 0.0 and v[-2] < 1e-9
    # clear of the table (x -0.2..1.0, y 0.95..1.65) by the base's circumradius
    near_table = (ref.poses[:, 0] > -0.2 - 0.36) & (ref.poses[:, 0] < 1.0 + 0.36)
    assert np.all(ref.poses[near_table, 1] < 0.95 - 0.36)
    assert np.all(np.abs(ref.poses[:, :2]) < 2.5 - 0.36 - 0.3)


def test_disturbance_schedule_semantics() -> None:
    ev = [DisturbanceEvent("push", 1.0, 3.0, (10.0, 0.0)),
          DisturbanceEvent("periodic", 2.0, 6.0, (0.0, 5.0), period_s=2.0),
          DisturbanceEvent("friction", 1.0, 5.0, mu=0.3),
          DisturbanceEvent("friction", 2.0, 4.0, mu=0.1)]
    f, mu = force_and_friction(ev, 0.5, 0.8)
    assert np.all(f == 0) and mu == 0.8
    f, mu = force_and_friction(ev, 1.5, 0.8)
    assert np.allclose(f, (10, 0)) and mu == 0.3
    f, mu = force_and_friction(ev, 2.5, 0.8)          # push + first half of the period
    assert np.allclose(f, (10, 5)) and mu == 0.1      # the later-starting friction wins
    f, mu = force_and_friction(ev, 3.5, 0.8)          # second half: sign flips, push over
    assert np.allclose(f, (0, -5)) and mu == 0.1
    f, mu = force_and_friction(ev, 4.5, 0.8)
    assert mu == 0.3
    a = default_schedule(60.0, np.random.default_rng(3))
    b = default_schedule(60.0, np.random.default_rng(3))
    assert a == b and {e.kind for e in a} == {"push", "periodic", "friction"}
    with pytest.raises(InputError, match="t_end > t_start"):
        DisturbanceEvent("push", 2.0, 1.0)
    with pytest.raises(InputError, match="kind"):
        DisturbanceEvent("shove", 0.0, 1.0)
    with pytest.raises(ConfigError, match="duration_s"):
        ControlSimConfig(duration_s=-1.0)


def test_reference_rate_must_match_the_controller() -> None:
    cfg = ControlSimConfig()
    with pytest.raises(InputError, match="control period"):
        run_episode(_hold((0.0, -0.4, 0.0), 1.0, 0.1), [], "lqr", cfg)
    with pytest.raises(InputError, match="mode"):
        run_episode(_hold((0.0, -0.4, 0.0), 1.0, cfg.dt), [], "mpc", cfg)


def test_gpc_beats_lqr_under_a_constant_push_and_runs_are_deterministic() -> None:
    """Hold a pose while a constant 40 N push acts: LQR keeps a steady-state offset
    (push / (m k_v K)); GPC learns to cancel it. Same seed -> identical logs."""
    cfg = ControlSimConfig()
    ref = _hold((0.0, -0.4, 0.0), 8.0, cfg.dt)
    events = constant_push_schedule((40.0, -20.0), t_start=0.5)
    lqr = run_episode(ref, events, "lqr", cfg, seed=1)
    gpc = run_episode(ref, events, "gpc", cfg, seed=1)
    gpc2 = run_episode(ref, events, "gpc", cfg, seed=1)
    np.testing.assert_array_equal(gpc.pose_true, gpc2.pose_true)
    np.testing.assert_array_equal(gpc.u_world, gpc2.u_world)
    assert gpc.metrics == gpc2.metrics
    assert gpc.metrics["gpc_fraction"] == 1.0 and not gpc.fallback_reasons
    late = lqr.t > 4.0
    lqr_late = float(np.sqrt(np.mean(lqr.pos_error[late] ** 2)))
    gpc_late = float(np.sqrt(np.mean(gpc.pos_error[late] ** 2)))
    # LQR's offset is of the order the velocity loop and K predict (44.7 N / (40 kg * 15/s
    # * K=4) = 1.9 cm; measured 1.2 cm: the tracker acts on odometry, lag and rounding)
    assert 0.006 < lqr_late < 0.03, lqr_late
    assert gpc_late < 0.5 * lqr_late, (gpc_late, lqr_late)
    assert gpc.metrics["rms_pos_m"] < lqr.metrics["rms_pos_m"]
    # the push really acted on the base (both were displaced along it at first)
    assert lqr.metrics["max_pos_m"] > 0.006
    assert math.isfinite(lqr.metrics["rms_yaw_deg"])


def test_config_nests_the_controller_config_with_one_documented_override() -> None:
    """The experiment's tracker is the node's ControllerConfig; only max_linear_speed differs
    (0.45 m/s, the value the published figures were measured with)."""
    from katazuke.control import ControllerConfig

    cfg = ControlSimConfig()
    assert cfg.controller_config("gpc") == ControllerConfig(mode="gpc", max_linear_speed=0.45)
    assert cfg.control_hz == cfg.controller.rate_hz and cfg.dt == 1.0 / cfg.controller.rate_hz
    fast = ControlSimConfig(controller=ControllerConfig(rate_hz=10.0))
    assert fast.dt == 0.1 and fast.controller_config("lqr").max_linear_speed == 0.5


def test_schedule_description_is_read_from_the_events() -> None:
    ev = [DisturbanceEvent("push", 6.0, 18.0, (30.0, 0.0)),
          DisturbanceEvent("friction", 12.0, 30.0, mu=0.25),
          DisturbanceEvent("periodic", 33.0, 51.0, (0.0, -25.0), period_s=4.0),
          *(DisturbanceEvent("push", t, t + 0.4, (0.0, 80.0)) for t in (10.0, 20.0, 40.0))]
    text = describe_schedule(ev, 60.0, 0.8)
    assert text == ("30 N step push over 10-30 %, floor friction 0.8 -> 0.25 over 20-50 %, "
                    "a +-25 N square-wave shove (4 s period) over 55-85 %, "
                    "three 0.4 s pulses of 80 N")
    assert "50 N step push" in describe_schedule([DisturbanceEvent("push", 0.0, 1.0, (30.0, 40.0))],
                                                 10.0, 0.8)
