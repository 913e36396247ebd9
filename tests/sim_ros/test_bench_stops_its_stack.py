"""Stopping `katazuke bench tidy` (Ctrl-C or SIGTERM to the bench alone) stops the stack it
launched: the launcher runs in its own session, so only the bench's clean-up can end it.

Before the fix rclpy's signal handlers swallowed SIGINT (the bench kept waiting) and SIGTERM
killed the bench without its clean-up, leaving the whole stack running."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from katazuke.testing import finish_process, start_process, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_tidy_bench_leaves_no_process_of_its_stack(tmp_path, sig):
    tree: list[int] = []
    bench = start_process([sys.executable, "-P", "-m", "katazuke.cli", "bench", "tidy",
                           "--seeds", "1", "--objects", "1", "--profile", "none",
                           "--out-dir", str(tmp_path)], env=dict(os.environ))
    try:
        # the stack is up once the launcher's guards have started their nodes
        assert wait_for(lambda: sum("sim_bridge" in _cmdline(p)
                                    for p in _descendants(bench.pid)) >= 1, 120.0, poll=0.5), \
            "the bench never launched the stack"
        tree = _descendants(bench.pid)
        assert len(tree) >= 5, [_cmdline(p)[:80] for p in tree]
        os.kill(bench.pid, sig)
        assert wait_for(lambda: bench.poll() is not None, 90.0, poll=0.2), \
            f"the bench ignored {sig.name}"
        assert bench.returncode == 130
        assert wait_for(lambda: not any(_alive(p) for p in tree), 10.0, poll=0.2), \
            [_cmdline(p)[:100] for p in tree if _alive(p)]
    finally:
        out = finish_process(bench, signal.SIGKILL, timeout=5.0)
        for p in set(tree) | set(_descendants(bench.pid)):   # orphans of a failed run too
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    assert "Traceback" not in out, out[-3000:]
