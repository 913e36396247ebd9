"""Second-stage category classifier on object crops (RGB + relative depth).

The one-stage detector finds objects well but names them poorly; this stage looks again at
each detected box on a full-resolution RGB-D crop at one canonical scale, re-scores its
category (and, as a second stage, its objectness) and corrects the box. The package mirrors
the detector's own split:

- :mod:`.model`: :class:`ClassifierConfig`, the network (:func:`CropClassifier`), crop
  geometry (:func:`make_crops`, :func:`crop_windows`, box targets) and the weights file
  (:func:`save_classifier` / :func:`load_classifier`);
- :mod:`.refiner`: inference, :class:`CategoryRefiner` and :func:`fuse_probs`;
- :mod:`.train`: :class:`ClassifierTrainConfig`, :func:`train_classifier`, the choice of the
  inference settings (:func:`choose_settings`, :func:`retune_settings`).

torch and matplotlib are imported lazily, inside the functions that need them.
"""
from katazuke.perception.detection.classifier.model import (DEFAULT_CLASSIFIER_WEIGHTS,
                                                            ClassifierConfig, CropClassifier,
                                                            box_targets, crop_windows,
                                                            decode_boxes, depth_metres,
                                                            jitter_boxes, load_classifier,
                                                            make_crops, save_classifier)
from katazuke.perception.detection.classifier.refiner import CategoryRefiner, fuse_probs
# `_batches` is re-exported for tests/detection/test_classifier.py (it builds training crops).
from katazuke.perception.detection.classifier.train import (ClassifierTrainConfig, _batches,
                                                            choose_settings, retune_settings,
                                                            stage_loss, train_classifier)

__all__ = ["ClassifierConfig", "ClassifierTrainConfig", "CropClassifier", "make_crops",
           "depth_metres", "save_classifier", "load_classifier", "CategoryRefiner",
           "train_classifier", "DEFAULT_CLASSIFIER_WEIGHTS", "fuse_probs", "retune_settings",
           "choose_settings", "stage_loss", "box_targets", "decode_boxes", "crop_windows",
           "jitter_boxes"]
