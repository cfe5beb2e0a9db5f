//! Loom models of the shipping list slot core, `RawSlot` (push, get, set and the recovery
//! of dead pushers and setters), built over loom atomics with a mock [`Liveness`] whose
//! dead owners are fixed per model. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom cargo test --release -p shmarena --test loom_list`.
//!
//! Each model allocates one slot (its state word and its data words) as loom atomics and
//! drives `RawSlot` from two threads. The data words are atomics, so loom cannot report a
//! data race on them; what the models check is the values: a wide element is written with
//! every word equal to one number, and a reader asserts that the words it got are all
//! equal and one of the values that element ever held. A torn or stale read, or garbage
//! from an abandoned write, fails the assertion in the interleaving that produced it.
//!
//! State words are computed here from the documented layout
//! (`kind | version << 2 | writer << 33`), so a model also fails if the layout drifts.
//!
//! Reads that loom's preemption bound makes interesting: a reader preempted between its
//! data loads while a setter completes one or two versions (two preemptions), and a setter
//! preempted between its claim and its publication while a reader runs.

#![cfg(loom)]

mod loom_owners;
#[path = "../../engine/tests/loom_support/mod.rs"]
mod loom_support;

use loom::sync::Arc;
use loom::thread;
use loom_owners::{dead, live, Mock};
use loom_support::{model, model_both_orders, pair};
use shmarena::engine::sync::{AtomicU64, Ordering};
use shmarena::list::RawSlot;
use shmarena::OwnerId;

// ---------------------------------------------------------------------------------------
// State words, from the layout documented in `list.rs`.

const EMPTY: u64 = 0;
const PUSHING: u64 = 1;
const READY: u64 = 2;
const HOLE: u64 = 3;

fn state(kind: u64, version: u64, writer: Option<OwnerId>) -> u64 {
    kind | (version << 2) | (u64::from(writer.map_or(0, OwnerId::bits)) << 33)
}

/// Garbage an abandoned write left behind: never a value any model stores as an element.
const GARBAGE: u64 = 0xBAD_BAD;

// ---------------------------------------------------------------------------------------
// One slot.

struct Slot {
    state: AtomicU64,
    data: Vec<AtomicU64>,
    words: usize,
}

impl Slot {
    /// A slot of `words`-word elements with state `state`; `copies` are the initial data
    /// words (copy 0 then copy 1 for wide elements), zero where not given.
    fn new(words: usize, state: u64, copies: &[u64]) -> Arc<Self> {
        let len = if words == 1 { 1 } else { 2 * words };
        assert!(copies.len() <= len);
        Arc::new(Self {
            state: AtomicU64::new(state),
            data: (0..len)
                .map(|i| AtomicU64::new(copies.get(i).copied().unwrap_or(0)))
                .collect(),
            words,
        })
    }

    /// A READY slot at version 0 holding `[x; words]` in copy 0, with `writer` (if any) in
    /// the writer field and `spare` in every word of copy 1.
    fn ready(words: usize, x: u64, writer: Option<OwnerId>, spare: u64) -> Arc<Self> {
        let mut copies = vec![x; words];
        if words > 1 {
            copies.extend(std::iter::repeat_n(spare, words));
        }
        Self::new(words, state(READY, 0, writer), &copies)
    }

    fn raw(&self) -> RawSlot<'_> {
        RawSlot {
            state: &self.state,
            data: &self.data,
            words: self.words,
        }
    }

    /// `get`: the element's words, `None` where the slot holds none.
    fn get(&self) -> Option<Vec<u64>> {
        let mut out = vec![u64::MAX; self.words];
        let present = self.raw().get(&mut out, &Mock(live(1))).expect("reads end");
        present.then_some(out)
    }

    /// `get` of an element written as `[x; words]`: `x`, after checking it is not torn.
    fn get_uniform(&self) -> Option<u64> {
        self.get().map(|out| uniform(&out))
    }

    /// `set` to `[x; words]` as `me`.
    fn set(&self, x: u64, me: OwnerId) -> bool {
        let value = vec![x; self.words];
        self.raw()
            .set(&value, me, &Mock(live(1)))
            .expect("sets end")
    }

    fn state(&self) -> u64 {
        self.state.load(Ordering::SeqCst)
    }
}

/// The number every word of `out` holds; panics on a torn element.
fn uniform(out: &[u64]) -> u64 {
    assert!(
        out.iter().all(|w| *w == out[0]),
        "torn element: {out:x?} (words from different writes)"
    );
    out[0]
}

// ---------------------------------------------------------------------------------------
// push vs get.

/// A reader racing a push sees nothing or the complete element, never part of it, and a
/// live pusher's slot is never buried.
fn push_vs_get(words: usize, swap: bool) {
    let slot = Slot::new(words, state(EMPTY, 0, None), &[]);
    let element: Vec<u64> = (0..words as u64).map(|i| 10 + i).collect();
    let (pusher, reader) = (Arc::clone(&slot), Arc::clone(&slot));
    let pushed = element.clone();
    let ((), seen) = pair(
        swap,
        move || pusher.raw().push(&pushed, live(1)),
        move || reader.get(),
    );
    if let Some(seen) = seen {
        assert_eq!(seen, element, "a partial element was read");
    }
    assert_eq!(
        slot.state(),
        state(READY, 0, None),
        "a live push was buried"
    );
    assert_eq!(slot.get(), Some(element));
}

#[test]
fn push_vs_get_one_word() {
    model_both_orders(|swap| push_vs_get(1, swap));
}

#[test]
fn push_vs_get_wide() {
    model_both_orders(|swap| push_vs_get(3, swap));
}

// ---------------------------------------------------------------------------------------
// set vs get.

/// A reader racing one set of a wide element returns the old or the new element, never a
/// mix; a second read by the same reader never goes back to the old one.
fn set_vs_get_never_torn(words: usize, swap: bool) {
    let slot = Slot::ready(words, 1, None, 0);
    let (setter, reader) = (Arc::clone(&slot), Arc::clone(&slot));
    let (set, (first, second)) = pair(
        swap,
        move || setter.set(2, live(1)),
        move || (reader.get_uniform(), reader.get_uniform()),
    );
    assert!(set);
    let (first, second) = (first.expect("READY"), second.expect("READY"));
    assert!(matches!(first, 1 | 2), "read {first}");
    assert!(matches!(second, 1 | 2), "read {second}");
    assert!(second >= first, "read {first} then the older {second}");
    assert_eq!(slot.state(), state(READY, 1, None));
    assert_eq!(slot.get_uniform(), Some(2));
}

#[test]
fn set_vs_get_never_torn_two_words() {
    model_both_orders(|swap| set_vs_get_never_torn(2, swap));
}

#[test]
fn set_vs_get_never_torn_three_words() {
    model_both_orders(|swap| set_vs_get_never_torn(3, swap));
}

/// Two sets (versions 1 and 2) complete while a reader reads version 0: the second writes
/// copy 0, the one the reader is reading, so a reader that saw any of its words must see
/// the version move by two and retry.
fn two_sets_vs_get(swap: bool) {
    let slot = Slot::ready(2, 1, None, 0);
    let (setter, reader) = (Arc::clone(&slot), Arc::clone(&slot));
    let ((), seen) = pair(
        swap,
        move || {
            assert!(setter.set(2, live(1)));
            assert!(setter.set(3, live(2)));
        },
        move || reader.get_uniform(),
    );
    let seen = seen.expect("READY");
    assert!(matches!(seen, 1..=3), "read {seen}");
    assert_eq!(slot.state(), state(READY, 2, None));
    assert_eq!(slot.get_uniform(), Some(3));
}

#[test]
fn two_sets_vs_get_reader_retries() {
    model_both_orders(two_sets_vs_get);
}

// ---------------------------------------------------------------------------------------
// set vs set.

/// Two sets racing on one wide element: the second waits for the first's claim, so both
/// versions are published and the element ends as one of the two values, untorn.
fn two_sets_race(a: OwnerId, b: OwnerId) {
    let slot = Slot::ready(2, 1, None, 0);
    let (first, second) = (Arc::clone(&slot), Arc::clone(&slot));
    let spawned = thread::spawn(move || first.set(2, a));
    assert!(second.set(3, b));
    assert!(spawned.join().unwrap());
    assert_eq!(slot.state(), state(READY, 2, None), "a set was lost");
    let last = slot.get_uniform().expect("READY");
    assert!(matches!(last, 2 | 3), "ended as {last}");
}

/// Two threads of one process (one owner id): the writer field cannot tell them apart, so
/// the second must wait rather than take the claim as its own.
#[test]
fn two_sets_race_same_owner() {
    model(|| two_sets_race(live(1), live(1)));
}

#[test]
fn two_sets_race_different_owners() {
    model(|| two_sets_race(live(1), live(2)));
}

// ---------------------------------------------------------------------------------------
// Deaths.

/// A setter died after claiming the slot and writing garbage into the spare copy: the next
/// set takes its claim over, and a reader racing it sees the old or the new element, never
/// the garbage.
fn set_takes_over_dead_writer(swap: bool) {
    let slot = Slot::new(
        2,
        state(READY, 0, Some(dead(3))),
        &[1, 1, GARBAGE, 7], // copy 0 = old element, copy 1 = a half-written one
    );
    let (setter, reader) = (Arc::clone(&slot), Arc::clone(&slot));
    let (set, seen) = pair(
        swap,
        move || setter.set(2, live(1)),
        move || reader.get_uniform(),
    );
    assert!(set, "the dead writer's claim was not taken over");
    let seen = seen.expect("READY");
    assert!(matches!(seen, 1 | 2), "read {seen:#x}");
    assert_eq!(slot.state(), state(READY, 1, None));
    assert_eq!(slot.get_uniform(), Some(2));
}

#[test]
fn set_takes_over_dead_writer_readers_never_see_garbage() {
    model_both_orders(set_takes_over_dead_writer);
}

/// A push whose process died before publishing leaves PUSHING(dead); two readers race to
/// bury it: both report no element, and the slot ends a HOLE (the loser's compare-exchange
/// fails rather than writing over anything).
#[test]
fn dead_pusher_becomes_hole_once() {
    model(|| {
        let slot = Slot::new(
            2,
            state(PUSHING, 0, Some(dead(3))),
            &[GARBAGE, 0, GARBAGE, 0],
        );
        let (a, b) = (Arc::clone(&slot), Arc::clone(&slot));
        let spawned = thread::spawn(move || a.get());
        assert_eq!(b.get(), None);
        assert_eq!(spawned.join().unwrap(), None);
        assert_eq!(slot.state(), state(HOLE, 0, None));
        assert_eq!(slot.get(), None);
    });
}

/// A reader and a setter both meet a dead pusher: neither sees or writes an element, and
/// the slot ends a HOLE.
#[test]
fn dead_pusher_vs_set_becomes_hole() {
    model(|| {
        let slot = Slot::new(
            2,
            state(PUSHING, 0, Some(dead(3))),
            &[GARBAGE, 0, GARBAGE, 0],
        );
        let (setter, reader) = (Arc::clone(&slot), Arc::clone(&slot));
        let spawned = thread::spawn(move || setter.set(2, live(1)));
        assert_eq!(reader.get(), None);
        assert!(!spawned.join().unwrap(), "a set wrote into a hole");
        assert_eq!(slot.state(), state(HOLE, 0, None));
    });
}

// ---------------------------------------------------------------------------------------
// One-word elements.

/// One-word elements: two sets and a reader reading twice: every read is a value the
/// element held, and reads never go back in time.
fn one_word_set_vs_get(swap: bool) {
    let slot = Slot::ready(1, 1, None, 0);
    let (setter, reader) = (Arc::clone(&slot), Arc::clone(&slot));
    let ((), (first, second)) = pair(
        swap,
        move || {
            assert!(setter.set(2, live(1)));
            assert!(setter.set(3, live(1)));
        },
        move || (reader.get_uniform(), reader.get_uniform()),
    );
    let (first, second) = (first.expect("READY"), second.expect("READY"));
    assert!(matches!(first, 1..=3), "read {first}");
    assert!(second >= first, "read {first} then the older {second}");
    // One-word sets do not move the version.
    assert_eq!(slot.state(), state(READY, 0, None));
    assert_eq!(slot.get_uniform(), Some(3));
}

#[test]
fn one_word_set_vs_get_atomic() {
    model_both_orders(one_word_set_vs_get);
}

/// Two sets racing (different owners) while a reader reads: the reader gets one of the
/// three values, untorn, whichever set's copy it lands on.
#[test]
fn two_sets_race_vs_get() {
    model(|| {
        let slot = Slot::ready(2, 1, None, 0);
        let (a, b, reader) = (Arc::clone(&slot), Arc::clone(&slot), Arc::clone(&slot));
        let first = thread::spawn(move || a.set(2, live(1)));
        let second = thread::spawn(move || b.set(3, live(2)));
        let seen = reader.get_uniform().expect("READY");
        assert!(first.join().unwrap() && second.join().unwrap());
        assert!(matches!(seen, 1..=3), "read {seen}");
        assert_eq!(slot.state(), state(READY, 2, None), "a set was lost");
    });
}

/// Two setters find the same dead writer's claim: one takes it over, the other waits for
/// it; both versions are published and the garbage never becomes the element.
#[test]
fn two_sets_take_over_dead_writer() {
    model(|| {
        let slot = Slot::new(2, state(READY, 0, Some(dead(3))), &[1, 1, GARBAGE, 7]);
        let (a, b) = (Arc::clone(&slot), Arc::clone(&slot));
        let spawned = thread::spawn(move || a.set(2, live(1)));
        assert!(b.set(3, live(2)));
        assert!(spawned.join().unwrap());
        assert_eq!(slot.state(), state(READY, 2, None), "a set was lost");
        let last = slot.get_uniform().expect("READY");
        assert!(matches!(last, 2 | 3), "ended as {last:#x}");
    });
}
