"""The shared benchmark harness: bars, provenance, medians, writers."""
from __future__ import annotations

import json

import pytest

from katazuke.bench import harness
from katazuke.bench.harness import Bar, bars_markdown, evaluate_bars, median, median_of_runs
from katazuke.errors import ConfigError

BARS = (
    Bar("node rate", "node.rate_hz", ">=", 10.0, unit="Hz"),
    Bar("latency", "latency.p50_ms", "<=", 60.0, unit="ms", note="median of 3"),
    Bar("first run ok", "runs.0.ok", "==", True),
    Bar("not measured", "absent.metric", ">", 0.0),
)
RESULTS = {"node": {"rate_hz": 9.99}, "latency": {"p50_ms": 41.5}, "runs": [{"ok": True}]}


def test_evaluate_bars_pass_fail_and_missing():
    ev = evaluate_bars(RESULTS, BARS)
    assert [e["met"] for e in ev] == [False, True, True, None]
    assert ev[0]["measured"] == 9.99 and ev[0]["required"] == ">= 10 Hz"
    assert ev[1]["required"] == "<= 60 ms"
    assert ev[3]["measured"] is None
    # a bar exactly on its threshold: >= holds, > does not
    assert evaluate_bars({"x": 1.0}, [Bar("a", "x", ">=", 1.0), Bar("b", "x", ">", 1.0)]
                         )[0]["met"] is True
    assert evaluate_bars({"x": 1.0}, [Bar("b", "x", ">", 1.0)])[0]["met"] is False
    assert evaluate_bars({"x": float("nan")}, [Bar("n", "x", "<", 1.0)])[0]["met"] is None


def test_bars_markdown_one_row_per_bar():
    md = bars_markdown(evaluate_bars(RESULTS, BARS))
    lines = md.splitlines()
    assert lines[0] == "| bar | required | measured | met |"
    assert len(lines) == 2 + len(BARS)
    assert "| node rate | >= 10 Hz | 9.99 Hz | **NO** |" in lines
    assert "latency (median of 3)" in lines[3] and lines[3].endswith("| yes |")
    assert lines[-1].endswith("| - | not measured |")


def test_bar_rejects_unknown_op():
    with pytest.raises(ConfigError, match="op"):
        Bar("x", "a.b", "=>", 1.0)


def test_median():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    with pytest.raises(ValueError):
        median([])


def test_median_of_runs_discards_warmup():
    calls = iter([1000.0, 3.0, 1.0, 2.0])  # the first (warm-up) call is an outlier
    med, values = median_of_runs(lambda: next(calls), runs=3, warmup=1)
    assert values == [3.0, 1.0, 2.0]
    assert med == 2.0


def test_provenance_keys():
    harness.start()
    prov = harness.provenance(["pytest"])
    for key in ("commit", "dirty", "date_utc", "command", "machine", "versions",
                "loadavg_start", "loadavg_end", "wall_s"):
        assert key in prov, key
    assert set(prov["machine"]) == {"cpu", "cores", "platform", "python"}
    assert prov["versions"]["pytest"] is not None and "numpy" in prov["versions"]
    assert prov["command"].startswith("katazuke")
    assert prov["dirty"] in (True, False, None)
    assert prov["wall_s"] >= 0


def test_write_results(tmp_path):
    jpath, mpath = harness.write_results("demo", RESULTS, "# Demo\n\nbody text", tmp_path,
                                         bars=BARS)
    data = json.loads(jpath.read_text())
    assert data["topic"] == "demo" and data["results"] == RESULTS
    assert [b["met"] for b in data["bars"]] == [False, True, True, None]
    assert "commit" in data and "dirty" in data
    md = mpath.read_text()
    assert md.startswith("# Demo\n") and "| node rate | >= 10 Hz |" in md and "body text" in md
    assert "_Measured " in md.splitlines()[-1]


def test_dirty_ignores_result_files_but_not_code(monkeypatch):
    from katazuke.bench import harness

    def fake_git(status):
        return lambda *args: "abc1234\n" if args[0] == "rev-parse" else status

    monkeypatch.setattr(harness, "_git", fake_git(" M docs/bench/control.json\n?? docs/bench/new.md\n"))
    assert harness._git_state() == ("abc1234", False)
    monkeypatch.setattr(harness, "_git", fake_git(" M docs/bench/control.json\n M katazuke/bench/harness.py\n"))
    assert harness._git_state() == ("abc1234", True)
    monkeypatch.setattr(harness, "_git", fake_git("?? perception/new_module.py\n"))
    assert harness._git_state()[1] is True
    # provenance reports the state taken at start(), before the bench wrote its results
    monkeypatch.setattr(harness, "_git", fake_git(""))
    monkeypatch.setattr(harness, "_started", None)   # restored after the test
    harness.start()
    monkeypatch.setattr(harness, "_git", fake_git(" M katazuke/geometry.py\n"))
    assert harness.provenance()["dirty"] is False
