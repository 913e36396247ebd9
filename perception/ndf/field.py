"""The descriptor field ``f(q | P)`` of one observed cloud, with numpy in and out."""
from __future__ import annotations

import numpy as np
import torch

from katazuke.errors import InputError
from katazuke.perception.ndf.checks import check_cloud
from katazuke.perception.ndf.model import NdfNetwork

__all__ = ["DescriptorField", "MIN_CLOUD_POINTS"]

#: Fewest cloud points a field is built from.
MIN_CLOUD_POINTS = 8


class DescriptorField:
    """NDF descriptors and occupancy of query points given one cloud, encoded once.

    Args:
        network: a (trained) :class:`NdfNetwork`; its parameters' dtype (float32, or
            float64 after ``network.double()``) is the dtype of every computation.
        points: ``(N, 3)`` observed (partial or full) cloud of one object, m, any frame;
            queries are in the same frame.
        max_points: clouds with more points are reduced to a random subset of this size.
        generator: draws that subset; None = ``np.random.default_rng(0)`` (deterministic).

    Raises:
        InputError: ``points`` not ``(N, 3)``, non-finite, or fewer than
            :data:`MIN_CLOUD_POINTS` points.
    """

    def __init__(self, network: NdfNetwork, points: np.ndarray, max_points: int = 1024,
                 generator: np.random.Generator | None = None) -> None:
        P = check_cloud(points, "points", MIN_CLOUD_POINTS)
        if len(P) > max_points:
            rng = generator if generator is not None else np.random.default_rng(0)
            P = P[np.sort(rng.choice(len(P), max_points, replace=False))]
        self.network = network
        self.dtype = next(network.parameters()).dtype
        #: ``(n, 3)`` the points actually encoded, m.
        self.points = P
        with torch.no_grad():
            self.z, self.centre = network.encode(torch.as_tensor(P, dtype=self.dtype)[None])
            self._z_inv = network.decoder.code_invariants(self.z)

    def _check_query(self, query: np.ndarray) -> tuple[torch.Tensor, bool]:
        q = np.asarray(query, dtype=np.float64)
        single = q.ndim == 2
        if single:
            q = q[None]
        if q.ndim != 3 or q.shape[-1] != 3 or q.shape[1] == 0:
            raise InputError(f"query must be (M, 3) or (R, M, 3) points in metres with M >= 1; "
                             f"got shape {np.shape(query)}")
        if not np.all(np.isfinite(q)):
            raise InputError("query has non-finite entries; pass finite points in metres")
        return torch.as_tensor(q, dtype=self.dtype), single

    def descriptors_torch(self, query: torch.Tensor) -> torch.Tensor:
        """Differentiable descriptors: ``(R, M, 3)`` tensor, m -> ``(R, M, D)`` (no checks)."""
        R = query.shape[0]
        return self.network.descriptors(query, self.z.expand(R, -1, -1),
                                        self.centre.expand(R, -1, -1),
                                        self._z_inv.expand(R, -1))

    def descriptors(self, query: np.ndarray) -> np.ndarray:
        """``(M, D)`` or ``(R, M, D)`` float64 descriptors of ``(M, 3)`` / ``(R, M, 3)`` queries, m.

        Raises:
            InputError: wrong shape or non-finite queries.
        """
        q, single = self._check_query(query)
        with torch.no_grad():
            d = self.descriptors_torch(q).double().numpy()
        return d[0] if single else d

    def occupancy(self, query: np.ndarray) -> np.ndarray:
        """Occupancy probability ``(M,)`` / ``(R, M)`` in [0, 1] of queries, m.

        Raises:
            InputError: wrong shape or non-finite queries.
        """
        q, single = self._check_query(query)
        R = q.shape[0]
        with torch.no_grad():
            p = torch.sigmoid(self.network.occupancy_logits(
                q, self.z.expand(R, -1, -1), self.centre.expand(R, -1, -1))).double().numpy()
        return p[0] if single else p
