"""Pre-grasp / pre-place base poses: where to park so that the arm reaches a target.

Candidates lie on rings around the target: the arm mount (``panda_link0``, at ``arm_mount_xy``
in ``base_link``, x forward) at a horizontal distance in ``[reach_min_m, reach_max_m]`` from
the target, the base facing the target (the arm reaches forward) up to a small yaw offset.
A candidate is kept when its oriented footprint (grown by ``footprint_padding_m``) covers no
occupied cell of the *non-inflated* map (and, optionally, no unknown cell) and the base can
get there (finite path cost from the robot). Candidates are scored (lower is better) by

    path_weight * path cost from the robot
    + clearance_weight * (clearance_cap_m - min(clearance, clearance_cap_m))
    + reach_weight * |reach - reach_preferred_m| + yaw_weight * |yaw offset|
    + fallback_weight  (for the yaw offsets of ``fallback_yaw_offsets_rad``)

and returned best first. A raised target (``target_z >= raised_min_z_m``) tries
``raised_yaw_offsets_rad`` first and the other offsets as its fallbacks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass as _plain_dataclass

import numpy as np

from katazuke.config import dataclass, field, non_negative, positive
from katazuke.errors import ConfigError, InputError
from katazuke.planning.navigation.costmap import CostMap
from katazuke.planning.navigation.global_planner import (CostField, GlobalPlanner, NavigationError,
                                                          wrap_angle)

__all__ = ["BasePoseConfig", "BasePose", "NoBasePoseError", "choose_base_pose",
           "footprint_clearance", "reach_of"]


class NoBasePoseError(NavigationError):
    """No collision-free, reachable base pose puts the target within the arm's reach."""


@dataclass(frozen=True)
class BasePoseConfig:
    """Configuration of :func:`choose_base_pose`."""

    arm_mount_xy: tuple[float, float] = field(default=(0.12, 0.0), metadata={
        "help": "panda_link0 x, y in base_link, m", "check": "finite"})
    reach_min_m: float = positive(0.35, "closest comfortable horizontal reach from "
                                  "panda_link0, m")
    reach_max_m: float = positive(0.70, "farthest comfortable horizontal reach, m")
    reach_preferred_m: float = positive(0.5, "the most comfortable reach, m")
    n_reach: int = field(default=4, metadata={"help": "rings between reach_min and reach_max",
                                              "check": "positive"})
    n_angles: int = field(default=32, metadata={"help": "approach directions around the "
                                                "target", "check": "positive"})
    yaw_offsets_rad: tuple[float, ...] = field(default=(0.0, -0.25, 0.25), metadata={
        "help": "base yaw offsets from facing the target, rad", "check": "finite"})
    fallback_yaw_offsets_rad: tuple[float, ...] = field(default=(), metadata={
        "help": "yaw offsets tried too, each scored fallback_weight worse (an offset that "
                "keeps the folded arm out of the camera's view of a floor object swings the "
                "base's front corner towards the target: at a table's edge only facing it "
                "reaches), rad", "check": "finite"})
    fallback_weight: float = non_negative(10.0, "score added to a fallback yaw offset's pose")
    raised_min_z_m: float = positive(0.25, "a target at least this high (m, map z) is raised "
                                     "(on a table or a shelf board): raised_yaw_offsets_rad "
                                     "come first for it")
    raised_reach_max_m: float = non_negative(0.0, "farthest reach for a raised target, m (0: "
                                                  "reach_max_m); at table height the angled "
                                                  "grasps reach 0.75 m from panda_link0 where "
                                                  "a floor grasp stops at ~0.6")
    raised_yaw_offsets_rad: tuple[float, ...] = field(default=(), metadata={
        "help": "yaw offsets for a raised target (empty: yaw_offsets_rad); the others are its "
                "fallbacks. Facing a shelf squarely, the hand comes in straight between the "
                "boards", "check": "finite"})
    footprint_m: tuple[float, float] = positive((0.6, 0.5), "base footprint length, width, m")
    footprint_padding_m: float = non_negative(0.05, "grow the footprint by this on each side "
                                              "for the collision check, m")
    unknown_is_collision: bool = field(default=False, metadata={
        "help": "reject a footprint that covers unknown cells"})
    clearance_cap_m: float = positive(0.3, "clearance beyond this earns nothing, m")
    path_weight: float = non_negative(1.0, "score per m of path cost")
    clearance_weight: float = non_negative(2.0, "score per m of missing clearance")
    reach_weight: float = non_negative(3.0, "score per m away from reach_preferred_m")
    yaw_weight: float = non_negative(0.5, "score per rad of yaw offset")

    def __post_init__(self) -> None:
        if not self.reach_min_m <= self.reach_preferred_m <= self.reach_max_m:
            raise ConfigError("BasePoseConfig: need reach_min_m <= reach_preferred_m <= "
                              "reach_max_m")
        if not self.yaw_offsets_rad:
            raise ConfigError("BasePoseConfig.yaw_offsets_rad needs at least one offset")


@_plain_dataclass
class BasePose:
    """One candidate base pose.

    Attributes:
        pose: ``(3,)`` ``(x, y, yaw)`` of base_link in ``map`` (m, m, rad).
        score: lower is better.
        path_cost: cost of the path from the robot (m-equivalent).
        clearance_m: distance from the footprint to the nearest occupied cell centre, m.
        reach_m: horizontal distance from panda_link0 to the target, m.
        yaw_offset: yaw offset from facing the target, rad.
    """

    pose: np.ndarray
    score: float
    path_cost: float
    clearance_m: float
    reach_m: float
    yaw_offset: float


def footprint_clearance(points_xy: np.ndarray, poses: np.ndarray,
                        size_m: tuple[float, float]) -> np.ndarray:
    """Distance from each oriented rectangle to the nearest point (0 when a point is inside).

    Args:
        points_xy: ``(M, 2)`` obstacle points, m.
        poses: ``(K, 3)`` rectangle centres and yaws (m, m, rad).
        size_m: rectangle ``(length, width)``, m.

    Returns:
        ``(K,)`` m (``inf`` when there are no points).
    """
    if len(points_xy) == 0:
        return np.full(len(poses), np.inf)
    half = 0.5 * np.asarray(size_m, np.float64)
    c, s = np.cos(poses[:, 2]), np.sin(poses[:, 2])
    dx = points_xy[None, :, 0] - poses[:, None, 0]
    dy = points_xy[None, :, 1] - poses[:, None, 1]
    lx = np.abs(c[:, None] * dx + s[:, None] * dy) - half[0]
    ly = np.abs(-s[:, None] * dx + c[:, None] * dy) - half[1]
    d = np.hypot(np.maximum(lx, 0.0), np.maximum(ly, 0.0))
    return d.min(axis=1)


def choose_base_pose(target_xy, costmap: CostMap, robot_pose,
                     config: BasePoseConfig | None = None,
                     planner: GlobalPlanner | None = None,
                     cost_field: CostField | None = None,
                     target_z: float | None = None) -> list[BasePose]:
    """Candidate base poses from which the arm reaches ``target_xy``, best first.

    Args:
        target_xy: ``(2,)`` the grasp or place point in ``map``, m (its height does not matter).
        costmap: the current map.
        robot_pose: ``(3,)`` the robot's ``(x, y, yaw)`` in ``map`` (scores the path cost).
        config: rings, footprint check and score weights.
        planner: the planner whose costs score the path (default ``GlobalPlanner()``).
        cost_field: a precomputed :meth:`GlobalPlanner.cost_field` from ``robot_pose`` (saves
            one Dijkstra when choosing for several targets).
        target_z: the target's height in ``map`` (m), if known: at least
            ``config.raised_min_z_m`` selects ``config.raised_yaw_offsets_rad``.

    Returns:
        Non-empty list of :class:`BasePose`, best (lowest score) first.

    Raises:
        NoBasePoseError: no candidate is collision-free and reachable.
        InputError: non-finite target or robot pose.
    """
    cfg = config or BasePoseConfig()
    target = np.asarray(target_xy, np.float64).ravel()[:2]
    robot = np.asarray(robot_pose, np.float64).ravel()
    if target.size != 2 or not np.all(np.isfinite(target)):
        raise InputError(f"target_xy must be 2 finite numbers (m); got {target_xy}")
    if robot.size < 2 or not np.all(np.isfinite(robot[:2])):
        raise InputError(f"robot_pose must be finite (x, y, yaw); got {robot_pose}")
    if cost_field is None:
        cost_field = (planner or GlobalPlanner()).cost_field(costmap, robot[:2])
    # candidates: approach angle theta (target -> mount), reach d, yaw offset
    theta = np.linspace(-np.pi, np.pi, cfg.n_angles, endpoint=False)
    primary = tuple(cfg.yaw_offsets_rad)
    fallback = tuple(cfg.fallback_yaw_offsets_rad)
    raised = target_z is not None and math.isfinite(target_z) and target_z >= cfg.raised_min_z_m
    if raised and cfg.raised_yaw_offsets_rad:
        primary = tuple(cfg.raised_yaw_offsets_rad)
        fallback = tuple(o for o in cfg.yaw_offsets_rad + cfg.fallback_yaw_offsets_rad
                         if all(abs(o - p) > 1e-9 for p in primary))
    reach_max = cfg.reach_max_m
    n_reach = cfg.n_reach
    if raised and cfg.raised_reach_max_m > reach_max:
        # the same ring spacing, continued out to the raised reach
        step = (cfg.reach_max_m - cfg.reach_min_m) / max(cfg.n_reach - 1, 1)
        extra = max(1, int(round((cfg.raised_reach_max_m - reach_max) / max(step, 1e-6))))
        reach_max, n_reach = cfg.raised_reach_max_m, cfg.n_reach + extra
    reach = np.linspace(cfg.reach_min_m, reach_max, n_reach)
    offs = np.asarray(primary + fallback, np.float64)
    th, d, k = (a.ravel() for a in np.meshgrid(theta, reach, np.arange(len(offs)),
                                               indexing="ij"))
    off, is_fb = offs[k], k >= len(primary)
    yaw = wrap_angle(th + np.pi + off)
    mount = target + d[:, None] * np.column_stack([np.cos(th), np.sin(th)])
    mx, my = cfg.arm_mount_xy
    cy, sy = np.cos(yaw), np.sin(yaw)
    base = mount - np.column_stack([cy * mx - sy * my, sy * mx + cy * my])
    poses = np.column_stack([base, yaw])
    # collision: occupied (and optionally unknown) cell centres near the target, grown by half a
    # cell so that a cell only partly inside the rectangle still counts
    occ = costmap.occupied()
    rr, cc = np.nonzero(occ)
    pts = costmap.cell_to_world(np.stack([rr, cc], -1))
    near = np.linalg.norm(pts - target, axis=1) <= (reach_max + np.hypot(*cfg.footprint_m)
                                                    + abs(mx) + cfg.clearance_cap_m + 0.2)
    pts = pts[near]
    grow = cfg.footprint_padding_m + 0.5 * costmap.resolution
    size = (cfg.footprint_m[0] + 2 * grow, cfg.footprint_m[1] + 2 * grow)
    clear = footprint_clearance(pts, poses, size)
    ok = clear > 0
    if cfg.unknown_is_collision:
        ur, uc = np.nonzero(costmap.unknown())
        upts = costmap.cell_to_world(np.stack([ur, uc], -1))
        ok &= footprint_clearance(upts, poses, size) > 0
    rc = costmap.world_to_cell(base)
    ok &= costmap.in_bounds(rc)
    if not ok.any():
        raise NoBasePoseError(f"no collision-free base pose within reach "
                              f"[{cfg.reach_min_m}, {reach_max}] m of the target "
                              f"({target[0]:.2f}, {target[1]:.2f}) m")
    path_cost = np.full(len(poses), np.inf)
    path_cost[ok] = cost_field.at(base[ok])
    ok &= np.isfinite(path_cost)
    if not ok.any():
        raise NoBasePoseError(f"no reachable base pose for the target ({target[0]:.2f}, "
                              f"{target[1]:.2f}) m: the free candidates are cut off from the robot")
    clearance = clear + grow  # back to the unpadded footprint's clearance
    score = (cfg.path_weight * path_cost
             + cfg.clearance_weight * (cfg.clearance_cap_m - np.minimum(clearance,
                                                                         cfg.clearance_cap_m))
             + cfg.reach_weight * np.abs(d - cfg.reach_preferred_m)
             + cfg.yaw_weight * np.abs(off) + cfg.fallback_weight * is_fb)
    idx = np.nonzero(ok)[0]
    idx = idx[np.argsort(score[idx], kind="stable")]
    return [BasePose(poses[i].copy(), float(score[i]), float(path_cost[i]),
                     float(clearance[i]), float(d[i]), float(off[i])) for i in idx]


def reach_of(pose, target_xy, arm_mount_xy=(0.12, 0.0)) -> float:
    """Horizontal distance (m) from panda_link0 of a base at ``pose`` (x, y, yaw) to a target."""
    x, y, yaw = (float(v) for v in np.asarray(pose, np.float64).ravel()[:3])
    c, s = math.cos(yaw), math.sin(yaw)
    mx = x + c * arm_mount_xy[0] - s * arm_mount_xy[1]
    my = y + s * arm_mount_xy[0] + c * arm_mount_xy[1]
    t = np.asarray(target_xy, np.float64).ravel()
    return float(math.hypot(t[0] - mx, t[1] - my))

