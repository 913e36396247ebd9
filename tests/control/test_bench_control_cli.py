"""``katazuke bench control``: a shrunk smoke run (slow) and the full benchmark (benchmark)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest


def _args(out: Path, **kw) -> argparse.Namespace:
    from katazuke.cli import bench_control

    p = argparse.ArgumentParser()
    bench_control.add_arguments(p)
    argv = ["--out", str(out)]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return p.parse_args(argv)


@pytest.mark.slow
def test_shrunk_run_writes_json_markdown_and_plots(tmp_path: Path) -> None:
    from katazuke.cli import bench_control

    assert bench_control.main(_args(tmp_path, quick=True, T=300, repeats=1,
                                    families="sinusoidal,adversarial")) == 0
    res = json.loads((tmp_path / "control.json").read_text())
    assert res["settings"]["T"] == 300 and len(res["runs"]) == 8
    assert res["bars"]["dlqr_matches_python_control_1e-8"]
    assert res["bars"]["gpc_m0_equals_lqr_exactly"]
    assert res["commit"] and res["machine"]["cpu_count"] >= 1 and "numpy" in res["versions"]
    for r in res["runs"]:
        assert r["cost_best_dac"] <= r["cost_lqr"] * (1 + 1e-9)   # M = 0 is in the class
    md = (tmp_path / "control.md").read_text()
    assert "## Bars" in md and "katazuke bench control --quick --T 300" in md
    assert (tmp_path / "control_regret.png").stat().st_size > 10_000
    assert (tmp_path / "control_cost.png").stat().st_size > 10_000


def test_bad_options_are_clear_errors(tmp_path: Path) -> None:
    from katazuke.cli import bench_control
    from katazuke.errors import KatazukeError

    with pytest.raises(KatazukeError, match="--T must be"):
        bench_control.main(_args(tmp_path, T=50))
    with pytest.raises(KatazukeError, match="radius"):
        bench_control.main(_args(tmp_path, quick=True, gpc_radius=-1.0))
    with pytest.raises(KatazukeError, match="--families"):
        bench_control.main(_args(tmp_path, quick=True, T=300, families="pink"))


@pytest.mark.benchmark
def test_full_benchmark_bars(tmp_path: Path) -> None:
    from katazuke.cli import bench_control

    assert bench_control.main(_args(tmp_path)) == 0
    res = json.loads((tmp_path / "control.json").read_text())
    b = res["bars"]
    assert b["dlqr_matches_python_control_1e-8"] and b["gpc_m0_equals_lqr_exactly"]
    assert b["gpc_within_5pct_gaussian"] and b["step_le_1ms_n12_H10"]


@pytest.mark.slow
def test_iid_study_runs_and_best_dac_never_worse_than_lqr(tmp_path: Path) -> None:
    """``katazuke bench control-iid`` on one seed: M = 0 is in the comparator class, so the best
    fixed controller in hindsight is never worse than LQR; GPC stays close to LQR under
    zero-mean i.i.d. noise."""
    from katazuke.cli import bench_control_iid

    p = argparse.ArgumentParser()
    bench_control_iid.add_arguments(p)
    assert bench_control_iid.main(p.parse_args(["--out", str(tmp_path), "--seeds", "1",
                                                "--T", "1000"])) == 0
    res = json.loads((tmp_path / "control_iid.json").read_text())["results"]
    assert len(res["rows"]) == 4 * 3
    for r in res["rows"]:
        assert r["ratio_best_dac_lqr"] <= 1 + 1e-9
        if r["variant"] != "uniform+offset":
            assert r["ratio_gpc_lqr_T1000"] < 1.2
    assert "certainty equivalence" in (tmp_path / "control_iid.md").read_text()
