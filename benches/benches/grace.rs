//! Criterion micro-benchmarks of grace-period pins: a shmarena pin and unpin, announced in
//! the shared participant table so that other processes can wait for it, beside
//! `crossbeam-epoch`'s in-process pin, in one thread and in two threads of one process at
//! once (each pins on its own stripe); a reclaimer's attempt to move the epoch on (it
//! reads every participant's pin words); and the whole life of a retired block: 100 bytes
//! stored out of line, retired (kept in the process and in the participant slot's retire
//! log, which outlives the process) and freed a grace period later, beside a
//! `crossbeam-epoch` allocation handed to `defer_destroy`.
//!
//! `cargo bench -p shmarena-benches --bench grace -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::Criterion;
use shmarena_benches::{summary_line, time_per_op, TempRegion};

fn shm_pin(region: &shmarena::Region) {
    let pin = region.pin().expect("an attached handle pins");
    black_box(&pin);
}

fn crossbeam_pin() {
    let guard = crossbeam_epoch::pin();
    black_box(&guard);
}

fn shm_retire(region: &shmarena::Region) {
    let blob = region.store_blob(&[1; 100]).expect("room for a blob");
    region
        .retire_blob(black_box(blob))
        .expect("a blob of this region");
}

fn crossbeam_retire() {
    let guard = crossbeam_epoch::pin();
    let shared = crossbeam_epoch::Owned::new([1u8; 100]).into_shared(&guard);
    // SAFETY: `shared` was never published: nothing else can reach it.
    unsafe { guard.defer_destroy(black_box(shared)) };
}

fn shm_advance(region: &shmarena::Region) {
    let epoch = region.grace_epoch().expect("a validated region");
    black_box(region.grace_has_passed(epoch).expect("a validated region"));
}

/// Runs `op` `iters` times on each of two threads at once; the slower thread's time.
fn two_threads(iters: u64, op: impl Fn() + Sync) -> std::time::Duration {
    let start = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let run = || {
            start.wait();
            let began = std::time::Instant::now();
            for _ in 0..iters {
                op();
            }
            began.elapsed()
        };
        let other = scope.spawn(run);
        let mine = run();
        mine.max(other.join().expect("bench thread"))
    })
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let temp = TempRegion::create("grace", 4 << 20).expect("creating the bench region");
    let region = temp.region();
    let mut group = criterion.benchmark_group("pin_unpin");
    group.bench_function("shmarena", |bench| bench.iter(|| shm_pin(region)));
    group.bench_function("crossbeam_epoch", |bench| bench.iter(crossbeam_pin));
    group.finish();
    let mut group = criterion.benchmark_group("pin_unpin_2_threads");
    group.bench_function("shmarena", |bench| {
        bench.iter_custom(|iters| two_threads(iters, || shm_pin(region)));
    });
    group.bench_function("crossbeam_epoch", |bench| {
        bench.iter_custom(|iters| two_threads(iters, crossbeam_pin));
    });
    group.finish();
    let mut group = criterion.benchmark_group("reclaim");
    group.bench_function("shmarena_grace_has_passed", |bench| {
        bench.iter(|| shm_advance(region));
    });
    group.finish();
    let mut group = criterion.benchmark_group("store_retire_free");
    group.bench_function("shmarena", |bench| bench.iter(|| shm_retire(region)));
    group.bench_function("crossbeam_epoch", |bench| bench.iter(crossbeam_retire));
    group.finish();
    criterion.final_summary();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") {
        println!("\nsummary: ns per operation (best of 7 x 2M), ratio to crossbeam-epoch");
        let base = time_per_op(crossbeam_pin);
        summary_line("pin+unpin", "crossbeam-epoch", base, base);
        summary_line("", "shmarena", time_per_op(|| shm_pin(region)), base);
        summary_line(
            "grace_has_passed",
            "shmarena (256 slots)",
            time_per_op(|| shm_advance(region)),
            base,
        );
        let base = time_per_op(crossbeam_retire);
        summary_line("store+retire+free", "crossbeam-epoch", base, base);
        summary_line("", "shmarena", time_per_op(|| shm_retire(region)), base);
    }
}
