"""The ``katazuke`` command line.

Each command lives in its own module under ``katazuke.cli`` exposing::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def main(args: argparse.Namespace) -> int: ...

Modules must import heavy dependencies (torch, pybullet, rclpy) inside ``main`` so that
``katazuke --help`` stays fast. A :class:`~katazuke.errors.KatazukeError` raised by a
command is printed as one line naming what to fix, without a traceback (exit code 2).
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

from katazuke.errors import KatazukeError

__all__ = ["main", "COMMANDS", "GROUPS"]

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "launch": ("katazuke.cli.launch", "run a ROS 2 launch XML file (no ROS launch package needed)"),
    "rotavg": ("katazuke.cli.rotavg", "certified chordal rotation averaging of a view graph"),
    "demo": ("katazuke.cli.demo", "the simulated tidy-up of a seeded room, end to end (README main job)"),
    "env": ("katazuke.cli.env", "print shell exports for the ROS 2 workspace"),
    "instruct": ("katazuke.cli.instruct", "give the running tidy stack a text command "
                 "(\"tidy up\", \"put the toy in the red bin\") and print its answers"),
    "say": ("katazuke.cli.say", "speak a command (espeak-ng) into the running voice stack's "
            "microphone topic and print its answers"),
}
# group -> {sub: (module, help)}
GROUPS: dict[str, dict[str, tuple[str, str]]] = {
    "bag": {
        "record": ("katazuke.cli.bag_record", "record topics to a rosbag2 directory (MCAP or sqlite3)"),
        "play": ("katazuke.cli.bag_play", "replay a bag with its recorded timing"),
        "info": ("katazuke.cli.bag_info", "summarise a bag (rosbag2 or ROS 1)"),
    },
    "sim": {
        "dataset": ("katazuke.cli.sim_dataset", "generate a domain-randomized dataset"),
        "tour": ("katazuke.cli.sim_tour", "scripted tour of the simulated room (bag, MP4, top view)"),
        "contact-sheet": ("katazuke.cli.sim_contact_sheet", "contact sheet of randomized frames"),
        "ndf-data": ("katazuke.cli.sim_ndf_data", "procedural NDF training data: mugs, bowls, "
                     "bottles with occupancy labels and rendered partial clouds (resumable)"),
    },
    "train": {
        "detector": ("katazuke.cli.train_detector", "train the objectness + category detector"),
        "classifier": ("katazuke.cli.train_classifier",
                       "train the crop classifier that re-scores detector categories"),
        "grounding": ("katazuke.cli.train_grounding",
                      "train the instruction grounding network (intent, target, destination)"),
        "ndf": ("katazuke.cli.train_ndf", "train the Neural Descriptor Field occupancy network "
                "(mugs, bowls, bottles) on `katazuke sim ndf-data` output"),
    },
    "eval": {
        "detector": ("katazuke.cli.eval_detector", "evaluate the detector (mAP, recall)"),
    },
    "bench": {
        "control": ("katazuke.cli.bench_control", "LQR vs GPC regret benchmark"),
        "control-iid": ("katazuke.cli.bench_control_iid",
                        "GPC vs LQR under i.i.d. noise over many seeds (why 'uniform' cannot be won)"),
        "control-sim": ("katazuke.cli.bench_control_sim",
                        "LQR vs GPC base tracking in the simulator under pushes and friction changes"),
        "rotavg": ("katazuke.cli.bench_rotavg", "rotation averaging vs GTSAM Shonan"),
        "ndf": ("katazuke.cli.bench_ndf", "NDF descriptor equivariance, held-out occupancy, "
                "time per grasp optimisation and pose transfer"),
        "grounding": ("katazuke.cli.bench_grounding",
                      "instruction grounding on held-out rooms vs the rule-based parser"),
        "bag": ("katazuke.cli.bench_bag", "bag playback timing and recording loss"),
        "replay": ("katazuke.cli.bench_replay",
                   "deterministic replay of the main job's bag through perception"),
        "launch": ("katazuke.cli.bench_launch", "launcher shutdown time"),
        "sim": ("katazuke.cli.bench_sim", "simulator frame rate and dataset throughput"),
        "detector": ("katazuke.cli.bench_detector",
                     "detector accuracy, latency, node rate and the object-map tour"),
        "tidy": ("katazuke.cli.bench_tidy",
                 "end-to-end tidy-up episodes in the simulator, scored from ground truth (resumable)"),
        "grasp": ("katazuke.cli.bench_grasp",
                  "grasp planner pick success per category vs the scripted grasp"),
        "sim-bridge": ("katazuke.cli.bench_sim_bridge", "sim bridge real time vs the bare sim"),
        "network": ("katazuke.cli.bench_network",
                    "DDS sockets exposed by default; the LAN switch across network namespaces"),
        "flood": ("katazuke.cli.bench_flood", "sim bridge and controller loop rate under a "
                  "flood of bad commands"),
        "setup": ("katazuke.cli.bench_setup", "setup command timing"),
        "speech": ("katazuke.cli.bench_speech",
                   "speech recognition WER, RTF, calibration and false triggers"),
        "report": ("katazuke.cli.bench_report", "merge docs/bench/*.md into docs/BENCHMARKS.md"),
    },
}


def _add(sub: argparse._SubParsersAction, name: str, module: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=help_)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        p.set_defaults(_missing=module)
        return
    mod.add_arguments(p)
    p.set_defaults(_run=mod.main)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="katazuke", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        _add(sub, name, module, help_)
    for group, subs in GROUPS.items():
        gp = sub.add_parser(group, help=f"{group} commands")
        gsub = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
        for name, (module, help_) in subs.items():
            _add(gsub, name, module, help_)
        gp.set_defaults(_group_parser=gp)
    return parser


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``katazuke`` console script."""
    from katazuke.rosenv import ensure_ros_environment

    ensure_ros_environment(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_missing", None):
        print(f"katazuke: '{args._missing}' is not installed in this checkout", file=sys.stderr)
        return 2
    run = getattr(args, "_run", None)
    if run is None:
        (getattr(args, "_group_parser", None) or parser).print_help()
        return 2
    if args.command == "bench":  # provenance: load average and wall time from here on
        from katazuke.bench.harness import start
        start()
    # SIGTERM ends a command as Ctrl-C does, through its clean-up (a bench or the demo stops
    # the stack it launched); commands with their own handler (launch, bag record) set it later
    # and Ctrl-C raises KeyboardInterrupt even where the shell started us with SIGINT ignored
    # (a background job: the bench then ignored `kill -INT`)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return int(run(args) or 0)
    except KatazukeError as exc:
        print(f"katazuke {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
