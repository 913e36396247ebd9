"""katazuke.control: a ROS-free library (no rclpy, no message packages).

Imported as ``katazuke.control`` (python-control imports as 'control').
"""
from katazuke.errors import require_library_name

require_library_name(__name__, "control")

from katazuke.control.disturbances import FAMILIES, make_disturbance, worst_case_sinusoid
from katazuke.control.gpc import GPC, GPCConfig, QuadraticCost, fd_cost_grad
from katazuke.control.hinf import hinf_state_feedback
from katazuke.control.lqr import (check_system, closed_loop, dlqr, finite_horizon_lqr,
                                  riccati_residual)
from katazuke.control.sysid import exploration_actions, identify
from katazuke.control.systems import (LinearSystem, arm_joint, benchmark_systems,
                                      double_integrator, holonomic_base, is_stabilisable,
                                      random_stabilisable)
from katazuke.control.tracking import (ControllerConfig, ErrorTracker, PathFollower, TrackerOutput,
                                       TrajectoryFollower, arm_tracker, base_tracker, wrap_angle, yaw_from_quaternion)

__all__: list[str] = [
    "FAMILIES", "make_disturbance", "worst_case_sinusoid",
    "GPC", "GPCConfig", "QuadraticCost", "fd_cost_grad",
    "hinf_state_feedback",
    "check_system", "closed_loop", "dlqr", "finite_horizon_lqr", "riccati_residual",
    "exploration_actions", "identify",
    "LinearSystem", "arm_joint", "benchmark_systems", "double_integrator", "holonomic_base",
    "is_stabilisable", "random_stabilisable",
    "ControllerConfig", "ErrorTracker", "PathFollower", "TrackerOutput", "TrajectoryFollower",
    "arm_tracker",
    "base_tracker", "wrap_angle", "yaw_from_quaternion",
]
