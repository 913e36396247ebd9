"""``katazuke bag info``: summarise a bag like ``ros2 bag info`` (rosbag2 or ROS 1)."""
from __future__ import annotations

import argparse

from katazuke.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="bag directory, .mcap/.db3 file or ROS 1 .bag")


def main(args: argparse.Namespace) -> int:
    from katazuke.bag.reader import format_summary, open_bag

    with open_bag(args.bag) as bag:
        try:
            bag.check_definitions()
        except InputError as exc:
            bag.summary.notes.append(f"cannot be played: {exc}")
        print(format_summary(bag.summary))
    return 0
