"""Training of the crop classifier and the choice of its inference settings.

Trained on ground-truth boxes of the ``train`` profile with random shifts and scales of the
box (to look like detector boxes) and the detector's colour/depth-noise augmentations; a
second-stage network also learns objectness and a box correction from background windows
and, optionally, the detector's own proposals.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from katazuke.config import config_to_dict
from katazuke.errors import KatazukeError
from katazuke.perception.detection.classifier.model import (ClassifierConfig, CropClassifier,
                                                            box_targets, crop_windows,
                                                            depth_metres, jitter_boxes,
                                                            load_classifier, make_crops,
                                                            save_classifier)
from katazuke.perception.detection.classifier.refiner import CategoryRefiner

__all__ = ["ClassifierTrainConfig", "train_classifier", "retune_settings", "choose_settings",
           "stage_loss", "detector_proposals"]


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
