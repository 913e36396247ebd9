"""The shared launch-file check (``assert_launch_file_valid`` fixture, tests/conftest.py):
it accepts the repository's launch files and catches what the copied scanners caught."""
from __future__ import annotations

from pathlib import Path

import pytest

from katazuke.errors import KatazukeError


@pytest.mark.parametrize("name,execs", [("perception.launch.xml", {"detector", "object_map"}),
                                        ("control_sim.launch.xml", {"sim_bridge", "controller"})])
def test_repository_launch_files_pass(repo: Path, assert_launch_file_valid, name, execs):
    graph = assert_launch_file_valid(repo / "launch" / name, execs)
    assert graph.processes


def _write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "t.launch.xml"
    p.write_text(f"<launch>\n{body}\n</launch>\n")
    return p


@pytest.mark.parametrize("body,fragment", [
    ('<arg name="a" default="1"/>\n<executable cmd="true" name="x"/>', "needs a description"),
    ('<arg name="a" default="1" description="d"/>\n'
     '<executable cmd="echo $(var b)" name="x" if="false"/>', "undeclared launch arguments"),
])
def test_problems_are_reported(tmp_path: Path, assert_launch_file_valid, body, fragment):
    with pytest.raises(AssertionError, match=fragment):
        assert_launch_file_valid(_write(tmp_path, body))


def test_unresolvable_file_raises(tmp_path: Path, assert_launch_file_valid):
    p = _write(tmp_path, '<node pkg="katazuke_ros" exec="no_such_node" name="n"/>')
    with pytest.raises(KatazukeError, match="no_such_node"):
        assert_launch_file_valid(p)
