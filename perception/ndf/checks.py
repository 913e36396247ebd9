"""Input checks at the NDF library's public boundary (messages say what to fix)."""
from __future__ import annotations

import numpy as np

from katazuke.errors import InputError

__all__ = ["check_cloud"]


def check_cloud(points: object, name: str, min_points: int = 1) -> np.ndarray:
    """``(N, 3)`` float64 copy of a point array, or :class:`InputError` saying what to fix.

    Raises:
        InputError: not an ``(N, 3)`` numeric array, non-finite entries, or fewer than
            ``min_points`` points.
    """
    try:
        P = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be an (N, 3) array of points in metres") from exc
    if P.ndim != 2 or P.shape[1] != 3:
        raise InputError(f"{name} must be an (N, 3) array of points in metres; got shape "
                         f"{P.shape}")
    if not np.all(np.isfinite(P)):
        bad = int(np.sum(~np.all(np.isfinite(P), axis=1)))
        raise InputError(f"{name} has {bad} non-finite point(s); drop NaN/inf depth returns "
                         "first")
    if len(P) < min_points:
        raise InputError(f"{name} has {len(P)} point(s); at least {min_points} are needed "
                         "(segment the object from a closer or larger view)")
    return P
