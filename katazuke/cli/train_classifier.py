"""``katazuke train classifier``: train the crop classifier that re-scores detector categories."""
from __future__ import annotations

import argparse

from katazuke.cli.training import add_training_arguments, passive_openmp


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(
        parser, data_help="dataset folder from `katazuke sim dataset --profile train` (with depth)",
        out_help="output folder (classifier.pt, checkpoint.pt, curves.png, history.json)",
        epochs=40, epochs_help="passes over the training objects", batch_size=256,
        batch_help="crops per step", lr=2e-3, config_name="ClassifierTrainConfig")
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
    parser.add_argument("--settings-only", action="store_true",
                        help="no training: choose OUT/classifier.pt's inference settings again "
                             "for --detector-weights on the validation images, rewrite the file")


def main(args: argparse.Namespace) -> int:
    passive_openmp()
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
