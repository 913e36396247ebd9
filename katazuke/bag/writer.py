"""Thread-backed rosbag2 writer that survives being killed.

:class:`BagWriter` wraps the ``rosbags`` rosbag2 writer (MCAP or sqlite3). Callers
(subscription callbacks) only append to a queue; one writer thread serialises records
to disk. Every ``flush_interval_s`` the writer thread makes everything received so far
durable against a crash of this process:

- MCAP: the pending chunk is closed and written (small chunks), and the file flushed,
  so a SIGKILLed recorder leaves a header followed by complete chunks (plus at most one
  partial record), which :mod:`katazuke.bag.recover` reads back.
- sqlite3: the open transaction is committed.

``close()`` writes the MCAP summary/footer and ``metadata.yaml``.

MCAP files carry the CRC-32 checksums of the MCAP spec (rosbags itself stores 0, "not
computed"): every chunk's ``uncompressed_crc`` (over its uncompressed records), the
Data End record's ``data_section_crc`` (over every byte from the leading magic to the
Data End record) and the footer's ``summary_crc``. ``katazuke bag info --verify`` and
every message read check them (:mod:`katazuke.bag.integrity`).
"""
from __future__ import annotations

import io
import queue
import threading
import time
from binascii import crc32
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Sequence

from katazuke.bag.msgdefs import MessageDefinitions
from katazuke.bag.qos import QosSpec, to_bag_qos
from katazuke.errors import InputError

__all__ = ["BagWriter", "WriterStats", "STORAGES"]

STORAGES = ("mcap", "sqlite3")
_STOP = object()
_FLUSH = object()


@dataclass
class WriterStats:
    """Counters of a :class:`BagWriter` (read them from any thread)."""

    written: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    flushes: int = 0
    max_queue: int = 0


class BagWriter:
    """Write serialized (CDR) messages into a new rosbag2 directory.

    Args:
        path: the bag directory to create (must not exist).
        storage: ``"mcap"`` (default) or ``"sqlite3"``.
        flush_interval_s: seconds between crash-safety flushes (chunk close / commit).
        definitions: message-definition source (default: ``AMENT_PREFIX_PATH``).
        checksums: write the MCAP CRC-32s (default). False stores 0 ("not computed"),
            as rosbags does; it exists to measure what the checksums cost.

    Raises:
        InputError: the directory exists, or the storage name is unknown.
    """

    def __init__(self, path: str | Path, storage: str = "mcap", flush_interval_s: float = 0.5,
                 definitions: MessageDefinitions | None = None, checksums: bool = True) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise InputError(f"unknown storage {storage!r}; use one of {', '.join(STORAGES)}")
        if flush_interval_s <= 0:
            raise InputError("flush_interval_s must be > 0")
        self.path = Path(path)
        if self.path.exists():
            raise InputError(f"{self.path} already exists; choose a new output directory (-o)")
        self.storage = storage
        self.flush_interval_s = float(flush_interval_s)
        self.definitions = definitions or MessageDefinitions()
        self._plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer_cls = _checksum_writer() if checksums else Writer
        self._writer = None
        self._connections: dict[str, object] = {}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._closed = False
        self._ready = threading.Event()
        self.stats = WriterStats()
        # sqlite3 connections belong to the thread that made them: the writer thread
        # opens, writes and closes the storage.
        self._thread = threading.Thread(target=self._run, name="bag-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise InputError(f"cannot create bag {self.path}: {self._error}")

    # -- called from any thread ---------------------------------------------------------
    def add_topic(self, topic: str, msgtype: str, offered: Sequence[QosSpec] = ()) -> None:
        """Register ``topic`` (idempotent); its definition is looked up now.

        Raises:
            InputError: no definition of ``msgtype`` is installed.
        """
        with self._lock:
            if topic in self._connections:
                return
            text, rihs = self.definitions.definition(msgtype)
            # placeholder first: the writer thread may register the topic before put() returns
            self._connections[topic] = None
            self._queue.put(("topic", topic, msgtype, text, rihs, to_bag_qos(list(offered))))

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        """Queue one serialized message (never blocks on disk)."""
        if self._error is not None:
            raise InputError(f"bag writer failed: {self._error}")
        self._queue.put(("msg", topic, int(timestamp_ns), data))

    def flush(self, wait: bool = False, timeout: float = 30.0) -> bool:
        """Ask the writer thread to close the open chunk after what is queued so far
        (in addition to the periodic flush). ``wait``: return once it is on disk (True),
        or False when ``timeout`` passed first; otherwise never blocks on disk."""
        if self._error is not None:
            raise InputError(f"bag writer failed: {self._error}")
        done = threading.Event()
        self._queue.put((_FLUSH, done))
        return done.wait(timeout) if wait else True

    def close(self) -> WriterStats:
        """Drain the queue, write the index/footer and ``metadata.yaml``; idempotent."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
        if self._error is not None:
            raise InputError(f"bag writer failed: {self._error}")
        return self.stats

    # -- writer thread ------------------------------------------------------------------
    def _flush(self) -> None:
        storage = self._writer.storage
        if storage is None:
            return
        if self.storage == "mcap":
            if storage.chunk.msgs:  # only chunks that hold messages
                storage.close_chunk()
            storage.bio.flush()
        else:
            storage.conn.commit()
        self.stats.flushes += 1

    def _run(self) -> None:
        try:
            self._writer = self._writer_cls(self.path, version=9, storage_plugin=self._plugin)
            self._writer.open()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        last_flush = time.monotonic()
        try:
            while True:
                timeout = max(0.0, last_flush + self.flush_interval_s - time.monotonic())
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    break
                if isinstance(item, tuple) and item[0] is _FLUSH:
                    self._flush()
                    last_flush = time.monotonic()
                    item[1].set()
                    continue
                if item is not None:
                    self._handle(item)
                    self.stats.max_queue = max(self.stats.max_queue, self._queue.qsize())
                if time.monotonic() - last_flush >= self.flush_interval_s:
                    self._flush()
                    last_flush = time.monotonic()
            self._writer.close()
        except BaseException as exc:  # surfaced to the caller by write()/close()
            self._error = exc
            try:
                self._writer.abort()
            except Exception:
                pass

    def _handle(self, item: tuple) -> None:
        if item[0] == "topic":
            _, topic, msgtype, text, rihs, qos = item
            self._connections[topic] = self._writer.add_connection(
                topic, msgtype, msgdef=text, rihs01=rihs, offered_qos_profiles=qos)
            self.stats.written.setdefault(topic, 0)
            return
        _, topic, ts, data = item
        conn = self._connections.get(topic)
        if conn is None:
            raise RuntimeError(f"message on unregistered topic {topic}")
        self._writer.write(conn, ts, data)
        self.stats.written[topic] += 1
        self.stats.bytes_written += len(data)


# -- MCAP checksums ---------------------------------------------------------------------
class _CrcFile:
    """Write-through file wrapper keeping the CRC-32 of every byte written."""

    def __init__(self, raw: BinaryIO, crc: int) -> None:
        self.raw = raw
        self.crc = crc

    def write(self, data: Any) -> int:
        self.crc = crc32(data, self.crc)
        return self.raw.write(data)

    def tell(self) -> int:
        return self.raw.tell()

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.raw.close()


class _OffsetBuffer(io.BytesIO):
    """In-memory stand-in for the file whose ``tell()`` continues the file's offsets."""

    def __init__(self, base: int) -> None:
        super().__init__()
        self.base = base

    def tell(self) -> int:
        return self.base + super().tell()


_CHUNK_CRC_AT = 9 + 24  # chunk record: opcode, length, start, end, uncompressed size, crc


@lru_cache(maxsize=1)
def _checksum_writer() -> type:
    """rosbags' rosbag2 ``Writer`` whose MCAP storage writes the CRC-32 fields."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.rosbag2.storage_mcap import McapWriter

    class ChecksumMcapWriter(McapWriter):
        """rosbags' MCAP writer plus chunk, data-section and summary CRC-32s."""

        def __init__(self, path: Path, compression: Any) -> None:
            super().__init__(path, compression)
            # magic and header are already written: start the data CRC with them
            self.bio.flush()
            head = self.path.read_bytes()[:self.bio.tell()]
            self.bio = _CrcFile(self.bio, crc32(head))

        def close_chunk(self) -> None:
            crc = crc32(self.chunk.bio.getvalue())  # shares the buffer: no copy
            real = self.bio
            # rosbags writes the chunk (CRC 0), its message indexes and the chunk index
            # entry using tell(); let it write into memory, then patch the CRC in.
            self.bio = _OffsetBuffer(real.tell())
            try:
                super().close_chunk()
                view = self.bio.getbuffer()
                view[_CHUNK_CRC_AT:_CHUNK_CRC_AT + 4] = crc.to_bytes(4, "little")
                real.write(view)
                del view
            finally:
                self.bio = real

        def close(self, version: int, metadata: str) -> None:
            if self.chunk.bio.tell():
                self.close_chunk()
            crc, pos = self.bio.crc, self.bio.tell()
            super().close(version, metadata)
            _patch_data_and_summary_crc(self.path, crc, pos)

    class ChecksumWriter(Writer):
        STORAGE_PLUGINS = {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: ChecksumMcapWriter}

    return ChecksumWriter


def _patch_data_and_summary_crc(path: Path, crc: int, pos: int) -> None:
    """Fill in the Data End and footer CRCs of a just-closed MCAP file.

    Args:
        crc: CRC-32 of the file's bytes ``[0, pos)``.
        pos: offset up to which ``crc`` was taken (before the metadata record).
    """
    with path.open("r+b") as f:
        size = f.seek(0, io.SEEK_END)
        f.seek(size - 8 - 29)
        footer = f.read(29)
        summary_start = int.from_bytes(footer[9:17], "little")
        data_end = summary_start - 13
        f.seek(data_end)
        if f.read(9) != b"\x0f" + (4).to_bytes(8, "little"):
            raise RuntimeError(f"{path}: no Data End record before the summary")
        f.seek(pos)
        crc = crc32(f.read(data_end - pos), crc)
        f.seek(data_end + 9)
        f.write(crc.to_bytes(4, "little"))
        f.seek(summary_start)
        summary_crc = crc32(f.read(size - 8 - 4 - summary_start))
        f.seek(size - 8 - 4)
        f.write(summary_crc.to_bytes(4, "little"))
