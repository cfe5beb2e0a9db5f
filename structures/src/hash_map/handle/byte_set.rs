//! `ByteSet`: the set handle for keys sized at run time.

use super::{check_sizes, create_map, ByteMap, ElementType, ObjectKind, Region, Result};

/// A named hash set of byte strings of up to `key_size` bytes, chosen at creation: the
/// run-time-sized counterpart of [`HashSet`](crate::hash_map::HashSet), as [`ByteMap`] is of [`HashMap`](crate::hash_map::HashMap).
///
/// ```
/// use shmarena::{ByteSet, Region};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-byteset-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let seen = ByteSet::get_or_create(&region, "seen", 64, 32)?;
/// assert!(seen.insert(b"alpha")?);
/// assert!(!seen.insert(b"alpha")?);
/// assert!(seen.contains(b"alpha")?);
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ByteSet {
    map: ByteMap,
}

impl ByteSet {
    /// Opens the set `name`, creating it empty with `capacity` slots for keys of up to
    /// `key_size` bytes.
    ///
    /// # Errors
    /// As [`HashMap::get_or_create`](crate::hash_map::HashMap::get_or_create).
    pub fn get_or_create(
        region: &Region,
        name: &str,
        capacity: u64,
        key_size: usize,
    ) -> Result<Self> {
        check_sizes(key_size, 0)?;
        let types = (ElementType::bytes(key_size), ElementType::bytes(0));
        create_map(region, name, capacity, types, ObjectKind::HashSet).map(|parts| Self {
            map: ByteMap::from_parts(parts, (key_size, 0)),
        })
    }

    /// Opens the existing set `name`.
    ///
    /// # Errors
    /// As [`HashMap::open`](crate::hash_map::HashMap::open).
    pub fn open(region: &Region, name: &str) -> Result<Self> {
        ByteMap::open_kind(region, name, ObjectKind::HashSet).map(|map| Self { map })
    }

    /// Adds `key`; whether it was absent.
    ///
    /// # Errors
    /// As [`ByteMap::insert`].
    pub fn insert(&self, key: &[u8]) -> Result<bool> {
        Ok(self.map.try_insert(key, &[])?.is_none())
    }

    /// Removes `key`; whether it was present.
    ///
    /// # Errors
    /// As [`ByteMap::remove`].
    pub fn remove(&self, key: &[u8]) -> Result<bool> {
        Ok(self.map.remove(key)?.is_some())
    }

    /// Whether `key` is present. Never waits.
    ///
    /// # Errors
    /// As [`ByteMap::get`].
    pub fn contains(&self, key: &[u8]) -> Result<bool> {
        self.map.contains_key(key)
    }

    /// Largest key, in bytes.
    pub fn key_size(&self) -> usize {
        self.map.key_size()
    }

    /// Members (see [`HashMap::len`](crate::hash_map::HashMap::len)).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }

    /// Iterates over the members (weakly consistent, see [`HashMap::iter`](crate::hash_map::HashMap::iter)).
    pub fn iter(&self) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        self.map.iter().map(|entry| entry.map(|(key, _)| key))
    }

    /// Removes every member, one by one.
    pub fn clear(&self) {
        self.map.clear();
    }

    /// See [`HashMap::recount`](crate::hash_map::HashMap::recount).
    pub fn recount(&self) -> usize {
        self.map.recount()
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.map.name()
    }

    /// The region holding the set.
    pub fn region(&self) -> &Region {
        self.map.region()
    }
}
