#!/usr/bin/env python3
"""What Python users run today, measured the way `shmarena bench` measures shmarena.

For N = 1, 2, 4, ... processes, each process runs one operation in a loop for a fixed
time after a shared start signal:

  value-locked   with v.get_lock(): v.value += 1     (multiprocessing.Value)
  manager-dict   d[key] = d.get(key, 0) + 1          (Manager().dict(), a broker round trip)

Prints one CSV row per (workload, processes): workload,procs,total_ops_per_s.
Usage: multiprocessing_baseline.py [max_procs] [seconds]
"""

import multiprocessing as mp
import sys
import time


def value_worker(value, start, seconds, results, index):
    start.wait()
    deadline = time.perf_counter() + seconds
    ops = 0
    while True:
        for _ in range(256):
            with value.get_lock():
                value.value += 1
        ops += 256
        if time.perf_counter() >= deadline:
            break
    results[index] = ops


def dict_worker(shared, start, seconds, results, index):
    start.wait()
    deadline = time.perf_counter() + seconds
    key = index % 64
    ops = 0
    while time.perf_counter() < deadline:
        for _ in range(16):
            shared[key] = shared.get(key, 0) + 1
        ops += 32  # a get and a set each
    results[index] = ops


def run(workload, procs, seconds, manager):
    start = mp.Event()
    results = mp.Array("q", procs)
    if workload == "value-locked":
        target, shared = value_worker, mp.Value("q", 0)
    else:
        target, shared = dict_worker, manager.dict()
    workers = [mp.Process(target=target, args=(shared, start, seconds, results, i)) for i in range(procs)]
    for w in workers:
        w.start()
    time.sleep(0.2)
    begin = time.perf_counter()
    start.set()
    for w in workers:
        w.join()
    elapsed = max(time.perf_counter() - begin, seconds)
    total = sum(results[:])
    if workload == "value-locked" and shared.value != total:
        raise SystemExit(f"lost updates: {shared.value} != {total}")
    return total / elapsed


def main():
    max_procs = int(sys.argv[1]) if len(sys.argv) > 1 else mp.cpu_count()
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    counts = []
    n = 1
    while n < max_procs:
        counts.append(n)
        n *= 2
    counts.append(max_procs)
    print("workload,procs,total_ops_per_s")
    with mp.Manager() as manager:
        for workload in ("value-locked", "manager-dict"):
            for procs in counts:
                rate = run(workload, procs, seconds, manager)
                print(f"{workload},{procs},{rate:.0f}", flush=True)


if __name__ == "__main__":
    main()
