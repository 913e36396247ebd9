"""``katazuke bench sim``: simulator frame rate, dataset throughput, pick-and-place success.

Measures, in one run on this machine:

* render + physics frame rate at 320x240 RGB-D (``step()`` with the head camera rendered
  into the observation), profile ``train`` vs ``none``, median over repeats after warm-up;
* dataset images/s with 2 workers (and 1 worker as the peer), wall clock including
  worker start-up and PNG encoding;
* scripted pick-and-place success over every object kind x 5 seeds.

:func:`run` measures and returns a JSON-able dict, :func:`markdown` renders it, and
:data:`BARS` is the one table of bars both read. Every figure of one ``sim.json`` comes from
one run (a skipped section is "not measured", never copied from an older file).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any

from katazuke.bench.harness import Bar, evaluate_bars, median
from katazuke.config import dataclass, field
from katazuke.errors import ConfigError

__all__ = ["SimBenchConfig", "BARS", "run", "markdown", "bench_fps", "bench_dataset",
           "bench_pick"]

_FPS = Bar("render + physics at 320x240 RGB-D, profile train (wall clock, median)",
           "render_physics_fps.train.fps_median", ">=", 20.0, unit="frames/s")
_DATASET = Bar("dataset throughput with 2 workers (wall clock, median)",
               "dataset.workers_2.images_per_s_median", ">=", 15.0, unit="images/s")
_PICK = Bar("pick-and-place succeeds on kinds (>= 4 of 5 seeds each)",
            "pick_and_place.kind_success_rate", ">=", 0.9, note="fraction of kinds")
#: A kind counts as picked when at least this fraction of its seeds succeed (4 of 5).
KIND_SUCCESS = 0.8
#: The Simulation issue's bars.
BARS = (_FPS, _DATASET, _PICK)


@dataclass(frozen=True)
class SimBenchConfig:
    """What one ``katazuke bench sim`` run measures."""

    repeats: int = field(default=5, metadata={"help": "timing repeats (median)"})
    frames: int = field(default=60, metadata={"help": "frames per fps repeat"})
    dataset_n: int = field(default=200, metadata={
        "help": "images per dataset throughput run (2 shards)"})
    seeds: int = field(default=5, metadata={"help": "pick-and-place seeds per kind"})
    quick: bool = field(default=False, metadata={
        "help": "smoke run: 2 repeats, 100 images, 2 seeds, every 4th kind"})
    skip_pick: bool = field(default=False, metadata={
        "help": "do not measure pick-and-place (its bar is then 'not measured')"})

    def __post_init__(self) -> None:
        for name in ("repeats", "frames", "dataset_n", "seeds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.frames < 2:
            raise ConfigError(f"frames must be >= 2 (half are rendered again), got {self.frames}")


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
        return {"profile": profile, "n_objects": list(n_objects), "fps_median": median(fps),
                "fps_runs": fps, "fps_cpu_time_median": median(fps_cpu),
                "render_ms_median": median(render_ms),
                "physics_step_ms_median": median(step_ms), "frames_per_repeat": frames,
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
    return {"workers": workers, "images": n, "images_per_s_median": median(rates),
            "images_per_s_runs": rates, "images_per_s_cpu_bound_median": median(cpu_rates),
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
    ok_kinds = sum(r["successes"] / r["trials"] >= KIND_SUCCESS for r in rows)
    total = sum(r["successes"] for r in rows)
    return {"rows": rows, "seeds": seeds, "kinds": len(rows),
            "kinds_with_4_of_5": ok_kinds,
            "overall_success_rate": total / max(1, seeds * len(rows)),
            "kind_success_rate": ok_kinds / max(1, len(rows))}


def run(cfg: SimBenchConfig) -> dict[str, Any]:
    """Measure frame rate, dataset throughput and (unless skipped) pick-and-place.

    Returns:
        ``config``, ``render_physics_fps`` (``train``, ``none``, ``train_40_objects``),
        ``dataset`` (``workers_2``, ``workers_1``), ``pick_and_place`` (None when skipped),
        ``wall_s``.
    """
    repeats, dataset_n, seeds = (2, 100, 2) if cfg.quick else (cfg.repeats, cfg.dataset_n,
                                                               cfg.seeds)
    t_start = time.time()
    fps_train = bench_fps("train", repeats, cfg.frames)
    fps_none = bench_fps("none", repeats, cfg.frames)
    fps_40 = bench_fps("train", max(2, repeats // 2), cfg.frames, (40, 40))
    ds_reps = 1 if cfg.quick else 2
    ds2 = bench_dataset(2, dataset_n, ds_reps)
    ds1 = bench_dataset(1, dataset_n // 2, ds_reps)
    pick = None
    if not cfg.skip_pick:
        kinds = None
        if cfg.quick:
            from katazuke.sim.objects import KINDS

            kinds = [k.name for k in KINDS][::4]
        pick = bench_pick(seeds, kinds)
    return {
        "config": {"repeats": repeats, "frames": cfg.frames, "dataset_n": dataset_n,
                   "seeds": seeds, "quick": cfg.quick, "skip_pick": cfg.skip_pick},
        "render_physics_fps": {"train": fps_train, "none": fps_none, "train_40_objects": fps_40},
        "dataset": {"workers_2": ds2, "workers_1": ds1},
        "pick_and_place": pick,
        "wall_s": time.time() - t_start,
    }


def markdown(r: dict, command: str = "") -> str:
    """The report of :func:`run`'s results (bars table from :data:`BARS`)."""
    f = r["render_physics_fps"]
    d = r["dataset"]
    from katazuke.bench.harness import bars_markdown

    ev = evaluate_bars(r, BARS)
    lines = [
        "# Simulator benchmark (`katazuke bench sim`)", "",
        f"Command: `{command}`" if command else "",
        "The machine is shared; timings are medians (commit, machine, load average and "
        "versions: the footer and the JSON).", "",
        "## Bars (issue \"Simulation\")", "", bars_markdown(ev), "",
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
        lines += ["| kind | successes | lifted | failed at |", "|---|---|---|---|"]
        for row in p["rows"]:
            lines.append(f"| {row['kind']} | {row['successes']}/{row['trials']} | "
                         f"{row['lifted']}/{row['trials']} | "
                         f"{', '.join(row['failed_stages']) or '-'} |")
        lines += ["", f"Kinds with >= {100 * KIND_SUCCESS:.0f}% success: {p['kinds_with_4_of_5']}/{p['kinds']} "
                  f"({100 * p['kind_success_rate']:.0f}%); all trials: "
                  f"{100 * p['overall_success_rate']:.0f}%."]
    cpu_fps = f["train"]["fps_cpu_time_median"]
    lines += ["", "## Wall clock vs CPU time", "",
              f"- render + physics per CPU-second of the process: {cpu_fps:.1f} frames/s "
              f"({'above' if cpu_fps >= _FPS.threshold else 'below'} the bar of "
              f"{_FPS.threshold:g} frames/s when the process has a core to itself)",
              f"- dataset CPU-bound estimate with 2 free cores: "
              f"{d['workers_2']['images_per_s_cpu_bound_median']:.1f} images/s (bar "
              f"{_DATASET.threshold:g} images/s)", ""]
    return "\n".join(lines)
