"""``katazuke bench flood``: the sim bridge and the controller under a flood of bad commands.

A flood of malformed commands (NaN velocities, a wrong joint count, out-of-range values;
each one the node rejects) must not slow the control loop: the nodes take each command
topic once per tick from a KEEP_LAST 1 history (:mod:`katazuke_ros.command_inputs`), so
the excess is dropped inside DDS. This bench runs each node as its own process (the
``sim_bridge`` and ``controller`` executables, default settings, real time), measures its
loop rate without a flood (the sim bridge: ``/clock`` messages received per wall second;
the controller: ``cmd_vel`` per second while it tracks a goal), then floods one command
topic at a time with ``rate_hz`` bad commands per second for ``flood_s`` seconds from
``flooders`` publisher processes pinned to one core (``taskset -c <core>``) and measures the
rate during the flood. The flooders report what they really sent (their achieved rate);
the node reports what it superseded and rejected in its log. :func:`run` measures,
:func:`markdown` renders, :data:`BARS` is the one table of bars both read.

The flooder itself is this module run as a program (``python -m katazuke.bench.flood
--topic ... --rate ... --seconds ...``): one rclpy publisher with the ``COMMAND`` QoS
publishing one pre-built bad message in a paced tight loop; it prints one JSON line when
it starts (after the node's subscription matched) and one with ``sent`` and the achieved
rate when it is done.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import subprocess
import sys
import time
from typing import Any, Callable

from katazuke.bench.harness import Bar, evaluate_bars, median
from katazuke.config import dataclass, field, non_negative, positive
from katazuke.errors import ConfigError, KatazukeError

__all__ = ["FloodBenchConfig", "BARS", "BRIDGE_TOPICS", "CONTROLLER_TOPICS", "bad_command",
           "run", "markdown", "start_flooders", "finish_flooders", "rate_between",
           "flooder_main"]

#: Command topics of the sim bridge (relative names) the bench can flood.
BRIDGE_TOPICS = ("cmd_vel", "arm/command", "head/command", "gripper/command",
                 "sim/disturbance/base_force", "sim/friction")
#: Command topics of the controller with a bad form (emergency_stop, a Bool, has none).
CONTROLLER_TOPICS = ("goal_pose", "path", "arm/target")

BARS = (
    Bar("sim bridge /clock during a flood of bad commands on its worst topic / nominal rate",
        "bridge.worst_ratio_nominal", ">=", 0.9,
        note="nominal = control_hz x real_time_factor"),
    Bar("controller tick rate (cmd_vel/s) during a flood on its worst topic / nominal rate",
        "controller.worst_ratio_nominal", ">=", 0.9, note="nominal = controller rate_hz"),
    Bar("flooders reached the commanded rate (achieved / commanded, worst flood)",
        "worst_flood_rate_ratio", ">=", 0.95),
)


@dataclass(frozen=True)
class FloodBenchConfig:
    """What one ``katazuke bench flood`` run measures."""

    rate_hz: float = positive(20000.0, "bad commands per second in each flood, all flooders "
                                       "together")
    flood_s: float = positive(10.0, "length of each flood, wall s")
    baseline_s: float = positive(10.0, "no-flood measurement window, wall s")
    warmup_s: float = non_negative(3.0, "after the node's first output, before measuring, s")
    flooders: int = positive(1, "flooder processes, all pinned to `core` (each sends "
                                "rate_hz / flooders)")
    core: int = non_negative(1, "CPU core the flooders are pinned to (taskset -c)")
    bridge_topics: str = field(default=",".join(BRIDGE_TOPICS), metadata={
        "help": "comma-separated sim bridge command topics to flood, one at a time "
                "('' = skip the bridge)"})
    controller_topics: str = field(default=",".join(CONTROLLER_TOPICS), metadata={
        "help": "comma-separated controller command topics to flood ('' = skip the "
                "controller)"})
    all_at_once: bool = field(default=True, metadata={
        "help": "also flood all of a node's topics at once (one scenario more; rate_hz "
                "shared among them)"})
    startup_timeout_s: float = positive(120.0, "wall s for a node's first output")

    def __post_init__(self) -> None:
        for name, known in (("bridge_topics", BRIDGE_TOPICS),
                            ("controller_topics", CONTROLLER_TOPICS)):
            bad = [t for t in _topics(getattr(self, name)) if t not in known]
            if bad:
                raise ConfigError(f"{name}: unknown topic(s) {bad}; choose from {list(known)}")
        cores = os.cpu_count() or 1
        if self.core >= cores:
            raise ConfigError(f"core {self.core} does not exist on this machine ({cores} "
                              f"cores): pass --core 0..{cores - 1}")


def _topics(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


# --------------------------------------------------------------------------- bad commands

def bad_command(topic: str) -> Any:
    """A malformed command for ``topic`` that the node rejects (by the topic's last parts).

    Raises:
        ConfigError: no bad form is known for ``topic``.
    """
    from geometry_msgs.msg import PoseStamped, Twist, Vector3
    from nav_msgs.msg import Path
    from std_msgs.msg import Float64
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from katazuke_interfaces.msg import GripperCommand

    nan = float("nan")
    name = topic.strip("/")
    # the known topic the name ends with (a namespace in front is fine)
    key = next((k for k in BRIDGE_TOPICS + CONTROLLER_TOPICS
                if name == k or name.endswith("/" + k)), name)
    if key == "cmd_vel":
        m = Twist()
        m.linear.x = nan                                          # non-finite velocity
        return m
    if key in ("arm/command", "arm/target"):                      # 7 names, 6 positions
        return JointTrajectory(joint_names=[f"panda_joint{i}" for i in range(1, 8)],
                               points=[JointTrajectoryPoint(positions=[0.0] * 6)])
    if key == "head/command":                                     # non-finite position
        return JointTrajectory(joint_names=["head_pan_joint", "head_tilt_joint"],
                               points=[JointTrajectoryPoint(positions=[nan, 0.0])])
    if key == "gripper/command":
        return GripperCommand(position=nan)
    if key == "sim/disturbance/base_force":
        return Vector3(x=nan, y=0.0, z=0.0)
    if key == "sim/friction":
        return Float64(data=5.0)                                  # outside [0, 2]
    if key == "goal_pose":
        m = PoseStamped()
        m.header.frame_id = "odom"
        m.pose.position.x = nan
        return m
    if key == "path":
        m = PoseStamped()
        m.pose.position.y = nan
        return Path(poses=[m])
    raise ConfigError(f"no bad command known for topic {topic!r}; choose from "
                      f"{list(BRIDGE_TOPICS + CONTROLLER_TOPICS)}")


# --------------------------------------------------------------------------- the flooder

def _flood(topics: list[str], rate_hz: float, seconds: float,
           match_timeout_s: float) -> dict[str, Any]:
    """Publish ``bad_command(topic)`` on ``topics`` in turn, ``rate_hz`` in all, for
    ``seconds`` (this process)."""
    import rclpy
    from rclpy.context import Context

    from katazuke.ros import qos

    ctx = Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node("katazuke_flooder", context=ctx)
        pubs = []
        for topic in topics:
            msg = bad_command(topic)
            pub = node.create_publisher(type(msg), topic, qos.COMMAND)
            deadline = time.monotonic() + match_timeout_s
            while pub.get_subscription_count() == 0:
                if time.monotonic() > deadline:
                    raise KatazukeError(f"flooder: no subscriber on {topic} within "
                                        f"{match_timeout_s:g} s")
                time.sleep(0.01)
            pubs.append((pub.publish, msg))
        k, batch = len(pubs), 64
        t0 = time.monotonic()
        print(json.dumps({"event": "start", "t": t0}), flush=True)
        end, n = t0 + seconds, 0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            due = min(int((now - t0) * rate_hz), n + batch)
            if n >= due:
                time.sleep(min(0.0005, end - now))
                continue
            while n < due:
                publish, msg = pubs[n % k]
                publish(msg)
                n += 1
        t1 = time.monotonic()
        node.destroy_node()
        return {"event": "end", "t0": t0, "t1": t1, "sent": n, "rate_hz": n / (t1 - t0)}
    finally:
        ctx.try_shutdown()


def flooder_main(argv: list[str] | None = None) -> int:
    """The flooder program (``python -m katazuke.bench.flood``); prints JSON lines."""
    p = argparse.ArgumentParser(prog="python -m katazuke.bench.flood",
                                description="publish one bad command at a fixed rate")
    p.add_argument("--topic", required=True, help="topic, or several comma-separated "
                                                  "(published in turn)")
    p.add_argument("--rate", type=float, required=True, help="messages per second")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--match-timeout", type=float, default=30.0)
    a = p.parse_args(argv)
    if not (a.rate > 0 and a.seconds > 0):
        p.error("--rate and --seconds must be > 0")
    topics = _topics(a.topic)
    if not topics:
        p.error("--topic names no topic")
    print(json.dumps(_flood(topics, a.rate, a.seconds, a.match_timeout)), flush=True)
    return 0


def start_flooders(topic: str, rate_hz: float, seconds: float, n: int = 1, core: int = 1,
                   env: dict[str, str] | None = None) -> list[subprocess.Popen]:
    """Start ``n`` flooder processes on ``topic`` pinned to ``core``, ``rate_hz / n`` each.

    ``topic`` may name several topics, comma-separated: each flooder publishes to them in
    turn (``rate_hz`` counts all of them together).

    Raises:
        KatazukeError: ``taskset`` (util-linux) is missing.
    """
    taskset = shutil.which("taskset")
    if taskset is None:
        raise KatazukeError("taskset not found: install util-linux (the flooders are pinned "
                            "to one core with it)")
    argv = [taskset, "-c", str(core), sys.executable, "-P", "-m", "katazuke.bench.flood",
            "--topic", topic, "--rate", repr(rate_hz / n), "--seconds", repr(seconds)]
    return [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(n)]


def _read_json_line(proc: subprocess.Popen, deadline: float) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            proc.kill()
            raise KatazukeError(f"flooder {proc.args!r} did not report in time")
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read() if proc.stderr else ""
            raise KatazukeError(f"flooder exited with {proc.wait()} before reporting: "
                                f"{err[-2000:]}")
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)


def finish_flooders(procs: list[subprocess.Popen], seconds: float,
                    on_started: Callable[[], None] | None = None) -> dict[str, Any]:
    """Wait for :func:`start_flooders`' processes; their start, end and achieved total rate.

    Args:
        procs: the flooders.
        seconds: the flood length they were given (for the deadlines).
        on_started: called once every flooder has started (e.g. to mark the window).

    Returns:
        ``{"t0", "t1"}`` (monotonic s: the latest start, the earliest end), ``sent``
        (all together), ``rate_hz`` (their achieved rates summed), ``per_process``.
    """
    try:
        starts = [_read_json_line(p, time.monotonic() + 60.0) for p in procs]
        if on_started is not None:
            on_started()
        ends = [_read_json_line(p, time.monotonic() + seconds + 60.0) for p in procs]
        for p in procs:
            p.wait(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return {"t0": max(s["t"] for s in starts), "t1": min(e["t1"] for e in ends),
            "sent": sum(e["sent"] for e in ends), "rate_hz": sum(e["rate_hz"] for e in ends),
            "per_process_hz": [round(e["rate_hz"], 1) for e in ends]}


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) process ``pid`` has used; NaN off Linux."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate_between(arrivals: list[float], t0: float, t1: float) -> float:
    """Arrivals per second within ``[t0, t1]`` (monotonic seconds)."""
    if t1 <= t0:
        return float("nan")
    return sum(1 for t in arrivals if t0 <= t <= t1) / (t1 - t0)


# --------------------------------------------------------------------------- the bench

def _measure_node(cfg: FloodBenchConfig, name: str, topics: list[str], ros_args: list[str],
                  output_topic: str, output_type: Any, output_qos: str, nominal_hz: float,
                  prepare: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Start node ``name``, measure ``output_topic``'s rate without and under each flood."""
    from katazuke.ros.probe import Probe
    from katazuke.rosenv import ros_environment
    from katazuke.testing import start_node, stop_node

    arrivals: list[float] = []
    floods: list[dict[str, Any]] = []
    proc = start_node(name, *ros_args)
    log = ""
    try:
        with Probe(f"bench_flood_{name}") as probe:
            probe.collect(output_topic, output_type, output_qos, keep=False,
                          callback=lambda _m: arrivals.append(time.monotonic()))
            probe.spin_in_background()
            if prepare is not None:
                prepare(probe)
            if not probe.wait_for(lambda: len(arrivals) > 3, cfg.startup_timeout_s):
                raise KatazukeError(f"{name} published no {output_topic} within "
                                    f"{cfg.startup_timeout_s:.0f} s (run scripts/bootstrap.sh "
                                    "if it is not built)")
            probe.spin_for(cfg.warmup_s)
            t0, c0 = time.monotonic(), _cpu_s(proc.pid)
            probe.spin_for(cfg.baseline_s)
            t1, c1 = time.monotonic(), _cpu_s(proc.pid)
            baseline = rate_between(arrivals, t0, t1)
            baseline_cpu = 100 * (c1 - c0) / (t1 - t0)
            scenarios = list(topics)
            if cfg.all_at_once and len(topics) > 1:
                scenarios.append(",".join(topics))
            for topic in scenarios:
                procs = start_flooders(topic, cfg.rate_hz, cfg.flood_s, cfg.flooders, cfg.core,
                                       env=ros_environment())
                cpu: list[tuple[float, float]] = []
                fl = finish_flooders(procs, cfg.flood_s, on_started=lambda: cpu.append(
                    (time.monotonic(), _cpu_s(proc.pid))))
                cpu.append((time.monotonic(), _cpu_s(proc.pid)))
                # skip the first and last 0.5 s: discovery and teardown are not the flood
                a, b = fl["t0"] + 0.5, fl["t1"] - 0.5
                hz = rate_between(arrivals, a, b)
                floods.append({"topic": topic if "," not in topic else "all at once",
                               "rate_hz": hz, "ratio_nominal": hz / nominal_hz,
                               "ratio_baseline": hz / baseline if baseline > 0 else float("nan"),
                               "cpu_pct": 100 * (cpu[1][1] - cpu[0][1])
                               / (cpu[1][0] - cpu[0][0]),
                               "flood_rate_hz": fl["rate_hz"], "sent": fl["sent"],
                               "flood_per_process_hz": fl["per_process_hz"]})
                probe.spin_for(1.0)  # let the node drain before the next flood
    finally:
        log = stop_node(proc, timeout=15.0)
    flood_lines = [ln for ln in log.splitlines() if "command flood on" in ln]
    worst = min(floods, key=lambda f: f["rate_hz"]) if floods else None
    return {"nominal_hz": nominal_hz, "baseline_hz": baseline, "baseline_cpu_pct": baseline_cpu,
            "baseline_ratio_nominal": baseline / nominal_hz, "floods": floods,
            "worst_topic": worst["topic"] if worst else None,
            "worst_ratio_nominal": worst["ratio_nominal"] if worst else float("nan"),
            "worst_ratio_baseline": worst["ratio_baseline"] if worst else float("nan"),
            "flood_warnings_logged": len(flood_lines),
            "last_flood_warning": flood_lines[-1].split("]: ", 1)[-1] if flood_lines else ""}


def _bridge(cfg: FloodBenchConfig) -> dict[str, Any]:
    from rosgraph_msgs.msg import Clock

    from katazuke.sim import EnvConfig

    nominal = EnvConfig().control_hz  # real_time_factor 1
    return _measure_node(cfg, "sim_bridge", _topics(cfg.bridge_topics),
                         ["-p", "real_time_factor:=1.0"], "/clock", Clock, "clock", nominal)


def _controller(cfg: FloodBenchConfig) -> dict[str, Any]:
    from geometry_msgs.msg import PoseStamped, Twist
    from nav_msgs.msg import Odometry

    from katazuke.control import ControllerConfig

    def prepare(probe: Any) -> None:
        # a robot standing at the origin, odometry at 50 Hz, a goal 100 m away: the
        # controller publishes one cmd_vel per tick for the whole run
        odom_pub = probe.publisher("odom", Odometry, "state")
        goal_pub = probe.publisher("goal_pose", PoseStamped, "command")

        def odom() -> None:
            m = Odometry()
            m.header.frame_id, m.child_frame_id = "odom", "base_link"
            m.pose.pose.orientation.w = 1.0
            odom_pub.publish(m)

        probe.node.create_timer(0.02, odom)
        if not probe.wait_for(lambda: goal_pub.get_subscription_count() > 0,
                              cfg.startup_timeout_s):
            raise KatazukeError("the controller did not subscribe to goal_pose")
        g = PoseStamped()
        g.header.frame_id = "odom"
        g.pose.position.x, g.pose.orientation.w = 100.0, 1.0
        goal_pub.publish(g)

    return _measure_node(cfg, "controller", _topics(cfg.controller_topics), [], "cmd_vel",
                         Twist, "command", ControllerConfig().rate_hz, prepare)


def run(cfg: FloodBenchConfig) -> dict[str, Any]:
    """Flood the sim bridge's and the controller's command topics, one at a time.

    Returns:
        ``config``, ``bridge`` and ``controller`` (each: ``nominal_hz``, ``baseline_hz``,
        ``floods`` (per topic: rate during the flood, ratios, the flooders' achieved rate),
        ``worst_ratio_nominal``, ...) and ``worst_flood_rate_ratio``.
    """
    from katazuke.config import config_to_dict

    res: dict[str, Any] = {"config": config_to_dict(cfg)}
    if _topics(cfg.bridge_topics):
        res["bridge"] = _bridge(cfg)
    if _topics(cfg.controller_topics):
        res["controller"] = _controller(cfg)
    achieved = [f["flood_rate_hz"] / cfg.rate_hz for k in ("bridge", "controller")
                for f in res.get(k, {}).get("floods", [])]
    res["worst_flood_rate_ratio"] = min(achieved) if achieved else float("nan")
    res["median_flood_rate_hz"] = median([a * cfg.rate_hz for a in achieved]) if achieved \
        else float("nan")
    return res


def _rows(part: dict[str, Any], what: str) -> str:
    rows = [f"| no flood | – | {part['baseline_hz']:.1f} | {part['baseline_ratio_nominal']:.2f} "
            f"| – | {part['baseline_cpu_pct']:.0f} | – |"]
    for f in part["floods"]:
        rows.append(f"| `{f['topic']}` | {f['flood_rate_hz']:.0f} ({f['sent']} sent) | "
                    f"{f['rate_hz']:.1f} | {f['ratio_nominal']:.2f} | {f['ratio_baseline']:.2f} "
                    f"| {f['cpu_pct']:.0f} "
                    f"| {'+'.join(f'{x:.0f}' for x in f['flood_per_process_hz'])} |")
    return (f"| flooded topic | bad commands / s achieved | {what} | / nominal | / no flood "
            f"| node CPU (% of a core) | per flooder process (/s) |\n"
            f"|---|---|---|---|---|---|---|\n" + "\n".join(rows))


def markdown(res: dict[str, Any], command: str = "") -> str:
    """The report of :func:`run`'s results; every sentence is derived from the measurements."""
    from katazuke.bench.harness import bars_markdown

    c = res["config"]
    parts = []
    for key, title, rate, who in (("bridge", "sim_bridge (nominal /clock", "/clock Hz received",
                                   "the bridge"),
                                  ("controller", "controller (nominal", "cmd_vel Hz received",
                                   "the controller")):
        if key in res:
            b = res[key]
            parts.append(f"## {title} {b['nominal_hz']:g} Hz)\n\n{_rows(b, rate)}\n\n"
                         f"Flood warnings {who} logged: {b['flood_warnings_logged']}"
                         + (f"; the last: `{b['last_flood_warning']}`"
                            if b["last_flood_warning"] else "") + ".")
    body = "\n\n".join(parts)
    return f"""# Command flood: control loops under {c['rate_hz']:g} bad commands / s

{f"Command: `{command}`" if command else ""}

Each node runs as its own process with its default settings at real time; this process
counts its loop output (the bridge's `/clock`, the controller's `cmd_vel` while it tracks a
goal 100 m away) for {c['baseline_s']:g} s without a flood, then for each command topic in
turn{" (and last for all of them at once, in turn message by message)" if c['all_at_once'] else ""}
{c['flooders']} flooder process(es) pinned to core {c['core']} (`taskset`) publish
{c['rate_hz']:g} malformed commands / s in total for {c['flood_s']:g} s; the rate is counted
over the flood without its first and last 0.5 s; the node's CPU (all its threads, from
/proc) over the whole flood. The nodes take each command topic once per
tick from a KEEP_LAST 1 history, so the excess never reaches Python.

{bars_markdown(evaluate_bars(res, BARS))}

{body}
"""


if __name__ == "__main__":
    raise SystemExit(flooder_main())
