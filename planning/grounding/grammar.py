"""Instruction generator: a template-and-paraphrase grammar over a scene.

:class:`InstructionGenerator` writes what a user would say about a scene, with the labels
grounding learns from: the intent, the target object, the destination container, a tag per
word (part of the target phrase, of the destination phrase, of an anchor phrase such as
"the bowl" in "left of the bowl") and the spatial relation used. Referring expressions are
built from the *true* attributes the user sees (kind, colour, which furniture, size,
distance, left / right as seen from the robot) until they single the target out; a small
share is left under-specified on purpose, as users do, so that clarification has work.

Every template, paraphrase and vocabulary synonym belongs to one split: ``train`` or
``test`` (held out). A list of synonyms keeps its last entry for ``test`` when it has two
or more; the held-out object kinds simply never appear in ``train``-profile rooms.
:func:`split_phrases` exposes the lists so a test can check that the splits are disjoint.
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence

import numpy as np

from katazuke.errors import InputError
from katazuke.planning.grounding.scene import FLOOR, GroundingScene
from katazuke.planning.grounding.text import tokens
from katazuke.planning.tasks.config import TidyConfig

__all__ = ["Intent", "Relation", "Tag", "Example", "InstructionGenerator", "split_phrases",
           "TEMPLATES", "SPLITS", "synonym_split", "relation_holds", "REL_LIMITS"]

SPLITS = ("train", "test")


class Intent(enum.IntEnum):
    """What an instruction asks for (values of ``GroundingResult.INTENT_*``)."""

    UNKNOWN = 0
    MOVE = 1
    WHERE_IS = 2
    TIDY_ALL = 3
    STOP = 4
    LOOK_AT = 5
    YES = 6
    NO = 7
    CHOICE = 8


class Relation(enum.IntEnum):
    """The non-lexical relation a referring expression uses (one at most)."""

    NONE = 0
    NEAREST = 1     #: nearest to the robot
    FARTHEST = 2
    BIGGEST = 3
    SMALLEST = 4
    LEFT_OF = 5     #: of an anchor object, as seen from the robot
    RIGHT_OF = 6
    NEAR = 7        #: next to an anchor object


class Tag(enum.IntEnum):
    """Role of a word."""

    O = 0
    TARGET = 1
    DEST = 2
    ANCHOR = 3


#: Limits that make a relation true of one object and not of the others (shared with the
#: model's relation features): distance margin (m), size ratio, side offset (m), anchor
#: radius (m).
REL_LIMITS = {"dist_margin_m": 0.3, "size_ratio": 1.6, "side_m": 0.08, "anchor_radius_m": 1.2,
              "near_margin_m": 0.25}

# ---------------------------------------------------------------------------------- phrases
# Each entry: (train list, test list). {T} target phrase, {D} destination phrase.
TEMPLATES: dict[Intent, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Intent.MOVE: (
        ("put {T} {D}", "move {T} {D}", "place {T} {D}", "please put {T} {D}",
         "can you move {T} {D}", "could you put {T} {D}", "take {T} {D}", "bring {T} {D}",
         "put {T} {D} please", "i want {T} {D}", "robot put {T} {D}", "now move {T} {D}"),
        ("would you mind putting {T} {D}", "go and put {T} {D}", "grab {T} and put it {D}",
         "drop {T} {D}", "carry {T} {D}", "could you please place {T} {D}",
         "i would like {T} {D}")),
    Intent.WHERE_IS: (
        ("where is {T}", "where is {T} please", "do you know where {T} is",
         "where did {T} go", "can you tell me where {T} is", "robot where is {T}",
         "tell me where {T} is"),
        ("have you seen {T}", "any idea where {T} is", "where can i find {T}",
         "could you tell me where {T} is")),
    Intent.LOOK_AT: (
        ("look at {T}", "go and look at {T}", "go look at {T}", "have a look at {T}",
         "check on {T}", "please look at {T}"),
        ("take a look at {T}", "go over and look at {T}", "could you check on {T}")),
    Intent.TIDY_ALL: (
        ("tidy up", "tidy the room", "clean up", "clean the room", "put everything away",
         "tidy up everything", "please tidy up the room", "clean up this mess",
         "tidy up please", "put all the things away", "clean up the room please"),
        ("could you clean up around here", "tidy up this place", "put everything back",
         "please clean up the mess", "tidy the whole room")),
    Intent.STOP: (
        ("stop", "stop now", "cancel", "cancel that", "halt", "stop stop", "please stop",
         "stop moving", "cancel the task", "stop please"),
        ("stop it right now", "stop what you are doing", "cancel it", "halt now")),
    Intent.YES: (
        ("yes", "yeah", "yes please", "yep", "sure", "okay", "yes that one", "correct"),
        ("yeah sure", "yes correct", "that is correct")),
    Intent.NO: (
        ("no", "nope", "no thanks", "not that one", "wrong", "no no"),
        ("nope not that", "no wrong one", "no that is wrong")),
    Intent.UNKNOWN: (
        ("what time is it", "sing me a song", "open the window", "turn on the lights",
         "how are you", "tell me a joke", "what is the weather like", "hello there",
         "good morning", "dance for me", "call my mother"),
        ("play some music", "what day is it today", "close the door", "order a pizza",
         "who are you")),
}
CHOICE_TEMPLATES = (("the {A} one", "the one {P}", "{A} one", "the {A} {N}", "the {N} {P}",
                     "i mean the one {P}", "that one {P}", "the {A} one please"),
                    ("i meant the {A} one", "it is the one {P}", "the one that is {P}",
                     "it is the {A} {N}"))
ORDER_ANSWERS = (("the first one", "the first", "the second one", "the second",
                  "the third one"), ("the former", "the latter", "the last one"))
DEST_COLOUR = (("in the {C} bin", "into the {C} bin", "in the {C} box", "to the {C} bin",
                "in the {C} basket", "into the {C} container"),
               ("inside the {C} tub", "in the {C} bucket", "over into the {C} bin"))
DEST_CATEGORY = (("in the {K} bin", "into the {K} box"), ("in the bin for {K}",))
DEST_OWN = (("away", "back", "where it belongs", "in its bin", "back in its place",
             "in the right bin"), ("where it goes", "back where it belongs", "in its box"))
# relation phrases: pre-modifiers (before the noun) and post-modifiers ({A} = anchor)
REL_PRE = {Relation.NEAREST: (("nearest", "closest"), ("nearer",)),
           Relation.FARTHEST: (("farthest", "furthest"), ("most distant",)),
           Relation.BIGGEST: (("big", "large", "biggest", "largest"), ("bigger", "huge")),
           Relation.SMALLEST: (("small", "little", "smallest", "tiny"), ("smaller", "tiniest"))}
REL_POST = {Relation.NEAREST: (("nearest to you", "closest to you", "near you"),
                               ("closest to the robot", "that is nearest to you")),
            Relation.FARTHEST: (("farthest from you", "furthest away", "far from you"),
                                ("furthest from the robot", "farthest away from you")),
            Relation.LEFT_OF: (("left of {A}", "to the left of {A}"),
                               ("on the left of {A}", "left from {A}")),
            Relation.RIGHT_OF: (("right of {A}", "to the right of {A}"),
                                ("on the right of {A}", "right from {A}")),
            Relation.NEAR: (("next to {A}", "near {A}", "beside {A}", "by {A}"),
                            ("close to {A}", "right beside {A}"))}
SUPPORT_POST = (("on the {F}", "that is on the {F}", "from the {F}", "lying on the {F}"),
                ("sitting on the {F}", "over on the {F}"))
#: nouns of things the robot does not know (for "I don't see a ..." examples)
UNKNOWN_NOUNS = (("banana", "phone", "laptop", "remote", "keys", "plant", "lamp", "shoe",
                  "hat", "spoon"), ("wallet", "umbrella", "guitar", "apple", "charger"))
UNKNOWN_COLOURS = (("purple", "orange", "pink"), ("black", "white"))


def synonym_split(words: Sequence[str], split: str) -> tuple[str, ...]:
    """The synonyms of one list that belong to ``split`` (the last one is held out when
    there are two or more; plurals of another entry are dropped)."""
    ws = [w for w in words if not (w.endswith("s") and (w[:-1] in words or w[:-2] in words))]
    if len(ws) < 2:
        return tuple(ws) if split == "train" else ()
    return tuple(ws[:-1]) if split == "train" else (ws[-1],)


def _pick(pair: tuple[Sequence[str], Sequence[str]], split: str) -> Sequence[str]:
    return pair[0] if split == "train" else pair[1]


def split_phrases(config: TidyConfig) -> dict[str, dict[str, set[str]]]:
    """Every phrase list of the grammar by split: ``{name: {"train": set, "test": set}}``."""
    out: dict[str, dict[str, set[str]]] = {}
    for intent, pair in TEMPLATES.items():
        out[f"template:{intent.name}"] = {s: set(_pick(pair, s)) for s in SPLITS}
    for name, pair in (("choice", CHOICE_TEMPLATES), ("order", ORDER_ANSWERS),
                       ("dest_colour", DEST_COLOUR), ("dest_category", DEST_CATEGORY),
                       ("dest_own", DEST_OWN), ("support", SUPPORT_POST),
                       ("unknown_nouns", UNKNOWN_NOUNS)):
        out[name] = {s: set(_pick(pair, s)) for s in SPLITS}
    for rel, pair in {**{("pre", k): v for k, v in REL_PRE.items()},
                      **{("post", k): v for k, v in REL_POST.items()}}.items():
        out[f"rel:{rel[0]}:{rel[1].name}"] = {s: set(_pick(pair, s)) for s in SPLITS}
    voc = config.vocabulary
    for k in voc.kinds:
        out[f"kind:{k.name}"] = {s: set(synonym_split(k.words, s)) for s in SPLITS}
    for c in voc.categories:
        out[f"category:{c.name}"] = {s: set(synonym_split(c.words, s)) for s in SPLITS}
    for f in voc.furniture:
        out[f"furniture:{f.name}"] = {s: set(synonym_split((f.name, *f.words), s))
                                      for s in SPLITS}
    return out


@dataclasses.dataclass(frozen=True)
class Example:
    """One generated instruction with its labels.

    Attributes:
        words: the words said.
        tags: a :class:`Tag` per word.
        intent: :class:`Intent`.
        target: index into the scene's objects, -1 for none (no object, or an object the
            robot does not know).
        destination: container id, ``""`` when the instruction names none (not MOVE), or
            ``"?"`` for a container the robot does not know.
        own_destination: the instruction said "away" / "back" (the target's own container).
        relation: the :class:`Relation` of the target phrase.
        choices: for CHOICE (answers to a question): the object indices offered, in the
            order the question named them; empty otherwise.
        ambiguous: the target phrase fits more than one object (left under-specified).
    """

    words: tuple[str, ...]
    tags: tuple[int, ...]
    intent: Intent
    target: int = -1
    destination: str = ""
    own_destination: bool = False
    relation: Relation = Relation.NONE
    choices: tuple[int, ...] = ()
    ambiguous: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.words)


class _Phrase:
    """Words with tags being assembled."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.tags: list[int] = []

    def add(self, text: str, tag: Tag) -> "_Phrase":
        for w in tokens(text):
            self.words.append(w)
            self.tags.append(int(tag))
        return self


def relation_holds(scene: GroundingScene, rel: Relation, target: int, pool: Sequence[int],
                   anchor: int = -1) -> bool:
    """Whether ``rel`` singles out object ``target`` among ``pool`` (object indices)."""
    lim = REL_LIMITS
    others = [i for i in pool if i != target and i != anchor]
    if not others:
        return False
    if rel in (Relation.NEAREST, Relation.FARTHEST):
        d = scene.robot_distances()
        sign = 1.0 if rel == Relation.NEAREST else -1.0
        return all(sign * (d[i] - d[target]) >= lim["dist_margin_m"] for i in others)
    if rel in (Relation.BIGGEST, Relation.SMALLEST):
        v = np.array([o.volume for o in scene.objects])
        if rel == Relation.BIGGEST:
            return all(v[target] >= lim["size_ratio"] * v[i] for i in others)
        return all(v[i] >= lim["size_ratio"] * v[target] for i in others)
    if anchor < 0:
        return False
    D = scene.pair_distances()
    if D[target, anchor] > lim["anchor_radius_m"]:
        return False
    if rel == Relation.NEAR:
        return all(D[i, anchor] - D[target, anchor] >= lim["near_margin_m"] for i in others)
    side = scene.side_of()
    sign = 1.0 if rel == Relation.LEFT_OF else -1.0
    if sign * side[target, anchor] < lim["side_m"]:
        return False
    rivals = [i for i in others if sign * side[i, anchor] >= lim["side_m"]
              and D[i, anchor] <= lim["anchor_radius_m"]]
    return all(D[i, anchor] - D[target, anchor] >= lim["near_margin_m"] for i in rivals)


class InstructionGenerator:
    """Writes labelled instructions about a scene.

    Args:
        config: the task manager's configuration (vocabulary, containers).
        split: ``"train"`` or ``"test"``: which templates, paraphrases and synonyms to use.
        underspecify: probability that a referring expression stops at the noun although
            it fits several objects.
        unknown_rate: probability that a MOVE / WHERE_IS / LOOK_AT names an object (or a
            container) the robot does not know.
    """

    INTENT_WEIGHTS = {Intent.MOVE: 0.40, Intent.WHERE_IS: 0.14, Intent.LOOK_AT: 0.08,
                      Intent.TIDY_ALL: 0.06, Intent.STOP: 0.05, Intent.YES: 0.03,
                      Intent.NO: 0.03, Intent.UNKNOWN: 0.04, Intent.CHOICE: 0.17}

    def __init__(self, config: TidyConfig, split: str, underspecify: float = 0.06,
                 unknown_rate: float = 0.04) -> None:
        if split not in SPLITS:
            raise InputError(f"InstructionGenerator split {split!r}: use one of {SPLITS}")
        self.config, self.split = config, split
        self.underspecify, self.unknown_rate = float(underspecify), float(unknown_rate)
        voc = config.vocabulary
        self._kind_words = {k.name: synonym_split(k.words or (k.name.replace("_", " "),), split)
                            for k in voc.kinds}
        self._kind_cat = {k.name: k.category for k in voc.kinds}
        self._cat_words = {c.name: synonym_split((c.name, *c.words), split)
                           for c in voc.categories}
        self._furn_words = {f.name: synonym_split((f.name, *f.words), split)
                            for f in voc.furniture}
        if FLOOR not in self._furn_words:
            self._furn_words[FLOOR] = ("floor",) if split == "train" else ()

    # ------------------------------------------------------------------ public
    def generate(self, scene: GroundingScene, truth: dict[int, dict], rng: np.random.Generator,
                 intent: Intent | None = None) -> Example:
        """One instruction about ``scene``.

        Args:
            scene: the scene as the map shows it.
            truth: per object index, what the user sees: ``{"kind", "colour", "support"}``
                (the map may lack the kind or colour, or be a little off).
            rng: randomness.
            intent: force this intent (default: drawn with :attr:`INTENT_WEIGHTS`).
        """
        if intent is None:
            names = list(self.INTENT_WEIGHTS)
            p = np.array([self.INTENT_WEIGHTS[n] for n in names])
            intent = names[int(rng.choice(len(names), p=p / p.sum()))]
        if not scene.objects and intent in (Intent.MOVE, Intent.WHERE_IS, Intent.LOOK_AT,
                                            Intent.CHOICE):
            intent = Intent.TIDY_ALL
        if intent == Intent.CHOICE:
            ex = self._choice(scene, truth, rng)
            if ex is not None:
                return ex
            intent = Intent.MOVE
        if intent in (Intent.MOVE, Intent.WHERE_IS, Intent.LOOK_AT):
            return self._about_object(scene, truth, rng, intent)
        tpl = self._choose(_pick(TEMPLATES[intent], self.split), rng)
        ph = _Phrase().add(tpl, Tag.O)
        return Example(tuple(ph.words), tuple(ph.tags), intent)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _choose(options: Sequence, rng: np.random.Generator):
        return options[int(rng.integers(len(options)))]

    def _nouns(self, kind: str, category: str) -> list[tuple[str, bool]]:
        """(noun, is_kind_word) the user may say for an object."""
        out = [(w, True) for w in self._kind_words.get(kind, ())]
        out += [(w, False) for w in self._cat_words.get(category, ())]
        return out

    def _fits_noun(self, truth: dict, noun: str, is_kind: bool) -> bool:
        if is_kind:
            return noun in self._kind_words.get(truth["kind"], ())
        return noun in self._cat_words.get(self._kind_cat.get(truth["kind"], ""), ())

    def _colour_ok(self, colour: str) -> bool:
        return bool(colour)

    def _referring(self, scene: GroundingScene, truth: dict[int, dict], target: int,
                   rng: np.random.Generator, allow_relations: bool = True):
        """Target phrase parts: (pre words, noun, post phrase with anchor, relation,
        ambiguous, anchor phrase) or None when no noun is available in this split."""
        t = truth[target]
        nouns = self._nouns(t["kind"], self._kind_cat.get(t["kind"], ""))
        if not nouns:
            return None
        kind_nouns = [n for n in nouns if n[1]]
        noun, is_kind = (self._choose(kind_nouns, rng) if kind_nouns and rng.random() < 0.65
                         else self._choose(nouns, rng))
        pool = [i for i in range(len(scene.objects)) if self._fits_noun(truth[i], noun, is_kind)]
        colour = support = ""
        rel, anchor = Relation.NONE, -1
        order = ["colour", "support", "relation"]
        rng.shuffle(order)
        under = len(pool) > 1 and rng.random() < self.underspecify
        extra = rng.random() < 0.2           # say one true attribute more than needed
        for attr in order:
            if under or (len(pool) <= 1 and not extra):
                break
            if attr == "colour" and t["colour"]:
                new = [i for i in pool if truth[i]["colour"] == t["colour"]]
                if len(new) < len(pool) or (extra and len(pool) == 1):
                    pool, colour = new, t["colour"]
                    extra = extra and len(pool) > 1
            elif attr == "support" and self._furn_words.get(t["support"]):
                new = [i for i in pool if truth[i]["support"] == t["support"]]
                if len(new) < len(pool) or (extra and len(pool) == 1):
                    pool, support = new, t["support"]
                    extra = extra and len(pool) > 1
            elif attr == "relation" and allow_relations and len(pool) > 1:
                rel, anchor = self._relation(scene, truth, target, pool, rng)
                if rel != Relation.NONE:
                    pool = [target]
        ambiguous = len(pool) > 1
        return noun, colour, support, rel, anchor, ambiguous

    def _relation(self, scene, truth, target, pool, rng) -> tuple[Relation, int]:
        rels = [Relation.NEAREST, Relation.FARTHEST, Relation.BIGGEST, Relation.SMALLEST,
                Relation.LEFT_OF, Relation.RIGHT_OF, Relation.NEAR]
        rng.shuffle(rels)
        for rel in rels:
            if rel in (Relation.LEFT_OF, Relation.RIGHT_OF, Relation.NEAR):
                anchors = [j for j in range(len(scene.objects)) if j not in pool
                           and self._unique_noun(truth, j)]
                rng.shuffle(anchors)
                for j in anchors[:6]:
                    if relation_holds(scene, rel, target, pool, j):
                        return rel, j
            elif relation_holds(scene, rel, target, pool):
                return rel, -1
        return Relation.NONE, -1

    def _unique_noun(self, truth, j) -> bool:
        t = truth[j]
        for noun, is_kind in self._nouns(t["kind"], self._kind_cat.get(t["kind"], "")):
            if is_kind and sum(self._fits_noun(x, noun, True) for x in truth.values()) == 1:
                return True
        return False

    def _anchor_phrase(self, truth, j, rng) -> str:
        t = truth[j]
        for noun, is_kind in self._nouns(t["kind"], self._kind_cat.get(t["kind"], "")):
            if is_kind and sum(self._fits_noun(x, noun, True) for x in truth.values()) == 1:
                return f"the {noun}"
        raise InputError("anchor without a unique noun")   # _relation only picks unique ones

    def _target_phrase(self, ph: _Phrase, ref, truth, rng, noun_word: str | None = None,
                       determiner: str = "the") -> None:
        noun, colour, support, rel, anchor, _ = ref
        ph.add(determiner, Tag.TARGET)
        if rel in REL_PRE and (rel not in REL_POST or rng.random() < 0.5):
            ph.add(self._choose(_pick(REL_PRE[rel], self.split), rng), Tag.TARGET)
            post_rel = None
        else:
            post_rel = rel if rel != Relation.NONE else None
        if colour:
            ph.add(colour, Tag.TARGET)
        ph.add(noun if noun_word is None else noun_word, Tag.TARGET)
        if support:
            f = self._choose(self._furn_words[support], rng)
            ph.add(self._choose(_pick(SUPPORT_POST, self.split), rng).format(F=f), Tag.TARGET)
        if post_rel is not None:
            tpl = self._choose(_pick(REL_POST[post_rel], self.split), rng)
            before, _, after = tpl.partition("{A}")
            ph.add(before, Tag.TARGET)
            if "{A}" in tpl:
                ph.add(self._anchor_phrase(truth, anchor, rng), Tag.ANCHOR)
            ph.add(after, Tag.TARGET)

    def _destination(self, ph: _Phrase, target_truth: dict, rng) -> tuple[str, bool]:
        containers = self.config.containers
        r = rng.random()
        if r < self.unknown_rate:
            known = {c.colour for c in containers}
            cols = [c for c in _pick(UNKNOWN_COLOURS, self.split) if c not in known]
            if cols:
                ph.add(self._choose(_pick(DEST_COLOUR, self.split), rng)
                       .format(C=self._choose(cols, rng)), Tag.DEST)
                return "?", False
        if r < 0.35:
            ph.add(self._choose(_pick(DEST_OWN, self.split), rng), Tag.DEST)
            return target_truth["destination"], True
        c = self._choose(containers, rng)
        if r < 0.5 and c.categories:
            cat = self._choose(c.categories, rng)
            ph.add(self._choose(_pick(DEST_CATEGORY, self.split), rng).format(K=cat), Tag.DEST)
        else:
            ph.add(self._choose(_pick(DEST_COLOUR, self.split), rng).format(C=c.colour),
                   Tag.DEST)
        return c.id, False

    def _about_object(self, scene, truth, rng, intent: Intent) -> Example:
        tpl = self._choose(_pick(TEMPLATES[intent], self.split), rng)
        ph = _Phrase()
        unknown = rng.random() < self.unknown_rate
        target = int(rng.integers(len(scene.objects)))
        ref = None if unknown else self._referring(scene, truth, target, rng)
        dest, own = "", False
        before, _, rest = tpl.partition("{T}")
        ph.add(before, Tag.O)
        if ref is None:
            noun = self._choose(_pick(UNKNOWN_NOUNS, self.split), rng)
            ph.add(f"the {noun}", Tag.TARGET)
            target = -1
        else:
            self._target_phrase(ph, ref, truth, rng)
        if "{D}" in rest:
            mid, _, after = rest.partition("{D}")
            ph.add(mid, Tag.O)
            dest, own = self._destination(ph, truth[target] if target >= 0 else
                                          {"destination": ""}, rng)
            ph.add(after, Tag.O)
        else:
            ph.add(rest, Tag.O)
        rel = ref[3] if ref is not None else Relation.NONE
        return Example(tuple(ph.words), tuple(ph.tags), intent, target, dest, own, rel, (),
                       bool(ref[5]) if ref is not None else False)

    def _choice(self, scene, truth, rng) -> Example | None:
        """An answer to "the A or the B?": the offered objects and the words choosing one."""
        n = len(scene.objects)
        if n < 2:
            return None
        target = int(rng.integers(n))
        t = truth[target]
        same = [i for i in range(n) if i != target and truth[i]["kind"] == t["kind"]]
        others = same if same and rng.random() < 0.7 else [i for i in range(n) if i != target]
        k = 1 if len(others) < 2 or rng.random() < 0.75 else 2
        rng.shuffle(others)
        offered = [target, *others[:k]]
        rng.shuffle(offered)
        return self.answer(scene, truth, target, offered, rng)

    def answer(self, scene: GroundingScene, truth: dict[int, dict], target: int,
               offered: Sequence[int], rng: np.random.Generator) -> Example | None:
        """The user's answer to "the A or the B?" choosing ``target`` among ``offered``
        (object indices, in the question's order): an ordinal ("the first one") or the
        attribute that tells it apart ("the red one", "the one on the table"); None when
        nothing tells it apart in this split's words."""
        offered = list(offered)
        t = truth[target]
        ph = _Phrase()
        if rng.random() < 0.15:
            pos = offered.index(target)
            words = [a for a in _pick(ORDER_ANSWERS, self.split)
                     if _order_fits(a, pos, len(offered))]
            if words:
                ph.add(self._choose(words, rng), Tag.TARGET)
                return Example(tuple(ph.words), tuple(ph.tags), Intent.CHOICE, target,
                               choices=tuple(offered))
        n = len(scene.objects)
        ref = self._referring(scene, {i: truth[i] for i in range(n)}, target, rng)
        if ref is None:
            return None
        # distinguishing attributes among the offered ones only
        rivals = [i for i in offered if i != target]
        attrs = []
        if t["colour"] and all(truth[i]["colour"] != t["colour"] for i in rivals):
            attrs.append(("colour", t["colour"]))
        if self._furn_words.get(t["support"]) and all(truth[i]["support"] != t["support"]
                                                      for i in rivals):
            attrs.append(("support", t["support"]))
        for rel in (Relation.BIGGEST, Relation.SMALLEST, Relation.NEAREST, Relation.FARTHEST):
            if relation_holds(scene, rel, target, offered):
                attrs.append(("rel", rel))
        if not attrs:
            return None
        kind, value = self._choose(attrs, rng)
        tpls = _pick(CHOICE_TEMPLATES, self.split)
        tpl = self._choose(tpls, rng)
        if kind == "colour" or (kind == "rel" and value in REL_PRE):
            tpls = [x for x in tpls if "{A}" in x]
            tpl = self._choose(tpls, rng)
            a = value if kind == "colour" else self._choose(_pick(REL_PRE[value], self.split),
                                                            rng)
            rel = value if kind == "rel" else Relation.NONE
            filled = tpl.replace("{A}", a)
        else:
            tpls = [x for x in tpls if "{P}" in x]
            tpl = self._choose(tpls, rng)
            if kind == "support":
                f = self._choose(self._furn_words[value], rng)
                p = self._choose(_pick(SUPPORT_POST, self.split), rng).format(F=f)
                rel = Relation.NONE
            else:
                p = self._choose(_pick(REL_POST[value], self.split), rng)
                rel = value
            filled = tpl.replace("{P}", p)
        filled = filled.replace("{N}", ref[0])
        ph.add(filled, Tag.TARGET)
        return Example(tuple(ph.words), tuple(ph.tags), Intent.CHOICE, target,
                       relation=rel, choices=tuple(offered))


def _order_fits(answer: str, pos: int, n: int) -> bool:
    words = answer.split()
    if "first" in words or "former" in words:
        return pos == 0
    if "second" in words:
        return pos == 1
    if "third" in words:
        return pos == 2
    if "latter" in words:
        return pos == 1 and n == 2
    if "last" in words:
        return pos == n - 1
    return False
