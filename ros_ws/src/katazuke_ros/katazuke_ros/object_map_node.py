"""object_map: fuses ``detections`` into a latched ``object_map`` and answers ``where_is``.

Subscribes: ``detections`` (katazuke_interfaces/DetectionArray, EVENTS QoS),
``head_camera/depth/image_raw`` (32FC1 m or 16UC1 mm) and ``head_camera/camera_info`` (SENSOR QoS),
``/tf`` + ``/tf_static``. The depth image nearest in time to each DetectionArray, the
intrinsics and ``T_map_cam`` from tf form the :class:`CameraView` that lets the map forget
objects a view should show but does not; without them the map only adds and merges.
Publishes ``object_map`` (katazuke_interfaces/ObjectMap, LATCHED QoS) after every update.
Serves ``where_is`` (katazuke_interfaces/srv/WhereIs).

With ``deterministic_replay`` (``katazuke bag play --deterministic``) the inputs are
reliable KEEP_ALL and each DetectionArray waits, in arrival order, until a depth image,
camera_info and every dynamic tf on its chain are known at or after its stamp (or
``input_wait_s`` passed), so the view it is fused with never depends on message timing.
Updates without a view (no depth within ``depth_slop``, no transform) and depth frames
missing from the stamps are counted on ``diagnostics`` (:mod:`katazuke_ros.frame_stats`).
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from katazuke.config import dataclass as kdataclass
from katazuke.config import field as kfield
from katazuke.perception.objectmap import (CATEGORY_NAMES, CameraView, ObjectMap, ObjectMapConfig,
                                           Observation3D)
from katazuke.errors import InputError
from katazuke.ros.conversions import (DEPTH_ENCODINGS, depth_to_metres, instance_to_msg,
                                      undistorter_from_info)
from katazuke_interfaces.msg import DetectionArray
from katazuke_interfaces.msg import ObjectMap as ObjectMapMsg
from katazuke_interfaces.srv import WhereIs
from katazuke_ros import qos
from katazuke_ros.frame_stats import FrameStats
from katazuke_ros.self_filter import DEFAULT_ARM_FRAMES, body_spheres
from katazuke_ros.tf_buffer import TransformBuffer
from katazuke_ros.node_utils import LogOnce, declare_config, replay_qos, run_node, stamp_to_sec

__all__ = ["ObjectMapNode", "ObjectMapNodeConfig", "main"]


@kdataclass(frozen=True)
class ObjectMapNodeConfig:
    """Parameters of the object map node (fusion settings under ``map.``)."""

    depth_slop: float = kfield(default=0.05, metadata={
        "help": "s; a depth image within this of a DetectionArray's stamp is its view"})
    tf_tolerance: float = kfield(default=0.2, metadata={"help": "s; tf lookup tolerance"})
    deterministic_replay: bool = kfield(default=False, metadata={
        "help": "reliable KEEP_ALL inputs; each detection waits for depth, camera_info and "
                "tf at or after its stamp before it is fused (`katazuke bag play "
                "--deterministic`); false (live) fuses each detection on arrival"})
    input_wait_s: float = kfield(default=2.0, metadata={
        "help": "s (wall); deterministic_replay: longest wait for a detection's depth, "
                "camera_info and tf before it is fused without them (counted)",
        "check": "non_negative"})
    self_filter_frames: tuple[str, ...] = kfield(default=DEFAULT_ARM_FRAMES, metadata={
        "help": "tf frames of the arm, in chain order: detections within self_filter_radius_m "
                "of each (and of the midpoint of two consecutive ones) are the robot itself "
                "and dropped; objects there are not forgotten ([] turns the filter off)"})
    self_filter_radius_m: float = kfield(default=0.12, metadata={
        "help": "m; sphere radius around each arm frame", "check": "non_negative"})
    held_object_radius_m: float = kfield(default=0.16, metadata={
        "help": "m; sphere radius around the last arm frame (the grasp point): a held object "
                "is not mapped where the gripper carries it", "check": "non_negative"})
    base_frame: str = kfield(default="base_link", metadata={
        "help": "the robot's base frame ('' = no base sphere)"})
    base_filter_radius_m: float = kfield(default=0.3, metadata={
        "help": "m; radius of the spheres stacked above the base frame (0 = none)",
        "check": "non_negative"})
    base_filter_heights_m: tuple[float, ...] = kfield(default=(0.15, 0.45, 0.75, 1.05), metadata={
        "help": "m; heights of those spheres' centres above the base frame: the base, the "
                "mast and the arm folded beside it (a folded arm was mapped as a bottle at "
                "0.36 m height, 0.3 m from the base's centre)"})
    map: ObjectMapConfig = kfield(default_factory=ObjectMapConfig, metadata={
        "help": "fusion/forgetting/query settings"})


class ObjectMapNode(Node):
    """Fuses detections into the latched map and answers ``where_is`` (see module docstring).

    Every callback runs on the one thread of ``run_node``'s SingleThreadedExecutor, so the
    map needs no lock.
    """

    def __init__(self) -> None:
        super().__init__("object_map")
        self.cfg = declare_config(self, ObjectMapNodeConfig)
        self.map = ObjectMap(self.cfg.map)
        self._log = LogOnce(self)
        self._tf = TransformBuffer()
        self._depths: deque = deque(maxlen=10)
        self._info: CameraInfo | None = None
        self._undistort = None   # perception.camera.Undistorter of the current camera_info
        self._frame = ""
        self.updates = 0
        self.self_dropped = 0
        self.stats = FrameStats(self)
        self._waiting: deque[tuple[float, DetectionArray]] = deque()  # (deadline, msg)
        det = self.cfg.deterministic_replay
        self._pub = self.create_publisher(ObjectMapMsg, "object_map", qos.LATCHED)
        self.create_subscription(DetectionArray, "detections", self._on_detections,
                                 replay_qos(qos.EVENTS, det))
        self.create_subscription(Image, "head_camera/depth/image_raw", self._on_depth,
                                 replay_qos(qos.SENSOR, det))
        self.create_subscription(CameraInfo, "head_camera/camera_info", self._on_info,
                                 replay_qos(qos.SENSOR, det))
        self.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False),
                                 replay_qos(qos.STATE, det))
        self.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True),
                                 qos.LATCHED)
        self.create_service(WhereIs, "where_is", self._on_where_is)
        if det:  # a detection whose inputs never come is fused at its deadline
            self.create_timer(0.05, self._fuse_ready, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _on_tf(self, msg: TFMessage, static: bool) -> None:
        rejected = self._tf.add_tf_message(msg, static)
        if rejected:
            self.stats.degrade("tf_rejected", len(rejected), "; ".join(rejected))
        self._fuse_ready()

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            self._undistort = undistorter_from_info(msg, self._undistort)
            self._log.clear("distortion")
        except InputError as exc:
            self._undistort = None
            self._log.error("distortion", f"head_camera/camera_info: {exc}; depth is used "
                                          "without undistortion for forgetting objects")
        self._info = msg
        self._fuse_ready()

    def _on_depth(self, msg: Image) -> None:
        if msg.encoding not in DEPTH_ENCODINGS:
            self._log.error("enc_depth", f"depth encoding '{msg.encoding}'; publish 32FC1 metres "
                                         "or 16UC1 millimetres (without depth the map cannot "
                                         "forget objects)")
            self.stats.drop("bad_encoding_depth")
            return
        t = stamp_to_sec(msg.header.stamp)
        self.stats.received("depth", t)
        self._depths.append((t, msg))
        self._fuse_ready()

    def _inputs_ready(self, msg: DetectionArray) -> bool:
        """Depth, camera_info and tf are known at or after the detection's stamp."""
        t = stamp_to_sec(msg.header.stamp)
        info = self._info
        info_t = stamp_to_sec(info.header.stamp) if info is not None else -1.0
        return (bool(self._depths) and self._depths[-1][0] >= t
                and info is not None and (info_t == 0.0 or info_t >= t)
                and self._tf.covers(msg.map_frame, msg.header.frame_id, t))

    def _fuse_ready(self) -> None:
        """deterministic_replay: fuse waiting detections, in order, whose inputs are in
        (or whose deadline passed)."""
        while self._waiting:
            deadline, msg = self._waiting[0]
            if not self._inputs_ready(msg):
                if time.monotonic() < deadline:
                    return
                self.stats.degrade("inputs_incomplete", 1, (
                    f"detections {stamp_to_sec(msg.header.stamp):.3f} s: depth, camera_info "
                    f"or tf at its stamp did not arrive within {self.cfg.input_wait_s} s; "
                    "fused with what arrived (the replay may not be repeatable)"))
            self._waiting.popleft()
            self._fuse(msg)

    def _view_for(self, msg: DetectionArray) -> CameraView | None:
        t = stamp_to_sec(msg.header.stamp)
        info = self._info
        cands = [(abs(ts - t), m) for ts, m in list(self._depths)]
        if info is None or not cands:
            self.stats.degrade("no_view", 1, "no camera_info/depth yet: objects are added but "
                               "not forgotten")
            return None
        dt, dmsg = min(cands, key=lambda c: c[0])
        if dt > self.cfg.depth_slop:
            self.stats.degrade("depth_unmatched", 1, (
                f"no depth image within depth_slop {self.cfg.depth_slop} s of detections at "
                f"{t:.3f} s (nearest {dt:.3f} s away): objects are added but not forgotten"))
            return None
        T, reason = self._tf.lookup(msg.map_frame, msg.header.frame_id, t, self.cfg.tf_tolerance)
        if T is None:
            self.stats.degrade("tf_lookup_failed", 1, f"no camera pose for forgetting: {reason}")
            return None
        try:
            depth = depth_to_metres(dmsg)
            if self._undistort is not None and not self._undistort.is_identity:
                depth = self._undistort.rectify_depth(depth)   # same rectified image as the detector
        except ValueError as exc:
            self._log.error("decode", f"cannot decode depth: {exc}")
            self.stats.degrade("decode", 1, str(exc))
            return None
        return CameraView(T, np.asarray(info.k, float).reshape(3, 3), depth)

    def _self_spheres(self, map_frame: str, t: float) -> np.ndarray | None:
        """The robot's body (arm, held object, base) as map-frame spheres at ``t``."""
        c = self.cfg
        if not c.self_filter_frames and not (c.base_frame and c.base_filter_radius_m > 0):
            return None
        spheres, missing = body_spheres(
            lambda f: self._tf.lookup(map_frame, f, t, c.tf_tolerance)[0], c.self_filter_frames,
            c.self_filter_radius_m, c.held_object_radius_m, c.base_frame, c.base_filter_radius_m,
            c.base_filter_heights_m)
        if missing:
            self._log.warn("self_filter", f"self filter: no tf for {', '.join(missing)} in "
                                          f"'{map_frame}': the robot's own parts there may be "
                                          "mapped as objects")
        else:
            self._log.clear("self_filter")
        return spheres

    def _on_detections(self, msg: DetectionArray) -> None:
        self.stats.received("detections", stamp_to_sec(msg.header.stamp), detect_gaps=False)
        if self.cfg.deterministic_replay:
            self._waiting.append((time.monotonic() + self.cfg.input_wait_s, msg))
            self._fuse_ready()
            return
        self._fuse(msg)

    def _fuse(self, msg: DetectionArray) -> None:
        obs = []
        for d in msg.detections:
            if not d.has_position_map:
                continue
            scores = dict(zip(d.category_names, d.category_scores))
            vec = np.array([float(scores.get(c, 0.0)) for c in CATEGORY_NAMES])
            if vec.sum() <= 0:
                vec = np.zeros(len(CATEGORY_NAMES))
                vec[CATEGORY_NAMES.index(d.category) if d.category in CATEGORY_NAMES else -1] = 1.0
            obs.append(Observation3D(np.array([d.position_map.x, d.position_map.y, d.position_map.z]),
                                     float(d.objectness), vec / vec.sum(),
                                     np.array([d.extent.x, d.extent.y, d.extent.z])))
        view = self._view_for(msg)
        t = stamp_to_sec(msg.header.stamp)
        dropped = self.map.update(t, obs, view, exclude=self._self_spheres(msg.map_frame, t))
        self.self_dropped += dropped      # detections of the robot's own body (self filter)
        self._frame = msg.map_frame
        self._pub.publish(self._map_msg(msg.header.stamp))
        self.updates += 1
        self.stats.processed()

    def _map_msg(self, stamp) -> ObjectMapMsg:
        out = ObjectMapMsg()
        out.header.stamp = stamp
        out.header.frame_id = self._frame
        out.objects = [instance_to_msg(i, self.map.destination(i.category)) for i in self.map.instances]
        return out

    def _on_where_is(self, req: WhereIs.Request, resp: WhereIs.Response) -> WhereIs.Response:
        from katazuke.errors import InputError

        try:
            r = self.map.where_is(req.query)
        except InputError as exc:
            resp.found, resp.answer = False, str(exc)
            return resp
        resp.found = r.found
        resp.answer = r.answer
        resp.matches = [instance_to_msg(i, self.map.destination(i.category)) for i in r.matches]
        return resp


def main(args: list[str] | None = None) -> int:
    return run_node(ObjectMapNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
