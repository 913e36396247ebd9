"""Katazuke: a ROS 2 mobile-manipulation stack that tidies a room on spoken command.

The ROS-free libraries are ``katazuke.perception``, ``katazuke.planning``,
``katazuke.control`` and ``katazuke.sim``; ``katazuke.cli`` is the command line;
the ROS 2 nodes live in the colcon package ``katazuke_ros`` (ros_ws/src).

The libraries sit at the repository root (``perception/ planning/ control/ sim/``) and
``setup.py``'s ``package_dir`` installs them as ``katazuke.<name>`` (so our ``control`` never
shadows python-control's); start Python with ``-P``. Layers and paths: docs/ARCHITECTURE.md.
"""
from katazuke.errors import ConfigError, KatazukeError

__version__ = "0.1.0"
__all__ = ["KatazukeError", "ConfigError", "__version__"]
