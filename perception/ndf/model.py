"""The NDF network: a VN-PointNet encoder, an occupancy decoder and the descriptor field.

Frames and units: clouds and queries are ``(B, N, 3)`` / ``(B, M, 3)`` in any one frame
(metres); the network centres both at the cloud's mean and divides by
:attr:`NdfModelConfig.scale_m`. The shape code ``z`` rotates with the cloud (SO(3)-
equivariant) and the decoder sees only rotation-invariant functions of the query and ``z``,
so for any rigid ``T = (R, t)``::

    descriptors(R q + t | R P + t) == descriptors(q | P)      (up to rounding)

which is what lets a grasp taught on one pose transfer to another.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from katazuke.config import config_to_dict, load_config
from katazuke.perception.ndf.config import NdfModelConfig
from katazuke.perception.ndf.vn import (EPS, VNInvariant, VNLeakyReLU, VNLinear, VNLinearLeakyReLU,
                                        VNResnetBlock, edge_features)

__all__ = ["VnPointNetEncoder", "OccupancyDecoder", "NdfNetwork", "save_ndf_weights",
           "load_ndf_weights", "WEIGHTS_FORMAT"]

#: ``format`` tag of NDF weights files.
WEIGHTS_FORMAT = "katazuke-ndf"


class VnPointNetEncoder(nn.Module):
    """VN-PointNet with an edge first layer: ``(B, N, 3)`` centred points -> ``(B, L, 3)`` code.

    The first layer pools VN features of each point's k-nearest-neighbour edges (a
    PointNet of single points would keep every feature parallel to its point); then VN
    ResNet blocks, each fed the per-point features concatenated with their mean over the
    cloud; a final mean pool and VN linear give ``L = cfg.latent`` 3-vectors, rescaled to
    unit root-mean-square length.
    """

    def __init__(self, cfg: NdfModelConfig) -> None:
        super().__init__()
        h, s = cfg.hidden, cfg.negative_slope
        self.knn = cfg.knn
        self.edge = VNLinearLeakyReLU(3, h, s, shared=True)
        self.fc_pos = VNLinear(h, 2 * h)
        self.blocks = nn.ModuleList([VNResnetBlock(2 * h, h, s)
                                     for _ in range(cfg.encoder_blocks)])
        self.act = VNLeakyReLU(h, s)
        self.fc_z = VNLinear(h, cfg.latent)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        net = self.edge(edge_features(points.transpose(1, 2), self.knn)).mean(-1)  # (B,h,3,N)
        net = self.blocks[0](self.fc_pos(net))
        for block in self.blocks[1:]:
            pooled = net.mean(-1, keepdim=True).expand_as(net)
            net = block(torch.cat([net, pooled], 1))
        z = self.fc_z(self.act(net.mean(-1)))
        # unit RMS length: an invariant rescaling (equivariance is kept) that stops the mean
        # pool of odd features of a centred cloud from handing the decoder a vanishing code
        return z / torch.sqrt((z * z).sum(-1).mean(-1)[:, None, None] + EPS)


class _ResnetFC(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc_0 = nn.Linear(width, width)
        self.fc_1 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc_1(torch.relu(self.fc_0(torch.relu(x))))


class OccupancyDecoder(nn.Module):
    """Occupancy logit of query points from rotation-invariant features.

    Inputs per query ``q`` (centred, scaled): ``|q|^2``, ``q . z_l`` for each code vector and
    the code's own invariant coordinates (:class:`VNInvariant`); a ResNet MLP maps them to
    a logit. :meth:`forward` with ``features=True`` also returns the activations of every
    layer concatenated: the NDF descriptor, ``D = decoder_hidden * (decoder_blocks + 1)``.
    """

    def __init__(self, cfg: NdfModelConfig) -> None:
        super().__init__()
        w, L = cfg.decoder_hidden, cfg.latent
        self.z_invariant = VNInvariant(L, cfg.negative_slope)
        self.fc_in = nn.Linear(1 + L + 3 * L, w)
        self.blocks = nn.ModuleList([_ResnetFC(w) for _ in range(cfg.decoder_blocks)])
        self.fc_out = nn.Linear(w, 1)

    def code_invariants(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, 3L)`` the query-independent invariant part of the input, from ``z (B, L, 3)``."""
        return self.z_invariant(z).flatten(1)

    def forward(self, q: torch.Tensor, z: torch.Tensor, features: bool = False,
                z_inv: torch.Tensor | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, M)`` (and descriptors ``(B, M, D)``) of queries ``q (B, M, 3)`` given
        codes ``z (B, L, 3)``, both centred and scaled; ``z_inv`` = :meth:`code_invariants`
        of ``z`` when already computed."""
        B, M, _ = q.shape
        if z_inv is None:
            z_inv = self.code_invariants(z)                             # (B, 3L)
        x = torch.cat([(q * q).sum(-1, keepdim=True), torch.einsum("bmi,bli->bml", q, z),
                       z_inv[:, None, :].expand(B, M, z_inv.shape[1])], -1)
        net = self.fc_in(x)
        acts = [net]
        for block in self.blocks:
            net = block(net)
            acts.append(net)
        logits = self.fc_out(torch.relu(net)).squeeze(-1)
        if features:
            return logits, torch.cat(acts, -1)
        return logits


class NdfNetwork(nn.Module):
    """Encoder + decoder; the public methods take metres in one common frame.

    Args:
        cfg: architecture.
    """

    def __init__(self, cfg: NdfModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or NdfModelConfig()
        self.encoder = VnPointNetEncoder(self.cfg)
        self.decoder = OccupancyDecoder(self.cfg)

    @property
    def descriptor_dim(self) -> int:
        """Length D of one query point's descriptor."""
        return self.cfg.decoder_hidden * (self.cfg.decoder_blocks + 1)

    def encode(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shape code of clouds.

        Args:
            points: ``(B, N, 3)`` clouds, m.

        Returns:
            ``z`` ``(B, L, 3)`` (network units, rotates with the cloud) and the centres
            ``(B, 1, 3)`` (the clouds' means, m).
        """
        centre = points.mean(1, keepdim=True)
        return self.encoder((points - centre) / self.cfg.scale_m), centre

    def _q(self, query: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        return (query - centre) / self.cfg.scale_m

    def occupancy_logits(self, query: torch.Tensor, z: torch.Tensor,
                         centre: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` occupancy logits of queries ``(B, M, 3)`` m, given :meth:`encode`'s output."""
        return self.decoder(self._q(query, centre), z)

    def descriptors(self, query: torch.Tensor, z: torch.Tensor, centre: torch.Tensor,
                    z_inv: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, M, D)`` descriptors ``f(q | P)`` of queries ``(B, M, 3)`` m (``z_inv``: the
        decoder's cached :meth:`OccupancyDecoder.code_invariants` of ``z``)."""
        return self.decoder(self._q(query, centre), z, features=True, z_inv=z_inv)[1]

    def forward(self, points: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` occupancy logits of ``query (B, M, 3)`` given clouds ``(B, N, 3)``, m."""
        z, centre = self.encode(points)
        return self.occupancy_logits(query, z, centre)


def save_ndf_weights(path: str | Path, network: NdfNetwork, **extra: Any) -> None:
    """Write ``network`` (architecture + state) and ``extra`` provenance atomically."""
    from katazuke.perception.detection.weights_io import save_payload

    save_payload(path, WEIGHTS_FORMAT, network, config_to_dict(network.cfg), **extra)


def load_ndf_weights(path: str | Path) -> tuple[NdfNetwork, dict]:
    """Load :func:`save_ndf_weights`'s file into a network in eval mode.

    Returns:
        The network and the whole payload (provenance, metrics).

    Raises:
        KatazukeError: missing, corrupt or foreign file, or one that does not fit the
            architecture it names; the message names the file and how to make a new one.
    """
    from katazuke.perception.detection.weights_io import load_network

    hint = "train new weights with `katazuke train ndf --data DIR --out DIR`"
    return load_network(path, WEIGHTS_FORMAT, "NDF weights", hint,
                        lambda p: NdfNetwork(load_config(NdfModelConfig, p["model_config"])))
