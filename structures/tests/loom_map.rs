//! Loom models of the shipping hash map core, `RawMap` (insert, settle, remove, get,
//! updates, and the recovery of dead inserters and writers), over loom atomics: each
//! slot's (state, value) pair is loom's model of a 128-bit atomic (`AtomicPair` under
//! `cfg(loom)`), keys and wide values are loom `AtomicU64`s. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom cargo test --release -p shmarena --test loom_map`.
//!
//! Tables have one or two slots, so that removal and reuse of a slot by another key, and
//! two copies of one key racing for uniqueness, happen in few steps. Wide values are
//! written with every word equal, so a torn read shows as unequal words.
//!
//! State words are built from the layout in `hash_map/mod.rs` (defined in `layout.rs`)
//! (`kind | bound << 3 | tag << 15 | version << 30`), so the models fail if it drifts.

#![cfg(loom)]

mod loom_owners;
#[path = "../../engine/tests/loom_support/mod.rs"]
mod loom_support;
mod loom_table;

use loom::thread;
use loom_owners::{dead, Mock};
use loom_support::{model, model_both_orders, pair};
use loom_table::{table, Table};
use shmarena::hash_map::{RawMap, Slots, Updated};

const BUSY: u64 = 1;
const INSERTING: u64 = 2;
const MEMBER: u64 = 3;
const DELETED: u64 = 4;
const REMOVING: u64 = 6;

const SEED: u64 = 7;

fn map(table: &Table, value_words: usize) -> RawMap<Table> {
    RawMap::new(table.clone(), 1, value_words, SEED)
}

/// The state word of a slot holding `key` (home `0` of a one-slot table, so bound 1).
fn state_of(raw: &RawMap<Table>, kind: u64, key: u64, version: u64) -> u64 {
    kind | 1 << 3 | (raw.hash(&[key]) >> 52) << 15 | version << 30
}

/// Sets the pair of `slot` from `from` to `to`, as a process the model plays dead did.
fn replace_pair(table: &Table, slot: u64, from: [u64; 2], to: [u64; 2]) {
    let order = loom::sync::atomic::Ordering::SeqCst;
    table
        .pair(slot)
        .compare_exchange(from, to, order, order)
        .unwrap();
}

/// Writes the hint byte of `slot`, as an inserter does before it publishes.
fn set_hint(table: &Table, slot: u64, byte: u64) {
    table.hints(slot / 8).fetch_or(
        byte << (8 * (slot % 8)),
        loom::sync::atomic::Ordering::SeqCst,
    );
}

fn me(slot: u32) -> Mock {
    Mock::slot(slot)
}

fn get(raw: &RawMap<Table>, key: u64) -> Option<u64> {
    let mut out = [0];
    raw.get(&[key], &mut out).unwrap().then_some(out[0])
}

/// A process that looks key 8 up twice in `table` (one-word values): what it saw.
fn read_key_8_twice(table: &Table) -> thread::JoinHandle<(Option<u64>, Option<u64>)> {
    let table = table.clone();
    thread::spawn(move || {
        let raw = map(&table, 1);
        (get(&raw, 8), get(&raw, 8))
    })
}

/// Two processes insert the same absent key at once: one entry, one "fresh" insert.
#[test]
fn same_key_inserts_leave_one_entry() {
    model(|| {
        let table = table(2, 1);
        let raw = map(&table, 1);
        let t = table.clone();
        let other = thread::spawn(move || {
            let mut old = [0];
            map(&t, 1)
                .insert(&[5], &[20], false, &mut old, &me(2))
                .unwrap()
        });
        let mut old = [0];
        let mine = raw.insert(&[5], &[10], false, &mut old, &me(1)).unwrap();
        let theirs = other.join().unwrap();
        assert!(
            mine ^ theirs,
            "exactly one insert is fresh ({mine}, {theirs})"
        );
        let value = get(&raw, 5).unwrap();
        assert_eq!(value, if mine { 20 } else { 10 });
        assert_eq!(raw.census()[0], 1, "one member");
        assert_eq!(raw.len(), 1);
    });
}

/// Two upserts of one key: both land in order; the second returns the first's value.
#[test]
fn same_key_upserts_serialize() {
    model(|| {
        let table = table(2, 1);
        let raw = map(&table, 1);
        let t = table.clone();
        let other = thread::spawn(move || {
            let mut old = [0];
            let had = map(&t, 1)
                .insert(&[5], &[20], true, &mut old, &me(2))
                .unwrap();
            had.then_some(old[0])
        });
        let mut old = [0];
        let mine = raw
            .insert(&[5], &[10], true, &mut old, &me(1))
            .unwrap()
            .then_some(old[0]);
        let theirs = other.join().unwrap();
        let last = get(&raw, 5).unwrap();
        match (mine, theirs) {
            (None, Some(10)) => assert_eq!(last, 20),
            (Some(20), None) => assert_eq!(last, 10),
            other => panic!("not a serial order: {other:?}"),
        }
        assert_eq!(raw.census()[0], 1);
    });
}

/// insert against get and remove of the same key.
#[test]
fn insert_remove_get() {
    model_both_orders(|swap| {
        let table = table(1, 1);
        let raw = map(&table, 1);
        let (a, b) = (table.clone(), table.clone());
        let (inserted, (seen, removed)) = pair(
            swap,
            move || {
                let mut old = [0];
                map(&a, 1)
                    .insert(&[3], &[30], true, &mut old, &me(1))
                    .unwrap()
            },
            move || {
                let raw = map(&b, 1);
                let seen = get(&raw, 3);
                let mut old = [0];
                let removed = raw
                    .remove(&[3], &mut old, &me(2))
                    .unwrap()
                    .then_some(old[0]);
                (seen, removed)
            },
        );
        assert!(!inserted);
        assert!(seen.is_none() || seen == Some(30));
        assert!(removed.is_none() || removed == Some(30));
        // Present at the end exactly when the remove missed it.
        assert_eq!(get(&raw, 3).is_some(), removed.is_none());
        assert_eq!(raw.len(), u64::from(removed.is_none()));
    });
}

/// The smallest key above 1 whose tag equals key 1's: two keys a reader can tell apart
/// only by their key words and the slot's version.
fn same_tag_key() -> u64 {
    let tag = |key: u64| shmarena::hash_map::hash_key(&[key], SEED) >> 52;
    (2..1 << 24).find(|&key| tag(key) == tag(1)).unwrap()
}

/// A slot removed and reused by another key (with the same tag) while a reader looks up
/// both keys: the reader never gets one key's value for the other.
#[test]
fn reused_slot_never_leaks_another_keys_value() {
    let other = same_tag_key();
    model_both_orders(move |swap| {
        let table = table(1, 1);
        let raw = map(&table, 1);
        let mut old = [0];
        assert!(!raw.insert(&[1], &[100], true, &mut old, &me(1)).unwrap());
        let (a, b) = (table.clone(), table.clone());
        let ((), (first, second)) = pair(
            swap,
            move || {
                let raw = map(&a, 1);
                let mut old = [0];
                assert!(raw.remove(&[1], &mut old, &me(1)).unwrap());
                assert!(!raw
                    .insert(&[other], &[200], true, &mut old, &me(1))
                    .unwrap());
            },
            move || {
                let raw = map(&b, 1);
                (get(&raw, other), get(&raw, 1))
            },
        );
        assert!(
            first.is_none() || first == Some(200),
            "new key read {first:?}"
        );
        assert!(
            second.is_none() || second == Some(100),
            "old key read {second:?}"
        );
    });
}

/// A wide value updated while another process reads it: never torn.
#[test]
fn wide_update_is_never_read_torn() {
    model_both_orders(|swap| {
        let table = table(1, 2);
        let raw = map(&table, 2);
        let mut old = [0, 0];
        raw.insert(&[4], &[1, 1], true, &mut old, &me(1)).unwrap();
        let (a, b) = (table.clone(), table.clone());
        let ((), reads) = pair(
            swap,
            move || {
                let raw = map(&a, 2);
                let mut old = [0, 0];
                raw.insert(&[4], &[2, 2], true, &mut old, &me(1)).unwrap();
                assert_eq!(old, [1, 1]);
                raw.insert(&[4], &[3, 3], true, &mut old, &me(1)).unwrap();
                assert_eq!(old, [2, 2]);
            },
            move || {
                let raw = map(&b, 2);
                let mut out = [0, 0];
                assert!(raw.get(&[4], &mut out).unwrap());
                out
            },
        );
        assert_eq!(reads[0], reads[1], "torn read {reads:?}");
        assert!((1..=3).contains(&reads[0]));
    });
}

/// A wide read whose copy is rewritten under it (by the second writer after it, which
/// writes that copy again), followed by the key's removal and its insertion again in the
/// same slot: the reader's validation must not take the new incarnation's first copy
/// version for the one it read. The writers' steps are played on the table directly,
/// as they leave it, so that the model reaches the reader's re-read in few steps.
#[test]
fn wide_read_across_a_rewrite_and_a_reinsert_is_never_torn() {
    model_both_orders(|swap| {
        let (table, _) = wide_key_and_its_next_copy();
        let order = loom::sync::atomic::Ordering::SeqCst;
        let (a, b) = (table.clone(), table.clone());
        let ((), read) = pair(
            swap,
            move || {
                let raw = map(&a, 2);
                let state = state_of(&raw, MEMBER, 4, 1);
                let writer = u64::from(loom_owners::live(2).bits()) << 32;
                // Copy 0 was current; the first writer published copy 1, and a second
                // one takes the field at copy version 1 and rewrites copy 0 (data words
                // 1 and 2), then publishes version 2.
                replace_pair(&a, 0, [state, 0], [state, writer | 1]);
                a.data(0)[1].store(3, order);
                a.data(0)[2].store(3, order);
                replace_pair(&a, 0, [state, writer | 1], [state, 2]);
                let mut old = [0, 0];
                assert!(raw.remove(&[4], &mut old, &me(2)).unwrap());
                assert_eq!(old, [3, 3]);
                raw.insert(&[4], &[5, 5], true, &mut old, &me(2)).unwrap();
            },
            move || {
                let raw = map(&b, 2);
                let mut out = [0, 0];
                raw.get(&[4], &mut out).unwrap().then_some(out)
            },
        );
        if let Some(out) = read {
            assert_eq!(out[0], out[1], "torn read {out:?}");
            assert!([1, 2, 3, 5].contains(&out[0]), "never stored: {out:?}");
        }
    });
}

/// A writer dies while rewriting the copy a slow reader is reading (the reader's version
/// is the one before the writer's), and the next writer takes its field over but
/// declines to change the value: the reader must not be told its copy is whole.
#[test]
fn a_declined_takeover_never_lets_a_torn_copy_through() {
    takeover_of_a_half_written_copy(|raw| {
        let mut old = [0, 0];
        let declined = raw
            .update(&[4], &mut old, &me(2), |_: &[u64], _: &mut [u64]| false)
            .unwrap();
        assert_eq!(declined, Updated::Declined);
        assert_eq!(old, [2, 2]);
    });
}

/// As `a_declined_takeover_never_lets_a_torn_copy_through`, but the taker's closure
/// panics: the field it gives back while unwinding must not tell the reader either.
#[test]
fn a_panicking_takeover_never_lets_a_torn_copy_through() {
    takeover_of_a_half_written_copy(|raw| {
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut old = [0, 0];
            let _ = raw.update(&[4], &mut old, &me(2), |_: &[u64], _: &mut [u64]| {
                panic!("the closure fails")
            });
        }));
        assert!(unwound.is_err());
    });
}

/// Key 4 holds [1, 1] at copy version 0 and a reader reads it, while one writer publishes
/// [2, 2] as version 1, the next takes the field at version 1, writes the first word of
/// the copy the reader reads and dies, and `taker` (a third writer, which takes the dead
/// one's field over) runs: the reader reads a value whole, and the key ends at [2, 2].
fn takeover_of_a_half_written_copy(taker: fn(&RawMap<Table>)) {
    model_both_orders(move |swap| {
        let (table, raw) = wide_key_and_its_next_copy();
        let order = loom::sync::atomic::Ordering::SeqCst;
        let (a, b) = (table.clone(), table.clone());
        let ((), read) = pair(
            swap,
            move || {
                let raw = map(&a, 2);
                let state = state_of(&raw, MEMBER, 4, 1);
                let dead_writer = u64::from(dead(3).bits()) << 32;
                replace_pair(&a, 0, [state, 0], [state, 1]);
                replace_pair(&a, 0, [state, 1], [state, dead_writer | 1]);
                a.data(0)[1].store(7, order);
                taker(&raw);
            },
            move || {
                let raw = map(&b, 2);
                let mut out = [0, 0];
                assert!(raw.get(&[4], &mut out).unwrap());
                out
            },
        );
        assert_eq!(read[0], read[1], "torn read {read:?}");
        assert!([1, 2].contains(&read[0]), "never stored: {read:?}");
        assert_eq!(get_wide(&raw, 4), Some([2, 2]));
    });
}

/// A one-slot table of two-word values where key 4 holds [1, 1] (copy 0, copy version 0)
/// and copy 1 (data words 3 and 4) holds [2, 2]: what the first writer after it writes,
/// before it publishes copy version 1 (which the models then play).
fn wide_key_and_its_next_copy() -> (Table, RawMap<Table>) {
    let table = table(1, 2);
    let raw = map(&table, 2);
    let mut old = [0, 0];
    raw.insert(&[4], &[1, 1], true, &mut old, &me(1)).unwrap();
    let order = loom::sync::atomic::Ordering::SeqCst;
    table.data(0)[3].store(2, order);
    table.data(0)[4].store(2, order);
    (table, raw)
}

fn get_wide(raw: &RawMap<Table>, key: u64) -> Option<[u64; 2]> {
    let mut out = [0, 0];
    raw.get(&[key], &mut out).unwrap().then_some(out)
}

/// Two processes add to one key's value: no update is lost.
#[test]
fn fetch_adds_do_not_lose_updates() {
    model(|| {
        let table = table(1, 1);
        let raw = map(&table, 1);
        let mut old = [0];
        raw.insert(&[9], &[0], true, &mut old, &me(1)).unwrap();
        let add = |raw: &RawMap<Table>, who: u32| {
            let mut old = [0];
            let outcome = raw
                .update(
                    &[9],
                    &mut old,
                    &me(who),
                    |current: &[u64], new: &mut [u64]| {
                        new[0] = current[0] + 1;
                        true
                    },
                )
                .unwrap();
            assert_eq!(outcome, Updated::Done);
            old[0]
        };
        let t = table.clone();
        let other = thread::spawn(move || add(&map(&t, 1), 2));
        let mine = add(&raw, 1);
        let theirs = other.join().unwrap();
        assert_eq!(mine + theirs, 1, "the two saw 0 and 1");
        assert_eq!(get(&raw, 9), Some(2));
    });
}

/// A dead inserter's BUSY slot is freed for an insert that needs room, while another
/// process looks the key up.
#[test]
fn dead_inserters_slot_is_recovered() {
    model(|| {
        let table = table(1, 1);
        let raw = map(&table, 1);
        let dead_owner = u64::from(dead(3).bits());
        set_hint(&table, 0, 0x01);
        replace_pair(&table, 0, [0, 0], [BUSY | 1 << 30, dead_owner]);
        let t = table.clone();
        let reader = thread::spawn(move || get(&map(&t, 1), 6));
        let mut old = [0];
        assert!(!raw.insert(&[6], &[60], true, &mut old, &me(1)).unwrap());
        let seen = reader.join().unwrap();
        assert!(seen.is_none() || seen == Some(60));
        assert_eq!(get(&raw, 6), Some(60));
    });
}

/// A two-slot table holding key 8 with value 80 as a copy a dead process left INSERTING.
fn abandoned_copy() -> (Table, RawMap<Table>) {
    let table = table(2, 1);
    let raw = map(&table, 1);
    let home = raw.hash(&[8]) & 1;
    table.data(home)[0].store(8, loom::sync::atomic::Ordering::SeqCst);
    // The copy's value waits in the staging word; word 1 names its (dead) inserter.
    table.data(home)[1].store(80, loom::sync::atomic::Ordering::SeqCst);
    let inserting = state_of(&raw, INSERTING, 8, 1);
    set_hint(&table, home, 0x80 | raw.hash(&[8]) >> 57);
    replace_pair(&table, home, [0, 0], [inserting, u64::from(dead(3).bits())]);
    (table, raw)
}

/// A copy left INSERTING by a dead process is settled by the next insert of its key (it
/// wins: it was written completely) while another process reads. The reader never sees the
/// key absent: it settles the copy itself (a dead insert is done, or never).
#[test]
fn abandoned_copy_is_settled_by_the_next_insert() {
    model(|| {
        let (table, raw) = abandoned_copy();
        let t = table.clone();
        let reader = thread::spawn(move || get(&map(&t, 1), 8));
        let mut old = [0];
        assert!(raw.insert(&[8], &[81], false, &mut old, &me(1)).unwrap());
        assert_eq!(old, [80]);
        let seen = reader.join().unwrap();
        assert_eq!(seen, Some(80), "the reader saw the dead insert not done");
        assert_eq!(get(&raw, 8), Some(80));
        assert_eq!(raw.census()[..2], [1, 0], "one member, nothing inserting");
    });
}

/// A copy left INSERTING by a dead process, then two live processes: one removes the key,
/// one reads it. Whatever the interleaving, the key is never seen absent and then present:
/// the reader sees the dead insert done (80) unless the remove came first, and after both
/// the key is absent for good.
#[test]
fn abandoned_copy_is_never_seen_absent_then_present() {
    model(|| {
        let (table, raw) = abandoned_copy();
        let reader = read_key_8_twice(&table);
        let mut old = [0];
        let removed = raw.remove(&[8], &mut old, &me(1)).unwrap();
        assert!(removed, "the remove saw the dead insert not done");
        assert_eq!(old, [80]);
        let (first, second) = reader.join().unwrap();
        assert!(
            !(first.is_none() && second.is_some()),
            "absent, then present: {first:?} {second:?}"
        );
        for seen in [first, second] {
            assert!(seen.is_none() || seen == Some(80), "{seen:?}");
        }
        assert_eq!(get(&raw, 8), None);
        assert_eq!(raw.census()[..2], [0, 0], "nothing left pending");
    });
}

/// A two-slot table holding key 8 as a member (value 1, in its home slot, whose bound is 2)
/// and, one slot further, a copy of key 8 (value 2) that a dead process published while
/// the member existed: its insert came too late and must never take effect. With
/// `removing`, the member's remover died after its removal took effect.
fn copy_behind_a_member(removing: bool) -> (Table, RawMap<Table>) {
    let table = table(2, 1);
    let raw = map(&table, 1);
    let hash = raw.hash(&[8]);
    let (home, next) = (hash & 1, (hash + 1) & 1);
    let tag = (hash >> 52) << 15;
    let hint = 0x80 | hash >> 57;
    for (slot, value) in [(home, 1), (next, 2)] {
        table.data(slot)[0].store(8, loom::sync::atomic::Ordering::SeqCst);
        table.data(slot)[1].store(value, loom::sync::atomic::Ordering::SeqCst);
        set_hint(&table, slot, hint);
    }
    let kind = if removing { REMOVING } else { MEMBER };
    replace_pair(&table, home, [0, 0], [kind | 2 << 3 | tag | 1 << 30, 1]);
    replace_pair(
        &table,
        next,
        [0, 0],
        [INSERTING | tag | 1 << 30, u64::from(dead(3).bits())],
    );
    table
        .counter(0)
        .store(u64::from(!removing), loom::sync::atomic::Ordering::SeqCst);
    (table, raw)
}

/// A dead process's copy that came after the member of its key loses when that member is
/// removed: the remove returns the member's value and, whatever a concurrent reader does,
/// the key is never seen again (the late copy never lands after its inserter's death).
#[test]
fn copy_behind_a_member_never_lands_after_the_remove() {
    model(|| {
        let (table, raw) = copy_behind_a_member(false);
        let reader = read_key_8_twice(&table);
        let mut old = [0];
        assert!(raw.remove(&[8], &mut old, &me(1)).unwrap());
        assert_eq!(old, [1]);
        let (first, second) = reader.join().unwrap();
        for seen in [first, second] {
            assert!(
                seen.is_none() || seen == Some(1),
                "the dead copy landed: {seen:?}"
            );
        }
        assert!(
            !(first.is_none() && second.is_some()),
            "{first:?} {second:?}"
        );
        assert_eq!(get(&raw, 8), None, "the dead copy landed after the remove");
        assert_eq!(raw.census()[..2], [0, 0], "nothing left pending");
        assert_eq!(raw.len(), 0);
    });
}

/// The remover of key 8 died after its removal took effect (the slot left `REMOVING`),
/// with a dead process's late copy of key 8 behind it: a live insert and a live reader
/// finish the removal; the late copy never lands, the live insert does.
#[test]
fn dead_removers_removal_is_finished_by_the_next_operation() {
    model(|| {
        let (table, raw) = copy_behind_a_member(true);
        let t = table.clone();
        let reader = thread::spawn(move || get(&map(&t, 1), 8));
        let mut old = [0];
        let existed = raw.insert(&[8], &[3], false, &mut old, &me(1)).unwrap();
        assert!(!existed, "the insert found {old:?}");
        let seen = reader.join().unwrap();
        assert!(seen.is_none() || seen == Some(3), "the reader saw {seen:?}");
        assert_eq!(get(&raw, 8), Some(3));
        assert_eq!(raw.census()[..2], [1, 0], "one member, nothing pending");
        assert_eq!(raw.len(), 1);
    });
}

/// A key removed and inserted again while another process inserts it: the re-insert's
/// first look meets the key's own slot `DELETED` (a removal keeps the hint) and claims at
/// once. Every outcome is one of the three serial orders, with one member at the end.
#[test]
fn a_removed_key_inserted_again_against_a_racing_insert() {
    model(|| {
        let table = table(2, 1);
        let raw = map(&table, 1);
        let mut old = [0];
        assert!(!raw.insert(&[5], &[10], true, &mut old, &me(1)).unwrap());
        let t = table.clone();
        let other = thread::spawn(move || {
            let mut old = [0];
            let had = map(&t, 1)
                .insert(&[5], &[30], true, &mut old, &me(2))
                .unwrap();
            had.then_some(old[0])
        });
        let mut old = [0];
        let removed = raw
            .remove(&[5], &mut old, &me(1))
            .unwrap()
            .then_some(old[0]);
        let mut old = [0];
        let replaced = raw
            .insert(&[5], &[20], true, &mut old, &me(1))
            .unwrap()
            .then_some(old[0]);
        let theirs = other.join().unwrap();
        let last = get(&raw, 5);
        match (theirs, removed, replaced, last) {
            // Theirs first, then the removal and the re-insert.
            (Some(10), Some(30), None, Some(20))
            // Theirs between the removal and the re-insert.
            | (None, Some(10), Some(30), Some(20))
            // Theirs last.
            | (Some(20), Some(10), None, Some(30)) => {}
            other => panic!("not a serial order: {other:?}"),
        }
        assert_eq!(raw.census()[..2], [1, 0], "one member, nothing pending");
        assert_eq!(raw.len(), 1);
    });
}

/// Key 8's home slot is `DELETED` with the key's hint (an earlier copy of it, removed)
/// and the key a member one slot further: an insert's first look meets the `DELETED` slot
/// and claims it at once. The settle finds the member, the copy loses, and the insert
/// replaces the member's value: never a second member, and a reader never finds the key
/// absent or its value going back.
#[test]
fn an_insert_that_claims_before_a_member_further_on_replaces_it() {
    model(|| {
        let table = table(2, 1);
        let raw = map(&table, 1);
        let hash = raw.hash(&[8]);
        let (home, next) = (hash & 1, (hash + 1) & 1);
        let tag = (hash >> 52) << 15;
        for slot in [home, next] {
            table.data(slot)[0].store(8, loom::sync::atomic::Ordering::SeqCst);
            set_hint(&table, slot, 0x80 | hash >> 57);
        }
        replace_pair(&table, home, [0, 0], [DELETED | 2 << 3 | tag | 1 << 30, 0]);
        replace_pair(&table, next, [0, 0], [MEMBER | tag | 1 << 30, 1]);
        table
            .counter(0)
            .store(1, loom::sync::atomic::Ordering::SeqCst);
        let reader = read_key_8_twice(&table);
        let mut old = [0];
        assert!(raw.insert(&[8], &[2], true, &mut old, &me(1)).unwrap());
        assert_eq!(old, [1], "the member's value was replaced");
        let (first, second) = reader.join().unwrap();
        assert!(
            matches!(
                (first, second),
                (Some(1), Some(1)) | (Some(1), Some(2)) | (Some(2), Some(2))
            ),
            "the reader saw {first:?} then {second:?}"
        );
        assert_eq!(get(&raw, 8), Some(2));
        assert_eq!(raw.census()[..2], [1, 0], "one member, nothing pending");
        assert_eq!(raw.len(), 1);
    });
}

/// A wide-value writer died holding the writer field: the next writer takes over, a
/// reader meanwhile sees the old value whole.
#[test]
fn dead_wide_writer_is_taken_over() {
    model(|| {
        let table = table(1, 2);
        let raw = map(&table, 2);
        let mut old = [0, 0];
        raw.insert(&[4], &[1, 1], true, &mut old, &me(1)).unwrap();
        // The dead writer had taken the writer field and scribbled over the spare copy.
        let seen = table.pair(0).load(loom::sync::atomic::Ordering::SeqCst);
        assert_eq!(seen[0] & 7, MEMBER);
        replace_pair(&table, 0, seen, [seen[0], u64::from(dead(3).bits()) << 32]);
        table.data(0)[3].store(0xBAD, loom::sync::atomic::Ordering::SeqCst);
        let t = table.clone();
        let reader = thread::spawn(move || {
            let mut out = [0, 0];
            assert!(map(&t, 2).get(&[4], &mut out).unwrap());
            out
        });
        raw.insert(&[4], &[2, 2], true, &mut old, &me(1)).unwrap();
        assert_eq!(old, [1, 1]);
        let read = reader.join().unwrap();
        assert!(read == [1, 1] || read == [2, 2], "read {read:?}");
        let mut out = [0, 0];
        assert!(raw.get(&[4], &mut out).unwrap());
        assert_eq!(out, [2, 2]);
    });
}

/// A table of 64 slots (lookups read hint bytes 8 at a time, and the home's bound after
/// the first 16) whose slots `home + 1 .. home + 16` hold members of other keys, with
/// another hint than key 8's; `home` is left to the caller. Returns the table, its map,
/// key 8's home, its tag's state bits and its hint byte.
fn crowded_home() -> (Table, RawMap<Table>, u64, u64, u64) {
    let table = table(64, 1);
    let raw = map(&table, 1);
    let hash = raw.hash(&[8]);
    let home = hash & 63;
    let tag = hash >> 52;
    let other = tag ^ 0x800; // another hint (its top bit differs)
    for displacement in 1..16 {
        let slot = (home + displacement) & 63;
        table.data(slot)[0].store(1000 + displacement, loom::sync::atomic::Ordering::SeqCst);
        set_hint(&table, slot, 0x80 | other >> 5);
        replace_pair(&table, slot, [0, 0], [MEMBER | other << 15 | 1 << 30, 0]);
    }
    (table, raw, home, tag << 15, 0x80 | tag >> 5)
}

/// Key 8's first 16 slots are all claimed by other keys (a long-lived table has no
/// never-claimed slot left there) and its bound is 1: an insert of key 8 lands 16 slots
/// further and raises the bound first. A reader's first look reads the bound after those
/// slots and answers "absent" only while it does not reach the key: it never misses the
/// key once it was seen, nor after the insert returned. The key in the home has another
/// hint than key 8 (the first look reads the next group), or the same hint and another
/// tag (it passes the home's slot).
#[test]
fn a_lookup_that_ends_at_the_homes_bound_never_misses_a_key_beyond_it() {
    for same_hint in [false, true] {
        model(move || lookup_against_an_insert_beyond_the_group(same_hint));
    }
}

fn lookup_against_an_insert_beyond_the_group(same_hint: bool) {
    let (table, raw, home, tag, _) = crowded_home();
    // The home holds another key, homed there (bound 1).
    let other = if same_hint {
        tag ^ 1 << 15
    } else {
        tag ^ 0x800 << 15
    };
    table.data(home)[0].store(1000, loom::sync::atomic::Ordering::SeqCst);
    set_hint(&table, home, 0x80 | other >> 20);
    replace_pair(&table, home, [0, 0], [MEMBER | 1 << 3 | other | 1 << 30, 0]);
    table
        .counter(0)
        .store(16, loom::sync::atomic::Ordering::SeqCst);
    let reader = read_key_8_twice(&table);
    let mut old = [0];
    assert!(!raw.insert(&[8], &[1], true, &mut old, &me(1)).unwrap());
    let (first, second) = reader.join().unwrap();
    assert!(
        matches!(
            (first, second),
            (None, None) | (None, Some(1)) | (Some(1), Some(1))
        ),
        "the reader saw {first:?} then {second:?}"
    );
    assert_eq!(get(&raw, 8), Some(1));
    assert_eq!(raw.census()[..2], [17, 0], "17 members, nothing pending");
    assert_eq!(raw.len(), 17);
}

/// Key 8 is a member in its home, and the 15 slots after it are claimed by other keys
/// (bound 1). One process removes key 8 and inserts it again while another looks it up
/// twice: a first look that finds the home `DELETED` (or claimed again, not yet
/// published) passes it and answers "absent" at the bound, and the reader's two answers
/// are in the writer's order.
#[test]
fn a_lookup_that_passes_a_removed_home_answers_in_order() {
    model(|| {
        let (table, raw, home, tag, hint) = crowded_home();
        table.data(home)[0].store(8, loom::sync::atomic::Ordering::SeqCst);
        set_hint(&table, home, hint);
        replace_pair(&table, home, [0, 0], [MEMBER | 1 << 3 | tag | 1 << 30, 1]);
        table
            .counter(0)
            .store(16, loom::sync::atomic::Ordering::SeqCst);
        let reader = read_key_8_twice(&table);
        let mut old = [0];
        assert!(raw.remove(&[8], &mut old, &me(1)).unwrap());
        assert!(!raw.insert(&[8], &[2], true, &mut old, &me(1)).unwrap());
        let (first, second) = reader.join().unwrap();
        let order = |value: Option<u64>| match value {
            Some(1) => 0,
            None => 1,
            Some(2) => 2,
            other => panic!("the reader saw {other:?}"),
        };
        assert!(
            order(first) <= order(second),
            "the reader saw {first:?} then {second:?}"
        );
        assert_eq!(get(&raw, 8), Some(2));
        assert_eq!(raw.census()[..2], [16, 0], "16 members, nothing pending");
        assert_eq!(raw.len(), 16);
    });
}
