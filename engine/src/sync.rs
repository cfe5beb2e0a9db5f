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

/// One short pause of a spin-wait loop (`pause` on x86); under loom, a yield to the model
/// scheduler, so spin loops stay finite there.
#[inline]
pub fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

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

/// Two adjacent 64-bit words read and compare-exchanged as one 128-bit atomic (x86-64
/// `cmpxchg16b`, AArch64 `casp`): what lets a hash-map slot change its state word and its
/// value word together.
///
/// Shipping code uses `portable_atomic::AtomicU128`; only CPUs where that is lock-free are
/// accepted ([`AtomicPair::is_lock_free`]), because a process-local fallback lock would not
/// exclude other processes. Word 0 is the low half, at the lower address.
#[cfg(not(loom))]
#[repr(transparent)]
#[derive(Debug)]
pub struct AtomicPair(portable_atomic::AtomicU128);

#[cfg(not(loom))]
impl AtomicPair {
    /// A pair holding `words`.
    pub fn new(words: [u64; 2]) -> Self {
        Self(portable_atomic::AtomicU128::new(join(words)))
    }

    /// Whether this CPU does 128-bit atomics without a lock (checked once, at run time).
    pub fn is_lock_free() -> bool {
        portable_atomic::AtomicU128::is_lock_free()
    }

    /// Views 16 bytes of shared memory as a pair.
    ///
    /// # Safety
    /// `ptr` is 16-byte aligned, valid for reads and writes for `'a`, and only ever
    /// accessed atomically while `'a` lasts.
    pub unsafe fn from_ptr<'a>(ptr: *mut u64) -> &'a Self {
        debug_assert!(ptr as usize % 16 == 0);
        #[allow(clippy::cast_ptr_alignment)] // 16-byte alignment is the caller's promise
        // SAFETY: the caller guarantees alignment, validity and atomic-only access;
        // `AtomicPair` is a transparent `AtomicU128`.
        unsafe {
            &*ptr.cast::<Self>()
        }
    }

    /// Loads both words at once.
    #[inline]
    pub fn load(&self, order: Ordering) -> [u64; 2] {
        split(self.0.load(order))
    }

    /// Replaces both words if both equal `current`; returns the previous words.
    ///
    /// # Errors
    /// The words found, when they differ from `current` (never spuriously).
    #[inline]
    pub fn compare_exchange(
        &self,
        current: [u64; 2],
        new: [u64; 2],
        success: Ordering,
        failure: Ordering,
    ) -> Result<[u64; 2], [u64; 2]> {
        self.0
            .compare_exchange(join(current), join(new), success, failure)
            .map(split)
            .map_err(split)
    }
}

#[cfg(not(loom))]
#[inline]
fn join(words: [u64; 2]) -> u128 {
    u128::from(words[0]) | u128::from(words[1]) << 64
}

#[cfg(not(loom))]
#[inline]
fn split(value: u128) -> [u64; 2] {
    [value as u64, (value >> 64) as u64]
}

/// Loom has no 128-bit atomic. This model keeps every value the pair ever held in a
/// private history and makes one loom `AtomicUsize` point at the current one: a load is
/// a load of that index (with the caller's ordering), a compare-exchange a CAS of the
/// index, retried only when the index moved without the value differing. So loom sees
/// exactly the orderings the algorithm asks for, on one atomic location per pair.
#[cfg(loom)]
#[derive(Debug)]
pub struct AtomicPair {
    current: loom::sync::atomic::AtomicUsize,
    history: std::sync::Mutex<Vec<[u64; 2]>>,
}

#[cfg(loom)]
impl AtomicPair {
    /// A pair holding `words`.
    pub fn new(words: [u64; 2]) -> Self {
        Self {
            current: loom::sync::atomic::AtomicUsize::new(0),
            history: std::sync::Mutex::new(vec![words]),
        }
    }

    /// Always true for the model.
    pub fn is_lock_free() -> bool {
        true
    }

    fn at(&self, index: usize) -> [u64; 2] {
        self.history.lock().expect("history lock")[index]
    }

    /// Loads both words at once.
    pub fn load(&self, order: Ordering) -> [u64; 2] {
        self.at(self.current.load(order))
    }

    /// Replaces both words if both equal `current`; returns the previous words.
    ///
    /// # Errors
    /// The words found, when they differ from `current`.
    pub fn compare_exchange(
        &self,
        current: [u64; 2],
        new: [u64; 2],
        success: Ordering,
        failure: Ordering,
    ) -> Result<[u64; 2], [u64; 2]> {
        let index = {
            let mut history = self.history.lock().expect("history lock");
            history.push(new);
            history.len() - 1
        };
        loop {
            let seen = self.current.load(failure);
            let words = self.at(seen);
            if words != current {
                return Err(words);
            }
            if self
                .current
                .compare_exchange(seen, index, success, failure)
                .is_ok()
            {
                return Ok(words);
            }
        }
    }
}
