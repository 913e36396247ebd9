"""python-control (imports as `control`) and our katazuke.control live in one
environment, and neither shadows the other, whatever the working directory."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import control, katazuke.control, sys
import numpy as np
assert hasattr(control, "dlqr"), control.__file__            # python-control's API
assert "site-packages" in control.__file__, control.__file__
assert katazuke.control.__name__ == "katazuke.control"
assert katazuke.control.__file__.endswith("control/__init__.py")
assert control is not katazuke.control
K, S, E = control.dlqr(np.eye(2), np.eye(2), np.eye(2), np.eye(2))
print("ok", control.__version__)
"""


@pytest.mark.parametrize("cwd", ["tmp", "repo"])
def test_both_import_in_one_process(cwd: str, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONSAFEPATH="1")
    where = tmp_path if cwd == "tmp" else REPO
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=where, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")


def test_repo_root_on_path_is_refused_with_a_clear_message() -> None:
    """If someone puts the repo root on sys.path, importing `control` must not silently
    give our package under python-control's name."""
    env = dict(os.environ)
    env.pop("PYTHONSAFEPATH", None)
    out = subprocess.run([sys.executable, "-c", "import control"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "katazuke.control" in out.stderr and "PYTHONSAFEPATH" in out.stderr
