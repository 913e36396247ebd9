"""The ``grounding`` ROS 2 node, for real with rclpy: a test node publishes the object map,
tf, typed instructions and transcripts; the grounding results, what is said and the
``grounding/where_is`` service are awaited."""
from __future__ import annotations

from typing import Any

import pytest

from katazuke.testing import wait_for

pytestmark = pytest.mark.ros

# id, category, kind, colour, position (table centre (0.4, 1.3) top 0.55 m, shelf (-1.5, 2.3))
OBJECTS = [(1, "toy", "duck", "yellow", (-1.4, 2.3, 0.5)),
           (2, "kitchenware", "mug", "red", (0.3, 1.2, 0.6)),
           (3, "kitchenware", "mug", "blue", (1.0, -0.6, 0.04))]
CONTAINERS = [("bin_red", "red", (-1.9, -1.9, 0.09)), ("bin_blue", "blue", (-0.9, -1.95, 0.09)),
              ("bin_green", "green", (1.95, -0.9, 0.09)),
              ("bin_yellow", "yellow", (1.95, 0.2, 0.09))]


class Harness:
    def __init__(self, ctx: Any, **params: Any) -> None:
        import numpy as np
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from std_msgs.msg import String
        from tf2_msgs.msg import TFMessage

        from katazuke.ros.conversions import instance_msg, transform_stamped
        from katazuke_interfaces.msg import GroundingResult, ObjectMap, Transcript
        from katazuke_interfaces.srv import WhereIs
        from katazuke_ros import qos
        from katazuke_ros.grounding_node import GroundingNode

        self.gn = GroundingNode(context=ctx, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
        self.node = n = rclpy.create_node("grounding_test", context=ctx)
        self.instr = n.create_publisher(String, "instruction", qos.EVENTS)
        self.transcript = n.create_publisher(Transcript, "transcript", qos.EVENTS)
        map_pub = n.create_publisher(ObjectMap, "object_map", qos.LATCHED)
        tf_pub = n.create_publisher(TFMessage, "/tf_static", qos.LATCHED)
        stamp = n.get_clock().now().to_msg()
        tf_pub.publish(TFMessage(transforms=[transform_stamped(np.eye(4), "map", "base_link",
                                                               stamp)]))
        m = ObjectMap()
        m.header.frame_id = "map"
        for oid, cat, kind, colour, pos in OBJECTS:
            m.objects.append(instance_msg(oid, cat, 0.9, pos, (0.06, 0.06, 0.08), 0.0, 1.0, 5,
                                          "", kind=kind, dominant_color=colour))
        for k, (cid, colour, pos) in enumerate(CONTAINERS):
            m.objects.append(instance_msg(100 + k, "container", 1.0, pos, (0.4, 0.32, 0.18), 0.0,
                                          1.0, 5, f"{cid}:{colour}", dominant_color=colour))
        map_pub.publish(m)
        self.results: list[Any] = []
        self.says: list[str] = []
        n.create_subscription(GroundingResult, "grounding", self.results.append, qos.EVENTS)
        n.create_subscription(String, "say", lambda s: self.says.append(s.data), qos.EVENTS)
        self.where = n.create_client(WhereIs, "grounding/where_is")
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.gn)
        self.ex.add_node(n)

    def spin_until(self, cond, timeout: float = 10.0) -> bool:
        return wait_for(cond, timeout, spin=lambda: self.ex.spin_once(timeout_sec=0.01))

    def ready(self) -> bool:
        return (len(self.gn._map) == len(OBJECTS) + len(CONTAINERS)
                and self.instr.get_subscription_count() > 0
                and self.node.count_subscribers("transcript") > 0 and bool(self.node.count_publishers("grounding")))

    def say(self, text: str) -> Any:
        from std_msgs.msg import String

        k = len(self.results)
        self.instr.publish(String(data=text))
        assert self.spin_until(lambda: len(self.results) > k), f"no result for '{text}'"
        return self.results[k]

    def close(self) -> None:
        self.ex.shutdown()
        self.gn.destroy_node()
        self.node.destroy_node()


@pytest.fixture
def harness(ros_context):
    made: list[Harness] = []

    def make(**kw: Any) -> Harness:
        h = Harness(ros_context, **kw)
        made.append(h)
        assert h.spin_until(h.ready), "grounding node, map and test node not connected"
        return h

    yield make
    for h in made:
        h.close()


def test_typed_instruction_question_and_answer(harness) -> None:
    from katazuke_interfaces.msg import GroundingResult

    h = harness()
    r = h.say("put the duck in the red bin")
    assert r.intent == GroundingResult.INTENT_MOVE and r.target_id == 1
    assert r.destination == "bin_red" and not r.needs_clarification
    assert r.transcript_confidence == pytest.approx(1.0)
    assert r.candidates[r.selected].object_id == 1 and r.candidates[0].score > 0.5
    r = h.say("put the mug in the green bin")
    assert r.needs_clarification and r.target_id in (2, 3)
    assert h.spin_until(lambda: h.says and h.says[-1] == r.clarification_question)
    assert "red" in r.clarification_question and "blue" in r.clarification_question
    r = h.say("the red one")
    assert r.intent == GroundingResult.INTENT_MOVE and r.target_id == 2
    assert r.destination == "bin_green" and not r.needs_clarification


def test_transcript_where_is_and_unknown_object(harness) -> None:
    from katazuke_interfaces.msg import GroundingResult, Transcript
    from katazuke_interfaces.srv import WhereIs

    h = harness()
    k = len(h.results)
    h.transcript.publish(Transcript(text="where is the duck", confidence=0.9,
                                    hypotheses=["where is the duck"], confidences=[0.9]))
    assert h.spin_until(lambda: len(h.results) > k)
    r = h.results[k]
    assert r.intent == GroundingResult.INTENT_WHERE_IS and r.target_id == 1
    assert r.transcript_confidence == pytest.approx(0.9) and "shelf" in r.answer
    r = h.say("put the banana in the red bin")
    assert r.intent != GroundingResult.INTENT_TIDY_ALL and r.target_id == 0
    assert "banana" in r.answer
    assert h.spin_until(h.where.service_is_ready)
    fut = h.where.call_async(WhereIs.Request(query="the blue mug"))
    assert h.spin_until(fut.done)
    resp = fut.result()
    assert resp.found and resp.matches[0].id == 3 and "floor" in resp.answer


def test_missing_weights_fall_back_to_the_parser(harness, tmp_path) -> None:
    from katazuke_interfaces.msg import GroundingResult

    h = harness(weights=str(tmp_path / "none.pt"))
    r = h.say("put the duck in the red bin")
    assert r.intent == GroundingResult.INTENT_MOVE and r.target_id == 1
    assert r.destination == "bin_red" and not r.needs_clarification
