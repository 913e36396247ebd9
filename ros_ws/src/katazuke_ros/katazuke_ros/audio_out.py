"""Paced audio output shared by the nodes that publish sound (file player, text-to-speech).

:class:`PacedAudio` holds a queue of clips (16 kHz mono float32) and, at each tick of a
node's clock, hands out the ``AudioData`` chunks whose first sample is due, so the samples out
are ``elapsed clock time x 16000`` whatever the timer's jitter; a clip that follows another
starts where the previous one ended on the clock. Sim time pauses it with the simulator.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from katazuke.perception.speech import SAMPLE_RATE, float_to_pcm16
from katazuke_interfaces.msg import AudioData
from katazuke_ros.node_utils import sec_to_stamp

__all__ = ["PacedAudio", "Clip"]


@dataclass
class Clip:
    """One queued sound: ``samples`` (n,) float32 at 16 kHz, a ``name`` for logs."""

    name: str
    samples: np.ndarray


class PacedAudio:
    """A queue of clips turned into clock-paced ``AudioData`` chunks.

    Args:
        chunk_ms: ms of audio per message.
        trailing_silence_s: s of silence appended to every clip (a VAD downstream sees its end).
        frame_id: ``header.frame_id`` of the chunks.
    """

    def __init__(self, chunk_ms: float, trailing_silence_s: float = 0.0,
                 frame_id: str = "") -> None:
        self._chunk = max(1, int(round(chunk_ms * SAMPLE_RATE / 1000.0)))
        self._pad = int(round(trailing_silence_s * SAMPLE_RATE))
        self._frame_id = frame_id
        self._lock = threading.Lock()
        self._queue: deque[Clip] = deque()
        self._current: np.ndarray | None = None
        self.current_name = ""
        self._pos = 0
        self._t_start: float | None = None
        self.samples_published = 0

    def enqueue(self, clip: Clip) -> None:
        """Queue ``clip`` behind what is playing (thread-safe)."""
        with self._lock:
            self._queue.append(clip)

    @property
    def queued(self) -> int:
        """Clips waiting, not counting the one playing."""
        with self._lock:
            return len(self._queue)

    @property
    def busy(self) -> bool:
        """A clip is playing or waiting."""
        return self._current is not None or self.queued > 0

    def clear(self) -> None:
        """Drop the clip playing and every queued one (e.g. "stop")."""
        with self._lock:
            self._queue.clear()
        self._current = None

    def _next(self, now: float) -> bool:
        with self._lock:
            if not self._queue:
                return False
            clip = self._queue.popleft()
        self._current = np.concatenate([clip.samples.astype(np.float32),
                                        np.zeros(self._pad, np.float32)])
        self.current_name = clip.name
        self._pos = 0
        self._t_start = now
        return True

    def tick(self, now: float) -> tuple[list[AudioData], list[str]]:
        """The chunks due by clock time ``now``, and the names of the clips started.

        Args:
            now: the node's clock, s.

        Returns:
            ``(messages, started)``: ``AudioData`` to publish in order (stamp = clock time of
            the first sample), and the clips that began in this tick (for logs).
        """
        out: list[AudioData] = []
        started: list[str] = []
        while True:
            if self._current is None:
                if not self._next(now):
                    return out, started
                started.append(self.current_name)
            assert self._current is not None and self._t_start is not None
            while self._pos < self._current.size:
                t_chunk = self._t_start + self._pos / SAMPLE_RATE
                if t_chunk > now:
                    return out, started
                part = self._current[self._pos:self._pos + self._chunk]
                msg = AudioData()
                msg.header.stamp = sec_to_stamp(t_chunk)
                msg.header.frame_id = self._frame_id
                msg.sample_rate = SAMPLE_RATE
                msg.channels = 1
                msg.data = float_to_pcm16(part)
                out.append(msg)
                self._pos += part.size
                self.samples_published += part.size
            # Done; the next clip starts where this one ended on the clock.
            end = self._t_start + self._current.size / SAMPLE_RATE
            self._current = None
            if not self._next(end):
                return out, started
            started.append(self.current_name)
