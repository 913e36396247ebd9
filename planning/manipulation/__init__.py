"""Manipulation for the Panda: kinematics and IK, collision-free joint paths, timing, grasps.

``ArmModel(urdf)`` (Pinocchio; ``fk``, ``jacobian``, ``ik``/``solve_ik``), a sphere model of
the arm checked against boxes and a point cloud in ``base_link`` (``CollisionChecker``,
``Obstacles``), ``MotionPlanner`` (straight joint segment first, OMPL RRT-Connect when it
collides), ``time_parameterize`` (synchronised trapezoids -> ``JointTrajectory``),
``solve_approach`` (pre-grasp / grasp / lift IK with continuity) and ``verify_grasp``
(finger width and effort). ROS-free; never imports the simulator.
"""
from katazuke.planning.manipulation.collision import (PANDA_SPHERES, CollisionChecker,
                                                      CollisionConfig, Obstacles, SphereSet,
                                                      voxel_downsample)
from katazuke.planning.manipulation.errors import IKError, ManipulationError, PlanningError
from katazuke.planning.manipulation.grasping import (GRASP_CAUSES, ApproachConfig, ApproachPlan,
                                                     GraspCheckConfig, GraspVerdict,
                                                     approach_poses, cartesian_path,
                                                     solve_approach, verify_grasp)
from katazuke.planning.manipulation.kinematics import (PANDA_ARM_JOINTS, ArmModel, IKConfig,
                                                      IKSolution, as_pose)
from katazuke.planning.manipulation.planner import (MotionPlanner, PlannerConfig, PlanResult,
                                                    shortcut)
from katazuke.planning.manipulation.trajectory import (JointTrajectory, TrajectoryConfig,
                                                       time_parameterize)

__all__ = ["ArmModel", "IKConfig", "IKSolution", "IKError", "ManipulationError", "PlanningError",
           "PANDA_ARM_JOINTS", "as_pose",
           "CollisionChecker", "CollisionConfig", "Obstacles", "SphereSet", "PANDA_SPHERES",
           "voxel_downsample",
           "MotionPlanner", "PlannerConfig", "PlanResult", "shortcut",
           "JointTrajectory", "TrajectoryConfig", "time_parameterize",
           "verify_grasp", "GraspVerdict", "GraspCheckConfig", "GRASP_CAUSES",
           "ApproachConfig", "ApproachPlan", "approach_poses", "solve_approach",
           "cartesian_path"]
