//! `ShardedCounter`: a counter with one cache-padded cell per participant slot, summed on
//! read (Java's `LongAdder`). Many processes add without touching each other's cache
//! lines, so increments scale with cores where one shared atomic saturates.
//!
//! ```text
//! body: participant_capacity cells, 128 bytes apart from the first 128-byte boundary of
//! the body on (two cache lines: the adjacent-line prefetcher of x86 pulls lines in pairs):
//!   | cell 0: i64 | pad | cell 1: i64 | pad | ... |
//! ```
//!
//! A process adds to the cell of its participant slot. Cells keep their counts when their
//! process dies, and the slot's next holder adds to the same cell, so the sum never loses
//! an increment. [`sum`](ShardedCounter::sum) reads every cell (Relaxed): it is exact
//! when no process is adding, and otherwise lies between the counts before and after the
//! concurrent adds. Arithmetic wraps like `i64::wrapping_add`.
//!
//! Linearization point of `add`: its `fetch_add` on the process's cell. A process killed
//! at any instruction has either added or not.

use std::ptr::NonNull;

use shmarena_engine::sync::{AtomicI64, Ordering};
use shmarena_engine::{Error, Object, ObjectKind, Region, Result, TypeDescriptor};

/// Distance between cells in bytes.
const CELL_STRIDE: u64 = 128;

/// A named counter sharded by participant.
///
/// ```
/// use shmarena::{Region, RegionExt};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-sharded-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let requests = region.sharded_counter("requests")?;
/// requests.add(5);
/// requests.increment();
/// assert_eq!(requests.sum(), 6);
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
pub struct ShardedCounter {
    cells: NonNull<AtomicI64>,
    shards: u64,
    mine: NonNull<AtomicI64>,
    object: Object,
}

// SAFETY: the cells are atomics in the shared mapping, which `object` keeps alive; all
// access is atomic.
unsafe impl Send for ShardedCounter {}
// SAFETY: as above.
unsafe impl Sync for ShardedCounter {}

impl Clone for ShardedCounter {
    fn clone(&self) -> Self {
        Self {
            cells: self.cells,
            shards: self.shards,
            mine: self.mine,
            object: self.object.clone(),
        }
    }
}

impl std::fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedCounter")
            .field("name", &self.object.info().name)
            .field("sum", &self.sum())
            .finish_non_exhaustive()
    }
}

impl ShardedCounter {
    /// The catalog descriptor for a region with `shards` participant slots.
    pub fn descriptor(shards: u64) -> TypeDescriptor {
        TypeDescriptor::new(ObjectKind::ShardedCounter, b'q', 8, shards)
    }

    /// Opens the counter `name`, creating it at zero if it does not exist.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`]; catalog and arena errors.
    pub fn get_or_create(region: &Region, name: &str) -> Result<Self> {
        let shards = region.header().participant_capacity;
        let (object, _) = crate::sweep::get_or_create_object(
            region,
            name,
            &Self::descriptor(shards),
            // One spare line so the cells can start on a 128-byte boundary.
            shards * CELL_STRIDE + 64,
            |_| Ok(()),
        )?;
        Self::from_object(object)
    }

    /// Opens the existing counter `name`.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::Corrupt`].
    pub fn open(region: &Region, name: &str) -> Result<Self> {
        let shards = region.header().participant_capacity;
        Self::from_object(crate::sweep::open_object(
            region,
            name,
            &Self::descriptor(shards),
        )?)
    }

    fn from_object(object: Object) -> Result<Self> {
        let region = object.region();
        let shards = region.header().participant_capacity;
        if object.info().descriptor.capacity != shards {
            return Err(Error::Corrupt {
                field: "sharded counter",
                detail: format!(
                    "object {:?} has {} cells for {shards} participant slots",
                    object.info().name,
                    object.info().descriptor.capacity
                ),
            });
        }
        let slot = u64::from(region.participant_id().slot());
        // Cells start at the first 128-byte boundary of the body (the same in every
        // process: mappings are page-aligned, so address and offset agree mod 128).
        let first = object.info().offset.next_multiple_of(CELL_STRIDE) - object.info().offset;
        // Checks that the last cell lies inside the body, so every cell does.
        object.atomics::<AtomicI64>(first + (shards - 1) * CELL_STRIDE, 1)?;
        let cells = object.atomics::<AtomicI64>(first, 1)?;
        let mine = object.atomics::<AtomicI64>(first + slot * CELL_STRIDE, 1)?;
        Ok(Self {
            cells,
            shards,
            mine,
            object,
        })
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.object.info().name
    }

    /// Adds `delta` (wrapping) to this process's cell.
    #[inline]
    pub fn add(&self, delta: i64) {
        // SAFETY: `mine` was checked inside the body by `Object::atomics`; the mapping
        // outlives `self` (held by `self.object`).
        let cell = unsafe { self.mine.as_ref() };
        // Relaxed: a counter publishes no other data; readers want the count alone.
        cell.fetch_add(delta, Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.add(1);
    }

    /// Subtracts one.
    #[inline]
    pub fn decrement(&self) {
        self.add(-1);
    }

    fn cell(&self, shard: u64) -> &AtomicI64 {
        debug_assert!(shard < self.shards);
        // SAFETY: every cell `shard < shards` lies inside the body (checked for the last
        // one in `from_object`), 8-aligned (the body is 64-aligned, the stride 128); the
        // mapping outlives `self`.
        unsafe { &*self.cells.as_ptr().add((shard * CELL_STRIDE / 8) as usize) }
    }

    /// The sum of all cells (wrapping). Exact when no process is adding concurrently.
    pub fn sum(&self) -> i64 {
        // Relaxed: see the module docs; the sum is a snapshot, not a synchronization point.
        (0..self.shards).fold(0i64, |sum, shard| {
            sum.wrapping_add(self.cell(shard).load(Ordering::Relaxed))
        })
    }

    /// Sets every cell to zero and returns the sum taken away. Increments that race with
    /// the reset land either in the returned sum or in the counter afterwards, never lost.
    pub fn take(&self) -> i64 {
        // Relaxed: as in sum; swap makes each cell's handover exact.
        (0..self.shards).fold(0i64, |sum, shard| {
            sum.wrapping_add(self.cell(shard).swap(0, Ordering::Relaxed))
        })
    }
}
