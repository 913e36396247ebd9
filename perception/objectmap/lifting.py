"""Lift 2D detections to 3D with a depth image and pinhole intrinsics."""
from __future__ import annotations

import numpy as np

__all__ = ["box_to_3d"]


def box_to_3d(box_xywh: np.ndarray, depth: np.ndarray, K: np.ndarray, centre_fraction: float = 0.5,
              max_depth: float = 6.0) -> tuple[np.ndarray, np.ndarray] | None:
    """Camera-frame centre ``(3,)`` and extent ``(3,)`` (m) of a box from depth, or None.

    The median of valid depths (finite, in (0, max_depth]) in the central ``centre_fraction``
    of the box is the front-surface depth ``z``; the box centre pixel back-projects at
    ``z + depth_extent / 2``, where the depth extent is taken as the smaller of the metric box
    width and height (objects are assumed about as deep as their narrow side).
    """
    x, y, w, h = (float(v) for v in box_xywh)
    H, W = depth.shape
    cw, ch = max(w * centre_fraction, 1.0), max(h * centre_fraction, 1.0)
    cx, cy = x + w / 2, y + h / 2
    x0, x1 = int(np.clip(np.floor(cx - cw / 2), 0, W - 1)), int(np.clip(np.ceil(cx + cw / 2), 1, W))
    y0, y1 = int(np.clip(np.floor(cy - ch / 2), 0, H - 1)), int(np.clip(np.ceil(cy + ch / 2), 1, H))
    patch = depth[y0:y1, x0:x1]
    valid = patch[np.isfinite(patch) & (patch > 0) & (patch <= max_depth)]
    if valid.size == 0:
        return None
    z = float(np.median(valid))
    fx, fy, px, py = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    ex, ey = w * z / fx, h * z / fy
    ez = min(ex, ey)
    zc = z + ez / 2
    p = np.array([(cx - px) * zc / fx, (cy - py) * zc / fy, zc])
    return p, np.array([ex, ey, ez])
