"""``katazuke bench control-sim --quick`` end to end (a benchmark: ~30 s, excluded by default)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.benchmark
@pytest.mark.sim
@pytest.mark.slow
def test_quick_bench_writes_results_and_meets_the_bar(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("katazuke")
    proc = subprocess.run([str(exe), "bench", "control-sim", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "control_sim.json").read_text())
    assert data["topic"] == "control_sim" and data["commit"]
    res = data["results"]
    assert {r["reference"] for r in res["runs"]} == {"figure_eight", "room_tour"}
    for r in res["runs"]:
        assert r["gpc"]["rms_pos_m"] < r["lqr"]["rms_pos_m"]
    assert res["bar"]["met"] and res["bar"]["worst_ratio"] <= 0.8
    md = (tmp_path / "control_sim.md").read_text()
    assert "| yes |" in md and "katazuke bench control-sim --quick" in md   # the bar is met
    assert data["bars"][0]["met"] and data["bars"][0]["required"] == "<= 0.8"
    assert (tmp_path / "control_sim_room_tour_error.png").stat().st_size > 10_000


def test_bad_arguments_are_one_clean_error(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("katazuke")
    proc = subprocess.run([str(exe), "bench", "control-sim", "--seeds", "0", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--seeds" in proc.stderr and "Traceback" not in proc.stderr
