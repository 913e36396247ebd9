"""NDF training data (perception/ndf/shapes.py, data.py): exact occupancy, renders, shards."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.errors import InputError, KatazukeError
from katazuke.perception.ndf import NdfDataConfig
from katazuke.perception.ndf.data import load_split, make_instance, write_dataset
from katazuke.perception.ndf.shapes import CATEGORIES, sample_shape

TINY = NdfDataConfig(surface_points=256, views=2, view_points=128, image_size=48, queries=256,
                     segments=32)


def test_mug_occupancy_has_a_wall_a_cavity_and_a_handle():
    mug = sample_shape("mug", np.random.default_rng(0))
    r, h, t = mug.params["radius"], mug.params["height"], mug.params["wall"]
    hx = mug.handle.cx + mug.handle.stretch * mug.handle.ring_m
    pts = np.array([[r - t / 2, 0, h / 2],        # in the wall
                    [0, 0, h / 2],                # in the cavity
                    [0, 0, mug.params["bottom"] / 2],
                    [hx, 0, mug.handle.cz],       # in the handle
                    [r + 0.003, 0, mug.handle.cz],   # inside the handle's loop
                    [0, r + 0.004, h / 2]])       # beside the mug
    assert mug.inside(pts).tolist() == [True, False, True, True, False, False]


@pytest.mark.parametrize("category", CATEGORIES)
def test_surface_samples_lie_on_the_solids_boundary(category):
    d = make_instance(category, np.random.default_rng(1), TINY)
    shape = sample_shape(category, np.random.default_rng(1))
    S = d["surface"].astype(np.float64)
    offsets = 0.0015 * np.concatenate([np.eye(3), -np.eye(3)])
    occ = np.stack([shape.inside(S + o) for o in offsets], 1)
    # at least 95 %: tessellation moves a few samples off the exact solid
    assert np.mean(occ.any(1) & ~occ.all(1)) > 0.95
    # partial clouds: on the boundary up to the depth noise (< 3 mm sigma at 1.2 m) and only
    # the side facing the camera
    for view, eye in zip(d["partial"], d["eyes"]):
        occ = np.stack([shape.inside(view + 4 * o) for o in offsets], 1)
        assert np.mean(occ.any(1) & ~occ.all(1)) > 0.9
        to_eye = np.linalg.norm(view - eye, axis=1)
        assert to_eye.max() - to_eye.min() < np.ptp(S, axis=0).max() * 1.01
    occ_labels = d["occupancy"].astype(bool)
    assert 0.05 < occ_labels.mean() < 0.7
    assert np.array_equal(occ_labels, shape.inside(d["queries"].astype(np.float64)))


def test_dataset_is_byte_identical_for_a_seed_resumable_and_held_out(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for root in (a, b):
        assert write_dataset(root, "train", 2, 7, TINY, ("mug", "bottle")) == {
            "written": 4, "skipped": 0}
    write_dataset(c, "train", 2, 8, TINY, ("mug", "bottle"))
    write_dataset(a, "test", 2, 7, TINY, ("mug", "bottle"))
    files = sorted(p.relative_to(a / "train") for p in (a / "train").glob("*/*.npz"))
    assert len(files) == 4
    for f in files:
        assert (a / "train" / f).read_bytes() == (b / "train" / f).read_bytes()
        assert (a / "train" / f).read_bytes() != (c / "train" / f).read_bytes()
        assert (a / "train" / f).read_bytes() != (a / "test" / f).read_bytes()
    (b / "train" / files[0]).unlink()
    assert write_dataset(b, "train", 2, 7, TINY, ("mug", "bottle")) == {
        "written": 1, "skipped": 3}
    assert (a / "train" / files[0]).read_bytes() == (b / "train" / files[0]).read_bytes()
    with pytest.raises(KatazukeError, match="another seed or settings"):
        write_dataset(a, "train", 2, 8, TINY, ("mug",))
    with pytest.raises(InputError, match="unknown NDF category 'teapot'"):
        write_dataset(a, "train", 1, 7, TINY, ("teapot",))
    split = load_split(a, "train")
    assert split.categories == ["bottle", "bottle", "mug", "mug"]
    assert split.partial.shape == (4, 2, 128, 3) and split.occupancy.dtype == bool
    (a / "train" / files[0]).write_bytes(b"garbage")
    with pytest.raises(KatazukeError, match="corrupt.*delete it"):
        load_split(a, "train")
    with pytest.raises(KatazukeError, match="no NDF shards"):
        load_split(tmp_path / "none", "train")
