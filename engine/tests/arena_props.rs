//! Property tests of the arena allocator against an exact model.
//!
//! The model predicts every result: a recycled block is the top of its class's free list
//! (LIFO), otherwise the bump pointer hands out the next block, otherwise the call fails
//! with `OutOfMemory`. After every operation the statistics, every free list and every
//! live block's contents are checked; live blocks never overlap.

#![cfg(not(loom))]

use std::collections::BTreeMap;

use proptest::prelude::*;
use shmarena_engine::layout::{header, HEADER_SIZE, SIZE_CLASSES};
use shmarena_engine::sync::Ordering;
use shmarena_engine::{Arena, Block, Error, HeapMemory, Memory, Region, RegionOptions};

/// One step of a generated run.
#[derive(Clone, Debug)]
enum Op {
    /// Allocate this many bytes.
    Alloc(u64),
    /// Free the live block at this index (modulo the number of live blocks), passing the
    /// block's size instead of the requested size when the flag is set.
    Free(usize, bool),
}

fn size_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0..=256u64,
        4 => 257..=4096u64,
        2 => 4097..=20_000u64,
        1 => (1u64 << 36)..=(1u64 << 40),
        1 => Just(u64::MAX),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => size_strategy().prop_map(Op::Alloc),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, by_size)| Op::Free(i, by_size)),
    ]
}

/// A live block and the stamp written into each of its words.
#[derive(Debug)]
struct Live {
    block: Block,
    requested: u64,
    stamp: u64,
}

/// The allocator's expected state.
struct Model {
    start: u64,
    end: u64,
    bump: u64,
    /// Free blocks per class, the list head last.
    free: Vec<Vec<u64>>,
    live: Vec<Live>,
    next_stamp: u64,
}

/// The size of class `class`, computed independently of the engine: 64 B, then every
/// power of two and every power of two times 1.5 in increasing order.
fn expected_size(class: usize) -> u64 {
    let mut sizes = vec![64u64];
    let mut power = 128u64;
    while sizes.len() <= class {
        sizes.push(power);
        sizes.push(power / 2 * 3);
        power *= 2;
    }
    sizes[class]
}

/// The class of a request, computed independently of the engine: the first class whose
/// size holds it; `None` when none does.
fn expected_class(size: u64) -> Option<usize> {
    (0..SIZE_CLASSES).find(|&class| expected_size(class) >= size.max(64))
}

fn read(mem: &impl Memory, offset: u64) -> u64 {
    mem.word(offset).unwrap().load(Ordering::Relaxed)
}

fn write(mem: &impl Memory, offset: u64, value: u64) {
    mem.word(offset).unwrap().store(value, Ordering::Relaxed);
}

impl Model {
    fn new(start: u64, end: u64) -> Self {
        Self {
            start,
            end,
            bump: start,
            free: vec![Vec::new(); SIZE_CLASSES],
            live: Vec::new(),
            next_stamp: 1,
        }
    }

    fn alloc<M: Memory>(&mut self, arena: &Arena<'_, M>, mem: &M, size: u64) {
        let result = arena.alloc(size);
        let Some(class) = expected_class(size) else {
            assert!(
                matches!(
                    result,
                    Err(Error::OutOfMemory { requested, available, .. })
                        if requested == size && available == self.end - self.bump
                ),
                "alloc({size}): no class fits, got {result:?}"
            );
            return;
        };
        let class_size = expected_size(class);
        let block = if let Some(offset) = self.free[class].pop() {
            let block = result.expect("a free block of the class is recycled");
            assert_eq!(
                block,
                Block {
                    offset,
                    size: class_size,
                    fresh: false
                },
                "alloc({size}) must pop the last block freed in its class"
            );
            block
        } else if self.end - self.bump >= class_size {
            let block = result.expect("the bump pointer has room");
            assert_eq!(
                block,
                Block {
                    offset: self.bump,
                    size: class_size,
                    fresh: true
                },
                "alloc({size}) from the bump pointer"
            );
            self.bump += class_size;
            for word in (block.offset..block.offset + block.size).step_by(8) {
                assert_eq!(read(mem, word), 0, "fresh block {block:?} is not zero");
            }
            block
        } else {
            match result {
                Err(Error::OutOfMemory {
                    requested,
                    available,
                    ..
                }) => {
                    assert_eq!(requested, class_size);
                    assert_eq!(available, self.end - self.bump);
                }
                other => {
                    panic!("alloc({size}) with the arena full: expected OutOfMemory, got {other:?}")
                }
            }
            return;
        };

        assert_eq!(block.offset % 64, 0, "alignment");
        assert!(block.size >= size && block.size >= 64);
        assert_eq!(
            Some(block.size),
            expected_class(size).map(expected_size),
            "class size"
        );
        assert!(block.offset >= self.start && block.offset + block.size <= self.end);
        for other in &self.live {
            let disjoint = block.offset + block.size <= other.block.offset
                || other.block.offset + other.block.size <= block.offset;
            assert!(disjoint, "{block:?} overlaps live {:?}", other.block);
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        for word in (block.offset..block.offset + block.size).step_by(8) {
            write(mem, word, stamp);
        }
        self.live.push(Live {
            block,
            requested: size,
            stamp,
        });
    }

    fn free<M: Memory>(&mut self, arena: &Arena<'_, M>, mem: &M, index: usize, by_size: bool) {
        if self.live.is_empty() {
            return;
        }
        let live = self.live.swap_remove(index % self.live.len());
        let Block { offset, size, .. } = live.block;
        for word in (offset..offset + size).step_by(8) {
            assert_eq!(
                read(mem, word),
                live.stamp,
                "block {offset} was written by someone else while live"
            );
        }
        let size_arg = if by_size { size } else { live.requested };
        arena.free(offset, size_arg).unwrap();
        self.free[expected_class(size).expect("a live block's size is a class's")].push(offset);
    }

    /// Statistics and free lists agree with the model.
    fn check<M: Memory>(&self, arena: &Arena<'_, M>) {
        let stats = arena.stats().unwrap();
        assert_eq!(stats.capacity, self.end - self.start);
        assert_eq!(stats.reserved, self.bump - self.start);
        let used: u64 = self.live.iter().map(|l| l.block.size).sum();
        assert_eq!(stats.used, used, "bytes in use");
        let expected_free: Vec<(u64, u64)> = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, list)| !list.is_empty())
            .map(|(class, list)| (expected_size(class), list.len() as u64))
            .collect();
        assert_eq!(stats.free_blocks, expected_free, "free counts");
        for (class, list) in self.free.iter().enumerate() {
            let walked = arena.free_list(class).unwrap();
            let expected: Vec<u64> = list.iter().rev().copied().collect();
            assert_eq!(walked, expected, "free list of class {class}");
        }
        // Nothing lost: live, free and unreserved bytes add up to the arena.
        let free_bytes: u64 = expected_free.iter().map(|(size, count)| size * count).sum();
        assert_eq!(used + free_bytes + (self.end - self.bump), stats.capacity);
    }
}

fn run<M: Memory>(mem: &M, start: u64, end: u64, ops: &[Op]) {
    let arena = Arena::new(mem, start, end).unwrap();
    let mut model = Model::new(start, end);
    model.check(&arena);
    for op in ops {
        match *op {
            Op::Alloc(size) => model.alloc(&arena, mem, size),
            Op::Free(index, by_size) => model.free(&arena, mem, index, by_size),
        }
        model.check(&arena);
    }
    // Free everything: all blocks come back, nothing is in use.
    while !model.live.is_empty() {
        model.free(&arena, mem, 0, false);
    }
    model.check(&arena);
    assert_eq!(arena.stats().unwrap().used, 0);
}

fn heap_arena(blocks: u64) -> (HeapMemory, u64, u64) {
    let (start, end) = (HEADER_SIZE, HEADER_SIZE + 64 * blocks);
    let mem = HeapMemory::new(end);
    Arena::new(&mem, start, end).unwrap().initialize().unwrap();
    (mem, start, end)
}

fn temp_region_path(test: &str, case: u64) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "shmarena-arena-props-{}-{test}-{case}",
        std::process::id()
    ))
}

proptest! {
    /// Random alloc/free runs over heap memory match the model exactly.
    #[test]
    fn heap_arena_matches_model(
        blocks in 1u64..=320,
        ops in prop::collection::vec(op_strategy(), 0..200),
    ) {
        let (mem, start, end) = heap_arena(blocks);
        run(&mem, start, end, &ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The same over a real region's arena (the mapped file).
    #[test]
    fn region_arena_matches_model(ops in prop::collection::vec(op_strategy(), 0..150)) {
        static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = temp_region_path("region", case);
        let options = RegionOptions {
            participant_capacity: 4,
            catalog_capacity: 4,
            ..RegionOptions::default()
        };
        let region = Region::create_with(&path, 2 * 4096 + 16 * 1024, &options).unwrap();
        Region::unlink(&path).unwrap();
        let fields = *region.header();
        run(region.memory(), fields.arena_offset, fields.arena_end, &ops);
    }
}

/// Filling the arena with the smallest blocks hands out every block once, then fails
/// with `OutOfMemory` (repeatedly, without moving the bump pointer); after freeing them
/// all, the same blocks come back from the free list in LIFO order.
#[test]
fn fill_free_refill() {
    let blocks = 40;
    let (mem, start, end) = heap_arena(blocks);
    let arena = Arena::new(&mem, start, end).unwrap();
    let first: Vec<u64> = (0..blocks)
        .map(|_| arena.alloc(1).unwrap().offset)
        .collect();
    let expected: Vec<u64> = (0..blocks).map(|i| start + 64 * i).collect();
    assert_eq!(first, expected);
    for _ in 0..3 {
        assert!(matches!(
            arena.alloc(64),
            Err(Error::OutOfMemory {
                requested: 64,
                available: 0,
                ..
            })
        ));
    }
    assert_eq!(arena.stats().unwrap().reserved, 64 * blocks);
    for &offset in &first {
        arena.free(offset, 64).unwrap();
    }
    assert_eq!(arena.stats().unwrap().used, 0);
    assert_eq!(arena.free_list(0).unwrap().len() as u64, blocks);
    let again: Vec<u64> = (0..blocks)
        .map(|_| {
            let block = arena.alloc(64).unwrap();
            assert!(!block.fresh);
            block.offset
        })
        .collect();
    let reversed: Vec<u64> = first.iter().rev().copied().collect();
    assert_eq!(again, reversed);
    // A larger class cannot use the small free blocks: the arena is full for it.
    assert!(matches!(arena.alloc(128), Err(Error::OutOfMemory { .. })));
}

/// Frees of impossible blocks are `Corrupt` errors and change nothing.
#[test]
fn free_rejects_impossible_blocks() {
    let (mem, start, end) = heap_arena(8);
    let arena = Arena::new(&mem, start, end).unwrap();
    let block = arena.alloc(64).unwrap();
    let before = arena.stats().unwrap();
    for (offset, size) in [
        (0, 64),                  // in the header
        (start - 64, 64),         // just before the arena
        (start + 8, 64),          // unaligned
        (end, 64),                // just past the end
        (end - 64, 128),          // runs past the end
        (u64::MAX - 63, 64),      // overflows
        (block.offset, u64::MAX), // no such class
    ] {
        let result = arena.free(offset, size);
        assert!(
            matches!(
                result,
                Err(Error::Corrupt { .. } | Error::OutOfMemory { .. })
            ),
            "free({offset}, {size}) gave {result:?}"
        );
    }
    assert_eq!(arena.stats().unwrap(), before);
    assert!(arena.free_list(0).unwrap().is_empty());
    assert!(matches!(
        arena.free_list(SIZE_CLASSES),
        Err(Error::InvalidArgument(_))
    ));
}

/// Hostile values in the arena's shared words give errors, never a panic, a loop or an
/// out-of-arena block.
#[test]
fn corrupt_shared_words_are_errors() {
    let (mem, start, end) = heap_arena(8);
    let arena = Arena::new(&mem, start, end).unwrap();

    // A bump pointer outside the arena.
    write(&mem, header::ARENA_BUMP, end + 64);
    assert!(matches!(arena.alloc(64), Err(Error::Corrupt { .. })));
    write(&mem, header::ARENA_BUMP, start + 8);
    assert!(matches!(arena.alloc(64), Err(Error::Corrupt { .. })));
    write(&mem, header::ARENA_BUMP, start);

    // A free-list head pointing outside the arena (offset / 64 in the low 32 bits).
    write(&mem, header::FREE_HEADS, 1); // block offset 64: inside the header
    assert!(matches!(arena.alloc(64), Err(Error::Corrupt { .. })));
    assert!(matches!(arena.free_list(0), Err(Error::Corrupt { .. })));
    write(&mem, header::FREE_HEADS, 0);

    // A free block whose link points outside the arena.
    let a = arena.alloc(64).unwrap().offset;
    arena.free(a, 64).unwrap();
    write(&mem, a, 8); // unaligned link
    assert!(matches!(arena.alloc(64), Err(Error::Corrupt { .. })));
    assert!(matches!(arena.free_list(0), Err(Error::Corrupt { .. })));
    write(&mem, a, 0);

    // A cycle in a free list: the walk reports it instead of looping.
    let b = arena.alloc(64).unwrap().offset; // pops a
    let c = arena.alloc(64).unwrap().offset;
    arena.free(b, 64).unwrap();
    arena.free(c, 64).unwrap(); // list: c -> b
    write(&mem, b, c); // b -> c: a cycle
    let walked = arena.free_list(0);
    assert!(
        matches!(&walked, Err(Error::Corrupt { detail, .. }) if detail.contains("cycle")),
        "{walked:?}"
    );
}

/// `ArenaStats` reports a class only while it has free blocks; counts are per class.
#[test]
fn stats_group_free_blocks_by_class() {
    let (mem, start, end) = heap_arena(64);
    let arena = Arena::new(&mem, start, end).unwrap();
    let sizes = [1u64, 64, 65, 128, 129, 193, 1000, 1024];
    let blocks: Vec<Block> = sizes.iter().map(|&s| arena.alloc(s).unwrap()).collect();
    let classes: Vec<u64> = blocks.iter().map(|b| b.size).collect();
    assert_eq!(classes, [64, 64, 128, 128, 192, 256, 1024, 1024]);
    for (block, &size) in blocks.iter().zip(&sizes) {
        arena.free(block.offset, size).unwrap();
    }
    let stats = arena.stats().unwrap();
    let by_class: BTreeMap<u64, u64> = stats.free_blocks.into_iter().collect();
    assert_eq!(
        by_class,
        BTreeMap::from([(64, 2), (128, 2), (192, 1), (256, 1), (1024, 2)])
    );
    assert_eq!(stats.used, 0);
}
