#!/usr/bin/env python3
"""Python's multiprocessing against shmarena's Python package, in the same run.

For N = 1, 2, 4, ... processes, each process runs one operation in a loop for a fixed
time after a shared start signal (the way `shmarena bench` measures the Rust side):

  value-locked   with v.get_lock(): v.value += 1            (both: the same code)
  value-add      v.add(1)                                   (shmarena: atomic, no lock)
  dict-get-set   d[key] = d.get(key, 0) + 1, 2 ops           (Manager().dict(): both)
  dict-add       d.add(key, 1)                              (shmarena: atomic, exact)
  queue-pair     q.put(item); q.get(), 2 ops                 (Queue(): both)

Beside multiprocessing, what a Python user would otherwise reach for, each where it is
installed: a plain `dict` (each process its own, unshared: the in-process ceiling),
UltraDict and shared-memory-dict (shared dicts in shared memory) on dict-get-set, and
faster-fifo's Queue on queue-pair.

Every total is checked where it can be (value and dict-add counts are exact for shmarena
and for the locked Value). Prints CSV rows: library,workload,procs,total_ops_per_s; then,
on stderr, a table of shmarena over each other library for the workloads both run (and
value-add / dict-add against value-locked / dict-get-set).
shmarena's rows are skipped when the package is not installed.

Usage: vs_multiprocessing.py [max_procs] [seconds]
"""

import multiprocessing as mp
import sys
import time

try:
    import shmarena
except ImportError:  # the Rust-only benchmarks still get multiprocessing's rows
    shmarena = None
try:
    from UltraDict import UltraDict
except ImportError:
    UltraDict = None
try:
    from shared_memory_dict import SharedMemoryDict
except ImportError:
    SharedMemoryDict = None
try:
    import faster_fifo
except ImportError:
    faster_fifo = None

CTX = mp.get_context("fork")
BATCH = 64


def loop(seconds, step):
    deadline = time.perf_counter() + seconds
    ops = 0
    while True:
        for _ in range(BATCH):
            step()
        ops += BATCH
        if time.perf_counter() >= deadline:
            return ops


def worker(workload, shared, start, seconds, results, index):
    start.wait()
    key = index % 64
    if workload == "value-locked":

        def step():
            with shared.get_lock():
                shared.value += 1

        ops = loop(seconds, step)
    elif workload == "value-add":
        ops = loop(seconds, lambda: shared.add(1))
    elif workload == "dict-get-set":

        def step():
            shared[key] = shared.get(key, 0) + 1

        ops = 2 * loop(seconds, step)
    elif workload == "dict-add":
        ops = loop(seconds, lambda: shared.add(key, 1))
    elif workload == "queue-pair":

        def step():
            shared.put(index)
            shared.get()

        ops = 2 * loop(seconds, step)
    else:
        raise SystemExit(f"unknown workload {workload}")
    results[index] = ops


def make(library, workload, manager):
    if library == "dict":
        return {}  # each forked process updates its own copy: nothing is shared
    if library == "UltraDict":
        return UltraDict(create=True, buffer_size=1 << 20, auto_unlink=True)
    if library == "shared-memory-dict":
        return SharedMemoryDict(name=f"bench{time.monotonic_ns()}", size=1 << 16)
    if library == "faster-fifo":
        return faster_fifo.Queue(max_size_bytes=1 << 20)
    if library == "multiprocessing":
        if workload == "value-locked":
            return mp.Value("q", 0)
        if workload == "dict-get-set":
            return manager.dict()
        return CTX.Queue()
    if workload in ("value-locked", "value-add"):
        return shmarena.Value("q", 0)
    if workload in ("dict-get-set", "dict-add"):
        return shmarena.Manager().dict(capacity=1024)
    return shmarena.Queue(1024)


def run(library, workload, procs, seconds, manager):
    start = CTX.Event()
    results = CTX.Array("q", procs)
    shared = make(library, workload, manager)
    workers = [
        CTX.Process(target=worker, args=(workload, shared, start, seconds, results, i))
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    time.sleep(0.2)
    begin = time.perf_counter()
    start.set()
    for w in workers:
        w.join()
    elapsed = max(time.perf_counter() - begin, seconds)
    total = sum(results[:])
    if workload in ("value-locked", "value-add") and shared.value != total:
        raise SystemExit(f"{library} {workload}: lost updates: {shared.value} != {total}")
    if workload == "dict-add" and sum(shared.values()) != total:
        raise SystemExit(f"{library} {workload}: lost updates")
    if library == "shared-memory-dict":
        shared.cleanup()
        shared.shm.unlink()
    return total / elapsed


# (shmarena workload, multiprocessing workload it replaces)
PAIRS = [
    ("value-locked", "value-locked"),
    ("value-add", "value-locked"),
    ("dict-get-set", "dict-get-set"),
    ("dict-add", "dict-get-set"),
    ("queue-pair", "queue-pair"),
]

# Other libraries, where installed: (library, its workloads).
OTHERS = [
    ("dict", ("dict-get-set",), True),
    ("UltraDict", ("dict-get-set",), UltraDict is not None),
    ("shared-memory-dict", ("dict-get-set",), SharedMemoryDict is not None),
    ("faster-fifo", ("queue-pair",), faster_fifo is not None),
]


def main():
    max_procs = int(sys.argv[1]) if len(sys.argv) > 1 else mp.cpu_count()
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    counts = []
    n = 1
    while n < max_procs:
        counts.append(n)
        n *= 2
    counts.append(max_procs)
    rates = {}
    print("library,workload,procs,total_ops_per_s")
    with mp.Manager() as manager:
        plan = [("multiprocessing", w) for w in ("value-locked", "dict-get-set", "queue-pair")]
        plan += [(lib, w) for lib, workloads, present in OTHERS if present for w in workloads]
        if shmarena is not None:
            plan += [("shmarena", w) for w, _ in PAIRS]
        for library, workload in plan:
            for procs in counts:
                rate = run(library, workload, procs, seconds, manager)
                rates[library, workload, procs] = rate
                print(f"{library},{workload},{procs},{rate:.0f}", flush=True)
    if shmarena is None:
        return
    print("\nshmarena over each other library (same run, same machine):", file=sys.stderr)
    print(f"{'shmarena':>14} {'vs':>36} "
          + " ".join(f"{p:>9}" for p in counts), file=sys.stderr)
    rows = [(ours, "multiprocessing", theirs) for ours, theirs in PAIRS]
    rows += [(w, lib, w) for lib, workloads, present in OTHERS if present for w in workloads]
    for ours, library, theirs in rows:
        ratios = [rates["shmarena", ours, p] / rates[library, theirs, p] for p in counts]
        print(f"{ours:>14} {library + ' ' + theirs:>36} "
              + " ".join(f"{r:>8.2f}x" for r in ratios), file=sys.stderr)


if __name__ == "__main__":
    main()
