"""Class-agnostic objectness detector with a category head (CenterNet-style, PyTorch).

``Detector(DetectorConfig()).detect(rgb, depth)`` returns :class:`Detection` s: box (xywh
pixels), objectness, best category (one of :data:`CATEGORIES` or ``"unknown"``) and all
category scores. RGB-D weights (``ModelConfig.in_channels == 4``, :attr:`Detector.uses_depth`)
need the depth image registered to the colour image; RGB weights ignore it. With depth, a
second stage (:mod:`.classifier`, committed ``weights/classifier.pt``) looks again at the
best boxes on full-resolution RGB-D crops: it re-scores their categories and objectness and
corrects the boxes. Training (:mod:`.train`, :mod:`.classifier`), COCO-style metrics
(:mod:`.evaluation`) and plotting (:mod:`.viz`) import torch/matplotlib lazily.
"""
from katazuke.perception.detection.config import (CATEGORIES, UNKNOWN, DetectorConfig,
                                                   ModelConfig, TrainConfig)
from katazuke.perception.detection.detector import DEFAULT_WEIGHTS, Detection, Detector

__all__ = ["CATEGORIES", "UNKNOWN", "DetectorConfig", "ModelConfig", "TrainConfig",
           "Detector", "Detection", "DEFAULT_WEIGHTS"]
