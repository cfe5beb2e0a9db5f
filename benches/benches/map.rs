//! Criterion micro-benchmark of `HashMap<u64, u64>` in one process: tables of 2^12 and 2^20
//! slots at load 0.75; get hit, get miss, insert (replacing), fetch_add, compare_exchange
//! (after a get of the current value) and remove+insert of a present key; against
//! `hashbrown::HashMap` (alone in one thread, behind a `Mutex` for both counts), papaya,
//! dashmap and scc's `HashMap` and `HashIndex`, all built with the same hash, and for
//! lookups a floor (a linear-probe table of atomic key and value words: what a lookup in
//! shared memory cannot beat). Every map hashes with `shmarena::hash_map::hash_key` and one
//! seed. Beside shmarena's map sized ahead, `shmarena_grown` holds the same keys in a map
//! created with 16 slots that grew to hold them. Each group is named by operation, size
//! and threads (`map_get_hit_small`,
//! `map_get_hit_small_2_threads`, ...): one thread measures the operations themselves; two
//! threads, each running the operation over its own half of the keys at once, measure
//! what sharing the table's lines costs (time per operation and thread). The
//! multi-process mixes are `shmarena bench --workloads map-read-heavy,map-exchange`.
//!
//! Keys are visited in a fixed pseudo-random order (the large table misses cache, as real
//! lookups do).
//!
//! `cargo bench -p shmarena-benches --bench map -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Every map of a size, filled with the same keys (value `!key`).
struct Maps {
    shmarena: shmarena::HashMap<u64, u64>,
    /// The same keys in a map created with 16 slots, which grew to hold them: what a map
    /// that was not sized ahead costs once it has grown.
    grown: shmarena::HashMap<u64, u64>,
    floor: Floor,
    hashbrown: hashbrown::HashMap<u64, u64, SameHash>,
    mutex: Mutex<hashbrown::HashMap<u64, u64, SameHash>>,
    papaya: papaya::HashMap<u64, u64, SameHash>,
    dashmap: dashmap::DashMap<u64, u64, SameHash>,
    scc: scc::HashMap<u64, u64, SameHash>,
    scc_index: scc::HashIndex<u64, u64, SameHash>,
}

impl Maps {
    fn new(temp: &TempRegion, size: &str, slots: usize, present: &[u64]) -> shmarena::Result<Self> {
        let region = temp.region();
        let hasher = SameHash::with_seed(region.hash_seed());
        let entries = present.len();
        let maps = Self {
            shmarena: region.hash_map::<u64, u64>(&format!("bench-{size}"), slots as u64)?,
            grown: region.hash_map::<u64, u64>(&format!("bench-{size}-grown"), 16)?,
            floor: Floor::new(slots, region.hash_seed(), present),
            hashbrown: hashbrown::HashMap::with_capacity_and_hasher(entries, hasher),
            mutex: Mutex::new(hashbrown::HashMap::with_capacity_and_hasher(
                entries, hasher,
            )),
            papaya: papaya::HashMap::with_capacity_and_hasher(entries, hasher),
            dashmap: dashmap::DashMap::with_capacity_and_hasher(entries, hasher),
            scc: scc::HashMap::with_capacity_and_hasher(entries, hasher),
            scc_index: scc::HashIndex::with_capacity_and_hasher(entries, hasher),
        };
        let mut brown = maps.hashbrown;
        let papaya = maps.papaya.pin();
        for &key in present {
            maps.shmarena.insert(key, !key)?;
            maps.grown.insert(key, !key)?;
            brown.insert(key, !key);
            maps.mutex.lock().expect("not poisoned").insert(key, !key);
            papaya.insert(key, !key);
            maps.dashmap.insert(key, !key);
            let _ = maps.scc.insert_sync(key, !key);
            let _ = maps.scc_index.insert_sync(key, !key);
        }
        drop(papaya);
        Ok(Self {
            hashbrown: brown,
            ..maps
        })
    }
}

/// Runs `op(key)` over `keys` from `start` on, `iters` times (wrapping), on each of
/// `threads` threads at once (thread `t` starting `t / threads` of the way in); the slowest
/// thread's time, which criterion divides by `iters`: time per operation and thread.
fn run_threads(threads: usize, iters: u64, keys: &[u64], op: impl Fn(u64) + Sync) -> Duration {
    let start = std::sync::Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (start, op) = (&start, &op);
                scope.spawn(move || {
                    let mut i = t * keys.len() / threads;
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..iters {
                        i = if i + 1 == keys.len() { 0 } else { i + 1 };
                        op(keys[i]);
                    }
                    began.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a bench thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

/// One group per operation for `threads` threads (1: hashbrown without its mutex too).
#[allow(clippy::too_many_lines)] // one group per operation, each with every peer
fn bench_ops(
    c: &mut Criterion,
    maps: &mut Maps,
    size: &str,
    threads: usize,
    present: &[u64],
    absent: &[u64],
) {
    let suffix = if threads == 1 {
        String::new()
    } else {
        format!("_{threads}_threads")
    };
    let Maps {
        shmarena,
        grown,
        floor,
        hashbrown: plain,
        mutex,
        papaya,
        dashmap,
        scc,
        scc_index,
    } = maps;
    let (shmarena, grown, floor, mutex, papaya, dashmap, scc, scc_index) = (
        &*shmarena,
        &*grown,
        &*floor,
        &*mutex,
        &*papaya,
        &*dashmap,
        &*scc,
        &*scc_index,
    );
    // Each peer's operation as a closure over one key, timed over `threads` threads.
    macro_rules! peer {
        ($group:ident, $name:expr, $keys:expr, |$key:ident| $body:expr) => {
            $group.bench_function($name, |b| {
                b.iter_custom(|iters| {
                    run_threads(threads, iters, $keys, |$key| {
                        let _ = black_box($body);
                    })
                })
            });
        };
    }
    // hashbrown alone needs `&mut`: one thread only, timed as `run_threads` times one.
    macro_rules! alone {
        ($group:ident, $keys:expr, |$map:ident, $key:ident| $body:expr) => {
            if threads == 1 {
                let $map = &mut *plain;
                $group.bench_function("hashbrown", |b| {
                    b.iter_custom(|iters| {
                        let mut i = 0usize;
                        let began = Instant::now();
                        for _ in 0..iters {
                            i = if i + 1 == $keys.len() { 0 } else { i + 1 };
                            let $key = $keys[i];
                            let _ = black_box($body);
                        }
                        began.elapsed()
                    })
                });
            }
        };
    }
    let lock = || mutex.lock().expect("not poisoned");

    for (op, keys) in [("get_hit", present), ("get_miss", absent)] {
        let mut group = c.benchmark_group(format!("map_{op}_{size}{suffix}"));
        peer!(group, "shmarena", keys, |k| shmarena.get(&k).unwrap());
        peer!(group, "shmarena_grown", keys, |k| grown.get(&k).unwrap());
        peer!(group, "floor", keys, |k| floor.get(k));
        alone!(group, keys, |m, k| m.get(&k).copied());
        peer!(group, "mutex_hashbrown", keys, |k| lock().get(&k).copied());
        peer!(group, "papaya", keys, |k| papaya.pin().get(&k).copied());
        peer!(group, "dashmap", keys, |k| dashmap.get(&k).map(|v| *v));
        peer!(group, "scc", keys, |k| scc.read_sync(&k, |_, v| *v));
        peer!(group, "scc_index", keys, |k| scc_index
            .peek_with(&k, |_, v| *v));
        group.finish();
    }

    // Reads the current value, then swaps it for its complement if it is still that.
    let mut group = c.benchmark_group(format!("map_compare_exchange_{size}{suffix}"));
    peer!(group, "shmarena", present, |k| {
        let current = shmarena.get(&k).unwrap().unwrap_or_default();
        shmarena.compare_exchange(&k, current, !current).unwrap()
    });
    peer!(group, "shmarena_grown", present, |k| {
        let current = grown.get(&k).unwrap().unwrap_or_default();
        grown.compare_exchange(&k, current, !current).unwrap()
    });
    alone!(group, present, |m, k| m.get_mut(&k).map(|v| {
        let current = *v;
        if *v == current {
            *v = !current;
        }
    }));
    peer!(group, "mutex_hashbrown", present, |k| lock()
        .get_mut(&k)
        .map(|v| {
            let current = *v;
            if *v == current {
                *v = !current;
            }
        }));
    peer!(group, "papaya", present, |k| {
        let map = papaya.pin();
        let current = map.get(&k).copied().unwrap_or_default();
        map.compute(k, |entry| match entry {
            Some((_, &value)) if value == current => papaya::Operation::Insert(!current),
            _ => papaya::Operation::Abort(()),
        });
    });
    peer!(group, "dashmap", present, |k| {
        let current = dashmap.get(&k).map(|v| *v).unwrap_or_default();
        dashmap.get_mut(&k).map(|mut v| {
            if *v == current {
                *v = !current;
            }
        })
    });
    peer!(group, "scc", present, |k| {
        let current = scc.read_sync(&k, |_, v| *v).unwrap_or_default();
        scc.update_sync(&k, |_, v| {
            if *v == current {
                *v = !current;
            }
        })
    });
    group.finish();

    // Replaces the value of a present key.
    let mut group = c.benchmark_group(format!("map_insert_{size}{suffix}"));
    peer!(group, "shmarena", present, |k| shmarena
        .insert(k, k)
        .unwrap());
    peer!(group, "shmarena_grown", present, |k| grown
        .insert(k, k)
        .unwrap());
    alone!(group, present, |m, k| m.insert(k, k));
    peer!(group, "mutex_hashbrown", present, |k| lock().insert(k, k));
    peer!(group, "papaya", present, |k| papaya
        .pin()
        .insert(k, k)
        .copied());
    peer!(group, "dashmap", present, |k| dashmap.insert(k, k));
    peer!(group, "scc", present, |k| scc.upsert_sync(k, k));
    peer!(group, "scc_index", present, |k| scc_index
        .get_sync(&k)
        .map(|mut entry| entry.update(k)));
    group.finish();

    let mut group = c.benchmark_group(format!("map_fetch_add_{size}{suffix}"));
    peer!(group, "shmarena", present, |k| shmarena
        .fetch_add(k, 1)
        .unwrap());
    peer!(group, "shmarena_grown", present, |k| grown
        .fetch_add(k, 1)
        .unwrap());
    alone!(group, present, |m, k| m.get_mut(&k).map(|v| {
        *v += 1;
        *v
    }));
    peer!(group, "mutex_hashbrown", present, |k| lock()
        .get_mut(&k)
        .map(|v| {
            *v += 1;
            *v
        }));
    peer!(group, "papaya", present, |k| papaya
        .pin()
        .update(k, |v| v + 1)
        .copied());
    peer!(group, "dashmap", present, |k| dashmap.get_mut(&k).map(
        |mut v| {
            *v += 1;
            *v
        }
    ));
    peer!(group, "scc", present, |k| scc.update_sync(&k, |_, v| {
        *v += 1;
        *v
    }));
    peer!(group, "scc_index", present, |k| scc_index.get_sync(&k).map(
        |mut entry| {
            let next = *entry.get() + 1;
            entry.update(next);
            next
        }
    ));
    group.finish();

    let mut group = c.benchmark_group(format!("map_remove_insert_{size}{suffix}"));
    peer!(group, "shmarena", present, |k| {
        shmarena.remove(&k).unwrap();
        shmarena.insert(k, !k).unwrap()
    });
    peer!(group, "shmarena_grown", present, |k| {
        grown.remove(&k).unwrap();
        grown.insert(k, !k).unwrap()
    });
    alone!(group, present, |m, k| {
        m.remove(&k);
        m.insert(k, !k)
    });
    peer!(group, "mutex_hashbrown", present, |k| {
        let mut map = lock();
        map.remove(&k);
        map.insert(k, !k)
    });
    peer!(group, "papaya", present, |k| {
        let map = papaya.pin();
        map.remove(&k);
        map.insert(k, !k).copied()
    });
    peer!(group, "dashmap", present, |k| {
        dashmap.remove(&k);
        dashmap.insert(k, !k)
    });
    peer!(group, "scc", present, |k| {
        scc.remove_sync(&k);
        scc.insert_sync(k, !k).is_ok()
    });
    peer!(group, "scc_index", present, |k| {
        scc_index.remove_sync(&k);
        scc_index.insert_sync(k, !k).is_ok()
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let temp = TempRegion::create("criterion-map", 256 << 20).expect("creating the bench region");
    for (size, slots) in SIZES {
        let entries = slots / 4 * 3;
        let (present, absent) = (keys(1, entries), keys(2, entries));
        let mut maps =
            Maps::new(&temp, size, slots, &present).expect("setting up the bench objects");
        for threads in [1, 2] {
            bench_ops(&mut criterion, &mut maps, size, threads, &present, &absent);
        }
    }
    drop(temp);
    criterion.final_summary();
}
