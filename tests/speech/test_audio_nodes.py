"""audio_file_player paces files on its clock (sim time); asr turns audio into a Transcript."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
msg_mod = pytest.importorskip("katazuke_interfaces.msg")
sf = pytest.importorskip("soundfile")


def _clock_msg(t: float):
    from rosgraph_msgs.msg import Clock

    from katazuke.ros.conversions import sec_to_stamp

    return Clock(clock=sec_to_stamp(t))


@pytest.fixture
def player_setup(ros_context, tmp_path):
    """A player on sim time with one 0.73 s stereo 22.05 kHz file, and a probe node."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rosgraph_msgs.msg import Clock

    from katazuke.ros import qos
    from katazuke_ros.audio_file_player_node import AudioFilePlayer

    sr = 22050
    t = np.arange(int(0.73 * sr)) / sr
    tone = 0.4 * np.sin(2 * np.pi * 300 * t)
    path = tmp_path / "tone.wav"
    sf.write(str(path), np.stack([tone, tone], axis=1), sr)
    player = AudioFilePlayer(context=ros_context, parameter_overrides=[
        Parameter("use_sim_time", value=True), Parameter("files", value=[str(path)]),
        Parameter("trailing_silence_s", value=0.5), Parameter("chunk_ms", value=100.0)])
    probe = rclpy.create_node("audio_probe", context=ros_context)
    got = []
    probe.create_subscription(msg_mod.AudioData, "audio", got.append, qos.STATE)
    clock = probe.create_publisher(Clock, "/clock", qos.CLOCK)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(player)
    ex.add_node(probe)
    try:
        yield ex, player, clock, got, path
    finally:
        ex.shutdown()
        probe.destroy_node()
        player.destroy_node()


def test_player_publishes_the_file_on_sim_time(player_setup) -> None:
    from katazuke.perception.speech import load_audio, pcm16_to_float
    from katazuke.ros.conversions import stamp_to_sec
    from katazuke.testing import wait_for

    ex, player, clock, got, path = player_setup
    expected = load_audio(path).size + 8000            # the file at 16 kHz + 0.5 s of silence

    def spin():
        ex.spin_once(timeout_sec=0.02)

    def at(t: float, cond, timeout: float = 10.0) -> bool:
        return wait_for(lambda: (clock.publish(_clock_msg(t)), cond())[1], timeout, spin=spin)

    # clock at 100 s: playback starts; the first chunk is stamped with that clock time
    assert at(100.0, lambda: len(got) >= 1)
    t0 = stamp_to_sec(got[0].header.stamp)
    assert 100.0 <= t0 < 100.5
    # 0.55 s of sim time later: exactly the chunks starting at +0.0, ..., +0.5 s (6 x 1600)
    assert at(t0 + 0.55, lambda: len(got) >= 6)
    for _ in range(20):                                # the clock stands still: nothing more
        clock.publish(_clock_msg(t0 + 0.55))
        spin()
    assert len(got) == 6 and player.samples_published == 6 * 1600
    # far later: the whole file and its trailing silence, no more
    assert at(t0 + 5.0, lambda: sum(len(m.data) for m in got) // 2 >= expected)
    samples = np.concatenate([pcm16_to_float(m.data)[:, 0] for m in got])
    assert samples.size == expected
    np.testing.assert_allclose(samples[:-8000], load_audio(path), atol=1.5 / 32768)
    assert not samples[-8000:].any()
    stamps = np.array([stamp_to_sec(m.header.stamp) for m in got])
    np.testing.assert_allclose(np.diff(stamps), 0.1, atol=1e-6)  # stamp = time of first sample
    assert all(m.sample_rate == 16000 and m.channels == 1 for m in got)


def test_player_refuses_a_missing_file(ros_context, tmp_path) -> None:
    from rclpy.parameter import Parameter

    from katazuke.errors import KatazukeError
    from katazuke_ros.audio_file_player_node import AudioFilePlayer

    with pytest.raises(KatazukeError, match="audio file not found.*missing.wav"):
        AudioFilePlayer(context=ros_context, parameter_overrides=[
            Parameter("files", value=[str(tmp_path / "missing.wav")])])


def test_capture_without_device_says_so() -> None:
    """On a machine without PortAudio or without an input the node's start-up error says which."""
    from katazuke.errors import KatazukeError
    from katazuke_ros.audio_capture_node import open_input_device

    try:
        sd, index, name = open_input_device("")
    except KatazukeError as exc:
        assert "PortAudio" in str(exc) or "no audio input device" in str(exc)
    else:  # a machine with a microphone
        assert isinstance(name, str)
    with pytest.raises(KatazukeError):
        open_input_device("no-such-microphone-xyz")


@pytest.fixture
def asr_setup(ros_context):
    """The asr node with Whisper tiny.en, a probe publishing audio and `speaking`."""
    pytest.importorskip("faster_whisper")
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from std_msgs.msg import Bool

    from katazuke.ros import qos
    from katazuke_ros.asr_node import AsrNode

    node = AsrNode(context=ros_context, parameter_overrides=[
        Parameter("recognizer.engine", value="whisper-tiny.en"),
        Parameter("recognizer.beam_size", value=2), Parameter("recognizer.num_hypotheses", value=2)])
    probe = rclpy.create_node("asr_probe", context=ros_context)
    got = []
    probe.create_subscription(msg_mod.Transcript, "transcript", got.append, qos.EVENTS)
    audio = probe.create_publisher(msg_mod.AudioData, "audio", qos.STATE)
    speaking = probe.create_publisher(Bool, "speaking", qos.LATCHED)
    ex = MultiThreadedExecutor(num_threads=2, context=ros_context)
    ex.add_node(node)
    ex.add_node(probe)
    try:
        yield ex, node, audio, speaking, got
    finally:
        ex.shutdown()
        probe.destroy_node()
        node.close()
        node.destroy_node()


def _publish(ex, node, pub, x: np.ndarray, t0: float, sr: int = 16000) -> None:
    """Publish ``x`` as 100 ms chunks stamped from ``t0``; return once the node took them all."""
    from katazuke.perception.speech import float_to_pcm16
    from katazuke.ros.conversions import sec_to_stamp
    from katazuke.testing import wait_for

    start = node.chunks_received
    n = 0
    step = sr // 10
    for i in range(0, x.size, step):
        m = msg_mod.AudioData(sample_rate=sr, channels=1, data=float_to_pcm16(x[i:i + step]))
        m.header.stamp = sec_to_stamp(t0 + i / sr)
        pub.publish(m)
        n += 1
        if n % 5 == 0:  # keep within the subscription's depth of 10
            assert wait_for(lambda: node.chunks_received >= start + n, 10.0,
                            spin=lambda: ex.spin_once(timeout_sec=0.01))
    assert wait_for(lambda: node.chunks_received >= start + n, 10.0,
                    spin=lambda: ex.spin_once(timeout_sec=0.01))


@pytest.mark.slow
def test_asr_node_publishes_a_transcript_and_stays_deaf_while_speaking(asr_setup, espeak_clip
                                                                       ) -> None:
    from std_msgs.msg import Bool

    from katazuke.perception.speech import corpus_wer
    from katazuke.ros.conversions import stamp_to_sec
    from katazuke.testing import wait_for

    ex, node, audio, speaking, got = asr_setup
    x, text = espeak_clip
    clip = np.concatenate([np.zeros(8000, np.float32), x, np.zeros(24000, np.float32)])
    spin = lambda: ex.spin_once(timeout_sec=0.02)  # noqa: E731
    _publish(ex, node, audio, clip, t0=20.0)
    assert wait_for(lambda: len(got) == 1, 90.0, spin=spin)
    tr = got[0]
    assert corpus_wer([text], [tr.text]).wer <= 0.25, tr.text
    assert tr.hypotheses[0] == tr.text and len(tr.confidences) == len(tr.hypotheses)
    assert tr.confidence == pytest.approx(tr.confidences[0]) and 0 < tr.confidence <= 1
    assert tr.engine == "whisper-tiny.en" and tr.language == "en"
    end = stamp_to_sec(tr.header.stamp)
    speech_end = 20.0 + 0.5 + np.flatnonzero(np.abs(x) > 0.01)[-1] / 16000
    assert speech_end - 0.05 <= end <= speech_end + 1.0
    assert tr.duration_s == pytest.approx(end - (end - tr.duration_s)) and tr.duration_s > 1.0

    # The robot speaks: the same sentence while `speaking` is true gives nothing.
    speaking.publish(Bool(data=True))
    assert wait_for(lambda: node._speaking, 10.0, spin=spin)
    _publish(ex, node, audio, clip, t0=40.0)
    speaking.publish(Bool(data=False))
    assert wait_for(lambda: not node._speaking, 10.0, spin=spin)
    _publish(ex, node, audio, np.zeros(16000, np.float32), t0=40.0 + clip.size / 16000)
    assert wait_for(lambda: node.idle, 60.0, spin=spin)
    assert len(got) == 1 and node.utterances_segmented == 1
