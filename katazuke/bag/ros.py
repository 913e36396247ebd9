"""rclpy side of the bag tools: :class:`Recorder` and :class:`Player`.

Both attach to an existing node, so the CLI (a plain node) and the launchable
``bag_recorder`` / ``bag_player`` nodes share the same code. Messages travel as
serialized CDR bytes (``raw=True`` subscriptions, ``publish(bytes)``), so any type whose
Python class is installed can be recorded and replayed without deserializing it.
"""
from __future__ import annotations

import gc
import importlib
import itertools
import os
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
from katazuke.bag.reader import Bag
from katazuke.bag.schedule import PlaybackClock, TimingStats, wait_until
from katazuke.bag.writer import BagWriter
from katazuke.errors import InputError

__all__ = ["Recorder", "Player", "PlayResult", "message_class", "to_profile", "to_spec"]


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
                    cls, topic, self._callback(topic), to_profile(spec, keep_all=True), raw=True,
                    callback_group=self._group_msgs)
                self._subs[topic] = (sub, spec)
                self.node.get_logger().info(
                    f"recording {topic} [{msgtype}] "
                    f"({'reliable' if spec.reliable else 'best effort'}"
                    f"{', transient local' if spec.transient_local else ''})")

    def _callback(self, topic: str) -> Callable[[bytes, dict], None]:
        clock = self.node.get_clock()
        write = self.writer.write

        def on_message(data: bytes, info: dict) -> None:
            # Log time = when the middleware received the sample (like rosbag2), so the
            # stored timing does not depend on when Python got to run this callback;
            # under use_sim_time (/clock active) it is the node's ROS time.
            t = 0 if getattr(clock, "ros_time_is_active", False) else info.get("received_timestamp")
            write(topic, int(t) if t else clock.now().nanoseconds, data)
            self.received[topic] += 1

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


class Player:
    """Replay a :class:`Bag` on a node with its recorded timing.

    Args:
        node: node that owns the publishers.
        bag: an open bag.
        config: playback options.
        definitions: ROS 2 definitions (needed to convert ROS 1 bags).
    """

    def __init__(self, node: Node, bag: Bag, config: PlayConfig,
                 definitions: MessageDefinitions | None = None) -> None:
        if not config.rate > 0:
            raise InputError(f"--rate must be > 0 (got {config.rate})")
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
            self.publishers[name] = node.create_publisher(cls, name, to_profile(spec))
            self.result.published[name] = 0
        self._clock_pub = None
        if config.clock_hz > 0:
            from rosgraph_msgs.msg import Clock

            from katazuke.ros.qos import CLOCK

            # best effort, depth 1: what rclpy/rclcpp time sources subscribe with
            self._clock_pub = node.create_publisher(Clock, "/clock", CLOCK)
            self._clock_cls = Clock

    def stop(self) -> None:
        """Ask a running :meth:`play` to return (thread-safe)."""
        self._stop.set()

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
        try:
            result = self._play()
            self._drain()
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
