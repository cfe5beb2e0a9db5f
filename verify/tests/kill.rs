//! Processes killed with SIGKILL at random moments and at named failpoints: the region
//! stays valid, survivors finish, and totals match acknowledged work.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{run_ok, spawn, spawn_with_env, TempRegion};
use shmarena::{Error, Region, RegionExt};

const WORKERS: usize = 3;

/// Starts an `acked` worker and waits until it has attached and is incrementing.
fn start_acked(temp: &TempRegion, kind: &str, index: usize) -> Child {
    let mut child = spawn(&["acked", temp.arg(), kind, &index.to_string()]);
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

fn kill(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

/// Kills and restarts workers at pseudo-random moments, then checks
/// `acknowledged <= total <= acknowledged + kills` (an increment done but not yet
/// acknowledged when its process died is the only slack).
fn killed_incrementers_keep_totals_within_acknowledged(kind: &str) {
    let temp = TempRegion::new(&format!("acked-{kind}"));
    let region = Region::create(&temp.path, 1 << 20).unwrap();
    let acks = region.array_zeroed::<u64>("acks", WORKERS).unwrap();
    let mut workers: Vec<Child> = (0..WORKERS).map(|i| start_acked(&temp, kind, i)).collect();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut kills = 0u64;
    for _ in 0..24 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(500 + seed % 8000));
        let victim = (seed >> 32) as usize % WORKERS;
        kill(&mut workers[victim]);
        kills += 1;
        workers[victim] = start_acked(&temp, kind, victim);
    }
    for worker in &mut workers {
        kill(worker);
        kills += 1;
    }
    let acknowledged: u64 = acks.snapshot().iter().sum();
    let total = match kind {
        "value" => region.open_value::<u64>("total").unwrap().load(),
        _ => region.sharded_counter("total").unwrap().sum() as u64,
    };
    assert!(acknowledged > 0, "the workers made progress");
    assert!(
        (acknowledged..=acknowledged + kills).contains(&total),
        "total {total} outside acknowledged {acknowledged} + up to {kills} in flight"
    );
    // The region still validates and opens in a fresh process.
    run_ok(&["create", temp.arg(), "after", "3"]);
}

#[test]
fn sigkill_at_random_points_while_incrementing_a_value_loses_no_acknowledged_increment() {
    killed_incrementers_keep_totals_within_acknowledged("value");
}

#[test]
fn sigkill_at_random_points_while_incrementing_a_sharded_counter_loses_no_acknowledged_increment() {
    killed_incrementers_keep_totals_within_acknowledged("sharded");
}

/// Runs `args` with a SIGKILL at the `nth` pass of `failpoint` and checks it died there.
fn die_at(failpoint: &str, nth: u32, args: &[&str]) {
    let spec = format!("{failpoint}:{nth}");
    let status = spawn_with_env(args, &[("SHMARENA_KILL_AT", &spec)])
        .wait()
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "worker {args:?} should die at {spec}"
    );
}

fn assert_arena_consistent(region: &Region) {
    let arena = region.arena();
    for class in 0..shmarena::engine::layout::SIZE_CLASSES {
        arena.free_list(class).expect("free lists stay walkable");
    }
    // Allocation still works after the deaths.
    let block = arena.alloc(100).unwrap();
    arena.free(block.offset, 100).unwrap();
}

#[test]
fn sigkill_inside_allocation_leaves_free_lists_valid_and_survivors_finish() {
    let temp = TempRegion::new("kill-alloc");
    let region = Region::create(&temp.path, 4 << 20).unwrap();
    for (failpoint, nth) in [
        ("arena::after_alloc", 1),
        ("arena::after_alloc", 57),
        ("arena::after_pop", 3),
    ] {
        die_at(failpoint, nth, &["alloc-churn", temp.arg(), "1000"]);
        assert_arena_consistent(&region);
        run_ok(&["alloc-churn", temp.arg(), "2000"]);
    }
    // Random kills of concurrent churners.
    for round in 0..10u64 {
        let mut churners: Vec<Child> = (0..2)
            .map(|_| spawn(&["alloc-churn", temp.arg(), "1000000"]))
            .collect();
        std::thread::sleep(Duration::from_millis(2 + round * 3));
        for churner in &mut churners {
            kill(churner);
        }
        assert_arena_consistent(&region);
    }
    run_ok(&["alloc-churn", temp.arg(), "5000"]);
}

#[test]
fn sigkill_inside_catalog_publication_is_recovered_by_the_next_creator() {
    for (round, failpoint) in [
        "catalog::after_claim",
        "catalog::before_ready",
        "arena::after_alloc",
    ]
    .iter()
    .enumerate()
    {
        let temp = TempRegion::new(&format!("kill-publish-{round}"));
        let region = Region::create(&temp.path, 1 << 20).unwrap();
        // Dies while publishing its third object.
        die_at(failpoint, 3, &["create", temp.arg(), "obj", "5"]);
        let started = Instant::now();
        // A survivor creates (or finds) every object, the half-built one included.
        run_ok(&["create", temp.arg(), "obj", "5"]);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "recovery must not wait out a timeout"
        );
        for i in 0..5u64 {
            assert_eq!(
                region.open_value::<u64>(&format!("obj{i}")).unwrap().load(),
                i
            );
        }
        assert_eq!(
            region.objects().unwrap().iter().filter(|e| e.ready).count(),
            5
        );
    }
}

#[test]
fn sigkill_while_attaching_frees_the_participant_slot() {
    let temp = TempRegion::new("kill-attach");
    let options = shmarena::RegionOptions {
        participant_capacity: 2,
        ..Default::default()
    };
    let region = Region::create_with(&temp.path, 1 << 20, &options).unwrap();
    // One slot is ours; the worker dies holding the other one mid-attach, many times over.
    for _ in 0..5 {
        die_at(
            "participants::after_lock",
            1,
            &["create", temp.arg(), "p", "1"],
        );
        run_ok(&["create", temp.arg(), "p", "1"]);
    }
    let held_by_others = region
        .participants()
        .unwrap()
        .iter()
        .filter(|p| p.slot != 0 && p.alive)
        .count();
    assert_eq!(held_by_others, 0, "no slot stays held by a dead process");
}

#[test]
fn a_creator_killed_before_linking_its_region_leaves_no_half_built_region() {
    let temp = TempRegion::new("kill-creator");
    for failpoint in ["region::before_ready", "region::before_link"] {
        // `race` creates the region when it does not exist; it dies while building it.
        let status = spawn_with_env(
            &["race", temp.arg(), "x"],
            &[("SHMARENA_KILL_AT", failpoint)],
        )
        .wait()
        .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // The name never pointed at the half-built region.
        assert!(matches!(
            Region::open(&temp.path),
            Err(Error::RegionNotFound(_))
        ));
        if failpoint == "region::before_ready" {
            // The leftover is a half-built region of ours whose creator is dead: so says an
            // opener of it, at once.
            let staging = staging_files(&temp);
            let started = Instant::now();
            let error = Region::open(&staging[0]).expect_err("half-built");
            assert!(
                matches!(
                    error,
                    Error::Initializing {
                        creator_dead: true,
                        ..
                    }
                ),
                "{error:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(1));
        }
        remove_staging_files(&temp);
    }
    // The next creator succeeds at once.
    let started = Instant::now();
    let region = Region::open_or_create(&temp.path, 1 << 20).unwrap();
    assert!(region.is_creator());
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// An empty file nobody initializes was never a region of ours (a creator shows its
/// region under the name only once READY): the opener is told at once that it is no region.
#[test]
fn an_opener_of_an_empty_file_nobody_initializes_is_told_at_once_it_is_no_region() {
    let temp = TempRegion::new("zero-file");
    std::fs::write(&temp.path, b"").unwrap();
    let started = Instant::now();
    match Region::open(&temp.path) {
        Err(Error::NotARegion { what, .. }) => {
            assert!(what.contains("no process is initializing it"), "{what}");
        }
        other => panic!("expected NotARegion, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no need to wait out the timeout"
    );
}

/// The `.<name>.creating-*` files a killed creator left beside the region name.
fn staging_files(temp: &TempRegion) -> Vec<std::path::PathBuf> {
    let name = temp
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let prefix = format!(".{name}.creating-");
    std::fs::read_dir(temp.path.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect()
}

/// Removes the `.<name>.creating-*` files a killed creator left beside the region name.
fn remove_staging_files(temp: &TempRegion) {
    let found = staging_files(temp);
    assert_eq!(
        found.len(),
        1,
        "the killed creator left exactly its staging file"
    );
    for path in found {
        std::fs::remove_file(path).unwrap();
    }
}
