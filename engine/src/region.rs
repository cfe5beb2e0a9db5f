//! The region: a file mapped into every attached process, holding the header, the
//! participant table, the catalog and the arena (see [`crate::layout`]).
//!
//! Creation protocol (one creator, any number of openers, any of them may die):
//!
//! 1. The creator builds the region in a staging file beside the name (`O_EXCL`, mode
//!    0600): sizes it (sparse), writes the header, stores `READY` with Release. Then it
//!    hard-links the staging file to the name. `link(2)` fails if the name exists, so of
//!    any number of racing creators exactly one succeeds, and the name never shows a
//!    half-built region: a creator that dies at any point leaves either no region or a
//!    READY one (and at worst a stale `.<name>.creating-<pid>-<ns>` file; a name longer
//!    than 200 bytes is cut there, so every name the file system takes
//!    works). The creator holds the staging file's initialization lock until READY.
//! 2. An opener first makes sure the path leads to a regular file, without opening
//!    anything else for reading or writing (a FIFO would block, a device may act on an
//!    open): it opens the path with `O_PATH`, checks the type with `fstat`, and reopens
//!    that very file through `/proc/self/fd`. It refuses a file another user can write
//!    (see [`RegionOptions::allow_shared`]), checked with `fstat` on the descriptor it
//!    maps, so no rename can slip another file in between.
//! 3. It reads the magic number before anything else: a file without it is no region,
//!    whatever its size. Then it loads the state (Acquire), copies the immutable header
//!    fields into process memory, validates them and never reads them from the mapping
//!    again. A file at the name that is not READY was not made by this protocol (or by a
//!    writer still sizing it in place); the opener waits for it a bounded time, and
//!    reports at once when no process holds the file's initialization lock (an OFD lock
//!    the kernel drops when its holder dies), so nothing waits on a dead creator. Only a
//!    file with the magic number is then called a half-built region (to unlink); an empty
//!    or zeroed one is no region.
//!
//! 4. Every process holds the region's open lock ([`participants::OPEN_LOCK`]) shared for
//!    as long as it has the region open: the creator from right after the `O_EXCL` open of
//!    its staging file (before anything else), an opener from before it checks that the
//!    name still leads to the file it opened (if not, a collector removed it meanwhile, or
//!    it was replaced: the opener opens the name again) until it closes it. The collector
//!    of killed programs' default regions ([`crate::gc`]) holds it exclusive from its
//!    check to its unlink, so no process ends up attached to a region it removed. The
//!    lock lives on the region's descriptor, not on its mapping: a forked child that
//!    closes every descriptor (a daemonizing library, say) but keeps the inherited mapping
//!    no longer holds it, and a collector may remove the region's name under it once its
//!    other processes are gone (its participant slot lock, on the same descriptor, has
//!    the same limit).
//!
//! No reference to the mapped bytes is ever formed; every shared word is reached as an
//! atomic through a bounds-checked offset.
//!
//! One limit no mapping can escape: if some process truncates the region file while others
//! have it mapped, their next access beyond the new end raises SIGBUS. Region files are
//! mode 0600 (whatever the umask), never resized by shmarena after creation, and not
//! opened when another user could write them unless the opener says so.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memmap2::MmapRaw;

use crate::arena::{Arena, ArenaStats};
use crate::catalog::{Catalog, EntryInfo, Outcome, TypeDescriptor};
use crate::error::{Error, Result};
use crate::layout::{header, HeaderFields, HEADER_FIELD_WORDS, HEADER_SIZE, LAYOUT_VERSION, MAGIC};
use crate::liveness::{Liveness, OwnerId};
use crate::memory::{check_word, Memory};
use crate::participants::{self, ParticipantInfo, Participants, Swept};
use crate::sync::{AtomicU64, Ordering};

/// Settings for creating or opening a region. `Default` gives sensible values: 256
/// processes attached at once and **512 named objects** per region (the catalog, fixed at
/// creation; objects are never deleted, so a program that creates more names, a
/// namespace attribute each, sets [`catalog_capacity`](Self::catalog_capacity)).
///
/// ```
/// # use shmarena_engine as shmarena; // users depend on `shmarena`, which re-exports these
/// use shmarena::{Region, RegionOptions};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-options-{}", std::process::id()));
/// assert_eq!(RegionOptions::default().catalog_capacity, 512);
/// let options = RegionOptions {
///     catalog_capacity: 4096,
///     ..RegionOptions::default()
/// };
/// let region = Region::create_with(&path, 16 << 20, &options)?;
/// # drop(region);
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RegionOptions {
    /// Participant slots (processes attached at once), 1 to
    /// [`MAX_PARTICIPANTS`](crate::layout::MAX_PARTICIPANTS) (4095). Default 256.
    pub participant_capacity: u64,
    /// Catalog entries (named objects), 1 to 2^20. Default 512.
    pub catalog_capacity: u64,
    /// How long an opener waits for a creator to finish initializing. Default 2 s.
    pub init_timeout: Duration,
    /// How long `get_or_create` waits for a live process constructing the same object.
    /// Default 5 s.
    pub construct_timeout: Duration,
    /// The seed of every hash in the region (catalog names, hash map keys); `None` (the
    /// default) draws a random one at creation. A fixed seed makes a region's layout
    /// reproducible (tests, fuzzing images); it also lets anyone who knows it craft keys
    /// that collide.
    pub hash_seed: Option<u64>,
    /// Whether opening accepts a region file that another user can write: one owned by
    /// another user (root included: an opener running as root refuses another user's file
    /// too), or one whose mode lets its group or others write it. Default `false`: such a
    /// file is refused with [`Error::WritableByOthers`], as ssh's `StrictModes` refuses
    /// such keys. Set it only to share a region between users on purpose, and know what
    /// every user who can write the file can then do to every process that opens it:
    /// read every object, change any of them (break the invariants of maps, queues and
    /// locks, make unpickling consumers run code of their choosing), and truncate the file
    /// so that the next access past its new end kills the process with SIGBUS. Regions
    /// are created with mode 0600 regardless: sharing one means changing its owner or mode
    /// on purpose. Creating is unaffected.
    pub allow_shared: bool,
    /// Whether a new region is a program's *default region* (the Python package's, named
    /// `shmarena-py-<pid>-<hex>`), which [`crate::gc`] may remove once no live process has
    /// it open, as after its program was killed. Recorded in the header at creation;
    /// the collector removes only regions that have both this mark and a name of that
    /// pattern. Default `false`: a region a program names itself is never collected.
    /// Opening ignores it.
    pub collectable: bool,
}

impl Default for RegionOptions {
    fn default() -> Self {
        Self {
            participant_capacity: crate::layout::DEFAULT_PARTICIPANTS,
            catalog_capacity: crate::layout::DEFAULT_CATALOG_ENTRIES,
            init_timeout: Duration::from_secs(2),
            construct_timeout: Duration::from_secs(5),
            hash_seed: None,
            allow_shared: false,
            collectable: false,
        }
    }
}

/// Where a region name or path lives: a plain name means `/dev/shm/<name>` (like
/// `shm_open`); anything with a `/` is a path used as given.
///
/// # Errors
/// [`Error::InvalidArgument`] for an empty name, `.`/`..` or a NUL byte.
pub fn resolve_path(name_or_path: impl AsRef<Path>) -> Result<PathBuf> {
    let path = name_or_path.as_ref();
    let text = path.to_string_lossy();
    if text.is_empty() || text == "." || text == ".." || text.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "invalid region name {text:?}"
        )));
    }
    if text.contains('/') {
        Ok(path.to_path_buf())
    } else {
        Ok(Path::new("/dev/shm").join(path))
    }
}

/// The mapped bytes of a region, reached only through atomics.
#[derive(Debug)]
pub struct MappedMemory {
    map: MmapRaw,
    /// The file mapped (for messages).
    path: PathBuf,
}

impl MappedMemory {
    fn base(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }
}

impl Memory for MappedMemory {
    fn len(&self) -> u64 {
        self.map.len() as u64
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    #[inline]
    fn word(&self, offset: u64) -> Result<&AtomicU64> {
        check_word(offset, self.len())?;
        #[allow(clippy::cast_ptr_alignment)] // alignment checked above
        // SAFETY: in bounds and 8-aligned (checked above; the mapping is page-aligned), alive
        // as long as `self`; any bits are a valid AtomicU64, touched only atomically.
        Ok(unsafe { &*self.base().add(offset as usize).cast::<AtomicU64>() })
    }
}

/// Atomic types that may be viewed in shared memory: every bit pattern is valid, the
/// size is the same in every process, and all access is atomic.
///
/// # Safety
/// Implementors must be `#[repr(transparent)]`-like wrappers of a plain integer, valid
/// for every bit pattern, and lock-free (never a process-local lock).
pub unsafe trait SharedAtomic: Sync + Send {}

macro_rules! shared_atomic {
    ($($t:ty),*) => {$(
        // SAFETY: std's atomic integers have the size and alignment of their integer, are
        // valid for every bit pattern, and are lock-free on every 64-bit Linux target.
        unsafe impl SharedAtomic for $t {}
    )*};
}
shared_atomic!(
    std::sync::atomic::AtomicU8,
    std::sync::atomic::AtomicI8,
    std::sync::atomic::AtomicU16,
    std::sync::atomic::AtomicI16,
    std::sync::atomic::AtomicU32,
    std::sync::atomic::AtomicI32,
    std::sync::atomic::AtomicU64,
    std::sync::atomic::AtomicI64
);

struct Inner {
    path: PathBuf,
    file: File,
    memory: MappedMemory,
    fields: HeaderFields,
    /// Our participant id (`OwnerId::bits`), attached in fork generation `attached_in`;
    /// 0 while the handle waits for a slot (see [`Region::open`]), and only in the process
    /// that opened it (a fork child attaches as itself or acts as `ORPHAN`).
    me: AtomicU32,
    attached_in: AtomicU64,
    /// Whether `me` is a slot this handle attached in this process (and so detaches).
    own_slot: AtomicBool,
    /// The id whose slot lock our open file description may share (bits; 0: none): a
    /// forked child that could not get a description of its own. Such a lock looks free
    /// through the shared description, so that owner is taken to be alive.
    shares_locks_of: AtomicU32,
    /// Whether our open file description may be shared with another process (a forked
    /// child that could not get a description of its own). Its OFD locks then exclude
    /// nothing that process does, so this handle never sweeps.
    shared_description: AtomicBool,
    /// The thread of this process that sweeps (or attaches a waiting handle) through our
    /// description: `fork generation + 1`, 0 for none. OFD locks do not exclude one
    /// description from itself, so two threads of a handle must not both hold a slot's
    /// sweep locks; a claim of another fork generation is stale (a parent forked while
    /// sweeping). An atomic, not a mutex, for the reason `reattaching` gives.
    sweeping: AtomicU64,
    /// When a sweep through this handle last failed (ms since the epoch; 0: never).
    sweep_failed_ms: AtomicU64,
    /// The re-attach under way: `pid << 32 | (generation + 1)` of the claimer, 0 for none.
    /// A claim of another pid is stale: a parent forked in the middle of its re-attach.
    /// (An atomic, not a mutex: a mutex held at a fork stays locked in the child.)
    reattaching: AtomicU64,
    /// Whether the child handler refreshes our descriptor after a fork.
    registered: bool,
    created: bool,
    construct_timeout: Duration,
    /// Arena blocks this process retired through this handle, waiting for their grace
    /// period (see [`crate::reclaim`]).
    retired: crate::reclaim::RetireQueue,
    /// The pin stripe block of our participant slot, once looked up (0: not yet): it
    /// stays the slot's while we hold the slot (see [`crate::grace`]). Cleared when a
    /// forked child attaches anew.
    pin_block: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Nothing of ours is pinned any more (a pin borrows a handle): free what others'
        // pins no longer hold back. What is still held back stays in our slot's retire log
        // for its next holder (see `crate::retire_log`); an empty log goes back to the
        // arena while we still hold the slot.
        let _ = self.reclaim();
        if let Some(slot) = self.held_slot() {
            let arena = self.arena();
            self.retired.with(|list| {
                if let (Some(log), Some(word)) = (list.log.take(), self.log_word(slot)) {
                    log.give_back_if_empty(&arena, word);
                }
            });
        }
        // A forked child that never used the region, or one that could not attach as
        // itself, holds no slot of its own: the one named is its parent's, or nobody's.
        if *self.attached_in.get_mut() == crate::fork::generation() && *self.own_slot.get_mut() {
            self.participants().detach(self.me());
        }
        if self.registered {
            crate::fork::unregister(self.file.as_raw_fd());
        }
    }
}

impl Inner {
    fn grace(&self) -> crate::grace::Grace<'_, MappedMemory> {
        crate::grace::Grace::new(
            &self.memory,
            self.fields.participants_offset,
            self.fields.participant_capacity,
        )
    }

    fn arena(&self) -> Arena<'_, MappedMemory> {
        Arena::new(
            &self.memory,
            self.fields.arena_offset,
            self.fields.arena_end,
        )
        .expect("validated at open: the arena lies inside the mapping")
    }

    /// A reclaim at an unpin while retired blocks wait, if one is due (see
    /// [`RetireQueue::due_on_unpin`](crate::reclaim::RetireQueue::due_on_unpin)).
    #[cold]
    #[inline(never)]
    fn reclaim_at_unpin(&self) {
        if self.retired.due_on_unpin() {
            // An error (a corrupt region) drops the entry concerned; the next operation
            // that needs the region reports it.
            let _ = self.reclaim();
        }
    }

    /// Frees this process's retired blocks whose grace period has passed; how many wait.
    /// Takes over first what earlier holders of our participant slot left in its retire
    /// log (see [`crate::retire_log`]).
    fn reclaim(&self) -> Result<usize> {
        let grace = self.grace();
        let arena = self.arena();
        let slot = self.held_slot();
        self.retired
            .with(|list| {
                self.bind_log(list, slot, false);
                list.reclaim(
                    &self.memory,
                    |epoch| grace.has_passed(epoch, self),
                    |offset, size| self.free_retired(&arena, offset, size),
                )?;
                Ok(list.len())
            })
            .inspect(|_| {
                self.drain_left_logs();
            })
    }

    /// Frees a retired block whose grace period has passed: nobody can reach it now, so
    /// its pages may go back to the system first.
    fn free_retired(&self, arena: &Arena<'_, MappedMemory>, offset: u64, size: u64) -> Result<()> {
        arena.check_block_of_size(offset, size)?;
        self.punch(offset, size);
        arena.free(offset, size)
    }

    /// Frees the blocks that processes which died or detached left waiting in the retire
    /// logs of other participant slots, once their grace period has passed, as those
    /// slots' next holders would (see [`crate::retire_log`]): so that what a killed
    /// process retired comes back without waiting for a process to take its slot. Each
    /// such slot is drained holding its claim and slot locks, at most [`DRAIN_LIMIT`]
    /// blocks at a time. How many blocks it freed.
    ///
    /// Only a handle attached in this process as itself does this, holding the handle's
    /// sweep claim (a fork child sharing its parent's description attaches as nobody);
    /// never inside the retire claim (taking over a log needs none, and `id` may take it).
    fn drain_left_logs(&self) -> usize {
        let Some(mine) = self.held_slot() else {
            return 0;
        };
        let (arena, participants, grace) = (self.arena(), self.participants(), self.grace());
        // A cheap look at every slot: a log with blocks waiting, whose holder is gone (no
        // system call on the locks of a slot whose holder's process still runs: its
        // liveness checks would wait).
        // Only slots ever attached to can have a log.
        let used = grace.slots_used().unwrap_or(0);
        let vacant: Vec<(u32, &crate::sync::AtomicU64)> = (0..used)
            .filter(|&slot| slot != mine)
            .filter_map(|slot| {
                let word = participants
                    .slot_word(slot, crate::retire_log::LOG_WORD)
                    .ok()?;
                (crate::retire_log::RetireLog::waiting(&arena, &self.memory, word) != 0)
                    .then_some((slot, word))
            })
            .filter(|&(slot, _)| participants.holder_may_run(slot).is_ok_and(|runs| !runs))
            .collect();
        if vacant.is_empty() {
            return 0;
        }
        let Some(_claim) = self.claim_sweep_locks() else {
            return 0;
        };
        // Moves the epoch on (a scan of the participants) before any slot's locks are
        // taken: a liveness check of a slot's last holder waits while they are held.
        if let Ok(epoch) = grace.epoch() {
            let _ = grace.has_passed(epoch, self);
        }
        let mut freed = 0;
        for (slot, word) in vacant {
            let drained = participants.while_vacant(slot, || {
                // The epoch now, read under the slot's locks (as `bind_log` reads it):
                // every entry in the log was written before, so no real epoch is later,
                // and a later one (a corrupt log) is taken as this one.
                let Ok(now) = grace.epoch() else {
                    return 0;
                };
                crate::retire_log::RetireLog::drain_left(
                    &arena,
                    &self.memory,
                    word,
                    slot,
                    now,
                    DRAIN_LIMIT,
                    |epoch| grace.has_passed_already(epoch).unwrap_or(false),
                    |offset, size| self.free_retired(&arena, offset, size),
                )
            });
            freed += drained.ok().flatten().unwrap_or(0);
        }
        freed
    }

    /// The participant slot this handle holds in this process, if any: `None` while it
    /// waits for one, and in a fork child that has not attached as itself yet (this does
    /// not attach it).
    fn held_slot(&self) -> Option<u32> {
        // Acquire: as in `id`.
        if self.attached_in.load(Ordering::Acquire) != crate::fork::generation() {
            return None;
        }
        // Acquire: as in `id`; `own_slot` was written before the id's Release store.
        let me = OwnerId::from_bits(self.me.load(Ordering::Acquire))?;
        // Relaxed: ordered by the Acquire load of the id.
        self.own_slot.load(Ordering::Relaxed).then_some(me.slot())
    }

    /// Binds `list` (claimed: see `RetireQueue::with`) to the retire log of `slot`, the
    /// slot this handle holds, unless it is bound to it already: takes over the blocks
    /// that the slot's earlier holders left there, and with `create` makes the log if the
    /// slot has none (see [`crate::retire_log`]). Without room for a log, or with a log
    /// word that cannot be read, retirements stay in this process only.
    fn bind_log(&self, list: &mut crate::reclaim::RetireList, slot: Option<u32>, create: bool) {
        let Some(slot) = slot else {
            return;
        };
        if list.log.is_some_and(|log| log.slot == slot) {
            return;
        }
        let Some(word) = self.log_word(slot) else {
            return;
        };
        let Ok(now) = self.grace().epoch() else {
            return;
        };
        if let Ok(Some((log, adopted))) =
            crate::retire_log::RetireLog::take_over(&self.arena(), &self.memory, word, slot, create)
        {
            list.adopt(log, &adopted, now);
        }
    }

    /// The log word of participant `slot`, if the table has that slot.
    fn log_word(&self, slot: u32) -> Option<&crate::sync::AtomicU64> {
        self.participants()
            .slot_word(slot, crate::retire_log::LOG_WORD)
            .ok()
    }

    /// Gives the whole pages of bytes `offset..offset + len` (a block no process can reach)
    /// back to the file system, so that they cost no memory and read as zeros: the range
    /// of pages done, if any. Below [`PUNCH_MIN`] bytes, or where the file system cannot,
    /// nothing is done.
    fn punch(&self, offset: u64, len: u64) -> Option<(u64, u64)> {
        if len < PUNCH_MIN {
            return None;
        }
        let start = offset.next_multiple_of(crate::layout::PAGE_SIZE);
        let end = offset.saturating_add(len) / crate::layout::PAGE_SIZE * crate::layout::PAGE_SIZE;
        if end <= start || end > self.fields.arena_end {
            return None;
        }
        let (Ok(at), Ok(bytes)) = (
            libc::off_t::try_from(start),
            libc::off_t::try_from(end - start),
        ) else {
            return None;
        };
        // SAFETY: `fallocate` on our own open file descriptor with a range inside the
        // file (KEEP_SIZE: the file's length, hence the mapping, is unchanged); the pages
        // hold no data any process can reach (the caller's promise).
        let done = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                at,
                bytes,
            )
        } == 0;
        done.then_some((start, end))
    }

    /// Our participant id; [`OwnerId::ORPHAN`] while the handle waits for a slot, which
    /// names no slot (so no sweep rewrites it and no liveness check takes it for a slot's
    /// owner). Nothing records it then: what records owners refuses a waiting handle
    /// ([`Region::get_or_create_object`], the structures' constructors).
    #[inline]
    fn me(&self) -> OwnerId {
        self.id().unwrap_or(OwnerId::ORPHAN)
    }

    /// Our participant id, `None` while the handle waits for a slot; attaching anew first
    /// if this process is a fork child of the one that attached (see [`crate::fork`]).
    #[inline]
    fn id(&self) -> Option<OwnerId> {
        // Acquire: pairs with the Release store in `reattach`, so `me` is the new id.
        if self.attached_in.load(Ordering::Acquire) != crate::fork::generation() {
            self.reattach();
        }
        // Acquire: pairs with the Release store of a waiting handle's new id
        // (`take_id`), so the slot word that shows it ACTIVE comes before any use
        // of the id by this thread (other processes judge our owner fields by that word).
        // Otherwise ordered by the Acquire above, or written by this thread.
        OwnerId::from_bits(self.me.load(Ordering::Acquire))
    }

    #[cold]
    fn reattach(&self) {
        let pid = u64::from(std::process::id());
        loop {
            let generation = crate::fork::generation();
            // Acquire: as in `me`.
            if self.attached_in.load(Ordering::Acquire) == generation {
                return; // done, by us or another thread of this child
            }
            let claim = pid << 32 | ((generation + 1) & 0xffff_ffff);
            // Acquire: a claim of ours by another thread is followed by its attach.
            let current = self.reattaching.load(Ordering::Acquire);
            if current == claim {
                std::thread::yield_now(); // another thread of this child is at it
                continue;
            }
            // AcqRel: one thread of this child wins the claim.
            if self
                .reattaching
                .compare_exchange(current, claim, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let inherited = self.me.load(Ordering::Relaxed);
            let (me, own, fresh) = self.attach_in_child();
            // Relaxed: published by the Release store of the generation.
            self.shares_locks_of
                .store(if fresh { 0 } else { inherited }, Ordering::Relaxed);
            self.shared_description.store(!fresh, Ordering::Relaxed);
            self.me.store(me.bits(), Ordering::Relaxed);
            self.own_slot.store(own, Ordering::Relaxed);
            // Relaxed: published by the Release store of the generation (the parent's
            // stripe block is not this child's slot's).
            self.pin_block.store(0, Ordering::Relaxed);
            // Release: see `me`.
            self.attached_in.store(generation, Ordering::Release);
            return;
        }
    }

    /// A forked child's own participant id, and whether it holds a slot. Never attaches
    /// through the open file description shared with the parent (whose slot locks would
    /// look free from it): without a fresh description of its own, or without a free
    /// slot, the child acts as [`OwnerId::ORPHAN`], which no other process sees alive.
    /// Also says whether the descriptor is now a fresh one.
    fn attach_in_child(&self) -> (OwnerId, bool, bool) {
        let fd = self.file.as_raw_fd();
        // The child handler normally refreshed it already; doing it again is harmless.
        let fresh = crate::fork::refresh(fd) || crate::fork::refresh_from_path(fd, &self.path);
        if fresh {
            if let Ok(me) = self.participants().attach() {
                return (me, true, true);
            }
        }
        (OwnerId::ORPHAN, false, fresh)
    }

    fn participants(&self) -> Participants<'_, MappedMemory> {
        Participants {
            mem: &self.memory,
            file: &self.file,
            fields: &self.fields,
        }
    }

    /// The right to use our open file description's sweep locks (see `sweeping`), if no
    /// other thread of this process has it and no other process may share the
    /// description. Any re-attach of a fork child (which locks through the description
    /// too) is over first.
    fn begin_sweep(&self) -> Option<SweepClaim<'_>> {
        // Finishes a fork child's re-attach.
        let _ = self.id();
        self.claim_sweep_locks()
    }

    /// `begin_sweep` for a caller that knows no re-attach is under way (it holds a slot
    /// it attached in this process, in this fork generation).
    fn claim_sweep_locks(&self) -> Option<SweepClaim<'_>> {
        // Relaxed: written by `reattach` before its Release store of `attached_in`, which
        // `id` loaded with Acquire.
        if self.shared_description.load(Ordering::Relaxed) {
            return None;
        }
        let ours = crate::fork::generation() + 1;
        // Acquire: see the Release in `SweepClaim::drop`.
        let current = self.sweeping.load(Ordering::Acquire);
        if current == ours {
            return None; // another thread of this process sweeps
        }
        // Acquire: the previous claimer's sweep (its slot words, its id) comes before ours.
        self.sweeping
            .compare_exchange(current, ours, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(SweepClaim(self))
    }

    /// Attaches a handle that waits for a slot to a slot that is free now (one a process
    /// left, or one another process swept), if there is one. Holds the sweep claim.
    fn attach_waiting(&self, _claim: &SweepClaim<'_>) -> Result<()> {
        if self.id().is_some() {
            return Ok(());
        }
        match self.participants().attach() {
            Ok(id) => {
                self.take_id(id);
                Ok(())
            }
            Err(Error::ParticipantsFull { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Makes `id` (a slot just attached in this process) a waiting handle's own.
    fn take_id(&self, id: OwnerId) {
        // Relaxed: read on drop only (after every other use of the handle).
        self.own_slot.store(true, Ordering::Relaxed);
        // Release: see `id`.
        self.me.store(id.bits(), Ordering::Release);
    }
}

/// A thread's exclusive use of a handle's sweep locks (see `Inner::sweeping`).
struct SweepClaim<'a>(&'a Inner);

impl Drop for SweepClaim<'_> {
    fn drop(&mut self) {
        // Release: see `begin_sweep`.
        self.0.sweeping.store(0, Ordering::Release);
    }
}

/// A handle to an attached region. Cheap to clone; every object handle keeps the
/// region (and so the mapping) alive.
///
/// ```
/// # use shmarena_engine as shmarena; // users depend on `shmarena`, which re-exports `Region`
/// use shmarena::Region;
/// let path = std::env::temp_dir().join(format!("shmarena-doc-region-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// assert_eq!(region.size(), 1 << 20);
/// let again = Region::open(&path)?; // another process would do the same
/// assert_eq!(again.hash_seed(), region.hash_seed());
/// Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
///
/// Object names are at most [`MAX_NAME_LEN`](crate::layout::MAX_NAME_LEN) (64) bytes of
/// UTF-8 (`shmarena::MAX_NAME_LEN`); a longer one is [`Error::InvalidName`]. A region
/// holds at most [`RegionOptions::catalog_capacity`] named objects, 512 by default
/// ([`Error::CatalogFull`] past it): [`Region::create_with`] sets another.
#[derive(Clone)]
pub struct Region {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("path", &self.inner.path)
            .field("size", &self.inner.fields.region_size)
            .field("participant", &self.inner.id())
            .finish_non_exhaustive()
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now_nanos());
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// The most bytes of the region's name that its staging name repeats. With the dot and
/// `.creating-<pid>-<ns>` (at most 42 bytes) the staging name stays within `NAME_MAX` (255
/// bytes on every Linux file system), so any name the file system accepts can be created.
const STAGING_NAME_MAX: usize = 200;

/// A stamp for a staging name: the clock in nanoseconds, but strictly above every stamp
/// this process handed out before, so two threads creating at once (on a clock coarser
/// than their gap) never share a name.
fn staging_stamp() -> u64 {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = now_nanos();
    let next = |last: u64| now.max(last.wrapping_add(1));
    // Relaxed: the stamps only need to differ, which the RMW's single order gives; they
    // publish nothing.
    let before = LAST
        .fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |last| Some(next(last)),
        )
        .unwrap_or_else(|last| last);
    next(before)
}

/// How many staging names a creator tries before it reports the last one's error. A name
/// is taken only by a process with the same pid (another pid namespace sharing the
/// directory) at the same nanosecond, or by a stale file such a process left.
const STAGING_ATTEMPTS: u32 = 8;

/// A unique name beside `path` for building a region before it is linked into place:
/// `.<name>.creating-<pid>-<ns>`, with the name cut to [`STAGING_NAME_MAX`] bytes (at a
/// UTF-8 character boundary when it is UTF-8). Uniqueness comes from the pid and a stamp
/// no other call in this process shares ([`staging_stamp`]).
fn staging_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidArgument(format!("{} names no file", path.display())))?
        .as_bytes();
    let mut kept = name.len().min(STAGING_NAME_MAX);
    // Back up over UTF-8 continuation bytes (at most 3), so a UTF-8 name stays UTF-8.
    while kept > 0 && kept < name.len() && name[kept] & 0xc0 == 0x80 {
        kept -= 1;
    }
    let mut staging = OsString::from(".");
    staging.push(OsStr::from_bytes(&name[..kept]));
    staging.push(format!(
        ".creating-{}-{}",
        std::process::id(),
        staging_stamp()
    ));
    Ok(path.with_file_name(staging))
}

/// What a file that is not a regular file is, in words.
fn describe_file_type(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// This process's effective uid.
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Refuses (unless `allow_shared`) a region file another user can write: owned by another
/// uid than ours, or writable by its group or by others. `metadata` comes from `fstat` on
/// the descriptor that is (or will be) mapped, never from the path, so it describes the
/// file actually used.
fn check_owner_and_mode(
    path: &Path,
    metadata: &std::fs::Metadata,
    allow_shared: bool,
) -> Result<()> {
    let euid = effective_uid();
    let mode = metadata.mode() & 0o7777;
    if allow_shared || (metadata.uid() == euid && mode & 0o022 == 0) {
        return Ok(());
    }
    Err(Error::WritableByOthers {
        path: path.to_path_buf(),
        owner_uid: metadata.uid(),
        mode,
        euid,
    })
}

/// `Error::NotARegion` for a path that names no file: a dangling symbolic link is said to
/// be one (`open_or_create` cannot create through it), anything else is not found.
fn missing(path: PathBuf) -> Error {
    match std::fs::symlink_metadata(&path) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            let target = std::fs::read_link(&path)
                .map_or_else(|_| "?".to_owned(), |target| target.display().to_string());
            Error::NotARegion {
                path,
                what: format!(
                    "a dangling symbolic link to {target}, which does not exist (remove the \
                     link, or give the path of the region itself)"
                ),
            }
        }
        _ => Error::RegionNotFound(path),
    }
}

/// Opens `path` for reading and writing if it leads to a regular file. Nothing else is
/// ever opened for reading or writing: the path is opened with `O_PATH` (no permission
/// needed, no side effect, never blocks), its type checked with `fstat`, and the same
/// file reopened through `/proc/self/fd`. Without `/proc`, the path is opened again
/// (with `O_NONBLOCK | O_NOCTTY`, so a FIFO or terminal swapped in meanwhile neither
/// blocks nor becomes the controlling terminal) and its type checked again.
fn open_regular_file(path: &Path) -> Result<File> {
    let probe = match File::options()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
    {
        Ok(probe) => probe,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(missing(path.to_path_buf())),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let not_regular = |metadata: &std::fs::Metadata| {
        (!metadata.file_type().is_file()).then(|| Error::NotARegion {
            path: path.to_path_buf(),
            what: describe_file_type(metadata.file_type()).to_owned(),
        })
    };
    let metadata = probe
        .metadata()
        .map_err(|e| Error::io(format!("fstat {}", path.display()), e))?;
    if let Some(error) = not_regular(&metadata) {
        return Err(error);
    }
    let read_write = |at: &Path, flags: i32| {
        File::options()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(at)
    };
    let reopened = read_write(
        Path::new(&format!("/proc/self/fd/{}", probe.as_raw_fd())),
        0,
    );
    let file = match reopened {
        Ok(file) => file,
        // No /proc: open the path again (see above) and check what it is now.
        Err(e) if e.kind() == ErrorKind::NotFound => {
            match read_write(path, libc::O_NONBLOCK | libc::O_NOCTTY) {
                Ok(file) => file,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(missing(path.to_path_buf()))
                }
                Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
            }
        }
        // Not ours to write: still say so when it is no region at all (a file of /proc, say).
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            let proc_path = format!("/proc/self/fd/{}", probe.as_raw_fd());
            if let Ok(readable) = File::open(&proc_path) {
                if let Ok(Magic::Absent) = read_magic(path, &readable) {
                    return Err(not_magic(path));
                }
            }
            return Err(Error::io(
                format!("opening {} for reading and writing", path.display()),
                e,
            ));
        }
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let metadata = file
        .metadata()
        .map_err(|e| Error::io(format!("fstat {}", path.display()), e))?;
    match not_regular(&metadata) {
        Some(error) => Err(error),
        None => Ok(file),
    }
}

/// Takes the shared open lock ([`participants::OPEN_LOCK`]) on `file` for as long as it
/// stays open, waiting up to `timeout` while a collector holds it exclusive (it does so for
/// a few system calls, while it decides about a region nobody had open: see `crate::gc`).
fn take_open_lock(file: &File, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    loop {
        if participants::try_lock_range(file, libc::F_RDLCK, participants::OPEN_LOCK, 1)? {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(Error::Contended(
                "taking the region's open lock: a collector (shmarena gc) kept it",
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether `path` (followed as the open followed it) still leads to the file `file` has
/// open: `false` once its name was unlinked, or replaced by another file.
fn still_named(path: &Path, file: &File) -> Result<bool> {
    let ours = file
        .metadata()
        .map_err(|e| Error::io(format!("fstat {}", path.display()), e))?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == ours.dev() && named.ino() == ours.ino()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(format!("stat {}", path.display()), e)),
    }
}

/// [`Error::NotARegion`] for a regular file without the magic number.
fn not_magic(path: &Path) -> Error {
    Error::NotARegion {
        path: path.to_path_buf(),
        what: "a file that does not start with the shmarena magic number".to_owned(),
    }
}

/// Where a regular file stands, from the bytes where the magic number goes.
enum Magic {
    /// The magic number.
    Present,
    /// No bytes, or zeros only: nothing written yet.
    Blank,
    /// Fewer bytes than the magic number, all of them its first ones.
    Cut,
    /// Anything else: not a region.
    Absent,
}

/// Reads the magic number's bytes with `pread` (a file's size says nothing for some
/// files: those of `/proc` have size 0 and text to read).
fn read_magic(path: &Path, file: &File) -> Result<Magic> {
    let expected = MAGIC.to_ne_bytes();
    let mut bytes = [0u8; 8];
    let mut got = 0;
    while got < bytes.len() {
        match file.read_at(&mut bytes[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }
    let bytes = &bytes[..got];
    Ok(if bytes.iter().all(|&b| b == 0) {
        Magic::Blank
    } else if bytes == expected {
        Magic::Present
    } else if bytes == &expected[..got] {
        Magic::Cut
    } else {
        Magic::Absent
    })
}

/// What one look at a region file found.
enum Look {
    /// A READY region, mapped and validated.
    Ready(MappedMemory, HeaderFields),
    /// A region of ours (its magic number is there) not READY yet.
    HalfBuilt,
    /// A file of `file_len` bytes with nothing where the magic number goes.
    Blank {
        /// Bytes in the file.
        file_len: u64,
    },
}

fn map_file(file: &File, path: &Path) -> Result<MappedMemory> {
    let map =
        MmapRaw::map_raw(file).map_err(|e| Error::io(format!("mapping {}", path.display()), e))?;
    Ok(MappedMemory {
        map,
        path: path.to_path_buf(),
    })
}

impl Region {
    /// Creates a region of `size` bytes with default options. Fails if it exists.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`], [`Error::InvalidSize`], [`Error::Io`].
    pub fn create(name_or_path: impl AsRef<Path>, size: u64) -> Result<Self> {
        Self::create_with(name_or_path, size, &RegionOptions::default())
    }

    /// Creates a region of `size` bytes with `options`. Fails if it exists.
    ///
    /// # Errors
    /// As [`create`](Self::create), plus [`Error::InvalidArgument`] for bad options.
    pub fn create_with(
        name_or_path: impl AsRef<Path>,
        size: u64,
        options: &RegionOptions,
    ) -> Result<Self> {
        let path = resolve_path(name_or_path)?;
        let fields = HeaderFields::plan(
            size,
            options.participant_capacity,
            options.catalog_capacity,
            options.hash_seed.unwrap_or_else(random_seed),
            now_nanos(),
        )?;
        // Build the region under a private staging name, then link it into place: the
        // name never points at a half-built region, and link(2) fails if the name exists,
        // so exactly one of any number of racing creators succeeds.
        let mut attempts = 0;
        let (staging, file) = loop {
            let staging = staging_path(&path)?;
            match File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&staging)
            {
                Ok(file) => break (staging, file),
                Err(e) => {
                    attempts += 1;
                    if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < STAGING_ATTEMPTS
                    {
                        continue;
                    }
                    return Err(Error::io(
                        format!(
                            "creating {} (as the staging file {})",
                            path.display(),
                            staging.display()
                        ),
                        e,
                    ));
                }
            }
        };
        // The open lock first, before anything else: it is ours from here for as long as
        // the handle lives, so no collector takes the staging file (nor, later, the region)
        // while we build, link and attach it (see `crate::gc`). Between the open and this
        // lock a collector could take it exclusive, but it leaves staging files younger
        // than a minute alone whatever their pids, so this succeeds at once.
        // Then the mode: the one given to open(2) is cut by the umask (0400 under umask
        // 0277, say, which another process of ours could not open for writing): set it
        // exactly.
        let flags = if options.collectable {
            header::FLAG_COLLECTABLE
        } else {
            0
        };
        let result = take_open_lock(&file, options.init_timeout)
            .and_then(|()| {
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::io(format!("chmod 0600 {}", staging.display()), e))
            })
            .and_then(|()| Self::initialize(&staging, &file, fields, flags))
            .and_then(|memory| {
                fail::fail_point!("region::before_link");
                match std::fs::hard_link(&staging, &path) {
                    Ok(()) => Ok(MappedMemory {
                        path: path.clone(),
                        ..memory
                    }),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        Err(Error::AlreadyExists(path.clone()))
                    }
                    Err(e) => Err(Error::io(format!("linking {}", path.display()), e)),
                }
            });
        let _ = std::fs::remove_file(&staging);
        Self::attach(path, file, result?, fields, options, true)
    }

    /// Writes the header of a new region into `file` (not yet visible under its name) and
    /// marks it READY.
    fn initialize(
        path: &Path,
        file: &File,
        fields: HeaderFields,
        flags: u64,
    ) -> Result<MappedMemory> {
        // Held until READY, so that an opener of the staging file (a person looking at a
        // leftover) can tell a creator at work from a dead one. A brand-new file: nobody
        // else holds it; a failure only costs that distinction.
        let _ = participants::try_lock_byte(file, participants::INIT_LOCK);
        let result = Self::write_header(path, file, fields, flags);
        participants::unlock_byte(file, participants::INIT_LOCK);
        result
    }

    fn write_header(
        path: &Path,
        file: &File,
        fields: HeaderFields,
        flags: u64,
    ) -> Result<MappedMemory> {
        file.set_len(fields.region_size)
            .map_err(|e| Error::io(format!("sizing {}", path.display()), e))?;
        let memory = map_file(file, path)?;
        // Relaxed throughout: nothing is visible to openers until the Release store of READY
        // (and the name itself appears only after it).
        memory
            .word(header::STATE)?
            .store(header::STATE_INITIALIZING, Ordering::Relaxed);
        memory
            .word(header::CREATOR_PID)?
            .store(u64::from(std::process::id()), Ordering::Relaxed);
        memory.word(header::FLAGS)?.store(flags, Ordering::Relaxed);
        let words: [u64; HEADER_FIELD_WORDS] = bytemuck::cast(fields);
        for (i, value) in words.iter().enumerate() {
            memory.word(8 * i as u64)?.store(*value, Ordering::Relaxed);
        }
        Arena::new(&memory, fields.arena_offset, fields.arena_end)?.initialize()?;
        fail::fail_point!("region::before_ready");
        // Release: publishes the header, tables and arena state to every opener's Acquire.
        memory
            .word(header::STATE)?
            .store(header::STATE_READY, Ordering::Release);
        Ok(memory)
    }

    fn attach(
        path: PathBuf,
        file: File,
        memory: MappedMemory,
        fields: HeaderFields,
        options: &RegionOptions,
        created: bool,
    ) -> Result<Self> {
        // The cheap side of the wake-up pairings (see `crate::barrier`), before any
        // structure of this region can be used.
        crate::barrier::register();
        // Registered first: a fork between the attach and the registration would leave
        // the child sharing our new slot lock.
        let registered = crate::fork::register(file.as_raw_fd());
        let participants = Participants {
            mem: &memory,
            file: &file,
            fields: &fields,
        };
        // Every slot held or retired, some retired: wait for a slot (see `open`).
        let me = match participants.attach() {
            Ok(me) => Some(me),
            Err(Error::ParticipantsFull { .. }) if participants.any_retired() => None,
            Err(error) => {
                if registered {
                    crate::fork::unregister(file.as_raw_fd());
                }
                return Err(error);
            }
        };
        let attached_in = crate::fork::generation();
        let region = Self {
            inner: Arc::new(Inner {
                path,
                file,
                memory,
                fields,
                me: AtomicU32::new(me.map_or(0, OwnerId::bits)),
                attached_in: AtomicU64::new(attached_in),
                own_slot: AtomicBool::new(me.is_some()),
                shares_locks_of: AtomicU32::new(0),
                shared_description: AtomicBool::new(false),
                sweeping: AtomicU64::new(0),
                sweep_failed_ms: AtomicU64::new(0),
                reattaching: AtomicU64::new(0),
                registered,
                created,
                construct_timeout: options.construct_timeout,
                retired: crate::reclaim::RetireQueue::default(),
                pin_block: AtomicU64::new(0),
            }),
        };
        if me.is_some() {
            // What earlier holders of the slot retired and left behind: taken over, and
            // freed now if its grace period has passed. An error (a corrupt region)
            // shows again in the operation that meets it.
            let _ = region.inner.reclaim();
        }
        Ok(region)
    }

    /// Whether this handle created the region (useful after
    /// [`open_or_create`](Self::open_or_create)).
    pub fn is_creator(&self) -> bool {
        self.inner.created
    }

    /// Opens an existing region with default options.
    ///
    /// The handle attaches to a free participant slot. When every slot is held by a live
    /// process or retired (its generations used up, see [`crate::liveness`]) and at least
    /// one is retired, it opens *waiting for a slot* instead
    /// ([`is_waiting_for_slot`](Self::is_waiting_for_slot)): retired slots are returned
    /// to use only by a sweep, which needs the structures' purge and so runs when an
    /// object is opened through them, not here. The sweep that follows gives the handle a
    /// slot (see [`sweep_retired_participants`](Self::sweep_retired_participants)); until
    /// then it reads the region (objects, participants, statistics) but creates nothing.
    /// So a region whose every slot retired never locks new processes out.
    ///
    /// A file whose name is unlinked (or replaced) while it is being opened is not
    /// attached to: the name is opened again, so the handle is of the file the name leads
    /// to once the region's open lock is held (see [`crate::gc`]).
    ///
    /// # Errors
    /// [`Error::RegionNotFound`], [`Error::NotARegion`] (a device, FIFO, directory,
    /// socket, dangling symbolic link, or a file without the magic number),
    /// [`Error::WritableByOthers`], [`Error::VersionMismatch`], [`Error::Truncated`],
    /// [`Error::Corrupt`], [`Error::Initializing`], [`Error::Io`];
    /// [`Error::ParticipantsFull`] when every participant slot is held by a live process;
    /// [`Error::Contended`] when a collector keeps the region's open lock past
    /// [`RegionOptions::init_timeout`] (it holds it for a few system calls: one stopped
    /// in between), or the name keeps being replaced.
    pub fn open(name_or_path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(name_or_path, &RegionOptions::default())
    }

    /// Opens an existing region; only the timeouts and
    /// [`allow_shared`](RegionOptions::allow_shared) of `options` apply.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(name_or_path: impl AsRef<Path>, options: &RegionOptions) -> Result<Self> {
        let path = resolve_path(name_or_path)?;
        // Bounded: each round needs the name to be unlinked or replaced meanwhile.
        for _ in 0..16 {
            let file = open_regular_file(&path)?;
            if let Some(region) = Self::open_file(&path, file, options)? {
                return Ok(region);
            }
        }
        Err(Error::Contended(
            "open: the region's name keeps being unlinked or replaced",
        ))
    }

    /// Opens the region file `file`, opened from `path`. `None` when the name no longer
    /// leads to that file once we hold its open lock (a collector removed it, or it was
    /// replaced): the caller opens the name again.
    fn open_file(path: &Path, file: File, options: &RegionOptions) -> Result<Option<Self>> {
        let path = path.to_path_buf();
        let started = Instant::now();
        let mut creator_gone_once = false;
        loop {
            let blank_len = match Self::look(&path, &file, options)? {
                Look::Ready(memory, fields) => {
                    // The open lock first, then the name: a collector that unlinked the
                    // name did so before we got the lock (it holds the lock exclusive from
                    // its check to its unlink), and then the name leads elsewhere, or
                    // nowhere. Once we hold it no collector can start deciding, so a
                    // region we attach to keeps its name (see `crate::gc`).
                    take_open_lock(&file, options.init_timeout)?;
                    if !still_named(&path, &file)? {
                        return Ok(None);
                    }
                    return Self::attach(path, file, memory, fields, options, false).map(Some);
                }
                Look::HalfBuilt => None,
                Look::Blank { file_len } => Some(file_len),
            };
            // Not ready yet. A creator that holds its lock is alive; one that does not may
            // not have taken it yet, so it must be missing twice, 20 ms apart.
            let creator_alive = participants::byte_is_locked(&file, participants::INIT_LOCK);
            let creator_dead = !creator_alive && creator_gone_once;
            creator_gone_once = !creator_alive;
            if creator_dead || started.elapsed() >= options.init_timeout {
                if let (Some(file_len), false) = (blank_len, creator_alive) {
                    // Our creators show a region under its name only once READY: an empty
                    // or zeroed file nobody is writing was never one of ours.
                    let what = if file_len == 0 {
                        "an empty file, and no process is initializing it".to_owned()
                    } else {
                        format!(
                            "a file of {file_len} bytes with zeros where the magic number \
                             goes, and no process is initializing it"
                        )
                    };
                    return Err(Error::NotARegion { path, what });
                }
                return Err(Error::Initializing {
                    path,
                    waited_ms: started.elapsed().as_millis() as u64,
                    creator_dead: !creator_alive,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Re-checks, with `fstat` on the open region file, what opening checks unless
    /// [`RegionOptions::allow_shared`] is set: that the file belongs to this process's
    /// effective uid and that neither its group nor others may write it. For a handle kept
    /// and handed out again (a cache of open regions), since the owner or mode may have
    /// changed since it was opened, or it may have been opened with `allow_shared`.
    ///
    /// # Errors
    /// [`Error::WritableByOthers`], [`Error::Io`] if `fstat` fails.
    pub fn check_owner_and_mode(&self) -> Result<()> {
        check_owner_and_mode(&self.inner.path, &self.file_metadata()?, false)
    }

    /// One look at the file (a regular one, see [`open_regular_file`]).
    fn look(path: &Path, file: &File, options: &RegionOptions) -> Result<Look> {
        let metadata = file
            .metadata()
            .map_err(|e| Error::io(format!("fstat {}", path.display()), e))?;
        let file_len = metadata.len();
        // The magic number first: a file without it is no region, whatever its size.
        let magic = read_magic(path, file)?;
        if let Magic::Absent = magic {
            return Err(not_magic(path));
        }
        // Before anything is mapped: a file another user can write is refused.
        check_owner_and_mode(path, &metadata, options.allow_shared)?;
        if file_len < HEADER_SIZE {
            if let Magic::Blank = magic {
                return Ok(Look::Blank { file_len }); // nothing written (yet?)
            }
            // The magic number, or its first bytes: a region cut short.
            return Err(Error::Truncated {
                path: path.to_path_buf(),
                file_len,
                needed: HEADER_SIZE,
            });
        }
        let memory = map_file(file, path)?;
        // Validate against what was mapped, not the size read before: another process may
        // have resized the file in between.
        let file_len = memory.len();
        if file_len < HEADER_SIZE {
            return Err(Error::Truncated {
                path: path.to_path_buf(),
                file_len,
                needed: HEADER_SIZE,
            });
        }
        // Acquire: pairs with the creator's Release store of READY, making the header visible.
        let state = memory.word(header::STATE)?.load(Ordering::Acquire);
        // Relaxed: ordered by the Acquire above (or irrelevant when not ready).
        let magic = memory.word(0)?.load(Ordering::Relaxed);
        if magic == 0 && state != header::STATE_READY {
            return Ok(Look::Blank { file_len });
        }
        if magic != MAGIC {
            return Err(not_magic(path));
        }
        match state {
            header::STATE_READY => {}
            header::STATE_ZERO | header::STATE_INITIALIZING => return Ok(Look::HalfBuilt),
            other => {
                return Err(Error::corrupt(
                    "region state",
                    format!("{other} is no known state"),
                ))
            }
        }
        let mut words = [0u64; HEADER_FIELD_WORDS];
        for (i, value) in words.iter_mut().enumerate() {
            // Relaxed: ordered by the Acquire load of the state.
            *value = memory.word(8 * i as u64)?.load(Ordering::Relaxed);
        }
        let fields: HeaderFields = bytemuck::cast(words);
        if fields.layout_version != LAYOUT_VERSION {
            return Err(Error::VersionMismatch {
                path: path.to_path_buf(),
                found: fields.layout_version,
                expected: LAYOUT_VERSION,
            });
        }
        if fields.region_size > file_len && fields.checksum == fields.compute_checksum() {
            return Err(Error::Truncated {
                path: path.to_path_buf(),
                file_len,
                needed: fields.region_size,
            });
        }
        fields.validate(file_len)?;
        Ok(Look::Ready(memory, fields))
    }

    /// Opens the region if it exists, else creates it; racing callers agree on one creator.
    /// What is found under the name is checked as by [`open`](Self::open): a file another
    /// user can write is refused (see [`RegionOptions::allow_shared`]), and a dangling
    /// symbolic link is reported as one.
    ///
    /// # Errors
    /// As [`create`](Self::create) and [`open`](Self::open).
    pub fn open_or_create(name_or_path: impl AsRef<Path>, size: u64) -> Result<Self> {
        Self::open_or_create_with(name_or_path, size, &RegionOptions::default())
    }

    /// [`open_or_create`](Self::open_or_create) with options (all used when creating; the
    /// timeouts and [`allow_shared`](RegionOptions::allow_shared) when opening).
    ///
    /// # Errors
    /// As [`open_or_create`](Self::open_or_create).
    pub fn open_or_create_with(
        name_or_path: impl AsRef<Path>,
        size: u64,
        options: &RegionOptions,
    ) -> Result<Self> {
        let path = resolve_path(name_or_path)?;
        // Bounded: the file can vanish between our failed create and our open only if
        // someone unlinks it, and each such round needs another unlink.
        for _ in 0..16 {
            match Self::create_with(&path, size, options) {
                Err(Error::AlreadyExists(_)) => {}
                other => return other,
            }
            match Self::open_with(&path, options) {
                Err(Error::RegionNotFound(_)) => {}
                other => return other,
            }
        }
        Err(Error::Contended(
            "open_or_create: the region keeps being unlinked",
        ))
    }

    /// Removes the region's name. Attached processes keep their mapping; the memory is
    /// freed when the last one detaches.
    ///
    /// # Errors
    /// [`Error::RegionNotFound`], [`Error::Io`].
    pub fn unlink(name_or_path: impl AsRef<Path>) -> Result<()> {
        let path = resolve_path(name_or_path)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::RegionNotFound(path)),
            Err(e) => Err(Error::io(format!("unlinking {}", path.display()), e)),
        }
    }

    /// The metadata of the open region file (its identity, and whether its name still
    /// links to it: `nlink` is 0 once it was unlinked).
    ///
    /// # Errors
    /// [`Error::Io`] if `fstat` fails.
    pub fn file_metadata(&self) -> Result<std::fs::Metadata> {
        self.inner
            .file
            .metadata()
            .map_err(|e| Error::io(format!("fstat {}", self.inner.path.display()), e))
    }

    /// The region file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Asks the kernel to back this process's mapping of the region with huge pages
    /// (`madvise(MADV_HUGEPAGE)`), for large tables read at random: a map of a million
    /// slots spans 33 MiB, whose 4 KiB pages outrun the TLB, so that every lookup walks
    /// page tables as well. Each process decides for its own mapping; the contents and
    /// every guarantee are the same either way.
    ///
    /// It takes effect where the file system lets a file have huge pages on request: a
    /// tmpfs mounted with `huge=advise` (or `within_size`, `always`), e.g.
    /// `mount -o remount,huge=advise /dev/shm`; elsewhere it changes nothing. With it,
    /// each 2 MiB extent of the file that is touched takes 2 MiB of memory: a sparse
    /// region, touched here and there, takes more.
    ///
    /// # Errors
    /// [`Error::Io`] if the kernel refuses the advice (one built without transparent huge
    /// pages: `EINVAL`).
    ///
    /// ```
    /// # use shmarena_engine::Region;
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-huge-{}", std::process::id()));
    /// let region = Region::create(&path, 64 << 20)?;
    /// // Where the kernel has no transparent huge pages, the refusal is only advice lost.
    /// let _ = region.advise_huge_pages();
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena_engine::Error>(())
    /// ```
    #[cfg(target_os = "linux")]
    pub fn advise_huge_pages(&self) -> Result<()> {
        self.inner
            .memory
            .map
            .advise(memmap2::Advice::HugePage)
            .map_err(|e| {
                Error::io(
                    format!("advising huge pages for {}", self.path().display()),
                    e,
                )
            })
    }

    /// Total size in bytes.
    pub fn size(&self) -> u64 {
        self.inner.fields.region_size
    }

    /// The seed every process uses for hashing region contents.
    pub fn hash_seed(&self) -> u64 {
        self.inner.fields.hash_seed
    }

    /// The validated immutable header fields.
    pub fn header(&self) -> &HeaderFields {
        &self.inner.fields
    }

    /// Pid recorded by the creator.
    pub fn creator_pid(&self) -> u32 {
        // Relaxed: informational.
        self.inner
            .memory
            .word(header::CREATOR_PID)
            .map_or(0, |w| w.load(Ordering::Relaxed) as u32)
    }

    /// Pins this process for a grace period (see [`crate::grace`]): until the returned
    /// guard drops, nothing this thread reaches after the call is freed by a process that
    /// follows the protocol (it retires what it unlinks with [`Self::grace_epoch`] and
    /// frees it once [`Self::grace_has_passed`]). One read-modify-write and a fence (no
    /// system call, but for the re-attach of a forked child's first use). Pins nest and
    /// may be held by many threads at once.
    ///
    /// ```
    /// # use shmarena_engine::Region;
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-pin-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let reader = region.pin()?;
    /// // ... another process unlinks a block the reader may still be reading ...
    /// let retired_at = region.grace_epoch()?;
    /// assert!(!region.grace_has_passed(retired_at)?, "a live reader is pinned");
    /// drop(reader);
    /// assert!(region.grace_has_passed(retired_at)?); // now it may be freed
    /// # drop(region); std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), shmarena_engine::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ParticipantsFull`] for a handle waiting for a participant slot (it cannot
    /// announce anything), as for a forked child that found no slot; [`Error::Corrupt`]
    /// (never for a validated region).
    #[inline]
    pub fn pin(&self) -> Result<GracePin<'_>> {
        let me = self.inner.me();
        if me == OwnerId::ORPHAN {
            return Err(Error::ParticipantsFull {
                capacity: self.inner.fields.participant_capacity,
            });
        }
        // Relaxed: process-local; a child's re-attach clears it before the Release that
        // `me` acquired.
        let cached = self.inner.pin_block.load(Ordering::Relaxed);
        let token = if cached != 0 {
            self.grace().pin_in_block(cached, thread_stripe())?
        } else {
            self.pin_looking_up(me)?
        };
        Ok(GracePin {
            token,
            fork_generation: crate::fork::generation(),
            inner: &self.inner,
        })
    }

    /// A pin of participant `me` whose stripe block is not cached yet: looked up (given
    /// first if the slot has none) and cached.
    #[cold]
    #[inline(never)]
    fn pin_looking_up(&self, me: OwnerId) -> Result<crate::grace::PinToken<'_>> {
        let grace = self.grace();
        if grace.stripes(me.slot())?.is_none() {
            self.give_stripes(me.slot());
        }
        match grace.stripes(me.slot())? {
            Some(block) => {
                // Relaxed: process-local (see `pin`).
                self.inner.pin_block.store(block, Ordering::Relaxed);
                grace.pin_in_block(block, thread_stripe())
            }
            None => grace.pin_stripe(me.slot(), thread_stripe()),
        }
    }

    /// Gives our participant slot its pin stripes (see [`crate::grace`]), once per slot:
    /// a zeroed arena block published in the slot. Without room for it, pins go on the
    /// slot's own word.
    #[cold]
    fn give_stripes(&self, slot: u32) {
        let Ok(block) = self.alloc_zeroed_words(crate::grace::STRIPE_BLOCK / 8) else {
            return;
        };
        if let Ok(current) = self.grace().set_stripes(slot, block) {
            if current != block {
                // Another thread of ours gave them first: ours was never reachable.
                let _ = self.arena().free(block, crate::grace::STRIPE_BLOCK);
            }
        }
    }

    /// How many participant slots from the first have ever been attached to (the
    /// high-water mark grace periods scan up to, see [`crate::grace`]).
    ///
    /// ```
    /// # use shmarena_engine::Region;
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-used-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let other = Region::open(&path)?;
    /// assert_eq!(region.participant_slots_used()?, 2);
    /// # drop(other);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena_engine::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] (never for a validated region).
    pub fn participant_slots_used(&self) -> Result<u32> {
        self.grace().slots_used()
    }

    /// The current grace epoch (see [`crate::grace`]): what to record with something just
    /// retired.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (never for a validated region).
    pub fn grace_epoch(&self) -> Result<u64> {
        self.grace().epoch()
    }

    /// Whether something retired at grace epoch `retired` may be freed or reused now:
    /// every live process pinned when it was retired has unpinned since. Moves the epoch
    /// on where it can; dead processes' pins are skipped.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (never for a validated region).
    pub fn grace_has_passed(&self, retired: u64) -> Result<bool> {
        self.grace().has_passed(retired, self)
    }

    /// [`Self::grace_has_passed`] without trying to move the epoch on (one read of the
    /// epoch, no scan of the participant table): for a caller that asks often.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (never for a validated region).
    pub fn grace_has_passed_already(&self, retired: u64) -> Result<bool> {
        self.grace().has_passed_already(retired)
    }

    #[inline]
    fn grace(&self) -> crate::grace::Grace<'_, MappedMemory> {
        self.inner.grace()
    }

    /// Retires the arena block at `offset` of `size` bytes (the size it was allocated
    /// with), which the caller has just unlinked from every shared path: it returns to
    /// the arena once every process that may still be reading it (pinned with
    /// [`Self::pin`] when it was unlinked) has unpinned. The block waits on this
    /// process's list and is freed by a later retirement, [`Self::reclaim`], or the drop
    /// of the region handle (see [`crate::reclaim`] for the costs and what a kill leaks).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the block cannot be one of the arena's (nothing is
    /// retired), or from a reclaim this retirement set off.
    pub fn retire_block(&self, offset: u64, size: u64) -> Result<()> {
        self.arena().check_block_of_size(offset, size)?;
        let epoch = self.grace_epoch()?;
        let inner = &*self.inner;
        let slot = inner.held_slot();
        let due = inner.retired.with(|list| {
            inner.bind_log(list, slot, true);
            let index = list
                .log
                .as_mut()
                .and_then(|log| log.append(&inner.memory, offset, size, epoch));
            // A full log: a reclaim makes room in it (what stays out of it leaks with us).
            let full = index.is_none() && list.log.is_some();
            if index.is_some() {
                list.found_room();
            }
            list.push(crate::reclaim::Retired {
                offset,
                size,
                epoch,
                index,
            });
            list.is_due() || (full && list.asks_for_room())
        });
        if due {
            self.reclaim()?;
        }
        Ok(())
    }

    /// [`Self::retire_block`], and this process's next unpin tries to free it: for a
    /// large block whose retirer is pinned (a map's old table), which would otherwise wait
    /// for the next batch.
    ///
    /// # Errors
    /// As [`Self::retire_block`].
    pub fn retire_block_soon(&self, offset: u64, size: u64) -> Result<()> {
        self.retire_block(offset, size)?;
        self.inner.retired.retired_now();
        Ok(())
    }

    /// For harnesses that put the region's file back to its just-created state under this
    /// live handle (the fuzz targets): forgets this process's retired blocks (that memory
    /// was rewritten: freeing them would free blocks of the new contents) and the pin
    /// stripe block it looked up. Not for anything else.
    #[doc(hidden)]
    pub fn forget_local_state(&self) {
        self.inner
            .retired
            .with(|list| *list = crate::reclaim::RetireList::default());
        // Relaxed: the harness is single-threaded.
        self.inner.pin_block.store(0, Ordering::Relaxed);
    }

    /// Frees this process's retired blocks whose grace period has passed (see
    /// [`Self::retire_block`]); how many still wait.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the region's arena or participant table is corrupt (the
    /// block concerned is dropped from the list).
    pub fn reclaim(&self) -> Result<usize> {
        self.inner.reclaim()
    }

    /// Copies `bytes` into a new arena block, out of line: the [`Blob`](crate::Blob) to
    /// publish in a slot (its [`to_bytes`](crate::Blob::to_bytes)) with a Release store
    /// or compare-exchange. Unpublished, give it back with [`Self::free_blob`]; once
    /// published and then unlinked, with [`Self::retire_blob`].
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the arena has no room.
    pub fn store_blob(&self, bytes: &[u8]) -> Result<crate::Blob> {
        let len = bytes.len() as u64;
        let blob = crate::Blob::new(0, len);
        let block = self.alloc_block(blob.block_size())?;
        let blob = crate::Blob::new(block.offset, len);
        let words = len.div_ceil(8);
        let first = self
            .arena_atomics::<std::sync::atomic::AtomicU64>(block.offset, words.max(1))
            .inspect_err(|_| {
                let _ = self.arena().free(block.offset, blob.block_size());
            })?;
        // Whole words in a loop of its own, the zero-padded tail after it: a loop of plain
        // stores without a per-word length check.
        let whole = bytes.chunks_exact(8);
        let tail = whole.remainder();
        let mut stored = 0;
        for chunk in whole {
            let word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8 bytes"));
            // SAFETY: `first` points at `words` checked words of the block, and
            // stored < len / 8 <= words.
            // Relaxed: published by the caller's Release store of the blob (see above).
            unsafe { &*first.as_ptr().add(stored) }.store(word, Ordering::Relaxed);
            stored += 1;
        }
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            // SAFETY: as above; the tail's word is the last of the `words`.
            // Relaxed: as above.
            unsafe { &*first.as_ptr().add(stored) }
                .store(u64::from_le_bytes(word), Ordering::Relaxed);
        }
        Ok(blob)
    }

    /// The bytes of `blob`, read while `pin` (a pin of this process, taken before the
    /// slot that named the blob was read) keeps it from being freed.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the blob's bytes would leave the arena (its slot was
    /// corrupt); bytes of the right place but wrong contents come back as they are.
    pub fn read_blob(&self, blob: crate::Blob, pin: &GracePin<'_>) -> Result<Vec<u8>> {
        let _ = pin;
        let len = usize::try_from(blob.len())
            .ok()
            .filter(|&len| len as u64 <= self.inner.fields.arena_end)
            .ok_or_else(|| crate::reclaim::bad_blob(blob, "longer than the arena"))?;
        let words = blob.len().div_ceil(8);
        let first = self
            .arena_atomics::<std::sync::atomic::AtomicU64>(blob.offset(), words.max(1))
            .map_err(|_| crate::reclaim::bad_blob(blob, "outside the arena"))?;
        // A corrupt length may ask for most of the arena: an error, not an abort, if this
        // process cannot hold that much.
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(len)
            .map_err(|_| Error::OutOfMemory {
                requested: blob.len(),
                available: 0,
                region: "this process's memory".to_owned(),
            })?;
        // Zeroed first (one memset), then whole words copied in a loop without a length
        // check per word, then the tail.
        bytes.resize(len, 0);
        let mut whole = bytes.chunks_exact_mut(8);
        let mut loaded = 0;
        for chunk in &mut whole {
            // SAFETY: `first` points at `words` checked words of the arena, and
            // loaded < len / 8 <= words.
            // Relaxed: the slot's Acquire load that named the blob ordered its contents.
            let word = unsafe { &*first.as_ptr().add(loaded) }.load(Ordering::Relaxed);
            chunk.copy_from_slice(&word.to_le_bytes());
            loaded += 1;
        }
        let tail = whole.into_remainder();
        if !tail.is_empty() {
            // SAFETY: as above; the tail's word is the last of the `words`.
            // Relaxed: as above.
            let word = unsafe { &*first.as_ptr().add(loaded) }.load(Ordering::Relaxed);
            let tail_len = tail.len();
            tail.copy_from_slice(&word.to_le_bytes()[..tail_len]);
        }
        Ok(bytes)
    }

    /// [`Self::store_blob`], the blob freed again if it is dropped before it is
    /// [`published`](crate::StagedBlob::published): for a writer whose publication may
    /// fail or be given up.
    ///
    /// # Errors
    /// As [`Self::store_blob`].
    pub fn stage_blob(&self, bytes: &[u8]) -> Result<crate::StagedBlob<'_>> {
        Ok(crate::StagedBlob::new(self.store_blob(bytes)?, self))
    }

    /// Retires a published blob that the caller has just unlinked (see
    /// [`Self::retire_block`]).
    ///
    /// # Errors
    /// As [`Self::retire_block`].
    pub fn retire_blob(&self, blob: crate::Blob) -> Result<()> {
        self.retire_block(blob.offset(), blob.block_size())
    }

    /// Frees a blob no other process can have seen (it was never published) at once.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when it cannot be an arena block.
    pub fn free_blob(&self, blob: crate::Blob) -> Result<()> {
        self.arena().free(blob.offset(), blob.block_size())
    }

    /// This handle's participant id (its owner id in shared state). [`OwnerId::ORPHAN`]
    /// while the handle waits for a slot (see [`open`](Self::open)), as in a forked child
    /// that found none.
    #[inline]
    pub fn participant_id(&self) -> OwnerId {
        self.inner.me()
    }

    /// Whether this handle waits for a participant slot: it was opened when every slot
    /// was held by a live process or retired (see [`open`](Self::open)), and no sweep has
    /// given it one yet. While it waits it reads the region but records no owner:
    /// [`get_or_create_object`](Self::get_or_create_object) (and every structure's
    /// constructor) fails with [`Error::ParticipantsFull`].
    pub fn is_waiting_for_slot(&self) -> bool {
        self.inner.id().is_none()
    }

    /// Whether `owner` is still attached and alive (a system call unless it is us).
    pub fn is_alive(&self, owner: OwnerId) -> bool {
        Liveness::is_alive(&*self.inner, owner)
    }

    /// The participant table: every slot ever used, with liveness.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (never for a validated region).
    pub fn participants(&self) -> Result<Vec<ParticipantInfo>> {
        self.inner.participants().list(self.inner.me())
    }

    /// Whether participant slots wait for a sweep (a hint: a cheap load, never `false`
    /// while one waits). See [`Self::sweep_retired_participants`].
    pub fn has_retired_participants(&self) -> bool {
        self.inner
            .memory
            .word(header::RETIRED_SLOTS)
            // Relaxed: a hint; the sweep reads each slot's word with Acquire.
            .is_ok_and(|word| word.load(Ordering::Relaxed) != 0)
    }

    /// Returns retired participant slots to use (see [`crate::liveness`]: an owner id is
    /// never reused while a dead owner's id may be recorded). For each retired slot, the
    /// catalog's owner fields naming it and then `purge(slot)` (the structures' own: every
    /// owner field in every object) are rewritten to [`OwnerId::DEAD`]; then the slot is
    /// free again. How many slots this call returned.
    ///
    /// A handle that waits for a slot (see [`open`](Self::open)) attaches here: to a slot
    /// that is free by now, else to the first slot it sweeps (which it takes straight
    /// from retired to its own, under the sweep's locks, at generation 1; counted among
    /// the slots returned). A slot it took stays its own if the sweep then fails.
    ///
    /// Slots that another process is sweeping are left to it, and so is the whole sweep
    /// when another thread of this process sweeps through this handle, or drains a dead
    /// process's retire log through it at a reclaim (the two would share its open file
    /// description, whose locks do not exclude each other), or when this handle is a
    /// forked child's that shares its parent's description: those calls return 0 at once
    /// (the next call sweeps).
    ///
    /// # Errors
    /// What `purge` returns; [`Error::Contended`] for fields that keep changing;
    /// [`Error::Io`] when a lock cannot be asked for.
    pub fn sweep_retired_participants(
        &self,
        mut purge: impl FnMut(u32) -> Result<()>,
    ) -> Result<u32> {
        let Some(claim) = self.inner.begin_sweep() else {
            return Ok(0);
        };
        let mut swept = Swept::default();
        let result = self.inner.attach_waiting(&claim).and_then(|()| {
            let take = self.inner.id().is_none();
            self.inner.participants().sweep(
                &mut |slot| {
                    self.catalog().retire_owner_slot(slot)?;
                    purge(slot)
                },
                take,
                &mut swept,
            )
        });
        if let Some(id) = swept.taken {
            self.inner.take_id(id);
        }
        if result.is_err() {
            // Relaxed: a note for this process's threads, which order nothing by it.
            self.inner
                .sweep_failed_ms
                .store((now_nanos() / 1_000_000).max(1), Ordering::Relaxed);
        }
        result.map(|()| swept.returned)
    }

    /// Whether a [`sweep_retired_participants`](Self::sweep_retired_participants) through
    /// this handle (or a clone of it) failed less than `within` ago: for callers that sweep
    /// before every object open, so that a region with a corrupted object is not rescanned
    /// on each (while other regions of the process still are swept).
    pub fn sweep_failed_within(&self, within: Duration) -> bool {
        // Relaxed: as where it is stored.
        let failed = self.inner.sweep_failed_ms.load(Ordering::Relaxed);
        failed != 0 && (now_nanos() / 1_000_000).saturating_sub(failed) < within.as_millis() as u64
    }

    /// The region's memory, for algorithms written over [`Memory`].
    pub fn memory(&self) -> &MappedMemory {
        &self.inner.memory
    }

    /// The arena allocator.
    pub fn arena(&self) -> Arena<'_, MappedMemory> {
        self.inner.arena()
    }

    /// An arena block of `size` bytes. When the arena has none, this process's retired
    /// blocks whose grace period has passed are freed first and the allocation is tried
    /// again (blocks waiting for a batch must not make the region look full).
    fn alloc_block(&self, size: u64) -> Result<crate::Block> {
        match self.arena().alloc(size) {
            Err(Error::OutOfMemory { .. }) if self.inner.retired.waits() => {
                // An error here (a corrupt region) shows again in the allocation.
                let _ = self.reclaim();
                self.arena().alloc(size)
            }
            other => other,
        }
    }

    /// Allocates an arena block of `words` zeroed words, not yet reachable by anyone: its
    /// region offset. The zeros are published by the caller's Release store or
    /// compare-exchange of the offset (a fresh block is zero already; a recycled one is
    /// zeroed with Relaxed stores, or, from [`PUNCH_MIN`] bytes, by giving its whole pages
    /// back to the file system, which reads them as zeros, and storing only its ends).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the arena has no room; [`Error::Corrupt`] as
    /// [`Arena::alloc`](crate::arena::Arena::alloc).
    pub fn alloc_zeroed_words(&self, words: u64) -> Result<u64> {
        self.alloc_zeroed_words_recorded(words, |_| {})
    }

    /// [`Self::alloc_zeroed_words`], calling `record` with the block's offset as soon as
    /// the block is this process's, before it is zeroed: a caller that records the offset
    /// where others look (naming itself) lets them give the block back should this process
    /// die before the block is reachable. Only the instructions between the allocation's
    /// compare-exchange and `record`'s store leave a block that a death leaks.
    ///
    /// # Errors
    /// As [`Self::alloc_zeroed_words`]: `record` is not called when there is no block; a
    /// block recorded before a later check failed (a corrupt region) stays allocated.
    pub fn alloc_zeroed_words_recorded(&self, words: u64, record: impl FnOnce(u64)) -> Result<u64> {
        let bytes = words
            .checked_mul(8)
            .ok_or_else(|| Error::out_of_memory(u64::MAX, 0, &self.inner.memory))?;
        let block = self.alloc_block(bytes)?;
        record(block.offset);
        if !block.fresh {
            let first = self.arena_atomics::<std::sync::atomic::AtomicU64>(block.offset, words)?;
            // A large block: its whole pages go back to the file system (zeros, and no
            // memory until written); only the ends are zeroed by hand.
            let (skip_from, skip_to) = self
                .inner
                .punch(block.offset, bytes)
                .map_or((words, words), |(start, end)| {
                    ((start - block.offset) / 8, (end - block.offset) / 8)
                });
            for i in (0..skip_from).chain(skip_to..words) {
                // SAFETY: `first` points at `words` checked words of the block.
                // Relaxed: published by the caller (see above).
                unsafe { &*first.as_ptr().add(i as usize) }.store(0, Ordering::Relaxed);
            }
        }
        Ok(block.offset)
    }

    /// [`Self::arena_atomics`] without the checks, for a range this process checked
    /// before: a structure that keeps a validated offset in its own memory (not in the
    /// mapping) and comes back to it on a fast path.
    ///
    /// # Safety
    /// `arena_atomics::<A>(offset, count)` returned `Ok` on this region (any handle of
    /// this mapping) for a `count` covering every atomic the caller reaches.
    #[inline]
    pub unsafe fn arena_atomics_checked_before<A: SharedAtomic>(&self, offset: u64) -> NonNull<A> {
        // SAFETY: the caller's promise: `offset` was checked (in the arena, aligned) by
        // `arena_atomics`, and the mapping does not move while the region lives.
        let ptr = unsafe { self.inner.memory.base().add(offset as usize) };
        // SAFETY: an offset into a non-null mapping.
        unsafe { NonNull::new_unchecked(ptr.cast::<A>()) }
    }

    /// Pointer to `count` atomics of type `A` at byte `offset` of the region, after
    /// checking that they lie inside the arena and are aligned: for structures that keep
    /// parts of themselves in arena blocks of their own (a list's later segments), whose
    /// offsets they read from the mapping.
    ///
    /// The pointer stays valid as long as any clone of the region lives.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the range leaves the arena or is misaligned.
    pub fn arena_atomics<A: SharedAtomic>(&self, offset: u64, count: u64) -> Result<NonNull<A>> {
        let fields = &self.inner.fields;
        let size = size_of::<A>() as u64;
        let fits = offset >= fields.arena_offset
            && offset % size == 0
            && count
                .checked_mul(size)
                .and_then(|len| len.checked_add(offset))
                .is_some_and(|end| end <= fields.arena_end);
        if !fits {
            return Err(Error::corrupt(
                "arena block",
                format!("{count} x {size} bytes at {offset} do not fit in the arena"),
            ));
        }
        // SAFETY: in bounds (the arena lies inside the mapping, validated at open, and the
        // range inside the arena, checked above) and aligned (the mapping is page-aligned,
        // the offset a multiple of `size`).
        let ptr = unsafe { self.inner.memory.base().add(offset as usize) };
        Ok(NonNull::new(ptr.cast::<A>()).expect("mapping base is non-null"))
    }

    /// Arena statistics.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (never for a validated region).
    pub fn arena_stats(&self) -> Result<ArenaStats> {
        self.arena().stats()
    }

    fn catalog(&self) -> Catalog<'_, MappedMemory> {
        let fields = &self.inner.fields;
        Catalog::new(
            &self.inner.memory,
            fields.catalog_offset,
            fields.catalog_capacity,
        )
        .expect("validated at open: the catalog lies inside the mapping")
    }

    /// Every named object (ready or under construction).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for undecodable entries.
    pub fn objects(&self) -> Result<Vec<EntryInfo>> {
        self.catalog().entries()
    }

    /// Looks up a ready object by name.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::Corrupt`].
    pub fn find_object(&self, name: &str) -> Result<Option<EntryInfo>> {
        self.catalog().find(name)
    }

    /// Finds the object `name` or creates it: allocates `body_size` zeroed bytes, lets
    /// `init` write the initial contents, then publishes it. Exactly one process runs
    /// `init` for a name (a survivor reruns it if that process died mid-way).
    ///
    /// The returned object's body is checked to lie inside the arena; the caller checks
    /// that the descriptor's capacity and body size fit its own layout.
    ///
    /// The catalog records who constructs: a handle that waits for a participant slot
    /// (see [`open`](Self::open)) first attaches to a slot that is free by now, else fails.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`], [`Error::InvalidName`], [`Error::CatalogFull`],
    /// [`Error::OutOfMemory`], [`Error::Timeout`], [`Error::Corrupt`];
    /// [`Error::ParticipantsFull`] while the handle waits for a slot and none is free.
    pub fn get_or_create_object(
        &self,
        name: &str,
        descriptor: &TypeDescriptor,
        body_size: u64,
        init: impl Fn(&Object) -> Result<()>,
    ) -> Result<(Object, Outcome)> {
        // The catalog records its constructor's owner id: none while the handle waits.
        if self.is_waiting_for_slot() {
            if let Some(claim) = self.inner.begin_sweep() {
                self.inner.attach_waiting(&claim)?;
            }
            if self.is_waiting_for_slot() {
                return Err(Error::ParticipantsFull {
                    capacity: self.inner.fields.participant_capacity,
                });
            }
        }
        let mut construct = || {
            let block = self.alloc_block(body_size)?;
            let object = self.object_unchecked(EntryInfo {
                index: 0,
                name: name.to_owned(),
                descriptor: *descriptor,
                offset: block.offset,
                size: body_size,
                ready: false,
                owner: Some(self.inner.me()),
            });
            if !block.fresh {
                object.zero()?;
            }
            init(&object)?;
            Ok((block.offset, body_size))
        };
        let (info, outcome) = self.catalog().get_or_create(
            name,
            descriptor,
            self,
            self.inner.construct_timeout,
            &mut construct,
        )?;
        Ok((self.object(info)?, outcome))
    }

    /// Opens the ready object `name`, checking that it has the kind and types of `expected`
    /// (its capacity is whatever was created).
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::Corrupt`].
    pub fn open_object(&self, name: &str, expected: &TypeDescriptor) -> Result<Object> {
        let info = self
            .find_object(name)?
            .ok_or_else(|| Error::ObjectNotFound(name.to_owned()))?;
        if !info.descriptor.same_type(expected) {
            return Err(Error::TypeMismatch {
                name: name.to_owned(),
                // The capacity is no part of what an open asks for.
                expected: expected.type_name().to_string(),
                found: info.descriptor.to_string(),
            });
        }
        self.object(info)
    }

    fn object_unchecked(&self, info: EntryInfo) -> Object {
        Object {
            region: self.clone(),
            info,
        }
    }

    /// Wraps a catalog entry after checking its body lies inside the arena.
    fn object(&self, info: EntryInfo) -> Result<Object> {
        let fields = &self.inner.fields;
        let inside = info.offset >= fields.arena_offset
            && info.offset % crate::layout::BLOCK_ALIGN == 0
            && info
                .offset
                .checked_add(info.size)
                .is_some_and(|end| end <= fields.arena_end);
        if !inside {
            return Err(Error::corrupt(
                "catalog body",
                format!(
                    "object {:?} claims bytes {}+{} outside the arena",
                    info.name, info.offset, info.size
                ),
            ));
        }
        Ok(self.object_unchecked(info))
    }
}

/// A grace-period pin of one region handle (see [`Region::pin`]); unpins on drop.
///
/// A pin belongs to the process that took it. A forked child inherits a copy that
/// protects nothing there (the parent may unpin, or die, at any time: pin again in the
/// child); dropping that copy gives back nothing, so the parent's pin stays in place
/// until the parent drops its own. A pin that is forgotten (`mem::forget`) holds
/// reclamation back until its process exits.
#[must_use = "a pin protects only while it is held"]
pub struct GracePin<'r> {
    token: crate::grace::PinToken<'r>,
    fork_generation: u64,
    /// The handle's state: its retired blocks are tried at unpins (`crate::reclaim`).
    inner: &'r Inner,
}

impl std::fmt::Debug for GracePin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GracePin")
            .field("token", &self.token)
            .field("fork_generation", &self.fork_generation)
            .finish_non_exhaustive()
    }
}

impl GracePin<'_> {
    /// The epoch read when pinning (the parity the pin counts at). It may be stale: never
    /// use it as the epoch of a retirement (that is [`Region::grace_epoch`], read after
    /// the unlink).
    pub fn epoch(&self) -> u64 {
        self.token.epoch()
    }
}

impl Drop for GracePin<'_> {
    #[inline]
    fn drop(&mut self) {
        if crate::fork::generation() == self.fork_generation {
            self.token.unpin();
            if self.inner.retired.waits() {
                self.inner.reclaim_at_unpin();
            }
        }
    }
}

/// Smallest block whose pages [`Region::alloc_zeroed_words`] and reclamation give back to
/// the file system (a system call, where smaller blocks are zeroed by hand or kept).
pub const PUNCH_MIN: u64 = 256 << 10;

/// Most blocks one reclaim frees from the retire log that a process which died or
/// detached left in a participant slot: the slot's locks are held meanwhile, and a
/// liveness check of that process waits while they are (the rest waits for the next).
pub const DRAIN_LIMIT: usize = 64;

/// This thread's pin stripe (see [`crate::grace`]): threads take them in turn.
#[inline]
fn thread_stripe() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    thread_local! {
        // Relaxed: any spread of the numbers is correct; turns only spread contention.
        static STRIPE: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    STRIPE.with(|stripe| *stripe)
}

impl Inner {
    /// Whether `owner` is the attachment whose file description (and so whose locks) this
    /// process shares: alive as long as we are.
    fn shares_locks_with(&self, owner: OwnerId) -> bool {
        // Relaxed: written before `me` was published (its Acquire in `me()`).
        owner.bits() == self.shares_locks_of.load(Ordering::Relaxed)
    }
}

impl Liveness for Inner {
    #[inline]
    fn me(&self) -> OwnerId {
        Inner::me(self)
    }

    fn is_alive(&self, owner: OwnerId) -> bool {
        let me = Inner::me(self);
        // Its lock looks free through the description we share with it.
        self.shares_locks_with(owner) || self.participants().is_alive(me, owner)
    }

    fn may_be_alive(&self, owner: OwnerId) -> bool {
        let me = Inner::me(self);
        self.shares_locks_with(owner) || self.participants().may_be_alive(me, owner)
    }
}

impl Liveness for Region {
    #[inline]
    fn me(&self) -> OwnerId {
        self.inner.me()
    }

    fn is_alive(&self, owner: OwnerId) -> bool {
        Region::is_alive(self, owner)
    }

    fn may_be_alive(&self, owner: OwnerId) -> bool {
        Liveness::may_be_alive(&*self.inner, owner)
    }
}

/// A named object's body in the region: what structure handles are built from.
#[derive(Clone, Debug)]
pub struct Object {
    region: Region,
    info: EntryInfo,
}

impl Object {
    /// The region holding the object.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The catalog entry.
    pub fn info(&self) -> &EntryInfo {
        &self.info
    }

    /// The `count` atomics of type `A` starting `byte_offset` bytes into the body, borrowed
    /// from this handle (checked as [`Self::atomics`] checks them).
    ///
    /// # Errors
    /// As [`Self::atomics`].
    pub fn atomic_slice<A: SharedAtomic>(&self, byte_offset: u64, count: u64) -> Result<&[A]> {
        let start = self.atomics::<A>(byte_offset, count)?;
        // SAFETY: `atomics` checked that `count` aligned `A`s lie inside the body, which
        // stays mapped while `self` (holding the region) lives; atomics may be shared.
        Ok(unsafe { std::slice::from_raw_parts(start.as_ptr(), count as usize) })
    }

    /// Pointer to `count` atomics of type `A` starting `byte_offset` bytes into the body,
    /// after checking that they lie inside the body and are aligned.
    ///
    /// The pointer stays valid as long as any clone of the region lives; structure
    /// handles keep one.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the range leaves the body or is misaligned.
    pub fn atomics<A: SharedAtomic>(&self, byte_offset: u64, count: u64) -> Result<NonNull<A>> {
        let size = size_of::<A>() as u64;
        let fits = byte_offset % size == 0
            && count
                .checked_mul(size)
                .and_then(|len| len.checked_add(byte_offset))
                .is_some_and(|end| end <= self.info.size);
        if !fits {
            return Err(Error::corrupt(
                "object body",
                format!(
                    "{count} x {size} bytes at {byte_offset} do not fit in object {:?} of {} bytes",
                    self.info.name, self.info.size
                ),
            ));
        }
        let offset = self.info.offset + byte_offset;
        // SAFETY: in bounds: the body lies in the arena (checked when this Object was made)
        // and the range in the body (checked above); aligned: 64-aligned body, offset a
        // multiple of `size`.
        let ptr = unsafe { self.region.inner.memory.base().add(offset as usize) };
        Ok(NonNull::new(ptr.cast::<A>()).expect("mapping base is non-null"))
    }

    /// Zeroes the whole body with atomic word stores.
    fn zero(&self) -> Result<()> {
        let memory = &self.region.inner.memory;
        for word in 0..self.info.size.div_ceil(8) {
            // Relaxed: the body is published later by the catalog's Release store.
            memory
                .word(self.info.offset + 8 * word)?
                .store(0, Ordering::Relaxed);
        }
        Ok(())
    }
}
