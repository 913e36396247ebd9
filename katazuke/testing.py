"""Test helpers shared by the test suite and benchmarks (no test framework imports).

``wait_for`` polls a condition with a timeout: tests never sleep a fixed time and hope.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from typing import Callable

__all__ = ["wait_for", "start_node", "stop_node"]


def wait_for(cond: Callable[[], bool], timeout: float, poll: float = 0.02,
             spin: Callable[[], None] | None = None) -> bool:
    """Return True as soon as ``cond()`` holds, False once ``timeout`` seconds pass.

    Args:
        cond: the condition to poll.
        timeout: seconds.
        poll: sleep between polls when ``spin`` is None.
        spin: called instead of sleeping (e.g. ``lambda: rclpy.spin_once(node, timeout_sec=0.02)``).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if spin is not None:
            spin()
        else:
            time.sleep(poll)
        if cond():
            return True
    return cond()


def start_node(name: str, *ros_args: str) -> "subprocess.Popen[str]":
    """Start the installed ``katazuke_ros`` executable ``name`` in its own session.

    Its output goes to a temporary file, not a pipe: nobody drains a pipe until
    :func:`stop_node`, and a node blocks on logging once 64 KiB fill it.

    Raises:
        KatazukeError: the executable is not built (run scripts/bootstrap.sh).
    """
    from katazuke.errors import KatazukeError
    from katazuke.rosenv import ros_environment, workspace_install

    exe = workspace_install() / "lib" / "katazuke_ros" / name
    if not exe.exists():
        raise KatazukeError(f"{exe} missing: run scripts/bootstrap.sh (colcon build of ros_ws)")
    out = tempfile.TemporaryFile(mode="w+t")
    proc = subprocess.Popen([str(exe), "--ros-args", *ros_args], env=ros_environment(),
                            stdout=out, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    proc.output_file = out  # type: ignore[attr-defined]
    return proc


def stop_node(proc: "subprocess.Popen[str]", timeout: float = 10.0) -> str:
    """SIGINT the node's process group (SIGKILL after ``timeout``); return its output."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    f = proc.output_file  # type: ignore[attr-defined]
    f.seek(0)
    return f.read()
