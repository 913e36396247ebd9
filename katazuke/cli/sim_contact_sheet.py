"""``katazuke sim contact-sheet``: a grid of randomized frames (one scene per tile).

Example::

    katazuke sim contact-sheet --profile train --n 16 --seed 0 --out docs/sim_contact_sheet.png
"""
from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=["none", "train", "test"], default="train",
                        help="randomization profile")
    parser.add_argument("--n", type=int, default=16, help="number of tiles (scenes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first scene")
    parser.add_argument("--out", default="docs/sim_contact_sheet.png", help="output PNG")
    parser.add_argument("--width", type=int, default=320, help="tile width, px")
    parser.add_argument("--height", type=int, default=240, help="tile height, px")


def main(args: argparse.Namespace) -> int:
    from PIL import Image

    from katazuke.sim.contact_sheet import contact_sheet

    sheet = contact_sheet(args.profile, args.n, args.seed, (args.width, args.height),
                          progress=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    Image.fromarray(sheet).save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0
