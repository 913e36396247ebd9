"""``katazuke bench speech``: speech recognition WER, RTF, calibration and false triggers.

Default run (:func:`run`), all in one process on the same clips:

- **Synthetic tidy-up commands** generated from templates over the simulator's object
  kinds, categories, container colours and furniture (:func:`commands`), spoken by espeak-ng.
  The *calibration* split (voices :data:`CALIB_VOICES` x speeds :data:`CALIB_SPEEDS`, its own
  sentences, plus a few generated noise clips) only fits the confidence calibration; the
  *test* split uses disjoint voices (:data:`TEST_VOICES`) and speeds (:data:`TEST_SPEEDS`),
  its own sentences, and is never used to choose anything. A second held-out synthesizer
  (flite, :data:`FLITE_VOICES`) is reported beside it when flite is installed.
- **Real recordings** in ``shared/data/speech`` (read speech from pocketsphinx's test data),
  reported separately.
- The deployed recogniser (whisper-base with the vocabulary prompt) and its peers in the
  same run: without the prompt, and Whisper tiny.en (with the prompt).
- **RTF** = recognition wall time / audio duration per configuration, on this machine, with
  the load average recorded (a shared machine makes it pessimistic).
- **False triggers**: generated non-speech audio (white/pink/brown noise, tones, chord
  sequences, and the robot's own espeak voice while muted) streamed through the
  :class:`~katazuke.perception.speech.Segmenter`, the recogniser and
  :func:`~katazuke.perception.speech.accept_command`; commands per hour.

``--audio DIR --transcripts FILE`` (:func:`run_folder`) recognises any folder of WAV/FLAC
clips instead and prints the pooled ``WER: x.x%``.

The vocabulary prompt is built from the robot's own vocabulary (:func:`robot_vocabulary`:
the catalogue of ``katazuke.sim``), never from the test transcripts.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from katazuke.bench.harness import Bar
from katazuke.config import dataclass, field
from katazuke.errors import InputError
from katazuke.rosenv import repo_root

__all__ = ["SpeechBenchConfig", "BARS", "run", "markdown", "run_folder", "read_transcripts",
           "robot_vocabulary", "commands", "CALIB_VOICES", "TEST_VOICES", "CALIB_SPEEDS",
           "TEST_SPEEDS", "FLITE_VOICES", "REAL_DATA", "CONFIDENCE_FLOOR"]

REAL_DATA = repo_root().parent / "shared" / "data" / "speech"
#: espeak-ng voices (+variant) and speeds (words per minute) of the calibration split ...
CALIB_VOICES = ("en-us", "en-gb+f2", "en-gb-x-rp+m3", "en-029+f4")
CALIB_SPEEDS = (150, 180)
#: ... and of the held-out test split: no voice, variant or speed in common.
TEST_VOICES = ("en-gb-scotland+m2", "en-us-nyc+f3", "en-gb-x-gbclan+m6", "en-gb-x-gbcwmd+f1",
               "en-gb+m4")
TEST_SPEEDS = (140, 165, 195)
#: flite voices: a second synthesizer, held out entirely.
FLITE_VOICES = ("slt", "rms", "awb", "kal16")
#: Default confidence floor of accept_command (the asr node's `confidence_floor` default).
CONFIDENCE_FLOOR = 0.05
PRIMARY = "whisper-base+vocab"

BARS = (
    Bar("instruction WER, held-out espeak-ng voices and speeds, no closed grammar",
        f"configs.{PRIMARY}.test.wer_pct", "<=", 10.0, unit="%"),
    Bar("real-time factor on this machine (median per utterance, timed at the end of the run)",
        f"rtf.configs.{PRIMARY}.rtf_median", "<=", 0.5,
        note="wall time / audio duration; see the load average"),
    Bar("false commands per hour of non-speech audio", "false_triggers.commands_per_hour", "<=",
        1.0, unit="/h"),
)


@dataclass(frozen=True)
class SpeechBenchConfig:
    """What one ``katazuke bench speech`` run measures."""

    test_sentences: int = field(default=60, metadata={"help": "held-out espeak-ng commands"})
    calib_sentences: int = field(default=40, metadata={"help": "calibration espeak-ng commands"})
    flite_sentences: int = field(default=20, metadata={
        "help": "held-out flite commands (0: none; skipped when flite is missing)"})
    noise_minutes: float = field(default=10.0, metadata={
        "help": "minutes of each kind of non-speech audio for the false-trigger count (6 kinds: "
                "10 min each is one hour in all)"})
    seed: int = field(default=0, metadata={"help": "seed of sentences, voices and noise"})
    peers: bool = field(default=True, metadata={
        "help": "also measure the peers (no vocabulary prompt; whisper-tiny.en)"})
    cpu_threads: int = field(default=0, metadata={"help": "recogniser threads (0: every core)"})
    data: str = field(default=str(REAL_DATA), metadata={"help": "real recordings folder"})
    rtf_clips: int = field(default=20, metadata={
        "help": "held-out clips timed again at the end for the RTF bar"})

    def __post_init__(self) -> None:
        if self.rtf_clips < 1 or self.rtf_clips > self.test_sentences:
            raise InputError("--rtf-clips must be in [1, --test-sentences]")
        if self.test_sentences < 1 or self.calib_sentences < 4:
            raise InputError("--test-sentences must be >= 1 and --calib-sentences >= 4")
        if self.noise_minutes < 0 or self.flite_sentences < 0:
            raise InputError("--noise-minutes and --flite-sentences must be >= 0")


# --------------------------------------------------------------------------- vocabulary, text

def robot_vocabulary() -> list[str]:
    """The robot's own words: object kinds of the simulator's catalogue, then the base
    vocabulary (categories, bins, furniture, command verbs: the same words the asr node
    starts from, :func:`katazuke.perception.speech.vocabulary.base_vocabulary`)."""
    from katazuke.perception.speech.vocabulary import base_vocabulary, spoken
    from katazuke.sim.objects import KINDS

    return list(dict.fromkeys([spoken(k.name) for k in KINDS] + base_vocabulary()))


_TEMPLATES = (
    "put the {kind} in the {colour} bin",
    "move the {kind} to the {colour} bin",
    "please put the {colour2} {kind} into the {colour} bin",
    "pick up the {kind} on the {furniture}",
    "take the {kind} from the {furniture} and put it in the {colour} bin",
    "where is the {kind}",
    "can you find my {kind}",
    "tidy up the {category} things",
    "put all the {category} away",
    "bring the {kind} next to the {kind2} to the {furniture}",
    "the {kind} goes in the {colour} bin",
    "put the {kind} left of the {kind2} on the {furniture}",
    "tidy up the room",
    "stop",
    "cancel that",
    "yes the one on the {furniture}",
    "no the {colour2} one",
    "put the {kind} nearest to you in the {colour} bin",
)
_COLOURS2 = ("red", "blue", "green", "yellow", "white", "black", "pink", "orange", "brown")


def commands(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` tidy-up commands from templates over the catalogue (kinds, categories, bins)."""
    from katazuke.sim.objects import CATEGORIES, KINDS
    from katazuke.sim.world import CONTAINER_SPECS

    from katazuke.perception.speech.vocabulary import spoken

    kinds = sorted({spoken(k.name) for k in KINDS})
    colours = [spec[1] for spec in CONTAINER_SPECS]
    out = []
    for _ in range(n):
        t = _TEMPLATES[rng.integers(len(_TEMPLATES))]
        k1, k2 = rng.choice(kinds, 2, replace=False)
        out.append(t.format(kind=k1, kind2=k2, colour=rng.choice(colours),
                            colour2=rng.choice(_COLOURS2), furniture=rng.choice(("table", "shelf", "floor")),
                            category=rng.choice(CATEGORIES)))
    return out


# --------------------------------------------------------------------------- clips

def _flite(text: str, voice: str) -> tuple[np.ndarray, int]:
    import tempfile

    import soundfile as sf

    exe = shutil.which("flite")
    if exe is None:
        raise InputError("flite is not installed: apt-get install flite")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "x.wav"
        subprocess.run([exe, "-voice", voice, "-t", text, "-o", str(out)], check=True,
                       capture_output=True, timeout=60)
        x, sr = sf.read(str(out), dtype="float32")
    return x, int(sr)


def _synth_set(texts: Sequence[str], voices: Sequence[str], speeds: Sequence[int],
               rng: np.random.Generator, engine: str = "espeak", prefix: str = "") -> list[dict]:
    from katazuke.perception.speech import synthesize, to_mono_16k

    clips = []
    for i, text in enumerate(texts):
        voice = voices[i % len(voices)]
        speed = int(speeds[rng.integers(len(speeds))])
        if engine == "espeak":
            x, sr = synthesize(text, voice, speed, pitch=int(rng.integers(35, 70)))
        else:
            x, sr = _flite(text, voice)
        lead = np.zeros(int(0.25 * sr), np.float32)  # a little silence either side
        x = np.concatenate([lead, x, lead])
        clips.append({"name": f"{prefix or engine}-{i:03d}", "text": text, "voice": voice,
                      "speed": speed if engine == "espeak" else None,
                      "audio": to_mono_16k(x, sr)})
    return clips


def _real_clips(folder: Path) -> list[dict]:
    """The real recordings with their reference transcripts (see shared/README.md)."""
    from katazuke.perception.speech import load_audio

    ps = folder / "pocketsphinx"
    if not ps.is_dir():
        raise InputError(f"real speech folder not found: {ps} (pass --data)")
    clips = []

    def add(name: str, audio: np.ndarray, text: str) -> None:
        clips.append({"name": name, "text": text, "audio": audio})

    for line in (ps / "cards" / "cards.transcription").read_text().splitlines():
        text, name = _sphinx_line(line)
        add(f"cards/{name}", load_audio(ps / "cards" / f"{name}.wav"), text)
    for line in (ps / "librivox" / "transcription").read_text().splitlines():
        text, name = _sphinx_line(line)
        add(f"librivox/{name[-4:]}", load_audio(ps / "librivox" / f"{name}.wav"), text)
    add("forever", load_audio(ps / "forever" / "input_2_16k.wav"),
        "feels like these days go on forever")
    raw = np.fromfile(ps / "goforward.raw", dtype="<i2").astype(np.float32) / 32768.0
    add("goforward", raw, "go forward ten meters")
    return clips


def _sphinx_line(line: str) -> tuple[str, str]:
    body, _, name = line.strip().rpartition("(")
    text = body.replace("<s>", "").replace("</s>", "").strip()
    return text, name.rstrip(")").strip()


# --------------------------------------------------------------------------- noise

def _noise_clips(minutes: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Non-speech audio, 16 kHz float32, ``minutes`` of each kind."""
    sr = 16000
    n = int(minutes * 60 * sr)
    if n == 0:
        return {}

    def coloured(exponent: float) -> np.ndarray:
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / sr)
        f[0] = f[1]
        x = np.fft.irfft(spec / f ** (exponent / 2), n)
        return x / np.max(np.abs(x))

    t = np.arange(n) / sr
    # level changes every 5 s: quiet to loud
    level = np.repeat(rng.uniform(0.02, 0.5, n // (5 * sr) + 1), 5 * sr)[:n]
    out = {"white noise": coloured(0.0) * level, "pink noise": coloured(1.0) * level,
           "brown noise": coloured(2.0) * level}
    # tones: a sine whose frequency jumps every 1-3 s, with beeps (on/off)
    freqs = np.repeat(rng.uniform(200, 3000, n // sr + 1), sr)[:n]
    gate = (np.sin(2 * np.pi * t * rng.uniform(0.5, 2.0)) > -0.3).astype(float)
    out["tones and beeps"] = 0.3 * np.sin(2 * np.pi * np.cumsum(freqs) / sr) * gate
    # music-like: chords (root, third, fifth with harmonics), a new chord every 0.5 s, with
    # a decaying envelope per note and a soft noise drum.
    music = np.zeros(n)
    step = sr // 2
    for s in range(0, n, step):
        root = 110 * 2 ** (rng.integers(0, 24) / 12)
        seg = np.arange(min(step, n - s)) / sr
        env = np.exp(-3 * seg)
        for ratio in (1.0, 1.26, 1.5):
            for h, a in ((1, 1.0), (2, 0.5), (3, 0.25)):
                music[s:s + seg.size] += a * np.sin(2 * np.pi * root * ratio * h * seg) * env
        music[s:s + min(800, seg.size)] += 0.5 * rng.standard_normal(min(800, seg.size))
    out["chords (music-like)"] = 0.3 * music / np.max(np.abs(music))
    return {k: v.astype(np.float32) for k, v in out.items()}


# --------------------------------------------------------------------------- measuring

def _recognise(rec: Any, clips: list[dict], vocabulary: Sequence[str],
               progress: Callable[[str], None]) -> list[dict]:
    rows = []
    for c in clips:
        t0 = time.perf_counter()
        r = rec.transcribe(c["audio"], 16000, vocabulary)
        dt = time.perf_counter() - t0
        rows.append({"name": c["name"], "ref": c["text"], "hyp": r.text, "hyps": r.hypotheses,
                     "features": r.features, "wall_s": dt, "duration_s": r.duration_s})
        progress(f"{rec.engine} {c['name']}")
    return rows


def _labels(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Per-hypothesis features and whether each hypothesis is exactly right."""
    from katazuke.perception.speech import FEATURES, normalize

    F, y = [], []
    for r in rows:
        ref = normalize(r["ref"]) if r["ref"] else ""
        for h, f in zip(r["hyps"], r["features"]):
            F.append(f)
            y.append(h == ref)
    return np.asarray(F, dtype=np.float64).reshape(-1, len(FEATURES)), np.asarray(y, bool)


def _split_summary(rows: list[dict], calibration: Any) -> dict:
    from katazuke.perception.speech import corpus_wer, expected_calibration_error, normalize
    from katazuke.perception.speech.calibration import reliability_bins

    counts = corpus_wer([r["ref"] for r in rows], [r["hyp"] for r in rows],
                        [r["name"] for r in rows])
    out = {"wer_pct": 100 * counts.wer, **counts.as_dict(), "clips": len(rows),
           "audio_s": float(sum(r["duration_s"] for r in rows))}
    # Calibration: top-1 of each clip (P(text exactly right)).
    top = [(r["features"][0], r["hyp"] == normalize(r["ref"])) for r in rows if len(r["hyps"])]
    if calibration is not None and top:
        p = calibration.probability(np.stack([t[0] for t in top]))
        raw = np.exp(np.stack([t[0] for t in top])[:, 0])
        ok = np.array([t[1] for t in top])
        out["calibration"] = {
            "ece_top1": expected_calibration_error(p, ok),
            "ece_top1_uncalibrated_exp_avg_logprob": expected_calibration_error(raw, ok),
            "sentence_accuracy": float(ok.mean()), "mean_confidence": float(p.mean()),
            "reliability": reliability_bins(p, ok, 5),
            "dropped_by_floor": int(np.sum(p < CONFIDENCE_FLOOR)),
        }
        # Oracle n-best: the best WER reachable by picking from the list (what grounding can use).
        oracle = []
        for r in rows:
            ref = normalize(r["ref"])
            oracle.append(ref if ref in r["hyps"] else r["hyp"])
        out["nbest_oracle_wer_pct"] = 100 * corpus_wer([r["ref"] for r in rows], oracle).wer
    out["errors"] = [{"name": r["name"], "ref": normalize(r["ref"]), "hyp": r["hyp"]}
                     for r in rows if r["hyp"] != normalize(r["ref"])]
    return out


def _false_triggers(rec: Any, noise: dict[str, np.ndarray], robot_voice: np.ndarray,
                    vocabulary: Sequence[str], progress: Callable[[str], None]) -> dict:
    from katazuke.perception.speech import Segmenter, accept_command

    rows = {}
    total_s = 0.0
    total_cmd = 0
    chunk = 1600  # 100 ms, as the audio nodes publish
    for name, audio in list(noise.items()) + [("robot's own voice, muted", robot_voice)]:
        seg = Segmenter()
        seg.set_muted(name.endswith("muted"))
        utts = []
        for i in range(0, audio.size, chunk):
            utts += seg.feed(audio[i:i + chunk], i / 16000)
        utts += seg.flush()
        heard, cmds = [], 0
        for u in utts:
            r = rec.transcribe(u.audio, 16000, vocabulary)
            ok = accept_command(r.text, r.confidence, CONFIDENCE_FLOOR)
            cmds += ok
            heard.append({"t": round(u.start_s, 2), "text": r.text,
                          "confidence": round(r.confidence, 3), "command": ok})
        dur = audio.size / 16000
        rows[name] = {"audio_s": dur, "vad_utterances": len(utts), "commands": cmds,
                      "heard": heard[:20]}
        total_s += dur
        total_cmd += cmds
        progress(f"false triggers: {name}")
    return {"kinds": rows, "audio_s": total_s, "commands": total_cmd,
            "commands_per_hour": total_cmd / (total_s / 3600.0),
            "confidence_floor": CONFIDENCE_FLOOR}


def _config_result(rec: Any, vocab: Sequence[str], sets: dict[str, list[dict]],
                   calib_clips: list[dict], progress: Callable[[str], None]) -> tuple[dict, Any]:
    from katazuke.perception.speech import fit_platt

    rows_cal = _recognise(rec, calib_clips, vocab, progress)
    F, y = _labels(rows_cal)
    speech_rows = [r for r in rows_cal if r["ref"]]
    cal_wer = _split_summary(speech_rows, None)
    calibration = fit_platt(F, y, rec.engine, fitted_on={
        "voices": list(CALIB_VOICES), "speeds": list(CALIB_SPEEDS),
        "clips": len(calib_clips), "vocabulary_prompt": bool(vocab)})
    res: dict[str, Any] = {"engine": rec.engine, "vocabulary_prompt": bool(vocab),
                           "calibration_fit": {"weights": calibration.weights,
                                               "bias": calibration.bias,
                                               **calibration.fitted_on},
                           "calibration_split": {"wer_pct": cal_wer["wer_pct"],
                                                 "edits": cal_wer["edits"],
                                                 "reference_words": cal_wer["reference_words"]}}
    walls, durs = [], []
    for name, clips in sets.items():
        rows = _recognise(rec, clips, vocab, progress)
        res[name] = _split_summary(rows, calibration)
        if name == "test":
            walls = [r["wall_s"] for r in rows]
            durs = [r["duration_s"] for r in rows]
    rtf = np.asarray(walls) / np.asarray(durs)
    res["rtf_median"] = float(np.median(rtf))
    res["rtf_total"] = float(np.sum(walls) / np.sum(durs))
    res["latency_median_s"] = float(np.median(walls))
    return res, calibration


def _rtf(primary: Any, results: dict, clips: list[dict], vocab: Sequence[str],
         cfg: SpeechBenchConfig, progress: Callable[[str], None]) -> dict:
    from katazuke.perception.speech import Recognizer, RecognizerConfig

    recs = {PRIMARY: primary}
    if "whisper-tiny.en+vocab" in results:
        recs["whisper-tiny.en+vocab"] = Recognizer(RecognizerConfig(
            engine="whisper-tiny.en", calibration="none", cpu_threads=cfg.cpu_threads))
    load_before = list(os.getloadavg())
    ratios: dict[str, list[float]] = {k: [] for k in recs}
    for c in clips:
        for k, rec in recs.items():
            t0 = time.perf_counter()
            r = rec.transcribe(c["audio"], 16000, vocab)
            ratios[k].append((time.perf_counter() - t0) / r.duration_s)
        progress(f"rtf {c['name']}")
    return {"clips": len(clips), "loadavg_before": load_before,
            "loadavg_after": list(os.getloadavg()),
            "configs": {k: {"rtf_median": float(np.median(v)), "rtf_max": float(np.max(v))}
                        for k, v in ratios.items()}}


def run(cfg: SpeechBenchConfig, progress: Callable[[str], None] = lambda s: None,
        save_calibration: bool = False) -> dict:
    """Measure the recognisers on the synthetic and real sets and count false triggers."""
    from katazuke.perception.speech import (Recognizer, RecognizerConfig, synthesize,
                                            to_mono_16k)
    from katazuke.perception.speech.recognizer import default_calibration_path

    rng = np.random.default_rng(cfg.seed)
    vocab = robot_vocabulary()
    # Sentences: calibration and test drawn from separate generators.
    calib_text = commands(cfg.calib_sentences, np.random.default_rng([cfg.seed, 1]))
    test_text = commands(cfg.test_sentences, np.random.default_rng([cfg.seed, 2]))
    flite_text = commands(cfg.flite_sentences, np.random.default_rng([cfg.seed, 3]))
    calib = _synth_set(calib_text, CALIB_VOICES, CALIB_SPEEDS, np.random.default_rng([cfg.seed, 4]),
                       prefix="calib")
    # Calibration negatives: non-speech clips, where any hypothesis is wrong (own seed).
    cal_noise = _noise_clips(0.1, np.random.default_rng([cfg.seed, 5]))
    calib += [{"name": f"noise/{k}", "text": "", "audio": v[:48000]} for k, v in cal_noise.items()]
    sets = {"test": _synth_set(test_text, TEST_VOICES, TEST_SPEEDS,
                               np.random.default_rng([cfg.seed, 6]))}
    if cfg.flite_sentences and shutil.which("flite"):
        sets["flite"] = _synth_set(flite_text, FLITE_VOICES, (0,),
                                   np.random.default_rng([cfg.seed, 7]), engine="flite")
    sets["real"] = _real_clips(Path(cfg.data))
    progress(f"{sum(len(v) for v in sets.values()) + len(calib)} clips ready")

    configs = [("whisper-base", True)]
    if cfg.peers:
        configs += [("whisper-base", False), ("whisper-tiny.en", True)]
    results: dict[str, Any] = {}
    primary_rec = primary_cal = None
    for engine, use_vocab in configs:
        rc = RecognizerConfig(engine=engine, calibration="none", cpu_threads=cfg.cpu_threads,
                              use_vocabulary=use_vocab)
        t0 = time.perf_counter()
        rec = Recognizer(rc)
        load_s = time.perf_counter() - t0
        rec.transcribe(calib[0]["audio"], 16000, vocab)  # warm-up
        key = f"{engine}{'+vocab' if use_vocab else ''}"
        res, cal = _config_result(rec, vocab if use_vocab else (), sets, calib, progress)
        res["load_s"] = load_s
        results[key] = res
        if key == PRIMARY:
            primary_rec, primary_cal = rec, cal
        if save_calibration and use_vocab:
            cal.save(default_calibration_path(engine))

    # False triggers through the deployed path (calibrated with the calibration split's fit).
    primary_rec.calibration = primary_cal
    noise = _noise_clips(cfg.noise_minutes, np.random.default_rng([cfg.seed, 8]))
    robot = []
    if cfg.noise_minutes:
        lines = ["I did not understand", "the duck is on the shelf near the green bin",
                 "do you mean the red mug on the table or the blue one on the floor",
                 "putting the book in the yellow bin"]
        while sum(r.size for r in robot) < cfg.noise_minutes * 60 * 16000:
            x, sr = synthesize(lines[len(robot) % len(lines)], "en-us+m1", 170)
            robot += [to_mono_16k(x, sr), np.zeros(8000, np.float32)]
    robot_voice = np.concatenate(robot) if robot else np.zeros(0, np.float32)
    false = _false_triggers(primary_rec, noise, robot_voice, vocab, progress)

    # RTF last (the machine may have been shared during the run): the deployed recogniser and
    # tiny.en again on the same held-out clips, alternating, with the load average around it.
    rtf = _rtf(primary_rec, results, sets["test"][: cfg.rtf_clips], vocab, cfg, progress)

    return {
        "configs": results,
        "primary": PRIMARY,
        "false_triggers": false,
        "rtf": rtf,
        "vocabulary": vocab,
        "splits": {
            "calibration": {"voices": list(CALIB_VOICES), "speeds_wpm": list(CALIB_SPEEDS),
                            "sentences": cfg.calib_sentences,
                            "noise_clips": len(cal_noise)},
            "test": {"voices": list(TEST_VOICES), "speeds_wpm": list(TEST_SPEEDS),
                     "sentences": cfg.test_sentences},
            "flite": {"voices": list(FLITE_VOICES), "sentences": len(sets.get("flite", []))},
            "real": {"folder": str(cfg.data), "clips": len(sets["real"])},
        },
        "settings": {"seed": cfg.seed, "cpu_threads": cfg.cpu_threads or os.cpu_count(),
                     "loadavg_end": list(os.getloadavg()), "beam_size": 5, "num_hypotheses": 5,
                     "compute_type": "int8"},
    }


# --------------------------------------------------------------------------- folder mode

def read_transcripts(audio_dir: str | os.PathLike, transcripts: str | os.PathLike
                     ) -> list[tuple[str, Path, str]]:
    """Pair every WAV/FLAC clip in ``audio_dir`` with its line in ``transcripts``.

    The transcripts file holds one line per clip: ``<file name without extension> <text>``
    (blank lines and lines starting with ``#`` are skipped).

    Returns:
        ``[(name, path, reference text)]`` sorted by name.

    Raises:
        InputError: a missing folder or file, a clip without a line, a line without a clip,
            a name given twice, or a line without text; every offender is named.
    """
    from katazuke.perception.speech import AUDIO_SUFFIXES

    d, tf = Path(audio_dir), Path(transcripts)
    if not d.is_dir():
        raise InputError(f"--audio {d}: not a folder")
    if not tf.is_file():
        raise InputError(f"--transcripts {tf}: file not found")
    clips: dict[str, Path] = {}
    for p in sorted(d.iterdir()):
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES:
            if p.stem in clips:
                raise InputError(f"two clips named {p.stem!r} in {d}: {clips[p.stem].name} and "
                                 f"{p.name}; keep one")
            clips[p.stem] = p
    if not clips:
        raise InputError(f"--audio {d}: no .wav or .flac files")
    refs: dict[str, str] = {}
    bad: list[str] = []
    for i, line in enumerate(tf.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, text = line.strip().partition(" ")
        if not text.strip():
            bad.append(f"line {i} ({name!r}) has no reference text")
        elif name in refs:
            bad.append(f"line {i}: {name!r} is given twice")
        else:
            refs[name] = text.strip()
    no_line = sorted(set(clips) - set(refs))
    no_clip = sorted(set(refs) - set(clips))
    if no_line:
        bad.append(f"clips without a transcript line in {tf}: {', '.join(no_line)}")
    if no_clip:
        bad.append(f"transcript lines without a clip in {d}: {', '.join(no_clip)}")
    if bad:
        raise InputError("; ".join(bad))
    return [(n, clips[n], refs[n]) for n in sorted(clips)]


def run_folder(audio_dir: str | os.PathLike, transcripts: str | os.PathLike,
               engine: str = "whisper-base", use_vocabulary: bool = True, cpu_threads: int = 0,
               progress: Callable[[str], None] = lambda s: None) -> dict:
    """Recognise every clip of a folder; pooled (corpus) WER and RTF."""
    from katazuke.perception.speech import Recognizer, RecognizerConfig, load_audio

    pairs = read_transcripts(audio_dir, transcripts)
    clips = [{"name": n, "text": t, "audio": load_audio(p)} for n, p, t in pairs]
    rec = Recognizer(RecognizerConfig(engine=engine, use_vocabulary=use_vocabulary,
                                      cpu_threads=cpu_threads))
    vocab = robot_vocabulary() if use_vocabulary else ()
    rows = _recognise(rec, clips, vocab, progress)
    summary = _split_summary(rows, rec.calibration)
    summary["rtf_total"] = float(sum(r["wall_s"] for r in rows) / sum(r["duration_s"] for r in rows))
    summary["engine"] = engine
    summary["vocabulary_prompt"] = use_vocabulary
    summary["per_clip"] = [{"name": r["name"], "ref": r["ref"], "hyp": r["hyp"]} for r in rows]
    return summary


# --------------------------------------------------------------------------- report

def markdown(res: dict) -> str:
    """The report: per-configuration WER table, calibration, false triggers, splits."""
    from katazuke.bench.harness import bars_markdown, evaluate_bars

    lines = ["# Speech recognition (`katazuke bench speech`)", "",
             "## Bars", "", bars_markdown(evaluate_bars(res, BARS)), "",
             "## WER by configuration (corpus-level, normalised)", "",
             "| configuration | calibration-split WER | held-out espeak-ng WER | flite WER | real speech WER | "
             "n-best oracle (held-out) | RTF median | RTF total | latency median | ECE top-1 "
             "(held-out) | uncalibrated ECE |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, c in res["configs"].items():
        t, r = c["test"], c["real"]
        fl = c.get("flite")
        cal = t.get("calibration", {})
        fl_txt = f"{fl['wer_pct']:.1f} % ({fl['edits']}/{fl['reference_words']})" if fl else "n/a"
        lines.append(
            f"| {key}{' (deployed)' if key == res['primary'] else ''} | "
            f"{c['calibration_split']['wer_pct']:.1f} % | {t['wer_pct']:.1f} % "
            f"({t['edits']}/{t['reference_words']}) | "
            f"{fl_txt} | "
            f"{r['wer_pct']:.1f} % ({r['edits']}/{r['reference_words']}) | "
            f"{t.get('nbest_oracle_wer_pct', float('nan')):.1f} % | {c['rtf_median']:.2f} | "
            f"{c['rtf_total']:.2f} | {c['latency_median_s']:.2f} s | "
            f"{cal.get('ece_top1', float('nan')):.3f} | "
            f"{cal.get('ece_top1_uncalibrated_exp_avg_logprob', float('nan')):.3f} |")
    ft = res["false_triggers"]
    lines += ["", f"## False triggers (VAD -> {res['primary']} -> confidence floor "
                  f"{ft['confidence_floor']})", "",
              f"{ft['commands']} commands in {ft['audio_s'] / 60:.1f} min of non-speech audio: "
              f"**{ft['commands_per_hour']:.2f} per hour**.", "",
              "| audio | minutes | VAD utterances | commands | what was heard |", "|---|---|---|---|---|"]
    for name, k in ft["kinds"].items():
        heard = "; ".join(f"'{h['text']}' ({h['confidence']})" for h in k["heard"][:4] if h["text"])
        lines.append(f"| {name} | {k['audio_s'] / 60:.1f} | {k['vad_utterances']} | "
                     f"{k['commands']} | {heard or '-'} |")
    sp = res["splits"]
    prim = res["configs"][res["primary"]]
    lines += ["", "## Splits (held-out data is held out)", "",
              f"- calibration (fits the confidence calibration only): espeak-ng voices "
              f"{', '.join(sp['calibration']['voices'])} at {sp['calibration']['speeds_wpm']} wpm, "
              f"{sp['calibration']['sentences']} sentences + {sp['calibration']['noise_clips']} "
              "noise clips;",
              f"- held-out test: voices {', '.join(sp['test']['voices'])} at "
              f"{sp['test']['speeds_wpm']} wpm (no voice, variant or speed shared with "
              f"calibration), {sp['test']['sentences']} other sentences;",
              f"- flite (a second synthesizer, never seen): voices {', '.join(sp['flite']['voices'])}, "
              f"{sp['flite']['sentences']} sentences;",
              f"- real: {sp['real']['clips']} clips of `{sp['real']['folder']}` (pocketsphinx test "
              "data: cards, LibriVox read speech, 'forever', 'go forward'); references from their "
              "transcription files.",
              "",
              "Sentences come from templates over the simulator's kinds, categories, bin colours "
              "and furniture. The vocabulary prompt lists only the robot's own words "
              f"({len(res['vocabulary'])} entries: {', '.join(res['vocabulary'])}), never a test "
              "transcript; there is no grammar: the decoder may output any text.",
              "",
              f"Deployed-config errors on the held-out set ({len(prim['test']['errors'])} sentences):",
              ""]
    lines += [f"- `{e['ref']}` -> `{e['hyp']}`" for e in prim["test"]["errors"][:15]]
    lines += ["", "Real-speech errors:", ""]
    lines += [f"- {e['name']}: `{e['ref']}` -> `{e['hyp']}`" for e in prim["real"]["errors"]]
    st = res["settings"]
    rt = res["rtf"]
    lines += ["", f"## Real-time factor, timed at the end of the run ({rt['clips']} held-out clips, "
                  "configurations alternating)", "",
              "| configuration | RTF median | RTF max |", "|---|---|---|"]
    lines += [f"| {k} | {v['rtf_median']:.2f} | {v['rtf_max']:.2f} |" for k, v in rt["configs"].items()]
    lines += ["", f"Load average (1, 5, 15 min) before: {rt['loadavg_before']}, after: "
                  f"{rt['loadavg_after']} (2 cores)."]
    lines += ["", f"RTF: wall time of `Recognizer.transcribe` (beam {st['beam_size']}, "
                  f"{st['num_hypotheses']}-best, {st['compute_type']}, {st['cpu_threads']} threads) "
                  "over the clip's duration, per held-out clip; Whisper always encodes a 30 s "
                  "window, so short commands cost the same as long ones. Load average at the "
                  f"end of the run: {st['loadavg_end']}; the start is in the footer. On a shared "
                  "2-core machine the RTF is pessimistic."]
    return "\n".join(lines)
