"""``katazuke bench grasp``: grasp-planner pick success per category vs the scripted grasp.

The work is :mod:`katazuke.bench.grasp`; this module parses the options (one per field of
:class:`~katazuke.bench.grasp.GraspBenchConfig`) and writes ``<out-dir>/grasp.{json,md}``.

Example::

    katazuke bench grasp --seeds 0,1,2,3,4      # every kind x 5 seeds (~8 min on 2 cores)
    katazuke bench grasp --kinds duck,mug --seeds 0
"""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.bench.grasp import GraspBenchConfig
    from katazuke.cli.config_args import add_config_arguments

    add_config_arguments(parser, GraspBenchConfig)
    parser.add_argument("--out-dir", default="docs/bench", help="where grasp.json/grasp.md go")


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from katazuke.bench import grasp
    from katazuke.bench.harness import write_results
    from katazuke.cli.config_args import config_from_args

    cfg = config_from_args(grasp.GraspBenchConfig, args)
    with tqdm(desc="bench grasp", unit="trial") as bar:
        res = grasp.run(cfg, progress=lambda text: (bar.set_postfix_str(text), bar.update(1)))
    md = grasp.markdown(res)
    jpath, mpath = write_results("grasp", res, md, args.out_dir, packages=("pybullet",),
                                 bars=grasp.BARS)
    print(md)
    print(f"wrote {jpath} and {mpath}")
    return 0
