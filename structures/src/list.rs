//! `List<T>`: a named append-only list that grows (Python's `Manager().list()` for its
//! common use: workers appending results), with lock-free `push`, indices that never move
//! and readers that never wait.
//!
//! ```text
//! body:
//!   0    claimed: u64, indices handed out by push                 (own cache line)
//!   8    directory: u64, region offset of the segment directory (0: not made yet)
//!   16   segment (or directory) being made: maker << 32 | j (33: the directory); 24 its
//!        block: maker << 32 | offset / 64 (see `crate::made`)
//!   64   segment 0: capacity x slot (state: u64, then the element: one word if T fits in
//!        8 bytes, else two copies of ceil(size_of T / 8) words)
//! directory (an arena block of 32 words): word j - 1 = region offset of segment j
//!   (0: not made yet); segment j, an arena block, holds capacity << (j - 1) slots, so
//!   index i lives in segment 0 below capacity, else in segment floor(log2(i / capacity))
//!   + 1: every segment doubles what the list holds, and an index, once handed out, stays
//!   where it is.
//!
//! state: | writer: 31 bits | version: 31 bits | kind: 2 bits |
//!   EMPTY               index not handed out yet
//!   PUSHING(writer)     push is copying the element in (writer in the writer field)
//!   READY(version)      element present; for wide T, copy (version & 1) is the current one;
//!                       a set in progress shows its writer in the writer field
//!   HOLE                a push whose process died before publishing: no element, ever
//! ```
//!
//! `push`: make sure the segment of the next index exists (else make it: allocate a block
//! from the arena, zero it, publish it in the directory with one compare-exchange; a
//! process that loses the race frees its block), then CAS `claimed` up by one, mark the
//! slot PUSHING, copy the element, store READY (Release: the linearization point). Indices
//! are stable and returned by `push`. When the region has no room for the next segment,
//! `push` fails with `Error::OutOfMemory` before claiming anything, and the list stays as
//! it was. A process killed between allocating a segment and publishing it leaks nothing:
//! the maker records the block (body words 16 and 24, see [`crate::made`]) from the
//! arena's hand-out until just before the publication, and the next process to make a
//! segment or the directory gives a dead maker's block back first (as does each handle
//! as it opens the list). One killed after
//! publishing it has left a whole segment.
//!
//! `get(i)`: one-word elements are read with a single atomic load. Wide elements are read
//! seqlock-style from the current copy and validated by re-reading the state: valid if
//! the version is unchanged, or advanced by one with no writer left (the writer of the
//! next version writes the *other* copy). Readers never wait; they retry only when a
//! `set` completed during their read.
//!
//! `set(i, v)`: one-word elements: a single atomic store. Wide elements: take the slot's
//! writer field (CAS; a live writer of the same index is waited for, a dead one's claim is
//! taken over), write the other copy, then store READY with the next version (Release).
//!
//! Deaths: kills are final, nobody publishes another process's element. A pusher killed
//! before READY leaves its index EMPTY (killed before marking it) or PUSHING(dead); the
//! first reader or writer that notices PUSHING(dead) turns it into a HOLE (`get` returns
//! `None` there, `snapshot` skips it): that push never takes effect, and `get` answers
//! `None` there before and after. A setter killed mid-write leaves its claim, which the
//! next setter takes over, writing over the dead setter's half-written copy; the current
//! copy was never touched, so readers see the old value until then and the dead set never
//! takes effect.
//!
//! Not offered: `insert` and `remove` in the middle, `sort`, `reverse`: they move elements
//! between indices, which cannot be done without blocking readers or losing the stable
//! index `push` promised; build a new list instead.

use shmarena_engine::sync::{fence, AtomicU64, Backoff, Ordering};
use shmarena_engine::{Error, Liveness, OwnerId, Result};

const EMPTY: u64 = 0;
const PUSHING: u64 = 1;
const READY: u64 = 2;
const HOLE: u64 = 3;
const VERSION_MASK: u64 = (1 << 31) - 1;

/// Byte offset of the first slot (after the claimed counter's cache line).
#[cfg(not(loom))]
const SLOTS: u64 = 64;

/// Words of one slot for an element of `element_words` words: the state word, then the
/// element once (one word) or twice (two copies).
#[cfg(not(loom))]
fn slot_words_for(element_words: u64) -> u64 {
    1 + if element_words == 1 {
        1
    } else {
        2 * element_words
    }
}

/// Reads a wide element retries at most this often before reporting contention.
const MAX_READ_RETRIES: u32 = 1 << 16;

fn kind(state: u64) -> u64 {
    state & 3
}

fn version(state: u64) -> u64 {
    (state >> 2) & VERSION_MASK
}

/// Where the writer field starts in a state word.
const WRITER_SHIFT: u32 = 33;

fn writer(state: u64) -> Option<OwnerId> {
    OwnerId::from_bits((state >> WRITER_SHIFT) as u32)
}

fn pack(kind: u64, version: u64, writer: Option<OwnerId>) -> u64 {
    kind | ((version & VERSION_MASK) << 2)
        | (u64::from(writer.map_or(0, OwnerId::bits)) << WRITER_SHIFT)
}

/// One slot of the list: its state word and its data words (one word, or two copies).
#[derive(Clone, Copy, Debug)]
pub struct RawSlot<'a> {
    /// State word.
    pub state: &'a AtomicU64,
    /// Data words: `words` for a one-word element, else `2 * words`.
    pub data: &'a [AtomicU64],
    /// Words per element.
    pub words: usize,
}

impl RawSlot<'_> {
    fn copy(&self, index: u64) -> &[AtomicU64] {
        if self.words == 1 {
            self.data
        } else {
            let start = (index as usize & 1) * self.words;
            &self.data[start..start + self.words]
        }
    }

    fn write(&self, copy: u64, value: &[u64]) {
        for (cell, word) in self.copy(copy).iter().zip(value) {
            // Relaxed: published by the Release store of the state.
            cell.store(*word, Ordering::Relaxed);
        }
    }

    /// Publishes the first value of a freshly claimed slot.
    pub fn push(&self, value: &[u64], me: OwnerId) {
        // Release: marks the claim for dead-pusher detection; whoever sees it also sees the
        // claimed counter past this index (what `check` relies on). No data is read yet.
        self.state
            .store(pack(PUSHING, 0, Some(me)), Ordering::Release);
        self.write(0, value);
        fail::fail_point!("list::push_before_publish");
        // Release: publishes the element (the push's linearization point).
        self.state.store(pack(READY, 0, None), Ordering::Release);
    }

    /// Turns an abandoned push into a hole; whether the slot is now a hole.
    fn bury_if_dead(&self, state: u64, liveness: &impl Liveness) -> bool {
        if writer(state).is_some_and(|w| liveness.is_alive(w)) {
            return false;
        }
        // Relaxed: a hole carries no data.
        let _ = self.state.compare_exchange(
            state,
            pack(HOLE, 0, None),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        true
    }

    /// The element, `None` for a hole or a push still in progress.
    ///
    /// # Errors
    /// [`Error::Contended`] if sets keep completing during the read (never in practice).
    pub fn get(&self, out: &mut [u64], liveness: &impl Liveness) -> Result<bool> {
        for _ in 0..MAX_READ_RETRIES {
            // Acquire: pairs with the Release store that published this version.
            let before = self.state.load(Ordering::Acquire);
            match kind(before) {
                READY => {}
                PUSHING => {
                    self.bury_if_dead(before, liveness);
                    return Ok(false);
                }
                EMPTY | HOLE => return Ok(false),
                _ => unreachable!("a state has two bits"),
            }
            for (word, cell) in out.iter_mut().zip(self.copy(version(before))) {
                // Relaxed: validated by the state re-read below.
                *word = cell.load(Ordering::Relaxed);
            }
            if self.words == 1 {
                return Ok(true); // one atomic load: cannot be torn
            }
            // Acquire fence: the data loads above happen before the state re-read, so a
            // writer's overwrite of our copy would show in it.
            fence(Ordering::Acquire);
            // Relaxed: ordered by the fence.
            let after = self.state.load(Ordering::Relaxed);
            let same = after == before;
            // The next version's writer writes the other copy; only the one after that
            // (which needs the writer field again) could touch ours.
            let next_done = kind(after) == READY
                && version(after) == (version(before) + 1) & VERSION_MASK
                && writer(after).is_none();
            let next_running = kind(after) == READY
                && version(after) == version(before)
                && writer(after).is_some();
            if same || next_done || next_running {
                return Ok(true);
            }
        }
        Err(Error::Contended("list read"))
    }

    /// Replaces the element; `Ok(false)` if the slot holds none (a hole, or a push still
    /// in progress).
    ///
    /// # Errors
    /// None at present (the `Result` leaves room for a bounded wait).
    pub fn set(&self, value: &[u64], me: OwnerId, liveness: &impl Liveness) -> Result<bool> {
        let backoff = Backoff::new();
        loop {
            // Acquire: see the last writer's copy before we overwrite the other one.
            let state = self.state.load(Ordering::Acquire);
            match kind(state) {
                READY => {}
                PUSHING => {
                    self.bury_if_dead(state, liveness);
                    return Ok(false);
                }
                _ => return Ok(false),
            }
            if self.words == 1 {
                // SeqCst: a single atomic store is the whole update.
                self.data[0].store(value[0], Ordering::SeqCst);
                return Ok(true);
            }
            if let Some(owner) = writer(state) {
                // Another process (or another thread of ours: same owner id) is setting this
                // index: wait for it; a dead one's claim is taken over below.
                if owner == me || liveness.is_alive(owner) {
                    backoff.snooze();
                    continue;
                }
            }
            let mine = pack(READY, version(state), Some(me));
            // Acquire on success: we now own the slot's spare copy.
            if self
                .state
                .compare_exchange(state, mine, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                backoff.spin();
                continue;
            }
            // Release fence: readers that see our data must also see our claim (so they
            // reject a copy we are overwriting).
            fence(Ordering::Release);
            let next = (version(state) + 1) & VERSION_MASK;
            self.write(next, value);
            fail::fail_point!("list::set_before_publish");
            // Release: publishes the new copy and the new version together.
            self.state.store(pack(READY, next, None), Ordering::Release);
            return Ok(true);
        }
    }
}

#[cfg(not(loom))]
pub(crate) use handle::retire_owner_slot;
#[cfg(not(loom))]
pub use handle::{ByteList, List};

#[cfg(not(loom))]
mod handle {
    use super::RawSlot;
    use crate::identity::{check_elem_size, name_expected, short_type_name, ElementType};
    use crate::made::MadeRecord;
    use crate::words::{
        check_fits, read_bytes_into, try_read_words_into, with_bytes_as_words, with_words_of,
        word_count_of,
    };
    use bytemuck::Pod;
    use shmarena_engine::sync::{AtomicU64, Ordering};
    use shmarena_engine::{Error, Liveness, Object, ObjectKind, Region, Result, TypeDescriptor};
    use std::marker::PhantomData;
    use std::ptr::NonNull;

    /// Words before the first slot.
    const HEADER_WORDS: u64 = super::SLOTS / 8;

    /// Header word holding the region offset of the segment directory (0: not made yet).
    const DIRECTORY_WORD: usize = 1;

    /// Header words recording the block being made: what it is, and the block
    /// ([`MadeRecord`]).
    const MADE_WORDS: [usize; 2] = [2, 3];

    /// What a [`MadeRecord`] says for the directory (a segment says its number, 1 to
    /// [`MAX_SEGMENTS`]).
    const DIRECTORY_WHAT: u64 = MAX_SEGMENTS as u64 + 1;

    /// Segments after the first (the slots in the body). Segment `j` (1-based) holds
    /// `capacity << (j - 1)` slots, so each doubles what the list holds.
    const MAX_SEGMENTS: u32 = 32;

    fn descriptor(capacity: u64, elem: ElementType) -> TypeDescriptor {
        TypeDescriptor {
            elem_tag: elem.tag,
            ..TypeDescriptor::new(ObjectKind::List, elem.code, elem.size, capacity)
        }
    }

    /// Words of one slot after its state word.
    fn data_words(elem_size: usize) -> u64 {
        super::slot_words_for(word_count_of(elem_size as u64)) - 1
    }

    /// A named append-only list of elements of `elem_size` bytes, the size chosen when it
    /// is created (for bindings whose element types are known only at run time, such as
    /// the Python package): the same list as [`List`], which is a typed view of it.
    ///
    /// Shorter elements are padded with zero bytes; reads return all `elem_size` bytes.
    ///
    /// ```
    /// use shmarena::{ByteList, Region};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-bytelist-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let log = ByteList::get_or_create(&region, "log", 100, 3)?;
    /// let i = log.push(b"abc")?;
    /// log.set(i, b"xy")?;
    /// assert_eq!(log.get(i)?, Some(b"xy\0".to_vec()));
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    #[derive(Clone)]
    pub struct ByteList {
        base: NonNull<AtomicU64>,
        capacity: u64,
        slot_words: u64,
        elem_size: usize,
        object: Object,
    }

    // SAFETY: the list's words are atomics in the shared mapping, which `object` keeps
    // alive; elements are copied in and out, never referenced.
    unsafe impl Send for ByteList {}
    // SAFETY: as above.
    unsafe impl Sync for ByteList {}

    impl std::fmt::Debug for ByteList {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("List")
                .field("name", &self.object.info().name)
                .field("len", &self.len())
                .field("capacity", &self.capacity)
                .field("elem_size", &self.elem_size)
                .finish_non_exhaustive()
        }
    }

    impl ByteList {
        /// Opens the list `name`, creating it empty with room for `capacity` elements of
        /// `elem_size` bytes (it grows past them).
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for a zero capacity or an element over 64 KiB;
        /// [`Error::TypeMismatch`] (also for another capacity); catalog and arena errors.
        pub fn get_or_create(
            region: &Region,
            name: &str,
            capacity: u64,
            elem_size: usize,
        ) -> Result<Self> {
            Self::create(
                region,
                name,
                capacity,
                elem_size,
                ElementType::bytes(elem_size),
            )
        }

        /// As `get_or_create`, for elements of type `elem` (`elem_size` bytes).
        fn create(
            region: &Region,
            name: &str,
            capacity: u64,
            elem_size: usize,
            elem: ElementType,
        ) -> Result<Self> {
            if capacity == 0 || elem_size > usize::from(u16::MAX) {
                return Err(Error::InvalidArgument(format!(
                    "a list needs a capacity above 0 ({capacity} asked) and elements up to 65535 bytes ({elem_size} given)"
                )));
            }
            let size = capacity
                .checked_mul(8 * (1 + data_words(elem_size)))
                .and_then(|slots| slots.checked_add(8 * HEADER_WORDS))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("a list of {capacity} elements is too large"))
                })?;
            let descriptor = descriptor(capacity, elem);
            let (object, _) =
                crate::sweep::get_or_create_object(region, name, &descriptor, size, |_| Ok(()))?;
            let list = Self::opened(object)?;
            if list.capacity != capacity {
                return Err(Error::TypeMismatch {
                    name: name.to_owned(),
                    expected: descriptor.to_string(),
                    found: list.object.info().descriptor.to_string(),
                });
            }
            Ok(list)
        }

        /// Opens the existing list `name`, whatever its capacity and element size.
        ///
        /// # Errors
        /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::Corrupt`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            let info = region
                .find_object(name)?
                .ok_or_else(|| Error::ObjectNotFound(name.to_owned()))?;
            let elem_size = usize::from(info.descriptor.elem_size);
            Self::open_typed(region, name, ElementType::bytes(elem_size))
        }

        fn open_typed(region: &Region, name: &str, elem: ElementType) -> Result<Self> {
            Self::opened(crate::sweep::open_object(
                region,
                name,
                &descriptor(0, elem),
            )?)
        }

        pub(crate) fn from_object(object: Object) -> Result<Self> {
            let capacity = object.info().descriptor.capacity;
            if capacity == 0 {
                return Err(Error::Corrupt {
                    field: "list capacity",
                    detail: format!("object {:?}: 0", object.info().name),
                });
            }
            let elem_size = usize::from(object.info().descriptor.elem_size);
            let slot_words = 1 + data_words(elem_size);
            let words = capacity
                .checked_mul(slot_words)
                .and_then(|w| w.checked_add(HEADER_WORDS))
                .ok_or_else(|| Error::Corrupt {
                    field: "list capacity",
                    detail: capacity.to_string(),
                })?;
            // Checks that the header and every slot lie inside the body.
            let base = object.atomics::<std::sync::atomic::AtomicU64>(0, words)?;
            Ok(Self {
                base,
                capacity,
                slot_words,
                elem_size,
                object,
            })
        }

        /// [`Self::from_object`] for a handle a caller opened or created: a segment a dead
        /// appender made and never published comes back here too, not only at the next
        /// make (a list that grows no more does not keep it). (The checks and the
        /// participant sweep build their handles with `from_object`: a check writes
        /// nothing.)
        fn opened(object: Object) -> Result<Self> {
            let list = Self::from_object(object)?;
            let region = list.object.region();
            list.made()
                .give_back(region, |offset, what| list.free_made(offset, what));
            Ok(list)
        }

        fn claimed(&self) -> &AtomicU64 {
            // SAFETY: word 0 of the checked range; the mapping outlives `self`.
            unsafe { self.base.as_ref() }
        }

        fn element_words(&self) -> usize {
            word_count_of(self.elem_size as u64) as usize
        }

        /// The slot at `index` among `slots` consecutive slots from `first` (a checked
        /// pointer to them).
        fn slot_in(&self, first: NonNull<AtomicU64>, index: u64) -> RawSlot<'_> {
            let start = (index * self.slot_words) as usize;
            // SAFETY: callers pass `first` checked for the slots of its segment and an
            // index below that segment's slot count; the mapping outlives `self`.
            unsafe {
                RawSlot {
                    state: &*first.as_ptr().add(start),
                    data: std::slice::from_raw_parts(
                        first.as_ptr().add(start + 1),
                        (self.slot_words - 1) as usize,
                    ),
                    words: self.element_words(),
                }
            }
        }

        /// Segment and index in it of list index `index`, with the segment's slot count;
        /// `None` past the last segment.
        fn locate(&self, index: u64) -> Option<(u32, u64, u64)> {
            if index < self.capacity {
                return Some((0, index, self.capacity));
            }
            let lap = index / self.capacity; // >= 1
            let segment = u64::BITS - lap.leading_zeros(); // floor(log2(lap)) + 1
            if segment > MAX_SEGMENTS {
                return None;
            }
            let start = self.capacity.checked_mul(1 << (segment - 1))?;
            Some((segment, index - start, start))
        }

        /// Slots the list has room for with segments `0..=segment`, if that fits a u64.
        fn room_through(&self, segment: u32) -> Option<u64> {
            self.capacity.checked_mul(1 << segment)
        }

        /// The slot at `index`; `None` when its segment does not exist (and `grow` is
        /// false).
        ///
        /// # Errors
        /// [`Error::Full`] past the last segment; [`Error::OutOfMemory`] when growing finds
        /// the region full; [`Error::Corrupt`] for a segment directory that does not fit.
        fn slot_at(&self, index: u64, grow: bool) -> Result<Option<RawSlot<'_>>> {
            let Some((segment, within, slots)) = self.locate(index) else {
                return Err(Error::Full {
                    capacity: self.room_through(MAX_SEGMENTS).unwrap_or(u64::MAX),
                });
            };
            let first = if segment == 0 {
                // SAFETY: the body's slots follow its header; checked in from_object.
                unsafe { NonNull::new_unchecked(self.base.as_ptr().add(HEADER_WORDS as usize)) }
            } else {
                match self.segment(segment, slots, grow)? {
                    Some(first) => first,
                    None => return Ok(None),
                }
            };
            Ok(Some(self.slot_in(first, within)))
        }

        /// The first word of segment `segment` (of `slots` slots), made when `grow` asks
        /// and it is missing.
        fn segment(
            &self,
            segment: u32,
            slots: u64,
            grow: bool,
        ) -> Result<Option<NonNull<AtomicU64>>> {
            let Some(directory) = self.directory(grow)? else {
                return Ok(None);
            };
            let words = slots.checked_mul(self.slot_words).ok_or_else(|| {
                Error::corrupt("list segment", format!("{slots} slots do not fit a u64"))
            })?;
            // SAFETY: `directory` points at MAX_SEGMENTS checked words.
            let entry = unsafe { &*directory.as_ptr().add(segment as usize - 1) };
            self.block_in(entry, words, grow, u64::from(segment))
        }

        /// The segment directory, made when `grow` asks and it is missing.
        fn directory(&self, grow: bool) -> Result<Option<NonNull<AtomicU64>>> {
            // SAFETY: header word 1 of the checked range; the mapping outlives `self`.
            let word = unsafe { &*self.base.as_ptr().add(DIRECTORY_WORD) };
            self.block_in(word, u64::from(MAX_SEGMENTS), grow, DIRECTORY_WHAT)
        }

        /// The record of the block being made (see [`crate::made`]).
        fn made(&self) -> MadeRecord<'_> {
            // SAFETY: header words 2 and 3 of the checked range; the mapping outlives `self`.
            let [what, block] = MADE_WORDS.map(|at| unsafe { &*self.base.as_ptr().add(at) });
            MadeRecord { what, block }
        }

        /// Words of the block a [`MadeRecord`] says is `what` (`None` for a what no block
        /// of this list is).
        fn made_words(&self, what: u64) -> Option<u64> {
            match what {
                DIRECTORY_WHAT => Some(u64::from(MAX_SEGMENTS)),
                segment if (1..=u64::from(MAX_SEGMENTS)).contains(&segment) => self
                    .room_through(segment as u32 - 1)?
                    .checked_mul(self.slot_words),
                _ => None,
            }
        }

        /// Frees a dead maker's block at `offset`, of what it recorded it to be.
        fn free_made(&self, offset: u64, what: u64) {
            if let Some(bytes) = self.made_words(what).and_then(|w| w.checked_mul(8)) {
                // An error (a block that cannot be the arena's: a hostile record) is left.
                let _ = self.object.region().arena().free(offset, bytes);
            }
        }

        /// The block of `words` words whose region offset `word` holds; when it holds 0
        /// and `grow` asks, a new zeroed block (the segment or directory `what`, recorded
        /// while it is made) published there with one compare-exchange (a process that
        /// loses the race frees its own). A process killed between making a block and
        /// publishing it leaks nothing (see the module docs); nothing else is left half
        /// done.
        fn block_in(
            &self,
            word: &AtomicU64,
            words: u64,
            grow: bool,
            what: u64,
        ) -> Result<Option<NonNull<AtomicU64>>> {
            let region = self.object.region();
            // Acquire: pairs with the Release publication below, so the zeroed words are
            // seen before any use.
            let mut offset = word.load(Ordering::Acquire);
            if offset == 0 {
                if !grow {
                    return Ok(None);
                }
                if what == DIRECTORY_WHAT {
                    fail::fail_point!("list::directory_before_make");
                }
                if what != DIRECTORY_WHAT {
                    fail::fail_point!("list::grow_before_make");
                }
                let me = Liveness::me(region);
                let record = self.made();
                let recorded = record.begin(me, what, region, |offset, what| {
                    self.free_made(offset, what);
                });
                let made = region
                    .alloc_zeroed_words_recorded(words, |offset| {
                        if recorded {
                            record.block_taken(me, offset);
                        }
                    })
                    .inspect_err(|_| {
                        if recorded {
                            record.clear(me);
                        }
                    })?;
                if what == DIRECTORY_WHAT {
                    fail::fail_point!("list::directory_before_publish");
                }
                if what != DIRECTORY_WHAT {
                    fail::fail_point!("list::grow_before_publish");
                }
                if recorded {
                    // Before the publication: a record never names a published block.
                    record.clear(me);
                }
                // AcqRel: Release publishes the zeroed words; Acquire on failure sees the
                // winner's.
                match word.compare_exchange(0, made, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => offset = made,
                    Err(winner) => {
                        // Another process published first: ours goes back.
                        let _ = region.arena().free(made, 8 * words);
                        offset = winner;
                    }
                }
            }
            region
                .arena_atomics::<std::sync::atomic::AtomicU64>(offset, words)
                .map(Some)
        }

        /// The state words of every slot of every segment that exists, segment by segment,
        /// with each segment's slot count (for `check`).
        pub(crate) fn segment_slots(&self) -> Result<Vec<(Vec<&AtomicU64>, u64)>> {
            Ok(self
                .segments()?
                .into_iter()
                .map(|(first, slots)| {
                    let states = (0..slots).map(|i| self.slot_in(first, i).state).collect();
                    (states, slots)
                })
                .collect())
        }

        /// The claimed counter as stored (unbounded: for `check`).
        pub(crate) fn claimed_count(&self) -> u64 {
            // Acquire: pairs with the claim's Release, so the segments of the indices
            // counted are seen.
            self.claimed().load(Ordering::Acquire)
        }

        /// The segments that exist, with their first word and slot count (segment 0 first).
        fn segments(&self) -> Result<Vec<(NonNull<AtomicU64>, u64)>> {
            // SAFETY: as in slot_at.
            let body =
                unsafe { NonNull::new_unchecked(self.base.as_ptr().add(HEADER_WORDS as usize)) };
            let mut found = vec![(body, self.capacity)];
            for segment in 1..=MAX_SEGMENTS {
                let Some(slots) = self.room_through(segment - 1) else {
                    break;
                };
                match self.segment(segment, slots, false)? {
                    Some(first) => found.push((first, slots)),
                    None => break,
                }
            }
            Ok(found)
        }

        /// Runs `f` on the words of the element `bytes`; an error for one over
        /// `elem_size` bytes.
        fn with_element<R>(&self, bytes: &[u8], f: impl FnOnce(&[u64]) -> Result<R>) -> Result<R> {
            check_fits(bytes, self.elem_size, "an element", "list")?;
            with_bytes_as_words(bytes, self.element_words(), f)
        }

        fn in_bounds(&self, index: usize) -> Result<u64> {
            let len = self.len();
            if index >= len {
                return Err(Error::IndexOutOfBounds {
                    index: index as u64,
                    len: len as u64,
                });
            }
            Ok(index as u64)
        }

        fn push_words(&self, words: &[u64]) -> Result<usize> {
            // Relaxed: a guess for the claim below; the slot's Release store publishes the
            // element.
            let mut claimed = self.claimed().load(Ordering::Relaxed);
            let slot = loop {
                // The segment of the index about to be claimed exists before the claim (made
                // here if it does not), so a claimed index always has its slot: a push
                // that fails for want of memory claims nothing.
                let Some(slot) = self.slot_at(claimed, true)? else {
                    return Err(Error::corrupt("list segment", "missing after being made"));
                };
                // Release on success: whoever reads the count with Acquire (`check`) sees
                // the segment made above. Relaxed on failure: we look again.
                match self.claimed().compare_exchange_weak(
                    claimed,
                    claimed + 1,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break slot,
                    Err(actual) => claimed = actual, // another push took it: next index
                }
            };
            slot.push(words, self.object.region().participant_id());
            Ok(claimed as usize)
        }

        fn get_words(&self, index: usize, words: &mut [u64]) -> Result<bool> {
            let index = self.in_bounds(index)?;
            match self.slot_at(index, false)? {
                Some(slot) => slot.get(words, self.object.region()),
                None => Ok(false), // no segment: no element (only a damaged list)
            }
        }

        fn set_words(&self, index: usize, words: &[u64]) -> Result<()> {
            let slot = self.in_bounds(index)?;
            let region = self.object.region();
            let set = match self.slot_at(slot, false)? {
                Some(raw) => raw.set(words, region.participant_id(), region)?,
                None => false,
            };
            if set {
                Ok(())
            } else {
                // The push at this index has not finished (or died): not an element yet.
                Err(Error::IndexOutOfBounds {
                    index: slot,
                    len: self.len() as u64,
                })
            }
        }

        /// Appends `element`; returns its index.
        ///
        /// # Errors
        /// [`Error::OutOfMemory`] when the list must grow and the region has no room;
        /// [`Error::InvalidArgument`] for an element over `elem_size` bytes.
        pub fn push(&self, element: &[u8]) -> Result<usize> {
            self.with_element(element, |words| self.push_words(words))
        }

        /// The element at `index`: `None` if that push has not finished, or its process
        /// died before it did.
        ///
        /// # Errors
        /// [`Error::IndexOutOfBounds`] past the indices handed out.
        pub fn get(&self, index: usize) -> Result<Option<Vec<u8>>> {
            read_bytes_into(self.element_words(), self.elem_size, |words| {
                self.get_words(index, words)
            })
        }

        /// Replaces the element at `index` (never seen torn by readers).
        ///
        /// # Errors
        /// [`Error::IndexOutOfBounds`] as in [`List::set`]; [`Error::InvalidArgument`] for
        /// an element over `elem_size` bytes.
        pub fn set(&self, index: usize, element: &[u8]) -> Result<()> {
            self.with_element(element, |words| self.set_words(index, words))
        }

        /// Indices handed out so far (including pushes still in progress).
        pub fn len(&self) -> usize {
            // Relaxed: a snapshot; bounded by what the segments can hold against a
            // corrupted counter (reads past the segments that exist find nothing).
            let most = self.room_through(MAX_SEGMENTS).unwrap_or(u64::MAX);
            self.claimed().load(Ordering::Relaxed).min(most) as usize
        }

        /// Whether nothing has been pushed.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Elements the list has room for now; it grows (doubling) when a push needs more,
        /// as long as the region has room.
        pub fn capacity(&self) -> usize {
            self.segments().map_or(self.capacity, |segments| {
                segments.iter().map(|(_, n)| n).sum()
            }) as usize
        }

        /// Elements the list was created with room for.
        pub fn initial_capacity(&self) -> usize {
            self.capacity as usize
        }

        /// Bytes of one element.
        pub fn elem_size(&self) -> usize {
            self.elem_size
        }

        /// The object's name.
        pub fn name(&self) -> &str {
            &self.object.info().name
        }

        /// The region holding the list.
        pub fn region(&self) -> &Region {
            self.object.region()
        }
    }

    /// A named append-only list of `T`: a typed view of a [`ByteList`] of
    /// `size_of::<T>()`-byte elements.
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-list-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let results = region.list::<[u64; 3]>("results", 1000)?;
    /// let i = results.push([7, 8, 9])?; // any process; returns the index
    /// assert_eq!(results.get(i)?, Some([7, 8, 9]));
    /// results.set(i, [7, 8, 10])?; // never seen torn by readers
    /// assert_eq!(results.snapshot()?, vec![[7, 8, 10]]);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    pub struct List<T: Pod> {
        inner: ByteList,
        _type: PhantomData<T>,
    }

    impl<T: Pod> Clone for List<T> {
        fn clone(&self) -> Self {
            Self {
                inner: self.inner.clone(),
                _type: PhantomData,
            }
        }
    }

    impl<T: Pod> std::fmt::Debug for List<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.inner.fmt(f)
        }
    }

    impl<T: Pod> List<T> {
        /// The catalog descriptor of a list of `capacity` elements of `T` (its identity as
        /// [`identity`](crate::identity) describes).
        pub fn descriptor(capacity: u64) -> TypeDescriptor {
            descriptor(capacity, ElementType::of::<T>())
        }

        /// Opens the list `name`, creating it empty with room for `capacity` elements (it
        /// grows past them).
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for a zero capacity or an element over 64 KiB;
        /// [`Error::TypeMismatch`] (also for another capacity); catalog and arena errors.
        pub fn get_or_create(region: &Region, name: &str, capacity: u64) -> Result<Self> {
            ByteList::create(
                region,
                name,
                capacity,
                size_of::<T>(),
                ElementType::of::<T>(),
            )
            .map(Self::typed)
            .map_err(|error| {
                name_expected(error, || {
                    format!(
                        "List<{}> of initial capacity {capacity}",
                        short_type_name::<T>()
                    )
                })
            })
        }

        /// Opens the existing list `name`, whatever its capacity.
        ///
        /// # Errors
        /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::Corrupt`].
        pub fn open(region: &Region, name: &str) -> Result<Self> {
            check_elem_size::<T>()?;
            ByteList::open_typed(region, name, ElementType::of::<T>())
                .map(Self::typed)
                .map_err(Self::name_type)
        }

        fn name_type(error: Error) -> Error {
            name_expected(error, || format!("List<{}>", short_type_name::<T>()))
        }

        fn typed(inner: ByteList) -> Self {
            Self {
                inner,
                _type: PhantomData,
            }
        }

        /// Appends `value`; returns its index.
        ///
        /// # Errors
        /// [`Error::OutOfMemory`] when the list must grow and the region has no room.
        pub fn push(&self, value: T) -> Result<usize> {
            with_words_of(&value, |words| self.inner.push_words(words))
        }

        /// Appends every value (each its own push: not atomic as a whole); returns the
        /// indices.
        ///
        /// # Errors
        /// [`Error::OutOfMemory`] when the region runs out part-way (the earlier values stay).
        pub fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<Vec<usize>> {
            values.into_iter().map(|value| self.push(value)).collect()
        }

        /// The element at `index`: `None` if that push has not finished, or its process
        /// died before it did.
        ///
        /// # Errors
        /// [`Error::IndexOutOfBounds`] past the indices handed out.
        pub fn get(&self, index: usize) -> Result<Option<T>> {
            try_read_words_into::<T, _>(|words| self.inner.get_words(index, words))
        }

        /// Replaces the element at `index` (atomically for elements of up to 8 bytes;
        /// never torn for wider ones).
        ///
        /// # Errors
        /// [`Error::IndexOutOfBounds`] past the indices handed out, or at an index whose
        /// push has not finished (or died).
        pub fn set(&self, index: usize, value: T) -> Result<()> {
            with_words_of(&value, |words| self.inner.set_words(index, words))
        }

        /// Indices handed out so far (including pushes still in progress).
        pub fn len(&self) -> usize {
            self.inner.len()
        }

        /// Whether nothing has been pushed.
        pub fn is_empty(&self) -> bool {
            self.inner.is_empty()
        }

        /// Elements the list has room for now; it grows (doubling) when a push needs more,
        /// as long as the region has room.
        pub fn capacity(&self) -> usize {
            self.inner.capacity()
        }

        /// Elements the list was created with room for.
        pub fn initial_capacity(&self) -> usize {
            self.inner.initial_capacity()
        }

        /// Every present element in index order (not atomic as a whole).
        ///
        /// # Errors
        /// [`Error::Contended`] in the theoretical case of endless concurrent sets.
        pub fn snapshot(&self) -> Result<Vec<T>> {
            self.iter().filter_map(Result::transpose).collect()
        }

        /// Iterates over the indices handed out when the iteration starts: `Ok(None)` for
        /// unfinished or abandoned pushes. Indices past the list's room then (pushes that
        /// claimed an index and have not grown the list yet) are left out: they hold
        /// nothing yet, and a corrupted count of claims could name 2^32 times the room.
        pub fn iter(&self) -> impl Iterator<Item = Result<Option<T>>> + '_ {
            let end = self.len().min(self.capacity());
            (0..end).map(move |index| self.get(index))
        }

        /// The object's name.
        pub fn name(&self) -> &str {
            self.inner.name()
        }
    }

    /// Rewrites the writer fields of owners of participant slot `slot` to
    /// `OwnerId::DEAD` (a sweep of the retired slot: see `crate::sweep`): a dead pusher's
    /// index becomes a hole and a dead setter's claim is taken over, as before.
    pub(crate) fn retire_owner_slot(object: &Object, slot: u32) -> Result<()> {
        let list = ByteList::from_object(object.clone())?;
        list.made().retire_owner_slot(slot)?;
        for (first, slots) in list.segments()? {
            for index in 0..slots {
                shmarena_engine::liveness::retire_owner_field(
                    list.slot_in(first, index).state,
                    super::WRITER_SHIFT,
                    slot,
                    |_| true,
                )?;
            }
        }
        Ok(())
    }
}

/// Checks a list's shared words (for `shmarena inspect --verify`).
#[cfg(not(loom))]
pub(crate) fn check(
    region: &shmarena_engine::Region,
    entry: &shmarena_engine::EntryInfo,
    findings: &mut Vec<shmarena_engine::Finding>,
) -> Result<()> {
    use shmarena_engine::Finding;
    let place = format!("list {:?}", entry.name);
    let list = ByteList::from_object(region.open_object(&entry.name, &entry.descriptor)?)?;
    // A snapshot of a list others keep using. The count first (Acquire, see claimed_count):
    // every index below it had its segment made before it was claimed, so the segments
    // read next hold it.
    let claimed = list.claimed_count();
    let segments = list.segment_slots()?;
    let capacity: u64 = segments.iter().map(|(_, slots)| slots).sum();
    if claimed > capacity {
        findings.push(Finding::error(
            &place,
            format!("{claimed} indices handed out of the {capacity} its segments hold"),
        ));
    }
    let mut dead_pushes = 0;
    let mut index = 0u64;
    'segments: for (states, _) in &segments {
        for state in states {
            // Acquire: a push's claim (Release) comes after its move of the claimed counter.
            let state = state.load(Ordering::Acquire);
            if index >= claimed && state != 0 {
                // Pushes go on meanwhile: only an index beyond a fresh count is wrong.
                let claimed_now = list.claimed_count();
                if index >= claimed_now {
                    findings.push(Finding::error(
                        &place,
                        format!("index {index} is beyond the {claimed_now} handed out but holds state {state:#x}"),
                    ));
                    break 'segments;
                }
            }
            if kind(state) == PUSHING && writer(state).is_none_or(|w| !region.is_alive(w)) {
                dead_pushes += 1;
            }
            index += 1;
        }
    }
    if dead_pushes != 0 {
        findings.push(Finding::note(
            &place,
            format!("{dead_pushes} pushes of dead processes (read as holes)"),
        ));
    }
    Ok(())
}
