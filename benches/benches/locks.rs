//! Criterion micro-benchmarks of the cross-process locks, uncontended (one process, one
//! thread), each beside `parking_lot` and `std::sync` on the heap: the cost of a lock
//! that lives in a shared mapping, records its owner and survives its owner's death,
//! over a process-local one. The goal is within 1.5x of `parking_lot`.
//!
//! After the criterion groups, a short summary times each pair again (best of several
//! runs of a fixed loop) and prints the ratios to `parking_lot`.
//!
//! `cargo bench -p shmarena-benches --bench locks -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::Criterion;
use shmarena::{Condvar, Event, Lock, Mutex, RegionExt, Semaphore};
use shmarena_benches::{summary_line as line, time_per_op, TempRegion};

/// The shmarena objects under test.
struct Objects {
    lock: Lock,
    counter: Mutex<u64>,
    condvar: Condvar,
    event: Event,
    semaphore: Semaphore,
}

impl Objects {
    fn create(temp: &TempRegion) -> shmarena::Result<Self> {
        let region = temp.region();
        Ok(Self {
            lock: region.lock("lock")?,
            counter: region.mutex::<u64>("counter", 0)?,
            condvar: region.condvar("condvar")?,
            event: region.event("event")?,
            semaphore: region.bounded_semaphore("semaphore", 4)?,
        })
    }
}

/// The in-process baselines.
struct Baselines {
    pl_lock: parking_lot::Mutex<()>,
    pl_counter: parking_lot::Mutex<u64>,
    pl_condvar: parking_lot::Condvar,
    std_lock: std::sync::Mutex<()>,
    std_counter: std::sync::Mutex<u64>,
    std_condvar: std::sync::Condvar,
}

impl Baselines {
    fn new() -> Self {
        Self {
            pl_lock: parking_lot::Mutex::new(()),
            pl_counter: parking_lot::Mutex::new(0),
            pl_condvar: parking_lot::Condvar::new(),
            std_lock: std::sync::Mutex::new(()),
            std_counter: std::sync::Mutex::new(0),
            std_condvar: std::sync::Condvar::new(),
        }
    }
}

// The operations, one function each, shared by criterion and the summary.

#[inline]
fn shm_lock_unlock(o: &Objects) {
    drop(black_box(o.lock.lock().expect("no owner died")));
}

#[inline]
fn pl_lock_unlock(b: &Baselines) {
    drop(black_box(b.pl_lock.lock()));
}

#[inline]
fn std_lock_unlock(b: &Baselines) {
    drop(black_box(b.std_lock.lock().expect("not poisoned")));
}

#[inline]
fn shm_increment(o: &Objects) {
    *o.counter.lock().expect("no owner died") += black_box(1);
}

#[inline]
fn pl_increment(b: &Baselines) {
    *b.pl_counter.lock() += black_box(1);
}

#[inline]
fn std_increment(b: &Baselines) {
    *b.std_counter.lock().expect("not poisoned") += black_box(1);
}

#[inline]
fn shm_try_lock(o: &Objects) {
    drop(black_box(o.lock.try_lock().ok()));
}

#[inline]
fn pl_try_lock(b: &Baselines) {
    drop(black_box(b.pl_lock.try_lock()));
}

#[inline]
fn shm_notify_one(o: &Objects) {
    o.condvar.notify_one();
}

#[inline]
fn pl_notify_one(b: &Baselines) {
    black_box(b.pl_condvar.notify_one());
}

#[inline]
fn std_notify_one(b: &Baselines) {
    b.std_condvar.notify_one();
}

#[inline]
fn shm_semaphore(o: &Objects) {
    assert!(o.semaphore.try_acquire());
    o.semaphore.release().expect("a permit is held");
}

#[inline]
fn shm_event_is_set(o: &Objects) {
    black_box(o.event.is_set());
}

fn bench_locks(c: &mut Criterion, o: &Objects, b: &Baselines) {
    let mut group = c.benchmark_group("mutex_lock_unlock");
    group.bench_function("shmarena_lock", |bench| bench.iter(|| shm_lock_unlock(o)));
    group.bench_function("parking_lot", |bench| bench.iter(|| pl_lock_unlock(b)));
    group.bench_function("std", |bench| bench.iter(|| std_lock_unlock(b)));
    group.finish();

    let mut group = c.benchmark_group("mutex_u64_increment");
    group.bench_function("shmarena", |bench| bench.iter(|| shm_increment(o)));
    group.bench_function("parking_lot", |bench| bench.iter(|| pl_increment(b)));
    group.bench_function("std", |bench| bench.iter(|| std_increment(b)));
    group.finish();

    let mut group = c.benchmark_group("mutex_try_lock_unlock");
    group.bench_function("shmarena_lock", |bench| bench.iter(|| shm_try_lock(o)));
    group.bench_function("parking_lot", |bench| bench.iter(|| pl_try_lock(b)));
    group.finish();

    let mut group = c.benchmark_group("condvar_notify_one_no_waiters");
    group.bench_function("shmarena", |bench| bench.iter(|| shm_notify_one(o)));
    group.bench_function("parking_lot", |bench| bench.iter(|| pl_notify_one(b)));
    group.bench_function("std", |bench| bench.iter(|| std_notify_one(b)));
    group.finish();

    let mut group = c.benchmark_group("other");
    group.bench_function("semaphore_try_acquire_release", |bench| {
        bench.iter(|| shm_semaphore(o));
    });
    group.bench_function("event_is_set", |bench| bench.iter(|| shm_event_is_set(o)));
    group.finish();
}

/// Prints each operation's time and its ratio to `parking_lot`'s (closures, not trait
/// objects: an indirect call would cost more than some of the operations).
fn summary(o: &Objects, b: &Baselines) {
    println!("\nsummary: ns per operation (best of 7 x 2M), ratio to parking_lot");
    println!(
        "{:<24} {:<22} {:>8} {:>8}",
        "operation", "implementation", "ns", "ratio"
    );
    let base = time_per_op(|| pl_lock_unlock(b));
    line("lock+unlock", "parking_lot", base, base);
    line(
        "",
        "shmarena Lock",
        time_per_op(|| shm_lock_unlock(o)),
        base,
    );
    line("", "std", time_per_op(|| std_lock_unlock(b)), base);

    let base = time_per_op(|| pl_increment(b));
    line("lock, +=1, unlock", "parking_lot", base, base);
    let ns = time_per_op(|| shm_increment(o));
    line("", "shmarena Mutex<u64>", ns, base);
    line("", "std", time_per_op(|| std_increment(b)), base);

    let base = time_per_op(|| pl_try_lock(b));
    line("try_lock+unlock", "parking_lot", base, base);
    line("", "shmarena Lock", time_per_op(|| shm_try_lock(o)), base);

    let base = time_per_op(|| pl_notify_one(b));
    line("notify_one, no waiter", "parking_lot", base, base);
    line(
        "",
        "shmarena Condvar",
        time_per_op(|| shm_notify_one(o)),
        base,
    );
    line("", "std", time_per_op(|| std_notify_one(b)), base);
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    // Unlinked when `temp` drops, also when a benchmark panics.
    let temp = TempRegion::create("locks", 4 << 20).expect("creating the bench region");
    let objects = Objects::create(&temp).expect("creating the bench objects");
    let baselines = Baselines::new();
    bench_locks(&mut criterion, &objects, &baselines);
    criterion.final_summary();
    // Only when benchmarking: `cargo bench` passes --bench; `cargo test --benches` does
    // not (criterion then runs each benchmark once, as a test).
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") {
        summary(&objects, &baselines);
    }
    drop(objects);
    drop(temp);
}
