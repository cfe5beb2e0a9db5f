//! The slot and table layout: state-word fields, hint bytes, table offsets and the key
//! hash (see the module docs for the picture).

use super::{header_words, Error, OwnerId, Result, Step};

pub(super) const EMPTY: u64 = 0;
pub(super) const BUSY: u64 = 1;
pub(super) const INSERTING: u64 = 2;
pub(super) const MEMBER: u64 = 3;
pub(super) const DELETED: u64 = 4;
pub(super) const COLLIDED: u64 = 5;
pub(super) const REMOVING: u64 = 6;
/// A member's copy in the next table, written by a migration before it is committed (see
/// `migrate.rs`); word 1 names the mover and the source slot.
pub(super) const MOVING: u64 = 7;

pub(super) const KIND_MASK: u64 = 7;
/// The kinds a key operation stops at (as a mask of `1 << kind`): members, pending copies,
/// and removals whose late copies may still wait to be killed.
pub(super) const KEY_KINDS: u64 = 1 << MEMBER | 1 << INSERTING | 1 << REMOVING;
pub(super) const BOUND_SHIFT: u32 = 3;
pub(super) const BOUND_BITS: u32 = 12;
pub(super) const BOUND_MASK: u64 = ((1 << BOUND_BITS) - 1) << BOUND_SHIFT;
pub(super) const TAG_SHIFT: u32 = 15;
pub(super) const TAG_MASK: u64 = 0xfff << TAG_SHIFT;
/// The slot's table is being migrated and the slot has been taken out of use: only the
/// migration changes it any more (see `migrate.rs`).
pub(super) const FROZEN: u64 = 1 << 27;
/// On a frozen member: its copy in the next table is the key's only entry, and word 1
/// names that copy (slot and version) instead of holding the value.
pub(super) const COMMITTED: u64 = 1 << 28;
/// On a member: it arrived by migration (its key was counted, and an iteration that
/// walked the previous table has seen it there).
pub(super) const ARRIVED: u64 = 1 << 29;
pub(super) const VERSION_SHIFT: u32 = 30;

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
pub(super) const HINT_ONLY_SCAN: u64 = 16;

/// A byte of 1 in each of a word's 8 bytes.
pub(super) const ONES: u64 = 0x0101_0101_0101_0101;

/// 0x80 in every zero byte of `x`, 0 elsewhere (exact, no carries across bytes).
pub(super) fn zero_bytes(x: u64) -> u64 {
    !(((x & !(ONES << 7)).wrapping_add(!(ONES << 7))) | x | !(ONES << 7))
}

/// Whether a hint byte of `group` other than the lowest match `hinted` matches `hint` (the
/// hint in every byte) before the group's first never-claimed slot (`never_claimed`, 0 for
/// none): a slot the walk visits after `hinted`'s.
pub(super) fn another_hint(group: u64, hint: u64, hinted: u64, never_claimed: u64) -> bool {
    let mut later = zero_bytes(group ^ hint) & !(hinted | hinted.wrapping_sub(1));
    if never_claimed != 0 {
        later &= never_claimed - 1;
    }
    later != 0
}

/// 0x80 in the lowest zero byte of `x`, 0 if it has none: the cheaper test, whose false
/// positives lie only above a zero byte, is exact for the lowest.
pub(super) fn lowest_zero_byte(x: u64) -> u64 {
    let zeros = x.wrapping_sub(ONES) & !x & (ONES << 7);
    zeros & zeros.wrapping_neg()
}

/// The hint byte of a key with this hash.
pub(super) fn hint_of(hash: u64) -> u64 {
    0x80 | (hash >> 57)
}

/// Retries of an operation whose slots keep changing under it before it reports
/// [`Error::Contended`] (never reached without a corrupted or hostile table).
pub(super) const MAX_RETRIES: u32 = 1 << 16;

pub(super) fn kind(state: u64) -> u64 {
    state & KIND_MASK
}

pub(super) fn bound(state: u64) -> u64 {
    (state & BOUND_MASK) >> BOUND_SHIFT
}

pub(super) fn tag(state: u64) -> u64 {
    (state & TAG_MASK) >> TAG_SHIFT
}

pub(super) fn version(state: u64) -> u64 {
    state >> VERSION_SHIFT
}

/// Everything but the bound: which key incarnation the slot holds, and in what state.
pub(super) fn identity(state: u64) -> u64 {
    state & !BOUND_MASK
}

pub(super) fn frozen(state: u64) -> bool {
    state & FROZEN != 0
}

pub(super) fn tag_of(hash: u64) -> u64 {
    hash >> 52
}

/// A state of `kind` with `tag` and `version`, keeping the bound of `bound_from`.
pub(super) fn state(kind: u64, tag: u64, version: u64, bound_from: u64) -> u64 {
    kind | (bound_from & BOUND_MASK) | (tag << TAG_SHIFT) | (version << VERSION_SHIFT)
}

pub(super) fn with_kind(state: u64, kind: u64) -> u64 {
    (state & !KIND_MASK) | kind
}

pub(super) fn with_bound(state: u64, bound: u64) -> u64 {
    (state & !BOUND_MASK) | (bound << BOUND_SHIFT)
}

pub(super) fn aux(copy_version: u64, writer: Option<OwnerId>) -> u64 {
    (copy_version & 0xffff_ffff) | u64::from(writer.map_or(0, OwnerId::bits)) << 32
}

pub(super) fn aux_version(aux: u64) -> u64 {
    aux & 0xffff_ffff
}

pub(super) fn aux_writer(aux: u64) -> Option<OwnerId> {
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
pub(super) const FOLD_MULTIPLIER: u64 = 0x243f_6a88_85a3_08d3;

/// The second fold's multiplier (the golden ratio's fractional digits, odd).
pub(super) const SECOND_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// The high and low halves of `a * (b | 1)` (128 bits) xored: `b` a multiplier, kept odd.
#[inline]
pub(super) fn folded_multiply(a: u64, b: u64) -> u64 {
    fold_product(a, b | 1)
}

/// The high and low halves of `a * b` (128 bits) xored: two key words mixed whole.
#[inline]
pub(super) fn fold_product(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The answer of an operation on a map of one table, which is never migrated.
pub(super) fn single<T>(step: Step<T>) -> Result<T> {
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
pub(super) fn copy_still_valid(before: u64, after: u64) -> bool {
    after == before
        || (aux_version(after) == (aux_version(before) + 1) & 0xffff_ffff
            && aux_writer(after).is_none())
        || (aux_version(after) == aux_version(before) && aux_writer(after).is_some())
}
