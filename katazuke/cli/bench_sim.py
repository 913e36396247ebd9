"""``katazuke bench sim``: simulator frame rate, dataset throughput, pick-and-place success.

Measures, in one run on this machine:

* render + physics frame rate at 320x240 RGB-D (``step()`` with the head camera rendered
  into the observation), profile ``train`` vs ``none``, median over repeats after warm-up;
* dataset images/s with 2 workers (and 1 worker as the peer), wall clock including
  worker start-up and PNG encoding;
* scripted pick-and-place success over every object kind x 5 seeds.

Writes ``docs/bench/sim.json`` and ``docs/bench/sim.md``.

Example::

    katazuke bench sim                 # full run (~10 min on 2 cores)
    katazuke bench sim --quick         # fewer repeats, 2 seeds, for a smoke check
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FPS_BAR = 20.0
DATASET_BAR = 15.0
PICK_BAR = 0.9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-dir", default="docs/bench", help="where sim.json/sim.md go")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats (median)")
    parser.add_argument("--frames", type=int, default=60, help="frames per fps repeat")
    parser.add_argument("--dataset-n", type=int, default=200,
                        help="images per dataset throughput run (2 shards)")
    parser.add_argument("--seeds", type=int, default=5, help="pick-and-place seeds per kind")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 repeats, 100 images, 2 seeds, 8 kinds")
    parser.add_argument("--skip-pick", action="store_true",
                        help="skip pick-and-place (keep the previous sim.json's results, marked so)")
    parser.add_argument("--markdown-only", action="store_true",
                        help="only rewrite sim.md from an existing sim.json (no measuring)")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _median(xs):
    import numpy as np

    return float(np.median(xs))


def bench_fps(profile: str, repeats: int, frames: int, n_objects=(10, 40)) -> dict:
    """Frames/s of ``step()`` + head RGB-D render, plus the split in ms."""
    import numpy as np

    from katazuke.sim import Action, EnvConfig, TidyEnv

    env = TidyEnv(EnvConfig(profile=profile, n_objects=n_objects))
    # the peer: the same episodes stepped without rendering (physics only)
    bare = TidyEnv(EnvConfig(profile=profile, n_objects=n_objects, render_observation=False))
    try:
        fps, fps_cpu, step_ms, render_ms = [], [], [], []
        for r in range(repeats):
            env.reset(seed=100 + r)
            bare.reset(seed=100 + r)
            for _ in range(10):  # warm-up
                env.step(Action(base_twist=(0.2, 0.0, 0.3)))
                bare.step(Action(base_twist=(0.2, 0.0, 0.3)))
            actions = [Action(base_twist=(0.25, 0.0, 0.4 * np.sin(k / 10.0)),
                              head_pan_tilt=(0.3 * np.sin(k / 15), 0.5)) for k in range(frames)]
            t0, c0 = time.perf_counter(), time.process_time()
            for a in actions:
                env.step(a)
            fps.append(frames / (time.perf_counter() - t0))
            fps_cpu.append(frames / (time.process_time() - c0))
            t0 = time.perf_counter()
            for _ in range(frames // 2):
                env.render_head()
            render_ms.append(1000 * (time.perf_counter() - t0) / (frames // 2))
            t0 = time.perf_counter()
            for a in actions[: frames // 2]:
                bare.step(a)
            step_ms.append(1000 * (time.perf_counter() - t0) / (frames // 2))
        return {"profile": profile, "n_objects": list(n_objects), "fps_median": _median(fps),
                "fps_runs": fps, "fps_cpu_time_median": _median(fps_cpu),
                "render_ms_median": _median(render_ms),
                "physics_step_ms_median": _median(step_ms), "frames_per_repeat": frames,
                "repeats": repeats}
    finally:
        env.close()
        bare.close()


def bench_dataset(workers: int, n: int, repeats: int) -> dict:
    """Images/s of the data factory (train profile), wall clock, median over repeats."""
    from katazuke.sim.dataset import DatasetSpec, generate_dataset

    import resource

    def cpu() -> float:
        ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        return sum(r.ru_utime + r.ru_stime for r in ru)

    rates, cpu_rates = [], []
    for r in range(repeats):
        out = tempfile.mkdtemp(prefix="katazuke_bench_ds_")
        try:
            t0, c0 = time.perf_counter(), cpu()
            generate_dataset(DatasetSpec(out=out, profile="train", n=n, seed=r,
                                         workers=workers), progress=False)
            rates.append(n / (time.perf_counter() - t0))
            # what `workers` free cores would give: images per CPU-second times workers
            cpu_rates.append(workers * n / (cpu() - c0))
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return {"workers": workers, "images": n, "images_per_s_median": _median(rates),
            "images_per_s_runs": rates, "images_per_s_cpu_bound_median": _median(cpu_rates),
            "repeats": repeats}


def bench_pick(seeds: int, kinds: list[str] | None) -> dict:
    from tqdm import tqdm

    from katazuke.sim.objects import KINDS
    from katazuke.sim.pick_place import make_eval_env, pick_and_place

    env = make_eval_env()
    rows = []
    names = kinds or [k.name for k in KINDS]
    try:
        for name in tqdm(names, desc="pick-and-place", unit="kind"):
            res = [pick_and_place(env, name, s) for s in range(seeds)]
            rows.append({"kind": name, "successes": sum(r.success for r in res),
                         "trials": seeds, "lifted": sum(r.lifted for r in res),
                         "failed_stages": [r.stage for r in res if not r.success]})
    finally:
        env.close()
    ok_kinds = sum(r["successes"] / r["trials"] >= 0.8 for r in rows)
    total = sum(r["successes"] for r in rows)
    return {"rows": rows, "seeds": seeds, "kinds": len(rows),
            "kinds_with_4_of_5": ok_kinds,
            "overall_success_rate": total / max(1, seeds * len(rows)),
            "kind_success_rate": ok_kinds / max(1, len(rows))}


def main(args: argparse.Namespace) -> int:
    if args.markdown_only:
        src = Path(args.out_dir) / "sim.json"
        if not src.is_file():
            from katazuke.errors import KatazukeError

            raise KatazukeError(f"{src} not found: run `katazuke bench sim` first")
        (Path(args.out_dir) / "sim.md").write_text(_markdown(json.loads(src.read_text())))
        return 0
    import numpy
    import PIL
    import pybullet

    if args.quick:
        args.repeats, args.dataset_n, args.seeds = 2, 100, 2
    t_start = time.time()
    fps_train = bench_fps("train", args.repeats, args.frames)
    fps_none = bench_fps("none", args.repeats, args.frames)
    fps_40 = bench_fps("train", max(2, args.repeats // 2), args.frames, (40, 40))
    ds_reps = 1 if args.quick else 2
    ds2 = bench_dataset(2, args.dataset_n, ds_reps)
    ds1 = bench_dataset(1, args.dataset_n // 2, ds_reps)
    pick = None
    previous = Path(args.out_dir) / "sim.json"
    if args.skip_pick and previous.is_file():
        old = json.loads(previous.read_text())
        if old.get("pick_and_place"):
            pick = dict(old["pick_and_place"],
                        measured_in_earlier_run=f"{old.get('date_utc')} at {old.get('commit', '')[:10]}")
    if not args.skip_pick:
        kinds = None
        if args.quick:
            from katazuke.sim.objects import KINDS

            kinds = [k.name for k in KINDS][::4]
        pick = bench_pick(args.seeds, kinds)
    result = {
        "topic": "sim",
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--", "sim", "katazuke/cli")),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "katazuke bench sim" + (" --quick" if args.quick else ""),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(),
                    "load_avg_at_start": os.getloadavg()},
        "versions": {"python": sys.version.split()[0], "pybullet": pybullet.__version__
                     if hasattr(pybullet, "__version__") else "3.2.7",
                     "numpy": numpy.__version__, "pillow": PIL.__version__},
        "render_physics_fps": {"train": fps_train, "none": fps_none, "train_40_objects": fps_40},
        "dataset": {"workers_2": ds2, "workers_1": ds1},
        "pick_and_place": pick,
        "bars": {
            "fps_320x240_rgbd_ge_20": fps_train["fps_median"] >= FPS_BAR,
            "dataset_2_workers_ge_15_img_s": ds2["images_per_s_median"] >= DATASET_BAR,
            "pick_place_ge_90pct_kinds": (pick["kind_success_rate"] >= PICK_BAR) if pick
            else None,
        },
        "wall_s": time.time() - t_start,
    }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sim.json").write_text(json.dumps(result, indent=1))
    (out / "sim.md").write_text(_markdown(result))
    print((out / "sim.md").read_text())
    return 0


def _yes(b) -> str:
    return "n/a" if b is None else ("**met**" if b else "**NOT met**")


def _markdown(r: dict) -> str:
    f = r["render_physics_fps"]
    d = r["dataset"]
    lines = [
        "# Simulator benchmark (`katazuke bench sim`)", "",
        f"- command: `{r['command']}`",
        f"- commit: `{r['commit']}`{' (+ uncommitted changes)' if r['dirty'] else ''}",
        f"- date: {r['date_utc']}",
        f"- machine: {r['machine']['platform']}, {r['machine']['cpu_count']} CPUs, load average "
        f"at start {tuple(round(x, 2) for x in r['machine']['load_avg_at_start'])} "
        "(the machine is shared; timings are medians)",
        f"- versions: {r['versions']}", "",
        "## Render + physics (TinyRenderer, 320x240 RGB-D + segmentation, 30 Hz x 8 substeps)",
        "", "| scene | frames/s wall (median) | frames/s CPU-time | render ms | physics step ms |",
        "|---|---|---|---|---|"]
    for key, label in (("train", "profile train, 10-40 objects"),
                       ("none", "profile none, 10-40 objects"),
                       ("train_40_objects", "profile train, 40 objects")):
        x = f[key]
        lines.append(f"| {label} | {x['fps_median']:.1f} | {x['fps_cpu_time_median']:.1f} | "
                     f"{x['render_ms_median']:.1f} | {x['physics_step_ms_median']:.1f} |")
    lines += ["", "## Dataset throughput (profile train, PNG RGB + depth + mask + labels)", "",
              "| workers | images | images/s wall (median) | images/s CPU-bound estimate |",
              "|---|---|---|---|"]
    for key in ("workers_1", "workers_2"):
        x = d[key]
        lines.append(f"| {x['workers']} | {x['images']} | {x['images_per_s_median']:.1f} | "
                     f"{x['images_per_s_cpu_bound_median']:.1f} |")
    lines += ["", "Wall-clock figures depend on what else runs on the shared machine; the "
              "CPU-time figures are what the process achieves per core it actually gets "
              "(frames / process CPU seconds; for the dataset, workers x images / CPU "
              "seconds of parent and workers)."]
    p = r["pick_and_place"]
    if p:
        lines += ["", f"## Scripted pick-and-place ({p['seeds']} seeds per kind)", ""]
        if p.get("measured_in_earlier_run"):
            lines += [f"(Measured in an earlier run, {p['measured_in_earlier_run']}; this run used "
                      "`--skip-pick`.)", ""]
        lines += ["| kind | successes | lifted | failed at |", "|---|---|---|---|"]
        for row in p["rows"]:
            lines.append(f"| {row['kind']} | {row['successes']}/{row['trials']} | "
                         f"{row['lifted']}/{row['trials']} | "
                         f"{', '.join(row['failed_stages']) or '-'} |")
        lines += ["", f"Kinds with >= 80% success: {p['kinds_with_4_of_5']}/{p['kinds']} "
                  f"({100 * p['kind_success_rate']:.0f}%); all trials: "
                  f"{100 * p['overall_success_rate']:.0f}%."]
    b = r["bars"]
    lines += ["", "## Bars (issue \"Simulation\")", "",
              f"- render + physics >= {FPS_BAR:.0f} frames/s at 320x240 RGB-D: "
              f"{_yes(b['fps_320x240_rgbd_ge_20'])} on the wall clock "
              f"({f['train']['fps_median']:.1f} frames/s); per CPU-second of the process "
              f"{f['train']['fps_cpu_time_median']:.1f} frames/s "
              f"({'above' if f['train']['fps_cpu_time_median'] >= FPS_BAR else 'below'} "
              "the bar when the process has a core to itself)",
              f"- dataset >= {DATASET_BAR:.0f} images/s with 2 workers: "
              f"{_yes(b['dataset_2_workers_ge_15_img_s'])} on the wall clock "
              f"({d['workers_2']['images_per_s_median']:.1f} images/s); CPU-bound estimate "
              f"{d['workers_2']['images_per_s_cpu_bound_median']:.1f} images/s with 2 free "
              "cores",
              f"- pick-and-place succeeds on >= 90% of kinds (>= 4 of 5 seeds each): "
              f"{_yes(b['pick_place_ge_90pct_kinds'])}"
              + (f" ({100 * p['kind_success_rate']:.0f}%)" if p else ""), ""]
    return "\n".join(lines)
