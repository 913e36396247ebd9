"""katazuke.ros.conversions: numpy <-> message round trips and the depth "no return" rule."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke import geometry as g
from katazuke.errors import InputError

pytestmark = pytest.mark.ros
conv = pytest.importorskip("katazuke.ros.conversions")


@pytest.mark.parametrize("encoding,shape,dtype", [("rgb8", (4, 5, 3), np.uint8), ("bgra8", (4, 5, 4), np.uint8),
                                                  ("mono16", (4, 5), np.uint16), ("32FC1", (4, 5), np.float32)])
def test_image_round_trip(encoding, shape, dtype):
    rng = np.random.default_rng(0)
    a = (rng.uniform(0, 200, size=shape)).astype(dtype)
    h = conv.header(1.25, "cam")
    m = conv.image_from_numpy(a, encoding, h)
    assert (m.height, m.width, m.encoding, m.is_bigendian) == (4, 5, encoding, 0)
    assert m.step == 5 * a.itemsize * (shape[2] if len(shape) == 3 else 1)
    assert m.header.frame_id == "cam" and conv.stamp_to_sec(m.header.stamp) == 1.25
    back = conv.image_to_numpy(m, encoding)
    assert back.dtype == dtype and back.shape == shape
    np.testing.assert_array_equal(back, a)


def test_image_to_numpy_removes_row_padding_and_reads_big_endian():
    from sensor_msgs.msg import Image

    a = np.arange(12, dtype=np.uint16).reshape(3, 4)
    m = Image()
    m.height, m.width, m.encoding, m.is_bigendian = 3, 4, "16UC1", 1
    padded = np.zeros((3, 10), np.uint8)            # step 10 > 8 bytes per row
    padded[:, :8] = a.astype(">u2").view(np.uint8).reshape(3, 8)
    m.step, m.data = 10, padded.tobytes()
    np.testing.assert_array_equal(conv.image_to_numpy(m), a)


def test_image_errors_say_what_to_send():
    img = conv.image_from_numpy(np.zeros((2, 2, 3), np.uint8), "rgb8")
    with pytest.raises(ValueError, match="expected 'bgr8'"):
        conv.image_to_numpy(img, "bgr8")
    img.data = img.data[:5]
    with pytest.raises(InputError, match="too small"):
        conv.image_to_numpy(img)
    with pytest.raises(InputError, match="does not fit rgb8"):
        conv.image_from_numpy(np.zeros((2, 2)), "rgb8")
    with pytest.raises(InputError, match="not supported"):
        conv.image_from_numpy(np.zeros((2, 2)), "yuv422")


def test_depth_32fc1_nan_on_the_wire_and_passthrough():
    d = np.array([[1.5, np.inf, 0.0], [-1.0, np.nan, 2.25]], np.float32)
    m = conv.depth_to_msg(d)
    assert m.encoding == "32FC1"
    back = conv.depth_to_metres(m)
    assert back.dtype == np.float32 and back.shape == (2, 3)
    np.testing.assert_array_equal(back, [[1.5, np.nan, np.nan], [np.nan, np.nan, 2.25]])
    assert np.isinf(d[0, 1])                       # the caller's array is not modified
    # a REP 118 driver's +inf (beyond range) is passed through as sent
    raw = conv.image_from_numpy(np.array([[np.inf, 1.0]], np.float32), "32FC1")
    assert np.isposinf(conv.depth_to_metres(raw)[0, 0])


def test_depth_16uc1_millimetres_zero_is_nan():
    mm = np.array([[0, 1000], [2500, 65535]], np.uint16)
    d = conv.depth_to_metres(conv.image_from_numpy(mm, "16UC1"))
    assert d.dtype == np.float32
    np.testing.assert_allclose(d, [[np.nan, 1.0], [2.5, 65.535]], rtol=1e-6)


def test_depth_rejects_other_encodings_and_shapes():
    with pytest.raises(InputError, match="publish 32FC1"):
        conv.depth_to_metres(conv.image_from_numpy(np.zeros((2, 2, 3), np.uint8), "rgb8"))
    with pytest.raises(InputError, match=r"\(H, W\)"):
        conv.depth_to_msg(np.zeros((2, 2, 1)))


def test_stamp_round_trip_carries_nanoseconds():
    s = conv.sec_to_stamp(3.9999999999)
    assert (s.sec, s.nanosec) == (4, 0)
    assert conv.stamp_to_sec(conv.sec_to_stamp(12.5)) == 12.5


def test_pose_and_transform_messages():
    T = g.pose_to_matrix([1.0, -2.0, 0.5], g.normalize_quaternion([0.1, -0.3, 0.2, 0.9]))
    p = conv.pose_msg(T)
    np.testing.assert_allclose(conv.matrix_from_pose_msg(p), T, atol=1e-12)
    t = conv.transform_stamped(T, "map", "base_link", conv.sec_to_stamp(2.0))
    assert (t.header.frame_id, t.child_frame_id) == ("map", "base_link")
    np.testing.assert_allclose(conv.matrix_from_pose_msg(t.transform), T, atol=1e-12)
    x, y, yaw = conv.pose_xyyaw(conv.pose_msg(g.se2_to_matrix(0.3, 0.4, 2.0)))
    assert (x, y) == (0.3, 0.4) and yaw == pytest.approx(2.0)


def test_camera_info():
    K = np.array([[200.0, 0, 160], [0, 210.0, 120], [0, 0, 1]])
    info = conv.camera_info_msg(K, 320, 240, conv.header(0.0, "cam"))
    assert (info.width, info.height, info.distortion_model) == (320, 240, "plumb_bob")
    np.testing.assert_array_equal(np.reshape(info.k, (3, 3)), K)
    np.testing.assert_array_equal(np.reshape(info.p, (3, 4))[:, :3], K)


def test_instance_to_msg():
    from katazuke.perception.objectmap import CATEGORY_NAMES, Instance

    mass = np.zeros(len(CATEGORY_NAMES))
    mass[2] = 1.0
    inst = Instance(id=7, positions=[np.array([1.0, 2.0, 0.3])], weights=[1.0], category_mass=mass,
                    extent=np.array([0.1, 0.1, 0.12]), confidence=0.75, first_seen=1.5,
                    last_seen=4.25, observations=3)
    m = conv.instance_to_msg(inst, "blue_bin")
    assert (m.id, m.category, m.observations, m.destination) == (7, CATEGORY_NAMES[2], 3, "blue_bin")
    assert m.confidence == pytest.approx(0.75)
    assert (m.position.x, m.position.y, m.position.z) == (1.0, 2.0, 0.3)
    assert m.extent.z == pytest.approx(0.12)
    assert conv.stamp_to_sec(m.first_seen) == 1.5 and conv.stamp_to_sec(m.last_seen) == 4.25


def test_undistorter_from_info_reuses_the_tables_of_an_unchanged_camera():
    from katazuke.ros.conversions import camera_info_msg, undistorter_from_info

    K = np.array([[200.0, 0, 160], [0, 200.0, 120], [0, 0, 1]])
    info = camera_info_msg(K, 320, 240)
    first = undistorter_from_info(info)
    assert first.is_identity                                   # D = 0: rectified already
    info.d = [-0.2, 0.05, 0.0, 0.0, 0.0]
    second = undistorter_from_info(info, first)
    assert second is not first and not second.is_identity      # the model changed
    assert undistorter_from_info(info, second) is second       # same model: same tables
    info.distortion_model = "fov"
    with pytest.raises(InputError, match="not supported"):
        undistorter_from_info(info, second)
