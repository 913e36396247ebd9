"""Ground-truth publishing of the ``sim_bridge`` node (evaluation only, never for algorithms).

Topics (relative, so a namespace applies; frame ``map_frame``):
    sim/ground_truth/base_pose    geometry_msgs/PoseStamped: true base pose, every step (STATE)
    sim/ground_truth/objects      katazuke_interfaces/ObjectMap: every object in the room with
                                  its kind, category, true box and destination (LATCHED)
    sim/ground_truth/containers   katazuke_interfaces/ObjectMap: the containers, destination
                                  ``"<id>:<colour>"`` (LATCHED)
    sim/ground_truth/markers      visualization_msgs/MarkerArray: boxes of objects, containers,
                                  walls, table and shelf for RViz (LATCHED)
"""
from __future__ import annotations

from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from visualization_msgs.msg import Marker, MarkerArray

from katazuke.geometry import matrix_to_quat, se2_to_matrix
from katazuke.ros.conversions import header, instance_msg, pose_msg
from katazuke_interfaces.msg import ObjectMap
from katazuke_ros import qos

__all__ = ["GroundTruthPublisher", "box_marker"]

_COLOURS = {"red": (0.85, 0.12, 0.1), "blue": (0.1, 0.25, 0.9), "green": (0.1, 0.7, 0.2),
            "yellow": (0.95, 0.8, 0.1)}
_CATEGORY_COLOURS = {"toy": (1.0, 0.45, 0.7), "kitchenware": (0.3, 0.6, 1.0),
                     "stationery": (0.4, 0.85, 0.4), "bottle": (0.2, 0.8, 0.9),
                     "box": (1.0, 0.75, 0.2), "soft": (0.95, 0.4, 0.4)}
_ROOM_RGB = (0.55, 0.5, 0.45)


class GroundTruthPublisher:
    """Publishes the simulator's ground truth under ``sim/ground_truth/``.

    Args:
        node: the bridge node that owns the publishers.
        env: the simulator (:class:`katazuke.sim.TidyEnv` API): ``base_pose()``,
            ``ground_truth_objects()``; optional ``containers`` and ``room_boxes()``.
        map_frame: frame id of every message (the world frame).
    """

    def __init__(self, node: Node, env: Any, map_frame: str) -> None:
        self.env, self.frame = env, map_frame
        self._pose_pub = node.create_publisher(PoseStamped, "sim/ground_truth/base_pose",
                                               qos.STATE)
        self._objects_pub = node.create_publisher(ObjectMap, "sim/ground_truth/objects",
                                                  qos.LATCHED)
        self._containers_pub = node.create_publisher(ObjectMap, "sim/ground_truth/containers",
                                                     qos.LATCHED)
        self._markers_pub = node.create_publisher(MarkerArray, "sim/ground_truth/markers",
                                                  qos.LATCHED)

    def publish_pose(self, stamp: Time) -> None:
        """The true base pose (planar: z = 0, yaw only)."""
        ps = PoseStamped(header=header(stamp, self.frame))
        ps.pose = pose_msg(se2_to_matrix(*(float(v) for v in self.env.base_pose())))
        self._pose_pub.publish(ps)

    def publish_maps(self, stamp: Time) -> None:
        """The object and container maps and their markers (all with ``stamp``)."""
        frame = self.frame
        objects = ObjectMap(header=header(stamp, frame))
        clear = Marker()
        clear.action = Marker.DELETEALL
        markers = MarkerArray(markers=[clear])
        for i, o in enumerate(self.env.ground_truth_objects()):
            T = np.asarray(o.T_world_obj, dtype=np.float64)
            ext = np.asarray(o.extent, dtype=np.float64)
            inst = instance_msg(_uint_id(o.id, i), o.category, 1.0, T[:3, 3], ext, stamp, stamp,
                                observations=0, destination=str(o.container or ""),
                                kind=str(o.kind), orientation_xyzw=matrix_to_quat(T[:3, :3]))
            objects.objects.append(inst)
            markers.markers.append(box_marker(stamp, frame, "objects", inst.id, T, ext,
                                              f"{o.kind} ({o.category}) -> {inst.destination}",
                                              _CATEGORY_COLOURS.get(inst.category)))
        containers = ObjectMap(header=header(stamp, frame))
        for i, c in enumerate(getattr(self.env, "containers", [])):
            T = np.asarray(c.T_world_container, dtype=np.float64)
            ext = np.asarray(c.extent, dtype=np.float64)
            colour = getattr(c, "colour", "")
            containers.objects.append(instance_msg(i, "container", 1.0, T[:3, 3], ext, stamp,
                                                   stamp, destination=f"{c.id}:{colour}",
                                                   orientation_xyzw=matrix_to_quat(T[:3, :3]),
                                                   dominant_color=colour or None,
                                                   dominant_color_rgb=_COLOURS.get(colour)))
            markers.markers.append(box_marker(stamp, frame, "containers", i, T, ext,
                                              f"{c.id} ({colour})", _COLOURS.get(colour)))
        if hasattr(self.env, "room_boxes"):
            for k, (name, lo, hi) in enumerate(self.env.room_boxes()):
                T = np.eye(4)
                T[:3, 3] = 0.5 * (lo + hi)
                markers.markers.append(box_marker(stamp, frame, "room", k, T, hi - lo, name,
                                                  _ROOM_RGB))
        self._objects_pub.publish(objects)
        self._containers_pub.publish(containers)
        self._markers_pub.publish(markers)


def _uint_id(value: Any, fallback: int) -> int:
    try:
        v = int(value)
        return v if 0 <= v < 2 ** 32 else fallback
    except (TypeError, ValueError):
        return fallback


def box_marker(stamp: Time, frame: str, ns: str, mid: int, T: np.ndarray, ext: np.ndarray,
               text: str, rgb: tuple[float, float, float] | None = None) -> Marker:
    """A ``CUBE`` marker of a box.

    Args:
        stamp, frame: header of the marker.
        ns, mid: marker namespace and id.
        T: ``(4, 4)`` pose of the box centre in ``frame``.
        ext: ``(3,)`` box size, m (at least 1 mm is drawn).
        text: the marker's text.
        rgb: colour in [0, 1] (grey when None); objects are drawn more opaque.
    """
    m = Marker(header=header(stamp, frame))
    m.ns, m.id, m.type, m.action = ns, int(mid), Marker.CUBE, Marker.ADD
    m.pose = pose_msg(T)
    m.scale.x, m.scale.y, m.scale.z = (max(float(v), 1e-3) for v in ext)
    m.color.r, m.color.g, m.color.b = rgb or (0.6, 0.6, 0.6)
    m.color.a = 0.9 if ns == "objects" else 0.6
    m.text = text
    return m
