"""Storage-level bag code (no ROS graph): definitions, QoS rules, scheduling math,
write -> read round trips, crash recovery, the real bags in shared/data, bad input."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from katazuke.bag import (BagWriter, MessageDefinitions, PlaybackClock, QosSpec, open_bag,
                          playback_for, scan_mcap, subscription_for, wait_until)
from katazuke.bag.reader import format_summary
from katazuke.errors import InputError
from katazuke.rosenv import ros_environment

REPO = Path(__file__).resolve().parents[2]
BAGS = REPO.parent / "shared" / "data" / "bags"


def _katazuke(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "katazuke"
    return subprocess.run([str(exe), *args], env=ros_environment(), capture_output=True,
                          text=True, timeout=timeout)


# -- message definitions ---------------------------------------------------------------
@pytest.mark.parametrize("msgtype", ["katazuke_interfaces/msg/Detection",
                                     "katazuke_interfaces/msg/DetectionArray",
                                     "sensor_msgs/msg/Image", "tf2_msgs/msg/TFMessage"])
def test_definition_hash_matches_the_installed_type_description(msgtype: str) -> None:
    """Our RIHS01 (from the .msg files) equals the hash rosidl generated (the .json)."""
    defs = MessageDefinitions()
    text, rihs = defs.definition(msgtype)
    pkg, _, name = msgtype.split("/")
    js = next(p / "share" / pkg / "msg" / f"{name}.json" for p in defs.prefixes
              if (p / "share" / pkg / "msg" / f"{name}.json").is_file())
    hashes = json.loads(js.read_text())["type_hashes"]
    want = next(h["hash_string"] for h in hashes if h["type_name"] == msgtype)
    assert rihs == want
    # self-describing: every nested type is embedded after a MSG: separator
    if msgtype.endswith("DetectionArray"):
        assert "MSG: katazuke_interfaces/Detection" in text and "MSG: std_msgs/Header" in text


def test_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="no definition of message type nope_msgs/msg/X"):
        MessageDefinitions(fallback=False).definition("nope_msgs/msg/X")


# -- QoS rules ---------------------------------------------------------------------------
def test_subscription_qos_matches_every_publisher() -> None:
    rel, be, tl = QosSpec(True, False, 10), QosSpec(False, False, 1), QosSpec(True, True, 1)
    assert subscription_for([rel]).reliable
    assert not subscription_for([rel, be]).reliable          # reliable would miss `be`
    assert subscription_for([tl]).transient_local            # gets latched data
    assert not subscription_for([tl, rel]).transient_local   # TL would miss the volatile one
    assert subscription_for([], depth=1000) == QosSpec(True, False, 1000)


def test_playback_qos_defaults() -> None:
    assert playback_for("/tf_static", []) == QosSpec(True, True, 1)
    assert not playback_for("/tf", []).transient_local
    assert playback_for("/x", [], latched=True).transient_local


# -- scheduling --------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.5, 1.0, 3.0])
def test_playback_clock_maps_bag_time_linearly(rate: float) -> None:
    rng = np.random.default_rng(0)
    c = PlaybackClock(1_000_000_000_000, rate, mono_start=50.0)
    ts = np.sort(rng.integers(1_000_000_000_000, 1_100_000_000_000, 50))
    d = np.array([c.deadline(int(t)) for t in ts])
    np.testing.assert_allclose(np.diff(d), np.diff(ts) * 1e-9 / rate, atol=1e-9)
    assert all(abs(c.bag_time_ns(c.deadline(int(t))) - int(t)) <= 1000 for t in ts)
    with pytest.raises(InputError):
        PlaybackClock(0, 0.0)


def test_wait_until_is_not_early_and_can_be_stopped() -> None:
    for _ in range(5):
        due = time.monotonic() + 0.01
        assert wait_until(due)
        assert time.monotonic() >= due
    assert wait_until(time.monotonic() + 10, should_stop=lambda: True) is False


# -- write / read ------------------------------------------------------------------------
def _write(path: Path, storage: str, n: int = 200, flush: float = 0.5, close: bool = True,
           size: int = 3000) -> list[tuple[str, int, bytes]]:
    rng = np.random.default_rng(1)
    w = BagWriter(path, storage=storage, flush_interval_s=flush)
    w.add_topic("/det", "katazuke_interfaces/msg/Detection")
    w.add_topic("/img", "sensor_msgs/msg/Image")
    sent = []
    for i in range(n):
        topic = "/det" if i % 3 else "/img"
        data = rng.integers(0, 256, size=int(rng.integers(1, size)), dtype=np.uint8).tobytes()
        t = 1_000_000_000 + i * 10_000_000
        w.write(topic, t, data)
        sent.append((topic, t, data))
    if close:
        w.close()
    return sent, w


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_write_read_round_trip(tmp_path: Path, storage: str) -> None:
    sent, _ = _write(tmp_path / "b", storage)
    with open_bag(tmp_path / "b") as bag:
        got = list(bag.messages())
        s = bag.summary
    assert got == sent
    assert s.storage == storage and s.recovery is None and s.message_count == len(sent)
    assert {t.name: t.msgtype for t in s.topics} == {
        "/det": "katazuke_interfaces/msg/Detection", "/img": "sensor_msgs/msg/Image"}
    det = next(t for t in s.topics if t.name == "/det")
    assert "float32 x_min" in det.msgdef  # the custom type is self-describing
    assert (tmp_path / "b" / "metadata.yaml").is_file()
    with open_bag(tmp_path / "b") as bag:  # topic filter + start offset
        part = list(bag.messages(["/img"], start_ns=1_500_000_000))
    assert part == [m for m in sent if m[0] == "/img" and m[1] >= 1_500_000_000]


def test_recovery_of_truncated_mcap_at_every_kind_of_cut(tmp_path: Path) -> None:
    """A file without footer reads back exactly the messages of its complete chunks."""
    sent, _ = _write(tmp_path / "b", "mcap", n=300, size=20000, flush=1e-4)
    data_file = tmp_path / "b" / "b.mcap"
    full = scan_mcap(data_file)
    assert full.complete and len(full.chunks) > 3
    raw = data_file.read_bytes()
    rng = np.random.default_rng(2)
    cuts = [full.chunks[2][0] + full.chunks[2][1]]                      # exactly after a chunk
    cuts += [int(c) for c in rng.integers(full.chunks[1][0] + 1, full.chunks[-1][0], 4)]
    for cut in cuts:
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / f"cut{cut}.mcap").write_bytes(raw[:cut])
        with open_bag(d) as bag:
            got = list(bag.messages())
            s = bag.summary
        kept_end = max(c[0] + c[1] for c in full.chunks if c[0] + c[1] <= cut)
        exact = tmp_path / f"exact{cut}.mcap"
        exact.write_bytes(raw[:kept_end])
        expected = scan_mcap(exact).message_count  # messages of the complete chunks
        part = scan_mcap(d / f"cut{cut}.mcap")
        assert len(got) == expected > 0 and got == sent[:expected]
        assert s.message_count == len(got)
        assert kept_end <= part.valid_end <= cut and part.valid_end + part.dropped_bytes == cut
        assert f"recovered {len(got)} messages" in s.recovery
        assert f"{part.dropped_bytes} bytes of an incomplete chunk dropped" in s.recovery
        assert "metadata.yaml was missing and has been restored" in s.recovery
        assert (d / "metadata.yaml").is_file()
        with open_bag(d) as bag:  # second open: metadata present, footer still missing
            assert list(bag.messages()) == got


_KILLED_WRITER = r"""
import os, signal, sys
from katazuke.bag import BagWriter
w = BagWriter(sys.argv[1], storage=sys.argv[2], flush_interval_s=0.05)
w.add_topic("/det", "katazuke_interfaces/msg/Detection")
for i in range(400):
    w.write("/det", 1_000_000_000 + i * 1_000_000, bytes([i % 256]) * 100)
    if i == 299:
        assert w.flush(wait=True)  # the first 300 are on disk
print("killing", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_sigkilled_writer_leaves_a_readable_bag(tmp_path: Path, storage: str) -> None:
    proc = subprocess.run([sys.executable, "-P", "-c", _KILLED_WRITER, str(tmp_path / "k"), storage],
                          env=ros_environment(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not (tmp_path / "k" / "metadata.yaml").exists()
    with open_bag(tmp_path / "k") as bag:
        got = list(bag.messages())
        s = bag.summary
    assert 300 <= len(got) <= 400
    assert [d for _, _, d in got] == [bytes([i % 256]) * 100 for i in range(len(got))]
    assert s.recovery and f"recovered {len(got)} messages" in s.recovery
    assert (tmp_path / "k" / "metadata.yaml").is_file()
    out = _katazuke("bag", "info", str(tmp_path / "k"))
    assert out.returncode == 0 and f"Messages:          {len(got)}" in out.stdout
    assert "Recovered:" in out.stdout


# -- the real bags -----------------------------------------------------------------------
REAL = {
    "rosbag2/sqlite3/talker": ("sqlite3", {"/topic": 10, "/rosout": 10, "/parameter_events": 0}),
    "rosbag2/mcap/talker": ("mcap", {"/topic": 10, "/rosout": 10, "/parameter_events": 0}),
    "rosbag2/sqlite3/cdr_test": ("sqlite3", {"/test_topic": 3, "/array_topic": 4}),
    "rosbag2/mcap/cdr_test": ("mcap", {"/test_topic": 3, "/array_topic": 4}),
    "rosbag2/sqlite3/bag_with_topics_and_service_events": ("sqlite3", {"/test_topic1": 1}),
    "rosbag2/mcap/bag_with_topics_and_service_events": ("mcap", {"/test_topic1": 1}),
    "rosbag2/sqlite3/wbag": ("sqlite3", {"AAA": 804, "HHH": 726}),
    "rosbag2/mcap/convert_b": ("mcap", {"c_strings": 50, "a_empty": 25}),
    "evo/nav2_turtlebot.mcap": ("mcap", {"/odom": 2639, "/tf": 5422, "/tf_static": 1,
                                         "/amcl_pose": 135}),
    "evo/tf_example": ("sqlite3", {"/tf": 517, "/tf_static": 1}),
    "robot_localization/test1.bag": ("rosbag1", {"/imu/data": 11865, "/fix": 989,
                                                 "/husky_velocity_controller/odom": 3952}),
    "robot_localization/test2.bag": ("rosbag1", {"/imu/data": 3061,
                                                 "/jackal_velocity_controller/odom": 3060}),
}


@pytest.mark.parametrize("rel", sorted(REAL))
def test_real_bag_summary_and_stream(rel: str) -> None:
    if not BAGS.is_dir():
        pytest.skip(f"{BAGS} missing")
    storage, counts = REAL[rel]
    with open_bag(BAGS / rel) as bag:
        s = bag.summary
        stream = list(bag.messages())
    assert s.storage == storage and s.recovery is None
    have = {t.name: t.count for t in s.topics}
    assert all(have[k] == v for k, v in counts.items())
    assert len(stream) == s.message_count == sum(have.values())
    ts = [t for _, t, _ in stream]
    assert ts == sorted(ts)
    if rel != "rosbag2/sqlite3/wbag":  # wbag's metadata.yaml (a rewriter fixture) disagrees with its data
        assert s.start_ns == ts[0] and s.end_ns == ts[-1]
    assert "Topic information" in format_summary(s)


def test_real_bags_are_left_untouched() -> None:
    if not BAGS.is_dir():
        pytest.skip(f"{BAGS} missing")
    assert not (BAGS / "evo" / "metadata.yaml").exists()


@pytest.mark.parametrize("rel", ["robot_localization/test1.bag", "robot_localization/test2.bag"])
def test_ros1_messages_convert_to_ros2_cdr(rel: str) -> None:
    from rclpy.serialization import deserialize_message
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import Imu

    classes = {"sensor_msgs/msg/Imu": Imu, "nav_msgs/msg/Odometry": Odometry}
    defs = MessageDefinitions()
    with open_bag(BAGS / rel) as bag:
        seen = 0
        for topic, t, raw in bag.messages(["/imu/data"] + [x.name for x in bag.summary.topics
                                                           if x.msgtype.endswith("Odometry")]):
            msg = deserialize_message(bag.converter(topic, defs)(raw),
                                      classes[bag.topic(topic).msgtype])
            assert msg.header.frame_id and abs(msg.header.stamp.sec - t * 1e-9) < 5.0
            if topic == "/imu/data":
                q = msg.orientation
                assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-3
            seen += 1
            if seen > 200:
                break
    assert seen > 200


# -- bad input ---------------------------------------------------------------------------
def test_bad_inputs_are_clear_one_line_errors(tmp_path: Path) -> None:
    notbag = tmp_path / "notbag"
    notbag.mkdir()
    (notbag / "readme.txt").write_text("hi")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "metadata.yaml").write_text("rosbag2_bagfile_information: [1, 2\n  : :")
    wrongmeta = tmp_path / "wrongmeta"
    wrongmeta.mkdir()
    (wrongmeta / "metadata.yaml").write_text("hello: world\n")
    trunc_mcap = tmp_path / "t.mcap"
    trunc_mcap.write_bytes((BAGS / "rosbag2/mcap/talker/talker.mcap").read_bytes()[:6])
    trunc_db = tmp_path / "t.db3"
    trunc_db.write_bytes((BAGS / "rosbag2/sqlite3/talker/talker.db3").read_bytes()[:3000])
    trunc_bag = tmp_path / "t.bag"
    trunc_bag.write_bytes((BAGS / "robot_localization/test2.bag").read_bytes()[:5000])
    cases = {
        tmp_path / "missing": "no such file or directory",
        notbag: "not a bag",
        garbage: "not valid YAML",
        wrongmeta: "not rosbag2 metadata",
        trunc_mcap: "not an MCAP file",
        trunc_db: "t.db3",
        trunc_bag: "t.bag",
        tmp_path / "x.txt": "",
    }
    (tmp_path / "x.txt").write_text("x")
    for path, text in cases.items():
        with pytest.raises(InputError) as err:
            open_bag(path).close()
        assert str(path) in str(err.value) and text in str(err.value)
        assert "\n" not in str(err.value)
    for path in (garbage, trunc_bag, BAGS / "evo"):
        out = _katazuke("bag", "info", str(path))
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and str(path) in out.stderr


def test_unparsable_stored_definition_is_named() -> None:
    bag_dir = BAGS / "rosbag2/mcap/bag_with_topics_and_service_events"
    with open_bag(bag_dir) as bag:
        with pytest.raises(InputError) as err:
            bag.check_definitions()
    msg = str(err.value)
    assert "bag_with_topics_and_service_events.mcap" in msg and "test_msgs/srv/BasicTypes_Event" in msg
    assert "\n" not in msg
    out = _katazuke("bag", "play", str(bag_dir))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "cannot parse" in out.stderr


def test_record_refuses_existing_output(tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    with pytest.raises(InputError, match="already exists"):
        BagWriter(tmp_path / "exists")
    with pytest.raises(InputError, match="unknown storage"):
        BagWriter(tmp_path / "new", storage="rosbag1")
