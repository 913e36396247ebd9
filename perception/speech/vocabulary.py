"""The robot's own vocabulary, for the recogniser's prompt (never test transcripts).

:func:`base_vocabulary` holds what the robot always knows: the detector's categories, the
object map's landmarks (furniture and bins) and the verbs of the commands it acts on;
:func:`object_vocabulary` adds what the object map holds now (kinds, colours, containers).
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["COMMAND_WORDS", "base_vocabulary", "object_vocabulary", "spoken"]

#: The verbs of the commands the robot acts on (issue 14's intents: move X to Y, tidy up,
#: where is X, stop / cancel, yes / no answers).
COMMAND_WORDS = ("put", "move", "pick up", "take", "bring", "tidy up", "where is", "find", "stop",
                 "cancel", "yes", "no")

# Catalogue names that are not what people say.
_SPOKEN = {"blob a": "blob", "blob b": "blob", "blob c": "blob", "proc mug": "mug"}


def spoken(name: str) -> str:
    """A kind or category name as said: underscores as spaces, catalogue codes mapped."""
    s = " ".join(name.replace("_", " ").split()).lower()
    return _SPOKEN.get(s, s)


def base_vocabulary() -> list[str]:
    """Categories, furniture and bins of the object map's defaults, and :data:`COMMAND_WORDS`."""
    from katazuke.perception.objectmap.config import DEFAULT_LANDMARKS
    from katazuke.perception.objectmap.objectmap import KNOWN_CATEGORIES

    places = [lm.split("=")[0] for lm in DEFAULT_LANDMARKS]
    bins = [p for p in places if p.endswith(" bin")]
    furniture = [p for p in places if not p.endswith(" bin")]
    words = list(KNOWN_CATEGORIES) + bins + furniture + ["floor"] + list(COMMAND_WORDS)
    return list(dict.fromkeys(words))


def object_vocabulary(objects: Iterable[tuple[str, str, str, str]]) -> list[str]:
    """Words from object-map entries ``(category, kind, colour, destination)``.

    Kinds in spoken form, categories, "<colour> <kind>" when the colour is known, and for
    containers (``destination`` ``"<id>:<colour>"``) "<colour> bin". Order kept, no duplicates.
    """
    words: list[str] = []
    for category, kind, colour, destination in objects:
        if category == "container":
            c = destination.partition(":")[2] or colour
            if c:
                words.append(f"{spoken(c)} bin")
            continue
        if kind:
            words.append(spoken(kind))
            if colour:
                words.append(f"{spoken(colour)} {spoken(kind)}")
        if category and category != "unknown":
            words.append(spoken(category))
    return list(dict.fromkeys(words))
