"""Offline English speech recognition: Whisper on CTranslate2 (``faster-whisper``).

``Recognizer(RecognizerConfig()).transcribe(audio, 16000, vocabulary=[...])`` returns a
:class:`RecognitionResult` with the n-best list (beam hypotheses of one beam search) and
calibrated confidences. The model loads from a local folder only (never by name: a name
makes faster-whisper try a model hub), with its ``model.bin`` sha256 checked
(:mod:`katazuke.perception.speech.models`).

Vocabulary biasing, without a closed grammar: the words the robot knows (object kinds
and categories, container colours, furniture) become Whisper's *previous text* prompt
(:func:`vocabulary_prompt`), which makes those spellings likelier while any other word can
still be recognised.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from katazuke.config import dataclass as config_dataclass, field, in_range, positive
from katazuke.errors import ConfigError, InputError
from katazuke.perception.speech.audio import SAMPLE_RATE, to_mono_16k
from katazuke.perception.speech.calibration import FEATURES, Calibration
from katazuke.perception.speech.models import ENGINES, check_model_dir, model_dir
from katazuke.perception.speech.text import normalize

__all__ = ["RecognizerConfig", "Recognizer", "RecognitionResult", "vocabulary_prompt",
           "default_calibration_path", "WINDOW_S"]

WINDOW_S = 30.0  # Whisper's fixed input window


@config_dataclass(frozen=True)
class RecognizerConfig:
    """Settings of :class:`Recognizer`."""

    engine: str = field(default="whisper-base", metadata={
        "help": f"speech engine: one of {', '.join(ENGINES)}"})
    model_path: str = field(default="", metadata={
        "help": "folder of a CTranslate2 Whisper model; '' = the engine's installed package"})
    model_sha256: str = field(default="", metadata={
        "help": "sha256 of model_path's model.bin ('' = the engine's pinned hash; required "
                "with model_path)"})
    cache_dir: str = field(default="", metadata={
        "help": "where split weights are joined once ('' = $KATAZUKE_CACHE or ~/.cache/katazuke)"})
    compute_type: str = field(default="int8", metadata={
        "help": "CTranslate2 compute type on the CPU (int8, float32, ...)"})
    cpu_threads: int = in_range(0, "CTranslate2 threads; 0 = one per CPU core", 0, 256)
    beam_size: int = in_range(5, "beam width of the decoder", 1, 32)
    num_hypotheses: int = in_range(5, "n-best hypotheses returned (<= beam_size)", 1, 32)
    use_vocabulary: bool = field(default=True, metadata={
        "help": "prompt the decoder with the robot's vocabulary (False: no prompt)"})
    max_prompt_words: int = positive(120, "vocabulary words kept in the prompt (Whisper "
                                          "reads at most 223 prompt tokens)")
    calibration: str = field(default="", metadata={
        "help": "confidence calibration JSON ('' = the packaged one for the engine; 'none' = "
                "uncalibrated exp(avg log-prob))"})

    def __post_init__(self) -> None:
        if self.engine not in ENGINES and not self.model_path:
            raise ConfigError(f"unknown speech engine {self.engine!r}: use one of "
                              f"{sorted(ENGINES)} or give model_path and model_sha256")
        if self.model_path and not self.model_sha256:
            raise ConfigError("model_path needs model_sha256 (the sha256 of its model.bin), so "
                              "a corrupt or different model is refused at load")
        if self.num_hypotheses > self.beam_size:
            raise ConfigError(f"num_hypotheses ({self.num_hypotheses}) must be <= beam_size "
                              f"({self.beam_size})")


@dataclass(frozen=True)
class RecognitionResult:
    """What :meth:`Recognizer.transcribe` heard in one utterance.

    Attributes:
        text: best hypothesis, normalised (lower case, no punctuation, numbers as words);
            "" when nothing was recognised.
        hypotheses: n-best list, best first, distinct after normalisation (``[text]`` at least
            when text is non-empty; ``[]`` when empty).
        confidences: probability that each hypothesis is exactly right, aligned with
            ``hypotheses``, non-increasing.
        features: ``(len(hypotheses), len(FEATURES))`` decoder scores behind ``confidences``.
        raw_text: the decoder's best output before normalisation (punctuation, case).
        duration_s: audio length, seconds.
        engine: recogniser name, e.g. ``"whisper-base"``.
        language: BCP-47 tag of the output ("en").
    """

    text: str
    hypotheses: list[str]
    confidences: list[float]
    features: np.ndarray
    raw_text: str
    duration_s: float
    engine: str
    language: str = "en"

    @property
    def confidence(self) -> float:
        """Confidence of :attr:`text` (0 when nothing was recognised)."""
        return self.confidences[0] if self.confidences else 0.0


def vocabulary_prompt(vocabulary: Sequence[str], max_words: int = 120) -> str:
    """The decoder prompt built from the robot's vocabulary (never from test transcripts).

    Underscores become spaces ("glue_stick" -> "glue stick"), duplicates and empty entries
    are dropped, order is kept; at most ``max_words`` words.

    Returns:
        "" for an empty vocabulary, else e.g. ``"Tidy-up robot commands. Objects and places:
        duck, mug, red bin, table."``.
    """
    seen: list[str] = []
    words = 0
    for entry in vocabulary:
        if not isinstance(entry, str):
            raise InputError(f"vocabulary entries must be str, got {entry!r}")
        phrase = " ".join(entry.replace("_", " ").split()).lower()
        if phrase and phrase not in seen:
            n = len(phrase.split())
            if words + n > max_words:
                break
            seen.append(phrase)
            words += n
    if not seen:
        return ""
    return "Tidy-up robot commands. Objects and places: " + ", ".join(seen) + "."


def default_calibration_path(engine: str) -> Path:
    """The packaged calibration of ``engine`` (``calibration/<engine>.json`` in this package)."""
    return Path(str(resources.files("katazuke.perception.speech") / "calibration" / f"{engine}.json"))


class Recognizer:
    """Whisper recognition of one utterance at a time (thread-safe; calls are serialised).

    The model loads in the constructor (a few seconds): missing packages or a corrupt
    ``model.bin`` raise :class:`~katazuke.perception.speech.models.ModelFileError` here,
    not at the first utterance.
    """

    def __init__(self, config: RecognizerConfig = RecognizerConfig(),
                 calibration: Calibration | None = None) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.config = config
        if config.model_path:
            folder = check_model_dir(Path(config.model_path), config.model_sha256)
        else:
            folder = model_dir(config.engine, config.cache_dir or None)
        self.model_dir = folder
        self.engine = config.engine
        threads = config.cpu_threads or (os.cpu_count() or 1)
        # A local folder: faster-whisper never contacts a hub for it (tokenizer.json is there).
        self._model = WhisperModel(str(folder), device="cpu", compute_type=config.compute_type,
                                   cpu_threads=threads, local_files_only=True)
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual,
                                    task="transcribe", language="en")
        self._lock = threading.Lock()
        self._prompt_cache: tuple[tuple[str, ...], list[int]] | None = None
        if calibration is not None:
            self.calibration: Calibration | None = calibration
        elif config.calibration == "none":
            self.calibration = None
        else:
            self.calibration = Calibration.load(config.calibration
                                                or default_calibration_path(config.engine))
        if self.calibration is not None and self.calibration.engine != config.engine:
            raise ConfigError(f"calibration was fitted for {self.calibration.engine!r}, not "
                              f"{config.engine!r}: give that engine's calibration file")

    # ------------------------------------------------------------------ decoding
    def _prompt(self, vocabulary: Sequence[str]) -> list[int]:
        key = tuple(vocabulary) if self.config.use_vocabulary else ()
        if self._prompt_cache is None or self._prompt_cache[0] != key:
            text = vocabulary_prompt(key, self.config.max_prompt_words)
            previous = self._tokenizer.encode(" " + text) if text else []
            prompt = self._model.get_prompt(self._tokenizer, previous, without_timestamps=True)
            self._prompt_cache = (key, prompt)
        return self._prompt_cache[1]

    def _decode_window(self, audio: np.ndarray, prompt: list[int], n_best: int
                       ) -> list[tuple[str, float, float]]:
        """``[(raw text, avg log-prob, no-speech prob)]`` of one <= 30 s window, best first."""
        from faster_whisper.audio import pad_or_trim

        fe = self._model.feature_extractor
        feats = pad_or_trim(fe(audio)[:, : fe.nb_max_frames])
        enc = self._model.encode(feats)
        res = self._model.model.generate(
            enc, [prompt], beam_size=self.config.beam_size, num_hypotheses=n_best,
            length_penalty=1.0, max_length=self._model.max_length, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True, suppress_tokens=[-1])[0]
        out = []
        for tokens, score in zip(res.sequences_ids, res.scores):
            # score = cumulative log-prob / length (length_penalty 1); per token incl. end
            avg = score * len(tokens) / (len(tokens) + 1)
            out.append((self._tokenizer.decode(tokens).strip(), float(avg),
                        float(res.no_speech_prob)))
        return out

    def transcribe(self, audio: np.ndarray, sample_rate: int,
                   vocabulary: Sequence[str] = ()) -> RecognitionResult:
        """Recognise one utterance.

        Args:
            audio: ``(n,)`` mono or ``(n, channels)`` samples, float in [-1, 1] or int PCM.
            sample_rate: Hz of ``audio`` (resampled to 16 kHz here).
            vocabulary: words and phrases the robot knows now (object kinds, categories,
                container colours, furniture); biases spelling, never restricts output.

        Returns:
            :class:`RecognitionResult`; empty ``text`` when nothing was recognised.

        Raises:
            InputError: empty audio, bad shape or sample rate.
        """
        x = to_mono_16k(audio, sample_rate)
        if x.size == 0:
            raise InputError("transcribe() got no audio samples: pass at least one sample")
        duration = x.size / SAMPLE_RATE
        prompt = self._prompt(vocabulary)
        win = int(WINDOW_S * SAMPLE_RATE)
        with self._lock:
            if x.size <= win:
                hyps = self._decode_window(x, prompt, self.config.num_hypotheses)
            else:  # longer than Whisper's window: best path of each window, joined
                parts = [self._decode_window(x[i:i + win], prompt, 1)[0]
                         for i in range(0, x.size, win)]
                hyps = [(" ".join(p[0] for p in parts),
                         float(np.mean([p[1] for p in parts])),
                         float(np.max([p[2] for p in parts])))]
        texts, feats, raw = [], [], hyps[0][0] if hyps else ""
        best = hyps[0][1] if hyps else 0.0
        if hyps and not normalize(hyps[0][0]):
            hyps = []  # the decoder's best reading is "nothing said": no runner-up replaces it
        for text, avg, nsp in hyps:
            norm = normalize(text)
            if not norm or norm in texts:  # beams that differ only in case or punctuation
                continue
            texts.append(norm)
            feats.append((avg, avg - best, nsp, np.log1p(len(norm.split()))))
        F = np.asarray(feats, dtype=np.float64).reshape(-1, len(FEATURES))
        if self.calibration is not None:
            conf = self.calibration.probability(F) if len(F) else np.zeros(0)
        else:
            conf = np.exp(F[:, 0]) if len(F) else np.zeros(0)
        conf = np.minimum.accumulate(conf) if conf.size else conf  # n-best: non-increasing
        return RecognitionResult(text=texts[0] if texts else "", hypotheses=texts,
                                 confidences=[float(c) for c in conf], features=F, raw_text=raw,
                                 duration_s=float(duration), engine=self.engine)
