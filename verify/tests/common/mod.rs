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

/// Forks this test process. The child must only touch shared state and end with
/// [`exit_child`]: forking is well defined only from a process whose other threads are
/// idle (one test per file that forks).
pub fn fork() -> i32 {
    // SAFETY: the callers' children only use the region and exit with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    pid
}

/// Ends a forked child without running the parent's destructors or test harness.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: `_exit` ends the process at once; nothing of the parent's state runs.
    unsafe { libc::_exit(code) }
}

/// Waits for a forked child: its exit code (a child killed by a signal fails the test).
pub fn wait_child(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &raw mut status, 0) };
    assert!(
        libc::WIFEXITED(status),
        "the child did not exit: {status:#x}"
    );
    libc::WEXITSTATUS(status)
}
