"""``katazuke train classifier``: train the crop classifier that re-scores detector categories."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="dataset folder from `katazuke sim dataset --profile train` (with depth)")
    parser.add_argument("--out", required=True,
                        help="output folder (classifier.pt, checkpoint.pt, curves.png, history.json)")
    parser.add_argument("--epochs", type=int, default=40, help="passes over the training objects")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of init/shuffle/augmentation and of the validation split")
    parser.add_argument("--batch-size", type=int, default=256, help="crops per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument("--time-budget-min", type=float, default=0.0,
                        help="stop after this many minutes of steps (0 = no limit)")
    parser.add_argument("--max-images", type=int, default=0, help="use at most N images (0 = all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--detector-weights", default="",
                        help="detector used to choose the fusion weight on validation images "
                             "(default: the committed detector)")
    parser.add_argument("--proposals-per-image", type=int, default=None,
                        help="also train on this many of the detector's (--detector-weights) "
                             "own boxes per image and epoch (default 0 = none)")
    parser.add_argument("--no-proposal-objectness", action="store_true",
                        help="proposals train category and box only, not objectness")
    parser.add_argument("--init-weights", default=None,
                        help="start from this classifier .pt's network (continuation with a "
                             "fresh schedule)")
    parser.add_argument("--config", default=None,
                        help="YAML of ClassifierTrainConfig fields (command-line flags win)")
    parser.add_argument("--settings-only", action="store_true",
                        help="no training: choose OUT/classifier.pt's inference settings again "
                             "for --detector-weights on the validation images, rewrite the file")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/checkpoint.pt (same data and settings)")


def main(args: argparse.Namespace) -> int:
    import os

    # Passive OpenMP waits: spinning threads stall torch on a shared CPU (set before torch loads).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from katazuke.config import load_config
    from katazuke.perception.detection.classifier import ClassifierTrainConfig, train_classifier
    from katazuke.perception.detection.dataset import load_dataset

    cfg = load_config(ClassifierTrainConfig, args.config, epochs=args.epochs, seed=args.seed,
                      batch_size=args.batch_size, lr=args.lr,
                      time_budget_min=args.time_budget_min, max_images=args.max_images,
                      num_threads=args.threads,
                      **{k: v for k, v in (("proposals_per_image", args.proposals_per_image),
                                           ("init_weights", args.init_weights),
                                           ("proposal_objectness",
                                            False if args.no_proposal_objectness else None))
                         if v is not None})
    data = load_dataset(args.data, max_images=cfg.max_images, progress=True, depth=True)
    print(f"{len(data)} images from {args.data}")
    if args.settings_only:
        from pathlib import Path

        from katazuke.perception.detection.classifier import retune_settings

        retune_settings(data, Path(args.out) / "classifier.pt", args.detector_weights, cfg.seed,
                        cfg.val_fraction)
        return 0
    res = train_classifier(data, args.out, cfg, detector_weights=args.detector_weights,
                           resume=args.resume)
    print(f"{res['steps']} steps in {res['train_minutes']:.1f} min; validation accuracy "
          f"{res['val_accuracy']:.3f}; settings: fusion {res['fusion_weight']}, objectness "
          f"{res['objectness_weight']}, box regression {res['box_regression']}")
    return 0
