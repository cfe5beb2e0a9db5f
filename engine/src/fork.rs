//! Regions across `fork(2)`: a child gets its own identity.
//!
//! A forked child inherits the parent's mapping, its region file descriptors and the
//! handles that name the parent's participant slot. Left alone, the child would act as
//! the parent (its lock words would name the parent; a Python `multiprocessing` child
//! started by fork is exactly this case), and because the child's inherited descriptor
//! shares the parent's open file description, the parent's liveness lock would outlive
//! the parent for as long as the child lives.
//!
//! So an `atfork` child handler (installed when the first region opens) does two things,
//! both async-signal-safe:
//! - it bumps [`generation`]; a region handle compares it with the generation it attached
//!   in and, on its next use in the child, attaches as a new participant;
//! - for every registered region descriptor that still is the region file (checked with
//!   `fstat` against the device and inode recorded at registration: a descriptor closed
//!   behind our back and reused for another file is left alone) it opens
//!   `/proc/self/fd/<fd>` (a *new* open file description of the same file, holding no
//!   locks) and `dup3`s it over the inherited descriptor, dropping the child's reference
//!   to the parent's description. The parent's locks then die with the parent. Before
//!   the `dup3` the fresh description takes the region's shared open lock
//!   ([`OPEN_LOCK`](crate::participants::OPEN_LOCK)), which keeps the collector of
//!   killed programs' regions ([`crate::gc`]) away; the inherited description holds it
//!   until then, so the child is never without it.
//!
//! A child never attaches through a description it shares with its parent (the parent's
//! locks would look free to it): when no fresh description (or no free slot) can be had,
//! it acts under [`OwnerId::ORPHAN`](crate::liveness::OwnerId::ORPHAN), which every
//! process takes for alive. Nor does it sweep retired participant slots through such a
//! description: its sweep could run beside its parent's on the same slot.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Once;

/// Bumped in every forked child.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// A registered region descriptor and the file it was opened on.
struct Registered {
    /// -1: free; -2: being filled in; else the descriptor.
    fd: AtomicI32,
    dev: AtomicU64,
    ino: AtomicU64,
}

const FREE: i32 = -1;
const FILLING: i32 = -2;

/// A fixed table: the child handler may not allocate or lock.
const MAX_REGISTERED: usize = 256;
static REGISTERED: [Registered; MAX_REGISTERED] = [const {
    Registered {
        fd: AtomicI32::new(FREE),
        dev: AtomicU64::new(0),
        ino: AtomicU64::new(0),
    }
}; MAX_REGISTERED];

static INSTALL: Once = Once::new();

/// The process's fork generation: 0 in a process that did not come from a fork since
/// the first region opened, then one more per fork along the way. Inlined: lock guards
/// compare it on every release (see `shmarena::mutex`).
#[inline]
pub fn generation() -> u64 {
    // Relaxed: only this process's handler writes it, before any of the child's threads
    // exist; a thread of the child reads a value written before it started.
    GENERATION.load(Ordering::Relaxed)
}

/// Installs the child handler (once per process).
fn install() {
    INSTALL.call_once(|| {
        // SAFETY: `on_fork_child` is an `extern "C" fn()` that only calls async-signal-safe
        // functions; registering it has no other precondition.
        let _ = unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) };
    });
}

/// The device and inode `fd` refers to, by `fstat` (async-signal-safe).
fn identity(fd: i32) -> Option<(u64, u64)> {
    // SAFETY: `stat` is a plain C struct for which all-zero is valid; fstat only writes it.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on any descriptor number is defined (EBADF for a closed one).
    if unsafe { libc::fstat(fd, &raw mut stat) } != 0 {
        return None;
    }
    Some((stat.st_dev, stat.st_ino))
}

/// Registers a region descriptor for the child handler; whether it found room. Call
/// before attaching, so that no fork can come between the attach and the registration.
pub(crate) fn register(fd: i32) -> bool {
    install();
    let Some((dev, ino)) = identity(fd) else {
        return false;
    };
    REGISTERED.iter().any(|entry| {
        // Acquire: the entry is ours from here; the Release below publishes dev and ino
        // with the descriptor.
        if entry
            .fd
            .compare_exchange(FREE, FILLING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // Relaxed: published by the Release store of the descriptor.
        entry.dev.store(dev, Ordering::Relaxed);
        entry.ino.store(ino, Ordering::Relaxed);
        entry.fd.store(fd, Ordering::Release);
        true
    })
}

/// Forgets a descriptor about to be closed.
pub(crate) fn unregister(fd: i32) {
    for entry in &REGISTERED {
        // AcqRel/Relaxed: frees only our own entry.
        if entry
            .fd
            .compare_exchange(fd, FREE, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// Points `fd` at a fresh open file description of the same file, by reopening
/// `/proc/self/fd/<fd>` (see the module docs); whether it did. Async-signal-safe: no
/// allocation, no lock.
pub(crate) fn refresh(fd: i32) -> bool {
    // "/proc/self/fd/" and up to 10 digits, NUL-terminated, built on the stack.
    const PREFIX: &[u8] = b"/proc/self/fd/";
    if fd < 0 {
        return false;
    }
    let mut path = [0u8; 32];
    path[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut count = 0;
    let mut rest = fd as u32;
    loop {
        digits[count] = b'0' + (rest % 10) as u8;
        count += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for i in 0..count {
        path[PREFIX.len() + i] = digits[count - 1 - i];
    }
    // SAFETY: `path` is NUL-terminated (zeroed past the digits).
    let fresh = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC) };
    replace(fd, fresh)
}

/// Points `fd` at a fresh open file description of `path`, if `path` still names the
/// file `fd` refers to; whether it did. For a child whose `/proc` reopen failed.
pub(crate) fn refresh_from_path(fd: i32, path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path; open has no other precondition.
    let fresh = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fresh >= 0 && identity(fresh) != identity(fd) {
        // SAFETY: closes the descriptor we just opened.
        unsafe { libc::close(fresh) };
        return false;
    }
    replace(fd, fresh)
}

/// `dup3`s `fresh` (a new descriptor, or negative for a failed open) over `fd` and closes
/// it; whether `fd` now refers to `fresh`'s description. Async-signal-safe.
///
/// First `fresh` takes the region's shared open lock
/// ([`OPEN_LOCK`](crate::participants::OPEN_LOCK)), so that this process keeps a collector
/// away from the region without a gap: the inherited description holds the open lock (and
/// any slot lock of the parent) until the `dup3` drops our reference to it, and `fresh`
/// holds it from before that. A collector cannot hold the lock exclusive while the
/// inherited description holds it shared (every registered description took it before it
/// was registered), so this succeeds at once. It fails only when `fcntl` itself fails, or
/// when the descriptor was swapped behind the engine's back for another description of
/// the same file, one holding no open lock (a collector may then hold it exclusive): then
/// `fd` keeps the inherited description, as when no fresh one can be had.
fn replace(fd: i32, fresh: i32) -> bool {
    if fresh < 0 {
        return false;
    }
    let mut locked = false;
    for _ in 0..OPEN_LOCK_ATTEMPTS {
        match crate::participants::try_lock_fd(
            fresh,
            libc::F_RDLCK,
            crate::participants::OPEN_LOCK,
            1,
        ) {
            Ok(true) => {
                locked = true;
                break;
            }
            Ok(false) => {
                let pause = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 1_000_000,
                };
                // SAFETY: nanosleep is async-signal-safe; `pause` outlives the call and a
                // null remainder is allowed.
                unsafe { libc::nanosleep(&raw const pause, std::ptr::null_mut()) };
            }
            Err(_) => break,
        }
    }
    // SAFETY: dup3 and close only touch descriptors; `fresh` is ours to close.
    unsafe {
        let moved = locked && libc::dup3(fresh, fd, libc::O_CLOEXEC) == fd;
        libc::close(fresh);
        moved
    }
}

/// Tries (1 ms apart) at the shared open lock before a child keeps its inherited
/// description.
const OPEN_LOCK_ATTEMPTS: u32 = 100;

extern "C" fn on_fork_child() {
    // Relaxed: see `generation`.
    GENERATION.fetch_add(1, Ordering::Relaxed);
    for entry in &REGISTERED {
        // Acquire: pairs with the Release in `register` (dev and ino are filled in).
        let fd = entry.fd.load(Ordering::Acquire);
        if fd < 0 {
            continue;
        }
        // Relaxed: published with the descriptor.
        let recorded = (
            entry.dev.load(Ordering::Relaxed),
            entry.ino.load(Ordering::Relaxed),
        );
        // A descriptor closed behind our back and reused for another file is not ours.
        if identity(fd) == Some(recorded) {
            refresh(fd);
        }
    }
}
