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
//! - for every registered region descriptor it opens `/proc/self/fd/<fd>` (a *new* open
//!   file description of the same file, holding no locks) and `dup3`s it over the
//!   inherited descriptor, dropping the child's reference to the parent's description.
//!   The parent's locks then die with the parent, as they should.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Once;

/// Bumped in every forked child.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Descriptors of open regions (-1: free entry). A fixed table: the child handler may
/// not allocate or lock.
const MAX_REGISTERED: usize = 256;
static REGISTERED: [AtomicI32; MAX_REGISTERED] = [const { AtomicI32::new(-1) }; MAX_REGISTERED];

static INSTALL: Once = Once::new();

/// The process's fork generation: 0 in a process that did not come from a fork since
/// the first region opened, then one more per fork along the way.
pub fn generation() -> u64 {
    // Acquire: pairs with the child handler's bump (same thread in practice; the child
    // starts single-threaded).
    GENERATION.load(Ordering::Acquire)
}

/// Installs the child handler (once per process).
fn install() {
    INSTALL.call_once(|| {
        // SAFETY: `on_fork_child` is an `extern "C" fn()` that only calls async-signal-safe
        // functions; registering it has no other precondition.
        let _ = unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) };
    });
}

/// Registers a region descriptor for the child handler; whether it found room (without
/// room the child still gets its own participant, but keeps sharing the parent's open
/// file description until it closes the region).
pub(crate) fn register(fd: i32) -> bool {
    install();
    REGISTERED.iter().any(|entry| {
        // AcqRel/Acquire: an entry is claimed by exactly one registrant.
        entry
            .compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    })
}

/// Forgets a descriptor about to be closed.
pub(crate) fn unregister(fd: i32) {
    for entry in &REGISTERED {
        // AcqRel/Acquire: frees only our own entry.
        if entry
            .compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return;
        }
    }
}

/// Points `fd` at a fresh open file description of the same file (see the module docs);
/// whether it did. Async-signal-safe: no allocation, no lock.
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
    // SAFETY: `path` is NUL-terminated (zeroed past the digits); open, dup3 and close are
    // async-signal-safe and touch only descriptors.
    unsafe {
        let fresh = libc::open(path.as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC);
        if fresh < 0 {
            return false;
        }
        let moved = libc::dup3(fresh, fd, libc::O_CLOEXEC) == fd;
        libc::close(fresh);
        moved
    }
}

extern "C" fn on_fork_child() {
    // AcqRel: see `generation`.
    GENERATION.fetch_add(1, Ordering::AcqRel);
    for entry in &REGISTERED {
        // Relaxed: the child is single-threaded here.
        let fd = entry.load(Ordering::Relaxed);
        if fd >= 0 {
            refresh(fd);
        }
    }
}
