#!/usr/bin/env python3
"""The benchmark goals against one run's numbers, as a markdown table.

Usage: goals.py BENCH_CSV [PYTHON_CSV]
BENCH_CSV is `shmarena bench --csv`'s output; PYTHON_CSV is vs_multiprocessing.py's.
Each row is one goal: the measured ratio at every process count of the run, and whether
every count meets it.
"""

import csv
import sys


def load_bench(path):
    rates = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rates[row["workload"], int(row["procs"])] = float(row["total_mops"]) * 1e6
    return rates


def load_python(path):
    rates = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("library") and row.get("total_ops_per_s"):
                key = (row["library"], row["workload"], int(row["procs"]))
                rates[key] = float(row["total_ops_per_s"])
    return rates


def main():
    bench = load_bench(sys.argv[1])
    python = load_python(sys.argv[2]) if len(sys.argv) > 2 else {}
    counts = sorted({procs for (_, procs) in bench})

    def best_peer(mix, procs):
        peers = [f"{p}-{mix}" for p in ("papaya", "dashmap", "mutex-map")]
        return max(bench.get((peer, procs), 0.0) for peer in peers)

    goals = [
        ("HashMap read-heavy / best in-process peer", 2.0,
         lambda n: bench[("map-read-heavy", n)] / best_peer("read-heavy", n)),
        ("HashMap read-heavy / plain-probe limit", 0.5,
         lambda n: bench[("map-read-heavy", n)] / bench[("map-probe-limit", n)]),
        ("HashMap exchange / best in-process peer", 1.0,
         lambda n: bench[("map-exchange", n)] / best_peer("exchange", n)),
        ("ShardedCounter / private atomics", 0.8,
         lambda n: bench[("sharded-add", n)] / bench[("private-atomic", n)]),
    ]
    if python:
        manager = lambda n: python[("multiprocessing", "dict-get-set", n)]  # noqa: E731
        goals += [
            ("Rust HashMap read-heavy / Python `Manager().dict()`", 1000.0,
             lambda n: bench[("map-read-heavy", n)] / manager(n)),
            ("Python package dict get+set / `Manager().dict()`", 100.0,
             lambda n: python[("shmarena", "dict-get-set", n)] / manager(n)),
            ("Python package dict get+set / a plain `dict` (unshared)", 0.5,
             lambda n: python[("shmarena", "dict-get-set", n)]
             / python[("dict", "dict-get-set", n)]),
            ("Python `with v.get_lock(): v.value += 1` / `multiprocessing`", 1.0,
             lambda n: python[("shmarena", "value-locked", n)]
             / python[("multiprocessing", "value-locked", n)]),
        ]
    print("| goal (same run) | wanted | " + " | ".join(f"{n} proc" for n in counts)
          + " | met |")
    print("|---|---|" + "---|" * len(counts) + "---|")
    for name, wanted, ratio in goals:
        try:
            ratios = [ratio(n) for n in counts]
        except (KeyError, ZeroDivisionError):
            continue  # a workload this run did not measure
        cells = " | ".join(f"{r:.2f}x" if r < 10 else f"{r:.0f}x" for r in ratios)
        met = "yes" if all(r >= wanted for r in ratios) else "no"
        print(f"| {name} | >= {wanted:g}x | {cells} | {met} |")


if __name__ == "__main__":
    main()
