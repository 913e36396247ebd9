"""Reading MCAP files that lack their summary and footer (a killed recorder).

An MCAP file is a magic, a header record and then records ``opcode (u8) | length
(u64 LE) | body``. The summary and footer are written only on a clean close, so a
recorder killed with SIGKILL leaves the header, every chunk it flushed, and possibly a
partly written record at the end. :func:`scan_mcap` walks the records from the start,
keeps every complete chunk (schemas, channels and messages inside), and reports where
the readable data ends and how many trailing bytes were dropped.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from katazuke.errors import InputError

__all__ = ["McapScan", "ScannedChannel", "scan_mcap", "iter_scanned_messages"]

MAGIC = b"\x89MCAP0\r\n"
_OP_HEADER, _OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END = (
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F)


@dataclass
class ScannedChannel:
    """One MCAP channel (a rosbag2 topic connection)."""

    id: int
    topic: str
    msgtype: str
    encoding: str
    schema_encoding: str
    schema_data: str
    metadata: dict[str, str]
    count: int = 0


@dataclass
class McapScan:
    """What a record-by-record scan of an MCAP file found.

    Attributes:
        path: the file.
        channels: channel id -> channel (with message counts).
        start_ns, end_ns: first/last message log time (ns); 0 when there are none.
        message_count: messages in complete records.
        valid_end: file offset (bytes) where the readable data ends.
        dropped_bytes: bytes after ``valid_end`` (an incomplete chunk or record).
        complete: True when the scan reached the data-end/footer records.
        chunks: (offset, length) of every complete chunk record, in file order.
        loose: (offset, length) of message records outside chunks.
    """

    path: Path
    channels: dict[int, ScannedChannel] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0
    message_count: int = 0
    valid_end: int = 0
    dropped_bytes: int = 0
    complete: bool = False
    chunks: list[tuple[int, int]] = field(default_factory=list)
    loose: list[tuple[int, int]] = field(default_factory=list)


def _u16(b: bytes, o: int) -> int:
    return struct.unpack_from("<H", b, o)[0]


def _u32(b: bytes, o: int) -> int:
    return struct.unpack_from("<I", b, o)[0]


def _u64(b: bytes, o: int) -> int:
    return struct.unpack_from("<Q", b, o)[0]


def _string(b: bytes, o: int) -> tuple[str, int]:
    n = _u32(b, o)
    return b[o + 4:o + 4 + n].decode("utf-8"), o + 4 + n


def _string_map(b: bytes, o: int) -> dict[str, str]:
    n = _u32(b, o)
    o += 4
    end = o + n
    out = {}
    while o < end:
        k, o = _string(b, o)
        v, o = _string(b, o)
        out[k] = v
    return out


def _chunk_records(body: bytes) -> bytes:
    """Decompressed records of a chunk body; ValueError when it is corrupt."""
    # start u64, end u64, uncompressed size u64, crc u32, compression string, size u64, data
    usize = _u64(body, 16)
    crc = _u32(body, 24)
    compression, o = _string(body, 28)
    csize = _u64(body, o)
    data = body[o + 8:o + 8 + csize]
    if len(data) != csize:
        raise ValueError("chunk data shorter than its declared size")
    if compression == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found,no-redef]
        data = zstd.decompress(data)
    elif compression == "lz4":
        from lz4.frame import decompress  # type: ignore[import-untyped]
        data = decompress(data)
    elif compression:
        raise ValueError(f"unsupported chunk compression {compression!r}")
    if len(data) != usize:
        raise ValueError("chunk size mismatch")
    if crc:
        from binascii import crc32
        if crc32(data) != crc:
            raise ValueError("chunk checksum mismatch")
    return data


def _records(buf: bytes) -> Iterator[tuple[int, int, int]]:
    """(opcode, body offset, body length) of every record in a decompressed chunk."""
    o = 0
    while o + 9 <= len(buf):
        op = buf[o]
        n = _u64(buf, o + 1)
        if o + 9 + n > len(buf):
            raise ValueError("record overruns its chunk")
        yield op, o + 9, n
        o += 9 + n


def _read_record_head(f: BinaryIO) -> tuple[int, int] | None:
    head = f.read(9)
    if len(head) < 9:
        return None
    return head[0], _u64(head, 1)


def scan_mcap(path: str | Path) -> McapScan:
    """Scan an MCAP file record by record, keeping everything up to the first damage.

    Raises:
        InputError: not an MCAP file (bad magic or header), or not a ros2-profile MCAP.
    """
    path = Path(path)
    size = path.stat().st_size
    scan = McapScan(path=path)
    schemas: dict[int, tuple[str, str, str]] = {}
    start, end = None, None

    def on_records(buf: bytes, pieces: Iterator[tuple[int, int, int]]) -> None:
        nonlocal start, end
        for op, o, n in pieces:
            if op == _OP_SCHEMA:
                sid = _u16(buf, o)
                name, p = _string(buf, o + 2)
                enc, p = _string(buf, p)
                data = buf[p + 4:p + 4 + _u32(buf, p)].decode("utf-8")
                schemas[sid] = (name, enc, data)
            elif op == _OP_CHANNEL:
                cid = _u16(buf, o)
                sid = _u16(buf, o + 2)
                topic, p = _string(buf, o + 4)
                enc, p = _string(buf, p)
                meta = _string_map(buf, p)
                name, senc, sdata = schemas.get(sid, ("", "", ""))
                scan.channels.setdefault(cid, ScannedChannel(cid, topic, name, enc, senc, sdata, meta))
            elif op == _OP_MESSAGE:
                cid = _u16(buf, o)
                log_time = _u64(buf, o + 6)
                ch = scan.channels.get(cid)
                if ch is not None:
                    ch.count += 1
                scan.message_count += 1
                start = log_time if start is None else min(start, log_time)
                end = log_time if end is None else max(end, log_time)

    with path.open("rb") as f:
        if f.read(8) != MAGIC:
            raise InputError(f"{path}: not an MCAP file (bad magic)")
        head = _read_record_head(f)
        if head is None or head[0] != _OP_HEADER or 17 + head[1] > size:
            raise InputError(f"{path}: MCAP header record missing or truncated")
        header = f.read(head[1])
        profile, _ = _string(header, 0)
        if profile != "ros2":
            raise InputError(f"{path}: MCAP profile is {profile!r}, not a rosbag2 'ros2' file")
        pos = f.tell()
        while True:
            head = _read_record_head(f)
            if head is None or pos + 9 + head[1] > size:
                break
            op, n = head
            if op in (_OP_DATA_END, _OP_FOOTER):
                scan.complete = True
                pos = size  # the rest is summary/footer: nothing dropped
                break
            body = f.read(n)
            try:
                if op == _OP_CHUNK:
                    buf = _chunk_records(body)
                    on_records(buf, _records(buf))
                    scan.chunks.append((pos, 9 + n))
                elif op in (_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE):
                    on_records(body, iter([(op, 0, n)]))
                    if op == _OP_MESSAGE:
                        scan.loose.append((pos, 9 + n))
            except (ValueError, struct.error, UnicodeDecodeError):
                break  # damaged record: keep what came before it
            pos += 9 + n
        scan.valid_end = min(pos, size)
        scan.dropped_bytes = size - scan.valid_end
    scan.start_ns = start or 0
    scan.end_ns = end or 0
    return scan


def iter_scanned_messages(scan: McapScan, channel_ids: set[int] | None = None,
                          start_ns: int | None = None) -> Iterator[tuple[int, int, bytes]]:
    """Messages of a scanned file as (channel id, log time ns, CDR bytes).

    Chunks are read in file order and messages sorted by time within each chunk (a
    recorder writes chunks in time order).
    """
    pieces = sorted([(o, n, True) for o, n in scan.chunks] + [(o, n, False) for o, n in scan.loose])
    with scan.path.open("rb") as f:
        for offset, length, is_chunk in pieces:
            f.seek(offset)
            raw = f.read(length)
            if is_chunk:
                buf = _chunk_records(raw[9:])
                items = [(o, n) for op, o, n in _records(buf) if op == _OP_MESSAGE]
            else:
                buf, items = raw, [(9, length - 9)]
            out = []
            for o, n in items:
                cid = _u16(buf, o)
                t = _u64(buf, o + 6)
                if channel_ids is not None and cid not in channel_ids:
                    continue
                if start_ns is not None and t < start_ns:
                    continue
                out.append((t, cid, bytes(buf[o + 22:o + n])))
            out.sort(key=lambda x: x[0])
            for t, cid, data in out:
                yield cid, t, data
