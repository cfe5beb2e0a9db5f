//! The unbounded queue's first ring, renewed before each return to the chain: a pop without
//! a pin (the first ring's fast path) that read the ring's head word before the chain left
//! it, and is frozen while the first ring is put back twice (the first put-back ended
//! before its link: its consumer killed, or a push linking a ring first), must not pop
//! there when it resumes: the element it would take was pushed after one still waiting in
//! the ring before. Played deterministically on the shipping `RawUnboundedQueue`, over
//! one-slot rings: the frozen pop's `current` closure runs everything the others do
//! between its read of the head word and its claim, and the grace period's check runs
//! what a producer does meanwhile. And a producer frozen in the first ring while it is
//! out: the renewal leaves the ring out, claiming nothing in it, until the producer runs.
//! And the give-back of a dead producer's unlinked ring, on a record that changed while it
//! asked whether the maker lived.

#![cfg(not(loom))]

#[path = "loom_owners/mod.rs"]
mod loom_owners;

use std::cell::{Cell, RefCell};
use std::sync::atomic::AtomicUsize;

use loom_owners::Mock;
use shmarena::engine::sync::{AtomicU32, AtomicU64, Ordering};
use shmarena::engine::{Error, Result};
use shmarena::made::{made_record, GIVING_BACK};
use shmarena::queue::{initial_stamp, Sleepers};
use shmarena::unbounded_queue::{
    ring_queue, FirstRing, Permanent, RawUnboundedQueue, Ring, Rings, Shared, REOPENING,
};

/// Rings the scenarios may make (the first included).
const RINGS: usize = 8;

/// The first ring's offset.
const FIRST: u64 = 8;

/// What other processes do while one waits in a grace-period check.
type Meanwhile = Box<dyn Fn(&Words)>;

/// A one-slot ring: head, tail, next, and the slot (stamp and one data word).
struct RingWords {
    head: AtomicU64,
    tail: AtomicU64,
    next: AtomicU64,
    slot: [AtomicU64; 2],
}

/// A queue's words, ring `i` at offset `8 * (i + 1)` (the first at [`FIRST`]).
struct Words {
    head_ring: AtomicU64,
    tail_ring: AtomicU64,
    not_empty: AtomicU32,
    pop_sleepers: AtomicU32,
    not_full: AtomicU32,
    push_sleepers: AtomicU32,
    lost: AtomicU64,
    skipped: AtomicU64,
    first_idle: AtomicU64,
    rings: Vec<RingWords>,
    made: AtomicUsize,
    /// The ring being made and its block (see `Shared::made`).
    making: [AtomicU64; 2],
    /// Rings given back unlinked: offset and capacity.
    discarded: RefCell<Vec<(u64, u64)>>,
    /// Added to the offset a new ring's record names (a block high in a large region).
    recorded_above: Cell<u64>,
    epoch: AtomicU64,
    /// Run once by the next grace-period check: what other processes do meanwhile.
    meanwhile: RefCell<Option<Meanwhile>>,
}

impl Rings for Words {
    fn ring(&self, offset: u64) -> Result<Ring<'_>> {
        let ring = Some(offset)
            .filter(|offset| offset % 8 == 0)
            .and_then(|offset| (offset / 8).checked_sub(1))
            .and_then(|index| self.rings.get(index as usize))
            .ok_or_else(|| Error::corrupt("ring", "no such ring"))?;
        Ok(Ring {
            head: &ring.head,
            tail: &ring.tail,
            next: &ring.next,
            slots: &ring.slot,
            capacity: 1,
        })
    }

    fn make(&self, _capacity: u64, record: impl FnOnce(u64)) -> Result<u64> {
        let index = self.made.fetch_add(1, Ordering::Relaxed) + 1;
        assert!(index < RINGS, "more rings than the scenario has");
        record(self.recorded_above.get() + 8 * (index as u64 + 1));
        Ok(8 * (index as u64 + 1))
    }

    fn discard(&self, offset: u64, capacity: u64) {
        self.discarded.borrow_mut().push((offset, capacity));
    }

    fn retire(&self, _offset: u64) -> Result<()> {
        Ok(())
    }

    fn idle_epoch(&self) -> Result<u64> {
        Ok(self.epoch.load(Ordering::SeqCst))
    }

    fn may_reuse_first(&self, epoch: u64) -> Result<bool> {
        // The frozen pop holds no pin: the grace period passes.
        self.epoch.fetch_max(epoch + 3, Ordering::SeqCst);
        if let Some(meanwhile) = self.meanwhile.borrow_mut().take() {
            meanwhile(self);
        }
        Ok(true)
    }

    fn asks_liveness(&self) -> bool {
        true
    }
}

impl Words {
    fn new() -> Self {
        Self {
            head_ring: AtomicU64::new(FIRST),
            tail_ring: AtomicU64::new(FIRST),
            not_empty: AtomicU32::new(0),
            pop_sleepers: AtomicU32::new(0),
            not_full: AtomicU32::new(0),
            push_sleepers: AtomicU32::new(0),
            lost: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            first_idle: AtomicU64::new(0),
            rings: (0..RINGS)
                .map(|_| RingWords {
                    head: AtomicU64::new(0),
                    tail: AtomicU64::new(0),
                    next: AtomicU64::new(0),
                    slot: [AtomicU64::new(initial_stamp(0)), AtomicU64::new(0)],
                })
                .collect(),
            made: AtomicUsize::new(0),
            making: [AtomicU64::new(0), AtomicU64::new(0)],
            discarded: RefCell::new(Vec::new()),
            recorded_above: Cell::new(0),
            epoch: AtomicU64::new(0),
            meanwhile: RefCell::new(None),
        }
    }

    fn shared(&self) -> Shared<'_> {
        Shared {
            head_ring: &self.head_ring,
            tail_ring: &self.tail_ring,
            not_empty: &self.not_empty,
            pop_sleepers: Sleepers {
                count: &self.pop_sleepers,
                registry: &[],
            },
            not_full: &self.not_full,
            push_sleepers: Sleepers {
                count: &self.push_sleepers,
                registry: &[],
            },
            lost: &self.lost,
            skipped: &self.skipped,
            first_ring: FIRST,
            first_idle: &self.first_idle,
            made: [&self.making[0], &self.making[1]],
        }
    }

    fn with_raw<R>(&self, f: impl FnOnce(&RawUnboundedQueue<'_, Words>) -> R) -> R {
        let shared = self.shared();
        f(&RawUnboundedQueue::new(&shared, self, 2, 1))
    }

    fn push(&self, value: u64, slot: u32) {
        let mock = Mock::slot(slot);
        self.with_raw(|raw| raw.try_push(&[value], mock.0, &mock))
            .expect("a push");
    }

    fn try_pop(&self, slot: u32) -> Option<u64> {
        let mock = Mock::slot(slot);
        let mut words = [0];
        self.with_raw(|raw| raw.try_pop(&mut words, mock.0, &mock))
            .expect("a pop")
            .then_some(words[0])
    }

    fn state(&self) -> FirstRing {
        FirstRing::of(self.first_idle.load(Ordering::SeqCst))
    }

    fn permanent(&self) -> Permanent<'_> {
        let ring = self.ring(FIRST).expect("the first ring");
        Permanent {
            offset: FIRST,
            next: ring.next,
            raw: ring_queue(self.shared(), &ring, 2).expect("a one-slot ring"),
        }
    }
}

/// How the first put-back ends before its link (`None`: there is no first put-back).
#[derive(Clone, Copy, Debug)]
enum FirstPutBack {
    /// Its consumer is killed after closing and renewing the ring; the next consumer ends
    /// it.
    Killed,
    /// Pushes fill the empty ring and link a new one before its link: it gives up.
    LosesItsLink,
}

/// The elements in the order they come out, the frozen pop's first (if it got one).
fn elements_out(first_put_back: Option<FirstPutBack>) -> Vec<u64> {
    let words = Words::new();
    words.push(1, 4); // the first ring is full
    words.push(2, 4); // links ring 2
    assert_eq!(words.try_pop(4), Some(1)); // the first ring: empty, closed, still head
    let frozen = Mock::slot(1);
    let mut out = [0u64];
    let resumed = Cell::new(false);
    let permanent = words.permanent();
    // Called by the frozen pop after its read of the head word, before its claim: the
    // first call plays everything the others do while it is frozen.
    let current = || {
        let is_head = words.head_ring.load(Ordering::SeqCst) == FIRST;
        if resumed.replace(true) {
            return is_head;
        }
        assert!(is_head);
        assert_eq!(words.try_pop(2), Some(2)); // the chain leaves the first ring
        assert!(matches!(words.state(), FirstRing::Idle(_)));
        match first_put_back {
            Some(FirstPutBack::Killed) => {
                // Claimed by a consumer that closes and renews the ring, then dies.
                let dead = loom_owners::dead(5);
                let first = words.ring(FIRST).unwrap();
                words
                    .first_idle
                    .store(FirstRing::PuttingBack(dead.bits()).word(), Ordering::SeqCst);
                first.next.store(REOPENING, Ordering::SeqCst);
                let raw = ring_queue(words.shared(), &first, 2).unwrap();
                assert!(raw.renew(dead, &Mock(dead), first.next));
                assert_eq!(words.try_pop(3), None); // ends the dead put-back
                assert!(matches!(words.state(), FirstRing::Idle(_)));
            }
            Some(FirstPutBack::LosesItsLink) => {
                *words.meanwhile.borrow_mut() = Some(Box::new(|words: &Words| {
                    words.push(20, 6);
                    words.push(21, 6);
                }));
                assert_eq!(words.try_pop(3), None);
                assert!(matches!(words.state(), FirstRing::Idle(_)));
                assert_eq!(words.try_pop(3), Some(20));
                assert_eq!(words.try_pop(3), Some(21));
            }
            None => {}
        }
        // The put-back that links the ring: while it checks the grace period (having found
        // the head ring empty), a producer pushes 100 into the head ring.
        *words.meanwhile.borrow_mut() = Some(Box::new(|words: &Words| words.push(100, 7)));
        assert_eq!(words.try_pop(3), None);
        assert!(matches!(words.state(), FirstRing::InChain(_)));
        assert_ne!(words.head_ring.load(Ordering::SeqCst), FIRST);
        // After 100's push returned, 200 is pushed: into the first ring.
        words.push(200, 7);
        is_head
    };
    let popped = permanent
        .raw
        .try_pop_while(&mut out, frozen.0, &frozen, current);
    let mut all: Vec<u64> = (popped == Some(true))
        .then_some(out[0])
        .into_iter()
        .collect();
    all.extend(std::iter::from_fn(|| words.try_pop(9)));
    all
}

#[test]
fn a_frozen_pop_does_not_take_an_element_out_of_turn_after_one_put_back() {
    assert_eq!(elements_out(None), [100, 200]);
}

#[test]
fn a_frozen_pop_does_not_take_an_element_out_of_turn_after_a_killed_put_back() {
    assert_eq!(elements_out(Some(FirstPutBack::Killed)), [100, 200]);
}

#[test]
fn a_frozen_pop_does_not_take_an_element_out_of_turn_after_a_put_back_lost_its_link() {
    assert_eq!(elements_out(Some(FirstPutBack::LosesItsLink)), [100, 200]);
}

/// A producer frozen between its claim in the first ring (while the ring is out) and its
/// look at `next` holds the ring's head back: put-backs leave the ring out, claiming
/// nothing in it (its tail stays where the frozen claim left it), until the producer runs
/// again and gives its ticket up; then the ring comes back.
#[test]
fn a_producer_frozen_in_the_first_ring_keeps_it_out_until_it_runs_again() {
    let words = Words::new();
    words.push(1, 4); // the first ring is full
    words.push(2, 4); // links ring 2
    assert_eq!(words.try_pop(4), Some(1));
    assert_eq!(words.try_pop(4), Some(2)); // the chain leaves the first ring
    assert!(matches!(words.state(), FirstRing::Idle(_)));
    // A live producer claims the first ring's tail ticket and is frozen before its look
    // at `next` (its slot still shows the ticket free).
    let first = words.ring(FIRST).unwrap();
    let seen = first.tail.load(Ordering::SeqCst);
    let ticket = seen & 0x7fff_ffff;
    let frozen = loom_owners::live(8);
    let claimed = (ticket + 1) | u64::from(frozen.bits()) << 32;
    first
        .tail
        .compare_exchange(seen, claimed, Ordering::SeqCst, Ordering::SeqCst)
        .unwrap();
    for _ in 0..3 {
        assert_eq!(words.try_pop(3), None);
        assert!(matches!(words.state(), FirstRing::Idle(_)));
        assert_ne!(words.head_ring.load(Ordering::SeqCst), FIRST);
        assert_eq!(
            first.tail.load(Ordering::SeqCst),
            claimed,
            "a put-back claimed more"
        );
    }
    // It runs again: it finds the ring closed and gives its ticket up.
    assert_ne!(first.next.load(Ordering::SeqCst), 0);
    first.slots[0].store(initial_stamp(ticket + 1), Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(words.try_pop(3), None);
    }
    assert!(matches!(words.state(), FirstRing::InChain(_)));
    assert_eq!(words.head_ring.load(Ordering::SeqCst), FIRST);
    words.push(3, 3);
    words.push(4, 3);
    assert_eq!(
        std::iter::from_fn(|| words.try_pop(9)).collect::<Vec<_>>(),
        [3, 4]
    );
}

/// What the maker of a recorded ring does while a give-back asks the system whether it
/// lives: it links that ring (clearing its record), records its next ring, of another
/// capacity, takes that ring's block at `block`, and dies.
struct LinksAndDiesMeanwhile<'a> {
    words: &'a Words,
    maker: shmarena::OwnerId,
    block: u64,
}

impl shmarena::engine::Liveness for LinksAndDiesMeanwhile<'_> {
    fn me(&self) -> shmarena::OwnerId {
        loom_owners::live(1)
    }
    fn is_alive(&self, _owner: shmarena::OwnerId) -> bool {
        let [ring, block] = &self.words.making;
        block.store(0, Ordering::Relaxed);
        ring.store(0, Ordering::Release);
        ring.store(made_record(self.maker, 64), Ordering::Relaxed);
        block.store(made_record(self.maker, self.block / 64), Ordering::Relaxed);
        false
    }
}

/// A give-back that read a maker's record while the maker lived gives back nothing on
/// that look if the record changed meanwhile (the maker linked that ring, recorded its
/// next ring of another capacity, and died): it would free the new block with the old
/// capacity, a block of one size on another size's free list. The next look gives the
/// new block back with its own capacity, once, and clears both words.
#[test]
fn a_give_back_frees_a_block_with_the_capacity_recorded_with_it() {
    let words = Words::new();
    let maker = loom_owners::dead(5);
    words.making[0].store(made_record(maker, 8), Ordering::Relaxed);
    let block = 0x10000;
    let meanwhile = LinksAndDiesMeanwhile {
        words: &words,
        maker,
        block,
    };
    words.with_raw(|raw| raw.give_back_made(&meanwhile));
    assert_eq!(
        *words.discarded.borrow(),
        [],
        "given back on a record since replaced"
    );
    words.with_raw(|raw| raw.give_back_made(&Mock::slot(1)));
    words.with_raw(|raw| raw.give_back_made(&Mock::slot(1)));
    assert_eq!(*words.discarded.borrow(), [(block, 64)]);
    for word in &words.making {
        assert_eq!(word.load(Ordering::Relaxed), 0, "a record left behind");
    }
}

/// A give-back that died holding the capacity word (its claim, which keeps the capacity)
/// is taken over: the next give-back frees the block with that capacity and clears both
/// words. One whose owner lives is left alone.
#[test]
fn a_give_back_that_died_holding_the_record_is_taken_over() {
    let words = Words::new();
    let block = 0x20000;
    words.making[1].store(
        made_record(loom_owners::dead(5), block / 64),
        Ordering::Relaxed,
    );
    let claim = |owner| made_record(owner, 16 | GIVING_BACK);
    words.making[0].store(claim(loom_owners::live(6)), Ordering::Relaxed);
    words.with_raw(|raw| raw.give_back_made(&Mock::slot(1)));
    assert_eq!(
        *words.discarded.borrow(),
        [],
        "a live give-back's claim taken over"
    );
    words.making[0].store(claim(loom_owners::dead(6)), Ordering::Relaxed);
    words.with_raw(|raw| raw.give_back_made(&Mock::slot(1)));
    assert_eq!(*words.discarded.borrow(), [(block, 16)]);
    for word in &words.making {
        assert_eq!(word.load(Ordering::Relaxed), 0, "a record left behind");
    }
}

/// A maker clears its record before its link whatever its block's offset: one of 2^37 or
/// more (a region reaches 2^38 bytes) sets the top bit of the block word's low half, the
/// bit that marks a give-back's claim in the capacity word. A record left there would
/// make a later give-back free the linked ring.
#[test]
fn a_maker_clears_its_record_of_a_block_high_in_a_large_region() {
    let words = Words::new();
    words.recorded_above.set(1 << 37);
    words.push(1, 1);
    words.push(2, 1); // links a ring
    for word in &words.making {
        assert_eq!(
            word.load(Ordering::Relaxed),
            0,
            "a record left after the link"
        );
    }
    // A dead maker's record of a ring it never got a block for: nothing to give back.
    words.making[0].store(made_record(loom_owners::dead(5), 1), Ordering::Relaxed);
    words.with_raw(|raw| raw.give_back_made(&Mock::slot(1)));
    assert_eq!(*words.discarded.borrow(), [], "a linked ring given back");
    assert_eq!(words.try_pop(2), Some(1));
    assert_eq!(words.try_pop(2), Some(2));
}
