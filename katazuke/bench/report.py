"""``katazuke bench report``: assemble docs/BENCHMARKS.md from docs/bench/*.json and *.md.

The file opens with one table of every bar of every topic (topic, bar, required, measured,
met). A topic's rows come from the ``bars`` its JSON stores; a JSON written before bars were
stored is evaluated against the ``BARS`` of ``katazuke.bench.<topic>`` (the same table the
bench checks). Then each topic's markdown follows as a section, and a hand-written
``docs/bench/notes/<topic>.md`` is included verbatim under "Notes (hand-written)".
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from katazuke.bench.harness import evaluate_bars

__all__ = ["ORDER", "HEADER", "collect_bars", "summary_table", "assemble", "run"]

ORDER = ("setup", "launch", "bag", "replay", "network", "sim", "sim_bridge", "flood", "control",
         "control_iid", "control_sim", "rotavg", "detection", "grasp", "tidy")

HEADER = """# Katazuke benchmarks

Every figure below was measured by the command shown with it, on the machine named under
it, with the comparison (the peer implementation or the baseline) measured in the same
run. Raw results with commit, machine and package versions are in `docs/bench/*.json`.
This file is assembled by `katazuke bench report` from `docs/bench/*.json` and `*.md`
(hand-written notes from `docs/bench/notes/*.md`); do not edit it by hand.
"""


def _topics(bench_dir: Path) -> list[str]:
    stems = {p.stem for p in bench_dir.glob("*.md")}
    return sorted(stems, key=lambda s: (ORDER.index(s) if s in ORDER else len(ORDER), s))


def _declared_bars(topic: str) -> tuple | None:
    try:
        mod = importlib.import_module(f"katazuke.bench.{topic}")
    except ModuleNotFoundError as exc:
        if exc.name != f"katazuke.bench.{topic}":
            raise
        return None
    return getattr(mod, "BARS", None)


def _legacy_rows(bars: Any) -> list[dict[str, Any]]:
    """Rows from a JSON written before the harness stored :func:`evaluate_bars` rows:
    ``{name: met}`` or ``[{"bar", "met", "detail"}]``."""
    if isinstance(bars, dict):
        items = [(str(k), v, None) for k, v in bars.items()]
    elif isinstance(bars, list):
        items = [(str(b.get("bar", "?")), b.get("met"), b.get("detail")) for b in bars
                 if isinstance(b, dict)]
    else:
        return []
    return [{"name": name, "required": "(see the section)", "measured": detail, "unit": "",
             "note": "", "met": met if isinstance(met, bool) else None}
            for name, met, detail in items]


def _is_evaluated(bars: Any) -> bool:
    return isinstance(bars, list) and all(isinstance(b, dict) and "required" in b for b in bars)


def collect_bars(bench_dir: Path) -> list[dict[str, Any]]:
    """Every bar of every topic with a ``<topic>.md``: the evaluated rows plus ``topic``,
    ``commit``, ``dirty`` and ``source`` ("stored", "evaluated now" from the topic's
    ``BARS``, or "legacy" for an old JSON's own bar list when the topic declares no BARS)."""
    rows = []
    for topic in _topics(bench_dir):
        jpath = bench_dir / f"{topic}.json"
        if not jpath.exists():
            continue
        data = json.loads(jpath.read_text())
        stored = data.get("bars")
        if _is_evaluated(stored):
            bars, source = stored, "stored"
        else:
            declared = _declared_bars(topic)
            if declared:
                results = data["results"] if isinstance(data.get("results"), dict) else data
                bars, source = evaluate_bars(results, declared), "evaluated now"
            else:
                bars = _legacy_rows(stored if stored is not None
                                    else (data.get("results") or {}).get("bars"))
                source = "legacy"
        commit = str(data.get("commit", "unknown"))
        dirty = data.get("dirty", commit.endswith("+dirty"))
        rows += [{**b, "topic": topic, "commit": commit.replace("+dirty", ""),
                  "dirty": dirty, "source": source} for b in bars]
    return rows


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: ``| topic | bar | required | measured | met |`` and the commits measured."""
    from katazuke.bench.harness import bars_markdown

    lines = ["| topic | " + bars_markdown([]).splitlines()[0][2:],
             "|---|---|---|---|---|"]
    for r in rows:
        one = bars_markdown([r]).splitlines()[-1]
        lines.append(f"| {r['topic']} {one}")
    commits: dict[str, list[str]] = {}
    for r in rows:
        key = r["commit"] + (" (dirty tree)" if r["dirty"] else "")
        if r["topic"] not in commits.setdefault(key, []):
            commits[key].append(r["topic"])
    met = sum(r["met"] is True for r in rows)
    lines += ["", f"{met} of {len(rows)} bars met. Measured at commit "
              + "; ".join(f"`{c}`: {', '.join(t)}" for c, t in commits.items()) + "."]
    if any(r["source"] == "evaluated now" for r in rows):
        lines.append("Rows of topics whose JSON predates stored bars are evaluated now against "
                     "the topic's `BARS`.")
    if any(r["source"] == "legacy" for r in rows):
        lines.append("Topics measured before the shared harness list their JSON's own bar "
                     "checks; the section gives the required values.")
    return "\n".join(lines)


def _shift_headings(text: str, top_level: int) -> str:
    lines = text.splitlines()
    heads = [len(ln) - len(ln.lstrip("#")) for ln in lines if ln.startswith("#")]
    if not heads:
        return text
    shift = "#" * max(0, top_level - min(heads))
    return "\n".join(shift + ln if ln.startswith("#") else ln for ln in lines)


def _notes(bench_dir: Path, topic: str) -> str:
    path = bench_dir / "notes" / f"{topic}.md"
    if not path.exists():
        return ""
    text = path.read_text().strip()
    if text.startswith("#"):  # its own title is replaced by the section's heading
        text = text.split("\n", 1)[1].strip() if "\n" in text else ""
    return f"### Notes (hand-written)\n\n_From `docs/bench/notes/{topic}.md`._\n\n{text}"


def assemble(bench_dir: Path) -> str:
    """The whole of docs/BENCHMARKS.md."""
    parts = [HEADER.rstrip(), "## All bars\n\n" + summary_table(collect_bars(bench_dir))]
    for topic in _topics(bench_dir):
        text = (bench_dir / f"{topic}.md").read_text().strip()
        text = _shift_headings(text, 2) if text.startswith("#") else f"## {topic}\n\n{text}"
        notes = _notes(bench_dir, topic)
        parts.append(text + (f"\n\n{notes}" if notes else ""))
    return "\n\n".join(parts) + "\n"


def run(bench_dir: str | Path, out: str | Path) -> dict[str, Any]:
    """Write ``out`` from ``bench_dir``; returns ``{"out", "topics", "bars", "met"}``."""
    bench, out = Path(bench_dir), Path(out)
    text = assemble(bench)
    out.write_text(text)
    rows = collect_bars(bench)
    return {"out": str(out), "topics": _topics(bench), "bars": len(rows),
            "met": sum(r["met"] is True for r in rows)}
