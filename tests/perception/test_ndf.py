"""Neural Descriptor Fields (perception/ndf): equivariance, invariance, pose recovery, errors.

The networks here are tiny and untrained (seeded): the properties tested hold for any
weights. The 1e-4 equivariance bar is checked in float64: in float32 an untrained
network's shape code is a small mean of much larger per-point features (a centred cloud),
and that cancellation leaves 1e-5 to 1.2e-4 relative error, so float32 is held to 1e-3.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from katazuke.errors import InputError, KatazukeError
from katazuke.perception.ndf import (DescriptorField, NdfModelConfig, NdfNetwork, PoseOptConfig,
                                     VNInvariant, VNLeakyReLU, VNLinear, VNMaxPool,
                                     gripper_collision_points, gripper_query_points,
                                     load_ndf_weights, minimise_pose_energy, random_rotations,
                                     save_ndf_weights, transform_points)

TINY = NdfModelConfig(hidden=8, latent=8, encoder_blocks=2, knn=6, decoder_hidden=16,
                      decoder_blocks=2)


def _net(dtype=torch.float64, cfg=TINY, seed=0):
    torch.manual_seed(seed)
    return NdfNetwork(cfg).to(dtype)


def _cloud(rng, n=300):
    """An asymmetric blob: an ellipsoid with a lump on one side (no rotational symmetry)."""
    P = rng.normal(size=(n, 3)) * [0.04, 0.025, 0.07]
    P[: n // 6] += [0.08, 0.0, 0.03]
    return P


def _se3(rng, scale_t=0.5):
    T = np.eye(4)
    T[:3, :3] = random_rotations(1, rng)[0]
    T[:3, 3] = rng.normal(size=3) * scale_t
    return T


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_descriptors_are_se3_invariant_and_code_equivariant(seed):
    rng = np.random.default_rng(seed)
    net = _net()
    P, q, T = _cloud(rng), rng.normal(size=(40, 3)) * 0.06, _se3(rng)
    f = DescriptorField(net, P).descriptors(q)
    f_moved = DescriptorField(net, transform_points(T, P)).descriptors(transform_points(T, q))
    assert _rel(f_moved, f) <= 1e-4
    z, centre = net.encode(torch.as_tensor(P)[None])
    z_moved, centre_moved = net.encode(torch.as_tensor(transform_points(T, P))[None])
    R = torch.as_tensor(T[:3, :3])
    assert torch.allclose(z_moved[0], z[0] @ R.T, atol=1e-10)      # z rotates with the cloud
    assert torch.allclose(centre_moved[0, 0], R @ centre[0, 0] + torch.as_tensor(T[:3, 3]))
    # and the field is not trivially constant: other queries give other descriptors
    f_other = DescriptorField(net, P).descriptors(q + 0.02)
    assert _rel(f_other, f) > 1e-2


@pytest.mark.parametrize("seed", [3, 4])
def test_float32_equivariance_is_at_rounding_level(seed):
    rng = np.random.default_rng(seed)
    net = _net(torch.float32)
    P, q, T = _cloud(rng), rng.normal(size=(40, 3)) * 0.06, _se3(rng)
    f = DescriptorField(net, P).descriptors(q)
    f_moved = DescriptorField(net, transform_points(T, P)).descriptors(transform_points(T, q))
    assert _rel(f_moved, f) <= 1e-3


def test_vn_layers_are_rotation_equivariant_and_invariant_head_is_invariant():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3, 10, dtype=torch.float64)
    R = torch.as_tensor(random_rotations(1, np.random.default_rng(4))[0])
    rot = lambda v: torch.einsum("ij,bcj...->bci...", R, v)  # noqa: E731
    for layer in (VNLinear(6, 5), VNLeakyReLU(6), VNMaxPool(6)):
        layer = layer.double()
        assert torch.allclose(layer(rot(x)), rot(layer(x)), atol=1e-12), type(layer).__name__
    inv = VNInvariant(6).double()
    assert torch.allclose(inv(rot(x)), inv(x), atol=1e-10)
    assert not torch.allclose(inv(x), inv(x * 1.5 + 0.1))           # not a constant
    F = inv.frame(x)                                                  # a proper rotation
    eye = torch.eye(3, dtype=torch.float64).expand(2, 10, 3, 3)
    Fm = F.permute(0, 3, 1, 2)
    assert torch.allclose(Fm @ Fm.transpose(-1, -2), eye, atol=1e-6)
    assert torch.allclose(torch.linalg.det(Fm), torch.ones(2, 10, dtype=torch.float64), atol=1e-6)


def test_minimiser_recovers_a_known_se3_offset():
    rng = np.random.default_rng(7)
    net = _net(torch.float32, NdfModelConfig(hidden=16, latent=16, encoder_blocks=2, knn=8,
                                             decoder_hidden=32, decoder_blocks=2))
    P = _cloud(rng, 400)
    X = gripper_query_points(24, rng)
    T_demo = _se3(rng, 0.0)
    T_demo[:3, 3] = [0.08, 0.0, 0.04]                               # at the lump
    target = DescriptorField(net, P).descriptors(transform_points(T_demo, X))
    A = _se3(rng)
    res = minimise_pose_energy(DescriptorField(net, transform_points(A, P)), X, target,
                               PoseOptConfig(restarts=24, steps=100), np.random.default_rng(8))
    T_ref, T_est = A @ T_demo, res.T[0]
    angle = np.degrees(np.arccos(np.clip((np.trace(T_est[:3, :3].T @ T_ref[:3, :3]) - 1) / 2,
                                         -1, 1)))
    assert np.linalg.norm(T_est[:3, 3] - T_ref[:3, 3]) < 0.01 and angle < 10.0, (T_est, T_ref)
    assert np.all(np.diff(res.energy) >= 0)                          # ranked
    assert len(res.energy) == 6                                      # pruned to a quarter
    assert np.allclose(res.T[:, :3, :3] @ np.swapaxes(res.T[:, :3, :3], 1, 2), np.eye(3),
                       atol=1e-5)


def test_penetration_term_pushes_the_fingers_off_the_points():
    rng = np.random.default_rng(9)
    net = _net(torch.float32)
    P = _cloud(rng, 300)
    X = gripper_query_points(16, rng)
    G = gripper_collision_points()
    target = DescriptorField(net, P).descriptors(transform_points(np.eye(4), X))
    field = DescriptorField(net, P)
    cfg = PoseOptConfig(restarts=8, steps=30, penetration_weight=10.0,
                        penetration_margin_m=0.02)
    with_pen = minimise_pose_energy(field, X, target, cfg, np.random.default_rng(1), G)
    cfg0 = PoseOptConfig(restarts=8, steps=30, penetration_weight=0.0)
    without = minimise_pose_energy(field, X, target, cfg0, np.random.default_rng(1), G)
    assert np.all(without.penetration == 0)
    assert with_pen.penetration[0] < 0.5 * max(_pen(P, G, without.T[0], 0.02), 1e-9)


def _pen(P, G, T, margin):
    d = np.linalg.norm(transform_points(T, G)[:, None] - P[None], axis=-1).min(1)
    return float(np.mean(np.maximum(margin - d, 0) ** 2) / margin ** 2)


@pytest.mark.parametrize("points, words", [
    (np.zeros((10, 2)), "(N, 3)"),
    (np.zeros((0, 3)), "at least 8"),
    (np.array([[np.nan, 0, 0]] * 20), "non-finite"),
    ("a cloud", "(N, 3)"),
])
def test_bad_clouds_raise_input_error_naming_the_fix(points, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        DescriptorField(_net(), points)


def test_bad_queries_and_targets_raise_input_error():
    rng = np.random.default_rng(0)
    field = DescriptorField(_net(), _cloud(rng))
    with pytest.raises(InputError, match="query"):
        field.descriptors(np.zeros((4, 2)))
    with pytest.raises(InputError, match="non-finite"):
        field.occupancy(np.full((4, 3), np.inf))
    X = gripper_query_points(5, rng)
    with pytest.raises(InputError, match=r"target must be finite descriptors of shape \(5, 48\)"):
        minimise_pose_energy(field, X, np.zeros((5, 7)), PoseOptConfig(), rng)


def test_weights_round_trip_and_corrupt_files(tmp_path):
    net = _net(torch.float32)
    path = tmp_path / "ndf.pt"
    save_ndf_weights(path, net, seed=3)
    back, payload = load_ndf_weights(path)
    assert payload["seed"] == 3 and back.cfg == TINY
    q = torch.randn(1, 5, 3) * 0.05
    P = torch.randn(1, 50, 3) * 0.05
    assert torch.allclose(back(P, q), net(P, q))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(KatazukeError, match="(?s)corrupt.*katazuke train ndf"):
        load_ndf_weights(bad)
    with pytest.raises(KatazukeError, match="not found"):
        load_ndf_weights(tmp_path / "missing.pt")
