//! Fixed-capacity strings and byte strings: `Pod` types for map keys and values, list
//! elements and queue items (a `String` cannot live in shared memory; these can).
//!
//! Both are a two-byte length and `N` bytes, zero past the length, so equal contents are
//! equal bytes (what the hash map hashes and compares). Reads validate what they find:
//! a length past `N`, or bytes that are not UTF-8 in a [`FixedStr`], give an error.
//!
//! # Layout, and putting one in your own struct
//! `FixedStr<N>` and `FixedBytes<N>` are `N + 2` bytes with alignment 1 (the length is two
//! little-endian bytes, so the layout is the same on every machine and in Python). A
//! `#[repr(C)]` struct derives `Pod` only without padding, so inside a struct with 8-byte
//! fields pick `N` such that `N + 2` is a multiple of 8 (`FixedStr<6>`, `<14>`, `<30>`,
//! `<62>`, ...), or pad explicitly:
//!
//! ```
//! use shmarena::{FixedStr, Pod, Zeroable};
//!
//! #[derive(Clone, Copy, Pod, Zeroable)]
//! #[bytemuck(crate = "shmarena::bytemuck")]
//! #[repr(C)]
//! struct Order {
//!     id: u64,
//!     price: f64,
//!     symbol: FixedStr<14>, // 16 bytes: the struct is 32, no padding
//! }
//!
//! #[derive(Clone, Copy, Pod, Zeroable)]
//! #[bytemuck(crate = "shmarena::bytemuck")]
//! #[repr(C)]
//! struct Named {
//!     id: u64,
//!     name: FixedStr<16>, // 18 bytes...
//!     _pad: [u8; 6],      // ...so 6 explicit bytes make the struct 32
//! }
//!
//! assert_eq!(size_of::<Order>(), 32);
//! assert_eq!(size_of::<Named>(), 32);
//! let order = Order { id: 7, price: 1.5, symbol: FixedStr::new("SHMA")? };
//! assert_eq!(order.symbol.as_str()?, "SHMA");
//! # Ok::<(), shmarena::Error>(())
//! ```
//!
//! The alignment stays 1 so that the layout has no hidden bytes and existing regions keep
//! theirs; padding is the user's choice.

use bytemuck::{Pod, Zeroable};
use shmarena_engine::{Error, Result};

macro_rules! fixed_type {
    ($name:ident, $what:literal) => {
        #[doc = concat!("Up to `N` bytes of ", $what, " stored inline (`N` up to 65535).")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(C)]
        pub struct $name<const N: usize> {
            len: [u8; 2],
            bytes: [u8; N],
        }

        // SAFETY: a `repr(C)` struct of byte arrays: no padding, every bit pattern valid
        // (lengths are checked on read).
        unsafe impl<const N: usize> Zeroable for $name<N> {}
        // SAFETY: as above; `Copy + 'static`.
        unsafe impl<const N: usize> Pod for $name<N> {}

        impl<const N: usize> $name<N> {
            fn from_slice(bytes: &[u8]) -> Result<Self> {
                if bytes.len() > N || N > usize::from(u16::MAX) {
                    return Err(Error::InvalidArgument(format!(
                        "{} bytes do not fit in a {}<{N}>",
                        bytes.len(),
                        stringify!($name)
                    )));
                }
                let mut value = Self::zeroed();
                value.len = (bytes.len() as u16).to_le_bytes();
                value.bytes[..bytes.len()].copy_from_slice(bytes);
                Ok(value)
            }

            /// The stored bytes.
            ///
            /// # Errors
            /// [`Error::InvalidValue`] when the stored length exceeds `N` (corrupted data).
            pub fn as_bytes(&self) -> Result<&[u8]> {
                let len = usize::from(u16::from_le_bytes(self.len));
                self.bytes.get(..len).ok_or_else(|| Error::InvalidValue {
                    type_name: stringify!($name),
                    bits: len as u64,
                })
            }

            /// Length in bytes (as stored; may exceed `N` in corrupted data).
            pub fn len(&self) -> usize {
                usize::from(u16::from_le_bytes(self.len))
            }

            /// Whether it is empty.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The capacity `N` in bytes.
            pub const fn capacity() -> usize {
                N
            }
        }

        impl<const N: usize> Default for $name<N> {
            fn default() -> Self {
                Self::zeroed()
            }
        }
    };
}

fixed_type!(FixedStr, "UTF-8 text");
fixed_type!(FixedBytes, "bytes");

impl<const N: usize> FixedStr<N> {
    /// `text` stored inline.
    ///
    /// ```
    /// use shmarena::FixedStr;
    /// let s = FixedStr::<16>::new("你好世界")?; // 12 bytes of UTF-8
    /// assert_eq!(s.as_str()?, "你好世界");
    /// assert!(FixedStr::<4>::new("too long").is_err());
    /// # Ok::<(), shmarena::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `text` takes more than `N` bytes.
    pub fn new(text: &str) -> Result<Self> {
        Self::from_slice(text.as_bytes())
    }

    /// The text.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when the stored length or bytes are not valid UTF-8 text
    /// of at most `N` bytes (corrupted data).
    pub fn as_str(&self) -> Result<&str> {
        let bytes = self.as_bytes()?;
        std::str::from_utf8(bytes).map_err(|_| Error::InvalidValue {
            type_name: "FixedStr",
            bits: bytes.len() as u64,
        })
    }
}

impl<const N: usize> FixedBytes<N> {
    /// `bytes` stored inline.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when there are more than `N` bytes.
    pub fn new(bytes: &[u8]) -> Result<Self> {
        Self::from_slice(bytes)
    }
}

impl<const N: usize> TryFrom<&str> for FixedStr<N> {
    type Error = Error;
    fn try_from(text: &str) -> Result<Self> {
        Self::new(text)
    }
}

impl<const N: usize> TryFrom<&[u8]> for FixedBytes<N> {
    type Error = Error;
    fn try_from(bytes: &[u8]) -> Result<Self> {
        Self::new(bytes)
    }
}

impl<const N: usize> std::fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_str() {
            Ok(text) => std::fmt::Debug::fmt(text, f),
            Err(_) => write!(f, "FixedStr(<invalid, {} bytes>)", self.len()),
        }
    }
}

impl<const N: usize> std::fmt::Display for FixedStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str().unwrap_or("\u{fffd}"))
    }
}

impl<const N: usize> std::fmt::Debug for FixedBytes<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_bytes() {
            Ok(bytes) => write!(f, "FixedBytes({bytes:?})"),
            Err(_) => write!(f, "FixedBytes(<invalid, {} bytes>)", self.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_limits() {
        let text = FixedStr::<12>::new("你好世界").unwrap();
        assert_eq!(text.as_str().unwrap(), "你好世界");
        assert_eq!(text.len(), 12);
        assert!(FixedStr::<11>::new("你好世界").is_err());
        assert_eq!(FixedStr::<3>::new("").unwrap().as_str().unwrap(), "");
        let bytes = FixedBytes::<4>::new(&[0, 255, 7]).unwrap();
        assert_eq!(bytes.as_bytes().unwrap(), &[0, 255, 7]);
        assert_eq!(size_of::<FixedStr<62>>(), 64);
    }

    #[test]
    fn corrupted_contents_are_errors() {
        let mut raw = [0u8; 6];
        raw[0] = 5; // length 5 > N = 4
        let value: FixedStr<4> = bytemuck::pod_read_unaligned(&raw);
        assert!(value.as_str().is_err());
        raw = [2, 0, 0xff, 0xfe, 0, 0]; // not UTF-8
        let value: FixedStr<4> = bytemuck::pod_read_unaligned(&raw);
        assert!(value.as_str().is_err());
        assert_eq!(
            FixedBytes::<4>::new(&[0xff, 0xfe])
                .unwrap()
                .as_bytes()
                .unwrap(),
            &[0xff, 0xfe]
        );
    }
}
