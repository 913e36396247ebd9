"""Configs of the Neural Descriptor Field library (frozen dataclasses, YAML-loadable)."""
from __future__ import annotations

import math

from katazuke.config import dataclass, field, in_range, non_negative, positive

__all__ = ["NdfModelConfig", "PoseOptConfig", "NdfDataConfig", "NdfTrainConfig"]


@dataclass(frozen=True)
class NdfModelConfig:
    """Architecture of :class:`~katazuke.perception.ndf.model.NdfNetwork`."""

    hidden: int = in_range(32, "vector channels of the VN-PointNet encoder blocks", 2, math.inf)
    latent: int = in_range(32, "vector channels of the shape code z (latent x 3)", 3, math.inf)
    encoder_blocks: int = in_range(3, "VN ResNet blocks of the encoder", 1, math.inf)
    knn: int = in_range(8, "neighbours of the first (edge) layer, counting the point itself",
                        2, math.inf)
    decoder_hidden: int = in_range(64, "width of the occupancy decoder's layers", 2, math.inf)
    decoder_blocks: int = in_range(3, "ResNet blocks of the occupancy decoder", 1, math.inf)
    negative_slope: float = in_range(0.2, "slope of the VN leaky ReLU", 0.0, 0.99)
    scale_m: float = positive(0.1, "metres per network unit: clouds and queries are centred at "
                                   "the cloud's mean and divided by this (fixed, so the field "
                                   "stays SE(3)- but not scale-equivariant)")


@dataclass(frozen=True)
class PoseOptConfig:
    """Settings of :func:`~katazuke.perception.ndf.optimize.minimise_pose_energy`."""

    restarts: int = in_range(32, "random initial poses optimised together (one batch)", 1, math.inf)
    steps: int = in_range(100, "Adam steps per restart", 1, math.inf)
    lr: float = positive(0.05, "Adam step size (cosine decay to 2 %); translation in units of the cloud's RMS "
                               "radius, rotation in radians")
    prune_at: float = in_range(0.3, "fraction of the steps after which the worse restarts are "
                                    "dropped (0 = never)", 0.0, 1.0)
    keep_fraction: float = in_range(0.25, "share of the restarts kept at the pruning step",
                                    0.0, 1.0)
    init_translation_std: float = positive(
        0.5, "initial translations: the cloud's mean plus normal noise of this many times the "
             "cloud's RMS radius per axis")
    penetration_weight: float = non_negative(
        1.0, "weight of the penetration term (gripper collision points closer than the margin "
             "to an observed point); 0 = off")
    penetration_margin_m: float = positive(0.008, "collision points closer than this to an "
                                                  "observed point are penalised, m")
    max_points: int = in_range(512, "observed points kept (random subset) for the penetration "
                                    "term", 1, math.inf)


@dataclass(frozen=True)
class NdfDataConfig:
    """Procedural training data of :func:`~katazuke.perception.ndf.data.make_ndf_dataset`."""

    surface_points: int = in_range(2048, "points sampled uniformly on each mesh's surface",
                                   16, math.inf)
    views: int = in_range(4, "partial clouds rendered per instance from random viewpoints",
                          1, math.inf)
    view_points: int = in_range(1024, "points kept per partial cloud (resampled)", 16, math.inf)
    image_size: int = in_range(128, "virtual depth camera width = height, pixels", 16, math.inf)
    distance_m: tuple[float, float] = positive(
        (0.5, 1.2), "camera distance range from the object's centre, m")
    depth_noise_m: float = non_negative(0.0015, "depth noise sigma at 1 m, m (grows with d^2)")
    dropout: float = in_range(0.05, "share of valid depth returns dropped at random", 0.0, 0.9)
    grazing_cos: float = in_range(0.1, "returns whose |cos| between ray and surface normal is "
                                       "below this are dropped (sensor-like edge loss)", 0.0, 0.9)
    queries: int = in_range(4096, "occupancy query points per instance", 16, math.inf)
    near_fraction: float = in_range(0.6, "share of queries sampled near the surface (the rest "
                                         "uniform in the padded box)", 0.0, 1.0)
    near_sigma_m: tuple[float, float] = positive(
        (0.003, 0.012), "two normal offsets (m) of near-surface queries, half each")
    box_padding_m: float = non_negative(0.03, "padding of the uniform-query box around the "
                                              "object, m")
    segments: int = in_range(48, "angular segments of the revolved meshes", 8, math.inf)


@dataclass(frozen=True)
class NdfTrainConfig:
    """Training settings of :func:`~katazuke.perception.ndf.train.train_ndf`."""

    seed: int = field(default=0, metadata={"help": "seed of init, batches and cloud sampling"})
    epochs: int = in_range(60, "passes over the training instances", 1, math.inf)
    batch_size: int = in_range(16, "instances per step", 1, math.inf)
    lr: float = positive(1e-3, "peak Adam learning rate (cosine decay)")
    points: int = in_range(256, "cloud points fed to the encoder per instance (a step of 16 "
                                 "instances: ~0.5 s at 256, ~1.5 s at 512 on one core)",
                           8, math.inf)
    queries: int = in_range(512, "occupancy queries per instance and step", 8, math.inf)
    partial_fraction: float = in_range(0.75, "share of steps' clouds that are partial views "
                                             "(the rest full surface samples)", 0.0, 1.0)
    time_budget_min: float = non_negative(0.0, "stop after this many minutes of steps "
                                               "(0 = no limit); the LR schedule fits whichever "
                                               "ends first")
    num_threads: int = in_range(1, "torch threads", 1, math.inf)
    eval_instances: int = in_range(8, "held-out instances per category evaluated after each "
                                      "epoch (0 = none; all are at the end)", 0, math.inf)
    model: NdfModelConfig = field(default_factory=NdfModelConfig,
                                  metadata={"help": "architecture"})
