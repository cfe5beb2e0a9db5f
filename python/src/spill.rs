//! Python objects too large for their slot, kept out of line: a slot holds a reference to
//! an arena block with the encoding ([`shmarena::Blob`]), read under a grace pin and
//! retired by whoever unlinks it; a dict key too long for its slot is looked up by its
//! BLAKE3 digest, with the key itself out of line beside its value.
//!
//! ```text
//! spilled  0e offset:u64 len:u64   the encoding lies in the arena block at offset
//! digest   0f blake3:32            (keys only) a key looked up by its digest
//! ```
//!
//! Both tags lie outside [`crate::codec`]'s, so no encoding is mistaken for them, and
//! the codec rejects them (as corrupt) should one ever reach it unresolved.

use std::borrow::Cow;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use shmarena::{Blob, GracePin, Region, StagedBlob};

use crate::codec::Encoded;
use crate::errors::{CorruptError, IntoPy};

/// Tag of a part kept out of line.
pub const SPILLED: u8 = 14;
/// Bytes of a spilled part.
pub const SPILLED_LEN: usize = 1 + Blob::ENCODED_LEN;
/// Tag of a key looked up by its digest.
pub const DIGEST: u8 = 15;
/// Bytes of a digest key.
pub const DIGEST_LEN: usize = 1 + blake3::OUT_LEN;

/// The blob a stored part names, if it is spilled.
pub fn spilled(part: &[u8]) -> Option<Blob> {
    match part {
        [SPILLED, reference @ ..] if reference.len() >= Blob::ENCODED_LEN => Some(
            Blob::from_bytes(reference[..Blob::ENCODED_LEN].try_into().expect("16 bytes")),
        ),
        _ => None,
    }
}

/// Whether a key in the map is a digest (the key itself is out of line).
pub fn is_digest(map_key: &[u8]) -> bool {
    map_key.first() == Some(&DIGEST)
}

/// The map key of a key encoding too long for its slot.
pub fn digest(encoded: &[u8]) -> Encoded {
    let mut key = Encoded::new();
    key.push(DIGEST);
    key.extend_from_slice(blake3::hash(encoded).as_bytes());
    key
}

/// A part to store in a slot: the encoding itself when it fits `room`, else a reference to
/// a new blob. A blob that was never published is freed when the part drops: mark it
/// [`published`](Self::published) once a slot holds it.
pub struct Part<'r> {
    pub bytes: Encoded,
    staged: Option<StagedBlob<'r>>,
}

impl<'r> Part<'r> {
    /// The part for `encoded` in `room` bytes (`what` names the object in an error).
    pub fn new(region: &'r Region, encoded: Encoded, room: usize, what: &str) -> PyResult<Self> {
        if encoded.len() <= room {
            return Ok(Self {
                bytes: encoded,
                staged: None,
            });
        }
        if room < SPILLED_LEN {
            return Err(PyValueError::new_err(format!(
                "{what} too large: it takes {} bytes, and this object, made by an older \
                 version, has room for {room} and none for a reference to larger ones",
                encoded.len()
            )));
        }
        Self::out_of_line(region, &encoded)
    }

    /// The part for `encoded` stored out of line, whatever its size.
    pub fn out_of_line(region: &'r Region, encoded: &[u8]) -> PyResult<Self> {
        let staged = region.stage_blob(encoded).py()?;
        let mut bytes = Encoded::new();
        bytes.push(SPILLED);
        bytes.extend_from_slice(&staged.blob().to_bytes());
        Ok(Self {
            bytes,
            staged: Some(staged),
        })
    }

    /// A slot holds the part now: its blob is no longer ours to free.
    pub fn published(&mut self) {
        if let Some(staged) = self.staged.take() {
            staged.published();
        }
    }
}

/// The encoding a stored part holds: itself, or its blob's bytes (read under `pin`,
/// taken before the slot was read).
pub fn resolve<'a>(region: &Region, part: &'a [u8], pin: &GracePin<'_>) -> PyResult<Cow<'a, [u8]>> {
    match spilled(part) {
        Some(blob) => Ok(Cow::Owned(region.read_blob(blob, pin).py()?)),
        None => Ok(Cow::Borrowed(part)),
    }
}

/// Retires the blob of a part the caller has just unlinked from its slot, if it has one.
pub fn retire(region: &Region, part: &[u8]) -> PyResult<()> {
    match spilled(part) {
        Some(blob) => region.retire_blob(blob).py(),
        None => Ok(()),
    }
}

/// The error for a long key whose digest matched a different key.
pub fn digest_collision() -> PyErr {
    CorruptError::new_err(
        "two different keys share a BLAKE3 digest (or the key stored beside the entry is \
         corrupt)",
    )
}
