"""Camera frames cross processes without silent loss: every head-camera tick the bridge
publishes (one camera_info per tick, small) arrives with its rgb and depth images, which
together exceed Fast DDS's default 512 KiB shared-memory segment. The profile that
katazuke.rosenv applies (katazuke/ros/fastdds_profile.xml) sizes the segment for them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from katazuke.rosenv import FASTDDS_PROFILE, ros_environment
from katazuke.testing import start_node, stop_node

pytestmark = pytest.mark.ros


def test_ros_environment_applies_the_profile_unless_one_is_set():
    env = ros_environment({"PATH": os.environ.get("PATH", "")})
    assert Path(env["FASTRTPS_DEFAULT_PROFILES_FILE"]) == FASTDDS_PROFILE
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == env["FASTRTPS_DEFAULT_PROFILES_FILE"]
    assert FASTDDS_PROFILE.is_file() and "<segment_size>" in FASTDDS_PROFILE.read_text()
    own = ros_environment({"PATH": "", "FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"})
    assert own["FASTRTPS_DEFAULT_PROFILES_FILE"] == "/etc/mine.xml"


def test_every_camera_tick_arrives_with_its_images():
    from sensor_msgs.msg import CameraInfo, Image

    from katazuke.ros.probe import Probe

    ns = f"/ct{os.getpid()}"
    proc = start_node("sim_bridge", "-r", f"__ns:={ns}", "-p", "camera_hz:=15.0", "-p", "seed:=3",
                      "-p", "publish_ground_truth:=false")
    try:
        with Probe("camera_transport_probe") as probe:
            rgb = probe.collect(f"{ns}/head_camera/image_raw", Image, "sensor", keep=False)
            depth = probe.collect(f"{ns}/head_camera/depth/image_raw", Image, "sensor", keep=False)
            info = probe.collect(f"{ns}/head_camera/camera_info", CameraInfo, "sensor")
            assert probe.wait_for(lambda: len(info) >= 5, timeout=60), stop_node(proc)
            probe.wait_for(lambda: len(info) >= 80, timeout=30)
            n_info, n_rgb, n_depth = len(info), len(rgb), len(depth)
        # a tick's images may still be in flight when counting stops: allow 2
        assert n_info >= 40
        assert n_rgb >= n_info - 2 and n_depth >= n_info - 2, (n_info, n_rgb, n_depth)
    finally:
        stop_node(proc)
