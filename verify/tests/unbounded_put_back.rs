//! The unbounded queue's put-back of its first ring, cut short where a death would cut it:
//! a consumer that dies after taking the first ring out of its idle state, before closing
//! and linking it, leaves it out of the chain for good; one that dies after linking it
//! back, before opening it, leaves it to be opened by the next operation. Either way
//! every element comes out once and in order, and the queue goes on. (A panic at the
//! failpoint stands in for the death: nothing after it runs.)

use std::panic::AssertUnwindSafe;

use shmarena::{ByteUnboundedQueue, Region};

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

#[test]
fn a_put_back_cut_short_loses_nothing_and_the_queue_goes_on() {
    for (point, back_in_first_ring) in [
        ("unbounded_queue::put_back_after_claim", false),
        ("unbounded_queue::put_back_before_open", true),
    ] {
        let path = std::env::temp_dir().join(format!(
            "shmarena-test-{}-put-back-{}",
            std::process::id(),
            back_in_first_ring
        ));
        let _ = std::fs::remove_file(&path);
        let region = Region::create(&path, 64 << 20).unwrap();
        let queue = ByteUnboundedQueue::get_or_create(&region, "q", 4, 8).unwrap();
        let used = region.arena_stats().unwrap().used;
        // A burst past the first ring, drained: a pop that finds the queue empty reaches
        // the put-back, which "dies" at the failpoint.
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
        // The queue goes on: bursts, drains, polls, nothing lost or reordered.
        for round in 0..3u64 {
            let from = 1_000 + round * 2_000;
            push_range(&queue, from..from + 2_000);
            assert_eq!(drain_in_order(&queue, &mut next), 2_000, "{point}");
            for _ in 0..300 {
                assert_eq!(queue.try_pop().unwrap(), None);
            }
        }
        assert_eq!(next, 7_000);
        region.reclaim().unwrap();
        let kept = region.arena_stats().unwrap().used - used;
        if back_in_first_ring {
            // Opened by a later operation: back in the first ring, every other ring freed
            // (our pin stripes, 1 KiB, stay).
            assert!(kept <= 1024, "{point}: {kept} bytes of rings kept");
        } else {
            // Out of the chain for good: the queue lives in a later ring.
            assert!(kept > 1024, "{point}: the first ring came back");
        }
        drop(queue);
        drop(region);
        let _ = std::fs::remove_file(&path);
    }
}
