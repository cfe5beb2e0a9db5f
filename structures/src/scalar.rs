//! Scalar element types and the atomic operations on them, shared by [`Value`](crate::Value)
//! and [`Array`](crate::Array).
//!
//! Every Python `array`/`multiprocessing.Value` typecode has a Rust type:
//!
//! | typecode | Rust  | stored as     |
//! |----------|-------|---------------|
//! | `b` `B`  | `i8` `u8`   | 1 byte  |
//! | `h` `H`  | `i16` `u16` | 2 bytes |
//! | `i` `I`  | `i32` `u32` | 4 bytes |
//! | `l` `q`  | `i64`       | 8 bytes (`l` is 8 bytes on 64-bit Linux) |
//! | `L` `Q`  | `u64`       | 8 bytes |
//! | `f` `d`  | `f32` `f64` | IEEE bits in a 4- or 8-byte atomic |
//! | `?`      | `bool`      | 1 byte, 0 or 1, validated on read |
//! | `u`      | `char`      | 4 bytes, a Unicode scalar value, validated on read |
//!
//! Only sizes 1, 2, 4 and 8 exist, so every cell is one lock-free hardware atomic and no
//! process-local lock ever hides behind an operation.
//!
//! Orderings: every operation here is `SeqCst`. A shared scalar is a synchronization point
//! between processes (Python guards its `Value` with a lock); the strongest ordering keeps
//! user reasoning simple, and on x86-64 it costs nothing for loads and read-modify-writes.
//!
//! Floating-point `fetch_add`, `fetch_max` and friends are compare-exchange loops over the
//! bit pattern; integer ones are single hardware instructions.

use std::fmt::Debug;
use std::marker::PhantomData;

use shmarena_engine::sync::{
    AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Backoff,
    Ordering,
};
use shmarena_engine::{Error, Result};

/// The ordering of every user-facing scalar operation (see the module docs).
const ORDER: Ordering = Ordering::SeqCst;

mod sealed {
    pub trait Sealed {}
}

#[cfg(not(loom))]
#[doc(hidden)]
pub trait MaybeShared: shmarena_engine::SharedAtomic {}
#[cfg(not(loom))]
impl<A: shmarena_engine::SharedAtomic> MaybeShared for A {}
#[cfg(loom)]
#[doc(hidden)]
pub trait MaybeShared {}
#[cfg(loom)]
impl<A> MaybeShared for A {}

/// A hardware atomic integer cell holding a scalar's bits.
pub trait AtomicBits: MaybeShared + Send + Sync + sealed::Sealed {
    /// The integer type of the bits.
    type Bits: Copy + Eq + Debug;
    /// A cell holding `bits` (process memory; region cells are made by the region).
    fn new(bits: Self::Bits) -> Self;
    /// Atomic load.
    fn load(&self, order: Ordering) -> Self::Bits;
    /// Atomic store.
    fn store(&self, bits: Self::Bits, order: Ordering);
    /// Atomic swap.
    fn swap(&self, bits: Self::Bits, order: Ordering) -> Self::Bits;
    /// Atomic compare-exchange.
    fn compare_exchange(
        &self,
        current: Self::Bits,
        new: Self::Bits,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Self::Bits, Self::Bits>;
    /// Atomic compare-exchange that may fail spuriously.
    fn compare_exchange_weak(
        &self,
        current: Self::Bits,
        new: Self::Bits,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Self::Bits, Self::Bits>;
}

macro_rules! atomic_bits {
    ($($atomic:ty => $bits:ty),*) => {$(
        impl sealed::Sealed for $atomic {}
        impl AtomicBits for $atomic {
            type Bits = $bits;
            #[inline] fn new(bits: $bits) -> Self { <$atomic>::new(bits) }
            #[inline] fn load(&self, order: Ordering) -> $bits { <$atomic>::load(self, order) }
            #[inline] fn store(&self, bits: $bits, order: Ordering) { <$atomic>::store(self, bits, order) }
            #[inline] fn swap(&self, bits: $bits, order: Ordering) -> $bits { <$atomic>::swap(self, bits, order) }
            #[inline] fn compare_exchange(&self, current: $bits, new: $bits, success: Ordering, failure: Ordering) -> Result<$bits, $bits> {
                <$atomic>::compare_exchange(self, current, new, success, failure)
            }
            #[inline] fn compare_exchange_weak(&self, current: $bits, new: $bits, success: Ordering, failure: Ordering) -> Result<$bits, $bits> {
                <$atomic>::compare_exchange_weak(self, current, new, success, failure)
            }
        }
    )*};
}
atomic_bits!(AtomicI8 => i8, AtomicU8 => u8, AtomicI16 => i16, AtomicU16 => u16, AtomicI32 => i32,
    AtomicU32 => u32, AtomicI64 => i64, AtomicU64 => u64);

/// The bits of scalar `T`.
pub type BitsOf<T> = <<T as Scalar>::Atomic as AtomicBits>::Bits;

/// A type that can live in a shared cell: one of Python's typecodes.
pub trait Scalar: Copy + PartialEq + Debug + Send + Sync + 'static + sealed::Sealed {
    /// Python `array` typecode, stored in the catalog to check types across processes.
    const CODE: u8;
    /// Rust name, for messages.
    const TYPE_NAME: &'static str;
    /// The atomic cell holding the bits.
    type Atomic: AtomicBits;
    /// The stored bit pattern of `self`.
    fn to_bits(self) -> BitsOf<Self>;
    /// Decodes stored bits.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when the bits are no value of the type (`bool`, `char`).
    fn from_bits(bits: BitsOf<Self>) -> Result<Self>;
}

/// Scalars for which every bit pattern is a value: integers and floats. Their reads
/// cannot fail.
pub trait Plain: Scalar {
    /// Decodes any bit pattern.
    fn from_any_bits(bits: BitsOf<Self>) -> Self;
}

/// Scalars with arithmetic: integers (wrapping, single instructions) and floats
/// (compare-exchange loops).
pub trait Numeric: Plain {
    #[doc(hidden)]
    fn atomic_fetch_add(cell: &Self::Atomic, value: Self) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_sub(cell: &Self::Atomic, value: Self) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_max(cell: &Self::Atomic, value: Self) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_min(cell: &Self::Atomic, value: Self) -> Self;
}

/// Integer scalars: bit operations and overflow-checked arithmetic.
pub trait Integer: Numeric + Ord {
    #[doc(hidden)]
    fn atomic_fetch_and(cell: &Self::Atomic, value: Self) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_or(cell: &Self::Atomic, value: Self) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_xor(cell: &Self::Atomic, value: Self) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_nand(cell: &Self::Atomic, value: Self) -> Self;
    #[doc(hidden)]
    fn checked_add_value(self, other: Self) -> Option<Self>;
    #[doc(hidden)]
    fn checked_sub_value(self, other: Self) -> Option<Self>;
}

macro_rules! integer {
    ($($t:ty => $atomic:ty, $code:literal;)*) => {$(
        impl sealed::Sealed for $t {}
        impl Scalar for $t {
            const CODE: u8 = $code;
            const TYPE_NAME: &'static str = stringify!($t);
            type Atomic = $atomic;
            #[inline] fn to_bits(self) -> $t { self }
            #[inline] fn from_bits(bits: $t) -> Result<Self> { Ok(bits) }
        }
        impl Plain for $t {
            #[inline] fn from_any_bits(bits: $t) -> Self { bits }
        }
        impl Numeric for $t {
            #[inline] fn atomic_fetch_add(cell: &$atomic, value: $t) -> $t { cell.fetch_add(value, ORDER) }
            #[inline] fn atomic_fetch_sub(cell: &$atomic, value: $t) -> $t { cell.fetch_sub(value, ORDER) }
            #[inline] fn atomic_fetch_max(cell: &$atomic, value: $t) -> $t { cell.fetch_max(value, ORDER) }
            #[inline] fn atomic_fetch_min(cell: &$atomic, value: $t) -> $t { cell.fetch_min(value, ORDER) }
        }
        impl Integer for $t {
            #[inline] fn atomic_fetch_and(cell: &$atomic, value: $t) -> $t { cell.fetch_and(value, ORDER) }
            #[inline] fn atomic_fetch_or(cell: &$atomic, value: $t) -> $t { cell.fetch_or(value, ORDER) }
            #[inline] fn atomic_fetch_xor(cell: &$atomic, value: $t) -> $t { cell.fetch_xor(value, ORDER) }
            #[inline] fn atomic_fetch_nand(cell: &$atomic, value: $t) -> $t { cell.fetch_nand(value, ORDER) }
            #[inline] fn checked_add_value(self, other: $t) -> Option<$t> { self.checked_add(other) }
            #[inline] fn checked_sub_value(self, other: $t) -> Option<$t> { self.checked_sub(other) }
        }
    )*};
}
integer! {
    i8 => AtomicI8, b'b';
    u8 => AtomicU8, b'B';
    i16 => AtomicI16, b'h';
    u16 => AtomicU16, b'H';
    i32 => AtomicI32, b'i';
    u32 => AtomicU32, b'I';
    i64 => AtomicI64, b'q';
    u64 => AtomicU64, b'Q';
}

/// Compare-exchange loop applying `f` to the decoded value until it sticks or `f` says
/// `None`. Returns the previous value (`Err` with the current one if `f` declined).
fn update_loop<T: Plain>(cell: &T::Atomic, mut f: impl FnMut(T) -> Option<T>) -> Result<T, T> {
    let backoff = Backoff::new();
    let mut current = cell.load(ORDER);
    loop {
        let value = T::from_any_bits(current);
        let Some(new) = f(value) else {
            return Err(value);
        };
        match cell.compare_exchange_weak(current, new.to_bits(), ORDER, ORDER) {
            Ok(_) => return Ok(value),
            Err(actual) => {
                current = actual; // another process changed it: recompute from its value
                backoff.spin();
            }
        }
    }
}

macro_rules! float {
    ($($t:ty => $atomic:ty, $bits:ty, $code:literal;)*) => {$(
        impl sealed::Sealed for $t {}
        impl Scalar for $t {
            const CODE: u8 = $code;
            const TYPE_NAME: &'static str = stringify!($t);
            type Atomic = $atomic;
            #[inline] fn to_bits(self) -> $bits { <$t>::to_bits(self) }
            #[inline] fn from_bits(bits: $bits) -> Result<Self> { Ok(<$t>::from_bits(bits)) }
        }
        impl Plain for $t {
            #[inline] fn from_any_bits(bits: $bits) -> Self { <$t>::from_bits(bits) }
        }
        impl Numeric for $t {
            fn atomic_fetch_add(cell: &$atomic, value: $t) -> $t {
                update_loop::<$t>(cell, |x| Some(x + value)).unwrap_or_else(|x| x)
            }
            fn atomic_fetch_sub(cell: &$atomic, value: $t) -> $t {
                update_loop::<$t>(cell, |x| Some(x - value)).unwrap_or_else(|x| x)
            }
            fn atomic_fetch_max(cell: &$atomic, value: $t) -> $t {
                update_loop::<$t>(cell, |x| (value > x).then_some(value)).unwrap_or_else(|x| x)
            }
            fn atomic_fetch_min(cell: &$atomic, value: $t) -> $t {
                update_loop::<$t>(cell, |x| (value < x).then_some(value)).unwrap_or_else(|x| x)
            }
        }
    )*};
}
float! {
    f32 => AtomicU32, u32, b'f';
    f64 => AtomicU64, u64, b'd';
}

impl sealed::Sealed for bool {}
impl Scalar for bool {
    const CODE: u8 = b'?';
    const TYPE_NAME: &'static str = "bool";
    type Atomic = AtomicU8;
    #[inline]
    fn to_bits(self) -> u8 {
        u8::from(self)
    }
    #[inline]
    fn from_bits(bits: u8) -> Result<Self> {
        match bits {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::InvalidValue {
                type_name: "bool",
                bits: u64::from(bits),
            }),
        }
    }
}

impl sealed::Sealed for char {}
impl Scalar for char {
    const CODE: u8 = b'u';
    const TYPE_NAME: &'static str = "char";
    type Atomic = AtomicU32;
    #[inline]
    fn to_bits(self) -> u32 {
        u32::from(self)
    }
    #[inline]
    fn from_bits(bits: u32) -> Result<Self> {
        char::from_u32(bits).ok_or_else(|| Error::InvalidValue {
            type_name: "char",
            bits: u64::from(bits),
        })
    }
}

/// One shared atomic scalar: the cell behind a [`Value`](crate::Value) and each element
/// of an [`Array`](crate::Array).
///
/// ```
/// use shmarena::AtomicScalar;
/// let cell = AtomicScalar::new(1.5f64); // in process memory; shared ones live in a region
/// assert_eq!(cell.fetch_add(2.0), 1.5);
/// assert_eq!(cell.load(), 3.5);
/// ```
#[repr(transparent)]
pub struct AtomicScalar<T: Scalar> {
    cell: T::Atomic,
    _type: PhantomData<T>,
}

impl<T: Scalar> Debug for AtomicScalar<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.try_load() {
            Ok(value) => f.debug_tuple("AtomicScalar").field(&value).finish(),
            Err(_) => f
                .debug_tuple("AtomicScalar")
                .field(&self.cell.load(ORDER))
                .finish(),
        }
    }
}

impl<T: Scalar> AtomicScalar<T> {
    /// A cell in process memory (for tests and models; shared cells come from a region).
    pub fn new(value: T) -> Self {
        Self {
            cell: T::Atomic::new(value.to_bits()),
            _type: PhantomData,
        }
    }

    /// Reads the value, validating its bits.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when another process stored bits that are no `T`
    /// (possible only for `bool` and `char`).
    #[inline]
    pub fn try_load(&self) -> Result<T> {
        T::from_bits(self.cell.load(ORDER))
    }

    /// Writes the value.
    #[inline]
    pub fn store(&self, value: T) {
        self.cell.store(value.to_bits(), ORDER);
    }

    /// Writes the value and returns the previous one, validated.
    ///
    /// # Errors
    /// As [`try_load`](Self::try_load), for the previous value (the store happened).
    #[inline]
    pub fn try_swap(&self, value: T) -> Result<T> {
        T::from_bits(self.cell.swap(value.to_bits(), ORDER))
    }

    /// Stores `new` if the value is `current` (compared bitwise). `Ok(Ok(previous))` on
    /// success, `Ok(Err(actual))` when the value was something else.
    ///
    /// # Errors
    /// As [`try_load`](Self::try_load), for the value found.
    #[inline]
    pub fn try_compare_exchange(&self, current: T, new: T) -> Result<Result<T, T>> {
        match self
            .cell
            .compare_exchange(current.to_bits(), new.to_bits(), ORDER, ORDER)
        {
            Ok(previous) => Ok(Ok(T::from_bits(previous)?)),
            Err(actual) => Ok(Err(T::from_bits(actual)?)),
        }
    }
}

impl<T: Plain> AtomicScalar<T> {
    /// Reads the value.
    #[inline]
    pub fn load(&self) -> T {
        T::from_any_bits(self.cell.load(ORDER))
    }

    /// Writes the value and returns the previous one.
    #[inline]
    pub fn swap(&self, value: T) -> T {
        T::from_any_bits(self.cell.swap(value.to_bits(), ORDER))
    }

    /// Stores `new` if the value is bitwise equal to `current`; returns the previous value
    /// on success and the actual value on failure. (Floats compare by bits: `-0.0` is not
    /// `0.0`, and a NaN matches itself.)
    #[inline]
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        self.cell
            .compare_exchange(current.to_bits(), new.to_bits(), ORDER, ORDER)
            .map(T::from_any_bits)
            .map_err(T::from_any_bits)
    }

    /// Applies `f` until it succeeds against concurrent changes (`f` may run several
    /// times). Returns the previous value, or `Err(current)` if `f` returned `None`.
    pub fn fetch_update(&self, f: impl FnMut(T) -> Option<T>) -> Result<T, T> {
        update_loop::<T>(&self.cell, f)
    }
}

impl<T: Numeric> AtomicScalar<T> {
    /// Adds `value` (integers wrap; floats round) and returns the previous value.
    #[inline]
    pub fn fetch_add(&self, value: T) -> T {
        T::atomic_fetch_add(&self.cell, value)
    }

    /// Subtracts `value` (integers wrap) and returns the previous value.
    #[inline]
    pub fn fetch_sub(&self, value: T) -> T {
        T::atomic_fetch_sub(&self.cell, value)
    }

    /// Stores the maximum of the value and `value`; returns the previous value.
    #[inline]
    pub fn fetch_max(&self, value: T) -> T {
        T::atomic_fetch_max(&self.cell, value)
    }

    /// Stores the minimum of the value and `value`; returns the previous value.
    #[inline]
    pub fn fetch_min(&self, value: T) -> T {
        T::atomic_fetch_min(&self.cell, value)
    }
}

impl<T: Integer> AtomicScalar<T> {
    /// Bitwise and; returns the previous value.
    #[inline]
    pub fn fetch_and(&self, value: T) -> T {
        T::atomic_fetch_and(&self.cell, value)
    }

    /// Bitwise or; returns the previous value.
    #[inline]
    pub fn fetch_or(&self, value: T) -> T {
        T::atomic_fetch_or(&self.cell, value)
    }

    /// Bitwise xor; returns the previous value.
    #[inline]
    pub fn fetch_xor(&self, value: T) -> T {
        T::atomic_fetch_xor(&self.cell, value)
    }

    /// Bitwise nand; returns the previous value.
    #[inline]
    pub fn fetch_nand(&self, value: T) -> T {
        T::atomic_fetch_nand(&self.cell, value)
    }

    /// Adds `value` unless the result would overflow; returns the new value.
    ///
    /// # Errors
    /// [`Error::Overflow`], leaving the value unchanged.
    pub fn checked_add(&self, value: T) -> Result<T> {
        update_loop::<T>(&self.cell, |x| x.checked_add_value(value))
            .map(|previous| {
                previous
                    .checked_add_value(value)
                    .expect("checked in the loop")
            })
            .map_err(|_| Error::Overflow)
    }

    /// Subtracts `value` unless the result would overflow; returns the new value.
    ///
    /// # Errors
    /// [`Error::Overflow`], leaving the value unchanged.
    pub fn checked_sub(&self, value: T) -> Result<T> {
        update_loop::<T>(&self.cell, |x| x.checked_sub_value(value))
            .map(|previous| {
                previous
                    .checked_sub_value(value)
                    .expect("checked in the loop")
            })
            .map_err(|_| Error::Overflow)
    }
}
