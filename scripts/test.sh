#!/usr/bin/env bash
# The project's one test command (README, CI). Installs what the interop tests need (Debian/Ubuntu),
# prepares a Python virtualenv with the independent WebSocket peer, builds and runs `swift test`,
# then fuzzes the parsers briefly (scripts/fuzz.sh, FUZZ_SECONDS per target, default 10, 0 skips).
# Extra arguments go to `swift test` (e.g. `scripts/test.sh --filter TransportTests`).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

# The independent WebSocket implementation the interop tests talk to.
WEBSOCKETS_VERSION="15.0.1"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_updated=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: missing $*, and no apt-get to install them" >&2
        exit 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
        apt_updated=1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" </dev/null
}

missing=()
if ! pkg-config --exists openssl 2>/dev/null; then missing+=(libssl-dev); fi
if ! command -v pkg-config >/dev/null 2>&1; then missing+=(pkg-config); fi
if ! command -v openssl >/dev/null 2>&1; then missing+=(openssl); fi
if ! command -v python3 >/dev/null 2>&1; then missing+=(python3); fi
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi

VENV="$REPO/.venv"
if [ ! -x "$VENV/bin/python" ]; then
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        # Debian's python3 ships venv (and ensurepip) separately.
        rm -rf "$VENV"
        py="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt_install python3-venv "python${py}-venv" || apt_install python3-venv
        python3 -m venv "$VENV"
    fi
fi
if ! "$VENV/bin/python" -c "import websockets, sys; sys.exit(websockets.__version__ != '$WEBSOCKETS_VERSION')" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION"
fi
export INTEROP_PYTHON="$VENV/bin/python"

swift build --build-tests

# The suites are XCTest; Swift Testing would only add an empty run after them.
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee -a "$LOG"
# SPEC §10: the epoll event loop passes the same end-to-end tests as the Dispatch one.
if [ "$#" -eq 0 ]; then
    E2E_EVENT_LOOP=epoll swift test --skip-build --disable-swift-testing --filter EndToEndTests 2>&1 | tee -a "$LOG"
fi

# A short fuzz run of the parsers (docs/FUZZING.md), FUZZ_SECONDS per target (0 skips it).
# Its targets count in the closing line: one passed or failed each.
FUZZ_SECONDS="${FUZZ_SECONDS:-10}"
FUZZ_LOG="$(mktemp)"
trap 'rm -f "$LOG" "$FUZZ_LOG"' EXIT
fuzz_status=0
if [ "$#" -eq 0 ] && [ "$FUZZ_SECONDS" != 0 ]; then
    bash scripts/fuzz.sh "$FUZZ_SECONDS" 2>&1 | tee "$FUZZ_LOG" || fuzz_status=$?
fi
fuzz_passed=0
fuzz_failed=0
if summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$FUZZ_LOG" | tail -1)"; then
    read -r fuzz_passed _ fuzz_failed _ <<<"$summary"
fi
# fuzz.sh stopped before its summary (no toolchain support, bad arguments): one failure.
if [ "$fuzz_status" -ne 0 ] && [ "$fuzz_failed" -eq 0 ]; then fuzz_failed=1; fi

# A short seeded run of the cancel-on-disconnect trials (docs/TRIALS.md) against the gateway and
# the simulator just built: it counts as one test, passed when it reports 0 wrong and 0 missed
# cancels. TRIALS=0 skips it.
TRIALS="${TRIALS:-24}"
trials_passed=0
trials_failed=0
if [ "$#" -eq 0 ] && [ "$TRIALS" != 0 ]; then
    if "$VENV/bin/python" scripts/cod_trials.py --seed 7 --trials "$TRIALS" --bin "$(swift build --show-bin-path)" 2>&1; then
        trials_passed=1
    else
        trials_failed=1
    fi
fi

# One closing line over both runs, the fuzz targets and the trials: XCTest prints "Executed N
# tests, with F failures" per run (the last such line of a run is its total).
awk -v fuzz_passed="$((fuzz_passed + trials_passed))" -v fuzz_failed="$((fuzz_failed + trials_failed))" '
     /^Test Suite .(All tests|Selected tests). (passed|failed)/ { grab = 1; next }
     grab && /Executed [0-9]+ tests?, with [0-9]+ failures?/ {
         for (i = 1; i <= NF; i++) { if ($i == "Executed") n += $(i + 1); if ($i == "with") f += $(i + 1) }
         grab = 0
     }
     END { printf "%d passed, %d failed\n", n - f + fuzz_passed, f + fuzz_failed }' "$LOG"
if [ "$trials_failed" -ne 0 ]; then exit 1; fi
exit "$fuzz_status"
