"""``katazuke bench network``: DDS socket exposure and the LAN switch across namespaces.

The work is :mod:`katazuke.bench.network`; this module parses the options and writes
``<out>/network.json`` and ``<out>/network.md``. The cross-namespace part needs root
(CAP_NET_ADMIN); without it that part is reported as not run.
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="camera stream length of the cross-namespace run (s)")
    parser.add_argument("--camera-hz", type=float, default=10.0,
                        help="head camera rate of the sim bridge (Hz)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"),
                        help="folder for network.json / network.md")
    parser.add_argument("--quick", action="store_true", help="5 s cross-namespace run (smoke run)")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import network
    from katazuke.bench.harness import write_results

    cfg = network.QUICK if args.quick else network.NetworkBenchConfig(
        seconds=args.seconds, camera_hz=args.camera_hz)
    results = network.run(cfg)
    _, mpath = write_results("network", results, network.markdown(results), args.out,
                             packages=("rclpy", "katazuke"), bars=network.BARS)
    print(mpath.read_text())
    return 0
