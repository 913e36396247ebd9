"""The scripted tour of the simulated room, end to end (``katazuke sim tour``, ``katazuke demo``).

Brings up ``launch/sim.launch.xml`` with ``tour:=true`` through ``katazuke launch``
(simulator bridge + tour node, plus the ``bag_recorder`` node unless ``--no-bag``),
watches the robot from this process over ROS 2 and writes into ``--out``:

- ``bag/``            rosbag2 (MCAP) of /clock, /tf, /tf_static, head camera (rgb, depth,
                      camera_info), odom, joint_states, cmd_vel and the ground-truth base pose;
- ``head_camera.mp4`` the head camera stream (H.264, sim-time frame rate);
- ``top_view.png``    a top-down plot of the room (ground-truth furniture, containers and
                      objects) with the driven path: odometry vs ground truth;
- ``summary.json``    the figures printed at the end (frames, duration, path, drift).

Everything is bounded by timeouts and shut down cleanly (SIGINT, then SIGKILL), through
:mod:`katazuke.testing`; the robot is watched with one :class:`katazuke.ros.probe.Probe`.
"""
from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from katazuke.errors import InputError, KatazukeError
from katazuke.geometry import yaw_from_quaternion
from katazuke.testing import finish_process, start_process

__all__ = ["TourOptions", "run_tour", "render_top_view", "format_summary"]


@dataclass(frozen=True)
class TourOptions:
    """What one tour run does (built from the command line; no argparse inside)."""

    out: Path
    seed: int = 0
    profile: str = "none"
    duration_s: float = 90.0       # sim seconds at most
    bag: bool = True
    real_time_factor: float = 1.0
    gui: bool = False
    startup_timeout_s: float = 90.0  # wall seconds until the first camera frame

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise InputError(f"duration must be > 0 seconds, got {self.duration_s}")
        if self.real_time_factor < 0:
            raise InputError(f"real_time_factor must be >= 0, got {self.real_time_factor}")



def _camera_hz() -> float | None:
    """The head camera rate (Hz of sim time) launch/params/sim.yaml sets, None if it sets none.

    The video plays at sim time; without a rate in the YAML (the bridge's default applies),
    :class:`_Observer` takes it from the stamps of the first two frames.
    """
    from katazuke.config import read_yaml
    from katazuke.rosenv import repo_root

    params = (read_yaml(repo_root() / "launch" / "params" / "sim.yaml") or {})
    node = (params.get("sim_bridge") or {}).get("ros__parameters") or {}
    value = node.get("camera_hz", (node.get("sim") or {}).get("camera_hz"))
    return None if value is None else float(value)


def _require_executables(bag: bool) -> None:
    from katazuke.rosenv import workspace_install

    exe = workspace_install() / "lib" / "katazuke_ros"
    needed = ["sim_bridge", "tour"] + (["bag_recorder"] if bag else [])
    missing = [n for n in needed if not (exe / n).exists()]
    if missing:
        raise KatazukeError(f"ROS executables {missing} are not installed in {exe}: run "
                            "`bash scripts/bootstrap.sh`" + (" (or pass --no-bag)" if bag else ""))


def _start(opts: TourOptions, bag_dir: Path | None, log_dir: Path) -> "subprocess.Popen[str]":
    from katazuke.rosenv import repo_root, ros_environment

    env = ros_environment()
    params = repo_root() / "launch" / "params" / "sim.yaml"
    launch_args = {"tour": "true", "seed": str(opts.seed), "profile": opts.profile,
                   "params_file": str(params),
                   "gui": str(opts.gui).lower(), "real_time_factor": str(opts.real_time_factor),
                   "record": str(bag_dir is not None).lower()}
    if bag_dir is not None:
        launch_args["bag"] = str(bag_dir)
    log_dir.mkdir(parents=True, exist_ok=True)

    launch_file = repo_root() / "launch" / "sim.launch.xml"
    cmd = [sys.executable, "-P", "-m", "katazuke.cli", "launch", str(launch_file),
           "--shutdown-timeout", "10", "--log-dir", str(log_dir),
           *(f"{k}:={v}" for k, v in launch_args.items())]
    return start_process(cmd, env=env)


# ------------------------------------------------------------------------------ observer
class _Observer:
    """Video frames, odometry, ground truth and tour status, received by one Probe."""

    def __init__(self, video_path: Path, fps: float | None) -> None:
        from geometry_msgs.msg import PoseStamped
        from nav_msgs.msg import Odometry
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from visualization_msgs.msg import MarkerArray

        from katazuke.ros.probe import Probe

        self.probe = Probe("tour_observer")
        self._video_path = video_path
        self.writer: Any = None  # opened once the frame rate is known
        self._first_img: Any = None
        self.frames = 0
        self.video_frames = 0
        self._fps = fps
        self.first_frame_t: float | None = None
        self.last_frame_t: float | None = None
        self.sim_time = 0.0
        self.odom: list[tuple[float, float, float, float]] = []   # t, x, y, yaw
        self.truth: list[tuple[float, float, float, float]] = []
        self.markers: Any = None
        self.status = ""
        self.bad_frames = 0
        p = self.probe
        p.collect("/head_camera/image_raw", Image, "sensor", self._on_image, keep=False)
        p.collect("/odom", Odometry, "state", self._on_odom, keep=False)
        p.collect("/sim/ground_truth/base_pose", PoseStamped, "state", self._on_truth, keep=False)
        p.collect("/sim/ground_truth/markers", MarkerArray, "latched", self._on_markers,
                  keep=False)
        p.collect("/tour/status", String, "latched", self._on_status, keep=False)
        p.collect("/clock", Clock, "clock", self._on_clock, keep=False)

    def _on_clock(self, msg: Any) -> None:
        from katazuke.ros.conversions import stamp_to_sec

        self.sim_time = max(self.sim_time, stamp_to_sec(msg.clock))

    def _on_image(self, msg: Any) -> None:
        from katazuke.ros.conversions import image_to_numpy, stamp_to_sec

        try:
            img = image_to_numpy(msg, "rgb8")
        except InputError:
            self.bad_frames += 1
            return
        t = stamp_to_sec(msg.header.stamp)
        if self.last_frame_t is not None and t <= self.last_frame_t:
            return  # stale or repeated frame
        self.first_frame_t = t if self.first_frame_t is None else self.first_frame_t
        self.last_frame_t = t
        self.frames += 1
        if self.writer is None:
            if self._fps is None:  # the rate from the first two stamps (sim time)
                if self._first_img is None:
                    self._first_img = img
                    return
                self._fps = round(1.0 / (t - self.first_frame_t), 3)
            self._open_writer()
            if self._first_img is not None:
                self.video_frames += 1
                self.writer.append_data(self._first_img)
                self._first_img = None
        # keep the video on sim time: a frame lost on the way repeats the previous one
        want = int(round((t - self.first_frame_t) * self._fps)) + 1
        self.video_frames += 1
        self.writer.append_data(img)
        while self.video_frames < want:
            self.video_frames += 1
            self.writer.append_data(img)

    def _open_writer(self) -> None:
        import imageio.v2 as imageio

        self.writer = imageio.get_writer(str(self._video_path), fps=self._fps, codec="libx264",
                                         quality=7, macro_block_size=8, ffmpeg_log_level="error")

    def _on_odom(self, msg: Any) -> None:
        from katazuke.ros.conversions import pose_xyyaw, stamp_to_sec

        self.odom.append((stamp_to_sec(msg.header.stamp), *pose_xyyaw(msg.pose.pose)))

    def _on_truth(self, msg: Any) -> None:
        from katazuke.ros.conversions import pose_xyyaw, stamp_to_sec

        self.truth.append((stamp_to_sec(msg.header.stamp), *pose_xyyaw(msg.pose)))

    def _on_markers(self, msg: Any) -> None:
        self.markers = msg

    def _on_status(self, msg: Any) -> None:
        self.status = msg.data

    def close(self) -> None:
        self.probe.close()
        if self.writer is None and self._first_img is not None:  # a single frame
            self._fps = self._fps or 1.0
            self._open_writer()
            self.video_frames += 1
            self.writer.append_data(self._first_img)
        if self.writer is not None:
            self.writer.close()


# ----------------------------------------------------------------------------- the run
def run_tour(opts: TourOptions) -> dict[str, Any]:
    """Run the tour and write the outputs; returns the summary (also written as JSON).

    Raises:
        KatazukeError: the simulator did not come up, or the output folder is unusable.
    """
    from tqdm import tqdm

    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    bag_dir = out / "bag" if opts.bag else None
    _require_executables(bag=bag_dir is not None)
    fps = _camera_hz()
    if bag_dir is not None and bag_dir.exists():
        if not ((bag_dir / "metadata.yaml").exists() or any(bag_dir.glob("*.mcap"))
                or any(bag_dir.glob("*.db3"))):
            raise InputError(f"{bag_dir} exists and is not a bag: remove it or choose another --out")
        shutil.rmtree(bag_dir)  # a bag from an earlier run of this command
    video = out / "head_camera.mp4"
    observer = _Observer(video, fps=fps)
    # Spin in a thread for the whole run, shutdown included: peers that stop while this
    # process stops reading (reliable subscriptions) would otherwise linger.
    observer.probe.spin_in_background()
    log_dir = out / "logs"
    proc = None
    t_wall0 = time.monotonic()
    ended = "duration"
    rate = opts.real_time_factor if opts.real_time_factor > 0 else 4.0
    wall_limit = opts.startup_timeout_s + opts.duration_s / max(rate, 0.05) * 3.0 + 60.0
    try:
        proc = _start(opts, bag_dir, log_dir)
        with tqdm(total=round(opts.duration_s), unit="sim s", desc="tour",
                  disable=None) as bar:
            while True:
                observer.probe.spin_for(0.1)  # the probe thread receives; show progress
                bar.n = min(round(observer.sim_time), bar.total)
                bar.refresh()
                wall = time.monotonic() - t_wall0
                if observer.frames == 0 and wall > opts.startup_timeout_s:
                    raise KatazukeError(
                        f"no camera frame from the simulator after {opts.startup_timeout_s:.0f} s;"
                        f" see the logs in {log_dir}")
                if observer.status.startswith("finished"):
                    ended = "tour finished"
                    break
                if observer.sim_time >= opts.duration_s:
                    ended = "duration"
                    break
                if proc.poll() is not None:
                    ended = "a process exited"
                    break
                if wall > wall_limit:
                    ended = "wall-clock limit"
                    break
        if ended == "tour finished":
            # the launch shuts itself down (tour has on_exit=shutdown); give it the time
            observer.probe.wait_for(lambda: proc.poll() is not None, 20.0)
        else:
            observer.probe.spin_for(0.5)  # let the last messages arrive
    finally:
        if proc is not None:
            (log_dir / "launch.log").write_text(finish_process(proc, signal.SIGINT, timeout=20.0))
        observer.close()
    codes = [proc.returncode] if proc is not None else []
    wall_s = time.monotonic() - t_wall0
    if observer.frames == 0:
        raise KatazukeError(f"the tour produced no camera frames; see the logs in {log_dir}")
    top = out / "top_view.png"
    drift = render_top_view(top, observer.odom, observer.truth, observer.markers,
                            title=f"katazuke sim tour, seed {opts.seed}, profile {opts.profile}")
    summary: dict[str, Any] = {
        "ended_by": ended,
        "tour_status": observer.status,
        "sim_duration_s": round(observer.sim_time, 3),
        "wall_duration_s": round(wall_s, 2),
        "camera_frames": observer.frames,
        "video_frames": observer.video_frames,
        "camera_hz_sim": round((observer.frames - 1) / (observer.last_frame_t - observer.first_frame_t), 2)
        if observer.frames > 1 and observer.last_frame_t != observer.first_frame_t else 0.0,
        **drift,
        "files": {"video": str(video), "top_view": str(top),
                  "bag": str(bag_dir) if bag_dir is not None else None,
                  "logs": str(log_dir)},
        "exit_codes": codes,
    }
    if bag_dir is not None:
        summary["bag"] = _bag_counts(bag_dir)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _bag_counts(bag_dir: Path) -> dict[str, Any]:
    from katazuke.bag import open_bag

    try:
        with open_bag(bag_dir) as bag:
            s = bag.summary
            return {"messages": {t.name: t.count for t in s.topics},
                    "duration_s": round(s.duration_s, 3)}
    except KatazukeError as exc:  # the run's other outputs are still worth reporting
        return {"messages": {}, "read_error": str(exc)}


def _path_length(xy: Any) -> float:
    import numpy as np

    if len(xy) < 2:
        return 0.0
    return float(np.sum(np.linalg.norm(np.diff(xy, axis=0), axis=1)))


def render_top_view(path: Path, odom: list, truth: list, markers: Any, title: str) -> dict:
    """Top-down plot of the room with the odometry and ground-truth paths.

    Args:
        path: PNG to write.
        odom, truth: lists of (t, x, y, yaw) in the map frame (metres, rad); odometry
            starts at the true start pose, so both share the frame.
        markers: visualization_msgs/MarkerArray of the ground-truth room (or None).
        title: figure title.

    Returns:
        path lengths and odometry drift (position error at matched stamps), metres.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Polygon

    fig, ax = plt.subplots(figsize=(7, 7), dpi=110)
    if markers is not None:
        for m in markers.markers:
            if m.action != m.ADD:
                continue
            q = m.pose.orientation
            yaw = yaw_from_quaternion(q.x, q.y, q.z, q.w)
            hx, hy = m.scale.x / 2, m.scale.y / 2
            c, s = math.cos(yaw), math.sin(yaw)
            corners = [(m.pose.position.x + c * dx - s * dy, m.pose.position.y + s * dx + c * dy)
                       for dx, dy in ((-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy))]
            face = (m.color.r, m.color.g, m.color.b, max(0.3, min(1.0, m.color.a)))
            ax.add_patch(Polygon(corners, closed=True, facecolor=face, edgecolor="k",
                                 linewidth=0.4, zorder=1 if m.ns != "objects" else 2))
    o = np.array([r[1:3] for r in odom]) if odom else np.zeros((0, 2))
    g = np.array([r[1:3] for r in truth]) if truth else np.zeros((0, 2))
    if len(g):
        ax.plot(g[:, 0], g[:, 1], "-", color="tab:green", lw=2.0, label="ground truth", zorder=3)
        ax.plot(g[0, 0], g[0, 1], "o", color="k", ms=6, zorder=4, label="start")
    if len(o):
        ax.plot(o[:, 0], o[:, 1], "--", color="tab:red", lw=1.5, label="odometry", zorder=4)
    drift = _drift(odom, truth)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, map)")
    ax.set_ylabel("y (m, map)")
    ax.set_title(f"{title}\nfinal odometry drift {drift['final_drift_m']:.3f} m over "
                 f"{drift['path_length_truth_m']:.2f} m", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(True, lw=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return drift


def _drift(odom: list, truth: list) -> dict[str, float]:
    import numpy as np

    out = {"path_length_odom_m": round(_path_length(np.array([r[1:3] for r in odom])), 3)
           if odom else 0.0,
           "path_length_truth_m": round(_path_length(np.array([r[1:3] for r in truth])), 3)
           if truth else 0.0,
           "final_drift_m": float("nan"), "max_drift_m": float("nan")}
    if not odom or not truth:
        return out
    ot = np.array([r[0] for r in odom])
    gt = {round(r[0], 6): r for r in truth}
    errs = []
    for r in odom:
        g = gt.get(round(r[0], 6))
        if g is not None:
            errs.append(math.hypot(r[1] - g[1], r[2] - g[2]))
    if not errs:  # no shared stamps (should not happen: the bridge stamps both alike)
        j = np.searchsorted(ot, [r[0] for r in truth]).clip(0, len(odom) - 1)
        errs = [math.hypot(odom[k][1] - g[1], odom[k][2] - g[2]) for k, g in zip(j, truth)]
    out["final_drift_m"] = round(float(errs[-1]), 4)
    out["max_drift_m"] = round(float(max(errs)), 4)
    return out


def format_summary(s: dict[str, Any]) -> str:
    lines = [
        f"tour ended by: {s['ended_by']} ({s['tour_status'] or 'no status'})",
        f"sim time {s['sim_duration_s']:.1f} s in {s['wall_duration_s']:.1f} s wall; "
        f"{s['camera_frames']} camera frames received ({s['camera_hz_sim']:.1f} Hz of sim time), "
        f"video {s['video_frames']} frames",
        f"path length: {s['path_length_truth_m']:.2f} m (ground truth), "
        f"{s['path_length_odom_m']:.2f} m (odometry)",
        f"odometry drift: final {s['final_drift_m']:.3f} m, max {s['max_drift_m']:.3f} m",
    ]
    if "bag" in s:
        msgs = s["bag"].get("messages", {})
        lines.append(f"bag: {sum(msgs.values())} messages on {len(msgs)} topics "
                     f"({', '.join(f'{k} {v}' for k, v in sorted(msgs.items()))})")
    lines.append("files written:")
    lines += [f"  {k}: {v}" for k, v in s["files"].items() if v]
    return "\n".join(lines)
