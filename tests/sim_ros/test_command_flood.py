"""A flood of bad commands does not slow the sim bridge, and commands still work after it.

The bridge (a tiny room, small camera, real time) runs in this process; a flooder process
pinned to one core publishes malformed commands on all six command topics in turn, far
above the control rate. The bridge takes each command topic once per step (KEEP_LAST 1),
so /clock keeps >= 90 % of the rate measured just before the flood, at most one command
per topic and step reaches Python, every flooded message is accounted for (taken or
superseded), and a lone arm goal and a valid twist sent afterwards are applied. (With a
callback per message, before, this test failed on a 2-core machine: /clock 22.5 and 27.0 Hz
during the flood against 30.0 Hz before it, and hundreds of bad commands a second handled.)
"""
from __future__ import annotations

import math
import os
import statistics
import threading
import time
from typing import Any

import pytest

from katazuke.testing import wait_for

pytestmark = pytest.mark.ros

TIMEOUT = 60.0
NS = f"/flood{os.getpid()}"
FLOOD_HZ = 12000.0      # bad commands / s, all topics together (control: 30 Hz)
FLOOD_S = 4.0
WINDOW_S = 3.0          # no-flood window


class Harness:
    """The bridge node and an observer spun by one executor thread."""

    def __init__(self) -> None:
        import rclpy
        from nav_msgs.msg import Odometry
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import JointState

        from katazuke_ros import qos
        from katazuke_ros.sim_bridge import SimBridge

        self.ctx = Context()
        rclpy.init(context=self.ctx)
        params = [Parameter("real_time_factor", value=1.0),
                  Parameter("sim.n_objects", value=[1, 2]),
                  Parameter("sim.image_width", value=64),
                  Parameter("sim.image_height", value=48),
                  Parameter("camera_hz", value=2.0),
                  Parameter("publish_ground_truth", value=False),
                  Parameter("seed", value=3)]
        self.bridge = SimBridge(context=self.ctx, parameter_overrides=params, namespace=NS)
        self.obs = rclpy.create_node("flood_observer", context=self.ctx)
        self.lock = threading.Lock()
        self.clock: list[float] = []            # wall arrival times (monotonic s)
        self.odom: Any = None
        self.joints: Any = None

        def on_clock(_m: Any) -> None:
            with self.lock:
                self.clock.append(time.monotonic())

        def on_odom(m: Any) -> None:
            self.odom = m

        def on_joints(m: Any) -> None:
            self.joints = m

        o = self.obs
        o.create_subscription(Clock, "/clock", on_clock, qos.CLOCK)
        o.create_subscription(Odometry, f"{NS}/odom", on_odom, qos.STATE)
        o.create_subscription(JointState, f"{NS}/joint_states", on_joints, qos.STATE)
        # one thread, as run_node spins the bridge: rclpy's MultiThreadedExecutor costs about
        # a busy core of bookkeeping, which on 2 cores starved the bridge's loop (measured
        # here: /clock 11 Hz with it, 30.0 Hz without)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.bridge)
        self.executor.add_node(o)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def clock_rate(self, t0: float, t1: float) -> float:
        from katazuke.bench.flood import rate_between

        with self.lock:
            arrivals = list(self.clock)
        return rate_between(arrivals, t0, t1)

    def median_rate(self, t0: float, t1: float) -> float:
        """Median of the /clock rates of the whole seconds in ``[t0, t1]``: one second stalled
        by something outside the test (on the development VM, the kernel paging library code
        out and back in: ~1 s stalls with dozens of major faults, with or without a flood)
        does not decide the comparison."""
        n = max(1, int(t1 - t0))
        return statistics.median(self.clock_rate(t0 + i, t0 + i + 1.0) for i in range(n))

    def joint(self, name: str) -> float:
        js = self.joints
        return js.position[list(js.name).index(name)]

    def close(self) -> None:
        self.bridge.close()
        self.executor.shutdown(timeout_sec=10)
        self.thread.join(timeout=10)
        for node in (self.bridge, self.obs):
            self.executor.remove_node(node)
            node.destroy_node()
        self.ctx.try_shutdown()


@pytest.mark.sim
@pytest.mark.slow
def test_a_flood_of_bad_commands_keeps_the_clock_rate_and_commands_still_apply() -> None:
    from geometry_msgs.msg import Twist
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from katazuke.bench.flood import BRIDGE_TOPICS, finish_flooders, start_flooders
    from katazuke_ros import qos

    core = 1 if (os.cpu_count() or 1) > 1 else 0
    h = Harness()
    try:
        assert wait_for(lambda: len(h.clock) > 30 and h.odom is not None
                        and h.joints is not None, TIMEOUT), "the bridge published no clock/odom"
        # the bridge's first seconds can stall (start-up, first renders): measure the baseline
        # once the last second ran at >= 90 % of nominal
        nominal = h.bridge.cfg.sim.control_hz
        assert wait_for(lambda: h.clock_rate(time.monotonic() - 1.0, time.monotonic())
                        >= 0.9 * nominal, TIMEOUT), "the bridge's /clock never reached its rate"
        topics = [f"{NS}/{t}" for t in BRIDGE_TOPICS]
        # The rate comparison is a timing measurement on a shared VM whose vCPUs are
        # sometimes taken away for ~1 s (steal time): up to 3 attempts, each a no-flood
        # baseline then a flood; the counting checks below are exact and need no retry (they
        # are what fails first with a callback per message).
        attempts = []
        for _ in range(3):
            t0 = time.monotonic()
            time.sleep(WINDOW_S)  # a measurement window, not a wait for a condition
            baseline = h.median_rate(t0, time.monotonic())
            rejected0 = dict(h.bridge.rejected)
            counts0 = h.bridge.inputs.counts()
            steps0 = h.bridge.steps
            fl = finish_flooders(start_flooders(",".join(topics), FLOOD_HZ, FLOOD_S, 1, core),
                                 FLOOD_S)
            steps = h.bridge.steps - steps0
            flooded = h.median_rate(fl["t0"] + 0.5, fl["t1"] - 0.5)
            attempts.append((round(flooded, 1), round(baseline, 1)))
            print(f"flood {fl['rate_hz']:.0f}/s ({fl['sent']} sent): /clock {flooded:.1f} Hz "
                  f"vs {baseline:.1f} Hz before")
            assert fl["rate_hz"] > 0.8 * FLOOD_HZ, fl  # the flood was real
            if flooded >= 0.9 * baseline and baseline > 0.5 * h.bridge.cfg.sim.control_hz:
                break
        assert flooded >= 0.9 * baseline, ("(flooded, baseline) Hz per attempt", attempts)
        assert baseline > 0.5 * h.bridge.cfg.sim.control_hz, attempts

        # at most one command per topic and step reached Python ...
        for kind in BRIDGE_TOPICS:
            n = h.bridge.rejected.get(kind, 0) - rejected0.get(kind, 0)
            assert 0 < n <= steps + 2, (kind, n, steps)
        # ... and every flooded message is accounted for, taken or superseded in DDS (but
        # those superseded before the first one taken from the flooder: < 2 steps' worth)
        per_topic = fl["sent"] / len(topics)
        first = 2 * FLOOD_HZ / len(topics) / h.bridge.cfg.sim.control_hz

        def accounted() -> bool:
            counts = h.bridge.inputs.counts()
            # per_topic is the mean over topics: the flooder's round robin gives each topic
            # within one message of it
            return all(-1 <= per_topic - (counts[k].taken - counts0[k].taken + counts[k].superseded
                                          - counts0[k].superseded) <= first + 2
                       for k in BRIDGE_TOPICS)

        assert wait_for(accounted, 5.0), (h.bridge.inputs.counts(), per_topic)

        # a lone arm goal after the flood is applied (never lost) ...
        node = h.obs
        arm = node.create_publisher(JointTrajectory, f"{NS}/arm/command", qos.COMMAND)
        cmd = node.create_publisher(Twist, f"{NS}/cmd_vel", qos.COMMAND)
        assert wait_for(lambda: arm.get_subscription_count() > 0
                        and cmd.get_subscription_count() > 0, TIMEOUT)
        arm.publish(JointTrajectory(joint_names=["panda_joint1"],
                                    points=[JointTrajectoryPoint(positions=[0.4])]))
        assert wait_for(lambda: abs(h.joint("panda_joint1") - 0.4) < 0.05, TIMEOUT), \
            h.joint("panda_joint1")
        # ... and so is a stream of valid twists: the base moves forward
        p0 = h.odom.pose.pose.position
        x0, y0 = p0.x, p0.y

        def moved() -> bool:
            m = Twist()
            m.linear.x = 0.3
            cmd.publish(m)
            p = h.odom.pose.pose.position
            return math.hypot(p.x - x0, p.y - y0) > 0.15

        assert wait_for(moved, TIMEOUT, poll=0.02), h.odom.pose.pose.position
    finally:
        h.close()


def test_sequence_gaps_count_what_was_skipped_per_publisher() -> None:
    from katazuke_ros.command_inputs import SequenceGaps

    g = SequenceGaps()
    assert [g.add(n) for n in (4, 5, 9, 10, 20)] == [0, 0, 3, 0, 9]  # first one: a new stream
    # a second publisher (numbers far below) is a stream of its own, not a huge gap
    assert [g.add(n) for n in (1, 3, 21, 4, 25)] == [0, 1, 0, 0, 3]
    assert g.add(None) == 0 and g.add(0) == 0                       # RMW without numbers


def test_a_failing_handler_drops_its_message_and_the_next_one_is_handled(ros_context) -> None:
    import rclpy
    from std_msgs.msg import Float64

    from katazuke_ros import qos
    from katazuke_ros.command_inputs import CommandInputs

    node = rclpy.create_node("inputs_test", context=ros_context)
    try:
        got: list[float] = []

        def handler(m: Any) -> None:
            if math.isnan(m.data):
                raise ValueError("nan")
            got.append(m.data)

        inputs = CommandInputs(node, tick_hz=30.0, log_period_s=1.0)
        inputs.add(Float64, "value", handler, qos.COMMAND)
        with pytest.raises(ValueError, match="KEEP_LAST 1"):
            inputs.add(Float64, "deep", handler, qos.EVENTS)
        pub = node.create_publisher(Float64, "value", qos.COMMAND)
        assert wait_for(lambda: pub.get_subscription_count() > 0, 10.0)

        def tick() -> None:             # a 100 Hz control loop
            inputs.poll()
            time.sleep(0.01)

        pub.publish(Float64(data=float("nan")))
        assert wait_for(lambda: inputs.failed["value"] == 1, 10.0, spin=tick)
        pub.publish(Float64(data=2.0))
        assert wait_for(lambda: got == [2.0], 10.0, spin=tick)
        assert inputs.counts()["value"].taken == 2
    finally:
        node.destroy_node()


def test_bench_flood_bad_arguments_are_one_clean_error(tmp_path: Any) -> None:
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("katazuke")
    for args, expect in ((["--bridge-topics", "cmd_vel,nope"], "unknown topic(s) ['nope']"),
                         (["--core", "4096"], "core 4096 does not exist")):
        proc = subprocess.run([str(exe), "bench", "flood", *args, "--out", str(tmp_path)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert expect in proc.stderr and "Traceback" not in proc.stderr
        assert not any(tmp_path.iterdir())     # nothing measured, nothing written
