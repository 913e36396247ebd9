"""``katazuke bench speech --audio DIR --transcripts FILE``: pairing errors and the WER line."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from katazuke.bench.speech import read_transcripts
from katazuke.errors import InputError

sf = pytest.importorskip("soundfile")


def _clips(folder, names, sr=22050):
    folder.mkdir()
    for n in names:
        sf.write(str(folder / f"{n}.wav"), np.zeros(sr // 4), sr)


def test_missing_line_and_missing_clip_are_named(tmp_path) -> None:
    _clips(tmp_path / "a", ["one", "two", "three"])
    tr = tmp_path / "t.txt"
    tr.write_text("one put the duck away\nthree stop\nfour tidy up\n")
    with pytest.raises(InputError) as e:
        read_transcripts(tmp_path / "a", tr)
    assert "clips without a transcript line" in str(e.value) and "two" in str(e.value)
    assert "lines without a clip" in str(e.value) and "four" in str(e.value)
    tr.write_text("one put the duck away\ntwo\nthree stop\n")
    with pytest.raises(InputError, match=r"line 2 \('two'\) has no reference text"):
        read_transcripts(tmp_path / "a", tr)
    tr.write_text("# comment\none put the duck away\n\ntwo a\nthree stop\n")
    assert [n for n, _, _ in read_transcripts(tmp_path / "a", tr)] == ["one", "three", "two"]


def test_cli_exits_with_the_error(tmp_path) -> None:
    _clips(tmp_path / "a", ["one", "two"])
    tr = tmp_path / "t.txt"
    tr.write_text("one put the duck away\n")
    p = subprocess.run([sys.executable, "-P", "-m", "katazuke.cli", "bench", "speech",
                        "--audio", str(tmp_path / "a"), "--transcripts", str(tr)],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert p.returncode != 0
    assert "clips without a transcript line" in p.stderr and "two" in p.stderr, p.stderr


@pytest.mark.slow
def test_cli_prints_pooled_wer(tmp_path, espeak_clip) -> None:
    x, text = espeak_clip
    d = tmp_path / "clips"
    d.mkdir()
    from scipy.signal import resample_poly
    sf.write(str(d / "cmd.flac"), resample_poly(x, 441, 160).astype(np.float32), 44100,
             format="FLAC")
    (tmp_path / "t.txt").write_text(f"cmd {text}\n")
    p = subprocess.run([sys.executable, "-P", "-m", "katazuke.cli", "bench", "speech",
                        "--audio", str(d), "--transcripts", str(tmp_path / "t.txt"),
                        "--engine", "whisper-tiny.en"],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert p.returncode == 0, p.stderr
    wer_lines = [ln for ln in p.stdout.splitlines() if ln.startswith("WER: ")]
    assert len(wer_lines) == 1 and wer_lines[0].endswith("%")
    assert float(wer_lines[0][5:-1]) <= 25.0, p.stdout
