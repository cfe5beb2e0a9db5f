# Four processes do a read-modify-write under a Lock: not one update is lost.
import sys
from multiprocessing import Process, Value, Lock

def add(counter, lock):
    for _ in range(2000):
        with lock:
            counter.value += 1

if __name__ == '__main__':
    import multiprocessing
    multiprocessing.set_start_method(sys.argv[1])
    counter = Value('i', 0, lock=False)
    lock = Lock()
    procs = [Process(target=add, args=(counter, lock)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print(counter.value)
    v = Value('q', 0)
    with v.get_lock():
        v.value += 5
    print(v.value)
