"""Read and write view graphs: g2o, TORO, 1DSfM and numpy ``.npz``.

Formats (relative rotation convention after reading: ``R_ij ~= R_i^T R_j``):

- ``g2o``: ``EDGE_SE3:QUAT i j x y z qx qy qz qw I11 I12 .. I66`` (21 upper-triangular
  information entries in g2o's ``(t, R)`` order; translations are ignored). The edge
  weight is ``3 / tr(Omega_R^-1)`` (the isotropic precision of the rotation block, SE-Sync
  style); files without information get weight 1. ``VERTEX_SE3:QUAT`` lines declare nodes.
- ``toro``: ``EDGE3 i j x y z roll pitch yaw [21 info]`` with ``R = Rz(yaw) Ry(pitch)
  Rx(roll)``; weights 1 (the information layout differs between TORO writers).
  ``VERTEX3`` lines declare nodes.
- ``1dsfm``: ``EGs.txt`` lines ``i j R(9, row-major) t(3)`` with ``R = Rb_i Rb_j^T`` for
  Bundler world->camera rotations ``Rb``, i.e. our convention with ``R_i = Rb_i^T``. A
  ``cc.txt`` next to it (one id per line) restricts the graph to that component.
- ``npz``: arrays ``edges (m,2)``, ``rotations (m,3,3)``, optional ``weights (m,)``,
  ``num_nodes`` and ``node_ids (n,)``.

Node ids in files are arbitrary integers; they are renumbered ``0..n-1`` in increasing
order and kept in :attr:`ViewGraph.node_ids` for writing back.

Rotations, in every format, follow one rule (:mod:`.validate`): the *deviation* of a
rotation as written is the size of the correction that makes it a rotation
(``| ||q|| - 1 |`` for a g2o quaternion, ``max |singular value - 1|`` for a 1DSfM or
``.npz`` matrix; TORO angles are always a rotation). Up to :data:`ROTATION_TOL` (``1e-2``)
the rotation is normalised / projected to SO(3) silently (printed digits and float32
rounding stay far below it); beyond it, and for reflections (``det <= 0``), NaN or inf,
reading fails with an :class:`~katazuke.errors.InputError` that names the file, the line
(text formats) or edge index (``.npz``) and the deviation.

A file with no data (0 bytes, or only blank lines and ``#`` comments) is reported as
empty, naming the file; a file with data but no edges as having no edges.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from katazuke.errors import InputError

from .graph import ViewGraph
from .so3 import quat_to_rot, rot_to_quat, rot_to_rpy, rpy_to_rot
from .validate import ROTATION_TOL, check_quaternions

__all__ = ["FORMATS", "ROTATION_TOL", "detect_format", "read_graph", "write_graph",
           "write_rotations"]

FORMATS = ("g2o", "toro", "1dsfm", "npz")


def _empty(path: Path) -> InputError:
    """The error for a file without data lines."""
    size = path.stat().st_size if path.is_file() else 0
    what = "0 bytes" if size == 0 else "only blank lines and # comments"
    return InputError(f"{path}: empty file ({what}): no rotation-averaging graph to read")


def detect_format(path: str | os.PathLike) -> str:
    """Format of ``path`` from its name or first data line.

    Raises:
        InputError: the format cannot be recognised.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "EGs.txt").is_file():
            return "1dsfm"
        raise InputError(f"{p}: a directory must contain EGs.txt (1DSfM)")
    if p.suffix == ".npz":
        return "npz"
    if p.name == "EGs.txt":
        return "1dsfm"
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            tok = line.split()
            if not tok or tok[0].startswith("#"):
                continue
            if tok[0].startswith("EDGE_SE3") or tok[0].startswith("VERTEX_SE3"):
                return "g2o"
            if tok[0] in ("EDGE3", "VERTEX3"):
                return "toro"
            if tok[0].startswith(("EDGE_SE2", "VERTEX_SE2", "EDGE2", "VERTEX2")):
                raise InputError(f"{p}: 2D (SE(2)) graph; only 3D rotation graphs are supported")
            if len(tok) == 14:
                return "1dsfm"
            break
        else:
            raise _empty(p)
    raise InputError(f"{p}: unknown graph format; use --format one of {list(FORMATS)}")


def _floats(tok: list[str], where: str) -> np.ndarray:
    try:
        v = np.array([float(t) for t in tok])
    except ValueError:
        raise InputError(f"{where}: expected numbers, got {' '.join(tok)!r}") from None
    if not np.all(np.isfinite(v)):
        raise InputError(f"{where}: NaN or infinite value")
    return v


def _int(t: str, where: str) -> int:
    try:
        return int(t)
    except ValueError:
        raise InputError(f"{where}: node id {t!r} is not an integer") from None


def _finish(path: Path, ids_seen: set[int], E: list[tuple[int, int]], Rs: list[np.ndarray],
            ws: list[float], lines: list[int]) -> ViewGraph:
    if not E:
        raise InputError(f"{path}: no edges found")
    raw = np.asarray(E, dtype=np.int64)
    ids = np.unique(np.concatenate([raw.ravel(), np.fromiter(ids_seen, np.int64, len(ids_seen))]))
    idx = np.searchsorted(ids, raw)
    loops = np.flatnonzero(idx[:, 0] == idx[:, 1])
    if loops.size:
        raise InputError(f"{path}:{lines[loops[0]]}: self loop on node {raw[loops[0], 0]}")
    return ViewGraph.from_arrays(ids.size, idx, np.stack(Rs), np.asarray(ws), ids,
                                 source=str(path), lines=lines)


def _bulk(path: Path, rows: list[list[str]], lines: list[int], first: int, kind: str
          ) -> tuple[np.ndarray, np.ndarray]:
    """Node ids ``(m, 2)`` (tokens ``first``, ``first+1``) and the floats after them
    ``(m, k)`` of equal-length token rows, converted in bulk; on any problem the rows are
    re-read one by one so the error names the exact line."""
    try:
        ids = np.array([r[first:first + 2] for r in rows], dtype=np.int64)
        vals = np.array([r[first + 2:] for r in rows], dtype=np.float64)
    except (ValueError, OverflowError):
        for r, ln in zip(rows, lines):
            where = f"{path}:{ln}"
            _int(r[first], where), _int(r[first + 1], where)
            _floats(r[first + 2:], where)
        raise InputError(f"{path}: malformed {kind} line") from None
    bad = np.flatnonzero(~np.isfinite(vals).all(axis=1))
    if bad.size:
        raise InputError(f"{path}:{lines[bad[0]]}: NaN or infinite value")
    return ids.reshape(-1, 2), vals


def _scan(path: Path, vertex: tuple[str, int], edge: tuple[str, tuple[int, int], str],
          reject: tuple[str, ...] = ()) -> tuple[set[int], dict[int, list[list[str]]], dict[int, list[int]]]:
    """Tokenise a g2o-style file: vertex ids, and edge token rows bucketed by row length.

    Args:
        vertex: (tag, number of tokens incl. the tag).
        edge: (tag, the two allowed token counts incl. the tag, field description for errors).
        reject: tag prefixes that make the file unsupported (2-D elements).
    Returns:
        (vertex ids, {row length: token rows}, {row length: 1-based line numbers}).
    """
    vtag, vlen = vertex
    etag, elens, fields = edge
    rows: dict[int, list[list[str]]] = {n: [] for n in elens}
    lines: dict[int, list[int]] = {n: [] for n in elens}
    ids: set[int] = set()
    data = False
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for ln, line in enumerate(fh, 1):
            tok = line.split()
            if not tok or tok[0].startswith("#"):
                continue
            data = True
            where = f"{path}:{ln}"
            if tok[0] == vtag:
                if len(tok) != vlen:
                    raise InputError(f"{where}: {vtag} needs {vlen - 1} fields, got {len(tok) - 1}")
                ids.add(_int(tok[1], where))
            elif tok[0] == etag:
                if len(tok) not in elens:
                    raise InputError(f"{where}: {etag} needs {elens[0] - 1} or {elens[1] - 1} fields "
                                     f"({fields}), got {len(tok) - 1}")
                rows[len(tok)].append(tok)
                lines[len(tok)].append(ln)
            elif reject and tok[0].startswith(reject):
                raise InputError(f"{where}: 2D (SE(2)) element; only 3D graphs are supported")
    if not data:
        raise _empty(path)
    if not any(rows.values()):
        raise InputError(f"{path}: no edges found (no {etag} line)")
    return ids, rows, lines


def _in_file_order(path: Path, ids: set[int], E: list, R: list, W: list, L: list) -> ViewGraph:
    """Concatenate the per-bucket edge arrays and restore the file order of the edges."""
    E_, R_, W_, L_ = (np.concatenate(x) for x in (E, R, W, L))
    perm = np.argsort(L_, kind="stable")
    return _finish(path, ids, E_[perm].tolist(), list(R_[perm]), W_[perm].tolist(), L_[perm].tolist())


def _read_g2o(path: Path) -> ViewGraph:
    ids, rows, lines = _scan(path, ("VERTEX_SE3:QUAT", 9),
                             ("EDGE_SE3:QUAT", (10, 31), "i j x y z qx qy qz qw [21 info]"),
                             reject=("EDGE_SE2", "VERTEX_SE2"))
    E, R, W, L = [], [], [], []
    for k in (10, 31):
        if not rows[k]:
            continue
        e, v = _bulk(path, rows[k], lines[k], 1, "EDGE_SE3:QUAT")
        q = check_quaternions(v[:, 3:7], str(path), lines[k])
        w = np.ones(len(e))
        if k == 31:
            U = np.zeros((len(e), 6, 6))
            iu = np.triu_indices(6)
            U[:, iu[0], iu[1]] = v[:, 7:]
            info = U + np.swapaxes(np.triu(U, 1), 1, 2)
            Om = info[:, 3:, 3:]
            ev = np.linalg.eigvalsh(Om)
            badi = np.flatnonzero(ev.min(axis=1) <= 0)
            if badi.size:
                raise InputError(f"{path}:{lines[k][badi[0]]}: rotation information block is not "
                                 "positive definite")
            w = 3.0 / np.sum(1.0 / ev, axis=1)  # 3 / tr(Omega_R^-1)
        E.append(e), R.append(quat_to_rot(q)), W.append(w), L.append(np.asarray(lines[k]))
    return _in_file_order(path, ids, E, R, W, L)


def _read_toro(path: Path) -> ViewGraph:
    ids, rows, lines = _scan(path, ("VERTEX3", 8),
                             ("EDGE3", (9, 30), "i j x y z roll pitch yaw [21 info]"))
    E, R, W, L = [], [], [], []
    for k in (9, 30):
        if rows[k]:
            e, v = _bulk(path, rows[k], lines[k], 1, "EDGE3")
            E.append(e), R.append(rpy_to_rot(v[:, 3:6])), W.append(np.ones(len(e)))
            L.append(np.asarray(lines[k]))
    return _in_file_order(path, ids, E, R, W, L)


def _read_1dsfm(path: Path) -> ViewGraph:
    if path.is_dir():
        path = path / "EGs.txt"
    keep: set[int] | None = None
    cc = path.parent / "cc.txt"
    if cc.is_file():
        keep = set()
        with cc.open("r", encoding="utf-8") as fh:
            for ln, line in enumerate(fh, 1):
                if line.strip():
                    keep.add(_int(line.strip(), f"{cc}:{ln}"))
    rows: list[list[str]] = []
    lines: list[int] = []
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for ln, line in enumerate(fh, 1):
            tok = line.split()
            if not tok or tok[0].startswith("#"):
                continue
            if len(tok) not in (11, 14):
                raise InputError(f"{path}:{ln}: EGs line needs 'i j R(9) [t(3)]' (11 or 14 fields), "
                                 f"got {len(tok)}")
            rows.append(tok[:11])
            lines.append(ln)
    if not rows:
        raise _empty(path)
    e, v = _bulk(path, rows, lines, 0, "EGs")
    if keep is not None:
        ok = np.array([a in keep and b in keep for a, b in e.tolist()], dtype=bool)
        e, v, lines = e[ok], v[ok], [ln for ln, k in zip(lines, ok) if k]
    if not lines:
        raise InputError(f"{path}: no edges found inside the component listed in {cc}")
    R = v[:, :9].reshape(-1, 3, 3)
    return _finish(path, set(), e.tolist(), list(R), [1.0] * len(lines), lines)


def _read_npz(path: Path) -> ViewGraph:
    if path.is_file() and path.stat().st_size == 0:
        raise _empty(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None
    if not hasattr(z, "files"):
        raise InputError(f"{path}: a single .npy array, not an .npz archive of edges, rotations")
    for key in ("edges", "rotations"):
        if key not in z:
            raise InputError(f"{path}: missing array '{key}' (need edges, rotations)")
    E = z["edges"]
    if E.size == 0:
        raise InputError(f"{path}: no edges found (array 'edges' is empty)")
    ids = z["node_ids"] if "node_ids" in z else None
    n = int(z["num_nodes"]) if "num_nodes" in z else (
        ids.size if ids is not None else int(E.max()) + 1 if E.size else 0)
    w = z["weights"] if "weights" in z else None
    return ViewGraph.from_arrays(n, E, z["rotations"], w, ids, source=str(path))


def read_graph(path: str | os.PathLike, fmt: str | None = None) -> ViewGraph:
    """Read a view graph.

    Args:
        path: a file (or a 1DSfM folder with ``EGs.txt``).
        fmt: one of :data:`FORMATS`, or None to detect it.

    Raises:
        InputError: missing or empty file, unknown format, malformed line (the message gives
            ``file:line``), NaN, reflections, a rotation further than :data:`ROTATION_TOL`
            from a rotation (see the module docstring), no edges.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    fmt = fmt or detect_format(p)
    readers = {"g2o": _read_g2o, "toro": _read_toro, "1dsfm": _read_1dsfm, "npz": _read_npz}
    if fmt not in readers:
        raise InputError(f"unknown format {fmt!r}; use one of {list(FORMATS)}")
    return readers[fmt](p)


_INFO_UPPER = " ".join(str(x) for x in np.eye(6)[np.triu_indices(6)].astype(int))


def write_graph(graph: ViewGraph, path: str | os.PathLike, fmt: str,
                rotations: np.ndarray | None = None) -> None:
    """Write ``graph`` (and optionally absolute ``rotations`` ``(n,3,3)`` as vertices).

    Translations are written as zeros. g2o information is ``diag(1,1,1,w,w,w)`` so the
    weight reads back unchanged; 1DSfM translations are zeros (only rotations matter).
    """
    p = Path(path)
    ids = graph.node_ids
    e = graph.edges
    rows = []
    if fmt == "g2o":
        if rotations is not None:
            q = rot_to_quat(rotations)
            rows += [f"VERTEX_SE3:QUAT {ids[k]} 0 0 0 {q[k, 0]:.17g} {q[k, 1]:.17g} {q[k, 2]:.17g} "
                     f"{q[k, 3]:.17g}" for k in range(graph.num_nodes)]
        q = rot_to_quat(graph.rotations)
        for k in range(graph.num_edges):
            info = np.eye(6)
            info[3:, 3:] *= graph.weights[k]
            up = " ".join(f"{x:.17g}" for x in info[np.triu_indices(6)])
            rows.append(f"EDGE_SE3:QUAT {ids[e[k, 0]]} {ids[e[k, 1]]} 0 0 0 {q[k, 0]:.17g} "
                        f"{q[k, 1]:.17g} {q[k, 2]:.17g} {q[k, 3]:.17g} {up}")
    elif fmt == "toro":
        if rotations is not None:
            a = rot_to_rpy(rotations)
            rows += [f"VERTEX3 {ids[k]} 0 0 0 {a[k, 0]:.17g} {a[k, 1]:.17g} {a[k, 2]:.17g}"
                     for k in range(graph.num_nodes)]
        a = rot_to_rpy(graph.rotations)
        rows += [f"EDGE3 {ids[e[k, 0]]} {ids[e[k, 1]]} 0 0 0 {a[k, 0]:.17g} {a[k, 1]:.17g} "
                 f"{a[k, 2]:.17g}" for k in range(graph.num_edges)]
    elif fmt == "1dsfm":
        for k in range(graph.num_edges):
            r = " ".join(f"{x:.17g}" for x in graph.rotations[k].ravel())
            rows.append(f"{ids[e[k, 0]]} {ids[e[k, 1]]} {r} 0 0 0")
    elif fmt == "npz":
        extra = {} if rotations is None else {"absolute_rotations": np.asarray(rotations)}
        np.savez(p, num_nodes=graph.num_nodes, edges=e, rotations=graph.rotations,
                 weights=graph.weights, node_ids=ids, **extra)
        return
    else:
        raise InputError(f"unknown format {fmt!r}; use one of {list(FORMATS)}")
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")


def write_rotations(path: str | os.PathLike, rotations: np.ndarray, node_ids: np.ndarray,
                    fmt: str) -> None:
    """Write absolute rotations ``(n, 3, 3)`` (camera/body -> world).

    g2o: ``VERTEX_SE3:QUAT id 0 0 0 qx qy qz qw``; toro: ``VERTEX3 id 0 0 0 r p y``;
    1dsfm: ``id Rb(9, row-major)`` with the Bundler world->camera ``Rb = R^T``;
    npz: arrays ``rotations`` and ``node_ids``.
    """
    p = Path(path)
    R = np.asarray(rotations)
    if fmt == "npz":
        np.savez(p, rotations=R, node_ids=node_ids)
        return
    if fmt == "g2o":
        q = rot_to_quat(R)
        rows = [f"VERTEX_SE3:QUAT {node_ids[k]} 0 0 0 {q[k, 0]:.17g} {q[k, 1]:.17g} {q[k, 2]:.17g} "
                f"{q[k, 3]:.17g}" for k in range(R.shape[0])]
    elif fmt == "toro":
        a = rot_to_rpy(R)
        rows = [f"VERTEX3 {node_ids[k]} 0 0 0 {a[k, 0]:.17g} {a[k, 1]:.17g} {a[k, 2]:.17g}"
                for k in range(R.shape[0])]
    elif fmt == "1dsfm":
        rows = [f"{node_ids[k]} " + " ".join(f"{x:.17g}" for x in R[k].T.ravel())
                for k in range(R.shape[0])]
    else:
        raise InputError(f"unknown format {fmt!r}; use one of {list(FORMATS)}")
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
