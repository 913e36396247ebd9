"""katazuke.planning.navigation: 2-D costmap from depth, global planner, base poses, timing.

ROS-free. A navigator node converts messages and calls:

* :class:`CostMap` (``update(depth, K, T_map_cam)``, ``mark_clear``, ``add_box``, ``cost()``),
* :class:`GlobalPlanner` (``plan(costmap, start, goal) -> GlobalPath``, ``cost_field``),
* :func:`choose_base_pose` (pre-grasp / pre-place poses, best first),
* :func:`time_parameterize` (stamps and velocity feedforward for ``nav_msgs/Path``).
"""
from katazuke.planning.navigation.base_poses import (BasePose, BasePoseConfig, NoBasePoseError,
                                                      choose_base_pose, footprint_clearance,
                                                      reach_of)
from katazuke.planning.navigation.costmap import (CellState, CostMap, CostMapConfig,
                                                   footprint_radii)
from katazuke.planning.navigation.global_planner import (CostField, GlobalPath, GlobalPlanner,
                                                          NavigationError, NoPathError,
                                                          PlannerConfig, wrap_angle)
from katazuke.planning.navigation.path import TimedPath, TimingConfig, time_parameterize

__all__ = [
    "CellState", "CostMap", "CostMapConfig", "footprint_radii",
    "CostField", "GlobalPath", "GlobalPlanner", "NavigationError", "NoPathError",
    "PlannerConfig", "wrap_angle",
    "BasePose", "BasePoseConfig", "NoBasePoseError", "choose_base_pose", "footprint_clearance",
    "reach_of",
    "TimedPath", "TimingConfig", "time_parameterize",
]
