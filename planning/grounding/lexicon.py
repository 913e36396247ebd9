"""The words grounding matches against, from the robot's configuration.

A :class:`Lexicon` lists every attribute phrase the task manager's configuration knows
(kind and category synonyms, colour names, furniture, container nouns, ordinals) and, for a
scene, which phrases describe which object (its kind, its category, the kinds of its
category, its colour, what it rests on) and which describe which container. The model
learns how to weigh matches, not the words themselves, so a room with other kinds only
changes the configuration.
"""
from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence

import numpy as np

from katazuke.planning.grounding.scene import FLOOR, GroundingScene
from katazuke.planning.grounding.text import word_similarity
from katazuke.planning.tasks.config import TidyConfig

__all__ = ["Lexicon", "OBJ_TYPES", "CONT_TYPES", "COLOUR_WORDS", "ORDER_WORDS",
           "char_ngrams", "N_BUCKETS"]

#: Colour words users say (language, not the world).
COLOUR_WORDS = ("red", "blue", "green", "yellow", "orange", "purple", "violet", "pink",
                "black", "white", "grey", "gray", "brown", "cyan", "magenta", "beige", "gold",
                "silver")
#: ordinal words of choice answers: position in the question (1-based; -1 = last)
ORDER_WORDS = {"first": 1, "former": 1, "second": 2, "latter": 2, "third": 3, "last": -1}
#: object phrase types (the last axis of :meth:`Lexicon.object_membership`)
OBJ_TYPES = ("kind", "category", "category_via_kind", "colour", "support")
#: container phrase types
CONT_TYPES = ("colour", "category")
#: hash buckets of the character n-gram word embedding
N_BUCKETS = 8192


@functools.lru_cache(maxsize=100_000)
def char_ngrams(word: str, max_grams: int = 16) -> tuple[int, ...]:
    """Hash buckets of the word itself and its character 2-, 3- and 4-grams (with ``<``,
    ``>`` boundaries), at most ``max_grams`` of them."""
    w = f"<{word}>"
    grams = [w] + [w[i:i + n] for n in (3, 2, 4) for i in range(len(w) - n + 1)]
    return tuple(zlib.crc32(g.encode()) % N_BUCKETS for g in grams[:max_grams])


class Lexicon:
    """Attribute phrases of one configuration.

    Args:
        config: the task manager's configuration.
    """

    def __init__(self, config: TidyConfig) -> None:
        voc = config.vocabulary
        self.config = config
        phrases: list[tuple[str, ...]] = []
        index: dict[tuple[str, ...], int] = {}

        def pid(text: str) -> int:
            key = tuple(text.split())
            if key not in index:
                index[key] = len(phrases)
                phrases.append(key)
            return index[key]

        self.kind_phrases = {k.name: sorted({pid(w) for w in (k.name.replace("_", " "),
                                                               *k.words)})
                             for k in voc.kinds}
        self.kind_category = {k.name: k.category for k in voc.kinds}
        self.category_phrases = {c.name: sorted({pid(w) for w in (c.name, *c.words)})
                                 for c in voc.categories}
        via: dict[str, set[int]] = {c.name: set() for c in voc.categories}
        for k in voc.kinds:
            via.setdefault(k.category, set()).update(self.kind_phrases[k.name])
        self.category_via_kind = {c: sorted(v) for c, v in via.items()}
        self.colour_phrases = {c: pid(c) for c in COLOUR_WORDS}
        for c in config.containers:
            if c.colour:
                self.colour_phrases.setdefault(c.colour, pid(c.colour))
        self.furniture_phrases = {f.name: sorted({pid(w) for w in (f.name, *f.words)})
                                  for f in voc.furniture}
        if FLOOR not in self.furniture_phrases:
            self.furniture_phrases[FLOOR] = [pid("floor")]
        self.container_word_phrases = sorted({pid(w) for w in voc.container_words})
        self.order_phrases: dict[int, list[int]] = {}
        for w, n in ORDER_WORDS.items():
            self.order_phrases.setdefault(n, []).append(pid(w))
        self.phrases = phrases
        words = sorted({w for p in phrases for w in p})
        self.words = words
        self._word_index = {w: i for i, w in enumerate(words)}
        L = max(len(p) for p in phrases)
        self.phrase_words = np.zeros((len(phrases), L), dtype=np.int64)
        self.phrase_mask = np.zeros((len(phrases), L), dtype=bool)
        for i, p in enumerate(phrases):
            for j, w in enumerate(p):
                self.phrase_words[i, j] = self._word_index[w]
                self.phrase_mask[i, j] = True
        self.noun_mask = np.zeros(len(phrases), dtype=bool)
        for v in (*self.kind_phrases.values(), *self.category_phrases.values()):
            self.noun_mask[v] = True
        self.colour_mask = np.zeros(len(phrases), dtype=bool)
        self.colour_mask[list(self.colour_phrases.values())] = True
        self.furniture_mask = np.zeros(len(phrases), dtype=bool)
        for v in self.furniture_phrases.values():
            self.furniture_mask[v] = True
        self.container_word_mask = np.zeros(len(phrases), dtype=bool)
        self.container_word_mask[self.container_word_phrases] = True
        self.container_ids = [c.id for c in config.containers]
        self._sim_cache: dict[str, np.ndarray] = {}

    @property
    def n_phrases(self) -> int:
        return len(self.phrases)

    def similarity_row(self, token: str) -> np.ndarray:
        """``(W,)`` float32 similarity of ``token`` to every lexicon word."""
        row = self._sim_cache.get(token)
        if row is None:
            row = np.array([word_similarity(token, w) for w in self.words], dtype=np.float32)
            self._sim_cache[token] = row
        return row

    def known_word(self, token: str, threshold: float = 0.99) -> bool:
        """Whether ``token`` is (nearly exactly) a lexicon word."""
        return bool(self.similarity_row(token).max(initial=0.0) >= threshold)

    def object_membership(self, scene: GroundingScene) -> np.ndarray:
        """``(N, P, len(OBJ_TYPES))`` bool: phrase p describes object n as type k."""
        m = np.zeros((len(scene.objects), self.n_phrases, len(OBJ_TYPES)), dtype=bool)
        for n, o in enumerate(scene.objects):
            if o.kind in self.kind_phrases:
                m[n, self.kind_phrases[o.kind], 0] = True
            cat = o.category
            if cat in self.category_phrases:
                m[n, self.category_phrases[cat], 1] = True
            if cat in self.category_via_kind:
                m[n, self.category_via_kind[cat], 2] = True
            if o.colour in self.colour_phrases:
                m[n, self.colour_phrases[o.colour], 3] = True
            # objects inside a container have no support phrase ("in the red bin" reads
            # as a destination)
            if o.support in self.furniture_phrases:
                m[n, self.furniture_phrases[o.support], 4] = True
        return m

    @staticmethod
    def membership_ids(member: np.ndarray) -> np.ndarray:
        """``(N, K, M)`` int64 phrase ids of a ``(N, P, K)`` membership, -1 padded."""
        n, _, k = member.shape
        lists = [[np.flatnonzero(member[i, :, j]) for j in range(k)] for i in range(n)]
        m = max([1] + [len(x) for row in lists for x in row])
        out = np.full((n, k, m), -1, dtype=np.int64)
        for i, row in enumerate(lists):
            for j, x in enumerate(row):
                out[i, j, :len(x)] = x
        return out

    def container_membership(self, containers: Sequence) -> np.ndarray:
        """``(C, P, len(CONT_TYPES))`` bool for containers (colour; categories they take,
        named by category or kind words)."""
        m = np.zeros((len(containers), self.n_phrases, len(CONT_TYPES)), dtype=bool)
        for i, c in enumerate(containers):
            if c.colour in self.colour_phrases:
                m[i, self.colour_phrases[c.colour], 0] = True
            for cat in c.categories:
                m[i, self.category_phrases.get(cat, []), 1] = True
                m[i, self.category_via_kind.get(cat, []), 1] = True
        return m

    def noun_for(self, kind: str, category: str) -> str:
        """The everyday noun of an object (its kind's first word, else its category)."""
        voc = self.config.vocabulary
        k = next((k for k in voc.kinds if k.name == kind), None)
        if k is not None and k.words:
            return k.words[0]
        c = next((c for c in voc.categories if c.name == category), None)
        if c is not None and c.words:
            return c.words[0]
        return category or "object"
