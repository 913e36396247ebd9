"""An ASR-noise channel learned from (spoken text, recognised text) pairs.

:meth:`ConfusionModel.fit` aligns each pair word by word (edit-distance alignment) and
counts, per spoken word, what the recogniser wrote: itself, another word (``cup`` ->
``cap``), nothing; and which words it inserted. Substituted words are aligned letter by
letter, giving a letter confusion table for words the pairs never contained.
:meth:`ConfusionModel.corrupt` replays those statistics on new text, carrying each word's tag
along, so a large training set gets the noise a small set of real recognitions showed.
"""
from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from katazuke.errors import InputError
from katazuke.planning.grounding.text import tokens

__all__ = ["align", "ConfusionModel"]

_GAP = None


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[str | None, str | None]]:
    """Edit-distance alignment of two sequences: ``(ref item or None, hyp item or None)``."""
    n, m = len(ref), len(hyp)
    D = np.zeros((n + 1, m + 1), dtype=np.int32)
    D[:, 0] = np.arange(n + 1)
    D[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            D[i, j] = min(D[i - 1, j] + 1, D[i, j - 1] + 1,
                          D[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    out: list[tuple[str | None, str | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and D[i, j] == D[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            out.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and D[i, j] == D[i - 1, j] + 1:
            out.append((ref[i - 1], _GAP))
            i -= 1
        else:
            out.append((_GAP, hyp[j - 1]))
            j -= 1
    return out[::-1]


class ConfusionModel:
    """Word and letter confusion statistics of one recogniser.

    Attributes:
        words: ``{spoken word: Counter({written word or "": count})}``.
        insertions: ``Counter`` of inserted words.
        letters: ``{letter: Counter({written letter or "": count})}`` from substituted words.
        word_error: share of spoken words not written as themselves.
        insert_rate: inserted words per spoken word.
        pairs: number of pairs fitted.
    """

    def __init__(self) -> None:
        self.words: dict[str, collections.Counter] = {}
        self.insertions: collections.Counter = collections.Counter()
        self.letters: dict[str, collections.Counter] = {}
        self.word_error = 0.0
        self.insert_rate = 0.0
        self.pairs = 0

    @classmethod
    def fit(cls, pairs: Iterable[tuple[str, str]]) -> "ConfusionModel":
        """Count confusions in ``(spoken, recognised)`` pairs (raw text; normalised here).

        Raises:
            InputError: no pairs.
        """
        m = cls()
        spoken = wrong = inserted = 0
        for ref_text, hyp_text in pairs:
            ref, hyp = tokens(ref_text), tokens(hyp_text)
            m.pairs += 1
            for r, h in align(ref, hyp):
                if r is None:
                    m.insertions[h] += 1
                    inserted += 1
                    continue
                spoken += 1
                m.words.setdefault(r, collections.Counter())[h or ""] += 1
                if h != r:
                    wrong += 1
                if h is not None and h != r:
                    for a, b in align(list(r), list(h)):
                        if a is not None:
                            m.letters.setdefault(a, collections.Counter())[b or ""] += 1
        if m.pairs == 0 or spoken == 0:
            raise InputError("ConfusionModel.fit: no (spoken, recognised) pairs with words")
        m.word_error = wrong / spoken
        m.insert_rate = inserted / spoken
        return m

    def corrupt(self, words: Sequence[str], tags: Sequence[int], rng: np.random.Generator,
                strength: float = 1.0) -> tuple[list[str], list[int]]:
        """Words as the recogniser might have written them, with their tags.

        A word seen in the pairs is replaced by a draw from its own confusion counts (one
        pseudo-count on itself); an unseen word is misspelt letter by letter with the
        average word error rate. ``strength`` scales every error probability.
        """
        out_w: list[str] = []
        out_t: list[int] = []
        for w, t in zip(words, tags):
            if self.insertions and rng.random() < self.insert_rate * strength:
                ins = list(self.insertions)
                p = np.array([self.insertions[x] for x in ins], dtype=np.float64)
                out_w.append(ins[int(rng.choice(len(ins), p=p / p.sum()))])
                out_t.append(int(t))
            c = self.words.get(w)
            if c is not None and sum(c.values()) >= 2:
                opts = list(c)
                p = np.array([c[x] + (1.0 if x == w else 0.0) for x in opts])
                p_err = (p.sum() - p[opts.index(w)] if w in opts else p.sum()) / p.sum()
                if rng.random() < min(1.0, p_err * strength):
                    others = [i for i, x in enumerate(opts) if x != w]
                    q = p[others] / p[others].sum()
                    new = opts[others[int(rng.choice(len(others), p=q))]]
                else:
                    new = w
            elif rng.random() < self.word_error * strength:
                new = self._misspell(w, rng)
            else:
                new = w
            for part in new.split():
                out_w.append(part)
                out_t.append(int(t))
        return out_w, out_t

    def _misspell(self, w: str, rng: np.random.Generator) -> str:
        letters = []
        for a in w:
            c = self.letters.get(a)
            if c and rng.random() < 0.35:
                opts = list(c)
                p = np.array([c[x] for x in opts], dtype=np.float64)
                letters.append(opts[int(rng.choice(len(opts), p=p / p.sum()))])
            else:
                letters.append(a)
        return "".join(letters) or w

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        return {"words": {k: dict(v) for k, v in self.words.items()},
                "insertions": dict(self.insertions),
                "letters": {k: dict(v) for k, v in self.letters.items()},
                "word_error": self.word_error, "insert_rate": self.insert_rate,
                "pairs": self.pairs}

    @classmethod
    def from_dict(cls, d: dict) -> "ConfusionModel":
        m = cls()
        m.words = {k: collections.Counter(v) for k, v in d["words"].items()}
        m.insertions = collections.Counter(d["insertions"])
        m.letters = {k: collections.Counter(v) for k, v in d["letters"].items()}
        m.word_error, m.insert_rate = float(d["word_error"]), float(d["insert_rate"])
        m.pairs = int(d["pairs"])
        return m

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), sort_keys=True))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ConfusionModel":
        p = Path(path)
        try:
            return cls.from_dict(json.loads(p.read_text()))
        except FileNotFoundError as exc:
            raise InputError(f"confusion model {p} not found") from exc
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"confusion model {p} is corrupt ({exc}); refit it with "
                             "`katazuke train grounding`") from exc
