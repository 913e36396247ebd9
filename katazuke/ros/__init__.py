"""Core code that speaks ROS 2 (rclpy and message packages), for benches, tools and nodes.

``katazuke.ros.qos`` holds the named QoS profiles, ``katazuke.ros.conversions`` the numpy <->
message conversions and ``katazuke.ros.probe`` the one rclpy probe helper of benches and
tests. Import the submodules by name; nothing here imports ``katazuke_ros`` (the nodes import
from here, never the other way round).
"""

__all__: list[str] = []
