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

/// Wakes up to `count` processes waiting on `word`.
#[cfg(not(loom))]
pub fn wake(word: &AtomicU32, count: u32) {
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    // SAFETY: FUTEX_WAKE only uses the address as a key; it reads no memory.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count);
    }
}

/// Loom: a wait is a yield (a spurious wake-up).
#[cfg(loom)]
pub fn wait(_word: &AtomicU32, _expected: u32, _timeout: Option<Duration>) {
    loom::thread::yield_now();
}

/// Loom: waking is implicit (waiters only yield).
#[cfg(loom)]
pub fn wake(_word: &AtomicU32, _count: u32) {}

/// Wakes every waiter on `word`.
pub fn wake_all(word: &AtomicU32) {
    wake(word, u32::MAX);
}
