"""tour: drives the robot along a scripted path through the room, then exits.

Closed loop on wheel odometry (``odom``): a pure-pursuit follower on a polyline of
waypoints given relative to the pose where the tour starts, holonomic (``cmd_vel``
linear.x, linear.y in the base frame) while turning the base to face the direction of
travel. Meanwhile the head sweeps left and right (``head/command``) so the camera sees
the room. When the last waypoint is reached (or ``timeout_s`` of sim time passes) the
base is stopped and the node exits; the launch file ends the whole launch with it
(``on_exit="shutdown"``). Run it with ``use_sim_time:=true`` against the simulator.
"""
from __future__ import annotations

import math

import numpy as np
import rclpy
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.duration import Duration
from rclpy.node import Node
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from katazuke.config import dataclass, field, non_negative, positive
from katazuke.errors import ConfigError
from katazuke_ros import qos
from katazuke_ros.node_utils import declare_config, run_node, stamp_to_sec

__all__ = ["TourConfig", "PurePursuit", "TourNode", "main"]


@dataclass(frozen=True)
class TourConfig:
    """Parameters of the ``tour`` node."""

    waypoints: tuple[float, ...] = field(
        default=(1.2, 0.3, 1.1, -1.1, -0.9, -1.1, -1.5, 0.2, -1.3, 1.3, -0.4, 0.5, 0.0, 0.0),
        metadata={"check": "finite", "help": "flat list x0, y0, x1, y1, ... in metres, in the odom frame (or "
                          "relative to the start pose, see relative_to_start); the path "
                          "starts where the robot is. The default loop fits the simulated "
                          "5 m room (robot starting at its centre), clear of the furniture"})
    relative_to_start: bool = field(default=False, metadata={
        "help": "waypoints are in the frame of the start pose (x forward, y left) instead "
                "of the odom frame"})
    speed: float = positive(0.35, "cruise speed along the path, m/s")
    lookahead_m: float = positive(0.35, "pure-pursuit lookahead, m")
    goal_tolerance_m: float = positive(0.08, "the tour ends within this distance of the last "
                                             "waypoint, m")
    max_angular_speed: float = positive(0.8, "|wz| limit, rad/s")
    heading_gain: float = field(default=1.5, metadata={
        "help": "wz = gain * heading error (rad/s per rad) towards the path direction"})
    face_travel_direction: bool = field(default=True, metadata={
        "help": "turn the base to face the path direction (false: strafe, keep heading)"})
    head_pan_amplitude: float = field(default=0.6, metadata={"help": "head sweep, rad either side"})
    head_pan_period_s: float = positive(8.0, "head sweep period, s")
    head_tilt: float = field(default=0.35, metadata={"help": "head tilt (positive looks down), rad"})
    head_rate_hz: float = positive(5.0, "head command rate, Hz of sim time")
    head_joints: tuple[str, ...] = field(default=("head_pan_joint", "head_tilt_joint"), metadata={
        "help": "names of the head pan and tilt joints"})
    start_delay_s: float = non_negative(
        3.0, "wait this much sim time after the first odometry before moving (lets "
             "recorders and viewers discover the topics)")
    timeout_s: float = positive(120.0, "give up after this much sim time since the first "
                                       "odometry, s")

    def __post_init__(self) -> None:
        if len(self.waypoints) < 2 or len(self.waypoints) % 2:
            raise ConfigError(f"waypoints needs x, y pairs (an even count >= 2), "
                              f"got {len(self.waypoints)} numbers")
        if len(self.head_joints) != 2:
            raise ConfigError(f"head_joints needs [pan, tilt], got {list(self.head_joints)}")


def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


class PurePursuit:
    """Pure-pursuit follower of a polyline for a holonomic base (pure math, no ROS).

    Args:
        path: (N, 2) float64 polyline in the odometry frame, metres (N >= 2).
        cfg: speeds, lookahead and tolerance.
    """

    def __init__(self, path: np.ndarray, cfg: TourConfig) -> None:
        self.path = np.asarray(path, dtype=np.float64)
        self.cfg = cfg
        seg = np.diff(self.path, axis=0)
        self._len = np.linalg.norm(seg, axis=1)
        self._cum = np.concatenate([[0.0], np.cumsum(self._len)])
        self.progress = 0.0  # arc length reached, m (monotonic)

    @property
    def length(self) -> float:
        return float(self._cum[-1])

    def point_at(self, s: float) -> np.ndarray:
        """Point at arc length ``s`` (clamped to the path), (2,)."""
        s = min(max(s, 0.0), self.length)
        i = int(np.searchsorted(self._cum, s, side="right") - 1)
        i = min(i, len(self._len) - 1)
        if self._len[i] == 0:
            return self.path[i].copy()
        f = (s - self._cum[i]) / self._len[i]
        return self.path[i] + f * (self.path[i + 1] - self.path[i])

    def _project(self, p: np.ndarray) -> float:
        """Arc length of the closest path point ahead of the current progress (within 1 m)."""
        best_s, best_d = self.progress, math.inf
        for i in range(len(self._len)):
            if self._cum[i + 1] < self.progress or self._cum[i] > self.progress + 1.0:
                continue
            a, b = self.path[i], self.path[i + 1]
            L2 = self._len[i] ** 2
            f = 0.0 if L2 == 0 else float(np.clip(np.dot(p - a, b - a) / L2, 0.0, 1.0))
            d = float(np.linalg.norm(a + f * (b - a) - p))
            s = self._cum[i] + f * self._len[i]
            if d < best_d and s >= self.progress:
                best_s, best_d = s, d
        return best_s

    def command(self, x: float, y: float, yaw: float) -> tuple[tuple[float, float, float], bool]:
        """Velocity command ((vx, vy, wz) in the base frame, m/s, rad/s) and done flag."""
        p = np.array([x, y])
        goal = self.path[-1]
        self.progress = max(self.progress, self._project(p))
        dist_goal = float(np.linalg.norm(goal - p))
        if self.progress >= self.length - 1e-6 and dist_goal < self.cfg.goal_tolerance_m:
            return (0.0, 0.0, 0.0), True
        target = self.point_at(self.progress + self.cfg.lookahead_m)
        d = target - p
        n = float(np.linalg.norm(d))
        remaining = self.length - self.progress + dist_goal
        speed = min(self.cfg.speed, 0.8 * remaining + 0.03)  # slow down at the end
        v_world = d / n * speed if n > 1e-9 else np.zeros(2)
        c, s = math.cos(yaw), math.sin(yaw)
        vx, vy = c * v_world[0] + s * v_world[1], -s * v_world[0] + c * v_world[1]
        wz = 0.0
        if self.cfg.face_travel_direction and n > 0.05:
            err = _wrap(math.atan2(d[1], d[0]) - yaw)
            wz = float(np.clip(self.cfg.heading_gain * err, -self.cfg.max_angular_speed,
                               self.cfg.max_angular_speed))
        return (float(vx), float(vy), wz), False


class TourNode(Node):
    """Follows the scripted tour on odometry, sweeps the head, then shuts down."""

    def __init__(self, node_name: str = "tour", **node_kwargs) -> None:
        super().__init__(node_name, **node_kwargs)
        self.cfg = declare_config(self, TourConfig)
        self._cmd = self.create_publisher(Twist, "cmd_vel", qos.COMMAND)
        self._head = self.create_publisher(JointTrajectory, "head/command", qos.COMMAND)
        self._status = self.create_publisher(String, "tour/status", qos.LATCHED)
        self.create_subscription(Odometry, "odom", self._on_odom, qos.STATE)
        self._follower: PurePursuit | None = None
        self._t0: float | None = None
        self._t_first: float | None = None
        self._last_head = -math.inf
        self.finished: str | None = None
        self.get_logger().info(f"tour of {len(self.cfg.waypoints) // 2} waypoints; waiting for odom")

    def _start(self, x: float, y: float, yaw: float) -> None:
        world = np.asarray(self.cfg.waypoints, dtype=np.float64).reshape(-1, 2)
        if self.cfg.relative_to_start:
            c, s = math.cos(yaw), math.sin(yaw)
            world = world @ np.array([[c, s], [-s, c]]) + np.array([x, y])
        path = np.vstack([[x, y], world])
        self._follower = PurePursuit(path, self.cfg)
        self.get_logger().info(f"tour started at odom ({x:.2f}, {y:.2f}, {yaw:.2f}); "
                               f"path length {self._follower.length:.2f} m")
        self._status.publish(String(data="running"))

    def _on_odom(self, msg: Odometry) -> None:
        if self.finished is not None:
            return
        t = stamp_to_sec(msg.header.stamp)
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
        if not all(math.isfinite(v) for v in (p.x, p.y, yaw)):
            self.get_logger().warning("non-finite odometry ignored")
            return
        if self._t_first is None:
            self._t_first = t
        if t - self._t_first < self.cfg.start_delay_s:
            return
        if self._follower is None:
            self._t0 = t
            self._start(p.x, p.y, yaw)
        assert self._follower is not None and self._t0 is not None
        (vx, vy, wz), done = self._follower.command(p.x, p.y, yaw)
        if not done and t - self._t0 > self.cfg.timeout_s:
            self._finish(f"timeout after {t - self._t0:.1f} s at {self._follower.progress:.2f} "
                         f"of {self._follower.length:.2f} m")
            return
        if done:
            self._finish(f"done in {t - self._t0:.1f} s sim time, "
                         f"{self._follower.length:.2f} m path")
            return
        cmd = Twist()
        cmd.linear.x, cmd.linear.y, cmd.angular.z = vx, vy, wz
        self._cmd.publish(cmd)
        if t - self._last_head >= 1.0 / self.cfg.head_rate_hz:
            self._last_head = t
            pan = self.cfg.head_pan_amplitude * math.sin(
                2.0 * math.pi * (t - self._t0) / self.cfg.head_pan_period_s)
            traj = JointTrajectory()
            traj.header.stamp = msg.header.stamp
            traj.joint_names = list(self.cfg.head_joints)
            pt = JointTrajectoryPoint()
            pt.positions = [pan, self.cfg.head_tilt]
            pt.time_from_start = Duration(seconds=1.0 / self.cfg.head_rate_hz).to_msg()
            traj.points = [pt]
            self._head.publish(traj)

    def _finish(self, text: str) -> None:
        self.finished = text
        self._cmd.publish(Twist())
        self._status.publish(String(data=f"finished: {text}"))
        self.get_logger().info(f"tour {text}; shutting down")
        # Ends executor.spin() in run_node; the launch file's on_exit=shutdown does the rest.
        rclpy.try_shutdown(context=self.context)


def main(args: list[str] | None = None) -> int:
    return run_node(TourNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
