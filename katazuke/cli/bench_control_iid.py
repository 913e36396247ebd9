"""``katazuke bench control-iid``: GPC vs LQR under i.i.d. zero-mean noise, over many seeds.

The study (and why it exists) is :mod:`katazuke.bench.control_iid`; this module parses the
options and writes ``<out>/control_iid.json`` and ``<out>/control_iid.md``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=5, help="noise sequences per system")
    parser.add_argument("--T", type=int, default=10000, help="horizon of each rollout (steps)")
    parser.add_argument("--scale", type=float, default=0.1, help="RMS per component")
    parser.add_argument("--offset", type=float, default=0.05,
                        help="mean added to every component in the 'uniform + offset' contrast")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"))


def main(args: argparse.Namespace) -> int:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from katazuke.bench import control_iid
    from katazuke.bench.harness import write_results

    cfg = control_iid.ControlIidConfig(seeds=args.seeds, T=args.T, scale=args.scale,
                                       offset=args.offset)
    results = control_iid.run(cfg)
    _, mpath = write_results("control_iid", results, control_iid.markdown(results), args.out,
                             packages=("katazuke",), bars=control_iid.BARS)
    print(mpath.read_text())
    return 0
