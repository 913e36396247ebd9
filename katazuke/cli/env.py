"""``katazuke env``: print ``export`` lines for the ROS 2 workspace environment.

Use as ``eval "$(katazuke env)"`` in a shell that should run ROS tools or pytest.
"""
from __future__ import annotations

import argparse
import shlex

from katazuke.ros.fastdds import ENV_HELP
from katazuke.rosenv import ros_environment

__all__ = ["add_arguments", "main", "KEYS"]

KEYS = ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "PATH",
        "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION", "FASTRTPS_DEFAULT_PROFILES_FILE",
        "FASTDDS_DEFAULT_PROFILES_FILE", "PYTHONSAFEPATH", "KATAZUKE_ROS_ENV")
#: Variables the environment removes (printed as ``unset``).
UNSET = ("ROS_LOCALHOST_ONLY",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ENV_HELP


def main(args: argparse.Namespace) -> int:
    del args
    env = ros_environment()
    for key in KEYS:
        print(f"export {key}={shlex.quote(env[key])}")
    for key in UNSET:
        if key not in env:
            print(f"unset {key}")
    return 0
