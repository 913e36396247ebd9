"""Frames missing from a stream, from gaps in its stamps (no ROS imports).

Heuristic: the nominal period of a stream is the smallest positive stamp difference among
the last ``window`` consecutive frames (robust to drops: one pair of consecutive frames in
the window is enough, while a median would drift to 2 periods when every other frame is
lost). A difference larger than ``factor`` (1.5) nominal periods counts
``round(dt / period) - 1`` frames as lost. A stamp that goes backwards (a bag restarting,
a simulator reset) restarts the estimate and counts nothing; equal stamps count nothing.
"""
from __future__ import annotations

from collections import deque

__all__ = ["GapDetector"]


class GapDetector:
    """Counts frames missing from a stream from gaps in its stamps (see module docstring).

    Args:
        window: number of recent stamp differences the nominal period is estimated from.
        factor: a difference above ``factor`` nominal periods is a gap.
    """

    def __init__(self, window: int = 50, factor: float = 1.5) -> None:
        self.factor = factor
        self._diffs: deque[float] = deque(maxlen=window)
        self._last: float | None = None

    @property
    def period(self) -> float | None:
        """s; the current nominal period estimate, or None before two frames."""
        return min(self._diffs) if self._diffs else None

    def add(self, stamp_s: float) -> int:
        """Register a frame stamped ``stamp_s`` (s); returns the frames missing before it."""
        last, self._last = self._last, stamp_s
        if last is None:
            return 0
        dt = stamp_s - last
        if dt < 0:
            self._diffs.clear()  # stream restarted
            return 0
        if dt == 0:
            return 0
        period = self.period
        self._diffs.append(dt)
        if period is None or dt <= self.factor * period:
            return 0
        return max(0, int(round(dt / period)) - 1)
