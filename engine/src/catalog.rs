//! The catalog: a fixed open-addressing table from object name to type descriptor and
//! body offset, so any process finds any object by name, in any order.
//!
//! ```text
//! entry (128 bytes, 16 words):
//!   word 0  state: | owner id: 32 bits | unused: 24 | state: 8 bits |
//!   word 1  name length in bytes
//!   word 2..10  name bytes (UTF-8, at most 64)
//!   word 10 descriptor: | key size: 16 | key code: 8 | kind: 8 | elem size: 16 | elem code: 8 | flags: 8 |
//!   word 11 capacity (elements, slots ...; meaning depends on the kind)
//!   word 12 body offset
//!   word 13 body size
//!   word 14 key type tag (0: none recorded)
//!   word 15 element type tag (0: none recorded)
//! ```
//!
//! States and transitions (each a single CAS or a Release store on word 0):
//!
//! ```text
//! EMPTY --CAS--> CLAIMED(owner) --store--> CONSTRUCTING(owner) --store--> READY
//!                   |  owner dead: CAS back to EMPTY           |  owner dead: CAS to
//!                   v                                          v  CONSTRUCTING(me), rebuild
//! ```
//!
//! - `CLAIMED`: the owner is writing name and descriptor; nobody can tell which name this
//!   entry will hold, so lookups wait here (bounded) instead of skipping it.
//! - `CONSTRUCTING`: name and descriptor are published (Release); the owner is allocating
//!   and initializing the body. Others with the same name wait for READY.
//! - `READY`: offset and size are published (Release); the entry never changes again.
//!
//! Linearization points: creation at the READY store; a lookup at its Acquire load that
//! sees READY. Entries are never removed, so a name, once placed, sits before the first
//! EMPTY entry of its probe sequence forever, and a probe that reaches an EMPTY entry has
//! proven the name absent. A CLAIMED entry whose owner died goes back to EMPTY: no one
//! probed past it meanwhile, because lookups wait at CLAIMED entries.
//!
//! A creator killed while CONSTRUCTING leaves the name and descriptor; the next process
//! that wants the name finds the owner dead, takes the entry over and builds the body
//! anew (the dead creator's block, if it had one, leaks).

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::layout::{CATALOG_ENTRY_SIZE, MAX_NAME_LEN};
use crate::liveness::{Liveness, OwnerId};
use crate::memory::Memory;
use crate::sync::{Backoff, Ordering};

const STATE_EMPTY: u64 = 0;
const STATE_CLAIMED: u64 = 1;
const STATE_CONSTRUCTING: u64 = 2;
const STATE_READY: u64 = 3;

const WORD_STATE: u64 = 0;
const WORD_NAME_LEN: u64 = 8;
const WORD_NAME: u64 = 16;
const WORD_DESCRIPTOR: u64 = 80;
const WORD_CAPACITY: u64 = 88;
const WORD_OFFSET: u64 = 96;
const WORD_SIZE: u64 = 104;
const WORD_KEY_TAG: u64 = 112;
const WORD_ELEM_TAG: u64 = 120;

const _: () = assert!(WORD_NAME + MAX_NAME_LEN as u64 == WORD_DESCRIPTOR);
const _: () = assert!(WORD_ELEM_TAG + 8 <= CATALOG_ENTRY_SIZE);

fn pack_state(state: u64, owner: Option<OwnerId>) -> u64 {
    state | (u64::from(owner.map_or(0, OwnerId::bits)) << 32)
}

fn state_of(word: u64) -> u64 {
    word & 0xff
}

fn owner_of(word: u64) -> Option<OwnerId> {
    OwnerId::from_bits((word >> 32) as u32)
}

/// Marks an entry "constructing by nobody" if dropped, i.e. if the constructor unwinds.
struct AbandonOnUnwind<'m>(&'m crate::sync::AtomicU64);

impl Drop for AbandonOnUnwind<'_> {
    fn drop(&mut self) {
        // Release: keeps name and descriptor published to whoever takes the entry over.
        self.0
            .store(pack_state(STATE_CONSTRUCTING, None), Ordering::Release);
    }
}

/// What kind of object a catalog entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A single atomic scalar (`Value<T>`).
    Value = 1,
    /// A fixed-length array of atomic scalars (`Array<T>`).
    Array = 2,
    /// A counter with one cell per participant (`ShardedCounter`).
    ShardedCounter = 3,
    /// An open-addressing hash map.
    HashMap = 4,
    /// An open-addressing hash set.
    HashSet = 5,
    /// A bounded queue.
    Queue = 6,
    /// An append-only list.
    List = 7,
    /// A mutex.
    Mutex = 8,
    /// A condition variable.
    Condvar = 9,
    /// An event.
    Event = 10,
    /// A semaphore.
    Semaphore = 11,
    /// A barrier.
    Barrier = 12,
    /// An unbounded queue (a chain of rings).
    UnboundedQueue = 13,
}

impl ObjectKind {
    /// The kind stored as `code`, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        use ObjectKind::{
            Array, Barrier, Condvar, Event, HashMap, HashSet, List, Mutex, Queue, Semaphore,
            ShardedCounter, UnboundedQueue, Value,
        };
        Some(match code {
            1 => Value,
            2 => Array,
            3 => ShardedCounter,
            4 => HashMap,
            5 => HashSet,
            6 => Queue,
            7 => List,
            8 => Mutex,
            9 => Condvar,
            10 => Event,
            11 => Semaphore,
            12 => Barrier,
            13 => UnboundedQueue,
            _ => return None,
        })
    }
}

/// The type code of an element or key known by its size and tag alone (a user's `Pod`
/// type, or bytes): not one of Python's scalar typecodes.
pub const USER_TYPE_CODE: u8 = b'x';

/// The stable, cross-process identity of an object's type: what `TypeId` cannot give.
///
/// Keys and elements are each identified by a code (a Python typecode for scalars,
/// [`USER_TYPE_CODE`] otherwise), a size, and a tag: a fingerprint of a user type's name
/// and layout, so a `HashMap<u64, Point>` does not open as a `HashMap<u64, Rect>` of the
/// same size. A key or element with code [`USER_TYPE_CODE`] and tag 0 is *untyped* (byte
/// views, Python's encoded objects, objects of regions made before tags): it matches any
/// type of its size, in either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TypeDescriptor {
    /// Kind of object.
    pub kind: ObjectKind,
    /// Element type code (Python's array typecodes: `b'i'`, `b'd'`, ...; 0 for none).
    pub elem_code: u8,
    /// Element size in bytes.
    pub elem_size: u16,
    /// Element type tag (0: none recorded).
    pub elem_tag: u64,
    /// Key type code for maps and sets (0 for none).
    pub key_code: u8,
    /// Key size in bytes (0 for none).
    pub key_size: u16,
    /// Key type tag (0: none recorded).
    pub key_tag: u64,
    /// Elements, slots or cells; checked by each structure as it needs.
    pub capacity: u64,
}

impl TypeDescriptor {
    /// A descriptor without a key type and without tags.
    pub fn new(kind: ObjectKind, elem_code: u8, elem_size: u16, capacity: u64) -> Self {
        Self {
            kind,
            elem_code,
            elem_size,
            elem_tag: 0,
            key_code: 0,
            key_size: 0,
            key_tag: 0,
            capacity,
        }
    }

    fn pack(&self) -> u64 {
        u64::from(self.elem_code) << 8
            | u64::from(self.elem_size) << 16
            | u64::from(self.kind as u8) << 32
            | u64::from(self.key_code) << 40
            | u64::from(self.key_size) << 48
    }

    fn unpack(word: u64, capacity: u64, (key_tag, elem_tag): (u64, u64)) -> Result<Self> {
        let kind_code = (word >> 32) as u8;
        let kind = ObjectKind::from_code(kind_code).ok_or_else(|| {
            Error::corrupt(
                "catalog descriptor",
                format!("unknown object kind {kind_code}"),
            )
        })?;
        Ok(Self {
            kind,
            elem_code: (word >> 8) as u8,
            elem_size: (word >> 16) as u16,
            elem_tag,
            key_code: (word >> 40) as u8,
            key_size: (word >> 48) as u16,
            key_tag,
            capacity,
        })
    }

    /// Whether `other` has the same kind and element and key types (capacity aside); an
    /// untyped key or element matches any of its size.
    ///
    /// ```
    /// # use shmarena_engine as shmarena;
    /// use shmarena::{ObjectKind, TypeDescriptor, USER_TYPE_CODE};
    /// let bytes = TypeDescriptor::new(ObjectKind::Queue, USER_TYPE_CODE, 16, 8);
    /// let point = TypeDescriptor { elem_tag: 0x5eed, ..bytes };
    /// let rect = TypeDescriptor { elem_tag: 0xbeef, ..bytes };
    /// assert!(bytes.same_type(&point) && point.same_type(&bytes));
    /// assert!(!point.same_type(&rect));
    /// ```
    pub fn same_type(&self, other: &Self) -> bool {
        fn same(a: (u8, u16, u64), b: (u8, u16, u64)) -> bool {
            let untyped = |(code, _, tag): (u8, u16, u64)| code == USER_TYPE_CODE && tag == 0;
            a.1 == b.1 && (a == b || untyped(a) || untyped(b))
        }
        self.kind == other.kind
            && same(
                (self.elem_code, self.elem_size, self.elem_tag),
                (other.elem_code, other.elem_size, other.elem_tag),
            )
            && same(
                (self.key_code, self.key_size, self.key_tag),
                (other.key_code, other.key_size, other.key_tag),
            )
    }
}

/// The Rust scalar stored under Python typecode `code` with `size` bytes, if any.
fn scalar_name(code: u8, size: u16) -> Option<&'static str> {
    Some(match (code, size) {
        (b'b', 1) => "i8",
        (b'B', 1) => "u8",
        (b'h', 2) => "i16",
        (b'H', 2) => "u16",
        (b'i', 4) => "i32",
        (b'I', 4) => "u32",
        (b'q', 8) => "i64",
        (b'Q', 8) => "u64",
        (b'f', 4) => "f32",
        (b'd', 8) => "f64",
        (b'?', 1) => "bool",
        (b'u', 4) => "char",
        _ => return None,
    })
}

/// One key or element type, as a Rust user writes it: the scalar's name where the code is
/// a scalar's (`u64`), otherwise its size and tag (`16-byte type`, `16-byte type #5eed`:
/// the catalog records a user type by its size and a fingerprint, not its name).
struct TypeName {
    code: u8,
    size: u16,
    tag: u64,
}

impl std::fmt::Display for TypeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match scalar_name(self.code, self.size) {
            Some(name) => f.write_str(name),
            None if self.tag == 0 => write!(f, "{}-byte type", self.size),
            None => write!(f, "{}-byte type #{:08x}", self.size, self.tag >> 32),
        }
    }
}

/// ` (Python typecode 'i')` after a scalar's name, for Python users; nothing otherwise.
struct PythonCode {
    code: u8,
    size: u16,
}

impl std::fmt::Display for PythonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // 'bool' and 'char' are Rust-only scalars: Python has no typecode for them.
        if scalar_name(self.code, self.size).is_some() && !matches!(self.code, b'?' | b'u') {
            write!(f, " (Python typecode '{}')", char::from(self.code))?;
        }
        Ok(())
    }
}

/// Rust types, as a Rust user writes them: `Value<i32> (Python typecode 'i')`,
/// `Array<f64> of length 10 (Python typecode 'd')`, `HashMap<u64, 16-byte type> with 64
/// slots`, `Mutex<8-byte type, align 8>`. Where the catalog records a user (`Pod`) type by
/// size only, the size is spelled out (and, for a `Mutex`, the alignment). The Python
/// typecode follows where there is one, so Python users recognise theirs.
///
/// ```
/// # use shmarena_engine as shmarena;
/// use shmarena::{ObjectKind, TypeDescriptor};
/// let value = TypeDescriptor::new(ObjectKind::Value, b'i', 4, 1);
/// assert_eq!(value.to_string(), "Value<i32> (Python typecode 'i')");
/// let mutex = TypeDescriptor::new(ObjectKind::Mutex, b'x', 8, 24);
/// assert_eq!(mutex.to_string(), "Mutex<24-byte type, align 8>");
/// ```
impl std::fmt::Display for TypeDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write(f, true)
    }
}

impl TypeDescriptor {
    /// The type without its capacity (`Array<f64>`, `Semaphore`), for an open that takes
    /// any capacity; the capacity of a `Mutex` is its data's size, which stays.
    ///
    /// ```
    /// # use shmarena_engine as shmarena;
    /// use shmarena::{ObjectKind, TypeDescriptor};
    /// let array = TypeDescriptor::new(ObjectKind::Array, b'd', 8, 0);
    /// assert_eq!(array.type_name().to_string(), "Array<f64> (Python typecode 'd')");
    /// ```
    pub fn type_name(&self) -> impl std::fmt::Display + '_ {
        struct TypeOnly<'d>(&'d TypeDescriptor);
        impl std::fmt::Display for TypeOnly<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.write(f, false)
            }
        }
        TypeOnly(self)
    }

    fn write(&self, f: &mut std::fmt::Formatter<'_>, with_capacity: bool) -> std::fmt::Result {
        let elem = TypeName {
            code: self.elem_code,
            size: self.elem_size,
            tag: self.elem_tag,
        };
        let python = PythonCode {
            code: self.elem_code,
            size: self.elem_size,
        };
        let key = TypeName {
            code: self.key_code,
            size: self.key_size,
            tag: self.key_tag,
        };
        let n = self.capacity;
        let kind = self.kind;
        match (kind, self.elem_code) {
            (ObjectKind::Value, _) => write!(f, "Value<{elem}>")?,
            (ObjectKind::Array, _) => write!(f, "Array<{elem}>")?,
            (ObjectKind::HashMap, _) => write!(f, "HashMap<{key}, {elem}>")?,
            (ObjectKind::HashSet, _) => write!(f, "HashSet<{key}>")?,
            (ObjectKind::Queue, _) => write!(f, "Queue<{elem}>")?,
            (ObjectKind::UnboundedQueue, _) => write!(f, "UnboundedQueue<{elem}>")?,
            (ObjectKind::List, _) => write!(f, "List<{elem}>")?,
            (ObjectKind::Mutex, b'r') => f.write_str("RLock")?,
            (ObjectKind::Mutex, _) if n == 0 => f.write_str("Lock (a Mutex<()>)")?,
            // A mutex records its data's alignment as the element size, its size as capacity.
            (ObjectKind::Mutex, _) if self.elem_tag == 0 => {
                write!(f, "Mutex<{n}-byte type, align {}>", self.elem_size)?;
            }
            (ObjectKind::Mutex, _) => write!(
                f,
                "Mutex<{n}-byte type #{:08x}, align {}>",
                self.elem_tag >> 32,
                self.elem_size
            )?,
            _ => write!(f, "{kind:?}")?,
        }
        if with_capacity {
            match kind {
                ObjectKind::Array => write!(f, " of length {n}")?,
                ObjectKind::ShardedCounter => write!(f, " with {n} shards")?,
                ObjectKind::HashMap | ObjectKind::HashSet => write!(f, " with {n} slots")?,
                ObjectKind::Queue => write!(f, " of capacity {n}")?,
                // It grows past it.
                ObjectKind::UnboundedQueue => write!(f, " with a first ring of {n}")?,
                // A list grows past it.
                ObjectKind::List => write!(f, " of initial capacity {n}")?,
                ObjectKind::Semaphore => write!(f, " of {n} permits")?,
                ObjectKind::Barrier => write!(f, " for {n} parties")?,
                _ => {}
            }
        }
        if matches!(kind, ObjectKind::Value | ObjectKind::Array) {
            write!(f, "{python}")?;
        }
        Ok(())
    }
}

/// Checks an object name: 1 to 64 bytes, no NUL.
///
/// # Errors
/// [`Error::InvalidName`] saying what is wrong.
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "names must not be empty"
    } else if name.len() > MAX_NAME_LEN {
        "names are at most 64 bytes of UTF-8"
    } else if name.contains('\0') {
        "names must not contain NUL"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.chars().take(80).collect(),
        reason,
    })
}

/// A published catalog entry, as seen by a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryInfo {
    /// Entry index in the catalog.
    pub index: u64,
    /// Object name.
    pub name: String,
    /// Type descriptor.
    pub descriptor: TypeDescriptor,
    /// Body offset in the region (validated by the structure before use).
    pub offset: u64,
    /// Body size in bytes.
    pub size: u64,
    /// Whether the object is fully built; `false` while a creator constructs it.
    pub ready: bool,
    /// The constructing process, while not ready.
    pub owner: Option<OwnerId>,
}

/// Whether `get_or_create` built the object or found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This call constructed the body.
    Created,
    /// The object was there (or another process built it meanwhile).
    Opened,
}

/// The catalog over some [`Memory`].
#[derive(Debug)]
pub struct Catalog<'m, M: Memory> {
    mem: &'m M,
    offset: u64,
    capacity: u64,
}

impl<'m, M: Memory> Catalog<'m, M> {
    /// The catalog of `capacity` entries at byte `offset` of `mem`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the table does not fit in `mem`.
    pub fn new(mem: &'m M, offset: u64, capacity: u64) -> Result<Self> {
        let fits = capacity > 0
            && offset % 8 == 0
            && capacity
                .checked_mul(CATALOG_ENTRY_SIZE)
                .and_then(|len| len.checked_add(offset))
                .is_some_and(|end| end <= mem.len());
        if !fits {
            return Err(Error::corrupt(
                "catalog",
                format!("{capacity} entries at {offset} do not fit"),
            ));
        }
        Ok(Self {
            mem,
            offset,
            capacity,
        })
    }

    /// Number of entries.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn word(&self, index: u64, field: u64) -> Result<&'m crate::sync::AtomicU64> {
        self.mem
            .word(self.offset + index * CATALOG_ENTRY_SIZE + field)
    }

    /// Reads the name of entry `index`. Call after an Acquire load of the state showed
    /// CONSTRUCTING or READY (which publishes the name).
    fn read_name(&self, index: u64) -> Result<Vec<u8>> {
        // Relaxed: ordered by the caller's Acquire load of the state word.
        let len = self.word(index, WORD_NAME_LEN)?.load(Ordering::Relaxed);
        if len == 0 || len > MAX_NAME_LEN as u64 {
            return Err(Error::corrupt(
                "catalog name length",
                format!("entry {index}: {len}"),
            ));
        }
        let mut bytes = Vec::with_capacity(MAX_NAME_LEN);
        // Only the words the name reaches into (the rest is padding).
        for w in 0..len.div_ceil(8) {
            // Relaxed: as above.
            let word = self.word(index, WORD_NAME + 8 * w)?.load(Ordering::Relaxed);
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.truncate(len as usize);
        Ok(bytes)
    }

    fn write_name(&self, index: u64, name: &str) -> Result<()> {
        let mut padded = [0u8; MAX_NAME_LEN];
        padded[..name.len()].copy_from_slice(name.as_bytes());
        // Relaxed: published by the Release store of CONSTRUCTING.
        self.word(index, WORD_NAME_LEN)?
            .store(name.len() as u64, Ordering::Relaxed);
        for (w, chunk) in padded.chunks_exact(8).enumerate() {
            let word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
            // Relaxed: as above.
            self.word(index, WORD_NAME + 8 * w as u64)?
                .store(word, Ordering::Relaxed);
        }
        Ok(())
    }

    fn read_descriptor(&self, index: u64) -> Result<TypeDescriptor> {
        // Relaxed: ordered by the caller's Acquire load of the state word.
        let word = self.word(index, WORD_DESCRIPTOR)?.load(Ordering::Relaxed);
        let capacity = self.word(index, WORD_CAPACITY)?.load(Ordering::Relaxed);
        let key_tag = self.word(index, WORD_KEY_TAG)?.load(Ordering::Relaxed);
        let elem_tag = self.word(index, WORD_ELEM_TAG)?.load(Ordering::Relaxed);
        TypeDescriptor::unpack(word, capacity, (key_tag, elem_tag))
    }

    fn name_hash(name: &str) -> u64 {
        // A fixed function of the name: every process and every build probes alike.
        xxhash_rust::xxh3::xxh3_64(name.as_bytes())
    }

    /// Finds `name` or creates it, exactly once across all processes.
    ///
    /// `construct` allocates and initializes the body and returns `(offset, size)`; it
    /// runs in at most one live process per entry (again in a survivor if the first
    /// constructor died). Waits for another live constructor at most `timeout`.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::TypeMismatch`] when the name holds another type,
    /// [`Error::CatalogFull`], [`Error::Timeout`] when a live process keeps the entry
    /// under construction, errors of `construct`, and [`Error::Corrupt`].
    pub fn get_or_create(
        &self,
        name: &str,
        descriptor: &TypeDescriptor,
        liveness: &impl Liveness,
        timeout: Duration,
        construct: &mut dyn FnMut() -> Result<(u64, u64)>,
    ) -> Result<(EntryInfo, Outcome)> {
        validate_name(name)?;
        let me = liveness.me();
        let start = Self::name_hash(name) % self.capacity;
        let deadline = Instant::now() + timeout;
        for probe in 0..self.capacity {
            let index = (start + probe) % self.capacity;
            let state_word = self.word(index, WORD_STATE)?;
            let backoff = Backoff::new();
            loop {
                // Acquire: pairs with the Release stores of CONSTRUCTING (name, descriptor)
                // and READY (offset, size).
                let word = state_word.load(Ordering::Acquire);
                match state_of(word) {
                    STATE_EMPTY => {
                        // Acquire on success: nothing to see, but keeps the entry's later
                        // writes after the claim. Relaxed on failure: we reload.
                        let claimed = pack_state(STATE_CLAIMED, Some(me));
                        if state_word
                            .compare_exchange(word, claimed, Ordering::Acquire, Ordering::Relaxed)
                            .is_ok()
                        {
                            fail::fail_point!("catalog::after_claim");
                            self.write_name(index, name)?;
                            // Relaxed: published by the Release store just below.
                            self.word(index, WORD_DESCRIPTOR)?
                                .store(descriptor.pack(), Ordering::Relaxed);
                            self.word(index, WORD_CAPACITY)?
                                .store(descriptor.capacity, Ordering::Relaxed);
                            self.word(index, WORD_KEY_TAG)?
                                .store(descriptor.key_tag, Ordering::Relaxed);
                            self.word(index, WORD_ELEM_TAG)?
                                .store(descriptor.elem_tag, Ordering::Relaxed);
                            // Release: publishes name and descriptor to lookups.
                            state_word
                                .store(pack_state(STATE_CONSTRUCTING, Some(me)), Ordering::Release);
                            return self
                                .construct_and_publish(index, name, descriptor, me, construct);
                        }
                        // Lost the race for this entry: look at what the winner wrote.
                    }
                    STATE_CLAIMED => {
                        let owner = owner_of(word);
                        if owner.is_none_or(|o| o != me && !liveness.is_alive(o)) {
                            // The claimer died before naming the entry: give it back.
                            // Relaxed: the entry holds nothing anyone will read.
                            let _ = state_word.compare_exchange(
                                word,
                                STATE_EMPTY,
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            );
                            continue;
                        }
                        Self::wait(&backoff, deadline, timeout, name, owner)?;
                    }
                    STATE_CONSTRUCTING | STATE_READY => {
                        if self.read_name(index)? != name.as_bytes() {
                            break; // another name: probe on
                        }
                        let found = self.read_descriptor(index)?;
                        if !found.same_type(descriptor) {
                            return Err(Error::TypeMismatch {
                                name: name.to_owned(),
                                expected: descriptor.to_string(),
                                found: found.to_string(),
                            });
                        }
                        if state_of(word) == STATE_READY {
                            return Ok((self.entry_info(index, word)?, Outcome::Opened));
                        }
                        let owner = owner_of(word);
                        if owner.is_none_or(|o| o != me && !liveness.is_alive(o)) {
                            // The constructor died: take the entry over and build it again.
                            // Acquire: we will build on the descriptor the dead owner wrote.
                            let mine = pack_state(STATE_CONSTRUCTING, Some(me));
                            if state_word
                                .compare_exchange(word, mine, Ordering::Acquire, Ordering::Relaxed)
                                .is_ok()
                            {
                                return self
                                    .construct_and_publish(index, name, &found, me, construct);
                            }
                            continue; // someone else took it over first
                        }
                        Self::wait(&backoff, deadline, timeout, name, owner)?;
                    }
                    other => {
                        return Err(Error::corrupt(
                            "catalog state",
                            format!("entry {index}: state {other}"),
                        ));
                    }
                }
            }
        }
        Err(Error::CatalogFull {
            capacity: self.capacity,
        })
    }

    fn wait(
        backoff: &Backoff,
        deadline: Instant,
        timeout: Duration,
        name: &str,
        owner: Option<OwnerId>,
    ) -> Result<()> {
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("object {name:?} to be constructed"),
                owner: owner.map_or(0, OwnerId::bits),
                waited_ms: timeout.as_millis() as u64,
            });
        }
        if backoff.is_completed() {
            #[cfg(not(loom))]
            std::thread::sleep(Duration::from_micros(200));
            #[cfg(loom)]
            loom::thread::yield_now();
        } else {
            backoff.snooze();
        }
        Ok(())
    }

    fn construct_and_publish(
        &self,
        index: u64,
        name: &str,
        descriptor: &TypeDescriptor,
        me: OwnerId,
        construct: &mut dyn FnMut() -> Result<(u64, u64)>,
    ) -> Result<(EntryInfo, Outcome)> {
        // If `construct` unwinds, leave the entry constructing by nobody (as for an error)
        // so the next caller rebuilds it instead of waiting for us.
        let abandon = AbandonOnUnwind(self.word(index, WORD_STATE)?);
        let constructed = construct();
        std::mem::forget(abandon);
        let (offset, size) = match constructed {
            Ok(body) => body,
            Err(error) => {
                // Leave the entry for a retry: constructing by nobody, which any process
                // (this one too) treats as a dead constructor and takes over.
                // Release: keeps name and descriptor published.
                self.word(index, WORD_STATE)?
                    .store(pack_state(STATE_CONSTRUCTING, None), Ordering::Release);
                return Err(error);
            }
        };
        fail::fail_point!("catalog::before_ready");
        // Relaxed: published by the Release store of READY.
        self.word(index, WORD_OFFSET)?
            .store(offset, Ordering::Relaxed);
        self.word(index, WORD_SIZE)?.store(size, Ordering::Relaxed);
        let ready = pack_state(STATE_READY, Some(me));
        // Release: publishes the body (initialized by `construct`) with offset and size.
        self.word(index, WORD_STATE)?
            .store(ready, Ordering::Release);
        Ok((
            EntryInfo {
                index,
                name: name.to_owned(),
                descriptor: *descriptor,
                offset,
                size,
                ready: true,
                owner: None,
            },
            Outcome::Created,
        ))
    }

    fn entry_info(&self, index: u64, state: u64) -> Result<EntryInfo> {
        let name = String::from_utf8(self.read_name(index)?)
            .map_err(|_| Error::corrupt("catalog name", format!("entry {index} is not UTF-8")))?;
        let ready = state_of(state) == STATE_READY;
        Ok(EntryInfo {
            index,
            name,
            descriptor: self.read_descriptor(index)?,
            // Relaxed: ordered by the caller's Acquire load of the state word.
            offset: self.word(index, WORD_OFFSET)?.load(Ordering::Relaxed),
            size: self.word(index, WORD_SIZE)?.load(Ordering::Relaxed),
            ready,
            owner: if ready { None } else { owner_of(state) },
        })
    }

    /// Looks `name` up without creating it; `None` when absent or not yet ready.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::Corrupt`].
    pub fn find(&self, name: &str) -> Result<Option<EntryInfo>> {
        validate_name(name)?;
        let start = Self::name_hash(name) % self.capacity;
        for probe in 0..self.capacity {
            let index = (start + probe) % self.capacity;
            // Acquire: as in get_or_create.
            let word = self.word(index, WORD_STATE)?.load(Ordering::Acquire);
            match state_of(word) {
                STATE_EMPTY => return Ok(None),
                STATE_CLAIMED => {} // unnamed yet; the name may still be further on
                STATE_CONSTRUCTING | STATE_READY => {
                    if self.read_name(index)? == name.as_bytes() {
                        return if state_of(word) == STATE_READY {
                            self.entry_info(index, word).map(Some)
                        } else {
                            Ok(None)
                        };
                    }
                }
                other => {
                    return Err(Error::corrupt(
                        "catalog state",
                        format!("entry {index}: state {other}"),
                    ))
                }
            }
        }
        Ok(None)
    }

    /// Rewrites the creators of entries under construction by an owner of participant
    /// slot `slot` to [`OwnerId::DEAD`] (a sweep of the retired slot: all its owners are
    /// dead, and such entries are taken over as before).
    ///
    /// # Errors
    /// [`Error::Contended`] if an entry keeps changing (a hostile region).
    pub fn retire_owner_slot(&self, slot: u32) -> Result<()> {
        for index in 0..self.capacity {
            crate::liveness::retire_owner_field(self.word(index, WORD_STATE)?, 32, slot, |word| {
                matches!(state_of(word), STATE_CLAIMED | STATE_CONSTRUCTING)
            })?;
        }
        Ok(())
    }

    /// Every named entry (ready or under construction), in table order.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for entries that cannot be decoded.
    pub fn entries(&self) -> Result<Vec<EntryInfo>> {
        let mut entries = Vec::new();
        for index in 0..self.capacity {
            // Acquire: as in get_or_create.
            let word = self.word(index, WORD_STATE)?.load(Ordering::Acquire);
            match state_of(word) {
                STATE_EMPTY | STATE_CLAIMED => {}
                STATE_CONSTRUCTING | STATE_READY => entries.push(self.entry_info(index, word)?),
                other => {
                    return Err(Error::corrupt(
                        "catalog state",
                        format!("entry {index}: state {other}"),
                    ))
                }
            }
        }
        Ok(entries)
    }
}
