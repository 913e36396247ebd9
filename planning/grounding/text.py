"""Text normalisation and the fuzzy word similarity grounding matches phrases with.

Recognised speech writes digits ("put 2 mugs") and near-homophones ("cap" for "cup"), so
words are normalised (lower case, digits as words, no punctuation) and compared with a
normalised edit distance rather than for equality.
"""
from __future__ import annotations

import functools
import re

__all__ = ["normalise", "tokens", "word_similarity", "levenshtein"]

_DIGITS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
           "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten"}
_CONTRACTIONS = {"where's": "where is", "what's": "what is", "it's": "it is",
                 "that's": "that is", "i'd": "i would", "don't": "do not", "i'm": "i am",
                 "you're": "you are", "let's": "let us", "can't": "can not"}


def normalise(text: str) -> str:
    """Lower case, contractions expanded, digits as words, punctuation removed."""
    t = str(text).lower().replace("’", "'")
    t = re.sub(r"[^a-z0-9' ]+", " ", t)
    words = []
    for w in t.split():
        w = _CONTRACTIONS.get(w, w).replace("'", "")
        words.append(_DIGITS.get(w, w))
    return " ".join(" ".join(words).split())


def tokens(text: str) -> list[str]:
    """Normalised words of ``text``."""
    return normalise(text).split()


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@functools.lru_cache(maxsize=200_000)
def word_similarity(a: str, b: str) -> float:
    """Similarity of two words in [0, 1]: 1 when equal (or equal up to a plural 's'),
    falling linearly with the normalised edit distance, 0 from half the letters wrong."""
    if a == b:
        return 1.0
    if a.rstrip("s") == b.rstrip("s") and a.rstrip("s"):
        return 0.9
    n = max(len(a), len(b))
    raw = 1.0 - levenshtein(a, b) / n
    return max(0.0, (raw - 0.5) / 0.5) if min(len(a), len(b)) >= 3 else 0.0
