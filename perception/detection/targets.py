"""Training targets on the stride-4 grid (CenterNet-style Gaussian peaks)."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["gaussian_radius", "build_targets"]


def gaussian_radius(w: float, h: float, min_overlap: float = 0.7) -> float:
    """Radius (cells) such that a centre shifted by it still overlaps the box by ``min_overlap``.

    The three cases of CornerNet/CenterNet's derivation; returns the smallest root.
    """
    a1, b1 = 1.0, h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2 = 4.0, 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + math.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def build_targets(boxes_xywh: np.ndarray, categories: np.ndarray, grid_hw: tuple[int, int],
                  stride: int, max_objects: int = 128) -> dict[str, np.ndarray]:
    """Targets of one image.

    Args:
        boxes_xywh: ``(N, 4)`` float, ``[x, y, w, h]`` pixels in the network input.
        categories: ``(N,)`` int, category index 0..C-1, or -1 for "object, category unknown"
            (still an objectness positive, no category loss).
        grid_hw: ``(Hg, Wg)`` output grid size, cells.
        stride: pixels per cell.
        max_objects: fixed number of target slots (extra objects, smallest first, are dropped).

    Returns:
        dict with ``heatmap`` (Hg, Wg) float32 in [0, 1]; ``index`` (M,) int64 flat cell index;
        ``mask`` (M,) float32 1 for used slots; ``size`` (M, 2) log(w/stride), log(h/stride);
        ``offset`` (M, 2) sub-cell centre offsets; ``box`` (M, 4) xyxy pixels;
        ``category`` (M,) int64 (-1 = no category loss).
    """
    hg, wg = grid_hw
    heat = np.zeros((hg, wg), np.float32)
    idx = np.zeros(max_objects, np.int64)
    mask = np.zeros(max_objects, np.float32)
    size = np.zeros((max_objects, 2), np.float32)
    off = np.zeros((max_objects, 2), np.float32)
    box = np.zeros((max_objects, 4), np.float32)
    cat = np.full(max_objects, -1, np.int64)
    if len(boxes_xywh):
        order = np.argsort(-(boxes_xywh[:, 2] * boxes_xywh[:, 3]))[:max_objects]
    else:
        order = np.zeros(0, np.int64)
    ys, xs = np.ogrid[:hg, :wg]
    for slot, i in enumerate(order):
        x, y, w, h = (float(v) for v in boxes_xywh[i])
        cx, cy = (x + w / 2) / stride, (y + h / 2) / stride
        ix, iy = min(max(int(cx), 0), wg - 1), min(max(int(cy), 0), hg - 1)
        r = max(0.0, gaussian_radius(w / stride, h / stride))
        sigma = (2 * int(r) + 1) / 6
        g = np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma ** 2))
        np.maximum(heat, g.astype(np.float32), out=heat)
        idx[slot] = iy * wg + ix
        mask[slot] = 1.0
        size[slot] = (math.log(max(w, 1.0) / stride), math.log(max(h, 1.0) / stride))
        off[slot] = (cx - ix, cy - iy)
        box[slot] = (x, y, x + w, y + h)
        cat[slot] = int(categories[i])
    return {"heatmap": heat, "index": idx, "mask": mask, "size": size, "offset": off,
            "box": box, "category": cat}
