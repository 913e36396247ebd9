"""Procedural mugs, bowls and bottles with exact occupancy (watertight by construction).

Each :class:`Shape` is a union of solids with a closed-form inside test: a solid of
revolution about +z (a closed ``(r, z)`` profile polygon; a point is inside when
``(sqrt(x^2 + y^2), z)`` is inside the polygon) and, for mugs, a handle (a half torus tube in
the xz-plane, stretched along x). Occupancy labels therefore need no mesh repair; the
triangle meshes (:meth:`Shape.mesh`) are only for rendering depth and sampling the surface,
and match the solids up to the angular tessellation. Frame: the object's base centre at the
origin, +z up (the upright pose), +x towards a mug's handle; metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from katazuke.errors import InputError

__all__ = ["CATEGORIES", "Shape", "Handle", "sample_shape"]

#: Categories the generator makes.
CATEGORIES: tuple[str, ...] = ("mug", "bowl", "bottle")


@dataclass(frozen=True)
class Handle:
    """A half torus in the xz-plane: centre ``(cx, 0, cz)``, ring radius ``ring_m``, tube
    radius ``tube_m``, the part with ``x >= cx``, then stretched by ``stretch`` along x
    about ``x = cx``. All m."""

    cx: float
    cz: float
    ring_m: float
    tube_m: float
    stretch: float

    def inside(self, p: np.ndarray) -> np.ndarray:
        x = self.cx + (p[:, 0] - self.cx) / self.stretch
        rho = np.hypot(x - self.cx, p[:, 2] - self.cz)
        return ((rho - self.ring_m) ** 2 + p[:, 1] ** 2 <= self.tube_m ** 2) & (x >= self.cx)

    def mesh(self, segments: int) -> tuple[np.ndarray, np.ndarray]:
        phi = np.linspace(-np.pi / 2, np.pi / 2, segments // 2 + 1)
        psi = np.linspace(0.0, 2 * np.pi, max(segments // 4, 8), endpoint=False)
        P, S = np.meshgrid(phi, psi, indexing="ij")
        rho = self.ring_m + self.tube_m * np.cos(S)
        V = np.stack([self.cx + self.stretch * rho * np.cos(P), self.tube_m * np.sin(S),
                      self.cz + rho * np.sin(P)], -1).reshape(-1, 3)
        n_phi, n_psi = P.shape
        F = []
        for i in range(n_phi - 1):
            for j in range(n_psi):
                a, b = i * n_psi + j, i * n_psi + (j + 1) % n_psi
                c, d = a + n_psi, b + n_psi
                F += [(a, c, b), (b, c, d)]
        return V, np.asarray(F, dtype=np.int64)


@dataclass(frozen=True)
class Shape:
    """One procedural object instance.

    Attributes:
        category: one of :data:`CATEGORIES`.
        profile: ``(K, 2)`` closed ``(r, z)`` polygon, m, from ``(0, z_0)`` on the axis out
            and back to the axis (the closing edge runs along the axis).
        handle: the mug's handle, or None.
        params: the sampled dimensions (m), for provenance.
    """

    category: str
    profile: np.ndarray
    handle: Handle | None
    params: dict

    def inside(self, points: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: which of ``points (N, 3)`` (object frame, m) are inside the solid."""
        p = np.asarray(points, dtype=np.float64)
        occ = _in_polygon(np.hypot(p[:, 0], p[:, 1]), p[:, 2], self.profile)
        if self.handle is not None:
            occ |= self.handle.inside(p)
        return occ

    def parts(self, segments: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Triangle meshes ``(V (n, 3), F (m, 3))`` of the body and the handle, m."""
        out = [_revolve(self.profile, segments)]
        if self.handle is not None:
            out.append(self.handle.mesh(segments))
        return out

    def mesh(self, segments: int) -> tuple[np.ndarray, np.ndarray]:
        """One triangle mesh ``(V (n, 3) float64, F (m, 3) int64)`` of all parts, m."""
        Vs, Fs, off = [], [], 0
        for V, F in self.parts(segments):
            Vs.append(V)
            Fs.append(F + off)
            off += len(V)
        return np.concatenate(Vs), np.concatenate(Fs)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(3,)`` lower and upper corners of the solid's bounding box, m."""
        r = float(self.profile[:, 0].max())
        lo = np.array([-r, -r, float(self.profile[:, 1].min())])
        hi = np.array([r, r, float(self.profile[:, 1].max())])
        if self.handle is not None:
            h = self.handle
            hi[0] = max(hi[0], h.cx + h.stretch * (h.ring_m + h.tube_m))
        return lo, hi


def _in_polygon(r: np.ndarray, z: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd test of points ``(r, z)`` against a closed polygon ``(K, 2)``."""
    inside = np.zeros(r.shape, dtype=bool)
    a, b = poly, np.roll(poly, -1, axis=0)
    for (r0, z0), (r1, z1) in zip(a, b):
        if z0 == z1:
            continue
        crosses = (z0 > z) != (z1 > z)
        r_at = r0 + (z - z0) * (r1 - r0) / (z1 - z0)
        inside ^= crosses & (r < r_at)
    return inside


def _revolve(profile: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Surface of revolution of an axis-to-axis profile polyline about +z."""
    th = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    n = len(profile)
    V = np.stack([profile[None, :, 0] * np.cos(th)[:, None],
                  profile[None, :, 0] * np.sin(th)[:, None],
                  np.broadcast_to(profile[None, :, 1], (segments, n))], -1).reshape(-1, 3)
    F = []
    for j in range(segments):
        jn = (j + 1) % segments
        for i in range(n - 1):
            a, b = j * n + i, jn * n + i
            F += [(a, b, a + 1), (a + 1, b, b + 1)]
    return V, np.asarray(F, dtype=np.int64)


def _curve(p0: tuple[float, float], p1: tuple[float, float], n: int, bulge: float
           ) -> list[tuple[float, float]]:
    """Points from ``p0`` to ``p1`` (exclusive of both) along a quarter-sine easing."""
    t = np.linspace(0.0, 1.0, n + 2)[1:-1]
    s = np.sin(t * np.pi / 2) ** bulge
    return [(p0[0] + (p1[0] - p0[0]) * si, p0[1] + (p1[1] - p0[1]) * ti) for si, ti in zip(s, t)]


def sample_shape(category: str, rng: np.random.Generator) -> Shape:
    """A random instance of ``category`` (dimensions drawn from ``rng``).

    Ranges (m): mugs radius 3.0-4.8 cm, height 7-11 cm, wall 3-6 mm, handle tube 4-7 mm;
    bowls radius 6-9.5 cm, height 3.5-6.5 cm; bottles radius 2.4-4.2 cm, height 14-26 cm
    with a shoulder and a neck of 30-45 % of the radius.

    Raises:
        InputError: unknown category.
    """
    u = rng.uniform
    if category == "mug":
        r, h, t, b = u(0.03, 0.048), u(0.07, 0.11), u(0.003, 0.006), u(0.006, 0.012)
        prof = [(0, 0), (r, 0), (r, h), (r - t, h), (r - t, b), (0, b)]
        tube = u(0.004, 0.007)
        cz = h * u(0.45, 0.55)
        ring = min(u(0.3, 0.42) * h, cz - tube - 0.006, h - cz - tube - 0.006)
        handle = Handle(r - t / 2, cz, ring, tube, u(0.6, 1.0))
        params = {"radius": r, "height": h, "wall": t, "bottom": b, "handle_ring": ring,
                  "handle_tube": tube, "handle_z": cz, "handle_stretch": handle.stretch}
    elif category == "bowl":
        r, h, t, bt = u(0.06, 0.095), u(0.035, 0.065), u(0.003, 0.006), u(0.004, 0.008)
        rb, bulge = r * u(0.4, 0.6), u(0.7, 1.5)
        outer = [(0, 0), (rb, 0)] + _curve((rb, 0), (r, h), 6, bulge) + [(r, h)]
        inner = [(r - t, h)] + _curve((rb - t, bt), (r - t, h), 6, bulge)[::-1] + [(rb - t, bt),
                                                                                     (0, bt)]
        prof, handle = outer + inner, None
        params = {"radius": r, "height": h, "wall": t, "bottom": bt, "base_radius": rb,
                  "bulge": bulge}
    elif category == "bottle":
        r, h = u(0.024, 0.042), u(0.14, 0.26)
        hs, hn, rn = h * u(0.55, 0.72), h * u(0.78, 0.86), r * u(0.3, 0.45)
        prof = ([(0, 0), (r, 0), (r, hs)] + _curve((r, hs), (rn, hn), 5, 1.0)
                + [(rn, hn), (rn, 0.96 * h), (rn * 1.12, 0.96 * h), (rn * 1.12, h), (0, h)])
        handle = None
        params = {"radius": r, "height": h, "shoulder_z": hs, "neck_z": hn, "neck_radius": rn}
    else:
        raise InputError(f"unknown NDF category {category!r}; use one of {list(CATEGORIES)}")
    return Shape(category, np.asarray(prof, dtype=np.float64), handle,
                 {k: float(v) for k, v in params.items()})
