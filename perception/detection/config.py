"""Configs of the objectness + category detector (frozen dataclasses, YAML-loadable)."""
from __future__ import annotations

import math

from katazuke.config import dataclass, field, in_range, non_negative

__all__ = ["CATEGORIES", "UNKNOWN", "ModelConfig", "DetectorConfig", "TrainConfig"]

#: Category names in the fixed order of the simulator contract (ids 1..6 in COCO files).
CATEGORIES: tuple[str, ...] = ("toy", "kitchenware", "stationery", "bottle", "box", "soft")
#: Name reported when no known category is confident.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of :class:`~katazuke.perception.detection.model.ObjectnessNet`."""

    widths: tuple[int, int, int, int] = field(
        default=(24, 40, 72, 120),
        metadata={"help": "channels at strides 4, 8, 16, 32 of the backbone"})
    head_width: int = field(default=48, metadata={"help": "channels of the stride-4 head"})
    num_categories: int = field(default=6, metadata={"help": "known categories (contract: 6)"})
    in_channels: int = field(default=3, metadata={
        "help": "3 = RGB input; 4 = RGB + the registered depth image (inverse depth channel, "
                "see model.depth_channel)"})


@dataclass(frozen=True)
class DetectorConfig:
    """Inference settings of :class:`~katazuke.perception.detection.Detector`."""

    weights: str = field(default="", metadata={
        "help": "path of a detector .pt file; '' = the committed "
                "katazuke/perception/detection/weights/detector.pt"})
    score_threshold: float = in_range(
        0.3, "minimum objectness [0,1] of a reported detection", 0.0, 1.0)
    nms_iou: float = in_range(0.5, "class-agnostic NMS IoU threshold", 0.0, 1.0)
    max_detections: int = in_range(100, "detections per image at most", 1, math.inf)
    peak_kernel: int = in_range(
        3, "odd max-pool window (cells) for heatmap peak extraction", 1, math.inf)
    unknown_threshold: float = in_range(
        0.5, "when the best known-category probability is below this, probability mass moves "
             "to 'unknown' (see decode.category_scores_with_unknown)", 0.0, 1.0)
    num_threads: int = non_negative(
        0, "torch intra-op threads for inference; 0 leaves torch's setting alone")
    flip_test: bool = field(default=False, metadata={
        "help": "also run the network on the mirrored image and average the two (heatmap, "
                "size, category); about twice the network time"})
    classifier_weights: str = field(default="", metadata={
        "help": "crop classifier .pt that re-scores categories (needs depth); '' = the committed "
                "katazuke/perception/detection/weights/classifier.pt, 'none' = the detector's "
                "own category head only"})
    classifier_top_k: int = non_negative(
        32, "boxes per image (highest objectness first) the crop classifier re-scores")
    classifier_min_score: float = in_range(
        0.05, "boxes below this objectness keep the detector's categories", 0.0, 1.0)
    classifier_fusion: float = field(default=-1.0, metadata={
        "help": "weight w of the classifier in p ~ p_det^(1-w) p_cls^w; -1 = the value stored "
                "in the classifier file (chosen on validation images)"})
    classifier_objectness: float = field(default=-1.0, metadata={
        "help": "weight a of a second-stage classifier's objectness in score = s_det^(1-a) "
                "p_obj^a; -1 = the value stored in the classifier file"})


@dataclass(frozen=True)
class TrainConfig:
    """Training settings of :func:`~katazuke.perception.detection.train.train`."""

    epochs: int = field(default=30, metadata={"help": "passes over the training set"})
    batch_size: int = field(default=16, metadata={"help": "images per step"})
    lr: float = field(default=3e-3, metadata={"help": "peak AdamW learning rate (cosine decay)"})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    warmup_steps: int = field(default=100, metadata={"help": "linear warm-up steps"})
    seed: int = field(default=0, metadata={"help": "seed of weights init, shuffling, augmentation"})
    input_width: int = field(default=320, metadata={"help": "network input width, pixels"})
    input_height: int = field(default=240, metadata={"help": "network input height, pixels"})
    crop: bool = field(default=False, metadata={
        "help": "train on native-resolution crops of input_width x input_height (objects keep "
                "their pixel size, 4x cheaper at half size); inference then runs on whole "
                "images at the dataset's resolution. False: whole images resized to the input"})
    num_threads: int = field(default=2, metadata={"help": "torch threads while training"})
    val_fraction: float = field(default=0.05, metadata={
        "help": "fraction of training images held back to log validation mAP per epoch"})
    max_images: int = field(default=0, metadata={"help": "use at most this many images (0 = all)"})
    time_budget_min: float = field(default=0.0, metadata={
        "help": "stop after this many minutes of training (0 = no limit); the LR schedule is "
                "fitted to whichever of epochs / budget ends first"})
    hflip: bool = field(default=True, metadata={"help": "random horizontal flips"})
    color_jitter: float = field(default=0.3, metadata={
        "help": "strength of brightness/contrast/saturation jitter (0 = off)"})
    channel_shuffle_p: float = field(default=0.2, metadata={
        "help": "probability of permuting RGB channels (texture/colour invariance)"})
    scale_jitter: float = field(default=0.25, metadata={
        "help": "random zoom range: scale in [1-s, 1+s] around a random centre"})
    min_box_px: float = field(default=2.0, metadata={"help": "boxes smaller than this are dropped"})
    depth_noise: float = field(default=1.0, metadata={
        "help": "RGB-D models: scale of the simulated depth-sensor noise added while training "
                "(0 = perfect sim depth): per-pixel sigma 1.5 mm + 2.5 mm/m^2 * d^2, a per-image "
                "scale error of +-2 %, and random invalid patches"})
    depth_holes: int = field(default=6, metadata={
        "help": "RGB-D models: up to this many random invalid (zero) depth patches per image"})
    heatmap_weight: float = field(default=1.0, metadata={
        "help": "weight of the objectness focal loss (size, offset, GIoU and category weights "
                "are 1, 1, 2, 1)"})
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "architecture"})
