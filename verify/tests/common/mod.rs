//! Helpers shared by the multi-process tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The worker binary built with this test.
pub const WORKER: &str = env!("CARGO_BIN_EXE_shmarena-worker");

/// A region path in /dev/shm unique to this test process and `tag`, removed on drop.
pub struct TempRegion {
    pub path: PathBuf,
}

impl TempRegion {
    pub fn new(tag: &str) -> Self {
        let path = PathBuf::from(format!(
            "/dev/shm/shmarena-test-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        Self { path }
    }

    pub fn arg(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }
}

impl Drop for TempRegion {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Starts a worker with `args`, stdout piped.
pub fn spawn(args: &[&str]) -> Child {
    spawn_with_env(args, &[])
}

/// Starts a worker with `args` and extra environment variables.
pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(WORKER);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("start worker")
}

/// Runs a worker to completion and asserts it succeeded.
pub fn run_ok(args: &[&str]) -> Output {
    let output = spawn(args).wait_with_output().expect("wait for worker");
    assert!(
        output.status.success(),
        "worker {args:?} failed: {:?}",
        output.status
    );
    output
}

/// Whether a path exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}
