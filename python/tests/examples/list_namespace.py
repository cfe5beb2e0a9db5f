# A list appended to by four children, and a Namespace changed by a child.
import sys
from multiprocessing import Process, Manager

def work(l, ns, i):
    for k in range(250):
        l.append((i, k))
    if i == 0:
        ns.x += 1
        ns.greeting = '你好世界'

if __name__ == '__main__':
    import multiprocessing
    multiprocessing.set_start_method(sys.argv[1])
    with Manager() as manager:
        l = manager.list()
        ns = manager.Namespace()
        ns.x = 10
        ns.y = 'hello'
        procs = [Process(target=work, args=(l, ns, i)) for i in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        print(len(l), sorted(l) == [(i, k) for i in range(4) for k in range(250)])
        print(sorted(l)[:2])
        print(ns.x, ns.y, ns.greeting)
        l.sort(reverse=True)
        print(l[0], l[-1], l.count((2, 7)), l.index((3, 248)))
        del l[10:]
        l.insert(0, 'first')
        print(l.pop(), l)
