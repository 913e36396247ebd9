"""`katazuke instruct`: bad input and a missing stack get clear answers, not tracebacks."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ros]


def _run(*args: str) -> subprocess.CompletedProcess:
    from katazuke.rosenv import ros_environment

    env = ros_environment()
    env["ROS_DOMAIN_ID"] = str(180 + os.getpid() % 20)   # a domain with no task manager
    return subprocess.run([sys.executable, "-P", "-m", "katazuke.cli", "instruct", *args],
                          env=env, capture_output=True, text=True, timeout=60)


def test_an_empty_instruction_is_refused():
    p = _run("   ")
    assert p.returncode == 2 and "empty" in p.stderr and "Traceback" not in p.stderr


def test_no_task_manager_is_named_as_the_cause():
    p = _run("tidy up", "--wait", "1.5")
    assert p.returncode == 1, p.stderr
    assert "is the task manager running" in p.stderr and "Traceback" not in p.stderr
