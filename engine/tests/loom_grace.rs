//! Loom models of the shipping grace-period protocol ([`Grace`]) over [`HeapMemory`]: a
//! reader that pins and follows a shared pointer never reads a block after a reclaimer
//! that unlinked and retired it has freed it (also one that attached to its slot just
//! before, raising the mark scans stop at), a dead participant's pin holds nothing back,
//! and a live one's does.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shmarena-engine --release --test loom_grace`.

#![cfg(loom)]

mod loom_support;

use loom::sync::Arc;
use loom_support::{model, pair};
use shmarena_engine::grace::{Grace, PinToken};
use shmarena_engine::sync::Ordering;
use shmarena_engine::{HeapMemory, Liveness, Memory, OwnerId};

/// The participant table right after the header page: two slots of 64 bytes.
const PARTICIPANTS: u64 = 4096;
const SLOTS: u64 = 2;
/// The shared pointer, then two one-word blocks it may point at.
const POINTER: u64 = PARTICIPANTS + 64 * SLOTS;
const BLOCK_A: u64 = POINTER + 64;
const BLOCK_B: u64 = BLOCK_A + 64;
/// A stripe block (see `grace`) a participant may publish.
const STRIPES: u64 = BLOCK_B + 64;
const END: u64 = STRIPES + shmarena_engine::grace::STRIPE_BLOCK;
/// What a freed block holds.
const FREED: u64 = 0xDEAD;

/// Liveness in the model: every participant alive but `dead`.
struct Mock {
    me: OwnerId,
    dead: Option<u32>,
}

impl Liveness for Mock {
    fn me(&self) -> OwnerId {
        self.me
    }
    fn is_alive(&self, owner: OwnerId) -> bool {
        Some(owner.slot()) != self.dead
    }
}

fn grace(mem: &HeapMemory) -> Grace<'_, HeapMemory> {
    Grace::new(mem, PARTICIPANTS, SLOTS)
}

/// Both slots ACTIVE at generation 1 and attached to, the pointer at block A, both blocks
/// live (1).
fn fresh() -> Arc<HeapMemory> {
    fresh_with_attached(SLOTS as u32)
}

/// As [`fresh`], with only the slots below `attached` recorded as attached to (the header's
/// high-water mark): a later slot's holder attaches in the model.
fn fresh_with_attached(attached: u32) -> Arc<HeapMemory> {
    let mem = Arc::new(HeapMemory::new(END));
    for slot in 0..SLOTS {
        let word = mem.word(PARTICIPANTS + 64 * slot).unwrap();
        word.store(1 | 1 << 12, Ordering::SeqCst);
    }
    for slot in 0..attached {
        grace(&mem).note_attach(slot).unwrap();
    }
    mem.word(POINTER).unwrap().store(BLOCK_A, Ordering::SeqCst);
    mem.word(BLOCK_A).unwrap().store(1, Ordering::SeqCst);
    mem.word(BLOCK_B).unwrap().store(1, Ordering::SeqCst);
    mem
}

/// A reader in slot 0: pins, follows the pointer, reads the block, unpins. What it read.
fn read(mem: &HeapMemory) -> u64 {
    read_pinned(mem, grace(mem).pin(0).unwrap())
}

/// A reader in slot 0 that gives its slot the stripe block first (as a process's first pin
/// does) and pins on a stripe: what it read.
fn read_on_stripes(mem: &HeapMemory) -> u64 {
    let grace = grace(mem);
    assert_eq!(grace.set_stripes(0, STRIPES).unwrap(), STRIPES);
    read_pinned(mem, grace.pin_stripe(0, 3).unwrap())
}

/// Follows the pointer and reads the block under `token`, then unpins: what it read.
fn read_pinned(mem: &HeapMemory, token: PinToken<'_>) -> u64 {
    // Acquire: the block a writer published before the pointer.
    let block = mem.word(POINTER).unwrap().load(Ordering::Acquire);
    loom::thread::yield_now();
    // Relaxed: the pin, not this load's ordering, keeps the block from being freed.
    let value = mem.word(block).unwrap().load(Ordering::Relaxed);
    token.unpin();
    value
}

/// A reclaimer in slot 1: points the pointer at block B, retires block A with the epoch,
/// and frees it (writes `FREED`) once its grace period has passed, trying `rounds` times.
/// Whether it freed it.
fn unlink_and_reclaim(mem: &HeapMemory, rounds: usize, liveness: &Mock) -> bool {
    // Release: block B's contents before the pointer to it.
    mem.word(POINTER).unwrap().store(BLOCK_B, Ordering::Release);
    let grace = grace(mem);
    let retired = grace.epoch().unwrap();
    for _ in 0..rounds {
        if grace.has_passed(retired, liveness).unwrap() {
            // Relaxed: the grace period orders every pinned reader's loads before this.
            mem.word(BLOCK_A).unwrap().store(FREED, Ordering::Relaxed);
            return true;
        }
        loom::thread::yield_now();
    }
    false
}

/// `reader` (in slot 0) racing a reclaimer (in slot 1), both thread orders: the reader
/// never reads the block freed under it.
fn races_a_reclaimer(reader: fn(&HeapMemory) -> u64) {
    races_a_reclaimer_in(SLOTS as u32, 1, reader);
}

/// `reader` racing a reclaimer in slot `reclaimer`, both thread orders, with the slots
/// below `attached` recorded as attached to at the start: the reader never reads the
/// block freed under it.
fn races_a_reclaimer_in(attached: u32, reclaimer: u32, reader: fn(&HeapMemory) -> u64) {
    for swap in [false, true] {
        model(move || {
            let mem = fresh_with_attached(attached);
            let (m1, m2) = (mem.clone(), mem.clone());
            let (value, _freed) = pair(
                swap,
                move || reader(&m1),
                move || {
                    let me = Mock {
                        me: OwnerId::new(reclaimer, 1),
                        dead: None,
                    };
                    unlink_and_reclaim(&m2, 2, &me)
                },
            );
            assert_eq!(value, 1, "the reader read a freed block");
        });
    }
}

/// A reader that publishes its stripes and pins on one while a reclaimer scans (which may
/// read the stripes word before or after the publication) never reads the block freed.
#[test]
fn a_reader_pinning_on_stripes_it_just_published_never_reads_a_freed_block() {
    races_a_reclaimer(read_on_stripes);
}

/// A reader racing a reclaimer never reads the block freed under it.
#[test]
fn a_pinned_reader_never_reads_a_freed_block() {
    races_a_reclaimer(read);
}

/// A process that attaches to slot 1 (raising the high-water mark that bounds scans) and
/// at once pins and reads, racing a reclaimer in slot 0 whose scans may read the mark
/// before or after the raise: it never reads the block freed.
#[test]
fn a_reader_that_just_attached_is_seen_by_every_scan_that_matters() {
    races_a_reclaimer_in(1, 0, |mem| {
        let grace = grace(mem);
        grace.note_attach(1).unwrap();
        read_pinned(mem, grace.pin(1).unwrap())
    });
}

/// Two readers in turn (the second pins after the first unpinned) against a reclaimer that
/// keeps trying: neither reads a freed block, and once both are gone the block is freed.
#[test]
fn readers_in_turn_never_read_a_freed_block_and_it_is_freed_after() {
    model(|| {
        let mem = fresh();
        let m1 = mem.clone();
        let reader = loom::thread::spawn(move || (read(&m1), read(&m1)));
        let me = Mock {
            me: OwnerId::new(1, 1),
            dead: None,
        };
        let freed = unlink_and_reclaim(&mem, 2, &me);
        let (first, second) = reader.join().unwrap();
        assert_eq!((first, second), (1, 1), "a reader read a freed block");
        if !freed {
            // Nobody pinned any more: the grace period passes now.
            assert!(unlink_and_reclaim(&mem, 1, &me));
        }
    });
}

/// A reader whose count lands between another reclaimer's scan and its compare-exchange
/// (the scan missed it, the move still happens) while a third process unlinks, retires
/// and frees: the reader still never reads the block freed.
#[test]
fn a_pin_landing_inside_an_advance_still_protects() {
    model(|| {
        let mem = fresh();
        let (m1, m2) = (mem.clone(), mem.clone());
        let reader = loom::thread::spawn(move || read(&m1));
        let advancer = loom::thread::spawn(move || {
            let me = Mock {
                me: OwnerId::new(1, 1),
                dead: None,
            };
            for _ in 0..2 {
                let _ = grace(&m2).try_advance(&me).unwrap();
            }
        });
        let me = Mock {
            me: OwnerId::new(1, 1),
            dead: None,
        };
        unlink_and_reclaim(&mem, 2, &me);
        assert_eq!(reader.join().unwrap(), 1, "the reader read a freed block");
        advancer.join().unwrap();
    });
}

/// A participant that died pinned holds nothing back; a live one does.
#[test]
fn a_dead_participants_pin_holds_nothing_back() {
    model(|| {
        let mem = fresh();
        let grace = grace(&mem);
        let _left_behind = grace.pin(0).unwrap();
        let retired = grace.epoch().unwrap();
        let alive = Mock {
            me: OwnerId::new(1, 1),
            dead: None,
        };
        assert!(
            !grace.has_passed(retired, &alive).unwrap(),
            "a live pin was skipped"
        );
        let dead = Mock {
            me: OwnerId::new(1, 1),
            dead: Some(0),
        };
        assert!(
            grace.has_passed(retired, &dead).unwrap(),
            "a dead pin held it back"
        );
    });
}
