"""Audio in: WAV/FLAC files and PCM16 buffers as 16 kHz mono float32.

The recogniser and the voice-activity detector work on :data:`SAMPLE_RATE` (16 kHz) mono
float32 samples in [-1, 1]. :func:`load_audio` reads any WAV/FLAC file (any sample rate, any
channel count, any sample format ``soundfile`` reads), :func:`to_mono_16k` converts arrays,
:func:`pcm16_to_float` / :func:`float_to_pcm16` convert the bytes of an ``AudioData`` message.
"""
from __future__ import annotations

import os
from math import gcd
from pathlib import Path

import numpy as np

from katazuke.errors import InputError

__all__ = ["SAMPLE_RATE", "AudioFileError", "load_audio", "to_mono_16k", "pcm16_to_float",
           "float_to_pcm16", "AUDIO_SUFFIXES"]

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".flac")


class AudioFileError(InputError):
    """An audio file is missing, unreadable, empty or of an unsupported format."""


def to_mono_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Down-mix and resample to 16 kHz mono float32.

    Args:
        samples: ``(n,)`` mono or ``(n, channels)`` interleaved-by-row samples; float in
            [-1, 1] or integer PCM (scaled by its type's range).
        sample_rate: Hz of ``samples`` (> 0).

    Returns:
        ``(m,)`` float32 at :data:`SAMPLE_RATE` (polyphase resampling, scipy).
    """
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise InputError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    x = np.asarray(samples)
    if x.ndim not in (1, 2):
        raise InputError(f"audio must be (n,) or (n, channels), got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(-np.iinfo(x.dtype).min)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if not np.all(np.isfinite(x)):
        raise InputError("audio contains NaN or infinite samples")
    sr = int(sample_rate)
    if sr != SAMPLE_RATE and x.size:
        from scipy.signal import resample_poly

        g = gcd(SAMPLE_RATE, sr)
        x = resample_poly(x, SAMPLE_RATE // g, sr // g).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def load_audio(path: str | os.PathLike) -> np.ndarray:
    """Read a WAV or FLAC file as 16 kHz mono float32.

    Args:
        path: a ``.wav`` or ``.flac`` file, any sample rate and channel count.

    Returns:
        ``(n,)`` float32 samples at :data:`SAMPLE_RATE`, n > 0.

    Raises:
        AudioFileError: the file is missing, not WAV/FLAC, unreadable (corrupt) or holds no
            samples; the message names the file.
    """
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise AudioFileError(f"audio file not found: {p}")
    if p.suffix.lower() not in AUDIO_SUFFIXES:
        raise AudioFileError(f"{p}: unsupported audio format {p.suffix!r}; give a "
                             f"{' or '.join(AUDIO_SUFFIXES)} file")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioFileError(f"{p}: cannot read it as {p.suffix[1:].upper()} audio ({exc}); "
                             "the file is corrupt or not audio") from exc
    if data.shape[0] == 0:
        raise AudioFileError(f"{p}: the file holds no audio samples (0 frames)")
    return to_mono_16k(data, int(sr))


def pcm16_to_float(data: bytes | bytearray | memoryview | np.ndarray, channels: int = 1
                   ) -> np.ndarray:
    """Signed 16-bit little-endian interleaved PCM -> ``(n, channels)`` float32 in [-1, 1).

    Raises:
        InputError: an odd byte count or one that is not a whole number of frames.
    """
    if channels < 1:
        raise InputError(f"channels must be >= 1, got {channels}")
    buf = np.asarray(data, dtype=np.uint8) if isinstance(data, np.ndarray) else \
        np.frombuffer(bytes(data), dtype=np.uint8)
    if buf.size % (2 * channels):
        raise InputError(f"PCM16 data of {buf.size} bytes is not a whole number of "
                         f"{channels}-channel frames ({2 * channels} bytes each)")
    x = buf.view("<i2").astype(np.float32) / 32768.0
    return x.reshape(-1, channels)


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """``(n,)`` or ``(n, channels)`` float in [-1, 1] -> interleaved PCM16 little-endian bytes
    (clipped)."""
    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 32767.0 / 32768.0)
    return (np.round(x * 32768.0)).astype("<i2").tobytes()
