"""``katazuke bench tidy``: end-to-end tidy-up episodes in the simulator, scored from ground truth.

Each episode (one seed) brings up ``launch/tidy_sim.launch.xml`` through ``katazuke launch``
(sim bridge, detector, object map, controller, navigator, manipulator, task manager: the whole
stack, headless), sends one ``Tidy`` goal (tidy everything) to the task manager and waits for
its result within a sim-time budget (``explore_budget_s`` + ``item_budget_s`` per object; the
goal is cancelled when the budget runs out). The evaluator alone reads the simulator's ground
truth (``sim/ground_truth/objects`` and ``containers``): an object counts as tidied when its
box centre ends inside its correct container (the rule of ``katazuke.sim.scene``: inside the
walls, between the floor and 5 cm above the rim). Measured per episode: objects tidied, sim
and wall seconds (their ratio is the stack's real-time factor), the task manager's per-item
states and causes, node crashes (the launcher's respawns) and unhandled exceptions in the logs.

Resumable: ``DIR/tidy.json`` keeps every finished episode under ``profile/objects/seed``; a
later run with the same settings skips them, so a long evaluation spans several sessions.
``success_rate`` is pooled over all objects of all episodes (a fraction in [0, 1]).

:func:`run` measures, :func:`markdown` renders, :data:`BARS` is the one table of bars both
read; :func:`object_in_container` and :func:`score_objects` are the scoring the tests pin.
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from katazuke.bench.harness import Bar, evaluate_bars, median
from katazuke.config import dataclass, field
from katazuke.errors import ConfigError, KatazukeError

__all__ = ["TidyBenchConfig", "BARS", "object_in_container", "score_objects", "EpisodeStore",
           "run_episode", "run", "run_demo", "summarise", "markdown", "grasp_stats"]

BARS = (
    Bar("objects in their correct container (pooled over all episodes)", "summary.success_rate",
        ">=", 0.90, note="ground truth, checked by the evaluator only"),
    Bar("simulated time per item, median over episodes", "summary.sim_s_per_item_median", "<=",
        30.0, unit="s"),
    Bar("whole stack real-time factor (sim s / wall s), worst episode", "summary.rtf_worst",
        ">=", 0.5),
    Bar("unhandled exceptions in the logs while the episodes ran", "summary.exceptions", "==", 0),
    Bar("test-profile rooms with 15-20 objects evaluated", "summary.test_rooms_15_20", ">=", 10),
    Bar("items handled across the episodes (soak)", "summary.items_handled", ">=", 300),
    Bar("node crashes (launcher respawns) while the episodes ran", "summary.crashes", "==", 0),
)

PROFILES = ("none", "train", "test")


@dataclass(frozen=True)
class TidyBenchConfig:
    """What one ``katazuke bench tidy`` run does."""

    seeds: tuple[int, ...] = field(default=(1, 2, 3), metadata={"help": "room seeds, one episode each"})
    profile: str = field(default="test", metadata={
        "help": "room randomization profile: none | train | test (held-out textures and kinds)"})
    objects: int = field(default=0, metadata={
        "help": "objects per room; 0 = the launch file's default range"})
    real_time_factor: float = field(default=1.0, metadata={
        "help": "sim seconds per wall second of the bridge; 0 = as fast as possible"})
    explore_budget_s: float = field(default=150.0, metadata={
        "help": "sim s allowed besides the items (the scans at the start and from the "
                "viewpoints: about 20 s each of the 4 in the sim room, start-up)",
        "check": "positive"})
    item_budget_s: float = field(default=90.0, metadata={
        "help": "sim s allowed per object before the goal is cancelled", "check": "positive"})
    startup_timeout_s: float = field(default=300.0, metadata={
        "help": "wall s until the task manager's tidy action is up", "check": "positive"})

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"TidyBenchConfig.profile must be one of {PROFILES}; got "
                              f"{self.profile!r}")
        if not self.seeds or any(s < 0 for s in self.seeds):
            raise ConfigError(f"TidyBenchConfig.seeds must be non-negative; got {self.seeds}")
        if self.objects < 0 or self.real_time_factor < 0:
            raise ConfigError("objects and real_time_factor must be >= 0")


# ------------------------------------------------------------------ scoring (ground truth)
def object_in_container(centre: np.ndarray, T_world_container: np.ndarray,
                        extent: np.ndarray, rim_margin_m: float = 0.05) -> bool:
    """Whether a box centre lies inside a container's walls.

    Args:
        centre: (3,) the object's box centre, world frame (m).
        T_world_container: (4, 4) the container's bottom-centre pose.
        extent: (3,) the container's outer size (m).
        rim_margin_m: how far above the rim still counts (an object sticking out of a full bin).
    """
    local = np.linalg.inv(np.asarray(T_world_container, float)) @ np.append(np.asarray(centre, float), 1.0)
    ex = np.asarray(extent, float)
    return bool(abs(local[0]) < ex[0] / 2 and abs(local[1]) < ex[1] / 2
                and 0.0 <= local[2] <= ex[2] + rim_margin_m)


def score_objects(objects: list[dict[str, Any]], containers: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """Per object: which container it ended in and whether that is its destination.

    Args:
        objects: ``{"id", "kind", "category", "destination", "centre" (3,)}`` per object.
        containers: ``{"id", "T" (4, 4), "extent" (3,)}`` per container.

    Returns:
        the objects with ``inside`` (container id or "") and ``success`` added.
    """
    out = []
    for o in objects:
        inside = next((c["id"] for c in containers
                       if object_in_container(np.asarray(o["centre"]), np.asarray(c["T"]),
                                              np.asarray(c["extent"]))), "")
        out.append({**{k: v for k, v in o.items() if k != "centre"},
                    "centre": [round(float(v), 4) for v in o["centre"]], "inside": inside,
                    "success": bool(o.get("destination")) and inside == o.get("destination")})
    return out


def _gt_lists(objects_msg: Any, containers_msg: Any) -> tuple[list[dict], list[dict]]:
    """Ground-truth ObjectMap messages -> the plain records :func:`score_objects` takes."""
    from katazuke.geometry import pose_to_matrix

    def T(inst: Any) -> np.ndarray:
        q = inst.orientation
        return pose_to_matrix([inst.position.x, inst.position.y, inst.position.z],
                              [q.x, q.y, q.z, q.w])

    objs = [{"id": int(o.id), "kind": o.kind, "category": o.category,
             "destination": o.destination,
             "centre": [o.position.x, o.position.y, o.position.z]} for o in objects_msg.objects]
    cons = [{"id": c.destination.split(":")[0], "T": T(c),
             "extent": [c.extent.x, c.extent.y, c.extent.z]} for c in containers_msg.objects]
    return objs, cons


# ------------------------------------------------------------------ resumable store
class EpisodeStore:
    """``DIR/tidy.json``: finished episodes by ``profile/objects/seed``, written after each."""

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / "tidy.json"
        self.episodes: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except json.JSONDecodeError as exc:
                raise KatazukeError(f"{self.path} is not valid JSON ({exc}); move it away to "
                                    "start a new evaluation") from None
            results = data.get("results", data)
            self.episodes = dict(results.get("episodes", {}))

    @staticmethod
    def key(profile: str, objects: int, seed: int) -> str:
        return f"{profile}/{objects or 'default'}/{seed}"

    def done(self, key: str) -> bool:
        return key in self.episodes and "error" not in self.episodes[key]

    def add(self, key: str, episode: dict[str, Any], cfg: TidyBenchConfig) -> dict[str, Any]:
        from katazuke.bench.harness import write_results

        self.episodes[key] = episode
        res = summarise(self.episodes, cfg)
        write_results("tidy", res, markdown(res), self.path.parent, packages=("pybullet",),
                      bars=BARS)
        return res


def summarise(episodes: dict[str, dict[str, Any]], cfg: TidyBenchConfig) -> dict[str, Any]:
    """Pooled figures over every finished episode (all settings the file holds)."""
    ok = [e for e in episodes.values() if "error" not in e]
    objs = [o for e in ok for o in e["objects"]]
    per_item = [e["sim_s"] / max(1, len(e["objects"])) for e in ok]
    rtf = [e["sim_s"] / e["wall_s"] for e in ok if e["wall_s"] > 0]
    causes: dict[str, int] = {}
    for e in ok:
        for it in e.get("items", []):
            if it.get("cause"):
                causes[it["cause"]] = causes.get(it["cause"], 0) + 1
    grasps: dict[str, Any] = {"by_category": {}, "before_segmentation": {}}
    for e in ok:
        if "grasps" in e:
            _add_grasp_stats(grasps, e["grasps"])
    by_cat: dict[str, list[int]] = {}
    for o in objs:
        by_cat.setdefault(o["category"], [0, 0])
        by_cat[o["category"]][0] += int(o["success"])
        by_cat[o["category"]][1] += 1
    return {
        "config": {"seeds": list(cfg.seeds), "profile": cfg.profile, "objects": cfg.objects,
                   "real_time_factor": cfg.real_time_factor},
        "episodes": episodes,
        "summary": {
            "episodes": len(ok), "failed_episodes": len(episodes) - len(ok),
            "test_rooms_15_20": sum(1 for k, e in episodes.items() if "error" not in e
                                    and k.split("/")[0] == "test"
                                    and 15 <= len(e["objects"]) <= 20),
            "objects": len(objs), "tidied": sum(o["success"] for o in objs),
            "success_rate": (sum(o["success"] for o in objs) / len(objs)) if objs else 0.0,
            "sim_s_per_item_median": median(per_item) if per_item else math.nan,
            "rtf_worst": min(rtf) if rtf else math.nan,
            "exceptions": sum(e.get("exceptions", 0) for e in ok),
            "exceptions_at_shutdown": sum(e.get("exceptions_at_shutdown", 0) for e in ok),
            "crashes": sum(e.get("respawns", 0) for e in ok),
            "items_handled": sum(len(e.get("items", [])) for e in ok),
            "failures_by_cause": dict(sorted(causes.items(), key=lambda kv: -kv[1])),
            "by_category": {c: {"tidied": v[0], "objects": v[1]} for c, v in sorted(by_cat.items())},
            "grasps_by_category": {c: {**v, "success_rate": v["held"] / v["attempts"]
                                       if v["attempts"] else math.nan}
                                   for c, v in sorted(grasps["by_category"].items())},
            "picks_failed_before_segmentation": grasps["before_segmentation"],
        },
    }


# ------------------------------------------------------------------ one episode
def _launch_args(cfg: TidyBenchConfig, seed: int, bag: Path | None = None) -> list[str]:
    from katazuke.rosenv import repo_root

    args = [str(repo_root() / "launch" / "tidy_sim.launch.xml"), f"seed:={seed}",
            f"profile:={cfg.profile}", f"real_time_factor:={cfg.real_time_factor:g}"]
    if cfg.objects:
        args.append(f"n_objects:=[{cfg.objects}, {cfg.objects}]")
    if bag is not None:
        args += ["record:=true", f"bag:={bag}"]
    return args


def _containers_of_config() -> list[tuple]:
    """(id, colour, centre_xy, size_xy) of the task manager's containers (launch/params/tidy.yaml)."""
    from katazuke.planning.tasks import load_tidy_config
    from katazuke.rosenv import repo_root

    cfg = load_tidy_config(repo_root() / "launch" / "params" / "tidy.yaml")
    return [(c.id, c.colour, tuple(c.position[:2]), tuple(c.size_xy)) for c in cfg.containers
            if c.position is not None]


_PICK_START = re.compile(r"\[manipulator\].*manipulate pick (\d+) \((\w+)\): detection")
_PICK_DONE = re.compile(r"\[manipulator\].*manipulate pick: done")
_PICK_FAIL = re.compile(r"\[manipulator\].*manipulate pick: (\w+):")


def grasp_stats(text: str) -> dict[str, Any]:
    """Pick outcomes from a launch log: per category the stack assigned (the manipulator's
    ``manipulate pick <id> (<category>)`` line, once the object was segmented), the picks
    tried with a planned grasp and those that ended holding the object; picks that failed
    before segmentation (``not_visible``) are counted by cause apart."""
    by_cat: dict[str, dict[str, Any]] = {}
    early: dict[str, int] = {}
    cur = None
    for line in text.splitlines():
        m = _PICK_START.search(line)
        if m:
            cur = m.group(2)
            continue
        if _PICK_DONE.search(line):
            if cur is not None:
                c = by_cat.setdefault(cur, {"attempts": 0, "held": 0, "failures": {}})
                c["attempts"] += 1
                c["held"] += 1
            cur = None
            continue
        m = _PICK_FAIL.search(line)
        if m:
            cause = m.group(1)
            if cur is None:
                early[cause] = early.get(cause, 0) + 1
            else:
                c = by_cat.setdefault(cur, {"attempts": 0, "held": 0, "failures": {}})
                c["attempts"] += 1
                c["failures"][cause] = c["failures"].get(cause, 0) + 1
            cur = None
    return {"by_category": by_cat, "before_segmentation": early}


def _scan_logs(log_dir: Path) -> dict[str, int]:
    """Unhandled exceptions (Python tracebacks) and respawns in the launcher's logs.

    Tracebacks after the launcher's "shutting down" line (nodes torn down while an action
    or a take was in flight) are counted apart, as ``exceptions_at_shutdown``: they are
    reported, but the bar is on the episode itself."""
    tracebacks = at_shutdown = respawns = 0
    grasps: dict[str, Any] = {"by_category": {}, "before_segmentation": {}}
    for p in log_dir.rglob("*"):
        if p.is_file():
            text = p.read_text(errors="replace")
            if p.name == "launch.log":
                _add_grasp_stats(grasps, grasp_stats(text))
            cut = text.find("[launch] shutting down")
            during, after = (text, "") if cut < 0 else (text[:cut], text[cut:])
            tracebacks += during.count("Traceback (most recent call last)")
            at_shutdown += after.count("Traceback (most recent call last)")
            respawns += len(re.findall(r"respawning \S+ in", text))
    return {"exceptions": tracebacks, "exceptions_at_shutdown": at_shutdown,
            "respawns": respawns, "grasps": grasps}


def _add_grasp_stats(total: dict[str, Any], part: dict[str, Any]) -> None:
    for cat, c in part["by_category"].items():
        t = total["by_category"].setdefault(cat, {"attempts": 0, "held": 0, "failures": {}})
        t["attempts"] += c["attempts"]
        t["held"] += c["held"]
        for k, n in c["failures"].items():
            t["failures"][k] = t["failures"].get(k, 0) + n
    for k, n in part["before_segmentation"].items():
        total["before_segmentation"][k] = total["before_segmentation"].get(k, 0) + n


def run_episode(cfg: TidyBenchConfig, seed: int, log_dir: Path,
                progress: Callable[[str], None] | None = None, video: Path | None = None,
                bag: Path | None = None, camera_hz: float = 10.0) -> dict[str, Any]:
    """One seeded episode of the whole stack; see the module docstring.

    Args:
        video: also write the demo video there (:class:`katazuke.bench.tidy_view.TidyView`).
        bag: also record the run into this (new) bag directory.
        camera_hz: the head camera's rate (the video's frame rate).
        progress: called with ``(text)`` when the items done, the step or the object change
            (and at least every 30 s wall) while the task runs.
    """
    from katazuke.ros.actions import ActionClient
    from rosgraph_msgs.msg import Clock

    from katazuke.ros.probe import Probe
    from katazuke.rosenv import ros_environment
    from katazuke.testing import finish_process, start_process
    from katazuke_interfaces.action import Tidy
    from katazuke_interfaces.msg import DetectionArray, ObjectMap
    from nav_msgs.msg import OccupancyGrid

    env = ros_environment()
    env["ROS_DOMAIN_ID"] = str(100 + (os.getpid() + seed) % 100)
    os.environ["ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
    log_dir.mkdir(parents=True, exist_ok=True)
    from katazuke.bench.harness import _git_state

    commit, dirty = _git_state()     # the code the stack starts from (edits later do not count)
    launcher = start_process([sys.executable, "-P", "-m", "katazuke.cli", "launch",
                              *_launch_args(cfg, seed, bag), "--log-dir", str(log_dir)], env=env)
    t_wall0 = time.monotonic()
    probe = view = None
    try:
        probe = Probe("bench_tidy", parameter_overrides={"use_sim_time": True})
        if video is not None:
            from katazuke.bench.tidy_view import TidyView

            view = TidyView(probe, video, _containers_of_config(), camera_hz)
        gt_objects = probe.collect("sim/ground_truth/objects", ObjectMap, "latched")
        gt_containers = probe.collect("sim/ground_truth/containers", ObjectMap, "latched")
        clock: list[float] = []
        probe.collect("/clock", Clock, "clock", keep=False,
                      callback=lambda m: clock.append(m.clock.sec + 1e-9 * m.clock.nanosec))
        # the stack is up once the task manager answers and perception and the cost map have
        # produced output (the detector loads its weights for seconds after its process starts)
        detections = probe.collect("detections", DetectionArray, "events", keep=False)
        costmap = probe.collect("costmap", OccupancyGrid, "latched", keep=False)
        client = ActionClient(probe.node, Tidy, "tidy")

        def up() -> dict[str, bool]:
            return {"tidy action": client.server_is_ready(), "detections": bool(detections),
                    "costmap": bool(costmap), "ground truth": bool(gt_objects and gt_containers),
                    "clock": bool(clock)}

        if not probe.wait_for(lambda: all(up().values()), cfg.startup_timeout_s):
            missing = ", ".join(k for k, v in up().items() if not v)
            raise KatazukeError(f"the tidy stack did not come up in {cfg.startup_timeout_s:.0f} s "
                                f"(nothing yet from: {missing}); logs in {log_dir}")
        n = len(gt_objects[-1][1].objects)
        budget = cfg.explore_budget_s + cfg.item_budget_s * n
        feedback: list[Any] = []
        t_sim0, t_wall_start = clock[-1], time.monotonic()
        goal = Tidy.Goal(mode=Tidy.Goal.MODE_TIDY_ALL, instruction="tidy up (katazuke bench tidy)")
        sent = client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback))
        probe.wait_for(lambda: sent.done(), 30)
        handle = sent.result()
        if handle is None or not handle.accepted:
            raise KatazukeError("the task manager refused the Tidy goal")
        result_future = handle.get_result_async()
        last: list[Any] = [0.0, None]

        def finished() -> bool:
            if progress and feedback:
                st = feedback[-1].status
                done = sum(it.state in (3, 4, 5) for it in st.items)
                key = (done, len(st.items), st.current_step, st.object_id)
                if key != last[1] or time.monotonic() - last[0] > 30.0:
                    last[0], last[1] = time.monotonic(), key
                    what = f" (object {st.object_id})" if st.object_id else ""
                    progress(f"seed {seed}: {done}/{len(st.items)} items done, "
                             f"{clock[-1] - t_sim0:.0f} sim s: {st.current_step}{what}")
            return result_future.done() or clock[-1] - t_sim0 > budget
        probe.wait_for(finished, 1e9)
        cancelled = not result_future.done()
        if cancelled:
            handle.cancel_goal_async()
            probe.wait_for(lambda: result_future.done(), 60)
        result = result_future.result().result if result_future.done() else None
        sim_s, wall_s = clock[-1] - t_sim0, time.monotonic() - t_wall_start
        # the ground truth published after the end
        t_end = clock[-1]
        probe.wait_for(lambda: gt_objects and _t(gt_objects[-1][1].header.stamp) >= t_end, 30)
        objs, cons = _gt_lists(gt_objects[-1][1], gt_containers[-1][1])
        scored = score_objects(objs, cons)
        items = ([{"object_id": int(i.object_id), "category": i.category, "state": int(i.state),
                   "attempts": int(i.attempts), "cause": i.cause} for i in result.items]
                 if result is not None else [])
        return {"seed": seed, "commit": commit, "dirty": dirty,
                "objects": scored, "tidied": sum(o["success"] for o in scored),
                "sim_s": round(sim_s, 2), "wall_s": round(wall_s, 2),
                "startup_wall_s": round(t_wall_start - t_wall0, 1), "budget_s": budget,
                "budget_exhausted": cancelled, "items": items,
                "result_message": result.message if result is not None else "",
                "logs": str(log_dir),
                "video_frames": view.video_frames if view is not None else None}
    finally:
        if probe is not None:
            probe.close()
        if view is not None:
            view.close()
        finish_process(launcher, signal.SIGINT, timeout=60.0)


def _t(stamp: Any) -> float:
    return stamp.sec + 1e-9 * stamp.nanosec


def run(cfg: TidyBenchConfig, out_dir: str | Path,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every seed of ``cfg`` not already in ``out_dir/tidy.json``; the file is rewritten after
    each episode (an interrupted run loses at most the episode in progress)."""
    store = EpisodeStore(out_dir)
    res = summarise(store.episodes, cfg)
    for seed in cfg.seeds:
        key = store.key(cfg.profile, cfg.objects, seed)
        if store.done(key):
            if progress:
                progress(f"seed {seed}: already in {store.path}, skipped")
            continue
        log_dir = Path(out_dir) / "tidy_logs" / key.replace("/", "_")
        try:
            ep = run_episode(cfg, seed, log_dir, progress)
            ep.update(_scan_logs(log_dir))
        except KatazukeError as exc:  # recorded, and the next seed still runs
            ep = {"seed": seed, "error": str(exc), **_scan_logs(log_dir)}
        res = store.add(key, ep, cfg)
    return res


def run_demo(out: Path, seed: int = 0, objects: int = 3, profile: str = "none",
             real_time_factor: float = 1.0) -> dict[str, Any]:
    """The README's main job: one tidy-up episode with its video, bag and summary.

    Writes ``out/tidy.mp4`` (:class:`~katazuke.bench.tidy_view.TidyView`), ``out/bag/``,
    ``out/logs/`` and ``out/summary.json`` (objects tidied, sim seconds per item, failures by
    cause, per object), printing progress (items done / total, current step) on stderr.

    Raises:
        KatazukeError: the stack did not come up, or ``out/bag`` exists and is not a bag.
    """
    import shutil

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bag = out / "bag"
    if bag.exists():
        if not ((bag / "metadata.yaml").exists() or any(bag.glob("*.mcap"))):
            raise KatazukeError(f"{bag} exists and is not a bag: remove it or choose another --out")
        shutil.rmtree(bag)  # the bag of an earlier demo run
    cfg = TidyBenchConfig(seeds=(seed,), profile=profile, objects=objects,
                          real_time_factor=real_time_factor)
    ep = run_episode(cfg, seed, out / "logs",
                     progress=lambda text: print(text, file=sys.stderr, flush=True),
                     video=out / "tidy.mp4", bag=bag)
    ep.update(_scan_logs(out / "logs"))
    n = len(ep["objects"])
    causes: dict[str, int] = {}
    for it in ep["items"]:
        if it.get("cause"):
            causes[it["cause"]] = causes.get(it["cause"], 0) + 1
    summary = {"seed": seed, "profile": profile, "objects": n, "tidied": ep["tidied"],
               "success_rate": ep["tidied"] / n if n else 0.0,
               "sim_s": ep["sim_s"], "wall_s": ep["wall_s"],
               "sim_s_per_item": ep["sim_s"] / n if n else math.nan,
               "real_time_factor": ep["sim_s"] / ep["wall_s"] if ep["wall_s"] else math.nan,
               "failures_by_cause": causes, "budget_exhausted": ep["budget_exhausted"],
               "node_respawns": ep["respawns"], "unhandled_exceptions": ep["exceptions"],
               "grasps": ep["grasps"], "per_object": ep["objects"], "items": ep["items"],
               "files": {"video": str(out / "tidy.mp4"), "bag": str(bag), "logs": str(out / "logs")}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def markdown(res: dict[str, Any]) -> str:
    """The report of :func:`run`'s results (bars table from :data:`BARS`)."""
    from katazuke.bench.harness import bars_markdown

    s = res["summary"]
    lines = ["# Tidy-up episodes (`katazuke bench tidy`)", "",
             f"{s['episodes']} episodes ({s['failed_episodes']} failed to run), {s['objects']} "
             f"objects, {s['tidied']} in their correct container ({100 * s['success_rate']:.1f} %); "
             f"{s['items_handled']} items handled; node respawns {s['crashes']}, unhandled "
             f"exceptions {s['exceptions']} (and {s.get('exceptions_at_shutdown', 0)} while the "
             f"stack shut down after the episodes). Scored from the simulator's ground truth by the "
             "evaluator only.", "",
             "## Bars", "", bars_markdown(evaluate_bars(res, BARS)), "",
             "## Episodes", "",
             "| episode | commit | objects | tidied | sim s | wall s | sim s / item | budget used up |",
             "|---|---|---|---|---|---|---|---|"]
    for key, e in sorted(res["episodes"].items()):
        if "error" in e:
            lines.append(f"| {key} | {e.get('commit', '?')} | failed: {e['error'][:120]} | | | | | |")
            continue
        n = len(e["objects"])
        lines.append(f"| {key} | {e.get('commit', '?')}{'+' if e.get('dirty') else ''} | {n} | "
                     f"{e['tidied']} | {e['sim_s']:.0f} | {e['wall_s']:.0f} | "
                     f"{e['sim_s'] / max(1, n):.1f} | {'yes' if e.get('budget_exhausted') else 'no'} |")
    lines += ["", "## Per category", "", "| category | tidied / objects |", "|---|---|"]
    lines += [f"| {c} | {v['tidied']} / {v['objects']} |" for c, v in s["by_category"].items()]
    g = s.get("grasps_by_category", {})
    if g:
        lines += ["", "## Geometric grasp planner, per category (the stack's category; picks "
                  "with a planned grasp, from the manipulator's log)", "",
                  "| category | picks | holding after the lift | success | failures |",
                  "|---|---|---|---|---|"]
        lines += [f"| {c} | {v['attempts']} | {v['held']} | {100 * v['success_rate']:.0f} % | "
                  + (", ".join(f"{k} {n}" for k, n in sorted(v["failures"].items())) or "none")
                  + " |" for c, v in g.items()]
        early = s.get("picks_failed_before_segmentation", {})
        lines += ["", "Picks that ended before segmentation: "
                  + (", ".join(f"{k} {n}" for k, n in sorted(early.items())) or "none")]
    lines += ["", "Failures by cause (task manager): "
              + (", ".join(f"{c} {n}" for c, n in s["failures_by_cause"].items()) or "none")]
    return "\n".join(lines) + "\n"
