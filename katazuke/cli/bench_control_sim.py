"""``katazuke bench control-sim``: LQR vs GPC base tracking in the simulator.

The work is :mod:`katazuke.bench.control_sim`; this module parses the options and writes
``<out>/control_sim.{json,md}`` and ``<out>/control_sim_*.png``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="one seed, 30 s figure-eight, no no-push control run")
    parser.add_argument("--seed", type=int, default=0, help="first seed (schedule and odometry noise)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (ignored with --quick)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"),
                        help="output folder for control_sim.json / .md / _*.png")
    parser.add_argument("--no-feedforward", action="store_true",
                        help="do not add the reference velocity to the tracker command")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import control_sim
    from katazuke.bench.harness import write_results

    cfg = control_sim.ControlSimBenchConfig(quick=args.quick, seed=args.seed, seeds=args.seeds,
                                            feedforward=not args.no_feedforward,
                                            plot_dir=str(args.out))
    results = control_sim.run(cfg)
    jpath, mpath = write_results("control_sim", results, control_sim.markdown(results), args.out,
                                 packages=("pybullet", "katazuke"), bars=control_sim.BARS)
    bar = results["bar"]
    print(f"wrote {jpath} and {mpath}; worst GPC/LQR RMS ratio {bar['worst_ratio']:.3f} "
          f"({'met' if bar['met'] else 'NOT met'})")
    return 0
