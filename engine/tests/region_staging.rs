//! The staging file a creator builds its region in tells the truth about its creator: an
//! opener of it (a person looking at a leftover `.<name>.creating-*` file) is told the
//! creator is still at work while it is, and that it died once it did.

#![cfg(all(not(loom), feature = "failpoints"))]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use shmarena_engine::{Error, Region, RegionOptions};

/// The staging file of `name` in the temp directory, once one exists.
fn staging_file(name: &str) -> PathBuf {
    let started = Instant::now();
    loop {
        let found = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .find(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&format!(".{name}.creating-"))
            });
        if let Some(entry) = found {
            return entry.path();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no staging file"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn staging_file_of_a_live_creator_is_initializing_by_a_live_creator() {
    let name = format!("shmarena-test-{}-staging", std::process::id());
    let path = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_file(&path);
    fail::cfg("region::before_ready", "pause").unwrap();
    let creator = {
        let path = path.clone();
        std::thread::spawn(move || Region::create(&path, 1 << 20))
    };
    let staging = staging_file(&name);
    let options = RegionOptions {
        init_timeout: Duration::from_millis(100),
        ..RegionOptions::default()
    };
    // Wait until the header (with its magic number) is written: the pause is after it.
    let result = loop {
        match Region::open_with(&staging, &options) {
            Err(Error::NotARegion { .. }) => std::thread::sleep(Duration::from_millis(5)),
            other => break other,
        }
    };
    fail::remove("region::before_ready");
    let region = creator.join().unwrap().unwrap();
    assert!(
        matches!(
            result,
            Err(Error::Initializing {
                creator_dead: false,
                ..
            })
        ),
        "{result:?}"
    );
    drop(region);
    Region::unlink(&path).unwrap();
}
