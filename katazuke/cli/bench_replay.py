"""``katazuke bench replay``: deterministic replay of the main job's bag through perception.

The work is :mod:`katazuke.bench.replay`; this module parses the options and writes
``<out>/replay.json`` and ``<out>/replay.md``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bag", default="",
                        help="bag to replay (default: record the main job's tour first)")
    parser.add_argument("--seed", type=int, default=0, help="room seed of the recorded tour")
    parser.add_argument("--duration", type=float, default=90.0,
                        help="sim seconds of the recorded tour (default 90, the main job's)")
    parser.add_argument("--frame-topic", default="/head_camera/image_raw",
                        help="camera topic the perception stack processes")
    parser.add_argument("--ack-timeout", type=float, default=60.0,
                        help="longest wait for one frame's outputs (s, wall)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"),
                        help="folder for replay.json / replay.md")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import replay
    from katazuke.bench.harness import write_results

    cfg = replay.ReplayBenchConfig(bag=args.bag, seed=args.seed, duration_s=args.duration,
                                   frame_topic=args.frame_topic, ack_timeout_s=args.ack_timeout)
    results = replay.run(cfg)
    _, mpath = write_results("replay", results, replay.markdown(results), args.out,
                             packages=("rclpy", "torch", "katazuke"), bars=replay.BARS)
    print(mpath.read_text())
    return 0
