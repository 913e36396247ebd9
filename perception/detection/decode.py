"""Turn head maps into boxes: peak extraction, box decoding, NMS, the 'unknown' category."""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from katazuke.perception.detection.boxes import nms

__all__ = ["decode", "category_scores_with_unknown"]


def category_scores_with_unknown(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Append an ``unknown`` probability to known-category probabilities.

    ``u = clip((threshold - max_k p_k) / threshold, 0, 1)``; the known probabilities are
    scaled by ``1 - u`` so the result still sums to 1. Confident predictions (max >= threshold)
    keep ``u = 0``; a flat distribution moves most of its mass to ``unknown``.

    Args:
        probs: ``(N, C)`` known-category probabilities (rows sum to 1).
        threshold: in (0, 1].

    Returns:
        ``(N, C + 1)`` probabilities, last column = unknown.
    """
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, C), got shape {probs.shape}")
    top = probs.max(axis=1) if probs.size else np.zeros(len(probs))
    u = np.clip((threshold - top) / threshold, 0.0, 1.0)
    return np.concatenate([probs * (1.0 - u)[:, None], u[:, None]], axis=1)


def decode(out: dict[str, torch.Tensor], stride: int, scale_xy: tuple[float, float],
           score_threshold: float, nms_iou: float, max_detections: int, peak_kernel: int = 3,
           pre_nms_top_k: int = 200) -> list[dict[str, np.ndarray]]:
    """Decode a batch of head maps into per-image detections.

    Args:
        out: network outputs for a batch (see ObjectnessNet), any device.
        stride: pixels per cell in the network input.
        scale_xy: (sx, sy) factors from network-input pixels to original-image pixels.
        score_threshold: minimum objectness.
        nms_iou: class-agnostic NMS IoU threshold.
        max_detections: detections per image at most.
        peak_kernel: odd max-pool window for local maxima.
        pre_nms_top_k: peaks considered before NMS.

    Returns:
        per image, dict with ``boxes`` (K, 4) xyxy float64 original pixels, ``scores`` (K,),
        ``category_probs`` (K, C) softmax over known categories. Sorted by decreasing score.
    """
    heat = torch.sigmoid(out["heatmap"].float())
    pad = peak_kernel // 2
    peaks = F.max_pool2d(heat, peak_kernel, 1, pad)
    heat = heat * (peaks == heat).float()
    b, _, hg, wg = heat.shape
    flat = heat.reshape(b, -1)
    k = min(pre_nms_top_k, flat.shape[1])
    scores, idx = flat.topk(k, dim=1)
    size = out["size"].float().reshape(b, 2, -1)
    off = out["offset"].float().reshape(b, 2, -1)
    cat = torch.softmax(out["category"].float(), dim=1).reshape(b, out["category"].shape[1], -1)
    results = []
    sx, sy = scale_xy
    for i in range(b):
        keep = scores[i] >= score_threshold
        sc, ix = scores[i][keep], idx[i][keep]
        cx = ((ix % wg).float() + off[i, 0, ix]) * stride
        cy = ((ix // wg).float() + off[i, 1, ix]) * stride
        w = torch.exp(size[i, 0, ix].clamp(max=8.0)) * stride
        h = torch.exp(size[i, 1, ix].clamp(max=8.0)) * stride
        boxes = torch.stack([(cx - w / 2) * sx, (cy - h / 2) * sy,
                             (cx + w / 2) * sx, (cy + h / 2) * sy], 1).cpu().numpy().astype(np.float64)
        sc_np = sc.cpu().numpy().astype(np.float64)
        probs = cat[i][:, ix].T.cpu().numpy().astype(np.float64)
        kept = nms(boxes, sc_np, nms_iou)[:max_detections]
        results.append({"boxes": boxes[kept], "scores": sc_np[kept], "category_probs": probs[kept]})
    return results
