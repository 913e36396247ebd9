"""audio_capture: a microphone as ``katazuke_interfaces/AudioData`` (PortAudio via ``sounddevice``).

Publishes ``audio`` (AudioData, PCM16 at ``sample_rate`` with ``channels`` channels, in
``chunk_ms`` chunks, STATE QoS). Each chunk's stamp is the node clock at the PortAudio
callback minus the chunk's duration (the time of its first sample, to within the device's
input latency).

On a machine without PortAudio (Debian ``libportaudio2``) or without an input device the
node logs one error that says which, and exits with code 2 (the launcher sees the failure);
``device`` names an input by index or by a substring of its name.
"""
from __future__ import annotations

import numpy as np
from rclpy.node import Node

from katazuke.config import dataclass as kdataclass
from katazuke.config import field as kfield
from katazuke.errors import KatazukeError
from katazuke_interfaces.msg import AudioData
from katazuke_ros import qos
from katazuke_ros.node_utils import declare_config, run_node, sec_to_stamp

__all__ = ["AudioCapture", "AudioCaptureConfig", "open_input_device", "main"]


@kdataclass(frozen=True)
class AudioCaptureConfig:
    """Parameters of the microphone node."""

    device: str = kfield(default="", metadata={
        "help": "input device: '' = the default input, an index, or part of its name"})
    sample_rate: int = kfield(default=16000, metadata={"help": "Hz", "check": "positive"})
    channels: int = kfield(default=1, metadata={"help": "channels to record", "check": "positive"})
    chunk_ms: float = kfield(default=100.0, metadata={"help": "ms per AudioData message",
                                                      "check": "positive"})
    frame_id: str = kfield(default="microphone", metadata={"help": "header.frame_id"})


def open_input_device(device: str) -> tuple[object, int | None, str]:
    """Import sounddevice and find the input device.

    Returns:
        ``(sounddevice module, device index or None for the default, device name)``.

    Raises:
        KatazukeError: PortAudio is missing, there is no input device, or ``device`` matches
            none (the message lists the inputs there are).
    """
    try:
        import sounddevice as sd
    except OSError as exc:  # the wheel loads libportaudio at import
        raise KatazukeError(f"audio_capture: PortAudio is not available ({exc}): install Debian's "
                            "libportaudio2 (scripts/bootstrap.sh does), or play files with "
                            "audio_file_player instead") from exc
    except ImportError as exc:
        raise KatazukeError("audio_capture needs the PyPI package sounddevice "
                            "(pip install -r requirements.txt)") from exc
    try:
        devices = list(sd.query_devices())
    except Exception as exc:  # PortAudio errors are plain Exceptions (sd.PortAudioError)
        raise KatazukeError(f"audio_capture: PortAudio cannot list devices ({exc})") from exc
    inputs = [(i, d["name"]) for i, d in enumerate(devices) if d.get("max_input_channels", 0) > 0]
    if not inputs:
        raise KatazukeError("audio_capture: this machine has no audio input device (PortAudio "
                            "found none); connect a microphone, or play WAV/FLAC files with "
                            "audio_file_player")
    if not device:
        try:
            default = sd.default.device[0]
        except Exception:
            default = -1
        if default is None or int(default) < 0:
            return sd, inputs[0][0], inputs[0][1]
        return sd, int(default), devices[int(default)]["name"]
    if device.isdigit():
        idx = int(device)
        match = [p for p in inputs if p[0] == idx]
    else:
        match = [p for p in inputs if device.lower() in p[1].lower()]
    if not match:
        raise KatazukeError(f"audio_capture: no input device matches {device!r}; inputs: "
                            + ", ".join(f"{i}: {n}" for i, n in inputs))
    return sd, match[0][0], match[0][1]


class AudioCapture(Node):
    """Records the microphone and publishes PCM16 chunks."""

    def __init__(self, **node_kwargs: object) -> None:
        super().__init__("audio_capture", **node_kwargs)
        self.cfg = declare_config(self, AudioCaptureConfig)
        sd, index, name = open_input_device(self.cfg.device)
        self._pub = self.create_publisher(AudioData, "audio", qos.STATE)
        block = max(1, int(round(self.cfg.chunk_ms * self.cfg.sample_rate / 1000.0)))
        try:
            self._stream = sd.InputStream(device=index, channels=self.cfg.channels,
                                          samplerate=self.cfg.sample_rate, blocksize=block,
                                          dtype="int16", callback=self._on_block)
            self._stream.start()
        except Exception as exc:
            raise KatazukeError(f"audio_capture: cannot open {name!r} at {self.cfg.sample_rate} "
                                f"Hz x {self.cfg.channels} ch ({exc}); try another sample_rate "
                                "or device") from exc
        self.get_logger().info(f"recording {name!r}: {self.cfg.sample_rate} Hz, "
                               f"{self.cfg.channels} ch, {block} frames per chunk")

    def _on_block(self, indata: np.ndarray, frames: int, _time: object, status: object) -> None:
        if status:
            self.get_logger().warning(f"audio input: {status}")
        msg = AudioData()
        t = self.get_clock().now().nanoseconds * 1e-9 - frames / self.cfg.sample_rate
        msg.header.stamp = sec_to_stamp(t)
        msg.header.frame_id = self.cfg.frame_id
        msg.sample_rate = self.cfg.sample_rate
        msg.channels = self.cfg.channels
        msg.data = np.ascontiguousarray(indata, dtype="<i2").tobytes()
        self._pub.publish(msg)

    def close(self) -> None:
        stream = getattr(self, "_stream", None)
        if stream is not None:
            stream.stop()
            stream.close()


def main(args: list[str] | None = None) -> int:
    return run_node(AudioCapture, args)


if __name__ == "__main__":
    raise SystemExit(main())
