"""The process environment a Katazuke ROS 2 process needs.

ROS 2 from PyPI wheels needs no sourcing, but the interfaces we build with colcon
(``katazuke_interfaces``, ``tf2_msgs``) and the ``katazuke_ros`` node package do: their
type-support libraries are found through ``LD_LIBRARY_PATH`` (read once, at process
start), their Python modules through ``PYTHONPATH`` and their executables and share
files through ``AMENT_PREFIX_PATH``. :func:`ros_environment` computes that
environment; :func:`ensure_ros_environment` re-executes the current command inside it
(what ``source install/setup.bash`` does for a shell).

Safe defaults (issue: DDS discovery stays on this host): ``ROS_AUTOMATIC_DISCOVERY_RANGE``
defaults to ``LOCALHOST`` unless the caller set it.

Command line: ``python -m katazuke.rosenv`` prints ``export`` lines for a shell.
"""
from __future__ import annotations

import os
import shlex
import sys
import sysconfig
from pathlib import Path

__all__ = ["repo_root", "workspace_install", "ros_environment", "ensure_ros_environment", "FASTDDS_PROFILE"]

_MARK = "KATAZUKE_ROS_ENV"
#: Fast DDS profile with shared-memory segments sized for the camera streams.
FASTDDS_PROFILE = Path(__file__).resolve().parent / "ros" / "fastdds_profile.xml"


def repo_root() -> Path:
    """The source checkout this package was installed from (editable install)."""
    return Path(__file__).resolve().parent.parent


def workspace_install() -> Path:
    """The colcon install prefix of ros_ws (``$KATAZUKE_WS_INSTALL`` overrides)."""
    override = os.environ.get("KATAZUKE_WS_INSTALL")
    return Path(override) if override else repo_root() / "ros_ws" / "install"


def _prepend(env: dict[str, str], key: str, *paths: str) -> None:
    parts = [p for p in env.get(key, "").split(os.pathsep) if p]
    new = [p for p in paths if p not in parts]
    env[key] = os.pathsep.join(new + parts)


def ros_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for processes that use rclpy and our interfaces.

    Args:
        base: environment to extend (default: ``os.environ``).

    Returns:
        A new dict; ``base`` is not modified.
    """
    env = dict(os.environ if base is None else base)
    ws = workspace_install()
    prefix = sys.prefix  # the virtualenv that holds the ros-jazzy-* wheels
    pyver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    _prepend(env, "AMENT_PREFIX_PATH", str(ws), prefix)
    _prepend(env, "CMAKE_PREFIX_PATH", str(ws))
    # The ros-jazzy wheels keep their shared libraries in site-packages/ros_*.libs;
    # their .pth bootstrapper re-execs Python to add them, but skips that when its guard
    # variable is inherited, so name them here too (what the bootstrapper would add).
    venv_site = Path(sysconfig.get_paths()["purelib"])
    wheel_libs = sorted(str(p) for p in venv_site.glob("ros_*.libs") if p.is_dir())
    _prepend(env, "LD_LIBRARY_PATH", str(ws / "lib"), *wheel_libs, str(Path(prefix) / "lib"))
    site = ws / "lib" / pyver / "site-packages"
    # colcon --symlink-install puts ament_python packages in "develop" mode: an
    # .egg-link names the folder that holds the live sources. PYTHONPATH folders do not
    # process .pth/.egg-link files, so add those folders explicitly.
    develop = sorted(str(Path(link.read_text().splitlines()[0].strip()))
                     for link in site.glob("*.egg-link")) if site.is_dir() else []
    _prepend(env, "PYTHONPATH", *develop, str(site))
    _prepend(env, "PATH", str(Path(sysconfig.get_path("scripts"))))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    # Shared-memory segments sized for the camera streams (see the profile's comment).
    profile = str(FASTDDS_PROFILE)
    env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", env.get("FASTDDS_DEFAULT_PROFILES_FILE", profile))
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", env["FASTRTPS_DEFAULT_PROFILES_FILE"])
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    # Small dense solves (control, rotation averaging certificates) run many times
    # slower with threaded OpenBLAS on a loaded 2-core machine; torch uses its own pool.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["PYTHONSAFEPATH"] = "1"  # never let the repo root shadow installed packages
    env["PYTHONUNBUFFERED"] = "1"
    env[_MARK] = str(ws)
    return env


def ensure_ros_environment(argv: list[str] | None = None) -> None:
    """Re-exec this Python process inside :func:`ros_environment` if it is not already.

    A no-op when the marker variable shows the environment is set up for the same
    workspace (so it never loops).
    """
    if os.environ.get(_MARK) == str(workspace_install()):
        return
    env = ros_environment()
    args = [sys.executable, "-P", "-m", "katazuke.cli"] + list(sys.argv[1:] if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, args, env)


def _main() -> int:  # used by scripts before the console script exists
    env = ros_environment()
    for key in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "PATH",
                "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION", "FASTRTPS_DEFAULT_PROFILES_FILE",
                "FASTDDS_DEFAULT_PROFILES_FILE", "PYTHONSAFEPATH", _MARK):
        print(f"export {key}={shlex.quote(env[key])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
