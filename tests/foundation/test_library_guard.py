"""One guard for the four libraries: imported under a folder name, they refuse with the fix."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from katazuke.errors import require_library_name

REPO = Path(__file__).resolve().parents[2]


def test_guard_passes_the_installed_name_and_refuses_the_folder_name():
    require_library_name("katazuke.control", "control")
    with pytest.raises(ImportError, match="start Python with -P"):
        require_library_name("control", "control")


@pytest.mark.parametrize("lib", ["perception", "planning", "control", "sim"])
def test_each_library_uses_the_guard(lib):
    # The repository root on sys.path (python without -P): the folder refuses to import.
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); import {lib}"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and f"the package katazuke.{lib}" in out.stderr
