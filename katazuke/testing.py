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

__all__ = ["wait_for", "spin_for", "start_process", "finish_process", "start_node", "stop_node"]


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


def spin_for(seconds: float, spin: Callable[[], None]) -> None:
    """A measurement window: call ``spin()`` repeatedly for ``seconds`` wall seconds.

    For benches and tests that let a system run and count what arrives; this is not a wait
    for a condition (that is :func:`wait_for`). ``spin`` should block briefly, e.g.
    ``lambda: executor.spin_once(timeout_sec=0.02)``.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        spin()


def start_process(argv: list[str], env: dict | None = None) -> "subprocess.Popen[str]":
    """Start ``argv`` in its own session with stdout + stderr going to a temporary file.

    A file, not a pipe: nobody drains a pipe until the process is finished, and a child
    blocks on its own logging once 64 KiB fill it. Read the output with
    :func:`finish_process`.
    """
    out = tempfile.TemporaryFile(mode="w+t")
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    proc.output_file = out  # type: ignore[attr-defined]
    return proc


def finish_process(proc: "subprocess.Popen[str]", sig: int | None = signal.SIGINT,
                   timeout: float = 10.0) -> str:
    """Stop a :func:`start_process` child and return everything it printed.

    A running process group gets ``sig`` (None: just wait), then SIGKILL after ``timeout``;
    an exited one is only read.
    """
    if proc.poll() is None:
        if sig is not None:
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    f = proc.output_file  # type: ignore[attr-defined]
    f.flush()
    f.seek(0)
    return f.read()


def start_node(name: str, *ros_args: str) -> "subprocess.Popen[str]":
    """Start the installed ``katazuke_ros`` executable ``name`` (see :func:`start_process`).

    Raises:
        KatazukeError: the executable is not built (run scripts/bootstrap.sh).
    """
    from katazuke.errors import KatazukeError
    from katazuke.rosenv import ros_environment, workspace_install

    exe = workspace_install() / "lib" / "katazuke_ros" / name
    if not exe.exists():
        raise KatazukeError(f"{exe} missing: run scripts/bootstrap.sh (colcon build of ros_ws)")
    return start_process([str(exe), "--ros-args", *ros_args], env=ros_environment())


def stop_node(proc: "subprocess.Popen[str]", timeout: float = 10.0) -> str:
    """SIGINT the node's process group (SIGKILL after ``timeout``); return its output."""
    return finish_process(proc, signal.SIGINT, timeout)

