//! The sleeper registry: entries of dead sleepers are reaped with their part of the count,
//! live ones never, and no sequence of enters, leaves, reaps and sweeps counts a sleeper
//! twice or takes the count below zero.

use shmarena::engine::sync::{AtomicU32, AtomicU64, Ordering};
use shmarena::engine::Liveness;
use shmarena::sleepers::{Sleepers, REAP_EVERY};
use shmarena::OwnerId;

/// Liveness where the owners of the listed participant slots are dead.
struct DeadSlots(Vec<u32>);

impl Liveness for DeadSlots {
    fn me(&self) -> OwnerId {
        OwnerId::new(1, 1)
    }
    fn is_alive(&self, owner: OwnerId) -> bool {
        owner != OwnerId::DEAD && !self.0.contains(&owner.slot())
    }
}

struct Words {
    count: AtomicU32,
    registry: Vec<AtomicU64>,
}

impl Words {
    /// A count and a registry of `words` words (`words - 1` times two entries).
    fn new(words: usize) -> Self {
        Self {
            count: AtomicU32::new(0),
            registry: (0..words).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn sleepers(&self) -> Sleepers<'_> {
        Sleepers {
            count: &self.count,
            registry: &self.registry,
        }
    }

    fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// The owner ids in the entries, in order.
    fn entries(&self) -> Vec<u32> {
        self.registry[1..]
            .iter()
            .flat_map(|word| {
                let word = word.load(Ordering::Relaxed);
                [word as u32, (word >> 32) as u32]
            })
            .filter(|&bits| bits != 0)
            .collect()
    }
}

#[test]
fn a_dead_sleeper_is_reaped_at_the_reap_every_missed_wake_and_counted_off_once() {
    let words = Words::new(3);
    let (live, dead) = (OwnerId::new(2, 1), OwnerId::new(3, 1));
    let liveness = DeadSlots(vec![3]);
    let _kept = words.sleepers().enter(live);
    let _lost = words.sleepers().enter(dead);
    assert_eq!(words.count(), 2);
    for _ in 0..REAP_EVERY - 1 {
        words.sleepers().missed_wake(&liveness);
    }
    assert_eq!(
        words.count(),
        2,
        "no reap before the REAP_EVERYth missed wake"
    );
    words.sleepers().missed_wake(&liveness);
    assert_eq!(words.count(), 1, "the dead sleeper's part is gone");
    assert_eq!(words.entries(), vec![live.bits()]);
    assert_eq!(words.sleepers().reap(&liveness), 0, "nothing left to reap");
    assert_eq!(words.count(), 1);
}

#[test]
fn a_leave_after_its_entry_was_reaped_does_not_count_off_again() {
    let words = Words::new(2);
    let me = OwnerId::new(4, 1);
    let announced = words.sleepers().enter(me);
    let other = words.sleepers().enter(OwnerId::new(5, 1));
    // Judged dead (as no live process ever is), reaped, and then it leaves after all.
    assert_eq!(words.sleepers().reap(&DeadSlots(vec![4])), 1);
    assert_eq!(words.count(), 1);
    words.sleepers().leave(me, announced);
    assert_eq!(words.count(), 1, "the reap counted it off already");
    words.sleepers().leave(OwnerId::new(5, 1), other);
    assert_eq!(words.count(), 0);
    assert!(words.entries().is_empty());
}

#[test]
fn sleepers_beyond_the_entries_are_counted_and_leave_cleanly() {
    let words = Words::new(2); // two entries
    let owners: Vec<OwnerId> = (10..14).map(|slot| OwnerId::new(slot, 1)).collect();
    let announced: Vec<_> = owners
        .iter()
        .map(|&owner| words.sleepers().enter(owner))
        .collect();
    assert_eq!(words.count(), 4);
    assert_eq!(words.entries().len(), 2, "two recorded, two counted only");
    for (owner, announced) in owners.iter().zip(announced) {
        words.sleepers().leave(*owner, announced);
    }
    assert_eq!(words.count(), 0);
    assert!(words.entries().is_empty());
}

#[test]
fn threads_of_one_process_take_an_entry_each() {
    let words = Words::new(2);
    let me = OwnerId::new(6, 1);
    let first = words.sleepers().enter(me);
    let second = words.sleepers().enter(me);
    assert_eq!(words.entries(), vec![me.bits(), me.bits()]);
    words.sleepers().leave(me, second);
    assert_eq!((words.count(), words.entries()), (1, vec![me.bits()]));
    words.sleepers().leave(me, first);
    assert_eq!((words.count(), words.entries().len()), (0, 0));
}

#[test]
fn the_sweep_rewrites_a_retired_slots_entries_to_the_dead_owner_and_a_reap_clears_them() {
    let words = Words::new(2);
    let (retired, other) = (OwnerId::new(7, 1), OwnerId::new(8, 1));
    let _ = words.sleepers().enter(retired);
    let _ = words.sleepers().enter(other);
    words.sleepers().retire_owner_slot(7).unwrap();
    assert_eq!(words.entries(), vec![OwnerId::DEAD.bits(), other.bits()]);
    // Nobody else is dead: only the rewritten entry goes.
    assert_eq!(words.sleepers().reap(&DeadSlots(Vec::new())), 1);
    assert_eq!((words.count(), words.entries()), (1, vec![other.bits()]));
}

#[test]
fn hostile_words_never_take_the_count_below_zero_or_panic() {
    let words = Words::new(2);
    // An entry with no count behind it, and bits that are no owner id.
    words.registry[1].store(
        u64::from(OwnerId::new(9, 1).bits()) | 0x8000_0000 << 32,
        Ordering::Relaxed,
    );
    assert_eq!(words.sleepers().reap(&DeadSlots(vec![9])), 2);
    assert_eq!(words.count(), 0, "never below zero");
    // No registry at all: nothing recorded, nothing reaped.
    let bare = AtomicU32::new(0);
    let sleepers = Sleepers {
        count: &bare,
        registry: &[],
    };
    let me = OwnerId::new(1, 1);
    let announced = sleepers.enter(me);
    assert!(sleepers.any());
    sleepers.missed_wake(&DeadSlots(vec![1]));
    sleepers.leave(me, announced);
    assert!(!sleepers.any());
}
