"""katazuke.sim: the PyBullet tidy-up world, domain randomization and the data factory.

A ROS-free library (no rclpy, no message packages); the only package allowed to import
PyBullet. Imported as ``katazuke.sim``. PyBullet itself is imported lazily (inside
:class:`TidyEnv`), so importing this package has no side effects.
"""
from katazuke.errors import require_library_name

require_library_name(__name__, "sim")

from katazuke.sim.env import (CATEGORIES, Action, CameraFrame, ContainerInfo, EnvConfig,
                              Observation, ObjectState, SimError, TidyEnv, intrinsics_from_fov)
from katazuke.sim.objects import KINDS, ObjectKind
from katazuke.sim.profiles import PROFILES, Profile
from katazuke.sim.dataset import DatasetSpec, generate_dataset, generate_sequences
from katazuke.sim.pick_place import PickPlaceResult, pick_and_place

__all__ = ["TidyEnv", "EnvConfig", "Action", "Observation", "CameraFrame", "ObjectState",
           "ContainerInfo", "SimError", "CATEGORIES", "KINDS", "ObjectKind", "PROFILES",
           "Profile", "intrinsics_from_fov", "DatasetSpec", "generate_dataset",
           "generate_sequences", "PickPlaceResult", "pick_and_place"]
