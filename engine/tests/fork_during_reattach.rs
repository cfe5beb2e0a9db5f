//! A fork taken while another thread re-attaches (a child of a child) does not inherit a
//! held claim: the grandchild attaches as itself instead of waiting forever.

#![cfg(all(not(loom), feature = "failpoints"))]

use shmarena_engine::Region;
use std::time::{Duration, Instant};

/// The exit code of `pid`, or `None` if it had to be killed after `limit`.
fn wait_with_timeout(pid: i32, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: polls our own child.
        if unsafe { libc::waitpid(pid, &raw mut status, libc::WNOHANG) } == pid {
            return Some(libc::WEXITSTATUS(status));
        }
        if start.elapsed() > limit {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &raw mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_fork_in_the_middle_of_a_reattach_does_not_hang_the_grandchild() {
    let path = std::env::temp_dir().join(format!("shmarena-fork-reattach-{}", std::process::id()));
    let _ = Region::unlink(&path);
    let region = Region::create(&path, 1 << 20).unwrap();
    // SAFETY: the child only uses the region, threads and fork, and leaves with `_exit`.
    let middle = unsafe { libc::fork() };
    assert!(middle >= 0);
    if middle == 0 {
        // One thread re-attaches slowly (the failpoint sleeps inside the attach) while
        // the main thread forks.
        fail::cfg("participants::after_lock", "sleep(500)").unwrap();
        let slow = region.clone();
        std::thread::spawn(move || {
            let _ = slow.participant_id();
        });
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: as above.
        let grandchild = unsafe { libc::fork() };
        if grandchild == 0 {
            fail::cfg("participants::after_lock", "off").unwrap();
            let _ = region.participant_id();
            // SAFETY: ends the grandchild.
            unsafe { libc::_exit(0) };
        }
        let code = wait_with_timeout(grandchild, Duration::from_secs(5)).map_or(7, |_| 0);
        // SAFETY: ends the middle process.
        unsafe { libc::_exit(code) };
    }
    let code = wait_with_timeout(middle, Duration::from_secs(15));
    drop(region);
    let _ = Region::unlink(&path);
    assert_eq!(
        code,
        Some(0),
        "the grandchild hung (7) or the middle process did"
    );
}
