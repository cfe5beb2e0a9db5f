//! shmarena: shared-memory data structures used by many processes at once, with no
//! broker, no serialization and no system call on the fast path.
//!
//! A [`Region`] is a file (by default in `/dev/shm`) that every process maps. Objects in it
//! have names; any process opens any object by name, in any order:
//!
//! ```
//! use shmarena::{Region, RegionExt};
//! # let path = std::env::temp_dir().join(format!("shmarena-doc-lib-{}", std::process::id()));
//! let region = Region::open_or_create(&path, 16 << 20)?;
//! let counter = region.value::<i64>("counter", 0)?;
//! counter.fetch_add(1); // atomic across processes: no `+=` race
//! let arr = region.array::<f64>("samples", &[0.0; 8])?;
//! arr.at(3)?.fetch_add(0.5);
//! # Region::unlink(&path)?;
//! # Ok::<(), shmarena::Error>(())
//! ```
//!
//! | Python `multiprocessing`        | shmarena                                         |
//! |---------------------------------|--------------------------------------------------|
//! | `Value('i', 0)`                 | `region.value::<i32>("name", 0)?`                |
//! | `Array('d', [...])`             | `region.array::<f64>("name", &[...])?`           |
//! | `v.value += 1` (racy)           | `v.fetch_add(1)` (atomic)                        |
//! | `with v.get_lock(): v.value += 1` | `v.fetch_add(1)` (no lock needed)              |
//! | a counter hit by every worker   | `region.sharded_counter("name")?`                |
//! | `Lock()`, `RLock()`             | `region.lock("name")?`, `region.rlock("name")?`  |
//! | data behind a lock              | `region.mutex::<T>("name", initial)?`            |
//! | `Condition()`, `Event()`        | `region.condvar("name")?`, `region.event("name")?` |
//! | `Semaphore(n)`, `BoundedSemaphore(n)` | `region.semaphore("name", n)?`, `region.bounded_semaphore("name", n)?` |
//! | `Barrier(n)`                    | `region.barrier("name", n)?`                     |
//! | `Queue(maxsize)`                | `region.queue::<T>("name", capacity)?`           |
//! | `Queue()` (unbounded)           | `region.unbounded_queue::<T>("name")?`           |
//! | `Manager().dict()`              | `region.hash_map::<K, V>("name", capacity)?`     |
//! | a dict of large or long values  | `BlobMap::get_or_create(&region, "name", capacity, 32, 64)?` |
//! | `Manager().set()` (3.14)        | `region.hash_set::<K>("name", capacity)?`        |
//! | `Manager().list()`              | `region.list::<T>("name", capacity)?`            |
//! | `Manager().Namespace()`         | `region.namespace("name")?`                      |
//!
//! Every kind also has an `open_<kind>` ([`RegionExt::open_queue`], [`RegionExt::open_mutex`],
//! ...) for an object that must exist already: it fails on a missing name instead of
//! creating one.
//!
//! Locks survive their holders: a process killed holding a [`Mutex`] is detected and its
//! lock taken over, and the next owner is told ([`OwnerDied`]); a dead process's
//! [`Semaphore`] permits come back; a party that dies at a [`Barrier`] breaks it.
//!
//! # Your own types
//!
//! Mutexes, queues, lists, maps and sets hold any [`Pod`] type: plain bytes, no pointers
//! and no padding, the same in every process. Derive it with `shmarena` as the only
//! dependency: [`Pod`] and [`Zeroable`] are bytemuck's derives, re-exported, and the
//! `bytemuck(crate = ...)` attribute tells them where bytemuck is
//! ([`shmarena::bytemuck`](bytemuck); without it they look for a `bytemuck` dependency of
//! your own):
//!
//! ```
//! use shmarena::{Region, RegionExt};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, shmarena::Pod, shmarena::Zeroable)]
//! #[bytemuck(crate = "shmarena::bytemuck")]
//! #[repr(C)]
//! struct Job {
//!     id: u64,
//!     cost: f64,
//!     tags: [u8; 8],
//! }
//!
//! # let path = std::env::temp_dir().join(format!("shmarena-doc-pod-{}", std::process::id()));
//! let region = Region::open_or_create(&path, 16 << 20)?;
//! let jobs = region.queue::<Job>("jobs", 64)?;
//! jobs.push(Job { id: 1, cost: 2.5, tags: *b"urgent\0\0" });
//! assert_eq!(jobs.pop().id, 1);
//! let latest = region.mutex::<Job>("latest", Job { id: 0, cost: 0.0, tags: [0; 8] })?;
//! latest.lock().unwrap_or_else(shmarena::OwnerDied::into_inner).cost = 4.0;
//! # Region::unlink(&path)?;
//! # Ok::<(), shmarena::Error>(())
//! ```
//!
//! Two programs sharing an object must agree on its type's layout: `#[repr(C)]`, and the
//! derive refuses padding. The catalog records each type (see [`identity`]): Rust's
//! scalars by their Python typecode, so a `HashMap<u64, u64>` does not open as a
//! `HashMap<i64, f64>`, and your types by a fingerprint of their name (without module
//! path), size and alignment, so a queue of `Job`s opens as a `Queue<Job>` in any program
//! that declares `Job` with this layout, and as nothing else
//! ([`Error::TypeMismatch`]). The byte views ([`ByteQueue`], [`ByteMap`], ...) open any
//! type of their size.

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(loom))]
mod array;
pub mod barrier;
#[cfg(not(loom))]
pub mod blob_map;
#[cfg(not(loom))]
pub mod check;
pub mod condvar;
pub mod event;
#[cfg(not(loom))]
mod fixed;
pub mod hash_map;
pub mod identity;
pub mod list;
pub mod made;
pub mod mutex;
#[cfg(not(loom))]
mod namespace;
pub mod queue;
#[cfg(not(loom))]
mod rlock;
pub mod scalar;
pub mod semaphore;
#[cfg(not(loom))]
mod sharded_counter;
pub mod sleepers;
#[cfg(not(loom))]
pub mod sweep;
pub mod unbounded_queue;
#[cfg(not(loom))]
mod value;
#[cfg_attr(loom, allow(dead_code))] // the handles use most of it; the map core some
mod words;

#[cfg(not(loom))]
pub use array::Array;
#[cfg(not(loom))]
pub use barrier::Barrier;
#[cfg(not(loom))]
pub use blob_map::BlobMap;
#[cfg(not(loom))]
pub use condvar::{Condvar, WaitTimeoutResult};
#[cfg(not(loom))]
pub use event::Event;
#[cfg(not(loom))]
pub use fixed::{FixedBytes, FixedStr};
#[cfg(not(loom))]
pub use hash_map::{ByteMap, ByteSet, HashMap, HashSet};
#[cfg(not(loom))]
pub use list::{ByteList, List};
#[cfg(not(loom))]
pub use mutex::{Lock, Mutex, MutexGuard};
pub use mutex::{LockResult, OwnerDied, TryLockError};
#[cfg(not(loom))]
pub use namespace::Namespace;
#[cfg(not(loom))]
pub use queue::{ByteQueue, PushError, Queue};
#[cfg(not(loom))]
pub use rlock::{RLock, RLockGuard};
pub use scalar::{AtomicScalar, Integer, Numeric, Plain, Scalar};
#[cfg(not(loom))]
pub use semaphore::{Semaphore, SemaphorePermit};
#[cfg(not(loom))]
pub use sharded_counter::ShardedCounter;
#[cfg(not(loom))]
pub use unbounded_queue::{ByteUnboundedQueue, UnboundedQueue};
#[cfg(not(loom))]
pub use value::Value;

pub use shmarena_engine::{
    ArenaStats, EntryInfo, Error, HeaderFields, ObjectKind, OwnerId, Result, TypeDescriptor,
};
#[cfg(not(loom))]
pub use shmarena_engine::{Blob, GracePin, ParticipantInfo, Region, RegionOptions, StagedBlob};

/// `bytemuck`, the crate behind [`Pod`] and [`Zeroable`], for the derives' `crate`
/// attribute: `#[bytemuck(crate = "shmarena::bytemuck")]` (see "Your own types" in the
/// crate docs) lets a crate that depends on `shmarena` alone derive them.
pub use bytemuck;
/// Types that are plain bytes, for [`Mutex`], [`Queue`], [`List`], [`HashMap`] and the
/// other structures of user types; also the derive macro of the same name (bytemuck's),
/// so `#[derive(shmarena::Pod)]` works. See "Your own types" in the crate docs.
pub use bytemuck::Pod;
/// Types whose all-zero bytes are a valid value (a supertrait of [`Pod`]); also the derive
/// macro of the same name (bytemuck's).
pub use bytemuck::Zeroable;

/// The engine, for tools and structures built outside this crate.
pub use shmarena_engine as engine;

/// The longest object name, in bytes of UTF-8 (64): every name given to a [`RegionExt`]
/// constructor or opener, a namespace's `<name>.<attribute>` included. A longer, empty or
/// NUL-holding name is [`Error::InvalidName`].
///
/// ```
/// use shmarena::{Error, Region, RegionExt, MAX_NAME_LEN};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-maxname-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// region.value::<u64>(&"n".repeat(MAX_NAME_LEN), 0)?;
/// let too_long = region.value::<u64>(&"n".repeat(MAX_NAME_LEN + 1), 0);
/// assert!(matches!(too_long, Err(Error::InvalidName { .. })));
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
pub use shmarena_engine::layout::MAX_NAME_LEN;

/// Named-object constructors on [`Region`]: `use shmarena::RegionExt`.
///
/// Every kind of object has the same pair of methods:
/// - a constructor named after the kind (`region.queue(...)`, `region.mutex(...)`) that
///   opens the object of that name, creating it if it does not exist: any process may call
///   it, in any order, and all get the same object;
/// - `open_<kind>` (`region.open_queue(...)`, `region.open_mutex(...)`) that opens an
///   object that must exist already, whatever size it was created with, and fails with
///   [`Error::ObjectNotFound`] if there is none of that name and with
///   [`Error::TypeMismatch`] if the name is another kind of object or holds another type.
///
/// Names are 1 to [`MAX_NAME_LEN`] (64) bytes of UTF-8 without NUL ([`Error::InvalidName`]
/// otherwise). Every object takes one entry of the region's catalog, 512 by default
/// ([`RegionOptions::catalog_capacity`]; [`Error::CatalogFull`] past it), and objects are
/// never deleted: size the catalog for every name the program will ever create.
///
/// ```
/// use shmarena::{Error, Region, RegionExt};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-regionext-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// // The process that sets things up:
/// let jobs = region.queue::<u64>("jobs", 64)?;
/// jobs.push(7);
/// // A worker, which must not create a queue of its own by mistake:
/// let jobs = region.open_queue::<u64>("jobs")?;
/// assert_eq!(jobs.pop(), 7);
/// assert!(matches!(region.open_queue::<u64>("jbos"), Err(Error::ObjectNotFound(_))));
/// assert!(matches!(region.open_mutex::<u64>("jobs"), Err(Error::TypeMismatch { .. })));
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
#[cfg(not(loom))]
pub trait RegionExt {
    /// Opens or creates the [`Value`] `name` (created holding `initial`).
    ///
    /// # Errors
    /// See [`Value::get_or_create`].
    fn value<T: Scalar>(&self, name: &str, initial: T) -> Result<Value<T>>;
    /// Opens the existing [`Value`] `name`.
    ///
    /// # Errors
    /// See [`Value::open`].
    fn open_value<T: Scalar>(&self, name: &str) -> Result<Value<T>>;
    /// Opens or creates the [`Array`] `name` (created as a copy of `initial`).
    ///
    /// # Errors
    /// See [`Array::get_or_create`].
    fn array<T: Scalar>(&self, name: &str, initial: &[T]) -> Result<Array<T>>;
    /// Opens or creates the [`Array`] `name` of `len` zeros.
    ///
    /// # Errors
    /// See [`Array::get_or_create_zeroed`].
    fn array_zeroed<T: Scalar>(&self, name: &str, len: usize) -> Result<Array<T>>;
    /// Opens the existing [`Array`] `name`, whatever its length.
    ///
    /// # Errors
    /// See [`Array::open`].
    fn open_array<T: Scalar>(&self, name: &str) -> Result<Array<T>>;
    /// Opens or creates the [`ShardedCounter`] `name`.
    ///
    /// # Errors
    /// See [`ShardedCounter::get_or_create`].
    fn sharded_counter(&self, name: &str) -> Result<ShardedCounter>;
    /// Opens the existing [`ShardedCounter`] `name`.
    ///
    /// # Errors
    /// See [`ShardedCounter::open`].
    fn open_sharded_counter(&self, name: &str) -> Result<ShardedCounter>;
    /// Opens or creates the [`Mutex`] `name` (created holding `initial`).
    ///
    /// # Errors
    /// See [`Mutex::get_or_create`].
    fn mutex<T: Pod>(&self, name: &str, initial: T) -> Result<Mutex<T>>;
    /// Opens the existing [`Mutex`] `name`.
    ///
    /// # Errors
    /// See [`Mutex::open`].
    fn open_mutex<T: Pod>(&self, name: &str) -> Result<Mutex<T>>;
    /// Opens or creates the [`Lock`] `name` (a `Mutex<()>`).
    ///
    /// # Errors
    /// See [`Mutex::get_or_create`].
    fn lock(&self, name: &str) -> Result<Lock>;
    /// Opens the existing [`Lock`] `name`.
    ///
    /// # Errors
    /// See [`Mutex::open`].
    fn open_lock(&self, name: &str) -> Result<Lock>;
    /// Opens or creates the [`RLock`] `name`.
    ///
    /// # Errors
    /// See [`RLock::get_or_create`].
    fn rlock(&self, name: &str) -> Result<RLock>;
    /// Opens the existing [`RLock`] `name`.
    ///
    /// # Errors
    /// See [`RLock::open`].
    fn open_rlock(&self, name: &str) -> Result<RLock>;
    /// Opens or creates the [`Condvar`] `name`.
    ///
    /// # Errors
    /// See [`Condvar::get_or_create`].
    fn condvar(&self, name: &str) -> Result<Condvar>;
    /// Opens the existing [`Condvar`] `name`.
    ///
    /// # Errors
    /// See [`Condvar::open`].
    fn open_condvar(&self, name: &str) -> Result<Condvar>;
    /// Opens or creates the [`Event`] `name`.
    ///
    /// # Errors
    /// See [`Event::get_or_create`].
    fn event(&self, name: &str) -> Result<Event>;
    /// Opens the existing [`Event`] `name`.
    ///
    /// # Errors
    /// See [`Event::open`].
    fn open_event(&self, name: &str) -> Result<Event>;
    /// Opens or creates the [`Semaphore`] `name` with `initial` permits and room for up to
    /// `max(initial, 64)` (Python's `Semaphore`; see [`Semaphore::get_or_create`] to choose).
    ///
    /// # Errors
    /// See [`Semaphore::get_or_create`].
    fn semaphore(&self, name: &str, initial: u32) -> Result<Semaphore>;
    /// Opens or creates a bounded [`Semaphore`] `name`: `value` permits, and releasing
    /// more than were acquired is an error (Python's `BoundedSemaphore`).
    ///
    /// # Errors
    /// See [`Semaphore::get_or_create`].
    fn bounded_semaphore(&self, name: &str, value: u32) -> Result<Semaphore>;
    /// Opens the existing [`Semaphore`] `name`, bounded or not.
    ///
    /// # Errors
    /// See [`Semaphore::open`].
    fn open_semaphore(&self, name: &str) -> Result<Semaphore>;
    /// Opens or creates the [`Barrier`] `name` for `parties` processes.
    ///
    /// # Errors
    /// See [`Barrier::get_or_create`].
    fn barrier(&self, name: &str, parties: u32) -> Result<Barrier>;
    /// Opens the existing [`Barrier`] `name`, for as many parties as it was created for.
    ///
    /// # Errors
    /// See [`Barrier::open`].
    fn open_barrier(&self, name: &str) -> Result<Barrier>;
    /// Opens or creates the [`Queue`] `name` with room for `capacity` elements.
    ///
    /// # Errors
    /// See [`Queue::get_or_create`].
    fn queue<T: Pod>(&self, name: &str, capacity: u64) -> Result<Queue<T>>;
    /// Opens the existing [`Queue`] `name`, whatever its capacity.
    ///
    /// # Errors
    /// See [`Queue::open`].
    fn open_queue<T: Pod>(&self, name: &str) -> Result<Queue<T>>;
    /// Opens or creates the [`ByteQueue`] `name` with room for `capacity` elements of
    /// `elem_size` bytes.
    ///
    /// # Errors
    /// See [`ByteQueue::get_or_create`].
    fn byte_queue(&self, name: &str, capacity: u64, elem_size: usize) -> Result<ByteQueue>;
    /// Opens the existing [`ByteQueue`] `name`, whatever its capacity and element size.
    ///
    /// # Errors
    /// See [`ByteQueue::open`].
    fn open_byte_queue(&self, name: &str) -> Result<ByteQueue>;
    /// Opens or creates the [`UnboundedQueue`] `name` (its first ring of
    /// [`DEFAULT_FIRST_RING`](crate::unbounded_queue::DEFAULT_FIRST_RING) slots; it grows).
    ///
    /// # Errors
    /// See [`UnboundedQueue::get_or_create`].
    fn unbounded_queue<T: Pod>(&self, name: &str) -> Result<UnboundedQueue<T>>;
    /// Opens the existing [`UnboundedQueue`] `name`.
    ///
    /// # Errors
    /// See [`UnboundedQueue::open`].
    fn open_unbounded_queue<T: Pod>(&self, name: &str) -> Result<UnboundedQueue<T>>;
    /// Opens or creates the [`List`] `name` with room for `capacity` elements.
    ///
    /// # Errors
    /// See [`List::get_or_create`].
    fn list<T: Pod>(&self, name: &str, capacity: u64) -> Result<List<T>>;
    /// Opens the existing [`List`] `name`, whatever its capacity.
    ///
    /// # Errors
    /// See [`List::open`].
    fn open_list<T: Pod>(&self, name: &str) -> Result<List<T>>;
    /// Opens or creates the [`ByteList`] `name` with room for `capacity` elements of
    /// `elem_size` bytes.
    ///
    /// # Errors
    /// See [`ByteList::get_or_create`].
    fn byte_list(&self, name: &str, capacity: u64, elem_size: usize) -> Result<ByteList>;
    /// Opens the existing [`ByteList`] `name`, whatever its capacity and element size.
    ///
    /// # Errors
    /// See [`ByteList::open`].
    fn open_byte_list(&self, name: &str) -> Result<ByteList>;
    /// Opens or creates the [`HashMap`] `name` with `capacity` slots (rounded up to a
    /// power of two) to start with; it grows past them.
    ///
    /// # Errors
    /// See [`HashMap::get_or_create`].
    fn hash_map<K: Pod, V: Pod>(&self, name: &str, capacity: u64) -> Result<HashMap<K, V>>;
    /// Opens the existing [`HashMap`] `name`, whatever its capacity.
    ///
    /// # Errors
    /// See [`HashMap::open`].
    fn open_hash_map<K: Pod, V: Pod>(&self, name: &str) -> Result<HashMap<K, V>>;
    /// Opens or creates the [`ByteMap`] `name` with `capacity` slots (rounded up to a
    /// power of two; it grows past them) for keys of up to `key_size` bytes and values of up to `value_size`.
    ///
    /// # Errors
    /// See [`ByteMap::get_or_create`].
    fn byte_map(
        &self,
        name: &str,
        capacity: u64,
        key_size: usize,
        value_size: usize,
    ) -> Result<ByteMap>;
    /// Opens the existing [`ByteMap`] `name`, whatever its capacity and sizes.
    ///
    /// # Errors
    /// See [`ByteMap::open`].
    fn open_byte_map(&self, name: &str) -> Result<ByteMap>;
    /// Opens or creates the [`HashSet`] `name` with `capacity` slots (rounded up to a
    /// power of two) to start with; it grows past them.
    ///
    /// # Errors
    /// See [`HashSet::get_or_create`].
    fn hash_set<K: Pod>(&self, name: &str, capacity: u64) -> Result<HashSet<K>>;
    /// Opens the existing [`HashSet`] `name`, whatever its capacity.
    ///
    /// # Errors
    /// See [`HashSet::open`].
    fn open_hash_set<K: Pod>(&self, name: &str) -> Result<HashSet<K>>;
    /// Opens or creates the [`ByteSet`] `name` with `capacity` slots (rounded up to a
    /// power of two) for keys of up to `key_size` bytes.
    ///
    /// # Errors
    /// See [`ByteSet::get_or_create`].
    fn byte_set(&self, name: &str, capacity: u64, key_size: usize) -> Result<ByteSet>;
    /// Opens the existing [`ByteSet`] `name`, whatever its capacity and key size.
    ///
    /// # Errors
    /// See [`ByteSet::open`].
    fn open_byte_set(&self, name: &str) -> Result<ByteSet>;
    /// The [`Namespace`] `name`: attributes stored as values named `<name>.<attribute>`
    /// (a namespace is a name prefix: it needs no creating).
    ///
    /// # Errors
    /// See [`Namespace::new`].
    fn namespace(&self, name: &str) -> Result<Namespace>;
    /// The existing [`Namespace`] `name`: one with at least one attribute.
    ///
    /// # Errors
    /// See [`Namespace::open`].
    fn open_namespace(&self, name: &str) -> Result<Namespace>;
}

#[cfg(not(loom))]
impl RegionExt for Region {
    fn value<T: Scalar>(&self, name: &str, initial: T) -> Result<Value<T>> {
        Value::get_or_create(self, name, initial)
    }
    fn open_value<T: Scalar>(&self, name: &str) -> Result<Value<T>> {
        Value::open(self, name)
    }
    fn array<T: Scalar>(&self, name: &str, initial: &[T]) -> Result<Array<T>> {
        Array::get_or_create(self, name, initial)
    }
    fn array_zeroed<T: Scalar>(&self, name: &str, len: usize) -> Result<Array<T>> {
        Array::get_or_create_zeroed(self, name, len)
    }
    fn open_array<T: Scalar>(&self, name: &str) -> Result<Array<T>> {
        Array::open(self, name)
    }
    fn sharded_counter(&self, name: &str) -> Result<ShardedCounter> {
        ShardedCounter::get_or_create(self, name)
    }
    fn open_sharded_counter(&self, name: &str) -> Result<ShardedCounter> {
        ShardedCounter::open(self, name)
    }
    fn mutex<T: Pod>(&self, name: &str, initial: T) -> Result<Mutex<T>> {
        Mutex::get_or_create(self, name, initial)
    }
    fn open_mutex<T: Pod>(&self, name: &str) -> Result<Mutex<T>> {
        Mutex::open(self, name)
    }
    fn lock(&self, name: &str) -> Result<Lock> {
        Mutex::get_or_create(self, name, ())
    }
    fn open_lock(&self, name: &str) -> Result<Lock> {
        Mutex::open(self, name)
    }
    fn rlock(&self, name: &str) -> Result<RLock> {
        RLock::get_or_create(self, name)
    }
    fn open_rlock(&self, name: &str) -> Result<RLock> {
        RLock::open(self, name)
    }
    fn condvar(&self, name: &str) -> Result<Condvar> {
        Condvar::get_or_create(self, name)
    }
    fn open_condvar(&self, name: &str) -> Result<Condvar> {
        Condvar::open(self, name)
    }
    fn event(&self, name: &str) -> Result<Event> {
        Event::get_or_create(self, name)
    }
    fn open_event(&self, name: &str) -> Result<Event> {
        Event::open(self, name)
    }
    fn semaphore(&self, name: &str, initial: u32) -> Result<Semaphore> {
        Semaphore::get_or_create(self, name, initial, initial.max(64))
    }
    fn bounded_semaphore(&self, name: &str, value: u32) -> Result<Semaphore> {
        Semaphore::get_or_create(self, name, value, value)
    }
    fn open_semaphore(&self, name: &str) -> Result<Semaphore> {
        Semaphore::open(self, name)
    }
    fn barrier(&self, name: &str, parties: u32) -> Result<Barrier> {
        Barrier::get_or_create(self, name, parties)
    }
    fn open_barrier(&self, name: &str) -> Result<Barrier> {
        Barrier::open(self, name)
    }
    fn queue<T: Pod>(&self, name: &str, capacity: u64) -> Result<Queue<T>> {
        Queue::get_or_create(self, name, capacity)
    }
    fn open_queue<T: Pod>(&self, name: &str) -> Result<Queue<T>> {
        Queue::open(self, name)
    }
    fn byte_queue(&self, name: &str, capacity: u64, elem_size: usize) -> Result<ByteQueue> {
        ByteQueue::get_or_create(self, name, capacity, elem_size)
    }
    fn open_byte_queue(&self, name: &str) -> Result<ByteQueue> {
        ByteQueue::open(self, name)
    }
    fn unbounded_queue<T: Pod>(&self, name: &str) -> Result<UnboundedQueue<T>> {
        UnboundedQueue::get_or_create(self, name, crate::unbounded_queue::DEFAULT_FIRST_RING)
    }
    fn open_unbounded_queue<T: Pod>(&self, name: &str) -> Result<UnboundedQueue<T>> {
        UnboundedQueue::open(self, name)
    }
    fn list<T: Pod>(&self, name: &str, capacity: u64) -> Result<List<T>> {
        List::get_or_create(self, name, capacity)
    }
    fn open_list<T: Pod>(&self, name: &str) -> Result<List<T>> {
        List::open(self, name)
    }
    fn byte_list(&self, name: &str, capacity: u64, elem_size: usize) -> Result<ByteList> {
        ByteList::get_or_create(self, name, capacity, elem_size)
    }
    fn open_byte_list(&self, name: &str) -> Result<ByteList> {
        ByteList::open(self, name)
    }
    fn hash_map<K: Pod, V: Pod>(&self, name: &str, capacity: u64) -> Result<HashMap<K, V>> {
        HashMap::get_or_create(self, name, capacity)
    }
    fn open_hash_map<K: Pod, V: Pod>(&self, name: &str) -> Result<HashMap<K, V>> {
        HashMap::open(self, name)
    }
    fn byte_map(
        &self,
        name: &str,
        capacity: u64,
        key_size: usize,
        value_size: usize,
    ) -> Result<ByteMap> {
        ByteMap::get_or_create(self, name, capacity, key_size, value_size)
    }
    fn open_byte_map(&self, name: &str) -> Result<ByteMap> {
        ByteMap::open(self, name)
    }
    fn hash_set<K: Pod>(&self, name: &str, capacity: u64) -> Result<HashSet<K>> {
        HashSet::get_or_create(self, name, capacity)
    }
    fn open_hash_set<K: Pod>(&self, name: &str) -> Result<HashSet<K>> {
        HashSet::open(self, name)
    }
    fn byte_set(&self, name: &str, capacity: u64, key_size: usize) -> Result<ByteSet> {
        ByteSet::get_or_create(self, name, capacity, key_size)
    }
    fn open_byte_set(&self, name: &str) -> Result<ByteSet> {
        ByteSet::open(self, name)
    }
    fn namespace(&self, name: &str) -> Result<Namespace> {
        Namespace::new(self, name)
    }
    fn open_namespace(&self, name: &str) -> Result<Namespace> {
        Namespace::open(self, name)
    }
}
