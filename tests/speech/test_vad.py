"""Silero VAD segmentation: nothing from silence or noise, one utterance from a sentence."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("faster_whisper")

from katazuke.perception.speech import Segmenter, SegmenterConfig, accept_command  # noqa: E402


def _stream(seg: Segmenter, x: np.ndarray, chunk: int = 1600, t0: float = 0.0):
    out = []
    for i in range(0, x.size, chunk):
        out += seg.feed(x[i:i + chunk], t0 + i / 16000)
    return out + seg.flush()


def test_silence_and_noise_give_no_utterance() -> None:
    rng = np.random.default_rng(0)
    seg = Segmenter()
    assert _stream(seg, np.zeros(5 * 16000, np.float32)) == []
    white = (0.2 * rng.standard_normal(5 * 16000)).astype(np.float32)
    assert _stream(seg, white) == []
    t = np.arange(5 * 16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    assert _stream(seg, tone) == []


def test_sentence_is_one_utterance_with_its_times(espeak_clip) -> None:
    x, _ = espeak_clip
    lead = np.zeros(16000, np.float32)
    stream = np.concatenate([lead, x, np.zeros(2 * 16000, np.float32)])
    seg = Segmenter()
    utts = _stream(seg, stream, chunk=1000, t0=50.0)   # chunks that are not whole frames
    assert len(utts) == 1
    u = utts[0]
    speech = np.flatnonzero(np.abs(x) > 0.01)
    t_on, t_off = 50.0 + 1.0 + speech[0] / 16000, 50.0 + 1.0 + speech[-1] / 16000
    assert u.start_s <= t_on + 0.05 and u.start_s >= t_on - 0.5
    assert u.end_s >= t_off - 0.05 and u.end_s <= t_off + 1.0
    assert u.speech_s > 0.5 and not u.cut
    # feeding in other chunk sizes gives the same utterance (state carried across chunks)
    again = _stream(Segmenter(), stream, chunk=4096, t0=50.0)
    assert len(again) == 1 and again[0].audio.size == u.audio.size


def test_muted_input_collects_nothing(espeak_clip) -> None:
    x, _ = espeak_clip
    stream = np.concatenate([x, np.zeros(16000, np.float32)])
    seg = Segmenter()
    seg.set_muted(True)
    assert _stream(seg, stream) == []
    # muting mid-utterance drops what was collected
    seg = Segmenter()
    half = x.size // 2
    assert seg.feed(x[:half], 0.0) == [] and seg.active
    seg.set_muted(True)
    assert not seg.active and seg.feed(x[half:], half / 16000) == []
    seg.set_muted(False)
    assert seg.feed(np.zeros(16000, np.float32), 5.0) == [] and seg.flush() == []


def test_accept_command_drops_empty_and_unsure() -> None:
    assert accept_command("put the duck away", 0.6, 0.05)
    assert not accept_command("", 0.99, 0.05)
    assert not accept_command("thank you", 0.01, 0.05)


def test_config_checks() -> None:
    with pytest.raises(Exception, match="neg_threshold"):
        SegmenterConfig(threshold=0.3, neg_threshold=0.4)
