"""Sparse block matrices of a view graph and the linear-algebra backend choice.

Every matrix here is ``3n x 3n`` with ``3 x 3`` blocks, node ``i`` owning rows
``3i..3i+2``:

- ``C``: the (weighted) data matrix, ``C_(i,j) = w_e R_ij``, ``C_(j,i) = w_e R_ij^T``.
- ``L = D - C``: the connection Laplacian, ``D = diag(weighted degree) (x) I3``. It is also
  the (constant!) Gauss-Newton matrix of the chordal cost in right-perturbation
  coordinates, so it is factorised once per solve.

Backend: SLAM-like graphs (long chains, small separators) factorise with almost no fill,
so they use a sparse LU (SuperLU, minimum-degree ordering); expander-like random view
graphs fill in badly but are well conditioned, so they use Jacobi-preconditioned CG and
Lanczos. The choice uses the reverse Cuthill-McKee profile of the node graph.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla_dense
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from scipy.sparse.csgraph import reverse_cuthill_mckee

__all__ = ["block_coo", "data_matrix", "weighted_degree", "laplacian", "choose_backend",
           "LinearSolver"]

_I3 = np.arange(3)


def block_coo(I: np.ndarray, J: np.ndarray, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COO (rows, cols, values) placing ``blocks[k]`` (3x3) at block ``(I[k], J[k])``."""
    r = (3 * I)[:, None, None] + _I3[None, :, None]
    c = (3 * J)[:, None, None] + _I3[None, None, :]
    r, c = np.broadcast_arrays(r, c)
    return r.ravel(), c.ravel(), np.ascontiguousarray(blocks).ravel()


def data_matrix(n: int, edges: np.ndarray, rel: np.ndarray, w: np.ndarray) -> sp.csr_matrix:
    """Symmetric ``C`` (3n x 3n, CSR) with ``C_(i,j) = w R_ij`` and ``C_(j,i) = w R_ij^T``."""
    I, J = edges[:, 0], edges[:, 1]
    B = w[:, None, None] * rel
    r1, c1, v1 = block_coo(I, J, B)
    r2, c2, v2 = block_coo(J, I, np.swapaxes(B, 1, 2))
    return sp.csr_matrix((np.concatenate([v1, v2]), (np.concatenate([r1, r2]), np.concatenate([c1, c2]))),
                         shape=(3 * n, 3 * n))


def weighted_degree(n: int, edges: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(n,)`` sum of incident edge weights."""
    return np.bincount(edges[:, 0], w, minlength=n) + np.bincount(edges[:, 1], w, minlength=n)


def laplacian(C: sp.csr_matrix, deg: np.ndarray) -> sp.csr_matrix:
    """``L = D (x) I3 - C`` (3n x 3n, CSR)."""
    return (sp.diags(np.repeat(deg, 3)) - C).tocsr()


DENSE_MAX_NODES = 120


def choose_backend(n: int, edges: np.ndarray, max_profile_per_node: float = 250.0) -> str:
    """``"dense"`` (n <= 120), ``"direct"`` (sparse LU) or ``"iterative"`` (CG/LOBPCG).

    Direct when the graph is small (n <= 400) or its reverse Cuthill-McKee profile
    (sum over nodes of the distance to the earliest neighbour), which bounds the
    Cholesky fill, is at most ``min(max_profile_per_node, 0.1 n) * n``.
    """
    if n <= DENSE_MAX_NODES:
        return "dense"
    if n <= 400:
        return "direct"
    A = sp.coo_matrix((np.ones(edges.shape[0]), (edges[:, 0], edges[:, 1])), shape=(n, n))
    A = (A + A.T).tocsr()
    perm = reverse_cuthill_mckee(A, symmetric_mode=True)
    pos = np.empty(n, dtype=np.int64)
    pos[perm] = np.arange(n)
    Ac = A.tocoo()
    first = np.arange(n)
    np.minimum.at(first, pos[Ac.row], pos[Ac.col])
    profile = float((np.arange(n) - first).sum())
    # SLAM-like graphs: profile / n stays bounded (<= 0.04 n on the benchmark files);
    # random view graphs: profile / n ~ 0.23 n (heavy fill, but well conditioned).
    return ("direct" if profile <= max_profile_per_node * n and profile <= 0.1 * n * n
            else "iterative")


class LinearSolver:
    """Solves ``A x = b`` for one SPD (or nonsingular) sparse matrix, reused many times.

    Args:
        A: square sparse matrix.
        backend: ``"direct"`` (SuperLU, symmetric mode, minimum degree on A^T+A) or
            ``"iterative"`` (CG with the inverse diagonal as preconditioner).
        rtol: CG relative residual tolerance.
        maxiter: CG iteration cap.
    """

    def __init__(self, A: sp.spmatrix, backend: str, rtol: float = 1e-10, maxiter: int = 2000) -> None:
        self.backend = backend
        if backend == "dense":
            self.A = np.asarray(A)
            self._cho = sla_dense.cho_factor(self.A)
            self.cg_iterations = self.solves = 0
            return
        self.A = A if sp.isspmatrix_bsr(A) else A.tocsr()
        self.rtol = rtol
        self.maxiter = maxiter
        self.cg_iterations = 0
        self.solves = 0
        if backend == "direct":
            self._lu = sla.splu(A.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                options=dict(SymmetricMode=True))
        elif backend == "iterative":
            d = self.A.diagonal()
            inv = 1.0 / np.where(d > 0, d, 1.0)
            self._M = sla.LinearOperator(A.shape, matvec=lambda x: inv * x, dtype=np.float64)
        else:
            raise ValueError(f"backend must be 'dense', 'direct' or 'iterative', got {backend!r}")

    def operator(self) -> sla.LinearOperator:
        """``A^-1`` as a LinearOperator (vectors and column blocks)."""
        return sla.LinearOperator(self.A.shape, matvec=self.solve, matmat=self.solve,
                                  dtype=np.float64)

    def solve(self, b: np.ndarray, rtol: float | None = None) -> np.ndarray:
        self.solves += 1 if b.ndim == 1 else b.shape[1]
        if self.backend == "dense":
            return sla_dense.cho_solve(self._cho, b)
        if self.backend == "direct":
            return self._lu.solve(b)
        count = [0]

        def cb(_: np.ndarray) -> None:
            count[0] += 1

        if b.ndim == 2:
            return np.stack([self.solve(b[:, k], rtol) for k in range(b.shape[1])], axis=1)
        x, _ = sla.cg(self.A, b, rtol=self.rtol if rtol is None else rtol, atol=0.0,
                      maxiter=self.maxiter, M=self._M, callback=cb)
        self.cg_iterations += count[0]
        return x


class BlockPattern:
    """Fixed block sparsity (3x3 BSR) of a graph's ``3n x 3n`` matrices, built once.

    Holds the ``n`` diagonal blocks and, for each edge ``e = (i, j)``, blocks ``(i, j)`` and
    ``(j, i)``; duplicate edges are summed. :meth:`matrix` fills it in O(nnz) without
    re-sorting, which matters because the Hessian and the certificate matrix are rebuilt
    every iteration.
    """

    def __init__(self, n: int, I: np.ndarray, J: np.ndarray, dense: bool = False) -> None:
        self.dense = dense  # tiny graphs: plain ndarrays, no sparse-format overhead
        self._I, self._J = I, J
        self.n = n
        self.shape = (3 * n, 3 * n)
        if dense:
            return
        nodes = np.arange(n, dtype=np.int64)
        rows = np.concatenate([nodes, I, J])
        cols = np.concatenate([nodes, J, I])
        uniq, self._inv = np.unique(rows * n + cols, return_inverse=True)
        brow = uniq // n
        self._indices = (uniq % n).astype(np.int32)
        self._indptr = np.searchsorted(brow, np.arange(n + 1)).astype(np.int32)
        self.n = n
        self.nnzb = uniq.size
        self.shape = (3 * n, 3 * n)

    def matrix(self, diag: np.ndarray | None, off: np.ndarray) -> sp.bsr_matrix:
        """BSR matrix with ``diag`` ``(n,3,3)`` blocks (None: zero) on the diagonal, ``off[e]``
        at ``(i, j)`` and ``off[e]^T`` at ``(j, i)``."""
        n = self.n
        if self.dense:
            A = np.zeros((n, n, 3, 3))
            if diag is not None:
                A[np.arange(n), np.arange(n)] = diag
            np.add.at(A, (self._I, self._J), off)
            np.add.at(A, (self._J, self._I), np.swapaxes(off, 1, 2))
            return A.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n)
        d = np.zeros((n, 3, 3)) if diag is None else diag
        blocks = np.concatenate([d.reshape(n, 9), off.reshape(-1, 9),
                                 np.swapaxes(off, 1, 2).reshape(-1, 9)])
        data = np.empty((self.nnzb, 9))
        for k in range(9):
            data[:, k] = np.bincount(self._inv, weights=blocks[:, k], minlength=self.nnzb)
        return sp.bsr_matrix((data.reshape(-1, 3, 3), self._indices, self._indptr),
                             shape=self.shape)
