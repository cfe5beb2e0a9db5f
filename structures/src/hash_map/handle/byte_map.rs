//! `ByteMap`: the map handle for keys and values sized at run time.

use super::{
    check_fits, check_sizes, create_map, open_map, read_bytes_into, with_buffer,
    with_bytes_as_words, ElementType, Error, GrowingMap, Lookups, MappedSlots, MappedTables,
    Object, ObjectKind, Region, Result, TableGuess, Updated,
};

/// A named hash map whose keys and values are byte strings of up to `key_size` and
/// `value_size` bytes, sizes chosen when it is created (for bindings whose types are
/// known only at run time, such as the Python package). The same lock-free table as
/// [`HashMap`](crate::hash_map::HashMap); a `HashMap<K, V>` and a `ByteMap` with `size_of::<K>()` and
/// `size_of::<V>()` open the same object.
///
/// Shorter keys and values are padded with zero bytes, so `b"a"` and `b"a\0"` are one
/// key: an encoding that needs to tell them apart stores its own length. Reads return
/// all `key_size` / `value_size` bytes.
///
/// ```
/// use shmarena::{ByteMap, Region};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-bytemap-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let map = ByteMap::get_or_create(&region, "config", 64, 16, 4)?;
/// map.insert(b"threads", &8u32.to_le_bytes())?;
/// assert_eq!(map.get(b"threads")?, Some(8u32.to_le_bytes().to_vec()));
/// assert!(map.insert(&[0; 17], b"").is_err()); // key over 16 bytes
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
#[derive(Clone)]
pub struct ByteMap {
    slots: MappedSlots,
    guess: TableGuess,
    seed: u64,
    key_size: usize,
    value_size: usize,
    object: Object,
}

impl std::fmt::Debug for ByteMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteMap")
            .field("name", &self.object.info().name)
            .field("key_size", &self.key_size)
            .field("value_size", &self.value_size)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Lookups for ByteMap {
    type Shape = crate::hash_map::Dynamic;

    fn map(&self) -> GrowingMap<MappedTables<'_>> {
        GrowingMap::new(
            MappedTables::new(self.object.region(), &self.slots, Some(&self.guess)),
            crate::words::word_count_of(self.key_size as u64) as usize,
            crate::words::word_count_of(self.value_size as u64) as usize,
            self.seed,
        )
    }

    #[inline]
    fn liveness(&self) -> &Region {
        self.object.region()
    }
}

impl ByteMap {
    /// Opens the map `name`, creating it empty with `capacity` slots (rounded up to a
    /// power of two) for keys of up to `key_size` bytes and values of up to
    /// `value_size`.
    ///
    /// # Errors
    /// As [`HashMap::get_or_create`](crate::hash_map::HashMap::get_or_create).
    pub fn get_or_create(
        region: &Region,
        name: &str,
        capacity: u64,
        key_size: usize,
        value_size: usize,
    ) -> Result<Self> {
        check_sizes(key_size, value_size)?;
        let types = (ElementType::bytes(key_size), ElementType::bytes(value_size));
        create_map(region, name, capacity, types, ObjectKind::HashMap)
            .map(|parts| Self::from_parts(parts, (key_size, value_size)))
    }

    /// Opens the existing map `name`, whatever its capacity and sizes.
    ///
    /// # Errors
    /// As [`HashMap::open`](crate::hash_map::HashMap::open).
    pub fn open(region: &Region, name: &str) -> Result<Self> {
        Self::open_kind(region, name, ObjectKind::HashMap)
    }

    pub(super) fn open_kind(region: &Region, name: &str, kind: ObjectKind) -> Result<Self> {
        let info = region
            .find_object(name)?
            .ok_or_else(|| Error::ObjectNotFound(name.to_owned()))?;
        let sizes = (
            usize::from(info.descriptor.key_size),
            usize::from(info.descriptor.elem_size),
        );
        let types = (ElementType::bytes(sizes.0), ElementType::bytes(sizes.1));
        open_map(region, name, types, kind).map(|parts| Self::from_parts(parts, sizes))
    }

    pub(super) fn from_parts(
        (object, slots): (Object, MappedSlots),
        (key_size, value_size): (usize, usize),
    ) -> Self {
        Self {
            slots,
            guess: TableGuess::default(),
            seed: object.region().hash_seed(),
            key_size,
            value_size,
            object,
        }
    }

    /// Runs `f` on the words of `bytes` (zero-padded to `size` bytes' worth), built in
    /// place (on the stack for up to 512 bytes); an error for `bytes` over `size`.
    #[inline]
    fn with_words<R>(
        bytes: &[u8],
        size: usize,
        what: &str,
        f: impl FnOnce(&[u64]) -> Result<R>,
    ) -> Result<R> {
        check_fits(bytes, size, what, "map")?;
        let count = crate::words::word_count_of(size as u64) as usize;
        with_bytes_as_words(bytes, count, f)
    }

    /// Largest key, in bytes.
    pub fn key_size(&self) -> usize {
        self.key_size
    }

    /// Largest value, in bytes.
    pub fn value_size(&self) -> usize {
        self.value_size
    }

    /// The value of `key`. Never waits.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an oversized key; as [`HashMap::get`](crate::hash_map::HashMap::get).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(key, <[u8]>::to_vec)
    }

    /// The value of `key` lent to `f` (all `value_size` bytes) instead of copied into
    /// a `Vec`: no allocation for values of up to 512 bytes. Never waits.
    ///
    /// # Errors
    /// As [`Self::get`].
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let value_words = crate::words::word_count_of(self.value_size as u64) as usize;
        Self::with_words(key, self.key_size, "a key", |key| {
            with_buffer(value_words, |value| {
                let found = self.lookup(key, value)?;
                Ok(found.then(|| f(&bytemuck::cast_slice::<u64, u8>(value)[..self.value_size])))
            })
        })
    }

    /// Whether `key` is present. Never waits.
    ///
    /// # Errors
    /// As [`Self::get`].
    pub fn contains_key(&self, key: &[u8]) -> Result<bool> {
        Self::with_words(key, self.key_size, "a key", |key| self.lookup_contains(key))
    }

    /// Inserts or replaces; returns the value replaced.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an oversized key or value;
    /// [`Error::OutOfMemory`].
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        self.insert_with(key, value, true)
    }

    /// Inserts only if `key` is absent: `None` when inserted, else the value present.
    ///
    /// # Errors
    /// As [`Self::insert`].
    pub fn try_insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        self.insert_with(key, value, false)
    }

    fn insert_with(&self, key: &[u8], value: &[u8], replace: bool) -> Result<Option<Vec<u8>>> {
        let region = self.object.region();
        let value_words = crate::words::word_count_of(self.value_size as u64) as usize;
        Self::with_words(key, self.key_size, "a key", |key| {
            Self::with_words(value, self.value_size, "a value", |value| {
                with_buffer(value_words, |old| {
                    let had = self.map().insert(key, value, replace, old, region)?;
                    Ok(had
                        .then(|| bytemuck::cast_slice::<u64, u8>(old)[..self.value_size].to_vec()))
                })
            })
        })
    }

    /// Removes `key`; returns its value.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an oversized key; [`Error::Contended`].
    pub fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let value_words = crate::words::word_count_of(self.value_size as u64) as usize;
        Self::with_words(key, self.key_size, "a key", |key| {
            with_buffer(value_words, |old| {
                let had = self.map().remove(key, old, self.object.region())?;
                Ok(had.then(|| bytemuck::cast_slice::<u64, u8>(old)[..self.value_size].to_vec()))
            })
        })
    }

    /// Offers the value of `key` to `f(current, new)` until what `f` wrote into `new`
    /// (`value_size` zero bytes to start with) is stored, or `f` returns false (`f`
    /// may run several times): `Done`, `Declined`, or `Absent` when the key is not in
    /// the map. [`Self::fetch_update`] without its allocations.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an oversized key; [`Error::Contended`].
    pub fn update_with(
        &self,
        key: &[u8],
        mut f: impl FnMut(&[u8], &mut [u8]) -> bool,
    ) -> Result<Updated> {
        let size = self.value_size;
        Self::with_words(key, self.key_size, "a key", |key| {
            // No copy of the value seen last: `f` sees it.
            self.map().update(
                key,
                &mut [],
                self.object.region(),
                |seen: &[u64], out: &mut [u64]| {
                    out.fill(0);
                    f(
                        &bytemuck::cast_slice::<u64, u8>(seen)[..size],
                        &mut bytemuck::cast_slice_mut::<u64, u8>(out)[..size],
                    )
                },
            )
        })
    }

    /// Applies `f` to the value of `key` until its result is stored (`f` may run
    /// several times). `Ok(Ok(previous))` when stored; `Ok(Err(Some(value)))` when `f`
    /// returned `None`; `Ok(Err(None))` when the key is absent.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an oversized key, or a value from `f` over
    /// `value_size` (nothing is stored); [`Error::Contended`].
    pub fn fetch_update(
        &self,
        key: &[u8],
        mut f: impl FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<std::result::Result<Vec<u8>, Option<Vec<u8>>>> {
        let mut oversized = None;
        let mut previous = Vec::new();
        let outcome = self.update_with(key, |current, out| {
            previous.clear();
            previous.extend_from_slice(current);
            let Some(new) = f(current) else {
                return false;
            };
            if new.len() > out.len() {
                oversized = Some(new.len());
                return false;
            }
            out[..new.len()].copy_from_slice(&new);
            true
        })?;
        if let Some(len) = oversized {
            return Err(Error::InvalidArgument(format!(
                "a value of {len} bytes does not fit this map's {}",
                self.value_size
            )));
        }
        Ok(match outcome {
            Updated::Done => Ok(previous),
            Updated::Declined => Err(Some(previous)),
            Updated::Absent => Err(None),
        })
    }

    /// Entries (see [`HashMap::len`](crate::hash_map::HashMap::len)).
    pub fn len(&self) -> usize {
        self.map().len() as usize
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of slots of the newest table: how many entries fit before the map grows
    /// again.
    pub fn capacity(&self) -> usize {
        self.map().capacity() as usize
    }

    /// Iterates over the entries by slot (weakly consistent, see [`HashMap::iter`](crate::hash_map::HashMap::iter)).
    pub fn iter(&self) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + '_ {
        let map = self.map();
        let key_words = crate::words::word_count_of(self.key_size as u64) as usize;
        let value_words = crate::words::word_count_of(self.value_size as u64) as usize;
        // A walk that could not start (no pin) reports that once.
        let mut walk = map.walk().map_err(Some);
        std::iter::from_fn(move || {
            let walk = match &mut walk {
                Ok(walk) => walk,
                Err(error) => return error.take().map(Err),
            };
            let mut value = None;
            let key = read_bytes_into(key_words, self.key_size, |key| {
                value = read_bytes_into(value_words, self.value_size, |value| {
                    map.next_entry(walk, key, value)
                })?;
                Ok::<_, Error>(value.is_some())
            });
            match (key, value) {
                (Ok(Some(key)), Some(value)) => Some(Ok((key, value))),
                (Ok(_), _) => None,
                (Err(error), _) => Some(Err(error)),
            }
        })
    }

    /// Removes every entry, one by one (not atomic as a whole).
    pub fn clear(&self) {
        let _ = self.map().clear(self.object.region());
    }

    /// See [`HashMap::recount`](crate::hash_map::HashMap::recount).
    pub fn recount(&self) -> usize {
        self.map().recount(self.object.region()).unwrap_or(0) as usize
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.object.info().name
    }

    /// The region holding the map.
    pub fn region(&self) -> &Region {
        self.object.region()
    }
}
