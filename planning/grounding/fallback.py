"""The rule-based parser behind the :class:`~katazuke.planning.grounding.Grounder` interface.

Used when no grounding weights are available: the task manager's
:class:`~katazuke.planning.tasks.parser.InstructionParser` parses the text and resolves the
object phrase in the scene (nearest match first); it never asks a question.
"""
from __future__ import annotations

from katazuke.planning.grounding.grammar import Intent
from katazuke.planning.grounding.grounder import Candidate, Grounding
from katazuke.planning.grounding.scene import GroundingScene
from katazuke.planning.tasks.config import TidyConfig
from katazuke.planning.tasks.items import MapObject
from katazuke.planning.tasks.parser import GoalMode, InstructionParser, TidyGoal

__all__ = ["ParserGrounder"]


class ParserGrounder:
    """``ground(text, scene, confidence)`` with the rule-based parser (no questions)."""

    def __init__(self, config: TidyConfig) -> None:
        self.config = config
        self.parser = InstructionParser(config)

    def ground(self, text: str, scene: GroundingScene, confidence: float = 1.0) -> Grounding:
        res = self.parser.parse(text)
        intent = Intent(int(res.intent))
        base = dict(instruction=text, transcript_confidence=float(confidence), intent=intent,
                    intent_score=1.0)
        if not res.understood:
            return Grounding(**base, understood=False, answer=res.message)
        if res.query is None or intent not in (Intent.MOVE, Intent.WHERE_IS, Intent.LOOK_AT):
            return Grounding(**base, goal=res.goal, answer=res.message)
        objs = [MapObject(o.id, o.category, o.position, 1.0, o.kind, o.colour, o.destination)
                for o in scene.objects]
        r = self.parser.resolve(res.query, objs, scene.robot_xy)
        if not r.found:
            return Grounding(**base, understood=False, answer=r.message)
        n = len(r.candidates)
        cands = tuple(Candidate(i, scene.object(i).category, res.query.text, 1.0 / n)
                      for i in r.candidates)
        o = scene.object(r.object_id)
        if intent == Intent.WHERE_IS:
            return Grounding(**base, candidates=cands, selected=0, target_id=o.id,
                             answer=self.parser.where_is_answer(res.query, objs,
                                                                scene.robot_xy))
        dest = res.container or o.destination if intent == Intent.MOVE else ""
        goal = TidyGoal(GoalMode.MOVE if intent == Intent.MOVE else GoalMode.LOOK_AT, o.id,
                        res.query.text, dest, text)
        return Grounding(**base, candidates=cands, selected=0, target_id=o.id,
                         destination=dest, destination_score=1.0 if dest else 0.0, goal=goal,
                         answer=res.message)
