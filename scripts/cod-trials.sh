#!/usr/bin/env bash
# Runs scripts/cod_trials.py (docs/TRIALS.md) with a Python that has websockets 15.0.1:
# $COD_TRIALS_PYTHON, else the repository's .venv (scripts/test.sh creates it).
# Arguments go to the tool, e.g. `scripts/cod-trials.sh --seed 1 --trials 100 --variant all`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${COD_TRIALS_PYTHON:-$REPO/.venv/bin/python}"
if [ ! -x "$PY" ] || ! "$PY" -c 'import websockets' 2>/dev/null; then
    echo "cod-trials.sh: $PY has no websockets; run scripts/test.sh once, or" >&2
    echo "  python3 -m venv .venv && .venv/bin/pip install websockets==15.0.1, or set COD_TRIALS_PYTHON" >&2
    exit 2
fi
exec "$PY" "$REPO/scripts/cod_trials.py" "$@"
