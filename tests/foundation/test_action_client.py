"""katazuke.ros.actions.ActionClient: a goal's answer that arrives before the client has
recorded the request is still delivered (rclpy's own client drops it and the goal's future
never completes: ros2/rclpy#1123; CI hit it with a navigator that answered in 7 ms)."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from katazuke.testing import wait_for

pytestmark = pytest.mark.ros


class _SlowRecord:
    """The client's rcl handle, with a pause between sending a goal request and returning
    to the client (which only then records it): the executor thread takes the answer in the
    pause, as it can by chance between any two Python bytecodes."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def send_goal_request(self, request: Any) -> int:
        seq = self._handle.send_goal_request(request)
        time.sleep(0.3)                  # releases the GIL: the answer is taken meanwhile
        return seq

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> Any:
        return self._handle.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._handle.__exit__(*exc)


def goal_answered(ros_context, client_cls) -> bool:
    """Send one goal with the pause; True when its future completes."""
    import rclpy
    from rclpy.action import ActionServer
    from rclpy.executors import SingleThreadedExecutor

    from katazuke_interfaces.action import Navigate

    def execute(gh):
        gh.succeed()
        return Navigate.Result(message="ok")

    server_node = rclpy.create_node("instant_server", context=ros_context)
    client_node = rclpy.create_node("racing_client", context=ros_context)
    server = ActionServer(server_node, Navigate, "instant", execute)
    client = client_cls(client_node, Navigate, "instant")
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(server_node)
    ex.add_node(client_node)
    spin = threading.Thread(target=ex.spin, daemon=True)
    spin.start()
    try:
        assert client.wait_for_server(timeout_sec=10.0)
        client._client_handle = _SlowRecord(client._client_handle)
        fut = client.send_goal_async(Navigate.Goal())
        client._client_handle = client._client_handle._handle
        return wait_for(fut.done, 5.0) and fut.result().accepted
    finally:
        ex.shutdown()
        spin.join(timeout=5.0)
        client.destroy()
        server.destroy()
        client_node.destroy_node()
        server_node.destroy_node()


def test_an_answer_taken_before_the_request_is_recorded_still_completes_the_goal(
        ros_context) -> None:
    from katazuke.ros.actions import ActionClient

    assert goal_answered(ros_context, ActionClient)
