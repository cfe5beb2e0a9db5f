//! Word access to shared memory, independent of where the memory lives.
//!
//! The arena and the catalog are written against [`Memory`]: the region implements it over
//! the mapping, [`HeapMemory`] over a vector of atomics (the memory loom models use).
//! Every access is bounds- and alignment-checked, because offsets come from the mapping.

use crate::error::{Error, Result};
use crate::sync::AtomicU64;

/// Byte-addressed memory made of 64-bit atomic words.
pub trait Memory {
    /// Length in bytes.
    fn len(&self) -> u64;

    /// The file the memory maps, if it maps one (for messages).
    fn path(&self) -> Option<&std::path::Path> {
        None
    }

    /// Whether the memory is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The atomic word at byte `offset`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when `offset` is not 8-aligned or the word is out of bounds.
    fn word(&self, offset: u64) -> Result<&AtomicU64>;
}

/// Checks that the 8-byte word at `offset` lies inside `len` bytes and is aligned.
#[inline]
pub(crate) fn check_word(offset: u64, len: u64) -> Result<()> {
    if offset % 8 != 0 || offset.checked_add(8).is_none_or(|end| end > len) {
        return Err(Error::corrupt(
            "offset",
            format!("word offset {offset} is unaligned or outside {len} bytes"),
        ));
    }
    Ok(())
}

/// Process-private memory made of atomics, zero-initialized: what loom models and unit
/// tests hand to the algorithms instead of a mapping.
#[derive(Debug)]
pub struct HeapMemory {
    words: Vec<AtomicU64>,
}

impl HeapMemory {
    /// `len` bytes of zeroed memory (rounded up to whole words).
    pub fn new(len: u64) -> Self {
        let words = (0..len.div_ceil(8)).map(|_| AtomicU64::new(0)).collect();
        Self { words }
    }
}

impl Memory for HeapMemory {
    fn len(&self) -> u64 {
        self.words.len() as u64 * 8
    }

    #[inline]
    fn word(&self, offset: u64) -> Result<&AtomicU64> {
        check_word(offset, self.len())?;
        Ok(&self.words[(offset / 8) as usize])
    }
}
