"""The robot's vocabulary for the prompt: base words and the object map's entries."""
from __future__ import annotations

from katazuke.perception.speech.vocabulary import (COMMAND_WORDS, base_vocabulary,
                                                   object_vocabulary, spoken)


def test_base_vocabulary_has_categories_places_and_verbs() -> None:
    v = base_vocabulary()
    assert {"toy", "kitchenware", "table", "shelf", "red bin", "floor"} <= set(v)
    assert set(COMMAND_WORDS) <= set(v) and len(v) == len(set(v))


def test_object_vocabulary_from_map_entries() -> None:
    entries = [("toy", "rubber_duck", "yellow", "bin_red"), ("container", "", "red", "bin_red:red"),
               ("toy", "blob_a", "", ""), ("unknown", "", "", ""), ("toy", "rubber_duck", "yellow", "")]
    assert object_vocabulary(entries) == ["rubber duck", "yellow rubber duck", "toy", "red bin", "blob"]
    assert spoken("Glue_Stick") == "glue stick" and spoken("proc_mug") == "mug"


def test_bench_vocabulary_is_the_catalogue_not_the_test_sentences() -> None:
    import numpy as np

    from katazuke.bench.speech import commands, robot_vocabulary
    from katazuke.sim.objects import KINDS

    vocab = robot_vocabulary()
    assert {spoken(k.name) for k in KINDS} <= set(vocab)
    # the prompt holds single words and names, never a whole test command
    sentences = set(commands(50, np.random.default_rng(0)))
    assert not sentences & set(vocab) - {"stop"}
