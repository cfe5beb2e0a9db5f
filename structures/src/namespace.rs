//! `Namespace`: a view of the catalog (Python's `Manager().Namespace()`): named attributes
//! that any process reads and writes, each an object stored under `<prefix>.<attribute>`,
//! plus a listing of every object under the prefix with its kind and type.
//!
//! A namespace holds no state of its own: it is a name prefix over the catalog, so two
//! processes that open `region.namespace("config")` see the same attributes, and the
//! objects under the prefix can also be opened directly by their full names.
//!
//! A scalar attribute (`set`, `get`) is a [`Value`]: one atomic cell. Anything wider
//! (`set_str`, `set_bytes`, `set_pod`) is a one-entry [`HashMap`] whose value is the
//! attribute: its writes replace the whole value with compare-exchanges, so a reader never
//! sees half of an old string and half of a new one, and a writer killed half-way leaves
//! the old value or the new one, not a torn one (which a `Mutex` around the string could
//! not promise to its readers). The map has `POD_ATTRIBUTE_SLOTS` slots: the entry and
//! the copies of processes racing to set the attribute first.

use bytemuck::Pod;
use shmarena_engine::sync::Backoff;
use shmarena_engine::{EntryInfo, Error, Region, Result};

use crate::fixed::{FixedBytes, FixedStr};
use crate::hash_map::HashMap;
use crate::scalar::Scalar;
use crate::value::Value;

/// Slots of the one-entry map behind a string, byte-string or `Pod` attribute: its entry
/// and room for the copies of processes racing to set it first (a set that finds every
/// slot taken by such copies waits for them and tries again).
const POD_ATTRIBUTE_SLOTS: u64 = 4;

/// The key of a wide attribute's one entry.
const POD_KEY: u8 = 0;

/// How many times a set that found its map full (of racing first sets) tries again.
const FULL_RETRIES: u32 = 1000;

/// A prefix of the catalog used as a namespace of attributes.
///
/// Scalars (`set`, `get`: integers, floats, `bool`, `char`) are [`Value`]s. Strings
/// (`set_str::<N>`), byte strings (`set_bytes::<N>`) and any `Pod` value (`set_pod`) are
/// one-entry [`HashMap`]s (4 slots) whose value is replaced whole: a reader never sees a
/// torn string, and a writer killed half-way leaves the old value or the new one. Their
/// size is fixed when first set (`N` bytes at most, every process naming the same `N`),
/// as for a [`FixedStr`] anywhere else. Every attribute is an object of its own under
/// `<name>.<attribute>`, so it counts against the region's catalog (512 objects by
/// default, see [`RegionOptions`](crate::RegionOptions)).
///
/// ```
/// use shmarena::{Region, RegionExt};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-ns-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let ns = region.namespace("config")?;
/// ns.set("workers", 8u32)?;          // ns.workers = 8
/// ns.set("ratio", 0.25f64)?;         // ns.ratio = 0.25
/// ns.set("verbose", true)?;         // ns.verbose = True
/// ns.set_str::<32>("user", "bob")?;  // ns.user = "bob": up to 32 bytes of UTF-8
/// assert_eq!(ns.get::<u32>("workers")?, 8);
/// assert!(ns.get::<bool>("verbose")?);
/// assert_eq!(ns.get_str::<32>("user")?, "bob");
/// let names: Vec<String> = ns.attributes()?.into_iter().map(|(name, _)| name).collect();
/// assert_eq!(names, ["ratio", "user", "verbose", "workers"]);
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Namespace {
    region: Region,
    prefix: String,
}

impl Namespace {
    /// The namespace `name` (objects named `<name>.<attribute>`); an empty name is the
    /// whole catalog.
    ///
    /// # Errors
    /// [`Error::InvalidName`] if the prefix leaves no room for attribute names.
    pub fn new(region: &Region, name: &str) -> Result<Self> {
        let prefix = if name.is_empty() {
            String::new()
        } else {
            format!("{name}.")
        };
        if prefix.len() >= shmarena_engine::layout::MAX_NAME_LEN || prefix.contains('\0') {
            return Err(Error::InvalidName {
                name: name.to_owned(),
                reason: "a namespace name must leave room for attribute names (64 bytes in all) and hold no NUL",
            });
        }
        Ok(Self {
            region: region.clone(),
            prefix,
        })
    }

    /// Opens the existing namespace `name`: one that holds at least one attribute (a
    /// namespace is a name prefix, so it exists once something was stored under it).
    ///
    /// ```
    /// use shmarena::{Error, Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-ns-open-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// region.namespace("config")?.set("workers", 8u32)?;
    /// // Another process:
    /// let config = region.open_namespace("config")?;
    /// assert_eq!(config.get::<u32>("workers")?, 8);
    /// assert!(matches!(region.open_namespace("nothing-here"), Err(Error::ObjectNotFound(_))));
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`] when no object is named `<name>.<anything>`;
    /// [`Error::TypeMismatch`] when none is but `name` itself names an object (a value
    /// called `config` is no namespace `config`); [`Error::InvalidName`] as for
    /// [`new`](Self::new); [`Error::Corrupt`] for undecodable catalog entries.
    pub fn open(region: &Region, name: &str) -> Result<Self> {
        let namespace = Self::new(region, name)?;
        let holds_any = region
            .objects()?
            .iter()
            .any(|entry| entry.ready && entry.name.starts_with(&namespace.prefix));
        if holds_any {
            return Ok(namespace);
        }
        // The empty name (the whole catalog) names no object of its own.
        let itself = if name.is_empty() {
            None
        } else {
            region.find_object(name)?
        };
        match itself {
            Some(entry) => Err(Error::TypeMismatch {
                name: name.to_owned(),
                expected: format!("a namespace (objects named \"{name}.<attribute>\")"),
                found: entry.descriptor.to_string(),
            }),
            None => Err(Error::ObjectNotFound(name.to_owned())),
        }
    }

    fn full_name(&self, attribute: &str) -> String {
        format!("{}{attribute}", self.prefix)
    }

    /// Sets `attribute` to `value`, creating it as a `Value<T>` if absent.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if the attribute exists with another type; name, catalog
    /// and arena errors.
    pub fn set<T: Scalar>(&self, attribute: &str, value: T) -> Result<()> {
        Value::get_or_create(&self.region, &self.full_name(attribute), value)?.store(value);
        Ok(())
    }

    /// Reads `attribute`, any scalar: integers, floats, `bool` and `char`.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`] if it was never set; [`Error::TypeMismatch`];
    /// [`Error::InvalidValue`] for bits that are no `bool` or `char` (a corrupted region).
    pub fn get<T: Scalar>(&self, attribute: &str) -> Result<T> {
        Value::<T>::open(&self.region, &self.full_name(attribute))?.try_load()
    }

    /// Sets `attribute` to `value`, any `Pod` type (a `#[repr(C)]` struct, an array, a
    /// [`FixedStr`]), creating it if absent: the whole value is replaced at once, as the
    /// module docs say. Read it back with [`get_pod`](Self::get_pod) and the same type.
    ///
    /// ```
    /// use shmarena::{Region, RegionExt};
    /// # let path = std::env::temp_dir().join(format!("shmarena-doc-ns-pod-{}", std::process::id()));
    /// let region = Region::create(&path, 1 << 20)?;
    /// let ns = region.namespace("job")?;
    /// ns.set_pod("window", [0.25f64, 0.75])?;
    /// assert_eq!(ns.get_pod::<[f64; 2]>("window")?, [0.25, 0.75]);
    /// # Region::unlink(&path)?;
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if the attribute exists as another kind or a type of
    /// another size; [`Error::InvalidArgument`] for a type over 64 KiB; name, catalog and
    /// arena errors.
    pub fn set_pod<T: Pod>(&self, attribute: &str, value: T) -> Result<()> {
        let map = HashMap::<u8, T>::get_or_create(
            &self.region,
            &self.full_name(attribute),
            POD_ATTRIBUTE_SLOTS,
        )?;
        let backoff = Backoff::new();
        let mut retries = 0;
        loop {
            match map.insert(POD_KEY, value) {
                Ok(_) => return Ok(()),
                // Every slot holds a copy of a racing first set: they settle and free
                // theirs (a dead one's is freed by the insert that finds no room).
                Err(Error::Full { .. }) if retries < FULL_RETRIES => {
                    retries += 1;
                    backoff.snooze();
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Reads `attribute` as set by [`set_pod`](Self::set_pod) with a `T`.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`] if it was never set (or its first set has not finished);
    /// [`Error::TypeMismatch`] for another kind or a type of another size.
    pub fn get_pod<T: Pod>(&self, attribute: &str) -> Result<T> {
        let name = self.full_name(attribute);
        let map = HashMap::<u8, T>::open(&self.region, &name)?;
        map.get(&POD_KEY)?.ok_or(Error::ObjectNotFound(name))
    }

    /// Sets `attribute` to a string of up to `N` bytes of UTF-8 (a [`FixedStr<N>`]
    /// attribute: every process names the same `N`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `text` is longer than `N` bytes; as
    /// [`set_pod`](Self::set_pod).
    pub fn set_str<const N: usize>(&self, attribute: &str, text: &str) -> Result<()> {
        self.set_pod(attribute, FixedStr::<N>::new(text)?)
    }

    /// Reads the string `attribute` set by [`set_str`](Self::set_str) with the same `N`.
    ///
    /// # Errors
    /// As [`get_pod`](Self::get_pod); [`Error::InvalidValue`] for stored bytes that are
    /// no string of at most `N` bytes (a corrupted region).
    pub fn get_str<const N: usize>(&self, attribute: &str) -> Result<String> {
        Ok(self.get_pod::<FixedStr<N>>(attribute)?.as_str()?.to_owned())
    }

    /// Sets `attribute` to up to `N` bytes (a [`FixedBytes<N>`] attribute).
    ///
    /// # Errors
    /// As [`set_str`](Self::set_str).
    pub fn set_bytes<const N: usize>(&self, attribute: &str, bytes: &[u8]) -> Result<()> {
        self.set_pod(attribute, FixedBytes::<N>::new(bytes)?)
    }

    /// Reads the byte string `attribute` set by [`set_bytes`](Self::set_bytes) with the
    /// same `N`.
    ///
    /// # Errors
    /// As [`get_str`](Self::get_str).
    pub fn get_bytes<const N: usize>(&self, attribute: &str) -> Result<Vec<u8>> {
        Ok(self
            .get_pod::<FixedBytes<N>>(attribute)?
            .as_bytes()?
            .to_vec())
    }

    /// The `Value<T>` behind `attribute`, created holding `initial` if absent, for atomic
    /// updates (`fetch_add` and the rest).
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn value<T: Scalar>(&self, attribute: &str, initial: T) -> Result<Value<T>> {
        Value::get_or_create(&self.region, &self.full_name(attribute), initial)
    }

    /// Whether `attribute` exists (as any kind of object).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::Corrupt`].
    pub fn contains(&self, attribute: &str) -> Result<bool> {
        Ok(self
            .region
            .find_object(&self.full_name(attribute))?
            .is_some())
    }

    /// Every object under the prefix, as (attribute, catalog entry), sorted by name: values
    /// set here and any other object created with a name under the prefix.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for undecodable catalog entries.
    pub fn attributes(&self) -> Result<Vec<(String, EntryInfo)>> {
        let mut attributes: Vec<(String, EntryInfo)> = self
            .region
            .objects()?
            .into_iter()
            .filter(|entry| entry.ready)
            .filter_map(|entry| Some((entry.name.strip_prefix(&self.prefix)?.to_owned(), entry)))
            .collect();
        attributes.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(attributes)
    }

    /// The region.
    pub fn region(&self) -> &Region {
        &self.region
    }
}
