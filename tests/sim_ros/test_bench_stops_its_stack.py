"""Stopping `katazuke bench tidy` (Ctrl-C or SIGTERM to the bench alone) stops the stack it
launched: the launcher runs in its own session, so only the bench's clean-up can end it.

Before the fix rclpy's signal handlers swallowed SIGINT (the bench kept waiting) and SIGTERM
killed the bench without its clean-up, leaving the whole stack running."""
from __future__ import annotations

import os
import signal
import sys

import pytest

from katazuke.launcher.supervisor import descendants, describe_process, process_alive
from katazuke.testing import finish_process, start_process, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_tidy_bench_leaves_no_process_of_its_stack(tmp_path, sig):
    tree: list[int] = []
    bench = start_process([sys.executable, "-P", "-m", "katazuke.cli", "bench", "tidy",
                           "--seeds", "1", "--objects", "1", "--profile", "none",
                           "--out-dir", str(tmp_path)], env=dict(os.environ))
    try:
        # the stack is up once the launcher's guards have started their nodes: the sim
        # bridge's guard alone is not enough (the launcher may still be forking the others;
        # a loaded machine failed this with 3 processes: launcher, one guard, one fork)
        def stack_up() -> bool:
            tree[:] = descendants(bench.pid)
            return (sum("sim_bridge" in describe_process(p) for p in tree) >= 2
                    and len(tree) >= 5)
        assert wait_for(stack_up, 120.0, poll=0.5), \
            ("the bench never launched the stack", [describe_process(p) for p in tree])
        os.kill(bench.pid, sig)
        assert wait_for(lambda: bench.poll() is not None, 90.0, poll=0.2), \
            f"the bench ignored {sig.name}"
        assert bench.returncode == 130
        assert wait_for(lambda: not any(process_alive(p) for p in tree), 10.0, poll=0.2), \
            [describe_process(p) for p in tree if process_alive(p)]
    finally:
        out = finish_process(bench, signal.SIGKILL, timeout=5.0)
        for p in set(tree) | set(descendants(bench.pid)):   # orphans of a failed run too
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    assert "Traceback" not in out, out[-3000:]
