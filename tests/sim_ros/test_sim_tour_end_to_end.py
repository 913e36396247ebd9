"""`katazuke sim tour` end to end: launch (bridge + tour + bag recorder), bag, MP4, top view.

The scripted tour was the main job before the tidy-up loop; it stays the quick check of the
simulator, the bridge and the recorder together (and the replay bench records its bag)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]


def test_sim_tour_writes_bag_video_and_top_view(tmp_path) -> None:
    from katazuke.rosenv import ros_environment

    out = tmp_path / "tour"
    env = ros_environment()
    # a domain of its own (the in-process bridge tests use 100 + pid % 2)
    env["ROS_DOMAIN_ID"] = str(100 + (os.getpid() + 1) % 2)
    proc = subprocess.run([sys.executable, "-P", "-m", "katazuke.cli", "sim", "tour", "--out", str(out),
                           "--duration", "8"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "files written" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ended_by"] == "duration"
    assert summary["sim_duration_s"] >= 8.0
    assert summary["camera_frames"] >= 10
    # the robot toured (it waits start_delay_s = 3 s, then drives at up to 0.35 m/s)
    assert summary["path_length_truth_m"] > 0.5
    assert summary["final_drift_m"] < 0.5
    assert all(c == 0 for c in summary["exit_codes"]), summary["exit_codes"]

    import imageio.v2 as imageio

    reader = imageio.get_reader(str(out / "head_camera.mp4"))
    frames = [f for f in reader]
    reader.close()
    assert len(frames) == summary["video_frames"] >= 10
    assert frames[0].shape == (240, 320, 3)
    assert frames[-1].std() > 5  # an actual image, not a blank frame

    from PIL import Image

    with Image.open(out / "top_view.png") as im:
        assert im.size[0] > 300 and im.size[1] > 300

    from katazuke.bag import open_bag

    with open_bag(out / "bag") as bag:
        counts = {t.name: t.count for t in bag.summary.topics}
    for topic in ("/clock", "/odom", "/tf", "/head_camera/image_raw",
                  "/head_camera/depth/image_raw", "/head_camera/camera_info", "/joint_states"):
        assert counts.get(topic, 0) > 0, counts
    assert counts["/clock"] >= 0.5 * 8 * 30
