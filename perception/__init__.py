"""katazuke.perception: a ROS-free library (no rclpy, no message packages).

Imported as ``katazuke.perception``.
"""
from katazuke.errors import require_library_name

require_library_name(__name__, "perception")

__all__: list[str] = []
