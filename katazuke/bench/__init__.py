"""Benchmarks and experiments: one module per capability on one shared harness.

``katazuke/bench/<capability>.py`` exposes ``run(cfg) -> dict`` (measure), ``markdown(result)
-> str`` (render) and ``BARS`` (the bars both the report and the pass/fail check read);
``katazuke/cli/bench_<capability>.py`` only parses arguments, calls ``run`` and writes with
:func:`katazuke.bench.harness.write_results`. ``katazuke bench report``
(:mod:`katazuke.bench.report`) assembles ``docs/BENCHMARKS.md`` from ``docs/bench/*.json|md``.
:mod:`katazuke.bench.tour` is the scripted tour (``katazuke sim tour``); :mod:`katazuke.bench.tidy` the tidy-up episodes (``katazuke bench tidy``, ``katazuke demo``).
Import the modules by name (``from katazuke.bench import detection``); nothing heavy is
imported here.
"""

__all__ = ["harness", "report", "tour", "setup", "launch", "bag", "sim", "sim_bridge", "control",
           "control_iid", "control_sim", "control_sim_harness", "rotavg", "detection"]
