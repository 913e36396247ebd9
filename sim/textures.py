"""Procedural texture images in named families (noise, stripes, checker, wood, ...).

Each family is a function ``(rng, size) -> (size, size, 3) uint8``. Families are split
into those used for training and those held out for the ``test`` profile, so a detector
trained on ``train`` images is evaluated on surface appearances it has never seen.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["TEXTURE_FAMILIES", "TRAIN_FAMILIES", "HELD_OUT_FAMILIES", "make_texture"]


def _two_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    a = rng.uniform(0.05, 1.0, 3)
    b = np.clip(a + rng.uniform(-0.6, 0.6, 3), 0.0, 1.0)
    return a, b


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1] of shape (size, size): a bilinear upsampled random grid."""
    grid = rng.random((cells + 1, cells + 1))
    t = np.linspace(0, cells, size, endpoint=False)
    i = t.astype(int)
    f = t - i
    f = f * f * (3 - 2 * f)
    g0 = grid[i][:, i] * (1 - f)[None, :] + grid[i][:, i + 1] * f[None, :]
    g1 = grid[i + 1][:, i] * (1 - f)[None, :] + grid[i + 1][:, i + 1] * f[None, :]
    return g0 * (1 - f)[:, None] + g1 * f[:, None]


def _fractal(rng: np.random.Generator, size: int) -> np.ndarray:
    out = np.zeros((size, size))
    amp, total = 1.0, 0.0
    for cells in (2, 4, 8, 16):
        out += amp * _smooth_noise(rng, size, cells)
        total += amp
        amp *= 0.5
    return out / total


def _mix(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]


def _noise(rng, size):
    a, b = _two_colours(rng)
    return _mix(_fractal(rng, size), a, b)


def _stripes(rng, size):
    a, b = _two_colours(rng)
    n = rng.integers(2, 9)
    ang = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size
    # an integer number of periods along both axes keeps the texture tileable
    kx, ky = np.round(n * np.cos(ang)), np.round(n * np.sin(ang))
    t = (np.sin(2 * np.pi * (kx * xx + ky * yy)) > rng.uniform(-0.5, 0.5)).astype(float)
    return _mix(t, a, b)


def _checker(rng, size):
    a, b = _two_colours(rng)
    n = int(rng.choice([2, 4, 8]))
    yy, xx = np.mgrid[0:size, 0:size] * n // size
    return _mix(((xx + yy) % 2).astype(float), a, b)


def _wood(rng, size):
    base = rng.uniform([0.35, 0.18, 0.05], [0.75, 0.5, 0.25])
    dark = base * rng.uniform(0.4, 0.7)
    yy, xx = np.mgrid[0:size, 0:size] / size
    rings = rng.uniform(6, 16)
    warp = _fractal(rng, size) * rng.uniform(0.5, 2.0)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * (rings * yy + warp))
    return _mix(t ** 2, base, dark)


def _marble(rng, size):
    a = rng.uniform(0.7, 1.0, 3)
    b = a * rng.uniform(0.1, 0.5, 3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    turb = _fractal(rng, size) * rng.uniform(3, 8)
    t = np.abs(np.sin(2 * np.pi * (xx * rng.integers(1, 4) + turb)))
    return _mix(t ** 0.3, b, a)


def _dots(rng, size):
    a, b = _two_colours(rng)
    n = int(rng.choice([3, 4, 6, 8]))
    yy, xx = np.mgrid[0:size, 0:size] * n / size
    d = np.hypot(xx % 1 - 0.5, yy % 1 - 0.5)
    return _mix((d < rng.uniform(0.15, 0.4)).astype(float), a, b)


def _plaid(rng, size):
    a, b = _two_colours(rng)
    c = rng.uniform(0, 1, 3)
    n = int(rng.choice([2, 3, 4]))
    yy, xx = np.mgrid[0:size, 0:size] * n / size
    band = rng.uniform(0.15, 0.35)
    t = 0.5 * ((xx % 1) < band) + 0.5 * ((yy % 1) < band)
    img = _mix(t, a, b)
    thin = (((xx * 4) % 1) < 0.08) | (((yy * 4) % 1) < 0.08)
    img[thin] = c
    return img


def _gradient(rng, size):
    a, b = _two_colours(rng)
    yy, xx = np.mgrid[0:size, 0:size] / size
    ang = rng.uniform(0, 2 * np.pi)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(ang) * xx + np.sin(ang) * yy))
    return _mix(t, a, b)


def _hexes(rng, size):
    a, b = _two_colours(rng)
    n = int(rng.choice([3, 4, 6]))
    yy, xx = np.mgrid[0:size, 0:size] * n / size
    t = (np.sin(2 * np.pi * xx) + np.sin(np.pi * (xx + np.sqrt(3) * yy))
         + np.sin(np.pi * (xx - np.sqrt(3) * yy)))
    return _mix((t > rng.uniform(-0.5, 1.0)).astype(float), a, b)


TEXTURE_FAMILIES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "noise": _noise, "stripes": _stripes, "checker": _checker, "wood": _wood,
    "gradient": _gradient, "marble": _marble, "dots": _dots, "plaid": _plaid,
    "hexes": _hexes,
}
TRAIN_FAMILIES: tuple[str, ...] = ("noise", "stripes", "checker", "wood", "gradient")
HELD_OUT_FAMILIES: tuple[str, ...] = ("marble", "dots", "plaid", "hexes")


def make_texture(family: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One texture image.

    Args:
        family: a key of :data:`TEXTURE_FAMILIES`.
        rng: source of randomness (the image is a function of its state only).
        size: side length in pixels.

    Returns:
        ``(size, size, 3)`` uint8 RGB image.
    """
    img = TEXTURE_FAMILIES[family](rng, size)
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
