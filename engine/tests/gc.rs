//! The collector of default regions (`shmarena_engine::gc`): names, corrupt and foreign
//! files, staging files, a live creator, and openers racing with collectors.

use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use shmarena_engine::gc::{self, Action, Verdict};
use shmarena_engine::layout::header;
use shmarena_engine::{Error, Region, RegionOptions};

/// Held by every test of this file: a process spawned by one test's thread inherits,
/// until it execs, the descriptors another test's thread has open, and so keeps that
/// test's region open (and not collectable) for a moment.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Self {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("shmarena-gc-engine-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The pid of a process that ran and was reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn collectable() -> RegionOptions {
    RegionOptions {
        collectable: true,
        ..RegionOptions::default()
    }
}

/// A collectable region named for `pid` whose header names `pid` as its creator, and
/// which no process has open: what a killed program leaves.
fn leftover(dir: &Dir, pid: u32, hex: &str) -> PathBuf {
    let path = dir.0.join(format!("shmarena-py-{pid}-{hex}"));
    drop(Region::create_with(&path, 1 << 20, &collectable()).unwrap());
    write_word(&path, header::CREATOR_PID, u64::from(pid));
    path
}

fn write_word(path: &Path, offset: u64, value: u64) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(&value.to_le_bytes(), offset).unwrap();
}

fn verdict<'a>(verdicts: &'a [Verdict], path: &Path) -> &'a Verdict {
    verdicts
        .iter()
        .find(|v| v.path == path)
        .unwrap_or_else(|| panic!("no verdict for {}: {verdicts:#?}", path.display()))
}

#[test]
fn names_of_the_default_pattern_only() {
    let _serial = serial();
    assert_eq!(
        gc::is_default_region_name(b"shmarena-py-123-0a1b2c3d"),
        Some(123)
    );
    for name in [
        &b"shmarena-py-123-0a1b2c3"[..],
        b"shmarena-py-123-0a1b2c3dd",
        b"shmarena-py-123-0A1B2C3D",
        b"shmarena-py--0a1b2c3d",
        b"shmarena-py-12345678901-0a1b2c3d",
        b"shmarena-py-99999999999999999999-0a1b2c3d",
        b"shmarena-pytest-1-0a1b2c3d",
        b"my-region",
        b"shmarena-py-1-0a1b2c3d.creating-1-2",
        b"",
    ] {
        assert_eq!(gc::is_default_region_name(name), None, "{name:?}");
    }
    assert_eq!(
        gc::is_default_staging_name(b".shmarena-py-1-0a1b2c3d.creating-77-123456"),
        Some(77)
    );
    for name in [
        &b"shmarena-py-1-0a1b2c3d.creating-77-123456"[..],
        b".shmarena-py-1-0a1b2c3d.creating-77-",
        b".shmarena-py-1-0a1b2c3d.creating--1",
        b".my-region.creating-77-123456",
        b".shmarena-py-1-0a1b2c3d.creating-77-12x",
    ] {
        assert_eq!(gc::is_default_staging_name(name), None, "{name:?}");
    }
}

#[test]
fn a_leftover_is_removed_and_one_of_a_running_creator_kept() {
    let _serial = serial();
    let dir = Dir::new("creator");
    let dead = leftover(&dir, dead_pid(), "00000001");
    // Our own pid in the name and the header: a running creator (nobody has it open).
    let ours = leftover(&dir, std::process::id(), "00000002");
    let dry = gc::collect(&dir.0, true).unwrap();
    let v = verdict(&dry, &dead);
    assert_eq!(v.action, Action::WouldRemove, "{}", v.reason);
    assert!(dead.exists());
    let verdicts = gc::collect(&dir.0, false).unwrap();
    assert_eq!(verdict(&verdicts, &dead).action, Action::Removed);
    let kept = verdict(&verdicts, &ours);
    assert_eq!(kept.action, Action::Kept, "{}", kept.reason);
    assert!(kept.reason.contains("is running"), "{}", kept.reason);
    assert!(!dead.exists() && ours.exists());
}

#[test]
fn an_open_handle_keeps_its_region() {
    let _serial = serial();
    let dir = Dir::new("open");
    let path = leftover(&dir, dead_pid(), "00000003");
    let region = Region::open(&path).unwrap();
    let verdicts = gc::collect(&dir.0, false).unwrap();
    let kept = verdict(&verdicts, &path);
    assert_eq!(kept.action, Action::Kept, "{}", kept.reason);
    assert!(path.exists());
    drop(region);
    let verdicts = gc::collect(&dir.0, false).unwrap();
    assert_eq!(verdict(&verdicts, &path).action, Action::Removed);
}

#[test]
fn corrupt_and_foreign_files_are_kept_with_a_reason() {
    let _serial = serial();
    let dir = Dir::new("corrupt");
    let dead = dead_pid();
    let file = |hex: &str, bytes: &[u8]| {
        let path = dir.0.join(format!("shmarena-py-{dead}-{hex}"));
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let empty = file("000000a0", b"");
    let garbage = file("000000a1", &[0xa5; 8192]);
    let magic_only = file("000000a2", b"SHMARENA");
    // A valid header whose checksum no longer matches (a huge participant capacity).
    let bad_capacity = leftover(&dir, dead, "000000a3");
    write_word(&bad_capacity, 40, u64::MAX);
    // Unknown state word.
    let bad_state = leftover(&dir, dead, "000000a4");
    write_word(&bad_state, header::STATE, 77);
    // Cut short after creation.
    let cut = leftover(&dir, dead, "000000a5");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(8192)
        .unwrap();
    // Not initialized, and nobody initializing it.
    let half = leftover(&dir, dead, "000000a6");
    write_word(&half, header::STATE, header::STATE_INITIALIZING);
    // Another layout version.
    let version = leftover(&dir, dead, "000000a7");
    write_word(&version, 8, 999);
    // Others may write it.
    let writable = leftover(&dir, dead, "000000a8");
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o666)).unwrap();
    // A directory and a symbolic link with the pattern's names.
    let directory = dir.0.join(format!("shmarena-py-{dead}-000000a9"));
    std::fs::create_dir(&directory).unwrap();
    let target = leftover(&dir, dead, "000000aa");
    let renamed = dir.0.join("target-of-link");
    std::fs::rename(&target, &renamed).unwrap();
    let link = dir.0.join(format!("shmarena-py-{dead}-000000ab"));
    std::os::unix::fs::symlink(&renamed, &link).unwrap();

    let verdicts = gc::collect(&dir.0, false).unwrap();
    for (path, why) in [
        (&empty, "shorter than a header"),
        (&garbage, "no magic number"),
        (&magic_only, "shorter than a header"),
        (&bad_capacity, "corrupt header"),
        (&bad_state, "unknown state"),
        (&cut, "corrupt header"),
        (&half, "nobody is initializing it"),
        (&version, "layout version 999"),
        (&writable, "mode 0666"),
        (&directory, "not a regular file"),
        (&link, "symbolic link"),
    ] {
        let v = verdict(&verdicts, path);
        assert_eq!(v.action, Action::Kept, "{}: {}", path.display(), v.reason);
        assert!(v.reason.contains(why), "{}: {}", path.display(), v.reason);
        assert!(std::fs::symlink_metadata(path).is_ok());
    }
    assert!(renamed.exists(), "a link's target is never touched");
    assert!(!verdicts.iter().any(|v| v.path == renamed));
}

/// Random words written over a leftover's header and participant table, and random
/// lengths: every file is judged (kept with a reason, or removed when the damage is
/// outside what the checks read), with no panic and no hang.
#[test]
fn damaged_leftovers_never_crash_the_collector() {
    let _serial = serial();
    let dir = Dir::new("damaged");
    let dead = dead_pid();
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let (mut kept, mut removed) = (0, 0);
    for round in 0..150u64 {
        let path = leftover(&dir, dead, &format!("{round:08x}"));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        for _ in 0..=next() % 4 {
            // A word of the header (immutable fields, state, creator, flags) or of the
            // first participant slots; sometimes a small value, sometimes any.
            let offset = if next() % 2 == 0 {
                8 * (next() % 24)
            } else {
                4096 + 8 * (next() % 64)
            };
            let value = if next() % 2 == 0 { next() % 8 } else { next() };
            file.write_all_at(&value.to_le_bytes(), offset).unwrap();
        }
        if next() % 5 == 0 {
            file.set_len(next() % (2 << 20)).unwrap();
        }
        drop(file);
        for dry_run in [true, false] {
            for v in gc::collect(&dir.0, dry_run).unwrap() {
                assert!(!v.reason.is_empty());
                match v.action {
                    Action::Kept => kept += 1,
                    Action::Removed => removed += 1,
                    Action::WouldRemove => {}
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    eprintln!("{kept} kept, {removed} removed");
}

/// A staging file of 100 zero bytes at `path`, mode 0600, last modified `age` ago.
fn staging_file(path: &Path, age: std::time::Duration) {
    std::fs::write(path, [0u8; 100]).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - age)
        .unwrap();
}

const OLD: std::time::Duration = std::time::Duration::from_secs(120);

#[test]
fn stale_staging_files_are_removed_and_live_ones_kept() {
    let _serial = serial();
    let dir = Dir::new("staging");
    let dead = dead_pid();
    let stale = dir.0.join(format!(
        ".shmarena-py-{dead}-0000000b.creating-{dead}-12345"
    ));
    staging_file(&stale, OLD);
    let live = dir.0.join(format!(
        ".shmarena-py-{dead}-0000000c.creating-{}-12345",
        std::process::id()
    ));
    staging_file(&live, OLD);
    let verdicts = gc::collect(&dir.0, false).unwrap();
    let v = verdict(&verdicts, &stale);
    assert!(v.staging && v.action == Action::Removed, "{v:?}");
    let v = verdict(&verdicts, &live);
    assert!(v.staging && v.action == Action::Kept, "{v:?}");
    assert!(!stale.exists() && live.exists());
}

/// A creator takes its staging file's open lock only after its `O_EXCL` open, and its pid
/// may read as not running (another pid namespace): a staging file younger than a minute
/// is kept whatever its pids say, an older one with a dead creator removed.
#[test]
fn young_staging_files_are_kept_whatever_their_pids() {
    let _serial = serial();
    let dir = Dir::new("staging-young");
    let dead = dead_pid();
    let young = dir.0.join(format!(
        ".shmarena-py-{dead}-0000000d.creating-{dead}-12345"
    ));
    staging_file(&young, std::time::Duration::from_secs(5));
    let old = dir.0.join(format!(
        ".shmarena-py-{dead}-0000000e.creating-{dead}-12345"
    ));
    staging_file(&old, std::time::Duration::from_secs(61));
    // In the future (a clock set back): young.
    let future = dir.0.join(format!(
        ".shmarena-py-{dead}-0000000f.creating-{dead}-12345"
    ));
    std::fs::write(&future, [0u8; 100]).unwrap();
    std::fs::set_permissions(&future, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&future)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + OLD)
        .unwrap();
    for dry_run in [true, false] {
        let verdicts = gc::collect(&dir.0, dry_run).unwrap();
        for path in [&young, &future] {
            let v = verdict(&verdicts, path);
            assert!(v.staging && v.action == Action::Kept, "{v:?}");
            assert!(v.reason.contains("less than 60 s"), "{v:?}");
        }
        let v = verdict(&verdicts, &old);
        let expected = if dry_run {
            Action::WouldRemove
        } else {
            Action::Removed
        };
        assert!(v.staging && v.action == expected, "{v:?}");
    }
    assert!(young.exists() && future.exists() && !old.exists());
}

/// Spins for a few hundred microseconds at most, differently each round, so that both
/// orders (and the overlaps between) come up.
fn stagger(round: u32) {
    let until =
        std::time::Instant::now() + std::time::Duration::from_micros(u64::from(round * 37 % 300));
    while std::time::Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Openers racing with collectors: an open that succeeds holds a region whose name is
/// still there (and so kept); one that fails found the region already removed.
#[test]
fn an_opener_racing_a_collector_never_holds_a_removed_region() {
    let _serial = serial();
    let dir = Dir::new("race");
    let dead = dead_pid();
    let (mut opened, mut collected) = (0, 0);
    for round in 0..200u32 {
        let path = leftover(&dir, dead, &format!("{round:08x}"));
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let collector = {
            let dir = dir.0.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                if round % 2 == 1 {
                    stagger(round);
                }
                gc::collect(&dir, false).unwrap()
            })
        };
        start.wait();
        if round % 2 == 0 {
            stagger(round);
        }
        match Region::open(&path) {
            Ok(region) => {
                let verdicts = collector.join().unwrap();
                assert!(
                    region.file_metadata().unwrap().nlink() > 0,
                    "round {round}: attached to a removed region: {verdicts:#?}"
                );
                assert!(path.exists());
                opened += 1;
                drop(region);
                std::fs::remove_file(&path).unwrap();
            }
            Err(Error::RegionNotFound(_)) => {
                collector.join().unwrap();
                assert!(!path.exists());
                collected += 1;
            }
            Err(other) => panic!("round {round}: {other}"),
        }
    }
    eprintln!("{opened} opened first, {collected} collected first");
}
