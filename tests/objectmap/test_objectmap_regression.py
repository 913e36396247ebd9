"""Shrunk, seeded regression of the object map with pinned figures.

Eight objects of seeded categories and positions in front of a fixed camera, 30 frames of
seeded detections (3 cm position noise, 15 % missed detections, noisy category scores, weak
spurious detections); one object is taken away after frame 15 and must be forgotten. Pinned
in tests/objectmap/data/regression_objectmap.json: instance counts exactly, position errors
and confidences ``rel=1e-6``. Re-record after an intended change with

    python -P -m pytest tests/objectmap/test_objectmap_regression.py --record-pinned

and review the JSON diff.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from katazuke.perception.objectmap import (CATEGORY_NAMES, KNOWN_CATEGORIES, CameraView, ObjectMap,
                                           Observation3D)

EXPECTED = Path(__file__).resolve().parent / "data" / "regression_objectmap.json"
K = np.array([[250.0, 0, 160], [0, 250.0, 120], [0, 0, 1]])
T_MAP_CAM = np.eye(4)
T_MAP_CAM[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)  # optical z = map x


def _scene(rng: np.random.Generator, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 3)`` positions at least 0.35 m apart, in view, and ``(n,)`` category indices."""
    pos: list[np.ndarray] = []
    while len(pos) < n:
        p = rng.uniform([1.5, -0.6, -0.3], [3.0, 0.6, 0.3])
        if all(np.linalg.norm(p - q) >= 0.35 for q in pos):
            pos.append(p)
    return np.array(pos), rng.integers(0, len(KNOWN_CATEGORIES), n)


def _scores(rng: np.random.Generator, cat: int) -> np.ndarray:
    s = rng.dirichlet(np.ones(len(CATEGORY_NAMES)))
    s = 0.4 * s + 0.6 * np.eye(len(CATEGORY_NAMES))[cat] * rng.uniform(0.6, 1.0)
    return s / s.sum()


def measure() -> dict[str, float]:
    rng = np.random.default_rng(77)
    truth, cats = _scene(rng)
    removed = 3
    m = ObjectMap()
    view = CameraView(T_MAP_CAM, K, np.full((240, 320), np.inf, np.float32))
    for k in range(30):
        dets = []
        for i, (p, c) in enumerate(zip(truth, cats)):
            if (i == removed and k >= 15) or rng.random() < 0.15:
                continue
            dets.append(Observation3D(p + rng.normal(0, 0.03, 3), float(rng.uniform(0.75, 0.95)),
                                      _scores(rng, int(c)), np.full(3, 0.08)))
        if rng.random() < 0.3:  # a weak spurious detection somewhere in view
            dets.append(Observation3D(rng.uniform([1.5, -0.6, -0.3], [3.0, 0.6, 0.3]),
                                      float(rng.uniform(0.3, 0.5)), _scores(rng, 6), np.zeros(3)))
        m.update(float(k) * 0.1, dets, view)
    kept = np.delete(np.arange(len(truth)), removed)
    insts = m.instances
    P = np.array([i.position for i in insts])
    d = np.linalg.norm(P[:, None] - truth[None, kept], axis=2)   # instance x true object
    nearest = d.argmin(axis=1)
    err = d.min(axis=1)
    correct = sum(insts[a].category == KNOWN_CATEGORIES[cats[kept[b]]] for a, b in enumerate(nearest))
    return {"instances": float(len(insts)), "all_instances": float(len(m.all_instances)),
            "objects_matched": float(len(set(nearest.tolist()))),
            "removed_forgotten": float(np.linalg.norm(P - truth[removed], axis=1).min() > 0.25),
            "categories_correct": float(correct),
            "mean_position_error_m": float(err.mean()), "max_position_error_m": float(err.max()),
            "mean_confidence": float(np.mean([i.confidence for i in insts]))}


def test_seeded_detections_match_pinned_figures(pinned) -> None:
    got = measure()
    tol = {k: ((1e-6, 0.0) if k.startswith(("mean_", "max_")) else (0.0, 0.0)) for k in got}
    pinned(got, EXPECTED, tol)
