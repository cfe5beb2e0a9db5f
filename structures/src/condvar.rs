//! `Condvar`: a cross-process condition variable for [`Mutex`](crate::Mutex).
//!
//! ```text
//! body (64 bytes):
//!   0  sequence (u32, the futex word): bumped by every notify that finds a waiter
//!   4  broadcast (u32): bumped by every notify_all
//!   8  waiting (u64): sleepers << 32 | pending
//!        sleepers: waiters inside wait; pending: notifications not yet claimed
//!        (never more than the sleepers)
//! ```
//!
//! A notify adds a pending notification and bumps the sequence; a waiter returns
//! notified only by *claiming* one (a compare-exchange on `waiting`), and only once the
//! sequence moved since it last looked: so `notify_one` wakes one waiter (not every waiter
//! that wakes up to look around, as the Python binding's do every 50 ms for Ctrl-C), and
//! a waiter that arrived after a notification cannot take it from the waiters it was
//! meant for. A waiter that finds the sequence moved but nothing left to claim (others
//! claimed it) takes the new sequence as its own and sleeps on. `notify_all` bumps the
//! broadcast epoch instead: every waiter that read the epoch before it (at entry, under
//! the mutex) returns notified once it sees the sequence move, with nothing to claim, so
//! a latecomer entering beside a `notify_all` made without the mutex cannot take an
//! earlier waiter's wake-up.
//!
//! A waiter whose time runs out (or whose caller gives up) claims a pending notification
//! if every sleeper has one waiting (reporting "notified", as `pthread_cond_timedwait`
//! may), else leaves by decrementing the sleepers: pending never outnumbers sleepers, so
//! a later notify always finds room.
//!
//! No wake-up is lost: the waiter reads the sequence, then claims, then sleeps on the
//! futex only while the sequence is the one it read; the notifier adds the pending
//! notification, then bumps the sequence, then wakes. Both sides' steps are SeqCst, so a
//! waiter that missed the claim read the sequence before the bump, and its sleep returns
//! at once or is woken.
//!
//! A waiter that dies inside `wait` stays counted: later notifies may leave notifications
//! pending for it, which the next waiters then claim (spurious wake-ups, never a lost
//! one). [`Condvar::wait_while`] loops on a predicate. A waiter whose mutex owner dies gets
//! the mutex back through the mutex's own recovery and is told with
//! [`OwnerDied`](crate::OwnerDied). A waiter releases the mutex with
//! [`RawMutex::unlock_if_held`]: one whose lock was taken over (a holder wrongly deemed
//! dead) leaves the new holder's lock alone, and still returns holding the mutex.

use std::time::Instant;

use shmarena_engine::futex;
use shmarena_engine::sync::{AtomicU32, AtomicU64, Ordering};
use shmarena_engine::{Liveness, OwnerId};

use crate::mutex::{Acquired, RawMutex};

/// How long [`RawCondvar::wait_interruptible`] sleeps between questions to its caller.
pub const INTERRUPT_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// One sleeper in the `waiting` word.
const SLEEPER: u64 = 1 << 32;
/// The pending notifications in the `waiting` word.
const PENDING: u64 = SLEEPER - 1;

/// `waiting` after a sleeper claimed a notification (`waiting` has one pending). A word
/// with pending notifications and no sleepers (a corrupted one) loses the notification
/// only.
fn claimed(waiting: u64) -> u64 {
    if waiting >= SLEEPER {
        waiting - SLEEPER - 1
    } else {
        waiting - 1
    }
}

/// How an interruptible wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// A notification came.
    Notified,
    /// The deadline passed first.
    TimedOut,
    /// The caller's `interrupted` said to stop.
    Interrupted,
}

/// The condition-variable algorithm over its words (shared by the handle and loom
/// models).
#[derive(Clone, Copy, Debug)]
pub struct RawCondvar<'a> {
    /// Notification sequence (futex word).
    pub sequence: &'a AtomicU32,
    /// Sleepers and pending notifications (see the module docs).
    pub waiting: &'a AtomicU64,
    /// Broadcast epoch: bumped by every `notify_all` (see the module docs).
    pub broadcast: &'a AtomicU32,
}

impl RawCondvar<'_> {
    /// Atomically releases `mutex` (held by the caller as `me`) and waits for a
    /// notification or `deadline`; then locks `mutex` again as `me`. Returns how the relock
    /// went and whether the deadline passed. The release is
    /// [`RawMutex::unlock_if_held`]: if the lock was taken over from `me`, the new holder
    /// keeps it, and the wait still ends with `me` holding the lock.
    pub fn wait(
        &self,
        mutex: RawMutex<'_>,
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
    ) -> (Acquired, bool) {
        let (acquired, waited) =
            self.wait_interruptible(mutex, me, liveness, deadline, &mut || false);
        (acquired, waited == Waited::TimedOut)
    }

    /// Claims a pending notification if there is one; whether it did.
    fn claim(&self) -> bool {
        // SeqCst: see the module docs.
        let mut waiting = self.waiting.load(Ordering::SeqCst);
        while waiting & PENDING != 0 {
            // SeqCst: as above. A claim and its sleeper leave together.
            match self.waiting.compare_exchange_weak(
                waiting,
                claimed(waiting),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(actual) => waiting = actual,
            }
        }
        false
    }

    /// Leaves without a notification, unless every sleeper has one pending (then one
    /// is ours: claims it); whether it claimed.
    fn leave(&self) -> bool {
        // SeqCst: see the module docs.
        let mut waiting = self.waiting.load(Ordering::SeqCst);
        loop {
            let ours = waiting & PENDING != 0 && waiting & PENDING >= waiting >> 32;
            let next = if ours {
                claimed(waiting)
            } else {
                waiting.saturating_sub(SLEEPER)
            };
            // SeqCst: as above.
            match self.waiting.compare_exchange_weak(
                waiting,
                next,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return ours,
                Err(actual) => waiting = actual,
            }
        }
    }

    /// [`wait`](Self::wait) that sleeps until it claims a notification, the deadline
    /// passes, or `interrupted` (asked every [`INTERRUPT_CHECK`] of sleep) says to give
    /// up; then it locks `mutex` again. The mutex stays released for the whole wait, so
    /// no notification is missed between slices. For bindings whose users press Ctrl-C.
    pub fn wait_interruptible(
        &self,
        mutex: RawMutex<'_>,
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> (Acquired, Waited) {
        // Read under the mutex: notifications from here on are ours to claim. SeqCst:
        // see the module docs; we count as a sleeper before the mutex lets a notifier in.
        let mut seen = self.sequence.load(Ordering::SeqCst);
        let epoch = self.broadcast.load(Ordering::SeqCst);
        self.waiting.fetch_add(SLEEPER, Ordering::SeqCst);
        // Never frees a lock taken over from us (see `wait`).
        mutex.unlock_if_held(me);
        let waited = loop {
            // SeqCst: the sequence is read before we claim (module docs).
            let now = self.sequence.load(Ordering::SeqCst);
            if now != seen {
                if self.broadcast.load(Ordering::SeqCst) != epoch {
                    self.leave();
                    break Waited::Notified;
                }
                if self.claim() {
                    break Waited::Notified;
                }
                seen = now; // what came before `now` was claimed by others
            }
            let slice = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(INTERRUPT_CHECK),
                    _ => break self.give_up(Waited::TimedOut),
                },
                None => INTERRUPT_CHECK,
            };
            if interrupted() {
                break self.give_up(Waited::Interrupted);
            }
            futex::wait(self.sequence, seen, Some(slice));
        };
        let acquired = mutex.lock(me, liveness, None).unwrap_or(Acquired::Clean);
        (acquired, waited)
    }

    /// Leaves for `why`, or as notified if a notification was ours after all.
    fn give_up(&self, why: Waited) -> Waited {
        if self.leave() {
            Waited::Notified
        } else {
            why
        }
    }

    /// Makes one notification pending (unless every sleeper has one already) and wakes a
    /// waiter; nothing when nobody waits.
    pub fn notify_one(&self) {
        // SeqCst: see the module docs.
        let mut waiting = self.waiting.load(Ordering::SeqCst);
        loop {
            let sleepers = waiting >> 32;
            if sleepers == 0 {
                return; // nobody to notify: the notification is lost, as it should be
            }
            let next = if waiting & PENDING < sleepers {
                waiting + 1
            } else {
                waiting // every sleeper has one; the new sequence lets them claim it
            };
            // SeqCst: the notification is pending before the sequence moves.
            match self.waiting.compare_exchange_weak(
                waiting,
                next,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break,
                Err(actual) => waiting = actual,
            }
        }
        // SeqCst: as above.
        self.sequence.fetch_add(1, Ordering::SeqCst);
        futex::wake(self.sequence, 1);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        // Every waiter that read the old epoch returns notified (module docs).
        if self.waiting.load(Ordering::SeqCst) >> 32 == 0 {
            return;
        }
        self.broadcast.fetch_add(1, Ordering::SeqCst);
        // SeqCst: as above.
        self.sequence.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(self.sequence);
    }
}

#[cfg(not(loom))]
pub use handle::{Condvar, WaitTimeoutResult};

#[cfg(not(loom))]
mod handle {
    use super::RawCondvar;
    use crate::mutex::{wrap, LockResult, MutexGuard};
    use bytemuck::Pod;
    use shmarena_engine::sync::{AtomicU32, AtomicU64};
    use shmarena_engine::{Object, ObjectKind, Region, Result, TypeDescriptor};
    use std::ptr::NonNull;
    use std::time::{Duration, Instant};

    /// A named condition variable; use it with any [`Mutex`](crate::Mutex).
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-condvar-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let ready = region.mutex::<u32>("ready", 0)?;
    /// let changed = region.condvar("ready-changed")?;
    /// // Producer (any process):
    /// *ready.lock().unwrap() = 1;
    /// changed.notify_all();
    /// // Consumer (any process): sleeps until the predicate holds.
    /// let guard = changed.wait_while(ready.lock().unwrap(), |r| *r == 0).unwrap();
    /// assert_eq!(*guard, 1);
    /// # drop(guard);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    #[derive(Clone)]
    pub struct Condvar {
        words: NonNull<AtomicU32>,
        waiting: NonNull<AtomicU64>,
        object: Object,
    }

    // SAFETY: the words are atomics in the shared mapping, which `object` keeps alive.
    unsafe impl Send for Condvar {}
    // SAFETY: as above.
    unsafe impl Sync for Condvar {}

    impl std::fmt::Debug for Condvar {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Condvar")
                .field("name", &self.object.info().name)
                .finish_non_exhaustive()
        }
    }

    /// Whether a timed wait ended by its timeout.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        /// The wait ended because the time was up.
        pub fn timed_out(&self) -> bool {
            self.0
        }
    }

    impl Condvar {
        /// The object's name.
        pub fn name(&self) -> &str {
            &self.object.info().name
        }

        /// The catalog descriptor.
        pub fn descriptor() -> TypeDescriptor {
            TypeDescriptor::new(ObjectKind::Condvar, 0, 0, 0)
        }

        /// Opens the condition variable `name`, creating it if absent.
        ///
        /// # Errors
        /// [`Error::TypeMismatch`](crate::Error::TypeMismatch); catalog and arena errors.
        pub fn get_or_create(region: &Region, name: &str) -> Result<Self> {
            let (object, _) =
                crate::sweep::get_or_create_object(region, name, &Self::descriptor(), 64, |_| {
                    Ok(())
                })?;
            Self::from_object(object)
        }

        /// Opens the existing condition variable `name`.
        ///
        /// # Errors
        /// [`Error::ObjectNotFound`](crate::Error::ObjectNotFound),
        /// [`Error::TypeMismatch`](crate::Error::TypeMismatch) if `name` is another kind,
        /// [`Error::Corrupt`](crate::Error::Corrupt).
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            Self::from_object(crate::sweep::open_object(
                region,
                name,
                &Self::descriptor(),
            )?)
        }

        fn from_object(object: Object) -> Result<Self> {
            let words = object.atomics::<std::sync::atomic::AtomicU32>(0, 2)?;
            let waiting = object.atomics::<std::sync::atomic::AtomicU64>(8, 1)?;
            Ok(Self {
                words,
                waiting,
                object,
            })
        }

        fn raw(&self) -> RawCondvar<'_> {
            // SAFETY: the words were checked inside the body (and aligned); the mapping
            // outlives `self`.
            unsafe {
                RawCondvar {
                    sequence: self.words.as_ref(),
                    waiting: self.waiting.as_ref(),
                    broadcast: self.words.add(1).as_ref(),
                }
            }
        }

        /// [`wait`](Self::wait) for a mutex this process took with
        /// [`Mutex::acquire`](crate::Mutex::acquire) (no guard): releases it, waits for a
        /// notification, for `timeout`, or until `interrupted` (asked every
        /// [`INTERRUPT_CHECK`](super::INTERRUPT_CHECK)) says to stop, and takes it again.
        /// Returns how the relock went and how the wait ended.
        ///
        /// # Errors
        /// [`Error::NotHeld`](crate::Error::NotHeld) if this process does not hold `mutex`.
        pub fn wait_held<T: Pod>(
            &self,
            mutex: &crate::Mutex<T>,
            timeout: Option<Duration>,
            interrupted: &mut dyn FnMut() -> bool,
        ) -> Result<(crate::mutex::Acquired, super::Waited)> {
            mutex.check_held()?;
            let region = mutex.region();
            let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
            Ok(self.raw().wait_interruptible(
                mutex.raw(),
                region.participant_id(),
                region,
                deadline,
                interrupted,
            ))
        }

        /// Releases the guard's mutex, waits for a notification (or a spurious wake-up),
        /// and locks it again. A lock that was taken over from the guard's holder is not
        /// released (the new holder keeps it); the wait still ends with the lock taken.
        ///
        /// # Panics
        /// In a child forked while the guard's lock was held (the child does not hold it;
        /// the same for every wait below).
        pub fn wait<'a, T: Pod>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
            let (guard, acquired, _) = self.wait_until(guard, None);
            wrap(guard, acquired)
        }

        /// As [`wait`](Self::wait), for at most `timeout`.
        pub fn wait_timeout<'a, T: Pod>(
            &self,
            guard: MutexGuard<'a, T>,
            timeout: Duration,
        ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
            let (guard, acquired, timed_out) =
                self.wait_until(guard, Some(Instant::now() + timeout));
            match wrap(guard, acquired) {
                Ok(guard) => Ok((guard, WaitTimeoutResult(timed_out))),
                Err(died) => Err(crate::mutex::owner_died((
                    died.into_inner(),
                    WaitTimeoutResult(timed_out),
                ))),
            }
        }

        /// Waits until `condition` is false, re-checking after every wake-up.
        pub fn wait_while<'a, T: Pod>(
            &self,
            mut guard: MutexGuard<'a, T>,
            mut condition: impl FnMut(&mut T) -> bool,
        ) -> LockResult<MutexGuard<'a, T>> {
            let mut died = false;
            while condition(&mut guard) {
                let (next, acquired, _) = self.wait_until(guard, None);
                died |= acquired == crate::mutex::Acquired::OwnerDied;
                guard = next;
            }
            wrap(
                guard,
                if died {
                    crate::mutex::Acquired::OwnerDied
                } else {
                    crate::mutex::Acquired::Clean
                },
            )
        }

        /// # Panics
        /// In a child forked while the guard's lock was held: the child does not hold it.
        fn wait_until<'a, T: Pod>(
            &self,
            guard: MutexGuard<'a, T>,
            deadline: Option<Instant>,
        ) -> (MutexGuard<'a, T>, crate::mutex::Acquired, bool) {
            let mutex = guard.mutex();
            let taken = guard.taken();
            taken.assert_this_process();
            // The wait unlocks (only if the lock is still ours) and relocks the mutex
            // itself: the guard must not unlock.
            std::mem::forget(guard);
            let (acquired, timed_out) =
                self.raw()
                    .wait(mutex.raw(), taken.owner(), mutex.region(), deadline);
            (mutex.relocked_guard(taken.owner()), acquired, timed_out)
        }

        /// Wakes one waiting process.
        pub fn notify_one(&self) {
            self.raw().notify_one();
        }

        /// Wakes every waiting process.
        pub fn notify_all(&self) {
            self.raw().notify_all();
        }
    }
}
