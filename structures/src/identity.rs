//! How a key or element type is known across processes.
//!
//! `TypeId` differs between builds, so the catalog records a type as a code, a size and a
//! tag. Rust's scalars get their Python typecode (`u64` is `'Q'`, `f64` is `'d'`), so a
//! `HashMap<u64, u64>` does not open as a `HashMap<i64, f64>`. Any other type is
//! [`USER_TYPE_CODE`] with a tag: a fingerprint of its name without module paths (`Point`,
//! `FixedStr<16>`, `Pair<Point>`), its size and its alignment. Two programs that share a
//! struct under one name therefore agree whichever crate or module declares it, and a map
//! of `Point`s does not open as a map of `Rect`s of the same size. A type renamed between
//! versions of a program is a new type: its old objects open through the byte views
//! ([`ByteMap`](crate::ByteMap), [`ByteQueue`](crate::ByteQueue), ...), which match any type
//! of their size.
//!
//! An object keeps the identity it was created with. One created untyped (through a byte
//! view, by Python, or in a region made before tags) stays untyped: any type of its size
//! opens it, as before.
//!
//! The name is the identity a user controls: no trait to implement, nothing to derive.
//! Rust's `type_name` output is stable in practice for the names it prints here; were a
//! compiler to print one differently, two programs built by the two compilers would refuse
//! each other's objects with [`Error::TypeMismatch`](crate::Error::TypeMismatch), never
//! read them as another type.

use std::any::TypeId;

use shmarena_engine::USER_TYPE_CODE;

/// One key or element type as the catalog records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ElementType {
    /// A Python typecode for a scalar; [`USER_TYPE_CODE`] otherwise.
    pub(crate) code: u8,
    /// Size in bytes.
    pub(crate) size: u16,
    /// Fingerprint of a user type (0 for scalars and untyped bytes).
    pub(crate) tag: u64,
}

impl ElementType {
    /// Bytes of `size`, untyped: matches any type of that size.
    pub(crate) fn bytes(size: usize) -> Self {
        Self {
            code: USER_TYPE_CODE,
            size: size as u16,
            tag: 0,
        }
    }

    /// The record of `T`.
    pub(crate) fn of<T: 'static>() -> Self {
        // Sizes over u16::MAX are refused by every structure before it looks a type up.
        let size = size_of::<T>();
        if let Some(code) = scalar_code::<T>() {
            return Self {
                code,
                size: size as u16,
                tag: 0,
            };
        }
        Self {
            code: USER_TYPE_CODE,
            size: u16::try_from(size).unwrap_or(u16::MAX),
            tag: fingerprint::<T>(),
        }
    }
}

/// The tag of `T`: a fingerprint of its name without module paths, its size and its
/// alignment; never 0 (which means untyped).
pub(crate) fn fingerprint<T>() -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    hasher.update(short_type_name::<T>().as_bytes());
    hasher.update(&(size_of::<T>() as u64).to_le_bytes());
    hasher.update(&(align_of::<T>() as u64).to_le_bytes());
    hasher.digest().max(1)
}

/// Refuses element types over 65535 bytes, which the catalog cannot record (a shorter size
/// would let an open read past each element).
pub(crate) fn check_elem_size<T>() -> shmarena_engine::Result<()> {
    if size_of::<T>() > usize::from(u16::MAX) {
        return Err(shmarena_engine::Error::InvalidArgument(format!(
            "elements take up to 65535 bytes ({} given)",
            size_of::<T>()
        )));
    }
    Ok(())
}

/// `error` with a type mismatch's expected type spelled by `expected` (Rust names, which
/// the catalog does not record); other errors unchanged.
pub(crate) fn name_expected(
    error: shmarena_engine::Error,
    expected: impl FnOnce() -> String,
) -> shmarena_engine::Error {
    match error {
        shmarena_engine::Error::TypeMismatch { name, found, .. } => {
            shmarena_engine::Error::TypeMismatch {
                name,
                expected: expected(),
                found,
            }
        }
        other => other,
    }
}

/// Python's typecode for Rust's scalar `T`, if `T` is one.
fn scalar_code<T: 'static>() -> Option<u8> {
    let id = TypeId::of::<T>();
    let codes: [(TypeId, u8); 12] = [
        (TypeId::of::<i8>(), b'b'),
        (TypeId::of::<u8>(), b'B'),
        (TypeId::of::<i16>(), b'h'),
        (TypeId::of::<u16>(), b'H'),
        (TypeId::of::<i32>(), b'i'),
        (TypeId::of::<u32>(), b'I'),
        (TypeId::of::<i64>(), b'q'),
        (TypeId::of::<u64>(), b'Q'),
        (TypeId::of::<f32>(), b'f'),
        (TypeId::of::<f64>(), b'd'),
        (TypeId::of::<bool>(), b'?'),
        (TypeId::of::<char>(), b'u'),
    ];
    codes.iter().find(|(t, _)| *t == id).map(|&(_, code)| code)
}

/// `T`'s name without module paths: `demo::geo::Pair<demo::Point>` is `Pair<Point>`.
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    // Where the identifier being copied began in `out`: a `::` after it drops it.
    let mut ident_start = 0;
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(ident_start);
            continue;
        }
        out.push(c);
        if !(c.is_alphanumeric() || c == '_') {
            ident_start = out.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Point {
        x: f64,
        y: f64,
    }

    mod other {
        #[repr(C)]
        #[derive(Clone, Copy)]
        pub struct Point {
            pub x: f64,
            pub y: f64,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        pub struct Rect {
            pub w: f64,
            pub h: f64,
        }
    }

    #[test]
    fn names_lose_their_paths() {
        assert_eq!(short_type_name::<Point>(), "Point");
        assert_eq!(
            short_type_name::<std::collections::HashMap<u8, other::Rect>>(),
            "HashMap<u8, Rect>"
        );
        assert_eq!(short_type_name::<[u8; 16]>(), "[u8; 16]");
        assert_eq!(short_type_name::<crate::FixedStr<16>>(), "FixedStr<16>");
    }

    #[test]
    fn scalars_get_their_typecodes_and_user_types_a_tag() {
        assert_eq!(ElementType::of::<u64>().code, b'Q');
        assert_eq!(ElementType::of::<f64>().code, b'd');
        assert_eq!(ElementType::of::<u64>().tag, 0);
        let point = ElementType::of::<Point>();
        assert_eq!(point.code, USER_TYPE_CODE);
        assert_ne!(point.tag, 0);
        // One name, one identity, whichever module declares it.
        assert_eq!(point, ElementType::of::<other::Point>());
        assert_ne!(point, ElementType::of::<other::Rect>());
        assert_ne!(ElementType::of::<[u8; 8]>(), ElementType::of::<[u16; 4]>());
    }
}
