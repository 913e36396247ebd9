"""Score an object map against ground-truth object positions (evaluation only)."""
from __future__ import annotations

import numpy as np

__all__ = ["match_map"]


def match_map(est_positions: np.ndarray, ref_positions: np.ndarray, radius: float = 0.10,
              duplicate_radius: float = 0.30) -> dict:
    """One-to-one greedy matching (closest pairs first) of estimated and reference positions.

    Args:
        est_positions: ``(N, 3)`` mapped instance positions, m.
        ref_positions: ``(M, 3)`` ground-truth object centres, m (same frame).
        radius: a reference counts as mapped when matched within this distance.
        duplicate_radius: an unmatched estimate within this distance of a reference is a
            duplicate; further away it is a phantom.

    Returns:
        dict: ``mapped`` (count), ``mapped_fraction`` (of references), ``duplicates``,
        ``phantoms``, ``spurious_fraction`` ((duplicates + phantoms) / N), ``errors_m``
        (distances of matched pairs), ``matched_ref`` (M,) bool.
    """
    est = np.asarray(est_positions, float).reshape(-1, 3)
    ref = np.asarray(ref_positions, float).reshape(-1, 3)
    d = np.linalg.norm(est[:, None] - ref[None], axis=2) if len(est) and len(ref) else np.zeros((len(est), len(ref)))
    used_e = np.zeros(len(est), bool)
    used_r = np.zeros(len(ref), bool)
    errors = []
    if d.size:
        for flat in np.argsort(d, axis=None):
            i, j = np.unravel_index(flat, d.shape)
            if d[i, j] > radius:
                break
            if used_e[i] or used_r[j]:
                continue
            used_e[i] = used_r[j] = True
            errors.append(float(d[i, j]))
    unmatched = np.where(~used_e)[0]
    near = (d[unmatched].min(axis=1) <= duplicate_radius) if len(ref) and len(unmatched) else np.zeros(len(unmatched), bool)
    dup, phantom = int(near.sum()), int((~near).sum())
    return {"mapped": int(used_r.sum()), "mapped_fraction": float(used_r.mean()) if len(ref) else float("nan"),
            "duplicates": dup, "phantoms": phantom,
            "spurious_fraction": float((dup + phantom) / len(est)) if len(est) else 0.0,
            "n_instances": int(len(est)), "n_reference": int(len(ref)), "errors_m": errors,
            "matched_ref": used_r}
