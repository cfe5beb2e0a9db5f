//! `HashMap<K, V>` and `HashSet<K>`: lock-free open addressing in shared memory (Python's
//! `Manager().dict()` without the broker), where any process may be frozen or killed at
//! any instruction.
//!
//! ```text
//! body:
//!   0      len counters: 16 shards, one per cache line (a shard per participant slot)
//!   1024   root word: the oldest table in use, its id and generation (0: the first)
//!   1088   the first table; a later table (see `grow`) lies in two arena blocks: its
//!          header and hints in one, its slots in the other (named by its header), so
//!          that slots of a power-of-two size fill their block exactly
//! table:
//!   0      header: next table, migration cursor, capacity, slots' offset (later tables),
//!          bitmap of migrated chunks
//!   then   hints: one byte per slot, packed 8 to a word, padded to a cache line:
//!            0x00 never claimed, else 0x80 | 7 hash bits: the tag of the last key
//!            claimed for or written into the slot (kept after removal)
//!   then   slots: capacity x slot_words words, each slot 16-byte aligned:
//!            word 0      state  | version: 34 | arrived | committed | frozen | tag: 12 |
//!                               | bound: 12 | kind: 3 |
//!            word 1      one-word values: the value; wider values: aux
//!                        aux = | writer: 31 bits (top) | copy version: 32 bits |
//!            key words   the key, zero-padded to whole words
//!            one-word values: a staging word (the value of an INSERTING copy);
//!            wider values: two copies of the value
//!          (u64 -> u64: 4 words = 32 bytes per slot, plus its hint byte)
//! ```
//!
//! Words 0 and 1 form an [`AtomicPair`]: every change of a slot is one 128-bit
//! compare-exchange of (state, value/aux), so a value can never be written into a slot that
//! has meanwhile been removed and reused by another key (the version in the state word
//! moved), and no slot is ever locked. Reads of a slot load word 0, then word 1
//! ([`AtomicPair::load_split`]), and take the two together only once a re-read of word 0
//! shows the slot's identity (the state less its bound) unchanged (a wide value's re-read,
//! which checks word 1 too, is one 128-bit load). Within a version, kinds only move
//! forward and flags are only set, so an identity never returns to a value it left:
//! unchanged at the re-read, it was unchanged throughout.
//!
//! # Slot states (`kind`)
//! - `EMPTY`: never used. Probes stop here: a slot never becomes `EMPTY` again.
//! - `BUSY`: claimed by an insert that is writing the key (and a wide value); word 1 holds
//!   the inserter's owner id. A dead inserter's `BUSY` slot is freed by the first insert
//!   that runs out of free slots near it (the only place that asks about liveness).
//! - `INSERTING`: key and value written, uniqueness not yet settled; word 1 names the
//!   inserter (a one-word value waits in the staging word). Anyone may settle it.
//! - `MEMBER`: the key is in the map.
//! - `DELETED`: removed, or a lost copy its inserter has seen; free for reuse. Claiming
//!   bumps the version, which invalidates every in-flight reader and writer of the old key.
//! - `COLLIDED`: an `INSERTING` copy that lost, still naming its inserter. Not reusable
//!   until the inserter has seen it (and frees it) or is dead: so an inserter that finds
//!   its slot at another version knows its copy was promoted (and since removed), never
//!   mistakes a slot reused by another insert for its own, and never applies itself twice.
//! - `REMOVING`: removed (the key is absent), but copies of the key published while it was
//!   a member may still be pending: they are made to lose, then the slot is `DELETED`.
//!
//! The hint bytes are what lookups read first: a table of a million slots has a megabyte
//! of hints, which stays in cache, so a lookup touches the slots (in memory) only where a
//! hint matches, and its branches do not wait for memory. Hints are never authoritative
//! for presence (a match is confirmed on the slot) but are for absence: a slot's hint
//! becomes non-zero (compare-exchange from 0 to the tag of a key it is to be claimed for)
//! before it is first claimed, and its claimer writes its key's tag before publishing
//! `INSERTING`; nobody else writes it once the slot is claimed, so a `MEMBER` slot always
//! shows its key's tag and a zero hint means "never claimed".
//!
//! `bound` (in the state word of a *home* slot) is one more than the largest displacement
//! of any key hashing there (Purcell and Harris's probe bound): settles scan at most that
//! many slots, and lookups too once they pass 16 slots, so misses stay short whatever the
//! load, also after heavy churn has left no never-claimed slot. It only grows.
//!
//! # Operations and linearization points
//! Every operation on a key looks first at the slot its walk would visit first
//! (`find_first`: the home's group of hint bytes, and the next group when the home's eight
//! slots are all claimed without the key's hint, then the first slot whose hint matches),
//! in straight-line code. If that slot holds the key as a member, `get` reads it there, an
//! update changes it there with the compare-exchange below, and an insert replaces (or, for
//! `try_insert`, reports) it there as below; the key is absent if no hint matches before a
//! never-claimed slot, also after a first hinted slot that holds no copy of the key
//! (another key's, or free), or if the first 16 slots hold no copy and the home's bound
//! ends there. Anything else goes the whole way below. The first look reads what the walk
//! reads, in the same order, and answers only where the walk answers the same from those
//! reads: it is the walk's fast path, not a second algorithm.
//! One exception, for inserts alone: a first hinted slot left `DELETED` (most often the
//! key's own, removed: a removal keeps the hint) sends the insert to claim at once, as if
//! the key were absent; the walk before a claim only saves the claim of a key present,
//! and the settle after it decides either way.
//!
//! - `get`: walk the hint bytes from the key's home (8 at a time; stopping at a zero hint,
//!   and at `bound` past 16 slots); at each slot whose hint matches, load the pair, and if it
//!   is a `MEMBER` with the key's 12-bit tag, read the key (and a wide value) and re-read
//!   the state: the same identity means key and value belong together. Linearizes at the
//!   load of word 1 (the value, or a wide value's copy version). Never waits. Writes only
//!   when it meets a pending (`INSERTING`) copy of its key or an unfinished removal of
//!   it: it settles the key first (below), as every operation on a key does.
//! - `insert`: if the key is a `MEMBER`, replace its value with one compare-exchange (or, for
//!   `try_insert`, report it). Otherwise claim the first free slot (`EMPTY`/`DELETED` ->
//!   `BUSY`), write key and value, raise the home's bound, publish `INSERTING`, then
//!   **settle** the key: scan its probe range (the slots whose hint matches, up to `bound`);
//!   if a `MEMBER` exists, every `INSERTING` copy
//!   loses; otherwise the earliest `INSERTING` copy in probe order is promoted to `MEMBER`
//!   (by whoever gets there first: helpers finish a frozen inserter's work) and later copies
//!   lose (`COLLIDED`). The inserter then reads its own copy: promoted means done (whoever
//!   promoted it); lost means it frees the copy and applies itself to the winner.
//!   A settle promotes only a copy it saw pending before its walk began (its own, the one
//!   its caller met, or one an earlier walk of the same settle saw; otherwise it walks
//!   again): so the walk that promotes a copy reads every other slot after that copy's
//!   publication. Uniqueness then follows from a Dekker-style argument over the
//!   sequentially consistent state, bound and hint changes: if walks W1 and W2 promoted
//!   copies C1 and C2 of one key, W1 did not see C2, so it read C2's slot before C2 was
//!   published (a copy whose bound raise W1 missed makes it walk again), and W1 began after
//!   C1 was published: C1 was published first. Symmetrically C2 was: a contradiction.
//!   `structures/tests/loom_map.rs` model-checks two racing inserts of one key on
//!   this code; `hash_map_settle_race.rs` replays a settle that met a copy published
//!   behind its walk.
//!   A new key linearizes at the first settle that promotes its copy, and no operation on
//!   the key (lookup, insert, update, remove, an iteration passing the slot, `clear`)
//!   answers while a copy of it is pending: each settles the key first. So between the
//!   publication of a copy and that settle nobody observes the key, and the insert may be
//!   taken to have happened at the publication, when its process was alive. A replacing
//!   insert linearizes at its compare-exchange.
//!   A copy published while its key is a member never wins: any walk that begins after its
//!   publication meets the member (or its unfinished removal, and finishes it first) and
//!   kills it, and a removal kills it before the member's slot is free.
//! - `remove`: one compare-exchange `MEMBER` -> `REMOVING`; linearizes there. It then
//!   finishes: every copy of the key still `INSERTING` is made to lose (a copy published
//!   while the key was a member came too late, and must not land once the member is
//!   gone), then `REMOVING` -> `DELETED`. Lookups take a `REMOVING` slot for what it is
//!   (the key absent) but, like a pending copy, finish it before they answer.
//! - `compare_exchange`, `fetch_update`, `fetch_add` on one-word values: compare-exchange
//!   loops on the pair; no process ever waits for another.
//! - Wider values (more than 8 bytes): two copies and a copy version in `aux`, as in
//!   `List`. A writer takes the slot's writer field (waiting for a *live* writer of the
//!   same key, taking over from a dead one), writes the spare copy and publishes the next
//!   copy version. Readers never wait: they read the current copy and validate with the
//!   pair. A writer that took the field over from a dead one publishes a new copy even
//!   when it changes nothing (the dead one may have written part of the copy that readers
//!   of the version before read). A removed slot keeps its writer field until that writer
//!   leaves, so it is not reused under a live writer.
//!
//! # Growth
//! The map is a chain of tables: when an insert runs out of room the table gets a next one
//! of twice the capacity, and every operation that passes a table being migrated moves a
//! chunk of it and its own key's slots into the next (`grow` for the chain, `migrate` for
//! the per-slot protocol: freeze, copy as `MOVING`, commit at the source, publish). A
//! slot's `frozen` bit takes it out of use in its table; `committed` (on a frozen member)
//! says word 1 names its copy in the next table; `arrived` marks a member that came by
//! migration. Lookups, inserts, updates and removals above work on one table; the chain
//! decides which. A table the root has moved past is retired and returns to the arena
//! after a grace period: writers on a grown map pin, lookups validate (`grow`).
//!
//! # Deaths and freezes
//! Kills are final: an operation of a process that dies took effect before its death or
//! never, and no process sees it not done and later done. What a death leaves, by step:
//! - after the claim, before publication (`BUSY`: key or wide value half written): never
//!   takes effect. The slot names the dead inserter and is freed (`DELETED`) by the first
//!   insert that runs out of free slots near it (the only place that asks about liveness).
//! - after publishing `INSERTING`, before settling: the copy is complete, and the next
//!   operation on that key settles it (or an insert that runs out of room): it wins if it is
//!   the earliest copy and no member exists, else it loses. Nobody observed the key between
//!   the publication and that settle (every operation settles first), so a win is the
//!   insert taking effect before the death, a loss is the insert never taking effect.
//! - a copy that lost (`COLLIDED`, naming its inserter): freed once the inserter is dead.
//! - a wide-value writer holding the writer field, its new copy half written: never takes
//!   effect; the next writer of the key takes the field over once the holder is dead and
//!   writes over the spare copy (the dead writer's copy is never published).
//! - replacing compare-exchanges, `fetch_add` and the other one-word updates: one
//!   compare-exchange, done or not.
//! - `remove` after its compare-exchange to `REMOVING`: done. The next operation on the
//!   key, `clear`, or an insert that runs out of free slots near it finishes the removal
//!   (until then the slot is not reused; the key is absent either way).
//!
//! A frozen process holds the same at most one slot: its pending copy is settled and its
//! removal finished by others (helping), its `BUSY` slot stays out of use until it
//! resumes, and other writers of a wide value whose writer field it holds wait for it
//! (readers never do). Growth: a process that dies or freezes while it makes the next
//! table holds its claim (`grow`); an insert that finds the table full waits for a live
//! claimant up to [`grow::GROW_PATIENCE`] and then makes the table itself (a dead one's
//! claim at once); the blocks a claimant killed while it makes the table took for it are
//! given back, but for a few windows of a few instructions and a frozen maker's (it
//! records each as soon as it has it: `grow`). `len` is kept in sharded counters updated
//! right after the linearization point: a process killed between the two leaves `len` off
//! by one until [`HashMap::recount`], and a pending copy is counted when it is settled;
//! the contents are never affected.

use shmarena_engine::sync::{fence, AtomicPair, AtomicU64, Backoff, Ordering};
use shmarena_engine::{Error, Liveness, OwnerId, Result};

/// A result whose error is boxed: 16 bytes for the small answers of the insert's and the
/// removal's out-of-line steps, so that they come back in registers (an 80-byte `Result` comes back through
/// memory, and its caller's wider reload of it stalls on store forwarding: measured with
/// `benches/examples/map_ops.rs`).
pub(crate) type Boxed<T> = std::result::Result<T, Box<Error>>;

// The files: `layout` (state-word fields, hints, offsets, the hash), `raw` (one table's
// algorithm, over any `Slots`: what the loom models run), `migrate` (moving a slot to the
// next table), `grow` (the chain of tables), `handle` (the mapped tables and the
// handles, a file each).
mod layout;
mod raw;

pub mod grow;
pub mod migrate;

pub use grow::{GrowingMap, Tables};
pub use layout::*;
pub use migrate::header_words;
pub use raw::*;

#[cfg(not(loom))]
mod handle;

#[cfg(not(loom))]
pub use handle::{ByteMap, ByteSet, HashMap, HashSet};

/// Rewrites the owner fields naming participant slot `slot` in the map or set `entry`
/// (see [`RawMap::retire_owner_slot`]), in each of its tables.
#[cfg(not(loom))]
pub(crate) fn retire_owner_slot(
    region: &shmarena_engine::Region,
    entry: &shmarena_engine::EntryInfo,
    slot: u32,
) -> Result<()> {
    let object = region.open_object(&entry.name, &entry.descriptor)?;
    let first = first_table(&object)?;
    let map = map_for(region, &object, &first);
    let pin = map.pin()?;
    for table in map.chain(&pin)? {
        table.retire_owner_slot(slot)?;
    }
    Ok(())
}

/// The first table of the map or set `object` (for tools).
#[cfg(not(loom))]
fn first_table(object: &shmarena_engine::Object) -> Result<handle::MappedSlots> {
    let descriptor = &object.info().descriptor;
    handle::MappedSlots::first(
        object,
        u64::from(descriptor.key_size),
        u64::from(descriptor.elem_size),
    )
}

/// The algorithm over the tables of the map or set `object` (for tools).
#[cfg(not(loom))]
fn map_for<'r>(
    region: &'r shmarena_engine::Region,
    object: &shmarena_engine::Object,
    first: &'r handle::MappedSlots,
) -> GrowingMap<handle::MappedTables<'r>> {
    let descriptor = &object.info().descriptor;
    GrowingMap::new(
        handle::MappedTables::new(region, first, None),
        crate::words::word_count_of(u64::from(descriptor.key_size)) as usize,
        crate::words::word_count_of(u64::from(descriptor.elem_size)) as usize,
        region.hash_seed(),
    )
}

/// One line on the map or set `entry` (for `shmarena inspect`): len and slot states.
///
/// # Errors
/// [`Error::Corrupt`] and friends when the object cannot be opened.
#[cfg(not(loom))]
pub fn describe(
    region: &shmarena_engine::Region,
    entry: &shmarena_engine::EntryInfo,
) -> Result<String> {
    let object = region.open_object(&entry.name, &entry.descriptor)?;
    let first = first_table(&object)?;
    let map = map_for(region, &object, &first);
    let pin = map.pin()?;
    let chain = map.chain(&pin)?;
    let mut census = [0; 5];
    for table in &chain {
        for (total, count) in census.iter_mut().zip(table.census()) {
            *total += count;
        }
    }
    let [members, inserting, busy, deleted, invalid] = census;
    let migrating = if chain.len() > 1 {
        format!(
            ", growing from {} slots",
            chain.first().map_or(0, RawMap::capacity)
        )
    } else {
        String::new()
    };
    Ok(format!(
        "len {} of {} slots{migrating} ({members} members, {deleted} removed, lost or moved, {inserting} unsettled, {busy} being written, {invalid} invalid); created with {}",
        map.len(),
        map.capacity(),
        entry.descriptor.capacity
    ))
}

/// Checks a map's or set's slots (for `shmarena inspect --verify`).
#[cfg(not(loom))]
pub(crate) fn check(
    region: &shmarena_engine::Region,
    entry: &shmarena_engine::EntryInfo,
    findings: &mut Vec<shmarena_engine::Finding>,
) -> Result<()> {
    use shmarena_engine::Finding;
    let place = format!("{:?} {:?}", entry.descriptor.kind, entry.name);
    let object = region.open_object(&entry.name, &entry.descriptor)?;
    let first = first_table(&object)?;
    let map = map_for(region, &object, &first);
    // Duplicate keys: members whose key also appears in an earlier member slot (of any
    // table: a committed member is not read, its copy is).
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = 0;
    let pin = map.pin()?;
    for raw in map.chain(&pin)? {
        let [_, inserting, busy, _, invalid] = raw.census();
        if invalid != 0 {
            findings.push(Finding::error(
                &place,
                format!("{invalid} slots hold an invalid state"),
            ));
        }
        let dead = raw.dead_busy(region);
        if dead != 0 {
            findings.push(Finding::note(
                &place,
                format!("{dead} slots claimed by dead inserters (freed when an insert needs room)"),
            ));
        }
        if inserting + busy > 0 {
            findings.push(Finding::note(
                &place,
                format!("{inserting} inserts unsettled, {busy} in progress"),
            ));
        }
        let mismatched = raw.hint_mismatches();
        if mismatched != 0 {
            findings.push(Finding::error(
                &place,
                format!("{mismatched} members have a hint byte that is not their key's tag"),
            ));
        }
        let mut key = vec![0; raw.key_words()];
        let mut value = vec![0; raw.value_words().max(1)];
        for slot in 0..raw.capacity() {
            if raw.read_member(slot, &mut key, &mut value)? && !seen.insert(key.clone()) {
                duplicates += 1;
            }
        }
    }
    if duplicates != 0 {
        findings.push(Finding::error(
            &place,
            format!("{duplicates} keys appear in more than one member slot"),
        ));
    }
    Ok(())
}
