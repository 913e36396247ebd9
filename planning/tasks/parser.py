"""Rule-based instruction parser: typed (or transcribed) text -> a ``Tidy`` goal.

``InstructionParser(config).parse(text)`` understands:

* tidy everything: "tidy up", "clean the room", "put everything away";
* move X to Y: "put the toy in the red bin", "move the mug to the blue box", "put the duck
  away" (Y = the object's own container);
* look at X / where is X: "go and look at the duck", "where is the mug?";
* stop: "stop", "cancel";
* yes / no (answers to a later clarifying question).

Words come from :class:`~katazuke.planning.tasks.config.Vocabulary` (categories, kinds,
container nouns, furniture) and the container colours of the assignment. Anything it does
not know yields ``understood = False`` and a message naming the unknown phrase and listing
what is known; such a result carries no goal, so nothing moves. :meth:`InstructionParser.resolve`
grounds the object phrase in the object map (kind or category, colour, furniture), nearest
to the robot first, and reports ambiguity with the candidates. The spoken-grounding issue
replaces this class through the same seam (text in, :class:`ParseResult` out).
"""
from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Iterable, Sequence

from katazuke.planning.tasks.config import TidyConfig
from katazuke.planning.tasks.items import MapObject

__all__ = ["Intent", "GoalMode", "TidyGoal", "ObjectQuery", "ParseResult", "Resolution",
           "InstructionParser"]


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


class GoalMode(enum.IntEnum):
    """``Tidy.action`` goal modes (values of ``MODE_*``)."""

    TIDY_ALL = 0
    MOVE = 1
    LOOK_AT = 2


@dataclasses.dataclass(frozen=True)
class TidyGoal:
    """A ``Tidy`` action goal (field for field).

    Attributes:
        mode: :class:`GoalMode`.
        object_id: ``ObjectInstance.id`` (MOVE, LOOK_AT); 0 = resolve ``object_description``.
        object_description: the object phrase, used when ``object_id`` is 0.
        container: destination container id (MOVE); ``""`` = the object's own container.
        instruction: the original text, for logs.
    """

    mode: GoalMode
    object_id: int = 0
    object_description: str = ""
    container: str = ""
    instruction: str = ""


@dataclasses.dataclass(frozen=True)
class ObjectQuery:
    """The parsed object phrase.

    Attributes:
        text: the phrase as said, determiners removed ("red mug on the table").
        noun: the matched noun phrase ("mug").
        category: the category it names.
        kinds: kind names it names (empty when it names a whole category).
        colour: a colour adjective, ``""`` if none.
        furniture: furniture it is said to be on / near, ``""`` if none.
        plural: the phrase was plural or quantified ("the toys", "all bottles").
    """

    text: str
    noun: str
    category: str
    kinds: tuple[str, ...] = ()
    colour: str = ""
    furniture: str = ""
    plural: bool = False


@dataclasses.dataclass(frozen=True)
class ParseResult:
    """The parser's answer.

    Attributes:
        intent: :class:`Intent`.
        instruction: the original text.
        understood: False when a word or phrase was not understood (then ``goal`` is None).
        goal: the ``Tidy`` goal to send, None for STOP, YES, NO and anything not understood.
        query: the object phrase (MOVE, LOOK_AT, WHERE_IS), None otherwise.
        container: the destination container id (MOVE), ``""`` = the object's own.
        message: a sentence for the user: what will happen, or what was not understood and
            what is known.
        unknown: the phrase that was not understood, ``""`` if none.
    """

    intent: Intent
    instruction: str
    understood: bool
    goal: TidyGoal | None = None
    query: ObjectQuery | None = None
    container: str = ""
    message: str = ""
    unknown: str = ""


@dataclasses.dataclass(frozen=True)
class Resolution:
    """An object phrase grounded in the object map.

    Attributes:
        found: at least one map object matches.
        object_id: the chosen one (nearest to the robot), 0 if none.
        candidates: ids of every match, nearest first.
        distances: their distances to the robot, m (aligned with ``candidates``).
        ambiguous: more than one object matches (a clarifying question may be asked).
        message: a sentence for the user.
    """

    found: bool
    object_id: int = 0
    candidates: tuple[int, ...] = ()
    distances: tuple[float, ...] = ()
    ambiguous: bool = False
    message: str = ""


#: Colour words (language, not the world: any of them may describe an object; only the
#: configured container colours name containers).
COLOURS = ("red", "blue", "green", "yellow", "orange", "purple", "violet", "pink", "black",
           "white", "grey", "gray", "brown", "cyan", "magenta", "beige", "gold", "silver")
_FILLER = ("please", "could you", "can you", "would you", "will you", "kindly", "robot", "hey",
           "now", "for me", "go ahead and", "i want you to", "i'd like you to",
           "i would like you to",
           "you")
_DETERMINERS = ("the", "a", "an", "that", "this", "my", "your", "some", "one", "those", "these",
                "of")
_QUANTIFIERS = ("all", "every", "each", "both")
_STOP = re.compile(r"^(stop|cancel|halt|abort|freeze|never ?mind|forget it|emergency stop)\b")
_YES = re.compile(r"^(yes|yeah|yep|sure|ok|okay|correct|right|that one)$")
_NO = re.compile(r"^(no|nope|not that one|wrong)$")
_WHERE = re.compile(r"^(where is|where's|wheres|where are|where did|find|locate|do see|"
                    r"have seen|show me where)\s+(?P<obj>.+?)(\s+go|\s+is|\s+are)?$")
_LOOK = re.compile(r"^(go and look at|go look at|go and see|go see|look at|have a look at|"
                   r"go and check on|go and check|check on|check|inspect|go to|go over to|"
                   r"go and find|show me)\s+(?P<obj>.+)$")
_TIDY_VERB = re.compile(r"\b(tidy|clean|declutter|straighten|sort out|organi[sz]e)\b")
_TIDY_GENERAL = re.compile(r"^(up|away|the room|this room|room|everything|it all|all|"
                           r"the place|this place|the mess|this mess|things|stuff|the floor|"
                           r"the house|the toys and things|up the room|up everything|"
                           r"up this mess|up the mess|up the place|up the floor|up please|"
                           r"up here|around|around here|)$")
_PUT_ALL = re.compile(r"^(put|place|move|clear|pack)\s+(everything|all|things|stuff|"
                      r"all the things|it all|all the stuff)\s*(away|back|up|where it belongs|"
                      r"where they belong|in its place|in their places|in place)?$|"
                      r"^(put|pack|clear)\s+(away|up)\s+(everything|all|things|stuff|"
                      r"all the things|all the stuff)$")
_MOVE = re.compile(r"^(put|move|place|bring|take|carry|drop|throw|toss|stick|get|return|"
                   r"pack|tidy away|clear away)\s+(?P<rest>.+)$")
_PREPS = ("back into", "back in", "in to", "into", "inside", "in", "onto", "on to", "on", "to",
          "towards", "away in", "away into")
_OWN = re.compile(r"^(away|back|where it belongs|where they belong|in its place|in its bin|"
                  r"its bin|its container|its place|their bins|the right bin|the right place|"
                  r"the correct bin|where it goes)$")
_LOCATION = re.compile(r"\s+(on|from|under|near|by|next to|beside|in front of|off|at)\s+"
                       r"(?P<where>.+)$")


def _normalise(text: str) -> str:
    t = text.lower().replace("’", "'")
    t = re.sub(r"[^a-z0-9_' ]+", " ", t)
    t = " " + re.sub(r"\s+", " ", t).strip() + " "
    for f in sorted(_FILLER, key=len, reverse=True):
        t = t.replace(f" {f} ", " ")
    return re.sub(r"\s+", " ", t).strip()


def _strip_determiners(words: list[str]) -> tuple[list[str], bool]:
    quant = False
    while words and (words[0] in _DETERMINERS or words[0] in _QUANTIFIERS):
        quant |= words[0] in _QUANTIFIERS or words[0] in ("those", "these", "some")
        words = words[1:]
    return words, quant


class InstructionParser:
    """Parse instructions with the configured vocabulary and container assignment.

    Args:
        config: the task manager's configuration (``vocabulary``, ``containers``).
    """

    def __init__(self, config: TidyConfig) -> None:
        self.config = config
        voc = config.vocabulary
        self._noun: dict[str, tuple[str, tuple[str, ...]]] = {}     # phrase -> (category, kinds)
        for c in voc.categories:
            for w in (c.name, *c.words):
                self._noun[w] = (c.name, ())
        kind_words: dict[str, list[str]] = {}
        for k in voc.kinds:
            for w in (k.name.replace("_", " "), *k.words):
                kind_words.setdefault(w, []).append(k.name)
        self._kind_category = {k.name: k.category for k in voc.kinds}
        for w, names in kind_words.items():
            if w in self._noun:
                continue                # a category word wins over a kind's alias ("bottle")
            cats = {self._kind_category[n] for n in names}
            if len(cats) == 1:
                self._noun[w] = (cats.pop(), tuple(sorted(set(names))))
        self._max_words = max((len(w.split()) for w in self._noun), default=1)
        self._container_by_colour = {c.colour: c.id for c in config.containers if c.colour}
        self._container_ids = {c.id for c in config.containers}
        self._container_words = tuple(voc.container_words)
        self._furniture: dict[str, str] = {}
        for f in voc.furniture:
            for w in (f.name, *f.words):
                self._furniture[w] = f.name
        self._furniture_spec = {f.name: f for f in voc.furniture}

    # ------------------------------------------------------------------ vocabulary lists
    def known_containers(self) -> list[str]:
        """Container names users can say ("red bin", ...), in configuration order."""
        noun = self._container_words[0] if self._container_words else "bin"
        return [f"{c.colour} {noun}" if c.colour else c.id for c in self.config.containers]

    def known_objects(self) -> list[str]:
        """Categories, then kind names, that the parser understands."""
        cats = [c.name for c in self.config.vocabulary.categories]
        kinds = sorted({(k.words[0] if k.words else k.name.replace("_", " "))
                        for k in self.config.vocabulary.kinds})
        return cats + [k for k in kinds if k not in cats]

    # ------------------------------------------------------------------ parsing
    def parse(self, text: str) -> ParseResult:
        """Parse one instruction.

        Args:
            text: the instruction, any case and punctuation.

        Returns:
            The :class:`ParseResult`; ``goal`` is None unless it was understood and asks for
            a task (MOVE, LOOK_AT, WHERE_IS -> a LOOK_AT goal, TIDY_ALL).
        """
        t = _normalise(text)
        if not t:
            return self._not_understood(text, "", "I did not hear an instruction.")
        if _STOP.match(t):
            return ParseResult(Intent.STOP, text, True, message="Stopping.")
        if _YES.match(t):
            return ParseResult(Intent.YES, text, True, message="")
        if _NO.match(t):
            return ParseResult(Intent.NO, text, True, message="")
        if _PUT_ALL.match(t):
            return self._tidy_all(text)
        m = _TIDY_VERB.search(t)
        if m:
            rest = t[m.end():].strip()
            if _TIDY_GENERAL.match(rest):
                return self._tidy_all(text)
        m = _WHERE.match(t)
        if m:
            return self._about_object(text, m.group("obj"), Intent.WHERE_IS)
        m = _LOOK.match(t)
        if m:
            obj = m.group("obj")
            target = " ".join(_strip_determiners(obj.split())[0])
            if target in self._furniture:
                return self._not_understood(
                    text, target, f"I can look at objects, not at the "
                    f"{self._furniture[target]}; I know these objects: "
                    f"{', '.join(self.known_objects())}.")
            return self._about_object(text, obj, Intent.LOOK_AT)
        m = _MOVE.match(t)
        if m:
            return self._move(text, m.group("rest"))
        if m := _TIDY_VERB.search(t):
            rest = t[m.end():].strip()
            rest = re.sub(r"^(up|away)\s+", "", rest)
            return self._move(text, rest + " away")
        return self._not_understood(
            text, t, f"I did not understand '{t}'. I can tidy up, put an object in a bin "
            f"(e.g. 'put the toy in the red bin'), look at or find an object, or stop.")

    def _tidy_all(self, text: str) -> ParseResult:
        return ParseResult(Intent.TIDY_ALL, text, True,
                           TidyGoal(GoalMode.TIDY_ALL, instruction=text),
                           message="Tidying up: putting every object in its container.")

    def _not_understood(self, text: str, unknown: str, message: str,
                        intent: Intent = Intent.UNKNOWN) -> ParseResult:
        return ParseResult(intent, text, False, None, message=message, unknown=unknown)

    def _about_object(self, text: str, phrase: str, intent: Intent) -> ParseResult:
        q, err = self.parse_object(phrase)
        if q is None:
            return self._not_understood(text, err, self.unknown_object_message(err), intent)
        goal = TidyGoal(GoalMode.LOOK_AT, 0, q.text, "", text)
        msg = (f"Looking for the {q.text}." if intent == Intent.WHERE_IS
               else f"Going to look at the {q.text}.")
        return ParseResult(intent, text, True, goal, q, message=msg)

    def unknown_object_message(self, phrase: str) -> str:
        """The answer to an object phrase naming nothing known."""
        return (f"I don't know an object called '{phrase}'; I know: "
                f"{', '.join(self.known_objects())}.")

    def _move(self, text: str, rest: str) -> ParseResult:
        words = rest.split()
        obj_words, dest_words, dest_prep = words, None, ""
        # The destination follows the last preposition whose tail names a place; earlier
        # prepositions belong to the object phrase ("the mug on the table in the blue bin").
        for i in range(len(words) - 1, 0, -1):
            for prep in _PREPS:
                pw = prep.split()
                if words[i:i + len(pw)] == pw and i + len(pw) < len(words):
                    tail = words[i + len(pw):]
                    if self._names_place(tail):
                        obj_words, dest_words, dest_prep = words[:i], tail, prep
                        break
            if dest_words is not None:
                break
        if dest_words is None:
            # "put the duck away" / "put away the duck" / "put the duck back"
            if obj_words and obj_words[0] in ("away", "back"):
                obj_words = obj_words[1:]
            for tail in ("away", "back", "where it belongs", "where they belong",
                         "in its place", "up"):
                tw = tail.split()
                if obj_words[-len(tw):] == tw:
                    obj_words = obj_words[:-len(tw)]
                    break
            else:
                if any(w in ("in", "into", "to", "on", "onto", "inside") for w in words):
                    # a destination phrase that names nothing known
                    for i in range(len(words) - 1, 0, -1):
                        if words[i] in ("in", "into", "to", "on", "onto", "inside"):
                            dest = " ".join(_strip_determiners(words[i + 1:])[0])
                            return self._not_understood(
                                text, dest, f"I don't know a container called '{dest}'; I know: "
                                f"{', '.join(self.known_containers())}.")
            dest_words = []
        container, err = self._container(dest_words, dest_prep)
        if err:
            return self._not_understood(text, " ".join(_strip_determiners(dest_words)[0]), err)
        q, bad = self.parse_object(" ".join(obj_words))
        if q is None:
            return self._not_understood(text, bad, self.unknown_object_message(bad))
        where = (f"the {self._container_name(container)}" if container
                 else "their containers" if q.plural else "its container")
        return ParseResult(Intent.MOVE, text, True,
                           TidyGoal(GoalMode.MOVE, 0, q.text, container, text), q, container,
                           message=f"Putting the {q.text} in {where}.")

    def _container_name(self, cid: str) -> str:
        for c, name in zip(self.config.containers, self.known_containers()):
            if c.id == cid:
                return name
        return cid

    def _names_place(self, words: list[str]) -> bool:
        w, _ = _strip_determiners(list(words))
        if not w:
            return False
        phrase = " ".join(w)
        return (phrase in self._container_ids or w[-1] in self._container_words
                or phrase in self._furniture or bool(_OWN.match(phrase))
                or (w[0] in COLOURS and len(w) <= 2))

    def _container(self, words: list[str], prep: str) -> tuple[str, str]:
        """Container id for a destination phrase (``""`` = the object's own), or an error."""
        w, _ = _strip_determiners(list(words))
        phrase = " ".join(w)
        known = ", ".join(self.known_containers())
        if not w or _OWN.match(phrase):
            return "", ""
        if phrase in self._container_ids:
            return phrase, ""
        if phrase in self._furniture:
            return "", (f"I can only put things into containers, and the "
                        f"{self._furniture[phrase]} is furniture; I know these containers: "
                        f"{known}.")
        colour = next((x for x in w if x in COLOURS), "")
        noun = w[-1] if w[-1] in self._container_words else ""
        if colour and colour in self._container_by_colour and (noun or len(w) == 1):
            return self._container_by_colour[colour], ""
        if noun and not colour and len(w) == 1:
            return "", ""               # "in the bin": the object's own container
        return "", f"I don't know a container called '{phrase}'; I know: {known}."

    def parse_object(self, phrase: str) -> tuple[ObjectQuery | None, str]:
        """Parse an object phrase ("the red mug on the table").

        Returns:
            ``(query, "")``, or ``(None, unknown_phrase)`` when no known object noun is in it.
        """
        phrase = phrase.strip()
        furniture = ""
        m = _LOCATION.search(" " + phrase)
        if m:
            wh, _ = _strip_determiners(m.group("where").split())
            fname = self._furniture.get(" ".join(wh))
            if fname:
                furniture = fname
                phrase = (" " + phrase)[:m.start()].strip()
        words, plural = _strip_determiners(phrase.split())
        if not words:
            return None, phrase or "(nothing)"
        colour = next((w for w in words if w in COLOURS), "")
        best: tuple[int, int, str] | None = None
        for n in range(min(self._max_words, len(words)), 0, -1):
            for i in range(len(words) - n, -1, -1):     # rightmost first: English heads are last
                cand = " ".join(words[i:i + n])
                if cand in self._noun:
                    best = (i, n, cand)
                    break
            if best:
                break
        if best is None and words[-1].endswith("s") and len(words[-1]) > 3:
            # plural head noun: "markers", "boxes", "teddies"
            stem = words[-1]
            for sing in (stem[:-3] + "y" if stem.endswith("ies") else None,
                         stem[:-2] if stem.endswith("es") else None, stem[:-1]):
                if sing and sing in self._noun:
                    words = words[:-1] + [sing]
                    best, plural = (len(words) - 1, 1, sing), True
                    break
        text = " ".join(words) + (f" on the {furniture}" if furniture else "")
        if best is None:
            nouns = [w for w in words if w not in COLOURS]
            return None, " ".join(nouns) or " ".join(words)
        cat, kinds = self._noun[best[2]]
        plural |= best[2].endswith("s") and best[2] not in ("glass",) and not kinds and \
            best[2] != cat
        return ObjectQuery(text, best[2], cat, kinds, colour, furniture, plural), ""

    # ------------------------------------------------------------------ grounding
    def resolve(self, query: ObjectQuery, objects: Iterable[MapObject],
                robot_xy: Sequence[float], exclude: Iterable[int] = ()) -> Resolution:
        """Ground an object phrase in the object map, nearest to the robot first.

        Matching: the kind when both the query and the object carry one, else the category;
        the colour when both carry one; the furniture footprint (with 10 cm margin) when the
        phrase names furniture with a footprint ("floor": centre below 0.15 m).

        Args:
            query: from :meth:`parse_object` / :attr:`ParseResult.query`.
            objects: the map objects.
            robot_xy: robot position in the map frame, m.
            exclude: ids not to consider (e.g. already placed).
        """
        skip = set(exclude)
        matches = []
        for o in objects:
            if o.id in skip or not self._matches(query, o):
                continue
            matches.append((math.hypot(o.position[0] - robot_xy[0], o.position[1] - robot_xy[1]),
                            o.id))
        matches.sort()
        if not matches:
            return Resolution(False, message=f"I haven't seen a {query.text} yet.")
        ids = tuple(i for _, i in matches)
        dists = tuple(d for d, _ in matches)
        if len(ids) == 1:
            return Resolution(True, ids[0], ids, dists, False,
                              f"Found the {query.text} ({dists[0]:.1f} m away).")
        listing = ", ".join(f"{i} ({d:.1f} m)" for i, d in matches[:5])
        return Resolution(True, ids[0], ids, dists, not query.plural,
                          f"I see {len(ids)} that match '{query.text}': {listing}; "
                          f"taking the nearest.")

    def _matches(self, q: ObjectQuery, o: MapObject) -> bool:
        if q.kinds and o.kind:
            if o.kind not in q.kinds:
                return False
        elif o.category != q.category and self._kind_category.get(o.kind) != q.category:
            return False
        if q.colour and o.colour and o.colour != q.colour:
            return False
        if q.furniture:
            f = self._furniture_spec[q.furniture]
            if f.size_xy[0] > 0 and f.size_xy[1] > 0:
                if (abs(o.position[0] - f.center_xy[0]) > f.size_xy[0] / 2 + 0.1
                        or abs(o.position[1] - f.center_xy[1]) > f.size_xy[1] / 2 + 0.1):
                    return False
            elif q.furniture == "floor" and o.position[2] > 0.15:
                return False
        return True

    def where_is_answer(self, query: ObjectQuery, objects: Sequence[MapObject],
                        robot_xy: Sequence[float]) -> str:
        """A sentence answering "where is the X?" from the object map."""
        res = self.resolve(query, objects, robot_xy)
        if not res.found:
            return res.message
        o = next(x for x in objects if x.id == res.object_id)
        place = self.place_of(o)
        more = f" I see {len(res.candidates) - 1} more." if len(res.candidates) > 1 else ""
        return (f"The {query.noun} is {place}, {res.distances[0]:.1f} m from me "
                f"(x {o.position[0]:.2f}, y {o.position[1]:.2f}).{more}")

    def place_of(self, o: MapObject) -> str:
        """Where an object is, in words ("on the table", "in the red bin", "on the floor")."""
        if o.inside:
            return f"in the {self._container_name(o.inside)}"
        for f in self._furniture_spec.values():
            if (f.size_xy[0] > 0 and f.size_xy[1] > 0
                    and abs(o.position[0] - f.center_xy[0]) <= f.size_xy[0] / 2 + 0.05
                    and abs(o.position[1] - f.center_xy[1]) <= f.size_xy[1] / 2 + 0.05):
                return f"on the {f.name}"
        return "on the floor" if o.position[2] < 0.15 else "in the room"
