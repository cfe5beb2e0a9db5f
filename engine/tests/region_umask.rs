//! A created region is mode 0600 whatever the umask. Its own test binary: the umask is
//! per process, and changing it beside other tests would change the files they create.

#![cfg(not(loom))]

use std::os::unix::fs::PermissionsExt;

use shmarena_engine::Region;

#[test]
fn created_region_is_0600_under_any_umask() {
    for umask in [0o000, 0o022, 0o077, 0o277, 0o777] {
        let path = std::env::temp_dir().join(format!(
            "shmarena-test-{}-umask-{umask:o}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        // SAFETY: umask has no preconditions; this test binary runs nothing else.
        let previous = unsafe { libc::umask(umask) };
        let created = Region::create(&path, 1 << 20);
        // SAFETY: as above.
        unsafe { libc::umask(previous) };
        let created = created.unwrap_or_else(|e| panic!("umask {umask:o}: {e}"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "umask {umask:o}");
        // Another process of the same user opens it (as root the mode does not matter).
        Region::open(&path).unwrap_or_else(|e| panic!("umask {umask:o}: {e}"));
        drop(created);
        Region::unlink(&path).unwrap();
    }
}
