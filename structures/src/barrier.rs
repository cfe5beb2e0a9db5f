//! `Barrier`: `parties` processes wait until all have arrived; a party that dies while
//! the others wait breaks the barrier (Python's `multiprocessing.Barrier` and its
//! `BrokenBarrierError`).
//!
//! ```text
//! body:
//!   0   state (u32, the futex word): | BROKEN: 1 | arrived: 15 bits | generation: 16 bits |
//!   4   parties (u32)
//!   64  arrival marks: one u64 per participant slot: | owner id: 32 | generation + 1: 32 |
//! ```
//!
//! `wait`: mark "I, owner o, am arriving in generation g" in the caller's participant cell,
//! then CAS `arrived + 1` into the state (the arrival's linearization point). The arrival
//! that makes `arrived == parties` instead CASes the state to `generation + 1, arrived 0`
//! (the trip) and wakes everyone. Waiters sleep on the futex while the state is unchanged,
//! waking every [`CHECK_INTERVAL`] to look for marks of generation g whose owner is dead;
//! finding one, they CAS BROKEN into the state (only if it still shows generation g) and
//! wake everyone. A broken barrier fails every `wait` until [`Barrier::reset`].
//!
//! With an action ([`RawBarrier::wait_with_action`]), the last arrival instead CASes
//! `arrived = parties` (publishing its mark), runs the action while the others still wait,
//! and then trips from that state, as Python runs a barrier's action before any party
//! leaves `wait()`. An action that fails breaks the barrier; an arrival that dies running
//! it is a dead arrival like any other (its mark is published), so the others break the
//! barrier. An arrival that finds `arrived = parties` (a party beyond `parties`, while an
//! action runs) waits for the trip and arrives in the next generation.
//!
//! A timed-out wait breaks the barrier too, as in Python. Marks are cleared by their
//! owner after it passes and by the tripper for its generation, so a stale mark can only
//! be mistaken for a live arrival after 65,536 more generations and then only if its
//! owner died between the trip and the clearing.

use std::time::{Duration, Instant};

use shmarena_engine::futex;
use shmarena_engine::sync::{AtomicU32, AtomicU64, Ordering};
use shmarena_engine::{Error, Liveness, OwnerId, Result};

use crate::mutex::next_sleep;
pub use crate::mutex::CHECK_INTERVAL;

const BROKEN: u32 = 1 << 31;
const GENERATION: u32 = 0xffff;
/// The low half of a mark whose generation was ended by `reset`, not by a trip.
const RESET_MARK: u32 = u32::MAX;
const ARRIVED_SHIFT: u32 = 16;
const MAX_ARRIVED: u32 = 0x7fff;
/// Most parties a barrier can have.
pub const MAX_PARTIES: u32 = MAX_ARRIVED;

fn mark(owner: OwnerId, generation: u32) -> u64 {
    (u64::from(owner.bits()) << 32) | u64::from(generation + 1)
}

/// The barrier algorithm over its words.
#[derive(Clone, Copy, Debug)]
pub struct RawBarrier<'a> {
    /// State (futex word).
    pub state: &'a AtomicU32,
    /// Number of parties.
    pub parties: u32,
    /// One arrival mark per participant slot.
    pub marks: &'a [AtomicU64],
}

/// How often [`RawBarrier::wait_interruptible`] asks whether to give up.
pub const INTERRUPT_CHECK: Duration = Duration::from_millis(50);

impl RawBarrier<'_> {
    fn my_mark(&self, me: OwnerId) -> Result<&AtomicU64> {
        self.marks.get(me.slot() as usize).ok_or_else(|| {
            Error::corrupt_barrier(format!(
                "no arrival mark for participant slot {}",
                me.slot()
            ))
        })
    }

    /// Waits for all parties; returns this arrival's index (0 for the first to arrive).
    ///
    /// # Errors
    /// [`Error::BrokenBarrier`] when the barrier is or becomes broken (a party died, a
    /// wait timed out, or it was aborted); [`Error::Corrupt`] for an impossible state.
    pub fn wait(
        &self,
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
    ) -> Result<u32> {
        self.wait_interruptible(me, liveness, deadline, &mut || false)
    }

    /// [`wait`](Self::wait) that also asks `interrupted` about every
    /// [`INTERRUPT_CHECK`] while it sleeps and, when it says so, breaks the barrier as a
    /// timeout would (for bindings whose users press Ctrl-C).
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_interruptible(
        &self,
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<u32> {
        self.wait_with_action(me, liveness, deadline, interrupted, None)
    }

    /// [`wait_interruptible`](Self::wait_interruptible) where the last arrival runs
    /// `action` before any party is released (module docs). An action's error breaks the
    /// barrier and is returned to the last arrival; the others get
    /// [`Error::BrokenBarrier`].
    ///
    /// # Errors
    /// As [`wait`](Self::wait), and the action's.
    pub fn wait_with_action(
        &self,
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
        interrupted: &mut dyn FnMut() -> bool,
        mut action: Option<&mut dyn FnMut() -> Result<()>>,
    ) -> Result<u32> {
        let my_mark = self.my_mark(me)?;
        let (generation, index) = loop {
            // Acquire: see the marks and state of whoever changed it last.
            let state = self.state.load(Ordering::Acquire);
            if state & BROKEN != 0 {
                return Err(Error::BrokenBarrier("a party died, timed out or aborted"));
            }
            let generation = state & GENERATION;
            let arrived = (state >> ARRIVED_SHIFT) & MAX_ARRIVED;
            if arrived > self.parties {
                return Err(Error::corrupt_barrier(format!(
                    "{arrived} arrived of {} parties",
                    self.parties
                )));
            }
            if arrived == self.parties {
                // An action runs: this arrival belongs to the next generation.
                if next_sleep(deadline).is_none() {
                    return Err(Error::BrokenBarrier("a wait timed out"));
                }
                futex::wait(self.state, state, Some(CHECK_INTERVAL));
                continue;
            }
            // Relaxed: published by the Release of the CAS below.
            my_mark.store(mark(me, generation), Ordering::Relaxed);
            let last = arrived + 1 == self.parties;
            let (next, tripping) = match (last, action.is_some()) {
                (true, false) => ((generation + 1) & GENERATION, true),
                // The last arrival with an action: all arrived, the trip waits for it.
                _ => (state + (1 << ARRIVED_SHIFT), false),
            };
            // AcqRel: publishes our mark (Release) and sees the others' (Acquire).
            if self
                .state
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue; // another arrival or a break: look again
            }
            if tripping {
                self.clear_marks(generation);
                futex::wake_all(self.state);
                return Ok(arrived);
            }
            if let (true, Some(action)) = (last, action.as_mut()) {
                return self.run_action_and_trip(next, generation, arrived, action);
            }
            break (generation, arrived);
        };

        let mut last_check: Option<Instant> = None;
        let mut last_interrupt_check = Instant::now();
        loop {
            // Acquire: the trip's writes happen-before our return.
            let state = self.state.load(Ordering::Acquire);
            if state & GENERATION != generation {
                // A trip or a reset: our mark tells which. Relaxed: the Acquire load of the
                // state above ordered the tripper's or resetter's mark writes before this.
                let reset = (u64::from(me.bits()) << 32) | u64::from(RESET_MARK);
                return match my_mark.compare_exchange(
                    mark(me, generation),
                    0,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Err(value) if value == reset => {
                        let _ = my_mark.compare_exchange(
                            reset,
                            0,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                        Err(Error::BrokenBarrier("the barrier was reset"))
                    }
                    _ => Ok(index),
                };
            }
            if state & BROKEN != 0 {
                return Err(Error::BrokenBarrier("a party died, timed out or aborted"));
            }
            let check = cfg!(loom) || last_check.is_none_or(|at| at.elapsed() >= CHECK_INTERVAL);
            if check {
                last_check = Some(Instant::now());
                if self.has_dead_arrival(generation, liveness) {
                    self.break_generation(state);
                    continue;
                }
            }
            let Some(timeout) = next_sleep(deadline) else {
                self.break_generation(state);
                if self.state.load(Ordering::Acquire) & GENERATION != generation {
                    continue; // tripped just in time
                }
                return Err(Error::BrokenBarrier("a wait timed out"));
            };
            if last_interrupt_check.elapsed() >= INTERRUPT_CHECK {
                last_interrupt_check = Instant::now();
                if interrupted() {
                    self.break_generation(state);
                    if self.state.load(Ordering::Acquire) & GENERATION != generation {
                        continue; // tripped just in time
                    }
                    return Err(Error::BrokenBarrier("a wait was interrupted"));
                }
            }
            futex::wait(self.state, state, Some(timeout.min(INTERRUPT_CHECK)));
        }
    }

    /// The last arrival with an action, all parties arrived (`state`): runs the action, then
    /// trips, or breaks the barrier if the action fails.
    fn run_action_and_trip(
        &self,
        state: u32,
        generation: u32,
        index: u32,
        action: &mut dyn FnMut() -> Result<()>,
    ) -> Result<u32> {
        if let Err(error) = action() {
            self.break_generation(state);
            futex::wake_all(self.state);
            return Err(error);
        }
        // AcqRel: the action's writes happen before every waiter's return (Release), as the
        // trip's do; fails if the barrier broke or was reset meanwhile.
        if self
            .state
            .compare_exchange(
                state,
                (generation + 1) & GENERATION,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return Err(Error::BrokenBarrier("broken while the action ran"));
        }
        self.clear_marks(generation);
        futex::wake_all(self.state);
        Ok(index)
    }

    fn has_dead_arrival(&self, generation: u32, liveness: &impl Liveness) -> bool {
        self.marks.iter().any(|cell| {
            // Relaxed: the marks were published by the arrivals' Release CASes, which our
            // Acquire load of the state has seen.
            let value = cell.load(Ordering::Relaxed);
            value as u32 == generation + 1
                && OwnerId::from_bits((value >> 32) as u32)
                    .is_none_or(|owner| !liveness.is_alive(owner))
        })
    }

    fn clear_marks(&self, generation: u32) {
        for cell in self.marks {
            // Relaxed: marks of a finished generation only matter to the dead-party check,
            // which compares generations.
            let value = cell.load(Ordering::Relaxed);
            if value as u32 == generation + 1 {
                let _ = cell.compare_exchange(value, 0, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
    }

    /// Breaks the barrier if it still shows `state`'s generation.
    fn break_generation(&self, state: u32) {
        let mut current = state;
        while current & GENERATION == state & GENERATION && current & BROKEN == 0 {
            // Release: waiters that see BROKEN see why (nothing more to publish).
            match self.state.compare_exchange(
                current,
                current | BROKEN,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    futex::wake_all(self.state);
                    return;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Breaks the barrier: current and future waiters fail until [`reset`](Self::reset).
    pub fn abort(&self) {
        // Release: as in break_generation.
        self.state.fetch_or(BROKEN, Ordering::Release);
        futex::wake_all(self.state);
    }

    /// Returns the barrier to its initial state: a new generation, not broken. Parties
    /// waiting in the current generation fail with [`Error::BrokenBarrier`]. The reset
    /// first breaks the current generation, so that no arrival and no trip can change it
    /// meanwhile; then it turns that generation's marks into reset marks, and only then
    /// moves to the next generation. A waiter that sees a new generation checks its mark to
    /// tell a reset from a trip. (Marking before the generation is frozen would let a trip
    /// slip in between: a released party would then read a reset mark and fail while the
    /// party that tripped passes.)
    pub fn reset(&self) {
        // Acquire (load, and the CAS both ways): whatever state we freeze, we must see the
        // marks of every arrival counted in it; every write to the state word is an RMW,
        // so this synchronizes with all those arrivals' Release CASes.
        let mut current = self.state.load(Ordering::Acquire);
        while current & BROKEN == 0 {
            match self.state.compare_exchange_weak(
                current,
                current | BROKEN,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => current |= BROKEN,
                Err(actual) => current = actual, // an arrival, a trip or a break: again
            }
        }
        // Frozen: while BROKEN is set no arrival is counted and no trip happens.
        let generation = current & GENERATION;
        for cell in self.marks {
            // Relaxed: ordered before the waiters' view by the Release CAS below.
            let value = cell.load(Ordering::Relaxed);
            if value as u32 == generation + 1 {
                let reset = (value & !u64::from(u32::MAX)) | u64::from(RESET_MARK);
                let _ = cell.compare_exchange(value, reset, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
        let next = (generation + 1) & GENERATION;
        // Release: publishes the reset marks with the new generation. Only another reset
        // can change a frozen state; if one did, it has reset this generation: done.
        let _ = self
            .state
            .compare_exchange(current, next, Ordering::Release, Ordering::Relaxed);
        futex::wake_all(self.state);
    }

    /// Parties that have arrived in the current generation.
    pub fn n_waiting(&self) -> u32 {
        // Relaxed: a snapshot.
        (self.state.load(Ordering::Relaxed) >> ARRIVED_SHIFT) & MAX_ARRIVED
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        // Relaxed: a snapshot.
        self.state.load(Ordering::Relaxed) & BROKEN != 0
    }
}

trait CorruptBarrier {
    fn corrupt_barrier(detail: String) -> Self;
}

impl CorruptBarrier for Error {
    fn corrupt_barrier(detail: String) -> Self {
        Error::Corrupt {
            field: "barrier",
            detail,
        }
    }
}

#[cfg(not(loom))]
pub(crate) use handle::retire_owner_slot;
#[cfg(not(loom))]
pub use handle::Barrier;

#[cfg(not(loom))]
mod handle {
    use super::{RawBarrier, MAX_PARTIES};
    use shmarena_engine::sync::{AtomicU32, AtomicU64, Ordering};
    use shmarena_engine::{Error, Object, ObjectKind, Region, Result, TypeDescriptor};
    use std::ptr::NonNull;
    use std::time::{Duration, Instant};

    const HEADER: u64 = 64;

    /// A named barrier for `parties` processes.
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-barrier-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let start = region.barrier("start", 1)?; // every process passes `parties` = 1 at once
    /// assert_eq!(start.wait()?, 0);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    #[derive(Clone)]
    pub struct Barrier {
        state: NonNull<AtomicU32>,
        marks: NonNull<AtomicU64>,
        slots: usize,
        parties: u32,
        object: Object,
    }

    // SAFETY: the words are atomics in the shared mapping, which `object` keeps alive.
    unsafe impl Send for Barrier {}
    // SAFETY: as above.
    unsafe impl Sync for Barrier {}

    impl std::fmt::Debug for Barrier {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Barrier")
                .field("name", &self.object.info().name)
                .field("parties", &self.parties)
                .field("waiting", &self.raw().n_waiting())
                .finish_non_exhaustive()
        }
    }

    impl Barrier {
        /// The object's name.
        pub fn name(&self) -> &str {
            &self.object.info().name
        }

        /// The catalog descriptor of a barrier for `parties`.
        pub fn descriptor(parties: u32) -> TypeDescriptor {
            TypeDescriptor::new(ObjectKind::Barrier, 0, 0, u64::from(parties))
        }

        /// Opens the barrier `name`, creating it for `parties` if absent.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] unless `1 <= parties <= 32767`; [`Error::TypeMismatch`]
        /// (also for another party count); catalog and arena errors.
        pub fn get_or_create(region: &Region, name: &str, parties: u32) -> Result<Self> {
            if parties == 0 || parties > MAX_PARTIES {
                return Err(Error::InvalidArgument(format!(
                    "a barrier needs 1 to {MAX_PARTIES} parties, not {parties}"
                )));
            }
            let slots = region.header().participant_capacity;
            let size = HEADER + 8 * slots;
            let (object, _) = crate::sweep::get_or_create_object(
                region,
                name,
                &Self::descriptor(parties),
                size,
                |object| {
                    let words = object.atomics::<std::sync::atomic::AtomicU32>(0, 2)?;
                    // SAFETY: two words were checked inside the body just above.
                    let parties_word = unsafe { &*words.as_ptr().add(1) };
                    // Relaxed: published by the catalog's Release.
                    parties_word.store(parties, Ordering::Relaxed);
                    Ok(())
                },
            )?;
            if object.info().descriptor.capacity != u64::from(parties) {
                return Err(Error::TypeMismatch {
                    name: name.to_owned(),
                    expected: Self::descriptor(parties).to_string(),
                    found: object.info().descriptor.to_string(),
                });
            }
            Self::from_object(object)
        }

        /// Opens the existing barrier `name`, for however many parties it was created.
        ///
        /// # Errors
        /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`] if `name` is another kind,
        /// [`Error::Corrupt`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            // The party count is the descriptor's capacity, which the kind check ignores.
            Self::from_object(crate::sweep::open_object(
                region,
                name,
                &Self::descriptor(1),
            )?)
        }

        fn from_object(object: Object) -> Result<Self> {
            let parties = object.info().descriptor.capacity;
            let parties = match u32::try_from(parties) {
                Ok(parties) if (1..=MAX_PARTIES).contains(&parties) => parties,
                _ => {
                    return Err(Error::Corrupt {
                        field: "barrier parties",
                        detail: format!("object {:?}: {parties}", object.info().name),
                    })
                }
            };
            let slots = object.region().header().participant_capacity;
            let state = object.atomics::<std::sync::atomic::AtomicU32>(0, 1)?;
            let marks = object.atomics::<std::sync::atomic::AtomicU64>(HEADER, slots)?;
            Ok(Self {
                state,
                marks,
                slots: slots as usize,
                parties,
                object,
            })
        }

        fn raw(&self) -> RawBarrier<'_> {
            // SAFETY: the state word and `slots` marks were checked inside the body; the
            // mapping outlives `self`.
            unsafe {
                RawBarrier {
                    state: self.state.as_ref(),
                    parties: self.parties,
                    marks: std::slice::from_raw_parts(self.marks.as_ptr(), self.slots),
                }
            }
        }

        /// Waits until all parties have arrived; returns this arrival's index.
        ///
        /// # Errors
        /// [`Error::BrokenBarrier`] if a party dies while others wait, a wait times out,
        /// or the barrier was aborted.
        pub fn wait(&self) -> Result<u32> {
            let region = self.object.region();
            self.raw().wait(region.participant_id(), region, None)
        }

        /// As [`wait`](Self::wait), breaking the barrier after `timeout`.
        ///
        /// # Errors
        /// As [`wait`](Self::wait).
        pub fn wait_timeout(&self, timeout: Duration) -> Result<u32> {
            let region = self.object.region();
            self.raw().wait(
                region.participant_id(),
                region,
                Some(Instant::now() + timeout),
            )
        }

        /// As [`wait_timeout`](Self::wait_timeout) (with `None`: no timeout), also asking
        /// `interrupted` every [`INTERRUPT_CHECK`](super::INTERRUPT_CHECK) while waiting;
        /// when it says so, the barrier breaks as on a timeout.
        ///
        /// # Errors
        /// As [`wait`](Self::wait).
        pub fn wait_interruptible(
            &self,
            timeout: Option<Duration>,
            interrupted: &mut dyn FnMut() -> bool,
        ) -> Result<u32> {
            self.wait_with_action(timeout, interrupted, None)
        }

        /// As [`wait_interruptible`](Self::wait_interruptible), where the last party to
        /// arrive runs `action` before any party leaves (Python's `Barrier(action=...)`).
        /// If the action fails the barrier breaks: its error goes to the last party, the
        /// others get [`Error::BrokenBarrier`].
        ///
        /// # Errors
        /// As [`wait`](Self::wait), and the action's.
        pub fn wait_with_action(
            &self,
            timeout: Option<Duration>,
            interrupted: &mut dyn FnMut() -> bool,
            action: Option<&mut dyn FnMut() -> Result<()>>,
        ) -> Result<u32> {
            let region = self.object.region();
            let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
            self.raw().wait_with_action(
                region.participant_id(),
                region,
                deadline,
                interrupted,
                action,
            )
        }

        /// Breaks the barrier.
        pub fn abort(&self) {
            self.raw().abort();
        }

        /// Clears a broken barrier for new rounds.
        pub fn reset(&self) {
            self.raw().reset();
        }

        /// Whether the barrier is broken.
        pub fn is_broken(&self) -> bool {
            self.raw().is_broken()
        }

        /// Parties needed to trip.
        pub fn parties(&self) -> u32 {
            self.parties
        }

        /// Parties waiting now.
        pub fn n_waiting(&self) -> u32 {
            self.raw().n_waiting()
        }
    }

    /// Rewrites the arrival marks of owners of participant slot `slot` to
    /// `OwnerId::DEAD` (a sweep of the retired slot: see `crate::sweep`): a dead party's
    /// arrival, as before.
    pub(crate) fn retire_owner_slot(object: &Object, slot: u32) -> Result<()> {
        let marks = (object.info().size.saturating_sub(HEADER)) / 8;
        for mark in object.atomic_slice::<AtomicU64>(HEADER, marks)? {
            shmarena_engine::liveness::retire_owner_field(mark, 32, slot, |_| true)?;
        }
        Ok(())
    }
}
