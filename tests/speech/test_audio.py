"""Audio loading: any rate / channels to 16 kHz mono, and clear errors for bad files."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.perception.speech import (AudioFileError, float_to_pcm16, load_audio,
                                        pcm16_to_float, to_mono_16k)

sf = pytest.importorskip("soundfile")


@pytest.mark.parametrize("sr, channels, fmt", [(16000, 1, "WAV"), (44100, 2, "WAV"),
                                               (22050, 1, "FLAC"), (8000, 3, "FLAC")])
def test_load_audio_resamples_and_downmixes(tmp_path, sr: int, channels: int, fmt: str) -> None:
    t = np.arange(int(0.5 * sr)) / sr
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    data = np.stack([tone] * channels, axis=1)
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(str(path), data, sr, format=fmt, subtype="PCM_16")
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert x.size == pytest.approx(8000, abs=2)            # 0.5 s at 16 kHz
    # the tone survives: its spectrum peaks at 440 Hz, amplitude kept
    f = np.fft.rfftfreq(x.size, 1 / 16000)[np.argmax(np.abs(np.fft.rfft(x)))]
    assert f == pytest.approx(440, abs=4)
    assert np.max(np.abs(x[500:-500])) == pytest.approx(0.5, abs=0.02)


def test_load_audio_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(AudioFileError, match="not found.*nope.wav"):
        load_audio(tmp_path / "nope.wav")
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(AudioFileError, match="corrupt.wav.*corrupt or not audio"):
        load_audio(bad)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0, 1)), 16000, format="WAV")
    with pytest.raises(AudioFileError, match="empty.wav.*no audio samples"):
        load_audio(empty)
    mp3 = tmp_path / "x.mp3"
    mp3.write_bytes(b"ID3")
    with pytest.raises(AudioFileError, match="unsupported audio format '.mp3'"):
        load_audio(mp3)


def test_pcm16_round_trip_and_frame_check() -> None:
    x = np.array([[0.0, 0.5], [-0.25, -1.0]], np.float32)
    back = pcm16_to_float(float_to_pcm16(x), channels=2)
    np.testing.assert_allclose(back, x, atol=1 / 32768)
    with pytest.raises(Exception, match="whole number of 2-channel frames"):
        pcm16_to_float(b"\x00\x01\x02", channels=2)
    with pytest.raises(Exception, match="sample_rate must be a positive integer"):
        to_mono_16k(np.zeros(10, np.float32), 0)
