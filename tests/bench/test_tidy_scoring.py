"""The tidy bench's ground-truth scoring and its resumable episode store."""
from __future__ import annotations

import json

import numpy as np
import pytest

from katazuke.bench.tidy import (EpisodeStore, TidyBenchConfig, object_in_container,
                                 score_objects, summarise)
from katazuke.errors import ConfigError, KatazukeError
from katazuke.geometry import se2_to_matrix

BIN = se2_to_matrix(1.0, 2.0, np.pi / 2)  # bottom centre at (1, 2), turned 90 degrees
EXT = np.array([0.40, 0.30, 0.25])


def test_inside_is_within_the_turned_walls_and_below_the_rim():
    assert object_in_container([1.0, 2.0, 0.1], BIN, EXT)
    # 0.18 m along world x = along the bin's y axis (0.30 / 2 = 0.15): outside
    assert not object_in_container([1.18, 2.0, 0.1], BIN, EXT)
    # 0.18 m along world y = along the bin's x axis (0.40 / 2 = 0.20): inside
    assert object_in_container([1.0, 2.18, 0.1], BIN, EXT)
    assert object_in_container([1.0, 2.0, 0.29], BIN, EXT)      # sticking out by 4 cm
    assert not object_in_container([1.0, 2.0, 0.35], BIN, EXT)  # above the rim
    assert not object_in_container([1.0, 2.0, -0.01], BIN, EXT)


def test_an_object_counts_only_in_its_own_container():
    cons = [{"id": "bin_red", "T": BIN, "extent": EXT},
            {"id": "bin_blue", "T": se2_to_matrix(-1.0, 0.0, 0.0), "extent": EXT}]
    objs = [{"id": 1, "kind": "duck", "category": "toy", "destination": "bin_red",
             "centre": [1.0, 2.0, 0.1]},
            {"id": 2, "kind": "mug", "category": "kitchenware", "destination": "bin_blue",
             "centre": [1.0, 2.05, 0.1]},                      # in the red bin: wrong
            {"id": 3, "kind": "pen", "category": "stationery", "destination": "bin_green",
             "centre": [0.0, 0.0, 0.02]}]                      # on the floor
    s = score_objects(objs, cons)
    assert [o["inside"] for o in s] == ["bin_red", "bin_red", ""]
    assert [o["success"] for o in s] == [True, False, False]


def _episode(seed: int, tidied: int, n: int, sim_s: float, wall_s: float) -> dict:
    objs = [{"id": i, "category": "toy" if i % 2 else "box", "success": i < tidied}
            for i in range(n)]
    return {"seed": seed, "objects": objs, "tidied": tidied, "sim_s": sim_s, "wall_s": wall_s,
            "items": [{"cause": "grasp_failed"}] * (n - tidied), "exceptions": 0, "respawns": 0}


def test_summary_pools_objects_over_episodes_and_skips_failed_runs():
    cfg = TidyBenchConfig(seeds=(1, 2, 3))
    eps = {"test/default/1": _episode(1, 9, 10, 200.0, 250.0),
           "test/default/2": _episode(2, 5, 10, 300.0, 400.0),
           "test/default/3": {"seed": 3, "error": "did not come up"}}
    s = summarise(eps, cfg)["summary"]
    assert s["episodes"] == 2 and s["failed_episodes"] == 1
    assert s["success_rate"] == pytest.approx(14 / 20)
    assert s["sim_s_per_item_median"] == pytest.approx(25.0)
    assert s["rtf_worst"] == pytest.approx(0.75)
    assert s["failures_by_cause"] == {"grasp_failed": 6}


def test_store_resumes_and_refuses_a_corrupt_file(tmp_path):
    cfg = TidyBenchConfig(seeds=(1, 2))
    store = EpisodeStore(tmp_path)
    key = store.key("test", 0, 1)
    store.add(key, _episode(1, 3, 4, 100.0, 120.0), cfg)
    again = EpisodeStore(tmp_path)
    assert again.done(key) and not again.done(store.key("test", 0, 2))
    assert json.loads((tmp_path / "tidy.json").read_text())["results"]["summary"]["objects"] == 4
    assert (tmp_path / "tidy.md").read_text().startswith("# Tidy-up episodes")
    again.add(store.key("test", 0, 2), {"seed": 2, "error": "x"}, cfg)
    assert not EpisodeStore(tmp_path).done(store.key("test", 0, 2))  # errors are re-run
    (tmp_path / "tidy.json").write_text("{not json")
    with pytest.raises(KatazukeError, match="not valid JSON"):
        EpisodeStore(tmp_path)


def test_config_checks_the_profile():
    with pytest.raises(ConfigError, match="profile"):
        TidyBenchConfig(profile="kitchen")


def test_grasp_stats_count_picks_per_category_from_the_manipulators_log():
    from katazuke.bench.tidy import grasp_stats, markdown

    log = "\n".join([
        "[manipulator] [INFO] [1.0] [manipulator]: manipulate pick: not_visible: no detection",
        "[manipulator] [INFO] [2.0] [manipulator]: manipulate pick 38 (kitchenware): "
        "detection 0.03 m from the target, 55 object points, 1 grasps",
        "[manipulator] [INFO] [2.1] [manipulator]: manipulate pick: grasp 0 (top, width 0.073 m)",
        "[manipulator] [INFO] [9.0] [manipulator]: manipulate pick: done (holding object 38)",
        "[task_manager] [INFO] [9.1] [task_manager]: manipulate pick 99 (toy): detection",
        "[manipulator] [INFO] [10.0] [manipulator]: manipulate pick 1 (box): detection 0.01 m",
        "[manipulator] [INFO] [11.0] [manipulator]: manipulate pick: grasp_failed: grasp check "
        "after closing: missed (opening 0.0 mm, effort 0.0 N)",
        "[manipulator] [INFO] [12.0] [manipulator]: manipulate pick 1 (box): detection 0.02 m",
        "[manipulator] [INFO] [13.0] [manipulator]: manipulate pick: done (holding object 1)"])
    g = grasp_stats(log)
    assert g["by_category"] == {
        "kitchenware": {"attempts": 1, "held": 1, "failures": {}},
        "box": {"attempts": 2, "held": 1, "failures": {"grasp_failed": 1}}}
    assert g["before_segmentation"] == {"not_visible": 1}
    ep = {"seed": 1, "objects": [], "tidied": 0, "sim_s": 10.0, "wall_s": 20.0, "items": [],
          "grasps": g}
    res = summarise({"test/1/1": ep}, TidyBenchConfig(seeds=(1,)))
    assert res["summary"]["grasps_by_category"]["box"]["success_rate"] == 0.5
    text = markdown(res)
    assert "| box | 2 | 1 | 50 % | grasp_failed 1 |" in text and "not_visible 1" in text
