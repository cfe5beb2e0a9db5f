//! Criterion micro-benchmark of `Queue<u64>`: one push and one pop (the queue stays
//! near-empty), against in-process bounded queues doing the same pair: crossbeam's
//! `ArrayQueue` (Vyukov's algorithm, the one shmarena's queue extends with owner ids) and
//! `std::sync::mpsc::sync_channel`. One thread (`queue_push_pop`): the cost of the
//! operations themselves (the claim, naming the previous claimant, the wake-up check); two threads
//! (`queue_push_pop_2_threads`, shmarena and crossbeam): each thread does the pair on one
//! shared queue, the time is per pair and thread, so contention on the head, tail and slot
//! lines shows. The unbounded queues side by side: shmarena's `UnboundedQueue<u64>` (a
//! chain of rings; the first used without a pin, later ones pinned for a grace period)
//! and crossbeam's `SegQueue`. With one thread it stays in its first ring. With two, a
//! pop that finds the other thread's element not yet published leaves one element behind
//! for good, so the queue outgrows its first ring and never drains back to it: that group
//! measures the pinned rings.
//! `shmarena bench --workloads queue-push-pop` measures many processes.
//!
//! `cargo bench -p shmarena-benches --bench queue -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use criterion::Criterion;
use crossbeam_queue::{ArrayQueue, SegQueue};
use shmarena::RegionExt;
use shmarena_benches::TempRegion;

/// Slots of every queue (the pair never fills more than one).
const CAPACITY: usize = 1024;

fn bench_queue(c: &mut Criterion, temp: &TempRegion) -> shmarena::Result<()> {
    let region = temp.region();
    let queue = region.queue::<u64>("queue_u64", CAPACITY as u64)?;
    let array_queue = ArrayQueue::<u64>::new(CAPACITY);
    let unbounded = region.unbounded_queue::<u64>("unbounded_u64")?;
    let seg_queue = SegQueue::<u64>::new();
    let (sender, receiver) = std::sync::mpsc::sync_channel::<u64>(CAPACITY);

    let mut group = c.benchmark_group("queue_push_pop");
    group.bench_function("shmarena", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            queue.try_push(black_box(i)).expect("room for one");
            queue.try_pop().expect("the element just pushed")
        });
    });
    group.bench_function("crossbeam_array_queue", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            array_queue.push(black_box(i)).expect("room for one");
            array_queue.pop().expect("the element just pushed")
        });
    });
    group.bench_function("shmarena_unbounded", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            unbounded.push(black_box(i)).expect("room in the region");
            unbounded
                .try_pop()
                .expect("a pop")
                .expect("the element just pushed")
        });
    });
    group.bench_function("crossbeam_seg_queue", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            seg_queue.push(black_box(i));
            seg_queue.pop().expect("the element just pushed")
        });
    });
    group.bench_function("std_sync_channel", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            sender.try_send(black_box(i)).expect("room for one");
            receiver.try_recv().expect("the element just sent")
        });
    });
    group.finish();

    let mut group = c.benchmark_group("queue_push_pop_2_threads");
    group.bench_function("shmarena", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |i| {
                // The other thread may have taken the element, or be about to push one.
                let _ = queue.try_push(black_box(i));
                black_box(queue.try_pop());
            })
        });
    });
    group.bench_function("crossbeam_array_queue", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |i| {
                let _ = array_queue.push(black_box(i));
                black_box(array_queue.pop());
            })
        });
    });
    group.bench_function("shmarena_unbounded", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |i| {
                let _ = unbounded.push(black_box(i));
                let _ = black_box(unbounded.try_pop());
            })
        });
    });
    group.bench_function("crossbeam_seg_queue", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |i| {
                seg_queue.push(black_box(i));
                black_box(seg_queue.pop());
            })
        });
    });
    group.finish();
    Ok(())
}

/// Runs `pair(i)` for i in 0..iters on each of two threads at once; the slower thread's
/// time (per pair, as criterion divides by `iters`).
fn two_threads(iters: u64, pair: impl Fn(u64) + Sync) -> std::time::Duration {
    let start = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let run = || {
            start.wait();
            let began = std::time::Instant::now();
            for i in 0..iters {
                pair(i);
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
    // Unlinked when `temp` drops, also when a benchmark panics.
    let temp = TempRegion::create("criterion-queue", 4 << 20).expect("creating the bench region");
    bench_queue(&mut criterion, &temp).expect("setting up the bench objects");
    drop(temp);
    criterion.final_summary();
}
