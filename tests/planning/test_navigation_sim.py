"""Navigation on the simulated room: a costmap from head-camera depth while the base turns,
then paths and base poses checked against the ground-truth furniture and containers."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.planning.navigation import CostMap, GlobalPlanner, choose_base_pose
from katazuke.sim.env import EnvConfig, TidyEnv
from katazuke.sim.scene import footprint, polys_overlap

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def mapped_room():
    env = TidyEnv(EnvConfig(profile="none", n_objects=(3, 3), render_observation=False))
    try:
        env.reset(seed=1)
        cm = CostMap()
        x, y, yaw0 = env.base_pose()
        for k in range(8):                        # turn on the spot: a full view of the room
            env.set_base_pose(x, y, yaw0 + k * 2 * np.pi / 8)
            frame = env.render_head()
            cm.update(frame.depth, frame.K, frame.T_world_cam)
            cm.mark_clear((x, y), 0.45)           # the robot's own body
        env.set_base_pose(x, y, yaw0)
        furniture = [(n, footprint(0.5 * (lo[:2] + hi[:2]), 0.0, hi[:2] - lo[:2]))
                     for n, lo, hi in env.room_boxes() if n != "wall"]
        for c in env.containers:
            T = c.T_world_container
            furniture.append((c.id, footprint(T[:2, 3], np.arctan2(T[1, 0], T[0, 0]),
                                              c.extent[:2])))
        yield env, cm, furniture
    finally:
        env.close()


def inside(cm: CostMap, poly: np.ndarray) -> np.ndarray:
    lo, hi = poly.min(0), poly.max(0)
    xs, ys = cm.cell_centres()
    return ((xs >= lo[0]) & (xs <= hi[0]))[None, :] & ((ys >= lo[1]) & (ys <= hi[1]))[:, None]


def test_furniture_and_containers_block(mapped_room):
    env, cm, furniture = mapped_room
    occ, lethal = cm.occupied(), cm.lethal()
    for name, poly in furniture:
        m = inside(cm, poly)
        assert lethal[m].all(), name                        # the base centre never gets in
        assert occ[m].mean() > (0.6 if name in ("table", "shelf") else 0.25), name
    # the floor around the robot's start is known free
    x, y, _ = env.base_pose()
    xs, ys = cm.cell_centres()
    ring = np.hypot(xs[None, :] - x, ys[:, None] - y)
    assert (cm.state()[(ring > 0.8) & (ring < 1.2)] == 0).mean() > 0.8


@pytest.mark.parametrize("goal", [(-1.6, 1.4, 0.0), (1.5, -1.7, 0.0), (2.0, 1.0, 1.57)])
def test_paths_keep_the_footprint_off_furniture(mapped_room, goal):
    env, cm, furniture = mapped_room
    path = GlobalPlanner().plan(cm, env.base_pose(), goal)
    np.testing.assert_allclose(path.poses[-1], goal, atol=1e-9)
    for x, y, yaw in path.poses:
        base = footprint((x, y), yaw, (0.6, 0.5))
        for name, poly in furniture:
            assert not polys_overlap(base, poly), (name, x, y, yaw)


def test_base_pose_beside_the_table(mapped_room):
    env, cm, furniture = mapped_room
    table = dict(furniture)["table"]
    target = (0.4, 1.1)                                     # a point on the table top
    poses = choose_base_pose(target, cm, env.base_pose())
    for bp in poses[:5]:
        base = footprint(bp.pose[:2], bp.pose[2], (0.6, 0.5))
        assert not any(polys_overlap(base, poly) for _, poly in furniture)
    path = GlobalPlanner().plan(cm, env.base_pose(), poses[0].pose)
    for x, y, yaw in path.poses:
        assert not polys_overlap(footprint((x, y), yaw, (0.6, 0.5)), table)
