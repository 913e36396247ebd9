"""``katazuke bench bag``: playback timing error and recording loss (synthetic and sim camera).

The work is :mod:`katazuke.bench.bag`; this module parses the options and writes
``<out>/bag.json`` and ``<out>/bag.md``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--play-seconds", type=float, default=20.0,
                        help="length of the playback bag (s)")
    parser.add_argument("--record-seconds", type=float, default=60.0,
                        help="length of the live recording check (s)")
    parser.add_argument("--repeats", type=int, default=3, help="playback runs per mode (median)")
    parser.add_argument("--camera-hz", type=float, default=10.0,
                        help="head camera rate of the sim bridge in the camera recording (Hz)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"),
                        help="folder for bag.json / bag.md")
    parser.add_argument("--quick", action="store_true",
                        help="5 s playback, 10 s recording, 1 repeat (smoke run)")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import bag
    from katazuke.bench.harness import write_results

    cfg = bag.QUICK if args.quick else bag.BagBenchConfig(
        play_seconds=args.play_seconds, record_seconds=args.record_seconds, repeats=args.repeats,
        camera_hz=args.camera_hz)
    results = bag.run(cfg)
    _, mpath = write_results("bag", results, bag.markdown(results), args.out,
                             packages=("rosbags", "rclpy", "katazuke"), bars=bag.BARS)
    print(mpath.read_text())
    return 0
