"""katazuke.experiments: evaluation harnesses that join libraries with the simulator.

The libraries (``katazuke.control``, ``katazuke.perception``, ...) never import the
simulator; an experiment here may import both, feeds the algorithm only what a robot
would measure (e.g. odometry) and uses the simulator's ground truth for scoring only.
Importing this package is cheap: the simulator loads when an experiment runs.
"""
from katazuke.experiments.control_sim import (TOUR_WAYPOINTS, ControlSimConfig, DisturbanceEvent,
                                              EpisodeResult, Reference, compare_controllers,
                                              constant_push_schedule, default_schedule,
                                              figure_eight, force_and_friction,
                                              identify_base_model, plot_comparison, room_tour,
                                              run_episode)

__all__ = ["TOUR_WAYPOINTS", "ControlSimConfig", "DisturbanceEvent", "EpisodeResult", "Reference",
           "compare_controllers", "constant_push_schedule", "default_schedule", "figure_eight",
           "force_and_friction", "identify_base_model", "plot_comparison", "room_tour",
           "run_episode"]
