//! One map operation repeated over a filled `HashMap<u64, u64>` of 4096 slots (load 0.75,
//! a fixed hash seed, so that runs lay the keys out alike), for instruction counts: run
//! under callgrind with a count `n` and again with `2n`; the difference divided by `n` is
//! one operation's instructions, free of the setup.
//!
//! `cargo build --release -p shmarena-benches --example map_ops`, then
//! `valgrind --tool=callgrind target/release/examples/map_ops get-hit 100000`
//! (operations: get-hit, get-miss, insert, fetch-add, compare-exchange, remove-insert, pin,
//! read-heavy, exchange).
//! A third argument `grown` creates the map with 16 slots instead, so that the same keys
//! find it grown (a chain whose root is a later table, as every map that grew); `large`
//! makes it 2^20 slots (larger than the cache: for timing, not counting), and `large-grown`
//! fills the same keys into a map created with 16 slots (grown to 2^20).

use std::hint::black_box;

use shmarena::{Region, RegionExt, RegionOptions};
use shmarena_benches::keys;

/// Operations of a mix run before the measured ones (the same number for every count, so
/// that they cancel in the difference of two counts).
const WARM_UP: usize = 1_000_000;

/// Runs `op` on key indices 1, 2, ... (wrapping at `keys`), `count` times.
fn repeat(
    count: usize,
    keys: usize,
    mut op: impl FnMut(usize) -> shmarena::Result<()>,
) -> shmarena::Result<()> {
    let mut i = 0;
    for _ in 0..count {
        i = if i + 1 == keys { 0 } else { i + 1 };
        op(i)?;
    }
    Ok(())
}

fn main() -> shmarena::Result<()> {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_else(|| "get-hit".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let shape = args.next();
    let grown = matches!(shape.as_deref(), Some("grown" | "large-grown"));
    let slots = if matches!(shape.as_deref(), Some("large" | "large-grown")) {
        1 << 20
    } else {
        1 << 12
    };
    let path = std::env::temp_dir().join(format!("shmarena-map-ops-{}", std::process::id()));
    let options = RegionOptions {
        hash_seed: Some(0x5eed),
        ..RegionOptions::default()
    };
    let region = Region::create_with(&path, 256 << 20, &options)?;
    Region::unlink(&path)?;
    let map = region.hash_map::<u64, u64>("ops", if grown { 16 } else { slots })?;
    let (present, absent) = (
        keys(1, slots as usize / 4 * 3),
        keys(2, slots as usize / 4 * 3),
    );
    for &key in &present {
        map.insert(key, !key)?;
    }
    let n = present.len();
    match op.as_str() {
        "get-hit" => repeat(count, n, |i| {
            map.get(&present[i]).map(|v| {
                black_box(v);
            })
        }),
        "get-miss" => repeat(count, n, |i| {
            map.get(&absent[i]).map(|v| {
                black_box(v);
            })
        }),
        "insert" => repeat(count, n, |i| {
            map.insert(present[i], i as u64).map(|v| {
                black_box(v);
            })
        }),
        "fetch-add" => repeat(count, n, |i| {
            map.fetch_add(present[i], 1).map(|v| {
                black_box(v);
            })
        }),
        "compare-exchange" => repeat(count, n, |i| {
            let key = present[i];
            let current = map.get(&key)?.unwrap_or(0);
            map.compare_exchange(&key, current, !current).map(|v| {
                let _ = black_box(v);
            })
        }),
        "remove-insert" => repeat(count, n, |i| {
            let key = present[i];
            map.remove(&key)?;
            map.insert(key, !key).map(|v| {
                black_box(v);
            })
        }),
        // The mixes of `shmarena bench` over the present keys (read-heavy: 98% get, 1%
        // insert, 1% remove; exchange: 10% get, 40% insert, 40% remove, 10% update of a
        // present key), after
        // `WARM_UP` operations of the mix unmeasured (so that removals and reinsertions
        // have churned the table as a long run does).
        mix @ ("read-heavy" | "exchange") => {
            // Percent thresholds: get below the first, insert below the second, remove
            // below the third, update above.
            let [get, insert, remove] = if mix == "read-heavy" {
                [98, 99, 100]
            } else {
                [10, 50, 90]
            };
            let mut state = 0x9e37_79b9_7f4a_7c15_u64;
            let mut step = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let key = present[(state % n as u64) as usize];
                let roll = (state >> 40) % 100;
                if roll < get {
                    map.get(&key).map(|v| {
                        black_box(v);
                    })
                } else if roll < insert {
                    map.insert(key, state).map(|v| {
                        black_box(v);
                    })
                } else if roll < remove {
                    map.remove(&key).map(|v| {
                        black_box(v);
                    })
                } else {
                    map.fetch_update(&key, |v| Some(v.wrapping_add(1)))
                        .map(|v| {
                            let _ = black_box(v);
                        })
                }
            };
            repeat(WARM_UP, n, |_| step())?;
            repeat(count, n, |_| step())
        }
        // What a write on a map that grew pays besides the map: a pin and its drop.
        "pin" => repeat(count, n, |_| region.pin().map(|pin| drop(black_box(pin)))),
        other => panic!("unknown operation {other}"),
    }
}
