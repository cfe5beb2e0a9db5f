# A Semaphore lets two workers in at a time; a Queue carries their results back.
import sys
from multiprocessing import Process, Queue, Semaphore, Value

def worker(sem, inside, peak, q, i):
    with sem:
        with inside.get_lock():
            inside.value += 1
            peak.value = max(peak.value, inside.value)
        q.put({'worker': i, 'square': i * i, 'tags': ['a', i]})
        with inside.get_lock():
            inside.value -= 1

if __name__ == '__main__':
    import multiprocessing
    multiprocessing.set_start_method(sys.argv[1])
    sem = Semaphore(2)
    inside = Value('i', 0)
    peak = Value('i', 0)
    q = Queue()
    procs = [Process(target=worker, args=(sem, inside, peak, q, i)) for i in range(6)]
    for p in procs:
        p.start()
    results = sorted((q.get(timeout=20) for _ in procs), key=lambda r: r['worker'])
    for p in procs:
        p.join()
    print(results)
    print(peak.value <= 2, inside.value, q.empty())
    q.put([42, None, 'hello'])
    print(q.get())
