"""``katazuke eval detector``: mAP, recall and a contact sheet on a (test-profile) dataset."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="dataset folder from `katazuke sim dataset --profile test`")
    parser.add_argument("--weights", default="",
                        help="detector .pt (default: the committed weights)")
    parser.add_argument("--out", default=None,
                        help="folder for metrics.json, metrics.md, predictions.png and confusion.png "
                             "(per-kind confusion)")
    parser.add_argument("--classifier", default="",
                        help="crop classifier .pt ('' = the committed one, 'none' = the "
                             "detector's category head only); mAP without it is reported too")
    parser.add_argument("--max-images", type=int, default=0, help="evaluate the first N images")
    parser.add_argument("--score-threshold", type=float, default=0.3,
                        help="operating objectness threshold for the *_at_threshold recalls")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--sheet-images", type=int, default=12, help="images on the contact sheet")


def main(args: argparse.Namespace) -> int:
    from katazuke.cli.training import passive_openmp

    passive_openmp()
    import json
    from pathlib import Path

    import numpy as np
    import torch

    from katazuke.perception.detection.config import DetectorConfig
    from katazuke.perception.detection.dataset import load_dataset
    from katazuke.perception.detection.decode import category_scores_with_unknown
    from katazuke.perception.detection.detector import Detector
    from katazuke.perception.detection.evaluation import evaluate_detector, format_report
    from katazuke.perception.detection.viz import confusion_plot, contact_sheet, draw_detections

    torch.set_num_threads(args.threads)
    det = Detector(DetectorConfig(weights=args.weights, score_threshold=0.05,
                                  classifier_weights=args.classifier))
    data = load_dataset(args.data, max_images=args.max_images, progress=True,
                        depth=det.uses_depth)
    samples = data.samples
    m, raws = evaluate_detector(det, samples, args.score_threshold, progress=True)
    m["weights"] = str(args.weights or "committed")
    m["data"] = str(args.data)
    mm = m["multi_label"]
    report = (format_report(m) + "\n\nCOCO protocol (every box a hypothesis for each category): "
              f"mAP@0.5 {mm['map50']:.3f}, mAP@[.5:.95] {mm['map']:.3f}")
    if "detector_only" in m:
        d = m["detector_only"]
        report = (f"Second stage {m['classifier']} (fusion {m['classifier_fusion_weight']}, "
                  f"objectness {m['classifier_objectness_weight']}, box correction "
                  f"{'on' if m['classifier_box_regression'] else 'off'}); the detector alone, "
                  f"same pass: mAP@0.5 {d['map50']:.3f} (COCO protocol "
                  f"{d['multi_label_map50']:.3f}), mAP@[.5:.95] {d['map']:.3f}\n\n" + report)
    print(report)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(m, indent=2))
        (out / "metrics.md").write_text(report + "\n")
        tiles = []
        names = list(det.category_names)
        for s, r in list(zip(samples, raws))[:args.sheet_images]:
            keep = r["scores"] >= args.score_threshold
            p7 = category_scores_with_unknown(r["category_probs"][keep], det.config.unknown_threshold)
            labels = [names[int(np.argmax(p))] for p in p7]
            tiles.append(draw_detections(s.rgb, r["boxes"][keep], labels, r["scores"][keep],
                                         s.boxes_xywh, s.held_out))
        sheet = contact_sheet(tiles, out / "predictions.png")
        conf = confusion_plot(m["kind_confusion"], out / "confusion.png")
        print(f"wrote {out / 'metrics.json'}, {out / 'metrics.md'}, {sheet}, {conf}")
    return 0
