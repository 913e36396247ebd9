"""Detector library: boxes/NMS properties, decode, metrics on hand-made cases, input errors,
invariance, weights loading errors, a tiny training run (synthetic data, unit test only)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from katazuke.errors import InputError, KatazukeError
from katazuke.perception.detection import Detector, DetectorConfig, ModelConfig, TrainConfig
from katazuke.perception.detection.boxes import giou_loss, iou_matrix, nms, xywh_to_xyxy
from katazuke.perception.detection.decode import category_scores_with_unknown, decode
from katazuke.perception.detection.evaluation import (ImageGT, ImagePred, average_precision,
                                                      format_report, kind_confusion,
                                                      evaluate)
from katazuke.perception.detection.model import STRIDE, ObjectnessNet
from katazuke.perception.detection.targets import build_targets
from katazuke.perception.detection.viz import confusion_plot


def _rand_boxes(rng, n):
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    return np.concatenate([xy, xy + wh], 1)


def test_iou_properties():
    rng = np.random.default_rng(0)
    a, b = _rand_boxes(rng, 7), _rand_boxes(rng, 5)
    m = iou_matrix(a, b)
    assert m.shape == (7, 5)
    assert np.all((m >= 0) & (m <= 1))
    np.testing.assert_allclose(iou_matrix(b, a), m.T)
    np.testing.assert_allclose(np.diag(iou_matrix(a, a)), 1.0)
    # Translation invariance.
    np.testing.assert_allclose(iou_matrix(a + 13.5, b + 13.5), m, atol=1e-12)


def test_giou_is_zero_for_identical_and_grows_with_distance():
    box = torch.tensor([[10.0, 10.0, 50.0, 40.0]])
    assert float(giou_loss(box, box)) == pytest.approx(0.0, abs=1e-6)
    far = [float(giou_loss(box + d, box)) for d in (5.0, 20.0, 60.0, 200.0)]
    assert all(x < y for x, y in zip(far, far[1:]))
    assert far[-1] > 1.0  # disjoint boxes go beyond IoU loss's ceiling of 1


def test_nms_properties():
    rng = np.random.default_rng(1)
    boxes = _rand_boxes(rng, 60)
    scores = rng.random(60)
    keep = nms(boxes, scores, 0.5)
    kept = boxes[keep]
    iou = iou_matrix(kept, kept)
    np.fill_diagonal(iou, 0)
    assert iou.max() <= 0.5                       # survivors overlap little
    assert np.all(np.diff(scores[keep]) <= 0)     # sorted by score
    assert keep[0] == np.argmax(scores)           # the best box always survives
    # Every dropped box overlaps a kept box with a higher score.
    for i in set(range(60)) - set(keep.tolist()):
        ov = iou_matrix(boxes[i:i + 1], kept)[0]
        assert np.any((ov > 0.5) & (scores[keep] >= scores[i]))
    assert len(nms(boxes, scores, 1.0)) == 60     # threshold 1 keeps all
    assert len(nms(np.zeros((0, 4)), np.zeros(0), 0.5)) == 0


def test_unknown_scores_sum_to_one():
    p = np.array([[0.9, 0.02, 0.02, 0.02, 0.02, 0.02], np.full(6, 1 / 6)])
    s = category_scores_with_unknown(p, 0.5)
    np.testing.assert_allclose(s.sum(1), 1.0)
    assert s[0, -1] == 0.0 and np.argmax(s[0]) == 0
    assert np.argmax(s[1]) == 6  # flat distribution -> unknown


def test_decode_recovers_target_boxes():
    """Head maps built from targets decode back to the same boxes (decode inverts encode)."""
    boxes = np.array([[20.0, 30.0, 40.0, 24.0], [150.0, 100.0, 60.0, 90.0]])
    t = build_targets(boxes, np.array([2, 4]), (60, 80), STRIDE)
    hm = torch.full((1, 1, 60, 80), -10.0)
    size = torch.zeros(1, 2, 60 * 80)
    off = torch.zeros(1, 2, 60 * 80)
    cat = torch.zeros(1, 6, 60 * 80)
    for j in range(2):
        i = int(t["index"][j])
        hm.view(-1)[i] = 5.0
        size[0, :, i] = torch.from_numpy(t["size"][j])
        off[0, :, i] = torch.from_numpy(t["offset"][j])
        cat[0, t["category"][j], i] = 10.0
    out = {"heatmap": hm, "size": size.view(1, 2, 60, 80), "offset": off.view(1, 2, 60, 80),
           "category": cat.view(1, 6, 60, 80)}
    r = decode(out, STRIDE, (1.0, 1.0), 0.5, 0.5, 10)[0]
    assert len(r["boxes"]) == 2
    got = r["boxes"][np.argsort(r["boxes"][:, 0])]
    np.testing.assert_allclose(got, xywh_to_xyxy(boxes), atol=1e-3)
    assert sorted(np.argmax(r["category_probs"], 1).tolist()) == [2, 4]


def _gt(boxes, cats, held=None):
    boxes = np.asarray(boxes, float)
    return ImageGT(boxes, np.asarray(cats), np.zeros(len(boxes), bool) if held is None else np.asarray(held))


def _pred_from_gt(g, shift=0.0, score=0.9):
    n = len(g.boxes_xywh)
    probs = np.eye(6)[g.categories]
    return ImagePred(xywh_to_xyxy(g.boxes_xywh) + shift, np.full(n, score), probs)


def test_metrics_perfect_and_shifted():
    rng = np.random.default_rng(2)
    gts = [_gt(np.c_[rng.uniform(0, 200, (4, 2)), rng.uniform(20, 60, (4, 2))],
               rng.integers(0, 6, 4)) for _ in range(6)]
    perfect = evaluate(gts, [_pred_from_gt(g) for g in gts])
    assert perfect["map50"] == pytest.approx(1.0)
    assert perfect["map"] == pytest.approx(1.0)
    assert perfect["recall50_all"] == pytest.approx(1.0)
    shifted = evaluate(gts, [_pred_from_gt(g, shift=8.0) for g in gts])
    assert shifted["map"] < perfect["map"]
    far = evaluate(gts, [_pred_from_gt(g, shift=500.0) for g in gts])
    assert far["map50"] == 0.0 and far["recall50_all"] == 0.0


def test_metrics_wrong_category_and_held_out_ignore():
    g = _gt([[0, 0, 50, 50], [100, 100, 40, 40]], [0, 1], held=[False, True])
    p = _pred_from_gt(g)
    m = evaluate([g], [p])
    # The held-out object is ignored for mAP (prediction on it is no false positive) ...
    assert m["per_category"]["toy"]["ap50"] == pytest.approx(1.0)
    assert np.isnan(m["per_category"]["kitchenware"]["ap50"])
    # ... but counts for class-agnostic held-out recall.
    assert m["recall50_held_out"] == pytest.approx(1.0) and m["n_gt_held_out"] == 1
    wrong = ImagePred(p.boxes_xyxy, p.scores, np.eye(6)[[3, 3]])
    m2 = evaluate([g], [wrong])
    assert m2["per_category"]["toy"]["ap50"] == 0.0
    assert m2["recall50_all"] == pytest.approx(1.0)  # recall is class-agnostic


def test_metrics_by_size_bucket():
    # One small (10 px) and one medium (30 px) toy; the small one is detected with the wrong
    # category, the medium one right.
    g = _gt([[0, 0, 10, 10], [100, 100, 30, 30]], [0, 0], held=[False, False])
    p = ImagePred(xywh_to_xyxy(g.boxes_xywh), np.array([0.9, 0.8]), np.eye(6)[[2, 0]])
    m = evaluate([g], [p])
    small, medium = m["by_size"]["small (< 16 px)"], m["by_size"]["medium (16-48 px)"]
    # The small box's wrong-category hypothesis must not count against the medium bucket.
    assert medium["map50"] == pytest.approx(1.0) and medium["n_gt_known"] == 1
    assert small["map50"] == 0.0 and small["n_gt_known"] == 1
    assert np.isnan(m["by_size"]["large (>= 48 px)"]["map50"])
    assert small["recall50_known_at_threshold"] == pytest.approx(1.0)
    # Overall: toy AP is hurt by the miss; stationery has a false positive but no ground truth.
    assert m["per_category"]["toy"]["ap50"] == pytest.approx(0.5, abs=0.01)


def test_kind_confusion_counts_and_report():
    g = ImageGT(np.array([[0, 0, 20, 20], [50, 50, 20, 20], [120, 120, 20, 20]], float),
                np.array([0, 5, 5]), np.array([False, False, True]), ["duck", "teddy", "beanbag"])
    # duck -> toy (right), teddy -> toy (wrong), beanbag: only a low-objectness box -> missed.
    p = ImagePred(xywh_to_xyxy(g.boxes_xywh), np.array([0.9, 0.8, 0.1]), np.eye(6)[[0, 0, 5]])
    m = evaluate([g], [p], score_threshold=0.3)
    kc = m["kind_confusion"]
    assert list(kc) == ["duck", "beanbag", "teddy"]  # category order, then name
    assert kc["duck"]["counts"]["toy"] == 1
    assert kc["teddy"]["counts"]["toy"] == 1 and kc["teddy"]["counts"]["soft"] == 0
    assert kc["beanbag"]["counts"]["missed"] == 1 and kc["beanbag"]["held_out"]
    rep = format_report(m)
    assert "| teddy | soft | 1 | 0 | 0 | 0 | 0 | 0 | 0 | 0.00 |" in rep
    assert "beanbag*" in rep and "small (< 16 px)" in rep
    # Without kinds there is no confusion table, and mismatched kinds are a clear error.
    assert "kind_confusion" not in evaluate([_gt(g.boxes_xywh, g.categories)], [p])
    with pytest.raises(InputError, match="one kind name per box"):
        kind_confusion([ImageGT(g.boxes_xywh, g.categories, g.held_out, ["duck"])], [p])


def test_confusion_plot_writes_png(tmp_path):
    g = ImageGT(np.array([[0, 0, 20, 20], [50, 50, 20, 20]], float), np.array([0, 5]),
                np.array([False, True]), ["duck", "beanbag"])
    p = ImagePred(xywh_to_xyxy(g.boxes_xywh), np.array([0.9, 0.8]), np.eye(6)[[0, 0]])
    path = confusion_plot(evaluate([g], [p])["kind_confusion"], tmp_path / "c.png")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="no kinds"):
        confusion_plot({}, tmp_path / "d.png")


def test_average_precision_hand_case():
    # 2 GT; predictions TP, FP, TP -> precision at recall 0.5 is 1, at recall 1 is 2/3.
    ap = average_precision(np.array([True, False, True]), np.array([0.9, 0.8, 0.7]), 2)
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101
    assert ap == pytest.approx(expected)


@pytest.fixture(scope="module")
def small_detector():
    torch.manual_seed(0)
    return Detector(DetectorConfig(score_threshold=0.0), model=ObjectnessNet(ModelConfig()).eval())


def test_input_errors(small_detector):
    with pytest.raises(InputError, match="uint8"):
        small_detector.detect(np.zeros((240, 320, 3), np.float32))
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        small_detector.detect(np.zeros((240, 320), np.uint8))
    with pytest.raises(InputError, match="numpy"):
        small_detector.detect([[1, 2, 3]])
    with pytest.raises(InputError, match="too small"):
        small_detector.detect(np.zeros((8, 8, 3), np.uint8))


def test_outputs_invariant_to_noop_transforms(small_detector):
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    a = small_detector.detect(img)
    b = small_detector.detect(img)                                   # twice
    c = small_detector.detect(np.asfortranarray(img))                # non-contiguous copy
    d = small_detector.detect(np.ascontiguousarray(img[:, :, ::-1][:, :, ::-1]))
    for other in (b, c, d):
        assert len(other) == len(a)
        for x, y in zip(a, other):
            np.testing.assert_allclose(x.box_xywh, y.box_xywh, atol=1e-5)
            assert x.objectness == pytest.approx(y.objectness, abs=1e-6)
            assert x.category == y.category
    for det in a[:5]:
        assert det.category_scores.shape == (7,)
        assert det.category_scores.sum() == pytest.approx(1.0)
        assert 0.0 <= det.objectness <= 1.0


def test_weights_missing_and_corrupt(tmp_path):
    with pytest.raises(KatazukeError, match="not found.*katazuke train detector"):
        Detector(DetectorConfig(weights=str(tmp_path / "nope.pt")))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a torch file")
    with pytest.raises(KatazukeError, match=r"bad\.pt is corrupt.*regenerate"):
        Detector(DetectorConfig(weights=str(bad)))
    other = tmp_path / "other.pt"
    torch.save({"hello": 1}, other)
    with pytest.raises(KatazukeError, match="not a katazuke detector"):
        Detector(DetectorConfig(weights=str(other)))


@pytest.mark.slow
def test_tiny_training_run_resumes_and_learns(synth_dataset, tmp_path):
    """Two epochs, then resume for a third: checkpoint continuity and loss going down."""
    from katazuke.perception.detection.dataset import load_dataset
    from katazuke.perception.detection.train import train

    ds = load_dataset(synth_dataset)
    cfg = TrainConfig(epochs=2, batch_size=8, seed=0, val_fraction=0.1, warmup_steps=5,
                      num_threads=1, model=ModelConfig(widths=(8, 16, 24, 32), head_width=16))
    r1 = train(ds, tmp_path, cfg, progress=False, log=lambda s: None)
    assert r1.weights.is_file() and r1.curves.is_file()
    n1 = len(r1.history["step"])
    cfg3 = TrainConfig(**{**cfg.__dict__, "epochs": 3})
    r2 = train(ds, tmp_path, cfg3, resume=True, progress=False, log=lambda s: None)
    assert len(r2.history["step"]) == n1 * 3 // 2
    losses = r2.history["total"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    det = Detector(DetectorConfig(weights=str(r2.weights)))
    assert det.input_size == (320, 240)
    assert isinstance(det.detect(ds.samples[0].rgb), list)


def test_crop_augmentation_keeps_pixel_scale(synth_dataset):
    """A centred native-resolution crop shifts boxes by the crop offset and keeps their size."""
    from katazuke.perception.detection.dataset import load_dataset
    from katazuke.perception.detection.train import augment_batch

    ds = load_dataset(synth_dataset, max_images=6)
    cfg = TrainConfig(crop=True, input_width=160, input_height=120, scale_jitter=0.0,
                      hflip=False, color_jitter=0.0, channel_shuffle_p=0.0)
    x, t = augment_batch(ds.samples, np.random.default_rng(0), cfg, augment=False)
    assert tuple(x.shape) == (6, 3, 120, 160)
    checked = 0
    for i, s in enumerate(ds.samples):
        inside = [(b, k) for k, b in enumerate(s.boxes_xywh)
                  if b[0] >= 80 and b[1] >= 60 and b[0] + b[2] <= 240 and b[1] + b[3] <= 180]
        got = {tuple(np.round(bx, 3)) for bx in t["box"][i][t["mask"][i] > 0].numpy()}
        for b, _ in inside:
            want = (b[0] - 80, b[1] - 60, b[0] - 80 + b[2], b[1] - 60 + b[3])
            assert tuple(np.round(np.array(want, np.float32), 3)) in got
            checked += 1
        # Pixels match the source crop exactly (no resampling at scale 1).
        from katazuke.perception.detection.model import normalize

        src = normalize(torch.from_numpy(s.rgb[None].copy()))[0, :, 60:180, 80:240]
        np.testing.assert_allclose(x[i].numpy(), src.numpy(), atol=1e-4)
    assert checked > 0


def test_multi_label_hypotheses_recover_second_choice():
    g = _gt([[0, 0, 50, 50]], [2])
    p = ImagePred(xywh_to_xyxy(g.boxes_xywh), np.array([0.9]),
                  np.array([[0.6, 0.0, 0.4, 0.0, 0.0, 0.0]]))
    assert evaluate([g], [p])["map50"] == 0.0               # top-1 label is wrong
    m = evaluate([g], [p], multi_label=True)                # the 2nd hypothesis is right
    assert m["map50"] == pytest.approx(1.0) and m["multi_label"]


# ------------------------------------------------------------------ RGB-D input
@pytest.fixture(scope="module")
def rgbd_detector():
    torch.manual_seed(0)
    model = ObjectnessNet(ModelConfig(widths=(8, 16, 24, 32), head_width=16, in_channels=4)).eval()
    return Detector(DetectorConfig(score_threshold=0.0, max_detections=20), model=model)


def test_rgbd_detector_needs_registered_depth(rgbd_detector):
    img = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert rgbd_detector.uses_depth
    with pytest.raises(InputError, match="RGB-D"):
        rgbd_detector.detect(img)
    with pytest.raises(InputError, match="register depth"):
        rgbd_detector.detect(img, np.ones((120, 160), np.float32))
    with pytest.raises(InputError, match="one channel"):
        rgbd_detector.detect(img, np.ones((240, 320, 3), np.float32))
    with pytest.raises(InputError, match="dtype"):
        rgbd_detector.detect(img, np.ones((240, 320), np.int64))


def test_rgbd_depth_units_and_invalid_readings_agree(rgbd_detector):
    """uint16 millimetres (16UC1) and float metres give the same detections; 0, NaN and inf
    all mean 'no reading'."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    mm = rng.integers(400, 4000, (240, 320)).astype(np.uint16)
    mm[:40] = 0
    m = mm.astype(np.float32) / 1000.0
    m_nan, m_inf = m.copy(), m.copy()
    m_nan[:40], m_inf[:40] = np.nan, np.inf
    ref = rgbd_detector.predict_raw([img], [mm])[0]
    for d in (m, m_nan, m_inf):
        got = rgbd_detector.predict_raw([img], [d])[0]
        np.testing.assert_allclose(got["scores"], ref["scores"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got["boxes"], ref["boxes"], rtol=1e-4, atol=1e-3)
    # Depth matters to an RGB-D model: a different depth image changes its output.
    other = rgbd_detector.predict_raw([img], [np.full_like(mm, 900)])[0]
    assert not np.allclose(other["scores"], ref["scores"])


def test_inverse_depth_channel():
    from katazuke.perception.detection.model import MAX_INV_DEPTH, inverse_depth

    d = np.array([[0.0, np.nan, np.inf, 2.0, 0.1]], np.float32)
    inv = inverse_depth(d).numpy()
    np.testing.assert_allclose(inv, [[0.0, 0.0, 0.0, 0.5, MAX_INV_DEPTH]])
    np.testing.assert_allclose(inverse_depth(np.array([[0, 2000]], np.uint16)).numpy(), [[0.0, 0.5]])


def test_dataset_loads_depth_and_names_a_missing_file(synth_dataset, tmp_path):
    import shutil

    from katazuke.perception.detection.dataset import load_dataset

    ds = load_dataset(synth_dataset, max_images=3, depth=True)
    for s in ds.samples:
        assert s.depth.dtype == np.uint16 and s.depth.shape == s.rgb.shape[:2]
        x, y, w, h = (int(v) for v in s.boxes_xywh[0])
        assert s.depth[y + h // 2, x + w // 2] == 1000      # objects stand at 1 m
    assert load_dataset(synth_dataset, max_images=1).samples[0].depth is None
    broken = tmp_path / "broken"
    shutil.copytree(synth_dataset, broken)
    (broken / "shards/shard_00000/depth/000000.png").unlink()
    with pytest.raises(InputError, match="depth image .*000000.png"):
        load_dataset(broken, max_images=2, depth=True)


def test_rgbd_augmentation_warps_depth_with_the_image(synth_dataset):
    """Without noise, the depth channel is the source at scale 1, and a zoom by s multiplies
    inverse depth by s (objects look s times nearer)."""
    from katazuke.perception.detection.dataset import load_dataset
    from katazuke.perception.detection.model import INV_DEPTH_MEAN, INV_DEPTH_STD
    from katazuke.perception.detection.train import augment_batch

    ds = load_dataset(synth_dataset, max_images=4, depth=True)
    base = dict(hflip=False, color_jitter=0.0, channel_shuffle_p=0.0, depth_noise=0.0,
                depth_holes=0, model=ModelConfig(in_channels=4))
    x, _ = augment_batch(ds.samples, np.random.default_rng(0), TrainConfig(scale_jitter=0.0, **base),
                         augment=False)
    assert tuple(x.shape) == (4, 4, 240, 320)
    inv = x[:, 3].numpy() * INV_DEPTH_STD + INV_DEPTH_MEAN
    want = 1000.0 / np.stack([s.depth for s in ds.samples]).astype(np.float64)
    np.testing.assert_allclose(inv, want, rtol=1e-5)
    cfg = TrainConfig(scale_jitter=0.3, **base)
    rng = np.random.default_rng(3)
    x2, _ = augment_batch(ds.samples, rng, cfg, augment=True)
    from katazuke.perception.detection.train import _affine_params

    s = _affine_params(np.random.default_rng(3), 4, cfg, (1.0, 1.0))[:, 0]
    inv2 = x2[:, 3].numpy() * INV_DEPTH_STD + INV_DEPTH_MEAN
    for i in range(4):
        vals = inv2[i][inv2[i] > 0]
        # The 1 m objects (inverse depth 1) now read s: the largest value present.
        assert vals.max() == pytest.approx(s[i], rel=1e-4)


@pytest.mark.slow
def test_rgbd_training_run_saves_an_rgbd_detector(synth_dataset, tmp_path):
    from katazuke.perception.detection.dataset import load_dataset
    from katazuke.perception.detection.train import train

    ds = load_dataset(synth_dataset, depth=True)
    cfg = TrainConfig(epochs=2, batch_size=8, seed=0, val_fraction=0.1, warmup_steps=5,
                      num_threads=1, model=ModelConfig(widths=(8, 16, 24, 32), head_width=16,
                                                       in_channels=4))
    r = train(ds, tmp_path, cfg, progress=False, log=lambda s: None)
    losses = r.history["total"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    det = Detector(DetectorConfig(weights=str(r.weights)))
    assert det.uses_depth
    assert isinstance(det.detect(ds.samples[0].rgb, ds.samples[0].depth), list)
    with pytest.raises(KatazukeError, match="depth"):
        train(load_dataset(synth_dataset), tmp_path / "no_depth", cfg, progress=False,
              log=lambda s: None)
