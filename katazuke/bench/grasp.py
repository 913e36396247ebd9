"""``katazuke bench grasp``: a grasp planner's pick success per object kind and category.

For every object kind (``katazuke.sim.objects.KINDS``, 6 categories) and seed, one trial:

1. The object is spawned alone on the floor in front of the robot (the set-up of
   :func:`katazuke.sim.pick_place.pick_and_place`: base beside the object's container,
   random yaw).
2. The arm moves to :data:`LOOK` (folded back, out of the head camera's view) and the head
   turns to the object. Aiming the head uses the object's true position: a stand-in for the
   tidy-up's "look at it" step, which aims at the object map's estimate.
3. The head camera renders RGB-D. **The simulator's segmentation mask is used only to make
   the detection box** (its bounding box: a stand-in for the detector's box); the object's
   points come from the depth image alone
   (:func:`~katazuke.planning.grasping.segment_object_points`).
4. The planner plans in ``base_link``; the first grasp (in the planner's order) that the
   arm's IK reaches within :data:`REACH_TOL_M` is executed: pre-grasp 0.12 m back along the
   approach, straight-line approach, close, lift 0.2 m, hold 0.5 s.
5. Success (ground truth, evaluator only): the object's centre is >= 5 cm above its resting
   height after the hold.

The scripted ground-truth grasp (:func:`katazuke.sim.pick_place.grasp_pose` from the true
pose and extent) is measured in the same run, on the same episodes, as the reference.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from katazuke.bench.harness import Bar, bars_markdown, evaluate_bars
from katazuke.config import dataclass, field, in_range
from katazuke.errors import ConfigError, KatazukeError

__all__ = ["GraspBenchConfig", "BARS", "LOOK", "REACH_TOL_M", "run", "markdown",
           "run_trial", "setup_trial", "perceive", "execute_grasp", "detection_box"]

#: Arm joints while the head camera looks: turned to the side and folded low, out of the
#: view of an object on the floor 0.5-0.8 m ahead (chosen by counting the object's pixels
#: over kinds and seeds; the pick_place READY and home poses hide small objects).
LOOK = np.array([2.3, 0.5, 0.0, -2.6, 0.0, 3.0, 0.785])
#: A grasp is executed only if IK puts ``panda_grasptarget`` within this of it, m.
REACH_TOL_M = 0.01
#: Lifted: the object's centre this far above its resting height, m.
LIFT_SUCCESS_M = 0.05

BARS = (
    # the tidy-up's bar is >= 90 % of objects put away, so grasping alone must reach it
    Bar("geometric grasp success, all categories", "planner.success_rate", ">=", 0.9,
        note="fraction of trials; object lifted >= 5 cm and held"),
    Bar("geometric grasp success, worst category", "planner.worst_category_rate", ">=", 0.8,
        note="fraction of trials of the worst category"),
)


@dataclass(frozen=True)
class GraspBenchConfig:
    """What one ``katazuke bench grasp`` run measures."""

    seeds: tuple[int, ...] = field(default=(0, 1), metadata={"help": "episode seeds per kind"})
    kinds: tuple[str, ...] = field(default=(), metadata={
        "help": "object kinds to try (empty: every kind of katazuke.sim.objects.KINDS)"})
    image_width: int = in_range(320, "head camera width, px (the tidy-up stack's 320)", 64, 4096)
    image_height: int = in_range(240, "head camera height, px", 48, 4096)
    reference: bool = field(default=True, metadata={
        "help": "also run the scripted ground-truth grasp on the same episodes"})

    def __post_init__(self) -> None:
        if not self.seeds or any(s < 0 for s in self.seeds):
            raise ConfigError(f"GraspBenchConfig.seeds must be non-negative integers; got "
                              f"{self.seeds}")


def detection_box(segmentation: np.ndarray, uid: int) -> np.ndarray | None:
    """``(4,)`` ``x_min, y_min, x_max, y_max`` (pixels) of body ``uid`` in a mask, or None.

    The stand-in for the detector: only the box leaves this function, never the mask.
    """
    vv, uu = np.nonzero(segmentation == uid)
    if len(uu) == 0:
        return None
    return np.array([uu.min(), vv.min(), uu.max() + 1.0, vv.max() + 1.0])


def _T_world_base(env) -> np.ndarray:
    from katazuke.geometry import se2_to_matrix

    x, y, yaw = env.base_pose()
    return se2_to_matrix(x, y, yaw)


def setup_trial(env, kind: str, seed: int) -> dict:
    """Spawn ``kind`` alone in front of the robot (pick_place's set-up); the arm to LOOK and
    the head at the object. Returns the ground truth needed to score (evaluator only)."""
    from katazuke.sim.env import Action
    from katazuke.sim.pick_place import _move, _place_robot

    env.reset(seed=seed, kinds=[kind], n_objects=1)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 77])))
    gt = env.ground_truth_objects()[0]
    container = next(c for c in env.containers if c.id == gt.container)
    (bx, by, byaw), oxy = _place_robot(env, container, rng)
    env.set_base_pose(bx, by, byaw)
    obj = env.objects[0]
    oxy = oxy + rng.uniform(-0.06, 0.06, 2)
    env.place_object(obj.uid, oxy[0], oxy[1], float(rng.uniform(-np.pi, np.pi)), 0.0)
    gt = env.ground_truth_objects()[0]
    p_base = np.linalg.inv(_T_world_base(env)) @ np.r_[gt.T_world_obj[:3, 3], 1.0]
    _move(env, LOOK, 1.0, 0.08, settle=0.0)
    # the head pan axis is 0.18 m behind base_link, the camera ~1.3 m up
    pan = float(np.arctan2(p_base[1], p_base[0] + 0.18))
    tilt = float(np.arctan2(1.30 - p_base[2], np.hypot(p_base[0] + 0.18, p_base[1])))
    for _ in range(12):
        env.step(Action(head_pan_tilt=(pan, tilt), gripper_width=0.08))
    gt = env.ground_truth_objects()[0]
    return {"uid": obj.uid, "category": gt.category, "T_world_obj": gt.T_world_obj,
            "extent": gt.extent, "rest_z": float(gt.T_world_obj[2, 3])}


def perceive(env, uid: int, seg_config=None):
    """Render the head camera; the mask makes the box only; segment from depth.

    Returns:
        ``(object_points_base, scene_points_base, box)``; raises SegmentationError.
    """
    from katazuke.planning.grasping import SegmentationError, segment_object_points

    f = env.render_head()
    box = detection_box(f.segmentation, uid)
    if box is None:
        raise SegmentationError("the object is not visible from the head camera")
    T_base_cam = np.linalg.inv(_T_world_base(env)) @ f.T_world_cam
    obj, scene = segment_object_points(f.depth, f.K, box, T_base_cam, seg_config)
    return obj, scene, box


def _reach_error(env, q: np.ndarray, T_world_grasp: np.ndarray) -> float:
    """Distance (m) between ``panda_grasptarget`` at joints ``q`` and the target."""
    from katazuke.sim.robot import ARM_JOINTS, GRASP_LINK

    c, rm, uid = env.client, env.robot, env.robot_uid
    sid = c.saveState()
    try:
        for name, v in zip(ARM_JOINTS, q):
            c.resetJointState(uid, rm.index(name), float(v))
        T = env.link_poses([GRASP_LINK])[GRASP_LINK]
    finally:
        c.restoreState(sid)
        c.removeState(sid)
    return float(np.linalg.norm(T[:3, 3] - T_world_grasp[:3, 3]))


def execute_grasp(env, T_world_grasp: np.ndarray, width: float, uid: int, rest_z: float,
                  pregrasp_m: float = 0.12) -> dict:
    """Pre-grasp, straight approach, close, lift 0.2 m, hold; scored from ground truth."""
    from katazuke.sim.env import Action
    from katazuke.sim.pick_place import READY, _cartesian, _move, solve_ik

    hz = env.config.control_hz
    pre = T_world_grasp.copy()
    pre[:3, 3] -= pregrasp_m * T_world_grasp[:3, 2]
    _move(env, READY, 1.0, width, settle=0.0)
    _move(env, solve_ik(env, pre, q_seed=READY), 1.0, width)
    _cartesian(env, pre, T_world_grasp, 1.2, width)
    for _ in range(int(0.8 * hz)):
        env.step(Action(arm_positions=solve_ik(env, T_world_grasp), gripper_width=0.0))
    up = T_world_grasp.copy()
    up[2, 3] += 0.2
    _cartesian(env, T_world_grasp, up, 1.2, 0.0)
    for _ in range(int(0.5 * hz)):
        env.step(Action(gripper_width=0.0))
    z = float(env.ground_truth_objects()[0].T_world_obj[2, 3])
    return {"lift_m": z - rest_z, "success": bool(z - rest_z >= LIFT_SUCCESS_M)}


def run_trial(env, kind: str, seed: int, planner=None) -> dict:
    """One trial of ``planner`` (None: the scripted ground-truth grasp) on ``kind``."""
    from katazuke.planning.grasping import GraspPlanningError
    from katazuke.sim.pick_place import READY, grasp_pose, solve_ik

    gt = setup_trial(env, kind, seed)
    row: dict[str, Any] = {"kind": kind, "category": gt["category"], "seed": seed,
                           "success": False, "failure": None}
    T_wb = _T_world_base(env)
    if planner is None:
        T, width = grasp_pose(gt["T_world_obj"], gt["extent"], 0.0)
        candidates = [(T, min(0.08, width + 0.02), "top")]
    else:
        try:
            t0 = time.perf_counter()
            obj, scene, _ = perceive(env, gt["uid"])
            t1 = time.perf_counter()
            row.update(n_points=int(len(obj)), perceive_ms=1000 * (t1 - t0))
            grasps = planner.plan(obj, gt["category"], scene)
            row.update(plan_ms=1000 * (time.perf_counter() - t1), n_grasps=len(grasps))
        except GraspPlanningError as exc:
            row["failure"] = f"{type(exc).__name__}: {exc}"
            return row
        candidates = [(T_wb @ g.T_base_grasp, g.width_m, g.kind) for g in grasps]
    for i, (T, width, family) in enumerate(candidates):
        q = solve_ik(env, T, q_seed=READY)
        if _reach_error(env, q, T) <= REACH_TOL_M:
            row.update(grasp_index=i, family=family, width_m=float(width))
            res = execute_grasp(env, T, width, gt["uid"], gt["rest_z"])
            row.update(res)
            if not res["success"]:
                row["failure"] = "not lifted"
            return row
    row["failure"] = f"none of {len(candidates)} grasps reachable"
    return row


def _summary(rows: list[dict]) -> dict:
    by_cat: dict[str, list[bool]] = {}
    by_kind: dict[str, list[bool]] = {}
    for r in rows:
        by_cat.setdefault(r["category"], []).append(r["success"])
        by_kind.setdefault(r["kind"], []).append(r["success"])
    cats = {c: {"successes": int(sum(v)), "trials": len(v), "rate": sum(v) / len(v)}
            for c, v in by_cat.items()}
    failures: dict[str, int] = {}
    for r in rows:
        if r["failure"]:
            key = r["failure"].split(":")[0]
            failures[key] = failures.get(key, 0) + 1
    plan_ms = [r["plan_ms"] for r in rows if "plan_ms" in r]
    perceive_ms = [r["perceive_ms"] for r in rows if "perceive_ms" in r]
    return {"trials": len(rows), "successes": int(sum(r["success"] for r in rows)),
            "plan_ms_median": float(np.median(plan_ms)) if plan_ms else None,
            "perceive_ms_median": float(np.median(perceive_ms)) if perceive_ms else None,
            "success_rate": sum(r["success"] for r in rows) / max(1, len(rows)),
            "worst_category_rate": min((c["rate"] for c in cats.values()), default=None),
            "by_category": cats,
            "by_kind": {k: {"successes": int(sum(v)), "trials": len(v)}
                        for k, v in by_kind.items()},
            "failures": failures, "rows": rows}


def run(cfg: GraspBenchConfig, planner=None,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure ``planner`` (default :class:`GeometricGraspPlanner`) and the scripted
    reference on every kind x seed.

    Returns:
        ``config``, ``planner`` (summary: ``success_rate``, ``worst_category_rate``,
        ``by_category``, ``by_kind``, ``failures``, ``rows``), ``reference`` (same, or None),
        ``wall_s``.
    """
    from katazuke.planning.grasping import GeometricGraspPlanner
    from katazuke.sim.objects import KIND_BY_NAME, KINDS
    from katazuke.sim.pick_place import make_eval_env

    planner = planner or GeometricGraspPlanner()
    kinds = list(cfg.kinds) or [k.name for k in KINDS]
    unknown = [k for k in kinds if k not in KIND_BY_NAME]
    if unknown:
        raise ConfigError(f"GraspBenchConfig.kinds: unknown kind(s) {unknown}")
    t0 = time.time()
    env = make_eval_env(image_width=cfg.image_width, image_height=cfg.image_height)
    rows, ref = [], []
    try:
        for kind in kinds:
            for seed in cfg.seeds:
                try:
                    rows.append(run_trial(env, kind, seed, planner))
                except KatazukeError as exc:
                    rows.append({"kind": kind, "category": KIND_BY_NAME[kind].category,
                                 "seed": seed, "success": False,
                                 "failure": f"{type(exc).__name__}: {exc}"})
                if cfg.reference:
                    ref.append(run_trial(env, kind, seed, None))
                if progress:
                    progress(f"{kind} seed {seed}: planner {rows[-1]['success']}"
                             + (f", reference {ref[-1]['success']}" if cfg.reference else ""))
    finally:
        env.close()
    return {"config": {"seeds": list(cfg.seeds), "kinds": kinds,
                       "image": [cfg.image_width, cfg.image_height],
                       "planner": planner.name},
            "planner": _summary(rows), "reference": _summary(ref) if ref else None,
            "wall_s": time.time() - t0}


def _frac(v: dict | None) -> str:
    return f"{v['successes']}/{v['trials']}" if v else "-"


def markdown(r: dict[str, Any]) -> str:
    """The report of :func:`run`'s results (bars table from :data:`BARS`)."""
    p, ref = r["planner"], r["reference"]
    lines = ["# Grasp planning benchmark (`katazuke bench grasp`)", "",
             f"Planner `{r['config']['planner']}` vs the scripted ground-truth grasp on the same "
             f"episodes: {len(r['config']['kinds'])} kinds x seeds {r['config']['seeds']}, head "
             f"camera {r['config']['image'][0]}x{r['config']['image'][1]}. The detection box "
             "comes from the simulator's mask (a stand-in for the detector); the points from "
             "depth only. Success: lifted >= 5 cm and held 0.5 s.", "",
             "## Bars", "", bars_markdown(evaluate_bars(r, BARS)), "",
             "## Per category", "", "| category | planner | reference |", "|---|---|---|"]
    for c, v in sorted(p["by_category"].items()):
        rv = ref["by_category"].get(c) if ref else None
        lines.append(f"| {c} | {_frac(v)} | {_frac(rv)} |")
    lines.append(f"| **all** | {p['successes']}/{p['trials']} ({100 * p['success_rate']:.0f}%) | "
                 + (f"{ref['successes']}/{ref['trials']} ({100 * ref['success_rate']:.0f}%)"
                    if ref else "-") + " |")
    lines += ["", "## Per kind", "", "| kind | planner | reference |", "|---|---|---|"]
    for k, v in p["by_kind"].items():
        rv = ref["by_kind"].get(k) if ref else None
        lines.append(f"| {k} | {_frac(v)} | {_frac(rv)} |")
    if p.get("plan_ms_median") is not None:
        lines += ["", f"Median time per object: render + segmentation "
                  f"{p['perceive_ms_median']:.0f} ms, planning {p['plan_ms_median']:.0f} ms "
                  "(wall clock, shared machine)."]
    lines += ["", "Planner failures by cause: "
              + (", ".join(f"{k} {n}" for k, n in sorted(p["failures"].items())) or "none"), ""]
    return "\n".join(lines)
