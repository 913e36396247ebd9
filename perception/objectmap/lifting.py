"""Lift 2D detections to 3D with a depth image and pinhole intrinsics.

Two methods (:class:`LiftingConfig`'s ``method``):

- ``"cloud"`` (default): the box's depth pixels become an Open3D point cloud
  (``PointCloud.create_from_depth_image``), limited to a depth band around the object's
  front surface, voxel down-sampled, cleaned of statistical outliers and cut to the
  DBSCAN cluster that covers the box centre; the object's centre and extent are the robust
  axis-aligned box of that cluster (camera axes), its depth centre pushed back to at least
  half the object's narrow side behind the front surface (the camera sees only the front).
- ``"median"``: the median depth of the central part of the box, back-projected at the box
  centre and pushed back by half the narrow side of the metric box (the earlier method).

On the detector benchmark's rooms the cloud method nearly halves the fused position error
for ~0.3 ms more per box (``katazuke bench detector``: docs/bench/detection.md, the lifting
table). Open3D is imported only when the cloud method runs (``import open3d`` also loads
plotly and dash and takes about a second).
"""
from __future__ import annotations

import numpy as np

from katazuke.config import dataclass, field, in_range, non_negative, positive
from katazuke.errors import ConfigError, InputError

__all__ = ["LiftingConfig", "LIFTING_METHODS", "box_to_3d", "box_points", "object_points"]

#: Valid :attr:`LiftingConfig.method` values.
LIFTING_METHODS = ("cloud", "median")


@dataclass(frozen=True)
class LiftingConfig:
    """How :func:`box_to_3d` turns a box and a depth image into a 3D centre and extent."""

    method: str = field(default="cloud", metadata={
        "help": "'cloud' (Open3D point cloud of the box, cleaned; robust box of the object's "
                "cluster) or 'median' (median depth of the box centre, pushed back)"})
    voxel_size: float = positive(0.01, "m; voxel edge of the down-sampled cloud")
    band_front: float = non_negative(
        0.5, "points nearer than the front-surface depth minus this x the metric box size are "
             "dropped (other objects in front)")
    band_back: float = non_negative(
        1.0, "points further than the front-surface depth plus this x the metric box size are "
             "dropped (background)")
    outlier_neighbours: int = in_range(
        16, "statistical outlier removal: neighbours whose mean distance is compared", 1, 1000)
    outlier_std_ratio: float = positive(
        2.0, "statistical outlier removal: a point whose mean neighbour distance exceeds the "
             "cloud's mean by this many standard deviations is dropped")
    cluster_eps_voxels: float = positive(
        2.5, "DBSCAN neighbourhood radius in voxels (points closer than this are connected)")
    cluster_min_points: int = in_range(4, "DBSCAN core-point neighbour count", 1, 1000)
    extent_percentile: float = in_range(
        5.0, "percent of the cluster's points ignored at each end of every axis (robust box)",
        0.0, 49.0)

    def __post_init__(self) -> None:
        if self.method not in LIFTING_METHODS:
            raise ConfigError(f"LiftingConfig.method must be one of {list(LIFTING_METHODS)}; "
                              f"got {self.method!r}")


def _check_box(box_xywh: np.ndarray) -> tuple[float, float, float, float]:
    b = np.asarray(box_xywh, float).reshape(-1)
    if b.shape != (4,) or not np.all(np.isfinite(b)) or b[2] < 0 or b[3] < 0:
        raise InputError(f"box_xywh must be 4 finite numbers (x_min, y_min, width >= 0, "
                         f"height >= 0) in pixels; got {box_xywh!r}")
    return float(b[0]), float(b[1]), float(b[2]), float(b[3])


def _check_depth(depth: np.ndarray) -> np.ndarray:
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise InputError(f"depth must be an (H, W) image in metres; got shape {depth.shape}")
    return depth


def _crop_bounds(x: float, y: float, w: float, h: float, W: int, H: int) -> tuple[int, int, int, int]:
    x0 = int(np.clip(np.floor(x), 0, W - 1))
    y0 = int(np.clip(np.floor(y), 0, H - 1))
    x1 = int(np.clip(np.ceil(x + w), x0 + 1, W))
    y1 = int(np.clip(np.ceil(y + h), y0 + 1, H))
    return x0, y0, x1, y1


def _central_depth(box: tuple[float, float, float, float], depth: np.ndarray,
                   centre_fraction: float, max_depth: float) -> float | None:
    """Median valid depth (finite, in (0, max_depth]) of the central part of the box, m."""
    x, y, w, h = box
    H, W = depth.shape
    cw, ch = max(w * centre_fraction, 1.0), max(h * centre_fraction, 1.0)
    cx, cy = x + w / 2, y + h / 2
    x0, x1 = int(np.clip(np.floor(cx - cw / 2), 0, W - 1)), int(np.clip(np.ceil(cx + cw / 2), 1, W))
    y0, y1 = int(np.clip(np.floor(cy - ch / 2), 0, H - 1)), int(np.clip(np.ceil(cy + ch / 2), 1, H))
    patch = depth[y0:y1, x0:x1]
    valid = patch[np.isfinite(patch) & (patch > 0) & (patch <= max_depth)]
    return float(np.median(valid)) if valid.size else None


def box_points(box_xywh: np.ndarray, depth: np.ndarray, K: np.ndarray, max_depth: float = 6.0,
               depth_range: tuple[float, float] | None = None):
    """Open3D point cloud ``(N points, camera optical frame, m)`` of the box's valid depth pixels.

    Pixel ``(u, v)`` (integer column, row) with depth ``z`` becomes
    ``((u - cx) z / fx, (v - cy) z / fy, z)``; pixels with no return (0, nan, inf), deeper
    than ``max_depth`` or outside ``depth_range`` (m, inclusive) are left out.

    Returns:
        ``open3d.geometry.PointCloud`` (possibly empty).
    """
    import open3d as o3d

    x, y, w, h = _check_box(box_xywh)
    depth = _check_depth(depth)
    H, W = depth.shape
    x0, y0, x1, y1 = _crop_bounds(x, y, w, h, W, H)
    # a fresh native float32 buffer: a view of a message decoded with an explicit '<f4'
    # keeps that dtype, whose buffer format Open3D's Image refuses
    crop = np.empty((y1 - y0, x1 - x0), np.float32)
    crop[...] = depth[y0:y1, x0:x1]
    bad = ~np.isfinite(crop) | (crop <= 0) | (crop > max_depth)
    if depth_range is not None:
        with np.errstate(invalid="ignore"):
            bad |= (crop < depth_range[0]) | (crop > depth_range[1])
    crop[bad] = 0.0  # Open3D skips zero depth
    intr = o3d.camera.PinholeCameraIntrinsic(x1 - x0, y1 - y0, float(K[0, 0]), float(K[1, 1]),
                                             float(K[0, 2]) - x0, float(K[1, 2]) - y0)
    return o3d.geometry.PointCloud.create_from_depth_image(
        o3d.geometry.Image(crop), intr, np.eye(4), depth_scale=1.0, depth_trunc=float(max_depth))


def object_points(box_xywh: np.ndarray, depth: np.ndarray, K: np.ndarray,
                  centre_fraction: float = 0.5, max_depth: float = 6.0,
                  config: LiftingConfig | None = None) -> np.ndarray | None:
    """``(N, 3)`` cleaned points of the detected object, camera optical frame, m; or None.

    The box's depth pixels within the depth band around the front surface (``band_front``,
    ``band_back`` x the metric box size) are back-projected (:func:`box_points`), voxel
    down-sampled, cleaned by statistical outlier removal and cut to the DBSCAN cluster with
    the most points in the central ``centre_fraction`` of the box. None when the centre of
    the box has no valid depth.
    """
    cfg = config or LiftingConfig()
    x, y, w, h = _check_box(box_xywh)
    depth = _check_depth(depth)
    K = np.asarray(K, float)
    z_front = _central_depth((x, y, w, h), depth, centre_fraction, max_depth)
    if z_front is None:
        return None
    fx, fy, px, py = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    size = max(w * z_front / fx, h * z_front / fy)
    pc = box_points((x, y, w, h), depth, K, max_depth,
                    (z_front - cfg.band_front * size, z_front + cfg.band_back * size))
    pc = pc.voxel_down_sample(cfg.voxel_size)
    if len(pc.points) > cfg.outlier_neighbours:
        pc, _ = pc.remove_statistical_outlier(cfg.outlier_neighbours, cfg.outlier_std_ratio)
    P = np.asarray(pc.points)
    if len(P) == 0:
        return None
    # The object is the cluster covering the box centre; background that survived the depth
    # band (support surface behind, a neighbour) forms other clusters.
    labels = np.asarray(pc.cluster_dbscan(cfg.cluster_eps_voxels * cfg.voxel_size,
                                          cfg.cluster_min_points))
    u = P[:, 0] / P[:, 2] * fx + px
    v = P[:, 1] / P[:, 2] * fy + py
    hw, hh = max(w * centre_fraction, 1.0) / 2 + 0.5, max(h * centre_fraction, 1.0) / 2 + 0.5
    central = (np.abs(u - (x + w / 2)) <= hw) & (np.abs(v - (y + h / 2)) <= hh)
    ids, counts = np.unique(labels[central & (labels >= 0)], return_counts=True)
    if len(ids):
        P = P[labels == ids[np.argmax(counts)]]  # ties: the lowest label (deterministic)
    return P


def _lift_cloud(box: tuple[float, float, float, float], depth: np.ndarray, K: np.ndarray,
                centre_fraction: float, max_depth: float,
                cfg: LiftingConfig) -> tuple[np.ndarray, np.ndarray] | None:
    P = object_points(box, depth, K, centre_fraction, max_depth, cfg)
    if P is None:
        return None
    q = cfg.extent_percentile
    lo, hi = np.percentile(P, q, axis=0), np.percentile(P, 100.0 - q, axis=0)
    c = (lo + hi) / 2
    # The inner (100 - 2q) % of points evenly spread over a side span that part of it.
    ext = (hi - lo) / (1.0 - 2.0 * q / 100.0)
    lo = c - ext / 2
    # Only the front is seen: the centre is at least half the narrow side behind it.
    c[2] = max(c[2], lo[2] + min(ext[0], ext[1]) / 2)
    ext[2] = 2.0 * (c[2] - lo[2])
    return c, ext


def _lift_median(box: tuple[float, float, float, float], depth: np.ndarray, K: np.ndarray,
                 centre_fraction: float, max_depth: float) -> tuple[np.ndarray, np.ndarray] | None:
    x, y, w, h = box
    z = _central_depth(box, depth, centre_fraction, max_depth)
    if z is None:
        return None
    fx, fy, px, py = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    ex, ey = w * z / fx, h * z / fy
    ez = min(ex, ey)
    zc = z + ez / 2
    cx, cy = x + w / 2, y + h / 2
    p = np.array([(cx - px) * zc / fx, (cy - py) * zc / fy, zc])
    return p, np.array([ex, ey, ez])


def box_to_3d(box_xywh: np.ndarray, depth: np.ndarray, K: np.ndarray, centre_fraction: float = 0.5,
              max_depth: float = 6.0,
              config: LiftingConfig | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Camera-frame centre ``(3,)`` and extent ``(3,)`` (m) of a detected object, or None.

    Both methods (``config.method``, module docstring) start from the front-surface depth
    ``z``: the median of valid depths (finite, in (0, max_depth]) in the central
    ``centre_fraction`` of the box. None when that part of the box has no valid depth.

    Args:
        box_xywh: ``(4,)`` box ``x_min, y_min, width, height``, pixels (origin at the top-left
            pixel corner).
        depth: ``(H, W)`` metres, registered to the image of the box (0, nan, inf = no return).
        K: ``(3, 3)`` pinhole intrinsics of that image, pixels.
        centre_fraction: part of the box (per side) whose median depth is the front surface.
        max_depth: m; deeper readings are invalid.
        config: method and cloud settings (default :class:`LiftingConfig`).

    Returns:
        ``(centre, extent)``: centre in the camera optical frame (x right, y down, z forward),
        m; extent the object's size along those axes, m. None without valid depth.

    Raises:
        InputError: a box that is not 4 finite numbers with non-negative size, or a depth image
            that is not 2-D.
    """
    cfg = config or LiftingConfig()
    box = _check_box(box_xywh)
    depth = _check_depth(depth)
    K = np.asarray(K, float)
    if cfg.method == "median":
        return _lift_median(box, depth, K, centre_fraction, max_depth)
    return _lift_cloud(box, depth, K, centre_fraction, max_depth, cfg)
