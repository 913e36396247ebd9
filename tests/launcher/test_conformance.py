"""Launch-XML conformance: the cases of ``shared/launch_spec`` (taken from the upstream
frontend tests of ros2/launch and ros2/launch_ros) run through ``katazuke launch --print``.

Each case of ``EXPECT.yaml`` either holds ``expect`` expressions over ``g`` (the printed
YAML), ``P`` (its processes) and ``p`` (``P[0]``), or an ``expect_error`` regex the
``FILE:LINE: message`` error must match. Packages the cases name that are not installed
here (``demo_nodes_cpp``, ``rclcpp_components``, ...) are stub packages in a temporary
ament prefix put in front of ``AMENT_PREFIX_PATH``.

The spec folder is ``$KATAZUKE_SHARED/launch_spec``, else ``shared/launch_spec`` beside the
repository's main checkout (a git worktree finds the main checkout through
``git rev-parse --git-common-dir``); the module is skipped when it is absent.
"""
from __future__ import annotations

import io
import os
import re
import stat
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

from katazuke.errors import KatazukeError

REPO = Path(__file__).resolve().parents[2]
#: Packages the cases name, with the executables they use.
STUB_PACKAGES = {
    "demo_nodes_cpp": ("talker", "listener"),
    "demo_nodes_py": ("talker_qos", "talker", "listener"),
    "rclcpp_components": ("component_container", "component_container_mt"),
    "composition": (),
}


def _shared_root() -> Path | None:
    if os.environ.get("KATAZUKE_SHARED"):
        return Path(os.environ["KATAZUKE_SHARED"])
    candidates = [REPO.parent / "shared"]
    try:
        common = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
                                cwd=REPO, capture_output=True, text=True, timeout=10, check=True)
        candidates.append(Path(common.stdout.strip()).parent.parent / "shared")
    except (OSError, subprocess.SubprocessError):
        pass
    return next((c for c in candidates if (c / "launch_spec" / "EXPECT.yaml").is_file()), None)


SHARED = _shared_root()
SPEC = SHARED / "launch_spec" if SHARED else None
if SPEC is None:
    pytest.skip("shared/launch_spec not found (set KATAZUKE_SHARED to the folder holding it)",
                allow_module_level=True)
CASES = yaml.safe_load((SPEC / "EXPECT.yaml").read_text(encoding="utf-8"))


def _case_id(case: dict) -> str:
    extra = "-".join(a.replace(":=", "=") for a in case.get("args", []))
    return case["file"].replace(".launch.xml", "") + (f"[{extra}]" if extra else "")


@pytest.fixture(scope="module")
def stub_prefix(tmp_path_factory) -> Path:
    """An ament prefix with the stub packages (each executable a shell script)."""
    root = tmp_path_factory.mktemp("stub_prefix")
    index = root / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    for pkg, executables in STUB_PACKAGES.items():
        (index / pkg).write_text("")
        share = root / "share" / pkg
        share.mkdir(parents=True)
        (share / "package.xml").write_text(f"<package format=\"3\"><name>{pkg}</name></package>\n")
        lib = root / "lib" / pkg
        lib.mkdir(parents=True)
        for name in executables:
            exe = lib / name
            exe.write_text("#!/bin/sh\nexec sleep 1000\n")
            exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return root


def run_print(file: Path, args: list[str]) -> tuple[dict | None, str]:
    """``katazuke launch --print FILE ARGS`` in-process: (printed YAML, error message)."""
    from katazuke.cli import build_parser

    parsed = build_parser().parse_args(["launch", "--print", str(file), *args])
    out = io.StringIO()
    try:
        with redirect_stdout(out):
            parsed._run(parsed)
    except KatazukeError as exc:
        return None, str(exc)
    return yaml.safe_load(out.getvalue()), ""


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_conformance_case(case: dict, stub_prefix: Path, monkeypatch) -> None:
    monkeypatch.setenv("AMENT_PREFIX_PATH",
                       os.pathsep.join([str(stub_prefix), os.environ.get("AMENT_PREFIX_PATH", "")]))
    monkeypatch.setenv("ROS_LOG_DIR", str(stub_prefix / "log"))
    for name, value in (case.get("env") or {}).items():
        monkeypatch.setenv(name, str(value))
    g, error = run_print(SPEC / case["file"], case.get("args", []))
    if "expect_error" in case:
        assert g is None, f"{case['file']} resolved; upstream rejects it ({case['feature']})"
        assert re.search(case["expect_error"], error), error
        assert re.match(r"^\S+:\d+: ", error), f"not a FILE:LINE: message: {error}"
        return
    assert g is not None, f"{case['feature']}: {error}"
    P = g.get("processes") or []
    scope = {"g": g, "P": P, "p": P[0] if P else None}
    for expr in case["expect"]:
        assert eval(expr, {}, scope), f"{case['feature']}: {expr}\nprocesses: {P}"  # noqa: S307
