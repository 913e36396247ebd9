"""grounding: instructions (spoken or typed) -> ``GroundingResult``, questions and answers.

A thin adapter over :mod:`katazuke.planning.grounding`: each utterance is grounded in the
latest object map (the robot's position from tf, the furniture from the task configuration)
by a :class:`~katazuke.planning.grounding.Dialogue` over the trained
:class:`~katazuke.planning.grounding.Grounder`; a pending clarifying question makes the next
utterance its answer. Without weights (missing or unreadable file: logged once, naming the
file) it falls back to the rule-based parser, which never asks.

Subscribes:
    transcript (katazuke_interfaces/Transcript, EVENTS): recognised speech (text, confidence).
    instruction (std_msgs/String, EVENTS): typed text (confidence 1).
    object_map (katazuke_interfaces/ObjectMap, LATCHED): the objects and containers.
    /tf, /tf_static: the robot's position ``map_frame`` -> ``base_frame``.
Publishes:
    grounding (katazuke_interfaces/GroundingResult, EVENTS): one per utterance; the task
        manager acts on it when its ``instruction_source`` is ``grounding`` (STOP cancels;
        TIDY_ALL, MOVE, LOOK_AT without ``needs_clarification`` become tasks).
    say (std_msgs/String, EVENTS): questions, "where is" answers, "I did not understand".
Serves:
    grounding/where_is (katazuke_interfaces/WhereIs): "where is <query>?" grounded in the map.

Parameters: :class:`GroundingNodeConfig` (``launch/params/grounding.yaml``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rclpy.node import Node
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from katazuke.config import dataclass, field, positive
from katazuke.errors import InputError
from katazuke.planning.grounding import Dialogue, Grounder, GroundingError, GroundingScene
from katazuke.planning.grounding.fallback import ParserGrounder
from katazuke.planning.tasks.config import load_tidy_config
from katazuke_interfaces.msg import GroundingCandidate, GroundingResult
from katazuke_interfaces.msg import ObjectMap as ObjectMapMsg
from katazuke_interfaces.msg import Transcript
from katazuke_interfaces.srv import WhereIs
from katazuke_ros import qos
from katazuke_ros.node_utils import LogOnce, declare_config, run_node
from katazuke_ros.tf_buffer import TransformBuffer

__all__ = ["GroundingNode", "GroundingNodeConfig", "result_msg", "main"]


@dataclass(frozen=True)
class GroundingNodeConfig:
    """Parameters of the grounding node."""

    tidy_config_file: str = field(default="", metadata={
        "help": "tidy.yaml whose task_manager block gives the vocabulary, containers and "
                "furniture; '' = the repository's launch/params/tidy.yaml"})
    weights: str = field(default="", metadata={
        "help": "grounding weights; '' = the committed planning/grounding/weights/"
                "grounding.pt; a missing or unreadable file falls back to the rule-based "
                "parser (logged)"})
    map_frame: str = field(default="map", metadata={"help": "frame of the object map"})
    base_frame: str = field(default="base_link", metadata={"help": "the robot's base frame"})
    tf_tolerance_s: float = positive(0.5, "tf lookup tolerance for the robot pose, s")


def _tidy_file(path: str) -> Path:
    if path:
        return Path(path)
    from katazuke.rosenv import repo_root

    return repo_root() / "launch" / "params" / "tidy.yaml"


def _candidate(c: Any) -> GroundingCandidate:
    return GroundingCandidate(object_id=int(max(c.object_id, 0)), category=c.category,
                              description=c.description, score=float(c.score))


def result_msg(g: Any, stamp: Any, frame: str = "") -> GroundingResult:
    """``GroundingResult`` of a :class:`~katazuke.planning.grounding.Grounding`."""
    m = GroundingResult()
    m.header.stamp = stamp
    m.header.frame_id = frame
    m.instruction = g.instruction
    m.transcript_confidence = float(g.transcript_confidence)
    m.intent = int(g.intent)
    m.intent_score = float(g.intent_score)
    m.candidates = [_candidate(c) for c in g.candidates]
    m.selected = int(g.selected if g.target_id else -1)
    m.target_id = int(g.target_id)
    m.destination_candidates = [_candidate(c) for c in g.destination_candidates]
    m.destination = g.destination
    m.destination_score = float(g.destination_score)
    m.needs_clarification = bool(g.needs_clarification)
    m.clarification_question = g.clarification_question
    m.answer = g.answer
    m.search_description = g.search_description
    return m


class GroundingNode(Node):
    """Grounds transcripts and typed instructions (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("grounding", **kwargs)
        self.node_config: GroundingNodeConfig = declare_config(self, GroundingNodeConfig)
        cfg = self.node_config
        self.tidy_config = load_tidy_config(_tidy_file(cfg.tidy_config_file))
        self._log = LogOnce(self)
        try:
            self.grounder: Any = Grounder(self.tidy_config, cfg.weights or None)
            self.dialogue: Dialogue | None = Dialogue(self.grounder)
            mode = f"weights {self.grounder.weights_path}"
        except GroundingError as exc:
            self.get_logger().error(f"{exc}; falling back to the rule-based parser "
                                    "(no clarifying questions)")
            self.grounder, self.dialogue = ParserGrounder(self.tidy_config), None
            mode = "rule-based parser (fallback)"
        self._tf = TransformBuffer()
        self._map: list[Any] = []
        self._robot_xy = (0.0, 0.0)
        self.results: list[GroundingResult] = []          # for tests and logs
        self._pub = self.create_publisher(GroundingResult, "grounding", qos.EVENTS)
        self._say_pub = self.create_publisher(String, "say", qos.EVENTS)
        self.create_subscription(Transcript, "transcript", self._on_transcript, qos.EVENTS)
        self.create_subscription(String, "instruction", self._on_instruction, qos.EVENTS)
        self.create_subscription(ObjectMapMsg, "object_map", self._on_map, qos.LATCHED)
        self.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), qos.STATE)
        self.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True),
                                 qos.LATCHED)
        self.create_service(WhereIs, "grounding/where_is", self._on_where_is)
        self.get_logger().info(f"grounding: {mode}")

    # ------------------------------------------------------------------ inputs
    def _on_tf(self, msg: TFMessage, static: bool) -> None:
        self._tf.add_tf_message(msg, static)

    def _on_map(self, msg: ObjectMapMsg) -> None:
        self._map = list(msg.objects)

    def _scene(self) -> GroundingScene:
        cfg = self.node_config
        now = self.get_clock().now().nanoseconds * 1e-9
        T, _ = self._tf.lookup(cfg.map_frame, cfg.base_frame, now, cfg.tf_tolerance_s)
        if T is not None:
            self._robot_xy = (float(T[0, 3]), float(T[1, 3]))
        return GroundingScene.from_instances(self._map, self.tidy_config, self._robot_xy)

    def _on_transcript(self, msg: Transcript) -> None:
        self.hear(msg.text, float(msg.confidence), msg.header.stamp)

    def _on_instruction(self, msg: String) -> None:
        self.hear(msg.data, 1.0, self.get_clock().now().to_msg())

    def hear(self, text: str, confidence: float, stamp: Any) -> GroundingResult | None:
        """Ground one utterance, publish the result and what to say."""
        if not text.strip():
            return None
        try:
            scene = self._scene()
            g = (self.dialogue.hear(text, scene, min(max(confidence, 0.0), 1.0))
                 if self.dialogue is not None else self.grounder.ground(text, scene, confidence))
        except (InputError, GroundingError) as exc:
            self._log.error("bad_input", f"could not ground '{text}': {exc}")
            return None
        m = result_msg(g, stamp, self.node_config.map_frame)
        self.results.append(m)
        self._pub.publish(m)
        self.get_logger().info(f"'{text}' -> {g.intent.name}"
                               + (f" object {g.target_id}" if g.target_id else "")
                               + (f" -> {g.destination}" if g.destination else "")
                               + (" (question)" if g.needs_clarification else ""))
        if g.answer:
            self._say_pub.publish(String(data=g.answer))
        return m

    def _on_where_is(self, req: WhereIs.Request, resp: WhereIs.Response) -> WhereIs.Response:
        q = req.query.strip()
        if not q:
            resp.found, resp.answer = False, "Ask for an object, e.g. 'the duck'."
            return resp
        text = q if q.lower().startswith("where") else f"where is {q}"
        try:
            g = self.grounder.ground(text, self._scene(), 1.0)
        except (InputError, GroundingError) as exc:
            resp.found, resp.answer = False, f"I could not answer: {exc}"
            return resp
        by_id = {int(o.id): o for o in self._map if o.category != "container"}
        resp.found = bool(g.target_id) and g.understood
        resp.answer = g.clarification_question or g.answer
        resp.matches = [by_id[c.object_id] for c in g.candidates[:5] if c.object_id in by_id]
        if g.target_id in by_id:
            resp.matches = [by_id[g.target_id]] + [m for m in resp.matches
                                                    if m.id != g.target_id]
        return resp


def main(args: list[str] | None = None) -> int:
    return run_node(GroundingNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
