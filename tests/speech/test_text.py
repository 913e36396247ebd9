"""WER normalisation and corpus-level WER."""
from __future__ import annotations

import pytest

from katazuke.errors import InputError
from katazuke.perception.speech import corpus_wer, normalize


@pytest.mark.parametrize("raw, norm", [
    ("Put the duck in the RED bin!", "put the duck in the red bin"),
    ("go forward 10 meters", "go forward ten meters"),
    ("the 2nd mug, then the 3rd", "the second mug then the third"),
    ("21 blocks", "twenty one blocks"),
    ("1,000 steps", "one thousand steps"),
    ("3.5 m", "three point five m"),
    ("Mr. Dashwood's ill-disposed", "mister dashwoods ill disposed"),
    ("don't   stop", "dont stop"),
    ("  ...  ", ""),
    ("glue_stick", "glue stick"),
])
def test_normalize(raw: str, norm: str) -> None:
    assert normalize(raw) == norm


def test_normalize_is_idempotent() -> None:
    s = "Move the 2nd bottle to the blue bin, 10 cm left!"
    assert normalize(normalize(s)) == normalize(s)


def test_corpus_wer_sums_edits_over_reference_words() -> None:
    refs = ["put the duck in the red bin", "stop"]
    hyps = ["put the dog in red bin please", ""]
    c = corpus_wer(refs, hyps)
    # utterance 1: duck->dog (S), "the" deleted (D), "please" inserted (I); utterance 2: D
    assert (c.substitutions, c.deletions, c.insertions) == (1, 2, 1)
    assert c.reference_words == 8 and c.hits == 5
    assert c.wer == pytest.approx(4 / 8)       # corpus level, not the mean of 3/7 and 1/1
    assert c.sentence_errors == 2 and c.utterances == 2


def test_corpus_wer_counts_numbers_as_words() -> None:
    assert corpus_wer(["go forward ten meters"], ["Go forward 10 meters."]).wer == 0.0


def test_corpus_wer_errors_name_the_problem() -> None:
    with pytest.raises(InputError, match="2 references but 1 hypotheses"):
        corpus_wer(["a", "b"], ["a"])
    with pytest.raises(InputError, match="clip7"):
        corpus_wer(["ok", "!!"], ["ok", ""], names=["clip6", "clip7"])
