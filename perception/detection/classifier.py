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
           "train_classifier", "DEFAULT_CLASSIFIER_WEIGHTS", "fuse_probs"]

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
    model: ClassifierConfig = field(default_factory=ClassifierConfig, metadata={"help": "architecture"})


def depth_metres(depth: np.ndarray) -> np.ndarray:
    """Float32 metres, 0 where there is no reading (uint16 mm in, or float metres with NaN/inf)."""
    if depth.dtype == np.uint16:
        return depth.astype(np.float32) / 1000.0
    d = depth.astype(np.float32, copy=True)
    d[~np.isfinite(d)] = 0.0
    d[d < 0] = 0.0
    return d


def make_crops(rgb: np.ndarray, depth_m: np.ndarray, boxes_xyxy: np.ndarray,
               cfg: ClassifierConfig, rng: np.random.Generator | None = None,
               box_jitter: float = 0.0, depth_noise: float = 0.0):
    """Classifier inputs for the boxes of one image.

    Args:
        rgb: ``(H, W, 3)`` uint8.
        depth_m: ``(H, W)`` float32 metres, 0 = no reading (see :func:`depth_metres`).
        boxes_xyxy: ``(N, 4)`` pixels.
        rng: random generator for the training augmentations (None = none).
        box_jitter: shift/scale jitter of the window (training).
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
    bw, bh = np.maximum(b[:, 2] - b[:, 0], 1.0), np.maximum(b[:, 3] - b[:, 1], 1.0)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    side = np.maximum(bw, bh) * cfg.context + cfg.pad_px
    if rng is not None and box_jitter > 0:
        cx = cx + rng.uniform(-box_jitter, box_jitter, n) * bw
        cy = cy + rng.uniform(-box_jitter, box_jitter, n) * bh
        side = side * np.exp(rng.uniform(-box_jitter, box_jitter, n))
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
    ``(B, 2)`` in, category logits ``(B, num_categories)`` out."""
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
                                      nn.Linear(cfg.hidden, cfg.num_categories))

        def forward(self, x: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
            return self.head(torch.cat([self.features(x), scalars], 1))

    return Net()


def save_classifier(path: str | Path, model: Any, fusion_weight: float, extra: dict | None = None
                    ) -> None:
    """Write a classifier weights file (state dict + architecture + fusion weight + metadata)."""
    from katazuke.perception.detection.weights_io import save_payload

    save_payload(path, _FORMAT, model, config_to_dict(model.config), categories=list(CATEGORIES),
                 fusion_weight=float(fusion_weight), extra=extra or {})


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
    """Re-scores the categories of detected boxes with the crop classifier."""

    def __init__(self, model: Any, fusion_weight: float = 1.0, top_k: int = 32,
                 min_score: float = 0.05) -> None:
        if not 0.0 <= fusion_weight <= 1.0:
            raise KatazukeError(f"classifier fusion weight must be in [0, 1], got {fusion_weight}")
        self.model = model
        self.fusion_weight = float(fusion_weight)
        self.top_k = int(top_k)
        self.min_score = float(min_score)
        self.metadata: dict = {}
        self.path = ""

    @classmethod
    def from_file(cls, path: str | Path, top_k: int = 32, min_score: float = 0.05,
                  fusion_weight: float | None = None) -> "CategoryRefiner":
        model, payload = load_classifier(path)
        w = payload.get("fusion_weight", 1.0) if fusion_weight is None else fusion_weight
        ref = cls(model, w, top_k, min_score)
        ref.metadata = payload.get("extra", {})
        ref.path = str(path)
        return ref

    def classify(self, rgb: np.ndarray, depth_m: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        """``(N, C)`` classifier probabilities of the boxes of one image."""
        import torch

        x, sc = make_crops(rgb, depth_m, boxes_xyxy, self.model.config)
        if len(x) == 0:
            return np.zeros((0, self.model.config.num_categories))
        self.model.eval()
        with torch.inference_mode():
            return torch.softmax(self.model(x, sc), 1).double().numpy()

    def refine(self, rgb: np.ndarray, depth: np.ndarray, raw: dict[str, np.ndarray]
               ) -> dict[str, np.ndarray]:
        """Copy of one image's raw detections (``boxes``, ``scores``, ``category_probs``) with the
        categories of its ``top_k`` boxes scoring at least ``min_score`` fused with the crop
        classifier's."""
        out = dict(raw)
        sel = np.where(raw["scores"] >= self.min_score)[0][:self.top_k]
        if len(sel) == 0 or self.fusion_weight == 0.0:
            return out
        p_cls = self.classify(rgb, depth_metres(depth), raw["boxes"][sel])
        probs = raw["category_probs"].copy()
        probs[sel] = fuse_probs(probs[sel], p_cls, self.fusion_weight)
        out["category_probs"] = probs
        return out


# ---------------------------------------------------------------------------- training
def _batches(samples: list, cfg: ClassifierTrainConfig, rng: np.random.Generator, augment: bool):
    """All objects of ``samples`` as crops (``x``, ``scalars``, ``labels``, ``kinds``)."""
    import torch

    from katazuke.perception.detection.boxes import xywh_to_xyxy

    xs, scs, ys, kinds = [], [], [], []
    for s in samples:
        if len(s.boxes_xywh) == 0:
            continue
        x, sc = make_crops(s.rgb, depth_metres(s.depth), xywh_to_xyxy(s.boxes_xywh), cfg.model,
                           rng if augment else None, cfg.box_jitter if augment else 0.0,
                           cfg.depth_noise if augment else 0.0)
        xs.append(x.half())
        scs.append(sc)
        ys.append(torch.from_numpy(np.asarray(s.categories, np.int64)))
        kinds += list(s.kinds)
    return torch.cat(xs), torch.cat(scs), torch.cat(ys), kinds


def _augment_colour(x, rng: np.random.Generator, cfg: ClassifierTrainConfig):
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
    return torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)


def train_classifier(data: Any, out_dir: str | Path, cfg: ClassifierTrainConfig,
                     detector_weights: str = "", resume: bool = False, progress: bool = True,
                     log: Callable[[str], None] = print) -> dict:
    """Train the crop classifier on a detection dataset loaded with depth.

    Each epoch re-crops every training object with fresh box jitter and depth noise. After
    training, the fusion weight ``w`` is chosen on the held-back images (the detector's
    validation split for the same seed): the ``w`` in {0, 0.25, 0.5, 0.75, 1} with the best
    mAP@0.5 of ``detector_weights`` (default: the committed detector) refined with this
    classifier.

    Writes ``out_dir/classifier.pt``, ``checkpoint.pt`` (each epoch; ``resume`` continues it),
    ``history.json`` and ``curves.png``.

    Returns:
        summary dict (steps, minutes, validation accuracy, fusion weight and its table).
    """
    import torch
    from torch.nn import functional as F

    from katazuke.perception.detection.train import split_train_val

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
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt = out / "checkpoint.pt"
    history: dict = {"epoch": [], "loss": [], "val_acc": []}
    start_epoch, step, elapsed = 0, 0, 0.0
    if resume:
        if not ckpt.is_file():
            raise KatazukeError(f"--resume given but {ckpt} does not exist; drop --resume")
        ck = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, step, elapsed, history = ck["epoch"], ck["step"], ck["elapsed_s"], ck["history"]
        log(f"resumed from {ckpt} at epoch {start_epoch}")
    val_x, val_sc, val_y, val_kinds = _batches(val, cfg, np.random.default_rng(0), False) \
        if val else (None, None, None, [])
    budget = cfg.time_budget_min * 60.0
    n_obj = sum(len(s.boxes_xywh) for s in tr)
    total_steps = max(1, cfg.epochs * (n_obj // cfg.batch_size))

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
        x_all, sc_all, y_all, _ = _batches(tr, cfg, rng, True)
        perm = torch.from_numpy(rng.permutation(len(y_all)))
        model.train()
        losses = []
        for b in range(len(perm) // cfg.batch_size):
            t0 = time.perf_counter()
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = _augment_colour(x_all[idx].float(), rng, cfg)
            for g in opt.param_groups:
                g["lr"] = lr_now()
            loss = F.cross_entropy(model(x, sc_all[idx]), y_all[idx])
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
        acc = _accuracy(model, val_x, val_sc, val_y) if val else float("nan")
        history["epoch"].append(epoch + 1)
        history["loss"].append(float(np.mean(losses)) if losses else float("nan"))
        history["val_acc"].append(acc)
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {history['loss'][-1]:.3f} val accuracy "
            f"{acc:.3f} ({elapsed / 60:.1f} min of steps)")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                    "step": step, "elapsed_s": elapsed, "history": history,
                    "train_config": config_to_dict(cfg)}, ckpt)
        _plot(history, out / "curves.png")
        if stopped:
            log(f"time budget of {cfg.time_budget_min} min reached after {step} steps")
            break
    if bar is not None:
        bar.close()
    model.eval()
    fusion, table = _choose_fusion(model, val, detector_weights) if val else (1.0, [])
    summary = {"steps": step, "train_minutes": elapsed / 60.0, "epochs_done": len(history["epoch"]),
               "train_images": len(tr), "val_images": len(val), "train_objects": n_obj,
               "val_accuracy": history["val_acc"][-1] if history["val_acc"] else float("nan"),
               "fusion_weight": fusion, "fusion_table": table,
               "train_config": config_to_dict(cfg), "dataset": str(data.root),
               "dataset_meta": data.meta}
    save_classifier(out / "classifier.pt", model, fusion, extra=summary)
    (out / "history.json").write_text(json.dumps(history))
    log(f"fusion weight {fusion} (val mAP@0.5 by weight: "
        + ", ".join(f"{w}: {m:.3f}" for w, m in table) + f"); wrote {out / 'classifier.pt'}")
    return summary


def _accuracy(model, x, sc, y) -> float:
    import torch

    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(x[i:i + 1024].float(), sc[i:i + 1024]).argmax(1)
                          for i in range(0, len(y), 1024)])
    model.train()
    return float((pred == y).float().mean())


def _choose_fusion(model, val: list, detector_weights: str) -> tuple[float, list]:
    """The fusion weight with the best validation mAP@0.5 (ties: the smaller weight)."""
    from katazuke.perception.detection.config import DetectorConfig
    from katazuke.perception.detection.detector import Detector
    from katazuke.perception.detection.evaluation import ImageGT, ImagePred, evaluate

    det = Detector(DetectorConfig(weights=detector_weights, score_threshold=0.05,
                                  classifier_weights="none"))
    raws = det.predict_samples(val)
    gts = [ImageGT(s.boxes_xywh, s.categories, s.held_out) for s in val]
    table = []
    for w in (0.0, 0.25, 0.5, 0.75, 1.0):
        ref = CategoryRefiner(model, w)
        preds = []
        for s, r in zip(val, raws):
            r2 = ref.refine(s.rgb, s.depth, r)
            preds.append(ImagePred(r2["boxes"], r2["scores"], r2["category_probs"]))
        table.append((w, evaluate(gts, preds)["map50"]))
    best = max(table, key=lambda t: (round(t[1], 6), -t[0]))
    return best[0], table


def _plot(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history["epoch"], history["loss"], "o-", label="training loss (cross-entropy)")
    ax2 = ax.twinx()
    ax2.plot(history["epoch"], history["val_acc"], "s-", color="tab:green",
             label="validation accuracy (clean crops)")
    ax2.set_ylim(0, 1)
    ax.set_xlabel("epoch")
    fig.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

