//! Criterion micro-benchmark of `HashMap<u64, u64>` in one process: a table of 2^20 slots
//! holding 786,432 entries (load 0.75), get hit, get miss and remove+insert of a present
//! key, against `hashbrown::HashMap`, papaya and dashmap built with the same hash
//! (`shmarena::hash_map::hash_key` with a seed). One thread: the cost of the operations
//! themselves; the multi-process mixes are `shmarena bench --workloads
//! map-read-heavy,map-exchange`.
//!
//! Keys are visited in a fixed pseudo-random order (a table this size misses cache, as
//! real lookups do).
//!
//! `cargo bench -p shmarena-benches --bench map -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::Criterion;
use shmarena::RegionExt;
use shmarena_benches::{keys, SameHash, TempRegion};

const SLOTS: usize = 1 << 20;
const ENTRIES: usize = SLOTS / 4 * 3;

fn bench_map(c: &mut Criterion, temp: &TempRegion) -> shmarena::Result<()> {
    let region = temp.region();
    let hasher = SameHash::with_seed(region.hash_seed());
    let present = keys(1, ENTRIES);
    let absent = keys(2, ENTRIES);

    let map = region.hash_map::<u64, u64>("bench", SLOTS as u64)?;
    let mut brown = hashbrown::HashMap::with_capacity_and_hasher(ENTRIES, hasher);
    let papaya = papaya::HashMap::with_capacity_and_hasher(ENTRIES, hasher);
    let dash = dashmap::DashMap::with_capacity_and_hasher(ENTRIES, hasher);
    for &key in &present {
        map.insert(key, !key)?;
        brown.insert(key, !key);
        papaya.pin().insert(key, !key);
        dash.insert(key, !key);
    }
    let papaya_guard = papaya.pin();
    let (papaya, map, dash) = (&papaya_guard, &map, &dash);
    let (present, absent) = (&present, &absent);

    let mut group = c.benchmark_group("map_get_hit");
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
    group.bench_function("shmarena", cycle!(present, |k| map.get(&k).unwrap()));
    let brown_ref = &brown;
    group.bench_function("hashbrown", cycle!(present, |k| brown_ref.get(&k).copied()));
    group.bench_function("papaya", cycle!(present, |k| papaya.get(&k).copied()));
    group.bench_function("dashmap", cycle!(present, |k| dash.get(&k).map(|v| *v)));
    group.finish();

    let mut group = c.benchmark_group("map_get_miss");
    group.bench_function("shmarena", cycle!(absent, |k| map.get(&k).unwrap()));
    group.bench_function("hashbrown", cycle!(absent, |k| brown_ref.get(&k).copied()));
    group.bench_function("papaya", cycle!(absent, |k| papaya.get(&k).copied()));
    group.bench_function("dashmap", cycle!(absent, |k| dash.get(&k).map(|v| *v)));
    group.finish();

    let mut group = c.benchmark_group("map_remove_insert");
    group.bench_function(
        "shmarena",
        cycle!(present, |k| {
            map.remove(&k).unwrap();
            map.insert(k, !k).unwrap()
        }),
    );
    group.bench_function("hashbrown", {
        let mut i = 0usize;
        let brown = &mut brown;
        move |b: &mut criterion::Bencher| {
            b.iter(|| {
                i = if i + 1 == present.len() { 0 } else { i + 1 };
                let k = present[i];
                brown.remove(&k);
                black_box(brown.insert(k, !k))
            });
        }
    });
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
    let temp = TempRegion::create("criterion-map", 128 << 20).expect("creating the bench region");
    bench_map(&mut criterion, &temp).expect("setting up the bench objects");
    drop(temp);
    criterion.final_summary();
}
