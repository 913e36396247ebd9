"""``katazuke_ros/package.xml`` lists every ROS package the nodes import.

The nodes' modules (and the core's ROS-facing helpers under ``katazuke/ros/`` that they
call) are scanned with ``ast``, lazy imports inside functions included. A top-level module
is a ROS package when an ament prefix (the venv's ROS wheels, ``ros_ws/install``, or a
sourced ``AMENT_PREFIX_PATH``) or ``ros_ws/src`` holds ``share/<name>/package.xml``.
Each such package must be a ``<depend>``/``<exec_depend>`` of katazuke_ros, so rosdep and a
binary install pull in what the nodes need. Every listed dependency must also be a ROS
package that exists here (no stale entries).
"""
from __future__ import annotations

import ast
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "ros_ws/src/katazuke_ros"
SCANNED = (PKG / "katazuke_ros", REPO / "katazuke/ros")
DEP_TAGS = ("depend", "exec_depend", "build_depend", "build_export_depend")


def _prefixes() -> list[Path]:
    env = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return env + [Path(sys.prefix), REPO / "ros_ws/install"]


def _is_ros_package(name: str) -> bool:
    if (REPO / "ros_ws/src" / name / "package.xml").is_file():
        return True
    return any((p / "share" / name / "package.xml").is_file() for p in _prefixes())


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _declared() -> set[str]:
    root = ET.parse(PKG / "package.xml").getroot()
    return {e.text.strip() for tag in DEP_TAGS for e in root.iter(tag) if e.text}


def _imported_ros_packages() -> dict[str, list[str]]:
    """ROS package -> the files (relative to the repo) that import it."""
    used: dict[str, list[str]] = {}
    for folder in SCANNED:
        for path in sorted(folder.glob("*.py")):
            for name in _top_level_imports(path):
                if name != "katazuke_ros" and _is_ros_package(name):
                    used.setdefault(name, []).append(str(path.relative_to(REPO)))
    return used


def test_the_scan_finds_the_ros_packages():
    used = _imported_ros_packages()
    # a scan that finds nothing would pass vacuously
    assert {"rclpy", "std_msgs", "sensor_msgs", "katazuke_interfaces", "vision_msgs",
            "diagnostic_msgs"} <= set(used), sorted(used)
    assert not _is_ros_package("numpy") and not _is_ros_package("katazuke")


def test_every_imported_ros_package_is_declared():
    declared = _declared()
    missing = {name: files for name, files in _imported_ros_packages().items()
               if name not in declared}
    assert not missing, ("add <exec_depend> lines to ros_ws/src/katazuke_ros/package.xml for "
                         + "; ".join(f"{n} (imported by {', '.join(f)})"
                                     for n, f in sorted(missing.items())))


def test_every_declared_dependency_is_a_ros_package():
    stale = sorted(n for n in _declared() if not _is_ros_package(n))
    assert not stale, f"package.xml lists {stale}, which are not ROS packages here (typo or stale)"
