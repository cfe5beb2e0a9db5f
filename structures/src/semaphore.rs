//! `Semaphore` and bounded semaphores whose permits come back when their holder dies
//! (Python's `multiprocessing.Semaphore` / `BoundedSemaphore`; POSIX semaphores lose them).
//!
//! ```text
//! body:
//!   0   sequence (u32, the futex word): bumped by every release
//!   4   sleepers (u32): a hint that lets release skip the wake-up call
//!   8   capacity (u32): number of tokens
//!   16  who sleeps: 6 u64 words, the sleepers' registry (see `crate::sleepers`)
//!   64  tokens: capacity x u32, each
//!         0           FREE: a permit nobody holds
//!         owner id    HELD by that participant
//!         1 << 31     ABSENT: not a permit now (room for releases beyond the initial value)
//! ```
//!
//! A permit is a token, and a token records its holder, so "how many permits are taken
//! and by whom" is never a separate count that a death could leave wrong:
//!
//! - acquire: CAS some FREE token to `me` (the linearization point);
//! - release: CAS a token `me` holds back to FREE; with none, an ABSENT token to FREE
//!   (a release that creates a permit, as Python allows); with none of those either, a
//!   token another process holds (Python's permits have no owner either); with none at
//!   all, every permit is already free: `Error::TooManyReleases`.
//! - a token held by a dead participant is reclaimed (CAS back to FREE) by any waiter,
//!   which looks on its first sleep and then every [`CHECK_INTERVAL`].
//!
//! The number of FREE plus HELD tokens never exceeds the capacity, so no interleaving and
//! no death can create a permit. A process dying between its CAS and its return keeps the
//! permit until its death is noticed.
//!
//! # Guards, deaths and forks
//!
//! [`Semaphore::acquire_guard`] and its `try_`/`_timeout` forms hand back a
//! [`SemaphorePermit`] that gives the permit back when dropped, so an early return (`?`)
//! between acquire and release does not keep it until the process dies. Like a
//! [`MutexGuard`](crate::MutexGuard) (see "Deaths and forks" in [`crate::mutex`]), a
//! permit guard remembers the owner id it acquired under and the fork generation of the
//! process that acquired, and its drop gives back only a token that still names that
//! owner ([`RawSemaphore::release_held`], one CAS), and only in that process:
//! - a child forked while its parent held a guard inherits the guard, not the permit
//!   (the token names the parent): its drop does nothing;
//! - a permit reclaimed from its holder (a holder wrongly deemed dead) or rewritten by a
//!   sweep is not its holder's any more: the drop leaves the token alone, and never falls
//!   back to another process's permit as the unguarded [`Semaphore::release`] may.
//!
//! A process's permits are interchangeable: a guard's drop gives back one token naming its
//! process, which is the guard's own unless the process also released by hand.

use std::time::Instant;

use shmarena_engine::barrier;
use shmarena_engine::futex;
use shmarena_engine::sync::{AtomicU32, Ordering};
use shmarena_engine::{Error, Liveness, OwnerId, Result};

use crate::mutex::next_sleep;
pub use crate::mutex::CHECK_INTERVAL;
use crate::sleepers::Sleepers;

/// A token no one holds.
pub const FREE: u32 = 0;
/// A token that is no permit at present.
pub const ABSENT: u32 = 1 << 31;

/// The semaphore algorithm over its words.
#[derive(Clone, Copy, Debug)]
pub struct RawSemaphore<'a> {
    /// Release sequence (futex word).
    pub sequence: &'a AtomicU32,
    /// Processes currently waiting.
    pub sleepers: Sleepers<'a>,
    /// The tokens.
    pub tokens: &'a [AtomicU32],
}

impl RawSemaphore<'_> {
    fn start(&self, me: OwnerId) -> usize {
        // Spread processes over the tokens so they rarely race for the same one.
        (me.slot() as usize).wrapping_mul(0x9e37_79b9) % self.tokens.len().max(1)
    }

    fn ring(&self, me: OwnerId) -> impl Iterator<Item = &AtomicU32> {
        let start = self.start(me);
        self.tokens[start..].iter().chain(&self.tokens[..start])
    }

    /// Takes a permit if one is free.
    pub fn try_acquire(&self, me: OwnerId) -> bool {
        self.try_take(me, true)
    }

    /// Takes a permit if one is free, as [`try_acquire`](Self::try_acquire) does when
    /// `owned`; otherwise the permit leaves the semaphore with no holder recorded (its
    /// token becomes ABSENT): a later release by anyone brings it back, a death does not.
    /// That is a semaphore without owners, as Python's (whose users may release in one
    /// process what another acquired, or never release what a consumer took).
    pub fn try_take(&self, me: OwnerId, owned: bool) -> bool {
        let taken = if owned { me.bits() } else { ABSENT };
        self.ring(me).any(|token| {
            // Relaxed load: a guess. Acquire on success: what the releaser did before its
            // release happens-before our holding the permit.
            token.load(Ordering::Relaxed) == FREE
                && token
                    .compare_exchange(FREE, taken, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
        })
    }

    /// Returns the permits of dead holders; how many.
    pub fn reclaim_dead(&self, liveness: &impl Liveness) -> u32 {
        let mut reclaimed = 0;
        for token in self.tokens {
            // Relaxed: the CAS below decides.
            let value = token.load(Ordering::Relaxed);
            if value == FREE || value == ABSENT {
                continue;
            }
            let dead = OwnerId::from_bits(value).is_none_or(|owner| !liveness.is_alive(owner));
            // Release: as for a release by the holder.
            if dead
                && token
                    .compare_exchange(value, FREE, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                reclaimed += 1;
            }
        }
        if reclaimed != 0 {
            self.announce(reclaimed, liveness);
        }
        reclaimed
    }

    fn announce(&self, permits: u32, liveness: &impl Liveness) {
        // SeqCst: a sleeper that reads the new sequence (Acquire) sees the permit. Then the
        // light side of the pairing with a sleeper's heavy barrier (see
        // `shmarena_engine::barrier`): either we see its announcement, or its look after
        // the barrier sees the permit.
        self.sequence.fetch_add(1, Ordering::SeqCst);
        barrier::light();
        if self.sleepers.any() && futex::wake(self.sequence, permits) == 0 {
            // Nobody woke: perhaps a sleeper that died asleep (see `crate::sleepers`).
            self.sleepers.missed_wake(liveness);
        }
    }

    /// Takes a permit, waiting until `deadline` (forever if `None`); false on timeout.
    pub fn acquire(
        &self,
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
    ) -> bool {
        self.acquire_as(me, liveness, deadline, true)
    }

    /// [`acquire`](Self::acquire), taking the permit owned or not (see
    /// [`try_take`](Self::try_take)).
    pub fn acquire_as(
        &self,
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
        owned: bool,
    ) -> bool {
        let mut last_check: Option<Instant> = None;
        // A wait that has to sleep announces itself once (the sleeper count, then the heavy
        // barrier) and stays announced for all its sleeps; a try with no time left never
        // announces.
        let mut announced = None;
        let got = loop {
            if self.try_take(me, owned) {
                break true;
            }
            let check = cfg!(loom) || last_check.is_none_or(|at| at.elapsed() >= CHECK_INTERVAL);
            if check {
                last_check = Some(Instant::now());
                if self.reclaim_dead(liveness) != 0 {
                    continue; // a dead holder's permit came back: try for it
                }
            }
            let Some(timeout) = next_sleep(deadline) else {
                break false;
            };
            if announced.is_none() {
                // The count before the barrier (see `announce`); then look again.
                announced = Some(self.sleepers.enter(me));
                barrier::heavy();
                continue;
            }
            // Acquire: pairs with the releaser's bump, so a permit released before it is
            // seen by the look below; a bump after it ends the sleep.
            let sequence = self.sequence.load(Ordering::Acquire);
            if self.try_take(me, owned) {
                break true;
            }
            futex::wait(self.sequence, sequence, Some(timeout));
        };
        if let Some(announced) = announced {
            self.sleepers.leave(me, announced);
        }
        got
    }

    /// Returns a permit (see the module docs for whose).
    ///
    /// # Errors
    /// [`Error::TooManyReleases`] when every permit is already free.
    pub fn release(&self, me: OwnerId, liveness: &impl Liveness) -> Result<()> {
        let mine = me.bits();
        // Our own permit first, then room for a new one, then anyone's.
        for wanted in [Some(mine), Some(ABSENT), None] {
            for token in self.ring(me) {
                // Relaxed: a guess for the CAS.
                let value = token.load(Ordering::Relaxed);
                let matches = match wanted {
                    Some(wanted) => value == wanted,
                    None => value != FREE && value != ABSENT,
                };
                // Release: publishes what we did under the permit to the next acquirer.
                if matches
                    && token
                        .compare_exchange(value, FREE, Ordering::Release, Ordering::Relaxed)
                        .is_ok()
                {
                    self.announce(1, liveness);
                    return Ok(());
                }
            }
        }
        Err(Error::TooManyReleases {
            capacity: self.tokens.len() as u64,
        })
    }

    /// Returns a permit held by `owner`, and only such a permit; whether there was one.
    /// What a permit guard's drop does: a permit reclaimed from a holder wrongly deemed
    /// dead, or swept after its slot retired, is no longer `owner`'s, and a guard must
    /// not give back a permit its process no longer holds.
    pub fn release_held(&self, owner: OwnerId, liveness: &impl Liveness) -> bool {
        let mine = owner.bits();
        for token in self.ring(owner) {
            // Relaxed: a guess for the CAS. Release on success: publishes what we did
            // under the permit to the next acquirer.
            if token.load(Ordering::Relaxed) == mine
                && token
                    .compare_exchange(mine, FREE, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                self.announce(1, liveness);
                return true;
            }
        }
        false
    }

    /// Permits free right now (a snapshot).
    pub fn available(&self) -> usize {
        // Relaxed: a snapshot.
        self.tokens
            .iter()
            .filter(|t| t.load(Ordering::Relaxed) == FREE)
            .count()
    }

    /// Permits held by `owner` right now.
    pub fn held_by(&self, owner: OwnerId) -> usize {
        // Relaxed: a snapshot.
        self.tokens
            .iter()
            .filter(|t| t.load(Ordering::Relaxed) == owner.bits())
            .count()
    }
}

#[cfg(not(loom))]
pub(crate) use handle::retire_owner_slot;
#[cfg(not(loom))]
pub use handle::{Semaphore, SemaphorePermit};

#[cfg(not(loom))]
mod handle {
    use super::{RawSemaphore, ABSENT};
    use crate::mutex::Taken;
    use crate::sleepers::Sleepers;
    use shmarena_engine::sync::{AtomicU32, AtomicU64, Ordering};
    use shmarena_engine::{Error, Object, ObjectKind, OwnerId, Region, Result, TypeDescriptor};
    use std::ptr::NonNull;
    use std::time::{Duration, Instant};

    const HEADER: u64 = 64;
    /// Byte offset and words of the sleepers' registry.
    const REGISTRY: u64 = 16;
    const REGISTRY_WORDS: u64 = 6;
    /// Largest capacity (tokens are scanned linearly).
    pub const MAX_CAPACITY: u32 = 1 << 16;

    /// A named counting semaphore.
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-sem-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let slots = region.bounded_semaphore("gpu-slots", 2)?;
    /// {
    ///     let _permit = slots.acquire_guard(); // waits for a free permit
    ///     assert_eq!(slots.available(), 1);
    ///     // ... use the GPU; a `?` or a panic here still gives the permit back ...
    /// } // given back here
    /// assert_eq!(slots.available(), 2);
    /// // The manual pair (Python's acquire() / release()):
    /// assert!(slots.try_acquire());
    /// assert!(slots.try_acquire());
    /// assert!(!slots.try_acquire()); // both taken
    /// slots.release()?;
    /// assert_eq!(slots.available(), 1);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    #[derive(Clone)]
    pub struct Semaphore {
        words: NonNull<AtomicU32>,
        /// The sleepers' registry ([`REGISTRY_WORDS`] u64 words at byte [`REGISTRY`]).
        registry: NonNull<AtomicU64>,
        capacity: usize,
        object: Object,
    }

    // SAFETY: the words are atomics in the shared mapping, which `object` keeps alive.
    unsafe impl Send for Semaphore {}
    // SAFETY: as above.
    unsafe impl Sync for Semaphore {}

    impl std::fmt::Debug for Semaphore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Semaphore")
                .field("name", &self.object.info().name)
                .field("available", &self.available())
                .field("capacity", &self.capacity)
                .finish_non_exhaustive()
        }
    }

    impl Semaphore {
        /// The object's name.
        pub fn name(&self) -> &str {
            &self.object.info().name
        }

        /// The catalog descriptor of a semaphore with `capacity` tokens.
        pub fn descriptor(capacity: u32) -> TypeDescriptor {
            TypeDescriptor::new(ObjectKind::Semaphore, b's', 4, u64::from(capacity))
        }

        /// Opens the semaphore `name`, creating it with `initial` free permits and room for
        /// `capacity` in all (releases beyond that fail) if absent.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] unless `initial <= capacity <= 65536` and
        /// `capacity > 0`; [`Error::TypeMismatch`]; catalog and arena errors.
        pub fn get_or_create(
            region: &Region,
            name: &str,
            initial: u32,
            capacity: u32,
        ) -> Result<Self> {
            if capacity == 0 || initial > capacity || capacity > MAX_CAPACITY {
                return Err(Error::InvalidArgument(format!(
                    "a semaphore needs 0 <= initial ({initial}) <= capacity ({capacity}) <= {MAX_CAPACITY}, capacity > 0"
                )));
            }
            let size = HEADER + 4 * u64::from(capacity);
            let (object, _) = crate::sweep::get_or_create_object(
                region,
                name,
                &Self::descriptor(capacity),
                size,
                |object| {
                    let semaphore = Self::from_object(object.clone())?;
                    // Relaxed: published by the catalog's Release.
                    semaphore.word(2).store(capacity, Ordering::Relaxed);
                    for token in &semaphore.raw().tokens[initial as usize..] {
                        token.store(ABSENT, Ordering::Relaxed);
                    }
                    Ok(())
                },
            )?;
            Self::from_object(object)
        }

        /// Opens the existing semaphore `name` (bounded or not), whatever its capacity.
        ///
        /// # Errors
        /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`] if `name` is another kind,
        /// [`Error::Corrupt`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            // The capacity is the descriptor's, which the kind check ignores.
            Self::from_object(crate::sweep::open_object(
                region,
                name,
                &Self::descriptor(1),
            )?)
        }

        fn from_object(object: Object) -> Result<Self> {
            let capacity = object.info().descriptor.capacity;
            if capacity == 0 || capacity > u64::from(MAX_CAPACITY) {
                return Err(Error::Corrupt {
                    field: "semaphore capacity",
                    detail: format!("object {:?}: {capacity}", object.info().name),
                });
            }
            let words = object.atomics::<std::sync::atomic::AtomicU32>(0, HEADER / 4 + capacity)?;
            let registry =
                object.atomics::<std::sync::atomic::AtomicU64>(REGISTRY, REGISTRY_WORDS)?;
            Ok(Self {
                words,
                registry,
                capacity: capacity as usize,
                object,
            })
        }

        fn word(&self, index: usize) -> &AtomicU32 {
            // SAFETY: the header words and tokens were checked inside the body.
            unsafe { &*self.words.as_ptr().add(index) }
        }

        fn raw(&self) -> RawSemaphore<'_> {
            // SAFETY: HEADER/4 + capacity words were checked inside the body and the
            // mapping outlives `self`.
            let tokens = unsafe {
                std::slice::from_raw_parts(
                    self.words.as_ptr().add((HEADER / 4) as usize),
                    self.capacity,
                )
            };
            // SAFETY: REGISTRY_WORDS u64 words at REGISTRY were checked inside the body
            // (only ever accessed as u64), and the mapping outlives `self`.
            let registry = unsafe {
                std::slice::from_raw_parts(self.registry.as_ptr(), REGISTRY_WORDS as usize)
            };
            RawSemaphore {
                sequence: self.word(0),
                sleepers: Sleepers {
                    count: self.word(1),
                    registry,
                },
                tokens,
            }
        }

        /// Takes a permit, waiting as long as it takes (a dead holder's permits come back
        /// within about [`CHECK_INTERVAL`](crate::mutex::CHECK_INTERVAL)).
        pub fn acquire(&self) {
            let region = self.object.region();
            self.raw().acquire(region.participant_id(), region, None);
        }

        /// Takes a permit if one is free now.
        pub fn try_acquire(&self) -> bool {
            self.raw()
                .try_acquire(self.object.region().participant_id())
        }

        /// Takes a permit, waiting at most `timeout`; whether it got one.
        pub fn acquire_timeout(&self, timeout: Duration) -> bool {
            let region = self.object.region();
            self.raw().acquire(
                region.participant_id(),
                region,
                Some(Instant::now() + timeout),
            )
        }

        /// Takes a permit with no holder recorded, waiting at most `timeout` (forever
        /// with `None`; not at all with zero): a holder's death does not return it, and
        /// any process may release it (a semaphore without owners, as Python's; see
        /// [`RawSemaphore::try_take`](super::RawSemaphore::try_take)). Whether it got one.
        pub fn acquire_unowned(&self, timeout: Option<Duration>) -> bool {
            let region = self.object.region();
            let me = region.participant_id();
            match timeout {
                Some(timeout) if timeout.is_zero() => self.raw().try_take(me, false),
                timeout => {
                    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
                    self.raw().acquire_as(me, region, deadline, false)
                }
            }
        }

        /// A guard for the permit this process has just taken as `owner`.
        fn permit(&self, owner: OwnerId) -> SemaphorePermit<'_> {
            SemaphorePermit {
                semaphore: self,
                taken: Taken::now(owner),
            }
        }

        /// Takes a permit, waiting as long as it takes, and returns a guard that gives it
        /// back when dropped (see the module docs, "Guards, deaths and forks").
        pub fn acquire_guard(&self) -> SemaphorePermit<'_> {
            let region = self.object.region();
            let me = region.participant_id();
            self.raw().acquire(me, region, None);
            self.permit(me)
        }

        /// Takes a permit if one is free now, as a guard that gives it back when dropped.
        ///
        /// ```
        /// use shmarena::{Region, RegionExt};
        /// # let path = std::env::temp_dir().join(format!("shmarena-doc-sem-try-{}", std::process::id()));
        /// let region = Region::create(&path, 1 << 20)?;
        /// let workers = region.bounded_semaphore("workers", 1)?;
        /// let permit = workers.try_acquire_guard().expect("one permit is free");
        /// assert!(workers.try_acquire_guard().is_none()); // taken
        /// drop(permit);
        /// assert!(workers.try_acquire_guard().is_some());
        /// # Region::unlink(&path)?;
        /// # Ok::<(), shmarena::Error>(())
        /// ```
        pub fn try_acquire_guard(&self) -> Option<SemaphorePermit<'_>> {
            let me = self.object.region().participant_id();
            self.raw().try_acquire(me).then(|| self.permit(me))
        }

        /// Takes a permit, waiting at most `timeout`, as a guard that gives it back when
        /// dropped; `None` if none came free in time.
        pub fn acquire_guard_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
            let region = self.object.region();
            let me = region.participant_id();
            // A deadline past what `Instant` holds is no deadline.
            let deadline = Instant::now().checked_add(timeout);
            self.raw()
                .acquire(me, region, deadline)
                .then(|| self.permit(me))
        }

        /// Returns a permit.
        ///
        /// # Errors
        /// [`Error::TooManyReleases`] when every permit is already free (Python's
        /// `BoundedSemaphore` raises `ValueError` then).
        pub fn release(&self) -> Result<()> {
            let region = self.object.region();
            self.raw().release(region.participant_id(), region)
        }

        /// Permits free right now.
        pub fn available(&self) -> usize {
            self.raw().available()
        }

        /// Permits this process holds right now.
        pub fn held(&self) -> usize {
            self.raw().held_by(self.object.region().participant_id())
        }

        /// The most permits the semaphore can hold.
        pub fn capacity(&self) -> usize {
            self.capacity
        }
    }

    /// A permit of a [`Semaphore`], given back when dropped: what
    /// [`Semaphore::acquire_guard`] and its `try_`/`_timeout` forms return.
    ///
    /// Its drop gives back a permit only in the process that acquired it, and only one
    /// that still names the owner id it acquired under (module docs, "Guards, deaths and
    /// forks"): a child forked while its parent held the guard inherits it, not the
    /// permit, and dropping it there does nothing.
    #[must_use = "dropping the guard gives the permit back at once"]
    pub struct SemaphorePermit<'a> {
        semaphore: &'a Semaphore,
        /// Who took the permit: the owner id and the fork generation of the process.
        taken: Taken,
    }

    impl SemaphorePermit<'_> {
        /// Keeps the permit without a guard: this process holds it until it calls
        /// [`Semaphore::release`] or dies (when it comes back as any dead holder's does).
        ///
        /// ```
        /// use shmarena::{Region, RegionExt};
        /// # let path = std::env::temp_dir().join(format!("shmarena-doc-sem-forget-{}", std::process::id()));
        /// let region = Region::create(&path, 1 << 20)?;
        /// let slots = region.bounded_semaphore("slots", 1)?;
        /// slots.acquire_guard().forget();
        /// assert_eq!((slots.available(), slots.held()), (0, 1));
        /// slots.release()?;
        /// assert_eq!(slots.available(), 1);
        /// # Region::unlink(&path)?;
        /// # Ok::<(), shmarena::Error>(())
        /// ```
        pub fn forget(self) {
            std::mem::forget(self);
        }

        /// The semaphore the permit belongs to.
        pub fn semaphore(&self) -> &Semaphore {
            self.semaphore
        }
    }

    impl Drop for SemaphorePermit<'_> {
        fn drop(&mut self) {
            // Nothing in a forked child (the token names the parent), nothing if the
            // permit is no longer this owner's: a reclaimed or swept token is left alone.
            if self.taken.by_this_process() {
                self.semaphore
                    .raw()
                    .release_held(self.taken.owner(), self.semaphore.object.region());
            }
        }
    }

    impl std::fmt::Debug for SemaphorePermit<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SemaphorePermit")
                .field("semaphore", &self.semaphore.name())
                .field("owner", &self.taken.owner())
                .finish()
        }
    }

    /// Rewrites the permits held by owners of participant slot `slot` to
    /// `OwnerId::DEAD` (a sweep of the retired slot: see `crate::sweep`); with `reclaim`
    /// they are given back as before.
    pub(crate) fn retire_owner_slot(object: &Object, slot: u32) -> Result<()> {
        let capacity = object.info().descriptor.capacity;
        for token in object.atomic_slice::<AtomicU32>(HEADER, capacity)? {
            shmarena_engine::liveness::retire_owner_field_u32(token, slot)?;
        }
        Sleepers {
            count: &object.atomic_slice::<AtomicU32>(4, 1)?[0],
            registry: object.atomic_slice::<AtomicU64>(REGISTRY, REGISTRY_WORDS)?,
        }
        .retire_owner_slot(slot)
    }
}
