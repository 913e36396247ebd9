"""asr: audio -> voice activity -> Whisper -> ``katazuke_interfaces/Transcript``.

Subscribes ``audio`` (AudioData, any rate / channels; STATE QoS), ``speaking``
(std_msgs/Bool, EVENTS QoS: true while the robot's own voice plays; the input is muted then and for
``unmute_delay_s`` after) and ``object_map`` (ObjectMap, LATCHED: its kinds, colours and
containers join the vocabulary prompt). Publishes ``transcript`` (Transcript, EVENTS QoS)
for each utterance the :class:`~katazuke.perception.speech.Segmenter` closes whose text
passes :func:`~katazuke.perception.speech.accept_command` (non-empty, calibrated confidence
>= ``confidence_floor``): silence, noise and music give no transcript.

Recognition runs on its own thread (one utterance at a time, oldest first), so the audio
callback never waits for Whisper; the header stamp of a Transcript is the end of its
utterance on the audio's clock (the stamps of the AudioData chunks), ``duration_s`` its
length.

A stop word must act fast: with ``keyword_engine`` set (``launch/params/speech.yaml``: Whisper
tiny.en) and ``segmenter.early_pause_ms`` > 0, the segmenter hands out an early copy of a short
utterance after that pause; a second thread reads it with the fast engine and, when it is only
stop words ("stop", "cancel", ...), publishes its Transcript at once, before the pause that
ends the utterance and before the main engine; the final pass then skips that utterance unless
more speech followed.

Parameters: ``recognizer.*`` (:class:`~katazuke.perception.speech.RecognizerConfig`),
``segmenter.*`` (:class:`~katazuke.perception.speech.SegmenterConfig`) and the fields of
:class:`AsrNodeConfig`. The model loads at start: a missing package or a corrupt
``model.bin`` stops the node with an error naming the file.
"""
from __future__ import annotations

import queue
import threading

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Bool

from katazuke.config import dataclass as kdataclass
from katazuke.config import field as kfield
from katazuke.config import in_range
from katazuke.errors import ConfigError, KatazukeError
from katazuke.perception.speech import (SAMPLE_RATE, RecognitionResult, Recognizer,
                                        RecognizerConfig, Segmenter, SegmenterConfig,
                                        Utterance, accept_command, normalize, pcm16_to_float,
                                        to_mono_16k)
from katazuke.perception.speech.vocabulary import base_vocabulary, object_vocabulary
from katazuke_interfaces.msg import AudioData, ObjectMap, Transcript
from katazuke_ros import qos
from katazuke_ros.node_utils import declare_config, run_node, sec_to_stamp, stamp_to_sec

__all__ = ["AsrNode", "AsrNodeConfig", "main"]


@kdataclass(frozen=True)
class AsrNodeConfig:
    """Parameters of the speech-recognition node."""

    recognizer: RecognizerConfig = kfield(default_factory=RecognizerConfig, metadata={
        "help": "the recogniser"})
    segmenter: SegmenterConfig = kfield(default_factory=SegmenterConfig, metadata={
        "help": "voice activity segmentation"})
    confidence_floor: float = in_range(0.05, "transcripts whose calibrated confidence is below "
                                             "this are dropped (noise, music, mumbling)", 0.0, 1.0)
    vocabulary: tuple[str, ...] = kfield(default_factory=lambda: tuple(base_vocabulary()),
                                         metadata={"help": "words always in the prompt "
                                                           "(categories, bins, furniture, verbs)"})
    object_map_vocabulary: bool = kfield(default=True, metadata={
        "help": "add the object map's kinds, colours and containers to the prompt"})
    unmute_delay_s: float = kfield(default=0.3, metadata={
        "help": "s (audio clock) the input stays muted after `speaking` turns false (echo tail)",
        "check": "non_negative"})
    max_queue: int = kfield(default=8, metadata={
        "help": "utterances waiting for recognition; older ones are dropped beyond this",
        "check": "positive"})
    keyword_engine: str = kfield(default="", metadata={
        "help": "fast engine of the stop-word path ('' = off): it reads the segmenter's early "
                "copies (segmenter.early_pause_ms > 0) of short utterances and publishes at "
                "once when they are a stop word"})
    stop_words: tuple[str, ...] = kfield(default=("stop", "halt", "cancel", "freeze"),
                                         metadata={"help": "words the keyword path acts on "
                                                           "(an utterance of only these)"})


class AsrNode(Node):
    """Segments the audio stream and publishes recognised utterances."""

    def __init__(self, **node_kwargs: object) -> None:
        super().__init__("asr", **node_kwargs)
        self.cfg = declare_config(self, AsrNodeConfig)
        self._recognizer = Recognizer(self.cfg.recognizer)   # loads (and checks) the model
        self._segmenter = Segmenter(self.cfg.segmenter)
        self._map_words: list[str] = []
        self._speaking = False
        self._unmute_at = -np.inf       # audio-clock time before which input stays muted
        self._last_audio_t = -np.inf
        self._frame_id = ""
        self._lock = threading.Lock()
        self._work: queue.Queue[Utterance | None] = queue.Queue()
        self.dropped_low_confidence = 0
        self.chunks_received = 0
        self.utterances_done = 0       # recognised (published or dropped)
        self.utterances_segmented = 0
        self._pub = self.create_publisher(Transcript, "transcript", qos.EVENTS)
        self.create_subscription(AudioData, "audio", self._on_audio, qos.STATE)
        # Reliable volatile: matches a latched or a volatile `speaking` publisher alike (a
        # transient-local subscription would refuse a volatile publisher).
        self.create_subscription(Bool, "speaking", self._on_speaking, qos.EVENTS)
        if self.cfg.object_map_vocabulary:
            self.create_subscription(ObjectMap, "object_map", self._on_map, qos.LATCHED)
        self._keyword: Recognizer | None = None
        self._early: queue.Queue[Utterance | None] = queue.Queue()
        self._keyword_done: dict[float, float] = {}   # start_s -> speech_s published early
        self._keyword_pending: set[float] = set()     # start_s of early copies being read
        self._keyword_cv = threading.Condition(self._lock)
        self.keyword_published = 0
        if self.cfg.keyword_engine:
            if not self.cfg.segmenter.early_pause_ms:
                raise ConfigError("asr keyword_engine needs segmenter.early_pause_ms > 0 (the "
                                  "pause after which short utterances are read early)")
            self._keyword = Recognizer(RecognizerConfig(
                engine=self.cfg.keyword_engine, beam_size=2, num_hypotheses=2,
                use_vocabulary=False, cpu_threads=self.cfg.recognizer.cpu_threads))
            threading.Thread(target=self._keyword_loop, name="asr-keyword", daemon=True).start()
        self._worker = threading.Thread(target=self._recognise_loop, name="asr", daemon=True)
        self._worker.start()
        self.get_logger().info(f"asr ready: {self._recognizer.engine} from "
                               f"{self._recognizer.model_dir}")

    # ------------------------------------------------------------------ inputs
    @property
    def vocabulary(self) -> list[str]:
        return list(dict.fromkeys(self._map_words + list(self.cfg.vocabulary)))

    def _on_map(self, msg: ObjectMap) -> None:
        words = object_vocabulary((o.category, o.kind, o.dominant_color, o.destination)
                                  for o in msg.objects)
        with self._lock:
            self._map_words = words

    def _on_speaking(self, msg: Bool) -> None:
        with self._lock:
            was = self._speaking
            self._speaking = bool(msg.data)
            if was and not self._speaking:
                # Muted until unmute_delay_s past the newest audio seen (the audio clock).
                self._unmute_at = self._last_audio_t + self.cfg.unmute_delay_s

    def _on_audio(self, msg: AudioData) -> None:
        try:
            x = pcm16_to_float(msg.data, int(msg.channels))
            x = to_mono_16k(x, int(msg.sample_rate)) if (msg.sample_rate != SAMPLE_RATE
                                                          or msg.channels != 1) else x[:, 0]
        except KatazukeError as exc:
            self.get_logger().error(f"audio chunk dropped: {exc}")
            return
        t = stamp_to_sec(msg.header.stamp)
        with self._lock:
            self._frame_id = msg.header.frame_id
            self._last_audio_t = t + x.size / SAMPLE_RATE
            muted = self._speaking or t < self._unmute_at
            self._segmenter.set_muted(muted)
            utterances = self._segmenter.feed(x, t)
        self.chunks_received += 1
        for u in utterances:
            if u.early:
                if self._keyword is not None:
                    with self._lock:
                        self._keyword_pending.add(u.start_s)
                    self._early.put(u)
                continue
            self.utterances_segmented += 1
            if self._work.qsize() >= self.cfg.max_queue:
                self.get_logger().warning("recognition is behind: dropping the oldest utterance")
                try:
                    self._work.get_nowait()
                except queue.Empty:
                    pass
            self._work.put(u)

    # ------------------------------------------------------------------ recognition
    def _recognise_loop(self) -> None:
        while True:
            u = self._work.get()
            if u is None:
                return
            try:
                self._recognise(u)
            except Exception as exc:  # keep the node alive; the next utterance may be fine
                self.get_logger().error(f"recognition failed: {type(exc).__name__}: {exc}")
            finally:
                self.utterances_done += 1

    def _keyword_loop(self) -> None:
        assert self._keyword is not None
        while (u := self._early.get()) is not None:
            try:
                r = self._keyword.transcribe(u.audio, SAMPLE_RATE)
                words = normalize(r.text).split()
                if (words and all(w in self.cfg.stop_words for w in words)
                        and accept_command(r.text, r.confidence, self.cfg.confidence_floor)):
                    with self._lock:
                        self._keyword_done[u.start_s] = u.speech_s
                        frame_id = self._frame_id
                    self._publish(r, u, frame_id, " (stop-word path)")
                    self.keyword_published += 1
            except Exception as exc:  # keep the node alive; the final pass still runs
                self.get_logger().error(f"stop-word recognition failed: "
                                        f"{type(exc).__name__}: {exc}")
            finally:
                with self._keyword_cv:
                    self._keyword_pending.discard(u.start_s)
                    self._keyword_cv.notify_all()

    def _recognise(self, u: Utterance) -> None:
        with self._keyword_cv:
            # the stop-word path may still be reading this utterance's early copy
            self._keyword_cv.wait_for(lambda: u.start_s not in self._keyword_pending, 30.0)
            vocab = self.vocabulary
            frame_id = self._frame_id
            early_speech = self._keyword_done.pop(u.start_s, None)
        if early_speech is not None and u.speech_s <= early_speech + 0.05:
            self.get_logger().info(f"utterance at {u.start_s:.2f} s already published by the "
                                   "stop-word path")
            return
        r = self._recognizer.transcribe(u.audio, SAMPLE_RATE, vocab)
        if not accept_command(r.text, r.confidence, self.cfg.confidence_floor):
            self.dropped_low_confidence += bool(r.text)
            self.get_logger().info(f"no command: {r.text!r} (confidence {r.confidence:.2f} < "
                                   f"{self.cfg.confidence_floor})" if r.text else
                                   f"no command: nothing recognised in {u.duration_s:.1f} s")
            return
        self._publish(r, u, frame_id)

    def _publish(self, r: RecognitionResult, u: Utterance, frame_id: str, how: str = "") -> None:
        msg = Transcript()
        msg.header.stamp = sec_to_stamp(u.end_s)
        msg.header.frame_id = frame_id
        msg.text = r.text
        msg.confidence = float(r.confidence)
        msg.hypotheses = list(r.hypotheses)
        msg.confidences = [float(c) for c in r.confidences]
        msg.duration_s = float(u.duration_s)
        msg.language = r.language
        msg.engine = r.engine
        self._pub.publish(msg)
        self.get_logger().info(f"heard {r.text!r} ({r.confidence:.2f}, {u.duration_s:.1f} s)"
                               + how)

    @property
    def idle(self) -> bool:
        """Nothing being collected and every segmented utterance recognised."""
        return not self._segmenter.active and self.utterances_done >= self.utterances_segmented

    def close(self) -> None:
        self._early.put(None)
        self._work.put(None)
        self._worker.join(timeout=30.0)


def main(args: list[str] | None = None) -> int:
    return run_node(AsrNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
