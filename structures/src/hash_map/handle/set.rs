//! `HashSet<K>`: the typed set handle.

use super::{
    map_descriptor, ElementType, HashMap, ObjectKind, Pod, Region, Result, TypeDescriptor,
};

/// A named hash set of `K` in a region (Python's `Manager().set()`); the same
/// lock-free table as [`HashMap`], without values.
///
/// ```
/// use shmarena::{Region, RegionExt};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-set-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let seen = region.hash_set::<u64>("seen", 256)?;
/// assert!(seen.insert(42)?);
/// assert!(!seen.insert(42)?);
/// assert!(seen.contains(&42)?);
/// assert!(seen.remove(&42)?);
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
pub struct HashSet<K: Pod> {
    map: HashMap<K, ()>,
}

impl<K: Pod> Clone for HashSet<K> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
        }
    }
}

impl<K: Pod> std::fmt::Debug for HashSet<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashSet")
            .field("name", &self.map.name())
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<K: Pod> HashSet<K> {
    /// The catalog descriptor of a set with `capacity` slots.
    pub fn descriptor(capacity: u64) -> TypeDescriptor {
        map_descriptor(
            ObjectKind::HashSet,
            capacity,
            (ElementType::of::<K>(), ElementType::of::<()>()),
        )
    }

    /// Opens the set `name`, creating it empty with `capacity` slots (rounded up to a
    /// power of two).
    ///
    /// # Errors
    /// As [`HashMap::get_or_create`].
    pub fn get_or_create(region: &Region, name: &str, capacity: u64) -> Result<Self> {
        HashMap::get_or_create_kind(region, name, capacity, ObjectKind::HashSet)
            .map(|map| Self { map })
    }

    /// Opens the existing set `name`.
    ///
    /// # Errors
    /// As [`HashMap::open`].
    pub fn open(region: &Region, name: &str) -> Result<Self> {
        HashMap::open_kind(region, name, ObjectKind::HashSet).map(|map| Self { map })
    }

    /// Adds `key`; whether it was absent.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`](crate::Error::OutOfMemory) when the map has to grow and the region has no room for
    /// its next table.
    pub fn insert(&self, key: K) -> Result<bool> {
        Ok(self.map.try_insert(key, ())?.is_none())
    }

    /// Removes `key`; whether it was present.
    ///
    /// # Errors
    /// [`Error::Contended`](crate::Error::Contended) on a hostile table.
    pub fn remove(&self, key: &K) -> Result<bool> {
        Ok(self.map.remove(key)?.is_some())
    }

    /// Whether `key` is present. Never waits.
    ///
    /// # Errors
    /// [`Error::Contended`](crate::Error::Contended) on a hostile table.
    pub fn contains(&self, key: &K) -> Result<bool> {
        self.map.contains_key(key)
    }

    /// Members (see [`HashMap::len`]).
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

    /// Iterates over the members (weakly consistent, see [`HashMap::iter`]).
    pub fn iter(&self) -> impl Iterator<Item = Result<K>> + '_ {
        self.map.keys()
    }

    /// The members in a `Vec`, in slot order (one walk, see [`HashMap::snapshot`]).
    ///
    /// # Errors
    /// As [`HashMap::snapshot`].
    pub fn snapshot(&self) -> Result<Vec<K>> {
        self.iter().collect()
    }

    /// The members in a `std` [`HashSet`](std::collections::HashSet).
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-set-std-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let seen = region.hash_set::<u64>("seen", 64)?;
    /// seen.extend([3, 5, 3])?;
    /// assert_eq!(seen.to_std_set()?, [3, 5].into());
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`HashMap::snapshot`].
    pub fn to_std_set(&self) -> Result<std::collections::HashSet<K>>
    where
        K: Eq + std::hash::Hash,
    {
        self.iter().collect()
    }

    /// Adds each key in turn (not atomic as a whole); how many were absent.
    ///
    /// # Errors
    /// The first error of an insert ([`Error::OutOfMemory`](crate::Error::OutOfMemory)); the keys before it stay
    /// in.
    pub fn extend(&self, keys: impl IntoIterator<Item = K>) -> Result<usize> {
        let mut added = 0;
        for key in keys {
            added += usize::from(self.insert(key)?);
        }
        Ok(added)
    }

    /// Removes every member, one by one.
    pub fn clear(&self) {
        self.map.clear();
    }

    /// See [`HashMap::recount`].
    pub fn recount(&self) -> usize {
        self.map.recount()
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.map.name()
    }
}
