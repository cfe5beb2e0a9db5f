//! A region file of a test's own in the temp directory, removed when dropped.

use shmarena::Region;

/// A region at a path of this test process, removed on drop (also when a test fails).
pub struct Temp(pub std::path::PathBuf, pub Region);

/// Creates the region `<prefix>-<pid>-<tag>` of `size` bytes.
pub fn temp_region(prefix: &str, tag: &str, size: u64) -> Temp {
    let path = std::env::temp_dir().join(format!("{prefix}-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let region = Region::create(&path, size).unwrap();
    Temp(path, region)
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
