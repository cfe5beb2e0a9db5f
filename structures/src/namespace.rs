//! `Namespace`: a view of the catalog (Python's `Manager().Namespace()`): named attributes
//! that any process reads and writes, each a [`Value`] stored under `<prefix>.<attribute>`,
//! plus a listing of every object under the prefix with its kind and type.
//!
//! A namespace holds no state of its own: it is a name prefix over the catalog, so two
//! processes that open `region.namespace("config")` see the same attributes, and the
//! objects under the prefix can also be opened directly by their full names.

use shmarena_engine::{EntryInfo, Error, Region, Result};

use crate::scalar::{Plain, Scalar};
use crate::value::Value;

/// A prefix of the catalog used as a namespace of attributes.
///
/// ```
/// use shmarena::{Region, RegionExt};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-ns-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let ns = region.namespace("config")?;
/// ns.set("workers", 8u32)?;          // ns.workers = 8
/// ns.set("ratio", 0.25f64)?;         // ns.ratio = 0.25
/// assert_eq!(ns.get::<u32>("workers")?, 8);
/// let names: Vec<String> = ns.attributes()?.into_iter().map(|(name, _)| name).collect();
/// assert_eq!(names, ["ratio", "workers"]);
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

    /// Reads `attribute`.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`] if it was never set; [`Error::TypeMismatch`].
    pub fn get<T: Plain>(&self, attribute: &str) -> Result<T> {
        Ok(Value::<T>::open(&self.region, &self.full_name(attribute))?.load())
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
