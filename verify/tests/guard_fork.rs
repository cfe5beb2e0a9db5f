//! A forked child of a lock holder holds nothing: dropping the guards it inherited
//! releases nothing, so the parent stays the only holder while a third process waits
//! (issue 13, item 3).

mod common;

use std::io::{BufRead, BufReader};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use common::{exit_child, fork, spawn, wait_child as wait, TempRegion};
use shmarena::{Region, RegionExt, TryLockError};

/// The child's exit codes.
const CHILD_OK: i32 = 0;
const CHILD_READ_THE_DATA: i32 = 3;

// One test per file: forking is only well defined from a process whose other threads are
// idle, and the harness runs a file's tests on parallel threads.
#[test]
fn a_forked_child_dropping_inherited_guards_leaves_the_parent_the_only_holder() {
    let temp = TempRegion::new("guard-fork");
    let region = Region::create(&temp.path, 1 << 20).unwrap();
    let other = Region::open(&temp.path).unwrap(); // a second participant, for the RLock
    let mutex = region.mutex::<u64>("m", 0).unwrap();
    let rlock = region.rlock("r").unwrap();
    let their_rlock = other.rlock("r").unwrap();

    let mut guard = mutex.lock().unwrap();
    *guard = 1;
    let outer = rlock.lock().unwrap();
    let inner = rlock.lock().unwrap();
    let child = fork();
    if child == 0 {
        // The child holds none of these locks. Reading through the inherited guard must
        // panic; dropping the guards must release nothing.
        let read = std::panic::catch_unwind(AssertUnwindSafe(|| *guard)).is_ok();
        drop(inner);
        drop(outer);
        drop(guard);
        exit_child(if read { CHILD_READ_THE_DATA } else { CHILD_OK });
    }
    let child_exit = wait(child);

    // The parent is still inside: it holds the mutex, and a third process cannot take it.
    assert!(
        mutex.is_held(),
        "the child's drop of its inherited guard released the parent's lock"
    );
    let mut third = spawn(&["wait-mutex", temp.arg(), "m"]);
    let mut lines = BufReader::new(third.stdout.take().expect("piped stdout")).lines();
    // "waiting" comes only after the worker's try_lock failed (else it exits with an error).
    assert_eq!(
        lines.next().map(Result::unwrap).as_deref(),
        Some("waiting"),
        "the third process found the parent's lock free"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        third.try_wait().unwrap().is_none(),
        "the third process got the lock while the parent holds it"
    );
    assert!(mutex.is_held());
    *guard = 2;
    drop(guard);
    let acquired = lines.next().map(Result::unwrap).unwrap_or_default();
    assert!(
        acquired.starts_with("acquired ") && acquired.ends_with(" clean 2"),
        "the third process, after the parent's unlock: {acquired:?}"
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

    // The RLock is still held at depth two: each level's drop is the parent's own.
    assert!(matches!(
        their_rlock.try_lock(),
        Err(TryLockError::WouldBlock)
    ));
    drop(inner);
    assert!(
        matches!(their_rlock.try_lock(), Err(TryLockError::WouldBlock)),
        "the child's drops unwound the parent's recursion count"
    );
    drop(outer);
    drop(
        their_rlock
            .try_lock()
            .expect("free after the parent's last level"),
    );

    assert_eq!(
        child_exit, CHILD_OK,
        "the child could read the data through a guard it inherited"
    );
}
