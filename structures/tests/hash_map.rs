//! HashMap/HashSet tests in one process: a `std::collections::HashMap` model (Full at
//! capacity included), string keys, churn far beyond the capacity, concurrent inserts of
//! the same keys, fetch_add totals, and wide values never read torn.

#![cfg(not(loom))]

use std::collections::HashMap as StdMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use shmarena::{Error, FixedStr, HashMap, Region, RegionExt};

fn temp_region(tag: &str, size: u64) -> (Region, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("shmarena-map-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    (Region::create(&path, size).unwrap(), path)
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u32),
    TryInsert(u8, u32),
    Remove(u8),
    Get(u8),
    CompareExchange(u8, u32, u32),
    FetchAdd(u8, u32),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (any::<u8>(), any::<u32>()).prop_map(|(k, v)| Op::TryInsert(k, v)),
        3 => any::<u8>().prop_map(Op::Remove),
        3 => any::<u8>().prop_map(Op::Get),
        1 => (any::<u8>(), any::<u32>(), any::<u32>()).prop_map(|(k, a, b)| Op::CompareExchange(k, a % 4, b)),
        2 => (any::<u8>(), 0u32..1000).prop_map(|(k, d)| Op::FetchAdd(k, d)),
        1 => Just(Op::Clear),
    ]
}

/// Runs `ops` on a map and on the model; keys are taken modulo `keys` so that small
/// tables fill up.
fn check_against_model<V: bytemuck::Pod + PartialEq + std::fmt::Debug>(
    map: &HashMap<u64, V>,
    ops: &[Op],
    keys: u64,
    to_value: impl Fn(u32) -> V,
    add: Option<fn(V, u32) -> Option<V>>,
) -> Result<(), TestCaseError> {
    let capacity = map.capacity();
    let mut model: StdMap<u64, V> = StdMap::new();
    for op in ops {
        match *op {
            Op::Insert(k, v) => {
                let k = u64::from(k) % keys;
                match map.insert(k, to_value(v)) {
                    Ok(old) => prop_assert_eq!(old, model.insert(k, to_value(v))),
                    Err(Error::Full { .. }) => {
                        prop_assert!(model.len() == capacity && !model.contains_key(&k));
                    }
                    Err(e) => prop_assert!(false, "insert: {}", e),
                }
            }
            Op::TryInsert(k, v) => {
                let k = u64::from(k) % keys;
                match map.try_insert(k, to_value(v)) {
                    Ok(found) => {
                        let expected = model.get(&k).copied();
                        if expected.is_none() {
                            model.insert(k, to_value(v));
                        }
                        prop_assert_eq!(found, expected);
                    }
                    Err(Error::Full { .. }) => {
                        prop_assert!(model.len() == capacity && !model.contains_key(&k));
                    }
                    Err(e) => prop_assert!(false, "try_insert: {}", e),
                }
            }
            Op::Remove(k) => {
                let k = u64::from(k) % keys;
                prop_assert_eq!(map.remove(&k).unwrap(), model.remove(&k));
            }
            Op::Get(k) => {
                let k = u64::from(k) % keys;
                prop_assert_eq!(map.get(&k).unwrap(), model.get(&k).copied());
                prop_assert_eq!(map.contains_key(&k).unwrap(), model.contains_key(&k));
            }
            Op::CompareExchange(k, a, b) => {
                let k = u64::from(k) % keys;
                let got = map.compare_exchange(&k, to_value(a), to_value(b)).unwrap();
                match model.get_mut(&k) {
                    None => prop_assert_eq!(got, Err(None)),
                    Some(v) if *v == to_value(a) => {
                        prop_assert_eq!(got, Ok(to_value(a)));
                        *v = to_value(b);
                    }
                    Some(v) => prop_assert_eq!(got, Err(Some(*v))),
                }
            }
            Op::FetchAdd(k, d) => {
                let Some(add) = add else { continue };
                let k = u64::from(k) % keys;
                let got = map.fetch_update(&k, |v| add(v, d)).unwrap();
                match model.get_mut(&k) {
                    None => prop_assert_eq!(got, Err(None)),
                    Some(v) => {
                        let old = *v;
                        if let Some(new) = add(old, d) {
                            *v = new;
                            prop_assert_eq!(got, Ok(old));
                        } else {
                            prop_assert_eq!(got, Err(Some(old)));
                        }
                    }
                }
            }
            Op::Clear => {
                map.clear();
                model.clear();
            }
        }
        prop_assert_eq!(map.len(), model.len());
    }
    let mut entries: Vec<(u64, V)> = map.iter().map(Result::unwrap).collect();
    entries.sort_by_key(|(k, _)| *k);
    let mut expected: Vec<(u64, V)> = model.into_iter().collect();
    expected.sort_by_key(|(k, _)| *k);
    prop_assert_eq!(entries, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn one_word_values_match_the_model(capacity in prop::sample::select(vec![1u64, 2, 8, 16, 64]), keys in 1u64..80, ops in prop::collection::vec(op(), 1..200)) {
        let (region, path) = temp_region(&format!("model1-{capacity}-{keys}"), 4 << 20);
        let map = region.hash_map::<u64, u64>("m", capacity).unwrap();
        check_against_model(&map, &ops, keys, u64::from, Some(|v: u64, d| v.checked_add(u64::from(d))))?;
        drop(map);
        drop(region);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn values_shorter_than_a_word_match_the_model(capacity in prop::sample::select(vec![1u64, 8, 64, 128]), keys in 1u64..160, ops in prop::collection::vec(op(), 1..200)) {
        let (region, path) = temp_region(&format!("model2-{capacity}-{keys}"), 4 << 20);
        let map = region.hash_map::<u64, [u8; 3]>("m", capacity).unwrap();
        let to_value = |v: u32| [v as u8, (v >> 8) as u8, (v >> 16) as u8];
        check_against_model(&map, &ops, keys, to_value, Some(|v: [u8; 3], d| v[0].checked_add(d as u8).map(|first| [first, v[1], v[2]])))?;
        drop(map);
        drop(region);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn wide_values_match_the_model(capacity in prop::sample::select(vec![1u64, 4, 16, 32]), keys in 1u64..50, ops in prop::collection::vec(op(), 1..150)) {
        let (region, path) = temp_region(&format!("model3-{capacity}-{keys}"), 4 << 20);
        let map = region.hash_map::<u64, [u32; 5]>("m", capacity).unwrap();
        check_against_model(&map, &ops, keys, |v| [v, !v, v ^ 0x5555, v.rotate_left(3), 7], Some(|v: [u32; 5], d| Some([v[0].wrapping_add(d), v[1], v[2], v[3], v[4]])))?;
        drop(map);
        drop(region);
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn string_keys_round_trip_and_count() {
    let (region, path) = temp_region("strings", 4 << 20);
    let map = region.hash_map::<FixedStr<32>, u64>("words", 64).unwrap();
    for word in "to be or not to be 你好世界 你好世界".split(' ') {
        map.fetch_add(FixedStr::new(word).unwrap(), 1).unwrap();
    }
    let mut counts: Vec<(String, u64)> = map
        .iter()
        .map(|entry| {
            let (k, v) = entry.unwrap();
            (k.as_str().unwrap().to_owned(), v)
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("be".to_owned(), 2),
            ("not".to_owned(), 1),
            ("or".to_owned(), 1),
            ("to".to_owned(), 2),
            ("你好世界".to_owned(), 2)
        ]
    );
    assert!(matches!(
        map.fetch_add(FixedStr::new("to").unwrap(), u64::MAX),
        Err(Error::Overflow)
    ));
    assert_eq!(map.get(&FixedStr::new("to").unwrap()).unwrap(), Some(2));
    // Reopened by name with the same types; other types are refused.
    assert_eq!(
        region
            .open_hash_map::<FixedStr<32>, u64>("words")
            .unwrap()
            .len(),
        5
    );
    assert!(matches!(
        region.open_hash_map::<FixedStr<16>, u64>("words"),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        region.hash_map::<FixedStr<32>, u64>("words", 128),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        region.hash_set::<FixedStr<32>>("words", 64),
        Err(Error::TypeMismatch { .. })
    ));
    drop(map);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn churn_far_beyond_capacity_keeps_working() {
    let (region, path) = temp_region("churn", 8 << 20);
    let map = region.hash_map::<u64, u64>("m", 1024).unwrap();
    // 100x the capacity in distinct keys, never more than half full.
    let mut live = std::collections::VecDeque::new();
    for key in 0..102_400u64 {
        assert_eq!(map.insert(key, !key).unwrap(), None);
        live.push_back(key);
        if live.len() > 512 {
            let old = live.pop_front().unwrap();
            assert_eq!(map.remove(&old).unwrap(), Some(!old));
        }
    }
    assert_eq!(map.len(), 512);
    for key in &live {
        assert_eq!(map.get(key).unwrap(), Some(!key));
    }
    assert_eq!(map.get(&0).unwrap(), None);
    drop(map);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn concurrent_inserts_of_the_same_keys_leave_one_entry_each() {
    let (region, path) = temp_region("same-keys", 8 << 20);
    let map = Arc::new(region.hash_map::<u64, u64>("m", 4096).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let map = Arc::clone(&map);
            std::thread::spawn(move || {
                let mut fresh = 0;
                for round in 0..20u64 {
                    for key in 0..1000u64 {
                        if map.try_insert(key, t).unwrap().is_none() {
                            fresh += 1;
                        }
                    }
                    if round % 2 == 0 {
                        for key in (t..1000).step_by(4) {
                            map.remove(&key).unwrap();
                        }
                    }
                }
                fresh
            })
        })
        .collect();
    let fresh: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(fresh >= 1000);
    let mut keys: Vec<u64> = map.keys().map(Result::unwrap).collect();
    keys.sort_unstable();
    let len = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), len, "a key appears twice");
    assert_eq!(len, map.len());
    assert!(shmarena::check::check_region(&region)
        .iter()
        .all(|f| f.severity != shmarena::engine::Severity::Error));
    drop(map);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn fetch_add_from_threads_is_exact() {
    let (region, path) = temp_region("fetch-add", 8 << 20);
    let map = Arc::new(region.hash_map::<u64, u64>("m", 256).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let map = Arc::clone(&map);
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    map.fetch_add(i % 100, 1).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for key in 0..100 {
        assert_eq!(map.get(&key).unwrap(), Some(800));
    }
    assert_eq!(map.len(), 100);
    drop(map);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn wide_values_are_never_read_torn() {
    let (region, path) = temp_region("torn", 8 << 20);
    // Long values: a reader is often mid-copy when a writer publishes.
    let map = Arc::new(region.hash_map::<u64, [u64; 64]>("m", 64).unwrap());
    for key in 0..8 {
        map.insert(key, [0; 64]).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let (map, reads) = (Arc::clone(&map), Arc::clone(&reads));
            std::thread::spawn(move || {
                // Until the reader has had its share of the two cores, too.
                for i in 1.. {
                    if i > 20_000 && reads.load(Ordering::Relaxed) > 10_000 {
                        break;
                    }
                    let key = i % 8;
                    if i % 97 == 0 {
                        map.remove(&key).unwrap();
                    }
                    map.insert(key, [i * 2 + t; 64]).unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let (map, stop, reads) = (Arc::clone(&map), Arc::clone(&stop), Arc::clone(&reads));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for key in 0..8 {
                    if let Some(v) = map.get(&key).unwrap() {
                        assert!(v.iter().all(|w| *w == v[0]), "torn read {v:?}");
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    drop(map);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn sets_and_bad_arguments() {
    let (region, path) = temp_region("set", 4 << 20);
    let set = region.hash_set::<FixedStr<8>>("s", 3).unwrap();
    assert_eq!(set.capacity(), 4);
    for word in ["a", "b", "c", "d"] {
        assert!(set.insert(FixedStr::new(word).unwrap()).unwrap());
    }
    assert!(!set.insert(FixedStr::new("a").unwrap()).unwrap());
    // A fifth member grows the set.
    assert!(set.insert(FixedStr::new("e").unwrap()).unwrap());
    assert_eq!(set.capacity(), 8);
    assert!(set.remove(&FixedStr::new("b").unwrap()).unwrap());
    assert_eq!(set.len(), 4);
    assert!(matches!(
        region.hash_map::<u64, u64>("zero", 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        region.hash_map::<u64, u64>("huge", u64::MAX),
        Err(Error::InvalidArgument(_))
    ));
    drop(set);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

/// Keys removed and re-inserted in a two-slot table, so slots are reused by other keys
/// all the time, while readers check that every value read belongs to its key.
#[test]
fn readers_never_see_another_keys_value_across_slot_reuse() {
    let (region, path) = temp_region("reuse", 4 << 20);
    let narrow = Arc::new(region.hash_map::<u64, u64>("narrow", 2).unwrap());
    let wide = Arc::new(region.hash_map::<u64, [u64; 16]>("wide", 2).unwrap());
    // Three keys with one tag: only their key words and the slot version tell them apart.
    let seed = region.hash_seed();
    let tag = |key: u64| shmarena::hash_map::hash_key(&[key], seed) >> 52;
    let keys: Arc<Vec<u64>> = Arc::new((1..).filter(|&k| tag(k) == tag(1)).take(3).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (narrow, wide, reads) =
                (Arc::clone(&narrow), Arc::clone(&wide), Arc::clone(&reads));
            let keys = Arc::clone(&keys);
            std::thread::spawn(move || {
                for i in 1u64.. {
                    if i > 20_000 && reads.load(Ordering::Relaxed) > 20_000 {
                        break;
                    }
                    let key = keys[((i + t) % 3) as usize];
                    let _ = narrow.remove(&key).unwrap();
                    let _ = wide.remove(&key).unwrap();
                    // The table may be full with the other two keys: that is fine.
                    let _ = narrow.insert(key, key << 32 | i);
                    let _ = wide.insert(key, [key << 32 | i; 16]);
                }
            })
        })
        .collect();
    let reader = {
        let (narrow, wide, stop, reads) = (
            Arc::clone(&narrow),
            Arc::clone(&wide),
            Arc::clone(&stop),
            Arc::clone(&reads),
        );
        let keys = Arc::clone(&keys);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for &key in keys.iter() {
                    if let Some(v) = narrow.get(&key).unwrap() {
                        assert_eq!(
                            v >> 32,
                            key & 0xffff_ffff,
                            "key {key} read another key's value"
                        );
                    }
                    if let Some(v) = wide.get(&key).unwrap() {
                        assert!(v.iter().all(|w| *w == v[0]), "torn read {v:?}");
                        assert_eq!(
                            v[0] >> 32,
                            key & 0xffff_ffff,
                            "key {key} read another key's value"
                        );
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    drop((narrow, wide));
    drop(region);
    std::fs::remove_file(path).unwrap();
}

/// `check_region` names the damage done to a map's slots and hints.
#[test]
fn the_check_finds_corrupted_slots_and_hints() {
    use shmarena::engine::{Memory, Severity};
    let (region, path) = temp_region("check", 4 << 20);
    let map = region.hash_map::<u64, u64>("m", 64).unwrap();
    for key in 0..10 {
        map.insert(key, key).unwrap();
    }
    let errors = |region: &Region| {
        shmarena::check::check_region(region)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
    };
    assert!(errors(&region).is_empty());
    let entry = region.find_object("m").unwrap().unwrap();
    let slots = entry.offset + shmarena::hash_map::slots_offset(64);
    let memory = region.memory();
    // Find a member slot (state kind 3) and clear its hint byte.
    let member = (0..64u64)
        .find(|slot| {
            memory
                .word(slots + slot * 32)
                .unwrap()
                .load(Ordering::Relaxed)
                & 7
                == 3
        })
        .unwrap();
    let hints = memory
        .word(entry.offset + shmarena::hash_map::hints_offset(64) + member / 8 * 8)
        .unwrap();
    let saved = hints.load(Ordering::Relaxed);
    hints.store(
        saved & !(0xff << (8 * (member % 8))) | 1 << (8 * (member % 8)),
        Ordering::Relaxed,
    );
    let found = errors(&region);
    assert!(found.iter().any(|e| e.contains("hint byte")), "{found:?}");
    hints.store(saved, Ordering::Relaxed);
    // An impossible state kind.
    let state = memory.word(slots + member * 32).unwrap();
    let saved = state.load(Ordering::Relaxed);
    // (a committed member that is not frozen)
    state.store(saved | 1 << 28, Ordering::Relaxed);
    let found = errors(&region);
    assert!(
        found.iter().any(|e| e.contains("invalid state")),
        "{found:?}"
    );
    // Lookups stay bounded and clear on a damaged table.
    for key in 0..100 {
        let _ = map.get(&key);
    }
    state.store(saved, Ordering::Relaxed);
    assert!(errors(&region).is_empty());
    drop(map);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

/// A closure that panics inside `fetch_update` on a wide value gives the value's writer
/// field back: later writers of that key do not wait for it.
#[test]
fn a_panicking_update_closure_releases_the_writer_field() {
    let (region, path) = temp_region("panic", 4 << 20);
    let map = region.hash_map::<u64, [u64; 4]>("m", 16).unwrap();
    map.insert(1, [1; 4]).unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = map.fetch_update(&1, |_| -> Option<[u64; 4]> { panic!("user code") });
    }));
    assert!(panicked.is_err());
    assert_eq!(map.insert(1, [2; 4]).unwrap(), Some([1; 4]));
    assert_eq!(map.get(&1).unwrap(), Some([2; 4]));
    drop(map);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn std_style_helpers_agree_with_iter() {
    let (region, path) = temp_region("std-helpers", 1 << 20);
    let map = region.hash_map::<u32, u64>("m", 64).unwrap();
    map.extend((0..10u32).map(|k| (k, u64::from(k) * 10)))
        .unwrap();
    map.extend([(3, 333)]).unwrap(); // extend replaces, as insert does
    let expected: StdMap<u32, u64> = (0..10u32)
        .map(|k| (k, if k == 3 { 333 } else { u64::from(k) * 10 }))
        .collect();
    assert_eq!(map.to_std_map().unwrap(), expected);
    let mut snapshot = map.snapshot().unwrap();
    snapshot.sort_unstable();
    let mut from_std: Vec<(u32, u64)> = expected.iter().map(|(&k, &v)| (k, v)).collect();
    from_std.sort_unstable();
    assert_eq!(snapshot, from_std);
    let mut values: Vec<u64> = map.values().map(Result::unwrap).collect();
    values.sort_unstable();
    let mut expected_values: Vec<u64> = expected.values().copied().collect();
    expected_values.sort_unstable();
    assert_eq!(values, expected_values);
    // Keys, values and snapshot walk the slots in the same order.
    let keys: Vec<u32> = map.keys().map(Result::unwrap).collect();
    let in_order: Vec<(u32, u64)> = keys.iter().map(|k| (*k, expected[k])).collect();
    assert_eq!(map.snapshot().unwrap(), in_order);

    // A small map grows to take what extend gives it.
    let small = region.hash_map::<u32, u32>("small", 4).unwrap();
    small.extend((0..10u32).map(|k| (k, k))).unwrap();
    assert_eq!(small.len(), 10);
    assert_eq!(small.capacity(), 16);
    assert_eq!(small.snapshot().unwrap().len(), 10);
    drop(map);
    drop(small);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn get_or_insert_returns_the_value_present_after_the_call() {
    let (region, path) = temp_region("get-or-insert", 1 << 20);
    let map = region.hash_map::<u64, u64>("m", 64).unwrap();
    assert_eq!(map.get_or_insert(1, 10).unwrap(), 10);
    assert_eq!(map.get_or_insert(1, 20).unwrap(), 10);
    assert_eq!(map.get(&1).unwrap(), Some(10));
    let mut called = false;
    let got = map
        .get_or_insert_with(1, || {
            called = true;
            30
        })
        .unwrap();
    assert_eq!((got, called), (10, false));
    assert_eq!(map.get_or_insert_with(2, || 40).unwrap(), 40);
    assert_eq!(map.len(), 2);
    drop(map);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn racing_get_or_insert_calls_all_get_the_one_inserted_value() {
    let (region, path) = temp_region("get-or-insert-race", 8 << 20);
    let map = Arc::new(region.hash_map::<u64, u64>("m", 1024).unwrap());
    let threads: Vec<_> = (1..=4u64)
        .map(|t| {
            let map = Arc::clone(&map);
            std::thread::spawn(move || {
                (0..500u64)
                    .map(|key| map.get_or_insert(key, t).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let seen: Vec<Vec<u64>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for key in 0..500u64 {
        let stored = map.get(&key).unwrap().unwrap();
        assert!((1..=4).contains(&stored));
        for got in &seen {
            assert_eq!(got[key as usize], stored, "key {key}");
        }
    }
    assert_eq!(map.len(), 500);
    drop(map);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn set_extend_counts_new_members_and_collects() {
    let (region, path) = temp_region("set-helpers", 1 << 20);
    let set = region.hash_set::<u64>("s", 64).unwrap();
    assert_eq!(set.extend([1, 2, 3, 2]).unwrap(), 3);
    assert_eq!(set.extend([3, 4]).unwrap(), 1);
    assert_eq!(
        set.to_std_set().unwrap(),
        std::collections::HashSet::from([1, 2, 3, 4])
    );
    let mut members = set.snapshot().unwrap();
    members.sort_unstable();
    assert_eq!(members, [1, 2, 3, 4]);
    drop(set);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

/// A map created with 16 slots takes many keys from several threads at once while others
/// read, update and remove: every key present exactly once, with its last value.
#[test]
fn grows_while_threads_insert_read_and_update() {
    const PER_THREAD: u64 = 20_000;
    let (region, path) = temp_region("grow-threads", 64 << 20);
    let map = region.hash_map::<u64, u64>("g", 16).unwrap();
    // Wide values: every update writes all three words; one shared key counts them.
    let counters = region.hash_map::<u64, [u64; 3]>("w", 16).unwrap();
    counters.insert(u64::MAX, [0; 3]).unwrap();
    std::thread::scope(|scope| {
        for t in 0..3u64 {
            let (map, counters) = (&map, &counters);
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    let key = t * PER_THREAD + i;
                    assert_eq!(map.insert(key, key * 2).unwrap(), None, "key {key}");
                    counters
                        .fetch_update(&u64::MAX, |v| Some([v[0] + 1, v[1] + 1, v[2] + 1]))
                        .unwrap()
                        .unwrap();
                    if i % 4 == 0 {
                        counters.insert(key, [key; 3]).unwrap();
                    }
                }
            });
        }
        let map = &map;
        scope.spawn(move || {
            // A reader: a key once seen stays, with its value.
            for round in 0..20_000u64 {
                let key = (round * 7919) % (3 * PER_THREAD);
                if let Some(value) = map.get(&key).unwrap() {
                    assert_eq!(value, key * 2);
                    assert_eq!(map.get(&key).unwrap(), Some(key * 2), "key {key} vanished");
                }
            }
        });
    });
    assert_eq!(map.len() as u64, 3 * PER_THREAD);
    assert!(map.capacity() as u64 >= 3 * PER_THREAD);
    for key in 0..3 * PER_THREAD {
        assert_eq!(map.get(&key).unwrap(), Some(key * 2), "key {key}");
    }
    let mut seen: Vec<u64> = map.keys().map(Result::unwrap).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..3 * PER_THREAD).collect::<Vec<_>>());
    assert_eq!(map.recount() as u64, 3 * PER_THREAD);
    assert_eq!(counters.get(&u64::MAX).unwrap(), Some([3 * PER_THREAD; 3]));
    assert_eq!(counters.len() as u64, 1 + 3 * PER_THREAD / 4);
    for key in (0..3 * PER_THREAD).filter(|k| (k % PER_THREAD) % 4 == 0) {
        assert_eq!(counters.get(&key).unwrap(), Some([key; 3]), "key {key}");
    }
    drop((map, counters, region));
    let _ = Region::unlink(&path);
}

/// When the region has no room for the next table, the insert that needed it fails with
/// `OutOfMemory` and changes nothing; the map keeps every entry and stays usable.
#[test]
fn a_full_region_stops_growth_with_out_of_memory_and_nothing_lost() {
    let (region, path) = temp_region("grow-oom", 1 << 20);
    let map = region.hash_map::<u64, u64>("g", 16).unwrap();
    let mut inserted = 0u64;
    let error = loop {
        match map.insert(inserted, inserted * 3) {
            Ok(None) => inserted += 1,
            Ok(Some(old)) => panic!("key {inserted} was there with {old}"),
            Err(error) => break error,
        }
        assert!(inserted < 1 << 20, "a 1 MiB region never filled");
    };
    assert!(matches!(error, Error::OutOfMemory { .. }), "{error:?}");
    // The message says which region is full, and how large it is.
    let message = error.to_string();
    assert!(
        message.contains(&format!("region {} of {} bytes", path.display(), 1 << 20)),
        "{message}"
    );
    assert!(inserted > 1000, "only {inserted} entries");
    assert_eq!(map.get(&inserted).unwrap(), None);
    assert_eq!(map.len() as u64, inserted);
    for key in 0..inserted {
        assert_eq!(map.get(&key).unwrap(), Some(key * 3), "key {key}");
    }
    // Still usable: replace, update and remove what is there.
    assert_eq!(map.insert(0, 7).unwrap(), Some(0));
    assert_eq!(map.fetch_add(1, 1).unwrap(), 3);
    assert_eq!(map.remove(&2).unwrap(), Some(6));
    assert_eq!(map.len() as u64, inserted - 1);
    drop((map, region));
    let _ = Region::unlink(&path);
}

/// Each growth retires the table the root moved past, and its memory returns to the
/// arena once nobody who may read it is pinned: after growing from 16 slots to hundreds
/// of thousands, the arena holds the map's body, its newest table and the pin stripes
/// (without the frees, every earlier table together: as much again), and the newest
/// table's slots fill their block (a table in one block would take twice their size: the
/// hints push it past a power of two). A handle whose guess is one of the freed tables
/// still finds every key.
#[test]
fn old_tables_return_to_the_arena() {
    use shmarena::engine::arena::{class_size, size_class};
    let (region, path) = temp_region("grow-frees", 256 << 20);
    let before = region.arena().stats().unwrap().used;
    let map = region.hash_map::<u64, u64>("g", 16).unwrap();
    let body = region.arena().stats().unwrap().used - before;
    for key in 0..5_000u64 {
        assert_eq!(map.insert(key, key * 5).unwrap(), None);
    }
    // Clones keep the guess of the table the map had grown to by now.
    let (early, early_writer) = (map.clone(), map.clone());
    for key in 5_000..200_000u64 {
        assert_eq!(map.insert(key, key * 5).unwrap(), None);
    }
    // The last growth may still be migrating (operations move it on a chunk at a time):
    // a recount finishes it.
    assert_eq!(map.recount(), 200_000);
    region.reclaim().unwrap();
    let capacity = map.capacity() as u64;
    // The newest table: header and hints in one block, 32-byte slots in another.
    let meta =
        8 * (shmarena::hash_map::header_words(capacity) + shmarena::hash_map::hint_words(capacity));
    let newest = class_size(size_class(meta).unwrap()) + 32 * capacity;
    let used = region.arena().stats().unwrap().used - before;
    let stripes = 1024;
    // This slot's retire log, where the old tables waited.
    let log = shmarena::engine::retire_log::log_bytes(region.arena().stats().unwrap().capacity);
    eprintln!("arena bytes in use: {used} (newest table {newest}, {capacity} slots)");
    assert!(
        used <= body + newest + stripes + log,
        "{used} bytes in use: body {body}, newest table {newest} ({capacity} slots)"
    );
    // Writes through a freed table's guess go the whole way: a replacing insert, an
    // insert of a new key, an update and a removal.
    assert_eq!(early_writer.insert(14, 1).unwrap(), Some(70));
    assert_eq!(early_writer.insert(14, 70).unwrap(), Some(1));
    assert_eq!(early_writer.insert(300_000, 1).unwrap(), None);
    assert_eq!(early_writer.fetch_add(300_000, 2).unwrap(), 1);
    assert_eq!(early_writer.remove(&300_000).unwrap(), Some(3));
    assert_eq!(map.get(&300_000).unwrap(), None);
    for key in (0..200_000u64).step_by(7) {
        assert_eq!(early.get(&key).unwrap(), Some(key * 5), "key {key}");
        assert_eq!(map.get(&key).unwrap(), Some(key * 5), "key {key}");
    }
    assert_eq!(early.fetch_add(3, 1).unwrap(), 15);
    assert_eq!(map.get(&3).unwrap(), Some(16));
    drop((map, early, early_writer, region));
    let _ = Region::unlink(&path);
}

/// A map left in the middle of a growth and then only read finishes growing: lookups that
/// meet the migration (their key's home frozen) move it on by a chunk, as writes do.
#[test]
fn reads_alone_finish_a_growth() {
    let (region, path) = temp_region("grow-reads", 64 << 20);
    let map = region.hash_map::<u64, u64>("g", 16).unwrap();
    let entry = region.find_object("g").unwrap().unwrap();
    let growing = || {
        shmarena::hash_map::describe(&region, &entry)
            .unwrap()
            .contains("growing from")
    };
    let mut keys = 0u64;
    while keys < 4096 || !growing() {
        map.insert(keys, keys + 1).unwrap();
        keys += 1;
        assert!(keys < 1 << 20, "never caught a growth in progress");
    }
    for round in 0.. {
        for key in 0..keys {
            assert_eq!(map.get(&key).unwrap(), Some(key + 1), "key {key}");
        }
        if !growing() {
            break;
        }
        assert!(round < 100, "reads did not finish the growth");
    }
    assert_eq!(map.len() as u64, keys);
    drop((map, region));
    let _ = Region::unlink(&path);
}

/// Keys `0..n`, and keys `0..n` times a stride, hash as random keys do: at load 0.75 in a
/// linear-probe table of 2^14 slots, a mean probe under 2.5 slots and none over 400, for
/// seeds under which a single folded multiply clustered them (a mean of 5 to 39 slots and
/// a longest probe of up to 1474).
#[test]
fn one_word_keys_in_sequence_probe_like_random_ones() {
    for seed in PROBE_SEEDS {
        for stride in [1, 8, 4096, 1 << 32] {
            let keys = (0..PROBE_KEYS).map(|i| vec![i.wrapping_mul(stride)]);
            assert_probes_like_random(keys, seed, &format!("stride {stride}"));
        }
    }
}

/// Longer keys in patterns: a Python int's encoding zero-padded to a dict's 9-word key
/// (tag 4, then the int's bytes), a str's (tag 7, length, "key{i}"), and two-word keys
/// varying in either word or both.
#[test]
fn multi_word_keys_in_patterns_probe_like_random_ones() {
    fn padded(bytes: &[u8], words: usize) -> Vec<u64> {
        let mut key = vec![0u64; words];
        for (at, byte) in bytes.iter().enumerate() {
            key[at / 8] |= u64::from(*byte) << (8 * (at % 8));
        }
        key
    }
    let int_key = |i: u64| {
        let mut bytes = vec![4u8];
        bytes.extend_from_slice(&i.to_le_bytes());
        padded(&bytes, 9)
    };
    let str_key = |i: u64| {
        let text = format!("key{i}");
        let mut bytes = vec![7u8];
        bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
        bytes.extend_from_slice(text.as_bytes());
        padded(&bytes, 9)
    };
    for seed in PROBE_SEEDS {
        assert_probes_like_random((0..PROBE_KEYS).map(int_key), seed, "python ints");
        assert_probes_like_random((0..PROBE_KEYS).map(str_key), seed, "python strs");
        assert_probes_like_random((0..PROBE_KEYS).map(|i| vec![i, 0]), seed, "[i, 0]");
        assert_probes_like_random((0..PROBE_KEYS).map(|i| vec![0, i]), seed, "[0, i]");
        assert_probes_like_random((0..PROBE_KEYS).map(|i| vec![i, i]), seed, "[i, i]");
        assert_probes_like_random((0..PROBE_KEYS).map(|i| vec![1, 2, i]), seed, "[1, 2, i]");
    }
}

/// Table slots of the probe tests (2^14), filled to load 0.75.
const PROBE_BITS: u32 = 14;
const PROBE_KEYS: u64 = (1 << PROBE_BITS) / 4 * 3;
/// Seeds of the probe tests, among them four under which a single folded multiply
/// clustered one-word keys (a mean of 5 to 39 slots and a longest probe of up to 1474).
const PROBE_SEEDS: [u64; 6] = [
    0x3266_aa3b_b0cd_e917,
    0xb248_9191_7b12_1dc5,
    0x2d16_34b4_b465_3252,
    0x6b38_4309_c9a9_37a6,
    0,
    u64::MAX,
];

/// Inserts `keys` by linear probing from their hashes' low bits, as the map's homes are
/// chosen, and checks that probes are as short as random keys' (~1.5 mean at load 0.75).
fn assert_probes_like_random(keys: impl Iterator<Item = Vec<u64>>, seed: u64, what: &str) {
    let mask = (1u64 << PROBE_BITS) - 1;
    let mut taken = vec![false; 1 << PROBE_BITS];
    let (mut count, mut total, mut longest) = (0u64, 0u64, 0u64);
    for key in keys {
        let (mut slot, mut probe) = (shmarena::hash_map::hash_key(&key, seed) & mask, 0);
        while taken[slot as usize] {
            slot = (slot + 1) & mask;
            probe += 1;
        }
        taken[slot as usize] = true;
        count += 1;
        total += probe;
        longest = longest.max(probe);
    }
    let mean = total as f64 / count as f64;
    assert!(
        mean < 2.5 && longest < 400,
        "seed {seed:#x}, {what}: mean probe {mean:.2}, longest {longest}"
    );
}

/// `try_insert` and `get` of a key whose wide value another writer is changing answer with
/// the value before the change while that writer is still inside its update (they read the
/// value; only writers of it take the writer field).
#[test]
fn try_insert_of_a_present_key_answers_while_its_writer_is_inside() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (region, path) = temp_region("try-insert-writer", 4 << 20);
    let map = region.hash_map::<u64, [u64; 4]>("m", 16).unwrap();
    map.insert(1, [1; 4]).unwrap();
    let (inside, release) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|s| {
        s.spawn(|| {
            map.fetch_update(&1, |value| {
                inside.store(true, Ordering::SeqCst);
                // Held until the reader below is done (bounded, so that a regression fails
                // the assertion below instead of hanging the test).
                let began = std::time::Instant::now();
                while !release.load(Ordering::SeqCst) && began.elapsed().as_secs() < 20 {
                    std::thread::yield_now();
                }
                Some(value)
            })
            .unwrap()
            .unwrap();
            inside.store(false, Ordering::SeqCst);
        });
        while !inside.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        assert_eq!(map.try_insert(1, [9; 4]).unwrap(), Some([1; 4]));
        assert_eq!(map.get(&1).unwrap(), Some([1; 4]));
        assert!(
            inside.load(Ordering::SeqCst),
            "the writer left before try_insert answered"
        );
        release.store(true, Ordering::SeqCst);
    });
    assert_eq!(map.get(&1).unwrap(), Some([1; 4]));
    drop(map);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

/// A table at load 0.75, where runs of claimed slots are long: lookups, removals and
/// insertions again answer as a set does, keys found wherever their probe ran to (the
/// first look reads one or two groups of hints before the walk takes over).
#[test]
fn a_crowded_table_answers_as_a_set_does() {
    const SLOTS: u64 = 1 << 12;
    let (region, path) = temp_region("crowded", 16 << 20);
    let map = region.hash_map::<u64, u64>("m", SLOTS).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let present: Vec<u64> = (0..SLOTS / 4 * 3).map(|_| next()).collect();
    let absent: Vec<u64> = (0..SLOTS).map(|_| next()).collect();
    let mut model = std::collections::HashMap::new();
    for &key in &present {
        map.insert(key, !key).unwrap();
        model.insert(key, !key);
    }
    let check = |map: &HashMap<u64, u64>, model: &std::collections::HashMap<u64, u64>| {
        for key in present.iter().chain(&absent) {
            assert_eq!(
                map.get(key).unwrap(),
                model.get(key).copied(),
                "key {key:x}"
            );
            assert_eq!(map.contains_key(key).unwrap(), model.contains_key(key));
        }
        assert_eq!(map.len(), model.len());
    };
    check(&map, &model);
    // Removals leave hints behind; insertions again and absent keys walk past them.
    for (index, &key) in present.iter().enumerate() {
        if index % 3 == 0 {
            assert_eq!(map.remove(&key).unwrap(), Some(!key));
            assert_eq!(map.remove(&key).unwrap(), None);
            model.remove(&key);
        }
    }
    check(&map, &model);
    for (index, &key) in present.iter().enumerate() {
        if index % 6 == 0 {
            assert_eq!(map.insert(key, key).unwrap(), None);
            model.insert(key, key);
        }
    }
    check(&map, &model);
    drop(map);
    drop(region);
    std::fs::remove_file(path).unwrap();
}
