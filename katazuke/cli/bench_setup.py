"""``katazuke bench setup``: how long the README commands spend on setup.

Measures ``scripts/bootstrap.sh`` when nothing changed (the "second run" bar: < 15 s),
and with ``--fresh`` a full bootstrap of a fresh ``git clone`` into a temporary folder
(new virtualenv, all wheels, colcon build), optionally followed by the test command.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from katazuke.benchio import median, write_results
from katazuke.rosenv import repo_root


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=5, help="no-change bootstrap runs")
    parser.add_argument("--fresh", action="store_true", help="also time a fresh clone's full bootstrap")
    parser.add_argument("--fresh-tests", action="store_true",
                        help="with --fresh: run scripts/test.sh in the fresh clone")
    parser.add_argument("--out", default=str(repo_root() / "docs" / "bench"))


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AMENT_", "KATAZUKE_", "COLCON", "ROS_", "RMW_", "_ROS_WHEELS"))
           and k not in ("PYTHONPATH", "LD_LIBRARY_PATH", "CMAKE_PREFIX_PATH", "PYTHONSAFEPATH",
                         "VIRTUAL_ENV")}
    return env


def _timed(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=_clean_env(), capture_output=True, text=True)
    return time.monotonic() - t0, p.returncode, (p.stdout + p.stderr)[-3000:]


def main(args: argparse.Namespace) -> int:
    root = repo_root()
    times = []
    for _ in range(args.repeats):
        dt, rc, log = _timed(["bash", "scripts/bootstrap.sh"], root)
        if rc != 0:
            print(log)
            return rc
        times.append(dt)
    results: dict = {"noop_bootstrap_s": times, "noop_bootstrap_median_s": median(times)}
    lines = ["## Setup time", "",
             "| measurement | value |", "|---|---|",
             f"| `scripts/bootstrap.sh` with nothing changed (median of {len(times)}) | "
             f"{median(times):.2f} s (max {max(times):.2f} s) |"]
    if args.fresh:
        tmp = Path(tempfile.mkdtemp(prefix="katazuke-fresh-"))
        try:
            subprocess.run(["git", "clone", "-q", str(root), str(tmp / "k")], check=True)
            # the fresh clone's shared/ data sits beside it, like CI's
            shared = root.parent / "shared"
            if shared.is_dir():
                (tmp / "shared").symlink_to(shared)
            dt, rc, log = _timed(["bash", "scripts/bootstrap.sh"], tmp / "k")
            results["fresh_bootstrap_s"], results["fresh_bootstrap_rc"] = dt, rc
            lines.append(f"| fresh clone, full bootstrap (venv, wheels, colcon) | {dt:.1f} s (exit {rc}) |")
            dt2, rc2, _ = _timed(["bash", "scripts/bootstrap.sh"], tmp / "k")
            results["fresh_second_bootstrap_s"] = dt2
            lines.append(f"| fresh clone, second bootstrap | {dt2:.2f} s (exit {rc2}) |")
            if args.fresh_tests and rc == 0:
                dt3, rc3, log3 = _timed(["bash", "scripts/test.sh", "-x", "-q"], tmp / "k")
                results["fresh_tests_s"], results["fresh_tests_rc"] = dt3, rc3
                results["fresh_tests_tail"] = log3[-600:]
                lines.append(f"| fresh clone, `scripts/test.sh` (setup + all default tests) | "
                             f"{dt3:.0f} s (exit {rc3}) |")
            if rc != 0:
                print(log)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    lines += ["", "Command: `katazuke bench setup" + (" --fresh" if args.fresh else "")
              + (" --fresh-tests" if args.fresh_tests else "") + "`",
              f"Bar: second run < 15 s: **{'met' if median(times) < 15 else 'NOT met'}**."]
    md = "\n".join(lines)
    write_results("setup", results, md, args.out)
    print(md)
    return 0
