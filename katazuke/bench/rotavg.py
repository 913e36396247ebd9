"""``katazuke bench rotavg``: certified rotation averaging against GTSAM Shonan averaging.

Every 3D graph in ``shared/data/rotavg`` plus synthetic random view graphs (100 / 1,000 /
10,000 nodes, average degree 5-20, noise 1-30 deg, outlier fractions), solved by both
methods in the same process on the same problem with unit weights. The cost for both is
the unweighted chordal sum ``sum_e ||R_i R_ij - R_j||_F^2``.

GTSAM (``ShonanAveraging3.run(initial, 3, 10)``) is timed two ways: started from the
degree-normalised spectral solution (its time includes computing that start) and from
GTSAM's own random start (skipped for n >= :data:`NOINIT_MAX_N`: over two minutes); the
faster is the reference. :func:`run` measures, :func:`markdown` renders, :data:`BARS` is
read by both.

Timing is the same for both methods (:func:`_interleaved`): every timed function is
warmed up, then the methods run in alternating rounds (ours, spectral start, GTSAM; the
next round in reverse order), so a change of machine load during a problem lands on both
instead of on whichever was timed in that window; each figure is the median of its
rounds. Both run inside the same :func:`single_threaded_blas` limit (GTSAM's wheel is
built without TBB and does not use BLAS: it is single-threaded as well; ``settings``
records the thread pools seen and whether TBB is loaded).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from katazuke.bench.harness import OPS, Bar, evaluate_bars, median, median_of_runs
from katazuke.config import dataclass, field
from katazuke.errors import InputError
from katazuke.rosenv import repo_root

__all__ = ["RotavgBenchConfig", "BARS", "run", "markdown", "DATA"]

DATA = repo_root().parent / "shared" / "data" / "rotavg"
FILES = ("gtsam_Klaus3.g2o", "gtsam_pose3example.txt", "gtsam_toyExample.g2o", "tinyGrid3D.g2o",
         "gtsam_pose3example-grid.txt", "smallGrid3D.g2o", "parking-garage.g2o", "sphere2500.g2o",
         "gtsam_sphere2500_groundtruth.txt", "sphere_bignoise_vertex3.g2o",
         "gtsam_sphere_smallnoise.graph", "torus3D.g2o", "cubicle.g2o", "1dsfm_Madrid_Metropolis")
# (n, average degree, noise [deg])
SYNTHETIC = ((100, 5, 1), (100, 10, 10), (100, 20, 30), (1000, 5, 5), (1000, 10, 10),
             (1000, 20, 20), (1000, 10, 30), (10000, 5, 10), (10000, 10, 1), (10000, 10, 10),
             (10000, 10, 20), (10000, 20, 10))
# (n, average degree, noise [deg], outlier fraction)
OUTLIERS = ((1000, 10, 5, 0.2), (1000, 20, 5, 0.2), (3000, 10, 5, 0.2))
QUICK_FILES = ("tinyGrid3D.g2o", "smallGrid3D.g2o", "parking-garage.g2o", "sphere2500.g2o")
QUICK_SYNTHETIC = ((100, 5, 1), (1000, 10, 10))
QUICK_OUTLIERS = ((1000, 10, 5, 0.2),)
NOINIT_MAX_N = 3000
NOINIT_BUDGET_S = 60.0  # one run from GTSAM's random start, killed after this
COST_RTOL = 1e-6        # "cost <= GTSAM" allows this relative slack
COST_MAX_NOISE_DEG = 20  # synthetic graphs noisier than this are outside the cost bar
SMALL_M = 2000          # edges below which a problem counts as small (more rounds)
SMALL_MIN_TIME_S = 0.3  # small problems: rounds added until ours has run this long in total
SMALL_ROUNDS_MAX = 201  # ... or this many rounds
SMALL_BLOCK = 6         # small problems: calls per turn (the first discarded; see _interleaved)
BIG = (10000, 10)       # (n, average degree) of the time bar

BARS = (
    Bar(f"cost <= GTSAM (rel {COST_RTOL:g}) and certified on every file and synthetic graph "
        f"with noise <= {COST_MAX_NOISE_DEG} deg", "summary.cost_not_met", "==", 0,
        note="problems not meeting it"),
    Bar("faster than GTSAM Shonan on every problem (same run)", "summary.min_speed_ratio", ">",
        1.0, unit="x", note="slowest GTSAM time / ours"),
    Bar(f"{BIG[0]:,} nodes, average degree {BIG[1]} in <= 10 s", "summary.max_big_time_s", "<=",
        10.0, unit="s"),
    Bar("20% outliers: inlier rotation error within 2x of the outlier-free solution; rejected "
        "set reported", "summary.max_outlier_error_ratio", "<=", 2.0, unit="x",
        note="robust error / outlier-free error"),
)
_SPEED, _OUTLIER = BARS[1], BARS[3]


@dataclass(frozen=True)
class RotavgBenchConfig:
    """What one ``katazuke bench rotavg`` run measures."""

    quick: bool = field(default=False, metadata={"help": "a small subset (about a minute)"})
    repeats: int = field(default=3, metadata={"help": "timed runs per method (median)"})
    data: str = field(default=str(DATA), metadata={"help": "folder with the benchmark graphs"})
    seed: int = field(default=0, metadata={"help": "seed of the synthetic graphs"})

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise InputError("--repeats must be >= 1")


def _interleaved(fns: dict[str, Any], rounds: int, warmup: int = 1, min_time_s: float = 0.0,
                 max_rounds: int | None = None, block: int = 1
                 ) -> tuple[dict[str, float], dict[str, Any], dict[str, list[float]]]:
    """Time several functions fairly against each other.

    Each function is called ``warmup`` times (discarded), then all take turns once per
    round, in the given order in even rounds and in reverse order in odd ones: slow and
    fast phases of a shared machine's load fall on every function alike. A turn is
    ``block`` calls back to back; with ``block > 1`` the first call of the turn is discarded
    and the turn's sample is the median of the others, so that sub-millisecond calls are
    timed with their code and data in the caches, as in a loop of solves, instead of
    paying for the other method having evicted them (a cost that hits the method with the
    larger footprint harder).

    Args:
        fns: name -> function of no arguments.
        rounds: samples per function, >= 1 (at least this many rounds).
        warmup: untimed calls per function first (imports, caches, page faults), >= 0.
        min_time_s: keep adding rounds until the first function has run this many seconds
            in its turns (short calls need many rounds for a stable median on a loaded
            machine) ...
        max_rounds: ... but stop at this many rounds (default: ``rounds``).
        block: calls per turn, >= 1.

    Returns:
        ``(median seconds per name, last output per name, sample of every round per name)``.
    """
    names = list(fns)
    out: dict[str, Any] = {}
    for _ in range(warmup):
        for k in names:
            out[k] = fns[k]()
    times: dict[str, list[float]] = {k: [] for k in names}
    spent = 0.0  # seconds the first function has run in its turns
    cap = max(rounds, max_rounds or rounds)
    r = 0
    while r < rounds or (r < cap and spent < min_time_s):
        for k in (names if r % 2 == 0 else names[::-1]):
            turn = []
            for _ in range(block):
                t = time.perf_counter()
                out[k] = fns[k]()
                turn.append(time.perf_counter() - t)
            times[k].append(median(turn[1:]) if block > 1 else turn[0])
            if k == names[0]:
                spent += sum(turn)
        r += 1
    return {k: median(v) for k, v in times.items()}, out, times


def _thread_state() -> dict[str, Any]:
    """Thread pools (threadpoolctl) as seen now, and whether a TBB runtime is loaded."""
    try:
        from threadpoolctl import threadpool_info
        pools = [{"api": i.get("internal_api"), "num_threads": i.get("num_threads")}
                 for i in threadpool_info()]
    except ImportError:
        pools = None
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        maps = ""
    return {"pools": pools, "tbb_loaded": "libtbb" in maps,
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}


def _loadavg1() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _timed(fn: Any, repeats: int, warmup: int = 0) -> tuple[float, Any]:
    """:func:`median_of_runs` of the seconds ``fn()`` takes; also ``fn``'s last output."""
    out: list[Any] = [None]

    def one() -> float:
        t = time.perf_counter()
        out[0] = fn()
        return time.perf_counter() - t

    t_med, _ = median_of_runs(one, repeats, warmup=warmup)
    return t_med, out[0]


def _gtsam_problem(graph: Any) -> Any:
    import gtsam

    ms = gtsam.BinaryMeasurementsRot3()
    noise = gtsam.noiseModel.Isotropic.Sigma(3, 1.0)
    for (i, j), R in zip(graph.edges.tolist(), graph.rotations):
        ms.append(gtsam.BinaryMeasurementRot3(int(i), int(j), gtsam.Rot3(R), noise))
    params = gtsam.ShonanAveragingParameters3(gtsam.LevenbergMarquardtParams.CeresDefaults())
    return gtsam.ShonanAveraging3(ms, params)


def _gtsam_run(graph: Any, initial: Any | None) -> tuple[Any, float]:
    import gtsam
    import numpy as np

    sh = _gtsam_problem(graph)
    if initial is None:
        values, lam = sh.run(sh.initializeRandomly(), 3, 10)
    else:
        v = gtsam.Values()
        for k in range(graph.num_nodes):
            v.insert(k, gtsam.Rot3(initial[k]))
        values, lam = sh.run(v, 3, 10)
    R = np.stack([values.atRot3(k).matrix() for k in range(graph.num_nodes)])
    return R, float(lam)


def _gtsam_noinit_limited(graph: Any, budget_s: float) -> tuple[float, Any, float] | str:
    """GTSAM from its random start in a forked child (it cannot be interrupted in-process):
    (seconds, rotations, lambda_min), or a string saying why there is no result."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def work() -> None:
        try:
            t = time.perf_counter()
            R, lam = _gtsam_run(graph, None)
            child.send((time.perf_counter() - t, R, lam))
        except Exception as exc:  # reported as the row's status
            child.send(f"failed: {exc}")

    proc = ctx.Process(target=work, daemon=True)
    proc.start()
    try:
        if parent.poll(budget_s):
            return parent.recv()
        return f"skipped: > {budget_s:.0f} s budget"
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()


def _bench_one(name: str, graph: Any, repeats: int, extra: dict[str, Any]) -> dict[str, Any]:
    from katazuke.perception.rotavg import (RotAvgConfig, RotationAveraging, chordal_cost,
                                            single_threaded_blas, spectral_init)

    g = graph.with_unit_weights()
    n, m = g.num_nodes, g.num_edges
    # Small problems take milliseconds: more rounds make their medians robust to load
    # (at least 9, and up to SMALL_ROUNDS_MAX until ours has run SMALL_MIN_TIME_S in total).
    reps = max(repeats, 9) if m < SMALL_M else repeats if n < 5000 else max(1, min(repeats, 3))
    solver = RotationAveraging(RotAvgConfig())  # reused across rounds, as a service would
    load = _loadavg1()
    with single_threaded_blas():  # the same thread limit for both methods
        init = spectral_init(g)  # GTSAM's start (deterministic: the same in every round)
        med, outs, rounds = _interleaved(
            {"ours": lambda: solver.solve(g), "init": lambda: spectral_init(g),
             "gtsam": lambda: _gtsam_run(g, init)}, reps, warmup=3 if m < SMALL_M else 1,
            min_time_s=SMALL_MIN_TIME_S if m < SMALL_M else 0.0, max_rounds=SMALL_ROUNDS_MAX,
            block=SMALL_BLOCK if m < SMALL_M else 1)
    reps = len(rounds["ours"])
    t_ours, t_init, t_run = med["ours"], med["init"], med["gtsam"]
    res, (R_gi, lam_gi) = outs["ours"], outs["gtsam"]
    per_round = [(a + b) / c for a, b, c in zip(rounds["init"], rounds["gtsam"], rounds["ours"])]
    row: dict[str, Any] = dict(
        problem=name, n=n, m=m, **extra, loadavg_1min=load, rounds=reps,
        speed_ratio_rounds_min=min(per_round), speed_ratio_rounds_median=median(per_round),
        ours_cost=res.cost, ours_lambda_min=res.certificate.min_eigenvalue,
        ours_certified=res.certificate.certified, ours_relative_gap=res.certificate.relative_gap,
        ours_time_s=t_ours, ours_iterations=res.iterations, ours_backend=res.backend,
        ours_components=len(res.components), ours_notes=list(res.notes),
        spectral_cost=chordal_cost(g, init, weighted=False), spectral_time_s=t_init,
        gtsam_init_cost=chordal_cost(g, R_gi, weighted=False), gtsam_init_lambda_min=lam_gi,
        gtsam_init_run_s=t_run, gtsam_init_total_s=t_init + t_run)
    ni = (_gtsam_noinit_limited(g, NOINIT_BUDGET_S) if n < NOINIT_MAX_N
          else f"skipped: > budget (n >= {NOINIT_MAX_N})")
    if isinstance(ni, tuple):
        row.update(gtsam_noinit_cost=chordal_cost(g, ni[1], weighted=False),
                   gtsam_noinit_lambda_min=ni[2], gtsam_noinit_s=ni[0])
    else:
        row.update(gtsam_noinit_cost=None, gtsam_noinit_lambda_min=None, gtsam_noinit_s=ni)
    best = "init"
    if isinstance(row["gtsam_noinit_s"], float) and row["gtsam_noinit_s"] < row["gtsam_init_total_s"]:
        best = "noinit"
    row["gtsam_best"] = best
    row["gtsam_time_s"] = row["gtsam_init_total_s"] if best == "init" else row["gtsam_noinit_s"]
    row["gtsam_cost"] = row["gtsam_init_cost"] if best == "init" else row["gtsam_noinit_cost"]
    row["gtsam_lambda_min"] = row["gtsam_init_lambda_min"] if best == "init" else row["gtsam_noinit_lambda_min"]
    gcost = min(c for c in (row["gtsam_init_cost"], row["gtsam_noinit_cost"]) if c is not None)
    row["gtsam_best_cost"] = gcost
    row["rel_cost_diff"] = (res.cost - gcost) / max(abs(gcost), 1e-300)
    row["speed_ratio"] = row["gtsam_time_s"] / t_ours
    row["speed_ratio_vs_gtsam_run_only"] = min(
        [t_run] + ([row["gtsam_noinit_s"]] if isinstance(row["gtsam_noinit_s"], float) else [])) / t_ours
    row["cost_bar_met"] = bool(res.cost <= gcost * (1 + COST_RTOL) + 1e-12 and res.certificate.certified)
    row["speed_bar_met"] = bool(OPS[_SPEED.op](row["speed_ratio"], _SPEED.threshold))
    return row


def _bench_outliers(n: int, deg: float, noise: float, frac: float, seed: int, repeats: int
                    ) -> dict[str, Any]:
    import numpy as np

    from katazuke.perception.rotavg import (RotAvgConfig, RotationAveraging, angle_between,
                                            project_to_so3, single_threaded_blas, spectral_init,
                                            synthetic_graph)

    def err(R: np.ndarray, R_ref: np.ndarray) -> float:
        G = project_to_so3(np.sum(R_ref @ np.swapaxes(R, 1, 2), axis=0)[None])[0]
        return float(np.degrees(angle_between(G[None] @ R, R_ref)).mean())

    g, R_true, out = synthetic_graph(n, deg, noise, np.random.default_rng(seed), outlier_fraction=frac)
    robust = RotationAveraging(RotAvgConfig(robust=True))
    reps = max(1, min(repeats, 2))
    with single_threaded_blas():
        t_rob, res = _timed(lambda: robust.solve(g), reps, warmup=1)
        clean = RotationAveraging().solve(g.select_edges(~out))
        ls = RotationAveraging(RotAvgConfig(staircase_max_rank=3)).solve(g)
        init = spectral_init(g)
        try:  # under the same thread limit as ours
            t_g, (R_g, _) = _timed(lambda: _gtsam_run(g, init), reps)
            gtsam_err: float | str = err(R_g, R_true)
        except RuntimeError as exc:  # Shonan may fail to converge on outlier-ridden graphs
            t_g, gtsam_err = float("nan"), f"failed: {exc}"
    rejected = np.zeros(g.num_edges, dtype=bool)
    rejected[res.rejected_edges] = True
    e_rob, e_clean = err(res.rotations, R_true), err(clean.rotations, R_true)
    return dict(problem=f"synthetic n={n} deg={deg} noise={noise} outliers={frac:.0%}", n=n,
                m=g.num_edges, planted_outliers=int(out.sum()), rejected=int(rejected.sum()),
                rejected_true_outliers=int((rejected & out).sum()),
                rejected_inliers=int((rejected & ~out).sum()),
                robust_error_deg=e_rob, clean_error_deg=e_clean,
                least_squares_error_deg=err(ls.rotations, R_true),
                gtsam_error_deg=gtsam_err, robust_certified=res.certificate.certified,
                robust_time_s=t_rob, gtsam_time_s=t_g, error_ratio=e_rob / e_clean,
                outlier_bar_met=bool(OPS[_OUTLIER.op](e_rob / e_clean, _OUTLIER.threshold)))


def _summary(rows: list[dict[str, Any]], orows: list[dict[str, Any]]) -> dict[str, Any]:
    cost_rows = [r for r in rows if r["kind"] == "file" or (r["noise_deg"] or 0) <= COST_MAX_NOISE_DEG]
    big = [r for r in rows if r["n"] == BIG[0] and r.get("avg_degree") == BIG[1]]
    return {
        "cost_rows": len(cost_rows),
        "cost_not_met": sum(not r["cost_bar_met"] for r in cost_rows) if cost_rows else None,
        "cost_not_met_problems": [r["problem"] for r in cost_rows if not r["cost_bar_met"]],
        "min_speed_ratio": min((r["speed_ratio"] for r in rows), default=None),
        "slower_problems": [r["problem"] for r in rows if not r["speed_bar_met"]],
        "max_big_time_s": max((r["ours_time_s"] for r in big), default=None),
        "max_outlier_error_ratio": max((r["error_ratio"] for r in orows), default=None),
    }


def run(cfg: RotavgBenchConfig) -> dict[str, Any]:
    """Solve every problem with both methods (about a minute with quick, an hour without).

    Returns:
        ``settings``, ``problems`` (one row per file / synthetic graph: costs, certificate,
        times of both methods, ratios), ``outliers`` (robust mode rows) and ``summary``
        (the figures :data:`BARS` reads).

    Raises:
        InputError: the data folder or a file is missing, or gtsam is not installed.
    """
    import numpy as np
    from tqdm import tqdm

    from katazuke.perception.rotavg import RotAvgConfig, read_graph, synthetic_graph

    data = Path(cfg.data)
    if not data.is_dir():
        raise InputError(f"benchmark data folder not found: {data} (use --data)")
    try:
        import gtsam  # noqa: F401
    except ImportError:
        raise InputError("gtsam is not installed (pip install gtsam==4.3.0)") from None

    files = QUICK_FILES if cfg.quick else FILES
    synth = QUICK_SYNTHETIC if cfg.quick else SYNTHETIC
    outl = QUICK_OUTLIERS if cfg.quick else OUTLIERS
    rows: list[dict[str, Any]] = []
    orows: list[dict[str, Any]] = []
    jobs = [("file", f) for f in files] + [("syn", s) for s in synth] + [("out", o) for o in outl]
    for kind, spec in tqdm(jobs, desc="bench rotavg", unit="problem"):
        if kind == "file":
            p = data / spec
            if not p.exists():
                raise InputError(f"benchmark file missing: {p}")
            rows.append(_bench_one(spec, read_graph(p), cfg.repeats, dict(kind="file", noise_deg=None)))
        elif kind == "syn":
            n, deg, noise = spec
            g, _, _ = synthetic_graph(n, deg, noise, np.random.default_rng(cfg.seed + n + deg))
            rows.append(_bench_one(f"synthetic n={n} deg={deg} noise={noise}", g, cfg.repeats,
                                   dict(kind="synthetic", noise_deg=noise, avg_degree=deg)))
        else:
            n, deg, noise, frac = spec
            orows.append(_bench_outliers(n, deg, noise, frac, cfg.seed + 7, cfg.repeats))
    rc = RotAvgConfig()
    from katazuke.perception.rotavg import single_threaded_blas
    from katazuke.perception.rotavg.fast import FAST_MAX_NODES

    with single_threaded_blas():  # what both methods were timed under
        threads = _thread_state()

    return {
        "settings": {"quick": bool(cfg.quick), "repeats": cfg.repeats, "seed": cfg.seed,
                     "niceness": os.nice(0), "noinit_budget_s": NOINIT_BUDGET_S,
                     "noinit_max_n": NOINIT_MAX_N, "small_m": SMALL_M,
                     "small_min_time_s": SMALL_MIN_TIME_S, "small_rounds_max": SMALL_ROUNDS_MAX,
                     "small_block": SMALL_BLOCK,
                     "certificate_tol": rc.certificate_tol,
                     "robust_threshold_deg": rc.robust_threshold_deg,
                     "fast_max_nodes": FAST_MAX_NODES, "threads": threads},
        "problems": rows, "outliers": orows, "summary": _summary(rows, orows),
    }


def _fmt(x: Any, spec: str) -> str:
    return x if isinstance(x, str) else ("–" if x is None else format(x, spec))


def _threads_text(t: dict[str, Any] | None) -> str:
    if not t:
        return "not recorded"
    pools = t.get("pools")
    p = ("threadpoolctl not installed" if pools is None else
         ", ".join(f"{x['api']} {x['num_threads']}" for x in pools) or "no BLAS/OpenMP pool")
    return f"{p} (inside the limit); TBB {'loaded' if t.get('tbb_loaded') else 'not loaded'}"


def _range(values: list[float], spec: str) -> str:
    return f"{format(min(values), spec)}..{format(max(values), spec)}" if values else "–"


def markdown(res: dict[str, Any]) -> str:
    """The report of :func:`run`'s results (bars table from :data:`BARS`)."""
    from katazuke.bench.harness import bars_markdown

    s, rows, orows, summ = res["settings"], res["problems"], res["outliers"], res["summary"]
    L = ["# Rotation averaging vs GTSAM Shonan (`katazuke bench rotavg`)", "",
         "- cost: unweighted chordal sum over edges of ||R_i R_ij - R_j||_F^2 for both methods",
         f"- times: median of {s['repeats']} rounds after a warm-up of every timed function (3 "
         f"calls for m < {s['small_m']}, else 1; for m < {s['small_m']} at least 9 rounds and more "
         f"until ours has run {s.get('small_min_time_s', 0):g} s in total, at most "
         f"{s.get('small_rounds_max', 9)}: column `rounds`; at most "
         "3 for n >= 5000); the methods take turns within each round (ours, spectral start, "
         "GTSAM; the next round reversed), so both see the same machine load, and both run under "
         f"the same one-thread BLAS limit; for m < {s['small_m']} a turn is "
         f"{s.get('small_block', 1)} calls back to back, the first discarded and the median of "
         "the rest kept, so each method is timed with warm caches as in a loop of solves; "
         "ours = `RotationAveraging.solve` on the loaded "
         "graph = spectral start + Newton + certificate (the solver "
         "object is reused across rounds, as a service would, so its small-graph buffers are "
         "too); GTSAM = the faster of `run(spectral start, 3, 10)` *including* the time to build "
         "its problem from the same loaded graph and to compute that start (our public "
         "`spectral_init`, a fresh call each time) and `run(random start, 3, 10)` (one run in a "
         f"forked child, killed after {s['noinit_budget_s']:.0f} s; not run for n >= "
         f"{s['noinit_max_n']}: \"skipped: > budget\"). File parsing is excluded for both. "
         "`ratio vs GTSAM run only` leaves the spectral start out of GTSAM's time.",
         f"- process niceness {s['niceness']}; threads: {_threads_text(s.get('threads'))}", "",
         "## Bars", "", bars_markdown(evaluate_bars(res, BARS)), ""]
    if summ["cost_not_met_problems"]:
        L.append(f"Cost bar not met on: {', '.join(summ['cost_not_met_problems'])}.")
    if summ["slower_problems"]:
        L.append(f"Slower than GTSAM on: {', '.join(summ['slower_problems'])}.")
    L += ["", "## Problems", "",
          "| problem | n | m | our cost | GTSAM cost | rel. diff | our λ_min / certified | our time [s] "
          "| GTSAM time [s] (variant) | speed ratio | ratio vs GTSAM run only | rounds | ratio per "
          "round (min / median) |",
          "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        L.append(f"| {r['problem']} | {r['n']} | {r['m']} | {r['ours_cost']:.10g} | "
                 f"{r['gtsam_best_cost']:.10g} | {r['rel_cost_diff']:.2e} | "
                 f"{r['ours_lambda_min']:.2e} / {'yes' if r['ours_certified'] else 'NO'} | "
                 f"{r['ours_time_s']:.3f} | {r['gtsam_time_s']:.3f} ({r['gtsam_best']}; run "
                 f"{r['gtsam_init_run_s']:.3f}, no-init {_fmt(r['gtsam_noinit_s'], '.3f')}) | "
                 f"{r['speed_ratio']:.2f}x | {r['speed_ratio_vs_gtsam_run_only']:.2f}x | "
                 f"{_fmt(r.get('rounds'), 'd')} | {_fmt(r.get('speed_ratio_rounds_min'), '.2f')} / "
                 f"{_fmt(r.get('speed_ratio_rounds_median'), '.2f')} |")
    L += ["", "GTSAM cost is the lower of its two runs; `rel. diff` = (ours - GTSAM) / GTSAM "
          "(negative: ours is lower).", "",
          f"## Outliers (robust mode, GNC-TLS, threshold {s['robust_threshold_deg']:g} deg)", "",
          "| problem | m | planted | rejected (true / inlier) | robust error [deg] | outlier-free "
          "error [deg] | ratio | least-squares error | GTSAM error | certified | robust time [s] "
          "| GTSAM time [s] |", "|---|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in orows:
        L.append(f"| {r['problem']} | {r['m']} | {r['planted_outliers']} | {r['rejected']} "
                 f"({r['rejected_true_outliers']} / {r['rejected_inliers']}) | "
                 f"{r['robust_error_deg']:.3f} | {r['clean_error_deg']:.3f} | {r['error_ratio']:.2f} | "
                 f"{r['least_squares_error_deg']:.3f} | {_fmt(r['gtsam_error_deg'], '.3f')} | "
                 f"{'yes' if r['robust_certified'] else 'NO'} | {r['robust_time_s']:.3f} | "
                 f"{r['gtsam_time_s']:.3f} |")
    lower = [-r["rel_cost_diff"] for r in rows if r["rel_cost_diff"] < 0]
    g_lam = [r["gtsam_lambda_min"] for r in rows if isinstance(r["gtsam_lambda_min"], float)]
    small = [r for r in rows if r["m"] < s["small_m"]]
    L += ["", "Errors: mean angle to the ground truth after the best global alignment. GTSAM "
          "Shonan is not robust; its time is the least-squares solve on the same graph.", "",
          "## How to read this", "",
          f"- Certificate: `certified` iff lambda_min(Lambda - R~) >= -{s['certificate_tol']:g} x "
          f"mean weighted degree. Connected graphs with n <= {s['fast_max_nodes']} take the lean "
          "dense path (perception/rotavg/fast.py: one Cholesky factor for the spectral start, "
          "dense Newton, and a dense Cholesky of Lambda - R~ + tol I that proves lambda_min > "
          "-tol; the value shown is the smallest Ritz value on the gauge null space). Otherwise "
          "lambda_min comes from a dense LAPACK eigensolver (backend dense), from the inertia of a "
          "sparse LDL^T-type factorisation of Lambda - R~ + tol I (SLAM-like graphs: proves "
          "lambda_min > -tol; the value shown is then the smallest Ritz value on the gauge null "
          "space), or from LOBPCG on the complement of that null space (random graphs; "
          "numerical, stopped once the sign is decided by the residual bound).",
          f"- GTSAM's own lambda_min (in the JSON) ranges over {_range(g_lam, '.1e')} here; its cost "
          f"is above ours on {len(lower)} of {len(rows)} problems, by {_range(lower, '.0e')} "
          "(relative): that is where `rel. diff` is negative.",
          f"- Small problems (m < {s['small_m']}, {len(small)} here) take "
          f"{_range([1000 * r['ours_time_s'] for r in small], '.2f')} ms (ours) and "
          f"{_range([1000 * r['gtsam_time_s'] for r in small], '.2f')} ms (GTSAM): at that size "
          "our Python overhead meets GTSAM's C++, and the ratio on a shared machine (load "
          "average in the footer) is decided by load noise as much as by the code.",
          "- `ratio per round`: GTSAM's time / ours within each round (the GTSAM variant started "
          "from the spectral solution); its minimum shows how far load noise moved the ratio. "
          f"1-min load average at the start of the problems: "
          f"{_range([r['loadavg_1min'] for r in rows if r.get('loadavg_1min') is not None], '.2f')}."]
    return "\n".join(L) + "\n"
