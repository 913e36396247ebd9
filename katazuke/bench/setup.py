"""``katazuke bench setup``: how long the README commands spend on setup.

Measures ``scripts/bootstrap.sh`` when nothing changed (the "second run" bar), and with
``fresh`` a full bootstrap of a fresh ``git clone`` into a temporary folder (new virtualenv,
all wheels, colcon build), optionally followed by the test command. :func:`run` measures,
:func:`markdown` renders, :data:`BARS` is the one table of bars both read.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from katazuke.bench.harness import Bar, evaluate_bars, median
from katazuke.config import dataclass, field
from katazuke.errors import ConfigError, KatazukeError

__all__ = ["SetupBenchConfig", "BARS", "run", "markdown"]

#: The Setup bars.
BARS = (Bar("second run of scripts/bootstrap.sh (nothing changed, median)",
            "noop_bootstrap_median_s", "<", 15.0, unit="s"),)


@dataclass(frozen=True)
class SetupBenchConfig:
    """What one ``katazuke bench setup`` run measures."""

    repeats: int = field(default=5, metadata={"help": "no-change bootstrap runs"})
    fresh: bool = field(default=False, metadata={
        "help": "also time a fresh clone's full bootstrap"})
    fresh_tests: bool = field(default=False, metadata={
        "help": "with fresh: run scripts/test.sh in the fresh clone"})

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ConfigError(f"repeats must be >= 1, got {self.repeats}")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("AMENT_", "KATAZUKE_", "COLCON", "ROS_", "RMW_", "_ROS_WHEELS"))
            and k not in ("PYTHONPATH", "LD_LIBRARY_PATH", "CMAKE_PREFIX_PATH", "PYTHONSAFEPATH",
                          "VIRTUAL_ENV")}


def _timed(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=_clean_env(), capture_output=True, text=True)
    return time.monotonic() - t0, p.returncode, (p.stdout + p.stderr)[-3000:]


def _clone_relative(text: str, clone: Path) -> str:
    """``text`` with the temporary clone's path written as ``<fresh clone>`` (no
    machine-local paths in stored results)."""
    return text.replace(str(clone), "<fresh clone>")


def run(cfg: SetupBenchConfig) -> dict[str, Any]:
    """Time the bootstraps.

    Raises:
        KatazukeError: the no-change bootstrap failed (its output tail is in the message).
    """
    from katazuke.rosenv import repo_root

    root = repo_root()
    times = []
    for _ in range(cfg.repeats):
        dt, rc, log = _timed(["bash", "scripts/bootstrap.sh"], root)
        if rc != 0:
            raise KatazukeError(f"scripts/bootstrap.sh failed (exit {rc}); fix it first:\n{log}")
        times.append(dt)
    results: dict[str, Any] = {"noop_bootstrap_s": times, "noop_bootstrap_median_s": median(times)}
    if cfg.fresh:
        tmp = Path(tempfile.mkdtemp(prefix="katazuke-fresh-"))
        try:
            subprocess.run(["git", "clone", "-q", str(root), str(tmp / "k")], check=True)
            # the fresh clone's shared/ data sits beside it, like CI's
            shared = root.parent / "shared"
            if shared.is_dir():
                (tmp / "shared").symlink_to(shared)
            dt, rc, log = _timed(["bash", "scripts/bootstrap.sh"], tmp / "k")
            results["fresh_bootstrap_s"], results["fresh_bootstrap_rc"] = dt, rc
            if rc != 0:
                results["fresh_bootstrap_tail"] = _clone_relative(log[-600:], tmp / "k")
            dt2, rc2, _ = _timed(["bash", "scripts/bootstrap.sh"], tmp / "k")
            results["fresh_second_bootstrap_s"], results["fresh_second_bootstrap_rc"] = dt2, rc2
            if cfg.fresh_tests and rc == 0:
                dt3, rc3, log3 = _timed(["bash", "scripts/test.sh", "-x", "-q"], tmp / "k")
                results["fresh_tests_s"], results["fresh_tests_rc"] = dt3, rc3
                results["fresh_tests_tail"] = _clone_relative(log3[-600:], tmp / "k")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return results


def markdown(res: dict[str, Any], command: str = "") -> str:
    """The report of :func:`run`'s results (bars table from :data:`BARS`)."""
    from katazuke.bench.harness import bars_markdown

    times = res["noop_bootstrap_s"]
    lines = ["## Setup time", "", "| measurement | value |", "|---|---|",
             f"| `scripts/bootstrap.sh` with nothing changed (median of {len(times)}) | "
             f"{res['noop_bootstrap_median_s']:.2f} s (max {max(times):.2f} s) |"]
    if "fresh_bootstrap_s" in res:
        lines.append(f"| fresh clone, full bootstrap (venv, wheels, colcon) | "
                     f"{res['fresh_bootstrap_s']:.1f} s (exit {res['fresh_bootstrap_rc']}) |")
        lines.append(f"| fresh clone, second bootstrap | {res['fresh_second_bootstrap_s']:.2f} s "
                     f"(exit {res.get('fresh_second_bootstrap_rc', '?')}) |")
    if "fresh_tests_s" in res:
        lines.append(f"| fresh clone, `scripts/test.sh` (setup + all default tests) | "
                     f"{res['fresh_tests_s']:.0f} s (exit {res['fresh_tests_rc']}) |")
    lines += [""] + ([f"Command: `{command}`", ""] if command else [])
    lines.append(bars_markdown(evaluate_bars(res, BARS)))
    return "\n".join(lines)
