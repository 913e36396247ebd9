#!/usr/bin/env bash
# Bootstrap Katazuke on Debian 12 / Python 3.11: apt packages, .venv with pinned wheels
# (ROS 2 Jazzy from PyPI), the editable katazuke package and the colcon build of ros_ws.
# Idempotent: every step is skipped when its inputs (hashed) have not changed, so a
# second run takes a couple of seconds.
#
# Environment:
#   KATAZUKE_VENV     virtualenv path (default: <repo>/.venv)
#   KATAZUKE_NO_APT=1 never call apt-get (fail with the list of missing packages instead)
#   KATAZUKE_SYSTEM_ROS=1  use a sourced system ROS 2 Jazzy (/opt/ros/jazzy) instead of the
#                     ros-jazzy-* wheels: the venv is created with --system-site-packages
#                     and the wheels are not installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KATAZUKE_VENV:-$ROOT/.venv}"
STAMPS="$VENV/.katazuke-stamps"
log() { printf '[bootstrap] %s\n' "$*" >&2; }
SECONDS=0

# ---------------------------------------------------------------- apt packages
# libusb-1.0-0, libgl1, libegl1: shared libraries the open3d-cpu wheel links against.
# iproute2: `ss` and `ip` for the DDS exposure test and the network bench.
# espeak-ng, flite: synthetic speech for the speech tests, `katazuke bench speech` and the
# grounding noise model;
# libportaudio2: the library `sounddevice` opens a microphone through (audio_capture).
APT_PKGS=(python3-venv python3-dev cmake g++ make git libusb-1.0-0 libgl1 libegl1 iproute2
          espeak-ng flite libportaudio2)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ "${KATAZUKE_NO_APT:-0}" == 1 ]]; then
    log "missing Debian packages: ${missing[*]} (install them: apt-get install ${missing[*]})"; exit 1
  fi
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- python + venv
PY=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    PY="$(command -v "$cand")"; break
  fi
done
[[ -n "$PY" ]] || { log "Python 3.11 is required (Debian 12's python3); found none"; exit 1; }
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtualenv $VENV"
  if [[ "${KATAZUKE_SYSTEM_ROS:-0}" == 1 ]]; then
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --upgrade "pip>=24" wheel
fi
mkdir -p "$STAMPS"
VPY="$VENV/bin/python"

changed() {  # changed NAME HASH -> 0 if the stamp differs
  [[ "$(cat "$STAMPS/$1" 2>/dev/null)" != "$2" ]]
}
stamp() { echo "$2" > "$STAMPS/$1"; }

# ---------------------------------------------------------------- pinned wheels
REQ_HASH=$(cat "$ROOT/requirements.txt" | sha256sum | cut -c1-16)-${KATAZUKE_SYSTEM_ROS:-0}
if changed requirements "$REQ_HASH"; then
  log "installing pinned Python packages (requirements.txt)"
  if [[ "${KATAZUKE_SYSTEM_ROS:-0}" == 1 ]]; then
    grep -vE '^(ros-jazzy-|colcon-)' "$ROOT/requirements.txt" > "$STAMPS/req-noros.txt"
    "$VPY" -m pip install -q -r "$STAMPS/req-noros.txt"
  else
    "$VPY" -m pip install -q -r "$ROOT/requirements.txt"
  fi
  # The ros-jazzy wheels were built in a manylinux container: their CMake export files
  # point at /opt/python/cp311-cp311/... include dirs that do not exist here. Point them
  # at this interpreter's Python and NumPy headers (inside the venv only; /opt untouched).
  PYINC=$("$VPY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  NPINC=$("$VPY" -c "import numpy; print(numpy.get_include())")
  if [[ -d "$VENV/share" ]]; then
    grep -rlZ "/opt/python/cp311-cp311" "$VENV/share" --include='*.cmake' 2>/dev/null | xargs -0 -r sed -i \
      -e "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g" \
      -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NPINC#g" || true
  fi
  [[ -f "$PYINC/Python.h" ]] || { log "Python headers missing at $PYINC: apt-get install python3-dev"; exit 1; }
  stamp requirements "$REQ_HASH"
fi

# ---------------------------------------------------------------- katazuke (editable)
PKG_HASH=$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" | sha256sum | cut -c1-16)
if changed package "$PKG_HASH" || ! "$VPY" -P -c "import katazuke" 2>/dev/null; then
  log "installing katazuke (editable)"
  "$VPY" -m pip install -q --no-deps --no-build-isolation -e "$ROOT" >"$STAMPS/pip-editable.log" 2>&1 \
    || { cat "$STAMPS/pip-editable.log" >&2; exit 1; }
  stamp package "$PKG_HASH"
fi

# ---------------------------------------------------------------- colcon build of ros_ws
# Node modules of katazuke_ros are symlink-installed (edits are live); everything
# else under src/ (interfaces, package manifests, the list of executables) and the set
# of files in launch/ (installed to share/katazuke_ros) triggers a build.
WS="$ROOT/ros_ws"
SRC_HASH=$( (cd "$WS/src" && find . -type f ! -path './katazuke_ros/katazuke_ros/*' ! -name '*.pyc' -print0 \
  | sort -z | xargs -0 sha256sum; ls -R "$ROOT/launch") | sha256sum | cut -c1-16)
if changed colcon "$SRC_HASH" || [[ ! -f "$WS/install/setup.sh" ]]; then
  log "building ros_ws with colcon (interfaces + katazuke_ros)"
  (
    cd "$WS"
    if [[ "${KATAZUKE_SYSTEM_ROS:-0}" == 1 ]]; then
      [[ -n "${AMENT_PREFIX_PATH:-}" ]] || { log "KATAZUKE_SYSTEM_ROS=1 needs 'source /opt/ros/jazzy/setup.bash' first"; exit 1; }
      SKIP=(--packages-skip tf2_msgs vision_msgs)   # the system install ships the real ones (ros-jazzy-vision-msgs)
    else
      export AMENT_PREFIX_PATH="$VENV"
      SKIP=()
    fi
    export PATH="$VENV/bin:$PATH"
    export PYTHONSAFEPATH=
    mkdir -p "$WS/log"
    "$VENV/bin/colcon" --log-base "$WS/log" build --merge-install --symlink-install \
      --event-handlers console_direct- console_start_end+ "${SKIP[@]}" \
      --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VPY" >"$WS/log/colcon-last.txt" 2>&1 \
      || { tail -40 "$WS/log/colcon-last.txt" >&2; log "colcon build failed (full log: ros_ws/log/colcon-last.txt)"; exit 1; }
  )
  stamp colcon "$SRC_HASH"
fi
log "ready (${SECONDS} s)"
