"""The ``controller`` ROS 2 node, for real with rclpy: inputs published, outputs awaited."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pytest

from katazuke.testing import wait_for

pytestmark = pytest.mark.ros


class Harness:
    """A controller node plus a test node (publishers, recorders, an optional fake base)."""

    def __init__(self, ctx: Any, **params: Any) -> None:
        import rclpy
        from geometry_msgs.msg import PoseStamped, Twist
        from katazuke_interfaces.msg import ControllerDiagnostics
        from nav_msgs.msg import Odometry, Path
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool
        from trajectory_msgs.msg import JointTrajectory

        from katazuke.control import ControllerConfig
        from katazuke_ros import qos
        from katazuke_ros.controller_node import ControllerNode

        # Tracker settings are nested under ``controller.``; the node's own are top level.
        tracker = set(ControllerConfig.__dataclass_fields__)
        overrides = [Parameter(f"controller.{k}" if k in tracker else k, value=v)
                     for k, v in params.items()]
        self.ctrl = ControllerNode(context=ctx, parameter_overrides=overrides)
        self.node = rclpy.create_node("controller_test", context=ctx)
        n = self.node
        self.odom_pub = n.create_publisher(Odometry, "odom", qos.STATE)
        self.goal_pub = n.create_publisher(PoseStamped, "goal_pose", qos.COMMAND)
        self.path_pub = n.create_publisher(Path, "path", qos.COMMAND)
        self.js_pub = n.create_publisher(JointState, "joint_states", qos.STATE)
        self.arm_pub = n.create_publisher(JointTrajectory, "arm/target", qos.COMMAND)
        self.estop_pub = n.create_publisher(Bool, "emergency_stop", qos.LATCHED)
        self.cmds: list[Any] = []
        self.arm_cmds: list[Any] = []
        self.diags: list[Any] = []
        n.create_subscription(Twist, "cmd_vel", self.cmds.append, qos.COMMAND)
        n.create_subscription(JointTrajectory, "arm/command", self.arm_cmds.append, qos.COMMAND)
        n.create_subscription(ControllerDiagnostics, "controller/diagnostics", self.diags.append,
                              qos.EVENTS)
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.ctrl)
        self.ex.add_node(n)
        self.pose = np.zeros(3)         # fake base pose (x, y, yaw)
        self.bias = np.zeros(2)         # world-frame velocity disturbance (m/s)
        self._base_timer = None
        self.publish_odom_enabled = True

    # -- helpers
    def spin_until(self, cond: Callable[[], bool], timeout: float = 5.0) -> bool:
        return wait_for(cond, timeout, spin=lambda: self.ex.spin_once(timeout_sec=0.01))

    def base_diags(self) -> list[Any]:
        return [d for d in self.diags if d.header.frame_id == "base"]

    def keep_publishing_odom(self, x: float, y: float, yaw: float, dt: float = 0.02) -> None:
        """Publish a fixed odometry pose every ``dt`` s (a robot standing still)."""
        self.node.create_timer(dt, lambda: self.odom(x, y, yaw))

    def odom(self, x: float, y: float, yaw: float) -> None:
        from nav_msgs.msg import Odometry

        m = Odometry()
        m.header.frame_id = "odom"
        m.child_frame_id = "base_link"
        m.pose.pose.position.x, m.pose.pose.position.y = float(x), float(y)
        m.pose.pose.orientation.z = math.sin(yaw / 2)
        m.pose.pose.orientation.w = math.cos(yaw / 2)
        self.odom_pub.publish(m)

    def goal(self, x: float, y: float, yaw: float) -> None:
        from geometry_msgs.msg import PoseStamped

        g = PoseStamped()
        g.header.frame_id = "odom"
        g.pose.position.x, g.pose.position.y = float(x), float(y)
        g.pose.orientation.z = math.sin(yaw / 2)
        g.pose.orientation.w = math.cos(yaw / 2)
        self.goal_pub.publish(g)

    def start_fake_base(self, dt: float = 0.02) -> None:
        """Integrate the latest cmd_vel (+ bias) into the pose and publish odometry."""

        def step() -> None:
            if self.cmds:
                c = self.cmds[-1]
                yaw = self.pose[2]
                vx = math.cos(yaw) * c.linear.x - math.sin(yaw) * c.linear.y
                vy = math.sin(yaw) * c.linear.x + math.cos(yaw) * c.linear.y
                self.pose += dt * np.array([vx + self.bias[0], vy + self.bias[1], c.angular.z])
            if self.publish_odom_enabled:
                self.odom(*self.pose)

        self._base_timer = self.node.create_timer(dt, step)

    def close(self) -> None:
        self.ex.shutdown()
        self.ctrl.destroy_node()
        self.node.destroy_node()


@pytest.fixture
def harness(ros_context):
    made: list[Harness] = []

    def make(**params: Any) -> Harness:
        h = Harness(ros_context, **params)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def _connected(h: Harness) -> bool:
    return (h.odom_pub.get_subscription_count() > 0 and h.goal_pub.get_subscription_count() > 0
            and h.node.count_publishers("/cmd_vel") > 0)


def test_goal_and_odom_give_a_saturated_cmd_vel_in_the_base_frame(harness) -> None:
    h = harness(rate_hz=50.0, max_linear_speed=0.4)
    assert h.spin_until(lambda: _connected(h))
    h.keep_publishing_odom(0.0, 0.0, math.pi / 2)   # facing +y
    h.goal(2.0, 0.0, math.pi / 2)       # goal 2 m along +x (world): to the robot's right
    assert h.spin_until(lambda: len(h.cmds) >= 3)
    c = h.cmds[-1]
    # World +x is base -y when yaw = 90 deg; 2 m away -> saturated at 0.4 m/s.
    assert c.linear.y < -0.3 and abs(c.linear.x) < 1e-6 and abs(c.angular.z) < 1e-6
    assert math.hypot(c.linear.x, c.linear.y) <= 0.4 + 1e-9
    assert h.spin_until(lambda: any(d.frame_id == "base" for d in [x.header for x in h.diags]))
    d = [x for x in h.diags if x.header.frame_id == "base"][-1]
    assert d.mode == "lqr" and d.saturated and not d.estopped
    assert d.tracking_error == pytest.approx(2.0, abs=1e-3)


@pytest.mark.parametrize("mode", ["lqr", "gpc"])
def test_closed_loop_reaches_the_goal_under_a_velocity_bias(harness, mode: str) -> None:
    h = harness(rate_hz=50.0, mode=mode, odom_timeout_s=1.0)
    h.bias[:] = [0.05, -0.03]           # wheel slip / a push: LQR alone keeps an offset
    assert h.spin_until(lambda: _connected(h))
    h.start_fake_base()
    # The controller has odometry once it tracks a goal at the start pose (not "odometry stale").
    h.goal(*h.pose)
    assert h.spin_until(lambda: any(d.mode == mode for d in h.base_diags()))
    h.goal(0.6, -0.3, 0.5)
    target = np.array([0.6, -0.3, 0.5])
    err = lambda: float(np.linalg.norm(h.pose - target))  # noqa: E731
    assert h.spin_until(lambda: err() < 0.1, timeout=15.0), f"final error {err():.3f}"
    d = [x for x in h.diags if x.header.frame_id == "base"][-1]
    assert d.mode == mode and not d.fallback_active and np.isfinite(d.cumulative_cost)


def test_path_is_followed_to_its_last_pose(harness) -> None:
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Path

    h = harness(rate_hz=50.0, max_linear_speed=1.0)
    assert h.spin_until(lambda: _connected(h) and h.path_pub.get_subscription_count() > 0)
    h.start_fake_base()
    path = Path()
    path.header.frame_id = "odom"
    for x, y in [(0.3, 0.0), (0.3, 0.3), (0.0, 0.3)]:
        p = PoseStamped()
        p.pose.position.x, p.pose.position.y = x, y
        p.pose.orientation.w = 1.0
        path.poses.append(p)
    visited_corner = []
    h.path_pub.publish(path)

    def done() -> bool:
        if np.hypot(h.pose[0] - 0.3, h.pose[1] - 0.3) < 0.2:
            visited_corner.append(True)
        return np.hypot(h.pose[0], h.pose[1] - 0.3) < 0.05
    assert h.spin_until(done, timeout=15.0), f"pose {h.pose}"
    assert visited_corner, "the middle waypoint was skipped"


def test_watchdog_stops_the_base_when_odometry_goes_stale(harness) -> None:
    h = harness(rate_hz=50.0, odom_timeout_s=0.3)
    assert h.spin_until(lambda: _connected(h))
    h.start_fake_base()
    h.goal(5.0, 0.0, 0.0)
    assert h.spin_until(lambda: len(h.cmds) > 0 and h.cmds[-1].linear.x > 0.1)
    h.publish_odom_enabled = False      # odometry dies
    n_before = len(h.cmds)
    assert h.spin_until(lambda: len(h.cmds) > n_before and h.cmds[-1].linear.x == 0.0
                        and h.cmds[-1].linear.y == 0.0, timeout=3.0)
    assert any(d.fallback_reason == "odometry stale" for d in h.diags)
    # Stays stopped while odometry is stale.
    n_stop = len(h.cmds)
    assert h.spin_until(lambda: len(h.cmds) > n_stop + 5, timeout=2.0)
    assert all(c.linear.x == 0.0 and c.angular.z == 0.0 for c in h.cmds[n_stop:])
    h.publish_odom_enabled = True       # and recovers
    assert h.spin_until(lambda: h.cmds[-1].linear.x > 0.1, timeout=3.0)


def test_emergency_stop_is_latched_until_released(harness) -> None:
    from std_msgs.msg import Bool

    h = harness(rate_hz=50.0)
    assert h.spin_until(lambda: _connected(h) and h.estop_pub.get_subscription_count() > 0)
    h.start_fake_base()
    h.goal(5.0, 0.0, 0.0)
    assert h.spin_until(lambda: len(h.cmds) > 0 and h.cmds[-1].linear.x > 0.1)
    h.estop_pub.publish(Bool(data=True))
    assert h.spin_until(lambda: any(d.estopped for d in h.diags))
    n0 = len(h.cmds)
    pose0 = h.pose.copy()
    assert h.spin_until(lambda: len(h.cmds) > n0 + 10, timeout=3.0)
    assert all(c.linear.x == 0.0 and c.linear.y == 0.0 and c.angular.z == 0.0
               for c in h.cmds[n0 + 1:])
    assert np.linalg.norm(h.pose - pose0) < 0.05  # at most one in-flight command moved it
    assert any(d.estopped for d in h.diags)
    h.goal(6.0, 0.0, 0.0)               # a new goal does not release the stop
    n1 = len(h.cmds)
    assert h.spin_until(lambda: len(h.cmds) > n1 + 5, timeout=2.0)
    assert all(c.linear.x == 0.0 for c in h.cmds[n1:])
    h.estop_pub.publish(Bool(data=False))
    assert h.spin_until(lambda: h.cmds[-1].linear.x > 0.1, timeout=3.0)


def test_nan_odometry_is_rejected_and_the_node_keeps_running(harness) -> None:
    h = harness(rate_hz=50.0, odom_timeout_s=1.0)
    assert h.spin_until(lambda: _connected(h))
    h.odom(0.0, 0.0, 0.0)
    h.goal(1.0, 0.0, 0.0)
    assert h.spin_until(lambda: len(h.cmds) > 0 and len(h.base_diags()) > 0)
    h.odom(float("nan"), 0.0, 0.0)
    h.odom(0.2, float("inf"), 0.0)
    n0, d0 = len(h.cmds), len(h.base_diags())
    assert h.spin_until(lambda: len(h.cmds) > n0 + 5, timeout=2.0)
    # The last good pose (x = 0, 1 m from the goal) is still the one tracked.
    assert all(d.tracking_error == pytest.approx(1.0) for d in h.base_diags()[d0:])
    assert all(math.isfinite(c.linear.x) and math.isfinite(c.linear.y) for c in h.cmds)
    h.odom(0.9, 0.0, 0.0)               # good odometry is used again
    assert h.spin_until(lambda: h.base_diags()[-1].tracking_error == pytest.approx(0.1))
    n1 = len(h.cmds)
    assert h.spin_until(lambda: len(h.cmds) > n1 and 0.0 < h.cmds[-1].linear.x < 0.5)
    assert all(math.isfinite(d.stage_cost) for d in h.diags)


def test_arm_target_drives_joint_commands_toward_it(harness) -> None:
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    h = harness(rate_hz=50.0, max_joint_speed=0.5)
    assert h.spin_until(lambda: h.arm_pub.get_subscription_count() > 0
                        and h.js_pub.get_subscription_count() > 0)
    q = {"shoulder": 0.0, "elbow": 1.0, "gripper_finger": 0.02}

    def publish_js() -> None:
        h.js_pub.publish(JointState(name=list(q), position=list(q.values())))
    publish_js()
    target = JointTrajectory(joint_names=["elbow", "shoulder"],
                             points=[JointTrajectoryPoint(positions=[0.5, 0.1])])
    h.arm_pub.publish(target)
    assert h.spin_until(lambda: (publish_js() or True) and len(h.arm_cmds) > 2)
    c = h.arm_cmds[-1]
    assert list(c.joint_names) == ["elbow", "shoulder"]
    v = list(c.points[0].velocities)
    assert v[0] == pytest.approx(-0.5) and 0.0 < v[1] <= 0.5   # elbow saturated
    assert c.points[0].positions[0] == pytest.approx(1.0 - 0.5 / 50.0)


def test_a_burst_of_bad_arm_targets_is_taken_once_per_tick_and_counted(harness) -> None:
    """Command inputs are KEEP_LAST 1 and taken once per tick: of a burst of bad targets at
    most one per tick is handled (and rejected); the rest are superseded in DDS, counted in
    ``diagnostics``; a good goal afterwards is still tracked."""
    from diagnostic_msgs.msg import DiagnosticArray
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from katazuke_ros import qos

    h = harness(rate_hz=50.0)
    std: list[Any] = []
    h.node.create_subscription(DiagnosticArray, "diagnostics", std.append, qos.EVENTS)
    assert h.spin_until(lambda: _connected(h) and h.arm_pub.get_subscription_count() > 0)
    h.keep_publishing_odom(0.0, 0.0, 0.0)
    bad = JointTrajectory(joint_names=["j1", "j2"], points=[JointTrajectoryPoint(positions=[0.1])])
    h.arm_pub.publish(bad)              # the first one from this publisher
    assert h.spin_until(lambda: h.ctrl.inputs.counts()["arm/target"].taken == 1)
    n_bad = 3000
    for _ in range(n_bad):              # a burst: no tick runs meanwhile (nothing spins)
        h.arm_pub.publish(bad)
    assert h.spin_until(lambda: sum(vars(h.ctrl.inputs.counts()["arm/target"]).values())
                        == n_bad + 1), h.ctrl.inputs.counts()
    counts = h.ctrl.inputs.counts()["arm/target"]
    # (nearly) only the newest handled; more than 2 only if delivery overlapped a tick
    assert 2 <= counts.taken <= 5, counts
    assert h.ctrl.rejected["arm/target"] == counts.taken
    h.goal(1.0, 0.0, 0.0)
    assert h.spin_until(lambda: len(h.cmds) > 0 and h.cmds[-1].linear.x > 0.1)
    assert h.ctrl.inputs.counts()["goal_pose"].taken == 1
    assert h.spin_until(lambda: {("arm/target rejected", str(counts.taken)),
                                 ("arm/target superseded", str(counts.superseded))}
                        <= {(kv.key, kv.value) for a in std for st in a.status
                            for kv in st.values}, timeout=5.0)


def test_namespaced_controller_uses_the_namespaced_topics(ros_context) -> None:
    """Relative names: under namespace /r1 the controller reads /r1/odom and drives /r1/cmd_vel
    (what a namespaced sim_bridge publishes and subscribes)."""
    import rclpy
    from geometry_msgs.msg import PoseStamped, Twist
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from katazuke_ros import qos
    from katazuke_ros.controller_node import ControllerNode

    ctrl = ControllerNode(context=ros_context, namespace="/r1",
                          parameter_overrides=[Parameter("controller.rate_hz", value=50.0)])
    node = rclpy.create_node("bridge_stand_in", namespace="/r1", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(ctrl)
    ex.add_node(node)
    cmds: list[Twist] = []
    try:
        odom_pub = node.create_publisher(Odometry, "odom", qos.STATE)
        goal_pub = node.create_publisher(PoseStamped, "goal_pose", qos.COMMAND)
        node.create_subscription(Twist, "cmd_vel", cmds.append, qos.COMMAND)
        spin = lambda: ex.spin_once(timeout_sec=0.01)  # noqa: E731
        assert wait_for(lambda: odom_pub.get_subscription_count() > 0
                        and goal_pub.get_subscription_count() > 0
                        and node.count_publishers("/r1/cmd_vel") > 0, 5.0, spin=spin)
        assert node.count_publishers("/cmd_vel") == 0 and node.count_subscribers("/odom") == 0
        odom = Odometry()
        odom.header.frame_id = "odom"
        odom.pose.pose.orientation.w = 1.0
        node.create_timer(0.02, lambda: odom_pub.publish(odom))
        goal = PoseStamped()
        goal.header.frame_id = "odom"
        goal.pose.position.x = 1.0
        goal.pose.orientation.w = 1.0
        goal_pub.publish(goal)
        assert wait_for(lambda: any(c.linear.x > 0.1 for c in cmds), 5.0, spin=spin)
    finally:
        ex.shutdown()
        ctrl.destroy_node()
        node.destroy_node()


def test_control_params_file_loads_into_the_node_config(repo) -> None:
    import yaml

    from katazuke.config import load_config
    from katazuke_ros.controller_node import ControllerNodeConfig

    params = yaml.safe_load((repo / "launch/params/control.yaml").read_text())
    assert set(params) == {"controller"}
    load_config(ControllerNodeConfig, params["controller"]["ros__parameters"] or {})
    with pytest.raises(Exception, match="ControllerNodeConfig.odom_timeout_s must be a finite"):
        load_config(ControllerNodeConfig, {"odom_timeout_s": 0.0})


def test_stamped_path_is_tracked_with_feedforward_and_without_lag(harness) -> None:
    """A path with strictly increasing stamps is a trajectory: the base follows the moving
    reference at speed (feedforward) instead of trailing it by the feedback loop's lag."""
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Path

    from katazuke.planning.navigation import TimingConfig, time_parameterize

    h = harness(rate_hz=50.0, max_linear_speed=1.0)
    assert h.spin_until(lambda: _connected(h) and h.path_pub.get_subscription_count() > 0)
    h.start_fake_base()
    xs = np.linspace(0.0, 1.2, 25)
    tp = time_parameterize(np.column_stack([xs, np.zeros_like(xs), np.zeros_like(xs)]),
                           TimingConfig(v_max=0.4, a_max=0.8))
    t0 = h.ctrl.get_clock().now().nanoseconds * 1e-9 + 0.2
    path = Path()
    path.header.frame_id = "odom"
    for (x, y, _), t in zip(tp.poses, tp.t):
        p = PoseStamped()
        p.header.stamp.sec, p.header.stamp.nanosec = int(t0 + t), int(((t0 + t) % 1) * 1e9)
        p.pose.position.x, p.pose.position.y = float(x), float(y)
        p.pose.orientation.w = 1.0
        path.poses.append(p)
    h.path_pub.publish(path)
    lags = []

    def sample() -> bool:
        tau = h.ctrl.get_clock().now().nanoseconds * 1e-9 - t0
        if 0.3 * tp.duration < tau < 0.8 * tp.duration:  # cruising at 0.4 m/s
            lags.append(abs(tp.sample(tau)[0][0] - h.pose[0]))
        return tau > tp.duration and abs(h.pose[0] - 1.2) < 0.02
    assert h.spin_until(sample, timeout=20.0), f"pose {h.pose}"
    assert len(lags) > 10
    # feedback alone trails a 0.4 m/s reference by v / gain (several cm); feedforward does not
    assert float(np.median(lags)) < 0.015, f"median lag {np.median(lags):.3f} m"
