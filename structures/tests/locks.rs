//! In-process tests of the cross-process locks: threads share one handle (one owner id),
//! and a second region handle stands in for another process.

#![cfg(not(loom))]

use std::sync::Arc;
use std::time::{Duration, Instant};

use shmarena::{Error, Region, RegionExt, TryLockError};

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
