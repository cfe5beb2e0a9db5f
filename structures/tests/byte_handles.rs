//! Tests of the run-time-sized handles `ByteMap`, `ByteSet`, `ByteQueue` and `ByteList` in
//! one process: a `std::collections::HashMap` model of a `ByteMap` with zero padding (and
//! `Full` at capacity), oversized keys, values and elements, interop with the typed
//! `HashMap`, `HashSet`, `Queue` and `List` on the same objects, FIFO order with blocking
//! and timeouts, and list indices.

#![cfg(not(loom))]

use std::collections::{BTreeSet, HashMap as StdMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use shmarena::{ByteList, ByteMap, ByteQueue, ByteSet, Error, PushError, Queue, Region, RegionExt};

/// A region in a fresh temporary file, unlinked when the guard drops (also when a test
/// fails half-way).
struct TempRegion {
    region: Region,
    path: PathBuf,
}

impl Drop for TempRegion {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn temp_region(tag: &str) -> TempRegion {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("shmarena-bytes-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    TempRegion {
        region: Region::create(&path, 4 << 20).unwrap(),
        path,
    }
}

/// `bytes` zero-padded to `size` bytes.
fn pad(bytes: &[u8], size: usize) -> Vec<u8> {
    assert!(
        bytes.len() <= size,
        "pad: {} bytes over {size}",
        bytes.len()
    );
    let mut padded = bytes.to_vec();
    padded.resize(size, 0);
    padded
}

// ---------------------------------------------------------------------------------------
// ByteMap against a model
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Insert(Vec<u8>, Vec<u8>),
    TryInsert(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Get(Vec<u8>),
    /// `Some(value)`: the closure stores `value`; `None`: it declines.
    FetchUpdate(Vec<u8>, Option<Vec<u8>>),
    /// The closure stores the current value with every byte incremented.
    FetchIncrement(Vec<u8>),
    /// A key `extra` bytes over `key_size`.
    OversizedKey(Vec<u8>, usize),
    /// A value `extra` bytes over `value_size`, for an existing or new key.
    OversizedValue(Vec<u8>, usize),
    Clear,
}

/// Keys: mostly short strings over a tiny alphabet (so that keys repeat, and that `a` and
/// `a\0` meet as one key), sometimes long random ones. Truncated to `key_size` when used.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(0u8..3, 0..=3),
        1 => prop::collection::vec(any::<u8>(), 0..=24),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=24)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (key(), value()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (key(), value()).prop_map(|(k, v)| Op::TryInsert(k, v)),
        3 => key().prop_map(Op::Remove),
        3 => key().prop_map(Op::Get),
        2 => (key(), prop::option::of(value())).prop_map(|(k, v)| Op::FetchUpdate(k, v)),
        1 => key().prop_map(Op::FetchIncrement),
        1 => (key(), 1usize..4).prop_map(|(k, extra)| Op::OversizedKey(k, extra)),
        1 => (key(), 1usize..4).prop_map(|(k, extra)| Op::OversizedValue(k, extra)),
        1 => Just(Op::Clear),
    ]
}

/// A key and its value, both padded.
type Entry = (Vec<u8>, Vec<u8>);

/// The map and its model, with the sizes both pad to.
struct Checked<'a> {
    map: &'a ByteMap,
    model: StdMap<Vec<u8>, Vec<u8>>,
    key_size: usize,
    value_size: usize,
}

impl Checked<'_> {
    fn truncate(bytes: &[u8], size: usize) -> &[u8] {
        &bytes[..bytes.len().min(size)]
    }

    /// An insert (or `try_insert` without `replace`) on both.
    fn insert(&mut self, key: &[u8], value: &[u8], replace: bool) -> Result<(), TestCaseError> {
        let key = Self::truncate(key, self.key_size);
        let value = Self::truncate(value, self.value_size);
        let (k, v) = (pad(key, self.key_size), pad(value, self.value_size));
        let got = if replace {
            self.map.insert(key, value)
        } else {
            self.map.try_insert(key, value)
        };
        match got {
            Ok(old) => {
                let expected = self.model.get(&k).cloned();
                if replace || expected.is_none() {
                    self.model.insert(k, v);
                }
                prop_assert_eq!(old, expected);
            }
            Err(Error::Full { capacity }) => {
                // Below 4096 slots a new key is refused exactly when every slot is taken.
                prop_assert_eq!(capacity as usize, self.map.capacity());
                prop_assert_eq!(self.model.len(), self.map.capacity());
                prop_assert!(!self.model.contains_key(&k), "Full for a present key");
            }
            Err(e) => prop_assert!(false, "insert: {}", e),
        }
        Ok(())
    }

    fn fetch_update(
        &mut self,
        key: &[u8],
        mut f: impl FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<(), TestCaseError> {
        let key = Self::truncate(key, self.key_size);
        let k = pad(key, self.key_size);
        let mut calls = 0;
        let mut seen = Vec::new();
        let got = self
            .map
            .fetch_update(key, |current| {
                calls += 1;
                seen = current.to_vec();
                f(current)
            })
            .unwrap();
        match self.model.get_mut(&k) {
            None => {
                prop_assert_eq!(got, Err(None));
                prop_assert_eq!(calls, 0);
            }
            Some(old) => {
                prop_assert_eq!(calls, 1);
                prop_assert_eq!(&seen, &*old);
                if let Some(new) = f(old) {
                    prop_assert_eq!(got, Ok(old.clone()));
                    *old = pad(&new, self.value_size);
                } else {
                    prop_assert_eq!(got, Err(Some(old.clone())));
                }
            }
        }
        Ok(())
    }

    fn oversized(
        &mut self,
        key: &[u8],
        key_extra: usize,
        value_extra: usize,
    ) -> Result<(), TestCaseError> {
        let before = self.map.len();
        let key = if key_extra > 0 {
            let mut long = pad(Self::truncate(key, self.key_size), self.key_size);
            long.extend(std::iter::repeat_n(1u8, key_extra));
            long
        } else {
            Self::truncate(key, self.key_size).to_vec()
        };
        let value = vec![7u8; self.value_size + value_extra];
        let k = pad(Self::truncate(&key, self.key_size), self.key_size);
        let present = self.model.get(&k).cloned();
        prop_assert!(matches!(
            self.map.insert(&key, &value),
            Err(Error::InvalidArgument(_))
        ));
        prop_assert!(matches!(
            self.map.try_insert(&key, &value),
            Err(Error::InvalidArgument(_))
        ));
        if key_extra > 0 {
            prop_assert!(matches!(self.map.get(&key), Err(Error::InvalidArgument(_))));
            prop_assert!(matches!(
                self.map.contains_key(&key),
                Err(Error::InvalidArgument(_))
            ));
            prop_assert!(matches!(
                self.map.remove(&key),
                Err(Error::InvalidArgument(_))
            ));
            prop_assert!(matches!(
                self.map.fetch_update(&key, |_| None),
                Err(Error::InvalidArgument(_))
            ));
        } else {
            // A value from the closure over value_size is refused and nothing is stored.
            let got = self.map.fetch_update(&key, |_| Some(value.clone()));
            if present.is_some() {
                prop_assert!(matches!(got, Err(Error::InvalidArgument(_))), "{:?}", got);
            } else {
                prop_assert!(matches!(got, Ok(Err(None))), "{:?}", got);
            }
        }
        // Nothing changed: the (in-size) key keeps its value, or stays absent.
        prop_assert_eq!(self.map.len(), before);
        prop_assert_eq!(self.map.get(&k).unwrap(), present);
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Insert(k, v) => self.insert(k, v, true)?,
            Op::TryInsert(k, v) => self.insert(k, v, false)?,
            Op::Remove(k) => {
                let k = Self::truncate(k, self.key_size);
                let expected = self.model.remove(&pad(k, self.key_size));
                prop_assert_eq!(self.map.remove(k).unwrap(), expected);
            }
            Op::Get(k) => {
                let k = Self::truncate(k, self.key_size);
                let expected = self.model.get(&pad(k, self.key_size)).cloned();
                prop_assert_eq!(self.map.contains_key(k).unwrap(), expected.is_some());
                prop_assert_eq!(self.map.get(k).unwrap(), expected);
            }
            Op::FetchUpdate(k, new) => {
                let size = self.value_size;
                let new = new.as_ref().map(|v| Self::truncate(v, size).to_vec());
                self.fetch_update(k, |_| new.clone())?;
            }
            Op::FetchIncrement(k) => {
                self.fetch_update(k, |v| Some(v.iter().map(|b| b.wrapping_add(1)).collect()))?;
            }
            Op::OversizedKey(k, extra) => self.oversized(k, *extra, 0)?,
            Op::OversizedValue(k, extra) => self.oversized(k, 0, *extra)?,
            Op::Clear => {
                self.map.clear();
                self.model.clear();
            }
        }
        prop_assert_eq!(self.map.len(), self.model.len());
        prop_assert!(self.map.len() <= self.map.capacity());
        Ok(())
    }

    /// Entries of `map` as a sorted list, checking every entry's sizes.
    fn entries(&self, map: &ByteMap) -> Result<Vec<Entry>, TestCaseError> {
        let mut entries = Vec::new();
        for entry in map.iter() {
            let (k, v) = entry.unwrap();
            prop_assert_eq!(k.len(), self.key_size);
            prop_assert_eq!(v.len(), self.value_size);
            entries.push((k, v));
        }
        entries.sort();
        Ok(entries)
    }

    fn check_end(&self, region: &Region) -> Result<(), TestCaseError> {
        let mut expected: Vec<_> = self.model.clone().into_iter().collect();
        expected.sort();
        let entries = self.entries(self.map)?;
        // No key twice.
        let distinct: BTreeSet<_> = entries.iter().map(|(k, _)| k.clone()).collect();
        prop_assert_eq!(distinct.len(), entries.len());
        prop_assert_eq!(&entries, &expected);
        prop_assert_eq!(self.map.len(), expected.len());
        prop_assert_eq!(self.map.is_empty(), expected.is_empty());
        prop_assert_eq!(self.map.recount(), expected.len());
        for (k, v) in &expected {
            prop_assert_eq!(self.map.get(k).unwrap(), Some(v.clone()));
        }
        // A second handle opened by name sees the same map, sizes included.
        let again = ByteMap::open(region, "m").unwrap();
        prop_assert_eq!(again.key_size(), self.key_size);
        prop_assert_eq!(again.value_size(), self.value_size);
        prop_assert_eq!(again.capacity(), self.map.capacity());
        prop_assert_eq!(self.entries(&again)?, expected);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn byte_map_matches_a_padded_model(
        capacity in prop::sample::select(vec![1u64, 2, 3, 5, 8, 13, 64]),
        key_size in 1usize..=24,
        value_size in 1usize..=24,
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let temp = temp_region("model");
        let map = ByteMap::get_or_create(&temp.region, "m", capacity, key_size, value_size).unwrap();
        prop_assert_eq!(map.capacity() as u64, capacity.next_power_of_two());
        prop_assert_eq!(map.key_size(), key_size);
        prop_assert_eq!(map.value_size(), value_size);
        prop_assert!(map.is_empty());
        let mut checked = Checked { map: &map, model: StdMap::new(), key_size, value_size };
        for op in &ops {
            checked.apply(op)?;
        }
        checked.check_end(&temp.region)?;
    }
}

// ---------------------------------------------------------------------------------------
// ByteMap: fixed cases
// ---------------------------------------------------------------------------------------

#[test]
fn byte_map_pads_keys_and_values() {
    let temp = temp_region("pad");
    let map = ByteMap::get_or_create(&temp.region, "m", 16, 4, 6).unwrap();
    assert_eq!(map.insert(b"a", b"xy").unwrap(), None);
    // "a", "a\0" and "a\0\0\0" are one key; the value comes back padded.
    assert_eq!(map.get(b"a\0").unwrap(), Some(b"xy\0\0\0\0".to_vec()));
    assert_eq!(
        map.insert(b"a\0\0\0", b"").unwrap(),
        Some(b"xy\0\0\0\0".to_vec())
    );
    assert_eq!(map.get(b"a").unwrap(), Some(vec![0; 6]));
    assert_eq!(map.try_insert(b"a\0", b"zz").unwrap(), Some(vec![0; 6]));
    // The empty key is the all-zero key.
    assert_eq!(map.insert(b"", b"e").unwrap(), None);
    assert_eq!(map.get(&[0; 4]).unwrap(), Some(b"e\0\0\0\0\0".to_vec()));
    assert!(!map.contains_key(b"b").unwrap());
    assert_eq!(map.len(), 2);
    let mut entries: Vec<_> = map.iter().map(Result::unwrap).collect();
    entries.sort();
    assert_eq!(
        entries,
        vec![
            (vec![0; 4], b"e\0\0\0\0\0".to_vec()),
            (b"a\0\0\0".to_vec(), vec![0; 6]),
        ]
    );
    assert_eq!(map.remove(b"a\0\0").unwrap(), Some(vec![0; 6]));
    assert_eq!(map.remove(b"a").unwrap(), None);
    map.clear();
    assert!(map.is_empty());
}

/// Oversized keys and values change nothing, for one-word and wide values.
#[test]
fn byte_map_refuses_oversized_keys_and_values() {
    let temp = temp_region("oversized");
    for (name, value_size) in [("narrow", 4usize), ("wide", 24)] {
        let map = ByteMap::get_or_create(&temp.region, name, 8, 5, value_size).unwrap();
        let old = vec![3u8; value_size];
        map.insert(b"k", &old).unwrap();
        let too_long_key = [1u8; 6];
        let too_long_value = vec![9u8; value_size + 1];
        for result in [
            map.insert(&too_long_key, b"v"),
            map.try_insert(&too_long_key, b"v"),
            map.insert(b"k", &too_long_value),
            map.try_insert(b"k", &too_long_value),
            map.insert(b"new", &too_long_value),
            map.try_insert(b"new", &too_long_value),
            map.get(&too_long_key),
            map.remove(&too_long_key),
        ] {
            assert!(
                matches!(result, Err(Error::InvalidArgument(_))),
                "{result:?}"
            );
        }
        assert!(matches!(
            map.contains_key(&too_long_key),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            map.fetch_update(&too_long_key, |_| None),
            Err(Error::InvalidArgument(_))
        ));
        // A closure returning an oversized value: refused, the old value stays.
        let mut calls = 0;
        let got = map.fetch_update(b"k", |current| {
            calls += 1;
            assert_eq!(current, &old[..]);
            Some(too_long_value.clone())
        });
        assert!(matches!(got, Err(Error::InvalidArgument(_))), "{got:?}");
        assert_eq!(calls, 1);
        assert_eq!(map.get(b"k").unwrap(), Some(old.clone()));
        assert_eq!(map.get(b"new").unwrap(), None);
        assert_eq!(map.len(), 1);
        // The key is still writable afterwards (no writer left behind on wide values).
        assert_eq!(
            map.fetch_update(b"k", |_| Some(vec![4])).unwrap(),
            Ok(old.clone())
        );
        assert_eq!(map.get(b"k").unwrap(), Some(pad(&[4], value_size)));
        assert_eq!(map.insert(b"k", b"").unwrap(), Some(pad(&[4], value_size)));
        assert_eq!(map.remove(b"k").unwrap(), Some(vec![0; value_size]));
    }
}

#[test]
fn byte_map_grows_past_its_initial_capacity() {
    let temp = temp_region("grow");
    let map = ByteMap::get_or_create(&temp.region, "m", 5, 2, 1).unwrap();
    assert_eq!(map.capacity(), 8);
    for i in 0..8u8 {
        assert_eq!(map.insert(&[i], &[i]).unwrap(), None);
    }
    // The ninth key grows the table instead of failing.
    assert_eq!(map.insert(&[8], &[8]).unwrap(), None);
    assert_eq!(map.try_insert(&[9], &[9]).unwrap(), None);
    assert!(map.capacity() >= 16, "capacity {}", map.capacity());
    for i in 0..10u8 {
        assert_eq!(map.get(&[i]).unwrap(), Some(vec![i]), "key {i}");
    }
    // Present keys still take new values, in whichever table they are.
    assert_eq!(map.insert(&[3], &[30]).unwrap(), Some(vec![3]));
    assert_eq!(map.try_insert(&[4], &[40]).unwrap(), Some(vec![4]));
    assert_eq!(map.remove(&[0]).unwrap(), Some(vec![0]));
    assert_eq!(map.len(), 9);
    let mut keys: Vec<u8> = map.iter().map(|e| e.unwrap().0[0]).collect();
    keys.sort_unstable();
    assert_eq!(keys, (1..10).collect::<Vec<u8>>());
    // Another handle opened afterwards sees the grown map.
    let again = ByteMap::open(&temp.region, "m").unwrap();
    assert_eq!(again.get(&[3]).unwrap(), Some(vec![30]));
    assert_eq!(again.capacity(), map.capacity());
}

/// Threads (on two region handles, as two processes would have) add to wide values with
/// `fetch_update` while readers check that no value is ever seen torn.
#[test]
fn byte_map_concurrent_wide_updates_add_up() {
    const KEYS: u8 = 8;
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 2000;
    /// A counter and its complement (a torn read breaks the pair), in 20 bytes.
    fn encode(n: u64) -> Vec<u8> {
        let mut v = n.to_le_bytes().to_vec();
        v.extend((!n).to_le_bytes());
        v.extend([0xab; 4]);
        v
    }
    fn decode(v: &[u8]) -> u64 {
        assert_eq!(v.len(), 20);
        let n = u64::from_le_bytes(v[..8].try_into().unwrap());
        assert_eq!(u64::from_le_bytes(v[8..16].try_into().unwrap()), !n, "torn");
        assert_eq!(&v[16..], &[0xab; 4], "torn");
        n
    }
    let temp = temp_region("wide-threads");
    let other = Region::open(&temp.path).unwrap(); // stands in for another process
    let map = ByteMap::get_or_create(&temp.region, "m", 64, 3, 20).unwrap();
    for k in 0..KEYS {
        map.insert(&[k], &encode(0)).unwrap();
    }
    let other_map = ByteMap::open(&other, "m").unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (map, stop) = (other_map.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for k in 0..KEYS {
                    decode(&map.get(&[k]).unwrap().unwrap());
                }
            }
        })
    };
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let map = if t % 2 == 0 {
                map.clone()
            } else {
                other_map.clone()
            };
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let key = [((round + t) % u64::from(KEYS)) as u8];
                    let got = map
                        .fetch_update(&key, |v| Some(encode(decode(v) + 1)))
                        .unwrap();
                    decode(&got.unwrap());
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let total: u64 = (0..KEYS)
        .map(|k| decode(&map.get(&[k]).unwrap().unwrap()))
        .sum();
    assert_eq!(total, THREADS * ROUNDS);
    assert_eq!(map.len(), usize::from(KEYS));
}

// ---------------------------------------------------------------------------------------
// Interop with the typed handles
// ---------------------------------------------------------------------------------------

#[test]
fn byte_map_and_typed_map_share_entries() {
    let temp = temp_region("map-interop");
    let region = &temp.region;
    let typed = region.hash_map::<u64, u64>("m", 64).unwrap();
    typed.insert(1, 100).unwrap();
    let bytes = ByteMap::open(region, "m").unwrap();
    assert_eq!((bytes.key_size(), bytes.value_size()), (8, 8));
    assert_eq!(bytes.capacity(), 64);
    assert_eq!(
        bytes.get(&1u64.to_le_bytes()).unwrap(),
        Some(100u64.to_le_bytes().to_vec())
    );
    assert_eq!(
        bytes
            .insert(&2u64.to_le_bytes(), &200u64.to_le_bytes())
            .unwrap(),
        None
    );
    assert_eq!(typed.get(&2).unwrap(), Some(200));
    // Short byte strings are the little-endian integers they pad to.
    assert_eq!(bytes.insert(&[3], &[0x34, 0x12]).unwrap(), None);
    assert_eq!(typed.get(&3).unwrap(), Some(0x1234));
    assert_eq!(
        bytes.remove(&1u64.to_le_bytes()).unwrap(),
        Some(100u64.to_le_bytes().to_vec())
    );
    assert_eq!(typed.get(&1).unwrap(), None);
    assert_eq!(typed.fetch_add(2, 5).unwrap(), 200);
    assert_eq!(
        bytes.get(&2u64.to_le_bytes()).unwrap(),
        Some(205u64.to_le_bytes().to_vec())
    );
    assert_eq!((typed.len(), bytes.len()), (2, 2));

    // get_or_create with the same sizes opens it; other sizes or capacity are refused.
    let same = ByteMap::get_or_create(region, "m", 64, 8, 8).unwrap();
    assert_eq!(same.len(), 2);
    for (capacity, key_size, value_size) in [(64, 8, 16), (64, 16, 8), (64, 4, 8), (128, 8, 8)] {
        let got = ByteMap::get_or_create(region, "m", capacity, key_size, value_size);
        assert!(
            matches!(got, Err(Error::TypeMismatch { .. })),
            "{capacity} {key_size} {value_size}: {got:?}"
        );
    }
    // A map created as bytes opens as the typed map of those sizes, and only that one.
    let created = ByteMap::get_or_create(region, "b", 16, 8, 4).unwrap();
    created
        .insert(&7u64.to_le_bytes(), &9u32.to_le_bytes())
        .unwrap();
    let as_typed = region.open_hash_map::<u64, u32>("b").unwrap();
    assert_eq!(as_typed.get(&7).unwrap(), Some(9));
    assert!(matches!(
        region.open_hash_map::<u64, u64>("b"),
        Err(Error::TypeMismatch { .. })
    ));
    // A map is not a set, nor the other way round.
    assert!(matches!(
        ByteSet::open(region, "m"),
        Err(Error::TypeMismatch { .. })
    ));
    region.hash_set::<u32>("s", 16).unwrap();
    assert!(matches!(
        ByteMap::open(region, "s"),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        ByteMap::open(region, "nothing"),
        Err(Error::ObjectNotFound(_))
    ));
}

#[test]
fn byte_set_and_typed_set_share_members() {
    let temp = temp_region("set-interop");
    let region = &temp.region;
    let typed = region.hash_set::<u32>("s", 16).unwrap();
    typed.insert(5).unwrap();
    let bytes = ByteSet::open(region, "s").unwrap();
    assert_eq!(bytes.key_size(), 4);
    assert!(bytes.contains(&5u32.to_le_bytes()).unwrap());
    assert!(bytes.contains(&[5]).unwrap());
    assert!(bytes.insert(&[6, 1]).unwrap());
    assert!(typed.contains(&0x106).unwrap());
    assert!(matches!(
        ByteSet::get_or_create(region, "s", 16, 8),
        Err(Error::TypeMismatch { .. })
    ));
}

#[test]
fn byte_queue_and_typed_queue_share_elements() {
    let temp = temp_region("queue-interop");
    let region = &temp.region;
    let typed = region.queue::<[u8; 5]>("q", 8).unwrap();
    typed.try_push([1, 2, 3, 4, 5]).unwrap();
    let bytes = ByteQueue::open(region, "q").unwrap();
    assert_eq!((bytes.elem_size(), bytes.capacity()), (5, 8));
    assert_eq!(bytes.len(), 1);
    bytes.try_push(b"ab").unwrap();
    typed.try_push([9; 5]).unwrap();
    assert_eq!(bytes.try_pop(), Some(vec![1, 2, 3, 4, 5]));
    assert_eq!(typed.try_pop(), Some([b'a', b'b', 0, 0, 0]));
    assert_eq!(bytes.try_pop(), Some(vec![9; 5]));
    assert_eq!((typed.try_pop(), bytes.try_pop()), (None, None));
    // Created as bytes, opened typed (of that size only).
    let created = ByteQueue::get_or_create(region, "b", 4, 8).unwrap();
    created.try_push(&42u64.to_le_bytes()).unwrap();
    assert_eq!(Queue::<u64>::open(region, "b").unwrap().try_pop(), Some(42));
    assert!(matches!(
        Queue::<u32>::open(region, "b"),
        Err(Error::TypeMismatch { .. })
    ));
    for (capacity, elem_size) in [(4, 4), (8, 8)] {
        let got = ByteQueue::get_or_create(region, "b", capacity, elem_size);
        assert!(
            matches!(got, Err(Error::TypeMismatch { .. })),
            "{capacity} {elem_size}: {got:?}"
        );
    }
}

#[test]
fn byte_list_and_typed_list_share_elements() {
    let temp = temp_region("list-interop");
    let region = &temp.region;
    let typed = region.list::<u32>("l", 10).unwrap();
    assert_eq!(typed.push(7).unwrap(), 0);
    let bytes = ByteList::open(region, "l").unwrap();
    assert_eq!(
        (bytes.elem_size(), bytes.capacity(), bytes.len()),
        (4, 10, 1)
    );
    assert_eq!(bytes.get(0).unwrap(), Some(7u32.to_le_bytes().to_vec()));
    assert_eq!(bytes.push(&[9]).unwrap(), 1);
    assert_eq!(typed.get(1).unwrap(), Some(9));
    bytes.set(0, &[1, 2]).unwrap();
    assert_eq!(typed.get(0).unwrap(), Some(0x0201));
    typed.set(1, 0xdead_beef).unwrap();
    assert_eq!(
        bytes.get(1).unwrap(),
        Some(0xdead_beef_u32.to_le_bytes().to_vec())
    );
    assert_eq!(typed.len(), 2);
    assert!(matches!(
        region.open_list::<u64>("l"),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        ByteList::get_or_create(region, "l", 10, 8),
        Err(Error::TypeMismatch { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// ByteQueue
// ---------------------------------------------------------------------------------------

#[test]
fn byte_queue_is_fifo_with_full_and_empty() {
    let temp = temp_region("queue");
    let queue = ByteQueue::get_or_create(&temp.region, "q", 4, 3).unwrap();
    assert_eq!((queue.capacity(), queue.elem_size()), (4, 3));
    assert!(queue.is_empty());
    assert_eq!(queue.try_pop(), None);
    for element in [&b"a"[..], b"bc", b"def", b""] {
        queue.try_push(element).unwrap();
    }
    assert_eq!(queue.len(), 4);
    // Full: the element comes back.
    assert!(matches!(queue.try_push(b"x"), Err(PushError::Full(b"x"))));
    assert!(matches!(
        queue.push_timeout(b"x", Some(Duration::ZERO)),
        Err(PushError::Full(b"x"))
    ));
    let start = Instant::now();
    assert!(matches!(
        queue.push_timeout(b"x", Some(Duration::from_millis(10))),
        Err(PushError::Full(b"x"))
    ));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(10), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // Oversized: refused whether or not there is room.
    assert!(matches!(
        queue.try_push(b"abcd"),
        Err(PushError::Failed(Error::InvalidArgument(_), b"abcd"))
    ));
    assert_eq!(queue.try_pop(), Some(b"a\0\0".to_vec()));
    assert!(matches!(
        queue.try_push(b"abcd"),
        Err(PushError::Failed(Error::InvalidArgument(_), b"abcd"))
    ));
    assert!(matches!(
        queue.push_timeout(b"abcd", None),
        Err(PushError::Failed(Error::InvalidArgument(_), _))
    ));
    // `?` turns them into the crate's error.
    assert!(matches!(
        Error::from(queue.try_push(b"abcd").unwrap_err()),
        Error::InvalidArgument(_)
    ));
    assert_eq!(queue.len(), 3);
    queue.push_timeout(b"g", Some(Duration::ZERO)).unwrap();
    assert_eq!(queue.try_pop(), Some(b"bc\0".to_vec()));
    assert_eq!(queue.try_pop(), Some(b"def".to_vec()));
    assert_eq!(queue.try_pop(), Some(vec![0; 3]));
    assert_eq!(queue.pop_timeout(None), Some(b"g\0\0".to_vec()));
    assert_eq!(queue.try_pop(), None);
    assert_eq!(queue.pop_timeout(Some(Duration::ZERO)), None);
    let start = Instant::now();
    assert_eq!(queue.pop_timeout(Some(Duration::from_millis(10))), None);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(10), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(queue.is_empty());
    // Wraps around many times.
    for round in 0..50u8 {
        queue.try_push(&[round, 1]).unwrap();
        queue.try_push(&[round, 2, 3]).unwrap();
        assert_eq!(queue.try_pop(), Some(vec![round, 1, 0]));
        assert_eq!(queue.try_pop(), Some(vec![round, 2, 3]));
    }
    assert_eq!((queue.lost(), queue.skipped()), (0, 0));
}

#[test]
fn byte_queue_of_empty_elements() {
    let temp = temp_region("queue-empty");
    let queue = ByteQueue::get_or_create(&temp.region, "q", 3, 0).unwrap();
    assert_eq!(queue.elem_size(), 0);
    for _ in 0..3 {
        queue.try_push(b"").unwrap();
    }
    assert!(matches!(queue.try_push(b""), Err(PushError::Full(b""))));
    assert!(matches!(
        queue.try_push(b"x"),
        Err(PushError::Failed(Error::InvalidArgument(_), _))
    ));
    assert_eq!(queue.len(), 3);
    for _ in 0..3 {
        assert_eq!(queue.try_pop(), Some(Vec::new()));
    }
    assert_eq!(queue.try_pop(), None);
    assert_eq!(ByteQueue::open(&temp.region, "q").unwrap().elem_size(), 0);
}

#[test]
fn byte_queue_refuses_bad_shapes() {
    let temp = temp_region("queue-shapes");
    for (capacity, elem_size) in [(0u64, 4usize), (4, 65_536), ((1 << 31) + 1, 1)] {
        let got = ByteQueue::get_or_create(&temp.region, "q", capacity, elem_size);
        assert!(
            matches!(got, Err(Error::InvalidArgument(_))),
            "{capacity} {elem_size}: {got:?}"
        );
    }
}

#[test]
fn byte_queue_hands_each_element_over_once_in_order() {
    const COUNT: u64 = 10_000;
    let temp = temp_region("queue-threads");
    let queue = Arc::new(ByteQueue::get_or_create(&temp.region, "q", 8, 12).unwrap());
    let consumer = {
        let queue = Arc::clone(&queue);
        std::thread::spawn(move || {
            (0..COUNT)
                .map(|_| queue.pop_timeout(None).unwrap())
                .collect::<Vec<_>>()
        })
    };
    for i in 0..COUNT {
        // 8 of the 12 bytes: the rest comes back zero.
        queue.push_timeout(&i.to_le_bytes(), None).unwrap();
    }
    let popped = consumer.join().unwrap();
    assert_eq!(popped.len(), COUNT as usize);
    for (i, element) in (0..COUNT).zip(&popped) {
        assert_eq!(element, &pad(&i.to_le_bytes(), 12), "element {i}");
    }
    assert_eq!(queue.try_pop(), None);
    assert_eq!((queue.lost(), queue.skipped()), (0, 0));
}

// ---------------------------------------------------------------------------------------
// ByteList
// ---------------------------------------------------------------------------------------

#[test]
fn byte_list_push_get_set() {
    let temp = temp_region("list");
    let list = ByteList::get_or_create(&temp.region, "l", 3, 5).unwrap();
    assert_eq!((list.capacity(), list.elem_size()), (3, 5));
    assert!(list.is_empty());
    assert!(matches!(
        list.get(0),
        Err(Error::IndexOutOfBounds { index: 0, len: 0 })
    ));
    assert!(matches!(
        list.set(0, b"a"),
        Err(Error::IndexOutOfBounds { index: 0, len: 0 })
    ));
    assert_eq!(list.push(b"ab").unwrap(), 0);
    assert!(matches!(
        list.push(b"toolong"),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(list.len(), 1);
    assert_eq!(list.push(b"").unwrap(), 1);
    assert_eq!(list.push(b"hello").unwrap(), 2);
    assert!(matches!(
        list.push(b"toolong"),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(list.len(), 3);
    assert_eq!(list.get(0).unwrap(), Some(b"ab\0\0\0".to_vec()));
    assert_eq!(list.get(1).unwrap(), Some(vec![0; 5]));
    assert_eq!(list.get(2).unwrap(), Some(b"hello".to_vec()));
    list.set(1, b"xyz").unwrap();
    assert_eq!(list.get(1).unwrap(), Some(b"xyz\0\0".to_vec()));
    list.set(2, b"").unwrap();
    assert_eq!(list.get(2).unwrap(), Some(vec![0; 5]));
    assert!(matches!(
        list.set(3, b"a"),
        Err(Error::IndexOutOfBounds { index: 3, len: 3 })
    ));
    assert!(matches!(
        list.get(3),
        Err(Error::IndexOutOfBounds { index: 3, len: 3 })
    ));
    assert!(matches!(
        list.set(0, b"toolong"),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(list.get(0).unwrap(), Some(b"ab\0\0\0".to_vec()));
    let again = ByteList::open(&temp.region, "l").unwrap();
    assert_eq!((again.len(), again.elem_size()), (3, 5));
    assert_eq!(again.get(1).unwrap(), Some(b"xyz\0\0".to_vec()));
    for (capacity, elem_size) in [(0u64, 4usize), (4, 65_536)] {
        let got = ByteList::get_or_create(&temp.region, "x", capacity, elem_size);
        assert!(
            matches!(got, Err(Error::InvalidArgument(_))),
            "{capacity} {elem_size}: {got:?}"
        );
    }
}

#[test]
fn byte_list_concurrent_pushes_get_distinct_indices() {
    const THREADS: usize = 4;
    const EACH: usize = 250;
    let temp = temp_region("list-threads");
    let list = Arc::new(ByteList::get_or_create(&temp.region, "l", 1000, 16).unwrap());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let list = Arc::clone(&list);
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|i| {
                        let element = [t as u8, (i >> 8) as u8, i as u8];
                        (list.push(&element).unwrap(), element)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut indices = BTreeSet::new();
    for thread in threads {
        let mut last = None;
        for (index, element) in thread.join().unwrap() {
            // One thread's pushes get increasing indices.
            assert!(last.is_none_or(|last| index > last));
            last = Some(index);
            assert!(indices.insert(index), "index {index} twice");
            assert_eq!(list.get(index).unwrap(), Some(pad(&element, 16)));
        }
    }
    assert_eq!(indices, (0..THREADS * EACH).collect());
    // Past the first capacity the list grows.
    assert_eq!(list.push(b"").unwrap(), 1000);
    assert_eq!(list.capacity(), 2000);
}

// ---------------------------------------------------------------------------------------
// ByteSet
// ---------------------------------------------------------------------------------------

#[test]
fn byte_set_members() {
    let temp = temp_region("set");
    let set = ByteSet::get_or_create(&temp.region, "s", 8, 6).unwrap();
    assert_eq!((set.capacity(), set.key_size()), (8, 6));
    assert!(set.is_empty());
    assert!(set.insert(b"alpha").unwrap());
    assert!(!set.insert(b"alpha").unwrap());
    assert!(!set.insert(b"alpha\0").unwrap()); // the same key, padded
    assert!(set.insert(b"beta").unwrap());
    assert!(set.insert(b"").unwrap());
    assert!(set.contains(b"alpha").unwrap());
    assert!(set.contains(b"beta\0").unwrap());
    assert!(set.contains(&[0; 6]).unwrap());
    assert!(!set.contains(b"gamma").unwrap());
    assert_eq!(set.len(), 3);
    let members: BTreeSet<Vec<u8>> = set.iter().map(Result::unwrap).collect();
    let expected: BTreeSet<Vec<u8>> = [b"alpha\0".to_vec(), b"beta\0\0".to_vec(), vec![0; 6]]
        .into_iter()
        .collect();
    assert_eq!(members, expected);
    assert!(set.remove(b"beta").unwrap());
    assert!(!set.remove(b"beta").unwrap());
    assert!(!set.contains(b"beta").unwrap());
    assert_eq!(set.len(), 2);
    // Oversized keys are refused and change nothing.
    assert!(matches!(
        set.insert(b"toolong"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        set.contains(b"toolong"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        set.remove(b"alpha\0\0"),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(set.len(), 2);
    // Past its initial capacity the set grows.
    for i in 0..6u8 {
        assert!(set.insert(&[b'x', i]).unwrap());
    }
    assert_eq!(set.len(), 8);
    assert!(set.insert(b"y").unwrap());
    assert!(set.capacity() >= 16);
    assert!(!set.insert(b"alpha").unwrap());
    let again = ByteSet::open(&temp.region, "s").unwrap();
    assert_eq!((again.len(), again.key_size()), (9, 6));
    assert_eq!(again.recount(), 9);
    again.clear();
    assert!(set.is_empty());
    assert_eq!(set.iter().count(), 0);
}
