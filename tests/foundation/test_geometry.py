"""Properties of katazuke.geometry, with scipy's Rotation as the independent reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from katazuke import geometry as g
from katazuke.errors import InputError


def _quats(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4))


def test_quat_to_matrix_matches_scipy_and_is_a_rotation():
    q = _quats(200)
    R = g.quat_to_matrix(q)
    assert R.shape == (200, 3, 3)
    np.testing.assert_allclose(R, Rotation.from_quat(q).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)


def test_q_and_minus_q_give_the_same_matrix():
    q = _quats(50, seed=1)
    np.testing.assert_allclose(g.quat_to_matrix(q), g.quat_to_matrix(-q), atol=1e-15)


def test_round_trips_and_sign_convention():
    q = g.normalize_quaternion(_quats(300, seed=2))
    back = g.matrix_to_quat(g.quat_to_matrix(q))
    assert np.all(back[:, 3] >= 0)
    np.testing.assert_allclose(back, q * np.sign(q[:, 3:4]), atol=1e-12)
    R = Rotation.random(300, random_state=3).as_matrix()
    np.testing.assert_allclose(g.quat_to_matrix(g.matrix_to_quat(R)), R, atol=1e-12)


def test_matrix_to_quat_near_pi_rotations():
    # trace ~ -1: the branch a naive trace formula gets wrong
    axes = np.eye(3)
    R = Rotation.from_rotvec(np.pi * axes).as_matrix()
    np.testing.assert_allclose(g.quat_to_matrix(g.matrix_to_quat(R)), R, atol=1e-12)
    q = g.matrix_to_quat(Rotation.from_rotvec([0.0, 0.0, np.pi - 1e-9]).as_matrix())
    np.testing.assert_allclose(np.abs(q), [0, 0, 1, 0], atol=1e-8)


def test_batched_shapes_and_single_inputs():
    q = _quats(24, seed=4).reshape(2, 3, 4, 4)
    R = g.quat_to_matrix(q)
    assert R.shape == (2, 3, 4, 3, 3)
    assert g.matrix_to_quat(R).shape == (2, 3, 4, 4)
    assert g.quat_to_matrix([0.0, 0.0, 0.0, 2.0]).shape == (3, 3)
    np.testing.assert_array_equal(g.quat_to_matrix([0.0, 0.0, 0.0, 2.0]), np.eye(3))
    np.testing.assert_allclose(g.matrix_to_quat(np.eye(3)), [0, 0, 0, 1])
    T = g.pose_to_matrix(np.zeros((5, 3)), _quats(5, seed=5))
    assert T.shape == (5, 4, 4)
    np.testing.assert_array_equal(T[:, 3], np.broadcast_to([0, 0, 0, 1.0], (5, 4)))


@pytest.mark.parametrize("bad", [[0, 0, 0, 0], [np.nan, 0, 0, 1], [np.inf, 0, 0, 1], [1, 2, 3]])
def test_degenerate_quaternions_raise_input_error(bad):
    with pytest.raises(InputError, match="quaternion"):
        g.quat_to_matrix(bad)


def test_matrix_to_quat_rejects_poses_and_nan():
    with pytest.raises(InputError, match=r"\(\.\.\., 3, 3\)"):
        g.matrix_to_quat(np.eye(4))
    with pytest.raises(InputError, match="finite"):
        g.matrix_to_quat(np.full((3, 3), np.nan))


def test_pose_round_trip():
    q = g.normalize_quaternion(_quats(10, seed=6))
    q *= np.sign(q[:, 3:4])
    p = np.random.default_rng(7).normal(size=(10, 3))
    T = g.pose_to_matrix(p, q)
    p2, q2 = g.matrix_to_pose(T)
    np.testing.assert_allclose(p2, p)
    np.testing.assert_allclose(q2, q, atol=1e-12)
    pts = np.random.default_rng(8).normal(size=(10, 3))
    np.testing.assert_allclose(np.einsum("nij,nj->ni", T[:, :3, :3], pts) + p,
                               Rotation.from_quat(q).apply(pts) + p, atol=1e-12)


@pytest.mark.parametrize("yaw", [-3.0, -1.2, 0.0, 0.4, 2.9])
def test_yaw_helpers_agree(yaw):
    R = g.rotation_z(yaw)
    np.testing.assert_allclose(R, Rotation.from_euler("z", yaw).as_matrix(), atol=1e-15)
    assert g.yaw_from_matrix(R) == pytest.approx(yaw, abs=1e-12)
    q = g.yaw_to_quat(yaw)
    assert g.yaw_from_quaternion(*q.tolist()) == pytest.approx(yaw, abs=1e-12)
    np.testing.assert_allclose(g.quat_to_matrix(q), R, atol=1e-15)
    T = g.se2_to_matrix(1.0, -2.0, yaw, z=0.3)
    np.testing.assert_allclose(T[:3, :3], R)
    np.testing.assert_allclose(T[:3, 3], [1.0, -2.0, 0.3])
    assert g.yaw_from_matrix(T) == pytest.approx(yaw, abs=1e-12)


def test_yaw_ignores_roll_and_pitch_of_the_heading_and_broadcasts():
    yaws = np.array([-2.5, 0.1, 1.7])
    R = Rotation.from_euler("ZYX", np.stack([yaws, [0.2, -0.3, 0.1], [0.4, 0.2, -0.5]], 1)).as_matrix()
    np.testing.assert_allclose(g.yaw_from_matrix(R), yaws, atol=1e-12)
    q = Rotation.from_euler("z", yaws[:, None]).as_quat()
    np.testing.assert_allclose(g.yaw_from_quaternion(q[:, 0], q[:, 1], q[:, 2], q[:, 3]), yaws, atol=1e-12)
    assert isinstance(g.yaw_from_quaternion(0.0, 0.0, math.sin(0.3), math.cos(0.3)), float)
    assert g.rotation_z(yaws).shape == (3, 3, 3)


def test_look_at_points_the_optical_axis_at_the_target():
    eye, target = np.array([1.0, -2.0, 1.5]), np.array([0.2, 0.5, 0.3])
    T = g.look_at(eye, target, roll=0.1)
    z = (target - eye) / np.linalg.norm(target - eye)
    np.testing.assert_allclose(T[:3, 2], z, atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], eye)
    np.testing.assert_allclose(T[:3, :3].T @ T[:3, :3], np.eye(3), atol=1e-12)
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)
    down = g.look_at((0, 0, 2), (0, 0, 0))       # straight down: world +x is "up" on the image
    assert np.all(np.isfinite(down))
    with pytest.raises(InputError, match="target equals eye"):
        g.look_at(eye, eye)


def test_world_to_base_twist_is_the_inverse_heading_rotation():
    u = np.array([0.3, -0.2, 0.5])
    for yaw in (0.0, 0.7, -2.0):
        vx, vy, wz = g.world_to_base_twist(u, yaw)
        np.testing.assert_allclose(g.rotation_z(yaw)[:2, :2] @ [vx, vy], u[:2], atol=1e-15)
        assert wz == u[2]


def test_slerp_endpoints_midpoint_and_shorter_arc():
    q0, q1 = g.yaw_to_quat(0.2), g.yaw_to_quat(1.0)
    np.testing.assert_allclose(g.slerp(q0, q1, 0.0), q0, atol=1e-15)
    np.testing.assert_allclose(g.slerp(q0, q1, 1.0), q1, atol=1e-15)
    np.testing.assert_allclose(g.slerp(q0, q1, 0.25), g.yaw_to_quat(0.4), atol=1e-14)
    # -q1 is the same orientation: the result is unchanged up to sign
    np.testing.assert_allclose(g.quat_to_matrix(g.slerp(q0, -q1, 0.5)), g.rotation_z(0.6), atol=1e-14)
    a = np.random.default_rng(9)
    qa, qb = g.normalize_quaternion(a.normal(size=(6, 4))), g.normalize_quaternion(a.normal(size=(6, 4)))
    t = a.uniform(size=6)
    ref = [Rotation.from_quat([qa[i], qb[i]]) for i in range(6)]
    from scipy.spatial.transform import Slerp
    want = np.stack([Slerp([0, 1], r)(t[i]).as_matrix() for i, r in enumerate(ref)])
    np.testing.assert_allclose(g.quat_to_matrix(g.slerp(qa, qb, t)), want, atol=1e-12)
