"""Shared fixtures of the rotation-averaging tests.

- every test runs with one BLAS thread (multi-threaded OpenBLAS spin-waits on the shared
  2-core machine: 45x slower);
- ``aligned_error_deg(R, R_ref)``: per-node angle error up to the global gauge.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from katazuke.perception.rotavg import angle_between, project_to_so3, single_threaded_blas


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Limit BLAS/OpenMP pools to one thread for the test."""
    with single_threaded_blas():
        yield


def _aligned_error_deg(R: np.ndarray, R_ref: np.ndarray) -> np.ndarray:
    """Per-node angle ``(n,)`` [deg] between ``R`` and ``R_ref`` ``(n, 3, 3)`` after the best
    global left rotation (gauge) alignment of ``R`` onto ``R_ref``."""
    G = project_to_so3(np.sum(R_ref @ np.swapaxes(R, 1, 2), axis=0)[None])[0]
    return np.degrees(angle_between(G[None] @ R, R_ref))


@pytest.fixture
def aligned_error_deg() -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The gauge-aligned per-node error function (see :func:`_aligned_error_deg`)."""
    return _aligned_error_deg
