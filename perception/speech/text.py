"""Text normalisation and corpus-level word error rate (WER).

Both sides of a WER are normalised the same way (:func:`normalize`): lower case, numbers
written as words ("10" -> "ten", "2nd" -> "second", "3.5" -> "three point five"), a few
spoken-form abbreviations ("mr" -> "mister"), hyphens and slashes as word breaks, every
other punctuation mark removed (apostrophes too: "don't" -> "dont" on both sides).
:func:`corpus_wer` sums the word edits of every pair and divides by the total number of
reference words (not the mean of per-utterance rates), through ``jiwer``'s alignment.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

from katazuke.errors import InputError

__all__ = ["normalize", "WerCounts", "corpus_wer"]

# Spoken forms of written abbreviations (Whisper writes "Mr. Dashwood", readers say "mister").
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "st": "saint",
                  "vs": "versus", "etc": "et cetera", "ok": "okay"}
_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "=": " equals ", "@": " at ",
            "°": " degrees "}
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_THOUSANDS = re.compile(r"\b(\d{1,3}(?:,\d{3})+)\b")
_INTEGER = re.compile(r"\d+")
_WORD_BREAK = re.compile(r"[-‐‑‒–—/_]+")
_NON_WORD = re.compile(r"[^a-z0-9\s]")


def _words_for(number: str, ordinal: bool = False) -> str:
    from num2words import num2words

    return f" {num2words(int(number), to='ordinal' if ordinal else 'cardinal')} "


def normalize(text: str) -> str:
    """The comparison form of ``text``: lower-case words separated by single spaces.

    Args:
        text: any transcript or reference (str).

    Returns:
        The normalised string ("" when nothing word-like is left).

    Examples:
        >>> normalize("Put the 2nd mug in the red bin, please!")
        'put the second mug in the red bin please'
        >>> normalize("Move 10 blocks.")
        'move ten blocks'
    """
    if not isinstance(text, str):
        raise InputError(f"normalize() needs a str, got {type(text).__name__}")
    t = unicodedata.normalize("NFKC", text).lower()
    t = t.replace("’", "'").replace("‘", "'")
    for sym, word in _SYMBOLS.items():
        t = t.replace(sym, word)
    t = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), t)
    t = _ORDINAL.sub(lambda m: _words_for(m.group(1), ordinal=True), t)
    t = _DECIMAL.sub(lambda m: f"{_words_for(m.group(1))} point "
                               + " ".join(_words_for(d) for d in m.group(2)), t)
    t = _INTEGER.sub(lambda m: _words_for(m.group(0)), t)
    t = _WORD_BREAK.sub(" ", t)   # num2words writes "twenty-one"; "ill-disposed" = "ill disposed"
    t = t.replace("'", "")
    t = _NON_WORD.sub(" ", t)
    words = [_ABBREVIATIONS.get(w, w) for w in t.split()]
    return " ".join(" ".join(words).split())


@dataclass(frozen=True)
class WerCounts:
    """Word edits of a corpus against its references (after :func:`normalize`).

    Attributes:
        substitutions, deletions, insertions: edit counts summed over every utterance.
        hits: reference words recognised correctly.
        reference_words: total words in the references (= hits + substitutions + deletions).
        utterances: number of (reference, hypothesis) pairs.
        sentence_errors: utterances with at least one edit.
    """

    substitutions: int
    deletions: int
    insertions: int
    hits: int
    reference_words: int
    utterances: int
    sentence_errors: int

    @property
    def edits(self) -> int:
        """Total word edits (S + D + I)."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Corpus WER: total edits / total reference words (can exceed 1)."""
        return self.edits / self.reference_words

    def as_dict(self) -> dict:
        return {"wer": self.wer, "edits": self.edits, "substitutions": self.substitutions,
                "deletions": self.deletions, "insertions": self.insertions, "hits": self.hits,
                "reference_words": self.reference_words, "utterances": self.utterances,
                "sentence_errors": self.sentence_errors}


def corpus_wer(references: Sequence[str], hypotheses: Sequence[str],
               names: Sequence[str] | None = None) -> WerCounts:
    """Corpus-level WER of ``hypotheses`` against ``references`` (both normalised here).

    Args:
        references: reference transcripts, one per utterance (raw text).
        hypotheses: recognised text, aligned with ``references`` ("" for nothing heard).
        names: optional utterance names, used in error messages.

    Returns:
        :class:`WerCounts` with the summed edit counts.

    Raises:
        InputError: different lengths, no utterances, or a reference with no words left
            after normalisation (naming the utterance).
    """
    import jiwer

    if len(references) != len(hypotheses):
        raise InputError(f"{len(references)} references but {len(hypotheses)} hypotheses: "
                         "pass one hypothesis per reference")
    if not references:
        raise InputError("corpus_wer() needs at least one utterance")
    names = list(names) if names is not None else [f"#{i}" for i in range(len(references))]
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    empty = [n for n, r in zip(names, refs) if not r]
    if empty:
        raise InputError(f"references with no words after normalisation: {', '.join(empty)} "
                         "(give every clip a non-empty transcript)")
    out = jiwer.process_words(refs, hyps)
    errors = sum(1 for r, h in zip(refs, hyps) if r != h)
    return WerCounts(substitutions=out.substitutions, deletions=out.deletions,
                     insertions=out.insertions, hits=out.hits,
                     reference_words=out.substitutions + out.deletions + out.hits,
                     utterances=len(refs), sentence_errors=errors)
