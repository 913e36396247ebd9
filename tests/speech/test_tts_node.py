"""tts speaks `say` texts on the node's clock and flags `speaking`; the recogniser, hearing the
robot's own voice on its microphone topic (the simulator's echo), stays deaf to it; ``katazuke
say`` makes its WAV once and names what is missing."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
msg_mod = pytest.importorskip("katazuke_interfaces.msg")
if shutil.which("espeak-ng") is None:
    pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)", allow_module_level=True)


def _clock_msg(t: float):
    from rosgraph_msgs.msg import Clock

    from katazuke.ros.conversions import sec_to_stamp

    return Clock(clock=sec_to_stamp(t))


class _Run:
    """An executor over the nodes, a probe that drives /clock and records what arrives."""

    def __init__(self, ctx, nodes, executor) -> None:
        from std_msgs.msg import Bool, String

        from katazuke.ros import qos
        from rosgraph_msgs.msg import Clock

        self.t = 50.0
        self.events: list[tuple[str, float, object]] = []   # (topic, clock when taken, msg)
        self.probe = rclpy.create_node("tts_probe", context=ctx)
        self.probe.create_subscription(
            msg_mod.AudioData, "speaker/audio",
            lambda m: self.events.append(("audio", self.t, m)), qos.STATE)
        self.probe.create_subscription(
            Bool, "speaking", lambda m: self.events.append(("speaking", self.t, m.data)),
            qos.LATCHED)
        self.probe.create_subscription(
            msg_mod.Transcript, "transcript",
            lambda m: self.events.append(("transcript", self.t, m)), qos.EVENTS)
        self.say = self.probe.create_publisher(String, "say", qos.EVENTS)
        self.clock = self.probe.create_publisher(Clock, "/clock", qos.CLOCK)
        self.ex = executor
        self.nodes = nodes
        for n in [*nodes, self.probe]:
            self.ex.add_node(n)

    def step(self, dt: float = 0.02) -> None:
        self.t += dt
        self.clock.publish(_clock_msg(self.t))
        self.ex.spin_once(timeout_sec=0.01)

    def until(self, cond, timeout: float = 30.0, dt: float = 0.02) -> bool:
        from katazuke.testing import wait_for

        return wait_for(cond, timeout, spin=lambda: self.step(dt))

    def of(self, topic: str) -> list:
        return [e for e in self.events if e[0] == topic]

    def close(self) -> None:
        self.ex.shutdown()
        self.probe.destroy_node()
        for n in self.nodes:
            getattr(n, "close", lambda: None)()
            n.destroy_node()


@pytest.fixture
def tts_run(ros_context):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from katazuke_ros.tts_node import TtsNode

    node = TtsNode(context=ros_context, parameter_overrides=[
        Parameter("use_sim_time", value=True), Parameter("speed_wpm", value=170)])
    run = _Run(ros_context, [node], SingleThreadedExecutor(context=ros_context))
    try:
        yield run, node
    finally:
        run.close()


def test_tts_speaks_on_sim_time_and_flags_speaking_around_the_voice(tts_run) -> None:
    from std_msgs.msg import String

    from katazuke.perception.speech import pcm16_to_float, synthesize, to_mono_16k
    from katazuke.ros.conversions import stamp_to_sec

    run, node = tts_run
    text = "the duck is on the shelf"
    ref, sr = synthesize(text, "en-us", 170)
    ref = to_mono_16k(ref, sr)
    assert run.until(lambda: run.say.get_subscription_count() > 0, 10.0)
    assert run.until(lambda: run.of("speaking"), 10.0)       # latched false at start
    assert run.of("speaking")[-1][2] is False
    run.say.publish(String(data=text))
    n_ref = ref.size
    assert run.until(lambda: sum(len(e[2].data) // 2 for e in run.of("audio")) >= n_ref
                     and run.of("speaking")[-1][2] is False and len(run.of("speaking")) >= 3,
                     60.0)
    audio = run.of("audio")
    on = [e for e in run.of("speaking") if e[2] is True]
    off = [e for e in run.of("speaking")[1:] if e[2] is False]
    assert len(on) == 1 and len(off) == 1
    first_stamp = stamp_to_sec(audio[0][2].header.stamp)
    # muted first: `speaking` arrived lead_s (0.1 s of the clock, less a tick) before any sample
    assert audio[0][1] - on[0][1] >= 0.1 - 0.03, (on, audio[0][1], first_stamp)
    # the samples are espeak-ng's rendering of the text, paced at 16 kHz on the clock
    x = np.concatenate([pcm16_to_float(e[2].data)[:, 0] for e in audio])
    assert x.size == n_ref
    np.testing.assert_allclose(x, ref, atol=1.5 / 32768)
    stamps = np.array([stamp_to_sec(e[2].header.stamp) for e in audio])
    np.testing.assert_allclose(np.diff(stamps), 0.1, atol=1e-6)
    assert all(stamps[i] <= audio[i][1] + 1e-6 for i in range(len(audio)))  # never early
    # unmuted only once the last sample has played
    end = stamps[-1] + (len(audio[-1][2].data) // 2) / 16000
    assert off[0][1] >= end - 1e-6
    assert node.spoken == [text]


def test_tts_refuses_an_unknown_voice_at_start(ros_context) -> None:
    from rclpy.parameter import Parameter

    from katazuke.errors import KatazukeError
    from katazuke_ros.tts_node import TtsNode

    with pytest.raises(KatazukeError, match="espeak-ng failed for voice 'xx-nonexistent'"):
        TtsNode(context=ros_context, parameter_overrides=[
            Parameter("voice", value="xx-nonexistent")])


@pytest.mark.slow
def test_the_recogniser_does_not_hear_the_robots_own_voice(ros_context, espeak_clip) -> None:
    """The simulator's echo: tts publishes onto the microphone topic the asr node listens to.
    Its words never become a transcript; a person speaking right after it is heard."""
    pytest.importorskip("faster_whisper")
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from std_msgs.msg import String

    from katazuke.perception.speech import float_to_pcm16
    from katazuke.ros import qos
    from katazuke.ros.conversions import sec_to_stamp
    from katazuke_ros.asr_node import AsrNode
    from katazuke_ros.tts_node import TtsNode

    tts = TtsNode(context=ros_context, parameter_overrides=[
        Parameter("use_sim_time", value=True)], cli_args=["--ros-args", "-r",
                                                          "speaker/audio:=audio"])
    asr = AsrNode(context=ros_context, parameter_overrides=[
        Parameter("use_sim_time", value=True),
        Parameter("recognizer.engine", value="whisper-tiny.en"),
        Parameter("recognizer.beam_size", value=2), Parameter("recognizer.num_hypotheses", value=2)])
    run = _Run(ros_context, [tts, asr], MultiThreadedExecutor(num_threads=2, context=ros_context))
    try:
        assert run.until(lambda: run.say.get_subscription_count() > 0, 10.0)
        # the robot asks a question that is itself a valid command
        run.say.publish(String(data="should I put the duck in the red bin"))
        assert run.until(lambda: tts.spoken and not tts._audio.busy
                         and run.of("speaking")[-1][2] is False, 60.0)
        # 1.5 s of room silence, then a person speaks: only the person is transcribed
        mic = run.probe.create_publisher(msg_mod.AudioData, "audio", qos.STATE)
        x, text = espeak_clip
        person = np.concatenate([np.zeros(24000, np.float32), x, np.zeros(24000, np.float32)])
        assert run.until(lambda: mic.get_subscription_count() > 0, 10.0, dt=0.0)
        for i in range(0, person.size, 1600):
            m = msg_mod.AudioData(sample_rate=16000, channels=1,
                                  data=float_to_pcm16(person[i:i + 1600]))
            m.header.stamp = sec_to_stamp(run.t)
            n = asr.chunks_received
            mic.publish(m)
            assert run.until(lambda: asr.chunks_received > n, 10.0, dt=0.0)
            run.step(0.1)
        assert run.until(lambda: run.of("transcript") and asr.idle, 90.0, dt=0.0)
        from katazuke.perception.speech import corpus_wer

        got = [e[2].text for e in run.of("transcript")]
        assert len(got) == 1 and corpus_wer([text], got).wer <= 0.25, got  # tiny.en, no prompt
        assert asr.utterances_segmented == 1              # the robot's voice was never even cut
    finally:
        run.close()


def test_say_cli_makes_its_wav_once_and_says_who_is_missing(tmp_path) -> None:
    from katazuke.cli.say import speech_file
    from katazuke.perception.speech import load_audio
    from katazuke.rosenv import ros_environment

    p = speech_file("tidy up", "en-us", 150, tmp_path)
    mtime = p.stat().st_mtime_ns
    assert load_audio(p).size > 8000                    # > 0.5 s of speech at 16 kHz
    assert speech_file("tidy up", "en-us", 150, tmp_path) == p and p.stat().st_mtime_ns == mtime
    assert speech_file("tidy up", "en-us", 200, tmp_path) != p
    env = ros_environment()
    env["ROS_DOMAIN_ID"] = "187"                         # nobody listens there
    r = subprocess.run([sys.executable, "-P", "-m", "katazuke.cli", "say", "tidy up", "--wait",
                        "1", "--cache", str(tmp_path)], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "nobody subscribes to '/play_file'" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-P", "-m", "katazuke.cli", "say", "hi", "--voice",
                        "xx-nonexistent", "--cache", str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "espeak-ng failed for voice" in r.stderr, r.stderr
