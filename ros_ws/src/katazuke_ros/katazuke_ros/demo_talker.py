"""talker: publishes katazuke_interfaces/TaskStatus at a fixed rate (smoke test of
custom interfaces across processes; also handy to check a DDS setup)."""
from __future__ import annotations

from rclpy.node import Node

from katazuke_interfaces.msg import TaskStatus
from katazuke_ros import qos
from katazuke_ros.node_utils import run_node


class Talker(Node):
    def __init__(self) -> None:
        super().__init__("talker")
        self.declare_parameter("rate_hz", 10.0)
        self.declare_parameter("message", "hello")
        self._pub = self.create_publisher(TaskStatus, "status", qos.EVENTS)
        self._count = 0
        self.create_timer(1.0 / float(self.get_parameter("rate_hz").value), self._tick)

    def _tick(self) -> None:
        self._count += 1
        msg = TaskStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.task_id = str(self._count)
        msg.state = TaskStatus.NAVIGATING
        msg.progress = float(self._count % 100) / 100.0
        msg.message = str(self.get_parameter("message").value)
        self._pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run_node(Talker, args)


if __name__ == "__main__":
    raise SystemExit(main())
