//! A forked child attaches as its own participant, and the parent's liveness lock does
//! not outlive the parent through descriptors the child inherited.

#![cfg(not(loom))]

use shmarena_engine::sync::Ordering;
use shmarena_engine::{Memory, OwnerId, Region};
use std::time::{Duration, Instant};

fn temp_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("shmarena-fork-{tag}-{}", std::process::id()))
}

/// A word of the region's arena used as a mailbox between the processes.
fn mailbox(region: &Region) -> &shmarena_engine::sync::AtomicU64 {
    let offset = region.header().arena_offset;
    region.memory().word(offset).expect("arena word")
}

fn fork() -> i32 {
    // SAFETY: the child only touches the region and exits with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    pid
}

fn exit_child(code: i32) -> ! {
    // SAFETY: ends the child without running the parent's destructors or test harness.
    unsafe { libc::_exit(code) }
}

fn wait(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &raw mut status, 0) };
    libc::WEXITSTATUS(status)
}

fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

// One test per file: forking is only well defined from a process whose other threads are
// idle, and the harness runs a file's tests on parallel threads.
#[test]
fn forked_children_get_their_own_identity_and_do_not_keep_the_parent_alive() {
    let path = temp_path("identity");
    let _ = Region::unlink(&path);
    let region = Region::create(&path, 1 << 20).unwrap();
    let parent = region.participant_id();

    // 1. A child using the inherited handle is a new participant; the parent stays alive.
    let child = fork();
    if child == 0 {
        let me = region.participant_id();
        let ok = me != parent && region.is_alive(parent) && region.is_alive(me);
        mailbox(&region).store(u64::from(me.bits()), Ordering::SeqCst);
        exit_child(i32::from(!ok));
    }
    assert_eq!(wait(child), 0, "the child saw itself as its parent");
    let child_id = OwnerId::from_bits(mailbox(&region).load(Ordering::SeqCst) as u32).unwrap();
    assert_ne!(child_id, parent);
    assert!(
        !region.is_alive(child_id),
        "an exited child still looks alive"
    );
    assert!(region.is_alive(parent));
    assert_eq!(
        region.participant_id(),
        parent,
        "the parent's identity changed"
    );

    // 2. A middle process attaches, forks a grandchild that never touches the region,
    //    and exits: it must look dead while the grandchild lives on.
    mailbox(&region).store(0, Ordering::SeqCst);
    let middle = fork();
    if middle == 0 {
        let mine = Region::open(&path).unwrap();
        let grandchild = fork();
        if grandchild == 0 {
            std::thread::sleep(Duration::from_secs(3));
            exit_child(0);
        }
        mailbox(&mine).store(
            u64::from(mine.participant_id().bits()) | (u64::from(grandchild as u32) << 32),
            Ordering::SeqCst,
        );
        exit_child(0);
    }
    assert_eq!(wait(middle), 0);
    let word = mailbox(&region).load(Ordering::SeqCst);
    let middle_id = OwnerId::from_bits(word as u32).unwrap();
    let grandchild = (word >> 32) as i32;
    assert!(
        wait_for(|| !region.is_alive(middle_id)),
        "a dead process looked alive through its child's inherited descriptor"
    );
    // SAFETY: signal 0 only checks that the grandchild exists.
    let exists = unsafe { libc::kill(grandchild, 0) };
    assert_eq!(exists, 0, "the grandchild ended too early");
    drop(region);
    Region::unlink(&path).unwrap();
}
