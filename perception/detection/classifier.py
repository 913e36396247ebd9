"""Second-stage category classifier on object crops (RGB + relative depth).

The one-stage detector finds objects well (class-agnostic AP 0.69 on the test profile) but
names them poorly: its category head reads a stride-4 feature map where a typical object is
2-4 cells wide, and small round or blocky kinds of different categories look alike there.
This stage looks again at each detected box: a square window around it (``context`` times the
longer side plus ``pad_px``), resampled to ``crop_size`` x ``crop_size`` from the full-resolution
image, so every object is seen at one canonical scale. The crop has 4 channels, RGB and depth
relative to the object's centre (in 5 cm units, so the shape in depth does not depend on how
far away the object is), and two scalars, ``log(window side px)`` and ``log(centre depth m)``:
their sum is the log of the metric size up to the focal length, which a linear layer reads.

Trained on ground-truth boxes of the ``train`` profile with random shifts and scales of the
box (to look like detector boxes) and the detector's colour/depth-noise augmentations.
At inference the detector's and the classifier's probabilities are fused in log space,
``p ~ p_det^(1-w) * p_cls^w``, with ``w`` chosen on held-back training images and stored in
the weights file.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from katazuke.config import config_to_dict, load_config
from katazuke.errors import KatazukeError
from katazuke.perception.detection.config import CATEGORIES

__all__ = ["ClassifierConfig", "ClassifierTrainConfig", "CropClassifier", "make_crops",
           "depth_metres", "save_classifier", "load_classifier", "CategoryRefiner",
           "train_classifier", "DEFAULT_CLASSIFIER_WEIGHTS", "fuse_probs", "retune_settings",
           "choose_settings", "stage_loss", "box_targets", "decode_boxes", "crop_windows",
           "jitter_boxes"]

DEFAULT_CLASSIFIER_WEIGHTS = Path(__file__).resolve().parent / "weights" / "classifier.pt"
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


@dataclass(frozen=True)
class ClassifierTrainConfig:
    """``katazuke train classifier`` settings."""

    epochs: int = field(default=40, metadata={"help": "passes over the training objects"})
    batch_size: int = field(default=256, metadata={"help": "crops per step"})
    lr: float = field(default=2e-3, metadata={"help": "peak AdamW learning rate (cosine decay)"})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    seed: int = field(default=0, metadata={"help": "seed of init, shuffling, augmentation"})
    num_threads: int = field(default=2, metadata={"help": "torch threads while training"})
    val_fraction: float = field(default=0.05, metadata={
        "help": "images held back (the detector's split for the same seed)"})
    max_images: int = field(default=0, metadata={"help": "use at most this many images (0 = all)"})
    time_budget_min: float = field(default=0.0, metadata={
        "help": "stop after this many minutes of steps (0 = no limit); the LR schedule follows it"})
    box_jitter: float = field(default=0.15, metadata={
        "help": "random box shift (fraction of w/h) and log-scale change, like detector boxes"})
    color_jitter: float = field(default=0.3, metadata={"help": "brightness/contrast strength"})
    channel_shuffle_p: float = field(default=0.2, metadata={"help": "RGB permutation probability"})
    depth_noise: float = field(default=1.0, metadata={
        "help": "scale of simulated depth-sensor noise (0 = off)"})
    negatives_per_object: float = field(default=1.0, metadata={
        "help": "background windows per ground-truth object (second stage only): half random "
                "boxes of object-like sizes, half badly placed boxes next to objects"})
    proposals_per_image: int = field(default=0, metadata={
        "help": "second stage: also this many of the detector's own boxes per image and epoch "
                "(drawn from its best `proposal_top_k` on the training image, labelled by IoU "
                "with the ground truth), so training sees the boxes inference sees"})
    proposal_objectness: bool = field(default=True, metadata={
        "help": "proposals also train the objectness output; false: only category and box "
                "(objectness stays learned from jittered ground truth and background windows, "
                "which keeps it from learning the training kinds' look as 'object')"})
    proposal_top_k: int = field(default=32, metadata={
        "help": "detector boxes per image the proposals are drawn from (the refiner's top_k)"})
    init_weights: str = field(default="", metadata={
        "help": "start from this classifier file's network (a continuation with a fresh "
                "schedule and optimiser); '' = random init"})
    model: ClassifierConfig = field(default_factory=lambda: ClassifierConfig(second_stage=True),
                                    metadata={"help": "architecture"})


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


def fuse_probs(p_det: np.ndarray, p_cls: np.ndarray, weight: float) -> np.ndarray:
    """``p ~ p_det^(1-w) * p_cls^w`` row-normalised (``w`` = 0: detector only, 1: classifier)."""
    logp = (1.0 - weight) * np.log(np.clip(p_det, 1e-9, 1.0)) + weight * np.log(np.clip(p_cls, 1e-9, 1.0))
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


class CategoryRefiner:
    """The second look at detected boxes: categories fused with the crop classifier's, and with
    a second-stage network also objectness re-scored and boxes corrected.

    ``score = s_det^(1-a) * p_obj^a`` with ``a`` = ``objectness_weight``; boxes move to the
    network's correction when ``box_regression``; then boxes are re-sorted and NMS runs again.
    """

    def __init__(self, model: Any, fusion_weight: float = 1.0, top_k: int = 32,
                 min_score: float = 0.05, objectness_weight: float = 0.0,
                 box_regression: bool = False, nms_iou: float = 0.5) -> None:
        for name, v in (("fusion", fusion_weight), ("objectness", objectness_weight)):
            if not 0.0 <= v <= 1.0:
                raise KatazukeError(f"classifier {name} weight must be in [0, 1], got {v}")
        second = bool(getattr(model.config, "second_stage", False))
        if not second and (objectness_weight > 0 or box_regression):
            raise KatazukeError("objectness re-scoring and box regression need a second-stage "
                                "classifier (ClassifierConfig.second_stage)")
        self.model = model
        self.fusion_weight = float(fusion_weight)
        self.objectness_weight = float(objectness_weight)
        self.box_regression = bool(box_regression)
        self.top_k = int(top_k)
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.metadata: dict = {}
        self.path = ""

    @classmethod
    def from_file(cls, path: str | Path, top_k: int = 32, min_score: float = 0.05,
                  fusion_weight: float | None = None, objectness_weight: float | None = None,
                  nms_iou: float = 0.5) -> "CategoryRefiner":
        """Load a classifier file with its stored settings (``None`` = stored value)."""
        model, payload = load_classifier(path)
        w = payload.get("fusion_weight", 1.0) if fusion_weight is None else fusion_weight
        a = payload.get("objectness_weight", 0.0) if objectness_weight is None else objectness_weight
        ref = cls(model, w, top_k, min_score, a, bool(payload.get("box_regression", False)), nms_iou)
        ref.metadata = payload.get("extra", {})
        ref.path = str(path)
        return ref

    def infer(self, rgb: np.ndarray, depth_m: np.ndarray, boxes_xyxy: np.ndarray
              ) -> dict[str, np.ndarray]:
        """Network outputs for the boxes of one image: ``p_cls`` (N, C), and for a second-stage
        network ``p_obj`` (N,) and corrected ``boxes`` (N, 4)."""
        import torch

        cfg = self.model.config
        x, sc = make_crops(rgb, depth_m, boxes_xyxy, cfg)
        c = cfg.num_categories
        if len(x) == 0:
            return {"p_cls": np.zeros((0, c)), "p_obj": np.zeros(0), "boxes": np.zeros((0, 4))}
        self.model.eval()
        with torch.inference_mode():
            out = self.model(x, sc).double()
        res = {"p_cls": torch.softmax(out[:, :c], 1).numpy()}
        if cfg.second_stage:
            res["p_obj"] = torch.sigmoid(out[:, c]).numpy()
            res["boxes"] = decode_boxes(crop_windows(boxes_xyxy, cfg), out[:, c + 1:c + 5].numpy())
        return res

    def selected(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """Indices of the boxes this refiner looks at: the ``top_k`` best with score >= min_score."""
        return np.where(raw["scores"] >= self.min_score)[0][:self.top_k]

    def apply(self, raw: dict[str, np.ndarray], sel: np.ndarray, outputs: dict[str, np.ndarray],
              fusion_weight: float, objectness_weight: float, box_regression: bool
              ) -> dict[str, np.ndarray]:
        """Raw detections with :meth:`infer` outputs for boxes ``sel`` merged in (a copy)."""
        from katazuke.perception.detection.boxes import nms

        out = dict(raw)
        if len(sel) == 0:
            return out
        probs = raw["category_probs"].copy()
        probs[sel] = fuse_probs(probs[sel], outputs["p_cls"], fusion_weight)
        out["category_probs"] = probs
        if objectness_weight == 0.0 and not box_regression:
            return out
        scores = raw["scores"].copy()
        boxes = raw["boxes"].copy()
        if objectness_weight > 0:
            scores[sel] = (scores[sel] ** (1.0 - objectness_weight)
                           * np.clip(outputs["p_obj"], 1e-6, 1.0) ** objectness_weight)
        if box_regression:
            boxes[sel] = outputs["boxes"]
        keep = nms(boxes, scores, self.nms_iou)
        return {"boxes": boxes[keep], "scores": scores[keep], "category_probs": probs[keep]}

    def refine(self, rgb: np.ndarray, depth: np.ndarray, raw: dict[str, np.ndarray]
               ) -> dict[str, np.ndarray]:
        """Copy of one image's raw detections (``boxes``, ``scores``, ``category_probs``) with its
        ``top_k`` boxes scoring at least ``min_score`` re-scored by the network."""
        sel = self.selected(raw)
        if len(sel) == 0:
            return dict(raw)
        outputs = self.infer(rgb, depth_metres(depth), raw["boxes"][sel])
        return self.apply(raw, sel, outputs, self.fusion_weight, self.objectness_weight,
                          self.box_regression)


# ---------------------------------------------------------------------------- training
def _negatives(gt: np.ndarray, k: int, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` background windows: half random boxes with object-like sizes, half boxes next to
    objects (shifted by 0.6-1.2 of their size), the hard negatives a detector makes."""
    if k <= 0 or len(gt) == 0:
        return np.zeros((0, 4))
    src = gt[rng.integers(0, len(gt), k)]
    bw = (src[:, 2] - src[:, 0]) * np.exp(rng.uniform(-0.4, 0.4, k))
    bh = (src[:, 3] - src[:, 1]) * np.exp(rng.uniform(-0.4, 0.4, k))
    near = rng.random(k) < 0.5
    ang = rng.uniform(0, 2 * np.pi, k)
    dist = rng.uniform(0.6, 1.2, k)
    cx = np.where(near, (src[:, 0] + src[:, 2]) / 2 + np.cos(ang) * dist * (src[:, 2] - src[:, 0]),
                  rng.uniform(0, w, k))
    cy = np.where(near, (src[:, 1] + src[:, 3]) / 2 + np.sin(ang) * dist * (src[:, 3] - src[:, 1]),
                  rng.uniform(0, h, k))
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)


def _detector_alone(samples: list, detector_weights: str = "", progress: bool = False,
                    desc: str = "detecting") -> list[dict[str, np.ndarray]]:
    """The detector's raw detections on ``samples`` without a second stage, decoded down to
    the refiner's default ``min_score`` (0.05): every box a refiner could be shown."""
    from katazuke.perception.detection.config import DetectorConfig
    from katazuke.perception.detection.detector import Detector

    det = Detector(DetectorConfig(weights=detector_weights, score_threshold=0.05,
                                  classifier_weights="none"))
    return det.predict_samples(samples, progress=progress, desc=desc)


def detector_proposals(samples: list, detector_weights: str = "", top_k: int = 32,
                       progress: bool = True) -> list[np.ndarray]:
    """The detector's best ``top_k`` boxes (xyxy, score >= 0.05, after NMS) on each sample,
    the boxes the second stage is shown at inference."""
    raws = _detector_alone(samples, detector_weights, progress, "detector proposals")
    return [np.asarray(r["boxes"][:top_k], np.float64).reshape(-1, 4) for r in raws]


def _batches(samples: list, cfg: ClassifierTrainConfig, rng: np.random.Generator,
             augment: bool, proposals: list[np.ndarray] | None = None) -> dict:
    """Training (or clean validation) crops of ``samples``.

    Each object gives one crop around its (jittered) box, labelled with its category and, for
    a second-stage network, objectness (IoU >= 0.5 with its box) and the box correction;
    ``negatives_per_object`` background windows per object (training only) are labelled
    objectness 0, or 1 with the category and box of an object they happen to cover
    (IoU >= 0.5); IoU in [0.4, 0.5) is left out of the objectness loss. With ``proposals``
    (one array of detector boxes per sample, training only) ``proposals_per_image`` of them
    per image are added and labelled the same way (objectness left out of the loss when
    ``proposal_objectness`` is false).

    Returns:
        dict: ``x`` (N,4,S,S) half, ``scalars`` (N,2), ``category`` (N,) (-1: none),
        ``objectness`` (N,) float (-1: ignore), ``box`` (N,4) targets, ``box_mask`` (N,).
    """
    import torch

    from katazuke.perception.detection.boxes import iou_matrix, xywh_to_xyxy

    m = cfg.model
    parts: dict = {k: [] for k in ("x", "scalars", "category", "objectness", "box", "box_mask")}
    for i, s in enumerate(samples):
        if len(s.boxes_xywh) == 0:
            continue
        h, w = s.rgb.shape[:2]
        gt = xywh_to_xyxy(s.boxes_xywh)
        cats = np.asarray(s.categories, np.int64)
        pos = jitter_boxes(gt, rng, cfg.box_jitter) if augment else gt
        n_neg = int(round(cfg.negatives_per_object * len(gt))) if augment and m.second_stage else 0
        extra = [_negatives(gt, n_neg, w, h, rng)]
        k = 0
        if proposals is not None and augment and m.second_stage and cfg.proposals_per_image > 0:
            cand = proposals[i]
            k = min(cfg.proposals_per_image, len(cand))
            extra.append(cand[rng.choice(len(cand), k, replace=False)] if k else np.zeros((0, 4)))
        props = np.concatenate([pos, *extra])
        iou = iou_matrix(props, gt)
        own = np.concatenate([np.arange(len(gt)), iou[len(gt):].argmax(1) if len(props) > len(gt)
                              else np.zeros(0, np.int64)]).astype(np.int64)
        best = iou[np.arange(len(props)), own]
        is_pos = np.arange(len(props)) < len(gt)
        obj = np.where(best >= 0.5, 1.0, np.where(best < 0.4, 0.0, -1.0))
        if k and not cfg.proposal_objectness:
            obj[len(props) - k:] = -1.0
        covers = is_pos | (best >= 0.5)
        x, sc = make_crops(s.rgb, depth_metres(s.depth), props, m, rng if augment else None, 0.0,
                           cfg.depth_noise if augment else 0.0)
        parts["x"].append(x.half())
        parts["scalars"].append(sc)
        parts["category"].append(torch.from_numpy(np.where(covers, cats[own], -1)))
        parts["objectness"].append(torch.from_numpy(obj).float())
        parts["box"].append(torch.from_numpy(box_targets(crop_windows(props, m), gt[own])).float())
        parts["box_mask"].append(torch.from_numpy(covers.astype(np.float32)))
    return {k: torch.cat(v) for k, v in parts.items()}


def _augment(x, box, rng: np.random.Generator, cfg: ClassifierTrainConfig):
    """Colour jitter, RGB permutation and horizontal flips (box targets flipped too)."""
    import torch

    n = len(x)
    rgb = x[:, :3]
    if cfg.color_jitter > 0:
        cj = cfg.color_jitter
        contrast = torch.from_numpy(rng.uniform(1 - cj, 1 + cj, (n, 1, 1, 1))).float()
        bright = torch.from_numpy(rng.uniform(-cj, cj, (n, 1, 1, 1))).float() * 2.0
        rgb = rgb * contrast + bright
    if cfg.channel_shuffle_p > 0:
        rgb = rgb.clone()
        for i in np.where(rng.random(n) < cfg.channel_shuffle_p)[0]:
            rgb[i] = rgb[i, torch.from_numpy(rng.permutation(3))]
    x = torch.cat([rgb, x[:, 3:]], 1)
    flip = torch.from_numpy(rng.random(n) < 0.5)
    box = box.clone()
    box[flip, 0] = -box[flip, 0]
    return torch.where(flip.view(n, 1, 1, 1), x.flip(3), x), box


def stage_loss(out, category, objectness, box, box_mask, num_categories: int):
    """(total, parts): category cross-entropy where ``category >= 0``; with second-stage
    outputs also objectness BCE where ``objectness >= 0`` and an L1 box loss (centre terms x4)
    where ``box_mask``."""
    import torch
    from torch.nn import functional as F

    c = num_categories
    has = category >= 0
    ce = F.cross_entropy(out[has, :c], category[has]) if has.any() else out.sum() * 0.0
    parts = {"category": ce.item()}
    total = ce
    if out.shape[1] > c:
        keep = objectness >= 0
        bce = (F.binary_cross_entropy_with_logits(out[keep, c], objectness[keep])
               if keep.any() else out.sum() * 0.0)
        wts = torch.tensor([4.0, 4.0, 1.0, 1.0])
        l1 = ((out[:, c + 1:c + 5] - box).abs() * wts).sum(1)
        reg = (l1 * box_mask).sum() / box_mask.sum().clamp(min=1.0)
        total = total + bce + reg
        parts.update(objectness=bce.item(), box=reg.item())
    parts["total"] = total.item()
    return total, parts


def train_classifier(data: Any, out_dir: str | Path, cfg: ClassifierTrainConfig,
                     detector_weights: str = "", resume: bool = False, progress: bool = True,
                     log: Callable[[str], None] = print) -> dict:
    """Train the crop classifier on a detection dataset loaded with depth.

    Each epoch re-crops every training object with fresh box jitter and depth noise (and, for
    a second-stage network, fresh background windows). After training, the inference settings
    are chosen on the held-back images (the detector's validation split for the same seed) by
    :func:`choose_settings` with ``detector_weights`` (default: the committed detector).

    Writes ``out_dir/classifier.pt``, ``checkpoint.pt`` (each epoch; ``resume`` continues it),
    ``history.json`` and ``curves.png``.

    Returns:
        summary dict (steps, minutes, validation accuracy, the chosen settings and their table).
    """
    import torch

    from katazuke.perception.detection.train import split_train_val
    from katazuke.perception.detection.weights_io import load_checkpoint, save_checkpoint

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if any(s.depth is None for s in data.samples[:1]):
        raise KatazukeError("the crop classifier needs depth: load the dataset with depth=True "
                            "(its images need depth_file entries)")
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    samples = data.samples[:cfg.max_images] if cfg.max_images > 0 else list(data.samples)
    tr, val = split_train_val(samples, cfg.seed, cfg.val_fraction)
    if not tr:
        raise KatazukeError("no training images left after the validation split")
    model = CropClassifier(cfg.model)
    if cfg.init_weights and not resume:
        init, _ = load_classifier(cfg.init_weights)
        if config_to_dict(init.config) != config_to_dict(cfg.model):
            raise KatazukeError(f"init_weights {cfg.init_weights} has architecture "
                                f"{config_to_dict(init.config)}, the training config asks for "
                                f"{config_to_dict(cfg.model)}; match `model:` in the config")
        model.load_state_dict(init.state_dict())
        log(f"starting from the network in {cfg.init_weights}")
    proposals = None
    if cfg.proposals_per_image > 0 and cfg.model.second_stage:
        proposals = detector_proposals(tr, detector_weights, cfg.proposal_top_k, progress)
        log(f"detector proposals: {sum(len(p) for p in proposals)} boxes on {len(tr)} images")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt = out / "checkpoint.pt"
    history: dict = {"epoch": [], "loss": [], "val_acc": []}
    start_epoch, step, elapsed = 0, 0, 0.0
    if resume:
        if not ckpt.is_file():
            raise KatazukeError(f"--resume given but {ckpt} does not exist; drop --resume")
        start_epoch, step, elapsed, history = load_checkpoint(ckpt, model, opt)
        log(f"resumed from {ckpt} at epoch {start_epoch}")
    vb = _batches(val, cfg, np.random.default_rng(0), False) if val else None
    budget = cfg.time_budget_min * 60.0
    n_obj = sum(len(s.boxes_xywh) for s in tr)
    per_epoch = n_obj * (1.0 + (cfg.negatives_per_object if cfg.model.second_stage else 0.0))
    n_prop = (sum(min(cfg.proposals_per_image, len(p)) for p, s in zip(proposals, tr)
                  if len(s.boxes_xywh)) if proposals is not None else 0)
    per_epoch += n_prop
    total_steps = max(1, cfg.epochs * int(per_epoch // cfg.batch_size))

    def lr_now() -> float:
        p = step / total_steps
        if budget > 0:
            p = max(p, elapsed / budget)
        return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, desc="training classifier", unit="step")
    stopped = False
    for epoch in range(start_epoch, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        tb = _batches(tr, cfg, rng, True, proposals)
        perm = torch.from_numpy(rng.permutation(len(tb["category"])))
        model.train()
        losses = []
        for b in range(len(perm) // cfg.batch_size):
            t0 = time.perf_counter()
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x, box = _augment(tb["x"][idx].float(), tb["box"][idx], rng, cfg)
            for g in opt.param_groups:
                g["lr"] = lr_now()
            loss, _ = stage_loss(model(x, tb["scalars"][idx]), tb["category"][idx],
                                 tb["objectness"][idx], box, tb["box_mask"][idx],
                                 cfg.model.num_categories)
            if not math.isfinite(loss.item()):
                raise KatazukeError(f"classifier loss became {loss.item()} at step {step}; lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            elapsed += time.perf_counter() - t0
            losses.append(loss.item())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", ep=epoch)
            if budget > 0 and elapsed >= budget:
                stopped = True
                break
        acc = _accuracy(model, vb, cfg.model.num_categories) if vb is not None else float("nan")
        history["epoch"].append(epoch + 1)
        history["loss"].append(float(np.mean(losses)) if losses else float("nan"))
        history["val_acc"].append(acc)
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {history['loss'][-1]:.3f} val accuracy "
            f"{acc:.3f} ({elapsed / 60:.1f} min of steps)")
        save_checkpoint(ckpt, model, opt, epoch + 1, step, elapsed, history, config_to_dict(cfg))
        _plot(history, out / "curves.png")
        if stopped:
            log(f"time budget of {cfg.time_budget_min} min reached after {step} steps")
            break
    if bar is not None:
        bar.close()
    model.eval()
    best, table = (choose_settings(model, val, detector_weights) if val
                   else ({"fusion_weight": 1.0, "objectness_weight": 0.0, "box_regression": False}, []))
    summary = {"steps": step, "train_minutes": elapsed / 60.0, "epochs_done": len(history["epoch"]),
               "train_images": len(tr), "val_images": len(val), "train_objects": n_obj,
               "proposal_crops_per_epoch": n_prop,
               "val_accuracy": history["val_acc"][-1] if history["val_acc"] else float("nan"),
               **best, "settings_table": table,
               "train_config": config_to_dict(cfg), "dataset": str(data.root),
               "dataset_meta": data.meta}
    save_classifier(out / "classifier.pt", model, best["fusion_weight"], extra=summary,
                    objectness_weight=best["objectness_weight"],
                    box_regression=best["box_regression"])
    (out / "history.json").write_text(json.dumps(history))
    base = next((r for r in table if r[0] == 0.0 and r[1] == 0.0 and not r[2]), None)
    log(f"chosen on {len(val)} validation images: {best}; val mAP@0.5 "
        f"{max((r[3] for r in table), default=float('nan')):.3f} (detector alone: "
        f"{base[3] if base else float('nan'):.3f}); wrote {out / 'classifier.pt'}")
    return summary


def retune_settings(data: Any, classifier_path: str | Path, detector_weights: str = "",
                    seed: int = 0, val_fraction: float = 0.05,
                    log: Callable[[str], None] = print) -> dict:
    """Choose a trained classifier's inference settings again (:func:`choose_settings`) for
    another detector, on the same held-back images, and rewrite the file with them."""
    from katazuke.perception.detection.train import split_train_val

    model, payload = load_classifier(classifier_path)
    _, val = split_train_val(list(data.samples), seed, val_fraction)
    if not val:
        raise KatazukeError("no validation images: raise val_fraction or use more images")
    best, table = choose_settings(model, val, detector_weights)
    extra = dict(payload.get("extra", {}))
    extra.update(best, settings_table=table, settings_detector=detector_weights or "committed")
    save_classifier(classifier_path, model, best["fusion_weight"], extra=extra,
                    objectness_weight=best["objectness_weight"], box_regression=best["box_regression"])
    base = next((r for r in table if r[0] == 0.0 and r[1] == 0.0 and not r[2]), None)
    log(f"chosen on {len(val)} validation images with detector "
        f"{detector_weights or 'committed'}: {best}; val mAP@0.5 "
        f"{max(r[3] for r in table):.3f} (detector alone: {base[3] if base else float('nan'):.3f}); "
        f"rewrote {classifier_path}")
    return {**best, "settings_table": table}


def _accuracy(model, b: dict, num_categories: int) -> float:
    """Category accuracy on the crops of ``b`` that show an object."""
    import torch

    model.eval()
    x, sc, y = b["x"], b["scalars"], b["category"]
    with torch.inference_mode():
        pred = torch.cat([model(x[i:i + 1024].float(), sc[i:i + 1024])[:, :num_categories].argmax(1)
                          for i in range(0, len(y), 1024)])
    model.train()
    has = y >= 0
    return float((pred[has] == y[has]).float().mean())


def choose_settings(model, val: list, detector_weights: str = "") -> tuple[dict, list]:
    """Inference settings with the best validation mAP@0.5 of the detector + this network.

    Grid: fusion weight in {0, .25, .5, .75, 1}; for a second-stage network also objectness
    weight in {0, .25, .5, .75, 1} and box regression off/on. The network runs once per image.
    Ties (to 4 decimals) go to the smaller change.

    Returns:
        (best ``{fusion_weight, objectness_weight, box_regression}``, rows
        ``(fusion, objectness, box_regression, map50)``).
    """
    from katazuke.perception.detection.evaluation import ImageGT, ImagePred, evaluate

    raws = _detector_alone(val, detector_weights)
    gts = [ImageGT(s.boxes_xywh, s.categories, s.held_out) for s in val]
    second = bool(model.config.second_stage)
    ref = CategoryRefiner(model, 1.0, objectness_weight=0.0)
    sels = [ref.selected(r) for r in raws]
    outs = [ref.infer(s.rgb, depth_metres(s.depth), r["boxes"][sel])
            for s, r, sel in zip(val, raws, sels)]
    grid = [(w, a, b) for w in (0.0, 0.25, 0.5, 0.75, 1.0)
            for a in ((0.0, 0.25, 0.5, 0.75, 1.0) if second else (0.0,))
            for b in ((False, True) if second else (False,))]
    table = []
    for w, a, b in grid:
        preds = []
        for r, sel, o in zip(raws, sels, outs):
            r2 = ref.apply(r, sel, o, w, a, b)
            preds.append(ImagePred(r2["boxes"], r2["scores"], r2["category_probs"]))
        table.append((w, a, b, evaluate(gts, preds)["map50"]))
    best = max(table, key=lambda t: (round(t[3], 4), -t[0] - t[1] - float(t[2])))
    return {"fusion_weight": best[0], "objectness_weight": best[1], "box_regression": best[2]}, table


def _plot(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(history["epoch"], history["loss"], "o-", label="training loss (category CE "
            "+ objectness BCE + box L1 for a second stage)")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(history["epoch"], history["val_acc"], "s-", color="tab:green",
             label="validation category accuracy (clean crops)")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("accuracy")
    ax.set_xlabel("epoch")
    fig.legend(loc="upper center", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    fig.savefig(path, dpi=90)
    plt.close(fig)

