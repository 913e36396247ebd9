"""Two nodes in separate processes exchange a custom message (katazuke_interfaces/TaskStatus)
over Fast DDS; this test process observes both topics with rclpy."""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from katazuke.rosenv import ros_environment, workspace_install
from katazuke.testing import wait_for

pytestmark = pytest.mark.ros


def _exe(name: str) -> Path:
    p = workspace_install() / "lib" / "katazuke_ros" / name
    if not p.exists():
        pytest.fail(f"{p} missing: run scripts/bootstrap.sh (colcon build of ros_ws)")
    return p


def _start(name: str, *ros_args: str) -> subprocess.Popen:
    env = ros_environment()
    # Output to a file, not a pipe nobody drains until the end (a full pipe blocks the node).
    out = tempfile.TemporaryFile(mode="w+t")
    proc = subprocess.Popen([str(_exe(name)), "--ros-args", *ros_args], env=env,
                            stdout=out, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    proc.output_file = out  # type: ignore[attr-defined]
    return proc


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    proc.output_file.seek(0)  # type: ignore[attr-defined]
    return proc.output_file.read()  # type: ignore[attr-defined]


def test_custom_message_across_processes(ros_context) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    from katazuke_interfaces.msg import TaskStatus
    from katazuke_ros import qos

    talker = _start("talker", "-p", "message:=tidy", "-p", "rate_hz:=20.0", "-r", "__ns:=/t1")
    listener = _start("listener", "-r", "__ns:=/t1")
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
        out_t, out_l = _stop(talker), _stop(listener)
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
