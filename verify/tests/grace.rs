//! Grace periods across real processes: readers pinned while they follow a shared pointer
//! never read an arena block another process freed or reused; a frozen pinned reader
//! holds reclamation back (never anyone's progress) and a killed one does not.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::{run_ok, spawn, TempRegion};
use shmarena::{Region, RegionExt};

#[test]
fn pinned_readers_never_read_a_block_freed_or_reused_under_them() {
    let temp = TempRegion::new("grace-churn");
    let region = Region::create(&temp.path, 8 << 20).unwrap();
    region.value::<u64>("grace-pointer", 0).unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| spawn(&["grace-read", temp.arg(), "1500"]))
        .collect();
    // Two churners: one's scan may race the other's retirement.
    let churners: Vec<_> = (0..2)
        .map(|_| spawn(&["grace-churn", temp.arg(), "10000"]))
        .collect();
    let mut freed = 0u64;
    for churner in churners {
        let output = churner.wait_with_output().unwrap();
        assert!(output.status.success(), "a churner failed");
        freed += String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse::<u64>()
            .unwrap();
    }
    for reader in readers {
        let output = reader.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "a reader read a freed or reused block"
        );
        let reads: u64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap();
        assert!(reads > 0);
    }
    // Every block unlinked (all but the first swap's) was freed once its readers left.
    assert_eq!(freed, 2 * 10_000 - 1);
}

#[test]
fn a_frozen_pinned_reader_holds_reclamation_back_and_a_killed_one_does_not() {
    let temp = TempRegion::new("grace-frozen");
    let region = Region::create(&temp.path, 8 << 20).unwrap();
    let pointer = region.value::<u64>("grace-pointer", 0).unwrap();
    let block = region.arena().alloc(64).unwrap().offset;
    pointer.store(block);

    let mut reader = spawn(&["grace-hold", temp.arg()]);
    let mut line = String::new();
    BufReader::new(reader.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("pinned {block}"));
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(reader.id() as i32, libc::SIGSTOP) }, 0);

    // Unlink the block the frozen reader is inside of, and retire it.
    pointer.store(region.arena().alloc(64).unwrap().offset);
    let retired = region.grace_epoch().unwrap();
    for _ in 0..100 {
        assert!(
            !region.grace_has_passed(retired).unwrap(),
            "the grace period passed under a frozen, pinned reader"
        );
    }
    // Others keep working meanwhile: the churn allocates, retires and finishes.
    run_ok(&["grace-churn", temp.arg(), "1000", "0"]);
    assert!(!region.grace_has_passed(retired).unwrap());

    // Resumed, the reader still finds its block intact; killed, it holds nothing back.
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(reader.id() as i32, libc::SIGCONT) }, 0);
    std::thread::sleep(Duration::from_millis(50));
    assert!(!region.grace_has_passed(retired).unwrap());
    reader.kill().unwrap();
    let status = reader.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the reader failed: {status}"
    );
    assert!(region.grace_has_passed(retired).unwrap());
}

/// Blocks waiting in the retire logs of every participant slot.
fn waiting(region: &Region) -> u64 {
    region
        .participants()
        .unwrap()
        .iter()
        .map(|p| p.retired)
        .sum::<u64>()
}

/// Has a worker retire 100 blocks of 1000 bytes in `region` (at `temp`) while this
/// process's pin (returned) holds them back, then SIGKILLs it (`ending` "stay") or lets it
/// exit with them still waiting ("exit"). Also returns the arena's bytes in use before,
/// and the bytes of a retire log.
fn left_behind<'r>(
    temp: &TempRegion,
    region: &'r Region,
    ending: &str,
) -> (shmarena::engine::GracePin<'r>, u64, u64) {
    region.value::<u64>("grace-pointer", 0).unwrap();
    drop(region.pin().unwrap()); // this slot's pin stripes, before the count
    let before = region.arena().stats().unwrap();
    let log = shmarena::engine::retire_log::log_bytes(before.capacity);
    // Our pin holds every retirement back.
    let pin = region.pin().unwrap();
    let mut worker = spawn(&["grace-retire", temp.arg(), "100", "1000", ending]);
    let mut line = String::new();
    BufReader::new(worker.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "retired");
    if ending == "stay" {
        worker.kill().unwrap();
    }
    let status = worker.wait().unwrap();
    assert!(
        status.success() || status.signal() == Some(libc::SIGKILL),
        "{status}"
    );
    // A block of 1000 bytes takes 1 KiB; the slot's retire log holds the hundred.
    assert_eq!(
        region.arena().stats().unwrap().used,
        before.used + 100 * 1024 + log,
        "{ending}"
    );
    assert_eq!(waiting(region), 100, "{ending}");
    (pin, before.used, log)
}

#[test]
fn blocks_a_process_retired_and_left_behind_are_freed_by_the_next_holder_of_its_slot() {
    // "stay": killed while its blocks wait; "exit": gone with them still waiting.
    for ending in ["stay", "exit"] {
        let temp = TempRegion::new("grace-left-behind");
        let region = Region::create(&temp.path, 8 << 20).unwrap();
        let (pin, used_before, log) = left_behind(&temp, &region, ending);
        if ending == "stay" {
            let notes = region.verify();
            assert!(
                notes
                    .iter()
                    .any(|note| note.message.contains("100 retired blocks")),
                "{notes:?}"
            );
        }

        // The next process on the worker's slot takes its log over and frees them.
        drop(pin);
        let next = Region::open(&temp.path).unwrap();
        assert_eq!(
            next.arena().stats().unwrap().used,
            used_before + log,
            "{ending}: the worker's retired blocks were not given back"
        );
        assert_eq!(waiting(&region), 0, "{ending}");
    }
}

#[test]
fn blocks_a_process_retired_and_left_behind_are_freed_by_a_live_process_at_its_reclaim() {
    // As above, but no process takes the worker's slot: this process, on a slot of its
    // own, frees what the worker left once the grace period has passed.
    for ending in ["stay", "exit"] {
        let temp = TempRegion::new("grace-left-drained");
        let region = Region::create(&temp.path, 8 << 20).unwrap();
        let (pin, used_before, log) = left_behind(&temp, &region, ending);

        // Our pin still holds them back: a reclaim frees nothing yet.
        region.reclaim().unwrap();
        assert_eq!(waiting(&region), 100, "{ending}: freed under a pin");
        assert_eq!(
            region.arena().stats().unwrap().used,
            used_before + 100 * 1024 + log,
            "{ending}"
        );

        // Once it is dropped, each reclaim here frees up to DRAIN_LIMIT of them, and the
        // last gives the emptied log back.
        drop(pin);
        let limit = shmarena::engine::DRAIN_LIMIT as u64;
        let mut left = 100u64;
        while left > 0 {
            region.reclaim().unwrap();
            left = left.saturating_sub(limit);
            assert_eq!(waiting(&region), left, "{ending}");
        }
        assert_eq!(
            region.arena().stats().unwrap().used,
            used_before,
            "{ending}: the worker's retired blocks (or its log) were not given back"
        );
    }
}
