"""Box utilities in numpy and torch: IoU, GIoU and class-agnostic NMS (no torchvision)."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["xywh_to_xyxy", "xyxy_to_xywh", "iou_matrix", "giou_loss", "nms"]


def xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """``(N, 4)`` [x, y, w, h] -> [x0, y0, x1, y1]."""
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def xyxy_to_xywh(b: np.ndarray) -> np.ndarray:
    """``(N, 4)`` [x0, y0, x1, y1] -> [x, y, w, h]."""
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(N, M)`` of ``(N, 4)`` and ``(M, 4)`` xyxy boxes (0 for empty boxes)."""
    a = np.asarray(a_xyxy, np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def giou_loss(pred_xyxy: torch.Tensor, target_xyxy: torch.Tensor) -> torch.Tensor:
    """Elementwise ``1 - GIoU`` of matched ``(..., 4)`` xyxy boxes."""
    lt = torch.maximum(pred_xyxy[..., :2], target_xyxy[..., :2])
    rb = torch.minimum(pred_xyxy[..., 2:], target_xyxy[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_p = (pred_xyxy[..., 2:] - pred_xyxy[..., :2]).clamp(min=0).prod(-1)
    area_t = (target_xyxy[..., 2:] - target_xyxy[..., :2]).clamp(min=0).prod(-1)
    union = area_p + area_t - inter
    iou = inter / union.clamp(min=1e-6)
    elt = torch.minimum(pred_xyxy[..., :2], target_xyxy[..., :2])
    erb = torch.maximum(pred_xyxy[..., 2:], target_xyxy[..., 2:])
    enclose = (erb - elt).clamp(min=0).prod(-1).clamp(min=1e-6)
    return 1.0 - (iou - (enclose - union) / enclose)


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        boxes_xyxy: ``(N, 4)`` boxes.
        scores: ``(N,)`` scores.
        iou_threshold: a box is dropped if its IoU with a kept higher-scoring box exceeds this.

    Returns:
        ``(K,)`` int64 indices of kept boxes, by decreasing score (ties: lower index first).
    """
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(boxes), bool)
    iou = iou_matrix(boxes, boxes) if len(boxes) else np.zeros((0, 0))
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= iou[i] > iou_threshold
    return np.asarray(keep, np.int64)
