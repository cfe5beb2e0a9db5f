//! The handles over a map object in a region (`HashMap`, `HashSet`, `ByteMap`, `ByteSet`,
//! a file each) and what they share: the tables of a mapped map (`MappedSlots`,
//! `MappedTables`), creating and opening the object, and the lookups' cold paths.

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

mod byte_map;
mod byte_set;
mod map;
mod set;

pub use byte_map::ByteMap;
pub use byte_set::ByteSet;
pub use map::HashMap;
pub use set::HashSet;

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
        let table =
            region.arena_atomics::<std::sync::atomic::AtomicU64>(offset, meta_words(capacity))?;
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
        (1 << expected == capacity && recorded == capacity && slots / 64 < 1 << 32).then_some(())?;
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
            (*header.as_ptr().add(migrate::CAPACITY as usize)).store(capacity, Ordering::Relaxed);
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
