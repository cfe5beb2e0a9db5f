//! `BlobMap`: a map of byte strings of any length. Short keys and values lie in the
//! slots of a growing [`ByteMap`]; a longer value is kept out of line in an arena block
//! ([`Blob`]), and a longer key is looked up by its BLAKE3 digest, the key itself out of
//! line beside the value (and compared in full on every lookup).
//!
//! ```text
//! key     01 len:u8 bytes                    (up to key_size - 2 bytes)
//!         02 blake3:32                       a longer key, by its digest
//! value   [01 len:u64 offset... : the long key's blob (17 bytes), when the key is a digest]
//!         01 len:u32 bytes                   (up to the room left)
//!         02 offset:u64 len:u64              a longer value, out of line
//! ```
//!
//! Reads of in-slot values take no pin; a value or key out of line is read under a grace
//! pin ([`Region::pin`]), and whoever replaces or removes a record retires the blobs it
//! named ([`Region::retire_blob`]): they return to the arena once no process can still be
//! reading them. A process killed between storing a blob and publishing it, or between
//! unlinking one and retiring it, leaks that blob; nothing is lost or read after its
//! free.

use shmarena_engine::{Blob, Error, GracePin, Region, Result, StagedBlob};

use crate::hash_map::{ByteMap, Updated};

/// Tag of bytes kept in the slot.
const INLINE: u8 = 1;
/// Tag of a key looked up by digest (in a key) or of a blob reference (in a value).
const OUT_OF_LINE: u8 = 2;
/// Bytes of a digest key.
const DIGEST_KEY: usize = 1 + blake3::OUT_LEN;
/// Bytes of a blob reference.
const BLOB_REF: usize = 1 + Blob::ENCODED_LEN;
/// Bytes before an inline value's bytes (tag and length).
const VALUE_HEADER: usize = 5;

/// A named map of byte strings of any length in a region (see the [module
/// docs](crate::blob_map)).
///
/// ```
/// use shmarena::{BlobMap, Region};
/// # let path = std::env::temp_dir().join(format!("shmarena-doc-blobmap-{}", std::process::id()));
/// let region = Region::create(&path, 8 << 20)?;
/// let pages = BlobMap::get_or_create(&region, "pages", 16, 32, 64)?;
/// pages.insert(b"/", b"home")?;
/// let long_key = vec![b'k'; 1000];
/// let large = vec![7u8; 100_000];
/// pages.insert(&long_key, &large)?; // both kept out of line
/// assert_eq!(pages.get(&long_key)?.as_deref(), Some(&large[..]));
/// assert_eq!(pages.remove(b"/")?.as_deref(), Some(&b"home"[..]));
/// assert_eq!(pages.len(), 1);
/// # Region::unlink(&path)?;
/// # Ok::<(), shmarena::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BlobMap {
    map: ByteMap,
}

/// A key as the map stores it.
struct Key {
    stored: Vec<u8>,
    /// The key's bytes, when it is stored by digest.
    long: Option<Vec<u8>>,
}

impl Key {
    /// Where the value's part starts in a record.
    fn value_at(&self) -> usize {
        if self.long.is_some() {
            BLOB_REF
        } else {
            0
        }
    }
}

/// A part of a record to publish: its bytes, and the blob it names until a slot holds it
/// (freed at once if it never does).
struct Part<'r> {
    bytes: Vec<u8>,
    staged: Option<StagedBlob<'r>>,
}

impl<'r> Part<'r> {
    fn blob(region: &'r Region, bytes: &[u8]) -> Result<Self> {
        let staged = region.stage_blob(bytes)?;
        let mut part = Vec::with_capacity(BLOB_REF);
        part.push(OUT_OF_LINE);
        part.extend_from_slice(&staged.blob().to_bytes());
        Ok(Self {
            bytes: part,
            staged: Some(staged),
        })
    }

    fn published(&mut self) {
        if let Some(staged) = self.staged.take() {
            staged.published();
        }
    }
}

/// The blob a stored reference names, if `part` is one.
fn blob_in(part: &[u8]) -> Option<Blob> {
    match part {
        [OUT_OF_LINE, reference @ ..] if reference.len() >= Blob::ENCODED_LEN => Some(
            Blob::from_bytes(reference[..Blob::ENCODED_LEN].try_into().expect("16 bytes")),
        ),
        _ => None,
    }
}

/// The bytes of a value part kept in its slot.
fn read_inline(part: &[u8]) -> Result<Vec<u8>> {
    match part {
        [INLINE, len @ ..] if len.len() >= 4 => {
            let n = u32::from_le_bytes(len[..4].try_into().expect("4 bytes")) as usize;
            part.get(VALUE_HEADER..VALUE_HEADER.saturating_add(n))
                .map(<[u8]>::to_vec)
                .ok_or_else(|| corrupt("an inline value longer than its slot"))
        }
        _ => Err(corrupt("an unknown value tag")),
    }
}

fn corrupt(what: &str) -> Error {
    Error::corrupt("blob map record", what.to_owned())
}

impl BlobMap {
    /// Opens the map `name`, creating it if absent with room for `capacity` entries to
    /// start with (it grows), keys of up to `inline_key` bytes and values of up to
    /// `inline_value` bytes in the slot (longer ones out of line: these are room, not
    /// limits).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for rooms over what a slot can hold; as
    /// [`ByteMap::get_or_create`].
    pub fn get_or_create(
        region: &Region,
        name: &str,
        capacity: u64,
        inline_key: usize,
        inline_value: usize,
    ) -> Result<Self> {
        if inline_key > 255 {
            return Err(Error::InvalidArgument(format!(
                "a blob map keeps keys of up to 255 bytes in the slot ({inline_key} asked)"
            )));
        }
        let key_size = (inline_key + 2).max(DIGEST_KEY);
        let value_size = inline_value
            .checked_add(VALUE_HEADER)
            .map(|size| size.max(2 * BLOB_REF))
            .ok_or_else(|| Error::InvalidArgument("inline_value is too large".to_owned()))?;
        let map = ByteMap::get_or_create(region, name, capacity, key_size, value_size)?;
        Self::checked(map)
    }

    /// Opens the existing map `name`.
    ///
    /// # Errors
    /// As [`ByteMap::open`]; [`Error::TypeMismatch`] for a map whose slots cannot be a
    /// blob map's.
    pub fn open(region: &Region, name: &str) -> Result<Self> {
        Self::checked(ByteMap::open(region, name)?)
    }

    fn checked(map: ByteMap) -> Result<Self> {
        if map.key_size() < DIGEST_KEY || map.value_size() < 2 * BLOB_REF {
            return Err(Error::TypeMismatch {
                name: map.name().to_owned(),
                expected: "a blob map (keys of at least 33 bytes, values of at least 34)"
                    .to_owned(),
                found: format!(
                    "a map of {}-byte keys and {}-byte values",
                    map.key_size(),
                    map.value_size()
                ),
            });
        }
        Ok(Self { map })
    }

    fn region(&self) -> &Region {
        self.map.region()
    }

    fn key(&self, key: &[u8]) -> Key {
        if key.len() + 2 <= self.map.key_size() {
            let mut stored = Vec::with_capacity(key.len() + 2);
            stored.push(INLINE);
            stored.push(key.len() as u8);
            stored.extend_from_slice(key);
            return Key { stored, long: None };
        }
        let mut stored = Vec::with_capacity(DIGEST_KEY);
        stored.push(OUT_OF_LINE);
        stored.extend_from_slice(blake3::hash(key).as_bytes());
        Key {
            stored,
            long: Some(key.to_vec()),
        }
    }

    /// The part that stores `value` after a key stored as `key`.
    fn value_part<'r>(&'r self, key: &Key, value: &[u8]) -> Result<Part<'r>> {
        let room = self.map.value_size() - key.value_at();
        if value.len() + VALUE_HEADER <= room {
            let mut bytes = Vec::with_capacity(VALUE_HEADER + value.len());
            bytes.push(INLINE);
            bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
            bytes.extend_from_slice(value);
            return Ok(Part {
                bytes,
                staged: None,
            });
        }
        Part::blob(self.region(), value)
    }

    /// The bytes a stored value part holds (its blob read under `pin`).
    fn read_part(&self, part: &[u8], pin: &GracePin<'_>) -> Result<Vec<u8>> {
        match blob_in(part) {
            Some(blob) => self.region().read_blob(blob, pin),
            None => read_inline(part),
        }
    }

    /// The value a record holds for `key`, after checking a long key's stored bytes.
    fn read_record(&self, key: &Key, record: &[u8], pin: &GracePin<'_>) -> Result<Vec<u8>> {
        if let Some(long) = &key.long {
            let stored = blob_in(record)
                .ok_or_else(|| corrupt("a long key without its reference"))
                .and_then(|blob| self.region().read_blob(blob, pin))?;
            if stored != *long {
                return Err(corrupt("a different key under the same BLAKE3 digest"));
            }
        }
        self.read_part(record.get(key.value_at()..).unwrap_or_default(), pin)
    }

    /// The value of `key`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a record no blob map writes; as [`ByteMap::get`].
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = self.key(key);
        if key.long.is_none() {
            // A value in the slot is read without a pin.
            let inline = self.map.get_with(&key.stored, |record| {
                blob_in(record).is_none().then(|| read_inline(record))
            })?;
            match inline {
                None => return Ok(None),
                Some(Some(value)) => return value.map(Some),
                Some(None) => {} // out of line: read again, pinned
            }
        }
        let pin = self.region().pin()?;
        match self.map.get(&key.stored)? {
            Some(record) => self.read_record(&key, &record, &pin).map(Some),
            None => Ok(None),
        }
    }

    /// Whether `key` is present.
    ///
    /// # Errors
    /// As [`Self::get`].
    pub fn contains_key(&self, key: &[u8]) -> Result<bool> {
        let stored = self.key(key);
        if stored.long.is_none() {
            return self.map.contains_key(&stored.stored);
        }
        Ok(self.get(key)?.is_some())
    }

    /// Stores `value` at `key`.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the region has no room for the value (or the table's
    /// growth); nothing is stored then. As [`ByteMap::insert`].
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let key = self.key(key);
        let mut part = self.value_part(&key, value)?;
        let at = key.value_at();
        let mut replaced = None;
        for _ in 0..1 << 16 {
            let outcome = self.map.update_with(&key.stored, |current, new| {
                new[..at].copy_from_slice(&current[..at]);
                new[at..at + part.bytes.len()].copy_from_slice(&part.bytes);
                replaced = blob_in(&current[at..]);
                true
            })?;
            if outcome == Updated::Done {
                part.published();
                return replaced.map_or(Ok(()), |blob| self.region().retire_blob(blob));
            }
            let mut key_part = key
                .long
                .as_ref()
                .map(|long| Part::blob(self.region(), long))
                .transpose()?;
            let mut record = Vec::with_capacity(at + part.bytes.len());
            if let Some(key_part) = &key_part {
                record.extend_from_slice(&key_part.bytes);
            }
            record.extend_from_slice(&part.bytes);
            if self.map.try_insert(&key.stored, &record)?.is_none() {
                part.published();
                if let Some(key_part) = &mut key_part {
                    key_part.published();
                }
                return Ok(());
            }
        }
        Err(Error::Contended("blob map insert"))
    }

    /// Removes `key`; its value if it was present.
    ///
    /// # Errors
    /// As [`Self::get`].
    pub fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = self.key(key);
        let pin = self.region().pin()?;
        if key.long.is_some() {
            // The stored key is checked first (a digest match is taken for equality
            // below).
            match self.map.get(&key.stored)? {
                Some(record) => self.read_record(&key, &record, &pin)?,
                None => return Ok(None),
            };
        }
        let Some(record) = self.map.remove(&key.stored)? else {
            return Ok(None);
        };
        let value = self.read_record(&key, &record, &pin);
        drop(pin);
        if key.long.is_some() {
            if let Some(blob) = blob_in(&record) {
                self.region().retire_blob(blob)?;
            }
        }
        if let Some(blob) = blob_in(record.get(key.value_at()..).unwrap_or_default()) {
            self.region().retire_blob(blob)?;
        }
        value.map(Some)
    }

    /// Entries (see [`ByteMap::len`]).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map looks empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every (key, value), a snapshot read under one pin (each entry as it was when read).
    ///
    /// # Errors
    /// As [`Self::get`].
    pub fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let pin = self.region().pin()?;
        self.map
            .iter()
            .map(|entry| {
                let (stored, record) = entry?;
                let (key, at) = match stored.as_slice() {
                    [INLINE, len, bytes @ ..] => (
                        bytes
                            .get(..usize::from(*len))
                            .ok_or_else(|| corrupt("an inline key longer than its slot"))?
                            .to_vec(),
                        0,
                    ),
                    [OUT_OF_LINE, ..] => {
                        let blob = blob_in(&record)
                            .ok_or_else(|| corrupt("a long key without its reference"))?;
                        (self.region().read_blob(blob, &pin)?, BLOB_REF)
                    }
                    _ => return Err(corrupt("an unknown key tag")),
                };
                let value = self.read_part(record.get(at..).unwrap_or_default(), &pin)?;
                Ok((key, value))
            })
            .collect()
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.map.name()
    }
}
