//! List tests in one process: a `Vec` model (growing past the first capacity), concurrent
//! pushes across segment boundaries, a region too small to grow into, and wide elements
//! never read torn while they are being set.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use shmarena::{Error, Region, RegionExt};

fn temp_region(tag: &str) -> (Region, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("shmarena-list-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    (Region::create(&path, 4 << 20).unwrap(), path)
}

proptest! {
    #[test]
    fn list_matches_a_vec_model(capacity in 1u64..20, ops in prop::collection::vec((any::<bool>(), any::<u16>(), any::<u32>()), 1..60)) {
        let (region, path) = temp_region(&format!("model-{capacity}"));
        let list = region.list::<[u32; 3]>("l", capacity).unwrap();
        let mut model: Vec<[u32; 3]> = Vec::new();
        for (push, index, x) in ops {
            let value = [x, !x, x.rotate_left(7)];
            if push {
                match list.push(value) {
                    Ok(i) => { prop_assert_eq!(i, model.len()); model.push(value); }
                    Err(other) => prop_assert!(false, "push: {}", other),
                }
            } else {
                let index = usize::from(index) % (model.len() + 1);
                match (list.set(index, value), model.get_mut(index)) {
                    (Ok(()), Some(slot)) => *slot = value,
                    (Err(Error::IndexOutOfBounds { .. }), None) => {}
                    (got, _) => prop_assert!(false, "set({}) gave {:?}", index, got),
                }
            }
            prop_assert_eq!(list.len(), model.len());
            prop_assert!(list.capacity() >= model.len());
        }
        prop_assert_eq!(list.snapshot().unwrap(), model.clone());
        prop_assert_eq!(region.open_list::<[u32; 3]>("l").unwrap().snapshot().unwrap(), model);
        drop(list);
        drop(region);
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn concurrent_pushes_get_distinct_indices_and_all_land() {
    let (region, path) = temp_region("pushes");
    // Room for 1,000 at first: the pushes grow it (segments of 1,000, 2,000, ... 32,000)
    // while they race.
    let list = Arc::new(region.list::<u64>("l", 1_000).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let list = Arc::clone(&list);
            std::thread::spawn(move || {
                (0..10_000u64)
                    .map(|i| list.push(t << 32 | i).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut indices: Vec<usize> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..40_000).collect::<Vec<_>>());
    assert_eq!((list.len(), list.capacity()), (40_000, 64_000));
    for (index, value) in list.iter().enumerate() {
        let value = value.unwrap().unwrap();
        assert_eq!(list.get(index).unwrap(), Some(value));
    }
    let mut values = list.snapshot().unwrap();
    values.sort_unstable();
    let expected: Vec<u64> = (0..4u64)
        .flat_map(|t| (0..10_000).map(move |i| t << 32 | i))
        .collect();
    assert_eq!(values, expected);
    drop(list);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn wide_elements_are_never_read_torn_while_being_set() {
    let (region, path) = temp_region("torn");
    let list = Arc::new(region.list::<[u64; 4]>("l", 4).unwrap());
    for _ in 0..4 {
        list.push([0; 4]).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    // Reads made so far: the writers go on until the readers have overlapped them.
    let reads_seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let (list, reads_seen) = (Arc::clone(&list), Arc::clone(&reads_seen));
            std::thread::spawn(move || {
                let mut i = 0u64;
                while i < 20_000 || (reads_seen.load(Ordering::Relaxed) < 10_000 && i < 1 << 26) {
                    let x = w << 40 | i;
                    list.set((i % 4) as usize, [x, x, x, x]).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (list, stop) = (Arc::clone(&list), Arc::clone(&stop));
            let reads_seen = Arc::clone(&reads_seen);
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for index in 0..4 {
                        let value = list.get(index).unwrap().unwrap();
                        assert!(value.iter().all(|&w| w == value[0]), "torn read {value:?}");
                        reads += 1;
                    }
                    reads_seen.fetch_add(4, Ordering::Relaxed);
                }
                reads
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    drop(list);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_list_grows_and_its_indices_stay() {
    let (region, path) = temp_region("grow");
    let list = region.list::<[u64; 2]>("l", 3).unwrap();
    assert_eq!(list.capacity(), 3);
    for i in 0..1_000u64 {
        assert_eq!(list.push([i, !i]).unwrap(), i as usize);
    }
    // 3 + 3 + 6 + 12 + ... + 768: ten segments.
    assert_eq!((list.len(), list.capacity()), (1_000, 1_536));
    let other = region.open_list::<[u64; 2]>("l").unwrap();
    for i in [0u64, 2, 3, 5, 6, 11, 12, 767, 768, 999] {
        assert_eq!(other.get(i as usize).unwrap(), Some([i, !i]));
    }
    other.set(500, [1, 2]).unwrap();
    assert_eq!(list.get(500).unwrap(), Some([1, 2]));
    assert!(matches!(
        list.get(1_000),
        Err(Error::IndexOutOfBounds {
            index: 1_000,
            len: 1_000
        })
    ));
    drop((list, other));
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_list_that_cannot_grow_says_so_and_stays_usable() {
    let path = std::env::temp_dir().join(format!("shmarena-list-{}-oom", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let region = Region::create(&path, 1 << 20).unwrap();
    let list = region.list::<[u64; 4]>("l", 64).unwrap();
    let mut pushed = 0u64;
    let error = loop {
        match list.push([pushed; 4]) {
            Ok(index) => {
                assert_eq!(index as u64, pushed);
                pushed += 1;
            }
            Err(error) => break error,
        }
    };
    assert!(matches!(error, Error::OutOfMemory { .. }), "{error}");
    assert!(pushed >= 64);
    // Nothing half done: every index handed out holds its element.
    assert_eq!(list.len() as u64, pushed);
    assert_eq!(list.snapshot().unwrap().len() as u64, pushed);
    assert!(matches!(list.push([0; 4]), Err(Error::OutOfMemory { .. })));
    list.set(0, [7; 4]).unwrap();
    assert_eq!(list.get(0).unwrap(), Some([7; 4]));
    drop(list);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

/// A corrupted count of claimed indices (the list's first word) far past the list's room:
/// an iteration reads the indices the list has room for and stops (it walked the whole
/// count, index by index, before: a hang the fuzzer found).
#[test]
fn a_corrupted_claim_count_does_not_make_iteration_endless() {
    use shmarena::engine::Memory;
    let (region, path) = temp_region("claims");
    let list = region.list::<[u8; 24]>("l", 4).unwrap();
    for i in 0..3u8 {
        list.push([i; 24]).unwrap();
    }
    let body = region.find_object("l").unwrap().unwrap().offset;
    let claimed = region.memory().word(body).unwrap();
    assert_eq!(
        claimed.load(Ordering::Relaxed),
        3,
        "the claim count is the first word"
    );
    claimed.store(u64::MAX / 3, Ordering::Relaxed);
    let elements = list.snapshot().unwrap();
    assert_eq!(elements, vec![[0; 24], [1; 24], [2; 24]]);
    assert!(list.iter().count() <= list.capacity());
    drop(list);
    drop(region);
    std::fs::remove_file(path).unwrap();
}
