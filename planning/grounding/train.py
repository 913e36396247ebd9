"""Training and calibration of the grounding network (CPU, a few minutes).

:func:`build_items` generates labelled instructions about rooms (a share through the ASR
noise channel); :func:`train_grounding` trains with per-epoch checkpoints (resumable) and a
progress bar, then :func:`calibrate` picks, on the separate calibration rooms, the conformal
threshold of when to ask (KnowNo: the prediction set of every candidate whose probability
clears ``1 - q``; ask when it holds more than one), and the weights are written.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from katazuke.planning.grounding.config import ClarifyConfig, TrainConfig
from katazuke.planning.grounding.data import MapNoise, scene_from_record
from katazuke.planning.grounding.grammar import Example, InstructionGenerator, Intent
from katazuke.planning.grounding.lexicon import Lexicon
from katazuke.planning.grounding.model import (GroundingNet, ModelDims, SceneTensors,
                                               lexicon_tensors, make_batch, scene_tensors)
from katazuke.planning.grounding.noise import ConfusionModel
from katazuke.planning.grounding.scene import GroundingScene
from katazuke.planning.grounding.weights import save_weights
from katazuke.planning.tasks.config import TidyConfig

__all__ = ["Item", "build_items", "train_grounding", "calibrate", "predict", "OBJECT_INTENTS",
           "conformal_threshold", "recalibrate"]

#: intents whose instruction names a target object
OBJECT_INTENTS = frozenset({Intent.MOVE, Intent.WHERE_IS, Intent.LOOK_AT, Intent.CHOICE})


@dataclasses.dataclass
class Item:
    """One training / evaluation instruction."""

    example: Example
    words: list[str]
    tags: list[int]
    scene: int                      # index into the scene list
    noisy: bool = False
    confidence: float = 1.0


def build_items(records: Sequence[dict], config: TidyConfig, split: str, per_room: int,
                rng: np.random.Generator, noise: MapNoise = MapNoise(),
                confusion: ConfusionModel | None = None, asr_fraction: float = 0.0,
                progress: Callable[[Iterable], Iterable] | None = None, augment: bool = False
                ) -> tuple[list[Item], list[GroundingScene], list[dict[int, dict]]]:
    """Labelled instructions about ``records`` (one map-noise draw per room).

    ``augment`` drops and inserts filler words around the phrases (training only), so the
    network leans on the phrases rather than on the exact carrier words of the templates.

    Returns:
        ``(items, scenes, truths)``; ``items[i].scene`` indexes ``scenes`` and ``truths``.
    """
    gen = InstructionGenerator(config, split)
    items: list[Item] = []
    scenes: list[GroundingScene] = []
    truths: list[dict[int, dict]] = []
    for rec in (progress(records) if progress else records):
        scene, truth = scene_from_record(rec, config, rng, noise)
        k = len(scenes)
        scenes.append(scene)
        truths.append(truth)
        for _ in range(per_room):
            ex = gen.generate(scene, truth, rng)
            words, tags = list(ex.words), list(ex.tags)
            noisy = confusion is not None and rng.random() < asr_fraction
            if augment:
                words, tags = _augment(words, tags, rng)
            if noisy:
                words, tags = confusion.corrupt(words, tags, rng)
                if not words:           # the recogniser dropped everything: not an instruction
                    words, tags, noisy = list(ex.words), list(ex.tags), False
            items.append(Item(ex, words, tags, k, noisy))
    return items, scenes, truths


_FILLERS = ("please", "now", "uh", "um", "okay", "robot", "just", "so", "hey", "then")


def _augment(words: list[str], tags: list[int], rng: np.random.Generator
             ) -> tuple[list[str], list[int]]:
    out_w: list[str] = []
    out_t: list[int] = []
    for w, t in zip(words, tags):
        if t == 0 and len(words) > 2 and rng.random() < 0.1:
            continue                                    # a carrier word left out
        if rng.random() < 0.04:
            out_w.append(_FILLERS[int(rng.integers(len(_FILLERS)))])
            out_t.append(0)
        out_w.append(w)
        out_t.append(t)
    return (out_w, out_t) if out_w else (list(words), list(tags))


def _labels(items: Sequence[Item], n_max: int, lex: Lexicon) -> dict[str, torch.Tensor]:
    B = len(items)
    T = max(1, max(len(it.words) for it in items))
    C = len(lex.container_ids)
    tags = torch.full((B, T), -100, dtype=torch.long)
    target = torch.full((B,), -100, dtype=torch.long)
    dest = torch.full((B,), -100, dtype=torch.long)
    intent = torch.tensor([int(it.example.intent) for it in items])
    relation = torch.full((B,), -100, dtype=torch.long)
    for b, it in enumerate(items):
        tags[b, :len(it.tags)] = torch.tensor(it.tags)
        ex = it.example
        if ex.intent in OBJECT_INTENTS:
            target[b] = ex.target if ex.target >= 0 else n_max
            relation[b] = int(ex.relation)
        if ex.intent == Intent.MOVE:
            if ex.own_destination:
                dest[b] = C
            elif ex.destination == "?" or ex.destination not in lex.container_ids:
                dest[b] = C + 1
            else:
                dest[b] = lex.container_ids.index(ex.destination)
    return {"tags": tags, "target": target, "dest": dest, "intent": intent,
            "relation": relation}


def _batch(lex: Lexicon, items: Sequence[Item], st: Sequence[SceneTensors]):
    b = make_batch(lex, [it.words for it in items], [st[it.scene] for it in items],
                   [it.example.choices for it in items])
    return b, _labels(items, b["cand_mask"].shape[1], lex)


def _loss(out: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> torch.Tensor:
    ce = nn.functional.cross_entropy
    loss = ce(out["intent"], y["intent"])
    loss = loss + ce(out["tags"].reshape(-1, out["tags"].shape[-1]), y["tags"].reshape(-1),
                     ignore_index=-100)
    for k, key in (("relation", "relation"), ("target", "target"), ("dest", "dest")):
        if (y[key] != -100).any():
            loss = loss + ce(out[k], y[key], ignore_index=-100)
    return loss


@torch.no_grad()
def predict(net: GroundingNet, lex: Lexicon, items: Sequence[Item], st: Sequence[SceneTensors],
            batch_size: int = 256) -> list[dict[str, np.ndarray]]:
    """Per item: ``intent``, ``target`` (over candidates + none), ``dest`` probabilities."""
    net.eval()
    lt = lexicon_tensors(lex)
    out: list[dict[str, np.ndarray]] = []
    for s in range(0, len(items), batch_size):
        chunk = items[s:s + batch_size]
        b = make_batch(lex, [it.words for it in chunk], [st[it.scene] for it in chunk],
                       [it.example.choices for it in chunk])
        o = net(b, lt)
        pi = torch.softmax(o["intent"], -1).numpy()
        pt = torch.softmax(o["target"], -1).numpy()
        pd = torch.softmax(o["dest"], -1).numpy()
        N = b["cand_mask"].shape[1]
        for k, it in enumerate(chunk):
            n = st[it.scene].n
            t = np.concatenate([pt[k, :n], pt[k, N:N + 1]])
            out.append({"intent": pi[k], "target": t, "dest": pd[k]})
    return out


def conformal_threshold(scores: np.ndarray, alpha: float) -> float:
    """Split-conformal quantile of nonconformity ``scores`` at miscoverage ``alpha``."""
    n = len(scores)
    if n == 0:
        return 1.0
    level = min(1.0, math.ceil((n + 1) * (1 - alpha)) / n)
    return float(np.quantile(scores, level, method="higher"))


def calibrate(net: GroundingNet, lex: Lexicon, items: Sequence[Item],
              st: Sequence[SceneTensors], clarify: ClarifyConfig) -> dict[str, Any]:
    """Choose when to ask on the calibration split.

    Nonconformity is ``1 - p(true target)`` over object instructions; for each miscoverage
    level ``alpha`` the prediction set holds the candidates with ``p >= 1 - q(alpha)``. The
    chosen ``alpha`` is the smallest whose question rate (sets of two or more) on the split
    stays within ``clarify.max_question_rate``.

    Returns:
        ``{"alpha", "prob_threshold", "question_rate", "coverage", "n"}``.
    """
    obj = [it for it in items if it.example.intent in OBJECT_INTENTS and not it.example.choices
           and it.example.target >= 0]
    preds = predict(net, lex, obj, st)
    p_true = np.array([p["target"][it.example.target] for p, it in zip(preds, obj)])
    scores = 1.0 - p_true
    best = None
    for alpha in np.round(np.arange(0.005, 0.5, 0.005), 3):
        q = conformal_threshold(scores, float(alpha))
        thr = 1.0 - q
        sizes = np.array([(p["target"][:-1] >= thr).sum() for p in preds])
        rate = float((sizes >= 2).mean())
        cover = float((p_true >= thr).mean())
        if rate <= clarify.max_question_rate:
            best = {"alpha": float(alpha), "prob_threshold": float(thr), "question_rate": rate,
                    "coverage": cover, "n": len(obj)}
            break
    if best is None:
        best = {"alpha": 0.5, "prob_threshold": 1.0, "question_rate": 0.0, "coverage": 0.0,
                "n": len(obj)}
    return best


def train_grounding(train: tuple[list[Item], list[GroundingScene]],
                    calib: tuple[list[Item], list[GroundingScene]], lex: Lexicon,
                    out: str | os.PathLike, cfg: TrainConfig, clarify: ClarifyConfig,
                    provenance: dict[str, Any], resume: bool = False,
                    progress: Callable[..., Any] | None = None,
                    checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train, calibrate and write ``out`` (the weights file); a checkpoint after each epoch
    (``checkpoint``, default ``<out>.ckpt``) lets ``resume`` continue an interrupted run.

    Returns:
        ``{"epochs", "final_loss", "train_minutes", "calibration"}``.
    """
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    items, scenes = train
    st = [scene_tensors(lex, s) for s in scenes]
    net = GroundingNet(ModelDims())
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(items) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr,
                                                total_steps=cfg.epochs * steps_per_epoch)
    ckpt = Path(checkpoint) if checkpoint else Path(str(out) + ".ckpt")
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    start, history = 0, []
    if resume and ckpt.is_file():
        c = torch.load(ckpt, map_location="cpu", weights_only=False)
        net.load_state_dict(c["net"])
        opt.load_state_dict(c["opt"])
        sched.load_state_dict(c["sched"])
        start, history = int(c["epoch"]), list(c["history"])
    lt = lexicon_tensors(lex)
    t0 = time.monotonic()
    for epoch in range(start, cfg.epochs):
        net.train()
        g = np.random.default_rng([cfg.seed, epoch])
        order = g.permutation(len(items))
        bar = progress(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}") \
            if progress else None
        total = 0.0
        for s in range(steps_per_epoch):
            chunk = [items[i] for i in order[s * cfg.batch_size:(s + 1) * cfg.batch_size]]
            b, y = _batch(lex, chunk, st)
            loss = _loss(net(b, lt), y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            sched.step()
            total += float(loss.detach())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.3f}")
        if bar is not None:
            bar.close()
        history.append(total / steps_per_epoch)
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "epoch": epoch + 1, "history": history}, ckpt)
    citems, cscenes = calib
    cal = calibrate(net, lex, citems, [scene_tensors(lex, s) for s in cscenes], clarify)
    cal["min_transcript_confidence"] = clarify.min_transcript_confidence
    cal["max_options"] = clarify.max_options
    save_weights(out, net, cal, {**provenance, "loss_history": history})
    return {"epochs": cfg.epochs, "final_loss": history[-1] if history else float("nan"),
            "train_minutes": (time.monotonic() - t0) / 60.0, "calibration": cal}


def recalibrate(weights: str | os.PathLike, calib: tuple[list[Item], list[GroundingScene]],
                lex: Lexicon, clarify: ClarifyConfig) -> dict[str, Any]:
    """Choose when to ask again for trained weights (the network is unchanged) and rewrite
    the file; its provenance records the new settings."""
    from katazuke.planning.grounding.weights import load_weights

    net, _, prov = load_weights(weights)
    items, scenes = calib
    cal = calibrate(net, lex, items, [scene_tensors(lex, s) for s in scenes], clarify)
    cal["min_transcript_confidence"] = clarify.min_transcript_confidence
    cal["max_options"] = clarify.max_options
    prov = {**prov, "recalibrated": {"max_question_rate": clarify.max_question_rate}}
    save_weights(weights, net, cal, prov)
    return cal
