"""MCAP integrity: the CRCs our writer stores, ``bag info --verify``, skipping a corrupted
chunk while reading, tail-truncated bags read fully, early-truncated bags refused clearly.

Every bag is small and written here by :class:`~katazuke.bag.BagWriter`."""
from __future__ import annotations

import json
import logging
import re
import struct
import subprocess
import sys
from binascii import crc32
from pathlib import Path

import numpy as np
import pytest

from katazuke.bag import BagWriter, open_bag
from katazuke.bag.integrity import format_ns, read_index, verify_mcap
from katazuke.bench.bag import copy_bag
from katazuke.errors import InputError
from katazuke.rosenv import ros_environment

N_MSGS = 60


def _katazuke(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "katazuke"
    return subprocess.run([str(exe), *args], env=ros_environment(), capture_output=True,
                          text=True, timeout=timeout)


def _write(path: Path, checksums: bool = True) -> list[tuple[str, int, bytes]]:
    """A bag of image-sized payloads in small chunks: an explicit flush every 8 messages
    (6 or more chunks whatever the machine's speed; the periodic flush is an hour away)."""
    rng = np.random.default_rng(7)
    w = BagWriter(path, flush_interval_s=3600.0, checksums=checksums)
    w.add_topic("/img", "sensor_msgs/msg/Image")
    w.add_topic("/det", "katazuke_interfaces/msg/Detection")
    sent = []
    for i in range(N_MSGS):
        topic = "/img" if i % 2 else "/det"
        size = 20_000 if topic == "/img" else 300
        data = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        t = 1_700_000_000_000_000_000 + i * 33_000_000
        w.write(topic, t, data)
        sent.append((topic, t, data))
        if i % 8 == 7:
            w.flush()
    w.close()
    return sent


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    bag = tmp_path_factory.mktemp("integrity") / "clean"
    sent = _write(bag)
    assert len(read_index(bag / "clean.mcap").chunks) >= 4
    return bag, sent


def _read_all(bag: Path) -> tuple[list, list]:
    with open_bag(bag) as b:
        return list(b.messages()), list(b.bad_chunks)


# -- what the writer stores ----------------------------------------------------------------
def test_writer_stores_the_spec_crcs_and_rosbags_reads_the_bag(clean: tuple[Path, list]) -> None:
    bag, sent = clean
    raw = (bag / "clean.mcap").read_bytes()
    index = read_index(bag / "clean.mcap")
    for ref in index.chunks:  # recompute each chunk's CRC from the file, independently
        body = raw[ref.offset + 9:ref.offset + ref.length]
        usize, crc = struct.unpack_from("<QI", body, 16)
        (clen,) = struct.unpack_from("<I", body, 28)
        assert clen == 0  # uncompressed: the records follow the compressed-size field
        records = body[32 + 8:]
        assert len(records) == usize and crc != 0 and crc == crc32(records)
    footer = len(raw) - 8 - 29
    summary_start, _, summary_crc = struct.unpack_from("<QQI", raw, footer + 9)
    assert raw[summary_start - 13] == 0x0F  # Data End, then the summary
    (data_crc,) = struct.unpack_from("<I", raw, summary_start - 4)
    assert data_crc == crc32(raw[:summary_start - 13])
    assert summary_crc == crc32(raw[summary_start:len(raw) - 12])

    from rosbags.rosbag2 import Reader  # the pinned PyPI reader checks chunk CRCs itself

    with Reader(bag) as reader:
        got = [(c.topic, t, bytes(d)) for c, t, d in reader.messages()]
    assert got == sent


def test_clean_bag_verifies(clean: tuple[Path, list]) -> None:
    bag, sent = clean
    out = _katazuke("bag", "info", "--verify", str(bag))
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(rf"^Messages:\s+{len(sent)}$", out.stdout, re.M)
    assert "bad chunk" not in out.stdout
    assert "0 bad, 0 unchecked" in out.stdout
    assert "data section CRC ok; summary CRC ok" in out.stdout
    got, bad = _read_all(bag)
    assert got == sent and bad == []


def test_chunks_without_crc_are_accepted_unchecked(tmp_path: Path) -> None:
    sent = _write(tmp_path / "nocrc", checksums=False)
    report = verify_mcap(tmp_path / "nocrc" / "nocrc.mcap")
    assert report.ok and report.chunks >= 4 and report.unchecked == report.chunks
    assert report.data_crc == "not stored" and report.summary_crc == "not stored"
    assert _katazuke("bag", "info", "--verify", str(tmp_path / "nocrc")).returncode == 0
    assert _read_all(tmp_path / "nocrc") == (sent, [])


# -- a flipped byte ------------------------------------------------------------------------
@pytest.mark.parametrize("tail_cut", [0, 50], ids=["with-summary", "footer-cut"])
def test_flipped_byte_names_the_chunk_and_reading_skips_only_it(
        clean: tuple[Path, list], tmp_path: Path, caplog: pytest.LogCaptureFixture,
        tail_cut: int) -> None:
    src, sent = clean
    raw = bytearray((src / "clean.mcap").read_bytes())
    ref = read_index(src / "clean.mcap").chunks[2]
    raw[ref.offset + ref.length // 2] ^= 0x04  # inside the chunk's records
    bag = copy_bag(src, tmp_path / "flipped", bytes(raw[:len(raw) - tail_cut]))
    span = f"[{format_ns(ref.start_ns)}, {format_ns(ref.end_ns)}]"

    out = _katazuke("bag", "info", "--verify", str(bag))
    assert out.returncode == 1, out.stdout + out.stderr
    bad_lines = [ln for ln in out.stdout.splitlines() if ln.startswith("bad chunk")]
    assert len(bad_lines) == 1 and bad_lines[0].startswith(f"bad chunk 2 {span}")

    with caplog.at_level(logging.WARNING, logger="katazuke.bag"):
        got, bad = _read_all(bag)
    kept = [m for m in sent if not ref.start_ns <= m[1] <= ref.end_ns]
    assert 0 < len(kept) < len(sent)
    assert got == kept  # every other message, in order, unchanged
    assert [(r.index, r.start_ns, r.end_ns) for _, r, _ in bad] == [(2, ref.start_ns, ref.end_ns)]
    warned = [r.getMessage() for r in caplog.records if "corrupted" in r.getMessage()]
    assert len(warned) == 1 and f"chunk 2 {span}" in warned[0] and "CRC mismatch" in warned[0]


# -- truncation ----------------------------------------------------------------------------
@pytest.mark.parametrize("cut", [1, 50, 100])
def test_bag_with_its_last_bytes_cut_reads_fully(clean: tuple[Path, list], tmp_path: Path,
                                                 cut: int) -> None:
    src, sent = clean
    raw = (src / "clean.mcap").read_bytes()
    bag = copy_bag(src, tmp_path / f"cut{cut}", raw[:-cut])
    with open_bag(bag) as b:
        assert list(b.messages()) == sent
        assert b.summary.message_count == len(sent)
        assert "data section is complete" in b.summary.recovery
    assert list(open_bag(bag / f"cut{cut}.mcap").messages()) == sent  # the file itself too
    out = _katazuke("bag", "info", str(bag))
    assert out.returncode == 0 and re.search(rf"^Messages:\s+{len(sent)}$", out.stdout, re.M)
    if cut == 100:  # play too (one ROS run keeps the test short)
        stats = tmp_path / "stats.json"
        play = _katazuke("bag", "play", str(bag), "--rate", "50", "--stats-json", str(stats))
        assert play.returncode == 0, play.stderr
        assert sum(json.loads(stats.read_text())["published"].values()) == len(sent)


@pytest.mark.parametrize("keep", ["100B", "1KB", "first-chunk-minus-1", "header-cut"])
def test_bag_cut_early_exits_nonzero_with_nothing_recoverable(
        clean: tuple[Path, list], tmp_path: Path, keep: str) -> None:
    src, _ = clean
    raw = (src / "clean.mcap").read_bytes()
    first = read_index(src / "clean.mcap").chunks[0]
    n = {"100B": 100, "1KB": 1024, "first-chunk-minus-1": first.offset + first.length - 1,
         "header-cut": 30}[keep]
    assert n < first.offset + first.length  # nothing complete is left
    bag = copy_bag(src, tmp_path / "early", raw[:n])
    with pytest.raises(InputError, match="nothing recoverable") as err:
        open_bag(bag)
    assert "summary section" in str(err.value) and "\n" not in str(err.value)
    if keep != "header-cut":
        assert "record scan from the start" in str(err.value)
        assert "0 complete chunk" in str(err.value)
    cmds = [("info",)] + ([("info", "--verify"), ("play",)] if keep == "1KB" else [])
    for cmd in cmds:
        out = _katazuke("bag", *cmd, str(bag))
        assert out.returncode != 0 and "nothing recoverable" in out.stderr, (cmd, out.stderr)
        assert "Traceback" not in out.stderr
