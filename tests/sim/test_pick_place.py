"""Scripted pick-and-place: grasps hold by friction and objects land in their container."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.geometry import se2_to_matrix
from katazuke.sim.pick_place import grasp_pose, make_eval_env, pick_and_place

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def env():
    e = make_eval_env()
    yield e
    e.close()


@pytest.mark.parametrize("kind, seed", [("toy_block", 0), ("bottle", 1), ("duck", 2)])
def test_pick_and_place_succeeds(env, kind, seed):
    r = pick_and_place(env, kind, seed)
    assert r.lifted and r.success, r
    # the object rests inside its container and nothing holds it: the hand is open
    assert env.joint_state()[0][7:9].sum() > 0.06


def test_grasp_pose_is_top_down_across_the_narrow_side():
    rng = np.random.default_rng(0)
    for _ in range(20):
        yaw = rng.uniform(-np.pi, np.pi)
        ext = rng.uniform(0.02, 0.15, 3)
        T_obj = se2_to_matrix(0.3, -0.2, yaw, z=ext[2] / 2)
        T, width = grasp_pose(T_obj, ext, 0.0)
        assert np.allclose(T[:3, :3].T @ T[:3, :3], np.eye(3), atol=1e-9)
        assert np.allclose(T[:3, 2], [0, 0, -1])          # approach from above
        assert width == pytest.approx(min(ext[0], ext[1]))
        narrow = T_obj[:3, 0] if ext[0] <= ext[1] else T_obj[:3, 1]
        assert abs(T[:3, 1] @ narrow) == pytest.approx(1.0)  # fingers close across it
        assert 0.0 < T[2, 3] <= ext[2]                    # within the object's height
        assert np.allclose(T[:2, 3], T_obj[:2, 3])


def test_release_without_grasp_leaves_object(env):
    """No welding: an object the hand never closed on stays on the floor."""
    env.reset(seed=0, kinds=["can"], n_objects=1)
    z0 = env.ground_truth_objects()[0].T_world_obj[2, 3]
    from katazuke.sim import Action

    for _ in range(30):
        env.step(Action(gripper_width=0.0))
    assert env.ground_truth_objects()[0].T_world_obj[2, 3] == pytest.approx(z0, abs=0.01)
