"""The view graph: nodes ``0..n-1`` and edges carrying relative rotations.

Convention (shared with g2o, TORO and 1DSfM after conversion): an edge ``(i, j)`` holds
``R_ij ~= R_i^T R_j``, i.e. ``R_j ~= R_i R_ij``. The chordal cost of absolute rotations
``R`` is ``sum_e w_e ||R_i R_ij - R_j||_F^2``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from katazuke.errors import InputError

from .so3 import exp_so3, random_rotations
from .validate import ROTATION_TOL, check_rotation_matrices

__all__ = ["ViewGraph", "synthetic_graph", "chordal_cost"]


@dataclass(frozen=True)
class ViewGraph:
    """A rotation-averaging problem.

    Attributes:
        num_nodes: ``n``; node ids are ``0..n-1``.
        edges: ``(m, 2)`` int64 node pairs ``(i, j)``, ``i != j``.
        rotations: ``(m, 3, 3)`` float64 relative rotations ``R_ij ~= R_i^T R_j``.
        weights: ``(m,)`` float64 positive edge weights ``w_e``.
        node_ids: ``(n,)`` int64 original ids of the nodes (file ids), for writing back.
    """

    num_nodes: int
    edges: np.ndarray
    rotations: np.ndarray
    weights: np.ndarray
    node_ids: np.ndarray

    @staticmethod
    def from_arrays(num_nodes: int, edges: np.ndarray, rotations: np.ndarray,
                    weights: np.ndarray | None = None, node_ids: np.ndarray | None = None,
                    *, rotation_tol: float = ROTATION_TOL, source: str = "input",
                    lines: Sequence[int] | None = None) -> "ViewGraph":
        """Validate arrays and build a graph.

        Rotations follow the one rule of :mod:`.validate`: a matrix within ``rotation_tol``
        of a rotation (largest ``|singular value - 1|``) is projected to SO(3) silently;
        one further off, or a reflection (``det <= 0``), is an error naming the edge.

        Args:
            lines: 1-based file line of each edge, for error messages (text formats).

        Raises:
            InputError: inconsistent sizes, NaN/inf, out-of-range node ids, self loops,
                reflections, rotations beyond ``rotation_tol`` or non-positive weights; the
                text names ``source`` and the edge.
        """
        try:
            n = int(num_nodes)
        except (TypeError, ValueError):
            raise InputError(f"{source}: num_nodes must be an integer, got {num_nodes!r}") from None
        E = np.asarray(edges)
        Rr = np.asarray(rotations, dtype=np.float64)
        if n < 1:
            raise InputError(f"{source}: num_nodes must be >= 1, got {n}")
        if E.ndim != 2 or E.shape[1] != 2:
            raise InputError(f"{source}: edges must have shape (m, 2), got {E.shape}")
        m = E.shape[0]
        if m and not np.issubdtype(E.dtype, np.integer):
            if not np.all(np.isfinite(E)) or np.any(E != np.round(E)):
                raise InputError(f"{source}: edge node ids must be integers")
        E = E.astype(np.int64)
        if Rr.shape != (m, 3, 3):
            raise InputError(f"{source}: rotations must have shape ({m}, 3, 3) for {m} edges, "
                             f"got {Rr.shape}")
        if weights is None or np.size(weights) == 0:
            w = np.ones(m)
        else:
            w = np.asarray(weights, dtype=np.float64).reshape(-1)
            if w.shape != (m,):
                raise InputError(f"{source}: weights must have one entry per edge ({m}), "
                                 f"got {w.shape[0]}")
        if m:
            if E.min() < 0 or E.max() >= n:
                bad = int(np.flatnonzero((E < 0).any(1) | (E >= n).any(1))[0])
                raise InputError(f"{source}: edge {bad} ({E[bad, 0]}, {E[bad, 1]}) names a node "
                                 f"outside 0..{n - 1}")
            loops = np.flatnonzero(E[:, 0] == E[:, 1])
            if loops.size:
                raise InputError(f"{source}: edge {loops[0]} is a self loop on node {E[loops[0], 0]}")
        bad_w = np.flatnonzero(~np.isfinite(w) | (w <= 0))
        if bad_w.size:
            raise InputError(f"{source}: weight of edge {bad_w[0]} is {w[bad_w[0]]}; "
                             "weights must be finite and > 0")
        Rr = check_rotation_matrices(Rr, source, lines, rotation_tol)
        ids = np.arange(n, dtype=np.int64) if node_ids is None else np.asarray(node_ids, np.int64)
        if ids.shape != (n,):
            raise InputError(f"{source}: node_ids must have {n} entries, got {ids.shape}")
        return ViewGraph(n, E, np.ascontiguousarray(Rr), w, ids)

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[0])

    def components(self) -> list[np.ndarray]:
        """Connected components as sorted node-index arrays, largest first."""
        n = self.num_nodes
        A = sp.coo_matrix((np.ones(self.num_edges), (self.edges[:, 0], self.edges[:, 1])),
                          shape=(n, n))
        k, lab = connected_components(A, directed=False)
        comps = [np.flatnonzero(lab == c) for c in range(k)]
        comps.sort(key=lambda c: (-c.size, c[0]))
        return comps

    def subgraph(self, nodes: np.ndarray) -> tuple["ViewGraph", np.ndarray]:
        """Graph induced by ``nodes`` (renumbered ``0..k-1``) and the kept edge indices."""
        nodes = np.asarray(nodes, dtype=np.int64)
        remap = -np.ones(self.num_nodes, dtype=np.int64)
        remap[nodes] = np.arange(nodes.size)
        keep = np.flatnonzero((remap[self.edges[:, 0]] >= 0) & (remap[self.edges[:, 1]] >= 0))
        g = ViewGraph(int(nodes.size), remap[self.edges[keep]], self.rotations[keep],
                      self.weights[keep], self.node_ids[nodes])
        return g, keep

    def select_edges(self, keep: np.ndarray) -> "ViewGraph":
        """Same nodes, only the edges ``keep`` (indices or boolean mask)."""
        return ViewGraph(self.num_nodes, self.edges[keep], self.rotations[keep],
                         self.weights[keep], self.node_ids)

    def with_unit_weights(self) -> "ViewGraph":
        return ViewGraph(self.num_nodes, self.edges, self.rotations, np.ones(self.num_edges),
                         self.node_ids)


def chordal_cost(graph: ViewGraph, R: np.ndarray, weighted: bool = True) -> float:
    """``sum_e w_e ||R_i R_ij - R_j||_F^2`` for absolute rotations ``R`` ``(n, 3, 3)``.

    Args:
        weighted: False gives the unweighted sum (the benchmark's common cost).
    """
    i, j = graph.edges[:, 0], graph.edges[:, 1]
    res = R[i] @ graph.rotations - R[j]
    per = np.einsum("eab,eab->e", res, res)
    return float(np.dot(graph.weights, per) if weighted else per.sum())


def synthetic_graph(n: int, avg_degree: float, noise_deg: float, rng: np.random.Generator,
                    outlier_fraction: float = 0.0) -> tuple[ViewGraph, np.ndarray, np.ndarray]:
    """A random connected view graph with noisy (and optionally outlier) edges.

    A random spanning tree (each node ``k > 0`` linked to a random earlier node after a
    random relabelling) guarantees connectivity; the remaining ``n * avg_degree / 2 - (n-1)``
    edges are uniform random pairs. Noise: ``R_ij = R_i^T R_j exp(eps)`` with
    ``eps ~ N(0, (noise_deg^2 / 3) I)`` (so the RMS noise angle is ``noise_deg``). Outliers
    replace that fraction of edges by uniformly random rotations.

    Returns:
        (graph, R_true ``(n, 3, 3)``, outlier mask ``(m,)`` bool).
    """
    if n < 2:
        raise InputError(f"synthetic_graph: n must be >= 2, got {n}")
    perm = rng.permutation(n)
    parent = perm[(rng.random(n - 1) * np.arange(1, n)).astype(np.int64)]
    tree = np.stack([parent, perm[1:]], axis=1)
    m_target = max(int(round(n * avg_degree / 2)), n - 1)
    if m_target > n * (n - 1) // 2:
        raise InputError(f"synthetic_graph: average degree {avg_degree} needs {m_target} edges, more "
                         f"than the {n * (n - 1) // 2} of a complete graph on {n} nodes; lower "
                         "avg_degree or raise n")
    extra = m_target - (n - 1)
    seen = set(map(tuple, np.sort(tree, axis=1).tolist()))
    pairs = []
    while len(pairs) < extra:
        cand = rng.integers(0, n, size=(2 * (extra - len(pairs)) + 16, 2))
        for a, b in cand.tolist():
            if a == b:
                continue
            key = (a, b) if a < b else (b, a)
            if key in seen:
                continue
            seen.add(key)
            pairs.append((a, b))
            if len(pairs) == extra:
                break
    E = np.concatenate([tree, np.asarray(pairs, dtype=np.int64).reshape(-1, 2)], axis=0)
    E = E[rng.permutation(E.shape[0])]
    R = random_rotations(n, rng)
    R[0] = np.eye(3)
    Rij = np.swapaxes(R[E[:, 0]], 1, 2) @ R[E[:, 1]]
    sigma = np.deg2rad(noise_deg) / np.sqrt(3.0)
    Rij = Rij @ exp_so3(sigma * rng.standard_normal((E.shape[0], 3)))
    out = np.zeros(E.shape[0], dtype=bool)
    k = int(round(outlier_fraction * E.shape[0]))
    if k:
        idx = rng.choice(E.shape[0], size=k, replace=False)
        out[idx] = True
        Rij[idx] = random_rotations(k, rng)
    return ViewGraph.from_arrays(n, E, Rij), R, out
