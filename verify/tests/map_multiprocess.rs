//! Many processes on one `HashMap`: disjoint and overlapping inserts, a word count with
//! exact totals, SIGKILL inside insert, remove and update at every failpoint (survivors
//! finish, no duplicate keys, every acknowledged insert present, len consistent), and
//! SIGSTOP at each failpoint while the other processes' operations complete.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::{run_ok, spawn, spawn_with_env, TempRegion};
use shmarena::{HashMap, Region, RegionExt};

const CAPACITY: u64 = 1 << 16;

struct Maps {
    region: Region,
    narrow: HashMap<u64, u64>,
    wide: HashMap<u64, [u64; 4]>,
}

fn maps(temp: &TempRegion) -> Maps {
    let region = Region::create(&temp.path, 16 << 20).unwrap();
    region.array_zeroed::<u64>("acked", 16).unwrap();
    Maps {
        narrow: region.hash_map("m", CAPACITY).unwrap(),
        wide: region.hash_map("w", CAPACITY).unwrap(),
        region,
    }
}

fn acked(region: &Region, worker: usize) -> u64 {
    region
        .open_array::<u64>("acked")
        .unwrap()
        .at(worker)
        .unwrap()
        .load()
}

/// Every key appears once, and `len` is within one per death of the contents (exact after
/// the repair a death between a linearization point and its count update needs).
fn assert_consistent(map: &HashMap<u64, u64>, deaths: usize) -> Vec<(u64, u64)> {
    let mut entries: Vec<(u64, u64)> = map.iter().map(Result::unwrap).collect();
    entries.sort_unstable();
    let keys = entries.len();
    let mut distinct: Vec<u64> = entries.iter().map(|(k, _)| *k).collect();
    distinct.dedup();
    assert_eq!(distinct.len(), keys, "a key appears in two slots");
    assert!(
        map.len().abs_diff(keys) <= deaths,
        "len {} for {keys} keys",
        map.len()
    );
    assert_eq!(map.recount(), keys);
    assert_eq!(map.len(), keys);
    entries
}

fn no_check_errors(region: &Region) {
    let errors: Vec<_> = shmarena::check::check_region(region)
        .into_iter()
        .filter(|f| f.severity == shmarena::engine::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn disjoint_inserts_from_four_processes_all_land() {
    let temp = TempRegion::new("map-disjoint");
    let m = maps(&temp);
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let (from, to) = ((w * 5000).to_string(), ((w + 1) * 5000).to_string());
            spawn(&["map-insert", temp.arg(), &w.to_string(), &from, &to])
        })
        .collect();
    for worker in workers {
        assert!(worker.wait_with_output().unwrap().status.success());
    }
    assert_eq!(m.narrow.len(), 20_000);
    let entries = assert_consistent(&m.narrow, 0);
    for (key, value) in entries {
        assert_eq!(value, (key / 5000) << 32 | key);
    }
    no_check_errors(&m.region);
}

#[test]
fn overlapping_inserts_leave_each_key_once() {
    let temp = TempRegion::new("map-overlap");
    let m = maps(&temp);
    let workers: Vec<_> = (0..4u64)
        .map(|w| spawn(&["map-try-insert", temp.arg(), &w.to_string(), "0", "5000"]))
        .collect();
    let fresh: u64 = workers
        .into_iter()
        .map(|worker| {
            let output = worker.wait_with_output().unwrap();
            assert!(output.status.success());
            String::from_utf8(output.stdout)
                .unwrap()
                .trim()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(fresh, 5000, "each key inserted fresh exactly once");
    let entries = assert_consistent(&m.narrow, 0);
    assert_eq!(entries.len(), 5000);
    for (key, value) in entries {
        assert_eq!(value & 0xffff_ffff, key);
    }
    no_check_errors(&m.region);
}

#[test]
fn word_count_from_four_processes_is_exact() {
    let temp = TempRegion::new("map-count");
    let m = maps(&temp);
    let workers: Vec<_> = (0..4)
        .map(|_| spawn(&["map-count", temp.arg(), "20000", "100"]))
        .collect();
    for worker in workers {
        assert!(worker.wait_with_output().unwrap().status.success());
    }
    for key in 0..100 {
        assert_eq!(m.narrow.get(&key).unwrap(), Some(800), "key {key}");
    }
    assert_eq!(m.narrow.len(), 100);
}

/// Insert, remove and update failpoints, with the command that passes them.
const KILL_POINTS: &[(&str, &str)] = &[
    ("hash_map::insert_after_claim", "map-insert"),
    ("hash_map::insert_before_publish", "map-insert"),
    ("hash_map::insert_before_settle", "map-insert"),
    ("hash_map::promote_before_count", "map-insert"),
    ("hash_map::remove_before_count", "map-remove"),
    ("hash_map::remove_before_finish", "map-remove"),
    ("hash_map::update_before_publish", "map-insert"),
];

/// Fills what the command at `point` works on (values to update, keys to remove) and
/// starts worker 1 on keys 0..2000 with `signal_at` (`SHMARENA_KILL_AT` or `_STOP_AT`) set to
/// the point's `nth` pass. Returns the worker and whether the point is in a wide update.
fn start_at_failpoint(
    temp: &TempRegion,
    point: &str,
    command: &str,
    signal_at: &str,
    nth: u32,
) -> (std::process::Child, bool) {
    let wide = point.contains("update");
    if wide {
        // Values to update: the stopped or dead writer replaces one of these.
        run_ok(&["map-insert", temp.arg(), "3", "0", "2000", "wide"]);
    }
    if command == "map-remove" {
        run_ok(&["map-insert", temp.arg(), "3", "0", "2000"]);
    }
    let mut args = vec![command, temp.arg(), "1", "0", "2000"];
    if wide {
        args.push("wide");
    }
    let child = spawn_with_env(&args, &[(signal_at, &format!("{point}:{nth}"))]);
    (child, wide)
}

#[test]
fn kills_inside_insert_remove_and_update_leave_the_map_consistent() {
    for (n, (point, command)) in KILL_POINTS.iter().enumerate() {
        let temp = TempRegion::new(&format!("map-kill-{n}"));
        let m = maps(&temp);
        // Dies the 700th time it passes the point; a survivor works the same keys at once.
        let (dying, wide) = start_at_failpoint(&temp, point, command, "SHMARENA_KILL_AT", 700);
        let extra: Vec<&str> = if wide { vec!["wide"] } else { vec![] };
        let mut survivor_args = vec!["map-insert", temp.arg(), "2", "1000", "3000"];
        survivor_args.extend(&extra);
        let survivor = spawn(&survivor_args);
        let status = dying.wait_with_output().unwrap().status;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}");
        assert!(
            survivor.wait_with_output().unwrap().status.success(),
            "{point}"
        );
        let dead_acked = acked(&m.region, 1);
        assert!(
            dead_acked >= 699,
            "{point}: the dead worker acked {dead_acked}"
        );
        // A later process redoes the dead worker's range: its in-flight slot is recovered.
        let mut redo = vec![*command, temp.arg(), "4", "0", "2000"];
        redo.extend(&extra);
        run_ok(&redo);
        if wide {
            for key in 0..3000u64 {
                let value = m.wide.get(&key).unwrap().unwrap();
                assert!(
                    value.iter().all(|w| *w == value[0]),
                    "{point}: torn {value:?}"
                );
                assert_eq!(value[0] & 0xffff_ffff, key);
            }
            continue;
        }
        let entries = assert_consistent(&m.narrow, 1);
        if *command == "map-remove" {
            // Removed 0..2000 (twice), the survivor inserted 1000..3000.
            let keys: Vec<u64> = entries.iter().map(|(k, _)| *k).collect();
            assert!(keys.iter().all(|k| (1000..3000).contains(k)), "{point}");
            assert!(
                (2000..3000).all(|k| keys.binary_search(&k).is_ok()),
                "{point}"
            );
        } else {
            // Every key of 0..3000 acknowledged by someone is present, once.
            assert_eq!(entries.len(), 3000, "{point}");
            for (key, value) in entries {
                assert_eq!(value & 0xffff_ffff, key, "{point}");
            }
        }
        no_check_errors(&m.region);
    }
}

#[test]
fn a_process_frozen_at_any_failpoint_does_not_block_the_others() {
    for (n, (point, command)) in KILL_POINTS.iter().enumerate() {
        let temp = TempRegion::new(&format!("map-stop-{n}"));
        let m = maps(&temp);
        let (frozen, wide) = start_at_failpoint(&temp, point, command, "SHMARENA_STOP_AT", 500);
        // Wait until it is stopped at the failpoint.
        let pid = frozen.id() as i32;
        let stopped = (0..2000).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.split(' ').nth(2) == Some("T"))
        });
        assert!(stopped, "{point}: the worker never stopped");
        let frozen_key = acked(&m.region, 1);
        // Others work on the same keys (narrow values: nobody waits) or, for a wide value
        // whose writer is frozen, read it (readers never wait) and write every other key.
        if wide {
            let output = run_ok(&["map-read", temp.arg(), "0", "3000"]);
            assert!(output.status.success());
            let before = frozen_key.to_string();
            run_ok(&["map-insert", temp.arg(), "2", "0", &before, "wide"]);
        } else {
            run_ok(&["map-insert", temp.arg(), "2", "0", "3000"]);
            run_ok(&["map-read", temp.arg(), "0", "3000"]);
            run_ok(&["map-remove", temp.arg(), "2", "2500", "3000"]);
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        assert!(
            frozen.wait_with_output().unwrap().status.success(),
            "{point}"
        );
        if !wide {
            assert_consistent(&m.narrow, 0);
        }
        no_check_errors(&m.region);
    }
}

/// Issue: an insert killed after publishing its copy (before settling it) must take effect
/// before its death or never. Every later operation agrees on which: a lookup, a
/// `contains_key`, an iteration and a later insert of the same key by a live process.
#[test]
fn an_insert_killed_before_settling_is_done_or_never_for_every_later_operation() {
    for observer in ["get", "contains_key", "iter", "remove"] {
        let temp = TempRegion::new(&format!("map-dead-insert-{observer}"));
        let m = maps(&temp);
        let dying = spawn_with_env(
            &["map-try-insert", temp.arg(), "1", "7", "8"],
            &[("SHMARENA_KILL_AT", "hash_map::insert_before_settle:1")],
        );
        let status = dying.wait_with_output().unwrap().status;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{observer}");
        let dead_value = 1 << 32 | 7;
        // What the first observer after the death sees decides, once and for all.
        let seen = match observer {
            "get" => m.narrow.get(&7).unwrap(),
            "contains_key" => m.narrow.contains_key(&7).unwrap().then_some(dead_value),
            "iter" => m
                .narrow
                .iter()
                .map(Result::unwrap)
                .find(|(k, _)| *k == 7)
                .map(|e| e.1),
            _ => m.narrow.remove(&7).unwrap(),
        };
        assert!(
            seen.is_none() || seen == Some(dead_value),
            "{observer}: {seen:?}"
        );
        if observer == "remove" {
            // Removed (if it was done): absent for good, no live writer in between.
            assert_eq!(m.narrow.get(&7).unwrap(), None, "{observer}");
            assert_eq!(m.narrow.try_insert(7, 222).unwrap(), None, "{observer}");
            assert_eq!(m.narrow.get(&7).unwrap(), Some(222), "{observer}");
            continue;
        }
        // The same answer again, and then a live insert of the key agrees with it.
        assert_eq!(m.narrow.get(&7).unwrap(), seen, "{observer}");
        assert_eq!(m.narrow.try_insert(7, 222).unwrap(), seen, "{observer}");
        assert_eq!(
            m.narrow.get(&7).unwrap(),
            Some(seen.unwrap_or(222)),
            "{observer}"
        );
        assert_consistent(&m.narrow, 1);
        no_check_errors(&m.region);
    }
}

/// The map "g" the growth commands use, created here with 16 slots, and the reader's stop
/// flag.
fn grown_map(temp: &TempRegion, region_size: u64) -> (Region, HashMap<u64, u64>) {
    let region = Region::create(&temp.path, region_size).unwrap();
    region.array_zeroed::<u64>("acked", 16).unwrap();
    region.value::<u64>("stop", 0).unwrap();
    let map = region.hash_map("g", 16).unwrap();
    (region, map)
}

/// Every key of `0..keys` present once, with a value some worker wrote for it; `len` exact
/// after a recount.
fn assert_all_present(map: &HashMap<u64, u64>, keys: u64) {
    let mut entries: Vec<(u64, u64)> = map.iter().map(Result::unwrap).collect();
    entries.sort_unstable();
    assert_eq!(entries.len() as u64, keys, "entries");
    for (i, (key, value)) in entries.iter().enumerate() {
        assert_eq!(*key, i as u64, "key {i} missing or duplicated");
        assert_eq!(value & 0xffff_ffff, *key);
    }
    assert_eq!(map.recount() as u64, keys);
    assert_eq!(map.len() as u64, keys);
}

/// A map created with 16 slots takes a million inserts from two processes at once while a
/// third reads (a key once seen never disappears): every key present, `len` exact.
#[test]
fn a_map_created_with_16_slots_takes_a_million_inserts_from_two_processes() {
    const KEYS: u64 = 1_000_000;
    let temp = TempRegion::new("map-grow");
    let (region, map) = grown_map(&temp, 512 << 20);
    let reader = spawn(&["map-grow-read", temp.arg(), "0", &(KEYS / 50).to_string()]);
    let half = (KEYS / 2).to_string();
    let writers = [
        spawn(&["map-grow-insert", temp.arg(), "1", "0", &half]),
        spawn(&["map-grow-insert", temp.arg(), "2", &half, &KEYS.to_string()]),
    ];
    for writer in writers {
        let output = writer.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    region.open_value::<u64>("stop").unwrap().store(1);
    let output = reader.wait_with_output().unwrap();
    assert!(output.status.success(), "reader: {output:?}");
    assert!(map.capacity() as u64 >= KEYS);
    assert_all_present(&map, KEYS);
    no_check_errors(&region);
}

/// Six processes fill a map created with 16 slots at once, each slow between making the
/// next table and linking it, in a region with room for the map's tables but not for six
/// copies of the next one: one process makes each table while the others wait or walk on,
/// so no insert runs out of memory, and every key is there once.
#[test]
fn processes_that_fill_a_table_together_make_one_next_table() {
    const KEYS: u64 = 300_000;
    const WRITERS: u64 = 6;
    let temp = TempRegion::new("map-grow-together");
    let (region, map) = grown_map(&temp, 96 << 20);
    let share = KEYS / WRITERS;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            spawn_with_env(
                &[
                    "map-grow-insert",
                    temp.arg(),
                    &(w + 1).to_string(),
                    &(w * share).to_string(),
                    &((w + 1) * share).to_string(),
                ],
                &[("SHMARENA_SLEEP_AT", "hash_map::grow_before_link:3")],
            )
        })
        .collect();
    for writer in writers {
        let output = writer.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    assert_all_present(&map, KEYS);
    no_check_errors(&region);
}

/// Waits until process `pid` is stopped (at the failpoint `point`).
fn wait_until_stopped(pid: i32, point: &str) {
    let stopped = (0..2000).any(|_| {
        std::thread::sleep(Duration::from_millis(5));
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.split(' ').nth(2) == Some("T"))
    });
    assert!(stopped, "{point}: the worker never stopped");
}

/// Where a process can die or freeze inside growth.
const GROWTH_POINTS: &[&str] = &[
    "hash_map::grow_between_blocks",
    "hash_map::grow_before_link",
    "hash_map::migrate_before_commit",
    "hash_map::migrate_before_publish",
    "hash_map::migrate_before_chunk_done",
    "hash_map::migrate_before_retire",
];

/// A writer SIGKILLed at each point of the growth: the survivor goes on growing the map
/// (finishing the migration the dead one left), a later process redoes the dead one's
/// keys, and every key is there once. The dying writer runs alone until it dies, so that
/// it, not the survivor, is the one that reaches the point (growth happens a dozen times).
#[test]
fn writers_killed_during_growth_lose_nothing_and_duplicate_nothing() {
    const KEYS: u64 = 20_000;
    for (n, point) in GROWTH_POINTS.iter().enumerate() {
        let temp = TempRegion::new(&format!("map-grow-kill-{n}"));
        let (region, map) = grown_map(&temp, 64 << 20);
        let half = (KEYS / 2).to_string();
        // Dies the 3rd time it passes the point.
        let dying = spawn_with_env(
            &["map-grow-insert", temp.arg(), "1", "0", &half],
            &[("SHMARENA_KILL_AT", &format!("{point}:3"))],
        );
        let status = dying.wait_with_output().unwrap().status;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}");
        let survivor = spawn(&["map-grow-insert", temp.arg(), "2", &half, &KEYS.to_string()]);
        let output = survivor.wait_with_output().unwrap();
        assert!(output.status.success(), "{point}: {output:?}");
        // Every key the dead worker acknowledged is in; a later process redoes its range.
        let dead_acked = acked(&region, 1);
        for key in 0..dead_acked {
            assert!(map.get(&key).unwrap().is_some(), "{point}: acked key {key}");
        }
        run_ok(&["map-grow-insert", temp.arg(), "3", "0", &half]);
        assert_all_present(&map, KEYS);
        no_check_errors(&region);
    }
}

/// Asserts that `used_after(point)`, the bytes in use once a writer died at `point`, is
/// the same for a death with a block of the next table taken (or both, the table made
/// and not linked) as for a death just before it took any (`what` names the moment).
fn assert_same_as_a_death_before_making(what: &str, used_after: impl Fn(&str) -> u64) {
    let control = used_after("hash_map::grow_before_make");
    for point in [
        "hash_map::grow_between_blocks",
        "hash_map::grow_before_link",
    ] {
        assert_eq!(used_after(point), control, "bytes in use {what} at {point}");
    }
}

/// A writer SIGKILLed while it makes the next table (a block of it taken, or both and
/// the table made, not yet linked): the process that grows the map next gives the dead
/// writer's blocks back, so the region ends with the bytes in use of a run whose writer
/// died just before it took any.
#[test]
fn a_writer_killed_while_making_the_next_table_leaks_nothing() {
    let used_after_death_at = |point: &str| {
        let temp = TempRegion::new(&format!("map-grow-leak-{}", point.replace("::", "-")));
        let (region, map) = grown_map(&temp, 64 << 20);
        // Dies in the map's first growth (16 -> 32 slots).
        let dying = spawn_with_env(
            &["map-grow-insert", temp.arg(), "1", "0", "1000"],
            &[("SHMARENA_KILL_AT", &format!("{point}:1"))],
        );
        let status = dying.wait_with_output().unwrap().status;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}");
        run_ok(&["map-grow-insert", temp.arg(), "2", "1000", "2000"]);
        run_ok(&["map-grow-insert", temp.arg(), "3", "0", "1000"]);
        assert_all_present(&map, 2000);
        no_check_errors(&region);
        region.reclaim().unwrap();
        region.arena_stats().unwrap().used
    };
    assert_same_as_a_death_before_making("after a death", used_after_death_at);
}

/// A writer SIGKILLed while it makes the next table, and the map never grown again: a
/// handle opening the map gives the dead writer's blocks back, so the bytes in use right
/// after the open are those of a writer that died before it took any. A check of the map
/// gives nothing back (it writes nothing).
#[test]
fn a_map_opened_after_its_maker_died_gives_the_unlinked_table_back() {
    let used_after_open = |point: &str| {
        let temp = TempRegion::new(&format!("map-open-leak-{}", point.replace("::", "-")));
        let (region, _map) = grown_map(&temp, 64 << 20);
        // This process's pin stripes made now, so that the check's pin takes no memory.
        drop(region.pin().unwrap());
        let dying = spawn_with_env(
            &["map-grow-insert", temp.arg(), "1", "0", "1000"],
            &[("SHMARENA_KILL_AT", &format!("{point}:1"))],
        );
        let status = dying.wait_with_output().unwrap().status;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}");
        let before_check = region.arena_stats().unwrap().used;
        no_check_errors(&region);
        assert_eq!(
            region.arena_stats().unwrap().used,
            before_check,
            "{point}: a check gave something back"
        );
        let _opened = HashMap::<u64, u64>::open(&region, "g").unwrap();
        region.arena_stats().unwrap().used
    };
    assert_same_as_a_death_before_making("after an open that followed a death", used_after_open);
}

/// A maker frozen (alive) between making the next table and linking it: a handle opening
/// the map meanwhile gives none of its blocks back, and the maker, resumed, links its
/// table and finishes; every key is there and the region checks clean.
#[test]
fn a_map_opened_while_its_maker_is_frozen_leaves_the_makers_table_alone() {
    let temp = TempRegion::new("map-open-frozen-maker");
    let (region, map) = grown_map(&temp, 64 << 20);
    // This process's pin stripes made now, so that no pin below takes memory.
    drop(region.pin().unwrap());
    let frozen = spawn_with_env(
        &["map-grow-insert", temp.arg(), "1", "0", "1000"],
        &[("SHMARENA_STOP_AT", "hash_map::grow_before_link:1")],
    );
    let pid = frozen.id() as i32;
    wait_until_stopped(pid, "hash_map::grow_before_link");
    let before = region.arena_stats().unwrap().used;
    let opened = HashMap::<u64, u64>::open(&region, "g");
    let after = region.arena_stats().unwrap().used;
    // SAFETY: signalling our own child. Resumed before any assertion, so that a failure
    // leaves no stopped process behind.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let output = frozen.wait_with_output().unwrap();
    assert_eq!(after, before, "an open gave back a live maker's blocks");
    let opened = opened.unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_all_present(&opened, 1000);
    assert_all_present(&map, 1000);
    no_check_errors(&region);
}

/// A writer frozen just after claiming the first growth, whose claim another writer takes
/// over (past the patience) and links its table with, dying right after the link: the
/// frozen one, resumed, gives back no block of that linked table (a maker clears its
/// records before it links), fails its own link and gives its own table back. Every key
/// is there and the region checks clean.
#[test]
fn a_maker_resumed_after_its_claim_was_taken_over_frees_nothing_linked() {
    let temp = TempRegion::new("map-grow-resume");
    let (region, map) = grown_map(&temp, 64 << 20);
    let frozen = spawn_with_env(
        &["map-grow-insert", temp.arg(), "1", "0", "1000"],
        &[("SHMARENA_STOP_AT", "hash_map::grow_after_claim:1")],
    );
    let pid = frozen.id() as i32;
    wait_until_stopped(pid, "hash_map::grow_after_claim");
    let taker = spawn_with_env(
        &["map-grow-insert", temp.arg(), "2", "1000", "2000"],
        &[("SHMARENA_KILL_AT", "hash_map::grow_after_link:1")],
    );
    let status = taker.wait_with_output().unwrap().status;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let output = frozen.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    run_ok(&["map-grow-insert", temp.arg(), "3", "0", "3000"]);
    assert_all_present(&map, 3000);
    no_check_errors(&region);
}

/// A writer SIGSTOPped at each point of the growth holds nobody up: the other finishes its
/// keys (taking over the frozen one's chunk and copy) and the map keeps growing; resumed,
/// the frozen writer finishes too.
#[test]
fn a_writer_frozen_during_growth_does_not_block_the_others() {
    const KEYS: u64 = 20_000;
    for (n, point) in GROWTH_POINTS.iter().enumerate() {
        let temp = TempRegion::new(&format!("map-grow-stop-{n}"));
        let (region, map) = grown_map(&temp, 64 << 20);
        let half = (KEYS / 2).to_string();
        let frozen = spawn_with_env(
            &["map-grow-insert", temp.arg(), "1", "0", &half],
            &[("SHMARENA_STOP_AT", &format!("{point}:3"))],
        );
        // Wait until it is stopped, then let another process insert its keys.
        let pid = frozen.id() as i32;
        wait_until_stopped(pid, point);
        let before = map.capacity();
        run_ok(&["map-grow-insert", temp.arg(), "2", &half, &KEYS.to_string()]);
        assert!(
            map.capacity() > before,
            "{point}: the map did not grow past the freeze"
        );
        for key in KEYS / 2..KEYS {
            assert!(map.get(&key).unwrap().is_some(), "{point}: key {key}");
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        let output = frozen.wait_with_output().unwrap();
        assert!(output.status.success(), "{point}: {output:?}");
        assert_all_present(&map, KEYS);
        no_check_errors(&region);
    }
}

/// A reader frozen in the middle of a lookup, in the table its handle found at the root
/// (no pin: the fast path validates instead), while another process grows the map on: the
/// table is retired and freed (the frozen reader holds nothing back), and its memory is
/// reused, here zeroed (an empty table with no next one). Resumed, the reader's
/// validation sees the root moved and it looks again from the root: every key it had seen
/// is still there, with its value.
#[test]
fn a_reader_frozen_in_a_lookup_of_a_table_freed_and_reused_answers_right() {
    const KEYS: u64 = 20_000;
    let temp = TempRegion::new("map-grow-reuse");
    let (region, map) = grown_map(&temp, 256 << 20);
    run_ok(&["map-grow-insert", temp.arg(), "1", "0", &KEYS.to_string()]);
    let point = "hash_map::lookup_before_validate";
    // Stops in its second pass over the keys: every key was seen once.
    let reader = spawn_with_env(
        &["map-grow-read", temp.arg(), "0", &KEYS.to_string()],
        &[("SHMARENA_STOP_AT", &format!("{point}:{}", KEYS + KEYS / 2))],
    );
    let pid = reader.id() as i32;
    wait_until_stopped(pid, point);
    let before = map.capacity();
    run_ok(&[
        "map-grow-insert",
        temp.arg(),
        "2",
        &KEYS.to_string(),
        &(8 * KEYS).to_string(),
    ]);
    assert!(
        map.capacity() >= 4 * before,
        "grew from {before} to {}",
        map.capacity()
    );
    assert_eq!(map.recount() as u64, 8 * KEYS); // finishes the last migration
    region.reclaim().unwrap();
    // Take every free block of the arena's size classes up to the tables' and zero it.
    let mut reused = 0;
    for class in 7..=47 {
        let size = shmarena::engine::arena::class_size(class);
        while region
            .arena()
            .stats()
            .unwrap()
            .free_blocks
            .iter()
            .any(|&(s, _)| s == size)
        {
            let blob = region.store_blob(&vec![0; size as usize]).unwrap();
            assert_eq!(blob.len(), size);
            reused += 1;
        }
    }
    assert!(reused > 0, "no table was freed");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    std::thread::sleep(Duration::from_millis(200));
    region.open_value::<u64>("stop").unwrap().store(1);
    let output = reader.wait_with_output().unwrap();
    assert!(output.status.success(), "reader: {output:?}");
    assert_all_present(&map, 8 * KEYS);
    no_check_errors(&region);
}
