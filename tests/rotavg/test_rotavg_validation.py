"""The one rotation-validation rule (perception/rotavg/validate.py) in every input format.

Each format is tried on both sides of :data:`ROTATION_TOL`: just inside, the rotation is
normalised / projected silently (no warning) to the same rotation the exact input gives;
just outside, reading fails with an error naming the file and line (text formats) or the
edge index (``.npz``, arrays, service requests) and the deviation found. Empty files say
"empty" and name the file, whichever reader sees them. Every real graph in the shared data
loads under the rule.
"""
from __future__ import annotations

import argparse
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from katazuke.errors import InputError
from katazuke.perception.rotavg import (ROTATION_TOL, ViewGraph, project_to_so3, quat_to_rot,
                                        read_graph, rot_to_quat, synthetic_graph, write_graph)
from katazuke.perception.rotavg.validate import quaternion_deviation, rotation_deviation

INSIDE, OUTSIDE = 0.5 * ROTATION_TOL, 2.0 * ROTATION_TOL


def _graph() -> ViewGraph:
    g, _, _ = synthetic_graph(8, 3, 10.0, np.random.default_rng(31))
    return g


def _deviation_in(msg: str) -> float:
    m = re.search(r"deviation ([0-9.e+-]+)", msg)
    assert m, msg
    return float(m.group(1))


def _g2o(path: Path, g: ViewGraph, scale_edge: int, scale: float) -> int:
    """Write ``g`` as g2o with edge ``scale_edge``'s quaternion scaled; its 1-based line."""
    q = rot_to_quat(g.rotations)
    q[scale_edge] *= scale
    lines = ["# header comment", "VERTEX_SE3:QUAT 0 0 0 0 0 0 0 1"]
    for k, (i, j) in enumerate(g.edges.tolist()):
        lines.append(f"EDGE_SE3:QUAT {i} {j} 0 0 0 " + " ".join(f"{x:.17g}" for x in q[k]))
    path.write_text("\n".join(lines) + "\n")
    return 3 + scale_edge


def _egs(path: Path, g: ViewGraph, scale_edge: int, scale: float) -> int:
    R = g.rotations.copy()
    R[scale_edge] *= scale
    lines = [f"{i} {j} " + " ".join(f"{x:.17g}" for x in R[k].ravel()) + " 0 0 0"
             for k, (i, j) in enumerate(g.edges.tolist())]
    path.write_text("\n".join(lines) + "\n")
    return 1 + scale_edge


def _npz(path: Path, g: ViewGraph, scale_edge: int, scale: float) -> None:
    R = g.rotations.copy()
    R[scale_edge] *= scale
    np.savez(path, edges=g.edges, rotations=R, num_nodes=g.num_nodes)


@pytest.mark.parametrize("fmt", ["g2o", "1dsfm", "npz"])
def test_inside_the_tolerance_is_normalised_silently(tmp_path: Path, fmt: str) -> None:
    g = _graph()
    k = 4
    p = tmp_path / {"g2o": "g.g2o", "1dsfm": "EGs.txt", "npz": "g.npz"}[fmt]
    {"g2o": _g2o, "1dsfm": _egs, "npz": _npz}[fmt](p, g, k, 1.0 + INSIDE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # accepted without any warning
        h = read_graph(p)
    assert h.num_edges == g.num_edges
    np.testing.assert_allclose(h.rotations, g.rotations, atol=1e-12)  # the scaled one too
    assert rotation_deviation(h.rotations).max() < 1e-12


@pytest.mark.parametrize("fmt", ["g2o", "1dsfm"])
def test_text_formats_beyond_the_tolerance_name_the_line_and_deviation(
        tmp_path: Path, fmt: str) -> None:
    g = _graph()
    p = tmp_path / ("g.g2o" if fmt == "g2o" else "EGs.txt")
    line = (_g2o if fmt == "g2o" else _egs)(p, g, 5, 1.0 + OUTSIDE)
    with pytest.raises(InputError) as exc:
        read_graph(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}:{line}: ")
    assert _deviation_in(msg) == pytest.approx(OUTSIDE, rel=1e-3)
    assert f"{ROTATION_TOL:g}" in msg


def test_npz_beyond_the_tolerance_names_the_edge_index_and_deviation(tmp_path: Path) -> None:
    g = _graph()
    p = tmp_path / "g.npz"
    _npz(p, g, 6, 1.0 - OUTSIDE)
    with pytest.raises(InputError) as exc:
        read_graph(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: edge 6: ") and "not orthonormal" in msg
    assert _deviation_in(msg) == pytest.approx(OUTSIDE, rel=1e-3)


def test_a_sheared_matrix_is_measured_by_its_singular_values() -> None:
    """Not only scaling: a shear inside the tolerance is projected, one beyond it refused."""
    g = _graph()
    for shear, ok in ((INSIDE, True), (OUTSIDE, False)):
        S = np.eye(3)
        S[0, 1] = shear  # singular values 1 +- ~shear/2
        R = g.rotations.copy()
        R[2] = R[2] @ S
        dev = float(rotation_deviation(R[2:3])[0])
        assert (dev <= ROTATION_TOL) == ok
        if ok:
            h = ViewGraph.from_arrays(g.num_nodes, g.edges, R)
            np.testing.assert_allclose(h.rotations[2], project_to_so3(R[2:3])[0], atol=1e-12)
        else:
            with pytest.raises(InputError, match=r"input: edge 2: .*deviation"):
                ViewGraph.from_arrays(g.num_nodes, g.edges, R)


def test_arrays_and_service_requests_follow_the_same_rule() -> None:
    g = _graph()
    R = g.rotations.copy()
    R[1] *= 1.0 + INSIDE
    h = ViewGraph.from_arrays(g.num_nodes, g.edges, R, source="request")
    np.testing.assert_allclose(h.rotations, g.rotations, atol=1e-12)
    R[1] *= (1.0 + OUTSIDE) / (1.0 + INSIDE)
    with pytest.raises(InputError, match=r"^request: edge 1: .*deviation 0\.02"):
        ViewGraph.from_arrays(g.num_nodes, g.edges, R, source="request")


def test_reflections_and_zero_quaternions_are_refused(tmp_path: Path) -> None:
    g = _graph()
    R = g.rotations.copy()
    R[3] = -R[3]
    with pytest.raises(InputError, match="edge 3: .*reflection"):
        ViewGraph.from_arrays(g.num_nodes, g.edges, R)
    p = tmp_path / "z.g2o"
    p.write_text("EDGE_SE3:QUAT 0 1 0 0 0 0 0 0 1\nEDGE_SE3:QUAT 1 2 0 0 0 0 0 0 0\n")
    with pytest.raises(InputError, match=rf"^{re.escape(str(p))}:2: quaternion norm 0 .*deviation 1"):
        read_graph(p)


def test_toro_angles_are_always_a_rotation(tmp_path: Path) -> None:
    p = tmp_path / "t.graph"
    p.write_text("EDGE3 0 1 0 0 0 7.5 -12.25 40\n")  # angles outside (-pi, pi] are fine
    h = read_graph(p)
    assert rotation_deviation(h.rotations).max() < 1e-12


def test_the_rule_round_trips_written_files(tmp_path: Path) -> None:
    """What our writers print (17 digits) is far inside the tolerance, in every format."""
    g = _graph()
    for fmt, name in (("g2o", "w.g2o"), ("toro", "w.graph"), ("1dsfm", "EGs.txt"), ("npz", "w.npz")):
        d = tmp_path / fmt
        d.mkdir()
        write_graph(g, d / name, fmt)
        np.testing.assert_allclose(read_graph(d / name).rotations, g.rotations, atol=1e-12)


@pytest.mark.parametrize("name, text, fmt", [
    ("a.g2o", "", None), ("b.g2o", "# only a comment\n\n   \n", None), ("c.txt", "", None),
    ("d.g2o", "", "g2o"), ("e.graph", "\n# nothing\n", "toro"), ("EGs.txt", "", None),
    ("f.txt", "", "1dsfm"), ("g.npz", "", None), ("h.dat", "", "npz"),
])
def test_an_empty_file_says_empty_and_names_the_file(tmp_path: Path, name: str, text: str,
                                                     fmt: str | None) -> None:
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(InputError) as exc:
        read_graph(p, fmt)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: empty file"), msg
    assert "unknown graph format" not in msg
    assert ("0 bytes" in msg) == (text == "")


def test_an_empty_1dsfm_folder_says_empty(tmp_path: Path) -> None:
    (tmp_path / "EGs.txt").write_text("")
    with pytest.raises(InputError, match=rf"^{re.escape(str(tmp_path / 'EGs.txt'))}: empty file"):
        read_graph(tmp_path)


def test_data_without_edges_is_not_called_empty(tmp_path: Path) -> None:
    p = tmp_path / "v.g2o"
    p.write_text("VERTEX_SE3:QUAT 0 0 0 0 0 0 0 1\n")
    with pytest.raises(InputError, match="no edges found"):
        read_graph(p)
    z = tmp_path / "v.npz"
    np.savez(z, edges=np.zeros((0, 2), np.int64), rotations=np.zeros((0, 3, 3)))
    with pytest.raises(InputError, match="no edges found"):
        read_graph(z)


def test_cli_help_states_the_tolerance() -> None:
    from katazuke.cli import rotavg
    parser = argparse.ArgumentParser()
    rotavg.add_arguments(parser)
    help_text = " ".join(parser.format_help().split())
    m = re.search(r"within ([0-9.e+-]+) of a rotation", help_text)
    assert m and float(m.group(1)) == ROTATION_TOL, help_text


def test_every_real_graph_loads_under_the_rule(shared_data: Path) -> None:
    """All 3D graphs in shared/data/rotavg load; their rotations as written sit far inside
    the tolerance (so the rule refuses nothing real); the 2D ones are refused as SE(2)."""
    d = shared_data / "rotavg"
    graphs = sorted(p for p in d.iterdir() if p.suffix in (".g2o", ".txt", ".graph"))
    graphs.append(d / "1dsfm_Madrid_Metropolis")
    assert len(graphs) == 14
    for p in graphs:
        g = read_graph(p)
        assert g.num_edges > 0, p
    # The raw deviations, measured the way the rule measures them.
    q = np.array([[float(x) for x in line.split()[6:10]]
                  for line in (d / "parking-garage.g2o").read_text().splitlines()
                  if line.startswith("EDGE_SE3:QUAT")])
    assert quaternion_deviation(q).max() < 1e-3 * ROTATION_TOL
    np.testing.assert_allclose(quat_to_rot(q)[0] @ quat_to_rot(q)[0].T, np.eye(3), atol=1e-12)
    M = np.array([[float(x) for x in line.split()[2:11]]
                  for line in (d / "1dsfm_Madrid_Metropolis" / "EGs.txt").read_text().splitlines()
                  if line.strip()]).reshape(-1, 3, 3)
    assert rotation_deviation(M).max() < 0.1 * ROTATION_TOL
    for p in sorted((d / "2d").glob("*.g2o")):
        with pytest.raises(InputError, match="2D"):
            read_graph(p)
