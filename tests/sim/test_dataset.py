"""The data factory: byte-identical output, resume, layout and labels."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from katazuke.sim.dataset import DatasetSpec, dataset_digest, generate_dataset, \
    generate_sequences

pytestmark = pytest.mark.sim


def _spec(out, workers, **kw):
    base = dict(out=str(out), profile="train", n=6, seed=4, workers=workers, shard_size=3,
                images_per_scene=3, n_objects=(10, 20))
    base.update(kw)
    return DatasetSpec(**base)


def test_same_seed_identical_bytes_any_workers_and_resume(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_dataset(_spec(a, 2), progress=False)
    generate_dataset(_spec(b, 1), progress=False)
    assert dataset_digest(a) == dataset_digest(b)
    # interrupt: shard 1 unfinished and a file of it missing; resume must redo only it
    shard1 = b / "shards" / "shard_00001"
    os.remove(shard1 / "done.json")
    os.remove(shard1 / "rgb" / "000004.png")
    shard0_mtime = os.path.getmtime(b / "shards" / "shard_00000" / "rgb" / "000000.png")
    generate_dataset(_spec(b, 2), progress=False)
    assert dataset_digest(a) == dataset_digest(b)
    assert os.path.getmtime(b / "shards" / "shard_00000" / "rgb" / "000000.png") == shard0_mtime
    # a different seed changes the images
    c = tmp_path / "c"
    generate_dataset(_spec(c, 1, n=3, seed=5), progress=False)
    from PIL import Image

    img_a = np.asarray(Image.open(a / "shards" / "shard_00000" / "rgb" / "000000.png"))
    img_c = np.asarray(Image.open(c / "shards" / "shard_00000" / "rgb" / "000000.png"))
    assert np.mean(img_a != img_c) > 0.3


def test_layout_and_annotations(tmp_path):
    from PIL import Image

    out = tmp_path / "d"
    merged = generate_dataset(_spec(out, 1, n=3, profile="test"), progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["image_size"] == [320, 240] and meta["n"] == 3 and meta["version"] == 1
    assert meta["categories"] == ["toy", "kitchenware", "stationery", "bottle", "box", "soft"]
    assert any(k["held_out"] for k in meta["kinds"])
    assert [c["id"] for c in merged["categories"]] == [1, 2, 3, 4, 5, 6]
    on_disk = json.loads((out / "annotations.json").read_text())
    assert len(on_disk["images"]) == 3
    for im in on_disk["images"]:
        rgb = np.asarray(Image.open(out / im["file_name"]))
        depth = np.asarray(Image.open(out / im["depth_file"]))
        mask = np.asarray(Image.open(out / im["mask_file"]))
        assert rgb.shape == (240, 320, 3) and rgb.dtype == np.uint8
        assert depth.dtype == np.uint16 and mask.dtype == np.uint16
        anns = [a for a in on_disk["annotations"] if a["image_id"] == im["id"]]
        assert sorted(np.unique(mask[mask > 0]).tolist()) == sorted(a["instance_id"]
                                                                   for a in anns)
        for a in anns:
            ys, xs = np.nonzero(mask == a["instance_id"])
            assert a["area"] == len(xs) >= 20
            assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                 ys.max() - ys.min() + 1]
            assert 0.1 <= a["visible_fraction"] <= 1.0
            assert 1 <= a["category_id"] <= 6 and isinstance(a["held_out_kind"], bool)
            # depth (mm) inside the mask is positive and consistent with the object pose
            T_cam_world = np.linalg.inv(np.array(im["T_world_cam"]))
            z = (T_cam_world @ np.array(a["T_world_obj"])[:, 3])[2]
            assert abs(np.median(depth[ys, xs]) / 1000.0 - z) < 0.15


def test_sequences_tum_ground_truth(tmp_path):
    from PIL import Image

    out = tmp_path / "s"
    (seq,) = generate_sequences(_spec(out, 1, n=5), num_sequences=1, progress=False)
    gt = np.loadtxt(os.path.join(seq, "groundtruth.txt"))
    assert gt.shape == (5, 8)
    assert np.allclose(np.linalg.norm(gt[:, 4:], axis=1), 1.0, atol=1e-5)
    step = np.linalg.norm(np.diff(gt[:, 1:4], axis=0), axis=1)
    assert np.all(step < 0.05) and np.all(step > 0)  # smooth, moving
    K = np.loadtxt(os.path.join(seq, "K.txt"))
    assert K.shape == (3, 3) and K[2, 2] == 1.0
    assert np.asarray(Image.open(os.path.join(seq, "depth", "000004.png"))).dtype == np.uint16
