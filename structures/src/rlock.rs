//! `RLock`: a reentrant cross-process lock (Python's `multiprocessing.RLock`).
//!
//! Built on [`Mutex`](crate::Mutex)'s lock word, plus two words in the same body that only
//! the holder touches:
//!
//! ```text
//!   8   holder thread id (u32; 0 when free)
//!   12  recursion count (u32)
//! ```
//!
//! A thread that already holds the lock (its process's owner id is in the lock word and
//! its thread id in the holder word) only bumps the count; anyone else locks the mutex.
//! A holder that dies leaves the lock to be taken over exactly as for a `Mutex`; the new
//! holder overwrites thread id and count.
//!
//! A guard touches the words only while its process still holds the lock as the owner it
//! took it as, and its thread is still the holder (the `Mutex` rule, see "Deaths and
//! forks" in [`crate::mutex`]): the guards a forked child inherits change nothing when
//! dropped (neither the parent's count nor its lock), and a holder whose lock was taken
//! over leaves the new holder's thread id, count and lock alone.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use shmarena_engine::sync::Ordering;
use shmarena_engine::{Object, ObjectKind, Region, Result, TypeDescriptor};

use shmarena_engine::OwnerId;

use crate::mutex::{wrap, wrap_try, Acquired, LockResult, Mutex, Taken, TryLockError};

const HOLDER: usize = 2;
const COUNT: usize = 3;

/// A named reentrant lock.
///
/// ```
/// use shmarena::{Region, RegionExt};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-rlock-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let lock = region.rlock("config")?;
/// let outer = lock.lock().unwrap();
/// let inner = lock.lock().unwrap(); // the same thread may lock again
/// drop(inner);
/// drop(outer); // released when the outermost guard goes
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RLock {
    mutex: Mutex<()>,
}

fn thread_id() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    tid as u32
}

impl RLock {
    /// The catalog descriptor.
    pub fn descriptor() -> TypeDescriptor {
        TypeDescriptor::new(ObjectKind::Mutex, b'r', 1, 0)
    }

    /// Opens the lock `name`, creating it (unlocked) if absent.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`](crate::Error::TypeMismatch); catalog and arena errors.
    pub fn get_or_create(region: &Region, name: &str) -> Result<Self> {
        let (object, _) = crate::sweep::get_or_create_object(
            region,
            name,
            &Self::descriptor(),
            crate::mutex::body_size::<()>(),
            |_| Ok(()),
        )?;
        Self::from_object(object)
    }

    /// Opens the existing lock `name`.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`](crate::Error::ObjectNotFound),
    /// [`Error::TypeMismatch`](crate::Error::TypeMismatch) if `name` is another kind (a
    /// [`Mutex`] or [`Lock`](crate::Lock) included), [`Error::Corrupt`](crate::Error::Corrupt).
    pub fn open(region: &Region, name: &str) -> Result<Self> {
        Self::from_object(crate::sweep::open_object(
            region,
            name,
            &Self::descriptor(),
        )?)
    }

    fn from_object(object: Object) -> Result<Self> {
        let found = &object.info().descriptor;
        // The code tells an `RLock` from a `Mutex<()>` of a region made before type tags,
        // which is untyped and so matches by size.
        if found.elem_code != Self::descriptor().elem_code {
            return Err(crate::Error::TypeMismatch {
                name: object.info().name.clone(),
                expected: Self::descriptor().to_string(),
                found: found.to_string(),
            });
        }
        Ok(Self {
            mutex: Mutex::from_object_unchecked_kind(object)?,
        })
    }

    /// Whether the thread `thread` of this process, owner `me`, holds the lock.
    fn held_by(&self, me: OwnerId, thread: u32) -> bool {
        // Relaxed: the holder word is only written by the holder; if this thread is the
        // holder it wrote it itself, and any other value means "not us".
        self.mutex.raw().owner() == Some(me)
            && self.mutex.word(HOLDER).load(Ordering::Relaxed) == thread
    }

    /// A guard for the first level, the lock just taken as `me` by `thread`.
    fn enter(&self, me: OwnerId, thread: u32) -> RLockGuard<'_> {
        // Relaxed: these words are only touched by the holding thread.
        self.mutex.word(HOLDER).store(thread, Ordering::Relaxed);
        self.mutex.word(COUNT).store(1, Ordering::Relaxed);
        self.guard(me, thread)
    }

    /// A guard for one more level of a lock `thread` holds as `me`.
    fn reenter(&self, me: OwnerId, thread: u32) -> RLockGuard<'_> {
        // Relaxed: only the holding thread touches the count.
        self.mutex.word(COUNT).fetch_add(1, Ordering::Relaxed);
        self.guard(me, thread)
    }

    fn guard(&self, me: OwnerId, thread: u32) -> RLockGuard<'_> {
        RLockGuard {
            lock: self,
            taken: Taken::now(me),
            thread,
            _not_send: PhantomData,
        }
    }

    /// Locks, waiting as long as it takes; reentrant for the holding thread.
    pub fn lock(&self) -> LockResult<RLockGuard<'_>> {
        let region = self.mutex.region();
        let (me, thread) = (region.participant_id(), thread_id());
        if self.held_by(me, thread) {
            return Ok(self.reenter(me, thread));
        }
        let acquired = self.mutex.raw().lock(me, region, None);
        wrap(self.enter(me, thread), acquired.unwrap_or(Acquired::Clean))
    }

    /// Locks without waiting.
    pub fn try_lock(&self) -> Result<RLockGuard<'_>, TryLockError<RLockGuard<'_>>> {
        let region = self.mutex.region();
        let (me, thread) = (region.participant_id(), thread_id());
        if self.held_by(me, thread) {
            return Ok(self.reenter(me, thread));
        }
        wrap_try(self.mutex.raw().try_lock(me, region), || {
            self.enter(me, thread)
        })
    }

    /// Locks, waiting at most `timeout`.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, TryLockError<RLockGuard<'_>>> {
        let region = self.mutex.region();
        let (me, thread) = (region.participant_id(), thread_id());
        if self.held_by(me, thread) {
            return Ok(self.reenter(me, thread));
        }
        let deadline = Instant::now() + timeout;
        wrap_try(self.mutex.raw().lock(me, region, Some(deadline)), || {
            self.enter(me, thread)
        })
    }
}

/// One level of an [`RLock`] acquisition; the lock is released with the outermost guard.
/// A child forked while the lock was held must not use the guards it inherited (their
/// drop changes nothing); see the module docs.
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    /// Who took the lock, and the holding thread's id.
    taken: Taken,
    thread: u32,
    _not_send: PhantomData<*const ()>,
}

impl RLockGuard<'_> {
    /// Marks the protected state consistent after a previous holder's death.
    ///
    /// # Panics
    /// In a child forked while the lock was held (it does not hold the lock).
    pub fn mark_consistent(&self) {
        self.taken.assert_this_process();
        self.lock.mutex.raw().mark_consistent();
    }
}

impl std::fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RLockGuard").finish_non_exhaustive()
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // In a forked child, or after the lock was taken over from us, the words are
        // someone else's: leave them (module docs).
        if !self.taken.by_this_process() || !self.lock.held_by(self.taken.owner(), self.thread) {
            return;
        }
        let mutex = &self.lock.mutex;
        // Relaxed: only the holding thread touches these words.
        if mutex.word(COUNT).fetch_sub(1, Ordering::Relaxed) == 1 {
            mutex.word(HOLDER).store(0, Ordering::Relaxed);
            mutex.raw().unlock_if_held(self.taken.owner());
        }
    }
}
