"""Message synchronisation for sensor nodes (no message_filters on PyPI): an approximate-time
synchroniser by header stamp. Image <-> numpy conversion is :mod:`katazuke.ros.conversions`."""
from __future__ import annotations

import threading
from collections import deque

import numpy as np

__all__ = ["ApproximateTimeSync"]


class ApproximateTimeSync:
    """Pairs the newest messages of several streams whose stamps agree within ``slop``.

    ``add(i, stamp, msg)`` returns the matched tuple (one message per stream, newest first
    preference) when stream ``i``'s new message completes a set, else None. Each stream keeps
    only ``depth`` recent messages, so nothing queues up behind a slow consumer.

    ``unmatched[i]`` counts the messages of stream ``i`` that left the queue without ever
    being part of a matched set (their partner never came, or came too late): frames the
    node lost, for its diagnostics.
    """

    def __init__(self, n_streams: int, slop: float, depth: int = 5) -> None:
        self.slop = slop
        self._q = [deque(maxlen=depth) for _ in range(n_streams)]
        self._used: list[set[int]] = [set() for _ in range(n_streams)]  # id()s matched
        self.unmatched = [0] * n_streams
        self._last_matched = -np.inf
        self._lock = threading.Lock()

    def add(self, stream: int, stamp: float, msg) -> tuple | None:
        with self._lock:
            q = self._q[stream]
            if len(q) == q.maxlen:
                old = q[0][1]
                if id(old) in self._used[stream]:
                    self._used[stream].discard(id(old))
                else:
                    self.unmatched[stream] += 1
            q.append((stamp, msg))
            best = None
            for t0, m0 in reversed(self._q[stream]):
                picks = []
                for j, q in enumerate(self._q):
                    if j == stream:
                        picks.append((t0, m0))
                        continue
                    cands = [(abs(t - t0), t, m) for t, m in q]
                    if not cands:
                        return None
                    d, t, m = min(cands, key=lambda c: c[0])
                    if d > self.slop:
                        break
                    picks.append((t, m))
                else:
                    best = picks
                    break
            if best is None:
                return None
            stamp_ref = max(t for t, _ in best)
            if stamp_ref <= self._last_matched:
                return None
            self._last_matched = stamp_ref
            for j, (_, m) in enumerate(best):
                self._used[j].add(id(m))
            return tuple(m for _, m in best)
