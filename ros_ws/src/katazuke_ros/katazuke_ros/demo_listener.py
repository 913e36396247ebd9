"""listener: subscribes TaskStatus and republishes an echo as std_msgs/String
(``echo`` topic) so tests can observe it from another process."""
from __future__ import annotations

from rclpy.node import Node
from std_msgs.msg import String

from katazuke_interfaces.msg import TaskStatus
from katazuke_ros import qos
from katazuke_ros.node_utils import run_node


class Listener(Node):
    def __init__(self) -> None:
        super().__init__("listener")
        self._echo = self.create_publisher(String, "echo", qos.EVENTS)
        self.create_subscription(TaskStatus, "status", self._on_status, qos.EVENTS)

    def _on_status(self, msg: TaskStatus) -> None:
        self.get_logger().info(f"status {msg.task_id}: {msg.message}")
        self._echo.publish(String(data=f"{msg.task_id}:{msg.message}:{msg.state}"))


def main(args: list[str] | None = None) -> int:
    return run_node(Listener, args)


if __name__ == "__main__":
    raise SystemExit(main())
