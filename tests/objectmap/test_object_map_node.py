"""The ``object_map`` node for real: DetectionArray in, latched ObjectMap out, WhereIs served."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.testing import start_node, stop_node, wait_for

pytestmark = pytest.mark.ros


CATS = ["toy", "kitchenware", "stationery", "bottle", "box", "soft", "unknown"]


def _detection(pos, cat):
    from katazuke_interfaces.msg import Detection

    d = Detection()
    d.objectness = 0.9
    d.category = cat
    d.category_score = 0.9
    d.category_names = CATS
    scores = np.full(7, 0.1 / 6)
    scores[CATS.index(cat)] = 0.9
    d.category_scores = scores.tolist()
    d.has_position = d.has_position_map = True
    d.position_map.x, d.position_map.y, d.position_map.z = pos
    d.extent.x = d.extent.y = d.extent.z = 0.08
    return d


def test_object_map_node(ros_context):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from katazuke_interfaces.msg import DetectionArray, ObjectMap
    from katazuke_interfaces.srv import WhereIs
    from katazuke_ros import qos
    from katazuke_ros.node_utils import sec_to_stamp

    proc = start_node("object_map", "-r", "__ns:=/om", "-p",
                  "map.near_distance:=1.0")
    node = rclpy.create_node("object_map_tester", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    pub = node.create_publisher(DetectionArray, "/om/detections", qos.EVENTS)
    maps: list[ObjectMap] = []
    node.create_subscription(ObjectMap, "/om/object_map", maps.append, qos.LATCHED)
    client = node.create_client(WhereIs, "/om/where_is")
    k = [0]

    def spin_publish():
        k[0] += 1
        msg = DetectionArray()
        msg.header.stamp = sec_to_stamp(float(k[0]))
        msg.header.frame_id = "cam"
        msg.map_frame = "odom"
        msg.detections = [_detection((0.6, 1.4, 0.6), "kitchenware"),
                          _detection((-1.0, 0.5, 0.05), "toy")]
        pub.publish(msg)
        ex.spin_once(timeout_sec=0.05)

    try:
        ok = wait_for(lambda: maps and len(maps[-1].objects) == 2, timeout=30, spin=spin_publish)
        assert ok, stop_node(proc)
        m = maps[-1]
        assert m.header.frame_id == "odom"
        by_cat = {o.category: o for o in m.objects}
        assert set(by_cat) == {"kitchenware", "toy"}
        assert by_cat["kitchenware"].destination == "bin_blue"
        assert by_cat["toy"].observations >= 2
        assert by_cat["toy"].position.x == pytest.approx(-1.0)
        # Latched: a late subscriber still gets the map.
        late: list[ObjectMap] = []
        node.create_subscription(ObjectMap, "/om/object_map", late.append, qos.LATCHED)
        assert wait_for(lambda: bool(late), timeout=10, spin=lambda: ex.spin_once(timeout_sec=0.05))
        assert client.wait_for_service(timeout_sec=10)
        fut = client.call_async(WhereIs.Request(query="where is the mug?"))
        assert wait_for(fut.done, timeout=10, spin=lambda: ex.spin_once(timeout_sec=0.05))
        r = fut.result()
        assert r.found and "on the table" in r.answer and r.matches[0].category == "kitchenware"
        fut = client.call_async(WhereIs.Request(query="bottle"))
        assert wait_for(fut.done, timeout=10, spin=lambda: ex.spin_once(timeout_sec=0.05))
        assert not fut.result().found
    finally:
        ex.shutdown()
        node.destroy_node()
        out = stop_node(proc)
    assert proc.returncode == 0, out
