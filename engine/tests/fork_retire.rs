//! A forked child inherits a copy of its parent's list of retired blocks and drops it:
//! the blocks are the parent's to free, and freeing them in both processes would put a
//! block on the arena's free list twice.

#![cfg(not(loom))]

use shmarena_engine::arena::size_class;
use shmarena_engine::Region;

// One test per file: forking is only well defined from a process whose other threads are
// idle, and the harness runs a file's tests on parallel threads.
#[test]
fn a_forked_child_never_frees_its_parents_retired_blocks() {
    let path = std::env::temp_dir().join(format!("shmarena-fork-retire-{}", std::process::id()));
    let _ = Region::unlink(&path);
    let region = Region::create(&path, 1 << 20).unwrap();
    let blob = region.store_blob(&[5; 200]).unwrap();
    let pin = region.pin().unwrap();
    region.retire_blob(blob).unwrap();
    assert_eq!(region.reclaim().unwrap(), 1);

    // SAFETY: the child only touches the region and exits with `_exit`.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        // The child's reclaim must leave the parent's block alone:
        // its list starts empty.
        let code = match region.reclaim() {
            Ok(0) => 0,
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
        "the child saw the parent's list"
    );
    let class = size_class(200).unwrap();
    assert!(
        !region
            .arena()
            .free_list(class)
            .unwrap()
            .contains(&blob.offset()),
        "the child freed the parent's block"
    );
    drop(pin);
    assert_eq!(region.reclaim().unwrap(), 0);
    let free = region.arena().free_list(class).unwrap();
    assert_eq!(free.iter().filter(|&&o| o == blob.offset()).count(), 1);
    drop(region);
    let _ = Region::unlink(&path);
}
