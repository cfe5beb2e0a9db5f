//! `Condvar`: a cross-process condition variable for [`Mutex`](crate::Mutex).
//!
//! ```text
//! body (64 bytes):
//!   0  sequence (u32, the futex word): bumped by every notify
//!   4  sleepers (u32): processes inside wait (a hint that lets notify skip the system
//!      call; a waiter that dies leaves it too high, which costs only wake-ups)
//! ```
//!
//! `wait` reads the sequence while it still holds the mutex, then unlocks and sleeps on
//! the futex *only while the sequence is unchanged*. A notify after the unlock bumps the
//! sequence first, so the sleep either sees the new value and returns at once or is
//! woken: no wake-up is lost. Both sides order "announce, then look" with SeqCst (the
//! waiter: sleepers++ then the kernel's read of the sequence; the notifier: sequence++
//! then its read of sleepers), so at least one of them sees the other.
//!
//! Wake-ups may be spurious, as everywhere; [`Condvar::wait_while`] loops on a predicate.
//! A waiter whose mutex owner dies gets the mutex back through the mutex's own recovery
//! and is told with [`OwnerDied`](crate::OwnerDied).

use std::time::Instant;

use shmarena_engine::futex;
use shmarena_engine::sync::{AtomicU32, Ordering};
use shmarena_engine::{Liveness, OwnerId};

use crate::mutex::{Acquired, RawMutex};

/// How long [`RawCondvar::wait_interruptible`] sleeps between questions to its caller.
pub const INTERRUPT_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// How an interruptible wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// A notification came (or the sequence moved for another waiter's).
    Notified,
    /// The deadline passed first.
    TimedOut,
    /// The caller's `interrupted` said to stop.
    Interrupted,
}

/// The condition-variable algorithm over its two words (shared by the handle and loom
/// models).
#[derive(Clone, Copy, Debug)]
pub struct RawCondvar<'a> {
    /// Notification sequence (futex word).
    pub sequence: &'a AtomicU32,
    /// Processes currently waiting.
    pub sleepers: &'a AtomicU32,
}

impl RawCondvar<'_> {
    /// Atomically releases `mutex` (held by the caller) and waits for a notification or
    /// `deadline`; then locks `mutex` again. Returns how the relock went and whether the
    /// deadline passed.
    pub fn wait(
        &self,
        mutex: RawMutex<'_>,
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
    ) -> (Acquired, bool) {
        // Relaxed: read under the mutex; the futex compares it again in the kernel.
        let sequence = self.sequence.load(Ordering::Relaxed);
        // SeqCst: "I sleep" must be ordered before the kernel's read of the sequence, and
        // a notifier's "sequence changed" before its read of this count.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        mutex.unlock();
        let mut timed_out = false;
        match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) => futex::wait(self.sequence, sequence, Some(left)),
                None => timed_out = true,
            },
            None => futex::wait(self.sequence, sequence, None),
        }
        // Relaxed: only a hint for notifiers.
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
        if let Some(deadline) = deadline {
            timed_out |= Instant::now() >= deadline;
        }
        let acquired = mutex.lock(me, liveness, None).unwrap_or(Acquired::Clean);
        (acquired, timed_out)
    }

    /// [`wait`](Self::wait) that sleeps until the sequence moves (a notification), the
    /// deadline passes, or `interrupted` (asked every [`INTERRUPT_CHECK`] of sleep) says
    /// to give up; then it locks `mutex` again. The mutex stays released for the whole
    /// wait, so no notification is missed between slices. For bindings whose users press
    /// Ctrl-C.
    pub fn wait_interruptible(
        &self,
        mutex: RawMutex<'_>,
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> (Acquired, Waited) {
        // Relaxed: read under the mutex; the futex compares it again in the kernel.
        let sequence = self.sequence.load(Ordering::Relaxed);
        // SeqCst: as in `wait`.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        mutex.unlock();
        let waited = loop {
            // SeqCst: pairs with the notifier's SeqCst bump of the sequence.
            if self.sequence.load(Ordering::SeqCst) != sequence {
                break Waited::Notified;
            }
            let slice = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(INTERRUPT_CHECK),
                    _ => break Waited::TimedOut,
                },
                None => INTERRUPT_CHECK,
            };
            futex::wait(self.sequence, sequence, Some(slice));
            // SeqCst: as above.
            if self.sequence.load(Ordering::SeqCst) != sequence {
                break Waited::Notified;
            }
            if interrupted() {
                break Waited::Interrupted;
            }
        };
        // Relaxed: only a hint for notifiers.
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
        let acquired = mutex.lock(me, liveness, None).unwrap_or(Acquired::Clean);
        (acquired, waited)
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        // SeqCst: see the module docs (pairs with the waiter's sleepers increment).
        self.sequence.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            futex::wake(self.sequence, 1);
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        // SeqCst: as in notify_one.
        self.sequence.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            futex::wake_all(self.sequence);
        }
    }
}

#[cfg(not(loom))]
pub use handle::{Condvar, WaitTimeoutResult};

#[cfg(not(loom))]
mod handle {
    use super::RawCondvar;
    use crate::mutex::{wrap, LockResult, MutexGuard};
    use bytemuck::Pod;
    use shmarena_engine::sync::AtomicU32;
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
                region.get_or_create_object(name, &Self::descriptor(), 64, |_| Ok(()))?;
            let words = object.atomics::<std::sync::atomic::AtomicU32>(0, 2)?;
            Ok(Self { words, object })
        }

        fn raw(&self) -> RawCondvar<'_> {
            // SAFETY: two words were checked inside the body; the mapping outlives `self`.
            unsafe {
                RawCondvar {
                    sequence: self.words.as_ref(),
                    sleepers: &*self.words.as_ptr().add(1),
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
        /// and locks it again.
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

        fn wait_until<'a, T: Pod>(
            &self,
            guard: MutexGuard<'a, T>,
            deadline: Option<Instant>,
        ) -> (MutexGuard<'a, T>, crate::mutex::Acquired, bool) {
            let mutex = guard.mutex();
            // The wait unlocks and relocks the mutex itself: the guard must not unlock.
            std::mem::forget(guard);
            let region = mutex.region();
            let (acquired, timed_out) =
                self.raw()
                    .wait(mutex.raw(), region.participant_id(), region, deadline);
            (mutex.relocked_guard(), acquired, timed_out)
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
