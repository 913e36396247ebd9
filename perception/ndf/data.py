"""NDF training data: procedural instances, occupancy labels, rendered partial clouds.

One instance = one ``.npz`` file (a shard) under ``ROOT/<split>/<category>/<index>.npz``:

* ``surface`` ``(S, 3)`` float32: points uniform on the surface (the full cloud).
* ``partial`` ``(V, P, 3)`` float32: clouds a virtual depth camera sees from V random
  viewpoints on the sphere around the object (ray cast against the mesh, grazing returns
  and a share of the rest dropped, depth noise of ``0.5 mm + depth_noise_m * d^2``),
  each resampled to P points.
* ``eyes`` ``(V, 3)`` float32: the camera centres.
* ``queries`` ``(Q, 3)`` float32 and ``occupancy`` ``(Q,)`` uint8: points near the surface
  (normal offsets) and uniform in the padded box, labelled by the exact inside test.
* ``params`` (JSON text) and ``category``.

All in the object frame (base centre at the origin, +z up), metres. Instance ``i`` of a
category draws everything from ``np.random.default_rng([seed, split_id, category_id, i])``
(``train`` = 0, ``test`` = 1: the held-out instances never share a seed with training), and
files are written without timestamps, so a seed gives byte-identical shards, and an
interrupted run resumes by skipping the shards that exist.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from katazuke.config import config_to_dict
from katazuke.errors import InputError, KatazukeError
from katazuke.perception.ndf.config import NdfDataConfig
from katazuke.perception.ndf.shapes import CATEGORIES, Shape, sample_shape

__all__ = ["SPLITS", "NdfSplit", "make_instance", "render_partial", "write_dataset",
           "load_split", "save_npz_deterministic"]

#: Split name -> the seed stream it draws from.
SPLITS = {"train": 0, "test": 1}
_MIN_VIEW_HITS = 32


def save_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez``-compatible file with fixed zip timestamps, written atomically."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            b = io.BytesIO()
            np.lib.format.write_array(b, np.asanyarray(arr), allow_pickle=False)
            zf.writestr(info, b.getvalue())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def _sample_surface(shape: Shape, n: int, segments: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 3)`` points uniform on the union's outer surface (each part's samples that lie
    inside another part are dropped)."""
    parts = shape.parts(segments)
    body = Shape(shape.category, shape.profile, None, {})
    pts = []
    for k, (V, F) in enumerate(parts):
        tri = V[F]
        area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        m = 3 * n * len(parts)
        idx = rng.choice(len(F), size=m, p=area / area.sum())
        a, b = rng.random((2, m, 1))
        flip = (a + b) > 1
        a, b = np.where(flip, 1 - a, a), np.where(flip, 1 - b, b)
        p = tri[idx, 0] + a * (tri[idx, 1] - tri[idx, 0]) + b * (tri[idx, 2] - tri[idx, 0])
        w = area.sum()
        if shape.handle is not None:   # drop what is buried in the other part (handle ends)
            keep = ~(shape.handle.inside(p) if k == 0 else body.inside(p))
            w *= keep.mean()
            p = p[keep]
        pts.append((p, w))
    total = sum(w for _, w in pts)
    out = [p[:int(round(n * w / total))] for p, w in pts]
    P = np.concatenate(out)
    if len(P) < n:
        P = np.concatenate([P, pts[0][0][len(out[0]):len(out[0]) + n - len(P)]])
    return P[:n]


def render_partial(scene: object, centre: np.ndarray, radius: float, cfg: NdfDataConfig,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One noisy partial cloud of a mesh from a random viewpoint.

    Args:
        scene: an ``open3d.t.geometry.RaycastingScene`` holding the mesh.
        centre: ``(3,)`` point the camera looks at, m.
        radius: the object's bounding radius, m (sets the field of view).
        cfg: camera and noise settings.
        rng: draws the viewpoint, the noise and the resampling.

    Returns:
        ``(cfg.view_points, 3)`` points and the ``(3,)`` camera centre, m.

    Raises:
        KatazukeError: ten viewpoints in a row saw fewer than 32 returns.
    """
    import open3d as o3d

    for _ in range(10):
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        dist = rng.uniform(*cfg.distance_m)
        eye = centre + dist * d
        fwd = -d
        up0 = np.array([0.0, 0.0, 1.0]) if abs(fwd[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        right = np.cross(fwd, up0)
        right /= np.linalg.norm(right)
        up = np.cross(right, fwd)
        half = np.arctan(1.15 * radius / dist)
        s = np.tan(half) * np.linspace(-1.0, 1.0, cfg.image_size)
        U, Vv = np.meshgrid(s, s)
        dirs = fwd + U[..., None] * right + Vv[..., None] * up
        dirs = (dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)).reshape(-1, 3)
        rays = np.concatenate([np.broadcast_to(eye, dirs.shape), dirs], 1).astype(np.float32)
        hit = scene.cast_rays(o3d.core.Tensor(rays))
        t = hit["t_hit"].numpy().astype(np.float64)
        n = hit["primitive_normals"].numpy().astype(np.float64)
        cos = np.abs((n * dirs).sum(1))
        ok = np.isfinite(t) & (cos >= cfg.grazing_cos) & (rng.random(len(t)) >= cfg.dropout)
        if ok.sum() < _MIN_VIEW_HITS:
            continue
        t, dirs = t[ok], dirs[ok]
        depth = t * (dirs @ fwd)
        noisy = depth + rng.normal(size=len(depth)) * (0.0005 + cfg.depth_noise_m * depth ** 2)
        pts = eye + dirs * (noisy / (dirs @ fwd))[:, None]
        idx = rng.choice(len(pts), cfg.view_points, replace=len(pts) < cfg.view_points)
        return pts[idx], eye
    raise KatazukeError("ten random viewpoints saw fewer than 32 depth returns; raise "
                        "image_size or lower dropout/grazing_cos in NdfDataConfig")


def make_instance(category: str, rng: np.random.Generator, cfg: NdfDataConfig
                  ) -> dict[str, np.ndarray]:
    """Arrays of one instance (module docstring), drawn from ``rng``."""
    import open3d as o3d

    shape = sample_shape(category, rng)
    V, F = shape.mesh(cfg.segments)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(V.astype(np.float32)),
                        o3d.core.Tensor(F.astype(np.uint32)))
    lo, hi = shape.bounds()
    centre, radius = 0.5 * (lo + hi), 0.5 * float(np.linalg.norm(hi - lo))
    surface = _sample_surface(shape, cfg.surface_points, cfg.segments, rng)
    views = [render_partial(scene, centre, radius, cfg, rng) for _ in range(cfg.views)]
    n_near = int(round(cfg.near_fraction * cfg.queries))
    near_src = _sample_surface(shape, n_near, cfg.segments, rng)
    sig = np.where(np.arange(n_near) % 2 == 0, cfg.near_sigma_m[0], cfg.near_sigma_m[1])
    near = near_src + rng.normal(size=(n_near, 3)) * sig[:, None]
    pad = cfg.box_padding_m
    far = lo - pad + (hi - lo + 2 * pad) * rng.random((cfg.queries - n_near, 3))
    queries = np.concatenate([near, far])
    return {"category": np.array(category), "params": np.array(json.dumps(shape.params)),
            "surface": surface.astype(np.float32),
            "partial": np.stack([p for p, _ in views]).astype(np.float32),
            "eyes": np.stack([e for _, e in views]).astype(np.float32),
            "queries": queries.astype(np.float32),
            "occupancy": shape.inside(queries).astype(np.uint8)}


def write_dataset(root: str | Path, split: str, per_category: int, seed: int,
                  cfg: NdfDataConfig, categories: Iterable[str] = CATEGORIES,
                  progress: Callable[[Iterable], Iterable] | None = None) -> dict:
    """Write (or complete) one split of the dataset; existing shards are kept.

    Args:
        root: dataset folder; ``root/meta.json`` records seed and settings.
        split: ``"train"`` or ``"test"`` (module docstring: disjoint seed streams).
        per_category: instances per category.
        seed: the dataset seed.
        cfg: data settings.
        categories: categories to make (each from :data:`CATEGORIES`).
        progress: wraps the iterable of jobs (a tqdm bar), or None.

    Returns:
        ``{"written": n, "skipped": n}``.

    Raises:
        InputError: unknown split or category.
        KatazukeError: ``root`` holds a dataset made with another seed or settings.
    """
    if split not in SPLITS:
        raise InputError(f"split must be one of {list(SPLITS)}; got {split!r}")
    cats = list(categories)
    for c in cats:
        if c not in CATEGORIES:
            raise InputError(f"unknown NDF category {c!r}; use one of {list(CATEGORIES)}")
    root = Path(root)
    meta_path = root / "meta.json"
    meta = {"format": "katazuke-ndf-data", "version": 1, "seed": seed,
            "config": config_to_dict(cfg)}
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if {k: old.get(k) for k in meta} != json.loads(json.dumps(meta)):
            raise KatazukeError(f"{root} holds NDF data made with another seed or settings "
                                f"(see {meta_path}); use a new --out folder or the same "
                                "--seed and --config")
    else:
        root.mkdir(parents=True, exist_ok=True)
        meta_path.write_text(json.dumps(meta, indent=1))
    jobs = [(c, i) for c in cats for i in range(per_category)]
    counts = {"written": 0, "skipped": 0}
    for c, i in (progress(jobs) if progress else jobs):
        path = root / split / c / f"{i:05d}.npz"
        if path.is_file():
            counts["skipped"] += 1
            continue
        rng = np.random.default_rng([seed, SPLITS[split], CATEGORIES.index(c), i])
        save_npz_deterministic(path, make_instance(c, rng, cfg))
        counts["written"] += 1
    return counts


@dataclass
class NdfSplit:
    """One split loaded into memory (float32 arrays, object frame, m).

    Attributes:
        categories: ``(K,)`` category name of each instance.
        surface: ``(K, S, 3)``; partial: ``(K, V, P, 3)``; queries: ``(K, Q, 3)``;
        occupancy: ``(K, Q)`` bool.
        files: ``(K,)`` source paths.
    """

    categories: list[str]
    surface: np.ndarray
    partial: np.ndarray
    queries: np.ndarray
    occupancy: np.ndarray
    files: list[str]

    def __len__(self) -> int:
        return len(self.categories)


def load_split(root: str | Path, split: str) -> NdfSplit:
    """Load every shard of ``root/split`` (sorted by category, then index).

    Raises:
        KatazukeError: no shards, or a shard that is corrupt or of another shape (the
            message names the file; delete it and run the data command again).
    """
    d = Path(root) / split
    files = sorted(d.glob("*/*.npz"))
    if not files:
        raise KatazukeError(f"no NDF shards under {d}; make them with `katazuke sim ndf-data "
                            f"--out {root}`")
    cats, arrs = [], {k: [] for k in ("surface", "partial", "queries", "occupancy")}
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as z:
                item = {k: z[k] for k in arrs}
                cat = str(z["category"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise KatazukeError(f"NDF shard {f} is corrupt ({exc}); delete it and run "
                                "`katazuke sim ndf-data` again to remake it") from exc
        if arrs["surface"] and any(item[k].shape != arrs[k][0].shape for k in arrs):
            raise KatazukeError(f"NDF shard {f} has other array shapes than {files[0]}; the "
                                "folder mixes settings: remake it in a new folder")
        cats.append(cat)
        for k in arrs:
            arrs[k].append(item[k])
    return NdfSplit(cats, np.stack(arrs["surface"]), np.stack(arrs["partial"]),
                    np.stack(arrs["queries"]), np.stack(arrs["occupancy"]).astype(bool),
                    [str(f) for f in files])
