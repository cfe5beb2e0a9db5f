//! In-process tests of the cross-process locks: threads share one handle (one owner id),
//! and a second region handle stands in for another process.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmarena::engine::TypeDescriptor;
use shmarena::{Error, RLock, Region, RegionExt, TryLockError};

fn temp_region(tag: &str) -> (Region, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("shmarena-locks-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    (Region::create(&path, 1 << 20).unwrap(), path)
}

#[test]
fn threads_incrementing_under_the_mutex_lose_nothing() {
    let (region, path) = temp_region("threads");
    let mutex = Arc::new(region.mutex::<[u64; 2]>("m", [0, 0]).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mutex = Arc::clone(&mutex);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    let mut guard = mutex.lock().unwrap();
                    // A non-atomic read-modify-write: only mutual exclusion keeps it exact.
                    let value = guard[0];
                    std::hint::black_box(&mut *guard);
                    guard[0] = value + 1;
                    guard[1] += 2;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(*mutex.lock().unwrap(), [40_000, 80_000]);
    drop(mutex);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_lock_held_by_a_detached_owner_is_taken_over_and_reported() {
    let (region, path) = temp_region("takeover");
    let other = Region::open(&path).unwrap(); // stands in for another process
    let theirs = other.mutex::<u64>("m", 7).unwrap();
    let mut guard = theirs.lock().unwrap();
    *guard = 8;
    std::mem::forget(guard); // "dies" holding the lock
    let mine = region.mutex::<u64>("m", 0).unwrap();
    assert!(matches!(mine.try_lock(), Err(TryLockError::WouldBlock)));
    drop(theirs);
    drop(other); // detaching drops the liveness lock, as death does
    let started = Instant::now();
    let guard = match mine.lock() {
        Err(died) => died.into_inner(),
        Ok(_) => panic!("the new owner must be told the previous one died"),
    };
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(*guard, 8);
    drop(guard);
    // Not marked consistent: the next locker is told again; then it is marked.
    let guard = mine.lock().unwrap_err().into_inner();
    guard.mark_consistent();
    drop(guard);
    assert_eq!(*mine.lock().unwrap(), 8);
    drop(mine);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_try_with_no_wait_takes_over_a_dead_owners_lock() {
    // A waiter asks about the owner only after sleeping a while; a try that may not wait
    // (Python's acquire(False)) still asks once before it gives up.
    let (region, path) = temp_region("try-dead");
    let other = Region::open(&path).unwrap();
    let theirs = other.mutex::<u64>("m", 7).unwrap();
    std::mem::forget(theirs.lock().unwrap()); // "dies" holding the lock
    drop(theirs);
    drop(other);
    let mine = region.mutex::<u64>("m", 0).unwrap();
    match mine.lock_timeout(Duration::ZERO) {
        Err(TryLockError::OwnerDied(guard)) => assert_eq!(*guard, 7),
        Err(TryLockError::WouldBlock) => panic!("a dead owner's lock must be taken over"),
        Ok(_) => panic!("the new owner must be told the previous one died"),
    }
    drop(mine);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn lock_timeout_gives_up_on_a_live_owner() {
    let (region, path) = temp_region("timeout");
    let other = Region::open(&path).unwrap();
    let theirs = other.lock("l").unwrap();
    let held = theirs.lock().unwrap();
    let mine = region.lock("l").unwrap();
    let started = Instant::now();
    assert!(matches!(
        mine.lock_timeout(Duration::from_millis(30)),
        Err(TryLockError::WouldBlock)
    ));
    assert!(started.elapsed() >= Duration::from_millis(30));
    drop(held);
    assert!(mine.lock_timeout(Duration::from_millis(30)).is_ok());
    drop((theirs, other, mine, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn rlock_is_reentrant_for_its_thread_only() {
    let (region, path) = temp_region("rlock");
    let lock = Arc::new(region.rlock("r").unwrap());
    let outer = lock.lock().unwrap();
    let inner = lock.try_lock().unwrap();
    let other = Arc::clone(&lock);
    let blocked =
        std::thread::spawn(move || matches!(other.try_lock(), Err(TryLockError::WouldBlock)))
            .join()
            .unwrap();
    assert!(
        blocked,
        "another thread of the same process must not get in"
    );
    drop(inner);
    drop(outer);
    let other = Arc::clone(&lock);
    assert!(std::thread::spawn(move || other.try_lock().is_ok())
        .join()
        .unwrap());
    drop(lock);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn condvar_wakes_a_waiter_and_wait_while_rechecks() {
    let (region, path) = temp_region("condvar");
    let state = Arc::new(region.mutex::<u32>("state", 0).unwrap());
    let changed = Arc::new(region.condvar("changed").unwrap());
    let (s, c) = (Arc::clone(&state), Arc::clone(&changed));
    let waiter = std::thread::spawn(move || *c.wait_while(s.lock().unwrap(), |v| *v < 3).unwrap());
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(5));
        *state.lock().unwrap() += 1;
        changed.notify_all();
    }
    assert_eq!(waiter.join().unwrap(), 3);
    let (guard, result) = changed
        .wait_timeout(state.lock().unwrap(), Duration::from_millis(20))
        .unwrap();
    assert!(result.timed_out());
    drop(guard);
    drop((state, changed, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn event_releases_every_waiter() {
    let (region, path) = temp_region("event");
    let event = Arc::new(region.event("go").unwrap());
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let event = Arc::clone(&event);
            std::thread::spawn(move || event.wait_timeout(Duration::from_secs(10)))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(10));
    event.set();
    assert!(waiters.into_iter().all(|w| w.join().unwrap()));
    event.clear();
    assert!(!event.wait_timeout(Duration::from_millis(5)));
    drop((event, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn semaphore_counts_permits_and_returns_a_dead_holders() {
    let (region, path) = temp_region("semaphore");
    let sem = region.bounded_semaphore("s", 2).unwrap();
    assert!(sem.try_acquire());
    let other = Region::open(&path).unwrap();
    let theirs = other.bounded_semaphore("s", 2).unwrap();
    assert!(theirs.try_acquire());
    assert!(!sem.try_acquire());
    assert_eq!(theirs.held(), 1);
    drop(theirs);
    drop(other); // the holder "dies": its permit comes back to a waiter
    assert!(sem.acquire_timeout(Duration::from_millis(200)));
    assert_eq!(sem.held(), 2);
    sem.release().unwrap();
    sem.release().unwrap();
    assert!(matches!(
        sem.release(),
        Err(Error::TooManyReleases { capacity: 2 })
    ));
    // An unbounded semaphore can start at zero and be released into.
    let signal = region.semaphore("signal", 0).unwrap();
    assert!(!signal.try_acquire());
    signal.release().unwrap();
    assert!(signal.try_acquire());
    drop((sem, signal, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_semaphore_permit_guard_gives_its_permit_back_when_dropped() {
    let (region, path) = temp_region("permit-guard");
    let sem = region.bounded_semaphore("s", 2).unwrap();
    let first = sem.acquire_guard();
    let second = sem.try_acquire_guard().expect("a second permit is free");
    assert_eq!((sem.available(), sem.held()), (0, 2));
    assert!(sem.try_acquire_guard().is_none());
    let started = Instant::now();
    assert!(sem
        .acquire_guard_timeout(Duration::from_millis(20))
        .is_none());
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert_eq!(first.semaphore().name(), "s");
    drop(first);
    assert_eq!((sem.available(), sem.held()), (1, 1));
    drop(second);
    assert_eq!((sem.available(), sem.held()), (2, 0));

    // An early return between acquire and release gives the permit back.
    let work = |fail: bool| -> shmarena::Result<()> {
        let _permit = sem
            .acquire_guard_timeout(Duration::from_secs(5))
            .expect("free");
        if fail {
            return Err(Error::Overflow);
        }
        Ok(())
    };
    assert!(work(true).is_err());
    work(false).unwrap();
    assert_eq!(sem.available(), 2);

    // `forget` keeps the permit for the manual release.
    sem.acquire_guard().forget();
    assert_eq!((sem.available(), sem.held()), (1, 1));
    sem.release().unwrap();
    assert_eq!(sem.available(), 2);

    // Another process waiting on a guard gets the permit when the guard drops.
    let other = Region::open(&path).unwrap();
    let theirs = other.open_semaphore("s").unwrap();
    let both = [sem.acquire_guard(), sem.acquire_guard()];
    let waiter = std::thread::spawn(move || {
        let permit = theirs.acquire_guard_timeout(Duration::from_secs(10));
        let got = permit.is_some();
        drop(permit);
        got
    });
    std::thread::sleep(Duration::from_millis(20));
    drop(both);
    assert!(
        waiter.join().unwrap(),
        "the waiter got the permit given back"
    );
    assert_eq!(sem.available(), 2);
    drop((sem, other, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_semaphore_permit_guard_never_gives_back_a_permit_its_process_no_longer_holds() {
    let (region, path) = temp_region("permit-not-held");
    let sem = region.bounded_semaphore("s", 1).unwrap();
    let other = Region::open(&path).unwrap(); // another process
    let theirs = other.open_semaphore("s").unwrap();
    let guard = sem.acquire_guard();
    // Our permit goes back by hand (as a reclaim of a holder deemed dead would take it),
    // and the other process takes it.
    sem.release().unwrap();
    assert!(theirs.try_acquire());
    assert_eq!((theirs.held(), sem.held(), sem.available()), (1, 0, 0));
    drop(guard);
    assert_eq!(
        (theirs.held(), sem.available()),
        (1, 0),
        "the guard gave back the other process's permit"
    );
    theirs.release().unwrap();
    assert_eq!(sem.available(), 1);
    drop((sem, theirs, other, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn barrier_trips_for_its_parties_and_breaks_on_timeout_and_reset() {
    let (region, path) = temp_region("barrier");
    let barrier = Arc::new(region.barrier("b", 3).unwrap());
    for _round in 0..3 {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || barrier.wait().unwrap())
            })
            .collect();
        let mut indexes: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        indexes.sort_unstable();
        assert_eq!(indexes, vec![0, 1, 2]);
    }
    assert!(matches!(
        barrier.wait_timeout(Duration::from_millis(20)),
        Err(Error::BrokenBarrier(_))
    ));
    assert!(barrier.is_broken());
    assert!(matches!(barrier.wait(), Err(Error::BrokenBarrier(_))));
    barrier.reset();
    assert!(!barrier.is_broken());
    assert!(matches!(
        region.barrier("b", 4),
        Err(Error::TypeMismatch { .. })
    ));
    drop((barrier, region));
    std::fs::remove_file(path).unwrap();
}

// ---------------------------------------------------------------------------------------
// A guard never releases a lock its process no longer holds (issue 13, item 3). A live
// holder's lock can be taken over only if the holder is wrongly deemed dead; these tests
// make that happen by writing the lock words as a take-over by `other` would.

/// The lock word and the three words after it (consistency, RLock holder thread, RLock
/// count) of the object `name`.
fn lock_words<'r>(
    region: &'r Region,
    name: &str,
    descriptor: &TypeDescriptor,
) -> [&'r AtomicU32; 4] {
    let object = region.open_object(name, descriptor).unwrap();
    let words = object.atomics::<AtomicU32>(0, 4).unwrap();
    // SAFETY: four words checked inside the object's body; the mapping stays alive as
    // long as `region` does.
    std::array::from_fn(|i| unsafe { &*words.as_ptr().add(i) })
}

#[test]
fn a_mutex_guard_whose_lock_was_taken_over_does_not_release_the_new_holder() {
    let (region, path) = temp_region("taken-over-mutex");
    let other = Region::open(&path).unwrap(); // the taker, alive
    let mine = region.mutex::<u64>("m", 0).unwrap();
    let theirs = other.mutex::<u64>("m", 0).unwrap();
    let [word, ..] = lock_words(&region, "m", &shmarena::Mutex::<u64>::descriptor());
    let guard = mine.lock().unwrap();
    // Taken over while we are inside, as if we had been deemed dead.
    word.store(other.participant_id().bits(), Ordering::SeqCst);
    assert!(theirs.is_held());
    drop(guard);
    assert!(
        theirs.is_held(),
        "the old holder's guard released the new holder's lock"
    );
    assert!(matches!(mine.try_lock(), Err(TryLockError::WouldBlock)));
    theirs.release().unwrap();
    drop(
        mine.try_lock()
            .expect("free once the new holder released it"),
    );
    drop((mine, theirs, other, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn an_rlock_guard_whose_lock_was_taken_over_leaves_the_new_holders_words_alone() {
    let (region, path) = temp_region("taken-over-rlock");
    let other = Region::open(&path).unwrap();
    let mine = region.rlock("r").unwrap();
    let [word, _, holder, count] = lock_words(&region, "r", &RLock::descriptor());
    let outer = mine.lock().unwrap();
    let inner = mine.lock().unwrap();
    // Taken over by a thread (id 1) of `other`, which entered once.
    let taker = other.participant_id().bits();
    word.store(taker, Ordering::SeqCst);
    holder.store(1, Ordering::SeqCst);
    count.store(1, Ordering::SeqCst);
    drop(inner);
    drop(outer);
    assert_eq!(
        word.load(Ordering::SeqCst),
        taker,
        "the old holder's guards released the new holder's lock"
    );
    assert_eq!(holder.load(Ordering::SeqCst), 1);
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "the new holder's recursion count"
    );
    assert!(matches!(mine.try_lock(), Err(TryLockError::WouldBlock)));
    drop((mine, other, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_condvar_wait_on_a_taken_over_guard_does_not_release_the_new_holder() {
    let (region, path) = temp_region("taken-over-condvar");
    let other = Region::open(&path).unwrap();
    let mine = region.mutex::<u64>("m", 0).unwrap();
    let theirs = other.mutex::<u64>("m", 0).unwrap();
    let changed = region.condvar("c").unwrap();
    let [word, ..] = lock_words(&region, "m", &shmarena::Mutex::<u64>::descriptor());
    let (locked, proceed) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let guard = mine.lock().unwrap();
            locked.wait();
            proceed.wait(); // taken over meanwhile
            let (guard, _) = changed
                .wait_timeout(guard, Duration::from_millis(20))
                .unwrap();
            // The wait ends with the lock taken again, by us, after the new holder's release.
            assert!(mine.is_held());
            drop(guard);
        });
        locked.wait();
        word.store(other.participant_id().bits(), Ordering::SeqCst);
        proceed.wait();
        std::thread::sleep(Duration::from_millis(100)); // the waiter is in wait_timeout
        let still_held = theirs.is_held();
        // Let the waiter finish either way (its relock waits for the new holder).
        let released = theirs.release().is_ok();
        waiter.join().unwrap();
        assert!(
            still_held && released,
            "the wait released the new holder's lock"
        );
    });
    assert!(!mine.is_locked());
    drop((mine, theirs, changed, other, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn release_any_frees_a_lock_held_by_another_owner_and_wakes_its_waiter() {
    let (region, path) = temp_region("release-any");
    let other = Region::open(&path).unwrap(); // stands in for another process
    let theirs = other.lock("l").unwrap();
    let mine = Arc::new(region.lock("l").unwrap());
    assert!(!mine.release_any(), "a free lock stays free");
    std::mem::forget(theirs.lock().unwrap()); // held by the other owner, never released
    let waiter = {
        let mine = Arc::clone(&mine);
        std::thread::spawn(move || mine.lock().map(drop).is_ok())
    };
    std::thread::sleep(Duration::from_millis(50)); // let the waiter sleep on the futex
    assert!(mine.release_any());
    assert!(waiter.join().unwrap(), "woken, and told of no death");
    assert!(!mine.is_locked());
    // Our own acquisition, released the same way.
    assert!(mine.acquire(None).is_some());
    assert!(mine.release_any());
    assert!(!mine.release_any());
    assert!(matches!(mine.release(), Err(Error::NotHeld(_))));
    drop((theirs, other, mine, region));
    std::fs::remove_file(path).unwrap();
}
