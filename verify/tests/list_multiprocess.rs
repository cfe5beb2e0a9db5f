//! Workers appending results to one `List` from many processes: every append lands exactly
//! once, also while the list grows, and an append killed before publishing leaves a hole,
//! never a torn or duplicate element; one killed while growing the list leaves it whole.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{spawn, spawn_with_env, TempRegion};
use shmarena::{Region, RegionExt};

const CAPACITY: &str = "40000";

#[test]
fn processes_appending_results_land_every_element_exactly_once() {
    let temp = TempRegion::new("list-append");
    let region = Region::create(&temp.path, 4 << 20).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|w| spawn(&["list-append", temp.arg(), &w.to_string(), "5000", CAPACITY]))
        .collect();
    for worker in workers {
        assert!(worker.wait_with_output().unwrap().status.success());
    }
    let list = region.open_list::<u64>("results").unwrap();
    assert_eq!(list.len(), 20_000);
    let mut values = list.snapshot().unwrap();
    assert_eq!(values.len(), 20_000, "no holes without deaths");
    values.sort_unstable();
    let expected: Vec<u64> = (0..4u64)
        .flat_map(|w| (0..5000).map(move |i| w << 32 | i))
        .collect();
    assert_eq!(values, expected);
}

#[test]
fn an_append_killed_before_publishing_leaves_one_hole() {
    let temp = TempRegion::new("list-kill");
    let region = Region::create(&temp.path, 4 << 20).unwrap();
    // Dies inside its 100th push, after claiming index 99 and before publishing it.
    let status = spawn_with_env(
        &["list-append", temp.arg(), "1", "1000", CAPACITY],
        &[("SHMARENA_KILL_AT", "list::push_before_publish:100")],
    )
    .wait()
    .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let worker = spawn(&["list-append", temp.arg(), "2", "50", CAPACITY]);
    assert!(worker.wait_with_output().unwrap().status.success());
    let list = region.open_list::<u64>("results").unwrap();
    assert_eq!(list.len(), 150, "99 + the claimed index + 50");
    assert_eq!(list.get(99).unwrap(), None, "the dead push is a hole");
    let values = list.snapshot().unwrap();
    assert_eq!(values.len(), 149);
    assert!(values[..99]
        .iter()
        .enumerate()
        .all(|(i, &v)| v == 1 << 32 | i as u64));
    assert!(values[99..]
        .iter()
        .enumerate()
        .all(|(i, &v)| v == 2 << 32 | i as u64));
    // Setting the hole is refused; the list goes on working.
    assert!(list.set(99, 7).is_err());
    assert_eq!(list.push(9).unwrap(), 150);
}

#[test]
fn processes_growing_one_list_land_every_element_exactly_once() {
    let temp = TempRegion::new("list-grow");
    let region = Region::create(&temp.path, 4 << 20).unwrap();
    // Room for 8 at first: the four processes grow it through eleven segments together.
    let workers: Vec<_> = (0..4)
        .map(|w| spawn(&["list-append", temp.arg(), &w.to_string(), "3000", "8"]))
        .collect();
    for worker in workers {
        assert!(worker.wait_with_output().unwrap().status.success());
    }
    let list = region.open_list::<u64>("results").unwrap();
    assert_eq!((list.len(), list.capacity()), (12_000, 16_384));
    let mut values = list.snapshot().unwrap();
    values.sort_unstable();
    let expected: Vec<u64> = (0..4u64)
        .flat_map(|w| (0..3000).map(move |i| w << 32 | i))
        .collect();
    assert_eq!(values, expected);
}

/// An append killed while it makes the list's segment directory or next segment (made,
/// recorded, not published) leaves the list whole and leaks nothing: the next append to
/// make one gives the dead maker's back first, so the bytes in use equal those of a run
/// killed just before the make.
#[test]
fn an_append_killed_while_growing_the_list_leaves_it_whole_and_leaks_nothing() {
    let used_after_death_at = |point: &str| {
        let temp = TempRegion::new(&format!("list-grow-kill-{}", point.replace("::", "-")));
        let region = Region::create(&temp.path, 4 << 20).unwrap();
        // Dies in its 9th push, making the directory or the second segment.
        let status = spawn_with_env(
            &["list-append", temp.arg(), "1", "100", "8"],
            &[("SHMARENA_KILL_AT", &format!("{point}:1"))],
        )
        .wait()
        .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}");
        // Opening the list gives a dead appender's block back (no append needed).
        let list = region.open_list::<u64>("results").unwrap();
        let at_open = region.arena_stats().unwrap().used;
        assert_eq!(
            (list.len(), list.capacity()),
            (8, 8),
            "nothing claimed past the first segment"
        );
        let worker = spawn(&["list-append", temp.arg(), "2", "50", "8"]);
        assert!(worker.wait_with_output().unwrap().status.success());
        assert_eq!(list.len(), 58);
        let values = list.snapshot().unwrap();
        assert_eq!(values.len(), 58);
        assert!(values[..8]
            .iter()
            .enumerate()
            .all(|(i, &v)| v == 1 << 32 | i as u64));
        assert!(values[8..]
            .iter()
            .enumerate()
            .all(|(i, &v)| v == 2 << 32 | i as u64));
        let errors: Vec<_> = shmarena::check::check_region(&region)
            .into_iter()
            .filter(|finding| finding.severity == shmarena::engine::Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        (at_open, region.arena_stats().unwrap().used)
    };
    // The 9th push makes the directory, then the second segment.
    for (before, between) in [
        (
            "list::directory_before_make",
            "list::directory_before_publish",
        ),
        ("list::grow_before_make", "list::grow_before_publish"),
    ] {
        assert_eq!(
            used_after_death_at(between),
            used_after_death_at(before),
            "bytes in use after a death at {between}"
        );
    }
}
