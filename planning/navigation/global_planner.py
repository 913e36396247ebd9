"""Global planner: cost-aware A* (or Dijkstra) on the inflated grid, then pruning and smoothing.

The search graph is the 8-connected grid of non-lethal cells. Moving between neighbouring
cells ``u``, ``v`` costs ``length_m * (1 + cost_weight * (c_u + c_v) / 2)`` where ``c`` is the
costmap's inflation cost plus ``unknown_cost`` on unknown cells; the octile distance is an
admissible, consistent heuristic for it, so A* returns an optimal grid path. Both searches give
the same cost; A* expands fewer cells, Dijkstra (``scipy.sparse.csgraph``) also yields the
cost-to-come field of every cell (:meth:`GlobalPlanner.cost_field`, used to score base poses).

A start or goal inside the lethal inflation (the robot parked close to furniture, a pre-grasp
pose next to the table) is joined to the nearest non-lethal cell, within ``escape_radius_m``, by
a straight segment that crosses no occupied cell. The grid path is then pruned by
line-of-sight (a shortcut may not enter costlier cells than the part it replaces) and
smoothed, and resampled as ``(x, y, yaw)`` poses.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass as _plain_dataclass
from typing import Literal

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from katazuke.config import dataclass, field, non_negative, positive
from katazuke.errors import ConfigError, InputError, KatazukeError
from katazuke.planning.navigation.costmap import CostMap

__all__ = ["NavigationError", "NoPathError", "PlannerConfig", "GlobalPath", "GlobalPlanner",
           "CostField", "wrap_angle"]

SQRT2 = math.sqrt(2.0)
# 8-connected neighbour offsets (drow, dcol) and their lengths in cells
_OFFSETS = [(0, 1, 1.0), (1, 0, 1.0), (0, -1, 1.0), (-1, 0, 1.0),
            (1, 1, SQRT2), (1, -1, SQRT2), (-1, 1, SQRT2), (-1, -1, SQRT2)]


class NavigationError(KatazukeError):
    """Base class of the navigation library's planning failures."""


class NoPathError(NavigationError):
    """No collision-free path joins the start and the goal on the current map.

    Attributes:
        trapped: ``"start"`` or ``"goal"`` when that end sits in the lethal inflation with no
            free cell within reach (or on an obstacle), ``""`` otherwise.
    """

    def __init__(self, message: str, trapped: str = "") -> None:
        super().__init__(message)
        self.trapped = trapped


def wrap_angle(a):
    """Angles wrapped into ``[-pi, pi)``."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


@dataclass(frozen=True)
class PlannerConfig:
    """Configuration of :class:`GlobalPlanner`."""

    search: Literal["astar", "dijkstra"] = field(default="astar", metadata={
        "help": "astar (heapq, octile heuristic) or dijkstra (scipy csgraph); same cost"})
    unknown: Literal["penalty", "free", "lethal"] = field(default="penalty", metadata={
        "help": "unknown cells: traversable with unknown_cost, free, or forbidden"})
    unknown_cost: float = non_negative(0.5, "extra cell cost of unknown cells (inflation "
                                       "cost units, 1 = the lethal boundary)")
    cost_weight: float = non_negative(3.0, "edge cost = length * (1 + cost_weight * cell cost)")
    escape_radius_m: float = non_negative(0.6, "a start/goal in the lethal inflation is joined "
                                          "to a non-lethal cell at most this far, m")
    goal_tolerance_m: float = non_negative(0.0, "a goal on an occupied cell may end the path "
                                           "this far from it, m (0: such a goal is an error)")
    prune: bool = field(default=True, metadata={"help": "line-of-sight pruning of the grid path"})
    smooth_iterations: int = field(default=30, metadata={
        "help": "smoothing sweeps over the resampled path (0: none)", "check": "non_negative"})
    smooth_weight: float = non_negative(0.25, "pull of each point towards its neighbours' mean")
    spacing_m: float = positive(0.1, "distance between output poses, m")
    heading: Literal["tangent", "interpolate"] = field(default="tangent", metadata={
        "help": "yaw along the path: the travel direction, or interpolated start -> goal"})
    yaw_blend_m: float = non_negative(0.3, "with tangent heading: blend from the start yaw and "
                                      "into the goal yaw over this distance, m")
    tangent_min_length_m: float = non_negative(0.6, "paths shorter than this interpolate the "
                                               "yaw even with tangent heading (no turning "
                                               "round for a short holonomic step), m")

    def __post_init__(self) -> None:
        if self.search not in ("astar", "dijkstra"):
            raise ConfigError(f"PlannerConfig.search={self.search!r}: use astar or dijkstra")
        if self.unknown not in ("penalty", "free", "lethal"):
            raise ConfigError(f"PlannerConfig.unknown={self.unknown!r}: use penalty, free or "
                              "lethal")
        if self.heading not in ("tangent", "interpolate"):
            raise ConfigError(f"PlannerConfig.heading={self.heading!r}: use tangent or interpolate")


@_plain_dataclass
class GlobalPath:
    """A planned path.

    Attributes:
        poses: ``(N, 3)`` ``(x, y, yaw)`` in ``map`` (m, m, rad), N >= 2, from the start to the
            goal, about ``spacing_m`` apart.
        cost: the grid search's cost (m-equivalent) of the path.
        length_m: length of ``poses``' polyline, m.
        cells: ``(M, 2)`` (row, col) of the raw grid path.
        reached_goal: False when the goal was occupied and the path ends within
            ``goal_tolerance_m`` of it.
    """

    poses: np.ndarray
    cost: float
    length_m: float
    cells: np.ndarray
    reached_goal: bool = True


@_plain_dataclass
class CostField:
    """Cost-to-come from a start over the whole grid (:meth:`GlobalPlanner.cost_field`).

    Attributes:
        cost: ``(rows, cols)`` float64 path cost to each cell (``inf``: unreachable or lethal).
        costmap: the map it was computed on.
    """

    cost: np.ndarray
    costmap: CostMap
    _escape_index: np.ndarray | None = None

    def at(self, xy) -> np.ndarray:
        """Path cost ``(...)`` to map points ``xy`` ``(..., 2)``; a point in the lethal inflation
        gets the cost of its nearest non-lethal cell plus the straight distance to it."""
        xy = np.asarray(xy, np.float64)
        cm = self.costmap
        rc = cm.world_to_cell(xy)
        inside = cm.in_bounds(rc)
        out = np.full(xy.shape[:-1], np.inf)
        if self._escape_index is None:
            _, idx = ndimage.distance_transform_edt(cm.lethal(), return_indices=True)
            self._escape_index = idx
        r, c = rc[inside, 0], rc[inside, 1]
        er, ec = self._escape_index[0][r, c], self._escape_index[1][r, c]
        hop = np.linalg.norm(cm.cell_to_world(np.stack([er, ec], -1)) - xy[inside], axis=-1)
        out[inside] = self.cost[er, ec] + hop
        return out


def _octile(dr: float, dc: float) -> float:
    dr, dc = abs(dr), abs(dc)
    return max(dr, dc) + (SQRT2 - 1.0) * min(dr, dc)


class GlobalPlanner:
    """Plans base paths on a :class:`~katazuke.planning.navigation.costmap.CostMap`.

    Args:
        config: search, unknown-cell policy, escape, smoothing.
    """

    def __init__(self, config: PlannerConfig | None = None) -> None:
        self.config = config or PlannerConfig()

    # ------------------------------------------------------------------ costs
    def cell_costs(self, costmap: CostMap) -> np.ndarray:
        """``(rows, cols)`` float64 traversal cost per cell (``inf``: not traversable)."""
        c = costmap.cost().astype(np.float64)
        unk = costmap.unknown()
        if self.config.unknown == "lethal":
            c[unk] = np.inf
        elif self.config.unknown == "penalty":
            c[unk] += self.config.unknown_cost
        return c

    def graph(self, cell_cost: np.ndarray) -> csr_matrix:
        """The 8-connected search graph as a sparse matrix over flat cell indices (edge costs in
        cells; multiply by the resolution for metres)."""
        rows, cols = cell_cost.shape
        n = rows * cols
        ok = np.isfinite(cell_cost)
        idx = np.arange(n).reshape(rows, cols)
        src, dst, w = [], [], []
        w_cost = self.config.cost_weight
        for dr, dc, length in _OFFSETS:
            r0, r1 = max(0, -dr), rows - max(0, dr)
            c0, c1 = max(0, -dc), cols - max(0, dc)
            a = (slice(r0, r1), slice(c0, c1))
            b = (slice(r0 + dr, r1 + dr), slice(c0 + dc, c1 + dc))
            m = ok[a] & ok[b]
            src.append(idx[a][m])
            dst.append(idx[b][m])
            w.append(length * (1.0 + w_cost * 0.5 * (cell_cost[a][m] + cell_cost[b][m])))
        return csr_matrix((np.concatenate(w), (np.concatenate(src), np.concatenate(dst))),
                          shape=(n, n))

    # ------------------------------------------------------------------ ends
    def _anchor(self, costmap: CostMap, cell_cost: np.ndarray, xy: np.ndarray, what: str,
                tolerance: float) -> tuple[tuple[int, int], bool]:
        """The traversable cell a start/goal point joins, and whether the point itself is usable
        (False: occupied, so the path ends at the anchor instead)."""
        rc = costmap.world_to_cell(xy)
        if not costmap.in_bounds(rc):
            raise NoPathError(f"the {what} ({xy[0]:.2f}, {xy[1]:.2f}) m lies outside the "
                              f"costmap; enlarge CostMapConfig.size_m/origin_xy")
        r, c = int(rc[0]), int(rc[1])
        if np.isfinite(cell_cost[r, c]):
            return (r, c), True
        if self.config.unknown == "lethal" and costmap.unknown()[r, c]:
            raise NoPathError(f"the {what} ({xy[0]:.2f}, {xy[1]:.2f}) m is in unknown space and "
                              "PlannerConfig.unknown='lethal' (mark_clear the robot's footprint "
                              "or allow unknown cells)")
        occ = costmap.occupied()
        usable = not occ[r, c]
        radius = self.config.escape_radius_m if usable else tolerance
        trav = np.isfinite(cell_cost)
        rr, cc = np.nonzero(trav)
        centres = costmap.cell_to_world(np.stack([rr, cc], -1))
        d = np.linalg.norm(centres - xy, axis=1)
        order = np.argsort(d)
        order = order[d[order] <= radius][:64]
        # the escape keeps the clearance the point has (up to the inscribed radius), so the
        # base's inscribed circle never touches an obstacle on the way in or out
        dist = costmap.distance()
        keep = min(float(dist[r, c]), costmap.config.inscribed_radius_m)
        for k in order:
            if usable and not self._segment_free(costmap, dist, xy, centres[k], keep):
                continue
            return (int(rr[k]), int(cc[k])), usable
        if usable:
            raise NoPathError(f"the {what} ({xy[0]:.2f}, {xy[1]:.2f}) m is inside the inflated "
                              f"obstacles and no free cell is within escape_radius_m="
                              f"{self.config.escape_radius_m} m of it", trapped=what)
        raise NoPathError(f"the {what} ({xy[0]:.2f}, {xy[1]:.2f}) m is on an obstacle"
                          + (f" and no free cell is within goal_tolerance_m={tolerance} m"
                             if tolerance > 0 else " (goal_tolerance_m=0)"), trapped=what)

    @staticmethod
    def _segment_free(costmap: CostMap, dist: np.ndarray, a: np.ndarray, b: np.ndarray,
                      clearance: float) -> bool:
        """Whether every point of ``a -> b`` is on the map, off occupied cells and at least
        ``clearance`` (m, minus half a cell) from the nearest occupied cell centre."""
        n = max(2, int(math.ceil(np.linalg.norm(b - a) / (0.5 * costmap.resolution))) + 1)
        pts = a + np.linspace(0.0, 1.0, n)[:, None] * (b - a)
        rc = costmap.world_to_cell(pts)
        if not costmap.in_bounds(rc).all():
            return False
        d = dist[rc[:, 0], rc[:, 1]]
        return bool(np.all(d > 0) and np.all(d >= clearance - 0.5 * costmap.resolution - 1e-9))

    # ------------------------------------------------------------------ search
    def _astar(self, cell_cost: np.ndarray, start: tuple[int, int],
               goal: tuple[int, int]) -> tuple[list[int], float]:
        rows, cols = cell_cost.shape
        W = cols + 2
        pad = np.full((rows + 2, W), np.inf)
        pad[1:-1, 1:-1] = cell_cost
        cost = pad.ravel().tolist()
        n = len(cost)
        wc = 0.5 * self.config.cost_weight
        nbrs = [(dr * W + dc, length) for dr, dc, length in _OFFSETS]
        s = (start[0] + 1) * W + start[1] + 1
        g_idx = (goal[0] + 1) * W + goal[1] + 1
        gr, gc = goal[0] + 1, goal[1] + 1
        inf = math.inf
        g = [inf] * n
        parent = [-1] * n
        closed = bytearray(n)
        g[s] = 0.0
        heap = [(_octile(start[0] + 1 - gr, start[1] + 1 - gc), 0.0, s)]
        k = SQRT2 - 1.0
        pop, push = heapq.heappop, heapq.heappush
        while heap:
            _, gu, u = pop(heap)
            if closed[u]:
                continue
            if u == g_idx:
                break
            closed[u] = 1
            cu = cost[u]
            for off, length in nbrs:
                v = u + off
                cv = cost[v]
                if cv == inf or closed[v]:
                    continue
                ng = gu + length * (1.0 + wc * (cu + cv))
                if ng < g[v]:
                    g[v] = ng
                    parent[v] = u
                    vr, vc = divmod(v, W)
                    dr = vr - gr if vr > gr else gr - vr
                    dc = vc - gc if vc > gc else gc - vc
                    h = dr + k * dc if dr > dc else dc + k * dr
                    push(heap, (ng + h, ng, v))
        if g[g_idx] == inf:
            return [], inf
        path = [g_idx]
        while path[-1] != s:
            path.append(parent[path[-1]])
        path.reverse()
        return [(p // W - 1) * cols + (p % W - 1) for p in path], g[g_idx]

    def _dijkstra(self, cell_cost: np.ndarray, start: tuple[int, int],
                  goal: tuple[int, int]) -> tuple[list[int], float]:
        cols = cell_cost.shape[1]
        s, t = start[0] * cols + start[1], goal[0] * cols + goal[1]
        dist, pred = dijkstra(self.graph(cell_cost), indices=s, return_predecessors=True)
        if not np.isfinite(dist[t]):
            return [], math.inf
        path = [t]
        while path[-1] != s:
            path.append(int(pred[path[-1]]))
        path.reverse()
        return path, float(dist[t])

    def cost_field(self, costmap: CostMap, start_xy) -> CostField:
        """Cost-to-come (m-equivalent) from ``start_xy`` (map, m) to every cell.

        Raises:
            NoPathError: the start is off the map or cannot escape the inflation.
        """
        xy = self._point(start_xy, "start")
        cc = self.cell_costs(costmap)
        (r, c), _ = self._anchor(costmap, cc, xy, "start", 0.0)
        hop = float(np.linalg.norm(costmap.cell_to_world((r, c)) - xy))
        dist = dijkstra(self.graph(cc), indices=r * cc.shape[1] + c)
        return CostField(dist.reshape(cc.shape) * costmap.resolution + hop, costmap)

    @staticmethod
    def _point(p, what: str, n: int = 2) -> np.ndarray:
        p = np.asarray(p, np.float64).ravel()
        if p.size < n or not np.all(np.isfinite(p[:n])):
            raise InputError(f"the {what} must hold {n} finite numbers (x, y[, yaw]); got {p}")
        return p

    def plan(self, costmap: CostMap, start, goal) -> GlobalPath:
        """Plan from ``start`` to ``goal``.

        Args:
            costmap: the map (its inflated cost and unknown cells).
            start: ``(x, y, yaw)`` of the base in ``map`` (m, m, rad).
            goal: ``(x, y, yaw)`` or ``(x, y)`` (then the path's final yaw is its travel
                direction).

        Returns:
            :class:`GlobalPath`.

        Raises:
            NoPathError: start/goal off the map, stuck in the inflation beyond
                ``escape_radius_m``, goal on an obstacle, or no connection.
            InputError: non-finite or short start/goal.
        """
        cfg = self.config
        start = self._point(start, "start", 3)
        goal = self._point(goal, "goal", 2)
        cc = self.cell_costs(costmap)
        s_rc, _ = self._anchor(costmap, cc, start[:2], "start", 0.0)
        g_rc, goal_ok = self._anchor(costmap, cc, goal[:2], "goal", cfg.goal_tolerance_m)
        search = self._astar if cfg.search == "astar" else self._dijkstra
        flat, cost = search(cc, s_rc, g_rc)
        if not flat:
            raise NoPathError(f"no path from ({start[0]:.2f}, {start[1]:.2f}) to ({goal[0]:.2f}, "
                              f"{goal[1]:.2f}) m: the goal is cut off by obstacles"
                              + (" or unknown space (PlannerConfig.unknown='lethal')"
                                 if cfg.unknown == "lethal" else ""))
        cells = np.stack(np.divmod(np.asarray(flat), cc.shape[1]), -1)
        xy = costmap.cell_to_world(cells)
        end = goal[:2] if goal_ok else xy[-1]
        # an end in a traversable cell takes part in the pruning; one in the inflation stays a
        # separate escape segment (a shortcut from it could cut through lethal cells)
        head = self._traversable(costmap, cc, start[:2])
        tail = self._traversable(costmap, cc, end)
        xy = np.vstack([start[:2]] * head + [xy] + [end[None]] * tail)
        if cfg.prune:
            xy = self._prune(costmap, cc, xy)
        xy = np.vstack([start[:2]] * (not head) + [xy] + [end[None]] * (not tail))
        xy = _dedupe(xy, 1e-6)
        xy = _resample(xy, cfg.spacing_m)
        if cfg.smooth_iterations > 0 and len(xy) > 2:
            xy = self._smooth(costmap, cc, xy)
        if len(xy) == 1:
            xy = np.vstack([xy, xy])
        goal_yaw = float(goal[2]) if goal.size >= 3 else None
        yaw = self._headings(xy, float(start[2]), goal_yaw)
        poses = np.column_stack([xy, yaw])
        length = float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum())
        return GlobalPath(poses, float(cost) * costmap.resolution, length, cells, goal_ok)

    # ------------------------------------------------------------------ post-processing
    @staticmethod
    def _traversable(costmap: CostMap, cc: np.ndarray, xy: np.ndarray) -> bool:
        rc = costmap.world_to_cell(xy)
        return bool(costmap.in_bounds(rc)) and bool(np.isfinite(cc[rc[0], rc[1]]))

    def _max_cost_on(self, costmap: CostMap, cc: np.ndarray, a: np.ndarray,
                     b: np.ndarray) -> float:
        n = max(2, int(math.ceil(np.linalg.norm(b - a) / (0.5 * costmap.resolution))) + 1)
        pts = a + np.linspace(0.0, 1.0, n)[:, None] * (b - a)
        rc = costmap.world_to_cell(pts)
        if not costmap.in_bounds(rc).all():
            return math.inf
        return float(cc[rc[:, 0], rc[:, 1]].max())

    def _prune(self, costmap: CostMap, cc: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """Greedy line-of-sight pruning: keep a vertex only where the straight shortcut would
        cross a lethal cell or a costlier cell than the stretch of path it replaces."""
        if len(xy) <= 2:
            return xy
        rc = costmap.world_to_cell(xy)
        c_path = cc[rc[:, 0], rc[:, 1]]
        out = [0]
        i = 0
        while i < len(xy) - 1:
            j = i + 1
            while j + 1 < len(xy):
                limit = float(c_path[i:j + 2].max()) + 1e-9
                if self._max_cost_on(costmap, cc, xy[i], xy[j + 1]) > limit:
                    break
                j += 1
            out.append(j)
            i = j
        return xy[out]

    def _smooth(self, costmap: CostMap, cc: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """Pull interior points towards their neighbours' mean (fixed ends); a point whose new
        cell would be lethal or costlier than before keeps its old position."""
        w = self.config.smooth_weight
        p = xy.copy()
        rc = costmap.world_to_cell(p)
        base_cost = cc[rc[:, 0], rc[:, 1]]
        for _ in range(self.config.smooth_iterations):
            q = p.copy()
            q[1:-1] += w * (0.5 * (p[:-2] + p[2:]) - p[1:-1])
            rq = costmap.world_to_cell(q[1:-1])
            inb = costmap.in_bounds(rq)
            cq = np.full(len(rq), np.inf)
            cq[inb] = cc[rq[inb, 0], rq[inb, 1]]
            ok = cq <= np.maximum(base_cost[1:-1], 0.0) + 1e-9
            p[1:-1][ok] = q[1:-1][ok]
        return p

    def _headings(self, xy: np.ndarray, start_yaw: float, goal_yaw: float | None) -> np.ndarray:
        seg = np.diff(xy, axis=0)
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(seg, axis=1))])
        total = s[-1]
        if (self.config.heading == "interpolate" or total < 1e-9
                or total < self.config.tangent_min_length_m):
            end = goal_yaw if goal_yaw is not None else start_yaw
            a = s / total if total > 1e-9 else np.linspace(0.0, 1.0, len(xy))
            return wrap_angle(start_yaw + a * wrap_angle(end - start_yaw))
        tang = np.arctan2(seg[:, 1], seg[:, 0])
        # per pose: the direction of travel through it (unwrapped average of both segments)
        tang = np.unwrap(tang)
        yaw = np.concatenate([[tang[0]], 0.5 * (tang[:-1] + tang[1:]), [tang[-1]]])
        end = goal_yaw if goal_yaw is not None else float(yaw[-1])
        blend = self.config.yaw_blend_m
        if blend > 0:
            a0 = np.clip(1.0 - s / blend, 0.0, 1.0)
            a1 = np.clip(1.0 - (total - s) / blend, 0.0, 1.0)
        else:
            a0 = (s <= 0).astype(float)
            a1 = (s >= total).astype(float)
        yaw = yaw + a0 * wrap_angle(start_yaw - yaw)
        yaw = yaw + a1 * wrap_angle(end - yaw)
        return wrap_angle(yaw)


def _dedupe(xy: np.ndarray, eps: float) -> np.ndarray:
    keep = np.concatenate([[True], np.linalg.norm(np.diff(xy, axis=0), axis=1) > eps])
    return xy[keep]


def _resample(xy: np.ndarray, spacing: float) -> np.ndarray:
    """The polyline ``xy`` resampled every ``spacing`` m along its length, keeping its vertices
    (so corners stay where the collision checks put them)."""
    out = [xy[:1]]
    for a, b in zip(xy[:-1], xy[1:]):
        n = max(1, int(math.ceil(np.linalg.norm(b - a) / spacing)))
        out.append(a + np.linspace(0.0, 1.0, n + 1)[1:, None] * (b - a))
    return np.vstack(out)
