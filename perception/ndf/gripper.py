"""Query and collision points of the Panda hand in its ``panda_grasptarget`` frame.

Frame (``katazuke.planning.grasping``'s convention): z = approach (fingers move along +z),
y = closing axis, origin between the fingertips; the fingers reach back ~5 cm to the palm.
"""
from __future__ import annotations

import numpy as np

__all__ = ["gripper_query_points", "gripper_collision_points", "FINGER_LENGTH_M", "PALM_Z_M"]

#: Fingertip-to-palm length along -z, m.
FINGER_LENGTH_M = 0.05
#: The palm's z in the grasp frame, m.
PALM_Z_M = -0.058


def gripper_query_points(n: int, rng: np.random.Generator, width_m: float = 0.08) -> np.ndarray:
    """``(n, 3)`` query points spread over the volume the open hand encloses, m.

    Uniform in the box ``|x| <= 1.5 cm``, ``|y| <= width / 2``, ``z`` from the palm to 2 cm
    past the fingertips: the region whose geometry decides the grasp.
    """
    lo = np.array([-0.015, -width_m / 2, PALM_Z_M])
    hi = np.array([0.015, width_m / 2, 0.02])
    return lo + (hi - lo) * rng.random((n, 3))


def gripper_collision_points(width_m: float = 0.08, per_finger: int = 6) -> np.ndarray:
    """``(G, 3)`` points on the open fingers (at ``y = +-width / 2``) and the palm, m."""
    z = np.linspace(-FINGER_LENGTH_M, 0.0, per_finger)
    fingers = [np.stack([np.zeros_like(z), np.full_like(z, s * width_m / 2), z], 1)
               for s in (-1.0, 1.0)]
    y = np.linspace(-width_m / 2, width_m / 2, per_finger)
    palm = np.stack([np.zeros_like(y), y, np.full_like(y, PALM_Z_M)], 1)
    return np.concatenate(fingers + [palm])
