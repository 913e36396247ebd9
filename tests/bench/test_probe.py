"""katazuke.ros.probe.Probe: collect, wait_for, spin_for, background spinning, close."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.ros


def test_probe_collects_what_another_probe_publishes():
    from std_msgs.msg import String

    from katazuke.ros.probe import Probe

    with Probe("probe_talker") as talker, Probe("probe_listener") as listener:
        got = listener.collect("probe_test", String, "events")
        pub = talker.publisher("probe_test", String, "events")

        def send_and_check() -> bool:
            pub.publish(String(data="hi"))
            talker.spin_once(0.01)
            return len(got) >= 3

        assert listener.wait_for(send_and_check, timeout=20.0)
        t, msg = got[0]
        assert msg.data == "hi" and t > 0
        n0 = len(got)
        listener.spin_for(0.2)  # nothing published: nothing new arrives beyond in-flight ones
        assert len(got) >= n0


def test_probe_background_and_close_idempotent():
    from std_msgs.msg import String

    from katazuke.ros.probe import Probe

    talker = Probe("probe_bg_talker")
    listener = Probe("probe_bg_listener")
    try:
        got = listener.collect("probe_bg", String, 10, keep=False)
        listener.spin_in_background()
        pub = talker.publisher("probe_bg", String, 10)

        def send() -> bool:
            pub.publish(String(data="x"))
            return len(got) >= 2

        assert talker.wait_for(send, timeout=20.0)
        assert got[0][1] is None  # keep=False counts without storing
    finally:
        listener.close()
        listener.close()
        talker.close()


def test_qos_profile_names():
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from katazuke.errors import ConfigError
    from katazuke.ros.probe import qos_profile

    assert qos_profile("sensor").reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos_profile("latched").durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert qos_profile(7).depth == 7
    with pytest.raises(ConfigError):
        qos_profile("nope")
