//! `Queue<T>`: a bounded multi-producer multi-consumer FIFO queue across processes, in
//! which a process killed inside `push` or `pop` never stalls the others.
//!
//! ```text
//! body:
//!   0    head: | claimant of the last pop: 31 bits (at 32) | 0 (31) |
//!              | next ticket to pop: 31 bits |
//!   128  tail: | claimant of the last push                 | next ticket to push         |
//!        (128 bytes apart: CPUs fetch cache lines in pairs, and the two are written by
//!        different sides)
//!   192  not-empty sequence (u32, futex) | 196 sleeping poppers (u32) |
//!   200  not-full sequence (u32, futex)  | 204 sleeping pushers (u32)
//!   208  lost: u64, elements whose consumer died after claiming them
//!   216  skipped: u64, pushes abandoned by a producer that died before finishing
//!   256  sleeping poppers' registry (8 words), 320 sleeping pushers' (see `sleepers`)
//!   384  slots: capacity x (stamp: u64, then T in 8-byte words)
//!
//! ticket: | lap | slot index (as many bits as capacity - 1 needs) |   31 bits in all
//! stamp:  | owner id: 31 bits | ticket: 31 bits | state: 2 bits |
//!   EMPTY(t)            slot free for the push with ticket t
//!   WRITING(t, owner)   the push with ticket t, claimed by owner, is unfinished
//!   FULL(t)             element t is ready
//!   READING(t, owner)   the pop with ticket t, claimed by owner, is unfinished
//! ```
//!
//! Vyukov's bounded queue (crossbeam's `ArrayQueue`), with every claim named. A push whose
//! slot shows `EMPTY(t)` for the tail's ticket `t` claims it with one compare-exchange of
//! the tail word, from `(t, last claimant)` to `(t + 1, me)`; it copies its element in and
//! stores `FULL(t)` (Release: the push's linearization point). A pop whose slot shows
//! `FULL(h)` for the head's ticket `h` claims it with one compare-exchange of the head word
//! (its linearization point), copies the element out and stores `EMPTY` for the slot's next
//! lap. One read-modify-write per side, as in Vyukov's queue.
//!
//! Vyukov's queue forgets its claimants: a producer killed between its tail
//! compare-exchange and its stamp store leaves a slot every consumer waits on forever. Here
//! the tail word names the last claimant, and a push, before it replaces that name by its
//! own, writes it into the previous ticket's slot if that slot still shows `EMPTY` (`EMPTY`
//! -> `WRITING(t, claimant)`, one compare-exchange, seldom needed: the previous push has
//! usually stored `FULL` by then). So every claim is named: by the tail word while it is
//! the last, by its slot after that. Pops name theirs the same way, in the head word and
//! with `FULL` -> `READING`. A consumer that finds the head ticket claimed and unpublished
//! asks whether its claimant lives: if so, the element is on its way (`try_pop` reports
//! empty; `pop` sleeps and looks again); if not, it skips the slot (stores `EMPTY` for the
//! next lap; head then moves past it). That push never returned `Ok`, so nothing
//! acknowledged is lost. A producer that finds its slot still held by the previous lap's
//! unfinished pop (`READING`, or `FULL` with the head word naming a claimant) waits for it
//! (up to `READER_SPINS` looks, the last one asking the kernel) and reports the queue full
//! if that consumer still lives; it frees the slot if the consumer is dead: the element
//! went with it (counted in `lost`). A producer of the previous lap still writing means
//! every slot is claimed: full at once.
//!
//! Kills are final: nobody completes another process's operation. A push killed before its
//! `FULL` store never takes effect (its slot is skipped, and no consumer can have seen the
//! element first); after it, it is done. A pop killed after its claim took effect (the
//! element left the queue with it, and is counted in `lost`); before it, it never did.
//!
//! Guarantees: every element whose `push` returned `Ok` is popped exactly once, except at
//! most one per consumer killed inside `pop`. Elements come out in ticket order. A pusher
//! frozen (SIGSTOP) between claim and `FULL` delays the consumers of that one slot until it
//! runs again; killed, it delays them at most one liveness check. One limit, as for any
//! queue whose tickets wrap (crossbeam's on 32-bit targets): a process frozen between
//! reading its slot and its compare-exchange while exactly a multiple of 2^31 tickets
//! pass, the same claimant last at both ends, would claim on a stale reading.
//!
//! A ticket keeps the slot index in its low bits and the lap above them, so tickets wrap at
//! a lap's end whatever the capacity (crossbeam's layout), and a slot index needs no
//! division. [`MAX_CAPACITY`] leaves at least three bits of lap: a stamp tells this lap
//! from the one before and the one after.

use std::time::Instant;

use shmarena_engine::barrier;
use shmarena_engine::futex;
use shmarena_engine::sync::{AtomicU32, AtomicU64, Backoff, Ordering};
use shmarena_engine::{Liveness, OwnerId};

use crate::mutex::next_sleep;
pub use crate::sleepers::Sleepers;

/// Byte offsets in a queue's body (the diagram above): what the handle and `inspect` read.
pub mod layout {
    /// Next ticket to pop and the claimant of the last pop (u64).
    pub const HEAD: u64 = 0;
    /// Next ticket to push and the claimant of the last push (u64).
    pub const TAIL: u64 = 128;
    /// Not-empty futex sequence (u32).
    pub const NOT_EMPTY: u64 = 192;
    /// Sleeping poppers (u32).
    pub const POP_SLEEPERS: u64 = 196;
    /// Not-full futex sequence (u32).
    pub const NOT_FULL: u64 = 200;
    /// Sleeping pushers (u32).
    pub const PUSH_SLEEPERS: u64 = 204;
    /// Elements lost with a consumer that died holding them (u64).
    pub const LOST: u64 = 208;
    /// Pushes abandoned by producers that died before finishing them (u64).
    pub const SKIPPED: u64 = 216;
    /// Who sleeps in `pop` ([`REGISTRY_WORDS`] words, see [`crate::sleepers`]).
    pub const POP_REGISTRY: u64 = 256;
    /// Who sleeps in `push` (as `POP_REGISTRY`).
    pub const PUSH_REGISTRY: u64 = 320;
    /// Words of a sleeper registry (a cache line: the missed wake-ups, 14 entries).
    pub const REGISTRY_WORDS: u64 = 8;
    /// First slot.
    pub const SLOTS: u64 = 384;
}

/// The most slots a queue (or a ring of an unbounded queue) has.
pub const MAX_CAPACITY: u64 = 1 << 28;

const EMPTY: u64 = 0;
const WRITING: u64 = 1;
const FULL: u64 = 2;
const READING: u64 = 3;
const TICKET_MASK: u64 = (1 << 31) - 1;

/// Where an argument rests on the single total order of SeqCst accesses to different
/// words (the ring-closing protocol: a push's claim, then its load of the link; a
/// consumer's load of the link, then its loads of head and tail): nothing in shipped code,
/// whose accesses there are SeqCst. Loom models SeqCst accesses as acquire and release
/// only (tokio-rs/loom#180), so under loom a SeqCst fence here gives the models the order
/// the language gives the accesses.
#[inline(always)]
fn seq_cst_point() {
    #[cfg(loom)]
    shmarena_engine::sync::fence(Ordering::SeqCst);
}

/// Spins a `try_pop` waits for a live producer that is writing the head element.
const WRITER_SPINS: u32 = 64;

/// Looks of a push at a slot a live consumer is still reading out (the previous lap's
/// element) before it reports the queue full: the read takes nanoseconds unless the
/// consumer was descheduled, and a full answer under contention would be a false one (in
/// an unbounded queue, a needless new ring).
const READER_SPINS: u32 = 64;

/// Attempts of one `try_push`/`try_pop` before it gives up (reporting full or empty):
/// contention alone never needs this many, and a corrupted stamp must not spin forever.
const MAX_ATTEMPTS: u32 = 1 << 16;

/// Where the owner field starts in a stamp.
const OWNER_SHIFT: u32 = 33;

/// Where the claimant starts in the head and tail words.
const CLAIMANT_SHIFT: u32 = 32;

#[inline]
fn stamp(state: u64, ticket: u64, owner: Option<OwnerId>) -> u64 {
    state
        | ((ticket & TICKET_MASK) << 2)
        | (u64::from(owner.map_or(0, OwnerId::bits)) << OWNER_SHIFT)
}

/// Whether a stamp is a claim (its owner field names the claimant).
#[cfg(not(loom))]
#[inline]
fn holds_claim(stamp: u64) -> bool {
    matches!(state_of(stamp), WRITING | READING)
}

#[inline]
fn state_of(stamp: u64) -> u64 {
    stamp & 3
}

#[inline]
fn ticket_of(stamp: u64) -> u64 {
    (stamp >> 2) & TICKET_MASK
}

#[inline]
fn owner_of(stamp: u64) -> Option<OwnerId> {
    OwnerId::from_bits((stamp >> OWNER_SHIFT) as u32)
}

/// Stores the stamp that ends a push or a pop (Release: the slot's data before it).
///
/// Under loom a swap instead: loom 0.7 lets a plain store fall between the read and the
/// write of a concurrent compare-exchange (tokio-rs/loom#254), which the memory model
/// forbids (a read-modify-write reads the value just before its own write in modification
/// order) and no CPU does. A swap is a store that loom orders correctly against
/// `name_claim`'s compare-exchange, so the models check the protocol, not that artifact.
#[inline]
fn finish_stamp(stamp: &AtomicU64, value: u64) {
    #[cfg(not(loom))]
    stamp.store(value, Ordering::Release);
    #[cfg(loom)]
    let _ = stamp.swap(value, Ordering::Release);
}

/// Whether the head or tail word `end` or the stamp of `slot` changed since they were read
/// as `seen` and `current`: a judgement that found nothing to do looks again only then (a
/// state that stays put is a corrupted one, and gets a final answer, not a spin).
#[inline]
fn moved(end: &AtomicU64, seen: u64, slot: RawSlot<'_>, current: u64) -> bool {
    // Relaxed: only compared.
    end.load(Ordering::Relaxed) != seen || slot.stamp.load(Ordering::Relaxed) != current
}

/// Whether `stamp` belongs to ticket `ticket`.
#[inline]
fn is_for(stamp: u64, ticket: u64) -> bool {
    ticket_of(stamp) == ticket & TICKET_MASK
}

/// The claimant a head or tail word names (`None`: nobody yet, or a corrupted word).
#[inline]
fn claimant_of(word: u64) -> Option<OwnerId> {
    OwnerId::from_bits((word >> CLAIMANT_SHIFT) as u32)
}

/// The claimant field of a head or tail word, as the raw bits an owner field of a stamp
/// holds (0: nobody named). Copied as is: a stamp's owner is judged when it is read.
#[inline]
fn claimant_bits(word: u64) -> u64 {
    (word >> CLAIMANT_SHIFT) & 0x7fff_ffff
}

/// The ticket of a head or tail word.
#[inline]
fn ticket_in(word: u64) -> u64 {
    word & TICKET_MASK
}

/// One slot: its stamp and the words of its element.
#[derive(Clone, Copy, Debug)]
pub struct RawSlot<'a> {
    /// The slot's stamp.
    pub stamp: &'a AtomicU64,
    /// The element's words.
    pub words: &'a [AtomicU64],
}

/// The header words of a queue (see the module docs), as the algorithm uses them.
#[derive(Clone, Copy, Debug)]
pub struct QueueHeader<'a> {
    /// Next ticket to pop, and the claimant of the last pop.
    pub head: &'a AtomicU64,
    /// Next ticket to push, and the claimant of the last push.
    pub tail: &'a AtomicU64,
    /// Bumped whenever an element becomes available (futex word).
    pub not_empty: &'a AtomicU32,
    /// Poppers asleep.
    pub pop_sleepers: Sleepers<'a>,
    /// Bumped whenever a slot frees up (futex word).
    pub not_full: &'a AtomicU32,
    /// Pushers asleep.
    pub push_sleepers: Sleepers<'a>,
    /// Elements lost with a consumer that died holding them.
    pub lost: &'a AtomicU64,
    /// Pushes abandoned by producers that died before finishing them.
    pub skipped: &'a AtomicU64,
}

/// What [`RawQueue::try_push_unless_closed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The element is in.
    Yes,
    /// Nothing pushed: every slot holds an element (or one a live consumer is reading).
    Full,
    /// Nothing pushed: the ring is closed (a next one is linked).
    Closed,
}

/// What a push found in a slot the previous lap still holds.
enum Taken {
    /// The queue is full.
    Full,
    /// A consumer that may be alive is copying the previous lap's element out: the queue
    /// is not full, and the slot frees in a moment.
    Reading,
    /// Something moved (or a dead claimant's slot was freed): look again.
    Again,
}

/// Who holds the previous lap's element in a slot a push wants.
enum Holder {
    /// Nobody claimed it: it is still in the queue.
    Queue,
    /// The pop the head word names claimed it.
    Pop(Option<OwnerId>),
    /// Head is elsewhere: past the pop of that element (whoever moved it on named the pop
    /// in the slot first: look again), or behind it (the queue is full).
    Moved,
}

/// Why an attempt of a push or pop did not go through.
#[derive(Clone, Copy, Debug)]
enum Retry {
    /// The slot of `ticket` (from the head or tail word `seen`) is at `current`, not ready
    /// for this side: to be judged (full, empty, a claimant to wait for or skip).
    Unready {
        ticket: u64,
        seen: u64,
        current: u64,
    },
    /// Another process claimed the ticket first (or the word moved): contention.
    Lost,
}

/// How many words each slot of a queue has (its stamp, then its element's words).
///
/// A run-time count (`usize`) serves byte queues and rings; a typed queue's
/// [`ElementWidth`] is a constant, so that its slot addressing and element copies compile
/// to fixed code (no multiplication by a loaded size, no copy loop).
///
/// # Safety
/// `slot_words` returns the same value on every call for a given value of the type, and
/// at least 1: a queue checks its slots against it once and indexes them unchecked after.
pub unsafe trait SlotWidth: Copy {
    /// The words of one slot (at least 1).
    fn slot_words(self) -> usize;
}

// SAFETY: a plain count is the same on every call (queues refuse 0 when they check it).
unsafe impl SlotWidth for usize {
    #[inline]
    fn slot_words(self) -> usize {
        self
    }
}

/// The slot width of a queue of `T`: a stamp and `T`'s words, known at compile time.
pub struct ElementWidth<T>(std::marker::PhantomData<fn() -> T>);

impl<T> ElementWidth<T> {
    /// The width of a slot holding a `T`.
    pub fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T> Default for ElementWidth<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for ElementWidth<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ElementWidth<T> {}

impl<T> std::fmt::Debug for ElementWidth<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ElementWidth({})", self.slot_words())
    }
}

// SAFETY: a constant, at least 1.
unsafe impl<T> SlotWidth for ElementWidth<T> {
    #[inline]
    fn slot_words(self) -> usize {
        1 + crate::words::word_count::<T>()
    }
}

/// The queue algorithm over its shared words (used by the handle and by loom models).
#[derive(Clone, Copy)]
pub struct RawQueue<'a, W: SlotWidth = usize> {
    header: QueueHeader<'a>,
    /// Every slot's words, `width.slot_words()` apiece: the stamp, then the element's
    /// words. Slot `i` serves the tickets whose index bits are `i`.
    slots: &'a [AtomicU64],
    width: W,
    capacity: u64,
    /// Tickets of one lap: the capacity rounded up to a power of two.
    lap: u64,
}

impl<'a> RawQueue<'a> {
    /// The queue of `slots.len() / slot_words` slots of `slot_words` words each (a stamp,
    /// then the element); `None` unless that is a whole number from 1 to [`MAX_CAPACITY`]
    /// of slots of at least one word.
    #[inline]
    pub fn new(header: QueueHeader<'a>, slots: &'a [AtomicU64], slot_words: usize) -> Option<Self> {
        if slot_words == 0 || slots.is_empty() || slots.len() % slot_words != 0 {
            return None;
        }
        let capacity = (slots.len() / slot_words) as u64;
        Self::with_capacity(header, slots, slot_words, capacity)
    }
}

impl<'a, W: SlotWidth> RawQueue<'a, W> {
    /// As [`RawQueue::new`], for a caller that knows the capacity, with slots of `width`:
    /// checked with a multiplication, not divided out (a ring's queue is built per
    /// operation, and two divisions by a run-time slot size cost more than the rest of the
    /// check).
    #[inline]
    pub fn with_capacity(
        header: QueueHeader<'a>,
        slots: &'a [AtomicU64],
        width: W,
        capacity: u64,
    ) -> Option<Self> {
        let slot_words = width.slot_words();
        let whole = slot_words != 0
            && (1..=MAX_CAPACITY).contains(&capacity)
            && (capacity as usize).checked_mul(slot_words) == Some(slots.len());
        // SAFETY: just checked.
        whole.then(|| unsafe { Self::new_unchecked(header, slots, width, capacity) })
    }

    /// As [`RawQueue::with_capacity`] without its checks, for a handle that made them once,
    /// with slots of `width`.
    ///
    /// # Safety
    /// `width.slot_words() >= 1`, `1 <= capacity <= MAX_CAPACITY`, and `slots` holds
    /// exactly `capacity * width.slot_words()` words (slot lookups index it unchecked).
    #[inline]
    pub unsafe fn new_unchecked(
        header: QueueHeader<'a>,
        slots: &'a [AtomicU64],
        width: W,
        capacity: u64,
    ) -> Self {
        debug_assert!(width.slot_words() >= 1 && (1..=MAX_CAPACITY).contains(&capacity));
        debug_assert_eq!(slots.len(), capacity as usize * width.slot_words());
        Self {
            header,
            slots,
            width,
            capacity,
            lap: capacity.next_power_of_two(),
        }
    }

    /// The same queue with slots of `width` (a typed handle's constant width).
    ///
    /// # Safety
    /// `width.slot_words()` equals this queue's slot width.
    #[inline]
    pub unsafe fn with_width<W2: SlotWidth>(&self, width: W2) -> RawQueue<'a, W2> {
        debug_assert_eq!(width.slot_words(), self.width.slot_words());
        RawQueue {
            header: self.header,
            slots: self.slots,
            width,
            capacity: self.capacity,
            lap: self.lap,
        }
    }
}

impl<W: SlotWidth> std::fmt::Debug for RawQueue<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawQueue")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<W: SlotWidth> RawQueue<'_, W> {
    /// The slot index of `ticket` (a slot only if below the capacity).
    #[inline]
    fn index_of(&self, ticket: u64) -> u64 {
        ticket & (self.lap - 1)
    }

    /// The ticket after `ticket`: the next slot, or the first slot of the next lap.
    #[inline]
    fn next(&self, ticket: u64) -> u64 {
        if self.index_of(ticket) < self.capacity - 1 {
            (ticket + 1) & TICKET_MASK
        } else {
            ((ticket & !(self.lap - 1)) + self.lap) & TICKET_MASK
        }
    }

    /// The ticket before `ticket`.
    #[inline]
    fn previous(&self, ticket: u64) -> u64 {
        if self.index_of(ticket) != 0 {
            ticket - 1
        } else {
            (ticket.wrapping_sub(self.lap) & TICKET_MASK) | (self.capacity - 1)
        }
    }

    /// The ticket of `ticket`'s slot one lap later.
    #[inline]
    fn next_lap(&self, ticket: u64) -> u64 {
        ticket.wrapping_add(self.lap) & TICKET_MASK
    }

    /// Whether `stamp` is for `ticket`'s slot one or more laps later (fewer than half the
    /// ticket space ahead): `ticket` is done with. Usually one lap; more where pushes into
    /// a closing ring gave their tickets up one lap after another (each give-up frees the
    /// slot for the next lap's ticket before head has passed it).
    #[inline]
    fn is_later_lap(&self, stamp: u64, ticket: u64) -> bool {
        let ahead = ticket_of(stamp).wrapping_sub(ticket) & TICKET_MASK;
        let shift = self.lap.trailing_zeros();
        let laps = ahead >> shift;
        ahead & (self.lap - 1) == 0 && laps >= 1 && laps < (1 << 30) >> shift
    }

    /// The ticket of `ticket`'s slot one lap earlier.
    #[inline]
    fn previous_lap(&self, ticket: u64) -> u64 {
        ticket.wrapping_sub(self.lap) & TICKET_MASK
    }

    /// The slot width.
    #[cfg_attr(loom, allow(dead_code))] // the unbounded queue's handle's
    pub(crate) fn width(&self) -> W {
        self.width
    }

    /// Every slot's stamp, slot 0 first.
    #[cfg_attr(loom, allow(dead_code))] // the handle's (initializing, sweeping)
    fn stamps(&self) -> impl Iterator<Item = &AtomicU64> {
        self.slots.iter().step_by(self.width.slot_words())
    }

    /// The slot serving `ticket`; `None` for a ticket no slot serves (read from a
    /// corrupted head or tail word).
    #[inline]
    fn slot_for(&self, ticket: u64) -> Option<RawSlot<'_>> {
        let index = self.index_of(ticket);
        if index >= self.capacity {
            return None;
        }
        let slot_words = self.width.slot_words();
        let first = index as usize * slot_words;
        // SAFETY: index < capacity, and `with_capacity` checked that `slots` holds capacity
        // slots of slot_words (>= 1) words: first + slot_words <= slots.len(), and the
        // stamp (word `first`) and the element (the rest) lie inside.
        unsafe {
            Some(RawSlot {
                stamp: self.slots.get_unchecked(first),
                words: self.slots.get_unchecked(first + 1..first + slot_words),
            })
        }
    }

    /// Writes `claimant` (an owner field's raw bits, from a head or tail word; DEAD if its
    /// participant slot has moved on) into the slot of its claim `ticket` if the slot is still
    /// `unnamed` (EMPTY for a push, FULL for a pop) for that ticket, as `named` (WRITING,
    /// READING): done before the head or tail word that names the claimant is overwritten,
    /// so a claim stays named until it is finished (module docs).
    #[inline]
    fn name_claim(
        &self,
        ticket: u64,
        [unnamed, named]: [u64; 2],
        claimant: u64,
        liveness: &impl Liveness,
    ) {
        let Some(slot) = self.slot_for(ticket) else {
            return;
        };
        // Relaxed: ordered after the Acquire load of the head or tail word that named the
        // claimant, which follows the claimant's own read of this stamp: we read that state
        // or a later one.
        let current = slot.stamp.load(Ordering::Relaxed);
        if current == stamp(unnamed, ticket, None) {
            // SeqCst: before our own claim (which replaces the name in the head or tail
            // word) in the total order; a failure means the claimant finished meanwhile.
            // A claimant whose participant slot has moved on is named DEAD: the sweep may
            // already have rewritten the word we read it from (and scanned this slot), and
            // its id may be given to a new process once its slot restarts. (From shared
            // memory alone: this runs whenever the previous claim is still in progress.)
            let named_owner = OwnerId::from_bits(claimant as u32)
                .filter(|owner| liveness.may_be_alive(*owner))
                .unwrap_or(OwnerId::DEAD);
            let _ = slot.stamp.compare_exchange(
                current,
                stamp(named, ticket, Some(named_owner)),
                Ordering::SeqCst,
                Ordering::Relaxed,
            );
        }
    }

    /// Wakes a sleeper on the other side, if there is one. Called right after the store
    /// of a stamp (the publication). No shared write when nobody sleeps: the fast path of
    /// push and pop stays free of a common contended word.
    #[inline]
    fn announce(sequence: &AtomicU32, sleepers: &Sleepers<'_>, liveness: &impl Liveness) {
        // The light side of the Dekker pairing with the heavy barrier in `wait_until` (see
        // `shmarena_engine::barrier`): either we see the sleeper, or its re-check after its
        // barrier sees our stamp. Relaxed: the barriers order it.
        barrier::light();
        if sleepers.any() {
            Self::wake_one(sequence, sleepers, liveness);
        }
    }

    /// The wake-up of `announce`, out of line (the fast path only reads the count). A
    /// wake-up that woke nobody may be the sign of a sleeper that died asleep.
    #[cold]
    #[inline(never)]
    fn wake_one(sequence: &AtomicU32, sleepers: &Sleepers<'_>, liveness: &impl Liveness) {
        // Release: a sleeper that reads the new value (Acquire) also sees our stamp.
        sequence.fetch_add(1, Ordering::Release);
        if futex::wake(sequence, 1) == 0 {
            sleepers.missed_wake(liveness);
        }
    }

    /// Waits on `sequence` until `attempt` succeeds or `deadline` passes; whether it
    /// succeeded. The wait is announced once (the sleeper count raised, then the heavy
    /// barrier), and stays announced for every sleep of the call: once the barrier is
    /// past, every publisher sees the count and bumps the sequence, so each round only
    /// reads the sequence before its attempt and sleeps while it is unchanged. (One
    /// membarrier per blocking call, not per sleep: it interrupts every CPU running an
    /// attached process.)
    pub(crate) fn wait_until(
        sequence: &AtomicU32,
        sleepers: Sleepers<'_>,
        me: OwnerId,
        deadline: Option<Instant>,
        mut attempt: impl FnMut() -> bool,
    ) -> bool {
        // The count before the barrier (see `announce`), and who we are, for reapers.
        let announced = sleepers.enter(me);
        barrier::heavy();
        let done = loop {
            // Acquire: pairs with the Release bump in `announce`.
            let observed = sequence.load(Ordering::Acquire);
            if attempt() {
                break true;
            }
            let Some(timeout) = next_sleep(deadline) else {
                break false;
            };
            futex::wait(sequence, observed, Some(timeout));
        };
        sleepers.leave(me, announced);
        done
    }

    /// Copies `words` of element data in (the caller owns the slot).
    #[inline]
    fn write(slot: RawSlot<'_>, words: &[u64]) {
        for (cell, word) in slot.words.iter().zip(words) {
            // Relaxed: published by the Release store of FULL.
            cell.store(*word, Ordering::Relaxed);
        }
    }

    /// Appends an element given as words; `false` (nothing pushed) if the queue is full:
    /// every slot holds an element or one a live consumer is reading.
    #[must_use = "a push into a full queue pushes nothing"]
    #[inline]
    pub fn try_push(&self, words: &[u64], me: OwnerId, liveness: &impl Liveness) -> bool {
        self.push_once(words, me, liveness, None) == Pushed::Yes
    }

    /// As [`try_push`](Self::try_push) into a ring that may be *closed*: a nonzero
    /// `closed` word (the link to the next ring of a
    /// [`RawUnboundedQueue`](crate::unbounded_queue::RawUnboundedQueue)). The word is read
    /// after the ticket is claimed, and a claim that finds it set is given up (the slot
    /// left as a skipped push): so once a consumer has seen the ring closed and its head
    /// ticket never claimed, nothing more is ever pushed into it.
    #[inline]
    pub fn try_push_unless_closed(
        &self,
        words: &[u64],
        me: OwnerId,
        liveness: &impl Liveness,
        closed: &AtomicU64,
    ) -> Pushed {
        self.push_once(words, me, liveness, Some(closed))
    }

    /// One push: a first attempt in straight-line code, and the loop of further attempts
    /// out of line (a push that meets contention or a taken slot).
    #[inline]
    fn push_once(
        &self,
        words: &[u64],
        me: OwnerId,
        liveness: &impl Liveness,
        closed: Option<&AtomicU64>,
    ) -> Pushed {
        match self.push_attempt(words, me, liveness, closed) {
            Ok(pushed) => pushed,
            Err(retry) => self.push_retried(words, me, liveness, closed, retry),
        }
    }

    /// The attempts of a push after its first one did not go through (`first`: why).
    #[cold]
    #[inline(never)]
    fn push_retried(
        &self,
        words: &[u64],
        me: OwnerId,
        liveness: &impl Liveness,
        closed: Option<&AtomicU64>,
        first: Retry,
    ) -> Pushed {
        let backoff = Backoff::new();
        let mut reader_spins = 0;
        let mut retry = first;
        for _ in 0..MAX_ATTEMPTS {
            match retry {
                Retry::Lost => backoff.spin(),
                Retry::Unready {
                    ticket,
                    seen,
                    current,
                } => {
                    let patient = reader_spins < READER_SPINS;
                    match self.judge_taken(ticket, seen, current, liveness, patient) {
                        Taken::Full => return Pushed::Full,
                        Taken::Reading => {
                            // The queue is not full: a consumer is copying out the previous
                            // lap's element. Wait a little for the slot, then report full
                            // (an unbounded queue links a ring instead of waiting on).
                            if reader_spins >= READER_SPINS {
                                return Pushed::Full;
                            }
                            reader_spins += 1;
                            backoff.snooze();
                        }
                        Taken::Again => backoff.spin(),
                    }
                }
            }
            retry = match self.push_attempt(words, me, liveness, closed) {
                Ok(pushed) => return pushed,
                Err(retry) => retry,
            };
        }
        Pushed::Full
    }

    /// One attempt of a push: claim the tail's ticket if its slot is free for it, write
    /// the element and publish it. `Err` when the slot is not free for the ticket
    /// (`Retry::Unready`, judged by the caller) or another push claimed it first.
    // Always: the body of both the first attempt and the retry loop (one algorithm).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn push_attempt(
        &self,
        words: &[u64],
        me: OwnerId,
        liveness: &impl Liveness,
        closed: Option<&AtomicU64>,
    ) -> Result<Pushed, Retry> {
        // Acquire: after the last claimant's claim, so its slot shows what it saw or later
        // (see `name_claim`).
        let seen = self.header.tail.load(Ordering::Acquire);
        let ticket = ticket_in(seen);
        let Some(slot) = self.slot_for(ticket) else {
            return Ok(Pushed::Full); // a corrupted tail: no slot serves it
        };
        // Acquire: a consumer's EMPTY store (Release) ends its reads of the slot.
        let current = slot.stamp.load(Ordering::Acquire);
        if current != stamp(EMPTY, ticket, None) {
            return Err(Retry::Unready {
                ticket,
                seen,
                current,
            });
        }
        // The claim is in one total order with the `closed` load below and with a
        // consumer's loads of the link and of `tail` (`RawQueue::is_drained`).
        let named = [EMPTY, WRITING];
        if !self.move_on(self.header.tail, seen, ticket, named, me.bits(), liveness) {
            return Err(Retry::Lost);
        }
        fail::fail_point!("queue::push_after_claim");
        // SeqCst: after our claim in the total order (see above): a consumer that saw the
        // ring closed before it saw this ticket unclaimed makes us see it closed.
        seq_cst_point();
        if closed.is_some_and(|next| next.load(Ordering::SeqCst) != 0) {
            // As a consumed slot's EMPTY store (our claim wrote nothing); a consumer
            // waiting on this ticket wakes to move past it.
            finish_stamp(slot.stamp, stamp(EMPTY, self.next_lap(ticket), None));
            Self::announce(self.header.not_empty, &self.header.pop_sleepers, liveness);
            return Ok(Pushed::Closed);
        }
        Self::write(slot, words);
        fail::fail_point!("queue::push_before_publish");
        // Publishes the element to the consumer's Acquire load (Release); the store half of
        // the pairing in `announce`.
        finish_stamp(slot.stamp, stamp(FULL, ticket, None));
        Self::announce(self.header.not_empty, &self.header.pop_sleepers, liveness);
        Ok(Pushed::Yes)
    }

    /// A push for `ticket` (from the tail word `seen`) found its slot at `current`, not
    /// free: whether the queue is full, a consumer is reading the previous lap's element
    /// out, or the push should look again (the slot was freed from a dead claimant, or
    /// moved on meanwhile). While `patient`, a consumer whose participant slot says it may
    /// be alive is taken to be reading without asking the kernel (as `judge_unready`
    /// trusts a writer); the last look asks.
    #[cold]
    fn judge_taken(
        &self,
        ticket: u64,
        seen: u64,
        current: u64,
        liveness: &impl Liveness,
        patient: bool,
    ) -> Taken {
        let Some(slot) = self.slot_for(ticket) else {
            return Taken::Full;
        };
        // Look again only if something moved: a slot that keeps a state it cannot have
        // (a corrupted stamp) makes the queue full, not a push that spins.
        let again = || {
            if moved(self.header.tail, seen, slot, current) {
                Taken::Again
            } else {
                Taken::Full
            }
        };
        let previous_lap = self.previous_lap(ticket);
        if !is_for(current, previous_lap) {
            return again(); // tail moved on meanwhile
        }
        let (holder, reading) = match state_of(current) {
            FULL => match self.holder(previous_lap) {
                Holder::Queue => return Taken::Full,
                Holder::Pop(claimant) => (claimant, true),
                // Head moved past the pop's claim: whoever moved it named the claimant in the
                // slot first, so a look again sees it (unless the stamp is corrupted: full).
                Holder::Moved => return again(),
            },
            // A producer of the previous lap still writing: every slot is claimed.
            WRITING => (owner_of(current), false),
            READING => (owner_of(current), true),
            _ => {
                // EMPTY of the previous lap: with one slot, the previous ticket itself,
                // claimed by the push the tail word names; it is named in the slot first.
                let last = claimant_bits(seen);
                if last != 0 {
                    self.name_claim(previous_lap, [EMPTY, WRITING], last, liveness);
                }
                return again();
            }
        };
        let alive = |owner| {
            if patient && reading {
                liveness.may_be_alive(owner)
            } else {
                liveness.is_alive(owner)
            }
        };
        // One liveness question (a system call on the last look).
        if holder.is_some_and(alive) {
            // Full until that live claimant finishes; a reader finishes in a moment.
            return if reading { Taken::Reading } else { Taken::Full };
        }
        // A consumer died holding the element (lost), or a producer died before finishing
        // it and no consumer has skipped it yet: free the slot for this lap.
        // SeqCst: a change of a claimed slot, like the claimants' own.
        if slot
            .stamp
            .compare_exchange(
                current,
                stamp(EMPTY, ticket, None),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            let counter = if state_of(current) == WRITING {
                self.header.skipped
            } else {
                self.header.lost
            };
            // Relaxed: a statistic.
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Taken::Again
    }

    /// Who holds the previous lap's element `ticket`, still `FULL` in its slot (see
    /// [`Holder`]).
    fn holder(&self, ticket: u64) -> Holder {
        // Acquire: after the claim the word names (the next pop names it in the slot
        // before it moves head on).
        let head = self.header.head.load(Ordering::Acquire);
        if ticket_in(head) == ticket {
            Holder::Queue
        } else if ticket_in(head) == self.next(ticket) {
            Holder::Pop(claimant_of(head))
        } else {
            Holder::Moved
        }
    }

    /// Removes the oldest element into `words`; `false` if there is none ready.
    #[inline]
    pub fn try_pop(&self, words: &mut [u64], me: OwnerId, liveness: &impl Liveness) -> bool {
        self.try_pop_while(words, me, liveness, || true)
            .unwrap_or(false)
    }

    /// As [`try_pop`](Self::try_pop), in a ring that may stop being the queue's head ring
    /// and later serve again (an unbounded queue's first ring): `current` says whether it
    /// is the head ring, and is asked after each read of the head word, before the pop
    /// acts on what it read. `None` (nothing popped) once it says no.
    ///
    /// The head word is read first: a ring put back into use is renewed first
    /// ([`RawQueue::renew`]: its head moves at least one ticket on), so a pop that read the
    /// word before that fails its claim, and one that read it after asks `current` after
    /// the ring came back.
    #[inline]
    pub fn try_pop_while(
        &self,
        words: &mut [u64],
        me: OwnerId,
        liveness: &impl Liveness,
        current: impl Fn() -> bool,
    ) -> Option<bool> {
        match self.pop_attempt(words, me, liveness, &current) {
            Ok(popped) => popped,
            Err(retry) => self.pop_retried(words, me, liveness, &current, retry),
        }
    }

    /// The attempts of a pop after its first one did not go through (`first`: why).
    #[cold]
    #[inline(never)]
    fn pop_retried(
        &self,
        words: &mut [u64],
        me: OwnerId,
        liveness: &impl Liveness,
        current: &impl Fn() -> bool,
        first: Retry,
    ) -> Option<bool> {
        let backoff = Backoff::new();
        let mut writer_spins = 0;
        let mut retry = first;
        for _ in 0..MAX_ATTEMPTS {
            match retry {
                Retry::Lost => backoff.spin(),
                Retry::Unready {
                    ticket,
                    seen,
                    current,
                } => {
                    let patient = writer_spins < WRITER_SPINS;
                    match self.judge_unready(ticket, seen, current, me, liveness, patient) {
                        Unready::Empty => return Some(false),
                        Unready::Writing => {
                            // The element is on its way: wait a little, then report empty.
                            if writer_spins >= WRITER_SPINS {
                                return Some(false);
                            }
                            writer_spins += 1;
                            backoff.snooze();
                        }
                        Unready::Again => backoff.spin(),
                    }
                }
            }
            retry = match self.pop_attempt(words, me, liveness, current) {
                Ok(popped) => return popped,
                Err(retry) => retry,
            };
        }
        Some(false)
    }

    /// One attempt of a pop: claim the head's ticket if its element is ready, copy it out
    /// and free the slot for the next lap. `Ok(None)` once `current` says the ring is not
    /// the head ring (see [`try_pop_while`](Self::try_pop_while)); `Err` when the
    /// element is not ready (`Retry::Unready`, judged by the caller) or another pop
    /// claimed it first.
    // Always: the body of both the first attempt and the retry loop (one algorithm).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn pop_attempt(
        &self,
        words: &mut [u64],
        me: OwnerId,
        liveness: &impl Liveness,
        current: &impl Fn() -> bool,
    ) -> Result<Option<bool>, Retry> {
        // Acquire: as the tail's in `push_attempt`; `current`'s load comes after it.
        let seen = self.header.head.load(Ordering::Acquire);
        if !current() {
            return Ok(None);
        }
        let ticket = ticket_in(seen);
        let Some(slot) = self.slot_for(ticket) else {
            return Ok(Some(false)); // a corrupted head: no slot serves it
        };
        // Acquire: pairs with the producer's Release store of FULL.
        let current = slot.stamp.load(Ordering::Acquire);
        if current != stamp(FULL, ticket, None) {
            return Err(Retry::Unready {
                ticket,
                seen,
                current,
            });
        }
        let named = [FULL, READING];
        if !self.move_on(self.header.head, seen, ticket, named, me.bits(), liveness) {
            return Err(Retry::Lost);
        }
        fail::fail_point!("queue::pop_after_claim");
        for (word, cell) in words.iter_mut().zip(slot.words) {
            // Relaxed: ordered after the Acquire load of FULL; the producer of the next lap
            // writes only after our EMPTY store below (or once we are dead).
            *word = cell.load(Ordering::Relaxed);
        }
        // Our reads of the slot happen-before the next push's writes (Release); the store
        // half of `announce`'s pairing.
        finish_stamp(slot.stamp, stamp(EMPTY, self.next_lap(ticket), None));
        Self::announce(self.header.not_full, &self.header.push_sleepers, liveness);
        Ok(Some(true))
    }

    /// Moves a drained ring's tail and head at least one ticket on, for a ring that is
    /// closed (its `closed` word set, SeqCst, before the call) and holds no element: head
    /// moves past every ticket given up (and a pop skips a dead producer's claim), then a
    /// push claims the tail's ticket and gives it up, as every push into a closed ring
    /// does, and head moves past that one too. Tickets only grow, so no claim made with a
    /// head or tail word read before succeeds: an unbounded queue renews its first ring so
    /// before the ring serves again (see [`try_pop_while`](Self::try_pop_while)).
    ///
    /// `false` while a live producer's claim is still in flight: found before the push,
    /// nothing is claimed and nobody woken (head may have moved past given-up tickets and
    /// dead producers' claims); a claim made between that look and the push is named in
    /// its slot and left, and the push's give-up wakes sleepers once. `false` too when the
    /// push is refused (a consumer frozen while it copies the previous lap's element out of
    /// the tail's slot) or the words keep changing. The caller must not reopen the ring
    /// then.
    pub fn renew(&self, me: OwnerId, liveness: &impl Liveness, closed: &AtomicU64) -> bool {
        // No element words: a push into a closed ring writes none, and a pop there finds
        // none to copy out.
        let drained = self.is_drained(liveness)
            || (!self.try_pop(&mut [], me, liveness) && self.is_drained(liveness));
        drained
            && self.push_once(&[], me, liveness, Some(closed)) == Pushed::Closed
            && self.is_drained(liveness)
    }

    /// A pop for `ticket` (from the head word `seen`) found its slot at `current`, not
    /// `FULL` for it: what that means, after skipping a dead producer's claim or moving head
    /// past a skipped ticket. While `patient`, a producer whose participant slot says it
    /// may be alive is taken to be writing without asking the kernel (two system calls
    /// across processes); the last look of a pop asks.
    #[cold]
    fn judge_unready(
        &self,
        ticket: u64,
        seen: u64,
        current: u64,
        me: OwnerId,
        liveness: &impl Liveness,
        patient: bool,
    ) -> Unready {
        let Some(slot) = self.slot_for(ticket) else {
            return Unready::Empty;
        };
        if self.is_later_lap(current, ticket) {
            // The ticket was skipped (a consumed one would have moved head already).
            self.move_on(
                self.header.head,
                seen,
                ticket,
                [FULL, READING],
                me.bits(),
                liveness,
            );
            return Unready::Again;
        }
        // Acquire: after the claim it names (see `push_attempt`).
        let tail = self.header.tail.load(Ordering::Acquire);
        if ticket_in(tail) == ticket {
            return Unready::Empty; // nothing pushed at this ticket yet
        }
        // Look again only if something moved: a slot that keeps a state it cannot have (a
        // corrupted stamp) reads as empty, not as a pop that spins.
        let again = || {
            if moved(self.header.head, seen, slot, current) {
                Unready::Again
            } else {
                Unready::Empty
            }
        };
        if !is_for(current, ticket) {
            return again(); // head moved on meanwhile, or the previous lap's pop is finishing
        }
        let claimant = match state_of(current) {
            WRITING => owner_of(current),
            // Claimed, not yet named in the slot: by the push the tail word names, if it is
            // the last; otherwise the next push has named it in the slot by now.
            EMPTY if ticket_in(tail) == self.next(ticket) => claimant_of(tail),
            _ => return again(),
        };
        let alive = |owner: OwnerId| {
            if patient {
                liveness.may_be_alive(owner)
            } else {
                liveness.is_alive(owner)
            }
        };
        if claimant.is_some_and(alive) {
            return Unready::Writing;
        }
        // The producer died before publishing: skip its slot. SeqCst: as for a consumed
        // slot (Release, and the store half of `announce`'s pairing).
        if slot
            .stamp
            .compare_exchange(
                current,
                stamp(EMPTY, self.next_lap(ticket), None),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            // Relaxed: a statistic.
            self.header.skipped.fetch_add(1, Ordering::Relaxed);
            Self::announce(self.header.not_full, &self.header.push_sleepers, liveness);
        }
        Unready::Again
    }

    /// Whether no element will ever be popped from this ring again, for a ring whose
    /// `closed` word the caller read nonzero (SeqCst) before the call: its head ticket was
    /// never claimed. Claims go in ticket order, so nothing after it was claimed either,
    /// and a push that claims it later reads the ring closed and gives it up (see
    /// [`try_push_unless_closed`](Self::try_push_unless_closed)). `false` when an element
    /// is there or on its way.
    pub fn is_drained(&self, liveness: &impl Liveness) -> bool {
        // After the caller's load of the link, in the total order (see `push_attempt`).
        seq_cst_point();
        for _ in 0..MAX_ATTEMPTS {
            // SeqCst: in the total order of the claims and of our caller's load of the link.
            let seen = self.header.head.load(Ordering::SeqCst);
            let ticket = ticket_in(seen);
            // SeqCst: as above; a claim of `ticket` after this load reads the link set.
            if ticket_in(self.header.tail.load(Ordering::SeqCst)) == ticket {
                return true;
            }
            let Some(slot) = self.slot_for(ticket) else {
                return false;
            };
            // Acquire: as a pop's.
            let current = slot.stamp.load(Ordering::Acquire);
            if !self.is_later_lap(current, ticket) {
                return false; // an element there, or on its way
            }
            // Skipped: move head past it (naming no claimant: nothing was claimed), and look
            // again.
            self.move_on(self.header.head, seen, ticket, [FULL, READING], 0, liveness);
        }
        false
    }

    /// Moves the head or tail word `end` from `seen` (at `ticket`) to the next ticket,
    /// naming `claimant` (raw owner bits; 0 for nobody): a claim of `ticket`, or head moving
    /// past a skipped one. First, if the claim `seen` names is unfinished (its slot still
    /// `states[0]`, EMPTY or FULL), writes that claimant into the slot (`states[1]`,
    /// WRITING or READING): replacing the word without it would leave the claim named
    /// nowhere, and a claimant that dies then would hold its slot for good. Whether the
    /// word moved.
    #[inline]
    fn move_on(
        &self,
        end: &AtomicU64,
        seen: u64,
        ticket: u64,
        states: [u64; 2],
        claimant: u32,
        liveness: &impl Liveness,
    ) -> bool {
        let last = claimant_bits(seen);
        if last != 0 {
            self.name_claim(self.previous(ticket), states, last, liveness);
        }
        // SeqCst: claims and the moves of head are state changes in one total order with
        // the link loads of the ring-closing protocol (`is_drained`, `push_attempt`).
        end.compare_exchange(
            seen,
            (self.next(ticket) & TICKET_MASK) | u64::from(claimant) << CLAIMANT_SHIFT,
            Ordering::SeqCst,
            Ordering::Relaxed,
        )
        .is_ok()
    }

    /// As [`try_push`](Self::try_push), sleeping while full until `deadline`; `false`
    /// (nothing pushed) if still full at the deadline.
    #[must_use = "a push into a full queue pushes nothing"]
    pub fn push(
        &self,
        words: &[u64],
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
    ) -> bool {
        self.try_push(words, me, liveness)
            || Self::wait_until(
                self.header.not_full,
                self.header.push_sleepers,
                me,
                deadline,
                || self.try_push(words, me, liveness),
            )
    }

    /// As [`try_pop`](Self::try_pop), sleeping while empty until `deadline`.
    pub fn pop(
        &self,
        words: &mut [u64],
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
    ) -> bool {
        self.try_pop(words, me, liveness)
            || Self::wait_until(
                self.header.not_empty,
                self.header.pop_sleepers,
                me,
                deadline,
                || self.try_pop(words, me, liveness),
            )
    }

    /// Elements in the queue (pushes claimed and not yet popped), a snapshot.
    pub fn len(&self) -> u64 {
        // Acquire: tail is read after head (a pop claims only what a push claimed first),
        // so it is not behind it; a snapshot otherwise.
        let head = ticket_in(self.header.head.load(Ordering::Acquire));
        // Relaxed: as above.
        let tail = ticket_in(self.header.tail.load(Ordering::Relaxed));
        ticket_distance(self.capacity, head, tail).map_or(0, |len| len.min(self.capacity))
    }

    /// Whether the queue looks empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a pop that found its slot not ready makes of it.
enum Unready {
    /// Nothing pushed at the head ticket: the queue is empty.
    Empty,
    /// A live producer is writing the head element.
    Writing,
    /// Something moved (or was skipped): look again.
    Again,
}

/// Tickets from `from` to `to` in a queue of `capacity` slots; `None` if `to` is behind
/// `from` (by the lap, fewer than half the ticket space behind, or by the slot index in
/// the same lap).
fn ticket_distance(capacity: u64, from: u64, to: u64) -> Option<u64> {
    let lap = capacity.next_power_of_two();
    let shift = lap.trailing_zeros();
    let laps = ((to >> shift).wrapping_sub(from >> shift)) & (TICKET_MASK >> shift);
    if laps >= (1 << 30) >> shift {
        return None;
    }
    (laps * capacity + (to & (lap - 1))).checked_sub(from & (lap - 1))
}

/// Whether the head and tail words `head` and `tail` of a queue of `capacity` slots can be
/// a queue's: both tickets name a slot, and tail is not behind head. (Tail can run more
/// than the capacity ahead for a while: a push that frees a dead push's slot claims the
/// next lap's ticket before any pop has moved head past the skipped one.)
#[cfg(not(loom))]
pub(crate) fn ends_agree(capacity: u64, head: u64, tail: u64) -> bool {
    let lap = capacity.next_power_of_two();
    let (head, tail) = (ticket_in(head), ticket_in(tail));
    head & (lap - 1) < capacity
        && tail & (lap - 1) < capacity
        && ticket_distance(capacity, head, tail).is_some()
}

/// Rewrites the claimants that the head and tail words `ends` name in the retiring
/// participant slot `slot` (see `crate::sweep`).
///
/// # Errors
/// [`Error::Contended`](shmarena_engine::Error::Contended) for a word that keeps changing.
#[cfg(not(loom))]
pub(crate) fn retire_claimants(ends: [&AtomicU64; 2], slot: u32) -> shmarena_engine::Result<()> {
    for word in ends {
        shmarena_engine::liveness::retire_owner_field(word, CLAIMANT_SHIFT, slot, |_| true)?;
    }
    Ok(())
}

/// The stamp every slot starts with: slot `i` is free for ticket `i`.
pub fn initial_stamp(slot: u64) -> u64 {
    stamp(EMPTY, slot, None)
}

#[cfg(not(loom))]
pub(crate) use handle::{element_width, retire_owner_slot, BodyWords};
#[cfg(not(loom))]
pub use handle::{ByteQueue, Queue};

/// Why a push into a [`Queue`] or [`ByteQueue`] did not happen. Nothing was pushed, and
/// the element comes back, as from crossbeam's `ArrayQueue::push` and std's
/// `SyncSender::try_send`: a producer can keep it, retry later or hand it elsewhere.
///
/// It converts to [`Error`](shmarena_engine::Error) for `?` (dropping the element):
/// `Full` to [`Error::QueueFull`](shmarena_engine::Error::QueueFull), `Failed` to its
/// error.
///
/// ```
/// use shmarena::PushError;
/// use shmarena::{Region, RegionExt};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-pusherror-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let jobs = region.queue::<[u32; 2]>("jobs", 1)?;
/// jobs.try_push([1, 10])?;
/// match jobs.try_push([2, 20]) {
///     Ok(()) => unreachable!("one slot, and it is taken"),
///     Err(PushError::Full(job)) => assert_eq!(job, [2, 20]), // ours again: retry later
///     Err(other) => return Err(other.into()),
/// }
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
pub enum PushError<T> {
    /// Every slot held an element (or one a live consumer was still reading), for all of
    /// a timed push's wait.
    Full(T),
    /// The push was refused for the reason the error gives: for a [`ByteQueue`], an
    /// element longer than its slots
    /// ([`Error::InvalidArgument`](shmarena_engine::Error::InvalidArgument)). A typed
    /// [`Queue`] has no such case today (a hostile region's stamps read as `Full`).
    Failed(shmarena_engine::Error, T),
}

impl<T> PushError<T> {
    /// The element that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(element) | PushError::Failed(_, element) => element,
        }
    }

    /// Whether the queue was full (and nothing else went wrong).
    pub fn is_full(&self) -> bool {
        matches!(self, PushError::Full(_))
    }
}

// By hand, as std's `TrySendError` does: no `T: Debug` bound, so `unwrap` and `expect`
// work for any element type.
impl<T> std::fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("Full(..)"),
            PushError::Failed(error, _) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

impl<T> std::fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Full(_) => std::fmt::Display::fmt(&shmarena_engine::Error::QueueFull, f),
            PushError::Failed(error, _) => std::fmt::Display::fmt(error, f),
        }
    }
}

impl<T> std::error::Error for PushError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PushError::Full(_) => None,
            PushError::Failed(error, _) => Some(error),
        }
    }
}

impl<T> From<PushError<T>> for shmarena_engine::Error {
    fn from(error: PushError<T>) -> Self {
        match error {
            PushError::Full(_) => shmarena_engine::Error::QueueFull,
            PushError::Failed(error, _) => error,
        }
    }
}

#[cfg(not(loom))]
mod handle {
    use super::{
        initial_stamp, layout, ElementWidth, PushError, QueueHeader, RawQueue, Sleepers, SlotWidth,
        MAX_CAPACITY,
    };
    use crate::identity::{check_elem_size, name_expected, short_type_name, ElementType};
    use crate::words::{
        check_fits, read_bytes_into, read_words_into, with_bytes_as_words, with_words_of,
        word_count_of,
    };
    use bytemuck::Pod;
    use shmarena_engine::sync::{AtomicU32, AtomicU64, Ordering};
    use shmarena_engine::{Error, Object, ObjectKind, Region, Result, TypeDescriptor};
    use std::marker::PhantomData;
    use std::ptr::NonNull;
    use std::time::{Duration, Instant};

    const HEADER: u64 = layout::SLOTS;

    /// The slot width of a queue of `T` whose slots have `slot_words` words (from the
    /// catalog): an error unless they agree (a typed handle indexes its slots unchecked by
    /// it).
    pub(crate) fn element_width<T>(slot_words: u64) -> Result<ElementWidth<T>> {
        let width = ElementWidth::<T>::new();
        if width.slot_words() as u64 != slot_words {
            return Err(Error::corrupt(
                "queue element size",
                format!(
                    "{slot_words} words a slot, not a {}",
                    short_type_name::<T>()
                ),
            ));
        }
        Ok(width)
    }

    /// Words at the start of an object's body, checked inside the mapping, lent out for
    /// as long as the caller of [`Self::new`] vouches the mapping stays (a handle builds
    /// its algorithm's references once, kept alive by the object it holds beside them).
    #[derive(Clone, Copy)]
    pub(crate) struct BodyWords(&'static [AtomicU64]);

    impl BodyWords {
        /// # Safety
        /// `len` u64 atomics from `base` lie in the mapping, which stays mapped while any
        /// reference taken from the result is used.
        pub(crate) unsafe fn new(base: NonNull<AtomicU64>, len: u64) -> Self {
            // SAFETY: the caller's.
            Self(unsafe { std::slice::from_raw_parts(base.as_ptr(), len as usize) })
        }

        /// The word at `byte_offset` (8-aligned, inside).
        pub(crate) fn word(self, byte_offset: u64) -> &'static AtomicU64 {
            &self.0[(byte_offset / 8) as usize]
        }

        /// `count` words from `byte_offset` (8-aligned, inside).
        pub(crate) fn words(self, byte_offset: u64, count: u64) -> &'static [AtomicU64] {
            &self.0[(byte_offset / 8) as usize..][..count as usize]
        }

        /// The u32 at `byte_offset` (4-aligned, inside): a half of a word that is only
        /// ever accessed as two u32s, never through its u64 view.
        pub(crate) fn half_word(self, byte_offset: u64) -> &'static AtomicU32 {
            let word = self.word(byte_offset & !7);
            // SAFETY: a 4-aligned half of a word in the mapping (the word is 8-aligned).
            unsafe {
                &*std::ptr::from_ref(word)
                    .cast::<AtomicU32>()
                    .add(((byte_offset % 8) / 4) as usize)
            }
        }
    }

    /// How long a push or pop waits for room or for an element.
    #[derive(Clone, Copy)]
    enum Wait {
        No,
        Until(Instant),
        Forever,
    }

    impl Wait {
        /// Waits up to `timeout`, or forever with `None`.
        fn after(timeout: Option<Duration>) -> Self {
            match timeout {
                None => Wait::Forever,
                Some(timeout) if timeout.is_zero() => Wait::No,
                // A deadline past what `Instant` can hold is no deadline.
                Some(timeout) => Instant::now()
                    .checked_add(timeout)
                    .map_or(Wait::Forever, Wait::Until),
            }
        }
    }

    /// A named bounded queue of elements of `elem_size` bytes, the size chosen when it is
    /// created (for bindings whose element types are known only at run time, such as the
    /// Python package): the same queue as [`Queue`], which is a typed view of it.
    ///
    /// Shorter elements are padded with zero bytes; a pop returns all `elem_size` bytes.
    ///
    /// ```
    /// use shmarena::PushError;
    /// use shmarena::{ByteQueue, Error, Region};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-bytequeue-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let jobs = ByteQueue::get_or_create(&region, "jobs", 16, 4)?;
    /// jobs.try_push(b"ab")?;
    /// assert_eq!(jobs.try_pop(), Some(b"ab\0\0".to_vec()));
    /// let refused = jobs.try_push(b"too long").unwrap_err();
    /// assert!(matches!(refused, PushError::Failed(Error::InvalidArgument(_), b"too long")));
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    #[derive(Clone)]
    pub struct ByteQueue {
        slot_words: u64,
        elem_size: usize,
        /// The algorithm over this queue's words, built once: its references point into
        /// the mapping, which `object` keeps alive as long as the handle (they are only
        /// lent out for `&self`'s lifetime, see [`Self::raw`]).
        raw: RawQueue<'static>,
        object: Object,
    }

    impl std::fmt::Debug for ByteQueue {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Queue")
                .field("name", &self.object.info().name)
                .field("len", &self.len())
                .field("capacity", &self.raw.capacity)
                .field("elem_size", &self.elem_size)
                .finish_non_exhaustive()
        }
    }

    fn descriptor(capacity: u64, elem: ElementType) -> TypeDescriptor {
        TypeDescriptor {
            elem_tag: elem.tag,
            ..TypeDescriptor::new(ObjectKind::Queue, elem.code, elem.size, capacity)
        }
    }

    impl ByteQueue {
        /// Opens the queue `name`, creating it empty with room for `capacity` elements of
        /// `elem_size` bytes.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for a zero capacity or an element over 64 KiB;
        /// [`Error::TypeMismatch`] (also for another capacity); catalog and arena errors.
        pub fn get_or_create(
            region: &Region,
            name: &str,
            capacity: u64,
            elem_size: usize,
        ) -> Result<Self> {
            Self::create(
                region,
                name,
                capacity,
                elem_size,
                ElementType::bytes(elem_size),
            )
        }

        /// As `get_or_create`, for elements of type `elem` (`elem_size` bytes).
        fn create(
            region: &Region,
            name: &str,
            capacity: u64,
            elem_size: usize,
            elem: ElementType,
        ) -> Result<Self> {
            if capacity == 0 || capacity > MAX_CAPACITY || elem_size > usize::from(u16::MAX) {
                return Err(Error::InvalidArgument(format!(
                    "a queue needs 1 to 2^28 slots ({capacity} asked) of elements up to 65535 bytes ({elem_size} given)"
                )));
            }
            let slot_bytes = 8 * (1 + word_count_of(elem_size as u64));
            let size = capacity
                .checked_mul(slot_bytes)
                .and_then(|slots| slots.checked_add(HEADER))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("a queue of {capacity} slots is too large"))
                })?;
            let descriptor = descriptor(capacity, elem);
            let (object, _) =
                crate::sweep::get_or_create_object(region, name, &descriptor, size, |object| {
                    let queue = Self::from_object(object.clone())?;
                    for (slot, stamp) in (0..).zip(queue.raw.stamps()) {
                        // Relaxed: published by the catalog's Release.
                        stamp.store(initial_stamp(slot), Ordering::Relaxed);
                    }
                    Ok(())
                })?;
            let queue = Self::from_object(object)?;
            if queue.raw.capacity != capacity {
                return Err(Error::TypeMismatch {
                    name: name.to_owned(),
                    expected: descriptor.to_string(),
                    found: queue.object.info().descriptor.to_string(),
                });
            }
            Ok(queue)
        }

        /// Opens the existing queue `name`, whatever its capacity and element size.
        ///
        /// # Errors
        /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::Corrupt`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            let info = region
                .find_object(name)?
                .ok_or_else(|| Error::ObjectNotFound(name.to_owned()))?;
            let elem_size = usize::from(info.descriptor.elem_size);
            Self::open_typed(region, name, ElementType::bytes(elem_size))
        }

        fn open_typed(region: &Region, name: &str, elem: ElementType) -> Result<Self> {
            Self::from_object(crate::sweep::open_object(
                region,
                name,
                &descriptor(0, elem),
            )?)
        }

        fn from_object(object: Object) -> Result<Self> {
            let capacity = object.info().descriptor.capacity;
            let elem_size = usize::from(object.info().descriptor.elem_size);
            let slot_words = 1 + word_count_of(elem_size as u64);
            if capacity == 0 || capacity > MAX_CAPACITY {
                return Err(Error::Corrupt {
                    field: "queue capacity",
                    detail: format!("object {:?}: {capacity}", object.info().name),
                });
            }
            // Checks that the header and every slot lie inside the body.
            let base = object
                .atomics::<std::sync::atomic::AtomicU64>(0, HEADER / 8 + capacity * slot_words)?;
            // SAFETY: just checked inside the body; the mapping lives as long as `object`,
            // which the handle keeps beside `raw`.
            let raw = unsafe { Self::build_raw(base, capacity, slot_words) };
            Ok(Self {
                slot_words,
                elem_size,
                raw,
                object,
            })
        }

        /// The algorithm over the queue whose header and `capacity` slots of
        /// `slot_words` words start at `base`.
        ///
        /// # Safety
        /// `HEADER / 8 + capacity * slot_words` words from `base` are atomics of the
        /// mapping, which stays mapped while the result is used; `1 <= capacity <=
        /// MAX_CAPACITY` and `slot_words >= 2`.
        unsafe fn build_raw(
            base: NonNull<AtomicU64>,
            capacity: u64,
            slot_words: u64,
        ) -> RawQueue<'static> {
            // SAFETY: the caller's.
            let body = unsafe { BodyWords::new(base, HEADER / 8 + capacity * slot_words) };
            let header = QueueHeader {
                head: body.word(layout::HEAD),
                tail: body.word(layout::TAIL),
                not_empty: body.half_word(layout::NOT_EMPTY),
                pop_sleepers: Sleepers {
                    count: body.half_word(layout::POP_SLEEPERS),
                    registry: body.words(layout::POP_REGISTRY, layout::REGISTRY_WORDS),
                },
                not_full: body.half_word(layout::NOT_FULL),
                push_sleepers: Sleepers {
                    count: body.half_word(layout::PUSH_SLEEPERS),
                    registry: body.words(layout::PUSH_REGISTRY, layout::REGISTRY_WORDS),
                },
                lost: body.word(layout::LOST),
                skipped: body.word(layout::SKIPPED),
            };
            // The slots are the capacity * slot_words words after the header.
            let slots = body.words(HEADER, capacity * slot_words);
            // SAFETY: `slots` holds capacity slots of slot_words (>= 2) words, and 1 <=
            // capacity <= MAX_CAPACITY (caller).
            unsafe { RawQueue::new_unchecked(header, slots, slot_words as usize, capacity) }
        }

        /// The queue algorithm over this queue's words (built once, at open).
        #[inline]
        fn raw(&self) -> &RawQueue<'_> {
            &self.raw
        }

        fn element_words(&self) -> usize {
            (self.slot_words - 1) as usize
        }

        /// Appends an element by `raw` (this queue's algorithm, perhaps with a typed
        /// handle's slot width), waiting as `wait` says while the queue is full; whether
        /// it went in.
        #[inline]
        fn push_words<W: SlotWidth>(
            &self,
            raw: &RawQueue<'_, W>,
            words: &[u64],
            wait: Wait,
        ) -> bool {
            let region = self.object.region();
            let me = region.participant_id();
            match wait {
                Wait::No => raw.try_push(words, me, region),
                Wait::Until(deadline) => raw.push(words, me, region, Some(deadline)),
                Wait::Forever => raw.push(words, me, region, None),
            }
        }

        /// Appends `element` (bytes), waiting as `wait` says while the queue is full.
        fn push_bytes<'e>(&self, element: &'e [u8], wait: Wait) -> Result<(), PushError<&'e [u8]>> {
            if let Err(error) = check_fits(element, self.elem_size, "an element", "queue") {
                return Err(PushError::Failed(error, element));
            }
            if with_bytes_as_words(element, self.element_words(), |words| {
                self.push_words(self.raw(), words, wait)
            }) {
                Ok(())
            } else {
                Err(PushError::Full(element))
            }
        }

        /// Removes the oldest element into `words` by `raw` (as in `push_words`),
        /// waiting as `wait` says while the queue is empty; whether there was one.
        #[inline]
        fn pop_words<W: SlotWidth>(
            &self,
            raw: &RawQueue<'_, W>,
            words: &mut [u64],
            wait: Wait,
        ) -> bool {
            let region = self.object.region();
            let me = region.participant_id();
            match wait {
                Wait::No => raw.try_pop(words, me, region),
                Wait::Until(deadline) => raw.pop(words, me, region, Some(deadline)),
                Wait::Forever => {
                    while !raw.pop(words, me, region, None) {}
                    true
                }
            }
        }

        /// Appends `element` unless the queue is full.
        ///
        /// # Errors
        /// [`PushError::Full`] (Python's `queue.Full`); [`PushError::Failed`] with
        /// [`Error::InvalidArgument`] for an element over `elem_size` bytes. Either hands
        /// `element` back.
        pub fn try_push<'e>(&self, element: &'e [u8]) -> Result<(), PushError<&'e [u8]>> {
            self.push_bytes(element, Wait::No)
        }

        /// Appends `element`, waiting at most `timeout` while the queue is full (forever
        /// with `None`).
        ///
        /// # Errors
        /// [`PushError::Full`] if it stayed full; [`PushError::Failed`] as in
        /// [`Self::try_push`].
        pub fn push_timeout<'e>(
            &self,
            element: &'e [u8],
            timeout: Option<Duration>,
        ) -> Result<(), PushError<&'e [u8]>> {
            self.push_bytes(element, Wait::after(timeout))
        }

        /// Removes the oldest element, if one is ready.
        pub fn try_pop(&self) -> Option<Vec<u8>> {
            self.pop_bytes(Wait::No)
        }

        /// Removes the oldest element, waiting at most `timeout` (forever with `None`).
        pub fn pop_timeout(&self, timeout: Option<Duration>) -> Option<Vec<u8>> {
            self.pop_bytes(Wait::after(timeout))
        }

        fn pop_bytes(&self, wait: Wait) -> Option<Vec<u8>> {
            let Ok(popped) = read_bytes_into(self.element_words(), self.elem_size, |words| {
                Ok::<_, std::convert::Infallible>(self.pop_words(self.raw(), words, wait))
            });
            popped
        }

        /// Elements in the queue, a snapshot (pushes still copying their element count).
        pub fn len(&self) -> usize {
            self.raw().len() as usize
        }

        /// Whether the queue looks empty.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Slots in the queue.
        pub fn capacity(&self) -> usize {
            self.raw.capacity as usize
        }

        /// Bytes of one element.
        pub fn elem_size(&self) -> usize {
            self.elem_size
        }

        /// Elements lost because their consumer died after claiming them.
        pub fn lost(&self) -> u64 {
            // Relaxed: a statistic.
            self.raw.header.lost.load(Ordering::Relaxed)
        }

        /// Pushes abandoned by producers that died before finishing them (never acknowledged).
        pub fn skipped(&self) -> u64 {
            // Relaxed: a statistic.
            self.raw.header.skipped.load(Ordering::Relaxed)
        }

        /// The object's name.
        pub fn name(&self) -> &str {
            &self.object.info().name
        }

        /// The region holding the queue.
        pub fn region(&self) -> &Region {
            self.object.region()
        }
    }

    /// A named bounded queue of `T` shared by processes: a typed view of a [`ByteQueue`]
    /// of `size_of::<T>()`-byte elements.
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-queue-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let jobs = region.queue::<[u32; 2]>("jobs", 128)?;
    /// jobs.try_push([1, 10])?;
    /// jobs.push([2, 20]); // waits while full
    /// assert_eq!(jobs.try_pop(), Some([1, 10]));
    /// assert_eq!(jobs.pop(), [2, 20]); // waits while empty
    /// assert_eq!(jobs.try_pop(), None);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    pub struct Queue<T: Pod> {
        inner: ByteQueue,
        /// `inner`'s algorithm with `T`'s slot width, a constant (see [`Self::typed`]).
        raw: RawQueue<'static, ElementWidth<T>>,
        _type: PhantomData<T>,
    }

    impl<T: Pod> Clone for Queue<T> {
        fn clone(&self) -> Self {
            Self {
                inner: self.inner.clone(),
                raw: self.raw,
                _type: PhantomData,
            }
        }
    }

    impl<T: Pod> std::fmt::Debug for Queue<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.inner.fmt(f)
        }
    }

    impl<T: Pod> Queue<T> {
        /// The catalog descriptor of a queue of `capacity` elements of `T` (its identity as
        /// [`identity`](crate::identity) describes).
        pub fn descriptor(capacity: u64) -> TypeDescriptor {
            descriptor(capacity, ElementType::of::<T>())
        }

        /// Opens the queue `name`, creating it empty with room for `capacity` elements.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for a zero capacity or an element over 64 KiB;
        /// [`Error::TypeMismatch`] (also for another capacity); catalog and arena errors.
        pub fn get_or_create(region: &Region, name: &str, capacity: u64) -> Result<Self> {
            ByteQueue::create(
                region,
                name,
                capacity,
                size_of::<T>(),
                ElementType::of::<T>(),
            )
            .and_then(Self::typed)
            .map_err(|error| {
                name_expected(error, || {
                    format!("Queue<{}> of capacity {capacity}", short_type_name::<T>())
                })
            })
        }

        /// Opens the existing queue `name`, whatever its capacity.
        ///
        /// # Errors
        /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::Corrupt`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            check_elem_size::<T>()?;
            ByteQueue::open_typed(region, name, ElementType::of::<T>())
                .and_then(Self::typed)
                .map_err(Self::name_type)
        }

        fn name_type(error: Error) -> Error {
            name_expected(error, || format!("Queue<{}>", short_type_name::<T>()))
        }

        /// The typed handle; its operations use slots of [`ElementWidth<T>`], which must
        /// be the queue's (the element type was checked against the catalog: checked
        /// again here, as the unchecked slot indexing relies on it).
        fn typed(inner: ByteQueue) -> Result<Self> {
            let width = element_width::<T>(inner.slot_words)?;
            // SAFETY: the same slot width, just checked.
            let raw = unsafe { inner.raw.with_width(width) };
            Ok(Self {
                inner,
                raw,
                _type: PhantomData,
            })
        }

        /// The queue algorithm with `T`'s slot width.
        #[inline]
        fn raw(&self) -> &RawQueue<'_, ElementWidth<T>> {
            &self.raw
        }

        /// Appends `value` unless the queue is full.
        ///
        /// ```
        /// use shmarena::PushError;
        /// use shmarena::{Region, RegionExt};
        /// # let path = std::env::temp_dir().join(format!("shmarena-doc-trypush-{}", std::process::id()));
        /// let region = Region::create(&path, 1 << 20)?;
        /// let jobs = region.queue::<u64>("jobs", 2)?;
        /// jobs.try_push(1)?; // `?` converts a full queue to `Error::QueueFull`
        /// jobs.try_push(2)?;
        /// let Err(PushError::Full(job)) = jobs.try_push(3) else { panic!("two slots") };
        /// assert_eq!(job, 3); // handed back, not dropped
        /// # Region::unlink(&path)?;
        /// # Ok::<(), shmarena::Error>(())
        /// ```
        ///
        /// # Errors
        /// [`PushError::Full`] with `value` (Python's `queue.Full`).
        pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
            self.push_until(value, Wait::No)
        }

        /// Appends `value`, waiting while the queue is full.
        pub fn push(&self, value: T) {
            // Without a deadline the push only returns once it succeeded.
            let pushed = with_words_of(&value, |words| {
                self.inner.push_words(self.raw(), words, Wait::Forever)
            });
            debug_assert!(pushed, "a push without a deadline waits until it succeeds");
        }

        /// Appends `value`, waiting at most `timeout` while the queue is full.
        ///
        /// # Errors
        /// [`PushError::Full`] with `value` if it stayed full.
        pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<(), PushError<T>> {
            self.push_until(value, Wait::after(Some(timeout)))
        }

        fn push_until(&self, value: T, wait: Wait) -> Result<(), PushError<T>> {
            if with_words_of(&value, |words| {
                self.inner.push_words(self.raw(), words, wait)
            }) {
                Ok(())
            } else {
                Err(PushError::Full(value))
            }
        }

        #[inline]
        fn pop_until(&self, wait: Wait) -> Option<T> {
            read_words_into(|words| self.inner.pop_words(self.raw(), words, wait))
        }

        /// Removes the oldest element, if one is ready.
        pub fn try_pop(&self) -> Option<T> {
            self.pop_until(Wait::No)
        }

        /// Removes the oldest element, waiting while the queue is empty.
        pub fn pop(&self) -> T {
            self.pop_until(Wait::Forever)
                .expect("a pop without a deadline returns an element")
        }

        /// Removes the oldest element, waiting at most `timeout`.
        pub fn pop_timeout(&self, timeout: Duration) -> Option<T> {
            self.pop_until(Wait::after(Some(timeout)))
        }

        /// Elements in the queue, a snapshot (pushes still copying their element count).
        pub fn len(&self) -> usize {
            self.inner.len()
        }

        /// Whether the queue looks empty.
        pub fn is_empty(&self) -> bool {
            self.inner.is_empty()
        }

        /// Slots in the queue.
        pub fn capacity(&self) -> usize {
            self.inner.capacity()
        }

        /// Elements lost because their consumer died after claiming them.
        pub fn lost(&self) -> u64 {
            self.inner.lost()
        }

        /// Pushes abandoned by producers that died before finishing them (never acknowledged).
        pub fn skipped(&self) -> u64 {
            self.inner.skipped()
        }

        /// The object's name.
        pub fn name(&self) -> &str {
            self.inner.name()
        }
    }

    /// Rewrites the claims (`WRITING`, `READING`) of owners of participant slot `slot` to
    /// `OwnerId::DEAD` (a sweep of the retired slot: see `crate::sweep`): a dead producer's
    /// slot is skipped and a dead consumer's taken over, as before.
    pub(crate) fn retire_owner_slot(object: &Object, slot: u32) -> Result<()> {
        let queue = ByteQueue::from_object(object.clone())?;
        queue.raw.header.pop_sleepers.retire_owner_slot(slot)?;
        queue.raw.header.push_sleepers.retire_owner_slot(slot)?;
        super::retire_claimants([queue.raw.header.head, queue.raw.header.tail], slot)?;
        for stamp in queue.raw.stamps() {
            shmarena_engine::liveness::retire_owner_field(
                stamp,
                super::OWNER_SHIFT,
                slot,
                super::holds_claim,
            )?;
        }
        Ok(())
    }
}

/// Checks a queue's shared words (for `shmarena inspect --verify`).
/// Rewrites a stamp's owner field naming participant `slot` (retired) to the dead owner.
#[cfg(not(loom))]
pub(crate) fn retire_owner_field(stamp: &AtomicU64, slot: u32) -> shmarena_engine::Result<()> {
    shmarena_engine::liveness::retire_owner_field(stamp, OWNER_SHIFT, slot, holds_claim).map(drop)
}

/// Whether a stamp is a claim whose claimant is gone.
#[cfg(not(loom))]
pub(crate) fn is_dead_claim(region: &shmarena_engine::Region, stamp: u64) -> bool {
    holds_claim(stamp) && owner_of(stamp).is_none_or(|owner| !region.is_alive(owner))
}

#[cfg(not(loom))]
pub(crate) fn check(
    region: &shmarena_engine::Region,
    entry: &shmarena_engine::EntryInfo,
    findings: &mut Vec<shmarena_engine::Finding>,
) -> shmarena_engine::Result<()> {
    use shmarena_engine::{Finding, Memory};
    let place = format!("queue {:?}", entry.name);
    let capacity = entry.descriptor.capacity;
    if !(1..=MAX_CAPACITY).contains(&capacity) {
        findings.push(Finding::error(
            &place,
            format!("a capacity of {capacity} slots (at most 2^28)"),
        ));
        return Ok(());
    }
    let slot_words = 1 + crate::words::word_count_of(u64::from(entry.descriptor.elem_size));
    // Relaxed loads throughout: a snapshot of a queue others keep using.
    let word = |offset: u64| {
        region
            .memory()
            .word(entry.offset + offset)
            .map(|w| w.load(Ordering::Relaxed))
    };
    // Head and tail move while we read them: compare them only when head stood still
    // across the read of tail.
    for _ in 0..8 {
        let head = word(layout::HEAD)?;
        let tail = word(layout::TAIL)?;
        if word(layout::HEAD)? != head {
            continue;
        }
        if !ends_agree(capacity, head, tail) {
            findings.push(Finding::error(
                &place,
                format!(
                    "head ticket {} and tail ticket {} are not those of a queue of {capacity} slots",
                    ticket_in(head),
                    ticket_in(tail)
                ),
            ));
        }
        break;
    }
    let mut dead_writers = 0;
    let mut dead_readers = 0;
    for slot in 0..capacity {
        let current = word(layout::SLOTS + 8 * slot * slot_words)?;
        if capacity <= MAX_CAPACITY
            && ticket_of(current) & (capacity.next_power_of_two() - 1) != slot
        {
            findings.push(Finding::error(
                &place,
                format!("slot {slot} has the stamp of ticket {}", ticket_of(current)),
            ));
        }
        let dead = owner_of(current).is_none_or(|owner| !region.is_alive(owner));
        match state_of(current) {
            WRITING if dead => dead_writers += 1,
            READING if dead => dead_readers += 1,
            _ => {}
        }
    }
    if dead_writers + dead_readers != 0 {
        findings.push(Finding::note(
            &place,
            format!(
                "{dead_writers} unfinished pushes and {dead_readers} unfinished pops of dead processes \
                 (skipped or taken over by the next pop or push)"
            ),
        ));
    }
    Ok(())
}
