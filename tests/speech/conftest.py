"""Speech test clips, made at test time with espeak-ng (never copied data)."""
from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def espeak_clip():
    """``(samples float32 16 kHz, text)`` of a short espeak-ng command."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from katazuke.perception.speech import synthesize, to_mono_16k

    text = "put the duck in the red bin"
    x, sr = synthesize(text, "en-us", 160)
    return to_mono_16k(x, sr), text


@pytest.fixture(scope="session")
def tiny_recognizer():
    """Whisper tiny.en (the fastest engine), uncalibrated; skipped without its package."""
    pytest.importorskip("faster_whisper")
    from katazuke.perception.speech import ModelFileError, Recognizer, RecognizerConfig

    try:
        return Recognizer(RecognizerConfig(engine="whisper-tiny.en", calibration="none",
                                           beam_size=2, num_hypotheses=2))
    except ModelFileError as exc:
        pytest.skip(str(exc))
