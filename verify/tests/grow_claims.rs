//! Growth claims under a slow claimant: waiters whose patience runs out take the claim over
//! once, not from each other in turn (each taking over a fresh claim would make a table
//! apiece). Threads with handles of their own stand in for processes; the failpoint
//! between making the next table and linking it makes the first maker slow (descheduled
//! past the patience) and every later one a little slow (a large allocation).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shmarena::{Region, RegionExt};

#[test]
fn waiters_past_their_patience_take_a_slow_claim_over_once() {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!("shmarena-test-{}-claims", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let region = Region::create(&path, 64 << 20).unwrap();
    let map = region.hash_map::<u64, u64>("m", 16).unwrap();
    fail::cfg_callback("hash_map::grow_before_link", || {
        let pause = if MADE.fetch_add(1, Ordering::SeqCst) == 0 {
            300
        } else {
            2
        };
        std::thread::sleep(Duration::from_millis(pause));
    })
    .unwrap();
    for key in 0..16 {
        map.insert(key, key).unwrap();
    }
    assert_eq!(map.capacity(), 16, "the first table holds 16 keys");
    let inserters: Vec<_> = (0..5u64)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                if t > 0 {
                    // The first claims; the others find its claim.
                    std::thread::sleep(Duration::from_millis(50));
                }
                let region = Region::open(&path).unwrap();
                let map = region.hash_map::<u64, u64>("m", 16).unwrap();
                map.insert(1000 + t, t).unwrap();
            })
        })
        .collect();
    for inserter in inserters {
        inserter.join().unwrap();
    }
    fail::remove("hash_map::grow_before_link");
    let made = MADE.load(Ordering::SeqCst);
    assert!(made <= 2, "{made} tables made for one growth");
    for key in (0..16).chain(1000..1005) {
        assert!(map.get(&key).unwrap().is_some(), "key {key}");
    }
    drop(map);
    drop(region);
    let _ = std::fs::remove_file(&path);
}
