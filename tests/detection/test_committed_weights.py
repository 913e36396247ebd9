"""The committed weights load and reproduce their recorded metrics on a small fixed set.

The set (20 test-profile images, seed 12345) is generated here from the simulator; the
expected figures live in tests/detection/data/regression_metrics.json and were measured with
``python -P tests/detection/test_committed_weights.py --record`` right after training.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

EXPECTED = Path(__file__).resolve().parent / "data" / "regression_metrics.json"
SPEC = {"profile": "test", "n": 20, "seed": 12345, "workers": 1, "images_per_scene": 20}
TOLERANCE = 0.03


def measure(tmp: Path) -> dict:
    from katazuke.perception.detection.config import DetectorConfig
    from katazuke.perception.detection.dataset import load_dataset
    from katazuke.perception.detection.detector import Detector
    from katazuke.perception.detection.evaluation import ImageGT, ImagePred, evaluate
    from katazuke.sim.dataset import DatasetSpec, generate_dataset

    generate_dataset(DatasetSpec(out=str(tmp / "fixed"), **SPEC), progress=False)
    det = Detector(DetectorConfig(score_threshold=0.05))    # committed detector + classifier
    ds = load_dataset(tmp / "fixed", depth=det.uses_depth)
    raws, raws_det = det.predict_samples_pair(ds.samples)
    gts = [ImageGT(s.boxes_xywh, s.categories, s.held_out) for s in ds.samples]

    def score(rs):
        return evaluate(gts, [ImagePred(r["boxes"], r["scores"], r["category_probs"]) for r in rs],
                        score_threshold=DetectorConfig().score_threshold)

    m, with_clf = score(raws_det), score(raws)
    out = {k: m[k] for k in ("map50", "map", "agnostic_ap50", "recall50_all", "recall50_known",
                             "recall50_held_out", "recall50_all_at_threshold", "n_gt_all")}
    out["map50_with_classifier"] = with_clf["map50"] if det.refiner is not None else float("nan")
    out["map_with_classifier"] = with_clf["map"] if det.refiner is not None else float("nan")
    return out


@pytest.mark.sim
@pytest.mark.slow
def test_committed_weights_reproduce_recorded_metrics(tmp_path):
    import torch

    torch.set_num_threads(2)
    expected = json.loads(EXPECTED.read_text())
    got = measure(tmp_path)
    assert got["n_gt_all"] == expected["n_gt_all"], "the fixed set changed: re-record (see docstring)"
    for k, v in expected.items():
        if k == "n_gt_all" or v != v:
            continue
        assert got[k] == pytest.approx(v, abs=TOLERANCE), (k, got[k], v)


def test_committed_weights_load():
    from katazuke.perception.detection import DEFAULT_WEIGHTS, Detector

    assert DEFAULT_WEIGHTS.is_file(), f"{DEFAULT_WEIGHTS} missing: see weights/README.md"
    assert DEFAULT_WEIGHTS.stat().st_size < 5_000_000
    det = Detector()
    assert det.input_size == (320, 240)
    assert det.metadata.get("train_images", 0) > 0


def test_committed_classifier_loads_and_is_used_by_default():
    from katazuke.perception.detection import Detector
    from katazuke.perception.detection.classifier import DEFAULT_CLASSIFIER_WEIGHTS

    assert DEFAULT_CLASSIFIER_WEIGHTS.is_file(), f"{DEFAULT_CLASSIFIER_WEIGHTS} missing: see weights/README.md"
    assert DEFAULT_CLASSIFIER_WEIGHTS.stat().st_size < 2_000_000
    ref = Detector().refiner
    assert ref is not None and 0.0 <= ref.fusion_weight <= 1.0
    assert ref.metadata.get("train_images", 0) > 0 and ref.metadata.get("steps", 0) > 0


if __name__ == "__main__" and "--record" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        res = measure(Path(d))
    EXPECTED.parent.mkdir(parents=True, exist_ok=True)
    EXPECTED.write_text(json.dumps(res, indent=2) + "\n")
    print(res)
