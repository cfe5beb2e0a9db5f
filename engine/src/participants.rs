//! The participant table: which processes are attached, and which of them have died.
//!
//! ```text
//! slot (64 bytes):
//!   word 0  | pid: 32 bits | unused: 1 | generation: 19 bits | unused: 4 | state: 8 bits |
//!   word 1  process start time (clock ticks since boot, from /proc/self/stat; 0 if unknown)
//!   word 2  attach time (unix ns)
//!   word 3  unused
//!   word 4  grace-period pins of the holder's threads (see crate::grace), cleared by each
//!           attach before it publishes its generation
//!   word 5  region offset of the slot's pin stripes (see crate::grace; 0: none), kept
//!           for every later holder of the slot
//!   word 6  region offset of the slot's retire log (see crate::retire_log; 0: none),
//!           kept for every later holder of the slot, which takes over what it holds
//! ```
//!
//! Liveness does not trust the table. Each slot `i` has a companion byte-range lock,
//! an open-file-description (OFD) lock on byte `LOCK_BASE + i` of the region file. The
//! holder takes it before it writes the slot and keeps it for as long as it stays
//! attached; the kernel drops it when the process dies, however it dies. So:
//!
//! - attach: try-lock slot after slot (non-blocking), first the slot's claim lock (byte
//!   `CLAIM_BASE + i`), then its slot lock; the first slot lock won is ours, whatever the
//!   slot word says (a stale word belongs to a dead process). Then bump the slot's
//!   generation, publish `ACTIVE | generation | pid`, and let go of the claim lock.
//! - `is_alive(owner)`: the slot word shows the owner's generation as ACTIVE, some other
//!   open file description holds the slot's lock (`F_OFD_GETLK`), nobody holds its claim
//!   lock (else an attach is under way: look again shortly), and the word still shows that
//!   generation after those checks. Without the claim lock, a dead owner would look alive
//!   in the instant between a newcomer's lock and its generation.
//! - a dead process's slot is reclaimed by the next attach that wins its lock; its
//!   generation changes, so the dead owner id never looks alive again (no pid-reuse trap).
//! - a slot whose generation reached the region's limit is not reused: the attach that
//!   finds it so marks it `RETIRED` (counted in the header) and moves on. `sweep` later
//!   takes the slot's two locks, rewrites every owner field naming the slot to
//!   `OwnerId::DEAD` (the caller's purge), and only then compare-exchanges the `RETIRED`
//!   word it saw under the locks to `FREE` at generation 0 (or to `ACTIVE` at generation 1
//!   for a process that found no slot and sweeps to get one), so no id of a dead
//!   attachment ever names a live process. A sweeper that dies leaves the slot `RETIRED`
//!   for the next one (the purge is idempotent). A `RETIRED` slot's owners are dead to
//!   `is_alive` throughout.
//!
//! OFD locks exclude open file descriptions, not threads or processes: two threads using
//! one description, or a forked child still sharing its parent's, both get every lock.
//! So whoever holds a `Participants` makes sure that nothing else locks through its
//! description while it attaches or sweeps (the region lets one thread of a handle sweep
//! at a time, and a handle whose description another process may share never sweeps nor
//! attaches). The sweep's compare-exchange is the last guard should that fail: it changes
//! no slot word it did not see retired under the locks, and counts only what it returned.
//!
//! Like LMDB's reader table, the table is advisory and the lock is the truth.

use std::fs::File;
use std::os::fd::AsRawFd;

use crate::error::{Error, Result};
use crate::layout::{header, HeaderFields, PARTICIPANT_SLOT_SIZE};
use crate::liveness::OwnerId;
use crate::memory::Memory;
use crate::sync::Ordering;

/// Byte offset of slot 0's liveness lock in the region file (beyond any region's end:
/// byte-range locks need not lie inside the file).
pub const LOCK_BASE: i64 = 1 << 46;
/// Byte offset of the creator's initialization lock.
pub const INIT_LOCK: i64 = LOCK_BASE - 1;
/// Byte offset of the region's open lock: every open file description through which a
/// process uses the region holds it *shared* from before it attaches until it is closed
/// (the creator from the moment it created its staging file; an opener from before it
/// checks that the name still leads to the file it opened; a forked child on its fresh
/// description before it lets go of the inherited one). A collector (`crate::gc`) takes it
/// *exclusive* while it decides whether to unlink the region's name: it can only get it
/// while no process has the region open. See `crate::gc` for the argument.
pub const OPEN_LOCK: i64 = LOCK_BASE - 2;
/// Byte offset of slot 0's claim lock: held by a process only while it attaches to that
/// slot (from before it takes the slot lock until it has published its generation), so
/// `is_alive` can tell "the old owner holds the slot lock" from "a newcomer holds it and
/// has not said so yet".
pub const CLAIM_BASE: i64 = LOCK_BASE + (1 << 32);

use crate::layout::slot_word::{
    active_generation, pack_slot, slot_generation, STATE_ACTIVE, STATE_FREE, STATE_RETIRED,
};

/// A row of the participant table, for `inspect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipantInfo {
    /// Slot index.
    pub slot: u32,
    /// Current generation of the slot.
    pub generation: u32,
    /// Pid recorded by the last holder.
    pub pid: u32,
    /// Whether the slot's word says ACTIVE.
    pub active: bool,
    /// Whether a live process holds the slot's lock.
    pub alive: bool,
    /// Recorded process start time in clock ticks since boot (0 if unknown).
    pub start_time: u64,
    /// Grace-period pins the slot's threads hold (see [`crate::grace`]): a frozen process
    /// that holds one keeps reclamation waiting.
    pub pins: u64,
    /// Arena blocks in the slot's retire log (see [`crate::retire_log`]): retired by its
    /// holder and not freed yet, or left by a holder that died or detached, for the slot's
    /// next holder to free.
    pub retired: u64,
}

fn flock(kind: i32, byte: i64) -> libc::flock {
    flock_range(kind, byte, 1)
}

fn flock_range(kind: i32, start: i64, len: i64) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all-zero is a valid value.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = start;
    lock.l_len = len;
    lock.l_pid = 0; // required for OFD locks
    lock
}

/// Tries to take the exclusive OFD lock on `byte` without blocking. `Ok(false)` when
/// another open file description holds it.
pub(crate) fn try_lock_byte(file: &File, byte: i64) -> Result<bool> {
    try_lock_range(file, libc::F_WRLCK, byte, 1)
}

/// Tries to take an OFD lock of `kind` (`F_RDLCK` shared, `F_WRLCK` exclusive) on the
/// `len` bytes from `start`, without blocking. `Ok(false)` when another open file
/// description holds a conflicting lock on any of them (then none is taken).
pub(crate) fn try_lock_range(file: &File, kind: i32, start: i64, len: i64) -> Result<bool> {
    try_lock_fd(file.as_raw_fd(), kind, start, len).map_err(|errno| {
        Error::io(
            "fcntl(F_OFD_SETLK) on the region file",
            std::io::Error::from_raw_os_error(errno),
        )
    })
}

/// [`try_lock_range`] on a raw descriptor, with the `errno` of a failure other than a
/// conflict. Async-signal-safe (no allocation, no lock): the fork child handler uses it.
pub(crate) fn try_lock_fd(
    fd: i32,
    kind: i32,
    start: i64,
    len: i64,
) -> std::result::Result<bool, i32> {
    let lock = flock_range(kind, start, len);
    // SAFETY: fcntl on any descriptor number is defined (EBADF for a closed one); `lock`
    // is a valid flock struct that outlives the call.
    let rc = unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &lock) };
    if rc == 0 {
        return Ok(true);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN | libc::EACCES) => Ok(false),
        Some(errno) => Err(errno),
        None => Err(libc::EIO),
    }
}

/// Releases our OFD lock on `byte`.
pub(crate) fn unlock_byte(file: &File, byte: i64) {
    let lock = flock(libc::F_UNLCK, byte);
    // SAFETY: as in `try_lock_byte`. Failure leaves the lock until the file is closed,
    // which is harmless.
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
}

/// The first byte of `start..start + len` on which another open file description holds
/// a lock, if any (one `F_OFD_GETLK` for the whole range). `Some(start)` when the kernel
/// cannot be asked (the conservative answer, as in [`byte_is_locked`]).
pub(crate) fn first_locked_in(file: &File, start: i64, len: i64) -> Option<i64> {
    let mut lock = flock_range(libc::F_WRLCK, start, len);
    // SAFETY: as in `try_lock_byte`; GETLK writes the first conflicting lock into `lock`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    if rc != 0 {
        return Some(start);
    }
    (lock.l_type != libc::F_UNLCK as libc::c_short).then_some(lock.l_start.max(start))
}

/// Whether another open file description holds a lock on `byte`.
pub(crate) fn byte_is_locked(file: &File, byte: i64) -> bool {
    let mut lock = flock(libc::F_WRLCK, byte);
    // SAFETY: as in `try_lock_byte`; GETLK writes the conflicting lock (if any) into `lock`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    // On error, answer "alive": a wrong "dead" would let two owners in; a wrong "alive"
    // only makes a survivor wait for its timeout.
    rc != 0 || lock.l_type != libc::F_UNLCK as libc::c_short
}

/// This process's start time, read from procfs once per process (reading it on every
/// attach was about a fifth of `Region::open_with` on a 64 KiB region, in a profile of the
/// `open_region` fuzz target). A fork child has another pid, so it reads its own.
fn process_start_time() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PID: AtomicU64 = AtomicU64::new(0);
    static START: AtomicU64 = AtomicU64::new(0);
    let pid = u64::from(std::process::id());
    // Acquire: pairs with the Release store of PID below, so START is the one read for it.
    // Threads of one process that race here store the same value.
    if PID.load(Ordering::Acquire) == pid {
        // Relaxed: ordered by the Acquire load above.
        return START.load(Ordering::Relaxed);
    }
    let start = read_process_start_time();
    // Relaxed: published by the Release store of PID.
    START.store(start, Ordering::Relaxed);
    // Release: see the Acquire load above.
    PID.store(pid, Ordering::Release);
    start
}

fn read_process_start_time() -> u64 {
    // Field 22 of /proc/self/stat, counted after the parenthesized command name.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.split_whitespace().nth(19)?.parse().ok()
        })
        .unwrap_or(0)
}

/// What a [`Participants::sweep`] did.
#[derive(Debug, Default)]
pub(crate) struct Swept {
    /// Slots returned to use (freed, or taken).
    pub(crate) returned: u32,
    /// The slot taken for this process, as its new id (when asked to take one).
    pub(crate) taken: Option<OwnerId>,
}

/// The participant table of one region, seen through one open file description.
pub(crate) struct Participants<'a, M: Memory> {
    pub(crate) mem: &'a M,
    pub(crate) file: &'a File,
    pub(crate) fields: &'a HeaderFields,
}

impl<'a, M: Memory> Participants<'a, M> {
    /// Word `field` (a byte offset) of participant slot `slot`.
    pub(crate) fn slot_word(&self, slot: u32, field: u64) -> Result<&'a crate::sync::AtomicU64> {
        self.mem
            .word(self.fields.participants_offset + u64::from(slot) * PARTICIPANT_SLOT_SIZE + field)
    }

    /// Claims a slot for this process (see the module docs).
    pub(crate) fn attach(&self) -> Result<OwnerId> {
        let pid = std::process::id();
        for slot in 0..self.fields.participant_capacity as u32 {
            let claim = CLAIM_BASE + i64::from(slot);
            if !try_lock_byte(self.file, claim)? {
                continue; // another process is attaching to it right now
            }
            if !try_lock_byte(self.file, LOCK_BASE + i64::from(slot))? {
                unlock_byte(self.file, claim);
                continue; // a live process holds it
            }
            fail::fail_point!("participants::after_lock");
            let word = self.slot_word(slot, 0)?;
            // Relaxed: we hold the slot's lock, so no other attacher writes this word.
            let seen = word.load(Ordering::Relaxed);
            let used = slot_generation(seen);
            if seen & 0xff == STATE_RETIRED || used >= self.generation_limit()? {
                // Every generation of this slot may still be named somewhere: leave it to a
                // sweep (module docs). Counted first, so the count is never too low.
                if seen & 0xff != STATE_RETIRED {
                    // Relaxed: a hint for sweepers; the slot word is what they trust.
                    self.mem
                        .word(header::RETIRED_SLOTS)?
                        .fetch_add(1, Ordering::Relaxed);
                    // Release: the retirement; nobody reads anything else with it.
                    word.store(pack_slot(STATE_RETIRED, used, 0), Ordering::Release);
                }
                unlock_byte(self.file, LOCK_BASE + i64::from(slot));
                unlock_byte(self.file, claim);
                continue;
            }
            let generation = OwnerId::next_generation(used);
            let grace = self.grace();
            // Before any pin on the slot: scans read the slots below the mark (`grace`).
            grace.note_attach(slot)?;
            grace.clear_pins(slot)?;
            // Release: publishes the cleared lanes with the generation.
            word.store(pack_slot(STATE_ACTIVE, generation, pid), Ordering::Release);
            self.record_attach(slot);
            // The new generation is out: `is_alive` may judge this slot again.
            unlock_byte(self.file, claim);
            return Ok(OwnerId::new(slot, generation));
        }
        Err(Error::ParticipantsFull {
            capacity: self.fields.participant_capacity,
        })
    }

    fn grace(&self) -> crate::grace::Grace<'_, M> {
        crate::grace::Grace::new(
            self.mem,
            self.fields.participants_offset,
            self.fields.participant_capacity,
        )
    }

    /// Writes the informational fields of a slot just attached: our start time and the
    /// time of attach.
    fn record_attach(&self, slot: u32) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // Relaxed: informational fields (read by `inspect` only). Inside the table (the
        // slot word was reached), so the words exist.
        if let (Ok(start), Ok(at)) = (self.slot_word(slot, 8), self.slot_word(slot, 16)) {
            start.store(process_start_time(), Ordering::Relaxed);
            at.store(now, Ordering::Relaxed);
        }
    }

    /// Whether some slot's word says `RETIRED` (waiting for a sweep).
    pub(crate) fn any_retired(&self) -> bool {
        (0..self.fields.participant_capacity as u32).any(|slot| {
            self.slot_word(slot, 0)
                // Relaxed: a look; whoever acts on it reads the word again under the locks.
                .is_ok_and(|word| word.load(Ordering::Relaxed) & 0xff == STATE_RETIRED)
        })
    }

    /// Generations a slot runs through before it is retired: the header's limit, within
    /// `1..=OwnerId::MAX_GENERATION` (0 or anything beyond: the most).
    fn generation_limit(&self) -> Result<u32> {
        // Relaxed: a setting written before any attach that should heed it.
        let limit = self
            .mem
            .word(header::GENERATION_LIMIT)?
            .load(Ordering::Relaxed);
        Ok(match limit {
            1..=0x7fff_ffff => (limit as u32).min(OwnerId::MAX_GENERATION),
            _ => OwnerId::MAX_GENERATION,
        })
    }

    /// Returns retired slots to use: for each, with its claim and slot locks held, runs
    /// `purge(slot)` (which must rewrite every owner field naming the slot to
    /// `OwnerId::DEAD`), then compare-exchanges the slot word from the `RETIRED` word seen
    /// under the locks to `FREE` at generation 0, or, when `take` and no slot was taken
    /// yet, to `ACTIVE` at generation 1 for this process, keeping its slot lock (an attach
    /// for a handle that found no slot: see `Region::open`). Slots another process is
    /// sweeping are left to it.
    ///
    /// What it did goes into `swept`, also when it fails part way (a slot it took is ours
    /// whatever the later slots do).
    ///
    /// The caller makes sure that nothing else uses our open file description's locks
    /// meanwhile (no other sweep or attach of this process through it, no other process
    /// sharing it): OFD locks exclude other descriptions only. The compare-exchange is the
    /// last guard: a sweep whose locks were not exclusive after all changes no slot word
    /// it did not see retired, and counts only the slots it returned.
    pub(crate) fn sweep(
        &self,
        purge: &mut dyn FnMut(u32) -> Result<()>,
        take: bool,
        swept: &mut Swept,
    ) -> Result<()> {
        let retired = self.mem.word(header::RETIRED_SLOTS)?;
        // Relaxed: a hint (never below the number of retired slots).
        if retired.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        for slot in 0..self.fields.participant_capacity as u32 {
            let word = self.slot_word(slot, 0)?;
            // Acquire: pairs with the retirement's Release store.
            if word.load(Ordering::Acquire) & 0xff != STATE_RETIRED {
                continue;
            }
            let claim = CLAIM_BASE + i64::from(slot);
            if !try_lock_byte(self.file, claim)? {
                continue; // another sweeper has it
            }
            let slot_lock = LOCK_BASE + i64::from(slot);
            if !try_lock_byte(self.file, slot_lock)? {
                unlock_byte(self.file, claim);
                continue;
            }
            // Acquire: as above. Under the locks nobody else changes the word: this is the
            // word the slot's return to use compare-exchanges from.
            let seen = word.load(Ordering::Acquire);
            if seen & 0xff != STATE_RETIRED {
                unlock_byte(self.file, slot_lock);
                unlock_byte(self.file, claim);
                continue; // swept meanwhile
            }
            // A retired slot's holders are dead: their pins count for nobody.
            let outcome = purge(slot).and_then(|()| self.grace().clear_pins(slot));
            let mut keep_slot_lock = false;
            if outcome.is_ok() {
                let taking = take && swept.taken.is_none();
                let pid = std::process::id();
                let next = if taking {
                    pack_slot(STATE_ACTIVE, OwnerId::next_generation(0), pid)
                } else {
                    pack_slot(STATE_FREE, 0, 0)
                };
                // Release: the purge's rewrites happen before the slot can be reused.
                // Relaxed on failure: the word is someone else's now (see above).
                if word
                    .compare_exchange(seen, next, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    // Relaxed: a hint, as above (decremented after the slot is free, so
                    // it never drops below the number still retired).
                    let _ = retired
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                    swept.returned += 1;
                    if taking {
                        self.record_attach(slot);
                        swept.taken = Some(OwnerId::new(slot, OwnerId::next_generation(0)));
                        keep_slot_lock = true;
                    }
                }
            }
            if !keep_slot_lock {
                unlock_byte(self.file, slot_lock);
            }
            // The slot's word is final (a taken slot's generation is out): `is_alive` may
            // judge this slot again.
            unlock_byte(self.file, claim);
            outcome?;
        }
        Ok(())
    }

    /// Whether `slot`'s word names a holder whose process still runs (or may: another
    /// process with its pid, or one this process cannot see). A slot with no holder, or
    /// one whose process is gone, says no; its locks say for sure.
    pub(crate) fn holder_may_run(&self, slot: u32) -> Result<bool> {
        // Acquire: the slot word as its last holder published it.
        let word = self.slot_word(slot, 0)?.load(Ordering::Acquire);
        Ok(word & 0xff == STATE_ACTIVE && crate::gc::pid_running((word >> 32) as u32))
    }

    /// Runs `f` holding `slot`'s claim and slot locks, if both are free now: the slot's
    /// holder died or detached, and no attach or sweep is under way on it. Meanwhile no
    /// process attaches to the slot, and a liveness check of its last holder waits (as for
    /// an attach): keep `f` short. What `f` returned, if it ran.
    ///
    /// The caller holds its handle's sweep claim (see [`Self::sweep`]), and looks first
    /// ([`Self::holder_may_run`]): trying the locks of a live holder's slot makes its
    /// liveness checks wait.
    pub(crate) fn while_vacant<R>(&self, slot: u32, f: impl FnOnce() -> R) -> Result<Option<R>> {
        let claim = CLAIM_BASE + i64::from(slot);
        if !try_lock_byte(self.file, claim)? {
            return Ok(None); // an attach or a sweep has it
        }
        let slot_lock = LOCK_BASE + i64::from(slot);
        let ran = match try_lock_byte(self.file, slot_lock) {
            Ok(true) => {
                let ran = f();
                unlock_byte(self.file, slot_lock);
                Ok(Some(ran))
            }
            Ok(false) => Ok(None), // a live holder
            Err(error) => Err(error),
        };
        unlock_byte(self.file, claim);
        ran
    }

    /// Marks our slot free and drops its lock.
    pub(crate) fn detach(&self, me: OwnerId) {
        if let Ok(word) = self.slot_word(me.slot(), 0) {
            // Release: orders our last writes to shared state before the slot looks free.
            word.store(pack_slot(STATE_FREE, me.generation(), 0), Ordering::Release);
        }
        unlock_byte(self.file, LOCK_BASE + i64::from(me.slot()));
    }

    /// Whether `owner` may still be alive, from its slot word alone (see
    /// [`Liveness::may_be_alive`](crate::Liveness::may_be_alive)).
    pub(crate) fn may_be_alive(&self, me: OwnerId, owner: OwnerId) -> bool {
        match self.owner_word(me, owner) {
            // Acquire: as in `is_alive`.
            Ok(word) => active_generation(word.load(Ordering::Acquire)) == Some(owner.generation()),
            Err(answer) => answer,
        }
    }

    /// The slot word of `owner`'s participant slot, or the liveness answer that needs no
    /// look at it: alive for `me` and for an orphan (whose death cannot be seen: it holds no
    /// slot, so its locks are never taken from it while it may still hold them), dead for
    /// a slot outside the table.
    fn owner_word(&self, me: OwnerId, owner: OwnerId) -> Result<&crate::sync::AtomicU64, bool> {
        if owner == me || owner == OwnerId::ORPHAN {
            return Err(true);
        }
        if u64::from(owner.slot()) >= self.fields.participant_capacity {
            return Err(false);
        }
        self.slot_word(owner.slot(), 0).map_err(|_| false)
    }

    /// Whether `owner` is attached and alive. `me` is answered without a system call.
    pub(crate) fn is_alive(&self, me: OwnerId, owner: OwnerId) -> bool {
        let word = match self.owner_word(me, owner) {
            Ok(word) => word,
            Err(answer) => return answer,
        };
        let slot_lock = LOCK_BASE + i64::from(owner.slot());
        let claim = CLAIM_BASE + i64::from(owner.slot());
        // While a newcomer holds the claim lock, who holds the slot lock is unknown: look
        // again shortly (an attach takes microseconds; a newcomer that dies there drops the
        // claim lock with its others).
        for _ in 0..100 {
            // Acquire: pairs with the Release store in attach.
            let before = word.load(Ordering::Acquire);
            if active_generation(before) != Some(owner.generation()) {
                return false;
            }
            if !byte_is_locked(self.file, slot_lock) {
                return false;
            }
            if byte_is_locked(self.file, claim) {
                std::thread::sleep(std::time::Duration::from_micros(50));
                continue;
            }
            // The same generation after the claim lock was seen free: the slot lock's
            // holder is `owner`, since a newcomer publishes its generation before it lets
            // go of the claim lock.
            // Acquire: as above.
            return word.load(Ordering::Acquire) == before;
        }
        true // an attach that never ends: the conservative answer
    }

    /// Every slot that has ever been used.
    pub(crate) fn list(&self, me: OwnerId) -> Result<Vec<ParticipantInfo>> {
        let mut rows = Vec::new();
        for slot in 0..self.fields.participant_capacity as u32 {
            // Acquire: as in is_alive.
            let word = self.slot_word(slot, 0)?.load(Ordering::Acquire);
            let generation = slot_generation(word);
            if generation == 0 {
                continue; // never used
            }
            let alive = slot == me.slot() || byte_is_locked(self.file, LOCK_BASE + i64::from(slot));
            rows.push(ParticipantInfo {
                slot,
                generation,
                pid: (word >> 32) as u32,
                active: word & 0xff == STATE_ACTIVE,
                alive,
                // Relaxed: informational.
                start_time: self.slot_word(slot, 8)?.load(Ordering::Relaxed),
                // Both parities' counts, on the slot's word and stripes.
                pins: self.grace().pins(slot)?,
                retired: crate::retire_log::RetireLog::waiting(
                    &crate::arena::Arena::new(
                        self.mem,
                        self.fields.arena_offset,
                        self.fields.arena_end,
                    )?,
                    self.mem,
                    self.slot_word(slot, crate::retire_log::LOG_WORD)?,
                ),
            });
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::{process_start_time, read_process_start_time};

    #[test]
    fn start_time_is_read_once_per_process_and_again_in_a_fork_child() {
        let ours = process_start_time();
        assert_ne!(ours, 0, "/proc/self/stat gave no start time");
        assert_eq!(process_start_time(), ours);
        assert_eq!(read_process_start_time(), ours);
        // A child started a few clock ticks after us must record its own start time.
        std::thread::sleep(std::time::Duration::from_millis(50));
        // SAFETY: the child only reads procfs, compares and calls `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let child = process_start_time();
            let ok = child != ours && child == read_process_start_time();
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(i32::from(!ok)) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &raw mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status}"
        );
    }
}
