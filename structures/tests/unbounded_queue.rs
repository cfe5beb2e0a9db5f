//! The unbounded queue in one process: FIFO order against a `VecDeque` model across ring
//! changes, no element lost or doubled with producers and consumers on threads, drained
//! rings returned to the arena, a full region reported and survived.

#![cfg(not(loom))]

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;
use shmarena::{ByteUnboundedQueue, Error};

mod temp_region;

use temp_region::Temp;

fn temp_region(tag: &str, size: u64) -> Temp {
    temp_region::temp_region("shmarena-uq", tag, size)
}

proptest! {
    #[test]
    fn matches_a_vecdeque_model(capacity in 1u64..5, ops in prop::collection::vec(any::<Option<u16>>(), 1..300)) {
        let temp = temp_region(&format!("model-{capacity}"), 8 << 20);
        let queue = ByteUnboundedQueue::get_or_create(&temp.1, "q", capacity, 4).unwrap();
        let mut model = VecDeque::new();
        for (i, op) in ops.into_iter().enumerate() {
            if let Some(x) = op {
                let item = [x as u8, (x >> 8) as u8, i as u8, 0xa5];
                queue.push(&item).unwrap();
                model.push_back(item.to_vec());
            } else {
                prop_assert_eq!(queue.try_pop().unwrap(), model.pop_front());
            }
            prop_assert_eq!(queue.len().unwrap(), model.len());
        }
        while let Some(expected) = model.pop_front() {
            prop_assert_eq!(queue.try_pop().unwrap(), Some(expected));
        }
        prop_assert_eq!(queue.try_pop().unwrap(), None);
    }
}

#[test]
fn grows_without_a_consumer_then_drains_in_order_and_frees_its_rings() {
    let temp = temp_region("grow", 64 << 20);
    let region = &temp.1;
    let queue = ByteUnboundedQueue::get_or_create(region, "q", 2, 8).unwrap();
    let used = region.arena_stats().unwrap().used;
    for round in 0..3u64 {
        for i in 0..100_000u64 {
            queue.push(&(round << 32 | i).to_le_bytes()).unwrap();
        }
        assert_eq!(queue.len().unwrap(), 100_000);
        for i in 0..100_000u64 {
            let popped = queue.try_pop().unwrap().expect("an element");
            assert_eq!(popped, (round << 32 | i).to_le_bytes());
        }
        assert_eq!(queue.try_pop().unwrap(), None);
        assert!(queue.is_empty().unwrap());
    }
    // Every drained ring went back (the last one stays in use; and our participant slot's
    // pin stripes, 1 KiB).
    region.reclaim().unwrap();
    let still = region.arena_stats().unwrap().used - used;
    assert!(still <= (4 << 20) + 1024, "{still} bytes of rings kept");
}

/// After a burst outgrows the first ring and is drained, the queue goes back to its first
/// ring (which needs no pin) and gives every later ring back; elements pushed around the
/// put-back keep their order, and the next burst grows again from there.
#[test]
fn a_drained_queue_returns_to_its_first_ring_and_gives_the_others_back() {
    let temp = temp_region("put-back", 64 << 20);
    let region = &temp.1;
    let queue = ByteUnboundedQueue::get_or_create(region, "q", 4, 8).unwrap();
    let used = region.arena_stats().unwrap().used;
    let mut next_out = 0u64;
    let mut next_in = 0u64;
    for burst in [10_000u64, 3, 500, 70_000] {
        for _ in 0..burst {
            queue.push(&next_in.to_le_bytes()).unwrap();
            next_in += 1;
        }
        // Drain, then poll the empty queue a while (a consumer that finds it empty past
        // the first ring puts the first ring back, once a grace period has passed).
        while let Some(bytes) = queue.try_pop().unwrap() {
            assert_eq!(bytes, next_out.to_le_bytes(), "out of order");
            next_out += 1;
        }
        for _ in 0..300 {
            assert_eq!(queue.try_pop().unwrap(), None);
        }
        // One element across the put-back, then empty again.
        queue.push(&next_in.to_le_bytes()).unwrap();
        next_in += 1;
        assert_eq!(
            queue.try_pop().unwrap(),
            Some(next_out.to_le_bytes().to_vec())
        );
        next_out += 1;
        assert!(queue.is_empty().unwrap());
        region.reclaim().unwrap();
        let still = region.arena_stats().unwrap().used - used;
        // Our participant slot's pin stripes (1 KiB) and retire log stay; no ring does.
        let log = shmarena::engine::retire_log::log_bytes(region.arena_stats().unwrap().capacity);
        assert!(
            still <= 1024 + log,
            "{still} bytes of rings kept after a burst of {burst}"
        );
    }
}

const PER: u64 = 50_000;

#[test]
fn threads_push_and_pop_every_element_once_in_each_producers_order() {
    producers_and_consumers("threads", 1, None);
}

/// As above, with producers pushing in bursts that outgrow the first ring and pausing
/// while the consumers drain the queue: the queue leaves its first ring and is put back
/// into it over and over while both sides run.
#[test]
fn bursts_drained_between_keep_every_element_once_in_order_across_put_backs() {
    producers_and_consumers("bursts", 16, Some(300));
}

/// Two producers push [`PER`] elements each (in bursts of `burst`, pausing until the
/// queue looks empty, if given) into a queue whose first ring has `first` slots, while two
/// consumers pop: every element comes out once, each producer's in order for each
/// consumer.
fn producers_and_consumers(tag: &str, first: u64, burst: Option<u64>) {
    let temp = temp_region(tag, 64 << 20);
    let queue = ByteUnboundedQueue::get_or_create(&temp.1, "q", first, 8).unwrap();
    let popped = std::thread::scope(|scope| {
        for producer in 0..2u64 {
            let queue = queue.clone();
            scope.spawn(move || {
                for i in 0..PER {
                    queue.push(&(producer << 32 | i).to_le_bytes()).unwrap();
                    if burst.is_some_and(|burst| i % burst == burst - 1) {
                        let began = std::time::Instant::now();
                        while !queue.is_empty().unwrap() && began.elapsed().as_millis() < 50 {
                            std::thread::yield_now();
                        }
                    }
                }
            });
        }
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let queue = queue.clone();
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    while let Some(bytes) =
                        queue.pop_timeout(Some(Duration::from_millis(500))).unwrap()
                    {
                        seen.push(u64::from_le_bytes(bytes.try_into().unwrap()));
                    }
                    seen
                })
            })
            .collect();
        consumers
            .into_iter()
            .map(|c| c.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut all = Vec::new();
    for seen in &popped {
        // Each consumer sees each producer's elements in push order.
        for producer in 0..2u64 {
            let mine: Vec<_> = seen.iter().filter(|v| *v >> 32 == producer).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "out of order");
        }
        all.extend_from_slice(seen);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (0..2u64)
        .flat_map(|p| (0..PER).map(move |i| p << 32 | i))
        .collect();
    assert_eq!(all, expected);
}

#[test]
fn a_full_region_stops_a_push_and_the_queue_stays_usable() {
    let temp = temp_region("oom", 1 << 20);
    let queue = ByteUnboundedQueue::get_or_create(&temp.1, "q", 4, 64).unwrap();
    let mut pushed = 0u64;
    let error = loop {
        match queue.push(&pushed.to_le_bytes()) {
            Ok(()) => pushed += 1,
            Err(error) => break error,
        }
    };
    assert!(matches!(error, Error::OutOfMemory { .. }), "{error}");
    assert!(pushed > 1000);
    assert_eq!(queue.len().unwrap() as u64, pushed);
    for i in 0..pushed {
        let bytes = queue.try_pop().unwrap().unwrap();
        assert_eq!(bytes[..8], i.to_le_bytes());
    }
    // The drained rings came back: it takes as much again.
    temp.1.reclaim().unwrap();
    for i in 0..pushed / 2 {
        queue.push(&i.to_le_bytes()).unwrap();
    }
}

#[test]
fn a_timed_pop_of_an_empty_queue_returns_none() {
    let temp = temp_region("timeout", 4 << 20);
    let queue = ByteUnboundedQueue::get_or_create(&temp.1, "q", 4, 8).unwrap();
    let start = std::time::Instant::now();
    assert_eq!(
        queue.pop_timeout(Some(Duration::from_millis(50))).unwrap(),
        None
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
    let again = ByteUnboundedQueue::open(&temp.1, "q").unwrap();
    again.push(b"x").unwrap();
    assert_eq!(
        queue.pop_timeout(None).unwrap(),
        Some(b"x\0\0\0\0\0\0\0".to_vec())
    );
}

#[test]
fn a_typed_unbounded_queue_checks_its_type_and_keeps_order() {
    use shmarena::RegionExt;
    let temp = temp_region("typed", 8 << 20);
    let queue = temp.1.unbounded_queue::<[u32; 3]>("typed").unwrap();
    for i in 0..5000u32 {
        queue.push([i, !i, i ^ 7]).unwrap();
    }
    let again = temp.1.open_unbounded_queue::<[u32; 3]>("typed").unwrap();
    assert_eq!(again.len().unwrap(), 5000);
    for i in 0..5000u32 {
        assert_eq!(again.pop().unwrap(), [i, !i, i ^ 7]);
    }
    assert_eq!(queue.pop_timeout(Duration::from_millis(10)).unwrap(), None);
    assert!(matches!(
        temp.1.open_unbounded_queue::<[u64; 2]>("typed"),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        temp.1.open_queue::<[u32; 3]>("typed"),
        Err(Error::TypeMismatch { .. })
    ));
}

/// Corrupted words anywhere in the queue (its body, its rings' headers and stamps) give
/// errors or odd answers, never a panic, a hang or a read outside the mapping.
#[test]
fn corrupt_words_are_errors_not_panics_or_hangs() {
    use shmarena::engine::Memory;
    use shmarena::unbounded_queue::layout;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..100 {
        let temp = temp_region(&format!("corrupt-{round}"), 2 << 20);
        let region = &temp.1;
        let queue = ByteUnboundedQueue::get_or_create(region, "q", 2, 8).unwrap();
        for i in 0..20u64 {
            queue.push(&i.to_le_bytes()).unwrap();
        }
        for _ in 0..5 {
            queue.try_pop().unwrap();
        }
        let body = region.find_object("q").unwrap().unwrap().offset;
        // The rings, from the head ring on.
        let word = |offset: u64| region.memory().word(offset).unwrap();
        let mut rings =
            vec![word(body + layout::HEAD_RING).load(std::sync::atomic::Ordering::Relaxed)];
        while let Some(&last) = rings.last() {
            let next_ring =
                word(last + layout::RING_NEXT).load(std::sync::atomic::Ordering::Relaxed);
            if next_ring == 0 || rings.len() > 16 {
                break;
            }
            rings.push(next_ring);
        }
        let ring = rings[next() as usize % rings.len()];
        let target = match next() % 4 {
            0 => {
                body + [layout::HEAD_RING, layout::TAIL_RING, layout::FIRST_IDLE]
                    [next() as usize % 3]
            }
            1 => {
                ring + [
                    layout::RING_HEAD,
                    layout::RING_TAIL,
                    layout::RING_NEXT,
                    layout::RING_CAPACITY,
                ][next() as usize % 4]
            }
            _ => ring + layout::RING_SLOTS + 16 * (next() % 2), // a stamp
        };
        let value = match next() % 6 {
            0 => 0,
            1 => u64::MAX,
            2 => rings[next() as usize % rings.len()],
            3 => next() % 64,
            4 => shmarena::unbounded_queue::REOPENING,
            _ => next(),
        };
        word(target).store(value, std::sync::atomic::Ordering::Relaxed);
        let started = std::time::Instant::now();
        let _ = queue.len();
        for i in 0..30u64 {
            let _ = queue.push(&i.to_le_bytes());
            let _ = queue.try_pop();
        }
        // Drained and polled: the first ring's put-back runs on whatever the words say.
        for _ in 0..300 {
            let _ = queue.try_pop();
        }
        let _ = queue.pop_timeout(Some(Duration::from_millis(1)));
        let _ = shmarena::check::check_region(region);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "round {round}: {target} = {value:#x} took {:?}",
            started.elapsed()
        );
    }
}
