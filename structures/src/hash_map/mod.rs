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

pub mod grow;
pub mod migrate;

pub use grow::{GrowingMap, Tables};
pub use migrate::header_words;

const EMPTY: u64 = 0;
const BUSY: u64 = 1;
const INSERTING: u64 = 2;
const MEMBER: u64 = 3;
const DELETED: u64 = 4;
const COLLIDED: u64 = 5;
const REMOVING: u64 = 6;
/// A member's copy in the next table, written by a migration before it is committed (see
/// `migrate.rs`); word 1 names the mover and the source slot.
const MOVING: u64 = 7;

const KIND_MASK: u64 = 7;
/// The kinds a key operation stops at (as a mask of `1 << kind`): members, pending copies,
/// and removals whose late copies may still wait to be killed.
const KEY_KINDS: u64 = 1 << MEMBER | 1 << INSERTING | 1 << REMOVING;
const BOUND_SHIFT: u32 = 3;
const BOUND_BITS: u32 = 12;
const BOUND_MASK: u64 = ((1 << BOUND_BITS) - 1) << BOUND_SHIFT;
const TAG_SHIFT: u32 = 15;
const TAG_MASK: u64 = 0xfff << TAG_SHIFT;
/// The slot's table is being migrated and the slot has been taken out of use: only the
/// migration changes it any more (see `migrate.rs`).
const FROZEN: u64 = 1 << 27;
/// On a frozen member: its copy in the next table is the key's only entry, and word 1
/// names that copy (slot and version) instead of holding the value.
const COMMITTED: u64 = 1 << 28;
/// On a member: it arrived by migration (its key was counted, and an iteration that
/// walked the previous table has seen it there).
const ARRIVED: u64 = 1 << 29;
const VERSION_SHIFT: u32 = 30;

/// The longest probe sequence: a key lives at most `MAX_PROBE - 1` slots past its home.
pub const MAX_PROBE: u64 = (1 << BOUND_BITS) - 1;

/// Number of len counter shards (one cache line each).
pub const COUNTER_SHARDS: usize = 16;

/// Byte offset in a map's body of its root word (the id of its oldest table in use).
pub const ROOT_OFFSET: u64 = COUNTER_SHARDS as u64 * 64;

/// Byte offset in a map's body of its first table.
pub const FIRST_TABLE_OFFSET: u64 = ROOT_OFFSET + 64;

/// Words of hint bytes for `capacity` slots (whole cache lines).
pub fn hint_words(capacity: u64) -> u64 {
    capacity.div_ceil(64) * 8
}

/// Words of a table of `capacity` slots of `slot_words` words each: header, hints, slots.
pub fn table_words(capacity: u64, slot_words: u64) -> Option<u64> {
    capacity
        .checked_mul(slot_words)?
        .checked_add(header_words(capacity) + hint_words(capacity))
}

/// Byte offset in a map's body of the hint bytes of its first table, of `capacity` slots.
pub fn hints_offset(capacity: u64) -> u64 {
    FIRST_TABLE_OFFSET + 8 * header_words(capacity)
}

/// Byte offset in a map's body of the first slot of its first table, of `capacity` slots.
pub fn slots_offset(capacity: u64) -> u64 {
    hints_offset(capacity) + 8 * hint_words(capacity)
}

/// Slots a lookup scans by hints alone before it also reads the home slot's bound (two
/// groups of hint bytes: the home slot is then most often in memory, the hints in cache).
const HINT_ONLY_SCAN: u64 = 16;

/// A byte of 1 in each of a word's 8 bytes.
const ONES: u64 = 0x0101_0101_0101_0101;

/// 0x80 in every zero byte of `x`, 0 elsewhere (exact, no carries across bytes).
fn zero_bytes(x: u64) -> u64 {
    !(((x & !(ONES << 7)).wrapping_add(!(ONES << 7))) | x | !(ONES << 7))
}

/// Whether a hint byte of `group` other than the lowest match `hinted` matches `hint` (the
/// hint in every byte) before the group's first never-claimed slot (`never_claimed`, 0 for
/// none): a slot the walk visits after `hinted`'s.
fn another_hint(group: u64, hint: u64, hinted: u64, never_claimed: u64) -> bool {
    let mut later = zero_bytes(group ^ hint) & !(hinted | hinted.wrapping_sub(1));
    if never_claimed != 0 {
        later &= never_claimed - 1;
    }
    later != 0
}

/// 0x80 in the lowest zero byte of `x`, 0 if it has none: the cheaper test, whose false
/// positives lie only above a zero byte, is exact for the lowest.
fn lowest_zero_byte(x: u64) -> u64 {
    let zeros = x.wrapping_sub(ONES) & !x & (ONES << 7);
    zeros & zeros.wrapping_neg()
}

/// The hint byte of a key with this hash.
fn hint_of(hash: u64) -> u64 {
    0x80 | (hash >> 57)
}

/// Retries of an operation whose slots keep changing under it before it reports
/// [`Error::Contended`] (never reached without a corrupted or hostile table).
const MAX_RETRIES: u32 = 1 << 16;

fn kind(state: u64) -> u64 {
    state & KIND_MASK
}

fn bound(state: u64) -> u64 {
    (state & BOUND_MASK) >> BOUND_SHIFT
}

fn tag(state: u64) -> u64 {
    (state & TAG_MASK) >> TAG_SHIFT
}

fn version(state: u64) -> u64 {
    state >> VERSION_SHIFT
}

/// Everything but the bound: which key incarnation the slot holds, and in what state.
fn identity(state: u64) -> u64 {
    state & !BOUND_MASK
}

fn frozen(state: u64) -> bool {
    state & FROZEN != 0
}

fn tag_of(hash: u64) -> u64 {
    hash >> 52
}

/// A state of `kind` with `tag` and `version`, keeping the bound of `bound_from`.
fn state(kind: u64, tag: u64, version: u64, bound_from: u64) -> u64 {
    kind | (bound_from & BOUND_MASK) | (tag << TAG_SHIFT) | (version << VERSION_SHIFT)
}

fn with_kind(state: u64, kind: u64) -> u64 {
    (state & !KIND_MASK) | kind
}

fn with_bound(state: u64, bound: u64) -> u64 {
    (state & !BOUND_MASK) | (bound << BOUND_SHIFT)
}

fn aux(copy_version: u64, writer: Option<OwnerId>) -> u64 {
    (copy_version & 0xffff_ffff) | u64::from(writer.map_or(0, OwnerId::bits)) << 32
}

fn aux_version(aux: u64) -> u64 {
    aux & 0xffff_ffff
}

fn aux_writer(aux: u64) -> Option<OwnerId> {
    OwnerId::from_bits((aux >> 32) as u32)
}

/// The hash of a key (its words as bytes) with `seed`, the same in every process.
///
/// A one-word key (most integer keys) takes two folded multiplies (the high and low halves
/// of a 64 x 64 -> 128-bit product, xored, as foldhash and wyhash mix words): every bit of
/// the key reaches both the home bits (low) and the hint and tag bits (high), in about
/// 10 instructions where xxh3 takes 25. (One fold was measured not to be enough: for some
/// seeds, keys `0..n` clustered, a mean probe of 14 slots and a longest of 610 at load
/// 0.75 where random keys take 1.5 and ~100; with the second, every seed and pattern tried
/// probes as random keys do.) Longer keys fold two words per multiply, each product
/// chained into the next (as foldhash does for long inputs), then fold once more: about
/// 4 instructions a word where xxh3 took 10 (a Python dict's 9-word key: 94 -> ~45).
///
/// Public so that tools and benchmarks can hash as the map does (a peer map given this
/// hash in a comparison).
///
/// ```
/// use shmarena::hash_map::hash_key;
/// assert_eq!(hash_key(&[7], 1), hash_key(&[7], 1));
/// assert_ne!(hash_key(&[7], 1), hash_key(&[7], 2));
/// ```
#[inline]
pub fn hash_key(key: &[u64], seed: u64) -> u64 {
    if let [word] = key {
        let once = folded_multiply(word ^ seed, FOLD_MULTIPLIER ^ seed.rotate_left(32));
        return folded_multiply(once, SECOND_MULTIPLIER);
    }
    // Both factors keyed, so that no plain word zeroes a product (with the chained hash
    // in one factor only, a key [h, x] made every x collide: under seed 0, keys [0, i]).
    let (left, right) = (
        SECOND_MULTIPLIER ^ seed,
        FOLD_MULTIPLIER ^ seed.rotate_left(32),
    );
    let mut hash = 0;
    let mut pairs = key.chunks_exact(2);
    for pair in &mut pairs {
        hash = fold_product(pair[0] ^ hash ^ left, pair[1] ^ right);
    }
    if let [last] = pairs.remainder() {
        hash = fold_product(last ^ hash ^ left, right);
    }
    folded_multiply(hash, SECOND_MULTIPLIER)
}

/// An odd constant with no structure (the fractional digits of pi), as wyhash's and
/// foldhash's: the multiplier a one-word key's hash starts from.
const FOLD_MULTIPLIER: u64 = 0x243f_6a88_85a3_08d3;

/// The second fold's multiplier (the golden ratio's fractional digits, odd).
const SECOND_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// The high and low halves of `a * (b | 1)` (128 bits) xored: `b` a multiplier, kept odd.
#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    fold_product(a, b | 1)
}

/// The high and low halves of `a * b` (128 bits) xored: two key words mixed whole.
#[inline]
fn fold_product(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The answer of an operation on a map of one table, which is never migrated.
fn single<T>(step: Step<T>) -> Result<T> {
    match step {
        Step::Done(done) => Ok(done),
        Step::Moved => Err(Error::corrupt(
            "hash map slot",
            "a frozen slot in a table that is not being migrated".to_owned(),
        )),
    }
}

/// Where a reader of copy `before` may trust what it read, seeing `after` now: unchanged,
/// or the next copy done (it wrote the other copy), or a writer at work on the other copy.
fn copy_still_valid(before: u64, after: u64) -> bool {
    after == before
        || (aux_version(after) == (aux_version(before) + 1) & 0xffff_ffff
            && aux_writer(after).is_none())
        || (aux_version(after) == aux_version(before) && aux_writer(after).is_some())
}

/// The memory a map lives in: what the region (or a loom model) provides.
pub trait Slots {
    /// Number of slots, a power of two.
    fn capacity(&self) -> u64;
    /// The (state, value-or-aux) pair of `slot` (< capacity).
    fn pair(&self, slot: u64) -> &AtomicPair;
    /// The key words of `slot`, followed by the two value copies of a wide value.
    fn data(&self, slot: u64) -> &[AtomicU64];
    /// Len counter shard `shard` (< [`COUNTER_SHARDS`]).
    fn counter(&self, shard: usize) -> &AtomicU64;
    /// Word `word` of the hint bytes (slot `8 * word + i` in byte `i`, little-endian).
    fn hints(&self, word: u64) -> &AtomicU64;
    /// Word `word` (< [`header_words`]) of the table's header: the link to the next
    /// table and the migration's progress (see [`migrate`]).
    fn header(&self, word: u64) -> &AtomicU64;
}

impl<T: Slots + ?Sized> Slots for &T {
    fn capacity(&self) -> u64 {
        (**self).capacity()
    }
    fn pair(&self, slot: u64) -> &AtomicPair {
        (**self).pair(slot)
    }
    fn data(&self, slot: u64) -> &[AtomicU64] {
        (**self).data(slot)
    }
    fn counter(&self, shard: usize) -> &AtomicU64 {
        (**self).counter(shard)
    }
    fn hints(&self, word: u64) -> &AtomicU64 {
        (**self).hints(word)
    }
    fn header(&self, word: u64) -> &AtomicU64 {
        (**self).header(word)
    }
}

/// What a key is compared with, or copied into, when a slot is read.
enum KeyAccess<'k> {
    Compare(&'k [u64]),
    Copy(&'k mut [u64]),
}

/// What a validated read of one slot found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// The slot held the key (and the value read belongs to it).
    Match,
    /// The slot held another key.
    Mismatch,
    /// The slot changed during the read: look again.
    Changed,
}

/// What a first look ([`RawMap::first_look`]) is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Look {
    /// A lookup, a removal: the key a member, or absent.
    Find,
    /// An insert: absent also where the first hinted slot is `DELETED` (claim at once);
    /// past another visited slot, the walk's.
    Insert,
    /// An update: the key a member; anything else is the walk's.
    Member,
}

/// The first look's visit of a slot ([`RawMap::first_visit`]).
enum FirstVisit {
    /// The look ends there with this answer (`None`: the walk's to give).
    Ends(Option<Found>),
    /// The walk passes the slot: another key's, or free (most often the key's own, removed:
    /// a removal keeps the hint).
    Passes,
}

/// What one lookup walk found.
#[derive(Clone, Copy)]
enum Found {
    /// The key's member slot, with its pair as read. A frozen member (see `migrate.rs`)
    /// too: its callers tell it by its state (the walk's arms stay as few as before
    /// growth: measured).
    Member(u64, [u64; 2]),
    /// Neither a member nor a pending copy of the key.
    Absent,
    /// A pending (`INSERTING`) copy of the key or an unfinished removal, before any member,
    /// with its slot and identity as seen: settle, then look again.
    Pending(Seen),
}

/// What an insert's first look ([`RawMap::insert_first`]) came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum First<T> {
    /// The insert's answer.
    Done(T),
    /// The key was absent: the rest of the insert claims a slot at once, without walking
    /// the key's slots again (a walk before the claim only saves the claim of a key
    /// present; the settle after it decides).
    Absent,
    /// No answer: the rest of the insert walks.
    Walk,
}

/// What an operation on one table of a growing map came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<T> {
    /// Done in this table.
    Done(T),
    /// The key's slots in this table are taken out of use by a migration: the operation
    /// goes on in the next table (after the key's slots here are migrated).
    Moved,
}

/// Outcome of an update of one key's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Updated {
    /// The key is not in the map.
    Absent,
    /// The closure declined; the current value was copied out.
    Declined,
    /// The value was replaced; the old one was copied out.
    Done,
}

/// A slot and the identity (state without the bound) it was seen in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    slot: u64,
    identity: u64,
}

impl Seen {
    fn new(slot: u64, pair: [u64; 2]) -> Self {
        Self {
            slot,
            identity: identity(pair[0]),
        }
    }
}

/// A slot claimed for an insert.
#[derive(Clone, Copy, Debug)]
struct Claim {
    slot: u64,
    /// Slots past the key's home.
    displacement: u64,
    /// The `BUSY` state written.
    busy: u64,
    /// Word 1 written with it: the inserter's owner id.
    owner_word: u64,
}

/// What a claim found.
enum Claimed {
    Slot(Claim),
    /// No free slot within the limit.
    Full,
    /// A frozen slot on the way: the table is being migrated.
    Moved,
}

/// Result of trying to change a slot that may have been removed under the caller.
enum SlotChange {
    Done,
    Declined,
    Gone,
}

impl SlotChange {
    /// What an update that made this change answers; `None` for a slot gone meanwhile
    /// (the update looks again).
    fn updated(self) -> Option<Updated> {
        match self {
            Self::Done => Some(Updated::Done),
            Self::Declined => Some(Updated::Declined),
            Self::Gone => None,
        }
    }
}

/// Rounds a writer of a wide value waits behind one unchanged, live writer field (after
/// its backoff; each round asks whether the holder is alive and yields) before it gives up
/// with [`Error::Contended`]: seconds, far beyond any write (the holder is frozen, or the
/// table names a writer that never finishes).
const MAX_WRITER_WAIT: u32 = 1 << 20;

/// A wide value's writer field, held: `leave` publishes (or gives back) the field; if the
/// holder unwinds (or `leave` fails) first, drop gives it back, publishing the spare copy
/// if it was written to (`publish`): readers of the version before ours read that copy,
/// and only a new copy version tells them it changed.
struct WriterField<'m, S: Slots, Sh: Shape> {
    map: &'m RawMap<S, Sh>,
    slot: u64,
    /// The pair as we took the field.
    mine: [u64; 2],
    copy_version: u64,
    held: bool,
    /// The spare copy has been written to (wholly, before anything could unwind).
    publish: bool,
}

impl<S: Slots, Sh: Shape> WriterField<'_, S, Sh> {
    /// Gives the field back, publishing the next copy version if the spare copy was
    /// written to (`publish`) and the slot still holds the same member. Whether it did
    /// (false: the member was removed meanwhile).
    fn leave(&mut self) -> Result<bool> {
        let mut now = self.mine;
        for _ in 0..MAX_RETRIES {
            if now[1] != self.mine[1] {
                // Somebody took the field, judging us dead: nothing of ours to give back.
                self.held = false;
                return Ok(false);
            }
            let member = identity(now[0]) == identity(self.mine[0]);
            let version = self.copy_version + u64::from(self.publish && member);
            // SeqCst: publishes the new copy (the update's linearization point) or gives
            // the field back; a removed slot keeps its state (only aux changes).
            match self.map.pair(self.slot).compare_exchange(
                now,
                [now[0], aux(version, None)],
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.held = false;
                    return Ok(member);
                }
                // The bound moved, or the member was removed: look again.
                Err(actual) => now = actual,
            }
        }
        Err(Error::Contended("hash map value writer"))
    }
}

impl<S: Slots, Sh: Shape> Drop for WriterField<'_, S, Sh> {
    fn drop(&mut self) {
        if self.held {
            let _ = self.leave();
        }
    }
}

/// The map algorithm over some [`Slots`]: what ships and what loom checks.
#[derive(Clone, Copy, Debug)]
pub struct RawMap<S, Sh = Dynamic> {
    slots: S,
    mask: u64,
    max_probe: u64,
    shape: Sh,
    seed: u64,
}

/// The sizes of a map's keys and values in words: constants for a typed map
/// ([`Typed`]), so that its code is compiled for them (key compares and value copies
/// unrolled); run-time values for a byte map ([`Dynamic`]).
pub trait Shape: Copy {
    /// Words of a key.
    fn key_words(self) -> usize;
    /// Words of a value (1 for a set's).
    fn value_words(self) -> usize;
}

/// Key and value sizes known at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dynamic {
    key_words: usize,
    value_words: usize,
}

impl Dynamic {
    /// Keys of `key_words` words and values of `value_words`.
    pub fn new(key_words: usize, value_words: usize) -> Self {
        Self {
            key_words,
            value_words,
        }
    }
}

impl Shape for Dynamic {
    #[inline]
    fn key_words(self) -> usize {
        self.key_words
    }
    #[inline]
    fn value_words(self) -> usize {
        self.value_words
    }
}

/// The sizes of `K` and `V`, as constants.
pub struct Typed<K, V>(std::marker::PhantomData<fn() -> (K, V)>);

impl<K, V> Typed<K, V> {
    /// The shape of a map from `K` to `V`.
    pub fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<K, V> Default for Typed<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Clone for Typed<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for Typed<K, V> {}

impl<K, V> std::fmt::Debug for Typed<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Typed")
            .field("key_words", &self.key_words())
            .field("value_words", &self.value_words())
            .finish()
    }
}

impl<K, V> Shape for Typed<K, V> {
    #[inline]
    fn key_words(self) -> usize {
        crate::words::word_count::<K>()
    }
    #[inline]
    fn value_words(self) -> usize {
        crate::words::word_count::<V>()
    }
}

/// Asks the CPU to start loading the cache line at `ptr` (a hint: never faults, whatever
/// the address).
#[inline]
fn prefetch(ptr: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    // SAFETY: a prefetch is a hint that never faults or changes memory; SSE is part of
    // the x86-64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = ptr;
}

/// What a hinted walk ([`RawMap::walk_hinted`]) does at each slot whose hint matches:
/// whether to stop there. Closures are visits; `find_once`'s is a struct, whose visit the
/// compiler is made to inline (a closure's body it may leave out of line, and with it the
/// map's address and every buffer's, on every lookup's path: measured).
trait Visit {
    fn visit(&mut self, slot: u64) -> Result<bool>;
}

impl<F: FnMut(u64) -> Result<bool>> Visit for F {
    #[inline]
    fn visit(&mut self, slot: u64) -> Result<bool> {
        self(slot)
    }
}

/// `find_once`'s visit: the key and where to copy its value, and what was found.
struct FindVisit<'a, S, Sh> {
    map: &'a RawMap<S, Sh>,
    hash: u64,
    key: &'a [u64],
    value: Option<&'a mut [u64]>,
    found: Found,
}

impl<S: Slots, Sh: Shape> Visit for FindVisit<'_, S, Sh> {
    #[allow(clippy::inline_always)] // Always: part of `find_once` (see there).
    #[inline(always)]
    fn visit(&mut self, slot: u64) -> Result<bool> {
        let value = self.value.as_deref_mut();
        self.map
            .find_at(slot, self.hash, self.key, value, &mut self.found)
    }
}

impl<S: Slots> RawMap<S> {
    /// A map over `slots` for keys and values of these many words, hashing with `seed`.
    ///
    /// # Panics
    /// If the capacity is not a power of two (callers validate it first).
    #[inline]
    pub fn new(slots: S, key_words: usize, value_words: usize, seed: u64) -> Self {
        Self::with_shape(slots, Dynamic::new(key_words, value_words), seed)
    }
}

impl<S: Slots, Sh: Shape> RawMap<S, Sh> {
    /// A map over `slots` for keys and values of `shape`, hashing with `seed`.
    ///
    /// # Panics
    /// If the capacity is not a power of two (callers validate it first).
    #[inline]
    pub fn with_shape(slots: S, shape: Sh, seed: u64) -> Self {
        let capacity = slots.capacity();
        assert!(
            capacity.is_power_of_two(),
            "capacity must be a power of two"
        );
        Self {
            mask: capacity - 1,
            max_probe: capacity.min(MAX_PROBE),
            slots,
            shape,
            seed,
        }
    }

    /// Words of a key.
    #[inline]
    fn key_words(&self) -> usize {
        self.shape.key_words()
    }

    /// Words of one value copy; 1 means the value lives in the pair (no copies).
    #[inline]
    fn value_words(&self) -> usize {
        self.shape.value_words()
    }

    /// Number of slots.
    pub fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// The hash of a key (its words as bytes), the same in every process.
    #[inline]
    pub fn hash(&self, key: &[u64]) -> u64 {
        hash_key(key, self.seed)
    }

    #[inline]
    fn wide(&self) -> bool {
        self.value_words() > 1
    }

    #[inline]
    fn pair(&self, slot: u64) -> &AtomicPair {
        self.slots.pair(slot & self.mask)
    }

    #[inline]
    fn copy(&self, slot: u64, copy_version: u64) -> &[AtomicU64] {
        let start = self.key_words() + (copy_version as usize & 1) * self.value_words();
        &self.slots.data(slot & self.mask)[start..start + self.value_words()]
    }

    /// Writes `words` into the copy of `copy_version`, which no reader takes for current
    /// yet (the caller holds the writer field, or the slot is its claimed `BUSY` one).
    fn write_copy(&self, slot: u64, copy_version: u64, words: &[u64]) {
        for (cell, word) in self.copy(slot, copy_version).iter().zip(words) {
            // Relaxed: published by the compare-exchange that makes the copy current (the
            // next copy version, or the copy's `INSERTING`).
            cell.store(*word, Ordering::Relaxed);
        }
    }

    /// Where an `INSERTING` copy of a one-word value keeps the value (word 1 of the pair
    /// names the inserter until the copy is promoted).
    fn staging(&self, slot: u64) -> &AtomicU64 {
        &self.slots.data(slot & self.mask)[self.key_words()]
    }

    fn count(&self, shard: usize, delta: i64) {
        // Relaxed: a statistic; readers sum the shards without ordering.
        self.slots
            .counter(shard % COUNTER_SHARDS)
            .fetch_add(delta as u64, Ordering::Relaxed);
    }

    /// Whether the counters say the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries in the map, from the counters (see the module docs on deaths).
    pub fn len(&self) -> u64 {
        let sum = (0..COUNTER_SHARDS).fold(0i64, |sum, shard| {
            // Relaxed: a snapshot.
            sum.wrapping_add(self.slots.counter(shard).load(Ordering::Relaxed) as i64)
        });
        (sum.max(0) as u64).min(self.capacity())
    }

    /// Reads slot `slot`, seen as `seen`: compares or copies the key and copies the value
    /// (one-word values come from `seen` itself). True when everything read belongs to the
    /// incarnation `seen` shows.
    // Always: part of `find_once` (see there).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn read_slot(
        &self,
        slot: u64,
        seen: [u64; 2],
        key: KeyAccess<'_>,
        value: Option<&mut [u64]>,
    ) -> Read {
        let data = self.slots.data(slot & self.mask);
        let mut matches = true;
        match key {
            KeyAccess::Compare(key) => {
                for (cell, word) in data[..self.key_words()].iter().zip(key) {
                    // Relaxed: validated by the pair re-read below.
                    matches &= cell.load(Ordering::Relaxed) == *word;
                }
            }
            KeyAccess::Copy(out) => {
                for (cell, word) in data[..self.key_words()].iter().zip(out) {
                    // Relaxed: validated by the pair re-read below.
                    *word = cell.load(Ordering::Relaxed);
                }
            }
        }
        if let Some(out) = value {
            if self.wide() {
                for (cell, word) in self.copy(slot, aux_version(seen[1])).iter().zip(out) {
                    // Relaxed: validated by the pair re-read below.
                    *word = cell.load(Ordering::Relaxed);
                }
            } else {
                out[0] = seen[1];
            }
        }
        // Acquire fence: the loads above happen before the re-read, so a claim (whose
        // Release fence precedes the new key's stores) or a copy overwrite shows in it.
        fence(Ordering::Acquire);
        // Relaxed: ordered by the fence. A one-word value came with `seen`, so the state
        // word alone says whether the key read belongs to it (every change of the key
        // moves the version first); a wide value's copy is checked in word 1 too.
        // `seen` may come from a split load (word 1 read after word 0): a slot's identity
        // never returns to a value it left (within a version, kinds only move forward and
        // flags are only set), so an identity unchanged here was unchanged throughout,
        // and word 1 as read belongs to it as well. The wide re-read is one snapshot: its
        // word 1, read after an identity check of word 0 alone, could be a later
        // incarnation's first copy version, which `copy_still_valid` would take for ours
        // (`loom_map`'s `wide_read_across_a_rewrite_and_a_reinsert_is_never_torn`).
        let changed = if self.wide() {
            let now = self.pair(slot).load(Ordering::Relaxed);
            identity(now[0]) != identity(seen[0]) || !copy_still_valid(seen[1], now[1])
        } else {
            identity(self.pair(slot).load_first(Ordering::Relaxed)) != identity(seen[0])
        };
        if changed {
            Read::Changed
        } else if matches {
            Read::Match
        } else {
            Read::Mismatch
        }
    }

    /// Examines `slot` for `key` in the kinds of the mask `kinds` (bit `1 << kind`: see
    /// [`KEY_KINDS`]), re-reading it while it changes under
    /// the read: the pair seen when it held the key, if it did.
    // Always: part of `find_once` (see there).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn examine(
        &self,
        slot: u64,
        mut seen: [u64; 2],
        key: &[u64],
        wanted_tag: u64,
        kinds: u64,
        mut value: Option<&mut [u64]>,
    ) -> Result<Option<[u64; 2]>> {
        for _ in 0..MAX_RETRIES {
            if kinds & 1 << kind(seen[0]) == 0 || tag(seen[0]) != wanted_tag {
                return Ok(None);
            }
            match self.read_slot(slot, seen, KeyAccess::Compare(key), value.as_deref_mut()) {
                Read::Match => return Ok(Some(seen)),
                Read::Mismatch => return Ok(None),
                // SeqCst: what settle needs; as cheap as Acquire on x86-64. Split: as in
                // `find_at`.
                Read::Changed => seen = self.pair(slot).load_split(Ordering::SeqCst),
            }
        }
        Err(Error::Contended("hash map read"))
    }

    /// The `MEMBER` slot holding `key`, with its pair as read, copying out the value when
    /// `value` is given. Reads hint bytes first and a slot only where its hint matches.
    ///
    /// A pending (`INSERTING`) copy of the key is settled before the answer: no lookup
    /// reports a key absent while a copy of it may still be promoted, so an insert whose
    /// process dies after publishing its copy either took effect before the death (the
    /// copy wins whichever settle comes first) or never (it loses), and nobody sees it
    /// absent first and present later.
    ///
    /// Never `Found::Pending`.
    #[inline]
    fn find(&self, hash: u64, key: &[u64], mut value: Option<&mut [u64]>) -> Result<Found> {
        match self.find_first(hash, key, value.as_deref_mut()) {
            Some(found) => Ok(found),
            None => self.find_walked(hash, key, value),
        }
    }

    /// [`Self::find`] without its first look: for an operation whose first look was made
    /// already (see `update_first`).
    #[inline]
    fn find_walked(&self, hash: u64, key: &[u64], mut value: Option<&mut [u64]>) -> Result<Found> {
        match self.find_once(hash, key, value.as_deref_mut())? {
            Found::Pending(seen) => self.find_settled(hash, key, value, seen),
            found => Ok(found),
        }
    }

    /// One walk of `find`: the member, its absence, or a pending copy met first.
    // Always: each caller gets the walk compiled for its key and value sizes (measured:
    // out of line, one generic walk took twice the instructions of an inlined one).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn find_once(&self, hash: u64, key: &[u64], value: Option<&mut [u64]>) -> Result<Found> {
        // The key is most often in its home slot: start that line's load now, so that its
        // miss overlaps the hint group's instead of following it.
        prefetch(std::ptr::from_ref(self.pair(hash)).cast());
        let mut visit = FindVisit {
            map: self,
            hash,
            key,
            value,
            found: Found::Absent,
        };
        self.walk_hinted(hash, self.max_probe, true, &mut visit)?;
        Ok(visit.found)
    }

    /// `find_once`'s common ends in straight-line code. The first look reads the walk's
    /// first two groups of hint bytes and visits the first slot whose hint matches, as the
    /// walk does: the key a member there (read and validated as `examine` reads it); or
    /// absent, where the walk would find no other hinted slot before a never-claimed one
    /// (the visited slot held another key, or was free: most often the key's own slot,
    /// removed), or, with neither in the first 16 slots, where the home's bound (which the
    /// walk reads there) ends the walk. `None` for the rest (a pending copy, a change under
    /// the read, a second hinted slot, a longer walk): the caller walks with `find_once`.
    ///
    /// A lookup runs ~60 fewer instructions this way than through the walk's loop, and on a
    /// table larger than the cache that is what lets the processor overlap the misses of
    /// consecutive lookups (measured on 2^20 slots: see `benches/benches/map.rs`).
    // Always: each caller gets it compiled for its key and value sizes (as `find_once`).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn find_first(&self, hash: u64, key: &[u64], value: Option<&mut [u64]>) -> Option<Found> {
        self.first_look(hash, key, value, Look::Find)
    }

    /// [`Self::find_first`], for `look`'s caller. An insert ([`Look::Insert`]) takes a first
    /// hinted slot found `DELETED` for absence too, where `Absent` means "claim at once"
    /// ([`First::Absent`]): a hinted slot left `DELETED` is most often the key's own,
    /// removed (a removal keeps the hint), and the claim takes it back at once. Whether
    /// the key is elsewhere is the settle's to decide, as after any walk that found it
    /// absent and any insert of it that came just after. Past a visited slot that holds no
    /// copy of the key, only a lookup or a removal ([`Look::Find`]) looks further: an update
    /// has no use for absence, and an insert of a key found nowhere else saves less there
    /// than the code costs the insert that replaces (measured with
    /// `benches/examples/map_ops.rs`).
    #[allow(clippy::inline_always)] // Always: as `find_first`.
    #[inline(always)]
    fn first_look(
        &self,
        hash: u64,
        key: &[u64],
        value: Option<&mut [u64]>,
        look: Look,
    ) -> Option<Found> {
        let home = hash & self.mask;
        prefetch(std::ptr::from_ref(self.pair(home)).cast());
        let small = self.capacity() < 64;
        let group = if small {
            self.hint_byte_group(home)
        } else {
            self.hint_group(home)
        };
        let hint = hint_of(hash).wrapping_mul(ONES);
        // 0 is "none" for either (wrapping: the largest); only a hint before the first
        // never-claimed slot counts, as in the walk.
        let never_claimed = lowest_zero_byte(group);
        let hinted = lowest_zero_byte(group ^ hint);
        if hinted.wrapping_sub(1) < never_claimed.wrapping_sub(1) {
            let slot = (home + u64::from(hinted.trailing_zeros() / 8)) & self.mask;
            if let FirstVisit::Ends(answer) = self.first_visit(slot, hash, key, value, look) {
                return answer;
            }
            if look != Look::Find {
                return None;
            }
            return self.first_look_passed(hash, group);
        }
        if never_claimed != 0 {
            return Some(Found::Absent);
        }
        if small {
            return None;
        }
        self.first_look_next(hash, key, value, look, false)
    }

    /// [`Self::first_look`] after its visit of the home group's first hinted slot passed
    /// it (`group`: the group as read).
    #[allow(clippy::inline_always)] // Always: part of `first_look` (see there).
    #[inline(always)]
    fn first_look_passed(&self, hash: u64, group: u64) -> Option<Found> {
        let hint = hint_of(hash).wrapping_mul(ONES);
        let never_claimed = lowest_zero_byte(group);
        if another_hint(group, hint, lowest_zero_byte(group ^ hint), never_claimed) {
            return None;
        }
        if never_claimed != 0 {
            return Some(Found::Absent);
        }
        if self.capacity() < 64 {
            return None;
        }
        // A slot visited already: the look visits no other.
        self.first_look_next(hash, &[], None, Look::Member, true)
    }

    /// [`Self::first_look`] when the home's group is all claimed (with no hinted slot, or
    /// one `visited` and passed): the next group, as the walk reads it, and the home's
    /// bound after it.
    #[allow(clippy::inline_always)] // Always: part of `first_look` (see there).
    #[inline(always)]
    fn first_look_next(
        &self,
        hash: u64,
        key: &[u64],
        value: Option<&mut [u64]>,
        look: Look,
        visited: bool,
    ) -> Option<Found> {
        let home = hash & self.mask;
        let first = (home + 8) & self.mask;
        let group = self.hint_group(first);
        let hint = hint_of(hash).wrapping_mul(ONES);
        let never_claimed = lowest_zero_byte(group);
        let hinted = lowest_zero_byte(group ^ hint);
        if hinted.wrapping_sub(1) < never_claimed.wrapping_sub(1) {
            if visited {
                return None;
            }
            let slot = (first + u64::from(hinted.trailing_zeros() / 8)) & self.mask;
            if let FirstVisit::Ends(answer) = self.first_visit(slot, hash, key, value, look) {
                return answer;
            }
            if another_hint(group, hint, hinted, never_claimed) {
                return None;
            }
        }
        if never_claimed != 0 {
            return Some(Found::Absent);
        }
        (self.bound_at(home) <= HINT_ONLY_SCAN).then_some(Found::Absent)
    }

    /// The first look's visit of the first hinted slot, as the walk's (`examine`).
    #[allow(clippy::inline_always)] // Always: part of `first_look` (see there).
    #[inline(always)]
    fn first_visit(
        &self,
        slot: u64,
        hash: u64,
        key: &[u64],
        value: Option<&mut [u64]>,
        look: Look,
    ) -> FirstVisit {
        // SeqCst: as in `find_at` (split: as there).
        let seen = self.pair(slot).load_split(Ordering::SeqCst);
        let wanted = tag(seen[0]) == tag_of(hash);
        if kind(seen[0]) == MEMBER && wanted {
            return FirstVisit::Ends(
                match self.read_slot(slot, seen, KeyAccess::Compare(key), value) {
                    Read::Match => Some(Found::Member(slot, seen)),
                    Read::Mismatch | Read::Changed => None,
                },
            );
        }
        if KEY_KINDS & 1 << kind(seen[0]) != 0 && wanted {
            return FirstVisit::Ends(None); // A pending copy of the key, or its unfinished removal.
        }
        if look == Look::Insert && kind(seen[0]) == DELETED {
            return FirstVisit::Ends(Some(Found::Absent));
        }
        FirstVisit::Passes
    }

    /// The bound of the home slot `home`, at most the table's probe limit: how far the
    /// copies of keys of that home can lie (lookups read it once past [`HINT_ONLY_SCAN`]
    /// slots, settles and migrations before they scan).
    #[allow(clippy::inline_always)] // Always: part of `first_look` and of every walk.
    #[inline(always)]
    fn bound_at(&self, home: u64) -> u64 {
        // SeqCst: the bound is raised (SeqCst) before a copy is published, and its loads
        // take part in the uniqueness argument (`settle`).
        bound(self.pair(home).load_first(Ordering::SeqCst)).min(self.max_probe)
    }

    /// `find_once`'s visit of `slot`: whether it holds the key (then `found` says how).
    #[allow(clippy::inline_always)] // Always: part of `find_once` (see there).
    #[inline(always)]
    fn find_at(
        &self,
        slot: u64,
        hash: u64,
        key: &[u64],
        value: Option<&mut [u64]>,
        found: &mut Found,
    ) -> Result<bool> {
        // SeqCst (as cheap as Acquire on x86-64): pairs with the compare-exchange that
        // published the member, and orders this lookup with the hint loads. Split: the
        // words are taken together only once `read_slot` validated them.
        let seen = self.pair(slot).load_split(Ordering::SeqCst);
        let hit = self.examine(slot, seen, key, tag_of(hash), KEY_KINDS, value)?;
        *found = match hit {
            None => return Ok(false),
            Some(seen) if kind(seen[0]) == MEMBER => Found::Member(slot, seen),
            Some(seen) => Found::Pending(Seen::new(slot, seen)),
        };
        Ok(true)
    }

    /// `find` after it met a pending copy: settles the key and walks again, until a walk
    /// meets none (each further round needs another insert of the key to publish a copy).
    #[cold]
    #[inline(never)]
    fn find_settled(
        &self,
        hash: u64,
        key: &[u64],
        mut value: Option<&mut [u64]>,
        mut pending: Seen,
    ) -> Result<Found> {
        for _ in 0..MAX_RETRIES {
            // The promotion is counted in the shard of the key's home: a reader has no
            // participant slot at hand, and any shard sums the same.
            self.settle(hash, key, (hash & self.mask) as usize, Some(pending))?;
            match self.find_once(hash, key, value.as_deref_mut())? {
                Found::Pending(seen) => pending = seen,
                found => return Ok(found),
            }
        }
        Err(Error::Contended("hash map read"))
    }

    /// Calls `visit` on every slot whose hint byte is the one of `hash`, in probe order,
    /// from the key's home up to `limit` slots (with `bounded`, at most the home slot's
    /// bound once the walk passes [`HINT_ONLY_SCAN`] slots), stopping at a never-claimed
    /// slot or when `visit` returns true.
    ///
    /// Tables of 64 slots or more are walked 8 hint bytes at a time, so that which slot to
    /// read is computed, not branched on (a lookup's branches then do not depend on a load
    /// from memory, and the processor overlaps consecutive lookups); smaller ones a byte at
    /// a time, through the same loop (one call of `visit`, which the compiler then inlines:
    /// measured, a second call site left it out of line, and the map's address with it).
    // Always: part of `find_once` (see there).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn walk_hinted(
        &self,
        hash: u64,
        limit: u64,
        bounded: bool,
        visit: &mut impl Visit,
    ) -> Result<()> {
        let small = self.capacity() < 64;
        let step = if small { 1 } else { 8 };
        let home = hash & self.mask;
        let hint = hint_of(hash);
        let mut limit = limit.min(self.max_probe);
        let mut displacement = 0;
        while displacement < limit {
            let first = (home + displacement) & self.mask;
            let group = if small {
                self.hint_byte_group(first)
            } else {
                self.hint_group(first)
            };
            let zeros = zero_bytes(group);
            let mut matches = zero_bytes(group ^ hint.wrapping_mul(ONES));
            if zeros != 0 {
                // Only the bytes before the first never-claimed slot count.
                let lowest = zeros & zeros.wrapping_neg();
                matches &= (lowest >> 7).wrapping_sub(1);
            }
            while matches != 0 {
                let index = u64::from(matches.trailing_zeros() / 8);
                if displacement + index >= limit {
                    return Ok(());
                }
                if visit.visit((first + index) & self.mask)? {
                    return Ok(());
                }
                matches &= matches - 1;
            }
            if zeros != 0 {
                return Ok(());
            }
            displacement += step;
            if bounded && !small && displacement == HINT_ONLY_SCAN {
                // A long run: the home slot's bound says how far keys of this home go.
                limit = limit.min(self.bound_at(home));
            }
        }
        Ok(())
    }

    /// The hint byte of slot `first` (a table of under 64 slots) as a group of 8 whose
    /// other bytes are 0x01: never 0 (never claimed) and never a hint (hints have their
    /// top bit set), so a walk sees one slot.
    // Always: part of `find_once` (see there).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn hint_byte_group(&self, first: u64) -> u64 {
        // SeqCst: absence is read from hints (module docs); a plain load on x86-64.
        let word = self.slots.hints(first / 8).load(Ordering::SeqCst);
        (word >> (8 * (first % 8))) & 0xff | 0x0101_0101_0101_0100
    }

    /// The 8 hint bytes of slots `first..first + 8` (a capacity of at least 64 slots:
    /// whole hint words, wrapping at the end).
    // Always: part of `find_once` (see there).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn hint_group(&self, first: u64) -> u64 {
        let words = self.capacity() / 8;
        let (word, offset) = (first / 8, first % 8);
        // SeqCst: absence is read from hints (module docs); plain loads on x86-64.
        let low = self.slots.hints(word).load(Ordering::SeqCst);
        if offset == 0 {
            return low;
        }
        // SeqCst: as above. `words` is a power of two (tables of 64 slots or more): a
        // mask, not a division, wraps the index.
        debug_assert!(words.is_power_of_two());
        let high = self
            .slots
            .hints((word + 1) & (words - 1))
            .load(Ordering::SeqCst);
        low >> (8 * offset) | high << (64 - 8 * offset)
    }

    /// Sets the hint byte of `slot` to `to` if it is `from` (any value when `from` is
    /// `None`).
    fn set_hint(&self, slot: u64, from: Option<u64>, to: u64) {
        let cell = self.slots.hints(slot / 8);
        let shift = 8 * (slot % 8);
        // SeqCst: hints take part in the absence argument (module docs). The closure only
        // fails when the byte is not `from`, and then nothing is to be done.
        let _ = cell.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |word| {
            let byte = (word >> shift) & 0xff;
            if from.is_some_and(|from| from != byte) || byte == to {
                return None;
            }
            Some(word & !(0xff << shift) | to << shift)
        });
    }

    /// Copies the value of `key` into `out`; whether the key is present. Never waits.
    ///
    /// # Errors
    /// [`Error::Contended`] only if wide values keep being rewritten during the read.
    #[inline]
    pub fn get(&self, key: &[u64], out: &mut [u64]) -> Result<bool> {
        single(self.get_step(self.hash(key), key, out)?)
    }

    /// [`Self::get`] in one table of a growing map: `Done(false)` when the key is not in
    /// this table, `Moved` when its copy in the next table is where to read it.
    ///
    /// # Errors
    /// As [`Self::get`].
    #[inline]
    pub fn get_step(&self, hash: u64, key: &[u64], out: &mut [u64]) -> Result<Step<bool>> {
        Ok(match self.find(hash, key, Some(out))? {
            // Frozen but not committed: the value read is the key's (nothing changes it
            // until its copy in the next table is published).
            Found::Member(_, seen) if seen[0] & COMMITTED == 0 => Step::Done(true),
            Found::Member(..) => Step::Moved,
            _ => Step::Done(false),
        })
    }

    /// Whether `key` is present. Never waits.
    ///
    /// # Errors
    /// As [`Self::get`].
    #[inline]
    pub fn contains(&self, key: &[u64]) -> Result<bool> {
        Ok(matches!(
            self.find(self.hash(key), key, None)?,
            Found::Member(..)
        ))
    }

    /// [`Self::contains`] in one table of a growing map: a frozen member is present.
    ///
    /// # Errors
    /// As [`Self::get`].
    #[inline]
    pub fn contains_step(&self, hash: u64, key: &[u64]) -> Result<bool> {
        Ok(matches!(self.find(hash, key, None)?, Found::Member(..)))
    }

    /// Changes the kind of `slot` from what `seen` shows to `to` with word 1 `word`,
    /// following bound changes (which do not change the slot's content). A bound that keeps
    /// moving (only a hostile table's: it only grows) is reported as a change.
    fn transition(
        &self,
        slot: u64,
        mut seen: [u64; 2],
        to: u64,
        word: u64,
    ) -> Result<[u64; 2], [u64; 2]> {
        for _ in 0..MAX_RETRIES {
            let new = [with_kind(seen[0], to), word];
            // SeqCst: state changes take part in the uniqueness argument (see module docs).
            match self
                .pair(slot)
                .compare_exchange(seen, new, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Ok(new),
                Err(now) if identity(now[0]) == identity(seen[0]) && now[1] == seen[1] => {
                    seen = now; // only the bound moved
                }
                Err(now) => return Err(now),
            }
        }
        Err(seen)
    }

    /// Raises the bound of `home` to at least `needed`.
    ///
    /// # Errors
    /// [`Error::Contended`] when the home slot keeps changing (a hostile table).
    fn raise_bound(&self, home: u64, needed: u64) -> Result<()> {
        // SeqCst: settle re-reads the bound to catch copies beyond what it scanned. Split:
        // only exchanged with.
        let mut seen = self.pair(home).load_split(Ordering::SeqCst);
        for _ in 0..MAX_RETRIES {
            if bound(seen[0]) >= needed {
                return Ok(());
            }
            let new = [with_bound(seen[0], needed), seen[1]];
            match self
                .pair(home)
                .compare_exchange(seen, new, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Ok(()),
                Err(now) => seen = now,
            }
        }
        Err(Error::Contended("hash map probe bound"))
    }

    /// Whether a slot seen as `seen` may be claimed.
    fn is_free(&self, seen: [u64; 2], liveness: &impl Liveness) -> bool {
        if frozen(seen[0]) {
            return false;
        }
        match kind(seen[0]) {
            EMPTY => true,
            // A removed wide value may still have its writer copying into a spare copy.
            DELETED => !self.wide() || aux_writer(seen[1]).is_none_or(|w| !liveness.is_alive(w)),
            _ => false,
        }
    }

    /// Claims the first free slot in the probe range of `hash` (its first `limit` slots):
    /// its index, displacement and state.
    ///
    /// A claim never passes a frozen slot: a migration freezes a key's probe range in probe
    /// order before the key's operations go on in the next table, so no claim of that range
    /// can succeed behind it (see `migrate.rs`).
    // Always: an insert's steps in one frame. Out of line, each step's `Result` came back
    // through memory and the caller's wider reload of it stalled on store forwarding
    // (measured: remove+insert 157 -> 137 ns, 2050 -> 1850 instructions).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn claim(
        &self,
        hash: u64,
        grow_at: u64,
        crowded: impl Fn() -> bool,
        liveness: &impl Liveness,
    ) -> Result<Claimed> {
        let home = hash & self.mask;
        let me = liveness.me();
        for pass in 0..2 {
            for displacement in 0..self.max_probe {
                if pass == 0 && displacement == grow_at && crowded() {
                    return Ok(Claimed::Full); // the caller grows the table instead
                }
                let slot = (home + displacement) & self.mask;
                // Acquire: see the state of a slot before judging it free. Split: a
                // judgement on words that never held together fails the claim's exchange.
                let mut seen = self.pair(slot).load_split(Ordering::Acquire);
                for _ in 0..MAX_RETRIES {
                    if frozen(seen[0]) {
                        return Ok(Claimed::Moved);
                    }
                    if !self.is_free(seen, liveness) {
                        break;
                    }
                    if kind(seen[0]) == EMPTY {
                        // Before the slot can be claimed, lookups must stop taking it for
                        // the end of the probe sequence. Our key's hint at once: `publish`
                        // then finds it there (one read-modify-write, not two); should
                        // another insert claim the slot first, it writes its own before
                        // it publishes.
                        self.set_hint(slot, Some(0), hint_of(hash));
                    }
                    let busy = state(BUSY, 0, version(seen[0]) + 1, seen[0]);
                    // SeqCst: a claim is a state change (module docs); Acquire on failure
                    // to judge the slot again.
                    match self.pair(slot).compare_exchange(
                        seen,
                        [busy, u64::from(me.bits())],
                        Ordering::SeqCst,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => {
                            // Release fence: readers that see our key words see the new
                            // version first (their validation rejects them).
                            fence(Ordering::Release);
                            return Ok(Claimed::Slot(Claim {
                                slot,
                                displacement,
                                busy,
                                owner_word: u64::from(me.bits()),
                            }));
                        }
                        Err(now) => seen = now,
                    }
                }
            }
            if pass == 0 && !self.recover(home, liveness)? {
                break;
            }
        }
        Ok(Claimed::Full)
    }

    /// Frees what dead inserters hold and settles abandoned copies in the probe range of
    /// `home`; whether anything was freed.
    fn recover(&self, home: u64, liveness: &impl Liveness) -> Result<bool> {
        let mut freed = false;
        let mut key = vec![0u64; self.key_words()];
        for displacement in 0..self.max_probe {
            let slot = (home + displacement) & self.mask;
            // Acquire: to read an abandoned copy's key below.
            let seen = self.pair(slot).load(Ordering::Acquire);
            match kind(seen[0]) {
                // A slot a dead inserter was writing, or a copy of a dead inserter that
                // lost (its inserter would have freed it on seeing it lost).
                BUSY | COLLIDED => freed |= self.free_if_dead(slot, seen, liveness),
                INSERTING | REMOVING => {
                    self.settle_copy(slot, seen, &mut key, liveness.me().slot() as usize)?;
                    // Acquire: as above. A copy that lost is free once its inserter is gone
                    // (a finished removal is free at once).
                    let now = self.pair(slot).load(Ordering::Acquire);
                    freed |= self.free_if_dead(slot, now, liveness);
                }
                _ => {}
            }
        }
        Ok(freed)
    }

    /// Frees `slot` (seen as `seen`) if it is `BUSY` or `COLLIDED` and its inserter is dead;
    /// whether the slot is free now (by us or by another process). A change of the owner
    /// field alone (a participant sweep rewriting it) is judged again, not taken for a
    /// slot that went back into use.
    fn free_if_dead(&self, slot: u64, mut seen: [u64; 2], liveness: &impl Liveness) -> bool {
        for _ in 0..MAX_RETRIES {
            if !matches!(kind(seen[0]), BUSY | COLLIDED) {
                return self.is_free(seen, liveness);
            }
            if OwnerId::from_bits(seen[1] as u32).is_some_and(|owner| liveness.is_alive(owner)) {
                return false;
            }
            match self.transition(slot, seen, DELETED, 0) {
                Ok(_) => return true,
                Err(now) => seen = now,
            }
        }
        false
    }

    /// Writes key and value into a claimed slot and publishes it as `INSERTING`; returns
    /// the pair published, or `None` if a migration froze the slot first (the insert goes
    /// on in the next table).
    fn publish(
        &self,
        claim: Claim,
        hash: u64,
        key: &[u64],
        value: &[u64],
    ) -> Result<Option<[u64; 2]>> {
        self.publish_as(claim, hash, key, value, INSERTING, claim.owner_word)
    }

    /// `publish` of a copy of kind `published` (`INSERTING`, or a migration's `MOVING`)
    /// with word 1 `word`.
    // Always: as `claim`.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn publish_as(
        &self,
        claim: Claim,
        hash: u64,
        key: &[u64],
        value: &[u64],
        published: u64,
        word: u64,
    ) -> Result<Option<[u64; 2]>> {
        let Claim {
            slot,
            displacement,
            busy,
            owner_word,
        } = claim;
        let data = self.slots.data(slot);
        for (cell, word) in data[..self.key_words()].iter().zip(key) {
            // Relaxed: published by the compare-exchange to INSERTING.
            cell.store(*word, Ordering::Relaxed);
        }
        if self.wide() {
            self.write_copy(slot, 0, value);
        } else {
            // Relaxed: as above; the promotion moves it into the pair.
            self.staging(slot).store(value[0], Ordering::Relaxed);
        }
        // Before the copy can be a member, lookups must find its hint.
        self.set_hint(slot, None, hint_of(hash));
        fail::fail_point!("hash_map::insert_before_publish");
        // Before the copy can be seen as INSERTING, settles must scan far enough to see it.
        if let Err(error) = self.raise_bound(hash & self.mask, displacement + 1) {
            // A hostile table: give the slot back rather than hold it while we live.
            // Relaxed: compared by the compare-exchange.
            let seen = self.pair(slot).load(Ordering::Relaxed);
            if identity(seen[0]) == identity(busy) && seen[1] == owner_word {
                let _ = self.transition(slot, seen, DELETED, 0);
            }
            return Err(error);
        }
        // An INSERTING copy names its inserter, so a copy that lost can be told from one
        // whose inserter has yet to see it lost (only the inserter, or recovery after its
        // death, frees it).
        // Relaxed: compared by the compare-exchange.
        let mut seen = self.pair(slot).load(Ordering::Relaxed);
        for _ in 0..MAX_RETRIES {
            if identity(seen[0]) == identity(busy | FROZEN) && seen[1] == owner_word {
                return Ok(None); // a migration took the slot out of use
            }
            if identity(seen[0]) != identity(busy) || seen[1] != owner_word {
                break;
            }
            let inserting = [state(published, tag_of(hash), version(busy), seen[0]), word];
            // SeqCst: releases the key and value, and is a state change of the uniqueness
            // argument. Only the bound can move under a live inserter (raising our own
            // home's bound did): then try again with it.
            match self.pair(slot).compare_exchange(
                seen,
                inserting,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Some(inserting)),
                Err(now) => seen = now,
            }
        }
        Err(Error::corrupt(
            "hash map slot",
            format!("claimed slot {slot} changed under its inserter"),
        ))
    }

    /// Settles `key`: returns its `MEMBER` slot, promoting the earliest `INSERTING` copy if
    /// there is none and turning every other copy into `COLLIDED`; an unfinished removal
    /// of the key met on the way is finished first. `None` when the key has neither (every
    /// copy lost, or was removed).
    ///
    /// Only a walk that began after the copy it promotes was published may promote it: a
    /// walk may have passed a slot before a member of the key appeared there and meet the
    /// copy, published meanwhile, only later. So the earliest copy is promoted when it is
    /// `seen_before` (the caller saw it pending before calling) or was seen by an earlier
    /// walk of this settle; otherwise the settle walks again.
    // Always: as `claim`.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn settle(
        &self,
        hash: u64,
        key: &[u64],
        shard: usize,
        mut seen_before: Option<Seen>,
    ) -> Result<Option<(u64, [u64; 2])>> {
        let home = hash & self.mask;
        let wanted = tag_of(hash);
        for _ in 0..MAX_RETRIES {
            // The loads of the uniqueness argument are SeqCst (hints included: a copy's hint
            // is written before it is published, so a settle that reads the hint after the
            // copy became INSERTING sees it).
            let limit = self.bound_at(home);
            let mut member = None;
            let mut removing = None;
            let mut earliest = None;
            let mut lost_race = false;
            self.walk_hinted(hash, limit, false, &mut |slot| {
                // SeqCst: as above. Split: `examine` validates (as in `find_at`).
                let seen = self.pair(slot).load_split(Ordering::SeqCst);
                let Some(seen) = self.examine(slot, seen, key, wanted, KEY_KINDS, None)? else {
                    return Ok(false);
                };
                match kind(seen[0]) {
                    MEMBER => _ = member.get_or_insert((slot, seen)),
                    REMOVING => _ = removing.get_or_insert((slot, seen)),
                    // A later copy, or one beside a member: it can never win.
                    _ if member.is_some() || earliest.is_some() => {
                        if self.transition(slot, seen, COLLIDED, seen[1]).is_err() {
                            lost_race = true;
                            return Ok(true);
                        }
                    }
                    _ => earliest = Some((slot, seen)),
                }
                Ok(false)
            })?;
            if lost_race {
                continue;
            }
            if let Some((slot, seen)) = removing {
                // Copies published before that removal must lose first; then look again.
                self.finish_removal(hash, key, slot, seen)?;
                continue;
            }
            // A bound raised during the scan may hide a copy beyond what we scanned.
            if self.bound_at(home) > limit {
                continue;
            }
            match (member, earliest) {
                (Some(member), earliest) => {
                    if let Some((slot, seen)) = earliest {
                        if self.transition(slot, seen, COLLIDED, seen[1]).is_err() {
                            continue;
                        }
                    }
                    return Ok(Some(member));
                }
                (None, Some((slot, seen))) => {
                    let copy = Seen::new(slot, seen);
                    if seen_before != Some(copy) {
                        // Published after this walk began, perhaps: walk again.
                        seen_before = Some(copy);
                        continue;
                    }
                    let word = if self.wide() {
                        aux(0, None)
                    } else {
                        // Relaxed: written before the copy was published (SeqCst), which
                        // our SeqCst load of the pair read.
                        self.staging(slot).load(Ordering::Relaxed)
                    };
                    if let Ok(now) = self.transition(slot, seen, MEMBER, word) {
                        fail::fail_point!("hash_map::promote_before_count");
                        self.count(shard, 1);
                        return Ok(Some((slot, now)));
                    }
                }
                (None, None) => return Ok(None),
            }
        }
        Err(Error::Contended("hash map settle"))
    }

    /// Finishes the removal of `key` from `slot` (seen `REMOVING` as `seen`): every copy of
    /// the key still `INSERTING` loses (`COLLIDED`), then the slot becomes `DELETED`. The
    /// removal took effect at `MEMBER` -> `REMOVING`; a copy published before then came while
    /// the key was a member, so it must never be promoted once the member is gone. This
    /// walk starts after `seen` was read, so it reads every such copy (the copies published
    /// since may lose too: their live inserters publish again). Anyone may finish a
    /// removal: its remover, or any operation that meets it after the remover's death.
    // Always: as `claim` (a removal's steps).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn finish_removal(&self, hash: u64, key: &[u64], slot: u64, mut seen: [u64; 2]) -> Result<()> {
        let home = hash & self.mask;
        let wanted = tag_of(hash);
        for _ in 0..MAX_RETRIES {
            let limit = self.bound_at(home);
            let mut lost_race = false;
            self.walk_hinted(hash, limit, false, &mut |copy| {
                // SeqCst: as in `settle` (split, as there).
                let now = self.pair(copy).load_split(Ordering::SeqCst);
                let Some(now) = self.examine(copy, now, key, wanted, 1 << INSERTING, None)? else {
                    return Ok(false);
                };
                lost_race = self.transition(copy, now, COLLIDED, now[1]).is_err();
                Ok(lost_race)
            })?;
            let raised = self.bound_at(home) > limit;
            if !lost_race && !raised {
                match self.transition(slot, seen, DELETED, seen[1]) {
                    // A wide value's writer left meanwhile (word 1 moved): again.
                    Err(now) if identity(now[0]) == identity(seen[0]) => seen = now,
                    // Done, by us or by another process.
                    _ => return Ok(()),
                }
            }
        }
        Err(Error::Contended("hash map remove"))
    }

    /// Inserts `key` with `value`. With `replace`, an existing value is replaced; without,
    /// it is left alone. Either way the value found is copied into `old`; returns whether
    /// there was one.
    ///
    /// # Errors
    /// [`Error::Full`] when no slot is free within [`MAX_PROBE`] slots of the key's home
    /// (the whole table below 4096 slots); [`Error::Contended`] on a hostile table.
    pub fn insert(
        &self,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        liveness: &impl Liveness,
    ) -> Result<bool> {
        let hash = self.hash(key);
        let absent = match self.insert_first(hash, key, value, replace, old, liveness) {
            First::Done(done) => return done,
            First::Absent => true,
            First::Walk => false,
        };
        single(self.insert_step(
            hash,
            key,
            value,
            replace,
            old,
            u64::MAX,
            || false,
            absent,
            liveness,
        )?)
    }

    /// [`Self::insert`] in one table of a growing map: a claim that finds no free slot
    /// within `grow_at` slots of the key's home asks `crowded` once, and if it says so
    /// gives up with [`Error::Full`] (the caller grows the table) instead of walking on.
    /// `absent`: the caller found the key absent just before (its first look), so the
    /// first round claims without looking for the key (a walk before the claim only saves
    /// the claim of a key present; the settle after it decides).
    ///
    /// # Errors
    /// As [`Self::insert`], boxed: the answer is 16 bytes and comes back in registers (an
    /// 80-byte `Result` came back through memory, and its caller's wider reload of it
    /// stalled on store forwarding: measured with `benches/examples/map_ops.rs`).
    #[allow(clippy::too_many_arguments, clippy::inline_always)]
    // Always: in each caller's frame (each is out of line already: a never-grown map's
    // `insert_after_first`, a grown map's walk, the growth's). As a call, its caller
    // built the table in memory to lend it and passed its arguments through the stack
    // (measured with `map_ops`, with `GrowingMap::remove_boxed` inline too: a remove and
    // an insert 1,462 -> 1,383 instructions, 246 -> 220 stack stores).
    #[inline(always)]
    pub fn insert_step(
        &self,
        hash: u64,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        grow_at: u64,
        crowded: impl Fn() -> bool,
        mut absent: bool,
        liveness: &impl Liveness,
    ) -> std::result::Result<Step<bool>, Box<Error>> {
        for _ in 0..MAX_RETRIES {
            let found = if std::mem::take(&mut absent) {
                Found::Absent
            } else {
                self.find_walked(hash, key, None)?
            };
            match found {
                Found::Member(_, seen) if frozen(seen[0]) => return Ok(Step::Moved),
                Found::Member(slot, seen) => {
                    if self.apply_insert(slot, seen, value, replace, old, liveness)? {
                        return Ok(Step::Done(true));
                    }
                    continue; // removed or frozen under us: start over
                }
                _ => {}
            }
            let claim = match self.claim(hash, grow_at, &crowded, liveness)? {
                Claimed::Slot(claim) => claim,
                Claimed::Moved => return Ok(Step::Moved),
                Claimed::Full => {
                    return Err(Box::new(Error::Full {
                        capacity: self.capacity(),
                    }))
                }
            };
            fail::fail_point!("hash_map::insert_after_claim");
            let slot = claim.slot;
            let Some(mine) = self.publish(claim, hash, key, value)? else {
                return Ok(Step::Moved);
            };
            fail::fail_point!("hash_map::insert_before_settle");
            // Our copy was published before the settle: it may be promoted at once.
            let published = Some(Seen::new(slot, mine));
            let winner = self.settle(hash, key, liveness.me().slot() as usize, published)?;
            // Our own copy says whether this insert took effect. A settle that answers with
            // it as the member (at its version: promoted, by us or another settle) says so
            // already; any other answer may be stale (another settle may have promoted or
            // killed our copy since), so the copy is read again.
            if winner.is_some_and(|(won, seen)| won == slot && version(seen[0]) == version(mine[0]))
                || self.copy_won(slot, mine)?
            {
                return Ok(Step::Done(false));
            }
            if let Some((winner, seen)) = winner {
                if self.apply_insert(winner, seen, value, replace, old, liveness)? {
                    return Ok(Step::Done(true));
                }
            }
        }
        Err(Box::new(Error::Contended("hash map insert")))
    }

    /// After its settle: whether the insert's own copy (published as `mine`) was promoted.
    /// A copy that lost is freed here; one still `INSERTING` is made to lose first. A lost
    /// copy stays `COLLIDED` (not reusable) until its inserter, here, has seen it, so a
    /// changed version means the copy was promoted, removed and reused.
    // Always: as `claim`.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn copy_won(&self, slot: u64, mine: [u64; 2]) -> Result<bool> {
        for _ in 0..MAX_RETRIES {
            // SeqCst: reads the outcome of the state changes of the uniqueness argument.
            let now = self.pair(slot).load(Ordering::SeqCst);
            if version(now[0]) != version(mine[0]) {
                return Ok(true);
            }
            match kind(now[0]) {
                MEMBER | REMOVING | DELETED => return Ok(true),
                COLLIDED => {
                    if self.transition(slot, now, DELETED, 0).is_ok() {
                        return Ok(false);
                    }
                }
                INSERTING => {
                    // The settle found another member (or lost a race): ours must lose.
                    let _ = self.transition(slot, now, COLLIDED, now[1]);
                }
                _ => break,
            }
        }
        Err(Error::corrupt(
            "hash map slot",
            format!("slot {slot} left the states an insert's copy can be in"),
        ))
    }

    /// Applies an insert to the existing member `slot`; false if it was removed first.
    // Always: the first look's path (`insert_first`; out of line, its call took ~100
    // instructions more: measured).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn apply_insert(
        &self,
        slot: u64,
        seen: [u64; 2],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        liveness: &impl Liveness,
    ) -> Result<bool> {
        if frozen(seen[0]) {
            return Ok(false); // migrated: the caller looks again
        }
        if !replace {
            if self.wide() {
                // `old` must hold the value of this very member.
                return Ok(
                    self.read_slot(slot, seen, KeyAccess::Copy(&mut []), Some(old)) == Read::Match,
                );
            }
            old[0] = seen[1];
            return Ok(true);
        }
        let change = self.change(slot, seen, liveness, &mut |current, new| {
            old.copy_from_slice(current);
            new.copy_from_slice(value);
            true
        })?;
        Ok(matches!(change, SlotChange::Done))
    }

    /// Runs `f(current, new)` on the value of member `slot` (seen as `seen`) until its
    /// result is stored or `f` declines.
    // Always: the compare-exchange of every replacing insert and update, in its caller's
    // frame (out of line, its `Result` came back through memory, and the caller's wider
    // reload of it stalled on store forwarding: measured with `map_ops`).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn change(
        &self,
        slot: u64,
        seen: [u64; 2],
        liveness: &impl Liveness,
        f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<SlotChange> {
        if frozen(seen[0]) {
            return Ok(SlotChange::Gone); // migrated: the caller looks again
        }
        if self.wide() {
            return self.change_wide(slot, seen, liveness, f);
        }
        let mut seen = seen;
        let mut new = [0u64];
        for _ in 0..MAX_RETRIES {
            if !f(&[seen[1]], &mut new) {
                return Ok(SlotChange::Declined);
            }
            // SeqCst: the update's linearization point; also orders it with state changes.
            match self.pair(slot).compare_exchange(
                seen,
                [seen[0], new[0]],
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(SlotChange::Done),
                Err(now) if identity(now[0]) == identity(seen[0]) => seen = now,
                Err(_) => return Ok(SlotChange::Gone),
            }
        }
        Err(Error::Contended("hash map update"))
    }

    fn change_wide(
        &self,
        slot: u64,
        first: [u64; 2],
        liveness: &impl Liveness,
        f: &mut dyn FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<SlotChange> {
        // On the stack for values of up to 512 bytes: an update allocates nothing.
        crate::words::with_buffer(self.value_words(), |current| {
            crate::words::with_buffer(self.value_words(), |new| {
                self.change_wide_with(slot, first, liveness, f, (current, new))
            })
        })
    }

    /// `change_wide` with buffers for the current and the new value.
    fn change_wide_with(
        &self,
        slot: u64,
        first: [u64; 2],
        liveness: &impl Liveness,
        f: &mut dyn FnMut(&[u64], &mut [u64]) -> bool,
        (current, new): (&mut [u64], &mut [u64]),
    ) -> Result<SlotChange> {
        let me = liveness.me();
        let backoff = Backoff::new();
        // Rounds spent behind one unchanged writer field, once backing off is done.
        let mut stuck = 0u32;
        let mut last = first;
        // Every round: a pair that changes for ever (a hostile table) ends too.
        let mut rounds = 0u32;
        let (seen, mine) = loop {
            rounds += 1;
            if rounds > MAX_WRITER_WAIT + MAX_RETRIES {
                return Err(Error::Contended("hash map value writer"));
            }
            // Acquire: see the last writer's copy before we overwrite the other one. Split:
            // the writer field is taken by exchanging with it, and waiting on a writer
            // seen in a torn read only looks again.
            let seen = self.pair(slot).load_split(Ordering::Acquire);
            if identity(seen[0]) != identity(first[0]) {
                return Ok(SlotChange::Gone);
            }
            if seen != last {
                (last, stuck) = (seen, 0);
            }
            if let Some(writer) = aux_writer(seen[1]) {
                // Writers of one key wait for a live writer; a dead one's claim is taken.
                if writer == me || !backoff.is_completed() || liveness.is_alive(writer) {
                    if backoff.is_completed() {
                        stuck += 1;
                        if stuck > MAX_WRITER_WAIT {
                            return Err(Error::Contended("hash map value writer"));
                        }
                        #[cfg(not(loom))]
                        std::thread::yield_now();
                    }
                    backoff.snooze();
                    continue;
                }
            }
            let mine = [seen[0], aux(aux_version(seen[1]), Some(me))];
            // SeqCst: takes the writer field; Acquire on failure to look again.
            if self
                .pair(slot)
                .compare_exchange(seen, mine, Ordering::SeqCst, Ordering::Acquire)
                .is_ok()
            {
                break (seen, mine);
            }
        };
        // Release fence: readers that see our copy words also see our writer field.
        fence(Ordering::Release);
        let copy_version = aux_version(seen[1]);
        // If `f` panics, the writer field is given back: at this copy version while the
        // spare copy is untouched, else with the spare copy published (see `WriterField`).
        let mut held = WriterField {
            map: self,
            slot,
            mine,
            copy_version,
            held: true,
            publish: false,
        };
        for (word, cell) in current.iter_mut().zip(self.copy(slot, copy_version)) {
            // Relaxed: this copy is stable while we hold the writer field.
            *word = cell.load(Ordering::Relaxed);
        }
        // A field taken from a dead writer: it may have written part of the spare copy,
        // which is the copy readers of the version before this one read. Giving the field
        // back at this version would tell them their copy is still whole
        // (`copy_still_valid`), so the spare copy is made whole first (the current value)
        // and published whatever `f` does.
        if aux_writer(seen[1]).is_some() {
            self.write_copy(slot, copy_version + 1, current);
            held.publish = true;
        }
        let write = f(current, new);
        if write {
            held.publish = true;
            self.write_copy(slot, copy_version + 1, new);
            fail::fail_point!("hash_map::update_before_publish");
        }
        match held.leave()? {
            false => Ok(SlotChange::Gone),
            true if write => Ok(SlotChange::Done),
            true => Ok(SlotChange::Declined),
        }
    }

    /// Runs `f(current, new)` on the value of `key` until its result is stored (`Done`) or
    /// it declines (`Declined`); the value seen last is copied into `old` (unless `old` is
    /// empty).
    ///
    /// # Errors
    /// [`Error::Contended`] on a hostile table.
    #[inline]
    pub fn update(
        &self,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
        mut f: impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<Updated> {
        let hash = self.hash(key);
        if let Some(updated) = self.update_first(hash, key, old, liveness, &mut f) {
            return updated;
        }
        single(self.update_step(hash, key, old, liveness, f)?)
    }

    /// [`Self::update`] in one table of a growing map (`Absent`: not in this table).
    ///
    /// # Errors
    /// As [`Self::update`].
    #[inline]
    pub fn update_step(
        &self,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
        mut f: impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<Step<Updated>> {
        for _ in 0..MAX_RETRIES {
            let (slot, seen) = match self.find_walked(hash, key, None)? {
                Found::Member(_, seen) if frozen(seen[0]) => return Ok(Step::Moved),
                Found::Member(slot, seen) => (slot, seen),
                _ => return Ok(Step::Done(Updated::Absent)),
            };
            if let Some(updated) = self
                .update_member(slot, seen, old, liveness, &mut f)?
                .updated()
            {
                return Ok(Step::Done(updated));
            }
        }
        Err(Error::Contended("hash map update"))
    }

    /// [`Self::update_step`] when the first slot its walk would visit is the key's member
    /// ([`Self::find_first`]) and `change` applies to it there; `None` when it does not (no
    /// such member, or `change` found it frozen or gone): the caller takes `update_step`'s
    /// way (after which `f` may have run, as it may run again on any retry).
    #[allow(clippy::inline_always)] // Always: the first look of every update (see `find_first`).
    #[inline(always)]
    pub(crate) fn update_first(
        &self,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
        f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Option<Result<Updated>> {
        let Found::Member(slot, seen) = self.first_look(hash, key, None, Look::Member)? else {
            return None;
        };
        self.update_member(slot, seen, old, liveness, f)
            .map(SlotChange::updated)
            .transpose()
    }

    /// An update's `change` of the member `slot` (seen as `seen`), the value it saw last
    /// copied into `old`.
    #[allow(clippy::inline_always)] // Always: part of `update_first` (see there).
    #[inline(always)]
    fn update_member(
        &self,
        slot: u64,
        seen: [u64; 2],
        old: &mut [u64],
        liveness: &impl Liveness,
        f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<SlotChange> {
        let mut wrap = |current: &[u64], new: &mut [u64]| {
            // An empty `old`: the caller wants no copy (`f` sees `current`).
            if !old.is_empty() {
                old.copy_from_slice(current);
            }
            f(current, new)
        };
        self.change(slot, seen, liveness, &mut wrap)
    }

    /// [`Self::insert_step`] for a key whose member is the first slot its walk would visit
    /// ([`Self::find_first`]): its value replaced, or for `replace == false` read, there, as
    /// `insert_step` does it (`apply_insert`); [`First::Absent`] when the first look finds
    /// the key absent, [`First::Walk`] when it does not answer.
    #[allow(clippy::inline_always)] // Always: as `update_first`.
    #[inline(always)]
    pub(crate) fn insert_first(
        &self,
        hash: u64,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        liveness: &impl Liveness,
    ) -> First<Result<bool>> {
        let (slot, seen) = match self.first_look(hash, key, None, Look::Insert) {
            Some(Found::Member(slot, seen)) => (slot, seen),
            Some(Found::Absent) => return First::Absent,
            Some(Found::Pending(_)) | None => return First::Walk,
        };
        match self.apply_insert(slot, seen, value, replace, old, liveness) {
            Ok(true) => First::Done(Ok(true)),
            // Not applied (removed or frozen meanwhile): the caller looks again.
            Ok(false) => First::Walk,
            Err(error) => First::Done(Err(error)),
        }
    }

    /// Removes `key`, copying its value into `old`; whether it was present.
    ///
    /// # Errors
    /// [`Error::Contended`] on a hostile table.
    pub fn remove(&self, key: &[u64], old: &mut [u64], liveness: &impl Liveness) -> Result<bool> {
        single(self.remove_step(self.hash(key), key, old, liveness)?)
    }

    /// [`Self::remove`] in one table of a growing map (`Done(false)`: not in this table).
    ///
    /// # Errors
    /// As [`Self::remove`].
    // Always: a removal in its caller's frame (see `claim`).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub fn remove_step(
        &self,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        liveness: &impl Liveness,
    ) -> Result<Step<bool>> {
        for _ in 0..MAX_RETRIES {
            let (slot, seen) = match self.find(hash, key, Some(&mut *old))? {
                Found::Member(_, seen) if frozen(seen[0]) => return Ok(Step::Moved),
                Found::Member(slot, seen) => (slot, seen),
                _ => return Ok(Step::Done(false)),
            };
            // The value copied belongs to `seen`; the compare-exchange succeeds only if
            // nothing changed since (a wide copy is only rewritten after aux moves).
            if let Ok(removing) = self.transition(slot, seen, REMOVING, seen[1]) {
                fail::fail_point!("hash_map::remove_before_count");
                self.count(liveness.me().slot() as usize, -1);
                fail::fail_point!("hash_map::remove_before_finish");
                // The removal is done; an error here (a hostile table) leaves finishing it
                // to the next operation on the key.
                let _ = self.finish_removal(hash, key, slot, removing);
                return Ok(Step::Done(true));
            }
        }
        Err(Error::Contended("hash map remove"))
    }

    /// Settles the key of the pending copy or unfinished removal in `slot` (seen
    /// `INSERTING` or `REMOVING` as `seen`), reading the key into `key`; nothing if the slot
    /// changed meanwhile. Counts a promotion in `shard`. Whether the key was settled.
    fn settle_copy(
        &self,
        slot: u64,
        seen: [u64; 2],
        key: &mut [u64],
        shard: usize,
    ) -> Result<bool> {
        if self.read_slot(slot, seen, KeyAccess::Copy(key), None) != Read::Match {
            return Ok(false);
        }
        self.settle(self.hash(key), key, shard, Some(Seen::new(slot, seen)))?;
        Ok(true)
    }

    /// Reads slot `slot` as an iteration does: if it holds a member, its key and value;
    /// a pending copy found there is settled first, so an iteration never passes over an
    /// insert that could still take effect after it (see the module docs on settling).
    ///
    /// # Errors
    /// [`Error::Contended`] on a hostile table; [`Error::Corrupt`] for a pending copy that
    /// its key's settle does not reach (a table no process wrote).
    pub fn read_entry(&self, slot: u64, key: &mut [u64], value: &mut [u64]) -> Result<bool> {
        let mut settled = None;
        for _ in 0..MAX_RETRIES {
            // SeqCst: as in `find` (a pending copy is settled with SeqCst loads).
            let seen = self.pair(slot).load(Ordering::SeqCst);
            match kind(seen[0]) {
                // A committed member's value is in its copy in the next table.
                MEMBER if seen[0] & COMMITTED != 0 => return Ok(false),
                MEMBER => {
                    if self.read_slot(slot, seen, KeyAccess::Copy(key), Some(value)) == Read::Match
                    {
                        return Ok(true);
                    }
                }
                INSERTING => {
                    // A settle resolves every copy in its key's probe range, this one too:
                    // the same copy still pending after it is not a table we wrote.
                    if settled == Some(identity(seen[0])) {
                        return Err(Error::corrupt(
                            "hash map slot",
                            format!(
                                "pending copy in slot {slot} lies outside its key's probe range"
                            ),
                        ));
                    }
                    // Only a settle that ran counts (the slot may have changed under the
                    // key's read: a sweep rewriting the inserter's id, for one).
                    if self.settle_copy(slot, seen, key, slot as usize)? {
                        settled = Some(identity(seen[0]));
                    }
                }
                _ => return Ok(false),
            }
        }
        Err(Error::Contended("hash map read"))
    }

    /// Reads slot `slot` if it holds a member: its key and value, without settling a
    /// pending copy (for checks, which must not write). Weakly consistent.
    ///
    /// # Errors
    /// [`Error::Contended`] on a hostile table.
    pub fn read_member(&self, slot: u64, key: &mut [u64], value: &mut [u64]) -> Result<bool> {
        for _ in 0..MAX_RETRIES {
            // Acquire: pairs with the publication of the member.
            let seen = self.pair(slot).load(Ordering::Acquire);
            if kind(seen[0]) != MEMBER || seen[0] & COMMITTED != 0 {
                return Ok(false); // a committed member is read in the next table
            }
            if self.read_slot(slot, seen, KeyAccess::Copy(key), Some(value)) == Read::Match {
                return Ok(true);
            }
        }
        Err(Error::Contended("hash map read"))
    }

    /// Removes every member, one by one (not atomic as a whole).
    pub fn clear(&self, liveness: &impl Liveness) {
        let shard = liveness.me().slot() as usize;
        let mut key = vec![0u64; self.key_words()];
        for slot in 0..self.capacity() {
            // Acquire: as in read_member.
            let mut seen = self.pair(slot).load(Ordering::Acquire);
            if matches!(kind(seen[0]), INSERTING | REMOVING) {
                // A pending insert is settled first, as by any other operation: it must not
                // survive a clear that passed it and become visible afterwards; an
                // unfinished removal is finished. (A hostile table's error leaves the slot
                // as it is.)
                let _ = self.settle_copy(slot, seen, &mut key, shard);
                // SeqCst: as in `read_entry`.
                seen = self.pair(slot).load(Ordering::SeqCst);
            }
            if kind(seen[0]) != MEMBER || frozen(seen[0]) {
                continue; // a frozen member lives on in the next table
            }
            // Removed as by `remove`: late copies of the key lose before the slot is free.
            if let Ok(removing) = self.transition(slot, seen, REMOVING, seen[1]) {
                self.count(shard, -1);
                let _ = self.settle_copy(slot, removing, &mut key, shard);
            }
        }
    }

    /// Recounts the members and resets the len counters to that count. Only exact while
    /// no other process changes the map.
    pub fn recount(&self) -> u64 {
        let members = (0..self.capacity())
            // Relaxed: a census; the caller keeps the map quiet.
            .filter(|&slot| kind(self.pair(slot).load_first(Ordering::Relaxed)) == MEMBER)
            .count() as u64;
        for shard in 0..COUNTER_SHARDS {
            // Relaxed: as above.
            self.slots
                .counter(shard)
                .store(if shard == 0 { members } else { 0 }, Ordering::Relaxed);
        }
        members
    }

    /// Census of slot kinds for checks: (members, inserting, busy, deleted, collided or
    /// removing, invalid).
    pub fn census(&self) -> [u64; 5] {
        let mut counts = [0; 5];
        for slot in 0..self.capacity() {
            // Relaxed: a snapshot.
            let state = self.pair(slot).load_first(Ordering::Relaxed);
            let (k, committed) = (kind(state), state & COMMITTED != 0);
            let impossible = (frozen(state) && matches!(k, INSERTING | REMOVING))
                || (committed && !(frozen(state) && k == MEMBER))
                || (state & ARRIVED != 0 && !matches!(k, MEMBER | REMOVING | DELETED));
            let index = match k {
                _ if impossible => 4,
                MEMBER if !committed => 0,
                INSERTING => 1,
                BUSY | MOVING => 2,
                MEMBER | DELETED | COLLIDED | REMOVING => 3,
                EMPTY => continue,
                _ => 4,
            };
            counts[index] += 1;
        }
        counts
    }

    /// Member slots whose hint byte does not show their key's tag (must be none).
    pub fn hint_mismatches(&self) -> u64 {
        let mut key = vec![0u64; self.key_words()];
        let mut value = vec![0u64; self.value_words().max(1)];
        (0..self.capacity())
            .filter(|&slot| {
                // Relaxed: a snapshot; a slot that changes meanwhile is skipped.
                let word = self.slots.hints(slot / 8).load(Ordering::Relaxed);
                let byte = (word >> (8 * (slot % 8))) & 0xff;
                self.read_member(slot, &mut key, &mut value)
                    .unwrap_or(false)
                    && byte != hint_of(self.hash(&key))
                    && self
                        .read_member(slot, &mut key, &mut value)
                        .unwrap_or(false)
                    && {
                        // Relaxed: as above.
                        let again = self.slots.hints(slot / 8).load(Ordering::Relaxed);
                        (again >> (8 * (slot % 8))) & 0xff != hint_of(self.hash(&key))
                    }
            })
            .count() as u64
    }

    /// Rewrites every owner field naming an owner of participant slot `owner_slot` to
    /// [`OwnerId::DEAD`] (a sweep of the retired slot: see `crate::sweep`): the inserter
    /// of a `BUSY`, `INSERTING` or `COLLIDED` slot, the writer field of a wide value, the
    /// claimant of the next table and the maker of a block recorded for it. All
    /// such owners are dead; what they left is recovered as before.
    ///
    /// # Errors
    /// [`Error::Contended`] if a slot keeps changing (a hostile table).
    pub fn retire_owner_slot(&self, owner_slot: u32) -> Result<()> {
        let names_it = |owner: Option<OwnerId>| owner.is_some_and(|o| o.slot() == owner_slot);
        for slot in 0..self.capacity() {
            // Acquire: judge the slot as its last writer left it.
            let mut seen = self.pair(slot).load(Ordering::Acquire);
            for attempt in 0.. {
                let dead = match kind(seen[0]) {
                    BUSY | INSERTING | COLLIDED if names_it(OwnerId::from_bits(seen[1] as u32)) => {
                        u64::from(OwnerId::DEAD.bits())
                    }
                    // A migration's copy: the mover in the low half, the source above.
                    MOVING if names_it(OwnerId::from_bits(seen[1] as u32)) => {
                        seen[1] & !0xffff_ffff | u64::from(OwnerId::DEAD.bits())
                    }
                    // A committed member's word 1 names its copy, not a writer.
                    MEMBER if seen[0] & COMMITTED != 0 => break,
                    MEMBER | REMOVING | DELETED if self.wide() && names_it(aux_writer(seen[1])) => {
                        aux(aux_version(seen[1]), Some(OwnerId::DEAD))
                    }
                    _ => break,
                };
                if attempt == MAX_RETRIES {
                    return Err(Error::Contended("hash map slot during a participant sweep"));
                }
                // SeqCst: a change of word 1 like the owners' own (module docs).
                match self.pair(slot).compare_exchange(
                    seen,
                    [seen[0], dead],
                    Ordering::SeqCst,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(now) => seen = now,
                }
            }
        }
        // A claim to make the next table ([`grow::GROWING`]) names its claimant.
        shmarena_engine::liveness::retire_owner_field(
            self.header(migrate::NEXT),
            0,
            owner_slot,
            |next| grow::claim_owner_bits(next).is_some(),
        )?;
        // So does a record of a block taken for it (its owner in the high half).
        for word in migrate::MADE {
            shmarena_engine::liveness::retire_owner_field(
                self.header(word),
                32,
                owner_slot,
                |record| record != 0,
            )?;
        }
        Ok(())
    }

    /// Busy slots whose inserter is dead (freed when an insert needs room).
    pub fn dead_busy(&self, liveness: &impl Liveness) -> u64 {
        (0..self.capacity())
            .filter(|&slot| {
                // Relaxed: a snapshot.
                let seen = self.pair(slot).load(Ordering::Relaxed);
                kind(seen[0]) == BUSY
                    && OwnerId::from_bits(seen[1] as u32).is_none_or(|o| !liveness.is_alive(o))
            })
            .count() as u64
    }
}

#[cfg(not(loom))]
pub use handle::{ByteMap, ByteSet, HashMap, HashSet};

#[cfg(not(loom))]
mod handle {
    use super::grow::{
        clear_made, give_back_records, record_made, root_generation, root_id, GrowingMap, Tables,
        MAX_CAPACITY, ROOT_ID_BITS,
    };
    use super::{
        header_words, hint_words, migrate, table_words, First, Shape, Slots, Typed, Updated,
        COUNTER_SHARDS, FIRST_TABLE_OFFSET, ROOT_OFFSET,
    };
    use crate::identity::{name_expected, short_type_name, ElementType};
    use crate::words::{
        check_fits, fixed_words, from_words, read_bytes_into, read_words_into, try_read_words_into,
        with_buffer, with_bytes_as_words, with_words_of, word_count,
    };
    use bytemuck::Pod;
    use shmarena_engine::sync::{AtomicPair, AtomicU64, Ordering};
    use shmarena_engine::{
        Error, GracePin, Liveness, Object, ObjectKind, OwnerId, Region, Result, TypeDescriptor,
    };
    use std::marker::PhantomData;
    use std::ptr::NonNull;

    /// Largest key, in bytes.
    pub const MAX_KEY_SIZE: usize = 4096;
    /// Largest value, in bytes.
    pub const MAX_VALUE_SIZE: usize = 65535;

    /// Words of one slot: the pair, the key, then two copies of a wide value or the
    /// staging word of a one-word value; even, so every pair is 16-byte aligned.
    pub(crate) fn slot_words(key_size: u64, value_size: u64) -> u64 {
        let key = crate::words::word_count_of(key_size);
        let value = crate::words::word_count_of(value_size);
        let words = 2 + key + if value > 1 { 2 * value } else { 1 };
        words.next_multiple_of(2)
    }

    /// One table of a map in the mapping: the first, in the map's body, or a later one in
    /// two arena blocks (header and hints in one, the slots in another, so that a table of
    /// slots whose size is a power of two fills its block).
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct MappedSlots {
        /// The table's hint words (its header lies just before them).
        hints: NonNull<AtomicU64>,
        /// The table's slot 0.
        slots: NonNull<AtomicU64>,
        /// The map's len counters (in its body).
        counters: NonNull<AtomicU64>,
        // Narrow fields: a handle's operation copies this struct (and a table's algorithm
        // around it) onto the stack, and stores held up behind a lookup's cache misses
        // limit how many lookups overlap (measured: two more words halved large tables).
        /// Words from the table's header to its hints.
        header_words: u32,
        slot_words: u16,
        capacity_log2: u8,
    }

    /// Checks a table's capacity.
    fn checked_capacity(capacity: u64, offset: u64) -> Result<u64> {
        if !capacity.is_power_of_two() || capacity > MAX_CAPACITY {
            return Err(Error::corrupt(
                "hash map table",
                format!("capacity {capacity} at offset {offset}"),
            ));
        }
        Ok(capacity)
    }

    /// Words of a table's header and hints (its first block).
    pub(crate) fn meta_words(capacity: u64) -> u64 {
        header_words(capacity) + hint_words(capacity)
    }

    impl MappedSlots {
        /// The first table of a map object, after checking that it lies in its body.
        pub(crate) fn first(object: &Object, key_size: u64, value_size: u64) -> Result<Self> {
            let capacity = checked_capacity(object.info().descriptor.capacity, 0)?;
            let slot_words = slot_words(key_size, value_size);
            let words = table_words(capacity, slot_words)
                .and_then(|words| words.checked_add(FIRST_TABLE_OFFSET / 8))
                .ok_or_else(|| Error::corrupt("hash map capacity", capacity.to_string()))?;
            let base = object.atomics::<std::sync::atomic::AtomicU64>(0, words)?;
            if base.as_ptr() as usize % 64 != 0 {
                return Err(Error::corrupt(
                    "hash map body",
                    "not 64-byte aligned".to_owned(),
                ));
            }
            // SAFETY: FIRST_TABLE_OFFSET lies inside the `words` checked words, and the
            // table's slots after its header and hints (`table_words`).
            let (table, slots) = unsafe {
                let table = base.add((FIRST_TABLE_OFFSET / 8) as usize);
                (table, table.add(meta_words(capacity) as usize))
            };
            Ok(Self::laid_out(table, slots, base, capacity, slot_words))
        }

        /// The table whose header lies at region offset `offset`, after checking that its
        /// capacity is a power of two and that its blocks lie in the arena.
        fn in_arena(
            region: &Region,
            offset: u64,
            counters: NonNull<AtomicU64>,
            slot_words: u64,
        ) -> Result<Self> {
            let (capacity, slots_offset) = Self::header_of(region, offset)?;
            Self::checked_at(region, offset, slots_offset, capacity, counters, slot_words)
        }

        /// The capacity and slots offset a table header at `offset` records.
        fn header_of(region: &Region, offset: u64) -> Result<(u64, u64)> {
            let header = region.arena_atomics::<std::sync::atomic::AtomicU64>(offset, 8)?;
            let word = |index: u64| {
                // SAFETY: `header` points at 8 checked words; CAPACITY and SLOTS < 8.
                let cell = unsafe { &*header.as_ptr().add(index as usize) };
                // Relaxed: written before the table was linked, which the caller's Acquire
                // load of the link read.
                cell.load(Ordering::Relaxed)
            };
            Ok((
                checked_capacity(word(migrate::CAPACITY), offset)?,
                word(migrate::SLOTS),
            ))
        }

        /// The table of `capacity` slots with its header at `offset` and its slots at
        /// `slots_offset`, both checked (in the arena; slots 64-byte aligned).
        fn checked_at(
            region: &Region,
            offset: u64,
            slots_offset: u64,
            capacity: u64,
            counters: NonNull<AtomicU64>,
            slot_words: u64,
        ) -> Result<Self> {
            let slot_area = capacity
                .checked_mul(slot_words)
                .ok_or_else(|| Error::corrupt("hash map table", capacity.to_string()))?;
            if slots_offset % 64 != 0 {
                return Err(Error::corrupt(
                    "hash map table",
                    format!("slots at offset {slots_offset}, not 64-byte aligned"),
                ));
            }
            let table = region
                .arena_atomics::<std::sync::atomic::AtomicU64>(offset, meta_words(capacity))?;
            let slots =
                region.arena_atomics::<std::sync::atomic::AtomicU64>(slots_offset, slot_area)?;
            Ok(Self::laid_out(table, slots, counters, capacity, slot_words))
        }

        fn laid_out(
            table: NonNull<AtomicU64>,
            slots: NonNull<AtomicU64>,
            counters: NonNull<AtomicU64>,
            capacity: u64,
            slot_words: u64,
        ) -> Self {
            // Capacities up to 2^32 (checked by the callers): header words fit 32 bits,
            // slot words (keys and values of bounded size) 16.
            let header_words = header_words(capacity);
            Self {
                // SAFETY: the hints follow the header in the checked table block.
                hints: unsafe { table.add(header_words as usize) },
                slots,
                counters,
                header_words: header_words as u32,
                slot_words: slot_words as u16,
                capacity_log2: capacity.trailing_zeros() as u8,
            }
        }
    }

    impl Slots for MappedSlots {
        #[inline]
        fn capacity(&self) -> u64 {
            1 << self.capacity_log2
        }

        #[inline]
        fn pair(&self, slot: u64) -> &AtomicPair {
            debug_assert!(slot < self.capacity());
            // Slot < capacity: the pair lies in the checked slots, 16-aligned (aligned
            // slots, even slot words), and the mapping outlives the handles that hold the
            // object.
            let word = slot * u64::from(self.slot_words);
            // SAFETY: in bounds, aligned and alive (above); pairs are only accessed atomically.
            unsafe { AtomicPair::from_ptr(self.slots.as_ptr().add(word as usize).cast::<u64>()) }
        }

        #[inline]
        fn data(&self, slot: u64) -> &[AtomicU64] {
            debug_assert!(slot < self.capacity());
            let word = slot * u64::from(self.slot_words) + 2;
            // SAFETY: the words after the pair up to the slot's end lie in the checked
            // slots; atomics only.
            unsafe {
                std::slice::from_raw_parts(
                    self.slots.as_ptr().add(word as usize),
                    usize::from(self.slot_words - 2),
                )
            }
        }

        #[inline]
        fn counter(&self, shard: usize) -> &AtomicU64 {
            debug_assert!(shard < COUNTER_SHARDS);
            // SAFETY: shard lines lie at the start of the map's checked body.
            unsafe { &*self.counters.as_ptr().add(shard * 8) }
        }

        #[inline]
        fn hints(&self, word: u64) -> &AtomicU64 {
            debug_assert!(word < hint_words(self.capacity()));
            // SAFETY: hint words lie after the header, in the checked table block.
            unsafe { &*self.hints.as_ptr().add(word as usize) }
        }

        #[inline]
        fn header(&self, word: u64) -> &AtomicU64 {
            debug_assert!(word < u64::from(self.header_words));
            // SAFETY: header words start the checked table block, just before the hints.
            unsafe {
                &*self
                    .hints
                    .as_ptr()
                    .sub(self.header_words as usize)
                    .add(word as usize)
            }
        }
    }

    /// A handle's memory of the table it last found at its map's root (see
    /// [`Tables::guess`]): the root word then (0 for the first table; else the table's
    /// region offset and generation, whose capacity is the first table's doubled that
    /// many times), and that table's layout: | generation: 8 | header words: 24 | region
    /// offset of its slots / 64: 32 | (the generation again, so that a pair torn between
    /// two threads' stores does not match). Both checked when remembered. Process-local:
    /// a clone starts from the same guess.
    #[derive(Debug, Default)]
    pub(crate) struct TableGuess {
        root: std::sync::atomic::AtomicU64,
        slots: std::sync::atomic::AtomicU64,
    }

    impl Clone for TableGuess {
        fn clone(&self) -> Self {
            // Relaxed: a hint; any value this handle remembered is valid.
            Self {
                root: std::sync::atomic::AtomicU64::new(self.root.load(Ordering::Relaxed)),
                slots: std::sync::atomic::AtomicU64::new(self.slots.load(Ordering::Relaxed)),
            }
        }
    }

    /// Where a map's tables are: its body (the first table and the root word) and the
    /// region's arena (the later ones).
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct MappedTables<'r> {
        region: &'r Region,
        // References into the handle: three words to copy per operation (see
        // `MappedSlots`).
        first: &'r MappedSlots,
        guess: Option<&'r TableGuess>,
    }

    impl<'r> MappedTables<'r> {
        pub(crate) fn new(
            region: &'r Region,
            first: &'r MappedSlots,
            guess: Option<&'r TableGuess>,
        ) -> Self {
            Self {
                region,
                first,
                guess,
            }
        }
    }

    impl MappedTables<'_> {
        /// The table a [`TableGuess`] names: `remember` stored it only after checking its
        /// ranges, so they are not checked again.
        #[inline]
        fn remembered(&self, root: u64, slots: u64) -> MappedSlots {
            let capacity_log2 = self.first.capacity_log2 + root_generation(root) as u8;
            let header_words = (slots >> 32) as u32 & 0xff_ffff;
            // `remember` stored `root` and `slots` only once `arena_atomics` had accepted
            // the table's blocks at these offsets for this capacity (`checked`), and the
            // header words are the capacity's; a torn pair of two remembered tables is
            // refused by `guess` (generations).
            let hints_offset = root_id(root) + 8 * u64::from(header_words);
            // SAFETY: the hints lie in the table's checked header block (above).
            let hints = unsafe {
                self.region
                    .arena_atomics_checked_before::<std::sync::atomic::AtomicU64>(hints_offset)
            };
            // SAFETY: the slots block was checked with the table (above).
            let slots = unsafe {
                self.region
                    .arena_atomics_checked_before::<std::sync::atomic::AtomicU64>(
                        64 * (slots & 0xffff_ffff),
                    )
            };
            MappedSlots {
                hints,
                slots,
                counters: self.first.counters,
                header_words,
                slot_words: self.first.slot_words,
                capacity_log2,
            }
        }

        /// The slots offset of the table of root word `root` if it has `capacity` slots,
        /// its generation's, and its blocks lie in the arena (what `remembered` relies
        /// on).
        fn checked(&self, root: u64, capacity: u64) -> Option<u64> {
            let expected = u64::from(self.first.capacity_log2)
                .checked_add(root_generation(root))
                .filter(|log2| *log2 <= u64::from(MAX_CAPACITY.trailing_zeros()))?;
            let (recorded, slots) = MappedSlots::header_of(self.region, root_id(root)).ok()?;
            let slot_words = u64::from(self.first.slot_words);
            (1 << expected == capacity && recorded == capacity && slots / 64 < 1 << 32)
                .then_some(())?;
            MappedSlots::checked_at(
                self.region,
                root_id(root),
                slots,
                capacity,
                self.first.counters,
                slot_words,
            )
            .ok()
            .map(|_| slots)
        }

        /// The words of a table's two blocks: header and hints, slots.
        fn block_words(&self, capacity: u64) -> Option<(u64, u64)> {
            Some((
                meta_words(capacity),
                capacity.checked_mul(u64::from(self.first.slot_words))?,
            ))
        }

        /// The slots offset the header of table `id` records, if it lies in the arena.
        fn slots_of(&self, id: u64, capacity: u64) -> Option<u64> {
            let (recorded, slots) = MappedSlots::header_of(self.region, id).ok()?;
            (recorded == capacity && slots != 0).then_some(slots)
        }
    }

    impl<'r> Tables for MappedTables<'r> {
        type Slots = MappedSlots;
        type Pin = GracePin<'r>;

        #[inline]
        fn root(&self) -> &AtomicU64 {
            // SAFETY: the root word lies in the map's checked body, after the counters.
            unsafe { &*self.first.counters.as_ptr().add((ROOT_OFFSET / 8) as usize) }
        }

        #[inline]
        fn first(&self) -> MappedSlots {
            *self.first
        }

        #[inline]
        fn guess(&self) -> Option<(MappedSlots, u64)> {
            let guess = self.guess?;
            // Relaxed: a hint (see `TableGuess`); lookups validate it against the root.
            let root = guess.root.load(Ordering::Relaxed);
            if root == 0 {
                return None;
            }
            // Relaxed: as above.
            let slots = guess.slots.load(Ordering::Relaxed);
            if root_generation(slots) != root_generation(root) {
                return None; // torn between two threads' stores: start from the root
            }
            Some((self.remembered(root, slots), root))
        }

        fn remember(&self, root: u64, capacity: u64) {
            let Some(guess) = self.guess else {
                return;
            };
            // Relaxed: a hint (see `TableGuess`). Remembered already: checked then.
            if guess.root.load(Ordering::Relaxed) == root {
                return;
            }
            // A table whose capacity its generation does not give is not guessed.
            let slots = if root == 0 {
                None
            } else {
                self.checked(root, capacity)
            };
            // Relaxed: hints (see `TableGuess`); `guess` checks that the two match.
            match slots {
                Some(slots) => {
                    // Slots offset / 64 (below 2^32: regions are at most 2^38 bytes), the
                    // header words (below 2^24 for capacities up to 2^32), the generation.
                    let word = (slots / 64)
                        | (header_words(capacity) << 32)
                        | (root_generation(root) << ROOT_ID_BITS);
                    guess.slots.store(word, Ordering::Relaxed);
                    guess.root.store(root, Ordering::Relaxed);
                }
                None => guess.root.store(0, Ordering::Relaxed),
            }
        }

        #[inline]
        fn table(&self, id: u64) -> Result<MappedSlots> {
            if id == 0 {
                return Ok(*self.first);
            }
            MappedSlots::in_arena(
                self.region,
                id,
                self.first.counters,
                u64::from(self.first.slot_words),
            )
        }

        fn make(&self, capacity: u64, made: [&AtomicU64; 2], maker: OwnerId) -> Result<u64> {
            let (meta, slot_area) = self
                .block_words(capacity)
                .ok_or_else(|| Error::out_of_memory(u64::MAX, 0, self.region.memory()))?;
            let slots = self
                .region
                .alloc_zeroed_words_recorded(slot_area, |slots| {
                    record_made(made[0], maker, slots);
                })?;
            fail::fail_point!("hash_map::grow_between_blocks");
            let offset = match self.region.alloc_zeroed_words_recorded(meta, |offset| {
                record_made(made[1], maker, offset);
            }) {
                Ok(offset) => offset,
                Err(error) => {
                    // The record first: a record of a freed block, should we die, would
                    // have it given back twice.
                    clear_made(made, maker);
                    let _ = self.region.arena().free(slots, 8 * slot_area);
                    return Err(error);
                }
            };
            let header = self
                .region
                .arena_atomics::<std::sync::atomic::AtomicU64>(offset, meta)?;
            // SAFETY: `header` points at `meta` checked words; CAPACITY and SLOTS are
            // header words.
            // Relaxed: published with the zeros by the caller's Release compare-exchange.
            unsafe {
                (*header.as_ptr().add(migrate::CAPACITY as usize))
                    .store(capacity, Ordering::Relaxed);
                (*header.as_ptr().add(migrate::SLOTS as usize)).store(slots, Ordering::Relaxed);
            }
            Ok(offset)
        }

        fn give_back_made(&self, capacity: u64, made: [&AtomicU64; 2], liveness: &impl Liveness) {
            let Some((meta, slot_area)) = self.block_words(capacity) else {
                return;
            };
            give_back_records(made, liveness, |which, offset| {
                // An error (a block that cannot be the arena's: a hostile record) is left
                // alone.
                let words = [slot_area, meta][which];
                let _ = self.region.arena().free(offset, 8 * words);
            });
        }

        fn discard(&self, id: u64, capacity: u64) {
            if let Some((meta, slot_area)) = self.block_words(capacity) {
                if let Some(slots) = self.slots_of(id, capacity) {
                    let _ = self.region.arena().free(slots, 8 * slot_area);
                }
                let _ = self.region.arena().free(id, 8 * meta);
            }
        }

        fn retire(&self, id: u64, capacity: u64) {
            if let Some((meta, slot_area)) = self.block_words(capacity) {
                // An error: a block that cannot be the arena's (a corrupt link), left alone.
                if let Some(slots) = self.slots_of(id, capacity) {
                    let _ = self.region.retire_block_soon(slots, 8 * slot_area);
                }
                let _ = self.region.retire_block(id, 8 * meta);
            }
        }

        #[inline]
        fn pin(&self) -> Result<GracePin<'r>> {
            self.region.pin()
        }
    }

    // SAFETY: the slots are atomics in the shared mapping, which the owning handle's
    // `Object` keeps alive.
    unsafe impl Send for MappedSlots {}
    // SAFETY: as above.
    unsafe impl Sync for MappedSlots {}

    /// A named hash map from `K` to `V` in a region: Python's `Manager().dict()` with no
    /// broker. Keys and values are `Pod` (compared and hashed by their bytes); use
    /// [`FixedStr`](crate::FixedStr) or [`FixedBytes`](crate::FixedBytes) for strings.
    ///
    /// Lock-free: `get` never waits (it writes only to settle what a killed or frozen
    /// writer of its key left unfinished); with values of up to 8 bytes no
    /// operation waits for another process, but for an insert into a full table, which
    /// waits for a live process making the next one at most
    /// [`GROW_PATIENCE`](crate::hash_map::grow::GROW_PATIENCE) before it makes it itself.
    /// With wider values, readers still never wait, and writers of the *same key* wait
    /// for a live writer of it (never a dead one).
    /// See the [module docs](crate::hash_map) for the algorithm.
    ///
    /// ```
    /// use shmarena::{FixedStr, Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-map-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let words = region.hash_map::<FixedStr<24>, u64>("word-count", 1024)?;
    /// for word in "the cat saw the other cat".split(' ') {
    ///     words.fetch_add(FixedStr::new(word)?, 1)?; // from any number of processes
    /// }
    /// assert_eq!(words.get(&FixedStr::new("cat")?)?, Some(2));
    /// assert_eq!(words.insert(FixedStr::new("你好世界")?, 7)?, None);
    /// assert_eq!(words.remove(&FixedStr::new("saw")?)?, Some(1));
    /// assert_eq!(words.len(), 4);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    pub struct HashMap<K: Pod, V: Pod> {
        slots: MappedSlots,
        guess: TableGuess,
        seed: u64,
        object: Object,
        _types: PhantomData<(K, V)>,
    }

    impl<K: Pod, V: Pod> Clone for HashMap<K, V> {
        fn clone(&self) -> Self {
            Self {
                slots: self.slots,
                guess: self.guess.clone(),
                seed: self.seed,
                object: self.object.clone(),
                _types: PhantomData,
            }
        }
    }

    impl<K: Pod, V: Pod> std::fmt::Debug for HashMap<K, V> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("HashMap")
                .field("name", &self.object.info().name)
                .field("len", &self.len())
                .field("capacity", &self.capacity())
                .finish_non_exhaustive()
        }
    }

    fn check_sizes(key_size: usize, value_size: usize) -> Result<()> {
        if AtomicPair::is_lock_free() {
            if key_size <= MAX_KEY_SIZE && value_size <= MAX_VALUE_SIZE {
                return Ok(());
            }
            return Err(Error::InvalidArgument(format!(
                "hash map keys take up to {MAX_KEY_SIZE} bytes ({key_size} given) and values up to {MAX_VALUE_SIZE} ({value_size} given)"
            )));
        }
        Err(Error::Unsupported(
            "the hash map needs lock-free 128-bit atomics (cmpxchg16b)",
        ))
    }

    /// The catalog descriptor of a map (or set) of `capacity` slots with these key and value
    /// types.
    fn map_descriptor(
        kind: ObjectKind,
        capacity: u64,
        (key, value): (ElementType, ElementType),
    ) -> TypeDescriptor {
        TypeDescriptor {
            kind,
            elem_code: value.code,
            elem_size: value.size,
            elem_tag: value.tag,
            key_code: key.code,
            key_size: key.size,
            key_tag: key.tag,
            capacity,
        }
    }

    /// Opens the map object `name`, creating it empty with `capacity` slots (rounded up
    /// to a power of two), and its slots.
    fn create_map(
        region: &Region,
        name: &str,
        capacity: u64,
        types: (ElementType, ElementType),
        kind: ObjectKind,
    ) -> Result<(Object, MappedSlots)> {
        let (key_size, value_size) = (usize::from(types.0.size), usize::from(types.1.size));
        check_sizes(key_size, value_size)?;
        let slots = capacity
            .checked_next_power_of_two()
            .filter(|_| capacity > 0);
        let size = slots
            .filter(|&slots| slots <= MAX_CAPACITY)
            .and_then(|slots| {
                table_words(slots, slot_words(key_size as u64, value_size as u64))?
                    .checked_mul(8)?
                    .checked_add(FIRST_TABLE_OFFSET)
            });
        let (Some(slots), Some(size)) = (slots, size) else {
            return Err(Error::InvalidArgument(format!(
                "a hash map needs a capacity from 1 to a size that fits ({capacity} asked)"
            )));
        };
        let descriptor = map_descriptor(kind, slots, types);
        let (object, _) =
            crate::sweep::get_or_create_object(region, name, &descriptor, size, |_| Ok(()))?;
        let mapped = MappedSlots::first(&object, key_size as u64, value_size as u64)?;
        if mapped.capacity() != slots {
            return Err(Error::TypeMismatch {
                name: name.to_owned(),
                expected: descriptor.to_string(),
                found: object.info().descriptor.to_string(),
            });
        }
        give_back_made(region, &object, &mapped);
        Ok((object, mapped))
    }

    /// Gives back what a dead maker took for the map's next table and never linked
    /// ([`GrowingMap::give_back_made`]), as a handle opens the map. The checks and the
    /// participant sweep, which also reach the map through `map_for`, give nothing back:
    /// a check writes nothing. An error (a corrupt root, a pin refused) is left to the
    /// map's operations to report.
    fn give_back_made(region: &Region, object: &Object, first: &MappedSlots) {
        let _ = super::map_for(region, object, first).give_back_made(region);
    }

    /// Opens the existing map object `name` with keys and values of these types.
    fn open_map(
        region: &Region,
        name: &str,
        types: (ElementType, ElementType),
        kind: ObjectKind,
    ) -> Result<(Object, MappedSlots)> {
        let (key_size, value_size) = (usize::from(types.0.size), usize::from(types.1.size));
        check_sizes(key_size, value_size)?;
        let object = crate::sweep::open_object(region, name, &map_descriptor(kind, 0, types))?;
        let mapped = MappedSlots::first(&object, key_size as u64, value_size as u64)?;
        give_back_made(region, &object, &mapped);
        Ok((object, mapped))
    }

    /// The key and value types of a typed map, as the catalog records them. Sizes over `u16::MAX` are refused by `check_sizes` first.
    fn typed<K: Pod, V: Pod>() -> Result<(ElementType, ElementType)> {
        check_sizes(size_of::<K>(), size_of::<V>())?;
        Ok((ElementType::of::<K>(), ElementType::of::<V>()))
    }

    /// `error` with a type mismatch's expected type spelled with the Rust names of `K` and
    /// `V` (and `slots`, for an open that asked for them).
    fn name_types<K: Pod, V: Pod>(error: Error, kind: ObjectKind, slots: Option<u64>) -> Error {
        name_expected(error, || {
            let (key, value) = (short_type_name::<K>(), short_type_name::<V>());
            let slots = slots.map_or(String::new(), |n| format!(" with {n} slots"));
            if kind == ObjectKind::HashSet {
                format!("HashSet<{key}>{slots}")
            } else {
                format!("HashMap<{key}, {value}>{slots}")
            }
        })
    }

    /// What the typed and byte handles share: the algorithm over their tables, built per
    /// call, and lookups whose slow path (the chain of tables) is a cold function of the
    /// handle that builds the map again. A cold call that took the map's address would make
    /// the compiler keep the map on the stack on every lookup's path (measured: ~40 stores
    /// and loads of its fields per lookup).
    trait Lookups {
        /// Key and value sizes: constants for a typed map.
        type Shape: Shape;

        /// The algorithm over this map's tables.
        fn map(&self) -> GrowingMap<MappedTables<'_>, Self::Shape>;

        /// The region, which tells the map who is alive.
        fn liveness(&self) -> &Region;

        /// [`GrowingMap::get`], its fast path inline and the chain out of line.
        #[inline]
        fn lookup(&self, key: &[u64], out: &mut [u64]) -> Result<bool> {
            let map = self.map();
            let hash = map.hash(key);
            match map.get_first(hash, key, out) {
                Some(found) => Ok(found),
                None => self.lookup_walk(hash, key, out),
            }
        }

        /// The rest of `lookup`: the walk of one table, then the chain.
        #[cold]
        #[inline(never)]
        fn lookup_walk(&self, hash: u64, key: &[u64], out: &mut [u64]) -> Result<bool> {
            self.map().get_after_first(hash, key, out, self.liveness())
        }

        /// [`GrowingMap::contains`], as `lookup`.
        #[inline]
        fn lookup_contains(&self, key: &[u64]) -> Result<bool> {
            let map = self.map();
            let hash = map.hash(key);
            match map.contains_first(hash, key) {
                Some(found) => Ok(found),
                None => self.contains_walk(hash, key),
            }
        }

        /// The rest of `lookup_contains`, as `lookup_walk`.
        #[cold]
        #[inline(never)]
        fn contains_walk(&self, hash: u64, key: &[u64]) -> Result<bool> {
            self.map().contains_after_first(hash, key, self.liveness())
        }
    }

    impl<K: Pod, V: Pod> Lookups for HashMap<K, V> {
        type Shape = Typed<K, V>;

        /// Built per call, so that the key and value sizes are constants the compiler
        /// specializes the probing code for.
        #[inline]
        fn map(&self) -> GrowingMap<MappedTables<'_>, Typed<K, V>> {
            GrowingMap::with_shape(
                MappedTables::new(self.object.region(), &self.slots, Some(&self.guess)),
                Typed::new(),
                self.seed,
            )
        }

        #[inline]
        fn liveness(&self) -> &Region {
            self.object.region()
        }
    }

    impl<K: Pod, V: Pod> HashMap<K, V> {
        /// The catalog descriptor of a map with `capacity` slots: key and value types as
        /// [`identity`](crate::identity) describes.
        pub fn descriptor(capacity: u64) -> TypeDescriptor {
            map_descriptor(
                ObjectKind::HashMap,
                capacity,
                (ElementType::of::<K>(), ElementType::of::<V>()),
            )
        }

        /// Opens the map `name`, creating it empty with `capacity` slots (rounded up to a
        /// power of two) to start with. It grows online past them (a table twice the size,
        /// migrated a chunk at a time by the operations of every process: see
        /// [`grow`](crate::hash_map::grow)), while the region has room.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for a zero capacity or oversized types;
        /// [`Error::Unsupported`] without 128-bit atomics; [`Error::TypeMismatch`] (also
        /// for another capacity); catalog and arena errors.
        pub fn get_or_create(region: &Region, name: &str, capacity: u64) -> Result<Self> {
            Self::get_or_create_kind(region, name, capacity, ObjectKind::HashMap)
        }

        pub(crate) fn get_or_create_kind(
            region: &Region,
            name: &str,
            capacity: u64,
            kind: ObjectKind,
        ) -> Result<Self> {
            let slots = capacity.checked_next_power_of_two().unwrap_or(capacity);
            create_map(region, name, capacity, typed::<K, V>()?, kind)
                .map(Self::from_parts)
                .map_err(|error| name_types::<K, V>(error, kind, Some(slots)))
        }

        /// Opens the existing map `name`, whatever its capacity.
        ///
        /// # Errors
        /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::Corrupt`],
        /// [`Error::Unsupported`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            Self::open_kind(region, name, ObjectKind::HashMap)
        }

        pub(crate) fn open_kind(region: &Region, name: &str, kind: ObjectKind) -> Result<Self> {
            open_map(region, name, typed::<K, V>()?, kind)
                .map(Self::from_parts)
                .map_err(|error| name_types::<K, V>(error, kind, None))
        }

        fn from_parts((object, slots): (Object, MappedSlots)) -> Self {
            Self {
                slots,
                guess: TableGuess::default(),
                seed: object.region().hash_seed(),
                object,
                _types: PhantomData,
            }
        }

        /// The value of `key`. Never waits.
        ///
        /// # Errors
        /// [`Error::Contended`] only on a table that keeps changing under a wide read.
        // Always: the first look of a value of up to 8 bytes, in the caller's code (no
        // frame, no buffers in memory: the stores a call makes wait behind a lookup's cache
        // miss and limit how many lookups overlap); the rest out of line.
        #[allow(clippy::inline_always)]
        #[inline(always)]
        pub fn get(&self, key: &K) -> Result<Option<V>> {
            if let (Some(words), 1) = (fixed_words::<K, 4>(key), word_count::<V>()) {
                let (words, map, mut out) = (&words[..word_count::<K>()], self.map(), [0u64]);
                let hash = map.hash(words);
                if let Some(found) = map.get_first(hash, words, &mut out) {
                    return Ok(found.then(|| from_words(&out)));
                }
                return self.get_walked(hash, key);
            }
            self.get_wide(key)
        }

        /// `get` of a value of up to 8 bytes past its first look (its key's words made
        /// again here, so that the first look keeps them in registers).
        #[cold]
        #[inline(never)]
        fn get_walked(&self, hash: u64, key: &K) -> Result<Option<V>> {
            // Built only when returned (`ok_or` built one to drop on every call).
            let Some(words) = fixed_words::<K, 4>(key) else {
                return Err(Error::Contended("hash map read"));
            };
            let mut out = [0u64];
            let found = self.lookup_walk(hash, &words[..word_count::<K>()], &mut out)?;
            Ok(found.then(|| from_words(&out)))
        }

        /// `get` of a wider value (or key).
        #[inline(never)]
        fn get_wide(&self, key: &K) -> Result<Option<V>> {
            if word_count::<K>() <= 4 && word_count::<V>() <= 4 {
                let (mut key_words, mut value_words) = ([0u64; 4], [0u64; 4]);
                bytemuck::cast_slice_mut::<u64, u8>(&mut key_words)[..size_of::<K>()]
                    .copy_from_slice(bytemuck::bytes_of(key));
                let (key, out) = (
                    &key_words[..word_count::<K>()],
                    &mut value_words[..word_count::<V>()],
                );
                let found = self.lookup(key, out)?;
                return Ok(found.then(|| from_words(&value_words)));
            }
            with_words_of(key, |key| {
                let mut result = Ok(false);
                let value = read_words_into::<V>(|value| {
                    result = self.map().get(key, value, self.object.region());
                    matches!(result, Ok(true))
                });
                result.map(|_| value)
            })
        }

        /// Whether `key` is present. Never waits.
        ///
        /// # Errors
        /// As [`Self::get`].
        pub fn contains_key(&self, key: &K) -> Result<bool> {
            with_words_of(key, |key| self.lookup_contains(key))
        }

        /// Inserts or replaces; returns the value replaced.
        ///
        /// # Errors
        /// [`Error::OutOfMemory`] when the map has to grow and the region has no room for
        /// its next table.
        pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
            self.insert_with(&key, &value, true, false)
        }

        /// Inserts only if `key` is absent: `None` when inserted, else the value present
        /// (left unchanged).
        ///
        /// # Errors
        /// As [`Self::insert`].
        pub fn try_insert(&self, key: K, value: V) -> Result<Option<V>> {
            self.insert_with(&key, &value, false, false)
        }

        /// Inserts, or (`replace` false) reads the value present; `absent`: the caller
        /// has just found the key absent, and the insert claims without looking again.
        fn insert_with(
            &self,
            key: &K,
            value: &V,
            replace: bool,
            absent: bool,
        ) -> Result<Option<V>> {
            if self.grew() {
                return self.insert_grown(key, value, replace, absent);
            }
            let region = self.object.region();
            if let (Some(key), Some(value)) = (fixed_words::<K, 4>(key), fixed_words::<V, 1>(value))
            {
                // A key already present is replaced (or, for `try_insert`, read) where the
                // first look finds it; the rest out of line, with the same key and hash.
                let (key, map, mut old) = (&key[..word_count::<K>()], self.map(), [0u64]);
                let hash = map.hash(key);
                let first = if absent {
                    First::Absent
                } else {
                    map.insert_first(hash, key, &value, replace, &mut old, region)
                };
                let had = match first {
                    First::Done(done) => done?,
                    rest => {
                        let absent = matches!(rest, First::Absent);
                        self.insert_after_first(hash, key, &value, replace, &mut old, absent)?
                    }
                };
                return Ok(had.then(|| from_words(&old)));
            }
            self.insert_words(key, value, replace)
        }

        /// `insert_with` of wider keys or values, through word buffers.
        fn insert_words(&self, key: &K, value: &V, replace: bool) -> Result<Option<V>> {
            let region = self.object.region();
            with_words_of(key, |key| {
                with_words_of(value, |value| {
                    let mut result = Ok(false);
                    let old = read_words_into::<V>(|old| {
                        result = self.map().insert(key, value, replace, old, region);
                        matches!(result, Ok(true))
                    });
                    result.map(|_| old)
                })
            })
        }

        /// Whether this handle saw the map grow (a later table is its root): its writes
        /// then pin ([`GrowingMap`]), and take their own way, so that the way of a map
        /// that never grew stays as short.
        #[inline]
        fn grew(&self) -> bool {
            // Relaxed: a hint (see `TableGuess`); the map validates it.
            self.guess.root.load(Ordering::Relaxed) != 0
        }

        /// `insert_with` on a map this handle saw grow: the first look on the table it
        /// grew into, pinned, and the rest, in one frame.
        // Never: out of the way of a map that never grew (measured with `map_ops`: the two
        // ways inline in one function made each insert of a map that never grew ~20
        // instructions longer); the answer goes straight into the caller's. Through the
        // way below instead (two calls, each answer in memory), a replacing insert on a
        // grown map took 555 instructions, 484 here, and 22% more time.
        #[inline(never)]
        fn insert_grown(
            &self,
            key: &K,
            value: &V,
            replace: bool,
            absent: bool,
        ) -> Result<Option<V>> {
            let region = self.object.region();
            let (Some(key), Some(value)) = (fixed_words::<K, 4>(key), fixed_words::<V, 1>(value))
            else {
                return self.insert_words(key, value, replace);
            };
            let pin = region.pin()?;
            let (key, map, mut old) = (&key[..word_count::<K>()], self.map(), [0u64]);
            let hash = map.hash(key);
            let first =
                map.insert_on_guess(&pin, hash, key, &value, replace, &mut old, absent, region);
            let had = match first {
                Some(First::Done(done)) => done?,
                Some(rest) => {
                    let absent = matches!(rest, First::Absent);
                    self.insert_grown_walk(&pin, hash, key, &value, replace, &mut old, absent)?
                }
                None => {
                    drop(pin);
                    map.insert_after_first(hash, key, &value, replace, &mut old, false, region)?
                }
            };
            Ok(had.then(|| from_words(&old)))
        }

        /// `insert_grown` past its first look, out of line (under the caller's pin): the
        /// walk's frame stays out of the first look's, and its call takes the handle, not
        /// the table, so that the first look's table stays in registers (measured with
        /// `map_ops`: the walk inline, or out of line taking the table, made ~40 more
        /// stack stores per replacing insert).
        #[allow(clippy::too_many_arguments)]
        #[cold]
        #[inline(never)]
        fn insert_grown_walk(
            &self,
            pin: &GracePin<'_>,
            hash: u64,
            key: &[u64],
            value: &[u64],
            replace: bool,
            old: &mut [u64],
            absent: bool,
        ) -> Result<bool, Box<Error>> {
            let (map, region) = (self.map(), self.object.region());
            match map.insert_walked_on_guess(pin, hash, key, value, replace, old, absent, region) {
                Some(done) => done,
                None => map.insert_after_first(hash, key, value, replace, old, false, region),
            }
        }

        /// Removes `key`; returns its value.
        ///
        /// # Errors
        /// [`Error::Contended`] on a hostile table.
        pub fn remove(&self, key: &K) -> Result<Option<V>> {
            let region = self.object.region();
            if let (Some(key), 1) = (fixed_words::<K, 4>(key), word_count::<V>()) {
                // Keys of up to 4 words and one-word values: no buffers, and the answer in
                // registers.
                let (key, mut old) = (&key[..word_count::<K>()], [0u64]);
                let removed = self.map().remove_boxed(key, &mut old, region)?;
                return Ok(removed.then(|| from_words(&old)));
            }
            with_words_of(key, |key| {
                let mut result = Ok(false);
                let old = read_words_into::<V>(|old| {
                    result = self.map().remove(key, old, region);
                    matches!(result, Ok(true))
                });
                result.map(|_| old)
            })
        }

        /// Replaces the value of `key` with `new` if it is `current` (compared by bytes).
        /// `Ok(Ok(current))` when replaced; `Ok(Err(Some(actual)))` when the value differs;
        /// `Ok(Err(None))` when the key is absent.
        ///
        /// # Errors
        /// [`Error::Contended`] on a hostile table.
        pub fn compare_exchange(
            &self,
            key: &K,
            current: V,
            new: V,
        ) -> Result<std::result::Result<V, Option<V>>> {
            with_words_of(&current, |current| {
                with_words_of(&new, |new| {
                    self.fetch_update_words(key, |seen: &[u64], out: &mut [u64]| {
                        if seen != current {
                            return false;
                        }
                        out.copy_from_slice(new);
                        true
                    })
                })
            })
        }

        /// Applies `f` to the value of `key` until its result is stored (retried when
        /// other processes change the value meanwhile; `f` may run several times).
        /// `Ok(Ok(previous))` when stored; `Ok(Err(Some(value)))` when `f` returned `None`;
        /// `Ok(Err(None))` when the key is absent.
        ///
        /// # Errors
        /// [`Error::Contended`] on a hostile table.
        pub fn fetch_update(
            &self,
            key: &K,
            mut f: impl FnMut(V) -> Option<V>,
        ) -> Result<std::result::Result<V, Option<V>>> {
            self.fetch_update_words(key, |seen: &[u64], out: &mut [u64]| {
                let current: V = bytemuck::pod_read_unaligned(
                    &bytemuck::cast_slice::<u64, u8>(seen)[..size_of::<V>()],
                );
                match f(current) {
                    Some(new) => {
                        with_words_of(&new, |new| out.copy_from_slice(new));
                        true
                    }
                    None => false,
                }
            })
        }

        /// [`GrowingMap::insert_after_first`], out of line: the first look's path stays
        /// short (measured: the general way's setup ran before the first look). Its error
        /// comes back boxed, so that the answer comes back in registers (through memory,
        /// the caller's reload of it stalled on store forwarding: measured with `map_ops`).
        #[cold]
        #[inline(never)]
        fn insert_after_first(
            &self,
            hash: u64,
            key: &[u64],
            value: &[u64],
            replace: bool,
            old: &mut [u64],
            absent: bool,
        ) -> Result<bool, Box<Error>> {
            let region = self.object.region();
            self.map()
                .insert_after_first(hash, key, value, replace, old, absent, region)
        }

        /// [`GrowingMap::update_after_first`], out of line, its error boxed (as
        /// `insert_after_first`).
        #[cold]
        #[inline(never)]
        fn update_after_first(
            &self,
            hash: u64,
            key: &[u64],
            old: &mut [u64],
            f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
        ) -> Result<Updated, Box<Error>> {
            let region = self.object.region();
            if self.grew() {
                // A map that grew: the first look on its newest table, pinned through the
                // region (as in `insert_grown`: the map stays in registers), and the walk
                // out of line under the same pin.
                let pin = region.pin()?;
                let map = self.map();
                match map.update_on_guess(&pin, hash, key, old, region, f) {
                    Some(Some(updated)) => return updated.map_err(Box::new),
                    Some(None) => return self.update_grown_walk(&pin, hash, key, old, f),
                    None => {}
                }
            }
            self.update_whole_way(hash, key, old, f)
        }

        /// `update_after_first`'s walk on a map that grew, under the caller's pin (out of
        /// line, taking the handle: see `insert_grown_walk`).
        #[cold]
        #[inline(never)]
        fn update_grown_walk(
            &self,
            pin: &GracePin<'_>,
            hash: u64,
            key: &[u64],
            old: &mut [u64],
            f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
        ) -> Result<Updated, Box<Error>> {
            let (map, region) = (self.map(), self.object.region());
            match map.update_walked_on_guess(pin, hash, key, old, region, f) {
                Some(updated) => updated,
                None => map.update_in_chain(hash, key, old, region, f),
            }
            .map_err(Box::new)
        }

        /// [`GrowingMap::update_after_first`], out of line: every way of an update.
        #[cold]
        #[inline(never)]
        fn update_whole_way(
            &self,
            hash: u64,
            key: &[u64],
            old: &mut [u64],
            f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
        ) -> Result<Updated, Box<Error>> {
            let region = self.object.region();
            self.map()
                .update_after_first(hash, key, old, region, f)
                .map_err(Box::new)
        }

        #[inline]
        fn fetch_update_words(
            &self,
            key: &K,
            mut f: impl FnMut(&[u64], &mut [u64]) -> bool,
        ) -> Result<std::result::Result<V, Option<V>>> {
            let region = self.object.region();
            if let (Some(key), 1) = (fixed_words::<K, 4>(key), word_count::<V>()) {
                // The first look (straight-line code) and the rest with one key and hash.
                let (key, map, mut old) = (&key[..word_count::<K>()], self.map(), [0u64]);
                let hash = map.hash(key);
                let updated = match map.update_first(hash, key, &mut old, region, &mut f) {
                    Some(updated) => updated?,
                    None => self.update_after_first(hash, key, &mut old, &mut f)?,
                };
                return Ok(match updated {
                    Updated::Done => Ok(from_words(&old)),
                    Updated::Declined => Err(Some(from_words(&old))),
                    Updated::Absent => Err(None),
                });
            }
            with_words_of(key, |key| {
                let mut result = Ok(Updated::Absent);
                let old = read_words_into::<V>(|old| {
                    result = self.map().update(key, old, region, f);
                    matches!(result, Ok(Updated::Done | Updated::Declined))
                });
                Ok(match (result?, old) {
                    (Updated::Done, Some(old)) => Ok(old),
                    (Updated::Declined, old) => Err(old),
                    _ => Err(None),
                })
            })
        }

        /// Entries (from sharded counters: exact while every process that changed the map
        /// is alive; see [`Self::recount`]).
        pub fn len(&self) -> usize {
            self.map().len() as usize
        }

        /// Whether the map has no entries.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Number of slots of the newest table: how many entries fit before the map grows
        /// again.
        pub fn capacity(&self) -> usize {
            self.map().capacity() as usize
        }

        /// Iterates over the entries by slot. Weakly consistent: an entry present for the
        /// whole iteration is seen exactly once; one inserted or removed meanwhile may or
        /// may not be; no entry is ever seen torn.
        ///
        /// Why slot order and `Result`s, where `std`'s `iter` gives plain pairs: other
        /// processes change the map while this one walks it, and nothing stops them (no
        /// lock is taken, so a killed process never blocks a reader), so there is no
        /// moment at which "the map" has one order or one content to hand out; the walk
        /// visits the slots once each, which is what bounds its work and makes the
        /// guarantee above hold. An item is an `Err` only when a slot cannot be read: a
        /// region corrupted by something other than shmarena ([`Error::Corrupt`]), or
        /// [`Error::Contended`] on a table changing faster than the walk can retry (or,
        /// first and alone, [`Error::ParticipantsFull`] from a handle that cannot pin). For
        /// a plain collection, take a [`snapshot`](Self::snapshot) or
        /// [`to_std_map`](Self::to_std_map), which stop at the first error.
        ///
        /// The iterator holds a grace-period pin ([`Region::pin`]) until it is dropped:
        /// memory this map and others in the region retire meanwhile (an old table, an
        /// out-of-line value) waits for it.
        ///
        /// ```
        /// use shmarena::{Region, RegionExt};
        /// # let path = std::env::temp_dir().join(format!("shmarena-doc-map-iter-{}", std::process::id()));
        /// let region = Region::create(&path, 1 << 20)?;
        /// let map = region.hash_map::<u32, u64>("sizes", 64)?;
        /// map.extend([(1, 10), (2, 20)])?;
        /// let mut total = 0;
        /// for entry in map.iter() {
        ///     let (_key, value) = entry?;
        ///     total += value;
        /// }
        /// assert_eq!(total, 30);
        /// # Region::unlink(&path)?;
        /// # Ok::<(), shmarena::Error>(())
        /// ```
        pub fn iter(&self) -> impl Iterator<Item = Result<(K, V)>> + '_ {
            let map = self.map();
            // A walk that could not start (no pin) reports that once.
            let mut walk = map.walk().map_err(Some);
            std::iter::from_fn(move || {
                let walk = match &mut walk {
                    Ok(walk) => walk,
                    Err(error) => return error.take().map(Err),
                };
                // Both read into buffers built in place (no `Words` per entry).
                let mut value = None;
                let key = try_read_words_into::<K, Error>(|key| {
                    value =
                        try_read_words_into::<V, Error>(|value| map.next_entry(walk, key, value))?;
                    Ok(value.is_some())
                });
                match (key, value) {
                    (Ok(Some(key)), Some(value)) => Some(Ok((key, value))),
                    (Ok(_), _) => None,
                    (Err(error), _) => Some(Err(error)),
                }
            })
        }

        /// The keys (see [`Self::iter`]).
        pub fn keys(&self) -> impl Iterator<Item = Result<K>> + '_ {
            self.iter().map(|entry| entry.map(|(key, _)| key))
        }

        /// The values (see [`Self::iter`]).
        pub fn values(&self) -> impl Iterator<Item = Result<V>> + '_ {
            self.iter().map(|entry| entry.map(|(_, value)| value))
        }

        /// The entries in a `Vec`, in slot order: one weakly consistent walk (see
        /// [`Self::iter`]), collected.
        ///
        /// # Errors
        /// The first error of the walk ([`Error::Corrupt`], [`Error::Contended`]).
        pub fn snapshot(&self) -> Result<Vec<(K, V)>> {
            self.iter().collect()
        }

        /// The entries in a `std` [`HashMap`](std::collections::HashMap), for the
        /// operations of a process-local map (taken as [`Self::snapshot`] takes them).
        ///
        /// ```
        /// use shmarena::{Region, RegionExt};
        /// # let path = std::env::temp_dir().join(format!("shmarena-doc-map-std-{}", std::process::id()));
        /// let region = Region::create(&path, 1 << 20)?;
        /// let map = region.hash_map::<u32, u64>("scores", 64)?;
        /// map.extend([(1, 10), (2, 20)])?;
        /// let local = map.to_std_map()?;
        /// assert_eq!(local[&2], 20);
        /// # Region::unlink(&path)?;
        /// # Ok::<(), shmarena::Error>(())
        /// ```
        ///
        /// # Errors
        /// As [`Self::snapshot`].
        pub fn to_std_map(&self) -> Result<std::collections::HashMap<K, V>>
        where
            K: Eq + std::hash::Hash,
        {
            self.iter().collect()
        }

        /// Inserts (or replaces) each pair in turn, as [`Self::insert`]; not atomic as a
        /// whole: other processes may see some pairs before the others.
        ///
        /// # Errors
        /// The first error of an insert ([`Error::OutOfMemory`]); the pairs before it stay
        /// in.
        pub fn extend(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<()> {
            for (key, value) in pairs {
                self.insert(key, value)?;
            }
            Ok(())
        }

        /// The value of `key`, inserting `value` first if the key is absent (what
        /// `std`'s `entry(key).or_insert(value)` gives, by value): the value present
        /// after the call, whichever process inserted it. One [`Self::try_insert`]: of
        /// processes racing to insert one key, exactly one inserts and all get its value.
        ///
        /// ```
        /// use shmarena::{Region, RegionExt};
        /// # let path = std::env::temp_dir().join(format!("shmarena-doc-map-goi-{}", std::process::id()));
        /// let region = Region::create(&path, 1 << 20)?;
        /// let owners = region.hash_map::<u64, u32>("owners", 64)?;
        /// assert_eq!(owners.get_or_insert(7, 100)?, 100); // inserted
        /// assert_eq!(owners.get_or_insert(7, 200)?, 100); // already there
        /// # Region::unlink(&path)?;
        /// # Ok::<(), shmarena::Error>(())
        /// ```
        ///
        /// # Errors
        /// As [`Self::insert`].
        pub fn get_or_insert(&self, key: K, value: V) -> Result<V> {
            Ok(self.try_insert(key, value)?.unwrap_or(value))
        }

        /// As [`Self::get_or_insert`], computing the value only if `key` is absent when
        /// first looked up (`entry(key).or_insert_with(f)`). If another process inserts
        /// the key between the look-up and the insert, its value is returned and `f`'s
        /// result is dropped.
        ///
        /// # Errors
        /// As [`Self::insert`].
        pub fn get_or_insert_with(&self, key: K, f: impl FnOnce() -> V) -> Result<V> {
            match self.get(&key)? {
                Some(value) => Ok(value),
                None => self.get_or_insert(key, f()),
            }
        }

        /// Removes every entry, one by one (not atomic as a whole).
        pub fn clear(&self) {
            let _ = self.map().clear(self.object.region());
        }

        /// Counts the entries and resets the len counters to the count. A process killed
        /// between an insert or remove and its counter update leaves `len` one off; this
        /// repairs it. Exact only while no other process changes the map.
        pub fn recount(&self) -> usize {
            self.map().recount(self.object.region()).unwrap_or(0) as usize
        }

        /// The object's name.
        pub fn name(&self) -> &str {
            &self.object.info().name
        }
    }

    impl<K: Pod, V: Pod + crate::Integer> HashMap<K, V> {
        /// Adds `delta` to the value of `key`, inserting `delta` if it is absent; returns
        /// the previous value (zero when absent). Many processes may count into one map
        /// at once; no update is lost.
        ///
        /// # Errors
        /// [`Error::Overflow`] (the value is left unchanged); [`Error::OutOfMemory`].
        pub fn fetch_add(&self, key: K, delta: V) -> Result<V> {
            let zero: V = bytemuck::Zeroable::zeroed();
            for _ in 0..1 << 16 {
                let mut overflow = false;
                match self.fetch_update(&key, |value| {
                    let sum = value.checked_add_value(delta);
                    overflow = sum.is_none();
                    sum
                })? {
                    Ok(previous) => return Ok(previous),
                    Err(Some(_)) if overflow => return Err(Error::Overflow),
                    Err(_) => {}
                }
                if self.insert_absent(key, delta)? {
                    return Ok(zero);
                }
            }
            Err(Error::Contended("hash map fetch_add"))
        }

        /// `try_insert` for `fetch_add`'s first add to a key, which its update found
        /// absent: whether it inserted. Out of line, so that the insert path does not
        /// weigh on the update's.
        #[cold]
        #[inline(never)]
        fn insert_absent(&self, key: K, value: V) -> Result<bool> {
            // Claims at once: the update has just walked the key's slots.
            Ok(self.insert_with(&key, &value, false, true)?.is_none())
        }
    }

    /// A named hash set of `K` in a region (Python's `Manager().set()`); the same
    /// lock-free table as [`HashMap`], without values.
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-set-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let seen = region.hash_set::<u64>("seen", 256)?;
    /// assert!(seen.insert(42)?);
    /// assert!(!seen.insert(42)?);
    /// assert!(seen.contains(&42)?);
    /// assert!(seen.remove(&42)?);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    pub struct HashSet<K: Pod> {
        map: HashMap<K, ()>,
    }

    impl<K: Pod> Clone for HashSet<K> {
        fn clone(&self) -> Self {
            Self {
                map: self.map.clone(),
            }
        }
    }

    impl<K: Pod> std::fmt::Debug for HashSet<K> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("HashSet")
                .field("name", &self.map.name())
                .field("len", &self.len())
                .field("capacity", &self.capacity())
                .finish_non_exhaustive()
        }
    }

    impl<K: Pod> HashSet<K> {
        /// The catalog descriptor of a set with `capacity` slots.
        pub fn descriptor(capacity: u64) -> TypeDescriptor {
            map_descriptor(
                ObjectKind::HashSet,
                capacity,
                (ElementType::of::<K>(), ElementType::of::<()>()),
            )
        }

        /// Opens the set `name`, creating it empty with `capacity` slots (rounded up to a
        /// power of two).
        ///
        /// # Errors
        /// As [`HashMap::get_or_create`].
        pub fn get_or_create(region: &Region, name: &str, capacity: u64) -> Result<Self> {
            HashMap::get_or_create_kind(region, name, capacity, ObjectKind::HashSet)
                .map(|map| Self { map })
        }

        /// Opens the existing set `name`.
        ///
        /// # Errors
        /// As [`HashMap::open`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            HashMap::open_kind(region, name, ObjectKind::HashSet).map(|map| Self { map })
        }

        /// Adds `key`; whether it was absent.
        ///
        /// # Errors
        /// [`Error::OutOfMemory`] when the map has to grow and the region has no room for
        /// its next table.
        pub fn insert(&self, key: K) -> Result<bool> {
            Ok(self.map.try_insert(key, ())?.is_none())
        }

        /// Removes `key`; whether it was present.
        ///
        /// # Errors
        /// [`Error::Contended`] on a hostile table.
        pub fn remove(&self, key: &K) -> Result<bool> {
            Ok(self.map.remove(key)?.is_some())
        }

        /// Whether `key` is present. Never waits.
        ///
        /// # Errors
        /// [`Error::Contended`] on a hostile table.
        pub fn contains(&self, key: &K) -> Result<bool> {
            self.map.contains_key(key)
        }

        /// Members (see [`HashMap::len`]).
        pub fn len(&self) -> usize {
            self.map.len()
        }

        /// Whether the set is empty.
        pub fn is_empty(&self) -> bool {
            self.map.is_empty()
        }

        /// Number of slots.
        pub fn capacity(&self) -> usize {
            self.map.capacity()
        }

        /// Iterates over the members (weakly consistent, see [`HashMap::iter`]).
        pub fn iter(&self) -> impl Iterator<Item = Result<K>> + '_ {
            self.map.keys()
        }

        /// The members in a `Vec`, in slot order (one walk, see [`HashMap::snapshot`]).
        ///
        /// # Errors
        /// As [`HashMap::snapshot`].
        pub fn snapshot(&self) -> Result<Vec<K>> {
            self.iter().collect()
        }

        /// The members in a `std` [`HashSet`](std::collections::HashSet).
        ///
        /// ```
        /// use shmarena::{Region, RegionExt};
        /// # let path = std::env::temp_dir().join(format!("shmarena-doc-set-std-{}", std::process::id()));
        /// let region = Region::create(&path, 1 << 20)?;
        /// let seen = region.hash_set::<u64>("seen", 64)?;
        /// seen.extend([3, 5, 3])?;
        /// assert_eq!(seen.to_std_set()?, [3, 5].into());
        /// # Region::unlink(&path)?;
        /// # Ok::<(), shmarena::Error>(())
        /// ```
        ///
        /// # Errors
        /// As [`HashMap::snapshot`].
        pub fn to_std_set(&self) -> Result<std::collections::HashSet<K>>
        where
            K: Eq + std::hash::Hash,
        {
            self.iter().collect()
        }

        /// Adds each key in turn (not atomic as a whole); how many were absent.
        ///
        /// # Errors
        /// The first error of an insert ([`Error::OutOfMemory`]); the keys before it stay
        /// in.
        pub fn extend(&self, keys: impl IntoIterator<Item = K>) -> Result<usize> {
            let mut added = 0;
            for key in keys {
                added += usize::from(self.insert(key)?);
            }
            Ok(added)
        }

        /// Removes every member, one by one.
        pub fn clear(&self) {
            self.map.clear();
        }

        /// See [`HashMap::recount`].
        pub fn recount(&self) -> usize {
            self.map.recount()
        }

        /// The object's name.
        pub fn name(&self) -> &str {
            self.map.name()
        }
    }

    /// A named hash map whose keys and values are byte strings of up to `key_size` and
    /// `value_size` bytes, sizes chosen when it is created (for bindings whose types are
    /// known only at run time, such as the Python package). The same lock-free table as
    /// [`HashMap`]; a `HashMap<K, V>` and a `ByteMap` with `size_of::<K>()` and
    /// `size_of::<V>()` open the same object.
    ///
    /// Shorter keys and values are padded with zero bytes, so `b"a"` and `b"a\0"` are one
    /// key: an encoding that needs to tell them apart stores its own length. Reads return
    /// all `key_size` / `value_size` bytes.
    ///
    /// ```
    /// use shmarena::{ByteMap, Region};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-bytemap-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let map = ByteMap::get_or_create(&region, "config", 64, 16, 4)?;
    /// map.insert(b"threads", &8u32.to_le_bytes())?;
    /// assert_eq!(map.get(b"threads")?, Some(8u32.to_le_bytes().to_vec()));
    /// assert!(map.insert(&[0; 17], b"").is_err()); // key over 16 bytes
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    #[derive(Clone)]
    pub struct ByteMap {
        slots: MappedSlots,
        guess: TableGuess,
        seed: u64,
        key_size: usize,
        value_size: usize,
        object: Object,
    }

    impl std::fmt::Debug for ByteMap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ByteMap")
                .field("name", &self.object.info().name)
                .field("key_size", &self.key_size)
                .field("value_size", &self.value_size)
                .field("len", &self.len())
                .finish_non_exhaustive()
        }
    }

    impl Lookups for ByteMap {
        type Shape = super::Dynamic;

        fn map(&self) -> GrowingMap<MappedTables<'_>> {
            GrowingMap::new(
                MappedTables::new(self.object.region(), &self.slots, Some(&self.guess)),
                crate::words::word_count_of(self.key_size as u64) as usize,
                crate::words::word_count_of(self.value_size as u64) as usize,
                self.seed,
            )
        }

        #[inline]
        fn liveness(&self) -> &Region {
            self.object.region()
        }
    }

    impl ByteMap {
        /// Opens the map `name`, creating it empty with `capacity` slots (rounded up to a
        /// power of two) for keys of up to `key_size` bytes and values of up to
        /// `value_size`.
        ///
        /// # Errors
        /// As [`HashMap::get_or_create`].
        pub fn get_or_create(
            region: &Region,
            name: &str,
            capacity: u64,
            key_size: usize,
            value_size: usize,
        ) -> Result<Self> {
            check_sizes(key_size, value_size)?;
            let types = (ElementType::bytes(key_size), ElementType::bytes(value_size));
            create_map(region, name, capacity, types, ObjectKind::HashMap)
                .map(|parts| Self::from_parts(parts, (key_size, value_size)))
        }

        /// Opens the existing map `name`, whatever its capacity and sizes.
        ///
        /// # Errors
        /// As [`HashMap::open`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            Self::open_kind(region, name, ObjectKind::HashMap)
        }

        fn open_kind(region: &Region, name: &str, kind: ObjectKind) -> Result<Self> {
            let info = region
                .find_object(name)?
                .ok_or_else(|| Error::ObjectNotFound(name.to_owned()))?;
            let sizes = (
                usize::from(info.descriptor.key_size),
                usize::from(info.descriptor.elem_size),
            );
            let types = (ElementType::bytes(sizes.0), ElementType::bytes(sizes.1));
            open_map(region, name, types, kind).map(|parts| Self::from_parts(parts, sizes))
        }

        fn from_parts(
            (object, slots): (Object, MappedSlots),
            (key_size, value_size): (usize, usize),
        ) -> Self {
            Self {
                slots,
                guess: TableGuess::default(),
                seed: object.region().hash_seed(),
                key_size,
                value_size,
                object,
            }
        }

        /// Runs `f` on the words of `bytes` (zero-padded to `size` bytes' worth), built in
        /// place (on the stack for up to 512 bytes); an error for `bytes` over `size`.
        #[inline]
        fn with_words<R>(
            bytes: &[u8],
            size: usize,
            what: &str,
            f: impl FnOnce(&[u64]) -> Result<R>,
        ) -> Result<R> {
            check_fits(bytes, size, what, "map")?;
            let count = crate::words::word_count_of(size as u64) as usize;
            with_bytes_as_words(bytes, count, f)
        }

        /// Largest key, in bytes.
        pub fn key_size(&self) -> usize {
            self.key_size
        }

        /// Largest value, in bytes.
        pub fn value_size(&self) -> usize {
            self.value_size
        }

        /// The value of `key`. Never waits.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for an oversized key; as [`HashMap::get`].
        pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
            self.get_with(key, <[u8]>::to_vec)
        }

        /// The value of `key` lent to `f` (all `value_size` bytes) instead of copied into
        /// a `Vec`: no allocation for values of up to 512 bytes. Never waits.
        ///
        /// # Errors
        /// As [`Self::get`].
        pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
            let value_words = crate::words::word_count_of(self.value_size as u64) as usize;
            Self::with_words(key, self.key_size, "a key", |key| {
                with_buffer(value_words, |value| {
                    let found = self.lookup(key, value)?;
                    Ok(
                        found
                            .then(|| f(&bytemuck::cast_slice::<u64, u8>(value)[..self.value_size])),
                    )
                })
            })
        }

        /// Whether `key` is present. Never waits.
        ///
        /// # Errors
        /// As [`Self::get`].
        pub fn contains_key(&self, key: &[u8]) -> Result<bool> {
            Self::with_words(key, self.key_size, "a key", |key| self.lookup_contains(key))
        }

        /// Inserts or replaces; returns the value replaced.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for an oversized key or value;
        /// [`Error::OutOfMemory`].
        pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
            self.insert_with(key, value, true)
        }

        /// Inserts only if `key` is absent: `None` when inserted, else the value present.
        ///
        /// # Errors
        /// As [`Self::insert`].
        pub fn try_insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
            self.insert_with(key, value, false)
        }

        fn insert_with(&self, key: &[u8], value: &[u8], replace: bool) -> Result<Option<Vec<u8>>> {
            let region = self.object.region();
            let value_words = crate::words::word_count_of(self.value_size as u64) as usize;
            Self::with_words(key, self.key_size, "a key", |key| {
                Self::with_words(value, self.value_size, "a value", |value| {
                    with_buffer(value_words, |old| {
                        let had = self.map().insert(key, value, replace, old, region)?;
                        Ok(had.then(|| {
                            bytemuck::cast_slice::<u64, u8>(old)[..self.value_size].to_vec()
                        }))
                    })
                })
            })
        }

        /// Removes `key`; returns its value.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for an oversized key; [`Error::Contended`].
        pub fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
            let value_words = crate::words::word_count_of(self.value_size as u64) as usize;
            Self::with_words(key, self.key_size, "a key", |key| {
                with_buffer(value_words, |old| {
                    let had = self.map().remove(key, old, self.object.region())?;
                    Ok(had
                        .then(|| bytemuck::cast_slice::<u64, u8>(old)[..self.value_size].to_vec()))
                })
            })
        }

        /// Offers the value of `key` to `f(current, new)` until what `f` wrote into `new`
        /// (`value_size` zero bytes to start with) is stored, or `f` returns false (`f`
        /// may run several times): `Done`, `Declined`, or `Absent` when the key is not in
        /// the map. [`Self::fetch_update`] without its allocations.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for an oversized key; [`Error::Contended`].
        pub fn update_with(
            &self,
            key: &[u8],
            mut f: impl FnMut(&[u8], &mut [u8]) -> bool,
        ) -> Result<Updated> {
            let size = self.value_size;
            Self::with_words(key, self.key_size, "a key", |key| {
                // No copy of the value seen last: `f` sees it.
                self.map().update(
                    key,
                    &mut [],
                    self.object.region(),
                    |seen: &[u64], out: &mut [u64]| {
                        out.fill(0);
                        f(
                            &bytemuck::cast_slice::<u64, u8>(seen)[..size],
                            &mut bytemuck::cast_slice_mut::<u64, u8>(out)[..size],
                        )
                    },
                )
            })
        }

        /// Applies `f` to the value of `key` until its result is stored (`f` may run
        /// several times). `Ok(Ok(previous))` when stored; `Ok(Err(Some(value)))` when `f`
        /// returned `None`; `Ok(Err(None))` when the key is absent.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for an oversized key, or a value from `f` over
        /// `value_size` (nothing is stored); [`Error::Contended`].
        pub fn fetch_update(
            &self,
            key: &[u8],
            mut f: impl FnMut(&[u8]) -> Option<Vec<u8>>,
        ) -> Result<std::result::Result<Vec<u8>, Option<Vec<u8>>>> {
            let mut oversized = None;
            let mut previous = Vec::new();
            let outcome = self.update_with(key, |current, out| {
                previous.clear();
                previous.extend_from_slice(current);
                let Some(new) = f(current) else {
                    return false;
                };
                if new.len() > out.len() {
                    oversized = Some(new.len());
                    return false;
                }
                out[..new.len()].copy_from_slice(&new);
                true
            })?;
            if let Some(len) = oversized {
                return Err(Error::InvalidArgument(format!(
                    "a value of {len} bytes does not fit this map's {}",
                    self.value_size
                )));
            }
            Ok(match outcome {
                Updated::Done => Ok(previous),
                Updated::Declined => Err(Some(previous)),
                Updated::Absent => Err(None),
            })
        }

        /// Entries (see [`HashMap::len`]).
        pub fn len(&self) -> usize {
            self.map().len() as usize
        }

        /// Whether the map has no entries.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Number of slots of the newest table: how many entries fit before the map grows
        /// again.
        pub fn capacity(&self) -> usize {
            self.map().capacity() as usize
        }

        /// Iterates over the entries by slot (weakly consistent, see [`HashMap::iter`]).
        pub fn iter(&self) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + '_ {
            let map = self.map();
            let key_words = crate::words::word_count_of(self.key_size as u64) as usize;
            let value_words = crate::words::word_count_of(self.value_size as u64) as usize;
            // A walk that could not start (no pin) reports that once.
            let mut walk = map.walk().map_err(Some);
            std::iter::from_fn(move || {
                let walk = match &mut walk {
                    Ok(walk) => walk,
                    Err(error) => return error.take().map(Err),
                };
                let mut value = None;
                let key = read_bytes_into(key_words, self.key_size, |key| {
                    value = read_bytes_into(value_words, self.value_size, |value| {
                        map.next_entry(walk, key, value)
                    })?;
                    Ok::<_, Error>(value.is_some())
                });
                match (key, value) {
                    (Ok(Some(key)), Some(value)) => Some(Ok((key, value))),
                    (Ok(_), _) => None,
                    (Err(error), _) => Some(Err(error)),
                }
            })
        }

        /// Removes every entry, one by one (not atomic as a whole).
        pub fn clear(&self) {
            let _ = self.map().clear(self.object.region());
        }

        /// See [`HashMap::recount`].
        pub fn recount(&self) -> usize {
            self.map().recount(self.object.region()).unwrap_or(0) as usize
        }

        /// The object's name.
        pub fn name(&self) -> &str {
            &self.object.info().name
        }

        /// The region holding the map.
        pub fn region(&self) -> &Region {
            self.object.region()
        }
    }

    /// A named hash set of byte strings of up to `key_size` bytes, chosen at creation: the
    /// run-time-sized counterpart of [`HashSet`], as [`ByteMap`] is of [`HashMap`].
    ///
    /// ```
    /// use shmarena::{ByteSet, Region};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-byteset-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let seen = ByteSet::get_or_create(&region, "seen", 64, 32)?;
    /// assert!(seen.insert(b"alpha")?);
    /// assert!(!seen.insert(b"alpha")?);
    /// assert!(seen.contains(b"alpha")?);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct ByteSet {
        map: ByteMap,
    }

    impl ByteSet {
        /// Opens the set `name`, creating it empty with `capacity` slots for keys of up to
        /// `key_size` bytes.
        ///
        /// # Errors
        /// As [`HashMap::get_or_create`].
        pub fn get_or_create(
            region: &Region,
            name: &str,
            capacity: u64,
            key_size: usize,
        ) -> Result<Self> {
            check_sizes(key_size, 0)?;
            let types = (ElementType::bytes(key_size), ElementType::bytes(0));
            create_map(region, name, capacity, types, ObjectKind::HashSet).map(|parts| Self {
                map: ByteMap::from_parts(parts, (key_size, 0)),
            })
        }

        /// Opens the existing set `name`.
        ///
        /// # Errors
        /// As [`HashMap::open`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            ByteMap::open_kind(region, name, ObjectKind::HashSet).map(|map| Self { map })
        }

        /// Adds `key`; whether it was absent.
        ///
        /// # Errors
        /// As [`ByteMap::insert`].
        pub fn insert(&self, key: &[u8]) -> Result<bool> {
            Ok(self.map.try_insert(key, &[])?.is_none())
        }

        /// Removes `key`; whether it was present.
        ///
        /// # Errors
        /// As [`ByteMap::remove`].
        pub fn remove(&self, key: &[u8]) -> Result<bool> {
            Ok(self.map.remove(key)?.is_some())
        }

        /// Whether `key` is present. Never waits.
        ///
        /// # Errors
        /// As [`ByteMap::get`].
        pub fn contains(&self, key: &[u8]) -> Result<bool> {
            self.map.contains_key(key)
        }

        /// Largest key, in bytes.
        pub fn key_size(&self) -> usize {
            self.map.key_size()
        }

        /// Members (see [`HashMap::len`]).
        pub fn len(&self) -> usize {
            self.map.len()
        }

        /// Whether the set is empty.
        pub fn is_empty(&self) -> bool {
            self.map.is_empty()
        }

        /// Number of slots.
        pub fn capacity(&self) -> usize {
            self.map.capacity()
        }

        /// Iterates over the members (weakly consistent, see [`HashMap::iter`]).
        pub fn iter(&self) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
            self.map.iter().map(|entry| entry.map(|(key, _)| key))
        }

        /// Removes every member, one by one.
        pub fn clear(&self) {
            self.map.clear();
        }

        /// See [`HashMap::recount`].
        pub fn recount(&self) -> usize {
            self.map.recount()
        }

        /// The object's name.
        pub fn name(&self) -> &str {
            self.map.name()
        }

        /// The region holding the set.
        pub fn region(&self) -> &Region {
            self.map.region()
        }
    }
}

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
