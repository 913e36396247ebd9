"""Katazuke: a ROS 2 mobile-manipulation stack that tidies a room on spoken command.

The ROS-free libraries are ``katazuke.perception``, ``katazuke.planning``,
``katazuke.control`` and ``katazuke.sim``; ``katazuke.cli`` is the command line;
the ROS 2 nodes live in the colcon package ``katazuke_ros`` (ros_ws/src).
"""
from katazuke.errors import ConfigError, KatazukeError

__version__ = "0.1.0"
__all__ = ["KatazukeError", "ConfigError", "__version__"]
