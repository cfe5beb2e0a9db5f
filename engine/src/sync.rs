//! The one place that chooses between `std` and `loom` atomics.
//!
//! Algorithm code (the arena, the catalog, the scalar operations of the structures) uses
//! only the names exported here, so the same source is model-checked under
//! `RUSTFLAGS="--cfg loom"` and shipped without it.

#[cfg(loom)]
pub use loom::sync::atomic::{
    fence, AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64,
    AtomicU8, Ordering,
};
#[cfg(not(loom))]
pub use std::sync::atomic::{
    fence, AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64,
    AtomicU8, Ordering,
};

/// Exponential backoff for retry loops: spins first, then yields the thread.
///
/// Under loom every step yields to the model scheduler, so spin loops stay finite there.
#[derive(Debug, Default)]
pub struct Backoff {
    #[cfg(not(loom))]
    inner: crossbeam_utils::Backoff,
}

impl Backoff {
    /// A fresh backoff at its shortest step.
    pub fn new() -> Self {
        Self::default()
    }

    /// Backs off after a failed compare-exchange (contention, not waiting).
    #[inline]
    pub fn spin(&self) {
        #[cfg(not(loom))]
        self.inner.spin();
        #[cfg(loom)]
        loom::thread::yield_now();
    }

    /// Backs off while waiting for another process to make progress.
    #[inline]
    pub fn snooze(&self) {
        #[cfg(not(loom))]
        self.inner.snooze();
        #[cfg(loom)]
        loom::thread::yield_now();
    }

    /// Whether spinning has gone on long enough that the caller should sleep or check
    /// on the process it waits for.
    #[inline]
    pub fn is_completed(&self) -> bool {
        #[cfg(not(loom))]
        return self.inner.is_completed();
        #[cfg(loom)]
        return true;
    }
}
