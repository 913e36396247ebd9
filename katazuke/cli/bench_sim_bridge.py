"""``katazuke bench sim-bridge``: real-time factor, rates and camera latency of the sim bridge.

The work is :mod:`katazuke.bench.sim_bridge`; this module parses the options (one per field
of :class:`~katazuke.bench.sim_bridge.SimBridgeBenchConfig`) and writes
``<out-dir>/sim_bridge.{json,md}``.
"""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.bench.sim_bridge import SimBridgeBenchConfig
    from katazuke.cli.config_args import add_config_arguments

    add_config_arguments(parser, SimBridgeBenchConfig)
    parser.add_argument("--out-dir", default="docs/bench", help="where sim_bridge.json/.md go")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import sim_bridge
    from katazuke.bench.harness import command_line, evaluate_bars, write_results
    from katazuke.cli.config_args import config_from_args

    res = sim_bridge.run(config_from_args(sim_bridge.SimBridgeBenchConfig, args))
    md = sim_bridge.markdown(res, command=command_line())
    jpath, mpath = write_results("sim_bridge", res, md, args.out_dir,
                                 packages=("pybullet", "rclpy"), bars=sim_bridge.BARS)
    print(md)
    met = [e["met"] for e in evaluate_bars(res, sim_bridge.BARS)]
    print(f"wrote {jpath} and {mpath}; {sum(m is True for m in met)} of {len(met)} bars met")
    return 0
