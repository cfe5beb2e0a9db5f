//! A grace pin belongs to the process that took it: a forked child that drops its
//! inherited copy gives back nothing, and its own pins count under its own slot.

#![cfg(not(loom))]

use shmarena_engine::Region;

// One test per file: forking is only well defined from a process whose other threads are
// idle, and the harness runs a file's tests on parallel threads.
#[test]
fn a_forked_child_dropping_an_inherited_pin_leaves_the_parents_pin_in_place() {
    let path = std::env::temp_dir().join(format!("shmarena-fork-pin-{}", std::process::id()));
    let _ = Region::unlink(&path);
    let region = Region::create(&path, 1 << 20).unwrap();
    let parent = region.participant_id();
    let pin = region.pin().unwrap();
    let retired = region.grace_epoch().unwrap();

    // SAFETY: the child only touches the region and exits with `_exit`.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        // The inherited pin is the parent's: dropping it here must not unpin the parent.
        drop(pin);
        // The child pins under a slot of its own.
        let code = match region.pin() {
            Ok(_own) if region.participant_id() != parent => 0,
            Ok(_) => 2,
            Err(_) => 3,
        };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(child, &raw mut status, 0) };
    assert!(
        libc::WIFEXITED(status),
        "the child did not exit: {status:#x}"
    );
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child could not pin under its own slot"
    );
    assert!(
        !region.grace_has_passed(retired).unwrap(),
        "the child's drop of an inherited pin unpinned the parent"
    );
    drop(pin);
    assert!(region.grace_has_passed(retired).unwrap());
    drop(region);
    let _ = Region::unlink(&path);
}
