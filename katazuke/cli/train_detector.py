"""``katazuke train detector``: train the objectness + category detector on a sim dataset."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="dataset folder from `katazuke sim dataset --profile train`")
    parser.add_argument("--out", required=True, help="output folder (checkpoint.pt, detector.pt, "
                                                     "curves.png, history.json)")
    parser.add_argument("--epochs", type=int, default=30, help="passes over the data")
    parser.add_argument("--seed", type=int, default=0, help="seed of init/shuffle/augmentation")
    parser.add_argument("--batch-size", type=int, default=16, help="images per step")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--time-budget-min", type=float, default=0.0,
                        help="stop after this many minutes of training (0 = no limit)")
    parser.add_argument("--max-images", type=int, default=0, help="use at most N images (0 = all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--crop", default=None, metavar="WxH",
                        help="train on native-resolution WxH crops (e.g. 160x120); inference "
                             "stays on whole images")
    parser.add_argument("--config", default=None,
                        help="YAML of TrainConfig fields (command-line flags win)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/checkpoint.pt (same data and settings)")


def main(args: argparse.Namespace) -> int:
    import os

    # Passive OpenMP waits: spinning threads stall torch on a shared CPU (set before torch loads).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from katazuke.config import load_config
    from katazuke.perception.detection.config import TrainConfig
    from katazuke.perception.detection.dataset import load_dataset
    from katazuke.perception.detection.train import train

    crop = {}
    if args.crop:
        from katazuke.errors import KatazukeError

        try:
            cw, ch = (int(v) for v in args.crop.lower().split("x"))
        except ValueError:
            raise KatazukeError(f"--crop must look like 160x120, got {args.crop!r}") from None
        crop = {"crop": True, "input_width": cw, "input_height": ch}
    cfg = load_config(TrainConfig, args.config, **crop, epochs=args.epochs, seed=args.seed,
                      batch_size=args.batch_size, lr=args.lr,
                      time_budget_min=args.time_budget_min, max_images=args.max_images,
                      num_threads=args.threads)
    data = load_dataset(args.data, max_images=cfg.max_images, progress=True,
                        depth=cfg.model.in_channels == 4)
    print(f"{len(data)} images from {args.data}")
    res = train(data, args.out, cfg, resume=args.resume)
    last = {k: v[-1] for k, v in res.history.items() if k.startswith("val_") and v}
    print(f"wrote {res.weights} ({res.elapsed_s / 60:.1f} min training); curves {res.curves}; "
          f"last validation {last}")
    return 0
