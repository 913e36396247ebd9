"""Confidence calibration of recogniser hypotheses: Platt scaling and its ECE.

A hypothesis is described by a few decoder scores (:data:`FEATURES`); a logistic model,
fitted on a calibration split (never the test split), maps them to the probability that
the hypothesis is exactly right (normalised text equal to the reference; for a non-speech
clip, any non-empty hypothesis is wrong). :func:`expected_calibration_error` measures how
well such probabilities match observed accuracy.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from katazuke.errors import ConfigError, InputError

__all__ = ["FEATURES", "Calibration", "fit_platt", "expected_calibration_error", "reliability_bins"]

#: Per-hypothesis features, in order: average token log-probability, its gap to the best
#: hypothesis of the same utterance (<= 0), the decoder's no-speech probability, and the
#: number of words (log1p).
FEATURES = ("avg_logprob", "gap_to_best", "no_speech_prob", "log1p_words")


@dataclass(frozen=True)
class Calibration:
    """A fitted logistic map from :data:`FEATURES` to P(hypothesis exactly right).

    Attributes:
        engine: the recogniser it was fitted for.
        weights: one weight per feature.
        bias: intercept.
        mean, scale: feature standardisation applied before the weights.
        fitted_on: what the calibration split was (voices, speeds, counts).
    """

    engine: str
    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    fitted_on: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(FEATURES)
        if not (len(self.weights) == len(self.mean) == len(self.scale) == n):
            raise ConfigError(f"calibration for {self.engine!r} needs {n} weights, means and "
                              f"scales ({', '.join(FEATURES)})")

    def probability(self, features: np.ndarray) -> np.ndarray:
        """``(n, len(FEATURES))`` -> ``(n,)`` probabilities in (0, 1)."""
        x = (np.atleast_2d(np.asarray(features, dtype=np.float64)) - np.asarray(self.mean)) \
            / np.asarray(self.scale)
        z = x @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps({
            "engine": self.engine, "features": list(FEATURES), "weights": list(self.weights),
            "bias": self.bias, "mean": list(self.mean), "scale": list(self.scale),
            "fitted_on": self.fitted_on}, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"confidence calibration file not found: {p} (fit one with "
                              "`katazuke bench speech --save-calibration`)")
        d = json.loads(p.read_text())
        if tuple(d.get("features", ())) != FEATURES:
            raise ConfigError(f"{p}: calibration features {d.get('features')} differ from "
                              f"{list(FEATURES)}; refit it (katazuke bench speech --save-calibration)")
        return cls(d["engine"], tuple(d["weights"]), float(d["bias"]), tuple(d["mean"]),
                   tuple(d["scale"]), d.get("fitted_on", {}))


def fit_platt(features: np.ndarray, correct: np.ndarray, engine: str, l2: float = 1e-2,
              fitted_on: dict | None = None) -> Calibration:
    """Fit a logistic calibration by Newton's method (L2-regularised, standardised features).

    Args:
        features: ``(n, len(FEATURES))``.
        correct: ``(n,)`` bool, whether each hypothesis was exactly right.
        engine: recogniser name stored with the fit.
        l2: ridge weight on the (standardised) weights, not the bias.
        fitted_on: description of the calibration split.

    Raises:
        InputError: shapes disagree, or the labels are all one class.
    """
    X = np.asarray(features, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(FEATURES) or X.shape[0] != y.shape[0]:
        raise InputError(f"fit_platt needs features (n, {len(FEATURES)}) and n labels, got "
                         f"{X.shape} and {y.shape}")
    if y.min() == y.max():
        raise InputError("the calibration split has only right or only wrong hypotheses: "
                         "add harder or easier clips")
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    Z = np.hstack([(X - mean) / scale, np.ones((X.shape[0], 1))])
    w = np.zeros(Z.shape[1])
    reg = np.full(Z.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ w, -40, 40)))
        grad = Z.T @ (p - y) + reg * w
        H = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(reg + 1e-9)
        step = np.linalg.solve(H, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return Calibration(engine, tuple(float(v) for v in w[:-1]), float(w[-1]),
                       tuple(float(v) for v in mean), tuple(float(v) for v in scale),
                       dict(fitted_on or {}, hypotheses=int(X.shape[0]),
                            right=int(y.sum())))


def reliability_bins(prob: Sequence[float], correct: Sequence[bool], bins: int = 10
                     ) -> list[dict]:
    """Equal-width confidence bins: count, mean confidence, accuracy (non-empty bins only)."""
    p = np.asarray(prob, dtype=np.float64)
    c = np.asarray(correct, dtype=np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        if m.any():
            out.append({"lo": b / bins, "hi": (b + 1) / bins, "n": int(m.sum()),
                        "confidence": float(p[m].mean()), "accuracy": float(c[m].mean())})
    return out


def expected_calibration_error(prob: Sequence[float], correct: Sequence[bool], bins: int = 10
                               ) -> float:
    """ECE: sum over equal-width bins of (bin share) * |accuracy - mean confidence|."""
    p = np.asarray(prob, dtype=np.float64)
    if p.size == 0:
        raise InputError("expected_calibration_error needs at least one prediction")
    return float(sum(b["n"] / p.size * abs(b["accuracy"] - b["confidence"])
                     for b in reliability_bins(prob, correct, bins)))
