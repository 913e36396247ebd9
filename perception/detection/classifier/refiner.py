"""Inference of the crop classifier: the second look at the detector's best boxes.

At inference the detector's and the classifier's probabilities are fused in log space,
``p ~ p_det^(1-w) * p_cls^w``, with ``w`` chosen on held-back training images and stored in
the weights file (:func:`~.train.choose_settings`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from katazuke.errors import KatazukeError
from katazuke.perception.detection.classifier.model import (crop_windows, decode_boxes,
                                                            depth_metres, load_classifier,
                                                            make_crops)

__all__ = ["CategoryRefiner", "fuse_probs"]


def fuse_probs(p_det: np.ndarray, p_cls: np.ndarray, weight: float) -> np.ndarray:
    """``p ~ p_det^(1-w) * p_cls^w`` row-normalised (``w`` = 0: detector only, 1: classifier)."""
    logp = (1.0 - weight) * np.log(np.clip(p_det, 1e-9, 1.0)) + weight * np.log(np.clip(p_cls, 1e-9, 1.0))
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


class CategoryRefiner:
    """The second look at detected boxes: categories fused with the crop classifier's, and with
    a second-stage network also objectness re-scored and boxes corrected.

    ``score = s_det^(1-a) * p_obj^a`` with ``a`` = ``objectness_weight``; boxes move to the
    network's correction when ``box_regression``; then boxes are re-sorted and NMS runs again.
    """

    def __init__(self, model: Any, fusion_weight: float = 1.0, top_k: int = 32,
                 min_score: float = 0.05, objectness_weight: float = 0.0,
                 box_regression: bool = False, nms_iou: float = 0.5) -> None:
        for name, v in (("fusion", fusion_weight), ("objectness", objectness_weight)):
            if not 0.0 <= v <= 1.0:
                raise KatazukeError(f"classifier {name} weight must be in [0, 1], got {v}")
        second = bool(getattr(model.config, "second_stage", False))
        if not second and (objectness_weight > 0 or box_regression):
            raise KatazukeError("objectness re-scoring and box regression need a second-stage "
                                "classifier (ClassifierConfig.second_stage)")
        self.model = model
        self.fusion_weight = float(fusion_weight)
        self.objectness_weight = float(objectness_weight)
        self.box_regression = bool(box_regression)
        self.top_k = int(top_k)
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.metadata: dict = {}
        self.path = ""

    @classmethod
    def from_file(cls, path: str | Path, top_k: int = 32, min_score: float = 0.05,
                  fusion_weight: float | None = None, objectness_weight: float | None = None,
                  nms_iou: float = 0.5) -> "CategoryRefiner":
        """Load a classifier file with its stored settings (``None`` = stored value)."""
        model, payload = load_classifier(path)
        w = payload.get("fusion_weight", 1.0) if fusion_weight is None else fusion_weight
        a = payload.get("objectness_weight", 0.0) if objectness_weight is None else objectness_weight
        ref = cls(model, w, top_k, min_score, a, bool(payload.get("box_regression", False)), nms_iou)
        ref.metadata = payload.get("extra", {})
        ref.path = str(path)
        return ref

    def infer(self, rgb: np.ndarray, depth_m: np.ndarray, boxes_xyxy: np.ndarray
              ) -> dict[str, np.ndarray]:
        """Network outputs for the boxes of one image: ``p_cls`` (N, C), and for a second-stage
        network ``p_obj`` (N,) and corrected ``boxes`` (N, 4)."""
        import torch

        cfg = self.model.config
        x, sc = make_crops(rgb, depth_m, boxes_xyxy, cfg)
        c = cfg.num_categories
        if len(x) == 0:
            return {"p_cls": np.zeros((0, c)), "p_obj": np.zeros(0), "boxes": np.zeros((0, 4))}
        self.model.eval()
        with torch.inference_mode():
            out = self.model(x, sc).double()
        res = {"p_cls": torch.softmax(out[:, :c], 1).numpy()}
        if cfg.second_stage:
            res["p_obj"] = torch.sigmoid(out[:, c]).numpy()
            res["boxes"] = decode_boxes(crop_windows(boxes_xyxy, cfg), out[:, c + 1:c + 5].numpy())
        return res

    def selected(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """Indices of the boxes this refiner looks at: the ``top_k`` best with score >= min_score."""
        return np.where(raw["scores"] >= self.min_score)[0][:self.top_k]

    def apply(self, raw: dict[str, np.ndarray], sel: np.ndarray, outputs: dict[str, np.ndarray],
              fusion_weight: float, objectness_weight: float, box_regression: bool
              ) -> dict[str, np.ndarray]:
        """Raw detections with :meth:`infer` outputs for boxes ``sel`` merged in (a copy)."""
        from katazuke.perception.detection.boxes import nms

        out = dict(raw)
        if len(sel) == 0:
            return out
        probs = raw["category_probs"].copy()
        probs[sel] = fuse_probs(probs[sel], outputs["p_cls"], fusion_weight)
        out["category_probs"] = probs
        if objectness_weight == 0.0 and not box_regression:
            return out
        scores = raw["scores"].copy()
        boxes = raw["boxes"].copy()
        if objectness_weight > 0:
            scores[sel] = (scores[sel] ** (1.0 - objectness_weight)
                           * np.clip(outputs["p_obj"], 1e-6, 1.0) ** objectness_weight)
        if box_regression:
            boxes[sel] = outputs["boxes"]
        keep = nms(boxes, scores, self.nms_iou)
        return {"boxes": boxes[keep], "scores": scores[keep], "category_probs": probs[keep]}

    def refine(self, rgb: np.ndarray, depth: np.ndarray, raw: dict[str, np.ndarray]
               ) -> dict[str, np.ndarray]:
        """Copy of one image's raw detections (``boxes``, ``scores``, ``category_probs``) with its
        ``top_k`` boxes scoring at least ``min_score`` re-scored by the network."""
        sel = self.selected(raw)
        if len(sel) == 0:
            return dict(raw)
        outputs = self.infer(rgb, depth_metres(depth), raw["boxes"][sel])
        return self.apply(raw, sel, outputs, self.fusion_weight, self.objectness_weight,
                          self.box_regression)
