#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: every `shmarena bench` workload (shmarena, its in-process
# peers, the machine's limits) at 1, 2, 4, ... processes up to the number of cores, and
# Python's multiprocessing against shmarena's Python package when python3 is there
# (PYTHON=path/to/venv/bin/python to use an interpreter that has the package).
#
#   benches/benchmarks.sh [SECONDS_PER_RUN] [MAX_PROCS]
#
# Raw outputs go to benches/results/<date>-<host>-*.{txt,csv,json,svg}.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-2}"
max_procs="${2:-$(nproc)}"
stamp="$(date +%Y-%m-%d)-$(hostname -s)"
raw="benches/results/$stamp"
cargo build --release -q -p shmarena-cli
target/release/shmarena bench --max-procs "$max_procs" --seconds "$seconds" \
    --csv "$raw-bench.csv" --json "$raw-bench.json" --svg "$raw-bench.svg" | tee "$raw-bench.txt"
python_rows=""
if command -v python3 >/dev/null 2>&1; then
    # shmarena's Python rows need the package: PYTHON may name a venv's interpreter.
    "${PYTHON:-python3}" benches/python/vs_multiprocessing.py "$max_procs" "$seconds" \
        2> "$raw-python-ratios.txt" | tee "$raw-python.csv"
    python_rows="$(cat "$raw-python.csv"; echo; cat "$raw-python-ratios.txt")"
fi
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
{
    cat benches/BENCHMARKS.head.md
    echo
    echo "## Results: $stamp"
    echo
    echo "Machine: $cpu, $(nproc) CPUs, $(($(grep MemTotal /proc/meminfo | awk '{print $2}') / 1048576)) GiB;"
    echo "command: \`benches/benchmarks.sh $seconds $max_procs\` (raw files: \`$raw-*\`)."
    echo
    echo "### Goals"
    echo
    python3 benches/goals.py "$raw-bench.csv" ${python_rows:+"$raw-python.csv"}
    echo
    echo "### Every workload"
    echo
    echo "![total M ops/s against processes, one line per workload]($raw-bench.svg)"
    echo
    echo '```text'
    cat "$raw-bench.txt"
    echo '```'
    if [ -n "$python_rows" ]; then
        echo
        echo "Python: \`multiprocessing\` and shmarena's package in one run (total ops/s, then ratios):"
        echo
        echo '```text'
        echo "$python_rows"
        echo '```'
    fi
} > BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2
