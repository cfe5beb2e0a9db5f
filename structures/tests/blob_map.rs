//! `BlobMap`: byte strings of any length against a `std` model, blocks of replaced and
//! removed values returned to the region, readers on threads never reading a freed block.

#![cfg(not(loom))]

use std::collections::HashMap;

use proptest::prelude::*;
use shmarena::BlobMap;

mod temp_region;

use temp_region::Temp;

fn temp_region(tag: &str, size: u64) -> Temp {
    temp_region::temp_region("shmarena-blobmap", tag, size)
}

/// Bytes of length `len`, made from `seed`.
fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

proptest! {
    #[test]
    fn matches_a_std_map(ops in prop::collection::vec((0u8..4, 0u8..12, 0usize..600, any::<u8>()), 1..120)) {
        let temp = temp_region("model", 16 << 20);
        let map = BlobMap::get_or_create(&temp.1, "m", 4, 16, 32).unwrap();
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for (op, key, len, seed) in ops {
            // Keys 0..6 short, 6..12 long (kept by digest).
            let key = if key < 6 { vec![key; 3] } else { vec![key; 40 + usize::from(key)] };
            match op {
                0 | 1 => {
                    let value = bytes(seed, len);
                    map.insert(&key, &value).unwrap();
                    model.insert(key, value);
                }
                2 => prop_assert_eq!(map.remove(&key).unwrap(), model.remove(&key)),
                _ => {
                    prop_assert_eq!(map.get(&key).unwrap(), model.get(&key).cloned());
                    prop_assert_eq!(map.contains_key(&key).unwrap(), model.contains_key(&key));
                }
            }
            prop_assert_eq!(map.len(), model.len());
        }
        let mut entries = map.entries().unwrap();
        entries.sort();
        let mut expected: Vec<_> = model.into_iter().collect();
        expected.sort();
        prop_assert_eq!(entries, expected);
    }
}

#[test]
fn replaced_and_removed_values_return_to_the_region() {
    let temp = temp_region("churn", 8 << 20);
    let map = BlobMap::get_or_create(&temp.1, "m", 16, 16, 16).unwrap();
    // 200 MB through an 8 MiB region.
    for i in 0..2000u32 {
        let key = [(i % 4) as u8; 2];
        map.insert(&key, &bytes(i as u8, 100_000)).unwrap();
        if i % 3 == 0 {
            map.remove(&[((i + 1) % 4) as u8; 2]).unwrap();
        }
    }
    let long_key = vec![9u8; 500];
    for i in 0..500u32 {
        map.insert(&long_key, &bytes(i as u8, 10_000)).unwrap();
        assert!(map.remove(&long_key).unwrap().is_some());
    }
}

#[test]
fn readers_on_threads_never_read_a_freed_value() {
    let temp = temp_region("threads", 32 << 20);
    let map = BlobMap::get_or_create(&temp.1, "m", 16, 16, 16).unwrap();
    std::thread::scope(|scope| {
        for writer in 0..2u8 {
            let map = map.clone();
            scope.spawn(move || {
                for i in 0..3000u32 {
                    let tag = writer.wrapping_mul(100).wrapping_add(i as u8);
                    let key = [(i % 8) as u8];
                    // Every byte of a value is its tag: a torn or reused read shows.
                    map.insert(&key, &vec![tag; 1000 + (i as usize % 3000)])
                        .unwrap();
                    if i % 5 == 0 {
                        map.remove(&[((i + 3) % 8) as u8]).unwrap();
                    }
                }
            });
        }
        let map = map.clone();
        scope.spawn(move || {
            for i in 0..20_000u32 {
                if let Some(value) = map.get(&[(i % 8) as u8]).unwrap() {
                    assert!(
                        value.iter().all(|&b| b == value[0]),
                        "a torn or reused value"
                    );
                }
            }
        });
    });
}

#[test]
fn opens_again_and_refuses_maps_too_small_to_be_one() {
    let temp = temp_region("open", 4 << 20);
    let map = BlobMap::get_or_create(&temp.1, "m", 16, 8, 8).unwrap();
    map.insert(b"k", &[1; 1000]).unwrap();
    let again = BlobMap::open(&temp.1, "m").unwrap();
    assert_eq!(again.get(b"k").unwrap(), Some(vec![1; 1000]));
    shmarena::ByteMap::get_or_create(&temp.1, "small", 16, 8, 8).unwrap();
    assert!(matches!(
        BlobMap::open(&temp.1, "small"),
        Err(shmarena::Error::TypeMismatch { .. })
    ));
}
