#!/usr/bin/env bash
# Builds the shmarena examples once (release) and runs each, comparing its standard
# output with expected/<name>.txt. Exits non-zero on any difference or failure.
#
#   structures/examples/run.sh            # every example
#   structures/examples/run.sh array set  # some of them
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."

if [ "$#" -gt 0 ]; then
    names=("$@")
else
    names=()
    for file in "$here"/*.rs; do
        names+=("$(basename "$file" .rs)")
    done
fi

cargo build --release -p shmarena --examples ${CARGO_BUILD_JOBS:+-j "$CARGO_BUILD_JOBS"} || exit 1
bin="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/examples"

failed=0
for name in "${names[@]}"; do
    expected="$here/expected/$name.txt"
    if [ ! -f "$expected" ]; then
        echo "FAIL $name: no $expected"
        failed=1
        continue
    fi
    # A child that hangs must not hang CI: 60 s is far more than any example needs.
    actual="$(timeout 60 "$bin/$name")"
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "FAIL $name: exited with status $status"
        failed=1
    elif [ "$actual" != "$(cat "$expected")" ]; then
        echo "FAIL $name: output differs from expected/$name.txt"
        diff <(printf '%s\n' "$actual") "$expected"
        failed=1
    else
        echo "ok   $name"
    fi
done
exit "$failed"
