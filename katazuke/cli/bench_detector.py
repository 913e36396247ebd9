"""``katazuke bench detector``: accuracy, latency, node rate and object-map tour figures.

The work is :mod:`katazuke.bench.detection`; this module parses the options (one per field of
:class:`~katazuke.bench.detection.DetectionBenchConfig`) and writes
``<out-dir>/detection.{json,md}``.
"""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.bench.detection import DetectionBenchConfig
    from katazuke.cli.config_args import add_config_arguments

    add_config_arguments(parser, DetectionBenchConfig)
    parser.add_argument("--out-dir", default="docs/bench", help="where detection.json/.md go")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import detection
    from katazuke.bench.harness import command_line, write_results
    from katazuke.cli.config_args import config_from_args

    res = detection.run(config_from_args(detection.DetectionBenchConfig, args))
    md = detection.markdown(res, command=command_line())
    jpath, mpath = write_results("detection", res, md, args.out_dir, packages=("torch",),
                                 bars=detection.BARS)
    print(md)
    print(f"wrote {jpath} and {mpath}")
    return 0
