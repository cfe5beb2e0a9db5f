#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: every `shmarena bench` workload (shmarena, its in-process
# peers, the machine's limits) at 1, 2, 4, ... processes up to the number of cores, and
# Python's multiprocessing against shmarena's Python package when python3 is there, with
# the third-party shared dicts and queue a Python user would try (UltraDict,
# shared-memory-dict, faster-fifo), installed with the package into target/bench-venv
# (PYTHON=path/to/venv/bin/python to use an interpreter of your own instead; rows of
# libraries it lacks are left out).
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
if [ -z "${PYTHON:-}" ] && command -v python3 >/dev/null 2>&1; then
    if [ ! -x target/bench-venv/bin/python ]; then
        python3 -m venv target/bench-venv
        target/bench-venv/bin/python -m pip install -q --upgrade pip
    fi
    target/bench-venv/bin/python -m pip install -q ./python
    # The peers are optional: a library that does not install is left out of the rows.
    for peer in UltraDict shared-memory-dict faster-fifo; do
        target/bench-venv/bin/python -m pip install -q "$peer" || echo "($peer not installed)" >&2
    done
    PYTHON=target/bench-venv/bin/python
fi
if [ -n "${PYTHON:-}" ]; then
    "$PYTHON" benches/python/vs_multiprocessing.py "$max_procs" "$seconds" \
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
        echo "Python: \`multiprocessing\`, a plain \`dict\`, UltraDict, shared-memory-dict, faster-fifo and shmarena's package in one run (total ops/s, then ratios):"
        echo
        echo '```text'
        echo "$python_rows"
        echo '```'
    fi
} > BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2
