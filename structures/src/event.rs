//! `Event`: a cross-process flag that processes can wait for (Python's
//! `multiprocessing.Event`).
//!
//! ```text
//! body (64 bytes):
//!   0  flag (u32, the futex word): 0 = clear, 1 = set
//!   4  sleepers (u32): a hint that lets `set` skip the wake-up call
//!   8  who sleeps: 7 u64 words, the sleepers' registry (see `crate::sleepers`)
//! ```
//!
//! `set` stores 1 and wakes every sleeper; `wait` sleeps on the futex only while the flag
//! reads 0, so a `set` between its check and its sleep makes the sleep return at once.
//! The sleeper count is ordered against the flag with SeqCst on both sides (Dekker), so
//! `set` never skips a wake-up a sleeper needs. A waiter never waits for a process, only
//! for the flag: nothing here needs recovery when a process dies, but for the sleeper
//! count of a waiter killed asleep, which `set` clears (see `crate::sleepers`).

use std::time::Instant;

use shmarena_engine::barrier;
use shmarena_engine::futex;
use shmarena_engine::sync::{AtomicU32, Ordering};
use shmarena_engine::{Liveness, OwnerId};

use crate::mutex::next_sleep;
use crate::sleepers::Sleepers;

/// The event algorithm over its two words.
#[derive(Clone, Copy, Debug)]
pub struct RawEvent<'a> {
    /// The flag (futex word).
    pub flag: &'a AtomicU32,
    /// Processes currently waiting.
    pub sleepers: Sleepers<'a>,
}

impl RawEvent<'_> {
    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        // Acquire: a waiter that sees the flag sees what the setter wrote before `set`.
        self.flag.load(Ordering::Acquire) == 1
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self, liveness: &impl Liveness) {
        // SeqCst: publishes the setter's writes (Release). Then the light side of the
        // pairing with a waiter's heavy barrier (see `shmarena_engine::barrier`): either we
        // see its announcement, or its look after the barrier sees the flag.
        if self.flag.swap(1, Ordering::SeqCst) == 0 {
            barrier::light();
            if self.sleepers.any() && futex::wake_all(self.flag) == 0 {
                // Nobody woke: perhaps a waiter that died asleep (see `crate::sleepers`).
                self.sleepers.missed_wake(liveness);
            }
        }
    }

    /// Clears the flag.
    pub fn clear(&self) {
        // Relaxed: clearing publishes nothing.
        self.flag.store(0, Ordering::Relaxed);
    }

    /// Waits until the flag is set or `deadline` passes; returns whether it is set.
    ///
    /// A wait that has to sleep announces itself once (the sleeper count, then the heavy
    /// barrier) and stays announced for all its sleeps; one with no time left never
    /// announces.
    pub fn wait(&self, me: OwnerId, deadline: Option<Instant>) -> bool {
        let mut announced = None;
        let set = loop {
            if self.is_set() {
                break true;
            }
            let Some(timeout) = next_sleep(deadline) else {
                break false;
            };
            if announced.is_none() {
                // The count before the barrier (see `set`); then look again.
                announced = Some(self.sleepers.enter(me));
                barrier::heavy();
                continue;
            }
            futex::wait(self.flag, 0, Some(timeout));
        };
        if let Some(announced) = announced {
            self.sleepers.leave(me, announced);
        }
        set
    }
}

#[cfg(not(loom))]
pub use handle::Event;

#[cfg(not(loom))]
mod handle {
    use super::RawEvent;
    use crate::sleepers::Sleepers;
    use shmarena_engine::sync::{AtomicU32, AtomicU64};
    use shmarena_engine::{Object, ObjectKind, Region, Result, TypeDescriptor};

    /// Byte offset and words of the sleepers' registry.
    const REGISTRY: u64 = 8;
    const REGISTRY_WORDS: u64 = 7;
    use std::ptr::NonNull;
    use std::time::{Duration, Instant};

    /// A named event.
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-event-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let go = region.event("go")?;
    /// assert!(!go.wait_timeout(std::time::Duration::from_millis(1)));
    /// go.set(); // wakes every process in `wait`
    /// assert!(go.is_set());
    /// go.wait();
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    #[derive(Clone)]
    pub struct Event {
        words: NonNull<AtomicU32>,
        /// The sleepers' registry ([`REGISTRY_WORDS`] u64 words at byte [`REGISTRY`]).
        registry: NonNull<AtomicU64>,
        object: Object,
    }

    // SAFETY: the words are atomics in the shared mapping, which `object` keeps alive.
    unsafe impl Send for Event {}
    // SAFETY: as above.
    unsafe impl Sync for Event {}

    impl std::fmt::Debug for Event {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Event")
                .field("name", &self.object.info().name)
                .field("set", &self.is_set())
                .finish_non_exhaustive()
        }
    }

    impl Event {
        /// The object's name.
        pub fn name(&self) -> &str {
            &self.object.info().name
        }

        /// The catalog descriptor.
        pub fn descriptor() -> TypeDescriptor {
            TypeDescriptor::new(ObjectKind::Event, 0, 0, 0)
        }

        /// Opens the event `name`, creating it (clear) if absent.
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

        /// Opens the existing event `name`.
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
            let registry =
                object.atomics::<std::sync::atomic::AtomicU64>(REGISTRY, REGISTRY_WORDS)?;
            Ok(Self {
                words,
                registry,
                object,
            })
        }

        fn raw(&self) -> RawEvent<'_> {
            // SAFETY: two u32 words and REGISTRY_WORDS u64 words at REGISTRY (only ever
            // accessed as u64) were checked inside the body; the mapping outlives `self`.
            unsafe {
                RawEvent {
                    flag: self.words.as_ref(),
                    sleepers: Sleepers {
                        count: &*self.words.as_ptr().add(1),
                        registry: std::slice::from_raw_parts(
                            self.registry.as_ptr(),
                            REGISTRY_WORDS as usize,
                        ),
                    },
                }
            }
        }

        /// Rewrites the sleepers' registry entries naming participant `slot` (retired by
        /// the sweep).
        pub(crate) fn retire_owner_slot(object: &Object, slot: u32) -> Result<()> {
            Self::from_object(object.clone())?
                .raw()
                .sleepers
                .retire_owner_slot(slot)
        }

        /// Whether the event is set.
        pub fn is_set(&self) -> bool {
            self.raw().is_set()
        }

        /// Sets the event, waking every waiter.
        pub fn set(&self) {
            self.raw().set(self.object.region());
        }

        /// Clears the event.
        pub fn clear(&self) {
            self.raw().clear();
        }

        /// Waits until the event is set.
        pub fn wait(&self) {
            self.raw().wait(self.object.region().participant_id(), None);
        }

        /// Waits at most `timeout`; returns whether the event is set.
        pub fn wait_timeout(&self, timeout: Duration) -> bool {
            self.raw().wait(
                self.object.region().participant_id(),
                Some(Instant::now() + timeout),
            )
        }
    }
}
