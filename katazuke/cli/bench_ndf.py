"""``katazuke bench ndf``: NDF equivariance, held-out occupancy, time per grasp, pose transfer.

The work is :mod:`katazuke.bench.ndf`; writes ``<out-dir>/ndf.json`` and ``<out-dir>/ndf.md``.
"""
from __future__ import annotations

import argparse

from katazuke.rosenv import repo_root

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=str(repo_root() / "perception" / "ndf" / "weights"
                                                 / "ndf.pt"), help="NDF weights file")
    parser.add_argument("--data", required=True,
                        help="`katazuke sim ndf-data` folder (its test/ split is used)")
    parser.add_argument("--trials", type=int, default=20, help="random SE(3) for equivariance")
    parser.add_argument("--repeats", type=int, default=5, help="timed grasps (median)")
    parser.add_argument("--transfer-per-category", type=int, default=10,
                        help="held-out instances per category for pose transfer")
    parser.add_argument("--seed", type=int, default=0, help="seed of transforms and restarts")
    parser.add_argument("--out-dir", default=str(repo_root() / "docs" / "bench"),
                        help="where ndf.json and ndf.md go")


def main(args: argparse.Namespace) -> int:
    from katazuke.cli.training import passive_openmp

    passive_openmp()
    from katazuke.bench import ndf
    from katazuke.bench.harness import write_results

    cfg = ndf.NdfBenchConfig(weights=args.weights, data=args.data, trials=args.trials,
                             repeats=args.repeats,
                             transfer_per_category=args.transfer_per_category, seed=args.seed)
    results = ndf.run(cfg)
    _, mpath = write_results("ndf", results, ndf.markdown(results), args.out_dir,
                             packages=("torch", "open3d", "katazuke"), bars=ndf.BARS)
    print(mpath.read_text())
    return 0
