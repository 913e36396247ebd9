"""Playback scheduling: bag time -> monotonic deadlines, precise waits, timing stats.

A message recorded at bag time ``t`` (ns) is due at monotonic time
``t0_mono + (t - t0_bag) / rate``. :func:`wait_until` sleeps until shortly before the
deadline (the OS wakes a sleeper late by up to a few ms under load) and spin-waits the
rest, so publish times land within tens of microseconds of the deadline on an idle core.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from katazuke.errors import InputError

__all__ = ["PlaybackClock", "TimingStats", "wait_until"]


class PlaybackClock:
    """Maps bag timestamps to monotonic deadlines.

    Args:
        bag_start_ns: bag time (ns) that corresponds to ``mono_start`` (the first message
            played, i.e. bag start + start offset).
        rate: playback speed factor (> 0); 2.0 plays twice as fast.
        mono_start: monotonic time (s) at which ``bag_start_ns`` is due (default: now).
    """

    def __init__(self, bag_start_ns: int, rate: float = 1.0, mono_start: float | None = None,
                 now: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise InputError(f"rate must be > 0 (got {rate})")
        self.bag_start_ns = int(bag_start_ns)
        self.rate = float(rate)
        self._now = now
        self.mono_start = now() if mono_start is None else float(mono_start)

    def deadline(self, t_ns: int) -> float:
        """Monotonic time (s) at which the message stamped ``t_ns`` is due."""
        return self.mono_start + (int(t_ns) - self.bag_start_ns) * 1e-9 / self.rate

    def bag_time_ns(self, mono: float | None = None) -> int:
        """Bag time (ns) at monotonic time ``mono`` (default: now), for /clock."""
        m = self._now() if mono is None else mono
        return self.bag_start_ns + int(round((m - self.mono_start) * self.rate * 1e9))

    def restart(self, bag_start_ns: int, mono_start: float | None = None) -> None:
        """Re-anchor (next loop iteration)."""
        self.bag_start_ns = int(bag_start_ns)
        self.mono_start = self._now() if mono_start is None else float(mono_start)


def wait_until(deadline: float, spin_s: float = 0.002,
               should_stop: Callable[[], bool] | None = None, max_sleep_s: float = 0.1) -> bool:
    """Block until monotonic time ``deadline`` (s): sleep, then spin the last ``spin_s``.

    Args:
        deadline: monotonic seconds.
        spin_s: busy-wait window before the deadline (s).
        should_stop: polled at least every ``max_sleep_s``; returning True aborts.

    Returns:
        False when aborted by ``should_stop``, else True.
    """
    while True:
        remaining = deadline - time.monotonic()
        if should_stop is not None and should_stop():
            return False
        if remaining <= spin_s:
            break
        time.sleep(min(remaining - spin_s, max_sleep_s))
    while time.monotonic() < deadline:
        pass
    return True


@dataclass
class TimingStats:
    """Publish-time errors (actual - scheduled) of a playback, seconds."""

    errors_s: list[float] = field(default_factory=list)

    def add(self, error_s: float) -> None:
        self.errors_s.append(float(error_s))

    def summary_ms(self) -> dict[str, float]:
        """count, median, p99, max of |error| in ms (NaN when empty)."""
        if not self.errors_s:
            return {"count": 0, "median_ms": float("nan"), "p99_ms": float("nan"),
                    "max_ms": float("nan")}
        e = np.abs(np.asarray(self.errors_s)) * 1e3
        return {"count": int(e.size), "median_ms": float(np.median(e)),
                "p99_ms": float(np.percentile(e, 99)), "max_ms": float(e.max())}
