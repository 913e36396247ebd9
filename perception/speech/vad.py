"""Streaming utterance segmentation with Silero VAD, and the no-command-from-noise rule.

:class:`Segmenter` takes audio in chunks of any length (16 kHz mono float32) and returns
each utterance once it has ended (a pause of ``min_silence_ms``) or reached
``max_utterance_s``. The speech probability comes from Silero VAD v6 (the ONNX model that
ships inside the ``faster-whisper`` wheel, run with onnxruntime), one 32 ms frame at a time
with its recurrent state carried across chunks, so feeding a stream in pieces gives the
same frames as feeding it whole.

While muted (:meth:`Segmenter.set_muted`: the robot is speaking) nothing is collected: a
partial utterance is dropped and frames are skipped, so the robot's own voice never
becomes a command. :func:`accept_command` is the last gate: an empty transcript, or one
whose calibrated confidence is below the floor, is not a command.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from importlib import util as importlib_util
from pathlib import Path

import numpy as np

from katazuke.config import dataclass as config_dataclass, field, in_range, positive
from katazuke.errors import ConfigError, InputError
from katazuke.perception.speech.audio import SAMPLE_RATE

__all__ = ["SegmenterConfig", "Segmenter", "Utterance", "accept_command", "silero_model_path"]

FRAME = 512    # samples per VAD frame at 16 kHz (32 ms), fixed by the model
CONTEXT = 64   # samples of the previous frame the model sees with each frame


def silero_model_path() -> Path:
    """``faster_whisper/assets/silero_vad_v6.onnx`` of the installed wheel."""
    spec = importlib_util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("Silero VAD needs the PyPI package faster-whisper (it ships the model): "
                          "pip install faster-whisper==1.2.1 (scripts/bootstrap.sh does)")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise ConfigError(f"{path} is missing: reinstall faster-whisper==1.2.1")
    return path


@config_dataclass(frozen=True)
class SegmenterConfig:
    """Settings of :class:`Segmenter` (times in ms unless the name says otherwise)."""

    threshold: float = in_range(0.5, "speech probability that starts (and sustains) speech",
                                0.0, 1.0)
    neg_threshold: float = in_range(0.35, "probability below which a frame counts as silence "
                                          "(hysteresis; <= threshold)", 0.0, 1.0)
    min_speech_ms: float = positive(250.0, "utterances with less speech than this are dropped")
    min_silence_ms: float = positive(600.0, "a pause this long ends the utterance")
    speech_pad_ms: float = in_range(200.0, "audio kept before the first and after the last "
                                           "speech frame", 0.0, 2000.0)
    max_utterance_s: float = positive(20.0, "an utterance is cut at this length (Whisper reads "
                                            "30 s at most)")
    early_pause_ms: float = in_range(0.0, "after a pause this long in a short utterance, hand "
                                          "out an early copy (Utterance.early) for a keyword "
                                          "path such as 'stop'; 0 = off", 0.0, 10000.0)
    early_max_speech_ms: float = positive(1200.0, "utterances with more speech than this get no "
                                                  "early copy (keywords are short)")

    def __post_init__(self) -> None:
        if self.early_pause_ms and self.early_pause_ms >= self.min_silence_ms:
            raise ConfigError(f"early_pause_ms ({self.early_pause_ms}) must be shorter than "
                              f"min_silence_ms ({self.min_silence_ms}), or 0 (off)")
        if self.neg_threshold > self.threshold:
            raise ConfigError(f"neg_threshold ({self.neg_threshold}) must be <= threshold "
                              f"({self.threshold})")


@dataclass(frozen=True)
class Utterance:
    """One segmented utterance.

    Attributes:
        audio: ``(n,)`` float32 at 16 kHz, including the padding.
        start_s: time of the first sample (the clock of the ``t`` passed to :meth:`feed`).
        end_s: time just after the last sample.
        speech_s: seconds of frames above the threshold.
        cut: True when it was cut at ``max_utterance_s`` rather than ended by a pause.
        early: an early copy, handed out after ``early_pause_ms`` of pause in a short
            utterance; the same utterance (same ``start_s``) still ends normally later.
    """

    audio: np.ndarray
    start_s: float
    end_s: float
    speech_s: float
    cut: bool = False
    early: bool = False

    @property
    def duration_s(self) -> float:
        return self.audio.size / SAMPLE_RATE


class _Silero:
    """Silero VAD v6 on onnxruntime, one session per segmenter, state carried between calls."""

    def __init__(self) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(str(silero_model_path()),
                                                     providers=["CPUExecutionProvider"],
                                                     sess_options=opts)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """``(k, FRAME)`` consecutive frames -> ``(k,)`` speech probabilities."""
        prev = np.vstack([self._context[None], frames[:-1, -CONTEXT:]])
        batch = np.ascontiguousarray(np.hstack([prev, frames]), dtype=np.float32)
        out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h,
                                                         "c": self._c})
        self._context = frames[-1, -CONTEXT:].copy()
        return np.asarray(out, dtype=np.float64).reshape(-1)


class Segmenter:
    """Streaming VAD: ``feed(chunk, t)`` -> the utterances completed by this chunk."""

    def __init__(self, config: SegmenterConfig = SegmenterConfig()) -> None:
        self.config = config
        self._vad = _Silero()
        ms = SAMPLE_RATE / 1000.0 / FRAME  # frames per ms
        self._pad = int(round(config.speech_pad_ms * ms))
        self._end_frames = max(1, int(round(config.min_silence_ms * ms)))
        self._min_speech = max(1, int(round(config.min_speech_ms * ms)))
        self._max_frames = max(1, int(config.max_utterance_s * SAMPLE_RATE / FRAME))
        self._early_frames = int(round(config.early_pause_ms * ms))
        self._early_max = int(round(config.early_max_speech_ms * ms))
        self._muted = False
        self.reset()

    def reset(self) -> None:
        """Forget the stream: buffered samples, the current utterance and the VAD state."""
        self._vad.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_t: float | None = None
        self._preroll: deque[tuple[np.ndarray, float]] = deque(maxlen=self._pad)
        self._frames: list[np.ndarray] = []
        self._start_t = 0.0
        self._speech = 0
        self._silence = 0
        self._trailing = 0
        self.last_probabilities = np.zeros(0)

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def active(self) -> bool:
        """Whether an utterance is being collected now."""
        return bool(self._frames)

    def set_muted(self, muted: bool) -> None:
        """Mute (the robot speaks: drop what is being collected, collect nothing) or unmute."""
        muted = bool(muted)
        if muted != self._muted:
            self.reset()
        self._muted = muted

    def feed(self, chunk: np.ndarray, t: float) -> list[Utterance]:
        """Add samples; return the utterances that ended within them.

        Args:
            chunk: ``(n,)`` float32 16 kHz mono samples (n >= 0).
            t: time of ``chunk[0]`` in seconds (any clock; utterance times use it).

        Returns:
            Completed utterances, oldest first (usually none).
        """
        x = np.asarray(chunk, dtype=np.float32)
        if x.ndim != 1:
            raise InputError(f"Segmenter.feed needs (n,) mono 16 kHz samples, got shape {x.shape}")
        if self._muted or x.size == 0:
            return []
        if self._pending.size == 0:
            self._pending_t = float(t)
        self._pending = np.concatenate([self._pending, x])
        k = self._pending.size // FRAME
        if k == 0:
            return []
        frames = self._pending[: k * FRAME].reshape(k, FRAME)
        t0 = float(self._pending_t)
        self._pending = self._pending[k * FRAME:]
        self._pending_t = t0 + k * FRAME / SAMPLE_RATE
        probs = self._vad(frames)
        self.last_probabilities = probs
        out = []
        for i in range(k):
            u = self._step(frames[i], t0 + i * FRAME / SAMPLE_RATE, probs[i])
            if u is not None:
                out.append(u)
        return out

    def flush(self) -> list[Utterance]:
        """End of stream: the utterance being collected, if it has enough speech."""
        u = self._emit(cut=False) if self._frames else None
        self.reset()
        return [u] if u is not None else []

    # ------------------------------------------------------------------ internals
    def _step(self, frame: np.ndarray, t: float, p: float) -> Utterance | None:
        cfg = self.config
        if not self._frames:
            if p >= cfg.threshold:
                self._start_t = self._preroll[0][1] if self._preroll else t
                self._frames = [f for f, _ in self._preroll] + [frame]
                self._preroll.clear()
                self._speech, self._silence, self._trailing = 1, 0, 0
            elif self._pad:
                self._preroll.append((frame, t))
            return None
        self._frames.append(frame)
        if p >= cfg.threshold:
            self._speech += 1
            self._silence = 0
        elif p < cfg.neg_threshold:
            self._silence += 1
        else:  # between the thresholds: neither speech nor a pause
            self._silence = 0
        if self._silence >= self._end_frames:
            u = self._emit(cut=False)
            self._frames = []
            return u
        if (self._early_frames and self._silence == self._early_frames
                and self._min_speech <= self._speech <= self._early_max):
            keep = len(self._frames) - max(0, self._silence - self._pad)
            audio = np.concatenate(self._frames[:keep])
            return Utterance(audio=audio, start_s=self._start_t,
                             end_s=self._start_t + audio.size / SAMPLE_RATE,
                             speech_s=self._speech * FRAME / SAMPLE_RATE, early=True)
        if len(self._frames) >= self._max_frames:
            u = self._emit(cut=True)
            self._frames = []
            return u
        return None

    def _emit(self, cut: bool) -> Utterance | None:
        frames = self._frames
        if not cut:  # drop the pause beyond the padding
            keep = len(frames) - max(0, self._silence - self._pad)
            frames = frames[:keep]
        speech = self._speech
        self._speech = self._silence = 0
        if speech < self._min_speech:
            return None
        audio = np.concatenate(frames)
        return Utterance(audio=audio, start_s=self._start_t,
                         end_s=self._start_t + audio.size / SAMPLE_RATE,
                         speech_s=speech * FRAME / SAMPLE_RATE, cut=cut)


def accept_command(text: str, confidence: float, floor: float) -> bool:
    """Whether a recognised utterance may become a command.

    Nothing heard (empty text) or a calibrated confidence below ``floor`` is dropped, so
    silence, noise and music that slip past the VAD produce no command.
    """
    if not 0.0 <= floor <= 1.0:
        raise ConfigError(f"confidence floor must be in [0, 1], got {floor}")
    return bool(text.strip()) and confidence >= floor
