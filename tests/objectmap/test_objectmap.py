"""Object map: merge duplicates, keep category distribution, forget what is gone, where_is."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.errors import ConfigError, InputError
from katazuke.perception.objectmap import (CATEGORY_NAMES, CameraView, ObjectMap, ObjectMapConfig,
                                           Observation3D)


def _scores(cat: str, p: float = 0.9) -> np.ndarray:
    s = np.full(len(CATEGORY_NAMES), (1 - p) / (len(CATEGORY_NAMES) - 1))
    s[CATEGORY_NAMES.index(cat)] = p
    return s


def _obs(pos, cat="kitchenware", o=0.9):
    return Observation3D(np.asarray(pos, float), o, _scores(cat), np.array([0.08, 0.08, 0.1]))


K = np.array([[250.0, 0, 160], [0, 250.0, 120], [0, 0, 1]])


def _view_looking_at_x(depth_value=np.inf) -> CameraView:
    """Camera at the origin looking along +x of the map (optical z = map x)."""
    T = np.eye(4)
    T[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)  # columns: cam x,y,z in map
    return CameraView(T, K, np.full((240, 320), depth_value, np.float32))


def test_noisy_observations_fuse_into_one_instance():
    rng = np.random.default_rng(0)
    m = ObjectMap()
    truth = np.array([2.0, 0.5, 0.6])
    for k in range(15):
        m.update(float(k), [_obs(truth + rng.normal(0, 0.03, 3))])
    assert len(m.instances) == 1
    inst = m.instances[0]
    assert np.linalg.norm(inst.position - truth) < 0.05
    assert inst.observations == 15 and inst.category == "kitchenware"
    assert 0.9 < inst.confidence <= 1.0
    assert inst.first_seen == 0.0 and inst.last_seen == 14.0


def test_outlier_depth_does_not_drag_position():
    m = ObjectMap(ObjectMapConfig(gate_distance=5.0))
    for k in range(10):
        m.update(float(k), [_obs([1.0, 1.0, 0.5])])
    m.update(10.0, [_obs([1.0, 1.0, 3.0])])  # one bad depth reading
    assert np.linalg.norm(m.instances[0].position - [1.0, 1.0, 0.5]) < 1e-9


def test_separate_objects_and_incompatible_categories_stay_apart():
    m = ObjectMap()
    for k in range(3):
        m.update(float(k), [_obs([0, 0, 0.5], "toy"), _obs([1.0, 0, 0.5], "toy"),
                            _obs([0.05, 0.0, 0.5], "bottle")])
    assert len(m.instances) == 3
    # 'unknown' detections are compatible with anything nearby.
    m.update(5.0, [_obs([1.02, 0, 0.5], "unknown")])
    assert len(m.instances) == 3


def test_duplicates_merge():
    m = ObjectMap(ObjectMapConfig(gate_distance=0.05, merge_distance=0.15))
    # Two tracks born 10 cm apart (outside the gate) converge on one object: merged.
    m.update(0.0, [_obs([0, 0, 0.5]), _obs([0.1, 0, 0.5])])
    m.update(1.0, [_obs([0.0, 0, 0.5])])
    assert len(m.all_instances) == 1
    assert m.all_instances[0].observations == 3


def test_category_distribution_is_running():
    m = ObjectMap(ObjectMapConfig(min_category_compat=0.0))
    for k in range(3):
        m.update(float(k), [_obs([0, 0, 0.5], "toy", 0.9)])
    m.update(3.0, [Observation3D(np.array([0, 0, 0.5]), 0.9, _scores("soft", 0.6))])
    dist = m.instances[0].category_distribution
    assert dist.sum() == pytest.approx(1.0)
    assert m.instances[0].category == "toy" and dist[CATEGORY_NAMES.index("soft")] > 0.1


def test_forget_after_k_views_that_should_see_it():
    cfg = ObjectMapConfig(forget_after_misses=3)
    m = ObjectMap(cfg)
    p = [2.0, 0.0, 0.0]  # straight ahead of the camera, 2 m
    for k in range(3):
        m.update(float(k), [_obs(p)])
    assert len(m.instances) == 1
    free_view = _view_looking_at_x(np.inf)  # nothing in front: the object would be seen
    m.update(3.0, [], free_view)
    m.update(4.0, [], free_view)
    assert len(m.instances) == 1 and m.instances[0].confidence < 0.9
    m.update(5.0, [], free_view)
    assert len(m.instances) == 0


def test_self_filter_drops_the_robots_own_parts_and_spares_what_they_hide():
    """Detections inside the robot's body spheres (arm, held object) make no instance; an
    instance inside them is not charged a miss although the view 'should' show it."""
    m = ObjectMap(ObjectMapConfig(forget_after_misses=2))
    gripper = np.array([[1.0, 0.0, 0.0, 0.15]])
    for k in range(4):
        dropped = m.update(float(k), [_obs([1.05, 0.0, 0.0]), _obs([2.0, 0.5, 0.0])],
                           exclude=gripper)
        assert dropped == 1
    assert [tuple(np.round(i.position, 2)) for i in m.instances] == [(2.0, 0.5, 0.0)]
    # an object the gripper now covers: views without its detection do not forget it ...
    free_view = _view_looking_at_x(np.inf)
    at_hand = np.array([[2.0, 0.5, 0.0, 0.15]])
    for k in range(4, 8):
        m.update(float(k), [], free_view, exclude=at_hand)
    assert len(m.instances) == 1
    # ... without the filter two such views do
    m.update(8.0, [], free_view)
    m.update(9.0, [], free_view)
    assert not m.instances
    with pytest.raises(InputError, match="exclude spheres"):
        m.update(10.0, [], exclude=np.array([[np.nan, 0, 0, 0.1]]))


def test_not_forgotten_when_occluded_out_of_view_or_no_depth():
    m = ObjectMap()
    for k in range(3):
        m.update(float(k), [_obs([2.0, 0.0, 0.0]), _obs([-2.0, 0.0, 0.0], "toy")])
    occluded = _view_looking_at_x(1.0)     # a wall at 1 m hides the object at 2 m
    no_depth = _view_looking_at_x(0.0)     # no valid depth: no evidence
    for k in range(10):
        m.update(10.0 + k, [], occluded)
        m.update(30.0 + k, [], no_depth)
    assert len(m.instances) == 2  # neither the hidden one nor the one behind the camera is dropped
    # A detection resets the miss counter.
    free = _view_looking_at_x(np.inf)
    m.update(50.0, [], free)
    m.update(51.0, [], free)
    m.update(52.0, [_obs([2.0, 0, 0])], free)
    m.update(53.0, [], free)
    assert len(m.instances) == 2


def test_tentative_instances_are_hidden_until_confirmed():
    m = ObjectMap(ObjectMapConfig(confirm_observations=2))
    m.update(0.0, [_obs([0, 0, 0])])
    assert m.instances == [] and len(m.all_instances) == 1
    m.update(1.0, [_obs([0, 0, 0])])
    assert len(m.instances) == 1


def test_destination_rules():
    m = ObjectMap(ObjectMapConfig(destinations=("toy=bin_red", "bottle=bin_blue")))
    assert m.destination("toy") == "bin_red" and m.destination("soft") == ""
    with pytest.raises(ConfigError, match="unknown category"):
        ObjectMap(ObjectMapConfig(destinations=("rock=bin_red",)))
    with pytest.raises(ConfigError, match="name=x,y,z"):
        ObjectMap(ObjectMapConfig(landmarks=("table=1,2",)))


def test_where_is_answers():
    cfg = ObjectMapConfig(landmarks=("table=1.0,1.0,0.275,1.2,0.7,0.55",
                                     "red bin=2.0,1.0,0.15,0.4,0.3,0.3"))
    m = ObjectMap(cfg)
    for k in range(3):
        m.update(float(k), [_obs([1.3, 1.1, 0.6], "kitchenware"), _obs([-1.0, -2.0, 0.05], "toy")])
    r = m.where_is("Where is the mug?")
    assert r.found and r.matches[0].category == "kitchenware"
    assert r.answer.startswith("The ") and "on the table" in r.answer and "near the red bin" in r.answer
    r2 = m.where_is("toy")
    assert r2.found and "on the floor" in r2.answer and "x -1.00 m" in r2.answer
    assert not m.where_is("bottle").found
    assert "not seen" in m.where_is("bottle").answer
    assert not m.where_is("spaceship").found
    assert len(m.where_is("anything").matches) == 2
    with pytest.raises(InputError):
        m.where_is("  ")


def test_bad_detection_input():
    m = ObjectMap()
    with pytest.raises(InputError, match="finite"):
        m.update(0.0, [_obs([np.nan, 0, 0])])
    with pytest.raises(InputError, match="category_scores"):
        m.update(0.0, [Observation3D(np.zeros(3), 0.9, np.ones(3) / 3)])
