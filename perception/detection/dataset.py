"""COCO-style detection datasets (the simulator's ``annotations.json``) cached in memory."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from katazuke.errors import InputError
from katazuke.perception.detection.config import CATEGORIES

__all__ = ["Sample", "DetectionDataset", "load_dataset"]


@dataclass
class Sample:
    """One image and its annotations.

    Attributes:
        image_id: COCO image id.
        rgb: ``(H, W, 3)`` uint8.
        boxes_xywh: ``(N, 4)`` float64 visible boxes, pixels.
        categories: ``(N,)`` int64 category index 0..5 (COCO id - 1).
        held_out: ``(N,)`` bool, the object's kind was never in the training profile.
        kinds: object kind names.
        depth: ``(H, W)`` uint16 depth in millimetres (0 = no reading), or None when the
            dataset was loaded without depth.
    """

    image_id: int
    rgb: np.ndarray
    boxes_xywh: np.ndarray
    categories: np.ndarray
    held_out: np.ndarray
    kinds: list[str]
    depth: np.ndarray | None = None


@dataclass
class DetectionDataset:
    """Images decoded once into memory (uint8) with their boxes."""

    root: Path
    samples: list[Sample]
    meta: dict

    def __len__(self) -> int:
        return len(self.samples)


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _read_depth(path: Path, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        d = np.asarray(im)
    if d.shape != shape:
        raise ValueError(f"depth image is {d.shape}, colour image is {shape}")
    if d.dtype != np.uint16:
        d = d.astype(np.uint16)
    return d


def load_dataset(root: str | Path, max_images: int = 0, progress: bool = False,
                 depth: bool = False) -> DetectionDataset:
    """Load ``root/annotations.json`` and decode every RGB image (and depth image).

    Args:
        root: a dataset folder written by ``katazuke sim dataset`` (or the same layout).
        max_images: keep the first N images by id (0 = all).
        progress: show a tqdm bar while decoding.
        depth: also decode each image's ``depth_file`` (uint16 mm PNG) for RGB-D models.

    Raises:
        InputError: missing folder/annotations, unknown category names, unreadable images.
    """
    root = Path(root)
    ann_path = root / "annotations.json"
    if not ann_path.is_file():
        raise InputError(f"{ann_path} not found; generate a dataset with "
                         f"`katazuke sim dataset --out {root} ...` (annotations.json is written "
                         "when every shard is done)")
    try:
        coco = json.loads(ann_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{ann_path} is not valid JSON ({exc}); regenerate the dataset") from exc
    meta_path = root / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    cat_index: dict[int, int] = {}
    for c in coco.get("categories", []):
        if c["name"] not in CATEGORIES:
            raise InputError(f"{ann_path}: unknown category {c['name']!r}; expected {list(CATEGORIES)}")
        cat_index[int(c["id"])] = CATEGORIES.index(c["name"])
    images = sorted(coco.get("images", []), key=lambda im: im["id"])
    if max_images > 0:
        images = images[:max_images]
    by_image: dict[int, list[dict]] = {}
    for a in coco.get("annotations", []):
        by_image.setdefault(int(a["image_id"]), []).append(a)
    it = images
    if progress:
        from tqdm import tqdm

        it = tqdm(images, desc=f"loading {root.name}", unit="img")
    samples = []
    for im in it:
        path = root / im["file_name"]
        try:
            rgb = _read_png(path)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read image {path} ({exc}); regenerate the dataset") from exc
        dep = None
        if depth:
            if "depth_file" not in im:
                raise InputError(f"{ann_path}: image {im['id']} has no depth_file; this model needs "
                                 "RGB-D data (regenerate with `katazuke sim dataset`)")
            dpath = root / im["depth_file"]
            try:
                dep = _read_depth(dpath, rgb.shape[:2])
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read depth image {dpath} ({exc}); regenerate the "
                                 "dataset") from exc
        anns = [a for a in by_image.get(int(im["id"]), []) if not a.get("iscrowd", 0)]
        boxes = np.asarray([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
        cats = np.asarray([cat_index[int(a["category_id"])] for a in anns], np.int64)
        held = np.asarray([bool(a.get("held_out_kind", False)) for a in anns], bool)
        kinds = [str(a.get("kind", "")) for a in anns]
        samples.append(Sample(int(im["id"]), rgb, boxes, cats, held, kinds, dep))
    if not samples:
        raise InputError(f"{ann_path} lists no images")
    return DetectionDataset(root, samples, meta)
