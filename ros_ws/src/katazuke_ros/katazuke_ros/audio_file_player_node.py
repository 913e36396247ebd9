"""audio_file_player: plays WAV/FLAC files as ``katazuke_interfaces/AudioData`` on the node's clock.

Publishes ``audio`` (AudioData, 16 kHz mono PCM16 in ``chunk_ms`` chunks, STATE QoS: reliable,
so a recogniser downstream never loses a piece of an utterance). Pacing follows the node's
clock (sim time under ``use_sim_time``: a paused simulator pauses playback): at every tick
the player publishes the chunks whose start time has come, so the number of samples out is
``elapsed clock time x 16000`` whatever the timer's jitter. Each chunk's stamp is the clock
time of its first sample.

Files come from the ``files`` parameter (played in order at start; each is checked then,
a missing or unreadable one stops the node with an error naming it) and from the
``play_file`` topic (std_msgs/String: a path queued behind what is playing; a bad file is
logged and skipped). ``trailing_silence_s`` of silence follows each file, so a voice
activity detector downstream sees the utterance end. ``playing`` (std_msgs/Bool, LATCHED)
says whether audio is being published.
"""
from __future__ import annotations

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Bool, String

from katazuke.config import dataclass as kdataclass
from katazuke.config import field as kfield
from katazuke.errors import KatazukeError
from katazuke.perception.speech import SAMPLE_RATE, load_audio
from katazuke_interfaces.msg import AudioData
from katazuke_ros import qos
from katazuke_ros.audio_out import Clip, PacedAudio
from katazuke_ros.node_utils import declare_config, run_node

__all__ = ["AudioFilePlayer", "AudioFilePlayerConfig", "main"]


@kdataclass(frozen=True)
class AudioFilePlayerConfig:
    """Parameters of the audio file player."""

    files: tuple[str, ...] = kfield(default=(), metadata={
        "help": "WAV/FLAC files played in order at start (any sample rate / channels)"})
    chunk_ms: float = kfield(default=100.0, metadata={
        "help": "ms of audio per AudioData message", "check": "positive"})
    trailing_silence_s: float = kfield(default=1.0, metadata={
        "help": "s of silence published after each file (lets a VAD end the utterance)",
        "check": "non_negative"})
    start_delay_s: float = kfield(default=0.0, metadata={
        "help": "s on the node's clock before the first file starts", "check": "non_negative"})
    loop: bool = kfield(default=False, metadata={"help": "play the `files` list again and again"})
    frame_id: str = kfield(default="", metadata={"help": "header.frame_id of the chunks"})
    tick_s: float = kfield(default=0.02, metadata={
        "help": "s; how often (node clock) the player checks for due chunks", "check": "positive"})


class AudioFilePlayer(Node):
    """Publishes queued audio files chunk by chunk, paced on the node's clock."""

    def __init__(self, **node_kwargs: object) -> None:
        super().__init__("audio_file_player", **node_kwargs)
        self.cfg = declare_config(self, AudioFilePlayerConfig)
        self._audio = PacedAudio(self.cfg.chunk_ms, self.cfg.trailing_silence_s,
                                 self.cfg.frame_id)
        # Load (and so check) the start-up files now: a bad path is a start-up error.
        self._files = [Clip(f, self._load(f)) for f in self.cfg.files]
        for clip in self._files:
            self._audio.enqueue(clip)
        self._not_before: float | None = None
        self._pub = self.create_publisher(AudioData, "audio", qos.STATE)
        self._playing_pub = self.create_publisher(Bool, "playing", qos.LATCHED)
        self._playing: bool | None = None
        self._set_playing(False)
        self.create_subscription(String, "play_file", self._on_play_file, qos.EVENTS)
        self.create_timer(self.cfg.tick_s, self._tick)
        self.get_logger().info(f"audio_file_player: {len(self._files)} file(s) queued, "
                               f"{self.cfg.chunk_ms:g} ms chunks at {SAMPLE_RATE} Hz")

    @property
    def samples_published(self) -> int:
        return self._audio.samples_published

    @staticmethod
    def _load(path: str) -> np.ndarray:
        return load_audio(path)  # AudioFileError (a KatazukeError) names the file

    def enqueue(self, path: str) -> None:
        """Queue a file behind what is playing (raises AudioFileError for a bad file)."""
        self._audio.enqueue(Clip(path, self._load(path)))

    def _on_play_file(self, msg: String) -> None:
        try:
            self.enqueue(msg.data)
            self.get_logger().info(f"queued {msg.data}")
        except KatazukeError as exc:
            self.get_logger().error(f"play_file: {exc}")

    def _set_playing(self, playing: bool) -> None:
        if playing != self._playing:
            self._playing = playing
            self._playing_pub.publish(Bool(data=playing))

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _tick(self) -> None:
        now = self._now()
        if self._not_before is None:
            self._not_before = now + self.cfg.start_delay_s
        if now < self._not_before:
            return
        if self.cfg.loop and self._files and not self._audio.busy:
            for clip in self._files:
                self._audio.enqueue(clip)
        msgs, started = self._audio.tick(now)
        for name in started:
            self.get_logger().info(f"playing {name}")
        if msgs:
            self._set_playing(True)
        for m in msgs:
            self._pub.publish(m)
        if not self._audio.busy:
            self._set_playing(False)


def main(args: list[str] | None = None) -> int:
    return run_node(AudioFilePlayer, args)


if __name__ == "__main__":
    raise SystemExit(main())
