//! A forked child of a semaphore permit holder holds no permit: dropping the permit guard
//! it inherited gives nothing back, so the parent keeps the only permit while a third
//! process waits, and gets it when the parent's guard drops (issue 17).

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::{exit_child, fork, spawn, wait_child as wait, TempRegion};
use shmarena::{Region, RegionExt};

/// The child's exit codes.
const CHILD_OK: i32 = 0;
const CHILD_FREED_A_PERMIT: i32 = 3;

// One test per file: forking is only well defined from a process whose other threads are
// idle, and the harness runs a file's tests on parallel threads.
#[test]
fn a_forked_child_dropping_an_inherited_permit_guard_gives_nothing_back() {
    let temp = TempRegion::new("permit-fork");
    let region = Region::create(&temp.path, 1 << 20).unwrap();
    let semaphore = region.bounded_semaphore("s", 1).unwrap();

    let permit = semaphore.acquire_guard();
    let child = fork();
    if child == 0 {
        // The child holds no permit (the token names the parent): dropping the guard it
        // inherited must leave the token alone.
        drop(permit);
        let freed = semaphore.available() != 0;
        exit_child(if freed {
            CHILD_FREED_A_PERMIT
        } else {
            CHILD_OK
        });
    }
    let child_exit = wait(child);
    assert_eq!(
        child_exit, CHILD_OK,
        "the child's drop of its inherited guard gave the parent's permit back"
    );
    assert_eq!((semaphore.available(), semaphore.held()), (0, 1));

    // A third process finds no permit, and gets one only when the parent's guard drops.
    let mut third = spawn(&["wait-permit", temp.arg(), "s", "1"]);
    let mut lines = BufReader::new(third.stdout.take().expect("piped stdout")).lines();
    // "waiting" comes only after the worker's try_acquire failed (else it exits with an
    // error).
    assert_eq!(
        lines.next().map(Result::unwrap).as_deref(),
        Some("waiting"),
        "the third process found a permit free"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        third.try_wait().unwrap().is_none(),
        "the third process got a permit while the parent holds the only one"
    );
    assert_eq!(semaphore.held(), 1);
    drop(permit);
    let acquired = lines.next().map(Result::unwrap).unwrap_or_default();
    assert!(
        acquired.starts_with("acquired "),
        "the third process, after the parent's guard dropped: {acquired:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = third.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the third process hangs");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "the third process: {status:?}");
    assert_eq!(
        semaphore.available(),
        1,
        "the third process released its permit"
    );
}
