//! What the differential fuzz targets share: one scratch region path per fuzzing process
//! (removed when a finding aborts the run) and the "check_region finds no error" assertion.
//! Each target uses what it needs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use shmarena::{Region, RegionOptions};

/// `/dev/shm/shmarena-fuzz-<target>-<pid>` (else in the temp dir), the same for the
/// whole process.
pub fn region_path(target: &str) -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = Path::new("/dev/shm");
        let dir = if dir.is_dir() { dir.to_path_buf() } else { std::env::temp_dir() };
        dir.join(format!("shmarena-fuzz-{target}-{}", std::process::id()))
    })
}

/// Makes a panic (a finding) remove the scratch region before libFuzzer aborts.
pub fn remove_region_on_panic(path: &'static Path) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = std::fs::remove_file(path);
        previous(info);
    }));
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
