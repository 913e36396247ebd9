"""The geometric grasp baseline: principal axes, antipodal top-down and side grasps.

From an object's segmented points in ``base_link`` (:func:`~.segmentation.segment_object_points`):

1. **Shape summary.** The support height (the scene points under the object's footprint, or
   the object's lowest points), the top (a high percentile of z), the horizontal principal
   axes (PCA of the points' xy) and the height.
2. **Top-down candidates** (approach ``-z`` of ``base_link``): the fingers close across the
   narrower horizontal principal axis, across that axis turned by each of
   :attr:`GeometricGraspConfig.top_yaw_offsets_deg`, and across the horizontal direction of
   least width (a search in ``width_search_step_deg`` steps: a cube's or a cylinder's PCA
   axes are arbitrary). The grasp point goes down
   ``min(finger_depth, height / 2)`` below the top, never lower than the support plus the
   fingertip clearance, never so low that the palm meets the top.
3. **Side candidates** for tall objects (height >= :attr:`~GeometricGraspConfig.side_min_height`):
   horizontal approach from the arm's mount towards the object (and turned by
   :attr:`~GeometricGraspConfig.side_yaw_offsets_deg`), fingers closing horizontally at
   ``side_height_fraction`` of the height.
4. **Width check.** The object's extent across the closing axis, in the slab the fingers
   sweep (points above the fingertips, within the fingers' width of the grasp line), plus
   ``2 x min_width_margin`` must fit the 0.08 m opening; wider candidates are dropped. The
   opening is the extent plus ``2 x width_margin``, capped at the gripper's maximum.
5. **Collision check.** The Panda's fingers (open to the candidate's width) and hand are
   boxes (:class:`GripperBoxes`, measured from the Panda's collision meshes); a candidate is
   dropped when more than ``max_collision_points`` scene points (or object points, for the
   hand) fall inside the boxes inflated by ``collision_margin`` (``scipy.spatial.cKDTree``
   limits the test to points near the grasp). Object points in the finger boxes are left to
   the width check (its robust extent ignores ``extent_percentile`` % of outliers).
6. **Angled candidates** (kind ``"angled"``): each top-down candidate whose closing axis is
   within ``angled_max_axis_deg`` of square to the line from the arm's mount, pitched by each
   of :attr:`~GeometricGraspConfig.angled_pitch_deg` about its closing axis so that the
   hand comes in from the robot's side, over the object (an object on a shelf board, under
   the board above: the upright wrist of a top-down grasp stands in the board). They are
   checked as the others and ranked below the top-down grasps (``angled_preference``).
7. **Score** in [0, 1]: a weighted mean of axis alignment, centring, width margin and
   clearance, times a family preference (top for short objects, side for tall ones).

Everything is in ``base_link``, metres. No randomness: the same points give the same grasps.
"""
from __future__ import annotations

import math

import numpy as np

from katazuke.config import dataclass, field, in_range, non_negative, positive
from katazuke.errors import ConfigError
from katazuke.planning.grasping.grasp import MAX_OPENING_M, Grasp, GraspPlanner, NoGraspError

__all__ = ["GeometricGraspConfig", "GeometricGraspPlanner", "GripperBoxes", "ObjectShape",
           "object_shape", "DEFAULT_CATEGORIES"]

#: The tidy-up room's object categories (those of ``katazuke.sim.objects.CATEGORIES``; a
#: library may not import the simulator, so the list is repeated here and a test compares).
DEFAULT_CATEGORIES: tuple[str, ...] = ("toy", "kitchenware", "stationery", "bottle", "box",
                                       "soft")


@dataclass(frozen=True)
class GripperBoxes:
    """The Panda hand as boxes in the grasp frame (``panda_grasptarget``: z approach, y closing).

    Measured from pybullet_data's Panda collision meshes: the grasp frame is 0.105 m in
    front of ``panda_hand``; each finger is 0.021 m wide (x), 0.026 m thick (y, outwards from
    its pad) and reaches from 0.0466 m behind to 0.0072 m beyond the grasp point (z); the hand
    body spans x +-0.032, y +-0.104, z from -0.131 to -0.039 m.
    """

    finger_half_x: float = positive(0.0105, "m; half the finger's width along grasp x")
    finger_thickness: float = positive(0.026, "m; finger thickness along grasp y, outwards "
                                              "from its pad")
    finger_z: tuple[float, float] = field(default=(-0.0466, 0.0072), metadata={
        "help": "m; finger extent along grasp z (approach): (back, tip)"})
    hand_half_x: float = positive(0.0316, "m; hand body half-size along grasp x")
    hand_half_y: float = positive(0.104, "m; hand body half-size along grasp y")
    hand_z: tuple[float, float] = field(default=(-0.131, -0.039), metadata={
        "help": "m; hand body extent along grasp z: (back, front)"})

    def __post_init__(self) -> None:
        for name in ("finger_z", "hand_z"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise ConfigError(f"GripperBoxes.{name} must be (back, front) with back < front; "
                                  f"got {getattr(self, name)}")

    def boxes(self, opening: float) -> np.ndarray:
        """``(3, 2, 3)`` boxes ``[left finger, right finger, hand]`` x ``[lo, hi]`` x xyz in the
        grasp frame, m, with the fingers' pads at ``+-opening / 2``."""
        h = opening / 2
        fz0, fz1 = self.finger_z
        hz0, hz1 = self.hand_z
        fx, t = self.finger_half_x, self.finger_thickness
        return np.array([[[-fx, h, fz0], [fx, h + t, fz1]],
                         [[-fx, -h - t, fz0], [fx, -h, fz1]],
                         [[-self.hand_half_x, -self.hand_half_y, hz0],
                          [self.hand_half_x, self.hand_half_y, hz1]]])


@dataclass(frozen=True)
class GeometricGraspConfig:
    """Settings of :class:`GeometricGraspPlanner` (metres, degrees where the name says)."""

    categories: tuple[str, ...] = field(default=DEFAULT_CATEGORIES, metadata={
        "help": "object categories the planner accepts (others: UnsupportedCategoryError)"})
    min_points: int = in_range(10, "fewest object points accepted (fewer: InputError)", 3, 10**6)
    max_opening: float = in_range(MAX_OPENING_M, "m; the gripper's largest opening", 0.005,
                                  MAX_OPENING_M)
    width_margin: float = non_negative(0.008, "m; free space wanted on each side of the object "
                                              "when the fingers are open (the opening is "
                                              "capped at max_opening)")
    min_width_margin: float = non_negative(0.002, "m; free space required on each side: wider "
                                                  "objects are rejected")
    extent_percentile: float = in_range(2.0, "percent of points ignored at each end of an axis "
                                             "when measuring extents (depth noise)", 0.0, 20.0)
    finger_depth: float = positive(0.035, "m; how far below the object's top a top-down grasp "
                                          "point goes (at most half the height)")
    min_engage: float = positive(0.006, "m; a top-down grasp point is at least this far below "
                                        "the top")
    tip_clearance: float = non_negative(0.006, "m; gap kept between the fingertips and the "
                                               "support surface")
    support_contact_m: float = non_negative(0.006, "m; support points up to this above the "
                                                   "support height may touch the fingertips "
                                                   "of a downward grasp (depth noise on the "
                                                   "surface under a flat object)")
    top_yaw_offsets_deg: tuple[float, ...] = field(default=(0.0, 25.0, -25.0, 90.0), metadata={
        "help": "deg; top-down closing axes: the narrow principal axis turned by these (plus "
                "the direction of least width, see width_search_step_deg)"})
    width_search_step_deg: float = in_range(7.5, "deg; the horizontal direction of least width "
                                                 "is searched in these steps (a cube's PCA axes "
                                                 "are arbitrary); 0 turns the search off", 0.0,
                                            90.0)
    side_min_height: float = non_negative(0.09, "m; objects at least this tall also get side "
                                                "grasps")
    side_height_fraction: float = in_range(0.35, "side grasp height as a fraction of the "
                                                 "object's height above the support", 0.05, 0.95)
    side_yaw_offsets_deg: tuple[float, ...] = field(default=(0.0, 25.0, -25.0), metadata={
        "help": "deg; side approach directions: the line from approach_origin_xy to the object "
                "turned by these"})
    approach_origin_xy: tuple[float, float] = field(default=(0.12, 0.0), metadata={
        "help": "m; base_link xy the arm reaches from (the Panda's mount), for side approaches"})
    side_min_observed: float = in_range(0.6, "side grasps need the grasp slab's observed width "
                                             "across the closing axis to be at least this "
                                             "fraction of the object's width across it",
                                        0.0, 1.0)
    side_floor_clearance: float = non_negative(0.008, "m; gap kept between the hand and the "
                                                      "support in a side grasp")
    gripper: GripperBoxes = field(default_factory=GripperBoxes, metadata={
        "help": "the hand's collision boxes in the grasp frame"})
    collision_margin: float = non_negative(0.004, "m; the boxes are inflated by this for the "
                                                  "collision check")
    max_collision_points: int = in_range(2, "points allowed inside the inflated boxes (depth "
                                            "noise)", 0, 10**6)
    clearance_scale: float = positive(0.03, "m; a scene point this far from the fingers counts "
                                            "as full clearance")
    w_alignment: float = non_negative(0.35, "score weight: closing across the narrow axis "
                                            "(top) / approaching straight from the arm (side)")
    w_centring: float = non_negative(0.2, "score weight: grasp point at the middle of the "
                                          "object's slab")
    w_width: float = non_negative(0.2, "score weight: room left in the opening")
    w_clearance: float = non_negative(0.25, "score weight: distance to scene points")
    side_preference_tall: float = in_range(
        0.5, "family factor of side grasps for tall objects (top grasps of tall objects get "
             "1.5 - this, capped at 1); 0.5 ranks top grasps first: in the simulator's pick "
             "bench, side grasps of floor-standing bottles failed where top grasps held", 0.0,
        1.0)
    side_preference_short: float = in_range(0.6, "family factor of side grasps when the object "
                                                 "is shorter than 1.5 x its width", 0.0, 1.0)
    angled_pitch_deg: tuple[float, ...] = field(default=(45.0, 65.0), metadata={
        "help": "deg; angled grasps: top-down candidates pitched by these about their closing "
                "axis, the hand coming from the arm's mount (empty: none)"})
    angled_max_axis_deg: float = in_range(30.0, "deg; a top-down candidate is pitched only if "
                                                "its closing axis is within this of square to "
                                                "the line from the arm's mount", 0.0, 90.0)
    angled_preference: float = in_range(0.7, "family factor of angled grasps (below 1: tried "
                                             "after the top-down ones)", 0.0, 1.0)

    def __post_init__(self) -> None:
        if not self.categories or not all(isinstance(c, str) and c for c in self.categories):
            raise ConfigError("GeometricGraspConfig.categories must be non-empty strings")
        if self.w_alignment + self.w_centring + self.w_width + self.w_clearance <= 0:
            raise ConfigError("GeometricGraspConfig: the score weights w_* must not all be 0")
        if not all(0.0 < v < 90.0 for v in self.angled_pitch_deg):
            raise ConfigError("GeometricGraspConfig.angled_pitch_deg must be angles in (0, 90) "
                              f"deg; got {self.angled_pitch_deg}")
        for name in ("top_yaw_offsets_deg", "side_yaw_offsets_deg"):
            if not all(math.isfinite(v) for v in getattr(self, name)):
                raise ConfigError(f"GeometricGraspConfig.{name} must be finite angles (deg)")
        if not self.top_yaw_offsets_deg:
            raise ConfigError("GeometricGraspConfig.top_yaw_offsets_deg must not be empty")


@dataclass(frozen=True)
class ObjectShape:
    """What the planner reads off an object's points (``base_link``, m).

    Attributes:
        centroid: ``(3,)`` mean of the points.
        support_z: height of the surface the object rests on.
        top_z: height of the object's top (robust).
        major_xy: ``(2,)`` unit horizontal principal axis of largest spread.
        minor_xy: ``(2,)`` unit horizontal axis perpendicular to it.
        extent_major: robust extent along ``major_xy``.
        extent_minor: robust extent along ``minor_xy``.
    """

    centroid: np.ndarray
    support_z: float
    top_z: float
    major_xy: np.ndarray
    minor_xy: np.ndarray
    extent_major: float
    extent_minor: float

    @property
    def height(self) -> float:
        """``top_z - support_z``, m."""
        return self.top_z - self.support_z


def _robust_range(x: np.ndarray, q: float) -> tuple[float, float]:
    lo, hi = np.percentile(x, [q, 100.0 - q])
    return float(lo), float(hi)


def object_shape(points: np.ndarray, scene: np.ndarray, percentile: float = 2.0) -> ObjectShape:
    """Support height, top, horizontal principal axes and extents of an object's points.

    Args:
        points: ``(N, 3)`` object points, base_link, m (N >= 3).
        scene: ``(M, 3)`` other points; those under the object's footprint (below its lowest
            points + 5 mm) give the support height (their 90th percentile), else the
            object's lowest points do.
        percentile: robust-extent percentile (each end).
    """
    c = points.mean(axis=0)
    xy = points[:, :2] - c[:2]
    cov = xy.T @ xy / max(len(xy) - 1, 1)
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, 1] / np.linalg.norm(evecs[:, 1])
    minor = np.array([-major[1], major[0]])
    lo_a, hi_a = _robust_range(xy @ major, percentile)
    lo_b, hi_b = _robust_range(xy @ minor, percentile)
    bottom = float(np.percentile(points[:, 2], percentile))
    top = float(np.percentile(points[:, 2], 100.0 - percentile))
    support = bottom
    if len(scene):
        r = 0.5 * max(hi_a - lo_a, hi_b - lo_b) + 0.05
        d = np.linalg.norm(scene[:, :2] - c[:2], axis=1)
        under = scene[(d <= r) & (scene[:, 2] <= bottom + 0.005)]
        if len(under) >= 3:
            # the surface's upper spread, not its median: the fingertips keep their clearance
            # from the noisy returns of a board seen at a grazing angle (an upper shelf board
            # 1 m from the head camera read 4 mm above its median and refused every grasp)
            support = min(bottom, float(np.percentile(under[:, 2], 90.0)))
    return ObjectShape(c, support, top, major, minor, hi_a - lo_a, hi_b - lo_b)


def _frame(z: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    x = np.cross(y, z)
    T[:3, :3] = np.stack([x / np.linalg.norm(x), y, z], axis=1)
    T[:3, 3] = p
    return T


def _rot2(v: np.ndarray, deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _box_distance(P: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Euclidean distance of points ``(K, 3)`` to an axis-aligned box (0 inside)."""
    d = np.maximum(np.maximum(lo - P, P - hi), 0.0)
    return np.linalg.norm(d, axis=1)


class GeometricGraspPlanner(GraspPlanner):
    """Antipodal top-down and side grasps from principal axes (module docstring).

    Args:
        config: settings (default :class:`GeometricGraspConfig`).

    Example:
        >>> planner = GeometricGraspPlanner()
        >>> grasps = planner.plan(points_base, "box", scene_points_base)   # doctest: +SKIP
        >>> best = grasps[0]; best.T_base_grasp, best.width_m, best.score  # doctest: +SKIP
    """

    name = "geometric"

    def __init__(self, config: GeometricGraspConfig | None = None):
        self.config = config or GeometricGraspConfig()

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.config.categories)

    @property
    def min_points(self) -> int:
        return int(self.config.min_points)

    # ------------------------------------------------------------------ candidates
    def _plan(self, points: np.ndarray, category: str, scene: np.ndarray) -> list[Grasp]:
        cfg = self.config
        shape = object_shape(points, scene, cfg.extent_percentile)
        if shape.height <= 0.0:
            raise NoGraspError(f"the {category}'s points have no height above their support "
                               "(flat or mis-segmented); re-segment the object")
        allpts = np.concatenate([points, scene]) if len(scene) else points
        is_obj = np.zeros(len(allpts), bool)
        is_obj[:len(points)] = True
        from scipy.spatial import cKDTree

        tree = cKDTree(allpts)
        cands = self._top_candidates(points, shape)
        cands += self._angled_candidates(cands, shape, points)
        if shape.height >= cfg.side_min_height:
            cands += self._side_candidates(points, shape)
        rejected = {"width": 0, "collision": 0}
        out: list[Grasp] = []
        for kind, T, width, alignment, centring in cands:
            if width + 2 * cfg.min_width_margin > cfg.max_opening:
                rejected["width"] += 1
                continue
            opening = min(cfg.max_opening, width + 2 * cfg.width_margin)
            hits, clearance = self._collision(T, opening, allpts, is_obj, tree,
                                              shape.support_z)
            if hits > cfg.max_collision_points:
                rejected["collision"] += 1
                continue
            out.append(Grasp(T, opening, self._score(kind, shape, opening, alignment, centring,
                                                     clearance), planner=self.name, kind=kind))
        if not out:
            if rejected["width"] == len(cands):
                raise NoGraspError(
                    f"the {category} is {shape.extent_minor:.3f} m across its narrowest "
                    f"horizontal axis (narrowest candidate slab {min(c[2] for c in cands):.3f} "
                    f"m); with {cfg.min_width_margin:.3f} m margins per side the gripper's "
                    f"{cfg.max_opening:.3f} m opening is too small")
            raise NoGraspError(f"all {len(cands)} candidate grasps of the {category} were "
                               f"rejected: {rejected['width']} too wide, "
                               f"{rejected['collision']} in collision with the scene")
        return out

    def _top_candidates(self, points: np.ndarray, shape: ObjectShape) -> list[tuple]:
        cfg = self.config
        g = cfg.gripper
        top = shape.top_z
        depth = min(cfg.finger_depth, shape.height / 2)
        gz = top - depth
        gz = max(gz, shape.support_z + g.finger_z[1] + cfg.tip_clearance)
        # the palm (hand_z[1] behind the grasp point) must stay above the top
        gz = max(gz, top + g.hand_z[1] + cfg.collision_margin + 0.002)
        gz = min(gz, top - cfg.min_engage)
        # the fingers sweep past everything above their tips
        slab = points[points[:, 2] >= gz - g.finger_z[1]]
        if len(slab) < 3:
            slab = points
        z = np.array([0.0, 0.0, -1.0])
        dirs = [_rot2(shape.minor_xy, off) for off in cfg.top_yaw_offsets_deg]
        least = self._least_width_direction(slab[:, :2])
        if least is not None and all(abs(float(least @ d)) < math.cos(math.radians(5))
                                     for d in dirs):
            dirs.append(least)
        out = []
        for c2 in dirs:
            e2 = np.array([-c2[1], c2[0]])
            # canonical finger order: grasp x (= y x z) points away from the base (+x side)
            y = np.array([c2[0], c2[1], 0.0])
            if np.cross(y, z)[0] < 0:
                y = -y
                c2, e2 = -c2, -e2
            u = slab[:, :2] @ c2
            v = slab[:, :2] @ e2
            lo_v, hi_v = _robust_range(v, cfg.extent_percentile)
            ce = 0.5 * (lo_v + hi_v)
            # only points the fingers can touch (within their width around the grasp line)
            band = np.abs(v - ce) <= g.finger_half_x + cfg.width_margin
            ub = u[band] if np.count_nonzero(band) >= 3 else u
            lo_u, hi_u = _robust_range(ub, cfg.extent_percentile)
            cu = 0.5 * (lo_u + hi_u)
            width = hi_u - lo_u
            pxy = cu * c2 + ce * e2
            T = _frame(z, y, np.array([pxy[0], pxy[1], gz]))
            # closing across the narrow side: the principal minor axis, or for near-round
            # footprints (arbitrary PCA axes) the direction of least width
            alignment = abs(float(c2 @ shape.minor_xy))
            if least is not None:
                alignment = max(alignment, abs(float(c2 @ least)))
            med = np.median(slab[:, :2], axis=0)
            centring = 1.0 - min(1.0, float(np.linalg.norm(med - pxy)) / (width / 2 + 0.01))
            out.append(("top", T, width, alignment, centring))
        return out

    def _angled_candidates(self, tops: list[tuple], shape: ObjectShape,
                           points: np.ndarray) -> list[tuple]:
        """Top-down candidates pitched about their closing axis towards the arm's mount."""
        cfg = self.config
        g = cfg.gripper
        radial = shape.centroid[:2] - np.asarray(cfg.approach_origin_xy)
        n = np.linalg.norm(radial)
        if not cfg.angled_pitch_deg or n < 1e-6:
            return []
        radial /= n
        out = []
        for _, T, width, alignment, centring in tops:
            y = T[:3, 1]
            if abs(float(y[:2] @ radial)) > math.sin(math.radians(cfg.angled_max_axis_deg)):
                continue
            a = radial - float(radial @ y[:2]) * y[:2]
            a = np.array([a[0], a[1], 0.0]) / np.linalg.norm(a)
            for pitch in cfg.angled_pitch_deg:
                p = math.radians(pitch)
                z = math.cos(p) * np.array([0.0, 0.0, -1.0]) + math.sin(p) * a
                # the tilted fingertips reach lower than the upright ones: keep their lowest
                # corner tip_clearance above the support
                low = g.finger_z[1] * math.cos(p) + g.finger_half_x * math.sin(p)
                pz = max(T[2, 3], shape.support_z + low + cfg.tip_clearance)
                Ta = _frame(z, y, np.array([T[0, 3], T[1, 3], pz]))
                # tilted, the palm reaches the object's near top edge at the top-down grasp's
                # depth: back the grasp off along the approach until the palm clears it
                P = (points - Ta[:3, 3]) @ Ta[:3, :3]
                m = cfg.collision_margin
                near = ((np.abs(P[:, 0]) <= g.hand_half_x + m)
                        & (np.abs(P[:, 1]) <= g.hand_half_y + m))
                if np.any(near):
                    need = (g.hand_z[1] + m + 0.002
                            - float(np.percentile(P[near, 2], cfg.extent_percentile)))
                    if need > 0:
                        Ta[:3, 3] -= need * z
                out.append(("angled", Ta, width, alignment, centring))
        return out

    def _least_width_direction(self, xy: np.ndarray) -> np.ndarray | None:
        """Unit horizontal direction across which the points' robust width is least."""
        step = self.config.width_search_step_deg
        if step <= 0 or len(xy) < 3:
            return None
        a = np.radians(np.arange(0.0, 180.0, step))
        D = np.stack([np.cos(a), np.sin(a)], axis=1)
        proj = (xy - xy.mean(axis=0)) @ D.T
        q = self.config.extent_percentile
        widths = np.percentile(proj, 100.0 - q, axis=0) - np.percentile(proj, q, axis=0)
        return D[int(np.argmin(widths))]

    def _side_candidates(self, points: np.ndarray, shape: ObjectShape) -> list[tuple]:
        cfg = self.config
        g = cfg.gripper
        h = shape.height
        gz = shape.support_z + cfg.side_height_fraction * h
        gz = max(gz, shape.support_z + g.hand_half_x + cfg.side_floor_clearance)
        gz = min(gz, shape.top_z - g.finger_half_x - 0.005)
        band = points[np.abs(points[:, 2] - gz) <= g.finger_half_x + cfg.width_margin]
        # the slab the fingers close on must be seen: enough points, and not much narrower
        # than the footprint (a head camera looking down sees little of a bottle's lower side)
        if len(band) < cfg.min_points:
            return []
        radial = shape.centroid[:2] - np.asarray(cfg.approach_origin_xy)
        n = np.linalg.norm(radial)
        if n < 1e-6:
            return []
        radial /= n
        out = []
        for off in cfg.side_yaw_offsets_deg:
            a2 = _rot2(radial, off)
            c2 = np.array([-a2[1], a2[0]])
            u = band[:, :2] @ c2
            w = band[:, :2] @ a2
            lo_u, hi_u = _robust_range(u, cfg.extent_percentile)
            width = hi_u - lo_u
            # the fingers close along c2: the slab must show (nearly) the object's whole width
            # across it. Measured across c2, not along the footprint's minor axis: one view sees
            # a round object's front half, so its minor extent is the (short) depth seen, and
            # a bottle on a shelf board seen from the front was refused (17 of 18 mm)
            lo_a, hi_a = _robust_range(points[:, :2] @ c2, cfg.extent_percentile)
            if width < cfg.side_min_observed * (hi_a - lo_a):
                continue
            front, _ = _robust_range(w, cfg.extent_percentile)
            # only the front is seen: the centre is half the width behind it (round objects),
            # and the palm (hand_z[1] behind the grasp point) must stay clear of the front
            along = front + min(width / 2, -g.hand_z[1] - cfg.collision_margin - 0.002)
            cu = 0.5 * (lo_u + hi_u)
            pxy = cu * c2 + along * a2
            z = np.array([a2[0], a2[1], 0.0])
            y = np.array([c2[0], c2[1], 0.0])
            T = _frame(z, y, np.array([pxy[0], pxy[1], gz]))
            alignment = float(a2 @ radial)
            med = np.median(band[:, :2] @ c2)
            centring = 1.0 - min(1.0, abs(float(med) - cu) / (width / 2 + 0.01))
            out.append(("side", T, width, alignment, centring))
        return out

    # ------------------------------------------------------------------ checks, score
    def _collision(self, T: np.ndarray, opening: float, allpts: np.ndarray, is_obj: np.ndarray,
                   tree, support_z: float = -math.inf) -> tuple[int, float]:
        """Points inside the inflated gripper boxes, and the fingers' clearance (m) to the
        scene points (capped at ``clearance_scale``). The fingertips of a downward grasp may
        touch the support: its returns up to ``support_contact_m`` above ``support_z`` do not
        count against the fingers (a 14 mm eraser or Jenga block on the floor had no grasp
        with 2 mm of depth noise)."""
        cfg = self.config
        boxes = cfg.gripper.boxes(opening)
        reach = float(np.max(np.linalg.norm(boxes.reshape(-1, 3), axis=1))) + cfg.clearance_scale
        idx = tree.query_ball_point(T[:3, 3], reach)
        if not idx:
            return 0, cfg.clearance_scale
        idx = np.asarray(idx)
        P = (allpts[idx] - T[:3, 3]) @ T[:3, :3]   # into the grasp frame
        obj = is_obj[idx]
        # the support's own returns beside a downward grasp's fingertips
        support = ((allpts[idx, 2] <= support_z + cfg.support_contact_m) & ~obj
                   if T[2, 2] < -0.5 else np.zeros(len(idx), bool))
        m = cfg.collision_margin
        hits = 0
        clearance = cfg.clearance_scale
        for k, (lo, hi) in enumerate(boxes):
            inside = np.all((P >= lo - m) & (P <= hi + m), axis=1)
            # object points between or beside the fingers are what the width check is for;
            # the hand must clear both object and scene
            hits += int(np.count_nonzero(inside if k == 2 else inside & ~obj & ~support))
            other = ~obj & ~support
            if k < 2 and np.any(other):
                clearance = min(clearance, float(np.min(_box_distance(P[other], lo, hi))))
        return hits, clearance

    def _score(self, kind: str, shape: ObjectShape, opening: float, alignment: float,
               centring: float, clearance: float) -> float:
        cfg = self.config
        width_term = float(np.clip((cfg.max_opening - opening) / (0.5 * cfg.max_opening), 0, 1))
        clear_term = float(np.clip(clearance / cfg.clearance_scale, 0, 1))
        w = np.array([cfg.w_alignment, cfg.w_centring, cfg.w_width, cfg.w_clearance])
        terms = np.array([alignment, centring, width_term, clear_term])
        s = float(w @ np.clip(terms, 0, 1) / w.sum())
        tall = shape.height >= max(cfg.side_min_height,
                                   1.5 * min(shape.extent_minor, shape.extent_major))
        if kind == "side":
            s *= cfg.side_preference_tall if tall else cfg.side_preference_short
        elif tall:
            s *= min(1.0, 1.5 - cfg.side_preference_tall)
        if kind == "angled":
            s *= cfg.angled_preference
        return float(np.clip(s, 0.0, 1.0))
