//! A participant slot's retire log: the arena blocks its holder has retired and not freed
//! yet, kept in the region as well as in the holder's memory (see [`crate::reclaim`]), so
//! that a holder that dies or detaches while blocks still wait for their grace period does
//! not leak them: the next process to attach to the slot takes the log over and frees them
//! as its own.
//!
//! ```text
//! participant slot word 6 (byte 48): region offset of the slot's log (0: none), kept for
//!   every later holder of the slot, as the pin stripes are
//! log (an arena block of `log_bytes(arena size)`, taken at the slot's first retirement):
//!   0   head: index of the oldest entry not freed yet (u64)
//!   8   tail: index of the next entry (u64)
//!   16  capacity: entries the block holds (u64)
//!   64  entries; entry i at (i % capacity), 16 bytes each:
//!       word 0  the block's region offset | its size class (an offset is 64-aligned, so
//!               the class, below 64, fits its low 6 bits)
//!       word 1  the grace epoch read after the block was unlinked
//! ```
//!
//! Only the slot's holder writes the log, one thread at a time (it holds the process's
//! retire claim, see [`crate::reclaim`]), or, once the holder died or detached, a process
//! draining it, which holds the slot's claim and slot locks as a holder would:
//! - a retirement writes its entry, then the tail;
//! - a reclaim moves the head past an entry *before* it frees the block. A holder killed
//!   between the two leaks that one block; the other order would let the next holder free
//!   it a second time;
//! - a process that attaches to the slot reads the entries between head and tail, and
//!   frees each once its grace period has passed (the grace epoch is the region's, so an
//!   entry means the same to every process). The slot is its own only once the kernel has
//!   released the previous holder's lock on it, at that holder's detach or death, after
//!   every store the holder made.
//!
//! Costs and bounds:
//! - memory: one arena block (1 KiB to 32 KiB, a 64th of the arena) per slot whose
//!   holder has retired something, given back when the holder detaches with nothing
//!   waiting; a slot whose holder died or detached with blocks waiting keeps its log until
//!   its next holder has freed them. So at most one log per participant slot;
//! - time: two stores per retirement and one per block freed;
//! - what still leaks: a retirement that found the log full (it makes the list due for a
//!   reclaim, once until the next) or found no room in the arena for a log, or that was
//!   made while the handle held no slot (a handle waiting for one, a fork child before it
//!   attached as itself), stays in the process's memory only and leaks if the process
//!   dies before freeing it; so does the one block whose entry a dying holder had moved
//!   past and not freed yet;
//! - what a holder left waiting when it died or detached is freed by whichever comes
//!   first: the slot's next holder (a handle that opens the region on that slot takes it
//!   over at once, an attach taking the lowest slot free; a handle that gets its slot
//!   later, waiting or in a fork child, at its first retirement, reclaim or drop), or any
//!   live process's next reclaim, which drains the logs of slots whose holder is gone,
//!   holding each slot's claim and slot locks as its holder would (at most
//!   [`DRAIN_LIMIT`](crate::DRAIN_LIMIT) blocks a slot per reclaim), so that
//!   nothing waits for a process to take the slot.
//!
//! The log's words are untrusted like every word of the mapping: a log that cannot be one
//! is replaced (its entries are not taken over), an entry that names no block of the
//! arena is dropped, and an entry's epoch is taken as no later than the epoch when it is
//! taken over.

use crate::arena::{class_size, Arena};
use crate::error::Result;
use crate::layout::{BLOCK_ALIGN, SIZE_CLASSES};
use crate::memory::Memory;
use crate::sync::{AtomicU64, Ordering};

/// Byte offset in a participant slot of the region offset of its retire log (0: none).
pub const LOG_WORD: u64 = 48;

/// Smallest log block.
pub const MIN_LOG_BYTES: u64 = 1 << 10;
/// Largest log block.
pub const MAX_LOG_BYTES: u64 = 32 << 10;

const HEAD: u64 = 0;
const TAIL: u64 = 8;
const CAPACITY: u64 = 16;
const ENTRIES: u64 = 64;
const ENTRY_BYTES: u64 = 16;
const MAX_ENTRIES: u64 = (MAX_LOG_BYTES - ENTRIES) / ENTRY_BYTES;

/// Bytes of a new log in an arena of `arena_bytes`: a 64th of it (from 2 MiB of arena,
/// the largest: room for more than a reclaim batch, so a full log rarely asks for an extra
/// reclaim), a power of two
/// between [`MIN_LOG_BYTES`] and [`MAX_LOG_BYTES`] (a whole block of its size class).
pub fn log_bytes(arena_bytes: u64) -> u64 {
    let wanted = (arena_bytes / 64).clamp(MIN_LOG_BYTES, MAX_LOG_BYTES);
    1 << wanted.ilog2()
}

/// Bytes of a log with room for `capacity` entries.
fn bytes_for(capacity: u64) -> u64 {
    ENTRIES + capacity * ENTRY_BYTES
}

/// A block taken over from the log of a slot's previous holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Adopted {
    /// Index of its entry.
    pub index: u64,
    /// Region offset of the block.
    pub offset: u64,
    /// Bytes of the block (its size class's).
    pub size: u64,
    /// The grace epoch read after its unlink.
    pub epoch: u64,
}

/// The log of the slot this process holds, as its holder keeps it: the block, and head
/// and tail as last written (nobody else writes them while we hold the slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetireLog {
    /// The participant slot whose log this is.
    pub slot: u32,
    block: u64,
    capacity: u64,
    head: u64,
    tail: u64,
}

impl RetireLog {
    /// The log of `slot`, whose log word is `word`, for its new holder, with the blocks
    /// its previous holders left in it (oldest first). With no log there (or a word that
    /// cannot name one), a new one if `create` and the arena has room, else `None`.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] from the arena (a corrupt free list) while making one.
    pub fn take_over<M: Memory>(
        arena: &Arena<'_, M>,
        mem: &M,
        word: &AtomicU64,
        slot: u32,
        create: bool,
    ) -> Result<Option<(Self, Vec<Adopted>)>> {
        // Acquire: pairs with the Release publication below by an earlier holder (and the
        // kernel's lock hand-over orders whatever that holder wrote before it left).
        let seen = word.load(Ordering::Acquire);
        if let Some(log) = Self::read(arena, mem, seen, slot) {
            let adopted = log.entries(arena, mem);
            return Ok(Some((log, adopted)));
        }
        if !create {
            return Ok(None);
        }
        let bytes = log_bytes(arena.end() - arena.start());
        let block = match arena.alloc(bytes) {
            Ok(block) => block.offset,
            Err(crate::Error::OutOfMemory { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        let capacity = (bytes - ENTRIES) / ENTRY_BYTES;
        for (at, value) in [(HEAD, 0), (TAIL, 0), (CAPACITY, capacity)] {
            // Relaxed: published by the Release compare-exchange below.
            mem.word(block + at)?.store(value, Ordering::Relaxed);
        }
        // Release: publishes the header to later holders. Only the holder writes the
        // word, so it still holds what we read (an unusable log is replaced: it leaks).
        if word
            .compare_exchange(seen, block, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            let _ = arena.free(block, bytes);
            return Ok(None);
        }
        Ok(Some((
            Self {
                slot,
                block,
                capacity,
                head: 0,
                tail: 0,
            },
            Vec::new(),
        )))
    }

    /// Blocks waiting in the log of the slot whose log word is `word` (retired by its
    /// holder, or left by earlier holders for the next), as far as a look from any process
    /// can tell: 0 for no log, or one that cannot be one. Writes nothing.
    pub fn waiting<M: Memory>(arena: &Arena<'_, M>, mem: &M, word: &AtomicU64) -> u64 {
        // Relaxed: informational.
        let block = word.load(Ordering::Relaxed);
        Self::header(arena, mem, block)
            .filter(|&(capacity, head, tail)| head <= tail && tail - head <= capacity)
            .map_or(0, |(_, head, tail)| tail - head)
    }

    /// Capacity, head and tail of the log at `block`, if its header and entries lie inside
    /// the arena and its capacity can be a log's.
    fn header<M: Memory>(arena: &Arena<'_, M>, mem: &M, block: u64) -> Option<(u64, u64, u64)> {
        let in_arena = |bytes: u64| {
            block >= arena.start()
                && block % BLOCK_ALIGN == 0
                && block
                    .checked_add(bytes)
                    .is_some_and(|end| end <= arena.end())
        };
        if block == 0 || !in_arena(ENTRIES) {
            return None;
        }
        // Acquire: see `take_over` (the tail's entries were written before it).
        let load = |at: u64| mem.word(block + at).ok().map(|w| w.load(Ordering::Acquire));
        let capacity = load(CAPACITY)?;
        if capacity == 0 || capacity > MAX_ENTRIES || !in_arena(bytes_for(capacity)) {
            return None;
        }
        Some((capacity, load(HEAD)?, load(TAIL)?))
    }

    /// The log at `block`, if it can be one ([`Self::header`]), head and tail no further
    /// apart than its capacity (else the two are reset, and what lay between them is not
    /// taken over).
    fn read<M: Memory>(arena: &Arena<'_, M>, mem: &M, block: u64, slot: u32) -> Option<Self> {
        let (capacity, mut head, tail) = Self::header(arena, mem, block)?;
        if head > tail || tail - head > capacity {
            // Relaxed: only the holder reads it (and its successors, after the kernel's
            // hand-over).
            mem.word(block + HEAD).ok()?.store(tail, Ordering::Relaxed);
            head = tail;
        }
        Some(Self {
            slot,
            block,
            capacity,
            head,
            tail,
        })
    }

    /// The entries between head and tail that name a block of the arena.
    fn entries<M: Memory>(&self, arena: &Arena<'_, M>, mem: &M) -> Vec<Adopted> {
        (self.head..self.tail)
            .filter_map(|index| {
                let at = self.entry_at(index);
                // Relaxed: ordered by the Acquire load of the tail (see `read`).
                let place = mem.word(at).ok()?.load(Ordering::Relaxed);
                let epoch = mem.word(at + 8).ok()?.load(Ordering::Relaxed);
                let (offset, class) = (place & !(BLOCK_ALIGN - 1), place & (BLOCK_ALIGN - 1));
                let size = class_size(class as usize);
                let usable = (class as usize) < SIZE_CLASSES
                    && arena.check_block_of_size(offset, size).is_ok();
                usable.then_some(Adopted {
                    index,
                    offset,
                    size,
                    epoch,
                })
            })
            .collect()
    }

    fn entry_at(&self, index: u64) -> u64 {
        self.block + ENTRIES + (index % self.capacity) * ENTRY_BYTES
    }

    /// Records block `offset` of `size` bytes, retired at grace epoch `epoch`: its entry's
    /// index, or `None` when the log is full (the block is then kept in the process only).
    pub fn append<M: Memory>(
        &mut self,
        mem: &M,
        offset: u64,
        size: u64,
        epoch: u64,
    ) -> Option<u64> {
        if self.tail - self.head >= self.capacity || offset % BLOCK_ALIGN != 0 {
            return None;
        }
        let class = crate::arena::size_class(size).ok()? as u64;
        let at = self.entry_at(self.tail);
        let (place, when, tail) = (
            mem.word(at).ok()?,
            mem.word(at + 8).ok()?,
            mem.word(self.block + TAIL).ok()?,
        );
        // Relaxed: published by the Release store of the tail.
        place.store(offset | class, Ordering::Relaxed);
        when.store(epoch, Ordering::Relaxed);
        let index = self.tail;
        self.tail += 1;
        // Release: the entry comes before the tail that shows it.
        tail.store(self.tail, Ordering::Release);
        Some(index)
    }

    /// Moves the head past entry `index` (the next to free, in order): called before the
    /// block is freed (see the module docs).
    pub fn free_next<M: Memory>(&mut self, mem: &M, index: u64) {
        if index < self.head || index >= self.tail {
            return;
        }
        self.head = index + 1;
        if let Ok(head) = mem.word(self.block + HEAD) {
            // Relaxed: only this holder reads the head while it holds the slot; a later
            // holder reads it after the kernel handed the slot over, at this process's
            // exit or detach, after all of its stores (the free that follows included).
            head.store(self.head, Ordering::Relaxed);
        }
    }

    /// Frees what the holders of `slot` left waiting in its log (`word`) when they died or
    /// detached, as the slot's next holder would: from the oldest entry, each block whose
    /// epoch (taken as no later than `now`) `passed` accepts, at most `limit` of them,
    /// stopping at the first it does not accept; then gives the log back if nothing waits.
    /// The caller holds the slot's claim and slot locks: it is the slot's holder for the
    /// call. `now` is read under those locks, so that no entry's real epoch is later. How
    /// many blocks it freed.
    #[allow(clippy::too_many_arguments)] // the log, its slot, and what freeing needs
    pub fn drain_left<M: Memory>(
        arena: &Arena<'_, M>,
        mem: &M,
        word: &AtomicU64,
        slot: u32,
        now: u64,
        limit: usize,
        passed: impl Fn(u64) -> bool,
        mut free: impl FnMut(u64, u64) -> Result<()>,
    ) -> usize {
        let Ok(Some((mut log, adopted))) = Self::take_over(arena, mem, word, slot, false) else {
            return 0;
        };
        let mut freed = 0;
        for block in &adopted {
            if freed == limit || !passed(block.epoch.min(now)) {
                return freed;
            }
            // The head first, as in a reclaim (see the module docs).
            log.free_next(mem, block.index);
            // A block the arena refuses (a corrupt region) is dropped, as a reclaim does.
            let _ = free(block.offset, block.size);
            freed += 1;
        }
        // Entries naming no block of the arena were dropped when read: past them too.
        if log.tail > log.head {
            log.free_next(mem, log.tail - 1);
        }
        log.give_back_if_empty(arena, word);
        freed
    }

    /// Entries not freed yet.
    pub fn len(&self) -> u64 {
        self.tail - self.head
    }

    /// Gives the log's block back to the arena if no entry waits in it, unlinking it from
    /// the slot's log word first (`word`, still the holder's): called at detach, so that a
    /// slot keeps a log only while its holder has retirements waiting. A holder killed
    /// between the two leaks the log's block.
    /// Only a log of the size this region's logs have is given back (a word that a corrupt
    /// region pointed into another block is left alone).
    pub fn give_back_if_empty<M: Memory>(self, arena: &Arena<'_, M>, word: &AtomicU64) {
        let bytes = bytes_for(self.capacity);
        if self.len() != 0 || bytes != log_bytes(arena.end() - arena.start()) {
            return;
        }
        // Relaxed: the next holder finds 0 and makes a log of its own; only the holder
        // writes the word.
        if word
            .compare_exchange(self.block, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            let _ = arena.free(self.block, bytes);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::memory::HeapMemory;

    const ARENA_START: u64 = 4096;
    const ARENA_END: u64 = 1 << 20;

    fn setup() -> (HeapMemory, AtomicU64) {
        let mem = HeapMemory::new(ARENA_END);
        let arena = Arena::new(&mem, ARENA_START, ARENA_END).unwrap();
        arena.initialize().unwrap();
        (mem, AtomicU64::new(0))
    }

    #[test]
    fn log_sizes_follow_the_arena() {
        assert_eq!(log_bytes(0), MIN_LOG_BYTES);
        assert_eq!(log_bytes(64 << 10), MIN_LOG_BYTES);
        assert_eq!(log_bytes(1 << 20), 16 << 10);
        assert_eq!(log_bytes(1536 << 10), 16 << 10);
        assert_eq!(log_bytes(2 << 20), MAX_LOG_BYTES);
        assert_eq!(log_bytes(1 << 40), MAX_LOG_BYTES);
    }

    #[test]
    fn a_new_holder_takes_over_what_the_last_left() {
        let (mem, word) = setup();
        let arena = Arena::new(&mem, ARENA_START, ARENA_END).unwrap();
        assert_eq!(
            RetireLog::take_over(&arena, &mem, &word, 3, false).unwrap(),
            None
        );
        let (mut log, adopted) = RetireLog::take_over(&arena, &mem, &word, 3, true)
            .unwrap()
            .unwrap();
        assert!(adopted.is_empty());
        let blocks: Vec<u64> = (0..3).map(|_| arena.alloc(200).unwrap().offset).collect();
        for (epoch, &block) in blocks.iter().enumerate() {
            assert_eq!(
                log.append(&mem, block, 200, epoch as u64),
                Some(epoch as u64)
            );
        }
        log.free_next(&mem, 0);
        // The holder leaves: the next one finds the two blocks it did not free.
        let (again, adopted) = RetireLog::take_over(&arena, &mem, &word, 3, true)
            .unwrap()
            .unwrap();
        assert_eq!(again.len(), 2);
        let sizes = class_size(crate::arena::size_class(200).unwrap());
        assert_eq!(
            adopted,
            vec![
                Adopted {
                    index: 1,
                    offset: blocks[1],
                    size: sizes,
                    epoch: 1
                },
                Adopted {
                    index: 2,
                    offset: blocks[2],
                    size: sizes,
                    epoch: 2
                },
            ]
        );
    }

    #[test]
    fn a_full_log_keeps_no_more_and_a_freed_entry_makes_room() {
        let (mem, word) = setup();
        let arena = Arena::new(&mem, ARENA_START, ARENA_END).unwrap();
        let (mut log, _) = RetireLog::take_over(&arena, &mem, &word, 0, true)
            .unwrap()
            .unwrap();
        let capacity = (log_bytes(ARENA_END - ARENA_START) - ENTRIES) / ENTRY_BYTES;
        for index in 0..capacity {
            assert_eq!(log.append(&mem, ARENA_START, 64, 0), Some(index));
        }
        assert_eq!(log.append(&mem, ARENA_START, 64, 0), None);
        log.free_next(&mem, 0);
        assert_eq!(log.append(&mem, ARENA_START, 64, 0), Some(capacity));
    }

    #[test]
    fn an_empty_log_goes_back_to_the_arena_and_a_waiting_one_stays() {
        let (mem, word) = setup();
        let arena = Arena::new(&mem, ARENA_START, ARENA_END).unwrap();
        let used = arena.stats().unwrap().used;
        let (mut log, _) = RetireLog::take_over(&arena, &mem, &word, 2, true)
            .unwrap()
            .unwrap();
        let block = arena.alloc(64).unwrap().offset;
        assert_eq!(log.append(&mem, block, 64, 0), Some(0));
        log.give_back_if_empty(&arena, &word);
        assert_ne!(
            word.load(Ordering::Relaxed),
            0,
            "a log with a block waiting given back"
        );
        let (mut log, adopted) = RetireLog::take_over(&arena, &mem, &word, 2, false)
            .unwrap()
            .unwrap();
        assert_eq!(adopted.len(), 1);
        log.free_next(&mem, 0);
        arena.free(block, 64).unwrap();
        log.give_back_if_empty(&arena, &word);
        assert_eq!(word.load(Ordering::Relaxed), 0);
        assert_eq!(arena.stats().unwrap().used, used);
    }

    #[test]
    fn a_drain_frees_in_log_order_what_has_passed_up_to_its_limit_then_gives_the_log_back() {
        let (mem, word) = setup();
        let arena = Arena::new(&mem, ARENA_START, ARENA_END).unwrap();
        let used = arena.stats().unwrap().used;
        let (mut log, _) = RetireLog::take_over(&arena, &mem, &word, 3, true)
            .unwrap()
            .unwrap();
        let blocks: Vec<u64> = (0..4).map(|_| arena.alloc(64).unwrap().offset).collect();
        for (epoch, &block) in [1, 2, 5, 1].iter().zip(&blocks) {
            log.append(&mem, block, 64, *epoch).unwrap();
        }
        // An entry naming no block of the arena, last: dropped, never freed.
        log.append(&mem, ARENA_END + 64, 64, 0).unwrap();
        let drain = |limit, up_to: u64, freed: &mut Vec<u64>| {
            RetireLog::drain_left(
                &arena,
                &mem,
                &word,
                3,
                4,
                limit,
                |epoch| epoch <= up_to,
                |offset, size| {
                    freed.push(offset);
                    arena.free(offset, size)
                },
            )
        };
        let mut freed = Vec::new();
        // The limit stops it first; then the third entry (epoch 5, taken as 4, not
        // passed) stops it, though the fourth has passed.
        assert_eq!(drain(1, 3, &mut freed), 1);
        assert_eq!(drain(8, 3, &mut freed), 1);
        assert_eq!(freed, blocks[..2]);
        assert_ne!(
            word.load(Ordering::Relaxed),
            0,
            "a log with blocks waiting given back"
        );
        // With everything passed: the rest, the dropped entry skipped, and the log given
        // back to the arena.
        assert_eq!(drain(8, 4, &mut freed), 2);
        assert_eq!(freed, blocks);
        assert_eq!(word.load(Ordering::Relaxed), 0);
        assert_eq!(arena.stats().unwrap().used, used);
        // No log: nothing to do.
        assert_eq!(drain(8, 4, &mut freed), 0);
    }

    #[test]
    fn hostile_logs_are_replaced_or_emptied_never_trusted() {
        let (mem, word) = setup();
        let arena = Arena::new(&mem, ARENA_START, ARENA_END).unwrap();
        // A word naming the header, or no whole log: a new log replaces it.
        for hostile in [8, ARENA_END - 64, u64::MAX - 63] {
            word.store(hostile, Ordering::Relaxed);
            let (log, adopted) = RetireLog::take_over(&arena, &mem, &word, 1, true)
                .unwrap()
                .unwrap();
            assert!(adopted.is_empty());
            assert_ne!(word.load(Ordering::Relaxed), hostile);
            assert_eq!(log.len(), 0);
            word.store(0, Ordering::Relaxed);
        }
        // Head past tail, or entries naming no block: nothing taken over.
        let (mut log, _) = RetireLog::take_over(&arena, &mem, &word, 1, true)
            .unwrap()
            .unwrap();
        let block = word.load(Ordering::Relaxed);
        log.append(&mem, ARENA_START, 64, 0).unwrap();
        mem.word(block + ENTRIES)
            .unwrap()
            .store(ARENA_END | 63, Ordering::Relaxed);
        let (_, adopted) = RetireLog::take_over(&arena, &mem, &word, 1, false)
            .unwrap()
            .unwrap();
        assert!(adopted.is_empty());
        mem.word(block + HEAD)
            .unwrap()
            .store(u64::MAX, Ordering::Relaxed);
        let (log, adopted) = RetireLog::take_over(&arena, &mem, &word, 1, false)
            .unwrap()
            .unwrap();
        assert!(adopted.is_empty());
        assert_eq!(log.len(), 0);
    }
}
