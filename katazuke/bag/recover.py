"""Reading MCAP files that lack their summary and footer (a killed recorder, a cut file).

An MCAP file is a magic, a header record and then records ``opcode (u8) | length
(u64 LE) | body``. The summary and footer are written only on a clean close, so a
recorder killed with SIGKILL leaves the header, every chunk it flushed, and possibly a
partly written record at the end. :func:`scan_mcap` walks the records from the start,
keeps every complete chunk (schemas, channels and messages inside), and reports where
the readable data ends and how many trailing bytes were dropped. A chunk whose CRC (or
size) check fails is listed as bad and the scan goes on past it; messages are read by
:func:`katazuke.bag.integrity.iter_messages`, which skips the bad chunks with a warning.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from katazuke.bag.integrity import (MAGIC, ChunkError, ChunkRef, _string, _u16, _u32, _u64,
                                    chunk_crc, decode_chunk, iter_messages, records)
from katazuke.errors import InputError

__all__ = ["McapScan", "ScannedChannel", "scan_mcap", "iter_scanned_messages"]

_OP_HEADER, _OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END = (
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F)
_KNOWN_OPS = frozenset(range(0x01, 0x11))


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
        chunks: every complete chunk record in file order (bad ones included).
        bad_chunks: (chunk, reason) of the chunks whose CRC/size check failed; their
            messages are not counted.
        unchecked_chunks: chunks with stored CRC 0 (accepted unchecked).
        loose: (offset, length, log time ns) of message records outside chunks.
        header_end: file offset where the header record ends (bytes).
    """

    path: Path
    channels: dict[int, ScannedChannel] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0
    message_count: int = 0
    valid_end: int = 0
    dropped_bytes: int = 0
    complete: bool = False
    chunks: list[ChunkRef] = field(default_factory=list)
    bad_chunks: list[tuple[ChunkRef, str]] = field(default_factory=list)
    unchecked_chunks: int = 0
    loose: list[tuple[int, int, int]] = field(default_factory=list)
    header_end: int = 0


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

    def on_records(buf: bytes, pieces: Iterator[tuple[int, int, int]], found: set[int]) -> None:
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
                found.add(cid)
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
            raise InputError(f"{path}: nothing recoverable: the MCAP header record is missing or "
                             f"truncated (file of {size} B)")
        header = f.read(head[1])
        profile, _ = _string(header, 0)
        if profile != "ros2":
            raise InputError(f"{path}: MCAP profile is {profile!r}, not a rosbag2 'ros2' file")
        pos = scan.header_end = f.tell()
        after_bad = False
        while True:
            head = _read_record_head(f)
            if head is None or pos + 9 + head[1] > size:
                break
            op, n = head
            if after_bad and op not in _KNOWN_OPS:
                break  # the bad chunk's own length field was hit: framing lost from here
            if op in (_OP_DATA_END, _OP_FOOTER):
                scan.complete = True
                pos = size  # the rest is summary/footer: nothing dropped
                break
            body = f.read(n)
            try:
                if op == _OP_CHUNK:
                    ref = ChunkRef(pos, 9 + n, _u64(body, 0), _u64(body, 8),
                                   len(scan.chunks))
                    scan.chunks.append(ref)
                    try:
                        buf = decode_chunk(body)
                        found: set[int] = set()
                        on_records(buf, records(buf), found)
                        scan.chunks[-1] = ref._replace(channels=frozenset(found))
                        scan.unchecked_chunks += chunk_crc(body) == 0
                        after_bad = False
                    except (ChunkError, struct.error, UnicodeDecodeError) as exc:
                        scan.bad_chunks.append((ref, str(exc) or type(exc).__name__))
                        after_bad = True  # its framing held: look past it
                elif op in (_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE):
                    on_records(body, iter([(op, 0, n)]), set())
                    if op == _OP_MESSAGE:
                        scan.loose.append((pos, 9 + n, _u64(body, 6)))
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
    """Messages of a scanned file as (channel id, log time ns, CDR bytes), in time order.

    A chunk that fails its CRC check is skipped with a warning (logger ``katazuke.bag``).
    """
    return iter_messages(scan.path, scan.chunks, scan.loose, channel_ids, start_ns)
