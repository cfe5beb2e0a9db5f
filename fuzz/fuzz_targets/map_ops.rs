//! Fuzz target `map_ops`: a `HashMap<u16, u32>` against `std::collections::HashMap`
//! (differential).
//!
//! Byte 0 picks the initial capacity (`1 << (b % 8)` slots: 1 to 128, so the map grows
//! often, while operations go on, and both lookup paths run: by hint byte below 64 slots,
//! by 8-byte hint groups from 64);
//! the rest is a list of operations (an opcode byte `% 7`: insert, try_insert, remove, get,
//! compare_exchange, fetch_add, clear), each followed by a key byte (keys `0..160`) and,
//! where needed, a value byte. Single-threaded, so every result is exact: every result
//! equals the model's (no insert fails: the map grows), `len` equals the model's after every
//! step and the capacity is at least that. At the end the entries equal the model's and
//! `check_region` reports no `Error`.

#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shmarena::{Error, HashMap, RegionExt};

/// The process's scratch region (256 KiB, reset before every input).
fn scratch() -> &'static common::Scratch {
    static SCRATCH: OnceLock<common::Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| common::Scratch::new("map", 256 * 1024, &common::one_object_options()))
}

/// Keys are `0..KEYS`.
const KEYS: usize = 160;

/// The model: a value slot per key (cheaper than a `std` map, whose hashing and probing
/// would be instrumented code too).
struct Model {
    values: [Option<u32>; KEYS],
    len: usize,
}

impl Model {
    fn new() -> Self {
        Self {
            values: [None; KEYS],
            len: 0,
        }
    }

    fn get(&self, key: u16) -> Option<u32> {
        self.values[usize::from(key)]
    }

    fn insert(&mut self, key: u16, value: u32) -> Option<u32> {
        let old = self.values[usize::from(key)].replace(value);
        self.len += usize::from(old.is_none());
        old
    }

    fn remove(&mut self, key: u16) -> Option<u32> {
        let old = self.values[usize::from(key)].take();
        self.len -= usize::from(old.is_some());
        old
    }

    fn clear(&mut self) {
        *self = Self::new();
    }

    /// The entries in key order.
    fn entries(&self) -> Vec<(u16, u32)> {
        (0..KEYS as u16)
            .filter_map(|key| Some((key, self.get(key)?)))
            .collect()
    }
}

fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let capacity = 1usize << (first % 8);
    let region = scratch().reset();
    let map: HashMap<u16, u32> = region
        .hash_map("m", capacity as u64)
        .expect("create the map");
    assert_eq!(map.capacity(), capacity);
    let mut model = Model::new();
    let mut bytes = rest.iter().copied();
    let mut next = move || bytes.next();
    for step in 0.. {
        let Some(code) = next() else { break };
        let mut next = || next().unwrap_or(0);
        let code = code % 7;
        let key = u16::from(next()) % KEYS as u16;
        if common::trace() {
            let ops = [
                "insert",
                "try_insert",
                "remove",
                "get",
                "compare_exchange",
                "fetch_add",
                "clear",
            ];
            eprintln!(
                "{step}: {} key {key} (model holds {})",
                ops[usize::from(code)],
                model.len
            );
        }
        match code {
            0 | 1 => {
                let value = u32::from(next());
                let result = if code == 0 {
                    map.insert(key, value)
                } else {
                    map.try_insert(key, value)
                };
                if code == 0 {
                    assert_eq!(result.unwrap(), model.insert(key, value), "step {step}");
                } else {
                    let present = model.get(key);
                    if present.is_none() {
                        model.insert(key, value);
                    }
                    assert_eq!(result.unwrap(), present, "step {step}");
                }
            }
            2 => assert_eq!(map.remove(&key).unwrap(), model.remove(key), "step {step}"),
            3 => {
                assert_eq!(map.get(&key).unwrap(), model.get(key), "step {step}");
                assert_eq!(map.contains_key(&key).unwrap(), model.get(key).is_some());
            }
            4 => {
                let (current, new) = (u32::from(next() % 4), u32::from(next()));
                let got = map.compare_exchange(&key, current, new).unwrap();
                match model.get(key) {
                    None => assert_eq!(got, Err(None), "step {step}"),
                    Some(v) if v == current => {
                        assert_eq!(got, Ok(current), "step {step}");
                        model.insert(key, new);
                    }
                    Some(v) => assert_eq!(got, Err(Some(v)), "step {step}"),
                }
            }
            5 => {
                let delta = u32::from(next()) << 20;
                let result = map.fetch_add(key, delta);
                let old = model.get(key).unwrap_or(0);
                match old.checked_add(delta) {
                    Some(sum) => {
                        assert_eq!(result.unwrap(), old, "step {step}");
                        model.insert(key, sum);
                    }
                    None => assert!(matches!(result, Err(Error::Overflow)), "step {step}"),
                }
            }
            _ => {
                map.clear();
                model.clear();
            }
        }
        assert_eq!(map.len(), model.len, "step {step}: len");
        assert!(map.capacity() >= model.len, "step {step}: capacity");
    }
    let mut entries: Vec<(u16, u32)> = map.iter().map(Result::unwrap).collect();
    entries.sort_unstable();
    assert_eq!(entries, model.entries());
    common::assert_check_clean(region);
}

fuzz_target!(
    init: {
        // Every operation on a 64-slot table that grows, then a reset: the region must be
        // as new.
        let mut input = vec![6];
        for key in 0..70u8 {
            input.extend_from_slice(&[0, key, key, 5, key, 1, 4, key, 1, 2]);
        }
        for key in 0..100u8 {
            input.extend_from_slice(&[2, key, 1, key, 3, 3, key, 6, 0]);
        }
        run(&input);
        run(&[]);
        scratch().reset();
        scratch().assert_pristine();
    },
    |data: &[u8]| run(data)
);
