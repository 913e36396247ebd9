"""Detector losses: focal loss on objectness, L1 + GIoU on boxes, CE on categories."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from katazuke.perception.detection.boxes import giou_loss

__all__ = ["focal_heatmap_loss", "detection_loss"]


def focal_heatmap_loss(logits: torch.Tensor, target: torch.Tensor,
                       alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced pixelwise focal loss, normalised by the number of peaks.

    Args:
        logits: ``(B, 1, H, W)`` heatmap logits.
        target: ``(B, H, W)`` Gaussian targets in [0, 1]; peaks are exactly 1.
    """
    logits = logits[:, 0]
    pos = target.eq(1.0).float()
    neg = 1.0 - pos
    log_p = F.logsigmoid(logits)
    log_1mp = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos_loss = -(log_p * (1 - p) ** alpha * pos).sum()
    neg_loss = -(log_1mp * p ** alpha * (1 - target) ** beta * neg).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1.0)


def _gather(maps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` maps, ``(B, M)`` flat indices -> ``(B, M, C)``."""
    b, c = maps.shape[:2]
    flat = maps.reshape(b, c, -1)
    return flat.gather(2, index[:, None, :].expand(b, c, index.shape[1])).permute(0, 2, 1)


def detection_loss(out: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor], stride: int,
                   weights: tuple[float, float, float, float, float] = (1.0, 1.0, 1.0, 2.0, 1.0)
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts.

    Args:
        out: network outputs (see ObjectnessNet).
        tgt: batched :func:`~katazuke.perception.detection.targets.build_targets` tensors.
        stride: pixels per cell.
        weights: (heatmap, size L1, offset L1, GIoU, category CE) weights.
    """
    hm = focal_heatmap_loss(out["heatmap"], tgt["heatmap"])
    mask = tgt["mask"]
    n = mask.sum().clamp(min=1.0)
    size = _gather(out["size"], tgt["index"])
    off = _gather(out["offset"], tgt["index"])
    size_l1 = ((size - tgt["size"]).abs().sum(-1) * mask).sum() / n
    off_l1 = ((off - tgt["offset"]).abs().sum(-1) * mask).sum() / n
    wg = out["heatmap"].shape[-1]
    cx = (tgt["index"] % wg).float() + off[..., 0]
    cy = (tgt["index"] // wg).float() + off[..., 1]
    wh = torch.exp(size.clamp(max=6.0))
    pred = torch.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2,
                        cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], -1) * stride
    giou = (giou_loss(pred, tgt["box"]) * mask).sum() / n
    cat_logits = _gather(out["category"], tgt["index"])
    cat_t = tgt["category"]
    valid = (cat_t >= 0) & (mask > 0)
    if valid.any():
        ce = F.cross_entropy(cat_logits[valid], cat_t[valid])
    else:
        ce = cat_logits.sum() * 0.0
    w = weights
    total = w[0] * hm + w[1] * size_l1 + w[2] * off_l1 + w[3] * giou + w[4] * ce
    parts = {k: float(v.detach()) for k, v in (("heatmap", hm), ("size", size_l1),
                                               ("offset", off_l1), ("giou", giou),
                                               ("category", ce), ("total", total))}
    return total, parts
