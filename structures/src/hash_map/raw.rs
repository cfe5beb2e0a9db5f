//! The algorithm core: [`RawMap`], one table's lookups, inserts, updates, removals and
//! settles over any [`Slots`] (the mapping, or a loom model's memory).

use super::{
    another_hint, aux, aux_version, aux_writer, bound, copy_still_valid, fence, frozen, grow,
    hash_key, hint_of, identity, kind, lowest_zero_byte, migrate, single, state, tag, tag_of,
    version, with_bound, with_kind, zero_bytes, AtomicPair, AtomicU64, Backoff, Error, Liveness,
    Ordering, OwnerId, Result, ARRIVED, BUSY, COLLIDED, COMMITTED, COUNTER_SHARDS, DELETED, EMPTY,
    FROZEN, HINT_ONLY_SCAN, INSERTING, KEY_KINDS, MAX_PROBE, MAX_RETRIES, MEMBER, MOVING, ONES,
    REMOVING,
};

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
    /// Word `word` (< [`header_words`](crate::hash_map::header_words)) of the table's header: the link to the next
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
pub(super) enum KeyAccess<'k> {
    Compare(&'k [u64]),
    Copy(&'k mut [u64]),
}

/// What a validated read of one slot found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// The slot held the key (and the value read belongs to it).
    Match,
    /// The slot held another key.
    Mismatch,
    /// The slot changed during the read: look again.
    Changed,
}

/// What a first look ([`RawMap::first_look`]) is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Look {
    /// A lookup, a removal: the key a member, or absent.
    Find,
    /// An insert: absent also where the first hinted slot is `DELETED` (claim at once);
    /// past another visited slot, the walk's.
    Insert,
    /// An update: the key a member; anything else is the walk's.
    Member,
}

/// The first look's visit of a slot ([`RawMap::first_visit`]).
pub(super) enum FirstVisit {
    /// The look ends there with this answer (`None`: the walk's to give).
    Ends(Option<Found>),
    /// The walk passes the slot: another key's, or free (most often the key's own, removed:
    /// a removal keeps the hint).
    Passes,
}

/// What one lookup walk found.
#[derive(Clone, Copy)]
pub(super) enum Found {
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
pub(super) struct Seen {
    pub(super) slot: u64,
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
pub(super) struct Claim {
    pub(super) slot: u64,
    /// Slots past the key's home.
    displacement: u64,
    /// The `BUSY` state written.
    busy: u64,
    /// Word 1 written with it: the inserter's owner id.
    owner_word: u64,
}

/// What a claim found.
pub(super) enum Claimed {
    Slot(Claim),
    /// No free slot within the limit.
    Full,
    /// A frozen slot on the way: the table is being migrated.
    Moved,
}

/// Result of trying to change a slot that may have been removed under the caller.
pub(super) enum SlotChange {
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
pub(super) const MAX_WRITER_WAIT: u32 = 1 << 20;

/// A wide value's writer field, held: `leave` publishes (or gives back) the field; if the
/// holder unwinds (or `leave` fails) first, drop gives it back, publishing the spare copy
/// if it was written to (`publish`): readers of the version before ours read that copy,
/// and only a new copy version tells them it changed.
pub(super) struct WriterField<'m, S: Slots, Sh: Shape> {
    map: &'m RawMap<S, Sh>,
    pub(super) slot: u64,
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
    pub(super) slots: S,
    pub(super) mask: u64,
    pub(super) max_probe: u64,
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
pub(super) fn prefetch(ptr: *const u8) {
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
pub(super) trait Visit {
    fn visit(&mut self, slot: u64) -> Result<bool>;
}

impl<F: FnMut(u64) -> Result<bool>> Visit for F {
    #[inline]
    fn visit(&mut self, slot: u64) -> Result<bool> {
        self(slot)
    }
}

/// `find_once`'s visit: the key and where to copy its value, and what was found.
pub(super) struct FindVisit<'a, S, Sh> {
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
    pub(super) fn key_words(&self) -> usize {
        self.shape.key_words()
    }

    /// Words of one value copy; 1 means the value lives in the pair (no copies).
    #[inline]
    pub(super) fn value_words(&self) -> usize {
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
    pub(super) fn wide(&self) -> bool {
        self.value_words() > 1
    }

    #[inline]
    pub(super) fn pair(&self, slot: u64) -> &AtomicPair {
        self.slots.pair(slot & self.mask)
    }

    #[inline]
    pub(super) fn copy(&self, slot: u64, copy_version: u64) -> &[AtomicU64] {
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
    pub(super) fn staging(&self, slot: u64) -> &AtomicU64 {
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
    pub(super) fn read_slot(
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
    pub(super) fn find_once(
        &self,
        hash: u64,
        key: &[u64],
        value: Option<&mut [u64]>,
    ) -> Result<Found> {
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
    pub(super) fn find_first(
        &self,
        hash: u64,
        key: &[u64],
        value: Option<&mut [u64]>,
    ) -> Option<Found> {
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
    pub(super) fn bound_at(&self, home: u64) -> u64 {
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
    pub(super) fn transition(
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
    pub(super) fn claim(
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
    pub(super) fn publish_as(
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
    pub(super) fn settle_copy(
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
