"""``katazuke bench bag``: playback timing error and recording loss.

1. Playback timing: a bag of 320x240 rgb8 images at 30 Hz + joint states at 100 Hz
   (``play_seconds``) is written with exact stamps, then replayed with ``katazuke bag play``
   (a separate process) at rate 1.0 while this process subscribes. The publish-time error
   (actual - scheduled) is measured by the player; median and p99 over all messages, median
   over ``repeats`` runs, after one warm-up run. In the same run: the peer "sleep only"
   scheduler (``--spin-ms 0``) and the SCHED_FIFO mode (``--realtime``, when permitted).
2. Recording: ``katazuke bag record`` (a separate process) records the same streams
   published live for ``record_seconds`` by a reliable publisher (reliable KEEP_ALL); counts
   and sequence numbers in the bag are compared with what was sent.
3. Camera recording: the sim bridge (its own process, real camera streams: rgb 230 KB,
   depth 307 KB and camera_info per tick, best-effort sensor QoS) runs for ``record_seconds``
   while ``katazuke bag record`` records the three topics. The bridge stamps every tick with
   sim time on a fixed grid (``1 / camera_hz``), so what it published in the recording window
   is every grid stamp from the first to the last recorded tick; a stamp missing from a
   topic is a lost frame. (The window is the span all three topics were recorded, so the
   moments the recorder subscribes and stops do not count as loss.)

:func:`run` measures, :func:`markdown` renders, :data:`BARS` is read by both.
"""
from __future__ import annotations

import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from katazuke.bench.harness import Bar, evaluate_bars, median
from katazuke.config import dataclass, field
from katazuke.errors import InputError

__all__ = ["BagBenchConfig", "BARS", "MODES", "CAMERA_TOPICS", "camera_loss", "bag_camera_loss", "copy_bag", "run", "markdown"]

# scheduler name -> extra `katazuke bag play` options
MODES = {"sleep only (peer)": ["--spin-ms", "0"], "sleep + spin (default)": [],
         "sleep + spin, --realtime": ["--realtime"]}
DEFAULT_MODE, REALTIME_MODE = "sleep + spin (default)", "sleep + spin, --realtime"

BARS = (
    Bar("playback median error < 5 ms (default mode)", "summary.default_median_ms", "<", 5.0,
        unit="ms"),
    Bar("playback p99 error < 5 ms (default mode)", "summary.default_p99_ms", "<", 5.0, unit="ms"),
    Bar("playback p99 error < 5 ms (--realtime)", "summary.realtime_p99_ms", "<", 5.0, unit="ms"),
    Bar("live recording loses nothing", "summary.recording_lost", "==", 0,
        note="messages sent but missing from the bag"),
    Bar("live recording keeps the order", "summary.recording_out_of_order", "==", 0,
        note="messages out of sequence in the bag"),
    Bar("sim camera recording: rgb frames lost", "summary.camera_lost.rgb", "==", 0,
        note="real sim bridge streams; ticks the bridge published missing from the bag"),
    Bar("sim camera recording: depth frames lost", "summary.camera_lost.depth", "==", 0),
    Bar("sim camera recording: camera_info lost", "summary.camera_lost.camera_info", "==", 0),
    Bar("one flipped byte: `bag info --verify` exits 1 naming exactly the flipped chunk",
        "integrity.flipped.named_only_the_flipped_chunk", "==", True,
        note="on the sim camera recording above"),
    Bar("one flipped byte: messages lost outside the bad chunk (reading)",
        "integrity.flipped.lost_outside_bad_chunk", "==", 0),
    Bar("one flipped byte: `bag play` exits 0, warns, publishes every message outside the chunk",
        "integrity.flipped.play_ok", "==", True),
    Bar("last 1-100 bytes cut: messages lost (worst cut)", "integrity.truncated.worst_lost",
        "==", 0),
    Bar("cut early: `bag info` exits non-zero with 'nothing recoverable'",
        "integrity.early.refused_clearly", "==", True),
)

#: Bytes cut off the end of the camera bag in the truncation check.
TAIL_CUTS = (1, 10, 50, 100)

#: The head camera topics of the sim bridge, by short name.
CAMERA_TOPICS = {"rgb": "/head_camera/image_raw", "depth": "/head_camera/depth/image_raw",
                 "camera_info": "/head_camera/camera_info"}


@dataclass(frozen=True)
class BagBenchConfig:
    """What one ``katazuke bench bag`` run measures."""

    play_seconds: float = field(default=20.0, metadata={"help": "length of the playback bag (s)"})
    record_seconds: float = field(default=60.0, metadata={
        "help": "length of the live recording check (s)"})
    repeats: int = field(default=3, metadata={"help": "playback runs per mode (median)"})
    camera_hz: float = field(default=10.0, metadata={
        "help": "head camera rate of the sim bridge in the camera recording (Hz of sim time)"})

    def __post_init__(self) -> None:
        if (self.repeats < 1 or self.play_seconds <= 0 or self.record_seconds <= 0
                or self.camera_hz <= 0):
            raise InputError("--repeats, --play-seconds, --record-seconds and --camera-hz must "
                             "be positive")


QUICK = BagBenchConfig(play_seconds=5.0, record_seconds=10.0, repeats=1)


def _katazuke() -> str:
    return str(Path(sys.executable).parent / "katazuke")


def _play_once(bag: Path, extra: list[str], stats: Path, probe: Any) -> dict[str, Any]:
    from katazuke.testing import finish_process, start_process

    cmd = [_katazuke(), "bag", "play", str(bag), "--wait-for-subscribers", "20",
           "--stats-json", str(stats), *extra]
    proc = start_process(cmd)
    probe.wait_for(lambda: proc.poll() is not None, timeout=3600)
    out = finish_process(proc, sig=signal.SIGINT)
    if proc.returncode != 0:
        raise InputError(f"'{' '.join(cmd)}' failed: {out.strip().splitlines()[-1:]}")
    return json.loads(stats.read_text())


def _playback(tmp: Path, seconds: float, repeats: int) -> dict[str, Any]:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, JointState
    from tqdm import tqdm

    from katazuke.bag.loadgen import IMAGE_TOPIC, JOINT_TOPIC, LoadSpec, write_load_bag
    from katazuke.ros.probe import Probe

    bag = tmp / "play_load"
    written = write_load_bag(bag, LoadSpec(duration_s=seconds))
    warm = tmp / "warm"
    write_load_bag(warm, LoadSpec(duration_s=min(2.0, seconds)))
    results: dict[str, Any] = {}
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    with Probe("bench_bag_sink") as probe:
        got = [probe.collect(IMAGE_TOPIC, Image, qos, keep=False),
               probe.collect(JOINT_TOPIC, JointState, qos, keep=False)]
        probe.spin_in_background()
        received = lambda: sum(len(g) for g in got)  # noqa: E731
        _play_once(warm, [], tmp / "warm.json", probe)
        bar = tqdm(total=len(MODES) * repeats, desc="playback runs", unit="run")
        for name, extra in MODES.items():
            runs = []
            for r in range(repeats):
                for g in got:
                    g.clear()
                try:
                    st = _play_once(bag, extra, tmp / f"play{r}.json", probe)
                except InputError as exc:
                    if "--realtime" in extra:
                        results[name] = {"error": str(exc)}
                        break
                    raise
                probe.wait_for(lambda: received() >= sum(written.values()), timeout=10)
                runs.append({"timing": st["timing"], "publish_call": st["publish_call"],
                             "published": sum(st["published"].values()), "received": received()})
                bar.update(1)
            if runs:
                results[name] = {
                    "runs": runs,
                    "median_ms": median([x["timing"]["median_ms"] for x in runs]),
                    "p99_ms": median([x["timing"]["p99_ms"] for x in runs]),
                    "max_ms": max(x["timing"]["max_ms"] for x in runs),
                    "publish_call_median_ms": median([x["publish_call"]["median_ms"] for x in runs]),
                    "all_received": all(x["received"] == x["published"] == sum(written.values())
                                        for x in runs),
                }
        bar.close()
    return {"bag_seconds": seconds, "messages": written, "modes": results}


def _recording(tmp: Path, seconds: float) -> dict[str, Any]:
    import time

    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image, JointState

    from katazuke.bag.loadgen import IMAGE_TOPIC, JOINT_TOPIC, LoadSpec, publish_load
    from katazuke.bag.reader import open_bag
    from katazuke.ros.probe import Probe
    from katazuke.testing import finish_process, start_process

    bag = tmp / "rec_load"
    rec = start_process([_katazuke(), "bag", "record", "-o", str(bag), "--no-progress",
                         IMAGE_TOPIC, JOINT_TOPIC])
    try:
        with Probe("bench_bag_load") as probe:
            print(f"publishing {seconds:.0f} s of 30 Hz 320x240 images + 100 Hz joint states ...",
                  file=sys.stderr)
            t0 = time.monotonic()
            sent = publish_load(probe.node, LoadSpec(duration_s=seconds), wait_for_subscriber_s=60)
            pub_s = time.monotonic() - t0
            probe.spin_for(1.0)  # let the recorder drain before it is stopped
    finally:
        out = finish_process(rec, sig=signal.SIGINT, timeout=120)
    if rec.returncode != 0:
        raise InputError(f"recorder failed (exit {rec.returncode}): {out.strip()[-300:]}")
    with open_bag(bag) as b:
        recorded = {t.name: t.count for t in b.summary.topics}
        seq = {IMAGE_TOPIC: [int(deserialize_message(d, Image).header.frame_id)
                             for _, _, d in b.messages([IMAGE_TOPIC])],
               JOINT_TOPIC: [int(deserialize_message(d, JointState).position[0])
                             for _, _, d in b.messages([JOINT_TOPIC])]}
        size = b.summary.size_bytes
    lost = sum(len(set(range(sent[t])) - set(s)) for t, s in seq.items())
    out_of_order = sum(sum(a > b for a, b in zip(s, s[1:])) for s in seq.values())
    return {"seconds": seconds, "sent": sent, "recorded": recorded, "publish_wall_s": pub_s,
            "lost": lost, "out_of_order": out_of_order,
            "in_order_complete": all(s == list(range(sent[t])) for t, s in seq.items()),
            "bag_bytes": size, "zero_loss": recorded == sent}


def _header_stamp_ns(data: bytes) -> int:
    """``header.stamp`` of a serialized message whose first field is a std_msgs/Header
    (CDR: 4-byte encapsulation, then int32 sec, uint32 nanosec)."""
    import struct

    if data[1] not in (0, 1):
        raise InputError(f"unknown CDR encapsulation {data[:2].hex()} in the camera bag")
    sec, nsec = struct.unpack_from("<iI" if data[1] == 1 else ">iI", data, 4)
    return sec * 1_000_000_000 + nsec


def camera_loss(stamps: dict[str, list[int]]) -> dict[str, Any]:
    """Frames missing per topic on the camera's stamp grid.

    Args:
        stamps: short topic name -> header stamps (ns) found in the bag.

    Returns:
        ``period_ns`` (median spacing of all ticks), ``window_ns`` ([start, end]: the span all
        topics were recorded), ``ticks`` (grid stamps in the window), ``recorded`` and
        ``lost`` per topic, ``off_grid`` (stamps not on the grid, all topics).
    """
    import numpy as np

    if any(len(v) < 2 for v in stamps.values()):
        raise InputError(f"camera bag too short: {({k: len(v) for k, v in stamps.items()})}")
    ticks = np.unique(np.concatenate([np.asarray(v, dtype=np.int64) for v in stamps.values()]))
    period = int(np.median(np.diff(ticks)))
    start = max(min(v) for v in stamps.values())
    end = min(max(v) for v in stamps.values())
    n = int(round((end - start) / period)) + 1
    grid = {start + i * period for i in range(n)}
    tol = period // 100  # stamps are sim time on the step grid; allow rounding only
    recorded, lost, off = {}, {}, 0
    for name, v in stamps.items():
        inside = sorted({t for t in v if start <= t <= end})
        snapped = [(t, start + round((t - start) / period) * period) for t in inside]
        on = {g for t, g in snapped if abs(t - g) <= tol}
        off += len(snapped) - sum(abs(t - g) <= tol for t, g in snapped)
        recorded[name], lost[name] = len(inside), len(grid - on)
    return {"period_ns": period, "window_ns": [int(start), int(end)], "ticks": n,
            "recorded": recorded, "lost": lost, "off_grid": off}


def _camera_recording(tmp: Path, seconds: float, camera_hz: float) -> dict[str, Any]:
    from sensor_msgs.msg import CameraInfo

    from katazuke.bag.reader import open_bag
    from katazuke.ros.probe import Probe
    from katazuke.testing import finish_process, start_node, start_process, stop_node

    bag = tmp / "rec_camera"
    bridge = start_node("sim_bridge", "-p", f"camera_hz:={camera_hz}",
                        "-p", "publish_ground_truth:=false")
    rec = None
    try:
        rec = start_process([_katazuke(), "bag", "record", "-o", str(bag), "--no-progress",
                             *CAMERA_TOPICS.values()])
        with Probe("bench_bag_camera") as probe:
            info = probe.collect(CAMERA_TOPICS["camera_info"], CameraInfo, "sensor", keep=False)
            if not probe.wait_for(lambda: len(info) >= 3, timeout=120):
                raise InputError(f"the sim bridge published no camera_info in 120 s: "
                                 f"{stop_node(bridge).strip()[-300:]}")
            print(f"recording {seconds:.0f} s of the sim bridge's camera streams ...",
                  file=sys.stderr)
            probe.spin_for(seconds)
    finally:
        out = finish_process(rec, sig=signal.SIGINT, timeout=120) if rec is not None else ""
        stop_node(bridge)
    if rec.returncode != 0:
        raise InputError(f"recorder failed (exit {rec.returncode}): {out.strip()[-300:]}")
    res = bag_camera_loss(bag)
    res.update(seconds=seconds, camera_hz=camera_hz)
    return res


def bag_camera_loss(bag: Path) -> dict[str, Any]:
    """:func:`camera_loss` of the head camera topics (:data:`CAMERA_TOPICS`) of a recorded
    bag, plus ``bag_bytes`` and ``in_bag`` (messages per topic)."""
    from katazuke.bag.reader import open_bag

    with open_bag(bag) as b:
        stamps = {name: [_header_stamp_ns(d) for _, _, d in b.messages([topic])]
                  for name, topic in CAMERA_TOPICS.items()}
        size = b.summary.size_bytes
    res = camera_loss(stamps)
    res.update(bag_bytes=size, in_bag={k: len(v) for k, v in stamps.items()})
    return res


def copy_bag(src: Path, dst: Path, data: bytes) -> Path:
    """A copy of bag directory ``src`` named ``dst`` whose MCAP file holds ``data``."""
    import shutil

    shutil.copytree(src, dst)
    (dst / f"{src.name}.mcap").unlink()
    (dst / f"{dst.name}.mcap").write_bytes(data)
    meta = dst / "metadata.yaml"
    meta.write_text(meta.read_text().replace(f"{src.name}.mcap", f"{dst.name}.mcap"))
    return dst


def _bag_cli(*args: str) -> tuple[int, str]:
    import subprocess

    from katazuke.rosenv import ros_environment

    p = subprocess.run([_katazuke(), "bag", *args], env=ros_environment(), capture_output=True,
                       text=True, timeout=600)
    return p.returncode, p.stdout + p.stderr


def _integrity(bag: Path) -> dict[str, Any]:
    """Corrupt and cut copies of ``bag`` (a recorded MCAP bag directory): what ``bag info
    --verify``, reading and ``bag play`` make of them."""
    import logging
    import re
    from collections import Counter

    from katazuke.bag.integrity import read_index
    from katazuke.bag.reader import open_bag

    mcap = bag / f"{bag.name}.mcap"
    raw = mcap.read_bytes()
    index = read_index(mcap)
    with open_bag(bag) as b:
        clean = Counter((topic, t) for topic, t, _ in b.messages())
    rc_clean, _ = _bag_cli("info", "--verify", str(bag))
    res: dict[str, Any] = {"bag_bytes": len(raw), "chunks": len(index.chunks),
                           "messages": sum(clean.values()), "clean_verify_rc": rc_clean}
    # -- one flipped byte in the middle of the middle chunk
    ref = index.chunks[len(index.chunks) // 2]
    at = ref.offset + ref.length // 2
    flipped = bytearray(raw)
    flipped[at] ^= 0xFF
    fbag = copy_bag(bag, bag.parent / "flipped", bytes(flipped))
    rc, out = _bag_cli("info", "--verify", str(fbag))
    named = [int(m.group(1)) for m in re.finditer(r"^bad chunk (\d+) \[", out, re.M)]
    logging.getLogger("katazuke.bag").setLevel(logging.ERROR)  # the skip warning is expected
    with open_bag(fbag) as b:
        got = Counter((topic, t) for topic, t, _ in b.messages())
        bad = list(b.bad_chunks)
    lost = clean - got
    outside = sum(n for (_, t), n in lost.items() if not ref.start_ns <= t <= ref.end_ns)
    info_topic = CAMERA_TOPICS["camera_info"]
    stats = bag.parent / "flipped_play.json"
    prc, pout = _bag_cli("play", str(fbag), "--topics", info_topic, "--rate", "20",
                         "--stats-json", str(stats))
    played = json.loads(stats.read_text())["published"].get(info_topic) if stats.exists() else None
    expected = sum(n for (topic, _), n in got.items() if topic == info_topic)
    warned = bool(re.search(r"chunk", pout, re.I)) and bool(re.search(r"skip|bad|crc", pout, re.I))
    res["flipped"] = {
        "byte_offset": at, "chunk": ref.index, "chunk_time_ns": [ref.start_ns, ref.end_ns],
        "verify_rc": rc, "verify_named": named,
        "named_only_the_flipped_chunk": rc == 1 and named == [ref.index],
        "read_bad_chunks": len(bad), "messages_read": sum(got.values()),
        "lost_in_bad_chunk": sum(lost.values()) - outside, "lost_outside_bad_chunk": outside,
        "play_rc": prc, "play_warned": warned, "play_published": played,
        "play_expected": expected,
        "play_ok": prc == 0 and warned and played == expected}
    # -- the last bytes cut
    cuts = {}
    for n in TAIL_CUTS:
        cbag = copy_bag(bag, bag.parent / f"cut_{n}", raw[:-n])
        with open_bag(cbag) as b:
            read = Counter((topic, t) for topic, t, _ in b.messages())
        rc, out = _bag_cli("info", str(cbag))
        cuts[str(n)] = {"lost": sum((clean - read).values()), "info_rc": rc,
                        "info_messages": int(m.group(1)) if (m := re.search(
                            r"Messages:\s+(\d+)", out)) else None}
    res["truncated"] = {"cuts": cuts, "worst_lost": max(c["lost"] for c in cuts.values())}
    # -- cut early: the header and the start of the first chunk only
    ebag = copy_bag(bag, bag.parent / "cut_early", raw[:index.chunks[0].offset + 100])
    rc, out = _bag_cli("info", str(ebag))
    res["early"] = {"bytes_kept": index.chunks[0].offset + 100, "info_rc": rc,
                    # the temporary folder is machine-local: name the bag as <tmp>/...
                    "message": (out.strip().splitlines()[-1].replace(str(bag.parent), "<tmp>")
                                if out.strip() else ""),
                    "refused_clearly": rc != 0 and "nothing recoverable" in out}
    return res


def run(cfg: BagBenchConfig) -> dict[str, Any]:
    """Measure playback timing and recording loss (about 3 x 3 x ``play_seconds`` +
    ``record_seconds``, plus process start-up).

    Returns:
        ``settings``, ``playback`` (per scheduler mode: runs, median / p99 / max error in ms,
        all received), ``recording`` (sent, recorded, lost, out of order, bag size) and
        ``summary`` (the figures :data:`BARS` reads).
    """
    with tempfile.TemporaryDirectory(prefix="bench_bag_") as d:
        tmp = Path(d)
        play = _playback(tmp, cfg.play_seconds, cfg.repeats)
        rec = _recording(tmp, cfg.record_seconds)
        cam = _camera_recording(tmp, cfg.record_seconds, cfg.camera_hz)
        integrity = _integrity(tmp / "rec_camera")
    default = play["modes"].get(DEFAULT_MODE, {})
    realtime = play["modes"].get(REALTIME_MODE, {})
    return {
        "settings": {"play_seconds": cfg.play_seconds, "record_seconds": cfg.record_seconds,
                     "repeats": cfg.repeats, "quick": cfg == QUICK},
        "playback": play, "recording": rec, "camera_recording": cam, "integrity": integrity,
        "summary": {"default_median_ms": default.get("median_ms"),
                    "default_p99_ms": default.get("p99_ms"),
                    "realtime_p99_ms": realtime.get("p99_ms"),
                    "recording_lost": rec["lost"], "recording_out_of_order": rec["out_of_order"],
                    "camera_lost": cam["lost"]},
    }


def markdown(res: dict[str, Any]) -> str:
    """The report of :func:`run`'s results (bars table from :data:`BARS`)."""
    from katazuke.bench.harness import bars_markdown

    play, rec = res["playback"], res["recording"]
    n = sum(play["messages"].values())
    lines = ["# Bag playback timing and recording loss", "",
             f"Playback: {play['bag_seconds']:.0f} s bag, 320x240 rgb8 images at 30 Hz + joint "
             f"states at 100 Hz ({n} messages), rate 1.0, `katazuke bag play` in its own process "
             "with a subscriber attached. Error = publish time - scheduled time, measured by the "
             f"player; median / p99 over all messages, median of {res['settings']['repeats']} "
             "repeats after a warm-up run.", "",
             "## Bars", "", bars_markdown(evaluate_bars(res, BARS)), "",
             "## Playback", "",
             "| scheduler | median error | p99 error | max error | publish call (median) | all received |",
             "|---|---|---|---|---|---|"]
    for name, m in play["modes"].items():
        if "error" in m:
            lines.append(f"| {name} | not run: {m['error']} | | | | |")
            continue
        lines.append(f"| {name} | {m['median_ms']:.3f} ms | {m['p99_ms']:.3f} ms | "
                     f"{m['max_ms']:.3f} ms | {m['publish_call_median_ms']:.3f} ms | "
                     f"{'yes' if m['all_received'] else 'NO'} |")
    d, rt = play["modes"].get(DEFAULT_MODE, {}), play["modes"].get(REALTIME_MODE, {})
    if "p99_ms" in d and "p99_ms" in rt:
        lines += ["", f"Default scheduler p99 {d['p99_ms']:.2f} ms vs {rt['p99_ms']:.2f} ms with "
                  "`--realtime` (SCHED_FIFO playback thread); the default player competes with "
                  "the other jobs for the CPU (load average in the footer)."]
    lines += ["", "## Recording", "",
              f"{rec['seconds']:.0f} s of the same streams published live (reliable, KEEP_ALL) "
              "and recorded by `katazuke bag record` (MCAP) in its own process.", "",
              "| topic | sent | recorded |", "|---|---|---|"]
    for t, s in rec["sent"].items():
        lines.append(f"| {t} | {s} | {rec['recorded'].get(t, 0)} |")
    lines += ["", f"Sequence numbers complete and in order: {'yes' if rec['in_order_complete'] else 'NO'} "
              f"({rec['lost']} missing, {rec['out_of_order']} out of order); bag size "
              f"{rec['bag_bytes'] / 2**20:.1f} MiB."]
    cam = res["camera_recording"]
    lines += ["", "## Camera recording (sim bridge)", "",
              f"The sim bridge's head camera at {cam['camera_hz']:g} Hz, recorded for "
              f"{cam['seconds']:.0f} s after its first tick reached a probe "
              "(sim time; rgb, depth and camera_info, best-effort sensor QoS) "
              "recorded by `katazuke bag record`. Published = every tick of the camera's stamp "
              f"grid between the first and last tick all three topics hold: {cam['ticks']} ticks "
              f"({cam['ticks'] * cam['period_ns'] / 1e9:.1f} s of sim time, period "
              f"{cam['period_ns'] / 1e6:.1f} ms).", "",
              "| topic | published ticks | recorded | lost |", "|---|---|---|---|"]
    for name, topic in CAMERA_TOPICS.items():
        lines.append(f"| {topic} | {cam['ticks']} | {cam['recorded'][name]} | {cam['lost'][name]} |")
    lines += ["", f"Stamps off the grid: {cam['off_grid']}; bag size {cam['bag_bytes'] / 2**20:.1f} MiB."]
    if "integrity" in res:
        lines += ["", *_integrity_markdown(res["integrity"])]
    return "\n".join(lines) + "\n"


def _integrity_markdown(g: dict[str, Any]) -> list[str]:
    f, e = g["flipped"], g["early"]
    t0, t1 = (t / 1e9 for t in f["chunk_time_ns"])
    rows = [f"| last {n} B cut | {c['lost']} | {c['info_rc']} | {c['info_messages']} |"
            for n, c in g["truncated"]["cuts"].items()]
    return ["## Integrity (corrupted and cut copies of the camera recording)", "",
            f"The camera bag above ({g['bag_bytes'] / 2**20:.1f} MiB, {g['chunks']} chunks, "
            f"{g['messages']} messages; clean `info --verify` exit {g['clean_verify_rc']}).", "",
            f"- **One flipped byte** at offset {f['byte_offset']} (middle of chunk {f['chunk']}, "
            f"[{t0:.3f}, {t1:.3f}] s): `bag info --verify` exit {f['verify_rc']}, bad chunks named "
            f"{f['verify_named']}; reading skipped {f['read_bad_chunks']} chunk(s) and returned "
            f"{f['messages_read']} messages ({f['lost_in_bad_chunk']} lost inside the bad chunk, "
            f"{f['lost_outside_bad_chunk']} outside it); `bag play --topics "
            f"{CAMERA_TOPICS['camera_info']} --rate 20` exit {f['play_rc']}, warned: "
            f"{'yes' if f['play_warned'] else 'NO'}, published {f['play_published']} of the "
            f"{f['play_expected']} outside the chunk.",
            f"- **Cut early** (kept {e['bytes_kept']} B: header and the start of the first chunk): "
            f"`bag info` exit {e['info_rc']}: \"{e['message']}\"", "",
            "| tail cut | messages lost | `bag info` exit | `Messages:` printed |", "|---|---|---|---|",
            *rows]
