"""katazuke.sim: the PyBullet tidy-up world, domain randomization and the data factory.

A ROS-free library (no rclpy, no message packages); the only package allowed to import
PyBullet. Imported as ``katazuke.sim``. PyBullet itself is imported lazily (inside
:class:`TidyEnv`), so importing this package has no side effects.
"""
if __name__ != "katazuke.sim":  # pragma: no cover - only on a mis-configured sys.path
    raise ImportError(
        f"the repository folder 'sim/' was imported as top-level '{__name__}' because the "
        "repository root is on sys.path (e.g. 'python' started in the repo root). It is "
        "the package katazuke.sim: import it by that name and start Python with -P "
        "(or PYTHONSAFEPATH=1) so the root does not shadow installed packages.")

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
