"""Graph IO: round trips through every format, shared data files, errors with line numbers,
and the ``katazuke rotavg`` command."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from katazuke.errors import InputError
from katazuke.perception.rotavg import (ViewGraph, read_graph, synthetic_graph,
                                        write_graph, write_rotations)


def _graph() -> ViewGraph:
    g, _, _ = synthetic_graph(12, 4, 5.0, np.random.default_rng(20))
    ids = np.arange(12) * 3 + 100  # arbitrary, non-contiguous file ids
    w = np.random.default_rng(21).uniform(0.5, 4.0, g.num_edges)
    return ViewGraph.from_arrays(12, g.edges, g.rotations, w, ids)


@pytest.mark.parametrize("fmt, suffix, keeps_weights", [
    ("g2o", ".g2o", True), ("toro", ".graph", False), ("1dsfm", "EGs.txt", False), ("npz", ".npz", True)])
def test_round_trip(tmp_path: Path, fmt: str, suffix: str, keeps_weights: bool) -> None:
    g = _graph()
    p = tmp_path / ("EGs.txt" if fmt == "1dsfm" else f"graph{suffix}")
    write_graph(g, p, fmt)
    h = read_graph(p)  # format detected
    assert h.num_nodes == g.num_nodes and h.num_edges == g.num_edges
    np.testing.assert_array_equal(h.node_ids, g.node_ids)
    np.testing.assert_array_equal(h.edges, g.edges)
    np.testing.assert_allclose(h.rotations, g.rotations, atol=1e-12)
    if keeps_weights:
        np.testing.assert_allclose(h.weights, g.weights, rtol=1e-12)


@pytest.mark.parametrize("fmt", ["g2o", "toro", "1dsfm", "npz"])
def test_written_rotations_read_back(tmp_path: Path, fmt: str) -> None:
    from katazuke.perception.rotavg import quat_to_rot, rpy_to_rot
    R = _graph().rotations[:5]
    ids = np.array([7, 8, 9, 10, 11])
    p = tmp_path / f"rot.{fmt}"
    write_rotations(p, R, ids, fmt)
    if fmt == "npz":
        np.testing.assert_allclose(np.load(p)["rotations"], R)
        return
    rows = [line.split() for line in p.read_text().splitlines()]
    if fmt == "g2o":
        back = quat_to_rot(np.array([[float(x) for x in r[5:9]] for r in rows]))
    elif fmt == "toro":
        back = rpy_to_rot(np.array([[float(x) for x in r[5:8]] for r in rows]))
    else:  # Bundler world->camera = R^T
        back = np.swapaxes(np.array([[float(x) for x in r[1:]] for r in rows]).reshape(-1, 3, 3), 1, 2)
    np.testing.assert_allclose(back, R, atol=1e-12)
    assert [int(r[1] if fmt != "1dsfm" else r[0]) for r in rows] == ids.tolist()


def test_shared_data_files(shared_data: Path) -> None:
    d = shared_data / "rotavg"
    g = read_graph(d / "tinyGrid3D.g2o")
    assert (g.num_nodes, g.num_edges) == (9, 11)
    t = read_graph(d / "gtsam_sphere_smallnoise.graph")
    assert (t.num_nodes, t.num_edges) == (2200, 8647)
    m = read_graph(d / "1dsfm_Madrid_Metropolis")
    assert (m.num_nodes, m.num_edges) == (394, 23784)


@pytest.mark.parametrize("name, text, needle", [
    ("a.g2o", "EDGE_SE3:QUAT 0 1 0 0 0 0 0 0 1\nEDGE_SE3:QUAT 1 2 0 0 0 0 0 nan 1\n", "a.g2o:2: NaN"),
    ("b.g2o", "VERTEX_SE3:QUAT 0 0 0 0 0 0 0 1\nEDGE_SE3:QUAT 0 1 0 0 0\n", "b.g2o:2: EDGE_SE3:QUAT needs"),
    ("c.g2o", "EDGE_SE3:QUAT 0 x 0 0 0 0 0 0 1\n", "c.g2o:1: node id 'x'"),
    ("d.g2o", "EDGE_SE3:QUAT 0 1 0 0 0 0 0 0 3\n", "d.g2o:1: quaternion norm"),
    ("e.graph", "EDGE3 0 1 0 0 0 0 0\n", "e.graph:1: EDGE3 needs"),
    ("EGs.txt", "0 1 1 0 0 0 1 0 0 0 1 0 0 0\n1 2 1 0 0 0 1 0 0 0 abc 0 0 0\n", "EGs.txt:2: expected numbers"),
    ("f.g2o", "EDGE_SE3:QUAT 3 3 0 0 0 0 0 0 1\n", "f.g2o:1: self loop"),
    ("g.g2o", "EDGE_SE2 0 1 0 0 0\n", "2D"),
    ("h.txt", "hello world\n", "unknown graph format"),
])
def test_malformed_files_name_file_and_line(tmp_path: Path, name: str, text: str, needle: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(InputError) as exc:
        read_graph(p)
    assert needle in str(exc.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_graph(tmp_path / "nope.g2o")


def _cli(argv: list[str]) -> int:
    from katazuke.cli import rotavg
    parser = argparse.ArgumentParser()
    rotavg.add_arguments(parser)
    return rotavg.main(parser.parse_args(argv))


def test_cli_prints_the_certificate_and_writes_rotations(tmp_path: Path, capsys) -> None:
    g, _, _ = synthetic_graph(30, 4, 5.0, np.random.default_rng(22))
    src = tmp_path / "g.g2o"
    write_graph(g, src, "g2o")
    out = tmp_path / "out.g2o"
    assert _cli([str(src), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "certified   : yes" in text and "lambda_min" in text and "duality gap" in text
    assert len(out.read_text().splitlines()) == 30
    assert _cli([str(src), "--robust", "--out", str(tmp_path / "o.npz"), "--out-format", "npz"]) == 0
    assert "rejected    : 0 edges" in capsys.readouterr().out
    with pytest.raises(InputError, match="--anchor 99"):
        _cli([str(src), "--anchor", "99"])
