"""Training loop: in-memory images, batched affine/colour augmentation, resumable checkpoints.

Determinism: weights init from ``seed``; epoch ``e`` shuffles and augments with
``np.random.default_rng([seed, e])``, so a run resumed at an epoch boundary repeats the
same batches. The learning rate follows warm-up + cosine over training progress, where
progress is the larger of step / total steps and elapsed / ``time_budget_min``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from katazuke.config import config_to_dict
from katazuke.errors import KatazukeError
from katazuke.perception.detection.config import DetectorConfig, TrainConfig
from katazuke.perception.detection.dataset import DetectionDataset, Sample
from katazuke.perception.detection.weights_io import load_checkpoint, save_checkpoint

__all__ = ["train", "TrainResult", "augment_batch", "evaluate_model"]


@dataclass
class TrainResult:
    """Where the outputs went and the last validation metrics."""

    weights: Path
    checkpoint: Path
    curves: Path
    history: dict
    elapsed_s: float


def _affine_params(rng: np.random.Generator, n: int, cfg: TrainConfig, r: tuple[float, float]
                   ) -> np.ndarray:
    """Per sample (scale, tx, ty, flip, rx, ry) in normalised coords:
    ``x_in = flip * rx * u / scale + tx`` (``rx, ry``: fraction of the source the view spans)."""
    rx, ry = r
    s = 1.0 + rng.uniform(-cfg.scale_jitter, cfg.scale_jitter, n) if cfg.scale_jitter > 0 else np.ones(n)
    # Translation keeps the view mostly inside the image.
    tx = rng.uniform(-1, 1, n) * np.abs(1.0 - rx / s)
    ty = rng.uniform(-1, 1, n) * np.abs(1.0 - ry / s)
    flip = np.where(rng.random(n) < 0.5, -1.0, 1.0) if cfg.hflip else np.ones(n)
    return np.stack([s, tx, ty, flip, np.full(n, rx), np.full(n, ry)], 1)


def _transform_boxes(b: np.ndarray, p: np.ndarray, w0: int, h0: int, w: int, h: int,
                     min_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N,4) xywh source pixels (image w0 x h0) -> output pixels (w x h); (boxes, keep)."""
    s, tx, ty, f, rx, ry = p
    x0 = 2 * b[:, 0] / w0 - 1
    x1 = 2 * (b[:, 0] + b[:, 2]) / w0 - 1
    y0 = 2 * b[:, 1] / h0 - 1
    y1 = 2 * (b[:, 1] + b[:, 3]) / h0 - 1
    u0, u1 = f * s * (x0 - tx) / rx, f * s * (x1 - tx) / rx
    v0, v1 = s * (y0 - ty) / ry, s * (y1 - ty) / ry
    ux0, ux1 = np.minimum(u0, u1), np.maximum(u0, u1)
    px0, px1 = (ux0 + 1) * w / 2, (ux1 + 1) * w / 2
    py0, py1 = (v0 + 1) * h / 2, (v1 + 1) * h / 2
    full = np.maximum(px1 - px0, 0) * np.maximum(py1 - py0, 0)
    cx0, cx1 = np.clip(px0, 0, w), np.clip(px1, 0, w)
    cy0, cy1 = np.clip(py0, 0, h), np.clip(py1, 0, h)
    cw, ch = cx1 - cx0, cy1 - cy0
    keep = (cw >= min_px) & (ch >= min_px) & (cw * ch >= 0.4 * np.maximum(full, 1e-9))
    return np.stack([cx0, cy0, cw, ch], 1), keep


def augment_batch(samples: list[Sample], rng: np.random.Generator, cfg: TrainConfig,
                  augment: bool = True):
    """Build one training batch.

    Returns:
        (x, targets): x ``(B, 3, H, W)`` float32 normalised input at
        ``cfg.input_width x cfg.input_height``; targets a dict of batched tensors.
    """
    import torch
    from torch.nn import functional as F

    from katazuke.perception.detection.model import STRIDE, normalize
    from katazuke.perception.detection.targets import build_targets

    w_in, h_in = cfg.input_width, cfg.input_height
    imgs = torch.from_numpy(np.stack([s.rgb for s in samples]))
    x = normalize(imgs)
    h0, w0 = x.shape[-2:]
    r = (w_in / w0, h_in / h0) if cfg.crop else (1.0, 1.0)
    n = len(samples)
    if augment:
        params = _affine_params(rng, n, cfg, r)
    else:
        params = np.tile([1.0, 0.0, 0.0, 1.0, r[0], r[1]], (n, 1))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = torch.from_numpy(params[:, 3] * params[:, 4] / params[:, 0]).float()
    theta[:, 1, 1] = torch.from_numpy(params[:, 5] / params[:, 0]).float()
    theta[:, 0, 2] = torch.from_numpy(params[:, 1]).float()
    theta[:, 1, 2] = torch.from_numpy(params[:, 2]).float()
    if augment or (w_in, h_in) != (w0, h0):
        grid = F.affine_grid(theta, (n, 3, h_in, w_in), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if augment and cfg.color_jitter > 0:
        cj = cfg.color_jitter
        bright = torch.from_numpy(rng.uniform(-cj, cj, (n, 1, 1, 1))).float()
        contrast = torch.from_numpy(rng.uniform(1 - cj, 1 + cj, (n, 1, 1, 1))).float()
        sat = torch.from_numpy(rng.uniform(1 - cj, 1 + cj, (n, 1, 1, 1))).float()
        grey = x.mean(1, keepdim=True)
        x = grey + (x - grey) * sat
        x = x * contrast + bright * 2.0
    if augment and cfg.channel_shuffle_p > 0:
        for i in np.where(rng.random(n) < cfg.channel_shuffle_p)[0]:
            x[i] = x[i, torch.from_numpy(rng.permutation(3))]
    if cfg.model.in_channels == 4:
        x = torch.cat([x, _depth_input(samples, theta, params, (h_in, w_in), rng, cfg,
                                       augment)], 1)
    grid_hw = (math.ceil(h_in / STRIDE), math.ceil(w_in / STRIDE))
    tl = []
    for s, p in zip(samples, params):
        b, keep = _transform_boxes(s.boxes_xywh, p, w0, h0, w_in, h_in, cfg.min_box_px)
        tl.append(build_targets(b[keep], s.categories[keep], grid_hw, STRIDE))
    targets = {k: torch.from_numpy(np.stack([t[k] for t in tl])) for k in tl[0]}
    return x.contiguous(), targets


def _depth_input(samples: list[Sample], theta, params: np.ndarray, hw: tuple[int, int],
                 rng: np.random.Generator, cfg: TrainConfig, augment: bool):
    """The depth channel of an RGB-D batch, warped like the colour images.

    Zooming by ``s`` shows objects as if ``s`` times nearer, so inverse depth is multiplied
    by ``s`` too. With ``augment``, simulated sensor noise: a per-image scale error, per-pixel
    noise growing with d^2, and rectangular holes (no reading).
    """
    import torch
    from torch.nn import functional as F

    from katazuke.perception.detection.model import MAX_INV_DEPTH, depth_channel, inverse_depth

    if any(s.depth is None for s in samples):
        raise KatazukeError("this RGB-D model needs depth images: load the dataset with depth")
    inv = inverse_depth(np.stack([s.depth for s in samples]))[:, None]
    n = len(samples)
    h_in, w_in = hw
    grid = F.affine_grid(theta, (n, 1, h_in, w_in), align_corners=False)
    inv = F.grid_sample(inv, grid, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0]
    valid = inv > 0
    if augment:
        inv = inv * torch.from_numpy(params[:, 0]).float().view(n, 1, 1)
    if augment and cfg.depth_noise > 0:
        k = cfg.depth_noise
        scale = torch.from_numpy(rng.uniform(1 - 0.02 * k, 1 + 0.02 * k, (n, 1, 1))).float()
        d = 1.0 / inv.clamp(min=1e-3)
        sigma = k * (0.0015 + 0.0025 * d * d)
        noise = torch.from_numpy(rng.standard_normal((n, h_in, w_in)).astype(np.float32))
        d = (d + sigma * noise).clamp(min=0.05) * scale
        inv = torch.where(valid, 1.0 / d, torch.zeros_like(d))
        for i in range(n):
            for _ in range(int(rng.integers(0, cfg.depth_holes + 1))):
                hh, ww = int(rng.integers(4, h_in // 4)), int(rng.integers(4, w_in // 4))
                y0, x0 = int(rng.integers(0, h_in - hh)), int(rng.integers(0, w_in - ww))
                inv[i, y0:y0 + hh, x0:x0 + ww] = 0.0
    inv = torch.where(valid, inv, torch.zeros_like(inv)).clamp_(0.0, MAX_INV_DEPTH)
    return depth_channel(inv)


def split_train_val(samples: list, seed: int, val_fraction: float) -> tuple[list, list]:
    """(train, validation) images: a seeded permutation, the first ``val_fraction`` held back.

    The detector and the crop classifier use the same split for the same seed, so the
    classifier's fusion weight is chosen on images neither network trained on.
    """
    order = np.random.default_rng([seed, 999]).permutation(len(samples))
    n_val = int(round(val_fraction * len(samples)))
    return [samples[i] for i in order[n_val:]], [samples[i] for i in order[:n_val]]


def evaluate_model(model, samples: list[Sample], det_cfg: DetectorConfig | None = None,
                   input_size: tuple[int, int] | None = None, batch: int = 16,
                   progress: bool = False) -> tuple[dict, list]:
    """Run a model over samples and compute :func:`evaluation.evaluate` metrics.

    Returns:
        (metrics, raw predictions per sample as returned by Detector.predict_raw)
    """
    from katazuke.perception.detection.detector import Detector
    from katazuke.perception.detection.evaluation import ImageGT, ImagePred, evaluate

    det = Detector(det_cfg or DetectorConfig(score_threshold=0.05), model=model,
                   input_size=input_size)
    raws = det.predict_samples(samples, batch, progress, desc="evaluating")
    gts = [ImageGT(s.boxes_xywh, s.categories, s.held_out) for s in samples]
    preds = [ImagePred(r["boxes"], r["scores"], r["category_probs"]) for r in raws]
    op = DetectorConfig().score_threshold
    return evaluate(gts, preds, score_threshold=op), raws


def _plot_curves(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    steps = history["step"]
    for k in ("total", "heatmap", "size", "giou", "category"):
        vals = np.asarray(history[k], float)
        if len(vals) >= 20:
            vals = np.convolve(vals, np.ones(20) / 20, mode="valid")
            xs = steps[19:]
        else:
            xs = steps
        axes[0].plot(xs, vals, label=k)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss (20-step mean)")
    axes[0].set_yscale("log")
    axes[0].legend()
    ep = history["val_epoch"]
    axes[1].plot(ep, history["val_map50"], "o-", label="val mAP@0.5")
    axes[1].plot(ep, history["val_recall50"], "s-", label="val recall@0.5 (agnostic)")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylim(0, 1)
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def train(data: DetectionDataset, out_dir: str | Path, cfg: TrainConfig, resume: bool = False,
          progress: bool = True, log: Callable[[str], None] = print) -> TrainResult:
    """Train a detector; writes ``checkpoint.pt``, ``detector.pt``, ``curves.png``, ``history.json``.

    Args:
        data: training images (a ``val_fraction`` share is held back for per-epoch metrics).
        out_dir: output folder (created).
        cfg: training settings.
        resume: continue from ``out_dir/checkpoint.pt`` (must exist).

    Raises:
        KatazukeError: resume without a checkpoint, or a dataset too small to train on.
    """
    import torch

    from katazuke.perception.detection.detector import save_weights
    from katazuke.perception.detection.losses import detection_loss
    from katazuke.perception.detection.model import STRIDE, ObjectnessNet

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    samples = data.samples[:cfg.max_images] if cfg.max_images > 0 else list(data.samples)
    tr, val = split_train_val(samples, cfg.seed, cfg.val_fraction)
    if len(tr) < cfg.batch_size:
        raise KatazukeError(f"only {len(tr)} training images for batch size {cfg.batch_size}; "
                            "generate more data or lower --batch-size")
    model = ObjectnessNet(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(tr) // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    history: dict = {k: [] for k in ("step", "total", "heatmap", "size", "offset", "giou",
                                     "category", "lr", "val_epoch", "val_map50", "val_recall50")}
    start_epoch, step, elapsed = 0, 0, 0.0
    if resume:
        if not ckpt_path.is_file():
            raise KatazukeError(f"--resume given but {ckpt_path} does not exist; drop --resume "
                                "to start a new run")
        start_epoch, step, elapsed, history = load_checkpoint(ckpt_path, model, opt)
        log(f"resumed from {ckpt_path} at epoch {start_epoch}, step {step}")
    budget_s = cfg.time_budget_min * 60.0
    h_img, w_img = tr[0].rgb.shape[:2]
    # Whole images at the dataset resolution when training on crops, else the resized input.
    infer_size = (w_img, h_img) if cfg.crop else (cfg.input_width, cfg.input_height)

    def lr_at(progress_: float, step_: int) -> float:
        warm = min(1.0, (step_ + 1) / max(cfg.warmup_steps, 1))
        return cfg.lr * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(progress_, 1.0))))

    def progress_now(step_: int, el: float) -> float:
        p = step_ / max(total_steps, 1)
        return max(p, el / budget_s) if budget_s > 0 else p

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, desc="training", unit="step")
    stopped = False
    epoch = start_epoch
    for epoch in range(start_epoch, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        perm = rng.permutation(len(tr))
        model.train()
        t_epoch = time.perf_counter()
        for b in range(steps_per_epoch):
            t0 = time.perf_counter()
            batch = [tr[i] for i in perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]]
            x, tgt = augment_batch(batch, rng, cfg)
            lr = lr_at(progress_now(step, elapsed), step)
            for g in opt.param_groups:
                g["lr"] = lr
            outp = model(x)
            loss, parts = detection_loss(outp, tgt, STRIDE,
                                         weights=(cfg.heatmap_weight, 1.0, 1.0, 2.0, 1.0))
            if not math.isfinite(parts["total"]):
                raise KatazukeError(f"loss became {parts['total']} at step {step}; lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            step += 1
            elapsed += time.perf_counter() - t0
            history["step"].append(step)
            history["lr"].append(lr)
            for k in ("total", "heatmap", "size", "offset", "giou", "category"):
                history[k].append(parts[k])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{parts['total']:.3f}", ep=epoch, lr=f"{lr:.1e}")
            if budget_s > 0 and elapsed >= budget_s:
                stopped = True
                break
        metrics = {"map50": float("nan"), "recall50_all": float("nan")}
        if val:
            metrics, _ = evaluate_model(model, val, input_size=infer_size)
        history["val_epoch"].append(epoch + 1)
        history["val_map50"].append(metrics["map50"])
        history["val_recall50"].append(metrics["recall50_all"])
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {np.mean(history['total'][-steps_per_epoch:]):.3f} "
            f"val mAP@0.5 {metrics['map50']:.3f} recall@0.5 {metrics['recall50_all']:.3f} "
            f"({time.perf_counter() - t_epoch:.0f} s, {elapsed / 60:.1f} min total)")
        save_checkpoint(ckpt_path, model, opt, epoch + 1, step, elapsed, history,
                        config_to_dict(cfg))
        _plot_curves(history, out / "curves.png")
        if stopped:
            log(f"time budget of {cfg.time_budget_min} min reached after {step} steps")
            break
    if bar is not None:
        bar.close()
    weights = out / "detector.pt"
    save_weights(weights, model, cfg.model, infer_size,
                 extra={"train_config": config_to_dict(cfg), "steps": step,
                        "epochs_done": epoch + 1, "train_images": len(tr), "val_images": len(val),
                        "train_minutes": elapsed / 60.0, "dataset": str(data.root),
                        "dataset_meta": data.meta})
    (out / "history.json").write_text(json.dumps(history))
    _plot_curves(history, out / "curves.png")
    return TrainResult(weights, ckpt_path, out / "curves.png", history, elapsed)
