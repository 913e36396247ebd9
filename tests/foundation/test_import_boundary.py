"""The layer rules (STYLE.md, docs/ARCHITECTURE.md): libraries <- core (``katazuke/``) <- nodes.

* The ROS-free libraries never import rclpy, message packages or (outside sim/) the
  simulator, so ground truth can only reach an algorithm through a message; from the core
  they import only the leaf modules ``katazuke.errors``, ``katazuke.config`` and
  ``katazuke.geometry``.
* Nothing under ``katazuke/`` imports the node package ``katazuke_ros``; rclpy and message
  packages appear only in the core's ROS-facing modules (:data:`CORE_ROS_ALLOWED`).
* The nodes never import the simulator: they reach it through ``TidyEnv`` methods.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBRARIES = ("perception", "planning", "control", "sim")
ROS_MODULES = ("rclpy", "rosidl_runtime_py", "rosgraph_msgs", "builtin_interfaces", "katazuke_ros",
               "katazuke_interfaces", "tf2_msgs", "launch", "launch_ros", "message_filters")
SIM_ONLY = ("pybullet", "pybullet_data", "pybullet_utils", "katazuke.sim")
#: What a library may import from the core (besides the other libraries).
CORE_LEAVES = ("katazuke.errors", "katazuke.config", "katazuke.geometry")
#: Core modules that speak ROS (benches, tools, the message conversions, the probe).
CORE_ROS_ALLOWED = ("katazuke/ros/", "katazuke/bag/ros.py", "katazuke/bag/loadgen.py",
                    "katazuke/bench/", "katazuke/cli/")
NODES = Path("ros_ws/src/katazuke_ros/katazuke_ros")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in the file, module level or inside functions (lazy imports
    count too). ``from pkg import name`` yields ``pkg.name`` as well as ``pkg``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "katazuke":
                found += [(node.lineno, f"katazuke.{a.name}") for a in node.names]
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
            if top == "katazuke" and mod != "katazuke" and not _library_may_import(mod):
                bad.append(f"{where} imports the core module '{mod}' (a library may import only "
                           f"{', '.join(CORE_LEAVES)} and other libraries)")
    return bad


def _library_may_import(mod: str) -> bool:
    parts = mod.split(".")
    if len(parts) >= 2 and parts[1] in LIBRARIES:
        return True
    name = ".".join(parts[:2])
    # `from katazuke import KatazukeError` re-exports katazuke.errors
    return name in CORE_LEAVES or name in ("katazuke.KatazukeError", "katazuke.ConfigError")


def _core_violations() -> list[str]:
    bad = []
    for path in sorted((REPO / "katazuke").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        ros_ok = rel.startswith(CORE_ROS_ALLOWED)
        for line, mod in _imports(path):
            top = mod.split(".")[0]
            if top == "katazuke_ros":
                bad.append(f"{rel}:{line} imports the node package '{mod}': the core never does "
                           "(move what it needs into katazuke/, e.g. katazuke.ros.qos)")
            elif (top in ROS_MODULES or _is_msg_package(mod)) and not ros_ok:
                bad.append(f"{rel}:{line} imports ROS module '{mod}' outside "
                           f"{', '.join(CORE_ROS_ALLOWED)}")
    return bad


@pytest.mark.parametrize("lib", LIBRARIES)
def test_library_is_ros_free(lib: str) -> None:
    assert not _violations(lib), "\n".join(_violations(lib))


def test_core_never_imports_the_nodes_and_keeps_rclpy_in_its_ros_modules() -> None:
    bad = _core_violations()
    assert not bad, "\n".join(bad)


def test_nodes_never_import_the_simulator() -> None:
    bad = [f"{path.relative_to(REPO)}:{line} imports '{mod}'"
           for path in sorted((REPO / NODES).rglob("*.py"))
           for line, mod in _imports(path) if mod.split(".")[0] in SIM_ONLY[:3]]
    assert not bad, "the nodes reach the simulator through TidyEnv methods:\n" + "\n".join(bad)


def test_scanner_catches_violations(tmp_path: Path) -> None:
    """The scanner itself must flag a bad import (so a green test means something)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import rclpy\nfrom sensor_msgs.msg import Image\nfrom katazuke.sim import TidyEnv\n")
    mods = [m for _, m in _imports(bad)]
    assert "rclpy" in mods and _is_msg_package("sensor_msgs.msg") and "katazuke.sim" in mods
    core = tmp_path / "core.py"
    core.write_text("def f():\n    from katazuke import benchio, errors\n    import katazuke.geometry\n")
    mods = [m for _, m in _imports(core)]
    assert not _library_may_import("katazuke.benchio") and "katazuke.benchio" in mods
    assert _library_may_import("katazuke.errors") and _library_may_import("katazuke.geometry")
    assert _library_may_import("katazuke.perception.objectmap")


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
