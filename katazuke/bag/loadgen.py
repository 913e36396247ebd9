"""Synthetic sensor load for recorder/player tests and ``katazuke bench bag``.

- :func:`publish_load`: camera images (``sensor_msgs/Image``, rgb8) and joint states
  (``sensor_msgs/JointState``) published on a monotonic schedule from one thread,
  reliable with a deep queue, after waiting for a subscriber.
- :func:`write_load_bag`: the same streams written straight into a bag (exact stamps),
  the input of the playback timing benchmark.

Every message carries its sequence number (image ``header.frame_id``, joint
``position[0]``), so a consumer can check completeness and order.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LoadSpec", "publish_load", "write_load_bag", "IMAGE_TOPIC", "JOINT_TOPIC"]

IMAGE_TOPIC = "/camera/image_raw"
JOINT_TOPIC = "/joint_states"
JOINT_NAMES = ("base", "shoulder", "elbow", "wrist_1", "wrist_2", "wrist_3", "gripper")


@dataclass(frozen=True)
class LoadSpec:
    """The load.

    Attributes:
        duration_s: seconds of data.
        image_hz, joint_hz: rates (Hz).
        width, height: image size (pixels); rgb8, so ``3 * width * height`` bytes each.
        depth: publisher queue depth hint (reliable KEEP_ALL: the writer keeps every unacknowledged sample).
        seed: image content RNG seed.
    """

    duration_s: float = 8.0
    image_hz: float = 30.0
    joint_hz: float = 100.0
    width: int = 320
    height: int = 240
    depth: int = 200
    seed: int = 0

    def schedule(self) -> list[tuple[float, str, int]]:
        """(time offset s, topic, sequence number), time ordered."""
        ev = [(i / self.image_hz, IMAGE_TOPIC, i) for i in range(int(round(self.duration_s * self.image_hz)))]
        ev += [(i / self.joint_hz, JOINT_TOPIC, i) for i in range(int(round(self.duration_s * self.joint_hz)))]
        return sorted(ev, key=lambda e: (e[0], e[1]))


def _messages(spec: LoadSpec) -> tuple[Any, Any]:
    from sensor_msgs.msg import JointState

    from katazuke.ros.conversions import image_from_numpy

    rng = np.random.default_rng(spec.seed)
    pixels = rng.integers(0, 256, size=3 * spec.width * spec.height, dtype=np.uint8)
    img = image_from_numpy(pixels.reshape(spec.height, spec.width, 3), "rgb8")
    img.header.frame_id = "0"
    js = JointState()
    js.name = list(JOINT_NAMES)
    js.position = [0.0] * len(JOINT_NAMES)
    js.velocity = [0.0] * len(JOINT_NAMES)
    js.effort = [0.0] * len(JOINT_NAMES)
    return img, js


def _stamp(msg: Any, t_ns: int, seq: int, topic: str) -> None:
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(t_ns), 1_000_000_000)
    if topic == IMAGE_TOPIC:
        msg.header.frame_id = str(seq)
    else:
        msg.position[0] = float(seq)


def publish_load(node: Any, spec: LoadSpec, wait_for_subscriber_s: float = 10.0) -> dict[str, int]:
    """Publish the load from ``node`` (blocking, about ``spec.duration_s``).

    Returns:
        messages published per topic.

    Raises:
        TimeoutError: no subscriber matched within ``wait_for_subscriber_s``.
    """
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, JointState

    from katazuke.bag.schedule import wait_until

    # Lossless transport needs reliable KEEP_ALL at both ends: a KEEP_LAST writer
    # overwrites samples a briefly stalled reader has not acknowledged yet.
    qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, depth=spec.depth,
                     reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    pubs = {IMAGE_TOPIC: node.create_publisher(Image, IMAGE_TOPIC, qos),
            JOINT_TOPIC: node.create_publisher(JointState, JOINT_TOPIC, qos)}
    deadline = time.monotonic() + wait_for_subscriber_s
    while any(p.get_subscription_count() == 0 for p in pubs.values()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no subscriber on {list(pubs)} within {wait_for_subscriber_s} s")
        time.sleep(0.02)
    img, js = _messages(spec)
    msgs = {IMAGE_TOPIC: img, JOINT_TOPIC: js}
    sent = {IMAGE_TOPIC: 0, JOINT_TOPIC: 0}
    clock = node.get_clock()
    t0 = time.monotonic()
    for offset, topic, seq in spec.schedule():
        wait_until(t0 + offset, spin_s=0.0005)
        msg = msgs[topic]
        _stamp(msg, clock.now().nanoseconds, seq, topic)
        pubs[topic].publish(msg)
        sent[topic] += 1
    from rclpy.duration import Duration

    for p in pubs.values():
        p.wait_for_all_acked(Duration(seconds=10.0))  # reliable: every sample acked by readers
    return sent


def write_load_bag(path: str | Path, spec: LoadSpec, start_ns: int = 1_700_000_000_000_000_000,
                   storage: str = "mcap") -> dict[str, int]:
    """Write the load into a new bag with exact timestamps (no ROS graph needed).

    Returns:
        messages written per topic.
    """
    from rclpy.serialization import serialize_message

    from katazuke.bag.writer import BagWriter

    img, js = _messages(spec)
    msgs = {IMAGE_TOPIC: img, JOINT_TOPIC: js}
    writer = BagWriter(path, storage=storage)
    writer.add_topic(IMAGE_TOPIC, "sensor_msgs/msg/Image")
    writer.add_topic(JOINT_TOPIC, "sensor_msgs/msg/JointState")
    for offset, topic, seq in spec.schedule():
        t = start_ns + int(round(offset * 1e9))
        _stamp(msgs[topic], t, seq, topic)
        writer.write(topic, t, serialize_message(msgs[topic]))
    return dict(writer.close().written)
