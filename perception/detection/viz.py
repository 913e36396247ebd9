"""Contact sheet of predictions vs ground truth."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from katazuke.perception.detection.config import CATEGORIES

__all__ = ["draw_detections", "contact_sheet", "confusion_plot"]

_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (200, 200, 200)]


def draw_detections(rgb: np.ndarray, boxes_xyxy: np.ndarray, labels: list[str],
                    scores: np.ndarray, gt_xywh: np.ndarray | None = None,
                    gt_held_out: np.ndarray | None = None) -> np.ndarray:
    """Annotated copy of ``rgb`` ((H,W,3) uint8): predictions coloured by category with
    'label score'; ground truth (optional) as thin white boxes, held-out kinds dashed-looking
    (cyan)."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(np.ascontiguousarray(rgb))
    d = ImageDraw.Draw(im)
    if gt_xywh is not None:
        for j, b in enumerate(np.asarray(gt_xywh).reshape(-1, 4)):
            held = gt_held_out is not None and bool(gt_held_out[j])
            d.rectangle([b[0], b[1], b[0] + b[2], b[1] + b[3]],
                        outline=(0, 255, 255) if held else (255, 255, 255))
    names = list(CATEGORIES) + ["unknown"]
    for b, lab, s in zip(np.asarray(boxes_xyxy).reshape(-1, 4), labels, scores):
        col = _COLOURS[names.index(lab)] if lab in names else (255, 0, 0)
        d.rectangle([float(v) for v in b], outline=col, width=2)
        d.text((float(b[0]) + 2, float(b[1]) + 1), f"{lab[:5]} {s:.2f}", fill=col)
    return np.asarray(im)


def contact_sheet(tiles: list[np.ndarray], path: str | Path, cols: int = 4) -> Path:
    """Grid of equally sized ``(H,W,3)`` uint8 tiles written as PNG."""
    from PIL import Image

    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + cols - 1) // cols
    sheet = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)
    return path


def confusion_plot(kind_confusion: dict, path: str | Path) -> Path:
    """Heat map of :func:`evaluation.kind_confusion`: one row per object kind (held-out kinds
    starred), one column per predicted category plus ``missed``; each row normalised to 1,
    the true category's cell outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not kind_confusion:
        raise ValueError("confusion_plot(): no kinds to plot")
    kinds = list(kind_confusion)
    labels = list(next(iter(kind_confusion.values()))["counts"])
    counts = np.array([[kind_confusion[k]["counts"][c] for c in labels] for k in kinds], float)
    frac = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(labels), 0.8 + 0.28 * len(kinds)))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i, k in enumerate(kinds):
        j = labels.index(kind_confusion[k]["category"])
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.2))
        for jj in range(len(labels)):
            if counts[i, jj]:
                ax.text(jj, i, f"{frac[i, jj]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if frac[i, jj] > 0.6 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(kinds)),
                  [f"{k}{'*' if kind_confusion[k]['held_out'] else ''} ({int(counts[i].sum())})"
                   for i, k in enumerate(kinds)], fontsize=7)
    ax.set_title("ground-truth kind -> top category of its matching box\n"
                 "(red: true category; * held-out kind)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
