"""object_map: fuses ``detections`` into a latched ``object_map`` and answers ``where_is``.

Subscribes: ``detections`` (katazuke_interfaces/DetectionArray, EVENTS QoS),
``head_camera/depth/image_raw`` (32FC1 m or 16UC1 mm) and ``head_camera/camera_info`` (SENSOR QoS),
``/tf`` + ``/tf_static``. The depth image nearest in time to each DetectionArray, the
intrinsics and ``T_map_cam`` from tf form the :class:`CameraView` that lets the map forget
objects a view should show but does not; without them the map only adds and merges.
Publishes ``object_map`` (katazuke_interfaces/ObjectMap, LATCHED QoS) after every update.
Serves ``where_is`` (katazuke_interfaces/srv/WhereIs).
"""
from __future__ import annotations

from collections import deque

import numpy as np
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
from katazuke_ros.tf_buffer import TransformBuffer
from katazuke_ros.node_utils import LogOnce, declare_config, run_node, stamp_to_sec

__all__ = ["ObjectMapNode", "ObjectMapNodeConfig", "main"]


@kdataclass(frozen=True)
class ObjectMapNodeConfig:
    """Parameters of the object map node (fusion settings under ``map.``)."""

    depth_slop: float = kfield(default=0.05, metadata={
        "help": "s; a depth image within this of a DetectionArray's stamp is its view"})
    tf_tolerance: float = kfield(default=0.2, metadata={"help": "s; tf lookup tolerance"})
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
        self._pub = self.create_publisher(ObjectMapMsg, "object_map", qos.LATCHED)
        self.create_subscription(DetectionArray, "detections", self._on_detections, qos.EVENTS)
        self.create_subscription(Image, "head_camera/depth/image_raw", self._on_depth, qos.SENSOR)
        self.create_subscription(CameraInfo, "head_camera/camera_info", self._on_info, qos.SENSOR)
        self.create_subscription(TFMessage, "/tf", lambda m: self._tf.add_tf_message(m, False), qos.STATE)
        self.create_subscription(TFMessage, "/tf_static", lambda m: self._tf.add_tf_message(m, True),
                                 qos.LATCHED)
        self.create_service(WhereIs, "where_is", self._on_where_is)

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            self._undistort = undistorter_from_info(msg, self._undistort)
            self._log.clear("distortion")
        except InputError as exc:
            self._undistort = None
            self._log.error("distortion", f"head_camera/camera_info: {exc}; depth is used "
                                          "without undistortion for forgetting objects")
        self._info = msg

    def _on_depth(self, msg: Image) -> None:
        if msg.encoding not in DEPTH_ENCODINGS:
            self._log.error("enc_depth", f"depth encoding '{msg.encoding}'; publish 32FC1 metres "
                                         "or 16UC1 millimetres (without depth the map cannot "
                                         "forget objects)")
            return
        self._depths.append((stamp_to_sec(msg.header.stamp), msg))

    def _view_for(self, msg: DetectionArray) -> CameraView | None:
        t = stamp_to_sec(msg.header.stamp)
        info = self._info
        cands = [(abs(ts - t), m) for ts, m in list(self._depths)]
        if info is None or not cands:
            self._log.warn("view", "no camera_info/depth yet: objects are added but not forgotten")
            return None
        dt, dmsg = min(cands, key=lambda c: c[0])
        if dt > self.cfg.depth_slop:
            return None
        T, reason = self._tf.lookup(msg.map_frame, msg.header.frame_id, t, self.cfg.tf_tolerance)
        if T is None:
            self._log.warn("tf_view", f"no camera pose for forgetting: {reason}")
            return None
        try:
            depth = depth_to_metres(dmsg)
            if self._undistort is not None and not self._undistort.is_identity:
                depth = self._undistort.rectify_depth(depth)   # same rectified image as the detector
        except ValueError as exc:
            self._log.error("decode", f"cannot decode depth: {exc}")
            return None
        return CameraView(T, np.asarray(info.k, float).reshape(3, 3), depth)

    def _on_detections(self, msg: DetectionArray) -> None:
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
        self.map.update(stamp_to_sec(msg.header.stamp), obs, view)
        self._frame = msg.map_frame
        self._pub.publish(self._map_msg(msg.header.stamp))
        self.updates += 1

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
