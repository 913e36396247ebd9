"""``katazuke demo``: the README's main job, the simulated world end to end.

Until the tidy-up pipeline is wired in, the demo is the scripted tour: the simulator
and its ROS 2 bridge come up (launch/sim.launch.xml), the robot tours the room on a
scripted path closed on odometry while the head sweeps, a bag of the camera, odometry,
tf and joint topics is recorded, and the head camera video (``head_camera.mp4``) and a
top view of the room with the driven path (``top_view.png``) are written to ``--out``
(default ``out/demo``). See :mod:`katazuke.bench.tour`.
"""
from __future__ import annotations

import argparse

from katazuke.cli import sim_tour

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sim_tour.add_arguments(parser, default_out="out/demo")


def main(args: argparse.Namespace) -> int:
    return sim_tour.main(args)
