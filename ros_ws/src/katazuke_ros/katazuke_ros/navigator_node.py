"""navigator: cost map from depth, the ``navigate`` action, stamped paths for the controller.

A thin adapter over :mod:`katazuke.planning.navigation` (cost map, global planner, base-pose
choice and time parameterisation live and are tested in the ROS-free library).

All names are relative except ``/tf`` and ``/tf_static``, so a namespace moves the node.

Subscribes:
    head_camera/depth/image_raw (sensor_msgs/Image, SENSOR): ``32FC1`` m or ``16UC1`` mm.
    head_camera/camera_info (sensor_msgs/CameraInfo, SENSOR): K (and D, undone like the
        object map does).
    /tf (STATE), /tf_static (LATCHED): ``map -> <depth frame>`` for ``T_map_cam`` and
        ``map -> odom`` (a static identity in the simulation).
    odom (nav_msgs/Odometry, SENSOR: matches best-effort and reliable publishers): the base
        pose in ``odom``; with ``map -> odom`` it gives the base pose in ``map``.

Publishes:
    costmap (nav_msgs/OccupancyGrid, LATCHED, frame ``map``) at ``costmap_publish_hz`` when
        the map changed: ``100`` occupied, ``-1`` unknown (also where inflated: so the
        occupancy survives the message exactly), else ``99`` lethal (the base centre would
        touch an obstacle), ``1..98`` inflation cost (``round(98 * cost)``, cost 1 at the
        lethal boundary), ``0`` free. ``info.origin`` is the grid's lower corner, data
        row-major with rows along map y (the library's ``grid[row, col]``). A consumer that
        wants travel costs (the task manager) rebuilds the occupancy (100 = occupied, -1 =
        unknown) into a :class:`~katazuke.planning.navigation.CostMap`
        (:func:`costmap_from_occupancy`) and calls
        :meth:`~katazuke.planning.navigation.GlobalPlanner.cost_field`: no extra service.
    path (nav_msgs/Path, COMMAND, frame ``odom``): the time-parameterised plan,
        ``poses[i].header.stamp = t_send + t[i]`` (node clock), which the controller follows as
        a trajectory with velocity feedforward; an empty Path stops the base.
    diagnostics (diagnostic_msgs/DiagnosticArray): ``navigator: frames`` counters of the
        depth frames used and skipped (``no_camera_info``, ``no_tf``, ``bad_image``, ``stale``)
        (:mod:`katazuke_ros.frame_stats`).

Action server ``navigate`` (katazuke_interfaces/action/Navigate):
    GOTO drives to ``pose``; PREGRASP / PREPLACE / LOOK choose a base pose for ``target`` with
    :func:`~katazuke.planning.navigation.choose_base_pose` (``pregrasp.*``, ``preplace.*``,
    ``look.*`` configs; LOOK stands farther off) and drive there; ``approach = k`` takes the
    k-th candidate after dropping those whose bearing from the target lies within
    ``approach_separation_rad`` of a better one's (a retry from another side); with fewer
    sides than ``k + 1``, ``k`` modulo their number. ``clear_radius_m`` clears the map around ``target`` after every update while the goal
    runs. Monitoring at ``monitor_hz``: feedback (state, goal, distance
    remaining), a re-plan when new lethal cells appear on the remaining path (``blocked``
    when none is found or ``max_replans`` are used up) or when the base lags more than
    ``lag_replan_m`` behind the timed reference; success within the position / yaw
    tolerance (the goal's, or the node's defaults when 0); ``timeout`` after path duration x
    ``timeout_factor`` + ``timeout_margin_s`` (counted from the latest (re-)plan); cancel
    publishes an empty path and ends *canceled* with cause ``cancelled``; every failure after
    a path was sent publishes an empty path too. One goal at a time: a new goal pre-empts the
    running one, which ends *aborted* with cause ``preempted`` (its path is replaced by the
    new goal's, not stopped).

Parameters: :class:`NavigatorNodeConfig` (``launch/params/navigation.yaml``): the library
configs nested as ``costmap.*``, ``planner.*``, ``timing.*``, ``pregrasp.*``, ``preplace.*``,
``look.*``; the node's rates, frames, tolerances and watchdogs at the top level.

Threads (``run_node(threads=4)``): sensor callbacks in the default group, the cost map update
and publication in their own group, the action server in a reentrant group; the cost map is
shared under a lock.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from typing import Any

import numpy as np
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from geometry_msgs.msg import PoseStamped
from katazuke_interfaces.action import Navigate
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from katazuke.config import dataclass, field, non_negative, positive
from katazuke.errors import InputError, KatazukeError
from katazuke.geometry import se2_to_matrix, yaw_from_matrix, yaw_to_quat
from katazuke.planning.navigation import (BasePoseConfig, CostMap, CostMapConfig, GlobalPlanner,
                                          NavigationError, NoBasePoseError, NoPathError,
                                          PlannerConfig,
                                          TimedPath, TimingConfig, choose_base_pose,
                                          time_parameterize, wrap_angle)
from katazuke.ros.conversions import (DEPTH_ENCODINGS, depth_to_metres, pose_xyyaw, sec_to_stamp,
                                      undistorter_from_info)
from katazuke_ros import qos
from katazuke_ros.frame_stats import FrameStats
from katazuke_ros.node_utils import LogOnce, declare_config, run_node, stamp_to_sec
from katazuke_ros.self_filter import DEFAULT_ARM_FRAMES, body_spheres
from katazuke_ros.tf_buffer import TransformBuffer

__all__ = ["NavigatorNode", "NavigatorNodeConfig", "occupancy_values", "costmap_from_occupancy",
           "main"]

_PURPOSES = {Navigate.Goal.PURPOSE_GOTO: "goto", Navigate.Goal.PURPOSE_PREGRASP: "pregrasp",
             Navigate.Goal.PURPOSE_PREPLACE: "preplace", Navigate.Goal.PURPOSE_LOOK: "look"}


@dataclass(frozen=True)
class NavigatorNodeConfig:
    """Parameters of the ``navigator`` node: the library configs nested, the node's own on top."""

    costmap: CostMapConfig = field(default_factory=CostMapConfig, metadata={
        "help": "cost map grid, sensor model and inflation"})
    planner: PlannerConfig = field(default_factory=PlannerConfig, metadata={
        "help": "global planner (search, unknown cells, smoothing)"})
    timing: TimingConfig = field(default_factory=TimingConfig, metadata={
        "help": "speed limits of the timed path"})
    pregrasp: BasePoseConfig = field(default_factory=BasePoseConfig, metadata={
        "help": "base poses for PURPOSE_PREGRASP"})
    preplace: BasePoseConfig = field(default_factory=BasePoseConfig, metadata={
        "help": "base poses for PURPOSE_PREPLACE"})
    look: BasePoseConfig = field(default_factory=lambda: BasePoseConfig(
        reach_min_m=1.0, reach_max_m=1.5, reach_preferred_m=1.2, n_reach=3), metadata={
        "help": "base poses for PURPOSE_LOOK (a larger standoff: the head camera, not the arm)"})
    map_frame: str = field(default="map", metadata={"help": "frame of the cost map and plans"})
    base_frame: str = field(default="base_link", metadata={"help": "the robot's base frame"})
    update_hz: float = positive(3.0, "cost map updates per second (the newest depth frame each)")
    costmap_publish_hz: float = positive(1.0, "costmap topic rate when the map changed, Hz")
    monitor_hz: float = positive(10.0, "goal monitoring (feedback, checks) rate, Hz")
    tf_tolerance_s: float = positive(0.2, "tf lookup tolerance, s")
    stale_depth_s: float = positive(1.0, "a depth frame older than this (s, node clock) is "
                                    "skipped")
    footprint_padding_m: float = non_negative(0.05, "the robot's own footprint, grown by this, "
                                              "is cleared after every update, m")
    self_filter_frames: tuple[str, ...] = field(default=DEFAULT_ARM_FRAMES, metadata={
        "help": "tf frames of the arm, in chain order: depth returns within "
                "self_filter_radius_m of each frame (and of the midpoint of two consecutive "
                "ones) are the robot itself, not obstacles ([] turns the filter off)"})
    self_filter_radius_m: float = non_negative(0.12, "sphere radius around each arm frame, m")
    held_object_radius_m: float = non_negative(0.16, "sphere radius around the last frame "
                                               "(the grasp point): a held object, m")
    position_tolerance_m: float = positive(0.1, "default goal position tolerance, m")
    yaw_tolerance_rad: float = positive(0.15, "default goal yaw tolerance, rad")
    recovery_clear_radius_m: float = non_negative(
        0.8, "a start hemmed in by the inflation (no free cell within the planner's "
             "escape_radius_m) clears the cost map within this of the robot and plans once more "
             "(Nav2's clear-around-robot recovery), m (0 = fail at once)")
    max_replans: int = field(default=3, metadata={"help": "re-plans per goal (blocked path or "
                                                  "lagging base)", "check": "non_negative"})
    lag_replan_m: float = positive(1.0, "re-plan when the base is this far behind the timed "
                                   "reference, m")
    timeout_factor: float = positive(2.0, "timeout = path duration x this + timeout_margin_s")
    timeout_margin_s: float = non_negative(10.0, "s added to the timeout")
    localisation_timeout_s: float = positive(3.0, "wait this long (wall s) for odometry and "
                                             "map -> odom before failing with no_localisation; "
                                             "also the longest odometry gap while driving")
    approach_separation_rad: float = non_negative(0.7, "approach k skips candidates whose "
                                                  "bearing from the target is within this of "
                                                  "a better one's, rad (another side)")


def occupancy_values(cm: CostMap) -> np.ndarray:
    """``(rows, cols)`` int8 ``nav_msgs/OccupancyGrid`` values of a cost map (see module doc)."""
    cost = cm.cost()
    v = np.zeros(cm.shape, np.int8)
    fin = np.isfinite(cost)
    v[fin] = np.clip(np.rint(98.0 * cost[fin]), 0, 98).astype(np.int8)
    v[~fin] = 99
    v[cm.unknown()] = -1        # before inflation: the message keeps occupancy lossless
    v[cm.occupied()] = 100
    return v


def costmap_from_occupancy(grid: OccupancyGrid, config: CostMapConfig | None = None) -> CostMap:
    """Rebuild a :class:`CostMap` from a ``costmap`` message (what a travel-cost consumer does).

    Cells ``100`` become occupied, ``-1`` unknown, every other value free; the grid geometry
    (resolution, origin, size) comes from ``grid.info`` and the inflation settings from
    ``config``, so ``GlobalPlanner(...).cost_field(cm, from_xy).at(to_xy)`` gives the
    navigator's travel cost (m-equivalent, ``inf`` when unreachable).

    Raises:
        InputError: an empty grid, a rotated origin or ``data`` that does not fit ``info``.
    """
    import dataclasses

    info = grid.info
    rows, cols, res = int(info.height), int(info.width), float(info.resolution)
    q = info.origin.orientation
    if rows == 0 or cols == 0 or res <= 0 or len(grid.data) != rows * cols:
        raise InputError(f"costmap message: {cols} x {rows} cells of {res} m with "
                         f"{len(grid.data)} values; need a non-empty grid with width x height "
                         "values")
    if abs(q.x) + abs(q.y) + abs(q.z) > 1e-6:
        raise InputError("costmap message: a rotated grid origin is not supported")
    cfg = dataclasses.replace(config or CostMapConfig(), resolution_m=res,
                              origin_xy=(float(info.origin.position.x),
                                         float(info.origin.position.y)),
                              size_m=(cols * res, rows * res))
    cm = CostMap(cfg)
    v = np.asarray(grid.data, np.int8).reshape(rows, cols)
    cm.log_odds[:] = cfg.log_odds_min
    cm.log_odds[v == -1] = 0.0
    cm.log_odds[v == 100] = cfg.log_odds_max
    cm._changed()
    return cm


def _xyyaw_of(T: np.ndarray) -> np.ndarray:
    return np.array([T[0, 3], T[1, 3], float(yaw_from_matrix(T[:3, :3]))])



def _robot_hemmed_in(exc: Exception) -> bool:
    """Whether a planning failure is the robot's own situation, not the goal's: its start
    sits in the inflation with no free cell within reach, or every free base pose for the
    target is cut off from it."""
    return ((isinstance(exc, NoPathError) and exc.trapped == "start")
            or (isinstance(exc, NoBasePoseError) and "cut off from the robot" in str(exc)))


def _trapped_or(exc: Exception, cause: str) -> str:
    """Cause ``trapped`` when the start is stuck in the inflation even after the recovery
    (the task manager answers it with its own recovery instead of charging the item),
    else ``cause``."""
    return "trapped" if isinstance(exc, NoPathError) and exc.trapped == "start" else cause

def _transform_poses(T_a_b: np.ndarray, poses_b: np.ndarray) -> np.ndarray:
    """Planar ``(N, 3)`` poses in b -> a (``T_a_b`` (4, 4), its planar part)."""
    c, s = T_a_b[0, 0], T_a_b[1, 0]
    dyaw = math.atan2(s, c)
    x = T_a_b[0, 3] + c * poses_b[:, 0] - s * poses_b[:, 1]
    y = T_a_b[1, 3] + s * poses_b[:, 0] + c * poses_b[:, 1]
    return np.column_stack([x, y, wrap_angle(poses_b[:, 2] + dyaw)])


def _pose_stamped(frame: str, xyyaw, stamp) -> PoseStamped:
    ps = PoseStamped()
    ps.header.frame_id = frame
    ps.header.stamp = stamp
    ps.pose.position.x, ps.pose.position.y = float(xyyaw[0]), float(xyyaw[1])
    o = ps.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in yaw_to_quat(float(xyyaw[2])))
    return ps


class _Abort(Exception):
    """Ends a goal: ``cause`` for the result, ``message`` for people."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


class NavigatorNode(Node):
    """Cost map, ``navigate`` action server and path publisher (see module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("navigator", **kwargs)
        self.cfg: NavigatorNodeConfig = declare_config(self, NavigatorNodeConfig)
        cfg = self.cfg
        self.costmap = CostMap(cfg.costmap)
        self.planner = GlobalPlanner(cfg.planner)
        self._map_lock = threading.Lock()
        self._log = LogOnce(self)
        self._tf = TransformBuffer()
        self.stats = FrameStats(self)
        self._depth: Image | None = None           # the newest frame, not yet used
        self._info: CameraInfo | None = None
        self._undistort = None
        # newest odometry: (received, wall s; frame; x, y, yaw; planar speed m/s)
        self._odom: tuple[float, str, np.ndarray, float] | None = None
        self._clear_zones: list[tuple[np.ndarray, float]] = []   # the running goal's
        self._published_version = -1
        self.update_ms: deque[float] = deque(maxlen=200)   # cost map update (+ clearing) times
        self.plan_ms: deque[float] = deque(maxlen=200)     # base pose + plan + timing times
        self.updates = 0
        self.superseded = 0                            # depth frames replaced before use
        # goals: the newest accepted one is active; one executes at a time
        self._goal_lock = threading.Lock()
        self._active_goal: bytes | None = None
        self._exec_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self.path_live = False          # the last path sent was not empty (the base follows it)

        self._path_pub = self.create_publisher(Path, "path", qos.COMMAND)
        self._grid_pub = self.create_publisher(OccupancyGrid, "costmap", qos.LATCHED)
        self.create_subscription(Image, "head_camera/depth/image_raw", self._on_depth, qos.SENSOR)
        self.create_subscription(CameraInfo, "head_camera/camera_info", self._on_info, qos.SENSOR)
        self.create_subscription(Odometry, "odom", self._on_odom, qos.SENSOR)
        self.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), qos.STATE)
        self.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True),
                                 qos.LATCHED)
        mapping = MutuallyExclusiveCallbackGroup()
        self.create_timer(1.0 / cfg.update_hz, self._update_costmap, callback_group=mapping)
        self.create_timer(1.0 / cfg.costmap_publish_hz, self._publish_costmap,
                          callback_group=mapping)
        self._server = ActionServer(
            self, Navigate, "navigate", execute_callback=self._execute,
            goal_callback=self._on_goal, handle_accepted_callback=self._on_accepted,
            cancel_callback=self._on_cancel, callback_group=ReentrantCallbackGroup())
        c = cfg.costmap
        self.get_logger().info(
            f"navigator: {self.costmap.shape[1]}x{self.costmap.shape[0]} cells of "
            f"{c.resolution_m:g} m, update {cfg.update_hz:g} Hz, planner {cfg.planner.search}")

    # ------------------------------------------------------------------ inputs
    def _on_tf(self, msg: TFMessage, static: bool) -> None:
        rejected = self._tf.add_tf_message(msg, static)
        if rejected:
            self._log.warn("tf_rejected", "; ".join(rejected))

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            self._undistort = undistorter_from_info(msg, self._undistort)
            self._log.clear("distortion")
        except InputError as exc:
            self._undistort = None
            self._log.error("distortion", f"head_camera/camera_info: {exc}; depth is used "
                                          "without undistortion")
        self._info = msg

    def _on_depth(self, msg: Image) -> None:
        self.stats.received("depth", stamp_to_sec(msg.header.stamp))
        if self._depth is not None:
            self.superseded += 1   # by design: only the newest frame per update is used
        self._depth = msg

    def _on_odom(self, msg: Odometry) -> None:
        try:
            xyyaw = np.array(pose_xyyaw(msg.pose.pose))
        except (InputError, ValueError):
            xyyaw = np.full(3, np.nan)
        if not np.all(np.isfinite(xyyaw)):
            self._log.warn("odom_nan", "rejecting odom with a non-finite pose")
            return
        tw = msg.twist.twist.linear
        speed = math.hypot(tw.x, tw.y) if math.isfinite(tw.x) and math.isfinite(tw.y) else 0.0
        self._odom = (time.monotonic(), msg.header.frame_id or "odom", xyyaw, speed)

    # ------------------------------------------------------------------ poses
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _T_map(self, frame: str, t: float) -> tuple[np.ndarray | None, str]:
        """``T_map_frame`` at time ``t`` (s) from tf; ``frame`` '' means map."""
        return self._tf.lookup(self.cfg.map_frame, frame or self.cfg.map_frame, t,
                               self.cfg.tf_tolerance_s)

    def _base_in_map(self) -> tuple[np.ndarray, np.ndarray, str] | None:
        """``(x, y, yaw)`` of the base in map, ``T_map_odom`` (4, 4) and the odom frame; None
        while odometry is missing or stale or ``map -> odom`` is unknown."""
        odom = self._odom
        if odom is None or time.monotonic() - odom[0] > self.cfg.localisation_timeout_s:
            return None
        T_map_odom, _ = self._T_map(odom[1], self._now_s())
        if T_map_odom is None:
            return None
        T = T_map_odom @ se2_to_matrix(*odom[2])
        return _xyyaw_of(T), T_map_odom, odom[1]

    # ------------------------------------------------------------------ cost map
    def _self_spheres(self, t: float) -> np.ndarray | None:
        """``(M, 4)`` spheres (map) around the arm's frames at time ``t``: the self filter."""
        frames = self.cfg.self_filter_frames
        if not frames:
            return None
        spheres, missing = body_spheres(lambda f: self._T_map(f, t)[0], frames,
                                        self.cfg.self_filter_radius_m,
                                        self.cfg.held_object_radius_m)
        if missing:
            self._log.warn("self_filter", f"self filter: no tf for {', '.join(missing)}: the "
                                          "arm may be mapped as an obstacle there")
        return spheres

    def _update_costmap(self) -> None:
        msg, self._depth = self._depth, None
        if msg is None:
            return
        info = self._info
        if info is None:
            self.stats.drop("no_camera_info", detail="no head_camera/camera_info yet")
            return
        t = stamp_to_sec(msg.header.stamp)
        age = self._now_s() - t
        if age > self.cfg.stale_depth_s:
            self.stats.drop("stale", detail=f"depth frame {age:.2f} s old (> stale_depth_s "
                                     f"{self.cfg.stale_depth_s} s)")
            return
        T_map_cam, reason = self._T_map(msg.header.frame_id, t)
        if T_map_cam is None:
            self.stats.drop("no_tf", detail=f"no camera pose for the cost map: {reason}")
            return
        if msg.encoding not in DEPTH_ENCODINGS:
            self.stats.drop("bad_image", detail=f"depth encoding '{msg.encoding}'; publish "
                                                "32FC1 m or 16UC1 mm")
            return
        try:
            depth = depth_to_metres(msg)
            if self._undistort is not None and not self._undistort.is_identity:
                depth = self._undistort.rectify_depth(depth)
        except (InputError, ValueError) as exc:
            self.stats.drop("bad_image", detail=f"cannot decode depth: {exc}")
            return
        K = np.asarray(info.k, float).reshape(3, 3)
        T_map_base, _ = self._T_map(self.cfg.base_frame, t)
        if T_map_base is None:
            here = self._base_in_map()
            base = here[0] if here is not None else None
        else:
            base = _xyyaw_of(T_map_base)
        own = self._self_spheres(t)
        t0 = time.perf_counter()
        with self._map_lock:
            try:
                self.costmap.update(depth, K, T_map_cam, exclude=own)
            except InputError as exc:
                self.stats.drop("bad_image", detail=f"cost map update: {exc}")
                return
            if base is not None:
                self.costmap.clear_footprint(*base, padding_m=self.cfg.footprint_padding_m)
            else:
                self._log.warn("no_base", "no base pose (map -> base_link or odom): the robot's "
                                          "own footprint is not cleared")
            for xy, r in self._clear_zones:
                self.costmap.mark_clear(xy, r)
        self.update_ms.append(1e3 * (time.perf_counter() - t0))
        self.updates += 1
        self.stats.processed()

    def _publish_costmap(self) -> None:
        with self._map_lock:
            version = self.costmap._version
            if version == self._published_version:
                return
            values = occupancy_values(self.costmap)
            self._published_version = version
        cm, c = self.costmap, self.cfg.costmap
        g = OccupancyGrid()
        g.header.frame_id = self.cfg.map_frame
        g.header.stamp = self.get_clock().now().to_msg()
        g.info.map_load_time = g.header.stamp
        g.info.resolution = float(c.resolution_m)
        g.info.height, g.info.width = cm.shape
        g.info.origin.position.x, g.info.origin.position.y = (float(v) for v in c.origin_xy)
        g.info.origin.orientation.w = 1.0
        g.data = values.ravel().tolist()
        self._grid_pub.publish(g)

    # ------------------------------------------------------------------ action callbacks
    def _on_goal(self, goal: Navigate.Goal) -> GoalResponse:
        if goal.purpose not in _PURPOSES:
            self.get_logger().error(f"rejecting navigate goal: purpose {goal.purpose} is not one "
                                    "of PURPOSE_GOTO/PREGRASP/PREPLACE/LOOK (0..3)")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_accepted(self, goal_handle: Any) -> None:
        with self._goal_lock:
            self._active_goal = bytes(goal_handle.goal_id.uuid)   # pre-empts a running goal
        self._wake.set()
        goal_handle.execute()

    def _on_cancel(self, goal_handle: Any) -> CancelResponse:
        self._wake.set()
        return CancelResponse.ACCEPT

    # ------------------------------------------------------------------ goal execution
    def _execute(self, goal_handle: Any) -> Navigate.Result:
        me = bytes(goal_handle.goal_id.uuid)
        with self._exec_lock:
            run = _GoalRun(self, goal_handle, me)
            try:
                return run.run()
            finally:
                with self._map_lock:
                    self._clear_zones = []

    def _superseded(self, me: bytes) -> bool:
        with self._goal_lock:
            return self._active_goal != me or self._closing

    def publish_path(self, timed: TimedPath | None, frame: str) -> float:
        """Publish a stamped path (``None``: an empty one, the base stops); the send time, s."""
        now = self._now_s()
        msg = Path()
        msg.header.frame_id = frame
        msg.header.stamp = sec_to_stamp(now)
        if timed is not None:
            # strictly increasing stamps make it a trajectory for the controller
            t = timed.t + 1e-6 * np.arange(len(timed.t))
            msg.poses = [_pose_stamped(frame, p, sec_to_stamp(now + ti))
                         for p, ti in zip(timed.poses, t)]
        self._path_pub.publish(msg)
        self.path_live = timed is not None
        return now

    def timing_summary(self) -> str:
        """One line: cost map updates and plans so far with their median / max times (ms)."""
        def fig(v) -> str:
            a = np.asarray(list(v))
            return f"median {np.median(a):.1f} ms, max {a.max():.1f} ms" if a.size else "-"
        return (f"{self.updates} cost map updates ({fig(self.update_ms)}), "
                f"{len(self.plan_ms)} plans ({fig(self.plan_ms)}), "
                f"{self.superseded} depth frames superseded, {self.stats.dropped_total} skipped")

    def close(self) -> None:
        """Ends a running goal and logs the timing summary (``run_node`` calls it before the
        node is destroyed)."""
        with self._goal_lock:
            self._closing = True
        self._wake.set()
        line = f"navigator: {self.timing_summary()}"
        if self.context.ok():
            self.get_logger().info(line)
        else:   # after Ctrl-C the context is gone: rosout would refuse the line
            print(f"[INFO] [{self.get_name()}]: {line}", file=sys.stderr, flush=True)


class _Plan:
    """A sent plan and what the map said along it when it was made."""

    def __init__(self, timed: TimedPath, sent: float, lethal: np.ndarray, dist: np.ndarray,
                 escape: np.ndarray) -> None:
        self.timed = timed       # in map, t from `sent`
        self.sent = sent         # node clock s of the path's first stamp
        self.lethal = lethal     # (N,) bool: pose cell lethal at planning
        self.dist = dist         # (N,) m: pose cell's distance to an obstacle at planning
        self.escape = escape     # (N,) bool: pose on an escape stretch next to an end

    @property
    def poses(self) -> np.ndarray:
        return self.timed.poses


class _GoalRun:
    """One ``navigate`` goal: choose, plan, drive, monitor (runs on an executor thread)."""

    def __init__(self, node: NavigatorNode, goal_handle: Any, goal_id: bytes) -> None:
        self.node, self.gh, self.id = node, goal_handle, goal_id
        self.goal: Navigate.Goal = goal_handle.request
        cfg = node.cfg
        self.pos_tol = float(self.goal.position_tolerance_m) or cfg.position_tolerance_m
        self.yaw_tol = float(self.goal.yaw_tolerance_rad) or cfg.yaw_tolerance_rad
        self.goal_map: np.ndarray | None = None     # chosen base pose (x, y, yaw) in map
        self.travelled = 0.0
        self.last_xy: np.ndarray | None = None
        self.log = node.get_logger()

    # -- helpers
    def feedback(self, state: str, remaining: float) -> None:
        fb = Navigate.Feedback()
        fb.state = state
        if self.goal_map is not None:
            fb.goal = _pose_stamped(self.node.cfg.map_frame, self.goal_map,
                                    self.node.get_clock().now().to_msg())
        fb.distance_remaining_m = float(remaining)
        self.gh.publish_feedback(fb)

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds`` (wall); a cancel, a new goal or shutdown wakes it early."""
        self.node._wake.wait(seconds)
        self.node._wake.clear()

    def check_interrupt(self) -> None:
        if self.gh.is_cancel_requested:
            raise _Abort("cancelled", "cancelled by the client")
        if self.node._superseded(self.id):
            raise _Abort("preempted", "pre-empted by a newer navigate goal")

    def localise(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Base pose in map (waits up to localisation_timeout_s)."""
        deadline = time.monotonic() + self.node.cfg.localisation_timeout_s
        while True:
            here = self.node._base_in_map()
            if here is not None:
                xy = here[0][:2]
                if self.last_xy is not None:
                    self.travelled += float(np.linalg.norm(xy - self.last_xy))
                self.last_xy = xy
                return here
            if time.monotonic() > deadline:
                raise _Abort("no_localisation", "no fresh odometry or no map -> odom transform "
                             f"within {self.node.cfg.localisation_timeout_s} s")
            self.check_interrupt()
            self.wait(0.05)

    def point_in_map(self, frame: str, xyz: np.ndarray) -> np.ndarray:
        T, reason = self.node._T_map(frame, self.node._now_s())
        if T is None:
            raise _Abort("no_localisation", f"cannot transform the goal into "
                         f"{self.node.cfg.map_frame}: {reason}")
        return T[:3, :3] @ xyz + T[:3, 3]

    def choose_goal(self, robot: np.ndarray) -> np.ndarray:
        node, g = self.node, self.goal
        purpose = _PURPOSES[g.purpose]
        if purpose == "goto":
            p = g.pose.pose
            T, reason = node._T_map(g.pose.header.frame_id, node._now_s())
            if T is None:
                raise _Abort("no_localisation", f"cannot transform the goal pose: {reason}")
            try:
                local = np.array(pose_xyyaw(p))
            except (InputError, ValueError) as exc:
                raise _Abort("no_path", f"bad goal pose: {exc}") from exc
            if not np.all(np.isfinite(local)):
                raise _Abort("no_path", "the goal pose is not finite")
            return _transform_poses(T, local[None])[0]
        pt = g.target.point
        target = self.point_in_map(g.target.header.frame_id, np.array([pt.x, pt.y, pt.z]))
        if not np.all(np.isfinite(target)):
            raise _Abort("no_base_pose", "the target is not finite")
        radius = float(g.clear_radius_m)
        with node._map_lock:
            if radius > 0:
                node._clear_zones = [(target[:2].copy(), radius)]
                node.costmap.mark_clear(target[:2], radius)
            def choose():
                return choose_base_pose(target[:2], node.costmap, robot,
                                        getattr(node.cfg, purpose), node.planner,
                                        target_z=float(target[2]))
            try:
                try:
                    cands = choose()
                except NavigationError as exc:
                    r = node.cfg.recovery_clear_radius_m
                    if not _robot_hemmed_in(exc) or r <= 0:
                        raise
                    # the robot itself is hemmed in (behind the table, 1 cm of free cells
                    # each side of its lethal radius; parked in a nook with every cell within
                    # escape_radius_m inflated: train rooms lost every later item so): the
                    # clear-around-robot recovery of plan(), then choose again
                    node.costmap.mark_clear(robot[:2], r)
                    self.log.warning(f"navigate: recovery: {exc}; cleared the cost map within "
                                     f"{r:g} m of the robot and chose again")
                    cands = choose()
            except (NoBasePoseError, NavigationError, InputError) as exc:
                raise _Abort(_trapped_or(exc, "no_base_pose"), str(exc)) from exc
        # approach k: the k-th best of the candidates that come from distinct sides
        picked: list[tuple[np.ndarray, float]] = []
        sep = node.cfg.approach_separation_rad
        for c in cands:
            bearing = math.atan2(c.pose[1] - target[1], c.pose[0] - target[0])
            if all(abs(float(wrap_angle(bearing - b))) >= sep for _, b in picked):
                picked.append((c.pose, bearing))
                if len(picked) > g.approach:
                    return picked[-1][0]
        if not picked:
            raise _Abort("no_base_pose", "no base pose for the target")
        # fewer sides than asked for: cycle through those there are (a retry from the same
        # side still re-perceives; failing it outright would waste the retry)
        k = g.approach % len(picked)
        node.get_logger().info(f"navigate: approach {g.approach} asked for, {len(picked)} "
                               f"distinct base pose(s) exist: using approach {k}")
        return picked[k][0]

    def plan(self, robot: np.ndarray, T_map_odom: np.ndarray, odom_frame: str,
             replanning: bool) -> _Plan:
        """Plan in map, time it, send it in odom (``blocked`` / ``no_path`` on failure)."""
        node = self.node
        self.feedback("replanning" if replanning else "planning", 0.0)
        t0 = time.perf_counter()
        with node._map_lock:
            cm = node.costmap
            try:
                try:
                    gp = node.planner.plan(cm, robot, self.goal_map)
                except NoPathError as exc:
                    r = node.cfg.recovery_clear_radius_m
                    if exc.trapped != "start" or r <= 0:
                        raise
                    # Nav2's clear-costmap-around-robot recovery: what hems the base in may
                    # be stale (odometry drift, an object since moved); the camera marks what
                    # is really there again, and the escape still checks the footprint
                    cm.mark_clear(robot[:2], r)
                    self.log.warning(f"navigate: recovery: {exc}; cleared the cost map within "
                                     f"{r:g} m of the robot and planned again")
                    gp = node.planner.plan(cm, robot, self.goal_map)
            except (NavigationError, InputError) as exc:
                raise _Abort(_trapped_or(exc, "blocked" if replanning else "no_path"),
                             str(exc)) from exc
            rc = np.clip(cm.world_to_cell(gp.poses[:, :2]), 0, np.array(cm.shape) - 1)
            lethal, dist = cm.lethal(), cm.distance()
            lethal_on = lethal[rc[:, 0], rc[:, 1]]
            dist_on = dist[rc[:, 0], rc[:, 1]]
            # an end inside the inflation (parked by furniture) is joined by an escape
            # segment through lethal cells: there, only a real footprint collision blocks
            escape = np.zeros(len(gp.poses), bool)
            for end in (robot, self.goal_map):
                e = cm.world_to_cell(end[:2])
                if cm.in_bounds(e) and lethal[e[0], e[1]]:
                    escape |= (np.hypot(*(gp.poses[:, :2] - end[:2]).T)
                               <= node.cfg.planner.escape_radius_m + cm.resolution)
        # a base already moving (re-plan, pre-empting goal) starts the new path at its speed
        odom = node._odom
        v0 = min(odom[3], node.cfg.timing.v_max) if odom is not None else 0.0
        timed = time_parameterize(gp.poses, node.cfg.timing, v_start=v0)
        node.plan_ms.append(1e3 * (time.perf_counter() - t0))
        self.check_interrupt()
        in_odom = TimedPath(_transform_poses(np.linalg.inv(T_map_odom), timed.poses), timed.t,
                            timed.velocity, timed.speed)
        sent = node.publish_path(in_odom, odom_frame)
        self.log.info(f"navigate: {'re-' if replanning else ''}planned {gp.length_m:.2f} m, "
                      f"{timed.duration:.1f} s, in {node.plan_ms[-1]:.0f} ms")
        return _Plan(timed, sent, lethal_on, dist_on, escape)

    def blocked(self, plan: _Plan, i: int) -> bool:
        """Whether the path from pose ``i`` on crosses cells that became lethal since it was
        planned (in an escape zone: that came nearer than the inscribed radius)."""
        cm = self.node.costmap
        with self.node._map_lock:
            P = plan.timed.poses[i:, :2]
            if len(P) == 0:
                return False
            rc = np.clip(cm.world_to_cell(P), 0, np.array(cm.shape) - 1)
            lethal = cm.lethal()[rc[:, 0], rc[:, 1]]
            dist = cm.distance()[rc[:, 0], rc[:, 1]]
        r_in = cm.config.inscribed_radius_m - 0.5 * cm.resolution
        new_lethal = lethal & ~plan.lethal[i:] & ~plan.escape[i:]
        new_contact = plan.escape[i:] & (dist < r_in) & (plan.dist[i:] >= r_in)
        return bool(np.any(new_lethal | new_contact))

    def at_goal(self, pose: np.ndarray) -> bool:
        d = float(np.hypot(*(pose[:2] - self.goal_map[:2])))
        dyaw = abs(float(wrap_angle(pose[2] - self.goal_map[2])))
        return d <= self.pos_tol and dyaw <= self.yaw_tol

    # -- the goal
    def run(self) -> Navigate.Result:
        node = self.node
        result = Navigate.Result()
        try:
            self.check_interrupt()
            self.feedback("choosing base pose", 0.0)
            robot, T_map_odom, odom_frame = self.localise()
            t0 = time.perf_counter()
            self.goal_map = self.choose_goal(robot)
            self.log.info(f"navigate {_PURPOSES[self.goal.purpose]}: base goal "
                          f"{np.array2string(self.goal_map, precision=2)} (chosen in "
                          f"{1e3 * (time.perf_counter() - t0):.0f} ms)")
            self.drive(robot, T_map_odom, odom_frame)
            result.success = True
            result.message = "reached the goal"
            self.gh.succeed()
        except _Abort as stop:
            result.success = False
            result.cause = stop.cause
            result.message = str(stop)
            # stop the base, also when a pre-empted goal's path is still being followed
            if node.path_live and stop.cause != "preempted":
                node.publish_path(None, self._odom_frame())
            if stop.cause == "cancelled" and self.gh.is_cancel_requested:
                self.gh.canceled()
            else:
                self.gh.abort()
            self.log.info(f"navigate: {stop.cause}: {stop}")
        except KatazukeError as exc:   # a library error the checks above did not foresee
            result.success, result.cause, result.message = False, "no_path", str(exc)
            if node.path_live:
                node.publish_path(None, self._odom_frame())
            self.gh.abort()
            self.log.error(f"navigate failed: {exc}")
        stamp = node.get_clock().now().to_msg()
        if self.goal_map is not None:
            result.goal = _pose_stamped(node.cfg.map_frame, self.goal_map, stamp)
        here = node._base_in_map()
        if here is not None:
            result.final_pose = _pose_stamped(node.cfg.map_frame, here[0], stamp)
            if self.last_xy is not None:
                self.travelled += float(np.linalg.norm(here[0][:2] - self.last_xy))
        result.distance_travelled_m = float(self.travelled)
        return result

    def _odom_frame(self) -> str:
        odom = self.node._odom
        return odom[1] if odom is not None else "odom"

    def drive(self, robot: np.ndarray, T_map_odom: np.ndarray, odom_frame: str) -> None:
        node, cfg = self.node, self.node.cfg
        if self.at_goal(robot):
            return
        plan = self.plan(robot, T_map_odom, odom_frame, False)
        deadline = plan.sent + plan.timed.duration * cfg.timeout_factor + cfg.timeout_margin_s
        replans, i, seen_version = 0, 0, -1
        period = 1.0 / cfg.monitor_hz
        while True:
            self.wait(period)
            self.check_interrupt()
            robot, T_map_odom, odom_frame = self.localise()
            now = node._now_s()
            if self.at_goal(robot):
                return
            # progress along the path: the nearest pose at or after the previous one
            poses = plan.poses
            d = np.hypot(poses[i:, 0] - robot[0], poses[i:, 1] - robot[1])
            i += int(np.argmin(d))
            seg = np.hypot(np.diff(poses[i:, 0]), np.diff(poses[i:, 1])).sum()
            remaining = float(seg + d.min())
            elapsed = now - plan.sent
            self.feedback("driving" if elapsed < plan.timed.duration else "aligning", remaining)
            if now > deadline:
                raise _Abort("timeout", f"not within {self.pos_tol:g} m / {self.yaw_tol:g} rad "
                             f"of the goal by the deadline ({remaining:.2f} m left)")
            reason = ""
            version = node.costmap._version
            if version != seen_version:
                seen_version = version
                if self.blocked(plan, i + 1):
                    reason = "blocked"
            if not reason:
                ref, _ = plan.timed.sample(min(max(elapsed, 0.0), plan.timed.duration))
                if np.hypot(*(ref[:2] - robot[:2])) > cfg.lag_replan_m:
                    reason = "lagging"
            if not reason:
                continue
            if replans >= cfg.max_replans:
                if reason == "blocked":
                    raise _Abort("blocked", f"the path is blocked and max_replans="
                                 f"{cfg.max_replans} re-plans are used up")
                continue   # lagging: the timeout decides
            replans += 1
            self.log.info(f"navigate: re-planning ({reason}, {replans}/{cfg.max_replans})")
            plan = self.plan(robot, T_map_odom, odom_frame, True)
            deadline = plan.sent + plan.timed.duration * cfg.timeout_factor + cfg.timeout_margin_s
            i = 0


def main(args: list[str] | None = None) -> int:
    return run_node(NavigatorNode, args, threads=4)


if __name__ == "__main__":
    raise SystemExit(main())
