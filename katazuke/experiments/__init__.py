"""katazuke.experiments: evaluation harnesses that join libraries with the simulator.

The libraries (``katazuke.control``, ``katazuke.perception``, ...) never import the
simulator; an experiment here may import both, feeds the algorithm only what a robot
would measure (e.g. odometry) and uses the simulator's ground truth for scoring only.
"""
from katazuke.experiments.control_sim import (ControlSimConfig, DisturbanceEvent, EpisodeResult,
                                              Reference, compare_controllers,
                                              default_schedule, figure_eight,
                                              identify_base_model, room_tour, run_episode)

__all__ = ["ControlSimConfig", "DisturbanceEvent", "EpisodeResult", "Reference",
           "compare_controllers", "default_schedule", "figure_eight", "identify_base_model",
           "room_tour", "run_episode"]
