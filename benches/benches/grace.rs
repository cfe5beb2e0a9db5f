//! Criterion micro-benchmarks of grace-period pins (one process, one thread): a
//! shmarena pin and unpin, announced in the shared participant table so that other
//! processes can wait for it, beside `crossbeam-epoch`'s in-process pin; and a reclaimer's
//! attempt to move the epoch on (it reads every participant's lanes).
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

fn shm_advance(region: &shmarena::Region) {
    let epoch = region.grace_epoch().expect("a validated region");
    black_box(region.grace_has_passed(epoch).expect("a validated region"));
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let temp = TempRegion::create("grace", 4 << 20).expect("creating the bench region");
    let region = temp.region();
    let mut group = criterion.benchmark_group("pin_unpin");
    group.bench_function("shmarena", |bench| bench.iter(|| shm_pin(region)));
    group.bench_function("crossbeam_epoch", |bench| bench.iter(crossbeam_pin));
    group.finish();
    let mut group = criterion.benchmark_group("reclaim");
    group.bench_function("shmarena_grace_has_passed", |bench| {
        bench.iter(|| shm_advance(region));
    });
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
    }
}
