//! Loom models of the shipping arena allocator over [`HeapMemory`].
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shmarena-engine --release --test loom_arena`.
//! Without `LOOM_MAX_PREEMPTIONS` the models use a preemption bound of 2.
//!
//! Every model ends with the same global check: each block the bump pointer ever handed
//! out is either held by exactly one thread or on the free list exactly once, and the
//! statistics words agree with that partition.

#![cfg(loom)]

mod loom_support;

use std::collections::BTreeSet;

use loom::sync::Arc;
use loom::thread;
use loom_support::{model, model_both_orders, pair};
use shmarena_engine::sync::Ordering;
use shmarena_engine::{Arena, Block, HeapMemory, Memory};

/// The arena starts right after the header page (its control words live there).
const START: u64 = 4096;
/// Blocks of the smallest class that fit the arena.
const BLOCKS: u64 = 8;
const END: u64 = START + 64 * BLOCKS;
/// Smallest size class: 64-byte blocks.
const CLASS: usize = 0;

fn arena(mem: &HeapMemory) -> Arena<'_, HeapMemory> {
    Arena::new(mem, START, END).expect("arena bounds fit the memory")
}

/// A fresh, initialized arena (created inside the model, as loom requires).
fn fresh_memory() -> Arc<HeapMemory> {
    let mem = Arc::new(HeapMemory::new(END));
    arena(&mem).initialize().unwrap();
    mem
}

fn alloc(mem: &HeapMemory) -> Block {
    let block = arena(mem).alloc(64).expect("the arena has room");
    assert_eq!(block.size, 64);
    assert_eq!(block.offset % 64, 0);
    assert!(block.offset >= START && block.offset + 64 <= END);
    block
}

fn free(mem: &HeapMemory, offset: u64) {
    arena(mem).free(offset, 64).unwrap();
}

/// After all threads joined: every block ever carved from the bump pointer is either in
/// `held` or on the free list, never both, never twice; the statistics agree.
fn assert_partition(mem: &HeapMemory, held: &[u64]) {
    let arena = arena(mem);
    let stats = arena.stats().unwrap();
    let free_list = arena.free_list(CLASS).unwrap();

    let mut seen = BTreeSet::new();
    for &offset in held {
        assert!(seen.insert(offset), "block {offset} is held twice");
    }
    for &offset in &free_list {
        assert!(
            seen.insert(offset),
            "block {offset} is on the free list twice, or both held and free \
             (held {held:?}, free {free_list:?})"
        );
    }
    let reserved: BTreeSet<u64> = (0..stats.reserved / 64).map(|i| START + 64 * i).collect();
    assert_eq!(seen, reserved, "a block was lost or invented");

    assert_eq!(stats.used, 64 * held.len() as u64, "bytes-in-use statistic");
    let free_count = stats
        .free_blocks
        .iter()
        .find(|&&(size, _)| size == 64)
        .map_or(0, |&(_, count)| count);
    assert_eq!(
        free_count,
        free_list.len() as u64,
        "free-list length statistic"
    );
}

/// Two threads carving blocks from the bump pointer at once never get the same block.
#[test]
fn bump_vs_bump_gives_distinct_blocks() {
    model(|| {
        let mem = fresh_memory();
        let other = {
            let mem = mem.clone();
            thread::spawn(move || alloc(&mem))
        };
        let mine = alloc(&mem);
        let theirs = other.join().unwrap();
        assert!(mine.fresh && theirs.fresh, "the free list was empty");
        assert_ne!(mine.offset, theirs.offset);
        assert_eq!(arena(&mem).stats().unwrap().reserved, 128);
        assert_partition(&mem, &[mine.offset, theirs.offset]);
    });
}

/// Two threads popping the same free list at once never get the same block.
#[test]
fn pop_vs_pop_gives_distinct_blocks() {
    model(|| {
        let mem = fresh_memory();
        let a = alloc(&mem).offset;
        let b = alloc(&mem).offset;
        free(&mem, a);
        free(&mem, b);
        let other = {
            let mem = mem.clone();
            thread::spawn(move || alloc(&mem))
        };
        let mine = alloc(&mem);
        let theirs = other.join().unwrap();
        assert!(!mine.fresh && !theirs.fresh, "both came from the free list");
        assert_ne!(mine.offset, theirs.offset);
        assert_eq!(
            BTreeSet::from([mine.offset, theirs.offset]),
            BTreeSet::from([a, b])
        );
        assert_partition(&mem, &[mine.offset, theirs.offset]);
    });
}

/// With one free block and two allocators, one pops it and the other falls back to the
/// bump pointer: distinct blocks, and the free list ends empty.
#[test]
fn pop_vs_pop_of_last_block_falls_back_to_bump() {
    model(|| {
        let mem = fresh_memory();
        let a = alloc(&mem).offset;
        free(&mem, a);
        let other = {
            let mem = mem.clone();
            thread::spawn(move || alloc(&mem))
        };
        let mine = alloc(&mem);
        let theirs = other.join().unwrap();
        assert_ne!(mine.offset, theirs.offset);
        assert_eq!(
            usize::from(!mine.fresh) + usize::from(!theirs.fresh),
            1,
            "exactly one block is recycled"
        );
        assert!(mine.offset == a || theirs.offset == a);
        assert!(arena(&mem).free_list(CLASS).unwrap().is_empty());
        assert_partition(&mem, &[mine.offset, theirs.offset]);
    });
}

/// A pop racing a push: the popper gets either the old head or the pushed block, never
/// one that is still on the list; nothing is lost.
#[test]
fn pop_vs_push_hands_nothing_out_twice() {
    model_both_orders(|swap| {
        let mem = fresh_memory();
        let a = alloc(&mem).offset;
        let b = alloc(&mem).offset;
        let c = alloc(&mem).offset;
        free(&mem, a);
        free(&mem, b); // list: b -> a
        let (popper, pusher) = (mem.clone(), mem.clone());
        let (popped, ()) = pair(swap, move || alloc(&popper), move || free(&pusher, c));
        assert!(!popped.fresh, "the list was never empty");
        assert!(
            popped.offset == b || popped.offset == c,
            "popped {} is neither the old head {b} nor the pushed {c}",
            popped.offset
        );
        assert_partition(&mem, &[popped.offset]);
    });
}

/// Two pushes racing onto one list: both blocks end on it, linked once each.
#[test]
fn push_vs_push_loses_nothing() {
    model(|| {
        let mem = fresh_memory();
        let a = alloc(&mem).offset;
        let b = alloc(&mem).offset;
        let c = alloc(&mem).offset;
        free(&mem, a);
        let pusher = {
            let mem = mem.clone();
            thread::spawn(move || free(&mem, b))
        };
        free(&mem, c);
        pusher.join().unwrap();
        let list = arena(&mem).free_list(CLASS).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list.last(), Some(&a), "the old list stays at the tail");
        assert_partition(&mem, &[]);
    });
}

/// The ABA race. The list is X -> Y. Thread A pops: it reads head X and X's next Y.
/// Meanwhile thread B pops X, pops Y and pushes X back (X's next is now the empty list).
/// If A's CAS compared only offsets, it would install Y as head while B holds Y. The tag
/// in the head word makes that CAS fail; A must retry and never see Y on the list while
/// B holds it.
#[test]
fn aba_pop_vs_pop_pop_push() {
    model_both_orders(|swap| {
        let mem = fresh_memory();
        let x = alloc(&mem).offset;
        let y = alloc(&mem).offset;
        free(&mem, y);
        free(&mem, x); // list: x -> y
        let (mem_a, mem_b) = (mem.clone(), mem.clone());
        let (a_block, b_block) = pair(
            swap,
            move || alloc(&mem_a).offset,
            move || {
                let first = alloc(&mem_b);
                let second = alloc(&mem_b);
                free(&mem_b, first.offset);
                second.offset
            },
        );
        assert_ne!(a_block, b_block, "A and B hold the same block");
        let list = arena(&mem).free_list(CLASS).unwrap();
        assert!(
            !list.contains(&a_block) && !list.contains(&b_block),
            "a held block is on the free list: A {a_block}, B {b_block}, list {list:?}"
        );
        assert_partition(&mem, &[a_block, b_block]);
    });
}

/// Thread A pops while thread B pops the same head and at once writes its own data into
/// the block's first word (the word that held the free-list link). A may read that data
/// as "next"; whether it looks like a block offset (`plausible`) or not, A must not
/// install it as the head.
fn pop_vs_pop_and_overwrite(plausible: bool) {
    model_both_orders(move |swap| {
        let mem = fresh_memory();
        let x = alloc(&mem).offset;
        let y = alloc(&mem).offset;
        free(&mem, y);
        free(&mem, x); // list: x -> y
        let junk = if plausible {
            END - 64 // inside the arena, never handed out
        } else {
            0xdead_beef // not a block offset at all
        };
        let (mem_a, mem_b) = (mem.clone(), mem.clone());
        let (a_block, b_block) = pair(
            swap,
            move || alloc(&mem_a).offset,
            move || {
                let block = alloc(&mem_b).offset;
                // Relaxed: user data in a block we own.
                mem_b.word(block).unwrap().store(junk, Ordering::Relaxed);
                block
            },
        );
        assert_ne!(a_block, b_block);
        assert_ne!(a_block, END - 64, "A followed B's data as a link");
        assert_partition(&mem, &[a_block, b_block]);
    });
}

/// See [`pop_vs_pop_and_overwrite`]: the overwritten link looks like a valid block.
#[test]
fn pop_vs_pop_and_overwrite_with_plausible_link() {
    pop_vs_pop_and_overwrite(true);
}

/// See [`pop_vs_pop_and_overwrite`]: the overwritten link is garbage.
#[test]
fn pop_vs_pop_and_overwrite_with_garbage_link() {
    pop_vs_pop_and_overwrite(false);
}

/// Allocates a block, stamps it with `stamp`, checks nobody else stamped it meanwhile
/// (which would mean the block was handed out twice at once), frees it.
fn alloc_stamp_free(mem: &HeapMemory, stamp: u64) {
    let block = alloc(mem).offset;
    let word = mem.word(block + 8).unwrap();
    // Relaxed: only this thread may touch the block while it holds it.
    word.store(stamp, Ordering::Relaxed);
    loom::thread::yield_now();
    assert_eq!(
        word.load(Ordering::Relaxed),
        stamp,
        "block {block} was handed to another thread while held"
    );
    free(mem, block);
}

/// Three threads churn one size class: two alloc, stamp and free a block while a third
/// allocates and keeps one. No block is ever held by two threads at once, and at the end
/// every block is held or free exactly once.
#[test]
fn three_thread_alloc_free_churn() {
    model(|| {
        let mem = fresh_memory();
        let a = alloc(&mem).offset;
        free(&mem, a);
        let churners: Vec<_> = (1..=2)
            .map(|stamp| {
                let mem = mem.clone();
                thread::spawn(move || alloc_stamp_free(&mem, stamp))
            })
            .collect();
        let kept = alloc(&mem).offset;
        for churner in churners {
            churner.join().unwrap();
        }
        assert_partition(&mem, &[kept]);
    });
}
