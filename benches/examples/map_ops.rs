//! One map operation repeated over a filled `HashMap<u64, u64>` of 4096 slots (load 0.75),
//! for instruction counts: run under callgrind with a count `n` and again with `2n`; the
//! difference divided by `n` is one operation's instructions, free of the setup.
//!
//! `cargo build --release -p shmarena-benches --example map_ops`, then
//! `valgrind --tool=callgrind target/release/examples/map_ops get-hit 100000`
//! (operations: get-hit, get-miss, insert, fetch-add, compare-exchange, remove-insert).

use std::hint::black_box;

use shmarena::RegionExt;
use shmarena_benches::{keys, TempRegion};

fn main() -> shmarena::Result<()> {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_else(|| "get-hit".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let slots = 1 << 12;
    let temp = TempRegion::create("map-ops", 64 << 20)?;
    let map = temp.region().hash_map::<u64, u64>("ops", slots)?;
    let (present, absent) = (
        keys(1, slots as usize / 4 * 3),
        keys(2, slots as usize / 4 * 3),
    );
    for &key in &present {
        map.insert(key, !key)?;
    }
    let mut i = 0;
    for _ in 0..count {
        i = if i + 1 == present.len() { 0 } else { i + 1 };
        let key = present[i];
        match op.as_str() {
            "get-hit" => {
                black_box(map.get(&key)?);
            }
            "get-miss" => {
                black_box(map.get(&absent[i])?);
            }
            "insert" => {
                black_box(map.insert(key, i as u64)?);
            }
            "fetch-add" => {
                black_box(map.fetch_add(key, 1)?);
            }
            "compare-exchange" => {
                let current = map.get(&key)?.unwrap_or(0);
                let _ = black_box(map.compare_exchange(&key, current, !current)?);
            }
            "remove-insert" => {
                map.remove(&key)?;
                black_box(map.insert(key, !key)?);
            }
            other => panic!("unknown operation {other}"),
        }
    }
    Ok(())
}
