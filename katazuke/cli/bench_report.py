"""``katazuke bench report``: assemble docs/BENCHMARKS.md from the per-topic summaries
that each ``katazuke bench <topic>`` writes to docs/bench/<topic>.md."""
from __future__ import annotations

import argparse
from pathlib import Path

from katazuke.rosenv import repo_root

ORDER = ("setup", "launch", "bag", "sim", "sim_bridge", "control", "control_iid", "control_sim", "rotavg",
         "detection")

HEADER = """# Katazuke benchmarks

Every figure below was measured by the command shown with it, on the machine named under
it, with the comparison (the peer implementation or the baseline) measured in the same
run. Raw results with commit, machine and package versions are in `docs/bench/*.json`.
This file is assembled by `katazuke bench report` from `docs/bench/*.md`.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bench-dir", default=str(repo_root() / "docs" / "bench"))
    parser.add_argument("--out", default=str(repo_root() / "docs" / "BENCHMARKS.md"))


def main(args: argparse.Namespace) -> int:
    bench = Path(args.bench_dir)
    files = sorted(bench.glob("*.md"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER
                                                     else len(ORDER), p.stem))
    parts = [HEADER]
    for f in files:
        text = f.read_text().strip()
        if text.startswith("#"):
            # each summary's top heading becomes a section (##) of this file
            lines = text.splitlines()
            top = min(len(ln) - len(ln.lstrip("#")) for ln in lines if ln.startswith("#"))
            shift = "#" * max(0, 2 - top)
            text = "\n".join(shift + ln if ln.startswith("#") else ln for ln in lines)
        else:
            text = f"## {f.stem}\n\n{text}"
        parts.append(text)
    Path(args.out).write_text("\n\n".join(parts) + "\n")
    print(f"wrote {args.out} from {len(files)} summaries")
    return 0
