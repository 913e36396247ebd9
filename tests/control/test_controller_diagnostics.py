"""The controller's diagnostics in the standard form: ``diagnostics``
(diagnostic_msgs/DiagnosticArray) mirrors ``controller/diagnostics``, throttled, with the level
going to WARN at once on an emergency stop. Plus a unit test of the status builder."""
from __future__ import annotations

import math
from typing import Any

import pytest

from katazuke.testing import spin_for, wait_for

pytestmark = pytest.mark.ros


def _values(status: Any) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_controller_diagnostic_status_levels_and_values():
    from diagnostic_msgs.msg import DiagnosticStatus

    from katazuke.ros.conversions import controller_diagnostic_status, diagnostic_array_msg
    from katazuke_interfaces.msg import ControllerDiagnostics

    d = ControllerDiagnostics(mode=ControllerDiagnostics.MODE_GPC, requested_mode="gpc",
                              tracking_error=0.25, stage_cost=1.5, saturated=True)
    d.header.frame_id = "base"
    s = controller_diagnostic_status(d)
    assert s.name == "controller: base" and s.level == DiagnosticStatus.OK and s.message == "gpc"
    v = _values(s)
    assert v["tracking_error"] == "0.25" and v["saturated"] == "true" and v["mode"] == "gpc"
    assert set(v) >= {"stage_cost", "cumulative_cost", "disturbance_norm", "state_norm",
                      "estopped", "fallback_active", "fallback_reason", "requested_mode"}
    d.fallback_active, d.fallback_reason, d.mode = True, "state norm 3 exceeds guard", "lqr"
    s = controller_diagnostic_status(d)
    assert s.level == DiagnosticStatus.WARN and "state norm 3" in s.message
    d.fallback_active, d.mode, d.estopped = False, ControllerDiagnostics.MODE_STOPPED, True
    s = controller_diagnostic_status(d)
    assert s.level == DiagnosticStatus.WARN and s.message == "stopped: emergency stop"
    arr = diagnostic_array_msg([s], 12.5)
    assert arr.header.stamp.sec == 12 and arr.header.stamp.nanosec == 500_000_000
    assert list(arr.status) == [s]


def test_controller_node_publishes_diagnostic_array(ros_context):
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import Bool

    from katazuke_interfaces.msg import ControllerDiagnostics
    from katazuke_ros import qos
    from katazuke_ros.controller_node import DIAGNOSTICS_PERIOD_S, ControllerNode

    ctrl = ControllerNode(context=ros_context)
    node = rclpy.create_node("controller_diag_test", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(ctrl)
    ex.add_node(node)
    std: list[Any] = []
    own: list[Any] = []
    node.create_subscription(DiagnosticArray, "diagnostics", std.append, qos.EVENTS)
    node.create_subscription(ControllerDiagnostics, "controller/diagnostics", own.append, qos.EVENTS)
    odom_pub = node.create_publisher(Odometry, "odom", qos.STATE)
    goal_pub = node.create_publisher(PoseStamped, "goal_pose", qos.COMMAND)
    estop_pub = node.create_publisher(Bool, "emergency_stop", qos.LATCHED)

    def odom() -> None:
        m = Odometry()
        m.header.frame_id, m.child_frame_id = "odom", "base_link"
        m.pose.pose.orientation.w = 1.0
        odom_pub.publish(m)

    node.create_timer(0.02, odom)

    def spin() -> None:
        ex.spin_once(timeout_sec=0.01)

    try:
        goal = PoseStamped()
        goal.header.frame_id = "odom"
        goal.pose.position.x = 2.0
        goal.pose.orientation.z, goal.pose.orientation.w = math.sin(0.2), math.cos(0.2)
        assert wait_for(lambda: any(d.header.frame_id == "base" for d in own), 5.0,
                        spin=lambda: (goal_pub.publish(goal), spin()))
        # (before the first odometry arrives the watchdog reports a stopped base: WARN)
        assert wait_for(lambda: any(a.status[0].level == DiagnosticStatus.OK for a in std), 5.0,
                        spin=spin)
        s = next(a.status[0] for a in std if a.status[0].level == DiagnosticStatus.OK)
        assert s.name == "controller: base" and s.hardware_id == "base"
        assert s.level == DiagnosticStatus.OK and s.message == "lqr"
        assert 0.0 < float(_values(s)["tracking_error"]) <= 2.0 + 1e-6
        # throttled: the per-tick topic runs at rate_hz, the standard one at 1 / period
        n_std, n_own = len(std), len(own)
        spin_for(2.0, spin)
        assert len(own) - n_own >= 10
        assert len(std) - n_std <= 2.0 / DIAGNOSTICS_PERIOD_S + 1
        # a level change goes out at once, not at the next period
        n_std = len(std)
        estop_pub.publish(Bool(data=True))
        assert wait_for(lambda: any(a.status[0].level == DiagnosticStatus.WARN
                                    for a in std[n_std:]), DIAGNOSTICS_PERIOD_S * 0.9, spin=spin)
        warn = next(a.status[0] for a in std[n_std:] if a.status[0].level == DiagnosticStatus.WARN)
        assert warn.message == "stopped: emergency stop" and _values(warn)["estopped"] == "true"
    finally:
        ex.shutdown()
        ctrl.destroy_node()
        node.destroy_node()
