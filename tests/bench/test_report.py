"""`katazuke bench report` and the config-driven bench options."""
from __future__ import annotations

import argparse
import json

import pytest

from katazuke.bench import harness, report
from katazuke.bench.harness import Bar


def test_report_opens_with_every_bar_and_includes_notes(tmp_path):
    bars = (Bar("rate", "rate_hz", ">=", 10.0, unit="Hz"), Bar("lag", "lag_ms", "<=", 5.0))
    harness.write_results("sim", {"rate_hz": 12.0, "lag_ms": 9.0}, "# Sim\n\nbody", tmp_path,
                          bars=bars)
    # a JSON from before the harness: its own {name: met} bars, no stored rows
    # (a topic without a katazuke.bench module, so no declared BARS replace them)
    (tmp_path / "oldtopic.json").write_text(json.dumps(
        {"topic": "oldtopic", "commit": "abc1234+dirty", "results": {},
         "bars": {"old check": True}}))
    (tmp_path / "oldtopic.md").write_text("## Old topic\n\ntext")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "sim.md").write_text("# Sim: notes\n\n- measured by hand once")
    out = tmp_path / "BENCHMARKS.md"
    r = report.run(tmp_path, out)
    text = out.read_text()
    assert r["bars"] == 3 and r["met"] == 2
    table = text[text.index("## All bars"):text.index("## Sim")]
    assert "| sim | rate | >= 10 Hz | 12 Hz | yes |" in table
    assert "| sim | lag | <= 5 | 9 | **NO** |" in table
    assert "| oldtopic | old check |" in table and "(dirty tree)" in table
    assert text.index("## Sim") < text.index("## Old topic")  # ORDER, then the others
    assert "### Notes (hand-written)" in text and "- measured by hand once" in text
    assert "# Sim: notes" not in text


def test_report_evaluates_declared_bars_of_old_json(tmp_path):
    from katazuke.bench import sim

    (tmp_path / "sim.json").write_text(json.dumps(
        {"topic": "sim", "commit": "abc", "results": {
            "render_physics_fps": {"train": {"fps_median": 25.0}},
            "dataset": {"workers_2": {"images_per_s_median": 10.0}}}}))
    (tmp_path / "sim.md").write_text("# Sim")
    rows = report.collect_bars(tmp_path)
    assert [r["met"] for r in rows] == [True, False, None]
    assert len(rows) == len(sim.BARS) and {r["source"] for r in rows} == {"evaluated now"}


def test_config_arguments_round_trip():
    from katazuke.bench.detection import DetectionBenchConfig
    from katazuke.cli.config_args import add_config_arguments, config_from_args
    from katazuke.errors import ConfigError

    p = argparse.ArgumentParser()
    add_config_arguments(p, DetectionBenchConfig)
    cfg = config_from_args(DetectionBenchConfig, p.parse_args(
        ["--node-seconds", "3", "--skip-map", "--map-seeds", "4,5"]))
    assert cfg.node_seconds == 3.0 and cfg.skip_map and cfg.map_seeds == "4,5"
    assert cfg == DetectionBenchConfig(node_seconds=3.0, skip_map=True, map_seeds="4,5")
    with pytest.raises(ConfigError, match="overlap"):
        config_from_args(DetectionBenchConfig, p.parse_args(["--map-tune-seeds", "0"]))
