"""``katazuke bench grounding``: grounding on held-out rooms and phrasings, with the
rule-based parser measured in the same run.

The work is :mod:`katazuke.bench.grounding`; this module parses the options and writes
``<out-dir>/grounding.json`` and ``<out-dir>/grounding.md``.
"""
from __future__ import annotations

import argparse
import json

from katazuke.rosenv import repo_root

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rooms", type=int, default=100, help="test-profile rooms")
    parser.add_argument("--per-room", type=int, default=30, help="instructions per room")
    parser.add_argument("--seed", type=int, default=0, help="seed of the instructions")
    parser.add_argument("--real-asr", type=int, default=150,
                        help="instructions spoken (held-out voices) and recognised; 0 = none")
    parser.add_argument("--weights", default="", help="grounding weights (default: committed)")
    parser.add_argument("--params", default="launch/params/tidy.yaml",
                        help="the task manager's params (vocabulary, containers)")
    parser.add_argument("--work", default="out/grounding", help="room cache folder")
    parser.add_argument("--out-dir", default=str(repo_root() / "docs" / "bench"),
                        help="where grounding.json and grounding.md go")


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from katazuke.bench import grounding
    from katazuke.bench.harness import write_results

    cfg = grounding.GroundingBenchConfig(rooms=args.rooms, per_room=args.per_room,
                                         seed=args.seed, real_asr=args.real_asr,
                                         weights=args.weights, params=args.params,
                                         work=args.work)
    res = grounding.run(cfg, progress=lambda x: tqdm(x, mininterval=10))
    _, mpath = write_results("grounding", res, grounding.markdown(res), args.out_dir,
                             packages=("torch", "faster-whisper", "ctranslate2", "katazuke"),
                             bars=grounding.BARS)
    print(json.dumps({k: res["text"][k] for k in ("target_top1_no_question",
                                                  "target_top1_with_question",
                                                  "question_rate", "destination_accuracy",
                                                  "where_is_accuracy")}))
    print(mpath.read_text())
    return 0
