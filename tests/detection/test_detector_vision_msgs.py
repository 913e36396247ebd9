"""The detector's standard outputs: vision_msgs ``detections_2d`` / ``detections_3d`` agree box
for box with the native ``detections`` (katazuke_interfaces/DetectionArray), and the label set
is latched on ``detections/label_info``. Unit tests of the builders in
:mod:`katazuke.ros.conversions`, then the node in its own process."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from katazuke.testing import start_node, stop_node

pytestmark = pytest.mark.ros

NAMES = ["toy", "kitchenware", "stationery", "bottle", "box", "soft", "unknown"]


def _native_array(n_with_map: int = 2):
    """A hand-made DetectionArray: three detections, the first ``n_with_map`` with 3-D."""
    from katazuke_interfaces.msg import Detection, DetectionArray

    arr = DetectionArray()
    arr.header.frame_id, arr.map_frame = "cam_opt", "map"
    arr.header.stamp.sec = 7
    arr.image_width, arr.image_height = 320, 240
    for i in range(3):
        d = Detection()
        d.id = i
        d.x_min, d.y_min, d.width, d.height = 10.0 + 50 * i, 20.0 + 5 * i, 30.0 + i, 40.0 - i
        d.objectness = 0.9 - 0.2 * i
        scores = np.full(7, 0.05)
        scores[(2 * i) % 7] = 0.7
        d.category_names = NAMES
        d.category_scores = [float(s) for s in scores]
        d.category, d.category_score = NAMES[(2 * i) % 7], 0.7
        if i < n_with_map:
            d.has_position = d.has_position_map = True
            d.position_camera.x, d.position_camera.y, d.position_camera.z = 0.1 * i, -0.2, 2.0
            d.extent.x, d.extent.y, d.extent.z = 0.3, 0.2, 0.2
            d.position_map.x, d.position_map.y, d.position_map.z = 1.0 + i, 2.0, 0.5
        arr.detections.append(d)
    return arr


def test_detection2d_array_is_the_same_boxes_and_scores():
    from katazuke.ros.conversions import detection2d_array_msg

    arr = _native_array()
    out = detection2d_array_msg(arr)
    assert out.header.frame_id == "cam_opt" and out.header.stamp.sec == 7
    assert [m.id for m in out.detections] == ["0", "1", "2"]
    for d, m in zip(arr.detections, out.detections):
        assert m.bbox.center.position.x == pytest.approx(d.x_min + d.width / 2)
        assert m.bbox.center.position.y == pytest.approx(d.y_min + d.height / 2)
        assert m.bbox.center.theta == 0.0
        assert (m.bbox.size_x, m.bbox.size_y) == pytest.approx((d.width, d.height))
        assert m.results[0].hypothesis.class_id == d.category
        assert m.results[0].hypothesis.score == pytest.approx(d.objectness * d.category_score)
        # objectness x p(category) over every category: sums to the objectness, best first
        assert sorted(h.hypothesis.class_id for h in m.results) == sorted(NAMES)
        assert sum(h.hypothesis.score for h in m.results) == pytest.approx(d.objectness, rel=1e-6)
        scores = [h.hypothesis.score for h in m.results]
        assert scores == sorted(scores, reverse=True)
        if d.has_position:
            assert m.results[0].pose.pose.position.z == pytest.approx(d.position_camera.z)


def test_detection3d_array_in_map_frame_rotates_the_camera_aligned_box():
    from katazuke.geometry import quat_to_matrix
    from katazuke.ros.conversions import detection3d_array_msg

    arr = _native_array(n_with_map=2)
    c, s = math.cos(0.4), math.sin(0.4)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.array(
        [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # optical -> body, then yaw
    out = detection3d_array_msg(arr, R)
    assert out.header.frame_id == "map" and out.header.stamp.sec == 7
    assert [m.id for m in out.detections] == ["0", "1"]    # the one without 3-D is left out
    for m in out.detections:
        d = arr.detections[int(m.id)]
        b = m.bbox
        assert (b.center.position.x, b.center.position.y, b.center.position.z) == pytest.approx(
            (d.position_map.x, d.position_map.y, d.position_map.z))
        assert (b.size.x, b.size.y, b.size.z) == pytest.approx((d.extent.x, d.extent.y, d.extent.z))
        o = b.center.orientation
        np.testing.assert_allclose(quat_to_matrix([o.x, o.y, o.z, o.w]), R, atol=1e-9)
        assert m.results[0].hypothesis.class_id == d.category
    cam = detection3d_array_msg(arr)                       # no transform: the camera frame
    assert cam.header.frame_id == "cam_opt" and len(cam.detections) == 2
    b = cam.detections[1].bbox
    assert b.center.position.x == pytest.approx(0.1) and b.center.orientation.w == 1.0
    with pytest.raises(ValueError, match="R_map_cam"):
        detection3d_array_msg(arr, np.eye(4))


def test_label_info_maps_class_ids_to_names():
    from katazuke.ros.conversions import label_info_msg

    m = label_info_msg(NAMES, 0.3)
    assert [(c.class_id, c.class_name) for c in m.class_map] == list(enumerate(NAMES))
    assert m.threshold == pytest.approx(0.3)


# ---------------------------------------------------------------- node
def _random_weights(path: Path) -> Path:
    import torch

    from katazuke.perception.detection.config import ModelConfig
    from katazuke.perception.detection.detector import save_weights
    from katazuke.perception.detection.model import ObjectnessNet

    torch.manual_seed(0)
    cfg = ModelConfig(in_channels=3)
    save_weights(path, ObjectnessNet(cfg), cfg, (320, 240))
    return path


def test_detector_node_publishes_three_arrays_that_agree(tmp_path):
    from geometry_msgs.msg import TransformStamped
    from sensor_msgs.msg import CameraInfo, Image
    from tf2_msgs.msg import TFMessage
    from vision_msgs.msg import Detection2DArray, Detection3DArray, LabelInfo

    from katazuke.geometry import quat_to_matrix
    from katazuke.ros.conversions import header, image_from_numpy, sec_to_stamp
    from katazuke.ros.probe import Probe
    from katazuke_interfaces.msg import DetectionArray

    weights = _random_weights(tmp_path / "random.pt")
    proc = start_node("detector", "-r", "__ns:=/dv", "-p", f"detector.weights:={weights}",
                      "-p", "detector.score_threshold:=0.0", "-p", "detector.max_detections:=5",
                      "-p", "map_frame:=odom")
    probe = Probe("vision_msgs_tester")
    try:
        native = probe.collect("/dv/detections", DetectionArray, "events")
        d2 = probe.collect("/dv/detections_2d", Detection2DArray, "events")
        d3 = probe.collect("/dv/detections_3d", Detection3DArray, "events")
        labels = probe.collect("/dv/detections/label_info", LabelInfo, "latched")
        pub_rgb = probe.publisher("/dv/head_camera/image_raw", Image, "sensor")
        pub_depth = probe.publisher("/dv/head_camera/depth/image_raw", Image, "sensor")
        pub_info = probe.publisher("/dv/head_camera/camera_info", CameraInfo, "sensor")
        pub_tf = probe.publisher("/tf_static", TFMessage, "latched")
        tf = TransformStamped()
        tf.header.frame_id, tf.child_frame_id = "odom", "cam_opt"
        tf.transform.translation.x, tf.transform.translation.y = 1.0, 2.0
        r = tf.transform.rotation            # 90 degrees about x: a box that visibly rotates
        r.x, r.w = math.sqrt(0.5), math.sqrt(0.5)
        pub_tf.publish(TFMessage(transforms=[tf]))
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        depth = np.full((240, 320), 2.0, np.float32)
        info = CameraInfo()
        info.width, info.height = 320, 240
        info.k = [200.0, 0.0, 160.0, 0.0, 200.0, 120.0, 0.0, 0.0, 1.0]
        t = [10.0]

        def publish() -> None:
            t[0] += 0.1
            info.header = header(sec_to_stamp(t[0]), "cam_opt")
            pub_info.publish(info)
            pub_rgb.publish(image_from_numpy(rgb, "rgb8", info.header))
            pub_depth.publish(image_from_numpy(depth, "32FC1", info.header))
            probe.spin_once(0.05)

        def stamp_key(m) -> tuple[int, int]:
            return (m.header.stamp.sec, m.header.stamp.nanosec)

        def matched():
            """The newest native array (with map positions) whose 2-D and 3-D twins arrived."""
            by2 = {stamp_key(m): m for _, m in d2}
            by3 = {stamp_key(m): m for _, m in d3}
            for _, n in reversed(native):
                k = stamp_key(n)
                if (n.detections and all(d.has_position_map for d in n.detections)
                        and k in by2 and k in by3):
                    return n, by2[k], by3[k]
            return None

        from katazuke.testing import wait_for

        assert wait_for(lambda: matched() is not None, timeout=40, spin=publish), stop_node(proc)
        n, m2, m3 = matched()
        assert labels, "no latched detections/label_info"
        lab = labels[-1][1]
        names = [c.class_name for c in lab.class_map]
        assert names == list(n.detections[0].category_names)
        assert [c.class_id for c in lab.class_map] == list(range(len(names)))
        assert lab.threshold == pytest.approx(0.0)
        assert m2.header.frame_id == "cam_opt" and m3.header.frame_id == "odom"
        assert len(m2.detections) == len(m3.detections) == len(n.detections)
        R = quat_to_matrix([r.x, r.y, r.z, r.w])
        for d, a, b in zip(n.detections, m2.detections, m3.detections):
            assert a.id == b.id == str(d.id)
            assert a.bbox.center.position.x == pytest.approx(d.x_min + d.width / 2, abs=1e-3)
            assert a.bbox.center.position.y == pytest.approx(d.y_min + d.height / 2, abs=1e-3)
            assert (a.bbox.size_x, a.bbox.size_y) == pytest.approx((d.width, d.height), abs=1e-3)
            c = b.bbox.center
            assert (c.position.x, c.position.y, c.position.z) == pytest.approx(
                (d.position_map.x, d.position_map.y, d.position_map.z), abs=1e-4)
            assert (b.bbox.size.x, b.bbox.size.y, b.bbox.size.z) == pytest.approx(
                (d.extent.x, d.extent.y, d.extent.z), abs=1e-5)
            o = c.orientation
            np.testing.assert_allclose(quat_to_matrix([o.x, o.y, o.z, o.w]), R, atol=1e-6)
            for hyps in (a.results, b.results):
                assert hyps[0].hypothesis.class_id == d.category
                assert sum(h.hypothesis.score for h in hyps) == pytest.approx(d.objectness, rel=1e-4)
        assert proc.poll() is None
    finally:
        probe.close()
        stop_node(proc)
