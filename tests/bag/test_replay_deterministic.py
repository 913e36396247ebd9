"""Deterministic replay: a short bag of simulator renders, replayed twice lock-step through
``launch/perception.launch.xml deterministic:=true`` (``katazuke bag play --deterministic``),
gives one DetectionArray and one ObjectMap per camera frame, identical both times."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros

N_FRAMES = 12
CAMERA_HZ, TF_HZ = 10, 30
CAM = "head_camera_optical_frame"


def _write_bag(path: Path) -> None:
    """1.2 s of head-camera renders (rgb, depth, camera_info at 10 Hz) while the camera pans,
    /tf at 30 Hz (odom -> base_link), /tf_static (base_link -> camera). At each camera tick
    the tf of that instant is logged *after* the images with the same log time (as the sim
    bridge's bags have it), so a lookup must not depend on arrival order."""
    from geometry_msgs.msg import TransformStamped
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CameraInfo, Image
    from tf2_msgs.msg import TFMessage

    from katazuke.bag.qos import QosSpec
    from katazuke.bag.writer import BagWriter
    from katazuke.geometry import matrix_to_quat
    from katazuke.ros.conversions import header, image_from_numpy
    from katazuke.sim import EnvConfig, TidyEnv

    env = TidyEnv(EnvConfig(profile="none", render_observation=False, n_objects=(8, 8)))
    try:
        env.reset(seed=3)
        T_world_cam0, K = env.head_camera_pose(), env.head_intrinsics()
        T_base_cam = np.eye(4)
        T_base_cam[:3, 3] = [0.1, 0.0, 1.2]
        T_base_cam[:3, :3] = T_world_cam0[:3, :3]

        def T_odom_base(t: float) -> np.ndarray:
            T = np.eye(4)
            a = 0.25 * t   # rad: a slow pan
            T[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
            T[:3, 3] = T_world_cam0[:3, 3] - T_base_cam[:3, 3] + [0.05 * t, 0.0, 0.0]
            return T

        def tf(parent: str, child: str, t: float, T: np.ndarray):
            m = TransformStamped()
            m.header = header(t, parent)
            m.child_frame_id = child
            m.transform.translation.x, m.transform.translation.y, m.transform.translation.z = (
                float(v) for v in T[:3, 3])
            q = matrix_to_quat(T[:3, :3])
            (m.transform.rotation.x, m.transform.rotation.y, m.transform.rotation.z,
             m.transform.rotation.w) = (float(v) for v in q)
            return m

        w = BagWriter(path)
        try:
            reliable = [QosSpec(reliable=True, transient_local=False, depth=10)]
            w.add_topic("/tf_static", "tf2_msgs/msg/TFMessage",
                        [QosSpec(reliable=True, transient_local=True, depth=1)])
            w.add_topic("/tf", "tf2_msgs/msg/TFMessage", reliable)
            for topic, typ in (("/head_camera/image_raw", "sensor_msgs/msg/Image"),
                               ("/head_camera/depth/image_raw", "sensor_msgs/msg/Image"),
                               ("/head_camera/camera_info", "sensor_msgs/msg/CameraInfo")):
                w.add_topic(topic, typ, [QosSpec(reliable=False, transient_local=False, depth=1)])
            w.write("/tf_static", 0, serialize_message(
                TFMessage(transforms=[tf("base_link", CAM, 0.0, T_base_cam)])))
            per = TF_HZ // CAMERA_HZ
            for k in range(N_FRAMES * per):
                t = 0.1 + k / TF_HZ
                ns = int(round(t * 1e9))
                tf_msg = serialize_message(TFMessage(transforms=[tf("odom", "base_link", t,
                                                                    T_odom_base(t))]))
                if k % per:
                    w.write("/tf", ns, tf_msg)
                    continue
                f = env.render(T_odom_base(t) @ T_base_cam, K, name="head")
                depth = np.where(np.isfinite(f.depth), f.depth, np.nan).astype(np.float32)
                h = header(t, CAM)
                info = CameraInfo(header=h, width=f.rgb.shape[1], height=f.rgb.shape[0])
                info.k = [float(v) for v in K.ravel()]
                w.write("/head_camera/image_raw", ns,
                        serialize_message(image_from_numpy(f.rgb, "rgb8", h)))
                w.write("/head_camera/depth/image_raw", ns,
                        serialize_message(image_from_numpy(depth, "32FC1", h)))
                w.write("/head_camera/camera_info", ns, serialize_message(info))
                w.write("/tf", ns, tf_msg)
        finally:
            w.close()
    finally:
        env.close()


@pytest.fixture(scope="module")
def short_bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "short_bag"
    _write_bag(path)
    return path


def test_two_deterministic_replays_process_every_frame_identically(short_bag, tmp_path) -> None:
    from katazuke.bag.reader import open_bag
    from katazuke.bench.replay import compare_outputs, replay_once

    with open_bag(short_bag) as b:
        frames = {t.name: t.count for t in b.summary.topics}["/head_camera/image_raw"]
    assert frames == N_FRAMES
    runs = [replay_once(short_bag, tmp_path / f"r{i}", ack_timeout_s=20.0) for i in (1, 2)]
    for st in runs:
        log = (Path(st["outputs"]).parent / "play.log").read_text()
        assert st["exit_code"] == 0 and not st["ack_timeouts"], log
        assert st["frames"] == N_FRAMES
        assert st["acked"] == {"/detections": N_FRAMES, "/object_map": N_FRAMES}, log
        with open_bag(st["outputs"]) as ob:
            counts = {t.name: t.count for t in ob.summary.topics}
        # one DetectionArray and one ObjectMap per camera frame, no more, no less
        assert counts == {"/detections": N_FRAMES, "/object_map": N_FRAMES}
    cmp = compare_outputs(Path(runs[0]["outputs"]), Path(runs[1]["outputs"]))
    assert cmp["differing_messages"] == 0, cmp

    # The comparison is about real content: detections with map positions, a non-empty map,
    # and every frame stamp answered in bag order.
    from rclpy.serialization import deserialize_message

    from katazuke_interfaces.msg import DetectionArray, ObjectMap

    with open_bag(runs[0]["outputs"]) as ob:
        dets = [deserialize_message(d, DetectionArray) for _, _, d in ob.messages(["/detections"])]
        maps = [deserialize_message(d, ObjectMap) for _, _, d in ob.messages(["/object_map"])]
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in dets]
    assert stamps == sorted(stamps) and len(set(stamps)) == N_FRAMES
    assert sum(d.has_position_map for m in dets for d in m.detections) > 0
    assert len(maps[-1].objects) > 0

    # ... and it notices a difference: replay 1 against itself minus its last detection.
    from katazuke.bag.writer import BagWriter

    cut = tmp_path / "cut"
    w = BagWriter(cut)
    with open_bag(runs[0]["outputs"]) as ob:
        for t in ob.summary.topics:
            w.add_topic(t.name, t.msgtype)
        msgs = list(ob.messages([t.name for t in ob.summary.topics]))
    last_det = max(i for i, (topic, _, _) in enumerate(msgs) if topic == "/detections")
    for i, (topic, ts, data) in enumerate(msgs):
        if i != last_det:
            w.write(topic, ts, data)
    w.close()
    bad = compare_outputs(Path(runs[0]["outputs"]), cut)
    assert bad["topics"]["/detections"]["differing"] == 1
    assert bad["topics"]["/object_map"]["differing"] == 0


def test_deterministic_play_names_the_missing_consumer(short_bag, tmp_path) -> None:
    """Without the stack running, --deterministic stops with an error naming what is
    missing instead of replaying into nothing."""
    import sys

    from katazuke.testing import finish_process, start_process

    play = start_process([str(Path(sys.executable).parent / "katazuke"), "bag", "play",
                          str(short_bag), "--deterministic", "--discovery-timeout", "2"])
    out = finish_process(play, sig=None, timeout=None)
    assert play.returncode != 0
    assert "nobody publishes /detections" in out and "deterministic:=true" in out, out


def test_header_stamp_of_serialized_messages() -> None:
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from katazuke.bag.ros import header_stamp_ns
    from katazuke.errors import InputError
    from katazuke.ros.conversions import header

    msg = Image(header=header(12.25, "cam"))
    assert header_stamp_ns(serialize_message(msg)) == 12_250_000_000
    with pytest.raises(InputError):
        header_stamp_ns(b"\x00\x01\x00\x00")
