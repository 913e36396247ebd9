"""``katazuke sim tour``: the scripted tour of the simulated room, end to end.

Brings up ``launch/sim.launch.xml`` with ``tour:=true`` (simulator bridge + tour node, plus
the ``bag_recorder`` node unless ``--no-bag``), watches the robot over ROS 2 and writes the
bag, ``head_camera.mp4``, ``top_view.png`` and ``summary.json`` into ``--out``. The work is
:mod:`katazuke.bench.tour`; this module parses the options.
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "options_from_args", "main"]


def add_arguments(parser: argparse.ArgumentParser, default_out: str = "out/tour") -> None:
    parser.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")
    parser.add_argument("--seed", type=int, default=0, help="room seed (default 0)")
    parser.add_argument("--profile", default="none", choices=("none", "train", "test"),
                        help="room randomization profile (default none)")
    parser.add_argument("--duration", type=float, default=90.0,
                        help="stop after this many seconds of sim time even if the tour is "
                             "not finished (default 90)")
    parser.add_argument("--no-bag", action="store_true", help="do not record a bag")
    parser.add_argument("--real-time-factor", type=float, default=1.0,
                        help="sim seconds per wall second; 0 = as fast as possible (default 1)")
    parser.add_argument("--gui", action="store_true", help="open the PyBullet window")


def options_from_args(args: argparse.Namespace):
    """The :class:`~katazuke.bench.tour.TourOptions` of the parsed command line."""
    from katazuke.bench.tour import TourOptions

    return TourOptions(out=Path(args.out), seed=args.seed, profile=args.profile,
                       duration_s=float(args.duration), bag=not args.no_bag,
                       real_time_factor=float(args.real_time_factor), gui=bool(args.gui))


def main(args: argparse.Namespace) -> int:
    from katazuke.bench.tour import format_summary, run_tour

    print(format_summary(run_tour(options_from_args(args))))
    return 0
