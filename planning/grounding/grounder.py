"""Grounding an instruction in a scene: :class:`Grounder` and :class:`Dialogue`.

``Grounder(config).ground(text, scene, confidence)`` returns a :class:`Grounding`: the intent,
the target candidates (best first, with probabilities), the destination, the ``Tidy`` goal to
send, and what to say. When the calibrated prediction set (conformal, see
:func:`~katazuke.planning.grounding.train.calibrate`) holds two or more objects, or the
transcript's confidence is low, it sends no goal and asks a question naming the attribute
that tells the options apart ("Do you mean the red mug on the table or the blue one on the
floor?"). :class:`Dialogue` keeps that question and grounds the next utterance as its answer
("the red one", "the one on the table", "the first one", "yes" / "no").

"Where is X?" is answered from the map: "The duck is on the shelf, near the green box."
An instruction naming nothing the robot knows, or nothing it sees, gets a sentence saying so
and no goal.
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np
import torch

from katazuke.planning.grounding.grammar import Intent, Tag
from katazuke.planning.grounding.lexicon import Lexicon
from katazuke.planning.grounding.model import lexicon_tensors, make_batch, scene_tensors
from katazuke.planning.grounding.scene import GroundingScene, SceneContainer, SceneObject
from katazuke.planning.grounding.text import tokens
from katazuke.planning.grounding.weights import (GroundingError, default_weights_path,
                                                 load_weights)
from katazuke.planning.tasks.config import TidyConfig
from katazuke.planning.tasks.parser import GoalMode, TidyGoal

__all__ = ["Candidate", "Grounding", "Grounder", "Dialogue", "OBJECT_INTENTS"]

OBJECT_INTENTS = frozenset({Intent.MOVE, Intent.WHERE_IS, Intent.LOOK_AT})
_DETERMINERS = {"the", "a", "an", "that", "this", "my", "some", "one", "please"}
_HELP = ("I can tidy up, put an object in a bin (e.g. 'put the duck in the red bin'), "
         "look at or find an object, or stop.")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A target or destination candidate (``GroundingCandidate``)."""

    object_id: int
    category: str
    description: str
    score: float
    container: str = ""          # destination candidates: the container id


@dataclasses.dataclass(frozen=True)
class Grounding:
    """What an utterance asks for (field for field ``GroundingResult`` plus the goal).

    Attributes:
        instruction: the text grounded.
        transcript_confidence: the transcript's confidence (1 for typed text).
        intent, intent_score: the intent and its probability.
        candidates: target objects, best first.
        selected: index of the chosen target in ``candidates``, -1 if none.
        target_id: its object id, 0 if none.
        destination_candidates: containers, best first.
        destination: chosen container id, ``""`` if none.
        destination_score: its probability.
        needs_clarification: a question was asked instead of acting.
        clarification_question: that question.
        answer: the sentence to say.
        goal: the ``Tidy`` goal to send (None: nothing moves).
        understood: False when nothing could be grounded.
        options: object ids the question offers, in its order.
        answered: this utterance answered a question (``Dialogue``).
        search_description: MOVE / LOOK_AT of an object the map does not hold yet: the
            target as said (``"bottle"``); ``goal`` then names it by description (id 0) and
            the task manager explores to find it. ``""`` otherwise.
    """

    instruction: str
    transcript_confidence: float
    intent: Intent
    intent_score: float
    candidates: tuple[Candidate, ...] = ()
    selected: int = -1
    target_id: int = 0
    destination_candidates: tuple[Candidate, ...] = ()
    destination: str = ""
    destination_score: float = 0.0
    needs_clarification: bool = False
    clarification_question: str = ""
    answer: str = ""
    goal: TidyGoal | None = None
    understood: bool = True
    options: tuple[int, ...] = ()
    answered: bool = False
    search_description: str = ""


class Grounder:
    """Grounds text in a :class:`GroundingScene` with the trained network.

    Args:
        config: the task manager's configuration (vocabulary, containers).
        weights: the weights file (default: the committed one).

    Raises:
        GroundingError: missing or corrupt weights (the message names the file).
    """

    def __init__(self, config: TidyConfig, weights: str | os.PathLike | None = None) -> None:
        self.config = config
        self.weights_path = weights or default_weights_path()
        self.net, self.calibration, self.provenance = load_weights(self.weights_path)
        self.lex = Lexicon(config)
        self._lt = lexicon_tensors(self.lex)
        self.prob_threshold = float(self.calibration.get("prob_threshold", 0.3))
        self.min_confidence = float(self.calibration.get("min_transcript_confidence", 0.35))
        self.max_options = int(self.calibration.get("max_options", 3))
        self._last_scene: tuple[GroundingScene | None, object] = (None, None)

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def scores(self, words: Sequence[str], scene: GroundingScene,
               choices: Sequence[int] = ()) -> dict[str, np.ndarray]:
        """Raw probabilities: ``intent (9,)``, ``target (N + 1,)`` (last = none),
        ``dest (C + 2,)`` (containers, own, none), ``tags (T, 4)``, ``relation (8,)``."""
        cached, st = self._last_scene
        if cached is not scene:        # a dialogue and a benchmark ask about one scene often
            st = scene_tensors(self.lex, scene)
            self._last_scene = (scene, st)
        b = make_batch(self.lex, [list(words)], [st], [list(choices)])
        o = self.net(b, self._lt)
        n = len(scene.objects)
        N = b["cand_mask"].shape[1]
        t = torch.softmax(o["target"], -1)[0].numpy()
        return {"intent": torch.softmax(o["intent"], -1)[0].numpy(),
                "target": np.concatenate([t[:n], t[N:N + 1]]),
                "dest": torch.softmax(o["dest"], -1)[0].numpy(),
                "tags": o["tag_probs"][0].numpy(),
                "relation": torch.softmax(o["relation"], -1)[0].numpy()}

    # ------------------------------------------------------------------ descriptions
    def noun(self, o: SceneObject) -> str:
        return self.lex.noun_for(o.kind, o.category)

    def place(self, scene: GroundingScene, o: SceneObject) -> str:
        """"on the table", "on the floor", "in the red bin"."""
        if o.support.startswith("in:"):
            c = scene.container(o.support[3:])
            return f"in the {self.container_name(c) if c else o.support[3:]}"
        return f"on the {o.support}"

    def container_name(self, c: SceneContainer | str) -> str:
        cid = c if isinstance(c, str) else c.id
        spec = next((x for x in self.config.containers if x.id == cid), None)
        noun = self.config.vocabulary.container_words[0] \
            if self.config.vocabulary.container_words else "bin"
        colour = spec.colour if spec is not None else getattr(c, "colour", "")
        return f"{colour} {noun}" if colour else cid

    def describe(self, scene: GroundingScene, o: SceneObject) -> str:
        """"the red mug on the table" (colour when known, support)."""
        col = f"{o.colour} " if o.colour else ""
        return f"the {col}{self.noun(o)} {self.place(scene, o)}"

    def _options_question(self, scene: GroundingScene, opts: Sequence[SceneObject]) -> str:
        """A question naming what tells ``opts`` apart."""
        if len(opts) == 1:
            return f"Do you mean {self.describe(scene, opts[0])}?"
        colours = [o.colour for o in opts]
        supports = [o.support for o in opts]
        use_colour = all(colours) and len(set(colours)) == len(colours)
        use_support = len(set(supports)) == len(supports)
        if not use_colour and not use_support:
            use_colour = all(colours) and len(set(colours)) > 1
            use_support = len(set(supports)) > 1
        nouns = [self.noun(o) for o in opts]
        parts = []
        vol = [o.volume for o in opts]
        d = scene.robot_distances()
        dist = [float(d[scene.objects.index(o)]) for o in opts]
        for k, o in enumerate(opts):
            noun = nouns[k] if k == 0 or nouns[k] != nouns[0] else "one"
            words = ["the"]
            if use_colour and o.colour:
                words.append(o.colour)
            extra = ""
            if not use_colour and not use_support:
                # size or distance when colour and support do not tell them apart
                if max(vol) >= 1.3 * min(vol):
                    words.append("bigger" if vol[k] == max(vol) else "smaller"
                                 if vol[k] == min(vol) else "middle-sized")
                else:
                    rank = sorted(range(len(opts)), key=lambda i: dist[i]).index(k)
                    extra = (" nearest to me" if rank == 0 else " farthest from me"
                             if rank == len(opts) - 1 else " in between")
            words.append(noun)
            text = " ".join(words) + extra
            if use_support:
                text += " " + self.place(scene, o)
            parts.append(text)
        body = ", ".join(parts[:-1]) + " or " + parts[-1]
        return f"Do you mean {body}?"

    # ------------------------------------------------------------------ grounding
    def ground(self, text: str, scene: GroundingScene, confidence: float = 1.0,
               choices: Sequence[int] = ()) -> Grounding:
        """Ground one utterance.

        Args:
            text: the utterance (any case, punctuation, digits).
            scene: the scene from the object map.
            confidence: the transcript's confidence in [0, 1] (1 for typed text).
            choices: object ids a pending question offered: the utterance is read as the
                answer, choosing among them (see :class:`Dialogue`).

        Raises:
            GroundingError: ``confidence`` outside [0, 1] or an unknown id in ``choices``.
        """
        if not (0.0 <= float(confidence) <= 1.0) or math.isnan(float(confidence)):
            raise GroundingError(f"transcript confidence must be in [0, 1]; got {confidence}")
        words = tokens(text)
        base = dict(instruction=text, transcript_confidence=float(confidence))
        if not words:
            return Grounding(**base, intent=Intent.UNKNOWN, intent_score=1.0, understood=False,
                             answer="I did not hear an instruction.")
        idx = {o.id: i for i, o in enumerate(scene.objects)}
        unknown_ids = [c for c in choices if c not in idx]
        if unknown_ids:
            raise GroundingError(f"choices {unknown_ids} are not objects of the scene")
        s = self.scores(words, scene, [idx[c] for c in choices])
        intent = Intent(int(np.argmax(s["intent"])))
        iscore = float(s["intent"][intent])
        base.update(intent=intent, intent_score=iscore)
        phrase = self._phrase(words, s["tags"], Tag.TARGET)
        if choices:
            return self._choice(words, s, scene, choices, base)
        if intent == Intent.TIDY_ALL:
            return Grounding(**base, goal=TidyGoal(GoalMode.TIDY_ALL, instruction=text),
                             answer="Tidying up: putting every object in its container.")
        if intent == Intent.STOP:
            return Grounding(**base, answer="Stopping.")
        if intent in (Intent.YES, Intent.NO, Intent.CHOICE):
            return Grounding(**base, understood=False,
                             answer="I have not asked anything. " + _HELP)
        if intent == Intent.UNKNOWN:
            return Grounding(**base, understood=False,
                             answer=f"I did not understand '{' '.join(words)}'. {_HELP}")
        return self._about_object(words, s, scene, base, phrase, confidence)

    def _phrase(self, words, tags, tag: Tag) -> str:
        w = [x for x, p in zip(words, tags) if p[tag] > 0.5]
        while w and w[0] in _DETERMINERS:
            w = w[1:]
        return " ".join(w)

    def _candidates(self, s, scene) -> tuple[list[Candidate], np.ndarray]:
        p = s["target"][:-1]
        order = np.argsort(-p, kind="stable")
        return [Candidate(scene.objects[i].id, scene.objects[i].category,
                          self.describe(scene, scene.objects[i]), float(p[i]))
                for i in order], order

    def _destinations(self, s, scene, target: SceneObject | None):
        ids = self.lex.container_ids
        p = s["dest"]
        own = target.destination if target is not None else ""
        merged: dict[str, float] = {}
        for i, cid in enumerate(ids):
            merged[cid] = merged.get(cid, 0.0) + float(p[i])
        if own:
            merged[own] = merged.get(own, 0.0) + float(p[len(ids)])
        cands = sorted(merged.items(), key=lambda kv: -kv[1])
        ids_of = {c.id: i for i, c in enumerate(scene.containers)}
        out = [Candidate(ids_of.get(cid, -1) + 1, "container",
                         f"the {self.container_name(cid)}", sc, cid) for cid, sc in cands]
        return out, float(p[len(ids) + 1])

    def _about_object(self, words, s, scene, base, phrase, confidence) -> Grounding:
        intent = base["intent"]
        p_none = float(s["target"][-1])
        cands, order = self._candidates(s, scene)
        if not scene.objects or p_none >= (cands[0].score if cands else 0.0):
            said = phrase or " ".join(words)
            known = [w for w in said.split() if self.lex.known_word(w)]
            if not known:
                kinds = ", ".join(self.known_objects())
                msg = f"I don't know an object called '{said}'; I know: {kinds}."
            elif phrase and intent in (Intent.MOVE, Intent.LOOK_AT):
                return self._search(s, scene, base, phrase, cands)
            else:
                msg = f"I don't see {_a(said)} {said}."
            return Grounding(**base, candidates=tuple(cands), understood=False, answer=msg)
        top = scene.objects[int(order[0])]
        dest_c, p_bad_dest = (self._destinations(s, scene, top) if intent == Intent.MOVE
                              else ([], 0.0))
        if intent == Intent.MOVE and p_bad_dest > dest_c[0].score:
            said = self._phrase(words, s["tags"], Tag.DEST) or "that"
            known = ", ".join(self.container_name(c.id) for c in self.config.containers)
            return Grounding(**base, candidates=tuple(cands), selected=0, target_id=top.id,
                             destination_candidates=tuple(dest_c), understood=False,
                             answer=f"I don't know a container called '{said}'; I know: "
                                    f"{known}.")
        in_set = [c for c in cands if c.score >= self.prob_threshold]
        low_conf = float(confidence) < self.min_confidence
        g = Grounding(**base, candidates=tuple(cands), selected=0, target_id=top.id,
                      destination_candidates=tuple(dest_c),
                      destination=dest_c[0].container if dest_c else "",
                      destination_score=dest_c[0].score if dest_c else 0.0)
        if len(in_set) >= 2 or low_conf:
            opts = in_set[:self.max_options] if len(in_set) >= 2 else cands[:1]
            objs = [scene.object(c.object_id) for c in opts]
            q = self._options_question(scene, objs)
            return dataclasses.replace(g, needs_clarification=True, clarification_question=q,
                                       answer=q, options=tuple(o.id for o in objs))
        return self.finish(g, scene, top.id)

    def _search(self, s, scene, base, phrase: str, cands) -> Grounding:
        """MOVE / LOOK_AT of a known kind of object the map does not hold yet: a goal by
        description (id 0), which the task manager explores the room to resolve."""
        intent = base["intent"]
        dest, dest_c = "", []
        if intent == Intent.MOVE:
            dest_c, p_bad_dest = self._destinations(s, scene, None)
            p = s["dest"]
            p_own = float(p[len(self.lex.container_ids)])
            if p_bad_dest > max(dest_c[0].score, p_own):
                said = self._phrase(tokens(base["instruction"]), s["tags"], Tag.DEST) or "that"
                known = ", ".join(self.container_name(c.id) for c in self.config.containers)
                return Grounding(**base, candidates=tuple(cands), understood=False,
                                 answer=f"I don't know a container called '{said}'; I know: "
                                        f"{known}.")
            # "away": the object's own container, which the task manager knows once seen
            dest = "" if p_own > dest_c[0].score else dest_c[0].container
        mode = GoalMode.MOVE if intent == Intent.MOVE else GoalMode.LOOK_AT
        goal = TidyGoal(mode, 0, phrase, dest, base["instruction"])
        return Grounding(**base, candidates=tuple(cands), destination_candidates=tuple(dest_c),
                         destination=dest, destination_score=dest_c[0].score if dest else 0.0,
                         goal=goal, search_description=phrase,
                         answer=f"I don't see {_a(phrase)} {phrase} yet; I will look for it.")

    def finish(self, g: Grounding, scene: GroundingScene, target_id: int) -> Grounding:
        """The goal and sentence of an object instruction once its target is chosen."""
        o = scene.object(target_id)
        sel = next((i for i, c in enumerate(g.candidates) if c.object_id == target_id), -1)
        desc = self.describe(scene, o)
        g = dataclasses.replace(g, selected=sel, target_id=target_id,
                                needs_clarification=False, clarification_question="")
        if g.intent == Intent.MOVE:
            dest = g.destination
            if g.destination_candidates and g.destination_candidates[0].container:
                # "away": the own container of the chosen object
                dest = g.destination_candidates[0].container
            if not dest:
                return dataclasses.replace(g, understood=False, answer=f"I don't know where "
                                           f"{desc} belongs; name a container.")
            goal = TidyGoal(GoalMode.MOVE, o.id, desc, dest, g.instruction)
            return dataclasses.replace(g, destination=dest, goal=goal,
                                       answer=f"Putting {desc} in the "
                                              f"{self.container_name(dest)}.")
        if g.intent == Intent.LOOK_AT:
            return dataclasses.replace(g, goal=TidyGoal(GoalMode.LOOK_AT, o.id, desc, "",
                                                        g.instruction),
                                       answer=f"Going to look at {desc}.")
        return dataclasses.replace(g, answer=self.where_is_answer(scene, o))

    def where_is_answer(self, scene: GroundingScene, o: SceneObject) -> str:
        """"The duck is on the shelf, near the green box." from the map."""
        col = f"{o.colour} " if o.colour else ""
        text = f"The {col}{self.noun(o)} is {self.place(scene, o)}"
        nb = scene.neighbour(o.id, 1.0)
        if isinstance(nb, SceneContainer):
            text += f", near the {self.container_name(nb)}"
        elif nb is not None:
            ncol = f"{nb.colour} " if nb.colour else ""
            text += f", near the {ncol}{self.noun(nb)}"
        return text + "."

    def _choice(self, words, s, scene, choices, base) -> Grounding:
        intent = base["intent"]
        p = s["target"][:-1]
        idx = {o.id: i for i, o in enumerate(scene.objects)}
        offered = [idx[c] for c in choices]
        if intent == Intent.YES:
            pick = offered[0]
        elif intent == Intent.NO:
            if len(offered) != 2:
                return Grounding(**base, understood=False, answer="Okay, I won't.")
            pick = offered[1]
        else:
            pick = max(offered, key=lambda i: p[i])
        o = scene.objects[pick]
        kept = intent if intent in (Intent.YES, Intent.NO) else Intent.CHOICE
        return Grounding(**{**base, "intent": kept}, target_id=o.id,
                         answer=self.describe(scene, o), answered=True,
                         candidates=tuple(Candidate(scene.objects[i].id,
                                                    scene.objects[i].category,
                                                    self.describe(scene, scene.objects[i]),
                                                    float(p[i])) for i in offered),
                         selected=offered.index(pick))

    def known_objects(self) -> list[str]:
        voc = self.config.vocabulary
        return [c.name for c in voc.categories] + sorted(
            {k.words[0] for k in voc.kinds if k.words} - {c.name for c in voc.categories})


def _a(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


class Dialogue:
    """One question at a time: a clarifying question and its answer.

    ``hear(text, scene)`` grounds a new instruction, or, while a question is pending,
    reads the utterance as its answer and finishes the asked-about instruction with the
    chosen object. A pending question is dropped when the utterance is a new command
    (any intent other than yes / no / a choice).

    Args:
        grounder: the :class:`Grounder`.
    """

    def __init__(self, grounder: Grounder) -> None:
        self.grounder = grounder
        self.pending: Grounding | None = None

    def hear(self, text: str, scene: GroundingScene, confidence: float = 1.0) -> Grounding:
        """Ground an utterance in the context of the pending question, if any.

        While a question is pending the utterance is its answer unless it is a new command
        (see :meth:`_new_command`).
        """
        g = self.grounder
        fresh = g.ground(text, scene, confidence)
        present = {o.id for o in scene.objects}
        if self.pending is not None:
            options = [i for i in self.pending.options if i in present]
            if options and not self._new_command(options, fresh):
                asked, self.pending = self.pending, None
                ans = g.ground(text, scene, confidence, options)
                if not ans.understood:
                    return dataclasses.replace(asked, needs_clarification=False,
                                               clarification_question="", answer=ans.answer,
                                               goal=None, understood=False, answered=True)
                return dataclasses.replace(g.finish(asked, scene, ans.target_id),
                                           answered=True)
            self.pending = None
        if fresh.needs_clarification:
            self.pending = fresh
        return fresh

    def _new_command(self, options: Sequence[int], fresh: Grounding) -> bool:
        """STOP and TIDY_ALL are new commands; so is an object instruction about an object
        the question did not offer. One about an offered object answers the question
        ("put the blue mug away" after "the red mug or the blue one?")."""
        if fresh.intent in (Intent.STOP, Intent.TIDY_ALL):
            return fresh.intent_score > 0.5
        if fresh.intent not in OBJECT_INTENTS or fresh.intent_score <= 0.5:
            return False
        return bool(fresh.target_id) and fresh.target_id not in options

    def cancel(self) -> None:
        """Forget the pending question."""
        self.pending = None

