"""``katazuke demo``: the README's main job, the simulated tidy-up of a seeded room.

Brings up the whole stack headless (``launch/tidy_sim.launch.xml``: simulator bridge,
detector, object map, navigator, controller, manipulator, task manager), sends one "tidy
up" goal and writes to ``--out`` (default ``out/demo``):

* ``tidy.mp4``: the head camera beside a top view of the cost map, the plan, the robot and
  each item's state (:class:`katazuke.bench.tidy_view.TidyView`);
* ``summary.json``: objects tidied (scored from the simulator's ground truth by the
  evaluator only), sim seconds per item, real-time factor, failures by cause, per object;
* ``bag/``: the bag of the run; ``logs/``: every node's log.

The terminal shows progress (items done / total, current step). It ends by itself: when
the task manager reports the task finished, or when the sim-time budget (150 s + 90 s per
object) runs out. The scripted tour of earlier versions is ``katazuke sim tour``. The work
is :func:`katazuke.bench.tidy.run_demo`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "main", "DEFAULT_SEED", "DEFAULT_OBJECTS"]

#: the default room: 3 objects, small enough to finish in a few minutes.
DEFAULT_SEED = 1
DEFAULT_OBJECTS = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"room seed (default {DEFAULT_SEED})")
    parser.add_argument("--objects", type=int, default=DEFAULT_OBJECTS,
                        help=f"objects in the room (default {DEFAULT_OBJECTS})")
    parser.add_argument("--profile", default="none", choices=("none", "train", "test"),
                        help="room randomization profile (default none)")
    parser.add_argument("--real-time-factor", type=float, default=1.0,
                        help="sim seconds per wall second of the bridge; 0 = as fast as "
                             "possible (default 1)")


def format_summary(s: dict) -> str:
    """The few lines the terminal shows at the end."""
    causes = ", ".join(f"{c} x{n}" for c, n in s["failures_by_cause"].items()) or "none"
    return "\n".join([
        f"tidy-up of room {s['seed']} ({s['profile']}): {s['tidied']} of {s['objects']} objects "
        f"in their correct container ({100 * s['success_rate']:.0f} %)",
        f"  {s['sim_s']:.0f} sim s ({s['sim_s_per_item']:.0f} s per object), real-time factor "
        f"{s['real_time_factor']:.2f}" + (", budget used up" if s["budget_exhausted"] else ""),
        f"  failures by cause: {causes}; node respawns {s['node_respawns']}, unhandled "
        f"exceptions {s['unhandled_exceptions']}",
        f"  wrote {s['files']['video']}, {s['files']['bag']}/, {Path(s['files']['video']).parent}"
        "/summary.json"])


def main(args: argparse.Namespace) -> int:
    from katazuke.bench.tidy import run_demo
    from katazuke.errors import KatazukeError

    if args.objects < 1:
        print(f"katazuke demo: --objects must be at least 1, got {args.objects}", file=sys.stderr)
        return 2
    try:
        summary = run_demo(Path(args.out), seed=args.seed, objects=args.objects,
                           profile=args.profile, real_time_factor=args.real_time_factor)
    except KatazukeError as exc:
        print(f"katazuke demo: {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0
