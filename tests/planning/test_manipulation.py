"""Manipulation library: Panda kinematics and IK, sphere collision model, joint-path planning,
time parameterisation, grasp approach and grasp verification.

The robot URDF is the one the simulator writes (``write_robot_urdf``); forward kinematics is
checked against PyBullet's link poses of the same file (a DIRECT client, fixed base), the
sphere model against the Panda's collision meshes. Seeded throughout.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from katazuke.errors import InputError, KatazukeError
from katazuke.planning.manipulation import (PANDA_SPHERES, ApproachConfig, ArmModel,
                                            CollisionChecker, CollisionConfig, GraspCheckConfig,
                                            IKConfig, IKError, MotionPlanner, Obstacles,
                                            PlannerConfig, PlanningError, TrajectoryConfig,
                                            approach_poses, cartesian_path, shortcut,
                                            solve_approach, time_parameterize, verify_grasp,
                                            voxel_downsample)

HOME = np.array([0.0, -1.7, 0.0, -3.0, 0.0, 1.5, 0.785])   # katazuke.sim.robot.ARM_HOME
READY = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785])  # katazuke.sim.pick_place.READY
TOP_DOWN = np.diag([1.0, -1.0, -1.0])                       # tip z pointing down


@pytest.fixture(scope="module")
def urdf(tmp_path_factory) -> str:
    import pybullet_data

    from katazuke.sim.robot import write_robot_urdf

    return write_robot_urdf(str(tmp_path_factory.mktemp("robot")), pybullet_data.getDataPath())


@pytest.fixture(scope="module")
def arm(urdf) -> ArmModel:
    return ArmModel(urdf)


@pytest.fixture(scope="module")
def base_boxes(arm):
    return [(lo, hi) for _, lo, hi in arm.static_collision_boxes()]


@pytest.fixture(scope="module")
def bullet(urdf):
    """A PyBullet DIRECT client with the robot loaded on a fixed base: (client, uid, links, joints)."""
    import pybullet as p
    from pybullet_utils.bullet_client import BulletClient

    c = BulletClient(connection_mode=p.DIRECT)
    uid = c.loadURDF(urdf, useFixedBase=True)
    links, joints = {}, {}
    for j in range(c.getNumJoints(uid)):
        info = c.getJointInfo(uid, j)
        links[info[12].decode()] = j
        joints[info[1].decode()] = j
    yield c, uid, links, joints
    c.disconnect()


def _top_down(xyz, yaw=0.0):
    T = np.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    T[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ TOP_DOWN
    T[:3, 3] = xyz
    return T


def _rot_err(Ra, Rb):
    return float(np.arccos(np.clip((np.trace(Ra.T @ Rb) - 1) / 2, -1, 1)))


# ----------------------------------------------------------------------------- model
def test_model_reads_urdf_names_and_limits(arm, urdf):
    assert arm.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))
    assert arm.n == 7
    # the Panda's URDF limits (franka_panda/panda.urdf)
    np.testing.assert_allclose(arm.lower[[1, 3, 5]], [-1.8326, -3.1416, -0.0873])
    np.testing.assert_allclose(arm.upper[[1, 3, 5]], [1.8326, 0.0, 3.8223])
    np.testing.assert_allclose(arm.velocity_limits, [2.175] * 4 + [2.61] * 3)
    with open(urdf, encoding="utf-8") as fh:
        from_text = ArmModel(fh.read())
    np.testing.assert_allclose(from_text.fk(READY), arm.fk(READY), atol=1e-12)
    (name, lo, hi), = arm.static_collision_boxes()
    assert name == "base_link" and lo[2] == pytest.approx(0.06) and hi[2] == pytest.approx(0.36)


def test_model_rejects_bad_input(arm, urdf):
    with pytest.raises(InputError, match="no frame"):
        ArmModel(urdf, tip_frame="nope")
    with pytest.raises(InputError, match="not in the URDF"):
        ArmModel(urdf, arm_joints=("panda_joint1", "elbow"))
    with pytest.raises(InputError, match="cannot read"):
        ArmModel("/nonexistent/robot.urdf")
    with pytest.raises(InputError, match="7 finite"):
        arm.fk(np.zeros(6))
    with pytest.raises(InputError, match="rotation"):
        arm.ik(np.diag([1.0, 1.0, -1.0, 1.0]), READY)


def test_fk_matches_pybullet_link_poses(arm, bullet):
    """T_base_link from Pinocchio equals PyBullet's URDF link frames to < 1e-4 m / rad, with
    the base joints (virtual x, y, yaw) anywhere: poses in base_link do not depend on them."""
    c, uid, links, joints = bullet
    rng = np.random.default_rng(0)
    names = ["panda_link2", "panda_link4", "panda_link7", "panda_hand", "panda_grasptarget"]
    worst_p = worst_r = 0.0
    for _ in range(25):
        q = arm.random_configuration(rng)
        base = rng.uniform([-2, -2, -np.pi], [2, 2, np.pi])
        for jn, v in zip(("base_x_joint", "base_y_joint", "base_yaw_joint"), base):
            c.resetJointState(uid, joints[jn], float(v))
        for jn, v in zip(arm.joint_names, q):
            c.resetJointState(uid, joints[jn], float(v))
        st = c.getLinkStates(uid, [links["base_link"]] + [links[n] for n in names],
                             computeForwardKinematics=1)
        T_world = []
        for s in st:
            T = np.eye(4)
            T[:3, :3] = np.array(c.getMatrixFromQuaternion(s[5])).reshape(3, 3)
            T[:3, 3] = s[4]
            T_world.append(T)
        T_wb = T_world[0]
        ours = arm.frame_poses(q, names)
        for T_ref_w, T_est in zip(T_world[1:], ours):
            T_ref = np.linalg.inv(T_wb) @ T_ref_w
            worst_p = max(worst_p, float(np.linalg.norm(T_ref[:3, 3] - T_est[:3, 3])))
            worst_r = max(worst_r, _rot_err(T_ref[:3, :3], T_est[:3, :3]))
        np.testing.assert_allclose(arm.fk(q), ours[-1], atol=1e-12)
    assert worst_p < 1e-4 and worst_r < 1e-4, (worst_p, worst_r)


def test_jacobian_matches_finite_differences(arm):
    rng = np.random.default_rng(1)
    for _ in range(5):
        q = arm.random_configuration(rng)
        J = arm.jacobian(q)
        T0, eps = arm.fk(q), 1e-6
        Jn = np.zeros((6, 7))
        for i in range(7):
            dq = np.zeros(7)
            dq[i] = eps
            T1 = arm.fk(q + dq)
            Jn[:3, i] = (T1[:3, 3] - T0[:3, 3]) / eps
            dR = T1[:3, :3] @ T0[:3, :3].T
            Jn[3:, i] = np.array([dR[2, 1] - dR[1, 2], dR[0, 2] - dR[2, 0],
                                  dR[1, 0] - dR[0, 1]]) / (2 * eps)
        np.testing.assert_allclose(J, Jn, atol=1e-5)


def test_batched_joint_poses_match_pinocchio(arm):
    import pinocchio as pin

    Q = arm.random_configuration(np.random.default_rng(2), 6)
    J = arm.joint_poses(Q)
    for m, q in enumerate(Q):
        pin.forwardKinematics(arm.model, arm.data, q)
        for j in range(arm.model.njoints):
            np.testing.assert_allclose(J[m, j], arm.data.oMi[j].homogeneous, atol=1e-12)


# -------------------------------------------------------------------------------- IK
def test_ik_round_trip_from_random_seeds(arm):
    """Targets = FK of random configurations, seeds random: >= 95 % solved, each within the
    tolerances and the joint limits."""
    rng = np.random.default_rng(3)
    cfg = IKConfig()
    ok = 0
    for _ in range(100):
        T = arm.fk(arm.random_configuration(rng))
        try:
            sol = arm.solve_ik(T, arm.random_configuration(rng), cfg, rng=rng)
        except IKError:
            continue
        ok += 1
        assert arm.within_limits(sol.q)
        assert np.all(sol.q >= arm.lower + cfg.limit_margin_rad - 1e-12)
        T_got = arm.fk(sol.q)
        assert np.linalg.norm(T_got[:3, 3] - T[:3, 3]) <= cfg.position_tolerance_m
        assert _rot_err(T_got[:3, :3], T[:3, :3]) <= cfg.rotation_tolerance_rad + 1e-9
        assert sol.position_error_m <= cfg.position_tolerance_m
    assert ok >= 95


def test_ik_from_nearby_seed_stays_on_the_branch(arm):
    """Seeded 0.1 rad away, IK converges on the first attempt near the configuration."""
    rng = np.random.default_rng(4)
    for _ in range(20):
        q = np.clip(arm.random_configuration(rng), arm.lower + 0.2, arm.upper - 0.2)
        sol = arm.solve_ik(arm.fk(q), q + rng.uniform(-0.1, 0.1, 7), rng=rng)
        assert sol.attempts == 1
        assert np.max(np.abs(sol.q - q)) < 0.15


def test_ik_respects_limits_when_the_seed_is_outside(arm):
    q = READY.copy()
    seed = READY.copy()
    seed[3] = 0.5        # beyond panda_joint4's upper limit (0)
    sol = arm.solve_ik(arm.fk(q), seed)
    assert arm.within_limits(sol.q)


def test_unreachable_target_raises_ikerror(arm):
    T = _top_down([2.5, 0.0, 0.8])
    with pytest.raises(IKError, match="no joint configuration") as ei:
        arm.ik(T, READY, IKConfig(restarts=5), rng=np.random.default_rng(0))
    assert isinstance(ei.value, KatazukeError)
    assert ei.value.position_error_m > 1.0


def test_flip_yaw_accepts_the_half_turned_grasp(arm):
    """A target turned by pi about its z is reached without the wrist turning when
    flip_yaw is on; off, the wrist has to turn by about pi."""
    T = arm.fk(READY) @ np.diag([-1.0, -1.0, 1.0, 1.0])
    sol = arm.solve_ik(T, READY, flip_yaw=True)
    assert sol.flipped and np.max(np.abs(sol.q - READY)) < 1e-2
    plain = arm.solve_ik(T, READY, rng=np.random.default_rng(0))
    assert not plain.flipped
    assert np.linalg.norm(arm.fk(plain.q)[:3, 3] - T[:3, 3]) < 1e-3
    assert np.max(np.abs(plain.q - READY)) > 2.0


# ------------------------------------------------------------------------- collision
def _mesh_surface(name: str, n: int, rng) -> np.ndarray:
    import pybullet_data

    path = os.path.join(pybullet_data.getDataPath(), "franka_panda", "meshes", "collision",
                        name)
    v, f = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("v "):
                v.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("f "):
                f.append([int(x.split("/")[0]) - 1 for x in line.split()[1:4]])
    t = np.array(v)[np.array(f)]
    area = 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)
    i = rng.choice(len(t), n, p=area / area.sum())
    u = rng.random((n, 2))
    flip = u.sum(1) > 1
    u[flip] = 1 - u[flip]
    return t[i, 0] + u[:, :1] * (t[i, 1] - t[i, 0]) + u[:, 1:] * (t[i, 2] - t[i, 0])


def test_spheres_cover_the_collision_meshes(arm):
    """Every point sampled on links 1-7 and the hand's collision meshes lies within 5 mm of
    the link's spheres, and the table has 24 spheres."""
    rng = np.random.default_rng(5)
    assert sum(len(v) for v in PANDA_SPHERES.values()) == 24
    for i, link in enumerate(["link1", "link2", "link3", "link4", "link5", "link6", "link7",
                              "hand"]):
        pts = _mesh_surface(f"{link}.obj", 3000, rng)
        s = np.array(PANDA_SPHERES[f"panda_{link}"])
        d = np.linalg.norm(pts[:, None] - s[None, :, :3], axis=2) - s[None, :, 3]
        assert d.min(axis=1).max() < 0.005, link


def test_checker_flags_boxes_points_floor_and_self(arm, base_boxes):
    cc = CollisionChecker(arm, Obstacles(base_boxes))
    assert cc.is_collision_free(HOME) and cc.is_collision_free(READY)
    tip = arm.fk(READY)[:3, 3]
    box = (tip - 0.03, tip + 0.03)
    cc.set_obstacles(Obstacles(base_boxes + [box]))
    assert not cc.is_collision_free(READY)
    assert "panda_hand" in cc.colliding_links(READY)
    # the same obstacle as a point cloud, and the batch form
    rng = np.random.default_rng(6)
    cloud = tip + rng.uniform(-0.03, 0.03, (2000, 3))
    cc.set_obstacles(Obstacles(base_boxes, cloud, voxel_m=0.01))
    assert len(cc.obstacles.points) < 2000
    free = cc.is_collision_free(np.stack([READY, HOME, READY]))
    assert free.tolist() == [False, True, False]
    # the arm's own returns removed from the cloud: free again
    cc.set_obstacles(Obstacles(base_boxes, cc.points_outside_arm(cloud, READY)))
    assert cc.is_collision_free(READY)
    # the floor: the hand pushed down to z < 0
    low = arm.ik(_top_down([0.6, 0.0, 0.0]), READY)
    assert not CollisionChecker(arm, Obstacles(floor_z_m=0.0)).is_collision_free(low)
    assert CollisionChecker(arm, Obstacles(floor_z_m=None)).is_collision_free(low)
    # self collision: elbow folded, the hand in the shoulder (PyBullet's meshes interpenetrate
    # by 8 cm there), and outside the limits
    q_fold = np.array([0.0, 0.5, 0.0, -3.0, 0.0, 0.5, 0.0])
    assert CollisionChecker(arm, config=CollisionConfig(self_collision=False)).is_collision_free(q_fold)
    assert not CollisionChecker(arm).is_collision_free(q_fold)
    assert not cc.is_collision_free(arm.upper + 0.1)
    with pytest.raises(InputError):
        cc.is_collision_free(np.full(7, np.nan))


def test_held_object_sphere(arm):
    plain = CollisionChecker(arm)
    held = CollisionChecker(arm, config=CollisionConfig(held_object_radius_m=0.05))
    assert len(held.spheres) == len(plain.spheres) + 1
    tip = arm.fk(READY)[:3, 3]
    # a thin slab 4 cm below the fingertips touches only the held object
    slab = (tip + [-0.2, -0.2, -0.05], tip + [0.2, 0.2, -0.045])
    plain.set_obstacles(Obstacles([slab]))
    held.set_obstacles(Obstacles([slab]))
    assert plain.is_collision_free(READY) and not held.is_collision_free(READY)


def test_voxel_downsample_keeps_one_point_per_voxel():
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 0.1, (5000, 3))
    p[0] = np.nan
    d = voxel_downsample(p, 0.05)
    assert len(d) == 8 and np.all(np.isfinite(d))


def test_interpolation_bounds_sphere_motion(arm):
    """Between consecutive interpolated configurations no sphere centre moves more than the
    resolution."""
    cc = CollisionChecker(arm)
    dense = cc.interpolate(np.stack([HOME, READY, arm.upper - 0.3]), 0.01)
    C = cc.sphere_centres(dense)
    assert np.max(np.linalg.norm(np.diff(C, axis=0), axis=2)) <= 0.01


# --------------------------------------------------------------------------- planning
def test_wall_between_start_and_goal_is_planned_around(arm, base_boxes):
    """A box between two configurations: the straight path collides; the planned path does
    not, checked with unpadded spheres at 2 mm of sphere motion."""
    qa = np.array([-1.2, 0.3, 0.0, -1.8, 0.0, 2.1, 0.785])
    qb = np.array([1.2, 0.3, 0.0, -1.8, 0.0, 2.1, 0.785])
    wall = (np.array([0.35, -0.1, 0.3]), np.array([0.9, 0.1, 1.4]))
    obstacles = Obstacles(base_boxes + [wall])
    cc = CollisionChecker(arm, obstacles)
    assert cc.is_collision_free(qa) and cc.is_collision_free(qb)
    assert not cc.path_collision_free(np.stack([qa, qb]))
    res = MotionPlanner(cc).plan(qa, qb)
    assert res.planner == "rrtconnect"
    np.testing.assert_allclose(res.path[0], qa)
    np.testing.assert_allclose(res.path[-1], qb)
    fine = CollisionChecker(arm, obstacles, CollisionConfig(margin_m=0.0))
    assert fine.path_collision_free(res.path, resolution_m=0.002)
    assert all(arm.within_limits(q) for q in res.path)
    assert res.planning_time_s < 10.0
    with_ompl = MotionPlanner(cc, PlannerConfig(ompl_simplify=True)).plan(qa, qb)
    assert fine.path_collision_free(with_ompl.path, resolution_m=0.002)


def test_table_reach_around_a_container(arm, base_boxes):
    """From the folded home pose to a top-down pre-grasp over the table, around a bin."""
    table = (np.array([0.45, -0.6, 0.0]), np.array([1.1, 0.6, 0.45]))
    bin_ = (np.array([0.45, -0.05, 0.45]), np.array([0.75, 0.15, 0.70]))
    cc = CollisionChecker(arm, Obstacles(base_boxes + [table, bin_]))
    rng = np.random.default_rng(8)
    q_goal = arm.ik(_top_down([0.6, -0.3, 0.58]), READY, rng=rng)
    assert cc.is_collision_free(q_goal)
    q_start = arm.ik(_top_down([0.6, 0.4, 0.8]), READY, rng=rng)
    res = MotionPlanner(cc).plan(q_start, q_goal)
    assert cc.path_collision_free(res.path, resolution_m=0.003)
    # the direct shortcut when nothing is in the way
    cc.set_obstacles(Obstacles(base_boxes + [table]))
    assert MotionPlanner(cc).plan(HOME, q_goal).planner == "direct"


def test_planner_refuses_colliding_start_and_walled_goal(arm, base_boxes):
    tip = arm.fk(READY)[:3, 3]
    cc = CollisionChecker(arm, Obstacles(base_boxes + [(tip - 0.05, tip + 0.05)]))
    with pytest.raises(PlanningError, match="start configuration collides.*panda_hand"):
        MotionPlanner(cc).plan(READY, HOME)
    with pytest.raises(PlanningError, match="goal configuration collides"):
        MotionPlanner(cc).plan(HOME, READY)


def test_a_slightly_colliding_start_is_escaped_only_when_allowed(arm, base_boxes):
    """A start that collides (a small box at the gripper's edge) fails by default; with
    ``start_escape_rad`` the path steps out of it first and the rest is collision free."""
    tip = arm.fk(READY)[:3, 3]
    nick = (tip + np.array([0.0, 0.0, 0.07]), tip + np.array([0.04, 0.04, 0.1]))
    cc = CollisionChecker(arm, Obstacles(base_boxes + [nick]))
    assert not cc.is_collision_free(READY) and cc.is_collision_free(HOME)
    with pytest.raises(PlanningError, match="start configuration collides"):
        MotionPlanner(cc).plan(READY, HOME)
    res = MotionPlanner(cc, PlannerConfig(start_escape_rad=0.3)).plan(READY, HOME)
    assert res.planner.endswith("+escape")
    np.testing.assert_allclose(res.path[0], READY)
    np.testing.assert_allclose(res.path[-1], HOME)
    assert np.max(np.abs(res.path[1] - READY)) <= 0.3 + 1e-9
    assert cc.is_collision_free(res.path[1]) and cc.path_collision_free(res.path[1:])
    # walled in: no free configuration within the escape distance -> still refused
    box = (tip - 0.3, tip + 0.3)
    cc.set_obstacles(Obstacles(base_boxes + [box]))
    with pytest.raises(PlanningError, match="start configuration collides"):
        MotionPlanner(cc, PlannerConfig(start_escape_rad=0.05)).plan(READY, HOME)


def test_shortcut_removes_detours(arm):
    cc = CollisionChecker(arm)
    path = np.stack([READY + s * (HOME - READY) for s in np.linspace(0, 1, 9)])
    path[4, 0] += 0.5          # a detour nothing requires
    out = shortcut(path, cc)
    assert len(out) == 2
    np.testing.assert_allclose(out[[0, -1]], path[[0, -1]])


# ------------------------------------------------------------------------- trajectory
@pytest.mark.parametrize("junction_dt_s", [0.0, 0.1])
def test_trajectory_respects_limits_and_stays_on_the_path(arm, junction_dt_s):
    path = np.stack([HOME, READY, READY + 0.3, READY + 0.3 + 1e-14])
    cfg = TrajectoryConfig(velocity_scale=0.5, acceleration_rad_s2=3.0, acceleration_scale=0.5,
                           junction_dt_s=junction_dt_s)
    traj = time_parameterize(path, arm.velocity_limits, arm.joint_names, cfg)
    vmax = arm.velocity_limits * 0.5
    amax = 1.5
    assert traj.times[0] == 0 and np.all(np.diff(traj.times) > 0)
    assert len(traj.waypoints) == 3          # the repeated waypoint was dropped
    np.testing.assert_allclose(traj.positions[0], HOME)
    np.testing.assert_allclose(traj.positions[-1], READY + 0.3)
    np.testing.assert_allclose(traj.velocities[[0, -1]], 0.0, atol=1e-12)
    t = np.linspace(0, traj.duration_s, 4001)
    p, v, a = traj.sample(t)
    assert np.all(np.abs(v) <= vmax * (1 + 1e-9))
    assert np.all(np.abs(a) <= amax * (1 + 1e-9))
    # finite differences agree with the reported velocities (consistent profile)
    dt = t[1] - t[0]
    fd = np.diff(p, axis=0) / dt
    jumps = np.abs(np.diff(v, axis=0)) > 2 * amax * dt
    assert np.max(np.abs(fd - 0.5 * (v[1:] + v[:-1]))[~jumps.any(axis=1)]) < 2 * amax * dt
    # at each waypoint at its time; at rest there without junction speeds
    pw, vw, _ = traj.sample(traj.seg_times)
    np.testing.assert_allclose(pw, traj.waypoints, atol=1e-12)
    if junction_dt_s == 0:
        np.testing.assert_allclose(vw, 0.0, atol=1e-9)
    # joints move in sync: every sample lies on its straight segment
    k = np.clip(np.searchsorted(traj.seg_times, t, side="right") - 1, 0, 1)
    a0, b0 = traj.waypoints[k], traj.waypoints[k + 1]
    s = np.sum((p - a0) * (b0 - a0), axis=1) / np.sum((b0 - a0) ** 2, axis=1)
    np.testing.assert_allclose(p, a0 + s[:, None] * (b0 - a0), atol=1e-9)
    # the slowest joint of a segment is at a limit somewhere (time-optimal per segment)
    assert np.max(np.abs(v) / vmax) > 0.99 or np.max(np.abs(a) / amax) > 0.99
    dense = traj.resample(0.05)
    assert np.all(np.diff(dense.times) <= 0.05 + 1e-12)
    with pytest.raises(InputError):
        time_parameterize(np.zeros((3, 7)), np.zeros(7))


def test_junction_speeds_run_through_collinear_waypoints_and_slow_at_corners(arm):
    cfg = TrajectoryConfig(velocity_scale=0.5, acceleration_rad_s2=3.0, acceleration_scale=0.5,
                           junction_dt_s=0.1)
    rest = TrajectoryConfig(velocity_scale=0.5, acceleration_rad_s2=3.0, acceleration_scale=0.5,
                            junction_dt_s=0.0)
    line = np.stack([READY + s * (HOME - READY) for s in np.linspace(0, 1, 9)])
    one = time_parameterize(line[[0, -1]], arm.velocity_limits, config=cfg)
    many = time_parameterize(line, arm.velocity_limits, config=cfg)
    stops = time_parameterize(line, arm.velocity_limits, config=rest)
    # eight collinear segments take as long as the one straight segment; stopping costs time
    assert many.duration_s == pytest.approx(one.duration_s, rel=1e-9)
    assert stops.duration_s > 1.5 * many.duration_s
    # a right-angle corner: the joint velocity jump there is what 1.5 rad/s^2 absorbs in 0.1 s
    corner = np.stack([READY, READY + [0.5, 0, 0, 0, 0, 0, 0], READY + [0.5, 0.5, 0, 0, 0, 0, 0]])
    tr = time_parameterize(corner, arm.velocity_limits, config=cfg)
    eps = 1e-7
    (_, v_in, _), (_, v_out, _) = (tr.sample([tr.seg_times[1] - eps]),
                                   tr.sample([tr.seg_times[1] + eps]))
    assert np.max(np.abs(v_out - v_in)) == pytest.approx(1.5 * 0.1, rel=1e-3)
    # and the samples still lie on the two checked segments
    p, _, _ = tr.sample(np.linspace(0, tr.duration_s, 2001))
    on_first = np.all(np.abs(p[:, 1:] - READY[1:]) < 1e-9, axis=1)
    on_second = np.abs(p[:, 0] - READY[0] - 0.5) < 1e-9
    assert np.all(on_first | on_second)


def test_short_segment_is_triangular():
    path = np.array([[0.0], [0.01]])
    traj = time_parameterize(path, [2.0], config=TrajectoryConfig(velocity_scale=1.0,
                                                                  acceleration_scale=1.0))
    # triangular: T = 2 sqrt(d / a)
    assert traj.duration_s == pytest.approx(2 * np.sqrt(0.01 / 3.0))


# ----------------------------------------------------------------------- grasp checks
@pytest.mark.parametrize("opening, effort, commanded, width, expected", [
    ((0.0225, 0.0219), (-40.0, -40.0), 0.0, 0.0449, (True, "ok")),       # sim: toy block
    ((0.0201, 0.0202), (-40.0, -40.0), 0.0, 0.0494, (True, "ok")),       # sim: duck, narrower
    ((0.0, 0.0), (-0.01, 0.0), 0.0, 0.045, (False, "missed")),            # closed on nothing
    (0.0012, 40.0, 0.0, None, (False, "missed")),
    (0.030, 0.0, 0.030, 0.045, (False, "not_blocked")),                   # at its command
    (0.044, 1.0, 0.0, 0.045, (False, "no_effort")),
    ((0.022, 0.022), (-40.0, -2.0), 0.0, 0.045, (False, "no_effort")),   # one finger idle
    (0.015, 40.0, 0.0, 0.045, (False, "too_narrow")),
    (0.060, 40.0, 0.0, 0.045, (False, "too_wide")),
    (0.060, 40.0, 0.0, None, (True, "ok")),
])
def test_verify_grasp(opening, effort, commanded, width, expected):
    assert tuple(verify_grasp(opening, effort, commanded, width)) == expected


def test_verify_grasp_checks_inputs_and_thresholds():
    with pytest.raises(InputError):
        verify_grasp(np.nan, 40.0, 0.0)
    with pytest.raises(InputError):
        verify_grasp((0.01, 0.01, 0.01), 40.0, 0.0)
    with pytest.raises(InputError):
        verify_grasp(0.03, 40.0, -0.01)
    strict = GraspCheckConfig(width_below_m=0.001)
    assert verify_grasp(0.040, 40.0, 0.0, 0.0494, strict) == (False, "too_narrow")


# ---------------------------------------------------------------------------- approach
def test_approach_poses_geometry():
    T = _top_down([0.6, 0.1, 0.5], yaw=0.4)
    pre, g, lift = approach_poses(T, 0.1, 0.15)
    np.testing.assert_allclose(pre[:3, 3], [0.6, 0.1, 0.6])      # back along -z (= up)
    np.testing.assert_allclose(lift[:3, 3], [0.6, 0.1, 0.65])
    side = np.eye(4)
    side[:3, :3] = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]])   # z along base +x
    side[:3, 3] = [0.7, 0.0, 0.5]
    pre, _, _ = approach_poses(side, 0.1, 0.1)
    np.testing.assert_allclose(pre[:3, 3], [0.6, 0.0, 0.5], atol=1e-12)


def test_solve_approach_is_continuous_and_straight(arm):
    rng = np.random.default_rng(9)
    for yaw in (0.0, 1.2, 2.8):
        T = _top_down([0.62, -0.1, 0.47], yaw)
        plan = solve_approach(arm, T, READY, ApproachConfig(), rng=rng)
        for Tt, q in ((plan.T_base_pregrasp, plan.q_pregrasp), (plan.T_base_grasp, plan.q_grasp),
                      (plan.T_base_lift, plan.q_lift)):
            assert np.linalg.norm(arm.fk(q)[:3, 3] - Tt[:3, 3]) < 1e-3
        # the grasp pose is the requested one, possibly turned by pi about z
        R = plan.T_base_grasp[:3, :3]
        assert np.allclose(R[:, 2], T[:3, 2]) and abs(abs(R[:, 1] @ T[:3, 1]) - 1) < 1e-9
        for path in (plan.approach_path, plan.lift_path):
            assert np.max(np.abs(np.diff(path, axis=0))) < 0.5
            tips = np.array([arm.fk(q)[:3, 3] for q in path])
            a, b = tips[0], tips[-1]
            u = (b - a) / np.linalg.norm(b - a)
            off = (tips - a) - np.outer((tips - a) @ u, u)
            assert np.max(np.linalg.norm(off, axis=1)) < 2e-3
        # the wrist does not spin more than needed: the flip picks the nearer solution
        assert abs(plan.q_grasp[6] - READY[6]) < np.pi / 2 + 0.3


@pytest.mark.parametrize("xyz,yaw", [((0.6, 0.0, 0.03), 0.8), ((0.75, 0.0, 0.03), 0.0)])
def test_solve_approach_reaches_a_far_floor_grasp_from_the_grasp_end(arm, xyz, yaw):
    """A floor grasp near the edge of reach: the arm branch found for the pre-grasp (from the
    look pose) cannot stretch down to the grasp; solving the grasp first and drawing the
    approach backwards from it can (a tidy run failed every grasp of such an object)."""
    look = np.array([2.6, 0.4, 0.0, -2.8, 0.0, 2.0, 0.785])
    cfg = ApproachConfig(pregrasp_offset_m=0.12, lift_m=0.15)
    T = _top_down(xyz, yaw)
    pre, grasp, _ = approach_poses(T, 0.12, 0.15)
    sol = arm.solve_ik(pre, look, cfg.ik, rng=np.random.default_rng(0), flip_yaw=True)
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    P, G = (pre @ flip, grasp @ flip) if sol.flipped else (pre, grasp)
    with pytest.raises(IKError):            # the pre-grasp's branch alone fails
        cartesian_path(arm, P, G, sol.q, cfg.cartesian_step_m, cfg.ik, cfg.max_joint_jump_rad)
    plan = solve_approach(arm, T, look, cfg, rng=np.random.default_rng(0))
    assert np.linalg.norm(arm.fk(plan.q_grasp)[:3, 3] - np.asarray(xyz)) < 1e-3
    assert np.linalg.norm(arm.fk(plan.q_pregrasp)[:3, 3] - plan.T_base_pregrasp[:3, 3]) < 1e-3
    np.testing.assert_allclose(plan.approach_path[0], plan.q_pregrasp)
    np.testing.assert_allclose(plan.approach_path[-1], plan.q_grasp)
    assert np.max(np.abs(np.diff(plan.approach_path, axis=0))) < cfg.max_joint_jump_rad
    tips = np.array([arm.fk(q)[:3, 3] for q in plan.approach_path])
    assert np.all(np.diff(tips[:, 2]) < 1e-4)          # straight down to the grasp


def test_cartesian_path_refuses_a_jump(arm):
    q = arm.ik(_top_down([0.6, 0.0, 0.5]), READY)
    far = _top_down([2.0, 0.0, 0.5])
    with pytest.raises(IKError):
        cartesian_path(arm, arm.fk(q), far, q)


# ----------------------------------------------------------------- slow: vs PyBullet
@pytest.mark.slow
def test_ik_speed_and_success_vs_pybullet(arm, bullet, capsys):
    """200 random reachable targets from the READY seed: ours >= 95 % within 1 mm / 0.01 rad;
    PyBullet's calculateInverseKinematics (the simulator's scripted IK: damped, 3 refinements)
    measured on the same targets for comparison (printed)."""
    import time

    c, uid, links, joints = bullet
    rng = np.random.default_rng(10)
    movable = [j for j in range(c.getNumJoints(uid)) if c.getJointInfo(uid, j)[2] != 4]
    arm_idx = [joints[n] for n in arm.joint_names]
    damp = [0.05 if j in arm_idx else 100.0 for j in movable]
    for jn in ("base_x_joint", "base_y_joint", "base_yaw_joint"):
        c.resetJointState(uid, joints[jn], 0.0)
    ours_t, ours_ok, pb_t, pb_ok = [], 0, [], 0
    for _ in range(200):
        T = arm.fk(arm.random_configuration(rng))
        t0 = time.perf_counter()
        try:
            q = arm.ik(T, READY, rng=rng)
            ours_ok += 1
        except IKError:
            pass
        ours_t.append(time.perf_counter() - t0)
        for j, v in zip(arm_idx, READY):
            c.resetJointState(uid, j, float(v))
        quat = _quat_xyzw(T[:3, :3])
        t0 = time.perf_counter()
        for _ in range(3):     # re-solved from its own answer, as katazuke.sim.pick_place does
            sol = c.calculateInverseKinematics(uid, links["panda_grasptarget"],
                                               T[:3, 3].tolist(), quat, jointDamping=damp,
                                               maxNumIterations=200, residualThreshold=1e-5)
            for j in arm_idx:
                c.resetJointState(uid, j, float(sol[movable.index(j)]))
        pb_t.append(time.perf_counter() - t0)
        q = np.clip([sol[movable.index(j)] for j in arm_idx], arm.lower, arm.upper)
        Tq = arm.fk(q)
        pb_ok += (np.linalg.norm(Tq[:3, 3] - T[:3, 3]) <= 1e-3
                  and _rot_err(Tq[:3, :3], T[:3, :3]) <= 1e-2)
    with capsys.disabled():
        print(f"\nIK over 200 targets: ours {ours_ok / 2:.1f} % solved, median "
              f"{np.median(ours_t) * 1e3:.2f} ms (p90 {np.quantile(ours_t, 0.9) * 1e3:.2f}); "
              f"pybullet {pb_ok / 2:.1f} % solved, median {np.median(pb_t) * 1e3:.2f} ms")
    assert ours_ok >= 190


def _quat_xyzw(R):
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(R).as_quat().tolist()


@pytest.mark.slow
def test_free_spheres_mean_no_contact_in_pybullet(arm, bullet):
    """Configurations the checker (default 1 cm margin) calls free of a box have no contact
    between PyBullet's arm collision shapes and that box."""
    c, uid, links, joints = bullet
    lo, hi = np.array([0.45, -0.3, 0.3]), np.array([0.75, 0.3, 0.6])
    box_col = c.createCollisionShape(c.GEOM_BOX, halfExtents=((hi - lo) / 2).tolist())
    # the robot's base_link sits at the world origin with the base joints at 0
    for jn in ("base_x_joint", "base_y_joint", "base_yaw_joint"):
        c.resetJointState(uid, joints[jn], 0.0)
    box = c.createMultiBody(0, box_col, basePosition=((hi + lo) / 2).tolist())
    cc = CollisionChecker(arm, Obstacles([(lo, hi)], floor_z_m=None),
                          CollisionConfig(self_collision=False))
    arm_links = {links[n] for n in PANDA_SPHERES} | {links["panda_leftfinger"],
                                                    links["panda_rightfinger"]}
    rng = np.random.default_rng(11)
    Q = arm.random_configuration(rng, 400)
    free = cc.is_collision_free(Q)
    assert 0.2 < free.mean() < 0.95
    contacts = 0
    for q, f in zip(Q, free):
        for jn, v in zip(arm.joint_names, q):
            c.resetJointState(uid, joints[jn], float(v))
        pts = c.getClosestPoints(uid, box, 0.0)
        touching = any(p[3] in arm_links and p[8] < -1e-3 for p in pts)
        if f:
            contacts += touching
    c.removeBody(box)
    assert contacts == 0
