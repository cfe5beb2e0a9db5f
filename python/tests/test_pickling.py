"""Every shmarena object pickles as a handle of the same shared object, in the same
process and in Pool workers (spawn and fork)."""

import multiprocessing
import os
import pickle
import queue
import threading

import pytest

import shmarena

PROTOCOLS = [0, 2, pickle.HIGHEST_PROTOCOL]


def roundtrip(obj, protocol=pickle.HIGHEST_PROTOCOL):
    copy = pickle.loads(pickle.dumps(obj, protocol))
    assert copy is not obj
    assert type(copy) is type(obj)
    return copy


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_region_pickles(region, protocol):
    copy = roundtrip(region, protocol)
    assert copy.path == region.path
    assert copy.size == region.size


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_value_pickles(region, protocol):
    v = shmarena.Value("i", 3, region=region)
    v2 = roundtrip(v, protocol)
    assert v2.name == v.name
    assert v2.typecode == "i"
    assert v2.value == 3
    v2.value = 5
    assert v.value == 5
    v.add(10)
    assert v2.value == 15
    with v2.get_lock():
        assert v.get_lock().acquire(True) is True  # the same RLock: reentrant here
        v.get_lock().release()
        import threading

        got = []
        thread = threading.Thread(target=lambda: got.append(v.get_lock().acquire(False)))
        thread.start()
        thread.join()
        assert got == [False]
    for code, init in [("d", 1.5), ("c", b"x"), ("u", "\u00e9"), ("Q", 2**64 - 1)]:
        w = roundtrip(shmarena.Value(code, init, region=region), protocol)
        assert w.value == init
        assert w.typecode == code


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_array_pickles(region, protocol):
    a = shmarena.Array("h", [1, 2, 3], region=region)
    a2 = roundtrip(a, protocol)
    assert a2.name == a.name
    assert a2.typecode == "h"
    assert len(a2) == 3
    assert a2[:] == [1, 2, 3]
    a2[1] = -7
    assert a[:] == [1, -7, 3]
    a.fetch_add(2, 4)
    assert a2[2] == 7
    u = roundtrip(shmarena.Array("u", "abc", region=region), protocol)
    assert u[:] == "abc"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dict_pickles(manager, protocol):
    d = manager.dict(a=1)
    d2 = roundtrip(d, protocol)
    assert d2.name == d.name
    assert d2 == {"a": 1}
    d2["b"] = (2, "x")
    assert d.copy() == {"a": 1, "b": (2, "x")}
    d.add("a", 5)
    assert d2["a"] == 6
    assert d2.keys() == ["a", "b"]
    # Limits travel with the shared object.
    assert d2.max_key_bytes == d.max_key_bytes == 64
    assert d2.max_value_bytes == d.max_value_bytes == 64
    assert d2.capacity == d.capacity
    # The pickle flag travels with the handle.
    with pytest.raises(TypeError):
        d2["s"] = {1}
    dp = manager.dict(pickle=True)
    dp2 = roundtrip(dp, protocol)
    dp2["l"] = [1, {"x": {2}}]  # a set: pickled
    assert dp["l"] == [1, {"x": {2}}]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_set_pickles(manager, protocol):
    s = manager.set([1])
    s2 = roundtrip(s, protocol)
    assert s2.name == s.name
    s2.add("x")
    assert s == {1, "x"}
    s.discard(1)
    assert s2 == {"x"}
    assert s2.capacity == s.capacity


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_namespace_pickles(manager, protocol):
    ns = manager.Namespace(x=1)
    ns2 = roundtrip(ns, protocol)
    ns2.x = 5
    ns2.y = "new"
    assert ns.x == 5
    assert ns.y == "new"
    del ns.y
    with pytest.raises(AttributeError):
        ns2.y


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_queue_pickles(manager, protocol):
    q = manager.Queue(3)
    q2 = roundtrip(q, protocol)
    assert q2.name == q.name
    assert q2.capacity == 3
    q2.put({"a": [1]})
    assert q.qsize() == 1
    assert q.get(timeout=5) == {"a": [1]}
    assert q2.empty()
    q.put(1)
    q.put(2)
    q.put(3)
    with pytest.raises(queue.Full):
        q2.put_nowait(4)
    assert [q2.get_nowait() for _ in range(3)] == [1, 2, 3]
    plain = roundtrip(manager.Queue(pickle=False), protocol)
    with pytest.raises(TypeError):
        plain.put({1})


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_lock_pickles(region, protocol):
    # Pickles reopen their region with shmarena.open_region(path): make that the handle
    # this process uses, so both handles act for the same participant.
    shared = shmarena.open_region(region.path)
    lock = shmarena.Lock(region=shared)
    lock2 = roundtrip(lock, protocol)
    assert lock2.name == lock.name
    assert lock2.acquire() is True
    assert lock.locked() is True
    assert lock.acquire(False) is False
    lock.release()  # the same process holds it: either handle may release
    assert lock2.locked() is False
    with lock:
        assert lock2.locked()
        assert lock2.acquire(timeout=0.05) is False


def test_lock_pickles_with_user_region(manager):
    lock = manager.Lock()
    lock2 = roundtrip(lock)
    assert lock2.acquire() is True
    try:
        lock.release()  # this process holds it
    finally:
        if lock2.locked():
            try:
                lock2.release()
            except ValueError:
                pass
    assert not lock.locked()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rlock_pickles(manager, protocol):
    rl = manager.RLock()
    rl2 = roundtrip(rl, protocol)
    assert rl2.name == rl.name
    with rl2:
        with rl2:
            # Another thread sees the shared lock held.
            got = []
            t = threading.Thread(target=lambda: got.append(rl.acquire(timeout=0.05)))
            t.start()
            t.join(10)
            assert got == [False]
    assert rl.acquire(False) is True
    rl.release()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("lock_kind", ["default", "lock"])
def test_condition_pickles(manager, protocol, lock_kind):
    lock = manager.Lock() if lock_kind == "lock" else None
    cond = manager.Condition(lock)
    cond2 = roundtrip(cond, protocol)
    with cond2:
        cond2.notify()
        cond2.notify_all()
        assert cond2.wait(timeout=0.01) is False
        if lock is not None:
            assert lock.locked()
    with pytest.raises(RuntimeError):
        cond2.notify()
    if lock is not None:
        assert not lock.locked()
        # The Condition's lock and the Lock pickled together stay one handle.
        lock3, cond3 = roundtrip((lock, cond), protocol)
        with lock3:
            cond3.notify()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_event_pickles(manager, protocol):
    ev = manager.Event()
    ev2 = roundtrip(ev, protocol)
    ev2.set()
    assert ev.is_set()
    assert ev.wait(0) is True
    ev.clear()
    assert ev2.is_set() is False


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_semaphore_pickles(manager, protocol):
    s = manager.Semaphore(2)
    s2 = roundtrip(s, protocol)
    assert s2.get_value() == 2
    assert s2.acquire(False) is True
    assert s.get_value() == 1
    s.release()
    assert s2.get_value() == 2
    b = manager.BoundedSemaphore(1)
    b2 = roundtrip(b, protocol)
    assert b2.get_value() == 1
    with pytest.raises(ValueError):
        b2.release()  # the bound travels with the handle
    assert b.acquire(False) is True
    assert b2.get_value() == 0
    b2.release()
    assert b.get_value() == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_barrier_pickles(manager, protocol):
    b = manager.Barrier(3, timeout=0.1)
    b2 = roundtrip(b, protocol)
    assert b2.parties == 3
    with pytest.raises(threading.BrokenBarrierError):
        b2.wait()  # the default timeout travels with the handle
    assert b.broken is True
    b.reset()
    assert b2.broken is False
    b2.abort()
    assert b.broken is True


# ----------------------------------------------------------------- Pool workers


def _pool_task(v, d, a, q, lock, i):
    v.add(1)
    d.add(i % 5, 1)
    d.add("total", 1)
    a.fetch_add(i % 3, 1)
    q.put(i)
    with lock:
        d["under_lock"] = d.get("under_lock", 0) + 1
    return os.getpid()


def _pool_counter(args):
    v, s, i = args
    s.add(i)
    return v.add(i)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_pool_workers_share_objects(region, manager, method):
    ctx = multiprocessing.get_context(method)
    v = shmarena.Value("q", 0, region=region)
    a = shmarena.Array("i", 3, region=region)
    d = manager.dict()
    q = manager.Queue()
    lock = manager.Lock()
    n = 60
    with ctx.Pool(2) as pool:
        pids = pool.starmap_async(
            _pool_task, [(v, d, a, q, lock, i) for i in range(n)]
        ).get(timeout=120)
    assert len(pids) == n
    assert os.getpid() not in pids
    assert v.value == n
    assert d.copy() == {0: 12, 1: 12, 2: 12, 3: 12, 4: 12, "total": n, "under_lock": n}
    assert a[:] == [20, 20, 20]
    assert sorted(q.get_nowait() for _ in range(n)) == list(range(n))
    assert q.empty()


def test_pool_imap_with_spawn(region, manager):
    ctx = multiprocessing.get_context("spawn")
    v = shmarena.Value("Q", 0, region=region)
    s = manager.set()
    n = 40
    with ctx.Pool(2) as pool:
        results = pool.map_async(
            _pool_counter, [(v, s, i) for i in range(1, n + 1)]
        ).get(timeout=120)
    total = n * (n + 1) // 2
    assert v.value == total
    assert max(results) == total
    assert len(set(results)) == n  # positive deltas: every add saw a distinct total
    assert s == set(range(1, n + 1))
