//! The online consistency check: clean regions pass while other threads keep working,
//! and corrupted words are reported as errors naming their object.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use shmarena::check::check_region;
use shmarena::engine::{Memory, Severity};
use shmarena::{Region, RegionExt};

fn errors(region: &Region) -> Vec<String> {
    check_region(region)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.to_string())
        .collect()
}

#[test]
fn a_busy_region_checks_clean_and_corruption_is_named() {
    let path = std::env::temp_dir().join(format!("shmarena-check-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let region = Region::create(&path, 16 << 20).unwrap();
    let queue = Arc::new(region.queue::<u64>("jobs", 64).unwrap());
    let list = Arc::new(region.list::<[u64; 2]>("results", 50_000).unwrap());
    region.mutex::<u64>("m", 0).unwrap();
    region.bounded_semaphore("s", 3).unwrap();
    region.barrier("b", 2).unwrap();
    region.value::<bool>("flag", true).unwrap();
    // Other threads keep allocating, pushing and popping while the check runs.
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..2)
        .map(|t| {
            let (queue, list, stop, region) = (
                Arc::clone(&queue),
                Arc::clone(&list),
                Arc::clone(&stop),
                region.clone(),
            );
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = queue.try_push(i);
                    let _ = queue.try_pop();
                    let _ = list.push([t, i]);
                    let block = region.arena().alloc(64 << (i % 4)).unwrap();
                    region.arena().free(block.offset, 64 << (i % 4)).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    for _ in 0..20 {
        assert_eq!(errors(&region), Vec::<String>::new());
    }
    stop.store(true, Ordering::Relaxed);
    for thread in busy {
        thread.join().unwrap();
    }

    // Corrupt a bool and the barrier's arrival count: both are reported by name.
    let memory = region.memory();
    let flag = region.find_object("flag").unwrap().unwrap();
    memory
        .word(flag.offset)
        .unwrap()
        .store(7, Ordering::Relaxed);
    let barrier = region.find_object("b").unwrap().unwrap();
    memory
        .word(barrier.offset)
        .unwrap()
        .store(5 << 16, Ordering::Relaxed);
    let found = errors(&region);
    assert!(
        found
            .iter()
            .any(|e| e.contains("\"flag\"") && e.contains("0x7")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|e| e.contains("\"b\"") && e.contains("5 arrived of 2")),
        "{found:?}"
    );
    drop((queue, list, region));
    std::fs::remove_file(path).unwrap();
}

/// Fuzz finding (`open_region`, a live patch of a catalog word): the check of a semaphore
/// whose entry's body offset was near `u64::MAX` added its token offset past it and
/// panicked. It is a corruption error naming the object now.
#[test]
fn a_body_offset_near_u64_max_is_reported_not_an_overflow() {
    let path = std::env::temp_dir().join(format!("shmarena-check-max-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let region = Region::create(&path, 1 << 20).unwrap();
    region.bounded_semaphore("s", 2).unwrap();
    let memory = region.memory();
    let header = *region.header();
    // The entry's word that holds the body offset (the only one equal to it).
    let info = region.find_object("s").unwrap().unwrap();
    let entry_size = shmarena::engine::layout::CATALOG_ENTRY_SIZE;
    let entry = header.catalog_offset + info.index * entry_size;
    let words: Vec<u64> = (0..entry_size / 8)
        .map(|w| entry + 8 * w)
        .filter(|&at| memory.word(at).unwrap().load(Ordering::Relaxed) == info.offset)
        .collect();
    assert_eq!(words.len(), 1, "the offset word is ambiguous");
    memory
        .word(words[0])
        .unwrap()
        .store(u64::MAX - 7, Ordering::Relaxed);
    let found = errors(&region);
    assert!(
        found
            .iter()
            .any(|e| e.contains("\"s\"") && e.contains("overflows")),
        "{found:?}"
    );
    drop(region);
    std::fs::remove_file(path).unwrap();
}
