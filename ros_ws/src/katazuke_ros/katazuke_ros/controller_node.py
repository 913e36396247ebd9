"""controller: LQR / online-GPC tracking of a base pose or path and of arm joint targets.

A thin adapter over :mod:`katazuke.control.tracking` (all control and safety logic is in
the ROS-free library and tested there).

All names are relative, so a namespace (``__ns:=/r1``) moves every topic with it.

Subscribes:
    odom (nav_msgs/Odometry): base pose in the odom frame (best-effort or reliable).
    goal_pose (geometry_msgs/PoseStamped): a pose goal (replaces any path).
    path (nav_msgs/Path): waypoints followed in order, the last one held as the goal
        (:class:`~katazuke.control.tracking.PathFollower`). A path whose poses carry
        strictly increasing stamps (the navigator's, ``katazuke.planning.navigation.TimedPath``)
        is a trajectory: the reference moves with the stamps and its velocity is fed forward
        (:class:`~katazuke.control.tracking.TrajectoryFollower`), so the base does not lag.
    joint_states (sensor_msgs/JointState): arm joint positions (by name).
    arm/target (trajectory_msgs/JointTrajectory): joint targets (last point's positions).
    emergency_stop (std_msgs/Bool, latched): true stops everything until false arrives.

    goal_pose, path, arm/target and emergency_stop are command inputs: KEEP_LAST 1, taken
    once per control tick (:class:`katazuke_ros.command_inputs.CommandInputs`), so a
    command is applied at the next tick and a flood of them is dropped inside DDS instead
    of costing a callback each. Of several arriving within one tick only the newest is
    applied (an older one superseded within a tick is intentionally dropped, and counted);
    a bad one is rejected with a rate-limited log and counted. Both counts appear in
    ``diagnostics`` (``<topic> superseded`` / ``<topic> rejected``).

Publishes:
    cmd_vel (geometry_msgs/Twist): linear.x, linear.y, angular.z in the base frame.
    arm/command (trajectory_msgs/JointTrajectory): one point, next position setpoint and
        joint velocities, time_from_start = one control period.
    controller/diagnostics (katazuke_interfaces/ControllerDiagnostics): one message per
        active subsystem per tick (header.frame_id 'base' or 'arm').
    diagnostics (diagnostic_msgs/DiagnosticArray): the same figures in the standard form
        (one DiagnosticStatus "controller: base" / "controller: arm"; WARN while e-stopped,
        stopped or fallen back to LQR), at most once per ``DIAGNOSTICS_PERIOD_S`` per
        subsystem and at once when the level changes; with the command-input counts.
        Relative: in the root namespace it is the conventional ``/diagnostics`` that
        diagnostic_aggregator and rqt_robot_monitor read.

Parameters: :class:`ControllerNodeConfig`, the tracker's settings nested as
``controller.*`` (e.g. ``controller.mode``), the node's watchdogs and waypoint tolerance at
the top level.

Safety: saturation and the GPC->LQR guard (library); a watchdog that publishes zero
cmd_vel while odometry is older than ``odom_timeout_s`` (node clock, so use_sim_time is
honoured) and holds the arm when joint states are stale; e-stop; non-finite inputs are
rejected with a log and the node keeps running. One thread runs every callback (a
SingleThreadedExecutor), so callbacks never overlap.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.time import Time

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped, Twist
from diagnostic_msgs.msg import DiagnosticArray, KeyValue
from katazuke_interfaces.msg import ControllerDiagnostics
from nav_msgs.msg import Odometry, Path
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from katazuke.config import dataclass, field, positive
from katazuke.control.tracking import (ControllerConfig, ErrorTracker, PathFollower, TrackerOutput,
                                       TrajectoryFollower,
                                       arm_tracker, base_tracker, yaw_from_quaternion)
from katazuke.geometry import world_to_base_twist
from katazuke.planning.navigation import TimedPath
from katazuke.ros.conversions import controller_diagnostic_status, diagnostic_array_msg
from katazuke_ros import qos
from katazuke_ros.command_inputs import CommandInputs, Throttle
from katazuke_ros.node_utils import LogOnce, declare_config, run_node

__all__ = ["ControllerNode", "ControllerNodeConfig", "DIAGNOSTICS_PERIOD_S", "main"]

#: s; the standard ``diagnostics`` topic is throttled to this period per subsystem (the
#: diagnostic_updater default), the per-tick figures stay on ``controller/diagnostics``.
DIAGNOSTICS_PERIOD_S = 1.0


@dataclass(frozen=True)
class ControllerNodeConfig:
    """Parameters of the ``controller`` node: the library tracker nested, plus the node's own."""

    controller: ControllerConfig = field(default_factory=ControllerConfig, metadata={
        "help": "tracker settings (mode, rate, LQR weights, saturation, GPC, guards)"})
    odom_timeout_s: float = positive(
        0.5, "watchdog: odometry older than this (s, node clock) stops the base")
    joint_state_timeout_s: float = positive(
        0.5, "watchdog: joint states older than this (s) stop the arm")
    path_waypoint_tolerance: float = positive(
        0.15, "a path waypoint counts as reached within this distance (m)")
    path_hold_error: float = positive(
        0.3, "stamped paths: the reference clock pauses while the base lags more than this (m)")
    path_stale_s: float = positive(
        0.5, "stamped paths: a first stamp older than this (s) is moved to now (with a warning)")
    log_period_s: float = positive(
        2.0, "a rejected-command or command-flood warning of one kind is logged at most "
             "once per this (wall s)")


def _pose_xyyaw(pose: Any) -> np.ndarray:
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, yaw_from_quaternion(q.x, q.y, q.z, q.w)])


def _pose_finite(pose: Any) -> bool:
    p, q = pose.position, pose.orientation
    vals = (p.x, p.y, p.z, q.x, q.y, q.z, q.w)
    return all(math.isfinite(v) for v in vals) and (q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w) > 1e-12


class ControllerNode(Node):
    """Base and arm tracking controller (see module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("controller", **kwargs)
        self.node_config: ControllerNodeConfig = declare_config(self, ControllerNodeConfig)
        self.config: ControllerConfig = self.node_config.controller
        self._log = LogOnce(self)
        self._cmd_pub = self.create_publisher(Twist, "cmd_vel", qos.COMMAND)
        self._arm_pub = self.create_publisher(JointTrajectory, "arm/command", qos.COMMAND)
        self._diag_pub = self.create_publisher(ControllerDiagnostics, "controller/diagnostics",
                                               qos.EVENTS)
        self._std_diag_pub = self.create_publisher(DiagnosticArray, "diagnostics", qos.EVENTS)
        self._std_diag_last: dict[str, tuple[int, bytes]] = {}  # subsystem -> (ns, level) sent
        # Best effort subscriptions match both reliable and best-effort publishers.
        self.create_subscription(Odometry, "odom", self._on_odom, qos.SENSOR)
        self.create_subscription(JointState, "joint_states", self._on_joints, qos.SENSOR)
        # Command inputs: taken once per tick by _tick (see the module docstring).
        period = self.node_config.log_period_s
        self.inputs = CommandInputs(self, self.config.rate_hz, period)
        self.inputs.add(PoseStamped, "goal_pose", self._on_goal, qos.COMMAND)
        self.inputs.add(Path, "path", self._on_path, qos.COMMAND)
        self.inputs.add(JointTrajectory, "arm/target", self._on_arm_target, qos.COMMAND)
        self.inputs.add(Bool, "emergency_stop", self._on_estop, qos.LATCHED)
        self.rejected: dict[str, int] = {}          # rejected commands by topic
        self._reject_log = Throttle(self.get_logger().error, period)
        self._base: ErrorTracker = base_tracker(self.config)
        self._arm: ErrorTracker | None = None
        self._pose: np.ndarray | None = None       # (x, y, yaw) in the odom frame
        self._odom_rx: Time | None = None
        self._odom_frame = ""
        self._path: PathFollower | None = None      # (x, y, yaw) references, odom frame
        self._traj: TrajectoryFollower | None = None  # a stamped path: timed reference + feedforward
        self._base_active = False
        self._base_stopped = True                  # last published cmd_vel was zero
        self._joint_pos: dict[str, float] = {}
        self._joints_rx: Time | None = None
        self._arm_names: list[str] = []
        self._arm_ref: np.ndarray | None = None
        self._arm_active = False
        self._estop = False
        self._odom_stale = False
        self._js_stale = False
        self._dt = 1.0 / self.config.rate_hz
        self.create_timer(self._dt, self._tick)
        self.get_logger().info(
            f"controller: mode={self.config.mode} rate={self.config.rate_hz:g} Hz "
            f"odom_timeout={self.node_config.odom_timeout_s:g} s")

    # ------------------------------------------------------------------ inputs
    def _reject(self, topic: str, text: str) -> None:
        """Count and log (rate-limited per topic) one rejected command."""
        self.rejected[topic] = self.rejected.get(topic, 0) + 1
        self._reject_log.warn(topic, f"rejecting {topic}: {text}")

    def _on_odom(self, msg: Odometry) -> None:
        pose = msg.pose.pose
        if not _pose_finite(pose):
            self._log.warn("odom_nan", "rejecting odom with non-finite pose (NaN/inf or zero "
                           "quaternion); holding the last good pose, watchdog still running")
            return
        self._log.clear("odom_nan")
        self._pose = _pose_xyyaw(pose)
        self._odom_frame = msg.header.frame_id
        self._odom_rx = self.get_clock().now()

    def _on_joints(self, msg: JointState) -> None:
        if len(msg.name) != len(msg.position):
            self._log.warn("js_len", "rejecting joint_states: name and position lengths differ")
            return
        if not all(math.isfinite(p) for p in msg.position):
            self._log.warn("js_nan", "rejecting joint_states with non-finite positions")
            return
        self._log.clear("js_nan")
        for name, pos in zip(msg.name, msg.position):
            self._joint_pos[name] = float(pos)
        self._joints_rx = self.get_clock().now()

    def _set_waypoints(self, poses: list[Any], frame: str, what: str,
                       stamps: list[float] | None = None) -> None:
        self._traj = None
        if not poses:
            self._path = None
            self._base_active = False
            self.get_logger().info(f"empty {what}: base goal cleared")
            self._stop_base()
            return
        if not all(_pose_finite(p) for p in poses):
            self._reject(what, "non-finite pose(s) (NaN/inf or zero quaternion)")
            return
        if frame and self._odom_frame and frame != self._odom_frame:
            self._log.warn(f"frame_{frame}", f"{what} frame '{frame}' differs from odometry frame "
                           f"'{self._odom_frame}'; treating it as the odometry frame")
        xyyaw = [_pose_xyyaw(p) for p in poses]
        if stamps is not None and len(poses) >= 2 and all(b > a for a, b in zip(stamps, stamps[1:])):
            # a stamped path is a trajectory: timed reference + velocity feedforward; the last
            # pose is held as the goal afterwards
            timed = TimedPath.from_stamped(xyyaw, stamps)
            now = self._now_s()
            t0 = stamps[0]
            if t0 < now - self.node_config.path_stale_s:
                self._log.warn("path_stale", f"{what}: its first stamp is {now - t0:.2f} s in the "
                               "past; starting it now")
                t0 = now
            self._traj = TrajectoryFollower(timed.sample, timed.duration, t0, xyyaw[-1],
                                            self.node_config.path_hold_error)
            xyyaw = xyyaw[-1:]
        self._path = PathFollower(xyyaw, self.node_config.path_waypoint_tolerance)
        self._base_active = True
        e = self._base_error()
        self._base.reference_changed(e if e is not None else np.zeros(3))
        timing = (f", timed {self._traj.duration:.1f} s with feedforward" if self._traj is not None
                  else "")
        self.get_logger().info(f"new {what}: {len(poses)} pose(s){timing}, final "
                               f"{np.array2string(self._path.goal, precision=3)}")

    def _on_goal(self, msg: PoseStamped) -> None:
        self._set_waypoints([msg.pose], msg.header.frame_id, "goal_pose")

    def _on_path(self, msg: Path) -> None:
        stamps = [p.header.stamp.sec + 1e-9 * p.header.stamp.nanosec for p in msg.poses]
        timed = any(stamps)  # all-zero stamps: plain waypoints
        self._set_waypoints([p.pose for p in msg.poses], msg.header.frame_id, "path",
                            stamps if timed else None)

    def _on_arm_target(self, msg: JointTrajectory) -> None:
        if not msg.points or not msg.joint_names:
            self._reject("arm/target", "it needs joint_names and a point")
            return
        pos = list(msg.points[-1].positions)
        if len(pos) != len(msg.joint_names) or not all(math.isfinite(p) for p in pos):
            self._reject("arm/target", f"{len(pos)} positions for {len(msg.joint_names)} joint "
                                       "names; the last point's positions must be finite, "
                                       "one per joint")
            return
        names = list(msg.joint_names)
        if names != self._arm_names or self._arm is None:
            self._arm = arm_tracker(self.config, len(names))
            self._arm_names = names
        self._arm_ref = np.asarray(pos, dtype=np.float64)
        self._arm_active = True
        e = self._arm_error()
        self._arm.reference_changed(e if e is not None else np.zeros(len(names)))
        self.get_logger().info(f"new arm target for {len(names)} joint(s)")

    def _on_estop(self, msg: Bool) -> None:
        engaged = bool(msg.data)
        if engaged == self._estop:
            return
        self._estop = engaged
        if engaged:
            self.get_logger().warning("EMERGENCY STOP engaged: zero commands until released")
            self._stop_base(force=True)
            self._hold_arm()
        else:
            self.get_logger().warning("emergency stop released: resuming control")
        self._base.interrupt()
        if self._arm is not None:
            self._arm.interrupt()

    # ------------------------------------------------------------------ helpers
    def _age(self, stamp: Time | None) -> float:
        if stamp is None:
            return math.inf
        return (self.get_clock().now() - stamp).nanoseconds * 1e-9

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _base_error(self) -> np.ndarray | None:
        if self._pose is None or self._path is None:
            return None
        return self._path.error(self._pose)

    def _arm_error(self) -> np.ndarray | None:
        if self._arm_ref is None:
            return None
        try:
            q = np.array([self._joint_pos[n] for n in self._arm_names])
        except KeyError as exc:
            self._log.warn(f"arm_missing_{exc}", f"joint {exc} of arm/target is not in "
                           "joint_states; arm control waits for it")
            return None
        return q - self._arm_ref

    def _stop_base(self, force: bool = False) -> None:
        if force or not self._base_stopped:
            self._cmd_pub.publish(Twist())
            self._base_stopped = True

    def _hold_arm(self) -> None:
        if not self._arm_names or not all(n in self._joint_pos for n in self._arm_names):
            return
        q = [self._joint_pos[n] for n in self._arm_names]
        self._publish_arm(np.asarray(q), np.zeros(len(q)))

    def _publish_arm(self, q_next: np.ndarray, qd: np.ndarray) -> None:
        msg = JointTrajectory()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.joint_names = list(self._arm_names)
        pt = JointTrajectoryPoint()
        pt.positions = [float(v) for v in q_next]
        pt.velocities = [float(v) for v in qd]
        ns = int(round(self._dt * 1e9))
        pt.time_from_start = Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
        msg.points = [pt]
        self._arm_pub.publish(msg)

    def _diagnose(self, frame: str, out: TrackerOutput | None, tracker: ErrorTracker,
                  tracking_error: float, extra_reason: str = "") -> None:
        d = ControllerDiagnostics()
        d.header.stamp = self.get_clock().now().to_msg()
        d.header.frame_id = frame
        d.requested_mode = self.config.mode
        d.estopped = self._estop
        d.cumulative_cost = float(tracker.cumulative_cost)
        d.tracking_error = float(tracking_error)
        if out is not None:
            d.mode = out.mode
            d.stage_cost = float(out.stage_cost)
            d.disturbance_norm = float(out.disturbance_norm)
            d.state_norm = float(out.state_norm)
            d.saturated = bool(out.saturated)
            d.fallback_active = bool(out.fallback_active)
            d.fallback_reason = out.fallback_reason or extra_reason
        else:
            d.mode = ControllerDiagnostics.MODE_STOPPED
            d.fallback_reason = extra_reason
        self._diag_pub.publish(d)
        self._publish_standard_diagnostics(d)

    def _publish_standard_diagnostics(self, d: ControllerDiagnostics) -> None:
        """``diagnostics``: throttled to DIAGNOSTICS_PERIOD_S, immediate on a level change."""
        status = controller_diagnostic_status(d, self.get_name())
        for topic, n in self.inputs.superseded.items():
            status.values.append(KeyValue(key=f"{topic} superseded", value=str(n)))
            status.values.append(KeyValue(key=f"{topic} rejected",
                                          value=str(self.rejected.get(topic, 0))))
        now_ns = self.get_clock().now().nanoseconds
        last = self._std_diag_last.get(d.header.frame_id)
        if (last is not None and status.level == last[1]
                and now_ns - last[0] < DIAGNOSTICS_PERIOD_S * 1e9):
            return
        self._std_diag_last[d.header.frame_id] = (now_ns, status.level)
        self._std_diag_pub.publish(diagnostic_array_msg([status], d.header.stamp))

    # ------------------------------------------------------------------ loop
    def _tick(self) -> None:
        self.inputs.poll()  # the newest command of each input topic, at most one each
        if self._estop:
            self._stop_base(force=True)
            if self._base_active:
                self._diagnose("base", None, self._base, 0.0, "emergency stop")
            return
        self._tick_base()
        self._tick_arm()

    def _tick_base(self) -> None:
        if not self._base_active:
            return
        age = self._age(self._odom_rx)
        if age > self.node_config.odom_timeout_s:
            if not self._odom_stale:
                self._odom_stale = True
                self.get_logger().warning(
                    f"watchdog: odometry is {age:.2f} s old "
                    f"(> {self.node_config.odom_timeout_s:g} s); "
                    "stopping the base")
            self._stop_base(force=True)
            self._base.interrupt()
            self._diagnose("base", None, self._base, 0.0, "odometry stale")
            return
        if self._odom_stale:
            self._odom_stale = False
            self.get_logger().info("odometry back: resuming base control")
        assert self._pose is not None and self._path is not None
        u_ff = None
        if self._traj is not None and not self._traj.finished(self._now_s()):
            e, u_ff = self._traj.step(self._now_s(), self._pose)
        else:
            self._traj = None
            e = self._path.advance(self._pose)   # the last waypoint is held
        out = self._base.step(e)
        if out.fallback_active:
            self._log.warn(f"fallback_base_{out.fallback_reason}",
                           f"base: GPC -> LQR fallback: {out.fallback_reason}")
        u = out.u if u_ff is None else self._base.saturate(out.u + u_ff)[0]
        yaw = float(self._pose[2]) if self._pose is not None else 0.0
        cmd = Twist()
        cmd.linear.x, cmd.linear.y, cmd.angular.z = world_to_base_twist(u, yaw)
        self._cmd_pub.publish(cmd)
        self._base_stopped = False
        self._diagnose("base", out, self._base, float(np.hypot(e[0], e[1])))

    def _tick_arm(self) -> None:
        if not self._arm_active or self._arm is None:
            return
        age = self._age(self._joints_rx)
        if age > self.node_config.joint_state_timeout_s:
            if not self._js_stale:
                self._js_stale = True
                self._hold_arm()
                self.get_logger().warning(f"watchdog: joint states are {age:.2f} s old; "
                                          "holding the arm")
            self._arm.interrupt()
            return
        if self._js_stale:
            self._js_stale = False
            self.get_logger().info("joint states back: resuming arm control")
        e = self._arm_error()
        if e is None:
            return
        out = self._arm.step(e)
        if out.fallback_active:
            self._log.warn(f"fallback_arm_{out.fallback_reason}",
                           f"arm: GPC -> LQR fallback: {out.fallback_reason}")
        q = np.array([self._joint_pos[n] for n in self._arm_names])
        self._publish_arm(q + self._dt * out.u, out.u)
        self._diagnose("arm", out, self._arm, float(np.linalg.norm(e)))


def main(args: list[str] | None = None) -> int:
    return run_node(ControllerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
