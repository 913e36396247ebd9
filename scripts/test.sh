#!/usr/bin/env bash
# README command 2: bootstrap (idempotent) and run the default test suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m benchmark` or `-k launch`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
VENV="${KATAZUKE_VENV:-$ROOT/.venv}"
eval "$("$VENV/bin/python" -P -m katazuke.rosenv)"
cd "$ROOT"
set +e
"$VENV/bin/python" -P -m pytest -q -ra --timeout=600 "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then echo "no tests were collected" >&2; exit 1; fi
exit $rc
