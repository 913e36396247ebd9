"""``katazuke bench ndf``: the NDF library's own figures on held-out procedural instances.

* **Equivariance**: relative error ``|f(Tq | TP) - f(q | P)| / |f(q | P)|`` of the
  descriptors for random ``T`` (uniform rotation, translation N(0, 1 m) per axis) on
  held-out partial clouds, float32 (as deployed) and float64.
* **Occupancy**: accuracy and IoU of the held-out labelled queries, the encoder seeing one
  partial view (or the full surface cloud).
* **Time per grasp**: one :func:`minimise_pose_energy` call (all restarts x steps, the
  cloud's encoding included), median of ``repeats`` after a warm-up, at 1 and 2 threads.
* **Pose transfer**: a demonstration grasp on partial view 0 of an instance (mug and bowl:
  top-down on the rim; bottle: from the side at 40 % height) is transferred to view 1 of the
  same instance moved by a random ``T``; error = mean distance of the gripper's query points
  to where ``T`` puts the demonstration's, minimised over rotations about the object's axis
  for the rotationally symmetric bowls and bottles. Success: < 1.5 cm.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from katazuke.bench.harness import Bar, bars_markdown, evaluate_bars, median

__all__ = ["NdfBenchConfig", "BARS", "run", "markdown", "demo_grasp"]

BARS = (
    Bar("descriptor equivariance, float64 (max over trials)", "equivariance.float64_max", "<=",
        1e-4),
    Bar("time per grasp optimisation, 2 threads (median)", "timing.threads_2_s", "<=", 2.0, "s"),
)
_SYMMETRIC = {"bowl": True, "bottle": True, "mug": False}


@dataclass(frozen=True)
class NdfBenchConfig:
    """Settings of :func:`run` (not user-facing YAML; the CLI fills it)."""

    weights: str
    data: str
    trials: int = 20
    repeats: int = 5
    transfer_per_category: int = 10
    seed: int = 0


def _se3(rng: np.random.Generator) -> np.ndarray:
    from katazuke.perception.ndf import random_rotations

    T = np.eye(4)
    T[:3, :3] = random_rotations(1, rng)[0]
    T[:3, 3] = rng.normal(size=3)
    return T


def demo_grasp(category: str, surface: np.ndarray) -> np.ndarray:
    """``(4, 4)`` a scripted demonstration grasp in the object frame (from its surface points):
    mug and bowl top-down on the rim at +x, closing across the wall; bottle from the side
    (-x approach) at 40 % of its height, closing along y."""
    T = np.eye(4)
    top = surface[:, 2].max()
    if category == "bottle":
        T[:3, :3] = np.column_stack([[0, 0, 1], [0, 1, 0], [-1, 0, 0]])   # x, y, z columns
        T[:3, 3] = [0.0, 0.0, 0.4 * top]
        return T
    rim = surface[surface[:, 2] > top - 0.004]
    r = np.percentile(np.hypot(rim[:, 0], rim[:, 1]), 50)
    T[:3, :3] = np.column_stack([[0, 1, 0], [1, 0, 0], [0, 0, -1]])       # z down, y radial
    T[:3, 3] = [r, 0.0, top]
    return T


def _rz(phi: float) -> np.ndarray:
    T = np.eye(4)
    c, s = np.cos(phi), np.sin(phi)
    T[:2, :2] = [[c, -s], [s, c]]
    return T


def run(cfg: NdfBenchConfig, log=print) -> dict:
    import torch

    from katazuke.perception.ndf import (DescriptorField, PoseOptConfig, gripper_collision_points,
                                         gripper_query_points, load_ndf_weights,
                                         minimise_pose_energy, transform_points)
    from katazuke.perception.ndf.data import load_split
    from katazuke.perception.ndf.train import evaluate_occupancy

    net, payload = load_ndf_weights(cfg.weights)
    test = load_split(cfg.data, "test")
    rng = np.random.default_rng(cfg.seed)
    torch.set_num_threads(1)
    # equivariance
    errs = {"float32": [], "float64": []}
    net64 = load_ndf_weights(cfg.weights)[0].double()
    for k in range(cfg.trials):
        i = int(rng.integers(len(test)))
        P = test.partial[i, 0].astype(np.float64)
        q = P.mean(0) + rng.normal(size=(64, 3)) * P.std(0)
        T = _se3(rng)
        for name, n in (("float32", net), ("float64", net64)):
            f = DescriptorField(n, P).descriptors(q)
            g = DescriptorField(n, transform_points(T, P)).descriptors(transform_points(T, q))
            errs[name].append(float(np.linalg.norm(g - f) / np.linalg.norm(f)))
    equiv = {f"{k}_median": median(v) for k, v in errs.items()}
    equiv.update({f"{k}_max": max(v) for k, v in errs.items()})
    equiv["trials"] = cfg.trials
    log(f"equivariance: {equiv}")
    occupancy = {c: evaluate_occupancy(net, test, c, 256, 0, cfg.seed)
                 for c in ("partial", "surface")}
    log(f"occupancy: partial {occupancy['partial']['accuracy']:.3f}/"
        f"{occupancy['partial']['iou']:.3f}, surface {occupancy['surface']['accuracy']:.3f}/"
        f"{occupancy['surface']['iou']:.3f} (accuracy/IoU)")
    X = gripper_query_points(24, np.random.default_rng(1))
    G = gripper_collision_points()
    pcfg = PoseOptConfig()
    # timing: one grasp = encode the observed cloud + all restarts x steps
    P0 = test.partial[0, 1].astype(np.float64)
    target0 = DescriptorField(net, test.partial[0, 0].astype(np.float64)).descriptors(
        transform_points(demo_grasp(test.categories[0], test.surface[0]), X))
    timing = {"restarts": pcfg.restarts, "steps": pcfg.steps, "query_points": len(X),
              "cloud_points": int(len(P0))}
    for threads in (1, 2):
        torch.set_num_threads(threads)

        def one() -> float:
            t0 = time.perf_counter()
            minimise_pose_energy(DescriptorField(net, P0), X, target0, pcfg,
                                 np.random.default_rng(0), G)
            return time.perf_counter() - t0
        one()
        vals = [one() for _ in range(cfg.repeats)]
        timing[f"threads_{threads}_s"] = median(vals)
        timing[f"threads_{threads}_runs_s"] = vals
    log(f"timing: {timing}")
    torch.set_num_threads(2)
    transfer: dict[str, dict] = {}
    for cat in sorted(set(test.categories)):
        idx = [i for i, c in enumerate(test.categories) if c == cat][:cfg.transfer_per_category]
        errors = []
        for i in idx:
            T_demo = demo_grasp(cat, test.surface[i])
            demo = DescriptorField(net, test.partial[i, 0].astype(np.float64))
            target = demo.descriptors(transform_points(T_demo, X))
            A = _se3(rng)
            field = DescriptorField(net, transform_points(A, test.partial[i, 1].astype(np.float64)))
            res = minimise_pose_energy(field, X, target, pcfg, rng, G)
            est = transform_points(res.T[0], X)
            phis = np.linspace(0, 2 * np.pi, 72, endpoint=False) if _SYMMETRIC[cat] else [0.0]
            errors.append(min(float(np.linalg.norm(
                est - transform_points(A @ _rz(p) @ T_demo, X), axis=1).mean()) for p in phis))
        transfer[cat] = {"n": len(errors), "median_error_m": median(errors),
                         "success_rate": float(np.mean(np.asarray(errors) < 0.015)),
                         "errors_m": errors}
        log(f"transfer {cat}: {transfer[cat]['success_rate']:.2f} within 1.5 cm, median "
            f"{100 * transfer[cat]['median_error_m']:.1f} cm")
    return {"weights": cfg.weights, "weights_provenance": {
                k: payload.get(k) for k in ("command", "seed", "commit", "steps",
                                            "train_minutes", "train_instances")},
            "data": cfg.data, "test_instances": len(test), "equivariance": equiv,
            "occupancy": occupancy, "timing": timing, "transfer": transfer}


def markdown(r: dict) -> str:
    e, t, o = r["equivariance"], r["timing"], r["occupancy"]
    lines = ["# NDF (issue 15): equivariance, occupancy, time per grasp, pose transfer", "",
             bars_markdown(evaluate_bars(r, BARS)), "",
             f"Weights `{r['weights']}` ({r['weights_provenance'].get('command')}, seed "
             f"{r['weights_provenance'].get('seed')}); {r['test_instances']} held-out instances "
             f"of `{r['data']}`.", "",
             f"- Equivariance over {e['trials']} random SE(3) (translation ~1 m): float64 median "
             f"{e['float64_median']:.1e}, max {e['float64_max']:.1e}; float32 median "
             f"{e['float32_median']:.1e}, max {e['float32_max']:.1e}.",
             f"- Time per grasp ({t['restarts']} restarts x {t['steps']} steps, "
             f"{t['query_points']} query points, {t['cloud_points']}-point cloud): "
             f"{t['threads_1_s']:.2f} s at 1 thread, {t['threads_2_s']:.2f} s at 2 threads "
             "(median).", "",
             "| held-out occupancy | accuracy | IoU |", "|---|---|---|"]
    for c in ("partial", "surface"):
        lines.append(f"| {c} cloud, all | {o[c]['accuracy']:.3f} | {o[c]['iou']:.3f} |")
        for cat, v in o[c]["per_category"].items():
            lines.append(f"| {c} cloud, {cat} | {v['accuracy']:.3f} | {v['iou']:.3f} |")
    lines += ["", "| pose transfer (view 0 demo -> view 1 moved by random SE(3)) | n | "
              "within 1.5 cm | median error |", "|---|---|---|---|"]
    for cat, v in r["transfer"].items():
        lines.append(f"| {cat} | {v['n']} | {v['success_rate']:.2f} | "
                     f"{100 * v['median_error_m']:.1f} cm |")
    return "\n".join(lines)
