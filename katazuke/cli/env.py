"""``katazuke env``: print ``export`` lines for the ROS 2 workspace environment.

Use as ``eval "$(katazuke env)"`` in a shell that should run ROS tools or pytest.
"""
from __future__ import annotations

import argparse
import shlex

from katazuke.rosenv import ros_environment

KEYS = ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "PATH",
        "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION", "PYTHONSAFEPATH", "KATAZUKE_ROS_ENV")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def main(args: argparse.Namespace) -> int:
    del args
    env = ros_environment()
    for key in KEYS:
        print(f"export {key}={shlex.quote(env[key])}")
    return 0
