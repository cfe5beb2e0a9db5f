//! A forked child whose region descriptor still shares its parent's open file description
//! (it could open no description of its own) never sweeps retired participant slots: OFD
//! locks do not exclude one description from itself, so its sweep could run beside its
//! parent's on the same slot and free it under the parent's purge. It leaves them to a
//! process with a description of its own.
//!
//! The only test of its binary: it lowers the parent's descriptor limit around a fork.

#![cfg(not(loom))]

use shmarena_engine::layout::header;
use shmarena_engine::sync::Ordering;
use shmarena_engine::{Memory, OwnerId, Region, RegionOptions};

/// The lowest descriptor number not in use (what the next `open` would return).
fn lowest_free_descriptor() -> u64 {
    // SAFETY: opens and closes a descriptor of our own.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        assert!(fd >= 0, "open /dev/null");
        libc::close(fd);
        fd as u64
    }
}

#[test]
fn a_child_sharing_its_parents_file_description_does_not_sweep() {
    let path = std::env::temp_dir().join(format!("shmarena-fork-shared-{}", std::process::id()));
    let _ = Region::unlink(&path);
    let options = RegionOptions {
        participant_capacity: 4,
        ..RegionOptions::default()
    };
    let region = Region::create_with(&path, 1 << 20, &options).unwrap();
    region
        .memory()
        .word(header::GENERATION_LIMIT)
        .unwrap()
        .store(1, Ordering::SeqCst);
    // Slot 1's only generation is used once; the next open retires it.
    drop(Region::open(&path).unwrap());
    drop(Region::open(&path).unwrap());
    assert!(region.has_retired_participants());

    // The child inherits a descriptor limit that lets it open nothing: neither the fork
    // handler nor its re-attach can give it a description of its own.
    let mut saved = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads our own limit into a valid struct.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut saved) };
    assert_eq!(read, 0);
    let tight = libc::rlimit {
        rlim_cur: lowest_free_descriptor(),
        rlim_max: saved.rlim_max,
    };
    // SAFETY: sets our own soft limit (restored in the parent right after the fork); the
    // child only uses the region and leaves with `_exit`.
    let child = unsafe {
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &raw const tight), 0);
        let child = libc::fork();
        if child != 0 {
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &raw const saved), 0);
        }
        child
    };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        let code = if region.participant_id() == OwnerId::ORPHAN {
            match region.sweep_retired_participants(|_| Ok(())) {
                Ok(0) if region.has_retired_participants() => 0,
                Ok(swept) => 10 + swept.min(100) as i32,
                Err(_) => 2,
            }
        } else {
            3 // it attached through its parent's description
        };
        // SAFETY: ends the child without the harness.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(child, &raw mut status, 0) }, child);
    assert!(libc::WIFEXITED(status), "child status {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "3: attached as itself; 1x: swept x slots through its parent's description"
    );
    // The parent, with a description of its own, sweeps it.
    assert!(region.has_retired_participants());
    assert_eq!(region.sweep_retired_participants(|_| Ok(())).unwrap(), 1);
    drop(region);
    Region::unlink(&path).unwrap();
}
