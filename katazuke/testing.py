"""Test helpers shared by the test suite and benchmarks (no test framework imports).

``wait_for`` polls a condition with a timeout: tests never sleep a fixed time and hope.
"""
from __future__ import annotations

import time
from typing import Callable

__all__ = ["wait_for"]


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
