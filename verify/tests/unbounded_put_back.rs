//! The unbounded queue's put-back of its first ring, cut short after taking its claim or
//! after linking the ring back:
//! - in this process, by a panic at a failpoint (nothing after it runs in the put-back):
//!   the claim, dropped on the way out, ends the put-back;
//! - in a worker process SIGKILLed at those failpoints: the next consumer finds the
//!   claim's owner dead and ends the put-back for it.
//!
//! Either way every element comes out once and in order, the queue goes on, and it comes
//! back to its first ring (every other ring freed).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use shmarena::engine::Memory;
use shmarena::unbounded_queue::{layout, FirstRing};
use shmarena::{ByteUnboundedQueue, Region};

/// The failpoints where a put-back is cut short.
const POINTS: [&str; 2] = [
    "unbounded_queue::put_back_after_claim",
    "unbounded_queue::put_back_before_open",
];

/// Held by each test: the failpoints are this process's, and one test's failpoint must not
/// fire in the other's operations.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Pops everything there is, checking that it is `next..`, in order; the count.
fn drain_in_order(queue: &ByteUnboundedQueue, next: &mut u64) -> u64 {
    let mut count = 0;
    while let Some(bytes) = queue.try_pop().unwrap() {
        assert_eq!(bytes, next.to_le_bytes(), "out of order");
        *next += 1;
        count += 1;
    }
    count
}

fn push_range(queue: &ByteUnboundedQueue, range: std::ops::Range<u64>) {
    for i in range {
        queue.push(&i.to_le_bytes()).unwrap();
    }
}

/// After a put-back cut short once the burst `0..next` came out: polls, then bursts,
/// drains and polls again (nothing lost or reordered), and at the end the queue is back in
/// its first ring, the rings it grew since `used` (arena bytes in use) freed.
fn goes_on_and_comes_back(
    point: &str,
    region: &Region,
    queue: &ByteUnboundedQueue,
    mut next: u64,
    used: u64,
) {
    for round in 0..3u64 {
        for _ in 0..300 {
            assert_eq!(queue.try_pop().unwrap(), None);
        }
        let from = next;
        push_range(queue, from..from + 2_000);
        assert_eq!(
            drain_in_order(queue, &mut next),
            2_000,
            "{point}, round {round}"
        );
    }
    for _ in 0..300 {
        assert_eq!(queue.try_pop().unwrap(), None);
    }
    let body = region.find_object("q").unwrap().unwrap().offset;
    let word = |at: u64| {
        region
            .memory()
            .word(body + at)
            .unwrap()
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(
        word(layout::HEAD_RING),
        body + layout::FIRST_RING,
        "{point}: not back in the first ring ({:?})",
        FirstRing::of(word(layout::FIRST_IDLE))
    );
    assert!(matches!(
        FirstRing::of(word(layout::FIRST_IDLE)),
        FirstRing::InChain(_)
    ));
    region.reclaim().unwrap();
    // Every ring but the first freed (our pin stripes, 1 KiB, and retire log stay).
    let kept = region.arena_stats().unwrap().used.saturating_sub(used);
    let log = shmarena::engine::retire_log::log_bytes(region.arena_stats().unwrap().capacity);
    assert!(kept <= 1024 + log, "{point}: {kept} bytes of rings kept");
}

#[test]
fn a_put_back_cut_short_by_a_panic_loses_nothing_and_the_queue_comes_back() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for point in POINTS {
        let temp = common::TempRegion::new(&format!("put-back-panic-{}", point.len()));
        let region = Region::create(&temp.path, 64 << 20).unwrap();
        let queue = ByteUnboundedQueue::get_or_create(&region, "q", 4, 8).unwrap();
        let used = region.arena_stats().unwrap().used;
        // A burst past the first ring, drained: a pop that finds the queue empty reaches
        // the put-back, which panics at the failpoint.
        push_range(&queue, 0..1_000);
        let mut next = 0;
        fail::cfg(point, "panic").unwrap();
        let died = std::panic::catch_unwind(AssertUnwindSafe(|| {
            drain_in_order(&queue, &mut next);
            for _ in 0..1_000 {
                assert_eq!(queue.try_pop().unwrap(), None);
            }
        }));
        fail::remove(point);
        assert!(died.is_err(), "{point}: the put-back was never reached");
        assert_eq!(next, 1_000, "{point}: drained before the put-back");
        goes_on_and_comes_back(point, &region, &queue, next, used);
    }
}

/// A worker drains a burst that outgrew the first ring and is SIGKILLed in the put-back,
/// whose claim names it: `(region, queue, burst end, arena bytes in use)` after its death.
fn killed_in_put_back(
    point: &str,
    temp: &common::TempRegion,
) -> (Region, ByteUnboundedQueue, u64, u64) {
    let region = Region::create(&temp.path, 64 << 20).unwrap();
    let queue = ByteUnboundedQueue::get_or_create(&region, "q", 4, 8).unwrap();
    push_range(&queue, 0..1_000);
    let out = format!("{}.out", temp.arg());
    let _ = std::fs::remove_file(&out);
    let mut worker = common::spawn_with_env(
        &["queue-consume", temp.arg(), &out],
        &[("SHMARENA_KILL_AT", point)],
    );
    let status = worker.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}: {status:?}");
    // The worker popped the burst, in order, before its death.
    let popped = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(popped.len(), 8 * 1_000, "{point}: the worker's pops");
    for (i, item) in popped.chunks_exact(8).enumerate() {
        assert_eq!(item, (i as u64).to_le_bytes(), "{point}: out of order");
    }
    assert!(
        matches!(state(&region), FirstRing::PuttingBack(_)),
        "{point}"
    );
    // The rings the worker retired died with it (its list of blocks to free); what the
    // chain holds now is freed once the queue is back in its first ring.
    let used = region.arena_stats().unwrap().used;
    (region, queue, 1_000, used)
}

/// The first ring's state word of the queue "q".
fn state(region: &Region) -> FirstRing {
    let body = region.find_object("q").unwrap().unwrap().offset;
    FirstRing::of(
        region
            .memory()
            .word(body + layout::FIRST_IDLE)
            .unwrap()
            .load(std::sync::atomic::Ordering::Relaxed),
    )
}

/// A worker SIGKILLed in the put-back: this process's polls find the claim's owner dead
/// and end the put-back.
#[test]
fn a_put_back_whose_consumer_is_killed_is_ended_and_the_queue_comes_back() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for point in POINTS {
        let temp = common::TempRegion::new(&format!("put-back-kill-{}", point.len()));
        let (region, queue, next, used) = killed_in_put_back(point, &temp);
        goes_on_and_comes_back(point, &region, &queue, next, used);
    }
}

/// A worker SIGKILLed in the put-back, and its participant slot swept (as when the slot is
/// retired): the sweep ends the put-back, so the claim never names a later holder of the
/// worker's id.
#[test]
fn the_participant_sweep_ends_a_dead_consumers_put_back() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for point in POINTS {
        let temp = common::TempRegion::new(&format!("put-back-sweep-{}", point.len()));
        let (region, queue, next, used) = killed_in_put_back(point, &temp);
        let FirstRing::PuttingBack(owner) = state(&region) else {
            unreachable!("checked by killed_in_put_back")
        };
        let slot = shmarena::OwnerId::from_bits(owner).unwrap().slot();
        shmarena::sweep::retire_owner_slot(&region, slot).unwrap();
        assert!(
            !matches!(state(&region), FirstRing::PuttingBack(_)),
            "{point}: the sweep left the claim"
        );
        goes_on_and_comes_back(point, &region, &queue, next, used);
    }
}
