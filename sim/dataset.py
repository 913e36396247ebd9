"""The data factory: domain-randomized RGB-D images with instance masks and COCO labels.

Layout (see ``katazuke sim dataset --help``)::

    DIR/meta.json
    DIR/shards/shard_00000/{rgb,depth,mask}/000000.png   # 100 images per shard
    DIR/shards/shard_00000/annotations.json              # the shard's labels
    DIR/shards/shard_00000/done.json                     # written last: shard finished
    DIR/annotations.json                                 # merged, once all shards are done

Determinism: image ``i`` belongs to scene ``i // images_per_scene``; each scene starts
with ``TidyEnv.reset(seed=f(seed, scene))`` and image ``i`` re-randomizes placement,
appearance, light and camera from ``SeedSequence([seed, i])``. Shards hold whole scenes,
so a shard's bytes do not depend on which worker made it or in which order: the same
seed gives byte-identical files with any number of workers, and resuming (finished
shards are skipped) gives the same dataset as an uninterrupted run.

Annotation rule: an object is labelled when it has at least ``MIN_VISIBLE_PIXELS`` (20)
visible pixels and a visible fraction of at least ``MIN_VISIBLE_FRACTION`` (0.1). The
visible fraction is measured on a 5 x 5 x 5 grid of points inside the object's bounding
box: a point counts as visible when its pixel shows the object, as hidden when the pixel
shows something nearer or the point falls outside the image; points whose pixel shows
something farther (they lie in empty parts of the box) are ignored. Objects left out
are set to 0 (background) in the mask, so mask ids always index ``instance_id``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from katazuke.sim.env import EnvConfig, SimError, TidyEnv
from katazuke.geometry import look_at, matrix_to_quat
from katazuke.sim.objects import CATEGORIES, KINDS

__all__ = ["DatasetSpec", "generate_dataset", "generate_sequences", "MIN_VISIBLE_PIXELS",
           "MIN_VISIBLE_FRACTION", "SHARD_SIZE", "visible_fraction", "dataset_digest",
           "sample_camera"]

SHARD_SIZE = 100
MIN_VISIBLE_PIXELS = 20
MIN_VISIBLE_FRACTION = 0.1
VERSION = 1


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate.

    Attributes:
        out: output directory.
        profile: ``none``, ``train`` or ``test``.
        n: number of images (frames per sequence in sequence mode).
        seed: master seed.
        workers: worker processes.
        image_size: ``(width, height)`` pixels.
        images_per_scene: images rendered from one scene build before rebuilding it
            (must divide ``shard_size``).
        shard_size: images per shard (100 in the published layout).
        n_objects: inclusive range of objects per scene.
        generator: text stored as ``meta.json["generator"]``.
    """

    out: str
    profile: str = "train"
    n: int = 1000
    seed: int = 0
    workers: int = 2
    image_size: tuple[int, int] = (320, 240)
    images_per_scene: int = 20
    shard_size: int = SHARD_SIZE
    n_objects: tuple[int, int] = (10, 40)
    generator: str = "katazuke"

    def check(self) -> None:
        """Raise :class:`SimError` naming the bad field."""
        if self.profile not in ("none", "train", "test"):
            raise SimError(f"profile {self.profile!r}: use none, train or test")
        if self.n < 1:
            raise SimError(f"n={self.n}: need at least 1 image")
        if self.seed < 0:
            raise SimError(f"seed={self.seed}: must be >= 0")
        if self.workers < 1:
            raise SimError(f"workers={self.workers}: need at least 1")
        if self.shard_size < 1 or self.images_per_scene < 1 or \
                self.shard_size % self.images_per_scene:
            raise SimError(f"images_per_scene={self.images_per_scene} must divide "
                           f"shard_size={self.shard_size}")
        w, h = self.image_size
        if w < 16 or h < 16:
            raise SimError(f"image_size={self.image_size}: need at least 16 x 16")

    def meta(self) -> dict:
        """The ``meta.json`` content."""
        return {"profile": self.profile, "seed": self.seed, "n": self.n,
                "image_size": list(self.image_size), "categories": list(CATEGORIES),
                "kinds": [{"name": k.name, "category": k.category, "held_out": k.held_out}
                          for k in KINDS],
                "shard_size": self.shard_size, "images_per_scene": self.images_per_scene,
                "n_objects": list(self.n_objects),
                "annotation_rule": {"min_visible_pixels": MIN_VISIBLE_PIXELS,
                                    "min_visible_fraction": MIN_VISIBLE_FRACTION},
                "depth_unit": "mm", "version": VERSION, "generator": self.generator}


def _rng(*words: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(w) for w in words])))


# ------------------------------------------------------------------ geometry helpers
def visible_fraction(T_world_obj: np.ndarray, extent: np.ndarray, uid: int, frame,
                     grid: int = 5, margin: float = 0.02) -> float:
    """Fraction of an object that is in view and not hidden (see the module docstring).

    Args:
        T_world_obj: ``(4, 4)`` bbox-centre pose.
        extent: ``(3,)`` bbox size, m.
        uid: the object's body uid (its segmentation value).
        frame: a :class:`~katazuke.sim.env.CameraFrame`.
        grid: points per axis.
        margin: depth tolerance, m.

    Returns:
        A value in [0, 1].
    """
    t = (np.arange(grid) + 0.5) / grid - 0.5
    g = np.stack(np.meshgrid(t, t, t, indexing="ij"), -1).reshape(-1, 3) * extent * 0.9
    pw = g @ T_world_obj[:3, :3].T + T_world_obj[:3, 3]
    T_cam_world = np.linalg.inv(frame.T_world_cam)
    pc = pw @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]
    h, w = frame.depth.shape
    z = pc[:, 2]
    front = z > 1e-3
    uv = (pc[front] @ frame.K.T)
    uv = uv[:, :2] / uv[:, 2:3]
    u = np.floor(uv[:, 0]).astype(int)
    v = np.floor(uv[:, 1]).astype(int)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    n_out = int((~front).sum() + (~inside).sum())
    u, v, zi = u[inside], v[inside], z[front][inside]
    seg = frame.segmentation[v, u]
    d = frame.depth[v, u]
    vis = seg == uid
    hid = (~vis) & (d < zi - margin)
    n_vis, n_hid = int(vis.sum()), int(hid.sum())
    den = n_vis + n_hid + n_out
    return float(n_vis / den) if den else 0.0


def sample_camera(env: TidyEnv, rng: np.random.Generator, targets: list[np.ndarray],
                  dist_range: tuple[float, float] = (0.4, 1.7), candidates: int = 4
                  ) -> np.ndarray:
    """A random viewpoint ``T_world_cam`` inside the room looking at one of ``targets``.

    Eye heights 0.4-1.8 m at ``dist_range`` metres from the target, kept inside the walls
    and out of the table, shelf and robot volumes. Of ``candidates`` such viewpoints the
    one that frames the most targets (centres projecting into the image within 3.5 m)
    wins, so few images show bare floor.
    """
    K = env.head_intrinsics()
    w, h_img = env.config.image_width, env.config.image_height
    pts = np.asarray(targets, dtype=np.float64).reshape(-1, 3)
    best, best_score = None, -1
    for _ in range(max(1, candidates)):
        T = _one_camera(env, rng, targets, dist_range)
        if len(pts) == 0:
            return T
        Tinv = np.linalg.inv(T)
        pc = pts @ Tinv[:3, :3].T + Tinv[:3, 3]
        z = pc[:, 2]
        ok = (z > 0.2) & (z < 3.5)
        uv = pc[ok] @ K.T
        uv = uv[:, :2] / uv[:, 2:3]
        score = int(np.sum((uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0)
                           & (uv[:, 1] < h_img)))
        if score > best_score:
            best, best_score = T, score
    return best


def _one_camera(env: TidyEnv, rng: np.random.Generator, targets: list[np.ndarray],
                dist_range: tuple[float, float]) -> np.ndarray:
    h = env.room.size / 2 - 0.15
    rx, ry = env.base_pose()[:2]
    for _ in range(100):
        if targets and rng.random() < 0.85:
            target = targets[int(rng.integers(len(targets)))] + rng.normal(0, 0.1, 3)
        else:
            target = np.array([rng.uniform(-h, h), rng.uniform(-h, h), rng.uniform(0, 0.8)])
        dist = rng.uniform(*dist_range)
        az = rng.uniform(-np.pi, np.pi)
        eye_z = rng.uniform(0.4, 1.8)
        horiz = np.sqrt(max(dist ** 2 - (eye_z - target[2]) ** 2, 0.09))
        eye = np.array([target[0] + horiz * np.cos(az), target[1] + horiz * np.sin(az), eye_z])
        if abs(eye[0]) > h or abs(eye[1]) > h:
            continue
        if env.robot is not None and np.hypot(eye[0] - rx, eye[1] - ry) < 0.45 and eye_z < 1.45:
            continue
        if _inside_furniture(env, eye):
            continue
        return look_at(eye, target, roll=float(rng.normal(0, 0.06)))
    return look_at((0.0, -h, 1.5), (0.0, 0.5, 0.3))


def _inside_furniture(env: TidyEnv, p: np.ndarray) -> bool:
    for body in (env.room.table, env.room.shelf):
        lo, hi = env.client.getAABB(body)
        if all(lo[k] - 0.1 <= p[k] <= hi[k] + 0.1 for k in range(3)):
            return True
    return False


# ----------------------------------------------------------------------- images
def _save_png(path: str, arr: np.ndarray) -> None:
    from PIL import Image

    tmp = path + ".tmp"
    Image.fromarray(arr).save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)


def _make_env(spec: DatasetSpec, cache_dir: str) -> TidyEnv:
    w, h = spec.image_size
    return TidyEnv(EnvConfig(profile=spec.profile, image_width=w, image_height=h,
                             n_objects=spec.n_objects, render_observation=False,
                             cache_dir=cache_dir, settle_steps=24))


def randomize_image(env: TidyEnv, seed: int, index: int) -> np.ndarray:
    """Re-randomize placement, appearance, light and camera for image ``index``.

    Returns:
        ``T_world_cam`` (4, 4) of the image's viewpoint.
    """
    env.scatter_objects(_rng(seed, 11, index), settle=False)
    for _ in range(8):  # objects start 2 mm above their support: ~20 ms to touch down
        env.client.stepSimulation()
    for k, r in enumerate(env.randomizers):
        r.rng = _rng(seed, 12, index, k)
        r.randomize(env)
    env.cameras.noise_rng = _rng(seed, 13, index)
    targets = [o.T_world_obj[:3, 3] for o in env.ground_truth_objects()
               if o.T_world_obj[2, 3] > -0.5]
    return sample_camera(env, _rng(seed, 14, index), targets)


def render_annotated(env: TidyEnv, T_world_cam: np.ndarray, image_id: int, file_stem: str,
                     seed: int):
    """Render one labelled image.

    Returns:
        ``(rgb, depth_mm, mask, image_record, annotations)`` with the COCO-style records
        (annotation ids are filled in at merge time).
    """
    frame = env.render(T_world_cam, env.head_intrinsics())
    h, w = frame.depth.shape
    depth = frame.depth
    depth_mm = np.where(np.isfinite(depth), np.round(depth * 1000.0), 0)
    depth_mm = np.clip(depth_mm, 0, 65535).astype(np.uint16)
    mask = np.zeros((h, w), np.uint16)
    anns = []
    cat_id = {c: i + 1 for i, c in enumerate(CATEGORIES)}
    inst = 0
    for o in env.ground_truth_objects():
        m = frame.segmentation == o.id
        area = int(m.sum())
        if area < MIN_VISIBLE_PIXELS:
            continue
        vf = visible_fraction(o.T_world_obj, o.extent, o.id, frame)
        if vf < MIN_VISIBLE_FRACTION:
            continue
        inst += 1
        mask[m] = inst
        ys, xs = np.nonzero(m)
        x0, y0 = int(xs.min()), int(ys.min())
        anns.append({"image_id": image_id, "category_id": cat_id[o.category],
                     "category": o.category, "kind": o.kind, "held_out_kind": o.held_out,
                     "instance_id": inst,
                     "bbox": [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1],
                     "area": area, "iscrowd": 0,
                     "T_world_obj": np.round(o.T_world_obj, 6).tolist(),
                     "visible_fraction": round(vf, 4)})
    rec = {"id": image_id, "file_name": f"{file_stem}/rgb/{image_id % 10**6:06d}.png",
           "depth_file": f"{file_stem}/depth/{image_id % 10**6:06d}.png",
           "mask_file": f"{file_stem}/mask/{image_id % 10**6:06d}.png",
           "width": w, "height": h, "K": np.round(frame.K, 6).tolist(),
           "T_world_cam": np.round(frame.T_world_cam, 6).tolist(), "seed": seed}
    return frame.rgb, depth_mm, mask, rec, anns


_WORKER_ENV: dict = {}


def _shard_job(args) -> int:
    """Worker entry: generate shard ``s`` (whole scenes), return the number of images."""
    spec, s = args
    key = (spec.profile, spec.image_size, spec.n_objects)
    env = _WORKER_ENV.get(key)
    if env is None:
        env = _WORKER_ENV[key] = _make_env(spec, os.path.join(spec.out, ".cache"))
    first, last = s * spec.shard_size, min((s + 1) * spec.shard_size, spec.n)
    stem = f"shards/shard_{s:05d}"
    root = os.path.join(spec.out, stem)
    for sub in ("rgb", "depth", "mask"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    images, anns = [], []
    for i in range(first, last):
        if (i - first) % spec.images_per_scene == 0:
            scene = i // spec.images_per_scene
            env.reset(seed=int(np.random.SeedSequence([spec.seed, 3, scene]).generate_state(1)[0]))
        T = randomize_image(env, spec.seed, i)
        rgb, depth, mask, rec, a = render_annotated(env, T, i, stem, spec.seed)
        name = f"{i % 10**6:06d}.png"
        _save_png(os.path.join(root, "rgb", name), rgb)
        _save_png(os.path.join(root, "depth", name), depth)
        _save_png(os.path.join(root, "mask", name), mask)
        images.append(rec)
        anns += a
    _write_json(os.path.join(root, "annotations.json"), {"images": images, "annotations": anns})
    _write_json(os.path.join(root, "done.json"),
                {"shard": s, "first": first, "count": last - first})
    return last - first


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, separators=(",", ":"), sort_keys=True)
    os.replace(tmp, path)


def _check_meta(out: str, meta: dict) -> None:
    path = os.path.join(out, "meta.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            old = json.load(fh)
        keys = ("profile", "seed", "n", "image_size", "shard_size", "images_per_scene",
                "n_objects", "version")
        diff = [k for k in keys if old.get(k) != meta.get(k)]
        if diff:
            raise SimError(f"{out} already holds a dataset with different {diff} "
                           f"({[old.get(k) for k in diff]}); use another --out or delete it")
    _write_json(path, meta)


def _run_jobs(fn: Callable, jobs: list, workers: int, total: int, done: int, desc: str,
              progress: bool) -> None:
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, unit="img", desc=desc, disable=not progress)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for j in jobs:
                bar.update(fn(j))
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            with ctx.Pool(min(workers, len(jobs))) as pool:
                for k in pool.imap_unordered(fn, jobs):
                    bar.update(k)
    finally:
        bar.close()


def generate_dataset(spec: DatasetSpec, progress: bool = True) -> dict:
    """Generate (or resume) an image dataset; return the merged annotations.

    Raises:
        SimError: invalid spec, or ``spec.out`` holds a dataset made with other settings.
    """
    spec.check()
    os.makedirs(spec.out, exist_ok=True)
    _check_meta(spec.out, spec.meta())
    n_shards = math.ceil(spec.n / spec.shard_size)
    todo, done = [], 0
    for s in range(n_shards):
        if os.path.exists(os.path.join(spec.out, "shards", f"shard_{s:05d}", "done.json")):
            done += min(spec.shard_size, spec.n - s * spec.shard_size)
        else:
            todo.append((spec, s))
    _run_jobs(_shard_job, todo, spec.workers, spec.n, done, f"dataset {spec.profile}", progress)
    images, anns = [], []
    for s in range(n_shards):
        with open(os.path.join(spec.out, "shards", f"shard_{s:05d}", "annotations.json"),
                  encoding="utf-8") as fh:
            part = json.load(fh)
        images += part["images"]
        anns += part["annotations"]
    for k, a in enumerate(anns):
        a["id"] = k + 1
    merged = {"images": images, "annotations": anns,
              "categories": [{"id": i + 1, "name": c} for i, c in enumerate(CATEGORIES)],
              "info": {"profile": spec.profile, "seed": spec.seed, "version": VERSION}}
    _write_json(os.path.join(spec.out, "annotations.json"), merged)
    return merged


# -------------------------------------------------------------------- sequences
def _trajectory(rng: np.random.Generator, n: int, fps: float, room_half: float):
    """Smooth camera path: a wobbly ellipse with varying height, looking at a moving target."""
    t = np.arange(n) / fps
    period = rng.uniform(25.0, 40.0)
    ph = rng.uniform(0, 2 * np.pi)
    a, b = rng.uniform(0.9, 1.6), rng.uniform(0.9, 1.6)
    w = 2 * np.pi * t / period + ph
    eye = np.stack([a * np.cos(w) + 0.15 * np.sin(3 * w), b * np.sin(w) + 0.1 * np.cos(2 * w),
                    1.1 + 0.25 * np.sin(2 * w + rng.uniform(0, 6))], 1)
    tgt = np.stack([1.5 * np.cos(w + rng.uniform(0.6, 1.4)), 1.5 * np.sin(w + 1.0),
                    0.35 + 0.2 * np.sin(w * 1.5)], 1)
    eye[:, :2] = np.clip(eye[:, :2], -room_half + 0.4, room_half - 0.4)
    return t, eye, tgt


def _seq_job(args) -> int:
    spec, s, fps = args
    key = (spec.profile, spec.image_size, spec.n_objects, "seq")
    env = _WORKER_ENV.get(key)
    if env is None:
        env = _WORKER_ENV[key] = _make_env(spec, os.path.join(spec.out, ".cache"))
    root = os.path.join(spec.out, "sequences", f"seq_{s:03d}")
    for sub in ("rgb", "depth"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    env.reset(seed=int(np.random.SeedSequence([spec.seed, 5, s]).generate_state(1)[0]))
    rng = _rng(spec.seed, 6, s)
    t, eye, tgt = _trajectory(rng, spec.n, fps, env.room.size / 2)
    K = env.head_intrinsics()
    gt, rgb_list, depth_list = [], [], []
    for k in range(spec.n):
        T = look_at(eye[k], tgt[k], roll=0.05 * np.sin(t[k]))
        env.cameras.noise_rng = _rng(spec.seed, 7, s, k)
        f = env.render(T, K)
        name = f"{k:06d}.png"
        _save_png(os.path.join(root, "rgb", name), f.rgb)
        d = np.where(np.isfinite(f.depth), np.round(f.depth * 1000.0), 0)
        _save_png(os.path.join(root, "depth", name), np.clip(d, 0, 65535).astype(np.uint16))
        q = matrix_to_quat(T[:3, :3])
        gt.append(f"{t[k]:.6f} " + " ".join(f"{v:.6f}" for v in (*T[:3, 3], *q)))
        rgb_list.append(f"{t[k]:.6f} rgb/{name}")
        depth_list.append(f"{t[k]:.6f} depth/{name}")
    np.savetxt(os.path.join(root, "K.txt"), K, fmt="%.6f")
    header = "# timestamp tx ty tz qx qy qz qw (T_world_cam, optical frame)\n"
    with open(os.path.join(root, "groundtruth.txt"), "w", encoding="utf-8") as fh:
        fh.write(header + "\n".join(gt) + "\n")
    with open(os.path.join(root, "rgb.txt"), "w", encoding="utf-8") as fh:
        fh.write("# timestamp filename\n" + "\n".join(rgb_list) + "\n")
    with open(os.path.join(root, "depth.txt"), "w", encoding="utf-8") as fh:
        fh.write("# timestamp filename (uint16 depth, millimetres, 0 = none)\n"
                 + "\n".join(depth_list) + "\n")
    _write_json(os.path.join(root, "done.json"), {"sequence": s, "frames": spec.n, "fps": fps})
    return spec.n


def generate_sequences(spec: DatasetSpec, num_sequences: int = 1, fps: float = 30.0,
                       progress: bool = True) -> list[str]:
    """Generate (or resume) ``num_sequences`` camera sequences of ``spec.n`` frames each.

    Each ``DIR/sequences/seq_XXX`` holds ``rgb/*.png``, ``depth/*.png`` (uint16 mm),
    ``K.txt``, ``groundtruth.txt`` (TUM: ``t tx ty tz qx qy qz qw`` of ``T_world_cam``),
    ``rgb.txt`` and ``depth.txt``. The scene is static within a sequence.

    Returns:
        The sequence directories.
    """
    spec.check()
    if num_sequences < 1:
        raise SimError(f"num_sequences={num_sequences}: need at least 1")
    os.makedirs(spec.out, exist_ok=True)
    meta = spec.meta()
    meta.update({"mode": "sequences", "num_sequences": num_sequences, "fps": fps})
    _check_meta(spec.out, meta)
    dirs = [os.path.join(spec.out, "sequences", f"seq_{s:03d}") for s in range(num_sequences)]
    todo = [(spec, s, fps) for s, d in enumerate(dirs)
            if not os.path.exists(os.path.join(d, "done.json"))]
    done = (num_sequences - len(todo)) * spec.n
    _run_jobs(_seq_job, todo, spec.workers, num_sequences * spec.n, done, "sequences", progress)
    return dirs


def dataset_digest(root: str) -> str:
    """SHA-256 over every file below ``root`` (paths and bytes), skipping ``.cache``."""
    h = hashlib.sha256()
    paths = []
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".cache"]
        paths += [os.path.join(dirpath, f) for f in files]
    for p in sorted(paths, key=lambda q: os.path.relpath(q, root)):
        h.update(os.path.relpath(p, root).encode())
        with open(p, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()
