"""Writing benchmark results: JSON with provenance plus a markdown summary.

Every ``katazuke bench <topic>`` command calls :func:`write_results`, so each figure in
docs/BENCHMARKS.md can be traced to a commit, a machine and package versions.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Iterable

from katazuke.rosenv import repo_root

__all__ = ["provenance", "write_results", "median"]


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo_root(),
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo_root(), capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def provenance(packages: Iterable[str] = ()) -> dict[str, Any]:
    """Commit, machine, date and versions of ``packages`` (distribution names)."""
    versions = {}
    for name in ("numpy", "scipy", *packages):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "commit": _commit(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "loadavg_1_5_15": load},
        "versions": versions,
    }


def write_results(topic: str, results: dict[str, Any], markdown: str, out_dir: str | os.PathLike,
                  packages: Iterable[str] = ()) -> tuple[Path, Path]:
    """Write ``<out_dir>/<topic>.json`` (results + provenance) and ``<topic>.md``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance(packages)
    jpath, mpath = out / f"{topic}.json", out / f"{topic}.md"
    jpath.write_text(json.dumps({"topic": topic, **prov, "results": results}, indent=2,
                                default=float) + "\n")
    m = prov["machine"]
    footer = (f"\n_Measured {prov['date_utc']} UTC at commit `{prov['commit']}` on {m['cpu']} "
              f"({m['cores']} cores), Python {m['python']}; load average "
              f"{m['loadavg_1_5_15'][0]:.1f} at the end._\n")
    mpath.write_text(markdown.rstrip() + "\n" + footer)
    return jpath, mpath


def median(xs: Iterable[float]) -> float:
    s = sorted(xs)
    if not s:
        raise ValueError("median of nothing")
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
