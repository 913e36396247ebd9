"""katazuke.planning: a ROS-free library (no rclpy, no message packages).

Imported as ``katazuke.planning``.
"""
from katazuke.errors import require_library_name

require_library_name(__name__, "planning")

__all__: list[str] = []
