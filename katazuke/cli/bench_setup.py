"""``katazuke bench setup``: how long the README commands spend on setup.

The work is :mod:`katazuke.bench.setup`; this module parses the options (one per field of
:class:`~katazuke.bench.setup.SetupBenchConfig`) and writes ``<out>/setup.{json,md}``.
"""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.bench.setup import SetupBenchConfig
    from katazuke.cli.config_args import add_config_arguments

    add_config_arguments(parser, SetupBenchConfig)
    parser.add_argument("--out", default="docs/bench", help="where setup.json/.md go")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import setup
    from katazuke.bench.harness import command_line, write_results
    from katazuke.cli.config_args import config_from_args

    res = setup.run(config_from_args(setup.SetupBenchConfig, args))
    md = setup.markdown(res, command=command_line())
    write_results("setup", res, md, args.out, bars=setup.BARS)
    print(md)
    return 0
