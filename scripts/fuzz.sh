#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers (docs/FUZZING.md): libFuzzer with AddressSanitizer.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [target...]     (default: 20 s, every target)
#
# Each target in Fuzz/<Target>/main.swift is compiled with the sources of the module it
# tests into one Swift module (`swiftc -sanitize=fuzzer,address`), so internal API is
# reachable and no SwiftPM product is needed. Binaries go to .build-fuzz/, the growing
# corpus to Fuzz/corpus/<target>/ (seed-* files are committed, the rest is ignored), and a
# crashing input to Fuzz/crashes/<target>/. Any crash, failed property, leak, out-of-memory
# or slow input fails the run. The last line is `N passed, M failed`, one per target.
#
# Environment: FUZZ_JOBS (targets built and run at once, default: the CPU count, at most 2),
# SWIFTC (default: swiftc on PATH).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

ALL_TARGETS=(http1 websocket handshake jsonrpc config)
SECONDS_PER_TARGET="${1:-20}"
if [ "$#" -gt 0 ]; then shift; fi
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [target...]; targets: ${ALL_TARGETS[*]}" >&2
    exit 2
fi
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then TARGETS=("${ALL_TARGETS[@]}"); fi
for target in "${TARGETS[@]}"; do
    if ! [[ " ${ALL_TARGETS[*]} " == *" $target "* ]]; then
        echo "fuzz.sh: unknown target '$target'; targets: ${ALL_TARGETS[*]}" >&2
        exit 2
    fi
done

# The toolchain is all it takes: swiftc, and the libFuzzer and ASan runtimes of its own clang.
SWIFTC="${SWIFTC:-$(command -v swiftc || true)}"
if [ -z "$SWIFTC" ]; then
    echo "fuzz.sh: swiftc not found; install a Swift toolchain from swift.org (e.g. /opt/swift/usr/bin)" >&2
    exit 1
fi
TOOLCHAIN="$(cd "$(dirname "$(readlink -f "$SWIFTC")")/.." && pwd)"
RUNTIME="$TOOLCHAIN/lib/swift/clang/lib/linux/libclang_rt.fuzzer-$(uname -m).a"
if [ ! -f "$RUNTIME" ]; then
    echo "fuzz.sh: $RUNTIME is missing: this Swift toolchain has no libFuzzer runtime" >&2
    echo "fuzz.sh: use a swift.org Linux toolchain, which ships it" >&2
    exit 1
fi
LINKER=()
if [ -x "$TOOLCHAIN/bin/ld.lld" ]; then LINKER=(-use-ld=lld); fi  # gold warns about every ASan symbol
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$TOOLCHAIN/bin/llvm-symbolizer}"

JOBS="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}"
if [ "$JOBS" -gt 2 ] && [ -z "${FUZZ_JOBS:-}" ]; then JOBS=2; fi

BUILD="$REPO/.build-fuzz"
mkdir -p "$BUILD/logs"

# The project sources each target depends on.
project_sources() {
    case "$1" in
        http1) ls "$REPO"/Sources/HTTP1/*.swift ;;
        websocket | handshake) ls "$REPO"/Sources/WebSocket/*.swift ;;
        jsonrpc) ls "$REPO"/Sources/JSONRPC/*.swift ;;
        config)
            ls "$REPO"/Sources/Gateway/Config/*.swift
            echo "$REPO/Sources/GatewayCore/Scope.swift"
            echo "$REPO/Sources/Transport/EventLoop.swift"
            ;;
    esac
}

# The files to compile for a target's project part. The config loader imports Transport
# (for EventLoopKind) and GatewayCore (for Scope), whose other sources need OpenSSL, epoll
# and swift-log: it is compiled with those two types alone and without those imports,
# since everything is one module here.
compiled_sources() {
    if [ "$1" != config ]; then
        project_sources "$1"
        return
    fi
    local dir="$BUILD/src/config" file
    rm -rf "$dir" && mkdir -p "$dir"
    for file in "$REPO"/Sources/Gateway/Config/*.swift; do
        sed -E '/^(@_exported )?import (Transport|GatewayCore)$/d' "$file" >"$dir/$(basename "$file")"
    done
    cp "$REPO/Sources/GatewayCore/Scope.swift" "$dir/"
    awk '/^public enum EventLoopKind/ { p = 1 } p { print } p && /^}/ { exit }' \
        "$REPO/Sources/Transport/EventLoop.swift" >"$dir/EventLoopKind.swift"
    if ! grep -q "case epoll" "$dir/EventLoopKind.swift"; then
        echo "fuzz.sh: no EventLoopKind in Sources/Transport/EventLoop.swift" >&2
        return 1
    fi
    ls "$dir"/*.swift
}

target_dir() {
    case "$1" in
        http1) echo HTTP1 ;;
        websocket) echo WebSocket ;;
        handshake) echo Handshake ;;
        jsonrpc) echo JSONRPC ;;
        config) echo Config ;;
    esac
}

build() {
    local target="$1" binary="$BUILD/fuzz-$1" log="$BUILD/logs/$1.build.log"
    local fuzz_files files
    fuzz_files="$(ls "$REPO"/Fuzz/Common/*.swift "$REPO/Fuzz/$(target_dir "$target")"/*.swift)"
    # Rebuild only when a source, or this script, is newer than the binary.
    # shellcheck disable=SC2046
    if [ -x "$binary" ] && [ -z "$(find $(project_sources "$target") $fuzz_files "$REPO/scripts/fuzz.sh" -newer "$binary" | head -1)" ]; then
        return 0
    fi
    files="$(compiled_sources "$target")" || return 1
    # swiftc leaves module files in its working directory: give it one of its own.
    mkdir -p "$BUILD/work/$target"
    # shellcheck disable=SC2086
    if ! (cd "$BUILD/work/$target" && "$SWIFTC" -sanitize=fuzzer,address -parse-as-library -O -wmo -g \
        "${LINKER[@]}" -module-name "Fuzz$(target_dir "$target")" $files $fuzz_files -o "$binary.tmp") >"$log" 2>&1; then
        echo "$target: build failed (.build-fuzz/logs/$target.build.log):" >&2
        grep -v "Cannot export local symbol" "$log" | head -40 >&2
        rm -f "$binary.tmp"
        return 1
    fi
    mv "$binary.tmp" "$binary"
}

run() {
    local target="$1" log="$BUILD/logs/$1.log" result="$BUILD/logs/$1.result"
    local corpus="$REPO/Fuzz/corpus/$target" crashes="$REPO/Fuzz/crashes/$target"
    mkdir -p "$corpus" "$crashes"
    local dict=()
    if [ -f "$REPO/Fuzz/dict/$target.dict" ]; then dict=(-dict="$REPO/Fuzz/dict/$target.dict"); fi
    local status=0 started=$SECONDS
    # SWIFT_BACKTRACE: the Swift runtime's backtracer would otherwise take over a crash and
    # can hang on to the pipe; libFuzzer and ASan print the stack themselves.
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" \
        "$BUILD/fuzz-$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$crashes/" "${dict[@]}" "$corpus" >"$log" 2>&1 </dev/null || status=$?
    local executions inputs bytes coverage
    executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)"
    coverage="$(grep -ao 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //' || true)"
    inputs="$(find "$corpus" -type f | wc -l)"
    bytes="$(find "$corpus" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s / 1024 }')"
    if [ "$status" -eq 0 ] && [ -n "$executions" ] && [ "$executions" -gt 0 ]; then
        echo "$target: passed, ${executions} executions in $((SECONDS - started)) s, corpus ${inputs} inputs (${bytes} KB), coverage ${coverage:-?} edges" >"$result"
    else
        local artifact
        artifact="$(sed -n 's/.*Test unit written to //p' "$log" | tail -1 || true)"
        {
            echo "$target: FAILED (exit $status) after ${executions:-0} executions; log .build-fuzz/logs/$target.log${artifact:+; input ${artifact#"$REPO"/}}"
            grep -a -m 3 -E "fuzz property violated|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|Fatal error|SUMMARY" "$log" | cut -c1-600 | sed 's/^/    /' || true
        } >"$result"
    fi
}

# Builds, then runs, JOBS at a time (one core each).
for target in "${TARGETS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    rm -f "$BUILD/logs/$target.built"
    (if build "$target"; then touch "$BUILD/logs/$target.built"; fi) &
done
wait
for target in "${TARGETS[@]}"; do
    rm -f "$BUILD/logs/$target.result"
    if [ ! -f "$BUILD/logs/$target.built" ]; then
        echo "$target: FAILED (build; .build-fuzz/logs/$target.build.log)" >"$BUILD/logs/$target.result"
        continue
    fi
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    run "$target" &
done
wait

passed=0
failed=0
for target in "${TARGETS[@]}"; do
    if [ ! -f "$BUILD/logs/$target.result" ]; then echo "$target: FAILED (no result; see .build-fuzz/logs/)" >"$BUILD/logs/$target.result"; fi
    cat "$BUILD/logs/$target.result"
    if head -1 "$BUILD/logs/$target.result" | grep -q ": passed,"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
