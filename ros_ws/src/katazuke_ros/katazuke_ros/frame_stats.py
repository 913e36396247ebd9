"""Frame accounting for sensor nodes: every frame lost in a node is counted, logged and
reported on ``diagnostics`` (diagnostic_msgs/DiagnosticArray), never silent.

A node owns one :class:`FrameStats` and calls :meth:`FrameStats.drop` with a reason key
whenever a frame is thrown away, :meth:`FrameStats.degrade` when a frame was processed
without an input it needed (no transform, no depth view), :meth:`FrameStats.processed` for
each frame it finished, and :meth:`FrameStats.received` on each camera message so gaps in
the stamps reveal frames lost before the node saw them (transport).

Transport loss is :class:`katazuke.ros.gaps.GapDetector`'s heuristic: a stamp difference
larger than 1.5 nominal periods (the smallest recent difference) counts the frames that
should have been in between.

Reporting: the first drop of each reason is logged at once, later ones at most every
``log_period_s`` (wall time) with the running total; the ``diagnostics`` status
``"<node>: frames"`` is published every ``diag_period_s`` (steady clock, so it also runs
while a replay holds ``/clock``) with ``level`` WARN when frames were dropped since the
previous status, else OK, and one ``KeyValue`` per counter (``received_<stream>``,
``processed``, ``dropped_<reason>``, ``dropped_total``, ``degraded_<reason>``,
``degraded_total``).
"""
from __future__ import annotations

import threading
import time

from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from katazuke.ros.gaps import GapDetector

__all__ = ["FrameStats", "GapDetector"]


class FrameStats:
    """Per-node frame counters with throttled logging and periodic diagnostics.

    Thread-safe (inference threads and executor callbacks both report).

    Args:
        node: the node that logs and publishes.
        name: status name suffix (``"<node name>: <name>"``).
        log_period_s: s (wall); minimum time between two log lines of one reason.
        diag_period_s: s (steady clock); period of the ``diagnostics`` status; 0 = do not
            publish (counters and logs only).
    """

    def __init__(self, node: Node, name: str = "frames", log_period_s: float = 5.0,
                 diag_period_s: float = 1.0) -> None:
        self._node = node
        self.name = f"{node.get_name()}: {name}"
        self.log_period_s = log_period_s
        self.received_count: dict[str, int] = {}
        self.processed_count = 0
        self.dropped: dict[str, int] = {}
        self.degraded: dict[str, int] = {}
        self._logged: dict[str, tuple[float, int]] = {}   # reason -> (time, count at log)
        self._gaps: dict[str, GapDetector] = {}
        self._lock = threading.Lock()
        self._problems_at_last_status = 0
        self._pub = None
        if diag_period_s > 0:
            from diagnostic_msgs.msg import DiagnosticArray

            from katazuke.ros.qos import EVENTS

            self._pub = node.create_publisher(DiagnosticArray, "diagnostics", EVENTS)
            self._timer = node.create_timer(diag_period_s, self.publish,
                                            clock=Clock(clock_type=ClockType.STEADY_TIME))

    @property
    def dropped_total(self) -> int:
        with self._lock:
            return sum(self.dropped.values())

    def sync_unmatched(self, streams: list[str], counts: list[int]) -> None:
        """Report the growth of an :class:`ApproximateTimeSync`'s ``unmatched`` counters."""
        for name, n in zip(streams, counts):
            new = n - self.dropped.get(f"unmatched_{name}", 0)
            if new > 0:
                self.drop(f"unmatched_{name}", new, f"{name} messages never paired "
                          "with the other camera streams (partner lost or out of the slop)")

    def received(self, stream: str, stamp_s: float, detect_gaps: bool = True) -> int:
        """A frame of ``stream`` arrived; with ``detect_gaps`` counts the frames missing
        before it (:class:`GapDetector`) as ``lost_in_transport_<stream>``. Returns that
        number."""
        with self._lock:
            self.received_count[stream] = self.received_count.get(stream, 0) + 1
            if not detect_gaps:
                return 0
            gap = self._gaps.setdefault(stream, GapDetector())
            lost = gap.add(stamp_s)
            period = gap.period
        if lost:
            self.drop(f"lost_in_transport_{stream}", lost,
                      f"{stream}: {lost} frame(s) missing before stamp {stamp_s:.3f} s "
                      f"(nominal period {period * 1e3:.1f} ms)")
        return lost

    def processed(self, n: int = 1) -> None:
        with self._lock:
            self.processed_count += n

    def drop(self, reason: str, n: int = 1, detail: str = "") -> None:
        """Count ``n`` frames lost for ``reason`` (a short snake_case key); log throttled."""
        self._count(self.dropped, "dropped", reason, n, detail)

    def degrade(self, reason: str, n: int = 1, detail: str = "") -> None:
        """Count ``n`` frames processed without an input they needed; log throttled."""
        self._count(self.degraded, "degraded", reason, n, detail)

    def _count(self, table: dict[str, int], what: str, reason: str, n: int, detail: str) -> None:
        now = time.monotonic()
        key = f"{what}:{reason}"
        with self._lock:
            total = table.get(reason, 0) + n
            table[reason] = total
            last = self._logged.get(key)
            if last is not None and now - last[0] < self.log_period_s:
                return
            since = total - (last[1] if last else 0)
            self._logged[key] = (now, total)
        self._node.get_logger().warning(
            f"{what} {since} frame(s) ({reason}; {total} in total)"
            + (f": {detail}" if detail else ""))

    def values(self) -> dict[str, int]:
        """Every counter by name (what the diagnostics status carries)."""
        with self._lock:
            out = {f"received_{k}": v for k, v in sorted(self.received_count.items())}
            out["processed"] = self.processed_count
            out.update({f"dropped_{k}": v for k, v in sorted(self.dropped.items())})
            out["dropped_total"] = sum(self.dropped.values())
            out.update({f"degraded_{k}": v for k, v in sorted(self.degraded.items())})
            out["degraded_total"] = sum(self.degraded.values())
        return out

    def status(self):
        """``diagnostic_msgs/DiagnosticStatus`` of the counters (WARN when frames were
        dropped or degraded since the previous status)."""
        from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

        vals = self.values()
        problems = vals["dropped_total"] + vals["degraded_total"]
        new = problems - self._problems_at_last_status
        self._problems_at_last_status = problems
        s = DiagnosticStatus()
        s.name = self.name
        s.hardware_id = self._node.get_fully_qualified_name()
        s.level = DiagnosticStatus.WARN if new > 0 else DiagnosticStatus.OK
        s.message = (f"{new} frame(s) dropped or degraded since the last status" if new > 0
                     else "no frames dropped since the last status")
        s.values = [KeyValue(key=k, value=str(v)) for k, v in vals.items()]
        return s

    def publish(self) -> None:
        """Publish one ``diagnostics`` status now (the timer calls this)."""
        if self._pub is None:
            return
        from katazuke.ros.conversions import diagnostic_array_msg

        self._pub.publish(diagnostic_array_msg([self.status()], self._node.get_clock().now().to_msg()))
