"""rclpy side of the bag tools: :class:`Recorder` and :class:`Player`.

Both attach to an existing node, so the CLI (a plain node) and the launchable
``bag_recorder`` / ``bag_player`` nodes share the same code. Messages travel as
serialized CDR bytes (``raw=True`` subscriptions, ``publish(bytes)``), so any type whose
Python class is installed can be recorded and replayed without deserializing it.

Deterministic replay (:class:`DeterministicConfig`, ``katazuke bag play --deterministic``)
is lock-step with the consumers instead of paced by the recorded timing:

1. Before the first message the player waits until every consumer is discovered: the
   frame topic has a subscriber, each ack topic a publisher matched to the player's own
   subscription, every played topic as many matched subscribers as the graph shows, and
   all of that held for ``settle_s`` (a node's endpoints are discovered one by one).
2. It publishes in bag order, as fast as the consumers go, everything from one frame
   (a message on ``frame_topic``) up to the next frame, exclusive: the frame's depth,
   camera_info and the tf after its stamp are out before the consumers need them.
3. Before publishing the next frame it waits until every ack topic carried a message
   whose ``header.stamp`` equals the previous frame's (the detector's detections and the
   object map's map for that frame). A consumer that does not answer within
   ``ack_timeout_s`` is named in a warning and counted (``PlayResult.ack_timeouts``);
   playback goes on, unless ``give_up_after`` frames in a row went unanswered (an
   InputError: the consumer is down).

Every publisher is reliable KEEP_ALL (latched ones stay transient local), so nothing is
lost in transport; the consumer nodes, started with ``deterministic_replay: true``,
subscribe reliable KEEP_ALL, process every frame in order and wait for the tf and
camera_info at each frame's stamp. Only one frame is ever in flight, so what a node has
received when it processes frame ``k`` is the bag up to frame ``k + 1``, whatever the
machine's load: two replays give the same outputs message for message. The
acknowledging messages themselves are kept (``PlayResult.outputs``) for comparison.
"""
from __future__ import annotations

import gc
import importlib
import itertools
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from katazuke.bag.config import PlayConfig, split_topics
from katazuke.bag.msgdefs import MessageDefinitions
from katazuke.bag.qos import RECORD_DEPTH, QosSpec, playback_for, subscription_for
from katazuke.config import dataclass as kdataclass
from katazuke.config import field as kfield
from katazuke.bag.reader import Bag
from katazuke.bag.schedule import PlaybackClock, TimingStats, wait_until
from katazuke.bag.writer import BagWriter
from katazuke.errors import InputError

__all__ = ["Recorder", "Player", "PlayResult", "DeterministicConfig", "header_stamp_ns",
           "message_class", "to_profile", "to_spec", "play_bag"]


@kdataclass(frozen=True)
class DeterministicConfig:
    """Lock-step replay (see the module docstring): what a frame is and who acknowledges it."""

    enabled: bool = kfield(default=False, metadata={
        "help": "replay lock-step with the consumers (every frame processed, repeatable "
                "outputs) instead of with the recorded timing"})
    frame_topic: str = kfield(default="/head_camera/image_raw", metadata={
        "help": "topic whose messages are the frames the consumers acknowledge"})
    ack_topics: str = kfield(default="/detections /object_map", metadata={
        "help": "topics (messages starting with a std_msgs/Header) on which the consumers "
                "answer each frame with its header stamp, separated by spaces or commas"})
    ack_timeout_s: float = kfield(default=30.0, metadata={
        "help": "s (wall); longest wait for one frame's acknowledgements", "check": "positive"})
    discovery_timeout_s: float = kfield(default=60.0, metadata={
        "help": "s (wall); longest wait for the consumers to appear before the first frame",
        "check": "positive"})
    give_up_after: int = kfield(default=3, metadata={
        "help": "stop the replay (error) after this many frames in a row were not "
                "acknowledged: the consumer is down; 0 = never", "check": "non_negative"})
    settle_s: float = kfield(default=0.5, metadata={
        "help": "s (wall); the discovered consumers must stay matched this long before "
                "playback starts", "check": "non_negative"})


#: message types that start with a std_msgs/Header and come at a steady rate: the
#: recorder counts gaps in their stamps as lost frames
GAP_CHECKED_TYPES = frozenset({
    "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/CameraInfo",
    "sensor_msgs/msg/PointCloud2", "sensor_msgs/msg/LaserScan"})


def header_stamp_ns(data: bytes) -> int:
    """``header.stamp`` (ns) of a serialized (CDR) message whose first field is a
    std_msgs/Header.

    Raises:
        InputError: ``data`` is too short to hold a header.
    """
    if len(data) < 12:
        raise InputError(f"a {len(data)}-byte message cannot start with a std_msgs/Header")
    little = bool(data[1] & 1)   # encapsulation id: CDR_LE 0x0001, CDR_BE 0x0000
    sec, nanosec = struct.unpack_from("<iI" if little else ">iI", data, 4)
    return sec * 1_000_000_000 + nanosec


def message_class(msgtype: str) -> Any | None:
    """The installed Python class of ``pkg/msg/Type``, or None when not available."""
    parts = msgtype.split("/")
    if len(parts) != 3:
        return None
    try:
        module = importlib.import_module(f"{parts[0]}.{parts[1]}")
    except ImportError:
        return None
    return getattr(module, parts[2], None)


def to_profile(spec: QosSpec, keep_all: bool = False) -> QoSProfile:
    """rclpy profile from a :class:`QosSpec`.

    ``keep_all`` (the recorder, for reliable volatile topics): the reader never drops
    a sample from its own history; a reader that falls behind pushes back on reliable
    writers through DDS flow control instead of losing data.
    """
    history = (HistoryPolicy.KEEP_ALL if keep_all and spec.reliable and not spec.transient_local
               else HistoryPolicy.KEEP_LAST)
    return QoSProfile(
        history=history, depth=max(1, int(spec.depth)),
        reliability=ReliabilityPolicy.RELIABLE if spec.reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=(DurabilityPolicy.TRANSIENT_LOCAL if spec.transient_local
                    else DurabilityPolicy.VOLATILE))


def to_spec(profile: QoSProfile) -> QosSpec:
    """:class:`QosSpec` of an rclpy profile (e.g. a discovered publisher's)."""
    return QosSpec(reliable=profile.reliability != ReliabilityPolicy.BEST_EFFORT,
                   transient_local=profile.durability == DurabilityPolicy.TRANSIENT_LOCAL,
                   depth=int(profile.depth or 0))


class Recorder:
    """Subscribe to topics (raw CDR) and feed a :class:`BagWriter`.

    Topics are discovered every ``discovery_period_s``: a topic is subscribed once it has
    a publisher, with a QoS compatible with every publisher offered (best-effort
    publishers get a best-effort subscription; latched ones transient-local). When a
    later publisher needs a weaker QoS the subscription is re-created.

    Camera-like topics (:data:`GAP_CHECKED_TYPES`, messages that start with a header) are
    watched for frames lost before the recorder got them (best-effort transport): a gap in
    the header stamps above 1.5 nominal periods (:class:`katazuke.ros.gaps.GapDetector`)
    is counted in ``lost`` and logged (at most every 5 s per topic, with the total).

    Args:
        node: the node to create subscriptions on.
        writer: destination.
        topics: explicit topics, or None with ``record_all``.
        record_all: record every topic with a publisher.
        exclude: topics never recorded.
        discovery_period_s: graph scan period.
    """

    def __init__(self, node: Node, writer: BagWriter, topics: list[str] | None = None,
                 record_all: bool = False, exclude: list[str] | None = None,
                 discovery_period_s: float = 0.25) -> None:
        if not record_all and not topics:
            raise InputError("nothing to record: name topics or use --all")
        self.node = node
        self.writer = writer
        self.topics = [self._absolute(t) for t in (topics or [])]
        self.record_all = record_all
        self.exclude = {self._absolute(t) for t in (exclude or [])}
        self.received: dict[str, int] = {}
        self.lost: dict[str, int] = {}
        self._gaps: dict[str, Any] = {}
        self._lost_logged: dict[str, float] = {}
        self._subs: dict[str, tuple[Any, QosSpec]] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._group_msgs = MutuallyExclusiveCallbackGroup()  # keeps per-topic order
        self._group_graph = MutuallyExclusiveCallbackGroup()
        self._depth = RECORD_DEPTH  # the RECORD profile's deep queue
        self._timer = node.create_timer(discovery_period_s, self.discover,
                                        callback_group=self._group_graph)
        self.discover()

    def _absolute(self, topic: str) -> str:
        return topic if topic.startswith("/") else "/" + topic

    def _warn(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.node.get_logger().warning(text)

    def discover(self) -> None:
        """Scan the graph once; subscribe new topics (called by the timer)."""
        if self._closed:
            return
        names = dict(self.node.get_topic_names_and_types())
        wanted = [t for t in names if t not in self.exclude] if self.record_all else self.topics
        for topic in wanted:
            types = names.get(topic)
            if not types:
                continue
            pubs = [p for p in self.node.get_publishers_info_by_topic(topic)
                    if not (p.node_name == self.node.get_name()
                            and p.node_namespace == self.node.get_namespace())]
            if not pubs:
                continue
            msgtype = types[0]
            if len(types) > 1:
                self._warn(f"types:{topic}", f"{topic} has several types {types}; recording {msgtype}")
            offered = [to_spec(p.qos_profile) for p in pubs]
            spec = subscription_for(offered, depth=self._depth)
            with self._lock:
                have = self._subs.get(topic)
                if have is not None and (have[1].reliable <= spec.reliable
                                         and have[1].transient_local <= spec.transient_local):
                    continue  # current subscription already matches every publisher
                cls = message_class(msgtype)
                if cls is None:
                    self._warn(f"cls:{topic}", f"not recording {topic}: message type {msgtype} "
                               "is not installed here")
                    continue
                try:
                    self.writer.add_topic(topic, msgtype, offered)
                except InputError as exc:
                    self._warn(f"def:{topic}", f"not recording {topic}: {exc}")
                    continue
                if have is not None:
                    self.node.destroy_subscription(have[0])
                self.received.setdefault(topic, 0)
                sub = self.node.create_subscription(
                    cls, topic, self._callback(topic, msgtype in GAP_CHECKED_TYPES),
                    to_profile(spec, keep_all=True), raw=True, callback_group=self._group_msgs)
                self._subs[topic] = (sub, spec)
                self.node.get_logger().info(
                    f"recording {topic} [{msgtype}] "
                    f"({'reliable' if spec.reliable else 'best effort'}"
                    f"{', transient local' if spec.transient_local else ''})")

    def _check_gap(self, topic: str, data: bytes) -> None:
        from katazuke.ros.gaps import GapDetector

        try:
            stamp = header_stamp_ns(data) / 1e9
        except InputError:
            return
        n = self._gaps.setdefault(topic, GapDetector()).add(stamp)
        if not n:
            return
        self.lost[topic] = self.lost.get(topic, 0) + n
        now = time.monotonic()
        if now - self._lost_logged.get(topic, -1e9) >= 5.0:
            self._lost_logged[topic] = now
            self.node.get_logger().warning(
                f"{topic}: {n} frame(s) missing before stamp {stamp:.3f} s ({self.lost[topic]} "
                "in total): lost before the recorder received them (best-effort transport)")

    def _callback(self, topic: str, check_gaps: bool = False) -> Callable[[bytes, dict], None]:
        clock = self.node.get_clock()
        write = self.writer.write

        def on_message(data: bytes, info: dict) -> None:
            # Log time = when the middleware received the sample (like rosbag2), so the
            # stored timing does not depend on when Python got to run this callback;
            # under use_sim_time (/clock active) it is the node's ROS time.
            t = 0 if getattr(clock, "ros_time_is_active", False) else info.get("received_timestamp")
            write(topic, int(t) if t else clock.now().nanoseconds, data)
            self.received[topic] += 1
            if check_gaps:
                self._check_gap(topic, data)

        return on_message

    @property
    def subscribed(self) -> list[str]:
        return sorted(self._subs)

    def close(self) -> None:
        """Stop discovery and destroy the subscriptions (the writer is closed by its owner)."""
        self._closed = True
        self._timer.cancel()
        with self._lock:
            for sub, _ in self._subs.values():
                self.node.destroy_subscription(sub)
            self._subs.clear()


@dataclass
class PlayResult:
    """What a playback did."""

    published: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    clock_ticks: int = 0
    loops: int = 0
    timing: TimingStats = field(default_factory=TimingStats)
    publish_call_s: TimingStats = field(default_factory=TimingStats)
    #: deterministic replay: frames published, acknowledgements per ack topic, frames not
    #: acknowledged in time per ack topic, the acknowledging messages (topic ->
    #: [(header stamp ns, CDR bytes)], in arrival order), their types, wall time of the
    #: playback (s)
    frames: int = 0
    acked: dict[str, int] = field(default_factory=dict)
    ack_timeouts: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    output_types: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0


class Player:
    """Replay a :class:`Bag` on a node with its recorded timing.

    With ``deterministic.enabled`` the replay is lock-step with the consumers (module
    docstring); the node must then be spun by an executor while :meth:`play` runs (the
    acknowledgements arrive through it).

    Args:
        node: node that owns the publishers.
        bag: an open bag.
        config: playback options.
        definitions: ROS 2 definitions (needed to convert ROS 1 bags).
        deterministic: lock-step replay options (default: off).
    """

    def __init__(self, node: Node, bag: Bag, config: PlayConfig,
                 definitions: MessageDefinitions | None = None,
                 deterministic: DeterministicConfig | None = None) -> None:
        self.det = deterministic or DeterministicConfig()
        if not config.rate > 0:
            raise InputError(f"--rate must be > 0 (got {config.rate})")
        if self.det.enabled and config.rate != 1.0:
            raise InputError("--deterministic runs as fast as the consumers acknowledge; "
                             f"drop --rate (got {config.rate})")
        if self.det.enabled and config.loop:
            raise InputError("--deterministic cannot --loop: the consumers would see the "
                             "frame stamps go backwards; replay once per run")
        if config.start_offset_s < 0:
            raise InputError(f"--start-offset must be >= 0 (got {config.start_offset_s})")
        if config.clock_hz < 0:
            raise InputError(f"--clock rate must be > 0 Hz (got {config.clock_hz})")
        self.node = node
        self.bag = bag
        self.config = config
        self.definitions = definitions or MessageDefinitions()
        self.result = PlayResult()
        self._stop = threading.Event()
        log = node.get_logger()
        summary = bag.summary
        names = [t.name for t in summary.topics]
        selected = split_topics(config.topics) or names
        unknown = [t for t in selected if t not in names]
        if unknown:
            raise InputError(f"{summary.path}: has no topic(s) {', '.join(unknown)}; it has "
                             f"{', '.join(names) or 'none'}")
        if config.clock_hz > 0 and "/clock" in selected:
            # Two /clock sources would make time jump back and forth.
            selected = [t for t in selected if t != "/clock"]
            self.result.skipped["/clock"] = "the player publishes /clock itself (--clock)"
            log.info("not replaying the bag's /clock: --clock publishes the bag time")
        if self.det.enabled and self.det.frame_topic not in selected:
            raise InputError(f"--frame-topic {self.det.frame_topic} is not among the played "
                             f"topics ({', '.join(selected) or 'none'}); name the camera topic "
                             "the consumers process")
        bag.check_definitions(selected)
        self.publishers: dict[str, Any] = {}
        self.converters: dict[str, Callable[[bytes], bytes]] = {}
        for name in selected:
            t = bag.topic(name)
            cls = message_class(t.msgtype)
            reason = None
            if cls is None:
                reason = f"message type {t.msgtype} is not available here"
            elif bag.is_ros1:
                try:
                    self.converters[name] = bag.converter(name, self.definitions)
                except Exception as exc:  # no ROS 2 equivalent of the ROS 1 type
                    reason = f"cannot convert ROS 1 {t.msgtype} to ROS 2 ({exc})"
            if reason:
                self.result.skipped[name] = reason
                log.warning(f"skipping {name}: {reason}")
                continue
            spec = playback_for(name, t.qos, t.latched)
            if self.det.enabled:   # nothing lost in transport, nothing dropped from history
                spec = QosSpec(reliable=True, transient_local=spec.transient_local,
                               depth=max(10, spec.depth))
            self.publishers[name] = node.create_publisher(
                cls, name, to_profile(spec, keep_all=self.det.enabled))
            self.result.published[name] = 0
        self._clock_pub = None
        if config.clock_hz > 0:
            from rosgraph_msgs.msg import Clock

            from katazuke.ros.qos import CLOCK

            # best effort, depth 1: what rclpy/rclcpp time sources subscribe with
            self._clock_pub = node.create_publisher(Clock, "/clock", CLOCK)
            self._clock_cls = Clock
        self._acks = threading.Condition()
        self._late_in_a_row = 0
        self._seen: dict[str, set[int]] = {}
        self._ack_subs: dict[str, Any] = {}
        self.ack_topics = [a if a.startswith("/") else "/" + a
                           for a in split_topics(self.det.ack_topics)]
        if self.det.enabled and not self.ack_topics:
            raise InputError("--deterministic needs at least one ack topic (--ack-topics)")

    def stop(self) -> None:
        """Ask a running :meth:`play` to return (thread-safe)."""
        self._stop.set()
        with self._acks:
            self._acks.notify_all()

    def _events(self, start_ns: int | None,
                end_ns: int) -> tuple[int, Iterator[tuple[int, str | None, bytes | None]]]:
        """(anchor bag time, messages merged with /clock ticks in bag time).

        Without a start offset playback is anchored at the first message (not at the
        metadata's start time, which some bags get wrong).
        """
        msgs = iter(self.bag.messages(list(self.publishers), start_ns=start_ns))
        first = next(msgs, None)
        if first is None:
            return (start_ns or 0), iter(())
        anchor = first[1] if start_ns is None else min(start_ns, first[1])

        def merged() -> Iterator[tuple[int, str | None, bytes | None]]:
            stream = itertools.chain([first], msgs)
            if self._clock_pub is None:
                for topic, t, data in stream:
                    yield t, topic, data
                return
            step = int(round(1e9 * self.config.rate / self.config.clock_hz))
            tick = anchor
            last = anchor
            for topic, t, data in stream:
                while tick <= t:
                    yield tick, None, None
                    tick += step
                last = t
                yield t, topic, data
            while tick <= max(end_ns, last):
                yield tick, None, None
                tick += step

        return anchor, merged()

    def _clock_msg(self, t_ns: int) -> Any:
        msg = self._clock_cls()
        msg.clock.sec, msg.clock.nanosec = divmod(int(t_ns), 1_000_000_000)
        return msg

    def play(self) -> PlayResult:
        """Publish until the end of the bag (or forever with ``loop``); returns stats.

        The garbage collector is paused while playing (a collection of a large heap would
        delay a deadline by milliseconds); with ``realtime`` the calling thread runs under
        SCHED_FIFO for the duration.
        """
        if not self.publishers:
            return self.result
        policy = None
        if self.config.realtime:
            policy = (os.sched_getscheduler(0), os.sched_getparam(0))
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            except (PermissionError, OSError) as exc:
                raise InputError(f"--realtime: cannot switch to SCHED_FIFO ({exc}); run without "
                                 "--realtime or grant CAP_SYS_NICE") from None
        was_enabled = gc.isenabled()
        gc.disable()
        t0 = time.monotonic()
        try:
            result = self._play_lockstep() if self.det.enabled else self._play()
            self._drain()
            result.wall_s = time.monotonic() - t0
            return result
        finally:
            if was_enabled:
                gc.enable()
            if policy is not None:
                os.sched_setscheduler(0, policy[0], policy[1])

    def _drain(self, timeout_s: float = 5.0) -> None:
        """Wait until reliable subscribers acknowledged everything (the last messages
        would otherwise die with the process)."""
        from rclpy.duration import Duration

        deadline = time.monotonic() + timeout_s
        for pub in self.publishers.values():
            left = max(0.0, deadline - time.monotonic())
            pub.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9)))

    def _play(self) -> PlayResult:
        cfg = self.config
        if cfg.wait_for_subscribers_s > 0:
            deadline = time.monotonic() + cfg.wait_for_subscribers_s
            while (time.monotonic() < deadline and not self._stop.is_set()
                   and any(p.get_subscription_count() == 0 for p in self.publishers.values())):
                time.sleep(0.01)
        if cfg.delay_s > 0 and not wait_until(time.monotonic() + cfg.delay_s, 0.0, self._stop.is_set):
            return self.result
        summary = self.bag.summary
        start_ns = (summary.start_ns + int(round(cfg.start_offset_s * 1e9))
                    if cfg.start_offset_s > 0 else None)
        spin_s = cfg.spin_ms * 1e-3
        clock = PlaybackClock(0, cfg.rate)
        timing, call = self.result.timing, self.result.publish_call_s
        stop = self._stop.is_set
        while not stop():
            anchor, events = self._events(start_ns, summary.end_ns)
            clock.restart(anchor)
            for t, topic, data in events:
                # Everything that costs time (ROS 1 conversion, building /clock) happens
                # before the wait, so the deadline only pays for the publish call.
                if topic is None:
                    payload, pub = self._clock_msg(t), self._clock_pub
                else:
                    conv = self.converters.get(topic)
                    payload = conv(data) if conv is not None else data
                    pub = self.publishers[topic]
                due = clock.deadline(t)
                if not wait_until(due, spin_s, stop):
                    return self.result
                t_pub = time.monotonic()
                pub.publish(payload)
                if topic is None:
                    self.result.clock_ticks += 1
                    continue
                call.add(time.monotonic() - t_pub)
                timing.add(t_pub - due)
                self.result.published[topic] += 1
            self.result.loops += 1
            if not cfg.loop or not any(self.result.published.values()):
                break
        return self.result

    # ------------------------------------------------------------------ lock-step
    def _ack_callback(self, topic: str) -> Callable[[bytes], None]:
        def on_ack(data: bytes) -> None:
            try:
                stamp = header_stamp_ns(data)
            except InputError as exc:
                self.node.get_logger().warning(f"ack topic {topic}: {exc}; ignored")
                return
            with self._acks:
                self._seen.setdefault(topic, set()).add(stamp)
                self.result.outputs.setdefault(topic, []).append((stamp, bytes(data)))
                self._acks.notify_all()

        return on_ack

    def _subscribe_acks(self) -> list[str]:
        """Subscribe each ack topic once it has a publisher; returns the topics still
        without one."""
        missing = []
        names = dict(self.node.get_topic_names_and_types())
        for topic in self.ack_topics:
            if topic in self._ack_subs:
                continue
            pubs = self.node.get_publishers_info_by_topic(topic)
            if not pubs or not names.get(topic):
                missing.append(topic)
                continue
            msgtype = names[topic][0]
            cls = message_class(msgtype)
            if cls is None:
                raise InputError(f"ack topic {topic}: message type {msgtype} is not installed "
                                 "here")
            spec = subscription_for([to_spec(p.qos_profile) for p in pubs])
            self.result.output_types[topic] = msgtype
            self.result.outputs.setdefault(topic, [])
            self._ack_subs[topic] = self.node.create_subscription(
                cls, topic, self._ack_callback(topic), to_profile(spec, keep_all=True), raw=True)
        return missing

    def _consumers_missing(self) -> list[str]:
        """What the consumers still lack, in words (empty when playback may start)."""
        missing = [f"nobody publishes {t}" for t in self._subscribe_acks()]
        missing += [f"{t}: acknowledgement subscription not matched yet"
                    for t, sub in self._ack_subs.items() if sub.get_publisher_count() == 0]
        frame_pub = self.publishers[self.det.frame_topic]
        if frame_pub.get_subscription_count() == 0:
            missing.append(f"nobody subscribes {self.det.frame_topic}")
        for topic, pub in self.publishers.items():
            wanted = self.node.count_subscribers(topic)
            if pub.get_subscription_count() < wanted:
                missing.append(f"{topic}: {pub.get_subscription_count()} of {wanted} "
                               "subscribers matched")
        return missing

    def _await_consumers(self) -> bool:
        """Step 1 of the module docstring; False when stopped.

        Raises:
            InputError: the consumers did not appear within ``discovery_timeout_s``.
        """
        deadline = time.monotonic() + self.det.discovery_timeout_s
        ready_since = None
        while not self._stop.is_set():
            missing = self._consumers_missing()
            now = time.monotonic()
            if missing:
                ready_since = None
                if now > deadline:
                    raise InputError(
                        f"--deterministic: consumers not ready after "
                        f"{self.det.discovery_timeout_s:g} s: {'; '.join(missing)}. Start them "
                        "first (e.g. `katazuke launch launch/perception.launch.xml "
                        "deterministic:=true`) or fix --frame-topic / --ack-topics")
            elif ready_since is None:
                ready_since = now
            elif now - ready_since >= self.det.settle_s:
                break
            time.sleep(0.05)
        else:
            return False
        from rclpy.qos import ReliabilityPolicy as Rel

        lossy = [f"{s.node_namespace.rstrip('/')}/{s.node_name}"
                 for s in self.node.get_subscriptions_info_by_topic(self.det.frame_topic)
                 if s.qos_profile.reliability == Rel.BEST_EFFORT]
        if lossy:
            self.node.get_logger().warning(
                f"{', '.join(lossy)} subscribe(s) {self.det.frame_topic} best effort: not in "
                "deterministic mode (set deterministic_replay: true, launch arg "
                "deterministic:=true); the replay may not be repeatable")
        return True

    def _await_acks(self, stamp_ns: int) -> None:
        """Step 3: wait until every ack topic carried ``stamp_ns``; count the laggards."""
        deadline = time.monotonic() + self.det.ack_timeout_s
        with self._acks:
            while not self._stop.is_set():
                late = [t for t in self.ack_topics if stamp_ns not in self._seen.get(t, ())]
                left = deadline - time.monotonic()
                if not late or left <= 0:
                    break
                self._acks.wait(min(left, 0.5))
            else:
                return
            for t in self.ack_topics:
                seen = self._seen.get(t, set())
                if stamp_ns in seen:
                    self.result.acked[t] = self.result.acked.get(t, 0) + 1
                    seen.discard(stamp_ns)
        self._late_in_a_row = self._late_in_a_row + 1 if late else 0
        for t in late:
            self.result.ack_timeouts[t] = self.result.ack_timeouts.get(t, 0) + 1
            owners = [f"{p.node_namespace.rstrip('/')}/{p.node_name}"
                      for p in self.node.get_publishers_info_by_topic(t)]
            self.node.get_logger().warning(
                f"frame {stamp_ns / 1e9:.3f} s ({self.det.frame_topic}) not acknowledged on "
                f"{t} within {self.det.ack_timeout_s:g} s: its consumer "
                f"({', '.join(owners) or 'no publisher left'}) stalled or dropped the frame; "
                "going on with the next frame")
        if late and self.det.give_up_after and self._late_in_a_row >= self.det.give_up_after:
            raise InputError(f"--deterministic: {self._late_in_a_row} frames in a row not "
                             f"acknowledged on {', '.join(late)}; the consumer is down or not "
                             "in deterministic mode (see its log); replay stopped")

    def _play_lockstep(self) -> PlayResult:
        if not self._await_consumers():
            return self.result
        cfg, summary = self.config, self.bag.summary
        start_ns = (summary.start_ns + int(round(cfg.start_offset_s * 1e9))
                    if cfg.start_offset_s > 0 else None)
        frame_topic = self.det.frame_topic
        pending: int | None = None
        _, events = self._events(start_ns, summary.end_ns)
        for t, topic, data in events:
            if self._stop.is_set():
                return self.result
            if topic == frame_topic and pending is not None:
                self._await_acks(pending)
                pending = None
            if topic is None:
                self._clock_pub.publish(self._clock_msg(t))
                self.result.clock_ticks += 1
                continue
            conv = self.converters.get(topic)
            payload = conv(data) if conv is not None else data
            self.publishers[topic].publish(payload)
            self.result.published[topic] += 1
            if topic == frame_topic:
                pending = header_stamp_ns(payload)
                self.result.frames += 1
        if pending is not None and not self._stop.is_set():
            self._await_acks(pending)
        self.result.loops = 1
        return self.result


def play_bag(config: PlayConfig, det: DeterministicConfig, outputs: str = "", stats_json: str = "") -> int:
    """``katazuke bag play``: open the bag, play it with a :class:`Player` on a node of its
    own (SIGINT/SIGTERM stop it cleanly), print the summary and write ``outputs`` (the
    acknowledging messages of a deterministic replay, as a bag) and ``stats_json``.

    Args:
        config: a :class:`katazuke.bag.config.PlayConfig`.
        det: the deterministic (lock-step) settings; ``det.enabled`` false = timed replay.
        outputs: directory for the bag of acknowledgements ("" = none; needs ``det.enabled``).
        stats_json: path for per-topic counts and timing ("" = none).

    Returns:
        The exit status: 1 when a frame was not acknowledged in time, else 0.
    """
    import json
    import signal
    import sys

    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from katazuke.bag.reader import open_bag

    if outputs and not det.enabled:
        raise InputError("--outputs needs --deterministic (the outputs are the acknowledgements)")
    with open_bag(config.bag) as bag:
        if bag.summary.recovery:
            print(f"note: {bag.summary.recovery}", file=sys.stderr)
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        node = rclpy.create_node("katazuke_bag_player")
        spinner = None
        try:
            player = Player(node, bag, config, deterministic=det)
            if det.enabled:   # the acknowledgements arrive through the executor
                spinner = _Spinner(node)

            def on_signal(signum: int, frame: object) -> None:
                del signum, frame
                player.stop()

            signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)
            if not player.publishers:
                print("nothing to play: none of the selected topics has a message type available "
                      "here", file=sys.stderr)
            result = player.play()
        finally:
            if spinner is not None:
                spinner.stop()
            node.destroy_node()
            rclpy.try_shutdown()
    t = result.timing.summary_ms()
    n = sum(result.published.values())
    print(f"published {n} messages on {len(result.published)} topics"
          + (f", {result.clock_ticks} /clock ticks" if result.clock_ticks else "")
          + (f"; publish-time error median {t['median_ms']:.3f} ms, p99 {t['p99_ms']:.3f} ms"
             if n and not det.enabled else ""))
    late = sum(result.ack_timeouts.values())
    if det.enabled:
        print(f"deterministic: {result.frames} frames on {det.frame_topic}; acknowledged "
              + ", ".join(f"{k} {v}" for k, v in sorted(result.acked.items()))
              + (f"; NOT acknowledged in time: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(result.ack_timeouts.items()))
                 if late else "") + f"; {result.wall_s:.1f} s wall")
    if outputs:
        _write_outputs(outputs, result)
    if stats_json:
        with open(stats_json, "w", encoding="utf-8") as fh:
            json.dump({"published": result.published, "skipped": result.skipped,
                       "clock_ticks": result.clock_ticks, "loops": result.loops, "timing": t,
                       "publish_call": result.publish_call_s.summary_ms(),
                       "frames": result.frames, "acked": result.acked,
                       "ack_timeouts": result.ack_timeouts, "wall_s": result.wall_s},
                      fh, indent=2)
    return 1 if late else 0


class _Spinner:
    """Spin ``node`` on a background thread until :meth:`stop`."""

    def __init__(self, node) -> None:
        import threading

        from rclpy.executors import SingleThreadedExecutor

        self._executor = SingleThreadedExecutor(context=node.context)
        self._executor.add_node(node)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bag-play-spin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            self._executor.spin_once(timeout_sec=0.1)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5.0)
        self._executor.shutdown()


def _write_outputs(path: str, result) -> None:
    """The acknowledging messages into a new bag, logged at their header stamps."""
    from katazuke.bag.writer import BagWriter

    writer = BagWriter(path)
    try:
        for topic, msgs in sorted(result.outputs.items()):
            writer.add_topic(topic, result.output_types[topic])
            for stamp, data in msgs:
                writer.write(topic, stamp, data)
    finally:
        writer.close()
    print(f"outputs: {sum(len(m) for m in result.outputs.values())} messages -> {path}")
