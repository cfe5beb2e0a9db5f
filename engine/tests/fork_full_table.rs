//! A forked child that finds no free participant slot acts as `OwnerId::ORPHAN` (taken for
//! alive by everyone), never as its parent, and dropping its handle leaves the parent's
//! slot alone.

#![cfg(not(loom))]

use shmarena_engine::sync::Ordering;
use shmarena_engine::{Memory, OwnerId, Region, RegionOptions};

#[test]
fn a_child_without_a_free_slot_is_an_orphan_not_its_parent() {
    let path = std::env::temp_dir().join(format!("shmarena-fork-full-{}", std::process::id()));
    let _ = Region::unlink(&path);
    let options = RegionOptions {
        participant_capacity: 2,
        ..RegionOptions::default()
    };
    let region = Region::create_with(&path, 1 << 20, &options).unwrap();
    let parent = region.participant_id();
    let other = Region::open(&path).unwrap(); // the second slot: the table is full
    let mailbox = region.memory().word(region.header().arena_offset).unwrap();
    // SAFETY: the child only touches the region and leaves with `_exit`.
    let child = unsafe { libc::fork() };
    assert!(child >= 0);
    if child == 0 {
        let me = region.participant_id();
        mailbox.store(u64::from(me.bits()), Ordering::SeqCst);
        drop(region); // must not detach the parent's slot
                      // SAFETY: ends the child without the harness.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(child, &raw mut status, 0) };
    assert_eq!(libc::WEXITSTATUS(status), 0);
    let seen = OwnerId::from_bits(mailbox.load(Ordering::SeqCst) as u32).unwrap();
    assert_eq!(seen, OwnerId::ORPHAN, "the child acted under another id");
    // Its death cannot be seen, so what it holds is never taken over from it.
    assert!(other.is_alive(OwnerId::ORPHAN), "the orphan id looks dead");
    assert!(
        other.is_alive(parent),
        "the live parent looks dead after its child's drop"
    );
    drop(other);
    drop(region);
    Region::unlink(&path).unwrap();
}
