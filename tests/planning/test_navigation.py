"""Navigation library: costmap from synthetic depth, A* vs brute force, base poses, timing."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from katazuke.config import load_config
from katazuke.errors import ConfigError, InputError, KatazukeError
from katazuke.geometry import look_at
from katazuke.planning.navigation import (BasePoseConfig, CellState, CostMap, CostMapConfig,
                                          GlobalPlanner, NoBasePoseError, NoPathError,
                                          PlannerConfig, TimedPath, TimingConfig,
                                          choose_base_pose, reach_of, time_parameterize,
                                          wrap_angle)

K = np.array([[228.5, 0.0, 160.0], [0.0, 228.5, 120.0], [0.0, 0.0, 1.0]])
BOX = ((1.0, -0.4, 0.0), (1.4, 0.4, 0.5))


def render_depth(boxes, T_world_cam, K, width=320, height=240, floor=True):
    """Depth (H, W) float32 m of axis-aligned boxes and the floor z = 0 (inf: no return)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    d = d.reshape(-1, 3) @ T_world_cam[:3, :3].T   # world direction with optical z = 1
    c = T_world_cam[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -c[2] / d[:, 2]
        t = np.where(floor & (t > 0), t, np.inf)
        for lo, hi in boxes:
            t1 = (np.asarray(lo) - c) / d
            t2 = (np.asarray(hi) - c) / d
            tmin = np.nanmax(np.minimum(t1, t2), 1)
            tmax = np.nanmin(np.maximum(t1, t2), 1)
            hit = (tmax >= tmin) & (tmin > 0) & (tmin < t)
            t = np.where(hit, tmin, t)
    return t.reshape(height, width).astype(np.float32)   # t along d = depth (d_z = 1)


def cells_in(cm: CostMap, lo, hi, shrink=0.0) -> np.ndarray:
    xs, ys = cm.cell_centres()
    return (((xs >= lo[0] + shrink) & (xs <= hi[0] - shrink))[None, :]
            & ((ys >= lo[1] + shrink) & (ys <= hi[1] - shrink))[:, None])


@pytest.fixture()
def box_view():
    T = look_at((-0.8, 0.0, 1.4), (1.0, 0.0, 0.0))
    return T, render_depth([BOX], T, K)


def test_config_checks_and_yaml():
    with pytest.raises(ConfigError):
        CostMapConfig(min_obstacle_z_m=1.0, max_obstacle_z_m=0.5)
    with pytest.raises(ConfigError):
        CostMapConfig(robot_radius_m=0.1)          # below the inscribed radius
    with pytest.raises(ConfigError):
        CostMapConfig(resolution_m=0.0)
    with pytest.raises(ConfigError):
        PlannerConfig(search="bfs")
    cfg = load_config(CostMapConfig, {"resolution_m": 0.1, "pixel_stride": 3})
    assert CostMap(cfg).shape == (52, 52)
    assert cfg.circumscribed_radius_m == pytest.approx(math.hypot(0.3, 0.25))


def test_box_scene_occupied_free_unknown(box_view):
    T, depth = box_view
    cm = CostMap(CostMapConfig(pixel_stride=2))
    cm.update(depth, K, T)
    st = cm.state()
    box = cells_in(cm, BOX[0][:2], BOX[1][:2], shrink=0.03)
    assert (st[box] == CellState.OCCUPIED).mean() > 0.9      # top face seen over the box
    floor = cells_in(cm, (0.0, -0.3), (0.8, 0.3))
    assert (st[floor] == CellState.FREE).mean() > 0.97
    shadow = cells_in(cm, (1.55, -0.2), (2.2, 0.2))
    assert (st[shadow] == CellState.UNKNOWN).all()           # hidden behind the box
    behind_camera = cells_in(cm, (-2.5, -0.3), (-1.0, 0.3))
    assert (st[behind_camera] == CellState.UNKNOWN).all()
    # nothing outside the box is marked occupied
    assert not (st[~cells_in(cm, np.subtract(BOX[0][:2], 0.06), np.add(BOX[1][:2], 0.06))]
                == CellState.OCCUPIED).any()


def test_points_above_band_ignored_and_no_return_pixels():
    T = look_at((-1.5, 0.0, 1.3), (1.0, 0.0, 0.0))
    high = ((1.0, -0.4, 1.7), (1.4, 0.4, 2.0))               # a shelf above the robot
    depth = render_depth([high], T, K)
    depth[:10] = np.nan                                      # no return
    cm = CostMap()
    cm.update(depth, K, T)
    assert not cm.occupied().any()
    with pytest.raises(InputError):
        cm.update(depth[0], K, T)
    with pytest.raises(InputError):
        cm.update(depth, K, np.full((4, 4), np.nan))


def test_removed_box_clears(box_view):
    T, depth = box_view
    cm = CostMap()
    for _ in range(4):
        cm.update(depth, K, T)
    box = cells_in(cm, BOX[0][:2], BOX[1][:2], shrink=0.03)
    empty = render_depth([], T, K)
    cfg = cm.config
    persist = math.ceil((cfg.log_odds_max - cfg.occupied_threshold) / cfg.log_odds_miss) - 1
    clear = math.ceil((cfg.log_odds_max - cfg.free_threshold) / cfg.log_odds_miss)
    for _ in range(persist):
        cm.update(empty, K, T)
    assert (cm.state()[box] == CellState.OCCUPIED).mean() > 0.9   # one bad frame does not clear
    for _ in range(clear - persist):
        cm.update(empty, K, T)
    assert (cm.state()[box] == CellState.FREE).mean() > 0.97


def test_inflation_radius_and_cost_decay():
    cm = CostMap()
    cfg = cm.config
    cm.add_box((0.01, 0.01, 0.0), (0.02, 0.02, 0.5))          # a single cell
    occ = np.argwhere(cm.occupied())
    assert len(occ) == 1
    centre = cm.cell_to_world(occ[0])
    xs, ys = cm.cell_centres()
    dist = np.hypot(xs[None, :] - centre[0], ys[:, None] - centre[1])
    cost = cm.cost()
    assert np.all(np.isinf(cost[dist < cfg.robot_radius_m - 1e-9]))
    assert np.all(np.isfinite(cost[dist >= cfg.robot_radius_m + 1e-9]))
    ring = (dist > cfg.robot_radius_m) & (dist < cfg.inflation_radius_m - 1e-6)
    np.testing.assert_allclose(cost[ring], np.exp(-cfg.cost_decay * (dist[ring]
                                                                     - cfg.robot_radius_m)),
                               rtol=1e-5)
    assert np.all(cost[dist >= cfg.inflation_radius_m + 1e-6] == 0)
    # the robot's own footprint never blocks; static priors stay
    cm.mark_clear(centre, 0.1)
    assert not cm.occupied().any()
    cm.add_box((1.0, 1.0, 0.0), (1.2, 1.2, 0.4), static=True)
    cm.mark_clear((1.1, 1.1), 0.3)
    assert cm.occupied().sum() == 16
    cm.add_box((-1.0, -1.0, 0.0), (-0.8, -0.8, 0.4))
    cm.clear_footprint(-0.9, -0.9, 0.7)
    assert cm.occupied().sum() == 16
    cm.add_box((-1.0, -1.0, 1.7), (-0.8, -0.8, 2.0))          # above the band: no obstacle
    assert cm.occupied().sum() == 16


def brute_force_cost(planner: GlobalPlanner, cm: CostMap, s, g) -> float:
    """Dijkstra on an 8-connected graph built cell by cell, independently of the planner."""
    cc = planner.cell_costs(cm)
    rows, cols = cc.shape
    w = planner.config.cost_weight
    src, dst, wt = [], [], []
    for r in range(rows):
        for c in range(cols):
            if not np.isfinite(cc[r, c]):
                continue
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, c2 = r + dr, c + dc
                    if (dr or dc) and 0 <= rr < rows and 0 <= c2 < cols and np.isfinite(cc[rr, c2]):
                        src.append(r * cols + c)
                        dst.append(rr * cols + c2)
                        wt.append(math.hypot(dr, dc) * (1 + w * 0.5 * (cc[r, c] + cc[rr, c2])))
    G = coo_matrix((wt, (src, dst)), shape=(rows * cols, rows * cols)).tocsr()
    d = dijkstra(G, indices=s[0] * cols + s[1])
    return float(d[g[0] * cols + g[1]]) * cm.resolution


def furniture_map(res=0.1) -> CostMap:
    cm = CostMap(CostMapConfig(resolution_m=res))
    rng = np.random.default_rng(3)
    cm.add_box((-0.6, -0.4, 0.0), (0.6, 0.4, 0.55))            # table
    cm.add_box((1.2, 1.6, 0.0), (2.2, 2.0, 1.2))               # shelf
    for _ in range(4):                                          # bins
        x, y = rng.uniform(-2.0, 2.0, 2)
        cm.add_box((x - 0.2, y - 0.15, 0.0), (x + 0.2, y + 0.15, 0.3))
    for lo, hi in [((-2.6, -2.6), (-2.5, 2.6)), ((2.5, -2.6), (2.6, 2.6)),
                   ((-2.6, -2.6), (2.6, -2.5)), ((-2.6, 2.5), (2.6, 2.6))]:
        cm.add_box((*lo, 0.0), (*hi, 2.0), static=True)         # walls
    return cm


@pytest.mark.parametrize("search", ["astar", "dijkstra"])
def test_grid_search_is_optimal(search):
    cm = furniture_map()
    # some unknown (penalised) and some free cells
    cm.log_odds[:, :26] = np.minimum(cm.log_odds[:, :26], cm.config.free_threshold - 0.1)
    planner = GlobalPlanner(PlannerConfig(search=search, prune=False, smooth_iterations=0))
    cc = planner.cell_costs(cm)
    rng = np.random.default_rng(0)
    free = np.argwhere(np.isfinite(cc))
    for _ in range(3):
        s, g = free[rng.integers(len(free), size=2)]
        p = planner.plan(cm, (*cm.cell_to_world(s), 0.0), (*cm.cell_to_world(g), 0.0))
        assert p.cost == pytest.approx(brute_force_cost(planner, cm, s, g), rel=1e-9, abs=1e-9)
        assert np.all(np.isfinite(cc[p.cells[:, 0], p.cells[:, 1]]))
        steps = np.abs(np.diff(p.cells, axis=0))
        assert steps.max() <= 1 and steps.sum(1).min() >= 1      # 8-connected


def segment_costs(cm: CostMap, cc: np.ndarray, poses: np.ndarray) -> np.ndarray:
    xy = poses[:, :2]
    pts = np.vstack([a + np.linspace(0, 1, 20)[:, None] * (b - a) for a, b in zip(xy[:-1], xy[1:])])
    rc = cm.world_to_cell(pts)
    return cc[rc[:, 0], rc[:, 1]]


def test_path_avoids_obstacles_and_is_short():
    cm = furniture_map(res=0.05)
    planner = GlobalPlanner()
    start, goal = np.array([-1.8, -1.8, 0.0]), np.array([1.8, 1.0, 1.0])
    p = planner.plan(cm, start, goal)
    np.testing.assert_allclose(p.poses[0], start)
    np.testing.assert_allclose(p.poses[-1], goal, atol=1e-9)
    assert np.all(np.isfinite(segment_costs(cm, planner.cell_costs(cm), p.poses)))
    step = np.linalg.norm(np.diff(p.poses[:, :2], axis=0), axis=1)
    assert step.max() <= planner.config.spacing_m + 1e-9
    # pruning and smoothing shorten the staircase of the grid path
    raw = cm.cell_to_world(p.cells)
    raw_len = np.linalg.norm(np.diff(raw, axis=0), axis=1).sum()
    assert p.length_m < raw_len
    assert p.length_m >= np.linalg.norm(goal[:2] - start[:2])
    # heading: the travel direction in the middle, the goal's yaw at the end
    mid = len(p.poses) // 2
    d = p.poses[mid + 1, :2] - p.poses[mid - 1, :2]
    assert abs(wrap_angle(p.poses[mid, 2] - math.atan2(d[1], d[0]))) < 0.35


def test_a_hemmed_in_start_is_named_and_clearing_around_the_robot_frees_it():
    """Obstacle cells ring the start closer than the lethal radius with no free cell within
    escape_radius_m: the error names the start as trapped (what the navigator's
    clear-around-robot recovery acts on); once cleared, a path leaves."""
    cm = CostMap(CostMapConfig(resolution_m=0.05))
    for a in np.linspace(0, 2 * np.pi, 48, endpoint=False):   # a ring of posts, 0.35 m out
        x, y = 0.35 * np.cos(a), 0.35 * np.sin(a)
        cm.add_box((x - 0.02, y - 0.02, 0.0), (x + 0.02, y + 0.02, 0.5))
    planner = GlobalPlanner()
    with pytest.raises(NoPathError, match="the start .* inside the inflated") as e:
        planner.plan(cm, (0.0, 0.0, 0.0), (1.8, 0.0, 0.0))
    assert e.value.trapped == "start"
    with pytest.raises(NoPathError) as e2:
        planner.plan(cm, (1.8, 0.0, 0.0), (0.0, 0.0, 0.0))
    assert e2.value.trapped == "goal"
    # choosing a base pose from inside the ring fails the same way (its cost field is anchored
    # at the robot): the navigator's choose step recovers from this as plan() does, and names
    # what is left of it 'trapped' (the task manager's recovery, no charge to the item)
    with pytest.raises(NoPathError) as e3:
        choose_base_pose((1.8, 0.0), cm, (0.0, 0.0, 0.0), planner=planner)
    assert e3.value.trapped == "start"
    from katazuke_ros.navigator_node import _robot_hemmed_in, _trapped_or
    assert _robot_hemmed_in(e3.value) and _trapped_or(e3.value, "no_base_pose") == "trapped"
    assert not _robot_hemmed_in(e2.value) and _trapped_or(e2.value, "no_path") == "no_path"
    cm.mark_clear((0.0, 0.0), 0.8)
    assert planner.plan(cm, (0.0, 0.0, 0.0), (1.8, 0.0, 0.0)).length_m > 1.5
    assert choose_base_pose((1.8, 0.0), cm, (0.0, 0.0, 0.0), planner=planner)


def test_no_path_raises_named_error():
    cm = CostMap(CostMapConfig(resolution_m=0.1))
    cm.add_box((-0.05, -2.6, 0.0), (0.05, 2.6, 1.0))            # a wall across the room
    planner = GlobalPlanner()
    with pytest.raises(NoPathError, match="no path") as e:
        planner.plan(cm, (-1.5, 0.0, 0.0), (1.5, 0.0, 0.0))
    assert isinstance(e.value, KatazukeError)
    with pytest.raises(NoPathError, match="on an obstacle"):
        planner.plan(cm, (-1.5, 0.0, 0.0), (0.0, 0.0, 0.0))
    with pytest.raises(NoPathError, match="outside the costmap"):
        planner.plan(cm, (-1.5, 0.0, 0.0), (9.0, 0.0))
    # unknown space: allowed with a penalty by default, forbidden on request
    empty = CostMap(CostMapConfig(resolution_m=0.1))
    assert GlobalPlanner().plan(empty, (-1.0, 0.0, 0.0), (1.0, 0.0)).length_m == pytest.approx(2.0)
    strict = GlobalPlanner(PlannerConfig(unknown="lethal"))
    with pytest.raises(NoPathError, match="unknown space"):
        strict.plan(empty, (-1.0, 0.0, 0.0), (1.0, 0.0))
    empty.mark_clear((-1.0, 0.0), 0.5)
    with pytest.raises(NoPathError, match="unknown"):
        strict.plan(empty, (-1.0, 0.0, 0.0), (-0.5, 0.4))   # the goal lies in unknown space
    empty.mark_clear((0.0, 0.0), 1.5)
    assert strict.plan(empty, (-1.0, 0.0, 0.0), (1.0, 0.0)).length_m == pytest.approx(2.0)
    # an occupied goal with a tolerance ends next to it
    cm2 = CostMap(CostMapConfig(resolution_m=0.1))
    cm2.add_box((0.9, -0.05, 0.0), (1.0, 0.05, 0.4))
    p = GlobalPlanner(PlannerConfig(goal_tolerance_m=0.6)).plan(cm2, (-1.0, 0.0, 0.0), (0.95, 0.0))
    assert not p.reached_goal
    assert np.linalg.norm(p.poses[-1, :2] - (0.95, 0.0)) <= 0.6


def test_start_inside_inflation_escapes():
    cm = CostMap(CostMapConfig(resolution_m=0.05))
    cm.add_box((0.0, -1.0, 0.0), (0.4, 1.0, 0.8))
    start = np.array([-0.2, 0.0, 0.0])                           # 0.2 m from the box
    assert np.isinf(cm.cost()[tuple(cm.world_to_cell(start[:2]))])
    p = GlobalPlanner().plan(cm, start, (-1.5, 1.5, 0.0))
    np.testing.assert_allclose(p.poses[0], start)
    d = cm.distance()
    rc = cm.world_to_cell(p.poses[:, :2])
    clearance = d[rc[:, 0], rc[:, 1]]
    assert clearance[0] < cm.config.robot_radius_m
    assert np.all(clearance[len(p.poses) // 3:] >= cm.config.robot_radius_m)
    assert not cm.occupied()[rc[:, 0], rc[:, 1]].any()
    # too deep in the inflation: escape radius exceeded
    with pytest.raises(NoPathError, match="escape_radius_m"):
        GlobalPlanner(PlannerConfig(escape_radius_m=0.1)).plan(cm, start, (-1.5, 1.5, 0.0))


def test_plan_time_budget():
    import time
    cm = furniture_map(res=0.05)                                 # 104 x 104 cells
    planner = GlobalPlanner()
    planner.plan(cm, (-1.8, -1.8, 0.0), (1.8, 1.0, 0.0))
    t0 = time.perf_counter()
    for _ in range(3):
        planner.plan(cm, (-1.8, -1.8, 0.0), (1.8, 1.0, 0.0))
    assert (time.perf_counter() - t0) / 3 < 0.25                 # generous on a shared 2-core box


def table_map() -> tuple[CostMap, tuple, tuple]:
    cm = CostMap(CostMapConfig(resolution_m=0.05))
    table = ((-0.6, -0.4, 0.0), (0.6, 0.4, 0.55))
    cm.add_box(*table)
    cm.add_box((0.9, -1.0, 0.0), (1.3, 1.0, 0.3))                 # a bin row beside the table
    return cm, table, (0.4, 0.1)


def test_base_pose_collision_free_within_reach():
    cm, table, target = table_map()
    cfg = BasePoseConfig()
    robot = (-2.0, -2.0, 0.0)
    poses = choose_base_pose(target, cm, robot, cfg)
    assert len(poses) > 3
    scores = [p.score for p in poses]
    assert scores == sorted(scores)
    occ = cm.occupied()
    for bp in poses[:10]:
        x, y, yaw = bp.pose
        assert not (occ & cm.footprint_cells(x, y, yaw, cfg.footprint_padding_m)).any()
        r = reach_of(bp.pose, target, cfg.arm_mount_xy)
        assert cfg.reach_min_m - 1e-9 <= r <= cfg.reach_max_m + 1e-9
        assert r == pytest.approx(bp.reach_m)
        # facing the target: it lies ahead of the arm mount within the yaw offsets
        mount = np.array([x, y]) + cfg.arm_mount_xy[0] * np.array([math.cos(yaw), math.sin(yaw)])
        bearing = math.atan2(target[1] - mount[1], target[0] - mount[0])
        assert abs(wrap_angle(bearing - yaw)) <= max(map(abs, cfg.yaw_offsets_rad)) + 1e-9
        assert np.isfinite(bp.path_cost)
    # the +x edge is nearest the target but the bins leave no room there: the +y edge wins
    best = poses[0].pose
    assert best[1] > table[1][1] and best[0] < 0.9
    # a target in the middle of a wide block cannot be reached
    blocked = CostMap(CostMapConfig(resolution_m=0.05))
    blocked.add_box((-1.5, -1.5, 0.0), (1.5, 1.5, 0.7))
    with pytest.raises(NoBasePoseError):
        choose_base_pose((0.0, 0.0), blocked, (-2.2, -2.2, 0.0), cfg)
    # never-seen floor around the target is acceptable by default, not when asked
    unseen = CostMap(CostMapConfig(resolution_m=0.05))
    assert choose_base_pose((0.0, 0.0), unseen, (-2.0, 0.0, 0.0), cfg)
    with pytest.raises(NoBasePoseError):
        choose_base_pose((0.0, 0.0), unseen, (-2.0, 0.0, 0.0),
                         BasePoseConfig(unknown_is_collision=True))


def test_fallback_yaw_offsets_reach_a_target_in_from_a_table_edge():
    # the deployment's pre-grasp: the base turned 0.5-0.9 rad off the target (the folded arm
    # out of the camera's view); a toy 0.3 m in from the table's edge is then out of reach
    cm = CostMap(CostMapConfig(resolution_m=0.05))
    cm.add_box((-0.6, -0.35, 0.0), (0.6, 0.35, 0.55))
    target, robot = (0.1, -0.05), (0.0, -2.0, 0.0)
    turned = dict(reach_max_m=0.6, reach_preferred_m=0.45, yaw_offsets_rad=(0.7, 0.5, 0.9))
    with pytest.raises(NoBasePoseError):
        choose_base_pose(target, cm, robot, BasePoseConfig(**turned))
    cfg = BasePoseConfig(**turned, fallback_yaw_offsets_rad=(0.0, -0.25, 0.25))
    poses = choose_base_pose(target, cm, robot, cfg)
    assert {round(p.yaw_offset, 2) for p in poses} <= {0.0, -0.25, 0.25}
    best = poses[0]
    assert best.pose[1] < -0.35 and best.reach_m <= 0.6 + 1e-9
    # with room to turn, the preferred offsets win over the fallback
    cm_free = CostMap(CostMapConfig(resolution_m=0.05))
    assert choose_base_pose(target, cm_free, robot, cfg)[0].yaw_offset in (0.7, 0.5, 0.9)


def test_a_raised_target_faces_the_shelf():
    # a shelf against the +y wall, an object 0.15 m in on its lower board (0.33 m high)
    cm = CostMap(CostMapConfig(resolution_m=0.05))
    cm.add_box((-0.5, 0.0, 0.0), (0.5, 0.35, 1.3))
    cm.add_box((-2.0, 0.35, 0.0), (2.0, 0.45, 2.0))
    target, robot = (0.0, 0.15), (0.0, -2.0, 0.0)
    turned = dict(reach_max_m=0.6, reach_preferred_m=0.45, yaw_offsets_rad=(0.7, 0.5, 0.9),
                  fallback_yaw_offsets_rad=(0.0, -0.25, 0.25), raised_min_z_m=0.25,
                  raised_yaw_offsets_rad=(0.0, -0.25, 0.25))
    cfg = BasePoseConfig(**turned)
    floor_like = choose_base_pose(target, cm, robot, cfg)[0]        # height unknown
    low = choose_base_pose(target, cm, robot, cfg, target_z=0.1)[0]
    raised = choose_base_pose(target, cm, robot, cfg, target_z=0.33)[0]
    assert abs(floor_like.yaw_offset) >= 0.5 and abs(low.yaw_offset) >= 0.5
    assert raised.yaw_offset in (0.0, -0.25, 0.25)
    assert raised.reach_m <= 0.6 + 1e-9 and raised.pose[1] < 0.0
    # the turned offsets remain the raised target's fallbacks
    assert {round(p.yaw_offset, 2) for p in choose_base_pose(target, cm, robot, cfg,
                                                             target_z=0.33)} >= {0.7}
    with pytest.raises(KatazukeError):
        BasePoseConfig(raised_min_z_m=0.0)


def test_a_raised_target_in_the_middle_of_a_table_is_reached_farther_out():
    # a 1.2 x 0.84 m table, the object at its centre: 0.42 m in from the long edges; the
    # base (0.6 x 0.5 m + 5 cm padding) cannot get the arm mount within 0.6 m of it
    cm = CostMap(CostMapConfig(resolution_m=0.05))
    cm.add_box((-0.6, -0.42, 0.0), (0.6, 0.42, 0.55))
    target, robot = (0.0, 0.0), (0.0, -2.0, 0.0)
    cfg = BasePoseConfig(reach_max_m=0.6, reach_preferred_m=0.45, yaw_offsets_rad=(0.0,),
                         raised_min_z_m=0.25, raised_reach_max_m=0.7)
    with pytest.raises(NoBasePoseError):
        choose_base_pose(target, cm, robot, cfg, target_z=0.1)     # a floor target
    best = choose_base_pose(target, cm, robot, cfg, target_z=0.58)[0]
    assert 0.6 < best.reach_m <= 0.7 + 1e-9


def test_base_pose_path_reaches_it():
    cm, _, target = table_map()
    robot = (-2.0, -2.0, 0.0)
    best = choose_base_pose(target, cm, robot)[0]
    p = GlobalPlanner().plan(cm, robot, best.pose)
    np.testing.assert_allclose(p.poses[-1], best.pose, atol=1e-9)
    rc = cm.world_to_cell(p.poses[:, :2])
    assert not cm.occupied()[rc[:, 0], rc[:, 1]].any()


def corner_path() -> np.ndarray:
    xy = np.vstack([np.column_stack([np.linspace(0, 2, 21), np.zeros(21)]),
                    np.column_stack([np.full(20, 2.0), np.linspace(0.1, 2, 20)])])
    seg = np.diff(xy, axis=0)
    yaw = np.concatenate([np.arctan2(seg[:, 1], seg[:, 0]), [math.pi / 2]])
    return np.column_stack([xy, yaw])


def test_time_parameterisation_respects_limits():
    cfg = TimingConfig(v_max=0.5, w_max=1.0, a_max=0.5, a_lat_max=0.3)
    poses = corner_path()
    tp = time_parameterize(poses, cfg)
    ds = np.linalg.norm(np.diff(poses[:, :2], axis=0), axis=1)
    dt = np.diff(tp.t)
    assert tp.t[0] == 0 and np.all(dt > 0)
    assert tp.speed[0] == 0 and tp.speed[-1] == 0
    assert tp.speed.max() <= cfg.v_max + 1e-9
    assert tp.speed.max() > 0.9 * cfg.v_max                   # the straights reach cruise speed
    # |v1^2 - v0^2| <= 2 a ds: acceleration within a_max; the segment time matches the profile
    assert np.all(np.abs(np.diff(tp.speed ** 2)) <= 2 * cfg.a_max * ds + 1e-9)
    np.testing.assert_allclose(ds / dt, 0.5 * (tp.speed[1:] + tp.speed[:-1]), rtol=1e-9)
    assert np.all(np.abs(wrap_angle(np.diff(poses[:, 2]))) / dt <= cfg.w_max + 1e-9)
    corner = 20
    assert tp.speed[corner] <= math.sqrt(cfg.a_lat_max / ((math.pi / 2) / 0.1)) + 1e-9
    # feedforward points along the path, in the path frame; base frame: forward along x here
    np.testing.assert_allclose(tp.velocity[5, :2], [tp.speed[5], 0.0], atol=1e-9)
    np.testing.assert_allclose(tp.velocity_base()[30, :2], [tp.speed[30], 0.0], atol=1e-9)
    # trapezoid on a straight: rest-to-rest duration of the analytic profile
    line = np.column_stack([np.linspace(0, 2, 41), np.zeros(41), np.zeros(41)])
    tl = time_parameterize(line, cfg)
    assert tl.duration == pytest.approx(2 / cfg.v_max + cfg.v_max / cfg.a_max, rel=1e-9)


def test_a_short_path_from_a_creeping_start_takes_seconds_not_days():
    """Odometry reported 1e-7 m/s: a 5 cm path was stamped 504382 s long (constant
    acceleration between two nearly resting ends) and the base crawled."""
    cfg = TimingConfig(v_max=0.5, a_max=0.5)
    short = np.array([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0]])
    for v0 in (0.0, 1e-7, 1e-3):
        tp = time_parameterize(short, cfg, v_start=v0)
        assert tp.duration <= 2 * math.sqrt(0.05 / cfg.a_max) + 1e-9, (v0, tp.duration)
        assert tp.duration > 0.3


def test_time_parameterisation_rotation_and_sampling():
    cfg = TimingConfig(w_max=1.0, alpha_max=2.0)
    spin = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    tp = time_parameterize(spin, cfg)
    assert tp.duration == pytest.approx(2.0 / cfg.w_max + cfg.w_max / cfg.alpha_max)
    line = np.column_stack([np.linspace(0, 1, 11), np.zeros(11), np.zeros(11)])
    tl = time_parameterize(line, cfg)
    pose, vel = tl.sample(0.5 * tl.duration)
    assert pose[0] == pytest.approx(0.5, abs=0.06) and vel[0] > 0
    pose, vel = tl.sample(tl.duration + 1.0)
    np.testing.assert_allclose(pose, line[-1])
    assert not vel.any()
    # a consumer of the stamped poses recovers the same feedforward
    rebuilt = TimedPath.from_stamped(tl.poses, 100.0 + tl.t)
    np.testing.assert_allclose(rebuilt.t, tl.t)
    np.testing.assert_allclose(rebuilt.velocity[2:-2], tl.velocity[2:-2], atol=0.05)
    with pytest.raises(InputError):
        time_parameterize(np.zeros((3, 2)))
    with pytest.raises(InputError):
        TimedPath.from_stamped(line, tl.t[::-1])


def test_update_timing_320x240(box_view):
    import time
    T, depth = box_view
    cm = CostMap(CostMapConfig(pixel_stride=4))
    cm.update(depth, K, T)
    t0 = time.perf_counter()
    for _ in range(5):
        cm.update(depth, K, T)
    assert (time.perf_counter() - t0) / 5 < 0.05               # a few ms; generous when shared


def test_short_step_keeps_heading_and_escape_keeps_clearance():
    cm = CostMap(CostMapConfig(resolution_m=0.05))
    cm.mark_clear((0.0, 0.0), 2.0)
    p = GlobalPlanner().plan(cm, (0.0, 0.0, 0.0), (-0.4, 0.0, 0.0))   # a step backwards
    assert np.abs(p.poses[:, 2]).max() < 1e-9
    # a goal pose close to a wall (as for a pre-grasp pose): the final approach keeps the
    # inscribed circle off the wall
    cm.add_box((0.5, -1.0, 0.0), (0.7, 1.0, 0.8))
    goal = (0.5 - 0.3, 0.0, 0.0)
    p = GlobalPlanner().plan(cm, (-1.5, 0.8, 0.0), goal)
    np.testing.assert_allclose(p.poses[-1], goal, atol=1e-9)
    d = cm.distance()
    rc = cm.world_to_cell(p.poses[:, :2])
    assert d[rc[:, 0], rc[:, 1]].min() >= cm.config.inscribed_radius_m - cm.resolution


def test_camera_above_the_band():
    """A camera mounted above max_obstacle_z_m still marks the box and clears the floor."""
    T = look_at((-0.8, 0.0, 2.0), (1.0, 0.0, 0.0))
    depth = render_depth([BOX], T, K)
    cm = CostMap(CostMapConfig(max_obstacle_z_m=1.6, pixel_stride=2))
    cm.update(depth, K, T)
    st = cm.state()
    assert (st[cells_in(cm, BOX[0][:2], BOX[1][:2], shrink=0.03)] == CellState.OCCUPIED).mean() > 0.9
    assert (st[cells_in(cm, (0.2, -0.3), (0.8, 0.3))] == CellState.FREE).mean() > 0.97


def test_self_filter_drops_the_robots_own_body_and_keeps_the_rest(box_view):
    """A held object in front of the camera (a small box at 0.5 m) is dropped by an exclude
    sphere around it; the box behind stays an obstacle; bad spheres are refused."""
    T, _ = box_view
    held = ((-0.35, -0.08, 0.35), (-0.2, 0.08, 0.5))          # in the gripper, ahead of the camera
    depth = render_depth([BOX, held], T, K)
    plain, filtered = CostMap(CostMapConfig(pixel_stride=2)), CostMap(CostMapConfig(pixel_stride=2))
    plain.update(depth, K, T)
    centre = 0.5 * (np.add(held[0], held[1]))
    out = filtered.update(depth, K, T, exclude=np.array([[*centre, 0.16]]))
    held_cells = cells_in(plain, held[0][:2], held[1][:2], shrink=0.02)
    assert (plain.state()[held_cells] == CellState.OCCUPIED).any()      # without: an obstacle
    assert not (filtered.state()[held_cells] == CellState.OCCUPIED).any()
    assert out["self"] > 0
    box = cells_in(filtered, BOX[0][:2], BOX[1][:2], shrink=0.03)
    assert (filtered.state()[box] == CellState.OCCUPIED).mean() > 0.9   # the rest is kept
    with pytest.raises(InputError):
        filtered.update(depth, K, T, exclude=np.array([[np.nan, 0.0, 0.0, 0.1]]))
