"""``katazuke bench control``: LQR vs online GPC regret benchmark.

The work is :mod:`katazuke.bench.control`; this module parses the options and writes
``<out>/control.json``, ``<out>/control.md`` and ``<out>/control_*.png``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["add_arguments", "main"]

def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.bench.control import GPC_SETTINGS as _GPC  # cheap: numpy loads in main

    parser.add_argument("--quick", action="store_true",
                        help="short run (T=2000, 20 dlqr systems, fewer timing steps)")
    parser.add_argument("--T", type=int, default=10000, help="horizon of each rollout (steps)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"),
                        help="output folder for control.json / control.md / control_*.png")
    parser.add_argument("--seed", type=int, default=0, help="seed of systems and disturbances")
    parser.add_argument("--scale", type=float, default=0.1,
                        help="RMS per component of every disturbance family")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats (median taken)")
    parser.add_argument("--families", default=",".join(
        ("gaussian", "uniform", "sinusoidal", "step", "random_walk", "adversarial")),
        help="comma-separated disturbance families to run")
    parser.add_argument("--gpc-lr", type=float, default=_GPC["lr"], help="GPC base step size")
    parser.add_argument("--gpc-radius", type=float, default=_GPC["radius"],
                        help="GPC projection radius (also the comparator class)")
    parser.add_argument("--gpc-horizon", type=int, default=_GPC["horizon"], help="GPC memory H")
    parser.add_argument("--gpc-schedule", default=_GPC["lr_schedule"],
                        choices=["constant", "inv_sqrt", "inv_t", "adagrad"],
                        help="GPC step-size schedule")


def main(args: argparse.Namespace) -> int:
    # Small dense problems on a shared 2-core machine: multi-threaded OpenBLAS is 10-30x
    # slower here (threads spin against other jobs). Only effective if numpy is not yet loaded.
    numpy_preloaded = "numpy" in sys.modules
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from katazuke.bench import control
    from katazuke.bench.harness import write_results
    from katazuke.config import load_config
    from katazuke.control.gpc import GPCConfig

    gpc = load_config(GPCConfig, {"horizon": args.gpc_horizon, "lr": args.gpc_lr,
                                  "lr_schedule": args.gpc_schedule, "radius": args.gpc_radius},
                      where="bench control --gpc-* options")
    cfg = control.ControlBenchConfig(
        quick=args.quick, T=args.T, seed=args.seed, scale=args.scale, repeats=args.repeats,
        families=tuple(f.strip() for f in args.families.split(",") if f.strip()), gpc=gpc)
    results = control.run(cfg)
    results["settings"]["numpy_loaded_before_thread_limit"] = numpy_preloaded
    control.plots(results, args.out)
    _, mpath = write_results("control", results, control.markdown(results), args.out,
                             packages=("control", "katazuke"), bars=control.BARS)
    print(mpath.read_text())
    return 0
