# A Condition hands items from a producer to a consumer; an Event starts them.
import sys
from multiprocessing import Process, Manager, Condition, Event

def consumer(cond, items, done, start):
    start.wait()
    got = []
    with cond:
        while len(got) < 5:
            cond.wait_for(lambda: len(items) > len(got), timeout=10)
            got = list(items)
    done.append(sum(got))

def producer(cond, items, start):
    start.wait()
    for i in range(5):
        with cond:
            items.append(i * i)
            cond.notify_all()

if __name__ == '__main__':
    import multiprocessing
    multiprocessing.set_start_method(sys.argv[1])
    with Manager() as manager:
        items = manager.list()
        done = manager.list()
        cond = Condition()
        start = Event()
        c = Process(target=consumer, args=(cond, items, done, start))
        p = Process(target=producer, args=(cond, items, start))
        c.start()
        p.start()
        print(start.is_set())
        start.set()
        p.join()
        c.join()
        print(list(items), list(done), start.wait(0.01))
