"""Object points for grasping from a detection box and a depth image.

:func:`segment_object_points` turns one detection (a box in pixels) and the registered
metric depth image into the two point sets a :class:`~.grasp.GraspPlanner` needs, both in
``base_link``:

1. The depth pixels inside the box grown by ``box_margin`` are lifted to the camera's
   optical frame (pinhole ``K``; 0, NaN and inf are no return) and moved to ``base_link``
   with ``T_base_cam``.
2. The support plane is found by RANSAC (numpy; candidate planes tilted more than
   ``plane_max_tilt_deg`` from horizontal are refused, so a box's side never wins) on the
   grown box, which sees more support than object; its inliers within
   ``plane_distance`` are removed, and so is everything below the plane.
3. The points left inside the box proper are voxelised and split into connected
   components (26-neighbourhood, ``scipy.ndimage.label``); the object is the component
   nearest the ray through the box centre (ties: the larger one) among those resting on the
   support (lowest point within ``max_support_gap``; the robot's own arm in front of the
   camera does not rest on the floor).
4. The scene points are every other valid depth pixel (strided by ``scene_stride``) within
   ``scene_radius`` of the object's centroid: the support, neighbours, container walls, for
   the planner's collision check.

Only geometry is used; no colour, no simulator segmentation.
"""
from __future__ import annotations

import math

import numpy as np

from katazuke.config import dataclass, in_range, non_negative, positive
from katazuke.errors import InputError
from katazuke.planning.grasping.grasp import GraspPlanningError, check_pose

__all__ = ["SegmentationConfig", "SegmentationError", "segment_object_points", "lift_pixels",
           "fit_support_plane"]


class SegmentationError(GraspPlanningError):
    """The box's depth holds no object above a support (no depth, all plane, too few points)."""


@dataclass(frozen=True)
class SegmentationConfig:
    """Settings of :func:`segment_object_points` (metres, pixels where the name says)."""

    box_margin: float = non_negative(0.15, "the box grows by this fraction of its size on each "
                                           "side for the object crop")
    box_margin_px: float = non_negative(3.0, "px; and by this many pixels")
    plane_box_factor: float = positive(2.0, "the support plane is fitted on the box scaled by "
                                            "this (more support than object)")
    max_depth: float = positive(4.0, "m; deeper returns are ignored")
    plane_distance: float = positive(0.008, "m; points this close to the support plane are "
                                            "support")
    plane_max_tilt_deg: float = in_range(15.0, "deg; largest tilt of the support plane from "
                                               "base_link's horizontal", 0.0, 90.0)
    ransac_iterations: int = in_range(200, "RANSAC plane hypotheses", 1, 100000)
    ransac_max_points: int = in_range(3000, "points sampled for the RANSAC fit", 10, 10**7)
    max_support_gap: float = positive(0.03, "m; a cluster whose lowest point is higher than "
                                            "this above the support is not resting on it "
                                            "(chosen only when no cluster rests)")
    voxel_size: float = positive(0.01, "m; voxel edge of the connected-component grid")
    min_points: int = in_range(10, "fewest object points (fewer: SegmentationError)", 1, 10**6)
    scene_radius: float = positive(0.4, "m; scene points within this distance of the object's "
                                        "centroid are returned")
    scene_stride: int = in_range(2, "px; every n-th row and column of the image is used for the "
                                    "scene points", 1, 64)
    seed: int = in_range(0, "RANSAC random seed (deterministic)", 0, 2**31 - 1)


def lift_pixels(depth: np.ndarray, K: np.ndarray, T_base_cam: np.ndarray, rows: slice,
                cols: slice, max_depth: float, stride: int = 1
                ) -> tuple[np.ndarray, np.ndarray]:
    """Valid depth pixels of an image window as ``base_link`` points.

    Args:
        depth: ``(H, W)`` metres along the optical axis (0, NaN, inf: no return).
        K: ``(3, 3)`` intrinsics, pixels.
        T_base_cam: ``(4, 4)`` camera optical frame (x right, y down, z forward) in base_link.
        rows, cols: the window.
        max_depth: deeper returns are dropped, m.
        stride: take every ``stride``-th row and column.

    Returns:
        ``points (N, 3)`` base_link m, ``uv (N, 2)`` their pixel columns and rows.
    """
    v0, v1 = rows.start, rows.stop
    u0, u1 = cols.start, cols.stop
    d = np.asarray(depth[v0:v1:stride, u0:u1:stride], dtype=np.float64)
    vv, uu = np.mgrid[v0:v1:stride, u0:u1:stride]
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(d) & (d > 0) & (d <= max_depth)
    z = d[ok]
    u, v = uu[ok].astype(np.float64), vv[ok].astype(np.float64)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    Pc = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=1)
    return Pc @ T_base_cam[:3, :3].T + T_base_cam[:3, 3], np.stack([u, v], axis=1)


def fit_support_plane(points: np.ndarray, distance: float, max_tilt_deg: float,
                      iterations: int, rng: np.random.Generator
                      ) -> tuple[np.ndarray, float] | None:
    """RANSAC plane ``n . p + d = 0`` (unit ``n`` with ``n_z > 0``) of the most inliers whose
    normal is within ``max_tilt_deg`` of vertical; refined by least squares on its inliers.

    Returns:
        ``(n (3,), d)``, or None with fewer than 3 points or no acceptable plane.
    """
    if len(points) < 3:
        return None
    cos_tilt = math.cos(math.radians(max_tilt_deg))
    best, best_count = None, 0
    idx = rng.integers(0, len(points), size=(iterations, 3))
    a, b, c = points[idx[:, 0]], points[idx[:, 1]], points[idx[:, 2]]
    n = np.cross(b - a, c - a)
    norm = np.linalg.norm(n, axis=1)
    good = norm > 1e-9
    n[good] /= norm[good, None]
    n *= np.where(n[:, 2:3] < 0, -1.0, 1.0)
    good &= n[:, 2] >= cos_tilt
    for i in np.flatnonzero(good):
        d = -float(n[i] @ a[i])
        count = int(np.count_nonzero(np.abs(points @ n[i] + d) <= distance))
        if count > best_count:
            best, best_count = (n[i].copy(), d), count
    if best is None:
        return None
    nb, db = best
    inl = points[np.abs(points @ nb + db) <= distance]
    if len(inl) >= 3:
        c0 = inl.mean(axis=0)
        _, _, vt = np.linalg.svd(inl - c0, full_matrices=False)
        n2 = vt[2] * (1.0 if vt[2][2] >= 0 else -1.0)
        if n2[2] >= cos_tilt:
            nb, db = n2, -float(n2 @ c0)
    return nb, db


def _window(box: tuple[float, float, float, float], grow: float, grow_px: float, W: int,
            H: int) -> tuple[slice, slice]:
    x0, y0, x1, y1 = box
    mx, my = grow * (x1 - x0) + grow_px, grow * (y1 - y0) + grow_px
    u0, u1 = int(max(0, math.floor(x0 - mx))), int(min(W, math.ceil(x1 + mx)))
    v0, v1 = int(max(0, math.floor(y0 - my))), int(min(H, math.ceil(y1 + my)))
    return slice(v0, max(v1, v0 + 1)), slice(u0, max(u1, u0 + 1))


def _components(P: np.ndarray, voxel: float) -> np.ndarray:
    """Connected-component label (>= 0) of each point on a voxel grid (26-neighbourhood)."""
    from scipy import ndimage

    ijk = np.floor((P - P.min(axis=0)) / voxel).astype(np.int64)
    grid = np.zeros(ijk.max(axis=0) + 1, dtype=bool)
    grid[tuple(ijk.T)] = True
    labels, _ = ndimage.label(grid, structure=np.ones((3, 3, 3), bool))
    return labels[tuple(ijk.T)] - 1


def _check_inputs(depth, K, box_xyxy, T_base_cam):
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.shape[0] < 2 or depth.shape[1] < 2:
        raise InputError(f"depth must be an (H, W) image in metres; got shape {depth.shape}")
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise InputError(f"K must be finite (3, 3) pinhole intrinsics with fx, fy > 0; got "
                         f"{K.tolist() if K.size == 9 else K.shape}")
    b = np.asarray(box_xyxy, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.all(np.isfinite(b)) or b[2] <= b[0] or b[3] <= b[1]:
        raise InputError(f"box_xyxy must be 4 finite pixel coordinates x_min, y_min, x_max, "
                         f"y_max with x_max > x_min and y_max > y_min; got {box_xyxy!r}")
    H, W = depth.shape
    if b[2] <= 0 or b[3] <= 0 or b[0] >= W or b[1] >= H:
        raise InputError(f"box_xyxy {b.tolist()} lies outside the {W}x{H} depth image")
    return depth, K, tuple(float(x) for x in b), check_pose(T_base_cam, "T_base_cam")


def segment_object_points(depth: np.ndarray, K: np.ndarray, box_xyxy: np.ndarray,
                          T_base_cam: np.ndarray, config: SegmentationConfig | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The detected object's points and the scene points around it, in ``base_link``.

    Args:
        depth: ``(H, W)`` float32 metres along the optical axis, registered to the image the
            box comes from (0, NaN, inf: no return).
        K: ``(3, 3)`` pinhole intrinsics of that image, pixels.
        box_xyxy: ``(4,)`` detection box ``x_min, y_min, x_max, y_max``, pixels (origin at
            the top-left pixel corner).
        T_base_cam: ``(4, 4)`` the camera optical frame in ``base_link``.
        config: settings (default :class:`SegmentationConfig`).

    Returns:
        ``(object_points_base (N, 3), scene_points_base (M, 3))``, float64 m; N >=
        ``config.min_points``; the scene points exclude the object's.

    Raises:
        InputError: malformed depth, K, box or pose.
        SegmentationError: no valid depth in the box, no support plane, or fewer than
            ``config.min_points`` points above it.
    """
    cfg = config or SegmentationConfig()
    depth, K, box, T = _check_inputs(depth, K, box_xyxy, T_base_cam)
    H, W = depth.shape
    rng = np.random.Generator(np.random.PCG64(cfg.seed))
    rows, cols = _window(box, cfg.box_margin, cfg.box_margin_px, W, H)
    P, _ = lift_pixels(depth, K, T, rows, cols, cfg.max_depth)
    if len(P) < cfg.min_points:
        raise SegmentationError(f"the box {list(box)} has {len(P)} valid depth pixel(s); "
                                f"need at least {cfg.min_points} (no return or too far)")
    prow, pcol = _window(box, (cfg.plane_box_factor - 1) / 2, cfg.box_margin_px, W, H)
    stride = max(1, int(math.sqrt((prow.stop - prow.start) * (pcol.stop - pcol.start)
                                  / cfg.ransac_max_points)))
    Pp, _ = lift_pixels(depth, K, T, prow, pcol, cfg.max_depth, stride)
    plane = fit_support_plane(Pp, cfg.plane_distance, cfg.plane_max_tilt_deg,
                              cfg.ransac_iterations, rng)
    if plane is None:
        raise SegmentationError("no support plane within "
                                f"{cfg.plane_max_tilt_deg:g} deg of horizontal around the box "
                                "(is T_base_cam right? is the object on a flat surface?)")
    n, d = plane
    above = P @ n + d > cfg.plane_distance
    cand = P[above]
    if len(cand) < cfg.min_points:
        raise SegmentationError(f"only {len(cand)} point(s) of the box lie above the support "
                                f"plane; need {cfg.min_points} (object too flat or too small in "
                                "the image)")
    labels = _components(cand, cfg.voxel_size)
    # the ray through the box centre, in base_link
    uc, vc = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
    ray = T[:3, :3] @ np.array([(uc - K[0, 2]) / K[0, 0], (vc - K[1, 2]) / K[1, 1], 1.0])
    ray /= np.linalg.norm(ray)
    rel = cand - T[:3, 3]
    dist = np.linalg.norm(rel - np.outer(rel @ ray, ray), axis=1)
    ids, counts = np.unique(labels, return_counts=True)
    keep_ids = ids[counts >= min(cfg.min_points, counts.max())]
    # objects rest on the support: clusters floating above it (the robot's own arm in front
    # of the camera, an overhang) are taken only when no cluster touches the support
    height = cand @ n + d
    resting = [i for i in keep_ids if float(height[labels == i].min()) <= cfg.max_support_gap]
    best = min(resting or keep_ids, key=lambda i: (float(dist[labels == i].min()),
                                                   -int(counts[ids == i][0])))
    obj = cand[labels == best]
    if len(obj) < cfg.min_points:
        raise SegmentationError(f"the object's cluster has {len(obj)} point(s); need "
                                f"{cfg.min_points}")
    centroid = obj.mean(axis=0)
    S, _ = lift_pixels(depth, K, T, slice(0, H), slice(0, W), cfg.max_depth, cfg.scene_stride)
    S = S[np.linalg.norm(S - centroid, axis=1) <= cfg.scene_radius]
    if len(S):
        # drop the object's own points from the scene (same voxels)
        from scipy.spatial import cKDTree

        near_obj = cKDTree(obj).query(S, distance_upper_bound=0.5 * cfg.voxel_size)[0]
        S = S[~np.isfinite(near_obj)]
    return obj, S
