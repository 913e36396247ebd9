"""SE(3) energy minimisation: the pose whose query points' descriptors match a demonstration.

Given the descriptors ``D*`` a demonstration recorded at its gripper's query points, the
transferred pose is ``argmin_T E(T)`` with::

    E(T) = mean_{m, d} | f(T x_m | P)_d - D*_{m, d} |          (descriptor energy, L1)
         + w * mean_g relu(margin - dist(T c_g, P))^2 / margin^2   (penetration)

``x_m`` the query points and ``c_g`` the collision points, both in the gripper frame, ``P``
the observed cloud. Many random restarts are optimised together as one batch (Adam on a
translation + axis-angle increment around each restart's initial pose); after a share of
the steps the worse restarts are dropped; the survivors are returned ranked by energy.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from katazuke.errors import InputError
from katazuke.perception.ndf.checks import check_cloud
from katazuke.perception.ndf.config import PoseOptConfig
from katazuke.perception.ndf.field import DescriptorField

__all__ = ["PoseEnergyResult", "minimise_pose_energy", "random_rotations", "transform_points"]


@dataclass(frozen=True)
class PoseEnergyResult:
    """Ranked poses of :func:`minimise_pose_energy`.

    Attributes:
        T: ``(K, 4, 4)`` float64 poses of the gripper (query-point) frame in the cloud's
            frame, lowest energy first.
        energy: ``(K,)`` total energy of each pose.
        descriptor_energy: ``(K,)`` its descriptor-matching part.
        penetration: ``(K,)`` its penetration part (unweighted; 0 when off).
        seconds: wall time of the minimisation (excluding the cloud's encoding), s.
        evaluations: query-pose evaluations made (restarts x steps, after pruning).
    """

    T: np.ndarray
    energy: np.ndarray
    descriptor_energy: np.ndarray
    penetration: np.ndarray
    seconds: float
    evaluations: int


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 3, 3)`` rotations uniform on SO(3) (normalised Gaussian quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    x, y, z, w = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], 1)


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points (M, 3)`` mapped by ``T (4, 4)`` -> ``(M, 3)``; or by ``T (R, 4, 4)`` -> ``(R, M, 3)``."""
    T = np.asarray(T, dtype=np.float64)
    return points @ np.swapaxes(T[..., :3, :3], -1, -2) + T[..., None, :3, 3]


def _exp_so3(w: torch.Tensor) -> torch.Tensor:
    """``(K, 3)`` axis-angle -> ``(K, 3, 3)`` rotations (Rodrigues; smooth at 0, where the
    ``1e-12`` keeps the gradient finite)."""
    z = torch.zeros_like(w[:, 0])
    W = torch.stack([torch.stack([z, -w[:, 2], w[:, 1]], -1),
                     torch.stack([w[:, 2], z, -w[:, 0]], -1),
                     torch.stack([-w[:, 1], w[:, 0], z], -1)], 1)
    th2 = (w * w).sum(1)[:, None, None]
    th = torch.sqrt(th2 + 1e-12)
    small = th2 < 1e-8
    a = torch.where(small, 1.0 - th2 / 6.0, torch.sin(th) / th)
    b = torch.where(small, 0.5 - th2 / 24.0, (1.0 - torch.cos(th)) / (th2 + 1e-12))
    return torch.eye(3, dtype=w.dtype) + a * W + b * (W @ W)


def minimise_pose_energy(field: DescriptorField, query_points: np.ndarray, target: np.ndarray,
                         cfg: PoseOptConfig, generator: np.random.Generator,
                         collision_points: np.ndarray | None = None) -> PoseEnergyResult:
    """Poses of the gripper frame whose query points best match ``target`` descriptors.

    Args:
        field: the observed object's :class:`DescriptorField` (its points are also the
            obstacles of the penetration term).
        query_points: ``(M, 3)`` query points in the gripper frame, m (the demonstration's).
        target: ``(M, D)`` descriptors of those points in the demonstration.
        cfg: restarts, steps, pruning, penetration settings.
        generator: draws the restarts' initial poses and the penetration subset.
        collision_points: ``(G, 3)`` points on the gripper's body, gripper frame, m; None
            or ``cfg.penetration_weight == 0`` turns the penetration term off.

    Returns:
        The surviving restarts' poses, lowest energy first.

    Raises:
        InputError: malformed ``query_points``, ``target`` (shape ``(M, D)`` with D the
            network's descriptor length, finite) or ``collision_points``.
    """
    X = check_cloud(query_points, "query_points", 1)
    D = field.network.descriptor_dim
    tgt = np.asarray(target, dtype=np.float64)
    if tgt.shape != (len(X), D) or not np.all(np.isfinite(tgt)):
        raise InputError(f"target must be finite descriptors of shape ({len(X)}, {D}) (one row "
                         f"per query point, this network's descriptor length); got "
                         f"{tgt.shape}")
    use_pen = collision_points is not None and cfg.penetration_weight > 0
    G = check_cloud(collision_points, "collision_points", 1) if use_pen else None
    dt_ = field.dtype
    P = field.points
    mean = P.mean(0)
    radius = float(np.sqrt(((P - mean) ** 2).sum(1).mean())) + 1e-6
    R0 = torch.as_tensor(random_rotations(cfg.restarts, generator), dtype=dt_)
    t0 = torch.as_tensor(mean + generator.normal(size=(cfg.restarts, 3))
                         * cfg.init_translation_std * radius, dtype=dt_)
    Xt = torch.as_tensor(X, dtype=dt_)
    Tt = torch.as_tensor(tgt, dtype=dt_)
    if use_pen:
        obs = P if len(P) <= cfg.max_points else P[
            np.sort(generator.choice(len(P), cfg.max_points, replace=False))]
        Ot = torch.as_tensor(obs, dtype=dt_)
        Gt = torch.as_tensor(G, dtype=dt_)
    margin = cfg.penetration_margin_m

    def energies(R: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = Xt @ R.transpose(1, 2) + t[:, None]
        e_desc = (field.descriptors_torch(q) - Tt).abs().mean((1, 2))
        if not use_pen:
            return e_desc, torch.zeros_like(e_desc)
        g = Gt @ R.transpose(1, 2) + t[:, None]                        # (K, G, 3)
        d = torch.cdist(g, Ot[None].expand(len(g), -1, -1)).min(-1).values
        return e_desc, (torch.relu(margin - d) ** 2).mean(1) / margin ** 2

    def pose(w: torch.Tensor, dt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _exp_so3(w) @ R0, t0 + dt * radius

    prune_step = int(round(cfg.prune_at * cfg.steps)) if cfg.prune_at > 0 else -1
    t_start = time.perf_counter()
    evaluations = 0
    w = torch.zeros(cfg.restarts, 3, dtype=dt_, requires_grad=True)
    dt = torch.zeros(cfg.restarts, 3, dtype=dt_, requires_grad=True)
    opt = torch.optim.Adam([w, dt], lr=cfg.lr)
    last = None
    for step in range(cfg.steps):
        if step == prune_step and last is not None:
            keep = max(1, int(round(cfg.keep_fraction * len(last))))
            idx = torch.argsort(last)[:keep]
            with torch.no_grad():
                R, t = pose(w, dt)
                R0, t0 = R[idx].clone(), t[idx].clone()
            w = torch.zeros(keep, 3, dtype=dt_, requires_grad=True)
            dt = torch.zeros(keep, 3, dtype=dt_, requires_grad=True)
            opt = torch.optim.Adam([w, dt], lr=cfg.lr)
        for g in opt.param_groups:   # cosine decay to 2 %: settle into the basin found
            g["lr"] = cfg.lr * (0.02 + 0.49 * (1.0 + math.cos(math.pi * step / cfg.steps)))
        R, t = pose(w, dt)
        e_desc, pen = energies(R, t)
        e = e_desc + cfg.penetration_weight * pen
        evaluations += len(e)
        opt.zero_grad(set_to_none=True)
        e.sum().backward()
        opt.step()
        last = e.detach()
    with torch.no_grad():
        R, t = pose(w, dt)
        e_desc, pen = energies(R, t)
        e = e_desc + cfg.penetration_weight * pen
    seconds = time.perf_counter() - t_start
    order = torch.argsort(e)
    T = np.zeros((len(e), 4, 4))
    T[:, :3, :3] = R[order].double().numpy()
    T[:, :3, 3] = t[order].double().numpy()
    T[:, 3, 3] = 1.0
    return PoseEnergyResult(T, e[order].double().numpy(), e_desc[order].double().numpy(),
                            pen[order].double().numpy(), seconds, evaluations)
