//! Real processes hammering one region: totals must be exact.

mod common;

use common::{run_ok, spawn, TempRegion};
use shmarena::{Region, RegionExt};

const PROCESSES: usize = 4;

fn run_all(args: &[&str]) {
    let children: Vec<_> = (0..PROCESSES).map(|_| spawn(args)).collect();
    for child in children {
        let output = child.wait_with_output().expect("wait for worker");
        assert!(
            output.status.success(),
            "worker {args:?} failed: {:?}",
            output.status
        );
    }
}

#[test]
fn processes_times_increments_give_the_exact_value_total() {
    let temp = TempRegion::new("value-total");
    let region = Region::create(&temp.path, 1 << 20).unwrap();
    run_all(&["incr-value", temp.arg(), "hits", "50000"]);
    assert_eq!(
        region.open_value::<u64>("hits").unwrap().load(),
        PROCESSES as u64 * 50_000
    );
}

#[test]
fn processes_times_increments_give_exact_array_element_totals() {
    let temp = TempRegion::new("array-total");
    let region = Region::create(&temp.path, 1 << 20).unwrap();
    run_all(&["incr-array", temp.arg(), "slots", "8", "40000"]);
    let array = region.open_array::<u64>("slots").unwrap();
    assert_eq!(array.snapshot(), vec![PROCESSES as u64 * 5_000; 8]);
}

#[test]
fn processes_times_increments_give_the_exact_sharded_counter_total() {
    let temp = TempRegion::new("sharded-total");
    let region = Region::create(&temp.path, 1 << 20).unwrap();
    run_all(&["incr-sharded", temp.arg(), "requests", "50000"]);
    assert_eq!(
        region.sharded_counter("requests").unwrap().sum(),
        PROCESSES as i64 * 50_000
    );
}

#[test]
fn racing_open_or_create_and_get_or_create_agree_on_one_creator_and_one_object() {
    for round in 0..5 {
        let temp = TempRegion::new(&format!("race-{round}"));
        let children: Vec<_> = (0..8)
            .map(|_| spawn(&["race", temp.arg(), "shared"]))
            .collect();
        let mut region_creators = 0;
        let mut object_creators = 0;
        let mut offsets = Vec::new();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "race worker failed");
            let line = String::from_utf8(output.stdout).unwrap();
            let fields: Vec<u64> = line
                .split_whitespace()
                .map(|f| f.parse().unwrap())
                .collect();
            region_creators += fields[0];
            object_creators += fields[1];
            offsets.push(fields[2]);
        }
        assert_eq!(region_creators, 1, "exactly one process creates the region");
        assert_eq!(
            object_creators, 1,
            "exactly one process constructs the object"
        );
        offsets.dedup();
        assert_eq!(offsets.len(), 1, "every process opened the same body");
    }
}

#[test]
fn objects_created_by_one_process_are_seen_by_another() {
    let temp = TempRegion::new("create-then-open");
    let region = Region::create(&temp.path, 1 << 20).unwrap();
    run_ok(&["create", temp.arg(), "v", "20"]);
    for i in 0..20u64 {
        assert_eq!(
            region.open_value::<u64>(&format!("v{i}")).unwrap().load(),
            i
        );
    }
    // A second process finds them all (get_or_create opens, does not rebuild).
    run_ok(&["create", temp.arg(), "v", "20"]);
}
