"""``katazuke bench launch``: launcher startup, clean shutdown and respawn latency.

The work is :mod:`katazuke.bench.launch`; this module parses the options (one per field of
:class:`~katazuke.bench.launch.LaunchBenchConfig`) and writes ``<out>/launch.{json,md}``.
"""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.bench.launch import LaunchBenchConfig
    from katazuke.cli.config_args import add_config_arguments

    add_config_arguments(parser, LaunchBenchConfig)
    parser.add_argument("--out", default="docs/bench", help="where launch.json/.md go")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import launch
    from katazuke.bench.harness import command_line, evaluate_bars, write_results
    from katazuke.cli.config_args import config_from_args

    res = launch.run(config_from_args(launch.LaunchBenchConfig, args))
    md = launch.markdown(res, command=command_line())
    write_results("launch", res, md, args.out, packages=("rclpy", "pyyaml"), bars=launch.BARS)
    print(md)
    return 0 if all(e["met"] for e in evaluate_bars(res, launch.BARS)) else 1
