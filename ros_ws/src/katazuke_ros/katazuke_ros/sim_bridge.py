"""sim_bridge: runs a :class:`katazuke.sim.TidyEnv` in lock-step and makes it look like hardware.

Every control step (``1 / control_hz`` of sim time) the bridge applies the newest
commands, steps the simulator, publishes ``/clock`` and the robot state; the head
camera is rendered and published every ``1 / camera_hz`` of sim time. All messages of
one step carry the same sim-time stamp. The bridge itself runs on the wall clock (to
pace ``real_time_factor``; 0 = as fast as possible); every other node uses
``use_sim_time``. The topic, frame and unit contract is written in docs/interfaces.md.

Published (relative names, so a namespace applies):
    /clock                         rosgraph_msgs/Clock                (CLOCK)
    head_camera/image_raw          sensor_msgs/Image rgb8             (SENSOR)
    head_camera/depth/image_raw    sensor_msgs/Image 32FC1, metres    (SENSOR)
    head_camera/camera_info        sensor_msgs/CameraInfo plumb_bob   (SENSOR)
    ceiling_camera_N/...           same three, when ``ceiling_cameras``
    joint_states                   sensor_msgs/JointState             (STATE)
    odom                           nav_msgs/Odometry (wheel odometry, drifts) (STATE)
    /tf, /tf_static                tf2_msgs/TFMessage                 (STATE, LATCHED)
    sim_bridge/rejected            std_msgs/String "kind: reason"     (EVENTS)
    sim/ground_truth/...           base_pose, objects, containers, markers (never for algorithms)

Subscribed:
    cmd_vel          geometry_msgs/Twist (base frame, holonomic; stops after ``cmd_timeout_s``)
    arm/command      trajectory_msgs/JointTrajectory (last point's positions become targets)
    gripper/command  katazuke_interfaces/GripperCommand
    head/command     trajectory_msgs/JointTrajectory (head pan / tilt joints)
    sim/disturbance/base_force  geometry_msgs/Vector3: world-frame push on the base (N, x, y;
                     z ignored), held until the next message; simulation only (COMMAND)
    sim/friction     std_msgs/Float64: floor friction coefficient (0..2), held; simulation only

Bad commands (NaN, unknown joint, wrong length, out of limits) are rejected with a
logged reason (rate-limited per kind), announced on ``sim_bridge/rejected`` and the
bridge keeps running with the previous valid targets. Velocities over the limits are
clipped with a warning.
"""
from __future__ import annotations

import array
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, TransformStamped, Twist, Vector3
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64, String
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker, MarkerArray

from katazuke.errors import ConfigError, KatazukeError
from katazuke_interfaces.msg import GripperCommand, ObjectInstance, ObjectMap
from katazuke_ros import qos
from katazuke_ros.node_utils import declare_config, run_node, sec_to_stamp

__all__ = ["SimBridgeConfig", "SimBridge", "main", "R_LINK_OPTICAL",
           "matrix_to_quaternion", "yaw_to_quaternion"]

# head_camera_link (x forward, y left, z up) -> head_camera_optical_frame (z forward,
# x right, y down): columns are the optical axes written in the link frame.
R_LINK_OPTICAL = np.array([[0.0, 0.0, 1.0],
                           [-1.0, 0.0, 0.0],
                           [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class SimBridgeConfig:
    """Parameters of the ``sim_bridge`` node (one ROS parameter per field)."""

    profile: str = field(default="none", metadata={
        "help": "randomization profile of the room: none | train | test"})
    seed: int = field(default=0, metadata={"help": "episode seed passed to TidyEnv.reset"})
    gui: bool = field(default=False, metadata={"help": "open the PyBullet GUI window"})
    control_hz: float = field(default=30.0, metadata={
        "help": "control rate, Hz of sim time: one env.step and one /clock tick per period"})
    physics_substeps: int = field(default=8, metadata={
        "help": "physics steps per control step"})
    real_time_factor: float = field(default=1.0, metadata={
        "help": "sim seconds per wall second; 0 = as fast as possible"})
    n_objects: tuple[int, int] = field(default=(10, 20), metadata={
        "help": "min, max number of objects scattered in the room"})
    image_width: int = field(default=320, metadata={"help": "camera image width, pixels"})
    image_height: int = field(default=240, metadata={"help": "camera image height, pixels"})
    camera_hz: float = field(default=10.0, metadata={
        "help": "head camera rate, Hz of sim time (rounded to a whole number of control steps)"})
    ceiling_cameras: bool = field(default=False, metadata={
        "help": "also render and publish the fixed ceiling cameras (ceiling_camera_N/...)"})
    ceiling_camera_hz: float = field(default=2.0, metadata={
        "help": "ceiling camera rate, Hz of sim time"})
    odom_noise_lin: float = field(default=0.02, metadata={
        "help": "wheel odometry drift: std of the measured linear speed error, fraction of speed"})
    odom_noise_ang: float = field(default=0.02, metadata={
        "help": "wheel odometry drift: std of the measured yaw-rate error, fraction of rate"})
    publish_ground_truth: bool = field(default=True, metadata={
        "help": "publish sim/ground_truth/* (for evaluation only, never for algorithms)"})
    ground_truth_hz: float = field(default=1.0, metadata={
        "help": "rate of the ground-truth object and container maps, Hz of sim time"})
    publish_map_to_odom: bool = field(default=True, metadata={
        "help": "publish a static identity map->odom (odometry starts at the true start pose); "
                "set false when a localization node owns map->odom"})
    cmd_timeout_s: float = field(default=0.5, metadata={
        "help": "stop the base when no cmd_vel arrived for this long (sim time, s)"})
    max_linear_speed: float = field(default=0.6, metadata={
        "help": "|v| limit of the base, m/s; faster commands are clipped with a warning"})
    max_angular_speed: float = field(default=1.5, metadata={
        "help": "|wz| limit of the base, rad/s; faster commands are clipped with a warning"})
    log_period_s: float = field(default=2.0, metadata={
        "help": "a rejected-command warning of one kind is logged at most once per this (wall s)"})
    map_frame: str = field(default="map", metadata={"help": "world frame id"})
    odom_frame: str = field(default="odom", metadata={"help": "odometry frame id"})
    base_frame: str = field(default="base_link", metadata={
        "help": "robot base frame id (on the floor, x forward, z up)"})

    def __post_init__(self) -> None:
        if self.control_hz <= 0 or not math.isfinite(self.control_hz):
            raise ConfigError(f"control_hz must be > 0, got {self.control_hz}")
        if self.real_time_factor < 0 or not math.isfinite(self.real_time_factor):
            raise ConfigError(f"real_time_factor must be >= 0 (0 = as fast as possible), "
                              f"got {self.real_time_factor}")
        for name in ("camera_hz", "ceiling_camera_hz", "ground_truth_hz", "cmd_timeout_s",
                     "max_linear_speed", "max_angular_speed"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.physics_substeps < 1:
            raise ConfigError(f"physics_substeps must be >= 1, got {self.physics_substeps}")
        if self.n_objects[0] > self.n_objects[1] or self.n_objects[0] < 0:
            raise ConfigError(f"n_objects must be [min, max] with 0 <= min <= max, "
                              f"got {list(self.n_objects)}")

    def every(self, hz: float) -> int:
        """Control steps between two publications at ``hz`` (at least 1)."""
        return max(1, int(round(self.control_hz / hz)))


def yaw_to_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """Rotation about z by ``yaw`` (rad) as an xyzw quaternion."""
    return (0.0, 0.0, math.sin(0.5 * yaw), math.cos(0.5 * yaw))


def matrix_to_quaternion(R: np.ndarray) -> tuple[float, float, float, float]:
    """Rotation matrix (3, 3) -> unit quaternion xyzw (w >= 0)."""
    m = np.asarray(R, dtype=np.float64)
    t = np.trace(m)
    if t > 0.0:
        s = math.sqrt(t + 1.0) * 2.0
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2.0
        q = (0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2.0
        q = ((m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2.0
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s)
    v = np.array(q)
    v /= np.linalg.norm(v)
    if v[3] < 0:
        v = -v
    return tuple(float(x) for x in v)  # type: ignore[return-value]


def _transform(stamp: Time, parent: str, child: str, T: np.ndarray) -> TransformStamped:
    t = TransformStamped()
    t.header.stamp = stamp
    t.header.frame_id = parent
    t.child_frame_id = child
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (
        float(v) for v in T[:3, 3])
    (t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z,
     t.transform.rotation.w) = matrix_to_quaternion(T[:3, :3])
    return t


def _planar(x: float, y: float, yaw: float) -> np.ndarray:
    T = np.eye(4)
    c, s = math.cos(yaw), math.sin(yaw)
    T[:2, :2] = [[c, -s], [s, c]]
    T[0, 3], T[1, 3] = x, y
    return T


def _bytes(a: np.ndarray) -> array.array:
    # array('B') is rclpy's fast path for uint8[] fields (bytes/lists are checked per element).
    return array.array("B", np.ascontiguousarray(a).tobytes())


class _Throttle:
    """Log each kind of problem at most once per ``period`` wall seconds, counting repeats."""

    def __init__(self, node: Node, period: float) -> None:
        self._node, self._period = node, period
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, kind: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -math.inf) >= self._period:
            n = self._suppressed.pop(kind, 0)
            extra = f" ({n} more like this suppressed)" if n else ""
            self._node.get_logger().warning(text + extra)
            self._last[kind] = now
        else:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1


class _Camera:
    """Publishers of one camera: rgb, depth, camera_info under ``prefix``."""

    def __init__(self, node: Node, prefix: str, frame_id: str) -> None:
        self.frame_id = frame_id
        self.image = node.create_publisher(Image, f"{prefix}/image_raw", qos.SENSOR)
        self.depth = node.create_publisher(Image, f"{prefix}/depth/image_raw", qos.SENSOR)
        self.info = node.create_publisher(CameraInfo, f"{prefix}/camera_info", qos.SENSOR)

    def publish(self, frame: Any, stamp: Time) -> None:
        rgb = np.asarray(frame.rgb)
        h, w = rgb.shape[:2]
        img = Image()
        img.header.stamp, img.header.frame_id = stamp, self.frame_id
        img.height, img.width, img.encoding, img.is_bigendian, img.step = h, w, "rgb8", 0, 3 * w
        img.data = _bytes(rgb[..., :3].astype(np.uint8, copy=False))
        depth = np.asarray(frame.depth, dtype="<f4").copy()
        # REP 118: no return is NaN (the simulator writes 0 or inf there).
        depth[~np.isfinite(depth) | (depth <= 0.0)] = np.nan
        dimg = Image()
        dimg.header.stamp, dimg.header.frame_id = stamp, self.frame_id
        dimg.height, dimg.width, dimg.encoding, dimg.is_bigendian, dimg.step = (
            h, w, "32FC1", 0, 4 * w)
        dimg.data = _bytes(depth)
        K = np.asarray(frame.K, dtype=np.float64)
        info = CameraInfo()
        info.header.stamp, info.header.frame_id = stamp, self.frame_id
        info.height, info.width = h, w
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = [float(v) for v in K.reshape(-1)]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        P = np.zeros((3, 4))
        P[:, :3] = K
        info.p = [float(v) for v in P.reshape(-1)]
        self.image.publish(img)
        self.depth.publish(dimg)
        self.info.publish(info)


class _Targets:
    """Command targets of one actuator.

    ``accepted`` has been stepped by the simulator without complaint; ``candidate`` is
    the newest command, not yet stepped. Each new candidate gets a new ``version`` so a
    step only accepts (or drops) the candidate it actually used, never one that arrived
    while it ran.
    """

    def __init__(self) -> None:
        self.accepted: Any = None
        self.candidate: Any = None
        self.version = 0
        self.source = ""

    def propose(self, value: Any, source: str) -> None:
        self.candidate, self.source = value, source
        self.version += 1

    def current(self) -> tuple[Any, int | None]:
        """The value to step with and the candidate version it is (None: the accepted one)."""
        if self.candidate is not None:
            return self.candidate, self.version
        return self.accepted, None

    def settle(self, value: Any, version: int | None, ok: bool) -> str | None:
        """After a step that used candidate ``value`` (``version``): accept it (``ok``) or
        drop it. Returns the command's source when a candidate was dropped."""
        if version is None:
            return None
        used_is_newest = self.version == version
        if ok:
            # the used candidate was valid even if a newer one is already waiting
            self.accepted = value
            if used_is_newest:
                self.candidate = None
            return None
        if used_is_newest:
            self.candidate = None
        return self.source


def _default_env_factory(cfg: SimBridgeConfig) -> Any:
    """Build the real simulator from the bridge parameters."""
    from katazuke.sim import EnvConfig, TidyEnv

    env_cfg = EnvConfig(**_env_kwargs(cfg, EnvConfig))
    return TidyEnv(env_cfg)


def _env_kwargs(cfg: SimBridgeConfig, env_config_cls: type) -> dict[str, Any]:
    import dataclasses

    names = {f.name for f in dataclasses.fields(env_config_cls)}
    kw: dict[str, Any] = {
        "profile": cfg.profile, "gui": cfg.gui, "control_hz": cfg.control_hz,
        "physics_substeps": cfg.physics_substeps, "image_width": cfg.image_width,
        "image_height": cfg.image_height, "n_objects": tuple(cfg.n_objects),
    }
    kw.update(odom_noise_lin=cfg.odom_noise_lin, odom_noise_ang=cfg.odom_noise_ang,
              ceiling_cameras=cfg.ceiling_cameras,
              # the bridge renders at camera_hz itself; step() must not render every tick
              render_observation=False)
    missing = sorted(set(kw) - names)
    if missing:
        raise ConfigError(f"this katazuke.sim.EnvConfig has no field(s) {missing}; "
                          f"update katazuke.sim or the sim_bridge parameters")
    return kw


class _LinkTree:
    """The robot's URDF link tree below ``base_link``, from the simulator's kinematics.

    Fixed joints go to ``/tf_static`` once; movable ones (arm, fingers, head) to ``/tf``
    with each joint state. The URDF's ``head_tilt_link -> head_camera_optical_frame`` is
    split into ``head_tilt_link -> head_camera_link`` (including the episode's camera
    mount perturbation) and the REP 103 ``head_camera_link -> head_camera_optical_frame``.
    """

    VIRTUAL = ("world_anchor", "base_x_link", "base_y_link")  # planar base joints

    def __init__(self, env: Any, base: str) -> None:
        c, uid = env.client, env.robot_uid
        self._c, self._uid = c, uid
        names, parent, fixed = {}, {}, {}
        for j in range(c.getNumJoints(uid)):
            info = c.getJointInfo(uid, j)
            names[j], parent[j], fixed[j] = info[12].decode(), int(info[16]), info[2] == 4
        by_name = {v: k for k, v in names.items()}
        base_idx = by_name["base_link"]
        self._base_name = base

        def below_base(j: int) -> bool:
            while j >= 0:
                j = parent[j]
                if j == base_idx:
                    return True
            return False

        cam = by_name.get("head_camera_optical_frame")
        self.edges = [(parent[j], j, fixed[j]) for j in sorted(names)
                      if below_base(j) and j != cam]
        self.names = names
        self._indices = sorted({base_idx} | {i for e in self.edges for i in e[:2]})
        self._cam_parent = parent[cam] if cam is not None else None
        self._T_parent_camlink: np.ndarray | None = None
        if cam is not None:
            T_world = self.poses()
            T_world_opt = np.asarray(env.head_camera_pose(), dtype=np.float64)
            T_opt_link = np.eye(4)
            T_opt_link[:3, :3] = R_LINK_OPTICAL.T
            self._T_parent_camlink = (np.linalg.inv(T_world[self._cam_parent])
                                      @ T_world_opt @ T_opt_link)

    def _name(self, j: int) -> str:
        return self._base_name if self.names[j] == "base_link" else self.names[j]

    def poses(self) -> dict[int, np.ndarray]:
        """``T_world_link`` (4, 4) of every link in the tree, by link index."""
        states = self._c.getLinkStates(self._uid, self._indices, computeForwardKinematics=1)
        out = {}
        for j, st in zip(self._indices, states):
            T = np.eye(4)
            T[:3, :3] = np.asarray(self._c.getMatrixFromQuaternion(st[5])).reshape(3, 3)
            T[:3, 3] = st[4]
            out[j] = T
        return out

    def transforms(self, stamp: Time, fixed: bool) -> list[TransformStamped]:
        """Parent -> child transforms of the fixed (or the movable) joints."""
        import pybullet as pb  # pose algebra in C: this runs every control step

        edges = [(p, c) for p, c, f in self.edges if f == fixed]
        wanted = sorted({i for e in edges for i in e})
        states = self._c.getLinkStates(self._uid, wanted, computeForwardKinematics=1)
        world = {j: (st[4], st[5]) for j, st in zip(wanted, states)}
        out = []
        for p, c in edges:
            inv_pos, inv_orn = pb.invertTransform(*world[p])
            pos, orn = pb.multiplyTransforms(inv_pos, inv_orn, *world[c])
            t = TransformStamped()
            t.header.stamp = stamp
            t.header.frame_id, t.child_frame_id = self._name(p), self._name(c)
            tr, q = t.transform.translation, t.transform.rotation
            tr.x, tr.y, tr.z = pos
            q.x, q.y, q.z, q.w = orn
            out.append(t)
        if fixed and self._T_parent_camlink is not None:
            out.append(_transform(stamp, self._name(self._cam_parent), "head_camera_link",
                                  self._T_parent_camlink))
        return out


class SimBridge(Node):
    """The simulator as a ROS 2 robot (see module docstring).

    Args:
        env_factory: builds the environment from the config; default:
            :class:`katazuke.sim.TidyEnv` with the node's parameters. Anything with
            TidyEnv's API works (``robot``/``client`` are optional: without them the arm
            link tree is not published and the head camera pose comes from the frames).
        node_name: ROS node name.
        **node_kwargs: forwarded to :class:`rclpy.node.Node` (e.g. ``context``).
    """

    def __init__(self, env_factory: Callable[[SimBridgeConfig], Any] | None = None,
                 node_name: str = "sim_bridge", **node_kwargs: Any) -> None:
        super().__init__(node_name, **node_kwargs)
        self.cfg = declare_config(self, SimBridgeConfig)
        self._log = _Throttle(self, self.cfg.log_period_s)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.env = (env_factory or _default_env_factory)(self.cfg)
        try:
            self.env.reset(seed=self.cfg.seed)
            self._setup_joints()
            self._tree = (_LinkTree(self.env, self.cfg.base_frame)
                          if getattr(self.env, "robot", None) is not None
                          and hasattr(self.env, "client") else None)
        except Exception:
            self.env.close()
            raise
        self._steps = 0
        self._twist = (0.0, 0.0, 0.0)
        self._twist_time = -math.inf  # sim time of the newest cmd_vel
        self._arm = _Targets()
        self._gripper = _Targets()
        self._head = _Targets()
        # simulation-only inputs, applied by the loop thread before its next step (the
        # simulator's client is not thread-safe): None = nothing new
        self._pending_force: tuple[float, float] | None = None
        self._pending_friction: float | None = None
        self._applied_force: tuple[float, float] = (0.0, 0.0)
        self._applied_friction: float | None = None
        self.rejected: dict[str, int] = {}
        self.step_wall_s: list[float] = []  # wall time per control step (bench / diagnostics)

        self._clock_pub = self.create_publisher(Clock, "/clock", qos.CLOCK)
        self._odom_pub = self.create_publisher(Odometry, "odom", qos.STATE)
        self._joint_pub = self.create_publisher(JointState, "joint_states", qos.STATE)
        self._tf_pub = self.create_publisher(TFMessage, "/tf", qos.STATE)
        self._tf_static_pub = self.create_publisher(TFMessage, "/tf_static", qos.LATCHED)
        self._rejected_pub = self.create_publisher(String, "sim_bridge/rejected", qos.EVENTS)
        self._head_cam = _Camera(self, "head_camera", "head_camera_optical_frame")
        self._ceiling: dict[str, _Camera] = {}
        if self.cfg.ceiling_cameras:
            for name in [n for n in self.env.camera_names() if n.startswith("ceiling_")]:
                i = name.split("_", 1)[1]
                self._ceiling[name] = _Camera(self, f"ceiling_camera_{i}",
                                              f"ceiling_camera_{i}_optical_frame")
        if self.cfg.publish_ground_truth:
            self._gt_pose_pub = self.create_publisher(
                PoseStamped, "sim/ground_truth/base_pose", qos.STATE)
            self._gt_objects_pub = self.create_publisher(
                ObjectMap, "sim/ground_truth/objects", qos.LATCHED)
            self._gt_containers_pub = self.create_publisher(
                ObjectMap, "sim/ground_truth/containers", qos.LATCHED)
            self._gt_markers_pub = self.create_publisher(
                MarkerArray, "sim/ground_truth/markers", qos.LATCHED)

        self.create_subscription(Twist, "cmd_vel", self._on_cmd_vel, qos.COMMAND)
        self.create_subscription(JointTrajectory, "arm/command", self._on_arm, qos.COMMAND)
        self.create_subscription(GripperCommand, "gripper/command", self._on_gripper,
                                 qos.COMMAND)
        self.create_subscription(JointTrajectory, "head/command", self._on_head, qos.COMMAND)
        self.create_subscription(Vector3, "sim/disturbance/base_force", self._on_base_force,
                                 qos.COMMAND)
        self.create_subscription(Float64, "sim/friction", self._on_friction, qos.COMMAND)

        self._publish_static_tf()
        self._publish(render_head=True)
        self._thread = threading.Thread(target=self._loop, name="sim_bridge_loop", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"simulating profile={self.cfg.profile} seed={self.cfg.seed} at "
            f"{self.cfg.control_hz:g} Hz, real_time_factor={self.cfg.real_time_factor:g}, "
            f"camera every {self.cfg.every(self.cfg.camera_hz)} steps")

    # ------------------------------------------------------------------ joints
    def _setup_joints(self) -> None:
        names = list(self.env.joint_names)
        self.joint_names = names
        self.head_joints = [n for n in names if "head" in n]
        self.arm_joints = [n for n in names if n not in self.head_joints
                           and "finger" not in n][:7]
        if len(self.arm_joints) != 7 or len(self.head_joints) != 2:
            raise KatazukeError(
                f"sim_bridge expects 7 arm joints and 2 head joints (pan, tilt) in "
                f"env.joint_names, got {names}")
        pos, _, _ = self.env.joint_state()
        pos = np.asarray(pos, dtype=np.float64)
        self._index = {n: i for i, n in enumerate(names)}
        self._initial_arm = pos[[self._index[n] for n in self.arm_joints]].copy()
        self._initial_head = pos[[self._index[n] for n in self.head_joints]].copy()
        # {name: (lower, upper)} from the URDF when the env exposes its robot model;
        # the env's own check (SimError at step time) stays as the last line of defence.
        self._limits: dict[str, tuple[float, float]] = {}
        joints = getattr(getattr(self.env, "robot", None), "joints", None) or {}
        for n in self.arm_joints + self.head_joints:
            if n in joints:
                self._limits[n] = (float(joints[n].lower), float(joints[n].upper))
        fingers = [joints[n] for n in names if "finger" in n and n in joints]
        # parallel gripper: the opening is the sum of the two finger travels
        self._gripper_max = (sum(float(j.upper) for j in fingers) if len(fingers) == 2
                             else None)
        env_cfg = getattr(self.env, "config", None)
        self._max_lin = min(self.cfg.max_linear_speed,
                            float(getattr(env_cfg, "base_max_lin_vel", math.inf)))
        self._max_ang = min(self.cfg.max_angular_speed,
                            float(getattr(env_cfg, "base_max_ang_vel", math.inf)))

    # --------------------------------------------------------------- commands
    def _reject(self, kind: str, reason: str) -> None:
        self.rejected[kind] = self.rejected.get(kind, 0) + 1
        self._log.warn(kind, f"rejected {kind}: {reason}")
        self._rejected_pub.publish(String(data=f"{kind}: {reason}"))

    def _on_cmd_vel(self, msg: Twist) -> None:
        v = (msg.linear.x, msg.linear.y, msg.angular.z)
        if not all(math.isfinite(c) for c in v):
            self._reject("cmd_vel", f"non-finite velocity (vx, vy, wz) = {v}; base stopped")
            with self._lock:
                self._twist, self._twist_time = (0.0, 0.0, 0.0), self.env.time
            return
        ignored = (msg.linear.z, msg.angular.x, msg.angular.y)
        if any(abs(c) > 1e-9 for c in ignored):
            self._log.warn("cmd_vel_3d", f"cmd_vel linear.z/angular.x/angular.y = {ignored} "
                                         "ignored: the base is planar")
        vx, vy, wz = v
        speed = math.hypot(vx, vy)
        vmax, wmax = self._max_lin, self._max_ang
        if speed > vmax:
            self._log.warn("cmd_vel_clip", f"cmd_vel |v| = {speed:.3f} m/s over the limit "
                                           f"{vmax:g} m/s: clipped (parameter max_linear_speed)")
            vx, vy = vx * vmax / speed, vy * vmax / speed
        if abs(wz) > wmax:
            self._log.warn("cmd_vel_clip_w", f"cmd_vel |wz| = {abs(wz):.3f} rad/s over the limit "
                                             f"{wmax:g} rad/s: clipped (parameter max_angular_speed)")
            wz = math.copysign(wmax, wz)
        with self._lock:
            self._twist, self._twist_time = (vx, vy, wz), self.env.time

    def _trajectory_targets(self, kind: str, msg: JointTrajectory, joints: list[str],
                            base: np.ndarray) -> np.ndarray | None:
        """Merge the last point of ``msg`` into ``base``; None (and a rejection) if invalid."""
        names = list(msg.joint_names)
        if not names:
            self._reject(kind, "empty joint_names")
            return None
        unknown = [n for n in names if n not in joints]
        if unknown:
            self._reject(kind, f"unknown joint name(s) {unknown}; valid: {joints}")
            return None
        if len(set(names)) != len(names):
            self._reject(kind, f"duplicate joint names {names}")
            return None
        if not msg.points:
            self._reject(kind, "no trajectory points")
            return None
        pos = list(msg.points[-1].positions)
        if len(pos) != len(names):
            self._reject(kind, f"{len(pos)} positions for {len(names)} joint names "
                               "(the last point's positions must match joint_names)")
            return None
        if not all(math.isfinite(p) for p in pos):
            self._reject(kind, f"non-finite joint position(s) {pos}")
            return None
        out = base.copy()
        for n, p in zip(names, pos):
            lim = self._limits.get(n)
            if lim is not None and not (lim[0] <= p <= lim[1]):
                self._reject(kind, f"{n} target {p:.4f} rad outside its limits "
                                   f"[{lim[0]:.4f}, {lim[1]:.4f}]")
                return None
            out[joints.index(n)] = p
        return out

    def _on_arm(self, msg: JointTrajectory) -> None:
        with self._lock:
            base = self._arm.current()[0]
        base = self._initial_arm if base is None else base
        target = self._trajectory_targets("arm/command", msg, self.arm_joints, base)
        if target is not None:
            with self._lock:
                self._arm.propose(target, "arm/command")

    def _on_head(self, msg: JointTrajectory) -> None:
        with self._lock:
            base = self._head.current()[0]
        base = self._initial_head if base is None else base
        target = self._trajectory_targets("head/command", msg, self.head_joints, base)
        if target is not None:
            with self._lock:
                self._head.propose(target, "head/command")

    def _on_gripper(self, msg: GripperCommand) -> None:
        w = float(msg.width)
        if not math.isfinite(w) or w < 0.0:
            self._reject("gripper/command", f"width {w} must be a finite number >= 0 (metres)")
            return
        max_w = self._gripper_max
        if max_w is not None and w > float(max_w) + 1e-9:
            self._reject("gripper/command", f"width {w:.4f} m over the gripper's maximum "
                                            f"{float(max_w):.4f} m")
            return
        with self._lock:
            self._gripper.propose(w, "gripper/command")

    def _on_base_force(self, msg: Vector3) -> None:
        f = (float(msg.x), float(msg.y))
        if not all(math.isfinite(c) for c in f) or not hasattr(self.env, "set_base_disturbance"):
            self._reject("sim/disturbance/base_force",
                         f"(fx, fy) = {f} N must be finite and the simulator must support pushes")
            return
        if abs(msg.z) > 1e-9:
            self._log.warn("force_z", f"sim/disturbance/base_force z = {msg.z} N ignored: "
                                      "pushes are planar (x, y, world frame)")
        with self._lock:
            self._pending_force = f

    def _on_friction(self, msg: Float64) -> None:
        mu = float(msg.data)
        if not (math.isfinite(mu) and 0.0 <= mu <= 2.0) or not hasattr(self.env,
                                                                      "set_floor_friction"):
            self._reject("sim/friction", f"friction {mu} must be a finite coefficient in "
                                         "[0, 2] and the simulator must support it")
            return
        with self._lock:
            self._pending_friction = mu

    def _apply_sim_inputs(self) -> None:
        with self._lock:
            force, mu = self._pending_force, self._pending_friction
            self._pending_force = self._pending_friction = None
        if force is not None:
            self.env.set_base_disturbance(force)
            if force != self._applied_force:
                self.get_logger().info(f"base push set to ({force[0]:.1f}, {force[1]:.1f}) N "
                                       "(world frame)")
            self._applied_force = force
        if mu is not None:
            self.env.set_floor_friction(mu)
            if mu != self._applied_friction:
                self.get_logger().info(f"floor friction set to {mu:g}")
            self._applied_friction = mu

    # ------------------------------------------------------------------- loop
    def _action(self, accepted_only: bool = False) -> tuple[Any, list[tuple[Any, int | None]]]:
        """The action for the next step and the (value, candidate version) of each target."""
        from katazuke.sim import Action

        with self._lock:
            twist = self._twist
            if self.env.time - self._twist_time > self.cfg.cmd_timeout_s:
                twist = (0.0, 0.0, 0.0)
            picks = [(t.accepted, None) if accepted_only else t.current()
                     for t in (self._arm, self._gripper, self._head)]
        (arm, _), (grip, _), (head, _) = picks
        action = Action(base_twist=twist,
                        arm_positions=None if arm is None else np.asarray(arm, dtype=np.float64),
                        gripper_width=grip,
                        head_pan_tilt=None if head is None else (float(head[0]), float(head[1])))
        return action, picks

    def step_once(self) -> None:
        """Apply the newest commands, step the simulator once and publish (one control tick)."""
        from katazuke.sim import SimError

        t0 = time.perf_counter()
        targets = (self._arm, self._gripper, self._head)
        self._apply_sim_inputs()
        action, versions = self._action()
        try:
            self.env.step(action)
            ok = True
        except SimError as exc:
            # A target the bridge could not check itself: drop the candidates this step
            # used, keep the last valid targets, and step with those.
            ok = False
            with self._lock:
                dropped = [t.settle(*used, ok=False) for t, used in zip(targets, versions)]
            dropped = [d for d in dropped if d]
            self._reject(dropped[0] if len(dropped) == 1 else "command",
                         f"the simulator refused it: {exc}")
            self.env.step(self._action(accepted_only=True)[0])
        if ok:
            with self._lock:
                for t, used in zip(targets, versions):
                    t.settle(*used, ok=True)
        self._steps += 1
        cfg = self.cfg
        self._publish(render_head=self._steps % cfg.every(cfg.camera_hz) == 0,
                      render_ceiling=self._steps % cfg.every(cfg.ceiling_camera_hz) == 0,
                      ground_truth=self._steps % cfg.every(cfg.ground_truth_hz) == 0)
        self.step_wall_s.append(time.perf_counter() - t0)
        if len(self.step_wall_s) > 10000:
            del self.step_wall_s[:5000]

    def _loop(self) -> None:
        period = 0.0 if self.cfg.real_time_factor == 0 else (
            1.0 / (self.cfg.control_hz * self.cfg.real_time_factor))
        start, k = time.monotonic(), 0
        while not self._stop.is_set() and rclpy.ok(context=self.context):
            try:
                self.step_once()
            except Exception as exc:
                if self._stop.is_set() or not rclpy.ok(context=self.context):
                    return  # shutting down: publishers went away under us
                # The simulator itself failed: a bridge that silently stops stepping would
                # freeze every sim-time node, so take the node down (launch sees the exit).
                self.get_logger().error(f"simulation step failed, shutting the bridge down: "
                                        f"{exc!r}")
                self.exit_code = 1
                rclpy.try_shutdown(context=self.context)
                return
            if period > 0.0:
                k += 1
                lag = start + k * period - time.monotonic()
                if lag > 0:
                    self._stop.wait(lag)
                elif lag < -1.0:  # far behind (slow renders): do not try to catch up in a burst
                    start, k = time.monotonic(), 0

    # ---------------------------------------------------------------- publish
    def _publish_static_tf(self) -> None:
        stamp = sec_to_stamp(self.env.time)
        T = np.eye(4)
        T[:3, :3] = R_LINK_OPTICAL
        tfs = [_transform(stamp, "head_camera_link", "head_camera_optical_frame", T)]
        if self._tree is not None:
            tfs += self._tree.transforms(stamp, fixed=True)
        if self.cfg.publish_map_to_odom:
            tfs.append(_transform(stamp, self.cfg.map_frame, self.cfg.odom_frame, np.eye(4)))
        self._tf_static_pub.publish(TFMessage(transforms=tfs))
        self._static_tfs = tfs

    def _publish(self, render_head: bool = False, render_ceiling: bool = False,
                 ground_truth: bool = False) -> None:
        cfg = self.cfg
        t = float(self.env.time)
        stamp = sec_to_stamp(t)
        self._clock_pub.publish(Clock(clock=stamp))

        x, y, yaw, vx, vy, wz = (float(v) for v in self.env.odometry())
        odom = Odometry()
        odom.header.stamp, odom.header.frame_id = stamp, cfg.odom_frame
        odom.child_frame_id = cfg.base_frame
        p = odom.pose.pose
        p.position.x, p.position.y = x, y
        p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = yaw_to_quaternion(yaw)
        odom.twist.twist.linear.x, odom.twist.twist.linear.y = vx, vy
        odom.twist.twist.angular.z = wz
        pc = [0.0] * 36
        # Planar robot: z, roll, pitch are exact (tiny variance); x, y, yaw grow with drift.
        pc[0] = pc[7] = max(cfg.odom_noise_lin, 1e-4) ** 2
        pc[14] = pc[21] = pc[28] = 1e-9
        pc[35] = max(cfg.odom_noise_ang, 1e-4) ** 2
        odom.pose.covariance = pc
        tc = [0.0] * 36
        tc[0] = tc[7] = tc[35] = 1e-3
        tc[14] = tc[21] = tc[28] = 1e-9
        odom.twist.covariance = tc
        self._odom_pub.publish(odom)

        pos, vel, eff = self.env.joint_state()
        js = JointState()
        js.header.stamp = stamp
        js.name = list(self.joint_names)
        js.position = [float(v) for v in pos]
        js.velocity = [float(v) for v in vel]
        js.effort = [float(v) for v in eff]
        self._joint_pub.publish(js)

        tfs = [_transform(stamp, cfg.odom_frame, cfg.base_frame, _planar(x, y, yaw))]
        if self._tree is not None:
            tfs += self._tree.transforms(stamp, fixed=False)
        if render_head:
            frame = self.env.render_head()
            if self._tree is None:  # no link tree: the camera pose straight from the base
                # Kinematics only (pan/tilt and the mount), not localization: the true
                # base pose cancels out of T_base_cam.
                T_world_base = _planar(*self.env.base_pose())
                T_opt_link = np.eye(4)
                T_opt_link[:3, :3] = R_LINK_OPTICAL.T
                T_base_link = (np.linalg.inv(T_world_base)
                               @ np.asarray(frame.T_world_cam, dtype=np.float64) @ T_opt_link)
                tfs.append(_transform(stamp, cfg.base_frame, "head_camera_link", T_base_link))
            self._tf_pub.publish(TFMessage(transforms=tfs))
            self._head_cam.publish(frame, stamp)
        else:
            self._tf_pub.publish(TFMessage(transforms=tfs))
        if render_ceiling and self._ceiling:
            static = []
            for name, cam in self._ceiling.items():
                frame = self.env.render_camera(name)
                static.append(_transform(stamp, cfg.map_frame, cam.frame_id,
                                         np.asarray(frame.T_world_cam, dtype=np.float64)))
                cam.publish(frame, stamp)
            self._tf_pub.publish(TFMessage(transforms=static))

        if cfg.publish_ground_truth:
            bx, by, byaw = (float(v) for v in self.env.base_pose())
            ps = PoseStamped()
            ps.header.stamp, ps.header.frame_id = stamp, cfg.map_frame
            ps.pose.position.x, ps.pose.position.y = bx, by
            (ps.pose.orientation.x, ps.pose.orientation.y, ps.pose.orientation.z,
             ps.pose.orientation.w) = yaw_to_quaternion(byaw)
            self._gt_pose_pub.publish(ps)
            if ground_truth or self._steps == 0:
                self._publish_ground_truth_maps(stamp)

    def _publish_ground_truth_maps(self, stamp: Time) -> None:
        frame = self.cfg.map_frame
        objects = ObjectMap()
        objects.header.stamp, objects.header.frame_id = stamp, frame
        markers = MarkerArray()
        clear = Marker()
        clear.action = Marker.DELETEALL
        markers.markers.append(clear)
        for i, o in enumerate(self.env.ground_truth_objects()):
            T = np.asarray(o.T_world_obj, dtype=np.float64)
            ext = np.asarray(o.extent, dtype=np.float64)
            inst = ObjectInstance()
            inst.id = _uint_id(o.id, i)
            inst.category = str(o.category)
            inst.confidence = 1.0
            inst.position.x, inst.position.y, inst.position.z = (float(v) for v in T[:3, 3])
            inst.extent.x, inst.extent.y, inst.extent.z = (float(v) for v in ext)
            inst.first_seen = inst.last_seen = stamp
            inst.observations = 0
            inst.destination = str(o.container or "")
            objects.objects.append(inst)
            markers.markers.append(_box_marker(stamp, frame, "objects", inst.id, T, ext,
                                               f"{o.kind} ({o.category}) -> {inst.destination}",
                                               _CATEGORY_COLOURS.get(inst.category)))
        containers = ObjectMap()
        containers.header.stamp, containers.header.frame_id = stamp, frame
        for i, c in enumerate(getattr(self.env, "containers", [])):
            T = np.asarray(c.T_world_container, dtype=np.float64)
            ext = np.asarray(c.extent, dtype=np.float64)
            inst = ObjectInstance()
            inst.id = i
            inst.category = "container"
            inst.confidence = 1.0
            inst.position.x, inst.position.y, inst.position.z = (float(v) for v in T[:3, 3])
            inst.extent.x, inst.extent.y, inst.extent.z = (float(v) for v in ext)
            inst.first_seen = inst.last_seen = stamp
            inst.destination = f"{c.id}:{getattr(c, 'colour', '')}"
            containers.objects.append(inst)
            markers.markers.append(_box_marker(stamp, frame, "containers", i, T, ext,
                                               f"{c.id} ({getattr(c, 'colour', '')})",
                                               _COLOURS.get(getattr(c, "colour", ""))))
        room, client = getattr(self.env, "room", None), getattr(self.env, "client", None)
        if room is not None and client is not None:
            bodies = ([("wall", b) for b in room.walls]
                      + [("table", room.table), ("shelf", room.shelf)])
            for k, (name, body) in enumerate(bodies):
                lo, hi = (np.asarray(v, dtype=np.float64) for v in client.getAABB(body))
                T = np.eye(4)
                T[:3, 3] = 0.5 * (lo + hi)
                markers.markers.append(_box_marker(stamp, frame, "room", k, T, hi - lo, name,
                                                   (0.55, 0.5, 0.45)))
        self._gt_objects_pub.publish(objects)
        self._gt_containers_pub.publish(containers)
        self._gt_markers_pub.publish(markers)

    # -------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop the simulation thread and free the simulator (called by run_node)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)
        self.env.close()


def _uint_id(value: Any, fallback: int) -> int:
    try:
        v = int(value)
        return v if 0 <= v < 2 ** 32 else fallback
    except (TypeError, ValueError):
        return fallback


_COLOURS = {"red": (0.85, 0.12, 0.1), "blue": (0.1, 0.25, 0.9), "green": (0.1, 0.7, 0.2),
            "yellow": (0.95, 0.8, 0.1)}
_CATEGORY_COLOURS = {"toy": (1.0, 0.45, 0.7), "kitchenware": (0.3, 0.6, 1.0),
                     "stationery": (0.4, 0.85, 0.4), "bottle": (0.2, 0.8, 0.9),
                     "box": (1.0, 0.75, 0.2), "soft": (0.95, 0.4, 0.4)}


def _box_marker(stamp: Time, frame: str, ns: str, mid: int, T: np.ndarray, ext: np.ndarray,
                text: str, rgb: tuple[float, float, float] | None = None) -> Marker:
    m = Marker()
    m.header.stamp, m.header.frame_id = stamp, frame
    m.ns, m.id, m.type, m.action = ns, int(mid), Marker.CUBE, Marker.ADD
    m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in T[:3, 3])
    (m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z,
     m.pose.orientation.w) = matrix_to_quaternion(T[:3, :3])
    m.scale.x, m.scale.y, m.scale.z = (max(float(v), 1e-3) for v in ext)
    m.color.r, m.color.g, m.color.b = rgb or (0.6, 0.6, 0.6)
    m.color.a = 0.9 if ns == "objects" else 0.6
    m.text = text
    return m


def main(args: list[str] | None = None) -> int:
    return run_node(SimBridge, args)


if __name__ == "__main__":
    raise SystemExit(main())
