//! Fuzz target `queue_ops`: a `Queue<u32>` against `VecDeque` (differential).
//!
//! Byte 0 picks the capacity (`1 + b % 16`); the rest is a list of operations (an
//! opcode byte `% 5`: try_push, try_pop, push_timeout(0), pop_timeout(0), len; pushes
//! take 4 more value bytes, LE), each one on a `Queue<u32>` in a fresh small region and on a
//! `VecDeque` model of the same capacity. Single-threaded, so every result is exact: a
//! push fails with `Full`, handing its value back, exactly when the model is full, pops return the
//! model's front (or `None` on an empty model), `len` equals the model's. At the end the
//! queue's contents drain in model order and `check_region` reports no `Error`.

#![no_main]

mod common;

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shmarena::{PushError, Queue, RegionExt};

/// The process's scratch region (64 KiB, reset before every input).
fn scratch() -> &'static common::Scratch {
    static SCRATCH: OnceLock<common::Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| common::Scratch::new("queue", 64 * 1024, &common::one_object_options()))
}

#[derive(Debug, Clone, Copy)]
enum Op {
    TryPush(u32),
    TryPop,
    PushTimeout(u32),
    PopTimeout,
    Len,
}

/// Decodes the operations: one opcode byte (`% 5`), and for pushes 4 value bytes (LE;
/// missing bytes are zero).
fn parse(mut data: &[u8]) -> Vec<Op> {
    let mut ops = Vec::new();
    while let Some((&code, rest)) = data.split_first() {
        data = rest;
        let mut value = || {
            let mut bytes = [0u8; 4];
            let n = data.len().min(4);
            bytes[..n].copy_from_slice(&data[..n]);
            data = &data[n..];
            u32::from_le_bytes(bytes)
        };
        ops.push(match code % 5 {
            0 => Op::TryPush(value()),
            1 => Op::TryPop,
            2 => Op::PushTimeout(value()),
            3 => Op::PopTimeout,
            _ => Op::Len,
        });
    }
    ops
}

fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let capacity = 1 + usize::from(first % 16);
    let ops = parse(rest);
    let region = scratch().reset();
    let queue: Queue<u32> = region
        .queue("q", capacity as u64)
        .expect("create the queue");
    assert_eq!(queue.capacity(), capacity);
    let mut model = VecDeque::with_capacity(capacity);
    let trace = common::trace();
    for (step, op) in ops.iter().enumerate() {
        if trace {
            eprintln!("{step}: {op:?} (model {model:?})");
        }
        match *op {
            Op::TryPush(v) | Op::PushTimeout(v) => {
                let result = match op {
                    Op::TryPush(_) => queue.try_push(v),
                    _ => queue.push_timeout(v, Duration::ZERO),
                };
                if model.len() == capacity {
                    assert!(
                        matches!(result, Err(PushError::Full(back)) if back == v),
                        "step {step}: {op:?} on a full queue gave {result:?}"
                    );
                } else {
                    assert!(
                        result.is_ok(),
                        "step {step}: {op:?} with {} of {capacity} gave {result:?}",
                        model.len()
                    );
                    model.push_back(v);
                }
            }
            Op::TryPop | Op::PopTimeout => {
                let got = match op {
                    Op::TryPop => queue.try_pop(),
                    _ => queue.pop_timeout(Duration::ZERO),
                };
                assert_eq!(got, model.pop_front(), "step {step}: {op:?}");
            }
            Op::Len => {}
        }
        assert_eq!(queue.len(), model.len(), "step {step}: len after {op:?}");
        assert_eq!(queue.is_empty(), model.is_empty());
    }
    common::assert_check_clean(region);
    // Another handle sees the same queue; draining it yields the model in order.
    let other: Queue<u32> = Queue::open(region, "q").expect("reopen the queue");
    assert_eq!(other.len(), model.len());
    while let Some(expected) = model.pop_front() {
        assert_eq!(other.try_pop(), Some(expected));
    }
    assert_eq!(other.try_pop(), None);
    assert_eq!((queue.lost(), queue.skipped()), (0, 0));
}

fuzz_target!(
    init: {
        // Wrap around a 16-slot queue a few times, then reset: the region must be as new.
        let mut input = vec![15];
        for round in 0..3u8 {
            for i in 0..17u8 {
                input.extend_from_slice(&[0, i, round, 0, 0]);
            }
            input.extend_from_slice(&[1, 3, 4, 1]);
        }
        run(&input);
        scratch().reset();
        scratch().assert_pristine();
    },
    |data: &[u8]| run(data)
);
