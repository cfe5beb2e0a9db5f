//! Loom models of the shipping queue core, `RawQueue`, built over loom atomics with a mock
//! [`Liveness`] whose dead owners are fixed per model. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom cargo test --release -p shmarena --test loom_queue`.
//!
//! Elements are one word, written and read with Relaxed stores and loads: loom lets a
//! Relaxed load return any store the memory model allows, so a consumer that is not
//! ordered after the producer's FULL store (Release) by its claim (Acquire) can read the
//! word's old value, and the models, which check every value popped, fail.
//!
//! A producer or consumer that "died" after its claim is a state built by hand: the tail
//! (head) word moved past its ticket and names it, or, once the next claim has named it
//! there, its slot's stamp does (see the layouts in the queue's module docs): both are
//! modeled.
//!
//! Under loom a futex wait is a yield and a wake does nothing, and `Backoff` yields: a
//! thread waiting for an element or a free slot retries (yielding) until it comes, so
//! these models check the slot state machine (exactly once, ticket order, publication,
//! skip and take-over of dead claims, when full and empty may be reported); they cannot
//! see a lost futex wake-up.
//!
//! Three-thread models (two producers and a consumer, each retrying) exceed loom's branch
//! limit at more than one element per producer; they push one element each (see each
//! model's comment).

#![cfg(loom)]

mod loom_owners;
#[path = "../../engine/tests/loom_support/mod.rs"]
mod loom_support;

use loom::sync::atomic::AtomicUsize;
use loom::sync::Arc;
use loom::thread;
use loom_owners::{dead, live, Mock};
use loom_support::{model, model_both_orders, pair};
use shmarena::engine::sync::{AtomicU32, AtomicU64, Ordering};
use shmarena::queue::{initial_stamp, QueueHeader, RawQueue, Sleepers};
use shmarena::OwnerId;

// ---------------------------------------------------------------------------------------
// Stamps, from the documented layout: | owner: 31 bits | ticket: 31 bits | state: 2 bits |.

const EMPTY: u64 = 0;
const WRITING: u64 = 1;
const FULL: u64 = 2;
const READING: u64 = 3;

/// Head and tail words keep their ticket in these bits, the claimant of the ticket
/// before it above bit 32.
const TICKET_MASK: u64 = (1 << 31) - 1;

/// A head or tail word: `ticket` next, the one before it claimed by `claimant`.
fn claimed(ticket: u64, claimant: OwnerId) -> u64 {
    ticket | u64::from(claimant.bits()) << 32
}

fn stamp(state: u64, ticket: u64, owner: Option<OwnerId>) -> u64 {
    state | (ticket << 2) | (u64::from(owner.map_or(0, OwnerId::bits)) << 33)
}

// ---------------------------------------------------------------------------------------
// The queue's words.

/// The raw queue's "full, nothing pushed" answer, as an error for the assertions below.
#[derive(Debug, PartialEq, Eq)]
struct QueueFull;

/// Every word of a queue of one-word elements.
struct Words {
    head: AtomicU64,
    tail: AtomicU64,
    not_empty: AtomicU32,
    pop_sleepers: AtomicU32,
    not_full: AtomicU32,
    push_sleepers: AtomicU32,
    lost: AtomicU64,
    skipped: AtomicU64,
    /// Slot `i` is words `2i` (its stamp) and `2i + 1` (its one data word).
    slots: Vec<AtomicU64>,
    /// Pushes that returned `Ok` / pops that returned an element, counted by the model
    /// threads after each call (SeqCst) to judge `Full` and empty answers.
    pushed: AtomicUsize,
    popped: AtomicUsize,
}

impl Words {
    /// A fresh queue of `capacity` slots, as the region creates it.
    fn new(capacity: u64) -> Self {
        Self {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            not_empty: AtomicU32::new(0),
            pop_sleepers: AtomicU32::new(0),
            not_full: AtomicU32::new(0),
            push_sleepers: AtomicU32::new(0),
            lost: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            slots: (0..2 * capacity)
                .map(|i| AtomicU64::new(if i % 2 == 0 { initial_stamp(i / 2) } else { 0 }))
                .collect(),
            pushed: AtomicUsize::new(0),
            popped: AtomicUsize::new(0),
        }
    }

    /// A queue left in a hand-built state: `slots[i]` is slot `i`'s (stamp, data word).
    fn with_state(head: u64, tail: u64, slots: &[(u64, u64)]) -> Self {
        let words = Self::new(slots.len() as u64);
        words.head.store(head, Ordering::Relaxed);
        words.tail.store(tail, Ordering::Relaxed);
        for (i, &(s, d)) in slots.iter().enumerate() {
            words.slots[2 * i].store(s, Ordering::Relaxed);
            words.slots[2 * i + 1].store(d, Ordering::Relaxed);
        }
        words
    }

    fn capacity(&self) -> u64 {
        self.slots.len() as u64 / 2
    }

    /// Runs `f` on the shipping algorithm over these words.
    fn with_raw<R>(&self, f: impl FnOnce(&RawQueue<'_>) -> R) -> R {
        let header = QueueHeader {
            head: &self.head,
            tail: &self.tail,
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
        };
        let raw = RawQueue::new(header, &self.slots, 2).expect("whole slots");
        f(&raw)
    }

    fn try_push(&self, value: u64, me: OwnerId) -> Result<(), QueueFull> {
        let pushed = self.with_raw(|raw| raw.try_push(&[value], me, &Mock(me)));
        if !pushed {
            return Err(QueueFull);
        }
        // SeqCst: a counter the other threads judge their answers by.
        self.pushed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn try_pop(&self, me: OwnerId) -> Option<u64> {
        let mut words = [0u64];
        let popped = self.with_raw(|raw| raw.try_pop(&mut words, me, &Mock(me)));
        if popped {
            // SeqCst: as in `try_push`.
            self.popped.fetch_add(1, Ordering::SeqCst);
        }
        popped.then_some(words[0])
    }

    /// Pushes `value`, retrying (yielding) while full. With `judge` (this is the only
    /// producer and there is one consumer), `Full` must be justified: at least `capacity`
    /// elements pushed and not yet popped when the attempt started. (A pop counted after it
    /// returns stored its slot's EMPTY before, so a `popped` read before the attempt is at
    /// most the pops the attempt could see. With more producers a push completing during
    /// the attempt, or in flight before it, also fills the queue; with more consumers a
    /// live consumer reading the previous lap does: both are justified `Full` answers this
    /// check cannot see.)
    fn push_retrying(&self, value: u64, me: OwnerId, judge: bool) {
        loop {
            // SeqCst: pairs with the counters' SeqCst increments.
            let popped = self.popped.load(Ordering::SeqCst);
            let pushed = self.pushed.load(Ordering::SeqCst);
            if self.try_push(value, me).is_ok() {
                return;
            }
            assert!(
                !judge || pushed.saturating_sub(popped) >= self.capacity() as usize,
                "Full with {pushed} pushed and {popped} popped of capacity {}",
                self.capacity()
            );
            thread::yield_now();
        }
    }

    /// Pops an element, retrying (yielding) while none is ready. With `judge` (this is the
    /// only consumer and there is one producer), an empty answer must be justified: every
    /// push that had returned before the attempt was popped (with one producer, elements
    /// are published in ticket order, so the head element would be ready). With more
    /// producers, a later ticket can be published while the head one is still being
    /// written, and `try_pop` then reports empty by design.
    fn pop_retrying(&self, me: OwnerId, judge: bool) -> u64 {
        loop {
            // SeqCst: pairs with the counters' SeqCst increments.
            let pushed = self.pushed.load(Ordering::SeqCst);
            let popped = self.popped.load(Ordering::SeqCst);
            if let Some(value) = self.try_pop(me) {
                return value;
            }
            if judge {
                // A push counts itself after it returns, so `popped` may run ahead.
                assert!(
                    pushed <= popped,
                    "empty with {pushed} pushed and {popped} popped"
                );
            }
            thread::yield_now();
        }
    }

    /// The head word's ticket (its low 31 bits; the claimant of the last pop is above).
    fn head(&self) -> u64 {
        self.head.load(Ordering::Relaxed) & TICKET_MASK
    }

    /// The tail word's ticket.
    fn tail(&self) -> u64 {
        self.tail.load(Ordering::Relaxed) & TICKET_MASK
    }

    fn stamp(&self, slot: usize) -> u64 {
        self.slots[2 * slot].load(Ordering::Relaxed)
    }

    fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// After the threads joined: the queue holds nothing, and a push then a pop still work
    /// (the slot at `tail` is free for it).
    fn assert_empty_and_usable(&self) {
        let me = live(7);
        assert_eq!(self.try_pop(me), None, "left an element behind");
        assert_eq!(self.try_push(99, me), Ok(()));
        assert_eq!(self.try_pop(me), Some(99));
        assert_eq!(self.try_pop(me), None);
        assert_eq!(self.head(), self.tail());
    }
}

// ---------------------------------------------------------------------------------------
// Live producers and consumers.

/// One producer pushes 1, 2, 3 into a capacity-1 queue while one consumer pops three
/// times: three laps of the one slot, producer and consumer handing it back and forth
/// (EMPTY(t) -> WRITING -> FULL -> READING -> EMPTY(t + 1)). The consumer gets 1, 2, 3 in
/// order (each value read through Relaxed data words, so each FULL Release / claim Acquire
/// pairing and each EMPTY Release / producer Acquire pairing is checked), `Full` is only
/// reported with an element unpopped, empty only with nothing pushed unpopped, and the
/// slot ends EMPTY(3) for the next lap.
#[test]
fn capacity_one_push_vs_pop_across_three_laps_in_order() {
    model_both_orders(|swap| {
        let q = Arc::new(Words::new(1));
        let (qp, qc) = (Arc::clone(&q), Arc::clone(&q));
        let producer = move || {
            for value in 1..=3 {
                qp.push_retrying(value, live(1), true);
            }
        };
        let consumer = move || {
            (0..3)
                .map(|_| qc.pop_retrying(live(2), true))
                .collect::<Vec<_>>()
        };
        let ((), popped) = pair(swap, producer, consumer);
        assert_eq!(popped, [1, 2, 3]);
        assert_eq!((q.head(), q.tail()), (3, 3));
        assert_eq!(q.stamp(0), stamp(EMPTY, 3, None));
        assert_eq!((q.lost(), q.skipped()), (0, 0));
        q.assert_empty_and_usable();
    });
}

/// As above on a capacity-2 queue, through the blocking `push` and `pop` (their sequence
/// and sleeper words included): one producer pushes 1, 2, 3 (the third wraps to slot 0,
/// so it waits for the consumer when the queue is full), the consumer pops 1, 2, 3. Waits
/// block until woken (`futex::block_waits`): a wake-up the publication's announcement
/// misses leaves a side blocked for good, which loom reports as a deadlock.
#[test]
fn capacity_two_blocking_push_vs_pop_wraps_in_order() {
    model_both_orders(|swap| {
        shmarena::engine::futex::block_waits();
        let q = Arc::new(Words::new(2));
        let (qp, qc) = (Arc::clone(&q), Arc::clone(&q));
        let producer = move || {
            let me = live(1);
            for value in 1..=3 {
                let pushed = qp.with_raw(|raw| raw.push(&[value], me, &Mock(me), None));
                assert!(pushed, "a push without a deadline returns once it pushed");
            }
        };
        let consumer = move || {
            let me = live(2);
            (0..3)
                .map(|_| {
                    let mut words = [0u64];
                    assert!(qc.with_raw(|raw| raw.pop(&mut words, me, &Mock(me), None)));
                    words[0]
                })
                .collect::<Vec<_>>()
        };
        let ((), popped) = pair(swap, producer, consumer);
        assert_eq!(popped, [1, 2, 3]);
        assert_eq!((q.head(), q.tail()), (3, 3));
        assert_eq!(q.stamp(0), stamp(EMPTY, 4, None));
        assert_eq!(q.stamp(1), stamp(EMPTY, 3, None));
        q.assert_empty_and_usable();
    });
}

/// Two producers race for the tickets of a capacity-2 queue, one element each, while a
/// consumer pops two: both elements come out exactly once, neither is lost or skipped, and
/// the queue ends empty and usable. (Ticket order per producer needs two pushes from one
/// producer; with a third thread spinning that exceeds loom's branch limit, so a second
/// model gives one producer two pushes on a capacity-1 queue and the consumer one pop.)
#[test]
fn two_producers_one_consumer_every_element_popped_once() {
    model(|| {
        let q = Arc::new(Words::new(2));
        let (qa, qb) = (Arc::clone(&q), Arc::clone(&q));
        let a = thread::spawn(move || qa.push_retrying(11, live(1), false));
        let b = thread::spawn(move || qb.push_retrying(21, live(2), false));
        let mut popped: Vec<u64> = (0..2).map(|_| q.pop_retrying(live(3), false)).collect();
        a.join().unwrap();
        b.join().unwrap();
        popped.sort_unstable();
        assert_eq!(popped, [11, 21]);
        assert_eq!((q.lost(), q.skipped()), (0, 0));
        assert_eq!((q.head(), q.tail()), (2, 2));
        q.assert_empty_and_usable();
    });
}

/// Producer A tries to push 11 then 12 and producer B tries to push 21 into a capacity-2
/// queue, once each, while a consumer tries one pop; the queue is drained afterwards.
/// Every acknowledged element comes out exactly once (a `Full` push's element never), and
/// 11 before 12: ticket order per producer. (Single attempts: with producer A retrying and
/// the consumer waiting, the four-thread model exceeds loom's branch limit.)
#[test]
fn two_producers_one_consumer_in_ticket_order_per_producer() {
    model(|| {
        let q = Arc::new(Words::new(2));
        let (qa, qb) = (Arc::clone(&q), Arc::clone(&q));
        let a = thread::spawn(move || {
            let first = qa.try_push(11, live(1));
            let second = qa.try_push(12, live(1));
            [first.is_ok(), second.is_ok()]
        });
        let b = thread::spawn(move || qb.try_push(21, live(2)).is_ok());
        let mut popped: Vec<u64> = q.try_pop(live(3)).into_iter().collect();
        let [ok_11, ok_12] = a.join().unwrap();
        let ok_21 = b.join().unwrap();
        while let Some(value) = q.try_pop(live(3)) {
            popped.push(value);
        }
        assert!(ok_11, "at most one element was queued before 11");
        let from_a: Vec<u64> = popped.iter().copied().filter(|v| *v < 20).collect();
        let expected_a: &[u64] = if ok_12 { &[11, 12] } else { &[11] };
        assert_eq!(from_a, expected_a, "popped {popped:?}");
        let from_b = popped.iter().filter(|v| **v == 21).count();
        assert_eq!(from_b, usize::from(ok_21), "popped {popped:?}");
        assert_eq!((q.lost(), q.skipped()), (0, 0));
        q.assert_empty_and_usable();
    });
}

/// Two consumers race for the elements of a full capacity-2 queue while a producer pushes
/// a third (it waits for a free slot): each element is popped by exactly one consumer,
/// both consumers get one (two were ready before they started), and none is lost.
#[test]
fn two_consumers_one_producer_each_element_popped_once() {
    model(|| {
        let q = Arc::new(Words::with_state(
            0,
            2,
            &[(stamp(FULL, 0, None), 1), (stamp(FULL, 1, None), 2)],
        ));
        q.pushed.store(2, Ordering::Relaxed);
        let (qa, qb) = (Arc::clone(&q), Arc::clone(&q));
        let a = thread::spawn(move || qa.try_pop(live(1)));
        let b = thread::spawn(move || qb.try_pop(live(2)));
        q.push_retrying(3, live(3), false);
        let got_a = a.join().unwrap();
        let got_b = b.join().unwrap();
        // Two elements were ready before either consumer started.
        let (got_a, got_b) = (got_a.expect("a found none"), got_b.expect("b found none"));
        let mut got = vec![got_a, got_b];
        got.sort_unstable();
        assert_eq!(got, [1, 2], "the first two tickets, once each");
        assert_eq!(q.try_pop(live(4)), Some(3));
        assert_eq!(q.lost(), 0);
        q.assert_empty_and_usable();
    });
}

/// Single attempts on a capacity-1 queue: a producer tries to push 1 then 2 while a
/// consumer tries one pop. The first push always succeeds (the queue starts empty); what
/// the consumer and the second push report depends on the interleaving, but draining
/// afterwards finds exactly the pushed elements that were not popped: each acknowledged
/// push popped exactly once, and `Full` / empty only when justified (see the counters).
#[test]
fn capacity_one_try_push_full_and_try_pop_empty_are_justified() {
    model_both_orders(|swap| {
        let q = Arc::new(Words::new(1));
        let (qp, qc) = (Arc::clone(&q), Arc::clone(&q));
        let producer = move || {
            let me = live(1);
            assert_eq!(qp.try_push(1, me), Ok(()), "first push into an empty queue");
            // SeqCst: see `push_retrying`.
            let popped = qp.popped.load(Ordering::SeqCst);
            let second = qp.try_push(2, me);
            if second.is_err() {
                assert_eq!(popped, 0, "Full after element 1 was popped");
            }
            second.is_ok()
        };
        let consumer = move || {
            // SeqCst: see `pop_retrying`.
            let pushed = qc.pushed.load(Ordering::SeqCst);
            let got = qc.try_pop(live(2));
            if got.is_none() {
                assert_eq!(pushed, 0, "empty after element 1 was pushed");
            }
            got
        };
        let (second_ok, got) = pair(swap, producer, consumer);
        let mut seen: Vec<u64> = got.into_iter().collect();
        while let Some(value) = q.try_pop(live(3)) {
            seen.push(value);
        }
        let expected: &[u64] = if second_ok { &[1, 2] } else { &[1] };
        assert_eq!(seen, expected);
        if second_ok {
            assert_eq!(got, Some(1), "the second push needed the first popped");
        }
        q.assert_empty_and_usable();
    });
}

// ---------------------------------------------------------------------------------------
// A producer that died after its claim.

/// A producer died holding ticket 0 of a capacity-2 queue, its claim named in the slot
/// (WRITING(0, dead), as the next push names it) or only in the tail word (slot still
/// EMPTY(0), tail word (1, dead)). A live producer pushes 7 while a consumer pops one
/// element: the consumer skips the dead slot (-> EMPTY(2)) and gets 7. The skip is counted
/// once, nothing is lost, and the skipped slot serves its next lap.
#[test]
fn consumer_skips_a_dead_producers_slot_once() {
    for named_in_slot in [false, true] {
        model_both_orders(move |swap| {
            let (tail, first) = dead_claim_of_ticket_0(named_in_slot);
            let q = Arc::new(Words::with_state(
                0,
                tail,
                &[(first, 0), (initial_stamp(1), 0)],
            ));
            let (qp, qc) = (Arc::clone(&q), Arc::clone(&q));
            let producer = move || qp.push_retrying(7, live(1), false);
            let consumer = move || qc.pop_retrying(live(2), false);
            let ((), got) = pair(swap, producer, consumer);
            assert_eq!(got, 7);
            assert_eq!(q.skipped(), 1);
            assert_eq!(q.lost(), 0);
            assert_eq!((q.head(), q.tail()), (2, 2));
            assert_eq!(q.stamp(0), stamp(EMPTY, 2, None));
            q.assert_empty_and_usable();
        });
    }
}

/// The tail word and slot 0's stamp after a dead producer claimed ticket 0: its claim
/// named in the slot (as the next push names it), or only in the tail word.
fn dead_claim_of_ticket_0(named_in_slot: bool) -> (u64, u64) {
    if named_in_slot {
        (1, stamp(WRITING, 0, Some(dead(5))))
    } else {
        (claimed(1, dead(5)), initial_stamp(0))
    }
}

/// On a capacity-1 queue a producer died holding ticket 0 (named in the slot or in the
/// tail word only). A live producer for ticket 1 finds the previous lap's dead claim and
/// frees the slot, while a consumer at ticket 0 may skip it first: exactly one of them
/// counts the skip, and the consumer gets the live producer's 7.
#[test]
fn dead_producers_slot_is_skipped_once_by_the_consumer_or_the_next_producer() {
    for named_in_slot in [false, true] {
        model_both_orders(move |swap| {
            let (tail, first) = dead_claim_of_ticket_0(named_in_slot);
            let q = Arc::new(Words::with_state(0, tail, &[(first, 0)]));
            let (qp, qc) = (Arc::clone(&q), Arc::clone(&q));
            let producer = move || qp.push_retrying(7, live(1), false);
            let consumer = move || qc.pop_retrying(live(2), false);
            let ((), got) = pair(swap, producer, consumer);
            assert_eq!(got, 7);
            assert_eq!(q.skipped(), 1);
            assert_eq!(q.lost(), 0);
            assert_eq!((q.head(), q.tail()), (2, 2));
            assert_eq!(q.stamp(0), stamp(EMPTY, 2, None));
            q.assert_empty_and_usable();
        });
    }
}

/// Two consumers find the same dead producer's claim (WRITING(0, dead)) at the head of a
/// capacity-2 queue whose ticket 1 holds 5 (FULL). Each tries one pop: the dead slot is
/// skipped exactly once, exactly one consumer gets 5 (the other reports empty: there is
/// nothing else), and the queue ends empty and usable.
#[test]
fn two_consumers_racing_to_skip_the_same_dead_slot_skip_it_once() {
    model(|| {
        let q = Arc::new(Words::with_state(
            0,
            2,
            &[
                (stamp(WRITING, 0, Some(dead(5))), 0),
                (stamp(FULL, 1, None), 5),
            ],
        ));
        let (qa, qb) = (Arc::clone(&q), Arc::clone(&q));
        let a = thread::spawn(move || qa.try_pop(live(1)));
        let got_b = qb.try_pop(live(2));
        let got_a = a.join().unwrap();
        let mut got: Vec<u64> = got_a.into_iter().chain(got_b).collect();
        got.sort_unstable();
        assert_eq!(got, [5], "a: {got_a:?}, b: {got_b:?}");
        assert_eq!(q.skipped(), 1);
        assert_eq!(q.lost(), 0);
        assert_eq!(q.stamp(0), stamp(EMPTY, 2, None));
        q.assert_empty_and_usable();
    });
}

/// As above with nothing behind the dead claim (capacity 1, `tail` at 1): both consumers
/// report empty, the slot is skipped once and ends EMPTY(1), ready for ticket 1.
#[test]
fn two_consumers_racing_to_skip_a_lone_dead_slot_skip_it_once() {
    model(|| {
        let q = Arc::new(Words::with_state(
            0,
            1,
            &[(stamp(WRITING, 0, Some(dead(5))), 0)],
        ));
        let qa = Arc::clone(&q);
        let a = thread::spawn(move || qa.try_pop(live(1)));
        let got_b = q.try_pop(live(2));
        assert_eq!(a.join().unwrap(), None);
        assert_eq!(got_b, None);
        assert_eq!(q.skipped(), 1);
        assert_eq!((q.head(), q.tail()), (1, 1));
        assert_eq!(q.stamp(0), stamp(EMPTY, 1, None));
        q.assert_empty_and_usable();
    });
}

// ---------------------------------------------------------------------------------------
// A consumer that died after its claim.

/// A consumer died holding ticket 0 of a capacity-2 queue (named in the slot or in the head word only), before or
/// after moving `head` past it; ticket 1 holds 5. A live producer pushes 7 (ticket 2, slot
/// 0: it takes the dead consumer's slot over) while a live consumer pops two elements: it
/// gets 5 then 7. `lost` is 1 (element 0), nothing else is lost or skipped.
#[test]
fn producer_takes_over_a_dead_consumers_slot_and_nothing_else_is_lost() {
    for named_in_slot in [false, true] {
        model_both_orders(move |swap| {
            let (head, first) = dead_pop_of_ticket_0(named_in_slot);
            let q = Arc::new(Words::with_state(
                head,
                2,
                &[(first, 4), (stamp(FULL, 1, None), 5)],
            ));
            let (qp, qc) = (Arc::clone(&q), Arc::clone(&q));
            let producer = move || qp.push_retrying(7, live(1), false);
            let consumer = move || {
                let first = qc.pop_retrying(live(2), false);
                let second = qc.pop_retrying(live(2), false);
                [first, second]
            };
            let ((), got) = pair(swap, producer, consumer);
            assert_eq!(got, [5, 7]);
            assert_eq!(q.lost(), 1);
            assert_eq!(q.skipped(), 0);
            assert_eq!((q.head(), q.tail()), (3, 3));
            q.assert_empty_and_usable();
        });
    }
}

/// The head word and slot 0's stamp after a consumer claimed ticket 0 (holding 4) and
/// died: its claim named in the slot (READING(0, dead), as the next pop names it), or only
/// in the head word (the slot still FULL(0)).
fn dead_pop_of_ticket_0(named_in_slot: bool) -> (u64, u64) {
    if named_in_slot {
        (1, stamp(READING, 0, Some(dead(5))))
    } else {
        (claimed(1, dead(5)), stamp(FULL, 0, None))
    }
}

/// On a full capacity-1 queue whose consumer died holding ticket 0,
/// a producer that tries once takes the slot over (it is not Full: the element is lost),
/// while a consumer that tries once finds nothing it may pop before the push publishes.
/// `lost` is 1, and the pushed element is popped exactly once (by the consumer or the
/// drain afterwards).
#[test]
fn capacity_one_dead_consumer_slot_taken_over_by_a_single_try_push() {
    for named_in_slot in [false, true] {
        model_both_orders(move |swap| {
            let (head, first) = dead_pop_of_ticket_0(named_in_slot);
            let q = Arc::new(Words::with_state(head, 1, &[(first, 4)]));
            let (qp, qc) = (Arc::clone(&q), Arc::clone(&q));
            let producer = move || qp.try_push(7, live(1));
            let consumer = move || qc.try_pop(live(2));
            let (pushed, got) = pair(swap, producer, consumer);
            assert_eq!(pushed, Ok(()), "a dead consumer's slot is not Full");
            let mut seen: Vec<u64> = got.into_iter().collect();
            seen.extend(q.try_pop(live(3)));
            assert_eq!(seen, [7]);
            assert_eq!(q.lost(), 1);
            assert_eq!(q.skipped(), 0);
            q.assert_empty_and_usable();
        });
    }
}

/// Two deaths in a row on a capacity-2 queue: a consumer claimed ticket 0 (holding 4) and
/// died, named only in the head word, and a producer claimed ticket 1 and died, named only
/// in the tail word. A consumer skips ticket 1 and moves head past it (before the model's
/// threads start, or while they run), and a producer pushes 7 at ticket 2, whose slot still
/// holds element 0: moving head on first names the dead consumer in slot 0, so the
/// producer can tell the slot is free (without the naming, head no longer names that
/// consumer, and every push reports full forever: loom's branch limit). The consumer gets
/// 7; one element lost, one push skipped.
#[test]
fn a_skip_after_a_dead_pop_keeps_the_pop_named() {
    for skipped_first in [false, true] {
        model_both_orders(move |swap| {
            let q = Arc::new(Words::with_state(
                claimed(1, dead(6)),
                claimed(2, dead(5)),
                &[(stamp(FULL, 0, None), 4), (initial_stamp(1), 0)],
            ));
            if skipped_first {
                assert_eq!(q.try_pop(live(3)), None, "skips ticket 1, finds nothing");
                assert_eq!(q.head(), 2);
            }
            let (qp, qc) = (Arc::clone(&q), Arc::clone(&q));
            let producer = move || qp.push_retrying(7, live(1), false);
            let consumer = move || qc.pop_retrying(live(2), false);
            let ((), got) = pair(swap, producer, consumer);
            assert_eq!(got, 7);
            assert_eq!((q.lost(), q.skipped()), (1, 1));
            assert_eq!((q.head(), q.tail()), (3, 3));
            q.assert_empty_and_usable();
        });
    }
}

/// Two producers find the same dead consumer's claim (named in the slot or in the head word only) on a full
/// capacity-1 queue and each tries one push: exactly one takes the slot over (the other
/// finds the queue full with its element), `lost` is counted once, and the one element
/// pushed is popped once.
#[test]
fn two_producers_racing_to_take_over_a_dead_consumers_slot_count_it_lost_once() {
    for named_in_slot in [false, true] {
        model(move || {
            let (head, first) = dead_pop_of_ticket_0(named_in_slot);
            let q = Arc::new(Words::with_state(head, 1, &[(first, 4)]));
            let qa = Arc::clone(&q);
            let a = thread::spawn(move || qa.try_push(11, live(1)).is_ok());
            let ok_b = q.try_push(21, live(2)).is_ok();
            let ok_a = a.join().unwrap();
            assert!(ok_a != ok_b, "a: {ok_a}, b: {ok_b}");
            let expected = if ok_a { 11 } else { 21 };
            assert_eq!(q.try_pop(live(3)), Some(expected));
            assert_eq!(q.lost(), 1);
            assert_eq!(q.skipped(), 0);
            q.assert_empty_and_usable();
        });
    }
}
