"""``katazuke bench rotavg``: certified rotation averaging against GTSAM Shonan averaging.

The work is :mod:`katazuke.bench.rotavg`; this module parses the options and writes
``<out-dir>/rotavg.json`` and ``<out-dir>/rotavg.md``.
"""
from __future__ import annotations

import argparse
import json

from katazuke.rosenv import repo_root

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.bench.rotavg import DATA

    parser.add_argument("--quick", action="store_true", help="a small subset (about a minute)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (median)")
    parser.add_argument("--data", default=str(DATA), help="folder with the benchmark graphs")
    parser.add_argument("--out-dir", default=str(repo_root() / "docs" / "bench"),
                        help="where rotavg.json and rotavg.md go")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic graphs")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import rotavg
    from katazuke.bench.harness import write_results

    cfg = rotavg.RotavgBenchConfig(quick=args.quick, repeats=args.repeats, data=args.data,
                                   seed=args.seed)
    results = rotavg.run(cfg)
    _, mpath = write_results("rotavg", results, rotavg.markdown(results), args.out_dir,
                             packages=("gtsam", "katazuke"), bars=rotavg.BARS)
    print(json.dumps(results["summary"], default=str))
    print(mpath.read_text())
    return 0
