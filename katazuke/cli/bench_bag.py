"""``katazuke bench bag``: playback timing error and recording loss.

1. Playback timing: a bag of 320x240 rgb8 images at 30 Hz + joint states at 100 Hz
   (``--play-seconds``, default 20 s) is written with exact stamps, then replayed with
   ``katazuke bag play`` (a separate process) at rate 1.0 while this process subscribes.
   The publish-time error (actual - scheduled) is measured by the player; median and
   p99 over all messages, median over ``--repeats`` runs, after one warm-up run. In the
   same run: the peer "sleep only" scheduler (``--spin-ms 0``) and the SCHED_FIFO mode
   (``--realtime``, when permitted).
2. Recording: ``katazuke bag record`` (a separate process) records the same streams
   published live for ``--record-seconds`` (default 60 s) by a reliable publisher
   (reliable KEEP_ALL); counts and sequence numbers in the bag are compared with what was sent.

Writes ``<out>/bag.json`` and ``<out>/bag.md``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from katazuke.errors import InputError

__all__ = ["add_arguments", "main"]

BAR_MS = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--play-seconds", type=float, default=20.0,
                        help="length of the playback bag (s)")
    parser.add_argument("--record-seconds", type=float, default=60.0,
                        help="length of the live recording check (s)")
    parser.add_argument("--repeats", type=int, default=3, help="playback runs per mode (median)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"),
                        help="folder for bag.json / bag.md")
    parser.add_argument("--quick", action="store_true",
                        help="5 s playback, 10 s recording, 1 repeat (smoke run)")


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "katazuke/bag", "katazuke/cli"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "loadavg_1_5_15": list(os.getloadavg()),
            "nice": os.nice(0)}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("rosbags", "numpy", "ros-jazzy-rclpy", "rclpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _katazuke() -> str:
    return str(Path(sys.executable).parent / "katazuke")


class _Sink:
    """Raw subscriptions on the load topics, spun on a background thread."""

    def __init__(self, topics: dict[str, Any]) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.node = rclpy.create_node("bench_bag_sink")
        self.count = {t: 0 for t in topics}
        for topic, cls in topics.items():
            self.node.create_subscription(cls, topic, self._cb(topic),
                                          QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
                                          raw=True)
        self.ex = SingleThreadedExecutor()
        self.ex.add_node(self.node)
        self._stop = False
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _cb(self, topic: str):
        def f(_: bytes) -> None:
            self.count[topic] += 1
        return f

    def _spin(self) -> None:
        while not self._stop:
            self.ex.spin_once(timeout_sec=0.05)

    def reset(self) -> None:
        self.count = {t: 0 for t in self.count}

    def close(self) -> None:
        self._stop = True
        self.thread.join()
        self.ex.shutdown()
        self.node.destroy_node()


def _play_once(bag: Path, extra: list[str], stats: Path) -> dict[str, Any]:
    cmd = [_katazuke(), "bag", "play", str(bag), "--wait-for-subscribers", "20",
           "--stats-json", str(stats), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise InputError(f"'{' '.join(cmd)}' failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(stats.read_text())


def _playback(tmp: Path, seconds: float, repeats: int) -> dict[str, Any]:
    from sensor_msgs.msg import Image, JointState
    from tqdm import tqdm

    from katazuke.bag.loadgen import IMAGE_TOPIC, JOINT_TOPIC, LoadSpec, write_load_bag

    bag = tmp / "play_load"
    spec = LoadSpec(duration_s=seconds)
    written = write_load_bag(bag, spec)
    warm = tmp / "warm"
    write_load_bag(warm, LoadSpec(duration_s=min(2.0, seconds)))
    modes = {"sleep only (peer)": ["--spin-ms", "0"], "sleep + spin (default)": [],
             "sleep + spin, --realtime": ["--realtime"]}
    sink = _Sink({IMAGE_TOPIC: Image, JOINT_TOPIC: JointState})
    results: dict[str, Any] = {}
    try:
        _play_once(warm, [], tmp / "warm.json")
        bar = tqdm(total=len(modes) * repeats, desc="playback runs", unit="run")
        for name, extra in modes.items():
            runs = []
            for r in range(repeats):
                sink.reset()
                try:
                    st = _play_once(bag, extra, tmp / f"play{r}.json")
                except InputError as exc:
                    if "--realtime" in extra:
                        results[name] = {"error": str(exc)}
                        break
                    raise
                deadline = time.monotonic() + 10
                while sum(sink.count.values()) < sum(written.values()) and time.monotonic() < deadline:
                    time.sleep(0.05)
                runs.append({"timing": st["timing"], "publish_call": st["publish_call"],
                             "published": sum(st["published"].values()),
                             "received": sum(sink.count.values())})
                bar.update(1)
            if runs:
                results[name] = {
                    "runs": runs,
                    "median_ms": float(np.median([x["timing"]["median_ms"] for x in runs])),
                    "p99_ms": float(np.median([x["timing"]["p99_ms"] for x in runs])),
                    "max_ms": float(np.max([x["timing"]["max_ms"] for x in runs])),
                    "publish_call_median_ms": float(np.median([x["publish_call"]["median_ms"] for x in runs])),
                    "all_received": all(x["received"] == x["published"] == sum(written.values())
                                        for x in runs),
                }
        bar.close()
    finally:
        sink.close()
    return {"bag_seconds": seconds, "messages": written, "modes": results}


def _recording(tmp: Path, seconds: float) -> dict[str, Any]:
    import rclpy
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image, JointState

    from katazuke.bag.loadgen import IMAGE_TOPIC, JOINT_TOPIC, LoadSpec, publish_load
    from katazuke.bag.reader import open_bag

    bag = tmp / "rec_load"
    rec = subprocess.Popen([_katazuke(), "bag", "record", "-o", str(bag), "--no-progress",
                            IMAGE_TOPIC, JOINT_TOPIC], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    node = rclpy.create_node("bench_bag_load")
    try:
        print(f"publishing {seconds:.0f} s of 30 Hz 320x240 images + 100 Hz joint states ...",
              file=sys.stderr)
        t0 = time.monotonic()
        sent = publish_load(node, LoadSpec(duration_s=seconds), wait_for_subscriber_s=60)
        pub_s = time.monotonic() - t0
        time.sleep(1.0)
    finally:
        if rec.poll() is None:
            os.killpg(rec.pid, signal.SIGINT)
        out = rec.communicate(timeout=120)[0]
        node.destroy_node()
    if rec.returncode != 0:
        raise InputError(f"recorder failed (exit {rec.returncode}): {out.strip()[-300:]}")
    with open_bag(bag) as b:
        recorded = {t.name: t.count for t in b.summary.topics}
        seq_img = [int(deserialize_message(d, Image).header.frame_id) for _, _, d in b.messages([IMAGE_TOPIC])]
        seq_js = [int(deserialize_message(d, JointState).position[0]) for _, _, d in b.messages([JOINT_TOPIC])]
        size = b.summary.size_bytes
    return {"seconds": seconds, "sent": sent, "recorded": recorded, "publish_wall_s": pub_s,
            "in_order_complete": seq_img == list(range(sent[IMAGE_TOPIC]))
            and seq_js == list(range(sent[JOINT_TOPIC])),
            "bag_bytes": size, "zero_loss": recorded == sent}


def main(args: argparse.Namespace) -> int:
    import rclpy

    if args.quick:
        args.play_seconds, args.record_seconds, args.repeats = 5.0, 10.0, 1
    if args.repeats < 1 or args.play_seconds <= 0 or args.record_seconds <= 0:
        raise InputError("--repeats, --play-seconds and --record-seconds must be positive")
    started = _dt.datetime.now(_dt.timezone.utc)
    machine = _machine()
    rclpy.init()
    try:
        with tempfile.TemporaryDirectory(prefix="bench_bag_") as d:
            tmp = Path(d)
            play = _playback(tmp, args.play_seconds, args.repeats)
            rec = _recording(tmp, args.record_seconds)
    finally:
        rclpy.try_shutdown()
    machine["loadavg_end_1_5_15"] = list(os.getloadavg())
    command = "katazuke bench bag" + (" --quick" if args.quick else "") + (
        "" if args.quick else f" --play-seconds {args.play_seconds:g} --record-seconds "
        f"{args.record_seconds:g} --repeats {args.repeats}")
    default = play["modes"].get("sleep + spin (default)", {})
    realtime = play["modes"].get("sleep + spin, --realtime", {})
    bars = {
        "playback median < 5 ms (default mode)": default.get("median_ms", 1e9) < BAR_MS,
        "playback p99 < 5 ms (default mode)": default.get("p99_ms", 1e9) < BAR_MS,
        "playback p99 < 5 ms (--realtime)": realtime.get("p99_ms", 1e9) < BAR_MS,
        f"recording {rec['seconds']:.0f} s loses nothing": bool(rec["zero_loss"] and rec["in_order_complete"]),
    }
    report = {"topic": "bag", "commit": _git_commit(), "date_utc": started.strftime("%Y-%m-%d %H:%M:%S"),
              "command": command, "machine": machine, "versions": _versions(),
              "results": {"playback": play, "recording": rec}, "bars": bars}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bag.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "bag.md").write_text(_markdown(report), encoding="utf-8")
    print(_markdown(report))
    return 0


def _markdown(r: dict[str, Any]) -> str:
    play, rec = r["results"]["playback"], r["results"]["recording"]
    m = r["machine"]
    n = sum(play["messages"].values())
    lines = ["## Bag playback timing and recording loss", "",
             f"Playback: {play['bag_seconds']:.0f} s bag, 320x240 rgb8 images at 30 Hz + joint "
             f"states at 100 Hz ({n} messages), rate 1.0, `katazuke bag play` in its own process "
             "with a subscriber attached. Error = publish time - scheduled time, measured by the "
             "player; median / p99 over all messages, median of the repeats.", "",
             "| scheduler | median error | p99 error | max error | publish call (median) | all received |",
             "|---|---|---|---|---|---|"]
    for name, res in play["modes"].items():
        if "error" in res:
            lines.append(f"| {name} | not run: {res['error']} | | | | |")
            continue
        lines.append(f"| {name} | {res['median_ms']:.3f} ms | {res['p99_ms']:.3f} ms | "
                     f"{res['max_ms']:.3f} ms | {res['publish_call_median_ms']:.3f} ms | "
                     f"{'yes' if res['all_received'] else 'NO'} |")
    d = play["modes"].get("sleep + spin (default)", {})
    rt = play["modes"].get("sleep + spin, --realtime", {})
    if "p99_ms" in d and "p99_ms" in rt:
        lines += ["", f"Default scheduler p99 {d['p99_ms']:.2f} ms vs {rt['p99_ms']:.2f} ms with "
                  "`--realtime` (SCHED_FIFO playback thread) at load average "
                  f"{m['loadavg_1_5_15'][0]:.1f} on {m['cores']} cores: the default player "
                  "competes with the other jobs for the CPU."]
    lines += ["",
              f"Recording: {rec['seconds']:.0f} s of the same streams published live "
              "(reliable, KEEP_ALL) and recorded by `katazuke bag record` (MCAP) in its own process.", "",
              "| topic | sent | recorded |", "|---|---|---|"]
    for t, s in rec["sent"].items():
        lines.append(f"| {t} | {s} | {rec['recorded'].get(t, 0)} |")
    lines += ["", f"Sequence numbers complete and in order: {'yes' if rec['in_order_complete'] else 'NO'}; "
              f"bag size {rec['bag_bytes'] / 2**20:.1f} MiB.", "",
              f"Command: `{r['command']}`", ""]
    for bar, ok in r["bars"].items():
        lines.append(f"- Bar: {bar}: **{'met' if ok else 'NOT met'}**")
    la0, la1 = m["loadavg_1_5_15"][0], m.get("loadavg_end_1_5_15", [float("nan")])[0]
    lines += ["", f"_Measured {r['date_utc']} UTC at commit `{r['commit']}` on {m['cpu']} "
              f"({m['cores']} cores, shared with other jobs; bench run at nice {m.get('nice', '?')}), "
              f"Python {m['python']}, rosbags "
              f"{r['versions'].get('rosbags', '?')}; load average {la0:.1f} at the start, "
              f"{la1:.1f} at the end._", ""]
    return "\n".join(lines)
