"""``katazuke train detector``: train the objectness + category detector on a sim dataset."""
from __future__ import annotations

import argparse

from katazuke.cli.training import add_training_arguments, passive_openmp


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(
        parser, data_help="dataset folder from `katazuke sim dataset --profile train`",
        out_help="output folder (checkpoint.pt, detector.pt, curves.png, history.json)",
        epochs=30, epochs_help="passes over the data", batch_size=16,
        batch_help="images per step", lr=3e-3, config_name="TrainConfig")
    parser.add_argument("--crop", default=None, metavar="WxH",
                        help="train on native-resolution WxH crops (e.g. 160x120); inference "
                             "stays on whole images")


def main(args: argparse.Namespace) -> int:
    passive_openmp()
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
