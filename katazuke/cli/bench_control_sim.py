"""``katazuke bench control-sim``: LQR vs GPC base tracking in the simulator.

Runs the figure-eight and the room tour under the same scripted pushes and friction
changes with ``mode=lqr`` and ``mode=gpc`` (tracker on odometry, error against ground
truth), for several seeds, plus a least-squares identification of the base model.
Writes ``<out>/control_sim.{json,md}`` and ``<out>/control_sim_*.png``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from katazuke.errors import InputError

__all__ = ["add_arguments", "main"]

BAR_RATIO = 0.8  # GPC RMS <= 0.8 x LQR RMS ("at least 20 % below")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="one seed, 30 s figure-eight, no no-push control run")
    parser.add_argument("--seed", type=int, default=0, help="first seed (schedule and odometry noise)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (ignored with --quick)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"),
                        help="output folder for control_sim.json / .md / _*.png")
    parser.add_argument("--no-feedforward", action="store_true",
                        help="do not add the reference velocity to the tracker command")


def _row(run: dict[str, Any]) -> dict[str, Any]:
    return {"reference": run["reference"], "seed": run["seed"], "ratio": run["ratio"],
            "lqr": run["lqr"].metrics, "gpc": run["gpc"].metrics,
            "lqr_fallbacks": run["lqr"].fallback_reasons,
            "gpc_fallbacks": run["gpc"].fallback_reasons,
            "events": [ev.__dict__ for ev in run["events"]]}


def main(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from katazuke.benchio import median, write_results
    from katazuke.config import config_to_dict
    from katazuke.experiments.control_sim import (ControlSimConfig, compare_controllers,
                                                  figure_eight, identify_base_model,
                                                  plot_comparison, room_tour, run_episode)

    if args.seed < 0 or args.seeds < 1:
        raise InputError(f"--seed must be >= 0 and --seeds >= 1; got {args.seed}, {args.seeds}")
    t_wall = time.time()
    cfg = ControlSimConfig(duration_s=30.0 if args.quick else 60.0,
                           feedforward=not args.no_feedforward)
    seeds = [args.seed] if args.quick else list(range(args.seed, args.seed + args.seeds))
    refs = [figure_eight(cfg.duration_s, cfg.dt, cfg.speed), room_tour(cfg.dt, cfg.speed)]
    total = 2 * len(seeds) * sum(len(r.t) for r in refs)
    if not args.quick:
        total += 5 * sum(len(r.t) for r in refs)
    args.out.mkdir(parents=True, exist_ok=True)

    sysid = {h: identify_base_model(cfg, seed=args.seed, hold=h) for h in (1, 10)}
    with tqdm(total=total, desc="control-sim", unit="tick") as bar:
        def progress(k: int) -> None:  # called every 100 ticks within an episode
            bar.update(100)

        runs = compare_controllers(refs, cfg, seeds, progress=progress)
        baseline = [] if args.quick else compare_controllers(
            refs, ControlSimConfig(duration_s=cfg.duration_s, feedforward=cfg.feedforward,
                                   push_scale=0.0), [args.seed], progress=progress)
        # the controller node tracks waypoints without feedforward: the same disturbances
        # with the reference motion itself left to the feedback
        other_ff = [] if args.quick else compare_controllers(
            refs, ControlSimConfig(duration_s=cfg.duration_s, feedforward=not cfg.feedforward),
            [args.seed], progress=progress)
        # GPC on the identified (held-excitation) model instead of the nominal one
        sysid_gpc = [] if args.quick else [
            (r, run_episode(r, next(x["events"] for x in runs
                                    if x["reference"] == r.name and x["seed"] == args.seed),
                            "gpc", cfg, seed=args.seed, progress=progress,
                            gpc_model=(sysid[10]["A"], sysid[10]["B"])))
            for r in refs]
        bar.update(total - bar.n)
    plots: list[str] = []
    for run in runs:
        if run["seed"] == args.seed:
            plots += plot_comparison(run, str(args.out / f"control_sim_{run['reference']}"))

    per_ref: dict[str, dict[str, float]] = {}
    for name in [r.name for r in refs]:
        rr = [r for r in runs if r["reference"] == name]
        per_ref[name] = {
            "median_ratio": median(r["ratio"] for r in rr),
            "worst_ratio": max(r["ratio"] for r in rr),
            "median_lqr_rms_m": median(r["lqr"].metrics["rms_pos_m"] for r in rr),
            "median_gpc_rms_m": median(r["gpc"].metrics["rms_pos_m"] for r in rr),
            "median_lqr_max_m": median(r["lqr"].metrics["max_pos_m"] for r in rr),
            "median_gpc_max_m": median(r["gpc"].metrics["max_pos_m"] for r in rr),
        }
    all_ratios = [r["ratio"] for r in runs]
    bar_met = max(all_ratios) <= BAR_RATIO
    results = {
        "config": config_to_dict(cfg), "seeds": seeds, "quick": bool(args.quick),
        "model_used": "nominal integrator A = I, B = dt I (the tracker's model)",
        "sysid": {str(h): {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                           for k, v in m.items()} for h, m in sysid.items()},
        "runs": [_row(r) for r in runs], "no_push_runs": [_row(r) for r in baseline],
        "other_feedforward_runs": [_row(r) for r in other_ff],
        "gpc_sysid_model_runs": [{"reference": r.name, "seed": args.seed, "gpc": e.metrics,
                                  "fallbacks": e.fallback_reasons} for r, e in sysid_gpc],
        "per_reference": per_ref, "bar": {"ratio_max": BAR_RATIO, "worst_ratio": max(all_ratios),
                                          "met": bar_met},
        "plots": [Path(p).name for p in plots], "wall_s": time.time() - t_wall,
    }

    cmd = "katazuke bench control-sim" + (" --quick" if args.quick else "") + \
        (f" --seed {args.seed}" if args.seed else "") + \
        (f" --seeds {args.seeds}" if args.seeds != 3 and not args.quick else "") + \
        (" --no-feedforward" if args.no_feedforward else "") + f" --out {args.out}"
    lines = [
        "# Control in simulation: LQR vs GPC base tracking under pushes and friction changes", "",
        f"- Command: `{cmd}` (wall time {results['wall_s']:.0f} s)",
        f"- Sim: TidyEnv profile none, no objects, {cfg.control_hz:g} Hz control, "
        f"{cfg.physics_substeps} physics substeps; tracker `katazuke.control.base_tracker` "
        f"on the sim's wheel odometry (2 % speed noise), error scored against ground truth.",
        f"- References: figure-eight ({cfg.duration_s:g} s, peak {cfg.speed} m/s, yaw swing "
        f"0.3 rad) and a stop-and-go room tour of {len(refs[1].t) * cfg.dt:.0f} s through the "
        f"free floor (minimum-jerk segments, peak {cfg.speed} m/s); feedforward of the reference "
        f"velocity: {'on' if cfg.feedforward else 'off'}.",
        "- Disturbances (same for both modes, per seed): 30 N step push over 15-45 % of the run, "
        "floor friction 0.8 -> 0.25 over 35-70 %, a +-25 N square-wave shove (4 s period) over "
        "55-85 %, three 0.4 s pulses of 80 N; random directions; see `events` in the JSON.",
        f"- GPC: H = {cfg.gpc_horizon}, lr = {cfg.gpc_lr} ({cfg.gpc_lr_schedule}), radius "
        f"{cfg.gpc_radius} (the controller node's defaults); LQR weights q_xy {cfg.base_q_xy}, "
        f"q_yaw {cfg.base_q_yaw}, r {cfg.base_r_linear}.",
        f"- Seeds: {seeds}", "",
        "## Bar", "",
        "| bar | measured | status |", "|---|---|---|",
        f"| GPC RMS position error >= 20 % below LQR (every reference x seed) | worst GPC/LQR "
        f"{max(all_ratios):.3f}, median {median(all_ratios):.3f} | "
        f"{'**met**' if bar_met else '**NOT met**'} |", "",
        "## Per run (ground-truth position error)", "",
        "| reference | seed | LQR RMS (cm) | GPC RMS (cm) | GPC/LQR | LQR max (cm) | GPC max (cm) "
        "| RMS while pushed LQR / GPC (cm) | yaw RMS LQR / GPC (deg) | GPC active | fallbacks |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lm, gm = r["lqr"].metrics, r["gpc"].metrics
        lines.append(
            f"| {r['reference']} | {r['seed']} | {lm['rms_pos_m'] * 100:.2f} | {gm['rms_pos_m'] * 100:.2f} "
            f"| {r['ratio']:.3f} | {lm['max_pos_m'] * 100:.2f} | {gm['max_pos_m'] * 100:.2f} "
            f"| {lm['rms_pos_pushed_m'] * 100:.2f} / {gm['rms_pos_pushed_m'] * 100:.2f} "
            f"| {lm['rms_yaw_deg']:.3f} / {gm['rms_yaw_deg']:.3f} | {gm['gpc_fraction'] * 100:.0f} % "
            f"| {len(r['gpc'].fallback_reasons)} |")
    lines += ["", "## Median over seeds", "",
              "| reference | LQR RMS (cm) | GPC RMS (cm) | median GPC/LQR | worst GPC/LQR |",
              "|---|---|---|---|---|"]
    for name, p in per_ref.items():
        lines.append(f"| {name} | {p['median_lqr_rms_m'] * 100:.2f} | {p['median_gpc_rms_m'] * 100:.2f} "
                     f"| {p['median_ratio']:.3f} | {p['worst_ratio']:.3f} |")
    if baseline:
        lines += ["", "## Control: same references without pushes or friction change "
                  f"(seed {args.seed})", "",
                  "| reference | LQR RMS (cm) | GPC RMS (cm) | GPC/LQR |", "|---|---|---|---|"]
        for r in baseline:
            lines.append(f"| {r['reference']} | {r['lqr'].metrics['rms_pos_m'] * 100:.2f} | "
                         f"{r['gpc'].metrics['rms_pos_m'] * 100:.2f} | {r['ratio']:.3f} |")
    if other_ff:
        lines += ["", f"## Same disturbances with feedforward {'off' if cfg.feedforward else 'on'} "
                  f"(seed {args.seed})", "",
                  "The controller node follows waypoints without velocity feedforward; here the "
                  "reference motion itself is left to the feedback (LQR lags by about v / K).", "",
                  "| reference | LQR RMS (cm) | GPC RMS (cm) | GPC/LQR | LQR max (cm) | GPC max (cm) | "
                  "GPC fallbacks |", "|---|---|---|---|---|---|---|"]
        for r in other_ff:
            lm, gm = r["lqr"].metrics, r["gpc"].metrics
            lines.append(f"| {r['reference']} | {lm['rms_pos_m'] * 100:.2f} | {gm['rms_pos_m'] * 100:.2f} "
                         f"| {r['ratio']:.3f} | {lm['max_pos_m'] * 100:.2f} | {gm['max_pos_m'] * 100:.2f} "
                         f"| {'; '.join(r['gpc'].fallback_reasons) or 'none'} |")
    s1, s10 = sysid[1], sysid[10]
    b_all = np.concatenate([s1["B_diag_over_dt"], s10["B_diag_over_dt"]])
    b_lo, b_hi = float(b_all.min()), float(b_all.max())
    a_gt1 = bool(np.any(np.diag(s10["A"]) > 1.0))
    nominal_gpc = {x["reference"]: x["gpc"].metrics["rms_pos_m"] for x in runs
                   if x["seed"] == args.seed}
    worse = [e.metrics["rms_pos_m"] > nominal_gpc[r.name] for r, e in sysid_gpc]
    sysid_verdict = ("worse than on the nominal model on every reference" if all(worse) else
                     "better than on the nominal model on every reference" if not any(worse)
                     else "mixed against the nominal model")
    lines += [
        "", "## Model", "",
        "Both controllers use the nominal error integrator `e' = e + dt u` per axis "
        "(A = I, B = dt I), as the controller node does. A least-squares fit "
        "(`katazuke.control.identify`) of `e' = A e + B u` on 400 ticks of LQR plus "
        "exploration noise (0.15 m/s, rad/s) in the sim:", "",
        "| exploration | diag(B)/dt (x, y, yaw) | max abs(A - I) | one-step residual RMS fitted (mm) "
        "| one-step residual RMS nominal (mm) |", "|---|---|---|---|---|",
        *(f"| {lab} | {', '.join(f'{v:.2f}' for v in m['B_diag_over_dt'])} | "
          f"{float(np.abs(np.asarray(m['A']) - np.eye(3)).max()):.3f} | "
          f"{', '.join(f'{v * 1000:.2f}' for v in m['residual_rms'])} | "
          f"{', '.join(f'{v * 1000:.2f}' for v in m['nominal_residual_rms'])} |"
          for lab, m in (("i.i.d. per tick", s1), ("held 10 ticks", s10))),
        "",
        "The base is not a one-state integrator per axis at 20 Hz: the commanded twist is "
        "rate-limited (1 m/s^2 = 0.05 m/s per tick) and tracked by a first-order velocity loop "
        f"(time constant 1/15 s). A one-state-per-axis fit therefore depends on the excitation "
        f"(diag(B)/dt from {b_lo:.2f} to {b_hi:.2f}"
        + (", diag(A) > 1 with held excitation" if a_gt1 else "") + "). All tables above use "
        "the nominal model for both controllers (as the controller node does); the lag then "
        "appears in GPC's disturbance estimate w, which the disturbance-action term partly "
        "learns to compensate along with the pushes, and in LQR's error alike."
        + (f" GPC on the identified model is {sysid_verdict} (below)." if sysid_gpc else ""),
        *(["", f"GPC on the identified model (held excitation; same disturbances, seed "
               f"{args.seed}) vs GPC on the nominal model and LQR:", "",
               "| reference | LQR RMS (cm) | GPC nominal RMS (cm) | GPC sysid-model RMS (cm) |",
               "|---|---|---|---|",
               *(f"| {r.name} | {x['lqr'].metrics['rms_pos_m'] * 100:.2f} | "
                 f"{x['gpc'].metrics['rms_pos_m'] * 100:.2f} | {e.metrics['rms_pos_m'] * 100:.2f} |"
                 for r, e in sysid_gpc for x in runs
                 if x["reference"] == r.name and x["seed"] == args.seed)]
          if sysid_gpc else []),
        "", "Plots: " + ", ".join(f"`{Path(p).name}`" for p in plots) +
        " (ground-truth paths over the reference; error, push and friction vs time).",
    ]
    jpath, mpath = write_results("control_sim", results, "\n".join(lines), args.out,
                                 packages=("pybullet", "katazuke"))
    print(f"wrote {jpath} and {mpath}; worst GPC/LQR RMS ratio {max(all_ratios):.3f} "
          f"(bar <= {BAR_RATIO}: {'met' if bar_met else 'NOT met'})")
    return 0
