"""Two nodes in separate processes exchange a custom message (katazuke_interfaces/TaskStatus)
over Fast DDS; this test process observes both topics with rclpy."""
from __future__ import annotations

import pytest

from katazuke.testing import start_node, stop_node, wait_for

pytestmark = pytest.mark.ros


def test_custom_message_across_processes(ros_context) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    from katazuke_interfaces.msg import TaskStatus
    from katazuke_ros import qos

    talker = start_node("talker", "-p", "message:=tidy", "-p", "rate_hz:=20.0", "-r", "__ns:=/t1")
    listener = start_node("listener", "-r", "__ns:=/t1")
    node = rclpy.create_node("observer", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    statuses: list[TaskStatus] = []
    echoes: list[str] = []
    node.create_subscription(TaskStatus, "/t1/status", statuses.append, qos.EVENTS)
    node.create_subscription(String, "/t1/echo", lambda m: echoes.append(m.data), qos.EVENTS)
    try:
        ok = wait_for(lambda: len(statuses) >= 3 and len(echoes) >= 3, timeout=30,
                      spin=lambda: ex.spin_once(timeout_sec=0.05))
        assert ok, f"statuses={len(statuses)} echoes={len(echoes)}"
        assert all(s.message == "tidy" and s.state == TaskStatus.NAVIGATING for s in statuses)
        # The listener (another process) decoded the custom type and echoed its fields.
        task_id, text, state = echoes[-1].split(":")
        assert text == "tidy" and int(state) == TaskStatus.NAVIGATING and int(task_id) >= 1
    finally:
        ex.shutdown()
        node.destroy_node()
        out_t, out_l = stop_node(talker), stop_node(listener)
    assert talker.returncode == 0, out_t
    assert listener.returncode == 0, out_l
    assert "status" in out_l


def test_tf_message_type_is_the_standard_one() -> None:
    """/tf uses tf2_msgs/msg/TFMessage with the upstream wire layout (Foxglove/RViz decode it)."""
    from geometry_msgs.msg import TransformStamped
    from rclpy.serialization import deserialize_message, serialize_message
    from tf2_msgs.msg import TFMessage

    t = TransformStamped()
    t.header.frame_id, t.child_frame_id = "odom", "base_link"
    t.transform.translation.x, t.transform.rotation.w = 1.5, 1.0
    msg = TFMessage(transforms=[t])
    back = deserialize_message(serialize_message(msg), TFMessage)
    assert back.transforms[0].child_frame_id == "base_link"
    assert back.transforms[0].transform.translation.x == 1.5
    assert TFMessage.__module__.startswith("tf2_msgs.msg")
