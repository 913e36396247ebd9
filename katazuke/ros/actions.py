"""An rclpy action client whose futures always complete.

Jazzy's ``rclpy.action.ActionClient`` sends a request and only then records the pending
future (``send_goal_async``, ``_get_result_async``, ``_cancel_goal_async``). When the caller's
thread is not the executor's thread — a test or bench that spins in the background, a
multi-threaded executor — a fast server's answer can be taken and executed in between: the
client logs "Ignoring unexpected goal response. There may be more than one action server"
and the future never completes (ros2/rclpy#1123; fixed upstream by a lock, rclpy#1308, which
the PyPI wheels we install do not carry). CI hit it: a navigator that planned in 7 ms
answered before the test's goal was recorded, and the test waited in vain.

:class:`ActionClient` is a drop-in subclass that holds one re-entrant lock around "send and
record" and around executing what was taken, so an answer is looked up only once its request
is recorded. Use it wherever a goal may be sent from another thread than the one spinning.
"""
from __future__ import annotations

import threading
from typing import Any

from rclpy.action import ActionClient as _RclpyActionClient

__all__ = ["ActionClient"]


class ActionClient(_RclpyActionClient):
    """``rclpy.action.ActionClient`` with requests recorded before their answers are handled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # before super(): the base class may add itself to a wait set during construction
        self._katazuke_lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def send_goal_async(self, goal: Any, feedback_callback: Any = None,
                        goal_uuid: Any = None) -> Any:
        with self._katazuke_lock:
            return super().send_goal_async(goal, feedback_callback=feedback_callback,
                                           goal_uuid=goal_uuid)

    def _get_result_async(self, goal_handle: Any) -> Any:
        with self._katazuke_lock:
            return super()._get_result_async(goal_handle)

    def _cancel_goal_async(self, goal_handle: Any) -> Any:
        with self._katazuke_lock:
            return super()._cancel_goal_async(goal_handle)

    async def execute(self, taken_data: Any) -> None:
        # the base coroutine only awaits feedback callbacks; ours are plain functions, so the
        # lock is released within this step (an RLock: done callbacks that run inline and
        # call get_result_async re-enter on the same thread)
        with self._katazuke_lock:
            await super().execute(taken_data)
