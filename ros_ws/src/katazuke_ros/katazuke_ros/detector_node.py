"""detector: objectness + category detections with 3D positions from depth.

Subscribes (SENSOR QoS): ``head_camera/image_raw`` (rgb8), ``head_camera/depth/image_raw``
(32FC1 metres), ``head_camera/camera_info``; ``/tf`` and ``/tf_static`` (TFMessage).
Publishes: ``detections`` (katazuke_interfaces/DetectionArray, EVENTS QoS; the object map
reads it), the same detections as ``detections_2d`` (vision_msgs/Detection2DArray, image
frame) and ``detections_3d`` (vision_msgs/Detection3DArray: the 3D box in ``map_frame``
when the transform is known, else in the camera optical frame), all EVENTS QoS, box for
box with ``id = str(Detection.id)``; ``detections/label_info`` (vision_msgs/LabelInfo,
LATCHED: class id <-> category name, the objectness threshold) and ``detections/image``
(annotated rgb8, SENSOR QoS).

Colour and depth are paired by stamp (:class:`ApproximateTimeSync`, within ``sync_slop``);
only the newest pair waits for inference (older pairs are dropped, never queued), and
inference runs on its own thread. With ``deterministic_replay`` (``katazuke bag play
--deterministic``, ``deterministic:=true`` in the launch files) every pair is queued and
processed in order, the camera and tf subscriptions are reliable KEEP_ALL, and a frame
waits (up to ``input_wait_s``) until camera_info and every dynamic tf on its chain are
known at or after its stamp, so the result never depends on which message arrived
first. Every frame lost (stale, never paired, missing from the stamps) or processed
without its transform is counted on ``diagnostics`` (:mod:`katazuke_ros.frame_stats`).

3D (:func:`katazuke.perception.objectmap.lifting.box_to_3d`): the box's depth pixels become an
Open3D point cloud, voxel down-sampled, cleaned of outliers and cut to the cluster at the box
centre; its robust centre, pushed back to at least half the narrow side (the camera sees the
front surface, the map wants the centre), and its extent are the object's; then moved into
``map_frame`` with :class:`TransformBuffer` (a small tf buffer: no tf2_ros here).

The weights load at construction: a missing or corrupt file is a ``KatazukeError`` naming
the file and the ``katazuke train detector`` fix, and the process exits with code 2
(``run_node``) instead of staying up silent.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from katazuke.config import dataclass as kdataclass
from katazuke.config import field as kfield
from katazuke.perception.detection import CATEGORIES, UNKNOWN, DetectorConfig
from katazuke.perception.objectmap.lifting import box_to_3d
from katazuke.errors import InputError
from katazuke.ros.conversions import (DEPTH_ENCODINGS, depth_to_metres, image_from_numpy,
                                      image_to_numpy, undistorter_from_info)
from katazuke.ros.conversions import (detection2d_array_msg, detection3d_array_msg,
                                      label_info_msg)
from katazuke_interfaces.msg import Detection as DetectionMsg
from katazuke_interfaces.msg import DetectionArray
from vision_msgs.msg import Detection2DArray, Detection3DArray, LabelInfo
from katazuke_ros import qos
from katazuke_ros.frame_stats import FrameStats
from katazuke_ros.image_sync import ApproximateTimeSync
from katazuke_ros.node_utils import (LogOnce, declare_config, replay_qos, run_node,
                                     stamp_to_sec)
from katazuke_ros.tf_buffer import TransformBuffer

__all__ = ["DetectorNode", "DetectorNodeConfig", "main"]


# ----------------------------------------------------------------------------- config
@kdataclass(frozen=True)
class DetectorNodeConfig:
    """Parameters of the detector node (the model's own settings are under ``detector.``)."""

    map_frame: str = kfield(default="odom", metadata={
        "help": "frame of Detection.position_map (needs a tf chain to the camera frame)"})
    sync_slop: float = kfield(default=0.02, metadata={
        "help": "s; colour and depth stamps closer than this are one frame"})
    tf_tolerance: float = kfield(default=0.2, metadata={
        "help": "s; a transform older/newer than the image by more than this is not used"})
    centre_fraction: float = kfield(default=0.5, metadata={
        "help": "fraction of the box (width and height, centred) whose depths give the median"})
    max_depth: float = kfield(default=6.0, metadata={"help": "m; deeper readings are invalid"})
    deterministic_replay: bool = kfield(default=False, metadata={
        "help": "process every frame in order (queue, never drop stale frames), reliable "
                "KEEP_ALL inputs, wait for tf/camera_info at each frame's stamp: for "
                "`katazuke bag play --deterministic`; false (live) keeps only the newest frame"})
    input_wait_s: float = kfield(default=2.0, metadata={
        "help": "s (wall); deterministic_replay: longest wait for tf and camera_info at a "
                "frame's stamp before it is processed without them (counted)",
        "check": "non_negative"})
    publish_image: bool = kfield(default=True, metadata={
        "help": "publish the annotated debug image on detections/image (drawn only while "
                "someone subscribes)"})
    detector: DetectorConfig = kfield(default_factory=DetectorConfig, metadata={
        "help": "model settings (weights path, thresholds, threads); the deployed values "
                "(1 torch thread, second stage on the best 16 boxes) are in "
                "launch/params/perception.yaml, which the offline benchmarks read too"})

@dataclass
class _Frame:
    rgb: Image
    depth: Image
    received: float = field(default_factory=time.monotonic)


# ----------------------------------------------------------------------------- node
class DetectorNode(Node):
    def __init__(self) -> None:
        super().__init__("detector")
        self.cfg = declare_config(self, DetectorNodeConfig)
        self._log = LogOnce(self)
        self._detector = self._load_detector()   # KatazukeError -> exit code 2 (run_node)
        self._tf = TransformBuffer()
        self._sync = ApproximateTimeSync(2, self.cfg.sync_slop)
        self._info: CameraInfo | None = None
        self._undistort = None   # perception.camera.Undistorter of the current camera_info
        self._pending: _Frame | None = None
        self._queue: deque[_Frame] = deque()   # deterministic_replay: every pair, in order
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._inputs = threading.Condition()   # tf / camera_info arrived (deterministic)
        self.stats = FrameStats(self)
        self.frames_in = 0
        self.frames_done = 0
        self.frames_dropped = 0
        self._pub = self.create_publisher(DetectionArray, "detections", qos.EVENTS)
        self._pub_img = self.create_publisher(Image, "detections/image", qos.SENSOR)
        self._pub_2d = self.create_publisher(Detection2DArray, "detections_2d", qos.EVENTS)
        self._pub_3d = self.create_publisher(Detection3DArray, "detections_3d", qos.EVENTS)
        self._pub_labels = self.create_publisher(LabelInfo, "detections/label_info", qos.LATCHED)
        labels = label_info_msg(tuple(CATEGORIES) + (UNKNOWN,), self.cfg.detector.score_threshold)
        labels.header.stamp = self.get_clock().now().to_msg()
        self._pub_labels.publish(labels)
        det = self.cfg.deterministic_replay
        sensor, state = replay_qos(qos.SENSOR, det), replay_qos(qos.STATE, det)
        self.create_subscription(Image, "head_camera/image_raw", self._on_rgb, sensor)
        self.create_subscription(Image, "head_camera/depth/image_raw", self._on_depth, sensor)
        self.create_subscription(CameraInfo, "head_camera/camera_info", self._on_info, sensor)
        self.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), state)
        self.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True),
                                 qos.LATCHED)
        # Inference runs on its own thread, woken by each new frame pair: no polling timer
        # competing with the sim for the CPU, and the executor stays free for subscriptions.
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._worker_loop, name="detector-inference",
                                        daemon=True)
        self._worker.start()
        self.get_logger().info(f"detector ready; map_frame '{self.cfg.map_frame}', weights "
                               f"'{self.cfg.detector.weights or 'committed default'}'"
                               + ("; deterministic replay (every frame, in order)" if det else ""))

    # -- inputs
    def _on_tf(self, msg: TFMessage, static: bool) -> None:
        rejected = self._tf.add_tf_message(msg, static)
        if rejected:
            self.stats.degrade("tf_rejected", len(rejected), "; ".join(rejected))
        with self._inputs:
            self._inputs.notify_all()

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            self._undistort = undistorter_from_info(msg, self._undistort)
            self._log.clear("distortion")
        except InputError as exc:
            self._undistort = None
            self._log.error("distortion", f"head_camera/camera_info: {exc}; frames are processed "
                                          "without undistortion (boxes and 3D positions are off "
                                          "towards the image corners)")
        with self._inputs:
            self._info = msg
            self._inputs.notify_all()

    def _on_rgb(self, msg: Image) -> None:
        if msg.encoding != "rgb8":
            self._log.error("enc_rgb", f"head_camera/image_raw has encoding '{msg.encoding}'; "
                                       "publish rgb8 (3 x uint8, R first). Frames are skipped.")
            self.stats.drop("bad_encoding_rgb")
            return
        self.stats.received("rgb", stamp_to_sec(msg.header.stamp))
        self._offer(0, msg)

    def _on_depth(self, msg: Image) -> None:
        if msg.encoding not in DEPTH_ENCODINGS:
            self._log.error("enc_depth", f"head_camera/depth/image_raw has encoding "
                                         f"'{msg.encoding}'; publish 32FC1 depth in metres "
                                         "or 16UC1 in millimetres. Frames are skipped.")
            self.stats.drop("bad_encoding_depth")
            return
        self.stats.received("depth", stamp_to_sec(msg.header.stamp))
        self._offer(1, msg)

    def _offer(self, stream: int, msg: Image) -> None:
        matched = self._sync.add(stream, stamp_to_sec(msg.header.stamp), msg)
        self.stats.sync_unmatched(["rgb", "depth"], self._sync.unmatched)
        if matched is None:
            return
        stale = False
        with self._lock:
            if self.cfg.deterministic_replay:
                self._queue.append(_Frame(matched[0], matched[1]))
            else:
                stale = self._pending is not None
                if stale:
                    self.frames_dropped += 1  # a newer pair replaces it
                self._pending = _Frame(matched[0], matched[1])
            self.frames_in += 1
        if stale:
            self.stats.drop("stale", 1, "inference is slower than the camera; the newest "
                            "frame replaced one still waiting (live mode keeps only the newest)")
        self._event.set()

    # -- inference
    def _load_detector(self):
        """Load the weights now (start-up), so a missing or corrupt file stops the node.

        Raises:
            KatazukeError: naming the file and how to regenerate it (``katazuke train
                detector``); :func:`run_node` turns it into exit code 2.
        """
        from katazuke.perception.detection import Detector

        det = Detector(self.cfg.detector)
        ref = det.refiner
        self.get_logger().info(
            "detector loaded; categories re-scored by the crop classifier "
            f"'{ref.path}' (fusion weight {ref.fusion_weight})" if ref is not None else
            "detector loaded; no crop classifier (detector category head only)")
        return det

    def _worker_loop(self) -> None:
        while not self._stop.is_set():
            if not self._event.wait(timeout=0.2):
                continue
            self._event.clear()
            while not self._stop.is_set():
                with self._lock:
                    if self.cfg.deterministic_replay:
                        frame = self._queue.popleft() if self._queue else None
                    else:
                        frame, self._pending = self._pending, None
                if frame is None:
                    break
                try:
                    self._process(frame)
                except Exception as exc:  # keep the node alive; say what failed once
                    self.stats.drop("error", 1, f"{type(exc).__name__}: {exc}")
                    self._log.error("process", f"detection failed on a frame: "
                                               f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Stop the inference thread (run_node calls this before destroying the node)."""
        self._stop.set()
        self._event.set()
        with self._inputs:
            self._inputs.notify_all()
        if self._worker.is_alive() and self._worker is not threading.current_thread():
            self._worker.join(timeout=5.0)

    def _inputs_ready(self, rgb_msg: Image) -> bool:
        """camera_info and the tf chain are known at or after the frame's stamp."""
        t = stamp_to_sec(rgb_msg.header.stamp)
        info = self._info
        # A camera_info stamped 0 (some drivers) carries no time: any one will do.
        info_t = stamp_to_sec(info.header.stamp) if info is not None else -1.0
        return (info is not None and (info_t == 0.0 or info_t >= t)
                and self._tf.covers(self.cfg.map_frame, rgb_msg.header.frame_id, t))

    def _wait_for_inputs(self, rgb_msg: Image) -> None:
        """deterministic_replay: block until :meth:`_inputs_ready` or ``input_wait_s``."""
        deadline = time.monotonic() + self.cfg.input_wait_s
        with self._inputs:
            while not self._inputs_ready(rgb_msg) and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stats.degrade("inputs_incomplete", 1, (
                        f"frame {stamp_to_sec(rgb_msg.header.stamp):.3f} s: no camera_info and "
                        f"tf ({rgb_msg.header.frame_id} -> {self.cfg.map_frame}) at or after "
                        f"its stamp within {self.cfg.input_wait_s} s; processed with what "
                        "arrived (the replay may not be repeatable for this frame)"))
                    return
                self._inputs.wait(left)

    def _process(self, frame: _Frame) -> None:
        if self.cfg.deterministic_replay:
            self._wait_for_inputs(frame.rgb)
        det = self._detector
        rgb_msg, depth_msg = frame.rgb, frame.depth
        try:
            rgb = image_to_numpy(rgb_msg, "rgb8")
            depth = depth_to_metres(depth_msg)   # NaN = no return (16UC1 zeros too)
        except ValueError as exc:
            self._log.error("decode", f"cannot decode camera images: {exc}")
            self.stats.drop("decode", 1, str(exc))
            return
        if depth.shape != rgb.shape[:2]:
            self._log.error("size", f"depth is {depth.shape[1]}x{depth.shape[0]} but colour is "
                                    f"{rgb.shape[1]}x{rgb.shape[0]}; register depth to the colour "
                                    "camera at the same resolution. 3D positions are skipped.")
            depth = None
        K = None
        info = self._info
        if info is None:
            self._log.warn("info", "no head_camera/camera_info received yet; publish CameraInfo "
                                   "(K) for 3D positions. Publishing 2D detections only.")
        elif info.width != rgb.shape[1] or info.height != rgb.shape[0]:
            self._log.error("info_size", f"camera_info is {info.width}x{info.height} but the image "
                                         f"is {rgb.shape[1]}x{rgb.shape[0]}; 3D positions skipped.")
        else:
            K = np.asarray(info.k, float).reshape(3, 3)
            und = self._undistort
            if und is not None and not und.is_identity:
                # Lens distortion (CameraInfo.d != 0) is undone to the same K, so boxes and
                # back-projection stay pinhole; detections refer to the rectified image.
                rgb = und.rectify_rgb(rgb)
                if depth is not None:
                    depth = und.rectify_depth(depth)
        if det.uses_depth and depth is None:
            self._log.error("rgbd", "the detector weights are RGB-D and need a depth image "
                                    "registered to the colour image; frame skipped")
            self.stats.drop("no_depth_for_rgbd", 1)
            return
        t0 = time.perf_counter()
        dets = det.detect(rgb, depth if det.uses_depth else None)
        infer_ms = (time.perf_counter() - t0) * 1000.0
        stamp = stamp_to_sec(rgb_msg.header.stamp)
        T_map_cam, reason = self._tf.lookup(self.cfg.map_frame, rgb_msg.header.frame_id, stamp,
                                            self.cfg.tf_tolerance)
        if T_map_cam is None:
            self.stats.degrade("tf_lookup_failed", 1, (
                f"no transform {rgb_msg.header.frame_id} -> {self.cfg.map_frame}: {reason}; "
                "publish /tf (and /tf_static) or set map_frame. position_map is left unset."))
        out = DetectionArray()
        out.header = rgb_msg.header
        out.map_frame = self.cfg.map_frame
        out.image_width, out.image_height = rgb.shape[1], rgb.shape[0]
        out.inference_time_ms = float(infer_ms)
        for i, d in enumerate(dets):
            m = DetectionMsg()
            m.id = i
            m.x_min, m.y_min, m.width, m.height = (float(v) for v in d.box_xywh)
            m.objectness = float(d.objectness)
            m.category, m.category_score = d.category, float(d.category_score)
            m.category_names = list(d.category_names)
            m.category_scores = [float(s) for s in d.category_scores]
            if depth is not None and K is not None:
                r = box_to_3d(d.box_xywh, depth, K, self.cfg.centre_fraction, self.cfg.max_depth)
                if r is not None:
                    p, e = r
                    m.has_position = True
                    m.position_camera.x, m.position_camera.y, m.position_camera.z = (float(v) for v in p)
                    m.extent.x, m.extent.y, m.extent.z = (float(v) for v in e)
                    if T_map_cam is not None:
                        pm = T_map_cam[:3, :3] @ p + T_map_cam[:3, 3]
                        m.has_position_map = True
                        m.position_map.x, m.position_map.y, m.position_map.z = (float(v) for v in pm)
            out.detections.append(m)
        self._pub.publish(out)
        self._pub_2d.publish(detection2d_array_msg(out))
        self._pub_3d.publish(detection3d_array_msg(
            out, None if T_map_cam is None else T_map_cam[:3, :3]))
        # Drawing costs a few ms per frame: only when someone looks at it.
        if self.cfg.publish_image and self._pub_img.get_subscription_count() > 0:
            self._pub_img.publish(self._annotated(rgb_msg, rgb, dets))
        self.frames_done += 1
        self.stats.processed()

    def _annotated(self, src: Image, rgb: np.ndarray, dets) -> Image:
        from katazuke.perception.detection.viz import draw_detections

        boxes = np.array([[d.box_xywh[0], d.box_xywh[1], d.box_xywh[0] + d.box_xywh[2],
                           d.box_xywh[1] + d.box_xywh[3]] for d in dets]).reshape(-1, 4)
        img = draw_detections(rgb, boxes, [d.category for d in dets],
                              np.array([d.objectness for d in dets]))
        return image_from_numpy(img, "rgb8", src.header)


def main(args: list[str] | None = None) -> int:
    # On a shared, oversubscribed CPU, OpenMP threads that spin while waiting stall torch by
    # seconds per frame; passive waiting must be chosen before torch starts (the node loads
    # it when it is constructed).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return run_node(DetectorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
