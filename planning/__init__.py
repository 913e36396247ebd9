"""katazuke.planning: a ROS-free library (no rclpy, no message packages).

Imported as ``katazuke.planning``. Subpackages (issue 13, the tidy-up):

- :mod:`katazuke.planning.navigation`: 2-D cost map from depth images and poses, A* global
  planner, pre-grasp / pre-place base poses, time parameterisation with velocity feedforward.
- :mod:`katazuke.planning.tasks`: item states, the task planner (tidy order, re-planning),
  the rule-based instruction parser and the tidy-up behaviour over a ``Skills`` seam.
- :mod:`katazuke.planning.manipulation`: Panda kinematics and IK (Pinocchio), collision-free
  joint paths (OMPL), time parameterisation, grasp verification. Import it explicitly: it
  loads Pinocchio and OMPL.
- :mod:`katazuke.planning.grasping`: the ``GraspPlanner`` seam, the geometric baseline and
  object point segmentation. Import it explicitly.
"""
from katazuke.errors import require_library_name

require_library_name(__name__, "planning")

from katazuke.planning import navigation, tasks  # noqa: E402  (light: numpy / scipy only)

__all__: list[str] = ["navigation", "tasks"]
