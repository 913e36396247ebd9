"""katazuke_ros.node_utils.declare_config and the QoS registry."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from katazuke.errors import KatazukeError

pytestmark = pytest.mark.ros


@dataclass(frozen=True)
class Inner:
    gain: float = field(default=1.0, metadata={"help": "gain"})


@dataclass(frozen=True)
class NodeCfg:
    rate_hz: float = field(default=10.0, metadata={"help": "loop rate in Hz"})
    mode: str = "lqr"
    weights: tuple[float, ...] = (1.0, 2.0)
    inner: Inner = field(default_factory=Inner)
    names: tuple[str, ...] = ()
    gains: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.rate_hz <= 0:
            raise ValueError("rate_hz must be > 0")


def test_declare_config_roundtrip(ros_context) -> None:
    import rclpy
    from rclpy.parameter import Parameter

    from katazuke_ros.node_utils import declare_config

    node = rclpy.create_node("cfg", context=ros_context, parameter_overrides=[
        Parameter("rate_hz", value=25), Parameter("inner.gain", value=0.5),
        Parameter("names", value=["table", "shelf"])])
    try:
        cfg = declare_config(node, NodeCfg)
        assert cfg == NodeCfg(rate_hz=25.0, inner=Inner(gain=0.5), names=("table", "shelf"))
        assert cfg.gains == ()  # empty default, no override: stays empty, typed as doubles
        assert node.describe_parameter("gains").type == Parameter.Type.DOUBLE_ARRAY.value
        desc = node.describe_parameter("rate_hz")
        assert desc.description == "loop rate in Hz"
    finally:
        node.destroy_node()


def test_declare_config_rejects_bad_value(ros_context) -> None:
    import rclpy
    from rclpy.parameter import Parameter

    from katazuke_ros.node_utils import declare_config

    node = rclpy.create_node("cfg2", context=ros_context,
                             parameter_overrides=[Parameter("rate_hz", value=-1.0)])
    try:
        with pytest.raises(KatazukeError, match="rate_hz must be > 0"):
            declare_config(node, NodeCfg)
    finally:
        node.destroy_node()


def test_qos_profiles() -> None:
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from katazuke_ros import qos

    assert qos.SENSOR.reliability == ReliabilityPolicy.BEST_EFFORT and qos.SENSOR.depth == 1
    assert qos.LATCHED.durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert qos.by_name("command") is qos.COMMAND
    with pytest.raises(ValueError, match="use one of"):
        qos.by_name("fast")


def test_node_topic_names_are_relative(repo) -> None:
    """Every topic/service a node creates is relative (namespace-able), except the global
    /tf, /tf_static and /clock."""
    import re

    pkg = repo / "ros_ws" / "src" / "katazuke_ros" / "katazuke_ros"
    call = re.compile(r"create_(?:publisher|subscription|service|client)\(\s*[\w.]+,\s*f?\"(/[^\"]*)\"")
    absolute = [(p.name, name) for p in sorted(pkg.glob("*.py"))
                for name in call.findall(p.read_text())
                if name not in ("/tf", "/tf_static", "/clock")]
    assert not absolute, f"absolute topic names break namespaced launches: {absolute}"
