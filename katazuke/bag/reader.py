"""Open any bag we meet: rosbag2 (MCAP, sqlite3, split), a bare ``.mcap``/``.db3`` file,
a ROS 1 ``.bag``, or a rosbag2 directory left behind by a killed recorder.

:func:`open_bag` returns a :class:`Bag` with a :class:`BagSummary` (what ``katazuke bag
info`` prints) and a time-ordered message stream of CDR bytes (ROS 1 messages are
converted to ROS 2 CDR on the fly). Every failure is an :class:`InputError` naming the
file and the reason.

MCAP messages are read chunk by chunk with each chunk's CRC checked
(:mod:`katazuke.bag.integrity`): a corrupted chunk is skipped with a warning (logger
``katazuke.bag``) naming its index and time range, recorded in :attr:`Bag.bad_chunks`,
and every other message is still yielded. A file whose tail (footer/summary) is damaged
is read by scanning its records; one with nothing readable raises an :class:`InputError`
saying "nothing recoverable" and what was tried.
"""
from __future__ import annotations

import heapq
import os
import sqlite3
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from katazuke.bag.integrity import ChunkRef, McapIndex, iter_messages, read_index
from katazuke.bag.msgdefs import MessageDefinitions
from katazuke.bag.recover import McapScan, scan_mcap
from katazuke.errors import InputError

__all__ = ["Bag", "BagSummary", "TopicSummary", "open_bag", "format_summary", "write_metadata"]

RESTORED_MARK = "katazuke-recovered"  # ros_distro of a metadata.yaml we rebuilt


@dataclass(frozen=True)
class TopicSummary:
    """One topic of a bag.

    Attributes:
        name: topic name.
        msgtype: ROS 2 type name (``pkg/msg/Type``).
        count: messages.
        serialization_format: ``cdr`` (rosbag2) or ``ros1``.
        qos: recorded offered QoS profiles (rosbags ``Qos`` tuples; may be empty).
        latched: ROS 1 latching flag (None for rosbag2).
        msgdef: stored message definition text ('' when the bag has none).
        msgdef_format: ``msg``, ``idl`` or ``none``.
    """

    name: str
    msgtype: str
    count: int
    serialization_format: str
    qos: tuple = ()
    latched: bool | None = None
    msgdef: str = ""
    msgdef_format: str = "none"


@dataclass
class BagSummary:
    """Bag-level facts (``ros2 bag info``).

    Attributes:
        path: what was opened.
        storage: ``mcap``, ``sqlite3`` or ``rosbag1``.
        files: data files.
        size_bytes: total size of the data files.
        start_ns, end_ns: first/last message time (ns since epoch, bag clock).
        message_count: total messages.
        topics: per-topic summaries.
        recovery: what was recovered from an unfinished bag (None when intact).
        notes: other remarks (e.g. a stored definition that cannot be parsed).
    """

    path: Path
    storage: str
    files: list[Path]
    size_bytes: int
    start_ns: int
    end_ns: int
    message_count: int
    topics: list[TopicSummary]
    recovery: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) * 1e-9


def _err(path: Path, exc: BaseException | str) -> InputError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(f"{path}: {text}")


def _kind(fmt: Any) -> str:
    name = getattr(fmt, "name", str(fmt)).lower()
    return {"msg": "msg", "idl": "idl"}.get(name, "none")


BadChunks = list[tuple[Path, ChunkRef, str]]  # (file, chunk, reason)


class Bag:
    """An open bag; use :func:`open_bag`. Close it (or use ``with``).

    Attributes:
        summary: what ``katazuke bag info`` prints.
        bad_chunks: (file, chunk, reason) of every MCAP chunk that failed its check while
            messages were read (each skipped once per pass).
    """

    def __init__(self, summary: BagSummary,
                 iterate: Callable[[set[str] | None, int | None], Iterator[tuple[str, int, bytes]]],
                 close: Callable[[], None], ros1_typestore: Any = None,
                 bad_chunks: BadChunks | None = None) -> None:
        self.summary = summary
        self.bad_chunks: BadChunks = [] if bad_chunks is None else bad_chunks
        self._iterate = iterate
        self._close = close
        self._ros1_typestore = ros1_typestore
        self._converters: dict[str, Callable[[bytes], bytes]] = {}

    @property
    def is_ros1(self) -> bool:
        return self._ros1_typestore is not None

    def topic(self, name: str) -> TopicSummary:
        for t in self.summary.topics:
            if t.name == name:
                return t
        raise InputError(f"{self.summary.path}: has no topic {name!r}; it has "
                         f"{', '.join(t.name for t in self.summary.topics) or 'no topics'}")

    def check_definitions(self, topics: Sequence[str] | None = None) -> None:
        """Parse the stored message definitions of ``topics`` (default: all).

        Raises:
            InputError: a stored definition cannot be parsed (names file, type, reason).
        """
        from rosbags.typesys import get_types_from_idl, get_types_from_msg

        for t in self.summary.topics:
            if topics is not None and t.name not in topics:
                continue
            if not t.msgdef or t.msgdef_format == "none" or t.serialization_format != "cdr":
                continue
            try:
                if t.msgdef_format == "msg":
                    get_types_from_msg(t.msgdef, t.msgtype)
                else:
                    get_types_from_idl(t.msgdef)
            except Exception as exc:  # rosbags' parser errors carry the whole text
                why = str(exc).strip().splitlines()[0].rstrip(":") or type(exc).__name__
                hint = (" (service definitions with a '---' separator are not supported)"
                        if "---" in t.msgdef else "")
                raise InputError(
                    f"{self.summary.files[0] if self.summary.files else self.summary.path}: "
                    f"rosbags cannot parse the stored definition of {t.msgtype} "
                    f"(topic {t.name}): {why}{hint}") from None

    def converter(self, topic: str, definitions: MessageDefinitions) -> Callable[[bytes], bytes]:
        """Function mapping a stored message of ``topic`` to ROS 2 CDR bytes.

        Identity for rosbag2; for ROS 1 bags the message is deserialized with the bag's
        own definitions and re-serialized with the ROS 2 definition (fields that ROS 2
        dropped, such as ``Header.seq``, are dropped).
        """
        if not self.is_ros1:
            return bytes
        if topic not in self._converters:
            from rosbags.convert.converter import is_same_wireformat, migrate_bytes

            msgtype = self.topic(topic).msgtype
            definitions.definition(msgtype)
            src, dst = self._ros1_typestore, definitions.typestore
            if is_same_wireformat(src, dst, msgtype, msgtype):
                def conv(raw: bytes, _t: str = msgtype) -> bytes:
                    return bytes(dst.ros1_to_cdr(raw, _t))
            else:
                cache: dict[str, object] = {}

                def conv(raw: bytes, _t: str = msgtype) -> bytes:
                    return bytes(migrate_bytes(src, dst, _t, _t, cache, raw,
                                               src_is2=False, dst_is2=True))
            self._converters[topic] = conv
        return self._converters[topic]

    def messages(self, topics: Sequence[str] | None = None,
                 start_ns: int | None = None) -> Iterator[tuple[str, int, bytes]]:
        """Yield ``(topic, timestamp_ns, raw bytes)`` in time order.

        Raw bytes are CDR for rosbag2 and ROS 1 serialization for ROS 1 bags (see
        :meth:`converter`). MCAP chunks that fail their CRC check are skipped with a
        warning (logger ``katazuke.bag``) and added to :attr:`bad_chunks`; the other
        messages are yielded.
        """
        wanted = None if topics is None else set(topics)
        return self._iterate(wanted, start_ns)

    def close(self) -> None:
        self._close()

    def __enter__(self) -> "Bag":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------
def _size(files: Sequence[Path]) -> int:
    return sum(f.stat().st_size for f in files if f.exists())


def _open_rosbags2(path: Path) -> Bag:
    from rosbags.rosbag2 import Reader

    reader = Reader(path)
    reader.open()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
        storage = _storage_of_dir(path)
    else:
        files = [path]
        storage = "mcap" if path.suffix == ".mcap" else "sqlite3"
    topics = [TopicSummary(c.topic, c.msgtype, c.msgcount, c.ext.serialization_format,
                           tuple(c.ext.offered_qos_profiles), None, c.msgdef.data,
                           _kind(c.msgdef.format)) for c in reader.connections]
    count = reader.message_count
    summary = BagSummary(path, storage, files, _size(files),
                         reader.start_time if count else 0,
                         (reader.end_time - 1) if count else 0, count, topics)

    # Read each storage file directly: rosbags' directory reader matches metadata.yaml
    # connections to storage connections by QoS equality, which fails on some genuine
    # rosbag2 bags (version 4, talker) and then yields nothing. MCAP files are read by our
    # own CRC-checking chunk reader.
    per_message_zstd = reader.compression_mode == "message"
    bad: BadChunks = []
    if storage == "mcap":
        sources = [_McapSource.open(f, bad) for f in files if f.suffix == ".mcap"]

        def one(src: Any, wanted: set[str] | None,
                start_ns: int | None) -> Iterator[tuple[int, str, bytes]]:
            for t, topic, data in src.messages(wanted, start_ns):
                yield t, topic, _zstd_decompress(data) if per_message_zstd else data
    else:
        sources = list(getattr(reader.storage, "storages", None) or [reader.storage])

        def one(src: Any, wanted: set[str] | None,
                start_ns: int | None) -> Iterator[tuple[int, str, bytes]]:
            conns = [c for c in src.connections if wanted is None or c.topic in wanted]
            if not conns:
                return
            for c, t, data in src.messages(conns, start_ns, None):
                if per_message_zstd:
                    data = _zstd_decompress(data)
                yield t, c.topic, bytes(data)

    def iterate(wanted: set[str] | None, start_ns: int | None) -> Iterator[tuple[str, int, bytes]]:
        for t, topic, data in heapq.merge(*[one(s, wanted, start_ns) for s in sources],
                                          key=lambda m: m[0]):
            yield topic, t, data

    return Bag(summary, iterate, reader.close, bad_chunks=bad)


@dataclass
class _McapSource:
    """One MCAP file read through its summary index (or a record scan without one)."""

    path: Path
    topics: dict[int, str]
    chunks: list[ChunkRef]
    loose: list[tuple[int, int, int]]
    bad: BadChunks

    @classmethod
    def open(cls, path: Path, bad: BadChunks) -> "_McapSource":
        try:
            index: McapIndex = read_index(path)
            return cls(path, index.topics, index.chunks, [], bad)
        except ValueError:  # rosbags read it, but not through a chunk index: scan it
            scan = scan_mcap(path)
            return cls(path, {c.id: c.topic for c in scan.channels.values()}, scan.chunks,
                       scan.loose, bad)

    def messages(self, wanted: set[str] | None,
                 start_ns: int | None) -> Iterator[tuple[int, str, bytes]]:
        cids = {cid for cid, topic in self.topics.items() if wanted is None or topic in wanted}
        if not cids:
            return
        for cid, t, data in iter_messages(self.path, self.chunks, self.loose, cids, start_ns,
                                          lambda ref, why: self.bad.append((self.path, ref, why))):
            yield t, self.topics[cid], data


def _zstd_decompress(data: bytes) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd  # type: ignore[import-not-found,no-redef]
    return zstd.decompress(data)


def _storage_of_dir(path: Path) -> str:
    import yaml

    try:
        meta = yaml.safe_load((path / "metadata.yaml").read_text(encoding="utf-8"))
        return str(meta["rosbag2_bagfile_information"]["storage_identifier"])
    except Exception:
        return "mcap" if any(path.glob("*.mcap")) else "sqlite3"


def _open_ros1(path: Path) -> Bag:
    from rosbags.highlevel import AnyReader

    reader = AnyReader([path])
    reader.open()
    topics = []
    for name, info in reader.topics.items():
        conns = info.connections
        latched = any(getattr(c.ext, "latching", 0) for c in conns)
        topics.append(TopicSummary(name, info.msgtype or "", info.msgcount, "ros1", (), latched,
                                   conns[0].msgdef.data if conns else "", "msg"))
    count = sum(t.count for t in topics)
    summary = BagSummary(path, "rosbag1", [path], _size([path]),
                         reader.start_time if count else 0,
                         (reader.end_time - 1) if count else 0, count, topics)

    def iterate(wanted: set[str] | None, start_ns: int | None) -> Iterator[tuple[str, int, bytes]]:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        for c, t, data in reader.messages(connections=conns, start=start_ns):
            yield c.topic, t, bytes(data)

    return Bag(summary, iterate, reader.close, ros1_typestore=reader.typestore)


def _nothing_recoverable(path: Path, scans: list[McapScan], tried: str) -> InputError:
    parts = []
    for scan in scans:
        size = scan.valid_end + scan.dropped_bytes
        parts.append(f"{scan.path.name}: header read, {len(scan.chunks)} complete chunk(s)"
                     + (f" ({len(scan.bad_chunks)} failed their CRC/size check)" if scan.bad_chunks
                        else "")
                     + f", 0 messages; readable data ends at byte {scan.valid_end} of {size}"
                     + (f" (an incomplete record of {scan.dropped_bytes} B follows)"
                        if scan.dropped_bytes else ""))
    return InputError(f"{path}: nothing recoverable: tried {tried}, then a record scan from the "
                      f"start ({'; '.join(parts)})")


def _open_scanned_mcap(path: Path, files: list[Path], scans: list[McapScan],
                       tried: str = "") -> Bag:
    """A bag over record scans of MCAP files whose summary/footer is missing or damaged.

    Args:
        tried: what failed before the scan (for the messages), e.g. the rosbags error.

    Raises:
        InputError: "nothing recoverable" when the scans found no message.
    """
    from rosbags.rosbag2.metadata import parse_qos

    topics: dict[str, TopicSummary] = {}
    ids: dict[tuple[int, int], str] = {}
    for i, scan in enumerate(scans):
        for ch in scan.channels.values():
            ids[(i, ch.id)] = ch.topic
            prev = topics.get(ch.topic)
            qos = ()
            if "offered_qos_profiles" in ch.metadata:
                try:
                    qos = tuple(parse_qos(ch.metadata["offered_qos_profiles"]))
                except Exception:
                    qos = ()
            fmt = {"ros2msg": "msg", "ros2idl": "idl"}.get(ch.schema_encoding, "none")
            topics[ch.topic] = TopicSummary(ch.topic, ch.msgtype,
                                            ch.count + (prev.count if prev else 0), ch.encoding,
                                            qos, None, ch.schema_data, fmt)
    with_msgs = [s for s in scans if s.message_count]
    count = sum(s.message_count for s in scans)
    if not count and not all(s.complete and not s.bad_chunks for s in scans):
        raise _nothing_recoverable(path, scans, tried or "the summary section (footer missing)")
    start = min((s.start_ns for s in with_msgs), default=0)
    end = max((s.end_ns for s in with_msgs), default=0)
    dropped = sum(s.dropped_bytes for s in scans)
    recovery = None
    if not all(s.complete for s in scans):
        recovery = (f"recovered {count} messages up to t={end * 1e-9:.3f} s "
                    f"({(end - start) * 1e-9:.3f} s after the first; unfinished MCAP without "
                    "summary/footer); "
                    f"{dropped} bytes of an incomplete chunk dropped")
    elif tried:
        recovery = (f"could not use {tried}; the data section is complete and was read by "
                    f"scanning its records: {count} messages")
    nbad = sum(len(s.bad_chunks) for s in scans)
    if nbad:
        recovery = (f"{recovery}; " if recovery else "") + (
            f"{nbad} corrupted chunk(s) not counted (see bag info --verify)")
    summary = BagSummary(path, "mcap", files, _size(files), start, end, count,
                         list(topics.values()), recovery)
    bad: BadChunks = []

    def iterate(wanted: set[str] | None, start_ns: int | None) -> Iterator[tuple[str, int, bytes]]:
        def one(i: int, scan: McapScan) -> Iterator[tuple[int, str, bytes]]:
            cids = {cid for (j, cid), topic in ids.items()
                    if j == i and (wanted is None or topic in wanted)}
            if not cids:
                return
            for cid, t, data in iter_messages(scan.path, scan.chunks, scan.loose, cids, start_ns,
                                              lambda ref, why: bad.append((scan.path, ref, why))):
                yield t, ids[(i, cid)], data

        for t, topic, data in heapq.merge(*[one(i, s) for i, s in enumerate(scans)],
                                          key=lambda m: m[0]):
            yield topic, t, data

    return Bag(summary, iterate, lambda: None, bad_chunks=bad)


def _rollback_sqlite(db: Path) -> str | None:
    """Apply SQLite's own crash recovery (hot journal rollback); returns a note."""
    journal = db.with_name(db.name + "-journal")
    had = journal.exists() and journal.stat().st_size > 0
    if not had:
        return None
    n = journal.stat().st_size
    try:
        con = sqlite3.connect(str(db))
        con.execute("SELECT count(*) FROM messages").fetchone()
        con.close()
    except sqlite3.Error as exc:
        raise _err(db, f"cannot roll back the unfinished transaction: {exc}") from None
    return f"uncommitted transaction rolled back ({n} bytes of journal)"


def _metadata_from_sqlite(files: list[Path]) -> tuple[dict, str | None]:
    topics: dict[str, dict] = {}
    counts: dict[str, int] = {}
    start, end, total = None, None, 0
    notes = []
    for db in files:
        note = _rollback_sqlite(db)
        if note:
            notes.append(note)
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            cols = [r[1] for r in con.execute("PRAGMA table_info(topics)")]
            sel = ["name", "type", "serialization_format"]
            sel += [c for c in ("offered_qos_profiles", "type_description_hash") if c in cols]
            for row in con.execute(f"SELECT id, {', '.join(sel)} FROM topics"):
                meta = dict(zip(sel, row[1:]))
                topics.setdefault(meta["name"], meta)
                n = con.execute("SELECT count(*) FROM messages WHERE topic_id=?", (row[0],)).fetchone()[0]
                counts[meta["name"]] = counts.get(meta["name"], 0) + int(n)
            lo, hi, n = con.execute("SELECT min(timestamp), max(timestamp), count(*) FROM messages").fetchone()
            con.close()
        except sqlite3.Error as exc:
            raise _err(db, f"not a readable rosbag2 sqlite3 database ({exc})") from None
        if n:
            start = lo if start is None else min(start, lo)
            end = hi if end is None else max(end, hi)
            total += int(n)
    info = {"storage": "sqlite3", "files": files, "start": start or 0, "end": end or 0,
            "count": total, "topics": [(m, counts[name]) for name, m in topics.items()]}
    note = "; ".join(notes) if notes else None
    return info, note


def write_metadata(bag_dir: Path, storage: str, files: Sequence[Path], start_ns: int, end_ns: int,
                   topics: Sequence[tuple[dict, int]]) -> Path:
    """Write a rosbag2 (version 9) ``metadata.yaml`` into ``bag_dir``.

    Args:
        topics: (topic_metadata dict with name/type/serialization_format[/offered_qos_profiles]
            [/type_description_hash], message count) pairs.
    """
    import yaml

    count = sum(n for _, n in topics)
    duration = max(0, end_ns - start_ns + (1 if count else 0))
    info = {
        "version": 9, "storage_identifier": storage,
        "relative_file_paths": [f.name for f in files],
        "duration": {"nanoseconds": duration},
        "starting_time": {"nanoseconds_since_epoch": start_ns},
        "message_count": count,
        "topics_with_message_count": [
            {"topic_metadata": {"name": m["name"], "type": m["type"],
                                "serialization_format": m.get("serialization_format", "cdr"),
                                "offered_qos_profiles": m.get("offered_qos_profiles") or [],
                                "type_description_hash": m.get("type_description_hash") or ""},
             "message_count": n} for m, n in topics],
        "compression_format": "", "compression_mode": "",
        "files": [{"path": f.name, "starting_time": {"nanoseconds_since_epoch": start_ns},
                   "duration": {"nanoseconds": duration}, "message_count": count} for f in files[:1]],
        "custom_data": None, "ros_distro": RESTORED_MARK,
    }
    out = bag_dir / "metadata.yaml"
    tmp = out.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False),
                   encoding="utf-8")
    tmp.replace(out)
    return out


def _writable(path: Path) -> bool:
    # os.access says yes to root even on a read-only (r-x) folder such as shared data.
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & stat.S_IWUSR)


def _restore_note(bag_dir: Path, write: Callable[[], Path]) -> str:
    if _writable(bag_dir):
        write()
        return "metadata.yaml was missing and has been restored"
    return "metadata.yaml is missing (directory not writable, not restored)"


def _open_dir_without_metadata(path: Path) -> Bag:
    mcaps = sorted(path.glob("*.mcap"))
    dbs = sorted(path.glob("*.db3"))
    if not mcaps and not dbs:
        raise InputError(f"{path}: not a bag (no metadata.yaml and no .mcap or .db3 file); "
                         "pass a rosbag2 directory, a .mcap/.db3 file or a ROS 1 .bag")
    # rosbag2 names its data files after the bag folder (<bag>.mcap, <bag>_0.db3); a folder
    # that merely contains bags is not one.
    own = [f for f in mcaps + dbs if f.stem == path.name or f.stem.startswith(path.name + "_")]
    if not own:
        inside = ", ".join(f.name for f in (mcaps + dbs)[:3])
        raise InputError(f"{path}: not a rosbag2 directory (no metadata.yaml, and its data files "
                         f"{inside} are not named after it); pass the bag file itself")
    if mcaps:
        scans = [scan_mcap(f) for f in mcaps]
        bag = _open_scanned_mcap(path, mcaps, scans,
                                 "" if all(s.complete for s in scans) else
                                 "metadata.yaml (missing) and the summary section (footer missing)")
        s = bag.summary

        def write() -> Path:
            from rosbags.rosbag2.metadata import dump_qos_v9

            metas = [({"name": t.name, "type": t.msgtype, "serialization_format": t.serialization_format,
                       "offered_qos_profiles": dump_qos_v9(list(t.qos))}, t.count) for t in s.topics]
            return write_metadata(path, "mcap", mcaps, s.start_ns, s.end_ns, metas)

        note = _restore_note(path, write)
        s.recovery = f"{s.recovery}; {note}" if s.recovery else note
        return bag
    info, note = _metadata_from_sqlite(dbs)
    restore = _restore_note(path, lambda: write_metadata(path, "sqlite3", dbs, info["start"],
                                                          info["end"], info["topics"]))
    bag = _open_rosbags2(path) if (path / "metadata.yaml").exists() else _open_sqlite_files(dbs)
    count = bag.summary.message_count
    end = bag.summary.end_ns
    bag.summary.recovery = "; ".join(
        x for x in (f"recovered {count} messages up to t={end * 1e-9:.3f} s from the committed "
                    "sqlite3 transactions", note, restore) if x)
    return bag


def _open_sqlite_files(dbs: list[Path]) -> Bag:
    if len(dbs) != 1:
        raise InputError(f"{dbs[0].parent}: split sqlite3 bag without metadata.yaml in a read-only "
                         "directory; copy it somewhere writable so metadata.yaml can be restored")
    return _open_rosbags2(dbs[0])


def open_bag(path: str | Path) -> Bag:
    """Open a bag for reading.

    Args:
        path: a rosbag2 directory, a ``.mcap`` / ``.db3`` file, or a ROS 1 ``.bag``.

    Returns:
        The open :class:`Bag`. For an unfinished recording (MCAP without footer, missing
        ``metadata.yaml``, uncommitted sqlite3 transaction) or an MCAP file whose tail
        is cut, ``summary.recovery`` says what was recovered; a missing ``metadata.yaml``
        is restored when writable.

    Raises:
        InputError: the path does not exist, is not a bag, or is damaged beyond use
            ("nothing recoverable: tried ..." when no message survived).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory; pass a bag directory or file")
    try:
        if path.is_file():
            if path.suffix == ".bag":
                return _open_ros1(path)
            if path.suffix == ".mcap":
                try:
                    return _open_rosbags2(path)
                except InputError:
                    raise
                except Exception as exc:
                    return _open_mcap_by_scan(path, [path], exc)
            if path.suffix == ".db3":
                note = _rollback_sqlite(path)
                bag = _open_rosbags2(path)
                bag.summary.recovery = note
                return bag
            raise InputError(f"{path}: unknown bag file type {path.suffix!r}; "
                             "expected a rosbag2 directory, .mcap, .db3 or ROS 1 .bag")
        if not path.is_dir():
            raise InputError(f"{path}: not a file or directory")
        if not (path / "metadata.yaml").exists():
            return _open_dir_without_metadata(path)
        _check_metadata(path)
        storage = _storage_of_dir(path)
        if storage == "sqlite3":
            for db in sorted(path.glob("*.db3")):
                _rollback_sqlite(db)
        try:
            bag = _open_rosbags2(path)
            if _restored(path):
                bag.summary.recovery = ("unfinished recording: metadata.yaml was rebuilt by katazuke "
                                        f"from the data files; {bag.summary.message_count} messages "
                                        f"up to t={bag.summary.end_ns * 1e-9:.3f} s")
            return bag
        except InputError:
            raise
        except Exception as exc:
            if storage != "mcap":
                raise
            mcaps = sorted(path.glob("*.mcap"))
            if not mcaps:
                raise _err(path, exc) from None
            return _open_mcap_by_scan(path, mcaps, exc)
    except InputError:
        raise
    except Exception as exc:
        raise _err(path, exc) from None


def _open_mcap_by_scan(path: Path, mcaps: list[Path], exc: BaseException) -> Bag:
    """Fallback when rosbags cannot open MCAP files: scan them if their tail is damaged.

    Raises:
        InputError: "nothing recoverable" (with what was tried), or rosbags' own error
            when the files' summaries are intact (the scan would not help).
    """
    damaged = []
    for f in mcaps:
        try:
            read_index(f)
        except ValueError as why:
            damaged.append(f"{f.name}: {why}")
    if not damaged:
        raise _err(path, exc) from None
    tried = f"the summary section ({'; '.join(damaged)})"
    try:
        scans = [scan_mcap(f) for f in mcaps]
    except InputError as err:
        if "nothing recoverable" in str(err):
            raise InputError(f"{err}; tried {tried} first") from None
        raise
    return _open_scanned_mcap(path, mcaps, scans, tried)


def _restored(path: Path) -> bool:
    import yaml

    try:
        meta = yaml.safe_load((path / "metadata.yaml").read_text(encoding="utf-8"))
        return meta["rosbag2_bagfile_information"].get("ros_distro") == RESTORED_MARK
    except Exception:
        return False


def _check_metadata(path: Path) -> None:
    import yaml

    meta_path = path / "metadata.yaml"
    try:
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{meta_path}: not valid YAML ({str(exc).splitlines()[0]}); delete it to "
                         "have it rebuilt from the data files") from None
    info = meta.get("rosbag2_bagfile_information") if isinstance(meta, dict) else None
    if not isinstance(info, dict) or "storage_identifier" not in info:
        raise InputError(f"{meta_path}: not rosbag2 metadata (no rosbag2_bagfile_information."
                         "storage_identifier); delete it to have it rebuilt from the data files")


def format_summary(s: BagSummary) -> str:
    """Multi-line text like ``ros2 bag info``."""
    from datetime import datetime, timezone

    def when(ns: int) -> str:
        sec, nsec = divmod(ns, 1_000_000_000)
        dt = datetime.fromtimestamp(sec, tz=timezone.utc)
        return f"{dt:%b %d %Y %H:%M:%S}.{nsec:09d} ({sec}.{nsec:09d})"

    def size(n: int) -> str:
        for unit in ("B", "KiB", "MiB", "GiB"):
            if n < 1024 or unit == "GiB":
                return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
            n /= 1024
        return str(n)

    lines = [f"Files:             {', '.join(f.name for f in s.files) or '-'}",
             f"Bag size:          {size(s.size_bytes)}",
             f"Storage id:        {s.storage}",
             f"Duration:          {s.duration_s:.9f}s"]
    if s.message_count:
        lines += [f"Start:             {when(s.start_ns)}", f"End:               {when(s.end_ns)}"]
    lines.append(f"Messages:          {s.message_count}")
    width = max((len(t.name) for t in s.topics), default=0)
    for i, t in enumerate(sorted(s.topics, key=lambda t: t.name)):
        head = "Topic information: " if i == 0 else " " * 19
        lines.append(f"{head}Topic: {t.name:<{width}} | Type: {t.msgtype} | Count: {t.count} | "
                     f"Serialization Format: {t.serialization_format}")
    if not s.topics:
        lines.append("Topic information: (none)")
    if s.recovery:
        lines.append(f"Recovered:         {s.recovery}")
    for note in s.notes:
        lines.append(f"Note:              {note}")
    return "\n".join(lines)
