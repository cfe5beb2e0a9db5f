//! The hash map's slots on loom atomics, shared by the map's loom models: each slot's
//! (state, value) pair is loom's model of a 128-bit atomic, keys and values loom words.

#![allow(dead_code)]

use loom::sync::Arc;
use shmarena::engine::sync::{AtomicPair, AtomicU64};
use shmarena::hash_map::{header_words, Slots, COUNTER_SHARDS};

struct HeapSlots {
    pairs: Vec<AtomicPair>,
    data: Vec<Vec<AtomicU64>>,
    counters: Arc<Vec<AtomicU64>>,
    hints: Vec<AtomicU64>,
    header: Vec<AtomicU64>,
}

#[derive(Clone)]
pub struct Table(Arc<HeapSlots>);

impl Slots for Table {
    fn capacity(&self) -> u64 {
        self.0.pairs.len() as u64
    }
    fn pair(&self, slot: u64) -> &AtomicPair {
        &self.0.pairs[slot as usize]
    }
    fn data(&self, slot: u64) -> &[AtomicU64] {
        &self.0.data[slot as usize]
    }
    fn counter(&self, shard: usize) -> &AtomicU64 {
        &self.0.counters[shard]
    }
    fn hints(&self, word: u64) -> &AtomicU64 {
        &self.0.hints[word as usize]
    }
    fn header(&self, word: u64) -> &AtomicU64 {
        &self.0.header[word as usize]
    }
}

/// An empty table of `capacity` slots for one-word keys and `value_words`-word values.
pub fn table(capacity: usize, value_words: usize) -> Table {
    let counters = Arc::new((0..COUNTER_SHARDS).map(|_| AtomicU64::new(0)).collect());
    table_counting_in(capacity, value_words, counters)
}

/// A later table of the map `first` belongs to: the len counters are the map's.
pub fn next_table(first: &Table, capacity: usize, value_words: usize) -> Table {
    table_counting_in(capacity, value_words, Arc::clone(&first.0.counters))
}

fn table_counting_in(capacity: usize, value_words: usize, counters: Arc<Vec<AtomicU64>>) -> Table {
    // The key word, then two copies of a wide value or a one-word value's staging word.
    let data_words = 1 + if value_words > 1 { 2 * value_words } else { 1 };
    Table(Arc::new(HeapSlots {
        pairs: (0..capacity).map(|_| AtomicPair::new([0, 0])).collect(),
        data: (0..capacity)
            .map(|_| (0..data_words).map(|_| AtomicU64::new(0)).collect())
            .collect(),
        counters,
        hints: (0..capacity.div_ceil(8))
            .map(|_| AtomicU64::new(0))
            .collect(),
        header: (0..header_words(capacity as u64))
            .map(|_| AtomicU64::new(0))
            .collect(),
    }))
}
