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
    robot_description              std_msgs/String: the robot's URDF, once (LATCHED), as
                                   robot_state_publisher publishes it on hardware
    sim_bridge/rejected            std_msgs/String "kind: reason"     (EVENTS)
    sim/ground_truth/...           base_pose, objects, containers, markers (never for algorithms)

Subscribed (each taken once per control step, KEEP_LAST 1: a command is applied at the
next step; of several arriving within one step only the newest is applied, the older ones
are dropped inside DDS, counted (:attr:`SimBridge.superseded`) and warned about when a
topic carries more than one per step, so a flood cannot slow the physics loop):
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

The node is the loop and the publishers; command validation lives in
:mod:`katazuke_ros.sim_commands`, ground-truth publishing in
:mod:`katazuke_ros.sim_ground_truth`, message building in :mod:`katazuke.ros.conversions`.
Parameters: the bridge's own fields plus the simulator's :class:`katazuke.sim.EnvConfig`
nested as ``sim.*`` (e.g. ``-p sim.profile:=train -p sim.n_objects:="[3, 4]"``).
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import field
from typing import Any, Callable

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped, Twist, Vector3
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64, String
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory

from katazuke.config import dataclass as kdataclass
from katazuke.config import non_negative, positive
from katazuke.errors import ConfigError
from katazuke.geometry import matrix_to_quat, se2_to_matrix
from katazuke.ros.conversions import (camera_info_msg, depth_to_msg, header, image_from_numpy,
                                      joint_state_msg, planar_odometry_msg, transform_stamped)
from katazuke.sim import EnvConfig
from katazuke_interfaces.msg import GripperCommand
from katazuke_ros import qos
from katazuke_ros.command_inputs import CommandInputs
from katazuke_ros.node_utils import declare_config, run_node, sec_to_stamp
from katazuke_ros.sim_commands import SimCommands, Throttle
from katazuke_ros.sim_ground_truth import GroundTruthPublisher

__all__ = ["SimBridgeConfig", "SimBridge", "main", "R_LINK_OPTICAL"]

# head_camera_link (x forward, y left, z up) -> head_camera_optical_frame (z forward,
# x right, y down): columns are the optical axes written in the link frame.
R_LINK_OPTICAL = np.array([[0.0, 0.0, 1.0],
                           [-1.0, 0.0, 0.0],
                           [0.0, -1.0, 0.0]])


@kdataclass(frozen=True)
class SimBridgeConfig:
    """Parameters of the ``sim_bridge`` node (one ROS parameter per field; ``sim.*`` for the
    simulator's :class:`~katazuke.sim.EnvConfig`)."""

    seed: int = field(default=0, metadata={"help": "episode seed passed to TidyEnv.reset"})
    real_time_factor: float = non_negative(
        1.0, "sim seconds per wall second; 0 = as fast as possible")
    camera_hz: float = positive(
        10.0, "head camera rate, Hz of sim time (rounded to a whole number of control steps)")
    ceiling_camera_hz: float = positive(2.0, "ceiling camera rate, Hz of sim time")
    publish_ground_truth: bool = field(default=True, metadata={
        "help": "publish sim/ground_truth/* (for evaluation only, never for algorithms)"})
    ground_truth_hz: float = positive(
        1.0, "rate of the ground-truth object and container maps, Hz of sim time")
    publish_map_to_odom: bool = field(default=True, metadata={
        "help": "publish a static identity map->odom (odometry starts at the true start pose); "
                "set false when a localization node owns map->odom"})
    cmd_timeout_s: float = positive(
        0.5, "stop the base when no cmd_vel arrived for this long (sim time, s)")
    max_linear_speed: float = positive(
        0.6, "|v| limit of the base, m/s; faster commands are clipped with a warning")
    max_angular_speed: float = positive(
        1.5, "|wz| limit of the base, rad/s; faster commands are clipped with a warning")
    log_period_s: float = field(default=2.0, metadata={
        "help": "a rejected-command warning of one kind is logged at most once per this (wall s)"})
    map_frame: str = field(default="map", metadata={"help": "world frame id"})
    odom_frame: str = field(default="odom", metadata={"help": "odometry frame id"})
    base_frame: str = field(default="base_link", metadata={
        "help": "robot base frame id (on the floor, x forward, z up)"})
    sim: EnvConfig = field(default_factory=lambda: EnvConfig(
        profile="none", n_objects=(10, 20), render_observation=False), metadata={
            "help": "the simulator (katazuke.sim.EnvConfig): room profile, rates, image size, "
                    "odometry noise, ...; by default the empty 'none' room with 10-20 "
                    "objects; render_observation is always off (the bridge renders the cameras "
                    "itself at camera_hz)"})

    def __post_init__(self) -> None:
        if not math.isfinite(self.sim.control_hz):   # EnvConfig checks only > 0
            raise ConfigError(f"sim.control_hz must be finite, got {self.sim.control_hz}")

    def every(self, hz: float) -> int:
        """Control steps between two publications at ``hz`` (at least 1)."""
        return max(1, int(round(self.sim.control_hz / hz)))


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
        hdr = header(stamp, self.frame_id)
        img = image_from_numpy(rgb[..., :3].astype(np.uint8, copy=False), "rgb8", hdr)
        # REP 118: no return is NaN (the simulator writes 0 or inf there).
        dimg = depth_to_msg(frame.depth, hdr)
        info = camera_info_msg(frame.K, w, h, hdr)
        self.image.publish(img)
        self.depth.publish(dimg)
        self.info.publish(info)


def _default_env_factory(cfg: SimBridgeConfig) -> Any:
    """Build the real simulator from ``cfg.sim``; the bridge renders the cameras itself at
    ``camera_hz``, so ``step()`` never renders (``render_observation`` off)."""
    from katazuke.sim import TidyEnv

    return TidyEnv(dataclasses.replace(cfg.sim, render_observation=False))


class _LinkTree:
    """The robot's URDF link tree below ``base_link``, from the simulator's kinematics.

    Fixed joints go to ``/tf_static`` once; movable ones (arm, fingers, head) to ``/tf``
    with each joint state. The URDF's ``head_tilt_link -> head_camera_optical_frame`` is
    split into ``head_tilt_link -> head_camera_link`` (including the episode's camera
    mount perturbation) and the REP 103 ``head_camera_link -> head_camera_optical_frame``.

    Args:
        env: the simulator: ``link_tree()``, ``link_poses(names)``, ``head_camera_pose()``.
        base: frame id published for the URDF's ``base_link``.
    """

    CAMERA = "head_camera_optical_frame"

    def __init__(self, env: Any, base: str) -> None:
        self._env, self._base_name = env, base
        edges = env.link_tree()
        children: dict[str, list[tuple[str, bool]]] = {}
        parent_of: dict[str, str] = {}
        for p, c, fixed in edges:
            children.setdefault(p, []).append((c, fixed))
            parent_of[c] = p
        below, todo = [], ["base_link"]
        while todo:  # every joint whose child hangs below base_link, camera split off
            p = todo.pop(0)
            for c, fixed in children.get(p, []):
                todo.append(c)
                if c != self.CAMERA:
                    below.append((p, c, fixed))
        self.edges = below
        self._T_parent_camlink: np.ndarray | None = None
        self._cam_parent = parent_of.get(self.CAMERA)
        if self._cam_parent is not None:
            T_world_parent = env.link_poses([self._cam_parent])[self._cam_parent]
            T_world_opt = np.asarray(env.head_camera_pose(), dtype=np.float64)
            T_opt_link = np.eye(4)
            T_opt_link[:3, :3] = R_LINK_OPTICAL.T
            self._T_parent_camlink = np.linalg.inv(T_world_parent) @ T_world_opt @ T_opt_link

    def _name(self, link: str) -> str:
        return self._base_name if link == "base_link" else link

    def transforms(self, stamp: Time, fixed: bool) -> list[TransformStamped]:
        """Parent -> child transforms of the fixed (or the movable) joints."""
        edges = [(p, c) for p, c, f in self.edges if f == fixed]
        out = []
        if edges:
            world = self._env.link_poses(sorted({n for e in edges for n in e}))
            T_p = np.stack([world[p] for p, _ in edges])
            T_c = np.stack([world[c] for _, c in edges])
            # T_parent_child = inv(T_world_parent) @ T_world_child, batched (runs every step)
            R_inv = np.swapaxes(T_p[:, :3, :3], 1, 2)
            pos = np.einsum("nij,nj->ni", R_inv, T_c[:, :3, 3] - T_p[:, :3, 3])
            q = matrix_to_quat(R_inv @ T_c[:, :3, :3])
            for (p, c), xyz, qc in zip(edges, pos.tolist(), q.tolist()):
                t = TransformStamped()
                t.header.stamp = stamp
                t.header.frame_id, t.child_frame_id = self._name(p), self._name(c)
                tr, r = t.transform.translation, t.transform.rotation
                tr.x, tr.y, tr.z = xyz
                r.x, r.y, r.z, r.w = qc
                out.append(t)
        if fixed and self._T_parent_camlink is not None:
            out.append(transform_stamped(self._T_parent_camlink, self._name(self._cam_parent),
                                         "head_camera_link", stamp))
        return out


class SimBridge(Node):
    """The simulator as a ROS 2 robot (see module docstring).

    Args:
        env_factory: builds the environment from the config; default:
            :class:`katazuke.sim.TidyEnv` with ``config.sim``. Anything with TidyEnv's API
            works (``robot`` is optional: without it the arm link tree is not published and
            the head camera pose comes from the frames).
        node_name: ROS node name.
        **node_kwargs: forwarded to :class:`rclpy.node.Node` (e.g. ``context``).
    """

    def __init__(self, env_factory: Callable[[SimBridgeConfig], Any] | None = None,
                 node_name: str = "sim_bridge", **node_kwargs: Any) -> None:
        super().__init__(node_name, **node_kwargs)
        self.cfg = cfg = declare_config(self, SimBridgeConfig)
        self._stop = threading.Event()
        self._rejected_pub = self.create_publisher(String, "sim_bridge/rejected", qos.EVENTS)
        self.env = (env_factory or _default_env_factory)(cfg)
        try:
            self.env.reset(seed=cfg.seed)
            self.commands = SimCommands(
                self.env, cfg.cmd_timeout_s, cfg.max_linear_speed, cfg.max_angular_speed,
                Throttle(self.get_logger().warning, cfg.log_period_s),
                lambda text: self._rejected_pub.publish(String(data=text)),
                self.get_logger().info)
            self._tree = (_LinkTree(self.env, cfg.base_frame)
                          if getattr(self.env, "robot", None) is not None else None)
        except Exception:
            self.env.close()
            raise
        self._steps = 0
        self.step_wall_s: list[float] = []  # wall time per control step (bench / diagnostics)
        # Planar robot: z, roll, pitch are exact (tiny variance); x, y, yaw grow with drift.
        self._odom_pose_cov = np.diag([max(cfg.sim.odom_noise_lin, 1e-4) ** 2] * 2 + [1e-9] * 3
                                      + [max(cfg.sim.odom_noise_ang, 1e-4) ** 2])
        self._odom_twist_cov = np.diag([1e-3, 1e-3, 1e-9, 1e-9, 1e-9, 1e-3])

        self._clock_pub = self.create_publisher(Clock, "/clock", qos.CLOCK)
        self._odom_pub = self.create_publisher(Odometry, "odom", qos.STATE)
        self._joint_pub = self.create_publisher(JointState, "joint_states", qos.STATE)
        self._tf_pub = self.create_publisher(TFMessage, "/tf", qos.STATE)
        self._tf_static_pub = self.create_publisher(TFMessage, "/tf_static", qos.LATCHED)
        self._head_cam = _Camera(self, "head_camera", "head_camera_optical_frame")
        self._ceiling: dict[str, _Camera] = {}
        if cfg.sim.ceiling_cameras:
            for name in [n for n in self.env.camera_names() if n.startswith("ceiling_")]:
                i = name.split("_", 1)[1]
                self._ceiling[name] = _Camera(self, f"ceiling_camera_{i}",
                                              f"ceiling_camera_{i}_optical_frame")
        self._gt = (GroundTruthPublisher(self, self.env, cfg.map_frame)
                    if cfg.publish_ground_truth else None)

        # Commands are taken by the simulation thread, one per topic per step (see
        # katazuke_ros.command_inputs): a flood is dropped in DDS, the loop keeps its rate.
        cmd = self.commands
        self.inputs = inputs = CommandInputs(self, cfg.sim.control_hz, cfg.log_period_s)
        inputs.add(Twist, "cmd_vel", cmd.on_cmd_vel, qos.COMMAND)
        inputs.add(JointTrajectory, "arm/command", cmd.on_arm, qos.COMMAND)
        inputs.add(GripperCommand, "gripper/command", cmd.on_gripper, qos.COMMAND)
        inputs.add(JointTrajectory, "head/command", cmd.on_head, qos.COMMAND)
        inputs.add(Vector3, "sim/disturbance/base_force", cmd.on_base_force, qos.COMMAND)
        inputs.add(Float64, "sim/friction", cmd.on_friction, qos.COMMAND)

        self._description_pub = self.create_publisher(String, "robot_description", qos.LATCHED)
        with open(self.env.robot_urdf_path, encoding="utf-8") as fh:
            self._description_pub.publish(String(data=fh.read()))
        self._publish_static_tf()
        self._publish(render_head=True)
        self._thread = threading.Thread(target=self._loop, name="sim_bridge_loop", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"simulating profile={cfg.sim.profile} seed={cfg.seed} at "
            f"{cfg.sim.control_hz:g} Hz, real_time_factor={cfg.real_time_factor:g}, "
            f"camera every {cfg.every(cfg.camera_hz)} steps")

    @property
    def rejected(self) -> dict[str, int]:
        """Rejected commands so far, by kind (``"arm/command"``, ``"cmd_vel"``, ...)."""
        return self.commands.rejected

    @property
    def steps(self) -> int:
        """Control steps taken since the start."""
        return self._steps

    @property
    def superseded(self) -> dict[str, int]:
        """Commands superseded before a step took them (dropped in DDS), by topic."""
        return self.inputs.superseded

    # ------------------------------------------------------------------- loop
    def step_once(self) -> None:
        """Take the newest command of each topic, step the simulator once with the newest
        valid commands and publish (one control tick)."""
        t0 = time.perf_counter()
        self.inputs.poll()
        self.commands.step()
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
            1.0 / (self.cfg.sim.control_hz * self.cfg.real_time_factor))
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

    def _publish_static_tf(self) -> None:
        stamp = sec_to_stamp(self.env.time)
        T = np.eye(4)
        T[:3, :3] = R_LINK_OPTICAL
        tfs = [transform_stamped(T, "head_camera_link", "head_camera_optical_frame", stamp)]
        if self._tree is not None:
            tfs += self._tree.transforms(stamp, fixed=True)
        if self.cfg.publish_map_to_odom:
            tfs.append(transform_stamped(np.eye(4), self.cfg.map_frame, self.cfg.odom_frame, stamp))
        self._tf_static_pub.publish(TFMessage(transforms=tfs))
        self._static_tfs = tfs

    def _publish(self, render_head: bool = False, render_ceiling: bool = False,
                 ground_truth: bool = False) -> None:
        cfg = self.cfg
        t = float(self.env.time)
        stamp = sec_to_stamp(t)
        self._clock_pub.publish(Clock(clock=stamp))

        x, y, yaw, vx, vy, wz = (float(v) for v in self.env.odometry())
        self._odom_pub.publish(planar_odometry_msg(
            x, y, yaw, vx, vy, wz, header(stamp, cfg.odom_frame), cfg.base_frame,
            self._odom_pose_cov, self._odom_twist_cov))
        pos, vel, eff = self.env.joint_state()
        self._joint_pub.publish(joint_state_msg(self.commands.joint_names, pos, vel, eff,
                                                header(stamp, "")))

        tfs = [transform_stamped(se2_to_matrix(x, y, yaw), cfg.odom_frame, cfg.base_frame, stamp)]
        if self._tree is not None:
            tfs += self._tree.transforms(stamp, fixed=False)
        if render_head:
            frame = self.env.render_head()
            if self._tree is None:  # no link tree: the camera pose straight from the base
                # Kinematics only (pan/tilt and the mount), not localization: the true
                # base pose cancels out of T_base_cam.
                T_world_base = se2_to_matrix(*self.env.base_pose())
                T_opt_link = np.eye(4)
                T_opt_link[:3, :3] = R_LINK_OPTICAL.T
                T_base_link = (np.linalg.inv(T_world_base)
                               @ np.asarray(frame.T_world_cam, dtype=np.float64) @ T_opt_link)
                tfs.append(transform_stamped(T_base_link, cfg.base_frame, "head_camera_link", stamp))
            self._tf_pub.publish(TFMessage(transforms=tfs))
            self._head_cam.publish(frame, stamp)
        else:
            self._tf_pub.publish(TFMessage(transforms=tfs))
        if render_ceiling and self._ceiling:
            static = []
            for name, cam in self._ceiling.items():
                frame = self.env.render_camera(name)
                static.append(transform_stamped(frame.T_world_cam, cfg.map_frame, cam.frame_id,
                                                stamp))
                cam.publish(frame, stamp)
            self._tf_pub.publish(TFMessage(transforms=static))

        if self._gt is not None:
            self._gt.publish_pose(stamp)
            if ground_truth or self._steps == 0:
                self._gt.publish_maps(stamp)

    # -------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop the simulation thread and free the simulator (called by run_node)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)
        self.env.close()


def main(args: list[str] | None = None) -> int:
    return run_node(SimBridge, args)


if __name__ == "__main__":
    raise SystemExit(main())
