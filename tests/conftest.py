"""Shared test fixtures.

Every test session gets its own ROS_DOMAIN_ID (derived from the process id) and
localhost-only discovery, so concurrent test runs on one machine never see each
other's topics. ``wait_for`` polls a condition with a timeout: tests never sleep a
fixed time and hope. Message constructors check their fields (``ROS_PYTHON_CHECK_FIELDS``).

Shared helpers are fixtures (under ``--import-mode=importlib`` test modules cannot import
each other): ``assert_launch_file_valid(path, execs)`` and ``pinned(got, json, tolerances)``
for the seeded regression tests (``--record-pinned`` re-records their JSON).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
# Before numpy is imported by any test: threaded OpenBLAS makes small solves ~30x slower
# on a loaded 2-core machine (measured: 180x180 eigh 104 ms vs 6 ms).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Message constructors reject unknown fields (and setters wrong types) in the tests and in
# every node they start: a stale field such as Detection(score=...) fails instead of being
# dropped. Read by each generated message module when it is first imported.
os.environ.setdefault("ROS_PYTHON_CHECK_FIELDS", "1")



@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    p = SHARED / "data"
    if not p.is_dir():
        pytest.skip(f"shared data not found at {p}")
    return p


def _var_names(template) -> set[str]:
    """Names of every ``$(var NAME ...)`` in a parsed template, nested ones included."""
    from katazuke.launcher.substitutions import Sub

    names: set[str] = set()
    for part in template:
        if isinstance(part, Sub):
            if part.name == "var" and len(part.args[0]) == 1 and isinstance(part.args[0][0], str):
                names.add(part.args[0][0])
            for arg in part.args:
                names |= _var_names(arg)
    return names


def check_launch_file(path: Path, execs: set[str] | None = None,
                      launch_args: dict[str, str] | None = None):
    """Assert that a launch XML file is valid and return its resolved graph.

    Checks: tags, attributes and substitution syntax (``read_launch_xml``); every ``<arg>`` has
    a description; every ``$(var NAME)`` names a declared ``<arg>`` or ``<let>`` (also in
    branches a condition switches off); the file resolves with ``load_launch`` (parameter
    files exist, every ``<node>`` executable is installed in its package); with ``execs``,
    the set of node executables is exactly that.

    Args:
        path: the launch file.
        execs: expected node executable names, or None to skip that check.
        launch_args: ``name:=value`` arguments for the resolution.

    Returns:
        The :class:`katazuke.launcher.LaunchGraph`.
    """
    from katazuke.launcher import load_launch
    from katazuke.launcher.xml import read_launch_xml

    root = read_launch_xml(Path(path))
    elements, stack = [], [root]
    while stack:
        el = stack.pop()
        elements.append(el)
        stack.extend(el.children)
    args = [el for el in elements if el.tag == "arg"]
    undescribed = sorted(el.attrs["name"] for el in args if not el.attrs.get("description"))
    assert not undescribed, f"{path}: every <arg> needs a description: {undescribed}"
    declared = {el.attrs["name"] for el in elements if el.tag in ("arg", "let")}
    used = set().union(*(_var_names(t) for el in elements for t in el.templates.values()))
    assert used <= declared, f"{path}: undeclared launch arguments {sorted(used - declared)}"
    graph = load_launch(path, launch_args or {})
    if execs is not None:
        got = {Path(p.executable).name for p in graph.processes if p.kind == "node"}
        assert got == set(execs), f"{path}: node executables {sorted(got)}, expected {sorted(execs)}"
    return graph


@pytest.fixture(scope="session")
def assert_launch_file_valid():
    """:func:`check_launch_file` for tests (helpers are shared through fixtures: under
    ``--import-mode=importlib`` test modules cannot import each other or conftest)."""
    return check_launch_file


def pytest_addoption(parser) -> None:
    parser.addoption("--record-pinned", action="store_true",
                     help="regression tests re-record their pinned figures (tests/*/data/"
                          "regression_*.json) instead of checking them; review the JSON diff")


def check_pinned(got: dict[str, float], expected_file: Path,
                 tolerances: dict[str, tuple[float, float]]) -> None:
    """Assert that measured figures match the ones pinned in a JSON file.

    Args:
        got: figure name -> measured value.
        expected_file: the pinned figures (``pytest FILE --record-pinned`` writes them).
        tolerances: figure name -> ``(rel, abs)`` for ``pytest.approx``; every pinned
            figure needs one (chosen so that a 20 % change fails).
    """
    import json

    expected = json.loads(expected_file.read_text())
    assert set(got) == set(expected), (f"{expected_file.name}: figures changed "
                                       f"{sorted(set(got) ^ set(expected))}; re-record")
    assert set(tolerances) == set(expected), sorted(set(tolerances) ^ set(expected))
    bad = {k: (got[k], v) for k, v in expected.items()
           if got[k] != pytest.approx(v, rel=tolerances[k][0], abs=tolerances[k][1])}
    assert not bad, f"{expected_file.name}: measured vs pinned {bad}"


def _record_pinned(got: dict[str, float], expected_file: Path, tolerances) -> None:
    import json

    assert set(tolerances) == set(got), sorted(set(tolerances) ^ set(got))
    expected_file.parent.mkdir(parents=True, exist_ok=True)
    expected_file.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")


@pytest.fixture
def pinned(request):
    """``pinned(got, expected_file, tolerances)``: :func:`check_pinned`, or re-record the file
    when pytest runs with ``--record-pinned`` (the shrunk seeded regression tests)."""
    return _record_pinned if request.config.getoption("--record-pinned") else check_pinned


@pytest.fixture
def ros_context():
    """An initialised rclpy context, shut down after the test."""
    import rclpy
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx)
    try:
        yield ctx
    finally:
        ctx.try_shutdown()
