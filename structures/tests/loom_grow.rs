//! Loom models of the shipping growth of the hash map, `GrowingMap` over loom tables: a
//! migration racing a reader, a writer and a second mover; a dead mover's copy published
//! by others, one it never committed taken over, and one committed while it is taken over;
//! an insert that claimed a slot in a table being frozen; a dead mover's chunk taken over;
//! racing growers making one table, and a dead grower's claim taken over with the blocks
//! it recorded given back; a dead maker's records given back once under a racing
//! give-back, and under a racing participant sweep;
//! lookups and an update through a handle's guess of a table that is retired and reused
//! meanwhile. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom cargo test --release -p shmarena --test loom_grow`.
//!
//! The first table has one or two slots and the next one twice that, so that growth,
//! freezing, copying, committing and publishing all happen in a few steps. Tables are made
//! ahead (a model cannot allocate shared memory inside `make` deterministically otherwise):
//! `make` hands out the next one. A retired table is reused (zeroed, as an allocation of
//! its memory would leave it) as soon as the model's grace period allows: when every pin
//! has dropped.

#![cfg(loom)]

mod loom_owners;
#[path = "../../engine/tests/loom_support/mod.rs"]
mod loom_support;
mod loom_table;

use loom::sync::atomic::{fence, AtomicU64, Ordering};
use loom::sync::Arc;
use loom_owners::{dead, Mock};
use loom_support::{model, model_up_to, pair};
use loom_table::{next_table, table, Table};
use shmarena::engine::Liveness;
use shmarena::hash_map::grow::{give_back_records, made_record, record_made, root_id, GROWING};
use shmarena::hash_map::migrate::{CAPACITY, CURSOR, MADE, NEXT};
use shmarena::hash_map::{header_words, GrowingMap, RawMap, Slots, Tables, Updated};
use shmarena::{OwnerId, Result};
use std::sync::Mutex;

const SEED: u64 = 7;

struct Chain {
    root: AtomicU64,
    made: AtomicU64,
    tables: Vec<Table>,
    /// The model's grace period in one word: pins held by every handle (low half) and a
    /// retired table waiting for them to drain (high half, 0: none), claimed for reuse
    /// by the unpin that drains them, in the same atomic step.
    grace: AtomicU64,
    /// Tables retired, in order.
    retirements: Mutex<Vec<u64>>,
    /// Blocks given back from records of dead makers (see `block_of`), in order.
    given_back: Mutex<Vec<u64>>,
}

/// The offset a model's table block is recorded at: `which` 0 for the slots' block, 1 for
/// the header's (the model's tables are its own, made ahead; a record names one by id).
fn block_of(id: u64, which: u64) -> u64 {
    (2 * id + which) * 64
}

/// A handle on the chain: the tables and this handle's guess.
struct Shared {
    chain: Arc<Chain>,
    /// The root word of the table this handle found at the root last (0: the first).
    guess: std::sync::atomic::AtomicU64,
}

impl Clone for Shared {
    /// A handle of its own, whose guess is the first table (the stalest a handle can
    /// hold), whatever this one guessed.
    fn clone(&self) -> Self {
        Self {
            chain: Arc::clone(&self.chain),
            guess: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// A pin on the model's grace period: a count of pins over every handle; a retired
/// table is reused (scribbled over) when the count drains, as a grace period would let
/// it be. Sound as a grace period: whoever pins after the retirement reads the moved root.
struct ModelPin(Arc<Chain>);

impl Drop for ModelPin {
    fn drop(&mut self) {
        let mut now = self.0.grace.load(Ordering::SeqCst);
        loop {
            // The last pin takes the waiting table with it.
            let next = if now & 0xffff_ffff == 1 { 0 } else { now - 1 };
            match self
                .0
                .grace
                .compare_exchange(now, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(actual) => now = actual,
            }
        }
        if now & 0xffff_ffff == 1 && now >> 32 != 0 {
            reuse(&self.0.tables[(now >> 32) as usize]);
        }
    }
}

/// Overwrites a freed table as a new owner of its memory would: zeros everywhere, after
/// the Release fence the arena's allocation ends with.
fn reuse(table: &Table) {
    fence(Ordering::Release);
    for slot in 0..table.capacity() {
        // Nobody else writes a retired table whose pins drained: one exchange does.
        let seen = table.pair(slot).load(Ordering::Relaxed);
        table
            .pair(slot)
            .compare_exchange(seen, [0, 0], Ordering::Relaxed, Ordering::Relaxed)
            .expect("a retired table written after its pins drained");
        for word in table.data(slot) {
            word.store(0, Ordering::Relaxed);
        }
    }
    for word in 0..table.capacity().div_ceil(8) {
        table.hints(word).store(0, Ordering::Relaxed);
    }
    for word in 0..header_words(table.capacity()) {
        table.header(word).store(0, Ordering::Relaxed);
    }
}

impl Shared {
    /// The next unused table of the chain, of `capacity` slots: its id.
    fn make_table(&self, capacity: u64) -> u64 {
        let id = self.chain.made.fetch_add(1, Ordering::Relaxed) + 1;
        let table = &self.chain.tables[id as usize];
        assert_eq!(table.capacity(), capacity);
        table.header(CAPACITY).store(capacity, Ordering::Relaxed);
        id
    }
}

impl Tables for Shared {
    type Slots = Table;
    type Pin = ModelPin;
    fn root(&self) -> &AtomicU64 {
        &self.chain.root
    }
    fn first(&self) -> Table {
        self.chain.tables[0].clone()
    }
    fn guess(&self) -> Option<(Table, u64)> {
        let root = self.guess.load(std::sync::atomic::Ordering::Relaxed);
        (root != 0).then(|| (self.chain.tables[root_id(root) as usize].clone(), root))
    }
    fn remember(&self, root: u64, _capacity: u64) {
        self.guess.store(root, std::sync::atomic::Ordering::Relaxed);
    }
    fn table(&self, id: u64) -> Result<Table> {
        Ok(self.chain.tables[id as usize].clone())
    }
    fn make(&self, capacity: u64, made: [&AtomicU64; 2], maker: OwnerId) -> Result<u64> {
        let id = self.make_table(capacity);
        record_made(made[0], maker, block_of(id, 0));
        record_made(made[1], maker, block_of(id, 1));
        Ok(id)
    }
    fn discard(&self, _id: u64, _capacity: u64) {}
    fn give_back_made(&self, _capacity: u64, made: [&AtomicU64; 2], liveness: &impl Liveness) {
        give_back_records(made, liveness, |which, offset| {
            assert_eq!(
                offset,
                block_of(offset / 128, which as u64),
                "a block's record"
            );
            let id = offset / 128;
            // A block given back is one no table links and the root does not name.
            let linked = self
                .chain
                .tables
                .iter()
                .any(|table| table.header(NEXT).load(Ordering::SeqCst) == id)
                || root_id(self.chain.root.load(Ordering::SeqCst)) == id;
            assert!(!linked, "table {id}, linked, given back");
            let mut given_back = self.chain.given_back.lock().unwrap();
            assert!(
                !given_back.contains(&offset),
                "block {offset} given back twice"
            );
            given_back.push(offset);
        });
    }
    fn retire(&self, id: u64, _capacity: u64) {
        self.chain.retirements.lock().unwrap().push(id);
        // The retirer is pinned: the table is reused once it and every other pin drop.
        let before = self.chain.grace.fetch_or(id << 32, Ordering::SeqCst);
        assert_eq!(
            before >> 32,
            0,
            "two retirements pending in a model with room for one"
        );
        assert_ne!(before & 0xffff_ffff, 0, "retired unpinned");
    }
    fn pin(&self) -> Result<ModelPin> {
        self.chain.grace.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        Ok(ModelPin(Arc::clone(&self.chain)))
    }
}

/// A chain whose first table has `first` slots, with room for `later` more tables, each
/// twice the one before, of one-word keys and `value_words`-word values.
fn chain(first: usize, later: usize, value_words: usize) -> Shared {
    let mut tables = vec![table(first, value_words)];
    for i in 1..=later {
        tables.push(next_table(&tables[0], first << i, value_words));
    }
    Shared {
        chain: Arc::new(Chain {
            root: AtomicU64::new(0),
            made: AtomicU64::new(0),
            tables,
            grace: AtomicU64::new(0),
            retirements: Mutex::new(Vec::new()),
            given_back: Mutex::new(Vec::new()),
        }),
        guess: std::sync::atomic::AtomicU64::new(0),
    }
}

fn map(chain: &Shared, value_words: usize) -> GrowingMap<Shared> {
    GrowingMap::new(chain.clone(), 1, value_words, SEED)
}

fn me(slot: u32) -> Mock {
    Mock::slot(slot)
}

fn get(map: &GrowingMap<Shared>, key: u64, who: &Mock) -> Option<u64> {
    let mut out = [0];
    map.get(&[key], &mut out, who).unwrap().then_some(out[0])
}

fn insert(map: &GrowingMap<Shared>, key: u64, value: u64, who: &Mock) -> Option<u64> {
    let mut old = [0];
    map.insert(&[key], &[value], true, &mut old, who)
        .unwrap()
        .then_some(old[0])
}

fn fetch_add(map: &GrowingMap<Shared>, key: u64, delta: u64, who: &Mock) -> Option<u64> {
    let mut old = [0];
    match map
        .update(&[key], &mut old, who, |current, new| {
            new[0] = current[0] + delta;
            true
        })
        .unwrap()
    {
        Updated::Done => Some(old[0]),
        _ => None,
    }
}

/// Members of `key` over every table, counting a committed member only through its copy.
fn members(map: &GrowingMap<Shared>) -> Vec<(u64, u64)> {
    let mut walk = map.walk().unwrap();
    let mut found = Vec::new();
    let (mut key, mut value) = ([0], [0]);
    while map.next_entry(&mut walk, &mut key, &mut value).unwrap() {
        found.push((key[0], value[0]));
    }
    found.sort_unstable();
    found
}

/// An insert that grows a full one-slot table races a reader and an updater of the key
/// already there: the reader sees the key (never absent, never another value than one it
/// had), the update lands once, and the new key is there.
#[test]
fn growth_races_a_reader_and_an_updater() {
    for swap in [false, true] {
        model(move || {
            // Room for two growths: a second mover's copy may fill the second table for a
            // moment (a transient `Full` there grows it again).
            let chain = chain(1, 2, 1);
            let grown = map(&chain, 1);
            assert_eq!(insert(&grown, 5, 50, &me(1)), None);
            let reader = {
                let chain = chain.clone();
                move || {
                    let map = map(&chain, 1);
                    let first = get(&map, 5, &me(2));
                    let second = fetch_add(&map, 5, 1, &me(2));
                    (first, second)
                }
            };
            let writer = {
                let chain = chain.clone();
                move || insert(&map(&chain, 1), 6, 60, &me(1))
            };
            let ((seen, added), inserted) = pair(swap, reader, writer);
            assert_eq!(seen, Some(50));
            assert_eq!(added, Some(50));
            assert_eq!(inserted, None);
            assert_eq!(get(&grown, 5, &me(1)), Some(51));
            assert_eq!(get(&grown, 6, &me(1)), Some(60));
            assert_eq!(members(&grown), vec![(5, 51), (6, 60)]);
            assert_eq!(grown.len(), 2);
        });
    }
}

/// Two processes migrate the same member at once (an insert of another key helps the
/// migration along, an update of the member finds it frozen and migrates its key): exactly
/// one copy is committed and published, the other is given back, and the update lands.
#[test]
fn two_movers_commit_one_copy() {
    model(|| {
        // Room for a second growth: the copies of two movers may fill the second table.
        let chain = chain(1, 2, 1);
        let grown = map(&chain, 1);
        assert_eq!(insert(&grown, 5, 50, &me(1)), None);
        // Start the growth: the next table linked, nothing migrated yet.
        let next = chain.make_table(2);
        chain.chain.tables[0]
            .header(NEXT)
            .store(next, Ordering::Release);
        let (inserted, added) = pair(
            false,
            {
                let chain = chain.clone();
                move || insert(&map(&chain, 1), 6, 60, &me(1))
            },
            {
                let chain = chain.clone();
                move || fetch_add(&map(&chain, 1), 5, 10, &me(2))
            },
        );
        assert_eq!((inserted, added), (None, Some(50)));
        assert_eq!(get(&grown, 5, &me(1)), Some(60));
        assert_eq!(members(&grown), vec![(5, 60), (6, 60)]);
        let census = grown.newest(&grown.pin().unwrap()).unwrap().census();
        assert_eq!(census[0], 2, "both members in the newest table: {census:?}");
        assert_eq!(census[2], 0, "no copy left behind: {census:?}");
    });
}

/// A mover that died after committing its copy but before publishing it: a reader and a
/// remover of the key finish its work, and the key is read or removed exactly once.
#[test]
fn dead_movers_committed_copy_is_published_by_others() {
    model(|| {
        let chain = chain(1, 1, 1);
        let grown = map(&chain, 1);
        assert_eq!(insert(&grown, 5, 50, &me(1)), None);
        // The dead mover's work, done as it did it: link, freeze, copy, commit.
        let (slot, frozen) = dead_movers_copy(&chain, &grown);
        chain.chain.tables[0]
            .pair(0)
            .compare_exchange(
                frozen,
                [frozen[0] | 1 << 28, slot | 1 << 32],
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .unwrap();
        let (read, removed) = pair(
            false,
            {
                let chain = chain.clone();
                move || get(&map(&chain, 1), 5, &me(1))
            },
            {
                let chain = chain.clone();
                move || {
                    let mut old = [0];
                    map(&chain, 1)
                        .remove(&[5], &mut old, &me(2))
                        .unwrap()
                        .then_some(old[0])
                }
            },
        );
        assert!(matches!(read, Some(50) | None), "read {read:?}");
        assert_eq!(removed, Some(50));
        assert_eq!(get(&grown, 5, &me(1)), None);
        assert_eq!(members(&grown), vec![]);
        assert_eq!(grown.len(), 0);
    });
}

/// A mover that died after publishing its copy in the next table but before committing
/// it: an updater and a second updater (or a reader) of the key race to migrate the
/// source; one takes the dead mover's copy over and commits it, so the update lands once
/// and the next table holds the key once, with no unreachable `MOVING` copy left behind
/// (without the takeover, the source is copied again and the orphan stays).
#[test]
fn dead_movers_uncommitted_copy_is_taken_over() {
    for second_writes in [false, true] {
        model(move || {
            let chain = chain(1, 1, 1);
            let grown = map(&chain, 1);
            assert_eq!(insert(&grown, 5, 50, &me(1)), None);
            // The dead mover's work, done as it did it: link, freeze, copy (no commit).
            dead_movers_copy(&chain, &grown);
            let (added, other) = pair(
                false,
                {
                    let chain = chain.clone();
                    move || fetch_add(&map(&chain, 1), 5, 1, &me(1))
                },
                {
                    let chain = chain.clone();
                    move || {
                        let map = map(&chain, 1);
                        if second_writes {
                            fetch_add(&map, 5, 10, &me(2))
                        } else {
                            get(&map, 5, &me(2))
                        }
                    }
                },
            );
            if second_writes {
                assert!(
                    matches!((added, other), (Some(50), Some(51)) | (Some(60), Some(50))),
                    "not a serial order: {added:?} {other:?}"
                );
                assert_eq!(get(&grown, 5, &me(1)), Some(61));
            } else {
                assert_eq!(added, Some(50));
                assert!(matches!(other, Some(50 | 51)), "read {other:?}");
                assert_eq!(get(&grown, 5, &me(1)), Some(51));
            }
            finish_with_one_member(&grown);
        });
    }
}

/// Helps the growth finish, then checks the newest table holds the one key as a member and
/// no copy (`BUSY` or `MOVING`) or invalid slot is left; a live mover's copy that lost the
/// commit and was freed (`DELETED`, index 3) may remain.
fn finish_with_one_member(grown: &GrowingMap<Shared>) {
    finish(grown, &me(1));
    let census = grown.newest(&grown.pin().unwrap()).unwrap().census();
    assert_eq!(
        (census[0], census[1], census[2], census[4]),
        (1, 0, 0, 0),
        "one member, no copy left behind: {census:?}"
    );
    assert_eq!(grown.len(), 1);
}

/// A mover's copy in the next table, published as `MOVING` (version 1) with a dead mover
/// named, its source frozen and not yet committed: the work of a mover before its commit.
fn dead_movers_copy(chain: &Shared, grown: &GrowingMap<Shared>) -> (u64, [u64; 2]) {
    let next = chain.make_table(2);
    chain.chain.tables[0]
        .header(NEXT)
        .store(next, Ordering::Release);
    let old = &chain.chain.tables[0];
    let seen = old.pair(0).load(Ordering::SeqCst);
    let frozen = [seen[0] | 1 << 27, seen[1]];
    old.pair(0)
        .compare_exchange(seen, frozen, Ordering::SeqCst, Ordering::SeqCst)
        .unwrap();
    let new = &chain.chain.tables[1];
    let hash = grown.hash(&[5]);
    let slot = hash & 1;
    new.data(slot)[0].store(5, Ordering::Relaxed);
    new.data(slot)[1].store(50, Ordering::Relaxed);
    new.hints(0)
        .fetch_or((0x80 | hash >> 57) << (8 * slot), Ordering::SeqCst);
    let home = new.pair(slot).load(Ordering::SeqCst);
    let moving = [
        7 | 1 << 3 | (hash >> 52) << 15 | 1 << 30,
        u64::from(dead(3).bits()),
    ];
    new.pair(slot)
        .compare_exchange(home, moving, Ordering::SeqCst, Ordering::SeqCst)
        .unwrap();
    (slot, frozen)
}

/// The mover's last step races an updater of the key: it commits its copy at the source
/// (and dies before publishing it), while the updater, finding the source uncommitted,
/// takes the copy over as a dead mover's orphan. The updater's own commit then fails on the
/// commit naming that same copy: it publishes the copy instead of freeing it (freeing it
/// lost the key: the source named a deleted copy), and the update lands once.
#[test]
fn a_copy_committed_while_it_is_taken_over_is_kept() {
    model(|| {
        let chain = chain(1, 1, 1);
        let grown = map(&chain, 1);
        assert_eq!(insert(&grown, 5, 50, &me(1)), None);
        let (slot, frozen) = dead_movers_copy(&chain, &grown);
        let (_, added) = pair(
            false,
            {
                let chain = chain.clone();
                move || {
                    // Fails if the updater committed first (then the copy is the
                    // updater's, and the mover's freeing of it would fail too).
                    let old = &chain.chain.tables[0];
                    let _ = old.pair(0).compare_exchange(
                        frozen,
                        [frozen[0] | 1 << 28, slot | 1 << 32],
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
            },
            {
                let chain = chain.clone();
                move || fetch_add(&map(&chain, 1), 5, 1, &me(1))
            },
        );
        assert_eq!(added, Some(50), "the update found the key");
        assert_eq!(get(&grown, 5, &me(1)), Some(51));
        finish_with_one_member(&grown);
    });
}

/// Two inserts of new keys into a full two-slot table race to grow it (and one of them
/// may claim a slot the other's migration freezes): both keys land once, and the keys
/// that were there stay.
#[test]
fn racing_inserts_grow_once_and_lose_nothing() {
    model(|| {
        let chain = chain(2, 2, 1);
        let grown = map(&chain, 1);
        assert_eq!(insert(&grown, 1, 10, &me(1)), None);
        let (a, b) = pair(
            false,
            {
                let chain = chain.clone();
                move || insert(&map(&chain, 1), 2, 20, &me(1))
            },
            {
                let chain = chain.clone();
                move || insert(&map(&chain, 1), 3, 30, &me(2))
            },
        );
        assert_eq!((a, b), (None, None));
        assert_eq!(members(&grown), vec![(1, 10), (2, 20), (3, 30)]);
        // Lookups start at the first table (a handle's stalest guess), which may be
        // migrating still: its answer for an absent key is not the map's.
        for (key, value) in [(1, 10), (2, 20), (3, 30)] {
            assert_eq!(get(&grown, key, &me(1)), Some(value), "key {key}");
        }
        assert_eq!(grown.len(), 3);
        // One of them claimed the growth and made the table; the other waited for it.
        assert_eq!(chain.chain.made.load(Ordering::SeqCst), 1, "tables made");
    });
}

/// The `MADE` words of `table`.
fn made_records(table: &Table) -> [&AtomicU64; 2] {
    [table.header(MADE[0]), table.header(MADE[1])]
}

/// Records in `table` the two blocks a dead maker (of slot 5) took for its next table,
/// blocks of no table of the model (ids 40 and 41); returns them.
fn record_dead_blocks(table: &Table) -> [u64; 2] {
    let blocks = [block_of(40, 0), block_of(41, 1)];
    for (word, block) in made_records(table).into_iter().zip(blocks) {
        word.store(made_record(dead(5), block), Ordering::Release);
    }
    blocks
}

/// `blocks` were given back, each once, and `table` keeps no record.
fn assert_given_back(chain: &Shared, table: &Table, blocks: [u64; 2]) {
    let mut given_back = chain.chain.given_back.lock().unwrap().clone();
    given_back.sort_unstable();
    assert_eq!(given_back, blocks);
    for word in made_records(table) {
        assert_eq!(word.load(Ordering::SeqCst), 0, "record left");
    }
}

/// A process died while it made the next table of a full table (its claim is in `NEXT`,
/// the two blocks it took recorded in `MADE`): two inserts of new keys race; the first to
/// see the dead claim takes it over, gives the dead maker's blocks back and makes the
/// table, the other waits for it; both keys land once, one table is made, the dead
/// maker's blocks are given back, and no record is left. (Bound 2. The model's tables
/// never return to its allocator and only the dead maker's blocks are ever given back:
/// the give-back's races are the two models below.)
#[test]
fn a_dead_growers_claim_is_taken_over_once() {
    model_up_to(2, || {
        let chain = chain(2, 1, 1);
        let grown = map(&chain, 1);
        assert_eq!(insert(&grown, 1, 10, &me(1)), None);
        assert_eq!(insert(&grown, 2, 20, &me(1)), None);
        let first = &chain.chain.tables[0];
        first
            .header(NEXT)
            .store(GROWING | u64::from(dead(5).bits()), Ordering::Release);
        let dead_blocks = record_dead_blocks(first);
        let (a, b) = pair(
            false,
            {
                let chain = chain.clone();
                move || insert(&map(&chain, 1), 3, 30, &me(2))
            },
            {
                let chain = chain.clone();
                move || insert(&map(&chain, 1), 4, 40, &me(3))
            },
        );
        assert_eq!((a, b), (None, None));
        assert_eq!(chain.chain.made.load(Ordering::SeqCst), 1, "tables made");
        finish(&grown, &me(1));
        assert_eq!(members(&grown), vec![(1, 10), (2, 20), (3, 30), (4, 40)]);
        assert_eq!(grown.len(), 4);
        assert_given_back(&chain, first, dead_blocks);
    });
}

/// Two give-backs of a dead maker's records (as above: the process that next holds the
/// claim, and the one that moves the root past the table, say) race: each block is given
/// back once, and no record is left.
#[test]
fn a_dead_makers_blocks_are_given_back_once() {
    model(|| {
        let chain = chain(2, 1, 1);
        let first = chain.chain.tables[0].clone();
        let dead_blocks = record_dead_blocks(&first);
        let give_back = |who: u32| {
            let (chain, first) = (chain.clone(), first.clone());
            move || {
                let records = made_records(&first);
                chain.give_back_made(4, records, &me(who));
            }
        };
        pair(false, give_back(2), give_back(3));
        assert_given_back(&chain, &first, dead_blocks);
    });
}

/// A give-back of a dead maker's records (as above) while the participant sweep retires
/// the maker's slot, rewriting the records' owner: each block is given back once, whether
/// the give-back reads a record before or after the rewrite (one that read it before
/// judges the rewritten record again), and no record is left.
#[test]
fn a_dead_makers_blocks_are_given_back_under_a_sweep() {
    for swap in [false, true] {
        model(move || {
            let chain = chain(2, 1, 1);
            let first = chain.chain.tables[0].clone();
            let dead_blocks = record_dead_blocks(&first);
            pair(
                swap,
                {
                    let (chain, first) = (chain.clone(), first.clone());
                    move || {
                        let records = made_records(&first);
                        chain.give_back_made(4, records, &me(2));
                    }
                },
                {
                    let first = first.clone();
                    move || RawMap::new(first, 1, 1, SEED).retire_owner_slot(5).unwrap()
                },
            );
            assert_given_back(&chain, &first, dead_blocks);
        });
    }
}

/// Keys whose home is slot 0 of a table of `capacity` slots.
fn homed_at_zero(map: &GrowingMap<Shared>, capacity: u64) -> impl Iterator<Item = u64> + '_ {
    (100..).filter(move |key| map.hash(&[*key]) & (capacity - 1) == 0)
}

/// An insert into a table whose migration has begun races another insert of the same key
/// that goes on in the next table: the first may have claimed a slot in the old table's
/// probe range beyond what the chunks migrated so far; the second freezes that range
/// (in probe order, up to a never-claimed slot) before it goes on. One insert is fresh,
/// the other replaces its value.
#[test]
fn an_insert_in_a_freezing_table_never_duplicates_its_key() {
    for swap in [false, true] {
        model(move || {
            let chain = chain(4, 1, 1);
            let grown = map(&chain, 1);
            let mut keys = homed_at_zero(&grown, 4);
            let (occupant, key) = (keys.next().unwrap(), keys.next().unwrap());
            assert_eq!(insert(&grown, occupant, 1, &me(1)), None);
            let (a, b) = pair(
                swap,
                {
                    let chain = chain.clone();
                    move || insert(&map(&chain, 1), key, 10, &me(1))
                },
                {
                    let chain = chain.clone();
                    move || {
                        // Growth begins (as an insert that ran out of room would begin it),
                        // then this process inserts the same key.
                        let next = chain.make_table(8);
                        chain.chain.tables[0]
                            .header(NEXT)
                            .store(next, Ordering::Release);
                        insert(&map(&chain, 1), key, 20, &me(2))
                    }
                },
            );
            match (a, b) {
                (None, Some(10)) => assert_eq!(get(&grown, key, &me(1)), Some(20)),
                (Some(20), None) => assert_eq!(get(&grown, key, &me(1)), Some(10)),
                other => panic!("not a serial order: {other:?}"),
            }
            assert_eq!(get(&grown, occupant, &me(1)), Some(1));
            assert_eq!(grown.len(), 2);
        });
    }
}

/// Helps the migrations until the map has one table (pinned, as tools do).
fn finish(map: &GrowingMap<Shared>, who: &Mock) {
    let pin = map.pin().unwrap();
    map.finish(&pin, who).unwrap();
}

/// A map grown once (a first table of one slot, a second of two holding keys 5 and 6),
/// and a handle whose guess is the second table, as one that found it at the root.
fn grown_once() -> (Shared, GrowingMap<Shared>) {
    let chain = chain(1, 2, 1);
    let setup = map(&chain, 1);
    assert_eq!(insert(&setup, 5, 50, &me(1)), None);
    assert_eq!(insert(&setup, 6, 60, &me(1)), None);
    finish(&setup, &me(1));
    assert_eq!(chain.root().load(Ordering::SeqCst), 1 | 1 << 56);
    let guessing = map(&chain, 1);
    assert_eq!(get(&guessing, 5, &me(2)), Some(50));
    assert_eq!(
        guessing.tables().guess().map(|(_, root)| root),
        Some(1 | 1 << 56)
    );
    (chain, guessing)
}

/// The map grows again, its root moves past the second table, and the mover retires it:
/// once the pins drain, the table's memory is reused.
fn grow_and_retire(chain: &Shared) -> Option<u64> {
    let writer = map(chain, 1);
    let inserted = insert(&writer, 7, 70, &me(1));
    finish(&writer, &me(1));
    inserted
}

/// After a model: the second table was retired once, and reused; the map holds
/// `expected`.
fn check_retired(chain: &Shared, expected: &[(u64, u64)]) {
    assert_eq!(*chain.chain.retirements.lock().unwrap(), vec![1]);
    assert_eq!(
        chain.chain.grace.load(Ordering::SeqCst),
        0,
        "no pin, and reused"
    );
    let fresh = map(chain, 1);
    assert_eq!(members(&fresh), expected);
    for &(key, value) in expected {
        assert_eq!(get(&fresh, key, &me(1)), Some(value), "key {key}");
    }
}

/// Lookups through a guess of the second table race its retirement and reuse: they
/// validate against the root word, so a lookup that read reused memory starts again from
/// the root and still finds both keys (without the validation, it answers "absent").
#[test]
fn lookups_through_a_retired_guess_never_answer_from_reused_memory() {
    for swap in [false, true] {
        model(move || {
            let (chain, guessing) = grown_once();
            let (seen, inserted) = pair(
                swap,
                move || {
                    (
                        get(&guessing, 5, &me(2)),
                        guessing.contains(&[6], &me(2)).unwrap(),
                    )
                },
                {
                    let chain = chain.clone();
                    move || grow_and_retire(&chain)
                },
            );
            assert_eq!(seen, (Some(50), true));
            assert_eq!(inserted, None);
            check_retired(&chain, &[(5, 50), (6, 60), (7, 70)]);
        });
    }
}

/// An update through a guess of the second table races its retirement and reuse: it pins
/// and then checks that the root still names the table, so it lands once, in a table in
/// use (unpinned, it can write into reused memory and be lost).
#[test]
fn an_update_through_a_retired_guess_lands_in_a_table_in_use() {
    for swap in [false, true] {
        model(move || {
            let (chain, guessing) = grown_once();
            let (added, inserted) = pair(swap, move || fetch_add(&guessing, 5, 1, &me(2)), {
                let chain = chain.clone();
                move || grow_and_retire(&chain)
            });
            assert_eq!(added, Some(50));
            assert_eq!(inserted, None);
            check_retired(&chain, &[(5, 51), (6, 60), (7, 70)]);
        });
    }
}

/// An insert through a guess of the second table (replacing key 5) races its retirement
/// and reuse: as an update, it pins and checks that the root still names the table before
/// it writes (the insert's own fast path), so it lands once, in a table in use.
#[test]
fn an_insert_through_a_retired_guess_lands_in_a_table_in_use() {
    for swap in [false, true] {
        model(move || {
            let (chain, guessing) = grown_once();
            let (replaced, inserted) = pair(swap, move || insert(&guessing, 5, 55, &me(2)), {
                let chain = chain.clone();
                move || grow_and_retire(&chain)
            });
            assert_eq!(replaced, Some(50));
            assert_eq!(inserted, None);
            check_retired(&chain, &[(5, 55), (6, 60), (7, 70)]);
        });
    }
}

/// A mover that took the first chunk's ticket, froze the chunk's slot and died: the
/// tickets are all handed out once another operation takes the second, so the dead
/// mover's chunk is found by its clear bit and migrated again, by a writer of a new key
/// or a reader of the frozen one, whichever comes; the growth completes and every key is
/// there once.
#[test]
fn a_dead_movers_chunk_is_taken_over() {
    for swap in [false, true] {
        model(move || {
            let chain = chain(2, 1, 1);
            let grown = map(&chain, 1);
            let mut homed = homed_at_zero(&grown, 2);
            let (frozen_key, other) = (homed.next().unwrap(), 7);
            assert_eq!(insert(&grown, frozen_key, 1, &me(1)), None);
            assert_eq!(insert(&grown, other, 2, &me(1)), None);
            // The dead mover's work: link, take chunk 0's ticket, freeze its slot.
            let next = chain.make_table(4);
            let old = &chain.chain.tables[0];
            old.header(NEXT).store(next, Ordering::Release);
            assert_eq!(old.header(CURSOR).fetch_add(1, Ordering::Relaxed), 0);
            let seen = old.pair(0).load(Ordering::SeqCst);
            old.pair(0)
                .compare_exchange(
                    seen,
                    [seen[0] | 1 << 27, seen[1]],
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .unwrap();
            let (inserted, read) = pair(
                swap,
                {
                    let chain = chain.clone();
                    move || insert(&map(&chain, 1), 9, 3, &me(2))
                },
                {
                    let chain = chain.clone();
                    move || get(&map(&chain, 1), frozen_key, &me(3))
                },
            );
            assert_eq!((inserted, read), (None, Some(1)));
            finish(&grown, &me(1));
            assert_eq!(chain.root().load(Ordering::SeqCst), next | 1 << 56);
            let mut expected = vec![(frozen_key, 1), (other, 2), (9, 3)];
            expected.sort_unstable();
            assert_eq!(members(&grown), expected);
            assert_eq!(grown.len(), 3);
        });
    }
}
