"""``katazuke bench grounding``: instruction grounding on held-out rooms and phrasings.

Rooms: the ``test`` profile (held-out textures and object kinds), seeds ``9000 + i``, never
used for training or calibration. Instructions: the grammar's ``test`` split (held-out
templates, paraphrases and synonyms), with the object map's imperfections
(:class:`~katazuke.planning.grounding.data.MapNoise`). Three conditions:

* **text**: the instruction as written;
* **ASR (model)**: every instruction through the confusion model fitted on the
  *training* voices' recognitions (``planning/grounding/data/asr_train.jsonl``);
* **ASR (real)**: a sample spoken by espeak-ng with held-out voices and speeds
  (:data:`~katazuke.bench.speech_noise.TEST_VOICES`) and recognised by Whisper tiny.en
  (cached in ``planning/grounding/data/asr_test.jsonl``), with the recogniser's confidence.

Measured for each: target top-1 without questions (object instructions: move, where is,
look at, about an object the map holds), target top-1 with at most one question (the
oracle user answers from the ground truth with the test split's answer phrasings, through
the same noise), the question rate, destination accuracy (move instructions whose target is
right), where-is accuracy (right object and the map's support of it equal to the true
surface), intent accuracy, unknown-object rejection, and a per-intent table. The
rule-based :class:`~katazuke.planning.tasks.parser.InstructionParser` (the task manager's
fallback) is measured on the same instructions in the same run.
"""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from katazuke.bench.harness import Bar
from katazuke.config import dataclass, field, positive

__all__ = ["GroundingBenchConfig", "BARS", "run", "markdown"]

BARS = (
    Bar("target top-1 without questions (text)", "text.target_top1_no_question", ">=", 92.0,
        unit="%"),
    Bar("target top-1 with at most one question (text)", "text.target_top1_with_question",
        ">=", 97.0, unit="%"),
    Bar("question rate (text)", "text.question_rate", "<=", 20.0, unit="%"),
    Bar("destination accuracy (text)", "text.destination_accuracy", ">=", 98.0, unit="%"),
    Bar("where-is: right object and right furniture/container (text, with at most one "
        "question)", "text.where_is_accuracy", ">=", 95.0, unit="%"),
    Bar("target top-1 with at most one question, real ASR within 5 points of text",
        "asr_gap_points", "<=", 5.0, unit="points",
        note="text minus ASR (real) target top-1 with at most one question"),
)

_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class GroundingBenchConfig:
    """What one ``katazuke bench grounding`` run measures."""

    rooms: int = positive(100, "test-profile rooms (seeds 9000 + i)")
    per_room: int = positive(30, "instructions per room")
    seed: int = field(default=0, metadata={"help": "seed of the instructions and map noise"})
    real_asr: int = field(default=150, metadata={"help": "instructions spoken and recognised "
                                                         "(held-out voices); 0 = none"})
    weights: str = field(default="", metadata={"help": "grounding weights (default: the "
                                                       "committed file)"})
    params: str = field(default="launch/params/tidy.yaml",
                        metadata={"help": "the task manager's params"})
    work: str = field(default="out/grounding", metadata={"help": "room cache folder"})


def _pct(k: float, n: int) -> float:
    return round(100.0 * k / n, 2) if n else float("nan")


class _Evaluator:
    """Grounds items (with the oracle answering questions) and tallies the figures."""

    def __init__(self, grounder, tidy, gen_test, confusion, rng):
        from katazuke.planning.grounding import Dialogue

        self.g, self.tidy, self.gen, self.confusion, self.rng = (grounder, tidy, gen_test,
                                                                 confusion, rng)
        self.Dialogue = Dialogue

    def one(self, words: list[str], conf: float, ex, scene, truth, noisy: bool) -> dict:
        from katazuke.planning.grounding.grammar import Intent

        d = self.Dialogue(self.g)
        text = " ".join(words)
        first = d.hear(text, scene, conf)
        out = {"intent": ex.intent.name, "pred_intent": first.intent.name,
               "asked": bool(first.needs_clarification), "first": first, "final": first}
        if first.needs_clarification and ex.target >= 0:
            idx = {o.id: i for i, o in enumerate(scene.objects)}
            offered = [idx[i] for i in first.options]
            if ex.target in offered:
                ans = self.gen.answer(scene, truth, ex.target, offered, self.rng)
                if ans is None:      # nothing tells it apart: name its position
                    k = offered.index(ex.target)
                    a_words = ["the", ("first", "second", "third")[min(k, 2)], "one"]
                else:
                    a_words = list(ans.words)
            else:
                a_words = ["no"]
            if noisy and self.confusion is not None:
                a_words, _ = self.confusion.corrupt(a_words, [0] * len(a_words), self.rng)
            out["final"] = d.hear(" ".join(a_words), scene, 1.0)
        return out


def _truth_dest(ex, truth):
    if ex.own_destination:
        return truth[ex.target]["destination"] if ex.target >= 0 else ""
    return ex.destination


def _score(rows: list[dict]) -> dict[str, Any]:
    from katazuke.planning.grounding.grammar import Intent

    obj = [r for r in rows if r["ex"].intent in (Intent.MOVE, Intent.WHERE_IS, Intent.LOOK_AT)
           and r["ex"].target >= 0]
    n = len(obj)
    top1 = sum(r["first"].target_id == r["truth_id"] for r in obj)
    with_q = sum(r["final"].target_id == r["truth_id"] and r["final"].understood for r in obj)
    asked = sum(r["asked"] for r in obj)
    moves = [r for r in obj if r["ex"].intent == Intent.MOVE and r["ex"].destination != "?"
             and r["final"].target_id == r["truth_id"]]
    dest_ok = sum(r["final"].destination == r["truth_dest"] for r in moves)
    wh = [r for r in obj if r["ex"].intent == Intent.WHERE_IS]
    wh_ok = sum(r["final"].target_id == r["truth_id"] and r["place_ok"] for r in wh)
    unk = [r for r in rows if r["ex"].intent in (Intent.MOVE, Intent.WHERE_IS, Intent.LOOK_AT)
           and r["ex"].target < 0]
    unk_ok = sum((not r["final"].understood) and r["final"].goal is None for r in unk)
    bad_dest = [r for r in rows if r["ex"].intent == Intent.MOVE and r["ex"].destination == "?"
                and r["ex"].target >= 0]
    bad_dest_ok = sum(r["final"].goal is None for r in bad_dest)
    intent_ok = sum(r["pred_intent"] == r["ex"].intent.name or
                    (r["ex"].intent == Intent.CHOICE) for r in rows
                    if r["ex"].intent != Intent.CHOICE)
    n_intent = sum(r["ex"].intent != Intent.CHOICE for r in rows)
    per: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["ex"].intent != Intent.CHOICE:
            groups[r["ex"].intent.name].append(r)
    for name, rs in sorted(groups.items()):
        o = [r for r in rs if r["ex"].target >= 0]
        per[name] = {"n": len(rs),
                     "intent_accuracy": _pct(sum(r["pred_intent"] == name for r in rs), len(rs)),
                     "target_top1_no_question": _pct(sum(r["first"].target_id == r["truth_id"]
                                                         for r in o), len(o)) if o else None,
                     "target_top1_with_question": _pct(sum(
                         r["final"].target_id == r["truth_id"] and r["final"].understood
                         for r in o), len(o)) if o else None,
                     "question_rate": _pct(sum(r["asked"] for r in o), len(o)) if o else None}
    return {"n_object_instructions": n, "target_top1_no_question": _pct(top1, n),
            "target_top1_with_question": _pct(with_q, n), "question_rate": _pct(asked, n),
            "destination_accuracy": _pct(dest_ok, len(moves)), "n_destination": len(moves),
            "where_is_accuracy": _pct(wh_ok, len(wh)), "n_where_is": len(wh),
            "unknown_object_rejected": _pct(unk_ok, len(unk)), "n_unknown_object": len(unk),
            "unknown_container_rejected": _pct(bad_dest_ok, len(bad_dest)),
            "intent_accuracy": _pct(intent_ok, n_intent), "n_instructions": len(rows),
            "per_intent": per}


def _parser_scores(items, scenes, truths, tidy) -> dict[str, Any]:
    """The rule-based parser on the same (clean) instructions."""
    from katazuke.planning.grounding.grammar import Intent
    from katazuke.planning.tasks.items import MapObject
    from katazuke.planning.tasks.parser import InstructionParser

    parser = InstructionParser(tidy)
    obj_n = top1 = dest_n = dest_ok = wh_n = wh_ok = int_n = int_ok = 0
    for it in items:
        ex = it.example
        if ex.intent == Intent.CHOICE:
            continue
        res = parser.parse(" ".join(it.words))
        int_n += 1
        int_ok += res.intent.value == ex.intent.value
        if ex.intent not in (Intent.MOVE, Intent.WHERE_IS, Intent.LOOK_AT) or ex.target < 0:
            continue
        scene, truth = scenes[it.scene], truths[it.scene]
        obj_n += 1
        chosen = 0
        if res.understood and res.query is not None:
            objs = [MapObject(o.id, o.category, o.position, 1.0, o.kind, o.colour,
                              o.destination) for o in scene.objects]
            r = parser.resolve(res.query, objs, scene.robot_xy)
            chosen = r.object_id
        ok = chosen == truth[ex.target]["id"]
        top1 += ok
        if ex.intent == Intent.MOVE and ex.destination != "?" and ok:
            dest_n += 1
            got = res.container or scene.object(chosen).destination
            dest_ok += got == _truth_dest(ex, truth)
        if ex.intent == Intent.WHERE_IS:
            wh_n += 1
            o = scene.object(chosen) if ok else None
            wh_ok += bool(o is not None and parser.place_of(
                MapObject(o.id, o.category, o.position)).endswith(truth[ex.target]["support"]))
    return {"n_object_instructions": obj_n, "target_top1_no_question": _pct(top1, obj_n),
            "destination_accuracy": _pct(dest_ok, dest_n), "where_is_accuracy":
                _pct(wh_ok, wh_n), "intent_accuracy": _pct(int_ok, int_n)}


def run(cfg: GroundingBenchConfig, progress=None) -> dict[str, Any]:
    """Measure (see the module docstring)."""
    from katazuke.bench.speech_noise import (TEST_VOICES, TRAIN_VOICES, load_recognitions,
                                             recognise_cached, vocabulary_prompt)
    from katazuke.planning.grounding import Grounder
    from katazuke.planning.grounding.grammar import InstructionGenerator
    from katazuke.planning.grounding.noise import ConfusionModel
    from katazuke.planning.grounding.text import tokens
    from katazuke.planning.grounding.train import build_items
    from katazuke.planning.tasks.config import load_tidy_config
    from katazuke.sim.scenes import make_records

    t0 = time.monotonic()
    tidy = load_tidy_config(cfg.params)
    data = _ROOT / "planning" / "grounding" / "data"
    records = make_records("test", [9000 + i for i in range(cfg.rooms)],
                           Path(cfg.work) / "rooms_test.jsonl", progress)
    rng = np.random.default_rng([cfg.seed, 90])
    items, scenes, truths = build_items(records, tidy, "test", cfg.per_room, rng)
    train_voices = {v for v, _ in TRAIN_VOICES}
    pairs = [(r["text"], r["recognised"]) for r in load_recognitions(data / "asr_train.jsonl")
             if r["voice"] in train_voices]
    confusion = ConfusionModel.fit(pairs)

    def rows_for(sample, noisy: str) -> list[dict]:
        out = []
        for it, words, conf in sample:
            ex, scene, truth = it.example, scenes[it.scene], truths[it.scene]
            r = ev.one(words, conf, ex, scene, truth, noisy != "text")
            r["ex"] = ex
            r["truth_id"] = truth[ex.target]["id"] if ex.target >= 0 else 0
            r["truth_dest"] = _truth_dest(ex, truth)
            fin = r["final"]
            r["place_ok"] = bool(fin.target_id and ex.target >= 0 and
                                 scene.object(fin.target_id).support ==
                                 truth[ex.target]["support"])
            out.append(r)
        return out

    # choices are answers to a question: the oracle's own answers are measured instead
    top = [it for it in items if not it.example.choices]
    rec: dict = {}
    pick, spoken = [], []
    if cfg.real_asr > 0:         # the slow part first, cached: spoken and recognised
        srng = np.random.default_rng([cfg.seed, 93])
        pick = [top[int(i)] for i in srng.choice(len(top), size=min(cfg.real_asr, len(top)),
                                                 replace=False)]
        spoken = [(" ".join(it.words), *TEST_VOICES[int(srng.integers(len(TEST_VOICES)))])
                  for it in pick]
        rec = recognise_cached(spoken, data / "asr_test.jsonl", vocabulary_prompt(tidy),
                               progress)
    grounder = Grounder(tidy, cfg.weights or None)
    gen = InstructionGenerator(tidy, "test")
    ev = _Evaluator(grounder, tidy, gen, confusion, np.random.default_rng([cfg.seed, 91]))
    text_rows = rows_for([(it, list(it.words), 1.0) for it in top], "text")
    nrng = np.random.default_rng([cfg.seed, 92])
    noised = []
    for it in top:
        w, _ = confusion.corrupt(list(it.words), list(it.tags), nrng)
        noised.append((it, w, 1.0))
    model_rows = rows_for(noised, "asr_model")
    res: dict[str, Any] = {"config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
                           "weights": str(grounder.weights_path),
                           "weights_provenance": {k: v for k, v in grounder.provenance.items()
                                                  if k != "loss_history"},
                           "calibration": grounder.calibration,
                           "asr_noise_model": {"pairs": confusion.pairs,
                                               "word_error_pct": round(100 * confusion.word_error,
                                                                       2)},
                           "text": _score(text_rows), "asr_model": _score(model_rows),
                           "parser_text": _parser_scores(top, scenes, truths, tidy)}
    if cfg.real_asr > 0:
        real = []
        wer_edits = wer_words = 0
        from katazuke.planning.grounding.noise import align
        for it, (t, v, s) in zip(pick, spoken):
            text, conf = rec[f"{v}|{int(s)}|{t}"]
            w = tokens(text)
            real.append((it, w, conf))
            wer_words += len(it.words)
            wer_edits += sum(a != b for a, b in align(list(it.words), w))
        real_rows = rows_for(real, "asr_real")
        text_same = rows_for([(it, list(it.words), 1.0) for it in pick], "text")
        res["asr_real"] = {**_score(real_rows), "wer_pct": _pct(wer_edits, wer_words),
                           "voices": [f"{v} {s} wpm" for v, s in TEST_VOICES]}
        res["text_same_sample"] = _score(text_same)
        res["asr_gap_points"] = round(res["text_same_sample"]["target_top1_with_question"]
                                      - res["asr_real"]["target_top1_with_question"], 2)
    res["wall_s"] = round(time.monotonic() - t0, 1)
    return res


def markdown(res: dict[str, Any]) -> str:
    """The report of :func:`run`."""
    cols = [("text", "text"), ("ASR (model)", "asr_model")]
    if "asr_real" in res:
        cols += [("same sample, text", "text_same_sample"), ("ASR (real)", "asr_real")]
    rows = [("target top-1, no question (%)", "target_top1_no_question"),
            ("target top-1, at most one question (%)", "target_top1_with_question"),
            ("question rate (%)", "question_rate"),
            ("destination accuracy (%)", "destination_accuracy"),
            ("where-is: object and place right (%)", "where_is_accuracy"),
            ("intent accuracy (%)", "intent_accuracy"),
            ("unknown object rejected (%)", "unknown_object_rejected"),
            ("object instructions", "n_object_instructions")]
    c = res["config"]
    lines = ["# Grounding: instructions on held-out rooms and phrasings", "",
             f"{c['rooms']} test-profile rooms (seeds 9000-{9000 + c['rooms'] - 1}, held-out "
             f"textures and kinds), {c['per_room']} instructions each from the grammar's test "
             "split (held-out templates, paraphrases, synonyms), seed "
             f"{c['seed']}; weights `{Path(res['weights']).name}` "
             f"({res['weights_provenance'].get('command', '?')}, seed "
             f"{res['weights_provenance'].get('seed', '?')}). Questions are answered by an "
             "oracle user from the ground truth.", "",
             "| | " + " | ".join(n for n, _ in cols) + " | rule-based parser (text) |",
             "|---|" + "---|" * (len(cols) + 1)]
    for label, key in rows:
        vals = [res[k].get(key, "") for _, k in cols]
        p = res["parser_text"].get(key, "n/a")
        lines.append(f"| {label} | " + " | ".join(_f(v) for v in vals) + f" | {_f(p)} |")
    if "asr_real" in res:
        lines += ["", f"ASR (real): {c['real_asr']} instructions spoken by espeak-ng with "
                      f"held-out voices ({', '.join(res['asr_real']['voices'])}), recognised "
                      f"by Whisper tiny.en: WER {res['asr_real']['wer_pct']} %. Gap to the "
                      f"same sample as text: {res['asr_gap_points']} points."]
    lines += ["", f"ASR (model): the confusion model of {res['asr_noise_model']['pairs']} "
                  "recognitions of the training voices (word error "
                  f"{res['asr_noise_model']['word_error_pct']} %) applied to every instruction "
                  "and answer.", "",
              f"When to ask: conformal prediction set (alpha {res['calibration'].get('alpha')},"
              f" p >= {res['calibration'].get('prob_threshold', 0):.3f}) chosen on the "
              f"calibration rooms for a question rate <= "
              f"{100 * 0.15:.0f} % there (measured there: "
              f"{100 * res['calibration'].get('question_rate', 0):.1f} %).", "",
              "## Per intent (text)", "",
              "| intent | n | intent acc. (%) | target top-1 (%) | with <= 1 question (%) | "
              "question rate (%) |", "|---|---|---|---|---|---|"]
    for name, r in res["text"]["per_intent"].items():
        lines.append(f"| {name} | {r['n']} | {_f(r['intent_accuracy'])} | "
                     f"{_f(r['target_top1_no_question'])} | "
                     f"{_f(r['target_top1_with_question'])} | {_f(r['question_rate'])} |")
    lines += ["", f"Wall time {res['wall_s']} s."]
    return "\n".join(lines)


def _f(v) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)
