//! Loom models of the shipping lock cores: `RawMutex`, `RawCondvar`, `RawEvent`,
//! `RawSemaphore` and `RawBarrier`, built over loom atomics with a mock [`Liveness`] whose
//! dead owners are fixed per model. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom cargo test --release -p shmarena --test loom_sync`.
//!
//! Data "protected" by a lock lives in a `loom::cell::UnsafeCell`: loom panics on any two
//! accesses not ordered by happens-before, so a model fails both when two owners are inside
//! at once and when an Acquire/Release pairing is missing (the next owner's read would race
//! the last owner's write).
//!
//! Under loom a futex wait is a yield and a wake does nothing (see the engine's `futex`):
//! every waiter loops, so these models check the state machines (exclusion, hand-off,
//! recovery, publication) and that every wait ends once its condition holds; they cannot
//! see a lost futex wake-up.
//!
//! A waiter that would never be released (alone in a barrier generation) is ended by a
//! dead party's arrival mark for that generation, so every model terminates. Models with
//! two threads spinning on a third (three lockers of one mutex, two event waiters) exceed
//! loom's branch limit (each yield lets the other spinner run), so those races are
//! modeled with two threads (the three-thread barrier reset model does fit).

#![cfg(loom)]

mod loom_owners;
#[path = "../../engine/tests/loom_support/mod.rs"]
mod loom_support;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use loom_owners::{dead, live, Mock};
use loom_support::{model, model_both_orders, pair};
use shmarena::barrier::RawBarrier;
use shmarena::condvar::{RawCondvar, Waited};
use shmarena::engine::sync::{AtomicU32, AtomicU64, Ordering};
use shmarena::event::RawEvent;
use shmarena::mutex::{Acquired, RawMutex};
use shmarena::semaphore::{RawSemaphore, FREE};
use shmarena::sleepers::Sleepers;
use shmarena::{Error, OwnerId};

// ---------------------------------------------------------------------------------------
// Shared words.

const WAITERS: u32 = 1 << 31;

/// Reads a model cell. Loom panics if the read is not ordered after the last write.
fn read<T: Copy>(cell: &UnsafeCell<T>) -> T {
    // SAFETY: the pointer is valid for the call; whether another thread may write the
    // cell concurrently is what loom checks (it panics on a racing access).
    cell.with(|p| unsafe { *p })
}

/// Writes a model cell. Loom panics if the write races another access.
fn write<T>(cell: &UnsafeCell<T>, value: T) {
    // SAFETY: as in `read`.
    cell.with_mut(|p| unsafe { *p = value });
}

/// A non-atomic read-modify-write of a model cell: the value before the bump.
fn bump_cell(cell: &UnsafeCell<u32>) -> u32 {
    let seen = read(cell);
    write(cell, seen + 1);
    seen
}

struct MutexWords {
    word: AtomicU32,
    consistency: AtomicU32,
}

impl MutexWords {
    fn new(word: u32) -> Self {
        Self {
            word: AtomicU32::new(word),
            consistency: AtomicU32::new(0),
        }
    }

    fn raw(&self) -> RawMutex<'_> {
        RawMutex {
            word: &self.word,
            consistency: &self.consistency,
        }
    }
}

/// A mutex and the data it protects.
struct Guarded {
    lock: MutexWords,
    data: UnsafeCell<u32>,
}

// SAFETY: the cell is reached only through `read`/`write`, whose accesses loom checks for
// races; that check is what the models are for.
unsafe impl Sync for Guarded {}

impl Guarded {
    fn new(word: u32) -> Arc<Self> {
        Arc::new(Self {
            lock: MutexWords::new(word),
            data: UnsafeCell::new(0),
        })
    }

    /// Locks as `slot`, bumps the data, unlocks as a guard does (`unlock_if_held`);
    /// returns how the lock went and the data seen inside (before the bump).
    fn locked_bump(&self, slot: u32) -> (Acquired, u32) {
        let me = Mock::slot(slot);
        let acquired = self.lock.raw().lock(me.0, &me, None).expect("no deadline");
        let seen = self.bump();
        assert!(self.lock.raw().unlock_if_held(me.0), "lost the lock inside");
        (acquired, seen)
    }

    /// The critical section: a non-atomic read-modify-write of the data.
    fn bump(&self) -> u32 {
        bump_cell(&self.data)
    }

    fn data(&self) -> u32 {
        read(&self.data)
    }
}

// ---------------------------------------------------------------------------------------
// RawMutex

/// Two lockers of a free mutex: never both inside (the cell would race), and the second
/// sees the first's write (the unlock's Release pairs with the lock's Acquire).
#[test]
fn mutex_two_lockers_exclude_each_other_and_see_the_last_owners_write() {
    model_both_orders(|swap| {
        // No deaths here: a sleeper must be woken by an unlock, not by a timeout.
        shmarena::engine::futex::block_waits();
        let g = Guarded::new(0);
        let (ga, gb) = (Arc::clone(&g), Arc::clone(&g));
        let (a, b) = pair(swap, move || ga.locked_bump(1), move || gb.locked_bump(2));
        assert_eq!(a.0, Acquired::Clean);
        assert_eq!(b.0, Acquired::Clean);
        let mut seen = [a.1, b.1];
        seen.sort_unstable();
        assert_eq!(seen, [0, 1], "each owner saw the previous one's write");
        assert_eq!(g.data(), 2);
        assert_eq!(g.lock.word.load(Ordering::Relaxed), 0, "left locked");
    });
}

/// The owner (slot 1) unlocks a word with WAITERS set, announced by a waiter (slot 2) that
/// is in `lock`, and at once locks again as a new locker racing the woken waiter (barging).
/// No lock is lost or duplicated: the three critical sections run one at a time and the
/// word ends free. (A third thread as the new locker makes two spinners starve the holder
/// past loom's branch limit; the holder re-locking is the same race on the word.)
#[test]
fn mutex_unlock_with_waiters_set_vs_a_new_locker_loses_no_lock() {
    model_both_orders(|swap| {
        // No deaths here: a sleeper must be woken by an unlock, not by a timeout.
        shmarena::engine::futex::block_waits();
        let holder = live(1);
        let g = Guarded::new(holder.bits() | WAITERS);
        let (h, w) = (Arc::clone(&g), Arc::clone(&g));
        let holder_then_new_locker = move || {
            let first = h.bump();
            assert!(h.lock.raw().unlock_if_held(holder));
            (first, h.locked_bump(1))
        };
        let waiter = move || w.locked_bump(2);
        let ((first, relock), waited) = pair(swap, holder_then_new_locker, waiter);
        assert_eq!(first, 0);
        assert_eq!(relock.0, Acquired::Clean);
        assert_eq!(waited.0, Acquired::Clean);
        let mut seen = [relock.1, waited.1];
        seen.sort_unstable();
        assert_eq!(seen, [1, 2]);
        assert_eq!(g.data(), 3);
        assert_eq!(g.lock.word.load(Ordering::Relaxed), 0, "left locked");
    });
}

/// A lock held by a dead owner (with or without WAITERS): of two racing `try_lock`s
/// exactly one takes it over and is told `OwnerDied`; the other is refused (the winner is
/// alive and still holds it); the consistency flag is set and WAITERS is kept.
#[test]
fn mutex_dead_owner_is_taken_over_by_exactly_one_try_locker() {
    for waiters in [0, WAITERS] {
        model_both_orders(move |swap| {
            let g = Guarded::new(dead(5).bits() | waiters);
            let (ga, gb) = (Arc::clone(&g), Arc::clone(&g));
            let try_as = |g: Arc<Guarded>, slot: u32| {
                move || {
                    let me = Mock::slot(slot);
                    let got = g.lock.raw().try_lock(me.0, &me);
                    if got.is_some() {
                        g.bump(); // inside: the cell races if the other is too
                    }
                    got
                }
            };
            let (a, b) = pair(swap, try_as(ga, 1), try_as(gb, 2));
            let winner = match (a, b) {
                (Some(Acquired::OwnerDied), None) => live(1),
                (None, Some(Acquired::OwnerDied)) => live(2),
                other => panic!("expected exactly one takeover, got {other:?}"),
            };
            assert_eq!(g.lock.word.load(Ordering::Relaxed), winner.bits() | waiters);
            assert_eq!(g.lock.consistency.load(Ordering::Relaxed), 1);
        });
    }
}

/// A holder wrongly deemed dead (it runs on, as the mock's dead owner 5) writes the data
/// and releases as a guard does (`unlock_if_held`) while a `try_lock` takes its lock over,
/// with WAITERS set or not. Never both: the release comes first and the locker gets the
/// lock clean and sees the write (Release/Acquire), or finds it free only after its CAS
/// and gives up; or the take-over comes first and the release leaves the new holder's lock
/// alone. (The locker reads the data only after a clean acquisition: after a take-over the
/// two were inside at once, which is why only owners the table reports dead are taken
/// over. `try_lock`, not `lock`: under loom the locker's spins would yield to the holder
/// until it released, and the take-over would never be explored.)
#[test]
fn mutex_release_racing_a_take_over_never_frees_the_new_holders_lock() {
    for waiters in [0, WAITERS] {
        model_both_orders(move |swap| {
            let g = Guarded::new(dead(5).bits() | waiters);
            let (old, new) = (Arc::clone(&g), Arc::clone(&g));
            let old_holder = move || {
                write(&old.data, 7);
                old.lock.raw().unlock_if_held(dead(5))
            };
            let taker = move || {
                let me = Mock::slot(1);
                let acquired = new.lock.raw().try_lock(me.0, &me);
                if acquired == Some(Acquired::Clean) {
                    assert_eq!(new.data(), 7, "the released holder's write");
                }
                acquired
            };
            let (released, acquired) = pair(swap, old_holder, taker);
            let owner = g.lock.raw().owner();
            match acquired {
                Some(Acquired::OwnerDied) => {
                    assert!(!released, "released the new holder's lock");
                    assert_eq!(owner, Some(live(1)), "the new holder lost its lock");
                }
                Some(Acquired::Clean) => {
                    assert!(released);
                    assert_eq!(owner, Some(live(1)));
                }
                None => {
                    assert!(released, "refused a lock nobody else took");
                    assert_eq!(owner, None);
                }
            }
        });
    }
}

/// Two `lock`s race for a dead owner's lock. Both get it in turn; the first is told
/// `OwnerDied`, and so is the second exactly when the first did not mark the data
/// consistent (locker 1 marks it, locker 2 does not).
#[test]
fn mutex_dead_owner_flag_stays_set_until_mark_consistent() {
    model_both_orders(|swap| {
        let g = Guarded::new(dead(5).bits());
        let lock_as = |g: Arc<Guarded>, slot: u32| {
            move || {
                let me = Mock::slot(slot);
                let raw = g.lock.raw();
                let acquired = raw.lock(me.0, &me, None).expect("no deadline");
                let order = g.bump();
                if slot == 1 && acquired == Acquired::OwnerDied {
                    raw.mark_consistent();
                }
                raw.unlock();
                (acquired, order)
            }
        };
        let (a, b) = pair(swap, lock_as(Arc::clone(&g), 1), lock_as(Arc::clone(&g), 2));
        let first_marked = a.1 == 0;
        let (first, second) = if first_marked { (a, b) } else { (b, a) };
        assert_eq!(first.0, Acquired::OwnerDied, "the taker-over is told");
        let expected = if first_marked {
            Acquired::Clean
        } else {
            Acquired::OwnerDied
        };
        assert_eq!(second.0, expected, "told until marked consistent");
        assert_eq!(second.1, 1);
        assert_eq!(g.lock.word.load(Ordering::Relaxed), 0);
        // Locker 1 always ends up marking: it is told whenever it runs second, too.
        assert_eq!(g.lock.consistency.load(Ordering::Relaxed), 0);
    });
}

// ---------------------------------------------------------------------------------------
// RawCondvar

struct CondvarModel {
    lock: MutexWords,
    sequence: AtomicU32,
    waiting: AtomicU64,
    broadcast: AtomicU32,
    ready: UnsafeCell<bool>,
}

// SAFETY: the cell is reached only through `read`/`write`, whose accesses loom checks for
// races; that check is what the models are for.
unsafe impl Sync for CondvarModel {}

impl CondvarModel {
    fn condvar(&self) -> RawCondvar<'_> {
        RawCondvar {
            sequence: &self.sequence,
            waiting: &self.waiting,
            broadcast: &self.broadcast,
        }
    }
}

/// A waiter holding the mutex waits (`while !ready { wait }`) while a notifier sets
/// `ready` under the mutex and notifies, after its unlock or while still holding the
/// mutex. The waiter always returns holding the mutex, relocked cleanly, and sees `ready`
/// (the cell checks that `wait`'s relock orders the notifier's write); the counters end
/// balanced. With a yielding futex the waiter's loop ends because each `wait` unlocks, so
/// the notifier gets the lock. (`notify_all` differs from `notify_one` only in the wake
/// count, which loom's futex ignores: not modeled separately.)
#[test]
fn condvar_waiter_sees_the_predicate_set_under_the_mutex() {
    for notify_under_lock in [false, true] {
        model_both_orders(move |swap| {
            shmarena::engine::futex::block_waits();
            let s = Arc::new(CondvarModel {
                lock: MutexWords::new(0),
                sequence: AtomicU32::new(0),
                waiting: AtomicU64::new(0),
                broadcast: AtomicU32::new(0),
                ready: UnsafeCell::new(false),
            });
            // The waiter holds the mutex before the notifier starts, so it always waits.
            let waiter_id = Mock::slot(1);
            assert_eq!(
                s.lock.raw().lock(waiter_id.0, &waiter_id, None),
                Some(Acquired::Clean)
            );
            let (w, n) = (Arc::clone(&s), Arc::clone(&s));
            let waiter = move || {
                let me = waiter_id;
                let mutex = w.lock.raw();
                let mut waits = 0;
                while !read(&w.ready) {
                    let (acquired, timed_out) = w.condvar().wait(mutex, me.0, &me, None);
                    assert_eq!(acquired, Acquired::Clean);
                    assert!(!timed_out);
                    assert_eq!(mutex.owner(), Some(me.0), "wait returns holding the mutex");
                    waits += 1;
                }
                mutex.unlock();
                assert!(waits >= 1);
            };
            let notifier = move || {
                let me = Mock::slot(2);
                let mutex = n.lock.raw();
                assert_eq!(mutex.lock(me.0, &me, None), Some(Acquired::Clean));
                write(&n.ready, true);
                if notify_under_lock {
                    n.condvar().notify_one();
                    mutex.unlock();
                } else {
                    mutex.unlock();
                    n.condvar().notify_one();
                }
            };
            pair(swap, waiter, notifier);
            assert_eq!(s.waiting.load(Ordering::Relaxed), 0);
            assert_eq!(s.sequence.load(Ordering::Relaxed), 1);
            assert_eq!(s.lock.word.load(Ordering::Relaxed), 0);
        });
    }
}

/// The mutex owner dies while a waiter waits: a thread locks as an owner the mock reports
/// dead, sets `ready` (an atomic: a dead owner publishes nothing), notifies and never
/// unlocks. The waiter's relock inside `wait` takes the lock over and reports `OwnerDied`;
/// the waiter sees `ready` and ends holding the lock with the consistency flag set.
/// The interruptible wait (what the Python package's `Condition.wait` runs) keeps the
/// mutex released until the sequence moves: a notification sent under the mutex or after
/// it is never missed, and the waiter returns `Notified` holding the mutex.
#[test]
fn condvar_interruptible_waiter_is_notified_without_missing_a_wake_up() {
    for notify_under_lock in [false, true] {
        model_both_orders(move |swap| {
            let s = Arc::new(CondvarModel {
                lock: MutexWords::new(0),
                sequence: AtomicU32::new(0),
                waiting: AtomicU64::new(0),
                broadcast: AtomicU32::new(0),
                ready: UnsafeCell::new(false),
            });
            let waiter_id = Mock::slot(1);
            assert_eq!(
                s.lock.raw().lock(waiter_id.0, &waiter_id, None),
                Some(Acquired::Clean)
            );
            let (w, n) = (Arc::clone(&s), Arc::clone(&s));
            let waiter = move || {
                let me = waiter_id;
                let mutex = w.lock.raw();
                while !read(&w.ready) {
                    let (acquired, waited) =
                        w.condvar()
                            .wait_interruptible(mutex, me.0, &me, None, &mut || false);
                    assert_eq!(acquired, Acquired::Clean);
                    assert_eq!(waited, Waited::Notified);
                    assert_eq!(mutex.owner(), Some(me.0), "wait returns holding the mutex");
                }
                mutex.unlock();
            };
            let notifier = move || {
                let me = Mock::slot(2);
                let mutex = n.lock.raw();
                assert_eq!(mutex.lock(me.0, &me, None), Some(Acquired::Clean));
                write(&n.ready, true);
                if notify_under_lock {
                    n.condvar().notify_one();
                    mutex.unlock();
                } else {
                    mutex.unlock();
                    n.condvar().notify_one();
                }
            };
            pair(swap, waiter, notifier);
            assert_eq!(s.waiting.load(Ordering::Relaxed), 0);
        });
    }
}

/// One `notify_one` with two waiters that give up after a few looks: at most one of
/// them returns notified, and no permit outlives its sleeper (the `waiting` word ends at
/// zero whatever the interleaving).
#[test]
fn condvar_notify_one_wakes_at_most_one_waiter() {
    model(|| {
        let s = Arc::new(CondvarModel {
            lock: MutexWords::new(0),
            sequence: AtomicU32::new(0),
            waiting: AtomicU64::new(0),
            broadcast: AtomicU32::new(0),
            ready: UnsafeCell::new(false),
        });
        let notified = Arc::new(AtomicU32::new(0));
        let waiters: Vec<_> = [1, 2]
            .into_iter()
            .map(|slot| {
                let (w, count) = (Arc::clone(&s), Arc::clone(&notified));
                thread::spawn(move || {
                    let me = Mock::slot(slot);
                    let mutex = w.lock.raw();
                    assert_eq!(mutex.lock(me.0, &me, None), Some(Acquired::Clean));
                    let mut looks = 0;
                    let (acquired, waited) =
                        w.condvar()
                            .wait_interruptible(mutex, me.0, &me, None, &mut || {
                                looks += 1;
                                looks > 1
                            });
                    assert_eq!(acquired, Acquired::Clean);
                    if waited == Waited::Notified {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    mutex.unlock();
                })
            })
            .collect();
        s.condvar().notify_one();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert!(notified.load(Ordering::Relaxed) <= 1);
        assert_eq!(s.waiting.load(Ordering::Relaxed), 0);
    });
}

/// A notification cannot be taken by a waiter that arrived after it: the one waiter of
/// the time returns notified, the latecomer (who gives up after a few looks) does not.
#[test]
fn condvar_latecomer_cannot_take_an_earlier_notification() {
    model(|| {
        let s = Arc::new(CondvarModel {
            lock: MutexWords::new(0),
            sequence: AtomicU32::new(0),
            waiting: AtomicU64::new(0),
            broadcast: AtomicU32::new(0),
            ready: UnsafeCell::new(false),
        });
        let first = Mock::slot(1);
        assert_eq!(
            s.lock.raw().lock(first.0, &first, None),
            Some(Acquired::Clean)
        );
        let w = Arc::clone(&s);
        let early = thread::spawn(move || {
            let mutex = w.lock.raw();
            let (acquired, waited) =
                w.condvar()
                    .wait_interruptible(mutex, first.0, &first, None, &mut || false);
            assert_eq!(acquired, Acquired::Clean);
            mutex.unlock();
            waited
        });
        // The notifier takes the mutex, so the early waiter is already waiting.
        let notifier = Mock::slot(2);
        let mutex = s.lock.raw();
        assert_eq!(
            mutex.lock(notifier.0, &notifier, None),
            Some(Acquired::Clean)
        );
        s.condvar().notify_one();
        mutex.unlock();
        let late = Mock::slot(3);
        assert_eq!(mutex.lock(late.0, &late, None), Some(Acquired::Clean));
        let mut looks = 0;
        let (_, waited) = s
            .condvar()
            .wait_interruptible(mutex, late.0, &late, None, &mut || {
                looks += 1;
                looks > 1
            });
        mutex.unlock();
        assert_eq!(
            waited,
            Waited::Interrupted,
            "the latecomer took the notification"
        );
        assert_eq!(early.join().unwrap(), Waited::Notified);
        assert_eq!(s.waiting.load(Ordering::Relaxed), 0);
    });
}

/// A waiter wrongly deemed dead (the mock's dead owner 5, running on) enters `wait` while
/// a locker takes its lock over (`try_lock`, retried until it gets the lock), waits for the
/// waiter to count as a sleeper, notifies and releases. The waiter's release on entering
/// the wait is `unlock_if_held`: it never frees the taker's lock, so the taker's release
/// finds the lock still its own, and the waiter returns holding the lock again.
#[test]
fn condvar_wait_entered_after_a_take_over_never_frees_the_new_holders_lock() {
    model(|| {
        let s = Arc::new(CondvarModel {
            lock: MutexWords::new(dead(5).bits()),
            sequence: AtomicU32::new(0),
            waiting: AtomicU64::new(0),
            broadcast: AtomicU32::new(0),
            ready: UnsafeCell::new(false),
        });
        let t = Arc::clone(&s);
        let taker = thread::spawn(move || {
            let me = Mock::slot(1);
            let mutex = t.lock.raw();
            while mutex.try_lock(me.0, &me).is_none() {
                thread::yield_now();
            }
            // SeqCst: as the condvar's own reads of `waiting`.
            while t.waiting.load(Ordering::SeqCst) >> 32 == 0 {
                thread::yield_now(); // let the waiter count itself (else the notify is lost)
            }
            t.condvar().notify_one();
            mutex.unlock_if_held(me.0)
        });
        let me = Mock(dead(5));
        let mutex = s.lock.raw();
        s.condvar().wait(mutex, me.0, &me, None);
        assert_eq!(
            mutex.owner(),
            Some(me.0),
            "the wait returns holding the lock"
        );
        assert!(mutex.unlock_if_held(me.0));
        assert!(
            taker.join().unwrap(),
            "the waiter's release freed the new holder's lock"
        );
        assert_eq!(s.waiting.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn condvar_waiter_relocks_a_mutex_whose_owner_died() {
    model(|| {
        struct Shared {
            lock: MutexWords,
            sequence: AtomicU32,
            waiting: AtomicU64,
            broadcast: AtomicU32,
            ready: AtomicU32,
        }
        impl Shared {
            fn condvar(&self) -> RawCondvar<'_> {
                RawCondvar {
                    sequence: &self.sequence,
                    waiting: &self.waiting,
                    broadcast: &self.broadcast,
                }
            }
        }
        let s = Arc::new(Shared {
            lock: MutexWords::new(0),
            sequence: AtomicU32::new(0),
            waiting: AtomicU64::new(0),
            broadcast: AtomicU32::new(0),
            ready: AtomicU32::new(0),
        });
        // The waiter holds the lock before the doomed owner starts.
        let me = Mock::slot(1);
        let mutex = s.lock.raw();
        assert_eq!(mutex.lock(me.0, &me, None), Some(Acquired::Clean));
        let k = Arc::clone(&s);
        let doomed = thread::spawn(move || {
            let me = Mock(dead(3));
            let _ = k.lock.raw().lock(me.0, &me, None).expect("no deadline");
            k.ready.store(1, Ordering::SeqCst);
            k.condvar().notify_one();
            // Dies holding the lock: no unlock.
        });
        let mut last = Acquired::Clean;
        while s.ready.load(Ordering::SeqCst) == 0 {
            last = s.condvar().wait(mutex, me.0, &me, None).0;
        }
        // `ready` is set only by the doomed owner while it holds the lock, which it never
        // releases: holding the lock now means the relock took it over.
        assert_eq!(last, Acquired::OwnerDied);
        assert_eq!(mutex.owner(), Some(me.0));
        assert_eq!(s.lock.consistency.load(Ordering::Relaxed), 1);
        mutex.unlock();
        doomed.join().unwrap();
        assert_eq!(s.waiting.load(Ordering::Relaxed), 0);
    });
}

// ---------------------------------------------------------------------------------------
// RawEvent

struct EventModel {
    flag: AtomicU32,
    sleepers: AtomicU32,
    data: UnsafeCell<u32>,
}

// SAFETY: the cell is reached only through `read`/`write`, whose accesses loom checks for
// races; that check is what the models are for.
unsafe impl Sync for EventModel {}

impl EventModel {
    fn event(&self) -> RawEvent<'_> {
        RawEvent {
            flag: &self.flag,
            sleepers: Sleepers {
                count: &self.sleepers,
                registry: &[],
            },
        }
    }
}

/// `set` vs `wait`: the waiter returns true and sees what the setter wrote before `set`
/// (the swap's Release pairs with `is_set`'s Acquire); the sleeper count ends at zero.
#[test]
fn event_wait_vs_set_returns_and_sees_the_setters_writes() {
    model_both_orders(|swap| {
        shmarena::engine::futex::block_waits();
        let s = Arc::new(EventModel {
            flag: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            data: UnsafeCell::new(0),
        });
        let (w, t) = (Arc::clone(&s), Arc::clone(&s));
        let waiter = move || {
            assert!(w.event().wait(live(1), None));
            assert_eq!(
                read(&w.data),
                42,
                "ordered after the setter's write by the flag"
            );
        };
        let setter = move || {
            write(&t.data, 42);
            t.event().set(&Mock::slot(2));
        };
        pair(swap, waiter, setter);
        assert!(s.event().is_set());
        assert_eq!(s.sleepers.load(Ordering::Relaxed), 0);
    });
}

// ---------------------------------------------------------------------------------------
// RawSemaphore

struct SemaphoreModel {
    sequence: AtomicU32,
    sleepers: AtomicU32,
    tokens: [AtomicU32; 1],
    data: UnsafeCell<u32>,
}

// SAFETY: the cell is reached only through `read`/`write`, whose accesses loom checks for
// races; that check is what the models are for.
unsafe impl Sync for SemaphoreModel {}

impl SemaphoreModel {
    fn new(token: u32) -> Arc<Self> {
        Arc::new(Self {
            sequence: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            tokens: [AtomicU32::new(token)],
            data: UnsafeCell::new(0),
        })
    }

    fn semaphore(&self) -> RawSemaphore<'_> {
        RawSemaphore {
            sequence: &self.sequence,
            sleepers: Sleepers {
                count: &self.sleepers,
                registry: &[],
            },
            tokens: &self.tokens,
        }
    }

    /// Acquires as `slot`, bumps the data under the permit, releases; the data seen.
    fn acquire_bump_release(&self, slot: u32) -> u32 {
        let me = Mock::slot(slot);
        assert!(self.semaphore().acquire(me.0, &me, None));
        assert_eq!(self.semaphore().held_by(me.0), 1);
        let seen = bump_cell(&self.data); // one permit: one holder at a time
        self.semaphore()
            .release(me.0, &me)
            .expect("we hold a permit");
        seen
    }

    fn data(&self) -> u32 {
        read(&self.data)
    }
}

/// One permit, two acquirers: never both holding (the cell would race), the release hands
/// the permit and the holder's writes to the other, and the permit ends free.
#[test]
fn semaphore_one_permit_two_acquirers_never_both_hold() {
    model_both_orders(|swap| {
        shmarena::engine::futex::block_waits();
        let s = SemaphoreModel::new(FREE);
        let (sa, sb) = (Arc::clone(&s), Arc::clone(&s));
        let (a, b) = pair(
            swap,
            move || sa.acquire_bump_release(1),
            move || sb.acquire_bump_release(2),
        );
        let mut seen = [a, b];
        seen.sort_unstable();
        assert_eq!(seen, [0, 1]);
        assert_eq!(s.data(), 2);
        assert_eq!(s.semaphore().available(), 1);
        assert_eq!(s.sleepers.load(Ordering::Relaxed), 0);
        assert_eq!(
            s.sequence.load(Ordering::Relaxed),
            2,
            "one announce per release"
        );
    });
}

/// The only permit is held by a dead owner; two threads run `reclaim_dead` at once (the
/// first also takes the freed permit with `try_acquire`): the permit comes back exactly
/// once, and a reclaim never frees a live holder's token.
#[test]
fn semaphore_dead_holders_permit_is_reclaimed_exactly_once() {
    model_both_orders(|swap| {
        let s = SemaphoreModel::new(dead(5).bits());
        let (a, b) = (Arc::clone(&s), Arc::clone(&s));
        let reclaim_and_take = move || {
            let me = Mock::slot(1);
            let reclaimed = a.semaphore().reclaim_dead(&me);
            (reclaimed, a.semaphore().try_acquire(me.0))
        };
        let reclaim = move || b.semaphore().reclaim_dead(&Mock::slot(2));
        let ((reclaimed_a, took), reclaimed_b) = pair(swap, reclaim_and_take, reclaim);
        assert_eq!(reclaimed_a + reclaimed_b, 1, "reclaimed exactly once");
        let token = s.tokens[0].load(Ordering::Relaxed);
        if took {
            assert_eq!(token, live(1).bits(), "the taken permit was not reclaimed");
        } else {
            assert_eq!(token, FREE);
        }
    });
}

/// Two acquirers wait on a semaphore whose only permit a dead owner holds: a waiter
/// reclaims it, they hold it one at a time, and it ends free.
#[test]
fn semaphore_waiters_reclaim_a_dead_holders_permit() {
    model_both_orders(|swap| {
        let s = SemaphoreModel::new(dead(5).bits());
        let (sa, sb) = (Arc::clone(&s), Arc::clone(&s));
        let (a, b) = pair(
            swap,
            move || sa.acquire_bump_release(1),
            move || sb.acquire_bump_release(2),
        );
        let mut seen = [a, b];
        seen.sort_unstable();
        assert_eq!(seen, [0, 1]);
        assert_eq!(s.tokens[0].load(Ordering::Relaxed), FREE);
        assert_eq!(s.sleepers.load(Ordering::Relaxed), 0);
    });
}

// ---------------------------------------------------------------------------------------
// RawBarrier

const BROKEN: u32 = 1 << 31;
const ARRIVED_SHIFT: u32 = 16;
const RESET_MARK: u32 = u32::MAX;

fn mark(owner: OwnerId, generation: u32) -> u64 {
    (u64::from(owner.bits()) << 32) | u64::from(generation + 1)
}

fn reset_mark(owner: OwnerId) -> u64 {
    (u64::from(owner.bits()) << 32) | u64::from(RESET_MARK)
}

struct BarrierModel {
    state: AtomicU32,
    parties: u32,
    marks: Vec<AtomicU64>,
}

impl BarrierModel {
    /// `marks` preset arrival marks, one per participant slot.
    fn new(state: u32, parties: u32, marks: &[u64]) -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU32::new(state),
            parties,
            marks: marks.iter().map(|&m| AtomicU64::new(m)).collect(),
        })
    }

    fn barrier(&self) -> RawBarrier<'_> {
        RawBarrier {
            state: &self.state,
            parties: self.parties,
            marks: &self.marks,
        }
    }
}

/// A closure that waits on the barrier as `slot`.
fn wait_as(b: &Arc<BarrierModel>, slot: u32) -> impl FnOnce() -> Result<u32, Error> {
    let b = Arc::clone(b);
    move || {
        let me = Mock::slot(slot);
        b.barrier().wait(me.0, &me, None)
    }
}

fn is_broken(result: &Result<u32, Error>) -> bool {
    matches!(result, Err(Error::BrokenBarrier(_)))
}

/// Two parties: both pass, with indexes {0, 1}; the generation advances by one with no
/// arrivals left, and every mark is cleared.
#[test]
fn barrier_two_parties_get_distinct_indexes_and_the_generation_advances() {
    model_both_orders(|swap| {
        shmarena::engine::futex::block_waits();
        let b = BarrierModel::new(0, 2, &[0, 0]);
        let (x, y) = pair(swap, wait_as(&b, 0), wait_as(&b, 1));
        let mut indexes = [x.unwrap(), y.unwrap()];
        indexes.sort_unstable();
        assert_eq!(indexes, [0, 1]);
        assert_eq!(
            b.state.load(Ordering::Relaxed),
            1,
            "generation 1, none arrived"
        );
        for m in &b.marks {
            assert_eq!(m.load(Ordering::Relaxed), 0, "marks cleared");
        }
    });
}

/// A closure that waits as `slot` with an action that counts its runs in `ran`: what each
/// party saw of `ran` when its wait returned.
fn wait_with_action_as(
    b: &Arc<BarrierModel>,
    slot: u32,
    ran: &Arc<AtomicU32>,
) -> impl FnOnce() -> (Result<u32, Error>, u32) {
    let (b, ran) = (Arc::clone(b), Arc::clone(ran));
    move || {
        let me = Mock::slot(slot);
        let mut action = || {
            // Relaxed: the trip's Release publishes it to the released parties.
            ran.fetch_add(1, Ordering::Relaxed);
            Ok(())
        };
        let result =
            b.barrier()
                .wait_with_action(me.0, &me, None, &mut || false, Some(&mut action));
        // Relaxed: ordered by the Acquire load that saw the trip.
        (result, ran.load(Ordering::Relaxed))
    }
}

/// With an action, the last party runs it exactly once before either party leaves:
/// both see it done when their wait returns.
#[test]
fn barrier_action_runs_once_before_any_party_leaves() {
    model_both_orders(|swap| {
        shmarena::engine::futex::block_waits();
        let b = BarrierModel::new(0, 2, &[0, 0]);
        let ran = Arc::new(AtomicU32::new(0));
        let ((x, seen_x), (y, seen_y)) = pair(
            swap,
            wait_with_action_as(&b, 0, &ran),
            wait_with_action_as(&b, 1, &ran),
        );
        let mut indexes = [x.unwrap(), y.unwrap()];
        indexes.sort_unstable();
        assert_eq!(indexes, [0, 1]);
        assert_eq!(
            (seen_x, seen_y),
            (1, 1),
            "a party left before the action ran"
        );
        assert_eq!(
            b.state.load(Ordering::Relaxed),
            1,
            "generation 1, none arrived"
        );
    });
}

/// An action that fails breaks the barrier: its error goes to the last party, the other
/// gets BrokenBarrier.
#[test]
fn barrier_failing_action_breaks_it() {
    model_both_orders(|swap| {
        shmarena::engine::futex::block_waits();
        let b = BarrierModel::new(0, 2, &[0, 0]);
        let wait = |slot: u32| {
            let b = Arc::clone(&b);
            move || {
                let me = Mock::slot(slot);
                let mut action = || Err(Error::InvalidArgument("the action failed".into()));
                b.barrier()
                    .wait_with_action(me.0, &me, None, &mut || false, Some(&mut action))
            }
        };
        let (x, y) = pair(swap, wait(0), wait(1));
        let failed = [&x, &y]
            .iter()
            .filter(|r| matches!(r, Err(Error::InvalidArgument(_))))
            .count();
        assert_eq!(failed, 1, "{x:?} {y:?}");
        assert!(is_broken(&x) || is_broken(&y), "{x:?} {y:?}");
        assert_ne!(b.state.load(Ordering::Relaxed) & BROKEN, 0);
    });
}

/// Two parties, two rounds each: the tripper's clearing of round 0's marks races the
/// released party's arrival mark for round 1 (and vice versa). Every round trips with
/// indexes {0, 1}; the generation ends at 2 and no mark survives.
#[test]
fn barrier_two_rounds_clearing_races_the_next_arrival() {
    model_both_orders(|swap| {
        shmarena::engine::futex::block_waits();
        let b = BarrierModel::new(0, 2, &[0, 0]);
        let twice = |slot: u32| {
            let round = wait_as(&b, slot);
            let again = wait_as(&b, slot);
            move || [round().unwrap(), again().unwrap()]
        };
        let (x, y) = pair(swap, twice(0), twice(1));
        for round in 0..2 {
            let mut indexes = [x[round], y[round]];
            indexes.sort_unstable();
            assert_eq!(indexes, [0, 1], "round {round}");
        }
        assert_eq!(b.state.load(Ordering::Relaxed), 2);
        for m in &b.marks {
            assert_eq!(m.load(Ordering::Relaxed), 0, "marks cleared");
        }
    });
}

/// Three parties; a dead one arrived in generation 0 (its mark, arrived = 1). Two live
/// parties arrive: either the second trips the barrier before the first notices the dead
/// arrival (both pass, indexes {1, 2}), or the barrier breaks for both. Never one of each.
#[test]
fn barrier_with_a_dead_party_breaks_for_the_live_waiters() {
    model_both_orders(|swap| {
        let b = BarrierModel::new(1 << ARRIVED_SHIFT, 3, &[0, 0, mark(dead(2), 0)]);
        let (x, y) = pair(swap, wait_as(&b, 0), wait_as(&b, 1));
        match (x, y) {
            (Ok(x), Ok(y)) => {
                let mut indexes = [x, y];
                indexes.sort_unstable();
                assert_eq!(indexes, [1, 2]);
                assert_eq!(b.state.load(Ordering::Relaxed), 1);
            }
            (x, y) if is_broken(&x) && is_broken(&y) => {
                assert_ne!(b.state.load(Ordering::Relaxed) & BROKEN, 0);
            }
            other => panic!("one party passed and one failed: {other:?}"),
        }
    });
}

/// Three parties, a dead one arrived in generation 0, one live party waits: it notices the
/// dead arrival and breaks the barrier (a second thread only reads the state).
#[test]
fn barrier_lone_waiter_breaks_on_a_dead_arrival() {
    model(|| {
        let b = BarrierModel::new(1 << ARRIVED_SHIFT, 3, &[0, mark(dead(1), 0)]);
        let other = Arc::clone(&b);
        let observer = thread::spawn(move || other.barrier().is_broken());
        let result = wait_as(&b, 0)();
        let _ = observer.join().unwrap();
        assert!(is_broken(&result), "{result:?}");
        assert!(b.barrier().is_broken());
    });
}

/// `reset` vs a waiting party (two parties, one waiter): the waiter fails, whether it
/// arrived before the reset (told by its reset mark) or after (alone in generation 1,
/// which a dead party's mark breaks, so the model ends). It never passes: nobody tripped.
#[test]
fn barrier_reset_vs_wait_fails_the_waiter() {
    model_both_orders(|swap| {
        shmarena::engine::futex::block_waits();
        // Slot 2: a dead party's arrival mark for generation 1 (not counted in arrived).
        let b = BarrierModel::new(0, 2, &[0, 0, mark(dead(2), 1)]);
        let r = Arc::clone(&b);
        let (w, ()) = pair(swap, wait_as(&b, 0), move || r.barrier().reset());
        assert!(is_broken(&w), "a reset waiter passed: {w:?}");
    });
}

/// `reset` vs the arrival that trips the barrier. Two parties; a live party in slot 1
/// (not a thread) arrived in generation 0 and waits; thread W (slot 0) arrives and trips,
/// while thread R resets. The parked party's fate is read from its mark afterwards (a reset
/// mark fails it; anything else lets it pass). Linearizable outcomes: trip then reset
/// (both pass) or reset then W alone in generation 1 (both fail; a dead party's mark for
/// generation 1 breaks it so the model ends). Never one of each.
#[test]
fn barrier_reset_vs_trip_is_linearizable() {
    model_both_orders(|swap| {
        shmarena::engine::futex::block_waits();
        let parked = live(1);
        let b = BarrierModel::new(
            1 << ARRIVED_SHIFT,
            2,
            &[0, mark(parked, 0), mark(dead(2), 1)],
        );
        let r = Arc::clone(&b);
        let (w, ()) = pair(swap, wait_as(&b, 0), move || r.barrier().reset());
        let parked_passes = b.marks[1].load(Ordering::Relaxed) != reset_mark(parked);
        match w {
            Ok(index) => {
                assert_eq!(index, 1);
                assert!(
                    parked_passes,
                    "the trip released the parked party, the reset failed it"
                );
            }
            Err(ref e) => {
                assert!(is_broken(&w), "{e:?}");
                assert!(!parked_passes, "reset first, yet the parked party passes");
            }
        }
    });
}

/// `reset` vs two arriving parties (three threads): the outcome is one of a sequential
/// history's (trip then reset: both pass with indexes {0, 1}; a reset before or between
/// the arrivals: both fail, the late one alone in generation 1, which a dead party's mark
/// breaks so that the model ends). Never one passing and one failing.
#[test]
fn barrier_reset_vs_two_arrivals_never_splits_the_parties() {
    model(|| {
        shmarena::engine::futex::block_waits();
        let b = BarrierModel::new(0, 2, &[0, 0, mark(dead(2), 1)]);
        let x = thread::spawn(wait_as(&b, 0));
        let y = thread::spawn(wait_as(&b, 1));
        b.barrier().reset();
        match (x.join().unwrap(), y.join().unwrap()) {
            (Ok(x), Ok(y)) => {
                let mut indexes = [x, y];
                indexes.sort_unstable();
                assert_eq!(indexes, [0, 1]);
            }
            (x, y) if is_broken(&x) && is_broken(&y) => {}
            other => panic!("one party passed and one failed: {other:?}"),
        }
    });
}

// ---------------------------------------------------------------------------------------
// notify_all beside a latecomer.

fn new_cv() -> Arc<CondvarModel> {
    Arc::new(CondvarModel {
        lock: MutexWords::new(0),
        sequence: AtomicU32::new(0),
        waiting: AtomicU64::new(0),
        broadcast: AtomicU32::new(0),
        ready: UnsafeCell::new(false),
    })
}

/// Waiter A is already asleep (preset: one sleeper, epoch 0). The notifier calls
/// notify_all without the mutex while a latecomer enters wait and gives up once the
/// notifier is done: A, still the one sleeper, must still have its wake-up (a pending
/// notification or a new epoch), whatever the latecomer did.
#[test]
fn condvar_notify_all_beside_a_latecomer_reaches_the_sleeper() {
    model(|| {
        let s = new_cv();
        s.waiting.store(1 << 32, Ordering::SeqCst); // A sleeps, seen = 0
        let done = Arc::new(AtomicU32::new(0));
        let (late_cv, flag) = (Arc::clone(&s), Arc::clone(&done));
        let late = thread::spawn(move || {
            let me = Mock::slot(3);
            let mutex = late_cv.lock.raw();
            mutex.lock(me.0, &me, None).unwrap();
            let (_, waited) =
                late_cv
                    .condvar()
                    .wait_interruptible(mutex, me.0, &me, None, &mut || {
                        flag.load(Ordering::SeqCst) == 1
                    });
            mutex.unlock();
            waited
        });
        s.condvar().notify_all();
        done.store(1, Ordering::SeqCst);
        late.join().unwrap();
        let word = s.waiting.load(Ordering::SeqCst);
        assert_eq!(word >> 32, 1, "A is still the one sleeper");
        assert!(
            word & 0xffff_ffff >= 1 || s.broadcast.load(Ordering::SeqCst) != 0,
            "A's notify_all wake-up was taken by the latecomer: waiting = {word:#x}"
        );
    });
}

/// The same with the notify made under the mutex.
#[test]
fn condvar_notify_all_under_the_mutex_reaches_the_sleeper() {
    model(|| {
        let s = new_cv();
        s.waiting.store(1 << 32, Ordering::SeqCst); // A sleeps, seen = 0
        let done = Arc::new(AtomicU32::new(0));
        let (late_cv, flag) = (Arc::clone(&s), Arc::clone(&done));
        let late = thread::spawn(move || {
            let me = Mock::slot(3);
            let mutex = late_cv.lock.raw();
            mutex.lock(me.0, &me, None).unwrap();
            let (_, waited) =
                late_cv
                    .condvar()
                    .wait_interruptible(mutex, me.0, &me, None, &mut || {
                        flag.load(Ordering::SeqCst) == 1
                    });
            mutex.unlock();
            waited
        });
        let notifier = Mock::slot(2);
        s.lock.raw().lock(notifier.0, &notifier, None).unwrap();
        s.condvar().notify_all();
        s.lock.raw().unlock();
        done.store(1, Ordering::SeqCst);
        late.join().unwrap();
        let word = s.waiting.load(Ordering::SeqCst);
        assert_eq!(word >> 32, 1, "A is still the one sleeper");
        assert!(
            word & 0xffff_ffff >= 1 || s.broadcast.load(Ordering::SeqCst) != 0,
            "A's notify_all wake-up was taken by the latecomer: waiting = {word:#x}"
        );
    });
}
