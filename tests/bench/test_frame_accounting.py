"""The detector bench's frame accounting (issue 12's >= 99 % bar reads it)."""
from __future__ import annotations

import math

from katazuke.bench.detection import frame_accounting

PERIOD_NS = 1_000_000_000 // 15


def test_every_frame_answered_is_the_whole_window():
    stamps = [1_000_000_000 + k * PERIOD_NS for k in range(30)]
    f = frame_accounting(stamps, 15.0)
    assert f["published"] == 30 and f["processed"] == 30 and f["fraction"] == 1.0


def test_a_node_answering_every_other_frame_scores_one_half():
    # a median spacing would call this "every frame"; the nominal period does not
    stamps = [k * 2 * PERIOD_NS for k in range(20)]
    f = frame_accounting(stamps, 15.0)
    assert f["published"] == 39 and f["processed"] == 20
    assert abs(f["fraction"] - 20 / 39) < 1e-12


def test_duplicates_count_once_and_too_few_stamps_is_nan():
    f = frame_accounting([0, PERIOD_NS, PERIOD_NS, 2 * PERIOD_NS], 15.0)
    assert f["processed"] == 3 and f["published"] == 3
    assert math.isnan(frame_accounting([5], 15.0)["fraction"])
