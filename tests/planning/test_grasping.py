"""The grasp-planning seam, the geometric baseline and object-point segmentation.

Synthetic point clouds (box, cylinder, sphere on a floor) and a tiny pinhole renderer of a
box on a plane; one small simulator trial of the grasp bench (marked ``sim``).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from katazuke.errors import InputError, KatazukeError
from katazuke.planning.grasping import (DEFAULT_CATEGORIES, MAX_OPENING_M, GeometricGraspConfig,
                                        GeometricGraspPlanner, Grasp, GraspPlanner,
                                        NoGraspError, SegmentationError,
                                        UnsupportedCategoryError, segment_object_points)

RNG_SEED = 3


def _floor(centre_xy, half=0.3, n=3000, rng=None):
    rng = rng or np.random.default_rng(RNG_SEED)
    xy = np.asarray(centre_xy) + rng.uniform(-half, half, (n, 2))
    return np.c_[xy, np.zeros(n)]


def _box(centre_xy, ext, yaw=0.0, n=1500, rng=None):
    """Surface samples (top and sides, no bottom) of a box resting on z = 0."""
    rng = rng or np.random.default_rng(RNG_SEED)
    e = np.asarray(ext, float)
    P = rng.uniform(-0.5, 0.5, (n, 3)) * e
    k = rng.integers(0, 3, n)
    P[np.arange(n), k] = rng.choice([-0.5, 0.5], n) * e[k]
    P = P[P[:, 2] > -e[2] / 2 + 1e-6]
    c, s = math.cos(yaw), math.sin(yaw)
    P[:, :2] = P[:, :2] @ np.array([[c, s], [-s, c]])
    return P + [centre_xy[0], centre_xy[1], e[2] / 2]


def _cylinder(centre_xy, r, h, n=1500, rng=None):
    rng = rng or np.random.default_rng(RNG_SEED)
    a = rng.uniform(0, 2 * np.pi, n)
    side = rng.random(n) < 0.7
    rad = np.where(side, r, r * np.sqrt(rng.random(n)))
    z = np.where(side, rng.uniform(0, h, n), h)
    return np.c_[centre_xy[0] + rad * np.cos(a), centre_xy[1] + rad * np.sin(a), z]


def _sphere(centre_xy, r, n=1500, rng=None):
    rng = rng or np.random.default_rng(RNG_SEED)
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    P = v * r + [centre_xy[0], centre_xy[1], r]
    return P[P[:, 2] > 0.004]


def _scene_without(floor, obj, gap=0.004):
    from scipy.spatial import cKDTree

    d = cKDTree(obj).query(floor)[0]
    return floor[d > gap]


def _inside_xy(grasp: Grasp, pts: np.ndarray, pad: float = 0.005) -> bool:
    lo, hi = pts.min(axis=0) - pad, pts.max(axis=0) + pad
    p = grasp.position
    return bool(np.all(p >= lo) and np.all(p <= hi))


PLANNER = GeometricGraspPlanner()


@pytest.mark.parametrize("name,make,category", [
    ("box", lambda: _box((0.6, 0.1), (0.10, 0.04, 0.05), yaw=0.4), "box"),
    ("cylinder", lambda: _cylinder((0.6, -0.1), 0.025, 0.06), "toy"),
    ("sphere", lambda: _sphere((0.55, 0.0), 0.03), "soft"),
])
def test_grasps_inside_object_width_within_limits_top_down(name, make, category):
    obj = make()
    scene = _scene_without(_floor(obj.mean(axis=0)[:2]), obj)
    grasps = PLANNER.plan(obj, category, scene)
    assert grasps and all(isinstance(g, Grasp) for g in grasps)
    scores = [g.score for g in grasps]
    assert scores == sorted(scores, reverse=True)
    best = grasps[0]
    assert _inside_xy(best, obj)
    for g in grasps:
        assert 0 < g.width_m <= MAX_OPENING_M and 0.0 <= g.score <= 1.0
        assert g.planner == "geometric" and math.isnan(g.energy)
        R = g.T_base_grasp[:3, :3]
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-9)
        # fingertips (7 mm beyond the grasp point) stay above the floor
        assert g.position[2] - 0.0072 * abs(g.approach[2]) >= 0.0
    # short objects: top-down approach
    np.testing.assert_allclose(best.approach, [0, 0, -1], atol=1e-9)
    # the opening covers the object across the closing axis
    span = np.ptp((obj - best.position) @ best.closing_axis)
    assert best.width_m >= min(span, 0.99 * MAX_OPENING_M) - 0.01


def test_box_closes_across_its_narrow_axis():
    yaw = 0.7
    obj = _box((0.6, 0.0), (0.12, 0.03, 0.04), yaw=yaw)
    best = PLANNER.plan(obj, "box", _scene_without(_floor((0.6, 0.0)), obj))[0]
    narrow = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
    assert abs(best.closing_axis @ narrow) > 0.99
    assert 0.03 <= best.width_m <= 0.03 + 2 * 0.008 + 0.01
    # grasp depth: below the top, above the floor
    assert 0.0072 < best.position[2] < 0.04


def test_tall_object_gets_side_grasps_too():
    obj = _cylinder((0.6, 0.05), 0.03, 0.2)
    grasps = PLANNER.plan(obj, "bottle", _scene_without(_floor((0.6, 0.05)), obj))
    side = [g for g in grasps if g.kind == "side"]
    assert side and all(abs(g.approach[2]) < 1e-9 for g in side)
    # approach from the arm's side: towards +x for an object in front of the robot
    assert all(g.approach[0] > 0.8 for g in side)
    assert all(0.04 <= g.position[2] <= 0.18 for g in side)


def test_a_bottle_seen_from_the_front_only_gets_side_grasps():
    """One view of a bottle on a shelf board sees its front half: its footprint's narrow
    extent is the short depth seen; the closing axis (across the view) is fully seen."""
    obj = _cylinder((0.7, 0.0), 0.03, 0.2, n=4000)
    obj = obj[obj[:, 0] <= 0.7]                                 # the half facing the robot
    # looking down, the lower side shows only its nearest sliver (the shelf test case: 17 mm
    # of the 30 mm depth seen at the grasp height)
    obj = obj[(obj[:, 2] > 0.12) | (obj[:, 0] <= 0.7 - 0.02)]
    grasps = PLANNER.plan(obj, "bottle", _scene_without(_floor((0.7, 0.0)), obj))
    side = [g for g in grasps if g.kind == "side"]
    assert side, [g.kind for g in grasps]
    assert all(abs(g.closing_axis[0]) < 0.5 for g in side)    # closing across the view


def test_small_objects_get_angled_grasps_whose_palm_clears_them():
    """Top-down candidates pitched towards the arm's mount: the hand comes in over the
    object from the robot's side (under a shelf board the upright wrist has no room)."""
    from katazuke.planning.grasping import GripperBoxes

    obj = _box((0.7, 0.05), (0.043, 0.043, 0.043), yaw=0.3)
    grasps = PLANNER.plan(obj, "toy", _scene_without(_floor((0.7, 0.05)), obj))
    angled = [g for g in grasps if g.kind == "angled"]
    assert angled
    tops = [g.score for g in grasps if g.kind == "top"]
    assert min(tops) >= 0 and max(g.score for g in angled) < max(tops)   # after top-down
    radial = np.array([0.7 - 0.12, 0.05])
    radial /= np.linalg.norm(radial)
    pitches = set()
    g_boxes = GripperBoxes()
    for g in angled:
        a = g.approach
        pitch = math.degrees(math.acos(-a[2]))
        pitches.add(round(pitch))
        assert a[:2] @ radial > 0.5                                 # away from the robot
        assert abs(g.closing_axis[2]) < 1e-9                        # fingers level
        assert abs(g.closing_axis[:2] @ radial) < math.sin(math.radians(30.0)) + 1e-9
        # no object point inside the palm (grown by the planner's margin)
        P = (obj - g.position) @ g.T_base_grasp[:3, :3]
        lo, hi = g_boxes.boxes(g.width_m)[2]
        assert not np.any(np.all((P >= lo - 0.004) & (P <= hi + 0.004), axis=1))
        # the fingers still reach the object: the grasp point within 2 cm of its box
        assert np.all(g.position >= obj.min(0) - 0.02) and np.all(g.position <= obj.max(0) + 0.02)
    assert pitches == {45, 65}
    off = GeometricGraspPlanner(GeometricGraspConfig(angled_pitch_deg=()))
    assert all(g.kind != "angled"
               for g in off.plan(obj, "toy", _scene_without(_floor((0.7, 0.05)), obj)))
    with pytest.raises(KatazukeError, match="angled_pitch_deg"):
        GeometricGraspConfig(angled_pitch_deg=(90.0,))


def test_a_flat_object_on_a_noisy_floor_is_grasped_at_the_floor():
    """A 12 mm eraser-like bar with 2 mm depth noise on it and on the floor: the fingertips
    may touch the floor's returns (support_contact_m); without that every grasp collided."""
    rng = np.random.default_rng(1)
    obj = _box((0.6, 0.05), (0.075, 0.025, 0.012), yaw=0.4)
    obj = obj + rng.normal(0, 0.002, obj.shape)
    floor = _floor((0.6, 0.05))
    floor[:, 2] += rng.normal(0, 0.002, len(floor))
    scene = _scene_without(floor, obj)
    planner = GeometricGraspPlanner(GeometricGraspConfig(width_margin=0.012))  # manipulation.yaml
    grasps = planner.plan(obj, "stationery", scene)
    assert grasps[0].kind == "top" and grasps[0].position[2] < 0.012
    assert grasps[0].width_m < 0.06                          # across the 25 mm side
    with pytest.raises(NoGraspError, match="collision"):
        GeometricGraspPlanner(GeometricGraspConfig(width_margin=0.012, support_contact_m=0.0)
                              ).plan(obj, "stationery", scene)
    # the support's returns only: points higher beside the bar still block the fingers
    c = obj.mean(axis=0)
    ring = np.array([[c[0] + 0.035 * math.cos(a), c[1] + 0.035 * math.sin(a), z]
                     for a in np.linspace(0, 2 * np.pi, 120, endpoint=False)
                     for z in (0.015, 0.03)])
    with pytest.raises(NoGraspError, match="collision"):
        planner.plan(obj, "stationery", np.vstack([scene, ring]))


def test_object_wider_than_gripper_raises_no_grasp():
    obj = _box((0.6, 0.0), (0.14, 0.11, 0.05))
    with pytest.raises(NoGraspError, match="opening"):
        PLANNER.plan(obj, "box", _floor((0.6, 0.0)))


def test_collision_with_a_neighbour_removes_grasps():
    obj = _box((0.6, 0.0), (0.03, 0.03, 0.06))
    # walls right beside the object on both sides of every closing direction
    rng = np.random.default_rng(1)
    ring = []
    for a in np.linspace(0, 2 * np.pi, 400, endpoint=False):
        r = 0.03
        ring.append(np.c_[np.full(20, 0.6 + r * np.cos(a)), np.full(20, r * np.sin(a)),
                          rng.uniform(0.0, 0.08, 20)])
    with pytest.raises(NoGraspError, match="collision"):
        PLANNER.plan(obj, "box", np.concatenate(ring))


def test_unknown_category_and_supports():
    obj = _box((0.6, 0.0), (0.05, 0.03, 0.03))
    assert PLANNER.supports("box") and not PLANNER.supports("piano")
    with pytest.raises(UnsupportedCategoryError, match="piano"):
        PLANNER.plan(obj, "piano")
    narrow = GeometricGraspPlanner(GeometricGraspConfig(categories=("toy",)))
    with pytest.raises(UnsupportedCategoryError):
        narrow.plan(obj, "box")
    assert issubclass(UnsupportedCategoryError, KatazukeError)
    assert issubclass(NoGraspError, KatazukeError)


def test_categories_match_the_simulators():
    from katazuke.sim.objects import CATEGORIES

    assert tuple(DEFAULT_CATEGORIES) == tuple(CATEGORIES)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((5, 2)), r"\(N, 3\)"),
    (np.full((30, 3), np.nan), "non-finite"),
    (np.zeros((3, 3)), "at least"),
    ("points", r"\(N, 3\)"),
])
def test_bad_inputs_raise_clear_errors(bad, match):
    with pytest.raises(InputError, match=match):
        PLANNER.plan(bad, "box")


def test_bad_scene_points_and_category_type():
    obj = _box((0.6, 0.0), (0.05, 0.03, 0.03))
    with pytest.raises(InputError, match="scene_points_base"):
        PLANNER.plan(obj, "box", np.zeros((4, 4)))
    with pytest.raises(InputError, match="category"):
        PLANNER.plan(obj, 3)


def test_grasp_validates_its_fields():
    T = np.eye(4)
    with pytest.raises(InputError, match="width_m"):
        Grasp(T, 0.09, 0.5)
    with pytest.raises(InputError, match="score"):
        Grasp(T, 0.05, 1.5)
    with pytest.raises(InputError, match="rigid"):
        Grasp(np.diag([1.0, 1.0, -1.0, 1.0]), 0.05, 0.5)
    g = Grasp(T, 0.05, 0.5, planner="x")
    with pytest.raises(ValueError):
        g.T_base_grasp[0, 0] = 2.0  # read-only
    T_wb = np.eye(4)
    T_wb[:3, 3] = [1.0, 2.0, 0.0]
    np.testing.assert_allclose(g.transformed(T_wb).position, [1.0, 2.0, 0.0])
    np.testing.assert_allclose(g.pregrasp(0.1)[:3, 3], [0, 0, -0.1])


def test_a_new_planner_plugs_into_the_seam():
    class Centroid(GraspPlanner):
        name = "centroid"
        categories = ("toy",)

        def _plan(self, points, category, scene):
            T = np.diag([1.0, -1.0, -1.0, 1.0])
            T[:3, 3] = points.mean(axis=0)
            return [Grasp(T, 0.04, 0.2, planner=self.name), Grasp(T, 0.05, 0.9,
                                                                  planner=self.name)]

    gs = Centroid().plan(_sphere((0.5, 0.0), 0.02), "toy")
    assert [g.score for g in gs] == [0.9, 0.2]
    with pytest.raises(UnsupportedCategoryError):
        Centroid().plan(_sphere((0.5, 0.0), 0.02), "box")


# ------------------------------------------------------------------ segmentation

def _look_at_base(eye, target):
    """T_base_cam of an optical frame (z forward, x right, y down) at eye looking at target."""
    z = np.asarray(target, float) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z], axis=1)
    T[:3, 3] = eye
    return T


def _render_boxes_on_plane(T_base_cam, K, W, H, boxes):
    """Depth (m) and per-pixel box index (-1: plane or nothing) of axis-aligned boxes
    ``[(lo, hi), ...]`` above the plane z = 0 (ray casting, slab test)."""
    vv, uu = np.mgrid[0:H, 0:W]
    d_cam = np.stack([(uu - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1],
                      np.ones_like(uu, float)], -1).reshape(-1, 3)
    R, o = T_base_cam[:3, :3], T_base_cam[:3, 3]
    d = d_cam @ R.T                       # base-frame ray per unit optical depth
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d[:, 2] < 0, -o[2] / d[:, 2], np.inf)
        which = np.full(len(d), -1)
        for k, (lo, hi) in enumerate(boxes):
            t1, t2 = (lo - o) / d, (hi - o) / d
            tmin = np.nanmax(np.minimum(t1, t2), axis=1)
            tmax = np.nanmin(np.maximum(t1, t2), axis=1)
            hit = (tmax >= tmin) & (tmax > 0) & (tmin < t)
            t = np.where(hit, np.maximum(tmin, 0), t)
            which = np.where(hit, k, which)
    return t.reshape(H, W).astype(np.float32), which.reshape(H, W)  # optical z = t


def _render_box_on_plane(T_base_cam, K, W, H, lo, hi):
    depth, which = _render_boxes_on_plane(T_base_cam, K, W, H, [(lo, hi)])
    return depth, which == 0


def test_segmentation_recovers_box_points_from_a_synthetic_render():
    W, H = 320, 240
    K = np.array([[260.0, 0, W / 2], [0, 260.0, H / 2], [0, 0, 1]])
    T = _look_at_base(np.array([-0.1, 0.0, 1.2]), np.array([0.6, 0.0, 0.0]))
    lo, hi = np.array([0.55, -0.03, 0.0]), np.array([0.65, 0.03, 0.05])
    depth, mask = _render_box_on_plane(T, K, W, H, lo, hi)
    depth[0, :5] = np.nan                 # no-return pixels are skipped
    depth[1, :5] = np.inf
    vv, uu = np.nonzero(mask)
    box = np.array([uu.min(), vv.min(), uu.max() + 1, vv.max() + 1], float)
    obj, scene = segment_object_points(depth, K, box, T)
    pad = 0.003
    inside = np.all((obj >= lo - pad) & (obj <= hi + pad), axis=1)
    precision = inside.mean()
    # recall: box pixels whose point is above the plane band (the bottom 8 mm is support)
    from katazuke.planning.grasping import lift_pixels

    P, uv = lift_pixels(depth, K, T, slice(0, H), slice(0, W), 4.0)
    on_box = mask[uv[:, 1].astype(int), uv[:, 0].astype(int)] & (P[:, 2] > 0.008 + pad)
    recall = np.count_nonzero(on_box) and len(obj) / np.count_nonzero(on_box)
    assert precision >= 0.9 and min(recall, 1.0) >= 0.9, (precision, recall)
    assert len(scene) > 100 and np.all(np.linalg.norm(scene - obj.mean(0), axis=1) <= 0.4)
    assert np.median(np.abs(scene[:, 2])) < 0.002    # mostly the floor
    # and the planner grasps it across its 6 cm side
    g = PLANNER.plan(obj, "box", scene)[0]
    assert abs(g.closing_axis[1]) > 0.95 and g.width_m <= 0.08


def test_segmentation_skips_a_floating_occluder_in_front():
    """The robot's arm in front of the camera (a box floating above the floor, nearer the
    box-centre ray) is not the object: objects rest on the support."""
    W, H = 320, 240
    K = np.array([[260.0, 0, W / 2], [0, 260.0, H / 2], [0, 0, 1]])
    T = _look_at_base(np.array([-0.1, 0.0, 1.2]), np.array([0.6, 0.0, 0.0]))
    obj_box = (np.array([0.55, -0.03, 0.0]), np.array([0.65, 0.03, 0.05]))
    # a bar 0.37 m above the floor on the line of sight, hiding half the box
    arm = (np.array([0.37, -0.1, 0.37]), np.array([0.40, 0.1, 0.40]))
    depth, which = _render_boxes_on_plane(T, K, W, H, [obj_box, arm])
    vv, uu = np.nonzero(which == 0)
    box = np.array([uu.min(), vv.min(), uu.max() + 1, vv.max() + 1], float)
    crop = which[int(box[1]):int(box[3]), int(box[0]):int(box[2])]
    assert np.count_nonzero(crop == 1) > 50        # the bar really is inside the box
    obj, _ = segment_object_points(depth, K, box, T)
    assert np.all(obj[:, 2] < 0.06) and np.all(obj[:, 0] > 0.54)
    # without the resting rule the bar (nearer the box-centre ray) would win
    from katazuke.planning.grasping import SegmentationConfig

    floating, _ = segment_object_points(depth, K, box, T, SegmentationConfig(max_support_gap=10))
    assert np.all(floating[:, 2] > 0.3)


def test_segmentation_bad_inputs():
    K = np.array([[100.0, 0, 40], [0, 100.0, 30], [0, 0, 1]])
    depth = np.ones((60, 80), np.float32)
    with pytest.raises(InputError, match="box_xyxy"):
        segment_object_points(depth, K, [10, 10, 5, 20], np.eye(4))
    with pytest.raises(InputError, match="depth"):
        segment_object_points(np.ones(5), K, [1, 1, 5, 5], np.eye(4))
    with pytest.raises(InputError, match="K"):
        segment_object_points(depth, np.eye(2), [1, 1, 5, 5], np.eye(4))
    with pytest.raises(SegmentationError, match="valid depth"):
        segment_object_points(np.full((60, 80), np.nan, np.float32), K, [10, 10, 30, 30],
                              np.eye(4))


# ------------------------------------------------------------------ simulator

@pytest.mark.sim
def test_bench_lifts_an_object_with_the_geometric_planner():
    from katazuke.bench.grasp import run_trial
    from katazuke.sim.pick_place import make_eval_env

    env = make_eval_env(image_width=640, image_height=480)
    try:
        row = run_trial(env, "cube_box", 0, GeometricGraspPlanner())
    finally:
        env.close()
    assert row["failure"] is None and row["success"], row
    assert row["lift_m"] >= 0.05


def test_bench_summary_and_report_from_rows():
    from katazuke.bench.grasp import BARS, _summary, markdown
    from katazuke.bench.harness import evaluate_bars

    rows = [{"kind": "mug", "category": "kitchenware", "seed": s, "success": s != 1,
             "failure": None if s != 1 else "not lifted", "plan_ms": 5.0, "perceive_ms": 50.0}
            for s in range(4)]
    rows.append({"kind": "can", "category": "bottle", "seed": 0, "success": True,
                 "failure": None})
    summ = _summary(rows)
    assert summ["success_rate"] == 4 / 5 and summ["worst_category_rate"] == 3 / 4
    assert summ["by_category"]["kitchenware"] == {"successes": 3, "trials": 4, "rate": 0.75}
    assert summ["failures"] == {"not lifted": 1}
    result = {"config": {"seeds": [0, 1, 2, 3], "kinds": ["mug", "can"], "image": [640, 480],
                         "planner": "geometric"}, "planner": summ, "reference": summ}
    met = [e["met"] for e in evaluate_bars(result, BARS)]
    assert met == [False, False]
    text = markdown(result)
    assert "| kitchenware | 3/4 | 3/4 |" in text and "not lifted 1" in text
