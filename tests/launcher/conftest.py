"""Fixtures of the launcher tests: a fake ament prefix with an executable package."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


def make_prefix(root: Path, package: str = "fakepkg", executables: tuple[str, ...] = ("node_a",)) -> Path:
    """An install prefix registering ``package`` in the ament index with executables."""
    index = root / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True, exist_ok=True)
    (index / package).write_text("")
    (root / "share" / package / "launch").mkdir(parents=True, exist_ok=True)
    lib = root / "lib" / package
    lib.mkdir(parents=True, exist_ok=True)
    for name in executables:
        exe = lib / name
        exe.write_text(f"#!/bin/sh\nexec {sys.executable} {DATA / 'proc.py'} sleep\n")
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return root


@pytest.fixture
def fake_env(tmp_path: Path) -> dict[str, str]:
    """A launch environment whose AMENT_PREFIX_PATH holds only ``fakepkg``."""
    prefix = make_prefix(tmp_path / "prefix")
    return {"AMENT_PREFIX_PATH": str(prefix), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "KZ_PY": sys.executable, "KZ_PROC": str(DATA / "proc.py"), "HOME": str(tmp_path)}


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def prefix_maker():
    """:func:`make_prefix` for tests (test modules cannot import conftest)."""
    return make_prefix
