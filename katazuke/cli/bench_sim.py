"""``katazuke bench sim``: simulator frame rate, dataset throughput, pick-and-place success.

The work is :mod:`katazuke.bench.sim`; this module parses the options (one per field of
:class:`~katazuke.bench.sim.SimBenchConfig`) and writes ``<out-dir>/sim.{json,md}``.

Example::

    katazuke bench sim                 # full run (~10 min on 2 cores)
    katazuke bench sim --quick         # fewer repeats, 2 seeds, for a smoke check
"""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.bench.sim import SimBenchConfig
    from katazuke.cli.config_args import add_config_arguments

    add_config_arguments(parser, SimBenchConfig)
    parser.add_argument("--out-dir", default="docs/bench", help="where sim.json/sim.md go")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import sim
    from katazuke.bench.harness import command_line, write_results
    from katazuke.cli.config_args import config_from_args

    res = sim.run(config_from_args(sim.SimBenchConfig, args))
    md = sim.markdown(res, command=command_line())
    jpath, mpath = write_results("sim", res, md, args.out_dir,
                                 packages=("pybullet", "pillow"), bars=sim.BARS)
    print(md)
    print(f"wrote {jpath} and {mpath}")
    return 0
