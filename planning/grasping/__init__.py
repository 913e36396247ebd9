"""Grasp planning: the :class:`GraspPlanner` seam, the geometric baseline and object points.

Imported as ``katazuke.planning.grasping``. The seam::

    obj, scene = segment_object_points(depth, K, box_xyxy, T_base_cam)   # base_link, m
    grasps = GeometricGraspPlanner().plan(obj, "bottle", scene)           # best first
    grasps[0].T_base_grasp, grasps[0].width_m, grasps[0].score

A new planner (e.g. Neural Descriptor Fields) subclasses :class:`GraspPlanner`, sets
``name`` and ``categories`` and implements ``_plan``; input checks, the category check and
best-first sorting come from the base class. ``katazuke/bench/grasp.py`` measures any planner
in the simulator against the scripted ground-truth grasp.
"""
from katazuke.planning.grasping.geometric import (DEFAULT_CATEGORIES, GeometricGraspConfig,
                                                  GeometricGraspPlanner, GripperBoxes,
                                                  ObjectShape, object_shape)
from katazuke.planning.grasping.grasp import (MAX_OPENING_M, Grasp, GraspPlanner,
                                              GraspPlanningError, NoGraspError,
                                              UnsupportedCategoryError, check_points)
from katazuke.planning.grasping.segmentation import (SegmentationConfig, SegmentationError,
                                                     fit_support_plane, lift_pixels,
                                                     segment_object_points)

__all__ = ["Grasp", "GraspPlanner", "GraspPlanningError", "UnsupportedCategoryError",
           "NoGraspError", "MAX_OPENING_M", "check_points", "GeometricGraspConfig",
           "GeometricGraspPlanner", "GripperBoxes", "ObjectShape", "object_shape",
           "DEFAULT_CATEGORIES", "SegmentationConfig", "SegmentationError",
           "segment_object_points", "lift_pixels", "fit_support_plane"]
