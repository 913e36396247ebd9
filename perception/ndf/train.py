"""Training and evaluation of the NDF occupancy network on :mod:`.data` splits.

:func:`train_ndf` writes ``checkpoint.pt`` (after every epoch; ``resume=True`` continues
from it), ``ndf.pt`` (weights + provenance + held-out metrics), ``curves.png`` and
``history.json``. :func:`evaluate_occupancy` scores a network on held-out instances: the
encoder sees a partial view (or the full surface cloud) and every labelled query is
classified (occupied when the probability is >= 0.5).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from katazuke.config import config_to_dict
from katazuke.errors import KatazukeError
from katazuke.perception.ndf.config import NdfTrainConfig
from katazuke.perception.ndf.data import NdfSplit
from katazuke.perception.ndf.model import NdfNetwork, save_ndf_weights

__all__ = ["train_ndf", "evaluate_occupancy", "sample_batch"]


def sample_batch(split: NdfSplit, idx: np.ndarray, points: int, queries: int,
                 partial_fraction: float, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clouds ``(B, points, 3)``, queries ``(B, queries, 3)`` and labels ``(B, queries)``
    (float32 tensors, object frame, m) for instances ``idx``: each cloud is one random
    partial view (probability ``partial_fraction``) or the surface samples, subsampled."""
    clouds, qs, occ = [], [], []
    for i in idx:
        if rng.random() < partial_fraction:
            src = split.partial[i, rng.integers(split.partial.shape[1])]
        else:
            src = split.surface[i]
        clouds.append(src[rng.choice(len(src), points, replace=len(src) < points)])
        qi = rng.choice(split.queries.shape[1], queries, replace=split.queries.shape[1] < queries)
        qs.append(split.queries[i, qi])
        occ.append(split.occupancy[i, qi])
    return (torch.as_tensor(np.stack(clouds)), torch.as_tensor(np.stack(qs)),
            torch.as_tensor(np.stack(occ), dtype=torch.float32))


def evaluate_occupancy(network: NdfNetwork, split: NdfSplit, cloud: str = "partial",
                       points: int = 512, max_instances: int = 0, seed: int = 0) -> dict:
    """Occupancy accuracy and IoU of ``network`` on ``split``'s labelled queries.

    Args:
        cloud: ``"partial"`` (view 0 of each instance, what a camera sees) or ``"surface"``.
        points: cloud points fed to the encoder (random subset, seeded).
        max_instances: evaluate the first N instances of each category (0 = all).

    Returns:
        ``{"accuracy", "iou", "instances", "per_category": {cat: {"accuracy", "iou", "n"}}}``;
        IoU = |predicted n true occupied| / |predicted u true occupied| over all queries of a
        category.
    """
    rng = np.random.default_rng(seed)
    network.eval()
    stats: dict[str, list[int]] = {}
    seen: dict[str, int] = {}
    with torch.no_grad():
        for i, cat in enumerate(split.categories):
            if max_instances and seen.get(cat, 0) >= max_instances:
                continue
            seen[cat] = seen.get(cat, 0) + 1
            src = split.partial[i, 0] if cloud == "partial" else split.surface[i]
            P = torch.as_tensor(src[rng.choice(len(src), points, replace=len(src) < points)])
            q = torch.as_tensor(split.queries[i])
            pred = (network(P[None], q[None])[0] >= 0).numpy()
            true = split.occupancy[i]
            s = stats.setdefault(cat, [0, 0, 0, 0])   # correct, total, intersection, union
            s[0] += int((pred == true).sum())
            s[1] += len(true)
            s[2] += int((pred & true).sum())
            s[3] += int((pred | true).sum())
    per = {c: {"accuracy": s[0] / s[1], "iou": s[2] / max(s[3], 1), "n": seen[c]}
           for c, s in sorted(stats.items())}
    tot = np.sum(list(stats.values()), axis=0)
    return {"accuracy": float(tot[0] / tot[1]), "iou": float(tot[2] / max(tot[3], 1)),
            "instances": int(sum(seen.values())), "per_category": per}


def _plot(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    steps = np.asarray(history["step"])
    loss = np.asarray(history["loss"])
    if len(loss):
        k = max(1, len(loss) // 100)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax[0].plot(steps, loss, alpha=0.3, label="batch")
        ax[0].plot(steps[k - 1:], smooth, label=f"mean of {k}")
    ax[0].set_xlabel("step")
    ax[0].set_ylabel("occupancy BCE")
    ax[0].set_yscale("log")
    ax[0].legend()
    ax[1].plot(history["val_epoch"], history["val_iou"], "o-", label="held-out IoU (partial)")
    ax[1].plot(history["val_epoch"], history["val_accuracy"], "s-", label="held-out accuracy")
    ax[1].set_xlabel("epoch")
    ax[1].set_ylim(0, 1)
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def train_ndf(train: NdfSplit, test: NdfSplit, out_dir: str | Path, cfg: NdfTrainConfig,
              resume: bool = False, progress: Callable[..., Any] | None = None,
              log: Callable[[str], None] = print, provenance: dict | None = None) -> dict:
    """Train the occupancy network; the descriptor field comes with it.

    Args:
        train, test: instances to train on and held-out instances to score.
        out_dir: output folder (created).
        cfg: settings (seed, epochs, time budget, architecture).
        resume: continue from ``out_dir/checkpoint.pt``.
        progress: makes a progress bar (``tqdm``-like: ``progress(total=, initial=)``).
        provenance: stored in the weights file (command, data folder, commit).

    Returns:
        ``{"weights", "steps", "epochs", "train_minutes", "final_loss", "test_partial",
        "test_surface"}`` (the two evaluations of :func:`evaluate_occupancy` on all of
        ``test``).

    Raises:
        KatazukeError: resume without a checkpoint, fewer training instances than a batch,
            or a loss that stops being finite.
    """
    from katazuke.perception.detection.weights_io import load_checkpoint, save_checkpoint

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    if len(train) < cfg.batch_size:
        raise KatazukeError(f"{len(train)} training instances for batch size {cfg.batch_size}; "
                            "make more data (--per-category) or lower --batch-size")
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    net = NdfNetwork(cfg.model)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    history: dict = {k: [] for k in ("step", "loss", "lr", "val_epoch", "val_accuracy", "val_iou")}
    epoch0, step, elapsed = 0, 0, 0.0
    if resume:
        if not ckpt.is_file():
            raise KatazukeError(f"--resume given but {ckpt} does not exist; drop --resume to "
                                "start a new run")
        epoch0, step, elapsed, history = load_checkpoint(ckpt, net, opt)
        log(f"resumed from {ckpt} at epoch {epoch0}, step {step}")
    per_epoch = len(train) // cfg.batch_size
    total = per_epoch * cfg.epochs
    budget_s = cfg.time_budget_min * 60.0
    bar = progress(total=total, initial=step) if progress else None
    loss_fn = torch.nn.BCEWithLogitsLoss()
    stopped, epoch = False, epoch0
    for epoch in range(epoch0, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        perm = rng.permutation(len(train))
        net.train()
        for b in range(per_epoch):
            t0 = time.perf_counter()
            frac = step / max(total, 1)
            if budget_s > 0:
                frac = max(frac, elapsed / budget_s)
            lr = cfg.lr * min(1.0, (step + 1) / 100) * (0.02 + 0.49 * (1 + math.cos(
                math.pi * min(frac, 1.0))))
            for g in opt.param_groups:
                g["lr"] = lr
            P, q, y = sample_batch(train, perm[b * cfg.batch_size:(b + 1) * cfg.batch_size],
                                   cfg.points, cfg.queries, cfg.partial_fraction, rng)
            loss = loss_fn(net(P, q), y)
            loss_v = float(loss.detach())
            if not math.isfinite(loss_v):
                raise KatazukeError(f"loss became {loss_v} at step {step}; lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            step += 1
            elapsed += time.perf_counter() - t0
            history["step"].append(step)
            history["loss"].append(loss_v)
            history["lr"].append(lr)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_v:.4f}", ep=epoch, lr=f"{lr:.1e}")
            if budget_s > 0 and elapsed >= budget_s:
                stopped = True
                break
        if cfg.eval_instances:
            m = evaluate_occupancy(net, test, "partial", cfg.points, cfg.eval_instances, cfg.seed)
            history["val_epoch"].append(epoch + 1)
            history["val_accuracy"].append(m["accuracy"])
            history["val_iou"].append(m["iou"])
            log(f"epoch {epoch + 1}: loss {np.mean(history['loss'][-per_epoch:]):.4f}, held-out "
                f"accuracy {m['accuracy']:.3f} IoU {m['iou']:.3f} ({elapsed / 60:.1f} min)")
        save_checkpoint(ckpt, net, opt, epoch + 1, step, elapsed, history, config_to_dict(cfg))
        _plot(history, out / "curves.png")
        if stopped:
            log(f"time budget of {cfg.time_budget_min} min reached after {step} steps")
            break
    if bar is not None:
        bar.close()
    res_partial = evaluate_occupancy(net, test, "partial", cfg.points, 0, cfg.seed)
    res_surface = evaluate_occupancy(net, test, "surface", cfg.points, 0, cfg.seed)
    weights = out / "ndf.pt"
    final_loss = float(np.mean(history["loss"][-max(per_epoch, 1):])) if history["loss"] else math.nan
    save_ndf_weights(weights, net, train_config=config_to_dict(cfg), steps=step,
                     epochs_done=epoch + 1, train_minutes=elapsed / 60.0,
                     train_instances=len(train), test_instances=len(test),
                     test_partial=res_partial, test_surface=res_surface,
                     **(provenance or {}))
    (out / "history.json").write_text(json.dumps(history))
    _plot(history, out / "curves.png")
    return {"weights": weights, "steps": step, "epochs": epoch + 1,
            "train_minutes": elapsed / 60.0, "final_loss": final_loss,
            "test_partial": res_partial, "test_surface": res_surface}
