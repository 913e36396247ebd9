"""COCO-style detection metrics, written from the definitions (no pycocotools).

- AP per category at an IoU threshold: predictions of that category over all images, sorted by
  score, greedily matched (highest IoU first among unmatched ground truth); precision made
  monotone; averaged over 101 recall points (COCO's interpolation).
- Ground truth flagged ``ignore`` (objects of held-out kinds when scoring known categories)
  neither counts as a miss nor turns a prediction on it into a false positive.
- mAP@0.5 and mAP@[.5:.95] average over categories with ground truth.
- Class-agnostic recall@IoU: fraction of ground-truth boxes matched one-to-one by any
  prediction, whatever its category.
- By object size (COCO's area ranges scaled to our 320x240 images: the side of a box is
  ``sqrt(w * h)``): ground truth outside the range is ignored and an unmatched prediction
  outside it is dropped, as COCO does for its small/medium/large figures.
- Per-kind confusion: for every ground-truth object, the top category of the prediction
  that matches it (IoU >= 0.5, objectness >= the operating threshold), or "missed".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from katazuke.errors import InputError
from katazuke.perception.detection.boxes import iou_matrix, xywh_to_xyxy
from katazuke.perception.detection.config import CATEGORIES

__all__ = ["ImageGT", "ImagePred", "average_precision", "evaluate", "recall_at_iou",
           "kind_confusion", "format_report", "evaluate_detector", "IOU_THRESHOLDS",
           "SIZE_BUCKETS"]

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)
#: Box-side ranges in pixels, ``sqrt(w * h)``: COCO's 32 / 96 px limits halved for 320x240.
SIZE_BUCKETS: dict[str, tuple[float, float]] = {"small (< 16 px)": (0.0, 16.0),
                                                "medium (16-48 px)": (16.0, 48.0),
                                                "large (>= 48 px)": (48.0, float("inf"))}


@dataclass
class ImageGT:
    """Ground truth of one image: ``boxes_xywh`` (N,4) px, ``categories`` (N,) 0..C-1,
    ``held_out`` (N,) bool."""

    boxes_xywh: np.ndarray
    categories: np.ndarray
    held_out: np.ndarray
    kinds: list[str] | None = None


@dataclass
class ImagePred:
    """Predictions of one image: ``boxes_xyxy`` (K,4) px, ``scores`` (K,) objectness,
    ``category_probs`` (K,C) known-category probabilities."""

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    category_probs: np.ndarray


def _side(xyxy: np.ndarray) -> np.ndarray:
    """``sqrt(w * h)`` of ``(N, 4)`` xyxy boxes."""
    return np.sqrt(np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None) * np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None))


def _match(pred_xyxy: np.ndarray, scores: np.ndarray, gt_xyxy: np.ndarray, gt_ignore: np.ndarray,
           thr: float, pred_outside: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one matching in score order.

    Args:
        pred_outside: (K,) bool, predictions outside the evaluated size range: dropped when
            they match nothing (COCO's area-range rule).

    Returns:
        (tp (K,) bool, keep (K,) bool): keep is False for predictions that matched only ignored
        ground truth (removed from the precision/recall curve).
    """
    k = len(pred_xyxy)
    tp = np.zeros(k, bool)
    keep = np.ones(k, bool) if pred_outside is None else ~pred_outside
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
            keep[i] = True
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
                  score_threshold: float = 0.0, subset: str = "all",
                  size_range: tuple[float, float] | None = None) -> tuple[float, int]:
    """Class-agnostic recall.

    Args:
        subset: ``all``, ``known`` (held_out False) or ``held_out`` ground truth.
        score_threshold: predictions below this objectness are not used.
        size_range: only ground truth whose box side ``sqrt(w h)`` is in ``[lo, hi)`` counts.

    Returns:
        (recall, number of ground-truth boxes in the subset); recall is nan with none.
    """
    _check(gts, preds)
    hit = total = 0
    for g, p in zip(gts, preds):
        sel = {"all": np.ones(len(g.held_out), bool), "known": ~g.held_out,
               "held_out": g.held_out}[subset]
        if size_range is not None:
            side = np.sqrt(g.boxes_xywh[:, 2] * g.boxes_xywh[:, 3])
            sel = sel & (side >= size_range[0]) & (side < size_range[1])
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
    hyps = [_labelled(p, multi_label, max_per_image) for p in preds]
    ap, n_gt = _category_aps(gts, hyps, n_cat, IOU_THRESHOLDS)
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
    by_size = {}
    for name, rng in SIZE_BUCKETS.items():
        ap_b, n_b = _category_aps(gts, hyps, n_cat, IOU_THRESHOLDS[:1], rng)
        ok = n_b > 0
        rh, nh = recall_at_iou(gts, preds, 0.5, score_threshold, "held_out", rng)
        rk, nk = recall_at_iou(gts, preds, 0.5, score_threshold, "known", rng)
        by_size[name] = {"map50": float(np.mean(ap_b[ok, 0])) if ok.any() else float("nan"),
                         "n_gt_known": int(nk), "recall50_known_at_threshold": rk,
                         "n_gt_held_out": int(nh), "recall50_held_out_at_threshold": rh}
    res["by_size"] = by_size
    if all(g.kinds is not None for g in gts) and gts:
        res["kind_confusion"] = kind_confusion(gts, preds, score_threshold, categories)
    return res


def _category_aps(gts: list[ImageGT], hyps: list, n_cat: int, thresholds: np.ndarray,
                  size_range: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(AP (n_cat, len(thresholds)), n_gt (n_cat,)) over category hypotheses ``hyps``."""
    ap = np.full((n_cat, len(thresholds)), np.nan)
    n_gt = np.zeros(n_cat, int)
    for c in range(n_cat):
        for t_i, thr in enumerate(thresholds):
            tps, scs = [], []
            count = 0
            for g, (boxes, labels, scores) in zip(gts, hyps):
                sel = labels == c
                ignore = g.held_out.copy()
                outside = None
                if size_range is not None:
                    side = np.sqrt(g.boxes_xywh[:, 2] * g.boxes_xywh[:, 3])
                    ignore |= (side < size_range[0]) | (side >= size_range[1])
                    ps = _side(boxes[sel])
                    outside = (ps < size_range[0]) | (ps >= size_range[1])
                gt_sel = (g.categories == c) | ignore
                count += int(np.sum((g.categories == c) & ~ignore))
                tp, keep = _match(boxes[sel], scores[sel], xywh_to_xyxy(g.boxes_xywh[gt_sel]),
                                  ignore[gt_sel], float(thr), outside)
                tps.append(tp[keep])
                scs.append(scores[sel][keep])
            n_gt[c] = count
            ap[c, t_i] = average_precision(np.concatenate(tps) if tps else np.zeros(0, bool),
                                           np.concatenate(scs) if scs else np.zeros(0), count)
    return ap, n_gt


def kind_confusion(gts: list[ImageGT], preds: list[ImagePred], score_threshold: float = 0.3,
                   categories: tuple[str, ...] = CATEGORIES) -> dict:
    """Per object kind: how its ground truth was labelled.

    Each ground-truth box is matched one-to-one (greedy, objectness order, IoU >= 0.5) to a
    prediction with objectness >= ``score_threshold``; the count goes to that prediction's most
    probable category, or to ``missed``. Needs ``ImageGT.kinds``.

    Returns:
        ``{kind: {"category": its true category, "held_out": bool, "counts": {label: n}}}``
        with labels ``categories + ("missed",)``.
    """
    _check(gts, preds)
    out: dict = {}
    for g, p in zip(gts, preds):
        if g.kinds is None or len(g.kinds) != len(g.boxes_xywh):
            raise InputError("kind_confusion() needs ImageGT.kinds, one kind name per box")
        keep = p.scores >= score_threshold
        boxes, probs, scores = p.boxes_xyxy[keep], p.category_probs[keep], p.scores[keep]
        gt_xyxy = xywh_to_xyxy(g.boxes_xywh)
        label = np.full(len(gt_xyxy), -1)
        if len(boxes) and len(gt_xyxy):
            iou = iou_matrix(boxes, gt_xyxy)
            for i in np.argsort(-scores, kind="stable"):
                cand = np.where((label < 0) & (iou[i] >= 0.5))[0]
                if len(cand):
                    label[cand[np.argmax(iou[i, cand])]] = int(np.argmax(probs[i]))
        for j, kind in enumerate(g.kinds):
            row = out.setdefault(kind, {"category": categories[int(g.categories[j])],
                                        "held_out": bool(g.held_out[j]),
                                        "counts": {c: 0 for c in (*categories, "missed")}})
            row["counts"][categories[label[j]] if label[j] >= 0 else "missed"] += 1
    return dict(sorted(out.items(), key=lambda kv: (categories.index(kv[1]["category"]), kv[0])))


def evaluate_detector(det, samples: list, score_threshold: float = 0.3, progress: bool = False
                      ) -> tuple[dict, list]:
    """A :class:`~katazuke.perception.detection.Detector` (decoding at a low score threshold)
    over dataset samples, scored both ways from one network pass.

    Returns:
        (metrics, raw predictions). Metrics are :func:`evaluate` of the full pipeline with
        ``kind_confusion``, plus ``multi_label`` (the COCO protocol), ``classifier`` (its file or
        ``"none"``) and, when a second stage ran, its settings and ``detector_only``: the same
        figures without it.
    """
    raws, alone = det.predict_samples_pair(samples, progress=progress)
    gts = [ImageGT(s.boxes_xywh, s.categories, s.held_out, list(s.kinds)) for s in samples]

    def score(rs: list) -> tuple[dict, dict]:
        preds = [ImagePred(r["boxes"], r["scores"], r["category_probs"]) for r in rs]
        return (evaluate(gts, preds, score_threshold=score_threshold),
                evaluate(gts, preds, score_threshold=score_threshold, multi_label=True))

    m, mm = score(raws)
    m["multi_label"] = {"map50": mm["map50"], "map": mm["map"], "per_category": mm["per_category"]}
    ref = det.refiner
    m["classifier"] = ref.path if ref is not None else "none"
    if ref is not None:
        m["classifier_fusion_weight"] = ref.fusion_weight
        m["classifier_objectness_weight"] = ref.objectness_weight
        m["classifier_box_regression"] = ref.box_regression
        d, dm = score(alone)
        m["detector_only"] = {"map50": d["map50"], "map": d["map"], "multi_label_map50": dm["map50"],
                              "per_category": {k: v["ap50"] for k, v in d["per_category"].items()},
                              "by_size": {k: v["map50"] for k, v in d["by_size"].items()},
                              **{k: d[k] for k in ("agnostic_ap50", "recall50_held_out",
                                                   "recall50_held_out_at_threshold",
                                                   "recall50_all")}}
    return m, raws


def format_report(m: dict) -> str:
    """Markdown summary of :func:`evaluate` output."""
    lines = ["| metric | value |", "|---|---|",
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
    if m.get("by_size"):
        lines += ["", f"By object size (box side sqrt(w h); recalls at objectness >= "
                  f"{m['score_threshold']}):", "",
                  "| size | mAP@0.5 | known objects | recall@0.5 known | held-out objects | "
                  "recall@0.5 held-out |", "|---|---|---|---|---|---|"]
        for name, v in m["by_size"].items():
            lines.append(f"| {name} | {v['map50']:.3f} | {v['n_gt_known']} | "
                         f"{v['recall50_known_at_threshold']:.3f} | {v['n_gt_held_out']} | "
                         f"{v['recall50_held_out_at_threshold']:.3f} |")
    if m.get("kind_confusion"):
        labels = list(next(iter(m["kind_confusion"].values()))["counts"])
        lines += ["", "Per kind: top category of the matching box (IoU >= 0.5, objectness >= "
                  f"{m['score_threshold']}); * = held-out kind:", "",
                  "| kind | category | " + " | ".join(labels) + " | correct |",
                  "|---|---|" + "---|" * (len(labels) + 1)]
        for kind, v in m["kind_confusion"].items():
            c = v["counts"]
            found = sum(n for k, n in c.items() if k != "missed")
            acc = c[v["category"]] / found if found else float("nan")
            lines.append(f"| {kind}{'*' if v['held_out'] else ''} | {v['category']} | "
                         + " | ".join(str(c[k]) for k in labels) + f" | {acc:.2f} |")
    return "\n".join(lines)
