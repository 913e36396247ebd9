"""COCO-style detection metrics, written from the definitions (no pycocotools).

- AP per category at an IoU threshold: predictions of that category over all images, sorted by
  score, greedily matched (highest IoU first among unmatched ground truth); precision made
  monotone; averaged over 101 recall points (COCO's interpolation).
- Ground truth flagged ``ignore`` (objects of held-out kinds when scoring known categories)
  neither counts as a miss nor turns a prediction on it into a false positive.
- mAP@0.5 and mAP@[.5:.95] average over categories with ground truth.
- Class-agnostic recall@IoU: fraction of ground-truth boxes matched one-to-one by any
  prediction, whatever its category.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from katazuke.errors import InputError
from katazuke.perception.detection.boxes import iou_matrix, xywh_to_xyxy
from katazuke.perception.detection.config import CATEGORIES

__all__ = ["ImageGT", "ImagePred", "average_precision", "evaluate", "recall_at_iou",
           
           "format_report", "IOU_THRESHOLDS"]

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)


@dataclass
class ImageGT:
    """Ground truth of one image: ``boxes_xywh`` (N,4) px, ``categories`` (N,) 0..C-1,
    ``held_out`` (N,) bool."""

    boxes_xywh: np.ndarray
    categories: np.ndarray
    held_out: np.ndarray


@dataclass
class ImagePred:
    """Predictions of one image: ``boxes_xyxy`` (K,4) px, ``scores`` (K,) objectness,
    ``category_probs`` (K,C) known-category probabilities."""

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    category_probs: np.ndarray


def _match(pred_xyxy: np.ndarray, scores: np.ndarray, gt_xyxy: np.ndarray, gt_ignore: np.ndarray,
           thr: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one matching in score order.

    Returns:
        (tp (K,) bool, keep (K,) bool): keep is False for predictions that matched only ignored
        ground truth (removed from the precision/recall curve).
    """
    k = len(pred_xyxy)
    tp = np.zeros(k, bool)
    keep = np.ones(k, bool)
    if k == 0 or len(gt_xyxy) == 0:
        return tp, keep
    iou = iou_matrix(pred_xyxy, gt_xyxy)
    used = np.zeros(len(gt_xyxy), bool)
    for i in np.argsort(-scores, kind="stable"):
        cand = np.where(~used & ~gt_ignore & (iou[i] >= thr))[0]
        if len(cand):
            j = cand[np.argmax(iou[i, cand])]
            used[j] = True
            tp[i] = True
        elif np.any(gt_ignore & (iou[i] >= thr)):
            keep[i] = False
    return tp, keep


def average_precision(tp: np.ndarray, scores: np.ndarray, n_gt: int) -> float:
    """COCO 101-point interpolated AP from per-prediction TP flags (nan when ``n_gt == 0``)."""
    if n_gt == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = tp[order].astype(np.float64)
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, 1e-12)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    rs = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, rs, side="left")
    q = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
    return float(q.mean())


def _check(gts: list[ImageGT], preds: list[ImagePred]) -> None:
    if len(gts) != len(preds):
        raise InputError(f"evaluate(): {len(gts)} ground-truth images but {len(preds)} predictions; "
                         "give one ImagePred per ImageGT in the same order")


def recall_at_iou(gts: list[ImageGT], preds: list[ImagePred], thr: float = 0.5,
                  score_threshold: float = 0.0, subset: str = "all") -> tuple[float, int]:
    """Class-agnostic recall.

    Args:
        subset: ``all``, ``known`` (held_out False) or ``held_out`` ground truth.
        score_threshold: predictions below this objectness are not used.

    Returns:
        (recall, number of ground-truth boxes in the subset); recall is nan with none.
    """
    _check(gts, preds)
    hit = total = 0
    for g, p in zip(gts, preds):
        sel = {"all": np.ones(len(g.held_out), bool), "known": ~g.held_out,
               "held_out": g.held_out}[subset]
        keep = p.scores >= score_threshold
        gt_xyxy = xywh_to_xyxy(g.boxes_xywh)
        matched = np.zeros(len(gt_xyxy), bool)
        if keep.any() and len(gt_xyxy):
            iou = iou_matrix(p.boxes_xyxy[keep], gt_xyxy)
            for i in np.argsort(-p.scores[keep], kind="stable"):
                cand = np.where(~matched & (iou[i] >= thr))[0]
                if len(cand):
                    matched[cand[np.argmax(iou[i, cand])]] = True
        hit += int(np.sum(matched & sel))
        total += int(np.sum(sel))
    return (hit / total if total else float("nan")), total


def _labelled(p: ImagePred, multi_label: bool, max_per_image: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (K,4), labels (K,), scores (K,)) category hypotheses of one image."""
    if len(p.scores) == 0:
        return np.zeros((0, 4)), np.zeros(0, int), np.zeros(0)
    if not multi_label:
        lab = np.argmax(p.category_probs, axis=1)
        return p.boxes_xyxy, lab, p.scores * p.category_probs[np.arange(len(lab)), lab]
    k, c = p.category_probs.shape
    boxes = np.repeat(p.boxes_xyxy, c, axis=0)
    labels = np.tile(np.arange(c), k)
    scores = (p.scores[:, None] * p.category_probs).reshape(-1)
    top = np.argsort(-scores, kind="stable")[:max_per_image]
    return boxes[top], labels[top], scores[top]


def evaluate(gts: list[ImageGT], preds: list[ImagePred], score_threshold: float = 0.3,
             categories: tuple[str, ...] = CATEGORIES, multi_label: bool = False,
             max_per_image: int = 100) -> dict:
    """All detector metrics.

    Category hypotheses: with ``multi_label`` False each box is scored for its most probable
    category only (``objectness * p(category)``: what the robot acts on); with True every box
    is a hypothesis for every category (score ``objectness * p_k``), keeping the
    ``max_per_image`` best per image (the COCO protocol for multi-class detectors).
    Held-out-kind ground truth is ignored for the category APs.

    Args:
        score_threshold: operating objectness threshold for the ``*_at_threshold`` recalls.

    Returns:
        dict with ``map50``, ``map`` (mAP@[.5:.95]), ``per_category`` {name: {ap50, ap, n_gt}},
        ``agnostic_ap50``, ``recall50_all/known/held_out`` (all predictions, up to the
        detector's max per image) and the same ``*_at_threshold``, and ground-truth counts.
    """
    _check(gts, preds)
    n_cat = len(categories)
    ap = np.full((n_cat, len(IOU_THRESHOLDS)), np.nan)
    n_gt = np.zeros(n_cat, int)
    hyps = [_labelled(p, multi_label, max_per_image) for p in preds]
    for c in range(n_cat):
        for t_i, thr in enumerate(IOU_THRESHOLDS):
            tps, scs = [], []
            count = 0
            for g, (boxes, labels, scores) in zip(gts, hyps):
                sel = labels == c
                gt_sel = (g.categories == c) | g.held_out
                gt_ignore = g.held_out[gt_sel]
                count += int(np.sum((g.categories == c) & ~g.held_out))
                tp, keep = _match(boxes[sel], scores[sel], xywh_to_xyxy(g.boxes_xywh[gt_sel]),
                                  gt_ignore, float(thr))
                tps.append(tp[keep])
                scs.append(scores[sel][keep])
            n_gt[c] = count
            ap[c, t_i] = average_precision(np.concatenate(tps) if tps else np.zeros(0, bool),
                                           np.concatenate(scs) if scs else np.zeros(0), count)
    valid = n_gt > 0
    # Class-agnostic AP@0.5 over all ground truth.
    tps, scs, count = [], [], 0
    for g, p in zip(gts, preds):
        tp, _ = _match(p.boxes_xyxy, p.scores, xywh_to_xyxy(g.boxes_xywh),
                       np.zeros(len(g.boxes_xywh), bool), 0.5)
        tps.append(tp)
        scs.append(p.scores)
        count += len(g.boxes_xywh)
    agnostic = average_precision(np.concatenate(tps), np.concatenate(scs), count) if tps else float("nan")
    res = {
        "map50": float(np.mean(ap[valid, 0])) if valid.any() else float("nan"),
        "map": float(np.mean(ap[valid])) if valid.any() else float("nan"),
        "per_category": {categories[c]: {"ap50": float(ap[c, 0]), "ap": float(np.nanmean(ap[c]))
                                         if n_gt[c] else float("nan"), "n_gt": int(n_gt[c])}
                         for c in range(n_cat)},
        "agnostic_ap50": agnostic,
        "score_threshold": score_threshold,
        "multi_label": multi_label,
        "n_images": len(gts),
    }
    for subset in ("all", "known", "held_out"):
        r, n = recall_at_iou(gts, preds, 0.5, 0.0, subset)
        rt, _ = recall_at_iou(gts, preds, 0.5, score_threshold, subset)
        res[f"recall50_{subset}"] = r
        res[f"recall50_{subset}_at_threshold"] = rt
        res[f"n_gt_{subset}"] = n
    return res


def format_report(m: dict) -> str:
    """Markdown summary of :func:`evaluate` output."""
    lines = [f"| metric | value |", "|---|---|",
             f"| mAP@0.5 (known categories, held-out kinds ignored) | {m['map50']:.3f} |",
             f"| mAP@[.5:.95] | {m['map']:.3f} |",
             f"| class-agnostic AP@0.5 | {m['agnostic_ap50']:.3f} |"]
    for s in ("all", "known", "held_out"):
        lines.append(f"| class-agnostic recall@0.5, {s} (n={m[f'n_gt_{s}']}) | "
                     f"{m[f'recall50_{s}']:.3f} (at objectness >= {m['score_threshold']}: "
                     f"{m[f'recall50_{s}_at_threshold']:.3f}) |")
    lines += ["", "| category | AP@0.5 | AP@[.5:.95] | n_gt |", "|---|---|---|---|"]
    for name, v in m["per_category"].items():
        lines.append(f"| {name} | {v['ap50']:.3f} | {v['ap']:.3f} | {v['n_gt']} |")
    return "\n".join(lines)
