"""`katazuke demo` (the README's main job) end to end on a one-object room: the whole stack
comes up, the task runs to its end by itself, and the summary, video and bag are written.

Mid-task (when the robot starts for the object) the detector is killed with SIGKILL: the
launcher respawns it and the task goes on to tidy the object."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]


def _kill_detector(root: int) -> int:
    from katazuke.launcher.supervisor import descendants

    for pid in descendants(root):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(c.endswith(b"katazuke_ros/detector") for c in cmd):
            os.kill(pid, signal.SIGKILL)
            return pid
    return 0


def test_demo_tidies_a_one_object_room_and_writes_summary_video_and_bag(tmp_path) -> None:
    from katazuke.rosenv import ros_environment

    out = tmp_path / "demo"
    env = ros_environment()
    proc = subprocess.Popen([sys.executable, "-P", "-m", "katazuke.cli", "demo", "--out",
                             str(out), "--seed", "1", "--objects", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    killed: list[int] = []

    def read_progress() -> None:
        for line in proc.stderr:
            err.append(line)
            if not killed and "navigate to pre-grasp pose" in line:
                killed.append(_kill_detector(proc.pid))
    outs: list[str] = []
    readers = [threading.Thread(target=read_progress, daemon=True),
               threading.Thread(target=lambda: outs.append(proc.stdout.read()), daemon=True)]
    for r in readers:
        r.start()
    try:
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    for r in readers:
        r.join(10)
    stdout, stderr = "".join(outs), "".join(err)
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert killed and killed[0], "the detector was not found to kill mid-task"
    # progress on the terminal: items done / total and the current step
    assert "items done" in stderr and "sim s:" in stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["objects"] == 1 and len(s["per_object"]) == 1
    assert s["unhandled_exceptions"] == 0, s
    assert s["node_respawns"] == 1, s              # the killed detector, and only it
    assert not s["budget_exhausted"], s            # the task ended by itself
    assert s["items"], s                           # the task manager handled the object
    assert s["sim_s"] > 0 and s["real_time_factor"] > 0.2
    assert s["tidied"] == 1 and s["success_rate"] == 1.0, (
        f"the object was not tidied: {s['per_object']}, items {s['items']}, causes "
        f"{s['failures_by_cause']}; logs in {s['files']['logs']}")
    assert f"{s['tidied']} of 1 objects" in stdout

    import imageio.v2 as imageio

    reader = imageio.get_reader(str(out / "tidy.mp4"))
    frames = [f for f in reader]
    reader.close()
    assert len(frames) >= 20
    h, w = frames[0].shape[:2]
    assert w > 1.5 * h                             # the camera beside the top view
    assert frames[-1].std() > 5

    from katazuke.bag import open_bag

    with open_bag(out / "bag") as bag:
        counts = {t.name: t.count for t in bag.summary.topics}
    for topic in ("/clock", "/odom", "/tf", "/head_camera/image_raw", "/detections",
                  "/object_map", "/task_status"):
        assert counts.get(topic, 0) > 0, (topic, counts)
