//! The hash map workloads of `shmarena bench` (the conc-map-bench mixes), their
//! in-process peers, and the plain-probe limit.
//!
//! Every map has [`MAP_SLOTS`] slots (or room for as many entries) and draws keys from a
//! universe of [`UNIVERSE`] pseudo-random `u64`s (75% of the slots), every map hashing as
//! shmarena's does (`shmarena::hash_map::hash_key`, seeded from the region):
//!
//! - read-heavy: 98% get, 1% insert, 1% remove; the whole universe prefilled (load 0.75);
//! - exchange: 10% get, 40% insert, 40% remove, 10% update (+1); half prefilled;
//! - rapid-grow: 5% get, 80% insert, 5% remove, 10% update; starting empty (the universe
//!   fits: the map never passes load 0.75).
//!
//! shmarena's `HashMap<u64, u64>` runs in worker processes; papaya, dashmap and a
//! `Mutex<std::collections::HashMap>` run in threads of the parent, the way a program
//! without shared memory would use them. `map-probe-limit` is what no map get can beat: a
//! read-only linear probe for present keys over a plain table of keys in the same kind of
//! mapping (an `Array<u64>` of `MAP_SLOTS` slots at load 0.75).

use std::collections::HashMap as StdMap;
use std::sync::Mutex;

use shmarena::{Array, Region, RegionExt};
use shmarena_benches::{keys, SameHash};

/// Slots of every map (and of the plain probe table).
pub const MAP_SLOTS: u64 = 1 << 20;
/// Keys the workloads draw from.
pub const UNIVERSE: usize = (MAP_SLOTS as usize) / 4 * 3;
/// Slots of shmarena's map in `map-rapid-grow`: it grows from there, as the peers grow
/// from their default size.
pub const GROW_FROM: u64 = 16;

impl Mix {
    /// Room a map of this mix is created with: the universe, or (rapid-grow) none.
    pub fn initial_room(self) -> usize {
        if self == Mix::RapidGrow {
            0
        } else {
            UNIVERSE
        }
    }
}

/// Name of the map in a bench region.
pub const MAP: &str = "bench.map";
/// Name of the plain probe table.
pub const PROBE: &str = "bench.probe";

/// An operation mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// 98% get, 1% insert, 1% remove.
    ReadHeavy,
    /// 10% get, 40% insert, 40% remove, 10% update.
    Exchange,
    /// 5% get, 80% insert, 5% remove, 10% update, from empty.
    RapidGrow,
}

impl Mix {
    /// Whether key `index` of the universe is in the map before the run.
    fn prefilled(self, index: usize) -> bool {
        match self {
            Mix::ReadHeavy => true,
            Mix::Exchange => index.is_multiple_of(2),
            Mix::RapidGrow => false,
        }
    }
}

/// The universe of keys (the same in every process).
pub fn universe() -> Vec<u64> {
    keys(1, UNIVERSE)
}

/// The map operations a mix needs.
pub trait BenchMap: Sync {
    /// Looks `key` up.
    fn get(&self, key: u64) -> Option<u64>;
    /// Inserts or replaces.
    fn insert(&self, key: u64, value: u64);
    /// Removes.
    fn remove(&self, key: u64);
    /// Adds one to the value, if present.
    fn update(&self, key: u64);
}

impl BenchMap for shmarena::HashMap<u64, u64> {
    fn get(&self, key: u64) -> Option<u64> {
        shmarena::HashMap::get(self, &key).expect("map get")
    }
    fn insert(&self, key: u64, value: u64) {
        shmarena::HashMap::insert(self, key, value).expect("map insert (sized to fit)");
    }
    fn remove(&self, key: u64) {
        shmarena::HashMap::remove(self, &key).expect("map remove");
    }
    fn update(&self, key: u64) {
        let _ = self
            .fetch_update(&key, |v| Some(v.wrapping_add(1)))
            .expect("map update");
    }
}

impl BenchMap for papaya::HashMap<u64, u64, SameHash> {
    fn get(&self, key: u64) -> Option<u64> {
        self.pin().get(&key).copied()
    }
    fn insert(&self, key: u64, value: u64) {
        self.pin().insert(key, value);
    }
    fn remove(&self, key: u64) {
        self.pin().remove(&key);
    }
    fn update(&self, key: u64) {
        self.pin().update(key, |v| v.wrapping_add(1));
    }
}

impl BenchMap for dashmap::DashMap<u64, u64, SameHash> {
    fn get(&self, key: u64) -> Option<u64> {
        dashmap::DashMap::get(self, &key).map(|v| *v)
    }
    fn insert(&self, key: u64, value: u64) {
        dashmap::DashMap::insert(self, key, value);
    }
    fn remove(&self, key: u64) {
        dashmap::DashMap::remove(self, &key);
    }
    fn update(&self, key: u64) {
        if let Some(mut v) = self.get_mut(&key) {
            *v = v.wrapping_add(1);
        }
    }
}

impl BenchMap for Mutex<StdMap<u64, u64, SameHash>> {
    fn get(&self, key: u64) -> Option<u64> {
        self.lock().expect("bench mutex").get(&key).copied()
    }
    fn insert(&self, key: u64, value: u64) {
        self.lock().expect("bench mutex").insert(key, value);
    }
    fn remove(&self, key: u64) {
        self.lock().expect("bench mutex").remove(&key);
    }
    fn update(&self, key: u64) {
        if let Some(v) = self.lock().expect("bench mutex").get_mut(&key) {
            *v = v.wrapping_add(1);
        }
    }
}

/// Fills `map` for `mix`.
pub fn prefill(map: &impl BenchMap, keys: &[u64], mix: Mix) {
    for (index, &key) in keys.iter().enumerate() {
        if mix.prefilled(index) {
            map.insert(key, !key);
        }
    }
}

/// One operation of `mix` drawn from `state` (a xorshift64 state, advanced by the caller);
/// returns something to keep the compiler from dropping reads.
#[inline]
pub fn step(map: &impl BenchMap, keys: &[u64], mix: Mix, state: u64) -> u64 {
    let key = keys[(state % UNIVERSE as u64) as usize];
    let roll = (state >> 40) % 100;
    match (mix, roll) {
        (Mix::ReadHeavy, 0..98) | (Mix::Exchange, 0..10) | (Mix::RapidGrow, 0..5) => {
            map.get(key).unwrap_or(0)
        }
        (Mix::ReadHeavy, 98) | (Mix::Exchange, 10..50) | (Mix::RapidGrow, 5..85) => {
            map.insert(key, state);
            0
        }
        (Mix::ReadHeavy, _) | (Mix::Exchange, 50..90) | (Mix::RapidGrow, 85..90) => {
            map.remove(key);
            0
        }
        (Mix::Exchange | Mix::RapidGrow, _) => {
            map.update(key);
            0
        }
    }
}

/// An in-process peer map with the bench hasher, empty, with room for `room` entries.
pub fn papaya_map(seed: u64, room: usize) -> papaya::HashMap<u64, u64, SameHash> {
    papaya::HashMap::with_capacity_and_hasher(room, SameHash::with_seed(seed))
}

/// See [`papaya_map`].
pub fn dash_map(seed: u64, room: usize) -> dashmap::DashMap<u64, u64, SameHash> {
    dashmap::DashMap::with_capacity_and_hasher(room, SameHash::with_seed(seed))
}

/// See [`papaya_map`].
pub fn mutex_map(seed: u64, room: usize) -> Mutex<StdMap<u64, u64, SameHash>> {
    Mutex::new(StdMap::with_capacity_and_hasher(
        room,
        SameHash::with_seed(seed),
    ))
}

/// Creates and fills the plain probe table: every key of the universe at the first free
/// slot from its hash (linear probing; zero marks a free slot, and no key is zero).
pub fn create_probe_table(region: &Region, keys: &[u64]) -> shmarena::Result<Array<u64>> {
    let table = region.array_zeroed::<u64>(PROBE, MAP_SLOTS as usize)?;
    let mask = MAP_SLOTS - 1;
    for &key in keys {
        let mut slot = probe_hash(region.hash_seed(), key) & mask;
        while table.get(slot as usize)? != 0 {
            slot = (slot + 1) & mask;
        }
        table.set(slot as usize, key)?;
    }
    Ok(table)
}

/// The hash the probe table uses (the map's hash function).
#[inline]
pub fn probe_hash(seed: u64, key: u64) -> u64 {
    shmarena::hash_map::hash_key(&[key], seed)
}

/// One read-only probe for a present key: loads from the key's hash slot on until the key.
#[inline]
pub fn probe(table: &Array<u64>, seed: u64, key: u64) -> u64 {
    let mask = MAP_SLOTS - 1;
    let mut slot = probe_hash(seed, key) & mask;
    for _ in 0..MAP_SLOTS {
        let found = table.get(slot as usize).expect("slot masked to the table");
        if found == key || found == 0 {
            return slot;
        }
        slot = (slot + 1) & mask;
    }
    slot
}
