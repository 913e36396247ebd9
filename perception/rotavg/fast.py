"""Lean dense solver for small connected view graphs (``n <= FAST_MAX_NODES``).

The general solver (:mod:`.solver`) builds sparse block matrices, solver objects and
iterative eigen-solvers; on graphs with a few nodes that fixed Python overhead (1-2 ms)
dominates. This module solves the same problem with the same mathematics on plain dense
``3n x 3n`` ndarrays, with every index array built once per solve:

1. spectral start: the three smallest generalised eigenvectors of ``L v = mu D v``
   (``L = D - C``, the connection Laplacian and Gauss-Newton matrix), D-orthonormalised,
   blocks rounded to SO(3); by one dense ``eigh`` for ``3n <= 30``, otherwise by inverse
   subspace iteration with one Cholesky factor of ``F = L + eps D`` (no dense
   eigen-decomposition);
2. Gauss-Newton through that same factor while the gradient contracts fast (low noise,
   one triangular solve per step), then exact Newton on SO(3)^n (dense Hessian, anchor
   fixed, LAPACK ``potrf``); Newton from the start for ``3n <= 90``; backtracking on both;
3. the certificate by Sylvester's law of inertia: a successful Cholesky factorisation of
   ``Lambda - C + tol I`` proves ``lambda_min(Lambda - C) > -tol``; the reported
   ``lambda_min`` is then the smallest Ritz value on the first-order null space
   ``span(X^T)`` (as the sparse direct path does). When the factorisation fails the exact
   ``lambda_min`` is computed and the caller falls back to the general solver (which
   runs the rank staircase).

The ``3n x 3n`` buffers live in a :class:`Workspace` that a solver object reuses: fresh
multi-megabyte arrays cost page faults that were half of a 100-node solve.

Everything is the same objective, multipliers and dual bound as :mod:`.solver`; a test
checks that both paths agree.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.linalg.lapack import dpotrf, dpotrs

__all__ = ["FAST_MAX_NODES", "DenseSolution", "Workspace", "is_connected", "dense_spectral", "solve_dense"]

FAST_MAX_NODES = 150
_NEWTON_FROM_START = 90  # 3n at or below which Newton runs from the first iteration
_START_FREQ = np.array([1.0, np.sqrt(2.0), np.sqrt(5.0)])  # incommensurate: independent columns
_EIGH_MAX = 30  # 3n at or below which the spectral start uses a dense eigh
_GN_RATE = 0.1  # switch from Gauss-Newton to Newton when the gradient shrinks slower
_SPECTRAL_SHIFT = 1e-3  # same relative shift as the general solver's L + eps D
_I3 = np.arange(3)
_EYE3 = np.eye(3)
_VA, _VB = np.array([1, 2, 0]), np.array([2, 0, 1])  # vee(A) = A[VA, VB] - A[VB, VA]


class DenseSolution:
    """Raw output of :func:`solve_dense` (plain attributes, no validation).

    Attributes:
        rotations: ``(n, 3, 3)`` with ``R_anchor = I``.
        cost: weighted chordal cost.
        init_cost: cost of the start (after gauge fixing).
        iterations: Newton iterations.
        multipliers: ``(n, 3, 3)`` blocks ``Lambda_i``.
        min_eigenvalue: see the module docstring.
        certified: ``min_eigenvalue >= -tol`` proven.
        tol: absolute certificate tolerance.
        dual_bound: ``6W - tr(Lambda) + 3n min(lambda_min, 0)``.
    """

    __slots__ = ("rotations", "cost", "init_cost", "iterations", "multipliers", "min_eigenvalue",
                 "certified", "tol", "dual_bound")

    def __init__(self, **kw: object) -> None:
        for k, v in kw.items():
            setattr(self, k, v)


def is_connected(n: int, I: np.ndarray, J: np.ndarray) -> bool:
    """Whether the undirected graph on ``n`` nodes with edges ``(I[k], J[k])`` is connected.

    Label propagation with pointer jumping (hook the larger root onto the smaller, then
    compress); a few vectorised rounds for graphs of any shape.
    """
    if n == 1:
        return True
    if I.size < n - 1:
        return False
    lab = np.arange(n)
    while True:
        a, b = lab[I], lab[J]
        differ = a != b
        if not differ.any():
            break
        a, b = a[differ], b[differ]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        np.minimum.at(lab, hi, lo)
        while True:  # pointer jumping until every node points at its root
            nxt = lab[lab]
            if np.array_equal(nxt, lab):
                break
            lab = nxt
    return bool(np.all(lab == lab[0]))


class Workspace:
    """Reusable ``3n x 3n`` buffers of :func:`solve_dense`.

    Fresh multi-megabyte arrays cost page faults on every solve (measured: about half of
    the time of a 100-node solve); a solver object that keeps one workspace reuses them.
    Not thread-safe: one workspace per concurrent solve.
    """

    def __init__(self) -> None:
        self.N = -1
        self.bufs: dict[str, np.ndarray] = {}

    def get(self, N: int, name: str) -> np.ndarray:
        """The ``(N, N)`` float64 buffer ``name`` (contents undefined)."""
        if N != self.N:
            self.bufs = {}
            self.N = N
        buf = self.bufs.get(name)
        if buf is None:
            buf = self.bufs[name] = np.empty((N, N))
        return buf


def _potrf_inplace(A: np.ndarray) -> bool:
    """Cholesky of the symmetric C-ordered ``A`` in place (LAPACK works on ``A.T``, which is
    Fortran-ordered: no copy); True on success (``A`` positive definite)."""
    _, info = dpotrf(A.T, lower=1, clean=0, overwrite_a=1)
    return info == 0


class _Dense:
    """Per-solve dense matrices of a connected graph (``3n x 3n``)."""

    def __init__(self, n: int, I: np.ndarray, J: np.ndarray, rel: np.ndarray, w: np.ndarray,
                 anchor: int, cert_tol_rel: float, ws: Workspace | None = None) -> None:
        self.n, self.N, self.I, self.J, self.rel, self.w, self.anchor = n, 3 * n, I, J, rel, w, anchor
        N = self.N
        self.ws = ws or Workspace()
        self.relT = rel.transpose(0, 2, 1)
        # Flat index of entry (a, b) of block (I_e, J_e) in a row-major N x N array.
        self.off_idx = (((3 * I)[:, None, None] + _I3[None, :, None]) * N
                        + (3 * J)[:, None, None] + _I3[None, None, :]).ravel()
        self.diag_blk = ((3 * np.arange(n))[:, None, None] + _I3[None, :, None]) * N \
            + (3 * np.arange(n))[:, None, None] + _I3[None, None, :]  # (n, 3, 3)
        self.grad_idx = np.concatenate([((3 * I)[:, None] + _I3).ravel(), ((3 * J)[:, None] + _I3).ravel()])
        self.hess_idx = np.concatenate([self.off_idx, self.diag_blk[I].ravel(), self.diag_blk[J].ravel()])
        self.wrel = w[:, None, None] * rel
        self.C = self._symmetric(self.off_idx, self.wrel.ravel(), self.ws.get(N, "C"))
        self.deg = np.bincount(I, w, minlength=n) + np.bincount(J, w, minlength=n)
        self.d3 = np.repeat(self.deg, 3)
        self.W = float(w.sum())
        self.mean_deg = float(self.deg.sum()) / n
        self.tol = cert_tol_rel * self.mean_deg
        self._F: np.ndarray | None = None

    @property
    def F(self) -> np.ndarray:
        """Cholesky factor (in ``F.T``'s lower triangle) of ``F = L + eps D``, built once."""
        if self._F is None:
            N = self.N
            F = np.negative(self.C, out=self.ws.get(N, "F"))
            F.reshape(-1)[::N + 1] += (1.0 + _SPECTRAL_SHIFT) * self.d3
            if not _potrf_inplace(F):  # L + eps D is positive definite (connected, w > 0)
                raise np.linalg.LinAlgError("L + eps D is not positive definite")
            self._F = F
        return self._F

    def _symmetric(self, idx: np.ndarray, vals: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``B + B^T`` into ``out``, ``B`` the sum of ``vals`` at flat indices ``idx``."""
        B = self.ws.get(self.N, "scratch")
        B.fill(0.0)
        np.add.at(B.reshape(-1), idx, vals)
        return np.add(B, B.T, out=out)

    def solve_F(self, b: np.ndarray) -> np.ndarray:
        return dpotrs(self.F.T, b, lower=1)[0]

    # ------------------------------------------------------------------ spectral start
    def spectral(self, tol: float, max_iter: int = 200) -> np.ndarray:
        """Three smallest generalised eigenvectors of ``L v = mu D v`` by inverse subspace
        iteration with ``F^-1 D``, stopped when the relative residual falls below ``tol``;
        blocks rounded to SO(3) (``(n, 3, 3)``, gauge arbitrary)."""
        d3 = self.d3
        sd = np.sqrt(d3)[:, None]
        if self.N <= _EIGH_MAX:
            # Tiny: one dense eigen-decomposition of D^-1/2 C D^-1/2 (top three).
            _, U = np.linalg.eigh(self.C / sd / sd.T)
            return self._round(U[:, -3:] / sd)
        # A fixed, generic start (no generator to seed: it would cost more than the rest).
        V = np.cos(np.arange(self.N)[:, None] * _START_FREQ)
        for _ in range(max_iter):
            # U = D^1/2 F^-1 D V, orthonormalised: V = D^-1/2 U has D-orthonormal columns.
            U = _orthonormal3(sd * self.solve_F(d3[:, None] * V))
            V = U / sd
            LV = d3[:, None] * V - self.C @ V
            res = LV - (sd * U) @ (V.T @ LV)
            if np.sqrt(np.sum(res * res) / self.N) <= tol * self.mean_deg:
                break
        return self._round(V)

    @staticmethod
    def _round(V: np.ndarray) -> np.ndarray:
        """``(3n, 3)`` blocks ~ ``R_i^T`` up to O(3) -> rotations ``(n, 3, 3)``."""
        B = V.reshape(-1, 3, 3)
        if np.count_nonzero(_det3(B) < 0) > B.shape[0] / 2:
            B = B.copy()
            B[:, :, 2] *= -1.0
        return _project(B.transpose(0, 2, 1))

    # ------------------------------------------------------------------ cost / derivatives
    def terms(self, R: np.ndarray) -> tuple[np.ndarray, float]:
        """``Q_e = R_i^T R_j`` ``(m,3,3)`` and the cost ``sum_e w_e ||R_ij - Q_e||_F^2``
        (equal to ``sum_e w_e ||R_i R_ij - R_j||_F^2``)."""
        Q = R[self.I].transpose(0, 2, 1) @ R[self.J]
        D = self.rel - Q
        return Q, float(self.w @ (D * D).reshape(-1, 9).sum(1))

    def gradient(self, M: np.ndarray) -> np.ndarray:
        """Half the Riemannian gradient ``(3n,)`` (right perturbations, as in the solver)
        from ``M_e = R_ij Q_e^T``: with ``D = R_ij - Q``, ``vee(R_ij D^T) = -vee(M)``."""
        a = (M[:, _VB, _VA] - M[:, _VA, _VB]) * self.w[:, None]
        b = (self.relT @ a[:, :, None])[:, :, 0]
        return np.bincount(self.grad_idx, np.concatenate([a.ravel(), -b.ravel()]),
                           minlength=self.N)

    def hessian(self, M: np.ndarray, Q: np.ndarray) -> np.ndarray:
        """Half the Riemannian Hessian ``(3n, 3n)`` (see ``_Problem.hessian``)."""
        N = self.N
        Mp = Q.transpose(0, 2, 1) @ self.rel
        w = self.w[:, None, None]
        trM = M[:, _I3, _I3].sum(1)[:, None]
        trMp = Mp[:, _I3, _I3].sum(1)[:, None]
        # trsym(A) = tr(A) I - sym(A)
        Si = -0.5 * (M + M.transpose(0, 2, 1))
        Si[:, _I3, _I3] += trM
        Sj = -0.5 * (Mp + Mp.transpose(0, 2, 1))
        Sj[:, _I3, _I3] += trMp
        Mt = M.copy()
        Mt[:, _I3, _I3] -= trM
        Hij = w * (Mt @ self.rel)
        # Diagonal blocks enter at half weight: H + H^T restores them (they are symmetric)
        # and mirrors each off-diagonal block (i, j) to (j, i).
        return self._symmetric(self.hess_idx, np.concatenate([
            Hij.ravel(), (0.5 * w * Si).ravel(), (0.5 * w * Sj).ravel()]), self.ws.get(self.N, "H"))

    def step(self, M: np.ndarray, Q: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Exact Newton update ``(n, 3)`` with the anchor fixed; Gauss-Newton (through
        ``F``) where the Hessian is not positive definite on the anchored subspace."""
        H = self.hessian(M, Q)
        a3 = 3 * self.anchor
        H[a3:a3 + 3, :] = 0.0
        H[:, a3:a3 + 3] = 0.0
        H[a3:a3 + 3, a3:a3 + 3] = _EYE3
        rhs = -g
        rhs[a3:a3 + 3] = 0.0
        if _potrf_inplace(H):
            x = dpotrs(H.T, rhs, lower=1)[0]
        else:
            x = -0.5 * self.solve_F(g)  # half-Hessian ~ 2 L ~ 2 F
        return x.reshape(-1, 3)

    def refine(self, R: np.ndarray, max_iterations: int, step_tol: float, cost_rtol: float
               ) -> tuple[np.ndarray, float, int]:
        """Gauss-Newton through the factor of ``F`` (no new factorisation) while it
        converges fast, then exact Newton; backtracking on both. Stops on a tiny step, a
        tiny relative decrease, or a gradient below ``step_tol x`` the smallest weighted
        degree (a Newton step would then move less than about ``step_tol``)."""
        Q, f = self.terms(R)
        gtol = step_tol * float(self.deg.min())
        it = 0
        newton = self.N <= _NEWTON_FROM_START  # tiny systems: the Hessian costs nothing
        gprev = np.inf
        for it in range(1, max_iterations + 1):
            M = self.rel @ Q.transpose(0, 2, 1)
            g = self.gradient(M)
            gmax = float(np.abs(g).max())
            if gmax <= gtol:
                it -= 1
                break
            # Gauss-Newton contracts the gradient by the ratio of the residual curvature to
            # L; once that ratio is poor, exact Newton (quadratic) is cheaper overall.
            newton = newton or gmax > _GN_RATE * gprev
            gprev = gmax
            delta = self.step(M, Q, g) if newton else -0.5 * self.solve_F(g).reshape(-1, 3)
            step = 1.0
            while True:
                Rn = R @ _exp(step * delta)
                Qn, fn = self.terms(Rn)
                if fn <= f or step < 1e-4:
                    break
                step *= 0.25
            if fn > f:
                if newton:
                    break
                newton = True  # GN step failed to decrease: continue with Newton
                continue
            decrease = f - fn
            R, Q, f = Rn, Qn, fn
            if step < 1.0:
                newton = True
            if step * np.abs(delta).max() < step_tol or decrease <= cost_rtol * max(f, 1e-300):
                break
        # R is a product of exact rotations (drift ~1e-15 after a few steps): no projection.
        R = R[self.anchor].T[None] @ R
        return R, f, max(it, 0)

    # ------------------------------------------------------------------ certificate
    def certify(self, R: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """Multipliers ``(n,3,3)``, ``lambda_min`` (see module docstring) and certified."""
        n, N = self.n, self.N
        Xt = R.transpose(0, 2, 1).reshape(N, 3)  # X^T: block i = R_i^T
        G = (self.C @ Xt).reshape(n, 3, 3)       # block i = (X C)_i^T = G_i^T
        Lam = G @ R
        Lam = 0.5 * (Lam + Lam.transpose(0, 2, 1))
        S = np.negative(self.C, out=self.ws.get(self.N, "H"))
        S.reshape(-1)[self.diag_blk.ravel()] += Lam.ravel()
        Qx = _orthonormal3(Xt)
        SQ = Qx.T @ (S @ Qx)
        ritz = float(np.linalg.eigvalsh(0.5 * (SQ + SQ.T))[0])
        S.reshape(-1)[::N + 1] += self.tol
        if _potrf_inplace(S):  # Sylvester: S + tol I > 0 proves lambda_min(S) > -tol
            return Lam, ritz, True
        S = -self.C
        S.reshape(-1)[self.diag_blk.ravel()] += Lam.ravel()
        lam = float(sla.eigh(S, subset_by_index=[0, 0], eigvals_only=True, check_finite=False)[0])
        return Lam, lam, bool(lam >= -self.tol)


def _exp(v: np.ndarray) -> np.ndarray:
    """Rodrigues for ``(n, 3)`` rotation vectors: ``I + a K + b K^2`` with ``K^2 = v v^T -
    th^2 I``, ``a = sin(th)/th``, ``b = (1 - cos th)/th^2 = 2 sin^2(th/2)/th^2`` (no
    cancellation near zero; the 1e-300 offset makes th = 0 give a = 1, b = 1/2)."""
    th = np.sqrt((v * v).sum(1)) + 1e-300
    a = np.sin(th) / th
    h = np.sin(0.5 * th) / th
    b = 2.0 * h * h
    out = (b[:, None] * v)[:, :, None] * v[:, None, :]
    c = 1.0 - b * th * th
    out[:, 0, 0] += c
    out[:, 1, 1] += c
    out[:, 2, 2] += c
    av = a[:, None] * v
    out[:, 0, 1] -= av[:, 2]
    out[:, 1, 0] += av[:, 2]
    out[:, 0, 2] += av[:, 1]
    out[:, 2, 0] -= av[:, 1]
    out[:, 1, 2] -= av[:, 0]
    out[:, 2, 1] += av[:, 0]
    return out


def _det3(M: np.ndarray) -> np.ndarray:
    """Determinants of ``(n, 3, 3)`` matrices (cofactor expansion, no LAPACK call)."""
    a, b, c = M[:, 0], M[:, 1], M[:, 2]
    return (a[:, 0] * (b[:, 1] * c[:, 2] - b[:, 2] * c[:, 1])
            - a[:, 1] * (b[:, 0] * c[:, 2] - b[:, 2] * c[:, 0])
            + a[:, 2] * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0]))


def _orthonormal3(A: np.ndarray) -> np.ndarray:
    """Orthonormal basis ``(N, 3)`` of the columns of ``A`` (modified Gram-Schmidt, twice
    for the last columns' accuracy)."""
    q0 = A[:, 0] / np.sqrt(A[:, 0] @ A[:, 0])
    q1 = A[:, 1] - (q0 @ A[:, 1]) * q0
    q1 -= (q0 @ q1) * q0
    q1 /= np.sqrt(q1 @ q1)
    q2 = A[:, 2] - (q0 @ A[:, 2]) * q0
    q2 -= (q1 @ q2) * q1
    q2 -= (q0 @ q2) * q0 + (q1 @ q2) * q1
    q2 /= np.sqrt(q2 @ q2)
    return np.stack([q0, q1, q2], axis=1)


def _project(M: np.ndarray) -> np.ndarray:
    """Nearest rotations to ``(n, 3, 3)`` matrices (SVD, det fixed)."""
    U, _, Vt = np.linalg.svd(M)
    neg = _det3(M) < 0
    if neg.any():
        U = U.copy()
        U[neg, :, 2] *= -1.0
    return U @ Vt


def dense_spectral(n: int, I: np.ndarray, J: np.ndarray, rel: np.ndarray, w: np.ndarray,
                   tol: float = 1e-6, workspace: Workspace | None = None) -> np.ndarray:
    """Degree-normalised spectral start of a connected small graph (``(n, 3, 3)``)."""
    return _Dense(n, I, J, rel, w, 0, 1.0, workspace).spectral(tol)


def solve_dense(n: int, I: np.ndarray, J: np.ndarray, rel: np.ndarray, w: np.ndarray, anchor: int,
                initial: np.ndarray | None, *, max_iterations: int, step_tol: float,
                cost_rtol: float, certificate_tol: float, workspace: Workspace | None = None
                ) -> DenseSolution:
    """Spectral start (unless ``initial``), Newton, certificate on a connected graph.

    Args:
        n: nodes; ``I``, ``J``: ``(m,)`` int64 edge ends; ``rel``: ``(m, 3, 3)`` ``R_ij``;
        w: ``(m,)`` weights > 0; anchor: gauge node; initial: ``(n, 3, 3)`` rotations or None.
        max_iterations, step_tol, cost_rtol: Newton stopping rules (see RotAvgConfig).
        certificate_tol: tolerance relative to the mean weighted degree.
        workspace: buffers to reuse across solves (default: fresh ones).
    """
    P = _Dense(n, I, J, rel, w, anchor, certificate_tol, workspace)
    R0 = P.spectral(1e-3) if initial is None else initial
    R0 = R0[anchor].T[None] @ R0
    init_cost = P.terms(R0)[1]
    R, f, it = P.refine(R0, max_iterations, step_tol, cost_rtol)
    Lam, lam, ok = P.certify(R)
    dual = 6.0 * P.W - float(np.einsum("nii->", Lam)) + 3.0 * n * min(lam, 0.0)
    return DenseSolution(rotations=R, cost=f, init_cost=init_cost, iterations=it, multipliers=Lam,
                         min_eigenvalue=lam, certified=ok, tol=P.tol, dual_bound=dual)
