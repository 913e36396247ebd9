"""Lifting a detection box to 3D (perception/objectmap/lifting.py): Open3D back-projection,
outlier removal, the object's centre and extent, determinism, input errors."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.errors import ConfigError, InputError
from katazuke.perception.objectmap import LiftingConfig, box_points, box_to_3d, object_points

K = np.array([[250.0, 0, 160.5], [0, 240.0, 119.5], [0, 0, 1]])
H, W = 240, 320


def _render_box(centre: np.ndarray, size: np.ndarray, background: float = 3.0) -> np.ndarray:
    """Depth (m) of an axis-aligned box seen by a camera at the origin looking along +z.

    The camera sees the front face (z = centre z - size z / 2) wherever the pixel ray hits
    the face's rectangle; elsewhere the background wall at ``background`` m.
    """
    z_f = centre[2] - size[2] / 2
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    X, Y = (u - K[0, 2]) * z_f / K[0, 0], (v - K[1, 2]) * z_f / K[1, 1]
    hit = (np.abs(X - centre[0]) <= size[0] / 2) & (np.abs(Y - centre[1]) <= size[1] / 2)
    return np.where(hit, z_f, background).astype(np.float32)


def _box_of(centre: np.ndarray, size: np.ndarray, pad_px: float = 4.0) -> np.ndarray:
    z_f = centre[2] - size[2] / 2
    u0 = K[0, 0] * (centre[0] - size[0] / 2) / z_f + K[0, 2] - pad_px
    u1 = K[0, 0] * (centre[0] + size[0] / 2) / z_f + K[0, 2] + pad_px
    v0 = K[1, 1] * (centre[1] - size[1] / 2) / z_f + K[1, 2] - pad_px
    v1 = K[1, 1] * (centre[1] + size[1] / 2) / z_f + K[1, 2] + pad_px
    return np.array([u0, v0, u1 - u0, v1 - v0])


def test_box_points_back_project_every_valid_pixel_through_K():
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.5, 5.0, (H, W)).astype(np.float32)
    depth[rng.random((H, W)) < 0.1] = np.nan
    depth[rng.random((H, W)) < 0.05] = 0.0
    depth[rng.random((H, W)) < 0.05] = np.inf
    box = np.array([100.3, 50.7, 30.0, 20.0])
    P = np.asarray(box_points(box, depth, K, max_depth=4.0).points)
    v, u = np.mgrid[50:71, 100:131]         # floor(x_min) .. ceil(x_min + width) - 1
    z = depth[v, u].astype(float)
    ok = np.isfinite(z) & (z > 0) & (z <= 4.0)
    ref = np.stack([(u[ok] - K[0, 2]) * z[ok] / K[0, 0], (v[ok] - K[1, 2]) * z[ok] / K[1, 1],
                    z[ok]], axis=1)
    assert len(P) == len(ref) > 0
    order = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(order(P), order(ref), atol=1e-6)
    lo_hi = np.asarray(box_points(box, depth, K, 6.0, (1.0, 2.0)).points)[:, 2]
    assert len(lo_hi) and lo_hi.min() >= 1.0 - 1e-6 and lo_hi.max() <= 2.0 + 1e-6


def test_cloud_recovers_a_known_box_and_median_method_does_not_as_well():
    centre, size = np.array([0.12, -0.05, 1.6]), np.array([0.16, 0.10, 0.10])
    depth = _render_box(centre, size)
    box = _box_of(centre, size)          # a little larger than the object: wall in the border
    p, e = box_to_3d(box, depth, K)
    assert np.linalg.norm(p - centre) < 0.01
    np.testing.assert_allclose(e[:2], size[:2], atol=0.015)
    assert e[2] == pytest.approx(size[2], abs=0.015)
    # The median method takes the padded box for the object: its extent is too large.
    pm, em = box_to_3d(box, depth, K, config=LiftingConfig(method="median"))
    assert np.linalg.norm(pm - centre) > np.linalg.norm(p - centre)
    assert em[0] > size[0] + 0.01


def test_planted_outliers_are_removed_and_do_not_move_the_estimate():
    centre, size = np.array([-0.1, 0.05, 1.5]), np.array([0.2, 0.12, 0.12])
    clean = _render_box(centre, size)
    box = _box_of(centre, size)
    rng = np.random.default_rng(11)
    dirty = clean.copy()
    x0, y0 = int(box[0]) + 3, int(box[1]) + 3
    us = rng.integers(x0, int(box[0] + box[2]) - 3, 12)
    vs = rng.integers(y0, int(box[1] + box[3]) - 3, 12)
    z_front = centre[2] - size[2] / 2
    dirty[vs, us] = z_front - rng.uniform(0.05, 0.09, 12)   # flying pixels in front, in the band
    planted = np.stack([(us - K[0, 2]) * dirty[vs, us] / K[0, 0],
                        (vs - K[1, 2]) * dirty[vs, us] / K[1, 1], dirty[vs, us]], axis=1)
    P = object_points(box, dirty, K)
    d = np.linalg.norm(P[:, None] - planted[None], axis=2).min(axis=0)
    assert np.all(d > 0.02), "a planted outlier survived"
    assert P[:, 2].min() >= z_front - 0.01
    p_clean, _ = box_to_3d(box, clean, K)
    p_dirty, _ = box_to_3d(box, dirty, K)
    assert np.linalg.norm(p_dirty - p_clean) < 0.005


def test_lifting_is_deterministic():
    rng = np.random.default_rng(5)
    centre, size = np.array([0.0, 0.0, 2.0]), np.array([0.15, 0.2, 0.1])
    depth = _render_box(centre, size) + rng.normal(0, 0.004, (H, W)).astype(np.float32)
    box = _box_of(centre, size)
    runs = [box_to_3d(box, depth, K) for _ in range(5)]
    for p, e in runs[1:]:
        np.testing.assert_array_equal(p, runs[0][0])
        np.testing.assert_array_equal(e, runs[0][1])


def test_no_valid_depth_gives_none_and_bad_input_names_the_fix():
    depth = np.full((H, W), np.nan, np.float32)
    for method in ("cloud", "median"):
        assert box_to_3d(np.array([10.0, 10.0, 20.0, 20.0]), depth, K,
                         config=LiftingConfig(method=method)) is None
    with pytest.raises(InputError, match="box_xywh"):
        box_to_3d(np.array([1.0, 2.0, np.nan, 4.0]), depth, K)
    with pytest.raises(InputError, match=r"\(H, W\)"):
        box_to_3d(np.array([1.0, 2.0, 3.0, 4.0]), np.zeros((4, 4, 3)), K)
    with pytest.raises(ConfigError, match="method"):
        LiftingConfig(method="mean")
    with pytest.raises(ConfigError, match="voxel_size"):
        LiftingConfig(voxel_size=0.0)


def test_median_method_keeps_the_earlier_numbers():
    K2 = np.array([[200.0, 0, 160], [0, 200.0, 120], [0, 0, 1]])
    depth = np.full((240, 320), 2.0, np.float32)
    p, e = box_to_3d(np.array([200.0, 100.0, 20.0, 40.0]), depth, K2,
                     config=LiftingConfig(method="median"))
    assert e[0] == pytest.approx(0.2) and e[1] == pytest.approx(0.4)
    zc = 2.0 + 0.1
    np.testing.assert_allclose(p, [(210 - 160) * zc / 200, 0.0, zc])


def test_open3d_is_imported_only_when_the_cloud_method_runs():
    import subprocess
    import sys

    code = ("import sys, numpy as np, katazuke.perception.objectmap as m\n"
            "a = 'open3d' in sys.modules\n"
            "m.box_to_3d(np.array([1., 1., 5., 5.]), np.ones((20, 20)), np.eye(3),"
            " config=m.LiftingConfig(method='median'))\n"
            "b = 'open3d' in sys.modules\n"
            "m.box_to_3d(np.array([1., 1., 5., 5.]), np.ones((20, 20)), np.eye(3))\n"
            "print(a, b, 'open3d' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out == ["False", "False", "True"]


def test_cloud_lifting_accepts_every_float_depth_layout():
    """Depth decoded from a 32FC1 message carries an explicit little-endian dtype ('<f4'),
    which Open3D's Image refused (every detection of the node failed); big-endian and
    float64 inputs lift to the same answer as a native float32 array."""
    from katazuke.perception.objectmap.lifting import box_to_3d
    from katazuke.ros.conversions import depth_to_metres, image_from_numpy

    K = np.array([[200.0, 0, 160], [0, 200.0, 120], [0, 0, 1]])
    native = np.full((240, 320), 2.0, np.float32)
    box = np.array([200.0, 100.0, 20.0, 40.0])
    want = box_to_3d(box, native, K)
    assert want is not None
    for depth in (depth_to_metres(image_from_numpy(native, "32FC1")), native.astype(">f4"),
                  native.astype(np.float64)):
        got = box_to_3d(box, depth, K)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
