"""STYLE.md's import boundary: the ROS-free libraries never import rclpy, message
packages or (outside sim/) the simulator, so ground truth can only reach an algorithm
through a message."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBRARIES = ("perception", "planning", "control", "sim")
ROS_MODULES = ("rclpy", "rosidl_runtime_py", "rosgraph_msgs", "builtin_interfaces", "katazuke_ros",
               "katazuke_interfaces", "tf2_msgs", "launch", "launch_ros", "message_filters")
SIM_ONLY = ("pybullet", "pybullet_data", "pybullet_utils", "katazuke.sim")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _is_msg_package(mod: str) -> bool:
    top = mod.split(".")[0]
    return top.endswith(("_msgs", "_srvs", "_interfaces"))


def _violations(lib: str) -> list[str]:
    bad = []
    for path in sorted((REPO / lib).rglob("*.py")):
        for line, mod in _imports(path):
            top = mod.split(".")[0]
            where = f"{path.relative_to(REPO)}:{line}"
            if top in ROS_MODULES or _is_msg_package(mod):
                bad.append(f"{where} imports ROS module '{mod}'")
            if lib != "sim" and (top in SIM_ONLY or mod.startswith("katazuke.sim")):
                bad.append(f"{where} imports the simulator ('{mod}')")
    return bad


@pytest.mark.parametrize("lib", LIBRARIES)
def test_library_is_ros_free(lib: str) -> None:
    assert not _violations(lib), "\n".join(_violations(lib))


def test_scanner_catches_violations(tmp_path: Path) -> None:
    """The scanner itself must flag a bad import (so a green test means something)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import rclpy\nfrom sensor_msgs.msg import Image\nfrom katazuke.sim import TidyEnv\n")
    mods = [m for _, m in _imports(bad)]
    assert "rclpy" in mods and _is_msg_package("sensor_msgs.msg") and "katazuke.sim" in mods


def test_core_cli_does_not_import_ros_at_module_level() -> None:
    """`katazuke --help` must not pay for rclpy/torch/pybullet imports."""
    heavy = {"rclpy", "torch", "pybullet"}
    for path in sorted((REPO / "katazuke" / "cli").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only; imports inside main() are fine
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            for m in mods:
                assert m.split(".")[0] not in heavy, f"{path.name}:{node.lineno} imports {m} at module level"
