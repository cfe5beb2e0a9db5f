#!/usr/bin/env bash
# Smoke-runs every fuzz target for a few seconds each; fails on any crash, panic or
# timeout (hang). CI calls this; see README.md for deeper runs.
#
#   fuzz/smoke.sh [SECONDS_PER_TARGET]   (default 20)
#
# Builds without a sanitizer and without comparison tracing by default (fastest; see
# README.md, "Throughput"). FUZZ_SANITIZER=address adds AddressSanitizer and leak checks,
# FUZZ_TRACE_COMPARES=1 comparison tracing (libFuzzer's CMP-guided mutations); each makes
# the targets several times slower.
#
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 unlocks the -Z sanitizer flags
# cargo-fuzz passes. Installs cargo-fuzz when it is missing.
set -euo pipefail

seconds="${1:-20}"
build=(--sanitizer "${FUZZ_SANITIZER:-none}")
if [ "${FUZZ_TRACE_COMPARES:-0}" = 0 ]; then
    build+=(--no-trace-compares)
fi
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1

# Fuzz a scratch copy of the corpus: what libFuzzer finds in a smoke run is not
# committed (corpus/ keeps only the seed-* files in git).
# On tmpfs when there is one: libFuzzer writes every new input there.
work="$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)"
trap 'rm -rf "$work"' EXIT

status=0
failures=""
for target in $(cargo fuzz list); do
    echo "smoke.sh: fuzzing $target for ${seconds}s" >&2
    mkdir -p "$work/$target"
    if [ -d "corpus/$target" ]; then
        cp -r "corpus/$target/." "$work/$target/"
    fi
    # -timeout: an input that runs longer than 10 s counts as a hang (a finding).
    if ! cargo fuzz run "${build[@]}" "$target" "$work/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        2>&1 | tee "$work/$target.log"; then
        echo "smoke.sh: $target FAILED: the crashing input is in fuzz/artifacts/$target/" >&2
        # The finding's own lines (its kind, where, and the input as base64), kept for the
        # end of the output, which is the part a CI log shows.
        failures+="=== $target"$'\n'
        failures+="$(grep -E -A12 'ERROR: libFuzzer|panicked at|SUMMARY|^Base64' "$work/$target.log" | head -60 || true)"$'\n'
        status=1
    fi
done
if [ "$status" != 0 ]; then
    echo "smoke.sh: findings (reproduce: echo BASE64 | base64 -d > input; cargo fuzz run TARGET input):" >&2
    printf '%s' "$failures" >&2
fi
exit "$status"
