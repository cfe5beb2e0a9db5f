//! Loom models of the participant sweep racing with recovery, on the shipping code: the
//! sweep of a retired participant slot rewrites a dead owner's field to `OwnerId::DEAD`
//! with one compare-exchange (`retire_owner_field_u32`, `RawMap::retire_owner_slot`)
//! while a live process takes over what that owner left. Whichever comes first, the live
//! process ends up with it, and the sweep never overwrites a live owner. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom cargo test --release -p shmarena --test loom_sweep`.

#![cfg(loom)]

mod loom_owners;
#[path = "../../engine/tests/loom_support/mod.rs"]
mod loom_support;
mod loom_table;

use loom::sync::Arc;
use loom_owners::{dead, live, Mock};
use loom_support::{model_both_orders, pair};
use loom_table::table;
use shmarena::engine::liveness::retire_owner_field_u32;
use shmarena::engine::sync::{AtomicU32, Ordering};
use shmarena::hash_map::{RawMap, Slots};
use shmarena::mutex::{Acquired, RawMutex};
use shmarena::OwnerId;

const BUSY: u64 = 1;

struct MutexWords {
    word: AtomicU32,
    consistency: AtomicU32,
}

impl MutexWords {
    fn raw(&self) -> RawMutex<'_> {
        RawMutex {
            word: &self.word,
            consistency: &self.consistency,
        }
    }
}

/// A lock held by a dead owner of slot 3: a sweep of slot 3 and a locker of slot 1 race.
/// The locker always gets the lock, told the owner died; the sweep leaves it alone.
#[test]
fn sweep_and_take_over_of_a_dead_owners_lock() {
    model_both_orders(|swap| {
        let words = Arc::new(MutexWords {
            word: AtomicU32::new(dead(3).bits()),
            consistency: AtomicU32::new(0),
        });
        let (sweeper, locker) = (words.clone(), words.clone());
        let (swept, acquired) = pair(
            swap,
            move || retire_owner_field_u32(&sweeper.word, 3).unwrap(),
            move || {
                let me = Mock::slot(1);
                locker.raw().lock(me.0, &me, None)
            },
        );
        assert_eq!(acquired, Some(Acquired::OwnerDied));
        assert_eq!(
            words.raw().owner(),
            Some(live(1)),
            "the sweep overwrote a live owner"
        );
        // The sweep rewrote the field only if it came first.
        let _ = swept;
    });
}

/// A one-slot map whose only slot a dead inserter of participant slot 3 left `BUSY`: a
/// sweep of slot 3 and an insert that needs the room race. The insert always lands, the
/// slot's owner field ends up as the insert left it.
#[test]
fn sweep_and_recovery_of_a_dead_inserters_slot() {
    model_both_orders(|swap| {
        let table = table(1, 1);
        let order = Ordering::SeqCst;
        table.hints(0).fetch_or(0x01, order);
        let busy = [BUSY | 1 << 30, u64::from(dead(3).bits())];
        table
            .pair(0)
            .compare_exchange([0, 0], busy, order, order)
            .unwrap();
        let (sweeper, inserter) = (table.clone(), table.clone());
        let ((), inserted) = pair(
            swap,
            move || RawMap::new(sweeper, 1, 1, 7).retire_owner_slot(3).unwrap(),
            move || {
                let mut old = [0];
                RawMap::new(inserter, 1, 1, 7).insert(&[6], &[60], true, &mut old, &Mock::slot(1))
            },
        );
        assert!(!inserted.unwrap(), "a fresh key");
        let raw = RawMap::new(table.clone(), 1, 1, 7);
        let mut out = [0];
        assert!(raw.get(&[6], &mut out).unwrap());
        assert_eq!(out, [60]);
        let seen = table.pair(0).load(Ordering::SeqCst);
        assert_eq!(seen[1], 60, "the member's value, not an owner");
        assert_ne!(seen[1], u64::from(OwnerId::DEAD.bits()));
    });
}
