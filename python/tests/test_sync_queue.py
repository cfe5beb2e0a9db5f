"""Lock, RLock, Condition, Event, Semaphore, BoundedSemaphore, Barrier and Queue, within
one process and across real processes (fork and spawn)."""

import functools
import multiprocessing
import pickle
import queue
import threading
import time

import pytest

import shmarena
from helpers import join_all, run_process

METHODS = ["fork", "spawn"]


def elapsed(start):
    return time.monotonic() - start


def start(ctx, target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    return p


# ===================================================================== Lock


def test_lock_basic(manager):
    lock = manager.Lock()
    assert lock.locked() is False
    assert lock.acquire() is True
    assert lock.locked() is True
    assert lock.acquire(False) is False  # not reentrant
    lock.release()
    assert lock.locked() is False
    with lock as got:
        assert got is True
        assert lock.locked()
    assert not lock.locked()
    assert lock.acquire(timeout=0.5) is True
    lock.release()
    assert lock.acquire(block=False) is True
    lock.release()


def test_lock_context_manager_releases_on_exception(manager):
    lock = manager.Lock()
    with pytest.raises(ZeroDivisionError):
        with lock:
            1 / 0
    assert not lock.locked()


def test_lock_release_when_not_locked(manager):
    # As multiprocessing's (a semaphore with maxvalue 1).
    lock = manager.Lock()
    with pytest.raises(ValueError, match="^semaphore or lock released too many times$"):
        lock.release()
    lock.acquire()
    lock.release()
    with pytest.raises(ValueError, match="^semaphore or lock released too many times$"):
        lock.release()
    assert not lock.locked()
    with lock:
        pass
    with pytest.raises(ValueError):
        lock.release()


def test_lock_acquired_by_another_thread_is_released_by_this_one(manager):
    lock = manager.Lock()
    t = threading.Thread(target=lock.acquire)
    t.start()
    t.join(10)
    assert lock.locked()
    assert "SomeOtherThread" in repr(lock)
    lock.release()  # Lock has no owner: any thread may release it
    assert not lock.locked()
    assert repr(lock) == "<Lock(owner=None)>"
    assert lock.acquire(False) is True
    lock.release()


def test_a_release_by_another_thread_wakes_a_blocked_acquirer(manager):
    lock = manager.Lock()
    assert lock.acquire()
    got = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=20)))
    t.start()
    time.sleep(0.2)  # the acquirer sleeps on the lock word
    assert got == []
    releaser = threading.Thread(target=lock.release)
    releaser.start()
    releaser.join(10)
    t.join(20)
    assert got == [True]
    lock.release()
    assert not lock.locked()


def _acquire_and_exit(lock):
    assert lock.acquire(False)


@pytest.mark.parametrize("method", METHODS)
def test_lock_acquired_by_an_exited_child_is_released_by_the_parent(manager, method):
    ctx = multiprocessing.get_context(method)
    lock = manager.Lock()
    p = start(ctx, _acquire_and_exit, lock)
    join_all([p])
    assert lock.locked()
    lock.release()  # as multiprocessing's: the parent may release it
    assert not lock.locked()
    assert lock.acquire(timeout=5) is True  # clean: no OwnerDiedError
    lock.release()
    with pytest.raises(ValueError):
        lock.release()


def test_lock_of_an_exited_child_nobody_released_is_still_taken_over(manager, fork_ctx):
    lock = manager.Lock()
    p = start(fork_ctx, _acquire_and_exit, lock)
    join_all([p])
    with pytest.raises(shmarena.OwnerDiedError):
        lock.acquire(timeout=5)
    assert lock.locked()  # held by this process now
    lock.mark_consistent()
    lock.release()
    assert lock.acquire(timeout=5) is True
    lock.release()


def _hold_lock_until(lock, locked, release, out):
    lock.acquire()
    locked.set()
    release.wait(30)
    try:
        lock.release()
        out["child"] = "released"
    except ValueError:
        out["child"] = "ValueError"


def test_lock_held_by_a_live_process_is_released_by_another(manager, fork_ctx):
    lock, locked, release = manager.Lock(), manager.Event(), manager.Event()
    out = manager.dict()
    p = start(fork_ctx, _hold_lock_until, lock, locked, release, out)
    try:
        assert locked.wait(30)
        assert repr(lock) == "<Lock(owner=SomeOtherProcess)>"
        lock.release()
        assert not lock.locked()
    finally:
        release.set()
        join_all([p])
    # The child's own release found it unlocked, as with multiprocessing.
    assert out["child"] == "ValueError"
    assert lock.acquire(False) is True
    lock.release()


def test_lock_acquire_timeout_in_same_process(manager):
    lock = manager.Lock()
    lock.acquire()
    t = time.monotonic()
    assert lock.acquire(timeout=0.1) is False
    assert 0.09 <= elapsed(t) < 2.0
    lock.release()


def _hold_lock(lock, locked, release):
    lock.acquire()
    locked.set()
    release.wait(30)
    lock.release()


@pytest.mark.parametrize("method", METHODS)
def test_lock_held_by_another_process(manager, method):
    ctx = multiprocessing.get_context(method)
    lock, locked, release = manager.Lock(), manager.Event(), manager.Event()
    p = start(ctx, _hold_lock, lock, locked, release)
    try:
        assert locked.wait(30) is True
        assert lock.locked() is True
        assert lock.acquire(False) is False
        t = time.monotonic()
        assert lock.acquire(timeout=0.1) is False
        assert 0.09 <= elapsed(t) < 2.0
        assert lock.locked() is True
    finally:
        release.set()
        join_all([p])
    assert lock.locked() is False
    assert lock.acquire(False) is True
    lock.release()


def test_lock_blocking_acquire_waits_for_other_process(manager, fork_ctx):
    lock, locked, release = manager.Lock(), manager.Event(), manager.Event()
    p = start(fork_ctx, _hold_lock, lock, locked, release)
    assert locked.wait(30)
    threading.Timer(0.2, release.set).start()
    t = time.monotonic()
    assert lock.acquire(timeout=20) is True
    assert elapsed(t) >= 0.15
    lock.release()
    join_all([p])


def _locked_increment(lock, v, n):
    for _ in range(n):
        with lock:
            v.value = v.value + 1


def test_lock_mutual_exclusion_processes_and_threads(manager, region, fork_ctx):
    lock = manager.Lock()
    v = shmarena.Value("i", 0, region=region)
    n = 300
    procs = [start(fork_ctx, _locked_increment, lock, v, n) for _ in range(3)]
    threads = [threading.Thread(target=_locked_increment, args=(lock, v, n)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    join_all(procs, 60)
    assert v.value == 5 * n


def test_lock_other_thread_of_holder_blocks(manager):
    lock = manager.Lock()
    lock.acquire()
    result = []
    t = threading.Thread(target=lambda: result.append(lock.acquire(timeout=0.1)))
    t.start()
    t.join(10)
    assert result == [False]
    # Any thread of the holding process may release it (documented).
    t = threading.Thread(target=lock.release)
    t.start()
    t.join(10)
    assert not lock.locked()


# ===================================================================== RLock


def test_rlock_reentrancy(manager):
    rl = manager.RLock()
    assert rl.acquire() is True
    assert rl.acquire() is True
    assert rl.acquire(False) is True
    rl.release()
    rl.release()
    rl.release()
    with pytest.raises(RuntimeError):
        rl.release()
    with rl:
        with rl:
            with rl:
                pass
    with pytest.raises(RuntimeError):
        rl.release()


def test_rlock_release_by_non_owner_thread(manager):
    rl = manager.RLock()
    rl.acquire()
    errors, acquired = [], []

    def other():
        try:
            rl.release()
        except RuntimeError:
            errors.append("RuntimeError")
        acquired.append(rl.acquire(timeout=0.1))

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    assert errors == ["RuntimeError"]
    assert acquired == [False]
    rl.release()  # still held by this thread, once
    with pytest.raises(RuntimeError):
        rl.release()


def _rlock_acquire_and_exit(rl):
    assert rl.acquire(False)


def test_rlock_held_by_another_process_is_not_released_by_this_one(manager, fork_ctx):
    # An RLock keeps its owner (multiprocessing's raises AssertionError there).
    rl = manager.RLock()
    p = start(fork_ctx, _rlock_acquire_and_exit, rl)
    join_all([p])
    with pytest.raises(RuntimeError):
        rl.release()
    with pytest.raises(shmarena.OwnerDiedError):
        rl.acquire(timeout=5)
    rl.mark_consistent()
    rl.release()
    with pytest.raises(RuntimeError):
        rl.release()


def _rlock_try(rl, out):
    out["try"] = rl.acquire(False)
    out["timed"] = rl.acquire(timeout=0.1)


def test_rlock_across_processes(manager, fork_ctx):
    rl = manager.RLock()
    out = manager.dict()
    with rl:
        with rl:
            run_process(fork_ctx, _rlock_try, rl, out)
    assert out.copy() == {"try": False, "timed": False}
    run_process(fork_ctx, _rlock_try, rl, out)
    assert out["try"] is True


# ===================================================================== Condition


def _consumer(cond, d, out, count):
    got = []
    with cond:
        for i in range(count):
            ok = cond.wait_for(lambda: d.get("n", 0) > i, timeout=20)
            assert ok is True
            got.append(d[i])
    out["got"] = tuple(got)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("lock_kind", ["rlock", "lock"])
def test_condition_producer_consumer(manager, method, lock_kind):
    ctx = multiprocessing.get_context(method)
    cond = manager.Condition(manager.Lock() if lock_kind == "lock" else None)
    d, out = manager.dict(), manager.dict()
    p = start(ctx, _consumer, cond, d, out, 5)
    for i in range(5):
        time.sleep(0.02)
        with cond:
            d[i] = i * 10
            d["n"] = i + 1
            cond.notify()
    join_all([p], 60)
    assert out["got"] == (0, 10, 20, 30, 40)


def _waiter(cond, ready, out, key, timeout=10):
    with cond:
        ready.set()
        t = time.monotonic()
        out[key] = cond.wait(timeout=timeout)
        out[key + "_dt"] = time.monotonic() - t


def test_condition_wait_notify_between_processes(manager, fork_ctx):
    cond, ready, out = manager.Condition(), manager.Event(), manager.dict()
    p = start(fork_ctx, _waiter, cond, ready, out, "w")
    assert ready.wait(30)
    with cond:  # the waiter is inside wait() once we hold the lock
        cond.notify()
    join_all([p])
    assert out["w"] is True
    assert out["w_dt"] < 5


def test_condition_notify_all_wakes_every_waiter(manager, fork_ctx):
    cond, out = manager.Condition(), manager.dict()
    readies = [manager.Event() for _ in range(3)]
    procs = [start(fork_ctx, _waiter, cond, readies[i], out, f"w{i}") for i in range(3)]
    for r in readies:
        assert r.wait(30)
    with cond:
        cond.notify_all()
    join_all(procs)
    assert [out[f"w{i}"] for i in range(3)] == [True, True, True]


def test_condition_notify_after_long_critical_section_is_not_lost(manager, fork_ctx):
    cond, ready, out = manager.Condition(), manager.Event(), manager.dict()
    p = start(fork_ctx, _waiter, cond, ready, out, "w", 3)
    assert ready.wait(30)
    with cond:
        time.sleep(0.2)
        cond.notify()
    join_all([p], 30)
    assert out["w"] is True
    assert out["w_dt"] < 2


def test_condition_wait_for_timeout_returns_predicate_result(manager):
    cond = manager.Condition()
    with cond:
        t = time.monotonic()
        assert cond.wait_for(lambda: 0, timeout=0.1) == 0
        assert 0.09 <= elapsed(t) < 2.0
        t = time.monotonic()
        assert cond.wait_for(lambda: [], timeout=0.1) == []
        assert cond.wait_for(lambda: "yes", timeout=0.1) == "yes"
        assert cond.wait_for(lambda: 7) == 7
        assert elapsed(t) < 2.0
        t = time.monotonic()
        assert cond.wait(timeout=0.1) is False
        assert 0.09 <= elapsed(t) < 2.0


def test_condition_requires_lock(manager):
    cond = manager.Condition()
    with pytest.raises(RuntimeError):
        cond.notify()
    with pytest.raises(RuntimeError):
        cond.notify_all()
    with pytest.raises(RuntimeError):
        cond.wait(0.01)
    plain = manager.Condition(manager.Lock())
    with pytest.raises(RuntimeError):
        plain.notify()
    with plain:
        plain.notify()  # no waiters: fine
        plain.notify_all()


def test_condition_with_reentrant_lock_restores_depth(manager):
    rl = manager.RLock()
    cond = manager.Condition(rl)
    with rl:
        with cond:
            assert cond.wait(timeout=0.05) is False
        # Still held once after the inner `with`.
        cond.notify()
    with pytest.raises(RuntimeError):
        rl.release()


def test_condition_acquire_release(manager):
    lock = manager.Lock()
    cond = manager.Condition(lock)
    assert cond.acquire() is True
    assert lock.locked()
    cond.release()
    assert not lock.locked()
    assert cond.acquire(False) is True
    cond.release()


def test_condition_rejects_other_locks(region):
    with pytest.raises(TypeError):
        shmarena.Condition(threading.Lock(), region=region)


# ===================================================================== Event


def _event_waiter(ev, out):
    t = time.monotonic()
    out["result"] = ev.wait(20)
    out["dt"] = time.monotonic() - t


def _event_setter(ev):
    time.sleep(0.1)
    ev.set()


@pytest.mark.parametrize("method", METHODS)
def test_event_across_processes(manager, method):
    ctx = multiprocessing.get_context(method)
    ev, out = manager.Event(), manager.dict()
    p = start(ctx, _event_waiter, ev, out)
    time.sleep(0.1)
    ev.set()
    join_all([p])
    assert out["result"] is True
    assert out["dt"] < 10
    ev.clear()
    q = start(ctx, _event_setter, ev)
    assert ev.wait(20) is True
    join_all([q])


def test_event_basic(manager):
    ev = manager.Event()
    assert ev.is_set() is False
    t = time.monotonic()
    assert ev.wait(0.1) is False
    assert 0.09 <= elapsed(t) < 2.0
    assert ev.wait(0) is False
    ev.set()
    assert ev.is_set() is True
    assert ev.wait() is True
    assert ev.wait(0.1) is True
    ev.set()
    assert ev.is_set()
    ev.clear()
    assert ev.is_set() is False
    assert ev.wait(0.01) is False


# ===================================================================== Semaphores


def test_semaphore_counts(manager):
    s = manager.Semaphore(2)
    assert s.get_value() == 2
    assert s.acquire(False) is True
    assert s.acquire(False) is True
    assert s.acquire(False) is False
    assert s.get_value() == 0
    t = time.monotonic()
    assert s.acquire(timeout=0.1) is False
    assert 0.09 <= elapsed(t) < 2.0
    s.release()
    assert s.get_value() == 1
    with s:
        assert s.get_value() == 0
    assert s.get_value() == 1
    s.release()
    s.release()  # an unbounded semaphore may go above its initial value
    assert s.get_value() == 3


def test_semaphore_release_limit(manager):
    s = manager.Semaphore(0)
    for _ in range(64):
        s.release()
    assert s.get_value() == 64
    with pytest.raises(ValueError):
        s.release()  # documented: at most max(value, 64) permits
    assert s.get_value() == 64


def test_bounded_semaphore(manager):
    b = manager.BoundedSemaphore(2)
    assert b.get_value() == 2
    with pytest.raises(ValueError):
        b.release()
    assert b.get_value() == 2
    assert b.acquire() is True
    assert b.get_value() == 1
    b.release()
    with pytest.raises(ValueError):
        b.release()
    assert b.get_value() == 2
    assert b.acquire(False) and b.acquire(False)
    assert b.acquire(False) is False
    b.release()
    b.release()
    assert b.get_value() == 2


def test_bounded_semaphore_zero(manager):
    b = manager.BoundedSemaphore(0)
    with pytest.raises(ValueError):
        b.release()
    assert b.get_value() == 0


def _sem_release(s, n):
    for _ in range(n):
        s.release()


def _sem_acquire(s, out):
    out["acquired"] = s.acquire(timeout=10)


@pytest.mark.parametrize("method", METHODS)
def test_semaphore_as_signal_across_processes(manager, method):
    ctx = multiprocessing.get_context(method)
    s = manager.Semaphore(0)
    run_process(ctx, _sem_release, s, 3)
    assert s.get_value() == 3
    assert [s.acquire(timeout=5) for _ in range(3)] == [True, True, True]
    assert s.acquire(timeout=0.2) is False


def test_semaphore_permit_consumed_by_exited_process_stays_consumed(manager, fork_ctx):
    s = manager.Semaphore(0)
    s.release()
    s.release()
    out = manager.dict()
    run_process(fork_ctx, _sem_acquire, s, out)
    assert out["acquired"] is True
    assert s.acquire(timeout=1) is True
    # Two permits were released and two were taken: none may be left.
    assert s.acquire(timeout=0.5) is False


# ===================================================================== Barrier


def _barrier_party(b, out, who, rounds):
    for r in range(rounds):
        out[(who, r)] = b.wait(timeout=30)


@pytest.mark.parametrize("method", METHODS)
def test_barrier_three_processes_distinct_indices(manager, method):
    ctx = multiprocessing.get_context(method)
    b, out = manager.Barrier(3), manager.dict()
    assert b.parties == 3
    procs = [start(ctx, _barrier_party, b, out, who, 3) for who in range(3)]
    join_all(procs, 60)
    for r in range(3):
        assert {out[(who, r)] for who in range(3)} == {0, 1, 2}
    assert len(out) == 9
    assert b.n_waiting == 0
    assert b.broken is False


def _barrier_expect_broken(b, out):
    try:
        b.wait(timeout=30)
        out["result"] = "passed"
    except threading.BrokenBarrierError:
        out["result"] = "broken"


def test_barrier_abort(manager, fork_ctx):
    b, out = manager.Barrier(2), manager.dict()
    p = start(fork_ctx, _barrier_expect_broken, b, out)
    deadline = time.monotonic() + 20
    while b.n_waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b.n_waiting == 1
    b.abort()
    join_all([p])
    assert out["result"] == "broken"
    assert b.broken is True
    with pytest.raises(threading.BrokenBarrierError):
        b.wait(timeout=1)
    b.reset()
    assert b.broken is False


def test_barrier_timeout_breaks(manager):
    b = manager.Barrier(2)
    t = time.monotonic()
    with pytest.raises(threading.BrokenBarrierError):
        b.wait(timeout=0.1)
    assert 0.09 <= elapsed(t) < 2.0
    assert b.broken is True
    b.reset()
    assert b.broken is False
    default_timeout = manager.Barrier(2, timeout=0.1)
    with pytest.raises(threading.BrokenBarrierError):
        default_timeout.wait()


def _count_action(counter):
    counter.value += 1


def _barrier_party_seeing_action(b, counter, out, who, rounds):
    for r in range(rounds):
        b.wait(timeout=30)
        out[(who, r)] = counter.value


@pytest.mark.parametrize("method", METHODS)
def test_barrier_action_runs_before_any_party_leaves(manager, method):
    # As in Python: the action runs once per round, in the last party to arrive, before
    # any party returns from wait(), so every party sees this round's action done.
    ctx = multiprocessing.get_context(method)
    counter, out = manager.Value("i", 0), manager.dict()
    b = manager.Barrier(3, action=functools.partial(_count_action, counter))
    procs = [
        start(ctx, _barrier_party_seeing_action, b, counter, out, who, 3) for who in range(3)
    ]
    join_all(procs, 60)
    for r in range(3):
        assert [out[(who, r)] for who in range(3)] == [r + 1] * 3
    assert counter.value == 3


def _raise_action():
    raise KeyError("from the action")


def test_barrier_action_that_raises_breaks_the_barrier(manager, fork_ctx):
    b, out = manager.Barrier(2, action=_raise_action), manager.dict()
    p = start(fork_ctx, _barrier_expect_broken, b, out)
    deadline = time.monotonic() + 20
    while b.n_waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(KeyError):
        b.wait(timeout=30)
    join_all([p])
    assert out["result"] == "broken"
    assert b.broken is True


def test_barrier_single_party_and_action(manager):
    calls = []
    b = manager.Barrier(1, action=lambda: calls.append(1))
    assert b.wait() == 0
    assert b.wait() == 0
    assert calls == [1, 1]


# ===================================================================== Queue


def test_queue_fifo_and_pickled_items(manager):
    q = manager.Queue()
    items = [1, "two", {"three": [3, 3.0]}, [4, (4,)], None, b"six", {7}, 2**100]
    for item in items:
        q.put(item)
    assert q.qsize() == len(items)
    got = [q.get() for _ in items]
    assert got == items
    assert type(got[2]) is dict and type(got[3]) is list and type(got[6]) is set
    assert q.empty()


def test_queue_full_and_empty(manager):
    q = manager.Queue(2)
    assert q.capacity == 2
    assert q.empty() and not q.full() and q.qsize() == 0
    q.put_nowait("a")
    assert q.qsize() == 1 and not q.empty() and not q.full()
    q.put("b", block=False)
    assert q.full() and q.qsize() == 2
    with pytest.raises(queue.Full):
        q.put_nowait("c")
    with pytest.raises(queue.Full):
        q.put("c", False)
    t = time.monotonic()
    with pytest.raises(queue.Full):
        q.put("c", timeout=0.1)
    assert 0.09 <= elapsed(t) < 2.0
    assert q.qsize() == 2
    assert q.get_nowait() == "a"
    assert q.get(False) == "b"
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(block=False)
    t = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.1)
    assert 0.09 <= elapsed(t) < 2.0
    assert q.empty() and q.qsize() == 0


def test_queue_with_no_maxsize_is_unbounded(manager):
    q = manager.Queue()
    assert q.capacity is None and manager.Queue(-5).capacity is None
    assert not q.full()
    for i in range(100_000):  # no consumer: it grows
        q.put_nowait(i)
    assert q.qsize() == 100_000 and not q.full() and not q.empty()
    assert "100000, unbounded" in repr(q)
    assert [q.get_nowait() for _ in range(100_000)] == list(range(100_000))
    with pytest.raises(queue.Empty):
        q.get_nowait()
    t = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.1)
    assert 0.09 <= elapsed(t) < 2.0
    # Reopened by name (as after pickling), it is still the unbounded queue.
    again = pickle.loads(pickle.dumps(q))
    again.put("x")
    assert q.get() == "x" and again.capacity is None


def test_queue_items_over_the_slot_room_are_kept_out_of_line(manager):
    for q in [manager.Queue(max_item_bytes=64, pickle=False), manager.Queue(3, max_item_bytes=64)]:
        q.put("x" * 64)
        q.put("y" * 100_000)
        q.put(list(range(1000)))
        assert q.qsize() == 3
        assert q.get() == "x" * 64
        assert q.get() == "y" * 100_000
        assert q.get() == list(range(1000))
    # Churn: the blocks of items taken out return to the region (64 MiB).
    q = manager.Queue()
    for i in range(2000):
        q.put(b"z" * 100_000)
        assert q.get() == b"z" * 100_000


def test_queue_pickle_false(manager):
    q = manager.Queue(pickle=False)
    with pytest.raises(TypeError):
        q.put({1, 2})
    with pytest.raises(TypeError):
        q.put(object())
    assert q.qsize() == 0
    q.put([1, {"a": 2}])
    assert q.get_nowait() == [1, {"a": 2}]
    q.put((1, "a", b"b", None, 2.5, True))
    assert q.get_nowait() == (1, "a", b"b", None, 2.5, True)


def _queue_is_open_in_child(q):
    # A forked child inherits the closed handle, but (as in multiprocessing, whose queue
    # resets after a fork) the close belongs to the process that made it.
    q.put("from child")


@pytest.mark.parametrize("kind", ["Queue", "JoinableQueue"])
def test_closed_queue_refuses_put_and_get_in_the_closing_process(manager, fork_ctx, kind):
    q = getattr(manager, kind)()
    joinable = kind == "JoinableQueue"
    with pytest.raises(AssertionError, match="not closed"):
        q.join_thread()
    q.put(1)
    other = pickle.loads(pickle.dumps(q))
    q.close()
    # multiprocessing: ValueError(f"Queue {self!r} is closed") from put and get.
    for call in (lambda: q.put(2), lambda: q.put_nowait(2), q.get, q.get_nowait,
                 lambda: q.get(timeout=0.1)):
        with pytest.raises(ValueError, match=r"^Queue .* is closed$"):
            call()
    q.join_thread()
    q.cancel_join_thread()
    q.close()  # again: still closed, no error
    assert q.qsize() == 1
    # The item is still in the shared queue, for every other handle.
    assert other.get(timeout=5) == 1
    if joinable:
        other.task_done()
    run_process(fork_ctx, _queue_is_open_in_child, q)
    assert other.get(timeout=5) == "from child"
    if joinable:
        other.task_done()
        other.join()


def _producer(q, who, n):
    for i in range(n):
        q.put((who, i), timeout=30)


def _queue_consumer(q, out, n):
    out["items"] = tuple(q.get(timeout=30) for _ in range(n))


@pytest.mark.parametrize("method", METHODS)
def test_queue_across_processes(manager, method):
    ctx = multiprocessing.get_context(method)
    q = manager.Queue(8)  # small: producers block while the parent consumes
    n = 200
    procs = [start(ctx, _producer, q, who, n) for who in range(3)]
    got = [q.get(timeout=30) for _ in range(3 * n)]
    join_all(procs, 60)
    assert sorted(got) == sorted((who, i) for who in range(3) for i in range(n))
    for who in range(3):  # FIFO per producer
        assert [i for w, i in got if w == who] == list(range(n))
    assert q.empty()


@pytest.mark.parametrize("method", METHODS)
def test_queue_consumer_process_blocks_until_put(manager, method):
    ctx = multiprocessing.get_context(method)
    q, out = manager.Queue(), manager.dict(pickle=True)
    p = start(ctx, _queue_consumer, q, out, 3)
    time.sleep(0.2)
    q.put({"a": [1]})
    q.put([2])
    q.put("three")
    join_all([p])
    assert out["items"] == ({"a": [1]}, [2], "three")


# ------------------------------------------------------------------ reprs, as multiprocessing's


def _lock_repr_in_child(lock, expected):
    assert repr(lock) == expected, repr(lock)


def test_lock_and_rlock_reprs_match_multiprocessing(manager, fork_ctx):
    lock = manager.Lock()
    assert repr(lock) == "<Lock(owner=None)>"
    with lock:
        assert repr(lock) == "<Lock(owner=MainProcess)>"
        seen = []
        t = threading.Thread(target=lambda: seen.append(repr(lock)))
        t.start()
        t.join()
        assert seen == ["<Lock(owner=SomeOtherThread)>"]
        run_process(fork_ctx, _lock_repr_in_child, lock, "<Lock(owner=SomeOtherProcess)>")

    def in_thread():
        with lock:
            seen.append(repr(lock))

    t = threading.Thread(target=in_thread, name="worker")
    t.start()
    t.join()
    assert seen[-1] == "<Lock(owner=MainProcess|worker)>"

    rlock = manager.RLock()
    assert repr(rlock) == "<RLock(None, 0)>"
    with rlock, rlock:
        assert repr(rlock) == "<RLock(MainProcess, 2)>"
        t = threading.Thread(target=lambda: seen.append(repr(rlock)))
        t.start()
        t.join()
        assert seen[-1] == "<RLock(SomeOtherThread, nonzero)>"
        run_process(fork_ctx, _lock_repr_in_child, rlock, "<RLock(SomeOtherProcess, nonzero)>")
    assert repr(rlock) == "<RLock(None, 0)>"


def test_semaphore_condition_event_barrier_reprs_match_multiprocessing(manager):
    semaphore = manager.Semaphore(3)
    semaphore.acquire()
    assert repr(semaphore) == "<Semaphore(value=2)>"
    bounded = manager.BoundedSemaphore(2)
    bounded.acquire()
    assert repr(bounded) == "<BoundedSemaphore(value=1, maxvalue=2)>"
    assert repr(manager.BoundedSemaphore(0)) == "<BoundedSemaphore(value=0, maxvalue=0)>"
    # The number of waiters is not counted by the shared condition variable.
    assert repr(manager.Condition()) == "<Condition(<RLock(None, 0)>, unknown)>"
    assert repr(manager.Condition(manager.Lock())) == "<Condition(<Lock(owner=None)>, unknown)>"
    event = manager.Event()
    assert repr(event) == f"<Event at {id(event):#x} unset>"
    event.set()
    assert repr(event) == f"<Event at {id(event):#x} set>"
    barrier = manager.Barrier(3)
    module = type(barrier).__module__
    assert repr(barrier) == f"<{module}.Barrier at {id(barrier):#x}: waiters=0/3>"
    barrier.abort()
    assert repr(barrier) == f"<{module}.Barrier at {id(barrier):#x}: broken>"


def _empty_in_child(q, out):
    out["empty"] = q.empty()


@pytest.mark.parametrize("kind", ["Queue", "JoinableQueue"])
def test_closed_queue_empty_raises_once_used(manager, fork_ctx, kind):
    # As multiprocessing's (3.13's test_closed_queue_empty_exceptions): close() before
    # any put leaves empty() answering; after a put, close() makes empty() raise OSError
    # in this process.
    q = getattr(manager, kind)()
    q.close()
    q.join_thread()
    assert q.empty() is True
    q = getattr(manager, kind)()
    q.put("foo")
    other = pickle.loads(pickle.dumps(q))
    q.close()
    q.join_thread()
    with pytest.raises(OSError, match="^handle is closed$"):
        q.empty()
    assert q.qsize() == 1 and q.full() is False
    # Other handles, and a forked child's copy, still answer.
    assert other.empty() is False
    out = manager.dict(capacity=8)
    run_process(fork_ctx, _empty_in_child, q, out)
    assert out["empty"] is False


def test_not_owned_is_assertion_error_and_runtime_error(manager, fork_ctx):
    # multiprocessing's RLock and Condition raise AssertionError for a thread that does
    # not hold the lock, threading's (so a manager's) RuntimeError: NotOwnedError is both.
    assert issubclass(shmarena.NotOwnedError, AssertionError)
    assert issubclass(shmarena.NotOwnedError, RuntimeError)
    rl = manager.RLock()
    for catch in (AssertionError, RuntimeError, shmarena.NotOwnedError):
        with pytest.raises(catch, match="^attempt to release recursive lock not owned by "
                                        "thread$"):
            rl.release()
    p = start(fork_ctx, _rlock_acquire_and_exit, rl)
    join_all([p])
    with pytest.raises(AssertionError):
        rl.release()  # held by an exited process: still not this thread's
    cond = manager.Condition()
    for call in (cond.wait, cond.notify, cond.notify_all):
        with pytest.raises(AssertionError, match="^cannot wait on un-acquired lock$"):
            call()
    plain = manager.Condition(manager.Lock())
    with pytest.raises(RuntimeError, match="^cannot wait on un-acquired lock$"):
        plain.wait(0.01)



class _SlowToFail:
    """Pickling takes a while, then fails: a put counted, then uncounted."""

    def __reduce__(self):
        time.sleep(0.3)
        raise pickle.PicklingError("not this one")


def test_a_put_that_fails_wakes_a_join_waiting_for_it():
    # join() starts while a put has counted its item and is still pickling it; the put
    # then fails and uncounts the item: join() must wake, as if the put never counted.
    jq = shmarena.JoinableQueue()
    failed = []

    def put_failing():
        try:
            jq.put(_SlowToFail())
        except pickle.PicklingError:
            failed.append(True)

    putter = threading.Thread(target=put_failing)
    putter.start()
    time.sleep(0.1)
    joined = threading.Event()
    joiner = threading.Thread(target=lambda: (jq.join(), joined.set()), daemon=True)
    joiner.start()
    putter.join()
    joiner.join(timeout=5)
    assert failed == [True]
    assert joined.is_set(), "join() still waits after the failed put uncounted its item"
