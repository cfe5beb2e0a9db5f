//! `Manager().dict()`, `.list()`, `.set()` and `Queue()` on the lock-free shared
//! structures, holding Python objects through [`crate::codec`].

use std::sync::atomic::{AtomicU32, Ordering};

use pyo3::exceptions::{
    PyAssertionError, PyIndexError, PyKeyError, PyOSError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySet, PySlice, PyTuple};
use shmarena::hash_map::Updated;
use shmarena::{ByteMap, ByteQueue, ByteSet, ByteUnboundedQueue, GracePin};

use crate::codec::{Codec, Encoded, HEADER};
use crate::errors::{queue_error, FullError, IntoPy};
use crate::region::PyRegion;
use crate::spill::{self, Part, DIGEST_LEN, SPILLED_LEN};
use crate::wait::{blocking, timeout_of};

/// Payload room every record has, whatever the limit asked: an int or a float always
/// fits.
const MIN_PAYLOAD: usize = 8;

/// Bytes of a record with room for a payload of `max_bytes` (at least [`MIN_PAYLOAD`]).
fn record_size(max_bytes: usize, what: &str) -> PyResult<usize> {
    max_bytes
        .max(MIN_PAYLOAD)
        .checked_add(HEADER)
        .filter(|&size| u16::try_from(size).is_ok())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{what} can be at most {} bytes",
                usize::from(u16::MAX) - HEADER
            ))
        })
}

/// The object a constructor asked for: opened when `capacity` is `None`, else opened or
/// created by `create(capacity, record size for max_item_bytes)` (with the GIL released:
/// creating may wait for another process creating the same name).
fn open_or_create<T: Send>(
    py: Python<'_>,
    capacity: Option<u64>,
    max_item_bytes: usize,
    create: impl FnOnce(u64, usize) -> shmarena::Result<T> + Send,
    open: impl FnOnce() -> shmarena::Result<T>,
) -> PyResult<T> {
    match capacity {
        Some(capacity) => {
            let size = record_size(max_item_bytes, "max_item_bytes")?;
            py.detach(|| create(capacity, size)).py()
        }
        None => open().py(),
    }
}

/// `TypeError` for an object of the right kind but record sizes no Python object has
/// (one a Rust program made with a small element type).
fn check_records(name: &str, sizes: &[usize], least: usize) -> PyResult<()> {
    if sizes.iter().any(|&size| size < least) {
        return Err(PyTypeError::new_err(format!(
            "{name:?} was not made by shmarena's Python package (its elements are too small \
             to hold Python objects)"
        )));
    }
    Ok(())
}

/// Bytes before a dict value's encoding: the entry's insertion number, which orders
/// iteration as a Python dict does (by first insertion; replacing keeps the place).
const ORDER: usize = 8;

/// `Manager().dict()` with no broker: a lock-free hash map in the region, which grows as
/// entries arrive. Keys and values are None, bool, int, float, str, bytes or tuples of
/// them (other objects with `pickle=True`), of any size: those over the slot's room
/// (`max_key_bytes`, `max_value_bytes`) are kept out of line in arena blocks. Iteration
/// follows insertion order, as in a Python dict.
#[pyclass(module = "shmarena._shmarena", name = "Dict", frozen, mapping)]
pub struct PyDictProxy {
    map: ByteMap,
    /// Hands out insertion numbers.
    order: shmarena::Value<u64>,
    codec: Codec,
    region: Py<PyRegion>,
}

/// A key as the map knows it: its encoding, or for one too long for the slot, its digest
/// (and the encoding, kept out of line beside the value).
struct Key {
    map_key: Encoded,
    long: Option<Encoded>,
}

impl Key {
    /// Where the value's part starts in a record.
    fn value_at(&self) -> usize {
        value_at(&self.map_key)
    }
}

/// An entry read from the map under a pin: insertion number, map key, key encoding,
/// value encoding.
struct Entry {
    order: u64,
    map_key: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

/// What a lookup of a key that fits the slot found there.
enum InSlot<'py> {
    /// The key is absent.
    Absent,
    /// Its value, decoded.
    Value(Bound<'py, PyAny>),
    /// Its value lies out of line: it is read again, pinned.
    OutOfLine,
}

/// A record's insertion number.
fn order_of(record: &[u8]) -> PyResult<u64> {
    record
        .get(..ORDER)
        .map(|order| u64::from_le_bytes(order.try_into().expect("8 bytes")))
        .ok_or_else(|| crate::errors::CorruptError::new_err("a dict value is too short"))
}

/// Where a record's value part starts, given its map key: after the insertion number and,
/// for a long key (a digest), the reference to the key.
fn value_at(map_key: &[u8]) -> usize {
    ORDER
        + if spill::is_digest(map_key) {
            SPILLED_LEN
        } else {
            0
        }
}

/// A record's part at `at..` (or empty when the record is too short: corrupt, decoded as
/// such).
fn part_at(record: &[u8], at: usize) -> &[u8] {
    record.get(at..).unwrap_or_default()
}

impl PyDictProxy {
    fn rust_region(&self) -> &shmarena::Region {
        self.map.region()
    }

    /// The map key of `encoded`, or `None` when this dict cannot hold it (a long key in a
    /// dict an older version made without room for the reference to it).
    fn map_key(&self, encoded: Encoded) -> Option<Key> {
        if encoded.len() <= self.map.key_size() {
            return Some(Key {
                map_key: encoded,
                long: None,
            });
        }
        let room = self.map.value_size().saturating_sub(ORDER);
        (self.map.key_size() >= DIGEST_LEN && room >= 2 * SPILLED_LEN).then(|| Key {
            map_key: spill::digest(&encoded),
            long: Some(encoded),
        })
    }

    fn key(&self, key: &Bound<'_, PyAny>) -> PyResult<Key> {
        let encoded = self.codec.encode_key(key)?;
        let len = encoded.len();
        self.map_key(encoded).ok_or_else(|| {
            PyValueError::new_err(format!(
                "dict key too large: it takes {} bytes, and this dict, made by an older \
                 version, holds keys of up to {}",
                len.saturating_sub(HEADER),
                self.map.key_size().saturating_sub(HEADER)
            ))
        })
    }

    /// The map key of `key` for a lookup: `None` when no key of this dict can equal it.
    fn lookup_key(&self, key: &Bound<'_, PyAny>) -> PyResult<Option<Key>> {
        Ok(self.map_key(self.codec.encode_key(key)?))
    }

    /// The part to store for the value `encoded` beside `key`.
    fn value_part(&self, key: &Key, encoded: Encoded) -> PyResult<Part<'_>> {
        let room = self.map.value_size().saturating_sub(key.value_at());
        Part::new(self.rust_region(), encoded, room, "dict value")
    }

    /// The encoding of a value.
    fn value(&self, value: &Bound<'_, PyAny>) -> PyResult<Encoded> {
        self.codec.encode_value(value)
    }

    /// The value encoding `record` holds for `key` (read under `pin`), after checking
    /// that a long key's stored encoding is the key's.
    fn resolve(&self, key: &Key, record: &[u8], pin: &GracePin<'_>) -> PyResult<Vec<u8>> {
        let region = self.rust_region();
        if let Some(long) = &key.long {
            let stored = spill::resolve(region, part_at(record, ORDER), pin)?;
            if stored.as_ref() != long.as_slice() {
                return Err(spill::digest_collision());
            }
        }
        Ok(spill::resolve(region, part_at(record, key.value_at()), pin)?.into_owned())
    }

    /// The value of the Python key `key`, decoded, if present: [`Self::find`] of its map
    /// key, where a key that fits the slot is looked up by its encoding as it is (no `Key`
    /// built and moved for it: the common case).
    fn find_key<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let encoded = self.codec.encode_key(key)?;
        if encoded.len() > self.map.key_size() {
            return match self.map_key(encoded) {
                Some(key) => self.find(py, &key),
                None => Ok(None),
            };
        }
        match self.find_in_slot(py, &encoded)? {
            InSlot::Absent => Ok(None),
            InSlot::Value(value) => Ok(Some(value)),
            InSlot::OutOfLine => self.find_pinned(
                py,
                &Key {
                    map_key: encoded,
                    long: None,
                },
            ),
        }
    }

    /// The value of a key that fits the slot (`map_key`, its encoding), if present and
    /// in the slot: decoded in place, without pinning ([`InSlot`]).
    fn find_in_slot<'py>(&self, py: Python<'py>, map_key: &[u8]) -> PyResult<InSlot<'py>> {
        let inline = self
            .map
            .get_with(map_key, |record| {
                let part = part_at(record, ORDER);
                spill::spilled(part)
                    .is_none()
                    .then(|| self.codec.decode(py, part))
            })
            .py()?;
        match inline {
            None => Ok(InSlot::Absent),
            Some(Some(value)) => value.map(InSlot::Value),
            Some(None) => Ok(InSlot::OutOfLine),
        }
    }

    /// The value of `key`, decoded, if present.
    fn find<'py>(&self, py: Python<'py>, key: &Key) -> PyResult<Option<Bound<'py, PyAny>>> {
        if key.long.is_none() {
            // Most values lie in the slot: decode them in place, without pinning.
            match self.find_in_slot(py, &key.map_key)? {
                InSlot::Absent => return Ok(None),
                InSlot::Value(value) => return Ok(Some(value)),
                InSlot::OutOfLine => {} // read it again, pinned
            }
        }
        self.find_pinned(py, key)
    }

    /// [`Self::find`] under a pin, for a value that may lie out of line.
    fn find_pinned<'py>(&self, py: Python<'py>, key: &Key) -> PyResult<Option<Bound<'py, PyAny>>> {
        let pin = self.rust_region().pin().py()?;
        match self.map.get(&key.map_key).py()? {
            Some(record) => {
                let value = self.resolve(key, &record, &pin)?;
                drop(pin);
                self.codec.decode(py, &value).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Retires what a record the caller just unlinked (removed) kept out of line.
    fn retire_record(&self, map_key: &[u8], record: &[u8]) -> PyResult<()> {
        let region = self.rust_region();
        if spill::is_digest(map_key) {
            spill::retire(region, part_at(record, ORDER))?;
        }
        spill::retire(region, part_at(record, value_at(map_key)))
    }

    /// Removes `key`; its value encoding if it was present.
    fn take(&self, key: &Key) -> PyResult<Option<Vec<u8>>> {
        let pin = self.rust_region().pin().py()?;
        if key.long.is_some() {
            // Check the stored key first (a digest match is taken for equality below).
            match self.map.get(&key.map_key).py()? {
                Some(record) => self.resolve(key, &record, &pin)?,
                None => return Ok(None),
            };
        }
        let Some(record) = self.map.remove(&key.map_key).py()? else {
            return Ok(None);
        };
        let value = self.resolve(key, &record, &pin);
        drop(pin);
        self.retire_record(&key.map_key, &record)?;
        value.map(Some)
    }

    /// A record for a new entry: the next insertion number, the reference to a long key,
    /// and `value`'s part.
    fn fresh(&self, key_part: Option<&Part<'_>>, value: &Part<'_>) -> Vec<u8> {
        let mut record = Vec::with_capacity(ORDER + SPILLED_LEN + value.bytes.len());
        record.extend_from_slice(&self.order.fetch_add(1).to_le_bytes());
        if let Some(key_part) = key_part {
            record.extend_from_slice(&key_part.bytes);
        }
        record.extend_from_slice(&value.bytes);
        record
    }

    /// Inserts `value` at `key` if absent: `None` when inserted, else the record present
    /// (read while the caller's pin holds its blobs).
    fn insert_new(&self, key: &Key, value: &mut Part<'_>) -> PyResult<Option<Vec<u8>>> {
        let mut key_part = match &key.long {
            Some(long) => Some(Part::out_of_line(self.rust_region(), long)?),
            None => None,
        };
        let present = self
            .map
            .try_insert(&key.map_key, &self.fresh(key_part.as_ref(), value))
            .py()?;
        if present.is_none() {
            value.published();
            if let Some(key_part) = &mut key_part {
                key_part.published();
            }
        }
        Ok(present)
    }

    /// Stores `value` (an encoding) at `key`, keeping the entry's place if it exists.
    fn store(&self, key: &Key, value: Encoded) -> PyResult<()> {
        let mut part = self.value_part(key, value)?;
        let at = key.value_at();
        let mut replaced = None;
        for _ in 0..1 << 16 {
            let outcome = self
                .map
                .update_with(&key.map_key, |current, new| {
                    new[..at].copy_from_slice(&current[..at]);
                    new[at..at + part.bytes.len()].copy_from_slice(&part.bytes);
                    replaced = spill::spilled(&current[at..]);
                    true
                })
                .py()?;
            if outcome == Updated::Done {
                part.published();
                return match replaced {
                    Some(blob) => self.rust_region().retire_blob(blob).py(),
                    None => Ok(()),
                };
            }
            if self.insert_new(key, &mut part)?.is_none() {
                return Ok(());
            }
        }
        Err(crate::errors::ShmarenaError::new_err(
            "dict store: the key kept changing",
        ))
    }

    /// Stores `value` (an encoding) at `key` if its record is still `seen`, keeping the
    /// entry's place; whether it did (false: changed or removed meanwhile). The caller's
    /// pin, held since `seen` was read, keeps `seen`'s blobs from being reused, so equal
    /// records mean the same value.
    fn replace_if_unchanged(
        &self,
        key: &Key,
        seen: &[u8],
        value: Encoded,
        _pin: &GracePin<'_>,
    ) -> PyResult<bool> {
        let mut part = self.value_part(key, value)?;
        let at = key.value_at();
        let outcome = self
            .map
            .update_with(&key.map_key, |current, new| {
                if current != seen {
                    return false;
                }
                new[..at].copy_from_slice(&current[..at]);
                new[at..at + part.bytes.len()].copy_from_slice(&part.bytes);
                true
            })
            .py()?;
        if outcome != Updated::Done {
            return Ok(false);
        }
        part.published();
        spill::retire(self.rust_region(), part_at(seen, at))?;
        Ok(true)
    }

    /// The entries, in insertion order.
    fn ordered(&self) -> PyResult<Vec<Entry>> {
        let region = self.rust_region();
        let pin = region.pin().py()?;
        let mut entries = self
            .map
            .iter()
            .map(|entry| {
                let (map_key, record) = entry.py()?;
                let key = if spill::is_digest(&map_key) {
                    spill::resolve(region, part_at(&record, ORDER), &pin)?.into_owned()
                } else {
                    map_key.clone()
                };
                let value = spill::resolve(region, part_at(&record, value_at(&map_key)), &pin)?
                    .into_owned();
                Ok(Entry {
                    order: order_of(&record)?,
                    map_key,
                    key,
                    value,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        drop(pin);
        entries.sort_unstable_by_key(|entry| entry.order);
        Ok(entries)
    }

    fn entries<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        self.ordered()?
            .iter()
            .map(|entry| {
                Ok((
                    self.codec.decode(py, &entry.key)?,
                    self.codec.decode(py, &entry.value)?,
                ))
            })
            .collect()
    }
}

#[pymethods]
impl PyDictProxy {
    /// Opens the dict `name` in `region`, creating it if absent with room for `capacity`
    /// entries to start with (rounded up to a power of two; it grows past them). Keys of
    /// up to `max_key_bytes` and values of up to `max_value_bytes` (a str's UTF-8 bytes, a
    /// bytes' length) lie in the slot; larger ones are kept out of line, so these are
    /// hints, not limits. With `capacity=None` the dict must exist.
    #[new]
    #[pyo3(signature = (region, name, capacity = None, max_key_bytes = 64, max_value_bytes = 64, pickle = false))]
    fn new(
        py: Python<'_>,
        region: &Bound<'_, PyRegion>,
        name: &str,
        capacity: Option<u64>,
        max_key_bytes: usize,
        max_value_bytes: usize,
        pickle: bool,
    ) -> PyResult<Self> {
        let rust_region = region.get().region();
        let map = match capacity {
            Some(capacity) => {
                // Room for a digest key, and for a long key's reference and a spilled value.
                let key_size = record_size(max_key_bytes, "max_key_bytes")?.max(DIGEST_LEN);
                let value_size = record_size(max_value_bytes, "max_value_bytes")?
                    .max(2 * SPILLED_LEN)
                    .checked_add(ORDER)
                    .filter(|&size| u16::try_from(size).is_ok())
                    .ok_or_else(|| PyValueError::new_err("max_value_bytes is too large"))?;
                py.detach(|| {
                    ByteMap::get_or_create(rust_region, name, capacity, key_size, value_size)
                })
            }
            None => ByteMap::open(rust_region, name),
        }
        .py()?;
        check_records(
            name,
            &[map.value_size(), map.key_size() + ORDER],
            ORDER + HEADER + MIN_PAYLOAD,
        )?;
        let order =
            shmarena::Value::get_or_create(rust_region, &format!("{name}.order"), 0u64).py()?;
        Ok(Self {
            map,
            order,
            codec: Codec {
                pickle,
                allow_shared: region.get().allows_shared(),
            },
            region: region.clone().unbind(),
        })
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.find_key(py, key)?
            .ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))
    }

    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.store(&self.key(key)?, self.value(value)?)
    }

    fn __delitem__(&self, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let removed = match self.lookup_key(key)? {
            Some(encoded) => self.take(&encoded)?,
            None => None,
        };
        match removed {
            Some(_) => Ok(()),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let py = key.py();
        let encoded = match self.codec.encode_key(key) {
            Ok(encoded) => encoded,
            Err(error) if error.is_instance_of::<PyTypeError>(py) => return Ok(false),
            Err(error) => return Err(error),
        };
        // A key that fits the slot by its encoding as it is (as `find_key`).
        if encoded.len() <= self.map.key_size() {
            return self.map.contains_key(&encoded).py();
        }
        match self.map_key(encoded) {
            Some(key) => Ok(self.find(py, &key)?.is_some()),
            None => Ok(false), // no key of this dict can equal it
        }
    }

    fn __len__(&self) -> usize {
        self.map.len()
    }

    /// An iterator over the keys, as a dict's: `RuntimeError` once the dict's size (or
    /// its keys) changed since the iterator was made.
    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<PyDictIter> {
        let this = slf.get();
        let keys: Vec<(Vec<u8>, Vec<u8>)> = this
            .ordered()?
            .into_iter()
            .map(|entry| (entry.map_key, entry.key))
            .collect();
        Ok(PyDictIter {
            size: keys.len(),
            keys: keys.into_iter(),
            dict: slf.clone().unbind(),
            state: IterState::Running,
        })
    }

    /// The keys, as a list (a snapshot, as `Manager().dict().keys()` returns).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let keys: Vec<_> = self
            .ordered()?
            .iter()
            .map(|entry| self.codec.decode(py, &entry.key))
            .collect::<PyResult<_>>()?;
        PyList::new(py, keys)
    }

    /// The values, as a list.
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let values: Vec<_> = self
            .ordered()?
            .iter()
            .map(|entry| self.codec.decode(py, &entry.value))
            .collect::<PyResult<_>>()?;
        PyList::new(py, values)
    }

    /// The (key, value) pairs, as a list.
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.entries(py)?)
    }

    /// `d[key]` if present, else `default`.
    #[pyo3(signature = (key, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let found = self.find_key(py, key)?;
        Ok(found.unwrap_or_else(|| default.unwrap_or_else(|| py.None().into_bound(py))))
    }

    /// Removes `key` and returns its value; `default` (or `KeyError`) if absent.
    #[pyo3(signature = (key, *default))]
    fn pop<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let removed = match self.lookup_key(key)? {
            Some(encoded) => self.take(&encoded)?,
            None => None,
        };
        match removed {
            Some(value) => self.codec.decode(py, &value),
            None if !default.is_empty() => default.get_item(0),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    /// Removes and returns the last inserted (key, value) pair; `KeyError` when empty.
    fn popitem<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        for entry in self.ordered()?.into_iter().rev() {
            let long = spill::is_digest(&entry.map_key).then(|| Encoded::from_slice(&entry.key));
            let key = Key {
                map_key: entry.map_key.into(),
                long,
            };
            if let Some(value) = self.take(&key)? {
                return Ok((
                    self.codec.decode(py, &entry.key)?,
                    self.codec.decode(py, &value)?,
                ));
            }
        }
        Err(PyKeyError::new_err("popitem(): dictionary is empty"))
    }

    /// The value of `key`, inserting `default` first if it is absent (atomically: of
    /// many processes racing, one inserts and all see its value).
    #[pyo3(signature = (key, default = None))]
    fn setdefault<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let default = default.unwrap_or_else(|| py.None().into_bound(py));
        let key = self.key(key)?;
        if let Some(present) = self.find(py, &key)? {
            return Ok(present);
        }
        let mut part = self.value_part(&key, self.value(&default)?)?;
        let pin = self.rust_region().pin().py()?;
        match self.insert_new(&key, &mut part)? {
            Some(present) => {
                let value = self.resolve(&key, &present, &pin)?;
                self.codec.decode(py, &value)
            }
            None => Ok(default),
        }
    }

    /// Adds the entries of a mapping or of (key, value) pairs, then of `kwargs`.
    #[pyo3(signature = (other = None, **kwargs))]
    fn update(
        &self,
        other: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        if let Some(other) = other {
            if other.hasattr("keys")? {
                for key in other.call_method0("keys")?.try_iter()? {
                    let key = key?;
                    let value = other.get_item(&key)?;
                    self.__setitem__(&key, &value)?;
                }
            } else {
                for pair in other.try_iter()? {
                    let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
                    self.__setitem__(&key, &value)?;
                }
            }
        }
        if let Some(kwargs) = kwargs {
            for (key, value) in kwargs.iter() {
                self.__setitem__(&key, &value)?;
            }
        }
        Ok(())
    }

    /// Removes every entry (one by one: not atomic as a whole).
    fn clear(&self) -> PyResult<()> {
        for entry in self.map.iter() {
            let (map_key, _) = entry.py()?;
            if let Some(record) = self.map.remove(&map_key).py()? {
                self.retire_record(&map_key, &record)?;
            }
        }
        Ok(())
    }

    /// A plain dict with the entries (a snapshot).
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (key, value) in self.entries(py)? {
            dict.set_item(key, value)?;
        }
        Ok(dict)
    }

    /// Adds `delta` to the number at `key` atomically, starting from 0 when absent;
    /// returns the new value. What `d[k] = d.get(k, 0) + delta` means, without the race.
    #[pyo3(signature = (key, delta = None))]
    fn add<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        delta: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let one = 1i64.into_pyobject(py)?.into_any();
        let delta = delta.unwrap_or(&one);
        let key = self.key(key)?;
        let at = key.value_at();
        // A counter's common case, an int delta on an int value, stays in Rust inside
        // the update; anything else is computed by Python outside it and stored only if
        // the value is still the one it was computed from (no Python code runs while the
        // update holds the key).
        let small_delta = if delta.is_instance_of::<pyo3::types::PyBool>() {
            None
        } else {
            delta.extract::<i64>().ok()
        };
        for _ in 0..1 << 16 {
            let mut small_sum = None;
            let mut seen: Option<Vec<u8>> = None;
            let pin = self.rust_region().pin().py()?;
            let outcome = self
                .map
                .update_with(&key.map_key, |current, new| {
                    if let Some((sum, encoded)) = small_delta
                        .and_then(|delta| crate::codec::add_small_int(&current[at..], delta))
                    {
                        small_sum = Some(sum);
                        new[..at].copy_from_slice(&current[..at]);
                        new[at..at + encoded.len()].copy_from_slice(&encoded);
                        return true;
                    }
                    seen = Some(current.to_vec());
                    false
                })
                .py()?;
            match (outcome, small_sum, seen) {
                (Updated::Done, Some(sum), _) => return Ok(sum.into_pyobject(py)?.into_any()),
                (Updated::Declined, _, Some(seen)) => {
                    let current = self.codec.decode(py, &self.resolve(&key, &seen, &pin)?)?;
                    let sum = current.add(delta)?;
                    if self.replace_if_unchanged(&key, &seen, self.value(&sum)?, &pin)? {
                        return Ok(sum);
                    }
                }
                (Updated::Absent, _, _) => {
                    let start = delta.add(0i64)?;
                    let mut part = self.value_part(&key, self.value(&start)?)?;
                    if self.insert_new(&key, &mut part)?.is_none() {
                        return Ok(start);
                    }
                }
                _ => {}
            }
        }
        Err(crate::errors::ShmarenaError::new_err(
            "dict add: the key kept changing",
        ))
    }

    /// Stores `new` at `key` if its value is `expected`: `(True, expected)` when it did,
    /// `(False, actual)` when the value differs (compared as Python compares: a stored
    /// 1.0 equals an expected 1), `KeyError` when the key is absent.
    fn compare_exchange<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        expected: &Bound<'py, PyAny>,
        new: &Bound<'py, PyAny>,
    ) -> PyResult<(bool, Bound<'py, PyAny>)> {
        let new_bytes = self.value(new)?;
        let key = self.key(key)?;
        for _ in 0..1 << 16 {
            let pin = self.rust_region().pin().py()?;
            let Some(seen) = self.map.get(&key.map_key).py()? else {
                return Err(PyKeyError::new_err(key_object(py, &key, self.codec)?));
            };
            let current = self.codec.decode(py, &self.resolve(&key, &seen, &pin)?)?;
            if !current.eq(expected)? {
                return Ok((false, current));
            }
            if self.replace_if_unchanged(&key, &seen, new_bytes.clone(), &pin)? {
                return Ok((true, expected.clone()));
            }
        }
        Err(crate::errors::ShmarenaError::new_err(
            "dict compare_exchange: the key kept changing",
        ))
    }

    /// Counts the entries again (after a process died mid-insert, `len` may be one off).
    fn recount(&self) -> usize {
        self.map.recount()
    }

    /// Entries the dict holds before it grows again.
    #[getter]
    fn capacity(&self) -> usize {
        self.map.capacity()
    }

    /// Largest key payload kept in the slot, in bytes (longer keys are kept out of line).
    #[getter]
    fn max_key_bytes(&self) -> usize {
        self.map.key_size().saturating_sub(HEADER)
    }

    /// Largest value payload kept in the slot, in bytes (larger values are kept out of
    /// line).
    #[getter]
    fn max_value_bytes(&self) -> usize {
        self.map.value_size().saturating_sub(HEADER + ORDER)
    }

    /// The object's name in its region.
    #[getter]
    fn name(&self) -> &str {
        self.map.name()
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.copy(py)?.eq(other)
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        crate::region::reduce(
            slf.py(),
            "Dict",
            &this.region,
            this.map.name(),
            (this.codec.pickle,),
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.copy(py)?.repr()?.to_string())
    }
}

/// The Python key a [`Key`] encodes (for an error).
fn key_object(py: Python<'_>, key: &Key, codec: Codec) -> PyResult<Py<PyAny>> {
    let encoded = key.long.as_ref().unwrap_or(&key.map_key);
    Ok(codec.decode(py, encoded)?.unbind())
}

/// `Manager().list()` with no broker: a list in the region with every method of a
/// Python list, each call atomic (as each call to a manager's list is one request the
/// manager serves alone), without a round trip. Appends and item assignments take the
/// list's lock for a few stores; methods that move items (`sort`, `reverse`, `insert`,
/// `remove`, `pop`, `del`, slice assignment) compute on a snapshot outside the lock (so
/// comparisons and key functions may use the list) and store the result only if the list
/// did not change meanwhile. Every change becomes visible in one store of the header word
/// (a rewrite writes the new items under the next generation first), so a process killed
/// at any point leaves the list as it was before its call or as after it; the next caller
/// takes the dead holder's lock and sweeps what the dead call left behind. `len()` never
/// waits.
#[pyclass(module = "shmarena._shmarena", name = "List", frozen, sequence)]
pub struct PyListProxy {
    /// Item `i` of generation `g` under the 8-byte key `g << 32 | i`: created with four
    /// slots per item of capacity (two generations of a full list, as a rewrite writes
    /// the next before dropping the last, at half load); the map grows past them.
    items: ByteMap,
    /// `generation << 32 | length`: the one word a change is published by.
    header: shmarena::Value<u64>,
    /// Bumped by every change: a rewrite computed outside the lock is stored only if the
    /// list did not change meanwhile.
    version: shmarena::Value<u64>,
    lock: shmarena::Lock,
    codec: Codec,
    region: Py<PyRegion>,
}

fn item_key(generation: u64, index: u64) -> [u8; 8] {
    ((generation & 0xffff_ffff) << 32 | (index & 0xffff_ffff)).to_le_bytes()
}

fn header(generation: u64, len: u64) -> u64 {
    (generation & 0xffff_ffff) << 32 | (len & 0xffff_ffff)
}

impl PyListProxy {
    /// What to store for `value`: its encoding, or a reference to it out of line when it
    /// is larger than an item's room.
    fn encode(&self, value: &Bound<'_, PyAny>) -> PyResult<Part<'_>> {
        let encoded = self.codec.encode_value(value)?;
        Part::new(
            self.items.region(),
            encoded,
            self.items.value_size(),
            "list item",
        )
    }

    /// Removes the item under `key` and retires what it kept out of line (call with the
    /// lock held).
    fn remove_item(&self, key: &[u8]) -> PyResult<()> {
        if let Some(old) = self.items.remove(key).py()? {
            spill::retire(self.items.region(), &old)?;
        }
        Ok(())
    }

    /// Most items: the 32-bit index space (the map of items grows as needed).
    fn limit(&self) -> u64 {
        u64::from(u32::MAX)
    }

    /// The published generation and length (the length bounded by the table's slots,
    /// which hold every item, so a corrupted header cannot send reads far past them).
    fn current(&self) -> (u64, u64) {
        let word = self.header.load();
        let slots = self.items.capacity() as u64;
        (word >> 32, (word & 0xffff_ffff).min(slots))
    }

    fn len_now(&self) -> u64 {
        self.current().1
    }

    /// Runs `f` holding the list's lock; `f` runs no Python code (so it cannot come back
    /// to this list, and a Python exception never leaves the lock taken). A holder that
    /// died mid-call published all of its change or none of it: what it wrote outside
    /// the published generation is swept first.
    fn locked<R>(&self, py: Python<'_>, f: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
        let acquired = blocking(py, None, |slice| self.lock.acquire(Some(slice)))?;
        let result = if acquired == Some(shmarena::mutex::Acquired::OwnerDied) {
            self.sweep()
                .and_then(|()| self.lock.mark_consistent().py())
                .and_then(|()| f())
        } else {
            f()
        };
        self.lock.release().py()?;
        result
    }

    /// Removes every item outside the published generation and length (call with the
    /// lock held, after a holder died).
    fn sweep(&self) -> PyResult<()> {
        let (generation, len) = self.current();
        let stray: Vec<Vec<u8>> = self
            .items
            .iter()
            .filter_map(|entry| {
                let key = entry.ok()?.0;
                let word = u64::from_le_bytes(key.get(..8)?.try_into().ok()?);
                let current = word >> 32 == generation & 0xffff_ffff && word & 0xffff_ffff < len;
                (!current).then_some(key)
            })
            .collect();
        for key in stray {
            self.remove_item(&key)?;
        }
        Ok(())
    }

    fn item(&self, generation: u64, index: u64) -> PyResult<Vec<u8>> {
        self.item_pinned(generation, index, &self.items.region().pin().py()?)
    }

    /// An item's bytes, what it keeps out of line read under `pin`.
    fn item_pinned(&self, generation: u64, index: u64, pin: &GracePin<'_>) -> PyResult<Vec<u8>> {
        let stored = self
            .items
            .get(&item_key(generation, index))
            .py()?
            .ok_or_else(|| {
                crate::errors::CorruptError::new_err(format!("list item {index} is missing"))
            })?;
        Ok(spill::resolve(self.items.region(), &stored, pin)?.into_owned())
    }

    /// The version and every item's bytes (call with the lock held; one pin for all).
    fn read_raw(&self) -> PyResult<(u64, Vec<Vec<u8>>)> {
        let (generation, len) = self.current();
        let pin = self.items.region().pin().py()?;
        let items = (0..len)
            .map(|index| self.item_pinned(generation, index, &pin))
            .collect::<PyResult<Vec<_>>>()?;
        Ok((self.version.load(), items))
    }

    /// Every item, as a plain list: one consistent snapshot, decoded outside the lock.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<(u64, Bound<'py, PyList>)> {
        let (version, raw) = self.locked(py, || self.read_raw())?;
        let items = raw
            .iter()
            .map(|bytes| self.codec.decode(py, bytes))
            .collect::<PyResult<Vec<_>>>()?;
        Ok((version, PyList::new(py, items)?))
    }

    /// Replaces the contents with `encoded` (call with the lock held): the new items go
    /// under the next generation, one header store publishes them, then the old go.
    fn write_all(&self, encoded: &mut [Part]) -> PyResult<()> {
        let new_len = encoded.len() as u64;
        if new_len > self.limit() {
            return Err(FullError::new_err(format!(
                "the list holds at most {} items",
                self.limit()
            )));
        }
        let (generation, old_len) = self.current();
        let next = (generation + 1) & 0xffff_ffff;
        let keys = (0..new_len).map(|index| item_key(next, index));
        self.insert_or_undo(keys, encoded)?;
        // The version moves before the header: a rewrite computed before this change can
        // never be stored over it, even if we die between the two.
        self.version.fetch_add(1);
        self.header.store(header(next, new_len));
        for index in 0..old_len {
            self.remove_item(&item_key(generation, index))?;
        }
        Ok(())
    }

    /// Inserts `encoded[i]` under `keys[i]`; on a failure removes what it inserted (a live
    /// caller's failed change leaves nothing behind: the parts' blobs, never read by
    /// anyone, as every read holds the lock, are freed as they drop) and returns the error.
    fn insert_or_undo(
        &self,
        keys: impl Iterator<Item = [u8; 8]>,
        encoded: &mut [Part],
    ) -> PyResult<()> {
        let mut inserted: Vec<[u8; 8]> = Vec::with_capacity(encoded.len());
        for (key, part) in keys.zip(encoded.iter()) {
            if let Err(error) = self.items.insert(&key, &part.bytes) {
                for key in &inserted {
                    let _ = self.items.remove(key);
                }
                return Err(crate::errors::to_py(error));
            }
            inserted.push(key);
        }
        encoded.iter_mut().for_each(Part::published);
        Ok(())
    }

    /// Applies `f` to the contents as a plain list and stores the result: what the
    /// manager's list does for every method that moves items. `f` (and the comparisons
    /// and key functions it calls) runs on a snapshot outside the lock; the result is
    /// stored only if the list is still that snapshot, else `f` runs again on a new one.
    fn rewrite<'py, R>(
        &self,
        py: Python<'py>,
        mut f: impl FnMut(&Bound<'py, PyList>) -> PyResult<R>,
    ) -> PyResult<R> {
        for _ in 0..1 << 16 {
            let (version, list) = self.snapshot(py)?;
            let result = f(&list)?;
            // Every item is encoded first, so a bad one changes nothing.
            let mut encoded = list
                .iter()
                .map(|item| self.encode(&item))
                .collect::<PyResult<Vec<_>>>()?;
            let stored = self.locked(py, || {
                if self.version.load() != version {
                    return Ok(false);
                }
                self.write_all(&mut encoded)?;
                Ok(true)
            })?;
            if stored {
                return Ok(result);
            }
        }
        Err(crate::errors::ShmarenaError::new_err(
            "list: other processes kept changing it",
        ))
    }

    fn index(&self, index: isize) -> PyResult<u64> {
        let len = self.len_now() as isize;
        let index = if index < 0 { index + len } else { index };
        if (0..len).contains(&index) {
            Ok(index as u64)
        } else {
            Err(PyIndexError::new_err("list index out of range"))
        }
    }

    /// Appends `encoded` items (call with the lock held): written past the length, then
    /// published by one header store.
    fn push_all(&self, encoded: &mut [Part]) -> PyResult<()> {
        let (generation, len) = self.current();
        if len + encoded.len() as u64 > self.limit() {
            return Err(FullError::new_err(format!(
                "the list holds at most {} items",
                self.limit()
            )));
        }
        let keys = (len..).map(|index| item_key(generation, index));
        self.insert_or_undo(keys, encoded)?;
        // Version before header, as in `write_all`.
        self.version.fetch_add(1);
        self.header
            .store(header(generation, len + encoded.len() as u64));
        Ok(())
    }
}

#[pymethods]
impl PyListProxy {
    /// Opens the list `name` in `region`, creating it if absent with room for `capacity`
    /// items to start with (rounded up to a power of two; it grows past them). Items of
    /// up to `max_item_bytes` lie in the slot, larger ones out of line (a hint, not a
    /// limit). With `capacity=None` it must exist.
    #[new]
    #[pyo3(signature = (region, name, capacity = None, max_item_bytes = 256, pickle = false))]
    fn new(
        py: Python<'_>,
        region: &Bound<'_, PyRegion>,
        name: &str,
        capacity: Option<u64>,
        max_item_bytes: usize,
        pickle: bool,
    ) -> PyResult<Self> {
        let rust_region = region.get().region();
        let items = open_or_create(
            py,
            capacity,
            max_item_bytes,
            // Room for two generations of `capacity` items at half load.
            |capacity, size| {
                let slots = capacity
                    .checked_mul(4)
                    .ok_or(shmarena::Error::InvalidArgument(
                        "a list capacity that large does not fit".to_owned(),
                    ))?;
                // Room for a reference to an item kept out of line.
                ByteMap::get_or_create(rust_region, name, slots, 8, size.max(SPILLED_LEN))
            },
            || ByteMap::open(rust_region, name),
        )?;
        if items.key_size() != 8 {
            return Err(PyTypeError::new_err(format!(
                "{name:?} is not a list made by shmarena's Python package"
            )));
        }
        check_records(name, &[items.value_size()], HEADER + MIN_PAYLOAD)?;
        Ok(Self {
            header: shmarena::Value::get_or_create(rust_region, &format!("{name}.len"), 0u64)
                .py()?,
            version: shmarena::Value::get_or_create(rust_region, &format!("{name}.version"), 0u64)
                .py()?,
            lock: shmarena::Lock::get_or_create(rust_region, &format!("{name}.lock"), ()).py()?,
            items,
            codec: Codec {
                pickle,
                allow_shared: region.get().allows_shared(),
            },
            region: region.clone().unbind(),
        })
    }

    /// Appends `value` (`MemoryError` when the region is full).
    fn append(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut encoded = self.encode(value)?;
        self.locked(py, || self.push_all(std::slice::from_mut(&mut encoded)))
    }

    /// Appends every item (all or, when they do not fit, none).
    fn extend(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut encoded = values
            .try_iter()?
            .map(|value| self.encode(&value?))
            .collect::<PyResult<Vec<_>>>()?;
        self.locked(py, || self.push_all(&mut encoded))
    }

    fn __iadd__(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<()> {
        self.extend(py, values)
    }

    /// `l *= n`: the items repeated `n` times, in place (all or, when they do not fit,
    /// nothing).
    fn __imul__(&self, py: Python<'_>, n: isize) -> PyResult<()> {
        self.rewrite(py, |list| {
            list.as_any().call_method1("__imul__", (n,)).map(|_| ())
        })
    }

    /// `l * n`: a plain list, as the manager's list returns.
    fn __mul__<'py>(&self, py: Python<'py>, n: isize) -> PyResult<Bound<'py, PyAny>> {
        self.copy(py)?.as_any().mul(n)
    }

    /// `n * l`: a plain list.
    fn __rmul__<'py>(&self, py: Python<'py>, n: isize) -> PyResult<Bound<'py, PyAny>> {
        self.__mul__(py, n)
    }

    fn __len__(&self) -> usize {
        self.len_now() as usize
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if key.is_instance_of::<PySlice>() {
            return self.copy(py)?.as_any().get_item(key);
        }
        let index: isize = key.extract()?;
        let bytes = self.locked(py, || self.item(self.current().0, self.index(index)?))?;
        self.codec.decode(py, &bytes)
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if key.is_instance_of::<PySlice>() {
            // The items to assign, taken first (`l[1:2] = l` reads this very list).
            let values = PyList::new(py, value.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
            return self.rewrite(py, |list| list.as_any().set_item(key, &values));
        }
        let index: isize = key.extract()?;
        let mut encoded = self.encode(value)?;
        self.locked(py, || {
            let index = self.index(index)?;
            // Version before the change, as in `write_all`.
            self.version.fetch_add(1);
            let old = self
                .items
                .insert(&item_key(self.current().0, index), &encoded.bytes)
                .py()?;
            encoded.published();
            match old {
                Some(old) => spill::retire(self.items.region(), &old),
                None => Ok(()),
            }
        })
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        self.rewrite(py, |list| list.as_any().del_item(key))
    }

    /// Inserts `value` before `index`.
    fn insert(&self, py: Python<'_>, index: isize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.rewrite(py, |list| {
            list.call_method1("insert", (index, value)).map(|_| ())
        })
    }

    /// Removes and returns the item at `index` (the last by default).
    #[pyo3(signature = (index = -1))]
    fn pop<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyAny>> {
        self.rewrite(py, |list| list.call_method1("pop", (index,)))
    }

    /// Removes the first item equal to `value` (`ValueError` if none).
    fn remove(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.rewrite(py, |list| list.call_method1("remove", (value,)).map(|_| ()))
    }

    /// Reverses the list in place.
    fn reverse(&self, py: Python<'_>) -> PyResult<()> {
        self.rewrite(py, PyListMethods::reverse)
    }

    /// Sorts the list in place (`key`, `reverse` as for `list.sort`).
    #[pyo3(signature = (*, key = None, reverse = false))]
    fn sort(&self, py: Python<'_>, key: Option<&Bound<'_, PyAny>>, reverse: bool) -> PyResult<()> {
        self.rewrite(py, |list| {
            let kwargs = PyDict::new(py);
            kwargs.set_item("key", key)?;
            kwargs.set_item("reverse", reverse)?;
            list.call_method("sort", (), Some(&kwargs)).map(|_| ())
        })
    }

    /// Removes every item.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        self.rewrite(py, |list| list.call_method0("clear").map(|_| ()))
    }

    /// An iterator by index, as a list's: it sees items set or appended after it was
    /// made, and ends at the first index past the end (then stays ended).
    fn __iter__(slf: &Bound<'_, Self>) -> PyListIter {
        PyListIter {
            list: slf.clone().unbind(),
            next: Some(0),
        }
    }

    fn __contains__(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.copy(py)?.contains(value)
    }

    /// Index of the first item equal to `value` (`ValueError` if none).
    #[pyo3(name = "index", signature = (value, *args))]
    fn index_of(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        let mut call = vec![value.clone()];
        call.extend(args.iter());
        Ok(self
            .copy(py)?
            .call_method1("index", PyTuple::new(py, call)?)?
            .unbind())
    }

    /// Number of items equal to `value`.
    fn count(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<usize> {
        self.copy(py)?.call_method1("count", (value,))?.extract()
    }

    /// A plain list with the items (one atomic snapshot).
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        Ok(self.snapshot(py)?.1)
    }

    fn __add__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.copy(py)?.as_any().add(other)
    }

    /// `other + self` for a plain list on the left: a plain list.
    fn __radd__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        other.add(self.copy(py)?)
    }

    /// Items the list holds before its table grows (two generations at half load).
    #[getter]
    fn capacity(&self) -> u64 {
        (self.items.capacity() / 4) as u64
    }

    /// The object's name in its region.
    #[getter]
    fn name(&self) -> &str {
        self.items.name()
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.copy(py)?.eq(other)
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        crate::region::reduce(
            slf.py(),
            "List",
            &this.region,
            this.items.name(),
            (this.codec.pickle,),
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.copy(py)?.repr()?.to_string())
    }
}

/// Where a dict iterator is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IterState {
    Running,
    /// Every key given: stays exhausted, whatever happens to the dict.
    Exhausted,
    /// The dict changed: every later `next` raises again, as a dict iterator's.
    Broken(&'static str),
}

/// Iterator of a shared dict's keys (a snapshot of them, in insertion order, checked
/// against the dict at each step).
#[pyclass(module = "shmarena._shmarena", name = "DictIterator")]
pub struct PyDictIter {
    dict: Py<PyDictProxy>,
    /// (map key, key encoding) of each key.
    keys: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
    /// The dict's length when the iterator was made.
    size: usize,
    state: IterState,
}

#[pymethods]
impl PyDictIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.state {
            IterState::Exhausted => return Ok(None),
            IterState::Broken(message) => return Err(PyRuntimeError::new_err(message)),
            IterState::Running => {}
        }
        let dict = self.dict.get();
        if dict.map.len() == self.size {
            match self.keys.next() {
                None => {
                    self.state = IterState::Exhausted;
                    return Ok(None);
                }
                Some((map_key, key)) if dict.map.contains_key(&map_key).py()? => {
                    return dict.codec.decode(py, &key).map(Some);
                }
                Some(_) => {
                    self.state = IterState::Broken("dictionary keys changed during iteration");
                }
            }
        } else {
            self.state = IterState::Broken("dictionary changed size during iteration");
        }
        match self.state {
            IterState::Broken(message) => Err(PyRuntimeError::new_err(message)),
            _ => Ok(None),
        }
    }
}

/// Iterator of a shared list, by index.
#[pyclass(module = "shmarena._shmarena", name = "ListIterator")]
pub struct PyListIter {
    list: Py<PyListProxy>,
    /// The next index (None: ended).
    next: Option<u64>,
}

#[pymethods]
impl PyListIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(index) = self.next else {
            return Ok(None);
        };
        let list = self.list.get();
        let bytes = list.locked(py, || {
            let (generation, len) = list.current();
            if index < len {
                list.item(generation, index).map(Some)
            } else {
                Ok(None)
            }
        })?;
        if let Some(bytes) = bytes {
            self.next = Some(index + 1);
            list.codec.decode(py, &bytes).map(Some)
        } else {
            self.next = None;
            Ok(None)
        }
    }

    /// Items left, as far as the list's length now tells.
    fn __length_hint__(&self) -> usize {
        match self.next {
            Some(index) => self.list.get().len_now().saturating_sub(index) as usize,
            None => 0,
        }
    }
}

/// `Manager().set()` with no broker: a lock-free hash set in the region, which grows.
/// Members of up to `max_item_bytes` lie in the set's slots; a longer one is a key of the
/// companion map `<name>.long`, by its BLAKE3 digest, with the member itself out of line
/// as that key's value (each member lives in exactly one of the two).
#[pyclass(module = "shmarena._shmarena", name = "Set", frozen)]
pub struct PySetProxy {
    set: ByteSet,
    long: ByteMap,
    codec: Codec,
    region: Py<PyRegion>,
}

/// A member as the set stores it.
enum Member {
    /// In the set's slots.
    Short(Encoded),
    /// In the companion map, by digest.
    Long { digest: Encoded, encoded: Encoded },
}

impl PySetProxy {
    fn member(&self, member: &Bound<'_, PyAny>) -> PyResult<Member> {
        let encoded = self.codec.encode_key(member)?;
        Ok(if encoded.len() <= self.set.key_size() {
            Member::Short(encoded)
        } else {
            Member::Long {
                digest: spill::digest(&encoded),
                encoded,
            }
        })
    }

    /// Whether the long member stored under `digest` (read under `pin`) is `encoded`:
    /// `None` when absent.
    fn long_is(&self, digest: &[u8], encoded: &[u8], pin: &GracePin<'_>) -> PyResult<Option<bool>> {
        let Some(stored) = self.long.get(digest).py()? else {
            return Ok(None);
        };
        let stored = spill::resolve(self.long.region(), &stored, pin)?;
        Ok(Some(stored.as_ref() == encoded))
    }

    /// Adds `member`; whether it was absent.
    fn insert(&self, member: &Member) -> PyResult<bool> {
        match member {
            Member::Short(encoded) => self.set.insert(encoded).py(),
            Member::Long { digest, encoded } => {
                let region = self.long.region();
                let mut part = Part::out_of_line(region, encoded)?;
                let pin = region.pin().py()?;
                match self.long.try_insert(digest, &part.bytes).py()? {
                    None => {
                        part.published();
                        Ok(true)
                    }
                    Some(present) => {
                        if spill::resolve(region, &present, &pin)?.as_ref() != encoded.as_slice() {
                            return Err(spill::digest_collision());
                        }
                        Ok(false)
                    }
                }
            }
        }
    }

    /// Removes `member`; whether it was present.
    fn delete(&self, member: &Member) -> PyResult<bool> {
        match member {
            Member::Short(encoded) => self.set.remove(encoded).py(),
            Member::Long { digest, encoded } => {
                let region = self.long.region();
                let pin = region.pin().py()?;
                match self.long_is(digest, encoded, &pin)? {
                    None => return Ok(false),
                    Some(false) => return Err(spill::digest_collision()),
                    Some(true) => {}
                }
                drop(pin);
                match self.long.remove(digest).py()? {
                    Some(old) => spill::retire(region, &old).map(|()| true),
                    None => Ok(false),
                }
            }
        }
    }

    /// Whether `member` is present.
    fn has(&self, member: &Member) -> PyResult<bool> {
        match member {
            Member::Short(encoded) => self.set.contains(encoded).py(),
            Member::Long { digest, encoded } => {
                let pin = self.long.region().pin().py()?;
                Ok(self.long_is(digest, encoded, &pin)? == Some(true))
            }
        }
    }

    /// Every member's encoding (a snapshot).
    fn encodings(&self) -> PyResult<Vec<Vec<u8>>> {
        let mut all = self
            .set
            .iter()
            .map(IntoPy::py)
            .collect::<PyResult<Vec<_>>>()?;
        let region = self.long.region();
        let pin = region.pin().py()?;
        for entry in self.long.iter() {
            let (_, stored) = entry.py()?;
            all.push(spill::resolve(region, &stored, &pin)?.into_owned());
        }
        Ok(all)
    }

    /// `op(other)` on a snapshot of the members (a plain set); `NotImplemented` where a set
    /// gives it.
    fn on_snapshot<'py>(
        &self,
        py: Python<'py>,
        op: &str,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.copy(py)?.call_method1(op, (other,))
    }

    /// `TypeError` unless `other` is a set (`collections.abc.Set`), as an in-place operator
    /// of a set requires.
    fn require_set(py: Python<'_>, other: &Bound<'_, PyAny>, op: &str) -> PyResult<()> {
        let abstract_set = py.import("collections.abc")?.getattr("Set")?;
        if other.is_instance(&abstract_set)? {
            return Ok(());
        }
        Err(PyTypeError::new_err(format!(
            "unsupported operand type(s) for {op}: 'Set' and '{}'",
            other.get_type().name()?
        )))
    }

    fn members<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.encodings()?
            .iter()
            .map(|member| self.codec.decode(py, member))
            .collect()
    }
}

#[pymethods]
impl PySetProxy {
    /// Opens the set `name` in `region`, creating it if absent with room for `capacity`
    /// members to start with (it grows past them). Members of up to `max_item_bytes` lie
    /// in the slots, longer ones out of line (a hint, not a limit). With `capacity=None`
    /// it must exist.
    #[new]
    #[pyo3(signature = (region, name, capacity = None, max_item_bytes = 64, pickle = false))]
    fn new(
        py: Python<'_>,
        region: &Bound<'_, PyRegion>,
        name: &str,
        capacity: Option<u64>,
        max_item_bytes: usize,
        pickle: bool,
    ) -> PyResult<Self> {
        let rust_region = region.get().region();
        let set = open_or_create(
            py,
            capacity,
            max_item_bytes,
            |capacity, size| ByteSet::get_or_create(rust_region, name, capacity, size),
            || ByteSet::open(rust_region, name),
        )?;
        check_records(name, &[set.key_size()], HEADER + MIN_PAYLOAD)?;
        let long = py
            .detach(|| {
                ByteMap::get_or_create(
                    rust_region,
                    &format!("{name}.long"),
                    16,
                    DIGEST_LEN,
                    SPILLED_LEN,
                )
            })
            .py()?;
        Ok(Self {
            set,
            long,
            codec: Codec {
                pickle,
                allow_shared: region.get().allows_shared(),
            },
            region: region.clone().unbind(),
        })
    }

    /// Adds `member`.
    fn add(&self, member: &Bound<'_, PyAny>) -> PyResult<()> {
        self.insert(&self.member(member)?)?;
        Ok(())
    }

    /// Removes `member` if present.
    fn discard(&self, member: &Bound<'_, PyAny>) -> PyResult<()> {
        self.delete(&self.member(member)?)?;
        Ok(())
    }

    /// Removes `member`; `KeyError` if absent.
    fn remove(&self, member: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.delete(&self.member(member)?)? {
            Ok(())
        } else {
            Err(PyKeyError::new_err(member.clone().unbind()))
        }
    }

    /// Removes and returns some member; `KeyError` when empty.
    fn pop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        for member in self.set.iter() {
            let member = member.py()?;
            if self.set.remove(&member).py()? {
                return self.codec.decode(py, &member);
            }
        }
        let region = self.long.region();
        for entry in self.long.iter() {
            let (digest, _) = entry.py()?;
            if let Some(stored) = self.long.remove(&digest).py()? {
                let encoded = spill::resolve(region, &stored, &region.pin().py()?)?.into_owned();
                spill::retire(region, &stored)?;
                return self.codec.decode(py, &encoded);
            }
        }
        Err(PyKeyError::new_err("pop from an empty set"))
    }

    /// Adds the members of every iterable.
    #[pyo3(signature = (*others))]
    fn update(&self, others: &Bound<'_, PyTuple>) -> PyResult<()> {
        for other in others.iter() {
            for member in other.try_iter()? {
                self.add(&member?)?;
            }
        }
        Ok(())
    }

    fn __contains__(&self, member: &Bound<'_, PyAny>) -> PyResult<bool> {
        match self.member(member) {
            Ok(member) => self.has(&member),
            Err(error) if error.is_instance_of::<PyTypeError>(member.py()) => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn __len__(&self) -> usize {
        self.set.len() + self.long.len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyList::new(py, self.members(py)?)?
            .into_any()
            .try_iter()
            .map(Bound::into_any)
    }

    /// Removes every member (one by one).
    fn clear(&self) -> PyResult<()> {
        self.set.clear();
        for entry in self.long.iter() {
            let (digest, _) = entry.py()?;
            if let Some(stored) = self.long.remove(&digest).py()? {
                spill::retire(self.long.region(), &stored)?;
            }
        }
        Ok(())
    }

    /// A plain set with the members (a snapshot).
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PySet>> {
        PySet::new(py, self.members(py)?)
    }

    /// Members the set holds before it grows again.
    #[getter]
    fn capacity(&self) -> usize {
        self.set.capacity()
    }

    /// The object's name in its region.
    #[getter]
    fn name(&self) -> &str {
        self.set.name()
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.copy(py)?.eq(other)
    }

    // The rest of Python 3.14's `SetProxy`: what reads the set answers from a snapshot (a
    // plain set, as the proxy's results are); what changes it adds and discards members
    // one by one, each atomic.

    fn __lt__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__lt__", other)
    }

    fn __le__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__le__", other)
    }

    fn __gt__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__gt__", other)
    }

    fn __ge__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__ge__", other)
    }

    fn __and__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__and__", other)
    }

    fn __rand__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__rand__", other)
    }

    fn __or__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__or__", other)
    }

    fn __ror__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__ror__", other)
    }

    fn __sub__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__sub__", other)
    }

    fn __rsub__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__rsub__", other)
    }

    fn __xor__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__xor__", other)
    }

    fn __rxor__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.on_snapshot(py, "__rxor__", other)
    }

    /// `s |= other` (`other` a set, as for a set): adds its members.
    fn __ior__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::require_set(py, other, "|=")?;
        self.update(&PyTuple::new(py, [other])?)
    }

    /// `s &= other`: keeps the members also in `other`.
    fn __iand__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::require_set(py, other, "&=")?;
        self.intersection_update(py, &PyTuple::new(py, [other])?)
    }

    /// `s -= other`: discards `other`'s members.
    fn __isub__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::require_set(py, other, "-=")?;
        self.difference_update(&PyTuple::new(py, [other])?)
    }

    /// `s ^= other`: members in exactly one of the two.
    fn __ixor__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::require_set(py, other, "^=")?;
        self.symmetric_difference_update(other)
    }

    /// A plain set: the members and every iterable's.
    #[pyo3(signature = (*others))]
    fn union<'py>(
        &self,
        py: Python<'py>,
        others: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.copy(py)?.call_method1("union", others)
    }

    /// A plain set: the members in every iterable too.
    #[pyo3(signature = (*others))]
    fn intersection<'py>(
        &self,
        py: Python<'py>,
        others: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.copy(py)?.call_method1("intersection", others)
    }

    /// A plain set: the members in none of the iterables.
    #[pyo3(signature = (*others))]
    fn difference<'py>(
        &self,
        py: Python<'py>,
        others: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.copy(py)?.call_method1("difference", others)
    }

    /// A plain set: the members in exactly one of the set and `other`.
    fn symmetric_difference<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.copy(py)?
            .call_method1("symmetric_difference", (other,))
    }

    /// Whether no member is in `other`.
    fn isdisjoint<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.copy(py)?.call_method1("isdisjoint", (other,))
    }

    /// Whether every member is in `other`.
    fn issubset<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.copy(py)?.call_method1("issubset", (other,))
    }

    /// Whether every member of `other` is in the set.
    fn issuperset<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.copy(py)?.call_method1("issuperset", (other,))
    }

    /// Discards the members of every iterable.
    #[pyo3(signature = (*others))]
    fn difference_update(&self, others: &Bound<'_, PyTuple>) -> PyResult<()> {
        for other in others.iter() {
            for member in other.try_iter()? {
                self.discard(&member?)?;
            }
        }
        Ok(())
    }

    /// Keeps only the members in every iterable.
    #[pyo3(signature = (*others))]
    fn intersection_update(&self, py: Python<'_>, others: &Bound<'_, PyTuple>) -> PyResult<()> {
        let keep = self.copy(py)?.call_method1("intersection", others)?;
        for member in self.members(py)? {
            if !keep.contains(&member)? {
                self.discard(&member)?;
            }
        }
        Ok(())
    }

    /// Keeps the members in exactly one of the set and `other`.
    fn symmetric_difference_update(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        let other = PySet::new(other.py(), other.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
        for member in other.iter() {
            if self.__contains__(&member)? {
                self.discard(&member)?;
            } else {
                self.add(&member)?;
            }
        }
        Ok(())
    }

    /// `Set[int]` in annotations, as `set[int]`.
    #[classmethod]
    fn __class_getitem__<'py>(
        cls: &Bound<'py, pyo3::types::PyType>,
        item: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        py.import("types")?
            .getattr("GenericAlias")?
            .call1((cls, item))
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        crate::region::reduce(
            slf.py(),
            "Set",
            &this.region,
            this.set.name(),
            (this.codec.pickle,),
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Set({})", self.copy(py)?.repr()?))
    }
}

/// The queue under a [`PyQueue`]: bounded (`maxsize > 0`) or not.
enum Backing {
    Bounded(ByteQueue),
    Unbounded(ByteUnboundedQueue),
}

impl Backing {
    fn elem_size(&self) -> usize {
        match self {
            Backing::Bounded(queue) => queue.elem_size(),
            Backing::Unbounded(queue) => queue.elem_size(),
        }
    }

    fn name(&self) -> &str {
        match self {
            Backing::Bounded(queue) => queue.name(),
            Backing::Unbounded(queue) => queue.name(),
        }
    }

    fn region(&self) -> &shmarena::Region {
        match self {
            Backing::Bounded(queue) => queue.region(),
            Backing::Unbounded(queue) => queue.region(),
        }
    }

    /// Slots, for a bounded queue.
    fn capacity(&self) -> Option<usize> {
        match self {
            Backing::Bounded(queue) => Some(queue.capacity()),
            Backing::Unbounded(_) => None,
        }
    }

    fn len(&self) -> PyResult<usize> {
        match self {
            Backing::Bounded(queue) => Ok(queue.len()),
            Backing::Unbounded(queue) => queue.len().py(),
        }
    }

    /// Pushes `item`, waiting at most `timeout` while full: `None` if it stayed full.
    fn push(&self, item: &[u8], timeout: std::time::Duration) -> Option<shmarena::Result<()>> {
        match self {
            Backing::Bounded(queue) => match queue.push_timeout(item, Some(timeout)) {
                Ok(()) => Some(Ok(())),
                Err(shmarena::PushError::Full(_)) => None,
                Err(other) => Some(Err(shmarena::Error::from(other))),
            },
            Backing::Unbounded(queue) => Some(queue.push(item)),
        }
    }

    /// Pops an item, waiting at most `timeout` while empty.
    fn pop(&self, timeout: std::time::Duration) -> Option<shmarena::Result<Vec<u8>>> {
        match self {
            Backing::Bounded(queue) => queue.pop_timeout(Some(timeout)).map(Ok),
            Backing::Unbounded(queue) => queue.pop_timeout(Some(timeout)).transpose(),
        }
    }
}

/// `multiprocessing.Queue` with no feeder thread and no pipe: a lock-free queue in the
/// region, bounded or (with no `capacity`) growing as items arrive. Items are pickled by
/// default (as `multiprocessing` does); with `pickle=False` only the plain types are
/// accepted. Items larger than a slot's room are kept out of line.
#[pyclass(module = "shmarena._shmarena", name = "Queue", frozen)]
pub struct PyQueue {
    queue: Backing,
    codec: Codec,
    /// The process that closed this handle (0: open). A closed queue refuses `put` and
    /// `get` in that process only, as `multiprocessing`'s does (a forked child, or one
    /// that unpickles the queue, gets it open).
    closed_by: AtomicU32,
    /// The last process that put an item through this handle (0: none): once such a
    /// process closed it, `empty()` raises there, as `multiprocessing`'s, whose `close()`
    /// closes the reading end once a `put` has started the feeder thread.
    put_by: AtomicU32,
    region: Py<PyRegion>,
}

impl PyQueue {
    /// `ValueError` if this process closed the queue.
    fn check_open(&self) -> PyResult<()> {
        // Relaxed: only this process's own close matters, and it happened before on
        // the thread that sees it (or races with this call, as in `multiprocessing`).
        if self.closed_by.load(Ordering::Relaxed) == std::process::id() {
            return Err(PyValueError::new_err(format!(
                "Queue {} is closed",
                self.__repr__()
            )));
        }
        Ok(())
    }

    /// What to push for `item`: its encoding, or a reference to it out of line.
    fn encode(&self, item: &Bound<'_, PyAny>) -> PyResult<Part<'_>> {
        let encoded = self.codec.encode_value(item)?;
        Part::new(
            self.queue.region(),
            encoded,
            self.queue.elem_size(),
            "queue item",
        )
    }

    /// The encoding of a popped item: itself, or what it kept out of line (the popper
    /// alone reads it, so the block is freed at once).
    fn popped(&self, stored: Vec<u8>) -> PyResult<Vec<u8>> {
        let Some(blob) = spill::spilled(&stored) else {
            return Ok(stored);
        };
        let region = self.queue.region();
        let bytes = region.read_blob(blob, &region.pin().py()?).py()?;
        region.free_blob(blob).py()?;
        Ok(bytes)
    }
}

#[pymethods]
impl PyQueue {
    /// Opens the queue `name` in `region`, creating it if absent: with room for
    /// `capacity` items, or unbounded (`unbounded=True`: `capacity` is the room it starts
    /// with, and it grows). Items of up to `max_item_bytes` lie in the slot, larger ones
    /// out of line. With `capacity=None` it must exist.
    #[new]
    #[pyo3(signature = (region, name, capacity = None, max_item_bytes = 256, pickle = true, unbounded = false))]
    fn new(
        py: Python<'_>,
        region: &Bound<'_, PyRegion>,
        name: &str,
        capacity: Option<u64>,
        max_item_bytes: usize,
        pickle: bool,
        unbounded: bool,
    ) -> PyResult<Self> {
        let rust_region = region.get().region();
        let queue = open_or_create(
            py,
            capacity,
            max_item_bytes,
            |capacity, size| {
                // Room for a reference to an item kept out of line.
                let size = size.max(SPILLED_LEN);
                Ok(if unbounded {
                    Backing::Unbounded(ByteUnboundedQueue::get_or_create(
                        rust_region,
                        name,
                        capacity,
                        size,
                    )?)
                } else {
                    Backing::Bounded(ByteQueue::get_or_create(rust_region, name, capacity, size)?)
                })
            },
            || {
                let kind = rust_region
                    .find_object(name)?
                    .map(|entry| entry.descriptor.kind);
                Ok(match kind {
                    Some(shmarena::ObjectKind::UnboundedQueue) => {
                        Backing::Unbounded(ByteUnboundedQueue::open(rust_region, name)?)
                    }
                    _ => Backing::Bounded(ByteQueue::open(rust_region, name)?),
                })
            },
        )?;
        check_records(name, &[queue.elem_size()], HEADER + MIN_PAYLOAD)?;
        Ok(Self {
            queue,
            codec: Codec {
                pickle,
                allow_shared: region.get().allows_shared(),
            },
            closed_by: AtomicU32::new(0),
            put_by: AtomicU32::new(0),
            region: region.clone().unbind(),
        })
    }

    /// Appends `item`, waiting while the queue is full; `queue.Full` if `block` is false
    /// or `timeout` passes; `ValueError` after `close()`.
    #[pyo3(signature = (item, block = true, timeout = None))]
    fn put(
        &self,
        py: Python<'_>,
        item: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        self.check_open()?;
        let mut encoded = self.encode(item)?;
        let pushed = blocking(py, timeout_of(block, timeout)?, |slice| {
            self.queue.push(&encoded.bytes, slice)
        })?;
        match pushed {
            Some(result) => {
                result.py()?;
                encoded.published();
                // Relaxed: see `check_open`.
                self.put_by.store(std::process::id(), Ordering::Relaxed);
                Ok(())
            }
            None => Err(queue_error(py, "Full")),
        }
    }

    /// Removes and returns the oldest item, waiting while the queue is empty;
    /// `queue.Empty` if `block` is false or `timeout` passes; `ValueError` after
    /// `close()`.
    #[pyo3(signature = (block = true, timeout = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.check_open()?;
        let popped = blocking(py, timeout_of(block, timeout)?, |slice| {
            self.queue.pop(slice)
        })?;
        match popped {
            Some(stored) => self.codec.decode(py, &self.popped(stored.py()?)?),
            None => Err(queue_error(py, "Empty")),
        }
    }

    /// `put(item, False)`.
    fn put_nowait(&self, py: Python<'_>, item: &Bound<'_, PyAny>) -> PyResult<()> {
        self.put(py, item, false, None)
    }

    /// `get(False)`.
    fn get_nowait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.get(py, false, None)
    }

    /// Items in the queue (a snapshot).
    fn qsize(&self) -> PyResult<usize> {
        self.queue.len()
    }

    /// Whether the queue looks empty. After `close()` in a process that put items
    /// through this handle, `OSError('handle is closed')`, as `multiprocessing`'s (a
    /// handle closed before any `put` still answers).
    fn empty(&self) -> PyResult<bool> {
        let me = std::process::id();
        // Relaxed: see `check_open`.
        if self.closed_by.load(Ordering::Relaxed) == me && self.put_by.load(Ordering::Relaxed) == me
        {
            return Err(PyOSError::new_err("handle is closed"));
        }
        Ok(self.queue.len()? == 0)
    }

    /// Whether the queue looks full (never, for an unbounded one).
    fn full(&self) -> PyResult<bool> {
        Ok(match self.queue.capacity() {
            Some(capacity) => self.queue.len()? >= capacity,
            None => false,
        })
    }

    /// Closes this handle in this process: its `put` and `get` raise `ValueError` from
    /// now on (the queue itself, and other processes' handles, stay open). There is no
    /// feeder thread to stop.
    fn close(&self) {
        // Relaxed: see `check_open`.
        self.closed_by.store(std::process::id(), Ordering::Relaxed);
    }

    /// Nothing to join (there is no feeder thread); as in `multiprocessing`,
    /// `AssertionError` unless `close()` was called first.
    fn join_thread(&self) -> PyResult<()> {
        // Relaxed: see `check_open`.
        if self.closed_by.load(Ordering::Relaxed) != std::process::id() {
            return Err(PyAssertionError::new_err(format!(
                "Queue {} not closed",
                self.__repr__()
            )));
        }
        Ok(())
    }

    /// Nothing to cancel (see `close`).
    fn cancel_join_thread(&self) {}

    /// Most items the queue holds (`None`: unbounded).
    #[getter]
    fn capacity(&self) -> Option<usize> {
        self.queue.capacity()
    }

    /// The object's name in its region.
    #[getter]
    fn name(&self) -> &str {
        self.queue.name()
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        crate::region::reduce(
            slf.py(),
            "Queue",
            &this.region,
            this.queue.name(),
            (this.codec.pickle,),
        )
    }

    fn __repr__(&self) -> String {
        let len = self
            .queue
            .len()
            .map_or_else(|_| "?".to_owned(), |len| len.to_string());
        match self.queue.capacity() {
            Some(capacity) => format!(
                "<shmarena.Queue {:?} {len} of {capacity}>",
                self.queue.name()
            ),
            None => format!("<shmarena.Queue {:?} {len}, unbounded>", self.queue.name()),
        }
    }
}
