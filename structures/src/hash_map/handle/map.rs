//! `HashMap<K, V>`: the typed map handle.

use super::{
    create_map, fixed_words, from_words, map_descriptor, name_types, open_map, read_words_into,
    try_read_words_into, typed, with_words_of, word_count, ElementType, Error, First, GracePin,
    GrowingMap, Lookups, MappedSlots, MappedTables, Object, ObjectKind, Ordering, PhantomData, Pod,
    Region, Result, TableGuess, TypeDescriptor, Typed, Updated,
};

/// A named hash map from `K` to `V` in a region: Python's `Manager().dict()` with no
/// broker. Keys and values are `Pod` (compared and hashed by their bytes); use
/// [`FixedStr`](crate::FixedStr) or [`FixedBytes`](crate::FixedBytes) for strings.
///
/// Lock-free: `get` never waits (it writes only to settle what a killed or frozen
/// writer of its key left unfinished); with values of up to 8 bytes no
/// operation waits for another process, but for an insert into a full table, which
/// waits for a live process making the next one at most
/// [`GROW_PATIENCE`](crate::hash_map::grow::GROW_PATIENCE) before it makes it itself.
/// With wider values, readers still never wait, and writers of the *same key* wait
/// for a live writer of it (never a dead one).
/// See the [module docs](crate::hash_map) for the algorithm.
///
/// ```
/// use shmarena::{FixedStr, Region, RegionExt};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-map-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let words = region.hash_map::<FixedStr<24>, u64>("word-count", 1024)?;
/// for word in "the cat saw the other cat".split(' ') {
///     words.fetch_add(FixedStr::new(word)?, 1)?; // from any number of processes
/// }
/// assert_eq!(words.get(&FixedStr::new("cat")?)?, Some(2));
/// assert_eq!(words.insert(FixedStr::new("你好世界")?, 7)?, None);
/// assert_eq!(words.remove(&FixedStr::new("saw")?)?, Some(1));
/// assert_eq!(words.len(), 4);
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
pub struct HashMap<K: Pod, V: Pod> {
    slots: MappedSlots,
    guess: TableGuess,
    seed: u64,
    object: Object,
    _types: PhantomData<(K, V)>,
}

impl<K: Pod, V: Pod> Clone for HashMap<K, V> {
    fn clone(&self) -> Self {
        Self {
            slots: self.slots,
            guess: self.guess.clone(),
            seed: self.seed,
            object: self.object.clone(),
            _types: PhantomData,
        }
    }
}

impl<K: Pod, V: Pod> std::fmt::Debug for HashMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashMap")
            .field("name", &self.object.info().name)
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<K: Pod, V: Pod> Lookups for HashMap<K, V> {
    type Shape = Typed<K, V>;

    /// Built per call, so that the key and value sizes are constants the compiler
    /// specializes the probing code for.
    #[inline]
    fn map(&self) -> GrowingMap<MappedTables<'_>, Typed<K, V>> {
        GrowingMap::with_shape(
            MappedTables::new(self.object.region(), &self.slots, Some(&self.guess)),
            Typed::new(),
            self.seed,
        )
    }

    #[inline]
    fn liveness(&self) -> &Region {
        self.object.region()
    }
}

impl<K: Pod, V: Pod> HashMap<K, V> {
    /// The catalog descriptor of a map with `capacity` slots: key and value types as
    /// [`identity`](crate::identity) describes.
    pub fn descriptor(capacity: u64) -> TypeDescriptor {
        map_descriptor(
            ObjectKind::HashMap,
            capacity,
            (ElementType::of::<K>(), ElementType::of::<V>()),
        )
    }

    /// Opens the map `name`, creating it empty with `capacity` slots (rounded up to a
    /// power of two) to start with. It grows online past them (a table twice the size,
    /// migrated a chunk at a time by the operations of every process: see
    /// [`grow`](crate::hash_map::grow)), while the region has room.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a zero capacity or oversized types;
    /// [`Error::Unsupported`] without 128-bit atomics; [`Error::TypeMismatch`] (also
    /// for another capacity); catalog and arena errors.
    pub fn get_or_create(region: &Region, name: &str, capacity: u64) -> Result<Self> {
        Self::get_or_create_kind(region, name, capacity, ObjectKind::HashMap)
    }

    pub(crate) fn get_or_create_kind(
        region: &Region,
        name: &str,
        capacity: u64,
        kind: ObjectKind,
    ) -> Result<Self> {
        let slots = capacity.checked_next_power_of_two().unwrap_or(capacity);
        create_map(region, name, capacity, typed::<K, V>()?, kind)
            .map(Self::from_parts)
            .map_err(|error| name_types::<K, V>(error, kind, Some(slots)))
    }

    /// Opens the existing map `name`, whatever its capacity.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::Corrupt`],
    /// [`Error::Unsupported`].
    pub fn open(region: &Region, name: &str) -> Result<Self> {
        Self::open_kind(region, name, ObjectKind::HashMap)
    }

    pub(crate) fn open_kind(region: &Region, name: &str, kind: ObjectKind) -> Result<Self> {
        open_map(region, name, typed::<K, V>()?, kind)
            .map(Self::from_parts)
            .map_err(|error| name_types::<K, V>(error, kind, None))
    }

    fn from_parts((object, slots): (Object, MappedSlots)) -> Self {
        Self {
            slots,
            guess: TableGuess::default(),
            seed: object.region().hash_seed(),
            object,
            _types: PhantomData,
        }
    }

    /// The value of `key`. Never waits.
    ///
    /// # Errors
    /// [`Error::Contended`] only on a table that keeps changing under a wide read.
    // Always: the first look of a value of up to 8 bytes, in the caller's code (no
    // frame, no buffers in memory: the stores a call makes wait behind a lookup's cache
    // miss and limit how many lookups overlap); the rest out of line.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        if let (Some(words), 1) = (fixed_words::<K, 4>(key), word_count::<V>()) {
            let (words, map, mut out) = (&words[..word_count::<K>()], self.map(), [0u64]);
            let hash = map.hash(words);
            if let Some(found) = map.get_first(hash, words, &mut out) {
                return Ok(found.then(|| from_words(&out)));
            }
            return self.get_walked(hash, key);
        }
        self.get_wide(key)
    }

    /// `get` of a value of up to 8 bytes past its first look (its key's words made
    /// again here, so that the first look keeps them in registers).
    #[cold]
    #[inline(never)]
    fn get_walked(&self, hash: u64, key: &K) -> Result<Option<V>> {
        // Built only when returned (`ok_or` built one to drop on every call).
        let Some(words) = fixed_words::<K, 4>(key) else {
            return Err(Error::Contended("hash map read"));
        };
        let mut out = [0u64];
        let found = self.lookup_walk(hash, &words[..word_count::<K>()], &mut out)?;
        Ok(found.then(|| from_words(&out)))
    }

    /// `get` of a wider value (or key).
    #[inline(never)]
    fn get_wide(&self, key: &K) -> Result<Option<V>> {
        if word_count::<K>() <= 4 && word_count::<V>() <= 4 {
            let (mut key_words, mut value_words) = ([0u64; 4], [0u64; 4]);
            bytemuck::cast_slice_mut::<u64, u8>(&mut key_words)[..size_of::<K>()]
                .copy_from_slice(bytemuck::bytes_of(key));
            let (key, out) = (
                &key_words[..word_count::<K>()],
                &mut value_words[..word_count::<V>()],
            );
            let found = self.lookup(key, out)?;
            return Ok(found.then(|| from_words(&value_words)));
        }
        with_words_of(key, |key| {
            let mut result = Ok(false);
            let value = read_words_into::<V>(|value| {
                result = self.map().get(key, value, self.object.region());
                matches!(result, Ok(true))
            });
            result.map(|_| value)
        })
    }

    /// Whether `key` is present. Never waits.
    ///
    /// # Errors
    /// As [`Self::get`].
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        with_words_of(key, |key| self.lookup_contains(key))
    }

    /// Inserts or replaces; returns the value replaced.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the map has to grow and the region has no room for
    /// its next table.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        self.insert_with(&key, &value, true, false)
    }

    /// Inserts only if `key` is absent: `None` when inserted, else the value present
    /// (left unchanged).
    ///
    /// # Errors
    /// As [`Self::insert`].
    pub fn try_insert(&self, key: K, value: V) -> Result<Option<V>> {
        self.insert_with(&key, &value, false, false)
    }

    /// Inserts, or (`replace` false) reads the value present; `absent`: the caller
    /// has just found the key absent, and the insert claims without looking again.
    fn insert_with(&self, key: &K, value: &V, replace: bool, absent: bool) -> Result<Option<V>> {
        if self.grew() {
            return self.insert_grown(key, value, replace, absent);
        }
        let region = self.object.region();
        if let (Some(key), Some(value)) = (fixed_words::<K, 4>(key), fixed_words::<V, 1>(value)) {
            // A key already present is replaced (or, for `try_insert`, read) where the
            // first look finds it; the rest out of line, with the same key and hash.
            let (key, map, mut old) = (&key[..word_count::<K>()], self.map(), [0u64]);
            let hash = map.hash(key);
            let first = if absent {
                First::Absent
            } else {
                map.insert_first(hash, key, &value, replace, &mut old, region)
            };
            let had = match first {
                First::Done(done) => done?,
                rest => {
                    let absent = matches!(rest, First::Absent);
                    self.insert_after_first(hash, key, &value, replace, &mut old, absent)?
                }
            };
            return Ok(had.then(|| from_words(&old)));
        }
        self.insert_words(key, value, replace)
    }

    /// `insert_with` of wider keys or values, through word buffers.
    fn insert_words(&self, key: &K, value: &V, replace: bool) -> Result<Option<V>> {
        let region = self.object.region();
        with_words_of(key, |key| {
            with_words_of(value, |value| {
                let mut result = Ok(false);
                let old = read_words_into::<V>(|old| {
                    result = self.map().insert(key, value, replace, old, region);
                    matches!(result, Ok(true))
                });
                result.map(|_| old)
            })
        })
    }

    /// Whether this handle saw the map grow (a later table is its root): its writes
    /// then pin ([`GrowingMap`]), and take their own way, so that the way of a map
    /// that never grew stays as short.
    #[inline]
    fn grew(&self) -> bool {
        // Relaxed: a hint (see `TableGuess`); the map validates it.
        self.guess.root.load(Ordering::Relaxed) != 0
    }

    /// `insert_with` on a map this handle saw grow: the first look on the table it
    /// grew into, pinned, and the rest, in one frame.
    // Never: out of the way of a map that never grew (measured with `map_ops`: the two
    // ways inline in one function made each insert of a map that never grew ~20
    // instructions longer); the answer goes straight into the caller's. Through the
    // way below instead (two calls, each answer in memory), a replacing insert on a
    // grown map took 555 instructions, 484 here, and 22% more time.
    #[inline(never)]
    fn insert_grown(&self, key: &K, value: &V, replace: bool, absent: bool) -> Result<Option<V>> {
        let region = self.object.region();
        let (Some(key), Some(value)) = (fixed_words::<K, 4>(key), fixed_words::<V, 1>(value))
        else {
            return self.insert_words(key, value, replace);
        };
        let pin = region.pin()?;
        let (key, map, mut old) = (&key[..word_count::<K>()], self.map(), [0u64]);
        let hash = map.hash(key);
        let first = map.insert_on_guess(&pin, hash, key, &value, replace, &mut old, absent, region);
        let had = match first {
            Some(First::Done(done)) => done?,
            Some(rest) => {
                let absent = matches!(rest, First::Absent);
                self.insert_grown_walk(&pin, hash, key, &value, replace, &mut old, absent)?
            }
            None => {
                drop(pin);
                map.insert_after_first(hash, key, &value, replace, &mut old, false, region)?
            }
        };
        Ok(had.then(|| from_words(&old)))
    }

    /// `insert_grown` past its first look, out of line (under the caller's pin): the
    /// walk's frame stays out of the first look's, and its call takes the handle, not
    /// the table, so that the first look's table stays in registers (measured with
    /// `map_ops`: the walk inline, or out of line taking the table, made ~40 more
    /// stack stores per replacing insert).
    #[allow(clippy::too_many_arguments)]
    #[cold]
    #[inline(never)]
    fn insert_grown_walk(
        &self,
        pin: &GracePin<'_>,
        hash: u64,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        absent: bool,
    ) -> Result<bool, Box<Error>> {
        let (map, region) = (self.map(), self.object.region());
        match map.insert_walked_on_guess(pin, hash, key, value, replace, old, absent, region) {
            Some(done) => done,
            None => map.insert_after_first(hash, key, value, replace, old, false, region),
        }
    }

    /// Removes `key`; returns its value.
    ///
    /// # Errors
    /// [`Error::Contended`] on a hostile table.
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        let region = self.object.region();
        if let (Some(key), 1) = (fixed_words::<K, 4>(key), word_count::<V>()) {
            // Keys of up to 4 words and one-word values: no buffers, and the answer in
            // registers.
            let (key, mut old) = (&key[..word_count::<K>()], [0u64]);
            let removed = self.map().remove_boxed(key, &mut old, region)?;
            return Ok(removed.then(|| from_words(&old)));
        }
        with_words_of(key, |key| {
            let mut result = Ok(false);
            let old = read_words_into::<V>(|old| {
                result = self.map().remove(key, old, region);
                matches!(result, Ok(true))
            });
            result.map(|_| old)
        })
    }

    /// Replaces the value of `key` with `new` if it is `current` (compared by bytes).
    /// `Ok(Ok(current))` when replaced; `Ok(Err(Some(actual)))` when the value differs;
    /// `Ok(Err(None))` when the key is absent.
    ///
    /// # Errors
    /// [`Error::Contended`] on a hostile table.
    pub fn compare_exchange(
        &self,
        key: &K,
        current: V,
        new: V,
    ) -> Result<std::result::Result<V, Option<V>>> {
        with_words_of(&current, |current| {
            with_words_of(&new, |new| {
                self.fetch_update_words(key, |seen: &[u64], out: &mut [u64]| {
                    if seen != current {
                        return false;
                    }
                    out.copy_from_slice(new);
                    true
                })
            })
        })
    }

    /// Applies `f` to the value of `key` until its result is stored (retried when
    /// other processes change the value meanwhile; `f` may run several times).
    /// `Ok(Ok(previous))` when stored; `Ok(Err(Some(value)))` when `f` returned `None`;
    /// `Ok(Err(None))` when the key is absent.
    ///
    /// # Errors
    /// [`Error::Contended`] on a hostile table.
    pub fn fetch_update(
        &self,
        key: &K,
        mut f: impl FnMut(V) -> Option<V>,
    ) -> Result<std::result::Result<V, Option<V>>> {
        self.fetch_update_words(key, |seen: &[u64], out: &mut [u64]| {
            let current: V = bytemuck::pod_read_unaligned(
                &bytemuck::cast_slice::<u64, u8>(seen)[..size_of::<V>()],
            );
            match f(current) {
                Some(new) => {
                    with_words_of(&new, |new| out.copy_from_slice(new));
                    true
                }
                None => false,
            }
        })
    }

    /// [`GrowingMap::insert_after_first`], out of line: the first look's path stays
    /// short (measured: the general way's setup ran before the first look). Its error
    /// comes back boxed, so that the answer comes back in registers (through memory,
    /// the caller's reload of it stalled on store forwarding: measured with `map_ops`).
    #[cold]
    #[inline(never)]
    fn insert_after_first(
        &self,
        hash: u64,
        key: &[u64],
        value: &[u64],
        replace: bool,
        old: &mut [u64],
        absent: bool,
    ) -> Result<bool, Box<Error>> {
        let region = self.object.region();
        self.map()
            .insert_after_first(hash, key, value, replace, old, absent, region)
    }

    /// [`GrowingMap::update_after_first`], out of line, its error boxed (as
    /// `insert_after_first`).
    #[cold]
    #[inline(never)]
    fn update_after_first(
        &self,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<Updated, Box<Error>> {
        let region = self.object.region();
        if self.grew() {
            // A map that grew: the first look on its newest table, pinned through the
            // region (as in `insert_grown`: the map stays in registers), and the walk
            // out of line under the same pin.
            let pin = region.pin()?;
            let map = self.map();
            match map.update_on_guess(&pin, hash, key, old, region, f) {
                Some(Some(updated)) => return updated.map_err(Box::new),
                Some(None) => return self.update_grown_walk(&pin, hash, key, old, f),
                None => {}
            }
        }
        self.update_whole_way(hash, key, old, f)
    }

    /// `update_after_first`'s walk on a map that grew, under the caller's pin (out of
    /// line, taking the handle: see `insert_grown_walk`).
    #[cold]
    #[inline(never)]
    fn update_grown_walk(
        &self,
        pin: &GracePin<'_>,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<Updated, Box<Error>> {
        let (map, region) = (self.map(), self.object.region());
        match map.update_walked_on_guess(pin, hash, key, old, region, f) {
            Some(updated) => updated,
            None => map.update_in_chain(hash, key, old, region, f),
        }
        .map_err(Box::new)
    }

    /// [`GrowingMap::update_after_first`], out of line: every way of an update.
    #[cold]
    #[inline(never)]
    fn update_whole_way(
        &self,
        hash: u64,
        key: &[u64],
        old: &mut [u64],
        f: &mut impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<Updated, Box<Error>> {
        let region = self.object.region();
        self.map()
            .update_after_first(hash, key, old, region, f)
            .map_err(Box::new)
    }

    #[inline]
    fn fetch_update_words(
        &self,
        key: &K,
        mut f: impl FnMut(&[u64], &mut [u64]) -> bool,
    ) -> Result<std::result::Result<V, Option<V>>> {
        let region = self.object.region();
        if let (Some(key), 1) = (fixed_words::<K, 4>(key), word_count::<V>()) {
            // The first look (straight-line code) and the rest with one key and hash.
            let (key, map, mut old) = (&key[..word_count::<K>()], self.map(), [0u64]);
            let hash = map.hash(key);
            let updated = match map.update_first(hash, key, &mut old, region, &mut f) {
                Some(updated) => updated?,
                None => self.update_after_first(hash, key, &mut old, &mut f)?,
            };
            return Ok(match updated {
                Updated::Done => Ok(from_words(&old)),
                Updated::Declined => Err(Some(from_words(&old))),
                Updated::Absent => Err(None),
            });
        }
        with_words_of(key, |key| {
            let mut result = Ok(Updated::Absent);
            let old = read_words_into::<V>(|old| {
                result = self.map().update(key, old, region, f);
                matches!(result, Ok(Updated::Done | Updated::Declined))
            });
            Ok(match (result?, old) {
                (Updated::Done, Some(old)) => Ok(old),
                (Updated::Declined, old) => Err(old),
                _ => Err(None),
            })
        })
    }

    /// Entries (from sharded counters: exact while every process that changed the map
    /// is alive; see [`Self::recount`]).
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

    /// Iterates over the entries by slot. Weakly consistent: an entry present for the
    /// whole iteration is seen exactly once; one inserted or removed meanwhile may or
    /// may not be; no entry is ever seen torn.
    ///
    /// Why slot order and `Result`s, where `std`'s `iter` gives plain pairs: other
    /// processes change the map while this one walks it, and nothing stops them (no
    /// lock is taken, so a killed process never blocks a reader), so there is no
    /// moment at which "the map" has one order or one content to hand out; the walk
    /// visits the slots once each, which is what bounds its work and makes the
    /// guarantee above hold. An item is an `Err` only when a slot cannot be read: a
    /// region corrupted by something other than shmarena ([`Error::Corrupt`]), or
    /// [`Error::Contended`] on a table changing faster than the walk can retry (or,
    /// first and alone, [`Error::ParticipantsFull`] from a handle that cannot pin). For
    /// a plain collection, take a [`snapshot`](Self::snapshot) or
    /// [`to_std_map`](Self::to_std_map), which stop at the first error.
    ///
    /// The iterator holds a grace-period pin ([`Region::pin`]) until it is dropped:
    /// memory this map and others in the region retire meanwhile (an old table, an
    /// out-of-line value) waits for it.
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-map-iter-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let map = region.hash_map::<u32, u64>("sizes", 64)?;
    /// map.extend([(1, 10), (2, 20)])?;
    /// let mut total = 0;
    /// for entry in map.iter() {
    ///     let (_key, value) = entry?;
    ///     total += value;
    /// }
    /// assert_eq!(total, 30);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, V)>> + '_ {
        let map = self.map();
        // A walk that could not start (no pin) reports that once.
        let mut walk = map.walk().map_err(Some);
        std::iter::from_fn(move || {
            let walk = match &mut walk {
                Ok(walk) => walk,
                Err(error) => return error.take().map(Err),
            };
            // Both read into buffers built in place (no `Words` per entry).
            let mut value = None;
            let key = try_read_words_into::<K, Error>(|key| {
                value = try_read_words_into::<V, Error>(|value| map.next_entry(walk, key, value))?;
                Ok(value.is_some())
            });
            match (key, value) {
                (Ok(Some(key)), Some(value)) => Some(Ok((key, value))),
                (Ok(_), _) => None,
                (Err(error), _) => Some(Err(error)),
            }
        })
    }

    /// The keys (see [`Self::iter`]).
    pub fn keys(&self) -> impl Iterator<Item = Result<K>> + '_ {
        self.iter().map(|entry| entry.map(|(key, _)| key))
    }

    /// The values (see [`Self::iter`]).
    pub fn values(&self) -> impl Iterator<Item = Result<V>> + '_ {
        self.iter().map(|entry| entry.map(|(_, value)| value))
    }

    /// The entries in a `Vec`, in slot order: one weakly consistent walk (see
    /// [`Self::iter`]), collected.
    ///
    /// # Errors
    /// The first error of the walk ([`Error::Corrupt`], [`Error::Contended`]).
    pub fn snapshot(&self) -> Result<Vec<(K, V)>> {
        self.iter().collect()
    }

    /// The entries in a `std` [`HashMap`](std::collections::HashMap), for the
    /// operations of a process-local map (taken as [`Self::snapshot`] takes them).
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-map-std-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let map = region.hash_map::<u32, u64>("scores", 64)?;
    /// map.extend([(1, 10), (2, 20)])?;
    /// let local = map.to_std_map()?;
    /// assert_eq!(local[&2], 20);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Self::snapshot`].
    pub fn to_std_map(&self) -> Result<std::collections::HashMap<K, V>>
    where
        K: Eq + std::hash::Hash,
    {
        self.iter().collect()
    }

    /// Inserts (or replaces) each pair in turn, as [`Self::insert`]; not atomic as a
    /// whole: other processes may see some pairs before the others.
    ///
    /// # Errors
    /// The first error of an insert ([`Error::OutOfMemory`]); the pairs before it stay
    /// in.
    pub fn extend(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        for (key, value) in pairs {
            self.insert(key, value)?;
        }
        Ok(())
    }

    /// The value of `key`, inserting `value` first if the key is absent (what
    /// `std`'s `entry(key).or_insert(value)` gives, by value): the value present
    /// after the call, whichever process inserted it. One [`Self::try_insert`]: of
    /// processes racing to insert one key, exactly one inserts and all get its value.
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-map-goi-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let owners = region.hash_map::<u64, u32>("owners", 64)?;
    /// assert_eq!(owners.get_or_insert(7, 100)?, 100); // inserted
    /// assert_eq!(owners.get_or_insert(7, 200)?, 100); // already there
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Self::insert`].
    pub fn get_or_insert(&self, key: K, value: V) -> Result<V> {
        Ok(self.try_insert(key, value)?.unwrap_or(value))
    }

    /// As [`Self::get_or_insert`], computing the value only if `key` is absent when
    /// first looked up (`entry(key).or_insert_with(f)`). If another process inserts
    /// the key between the look-up and the insert, its value is returned and `f`'s
    /// result is dropped.
    ///
    /// # Errors
    /// As [`Self::insert`].
    pub fn get_or_insert_with(&self, key: K, f: impl FnOnce() -> V) -> Result<V> {
        match self.get(&key)? {
            Some(value) => Ok(value),
            None => self.get_or_insert(key, f()),
        }
    }

    /// Removes every entry, one by one (not atomic as a whole).
    pub fn clear(&self) {
        let _ = self.map().clear(self.object.region());
    }

    /// Counts the entries and resets the len counters to the count. A process killed
    /// between an insert or remove and its counter update leaves `len` one off; this
    /// repairs it. Exact only while no other process changes the map.
    pub fn recount(&self) -> usize {
        self.map().recount(self.object.region()).unwrap_or(0) as usize
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.object.info().name
    }
}

impl<K: Pod, V: Pod + crate::Integer> HashMap<K, V> {
    /// Adds `delta` to the value of `key`, inserting `delta` if it is absent; returns
    /// the previous value (zero when absent). Many processes may count into one map
    /// at once; no update is lost.
    ///
    /// # Errors
    /// [`Error::Overflow`] (the value is left unchanged); [`Error::OutOfMemory`].
    pub fn fetch_add(&self, key: K, delta: V) -> Result<V> {
        let zero: V = bytemuck::Zeroable::zeroed();
        for _ in 0..1 << 16 {
            let mut overflow = false;
            match self.fetch_update(&key, |value| {
                let sum = value.checked_add_value(delta);
                overflow = sum.is_none();
                sum
            })? {
                Ok(previous) => return Ok(previous),
                Err(Some(_)) if overflow => return Err(Error::Overflow),
                Err(_) => {}
            }
            if self.insert_absent(key, delta)? {
                return Ok(zero);
            }
        }
        Err(Error::Contended("hash map fetch_add"))
    }

    /// `try_insert` for `fetch_add`'s first add to a key, which its update found
    /// absent: whether it inserted. Out of line, so that the insert path does not
    /// weigh on the update's.
    #[cold]
    #[inline(never)]
    fn insert_absent(&self, key: K, value: V) -> Result<bool> {
        // Claims at once: the update has just walked the key's slots.
        Ok(self.insert_with(&key, &value, false, true)?.is_none())
    }
}
