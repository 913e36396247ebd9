"""Lens undistortion (perception/camera.py) against an analytically distorted image."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.errors import InputError
from katazuke.perception.camera import Undistorter

cv2 = pytest.importorskip("cv2")

W, H = 320, 240
K = np.array([[220.0, 0, 161.0], [0, 215.0, 118.0], [0, 0, 1]])
D = np.array([-0.28, 0.09, 0.001, -0.0005, -0.012])   # a typical webcam barrel distortion


def _pattern(u, v):
    """A smooth test image as a function of undistorted pixel coordinates."""
    return 127.5 + 60 * np.sin(u / 9.0) + 60 * np.cos(v / 7.0)


def _distorted_view():
    """What the lens records: each recorded pixel shows the scene at its undistorted position."""
    ud, vd = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    pts = np.stack([ud.ravel(), vd.ravel()], 1).reshape(-1, 1, 2)
    und = cv2.undistortPoints(pts, K, D, R=None, P=K,
                              criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-9))
    u, v = und[:, 0, 0].reshape(H, W), und[:, 0, 1].reshape(H, W)
    return _pattern(u, v)


def test_rectified_image_matches_the_pinhole_scene():
    gray = _distorted_view()
    rgb = np.repeat(np.clip(gray, 0, 255)[..., None], 3, axis=2).astype(np.uint8)
    out = Undistorter(K, D, W, H).rectify_rgb(rgb)
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    truth = _pattern(u, v)
    inner = (slice(40, H - 40), slice(50, W - 50))
    err = np.abs(out[..., 0].astype(float) - truth)[inner]
    before = np.abs(rgb[..., 0].astype(float) - truth)[inner]
    assert np.median(err) < 2.0 and np.percentile(err, 99) < 8.0
    assert np.median(before) > 10 * np.median(err)   # the distortion was real


def test_depth_is_resampled_by_nearest_neighbour_and_never_invented():
    depth = np.full((H, W), 2.0, np.float32)
    depth[:, W // 2:] = 4.0
    depth[100:110, :] = np.nan                         # a band with no return
    out = Undistorter(K, D, W, H).rectify_depth(depth)
    vals = out[np.isfinite(out)]
    assert set(np.unique(vals)) <= {2.0, 4.0}          # no blend across the edge
    assert np.isnan(out[100:112, W // 2]).any()        # no return stays no return
    pincushion = Undistorter(K, -D, W, H).rectify_depth(np.full((H, W), 2.0, np.float32))
    assert np.isnan(pincushion[0, 0])                  # a corner with no source pixel: NaN, not 0


def test_zero_distortion_is_the_identity_and_bad_models_are_refused():
    rgb = np.zeros((H, W, 3), np.uint8)
    und = Undistorter(K, np.zeros(5), W, H)
    assert und.is_identity and und.rectify_rgb(rgb) is rgb
    with pytest.raises(InputError, match="takes 5"):
        Undistorter(K, np.zeros(3), W, H)
    with pytest.raises(InputError, match="not supported"):
        Undistorter(K, np.zeros(5), W, H, model="kannala_brandt")
    with pytest.raises(InputError, match="is 160x120"):
        Undistorter(K, D, W, H).rectify_rgb(np.zeros((120, 160, 3), np.uint8))
