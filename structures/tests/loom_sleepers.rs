//! Loom model of the sleeper registry as shipped (`shmarena::sleepers`): a live owner's
//! sleepers entering and leaving while a reaper clears a dead sleeper's entry and the
//! participant sweep retires the dead owner's slot. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom cargo test --release -p shmarena --test loom_sleepers`.
//!
//! What must hold in every interleaving: a live sleeper is counted for as long as it is
//! announced (a count lowered under it would let a waker skip a wake-up it needs), and at
//! the end, everyone gone and the dead entry reaped, the count and every entry are zero
//! (nobody counted off twice, nothing left behind).

#![cfg(loom)]

mod loom_owners;
#[path = "../../engine/tests/loom_support/mod.rs"]
mod loom_support;

use loom::sync::Arc;
use loom::thread;
use loom_owners::{dead, live, Mock};
use loom_support::{model, model_both_orders, pair};
use shmarena::engine::sync::{AtomicU32, AtomicU64, Ordering};
use shmarena::sleepers::Sleepers;

/// A count and a registry of `words` words.
struct Words {
    count: AtomicU32,
    registry: Vec<AtomicU64>,
}

impl Words {
    fn sleepers(&self) -> Sleepers<'_> {
        Sleepers {
            count: &self.count,
            registry: &self.registry,
        }
    }
}

/// A sleeper of the dead owner of slot 5 left its count and its entry (the first of two);
/// a sleeper of the live owner of slot 7 enters and leaves (taking the other entry, or the
/// dead one's once it is cleared) while the main thread reaps, after the participant sweep
/// rewrote the dead entry (or with the entry as the death left it).
#[test]
fn a_live_sleeper_stays_counted_while_a_dead_one_is_reaped() {
    for sweep in [false, true] {
        model_both_orders(move |swap| live_sleeper_against_a_reap(sweep, swap));
    }
}

/// Two sleepers of one live owner (two threads of one process) enter and leave while the
/// main thread reaps the dead sleeper's entry.
#[test]
fn two_threads_of_one_owner_stay_counted_while_a_dead_one_is_reaped() {
    model(|| {
        let words = Arc::new(Words {
            count: AtomicU32::new(1),
            registry: (0..2).map(|_| AtomicU64::new(0)).collect(),
        });
        words.registry[1].store(u64::from(dead(5).bits()), Ordering::Relaxed);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let sleeper = Arc::clone(&words);
                thread::spawn(move || {
                    let announced = sleeper.sleepers().enter(live(7));
                    // SeqCst: a check of the model, not of the code.
                    assert!(sleeper.count.load(Ordering::SeqCst) >= 1);
                    sleeper.sleepers().leave(live(7), announced);
                })
            })
            .collect();
        words.sleepers().reap(&Mock(live(9)));
        for thread in threads {
            thread.join().unwrap();
        }
        words.sleepers().reap(&Mock(live(9)));
        // SeqCst: as above.
        assert_eq!(words.count.load(Ordering::SeqCst), 0);
        assert_eq!(words.registry[1].load(Ordering::SeqCst), 0);
    });
}

fn live_sleeper_against_a_reap(sweep: bool, swap: bool) {
    let words = Arc::new(Words {
        count: AtomicU32::new(1),
        registry: (0..2).map(|_| AtomicU64::new(0)).collect(),
    });
    words.registry[1].store(u64::from(dead(5).bits()), Ordering::Relaxed);
    let (sleeper, reaper) = (Arc::clone(&words), Arc::clone(&words));
    pair(
        swap,
        move || {
            let announced = sleeper.sleepers().enter(live(7));
            // SeqCst: a check of the model, not of the code.
            assert!(
                sleeper.count.load(Ordering::SeqCst) >= 1,
                "an announced live sleeper was counted off"
            );
            sleeper.sleepers().leave(live(7), announced);
        },
        move || {
            if sweep {
                reaper.sleepers().retire_owner_slot(5).unwrap();
            }
            reaper.sleepers().reap(&Mock(live(9)));
        },
    );
    words.sleepers().reap(&Mock(live(9)));
    // SeqCst: as above.
    assert_eq!(
        words.count.load(Ordering::SeqCst),
        0,
        "counted off exactly once each"
    );
    for word in &words.registry[1..] {
        assert_eq!(word.load(Ordering::SeqCst), 0, "no entry left behind");
    }
}
