"""The process environment a Katazuke ROS 2 process needs.

ROS 2 from PyPI wheels needs no sourcing, but the interfaces we build with colcon
(``katazuke_interfaces``, ``tf2_msgs``) and the ``katazuke_ros`` node package do: their
type-support libraries are found through ``LD_LIBRARY_PATH`` (read once, at process
start), their Python modules through ``PYTHONPATH`` and their executables and share
files through ``AMENT_PREFIX_PATH``. :func:`ros_environment` computes that
environment; :func:`ensure_ros_environment` re-executes the current command inside it
(what ``source install/setup.bash`` does for a shell).

Safe defaults: DDS stays on this host. Unless the caller names its own Fast DDS profile
(``FASTRTPS_DEFAULT_PROFILES_FILE``), katazuke's profile (:mod:`katazuke.ros.fastdds`) is
applied: shared memory plus UDP on 127.0.0.1, no multicast, no socket on a LAN address.
``KATAZUKE_DDS_NETWORK=lan`` (with ``KATAZUKE_DDS_PEERS`` / ``KATAZUKE_DDS_INTERFACE``) opens
it to a LAN on purpose; ``KATAZUKE_DDS_SHM=0`` turns shared memory off. With that profile
``ROS_AUTOMATIC_DISCOVERY_RANGE`` is ``SYSTEM_DEFAULT`` (rmw_fastrtps leaves the profile
alone; ``LOCALHOST`` would add an any-address locator), ``OFF`` is kept, and ``SUBNET`` or
``ROS_STATIC_PEERS`` are errors naming the katazuke switch. With a profile of your own,
``ROS_AUTOMATIC_DISCOVERY_RANGE`` defaults to ``LOCALHOST``.

Command line: ``python -m katazuke.rosenv`` prints ``export`` lines for a shell.
"""
from __future__ import annotations

import os
import shlex
import sys
import sysconfig
from pathlib import Path

from katazuke.errors import KatazukeError

__all__ = ["repo_root", "workspace_install", "ros_environment", "ensure_ros_environment", "FASTDDS_PROFILE"]

_MARK = "KATAZUKE_ROS_ENV"
#: Katazuke's default Fast DDS profile (this host only; shared memory sized for the cameras).
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
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    _apply_dds_profile(env)
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    # Small dense solves (control, rotation averaging certificates) run many times
    # slower with threaded OpenBLAS on a loaded 2-core machine; torch uses its own pool.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["PYTHONSAFEPATH"] = "1"  # never let the repo root shadow installed packages
    env["PYTHONUNBUFFERED"] = "1"
    env[_MARK] = str(ws)
    return env


def _is_katazuke_profile(path: str) -> bool:
    from katazuke.ros.fastdds import SHIPPED_PROFILE, profile_folder

    p = Path(path)
    return p == SHIPPED_PROFILE or p.parent == profile_folder()


def _dds_profile_current(env: dict[str, str] | os._Environ) -> bool:
    """True when ``env`` already names the Fast DDS profile its KATAZUKE_DDS_* ask for (or
    a profile of the user's own)."""
    current = env.get("FASTRTPS_DEFAULT_PROFILES_FILE", "")
    if current and not _is_katazuke_profile(current):
        return True
    try:
        return current == ros_environment(dict(env))["FASTRTPS_DEFAULT_PROFILES_FILE"]
    except KatazukeError:
        return False  # ensure_ros_environment reports it


def _apply_dds_profile(env: dict[str, str]) -> None:
    """Point Fast DDS at katazuke's profile (unless ``env`` names one) and keep the ROS
    discovery variables from overriding it (see the module docstring)."""
    from katazuke.ros.fastdds import dds_network_from_env, profile_path

    own = env.get("FASTRTPS_DEFAULT_PROFILES_FILE") or env.get("FASTDDS_DEFAULT_PROFILES_FILE")
    if own and not _is_katazuke_profile(own):  # a profile of ours (e.g. from `katazuke env`)
        # is recomputed, so that KATAZUKE_DDS_* set later in that shell take effect
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = env["FASTDDS_DEFAULT_PROFILES_FILE"] = own
        return
    profile = str(profile_path(dds_network_from_env(env)))
    env["FASTRTPS_DEFAULT_PROFILES_FILE"] = env["FASTDDS_DEFAULT_PROFILES_FILE"] = profile
    if env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip().upper() != "OFF":
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SYSTEM_DEFAULT"
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; it would turn LOCALHOST back on


def ensure_ros_environment(argv: list[str] | None = None) -> None:
    """Re-exec this Python process inside :func:`ros_environment` if it is not already.

    A no-op when the marker variable shows the environment is set up for the same
    workspace (so it never loops).
    """
    if os.environ.get(_MARK) == str(workspace_install()) and _dds_profile_current(os.environ):
        return
    try:
        env = ros_environment()
    except KatazukeError as exc:  # e.g. a bad KATAZUKE_DDS_* value: one line, no traceback
        print(f"katazuke: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
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
    if "ROS_LOCALHOST_ONLY" not in env:
        print("unset ROS_LOCALHOST_ONLY")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
