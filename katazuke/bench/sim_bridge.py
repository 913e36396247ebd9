"""``katazuke bench sim-bridge``: the simulator bridge's real-time factor, rates and latency.

Runs the ``sim_bridge`` executable (default room with 10-20 objects, its default control and
head camera rates) at ``real_time_factor`` 0 and 1, observed from this process with
:class:`katazuke.ros.probe.Probe`, and the bare TidyEnv doing the same work (step + render
every ``camera_every``-th step) without ROS as the peer. Each setting: warm-up, then one window
of ``window_s`` wall seconds; ``repeats`` rounds, interleaved so a change of machine load hits
every setting alike; medians. :func:`run` measures, :func:`markdown` renders, :data:`BARS` is
the one table of bars both read.
"""
from __future__ import annotations

import time
from typing import Any

from katazuke.bench.harness import Bar, evaluate_bars, median
from katazuke.config import dataclass, field
from katazuke.errors import ConfigError, KatazukeError

__all__ = ["SimBridgeBenchConfig", "BARS", "run", "markdown"]

_RT = Bar("real time kept at real_time_factor 1 (achieved real-time factor, median)",
          "bridge_rtf1.rtf", ">=", 0.95)
#: The bars of the sim bridge.
BARS = (_RT,)


@dataclass(frozen=True)
class SimBridgeBenchConfig:
    """What one ``katazuke bench sim-bridge`` run measures."""

    window_s: float = field(default=6.0, metadata={"help": "measurement window, wall s"})
    repeats: int = field(default=3, metadata={"help": "rounds (one window per setting each)"})
    warmup_s: float = field(default=2.0, metadata={"help": "warm-up before each window, wall s"})
    camera_every: int = field(default=3, metadata={
        "help": "bare env: render the head camera every n-th step (the bridge's default "
                "camera rate over its control rate)"})
    startup_timeout_s: float = field(default=90.0, metadata={
        "help": "wall s for the bridge's first images"})

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and self.warmup_s >= 0 and self.startup_timeout_s > 0):
            raise ConfigError("window_s and startup_timeout_s must be > 0, warmup_s >= 0")
        if self.repeats < 1 or self.camera_every < 1:
            raise ConfigError("repeats and camera_every must be >= 1")


def _t(stamp: Any) -> float:
    return stamp.sec + 1e-9 * stamp.nanosec


class _Watch:
    """Wall-clock arrival of /clock, head images and odometry, as (wall, sim) pairs."""

    def __init__(self, probe: Any) -> None:
        from nav_msgs.msg import Odometry
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image

        self.clock: list[tuple[float, float]] = []
        self.images: list[tuple[float, float]] = []
        self.odom: list[tuple[float, float]] = []
        probe.collect("/clock", Clock, "clock", keep=False,
                      callback=lambda m: self.clock.append((time.monotonic(), _t(m.clock))))
        probe.collect("/head_camera/image_raw", Image, "sensor", keep=False,
                      callback=lambda m: self.images.append((time.monotonic(),
                                                             _t(m.header.stamp))))
        probe.collect("/odom", Odometry, "state", keep=False,
                      callback=lambda m: self.odom.append((time.monotonic(),
                                                           _t(m.header.stamp))))

    def reset(self) -> None:
        for lst in (self.clock, self.images, self.odom):
            lst.clear()

    def window(self, control_hz: float) -> dict[str, float]:
        clock, images, odom = list(self.clock), list(self.images), list(self.odom)
        if len(clock) < 2:
            raise KatazukeError("sim_bridge published fewer than 2 /clock messages in a window")
        wall = clock[-1][0] - clock[0][0]
        sim = clock[-1][1] - clock[0][1]
        tick_wall = {round(s, 6): w for w, s in clock}
        lat = [w - tick_wall[round(s, 6)] for w, s in images if round(s, 6) in tick_wall]
        cam_sim = (len(images) - 1) / (images[-1][1] - images[0][1]) \
            if len(images) > 1 and images[-1][1] > images[0][1] else float("nan")
        return {"rtf": sim / wall, "steps_per_s": sim * control_hz / wall,
                "clock_msgs_hz": len(clock) / wall, "odom_hz": len(odom) / wall,
                "camera_hz_wall": len(images) / wall, "camera_hz_sim": cam_sim,
                "camera_latency_ms": 1000 * median(lat) if lat else float("nan")}


def _run_bridge(cfg: SimBridgeBenchConfig, rtf: float, probe: Any, watch: _Watch,
                control_hz: float) -> dict[str, float]:
    from katazuke.rosenv import ros_environment, workspace_install
    from katazuke.testing import finish_process, start_process

    exe = workspace_install() / "lib" / "katazuke_ros" / "sim_bridge"
    watch.reset()
    proc = start_process([str(exe), "--ros-args", "-p", f"real_time_factor:={rtf}",
                          "-p", "sim.n_objects:=[10, 20]"], env=ros_environment())
    try:
        if not probe.wait_for(lambda: len(watch.images) > 3, cfg.startup_timeout_s):
            raise KatazukeError(f"sim_bridge sent no images within {cfg.startup_timeout_s:.0f} s"
                                " (run scripts/bootstrap.sh if it is not built)")
        probe.spin_for(cfg.warmup_s)
        watch.reset()
        probe.spin_for(cfg.window_s)
        return watch.window(control_hz)
    finally:
        finish_process(proc, timeout=15.0)


def _bare_env(cfg: SimBridgeBenchConfig) -> dict[str, float]:
    from katazuke.sim import Action, EnvConfig, TidyEnv

    env = TidyEnv(EnvConfig(profile="none", n_objects=(10, 20), render_observation=False))
    env.reset(seed=0)
    try:
        for rep in range(2):  # 0: warm-up
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < (cfg.warmup_s if rep == 0 else cfg.window_s):
                env.step(Action())
                env.joint_state()
                env.odometry()
                n += 1
                if n % cfg.camera_every == 0:
                    env.render_head()
        dt = time.perf_counter() - t0
        return {"steps_per_s": n / dt, "rtf": n / env.config.control_hz / dt,
                "camera_hz_wall": n / cfg.camera_every / dt}
    finally:
        env.close()


_KEYS = ("rtf", "steps_per_s", "clock_msgs_hz", "odom_hz", "camera_hz_wall", "camera_hz_sim",
         "camera_latency_ms")


def _med(rows: list[dict[str, float]], key: str) -> float:
    vals = [r[key] for r in rows if r[key] == r[key]]
    return median(vals) if vals else float("nan")


def run(cfg: SimBridgeBenchConfig) -> dict[str, Any]:
    """Measure the bridge at real_time_factor 0 and 1 and the bare env, interleaved.

    Returns:
        ``config``, ``sim`` (control_hz, physics_substeps), medians ``bridge_rtf0``,
        ``bridge_rtf1``, ``bare_env`` and every window under ``runs``.
    """
    from katazuke.config import config_to_dict
    from katazuke.ros.probe import Probe
    from katazuke.sim import EnvConfig

    env_cfg = EnvConfig()
    fast, real, bare = [], [], []
    with Probe("bench_sim_bridge_watch") as probe:
        watch = _Watch(probe)
        for _ in range(cfg.repeats):
            fast.append(_run_bridge(cfg, 0.0, probe, watch, env_cfg.control_hz))
            real.append(_run_bridge(cfg, 1.0, probe, watch, env_cfg.control_hz))
            bare.append(_bare_env(cfg))
    return {"config": config_to_dict(cfg),
            "sim": {"control_hz": env_cfg.control_hz, "physics_substeps": env_cfg.physics_substeps},
            "window_s": cfg.window_s, "repeats": cfg.repeats,
            "bridge_rtf0": {k: _med(fast, k) for k in _KEYS},
            "bridge_rtf1": {k: _med(real, k) for k in _KEYS},
            "bare_env": {k: _med(bare, k) for k in ("rtf", "steps_per_s", "camera_hz_wall")},
            "runs": {"bridge_rtf0": fast, "bridge_rtf1": real, "bare_env": bare}}


def markdown(res: dict[str, Any], command: str = "") -> str:
    """The report of :func:`run`'s results; every sentence is derived from the measurements."""
    from katazuke.bench.harness import bars_markdown

    c, s = res["config"], res["sim"]
    f, r, b = res["bridge_rtf0"], res["bridge_rtf1"], res["bare_env"]
    overhead = 100 * (1 - f["steps_per_s"] / b["steps_per_s"])
    if b["rtf"] < 1 / _RT.threshold:
        bound = (f"On this machine the bare simulator itself reaches only {b['rtf']:.2f} x real "
                 "time, which bounds what the bridge can reach at real_time_factor 0.")
    else:
        bound = (f"The bare simulator reaches {b['rtf']:.2f} x real time here, so the bridge's "
                 "real-time factor is limited by the bridge, not by the simulator.")
    return f"""# sim_bridge: publish rate, camera rate, latency

{f"Command: `{command}`" if command else ""}

Default room, 10-20 objects, {s['control_hz']:g} Hz control, {s['physics_substeps']} physics
substeps; observer in another process; medians of {res['repeats']} windows of
{c['window_s']:g} s, each after {c['warmup_s']:g} s warm-up. "bare env" is the same stepping
and rendering work on TidyEnv without ROS (head camera every {c['camera_every']}th step), in
the same run; the three settings are interleaved (one window each, {res['repeats']} rounds),
each bridge run a fresh process.

{bars_markdown(evaluate_bars(res, BARS))}

| setting | real-time factor | control steps / wall s | /clock msgs / s | odom / s | camera frames / wall s | camera Hz of sim time | camera latency (ms, stamp tick -> delivery) |
|---|---|---|---|---|---|---|---|
| bridge, real_time_factor 0 | {f['rtf']:.2f} | {f['steps_per_s']:.0f} | {f['clock_msgs_hz']:.0f} | {f['odom_hz']:.0f} | {f['camera_hz_wall']:.1f} | {f['camera_hz_sim']:.1f} | {f['camera_latency_ms']:.1f} |
| bridge, real_time_factor 1 | {r['rtf']:.2f} | {r['steps_per_s']:.0f} | {r['clock_msgs_hz']:.0f} | {r['odom_hz']:.0f} | {r['camera_hz_wall']:.1f} | {r['camera_hz_sim']:.1f} | {r['camera_latency_ms']:.1f} |
| bare TidyEnv (no ROS) | {b['rtf']:.2f} | {b['steps_per_s']:.0f} | – | – | {b['camera_hz_wall']:.1f} | – | – |

- Bridge overhead at real_time_factor 0: {f['steps_per_s']:.0f} vs {b['steps_per_s']:.0f}
  steps/s bare ({overhead:.0f} % {'slower' if overhead >= 0 else 'faster'}: message building,
  publishing, link-tree TF).
- {bound}
- Camera latency = wall time from the /clock tick of a step to the delivery of that step's
  image in another process; it includes rendering the frame (the tick is published first,
  then the camera is rendered).
- /clock and camera are best effort: the observer counts what it received, so on a loaded
  machine the received camera rate can be below the published rate.
"""
