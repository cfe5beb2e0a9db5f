//! What the differential fuzz targets share: one scratch region per fuzzing process, put
//! back into its just-created state before every input (instead of a region created,
//! mapped and removed per input), and the "check_region finds no error" assertion.
//! Each target uses what it needs.

#![allow(dead_code)]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use shmarena::{Region, RegionOptions};
use shmarena_engine::layout::header;
use shmarena_engine::Memory;

/// The hash seed of every scratch region: a crash input replays the same probe sequences.
pub const SEED: u64 = 0x5eed_f0a2_5eed_f0a2;

/// `/dev/shm` when there is one, else the temp dir.
pub fn scratch_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A region created once per fuzzing process and reset before every input.
///
/// Its name is removed right after creation (the mapping and our descriptor keep the file
/// alive), so nothing is left behind however the process ends. [`reset`](Self::reset)
/// writes back, through the file (the kernel's copy, like another process writing the
/// shared pages), what an input can have changed: the bytes in front of the arena (header,
/// participant table with our slot, catalog) as they were after creation, and zeros over
/// the arena up to the bump pointer's high-water mark (nothing is written above it: fresh
/// blocks are zero, so the engine never writes there before the bump pointer passes).
/// The region is then byte for byte the one `create_with` made, attached by our handle.
pub struct Scratch {
    region: Region,
    file: File,
    /// Bytes `0..arena_offset` right after creation.
    pristine: Vec<u8>,
    /// As many zero bytes as the arena holds.
    zeros: Vec<u8>,
}

impl Scratch {
    /// Creates the scratch region of `target` (`size` bytes, `options` with the hash seed
    /// fixed to [`SEED`]).
    pub fn new(target: &str, size: u64, options: &RegionOptions) -> Self {
        let path = scratch_dir().join(format!("shmarena-fuzz-{target}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let options = RegionOptions {
            hash_seed: Some(SEED),
            ..options.clone()
        };
        let region = Region::create_with(&path, size, &options).expect("create the scratch region");
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open the scratch region file");
        Region::unlink(&path).expect("unlink the scratch region");
        let fields = region.header();
        let mut pristine = vec![0; fields.arena_offset as usize];
        file.read_exact_at(&mut pristine, 0)
            .expect("read the new region");
        let zeros = vec![0; (fields.arena_end - fields.arena_offset) as usize];
        Self {
            region,
            file,
            pristine,
            zeros,
        }
    }

    /// Puts the region back into its just-created state and returns it. Every handle into
    /// it from before must be gone.
    pub fn reset(&self) -> &Region {
        let fields = self.region.header();
        let bump = self
            .region
            .memory()
            .word(header::ARENA_BUMP)
            // Relaxed: single-threaded; we only need the value this thread wrote.
            .map(|word| word.load(Ordering::Relaxed))
            .unwrap_or(fields.arena_end)
            .clamp(fields.arena_offset, fields.arena_end);
        let dirty = (bump - fields.arena_offset) as usize;
        self.file
            .write_all_at(&self.pristine, 0)
            .expect("restore the region's tables");
        self.file
            .write_all_at(&self.zeros[..dirty], fields.arena_offset)
            .expect("zero the region's arena");
        // What this process remembers of the old contents goes with them.
        self.region.forget_local_state();
        &self.region
    }

    /// Checks that the whole file is what [`reset`](Self::reset) promises: the pristine
    /// tables and a zero arena (run once at start-up, after a reset that followed a
    /// representative input).
    pub fn assert_pristine(&self) {
        let mut bytes = vec![0; self.region.size() as usize];
        self.file
            .read_exact_at(&mut bytes, 0)
            .expect("read the region");
        let (tables, arena) = bytes.split_at(self.pristine.len());
        assert!(
            tables == self.pristine.as_slice(),
            "reset left the header or tables changed"
        );
        let changed = arena.iter().position(|&b| b != 0);
        assert!(
            changed.is_none(),
            "reset left arena byte {changed:?} nonzero"
        );
    }
}

/// Asserts that `check_region` reports no `Error` for `region`.
pub fn assert_check_clean(region: &Region) {
    let errors: Vec<_> = shmarena::check::check_region(region)
        .into_iter()
        .filter(|f| f.severity == shmarena::engine::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "check_region: {errors:?}");
}

/// Options for a scratch region holding one structure: few participants and entries.
pub fn one_object_options() -> RegionOptions {
    RegionOptions {
        participant_capacity: 2,
        catalog_capacity: 4,
        ..RegionOptions::default()
    }
}

/// Whether `SHMARENA_FUZZ_TRACE` is set (and not `0`): print what each input does.
pub fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SHMARENA_FUZZ_TRACE").is_some_and(|v| v != "0"))
}
