"""2-D occupancy and cost grid of the room (frame ``map``) built from depth images.

Each :meth:`CostMap.update` lifts the depth pixels (every ``pixel_stride``-th row and column)
into ``map`` with the camera pose, then

* marks the cells of points whose height lies in the obstacle band
  ``[min_obstacle_z_m, max_obstacle_z_m]`` (the floor is below the band, anything above the
  robot is above it) as *hit*;
* casts each ray's 2-D projection (Bresenham-style DDA in numpy, one traversal per distinct
  start/end cell pair) over the stretch where the ray runs below ``clearing_max_z_m``, so
  that a ray passing high over a low obstacle (a box top seen at a grazing angle, a toy) does
  not clear it, and marks the cells it crosses as *miss*; a ray that ends on the floor or at
  ``max_range_m`` also clears its end cell, one that ends on an obstacle does not;
* adds log-odds evidence, at most once per cell and update (a hit wins over a miss), clamped
  to ``[log_odds_min, log_odds_max]`` so that a removed obstacle clears after a few views.

A cell is *occupied* when its log-odds exceed ``occupied_threshold``, *free* below
``free_threshold`` and *unknown* in between (every cell starts unknown). The cost grid
inflates the occupied cells by the base footprint: cells nearer than ``robot_radius_m`` to an
occupied cell are lethal (``inf``), the cost then decays as ``exp(-cost_decay * (d - r))``
out to ``inflation_radius_m``.

Grid convention: ``grid[row, col]`` with ``col = floor((x - origin_x) / resolution)`` and
``row = floor((y - origin_y) / resolution)``; cell centres at ``origin + (index + 0.5) * res``.
"""
from __future__ import annotations

import enum
import math

import numpy as np
from scipy import ndimage

from katazuke.config import dataclass, field, finite, non_negative, positive
from katazuke.errors import ConfigError, InputError

__all__ = ["CellState", "CostMapConfig", "CostMap", "footprint_radii"]


class CellState(enum.IntEnum):
    """What a cell of :meth:`CostMap.state` holds."""

    FREE = 0
    UNKNOWN = 1
    OCCUPIED = 2


def footprint_radii(footprint_m: tuple[float, float]) -> tuple[float, float]:
    """Inscribed and circumscribed radii (m) of a ``(length, width)`` footprint rectangle."""
    length, width = footprint_m
    return 0.5 * min(length, width), 0.5 * math.hypot(length, width)


@dataclass(frozen=True)
class CostMapConfig:
    """Configuration of :class:`CostMap` (loadable with ``katazuke.config.load_config``)."""

    resolution_m: float = positive(0.05, "cell side, m")
    origin_xy: tuple[float, float] = finite((-2.6, -2.6), "map x, y of the grid's lower corner, m")
    size_m: tuple[float, float] = positive((5.2, 5.2), "grid extent along map x, y, m "
                                           "(the 5 x 5 m room plus a margin)")
    min_obstacle_z_m: float = finite(0.03, "points at or above this height are obstacles, m "
                                     "(the floor lies below)")
    max_obstacle_z_m: float = positive(1.6, "points above this height are ignored, m (above "
                                       "the robot)")
    clearing_max_z_m: float = positive(0.15, "a ray clears the cells it crosses below this "
                                       "height only, m (higher, it may pass over a low "
                                       "obstacle); the floor cells it sees always clear")
    max_range_m: float = positive(4.5, "depth beyond this range neither marks nor clears past "
                                  "it, m")
    pixel_stride: int = field(default=2, metadata={"help": "use every n-th depth row/column",
                                                   "check": "positive"})
    footprint_m: tuple[float, float] = positive((0.6, 0.5), "base footprint length (x) and "
                                                "width (y), m, centred on base_link")
    robot_radius_m: float = positive(0.42, "cells nearer than this to an obstacle are lethal, "
                                     "m: the footprint's circumscribed radius (0.39 m) plus "
                                     "half a cell")
    inflation_radius_m: float = positive(0.9, "the inflation cost reaches 0 at this distance "
                                         "from an obstacle, m")
    cost_decay: float = non_negative(6.0, "inflation cost exp(-cost_decay * (d - "
                                     "robot_radius_m)), 1/m")
    log_odds_hit: float = positive(0.85, "log-odds added to a cell with a point in the band")
    log_odds_miss: float = positive(0.4, "log-odds removed from a cell a ray crosses")
    log_odds_min: float = field(default=-2.0, metadata={"help": "log-odds floor",
                                                        "check": "finite"})
    log_odds_max: float = positive(2.5, "log-odds ceiling (how long a removed obstacle "
                                   "persists: about (max - free_threshold) / miss views)")
    occupied_threshold: float = positive(0.5, "log-odds above which a cell is occupied")
    free_threshold: float = field(default=-0.2, metadata={
        "help": "log-odds below which a cell is free", "check": "finite"})

    def __post_init__(self) -> None:
        if not self.min_obstacle_z_m < self.max_obstacle_z_m:
            raise ConfigError("CostMapConfig: need min_obstacle_z_m < max_obstacle_z_m; got "
                              f"{self.min_obstacle_z_m} and {self.max_obstacle_z_m}")
        if not self.log_odds_min < self.free_threshold < 0 < self.occupied_threshold \
                < self.log_odds_max:
            raise ConfigError("CostMapConfig: need log_odds_min < free_threshold < 0 < "
                              "occupied_threshold < log_odds_max")
        if self.inflation_radius_m < self.robot_radius_m:
            raise ConfigError("CostMapConfig.inflation_radius_m must be >= robot_radius_m; got "
                              f"{self.inflation_radius_m} < {self.robot_radius_m}")
        if self.robot_radius_m < footprint_radii(self.footprint_m)[0]:
            raise ConfigError("CostMapConfig.robot_radius_m is below the footprint's inscribed "
                              "radius: the planner would drive the base into obstacles")
        if int(self.pixel_stride) != self.pixel_stride:
            raise ConfigError(f"CostMapConfig.pixel_stride must be an integer; got "
                              f"{self.pixel_stride!r}")

    @property
    def shape(self) -> tuple[int, int]:
        """Grid shape ``(rows, cols)`` = (cells along y, cells along x)."""
        return (int(math.ceil(self.size_m[1] / self.resolution_m - 1e-9)),
                int(math.ceil(self.size_m[0] / self.resolution_m - 1e-9)))

    @property
    def inscribed_radius_m(self) -> float:
        """The footprint's inscribed radius, m."""
        return footprint_radii(self.footprint_m)[0]

    @property
    def circumscribed_radius_m(self) -> float:
        """The footprint's circumscribed radius, m."""
        return footprint_radii(self.footprint_m)[1]


def _check_matrix(name: str, M, shape: tuple[int, ...]) -> np.ndarray:
    M = np.asarray(M, dtype=np.float64)
    if M.shape != shape or not np.all(np.isfinite(M)):
        raise InputError(f"{name} must be a finite {shape} array; got shape {M.shape}")
    return M


class CostMap:
    """Occupancy (log-odds) grid over ``map`` with footprint inflation.

    Args:
        config: grid geometry, sensor model and inflation.

    Attributes:
        log_odds: ``(rows, cols)`` float32 evidence per cell (0 = never seen).
        static: ``(rows, cols)`` bool cells occupied by priors (:meth:`add_box` with
            ``static=True``), never cleared by rays.
    """

    def __init__(self, config: CostMapConfig | None = None) -> None:
        self.config = config or CostMapConfig()
        self.shape = self.config.shape
        self.log_odds = np.zeros(self.shape, np.float32)
        self.static = np.zeros(self.shape, bool)
        self._version = 0
        self._cache: dict[str, tuple[int, np.ndarray]] = {}
        self._pixels: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ geometry
    @property
    def resolution(self) -> float:
        """Cell side, m."""
        return self.config.resolution_m

    @property
    def origin(self) -> np.ndarray:
        """(2,) map x, y of the grid's lower corner, m."""
        return np.asarray(self.config.origin_xy, np.float64)

    def world_to_cell(self, xy) -> np.ndarray:
        """Cell indices ``(..., 2)`` int64 as ``(row, col)`` of map points ``xy`` ``(..., 2)`` m
        (not clipped: check with :meth:`in_bounds`)."""
        xy = np.asarray(xy, np.float64)
        ij = np.floor((xy - self.origin) / self.resolution).astype(np.int64)
        return ij[..., ::-1]

    def cell_to_world(self, rc) -> np.ndarray:
        """Map x, y ``(..., 2)`` of the centres of cells ``rc`` ``(..., 2)`` (row, col)."""
        rc = np.asarray(rc, np.float64)
        return self.origin + (rc[..., ::-1] + 0.5) * self.resolution

    def in_bounds(self, rc) -> np.ndarray:
        """Whether cells ``rc`` ``(..., 2)`` (row, col) lie on the grid."""
        rc = np.asarray(rc)
        return ((rc[..., 0] >= 0) & (rc[..., 0] < self.shape[0])
                & (rc[..., 1] >= 0) & (rc[..., 1] < self.shape[1]))

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Map x ``(cols,)`` and y ``(rows,)`` of the cell centres, m."""
        r = self.resolution
        return (self.origin[0] + (np.arange(self.shape[1]) + 0.5) * r,
                self.origin[1] + (np.arange(self.shape[0]) + 0.5) * r)

    # ------------------------------------------------------------------ updates
    def _changed(self) -> None:
        self._version += 1

    def reset(self) -> None:
        """Forget every observation and prior (all cells unknown)."""
        self.log_odds[:] = 0.0
        self.static[:] = False
        self._changed()

    def _ray_pixels(self, h: int, w: int, s: int) -> tuple[np.ndarray, np.ndarray]:
        key = (h, w, s)
        if key not in self._pixels:
            v, u = np.mgrid[0:h:s, 0:w:s]
            self._pixels[key] = (u.astype(np.float32), v.astype(np.float32))
        return self._pixels[key]

    def update(self, depth: np.ndarray, K: np.ndarray, T_map_cam: np.ndarray,
               exclude: np.ndarray | None = None) -> dict:
        """Fuse one depth image.

        Args:
            depth: ``(H, W)`` float32 depth along the optical axis, m; ``inf``/``NaN``/<= 0 =
                no return (ignored).
            K: ``(3, 3)`` pinhole intrinsics, pixels.
            T_map_cam: ``(4, 4)`` pose of the camera's optical frame (z forward, x right,
                y down) in ``map``.
            exclude: ``(M, 4)`` spheres ``x, y, z, radius`` (map, m) of the robot's own body
                (arm links, a held object): returns inside them are dropped as if there were
                none, so the robot never marks itself as an obstacle (a self filter).

        Returns:
            ``{"rays": rays used, "hits": cells marked, "misses": cells cleared,
            "self": returns dropped by ``exclude``}``.

        Raises:
            InputError: wrong shapes or non-finite ``K`` / ``T_map_cam``.
        """
        depth = np.asarray(depth)
        if depth.ndim != 2 or depth.size == 0:
            raise InputError(f"depth must be a (H, W) image; got shape {depth.shape}")
        K = _check_matrix("K", K, (3, 3))
        T = _check_matrix("T_map_cam", T_map_cam, (4, 4))
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise InputError(f"K needs fx, fy > 0; got {K[0, 0]}, {K[1, 1]}")
        cfg = self.config
        s = int(cfg.pixel_stride)
        u, v = self._ray_pixels(depth.shape[0], depth.shape[1], s)
        z = depth[::s, ::s].astype(np.float32, copy=False)
        ok = np.isfinite(z) & (z > 0)
        z, u, v = z[ok], u[ok], v[ok]
        # pixel -> optical frame -> map (float32 keeps the 20k-point update cheap)
        x = (u - np.float32(K[0, 2])) / np.float32(K[0, 0]) * z
        y = (v - np.float32(K[1, 2])) / np.float32(K[1, 1]) * z
        R = T[:3, :3].astype(np.float32)
        c = T[:3, 3]
        pts = np.stack([x, y, z], 1) @ R.T + c.astype(np.float32)
        n_self = 0
        if exclude is not None and len(exclude):
            ex = np.asarray(exclude, np.float32).reshape(-1, 4)
            if not np.isfinite(ex).all():
                raise InputError("exclude spheres must be finite (x, y, z, radius) rows")
            own = np.zeros(len(pts), bool)
            for cx, cy, cz_, r in ex:           # a few dozen spheres: a loop is cheapest
                dd = pts - np.array([cx, cy, cz_], np.float32)
                own |= np.einsum("ij,ij->i", dd, dd) <= r * r
            n_self = int(own.sum())
            pts = pts[~own]
            z = z[~own]
        d = pts - c.astype(np.float32)
        rng = np.sqrt(np.einsum("ij,ij->i", d, d))
        far = rng > cfg.max_range_m
        scale = np.where(far, cfg.max_range_m / np.maximum(rng, 1e-6), 1.0).astype(np.float32)
        end = c.astype(np.float32) + d * scale[:, None]
        ez = end[:, 2]
        zmin, zmax = cfg.min_obstacle_z_m, cfg.max_obstacle_z_m
        hit = ~far & (ez >= zmin) & (ez <= zmax)
        # only the part of each ray below clearing_max_z_m clears: a ray passing higher over a
        # cell says nothing about a low obstacle standing in it
        zc = min(cfg.clearing_max_z_m, zmax)
        cz = float(c[2])
        dz = ez - cz
        with np.errstate(divide="ignore", invalid="ignore"):
            t_cross = np.where(np.abs(dz) > 1e-9, (zc - cz) / dz, np.inf)
        if cz <= zc:
            t0 = np.zeros_like(ez)
            t1 = np.where(ez > zc, np.clip(t_cross, 0.0, 1.0), 1.0)
        else:
            t0 = np.where(ez <= zc, np.clip(t_cross, 0.0, 1.0), 1.0)
            t1 = np.where(ez <= zc, 1.0, 0.0)
        keep = t1 > t0
        dxy = end[:, :2] - c[:2].astype(np.float32)
        a = c[:2] + dxy * t0[:, None]
        b = c[:2] + dxy * t1[:, None]
        include_end = ~hit | (t1 < 1.0)  # floor, range and clipped ends are free themselves
        miss = self._trace(a[keep], b[keep], include_end[keep])
        hit_rc = self.world_to_cell(end[hit, :2])
        hit_rc = hit_rc[self.in_bounds(hit_rc)]
        hit_mask = np.zeros(self.shape, bool)
        hit_mask[hit_rc[:, 0], hit_rc[:, 1]] = True
        miss &= ~hit_mask
        L = self.log_odds
        L[miss] -= cfg.log_odds_miss
        L[hit_mask] += cfg.log_odds_hit
        np.clip(L, cfg.log_odds_min, cfg.log_odds_max, out=L)
        self._changed()
        return {"rays": int(z.size), "hits": int(hit_mask.sum()), "misses": int(miss.sum()),
                "self": n_self}

    def _trace(self, a: np.ndarray, b: np.ndarray, include_end: np.ndarray) -> np.ndarray:
        """Cells crossed by the 2-D segments ``a -> b`` (``(R, 2)`` map m), as a mask: a DDA on
        the major axis, one traversal per distinct (start cell, end cell, include_end)."""
        mask = np.zeros(self.shape, bool)
        if len(a) == 0:
            return mask
        a_rc, b_rc = self.world_to_cell(a), self.world_to_cell(b)
        rows, cols = self.shape
        span = np.int64(4 * max(rows, cols) + 8)
        off = np.int64(2 * max(rows, cols) + 4)
        key = ((((a_rc[:, 0] + off) * span + a_rc[:, 1] + off) * span + b_rc[:, 0] + off) * span
               + b_rc[:, 1] + off) * 2 + include_end
        _, first = np.unique(key, return_index=True)
        a_rc, b_rc, inc = a_rc[first], b_rc[first], include_end[first]
        delta = b_rc - a_rc
        n = np.abs(delta).max(1)
        counts = n + inc.astype(np.int64)
        has = counts > 0
        a_rc, delta, n, counts = a_rc[has], delta[has], n[has], counts[has]
        total = int(counts.sum())
        if total == 0:
            return mask
        ray = np.repeat(np.arange(len(counts)), counts)
        k = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        frac = k / np.maximum(n, 1)[ray]
        rc = np.rint(a_rc[ray] + frac[:, None] * delta[ray]).astype(np.int64)
        rc = rc[self.in_bounds(rc)]
        mask[rc[:, 0], rc[:, 1]] = True
        return mask

    def _disc(self, xy, radius: float) -> np.ndarray:
        xy = np.asarray(xy, np.float64).reshape(2)
        if not np.all(np.isfinite(xy)) or not (math.isfinite(radius) and radius >= 0):
            raise InputError(f"need a finite (x, y) and a radius >= 0; got {xy}, {radius}")
        xs, ys = self.cell_centres()
        return (xs[None, :] - xy[0]) ** 2 + (ys[:, None] - xy[1]) ** 2 <= radius ** 2

    def mark_clear(self, xy, radius: float) -> None:
        """Mark every cell whose centre lies within ``radius`` (m) of ``xy`` (map, m) free.

        For the robot's own footprint and the object it handles, which the camera sees but
        which must not block: call it after each :meth:`update`. Static priors stay.
        """
        disc = self._disc(xy, radius)
        self.log_odds[disc] = np.minimum(self.log_odds[disc], self.config.log_odds_min)
        self._changed()

    def clear_footprint(self, x: float, y: float, yaw: float, padding_m: float = 0.05) -> None:
        """Mark the cells under the oriented base footprint (grown by ``padding_m``) free: the
        camera sees the robot's own base and arm, which must not block its plans."""
        if not all(math.isfinite(v) for v in (x, y, yaw, padding_m)):
            raise InputError(f"clear_footprint needs a finite pose; got {(x, y, yaw)}")
        m = self.footprint_cells(x, y, yaw, padding_m)
        self.log_odds[m] = np.minimum(self.log_odds[m], self.config.log_odds_min)
        self._changed()

    def add_box(self, min_xyz, max_xyz, static: bool = False) -> None:
        """Mark the cells under an axis-aligned map box as occupied (a prior).

        A box that does not reach into the obstacle band changes nothing.

        Args:
            min_xyz, max_xyz: ``(3,)`` opposite corners, m.
            static: keep the cells occupied whatever the camera sees (e.g. walls); otherwise
                they start at the log-odds ceiling and clear like any observation.
        """
        lo = np.asarray(min_xyz, np.float64).reshape(3)
        hi = np.asarray(max_xyz, np.float64).reshape(3)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo <= hi)):
            raise InputError(f"add_box needs finite corners with min <= max; got {lo}, {hi}")
        if hi[2] < self.config.min_obstacle_z_m or lo[2] > self.config.max_obstacle_z_m:
            return
        xs, ys = self.cell_centres()
        half = 0.5 * self.resolution
        eps = 1e-9   # a box edge on a cell boundary does not take the neighbouring cell
        m = (((xs + half > lo[0] + eps) & (xs - half < hi[0] - eps))[None, :]
             & ((ys + half > lo[1] + eps) & (ys - half < hi[1] - eps))[:, None])
        if static:
            self.static |= m
        self.log_odds[m] = self.config.log_odds_max
        self._changed()

    # ------------------------------------------------------------------ read-outs
    def _cached(self, name: str, fn) -> np.ndarray:
        hit = self._cache.get(name)
        if hit is None or hit[0] != self._version:
            hit = (self._version, fn())
            self._cache[name] = hit
        return hit[1]

    def occupied(self) -> np.ndarray:
        """``(rows, cols)`` bool: cells holding an obstacle (not inflated)."""
        return self._cached("occ", lambda: (self.log_odds > self.config.occupied_threshold)
                            | self.static)

    def unknown(self) -> np.ndarray:
        """``(rows, cols)`` bool: cells neither free nor occupied."""
        return self._cached("unk", lambda: ~self.occupied()
                            & (self.log_odds >= self.config.free_threshold))

    def state(self) -> np.ndarray:
        """``(rows, cols)`` uint8 :class:`CellState` per cell."""
        def fn():
            s = np.full(self.shape, CellState.FREE, np.uint8)
            s[self.unknown()] = CellState.UNKNOWN
            s[self.occupied()] = CellState.OCCUPIED
            return s
        return self._cached("state", fn)

    def distance(self) -> np.ndarray:
        """``(rows, cols)`` float64 distance (m) from each cell centre to the nearest occupied
        cell centre (``inf`` everywhere on an empty map)."""
        def fn():
            occ = self.occupied()
            if not occ.any():
                return np.full(self.shape, np.inf)
            return ndimage.distance_transform_edt(~occ) * self.resolution
        return self._cached("dist", fn)

    def lethal(self) -> np.ndarray:
        """``(rows, cols)`` bool: cells where the base centre would touch an obstacle."""
        return self._cached("lethal", lambda: self.distance() < self.config.robot_radius_m)

    def cost(self) -> np.ndarray:
        """``(rows, cols)`` float32 inflation cost: ``inf`` lethal, 1 at the lethal boundary,
        decaying to 0 at ``inflation_radius_m`` (unknown cells are costed by the planner)."""
        def fn():
            cfg = self.config
            d = self.distance()
            c = np.exp(-cfg.cost_decay * np.maximum(d - cfg.robot_radius_m, 0.0))
            c[d >= cfg.inflation_radius_m] = 0.0
            c[self.lethal()] = np.inf
            return c.astype(np.float32)
        return self._cached("cost", fn)

    def footprint_cells(self, x: float, y: float, yaw: float, padding_m: float = 0.0,
                        size_m: tuple[float, float] | None = None) -> np.ndarray:
        """``(rows, cols)`` bool: cells whose centre lies in the oriented base rectangle.

        Args:
            x, y, yaw: base pose in ``map`` (m, m, rad).
            padding_m: grow the rectangle by this much on each side, m.
            size_m: rectangle ``(length, width)``, m (default ``config.footprint_m``).
        """
        L, W = size_m if size_m is not None else self.config.footprint_m
        xs, ys = self.cell_centres()
        dx, dy = xs[None, :] - x, ys[:, None] - y
        c, s = math.cos(yaw), math.sin(yaw)
        return ((np.abs(c * dx + s * dy) <= 0.5 * L + padding_m)
                & (np.abs(-s * dx + c * dy) <= 0.5 * W + padding_m))
