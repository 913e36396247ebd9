"""``katazuke bench tidy``: end-to-end tidy-up episodes in the simulator (resumable).

The work is :mod:`katazuke.bench.tidy`; this module parses the options (one per field of
:class:`~katazuke.bench.tidy.TidyBenchConfig`) and keeps ``<out-dir>/tidy.{json,md}``
up to date after every episode (finished seeds are skipped on the next run).

Example::

    katazuke bench tidy --seeds 1,2,3 --profile test --objects 15 --out-dir out/tidy_eval
"""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.bench.tidy import TidyBenchConfig
    from katazuke.cli.config_args import add_config_arguments

    add_config_arguments(parser, TidyBenchConfig)
    parser.add_argument("--out-dir", default="docs/bench",
                        help="where tidy.json/tidy.md (and tidy_logs/) go; finished seeds there are skipped")


def main(args: argparse.Namespace) -> int:
    import sys

    from katazuke.bench import tidy
    from katazuke.cli.config_args import config_from_args

    cfg = config_from_args(tidy.TidyBenchConfig, args)
    res = tidy.run(cfg, args.out_dir, progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(tidy.markdown(res))
    print(f"wrote {args.out_dir}/tidy.json and tidy.md")
    return 0
