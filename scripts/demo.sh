#!/usr/bin/env bash
# README command 1: bootstrap (idempotent) and run the main job, the simulated
# end-to-end run. Extra arguments go to `katazuke demo` (see `katazuke demo --help`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
VENV="${KATAZUKE_VENV:-$ROOT/.venv}"
cd "$ROOT"
exec "$VENV/bin/katazuke" demo "$@"
