# JoinableQueue: three workers, join() waits until every item is marked done.
import sys, time
from multiprocessing import Process, JoinableQueue, Manager

def worker(q, results):
    while True:
        item = q.get()
        if item is None:
            q.task_done()
            break
        results.append(item * 2)
        q.task_done()

if __name__ == '__main__':
    import multiprocessing; multiprocessing.set_start_method(sys.argv[1])
    q = JoinableQueue()
    with Manager() as m:
        results = m.list()
        ps = [Process(target=worker, args=(q, results)) for _ in range(3)]
        for p in ps: p.start()
        for i in range(100): q.put(i)
        q.join()
        print(len(results), sum(results))
        for _ in ps: q.put(None)
        q.join()
        for p in ps: p.join()
        try:
            q.task_done()
        except ValueError as e:
            print("ValueError", e)
