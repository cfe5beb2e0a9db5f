//! `Value<T>`: one named atomic scalar in the region, Python's `multiprocessing.Value`
//! without its lock and without its `+=` race.
//!
//! ```text
//! body (one 64-byte block, a cache line of its own):
//!   | cell: T's bits (1, 2, 4 or 8 bytes) | unused |
//! ```
//!
//! Every operation is one hardware atomic instruction, or (floats' arithmetic, checked
//! arithmetic, `fetch_update`) a compare-exchange loop over the cell; its linearization
//! point is that instruction, or the successful compare-exchange. A process killed at any
//! instruction either did its write or did not: there is no state in between.

use std::ops::Deref;
use std::ptr::NonNull;

use shmarena_engine::{Object, ObjectKind, Region, Result, TypeDescriptor};

use crate::scalar::{AtomicScalar, Scalar};

/// Body size of a value: one cache line, so neighbours never share it.
const BODY_SIZE: u64 = 64;

/// A named shared scalar. Derefs to [`AtomicScalar`], which has the operations.
///
/// ```
/// use shmarena::{Region, RegionExt};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-value-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let hits = region.value::<u64>("hits", 0)?; // any process: same name, same cell
/// hits.fetch_add(1);
/// assert_eq!(hits.load(), 1);
/// assert_eq!(hits.checked_add(u64::MAX).unwrap_err().to_string(), "arithmetic overflow");
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
pub struct Value<T: Scalar> {
    cell: NonNull<AtomicScalar<T>>,
    object: Object,
}

// SAFETY: the cell is an atomic in the shared mapping, which `object` keeps alive; all
// access goes through atomic operations, so sharing and sending the handle is sound.
unsafe impl<T: Scalar> Send for Value<T> {}
// SAFETY: as above.
unsafe impl<T: Scalar> Sync for Value<T> {}

impl<T: Scalar> Clone for Value<T> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell,
            object: self.object.clone(),
        }
    }
}

impl<T: Scalar> std::fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Value")
            .field("name", &self.object.info().name)
            .field("value", &**self)
            .finish_non_exhaustive()
    }
}

impl<T: Scalar> Value<T> {
    /// The catalog descriptor of a `Value<T>`.
    pub fn descriptor() -> TypeDescriptor {
        TypeDescriptor::new(ObjectKind::Value, T::CODE, size_of::<T>() as u16, 1)
    }

    /// Opens the value `name`, creating it holding `initial` if it does not exist.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`](crate::Error::TypeMismatch) if `name` holds another type; catalog and arena errors.
    pub fn get_or_create(region: &Region, name: &str, initial: T) -> Result<Self> {
        let (object, _) = crate::sweep::get_or_create_object(
            region,
            name,
            &Self::descriptor(),
            BODY_SIZE,
            |object| {
                Self::from_object(object.clone())?.store(initial);
                Ok(())
            },
        )?;
        Self::from_object(object)
    }

    /// Opens the existing value `name`.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`](crate::Error::ObjectNotFound), [`Error::TypeMismatch`](crate::Error::TypeMismatch), [`Error::Corrupt`](crate::Error::Corrupt).
    pub fn open(region: &Region, name: &str) -> Result<Self> {
        Self::from_object(crate::sweep::open_object(
            region,
            name,
            &Self::descriptor(),
        )?)
    }

    fn from_object(object: Object) -> Result<Self> {
        let cell = object.atomics::<T::Atomic>(0, 1)?.cast::<AtomicScalar<T>>();
        Ok(Self { cell, object })
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.object.info().name
    }

    /// The region the value lives in.
    pub fn region(&self) -> &Region {
        self.object.region()
    }
}

impl<T: Scalar> Deref for Value<T> {
    type Target = AtomicScalar<T>;

    #[inline]
    fn deref(&self) -> &AtomicScalar<T> {
        // SAFETY: `cell` was bounds- and alignment-checked inside the object body by
        // `Object::atomics`; `AtomicScalar<T>` is a transparent wrapper of `T::Atomic`; the
        // mapping outlives `self` because `self.object` holds the region.
        unsafe { self.cell.as_ref() }
    }
}

impl<T: Scalar> From<Value<T>> for Object {
    fn from(value: Value<T>) -> Object {
        value.object
    }
}
