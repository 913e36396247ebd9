"""``katazuke bench replay``: deterministic replay of a simulated run's bag through perception.

The bag of the scripted tour (``katazuke sim tour``, :func:`katazuke.bench.tour.run_tour`;
the main job before the tidy-up loop replaced it),
recorded fresh from ``seed`` for ``duration_s`` unless ``bag`` names one) is replayed twice,
each time through a freshly started ``launch/perception.launch.xml deterministic:=true``
(detector + object map) with ``katazuke bag play --deterministic --clock --outputs``
(lock-step: each camera frame waits for its detections and object map, see
:mod:`katazuke.bag.ros`). Measured:

- frames: camera frames in the bag (``frame_topic``) vs detection messages and object maps
  the stack answered with (one each per frame expected);
- repeatability: replay 1 vs replay 2 message for message (every field of every
  DetectionArray and ObjectMap, in order; :data:`NONDETERMINISTIC_FIELDS` excepted: those
  are measurements of the machine, not outputs);
- speed: wall time of each replay vs the bag's duration.

:func:`replay_once` and :func:`compare_outputs` are also what the tests use.
"""
from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from katazuke.bench.harness import Bar, evaluate_bars
from katazuke.config import dataclass, field
from katazuke.errors import InputError

__all__ = ["ReplayBenchConfig", "BARS", "NONDETERMINISTIC_FIELDS", "replay_once",
           "compare_outputs", "message_fields", "run", "markdown"]

#: message type -> fields that measure the machine (excluded from the comparison)
NONDETERMINISTIC_FIELDS = {"katazuke_interfaces/msg/DetectionArray": ("inference_time_ms",)}

BARS = (
    Bar("detection messages == camera frames (replay 1)", "summary.detections_minus_frames_1",
        "==", 0, note="one DetectionArray per camera frame in the bag"),
    Bar("detection messages == camera frames (replay 2)", "summary.detections_minus_frames_2",
        "==", 0),
    Bar("object maps == camera frames (both replays)", "summary.object_maps_minus_frames", "==", 0),
    Bar("replay 1 == replay 2, message for message", "summary.differing_messages", "==", 0,
        note="DetectionArray and ObjectMap fields compared in order; inference_time_ms excluded"),
    Bar("no frame unacknowledged", "summary.ack_timeouts", "==", 0),
    Bar("main job's bag: rgb frames lost (vs the camera ticks the bridge published)",
        "bag.camera.lost.rgb", "==", 0, note="issue 12; every tick of the camera's stamp grid "
        "between the first and last tick all three topics hold"),
    Bar("main job's bag: depth frames lost", "bag.camera.lost.depth", "==", 0),
    Bar("main job's bag: camera_info lost", "bag.camera.lost.camera_info", "==", 0),
)


@dataclass(frozen=True)
class ReplayBenchConfig:
    """What one ``katazuke bench replay`` run does."""

    bag: str = field(default="", metadata={
        "help": "bag to replay; '' = record the main job's bag first (seed, duration_s)"})
    seed: int = field(default=0, metadata={"help": "room seed of the recorded tour"})
    duration_s: float = field(default=90.0, metadata={
        "help": "s (sim); length of the recorded tour (the main job's default)",
        "check": "positive"})
    frame_topic: str = field(default="/head_camera/image_raw", metadata={
        "help": "camera topic the perception stack processes"})
    ack_timeout_s: float = field(default=60.0, metadata={
        "help": "s (wall); longest wait for one frame's detections and object map",
        "check": "positive"})


def _katazuke() -> str:
    return str(Path(sys.executable).parent / "katazuke")


def message_fields(msg: Any, skip: tuple[str, ...] = ()) -> Any:
    """A ROS message as nested dicts/lists of plain values (``skip``: top-level fields left out)."""
    if hasattr(msg, "get_fields_and_field_types"):
        return {f: message_fields(getattr(msg, f)) for f in msg.get_fields_and_field_types()
                if f not in skip}
    if isinstance(msg, (list, tuple)):
        return [message_fields(m) for m in msg]
    if hasattr(msg, "tolist"):   # numpy / array.array fields
        return msg.tolist()
    return msg


def _messages(bag_dir: Path) -> dict[str, tuple[str, list[Any]]]:
    from rclpy.serialization import deserialize_message

    from katazuke.bag.reader import open_bag
    from katazuke.bag.ros import message_class

    out = {}
    with open_bag(bag_dir) as bag:
        for t in bag.summary.topics:
            cls = message_class(t.msgtype)
            if cls is None:
                raise InputError(f"{bag_dir}: message type {t.msgtype} of {t.name} is not "
                                 "installed here")
            skip = NONDETERMINISTIC_FIELDS.get(t.msgtype, ())
            out[t.name] = (t.msgtype, [message_fields(deserialize_message(d, cls), skip)
                                       for _, _, d in bag.messages([t.name])])
    return out


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            d = _first_difference(a[k], b.get(k), f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a)
                      and math.isnan(b))
    return None if same else f"{path}: {a!r} vs {b!r}"


def compare_outputs(a_dir: Path, b_dir: Path) -> dict[str, Any]:
    """Compare two ``--outputs`` bags message for message.

    Returns:
        Per topic: ``count_a``, ``count_b``, ``differing`` (messages that differ, plus the
        count mismatch), ``first_difference`` (field path and values, or None); and
        ``differing_messages`` in total.
    """
    a, b = _messages(Path(a_dir)), _messages(Path(b_dir))
    topics, total = {}, 0
    for name in sorted(set(a) | set(b)):
        ma, mb = a.get(name, ("", []))[1], b.get(name, ("", []))[1]
        diffs = [_first_difference(x, y, f"{name}[{i}]") for i, (x, y) in enumerate(zip(ma, mb))]
        bad = [d for d in diffs if d]
        n = len(bad) + abs(len(ma) - len(mb))
        total += n
        topics[name] = {"count_a": len(ma), "count_b": len(mb), "differing": n,
                        "first_difference": bad[0] if bad else (
                            f"{len(ma)} vs {len(mb)} messages" if len(ma) != len(mb) else None)}
    return {"topics": topics, "differing_messages": total}


def replay_once(bag: Path, out_dir: Path, ack_timeout_s: float = 60.0,
                frame_topic: str = "/head_camera/image_raw",
                launch_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """Start the perception launch in deterministic mode, replay ``bag`` lock-step into it,
    stop it.

    Args:
        bag: the bag to replay.
        out_dir: new folder; gets ``outputs/`` (the acknowledging messages, a bag),
            ``stats.json`` and the two processes' logs.
        ack_timeout_s: s (wall); per frame.
        frame_topic: the camera topic.
        launch_args: extra ``name:=value`` arguments of the perception launch.

    Returns:
        The player's stats (``frames``, ``acked``, ``ack_timeouts``, ``wall_s``, ...), plus
        ``outputs`` (the bag path) and ``exit_code`` of the player.

    Raises:
        InputError: the player failed (its output's tail in the message).
    """
    import json
    import signal

    from katazuke.rosenv import repo_root
    from katazuke.testing import finish_process, start_process

    out_dir.mkdir(parents=True, exist_ok=False)
    launch = start_process([_katazuke(), "launch",
                            str(repo_root() / "launch" / "perception.launch.xml"),
                            "deterministic:=true", *launch_args])
    try:
        play = start_process([_katazuke(), "bag", "play", str(bag), "--deterministic",
                              "--clock", "--frame-topic", frame_topic,
                              "--ack-timeout", str(ack_timeout_s),
                              "--outputs", str(out_dir / "outputs"),
                              "--stats-json", str(out_dir / "stats.json")])
        play_out = finish_process(play, sig=None, timeout=None)
    finally:
        launch_out = finish_process(launch, sig=signal.SIGINT, timeout=30)
        (out_dir / "launch.log").write_text(launch_out)
    (out_dir / "play.log").write_text(play_out)
    stats_path = out_dir / "stats.json"
    if not stats_path.exists():
        raise InputError(f"bag play failed (exit {play.returncode}): {play_out.strip()[-600:]}")
    stats = json.loads(stats_path.read_text())
    stats["outputs"] = str(out_dir / "outputs")
    stats["exit_code"] = play.returncode
    return stats


def _frames_in(bag: Path, topic: str) -> tuple[int, float]:
    from katazuke.bag.reader import open_bag

    with open_bag(bag) as b:
        s = b.summary
        names = {t.name: t.count for t in s.topics}
        if topic not in names:
            raise InputError(f"{bag} has no {topic}; it has {', '.join(names)}")
        return names[topic], (s.end_ns - s.start_ns) / 1e9


def run(cfg: ReplayBenchConfig) -> dict[str, Any]:
    """Record (unless ``cfg.bag``) and replay twice; see the module docstring.

    Returns:
        ``settings``, ``bag`` (path, frames, duration), ``replays`` (per replay: frames,
        detections, object maps, acknowledgement timeouts, wall time, wall / bag duration),
        ``comparison`` (:func:`compare_outputs`) and ``summary`` (what :data:`BARS` reads).
    """
    tmp = Path(tempfile.mkdtemp(prefix="bench_replay_"))
    try:
        recorded = None
        if cfg.bag:
            bag = Path(cfg.bag)
        else:
            from katazuke.bench.tour import TourOptions, run_tour

            print(f"recording the main job's bag (seed {cfg.seed}, {cfg.duration_s:g} s) ...",
                  file=sys.stderr)
            t0 = time.monotonic()
            run_tour(TourOptions(out=tmp / "tour", seed=cfg.seed, duration_s=cfg.duration_s))
            recorded = time.monotonic() - t0
            bag = tmp / "tour" / "bag"
        frames, duration = _frames_in(bag, cfg.frame_topic)
        from katazuke.bench.bag import bag_camera_loss

        camera = bag_camera_loss(bag)
        replays = []
        for i in (1, 2):
            print(f"replay {i}: {frames} frames ...", file=sys.stderr)
            st = replay_once(bag, tmp / f"replay{i}", cfg.ack_timeout_s, cfg.frame_topic)
            outs = {}
            from katazuke.bag.reader import open_bag

            with open_bag(st["outputs"]) as ob:
                outs = {t.name: t.count for t in ob.summary.topics}
            replays.append({"frames": st["frames"], "detections": outs.get("/detections", 0),
                            "object_maps": outs.get("/object_map", 0),
                            "ack_timeouts": sum(st["ack_timeouts"].values()),
                            "wall_s": st["wall_s"], "wall_over_bag": st["wall_s"] / duration,
                            "exit_code": st["exit_code"]})
        comparison = compare_outputs(tmp / "replay1" / "outputs", tmp / "replay2" / "outputs")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "settings": {"bag": cfg.bag or f"recorded: the main job's tour, seed {cfg.seed}, at most {cfg.duration_s:g} s",
                     "frame_topic": cfg.frame_topic, "ack_timeout_s": cfg.ack_timeout_s},
        "bag": {"frames": frames, "duration_s": duration, "record_wall_s": recorded,
                "camera": camera},
        "replays": replays, "comparison": comparison,
        "summary": {
            "detections_minus_frames_1": replays[0]["detections"] - frames,
            "detections_minus_frames_2": replays[1]["detections"] - frames,
            "object_maps_minus_frames": sum(abs(r["object_maps"] - frames) for r in replays),
            "differing_messages": comparison["differing_messages"],
            "ack_timeouts": sum(r["ack_timeouts"] for r in replays)},
    }


def _camera_lines(cam: dict[str, Any] | None) -> list[str]:
    if not cam:
        return []
    rows = [f"| {name} | {cam['ticks']} | {cam['recorded'][name]} | {cam['lost'][name]} |"
            for name in cam["recorded"]]
    return ["## The main job's bag: camera frames", "",
            f"Published = every tick of the head camera's stamp grid (period "
            f"{cam['period_ns'] / 1e6:.1f} ms of sim time) between the first and last tick all "
            f"three topics hold: {cam['ticks']} ticks; stamps off the grid: {cam['off_grid']}.", "",
            "| stream | published ticks | in the bag | lost |", "|---|---|---|---|", *rows, ""]


def markdown(res: dict[str, Any]) -> str:
    """The report of :func:`run`'s results (bars table from :data:`BARS`)."""
    from katazuke.bench.harness import bars_markdown

    b = res["bag"]
    lines = ["# Deterministic replay of the main job's bag", "",
             f"Bag: {res['settings']['bag']}; {b['frames']} frames on "
             f"`{res['settings']['frame_topic']}` over {b['duration_s']:.1f} s. Each replay: a "
             "fresh `launch/perception.launch.xml deterministic:=true` (detector + object map) "
             "and `katazuke bag play --deterministic --clock` (lock-step: each frame waits for "
             "its detections and object map).", "",
             "## Bars", "", bars_markdown(evaluate_bars(res, BARS)), "",
             *_camera_lines(b.get("camera")),
             "## Replays", "",
             "| replay | frames | detections | object maps | not acknowledged | wall time | wall / bag duration |",
             "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(res["replays"], 1):
        lines.append(f"| {i} | {r['frames']} | {r['detections']} | {r['object_maps']} | "
                     f"{r['ack_timeouts']} | {r['wall_s']:.1f} s | {r['wall_over_bag']:.2f} |")
    lines += ["", "## Replay 1 vs replay 2", "", "| topic | messages 1 | messages 2 | differing | first difference |",
              "|---|---|---|---|---|"]
    for name, t in res["comparison"]["topics"].items():
        lines.append(f"| {name} | {t['count_a']} | {t['count_b']} | {t['differing']} | "
                     f"{t['first_difference'] or '-'} |")
    lines += ["", "Compared: every field of every message, in order, except "
              "`DetectionArray.inference_time_ms` (a measurement of the machine)."]
    return "\n".join(lines) + "\n"
