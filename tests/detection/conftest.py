"""Fixtures for detector tests: a tiny synthetic COCO dataset (unit tests only).

Coloured rectangles and ellipses on striped/noisy backgrounds, in the simulator's dataset
layout (annotations.json + rgb PNGs). Never used to train shipped weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

CATS = ["toy", "kitchenware", "stationery", "bottle", "box", "soft"]


def make_synthetic_dataset(root: Path, n: int, seed: int, w: int = 320, h: int = 240,
                           held_out_every: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "shards/shard_00000/rgb").mkdir(parents=True, exist_ok=True)
    (root / "shards/shard_00000/depth").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    yy, xx = np.mgrid[:h, :w]
    aid = 1
    for i in range(n):
        base = rng.integers(40, 200, 3)
        img = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255)
        period = rng.integers(8, 40)
        img += 25 * ((xx // period) % 2)[..., None]
        img = np.clip(img, 0, 255).astype(np.uint8)
        # Depth (mm): a floor sloping from 1.5 m (bottom) to 3.5 m (top); objects stand at 1 m.
        depth = (3500 - 2000 * yy / h).astype(np.uint16)
        for k in range(int(rng.integers(2, 6))):
            c = int(rng.integers(0, 6))
            bw, bh = int(rng.integers(18, 70)), int(rng.integers(18, 70))
            x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            colour = np.array([[255, 0, 0], [0, 200, 0], [0, 0, 255], [255, 255, 0],
                               [255, 0, 255], [0, 255, 255]][c])
            if c % 2 == 0:
                m = (xx >= x0) & (xx < x0 + bw) & (yy >= y0) & (yy < y0 + bh)
            else:
                m = (((xx - x0 - bw / 2) / (bw / 2)) ** 2 + ((yy - y0 - bh / 2) / (bh / 2)) ** 2) <= 1
            img[m] = colour
            depth[m] = 1000
            ys, xs = np.nonzero(m)
            bx0, by0 = int(xs.min()), int(ys.min())
            held = bool(held_out_every and k % held_out_every == 1)
            anns.append({"id": aid, "image_id": i + 1, "category_id": c + 1, "category": CATS[c],
                         "kind": f"{CATS[c]}_{'held' if held else 'train'}", "held_out_kind": held,
                         "instance_id": k + 1,
                         "bbox": [bx0, by0, int(xs.max()) + 1 - bx0, int(ys.max()) + 1 - by0],
                         "area": int(m.sum()), "iscrowd": 0, "visible_fraction": 1.0})
            aid += 1
        name = f"shards/shard_00000/rgb/{i:06d}.png"
        Image.fromarray(img).save(root / name)
        dname = f"shards/shard_00000/depth/{i:06d}.png"
        Image.fromarray(depth).save(root / dname)
        images.append({"id": i + 1, "file_name": name, "depth_file": dname, "width": w,
                       "height": h})
    coco = {"images": images, "annotations": anns,
            "categories": [{"id": j + 1, "name": c} for j, c in enumerate(CATS)]}
    (root / "annotations.json").write_text(json.dumps(coco))
    (root / "meta.json").write_text(json.dumps({"profile": "synthetic", "seed": seed, "n": n,
                                                "image_size": [w, h], "categories": CATS}))
    return root


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("synth"), 48, seed=1, held_out_every=3)
