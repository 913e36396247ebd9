"""tts: the robot's voice — ``say`` text -> espeak-ng -> ``AudioData``, with ``speaking`` for the mute.

Subscribes ``say`` (std_msgs/String, EVENTS): questions, confirmations and "where is"
answers from the grounding node and the task manager. Each text is synthesised with Debian's
``espeak-ng`` (:func:`katazuke.perception.speech.synthesize`) on a worker thread and played,
one after another, paced on the node's clock (sim time under ``use_sim_time``):

* ``speaker/audio`` (AudioData, STATE QoS: reliable): the voice, 16 kHz mono PCM16, so it is
  recorded in bags. In the simulator the launch file remaps it onto the microphone topic
  ``audio`` (``voice_echo:=true``): the robot hears itself, as a real microphone would, and
  the recogniser's mute is what keeps its own words from becoming commands.
* ``speaking`` (std_msgs/Bool, LATCHED): true from ``lead_s`` before the first sample until
  the last sample has played; the ``asr`` node mutes its input while it is true (and for its
  ``unmute_delay_s`` after).
* With ``play: true`` the voice also goes to a PortAudio output device (``sounddevice``); a
  machine without one stops the node at start with an error naming the fix
  (``play:=false``).

Parameters: :class:`TtsNodeConfig`. espeak-ng missing is a start-up error naming the apt
package; a text espeak-ng cannot speak is logged and skipped.
"""
from __future__ import annotations

import queue
import threading

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Bool, String

from katazuke.config import dataclass as kdataclass
from katazuke.config import field as kfield
from katazuke.config import in_range
from katazuke.errors import KatazukeError
from katazuke.perception.speech import SAMPLE_RATE, synthesize, to_mono_16k
from katazuke_interfaces.msg import AudioData
from katazuke_ros import qos
from katazuke_ros.audio_out import Clip, PacedAudio
from katazuke_ros.node_utils import declare_config, run_node, stamp_to_sec

__all__ = ["TtsNode", "TtsNodeConfig", "main"]


@kdataclass(frozen=True)
class TtsNodeConfig:
    """Parameters of the text-to-speech node."""

    voice: str = kfield(default="en-us", metadata={
        "help": "espeak-ng voice (`espeak-ng --voices=en` lists them)"})
    speed_wpm: int = in_range(150, "words per minute", 80, 450)
    pitch: int = in_range(50, "espeak-ng pitch", 0, 99)
    chunk_ms: float = kfield(default=100.0, metadata={
        "help": "ms of audio per AudioData message", "check": "positive"})
    lead_s: float = kfield(default=0.1, metadata={
        "help": "s (node clock) `speaking` turns true before the first sample, so the "
                "recogniser is muted before any of the voice arrives", "check": "non_negative"})
    tick_s: float = kfield(default=0.02, metadata={
        "help": "s; how often (node clock) due chunks are published", "check": "positive"})
    max_queue: int = kfield(default=4, metadata={
        "help": "texts waiting to be spoken; the oldest is dropped beyond this",
        "check": "positive"})
    play: bool = kfield(default=False, metadata={
        "help": "also play the voice on a PortAudio output device (a real robot's speaker)"})
    device: str = kfield(default="", metadata={
        "help": "output device for play: an index or part of its name; '' = the default"})
    frame_id: str = kfield(default="", metadata={"help": "header.frame_id of the chunks"})


class _Speaker:
    """A PortAudio output stream fed from a queue (writes block; the timer must not)."""

    def __init__(self, device: str) -> None:
        try:
            import sounddevice as sd
        except OSError as exc:  # the wheel loads libportaudio at import
            raise KatazukeError(f"tts: PortAudio is not available ({exc}): install Debian's "
                                "libportaudio2, or set play:=false") from exc
        dev: int | str | None = None
        if device:
            dev = int(device) if device.isdigit() else device
        try:
            self._stream = sd.OutputStream(samplerate=SAMPLE_RATE, channels=1, dtype="int16",
                                           device=dev)
            self._stream.start()
        except Exception as exc:  # sd.PortAudioError, ValueError for an unknown device
            raise KatazukeError(f"tts: cannot open the output device {device or '(default)'!r} "
                                f"({exc}); set `device`, or play:=false on a machine without "
                                "a speaker") from exc
        self._q: queue.Queue[bytes | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="tts-speaker", daemon=True)
        self._thread.start()

    def write(self, pcm16: bytes) -> None:
        self._q.put(pcm16)

    def _run(self) -> None:
        while (b := self._q.get()) is not None:
            self._stream.write(np.frombuffer(b, dtype="<i2").reshape(-1, 1))

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=5.0)
        self._stream.stop()
        self._stream.close()


class TtsNode(Node):
    """Speaks every text on ``say``, one after another, and flags ``speaking``."""

    def __init__(self, **node_kwargs: object) -> None:
        super().__init__("tts", **node_kwargs)
        self.cfg = declare_config(self, TtsNodeConfig)
        # Synthesise once now: a missing espeak-ng or an unknown voice is a start-up error,
        # and the first real answer does not wait for the resampler's import (~2 s loaded).
        x, sr = synthesize("ready", self.cfg.voice, self.cfg.speed_wpm, self.cfg.pitch)
        to_mono_16k(x[:, None], sr)
        self._speaker = _Speaker(self.cfg.device) if self.cfg.play else None
        self._audio = PacedAudio(self.cfg.chunk_ms, 0.0, self.cfg.frame_id)
        self._texts: queue.Queue[str | None] = queue.Queue()
        self._speaking = False
        self._audio_from: float | None = None   # clock time the next clip may start
        self._end_s = -np.inf                    # clock time the last published sample ends
        self.spoken: list[str] = []              # texts whose audio started (tests, logs)
        self._pub = self.create_publisher(AudioData, "speaker/audio", qos.STATE)
        self._speaking_pub = self.create_publisher(Bool, "speaking", qos.LATCHED)
        self._speaking_pub.publish(Bool(data=False))
        self.create_subscription(String, "say", self._on_say, qos.EVENTS)
        self._worker = threading.Thread(target=self._synth_loop, name="tts", daemon=True)
        self._worker.start()
        self.create_timer(self.cfg.tick_s, self._tick)
        self.get_logger().info(f"tts ready: espeak-ng voice {self.cfg.voice!r}, "
                               f"{self.cfg.speed_wpm} wpm"
                               + (", playing on the output device" if self._speaker else ""))

    def _on_say(self, msg: String) -> None:
        text = msg.data.strip()
        if not text:
            return
        if self._texts.qsize() >= self.cfg.max_queue:
            try:
                dropped = self._texts.get_nowait()
                self.get_logger().warning(f"speech is behind: not saying {dropped!r}")
            except queue.Empty:
                pass
        self._texts.put(text)

    def _synth_loop(self) -> None:
        while (text := self._texts.get()) is not None:
            try:
                x, sr = synthesize(text, self.cfg.voice, self.cfg.speed_wpm, self.cfg.pitch)
                self._audio.enqueue(Clip(text, to_mono_16k(x[:, None], sr)))
            except KatazukeError as exc:
                self.get_logger().error(f"cannot say {text!r}: {exc}")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _set_speaking(self, on: bool) -> None:
        if on != self._speaking:
            self._speaking = on
            self._speaking_pub.publish(Bool(data=on))

    def _tick(self) -> None:
        now = self._now()
        if self._audio.busy:
            if not self._speaking:
                self._set_speaking(True)
                self._audio_from = now + self.cfg.lead_s
            if self._audio_from is not None and now < self._audio_from:
                return
            self._audio_from = None
            msgs, started = self._audio.tick(now)
            for text in started:
                self.spoken.append(text)
                self.get_logger().info(f"saying {text!r}")
            for m in msgs:
                self._pub.publish(m)
                self._end_s = max(self._end_s, stamp_to_sec(m.header.stamp)
                                  + len(m.data) / 2 / SAMPLE_RATE)
                if self._speaker is not None:
                    self._speaker.write(bytes(m.data))
        elif self._speaking and now >= self._end_s:
            self._set_speaking(False)

    def close(self) -> None:
        self._texts.put(None)
        self._worker.join(timeout=10.0)
        if self._speaker is not None:
            self._speaker.close()


def main(args: list[str] | None = None) -> int:
    return run_node(TtsNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
