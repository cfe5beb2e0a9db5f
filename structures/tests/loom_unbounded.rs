//! Loom models of the shipping unbounded queue, `RawUnboundedQueue`, over rings of one
//! slot each (so every second push links a ring and every pop may cross one): pushes
//! racing the close of their ring, pops racing the move of the head ring, and two
//! producers racing to link. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom cargo test --release -p shmarena --test loom_unbounded`.
//!
//! Checked: every element pushed is popped exactly once, each producer's in its order, a
//! ring is retired once and only after it was unlinked, and an empty answer is never
//! given while an element pushed before the call is in the queue. The first ring's
//! put-back: a consumer without a pin (the first ring's fast path) that looked at the first
//! ring before the chain left it, racing the put-back and pushes on both sides of it; and
//! what a consumer killed in the put-back protocol leaves (a departure it did not record,
//! a put-back's claim it died right after taking), taken up by the next consumer while a
//! producer pushes. A dead producer's ring, made and recorded and never linked, given back
//! once by producers racing to link, or racing the participant sweep. (The models' grace period, "no other slow path in flight", is
//! stronger than the region's, which waits only for pins older than its epoch:
//! `unbounded_renewal.rs` plays a pop frozen across put-backs on the shipping code.)

#![cfg(loom)]

mod loom_owners;
#[path = "../../engine/tests/loom_support/mod.rs"]
mod loom_support;

use loom::sync::atomic::AtomicUsize;
use loom::sync::Arc;
use loom::thread;
use loom_owners::Mock;
use loom_support::{model, model_both_orders, model_up_to, pair};
use shmarena::engine::sync::{AtomicU32, AtomicU64, Ordering};
use shmarena::engine::{Error, Result};
use shmarena::made::{made_record, GIVING_BACK};
use shmarena::queue::initial_stamp;
use shmarena::queue::Sleepers;
use shmarena::unbounded_queue::{
    ring_queue, FirstRing, Permanent, RawUnboundedQueue, Ring, Rings, Shared,
};

/// Rings the models may make (the first included).
const RINGS: usize = 8;

/// The first ring's offset.
const FIRST: u64 = 64;

/// One ring of one slot: head, tail, next, and the slot (stamp and one data word).
struct RingWords {
    head: AtomicU64,
    tail: AtomicU64,
    next: AtomicU64,
    slot: [AtomicU64; 2],
    retired: AtomicUsize,
    discarded: AtomicUsize,
}

impl RingWords {
    fn new() -> Self {
        Self {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            next: AtomicU64::new(0),
            slot: [AtomicU64::new(initial_stamp(0)), AtomicU64::new(0)],
            retired: AtomicUsize::new(0),
            discarded: AtomicUsize::new(0),
        }
    }
}

/// Every word of a queue: the shared words and [`RINGS`] rings, ring `i` at offset
/// `64 * (i + 1)` (block-aligned, as in a region: 0 is "no ring", and 1 is
/// [`REOPENING`](shmarena::unbounded_queue::REOPENING)); ring 0, at [`FIRST`], is the
/// first, the others are handed out by `make`.
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
    /// Operations in a slow path, which the handle pins for: the grace period the first
    /// ring's put-back waits for has passed once no other one is in flight.
    pinned: AtomicUsize,
    /// The grace epoch: moved past an epoch when a grace period since it is seen to have
    /// passed (as the region's moves when it can).
    epoch: AtomicU64,
}

impl Rings for Words {
    fn ring(&self, offset: u64) -> Result<Ring<'_>> {
        let ring = Some(offset)
            .filter(|offset| offset % 64 == 0)
            .and_then(|offset| (offset / 64).checked_sub(1))
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

    fn make(&self, capacity: u64, record: impl FnOnce(u64)) -> Result<u64> {
        assert_eq!(capacity, 1, "the models' rings have one slot");
        let index = self.made.fetch_add(1, Ordering::Relaxed) + 1;
        assert!(index < RINGS, "more rings than the model allows");
        record(64 * (index as u64 + 1));
        Ok(64 * (index as u64 + 1))
    }

    fn discard(&self, offset: u64, capacity: u64) {
        assert_eq!(capacity, 1, "a ring given back with another capacity");
        assert_ne!(offset, FIRST, "the first ring given back");
        for pointer in [&self.head_ring, &self.tail_ring] {
            assert_ne!(
                pointer.load(Ordering::SeqCst),
                offset,
                "a ring in use given back"
            );
        }
        for ring in &self.rings {
            assert_ne!(
                ring.next.load(Ordering::SeqCst),
                offset,
                "a linked ring given back"
            );
        }
        let ring = &self.rings[offset as usize / 64 - 1];
        assert_eq!(
            ring.discarded.fetch_add(1, Ordering::SeqCst),
            0,
            "a ring given back twice"
        );
    }

    fn idle_epoch(&self) -> Result<u64> {
        Ok(self.epoch.load(Ordering::SeqCst))
    }

    fn may_reuse_first(&self, epoch: u64) -> Result<bool> {
        // The caller's own operation is one.
        let passed = self.pinned.load(Ordering::SeqCst) == 1;
        if passed {
            // As the region's: a grace period since `epoch` has passed once the epoch
            // is `GRACE_ADVANCES` (3) past it.
            self.epoch.fetch_max(epoch + 3, Ordering::SeqCst);
        }
        Ok(passed)
    }

    fn asks_liveness(&self) -> bool {
        true
    }

    fn retire(&self, offset: u64) -> Result<()> {
        let ring = &self.rings[offset as usize / 64 - 1];
        assert_ne!(
            self.head_ring.load(Ordering::SeqCst),
            offset,
            "a ring retired while still the head ring"
        );
        assert_ne!(
            self.tail_ring.load(Ordering::SeqCst),
            offset,
            "a ring retired while still the tail ring"
        );
        // The first ring leaves the chain again each time it was put back.
        let before = ring.retired.fetch_add(1, Ordering::SeqCst);
        assert!(offset == FIRST || before == 0, "a ring retired twice");
        Ok(())
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
            rings: (0..RINGS).map(|_| RingWords::new()).collect(),
            made: AtomicUsize::new(0),
            making: [AtomicU64::new(0), AtomicU64::new(0)],
            pinned: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    /// The words every ring shares.
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

    /// Runs `f` counted as pinned (see `pinned`).
    fn pinned<R>(&self, f: impl FnOnce() -> R) -> R {
        self.pinned.fetch_add(1, Ordering::SeqCst);
        let result = f();
        self.pinned.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn push(&self, value: u64, slot: u32) {
        let mock = Mock::slot(slot);
        self.pinned(|| self.with_raw(|raw| raw.try_push(&[value], mock.0, &mock)))
            .expect("a push into an unbounded queue");
    }

    fn try_pop(&self, slot: u32) -> Option<u64> {
        let mock = Mock::slot(slot);
        let mut words = [0];
        self.pinned(|| self.with_raw(|raw| raw.try_pop(&mut words, mock.0, &mock)))
            .expect("a pop")
            .then_some(words[0])
    }

    /// The first ring as the handle keeps it, for the unpinned fast paths.
    fn permanent(&self) -> Permanent<'_> {
        let ring = self.ring(FIRST).expect("the first ring");
        let shared = self.shared();
        Permanent {
            offset: FIRST,
            next: ring.next,
            raw: ring_queue(shared, &ring, 2).expect("a one-slot ring"),
        }
    }

    /// A pop as the handle makes it: in the first ring without a pin if that answers,
    /// else pinned.
    fn pop_as_handle(&self, slot: u32) -> Option<u64> {
        let mock = Mock::slot(slot);
        let mut words = [0];
        let permanent = self.permanent();
        let fast =
            self.with_raw(|raw| raw.try_pop_permanent(&mut words, mock.0, &mock, &permanent));
        let popped = match fast {
            Some(popped) => popped,
            None => self
                .pinned(|| self.with_raw(|raw| raw.try_pop(&mut words, mock.0, &mock)))
                .expect("a pop"),
        };
        popped.then_some(words[0])
    }

    /// A push as the handle makes it (see `pop_as_handle`).
    fn push_as_handle(&self, value: u64, slot: u32) {
        let mock = Mock::slot(slot);
        let permanent = self.permanent();
        if self.with_raw(|raw| raw.try_push_permanent(&[value], mock.0, &mock, &permanent)) {
            return;
        }
        self.push(value, slot);
    }

    /// Fills the first ring and leaves the ring a dead producer (of slot 5) made and
    /// recorded and never linked: its offset.
    fn dead_makers_ring(&self) -> u64 {
        self.push(10, 3);
        let dead = loom_owners::dead(5);
        self.making[0].store(made_record(dead, 1), Ordering::SeqCst);
        self.make(1, |offset| {
            self.making[1].store(made_record(dead, offset / 64), Ordering::SeqCst);
        })
        .unwrap()
    }

    /// The ring at `offset` was given back once, and no record is left.
    fn assert_given_back_once(&self, offset: u64) {
        let ring = &self.rings[offset as usize / 64 - 1];
        assert_eq!(
            ring.discarded.load(Ordering::SeqCst),
            1,
            "the dead maker's ring leaked"
        );
        for word in &self.making {
            assert_eq!(word.load(Ordering::SeqCst), 0, "a record left behind");
        }
    }

    /// Pops until empty, after every other thread finished.
    fn drain(&self) -> Vec<u64> {
        std::iter::from_fn(|| self.try_pop(9)).collect()
    }
}

/// Two producers (of slots 1 and 2) pushing 1 and 2, started.
fn two_producers(words: &Arc<Words>) -> Vec<thread::JoinHandle<()>> {
    [(1, 1u32), (2, 2)]
        .into_iter()
        .map(|(value, slot)| {
            let words = Arc::clone(words);
            thread::spawn(move || words.push(value, slot))
        })
        .collect()
}

/// A producer pushes three elements (two ring links) while a consumer pops twice: what the
/// consumer got, then the rest, is exactly 1, 2, 3 in order.
#[test]
fn a_consumer_follows_a_producer_across_ring_links_in_order() {
    model_both_orders(|swap| {
        let words = Arc::new(Words::new());
        let (producer, consumer) = (Arc::clone(&words), Arc::clone(&words));
        let ((), popped) = pair(
            swap,
            move || {
                for value in 1..=3 {
                    producer.push(value, 1);
                }
            },
            move || [consumer.try_pop(2), consumer.try_pop(2)],
        );
        let mut all: Vec<u64> = popped.into_iter().flatten().collect();
        all.extend(words.drain());
        assert_eq!(all, [1, 2, 3]);
        // Nothing was left behind in a retired ring, and the chain ends where pushes go
        // (the drain may have put the first ring back after the last ring).
        let mut ring = words.head_ring.load(Ordering::SeqCst);
        while let Some(next) =
            Some(words.ring(ring).unwrap().next.load(Ordering::SeqCst)).filter(|&next| next != 0)
        {
            ring = next;
        }
        assert_eq!(ring, words.tail_ring.load(Ordering::SeqCst));
    });
}

/// Two producers push one element each into a full one-slot ring (so both may link) while
/// a consumer pops: each element comes out exactly once, the one pushed first (before
/// the model) first.
#[test]
fn two_producers_racing_to_link_lose_nothing() {
    model(|| {
        let words = Arc::new(Words::new());
        words.push(10, 3); // the first ring is full
        let producers = two_producers(&words);
        let first = words.try_pop(4);
        for producer in producers {
            producer.join().unwrap();
        }
        assert_eq!(first, Some(10), "the first element was in before the race");
        let mut rest = words.drain();
        rest.sort_unstable();
        assert_eq!(rest, [1, 2]);
    });
}

/// A producer died while it made a ring (recorded, never linked) and two producers now
/// push into a full ring, each racing to link its own: the dead maker's ring is given back
/// exactly once and never linked, every element comes out once, and no record is left.
/// (Without the give-back's claim on the capacity word, and with a load and a store in
/// place of its swap of the block word, the ring is given back twice.)
#[test]
fn a_dead_producers_unlinked_ring_is_given_back_once() {
    model(|| {
        let words = Arc::new(Words::new());
        let half_made = words.dead_makers_ring();
        let producers = two_producers(&words);
        for producer in producers {
            producer.join().unwrap();
        }
        words.assert_given_back_once(half_made);
        let mut all = words.drain();
        all.sort_unstable();
        assert_eq!(all, [1, 2, 10]);
    });
}

/// A producer gives back a dead maker's ring while the participant sweep rewrites the
/// maker (its slot retired) in both record words: the ring is given back once, by then or
/// by the next look, and no record is left.
#[test]
fn a_dead_producers_ring_given_back_under_a_sweep_is_given_back_once() {
    model_both_orders(|swap| {
        let words = Arc::new(Words::new());
        let half_made = words.dead_makers_ring();
        let (producer, sweeper) = (Arc::clone(&words), Arc::clone(&words));
        pair(
            swap,
            move || producer.push(1, 1),
            move || {
                for word in &sweeper.making {
                    shmarena::engine::liveness::retire_owner_field(word, 32, 5, |w| w != 0)
                        .unwrap();
                }
            },
        );
        // The next look (a later ring's maker) finishes what the race left.
        words.with_raw(|raw| raw.give_back_made(&Mock::slot(1)));
        words.assert_given_back_once(half_made);
        let mut all = words.drain();
        all.sort_unstable();
        assert_eq!(all, [1, 10]);
    });
}

/// Two consumers pop while the head ring is drained and closed: the element behind the
/// link is popped once, the old ring retired once.
#[test]
fn two_consumers_crossing_a_link_pop_once_and_retire_once() {
    model(|| {
        let words = Arc::new(Words::new());
        words.push(1, 3);
        words.push(2, 3); // links ring 2
        assert_eq!(words.try_pop(3), Some(1)); // ring 1 drained, closed
        let consumers: Vec<_> = (1..=2)
            .map(|slot| {
                let words = Arc::clone(&words);
                thread::spawn(move || words.try_pop(slot))
            })
            .collect();
        let popped: Vec<u64> = consumers
            .into_iter()
            .filter_map(|consumer| consumer.join().unwrap())
            .collect();
        assert_eq!(popped, [2]);
        assert_eq!(words.rings[0].retired.load(Ordering::SeqCst), 1);
        assert_eq!(words.drain(), []);
    });
}

/// The race the close exists for: a producer reads its ring open, then another links the
/// next ring, pops the ring empty and crosses to the next (retiring the old one); a claim
/// the first then makes in the old ring must be given up and pushed again, or its element
/// would be lost behind the consumers.
#[test]
fn a_push_that_claims_in_a_ring_closed_under_it_moves_to_the_next() {
    model_both_orders(|swap| {
        let words = Arc::new(Words::new());
        words.push(1, 3); // the first ring is full
        let (linker, late) = (Arc::clone(&words), Arc::clone(&words));
        let (popped, ()) = pair(
            swap,
            move || {
                linker.push(2, 1); // links ring 2
                [linker.try_pop(1), linker.try_pop(1), linker.try_pop(1)]
            },
            move || late.push(3, 2),
        );
        let mut all: Vec<u64> = popped.into_iter().flatten().collect();
        all.extend(words.drain());
        assert_eq!(all[0], 1);
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3], "an element was lost or doubled");
    });
}

/// A ring closed while a producer is still writing its element there (frozen: it does
/// not run until the consumer has tried): the consumer reports empty rather than cross to
/// the next ring, where the element would be lost behind it; once the producer publishes,
/// both elements come out, the older first.
#[test]
fn a_consumer_does_not_cross_while_an_element_is_written_in_the_closed_ring() {
    model(|| {
        let words = Words::new();
        let writing = 1 | (u64::from(loom_owners::live(7).bits()) << 33); // WRITING(0, 7)
        words.rings[0].slot[0].store(writing, Ordering::Relaxed);
        words.rings[0].tail.store(1, Ordering::Relaxed);
        words.made.store(1, Ordering::Relaxed);
        words.rings[0].next.store(2 * FIRST, Ordering::SeqCst);
        words.tail_ring.store(2 * FIRST, Ordering::SeqCst);
        words.push(6, 1);
        assert_eq!(words.try_pop(2), None, "crossed past an element on its way");
        assert_eq!(words.rings[0].retired.load(Ordering::SeqCst), 0);
        // The producer resumes and publishes (FULL(0)).
        words.rings[0].slot[1].store(5, Ordering::Relaxed);
        words.rings[0].slot[0].store(2, Ordering::Release);
        assert_eq!(words.drain(), [5, 6]);
    });
}

/// The first ring's put-back racing a consumer without a pin that looked at the first ring
/// while it was the head ring, and a producer pushing into the ring the put-back closes.
/// The put-back's consumer (B) takes the elements out past the first ring, finds the queue
/// empty and puts the first ring back, then pushes 3 (into the first ring); the producer
/// (C) pushes 4, perhaps into the ring before it. Every element comes out once, and if 4's
/// push was over before 3's began, 4 comes out first.
#[test]
fn a_pop_that_looked_at_the_first_ring_before_it_left_does_not_pop_it_out_of_turn() {
    // Bound 3: 1.8M executions, six minutes; checked by hand when the protocol changes.
    model_up_to(2, || {
        let words = Arc::new(Words::new());
        words.push(1, 4); // the first ring is full
        words.push(2, 4); // links ring 2
        assert_eq!(words.try_pop(4), Some(1)); // the first ring: empty, closed, still head
        let four_done = Arc::new(AtomicUsize::new(0));
        let stale = {
            let words = Arc::clone(&words);
            thread::spawn(move || words.pop_as_handle(1))
        };
        let producer = {
            let (words, four_done) = (Arc::clone(&words), Arc::clone(&four_done));
            thread::spawn(move || {
                words.push_as_handle(4, 3);
                four_done.store(1, Ordering::SeqCst);
            })
        };
        let mut popped = vec![words.try_pop(2), words.try_pop(2)];
        let four_before_three = four_done.load(Ordering::SeqCst) == 1;
        words.push_as_handle(3, 2);
        popped.push(stale.join().unwrap());
        producer.join().unwrap();
        let mut all: Vec<u64> = popped.iter().flatten().copied().collect();
        let stale_got = popped[2];
        let rest = words.drain();
        all.extend(&rest);
        let mut sorted = all.clone();
        sorted.sort_unstable();
        let state: Vec<_> = words.rings[..3]
            .iter()
            .map(|r| {
                (
                    r.head.load(Ordering::SeqCst),
                    r.tail.load(Ordering::SeqCst),
                    r.next.load(Ordering::SeqCst),
                    r.slot[0].load(Ordering::SeqCst),
                    r.slot[1].load(Ordering::SeqCst),
                )
            })
            .collect();
        assert_eq!(
            sorted,
            [2, 3, 4],
            "an element was lost or doubled: {all:?} {popped:?} head {} tail {} idle {} {state:x?}",
            words.head_ring.load(Ordering::SeqCst),
            words.tail_ring.load(Ordering::SeqCst),
            words.first_idle.load(Ordering::SeqCst)
        );
        if four_before_three && stale_got == Some(3) {
            assert!(
                !rest.contains(&4),
                "3 popped while 4, pushed before it, was still in the queue"
            );
        }
    });
}

/// What a consumer killed in the first ring's put-back protocol leaves, set up by hand
/// (loom has no failpoints): the chain has left the first ring, and either the departure
/// was never recorded (its consumer died right after moving the head ring on), or a
/// put-back's claim names a dead consumer (it died right after taking the claim).
#[derive(Clone, Copy, Debug)]
enum Leftover {
    UnrecordedDeparture,
    DeadPutBack,
}

/// After `leftover`, two consumers polling the empty queue (two pops each) race a producer
/// pushing one element: the element comes out once, and the first ring comes back into
/// the chain (at the latest once polls find no other operation in flight).
fn the_first_ring_comes_back_after(leftover: Leftover) {
    model(move || {
        let words = Arc::new(Words::new());
        words.push(1, 4); // the first ring is full
        words.push(2, 4); // links ring 2
        assert_eq!(words.try_pop(4), Some(1));
        assert_eq!(words.try_pop(4), Some(2)); // the head ring moves past the first
        assert_ne!(words.head_ring.load(Ordering::SeqCst), FIRST);
        let left = match leftover {
            Leftover::UnrecordedDeparture => FirstRing::InChain(0),
            Leftover::DeadPutBack => FirstRing::PuttingBack(loom_owners::dead(5).bits()),
        };
        words.first_idle.store(left.word(), Ordering::SeqCst);
        let producer = {
            let words = Arc::clone(&words);
            thread::spawn(move || words.push_as_handle(3, 3))
        };
        let other = {
            let words = Arc::clone(&words);
            thread::spawn(move || [words.pop_as_handle(1), words.pop_as_handle(1)])
        };
        let mut popped: Vec<u64> = [words.pop_as_handle(2), words.pop_as_handle(2)]
            .into_iter()
            .chain(other.join().unwrap())
            .flatten()
            .collect();
        producer.join().unwrap();
        popped.extend(words.drain());
        assert_eq!(popped, [3], "lost or doubled");
        // Polls of the empty queue, alone: the departure recorded (or the dead put-back
        // ended), then the put-back.
        for _ in 0..3 {
            assert_eq!(words.pop_as_handle(9), None);
        }
        assert!(
            matches!(
                FirstRing::of(words.first_idle.load(Ordering::SeqCst)),
                FirstRing::InChain(_)
            ),
            "the first ring's state: {:?}",
            FirstRing::of(words.first_idle.load(Ordering::SeqCst))
        );
        let mut ring = words.head_ring.load(Ordering::SeqCst);
        let mut chain = vec![ring];
        while let Some(next) =
            Some(words.ring(ring).unwrap().next.load(Ordering::SeqCst)).filter(|&next| next > 1)
        {
            ring = next;
            chain.push(ring);
        }
        assert!(
            chain.contains(&FIRST),
            "the first ring is not back: {chain:?}"
        );
        words.push_as_handle(4, 9);
        assert_eq!(words.drain(), [4]);
    });
}

#[test]
fn a_departure_whose_consumer_died_before_recording_it_is_recorded_by_the_next() {
    the_first_ring_comes_back_after(Leftover::UnrecordedDeparture);
}

#[test]
fn a_put_back_whose_consumer_died_is_ended_and_done_by_the_next() {
    the_first_ring_comes_back_after(Leftover::DeadPutBack);
}
