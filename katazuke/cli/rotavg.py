"""``katazuke rotavg FILE``: certified chordal rotation averaging of a view graph file.

Prints the cost, the optimality certificate (lambda_min of Lambda - R~, dual bound,
duality gap, certified yes/no), the time and the connected components; ``--out`` writes
the absolute rotations.

Input rotations follow one rule in every format (perception/rotavg/validate.py): within
1e-2 of a rotation (quaternion norm or matrix singular values off 1 by at most that) they
are normalised / projected silently; further off, or a reflection, is an error naming the
file and line (or the edge index of an ``.npz``) and the deviation. An empty file is
reported as empty.
"""
from __future__ import annotations

import argparse

from katazuke.errors import InputError

FORMATS = ("g2o", "toro", "1dsfm", "npz")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="view graph: g2o (EDGE_SE3:QUAT), TORO (EDGE3), 1DSfM EGs.txt "
                                     "(or its folder) or .npz. Rotations within 1e-2 of a rotation "
                                     "(quaternion norm, or matrix singular values, off 1 by at most "
                                     "that) are normalised; further off is an error naming the "
                                     "line / edge")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="input format (default: detected from the name / first line)")
    parser.add_argument("--robust", action="store_true", help="reject outlier edges (GNC-TLS)")
    parser.add_argument("--threshold-deg", type=float, default=None,
                        help="robust mode: residual angle [deg] above which an edge is an outlier")
    parser.add_argument("--unweighted", action="store_true",
                        help="ignore the file's information matrices (all weights 1)")
    parser.add_argument("--anchor", type=int, default=0, help="node index fixed to the identity")
    parser.add_argument("--config", default=None, help="YAML with RotAvgConfig fields")
    parser.add_argument("--out", default=None, help="write the absolute rotations to this file")
    parser.add_argument("--out-format", choices=FORMATS, default=None,
                        help="format of --out (default: the input format)")


def main(args: argparse.Namespace) -> int:
    from katazuke.config import load_config
    from katazuke.perception.rotavg import (RotAvgConfig, RotationAveraging, detect_format,
                                            read_graph, single_threaded_blas, write_rotations)

    fmt = args.format or detect_format(args.file)
    graph = read_graph(args.file, fmt)
    overrides: dict = {"anchor": args.anchor, "robust": bool(args.robust)}
    if args.unweighted:
        overrides["weighted"] = False
    if args.threshold_deg is not None:
        overrides["robust_threshold_deg"] = args.threshold_deg
    cfg = load_config(RotAvgConfig, args.config, **overrides)
    if not 0 <= cfg.anchor < graph.num_nodes:
        raise InputError(f"--anchor {cfg.anchor} is not a node index (0..{graph.num_nodes - 1})")
    with single_threaded_blas():
        res = RotationAveraging(cfg).solve(graph)
    c = res.certificate
    print(f"graph       : {args.file} ({fmt}), {graph.num_nodes} nodes, {graph.num_edges} edges")
    print(f"components  : {len(res.components)}" + (
        "" if len(res.components) == 1 else
        " (sizes " + ", ".join(str(x.size) for x in res.components[:10]) +
        (", ..." if len(res.components) > 10 else "") + ")"))
    print(f"init cost   : {res.init_cost:.10g} (degree-normalised spectral)")
    print(f"cost        : {res.cost:.12g} ({'weighted' if cfg.weighted else 'unweighted'} chordal)")
    print(f"dual bound  : {c.dual_bound:.12g}")
    print(f"duality gap : {c.duality_gap:.3g} (relative {c.relative_gap:.3g})")
    print(f"lambda_min  : {c.min_eigenvalue:.3g} (tolerance -{c.tolerance:.3g}, rank {c.rank})")
    print(f"certified   : {'yes' if c.certified else 'no'}")
    if cfg.robust:
        print(f"rejected    : {res.rejected_edges.size} edges" + (
            ": " + " ".join(str(int(e)) for e in res.rejected_edges[:50]) +
            (" ..." if res.rejected_edges.size > 50 else "") if res.rejected_edges.size else ""))
    print(f"time        : {res.time_s:.3f} s ({res.iterations} Newton iterations, {res.backend} "
          "linear algebra)")
    for note in res.notes:
        print(f"note        : {note}")
    if args.out:
        out_fmt = args.out_format or fmt
        write_rotations(args.out, res.rotations, graph.node_ids, out_fmt)
        print(f"wrote       : {args.out} ({out_fmt})")
    return 0
