//! `Array<T>`: a named fixed-length array of atomic scalars, Python's
//! `multiprocessing.Array` without its lock.
//!
//! ```text
//! body (64-byte aligned):
//!   | element 0 | element 1 | ... | element len-1 |   (size_of::<T>() bytes each)
//! ```
//!
//! The length is fixed at creation and stored in the catalog descriptor; every element
//! is an independent atomic cell with the operations of [`AtomicScalar`]. Whole-array
//! operations ([`snapshot`](Array::snapshot), [`copy_from_slice`](Array::copy_from_slice))
//! are element by element, not atomic as a whole: another process may see a mix of old
//! and new elements, never a torn element.

use std::ptr::NonNull;

use shmarena_engine::{Error, Object, ObjectKind, Region, Result, TypeDescriptor};

use crate::scalar::{AtomicScalar, Plain, Scalar};

/// A named shared array of scalars.
///
/// ```
/// use shmarena::{Region, RegionExt};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-array-{}", std::process::id()));
/// let region = Region::create(&path, 1 << 20)?;
/// let arr = region.array::<i32>("arr", &[0, 1, 2, 3])?;
/// arr.set(1, -1)?;
/// arr.at(2)?.fetch_add(40);
/// assert_eq!(arr.snapshot(), vec![0, -1, 42, 3]);
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
pub struct Array<T: Scalar> {
    cells: NonNull<AtomicScalar<T>>,
    len: usize,
    object: Object,
}

// SAFETY: the cells are atomics in the shared mapping, which `object` keeps alive; all
// access is atomic.
unsafe impl<T: Scalar> Send for Array<T> {}
// SAFETY: as above.
unsafe impl<T: Scalar> Sync for Array<T> {}

impl<T: Scalar> Clone for Array<T> {
    fn clone(&self) -> Self {
        Self {
            cells: self.cells,
            len: self.len,
            object: self.object.clone(),
        }
    }
}

impl<T: Scalar> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Array")
            .field("name", &self.object.info().name)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

fn body_size<T: Scalar>(len: usize) -> Result<u64> {
    (len as u64)
        .checked_mul(size_of::<T>() as u64)
        .ok_or_else(|| {
            Error::InvalidArgument(format!("an array of {len} {} is too large", T::TYPE_NAME))
        })
}

impl<T: Scalar> Array<T> {
    /// The catalog descriptor of an `Array<T>` of `len` elements.
    pub fn descriptor(len: usize) -> TypeDescriptor {
        TypeDescriptor::new(
            ObjectKind::Array,
            T::CODE,
            size_of::<T>() as u16,
            len as u64,
        )
    }

    /// Opens the array `name`, creating it with a copy of `initial` if it does not exist.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if it exists with another length; [`Error::TypeMismatch`];
    /// catalog and arena errors.
    pub fn get_or_create(region: &Region, name: &str, initial: &[T]) -> Result<Self> {
        let descriptor = Self::descriptor(initial.len());
        let (object, _) = crate::sweep::get_or_create_object(
            region,
            name,
            &descriptor,
            body_size::<T>(initial.len())?,
            |object| {
                let array = Self::from_object(object.clone())?;
                for (cell, value) in array.as_slice().iter().zip(initial) {
                    cell.store(*value);
                }
                Ok(())
            },
        )?;
        let array = Self::from_object(object)?;
        if array.len != initial.len() {
            return Err(Error::LengthMismatch {
                expected: initial.len() as u64,
                found: array.len as u64,
            });
        }
        Ok(array)
    }

    /// Opens the array `name`, creating it with `len` zero elements if it does not exist.
    ///
    /// # Errors
    /// As [`get_or_create`](Self::get_or_create).
    pub fn get_or_create_zeroed(region: &Region, name: &str, len: usize) -> Result<Self> {
        let descriptor = Self::descriptor(len);
        let (object, _) = crate::sweep::get_or_create_object(
            region,
            name,
            &descriptor,
            body_size::<T>(len)?,
            |_| Ok(()),
        )?;
        let array = Self::from_object(object)?;
        if array.len != len {
            return Err(Error::LengthMismatch {
                expected: len as u64,
                found: array.len as u64,
            });
        }
        Ok(array)
    }

    /// Opens the existing array `name`, whatever its length.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`], [`Error::TypeMismatch`], [`Error::Corrupt`].
    pub fn open(region: &Region, name: &str) -> Result<Self> {
        Self::from_object(crate::sweep::open_object(
            region,
            name,
            &Self::descriptor(0),
        )?)
    }

    fn from_object(object: Object) -> Result<Self> {
        let len = object.info().descriptor.capacity;
        let cells = object
            .atomics::<T::Atomic>(0, len)?
            .cast::<AtomicScalar<T>>();
        // The cells fit in the mapping, so their count fits in usize.
        Ok(Self {
            cells,
            len: len as usize,
            object,
        })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.object.info().name
    }

    /// All elements as atomic cells.
    #[inline]
    pub fn as_slice(&self) -> &[AtomicScalar<T>] {
        // SAFETY: `len` cells at `cells` were checked inside the body by `Object::atomics`;
        // atomics are valid for any bits and meant for shared mutation; `self.object` keeps
        // the mapping alive.
        unsafe { std::slice::from_raw_parts(self.cells.as_ptr(), self.len) }
    }

    /// The cell at `index`, with every [`AtomicScalar`] operation.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`].
    #[inline]
    pub fn at(&self, index: usize) -> Result<&AtomicScalar<T>> {
        // A match, not `ok_or`: an eagerly built error would be dropped on every hit.
        match self.as_slice().get(index) {
            Some(cell) => Ok(cell),
            None => Err(Error::IndexOutOfBounds {
                index: index as u64,
                len: self.len as u64,
            }),
        }
    }

    /// Stores `value` at `index`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`].
    #[inline]
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        self.at(index)?.store(value);
        Ok(())
    }

    /// Reads element `index`, validating `bool` and `char` bits.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`], [`Error::InvalidValue`].
    #[inline]
    pub fn try_get(&self, index: usize) -> Result<T> {
        self.at(index)?.try_load()
    }

    /// Copies every element into a vector, validating each (not atomic as a whole).
    ///
    /// # Errors
    /// [`Error::InvalidValue`].
    pub fn try_snapshot(&self) -> Result<Vec<T>> {
        self.as_slice().iter().map(AtomicScalar::try_load).collect()
    }

    /// Stores `values` element by element (not atomic as a whole).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless `values.len() == self.len()`.
    pub fn copy_from_slice(&self, values: &[T]) -> Result<()> {
        if values.len() != self.len {
            return Err(Error::LengthMismatch {
                expected: self.len as u64,
                found: values.len() as u64,
            });
        }
        for (cell, value) in self.as_slice().iter().zip(values) {
            cell.store(*value);
        }
        Ok(())
    }

    /// Iterates over the cells.
    pub fn iter(&self) -> std::slice::Iter<'_, AtomicScalar<T>> {
        self.as_slice().iter()
    }
}

impl<T: Plain> Array<T> {
    /// Reads element `index`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`].
    #[inline]
    pub fn get(&self, index: usize) -> Result<T> {
        Ok(self.at(index)?.load())
    }

    /// Copies every element into a vector (element by element, not atomic as a whole).
    pub fn snapshot(&self) -> Vec<T> {
        self.as_slice().iter().map(AtomicScalar::load).collect()
    }
}

impl<'a, T: Scalar> IntoIterator for &'a Array<T> {
    type Item = &'a AtomicScalar<T>;
    type IntoIter = std::slice::Iter<'a, AtomicScalar<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
