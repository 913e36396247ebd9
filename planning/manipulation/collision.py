"""Sphere model of the Panda and a vectorised collision checker against perceived obstacles.

The arm is approximated by 24 spheres fixed in its link frames (:data:`PANDA_SPHERES`).
Centres were chosen by a greedy cover of 4000 points sampled on each link's collision mesh
(``franka_panda/meshes/collision/*.obj``); radii are set so that no point of a 30000-point
sample of the mesh lies more than 3 mm outside the spheres (the checker's ``margin_m``, 1 cm
by default, pads them further):

======================  =======  ============
link                    spheres  radius (m)
======================  =======  ============
panda_link1              3        0.098
panda_link2              3        0.100
panda_link3, link4       3 each   0.090
panda_link5              3        0.093
panda_link6              2        0.078
panda_link7              2        0.069
panda_hand               3        0.055
fingers (hand frame)     2        0.030 (the open fingers: y = +-5 cm, 8.5 cm beyond the flange)
======================  =======  ============

``panda_link0`` is bolted to the base and never moves, so it has no spheres. An optional
sphere at the tip (``held_object_radius_m``) stands for an object in the hand.

Obstacles (:class:`Obstacles`) live in ``base_link``: axis-aligned boxes ``(lo, hi)`` for
known furniture (table, shelf, containers, the robot's own base) and a voxel-downsampled point
cloud of the perceived scene searched with ``scipy.spatial.cKDTree``. The points of the object
about to be grasped (and of the arm itself) must be removed from the cloud by the caller;
:meth:`CollisionChecker.points_outside_arm` removes the arm's own points at a known ``q``.
"""
from __future__ import annotations

from dataclasses import dataclass as _plain_dataclass
from typing import Sequence

import numpy as np

from katazuke.config import dataclass, field, non_negative, positive
from katazuke.errors import InputError
from katazuke.planning.manipulation.kinematics import ArmModel

__all__ = ["PANDA_SPHERES", "SphereSet", "Obstacles", "CollisionConfig", "CollisionChecker",
           "voxel_downsample"]

#: ``{link: [(x, y, z, radius), ...]}`` sphere centres in each link frame (m).
PANDA_SPHERES: dict[str, list[tuple[float, float, float, float]]] = {
    "panda_link1": [(-0.005, 0.001, -0.152, 0.098), (-0.005, -0.069, -0.012, 0.098),
                    (0.005, -0.019, -0.012, 0.098)],
    "panda_link2": [(-0.005, -0.154, 0.005, 0.100), (-0.005, -0.004, 0.065, 0.100),
                    (0.005, -0.014, 0.005, 0.100)],
    "panda_link3": [(0.005, 0.005, -0.091, 0.090), (0.075, 0.055, -0.001, 0.090),
                    (0.075, 0.005, -0.001, 0.090)],
    "panda_link4": [(-0.077, 0.095, 0.005, 0.090), (0.003, 0.005, 0.055, 0.090),
                    (-0.067, 0.025, 0.005, 0.090)],
    "panda_link5": [(-0.005, 0.005, -0.215, 0.093), (-0.005, 0.065, -0.005, 0.093),
                    (0.005, 0.035, -0.135, 0.093)],
    "panda_link6": [(0.022, -0.001, 0.006, 0.078), (0.092, 0.009, -0.004, 0.078)],
    "panda_link7": [(0.006, 0.016, 0.072, 0.069), (0.026, 0.026, 0.062, 0.069)],
    "panda_hand": [(-0.001, 0.056, 0.024, 0.055), (-0.001, -0.064, 0.024, 0.055),
                   (-0.001, -0.004, 0.024, 0.055),
                   (0.0, 0.05, 0.085, 0.03), (0.0, -0.05, 0.085, 0.03)],
}


@_plain_dataclass(frozen=True)
class SphereSet:
    """Spheres rigidly attached to frames of an :class:`ArmModel`.

    Attributes:
        frames: ``(F,)`` frame names.
        frame_index: ``(S,)`` index into ``frames`` of each sphere.
        centres: ``(S, 3)`` centres in their frame (m).
        radii: ``(S,)`` radii (m).
    """

    frames: tuple[str, ...]
    frame_index: np.ndarray
    centres: np.ndarray
    radii: np.ndarray

    @classmethod
    def from_table(cls, table: dict[str, Sequence[Sequence[float]]]) -> "SphereSet":
        """Build from ``{frame: [(x, y, z, r), ...]}`` (m)."""
        frames, idx, c, r = [], [], [], []
        for f, spheres in table.items():
            frames.append(f)
            for s in spheres:
                if len(s) != 4 or s[3] <= 0:
                    raise InputError(f"SphereSet: {f}: each sphere is (x, y, z, r>0); got {s}")
                idx.append(len(frames) - 1)
                c.append(s[:3])
                r.append(s[3])
        return cls(tuple(frames), np.array(idx, dtype=np.int64), np.array(c, dtype=np.float64),
                   np.array(r, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.radii)


def voxel_downsample(points, voxel_m: float) -> np.ndarray:
    """One point (the centroid) per occupied voxel of edge ``voxel_m``: ``(N, 3) -> (M, 3)``.

    Non-finite rows are dropped. ``voxel_m <= 0`` keeps every finite point.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    p = p[np.all(np.isfinite(p), axis=1)]
    if voxel_m <= 0 or len(p) == 0:
        return p
    keys = np.floor(p / voxel_m).astype(np.int64)
    _, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    out = np.zeros((len(counts), 3))
    np.add.at(out, inv, p)
    return out / counts[:, None]


class Obstacles:
    """The arm's obstacles in ``base_link``: boxes and a downsampled point cloud.

    Args:
        boxes: ``(B, 2, 3)`` or a list of ``(lo (3,), hi (3,))`` axis-aligned box corners (m).
        points: ``(N, 3)`` scene points (m); NaN rows are dropped.
        voxel_m: voxel edge for down-sampling ``points`` (m; 0 = keep all).
        floor_z_m: height of the floor in ``base_link`` (m), or None for no floor.

    Raises:
        InputError: malformed boxes (lo > hi) or points.
    """

    def __init__(self, boxes=(), points=None, voxel_m: float = 0.02,
                 floor_z_m: float | None = 0.0):
        from scipy.spatial import cKDTree

        b = np.asarray([np.asarray(x, dtype=np.float64) for x in boxes], dtype=np.float64)
        b = b.reshape(-1, 2, 3)
        if not np.all(np.isfinite(b)) or np.any(b[:, 0] > b[:, 1]):
            raise InputError("Obstacles.boxes: each box is (lo (3,), hi (3,)) with lo <= hi, "
                             "finite, metres in base_link")
        self.boxes = b
        pts = np.zeros((0, 3)) if points is None else np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise InputError(f"Obstacles.points must be (N, 3) metres in base_link; got "
                             f"{pts.shape}")
        self.points = voxel_downsample(pts, voxel_m)
        self.tree = cKDTree(self.points) if len(self.points) else None
        self.floor_z_m = floor_z_m

    def __repr__(self) -> str:
        return (f"Obstacles({len(self.boxes)} boxes, {len(self.points)} points, "
                f"floor_z_m={self.floor_z_m})")


@dataclass(frozen=True)
class CollisionConfig:
    """Settings of :class:`CollisionChecker`."""

    margin_m: float = non_negative(0.01, "padding added to every arm sphere (m)")
    held_object_radius_m: float = non_negative(0.0, "radius of a sphere at the tip standing "
                                                    "for a held object (m; 0 = none)")
    held_object_offset_m: float = field(default=0.0, metadata={
        "help": "offset of that sphere's centre along the tip's z (m; + = beyond the "
                "fingertips)", "check": "finite"})
    self_collision: bool = field(default=True, metadata={
        "help": "also check spheres of links at least `self_collision_link_gap` apart"})
    self_collision_link_gap: int = positive(3, "link distance along the chain from which "
                                               "sphere pairs are checked (adjacent links "
                                               "overlap by design)")
    path_resolution_m: float = positive(0.01, "along a straight joint segment, checked "
                                              "configurations are close enough that no sphere "
                                              "point moves more than this between two (m); keep "
                                              "it <= margin_m so the swept arm is covered")


class CollisionChecker:
    """Checks arm configurations against :class:`Obstacles` (and itself).

    Args:
        arm: the :class:`ArmModel`.
        obstacles: what to avoid (replace with :meth:`set_obstacles`).
        config: :class:`CollisionConfig`.
        spheres: sphere table (default :data:`PANDA_SPHERES`).
    """

    def __init__(self, arm: ArmModel, obstacles: Obstacles | None = None,
                 config: CollisionConfig | None = None,
                 spheres: dict[str, Sequence[Sequence[float]]] | None = None):
        self.arm = arm
        self.config = cfg = config or CollisionConfig()
        table = dict(spheres or PANDA_SPHERES)
        if cfg.held_object_radius_m > 0:
            table[arm.tip_frame] = list(table.get(arm.tip_frame, [])) + [
                (0.0, 0.0, cfg.held_object_offset_m, cfg.held_object_radius_m)]
        self.spheres = SphereSet.from_table(table)
        self._frame_ids = [arm.frame_id(f) for f in self.spheres.frames]
        # sphere centres in their parent joint's frame: one forward pass gives every sphere
        model = arm.model
        joint_of_frame = np.array([int(model.frames[f].parentJoint) for f in self._frame_ids])
        T_joint_frame = np.stack([model.frames[f].placement.homogeneous for f in self._frame_ids])
        fi = self.spheres.frame_index
        self._sphere_joint = joint_of_frame[fi]
        self._c_joint = (np.einsum("sij,sj->si", T_joint_frame[fi, :3, :3], self.spheres.centres)
                         + T_joint_frame[fi, :3, 3])
        T_bw = np.linalg.inv(arm.T_root_base)
        self._T_base_world = None if np.allclose(T_bw, np.eye(4), atol=1e-12) else T_bw
        self.radii = self.spheres.radii + cfg.margin_m
        self._lever = self._lever_arms()
        self._pairs = self._self_pairs()
        self.obstacles = obstacles or Obstacles()

    def _lever_arms(self) -> np.ndarray:
        """``(n,)`` upper bound (m) of the distance from joint i's axis to any sphere point
        it moves: a joint step ``dq`` moves no sphere point more than ``|dq| @ lever``."""
        model = self.arm.model
        reach_from_joint = np.zeros(model.njoints)   # joint j origin -> farthest sphere point
        ext = np.linalg.norm(self._c_joint, axis=1) + self.radii
        for s_joint, e in zip(self._sphere_joint, ext):
            j, acc = int(s_joint), float(e)
            while j > 0:
                reach_from_joint[j] = max(reach_from_joint[j], acc)
                acc += float(np.linalg.norm(model.jointPlacements[j].translation))
                j = int(model.parents[j])
        return reach_from_joint[1:]

    def set_obstacles(self, obstacles: Obstacles) -> None:
        """Replace the obstacles (a new perceived scene)."""
        self.obstacles = obstacles

    def _self_pairs(self) -> np.ndarray:
        if not self.config.self_collision:
            return np.zeros((0, 2), dtype=np.int64)
        model = self.arm.model
        # chain depth of each sphere's frame = the index of its parent joint
        depth = np.array([int(model.frames[f].parentJoint) for f in self._frame_ids])
        d = depth[self.spheres.frame_index]
        i, j = np.triu_indices(len(d), k=1)
        keep = np.abs(d[i] - d[j]) >= self.config.self_collision_link_gap
        return np.stack([i[keep], j[keep]], axis=1)

    # -------------------------------------------------------------- geometry
    def sphere_centres(self, q) -> np.ndarray:
        """Sphere centres in ``base_link``: ``(S, 3)`` for ``q`` ``(n,)``, ``(M, S, 3)`` for ``(M, n)``."""
        Q = np.asarray(q, dtype=np.float64)
        single = Q.ndim == 1
        Q = Q.reshape(-1, self.arm.n)
        JP = self.arm.joint_poses(Q)[:, self._sphere_joint]                   # (M, S, 4, 4)
        out = (JP[..., :3, :3] @ self._c_joint[:, :, None])[..., 0] + JP[..., :3, 3]
        if self._T_base_world is not None:
            out = out @ self._T_base_world[:3, :3].T + self._T_base_world[:3, 3]
        return out[0] if single else out

    def _env_hits(self, C: np.ndarray) -> np.ndarray:
        """``(M, S)`` bool: sphere s of configuration m touches an obstacle; ``C`` ``(M, S, 3)``."""
        r = self.radii
        obs = self.obstacles
        hit = np.zeros(C.shape[:2], dtype=bool)
        if obs.floor_z_m is not None:
            hit |= C[..., 2] - r < obs.floor_z_m
        if len(obs.boxes):
            lo, hi = obs.boxes[:, 0], obs.boxes[:, 1]                      # (B, 3)
            gap = np.maximum(np.maximum(lo - C[..., None, :], 0.0), C[..., None, :] - hi)
            hit |= np.any(np.einsum("msbk,msbk->msb", gap, gap) < (r ** 2)[None, :, None],
                          axis=2)
        if obs.tree is not None:
            d, _ = obs.tree.query(C.reshape(-1, 3), k=1, distance_upper_bound=float(r.max()))
            hit |= d.reshape(C.shape[:2]) < r[None, :]
        return hit

    def _self_hits(self, C: np.ndarray) -> np.ndarray:
        """``(M, P)`` bool: sphere pair p of configuration m overlaps (self collision).

        Self contact uses the spheres without the obstacle margin (not doubled padding).
        """
        if not len(self._pairs):
            return np.zeros((len(C), 0), dtype=bool)
        i, j = self._pairs[:, 0], self._pairs[:, 1]
        d = C[:, i] - C[:, j]
        rs = self.spheres.radii[i] + self.spheres.radii[j]
        return np.einsum("mpk,mpk->mp", d, d) < rs ** 2

    def _free(self, Q: np.ndarray) -> np.ndarray:
        C = self.sphere_centres(Q).reshape(len(Q), -1, 3)
        return ~(np.any(self._env_hits(C), axis=1) | np.any(self._self_hits(C), axis=1))

    def is_collision_free(self, q):
        """Whether configurations are free of collision.

        Args:
            q: ``(n,)`` or ``(M, n)`` joint angles (rad).

        Returns:
            ``bool`` for one configuration, ``(M,)`` bool array for several. Configurations
            outside the joint limits count as not free.

        Raises:
            InputError: non-finite or wrongly shaped ``q``.
        """
        Q = np.asarray(q, dtype=np.float64)
        single = Q.ndim == 1
        if Q.shape[-1:] != (self.arm.n,) or Q.ndim > 2 or not np.all(np.isfinite(Q)):
            raise InputError(f"is_collision_free: q must be finite, shape ({self.arm.n},) or "
                             f"(M, {self.arm.n}); got {Q.shape}")
        Q = Q.reshape(-1, self.arm.n)
        inside = np.all((Q >= self.arm.lower - 1e-9) & (Q <= self.arm.upper + 1e-9), axis=1)
        free = inside.copy()
        if np.any(inside):
            free[inside] = self._free(Q[inside])
        return bool(free[0]) if single else free

    def colliding_links(self, q) -> list[str]:
        """Names of the frames whose spheres collide at ``q`` ``(n,)`` (diagnostics)."""
        C = self.sphere_centres(self.arm.check_q(q))[None]
        hit = self._env_hits(C)[0]
        pairs = self._pairs[self._self_hits(C)[0]]
        hit[pairs.reshape(-1)] = True
        return sorted({self.spheres.frames[i] for i in self.spheres.frame_index[hit]})

    def interpolate(self, path, resolution_m: float | None = None) -> np.ndarray:
        """Densify a joint path ``(N, n)`` so that between consecutive rows no arm sphere point
        moves more than ``resolution_m`` (default ``config.path_resolution_m``)."""
        P = np.asarray(path, dtype=np.float64).reshape(-1, self.arm.n)
        res = resolution_m or self.config.path_resolution_m
        out = [P[:1]]
        for a, b in zip(P[:-1], P[1:]):
            k = max(1, int(np.ceil(float(np.abs(b - a) @ self._lever) / res)))
            s = np.arange(1, k + 1)[:, None] / k
            out.append(a + s * (b - a))
        return np.concatenate(out)

    def path_collision_free(self, path, resolution_m: float | None = None) -> bool:
        """Whether the straight joint segments of ``path`` ``(N, n)`` are all collision free,
        checked at ``resolution_m`` (see :meth:`interpolate`)."""
        dense = self.interpolate(path, resolution_m)
        for k in range(0, len(dense), 256):   # chunks bound memory on long paths
            if not np.all(self.is_collision_free(dense[k:k + 256])):
                return False
        return True

    def points_outside_arm(self, points, q, extra_margin_m: float = 0.02) -> np.ndarray:
        """``points`` ``(N, 3)`` (base_link) without those inside the arm's spheres at ``q``
        grown by ``extra_margin_m``: removes the arm's own returns from a scene cloud."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        C = self.sphere_centres(self.arm.check_q(q))
        d = np.linalg.norm(p[:, None, :] - C[None], axis=2)
        return p[~np.any(d < (self.spheres.radii + extra_margin_m)[None], axis=1)]
