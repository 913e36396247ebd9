"""``katazuke bench report``: assemble docs/BENCHMARKS.md (see :mod:`katazuke.bench.report`)."""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.rosenv import repo_root

    parser.add_argument("--bench-dir", default=str(repo_root() / "docs" / "bench"),
                        help="folder of <topic>.json / <topic>.md and notes/ (default docs/bench)")
    parser.add_argument("--out", default=str(repo_root() / "docs" / "BENCHMARKS.md"),
                        help="file to write (default docs/BENCHMARKS.md)")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import report

    r = report.run(args.bench_dir, args.out)
    print(f"wrote {r['out']} from {len(r['topics'])} topics; {r['met']} of {r['bars']} bars met")
    return 0
