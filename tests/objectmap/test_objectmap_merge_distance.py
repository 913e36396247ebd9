"""The merge rule against its definition: two compatible instances merge when their Euclidean
distance (metres, not its square) is at most ``merge_distance``."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.perception.objectmap import CATEGORY_NAMES, ObjectMap, ObjectMapConfig, Observation3D


def _obs(pos) -> Observation3D:
    s = np.full(len(CATEGORY_NAMES), 0.1 / (len(CATEGORY_NAMES) - 1))
    s[CATEGORY_NAMES.index("toy")] = 0.9
    return Observation3D(np.asarray(pos, float), 0.9, s, np.array([0.05, 0.05, 0.05]))


@pytest.mark.parametrize("merge_distance", [0.15, 0.3])
@pytest.mark.parametrize("factor,merged", [(0.9, True), (1.1, False)])
def test_merge_distance_is_a_distance_in_metres(merge_distance, factor, merged):
    """Two same-category objects seen in one frame, ``factor * merge_distance`` apart."""
    d = factor * merge_distance
    m = ObjectMap(ObjectMapConfig(merge_distance=merge_distance, confirm_observations=1))
    m.update(0.0, [_obs([1.0, 0.0, 0.5]), _obs([1.0 + d, 0.0, 0.5])])
    assert len(m.all_instances) == (1 if merged else 2)


def test_neighbours_0_3_m_apart_stay_two_objects_over_many_frames():
    """Two toys 0.3 m apart (beyond the default 0.25 m gate and 0.15 m merge distance), seen
    for 10 frames with 2 cm noise, are two instances at their own positions."""
    rng = np.random.default_rng(1)
    a, b = np.array([1.5, 0.2, 0.4]), np.array([1.5, 0.5, 0.4])
    m = ObjectMap()
    for k in range(10):
        m.update(float(k), [_obs(a + rng.normal(0, 0.02, 3)), _obs(b + rng.normal(0, 0.02, 3))])
    pos = sorted((i.position for i in m.instances), key=lambda p: p[1])
    assert len(pos) == 2
    np.testing.assert_allclose(pos[0], a, atol=0.04)
    np.testing.assert_allclose(pos[1], b, atol=0.04)
