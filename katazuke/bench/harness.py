"""The shared benchmark harness: provenance, medians, bars, and the JSON + markdown writers.

Every ``katazuke bench <topic>`` command ends in :func:`write_results`, so each figure in
docs/BENCHMARKS.md traces back to a commit, a machine, package versions and a command line.
A topic declares its bars once, as a tuple of :class:`Bar`; both the report text
(:func:`bars_markdown`) and the pass/fail check (:func:`evaluate_bars`) read that tuple, so a
threshold is never written twice.

Typical use in a capability module ``katazuke/bench/<topic>.py``::

    BARS = (Bar("node rate", "node.rate_hz", ">=", 10.0, unit="Hz"),)

    def run(cfg) -> dict: ...          # measures, returns a JSON-able dict
    def markdown(result) -> str: ...   # renders it (bars_markdown(evaluate_bars(result, BARS)))

and in its CLI::

    start()                             # load average at start (katazuke.cli does this for bench)
    write_results("topic", result, markdown(result), out_dir, bars=BARS)
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import operator
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from katazuke.errors import ConfigError, InputError
from katazuke.rosenv import repo_root
from katazuke.testing import spin_for  # re-exported: the benches' measurement window

__all__ = ["Bar", "OPS", "start", "provenance", "command_line", "median", "median_of_runs",
           "spin_for", "lookup", "evaluate_bars", "bars_markdown", "provenance_footer", "write_results"]

#: The comparison operators a :class:`Bar` may use.
OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq,
}


@dataclass(frozen=True)
class Bar:
    """One bar of a benchmark: ``results[metric] <op> threshold``.

    Attributes:
        name: what the bar asks, in words (the report's "bar" column).
        metric: dotted path into the results dict, e.g. ``"node.rate_hz"``; integer parts
            index lists (``"runs.0.fps"``).
        op: one of ``>=``, ``<=``, ``>``, ``<``, ``==``.
        threshold: the required value, in the metric's unit.
        unit: unit of metric and threshold as printed ("Hz", "ms", "" for ratios).
        note: optional extra text for the report (how the metric is measured).
    """

    name: str
    metric: str
    op: str
    threshold: float
    unit: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ConfigError(f"Bar {self.name!r}: op {self.op!r} must be one of {sorted(OPS)}")
        if not self.metric:
            raise ConfigError(f"Bar {self.name!r}: metric must be a dotted path into the results")

    @property
    def required(self) -> str:
        """The requirement as text, e.g. ``">= 10 Hz"``."""
        return f"{self.op} {_fmt(self.threshold)}{' ' + self.unit if self.unit else ''}"


# --------------------------------------------------------------------------- provenance

_started: dict[str, Any] | None = None


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def start() -> dict[str, Any]:
    """Mark the start of a measurement: records wall time and the load average now.

    :func:`provenance` reports both (``loadavg_start``, ``wall_s``). ``katazuke bench ...``
    calls this before running the command; call it yourself when driving a bench from Python.

    Returns:
        ``{"monotonic": seconds, "loadavg": [1, 5, 15 min] or None}``.
    """
    global _started
    _started = {"monotonic": time.monotonic(), "loadavg": _loadavg(), "git": _git_state()}
    return dict(_started)


#: Where benches write their results. Changes there do not make a tree dirty: they are the
#: measurements, not the code that made them (a sequence of benches re-run from one commit
#: would otherwise mark every bench after the first as dirty).
RESULT_PATHS = ("docs/",)


def _git_state() -> tuple[str, bool | None]:
    """``(short commit, dirty)`` of the repository now (see :func:`provenance`)."""
    head = _git("rev-parse", "--short", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=normal")
    dirty = None
    if status is not None:
        paths = [ln[3:].split(" -> ")[-1].strip('"') for ln in status.splitlines() if ln.strip()]
        dirty = any(not p.startswith(RESULT_PATHS) for p in paths)
    return (head.strip() if head else "unknown"), dirty


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def command_line() -> str:
    """``sys.argv`` as ``katazuke ...`` (no interpreter or install path)."""
    argv = list(sys.argv)
    if not argv:
        return "katazuke"
    # `.venv/bin/katazuke bench x`, `python -m katazuke.cli bench x`: the program is katazuke
    # whatever path or interpreter started it (no machine-local paths in reports).
    return " ".join(["katazuke", *argv[1:]])


def provenance(packages: Iterable[str] = ()) -> dict[str, Any]:
    """Where and when a result was measured.

    ``dirty`` is True when **any tracked file is modified (staged or not) or any untracked,
    non-ignored file exists anywhere in the repository outside the result folders**
    (:data:`RESULT_PATHS`; ``git status --porcelain`` over the whole tree, untracked files
    included): results from such a tree cannot be reproduced from ``commit`` alone. Commit and
    dirty are taken when :func:`start` was called (before the bench ran and wrote anything),
    else now. This is the only definition of dirty used by the benches.

    Args:
        packages: distribution names whose versions to record, besides numpy and scipy.

    Returns:
        ``commit`` (short hash, ``"unknown"`` outside git), ``dirty`` (bool or None outside git),
        ``date_utc``, ``command`` (``katazuke bench ...``), ``machine`` (``cpu``, ``cores``,
        ``platform``, ``python``), ``versions`` (None for a package not installed),
        ``loadavg_start`` (from :func:`start`, None if it was not called), ``loadavg_end``
        (1, 5, 15 min) and ``wall_s`` (seconds since :func:`start`, None without it).
    """
    versions: dict[str, str | None] = {}
    for name in dict.fromkeys(("numpy", "scipy", *packages)):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    commit, dirty = _started["git"] if _started else _git_state()
    return {
        "commit": commit,
        "dirty": dirty,
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "command": command_line(),
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "versions": versions,
        "loadavg_start": _started["loadavg"] if _started else None,
        "loadavg_end": _loadavg(),
        "wall_s": round(time.monotonic() - _started["monotonic"], 2) if _started else None,
    }


# --------------------------------------------------------------------------- statistics

def median(values: Iterable[float]) -> float:
    """Median of ``values`` (mean of the two middle ones for an even count).

    Raises:
        InputError: ``values`` is empty (a ValueError).
    """
    s = sorted(values)
    if not s:
        raise InputError("median of nothing: no values were measured")
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def median_of_runs(fn: Callable[[], float], runs: int, warmup: int = 1
                   ) -> tuple[float, list[float]]:
    """Call ``fn`` ``warmup`` times (discarded), then ``runs`` times; median of the kept ones.

    Args:
        fn: one measurement, returning a number (seconds, Hz, ...).
        runs: measurements kept, >= 1.
        warmup: measurements discarded first (caches, JIT, page faults), >= 0.

    Returns:
        ``(median, values)``: ``values`` are the ``runs`` kept results, in call order.
    """
    if runs < 1 or warmup < 0:
        raise ConfigError(f"median_of_runs: runs={runs} must be >= 1, warmup={warmup} >= 0")
    for _ in range(warmup):
        fn()
    values = [fn() for _ in range(runs)]
    return median(values), values


# --------------------------------------------------------------------------- bars

_MISSING = object()


def lookup(results: Any, path: str) -> Any:
    """``results`` at the dotted ``path`` (dict keys, or list indices for integer parts).

    Returns:
        the value, or None when any part of the path is missing.
    """
    cur = results
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part, _MISSING)
        elif isinstance(cur, (list, tuple)) and part.lstrip("-").isdigit():
            i = int(part)
            cur = cur[i] if -len(cur) <= i < len(cur) else _MISSING
        else:
            cur = _MISSING
        if cur is _MISSING:
            return None
    return cur


def evaluate_bars(results: dict[str, Any], bars: Sequence[Bar]) -> list[dict[str, Any]]:
    """Check each bar against ``results``.

    Returns:
        one dict per bar, in order: ``name``, ``metric``, ``op``, ``threshold``, ``unit``,
        ``note``, ``required`` (text such as ``">= 10 Hz"``), ``measured`` (the value, None when
        the metric is missing or NaN) and ``met`` (True / False, None when not measured).
    """
    out = []
    for bar in bars:
        value = lookup(results, bar.metric)
        if isinstance(value, bool):
            value = int(value) if not isinstance(bar.threshold, bool) else value
        if isinstance(value, float) and math.isnan(value):
            value = None
        if value is not None and not isinstance(value, (int, float)):
            raise InputError(f"bar {bar.name!r}: metric {bar.metric!r} is {value!r}, not a number")
        met = None if value is None else bool(OPS[bar.op](value, bar.threshold))
        out.append({"name": bar.name, "metric": bar.metric, "op": bar.op,
                    "threshold": bar.threshold, "unit": bar.unit, "note": bar.note,
                    "required": bar.required, "measured": value, "met": met})
    return out


def _fmt(x: Any) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
            return f"{x:.3g}"
        return f"{x:.4g}" if abs(x) < 100 else f"{x:.1f}"
    return str(x)


def _met_text(met: bool | None) -> str:
    return {True: "yes", False: "**NO**", None: "not measured"}[met]


def bars_markdown(evaluated: Sequence[dict[str, Any]]) -> str:
    """A markdown table (bar | required | measured | met) of :func:`evaluate_bars`'s output."""
    lines = ["| bar | required | measured | met |", "|---|---|---|---|"]
    for e in evaluated:
        measured = "-" if e["measured"] is None else (
            _fmt(e["measured"]) + (f" {e['unit']}" if e["unit"] else ""))
        name = e["name"] + (f" ({e['note']})" if e.get("note") else "")
        lines.append(f"| {name} | {e['required']} | {measured} | {_met_text(e['met'])} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- writers

def provenance_footer(prov: dict[str, Any]) -> str:
    """One italic markdown line saying where and when the results were measured."""
    m = prov.get("machine", {})
    commit = prov.get("commit", "unknown")
    dirty = prov.get("dirty")
    state = {True: " (dirty tree)", False: " (clean tree)"}.get(dirty, "")
    load = prov.get("loadavg_end") or prov.get("machine", {}).get("loadavg_1_5_15")
    start_load = prov.get("loadavg_start")
    load_text = ""
    if load:
        load_text = (f"; load average {start_load[0]:.1f} at the start, {load[0]:.1f} at the end"
                     if start_load else f"; load average {load[0]:.1f} at the end")
    cmd = f" by `{prov['command']}`" if prov.get("command") else ""
    return (f"_Measured {prov.get('date_utc', '?')} UTC{cmd} at commit `{commit}`{state} on "
            f"{m.get('cpu', '?')} ({m.get('cores', '?')} cores), Python {m.get('python', '?')}"
            f"{load_text}._")


def write_results(topic: str, results: dict[str, Any], markdown: str,
                  out_dir: str | os.PathLike, packages: Iterable[str] = (),
                  bars: Sequence[Bar] = ()) -> tuple[Path, Path]:
    """Write ``<out_dir>/<topic>.json`` and ``<out_dir>/<topic>.md``.

    The JSON holds ``topic``, the :func:`provenance` keys, ``results`` and ``bars`` (the
    :func:`evaluate_bars` rows of ``bars`` against ``results``). The markdown is ``markdown``
    followed by the provenance footer; when ``markdown`` does not already contain the bars
    table, it is inserted after the title line.

    Returns:
        ``(json_path, md_path)``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance(packages)
    evaluated = evaluate_bars(results, bars)
    jpath, mpath = out / f"{topic}.json", out / f"{topic}.md"
    jpath.write_text(json.dumps({"topic": topic, **prov, "results": results, "bars": evaluated},
                                indent=2, default=_json_default) + "\n")
    text = markdown.rstrip()
    table = bars_markdown(evaluated) if evaluated else ""
    if table and table not in text:
        head, sep, rest = text.partition("\n")
        block = f"\n## Bars\n\n{table}\n"
        text = f"{head}\n{block}{sep}{rest}" if head.startswith("#") else f"{block}\n{text}"
    mpath.write_text(text + "\n\n" + provenance_footer(prov) + "\n")
    return jpath, mpath


def _json_default(x: Any) -> Any:
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:  # numpy is a dependency; this only keeps the writer standalone
        pass
    if isinstance(x, Path):
        return str(x)
    return float(x)
