"""The robot's own body as spheres in the map frame: the self filter of the navigator's cost
map and of the object map.

The head camera sees the arm, the gripper and what the gripper holds. Depth returns and
detections inside these spheres are the robot itself: the cost map must not mark them as
obstacles, the object map must not make objects of them (nor count a miss for an object
the arm hides).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["DEFAULT_ARM_FRAMES", "body_spheres"]

#: the Panda's tf frames in chain order, base to grasp point.
DEFAULT_ARM_FRAMES = ("panda_link1", "panda_link2", "panda_link3", "panda_link4", "panda_link5",
                      "panda_link6", "panda_link7", "panda_hand", "panda_grasptarget")


def body_spheres(lookup: Callable[[str], np.ndarray | None], frames: Sequence[str],
                 radius_m: float, held_radius_m: float = 0.0, base_frame: str = "",
                 base_radius_m: float = 0.0, base_heights_m: Sequence[float] = (0.0,)
                 ) -> tuple[np.ndarray | None, list[str]]:
    """Spheres around the robot's frames.

    Args:
        lookup: frame -> ``(4, 4)`` pose in the map frame, or None when tf does not know it.
        frames: the arm's frames in chain order; a sphere of ``radius_m`` at each and at the
            midpoint of two consecutive ones; the last one is the grasp point and also gets
            a sphere of ``held_radius_m`` (a held object).
        radius_m: radius around each arm frame, m.
        held_radius_m: radius around the grasp point, m (0: none beyond ``radius_m``).
        base_frame: the base's frame ('' = none), with spheres of ``base_radius_m`` stacked
            above its origin at ``base_heights_m`` (the base, the mast, the folded arm).
        base_radius_m: radius of those spheres, m.
        base_heights_m: heights of their centres above the base frame, m.

    Returns:
        ``((M, 4) spheres x, y, z, r`` in the map frame or None when no frame is known,
        the frames tf did not know).
    """
    centres, missing = [], []
    for f in frames:
        T = lookup(f)
        if T is None:
            missing.append(f)
        else:
            centres.append(np.asarray(T, float)[:3, 3])
    rows = [(*c, radius_m) for c in centres]
    rows += [(*(0.5 * (a + b)), radius_m) for a, b in zip(centres, centres[1:])]
    if frames and frames[-1] not in missing and held_radius_m > radius_m:
        rows.append((*centres[-1], held_radius_m))
    if base_frame and base_radius_m > 0:
        T = lookup(base_frame)
        if T is None:
            missing.append(base_frame)
        else:
            T = np.asarray(T, float)
            for h in base_heights_m:
                rows.append((*(T[:3, 3] + h * T[:3, 2]), base_radius_m))
    if not rows:
        return None, missing
    return np.asarray(rows, float), missing

