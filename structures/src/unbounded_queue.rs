//! An unbounded multi-producer multi-consumer FIFO queue across processes: a chain of
//! rings, each a bounded [`RawQueue`], linked when the newest is
//! full and freed (after a grace period) once drained.
//!
//! ```text
//! body:
//!   0    head ring: region offset of the ring consumers drain   (own cache line)
//!   64   tail ring: region offset of the ring producers fill    (own cache line)
//!   128  not-empty sequence (u32, futex) | 132 sleeping poppers (u32) |
//!   136  not-full sequence (u32)         | 140 sleeping pushers (u32)
//!   144  lost: u64  |  152 skipped: u64   (as the bounded queue's, for all rings)
//!   160  first ring state: in the chain since grace epoch e (e); out of it since grace
//!        epoch e (1 << 62 | e); being put back by an owner (1 << 63 | owner id)
//!   168  ring being made: maker << 32 | its capacity (0: none); while a give-back holds
//!        it: owner << 32 | 1 << 31 | the capacity
//!   176  that ring's block: maker << 32 | its region offset / 64 (0: not taken yet)
//!   192  sleeping poppers' registry (8 words, see `sleepers`)
//!   256  the first ring
//! ring (the first in the body, later ones in arena blocks):
//!   0    head, as the bounded queue's  |  128 tail, as the bounded queue's
//!   192  next: region offset of the next ring (0: none; 1, `REOPENING`: the first ring
//!        being put back, closed)  |  200 capacity: u64 (slots)
//!   256  slots, as the bounded queue's
//! ```
//!
//! A push goes into the tail ring. When that ring is full it links a new ring, twice as
//! large up to [`MAX_RING_BYTES`] (one compare-exchange of `next`: one linker wins, the
//! others free theirs), and pushes there. A linked `next` *closes* the ring: a push reads
//! `next` after claiming its slot (both sequentially consistent) and, finding it set, gives
//! the slot up and goes on to the next ring. So every element of a ring was claimed before
//! the ring closed, and every element of its successor after: FIFO order holds across
//! rings.
//!
//! A pop pops from the head ring. Finding it empty and closed, it asks whether the ring is
//! drained (its head ticket never claimed: nothing more will ever come out of it; see
//! [`RawQueue::is_drained`](crate::queue::RawQueue::is_drained)), and if so moves the head
//! ring (and the tail ring, if it still points there) on, and retires the old ring: it
//! returns to the arena once no process can still be inside it.
//!
//! The first ring lies in the body and is never freed: operations that find it to be the
//! head or tail ring use it without a pin. When the chain has left it (a burst outgrew it)
//! and later drains, the queue goes back to it. The consumer that moves the head ring past
//! the first ring records the departure's grace epoch (`first ring state`). A consumer
//! that later finds the queue empty at the end of the chain (a ring after the first, open,
//! no element), a grace period after that epoch, *puts the first ring back*: it takes the
//! state word (one winner, named there), closes the first ring again with [`REOPENING`]
//! in its `next` word (its old link named a ring long freed), renews it
//! ([`RawQueue::renew`]: its tail and head move at least one ticket on, so that no head
//! or tail word read before comes back; a ring with a claim still in flight is left out
//! for now), links it after the empty ring (closing that one, as a push's link does; if a
//! push linked a ring first, the first ring stays out), and opens it (`next` back to 0;
//! whoever finds it linked with [`REOPENING`] helps). The rings before it drain and are
//! freed as before, so after a burst the queue holds no ring but its first.
//!
//! Why a process that looked at the first ring before it left cannot act on it wrongly
//! after it is back:
//! - pinned operations (the slow paths) cannot have looked: the grace period has passed
//!   since the chain left the ring, so no pin taken before that moment is still held;
//! - a push without a pin (the first ring's fast path) reads `next` after claiming its
//!   slot, as every push does: while the ring is out or not yet opened it reads a nonzero
//!   word and gives the slot up. A claim that reads it opened keeps its slot; it was made
//!   while the push was running and its element comes out after every element of the
//!   rings before (all claimed before the link that closed them, which precedes the
//!   opening), so the push takes effect at the opening;
//! - a pop without a pin reads the ring's head word first and then asks whether the head
//!   ring is the first ([`RawQueue::try_pop_while`]): a head word read before the renewal
//!   fails the claim, and a pop that read it after asks after the ring came back, so it
//!   pops there only while the first ring is the head ring (and reports empty only while
//!   it is the only ring).
//!
//! The state word tells one return of the first ring from the next: "in the chain" holds
//! the grace epoch of the return (a put-back comes a grace period after the departure,
//! so each return's epoch is larger than the last one's). So a consumer that found the
//! state "in the chain" before it found the ring out of the chain, and records the
//! departure with a compare-exchange from what it read, cannot record one that a
//! put-back has undone meanwhile.
//!
//! Kills and freezes of the put-back:
//! - a consumer killed between moving the head ring past the first ring and recording the
//!   departure: the next consumer that finds the queue empty past the first ring, with the
//!   state "in the chain", looks whether the ring is still reachable from the head ring,
//!   and records the departure itself if not (with the epoch it reads then, after the
//!   move);
//! - a consumer killed while it puts the first ring back: its claim names it, and the
//!   next consumer to find it dead ends the put-back for it: the state becomes "in the
//!   chain" if the ring got linked (opened by the next operation that finds it so), else
//!   "out of the chain since now", and the ring comes back a grace period later;
//! - a consumer frozen while it puts the first ring back, or a producer frozen between its
//!   claim in the first ring (while the ring is out) and its look at `next`, or a
//!   consumer frozen while it copies the previous lap's element out of the slot the first
//!   ring's tail ticket names, keeps the queue in its later (pinned) rings until it runs
//!   again (a put-back that finds the ring so tries again a grace period later: empty
//!   polls do not spin on it);
//! - the participant sweep ends the put-back of an owner whose slot it retires, as a
//!   consumer that finds it dead does (its claim never names a process that has its id
//!   later).
//!
//! The ring being made: a producer that makes a ring records it in the body (see
//! [`crate::made`]: its capacity, then its block as soon as the arena hands it out, before
//! the block is zeroed and its slots stamped), and clears the record just before its
//! link. So a record still there names a ring nobody linked, and a dead maker's never
//! will be: the next producer that makes a ring gives it back first
//! ([`RawUnboundedQueue::give_back_made`]), once, and as the size it has, and so does each
//! handle as it opens the queue.
//!
//! Kills: the rings are bounded queues, so a push or pop killed inside a ring is what it is
//! there (a dead producer's claim is skipped, a dead consumer's element lost). A producer
//! killed while making a ring leaks nothing, unless it dies in the few instructions
//! between the arena's hand-out and the record, or after its clear and before its link,
//! or made its ring unrecorded while another's record stood; a consumer killed between
//! moving the head ring and retiring the old one (a few instructions) leaks the old one.
//! Neither loses or duplicates an element, and nobody waits for a dead or frozen process:
//! a frozen producer
//! holding a claim in a closed ring holds up the consumers of that one element, as in the
//! bounded queue (and a put-back that meets its claim in the first ring waits for it as a
//! pop does, 64 short pauses and one liveness question, then leaves the ring out for
//! another grace period).

use std::time::Instant;

use shmarena_engine::sync::{AtomicU32, AtomicU64, Ordering};
use shmarena_engine::{Error, Liveness, OwnerId, Result};

use crate::made::MadeRecord;
use crate::queue::{Pushed, QueueHeader, RawQueue, SlotWidth};
use crate::sleepers::Sleepers;

/// Byte offsets in an unbounded queue's body and rings (the diagram above).
pub mod layout {
    /// Region offset of the ring consumers drain (u64).
    pub const HEAD_RING: u64 = 0;
    /// Region offset of the ring producers fill (u64).
    pub const TAIL_RING: u64 = 64;
    /// Not-empty futex sequence (u32).
    pub const NOT_EMPTY: u64 = 128;
    /// Sleeping poppers (u32).
    pub const POP_SLEEPERS: u64 = 132;
    /// Not-full futex sequence (u32; nobody sleeps on it: a push never sleeps).
    pub const NOT_FULL: u64 = 136;
    /// Sleeping pushers (u32; always 0).
    pub const PUSH_SLEEPERS: u64 = 140;
    /// Elements lost with a consumer that died holding them (u64).
    pub const LOST: u64 = 144;
    /// Pushes abandoned by producers that died before finishing them (u64).
    pub const SKIPPED: u64 = 152;
    /// The first ring's state: in the chain, out of it since a grace epoch, or being put
    /// back by a named owner (u64, see [`Shared::first_idle`](super::Shared::first_idle)).
    pub const FIRST_IDLE: u64 = 160;
    /// The ring being made: its maker and capacity (u64, see
    /// [`Shared::made`](super::Shared::made)).
    pub const MADE_RING: u64 = 168;
    /// The block of the ring being made: its maker and region offset / 64 (u64).
    pub const MADE_BLOCK: u64 = 176;
    /// Who sleeps in `pop` ([`REGISTRY_WORDS`] words, see [`crate::sleepers`]).
    pub const POP_REGISTRY: u64 = 192;
    /// Words of the registry.
    pub const REGISTRY_WORDS: u64 = 8;
    /// The first ring.
    pub const FIRST_RING: u64 = 256;
    /// A ring's head word (u64, as the bounded queue's).
    pub const RING_HEAD: u64 = 0;
    /// A ring's tail word (u64, as the bounded queue's).
    pub const RING_TAIL: u64 = 128;
    /// A ring's link to the next (u64; [`REOPENING`](super::REOPENING) in the first ring
    /// while it is put back).
    pub const RING_NEXT: u64 = 192;
    /// A ring's slots (u64).
    pub const RING_CAPACITY: u64 = 200;
    /// A ring's first slot.
    pub const RING_SLOTS: u64 = 256;
}

/// The most bytes a ring grows to: past it, new rings stay this size (so no push pays for
/// initializing more than this).
pub const MAX_RING_BYTES: u64 = 4 << 20;

/// Rings a walk of the chain (`len`, the sweep, the check) follows at most: a chain longer
/// than this comes from a corrupted region (rings double, to 2^28 slots at most).
pub const MAX_RINGS: usize = 1 << 16;

/// Attempts of one operation on the chain before it reports [`Error::Contended`]: an
/// operation moves between rings a few times at most (each step pushes or pops, or moves
/// on to a ring that exists), and a corrupted chain must not keep it going.
const MAX_STEPS: u32 = 1 << 10;

/// One ring's words.
#[derive(Clone, Copy, Debug)]
pub struct Ring<'a> {
    /// Next ticket to pop.
    pub head: &'a AtomicU64,
    /// Next ticket to push.
    pub tail: &'a AtomicU64,
    /// The next ring's offset; nonzero closes this one ([`REOPENING`] in the first ring
    /// while it is put back: closed, no next ring).
    pub next: &'a AtomicU64,
    /// The slots: `capacity` x `slot_words`.
    pub slots: &'a [AtomicU64],
    /// Slots in the ring.
    pub capacity: u64,
}

/// Where the rings live: the region's arena for the handle, plain memory in loom models.
pub trait Rings {
    /// The ring at `offset` (checked: an offset read from the mapping is untrusted).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when no ring can lie there.
    fn ring(&self, offset: u64) -> Result<Ring<'_>>;

    /// A new ring of `capacity` slots, every slot free for its first ticket, `next` 0,
    /// not yet reachable: its offset. `record` is called with the offset as soon as the
    /// ring's memory is taken, before it is initialized.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`].
    fn make(&self, capacity: u64, record: impl FnOnce(u64)) -> Result<u64>;

    /// Frees a ring of `capacity` slots that was never linked (it may be half made).
    fn discard(&self, offset: u64, capacity: u64);

    /// Hands over a ring just unlinked from the chain, to be freed once no process can
    /// still be inside it (the first ring is never freed).
    ///
    /// # Errors
    /// [`Error::Corrupt`].
    fn retire(&self, offset: u64) -> Result<()>;

    /// The grace epoch now: recorded for the first ring when the chain leaves it (read after
    /// the move, as for a retired block), and when it returns.
    ///
    /// # Errors
    /// [`Error::Corrupt`].
    fn idle_epoch(&self) -> Result<u64>;

    /// Whether the first ring, which the chain left at grace epoch `epoch`, may serve
    /// again: every process that may have read a ring word naming it before (under the
    /// protection the caller's slow paths hold) has let go since. Called rarely (a
    /// consumer that finds the queue empty past the first ring): it may try to move the
    /// grace epoch on, and may answer `false` to calls it does not want to pay for.
    ///
    /// # Errors
    /// [`Error::Corrupt`].
    fn may_reuse_first(&self, epoch: u64) -> Result<bool>;

    /// Whether this look at a put-back's claim, whose owner may be alive as far as shared
    /// memory tells, should ask the system (a system call) whether it is: rarely, as
    /// `may_reuse_first` tries to move the epoch.
    fn asks_liveness(&self) -> bool;
}

/// The words of the body every ring shares.
#[derive(Clone, Copy, Debug)]
pub struct Shared<'a> {
    /// Region offset of the ring consumers drain.
    pub head_ring: &'a AtomicU64,
    /// Region offset of the ring producers fill.
    pub tail_ring: &'a AtomicU64,
    /// Not-empty futex sequence.
    pub not_empty: &'a AtomicU32,
    /// Sleeping poppers.
    pub pop_sleepers: Sleepers<'a>,
    /// Not-full futex sequence.
    pub not_full: &'a AtomicU32,
    /// Sleeping pushers (none: a push never sleeps; the rings' pops still look).
    pub push_sleepers: Sleepers<'a>,
    /// Elements lost with consumers that died holding them.
    pub lost: &'a AtomicU64,
    /// Pushes abandoned by producers that died.
    pub skipped: &'a AtomicU64,
    /// The first ring's offset (it is never freed: see [`Permanent`]).
    pub first_ring: u64,
    /// The first ring's state ([`FirstRing`] as a word): in the chain, out of it since a
    /// grace epoch ([`Rings::idle_epoch`]; the ring may serve again a grace period
    /// later), or being put back by a named owner.
    pub first_idle: &'a AtomicU64,
    /// The ring being made and its block, while a producer makes it: `maker << 32 |
    /// capacity` and `maker << 32 | offset / 64` (see [`crate::made`]; 0: none).
    pub made: [&'a AtomicU64; 2],
}

/// The `next` word of the first ring while it is being put back at the end of the chain:
/// the ring is closed (a claim in it is given up), and the word links no ring. Whoever
/// finds the first ring in the chain with this word opens it (sets the word to 0).
pub const REOPENING: u64 = 1;

/// Where the first ring is, as [`Shared::first_idle`] holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstRing {
    /// In the chain, since grace epoch `.0` (0 for a queue it never left).
    InChain(u64),
    /// Out of the chain, since grace epoch `.0`.
    Idle(u64),
    /// Being put back by the owner whose id bits are `.0`.
    PuttingBack(u32),
}

/// [`FirstRing::Idle`]'s bit.
const IDLE: u64 = 1 << 62;
/// [`FirstRing::PuttingBack`]'s bit.
const PUTTING_BACK: u64 = 1 << 63;

impl FirstRing {
    /// The state a word holds (any word is one).
    pub fn of(word: u64) -> Self {
        if word & PUTTING_BACK != 0 {
            Self::PuttingBack(word as u32)
        } else if word & IDLE != 0 {
            Self::Idle(word & (IDLE - 1))
        } else {
            Self::InChain(word)
        }
    }

    /// The word of this state (epochs past 2^62 wrap).
    pub fn word(self) -> u64 {
        match self {
            Self::InChain(since) => since & (IDLE - 1),
            Self::Idle(since) => IDLE | (since & (IDLE - 1)),
            Self::PuttingBack(owner) => PUTTING_BACK | u64::from(owner),
        }
    }
}

/// A put-back's claim on the first ring (the state word holds `mine`) while its consumer
/// puts the ring back: dropped while still `held` (the put-back left early), it ends the
/// put-back ([`RawUnboundedQueue::end_put_back`]).
struct PutBackClaim<'q, 'a, R: Rings, W: SlotWidth> {
    queue: &'q RawUnboundedQueue<'a, R, W>,
    mine: u64,
    held: bool,
}

impl<R: Rings, W: SlotWidth> PutBackClaim<'_, '_, R, W> {
    /// Gives the claim up, the first ring now in `state`.
    fn release(&mut self, state: FirstRing) {
        self.held = false;
        self.queue.change_state(self.mine, state);
    }
}

impl<R: Rings, W: SlotWidth> Drop for PutBackClaim<'_, '_, R, W> {
    fn drop(&mut self) {
        if self.held {
            // An error (a corrupt chain) leaves the claim: the ring stays out for good.
            let _ = self.queue.end_put_back(self.mine);
        }
    }
}

/// The ring a `next` word links, if any (not 0, not [`REOPENING`]).
#[inline]
fn linked(next: u64) -> Option<u64> {
    (next != 0 && next != REOPENING).then_some(next)
}

/// A ring that is never freed (the handle's first one, in the object's body), with its
/// bounded algorithm built once: an operation that finds the head or tail ring to be this
/// one needs neither a pin nor a ring lookup.
#[derive(Clone, Copy, Debug)]
pub struct Permanent<'a, W: SlotWidth = usize> {
    /// The ring's region offset (as the head and tail ring words name it).
    pub offset: u64,
    /// The ring's link word.
    pub next: &'a AtomicU64,
    /// The bounded algorithm over the ring.
    pub raw: RawQueue<'a, W>,
}

/// The bounded algorithm over `ring` of a queue whose shared words are `shared`, with
/// slots of `width`.
///
/// # Errors
/// [`Error::Corrupt`] when the ring's slots are not `capacity` slots of `width`.
pub fn ring_queue<'r, W: SlotWidth>(
    shared: Shared<'r>,
    ring: &Ring<'r>,
    width: W,
) -> Result<RawQueue<'r, W>> {
    let header = QueueHeader {
        head: ring.head,
        tail: ring.tail,
        not_empty: shared.not_empty,
        pop_sleepers: shared.pop_sleepers,
        not_full: shared.not_full,
        push_sleepers: shared.push_sleepers,
        lost: shared.lost,
        skipped: shared.skipped,
    };
    RawQueue::with_capacity(header, ring.slots, width, ring.capacity)
        .ok_or_else(|| Error::corrupt("queue ring", "its slots are no whole number"))
}

/// The unbounded queue algorithm over its shared words and rings (used by the handle and
/// by loom models). The caller keeps every ring it may reach from being freed for the
/// length of each call (the handle pins for a grace period).
pub struct RawUnboundedQueue<'a, R: Rings, W: SlotWidth = usize> {
    shared: &'a Shared<'a>,
    rings: &'a R,
    width: W,
    /// Slots a new ring is limited to.
    max_ring: u64,
}

impl<'a, R: Rings, W: SlotWidth> RawUnboundedQueue<'a, R, W> {
    /// The queue over `shared` and `rings`, whose slots are `width` words each; new rings
    /// have at most `max_ring` slots.
    pub fn new(shared: &'a Shared<'a>, rings: &'a R, width: W, max_ring: u64) -> Self {
        Self {
            shared,
            rings,
            width,
            max_ring: max_ring.max(1),
        }
    }

    /// The bounded algorithm over `ring`.
    fn raw<'r>(&'r self, ring: &Ring<'r>) -> Result<RawQueue<'r, W>> {
        ring_queue(*self.shared, ring, self.width)
    }

    /// Moves `word` from ring `from` to ring `to` unless someone already did.
    fn move_on(word: &AtomicU64, from: u64, to: u64) {
        // SeqCst: the ring pointers are read SeqCst (below); a reader that finds the new
        // ring finds it initialized (the link's SeqCst store published it).
        let _ = word.compare_exchange(from, to, Ordering::SeqCst, Ordering::Relaxed);
    }

    /// Appends an element given as words. Never full: a full ring makes the next.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when a new ring does not fit the region (nothing pushed);
    /// [`Error::Corrupt`]; [`Error::Contended`].
    pub fn try_push(&self, words: &[u64], me: OwnerId, liveness: &impl Liveness) -> Result<()> {
        for _ in 0..MAX_STEPS {
            // SeqCst: see `move_on`.
            let offset = self.shared.tail_ring.load(Ordering::SeqCst);
            let ring = self.rings.ring(offset)?;
            // SeqCst: a link read nonzero is a ring made before it (see `link`).
            let next = ring.next.load(Ordering::SeqCst);
            if next == REOPENING {
                self.open_first(offset, &ring)?;
                continue;
            }
            if next != 0 {
                Self::move_on(self.shared.tail_ring, offset, next);
                continue;
            }
            match self
                .raw(&ring)?
                .try_push_unless_closed(words, me, liveness, ring.next)
            {
                Pushed::Yes => return Ok(()),
                Pushed::Closed => {}
                Pushed::Full => {
                    let next = self.link(offset, &ring, me, liveness)?;
                    Self::move_on(self.shared.tail_ring, offset, next);
                }
            }
        }
        Err(Error::Contended("an unbounded queue push"))
    }

    /// [`Self::try_push`] without the caller's protection, into the `permanent` ring (never
    /// freed): when the tail ring is that one and the push goes in there, `true`; else
    /// `false` and nothing pushed (the caller protects itself and calls `try_push`). A
    /// queue that stays within its first ring so never pins.
    #[inline]
    pub fn try_push_permanent(
        &self,
        words: &[u64],
        me: OwnerId,
        liveness: &impl Liveness,
        permanent: &Permanent<'_, W>,
    ) -> bool {
        // SeqCst: see `move_on`.
        if self.shared.tail_ring.load(Ordering::SeqCst) != permanent.offset {
            return false;
        }
        // SeqCst: as in `try_push`.
        if permanent.next.load(Ordering::SeqCst) != 0 {
            return false;
        }
        permanent
            .raw
            .try_push_unless_closed(words, me, liveness, permanent.next)
            == Pushed::Yes
    }

    /// One push as the handle makes it: into the `permanent` ring with no protection
    /// ([`Self::try_push_permanent`]), else [`Self::try_push`] holding what `protect`
    /// returns (the handle's grace pin).
    ///
    /// # Errors
    /// As [`Self::try_push`], and `protect`'s.
    #[inline]
    pub fn try_push_protected<G>(
        &self,
        words: &[u64],
        me: OwnerId,
        liveness: &impl Liveness,
        permanent: &Permanent<'_, W>,
        protect: impl Fn() -> Result<G>,
    ) -> Result<()> {
        if self.try_push_permanent(words, me, liveness, permanent) {
            return Ok(());
        }
        self.try_push_pinned(words, me, liveness, protect)
    }

    /// [`Self::try_push`] holding what `protect` returns: the slow path of
    /// [`Self::try_push_protected`] (out of line, so that its fast path inlines).
    #[cold]
    #[inline(never)]
    fn try_push_pinned<G>(
        &self,
        words: &[u64],
        me: OwnerId,
        liveness: &impl Liveness,
        protect: impl Fn() -> Result<G>,
    ) -> Result<()> {
        let _guard = protect()?;
        self.try_push(words, me, liveness)
    }

    /// [`Self::try_pop`] without the caller's protection, as
    /// [`Self::try_push_permanent`]: `Some(popped)` when the head ring is the permanent
    /// one and the answer came from it alone (an element, or empty with no ring after
    /// it); `None` when the caller must protect itself and call `try_pop`.
    #[inline]
    pub fn try_pop_permanent(
        &self,
        words: &mut [u64],
        me: OwnerId,
        liveness: &impl Liveness,
        permanent: &Permanent<'_, W>,
    ) -> Option<bool> {
        // SeqCst: see `move_on`. Asked after each read of the ring's head word: the ring
        // may have left the chain and come back since an earlier look (see the module
        // docs).
        let head_ring = || self.shared.head_ring.load(Ordering::SeqCst) == permanent.offset;
        if permanent
            .raw
            .try_pop_while(words, me, liveness, head_ring)?
        {
            return Some(true);
        }
        // SeqCst: as in `try_pop`.
        (permanent.next.load(Ordering::SeqCst) == 0).then_some(false)
    }

    /// Links a new ring after the full ring `ring`, unless another push did: the offset of
    /// the ring that follows it.
    fn link(
        &self,
        offset: u64,
        ring: &Ring<'_>,
        me: OwnerId,
        liveness: &impl Liveness,
    ) -> Result<u64> {
        // SeqCst: as the link's readers. Linked meanwhile: no ring to make (the first
        // ring, still being put back, is in the chain already: the caller comes back to it
        // and opens it).
        let linked = ring.next.load(Ordering::SeqCst);
        if linked == REOPENING {
            self.check_reopening(offset)?;
            return Ok(offset);
        }
        if linked != 0 {
            return Ok(linked);
        }
        let capacity = ring.capacity.saturating_mul(2).clamp(1, self.max_ring);
        fail::fail_point!("unbounded_queue::before_make");
        let (fresh, recorded) = self.make_recorded(capacity, me, liveness)?;
        fail::fail_point!("unbounded_queue::before_link");
        if recorded {
            // Before the link: a record never names a linked ring (module docs).
            self.made().clear(me);
        }
        // SeqCst: publishes the ring's initialized slots to whoever reads the link, and
        // closes this ring in the total order the pushes' closed checks read (see
        // `RawQueue::try_push_unless_closed`).
        match ring
            .next
            .compare_exchange(0, fresh, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => Ok(fresh),
            Err(linked) => {
                self.rings.discard(fresh, capacity);
                Ok(linked)
            }
        }
    }

    /// The record of the ring being made ([`Shared::made`]).
    fn made(&self) -> MadeRecord<'a> {
        let [what, block] = self.shared.made;
        MadeRecord { what, block }
    }

    /// A new ring of `capacity` slots for `me` to link, recorded in [`Shared::made`] while
    /// it is made unless another maker's record is there (a dead maker's is given back
    /// first); and whether it was recorded.
    fn make_recorded(
        &self,
        capacity: u64,
        me: OwnerId,
        liveness: &impl Liveness,
    ) -> Result<(u64, bool)> {
        let made = self.made();
        let recorded = made.begin(me, capacity, liveness, |offset, capacity| {
            self.discard_made(offset, capacity);
        });
        let fresh = self.rings.make(capacity, |offset| {
            if recorded {
                made.block_taken(me, offset);
            }
        });
        match fresh {
            Ok(fresh) => Ok((fresh, recorded)),
            Err(error) => {
                if recorded {
                    // A block taken before the error stays out (as before the records).
                    made.clear(me);
                }
                Err(error)
            }
        }
    }

    /// Frees a dead maker's ring at `offset`, of the `capacity` it recorded.
    fn discard_made(&self, offset: u64, capacity: u64) {
        self.rings
            .discard(offset, capacity.clamp(1, crate::queue::MAX_CAPACITY));
    }

    /// Gives back the ring a dead maker recorded in [`Shared::made`] (taken from the
    /// arena, never linked), and clears the record: [`MadeRecord::give_back`].
    pub fn give_back_made(&self, liveness: &impl Liveness) {
        self.made().give_back(liveness, |offset, capacity| {
            self.discard_made(offset, capacity);
        });
    }

    /// Opens the first ring, found in the chain at `offset` with [`REOPENING`] in its
    /// `next` word: it was linked back (see `put_first_back`), and from now on it takes
    /// pushes. Anyone who finds it so helps.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for [`REOPENING`] in another ring's `next` word.
    fn open_first(&self, offset: u64, ring: &Ring<'_>) -> Result<()> {
        self.check_reopening(offset)?;
        // SeqCst: as a link (see `link`): claims in the ring after this read it open.
        let _ = ring
            .next
            .compare_exchange(REOPENING, 0, Ordering::SeqCst, Ordering::Relaxed);
        Ok(())
    }

    /// Checks that the ring at `offset`, whose `next` word reads [`REOPENING`], is the
    /// first ring (the only one ever marked so).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for another ring.
    fn check_reopening(&self, offset: u64) -> Result<()> {
        if offset == self.shared.first_ring {
            return Ok(());
        }
        Err(Error::corrupt(
            "queue ring",
            format!("ring at {offset}, not the first, is marked as being put back"),
        ))
    }

    /// A consumer found `ring` (at `offset`, not the first) empty at the end of the chain:
    /// if the first ring has been out of the chain for a grace period, links it back
    /// after `ring`, so that the queue returns to the ring that needs no pin. The first
    /// ring is closed ([`REOPENING`]) and renewed ([`RawQueue::renew`]: its tail and head
    /// move on) before it is linked, and opened only after: see the module docs for why no
    /// process that looked at it before can act on it wrongly after. Also records a
    /// departure its consumer did not record, and ends a dead consumer's put-back (module
    /// docs, "Kills and freezes").
    ///
    /// # Errors
    /// [`Error::Corrupt`]; the grace period's.
    #[cold]
    fn put_first_back(&self, offset: u64, ring: &Ring<'_>, liveness: &impl Liveness) -> Result<()> {
        // SeqCst: after the chain left the ring (its record follows the move).
        let seen = self.shared.first_idle.load(Ordering::SeqCst);
        let since = match FirstRing::of(seen) {
            FirstRing::Idle(since) => since,
            FirstRing::InChain(_) => {
                // Left by a consumer that has not recorded it (yet, or ever: killed)?
                if !self.first_in_chain()? {
                    self.record_departure(seen)?;
                }
                return Ok(());
            }
            FirstRing::PuttingBack(owner) => return self.end_dead_put_back(seen, owner, liveness),
        };
        if !self.rings.may_reuse_first(since)? {
            return Ok(());
        }
        // One consumer puts it back, named.
        let mine = FirstRing::PuttingBack(liveness.me().bits());
        if !self.change_state(seen, mine) {
            return Ok(());
        }
        // Ends the put-back if we leave it early (an error, or a panic: only a
        // failpoint's), as a dead owner's is ended: our claim would otherwise hold for as
        // long as this process lives.
        let mut claim = PutBackClaim {
            queue: self,
            mine: mine.word(),
            held: true,
        };
        let first_offset = self.shared.first_ring;
        let first = self.rings.ring(first_offset)?;
        fail::fail_point!("unbounded_queue::put_back_after_claim");
        // SeqCst: a claim in the first ring that reads this gives its slot up. The ring's
        // old link is gone with it (the ring it named may be freed by now).
        first.next.store(REOPENING, Ordering::SeqCst);
        // Tail and head on, past every ticket given up while the ring was out (tickets
        // given up from now on count in `len` until the first pop passes them), or the
        // ring stays out for now (see `RawQueue::renew`).
        let renewed = self.raw(&first)?.renew(liveness.me(), liveness, first.next);
        // SeqCst: closes `ring` (as a push's link does) and makes the first ring its next.
        let linked = renewed
            && ring
                .next
                .compare_exchange(0, first_offset, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok();
        if !linked {
            // A push linked a ring first, or the ring could not be renewed: the first ring
            // stays out, closed, and a put-back tries again a grace period from now (a
            // frozen process in the ring does not make every empty poll retry). (Nobody
            // else changes the word meanwhile: only a dead owner's claim is ended by
            // others.)
            claim.release(FirstRing::Idle(self.rings.idle_epoch()?));
            return Ok(());
        }
        fail::fail_point!("unbounded_queue::put_back_before_open");
        self.open_first(first_offset, &first)?;
        Self::move_on(self.shared.tail_ring, offset, first_offset);
        // Back in the chain, since an epoch later than any return before (a grace period
        // has passed since the departure).
        claim.release(FirstRing::InChain(self.rings.idle_epoch()?));
        Ok(())
    }

    /// Moves the first ring's state word from `seen` to `state`; whether it did (`false`:
    /// another process changed it first).
    fn change_state(&self, seen: u64, state: FirstRing) -> bool {
        // SeqCst: as the ring words' changes (the put-back's claim, close and link, the
        // head ring's moves).
        self.shared
            .first_idle
            .compare_exchange(seen, state.word(), Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    /// Records that the chain has left the first ring, whose state was read as `seen` ("in
    /// the chain") after the move: "out of the chain since" the grace epoch read now. A
    /// failure: recorded already (by the consumer that moved the head ring, or by one that
    /// found the ring out of the chain).
    ///
    /// # Errors
    /// [`Error::Corrupt`].
    fn record_departure(&self, seen: u64) -> Result<()> {
        self.change_state(seen, FirstRing::Idle(self.rings.idle_epoch()?));
        Ok(())
    }

    /// Whether the first ring is in the chain (reachable from the head ring), for a caller
    /// under the slow paths' protection.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a chain longer than [`MAX_RINGS`] or a bad ring.
    fn first_in_chain(&self) -> Result<bool> {
        // SeqCst: see `move_on`.
        let mut offset = self.shared.head_ring.load(Ordering::SeqCst);
        for _ in 0..MAX_RINGS {
            if offset == self.shared.first_ring {
                return Ok(true);
            }
            // SeqCst: as above.
            match linked(self.rings.ring(offset)?.next.load(Ordering::SeqCst)) {
                Some(next) => offset = next,
                None => return Ok(false),
            }
        }
        Err(Error::corrupt("queue rings", "the chain does not end"))
    }

    /// A put-back's claim (`seen`, naming `owner`): left alone while its owner may live
    /// (this process's own claim included: another thread's); a dead owner's put-back is
    /// ended for it ([`Self::end_put_back`]; when the ring did not get linked, the grace
    /// period starts again: the dead owner's check of it is not ours).
    ///
    /// # Errors
    /// [`Error::Corrupt`].
    fn end_dead_put_back(&self, seen: u64, owner: u32, liveness: &impl Liveness) -> Result<()> {
        // A claim that names no owner (a hostile word) is as good as a dead one's.
        let alive = OwnerId::from_bits(owner).is_some_and(|owner| {
            owner == liveness.me()
                || (liveness.may_be_alive(owner)
                    && (!self.rings.asks_liveness() || liveness.is_alive(owner)))
        });
        if alive {
            return Ok(());
        }
        self.end_put_back(seen)
    }

    /// Ends the put-back whose claim names an owner of participant slot `slot` (or no owner
    /// at all), if there is one: the participant sweep's part (see the module docs), for a
    /// slot it retires. The caller holds the slow paths' protection.
    ///
    /// # Errors
    /// [`Error::Corrupt`].
    pub fn retire_put_back_owner(&self, slot: u32) -> Result<()> {
        // SeqCst: as the state word's other reads.
        let seen = self.shared.first_idle.load(Ordering::SeqCst);
        match FirstRing::of(seen) {
            FirstRing::PuttingBack(owner)
                if OwnerId::from_bits(owner).is_none_or(|owner| owner.slot() == slot) =>
            {
                self.end_put_back(seen)
            }
            _ => Ok(()),
        }
    }

    /// Ends the put-back whose claim is `seen`: the first ring is "in the chain" if it got
    /// linked, else "out of the chain since now". Nobody else links the first ring while
    /// the claim holds, so the look at the chain stays true but for a departure, which the
    /// next consumer records.
    ///
    /// # Errors
    /// [`Error::Corrupt`].
    fn end_put_back(&self, seen: u64) -> Result<()> {
        let in_chain = self.first_in_chain()?;
        let since = self.rings.idle_epoch()?;
        let state = if in_chain {
            FirstRing::InChain(since)
        } else {
            FirstRing::Idle(since)
        };
        // A failure: ended by another consumer.
        self.change_state(seen, state);
        Ok(())
    }

    /// Removes the oldest element into `words`; `false` if there is none ready.
    ///
    /// # Errors
    /// [`Error::Corrupt`]; [`Error::Contended`].
    pub fn try_pop(
        &self,
        words: &mut [u64],
        me: OwnerId,
        liveness: &impl Liveness,
    ) -> Result<bool> {
        for _ in 0..MAX_STEPS {
            // SeqCst: see `move_on`.
            let offset = self.shared.head_ring.load(Ordering::SeqCst);
            let ring = self.rings.ring(offset)?;
            let raw = self.raw(&ring)?;
            if raw.try_pop(words, me, liveness) {
                return Ok(true);
            }
            // SeqCst: see `RawQueue::is_drained`.
            let next = ring.next.load(Ordering::SeqCst);
            if next == REOPENING {
                self.open_first(offset, &ring)?;
                continue;
            }
            if next == 0 {
                // Empty, and every element is in this ring: a ring after the first may
                // hand over to the first again.
                if offset != self.shared.first_ring {
                    self.put_first_back(offset, &ring, liveness)?;
                }
                return Ok(false);
            }
            // Closed: what was claimed before the close may have arrived meanwhile.
            if raw.try_pop(words, me, liveness) {
                return Ok(true);
            }
            if !raw.is_drained(liveness) {
                return Ok(false); // an element is on its way in this ring
            }
            // Drained: the ring is done with. Producers first (the tail ring never falls
            // behind the head ring), then consumers; whoever moves the head ring retires.
            Self::move_on(self.shared.tail_ring, offset, next);
            fail::fail_point!("unbounded_queue::before_unlink");
            // SeqCst: see `move_on`.
            if self
                .shared
                .head_ring
                .compare_exchange(offset, next, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                self.rings.retire(offset)?;
                if offset == self.shared.first_ring {
                    // SeqCst: after the move (the epoch is read after it, see `idle_epoch`).
                    let seen = self.shared.first_idle.load(Ordering::SeqCst);
                    if matches!(FirstRing::of(seen), FirstRing::InChain(_)) {
                        self.record_departure(seen)?;
                    }
                }
            }
        }
        Err(Error::Contended("an unbounded queue pop"))
    }

    /// One pop attempt as the handle makes it: in the `permanent` ring with no protection
    /// ([`Self::try_pop_permanent`]), else [`Self::try_pop`] holding what `protect`
    /// returns (the handle's grace pin) for the attempt.
    ///
    /// # Errors
    /// As [`Self::try_pop`], and `protect`'s.
    #[inline]
    pub fn try_pop_protected<G>(
        &self,
        words: &mut [u64],
        me: OwnerId,
        liveness: &impl Liveness,
        permanent: &Permanent<'_, W>,
        protect: impl Fn() -> Result<G>,
    ) -> Result<bool> {
        if let Some(popped) = self.try_pop_permanent(words, me, liveness, permanent) {
            return Ok(popped);
        }
        self.try_pop_pinned(words, me, liveness, protect)
    }

    /// [`Self::try_pop`] holding what `protect` returns: the slow path of
    /// [`Self::try_pop_protected`] (out of line, as `try_push_pinned`).
    #[cold]
    #[inline(never)]
    fn try_pop_pinned<G>(
        &self,
        words: &mut [u64],
        me: OwnerId,
        liveness: &impl Liveness,
        protect: impl Fn() -> Result<G>,
    ) -> Result<bool> {
        let _guard = protect()?;
        self.try_pop(words, me, liveness)
    }

    /// As [`try_pop_protected`](Self::try_pop_protected), sleeping while empty until
    /// `deadline` (forever with `None`); nothing `protect` returns is held while asleep.
    ///
    /// # Errors
    /// As [`Self::try_pop_protected`].
    #[allow(clippy::too_many_arguments)]
    pub fn pop<G>(
        &self,
        words: &mut [u64],
        me: OwnerId,
        liveness: &impl Liveness,
        deadline: Option<Instant>,
        permanent: &Permanent<'_, W>,
        protect: impl Fn() -> Result<G>,
    ) -> Result<bool> {
        let mut error = None;
        let mut attempt = || match self.try_pop_protected(words, me, liveness, permanent, &protect)
        {
            Ok(popped) => popped,
            Err(failure) => {
                error = Some(failure);
                true // stop waiting
            }
        };
        if attempt() {
            return error.map_or(Ok(true), Err);
        }
        let popped = RawQueue::<usize>::wait_until(
            self.shared.not_empty,
            self.shared.pop_sleepers,
            me,
            deadline,
            &mut attempt,
        );
        error.map_or(Ok(popped), Err)
    }

    /// Elements in the queue (pushes claimed and not yet popped, in every ring), a
    /// snapshot.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a chain longer than [`MAX_RINGS`] or a bad ring.
    pub fn len(&self) -> Result<u64> {
        let mut total = 0u64;
        self.for_each_ring(|ring| {
            total = total.saturating_add(self.raw(ring)?.len());
            Ok(())
        })?;
        Ok(total)
    }

    /// Runs `f` on each ring of the chain, from the head ring on.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a chain longer than [`MAX_RINGS`] or a bad ring; `f`'s.
    pub fn for_each_ring(&self, mut f: impl FnMut(&Ring<'_>) -> Result<()>) -> Result<()> {
        // SeqCst: see `move_on`.
        let mut offset = self.shared.head_ring.load(Ordering::SeqCst);
        for _ in 0..MAX_RINGS {
            let ring = self.rings.ring(offset)?;
            f(&ring)?;
            // SeqCst: as above.
            let next = ring.next.load(Ordering::SeqCst);
            if next == REOPENING {
                self.check_reopening(offset)?;
            }
            match linked(next) {
                Some(next) => offset = next,
                None => return Ok(()),
            }
        }
        Err(Error::corrupt("queue rings", "the chain does not end"))
    }

    /// Whether the queue looks empty.
    ///
    /// # Errors
    /// As [`Self::len`].
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// Slots of the first ring of a queue made by
/// [`RegionExt::unbounded_queue`](crate::RegionExt::unbounded_queue).
pub const DEFAULT_FIRST_RING: u64 = 64;

#[cfg(not(loom))]
pub(crate) use handle::{check, retire_owner_slot};
#[cfg(not(loom))]
pub use handle::{ByteUnboundedQueue, UnboundedQueue};

#[cfg(not(loom))]
mod handle {
    use super::{
        layout, ring_queue, Permanent, RawUnboundedQueue, Ring, Rings, Shared, MAX_RING_BYTES,
    };
    use crate::identity::{check_elem_size, name_expected, short_type_name, ElementType};
    use crate::queue::{
        element_width, initial_stamp, BodyWords, ElementWidth, SlotWidth, MAX_CAPACITY,
    };
    use crate::sleepers::Sleepers;
    use crate::words::word_count_of;
    use crate::words::{
        check_fits, read_bytes_into, try_read_words_into, with_bytes_as_words, with_words_of,
    };
    use bytemuck::Pod;
    use shmarena_engine::sync::{AtomicU64, Ordering};
    use shmarena_engine::{Error, Finding, Object, ObjectKind, Region, Result, TypeDescriptor};
    use std::marker::PhantomData;
    use std::ptr::NonNull;
    use std::time::{Duration, Instant};

    /// Words of a ring's header.
    const RING_HEADER_WORDS: u64 = layout::RING_SLOTS / 8;

    /// A named unbounded queue of elements of `elem_size` bytes (chosen at creation): a
    /// push never finds it full, only a full region stops it
    /// ([`Error::OutOfMemory`]). `capacity` is the first ring's room; later rings double,
    /// to [`MAX_RING_BYTES`](super::MAX_RING_BYTES) each. Shorter elements are padded with
    /// zero bytes; a pop returns all `elem_size` bytes. See the [module
    /// docs](crate::unbounded_queue) for the algorithm and what a kill costs.
    ///
    /// ```
    /// use shmarena::{ByteUnboundedQueue, Region};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-unbounded-{}", std::process::id()));
    /// let region = Region::create(&path, 4 << 20)?;
    /// let jobs = ByteUnboundedQueue::get_or_create(&region, "jobs", 4, 8)?;
    /// for job in 0..1000u64 {
    ///     jobs.push(&job.to_le_bytes())?; // never full: it grows
    /// }
    /// assert_eq!(jobs.len()?, 1000);
    /// assert_eq!(jobs.try_pop()?, Some(0u64.to_le_bytes().to_vec()));
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    #[derive(Clone)]
    pub struct ByteUnboundedQueue {
        base: NonNull<AtomicU64>,
        first_capacity: u64,
        /// Slots a new ring is limited to (computed once: a division).
        max_ring: u64,
        slot_words: u64,
        elem_size: usize,
        /// The words every ring shares, and the first ring with its algorithm, built once:
        /// their references point into the mapping, which `object` keeps alive as long as
        /// the handle (they are only lent out for `&self`'s lifetime).
        shared: Shared<'static>,
        first: Permanent<'static>,
        /// Looks at whether the first ring may serve again (see `may_reuse_first`).
        reuse_looks: std::sync::Arc<std::sync::atomic::AtomicU32>,
        object: Object,
    }

    // SAFETY: the queue's words are atomics in the shared mapping, which `object` keeps
    // alive; elements are copied in and out, never referenced.
    unsafe impl Send for ByteUnboundedQueue {}
    // SAFETY: as above.
    unsafe impl Sync for ByteUnboundedQueue {}

    impl std::fmt::Debug for ByteUnboundedQueue {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("UnboundedQueue")
                .field("name", &self.object.info().name)
                .field("elem_size", &self.elem_size)
                .finish_non_exhaustive()
        }
    }

    fn descriptor(capacity: u64, elem: ElementType) -> TypeDescriptor {
        TypeDescriptor {
            elem_tag: elem.tag,
            ..TypeDescriptor::new(ObjectKind::UnboundedQueue, elem.code, elem.size, capacity)
        }
    }

    /// Makes every slot of a new ring free for its first ticket. Relaxed stores: the ring
    /// is published later (the catalog's Release, or the link's compare-exchange).
    fn initialize_stamps(ring: &Ring<'_>, slot_words: u64) {
        for (slot, stamp) in ring.slots.iter().step_by(slot_words as usize).enumerate() {
            stamp.store(initial_stamp(slot as u64), Ordering::Relaxed);
        }
    }

    /// The ring of `capacity` slots whose words (header, then slots) are `all`.
    fn ring_in(all: &[AtomicU64], capacity: u64) -> Ring<'_> {
        Ring {
            head: &all[(layout::RING_HEAD / 8) as usize],
            tail: &all[(layout::RING_TAIL / 8) as usize],
            next: &all[(layout::RING_NEXT / 8) as usize],
            slots: &all[RING_HEADER_WORDS as usize..],
            capacity,
        }
    }

    /// The rings of one queue: the first in the object's body, later ones in arena blocks.
    struct RegionRings<'q> {
        queue: &'q ByteUnboundedQueue,
    }

    impl RegionRings<'_> {
        fn region(&self) -> &Region {
            self.queue.object.region()
        }

        fn first(&self) -> u64 {
            self.queue.first.offset
        }

        fn ring_words(&self, capacity: u64) -> u64 {
            RING_HEADER_WORDS + capacity * self.queue.slot_words
        }

        /// Pointer to the `words` words of a ring at `offset`, checked.
        fn words_at(&self, offset: u64, words: u64) -> Result<NonNull<AtomicU64>> {
            if offset == self.first() {
                // The first ring: inside the body (checked when the handle was made).
                // SAFETY: the body holds the first ring (from_object checked it).
                return Ok(unsafe {
                    NonNull::new_unchecked(
                        self.queue
                            .base
                            .as_ptr()
                            .add((layout::FIRST_RING / 8) as usize),
                    )
                });
            }
            self.region()
                .arena_atomics::<std::sync::atomic::AtomicU64>(offset, words)
                .map(NonNull::cast)
        }
    }

    impl Rings for RegionRings<'_> {
        fn ring(&self, offset: u64) -> Result<Ring<'_>> {
            let capacity = self.capacity_checked(offset)?;
            let words = self.ring_words(capacity);
            let base = self.words_at(offset, words)?;
            // SAFETY: `words_at` checked `words` words at `base` inside the mapping (body or
            // arena), which outlives `self`; all access is atomic.
            let all = unsafe { std::slice::from_raw_parts(base.as_ptr(), words as usize) };
            Ok(ring_in(all, capacity))
        }

        fn make(&self, capacity: u64, record: impl FnOnce(u64)) -> Result<u64> {
            let offset = self
                .region()
                .alloc_zeroed_words_recorded(self.ring_words(capacity), record)?;
            let ring = self.words_at(offset, self.ring_words(capacity))?;
            let word = |index: u64| {
                // SAFETY: index < ring_words(capacity), checked by `words_at`.
                unsafe { &*ring.as_ptr().add(index as usize) }
            };
            // Relaxed: published by the SeqCst compare-exchange of the link.
            word(layout::RING_CAPACITY / 8).store(capacity, Ordering::Relaxed);
            initialize_stamps(&self.ring(offset)?, self.queue.slot_words);
            Ok(offset)
        }

        fn discard(&self, offset: u64, capacity: u64) {
            let words = self.ring_words(capacity);
            // Never published: free at once. An error (a corrupt arena) leaks the ring.
            let _ = self.region().arena().free(offset, words * 8);
        }

        fn retire(&self, offset: u64) -> Result<()> {
            if offset == self.first() {
                return Ok(()); // part of the body
            }
            let words = self.ring_words(self.capacity_of(offset));
            self.region().retire_block(offset, words * 8)
        }

        fn idle_epoch(&self) -> Result<u64> {
            self.region().grace_epoch()
        }

        fn may_reuse_first(&self, epoch: u64) -> Result<bool> {
            // Mostly the epoch has moved on by itself (every process's reclamation moves
            // it): one read. Else the first look, then one in [`REUSE_LOOKS`], tries to
            // move it on: a scan of the participant table, and an idle consumer may poll
            // an empty queue often. Relaxed: a count of this handle and its clones.
            if self.region().grace_has_passed_already(epoch)? {
                return Ok(true);
            }
            let looks = self.queue.reuse_looks.fetch_add(1, Ordering::Relaxed);
            if looks % REUSE_LOOKS != 0 {
                return Ok(false);
            }
            self.region().grace_has_passed(epoch)
        }

        fn asks_liveness(&self) -> bool {
            // Relaxed: a count of this handle and its clones (shared with
            // `may_reuse_first`'s looks).
            self.queue.reuse_looks.fetch_add(1, Ordering::Relaxed) % REUSE_LOOKS == 0
        }
    }

    /// A consumer that finds the queue empty past its first ring looks whether the first
    /// ring may serve again once in this many times (see `may_reuse_first`).
    const REUSE_LOOKS: u32 = 64;

    impl RegionRings<'_> {
        /// Slots of the ring at `offset` (1 for a ring no longer readable as one: the
        /// block is then refused by the arena's own checks).
        fn capacity_of(&self, offset: u64) -> u64 {
            self.capacity_checked(offset).unwrap_or(1)
        }

        /// The capacity word of the ring at `offset`, checked against what a ring can be.
        fn capacity_checked(&self, offset: u64) -> Result<u64> {
            if offset == self.first() {
                return Ok(self.queue.first_capacity);
            }
            let header = self.words_at(offset, RING_HEADER_WORDS)?;
            // SAFETY: the header's words were checked by `words_at`.
            // Relaxed: the ring was published (SeqCst link) before its offset was read.
            let capacity = unsafe { &*header.as_ptr().add((layout::RING_CAPACITY / 8) as usize) }
                .load(Ordering::Relaxed);
            if capacity == 0 || capacity > MAX_CAPACITY {
                return Err(Error::corrupt(
                    "queue ring",
                    format!("ring at {offset} has {capacity} slots"),
                ));
            }
            Ok(capacity)
        }
    }

    impl ByteUnboundedQueue {
        /// Opens the unbounded queue `name`, creating it empty with a first ring of
        /// `capacity` slots for elements of `elem_size` bytes.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for a zero capacity or an element over 64 KiB;
        /// [`Error::TypeMismatch`] (also for another element size); catalog and arena
        /// errors.
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

        fn create(
            region: &Region,
            name: &str,
            capacity: u64,
            elem_size: usize,
            elem: ElementType,
        ) -> Result<Self> {
            if capacity == 0 || capacity > MAX_CAPACITY || elem_size > usize::from(u16::MAX) {
                return Err(Error::InvalidArgument(format!(
                    "an unbounded queue needs a first ring of 1 to 2^28 slots ({capacity} asked) \
                     of elements up to 65535 bytes ({elem_size} given)"
                )));
            }
            let slot_words = 1 + word_count_of(elem_size as u64);
            let size = capacity
                .checked_mul(8 * slot_words)
                .and_then(|slots| slots.checked_add(layout::FIRST_RING + layout::RING_SLOTS))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("a first ring of {capacity} slots is too large"))
                })?;
            let descriptor = descriptor(capacity, elem);
            let (object, _) =
                crate::sweep::get_or_create_object(region, name, &descriptor, size, |object| {
                    let queue = Self::from_object(object.clone())?;
                    let first = queue.first.offset;
                    // Relaxed: published by the catalog's Release.
                    queue.shared.head_ring.store(first, Ordering::Relaxed);
                    queue.shared.tail_ring.store(first, Ordering::Relaxed);
                    initialize_stamps(&RegionRings { queue: &queue }.ring(first)?, slot_words);
                    Ok(())
                })?;
            Self::opened(object)
        }

        /// Opens the existing unbounded queue `name`, whatever its element size.
        ///
        /// # Errors
        /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::Corrupt`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            let info = region
                .find_object(name)?
                .ok_or_else(|| Error::ObjectNotFound(name.to_owned()))?;
            Self::open_typed(
                region,
                name,
                ElementType::bytes(usize::from(info.descriptor.elem_size)),
            )
        }

        fn open_typed(region: &Region, name: &str, elem: ElementType) -> Result<Self> {
            Self::opened(crate::sweep::open_object(
                region,
                name,
                &descriptor(0, elem),
            )?)
        }

        fn from_object(object: Object) -> Result<Self> {
            let first_capacity = object.info().descriptor.capacity;
            let elem_size = usize::from(object.info().descriptor.elem_size);
            let slot_words = 1 + word_count_of(elem_size as u64);
            if first_capacity == 0 || first_capacity > MAX_CAPACITY {
                return Err(Error::corrupt(
                    "queue capacity",
                    format!("object {:?}: {first_capacity}", object.info().name),
                ));
            }
            // Checks that the header and the first ring lie inside the body.
            let first_words = RING_HEADER_WORDS + first_capacity * slot_words;
            let base = object
                .atomics::<std::sync::atomic::AtomicU64>(0, layout::FIRST_RING / 8 + first_words)?;
            // SAFETY: the words just checked; the mapping lives as long as `object`, which
            // the handle keeps beside these references.
            let body = unsafe { BodyWords::new(base, layout::FIRST_RING / 8 + first_words) };
            let shared = Shared {
                head_ring: body.word(layout::HEAD_RING),
                tail_ring: body.word(layout::TAIL_RING),
                not_empty: body.half_word(layout::NOT_EMPTY),
                pop_sleepers: Sleepers {
                    count: body.half_word(layout::POP_SLEEPERS),
                    registry: body.words(layout::POP_REGISTRY, layout::REGISTRY_WORDS),
                },
                not_full: body.half_word(layout::NOT_FULL),
                push_sleepers: Sleepers {
                    count: body.half_word(layout::PUSH_SLEEPERS),
                    registry: &[],
                },
                lost: body.word(layout::LOST),
                skipped: body.word(layout::SKIPPED),
                first_ring: object.info().offset + layout::FIRST_RING,
                first_idle: body.word(layout::FIRST_IDLE),
                made: [body.word(layout::MADE_RING), body.word(layout::MADE_BLOCK)],
            };
            let all = body.words(layout::FIRST_RING, first_words);
            let ring = ring_in(all, first_capacity);
            let first = Permanent {
                offset: shared.first_ring,
                next: ring.next,
                raw: ring_queue(shared, &ring, slot_words as usize)?,
            };
            Ok(Self {
                base,
                first_capacity,
                max_ring: (MAX_RING_BYTES / (8 * slot_words)).max(first_capacity),
                slot_words,
                elem_size,
                shared,
                first,
                reuse_looks: std::sync::Arc::default(),
                object,
            })
        }

        /// [`Self::from_object`] for a handle a caller opened or created: a ring a dead
        /// producer made and never linked comes back here too, not only at the next make,
        /// so that a queue that grows no more (a worker killed, restarted, and the queue
        /// never that full again) does not keep it. (The checks and the participant
        /// sweep build their handles with `from_object`: a check writes nothing.)
        fn opened(object: Object) -> Result<Self> {
            let queue = Self::from_object(object)?;
            let region = queue.object.region();
            queue.with_raw(queue.first.raw.width(), |raw| raw.give_back_made(region));
            Ok(queue)
        }

        /// Runs `f` on the algorithm over this queue's words, with slots of `width` (the
        /// queue's own, or a typed handle's constant for it).
        fn with_raw<W: SlotWidth, T>(
            &self,
            width: W,
            f: impl FnOnce(&RawUnboundedQueue<'_, RegionRings<'_>, W>) -> T,
        ) -> T {
            let rings = RegionRings { queue: self };
            f(&RawUnboundedQueue::new(
                &self.shared,
                &rings,
                width,
                self.max_ring,
            ))
        }

        /// Appends `element`. Never sleeps: the queue grows.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for an element over `elem_size` bytes;
        /// [`Error::OutOfMemory`] when the region has no room for a new ring (nothing
        /// pushed; the queue stays usable).
        pub fn push(&self, element: &[u8]) -> Result<()> {
            check_fits(element, self.elem_size, "an element", "queue")?;
            with_bytes_as_words(element, (self.slot_words - 1) as usize, |words| {
                self.push_words(&self.first, words)
            })
        }

        /// Pushes `words`, whose first ring is `first` (this handle's, or a typed handle's
        /// with its constant slot width, which every ring then uses).
        fn push_words<W: SlotWidth>(&self, first: &Permanent<'_, W>, words: &[u64]) -> Result<()> {
            let region = self.object.region();
            let me = region.participant_id();
            self.with_raw(first.raw.width(), |raw| {
                raw.try_push_protected(words, me, region, first, || region.pin())
            })
        }

        /// Removes the oldest element, if one is ready.
        ///
        /// # Errors
        /// [`Error::Corrupt`]; [`Error::Contended`].
        pub fn try_pop(&self) -> Result<Option<Vec<u8>>> {
            self.pop_until(None, false)
        }

        /// Removes the oldest element, waiting at most `timeout` (forever with `None`).
        ///
        /// # Errors
        /// As [`Self::try_pop`].
        pub fn pop_timeout(&self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
            if timeout == Some(Duration::ZERO) {
                // One attempt, announcing no wait (a wait costs a membarrier).
                return self.pop_until(None, false);
            }
            // A deadline past what `Instant` can hold is no deadline.
            let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
            self.pop_until(deadline, true)
        }

        fn pop_until(&self, deadline: Option<Instant>, wait: bool) -> Result<Option<Vec<u8>>> {
            read_bytes_into((self.slot_words - 1) as usize, self.elem_size, |words| {
                self.pop_words(&self.first, words, deadline, wait)
            })
        }

        /// Pops into `words` (waiting until `deadline` when `wait`), as `push_words`;
        /// whether it did.
        fn pop_words<W: SlotWidth>(
            &self,
            first: &Permanent<'_, W>,
            words: &mut [u64],
            deadline: Option<Instant>,
            wait: bool,
        ) -> Result<bool> {
            let region = self.object.region();
            let me = region.participant_id();
            let protect = || region.pin();
            self.with_raw(first.raw.width(), |raw| {
                if wait {
                    raw.pop(words, me, region, deadline, first, protect)
                } else {
                    raw.try_pop_protected(words, me, region, first, protect)
                }
            })
        }

        /// Elements in the queue, a snapshot.
        ///
        /// # Errors
        /// [`Error::Corrupt`] for a corrupted chain of rings.
        pub fn len(&self) -> Result<usize> {
            let _pin = self.object.region().pin()?;
            #[allow(clippy::redundant_closure_for_method_calls)]
            let len = self.with_raw(self.slot_words as usize, |raw| raw.len())?;
            Ok(len as usize)
        }

        /// Whether the queue looks empty.
        ///
        /// # Errors
        /// As [`Self::len`].
        pub fn is_empty(&self) -> Result<bool> {
            Ok(self.len()? == 0)
        }

        /// Bytes of one element.
        pub fn elem_size(&self) -> usize {
            self.elem_size
        }

        /// Elements lost because their consumer died after claiming them, counted when a
        /// push takes the dead consumer's slot over: one lost in a ring that is drained
        /// and freed before that is not counted.
        pub fn lost(&self) -> u64 {
            // Relaxed: a statistic.
            self.shared.lost.load(Ordering::Relaxed)
        }

        /// Pushes abandoned by producers that died before finishing them.
        pub fn skipped(&self) -> u64 {
            // Relaxed: a statistic.
            self.shared.skipped.load(Ordering::Relaxed)
        }

        /// The object's name.
        pub fn name(&self) -> &str {
            &self.object.info().name
        }

        /// The region the queue lives in.
        pub fn region(&self) -> &Region {
            self.object.region()
        }

        /// Runs `f` on each ring of the chain, oldest first, and on the first ring also when
        /// the chain has left it (it keeps its slots, and may serve again); pinned.
        fn each_ring(&self, mut f: impl FnMut(&Ring<'_>) -> Result<()>) -> Result<()> {
            let _pin = self.object.region().pin()?;
            let mut saw_first = false;
            self.with_raw(self.slot_words as usize, |raw| {
                raw.for_each_ring(|ring| {
                    saw_first |= std::ptr::eq(ring.next, self.first.next);
                    f(ring)
                })
            })?;
            if saw_first {
                return Ok(());
            }
            f(&RegionRings { queue: self }.ring(self.first.offset)?)
        }
    }

    /// A named unbounded queue of `T`: [`ByteUnboundedQueue`] with typed elements (and
    /// the type checked by name, size and alignment when it is opened, as for every
    /// structure of user types). A push never finds it full; only a full region stops it.
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-unbounded-typed-{}", std::process::id()));
    /// let region = Region::create(&path, 4 << 20)?;
    /// let events = region.unbounded_queue::<[u32; 2]>("events")?;
    /// for i in 0..10_000 {
    ///     events.push([i, i * 2])?;
    /// }
    /// assert_eq!(events.try_pop()?, Some([0, 0]));
    /// assert_eq!(events.len()?, 9_999);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    pub struct UnboundedQueue<T: Pod> {
        inner: ByteUnboundedQueue,
        /// `inner`'s first ring with `T`'s slot width, a constant (see [`Self::typed`]).
        first: Permanent<'static, ElementWidth<T>>,
        _type: PhantomData<T>,
    }

    impl<T: Pod> Clone for UnboundedQueue<T> {
        fn clone(&self) -> Self {
            Self {
                inner: self.inner.clone(),
                first: self.first,
                _type: PhantomData,
            }
        }
    }

    impl<T: Pod> std::fmt::Debug for UnboundedQueue<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.inner.fmt(f)
        }
    }

    impl<T: Pod> UnboundedQueue<T> {
        /// Opens the unbounded queue `name`, creating it empty with a first ring of
        /// `capacity` slots (it grows past them).
        ///
        /// # Errors
        /// As [`ByteUnboundedQueue::get_or_create`].
        pub fn get_or_create(region: &Region, name: &str, capacity: u64) -> Result<Self> {
            ByteUnboundedQueue::create(
                region,
                name,
                capacity,
                size_of::<T>(),
                ElementType::of::<T>(),
            )
            .and_then(Self::typed)
            .map_err(|error| {
                name_expected(error, || {
                    format!("UnboundedQueue<{}>", short_type_name::<T>())
                })
            })
        }

        /// Opens the existing unbounded queue `name`.
        ///
        /// # Errors
        /// As [`ByteUnboundedQueue::open`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            check_elem_size::<T>()?;
            ByteUnboundedQueue::open_typed(region, name, ElementType::of::<T>())
                .and_then(Self::typed)
                .map_err(|error| {
                    name_expected(error, || {
                        format!("UnboundedQueue<{}>", short_type_name::<T>())
                    })
                })
        }

        /// The typed handle; its operations use slots of [`ElementWidth<T>`], which must
        /// be the queue's (the element type was checked against the catalog: checked
        /// again here, as the first ring's unchecked slot indexing relies on it).
        fn typed(inner: ByteUnboundedQueue) -> Result<Self> {
            let width = element_width::<T>(inner.slot_words)?;
            let first = Permanent {
                offset: inner.first.offset,
                next: inner.first.next,
                // SAFETY: the same slot width, just checked.
                raw: unsafe { inner.first.raw.with_width(width) },
            };
            Ok(Self {
                inner,
                first,
                _type: PhantomData,
            })
        }

        /// Appends `value`. Never sleeps: the queue grows.
        ///
        /// # Errors
        /// [`Error::OutOfMemory`] when the region has no room for a new ring (nothing
        /// pushed).
        pub fn push(&self, value: T) -> Result<()> {
            with_words_of(&value, |words| self.inner.push_words(&self.first, words))
        }

        #[inline]
        fn pop_until(&self, deadline: Option<Instant>, wait: bool) -> Result<Option<T>> {
            try_read_words_into::<T, Error>(|words| {
                self.inner.pop_words(&self.first, words, deadline, wait)
            })
        }

        /// Removes the oldest element, if one is ready.
        ///
        /// # Errors
        /// As [`ByteUnboundedQueue::try_pop`].
        pub fn try_pop(&self) -> Result<Option<T>> {
            self.pop_until(None, false)
        }

        /// Removes the oldest element, waiting for one.
        ///
        /// # Errors
        /// As [`ByteUnboundedQueue::try_pop`].
        pub fn pop(&self) -> Result<T> {
            loop {
                if let Some(value) = self.pop_until(None, true)? {
                    return Ok(value);
                }
            }
        }

        /// Removes the oldest element, waiting at most `timeout`.
        ///
        /// # Errors
        /// As [`ByteUnboundedQueue::try_pop`].
        pub fn pop_timeout(&self, timeout: Duration) -> Result<Option<T>> {
            // A zero timeout is one attempt, announcing no wait (a wait costs a membarrier).
            self.pop_until(Instant::now().checked_add(timeout), !timeout.is_zero())
        }

        /// Elements in the queue, a snapshot.
        ///
        /// # Errors
        /// As [`ByteUnboundedQueue::len`].
        pub fn len(&self) -> Result<usize> {
            self.inner.len()
        }

        /// Whether the queue looks empty.
        ///
        /// # Errors
        /// As [`ByteUnboundedQueue::len`].
        pub fn is_empty(&self) -> Result<bool> {
            self.inner.is_empty()
        }

        /// See [`ByteUnboundedQueue::lost`].
        pub fn lost(&self) -> u64 {
            self.inner.lost()
        }

        /// See [`ByteUnboundedQueue::skipped`].
        pub fn skipped(&self) -> u64 {
            self.inner.skipped()
        }

        /// The object's name.
        pub fn name(&self) -> &str {
            self.inner.name()
        }
    }

    pub(crate) fn retire_owner_slot(object: &Object, slot: u32) -> Result<()> {
        let queue = ByteUnboundedQueue::from_object(object.clone())?;
        queue.shared.pop_sleepers.retire_owner_slot(slot)?;
        {
            // Pinned: ending a put-back looks at the chain.
            let _pin = object.region().pin()?;
            queue.with_raw(queue.slot_words as usize, |raw| {
                raw.retire_put_back_owner(slot)
            })?;
        }
        // The ring being made: both words name its maker.
        let [what, block] = queue.shared.made;
        crate::made::MadeRecord { what, block }.retire_owner_slot(slot)?;
        let slot_words = queue.slot_words as usize;
        queue.each_ring(|ring| {
            crate::queue::retire_claimants([ring.head, ring.tail], slot)?;
            for stamp in ring.slots.iter().step_by(slot_words) {
                crate::queue::retire_owner_field(stamp, slot)?;
            }
            Ok(())
        })
    }

    pub(crate) fn check(
        region: &Region,
        entry: &shmarena_engine::EntryInfo,
        findings: &mut Vec<Finding>,
    ) -> Result<()> {
        let place = format!("unbounded queue {:?}", entry.name);
        let queue =
            ByteUnboundedQueue::from_object(region.open_object(&entry.name, &entry.descriptor)?)?;
        let slot_words = queue.slot_words as usize;
        let mut rings = 0;
        let mut dead = 0;
        let walked = queue.each_ring(|ring| {
            rings += 1;
            dead += ring
                .slots
                .iter()
                .step_by(slot_words)
                .filter(|stamp| crate::queue::is_dead_claim(region, stamp.load(Ordering::Relaxed)))
                .count();
            Ok(())
        });
        if let Err(error) = walked {
            findings.push(Finding::error(
                &place,
                format!("its chain of rings: {error}"),
            ));
        } else if dead != 0 {
            findings.push(Finding::note(
                &place,
                format!(
                    "{dead} unfinished pushes and pops of dead processes in its {rings} rings \
                     (skipped or taken over by the next pop or push)"
                ),
            ));
        }
        Ok(())
    }
}
