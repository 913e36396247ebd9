"""``katazuke train grounding``: train the grounding network on generated instructions.

Steps (each cached under ``--work``, so an interrupted run resumes): simulated rooms
(train profile, seeds ``1000 + i``; calibration rooms ``5000 + i``) -> recognised synthetic
speech of a sample of training instructions (espeak-ng + Whisper tiny.en, training voices;
``planning/grounding/data/asr_train.jsonl``) -> the ASR confusion model fitted on it ->
instructions (train split of the grammar, half through the noise channel) -> training with
per-epoch checkpoints -> conformal calibration on the calibration rooms -> the weights file.
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from pathlib import Path

from katazuke.cli.training import passive_openmp

_DATA = Path(__file__).resolve().parents[2] / "planning" / "grounding" / "data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None,
                        help="weights file (default: the committed "
                             "planning/grounding/weights/grounding.pt)")
    parser.add_argument("--work", default="out/grounding",
                        help="cache folder for rooms and checkpoints")
    parser.add_argument("--params", default="launch/params/tidy.yaml",
                        help="the task manager's params (vocabulary, containers)")
    parser.add_argument("--asr-pairs", default=str(_DATA / "asr_train.jsonl"),
                        help="recognised-speech cache of the training voices (made when "
                             "missing entries are asked for)")
    parser.add_argument("--asr-sentences", type=int, default=280,
                        help="training instructions spoken and recognised for the noise model")
    parser.add_argument("--config", default=None, help="YAML of TrainConfig fields")
    parser.add_argument("--seed", type=int, default=None, help="TrainConfig.seed")
    parser.add_argument("--epochs", type=int, default=None, help="TrainConfig.epochs")
    parser.add_argument("--train-rooms", type=int, default=None, help="TrainConfig.train_rooms")
    parser.add_argument("--max-question-rate", type=float, default=None,
                        help="ClarifyConfig.max_question_rate: share of calibration "
                             "instructions that may get a question")
    parser.add_argument("--calibrate-only", action="store_true",
                        help="keep the network of --out, choose when to ask again on the "
                             "calibration rooms and rewrite the file")
    parser.add_argument("--resume", action="store_true",
                        help="continue from WORK/grounding.ckpt (same data and settings)")


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(args: argparse.Namespace) -> int:
    passive_openmp()
    import numpy as np
    from tqdm import tqdm

    from katazuke.bench.speech_noise import (TRAIN_VOICES, load_recognitions, recognise_cached,
                                             vocabulary_prompt)
    from katazuke.config import load_config
    from katazuke.planning.grounding.config import ClarifyConfig, TrainConfig
    from katazuke.planning.grounding.grammar import InstructionGenerator
    from katazuke.planning.grounding.data import scene_from_record
    from katazuke.planning.grounding.lexicon import Lexicon
    from katazuke.planning.grounding.noise import ConfusionModel
    from katazuke.planning.grounding.train import build_items, recalibrate, train_grounding
    from katazuke.planning.grounding.weights import default_weights_path
    from katazuke.planning.tasks.config import load_tidy_config
    from katazuke.sim.scenes import make_records

    cfg = load_config(TrainConfig, args.config,
                      **{k: v for k, v in (("seed", args.seed), ("epochs", args.epochs),
                                           ("train_rooms", args.train_rooms)) if v is not None})
    tidy = load_tidy_config(args.params)
    work = Path(args.work)
    out = Path(args.out) if args.out else default_weights_path()
    bar = lambda it, **kw: tqdm(it, mininterval=5, **kw)  # noqa: E731
    print(f"rooms: {cfg.train_rooms} train + {cfg.calib_rooms} calibration (train profile)")
    train_rec = make_records("train", [1000 + i for i in range(cfg.train_rooms)],
                             work / "rooms_train.jsonl", lambda x: bar(x, desc="train rooms"))
    calib_rec = make_records("train", [5000 + i for i in range(cfg.calib_rooms)],
                             work / "rooms_calib.jsonl", lambda x: bar(x, desc="calib rooms"))
    # recognised speech of training instructions (training voices): the cached pairs, topped
    # up with new instructions when there are fewer than --asr-sentences
    train_voices = {v for v, _ in TRAIN_VOICES}
    pairs = [(r["text"], r["recognised"]) for r in load_recognitions(args.asr_pairs)
             if r["voice"] in train_voices]
    if len(pairs) < args.asr_sentences:
        rng = np.random.default_rng([cfg.seed, 1])
        gen = InstructionGenerator(tidy, "train")
        sentences: list[str] = []
        for rec in train_rec[:60]:
            scene, truth = scene_from_record(rec, tidy, rng)
            sentences += [gen.generate(scene, truth, rng).text for _ in range(8)]
        sentences = sorted(set(sentences) - {t for t, _ in pairs})
        sentences = sentences[:args.asr_sentences - len(pairs)]
        items = [(t, *TRAIN_VOICES[int(rng.integers(len(TRAIN_VOICES)))]) for t in sentences]
        rec_map = recognise_cached(items, args.asr_pairs, vocabulary_prompt(tidy),
                                   lambda x: bar(x, desc="speech"))
        pairs += [(t, rec_map[f"{v}|{int(s)}|{t}"][0]) for t, v, s in items]
    confusion = ConfusionModel.fit(pairs)
    confusion.save(work / "confusion_train.json")
    print(f"ASR noise: {confusion.pairs} pairs, word error {100 * confusion.word_error:.1f} %, "
          f"{100 * confusion.insert_rate:.1f} % insertions")
    rng = np.random.default_rng([cfg.seed, 2])
    train_items, train_scenes = [], []
    if not args.calibrate_only:
        train_items, train_scenes, _ = build_items(
            train_rec, tidy, "train", cfg.examples_per_room, rng, confusion=confusion,
            asr_fraction=cfg.asr_fraction, progress=lambda x: bar(x, desc="instructions"),
            augment=True)
    else:       # the same draws as training made, so the calibration rooms get the same noise
        build_items(train_rec, tidy, "train", cfg.examples_per_room, rng, confusion=confusion,
                    asr_fraction=cfg.asr_fraction, augment=True)
    calib_items, calib_scenes, _ = build_items(calib_rec, tidy, "train", cfg.examples_per_room,
                                               rng, confusion=confusion,
                                               asr_fraction=cfg.asr_fraction)
    print(f"{len(train_items)} training instructions, {len(calib_items)} calibration")
    clarify = load_config(ClarifyConfig, None, **({} if args.max_question_rate is None else
                                                  {"max_question_rate": args.max_question_rate}))
    if args.calibrate_only:
        cal = recalibrate(out, (calib_items, calib_scenes), Lexicon(tidy), clarify)
        print(f"rewrote {out}: ask when the conformal set (alpha {cal['alpha']:.3f}, p >= "
              f"{cal['prob_threshold']:.3f}) holds 2+: {100 * cal['question_rate']:.1f} % of "
              f"calibration instructions, coverage {100 * cal['coverage']:.1f} %")
        return 0
    provenance = {"command": " ".join(["katazuke", "train", "grounding", *sys.argv[3:]])
                  if sys.argv[1:3] == ["train", "grounding"] else " ".join(sys.argv),
                  "seed": cfg.seed, "commit": _git_commit(), "machine": platform.node(),
                  "train_config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
                  "asr_pairs": confusion.pairs, "asr_word_error": confusion.word_error}
    res = train_grounding((train_items, train_scenes), (calib_items, calib_scenes),
                          Lexicon(tidy), out, cfg, clarify, provenance,
                          resume=args.resume, progress=lambda **kw: tqdm(mininterval=5, **kw),
                          checkpoint=work / "grounding.ckpt")
    cal = res["calibration"]
    print(f"wrote {out}: {res['epochs']} epochs in {res['train_minutes']:.1f} min, final loss "
          f"{res['final_loss']:.3f}; ask when the conformal set (alpha {cal['alpha']:.3f}, "
          f"p >= {cal['prob_threshold']:.3f}) holds 2+: {100 * cal['question_rate']:.1f} % "
          f"of calibration instructions, coverage {100 * cal['coverage']:.1f} %")
    return 0
