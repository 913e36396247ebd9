"""Configuration of grounding: training, clarification and the map's imperfections."""
from __future__ import annotations

from katazuke.config import dataclass, field, in_range, non_negative, positive

__all__ = ["TrainConfig", "ClarifyConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """How ``katazuke train grounding`` makes data and trains (CPU, a few minutes)."""

    seed: int = field(default=0, metadata={"help": "seed of the data, the noise and the "
                                                   "initialisation"})
    train_rooms: int = positive(300, "train-profile rooms the instructions are about")
    calib_rooms: int = positive(60, "further train-profile rooms of the calibration split "
                                    "(when to ask); never trained on")
    examples_per_room: int = positive(40, "instructions generated per room")
    asr_fraction: float = in_range(0.5, "share of training instructions passed through the "
                                        "ASR-noise channel", 0.0, 1.0)
    epochs: int = positive(6, "passes over the training instructions")
    batch_size: int = positive(64, "instructions per step")
    lr: float = positive(3e-3, "AdamW learning rate")
    weight_decay: float = non_negative(1e-4, "AdamW weight decay")
    threads: int = positive(1, "torch CPU threads")


@dataclass(frozen=True)
class ClarifyConfig:
    """When grounding asks back (calibrated on the calibration split)."""

    max_question_rate: float = in_range(0.15, "largest share of object instructions of the "
                                              "calibration split that may get a question; the "
                                              "conformal level is the tightest that keeps to "
                                              "it", 0.0, 1.0)
    min_transcript_confidence: float = in_range(0.35, "a transcript below this confidence "
                                                      "is confirmed before acting", 0.0, 1.0)
    max_options: int = positive(3, "objects named in one question at most")
