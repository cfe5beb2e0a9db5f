# Manager().set() (multiprocessing has it from Python 3.14): children add, the parent reads.
import sys
from multiprocessing import Process, Manager

def add(s, i):
    for k in range(100):
        s.add(k % 50 + i)
    s.discard(i)

if __name__ == '__main__':
    import multiprocessing
    multiprocessing.set_start_method(sys.argv[1])
    with Manager() as manager:
        s = manager.set()
        procs = [Process(target=add, args=(s, i * 1000)) for i in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        print(len(s), sorted(s)[:3], 1001 in s, 1000 in s)
