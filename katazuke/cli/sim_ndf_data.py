"""``katazuke sim ndf-data``: procedural NDF training data (mugs, bowls, bottles).

Writes ``OUT/train/<category>/*.npz`` (``--per-category`` each) and the held-out
``OUT/test/<category>/*.npz`` (``--test-per-category`` each, another seed stream), one
shard per instance (``katazuke.perception.ndf.data``). Resumable: shards that exist are
skipped; the same ``--seed`` and settings give byte-identical files.
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="dataset folder (created)")
    parser.add_argument("--per-category", type=int, required=True,
                        help="training instances per category")
    parser.add_argument("--test-per-category", type=int, default=None,
                        help="held-out instances per category (default: a tenth, at least 4)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--categories", default="mug,bowl,bottle",
                        help="comma-separated categories")
    parser.add_argument("--config", default=None, help="YAML of NdfDataConfig fields")


def main(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from katazuke.config import load_config
    from katazuke.errors import InputError
    from katazuke.perception.ndf.config import NdfDataConfig
    from katazuke.perception.ndf.data import write_dataset

    if args.per_category < 1:
        raise InputError(f"--per-category must be >= 1; got {args.per_category}")
    n_test = (max(4, args.per_category // 10) if args.test_per_category is None
              else args.test_per_category)
    cfg = load_config(NdfDataConfig, args.config)
    cats = [c.strip() for c in args.categories.split(",") if c.strip()]
    t0 = time.perf_counter()
    for split, n in (("train", args.per_category), ("test", n_test)):
        res = write_dataset(args.out, split, n, args.seed, cfg, cats,
                            lambda jobs, s=split: tqdm(jobs, desc=f"ndf {s}", unit="shard",
                                                       mininterval=2))
        print(f"{split}: {res['written']} shards written, {res['skipped']} already there")
    print(f"done in {time.perf_counter() - t0:.0f} s: {args.out}")
    return 0
