"""The one numpy <-> ROS 2 message conversion module (images, depth, poses, object instances).

Nodes, benches and tests convert here and nowhere else. It imports message packages
(``sensor_msgs``, ``geometry_msgs``, ``std_msgs``, ``builtin_interfaces``, ``vision_msgs``,
``diagnostic_msgs``, ``katazuke_interfaces``) lazily per function, and never ``katazuke_ros``.

Depth "no return" convention (one rule, end to end):
    * **On the wire** depth is ``32FC1`` metres and a pixel without a return is **NaN**
      (REP 118). :func:`depth_to_msg` writes NaN for every pixel that is not a positive,
      finite range: the simulator's ``inf`` (ray hit nothing) and ``0`` become NaN.
      Hardware may also publish ``16UC1`` millimetres, where ``0`` is no return.
    * **Decoding** (:func:`depth_to_metres`) gives ``(H, W)`` float32 metres with NaN for
      no return: ``16UC1`` zeros become NaN; ``32FC1`` values pass through as sent (a
      driver's REP 118 ``+inf`` "beyond range" keeps its meaning).
    * **Libraries** (``katazuke.perception``, ``katazuke.sim``) accept NaN, ``inf`` and
      ``0`` as "no measurement"; the object map additionally reads ``+inf`` as free space.

Images: ``msg.data`` is filled with an ``array('B')``, rclpy's fast path for ``uint8[]``
(a ``bytes`` or list value is checked element by element). Decoding returns a view of the
message buffer when the rows are unpadded (read-only), else a compact copy.
"""
from __future__ import annotations

import array
from typing import Any

import numpy as np

from katazuke.errors import InputError
from katazuke.geometry import (matrix_to_quat, normalize_quaternion, pose_to_matrix,
                               yaw_from_quaternion, yaw_to_quat)

__all__ = ["ENCODINGS", "DEPTH_ENCODINGS", "header", "stamp_to_sec", "sec_to_stamp", "image_from_numpy",
           "image_to_numpy", "depth_to_metres", "depth_to_msg", "camera_info_msg", "undistorter_from_info", "pose_msg",
           "transform_stamped", "matrix_from_pose_msg", "pose_xyyaw", "instance_msg",
           "instance_to_msg", "detection2d_array_msg", "detection3d_array_msg", "label_info_msg",
           "planar_odometry_msg", "joint_state_msg", "controller_diagnostic_status",
           "diagnostic_array_msg"]

#: encoding -> (channels, dtype) for the encodings this module reads and writes.
ENCODINGS: dict[str, tuple[int, np.dtype]] = {
    "rgb8": (3, np.dtype(np.uint8)), "bgr8": (3, np.dtype(np.uint8)),
    "rgba8": (4, np.dtype(np.uint8)), "bgra8": (4, np.dtype(np.uint8)),
    "mono8": (1, np.dtype(np.uint8)), "8UC1": (1, np.dtype(np.uint8)),
    "mono16": (1, np.dtype(np.uint16)), "16UC1": (1, np.dtype(np.uint16)),
    "32FC1": (1, np.dtype(np.float32)),
}
#: the depth encodings :func:`depth_to_metres` reads.
DEPTH_ENCODINGS = ("32FC1", "16UC1")


# ------------------------------------------------------------------------- time, header
def stamp_to_sec(stamp: Any) -> float:
    """``builtin_interfaces/Time`` -> float seconds."""
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def sec_to_stamp(t: float) -> Any:
    """Float seconds -> ``builtin_interfaces/Time`` (nanoseconds rounded, carried into sec)."""
    from builtin_interfaces.msg import Time

    sec = int(t // 1)
    nsec = int(round((t - sec) * 1e9))
    if nsec >= 1_000_000_000:
        sec, nsec = sec + 1, nsec - 1_000_000_000
    return Time(sec=sec, nanosec=nsec)


def header(stamp: Any, frame_id: str) -> Any:
    """``std_msgs/Header`` from a ``builtin_interfaces/Time`` (or float seconds) and a frame."""
    from std_msgs.msg import Header

    if isinstance(stamp, (int, float)):
        stamp = sec_to_stamp(float(stamp))
    return Header(stamp=stamp, frame_id=frame_id)


# ------------------------------------------------------------------------- images
def image_from_numpy(image: np.ndarray, encoding: str, header: Any = None) -> Any:
    """``sensor_msgs/Image`` from an array (little-endian, unpadded rows).

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array whose channels and dtype match ``encoding``
            (``rgb8``: ``(H, W, 3)`` uint8; ``32FC1``: ``(H, W)`` float32 metres; ...).
            Extra colour channels are not dropped: pass ``rgba[..., :3]`` for ``rgb8``.
        encoding: one of :data:`ENCODINGS`.
        header: ``std_msgs/Header`` to copy in (see :func:`header`); default empty.

    Raises:
        InputError: unknown encoding, or the shape/dtype does not fit it.
    """
    from sensor_msgs.msg import Image

    channels, dtype = _encoding(encoding)
    a = np.asarray(image)
    shape_ok = (a.ndim == 2 and channels == 1) or (a.ndim == 3 and a.shape[2] == channels)
    if not shape_ok:
        raise InputError(f"image of shape {a.shape} does not fit {encoding} ({channels} "
                         f"channel(s)); give (H, W{'' if channels == 1 else f', {channels}'})")
    if a.dtype != dtype:
        if not np.can_cast(a.dtype, dtype, "same_kind") or (a.dtype.kind == "f" and dtype.kind != "f"):
            raise InputError(f"image dtype {a.dtype} does not fit {encoding} ({dtype}); convert first")
        a = a.astype(dtype)
    a = np.ascontiguousarray(a, dtype=dtype.newbyteorder("<"))
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(a.shape[0]), int(a.shape[1])
    msg.encoding, msg.is_bigendian = encoding, 0
    msg.step = msg.width * channels * dtype.itemsize
    msg.data = array.array("B", a.tobytes())
    return msg


def image_to_numpy(msg: Any, encoding: str | None = None) -> np.ndarray:
    """``sensor_msgs/Image`` -> ``(H, W)`` or ``(H, W, C)`` array in native byte order.

    Args:
        msg: the image; row padding (``step`` beyond ``width * C * itemsize``) is removed.
        encoding: if given, the encoding the caller expects.

    Raises:
        InputError (a ``ValueError``): the encoding differs from ``encoding`` or is not in
            :data:`ENCODINGS`, or ``data`` is too short for ``height * step``.
    """
    if encoding is not None and msg.encoding != encoding:
        raise InputError(f"encoding is '{msg.encoding}', expected '{encoding}'")
    channels, dtype = _encoding(msg.encoding)
    row = msg.width * channels * dtype.itemsize
    if msg.step < row or len(msg.data) < msg.step * msg.height:
        raise InputError(f"data of {len(msg.data)} bytes / step {msg.step} too small for "
                         f"{msg.width}x{msg.height} {msg.encoding}")
    buf = np.frombuffer(msg.data, np.uint8)[:msg.step * msg.height].reshape(msg.height, msg.step)[:, :row]
    arr = np.ascontiguousarray(buf).view(dtype.newbyteorder(">" if msg.is_bigendian else "<"))
    arr = arr.astype(dtype, copy=False)
    return arr.reshape(msg.height, msg.width, channels) if channels > 1 else arr.reshape(msg.height, msg.width)


def depth_to_metres(msg: Any) -> np.ndarray:
    """Depth image -> ``(H, W)`` float32 metres, NaN where there is no return.

    Accepts ``32FC1`` (metres, passed through as sent) and ``16UC1`` (millimetres; 0 means
    no return and becomes NaN). See the module docstring for the convention.

    Raises:
        InputError: another encoding (the message says which to publish), or a buffer that
            does not fit the header.
    """
    if msg.encoding not in DEPTH_ENCODINGS:
        raise InputError(f"depth encoding is '{msg.encoding}'; publish 32FC1 (metres, NaN = no "
                         "return, REP 118) or 16UC1 (millimetres, 0 = no return)")
    d = image_to_numpy(msg)
    if msg.encoding == "16UC1":
        raw = d
        d = raw.astype(np.float32)
        d *= np.float32(0.001)
        d[raw == 0] = np.nan
    return d


def depth_to_msg(depth_m: np.ndarray, header: Any = None) -> Any:
    """``32FC1`` depth image (REP 118) from ``(H, W)`` metres.

    Every pixel that is not a positive finite range (``inf``, ``0``, negative, NaN) is
    written as NaN: "no return" on the wire is NaN.

    Raises:
        InputError: ``depth_m`` is not two-dimensional.
    """
    d = np.asarray(depth_m, dtype=np.float32)
    if d.ndim != 2:
        raise InputError(f"depth has shape {d.shape}; give (H, W) metres")
    d = d.copy()
    d[~np.isfinite(d) | (d <= 0.0)] = np.nan
    return image_from_numpy(d, "32FC1", header)


def camera_info_msg(K: np.ndarray, width: int, height: int, header: Any = None) -> Any:
    """``sensor_msgs/CameraInfo`` of an undistorted pinhole camera (``plumb_bob``, zero D).

    Args:
        K: ``(3, 3)`` intrinsics (pixels). ``P = [K | 0]``, ``R = I``.
        width, height: image size (pixels).
    """
    from sensor_msgs.msg import CameraInfo

    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise InputError(f"K has shape {K.shape}; give the (3, 3) intrinsics matrix")
    info = CameraInfo()
    if header is not None:
        info.header = header
    info.height, info.width = int(height), int(width)
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = [float(v) for v in K.reshape(-1)]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    P = np.zeros((3, 4))
    P[:, :3] = K
    info.p = [float(v) for v in P.reshape(-1)]
    return info


def undistorter_from_info(info: Any, previous: Any = None) -> Any:
    """The :class:`katazuke.perception.camera.Undistorter` for a ``CameraInfo``.

    Args:
        info: ``sensor_msgs/CameraInfo`` (``k``, ``d``, ``distortion_model``, size).
        previous: the undistorter built for an earlier message; returned as is when the
            camera model did not change (the remap tables are built once per camera).

    Raises:
        InputError: a model or coefficient count :class:`Undistorter` cannot handle.
    """
    from katazuke.perception.camera import Undistorter

    K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    D = np.asarray(info.d, dtype=np.float64)
    model = info.distortion_model or "plumb_bob"
    if (previous is not None and previous.size == (info.width, info.height)
            and previous.model == model and np.array_equal(previous.K, K)
            and np.array_equal(previous.D, D)):
        return previous
    return Undistorter(K, D, info.width, info.height, model)


# ------------------------------------------------------------------------- poses

def pose_msg(T: np.ndarray) -> Any:
    """``geometry_msgs/Pose`` from a ``(4, 4)`` pose (orientation with ``w >= 0``)."""
    from geometry_msgs.msg import Pose

    T = np.asarray(T, dtype=np.float64)
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(v) for v in T[:3, 3])
    (p.orientation.x, p.orientation.y, p.orientation.z,
     p.orientation.w) = (float(v) for v in matrix_to_quat(T[:3, :3]))
    return p


def transform_stamped(T: np.ndarray, parent: str, child: str, stamp: Any) -> Any:
    """``geometry_msgs/TransformStamped`` carrying ``T_parent_child`` ``(4, 4)``.

    Args:
        T: maps ``child``-frame points into the ``parent`` frame.
        stamp: ``builtin_interfaces/Time``.
    """
    from geometry_msgs.msg import TransformStamped

    T = np.asarray(T, dtype=np.float64)
    t = TransformStamped()
    t.header.stamp = stamp
    t.header.frame_id = parent
    t.child_frame_id = child
    tr, r = t.transform.translation, t.transform.rotation
    tr.x, tr.y, tr.z = (float(v) for v in T[:3, 3])
    r.x, r.y, r.z, r.w = (float(v) for v in matrix_to_quat(T[:3, :3]))
    return t


def matrix_from_pose_msg(pose: Any) -> np.ndarray:
    """``(4, 4)`` pose from a ``geometry_msgs/Pose`` (or ``Transform``; quaternion normalised).

    Raises:
        InputError: the orientation is zero or not finite.
    """
    if hasattr(pose, "position"):
        p, q = pose.position, pose.orientation
    else:
        p, q = pose.translation, pose.rotation
    return pose_to_matrix([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])


def pose_xyyaw(pose: Any) -> tuple[float, float, float]:
    """``(x, y, yaw)`` (m, m, rad) of a ``geometry_msgs/Pose``: its planar part."""
    p, q = pose.position, pose.orientation
    return float(p.x), float(p.y), float(yaw_from_quaternion(q.x, q.y, q.z, q.w))


# ------------------------------------------------------------------------- object instances
def instance_msg(id: int, category: str, confidence: float, position: Any, extent: Any,
                 first_seen: Any, last_seen: Any, observations: int = 0,
                 destination: str = "", *, kind: str | None = None,
                 orientation_xyzw: Any = None, dominant_color: str | None = None,
                 dominant_color_rgb: Any = None) -> Any:
    """``katazuke_interfaces/ObjectInstance``.

    Args:
        id: instance id (uint32). category: category name. confidence: in [0, 1].
        position: ``(3,)`` centre in the map frame (m). extent: ``(3,)`` box size (m).
        first_seen, last_seen: ``builtin_interfaces/Time`` or float seconds.
        observations: how many detections were fused into it. destination: where it goes.
        kind: finer object kind (e.g. ``"mug"``); left unset (``""``) when None.
        orientation_xyzw: ``(4,)`` box orientation; sets ``has_orientation``. None: the
            identity placeholder with ``has_orientation`` false.
        dominant_color: colour name; dominant_color_rgb: ``(3,)`` r, g, b in [0, 1]
            (``a`` = 1). None: unknown (left empty / all zeros).
    """
    from katazuke_interfaces.msg import ObjectInstance

    m = ObjectInstance()
    m.id = int(id)
    m.category = str(category)
    m.confidence = float(confidence)
    m.position.x, m.position.y, m.position.z = (float(v) for v in position)
    m.extent.x, m.extent.y, m.extent.z = (float(v) for v in extent)
    m.first_seen = sec_to_stamp(first_seen) if isinstance(first_seen, (int, float)) else first_seen
    m.last_seen = sec_to_stamp(last_seen) if isinstance(last_seen, (int, float)) else last_seen
    m.observations = int(observations)
    m.destination = str(destination)
    if kind is not None:
        m.kind = str(kind)
    if orientation_xyzw is not None:
        q = normalize_quaternion(orientation_xyzw)
        m.orientation.x, m.orientation.y, m.orientation.z, m.orientation.w = (float(v) for v in q)
        m.has_orientation = True
    if dominant_color is not None:
        m.dominant_color = str(dominant_color)
    if dominant_color_rgb is not None:
        c = m.dominant_color_rgb
        c.r, c.g, c.b = (float(v) for v in dominant_color_rgb)
        c.a = 1.0
    return m


def instance_to_msg(inst: Any, destination: str) -> Any:
    """``katazuke_interfaces/ObjectInstance`` of an object-map
    :class:`katazuke.perception.objectmap.Instance` (times in seconds)."""
    return instance_msg(inst.id, inst.category, inst.confidence, inst.position, inst.extent,
                        float(inst.first_seen), float(inst.last_seen), inst.observations, destination)


def _encoding(encoding: str) -> tuple[int, np.dtype]:
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise InputError(f"image encoding '{encoding}' is not supported; use one of "
                         f"{sorted(ENCODINGS)}") from None


# ------------------------------------------------------------------------- vision_msgs
# The detector publishes its native katazuke_interfaces/DetectionArray and, built from it
# here, the standard vision_msgs arrays: one Detection2D / Detection3D per Detection, the
# same box, with ``id == str(Detection.id)``.
def _hypotheses(det: Any) -> list[tuple[str, float]]:
    """``(class_id, score)`` of a ``katazuke_interfaces/Detection``, best first.

    ``score = objectness * p(category)``: the probability that the box is an object of that
    category under the detector's factorisation, so the scores sum to the objectness. The
    detection's own ``category`` comes first.
    """
    obj = float(det.objectness)
    pairs = [(str(n), obj * float(s)) for n, s in zip(det.category_names, det.category_scores)]
    if not pairs:
        return [(str(det.category), obj * float(det.category_score))]
    pairs.sort(key=lambda p: (p[0] != det.category, -p[1]))
    return pairs


def detection2d_array_msg(detections: Any) -> Any:
    """``vision_msgs/Detection2DArray`` of a ``katazuke_interfaces/DetectionArray``.

    Args:
        detections: the native array (header = the source image's, pixels for boxes).

    Returns:
        One ``Detection2D`` per detection, in order: ``bbox.center`` = box centre (pixels,
        ``theta`` 0), ``bbox.size_x/size_y`` = width/height (pixels), ``id`` = ``str(id)``,
        ``results`` = every category (``class_id`` = category name, ``score`` =
        objectness x category probability, best first) with ``pose`` = the box centre in
        the camera optical frame (m) when the detection has a 3-D position, else zeros.
    """
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    out = Detection2DArray()
    out.header = detections.header
    for d in detections.detections:
        m = Detection2D()
        m.header = detections.header
        m.id = str(int(d.id))
        m.bbox.center.position.x = float(d.x_min) + 0.5 * float(d.width)
        m.bbox.center.position.y = float(d.y_min) + 0.5 * float(d.height)
        m.bbox.center.theta = 0.0
        m.bbox.size_x, m.bbox.size_y = float(d.width), float(d.height)
        for cls, score in _hypotheses(d):
            h = ObjectHypothesisWithPose()
            h.hypothesis.class_id, h.hypothesis.score = cls, float(score)
            if d.has_position:
                p = h.pose.pose.position
                p.x, p.y, p.z = d.position_camera.x, d.position_camera.y, d.position_camera.z
            m.results.append(h)
        out.detections.append(m)
    return out


def detection3d_array_msg(detections: Any, R_map_cam: np.ndarray | None = None) -> Any:
    """``vision_msgs/Detection3DArray`` of a ``katazuke_interfaces/DetectionArray``.

    The 3-D box is the one the detector estimates: centre = the detection's 3-D position,
    size = its ``extent``, axes = the camera optical axes (the extent is measured along them).

    Args:
        detections: the native array; only detections with ``has_position`` are converted.
        R_map_cam: ``(3, 3)`` rotation camera optical frame -> ``detections.map_frame`` used
            for ``position_map``. Given: the array is in the map frame (``header.frame_id =
            map_frame``, centre = ``position_map``, orientation = ``R_map_cam``; detections
            without ``has_position_map`` are left out). None: the camera optical frame
            (centre = ``position_camera``, identity orientation).

    Returns:
        One ``Detection3D`` per converted detection, ``id`` = ``str(Detection.id)``,
        ``results`` as in :func:`detection2d_array_msg` with ``pose`` = the box centre.

    Raises:
        InputError: ``R_map_cam`` is not a ``(3, 3)`` finite matrix.
    """
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

    out = Detection3DArray()
    out.header.stamp = detections.header.stamp
    q = (0.0, 0.0, 0.0, 1.0)
    in_map = R_map_cam is not None
    if in_map:
        R = np.asarray(R_map_cam, dtype=np.float64)
        if R.shape != (3, 3) or not np.all(np.isfinite(R)):
            raise InputError(f"R_map_cam must be a finite (3, 3) rotation; got shape {R.shape}")
        q = tuple(float(v) for v in matrix_to_quat(R))
        out.header.frame_id = detections.map_frame
    else:
        out.header.frame_id = detections.header.frame_id
    for d in detections.detections:
        if not d.has_position or (in_map and not d.has_position_map):
            continue
        c = d.position_map if in_map else d.position_camera
        m = Detection3D()
        m.header = out.header
        m.id = str(int(d.id))
        m.bbox.center.position.x, m.bbox.center.position.y, m.bbox.center.position.z = c.x, c.y, c.z
        o = m.bbox.center.orientation
        o.x, o.y, o.z, o.w = q
        m.bbox.size.x, m.bbox.size.y, m.bbox.size.z = d.extent.x, d.extent.y, d.extent.z
        for cls, score in _hypotheses(d):
            h = ObjectHypothesisWithPose()
            h.hypothesis.class_id, h.hypothesis.score = cls, float(score)
            h.pose.pose = m.bbox.center
            m.results.append(h)
        out.detections.append(m)
    return out


def label_info_msg(class_names: Any, threshold: float, header: Any = None) -> Any:
    """``vision_msgs/LabelInfo``: ``class_id`` k <-> ``class_names[k]`` and the score threshold.

    Args:
        class_names: the detector's category names in order (the 6 categories, then
            ``"unknown"``); ``class_id`` is the index, ``ObjectHypothesis.class_id`` the name.
        threshold: objectness threshold in [0, 1] below which no detection is published.
        header: ``std_msgs/Header`` to copy in; default empty.
    """
    from vision_msgs.msg import LabelInfo, VisionClass

    m = LabelInfo()
    if header is not None:
        m.header = header
    m.class_map = [VisionClass(class_id=k, class_name=str(n)) for k, n in enumerate(class_names)]
    m.threshold = float(threshold)
    return m


# ------------------------------------------------------------------------- robot state
def planar_odometry_msg(x: float, y: float, yaw: float, vx: float, vy: float, wz: float,
                        header: Any, child_frame_id: str, pose_covariance: Any = None,
                        twist_covariance: Any = None) -> Any:
    """``nav_msgs/Odometry`` of a planar base.

    Args:
        x, y, yaw: pose of ``child_frame_id`` in ``header.frame_id`` (m, m, rad; z = 0).
        vx, vy, wz: twist in ``child_frame_id`` (m/s, m/s, rad/s).
        header: ``std_msgs/Header`` (stamp, odometry frame).
        pose_covariance, twist_covariance: ``(6, 6)`` or 36 numbers, row-major over
            ``x, y, z, roll, pitch, yaw``; default zeros.
    """
    from nav_msgs.msg import Odometry

    m = Odometry(header=header, child_frame_id=child_frame_id)
    p = m.pose.pose
    p.position.x, p.position.y = float(x), float(y)
    (p.orientation.x, p.orientation.y, p.orientation.z,
     p.orientation.w) = (float(v) for v in yaw_to_quat(yaw))
    m.twist.twist.linear.x, m.twist.twist.linear.y = float(vx), float(vy)
    m.twist.twist.angular.z = float(wz)
    if pose_covariance is not None:
        m.pose.covariance = [float(v) for v in np.asarray(pose_covariance).reshape(36)]
    if twist_covariance is not None:
        m.twist.covariance = [float(v) for v in np.asarray(twist_covariance).reshape(36)]
    return m


def joint_state_msg(names: Any, positions: Any, velocities: Any = (), efforts: Any = (),
                    header: Any = None) -> Any:
    """``sensor_msgs/JointState``: ``positions`` (rad or m), ``velocities``, ``efforts``
    (N m or N) aligned with ``names`` (velocities/efforts may be empty)."""
    from sensor_msgs.msg import JointState

    m = JointState(name=[str(n) for n in names])
    if header is not None:
        m.header = header
    m.position = [float(v) for v in positions]
    m.velocity = [float(v) for v in velocities]
    m.effort = [float(v) for v in efforts]
    return m


# ------------------------------------------------------------------------- diagnostics
#: the ControllerDiagnostics fields copied into DiagnosticStatus.values, in this order.
_CONTROLLER_VALUES = ("mode", "requested_mode", "tracking_error", "stage_cost", "cumulative_cost",
                      "disturbance_norm", "state_norm", "saturated", "estopped",
                      "fallback_active", "fallback_reason")


def controller_diagnostic_status(d: Any, node_name: str = "controller") -> Any:
    """``diagnostic_msgs/DiagnosticStatus`` of one ``katazuke_interfaces/ControllerDiagnostics``.

    Args:
        d: the controller's per-subsystem diagnostics (``header.frame_id`` = ``"base"`` or
            ``"arm"``).
        node_name: first part of the status name (``"<node_name>: <subsystem>"``).

    Returns:
        ``level`` WARN while the e-stop is active, the GPC guard has fallen back to LQR, or no
        control step ran (``mode == "stopped"``, e.g. stale odometry), else OK; ``message``
        = the effective mode, plus the reason when not OK; ``values`` = every field of ``d``
        as strings (floats with 6 significant digits; the units are those of
        ControllerDiagnostics.msg: tracking_error m (base) or rad (arm), costs dimensionless).
    """
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    s = DiagnosticStatus()
    sub = d.header.frame_id or "base"
    s.name = f"{node_name}: {sub}"
    s.hardware_id = sub
    warn = bool(d.estopped) or bool(d.fallback_active) or d.mode == "stopped"
    s.level = DiagnosticStatus.WARN if warn else DiagnosticStatus.OK
    reason = "emergency stop" if d.estopped else (d.fallback_reason or "")
    s.message = f"{d.mode}" + (f": {reason}" if warn and reason else "")
    for key in _CONTROLLER_VALUES:
        v = getattr(d, key)
        if isinstance(v, bool):
            text = "true" if v else "false"
        else:
            text = f"{v:.6g}" if isinstance(v, float) else str(v)
        s.values.append(KeyValue(key=key, value=text))
    return s


def diagnostic_array_msg(statuses: Any, stamp: Any) -> Any:
    """``diagnostic_msgs/DiagnosticArray`` holding ``statuses`` (stamp: ``Time`` or seconds)."""
    from diagnostic_msgs.msg import DiagnosticArray

    out = DiagnosticArray()
    out.header = header(stamp, "")
    out.status = list(statuses)
    return out
