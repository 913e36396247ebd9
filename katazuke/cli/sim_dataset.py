"""``katazuke sim dataset``: generate a domain-randomized RGB-D dataset (or sequences).

Example::

    katazuke sim dataset --profile train --n 2000 --out data/sim_train --workers 2 --seed 0
    katazuke sim dataset --profile test --n 300 --out data/seq --sequences --num-sequences 2
"""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from katazuke.errors import KatazukeError


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=["none", "train", "test"], default="train",
                        help="randomization profile (test: held-out textures and kinds)")
    parser.add_argument("--n", type=int, required=True,
                        help="number of images (frames per sequence with --sequences)")
    parser.add_argument("--out", required=True, help="output directory (resumable)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=0, help="master seed")
    parser.add_argument("--width", type=int, default=320, help="image width, px")
    parser.add_argument("--height", type=int, default=240, help="image height, px")
    parser.add_argument("--images-per-scene", type=int, default=20,
                        help="images rendered per scene build (must divide 100)")
    parser.add_argument("--min-objects", type=int, default=10, help="fewest objects per scene")
    parser.add_argument("--max-objects", type=int, default=40, help="most objects per scene")
    parser.add_argument("--sequences", action="store_true",
                        help="write smooth camera sequences with TUM ground truth instead")
    parser.add_argument("--num-sequences", type=int, default=1, help="with --sequences")
    parser.add_argument("--fps", type=float, default=30.0, help="sequence frame rate")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def main(args: argparse.Namespace) -> int:
    from katazuke.sim.dataset import DatasetSpec, generate_dataset, generate_sequences

    if args.min_objects > args.max_objects:
        raise KatazukeError("--min-objects must be <= --max-objects")
    spec = DatasetSpec(out=args.out, profile=args.profile, n=args.n, seed=args.seed,
                       workers=args.workers, image_size=(args.width, args.height),
                       images_per_scene=args.images_per_scene,
                       n_objects=(args.min_objects, args.max_objects),
                       generator=f"katazuke {_commit()}")
    if args.sequences:
        dirs = generate_sequences(spec, args.num_sequences, args.fps,
                                  progress=not args.no_progress)
        print(f"wrote {len(dirs)} sequence(s) of {args.n} frames under {args.out}/sequences")
    else:
        merged = generate_dataset(spec, progress=not args.no_progress)
        print(f"wrote {len(merged['images'])} images, {len(merged['annotations'])} "
              f"annotations to {args.out}")
    return 0
