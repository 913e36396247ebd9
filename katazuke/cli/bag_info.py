"""``katazuke bag info``: summarise a bag like ``ros2 bag info`` (rosbag2 or ROS 1).

``--verify`` also checks every MCAP chunk's CRC-32 (and the data-section and summary
CRCs when stored) and prints one line per bad chunk::

    bad chunk <i> [<t0>, <t1>]: <reason>

``<i>`` counts chunk records in file order from 0; ``<t0>``/``<t1>`` are the chunk's
message start/end times (bag clock) in seconds since the epoch with nine decimals. The
exit status is 1 when anything is bad, 0 otherwise. A chunk with stored CRC 0 (written
without checksums) counts as unchecked, not bad.
"""
from __future__ import annotations

import argparse
import sys

from katazuke.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="bag directory, .mcap/.db3 file or ROS 1 .bag")
    parser.add_argument("--verify", action="store_true",
                        help="check every MCAP chunk's CRC; prints 'bad chunk <i> [<t0>, <t1>]' "
                             "(times in s since the epoch) per bad chunk, exit 1 if any")


def main(args: argparse.Namespace) -> int:
    from katazuke.bag.integrity import verify_mcap
    from katazuke.bag.reader import format_summary, open_bag

    with open_bag(args.bag) as bag:
        try:
            bag.check_definitions()
        except InputError as exc:
            bag.summary.notes.append(f"cannot be played: {exc}")
        print(format_summary(bag.summary))
        if not args.verify:
            return 0
        if bag.summary.storage != "mcap":
            print(f"Verified:          nothing to check: {bag.summary.storage} bags carry no "
                  "checksums", file=sys.stderr)
            return 0
        ok = True
        for f in bag.summary.files:
            report = verify_mcap(f)
            ok = ok and report.ok
            print("\n".join(report.lines()))
    return 0 if ok else 1
