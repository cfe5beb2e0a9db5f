//! Freeing what other processes may still be reading: a process's list of retired arena
//! blocks, freed once the grace period (see [`crate::grace`]) has passed, and byte strings
//! kept out of line in arena blocks ([`Blob`]).
//!
//! A structure that unlinks a block from every shared path (replaces the blob an entry
//! named, removes the entry) *retires* it ([`Region::retire_block`](crate::Region::retire_block)):
//! the block and the grace epoch read after the unlink go on this process's list, and the
//! block returns to the arena once the epoch is three past it, that is once every live
//! process pinned at the unlink has unpinned. Readers pin
//! ([`Region::pin`](crate::Region::pin)) before they read the word that leads to a block
//! and unpin after their last read of the block.
//!
//! The list is the process's own (in its memory), so retiring is a push under a
//! per-handle claim; each entry is also written to the retire log of the participant slot
//! the handle holds (in the region, see [`crate::retire_log`]), from which the slot's next
//! holder takes over whatever a process that died or detached left waiting. Reclaiming runs when the list holds
//! [`RECLAIM_BATCH`] blocks or [`RECLAIM_BYTES`] bytes (one scan of the participant table
//! for the whole batch), at one unpin of this process in [`RECLAIM_UNPINS`] while blocks
//! wait, at the first unpin after a large retirement
//! ([`Region::retire_block_soon`](crate::Region::retire_block_soon): a retirer is often
//! pinned when it retires, which holds its own retirement back; its unpin is the moment
//! the block may go), once when its log is full, when the region handle is dropped, and
//! when a handle opens the region on a slot whose log holds blocks. A reclaimed block of
//! [`PUNCH_MIN`](crate::PUNCH_MIN) bytes or more gives its whole pages back to the
//! file system first (they cost no memory until the block is used again). Costs and
//! bounds:
//! - a process killed (or detached) with blocks on its list leaves them in its slot's log,
//!   and the next process to take the slot, or the next reclaim of any process, frees
//!   them once their grace period has passed. It leaks what did not go into the log (see
//!   [`crate::retire_log`] for when), a block unlinked and not yet retired, and a block
//!   moved out of the log and not yet freed (one block each);
//! - a frozen pinned process holds back every retirement made since it pinned, in every
//!   process, until it resumes or dies (then it is skipped); no operation waits for it;
//! - a forked child inherits a copy of its parent's list and drops it (the blocks are
//!   the parent's to free; freeing them twice would corrupt the arena).

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::memory::Memory;
use crate::retire_log::{Adopted, RetireLog};

/// Retired blocks that make a process try to reclaim.
pub const RECLAIM_BATCH: usize = 1024;

/// Retired bytes that make a process try to reclaim, whatever their number.
pub const RECLAIM_BYTES: u64 = 4 << 20;

/// While retired blocks wait, one unpin in this many tries to reclaim them.
pub const RECLAIM_UNPINS: u64 = 1024;

/// A byte string stored out of line, in an arena block of its own: where the block lies
/// and how many bytes it holds. Its 16-byte form ([`Self::to_bytes`]) is what a structure
/// keeps in a slot; a reader that finds it there reads the bytes with
/// [`Region::read_blob`](crate::Region::read_blob) while pinned.
///
/// ```
/// # use shmarena_engine::{Blob, Region};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-blob-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let blob = region.store_blob(b"a value too large for its slot")?;
/// // ... publish blob.to_bytes() in a slot with a Release store; a reader then does:
/// let pin = region.pin()?;
/// let found = Blob::from_bytes(blob.to_bytes());
/// assert_eq!(region.read_blob(found, &pin)?, b"a value too large for its slot");
/// drop(pin);
/// // ... whoever unlinks it from the slot retires it; it is freed after a grace period:
/// region.retire_blob(blob)?;
/// # drop(region); std::fs::remove_file(&path).unwrap();
/// # Ok::<(), shmarena_engine::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Blob {
    offset: u64,
    len: u64,
}

impl Blob {
    /// Bytes of [`Self::to_bytes`].
    pub const ENCODED_LEN: usize = 16;

    pub(crate) fn new(offset: u64, len: u64) -> Self {
        Self { offset, len }
    }

    /// The block's offset in the region.
    pub fn offset(self) -> u64 {
        self.offset
    }

    /// Bytes of the string.
    pub fn len(self) -> u64 {
        self.len
    }

    /// Whether the string is empty.
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// Bytes of the block that holds it (what it was allocated with).
    pub(crate) fn block_size(self) -> u64 {
        self.len.max(1)
    }

    /// The 16 bytes a slot keeps: offset and length, little-endian.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.offset.to_le_bytes());
        bytes[8..].copy_from_slice(&self.len.to_le_bytes());
        bytes
    }

    /// The blob a slot's 16 bytes name. Any bytes make a `Blob`; reading one checks it
    /// against the arena ([`Region::read_blob`](crate::Region::read_blob)).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let (offset, len) = bytes.split_at(8);
        Self {
            offset: u64::from_le_bytes(offset.try_into().expect("8 bytes")),
            len: u64::from_le_bytes(len.try_into().expect("8 bytes")),
        }
    }
}

/// A blob stored and not yet published ([`Region::stage_blob`](crate::Region::stage_blob)):
/// freed at once when dropped (nobody else can have seen it), unless marked
/// [`published`](Self::published) first, when a slot holds it.
#[must_use = "a staged blob is freed when dropped"]
#[derive(Debug)]
pub struct StagedBlob<'r> {
    blob: Blob,
    region: &'r crate::Region,
}

impl<'r> StagedBlob<'r> {
    pub(crate) fn new(blob: Blob, region: &'r crate::Region) -> Self {
        Self { blob, region }
    }

    /// The blob, to publish.
    pub fn blob(&self) -> Blob {
        self.blob
    }

    /// A slot holds the blob now: it is no longer ours to free.
    pub fn published(self) -> Blob {
        let blob = self.blob;
        std::mem::forget(self);
        blob
    }
}

impl Drop for StagedBlob<'_> {
    fn drop(&mut self) {
        // Never published. An error here (a corrupt arena) only leaks the block.
        let _ = self.region.free_blob(self.blob);
    }
}

/// A block waiting for its grace period.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retired {
    pub offset: u64,
    pub size: u64,
    /// The grace epoch read after the block was unlinked.
    pub epoch: u64,
    /// Its entry in the slot's retire log (`None`: kept in this process only).
    pub index: Option<u64>,
}

/// This process's retired blocks of one region handle, oldest first (so epochs ascend).
#[derive(Debug, Default)]
pub(crate) struct RetireList {
    /// The fork generation the entries belong to (a child drops its parent's).
    generation: u64,
    entries: VecDeque<Retired>,
    /// Entries and bytes retired since the last reclaim (what makes the next one due).
    since: (usize, u64),
    /// The retire log of the participant slot this handle holds, once it has one.
    pub log: Option<RetireLog>,
    /// Whether a full log has made the list due since a retirement last went into it.
    asked_room: bool,
}

impl RetireList {
    /// Takes over the blocks a slot's previous holders left in its log (see
    /// [`crate::retire_log`]), in the log's order and ahead of this list's own (they were
    /// retired before this handle took the slot), with epochs no later than `now` (the
    /// grace epoch now: a larger one can only come from a corrupt log, and would hold the
    /// list back for good).
    pub fn adopt(&mut self, log: RetireLog, adopted: &[Adopted], now: u64) {
        self.log = Some(log);
        // In log order: a reclaim frees logged entries in the order of their indices,
        // which the log's head follows (their epochs need not ascend: two threads may
        // read the epoch in one order and append in the other).
        for block in adopted.iter().rev() {
            self.entries.push_front(Retired {
                offset: block.offset,
                size: block.size,
                epoch: block.epoch.min(now),
                index: Some(block.index),
            });
        }
        let bytes = adopted.iter().map(|block| block.size).sum::<u64>();
        self.since = (
            self.since.0 + adopted.len(),
            self.since.1.saturating_add(bytes),
        );
    }

    /// Whether a retirement that found the log full should make this list due for a
    /// reclaim: once until the log has room again ([`Self::found_room`]). The reclaim
    /// makes room unless a reader holds the log's oldest blocks back; asking at every
    /// retirement would then scan the participants every time.
    pub fn asks_for_room(&mut self) -> bool {
        !std::mem::replace(&mut self.asked_room, true)
    }

    /// A retirement went into the log: the next that finds it full asks for room again.
    pub fn found_room(&mut self) {
        self.asked_room = false;
    }

    pub fn push(&mut self, retired: Retired) {
        self.since = (self.since.0 + 1, self.since.1.saturating_add(retired.size));
        self.entries.push_back(retired);
    }

    /// Whether the list is due for a reclaim: [`RECLAIM_BATCH`] blocks or
    /// [`RECLAIM_BYTES`] bytes retired since the last one. (Counted since then, not in
    /// all: entries a reader holds back stay on the list, and a reclaim per retirement
    /// while they wait would scan the participants every time.)
    pub fn is_due(&self) -> bool {
        self.since.0 >= RECLAIM_BATCH || self.since.1 >= RECLAIM_BYTES
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Frees (with `free`) the oldest entries whose grace period has passed
    /// (`has_passed(epoch)`, asked once per distinct epoch), stopping at the first that
    /// has not. An entry `free` refuses (a corrupt region) is dropped, and the first such
    /// error returned after the pass.
    /// A logged entry leaves the log (`mem` holds it) before it is freed.
    pub fn reclaim<M: Memory>(
        &mut self,
        mem: &M,
        mut has_passed: impl FnMut(u64) -> Result<bool>,
        mut free: impl FnMut(u64, u64) -> Result<()>,
    ) -> Result<()> {
        self.since = (0, 0);
        let mut passed_up_to = None;
        let mut first_error = None;
        while let Some(&oldest) = self.entries.front() {
            if passed_up_to.is_none_or(|epoch| oldest.epoch > epoch) {
                if !has_passed(oldest.epoch)? {
                    break;
                }
                passed_up_to = Some(oldest.epoch);
            }
            self.entries.pop_front();
            if let (Some(log), Some(index)) = (self.log.as_mut(), oldest.index) {
                log.free_next(mem, index);
            }
            if let Err(error) = free(oldest.offset, oldest.size) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A [`RetireList`] shared by the threads of one process, claimed with an atomic word
/// rather than a mutex: a mutex held by another thread at a `fork` stays locked in the
/// child forever, while a claim of another process is stale and taken over.
#[derive(Debug, Default)]
pub(crate) struct RetireQueue {
    /// `fork generation + 1` of the claimer's process; 0 for none. (Every forked child
    /// counts one more generation than its parent, so a claim copied from the parent is
    /// never the child's: no `getpid` per claim, a system call where glibc no longer
    /// caches it.)
    claim: AtomicU64,
    list: UnsafeCell<RetireList>,
    /// Entries on the list when it was last released (read without the claim).
    waiting: AtomicU64,
    /// Unpins since the last retirement, while entries wait ([`Self::due_on_unpin`]).
    unpins: AtomicU64,
}

// SAFETY: `list` is reached only through `with`, which holds the claim: one thread of one
// process at a time (a claim of another process is a copy of the parent's memory in a
// forked child, whose claiming thread does not exist there).
unsafe impl Sync for RetireQueue {}

impl RetireQueue {
    /// Runs `f` on this process's list, alone among the threads of this process.
    pub fn with<R>(&self, f: impl FnOnce(&mut RetireList) -> R) -> R {
        let generation = crate::fork::generation();
        let ours = generation.wrapping_add(1).max(1);
        loop {
            // Acquire: pairs with the Release store that ended the previous claim, so
            // its changes to the list are visible to us.
            let current = self.claim.load(Ordering::Acquire);
            if current == ours {
                std::thread::yield_now(); // another thread of this process holds it
                continue;
            }
            // 0: free; anything else not ours: a claim of the process we were forked
            // from, whose thread does not exist here. Acquire: as above.
            if self
                .claim
                .compare_exchange(current, ours, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
        // SAFETY: we hold the claim (see `unsafe impl Sync`).
        let list = unsafe { &mut *self.list.get() };
        if list.generation != generation {
            // Inherited from the parent: its blocks are the parent's to free.
            *list = RetireList {
                generation,
                ..RetireList::default()
            };
        }
        let result = f(list);
        // Relaxed: a hint for `waits` (see `due_on_unpin`).
        self.waiting.store(list.len() as u64, Ordering::Relaxed);
        // Release: our changes to the list come before the next claimer's.
        self.claim.store(0, Ordering::Release);
        result
    }

    /// Whether blocks wait on the list (as last released; one load).
    #[inline]
    pub fn waits(&self) -> bool {
        // Relaxed: a hint; a reclaim that finds nothing to do costs only its time.
        self.waiting.load(Ordering::Relaxed) != 0
    }

    /// Whether an unpin, while blocks wait, should try to reclaim: one in
    /// [`RECLAIM_UNPINS`] (a reader frozen while pinned makes every try scan the
    /// participants in vain; spread out, the scans cost little per unpin), and the first
    /// after [`Self::retired_now`].
    pub fn due_on_unpin(&self) -> bool {
        // Relaxed: a counter that only spaces the tries out.
        self.unpins.fetch_add(1, Ordering::Relaxed) % RECLAIM_UNPINS == 0
    }

    /// Makes the next unpin try to reclaim (see [`Self::due_on_unpin`]).
    pub fn retired_now(&self) {
        // Relaxed: as in `due_on_unpin`.
        self.unpins.store(0, Ordering::Relaxed);
    }
}

/// The error for a blob whose bytes cannot be in the arena.
pub(crate) fn bad_blob(blob: Blob, why: &str) -> Error {
    Error::corrupt(
        "out-of-line bytes",
        format!("{} bytes at offset {}: {why}", blob.len(), blob.offset()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::Arena;
    use crate::memory::HeapMemory;

    #[test]
    fn adopted_blocks_come_first_in_log_order_with_no_epoch_past_now() {
        let mem = HeapMemory::new(1 << 20);
        let arena = Arena::new(&mem, 4096, 1 << 20).unwrap();
        arena.initialize().unwrap();
        let word = crate::sync::AtomicU64::new(0);
        let (mut log, _) = RetireLog::take_over(&arena, &mem, &word, 0, true)
            .unwrap()
            .unwrap();
        let blocks: Vec<u64> = (0..3).map(|_| arena.alloc(64).unwrap().offset).collect();
        // Epochs out of order (two threads), and one a corrupt log would hold.
        for (&block, epoch) in blocks.iter().zip([6, 5, u64::MAX]) {
            log.append(&mem, block, 64, epoch).unwrap();
        }
        let (log, adopted) = RetireLog::take_over(&arena, &mem, &word, 0, false)
            .unwrap()
            .unwrap();
        let mut list = RetireList::default();
        list.push(Retired {
            offset: 1 << 19,
            size: 64,
            epoch: 7,
            index: None,
        });
        list.adopt(log, &adopted, 9);
        let order: Vec<(u64, u64, Option<u64>)> = list
            .entries
            .iter()
            .map(|retired| (retired.offset, retired.epoch, retired.index))
            .collect();
        assert_eq!(
            order,
            [
                (blocks[0], 6, Some(0)),
                (blocks[1], 5, Some(1)),
                (blocks[2], 9, Some(2)),
                (1 << 19, 7, None),
            ]
        );
        // Everything passed: freed in that order, the log's head past all three.
        let mut freed = Vec::new();
        list.reclaim(
            &mem,
            |_| Ok(true),
            |offset, _| {
                freed.push(offset);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(freed, [blocks[0], blocks[1], blocks[2], 1 << 19]);
        assert_eq!(list.log.unwrap().len(), 0);
    }

    #[test]
    fn a_full_log_asks_for_a_reclaim_once_until_it_has_room_again() {
        let mut list = RetireList::default();
        assert!(list.asks_for_room());
        // The reclaim it asked for freed nothing (a reader holds the blocks back).
        list.reclaim(&HeapMemory::new(64), |_| Ok(false), |_, _| Ok(()))
            .unwrap();
        assert!(!list.asks_for_room());
        list.found_room();
        assert!(list.asks_for_room());
    }
}
