//! Queue tests in one process: FIFO order against a `VecDeque` model, full and empty,
//! wrap-around, blocking with timeouts, and recovery from a claimant that "died"
//! (a second region handle standing in for another process).

#![cfg(not(loom))]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use shmarena::{Error, PushError, Region, RegionExt};

fn temp_region(tag: &str) -> (Region, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("shmarena-queue-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    (Region::create(&path, 4 << 20).unwrap(), path)
}

proptest! {
    #[test]
    fn queue_matches_a_vecdeque_model(capacity in 1u64..9, ops in prop::collection::vec(any::<Option<u32>>(), 1..200)) {
        let (region, path) = temp_region(&format!("model-{capacity}"));
        let queue = region.queue::<[u32; 3]>("q", capacity).unwrap();
        let mut model = VecDeque::new();
        for (i, op) in ops.into_iter().enumerate() {
            if let Some(x) = op {
                    let item = [x, i as u32, !x];
                    match queue.try_push(item) {
                        Ok(()) => model.push_back(item),
                        Err(PushError::Full(back)) => {
                            prop_assert_eq!(back, item, "the element comes back");
                            prop_assert_eq!(model.len() as u64, capacity);
                        }
                        Err(other) => prop_assert!(false, "push: {}", other),
                    }
            } else {
                prop_assert_eq!(queue.try_pop(), model.pop_front());
            }
            prop_assert_eq!(queue.len(), model.len());
        }
        drop(queue);
        drop(region);
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn blocking_pop_waits_for_a_push_and_times_out_when_none_comes() {
    let (region, path) = temp_region("blocking");
    let queue = Arc::new(region.queue::<u64>("q", 2).unwrap());
    assert_eq!(queue.pop_timeout(Duration::from_millis(20)), None);
    let consumer = {
        let queue = Arc::clone(&queue);
        std::thread::spawn(move || (0..100).map(|_| queue.pop()).collect::<Vec<_>>())
    };
    for i in 0..100 {
        queue.push(i); // waits while the 2 slots are full
    }
    assert_eq!(consumer.join().unwrap(), (0..100).collect::<Vec<_>>());
    queue.try_push(1).unwrap();
    queue.try_push(2).unwrap();
    assert!(matches!(
        queue.push_timeout(3, Duration::from_millis(20)),
        Err(PushError::Full(3))
    ));
    drop(queue);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

/// A job type with no `Debug`: a push error still unwraps and prints.
#[derive(Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Job {
    id: u64,
    cost: f64,
}

#[test]
fn a_push_into_a_full_queue_hands_the_element_back() {
    let (region, path) = temp_region("hands-back");
    let queue = region.queue::<Job>("q", 1).unwrap();
    let first = Job { id: 1, cost: 0.5 };
    let second = Job { id: 2, cost: 1.5 };
    queue.try_push(first).unwrap();
    let refused = queue.try_push(second).unwrap_err();
    assert!(refused.is_full());
    assert_eq!(format!("{refused:?}"), "Full(..)");
    assert_eq!(refused.to_string(), Error::QueueFull.to_string());
    assert!(std::error::Error::source(&refused).is_none());
    assert!(refused.into_inner() == second, "the element comes back");
    let Err(PushError::Full(back)) = queue.push_timeout(second, Duration::from_millis(5)) else {
        panic!("still full")
    };
    assert!(back == second);
    // For `?`: the crate's error, and a boxed one.
    let converted = || -> shmarena::Result<()> {
        queue.try_push(second)?;
        Ok(())
    };
    assert!(matches!(converted(), Err(Error::QueueFull)));
    let boxed = || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        queue.try_push(second)?;
        Ok(())
    };
    assert_eq!(
        boxed().unwrap_err().to_string(),
        "the queue is full: every slot holds an element"
    );
    // Nothing was pushed by the refused attempts.
    assert!(queue.try_pop() == Some(first));
    assert!(queue.try_pop().is_none());
    queue.try_push(back).unwrap();
    assert!(queue.pop() == second);
    drop(queue);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn threads_pushing_and_popping_deliver_every_item_once() {
    let (region, path) = temp_region("threads");
    let queue = Arc::new(region.queue::<u64>("q", 16).unwrap());
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || (0..20_000).for_each(|i| queue.push(p << 32 | i)))
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || (0..20_000).map(|_| queue.pop()).collect::<Vec<_>>())
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    let mut seen: Vec<u64> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    // Per producer, each consumer sees increasing sequence numbers (FIFO per producer).
    seen.sort_unstable();
    let expected: Vec<u64> = (0..2u64)
        .flat_map(|p| (0..20_000).map(move |i| p << 32 | i))
        .collect();
    assert_eq!(seen, expected);
    drop(queue);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_wrong_capacity_or_element_size_is_a_type_mismatch() {
    let (region, path) = temp_region("mismatch");
    region.queue::<u64>("q", 4).unwrap();
    assert!(matches!(
        region.queue::<u64>("q", 8),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        region.queue::<u32>("q", 4),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        region.queue::<u64>("zero", 0),
        Err(Error::InvalidArgument(_))
    ));
    drop(region);
    std::fs::remove_file(path).unwrap();
}

/// Fuzz finding (`open_region`, a live patch): a head ticket near `u64::MAX` (the mapping
/// can hold anything) made `try_pop` add the capacity past it and panic. Tickets wrap:
/// pops, pushes and the length give answers, and none panics.
#[test]
fn a_head_ticket_near_u64_max_wraps_instead_of_overflowing() {
    use shmarena::engine::Memory;
    let (region, path) = temp_region("ticket-max");
    let queue = region.queue::<u64>("q", 4).unwrap();
    queue.try_push(1).unwrap();
    let body = region.find_object("q").unwrap().unwrap().offset;
    let head = region
        .memory()
        .word(body + shmarena::queue::layout::HEAD)
        .unwrap();
    for ticket in [u64::MAX, u64::MAX - 2] {
        head.store(ticket, std::sync::atomic::Ordering::Relaxed);
        let _ = queue.try_pop();
        let _ = queue.pop_timeout(Duration::ZERO);
        let _ = queue.try_push(2);
        assert!(queue.len() <= 4);
    }
    drop((queue, region));
    std::fs::remove_file(path).unwrap();
}

/// A closing ring of an unbounded queue in which two pushes gave their tickets up one lap
/// after the other (each give-up frees the slot for the next lap's ticket before head has
/// passed it): head at ticket 0, slot 0 already free for ticket 4, ticket 1 holding an
/// acknowledged element. A pop moves head past the given-up tickets and gets the element
/// (it used to take the slot, two laps ahead, for "not yet pushed" and report empty for
/// good, and the ring never drained).
#[test]
fn a_pop_passes_tickets_given_up_laps_ahead() {
    // Slot 0 free for ticket 4 (EMPTY, ticket 4); slot 1 FULL(1) holding 111.
    let words = LooseQueue::new(3, [4 << 2, 0, 2 | 1 << 2, 111]);
    let queue = words.raw();
    let region_path =
        std::env::temp_dir().join(format!("shmarena-queue-laps-{}", std::process::id()));
    let region = Region::create(&region_path, 1 << 20).unwrap();
    let me = region.participant_id();
    assert!(!queue.is_drained(&region), "ticket 1 holds an element");
    let mut out = [0];
    assert!(
        queue.try_pop(&mut out, me, &region),
        "the element behind the given-up ticket"
    );
    assert_eq!(out, [111]);
    assert_eq!(words.head_ticket(), 2);
    Region::unlink(&region_path).unwrap();
}

/// The words of a two-slot queue of one-word elements, outside any region, for
/// `RawQueue` in a hand-made state: head at ticket 0 naming nobody, tail at `tail`, the
/// slots' (stamp, element) words as given.
struct LooseQueue {
    /// Head, tail, lost, skipped.
    words: Vec<shmarena::engine::sync::AtomicU64>,
    /// The futex sequences and sleeper counts.
    halves: Vec<shmarena::engine::sync::AtomicU32>,
    slots: Vec<shmarena::engine::sync::AtomicU64>,
}

impl LooseQueue {
    fn new(tail: u64, slots: [u64; 4]) -> Self {
        use shmarena::engine::sync::{AtomicU32, AtomicU64};
        let words: Vec<AtomicU64> = [0, tail, 0, 0].into_iter().map(AtomicU64::new).collect();
        Self {
            words,
            halves: (0..4).map(|_| AtomicU32::new(0)).collect(),
            slots: slots.into_iter().map(AtomicU64::new).collect(),
        }
    }

    fn raw(&self) -> shmarena::queue::RawQueue<'_> {
        use shmarena::queue::{QueueHeader, RawQueue, Sleepers};
        let header = QueueHeader {
            head: &self.words[0],
            tail: &self.words[1],
            not_empty: &self.halves[0],
            pop_sleepers: Sleepers {
                count: &self.halves[1],
                registry: &[],
            },
            not_full: &self.halves[2],
            push_sleepers: Sleepers {
                count: &self.halves[3],
                registry: &[],
            },
            lost: &self.words[2],
            skipped: &self.words[3],
        };
        RawQueue::new(header, &self.slots, 2).unwrap()
    }

    /// A consumer (owner 5) copying out the element of ticket 0: slot 0 `READING(0)`
    /// (state | ticket << 2 | owner << 33), slot 1 `FULL(1)` holding 111, head at ticket
    /// 1, tail at ticket 2. The queue and slot 0's stamp.
    fn read_out_at_slot_0() -> (Self, u64) {
        let reading = 3 | u64::from(shmarena::OwnerId::new(5, 1).bits()) << 33;
        let words = Self::new(2, [reading, 7, 2 | 1 << 2, 111]);
        words.words[0].store(1, std::sync::atomic::Ordering::Relaxed);
        (words, reading)
    }

    /// The head word's ticket.
    fn head_ticket(&self) -> u64 {
        self.words[0].load(std::sync::atomic::Ordering::Relaxed) & ((1 << 31) - 1)
    }

    /// Skipped pushes.
    fn skipped(&self) -> u64 {
        self.words[3].load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A producer died holding ticket 0 (named in its slot), and its participant slot does not
/// show it yet (no sweep): only the kernel's lock says it is dead. A pop takes it for a
/// writer while it spins (looking at shared memory only), then asks the kernel, skips the
/// dead claim and returns the element behind it, in one call.
#[test]
fn a_pop_skips_a_dead_producer_that_only_the_kernel_knows_is_dead() {
    use shmarena::engine::Liveness;
    use shmarena::OwnerId;

    /// Every other owner is dead, but its participant slot still looks in use.
    struct Unswept(OwnerId);
    impl Liveness for Unswept {
        fn me(&self) -> OwnerId {
            self.0
        }
        fn is_alive(&self, owner: OwnerId) -> bool {
            owner == self.0
        }
        fn may_be_alive(&self, _: OwnerId) -> bool {
            true
        }
    }

    let dead = OwnerId::new(5, 1);
    let me = OwnerId::new(1, 1);
    // Slot 0: WRITING(0, dead) (stamp: state | ticket << 2 | owner << 33); slot 1: FULL(1)
    // holding 111; tail at ticket 2, naming nobody.
    let writing = 1 | u64::from(dead.bits()) << 33;
    let words = LooseQueue::new(2, [writing, 0, 2 | 1 << 2, 111]);
    let queue = words.raw();
    let mut out = [0];
    assert!(
        queue.try_pop(&mut out, me, &Unswept(me)),
        "the element behind the dead claim"
    );
    assert_eq!(out, [111]);
    assert_eq!(words.skipped(), 1);
    assert_eq!(words.head_ticket(), 2);
}

/// A consumer is copying out the element of ticket 0 (its slot `READING`), and the queue
/// holds one more element in a two-slot ring: the queue is not full. A push for ticket 2
/// waits for that slot instead of reporting full, and goes in once the consumer is done
/// (here on the third look). An unbounded queue's push used to take such a false "full"
/// for a full ring and link a new one, leaving its first ring for good.
#[test]
fn a_push_waits_for_a_consumer_reading_the_slot_out_instead_of_reporting_full() {
    use shmarena::engine::Liveness;
    use shmarena::OwnerId;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Everyone is alive; the consumer finishes its read at the third look.
    struct Finishing<'a> {
        me: OwnerId,
        looks: AtomicU32,
        slot: &'a shmarena::engine::sync::AtomicU64,
        freed: u64,
    }
    impl Liveness for Finishing<'_> {
        fn me(&self) -> OwnerId {
            self.me
        }
        fn is_alive(&self, owner: OwnerId) -> bool {
            self.may_be_alive(owner)
        }
        fn may_be_alive(&self, _: OwnerId) -> bool {
            if self.looks.fetch_add(1, Ordering::Relaxed) == 2 {
                self.slot.store(self.freed, Ordering::Release);
            }
            true
        }
    }

    let me = OwnerId::new(1, 1);
    let (words, _) = LooseQueue::read_out_at_slot_0();
    let liveness = Finishing {
        me,
        looks: AtomicU32::new(0),
        slot: &words.slots[0],
        freed: 2 << 2, // EMPTY for ticket 2: the consumer's store when it is done
    };
    let queue = words.raw();
    assert!(
        queue.try_push(&[222], me, &liveness),
        "the queue is not full"
    );
    assert_eq!(
        words.slots[0].load(Ordering::Relaxed) & ((1 << 33) - 1),
        2 | 2 << 2,
        "FULL for ticket 2"
    );
    assert_eq!(words.slots[1].load(Ordering::Relaxed), 222);
    assert_eq!(
        words.slots[2].load(Ordering::Relaxed),
        2 | 1 << 2,
        "ticket 1 untouched"
    );
    let mut out = [0];
    assert!(queue.try_pop(&mut out, me, &liveness));
    assert_eq!(out, [111]);
    assert!(queue.try_pop(&mut out, me, &liveness));
    assert_eq!(out, [222]);
}

/// As above, but the consumer never finishes (frozen): the push looks a bounded number of
/// times, asks the kernel once (the consumer is alive), and reports the queue full; the
/// slot and the element behind it are untouched.
#[test]
fn a_push_reports_full_when_a_live_consumer_keeps_reading_the_slot() {
    use shmarena::engine::Liveness;
    use shmarena::OwnerId;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Frozen {
        me: OwnerId,
        kernel_asked: AtomicU32,
    }
    impl Liveness for Frozen {
        fn me(&self) -> OwnerId {
            self.me
        }
        fn is_alive(&self, _: OwnerId) -> bool {
            self.kernel_asked.fetch_add(1, Ordering::Relaxed);
            true
        }
        fn may_be_alive(&self, _: OwnerId) -> bool {
            true
        }
    }

    let me = OwnerId::new(1, 1);
    let (words, reading) = LooseQueue::read_out_at_slot_0();
    let liveness = Frozen {
        me,
        kernel_asked: AtomicU32::new(0),
    };
    let queue = words.raw();
    assert!(
        !queue.try_push(&[222], me, &liveness),
        "full while it reads"
    );
    assert_eq!(liveness.kernel_asked.load(Ordering::Relaxed), 1);
    assert_eq!(words.slots[0].load(Ordering::Relaxed), reading);
    assert_eq!(words.skipped(), 0);
}
