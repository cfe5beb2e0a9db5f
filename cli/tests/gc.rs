//! `shmarena gc` against real processes: a default region whose every process was
//! SIGKILLed is removed; one that a live process still has open (attached) is kept, even
//! when its creator was killed; a region a program named itself is never touched.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SHMARENA: &str = env!("CARGO_BIN_EXE_shmarena");

/// A fresh directory for one test's regions, removed with everything in it on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Self {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("shmarena-gc-test-{test}-{}", std::process::id()));
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

/// A `shmarena gc-hold` process, killed (SIGKILL) and reaped on drop.
struct Holder {
    child: Child,
    path: PathBuf,
}

impl Holder {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(SHMARENA)
            .arg("gc-hold")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let path = line
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("gc-hold said {line:?}"))
            .trim()
            .into();
        Self { child, path }
    }

    fn create_in(dir: &Dir) -> Self {
        Self::start(&["--create-in", dir.0.to_str().unwrap()])
    }

    fn open(path: &Path) -> Self {
        Self::start(&["--open", path.to_str().unwrap()])
    }

    /// SIGKILL, as the OOM killer would, and reap.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `shmarena gc --dir DIR [extra]` and returns its output lines.
fn gc(dir: &Dir, extra: &[&str]) -> Vec<String> {
    let output = Command::new(SHMARENA)
        .args(["gc", "--dir", dir.0.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn line_for<'a>(lines: &'a [String], path: &Path) -> &'a str {
    let shown = format!(" {}: ", path.display());
    lines
        .iter()
        .find(|line| line.contains(&shown))
        .unwrap_or_else(|| panic!("no line for {}: {lines:#?}", path.display()))
}

#[test]
fn a_killed_programs_region_is_removed_and_a_live_ones_kept() {
    let dir = Dir::new("killed");
    let holder = Holder::create_in(&dir);
    let path = holder.path.clone();

    let lines = gc(&dir, &[]);
    let line = line_for(&lines, &path);
    assert!(
        line.starts_with("kept ") && line.contains("live process has it open"),
        "{line}"
    );
    assert!(path.exists());

    holder.kill();
    let lines = gc(&dir, &["--dry-run"]);
    let line = line_for(&lines, &path);
    assert!(
        line.starts_with("would remove ") && line.contains("dead"),
        "{line}"
    );
    assert!(path.exists(), "a dry run removes nothing");

    let lines = gc(&dir, &[]);
    let line = line_for(&lines, &path);
    assert!(line.starts_with("removed "), "{line}");
    assert!(!path.exists());
    assert!(gc(&dir, &[]).last().unwrap().contains("removed 0, kept 0"));
}

#[test]
fn a_live_attached_process_keeps_the_region_of_its_killed_creator() {
    let dir = Dir::new("attached");
    let creator = Holder::create_in(&dir);
    let path = creator.path.clone();
    let attached = Holder::open(&path);
    creator.kill();

    let lines = gc(&dir, &[]);
    let line = line_for(&lines, &path);
    assert!(line.starts_with("kept "), "{line}");
    assert!(path.exists());

    // Usable by a newcomer meanwhile, and still kept after it left.
    let third = Holder::open(&path);
    third.kill();
    assert!(line_for(&gc(&dir, &[]), &path).starts_with("kept "));

    attached.kill();
    let lines = gc(&dir, &[]);
    assert!(
        line_for(&lines, &path).starts_with("removed "),
        "{lines:#?}"
    );
    assert!(!path.exists());
}

#[test]
fn regions_a_program_named_are_never_touched() {
    let dir = Dir::new("named");
    // Another name: not even listed.
    let named = dir.0.join("my-region");
    let holder = Holder::start(&["--create-in", dir.0.to_str().unwrap(), "--not-collectable"]);
    std::fs::rename(&holder.path, &named).unwrap();
    holder.kill();
    // The default pattern, but without the mark a default region's creator writes.
    let unmarked = Holder::start(&["--create-in", dir.0.to_str().unwrap(), "--not-collectable"]);
    let unmarked_path = unmarked.path.clone();
    unmarked.kill();

    let lines = gc(&dir, &[]);
    assert!(
        !lines.iter().any(|line| line.contains("my-region")),
        "{lines:#?}"
    );
    let line = line_for(&lines, &unmarked_path);
    assert!(
        line.starts_with("kept ") && line.contains("not marked"),
        "{line}"
    );
    assert!(named.exists() && unmarked_path.exists());
}
