//! Benchmarks for shmarena.
//!
//! - `benches/scalars.rs`: criterion micro-benchmarks of single-process operations on a
//!   region in `/dev/shm`, each beside its in-process baseline (a heap `std` atomic with
//!   the same ordering). Run with `cargo bench -p shmarena-benches`.
//! - The multi-process throughput harness is `shmarena bench` (the `shmarena-cli` crate).
//!
//! This library holds what the benchmark targets share.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shmarena::Region;

/// A region in `/dev/shm` under a unique name, unlinked when dropped (also on panic).
///
/// ```
/// let temp = shmarena_benches::TempRegion::create("doc", 1 << 20)?;
/// assert!(temp.path().starts_with("/dev/shm"));
/// # Ok::<(), shmarena::Error>(())
/// ```
#[derive(Debug)]
pub struct TempRegion {
    region: Region,
    path: PathBuf,
}

impl TempRegion {
    /// Creates `/dev/shm/shmarena-bench-<label>-<pid>-<nanos>` of `size` bytes.
    ///
    /// # Errors
    /// As [`Region::create`].
    pub fn create(label: &str, size: u64) -> shmarena::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = PathBuf::from(format!(
            "/dev/shm/shmarena-bench-{label}-{}-{nanos}",
            std::process::id()
        ));
        let region = Region::create(&path, size)?;
        Ok(Self { region, path })
    }

    /// The region.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The region file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempRegion {
    fn drop(&mut self) {
        // The mapping stays valid for handles still alive; only the name goes.
        let _ = Region::unlink(&self.path);
    }
}

/// The hash shmarena's map uses ([`shmarena::hash_map::hash_key`] with a seed: a folded
/// multiply of a one-word key, xxh3 of longer keys' bytes), as a `BuildHasher` for the
/// in-process peers, so every map in a comparison hashes alike.
#[derive(Clone, Copy, Debug, Default)]
pub struct SameHash {
    seed: u64,
}

impl SameHash {
    /// A builder hashing with `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self { seed }
    }
}

/// The hasher [`SameHash`] builds.
#[derive(Clone, Copy, Debug)]
pub struct SameHasher {
    seed: u64,
    hash: u64,
}

impl std::hash::BuildHasher for SameHash {
    type Hasher = SameHasher;
    fn build_hasher(&self) -> Self::Hasher {
        SameHasher {
            seed: self.seed,
            hash: 0,
        }
    }
}

impl std::hash::Hasher for SameHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.hash = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.seed ^ self.hash);
    }
    fn write_u64(&mut self, value: u64) {
        self.hash = shmarena::hash_map::hash_key(&[value], self.seed ^ self.hash);
    }
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// `count` distinct pseudo-random keys from `stream` (distinct streams do not overlap:
/// the top byte is the stream).
pub fn keys(stream: u8, count: usize) -> Vec<u64> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(stream);
    (0..count)
        .map(|i| {
            // splitmix64 of the index: distinct inputs give distinct outputs.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) >> 8 | u64::from(stream) << 56
        })
        .collect()
}

/// Nanoseconds per call of `op`: the best of 7 runs of 2 million calls (for the summaries
/// the criterion targets print after their groups).
pub fn time_per_op(mut op: impl FnMut()) -> f64 {
    const RUNS: usize = 7;
    const ITERS: u32 = 2_000_000;
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let started = Instant::now();
        for _ in 0..ITERS {
            op();
        }
        best = best.min(started.elapsed());
    }
    best.as_nanos() as f64 / f64::from(ITERS)
}

/// One line of such a summary: an operation, an implementation, its time and its ratio to
/// `base`.
pub fn summary_line(operation: &str, name: &str, ns: f64, base: f64) {
    println!("{operation:<24} {name:<22} {ns:>8.2} {:>8.2}", ns / base);
}
