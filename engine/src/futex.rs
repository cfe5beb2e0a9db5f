//! Waiting on a shared 32-bit word: the Linux futex, without `FUTEX_PRIVATE_FLAG`, so
//! waiters and wakers in different processes that map the same file meet on the same
//! kernel queue (keyed by the file page, not the address).
//!
//! Under loom a wait is a yield (a spurious wake-up, which every caller must tolerate)
//! and a wake does nothing: the models check the state machines, not the kernel.

use std::time::Duration;

use crate::sync::AtomicU32;

/// Sleeps while `word` holds `expected`, at most `timeout`. Returns on a wake-up, a
/// signal, a timeout, or at once when the word differs: callers re-check their condition.
#[cfg(not(loom))]
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let timespec = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
    });
    let timespec_ptr = timespec
        .as_ref()
        .map_or(std::ptr::null(), std::ptr::from_ref);
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word` (valid for the call) and the
    // optional timespec (a local that outlives the call). Errors (EAGAIN: the value
    // differed; EINTR; ETIMEDOUT) all mean "re-check", which every caller does.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            timespec_ptr,
        );
    }
}

/// Wakes up to `count` processes waiting on `word`; how many it woke (`u32::MAX` when the
/// kernel refused the call: unknown).
#[cfg(not(loom))]
pub fn wake(word: &AtomicU32, count: u32) -> u32 {
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    // SAFETY: FUTEX_WAKE only uses the address as a key; it reads no memory.
    let woken = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count) };
    u32::try_from(woken).unwrap_or(u32::MAX)
}

#[cfg(loom)]
loom::lazy_static! {
    /// Whether waits of this model execution block until woken (see [`block_waits`]).
    static ref BLOCKING: crate::sync::AtomicBool = crate::sync::AtomicBool::new(false);
    /// Held while a waiter compares its word and starts waiting, and by wakers.
    static ref GATE: loom::sync::Mutex<()> = loom::sync::Mutex::new(());
    /// Where blocked waiters wait.
    static ref WOKEN: loom::sync::Condvar = loom::sync::Condvar::new();
}

/// Loom: from now on in this model execution, waits block until a wake comes and their
/// word differs, ignoring timeouts, instead of returning at once. A model whose code must
/// never lose a wake-up calls it first: a lost one then leaves a waiter blocked for good,
/// which loom reports as a deadlock. (Every real wait is timed, so a lost wake-up costs
/// latency, not a hang; by default waits return at once, as a timed wait may.)
#[cfg(loom)]
pub fn block_waits() {
    // Relaxed: set before the model's threads are spawned (the spawn orders it).
    BLOCKING.store(true, crate::sync::Ordering::Relaxed);
}

/// Loom: a yield (a spurious wake-up), or with [`block_waits`] a futex wait: blocks while
/// `word` holds `expected` until a wake.
#[cfg(loom)]
pub fn wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
    // Relaxed: see `block_waits`.
    if !BLOCKING.load(crate::sync::Ordering::Relaxed) {
        loom::thread::yield_now();
        return;
    }
    let mut gate = GATE.lock().expect("gate");
    // The kernel compares the word's current value inside its own lock (the gate stands
    // for it): an RMW that changes nothing reads the latest value, as that compare does.
    while word.fetch_add(0, crate::sync::Ordering::SeqCst) == expected {
        gate = WOKEN.wait(gate).expect("gate");
    }
}

/// Loom: nothing (waiters only yield), or with [`block_waits`] wakes every blocked waiter
/// (each compares its word again). Reports `u32::MAX` woken (unknown).
#[cfg(loom)]
pub fn wake(_word: &AtomicU32, _count: u32) -> u32 {
    // Relaxed: see `block_waits`.
    if BLOCKING.load(crate::sync::Ordering::Relaxed) {
        let _gate = GATE.lock().expect("gate");
        WOKEN.notify_all();
    }
    u32::MAX
}

/// Wakes every waiter on `word`; how many (as [`wake`]).
pub fn wake_all(word: &AtomicU32) -> u32 {
    wake(word, u32::MAX)
}
