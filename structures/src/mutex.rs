//! `Mutex<T>` and `Lock`: a cross-process mutex that survives its owner's death.
//!
//! ```text
//! body (64-byte header, then the data):
//!   0   lock word (u32, the futex word): | WAITERS: 1 bit | owner id: 31 bits |  0 = unlocked
//!   4   consistency (u32): 0 = consistent, 1 = a previous owner died holding the lock and
//!                          nobody has marked the data consistent since
//!   8   RLock only: holder thread id (u32), 12: recursion count (u32)
//!   64  T (any `Pod` type, alignment at most 64)
//! ```
//!
//! States of the lock word and their transitions:
//!
//! ```text
//! 0 --CAS(0 -> me)--> me --CAS(me -> 0)--> 0                 uncontended: no system call
//! me --CAS(set WAITERS)--> me|WAITERS   a waiter before it sleeps on the futex
//! me|WAITERS --CAS(me|WAITERS -> 0) + futex wake--> 0
//! 0 --CAS(0 -> me|WAITERS)--> ...       a woken waiter (others may still sleep)
//! dead|w --CAS(dead|w -> me|w)--> me|w  owner found dead: the lock is taken over
//! ```
//!
//! Linearization points: the successful CAS (acquire) and the successful CAS to 0
//! (release). A release is a compare-and-swap *from the releaser's owner id*
//! ([`RawMutex::unlock_if_held`]): it frees the lock only while the word still names that
//! owner, never a lock that has changed hands. The one exception is
//! [`Mutex::release_any`] ([`RawMutex::unlock_any`]), the release of an ownerless lock
//! (Python's `Lock`): a swap to 0 whoever holds it, waking a sleeper as any release does.
//!
//! A contended locker spins briefly (about a hundred pauses, and not at all once others
//! sleep: spinning then only takes CPU from a holder that shares it), then sleeps on the
//! futex. A process that dies holding the lock leaves its owner id in the word. Waiters
//! sleep at most [`CHECK_INTERVAL`] at a time; once they have waited that long they ask
//! the participant table whether the owner still lives (a kernel lock, immune to pid
//! reuse; two system calls, which is why a waiter does not ask on first sight).
//! A dead owner's lock is taken over with one CAS, the consistency word is set, and the new
//! owner is told ([`OwnerDied`]) so it can repair the data and call
//! [`MutexGuard::mark_consistent`]. Until someone does, every later locker is told too:
//! the mutex is never poisoned forever, never deadlocked by a death.
//!
//! # Deaths and forks
//!
//! A guard never releases a lock its process no longer holds. Every guard
//! ([`MutexGuard`], [`RLockGuard`](crate::RLockGuard), and the guards a
//! [`Condvar`](crate::Condvar) wait hands back) records the owner id it acquired under and
//! the fork generation of the process that acquired
//! ([`shmarena_engine::fork::generation`]); its drop releases only if
//! - the dropping process is the one that acquired: a child forked while its parent held
//!   the lock inherits a copy of the guard, but not the lock (the child has its own owner
//!   id, see [`shmarena_engine::fork`]), so its drop does nothing; and
//! - the lock word still names that owner (the release is one CAS from it): a holder whose
//!   lock was taken over by another process (a holder wrongly deemed dead) leaves the new
//!   holder's lock alone.
//!
//! The first check is one load of a process-global counter and a comparison; the second is
//! the release CAS itself, so the uncontended release stays one atomic operation.
//!
//! A child of a holder must not use the guard it inherited: reading or writing the data
//! through it, marking it consistent or waiting on a condition variable with it panics in
//! the child (the parent may be writing the data meanwhile). To take the lock, the child
//! locks the mutex itself, as its own owner. A holder whose lock was taken over is not
//! told until its release finds the word changed; what it writes through the guard in the
//! meantime races the new holder, which is why a lock is taken over only from an owner the
//! participant table reports dead. [`Mutex::release`] (the unguarded release of bindings
//! such as Python's) compares with the calling process's current owner id in the same way.
//!
//! Threads of one process share the process's participant id: the mutex excludes them
//! from each other as well (a second thread waits), but a thread that locks twice
//! deadlocks itself, as with `std::sync::Mutex`; use [`RLock`](crate::RLock) for reentrance.

use std::time::{Duration, Instant};

use shmarena_engine::futex;
use shmarena_engine::sync::{spin_hint, AtomicU32, Ordering};
use shmarena_engine::{Liveness, OwnerId};

/// The top bit of the lock word: some process may be asleep waiting for the lock.
const WAITERS: u32 = 1 << 31;

/// How long a waiter sleeps before it checks whether the owner it waits for is alive.
/// A dead owner's lock is taken over within about this long after the death.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// How long the next sleep may last: until `deadline`, at most [`CHECK_INTERVAL`] (so
/// the sleeper looks at dead owners that often). `None` once the deadline has passed.
pub(crate) fn next_sleep(deadline: Option<Instant>) -> Option<Duration> {
    match deadline {
        None => Some(CHECK_INTERVAL),
        Some(deadline) => deadline
            .checked_duration_since(Instant::now())
            .map(|left| left.min(CHECK_INTERVAL)),
    }
}

/// Pauses a locker spins for before it sleeps: a few microseconds, enough for a holder on
/// another CPU to leave a short critical section; longer spins take the CPU from a holder
/// that shares it (more lockers than CPUs).
const SPINS: u32 = 100;

/// How an acquisition went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// The data is consistent.
    Clean,
    /// A previous owner died holding the lock, and nobody has marked the data consistent.
    OwnerDied,
}

/// The lock algorithm over its two shared words; [`Mutex`], [`RLock`](crate::RLock) and
/// [`Condvar`](crate::Condvar) use it, and loom models check it on heap atomics.
#[derive(Clone, Copy, Debug)]
pub struct RawMutex<'a> {
    /// The lock word (see the module docs).
    pub word: &'a AtomicU32,
    /// The consistency word.
    pub consistency: &'a AtomicU32,
}

impl RawMutex<'_> {
    fn acquired(&self) -> Acquired {
        // Relaxed: we hold the lock, whose Acquire ordered the last owner's writes.
        if self.consistency.load(Ordering::Relaxed) == 0 {
            Acquired::Clean
        } else {
            Acquired::OwnerDied
        }
    }

    /// Takes the lock if it is free or its owner is dead; never sleeps.
    pub fn try_lock(&self, me: OwnerId, liveness: &impl Liveness) -> Option<Acquired> {
        // Acquire on success: the previous owner's writes to the data become visible.
        if self
            .word
            .compare_exchange(0, me.bits(), Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Some(self.acquired());
        }
        // Relaxed: a guess for the CAS below.
        let state = self.word.load(Ordering::Relaxed);
        self.take_over_if_dead(state, me, liveness)
    }

    /// If `state` names a dead owner (or no valid owner at all), takes the lock over.
    fn take_over_if_dead(
        &self,
        state: u32,
        me: OwnerId,
        liveness: &impl Liveness,
    ) -> Option<Acquired> {
        if state == 0 {
            return None;
        }
        let owner = OwnerId::from_bits(state & !WAITERS);
        if owner.is_some_and(|owner| liveness.is_alive(owner)) {
            return None;
        }
        // Acquire: as for a normal acquisition (the dead owner's writes, such as they are).
        let taken = me.bits() | (state & WAITERS);
        if self
            .word
            .compare_exchange(state, taken, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None; // someone else took it over, or it was released: retry normally
        }
        // Relaxed: we hold the lock; the next owner reads this under its own Acquire.
        self.consistency.store(1, Ordering::Relaxed);
        Some(Acquired::OwnerDied)
    }

    /// Takes the lock, waiting until `deadline` (forever if `None`). `None` on timeout.
    #[inline]
    pub fn lock(
        &self,
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
    ) -> Option<Acquired> {
        // Fast path: one CAS. Acquire on success, as in try_lock.
        if self
            .word
            .compare_exchange(0, me.bits(), Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Some(self.acquired());
        }
        self.lock_slow(me, liveness, deadline)
    }

    #[cold]
    fn lock_slow(
        &self,
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
    ) -> Option<Acquired> {
        for _ in 0..SPINS {
            // Relaxed: a guess for the CAS.
            let state = self.word.load(Ordering::Relaxed);
            if state == 0 {
                // Acquire on success: as in try_lock.
                if self
                    .word
                    .compare_exchange_weak(0, me.bits(), Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(self.acquired());
                }
            } else if state & WAITERS != 0 {
                break; // others sleep already: spinning would only take CPU from the holder
            }
            spin_hint();
        }
        // Once we have slept, other sleepers may exist: keep WAITERS set when we take it.
        let mut slept = false;
        // The owner's liveness costs system calls: ask only once a sleep of CHECK_INTERVAL
        // has passed without the lock coming free (under loom every time: a wait there is
        // only a yield). A dead owner's lock is taken over that much later.
        let mut last_check = Instant::now();
        loop {
            // Relaxed: a guess for the CASes below.
            let state = self.word.load(Ordering::Relaxed);
            if state == 0 {
                let mine = me.bits() | if slept { WAITERS } else { 0 };
                // Acquire on success: as in try_lock.
                if self
                    .word
                    .compare_exchange(0, mine, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(self.acquired());
                }
                continue; // taken meanwhile
            }
            if cfg!(loom) || last_check.elapsed() >= CHECK_INTERVAL {
                last_check = Instant::now();
                if let Some(acquired) = self.take_over_if_dead(state, me, liveness) {
                    return Some(acquired);
                }
            }
            let Some(timeout) = next_sleep(deadline) else {
                // Out of time (a try with no wait, say): a dead owner's lock is still ours
                // to take, as `try_lock`'s. (Before WAITERS: no sleeper to announce.)
                return self.take_over_if_dead(state, me, liveness);
            };
            if state & WAITERS == 0
                && self
                    .word
                    .compare_exchange(state, state | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue; // the word changed: look again
            }
            futex::wait(self.word, state | WAITERS, Some(timeout));
            slept = true;
        }
    }

    /// Releases the lock unconditionally, waking one sleeper if there may be any. For a
    /// caller that knows it holds the lock; guards and bindings use
    /// [`unlock_if_held`](Self::unlock_if_held), which never frees a lock that changed hands.
    #[inline]
    pub fn unlock(&self) {
        self.unlock_any();
    }

    /// Releases the lock whoever holds it (this process, another one, alive or dead),
    /// waking one sleeper if there may be any, as [`unlock`](Self::unlock) does; whether it
    /// was locked (a free lock stays free). For locks without an owner on release, such as
    /// Python's `multiprocessing.Lock`, which any thread of any process may release.
    #[inline]
    pub fn unlock_any(&self) -> bool {
        // Release: publishes the caller's writes to the next owner's Acquire (the holder's
        // own writes reach it only if the caller synchronized with the holder, as with any
        // lock released by another thread). On a free word the swap writes 0 over 0.
        let state = self.word.swap(0, Ordering::Release);
        if state & WAITERS != 0 {
            futex::wake(self.word, 1);
        }
        state != 0
    }

    /// Releases the lock if the word names `me`, waking one sleeper if there may be any;
    /// whether it did. One compare-exchange from `me` when nobody waits: a lock that
    /// changed hands (taken over from us, or released by another thread of ours and taken
    /// by someone else) is never freed.
    #[inline]
    pub fn unlock_if_held(&self, me: OwnerId) -> bool {
        // Release: publishes our writes to the data to the next owner's Acquire. Relaxed on
        // failure: we only look at who holds the lock now.
        match self
            .word
            .compare_exchange(me.bits(), 0, Ordering::Release, Ordering::Relaxed)
        {
            Ok(_) => true,
            Err(state) => self.unlock_if_held_slow(me, state),
        }
    }

    /// [`unlock_if_held`](Self::unlock_if_held) once the word was found to be `state`,
    /// not plain `me`: WAITERS set, or another owner, or free.
    #[cold]
    fn unlock_if_held_slow(&self, me: OwnerId, mut state: u32) -> bool {
        loop {
            if state & !WAITERS != me.bits() {
                return false; // free, or someone else's: not ours to release
            }
            // Release, and Relaxed on failure: as in unlock_if_held.
            match self
                .word
                .compare_exchange(state, 0, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if state & WAITERS != 0 {
                        futex::wake(self.word, 1);
                    }
                    return true;
                }
                Err(actual) => state = actual, // a waiter set WAITERS meanwhile: look again
            }
        }
    }

    /// Marks the data consistent after an owner death (call while holding the lock).
    pub fn mark_consistent(&self) {
        // Relaxed: we hold the lock; the unlock's Release publishes it.
        self.consistency.store(0, Ordering::Relaxed);
    }

    /// The owner currently recorded in the lock word, if any (for diagnostics).
    pub fn owner(&self) -> Option<OwnerId> {
        // Relaxed: a snapshot.
        OwnerId::from_bits(self.word.load(Ordering::Relaxed) & !WAITERS)
    }
}

/// The lock was acquired, but a previous owner died holding it: the data may be half
/// updated. Repair it, call [`MutexGuard::mark_consistent`], and carry on with
/// [`into_inner`](OwnerDied::into_inner). (Like `EOWNERDEAD` of a robust pthread mutex,
/// except that nothing is lost if you do not: the next locker is told again.)
#[derive(Debug)]
pub struct OwnerDied<G>(G);

impl<G> OwnerDied<G> {
    /// The guard: the lock is held.
    pub fn into_inner(self) -> G {
        self.0
    }

    /// The guard, by reference.
    pub fn get_ref(&self) -> &G {
        &self.0
    }
}

impl<G> std::fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a previous owner died holding the lock; the data may be inconsistent")
    }
}

impl<G: std::fmt::Debug> std::error::Error for OwnerDied<G> {}

/// `Ok(guard)`, or the guard wrapped in [`OwnerDied`].
pub type LockResult<G> = Result<G, OwnerDied<G>>;

/// Why `try_lock` or `lock_timeout` returned without a clean guard.
#[derive(Debug)]
pub enum TryLockError<G> {
    /// The lock is held by a live process (`try_lock`), or stayed held until the timeout.
    WouldBlock,
    /// Acquired, after a previous owner's death (see [`OwnerDied`]).
    OwnerDied(G),
}

impl<G> std::fmt::Display for TryLockError<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TryLockError::WouldBlock => f.write_str("the lock is held by another live process"),
            TryLockError::OwnerDied(_) => {
                f.write_str("a previous owner died holding the lock; the data may be inconsistent")
            }
        }
    }
}

impl<G: std::fmt::Debug> std::error::Error for TryLockError<G> {}

#[cfg(not(loom))]
pub(crate) fn owner_died<G>(guard: G) -> OwnerDied<G> {
    OwnerDied(guard)
}

#[cfg(not(loom))]
pub(crate) fn wrap<G>(guard: G, acquired: Acquired) -> LockResult<G> {
    match acquired {
        Acquired::Clean => Ok(guard),
        Acquired::OwnerDied => Err(OwnerDied(guard)),
    }
}

#[cfg(not(loom))]
pub(crate) fn wrap_try<G>(
    acquired: Option<Acquired>,
    guard: impl FnOnce() -> G,
) -> Result<G, TryLockError<G>> {
    match acquired {
        None => Err(TryLockError::WouldBlock),
        Some(Acquired::Clean) => Ok(guard()),
        Some(Acquired::OwnerDied) => Err(TryLockError::OwnerDied(guard())),
    }
}

#[cfg(not(loom))]
pub(crate) use handle::retire_owner_slot;
#[cfg(not(loom))]
pub(crate) use handle::{body_size, Taken};
#[cfg(not(loom))]
pub use handle::{Lock, Mutex, MutexGuard};

#[cfg(not(loom))]
mod handle {
    use super::{wrap, wrap_try, Acquired, LockResult, RawMutex, TryLockError};
    use super::{Duration, Instant};
    use crate::identity::{fingerprint, name_expected, short_type_name};
    use crate::mutex::AtomicU32;
    use bytemuck::Pod;
    use shmarena_engine::fork;
    use shmarena_engine::{
        Error, Object, ObjectKind, OwnerId, Region, Result, TypeDescriptor, USER_TYPE_CODE,
    };
    use std::cell::UnsafeCell;
    use std::marker::PhantomData;
    use std::ops::{Deref, DerefMut};
    use std::ptr::NonNull;

    /// Bytes before the data.
    pub(crate) const HEADER: u64 = 64;

    /// Body size of a mutex holding a `T`.
    pub(crate) fn body_size<T>() -> u64 {
        HEADER + size_of::<T>() as u64
    }

    /// Who took the lock a guard stands for: the owner id it was taken under, and the fork
    /// generation of the process that took it (module docs, "Deaths and forks").
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Taken {
        owner: OwnerId,
        fork_generation: u64,
    }

    impl Taken {
        /// A lock this process has just taken as `owner`. (No fork can come between the
        /// acquisition and this: a forked child has only the forking thread.)
        #[inline]
        pub(crate) fn now(owner: OwnerId) -> Self {
            Self {
                owner,
                fork_generation: fork::generation(),
            }
        }

        /// The owner id the lock was taken under.
        pub(crate) fn owner(self) -> OwnerId {
            self.owner
        }

        /// Whether the calling process took the lock: false in a child forked since (its
        /// generation is higher), whatever owner id it has.
        #[inline]
        pub(crate) fn by_this_process(self) -> bool {
            fork::generation() == self.fork_generation
        }

        /// Panics in a forked child of the process that took the lock.
        #[inline]
        #[track_caller]
        pub(crate) fn assert_this_process(self) {
            if !self.by_this_process() {
                inherited_guard();
            }
        }

        /// Releases the lock if this process took it and the word still names the owner
        /// it took it as; whether it did.
        #[inline]
        pub(crate) fn release(self, raw: RawMutex<'_>) -> bool {
            self.by_this_process() && raw.unlock_if_held(self.owner)
        }
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn inherited_guard() -> ! {
        panic!(
            "a lock guard used in a child forked while its parent held the lock: the child \
             does not hold it (lock the mutex in the child instead)"
        )
    }

    /// A named mutex protecting a `T` stored in the region.
    ///
    /// [`lock`](Self::lock) returns `Err(`[`OwnerDied`](crate::OwnerDied)`)` when a
    /// previous holder died holding the lock: the lock is taken all the same (the error
    /// carries the guard), but the data may be half updated. Handle it as below:
    /// `lock().unwrap()` would panic in exactly the case this mutex exists to survive.
    /// With nothing to repair, `lock().unwrap_or_else(OwnerDied::into_inner)` takes the
    /// guard either way.
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-mutex-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// // [count, total], with total == 10 * count.
    /// let totals = region.mutex::<[u64; 2]>("totals", [0, 0])?;
    /// # { // Another process is killed holding the lock, half-way through an update.
    /// #     let other = Region::open(&path)?;
    /// #     let theirs = other.open_mutex::<[u64; 2]>("totals")?;
    /// #     let mut guard = theirs.lock().unwrap();
    /// #     guard[0] += 1;
    /// #     std::mem::forget(guard);
    /// # }
    /// let mut guard = match totals.lock() {
    ///     Ok(guard) => guard,
    ///     // Its holder was killed: the lock is ours now, the data perhaps half updated.
    ///     // Repair it and say so (until then, every later locker is told too).
    ///     Err(died) => {
    ///         let mut guard = died.into_inner();
    ///         guard[1] = 10 * guard[0];
    ///         guard.mark_consistent();
    ///         guard
    ///     }
    /// };
    /// guard[0] += 1;
    /// guard[1] += 10;
    /// drop(guard); // unlocks
    /// assert_eq!(*totals.lock().expect("consistent since the repair"), [2, 20]);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    pub struct Mutex<T: Pod> {
        words: NonNull<AtomicU32>,
        data: NonNull<UnsafeCell<T>>,
        object: Object,
    }

    /// A mutex with no data: Python's `multiprocessing.Lock`, with an owner.
    pub type Lock = Mutex<()>;

    // SAFETY: the lock words are atomics in the shared mapping, which `object` keeps alive;
    // the data is only reached through a guard, which holds the lock.
    unsafe impl<T: Pod + Send> Send for Mutex<T> {}
    // SAFETY: as above; `T: Send` because a guard hands `&mut T` to whichever thread locks.
    unsafe impl<T: Pod + Send> Sync for Mutex<T> {}

    impl<T: Pod> Clone for Mutex<T> {
        fn clone(&self) -> Self {
            Self {
                words: self.words,
                data: self.data,
                object: self.object.clone(),
            }
        }
    }

    impl<T: Pod> std::fmt::Debug for Mutex<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Mutex")
                .field("name", &self.object.info().name)
                .field("owner", &self.raw().owner())
                .finish_non_exhaustive()
        }
    }

    const fn check_layout<T>() {
        assert!(
            align_of::<T>() <= 64,
            "Mutex<T> needs align_of::<T>() <= 64"
        );
        assert!(
            size_of::<T>() <= u32::MAX as usize,
            "Mutex<T> is limited to 4 GiB of data"
        );
    }

    impl<T: Pod> Mutex<T> {
        const LAYOUT_OK: () = check_layout::<T>();

        /// The catalog descriptor: the data's size and alignment, and its type's tag as
        /// [`identity`](crate::identity) describes.
        pub fn descriptor() -> TypeDescriptor {
            TypeDescriptor {
                // The code marks the kind of lock, so the tag names every type.
                elem_tag: fingerprint::<T>(),
                ..TypeDescriptor::new(
                    ObjectKind::Mutex,
                    USER_TYPE_CODE,
                    align_of::<T>() as u16,
                    size_of::<T>() as u64,
                )
            }
        }

        /// Opens the mutex `name`, creating it holding `initial` (unlocked) if absent.
        ///
        /// # Errors
        /// [`Error::TypeMismatch`] if `name` is another kind or a `T` of another size;
        /// catalog and arena errors.
        pub fn get_or_create(region: &Region, name: &str, initial: T) -> Result<Self> {
            let () = Self::LAYOUT_OK;
            let size = body_size::<T>();
            let (object, _) = crate::sweep::get_or_create_object(
                region,
                name,
                &Self::descriptor(),
                size,
                |object| {
                    let mutex = Self::from_object(object.clone())?;
                    // SAFETY: the object is not yet published: no other process can reach the
                    // data, and `data` points at size_of::<T>() checked bytes.
                    unsafe { mutex.data.as_ptr().cast::<T>().write(initial) };
                    Ok(())
                },
            )
            .map_err(Self::name_type)?;
            Self::from_object(object)
        }

        /// Opens the existing mutex `name`.
        ///
        /// # Errors
        /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::Corrupt`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            let () = Self::LAYOUT_OK;
            let object = crate::sweep::open_object(region, name, &Self::descriptor())
                .map_err(Self::name_type)?;
            Self::from_object(object)
        }

        fn name_type(error: Error) -> Error {
            name_expected(error, Self::rust_name)
        }

        /// This type as a Rust user writes it.
        fn rust_name() -> String {
            match size_of::<T>() {
                0 => "Lock (a Mutex<()>)".to_owned(),
                _ => format!("Mutex<{}>", short_type_name::<T>()),
            }
        }

        pub(crate) fn from_object(object: Object) -> Result<Self> {
            let expected = Self::descriptor();
            let found = &object.info().descriptor;
            // The code tells a `Mutex` from an `RLock` (which an untyped match would not).
            if !found.same_type(&expected)
                || found.elem_code != expected.elem_code
                || found.capacity != expected.capacity
            {
                return Err(Error::TypeMismatch {
                    name: object.info().name.clone(),
                    expected: Self::rust_name(),
                    found: found.to_string(),
                });
            }
            Self::from_object_unchecked_kind(object)
        }

        /// Wraps a body whose descriptor the caller has checked (RLock shares the layout).
        pub(crate) fn from_object_unchecked_kind(object: Object) -> Result<Self> {
            let words = object.atomics::<std::sync::atomic::AtomicU32>(0, 4)?;
            // The data must lie inside the body: check its extent as bytes.
            let data =
                object.atomics::<std::sync::atomic::AtomicU8>(HEADER, size_of::<T>() as u64)?;
            Ok(Self {
                words,
                data: data.cast(),
                object,
            })
        }

        pub(crate) fn raw(&self) -> RawMutex<'_> {
            // SAFETY: both words were checked inside the body; the mapping outlives `self`.
            unsafe {
                RawMutex {
                    word: self.words.as_ref(),
                    consistency: &*self.words.as_ptr().add(1),
                }
            }
        }

        /// The body's extra words (RLock bookkeeping).
        pub(crate) fn word(&self, index: usize) -> &AtomicU32 {
            debug_assert!(index < 4);
            // SAFETY: four words were checked inside the body.
            unsafe { &*self.words.as_ptr().add(index) }
        }

        pub(crate) fn region(&self) -> &Region {
            self.object.region()
        }

        /// A guard for the lock this process has just taken as `owner`.
        fn guard(&self, owner: OwnerId) -> MutexGuard<'_, T> {
            MutexGuard {
                mutex: self,
                taken: Taken::now(owner),
                _not_send: PhantomData,
            }
        }

        /// A guard for a lock the caller has just taken as `owner` through the raw
        /// algorithm.
        pub(crate) fn relocked_guard(&self, owner: OwnerId) -> MutexGuard<'_, T> {
            self.guard(owner)
        }

        /// Locks, waiting as long as it takes; a dead owner's lock is taken over within
        /// about [`CHECK_INTERVAL`](crate::mutex::CHECK_INTERVAL) of its death.
        pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
            let region = self.region();
            let me = region.participant_id();
            let acquired = self.raw().lock(me, region, None);
            wrap(self.guard(me), acquired.unwrap_or(Acquired::Clean))
        }

        /// Locks if the lock is free (or its owner dead), without waiting.
        pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError<MutexGuard<'_, T>>> {
            let region = self.region();
            let me = region.participant_id();
            wrap_try(self.raw().try_lock(me, region), || self.guard(me))
        }

        /// Locks, waiting at most `timeout`.
        pub fn lock_timeout(
            &self,
            timeout: Duration,
        ) -> Result<MutexGuard<'_, T>, TryLockError<MutexGuard<'_, T>>> {
            let region = self.region();
            let me = region.participant_id();
            let deadline = Instant::now() + timeout;
            wrap_try(self.raw().lock(me, region, Some(deadline)), || {
                self.guard(me)
            })
        }

        /// Takes the lock without a guard, waiting at most `timeout` (forever with `None`):
        /// for bindings whose acquire and release are separate calls, such as Python's
        /// `acquire()` / `release()`. `None` when the time ran out; release it with
        /// [`Self::release`]. [`Acquired::OwnerDied`] as for [`Self::lock`].
        pub fn acquire(&self, timeout: Option<Duration>) -> Option<Acquired> {
            let region = self.region();
            let me = region.participant_id();
            match timeout {
                Some(timeout) if timeout.is_zero() => self.raw().try_lock(me, region),
                // A deadline past what `Instant` holds is no deadline.
                Some(timeout) => self
                    .raw()
                    .lock(me, region, Instant::now().checked_add(timeout)),
                None => self.raw().lock(me, region, None),
            }
        }

        /// Releases a lock this process took with [`Self::acquire`]: one compare-exchange
        /// from this process's owner id, so a lock taken over from us (or one we never
        /// took, as in a forked child of the holder) is left alone.
        ///
        /// # Errors
        /// [`Error::NotHeld`] if this process does not hold it (nothing changes).
        pub fn release(&self) -> Result<()> {
            if self.raw().unlock_if_held(self.region().participant_id()) {
                Ok(())
            } else {
                Err(Error::NotHeld(self.name().to_owned()))
            }
        }

        /// Releases the lock whoever holds it: this process, another one, or one that
        /// exited or died holding it; `false` (and nothing changes) if it was not locked.
        /// A sleeper waiting for it is woken as by [`Self::release`]. This is the release
        /// of an ownerless lock such as Python's `multiprocessing.Lock`; a lock whose
        /// holder died and that nobody releases is still taken over by the next locker.
        /// Use it only where the holder cannot be inside the protected data (its guard,
        /// if any, would go on as if it held the lock).
        pub fn release_any(&self) -> bool {
            self.raw().unlock_any()
        }

        /// Marks the data consistent after an owner death, for a lock this process took
        /// with [`Self::acquire`].
        ///
        /// # Errors
        /// [`Error::NotHeld`] if this process does not hold it.
        pub fn mark_consistent(&self) -> Result<()> {
            self.check_held()?;
            self.raw().mark_consistent();
            Ok(())
        }

        /// Whether some process holds the lock (a snapshot).
        pub fn is_locked(&self) -> bool {
            self.raw().owner().is_some()
        }

        /// Whether this process holds the lock.
        pub fn is_held(&self) -> bool {
            self.raw().owner() == Some(self.region().participant_id())
        }

        pub(crate) fn check_held(&self) -> Result<()> {
            if self.is_held() {
                Ok(())
            } else {
                Err(Error::NotHeld(self.name().to_owned()))
            }
        }

        /// The object's name.
        pub fn name(&self) -> &str {
            &self.object.info().name
        }
    }

    /// Holds the lock; derefs to the data. Unlocks when dropped, if its process still
    /// holds the lock (see the module docs, "Deaths and forks": a child forked while the
    /// lock was held must not use the guard it inherited; its drop releases nothing).
    pub struct MutexGuard<'a, T: Pod> {
        mutex: &'a Mutex<T>,
        taken: Taken,
        // The guard may move between threads of a process (the owner is the process), but
        // keeping it !Send matches std and keeps RLock's thread bookkeeping simple.
        _not_send: PhantomData<*const ()>,
    }

    impl<'a, T: Pod> MutexGuard<'a, T> {
        /// Marks the data consistent after a previous owner's death, so later lockers are
        /// no longer told about it.
        ///
        /// # Panics
        /// In a child forked while the lock was held (it does not hold the lock).
        pub fn mark_consistent(&self) {
            self.taken.assert_this_process();
            self.mutex.raw().mark_consistent();
        }

        pub(crate) fn mutex(&self) -> &'a Mutex<T> {
            self.mutex
        }

        /// Who took the lock this guard stands for.
        pub(crate) fn taken(&self) -> Taken {
            self.taken
        }
    }

    impl<T: Pod> Deref for MutexGuard<'_, T> {
        type Target = T;
        /// # Panics
        /// In a child forked while the lock was held (it does not hold the lock).
        #[inline]
        fn deref(&self) -> &T {
            self.taken.assert_this_process();
            // Why the data may be read: it lies inside the body (checked), is aligned (body
            // 64-aligned, header 64 bytes, align_of::<T>() <= 64), any bits are a valid
            // `T: Pod`, and this process took the lock (checked just now).
            // SAFETY: as above: no cooperating process touches the data meanwhile.
            unsafe { &*self.mutex.data.as_ref().get() }
        }
    }

    impl<T: Pod> DerefMut for MutexGuard<'_, T> {
        /// # Panics
        /// As [`deref`](Deref::deref).
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            self.taken.assert_this_process();
            // SAFETY: as in deref; `&mut self` makes this the only reference in this process.
            unsafe { &mut *self.mutex.data.as_ref().get() }
        }
    }

    impl<T: Pod> Drop for MutexGuard<'_, T> {
        #[inline]
        fn drop(&mut self) {
            // Nothing in a forked child, nothing if the lock changed hands.
            self.taken.release(self.mutex.raw());
        }
    }

    impl<T: Pod + std::fmt::Debug> std::fmt::Debug for MutexGuard<'_, T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            std::fmt::Debug::fmt(&**self, f)
        }
    }

    /// Rewrites the lock word of a mutex (or `RLock`) held by an owner of participant slot
    /// `slot` to `OwnerId::DEAD` (a sweep of the retired slot: see `crate::sweep`): the
    /// next locker takes it over and is told the owner died, as before.
    pub(crate) fn retire_owner_slot(object: &Object, slot: u32) -> Result<()> {
        let word = &object.atomic_slice::<AtomicU32>(0, 1)?[0];
        shmarena_engine::liveness::retire_owner_field_u32(word, slot).map(drop)
    }
}
