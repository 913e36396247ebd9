"""Command inputs taken once per control tick: a command flood is dropped inside DDS.

A node that runs a control loop (the sim bridge, the controller) only ever uses the
newest command of each topic. Giving every arriving message its own executor callback
lets a flood (tens of thousands of messages per second, even malformed ones that are
rejected at once) cost a Python deserialisation and a callback each, and starve the
loop. :class:`CommandInputs` instead subscribes with a KEEP_LAST 1 history
(``qos.COMMAND``) in a callback group that no executor ever waits on, and
:meth:`CommandInputs.poll` takes at most one message per topic per tick: every message
superseded in between is overwritten in the DDS reader history without Python ever
seeing it.

Semantics (the contract of every command topic of these nodes):
    * a command that arrives is applied at the next tick (latency at most one tick);
    * a one-shot command (a gripper or arm goal) that arrives alone stays in the
      history until the tick takes it, so it is never lost;
    * of several commands on one topic within one tick only the newest is applied: the
      older ones are superseded *intentionally* (they are counted, see below).

Superseded messages are counted per topic from the gaps in the publisher's sequence
numbers (``publication_sequence_number`` of the message info; exact for one publisher
per topic, an estimate with several, 0 where the RMW does not report them; the messages
of a publisher superseded before the first one taken from it are not counted: with a
volatile history they may have been published before this node subscribed) and a
warning with the counts is logged at most once per period when a topic carries more
than one message per tick on average.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile

__all__ = ["CommandInputs", "InputCounts", "SequenceGaps", "Throttle"]

#: publisher sequence-number streams remembered per topic (several publishers)
_MAX_STREAMS = 8


class Throttle:
    """Log each kind of problem at most once per ``period`` wall seconds, counting repeats.

    Args:
        warn: logs one warning line (e.g. ``node.get_logger().warning``).
        period: seconds between two lines of one kind (wall clock).
    """

    def __init__(self, warn: Callable[[str], Any], period: float) -> None:
        self._warn, self._period = warn, period
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, kind: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -math.inf) >= self._period:
            n = self._suppressed.pop(kind, 0)
            extra = f" ({n} more like this suppressed)" if n else ""
            self._warn(text + extra)
            self._last[kind] = now
        else:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1


class _NeverExecuted(CallbackGroup):
    """A callback group no executor adds to its wait set: its subscriptions are taken by
    hand (:meth:`CommandInputs.poll`), never by a callback per message."""

    def can_execute(self, entity: Any) -> bool:
        return False

    def beginning_execution(self, entity: Any) -> bool:
        return False

    def ending_execution(self, entity: Any) -> None:
        pass


@dataclass
class InputCounts:
    """Per-topic counts of a :class:`CommandInputs` topic since the node started.

    Attributes:
        taken: messages taken by a tick and handed to the handler.
        superseded: messages overwritten in the KEEP_LAST 1 history before a tick took them.
    """

    taken: int = 0
    superseded: int = 0


class SequenceGaps:
    """Messages skipped between two taken ones, from the publishers' sequence numbers.

    The message info does not identify the publisher, so each sequence number continues
    the stream whose newest number is the closest below it; a new publisher (or one that
    restarted) starts a stream of its own, counted from its first number taken. Exact for
    one publisher per topic; with several whose numbers interleave closely, an estimate.
    """

    def __init__(self) -> None:
        self._streams: list[int] = []         # newest sequence number per stream

    def add(self, seq: int | None) -> int:
        """Account for taken message number ``seq``; returns how many were skipped before
        it (0 for an unknown number, None or <= 0, and for a new stream)."""
        if seq is None or seq <= 0:
            return 0
        below = [i for i, s in enumerate(self._streams) if s < seq]
        if not below:
            self._streams.append(seq)
            if len(self._streams) > _MAX_STREAMS:
                self._streams.pop(0)
            return 0
        i = max(below, key=lambda j: self._streams[j])
        gap = seq - self._streams[i] - 1
        self._streams[i] = seq
        return gap


class _Polled:
    """One polled subscription: its handler, counts and publisher sequence streams."""

    def __init__(self, sub: Any, handler: Callable[[Any], Any]) -> None:
        self.sub, self.handler = sub, handler
        self.counts = InputCounts()
        self.window = InputCounts()           # counts at the start of the warning window
        self.failed = 0                       # messages whose handler raised
        self.gaps = SequenceGaps()

    def take(self) -> Any | None:
        with self.sub.handle:
            got = self.sub.handle.take_message(self.sub.msg_type, self.sub.raw)
        if got is None:
            return None
        msg, info = got
        self.counts.taken += 1
        self.counts.superseded += self.gaps.add(
            info.get("publication_sequence_number") if isinstance(info, dict) else None)
        return msg


class CommandInputs:
    """The command subscriptions of one node, each taken at most once per tick.

    Args:
        node: the node that owns the subscriptions.
        tick_hz: the rate :meth:`poll` is called at (Hz; only for the warning text).
        log_period_s: a flood warning of one topic is logged at most once per this (wall s).
        warn: logs one warning line; default the node's logger.
    """

    def __init__(self, node: Node, tick_hz: float, log_period_s: float,
                 warn: Callable[[str], Any] | None = None) -> None:
        self._node = node
        self._tick_hz = tick_hz
        self._period = log_period_s
        self._warn = warn or node.get_logger().warning
        self._group = _NeverExecuted()
        self._errors = Throttle(node.get_logger().error, log_period_s)
        self._inputs: dict[str, _Polled] = {}
        self._window_start = time.monotonic()

    def add(self, msg_type: Any, topic: str, handler: Callable[[Any], Any],
            qos_profile: QoSProfile) -> None:
        """Subscribe ``topic``; :meth:`poll` hands its newest message to ``handler``.

        Raises:
            ValueError: ``qos_profile`` is not KEEP_LAST 1 (a deeper history would queue
                a flood instead of dropping it), or ``topic`` is already added.
        """
        from rclpy.qos import HistoryPolicy

        if qos_profile.history != HistoryPolicy.KEEP_LAST or qos_profile.depth != 1:
            raise ValueError(f"command input {topic!r} needs a KEEP_LAST 1 QoS profile "
                             f"(qos.COMMAND), got {qos_profile.history.name} "
                             f"depth {qos_profile.depth}")
        if topic in self._inputs:
            raise ValueError(f"command input {topic!r} added twice")
        # The executor never calls this callback (the group is never executed): poll()
        # takes the message itself.
        sub = self._node.create_subscription(msg_type, topic, handler, qos_profile,
                                             callback_group=self._group)
        self._inputs[topic] = _Polled(sub, handler)

    def poll(self) -> int:
        """Take the newest message of every topic (if any) and run its handler.

        Call once per control tick, from the thread that runs the loop. Returns the
        number of messages handled. A handler that raises drops its message with a logged
        error (rate-limited per topic, counted in :attr:`failed`); the loop goes on.
        """
        n = 0
        for topic, polled in self._inputs.items():
            msg = polled.take()
            if msg is None:
                continue
            n += 1
            try:
                polled.handler(msg)
            except Exception as exc:  # a bad message must not stop the control loop
                polled.failed += 1
                self._errors.warn(topic, f"command on {polled.sub.topic_name} dropped: its "
                                         f"handler failed with {exc!r} ({polled.failed} so far)")
        now = time.monotonic()
        if now - self._window_start >= self._period:
            self._warn_floods(now - self._window_start)
            self._window_start = now
        return n

    def _warn_floods(self, window_s: float) -> None:
        for topic, p in self._inputs.items():
            superseded = p.counts.superseded - p.window.superseded
            taken = p.counts.taken - p.window.taken
            p.window = InputCounts(p.counts.taken, p.counts.superseded)
            if superseded > taken:  # more than one message per tick on average
                rate = (superseded + taken) / max(window_s, 1e-9)
                self._warn(
                    f"command flood on {p.sub.topic_name}: {superseded} message(s) superseded "
                    f"in the last {window_s:.1f} s (~{rate:.0f}/s arriving; {taken} taken, "
                    f"at most one per {self._tick_hz:g} Hz tick; only the newest is applied); "
                    f"{p.counts.superseded} superseded in total")

    def counts(self) -> dict[str, InputCounts]:
        """Counts since the start, by topic name as added (a copy)."""
        return {t: InputCounts(p.counts.taken, p.counts.superseded)
                for t, p in self._inputs.items()}

    @property
    def failed(self) -> dict[str, int]:
        """Messages whose handler raised (dropped), by topic name as added."""
        return {t: p.failed for t, p in self._inputs.items()}

    @property
    def superseded(self) -> dict[str, int]:
        """Messages superseded before a tick took them, by topic name as added."""
        return {t: p.counts.superseded for t, p in self._inputs.items()}
