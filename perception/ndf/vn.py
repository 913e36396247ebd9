"""Vector Neuron layers (Deng et al., ICCV 2021): SO(3)-equivariant building blocks.

A vector-neuron feature is a list of 3-D vectors: tensors of shape ``(B, C, 3, ...)``, C
channels of one 3-vector each, any trailing point/neighbour axes. Every layer here commutes
with a rotation ``R`` acting on axis 2 (``f(R x) = R f(x)``) except :class:`VNInvariant`,
whose output does not change (``f(R x) = f(x)``). Proper rotations only: :func:`edge_features`
uses a cross product, which flips sign under a reflection.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["VNLinear", "VNLeakyReLU", "VNLinearLeakyReLU", "VNMeanPool", "VNMaxPool",
           "VNInvariant", "VNResnetBlock", "edge_features", "EPS"]

#: Added to squared norms (invariant), so it never breaks equivariance.
EPS = 1e-8


class VNLinear(nn.Module):
    """Channel mixing ``y_o = sum_c W_oc x_c`` of 3-vectors (no bias: a bias would not rotate).

    Shapes: ``(B, C_in, 3, ...)`` -> ``(B, C_out, 3, ...)``.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(c_in)
        self.weight = nn.Parameter(torch.empty(c_out, c_in).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oc,bc...->bo...", self.weight, x)


class VNLeakyReLU(nn.Module):
    """Vector leaky ReLU: a learned direction ``k = U x`` per channel (or one for all with
    ``shared``); where ``<x, k> < 0`` the component of ``x`` along ``k`` is removed, and
    ``slope * x`` is always kept.

    Shapes: ``(B, C, 3, ...)`` -> ``(B, C, 3, ...)``.
    """

    def __init__(self, channels: int, negative_slope: float = 0.2, shared: bool = False) -> None:
        super().__init__()
        # shared: one learned direction for all channels (cheaper where features are many)
        self.direction = VNLinear(channels, 1 if shared else channels)
        self.negative_slope = float(negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.direction(x)
        dot = (x * k).sum(2, keepdim=True)
        k_sq = (k * k).sum(2, keepdim=True)
        proj = x - (dot / (k_sq + EPS)) * k
        out = torch.where(dot >= 0, x, proj)
        return self.negative_slope * x + (1.0 - self.negative_slope) * out


class VNLinearLeakyReLU(nn.Module):
    """:class:`VNLinear` then :class:`VNLeakyReLU`. ``(B, C_in, 3, ...)`` -> ``(B, C_out, 3, ...)``."""

    def __init__(self, c_in: int, c_out: int, negative_slope: float = 0.2,
                 shared: bool = False) -> None:
        super().__init__()
        self.linear = VNLinear(c_in, c_out)
        self.act = VNLeakyReLU(c_out, negative_slope, shared)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.linear(x))


class VNMeanPool(nn.Module):
    """Mean over the last axis (points or neighbours). ``(B, C, 3, ..., N)`` -> ``(B, C, 3, ...)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(-1)


class VNMaxPool(nn.Module):
    """Per channel, the vector of the last axis with the largest projection on a learned
    direction ``k = U x`` (the VN analogue of max pooling).

    Shapes: ``(B, C, 3, N)`` -> ``(B, C, 3)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.direction = VNLinear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dot = (x * self.direction(x)).sum(2, keepdim=True)          # (B, C, 1, N)
        idx = dot.argmax(-1, keepdim=True).expand(-1, -1, 3, -1)      # (B, C, 3, 1)
        return torch.gather(x, -1, idx).squeeze(-1)


class VNInvariant(nn.Module):
    """Rotation-invariant features: the input's coordinates in an equivariant frame.

    Three vectors predicted from the features (``VNLinearLeakyReLU`` -> ``VNLinear(., 3)``)
    are orthonormalised (Gram-Schmidt, right-handed), giving a frame ``F`` that rotates with
    the input; ``x_c . F_j`` then does not change under rotation.

    Shapes: ``(B, C, 3, ...)`` -> ``(B, C, 3, ...)``, the last-but-channel axis now holding
    the three invariant coordinates instead of x, y, z.
    """

    def __init__(self, channels: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        mid = max(channels // 2, 2)
        self.frame_net = nn.Sequential(VNLinearLeakyReLU(channels, mid, negative_slope),
                                       VNLinear(mid, 2))

    def frame(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 3, ...)`` orthonormal frame; row j of axis 1 is the j-th unit vector."""
        v = self.frame_net(x)
        # a smaller guard than EPS: the frame should be orthonormal to ~1e-8 even for short
        # (nearly parallel) predicted vectors
        e1 = v[:, 0] / torch.sqrt((v[:, 0] ** 2).sum(1, keepdim=True) + 1e-12)
        u2 = v[:, 1] - (v[:, 1] * e1).sum(1, keepdim=True) * e1
        e2 = u2 / torch.sqrt((u2 ** 2).sum(1, keepdim=True) + 1e-12)
        e3 = torch.cross(e1, e2, dim=1)
        return torch.stack([e1, e2, e3], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bci...,bji...->bcj...", x, self.frame(x))


class VNResnetBlock(nn.Module):
    """Pre-activation residual block of VN layers. ``(B, C_in, 3, ...)`` -> ``(B, C_out, 3, ...)``."""

    def __init__(self, c_in: int, c_out: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.act_0 = VNLeakyReLU(c_in, negative_slope)
        self.fc_0 = VNLinear(c_in, c_out)
        self.act_1 = VNLeakyReLU(c_out, negative_slope)
        self.fc_1 = VNLinear(c_out, c_out)
        self.shortcut = VNLinear(c_in, c_out) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dx = self.fc_1(self.act_1(self.fc_0(self.act_0(x))))
        return (x if self.shortcut is None else self.shortcut(x)) + dx


def edge_features(points: torch.Tensor, k: int) -> torch.Tensor:
    """Equivariant edge features of each point's k nearest neighbours (itself included).

    Args:
        points: ``(B, 3, N)`` centred points.
        k: neighbours per point (clipped to N).

    Returns:
        ``(B, 3, 3, N, k)``: the channels ``x_j - x_i``, ``x_i`` and ``x_j x x_i``.
    """
    B, _, N = points.shape
    k = min(k, N)
    pts = points.transpose(1, 2)                                       # (B, N, 3)
    # direct differences, not |a|^2 + |b|^2 - 2ab: its float32 cancellation reorders near-tied
    # neighbours differently in a rotated copy (1e-4 descriptor changes)
    d = torch.cdist(pts, pts, compute_mode="donot_use_mm_for_euclid_dist")  # (B, N, N)
    idx = d.topk(k, dim=-1, largest=False).indices                     # (B, N, k)
    nb = pts[torch.arange(B, device=pts.device)[:, None, None], idx]     # (B, N, k, 3)
    xi = pts[:, :, None, :].expand_as(nb)
    feat = torch.stack([nb - xi, xi, torch.cross(nb, xi, dim=-1)], 1)  # (B, 3, N, k, 3)
    return feat.permute(0, 1, 4, 2, 3).contiguous()
