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


def _bars(doc: dict) -> dict[str, bool | None]:
    return {b["name"]: b["met"] for b in doc["bars"]}


@pytest.mark.slow
def test_shrunk_run_writes_json_markdown_and_plots(tmp_path: Path) -> None:
    from katazuke.cli import bench_control

    assert bench_control.main(_args(tmp_path, quick=True, T=300, repeats=1,
                                    families="sinusoidal,adversarial")) == 0
    doc = json.loads((tmp_path / "control.json").read_text())
    res, bars = doc["results"], _bars(doc)
    assert res["settings"]["T"] == 300 and len(res["runs"]) == 8
    assert bars["LQR gain = python-control dlqr to 1e-8"]
    assert bars["GPC with M = 0 reproduces LQR exactly"]
    assert doc["commit"] and doc["machine"]["cores"] >= 1 and "numpy" in doc["versions"]
    assert "GPC get_action + update <= 1 ms (n up to 12, H=10)" in bars   # the step-time bar
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
    b = _bars(json.loads((tmp_path / "control.json").read_text()))
    assert b["LQR gain = python-control dlqr to 1e-8"] and b["GPC with M = 0 reproduces LQR exactly"]
    assert b["GPC within 5% of LQR under Gaussian noise"]
    assert b["GPC get_action + update <= 1 ms (n up to 12, H=10)"]


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
