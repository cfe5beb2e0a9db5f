//! Criterion micro-benchmarks: each shmarena operation beside its in-process baseline, a
//! heap `std` atomic with the same ordering (shmarena's scalar operations are SeqCst; the
//! sharded counter's add is Relaxed). One process, one thread: this measures the cost of
//! the handle (bounds checks, pointer chasing, the mapping) over the bare instruction, not
//! contention; `shmarena bench` measures many processes.
//!
//! `cargo bench -p shmarena-benches -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::Criterion;
use shmarena::RegionExt;
use shmarena_benches::TempRegion;

/// Elements of the arrays in `array_get` / `array_set` (a power of two: the index
/// sequence wraps with a mask).
const ARRAY_LEN: usize = 1024;

/// The next index of a cheap sequence that visits every element (odd stride, masked).
#[inline]
fn next_index(i: usize) -> usize {
    (i + 7) & (ARRAY_LEN - 1)
}

/// The baseline of `f64_fetch_add`: what `Value<f64>::fetch_add` does, on a heap atomic.
#[inline]
fn f64_fetch_add_cas(cell: &AtomicU64, value: f64) -> f64 {
    let mut current = cell.load(Ordering::SeqCst);
    loop {
        let new = (f64::from_bits(current) + value).to_bits();
        match cell.compare_exchange_weak(current, new, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(previous) => return f64::from_bits(previous),
            Err(actual) => current = actual,
        }
    }
}

fn bench_scalars(c: &mut Criterion, temp: &TempRegion) -> shmarena::Result<()> {
    let region = temp.region();

    let value = region.value::<u64>("value_u64", 0)?;
    let heap = Box::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("value_fetch_add");
    group.bench_function("shmarena", |b| b.iter(|| value.fetch_add(black_box(1))));
    group.bench_function("std_atomic", |b| {
        b.iter(|| heap.fetch_add(black_box(1), Ordering::SeqCst));
    });
    group.finish();

    let mut group = c.benchmark_group("value_load");
    group.bench_function("shmarena", |b| b.iter(|| black_box(&value).load()));
    group.bench_function("std_atomic", |b| {
        b.iter(|| black_box(&heap).load(Ordering::SeqCst));
    });
    group.finish();

    let initial: Vec<u64> = (0..ARRAY_LEN as u64).collect();
    let array = region.array::<u64>("array_u64", &initial)?;
    let vec: Vec<AtomicU64> = initial.iter().map(|&x| AtomicU64::new(x)).collect();
    let mut group = c.benchmark_group("array_get");
    group.bench_function("shmarena", |b| {
        let mut i = 0;
        b.iter(|| {
            i = next_index(i);
            array.get(black_box(i)).expect("index in bounds")
        });
    });
    group.bench_function("std_vec_atomic", |b| {
        let mut i = 0;
        b.iter(|| {
            i = next_index(i);
            vec[black_box(i)].load(Ordering::SeqCst)
        });
    });
    group.finish();

    let mut group = c.benchmark_group("array_set");
    group.bench_function("shmarena", |b| {
        let mut i = 0;
        b.iter(|| {
            i = next_index(i);
            array.set(black_box(i), i as u64).expect("index in bounds");
        });
    });
    group.bench_function("std_vec_atomic", |b| {
        let mut i = 0;
        b.iter(|| {
            i = next_index(i);
            vec[black_box(i)].store(i as u64, Ordering::SeqCst);
        });
    });
    group.finish();

    let counter = region.sharded_counter("sharded")?;
    let mut group = c.benchmark_group("sharded_counter_add");
    group.bench_function("shmarena", |b| b.iter(|| counter.add(black_box(1))));
    group.bench_function("std_atomic_relaxed", |b| {
        b.iter(|| heap.fetch_add(black_box(1), Ordering::Relaxed));
    });
    group.finish();

    let float = region.value::<f64>("value_f64", 0.0)?;
    let float_heap = Box::new(AtomicU64::new(0f64.to_bits()));
    let mut group = c.benchmark_group("f64_fetch_add");
    group.bench_function("shmarena", |b| b.iter(|| float.fetch_add(black_box(1.0))));
    group.bench_function("std_atomic_cas_loop", |b| {
        b.iter(|| f64_fetch_add_cas(&float_heap, black_box(1.0)));
    });
    group.finish();

    Ok(())
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    // Unlinked when `temp` drops, also when a benchmark panics.
    let temp = TempRegion::create("criterion", 4 << 20).expect("creating the bench region");
    bench_scalars(&mut criterion, &temp).expect("setting up the bench objects");
    drop(temp);
    criterion.final_summary();
}
