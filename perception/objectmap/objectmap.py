"""Fuse 3D detections over time into object instances; forget what views show is gone.

Each :class:`Instance` keeps a window of observed positions (its position is their
objectness-weighted median, robust to a bad depth sample), a running category
distribution, an existence confidence and a miss counter. ``update`` does, per frame:

1. associate detections to instances greedily by distance (gate ``gate_distance``) among
   category-compatible pairs, else start a new (tentative) instance;
2. for every instance not matched, if a :class:`CameraView` is given and the instance
   projects inside the image, in range, with measured depth not nearer than its expected
   depth (not occluded), count a miss: confidence *= ``miss_decay``; after
   ``forget_after_misses`` consecutive misses (or confidence < ``min_confidence``) remove it;
3. merge compatible instances closer than ``merge_distance``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from katazuke.errors import ConfigError, InputError
from katazuke.perception.objectmap.config import ObjectMapConfig

__all__ = ["Observation3D", "CameraView", "Instance", "Landmark", "ObjectMap", "WhereIsResult",
           "KNOWN_CATEGORIES", "CATEGORY_NAMES"]

KNOWN_CATEGORIES: tuple[str, ...] = ("toy", "kitchenware", "stationery", "bottle", "box", "soft")
CATEGORY_NAMES: tuple[str, ...] = KNOWN_CATEGORIES + ("unknown",)


@dataclass
class Observation3D:
    """One detection lifted to 3D.

    Attributes:
        position: ``(3,)`` metres, map frame.
        objectness: [0, 1].
        category_scores: ``(7,)`` probabilities over :data:`CATEGORY_NAMES`.
        extent: ``(3,)`` metres (approximate size), or zeros.
    """

    position: np.ndarray
    objectness: float
    category_scores: np.ndarray
    extent: np.ndarray = field(default_factory=lambda: np.zeros(3))


@dataclass
class CameraView:
    """What the camera could see when the detections were made (for forgetting).

    Attributes:
        T_map_cam: ``(4, 4)`` camera optical frame (z forward, x right, y down) -> map.
        K: ``(3, 3)`` intrinsics, pixels.
        depth: ``(H, W)`` float metres (0, inf or nan = no depth).
    """

    T_map_cam: np.ndarray
    K: np.ndarray
    depth: np.ndarray


@dataclass
class Instance:
    """A fused object instance (positions in the map frame, metres; times in seconds)."""

    id: int
    positions: list
    weights: list
    category_mass: np.ndarray
    extent: np.ndarray
    confidence: float
    first_seen: float
    last_seen: float
    observations: int = 1
    misses: int = 0
    peak_objectness: float = 0.0
    _position: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def position(self) -> np.ndarray:
        """``(3,)`` weighted per-axis median of the observation window (cached until the
        window changes: :meth:`touch`)."""
        if self._position is None:
            p = np.asarray(self.positions)
            w = np.asarray(self.weights)
            out = np.empty(3)
            for a in range(3):
                o = np.argsort(p[:, a])
                cw = np.cumsum(w[o])
                out[a] = p[o[np.searchsorted(cw, 0.5 * cw[-1])], a]
            self._position = out
        return self._position.copy()

    def touch(self) -> None:
        """Forget the cached position (after ``positions`` / ``weights`` changed)."""
        self._position = None

    @property
    def category_distribution(self) -> np.ndarray:
        """``(7,)`` normalised category distribution over :data:`CATEGORY_NAMES`."""
        s = self.category_mass.sum()
        return self.category_mass / s if s > 0 else np.full(len(CATEGORY_NAMES), 1 / len(CATEGORY_NAMES))

    @property
    def category(self) -> str:
        return CATEGORY_NAMES[int(np.argmax(self.category_distribution))]


@dataclass(frozen=True)
class Landmark:
    """Named furniture or container: axis-aligned box ``center`` (3,) and ``size`` (3,), m."""

    name: str
    center: np.ndarray
    size: np.ndarray


@dataclass
class WhereIsResult:
    """Answer of :meth:`ObjectMap.where_is`: ``found``, English ``answer``, ``matches`` best first."""

    found: bool
    answer: str
    matches: list


def _inside(points: np.ndarray, spheres: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: points ``(N, 3)`` inside any sphere of ``(M, 4)``."""
    d2 = ((points[:, None, :] - spheres[None, :, :3]) ** 2).sum(-1)
    return np.any(d2 <= spheres[None, :, 3] ** 2, axis=1)


def _parse_pairs(items: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"{what} entry {it!r} must look like 'key=value'")
        k, v = it.split("=", 1)
        out[k.strip().lower()] = v.strip()
    return out


def _parse_landmarks(items: tuple[str, ...]) -> list[Landmark]:
    out = []
    for it in items:
        try:
            name, nums = it.split("=", 1)
            vals = [float(v) for v in nums.split(",")]
            if len(vals) != 6:
                raise ValueError
        except ValueError:
            raise ConfigError(f"landmark {it!r} must look like 'name=x,y,z,sx,sy,sz' "
                              "(box centre and size in metres)") from None
        out.append(Landmark(name.strip(), np.array(vals[:3]), np.array(vals[3:])))
    return out


class ObjectMap:
    """The object map. Time is an argument (seconds); nothing reads a clock."""

    def __init__(self, config: ObjectMapConfig | None = None) -> None:
        self.config = config or ObjectMapConfig()
        c = self.config     # its ranges are checked when it is built (ObjectMapConfig)
        self.destinations = _parse_pairs(c.destinations, "destinations")
        for cat in self.destinations:
            if cat not in CATEGORY_NAMES:
                raise ConfigError(f"destinations: unknown category {cat!r}; use {list(CATEGORY_NAMES)}")
        self.synonyms = _parse_pairs(c.synonyms, "synonyms")
        self.landmarks = _parse_landmarks(c.landmarks)
        self._instances: dict[int, Instance] = {}
        self._next_id = 1

    # ------------------------------------------------------------------ fusion
    def set_landmarks(self, landmarks: list[Landmark]) -> None:
        """Replace the named furniture/containers used in answers."""
        self.landmarks = list(landmarks)

    @property
    def instances(self) -> list[Instance]:
        """Confirmed instances (``observations >= confirm_observations`` and a detection with
        objectness >= ``report_min_objectness``), by id."""
        n, o = self.config.confirm_observations, self.config.report_min_objectness
        return [i for i in sorted(self._instances.values(), key=lambda i: i.id)
                if i.observations >= n and i.peak_objectness >= o]

    @property
    def all_instances(self) -> list[Instance]:
        """Every instance, tentative ones included."""
        return sorted(self._instances.values(), key=lambda i: i.id)

    def destination(self, category: str) -> str:
        """Container id for a category from the rule table ('' if no rule)."""
        return self.destinations.get(category, "")

    def _compatible(self, inst: Instance, scores: np.ndarray) -> bool:
        ic = int(np.argmax(inst.category_distribution))
        dc = int(np.argmax(scores))
        unknown = len(CATEGORY_NAMES) - 1
        if ic == unknown or dc == unknown or ic == dc:
            return True
        return bool(scores[ic] >= self.config.min_category_compat)

    def update(self, t: float, detections: list[Observation3D], view: CameraView | None = None,
               exclude: np.ndarray | None = None) -> int:
        """Fuse one frame's detections.

        Args:
            t: stamp of the frame, seconds.
            detections: the frame's 3D detections (map frame).
            view: camera pose, intrinsics and depth of the frame; without it nothing is forgotten.
            exclude: ``(M, 4)`` spheres ``x, y, z, radius`` (map, m) of the robot's own body
                (arm, gripper, a held object): detections inside them are the robot and are
                dropped, and instances inside them are not charged a miss (the arm hides
                them; no evidence either way).

        Returns:
            The number of detections dropped by ``exclude``.

        Raises:
            InputError: a detection with a non-finite position or wrong score length.
        """
        c = self.config
        dets = []
        for d in detections:
            p = np.asarray(d.position, float).reshape(-1)
            s = np.asarray(d.category_scores, float).reshape(-1)
            if p.shape != (3,) or not np.all(np.isfinite(p)):
                raise InputError(f"detection position must be 3 finite numbers, got {d.position}")
            if s.shape != (len(CATEGORY_NAMES),):
                raise InputError(f"category_scores must have {len(CATEGORY_NAMES)} entries "
                                 f"({list(CATEGORY_NAMES)}), got {s.shape}")
            if d.objectness >= c.min_objectness:
                dets.append((p, float(d.objectness), s, np.asarray(d.extent, float).reshape(3)))
        ex = None
        n_self = 0
        if exclude is not None and len(exclude):
            ex = np.asarray(exclude, float).reshape(-1, 4)
            if not np.all(np.isfinite(ex)):
                raise InputError("exclude spheres must be finite (x, y, z, radius) rows")
            if dets:
                own = _inside(np.array([d[0] for d in dets]), ex)
                n_self = int(own.sum())
                dets = [d for d, o in zip(dets, own) if not o]
        insts = list(self._instances.values())
        pairs = []
        for di, (p, _, s, _) in enumerate(dets):
            for inst in insts:
                dist = float(np.linalg.norm(inst.position - p))
                if dist <= c.gate_distance and self._compatible(inst, s):
                    pairs.append((dist, di, inst.id))
        pairs.sort()
        used_d, used_i = set(), set()
        for dist, di, iid in pairs:
            if di in used_d or iid in used_i:
                continue
            used_d.add(di)
            used_i.add(iid)
            self._observe(self._instances[iid], t, *dets[di])
        for di, (p, o, s, e) in enumerate(dets):
            if di not in used_d:
                inst = Instance(self._next_id, [p], [o], s * o, e.copy(), c.hit_gain * o, t, t,
                                peak_objectness=o)
                self._instances[inst.id] = inst
                used_i.add(inst.id)
                self._next_id += 1
        if view is not None:
            for inst in list(self._instances.values()):
                if inst.id in used_i:
                    continue
                if ex is not None and _inside(inst.position[None], ex)[0]:
                    continue
                if self.should_be_visible(inst.position, view):
                    inst.misses += 1
                    inst.confidence *= c.miss_decay
                    if inst.misses >= c.forget_after_misses or inst.confidence < c.min_confidence:
                        del self._instances[inst.id]
        self._merge()
        return n_self

    def _observe(self, inst: Instance, t: float, p: np.ndarray, o: float, s: np.ndarray,
                 e: np.ndarray) -> None:
        c = self.config
        inst.positions.append(p)
        inst.weights.append(o)
        if len(inst.positions) > c.position_window:
            inst.positions.pop(0)
            inst.weights.pop(0)
        inst.touch()
        inst.category_mass = inst.category_mass + s * o
        n = inst.observations
        inst.extent = (inst.extent * n + e) / (n + 1)
        inst.observations += 1
        inst.confidence += c.hit_gain * o * (1 - inst.confidence)
        inst.last_seen = max(inst.last_seen, t)
        inst.misses = 0
        inst.peak_objectness = max(inst.peak_objectness, o)

    def _merge(self) -> None:
        c = self.config
        while True:
            insts = sorted(self._instances.values(), key=lambda i: -i.observations)
            if len(insts) < 2:
                return
            P = np.array([i.position for i in insts])
            d2 = ((P[:, None, :] - P[None, :, :]) ** 2).sum(-1)
            close = np.argwhere(np.triu(d2 <= c.merge_distance ** 2, k=1))
            pair = next(((a, b) for a, b in close       # row-major: the order of the old loop
                         if self._compatible(insts[a], insts[b].category_distribution)), None)
            if pair is None:
                return
            a, b = insts[pair[0]], insts[pair[1]]
            a.positions += b.positions
            a.weights += b.weights
            if len(a.positions) > c.position_window:
                a.positions = a.positions[-c.position_window:]
                a.weights = a.weights[-c.position_window:]
            a.touch()
            a.category_mass = a.category_mass + b.category_mass
            a.extent = (a.extent * a.observations + b.extent * b.observations) / (
                a.observations + b.observations)
            a.observations += b.observations
            a.confidence = max(a.confidence, b.confidence)
            a.peak_objectness = max(a.peak_objectness, b.peak_objectness)
            a.first_seen = min(a.first_seen, b.first_seen)
            a.last_seen = max(a.last_seen, b.last_seen)
            del self._instances[b.id]

    def should_be_visible(self, position: np.ndarray, view: CameraView) -> bool:
        """True when ``position`` (map, m) projects inside the image, in range, unoccluded.

        Unoccluded: the depth measured at the projection (median of a 5x5 patch of valid
        pixels) is not nearer than the point's depth minus ``depth_tolerance``. ``+inf`` depth
        (nothing hit) counts as free space; pixels with 0/nan depth make the answer False
        (no evidence either way).
        """
        c = self.config
        T_cam_map = np.linalg.inv(np.asarray(view.T_map_cam, float))
        pc = T_cam_map[:3, :3] @ np.asarray(position, float) + T_cam_map[:3, 3]
        z = pc[2]
        if z <= 0.05 or z > c.max_range:
            return False
        uv = np.asarray(view.K, float) @ (pc / z)
        u, v = uv[0], uv[1]
        h, w = view.depth.shape[:2]
        m = c.image_margin_px
        if not (m <= u < w - m and m <= v < h - m):
            return False
        ui, vi = int(u), int(v)
        patch = np.asarray(view.depth[max(vi - 2, 0):vi + 3, max(ui - 2, 0):ui + 3], float)
        # +inf means the ray hit nothing (free space: evidence); 0 / nan mean no measurement.
        valid = patch[(patch > 0) & ~np.isnan(patch)]
        if valid.size == 0:
            return False
        return bool(np.median(valid) >= z - c.depth_tolerance)

    # ------------------------------------------------------------------ queries
    def _query_categories(self, query: str) -> set[str] | None:
        """Categories named by a query, or None meaning 'any object'."""
        words = [w.strip(".,?!'\"").lower() for w in query.replace("-", " ").split()]
        cats: set[str] = set()
        for w in words:
            for cand in (w, w[:-1] if w.endswith("s") else w):
                if cand in CATEGORY_NAMES:
                    cats.add(cand)
                elif cand in self.synonyms:
                    cats.add(self.synonyms[cand])
        if "any" in cats:
            return None
        return cats

    def describe_location(self, position: np.ndarray) -> str:
        """English phrase for a map position: 'on the table, near the red bin' or coordinates."""
        p = np.asarray(position, float)
        on = None
        near = []
        for lm in self.landmarks:
            lo, hi = lm.center - lm.size / 2, lm.center + lm.size / 2
            inside_xy = bool(np.all(p[:2] >= lo[:2] - 0.05) and np.all(p[:2] <= hi[:2] + 0.05))
            if inside_xy and hi[2] - 0.05 <= p[2] <= hi[2] + 0.6:
                on = on or lm
            elif inside_xy and lo[2] <= p[2] <= hi[2]:
                prep = "in" if ("bin" in lm.name or "box" in lm.name) else "on"
                return f"{prep} the {lm.name} (x {p[0]:.2f} m, y {p[1]:.2f} m)"
            d = float(np.linalg.norm(np.maximum(np.abs(p[:2] - lm.center[:2]) - lm.size[:2] / 2, 0)))
            near.append((d, lm))
        near = sorted((x for x in near if x[1] is not on and x[0] <= self.config.near_distance),
                      key=lambda x: x[0])
        parts = []
        if on is not None:
            parts.append(f"on the {on.name}")
        elif p[2] < 0.2:
            parts.append("on the floor")
        if near:
            parts.append(f"near the {near[0][1].name}")
        where = ", ".join(parts)
        coords = f"at x {p[0]:.2f} m, y {p[1]:.2f} m"
        return f"{where} ({coords})" if where else coords

    def where_is(self, query: str) -> WhereIsResult:
        """Answer "where is the <query>?" from confirmed instances.

        Matches are instances whose category the query names (via categories or synonyms;
        'thing'/'object' match all), best first by confidence then observations.
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError("where_is() needs a non-empty query such as 'mug' or 'toy'")
        cats = self._query_categories(query)
        if cats is not None and not cats:
            return WhereIsResult(False, f"I don't know what '{query.strip()}' is; ask for one of: "
                                        f"{', '.join(KNOWN_CATEGORIES)}.", [])
        matches = [i for i in self.instances if cats is None or i.category in cats]
        matches.sort(key=lambda i: (-i.confidence, -i.observations, i.id))
        label = query.strip().rstrip("?.!")
        if label.lower().startswith(("the ", "a ", "an ")):
            label = label.split(" ", 1)[1]
        if not matches:
            return WhereIsResult(False, f"I have not seen any {label}.", [])
        best = matches[0]
        answer = f"The {label} is {self.describe_location(best.position)}."
        if len(matches) > 1:
            answer += f" I know of {len(matches) - 1} more."
        return WhereIsResult(True, answer, matches)
