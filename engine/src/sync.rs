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
/// Shipping code uses `portable_atomic::AtomicU128`, and on x86-64 the instructions it
/// would pick, inline (`vmovdqa` loads where the CPU has AVX, `lock cmpxchg16b`; two plain
/// loads for [`AtomicPair::load_split`]); only CPUs where 128-bit atomics are lock-free are
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
        #[cfg(target_arch = "x86_64")]
        if x86::features() & x86::ATOMIC_VMOVDQA != 0 {
            // SAFETY: the pair is 16-byte aligned, valid and accessed atomically only
            // (`from_ptr`'s contract); the CPU has AVX (checked above).
            return unsafe { x86::load_vmovdqa(self.0.as_ptr().cast()) };
        }
        split(self.0.load(order))
    }

    /// Loads word 0 alone: for a caller that needs only word 0, or re-reads it to validate
    /// what it read before (see [`Self::load_split`]). One 8-byte load on x86-64, where an
    /// aligned 8-byte load is atomic and `lock cmpxchg16b` writes both halves at once; a
    /// `SeqCst` load there, as every load under TSO.
    #[inline]
    pub fn load_first(&self, order: Ordering) -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            let _ = order;
            // SAFETY: the pair is 16-byte aligned, valid and accessed atomically only
            // (`from_ptr`'s contract), so its first 8 bytes are an aligned, valid word.
            unsafe { x86::load_first(self.0.as_ptr().cast()) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.load(order)[0]
    }

    /// Loads word 0, then word 1: two loads, not one snapshot. On x86-64 these are two
    /// plain loads into general registers, where [`Self::load`] is a 16-byte load behind
    /// a feature check whose halves then move out of a vector register.
    ///
    /// Each word is a value it held, word 1 read no earlier than word 0; if word 0 did not
    /// change in between, the pair held the two together. A caller that needs them
    /// together re-reads word 0 afterwards and accepts them only if it is unchanged, where
    /// word 0 never returns to a value it left. (A hash map slot compares its state word
    /// less the bound, which may move without word 1: what it accepts is then word 1
    /// with a word 0 of the same identity.) A caller that only compare-exchanges with
    /// them needs no re-read: a pair that never held fails the exchange.
    #[inline]
    pub fn load_split(&self, order: Ordering) -> [u64; 2] {
        #[cfg(target_arch = "x86_64")]
        {
            let _ = order;
            // SAFETY: the pair is 16-byte aligned, valid and accessed atomically only
            // (`from_ptr`'s contract), so its two halves are aligned, valid words.
            unsafe { x86::load_split(self.0.as_ptr().cast()) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.load(order)
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
        #[cfg(target_arch = "x86_64")]
        if x86::features() & x86::CMPXCHG16B != 0 {
            // SAFETY: as in `load`; the CPU has `cmpxchg16b` (checked above).
            let (previous, swapped) =
                unsafe { x86::cmpxchg16b(self.0.as_ptr().cast(), current, new) };
            return if swapped { Ok(previous) } else { Err(previous) };
        }
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

/// The pair's operations as inline instructions on x86-64, where each is one instruction:
/// portable-atomic picks the same instructions at run time, but calls them through a
/// function pointer, and a call in a lookup's loop makes the compiler keep the loop's state
/// on the stack across it (measured: two calls per map lookup).
///
/// Both are sequentially consistent on x86-64: `lock cmpxchg16b` is a locked
/// read-modify-write (a full barrier), and an aligned 16-byte load is a single load, which
/// TSO orders as every load (a `SeqCst` load is a plain load there). The `asm!` blocks
/// may read and write memory as far as the compiler knows, so it moves no access across
/// them.
#[cfg(all(not(loom), target_arch = "x86_64"))]
mod x86 {
    use std::arch::asm;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// Feature bit: aligned 16-byte loads are atomic. Intel and AMD guarantee it on every
    /// CPU that has AVX (Intel SDM vol. 3A, 9.1.1; AMD APM vol. 2, 7.3.2); GCC's
    /// libatomic, LLVM, Boost.Atomic and portable-atomic read 128-bit atomics this way.
    pub const ATOMIC_VMOVDQA: u8 = 1;
    /// Feature bit: the CPU has `cmpxchg16b`.
    pub const CMPXCHG16B: u8 = 2;
    /// Set once the features were detected.
    const DETECTED: u8 = 0x80;

    static FEATURES: AtomicU8 = AtomicU8::new(0);

    /// The feature bits above, detected at the first call.
    #[inline]
    pub fn features() -> u8 {
        // Relaxed: every thread computes the same bits; a 0 read only detects again.
        let features = FEATURES.load(Ordering::Relaxed);
        if features & DETECTED != 0 {
            return features;
        }
        detect()
    }

    #[cold]
    fn detect() -> u8 {
        let mut features = DETECTED;
        if std::arch::is_x86_feature_detected!("avx") {
            features |= ATOMIC_VMOVDQA;
        }
        if std::arch::is_x86_feature_detected!("cmpxchg16b") {
            features |= CMPXCHG16B;
        }
        // Relaxed: see `features`.
        FEATURES.store(features, Ordering::Relaxed);
        features
    }

    /// Loads the 16 bytes at `src` with one instruction.
    ///
    /// # Safety
    /// `src` is 16-byte aligned and valid for reads; the CPU has AVX.
    #[inline]
    pub unsafe fn load_vmovdqa(src: *const u64) -> [u64; 2] {
        let (low, high): (u64, u64);
        // SAFETY: the caller's contract; the vector register is scratch.
        unsafe {
            asm!(
                "vmovdqa {pair}, xmmword ptr [{src}]",
                "vmovq {low}, {pair}",
                "vpextrq {high}, {pair}, 1",
                src = in(reg) src,
                pair = out(xmm_reg) _,
                low = out(reg) low,
                high = out(reg) high,
                options(nostack, preserves_flags),
            );
        }
        [low, high]
    }

    /// Loads the 8 bytes at `src` with one instruction (in `asm!`, like the pair's other
    /// operations, so that the compiler moves no access across it).
    ///
    /// # Safety
    /// `src` is 8-byte aligned and valid for reads.
    #[inline]
    pub unsafe fn load_first(src: *const u64) -> u64 {
        let word: u64;
        // SAFETY: the caller's contract.
        unsafe {
            asm!(
                "mov {word}, qword ptr [{src}]",
                src = in(reg) src,
                word = out(reg) word,
                options(nostack, preserves_flags),
            );
        }
        word
    }

    /// Loads the 8 bytes at `src`, then the 8 bytes after them, with two instructions
    /// in one `asm!` block (so in that order: TSO keeps loads in program order).
    ///
    /// # Safety
    /// `src` is 8-byte aligned and valid for reads of 16 bytes.
    #[inline]
    pub unsafe fn load_split(src: *const u64) -> [u64; 2] {
        let (low, high): (u64, u64);
        // SAFETY: the caller's contract.
        unsafe {
            asm!(
                "mov {low}, qword ptr [{src}]",
                "mov {high}, qword ptr [{src} + 8]",
                src = in(reg) src,
                low = out(reg) low,
                high = out(reg) high,
                options(nostack, preserves_flags),
            );
        }
        [low, high]
    }

    /// `lock cmpxchg16b` on the 16 bytes at `dst`: the words found there, and whether
    /// they were `current` (and are now `new`).
    ///
    /// # Safety
    /// `dst` is 16-byte aligned and valid for reads and writes; the CPU has
    /// `cmpxchg16b`.
    #[inline]
    pub unsafe fn cmpxchg16b(dst: *mut u64, current: [u64; 2], new: [u64; 2]) -> ([u64; 2], bool) {
        let (low, high): (u64, u64);
        let failed: u8;
        // SAFETY: the caller's contract. rbx, which LLVM reserves, is swapped in and out
        // around the instruction through r8; the address is in a named register (rsi), for
        // one the compiler picked could be rbx itself.
        unsafe {
            asm!(
                "xchg r8, rbx",
                "lock cmpxchg16b xmmword ptr [rsi]",
                "setne cl",
                "mov rbx, r8",
                in("rsi") dst,
                inout("r8") new[0] => _,
                in("rcx") new[1],
                inout("rax") current[0] => low,
                inout("rdx") current[1] => high,
                lateout("cl") failed,
                options(nostack),
            );
        }
        ([low, high], failed == 0)
    }
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

    /// Loads word 0 alone (the model loads both).
    pub fn load_first(&self, order: Ordering) -> u64 {
        self.load(order)[0]
    }

    /// Loads word 0, then word 1, as two loads of the current index: another thread may
    /// change the pair in between, as on hardware.
    pub fn load_split(&self, order: Ordering) -> [u64; 2] {
        let first = self.at(self.current.load(order))[0];
        [first, self.at(self.current.load(order))[1]]
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{AtomicPair, Ordering};

    #[test]
    fn pair_compare_exchange_reports_what_it_found() {
        let pair = AtomicPair::new([1, u64::MAX]);
        assert_eq!(pair.load(Ordering::SeqCst), [1, u64::MAX]);
        let swapped =
            pair.compare_exchange([1, u64::MAX], [2, 3], Ordering::SeqCst, Ordering::SeqCst);
        assert_eq!(swapped, Ok([1, u64::MAX]));
        // Either word differing fails, and reports both as found.
        for stale in [[1, 3], [2, 4]] {
            let failed = pair.compare_exchange(stale, [9, 9], Ordering::SeqCst, Ordering::SeqCst);
            assert_eq!(failed, Err([2, 3]));
        }
        assert_eq!(pair.load(Ordering::SeqCst), [2, 3]);
    }

    #[test]
    fn pair_updates_from_threads_are_never_torn_or_lost() {
        const ROUNDS: u64 = 20_000;
        // Word 1 is always the complement of word 0: a torn read shows as a mismatch.
        let pair = AtomicPair::new([0, !0]);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for _ in 0..ROUNDS {
                        let mut seen = pair.load(Ordering::SeqCst);
                        loop {
                            assert_eq!(seen[1], !seen[0], "torn pair {seen:?}");
                            let next = [seen[0] + 1, !(seen[0] + 1)];
                            match pair.compare_exchange(
                                seen,
                                next,
                                Ordering::SeqCst,
                                Ordering::SeqCst,
                            ) {
                                Ok(_) => break,
                                Err(now) => seen = now,
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(pair.load(Ordering::SeqCst), [2 * ROUNDS, !(2 * ROUNDS)]);
    }

    #[test]
    fn split_loads_read_word_1_no_earlier_than_word_0() {
        const ROUNDS: u64 = 200_000;
        // The writer moves word 0 up by one, and word 1 to the complement of the new word
        // 0, in one exchange: a split load may pair an old word 0 with a newer word 1
        // (never the reverse), and one whose word 0 re-reads unchanged held as read.
        let pair = AtomicPair::new([0, !0]);
        let (mut torn, mut validated) = (0u64, 0u64);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for round in 0..ROUNDS {
                    let swapped = pair.compare_exchange(
                        [round, !round],
                        [round + 1, !(round + 1)],
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    assert!(swapped.is_ok(), "the only writer");
                }
            });
            // Reads while the writer runs, and at least `ROUNDS` times in all (so that a
            // writer done before the first read still leaves something to check).
            let mut reads = 0;
            while reads < ROUNDS || pair.load_first(Ordering::SeqCst) < ROUNDS {
                reads += 1;
                let [first, second] = pair.load_split(Ordering::SeqCst);
                assert!(
                    !second >= first,
                    "word 1 older than word 0: {first}, {second:x}"
                );
                if pair.load_first(Ordering::SeqCst) == first {
                    assert_eq!(second, !first, "validated split load torn");
                    validated += 1;
                } else if second != !first {
                    torn += 1;
                }
            }
        });
        assert!(validated > 0, "no split load validated ({torn} torn)");
        assert_eq!(pair.load_split(Ordering::SeqCst), [ROUNDS, !ROUNDS]);
    }
}
