//! Benchmarks for shmarena.
//!
//! - `benches/scalars.rs`: criterion micro-benchmarks of single-process operations on a
//!   region in `/dev/shm`, each beside its in-process baseline (a heap `std` atomic with
//!   the same ordering). Run with `cargo bench -p shmarena-benches`.
//! - The multi-process throughput harness is `shmarena bench` (the `shmarena-cli` crate).
//!
//! This library holds what the benchmark targets share.

use std::path::{Path, PathBuf};

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
