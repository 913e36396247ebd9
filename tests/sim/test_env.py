"""TidyEnv: determinism, placement, rendering conventions and action validation."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.sim import Action, EnvConfig, SimError, TidyEnv
from katazuke.geometry import look_at
from katazuke.sim.objects import CATEGORIES, KINDS, kinds_for_profile

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def env():
    e = TidyEnv(EnvConfig(profile="train", render_observation=False))
    yield e
    e.close()


def _snapshot(e: TidyEnv):
    f = e.render_head()
    poses = np.stack([o.T_world_obj for o in e.ground_truth_objects()])
    return f, poses


def test_same_seed_same_episode_and_envs_do_not_interfere(env):
    other = TidyEnv(EnvConfig(profile="train", render_observation=False))
    try:
        env.reset(seed=5)
        other.reset(seed=5)
        for _ in range(3):  # interleaved stepping of two envs in one process
            env.step(Action(base_twist=(0.2, 0.0, 0.3), gripper_width=0.02))
            other.step(Action(base_twist=(0.2, 0.0, 0.3), gripper_width=0.02))
        fa, pa = _snapshot(env)
        fb, pb = _snapshot(other)
        assert np.array_equal(fa.rgb, fb.rgb)
        assert np.array_equal(fa.depth, fb.depth)
        assert np.array_equal(fa.segmentation, fb.segmentation)
        assert np.array_equal(pa, pb)
        assert env.time == pytest.approx(3 / 30.0)
        other.reset(seed=6)
        fc, pc = _snapshot(other)
        assert pc.shape != pa.shape or not np.allclose(pc, pa)
        assert np.mean(fc.rgb != fa.rgb) > 0.3
    finally:
        other.close()


def test_object_count_and_no_interpenetration(env):
    for seed in (0, 1):
        env.reset(seed=seed)
        ids = [o.id for o in env.ground_truth_objects()]
        assert 10 <= len(ids) <= 40
        c = env.client
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                pts = c.getClosestPoints(a, b, 0.0)
                assert all(p[8] > -0.005 for p in pts), (a, b, [p[8] for p in pts])
            # nor with the furniture, the containers or the robot
            for body in [env.room.table, env.room.shelf, *env.room.container_bodies,
                         env.robot_uid]:
                pts = c.getClosestPoints(a, body, 0.0)
                assert all(p[8] > -0.005 for p in pts), (a, body, [p[8] for p in pts])
        # all objects rest inside the room, above the floor
        for o in env.ground_truth_objects():
            x, y, z = o.T_world_obj[:3, 3]
            assert abs(x) < 2.5 and abs(y) < 2.5 and z > -0.01


def test_depth_is_metric_z_of_a_known_plane():
    e = TidyEnv(EnvConfig(profile="none", include_robot=False, n_objects=(0, 0)))
    try:
        e.reset(seed=0)
        K = e.head_intrinsics()
        # straight down from 1.5 m: the floor is a fronto-parallel plane at z = 1.5 m
        f = e.render(look_at((0.3, -0.2, 1.5), (0.3, -0.2, 0.0)), K)
        assert f.depth.dtype == np.float32 and f.rgb.dtype == np.uint8
        assert f.segmentation.dtype == np.int32
        assert np.allclose(f.depth, 1.5, atol=0.01)
        # looking at the +y wall (inner face at y = 2.5) from y = 1.0, horizontally
        f = e.render(look_at((0.0, 1.0, 1.0), (0.0, 3.0, 1.0)), K)
        assert np.allclose(f.depth[60:180, 80:240], 1.5, atol=0.01)
        # nothing at all: inf
        f = e.render(look_at((0.0, 0.0, 1.0), (0.0, 0.0, 3.0)), K)
        assert np.isinf(f.depth).mean() > 0.9
    finally:
        e.close()


def test_segmentation_matches_ground_truth_and_projection(env):
    env.reset(seed=2)
    gt = {o.id: o for o in env.ground_truth_objects()}
    target = next(o for o in gt.values() if o.T_world_obj[2, 3] > 0.5)  # on the table
    centre = target.T_world_obj[:3, 3]
    T = look_at(centre + np.array([0.0, -0.6, 0.5]), centre)
    f = env.render(T, env.head_intrinsics())
    ids = set(np.unique(f.segmentation).tolist())
    assert ids <= set(gt) | {-1}
    assert target.id in ids
    pc = np.linalg.inv(f.T_world_cam) @ np.append(centre, 1.0)
    u, v = (f.K @ pc[:3])[:2] / pc[2]
    ys, xs = np.nonzero(f.segmentation == target.id)
    assert abs(xs.mean() - u) < 6 and abs(ys.mean() - v) < 6
    # depth at the object's pixels matches its distance along the optical axis
    assert abs(np.median(f.depth[ys, xs]) - pc[2]) < 0.6 * max(target.extent)


@pytest.mark.parametrize("action, field", [
    (Action(base_twist=(np.nan, 0.0, 0.0)), "base_twist"),
    (Action(base_twist=(5.0, 0.0, 0.0)), "base_twist"),
    (Action(base_twist=(0.0, 0.0)), "base_twist"),
    (Action(arm_positions=np.zeros(6)), "arm_positions"),
    (Action(arm_positions=np.full(7, 4.0)), "arm_positions"),
    (Action(gripper_width=0.2), "gripper_width"),
    (Action(gripper_width=float("nan")), "gripper_width"),
    (Action(head_pan_tilt=(0.0, 3.0)), "head_pan_tilt"),
])
def test_invalid_actions_name_the_field(env, action, field):
    if env.room is None:
        env.reset(seed=0)
    with pytest.raises(SimError, match=field):
        env.step(action)


def test_base_follows_twist_and_joint_state_shapes(env):
    env.reset(seed=3)
    x0, y0, yaw0 = env.base_pose()
    for _ in range(45):  # 1.5 s at 0.3 m/s forward (1 m/s^2 acceleration limit)
        env.step(Action(base_twist=(0.3, 0.0, 0.0)))
    x1, y1, yaw1 = env.base_pose()
    moved = np.hypot(x1 - x0, y1 - y0)
    assert 0.3 < moved < 0.45
    # forward is along the heading
    assert np.cos(np.arctan2(y1 - y0, x1 - x0) - yaw0) > 0.99
    odo = env.odometry()
    assert np.hypot(odo[0] - x1, odo[1] - y1) < 0.05
    q, dq, tau = env.joint_state()
    assert len(env.joint_names) == 11 == q.shape[0] == dq.shape[0] == tau.shape[0]
    assert env.joint_names[0] == "panda_joint1"


def test_held_out_kinds_only_in_test_profile():
    held = {k.name for k in KINDS if k.held_out}
    assert len(held) >= 5 and len({k.category for k in KINDS if k.held_out}) >= 5
    assert len(KINDS) >= 30 and {k.category for k in KINDS} == set(CATEGORIES)
    assert not held & {k.name for k in kinds_for_profile(False)}
    seen = {"train": set(), "test": set()}
    for profile in ("train", "test"):
        e = TidyEnv(EnvConfig(profile=profile, render_observation=False, n_objects=(40, 40),
                              include_robot=False, settle_steps=0))
        try:
            for seed in (0, 1):
                e.reset(seed=seed)
                seen[profile] |= {o.kind for o in e.ground_truth_objects()}
        finally:
            e.close()
    assert not seen["train"] & held
    assert seen["test"] & held


def test_containers_and_ceiling_cameras():
    e = TidyEnv(EnvConfig(profile="none", ceiling_cameras=True, n_objects=(10, 10),
                          render_observation=False))
    try:
        e.reset(seed=0)
        assert len(e.containers) >= 4
        assert len({c.colour for c in e.containers}) == len(e.containers)
        f = e.render_camera("ceiling_2")
        assert f.rgb.shape == (240, 320, 3) and np.isfinite(f.depth).mean() > 0.95
        with pytest.raises(SimError, match="ceiling_9"):
            e.render_camera("ceiling_9")
        assert all(o.container in {c.id for c in e.containers}
                   for o in e.ground_truth_objects())
    finally:
        e.close()


def test_principal_point_shifts_the_image(env):
    """Moving (cx, cy) by whole pixels translates the rendered image by the same amount."""
    env.reset(seed=2)
    T = look_at((1.2, -0.4, 1.4), (0.4, 1.2, 0.5))
    K0 = np.array([[260.0, 0, 160.0], [0, 250.0, 120.0], [0, 0, 1]])
    K1 = K0.copy()
    K1[0, 2] += 20
    K1[1, 2] -= 10
    a = env.render(T, K0, effects=False).depth
    b = env.render(T, K1, effects=False).depth
    inner_a = a[40:200, 40:260]
    inner_b = b[30:190, 60:280]  # pixel (u, v) in a shows up at (u + 20, v - 10) in b
    ok = np.isfinite(inner_a) & np.isfinite(inner_b)
    assert np.median(np.abs(inner_a[ok] - inner_b[ok])) < 1e-3


def test_head_camera_frame_follows_pan_tilt(env):
    env.reset(seed=0)
    yaw = env.base_pose()[2]
    for _ in range(40):
        env.step(Action(head_pan_tilt=(0.0, 0.0)))
    T = env.head_camera_pose()
    fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    assert T[:3, 2] @ fwd > 0.99            # optical z along the heading
    assert T[:3, 1] @ [0, 0, -1] > 0.99     # optical y points down
    for _ in range(40):
        env.step(Action(head_pan_tilt=(0.5, 0.4)))
    T = env.head_camera_pose()
    z = T[:3, 2]
    assert np.arctan2(z[1], z[0]) - yaw == pytest.approx(0.5, abs=0.05)   # pan left (+)
    assert np.arcsin(-z[2]) == pytest.approx(0.4, abs=0.05)              # tilt down (+)
