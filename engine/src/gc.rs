//! Removing the default regions of programs that were killed, without a broker.
//!
//! The Python package gives each program a *default region*, `shmarena-py-<pid>-<hex>` in
//! `/dev/shm`, and its creating process unlinks it at exit. A program whose main process is
//! SIGKILLed (or OOM-killed) never gets there: the file stays, up to 1 GiB sparse with its
//! touched pages still in memory, and repeated crashes fill `/dev/shm`. [`collect`] finds
//! such leftovers in a directory and unlinks them; the Python package runs it each time a
//! program creates its default region, and `shmarena gc` runs it on demand.
//!
//! # What is removed
//! Only a regular file of our own (owner = our effective uid) whose name has the default
//! region's pattern ([`is_default_region_name`]) and whose header carries the
//! [`collectable`](crate::RegionOptions::collectable) mark that only a default region's
//! creator writes, and only when all of these hold, judged through a descriptor of our own
//! that never attaches:
//!
//! 1. nobody holds the region's open lock ([`OPEN_LOCK`]): we take it exclusive, which
//!    fails while any process has the region open (every process holds it shared, from
//!    before it attaches until it closes the region; a forked child takes it on its own
//!    description before it lets go of the inherited one). The lock lives on a
//!    descriptor: a forked child that closes all its descriptors but keeps the inherited
//!    mapping no longer holds it (nor its slot lock, check 4), so once the program's other
//!    processes are gone its region may be removed under it (its mapping stays usable;
//!    only the name goes);
//! 2. it is a READY region of this layout with a valid header, and nobody holds its
//!    initialization lock;
//! 3. no attach is under way: we take every slot's claim lock exclusive (one lock over the
//!    whole range), which an attach holds from before it takes its slot until it has
//!    published it;
//! 4. no participant slot lock is held (one `F_OFD_GETLK` over the whole range): the
//!    kernel drops a process's slot lock when it dies, however it dies;
//! 5. the creator is dead: neither the header's creator pid nor the pid in the name is a
//!    running process (a pid now used by a process that started later than the one
//!    recorded in a participant slot with that pid counts as dead). Pids are read in our
//!    pid namespace: a creator in another namespace sharing the directory (a container
//!    sharing `/dev/shm`) reads as gone, or as an unrelated process of ours. Checks 1 and
//!    4 still protect any region a process has open, wherever it runs; what this check
//!    adds is lost across namespaces;
//! 6. the name still leads to the file we judged (no rename put another file there).
//!
//! Locks 1 and 3 are kept until after the unlink. Anything else matching the pattern (a
//! symbolic link, another user's file, a file without the magic number, a truncated or
//! corrupt header, a region of another layout version) is kept with a reason: [`collect`]
//! reads headers with `pread` (nothing is mapped, so a truncated file cannot raise
//! SIGBUS), bounds every length it reads by the file's size, and loops only over the
//! validated participant table.
//!
//! Stale staging files (`.shmarena-py-<pid>-<hex>.creating-<pid>-<ns>`, left by a
//! creator that died between creating its staging file and linking it into place) are
//! removed when they are at least 60 s old (by `fstat` on our descriptor: the earlier of
//! their change and modification times), nobody holds their open or initialization lock,
//! and the creating pid of the name is not running. A creator takes the open lock right
//! after its `O_EXCL` open, before anything else; the age rule covers the moment between,
//! whatever the pids say (a creator in another pid namespace reads as not running), so a
//! collector never takes a staging file a creator is about to lock.
//!
//! # When protection starts
//! A region is protected from the moment a process opens it (takes the open lock), not
//! from the moment a process is started to use it. A child of a killed program that has
//! not opened the region yet, say a spawn or forkserver child still starting up, holds
//! nothing: if another program sweeps before it opens the region and no other process
//! of the program has it open, the region goes, and the child's open fails with
//! [`Error::RegionNotFound`] (in Python, `shmarena.Error`, "does not exist").
//!
//! # The check/unlink race
//! A process that opens the region just as a collector judges it must not end up attached
//! to a region whose name is gone. Openers and creators follow this order (see
//! `Region::open_with` and `Region::create_with`):
//!
//! - an opener opens the file, takes the open lock *shared* (waiting while a collector
//!   holds it exclusive), then checks that the name still leads to the file it opened,
//!   then attaches, and keeps the lock until it closes the region (or the descriptor:
//!   see check 1);
//! - a creator takes the open lock shared on its staging file right after its `O_EXCL`
//!   open (before anything else, so before it links it under the name), and keeps it;
//! - a collector takes the open lock *exclusive* before it looks at anything and keeps it
//!   until after its unlink.
//!
//! The shared and the exclusive lock exclude each other (OFD locks between distinct open
//! file descriptions). Ours is opened with `O_CLOEXEC` and never handed to an attached
//! process, but a process that forks while a sweep runs in another of its threads (a
//! Rust program; the Python package sweeps holding the GIL, so no Python-level fork
//! happens during its sweep) gives the child a reference to our description, and with it
//! the exclusive open lock and the claim-lock range: a region we removed keeps its memory
//! and a region we kept refuses every opener (which gives up with [`Error::Contended`]
//! after its init timeout) until the child exits or execs. So either
//! the opener's lock came first: the collector cannot get the exclusive lock while the
//! opener has the region open, and keeps the region; or the collector's came first: its
//! unlink happened before the opener held the lock, the opener's check then sees the name
//! gone (or leading to another file) and it opens the name again, getting
//! `RegionNotFound` (or the new file), never a handle on the removed region. A creator's
//! region is never seen under its name without the lock held. A forked child's fresh
//! description takes the lock while the inherited one still holds it, so there is no gap
//! either. The exclusive lock is held for a few system calls only, so an opener's wait is
//! short; an opener gives up with [`Error::Contended`] after its init timeout if a
//! collector were stopped in between.
//!
//! Checks 3 to 5 cover some processes of builds older than the open lock: their live
//! participants hold slot locks, an attach holds a claim lock (which we hold exclusive
//! across the unlink, so none can start), and a creator between its link and its attach is
//! alive. What they do not cover is an old build's opener between its `open` and its
//! attach, an old build's process waiting for a free participant slot (it holds no claim
//! or slot lock while it waits), an old build's forked child between dropping its
//! parent's description and attaching, and an old build's child acting as
//! [`ORPHAN`](crate::liveness::OwnerId::ORPHAN) (it holds no slot lock): run one build
//! per program.
//!
//! One window no file system call closes: `unlink(2)` takes a name, not a descriptor, so a
//! process of our own uid that renamed another file onto the name between our last check
//! and the unlink would lose that file. Nothing in shmarena renames onto a name (regions
//! appear by `link(2)`, which never replaces one), and default names carry a random part.

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::layout::{
    header, HeaderFields, HEADER_SIZE, LAYOUT_VERSION, MAGIC, PARTICIPANT_SLOT_SIZE,
};
use crate::participants::{
    first_locked_in, try_lock_range, CLAIM_BASE, INIT_LOCK, LOCK_BASE, OPEN_LOCK,
};

/// How every default region's name starts.
pub const DEFAULT_REGION_PREFIX: &str = "shmarena-py-";

/// The environment variable naming the directory of new default regions (the Python
/// package's, and where `shmarena gc` looks by default).
pub const REGION_DIR_ENV: &str = "SHMARENA_REGION_DIR";

/// Where default regions live: `$SHMARENA_REGION_DIR` if set, else `/dev/shm` if it is a
/// directory, else the temporary directory (as the Python package chooses).
pub fn default_region_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(REGION_DIR_ENV).filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Whether `name` is a default region's name, `shmarena-py-<pid>-<hex>`: a decimal pid
/// (1 to 10 digits) and 8 lowercase hexadecimal digits. The pid, if so.
pub fn is_default_region_name(name: &[u8]) -> Option<u32> {
    let rest = name.strip_prefix(DEFAULT_REGION_PREFIX.as_bytes())?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let (pid, hex) = (&rest[..dash], &rest[dash + 1..]);
    let hex_ok = hex.len() == 8 && hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex_ok.then(|| parse_pid(pid)).flatten()
}

/// The creating pid of a default region's staging file,
/// `.shmarena-py-<pid>-<hex>.creating-<pid>-<ns>` (see `Region::create_with`).
pub fn is_default_staging_name(name: &[u8]) -> Option<u32> {
    let rest = name.strip_prefix(b".")?;
    let at = rest.windows(10).position(|w| w == b".creating-")?;
    is_default_region_name(&rest[..at])?;
    let tail = &rest[at + 10..];
    let dash = tail.iter().position(|&b| b == b'-')?;
    let (pid, ns) = (&tail[..dash], &tail[dash + 1..]);
    let ns_ok = (1..=20).contains(&ns.len()) && ns.iter().all(u8::is_ascii_digit);
    ns_ok.then(|| parse_pid(pid)).flatten()
}

fn parse_pid(digits: &[u8]) -> Option<u32> {
    if !(1..=10).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// What [`collect`] did with one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Unlinked.
    Removed,
    /// Would have been unlinked (a dry run).
    WouldRemove,
    /// Left in place.
    Kept,
}

/// One file [`collect`] looked at, what it did and why.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The file.
    pub path: PathBuf,
    /// Whether it is a staging file (else a region).
    pub staging: bool,
    /// What was done.
    pub action: Action,
    /// Why, in words.
    pub reason: String,
}

/// Looks at every default region and default staging file in `dir` (only names of those
/// patterns; nothing else is opened) and unlinks those no live process uses (see the
/// module docs), or with `dry_run` only says which it would unlink. Never fails because
/// of a file's contents: such a file is kept with a reason.
///
/// # Errors
/// [`Error::Io`] when `dir` cannot be listed.
pub fn collect(dir: &Path, dry_run: bool) -> Result<Vec<Verdict>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    let mut verdicts = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let region_pid = is_default_region_name(name.as_bytes());
        let staging_pid = is_default_staging_name(name.as_bytes());
        if region_pid.is_none() && staging_pid.is_none() {
            continue;
        }
        let path = dir.join(&name);
        let judged = match (region_pid, staging_pid) {
            (Some(pid), _) => judge_region(&path, pid, dry_run),
            (None, Some(pid)) => judge_staging(&path, pid, dry_run),
            (None, None) => continue,
        };
        let (action, reason) = match judged {
            Judged::Gone => continue, // another collector (or its program) removed it
            Judged::Keep(reason) => (Action::Kept, reason),
            Judged::Remove(reason) => (
                if dry_run {
                    Action::WouldRemove
                } else {
                    Action::Removed
                },
                reason,
            ),
        };
        verdicts.push(Verdict {
            path,
            staging: staging_pid.is_some() && region_pid.is_none(),
            action,
            reason,
        });
    }
    verdicts.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(verdicts)
}

/// [`collect`] in [`default_region_dir`].
///
/// # Errors
/// As [`collect`].
pub fn collect_default(dry_run: bool) -> Result<Vec<Verdict>> {
    collect(&default_region_dir(), dry_run)
}

enum Judged {
    /// The name vanished before we could look.
    Gone,
    Keep(String),
    /// Unlinked (or, in a dry run, would be), for this reason.
    Remove(String),
}

/// Opens `path` for reading and writing if it is a regular file of ours that no other
/// user can write, without following a symbolic link and without opening anything else
/// for reading or writing (as `Region::open` does: `O_PATH`, `fstat`, then a reopen of
/// that very file through `/proc/self/fd`).
fn open_own_file(path: &Path) -> std::result::Result<File, Judged> {
    // O_CLOEXEC on both (std adds it anyway): a process another thread starts meanwhile
    // must not keep our description, and with it our locks, past its exec.
    let probe = match File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(probe) => probe,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(Judged::Gone),
        Err(e) => return Err(Judged::Keep(format!("cannot open it: {e}"))),
    };
    let metadata = probe
        .metadata()
        .map_err(|e| Judged::Keep(format!("cannot fstat it: {e}")))?;
    if metadata.file_type().is_symlink() {
        return Err(Judged::Keep(
            "a symbolic link (only regular files are collected)".to_owned(),
        ));
    }
    if !metadata.file_type().is_file() {
        return Err(Judged::Keep("not a regular file".to_owned()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if metadata.uid() != euid {
        return Err(Judged::Keep(format!(
            "owned by uid {}, not by this user (uid {euid})",
            metadata.uid()
        )));
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(Judged::Keep(format!(
            "mode {:04o}: its group or others may write it, which default regions never allow",
            metadata.mode() & 0o7777
        )));
    }
    let file = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", probe.as_raw_fd()))
        .map_err(|e| Judged::Keep(format!("cannot open it for reading and writing: {e}")))?;
    let reopened = file
        .metadata()
        .map_err(|e| Judged::Keep(format!("cannot fstat it: {e}")))?;
    if (reopened.dev(), reopened.ino()) != (metadata.dev(), metadata.ino()) {
        return Err(Judged::Keep("changed while it was opened".to_owned()));
    }
    Ok(file)
}

/// Takes `file`'s open lock exclusive, kept until `file` is closed.
fn lock_open_exclusive(file: &File, what: &str) -> std::result::Result<(), Judged> {
    match try_lock_range(file, libc::F_WRLCK, OPEN_LOCK, 1) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Judged::Keep(format!(
            "a live process has it open ({what}), or another collector is deciding about it"
        ))),
        Err(e) => Err(Judged::Keep(format!("cannot lock it: {e}"))),
    }
}

/// Unlinks `path` if it still leads to `file` (and `!dry_run`).
fn unlink_if_same(path: &Path, file: &File, dry_run: bool, reason: String) -> Judged {
    let (Ok(ours), Ok(named)) = (file.metadata(), std::fs::symlink_metadata(path)) else {
        return Judged::Gone;
    };
    if (ours.dev(), ours.ino()) != (named.dev(), named.ino()) {
        return Judged::Keep("the name now leads to another file".to_owned());
    }
    if dry_run {
        return Judged::Remove(reason);
    }
    match std::fs::remove_file(path) {
        Ok(()) => Judged::Remove(reason),
        Err(e) if e.kind() == ErrorKind::NotFound => Judged::Gone,
        Err(e) => Judged::Keep(format!("unlinking failed: {e}")),
    }
}

/// How long a staging file is left alone whatever its pids say (see the module docs).
const STAGING_GRACE: Duration = Duration::from_secs(60);

/// How long ago `file` was made, by `fstat` on the descriptor: the time since the earlier
/// of its change and modification times (setting the modification time back, as tests
/// do, moves the change time to now). `None` if that lies in the future (a clock set
/// back) or cannot be read: taken as young.
fn age(file: &File) -> Option<Duration> {
    let metadata = file.metadata().ok()?;
    let mtime = (metadata.mtime(), metadata.mtime_nsec());
    let ctime = (metadata.ctime(), metadata.ctime_nsec());
    let (secs, nanos) = mtime.min(ctime);
    let made = UNIX_EPOCH.checked_add(Duration::new(
        u64::try_from(secs).ok()?,
        u32::try_from(nanos).ok()?,
    ))?;
    SystemTime::now().duration_since(made).ok()
}

fn judge_staging(path: &Path, creating_pid: u32, dry_run: bool) -> Judged {
    let file = match open_own_file(path) {
        Ok(file) => file,
        Err(judged) => return judged,
    };
    // Young: its creator may be between its O_EXCL open and its open lock, or run in
    // another pid namespace (where its pid reads as not running). Judged before we lock,
    // so a creator never waits on us.
    match age(&file) {
        Some(age) if age >= STAGING_GRACE => {}
        _ => {
            return Judged::Keep(format!(
                "made less than {} s ago: its creator may still be building it",
                STAGING_GRACE.as_secs()
            ))
        }
    }
    if let Err(judged) = lock_open_exclusive(&file, "its creator is building it") {
        return judged;
    }
    if first_locked_in(&file, INIT_LOCK, 1).is_some() {
        return Judged::Keep("being initialized by a live process".to_owned());
    }
    if pid_running(creating_pid) {
        return Judged::Keep(format!(
            "its creating process (pid {creating_pid}) is running"
        ));
    }
    unlink_if_same(
        path,
        &file,
        dry_run,
        format!(
            "a staging file left by a creator that died (pid {creating_pid}) before linking it"
        ),
    )
}

fn judge_region(path: &Path, name_pid: u32, dry_run: bool) -> Judged {
    let file = match open_own_file(path) {
        Ok(file) => file,
        Err(judged) => return judged,
    };
    // 1. Nobody has it open (see the module docs); held until the file is closed.
    if let Err(judged) = lock_open_exclusive(&file, "attached or attaching") {
        return judged;
    }
    // 2. A READY region of this layout, marked collectable.
    let fields = match read_header(&file) {
        Ok(fields) => fields,
        Err(reason) => return Judged::Keep(reason),
    };
    // 3. No attach under way, nor one starting until we are done.
    let capacity = fields.participant_capacity as i64; // validated: at most 4095
    match try_lock_range(&file, libc::F_WRLCK, CLAIM_BASE, capacity) {
        Ok(true) => {}
        Ok(false) => return Judged::Keep("a process is attaching to it".to_owned()),
        Err(e) => return Judged::Keep(format!("cannot lock its claim locks: {e}")),
    }
    // 4. No live participant.
    let slots = match read_slots(&file, &fields) {
        Ok(slots) => slots,
        Err(reason) => return Judged::Keep(reason),
    };
    if let Some(byte) = first_locked_in(&file, LOCK_BASE, capacity) {
        let slot = (byte - LOCK_BASE) as usize;
        let pid = slots.get(slot).map_or(0, |s| s.pid);
        return Judged::Keep(format!(
            "participant slot {slot} is held by a live process (pid {pid})"
        ));
    }
    // 5. The creator is dead.
    let creator = match read_word(&file, header::CREATOR_PID) {
        Ok(pid) => u32::try_from(pid).unwrap_or(0),
        Err(reason) => return Judged::Keep(reason),
    };
    for pid in [creator, name_pid] {
        if pid != 0 && pid_running(pid) && !pid_reused(pid, &slots) {
            return Judged::Keep(format!("its creator (pid {pid}) is running"));
        }
    }
    let used = slots.iter().filter(|s| s.generation != 0).count();
    // 6. The name still leads to what we judged.
    unlink_if_same(
        path,
        &file,
        dry_run,
        format!(
            "no live process has it open: its creator (pid {creator}) and all {used} \
             participant(s) it ever had are dead"
        ),
    )
}

/// Reads `len` bytes at `offset` with `pread` (no mapping: a file cut short meanwhile
/// gives a short read, never SIGBUS).
fn read_at(file: &File, offset: u64, len: usize) -> std::result::Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, offset)
        .map_err(|e| format!("cannot read {len} bytes at {offset}: {e}"))?;
    Ok(bytes)
}

fn read_word(file: &File, offset: u64) -> std::result::Result<u64, String> {
    let bytes = read_at(file, offset, 8)?;
    Ok(u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])))
}

/// The validated header of a READY, collectable region of this layout, or why not.
fn read_header(file: &File) -> std::result::Result<HeaderFields, String> {
    let file_len = file
        .metadata()
        .map_err(|e| format!("cannot fstat it: {e}"))?
        .len();
    if file_len < HEADER_SIZE {
        return Err(format!(
            "not a shmarena region: {file_len} bytes, shorter than a header"
        ));
    }
    let bytes = read_at(file, 0, HEADER_SIZE as usize)?;
    let word = |offset: u64| {
        let at = offset as usize;
        bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    if word(0) != MAGIC {
        return Err("not a shmarena region: no magic number".to_owned());
    }
    match word(header::STATE) {
        header::STATE_READY => {}
        header::STATE_ZERO | header::STATE_INITIALIZING => {
            if first_locked_in(file, INIT_LOCK, 1).is_some() {
                return Err("being initialized by a live process".to_owned());
            }
            return Err("not initialized, and nobody is initializing it".to_owned());
        }
        other => return Err(format!("corrupt: unknown state {other}")),
    }
    let mut words = [0u64; crate::layout::HEADER_FIELD_WORDS];
    for (i, value) in words.iter_mut().enumerate() {
        *value = word(8 * i as u64);
    }
    let fields: HeaderFields = bytemuck::cast(words);
    if fields.layout_version != LAYOUT_VERSION {
        return Err(format!(
            "layout version {}, not this build's {LAYOUT_VERSION}",
            fields.layout_version
        ));
    }
    fields
        .validate(file_len)
        .map_err(|e| format!("corrupt header: {e}"))?;
    if word(header::FLAGS) & header::FLAG_COLLECTABLE == 0 {
        return Err(
            "not marked as a program's default region (created by hand, or by a build \
             before the mark)"
                .to_owned(),
        );
    }
    Ok(fields)
}

/// What a participant slot records (see `crate::participants`).
struct SlotRecord {
    pid: u32,
    generation: u32,
    start_time: u64,
}

fn read_slots(file: &File, fields: &HeaderFields) -> std::result::Result<Vec<SlotRecord>, String> {
    // Validated: the table lies inside the file and has at most 4095 slots of 64 bytes.
    let len = fields.participant_capacity * PARTICIPANT_SLOT_SIZE;
    let bytes = read_at(file, fields.participants_offset, len as usize)?;
    Ok(bytes
        .chunks_exact(PARTICIPANT_SLOT_SIZE as usize)
        .map(|slot| {
            let word = |i: usize| {
                slot.get(8 * i..8 * i + 8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_le_bytes)
            };
            SlotRecord {
                pid: (word(0) >> 32) as u32,
                generation: crate::layout::slot_word::slot_generation(word(0)),
                start_time: word(1),
            }
        })
        .collect())
}

/// Whether a process `pid` exists (alive or a zombie: still not reaped, so its pid is not
/// reused). Pids beyond `i32::MAX` exist nowhere; 0 would mean our process group.
pub(crate) fn pid_running(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    // EPERM: it exists (another user's). Anything else but ESRCH: say it exists.
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether the running process `pid` is provably not the one a participant slot recorded
/// with that pid: its start time (from procfs) differs from the recorded one.
fn pid_reused(pid: u32, slots: &[SlotRecord]) -> bool {
    let Some(now) = start_time_of(pid) else {
        return false;
    };
    slots
        .iter()
        .any(|slot| slot.pid == pid && slot.start_time != 0 && slot.start_time != now)
        && !slots
            .iter()
            .any(|slot| slot.pid == pid && slot.start_time == now)
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot).
fn start_time_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    rest.split_whitespace().nth(19)?.parse().ok()
}
