//! Criterion micro-benchmark of `HashMap<u64, u64>` in one process: tables of 2^12 and 2^20
//! slots at load 0.75, get hit, get miss, insert (replacing), fetch_add and remove+insert
//! of a present key, against `hashbrown::HashMap`, papaya and dashmap built with the same
//! hash, and for lookups a floor (a linear-probe table of atomic key and value words: what
//! a lookup in shared memory cannot beat). Every map hashes with
//! `shmarena::hash_map::hash_key` and one seed. Each group is named by operation and size
//! (`map_get_hit_small`, ...). One thread: the cost of the operations themselves; the
//! multi-process mixes are `shmarena bench --workloads map-read-heavy,map-exchange`.
//!
//! Keys are visited in a fixed pseudo-random order (the large table misses cache, as real
//! lookups do).
//!
//! `cargo bench -p shmarena-benches --bench map -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::Criterion;
use shmarena::RegionExt;
use shmarena_benches::{keys, SameHash, TempRegion};

/// The table sizes measured: one that fits in cache and one that does not.
const SIZES: [(&str, usize); 2] = [("small", 1 << 12), ("large", 1 << 20)];

/// The floor: a linear-probe table of (key, value) `AtomicU64` pairs, 0 marking a free
/// slot, probed with the same hash; what a lookup in shared memory cannot beat.
struct Floor {
    words: Vec<std::sync::atomic::AtomicU64>,
    mask: u64,
    seed: u64,
}

impl Floor {
    fn new(slots: usize, seed: u64, keys: &[u64]) -> Self {
        let words = (0..2 * slots)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect();
        let floor = Self {
            words,
            mask: slots as u64 - 1,
            seed,
        };
        for &key in keys {
            let mut slot = floor.home(key);
            while floor.key_at(slot) != 0 {
                slot = (slot + 1) & floor.mask;
            }
            floor.words[2 * slot as usize].store(key, std::sync::atomic::Ordering::Relaxed);
            floor.words[2 * slot as usize + 1].store(!key, std::sync::atomic::Ordering::Relaxed);
        }
        floor
    }

    #[inline]
    fn home(&self, key: u64) -> u64 {
        shmarena::hash_map::hash_key(&[key], self.seed) & self.mask
    }

    #[inline]
    fn key_at(&self, slot: u64) -> u64 {
        self.words[2 * slot as usize].load(std::sync::atomic::Ordering::Acquire)
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        let mut slot = self.home(key);
        loop {
            match self.key_at(slot) {
                0 => return None,
                found if found == key => {
                    let value = &self.words[2 * slot as usize + 1];
                    return Some(value.load(std::sync::atomic::Ordering::Acquire));
                }
                _ => slot = (slot + 1) & self.mask,
            }
        }
    }
}

#[allow(clippy::too_many_lines)] // one group per operation, each with every peer
fn bench_map(
    c: &mut Criterion,
    temp: &TempRegion,
    size: &str,
    slots: usize,
) -> shmarena::Result<()> {
    let entries = slots / 4 * 3;
    let region = temp.region();
    let hasher = SameHash::with_seed(region.hash_seed());
    let present = keys(1, entries);
    let absent = keys(2, entries);

    let map = region.hash_map::<u64, u64>(&format!("bench-{size}"), slots as u64)?;
    let mut brown = hashbrown::HashMap::with_capacity_and_hasher(entries, hasher);
    let papaya = papaya::HashMap::with_capacity_and_hasher(entries, hasher);
    let dash = dashmap::DashMap::with_capacity_and_hasher(entries, hasher);
    let floor = Floor::new(slots, region.hash_seed(), &present);
    for &key in &present {
        map.insert(key, !key)?;
        brown.insert(key, !key);
        papaya.pin().insert(key, !key);
        dash.insert(key, !key);
    }
    let papaya_guard = papaya.pin();
    let (papaya, map, dash, floor) = (&papaya_guard, &map, &dash, &floor);
    let (present, absent) = (&present, &absent);

    macro_rules! cycle {
        ($keys:expr, |$key:ident| $body:expr) => {{
            let mut i = 0usize;
            move |b: &mut criterion::Bencher| {
                b.iter(|| {
                    i = if i + 1 == $keys.len() { 0 } else { i + 1 };
                    let $key = $keys[i];
                    black_box($body)
                })
            }
        }};
    }
    /// `cycle!` for hashbrown, which needs `&mut` for its writes.
    macro_rules! cycle_mut {
        ($keys:expr, $map:ident, |$key:ident| $body:expr) => {{
            let mut i = 0usize;
            let $map = &mut brown;
            move |b: &mut criterion::Bencher| {
                b.iter(|| {
                    i = if i + 1 == $keys.len() { 0 } else { i + 1 };
                    let $key = $keys[i];
                    black_box($body)
                })
            }
        }};
    }

    let mut group = c.benchmark_group(format!("map_get_hit_{size}"));
    group.bench_function("shmarena", cycle!(present, |k| map.get(&k).unwrap()));
    group.bench_function("floor", cycle!(present, |k| floor.get(k)));
    group.bench_function("hashbrown", cycle_mut!(present, m, |k| m.get(&k).copied()));
    group.bench_function("papaya", cycle!(present, |k| papaya.get(&k).copied()));
    group.bench_function("dashmap", cycle!(present, |k| dash.get(&k).map(|v| *v)));
    group.finish();

    let mut group = c.benchmark_group(format!("map_get_miss_{size}"));
    group.bench_function("shmarena", cycle!(absent, |k| map.get(&k).unwrap()));
    group.bench_function("floor", cycle!(absent, |k| floor.get(k)));
    group.bench_function("hashbrown", cycle_mut!(absent, m, |k| m.get(&k).copied()));
    group.bench_function("papaya", cycle!(absent, |k| papaya.get(&k).copied()));
    group.bench_function("dashmap", cycle!(absent, |k| dash.get(&k).map(|v| *v)));
    group.finish();

    // Replaces the value of a present key.
    let mut group = c.benchmark_group(format!("map_insert_{size}"));
    group.bench_function("shmarena", cycle!(present, |k| map.insert(k, k).unwrap()));
    group.bench_function("hashbrown", cycle_mut!(present, m, |k| m.insert(k, k)));
    group.bench_function("papaya", cycle!(present, |k| papaya.insert(k, k).copied()));
    group.bench_function("dashmap", cycle!(present, |k| dash.insert(k, k)));
    group.finish();

    let mut group = c.benchmark_group(format!("map_fetch_add_{size}"));
    group.bench_function(
        "shmarena",
        cycle!(present, |k| map.fetch_add(k, 1).unwrap()),
    );
    group.bench_function(
        "hashbrown",
        cycle_mut!(present, m, |k| m.get_mut(&k).map(|v| {
            *v += 1;
            *v
        })),
    );
    group.bench_function(
        "papaya",
        cycle!(present, |k| papaya.update(k, |v| v + 1).copied()),
    );
    group.bench_function(
        "dashmap",
        cycle!(present, |k| dash.get_mut(&k).map(|mut v| {
            *v += 1;
            *v
        })),
    );
    group.finish();

    let mut group = c.benchmark_group(format!("map_remove_insert_{size}"));
    group.bench_function(
        "shmarena",
        cycle!(present, |k| {
            map.remove(&k).unwrap();
            map.insert(k, !k).unwrap()
        }),
    );
    group.bench_function(
        "hashbrown",
        cycle_mut!(present, m, |k| {
            m.remove(&k);
            m.insert(k, !k)
        }),
    );
    group.bench_function(
        "papaya",
        cycle!(present, |k| {
            papaya.remove(&k);
            papaya.insert(k, !k).copied()
        }),
    );
    group.bench_function(
        "dashmap",
        cycle!(present, |k| {
            dash.remove(&k);
            dash.insert(k, !k)
        }),
    );
    group.finish();
    Ok(())
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let temp = TempRegion::create("criterion-map", 256 << 20).expect("creating the bench region");
    for (size, slots) in SIZES {
        bench_map(&mut criterion, &temp, size, slots).expect("setting up the bench objects");
    }
    drop(temp);
    criterion.final_summary();
}
