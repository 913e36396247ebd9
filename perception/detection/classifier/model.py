"""The crop classifier's network, its crop geometry and its weights file.

The one-stage detector finds objects well but names them poorly: its category head reads a
stride-4 feature map where a typical object is 2-4 cells wide, and small round or blocky
kinds of different categories look alike there. This stage looks again at each detected box:
a square window around it (``context`` times the longer side plus ``pad_px``), resampled to
``crop_size`` x ``crop_size`` from the full-resolution image, so every object is seen at one
canonical scale. The crop has 4 channels, RGB and depth relative to the object's centre (in
5 cm units, so the shape in depth does not depend on how far away the object is), and two
scalars, ``log(window side px)`` and ``log(centre depth m)``: their sum is the log of the
metric size up to the focal length, which a linear layer reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from katazuke.config import config_to_dict, load_config
from katazuke.errors import KatazukeError
from katazuke.perception.detection.config import CATEGORIES

__all__ = ["ClassifierConfig", "CropClassifier", "make_crops", "depth_metres",
           "save_classifier", "load_classifier", "DEFAULT_CLASSIFIER_WEIGHTS", "box_targets",
           "decode_boxes", "crop_windows", "jitter_boxes", "DEPTH_UNIT_M"]

DEFAULT_CLASSIFIER_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "classifier.pt"
_FORMAT = "katazuke-crop-classifier"
_HINT = ("regenerate it with `katazuke train classifier --data DIR --out OUT` (see "
         "perception/detection/weights/README.md), or set classifier_weights to 'none' to "
         "use the detector's own category head")
#: Relative depth unit of the crop's depth channel, metres.
DEPTH_UNIT_M = 0.05
RGB_MEAN, RGB_STD = 0.45, 0.25


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture and crop geometry of the crop classifier."""

    crop_size: int = field(default=32, metadata={"help": "crop side, pixels (multiple of 4)"})
    context: float = field(default=1.5, metadata={
        "help": "window side = context * longer box side + pad_px"})
    pad_px: float = field(default=6.0, metadata={"help": "extra window side, image pixels"})
    widths: tuple[int, int, int] = field(default=(24, 48, 96), metadata={
        "help": "channels at crop_size, /2 and /4"})
    hidden: int = field(default=128, metadata={"help": "width of the hidden fully connected layer"})
    num_categories: int = field(default=6, metadata={"help": "known categories (contract: 6)"})
    second_stage: bool = field(default=False, metadata={
        "help": "also predict objectness (is this box an object, IoU >= 0.5) and a box "
                "correction, trained with background windows as negatives"})



def depth_metres(depth: np.ndarray) -> np.ndarray:
    """Float32 metres, 0 where there is no reading (uint16 mm in, or float metres with NaN/inf)."""
    if depth.dtype == np.uint16:
        return depth.astype(np.float32) / 1000.0
    d = depth.astype(np.float32, copy=True)
    d[~np.isfinite(d)] = 0.0
    d[d < 0] = 0.0
    return d


def jitter_boxes(boxes_xyxy: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Boxes shifted by up to ``jitter`` of their width/height and rescaled by up to
    ``exp(+-jitter)`` per side: what detector boxes of an object look like."""
    b = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    n = len(b)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx = (b[:, 0] + b[:, 2]) / 2 + rng.uniform(-jitter, jitter, n) * w
    cy = (b[:, 1] + b[:, 3]) / 2 + rng.uniform(-jitter, jitter, n) * h
    w = w * np.exp(rng.uniform(-jitter, jitter, n))
    h = h * np.exp(rng.uniform(-jitter, jitter, n))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def crop_windows(boxes_xyxy: np.ndarray, cfg: ClassifierConfig
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cx, cy, side)`` of the square window around each box (pixels)."""
    b = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    bw, bh = np.maximum(b[:, 2] - b[:, 0], 1.0), np.maximum(b[:, 3] - b[:, 1], 1.0)
    return ((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
            np.maximum(bw, bh) * cfg.context + cfg.pad_px)


def box_targets(windows: tuple[np.ndarray, np.ndarray, np.ndarray], gt_xyxy: np.ndarray
                ) -> np.ndarray:
    """``(N, 4)`` regression targets of ground-truth boxes relative to their windows:
    centre offset / side (x, y), log(width / side), log(height / side)."""
    cx, cy, side = windows
    g = np.asarray(gt_xyxy, np.float64).reshape(-1, 4)
    gw, gh = np.maximum(g[:, 2] - g[:, 0], 1.0), np.maximum(g[:, 3] - g[:, 1], 1.0)
    return np.stack([((g[:, 0] + g[:, 2]) / 2 - cx) / side, ((g[:, 1] + g[:, 3]) / 2 - cy) / side,
                     np.log(gw / side), np.log(gh / side)], 1)


def decode_boxes(windows: tuple[np.ndarray, np.ndarray, np.ndarray], deltas: np.ndarray
                 ) -> np.ndarray:
    """Inverse of :func:`box_targets`: ``(N, 4)`` xyxy boxes."""
    cx, cy, side = windows
    d = np.asarray(deltas, np.float64).reshape(-1, 4)
    x, y = cx + d[:, 0] * side, cy + d[:, 1] * side
    w, h = np.exp(np.clip(d[:, 2], -6, 1)) * side, np.exp(np.clip(d[:, 3], -6, 1)) * side
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 1)


def make_crops(rgb: np.ndarray, depth_m: np.ndarray, boxes_xyxy: np.ndarray,
               cfg: ClassifierConfig, rng: np.random.Generator | None = None,
               box_jitter: float = 0.0, depth_noise: float = 0.0):
    """Classifier inputs for the boxes of one image.

    Args:
        rgb: ``(H, W, 3)`` uint8.
        depth_m: ``(H, W)`` float32 metres, 0 = no reading (see :func:`depth_metres`).
        boxes_xyxy: ``(N, 4)`` pixels.
        rng: random generator for the training augmentations (None = none).
        box_jitter: shift/scale jitter of the boxes first (training, see :func:`jitter_boxes`).
        depth_noise: simulated sensor noise scale (training).

    Returns:
        ``(x, scalars)``: ``(N, 4, S, S)`` float32 tensor (normalised RGB, relative depth) and
        ``(N, 2)`` float32 ``[log(window side px), log(centre depth m)]``.
    """
    import torch
    from torch.nn import functional as F

    s = cfg.crop_size
    b = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    n = len(b)
    if n == 0:
        return torch.zeros(0, 4, s, s), torch.zeros(0, 2)
    h, w = rgb.shape[:2]
    if rng is not None and box_jitter > 0:
        b = jitter_boxes(b, rng, box_jitter)
    cx, cy, side = crop_windows(b, cfg)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = torch.from_numpy(side / w)
    theta[:, 1, 1] = torch.from_numpy(side / h)
    theta[:, 0, 2] = torch.from_numpy(2 * cx / w - 1)
    theta[:, 1, 2] = torch.from_numpy(2 * cy / h - 1)
    grid = F.affine_grid(theta, (n, 1, s, s), align_corners=False)
    img = torch.from_numpy(np.require(rgb, np.uint8, ['C', 'W'])).permute(2, 0, 1).float().div_(255.0)
    x = F.grid_sample(img[None].expand(n, -1, -1, -1), grid, align_corners=False)
    dep = torch.from_numpy(np.require(depth_m, np.float32, ['C', 'W']))[None, None]
    d = F.grid_sample(dep.expand(n, -1, -1, -1), grid, mode="nearest", align_corners=False)
    if rng is not None and depth_noise > 0:
        scale = torch.from_numpy(1.0 + rng.normal(0, 0.02 * depth_noise, (n, 1, 1, 1))).float()
        sigma = (0.0015 + 0.0025 * d ** 2) * depth_noise
        noisy = d * scale + sigma * torch.from_numpy(rng.standard_normal(d.shape)).float()
        d = torch.where(d > 0, noisy.clamp(min=1e-3), d)
    q = s // 4
    centre = d[:, 0, s // 2 - q // 2:s // 2 + q // 2 + 1, s // 2 - q // 2:s // 2 + q // 2 + 1]
    centre = centre.reshape(n, -1)
    centre = torch.where(centre > 0, centre, torch.full_like(centre, float("nan")))
    zc = centre.nanmedian(1).values
    # No reading at the centre: the median of the whole window, else 2 m.
    whole = torch.where(d > 0, d, torch.full_like(d, float("nan"))).reshape(n, -1).nanmedian(1).values
    zc = torch.where(torch.isnan(zc), whole, zc).nan_to_num(2.0).clamp(0.1, 20.0)
    rel = torch.where(d > 0, (d - zc.view(n, 1, 1, 1)) / DEPTH_UNIT_M, torch.zeros_like(d))
    x = torch.cat([(x - RGB_MEAN) / RGB_STD, rel.clamp(-3.0, 3.0)], 1)
    scalars = torch.stack([torch.from_numpy(np.log(side)).float(), torch.log(zc)], 1)
    return x, scalars


def CropClassifier(cfg: ClassifierConfig | None = None):  # noqa: N802 - a module factory
    """The crop classifier network (torch ``nn.Module``): crops ``(B, 4, S, S)`` and scalars
    ``(B, 2)`` in; out ``(B, C)`` category logits, then with ``second_stage`` one objectness
    logit and 4 box deltas (see :func:`box_targets`)."""
    import torch
    from torch import nn

    cfg = cfg or ClassifierConfig()
    if cfg.crop_size % 4:
        raise KatazukeError(f"crop_size must be a multiple of 4, got {cfg.crop_size}")

    def cbr(a: int, b: int, stride: int = 1) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(a, b, 3, stride, 1, bias=False), nn.BatchNorm2d(b),
                             nn.ReLU(inplace=True))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = cfg
            c1, c2, c3 = cfg.widths
            self.features = nn.Sequential(cbr(4, c1), cbr(c1, c2, 2), cbr(c2, c2), cbr(c2, c3, 2),
                                          cbr(c3, c3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Sequential(nn.Linear(c3 + 2, cfg.hidden), nn.ReLU(inplace=True),
                                      nn.Linear(cfg.hidden, cfg.num_categories
                                                + (5 if cfg.second_stage else 0)))

        def forward(self, x: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
            return self.head(torch.cat([self.features(x), scalars], 1))

    return Net()


def save_classifier(path: str | Path, model: Any, fusion_weight: float, extra: dict | None = None,
                    objectness_weight: float = 0.0, box_regression: bool = False) -> None:
    """Write a classifier weights file: state dict, architecture, the inference settings chosen
    on validation images (fusion weight, objectness weight, box regression on/off), metadata."""
    from katazuke.perception.detection.weights_io import save_payload

    save_payload(path, _FORMAT, model, config_to_dict(model.config), categories=list(CATEGORIES),
                 fusion_weight=float(fusion_weight), objectness_weight=float(objectness_weight),
                 box_regression=bool(box_regression), extra=extra or {})


def load_classifier(path: str | Path) -> tuple[Any, dict]:
    """(eval-mode network, payload); :class:`KatazukeError` naming the file when it is missing,
    corrupt or not a classifier weights file."""
    from katazuke.perception.detection.weights_io import load_network

    def check(payload: dict) -> str | None:
        if list(payload.get("categories", [])) != list(CATEGORIES):
            return (f"trained for categories {payload.get('categories')}, this build has "
                    f"{list(CATEGORIES)}")
        return None

    return load_network(path, _FORMAT, "crop classifier weights", _HINT,
                        lambda p: CropClassifier(load_config(ClassifierConfig, p["model_config"],
                                                             where=str(path))), check)
