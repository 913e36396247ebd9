"""``katazuke bench flood``: the sim bridge's and the controller's loop rate under a flood of
bad commands.

The work is :mod:`katazuke.bench.flood`; this module parses the options (one per field of
:class:`~katazuke.bench.flood.FloodBenchConfig`) and writes ``<out>/flood.{json,md}``.
"""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.bench.flood import FloodBenchConfig
    from katazuke.cli.config_args import add_config_arguments

    add_config_arguments(parser, FloodBenchConfig)
    parser.add_argument("--out", default="docs/bench", help="folder for flood.json / flood.md")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import flood
    from katazuke.bench.harness import command_line, evaluate_bars, write_results
    from katazuke.cli.config_args import config_from_args

    res = flood.run(config_from_args(flood.FloodBenchConfig, args))
    md = flood.markdown(res, command=command_line())
    jpath, mpath = write_results("flood", res, md, args.out, packages=("rclpy", "pybullet"),
                                 bars=flood.BARS)
    print(md)
    met = [e["met"] for e in evaluate_bars(res, flood.BARS)]
    print(f"wrote {jpath} and {mpath}; {sum(m is True for m in met)} of {len(met)} bars met")
    return 0
