"""Certified chordal rotation averaging.

Problem (``n`` nodes, edges ``e = (i, j)`` with ``R_ij ~= R_i^T R_j`` and weights ``w_e``)::

    min_{R in SO(3)^n}  f(R) = sum_e w_e ||R_i R_ij - R_j||_F^2 = 6 W - tr(C Y),   Y = X^T X,

with ``X = [R_1 ... R_n]`` (3 x 3n), ``W = sum_e w_e`` and ``C`` the symmetric block data
matrix (:func:`~katazuke.perception.rotavg.linalg.data_matrix`). The Lagrangian dual
(Eriksson et al., CVPR 2018) is ``max 6W - tr(Lambda)`` s.t. ``Lambda - C >= 0`` with
``Lambda`` block diagonal; it is tight for moderate noise, so a candidate ``R`` is a
*certified* global minimiser when

* ``Lambda_i = sym(G_i^T R_i)`` with ``G_i = sum_j R_j C_(j,i)`` (block ``i`` of ``X C``),
  the multipliers from the first-order conditions ``(Lambda - C) X^T = 0``, and
* ``lambda_min(Lambda - C) >= -tol``.

For any ``lambda_min``, ``6W - tr(Lambda) + 3n min(lambda_min, 0)`` is a valid lower
bound on the optimum (``Lambda - lambda_min I`` is dual feasible), so the reported
duality gap is ``3n max(-lambda_min, 0)``.

Pipeline (per connected component):

1. Degree-normalised spectral initialisation: the three smallest generalised
   eigenvectors of ``L v = mu D v`` (``L = D - C``), blocks projected to SO(3).
2. Gauss-Newton on SO(3)^n in right-perturbation coordinates. Its normal matrix is the
   connection Laplacian ``L`` (independent of the iterate), so it is factorised once
   (sparse LU) or solved by Jacobi-preconditioned CG on expander-like graphs. The anchor
   node is fixed (gauge), the result is rotated so ``R_anchor = I``.
3. Certificate (sparse, shift-invert Lanczos or deflated Lanczos).
4. If not certified: Riemannian staircase by rotation coordinate descent (Parra et al.,
   CVPR 2021) on the rank-p factor ``Y_i in St(p, 3)``: each node update is the polar
   factor of its gradient block, vectorised over the independent sets of a greedy graph
   colouring; escape the saddle along the negative eigenvector, raise p until the
   rank-p certificate holds, round to SO(3), polish with step 2 and certify again.

Robust mode: graduated non-convexity with the truncated-least-squares kernel (Yang et
al., RA-L 2020) from the least-squares solution; edges whose final residual angle
exceeds ``robust_threshold_deg`` are rejected and the inlier problem is re-solved and
certified.
"""
from __future__ import annotations

import threading
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.linalg as sla_dense
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from katazuke.config import dataclass as kdataclass
from katazuke.config import in_range, positive
from katazuke.errors import ConfigError, InputError

from .fast import FAST_MAX_NODES, Workspace, dense_spectral, is_connected, solve_dense
from .graph import ViewGraph
from .linalg import BlockPattern, LinearSolver, choose_backend, weighted_degree
from .so3 import exp_so3, project_to_so3

_SPECTRAL_SHIFT = 1e-3  # relative shift of L + eps D (spectral init, Newton preconditioner)

__all__ = ["RotAvgConfig", "Certificate", "RotAvgResult", "RotationAveraging", "spectral_init",
           "certify", "solve_rotation_averaging"]


@kdataclass(frozen=True)
class RotAvgConfig:
    """Settings of :class:`RotationAveraging`."""

    anchor: int = field(default=0, metadata={"help": "node fixed to the identity (gauge); in other "
                                                     "components their smallest node is used"})
    weighted: bool = field(default=True, metadata={"help": "use the edge weights (False: all ones)"})
    max_iterations: int = in_range(100, "Gauss-Newton iteration cap", 1, math.inf)
    step_tol: float = field(default=1e-10, metadata={"help": "stop when the largest update angle "
                                                             "[rad] falls below this"})
    cost_rtol: float = field(default=1e-15, metadata={"help": "stop when the relative cost decrease "
                                                              "falls below this"})
    certificate_tol: float = positive(
        1e-6, "certified iff lambda_min(Lambda - C) >= -certificate_tol * mean weighted degree")
    eig_tol: float = positive(
        0.1, "eigen-solver residual tolerance, as a fraction of the certificate tolerance")
    backend: Literal["auto", "dense", "direct", "iterative"] = field(default="auto", metadata={
        "help": "dense (n <= 120), sparse LU, CG/LOBPCG, or auto (connected graphs with n <= 150: "
                "the lean dense path of perception/rotavg/fast.py; otherwise by size and "
                "bandwidth profile)"})
    staircase_max_rank: int = in_range(
        7, "highest factor rank of the staircase (3 = no staircase)", 3, math.inf)
    staircase_max_sweeps: int = field(default=500, metadata={"help": "coordinate-descent sweeps "
                                                                       "per staircase rank"})
    robust: bool = field(default=False, metadata={"help": "reject outlier edges (GNC-TLS)"})
    robust_threshold_deg: float = field(default=15.0, metadata={
        "help": "edges whose residual angle exceeds this [deg] are outliers"})
    gnc_factor: float = field(default=1.4, metadata={"help": "GNC control-parameter growth per step"})
    gnc_max_steps: int = field(default=60, metadata={"help": "GNC step cap"})
    gnc_inner_iterations: int = field(default=3, metadata={"help": "Gauss-Newton steps per GNC step"})

    def __post_init__(self) -> None:
        if not 0.0 < self.robust_threshold_deg < 180.0:
            raise ConfigError("RotAvgConfig.robust_threshold_deg must be in (0, 180)")
        if self.gnc_factor <= 1.0:
            raise ConfigError("RotAvgConfig.gnc_factor must be > 1")


@dataclass(frozen=True)
class Certificate:
    """Optimality certificate of a solution (sums over components).

    Attributes:
        min_eigenvalue: ``lambda_min(Lambda - C)`` (worst component).
        primal_cost: weighted chordal cost of the solution.
        dual_bound: lower bound on the optimal cost, ``6W - tr(Lambda) + 3n min(lambda_min, 0)``.
        duality_gap: ``primal_cost - dual_bound`` (absolute).
        relative_gap: ``duality_gap / max(primal_cost, 1e-300)``.
        certified: ``min_eigenvalue >= -tolerance`` in every component.
        tolerance: the absolute eigenvalue tolerance used.
        multipliers: ``(n, 3, 3)`` the blocks ``Lambda_i``.
        rank: factor rank at which the dual bound was obtained (3, or higher after the
            staircase).
    """

    min_eigenvalue: float
    primal_cost: float
    dual_bound: float
    duality_gap: float
    relative_gap: float
    certified: bool
    tolerance: float
    multipliers: np.ndarray
    rank: int = 3


@dataclass(frozen=True)
class RotAvgResult:
    """Solution of a rotation-averaging problem.

    Attributes:
        rotations: ``(n, 3, 3)`` absolute rotations ``R_i`` (``R_anchor = I`` per component).
        cost: weighted chordal cost (over the kept edges in robust mode).
        certificate: see :class:`Certificate` (of the inlier problem in robust mode).
        components: node-index arrays of the connected components, largest first.
        rejected_edges: ``(k,)`` indices of edges rejected as outliers (robust mode).
        init_cost: cost of the spectral initialisation.
        iterations: Gauss-Newton iterations (all components).
        time_s: wall time of the solve [s].
        backend: linear-algebra backend used for the largest component.
        notes: human-readable remarks (components, staircase, ...).
    """

    rotations: np.ndarray
    cost: float
    certificate: Certificate
    components: list[np.ndarray]
    rejected_edges: np.ndarray
    init_cost: float
    iterations: int
    time_s: float
    backend: str
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- helpers
def _weights(g: ViewGraph, cfg: RotAvgConfig) -> np.ndarray:
    return g.weights if cfg.weighted else np.ones(g.num_edges)


def _vee_skew(A: np.ndarray) -> np.ndarray:
    """``(m, 3)`` with ``tr(A [v]_x) = v . out`` for ``(m, 3, 3)`` matrices ``A``."""
    return np.stack([A[:, 1, 2] - A[:, 2, 1], A[:, 2, 0] - A[:, 0, 2], A[:, 0, 1] - A[:, 1, 0]], axis=1)


def _round_blocks(V: np.ndarray) -> np.ndarray:
    """``(3n, 3)`` stacked blocks (block i ~ R_i^T) -> rotations ``(n, 3, 3)``.

    The column space is only defined up to O(3); flip one column if most blocks are
    reflections, then project each block to SO(3).
    """
    B = V.reshape(-1, 3, 3)
    if np.sum(np.linalg.det(B) < 0) > B.shape[0] / 2:
        B = B.copy()
        B[:, :, 2] *= -1.0
    return project_to_so3(np.swapaxes(B, 1, 2))


def _gauge(R: np.ndarray, anchor: int) -> np.ndarray:
    return np.swapaxes(R[anchor], 0, 1)[None] @ R


def _colouring(n: int, edges: np.ndarray) -> list[np.ndarray]:
    """Greedy (largest-degree-first) colouring: lists of mutually non-adjacent nodes."""
    A = sp.coo_matrix((np.ones(edges.shape[0]), (edges[:, 0], edges[:, 1])), shape=(n, n))
    A = (A + A.T).tocsr()
    order = np.argsort(-np.diff(A.indptr), kind="stable")
    colour = -np.ones(n, dtype=np.int64)
    indptr, indices = A.indptr, A.indices
    for v in order.tolist():
        used = set(colour[indices[indptr[v]:indptr[v + 1]]].tolist())
        c = 0
        while c in used:
            c += 1
        colour[v] = c
    return [np.flatnonzero(colour == c) for c in range(int(colour.max()) + 1)]


class _Problem:
    """Matrices and solvers of one connected component, built once per solve."""

    def __init__(self, g: ViewGraph, w: np.ndarray, cfg: RotAvgConfig, anchor: int) -> None:
        self.g, self.cfg, self.anchor = g, cfg, anchor
        n = g.num_nodes
        self.n = n
        self.I, self.J = g.edges[:, 0], g.edges[:, 1]
        self.rel = g.rotations
        self.backend = choose_backend(n, g.edges) if cfg.backend == "auto" else cfg.backend
        self.pattern = BlockPattern(n, self.I, self.J, dense=self.backend == "dense")
        self.set_weights(w)

    def set_weights(self, w: np.ndarray) -> None:
        """Change the edge weights ``(m,)`` (GNC), keeping the sparsity pattern."""
        self.w = w
        self.wrel = w[:, None, None] * self.rel
        self.C = self.pattern.matrix(None, self.wrel)
        self.deg = weighted_degree(self.n, self.g.edges, w)
        self.W = float(w.sum())
        self._gn_solver: LinearSolver | None = None
        self.tol = self.cfg.certificate_tol * float(self.deg.mean())

    # ----------------------------------------------------------------- cost / gradient
    def edge_terms(self, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-edge ``D = R_ij - R_i^T R_j`` ``(m,3,3)`` and squared residual ``(m,)``."""
        Q = np.swapaxes(R[self.I], 1, 2) @ R[self.J]
        D = self.rel - Q
        return D, np.einsum("eab,eab->e", D, D)

    def cost(self, R: np.ndarray) -> float:
        return float(self.w @ self.edge_terms(R)[1])

    def gradient(self, D: np.ndarray) -> np.ndarray:
        """Half the Riemannian gradient ``(n, 3)`` in right-perturbation coordinates.

        Along ``delta`` the cost is ``sum_e w (||D||^2 + 2 a_e.v_e + 2|v_e|^2) + O(3)`` with
        ``v_e = delta_i - R_ij delta_j`` and ``a_e = vee(R_ij D^T)``; this returns
        ``sum_e w B_e^T a_e``, ``B_e = [I, -R_ij]``.
        """
        a = _vee_skew(self.rel @ np.swapaxes(D, 1, 2)) * self.w[:, None]
        b = np.einsum("eba,eb->ea", self.rel, a)
        return np.stack([np.bincount(self.I, a[:, k], minlength=self.n)
                         - np.bincount(self.J, b[:, k], minlength=self.n) for k in range(3)], axis=1)

    def hessian(self, R: np.ndarray) -> sp.bsr_matrix:
        """Half the Riemannian Hessian (3n x 3n) of the cost at ``R`` (same coordinates).

        Per edge, with ``Q = R_i^T R_j``, ``M = R_ij Q^T``, ``M' = Q^T R_ij``, the second-order
        term of the cost is ``a^T (tr S - S) a + b^T (tr S' - S') b + 2 a^T (M - tr M) R_ij b``
        (``S = sym M``, ``a = delta_i``, ``b = delta_j``); at zero residual it equals
        ``2 |a - R_ij b|^2``, the Gauss-Newton term.
        """
        Q = np.swapaxes(R[self.I], 1, 2) @ R[self.J]
        M = self.rel @ np.swapaxes(Q, 1, 2)
        Mp = np.swapaxes(Q, 1, 2) @ self.rel
        eye = np.eye(3)[None]
        w = self.w[:, None, None]

        def trsym(A: np.ndarray) -> np.ndarray:
            S = 0.5 * (A + np.swapaxes(A, 1, 2))
            return np.einsum("eii->e", S)[:, None, None] * eye - S

        Hd = np.zeros((self.n, 9))
        Hii, Hjj = (w * trsym(M)).reshape(-1, 9), (w * trsym(Mp)).reshape(-1, 9)
        for k in range(9):
            Hd[:, k] = (np.bincount(self.I, Hii[:, k], minlength=self.n)
                        + np.bincount(self.J, Hjj[:, k], minlength=self.n))
        Hij = w * ((M - np.einsum("eii->e", M)[:, None, None] * eye) @ self.rel)
        return self.pattern.matrix(Hd.reshape(-1, 3, 3), Hij)

    @property
    def factor(self) -> LinearSolver:
        """Solver for ``F = L + eps D`` (eps = :data:`_SPECTRAL_SHIFT`), built once: the
        spectral shift-invert operator and the Newton preconditioner (``F ~ L``, the
        Gauss-Newton matrix, regularised along the gauge)."""
        if self._gn_solver is None:
            F = self.pattern.matrix(((1.0 + _SPECTRAL_SHIFT) * self.deg)[:, None, None] * np.eye(3),
                                    -self.wrel)
            self._gn_solver = LinearSolver(F, self.backend, rtol=1e-12)
        return self._gn_solver

    def spectral(self, tol: float = 1e-3) -> np.ndarray:
        """Degree-normalised spectral initialisation (see :func:`spectral_init`); ``tol``
        is the eigen-solver's relative tolerance (loose: it only starts Newton)."""
        n, N = self.n, 3 * self.n
        d3 = np.repeat(self.deg, 3)
        if N <= 300:
            dh = 1.0 / np.sqrt(d3)
            _, vecs = sla_dense.eigh((dh[:, None] * _todense(self.C)) * dh[None, :],
                                     subset_by_index=[N - 3, N - 1])
            return _round_blocks(dh[:, None] * vecs)
        # Top-3 of D^-1/2 C D^-1/2 <=> smallest of L v = mu D v. LOBPCG preconditioned by
        # F^-1 = (L + eps D)^-1 (direct backend: nearly inverse iteration, a handful of
        # iterations) or by the block-Jacobi inverse (expander-like graphs).
        L = self.pattern.matrix(self.deg[:, None, None] * np.eye(3), -self.wrel)
        if self.backend == "direct":
            # Shift-invert Lanczos about -eps with the shared factor of L + eps D.
            _, V = sla.eigsh(L, k=3, M=sp.diags(d3).tocsr(), sigma=-_SPECTRAL_SHIFT, which="LM",
                             OPinv=self.factor.operator(), tol=0.1 * tol, v0=np.ones(N))
            return _round_blocks(V)
        X0 = np.random.default_rng(0).standard_normal((N, 3))
        pre = _block_jacobi(self.deg[:, None, None] * np.eye(3), 1e-3 * float(self.deg.mean()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a rough start is all we need
            _, V = sla.lobpcg(L, X0, B=sp.diags(d3).tocsr(), M=pre,
                              tol=tol * float(self.deg.mean()),
                              maxiter=60 if tol >= 1e-3 else 1000, largest=False)
        return _round_blocks(V)

    def newton_step(self, R: np.ndarray, D: np.ndarray) -> np.ndarray:
        """Truncated Newton update ``(n, 3)``: PCG on the exact Hessian, preconditioned by the
        Gauss-Newton matrix ``2 L``. Stops at negative curvature (falling
        back to the preconditioned gradient, i.e. the Gauss-Newton step, on the first)."""
        n = self.n
        g = self.gradient(D).reshape(-1)
        gnorm = float(np.linalg.norm(g))
        if gnorm == 0.0:
            return np.zeros((n, 3))
        # Full space: H is singular along the gauge, g is orthogonal to it (the cost is
        # invariant), so PCG with the SPD preconditioner F^-1 stays consistent.
        H = self.hessian(R)
        if self.backend == "dense":
            # Tiny graphs: exact Newton step with the anchor fixed (Cholesky), or the
            # Gauss-Newton step where the Hessian is not positive definite.
            keep = np.ones(3 * n, dtype=bool)
            keep[3 * self.anchor:3 * self.anchor + 3] = False
            x = np.zeros(3 * n)
            try:
                cho = sla_dense.cho_factor(H[np.ix_(keep, keep)])
                x[keep] = sla_dense.cho_solve(cho, -g[keep])
            except np.linalg.LinAlgError:
                x = -0.5 * self.factor.solve(g)
            return x.reshape(n, 3)
        prec_rtol = 1e-3
        # Gauge directions (left rotation of every R_i): delta_i = R_i^T w; block i of Gq is
        # R_i^T / sqrt(n), orthonormal columns. The preconditioner output is projected off
        # them, otherwise F^-1 (regularised by eps D only) amplifies them and PCG stalls.
        Gq = np.swapaxes(R, 1, 2).reshape(3 * n, 3) / np.sqrt(n)

        def solve(v: np.ndarray, rtol: float) -> np.ndarray:
            z = self.factor.solve(v, rtol)
            return z - Gq @ (Gq.T @ z)

        x = np.zeros_like(g)
        r = -(g - Gq @ (Gq.T @ g))
        z = 0.5 * solve(r, prec_rtol)
        p = z.copy()
        rz = float(r @ z)
        tol = min(0.1, np.sqrt(gnorm)) * gnorm
        for k in range(200):
            Hp = H @ p
            curv = float(p @ Hp)
            if curv <= 0:
                if k == 0:
                    x = p
                break
            alpha = rz / curv
            x = x + alpha * p
            r = r - alpha * Hp
            if float(np.linalg.norm(r)) <= tol:
                break
            z = 0.5 * solve(r, prec_rtol)
            rz_new = float(r @ z)
            p = z + (rz_new / rz) * p
            rz = rz_new
        return x.reshape(n, 3)

    def refine(self, R: np.ndarray) -> tuple[np.ndarray, int]:
        """Truncated Newton with backtracking from ``R`` until the step or decrease is tiny."""
        D, r = self.edge_terms(R)
        f = float(self.w @ r)
        it = 0
        for it in range(1, self.cfg.max_iterations + 1):
            delta = self.newton_step(R, D)
            step = 1.0
            while True:
                Rn = R @ exp_so3(step * delta)
                Dn, rn = self.edge_terms(Rn)
                fn = float(self.w @ rn)
                if fn <= f or step < 1e-4:
                    break
                step *= 0.25
            if fn > f:
                break
            decrease = f - fn
            R, D, f = Rn, Dn, fn
            if (step * np.abs(delta).max() < self.cfg.step_tol
                    or decrease <= self.cfg.cost_rtol * max(f, 1e-300)):
                break
        return _gauge(project_to_so3(R), self.anchor), it

    # ----------------------------------------------------------------- certificate
    def multipliers(self, Y: np.ndarray) -> np.ndarray:
        """``Lambda_i = sym(G_i^T Y_i)`` for factor blocks ``Y`` ``(n, p, 3)``."""
        n, p = Y.shape[0], Y.shape[1]
        X = np.swapaxes(Y, 0, 1).reshape(p, 3 * n)  # p x 3n, block i = Y_i
        G = np.asarray((self.C.T @ X.T).T).reshape(p, n, 3).transpose(1, 0, 2)
        Lam = np.swapaxes(G, 1, 2) @ Y
        return 0.5 * (Lam + np.swapaxes(Lam, 1, 2))

    def certify(self, Y: np.ndarray, cost: float) -> tuple[Certificate, np.ndarray]:
        """Certificate for factor ``Y`` ``(n, p, 3)`` (``p = 3``: the rotations ``R_i``)."""
        n = self.n
        Lam = self.multipliers(Y)
        S = self.pattern.matrix(Lam, -self.wrel)
        lam_min, vec = None, None
        if self.backend == "direct" and 3 * n > 300:
            # Sylvester's law of inertia: S + tol I = P^T L D L^T P with D > 0 proves
            # lambda_min(S) > -tol with one sparse factorisation and no iterations.
            neg = _negative_pivots(S, self.tol)
            if neg == 0:
                lam_min, vec = _null_ritz(S, Y)
        if lam_min is None:
            pre = self.factor.operator() if self.backend == "direct" else None
            lam_min, vec = _min_eigen(S, Lam, Y, pre, self.cfg.eig_tol * self.tol, self.deg,
                                      self.tol)
        trace_lam = float(np.einsum("nii->", Lam))
        dual = 6.0 * self.W - trace_lam + 3.0 * n * min(lam_min, 0.0)
        gap = cost - dual
        cert = Certificate(min_eigenvalue=lam_min, primal_cost=cost, dual_bound=dual,
                           duality_gap=gap, relative_gap=gap / max(cost, 1e-300),
                           certified=bool(lam_min >= -self.tol), tolerance=self.tol,
                           multipliers=Lam, rank=Y.shape[1])
        return cert, vec

    # ----------------------------------------------------------------- staircase
    def staircase(self, R: np.ndarray, vec: np.ndarray, rng: np.random.Generator
                  ) -> tuple[np.ndarray | None, Certificate | None, str]:
        """Rank-p coordinate descent from the rank-3 saddle ``R``, escaping along ``vec``."""
        n = self.n
        colours = _colouring(n, self.g.edges)
        Ct = self.C if isinstance(self.C, np.ndarray) else self.C.tocsc()
        cols = [np.repeat(3 * c, 3) + np.tile(np.arange(3), c.size) for c in colours]
        Cs = [Ct[:, cl] for cl in cols]
        Y = R.copy()  # rank-3 factor: Y_i = R_i, so Y_i^T Y_j = R_i^T R_j
        cert = None
        for p in range(4, self.cfg.staircase_max_rank + 1):
            Yp = np.zeros((n, p, 3))
            Yp[:, :Y.shape[1], :] = Y
            Yp[:, p - 1, :] = 1e-2 * vec.reshape(n, 3) * np.sqrt(n) + 1e-6 * rng.standard_normal((n, 3))
            U, _, Vt = np.linalg.svd(Yp, full_matrices=False)
            Yp = U @ Vt
            obj_prev = -np.inf
            for _ in range(self.cfg.staircase_max_sweeps):
                for cls, Ck in zip(colours, Cs):
                    X = np.swapaxes(Yp, 0, 1).reshape(p, 3 * n)
                    G = np.asarray(X @ Ck).reshape(p, cls.size, 3).transpose(1, 0, 2)
                    U, _, Vt = np.linalg.svd(G, full_matrices=False)
                    Yp[cls] = U @ Vt
                X = np.swapaxes(Yp, 0, 1).reshape(p, 3 * n)
                obj = float(np.sum(X * np.asarray((self.C @ X.T).T)))
                if obj - obj_prev <= 1e-13 * abs(obj):
                    break
                obj_prev = obj
            cost_p = 6.0 * self.W - obj
            cert, vec = self.certify(Yp, cost_p)
            Y = Yp
            if cert.certified:
                Xr = np.swapaxes(Yp, 0, 1).reshape(p, 3 * n)
                U, s, Vt = np.linalg.svd(Xr, full_matrices=False)
                R3 = _round_blocks((s[:3, None] * Vt[:3]).T)
                return R3, cert, f"staircase certified at rank {p}"
        return None, cert, f"staircase reached rank {self.cfg.staircase_max_rank} without a certificate"


def _todense(A: np.ndarray | sp.spmatrix) -> np.ndarray:
    return A if isinstance(A, np.ndarray) else A.toarray()


def _negative_pivots(S: sp.csr_matrix, tol: float) -> int | None:
    """Number of eigenvalues of ``S`` below ``-tol`` from an LDL^T-type factorisation of
    ``S + tol I`` (SuperLU, diagonal pivots only, symmetric permutation), or None when
    the factorisation pivoted off the diagonal or broke down (inconclusive)."""
    A = (S + tol * sp.identity(S.shape[0], format="csr")).tocsc()
    try:
        lu = sla.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                      options=dict(SymmetricMode=True))
    except RuntimeError:
        return None
    if not np.array_equal(lu.perm_r, lu.perm_c):
        return None
    return int(np.sum(lu.U.diagonal() <= 0))


def _null_ritz(S: sp.csr_matrix, Y: np.ndarray) -> tuple[float, np.ndarray]:
    """Smallest Ritz pair of ``S`` on ``span(X^T)`` (the first-order null space)."""
    p = Y.shape[1]
    X = np.swapaxes(Y, 0, 1).reshape(p, S.shape[0])
    Qx, _ = np.linalg.qr(X.T)
    SQ = Qx.T @ (S @ Qx)
    ev, evec = np.linalg.eigh(0.5 * (SQ + SQ.T))
    return float(ev[0]), Qx @ evec[:, 0]


def _min_eigen(S: sp.spmatrix, Lam: np.ndarray, Y: np.ndarray, pre: sla.LinearOperator | None,
               tol: float, deg: np.ndarray, decide: float) -> tuple[float, np.ndarray]:
    """Smallest eigenvalue of symmetric ``S = Lambda - C`` and its eigenvector ``(3n,)``.

    The first-order conditions make the columns of ``X^T`` (``X = [Y_1 ... Y_n]``)
    near-null vectors of ``S``: their Rayleigh-Ritz values are computed directly, and the
    rest of the spectrum by LOBPCG constrained to the orthogonal complement, with
    preconditioner ``pre`` (the factor of ``L + eps D``, which is close to ``S`` when the
    residuals are small) or the block-Jacobi inverse of ``Lambda`` (see _lobpcg_min for
    the stopping rule; ``decide`` is the certificate tolerance).
    """
    N = S.shape[0]
    p = Y.shape[1]
    X = np.swapaxes(Y, 0, 1).reshape(p, N)
    Qx, _ = np.linalg.qr(X.T)
    if N <= 300:
        vals, vecs = sla_dense.eigh(_todense(S), subset_by_index=[0, 0])
        return float(vals[0]), vecs[:, 0]
    lam_comp, v_comp = _lobpcg_min(S, Lam, Qx, tol, pre, decide, float(deg.mean()))
    SQ = Qx.T @ (S @ Qx)
    ev, evec = np.linalg.eigh(0.5 * (SQ + SQ.T))
    if ev[0] < lam_comp:
        return float(ev[0]), Qx @ evec[:, 0]
    return lam_comp, v_comp


def _block_jacobi(Dg: np.ndarray, floor: float) -> sla.LinearOperator:
    """Preconditioner: inverse of the 3x3 diagonal blocks ``Dg`` ``(n, 3, 3)`` of a matrix
    (eigenvalues floored at ``floor``)."""
    n = Dg.shape[0]
    ev, U = np.linalg.eigh(0.5 * (Dg + np.swapaxes(Dg, 1, 2)))
    inv = (U / np.maximum(ev, floor)[:, None, :]) @ np.swapaxes(U, 1, 2)

    def apply(x: np.ndarray) -> np.ndarray:
        X = x.reshape(n, 3, -1)
        return (inv @ X).reshape(x.shape)

    return sla.LinearOperator((3 * n, 3 * n), matvec=apply, matmat=apply, dtype=np.float64)


def _lobpcg_min(S: sp.spmatrix, Lam: np.ndarray, Qx: np.ndarray, tol: float,
                pre: sla.LinearOperator | None, decide: float, scale: float
                ) -> tuple[float, np.ndarray]:
    """Smallest eigenpair of ``S`` on the orthogonal complement of ``Qx`` (see _min_eigen).

    LOBPCG (block of 3: the spectrum comes in near-triples) from a seeded random start,
    with a residual tolerance tightened in rounds (warm-started) only until the sign
    question is decided: an eigenvalue lies within ``||r||`` of the Ritz value ``theta``,
    so ``theta - ||r|| >= -decide`` (or ``theta + ||r|| < -decide``) settles it. The
    last round uses ``tol``; if LOBPCG stalls, Lanczos on ``sigma I - S`` takes over.
    """
    N = S.shape[0]
    X = np.random.default_rng(12345).standard_normal((N, 3))
    if pre is None:
        pre = _block_jacobi(Lam, floor=1e-3 * float(np.abs(S.diagonal()).mean()))
    t = max(1e-2 * scale, tol)
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # non-convergence is checked below
            vals, X = sla.lobpcg(S, X, M=pre, Y=Qx, tol=t, maxiter=150, largest=False)
        k = int(np.argmin(vals))
        theta, v = float(vals[k]), X[:, k]
        res = float(np.linalg.norm(S @ v - theta * v))
        if theta - res >= -decide or theta + res < -decide or res <= tol:
            return theta, v
        if t <= tol:
            break
        t = max(t * 1e-2, tol)
    # LOBPCG stalled: Lanczos on sigma I - S deflated by Qx (sigma: Gershgorin bound).
    sigma = float(np.abs(S).sum(axis=1).max())
    M = sla.LinearOperator((N, N), dtype=np.float64,
                           matvec=lambda x: sigma * x - S @ x - sigma * (Qx @ (Qx.T @ x)))
    theta_l, V = sla.eigsh(M, k=1, which="LA", tol=1e-10, v0=v, maxiter=50 * N)
    return sigma - float(theta_l[0]), V[:, 0]


def spectral_init(graph: ViewGraph, weighted: bool = True, backend: str = "auto",
                  tol: float = 1e-6) -> np.ndarray:
    """Degree-normalised spectral initialisation.

    The three smallest generalised eigenvectors of ``L v = mu D v`` (equivalently the top
    eigenvectors of ``D^-1/2 C D^-1/2``); block ``i`` (3x3) of the ``3n x 3`` eigenvector
    matrix estimates ``R_i^T`` up to a global O(3) factor; blocks are projected to SO(3).
    The unnormalised variant (eigenvectors of ``C``) fails on irregular graphs.

    Args:
        graph: the problem.
        weighted: use the edge weights.
        backend: as :attr:`RotAvgConfig.backend`.
        tol: relative eigen-solver tolerance (the solver itself uses a loose 1e-3: it
            only starts Newton; this default gives an accurate spectral solution).

    Returns:
        ``(n, 3, 3)`` rotations (gauge arbitrary). Nodes of a disconnected graph are
        only consistent within their component.
    """
    n = graph.num_nodes
    if n == 1:
        return np.eye(3)[None].copy()
    w = graph.weights if weighted else np.ones(graph.num_edges)
    deg = weighted_degree(n, graph.edges, w)
    if np.any(deg == 0):
        raise InputError(f"spectral_init: node {int(np.flatnonzero(deg == 0)[0])} has no edges")
    if backend == "auto" and n <= FAST_MAX_NODES and is_connected(n, graph.edges[:, 0],
                                                                   graph.edges[:, 1]):
        return dense_spectral(n, graph.edges[:, 0], graph.edges[:, 1], graph.rotations, w, tol)
    cfg = RotAvgConfig(weighted=weighted, backend=backend)  # type: ignore[arg-type]
    return _Problem(graph, w, cfg, 0).spectral(tol)


# --------------------------------------------------------------------------- top level
class RotationAveraging:
    """Certified chordal rotation averaging of a :class:`ViewGraph`.

    Example:
        >>> res = RotationAveraging(RotAvgConfig()).solve(graph)
        >>> res.certificate.certified, res.cost
    """

    def __init__(self, config: RotAvgConfig | None = None) -> None:
        self.config = config or RotAvgConfig()
        self._workspace = Workspace()  # dense buffers of the small-graph path, reused
        self._busy = threading.Lock()

    def solve(self, graph: ViewGraph, initial: np.ndarray | None = None,
              rng: np.random.Generator | None = None) -> RotAvgResult:
        """Solve; disconnected graphs are solved per connected component.

        Args:
            graph: the problem.
            initial: optional ``(n, 3, 3)`` starting rotations (default: spectral).
            rng: randomness of the staircase escape (default seed 0).

        Raises:
            InputError: bad ``anchor`` or ``initial``.
        """
        cfg = self.config
        t0 = time.perf_counter()
        # The staircase's generator is created only if it runs (seeding costs ~40 us,
        # a tenth of a small solve).
        n = graph.num_nodes
        if not 0 <= cfg.anchor < n:
            raise InputError(f"anchor {cfg.anchor} is not a node (0..{n - 1})")
        if initial is not None:
            initial = np.asarray(initial, dtype=np.float64)
            if initial.shape != (n, 3, 3) or not np.all(np.isfinite(initial)):
                raise InputError(f"initial must be a finite ({n}, 3, 3) array, got {initial.shape}")
            initial = project_to_so3(initial)
        if cfg.robust:
            return self._solve_robust(graph, initial, rng, t0)
        return self._solve_all(graph, initial, rng, t0, np.zeros(0, dtype=np.int64), ())

    # ------------------------------------------------------------------ internals
    def _solve_all(self, graph: ViewGraph, initial: np.ndarray | None,
                   rng: np.random.Generator | None,
                   t0: float, rejected: np.ndarray, notes: tuple[str, ...]) -> RotAvgResult:
        cfg = self.config
        n = graph.num_nodes
        if cfg.backend == "auto" and 2 <= n <= FAST_MAX_NODES:
            fast = self._solve_fast(graph, initial, t0, rejected, notes)
            if fast is not None:
                return fast
        comps = graph.components()
        R = np.tile(np.eye(3), (n, 1, 1))
        Lam = np.zeros((n, 3, 3))
        init_cost = cost = dual = 0.0
        lam_min, certified, tol, rank, iters = np.inf, True, 0.0, 3, 0
        backend = "direct"
        notes = list(notes)
        if len(comps) > 1:
            sizes = ", ".join(str(c.size) for c in comps[:10]) + (" ..." if len(comps) > 10 else "")
            notes.append(f"graph has {len(comps)} connected components (sizes {sizes}); each is "
                         "solved separately with its own gauge")
        for k, nodes in enumerate(comps):
            if nodes.size == 1:
                continue
            sub, _ = graph.subgraph(nodes)
            anchor = int(np.searchsorted(nodes, cfg.anchor)) if cfg.anchor in nodes else 0
            w = _weights(sub, cfg)
            prob = _Problem(sub, w, cfg, anchor)
            if k == 0:
                backend = prob.backend
            R0 = initial[nodes] if initial is not None else prob.spectral()
            R0 = _gauge(R0, anchor)
            init_cost += prob.cost(R0)
            Rc, it = prob.refine(R0)
            iters += it
            fc = prob.cost(Rc)
            cert, vec = prob.certify(Rc, fc)
            if not cert.certified and cfg.staircase_max_rank > 3:
                if rng is None:
                    rng = np.random.default_rng(0)
                R3, cert_p, msg = prob.staircase(Rc, vec, rng)
                notes.append(f"component {k}: rank-3 certificate failed (lambda_min "
                             f"{cert.min_eigenvalue:.3g}); {msg}")
                if R3 is not None:
                    R3, it = prob.refine(_gauge(R3, anchor))
                    iters += it
                    f3 = prob.cost(R3)
                    cert3, _ = prob.certify(R3, f3)
                    if f3 < fc:
                        Rc, fc, cert = R3, f3, cert3
                    if not cert.certified and cert_p is not None and cert_p.certified:
                        # The rank-p certificate still bounds the optimum from below.
                        cert = Certificate(cert.min_eigenvalue, fc, cert_p.dual_bound,
                                           fc - cert_p.dual_bound,
                                           (fc - cert_p.dual_bound) / max(fc, 1e-300), False,
                                           cert.tolerance, cert.multipliers, cert_p.rank)
            R[nodes] = Rc
            Lam[nodes] = cert.multipliers
            cost += fc
            dual += cert.dual_bound
            lam_min = min(lam_min, cert.min_eigenvalue)
            certified &= cert.certified
            tol = max(tol, cert.tolerance)
            rank = max(rank, cert.rank)
        if not np.isfinite(lam_min):
            lam_min = 0.0
        gap = cost - dual
        certificate = Certificate(lam_min, cost, dual, gap, gap / max(cost, 1e-300), bool(certified),
                                  tol, Lam, rank)
        return RotAvgResult(R, cost, certificate, comps, rejected, init_cost, iters,
                            time.perf_counter() - t0, backend, tuple(notes))

    def _solve_fast(self, graph: ViewGraph, initial: np.ndarray | None, t0: float,
                    rejected: np.ndarray, notes: tuple[str, ...]) -> RotAvgResult | None:
        """Lean dense path (:mod:`.fast`) for a small connected graph; None when the graph
        is disconnected or the rank-3 certificate fails (the general path then handles
        components and the staircase)."""
        cfg = self.config
        n, I, J = graph.num_nodes, graph.edges[:, 0], graph.edges[:, 1]
        if not is_connected(n, I, J):
            return None
        w = graph.weights if cfg.weighted else np.ones(I.size)
        mine = self._busy.acquire(blocking=False)  # concurrent solves get fresh buffers
        try:
            s = solve_dense(n, I, J, graph.rotations, w, cfg.anchor, initial,
                            max_iterations=cfg.max_iterations, step_tol=cfg.step_tol,
                            cost_rtol=cfg.cost_rtol, certificate_tol=cfg.certificate_tol,
                            workspace=self._workspace if mine else None)
        except np.linalg.LinAlgError:
            return None
        finally:
            if mine:
                self._busy.release()
        if not s.certified:
            return None
        gap = s.cost - s.dual_bound
        cert = Certificate(s.min_eigenvalue, s.cost, s.dual_bound, gap, gap / max(s.cost, 1e-300),
                           True, s.tol, s.multipliers, 3)
        return RotAvgResult(s.rotations, s.cost, cert, [np.arange(n)], rejected, s.init_cost,
                            s.iterations, time.perf_counter() - t0, "fast-dense", notes)

    def _solve_robust(self, graph: ViewGraph, initial: np.ndarray | None,
                      rng: np.random.Generator | None, t0: float) -> RotAvgResult:
        """GNC-TLS over the edges, then the certified solve of the inlier graph."""
        cfg = self.config
        ls = RotationAveraging(_replace(cfg, robust=False, staircase_max_rank=3))
        first = ls._solve_all(graph, initial, rng, t0, np.zeros(0, np.int64), ())
        R = first.rotations.copy()
        base_w = _weights(graph, cfg)
        cbar2 = 8.0 * np.sin(np.deg2rad(cfg.robust_threshold_deg) / 2.0) ** 2  # chordal^2
        inner = _replace(cfg, robust=False, max_iterations=cfg.gnc_inner_iterations,
                         staircase_max_rank=3)
        r = np.zeros(graph.num_edges)
        steps = 0
        for nodes in graph.components():
            if nodes.size == 1:
                continue
            sub, kept = graph.subgraph(nodes)
            bw = base_w[kept]
            prob = _Problem(sub, bw, inner, 0)
            Rc = R[nodes]
            rc = prob.edge_terms(Rc)[1]
            rmax = float(rc.max())
            if rmax > cbar2:
                mu = cbar2 / max(2.0 * rmax - cbar2, 1e-12)
                for k in range(1, cfg.gnc_max_steps + 1):
                    lo, hi = mu / (mu + 1.0) * cbar2, (mu + 1.0) / mu * cbar2
                    tls = np.where(rc <= lo, 1.0, np.where(
                        rc >= hi, 0.0, np.sqrt(cbar2 * mu * (mu + 1.0) / np.maximum(rc, 1e-300)) - mu))
                    tls = np.clip(tls, 0.0, 1.0)
                    # A tiny floor keeps the weighted graph connected (L stays factorisable).
                    prob.set_weights(bw * np.maximum(tls, 1e-6))
                    Rc, _ = prob.refine(Rc)
                    rc = prob.edge_terms(Rc)[1]
                    steps = max(steps, k)
                    if np.all((tls < 1e-6) | (tls > 1 - 1e-6)) and mu > 1e3:
                        break
                    mu *= cfg.gnc_factor
            R[nodes] = Rc
            r[kept] = rc
        inlier = r <= cbar2
        rejected = np.flatnonzero(~inlier)
        note = (f"robust: GNC-TLS ({steps} steps, threshold {cfg.robust_threshold_deg:g} deg) "
                f"rejected {rejected.size} of {graph.num_edges} edges")
        sub = graph.select_edges(inlier)
        return RotationAveraging(_replace(cfg, robust=False))._solve_all(
            sub, R, rng, t0, rejected, (note,))


def _replace(cfg: RotAvgConfig, **kw: object) -> RotAvgConfig:
    from dataclasses import replace

    return replace(cfg, **kw)


def certify(graph: ViewGraph, rotations: np.ndarray, config: RotAvgConfig | None = None) -> Certificate:
    """Certificate of given rotations ``(n, 3, 3)`` for a connected ``graph``.

    Raises:
        InputError: the graph is disconnected or the rotations have the wrong shape.
    """
    cfg = config or RotAvgConfig()
    R = np.asarray(rotations, dtype=np.float64)
    if R.shape != (graph.num_nodes, 3, 3):
        raise InputError(f"rotations must be ({graph.num_nodes}, 3, 3), got {R.shape}")
    comps = graph.components()
    if len(comps) > 1:
        raise InputError(f"certify: graph has {len(comps)} components; certify each "
                         "(ViewGraph.subgraph) separately")
    prob = _Problem(graph, _weights(graph, cfg), cfg, 0)
    return prob.certify(R, prob.cost(R))[0]


def solve_rotation_averaging(graph: ViewGraph, config: RotAvgConfig | None = None,
                             initial: np.ndarray | None = None) -> RotAvgResult:
    """Functional shortcut for ``RotationAveraging(config).solve(graph, initial)``."""
    return RotationAveraging(config).solve(graph, initial)
