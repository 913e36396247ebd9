"""sim_bridge for real: a real TidyEnv behind the node, observed over DDS with rclpy.

One bridge (small room, real_time_factor 1) serves the whole module; each test publishes
inputs and waits with a timeout for the outputs it asserts on. Real time (not "as fast
as possible") because the tests stream commands from Python: on a loaded machine an
unpaced simulation outruns the command stream and the bridge's cmd_vel timeout stops
the base between two commands.
"""
from __future__ import annotations

import math
import os
import threading
from typing import Any, Callable

import numpy as np
import pytest

from katazuke.testing import wait_for

pytestmark = [pytest.mark.ros, pytest.mark.sim]

TIMEOUT = 60.0
DOMAIN = 100 + os.getpid() % 2
NS = f"/simb{os.getpid()}"


class Harness:
    """The bridge node plus an observer node spun by one executor thread."""

    def __init__(self) -> None:
        import rclpy
        from geometry_msgs.msg import PoseStamped, Twist
        from nav_msgs.msg import Odometry
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from std_msgs.msg import String
        from tf2_msgs.msg import TFMessage
        from trajectory_msgs.msg import JointTrajectory

        from katazuke_interfaces.msg import GripperCommand, ObjectMap
        from katazuke_ros import qos
        from katazuke_ros.sim_bridge import SimBridge

        self.ctx = Context()
        # Own domain and namespace: other test sessions on this host (their domains come
        # from their pids) must not feed foreign /joint_states or /clock into this one.
        rclpy.init(context=self.ctx, domain_id=DOMAIN)
        ns = NS
        params = [Parameter("real_time_factor", value=1.0),
                  Parameter("sim.n_objects", value=[3, 4]),
                  Parameter("camera_hz", value=10.0),
                  Parameter("seed", value=5)]
        self.bridge = SimBridge(context=self.ctx, parameter_overrides=params, namespace=ns)
        self.obs = rclpy.create_node("observer", context=self.ctx)
        self.lock = threading.Lock()
        self.msgs: dict[str, list[Any]] = {}

        def keep(name: str, limit: int = 200) -> Callable[[Any], None]:
            self.msgs[name] = []

            def cb(m: Any) -> None:
                with self.lock:
                    lst = self.msgs[name]
                    lst.append(m)
                    if len(lst) > limit:
                        del lst[: len(lst) - limit]
            return cb

        o = self.obs
        o.create_subscription(Clock, "/clock", keep("clock"), qos.CLOCK)
        o.create_subscription(Image, f"{ns}/head_camera/image_raw", keep("image", 20), qos.SENSOR)
        o.create_subscription(Image, f"{ns}/head_camera/depth/image_raw", keep("depth", 20), qos.SENSOR)
        o.create_subscription(CameraInfo, f"{ns}/head_camera/camera_info", keep("info", 20), qos.SENSOR)
        o.create_subscription(Odometry, f"{ns}/odom", keep("odom", 2000), qos.STATE)
        o.create_subscription(JointState, f"{ns}/joint_states", keep("joints"), qos.STATE)
        o.create_subscription(TFMessage, "/tf", keep("tf", 500), qos.STATE)
        o.create_subscription(TFMessage, "/tf_static", keep("tf_static"), qos.LATCHED)
        o.create_subscription(String, f"{ns}/sim_bridge/rejected", keep("rejected"), qos.EVENTS)
        o.create_subscription(String, f"{ns}/robot_description", keep("description"), qos.LATCHED)
        o.create_subscription(PoseStamped, f"{ns}/sim/ground_truth/base_pose", keep("gt_pose", 2000),
                              qos.STATE)
        o.create_subscription(ObjectMap, f"{ns}/sim/ground_truth/objects", keep("gt_objects"),
                              qos.LATCHED)
        self.cmd_vel = o.create_publisher(Twist, f"{ns}/cmd_vel", qos.COMMAND)
        self.arm = o.create_publisher(JointTrajectory, f"{ns}/arm/command", qos.COMMAND)
        self.head = o.create_publisher(JointTrajectory, f"{ns}/head/command", qos.COMMAND)
        self.gripper = o.create_publisher(GripperCommand, f"{ns}/gripper/command", qos.COMMAND)
        # one thread, as run_node spins the bridge: rclpy's MultiThreadedExecutor costs about
        # a busy core of bookkeeping, which on 2 cores starved the bridge's loop (measured
        # here: /clock 11 Hz with it, 30.0 Hz without)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.bridge)
        self.executor.add_node(o)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def get(self, name: str) -> list[Any]:
        with self.lock:
            return list(self.msgs[name])

    def clear(self, name: str) -> None:
        with self.lock:
            self.msgs[name].clear()

    def sim_time(self) -> float:
        c = self.get("clock")
        return c[-1].clock.sec + 1e-9 * c[-1].clock.nanosec if c else -1.0

    def wait_sim(self, seconds: float) -> None:
        t0 = self.sim_time()
        assert wait_for(lambda: self.sim_time() >= t0 + seconds, TIMEOUT), \
            f"sim time stuck at {self.sim_time()} (wanted {t0} + {seconds})"

    def close(self) -> None:
        self.bridge.close()  # stops the simulation thread and frees the simulator
        self.executor.shutdown(timeout_sec=10)
        self.thread.join(timeout=10)
        for node in (self.bridge, self.obs):
            self.executor.remove_node(node)
            node.destroy_node()
        self.ctx.try_shutdown()


@pytest.fixture(scope="module")
def sim():
    h = Harness()
    try:
        assert wait_for(lambda: len(h.get("image")) > 0 and len(h.get("odom")) > 0, TIMEOUT), \
            "the bridge published no image/odom"
        yield h
    finally:
        h.close()


def _stamp(m: Any) -> int:
    return m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec


def _yaw(q: Any) -> float:
    return math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))


def test_clock_advances_in_lock_step(sim: Harness) -> None:
    sim.wait_sim(1.0)
    ts = [c.clock.sec + 1e-9 * c.clock.nanosec for c in sim.get("clock")]
    assert ts[-1] > ts[0]
    steps = np.diff(ts[-20:])
    dt = 1.0 / sim.bridge.cfg.sim.control_hz
    # best-effort /clock may drop ticks, but every tick is a whole number of control steps
    assert np.all(steps > 0)
    assert np.allclose(steps / dt, np.round(steps / dt), atol=1e-3)


def test_camera_streams_are_consistent(sim: Harness) -> None:
    cfg = sim.bridge.cfg

    def matched() -> bool:
        ims, ds, infos = sim.get("image"), sim.get("depth"), sim.get("info")
        common = {_stamp(m) for m in ims} & {_stamp(m) for m in ds} & {_stamp(m) for m in infos}
        return len(common) >= 2

    assert wait_for(matched, TIMEOUT), "no rgb/depth/camera_info with the same stamp"
    img, depth, info = sim.get("image")[-1], sim.get("depth")[-1], sim.get("info")[-1]
    assert (img.width, img.height, img.encoding) == (cfg.sim.image_width, cfg.sim.image_height, "rgb8")
    assert img.step == 3 * img.width and len(img.data) == img.step * img.height
    assert (depth.width, depth.height, depth.encoding) == (img.width, img.height, "32FC1")
    assert depth.step == 4 * depth.width
    d = np.frombuffer(bytes(depth.data), dtype="<f4")
    finite = d[np.isfinite(d)]
    assert finite.size > 0.5 * d.size and finite.min() > 0.0 and finite.max() < 20.0  # metres
    assert img.header.frame_id == depth.header.frame_id == info.header.frame_id \
        == "head_camera_optical_frame"
    assert (info.width, info.height, info.distortion_model) == (img.width, img.height, "plumb_bob")
    K = np.array(info.k).reshape(3, 3)
    P = np.array(info.p).reshape(3, 4)
    assert K[0, 0] > 0 and K[1, 1] > 0 and K[2, 2] == 1.0
    assert 0 < K[0, 2] < img.width and 0 < K[1, 2] < img.height
    assert np.allclose(P[:, :3], K) and np.allclose(P[:, 3], 0) and not any(info.d)
    # camera rate: consecutive frames camera period apart in sim time
    stamps = sorted({_stamp(m) for m in sim.get("image")})
    if len(stamps) >= 2:
        gaps = np.diff(stamps) * 1e-9
        period = cfg.every(cfg.camera_hz) / cfg.sim.control_hz
        assert np.allclose(gaps / period, np.round(gaps / period), atol=1e-3)


def test_tf_tree_and_odometry(sim: Harness) -> None:
    assert wait_for(lambda: len(sim.get("tf_static")) > 0 and len(sim.get("tf")) > 10, TIMEOUT)
    static = {(t.header.frame_id, t.child_frame_id) for m in sim.get("tf_static")
              for t in m.transforms}
    assert ("head_camera_link", "head_camera_optical_frame") in static
    assert ("map", "odom") in static
    dyn = {(t.header.frame_id, t.child_frame_id) for m in sim.get("tf") for t in m.transforms}
    assert ("odom", "base_link") in dyn
    assert ("head_tilt_link", "head_camera_link") in static
    assert ("base_link", "panda_link0") in static
    assert {("base_link", "head_pan_link"), ("head_pan_link", "head_tilt_link"),
            ("panda_link0", "panda_link1")} <= dyn
    parents: dict[str, str] = {}
    for parent, child in dyn | static:
        assert parents.setdefault(child, parent) == parent, f"{child} has two parents"
    odom = sim.get("odom")[-1]
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
    joints = sim.get("joints")[-1]
    assert {"panda_joint1", "head_pan_joint", "head_tilt_joint"} <= set(joints.name)
    assert len(joints.position) == len(joints.name)
    # the head camera transform shares the image's stamp
    img_stamps = {_stamp(m) for m in sim.get("image")}
    head_tf = {_stamp(t) for m in sim.get("tf") for t in m.transforms
               if t.child_frame_id == "head_tilt_link"}
    assert img_stamps & head_tf


def _matrix(t: Any) -> np.ndarray:
    q, p = t.transform.rotation, t.transform.translation
    x, y, z, w = q.x, q.y, q.z, q.w
    T = np.eye(4)
    T[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                 [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                 [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    T[:3, 3] = [p.x, p.y, p.z]
    return T


def test_tf_chain_matches_the_simulated_camera_pose(sim: Harness) -> None:
    """odom -> base_link -> ... -> head_camera_optical_frame composed from /tf and /tf_static
    equals the simulator's camera pose, up to the odometry drift (robot at rest)."""
    sim.wait_sim(0.5)
    latest: dict[str, Any] = {}
    for m in sim.get("tf_static") + sim.get("tf"):
        for t in m.transforms:
            latest[t.child_frame_id] = t
    T = np.eye(4)
    frame = "head_camera_optical_frame"
    while frame in latest and frame != "odom":
        T = _matrix(latest[frame]) @ T
        frame = latest[frame].header.frame_id
    assert frame == "odom"
    env = sim.bridge.env
    x, y, yaw = env.base_pose()
    ox, oy, oyaw = env.odometry()[:3]
    T_world_cam = env.head_camera_pose()
    # express the composed pose with the true base pose instead of odometry
    c, s = math.cos(yaw - oyaw), math.sin(yaw - oyaw)
    fix = np.eye(4)
    fix[:2, :2] = [[c, -s], [s, c]]
    fix[:2, 3] = [x, y] - fix[:2, :2] @ [ox, oy]
    assert np.allclose(fix @ T, T_world_cam, atol=2e-3), (fix @ T, T_world_cam)


def _drive(sim: Harness, vx: float, vy: float, wz: float, seconds: float) -> None:
    from geometry_msgs.msg import Twist

    t0 = sim.sim_time()

    def go() -> bool:
        m = Twist()
        m.linear.x, m.linear.y, m.angular.z = vx, vy, wz
        sim.cmd_vel.publish(m)
        return sim.sim_time() >= t0 + seconds

    assert wait_for(go, TIMEOUT, poll=0.01)


def test_cmd_vel_moves_the_base_in_the_commanded_direction(sim: Harness) -> None:
    o0 = sim.get("odom")[-1]
    x0, y0, yaw0 = o0.pose.pose.position.x, o0.pose.pose.position.y, _yaw(o0.pose.pose.orientation)
    _drive(sim, 0.3, 0.0, 0.0, 1.5)
    o1 = sim.get("odom")[-1]
    dx, dy = o1.pose.pose.position.x - x0, o1.pose.pose.position.y - y0
    forward = dx * math.cos(yaw0) + dy * math.sin(yaw0)
    lateral = -dx * math.sin(yaw0) + dy * math.cos(yaw0)
    assert forward > 0.2, (forward, lateral)
    assert abs(lateral) < 0.3 * forward
    # sideways (holonomic)
    _drive(sim, 0.0, 0.3, 0.0, 1.0)
    o2 = sim.get("odom")[-1]
    yaw1 = _yaw(o1.pose.pose.orientation)
    dx, dy = o2.pose.pose.position.x - o1.pose.pose.position.x, \
        o2.pose.pose.position.y - o1.pose.pose.position.y
    assert -dx * math.sin(yaw1) + dy * math.cos(yaw1) > 0.12
    # turning: 1.5 s at 0.8 rad/s is ~1.0 rad after the 2 rad/s^2 ramp; on a loaded CI
    # machine the command stream can stall for a moment, so the bar is well below that
    _drive(sim, 0.0, 0.0, 0.8, 1.5)
    o3 = sim.get("odom")[-1]
    dyaw = (_yaw(o3.pose.pose.orientation) - _yaw(o2.pose.pose.orientation) + math.pi) \
        % (2 * math.pi) - math.pi
    assert dyaw > 0.4, dyaw
    # cmd timeout: after the commands stop the base comes to rest
    sim.wait_sim(sim.bridge.cfg.cmd_timeout_s + 1.0)
    tw = sim.get("odom")[-1].twist.twist
    assert math.hypot(tw.linear.x, tw.linear.y) < 0.05 and abs(tw.angular.z) < 0.05
    # ground truth moved the same way (odometry is not free-running)
    gt = sim.get("gt_pose")[-1]
    assert gt.header.frame_id == "map"
    assert math.hypot(gt.pose.position.x - o3.pose.pose.position.x,
                      gt.pose.position.y - o3.pose.pose.position.y) < 0.3


def _traj(names: list[str], positions: list[float]) -> Any:
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    return JointTrajectory(joint_names=names, points=[JointTrajectoryPoint(positions=positions)])


def _joint(sim: Harness, name: str) -> float:
    js = sim.get("joints")[-1]
    return js.position[list(js.name).index(name)]


def test_bad_commands_are_rejected_and_the_bridge_keeps_running(sim: Harness) -> None:
    from geometry_msgs.msg import Twist

    from katazuke_interfaces.msg import GripperCommand

    arm1 = _joint(sim, "panda_joint1")
    bad = Twist()
    bad.linear.x = float("nan")
    # Commands are keep-last-1: send one bad command at a time and wait for its rejection.
    cases = [
        (sim.cmd_vel, bad, "cmd_vel: non-finite"),
        (sim.arm, _traj(["panda_joint1", "not_a_joint"], [0.1, 0.2]), "not_a_joint"),
        (sim.arm, _traj(["panda_joint1", "panda_joint2"], [0.1]), "1 positions for 2 joint names"),
        (sim.arm, _traj(["panda_joint1"], [float("nan")]), "non-finite joint position"),
        (sim.arm, _traj(["panda_joint4"], [1.0]), "panda_joint4 target 1.0000 rad outside"),
        (sim.arm, _traj(["panda_joint1", "panda_joint1"], [0.1, 0.1]), "duplicate"),
        (sim.head, _traj(["head_tilt_joint"], [3.0]), "head/command: head_tilt_joint target"),
        (sim.head, _traj(["panda_joint1"], [0.0]), "head/command: unknown joint"),
        (sim.gripper, GripperCommand(position=float("inf")), "gripper/command: position inf"),
        (sim.gripper, GripperCommand(position=0.5), "gripper/command"),
    ]
    for pub, msg, expect in cases:
        sim.clear("rejected")
        pub.publish(msg)
        ok = wait_for(lambda: any(expect in m.data for m in sim.get("rejected")), TIMEOUT)
        assert ok, f"no rejection containing {expect!r}: {[m.data for m in sim.get('rejected')]}"
    # the simulator's own check is the last line of defence: with the bridge's limit table
    # emptied, the env refuses the target and the bridge drops it and keeps stepping
    limits, sim.bridge.commands.limits = sim.bridge.commands.limits, {}
    try:
        sim.clear("rejected")
        sim.arm.publish(_traj(["panda_joint4"], [1.0]))
        assert wait_for(lambda: any("arm/command: the simulator refused it" in m.data
                                    for m in sim.get("rejected")), TIMEOUT), \
            [m.data for m in sim.get("rejected")]
    finally:
        sim.bridge.commands.limits = limits
    # still stepping and publishing after all of that; rejected targets never applied
    sim.wait_sim(1.0)
    assert abs(_joint(sim, "panda_joint1") - arm1) < 0.05
    assert -0.5 - 1e-3 <= _joint(sim, "head_tilt_joint") <= 1.3 + 1e-3
    odom = sim.get("odom")[-1].pose.pose.position
    assert math.isfinite(odom.x) and math.isfinite(odom.y)
    assert sim.bridge.rejected["arm/command"] >= 5
    # too fast: clipped, not rejected
    sim.clear("rejected")
    _drive(sim, 5.0, 0.0, 0.0, 1.0)
    tw = sim.get("odom")[-1].twist.twist
    assert 0.2 < math.hypot(tw.linear.x, tw.linear.y) <= sim.bridge.cfg.max_linear_speed + 0.1
    assert not sim.get("rejected")


def test_valid_head_and_arm_commands_are_tracked(sim: Harness) -> None:
    sim.head.publish(_traj(["head_pan_joint", "head_tilt_joint"], [0.5, 0.3]))
    sim.arm.publish(_traj(["panda_joint1"], [0.4]))
    ok = wait_for(lambda: abs(_joint(sim, "head_pan_joint") - 0.5) < 0.05
                  and abs(_joint(sim, "panda_joint1") - 0.4) < 0.05, TIMEOUT)
    assert ok, (_joint(sim, "head_pan_joint"), _joint(sim, "panda_joint1"))


def test_ground_truth_objects(sim: Harness) -> None:
    assert wait_for(lambda: len(sim.get("gt_objects")) > 0, TIMEOUT)
    om = sim.get("gt_objects")[-1]
    assert om.header.frame_id == "map"
    cats = {"toy", "kitchenware", "stationery", "bottle", "box", "soft"}
    assert 3 <= len(om.objects) <= 4
    assert all(o.category in cats and o.destination for o in om.objects)


def test_robot_description_is_the_urdf_a_kinematics_library_loads(sim: Harness) -> None:
    """robot_description (latched, as robot_state_publisher's on hardware) is the URDF the
    simulator runs: Pinocchio builds the Panda from it with the same forward kinematics."""
    from katazuke.planning.manipulation import ArmModel

    assert wait_for(lambda: len(sim.get("description")) > 0, TIMEOUT)
    urdf = sim.get("description")[-1].data
    assert urdf.lstrip().startswith("<") and "panda_joint7" in urdf and "head_tilt_joint" in urdf
    arm = ArmModel(urdf)
    q = np.array([0.1, -0.4, 0.2, -2.0, 0.1, 1.8, 0.5])
    assert np.allclose(arm.fk(q), ArmModel(sim.bridge.env.robot_urdf_path).fk(q))
    assert arm.n == 7


def test_tour_node_drives_the_path_on_odometry_and_exits(sim: Harness) -> None:
    """The `tour` executable (another process, sim time) follows a short path relative to
    where the robot stands, sweeps the head, stops, and exits with code 0."""
    import subprocess

    from katazuke.rosenv import ros_environment, workspace_install

    sim.wait_sim(sim.bridge.cfg.cmd_timeout_s + 0.5)  # at rest after earlier tests
    gt0 = sim.get("gt_pose")[-1].pose
    yaw0 = _yaw(gt0.orientation)
    env = ros_environment()
    env["ROS_DOMAIN_ID"] = str(DOMAIN)
    exe = workspace_install() / "lib" / "katazuke_ros" / "tour"
    proc = subprocess.run(
        [str(exe), "--ros-args", "-r", f"__ns:={NS}", "-p", "use_sim_time:=true",
         "-p", "relative_to_start:=true", "-p", "waypoints:=[0.5, 0.0, 0.5, 0.3]",
         "-p", "start_delay_s:=0.3", "-p", "timeout_s:=40.0", "-p", "head_tilt:=0.8"],
        env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tour done" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    sim.wait_sim(0.3)
    gt = sim.get("gt_pose")[-1].pose
    # goal: 0.5 m ahead and 0.3 m to the left of the start pose (odometry drifts a little)
    c, s = math.cos(yaw0), math.sin(yaw0)
    gx = gt0.position.x + 0.5 * c - 0.3 * s
    gy = gt0.position.y + 0.5 * s + 0.3 * c
    assert math.hypot(gt.position.x - gx, gt.position.y - gy) < 0.15
    assert abs(_joint(sim, "head_tilt_joint") - 0.8) < 0.05  # the tour moved the head
