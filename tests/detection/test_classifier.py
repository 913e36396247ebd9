"""The crop classifier: crops, fusion, weights files, training, and its use by the Detector."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from katazuke.errors import KatazukeError
from katazuke.perception.detection import Detector, DetectorConfig, ModelConfig
from katazuke.perception.detection.classifier import (ClassifierConfig, ClassifierTrainConfig,
                                                      CategoryRefiner, CropClassifier,
                                                      box_targets, crop_windows, decode_boxes,
                                                      depth_metres, fuse_probs, load_classifier,
                                                      make_crops, save_classifier, stage_loss,
                                                      train_classifier)
from katazuke.perception.detection.model import ObjectnessNet


def _scene():
    rgb = np.zeros((240, 320, 3), np.uint8)
    rgb[100:140, 150:190] = (255, 0, 0)
    depth = np.full((240, 320), 2.0, np.float32)
    depth[100:140, 150:190] = 1.0          # a 40 px box 1 m away on a 2 m background
    return rgb, depth


def test_crops_are_scale_normalised_and_depth_relative():
    rgb, depth = _scene()
    cfg = ClassifierConfig()
    x, sc = make_crops(rgb, depth, np.array([[150, 100, 190, 140.0]]), cfg)
    assert x.shape == (1, 4, 32, 32) and sc.shape == (1, 2)
    side = 40 * cfg.context + cfg.pad_px
    assert sc[0, 0].item() == pytest.approx(np.log(side), abs=1e-5)
    assert sc[0, 1].item() == pytest.approx(np.log(1.0), abs=1e-5)   # centre depth 1 m
    c = x[0, 3, 16, 16].item()
    edge = x[0, 3, 0, 0].item()
    assert c == pytest.approx(0.0, abs=1e-6)                     # object = centre depth
    assert edge == pytest.approx(3.0)                            # background +1 m, clipped at 3 units
    red = x[0, 0, 16, 16].item()
    assert red > x[0, 1, 16, 16].item()                          # red object in the middle
    # The same object twice as large in the image gives the same crop (up to resampling).
    big_rgb = np.zeros((480, 640, 3), np.uint8)
    big_rgb[200:280, 300:380] = (255, 0, 0)
    big_d = np.full((480, 640), 2.0, np.float32)
    big_d[200:280, 300:380] = 1.0
    cfg2 = ClassifierConfig(pad_px=0.0)
    a, _ = make_crops(rgb, depth, np.array([[150, 100, 190, 140.0]]), cfg2)
    b, _ = make_crops(big_rgb, big_d, np.array([[300, 200, 380, 280.0]]), cfg2)
    assert (a - b).abs().mean() < 0.05    # only boundary pixels differ


def test_depth_units_and_missing_readings():
    mm = np.array([[1000, 0], [2500, 65535]], np.uint16)
    np.testing.assert_allclose(depth_metres(mm), [[1.0, 0.0], [2.5, 65.535]])
    f = np.array([[1.0, np.nan], [np.inf, -1.0]], np.float32)
    np.testing.assert_allclose(depth_metres(f), [[1.0, 0.0], [0.0, 0.0]])
    rgb, depth = _scene()
    depth[110:130, 160:180] = 0.0      # no reading at the centre: the window's median is used
    _, sc = make_crops(rgb, depth, np.array([[150, 100, 190, 140.0]]), ClassifierConfig())
    assert np.isfinite(sc.numpy()).all()
    x0, _ = make_crops(rgb, depth, np.zeros((0, 4)), ClassifierConfig())
    assert x0.shape == (0, 4, 32, 32)


def test_fusion_endpoints_and_normalisation():
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(6), 5)
    b = rng.dirichlet(np.ones(6), 5)
    np.testing.assert_allclose(fuse_probs(a, b, 0.0), a, atol=1e-9)
    np.testing.assert_allclose(fuse_probs(a, b, 1.0), b, atol=1e-9)
    m = fuse_probs(a, b, 0.5)
    np.testing.assert_allclose(m.sum(1), 1.0)
    expected = np.sqrt(a * b) / np.sqrt(a * b).sum(1, keepdims=True)
    np.testing.assert_allclose(m, expected, atol=1e-9)


def test_refiner_touches_only_top_k_confident_boxes():
    torch.manual_seed(0)
    ref = CategoryRefiner(CropClassifier(ClassifierConfig()).eval(), fusion_weight=1.0, top_k=2,
                          min_score=0.2)
    rgb, depth = _scene()
    raw = {"boxes": np.array([[150, 100, 190, 140], [10, 10, 30, 30], [50, 50, 70, 80],
                              [200, 20, 220, 40.0]]),
           "scores": np.array([0.9, 0.5, 0.3, 0.1]),
           "category_probs": np.tile(np.eye(6)[2], (4, 1))}
    out = ref.refine(rgb, depth, raw)
    assert not np.allclose(out["category_probs"][:2], raw["category_probs"][:2])
    np.testing.assert_array_equal(out["category_probs"][2:], raw["category_probs"][2:])
    np.testing.assert_array_equal(raw["category_probs"], np.tile(np.eye(6)[2], (4, 1)))  # copy
    with pytest.raises(KatazukeError, match="fusion weight"):
        CategoryRefiner(ref.model, fusion_weight=1.5)


def test_box_targets_round_trip_and_loss_parts():
    rng = np.random.default_rng(4)
    cfg = ClassifierConfig()
    props = np.c_[rng.uniform(0, 200, (6, 2)), rng.uniform(5, 40, (6, 2))]
    props[:, 2:] += props[:, :2]
    gt = props + rng.normal(0, 3, props.shape)
    win = crop_windows(props, cfg)
    t = box_targets(win, gt)
    np.testing.assert_allclose(decode_boxes(win, t), gt, atol=1e-9)
    # The box of the proposal itself: zero centre offset, log(size / window side).
    t0 = box_targets(win, props)
    np.testing.assert_allclose(t0[:, :2], 0.0, atol=1e-12)
    out = torch.zeros(4, 11, requires_grad=True)
    total, parts = stage_loss(out, torch.tensor([0, 1, -1, -1]), torch.tensor([1.0, 1.0, 0.0, -1.0]),
                              torch.zeros(4, 4), torch.tensor([1.0, 1.0, 0.0, 0.0]), 6)
    assert parts["category"] == pytest.approx(np.log(6), rel=1e-5)
    assert parts["objectness"] == pytest.approx(np.log(2), rel=1e-5)   # 3 labelled, 1 ignored
    assert parts["box"] == 0.0
    total.backward()
    assert out.grad[3, 6] == 0.0 and out.grad[2, :6].abs().sum() == 0.0   # ignored / background


def test_second_stage_rescores_and_moves_boxes():
    torch.manual_seed(2)
    model = CropClassifier(ClassifierConfig(second_stage=True)).eval()
    rgb, depth = _scene()
    raw = {"boxes": np.array([[150, 100, 190, 140], [10, 10, 30, 30.0]]),
           "scores": np.array([0.9, 0.5]), "category_probs": np.tile(np.eye(6)[2], (2, 1))}
    ref = CategoryRefiner(model, 0.5, objectness_weight=1.0, box_regression=True)
    sel = ref.selected(raw)
    o = ref.infer(rgb, depth, raw["boxes"][sel])
    out = ref.refine(rgb, depth, raw)
    order = np.argsort(-o["p_obj"])
    np.testing.assert_allclose(out["scores"], o["p_obj"][order], rtol=1e-6)   # a = 1: p_obj alone
    np.testing.assert_allclose(out["boxes"], o["boxes"][order])
    half = ref.apply(raw, sel, o, 0.5, 0.5, False)
    np.testing.assert_allclose(np.sort(half["scores"]), np.sort(np.sqrt(raw["scores"] * o["p_obj"])))
    with pytest.raises(KatazukeError, match="second-stage"):
        CategoryRefiner(CropClassifier(ClassifierConfig()), 1.0, objectness_weight=0.5)


def test_weights_file_errors_name_the_file(tmp_path):
    with pytest.raises(KatazukeError, match="not found.*katazuke train classifier"):
        load_classifier(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(KatazukeError, match="corrupt"):
        load_classifier(bad)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(KatazukeError, match="not a katazuke crop classifier"):
        load_classifier(other)
    with pytest.raises(KatazukeError, match="not found"):
        Detector(DetectorConfig(classifier_weights=str(tmp_path / "nope.pt")))


def test_detector_uses_the_classifier_named_in_its_config(tmp_path):
    torch.manual_seed(1)
    clf = CropClassifier(ClassifierConfig(widths=(8, 8, 8), hidden=8)).eval()
    path = tmp_path / "c.pt"
    save_classifier(path, clf, fusion_weight=0.75)
    det = Detector(DetectorConfig(classifier_weights=str(path)))
    assert det.refiner is not None and det.refiner.fusion_weight == 0.75
    det2 = Detector(DetectorConfig(classifier_weights=str(path), classifier_fusion=0.25))
    assert det2.refiner.fusion_weight == 0.25
    assert Detector(DetectorConfig(classifier_weights="none")).refiner is None
    # In-memory networks (training, evaluation of a run) use no classifier unless named.
    model = ObjectnessNet(ModelConfig(in_channels=4)).eval()
    assert Detector(DetectorConfig(), model=model).refiner is None
    # With the classifier the boxes and objectness are unchanged; only categories move.
    rgb, depth = _scene()
    plain = Detector(DetectorConfig(score_threshold=0.0), model=model, input_size=(320, 240))
    both = Detector(DetectorConfig(score_threshold=0.0, classifier_weights=str(path),
                                   classifier_min_score=0.0), model=model, input_size=(320, 240))
    a, b = plain.predict_raw([rgb], [depth])[0], both.predict_raw([rgb], [depth])[0]
    np.testing.assert_allclose(a["boxes"], b["boxes"])
    np.testing.assert_allclose(a["scores"], b["scores"])
    assert not np.allclose(a["category_probs"][:32], b["category_probs"][:32])


def test_training_learns_colour_categories_and_resumes(synth_dataset, tmp_path):
    from katazuke.perception.detection.dataset import load_dataset

    ds = load_dataset(synth_dataset, depth=True)
    # Categories are colours here, so no channel shuffle.
    cfg = ClassifierTrainConfig(epochs=10, batch_size=16, seed=0, val_fraction=0.15,
                                num_threads=1, lr=5e-3, channel_shuffle_p=0.0,
                                model=ClassifierConfig(widths=(8, 16, 16), hidden=16))
    det_path = tmp_path / "det"
    # A (random) RGB-D detector file for choosing the fusion weight.
    from katazuke.perception.detection.detector import save_weights

    save_weights(det_path / "detector.pt", ObjectnessNet(ModelConfig(widths=(8, 16, 24, 32),
                                                                     head_width=16, in_channels=4)),
                 ModelConfig(widths=(8, 16, 24, 32), head_width=16, in_channels=4), (320, 240))
    res = train_classifier(ds, tmp_path / "run", cfg, detector_weights=str(det_path / "detector.pt"),
                           progress=False, log=lambda s: None)
    # Categories of the synthetic set are colours: the classifier must beat chance (1/6) clearly.
    assert res["val_accuracy"] > 0.5
    assert res["fusion_weight"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert res["objectness_weight"] == 0.0 and len(res["settings_table"]) == 5
    model, payload = load_classifier(tmp_path / "run" / "classifier.pt")
    assert payload["extra"]["train_images"] + payload["extra"]["val_images"] == len(ds)
    cfg8 = ClassifierTrainConfig(**{**cfg.__dict__, "epochs": 12})
    res2 = train_classifier(ds, tmp_path / "run", cfg8, detector_weights=str(det_path / "detector.pt"),
                            resume=True, progress=False, log=lambda s: None)
    assert res2["epochs_done"] == 12 and res2["steps"] > res["steps"]
    with pytest.raises(KatazukeError, match="needs depth"):
        train_classifier(load_dataset(synth_dataset), tmp_path / "x", cfg, progress=False,
                         log=lambda s: None)
    # Second stage: background windows join the batches; the settings grid covers objectness
    # weight and box regression too, and the loss falls.
    cfg2 = ClassifierTrainConfig(**{**cfg.__dict__, "epochs": 4,
                                    "model": ClassifierConfig(widths=(8, 16, 16), hidden=16,
                                                              second_stage=True)})
    res3 = train_classifier(ds, tmp_path / "run2", cfg2, detector_weights=str(det_path / "detector.pt"),
                            progress=False, log=lambda s: None)
    assert len(res3["settings_table"]) == 50             # 5 fusion x 5 objectness x box on/off
    import json
    hist = json.loads((tmp_path / "run2" / "history.json").read_text())
    assert hist["loss"][-1] < hist["loss"][0]
    ref = CategoryRefiner.from_file(tmp_path / "run2" / "classifier.pt")
    assert ref.objectness_weight == res3["objectness_weight"]
    assert ref.box_regression == res3["box_regression"]
    # Re-choosing the settings for the same detector on the same images gives the same answer.
    from katazuke.perception.detection.classifier import retune_settings

    again = retune_settings(ds, tmp_path / "run2" / "classifier.pt", str(det_path / "detector.pt"),
                            cfg2.seed, cfg2.val_fraction, log=lambda s: None)
    assert (again["fusion_weight"], again["objectness_weight"], again["box_regression"]) == \
        (res3["fusion_weight"], res3["objectness_weight"], res3["box_regression"])
    assert load_classifier(tmp_path / "run2" / "classifier.pt")[1]["extra"]["settings_detector"]


def test_rescored_detections_respect_the_score_threshold(tmp_path):
    torch.manual_seed(3)
    clf = CropClassifier(ClassifierConfig(widths=(8, 8, 8), hidden=8, second_stage=True)).eval()
    path = tmp_path / "s2.pt"
    save_classifier(path, clf, 0.5, objectness_weight=1.0, box_regression=True)
    model = ObjectnessNet(ModelConfig(in_channels=4)).eval()
    rgb, depth = _scene()
    det = Detector(DetectorConfig(score_threshold=0.3, classifier_weights=str(path)), model=model,
                   input_size=(320, 240))
    assert det.refiner.objectness_weight == 1.0 and det.refiner.box_regression
    raw = det.predict_raw([rgb], [depth])[0]
    assert (raw["scores"] >= 0.3).all()
    low = Detector(DetectorConfig(score_threshold=0.0, classifier_weights=str(path)), model=model,
                   input_size=(320, 240)).predict_raw([rgb], [depth])[0]
    # The same boxes, before the threshold: every one kept above is among them.
    assert len(low["scores"]) >= len(raw["scores"])
    assert set(np.round(raw["scores"], 9)) <= set(np.round(low["scores"], 9))
    # The evaluation path (both lists from one pass) gives exactly what predict_raw gives, and
    # the detector-alone list keeps the threshold too.
    from types import SimpleNamespace

    final, alone = det.predict_samples_pair([SimpleNamespace(rgb=rgb, depth=depth)])
    np.testing.assert_array_equal(final[0]["scores"], raw["scores"])
    np.testing.assert_array_equal(final[0]["boxes"], raw["boxes"])
    assert (alone[0]["scores"] >= 0.3).all()
    plain = Detector(DetectorConfig(score_threshold=0.3, classifier_weights="none"), model=model,
                     input_size=(320, 240)).predict_raw([rgb], [depth])[0]
    np.testing.assert_array_equal(alone[0]["scores"], plain["scores"])


def test_detector_proposals_join_the_batches_labelled_by_iou():
    from types import SimpleNamespace

    from katazuke.perception.detection.classifier import _batches

    rgb, depth = _scene()
    s = SimpleNamespace(rgb=rgb, depth=depth, boxes_xywh=np.array([[150.0, 100.0, 40.0, 40.0]]),
                        categories=[3])
    props = [np.array([[150.0, 100.0, 190.0, 140.0],     # the object itself
                       [152.0, 102.0, 192.0, 142.0],     # a slightly shifted detection of it
                       [10.0, 10.0, 50.0, 50.0],         # background
                       [160.0, 100.0, 220.0, 140.0]])]   # IoU 0.4-0.5: ignored by objectness
    cfg = ClassifierTrainConfig(negatives_per_object=0.0, proposals_per_image=4,
                                model=ClassifierConfig(widths=(8, 16, 16), hidden=16,
                                                       second_stage=True))
    b = _batches([s], cfg, np.random.default_rng(0), True, props)
    assert len(b["category"]) == 1 + 4
    # proposals come in a random order: pair each with its label through the box target
    got = sorted(zip(b["objectness"][1:].tolist(), b["category"][1:].tolist(),
                     b["box_mask"][1:].tolist()))
    assert got == [(-1.0, -1, 0.0), (0.0, -1, 0.0), (1.0, 3, 1.0), (1.0, 3, 1.0)]
    # proposals may train category and box only: their objectness is left out of the loss
    cfg3 = ClassifierTrainConfig(**{**cfg.__dict__, "proposal_objectness": False})
    b3 = _batches([s], cfg3, np.random.default_rng(0), True, props)
    assert b3["objectness"][0] == 1.0 and (b3["objectness"][1:] == -1.0).all()
    assert sorted(b3["category"][1:].tolist()) == [-1, -1, 3, 3]
    # fewer proposals than asked for: all of them; none at validation time
    cfg2 = ClassifierTrainConfig(**{**cfg.__dict__, "proposals_per_image": 9})
    assert len(_batches([s], cfg2, np.random.default_rng(0), True, props)["category"]) == 5
    assert len(_batches([s], cfg2, np.random.default_rng(0), False, props)["category"]) == 1


def test_continuation_from_a_classifier_file(synth_dataset, tmp_path):
    from katazuke.perception.detection.dataset import load_dataset

    ds = load_dataset(synth_dataset, depth=True)
    arch = ClassifierConfig(widths=(8, 16, 16), hidden=16, second_stage=True)
    start = CropClassifier(arch)
    save_classifier(tmp_path / "start.pt", start, 1.0)
    logs: list[str] = []
    cfg = ClassifierTrainConfig(epochs=1, batch_size=16, seed=0, val_fraction=0.15, num_threads=1,
                                max_images=16, proposals_per_image=3,
                                init_weights=str(tmp_path / "start.pt"), model=arch)
    # the committed detector (a random one finds nothing to propose)
    res = train_classifier(ds, tmp_path / "run", cfg, progress=False, log=logs.append)
    assert any("starting from the network" in m for m in logs)
    n_prop = int(next(m for m in logs if m.startswith("detector proposals:")).split()[2])
    assert n_prop >= res["proposal_crops_per_epoch"] > 0
    assert res["proposal_crops_per_epoch"] <= 3 * res["train_images"]
    # the epoch had the objects, one background window each and the proposals
    assert res["steps"] == (2 * res["train_objects"] + res["proposal_crops_per_epoch"]) // 16
    # it trained: the weights moved away from the starting network
    trained, _ = load_classifier(tmp_path / "run" / "classifier.pt")
    assert any(not torch.equal(a, b) for a, b in zip(trained.state_dict().values(),
                                                     start.state_dict().values()))
    bad = ClassifierTrainConfig(**{**cfg.__dict__, "model": ClassifierConfig(widths=(8, 16, 24),
                                                                             second_stage=True)})
    with pytest.raises(KatazukeError, match="architecture"):
        train_classifier(ds, tmp_path / "bad", bad, progress=False, log=lambda s: None)
