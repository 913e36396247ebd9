"""``katazuke train ndf``: train the NDF occupancy network on ``katazuke sim ndf-data`` output.

Writes ``OUT/ndf.pt`` (weights, the command, seed, commit and held-out metrics),
``OUT/checkpoint.pt`` after every epoch (``--resume`` continues), ``OUT/curves.png`` and
``OUT/history.json``; prints the held-out occupancy accuracy and IoU per category.
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys

from katazuke.cli.training import passive_openmp


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="folder from `katazuke sim ndf-data` (train/ and test/)")
    parser.add_argument("--out", required=True,
                        help="output folder (ndf.pt, checkpoint.pt, curves.png, history.json)")
    parser.add_argument("--config", default=None,
                        help="YAML of NdfTrainConfig fields (command-line flags win)")
    parser.add_argument("--seed", type=int, default=None, help="NdfTrainConfig.seed")
    parser.add_argument("--epochs", type=int, default=None, help="NdfTrainConfig.epochs")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="NdfTrainConfig.batch_size (instances per step)")
    parser.add_argument("--lr", type=float, default=None, help="NdfTrainConfig.lr")
    parser.add_argument("--time-budget-min", type=float, default=None,
                        help="stop after this many minutes of steps (0 = no limit)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/checkpoint.pt (same data and settings)")


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(args: argparse.Namespace) -> int:
    passive_openmp()
    from tqdm import tqdm

    from katazuke.config import load_config
    from katazuke.perception.ndf.config import NdfTrainConfig
    from katazuke.perception.ndf.data import load_split
    from katazuke.perception.ndf.train import train_ndf

    flags = {"seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size,
             "lr": args.lr, "time_budget_min": args.time_budget_min,
             "num_threads": args.threads}
    cfg = load_config(NdfTrainConfig, args.config,
                      **{k: v for k, v in flags.items() if v is not None})
    train, test = load_split(args.data, "train"), load_split(args.data, "test")
    print(f"{len(train)} training and {len(test)} held-out instances from {args.data}")
    argv = sys.argv[1:]
    command = " ".join(["katazuke", *argv[argv.index("train"):]] if "train" in argv else argv)
    res = train_ndf(train, test, args.out, cfg, resume=args.resume,
                    progress=lambda **kw: tqdm(desc="ndf", unit="step", mininterval=5, **kw),
                    provenance={"command": command, "seed": cfg.seed, "data": str(args.data),
                                "commit": _git_commit(), "machine": platform.node()})
    print(f"wrote {res['weights']}: {res['steps']} steps, {res['epochs']} epochs in "
          f"{res['train_minutes']:.1f} min, final loss {res['final_loss']:.4f}")
    for name in ("test_partial", "test_surface"):
        m = res[name]
        cats = ", ".join(f"{c} {v['accuracy']:.3f}/{v['iou']:.3f}"
                         for c, v in m["per_category"].items())
        print(f"held-out ({name[5:]} clouds, {m['instances']} instances): accuracy "
              f"{m['accuracy']:.3f}, IoU {m['iou']:.3f} (accuracy/IoU: {cats})")
    return 0
