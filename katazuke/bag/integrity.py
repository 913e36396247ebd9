"""MCAP chunk checksums: decode and verify chunks, read the summary index, and iterate
messages so that a corrupted chunk is skipped (with a warning) instead of replayed.

MCAP (https://mcap.dev/spec) protects data with three optional CRC-32 fields; a stored
value of 0 means "not computed" and is accepted as *unchecked*:

- Chunk ``uncompressed_crc``: CRC-32 of the chunk's uncompressed records.
- Data End ``data_section_crc``: CRC-32 of every byte from the file's leading magic up
  to (not including) the Data End record.
- Footer ``summary_crc``: CRC-32 from the start of the summary section through the
  footer's ``summary_offset_start`` field.

Times in reports are the chunk's ``message_start_time`` / ``message_end_time`` (bag
clock) printed by :func:`format_ns` as seconds since the epoch with nine decimals
(``1700000000.123456789``). Chunk indices count chunk records in file order from 0.
"""
from __future__ import annotations

import heapq
import logging
import struct
from binascii import crc32
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, NamedTuple

__all__ = ["ChunkRef", "ChunkError", "McapIndex", "VerifyReport", "LOGGER", "decode_chunk", "read_chunk", "read_index", "iter_messages", "verify_mcap",
           "format_ns", "describe_chunk"]

MAGIC = b"\x89MCAP0\r\n"
OP_FOOTER, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x02, 0x04, 0x05, 0x06
OP_CHUNK_INDEX, OP_DATA_END = 0x08, 0x0F
_FOOTER_LEN = 1 + 8 + 20  # opcode, length, summary_start, summary_offset_start, summary_crc
_DATA_END_LEN = 1 + 8 + 4


class ChunkRef(NamedTuple):
    """Where one chunk record lies (``ref[0]``/``ref[1]`` are offset/length, bytes).

    Attributes:
        offset: file offset of the chunk record's opcode (bytes).
        length: record length including its 9-byte opcode/length prefix (bytes).
        start_ns, end_ns: the chunk's message start/end log time (ns, bag clock).
        index: position among the file's chunk records (0-based, file order).
        channels: channel ids with messages in the chunk, or None when unknown.
    """

    offset: int
    length: int
    start_ns: int
    end_ns: int
    index: int
    channels: frozenset | None = None


class ChunkError(ValueError):
    """A chunk cannot be used: CRC mismatch, bad size, unknown compression, bad framing."""


LOGGER = logging.getLogger("katazuke.bag")
"""Where a skipped chunk is reported (WARNING); unconfigured, Python prints it to stderr."""


def format_ns(ns: int) -> str:
    """``1700000000.123456789``: a bag time (ns) as seconds since the epoch."""
    sec, nsec = divmod(int(ns), 1_000_000_000)
    return f"{sec}.{nsec:09d}"


def describe_chunk(ref: ChunkRef) -> str:
    """``chunk <i> [<t0>, <t1>]`` (times by :func:`format_ns`)."""
    return f"chunk {ref.index} [{format_ns(ref.start_ns)}, {format_ns(ref.end_ns)}]"


def _u16(b: bytes, o: int) -> int:
    return struct.unpack_from("<H", b, o)[0]


def _u32(b: bytes, o: int) -> int:
    return struct.unpack_from("<I", b, o)[0]


def _u64(b: bytes, o: int) -> int:
    return struct.unpack_from("<Q", b, o)[0]


def _string(b: bytes, o: int) -> tuple[str, int]:
    n = _u32(b, o)
    if o + 4 + n > len(b):
        raise ValueError("string overruns its record")
    return bytes(b[o + 4:o + 4 + n]).decode("utf-8"), o + 4 + n


def _decompress(data: bytes, compression: str) -> bytes:
    if compression == "":
        return data
    if compression == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found,no-redef]
        return zstd.decompress(data)
    if compression == "lz4":
        from lz4.frame import decompress  # type: ignore[import-untyped]
        return decompress(data)
    raise ChunkError(f"unsupported chunk compression {compression!r}")


def decode_chunk(body: bytes | memoryview) -> bytes:
    """The uncompressed records of a chunk record body, CRC-checked.

    A stored CRC of 0 (writers that do not compute it) is accepted unchecked.

    Raises:
        ChunkError: the CRC, sizes or compression do not match (says which).
    """
    try:
        usize = _u64(body, 16)
        crc = _u32(body, 24)
        compression, o = _string(body, 28)
        csize = _u64(body, o)
    except (struct.error, ValueError, UnicodeDecodeError):
        raise ChunkError("chunk header unreadable") from None
    data = body[o + 8:o + 8 + csize]
    if len(data) != csize:
        raise ChunkError("chunk data shorter than its declared size")
    try:
        data = _decompress(bytes(data) if compression else data, compression)
    except ChunkError:
        raise
    except Exception as exc:  # zstd/lz4 errors: corrupted compressed bytes
        raise ChunkError(f"{compression} decompression failed ({exc})") from None
    if len(data) != usize:
        raise ChunkError(f"uncompressed size {len(data)} B, header says {usize} B")
    if crc:
        got = crc32(data)
        if got != crc:
            raise ChunkError(f"CRC mismatch (stored 0x{crc:08x}, computed 0x{got:08x})")
    return bytes(data)


def chunk_crc(body: bytes | memoryview) -> int:
    """The CRC stored in a chunk record body (0: not computed)."""
    return _u32(body, 24)


def read_chunk(f: BinaryIO, ref: ChunkRef) -> bytes:
    """Read and decode (CRC-check) the chunk at ``ref``.

    Raises:
        ChunkError: no chunk record there, or :func:`decode_chunk` failed.
    """
    f.seek(ref.offset)
    raw = f.read(ref.length)
    if len(raw) != ref.length or raw[0] != OP_CHUNK or _u64(raw, 1) != ref.length - 9:
        raise ChunkError(f"no chunk record of {ref.length} B at byte {ref.offset}")
    return decode_chunk(memoryview(raw)[9:])


def records(buf: bytes) -> Iterator[tuple[int, int, int]]:
    """(opcode, body offset, body length) of every record in ``buf``.

    Raises:
        ChunkError: a record overruns ``buf``.
    """
    o = 0
    while o + 9 <= len(buf):
        op = buf[o]
        n = _u64(buf, o + 1)
        if o + 9 + n > len(buf):
            raise ChunkError("record overruns its chunk")
        yield op, o + 9, n
        o += 9 + n


@dataclass
class McapIndex:
    """What an MCAP file's summary section says (no chunk is read).

    Attributes:
        path: the file.
        topics: channel id -> topic.
        chunks: chunk records in file order.
        summary_start: offset of the summary section (bytes).
        data_crc: stored data-section CRC (0: not computed).
        summary_crc: stored summary CRC (0: not computed).
    """

    path: Path
    topics: dict[int, str] = field(default_factory=dict)
    chunks: list[ChunkRef] = field(default_factory=list)
    summary_start: int = 0
    data_crc: int = 0
    summary_crc: int = 0


def read_index(path: str | Path) -> McapIndex:
    """Parse the footer and summary section of an MCAP file.

    Raises:
        ValueError: no readable footer/summary, or the summary holds no chunk index.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        if size < 8 + _FOOTER_LEN + 8:
            raise ValueError("file too short for a footer")
        f.seek(size - 8 - _FOOTER_LEN)
        tail = f.read(_FOOTER_LEN + 8)
        if tail[-8:] != MAGIC:
            raise ValueError("file end magic is invalid (truncated or damaged tail)")
        if tail[0] != OP_FOOTER or _u64(tail, 1) != 20:
            raise ValueError("footer record missing")
        summary_start, summary_crc = _u64(tail, 9), _u32(tail, 25)
        if not 8 + _DATA_END_LEN <= summary_start <= size - 8 - _FOOTER_LEN:
            raise ValueError("file has no summary section")
        f.seek(summary_start - _DATA_END_LEN)
        data_end = f.read(_DATA_END_LEN)
        summary = f.read(size - 8 - _FOOTER_LEN - summary_start)
    index = McapIndex(path, summary_start=summary_start, summary_crc=summary_crc)
    if data_end[0] == OP_DATA_END and _u64(data_end, 1) == 4:
        index.data_crc = _u32(data_end, 9)
    try:
        refs = []
        for op, o, n in records(summary):
            if op == OP_CHANNEL:
                topic, _ = _string(summary, o + 4)
                index.topics[_u16(summary, o)] = topic
            elif op == OP_CHUNK_INDEX:
                start, end, offset, length = struct.unpack_from("<QQQQ", summary, o)
                m = _u32(summary, o + 32)
                cids = frozenset(_u16(summary, o + 36 + k) for k in range(0, m, 10))
                refs.append((offset, length, start, end, cids))
    except (struct.error, UnicodeDecodeError, ChunkError) as exc:
        raise ValueError(f"summary section unreadable ({exc})") from None
    if not refs:
        raise ValueError("summary section has no chunk index")
    refs.sort()
    index.chunks = [ChunkRef(o, n, s, e, i, c) for i, (o, n, s, e, c) in enumerate(refs)]
    return index


def _warn_skip(path: Path, ref: ChunkRef, why: str) -> None:
    LOGGER.warning("warning: %s: %s is corrupted: %s; skipped (its messages are not read), the "
                   "rest is read", path.name, describe_chunk(ref), why)


def iter_messages(path: str | Path, chunks: Iterable[ChunkRef],
                  loose: Iterable[tuple[int, int, int]] = (),
                  channel_ids: set[int] | None = None, start_ns: int | None = None,
                  on_bad: Callable[[ChunkRef, str], None] | None = None,
                  ) -> Iterator[tuple[int, int, bytes]]:
    """Messages of an MCAP file in log-time order, CRC-checked chunk by chunk.

    Chunks are decoded lazily (one is read when its start time comes up), so memory
    holds only the chunks that overlap in time. A chunk that fails its check is skipped
    with a warning on :data:`LOGGER` naming its index and time range (and reported to
    ``on_bad``); every other message is yielded.

    Args:
        path: the MCAP file.
        chunks: the chunk records to read.
        loose: (offset, length, log time ns) of message records outside chunks.
        channel_ids: only these channels (None: all).
        start_ns: skip messages before this log time (ns).
        on_bad: called with (chunk, reason) for each skipped chunk.

    Yields:
        (channel id, log time ns, message bytes).
    """
    path = Path(path)
    f = path.open("rb")

    def wanted(cid: int, t: int) -> bool:
        return (channel_ids is None or cid in channel_ids) and (start_ns is None or t >= start_ns)

    def from_chunk(k: int, ref: ChunkRef) -> Iterator[tuple]:
        yield (ref.start_ns, k, -1, 0, b"")  # sentinel: nothing is read before it is due
        try:
            buf = read_chunk(f, ref)
            out = []
            for seq, (op, o, n) in enumerate(records(buf)):
                if op != OP_MESSAGE:
                    continue
                if n < 22:
                    raise ChunkError(f"message record of {n} B")
                cid, t = _u16(buf, o), _u64(buf, o + 6)
                if wanted(cid, t):
                    out.append((t, k, seq, cid, buf[o + 22:o + n]))
        except (ChunkError, struct.error) as exc:
            why = str(exc) or type(exc).__name__
            _warn_skip(path, ref, why)
            if on_bad is not None:
                on_bad(ref, why)
            return
        out.sort(key=lambda m: (m[0], m[2]))
        yield from out

    def from_loose(k: int, items: list[tuple[int, int, int]]) -> Iterator[tuple]:
        yield (min(t for _, _, t in items), k, -1, 0, b"")
        out = []
        for seq, (offset, length, _) in enumerate(items):
            f.seek(offset)
            raw = f.read(length)
            cid, t = _u16(raw, 9), _u64(raw, 15)
            if wanted(cid, t):
                out.append((t, k, seq, cid, raw[31:]))
        out.sort(key=lambda m: (m[0], m[2]))
        yield from out

    refs = [r for r in chunks
            if (start_ns is None or r.end_ns >= start_ns)
            and (channel_ids is None or r.channels is None or r.channels & channel_ids)]
    sources = [from_chunk(k, r) for k, r in enumerate(refs)]
    loose = sorted(loose)
    if loose:
        sources.append(from_loose(len(sources), loose))
    try:
        for t, _, seq, cid, data in heapq.merge(*sources):
            if seq >= 0:
                yield cid, t, data
    finally:
        f.close()


@dataclass
class VerifyReport:
    """Result of :func:`verify_mcap`.

    Attributes:
        path: the file.
        source: where the chunk list came from (``summary`` or ``record scan``).
        chunks: chunk records checked.
        unchecked: chunks with stored CRC 0 (decoded, but nothing to compare with).
        bad: (chunk, reason) for each chunk that failed.
        data_crc: ``ok``, ``mismatch``, ``not stored`` or ``not available``.
        summary_crc: same for the summary section.
        seconds: wall time of the verification (s).
    """

    path: Path
    source: str
    chunks: int = 0
    unchecked: int = 0
    bad: list[tuple[ChunkRef, str]] = field(default_factory=list)
    data_crc: str = "not available"
    summary_crc: str = "not available"
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.bad and "mismatch" not in (self.data_crc, self.summary_crc)

    def lines(self) -> list[str]:
        """``bad chunk <i> [<t0>, <t1>]: reason`` per bad chunk, then one summary line."""
        out = [f"bad {describe_chunk(ref)}: {why}" for ref, why in self.bad]
        if self.data_crc == "mismatch":
            out.append("bad data section: CRC mismatch")
        if self.summary_crc == "mismatch":
            out.append("bad summary section: CRC mismatch (counts shown above may be wrong)")
        out.append(f"Verified:          {self.path.name}: {self.chunks} chunks from the "
                   f"{self.source}, {len(self.bad)} bad, {self.unchecked} unchecked (CRC 0); "
                   f"data section CRC {self.data_crc}; summary CRC {self.summary_crc}")
        return out


def _crc_of_range(f: BinaryIO, start: int, stop: int, block: int = 8 << 20) -> int:
    f.seek(start)
    crc, left = 0, stop - start
    while left > 0:
        b = f.read(min(block, left))
        if not b:
            break
        crc = crc32(b, crc)
        left -= len(b)
    return crc


def verify_mcap(path: str | Path) -> VerifyReport:
    """Check every chunk's CRC (and the data-section and summary CRCs when stored).

    The chunk list comes from the summary's chunk index; without a readable summary
    (a truncated file) from a record scan.

    Raises:
        InputError: not an MCAP file (from the scan).
    """
    import time

    from katazuke.bag.recover import scan_mcap

    t0 = time.perf_counter()
    path = Path(path)
    try:
        index: McapIndex | None = read_index(path)
    except ValueError:
        index = None
    if index is not None:
        report = VerifyReport(path, "summary", chunks=len(index.chunks))
        with path.open("rb") as f:
            for ref in index.chunks:
                try:
                    read_chunk(f, ref)
                    f.seek(ref.offset + 9 + 24)
                    if _u32(f.read(4), 0) == 0:
                        report.unchecked += 1
                except ChunkError as exc:
                    report.bad.append((ref, str(exc)))
            size = path.stat().st_size
            if index.data_crc:
                ok = _crc_of_range(f, 0, index.summary_start - _DATA_END_LEN) == index.data_crc
                report.data_crc = "ok" if ok else "mismatch"
            else:
                report.data_crc = "not stored"
            if index.summary_crc:
                ok = _crc_of_range(f, index.summary_start, size - 8 - 4) == index.summary_crc
                report.summary_crc = "ok" if ok else "mismatch"
            else:
                report.summary_crc = "not stored"
    else:
        scan = scan_mcap(path)
        report = VerifyReport(path, "record scan", chunks=len(scan.chunks) + len(scan.bad_chunks),
                              unchecked=scan.unchecked_chunks, bad=list(scan.bad_chunks))
    report.seconds = time.perf_counter() - t0
    return report
