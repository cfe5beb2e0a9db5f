//! Python objects as bytes in shared memory: the encoding of dict keys and values, list
//! elements, set members and queue items.
//!
//! ```text
//! None   01                      int   04 i64 (LE)            str    07 len:u32 utf-8
//! False  02                      int   05 len:u32 two's compl. bytes  08 len:u32 bytes
//! True   03                      float 06 f64 (LE)            tuple  09 count:u32 items
//! list   0b count:u32 items      dict  0c count:u32 key,value pickle 0a len:u32 bytes
//! ref    0d a tuple: (function name, args...)
//! ```
//!
//! A list or dict value is stored by value (it comes back as a plain list or dict, as a
//! manager's list gives back a list it holds). A shmarena object (a shared dict, list,
//! set, queue, value, lock, ..., or its region) is stored as a reference: the name of the
//! `shmarena` function its `__reduce__` names and that function's arguments (objects and
//! regions again as references, a region by its path), so that reading it back opens the
//! same shared object and changes through it show everywhere, as a manager's nested proxy.
//! Decoding calls only the functions of [`REBUILDERS`], whatever the bytes say.
//!
//! Keys are encoded canonically, so that keys Python calls equal are equal bytes: `True`
//! and `1` and `1.0` are one key (stored as the int), as they are in a `dict`, for every
//! integral value within 64 bits. Beyond that range a float key and the int equal to it
//! are two keys (the one documented difference from `dict`). Decoding
//! trusts nothing: a tag or length that does not fit raises [`CorruptError`] and a pickle
//! is only loaded by a handle created with `pickle=True`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::CorruptError;
use crate::region::PyRegion;

const NONE: u8 = 1;
const FALSE: u8 = 2;
const TRUE: u8 = 3;
const INT: u8 = 4;
const BIG_INT: u8 = 5;
const FLOAT: u8 = 6;
const STR: u8 = 7;
const BYTES: u8 = 8;
const TUPLE: u8 = 9;
const PICKLE: u8 = 10;
const LIST: u8 = 11;
const DICT: u8 = 12;
const REF: u8 = 13;

/// The `shmarena` functions a reference may name: each opens a shared object (or a
/// region) again from plain arguments and references.
const REBUILDERS: [&str; 5] = [
    "open_region",
    "_rebuild",
    "_synchronized",
    "_joinable_queue",
    "Namespace",
];

/// Bytes a record takes beyond its payload (tag and length): a `str` or `bytes` of
/// `max_bytes` always fits a record of `max_bytes + HEADER` bytes.
pub const HEADER: usize = 5;

/// Tuples nest at most this deep (bounds the decoder's recursion on hostile input).
const MAX_DEPTH: usize = 32;

/// An encoding: on the stack up to 48 bytes (an int, a float, a short str or tuple), so
/// that a lookup or a store of small objects allocates nothing.
pub type Encoded = smallvec::SmallVec<[u8; 48]>;

/// How an encoding is used.
#[derive(Clone, Copy, Debug)]
pub struct Codec {
    /// Whether objects of other types are pickled (and pickles loaded).
    pub pickle: bool,
    /// Whether the region holding the encoded objects was opened with `allow_shared`: a
    /// stored reference may open another region with `allow_shared` only then (the bytes
    /// are the region's, and whoever can write them must not lift the check for us).
    pub allow_shared: bool,
}

/// The `str` whose UTF-8 encoding `bytes` (read from the mapping) are: checked once, by
/// Python's decoder (a check in Rust first, then `PyString::new`'s own decode, read every
/// byte twice); bytes that are not UTF-8 raise `CorruptError`.
fn str_from_utf8<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // A slice is never longer than `isize::MAX` bytes.
    let len = bytes.len() as pyo3::ffi::Py_ssize_t;
    // SAFETY: we hold the GIL (`py`); the pointer and length name `bytes`, which Python only
    // reads during the call; the error handler is a NUL-terminated static string.
    let decoded =
        unsafe { pyo3::ffi::PyUnicode_DecodeUTF8(bytes.as_ptr().cast(), len, c"strict".as_ptr()) };
    if decoded.is_null() {
        // The decoder's UnicodeDecodeError gives way to the error that names the cause.
        drop(PyErr::take(py));
        return Err(CorruptError::new_err("a stored str is not UTF-8"));
    }
    // SAFETY: a new reference, checked non-null above.
    Ok(unsafe { Bound::from_owned_ptr(py, decoded) })
}

impl Codec {
    /// The bytes of `object` as a value (types kept as they are).
    pub fn encode_value(self, object: &Bound<'_, PyAny>) -> PyResult<Encoded> {
        let mut out = Encoded::new();
        self.encode(object, false, 0, &mut out)?;
        Ok(out)
    }

    /// The bytes of `object` as a key (canonical: equal keys give equal bytes).
    pub fn encode_key(self, object: &Bound<'_, PyAny>) -> PyResult<Encoded> {
        let mut out = Encoded::new();
        self.encode(object, true, 0, &mut out)?;
        Ok(out)
    }

    fn encode(
        self,
        object: &Bound<'_, PyAny>,
        key: bool,
        depth: usize,
        out: &mut Encoded,
    ) -> PyResult<()> {
        if depth > MAX_DEPTH {
            return Err(PyValueError::new_err(format!(
                "tuples, lists, dicts and references nest deeper than {MAX_DEPTH} levels"
            )));
        }
        // The common keys and values first, by their exact type (a pointer compare; the
        // checks below call into the interpreter): the same encoding as below.
        if object.is_exact_instance_of::<PyString>() {
            return encode_str(object.cast::<PyString>()?, out);
        }
        if object.is_exact_instance_of::<PyInt>() {
            return encode_any_int(object, out);
        }
        if object.is_none() {
            out.push(NONE);
        } else if object.is_instance_of::<PyBool>() {
            let value = object.is_truthy()?;
            if key {
                encode_int(i64::from(value), out);
            } else {
                out.push(if value { TRUE } else { FALSE });
            }
        } else if object.is_instance_of::<PyInt>() {
            encode_any_int(object, out)?;
        } else if object.is_instance_of::<PyFloat>() {
            let value: f64 = object.extract()?;
            // An integral float within 64 bits is the int it equals, as a key (1.0 == 1
            // in a dict). Beyond, floats stay floats: 2.0**64 and 2**64 are two keys (a
            // float key of 1e300 would otherwise take a 1000-bit int's 126 bytes).
            // i64::MIN as f64 is exact; i64::MAX as f64 rounds up to 2^63, past the range.
            if key && value.fract() == 0.0 && (i64::MIN as f64..-(i64::MIN as f64)).contains(&value)
            {
                encode_int(value as i64, out);
            } else {
                out.push(FLOAT);
                out.extend_from_slice(&value.to_le_bytes());
            }
        } else if let Ok(text) = object.cast::<PyString>() {
            encode_str(text, out)?;
        } else if let Ok(bytes) = object.cast::<PyBytes>() {
            encode_blob(BYTES, bytes.as_bytes(), out)?;
        } else if let Ok(tuple) = object.cast::<PyTuple>() {
            out.push(TUPLE);
            out.extend_from_slice(&(tuple.len() as u32).to_le_bytes());
            for item in tuple.iter() {
                self.encode(&item, key, depth + 1, out)?;
            }
        } else if let (false, Ok(list)) = (key, object.cast::<PyList>()) {
            // A snapshot of the items (the list may change while they are encoded).
            let items = list.to_tuple();
            out.push(LIST);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for item in items.iter() {
                self.encode(&item, key, depth + 1, out)?;
            }
        } else if let (false, Ok(dict)) = (key, object.cast::<PyDict>()) {
            let items = dict.items();
            out.push(DICT);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for pair in items.iter() {
                let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair.extract()?;
                self.encode(&k, true, depth + 1, out)?;
                self.encode(&v, false, depth + 1, out)?;
            }
        } else if let Some(reference) = if key { None } else { reference(object)? } {
            out.push(REF);
            self.encode(reference.as_any(), false, depth + 1, out)?;
        } else if self.pickle {
            let pickle = object.py().import("pickle")?;
            let dumped = pickle.call_method1("dumps", (object,))?;
            let dumped = dumped.cast::<PyBytes>()?;
            encode_blob(PICKLE, dumped.as_bytes(), out)?;
        } else {
            let what = object.get_type().name()?;
            if key && (object.is_instance_of::<PyList>() || object.is_instance_of::<PyDict>()) {
                return Err(PyTypeError::new_err(format!("unhashable type: '{what}'")));
            }
            return Err(PyTypeError::new_err(format!(
                "shmarena stores None, bool, int, float, str, bytes, tuples, lists and dicts \
                 of them and shmarena objects (as references), not {what}; create the object \
                 with pickle=True to store other picklable objects"
            )));
        }
        Ok(())
    }

    /// The object `bytes` encode (padding after the record is ignored).
    #[inline]
    pub fn decode<'py>(self, py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        // The commonest values (int, str, float, None) are built in the caller's frame:
        // an out-of-line decode answers through memory, and the caller's wider reload of
        // that answer stalls on store forwarding (perf: ~4% of a dict `get`). As
        // `decode_one` builds them; anything else, or anything short, goes there.
        match bytes {
            [INT, rest @ ..] => {
                if let Some(le) = rest.first_chunk::<8>() {
                    return Ok(i64::from_le_bytes(*le).into_pyobject(py)?.into_any());
                }
            }
            [STR, rest @ ..] => {
                if let Some((length, text)) = rest.split_first_chunk::<4>() {
                    let length = u32::from_le_bytes(*length) as usize;
                    if let Some(text) = text.get(..length) {
                        return str_from_utf8(py, text);
                    }
                }
            }
            [FLOAT, rest @ ..] => {
                if let Some(le) = rest.first_chunk::<8>() {
                    return Ok(PyFloat::new(py, f64::from_le_bytes(*le)).into_any());
                }
            }
            [NONE, ..] => return Ok(py.None().into_bound(py)),
            _ => {}
        }
        let mut reader = Reader { bytes, at: 0 };
        self.decode_one(py, &mut reader, 0)
    }

    fn decode_one<'py>(
        self,
        py: Python<'py>,
        reader: &mut Reader<'_>,
        depth: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        if depth > MAX_DEPTH {
            return Err(CorruptError::new_err("tuples nest too deep"));
        }
        let tag = reader.take(1)?[0];
        Ok(match tag {
            NONE => py.None().into_bound(py),
            FALSE => PyBool::new(py, false).to_owned().into_any(),
            TRUE => PyBool::new(py, true).to_owned().into_any(),
            INT => {
                let value = i64::from_le_bytes(reader.array()?);
                value.into_pyobject(py)?.into_any()
            }
            BIG_INT => {
                let digits = reader.blob()?;
                let kwargs = pyo3::types::PyDict::new(py);
                kwargs.set_item("signed", true)?;
                py.get_type::<PyInt>()
                    .getattr("from_bytes")?
                    .call((PyBytes::new(py, digits), "little"), Some(&kwargs))?
            }
            FLOAT => {
                let value = f64::from_le_bytes(reader.array()?);
                PyFloat::new(py, value).into_any()
            }
            STR => str_from_utf8(py, reader.blob()?)?,
            BYTES => PyBytes::new(py, reader.blob()?).into_any(),
            TUPLE => {
                let count = u32::from_le_bytes(reader.array()?) as usize;
                // Every item takes at least one byte: a count past the rest is corrupt.
                if count > reader.bytes.len() - reader.at {
                    return Err(CorruptError::new_err("a stored tuple's count is too large"));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.decode_one(py, reader, depth + 1)?);
                }
                PyTuple::new(py, items)?.into_any()
            }
            LIST | DICT => {
                let count = u32::from_le_bytes(reader.array()?) as usize;
                // Every item takes at least one byte: a count past the rest is corrupt.
                if count > reader.bytes.len() - reader.at {
                    return Err(CorruptError::new_err("a stored list's count is too large"));
                }
                if tag == LIST {
                    let list = PyList::empty(py);
                    for _ in 0..count {
                        list.append(self.decode_one(py, reader, depth + 1)?)?;
                    }
                    list.into_any()
                } else {
                    let dict = PyDict::new(py);
                    for _ in 0..count {
                        let key = self.decode_one(py, reader, depth + 1)?;
                        let value = self.decode_one(py, reader, depth + 1)?;
                        dict.set_item(key, value)?;
                    }
                    dict.into_any()
                }
            }
            REF => {
                let call = self.decode_one(py, reader, depth + 1)?;
                let call = call
                    .cast::<PyTuple>()
                    .map_err(|_| CorruptError::new_err("a stored reference is not a tuple"))?;
                let function: String = call
                    .get_item(0)
                    .and_then(|name| name.extract())
                    .map_err(|_| CorruptError::new_err("a stored reference has no function"))?;
                if !REBUILDERS.contains(&function.as_str()) {
                    return Err(CorruptError::new_err(format!(
                        "a stored reference names {function:?}, no shmarena rebuilder"
                    )));
                }
                let mut args = call.get_slice(1, call.len());
                if function == "open_region" && !self.allow_shared {
                    // (path, allow_shared): never more than this handle's region was given.
                    let path = args.get_item(0).map_err(|_| {
                        CorruptError::new_err("a stored region reference has no path")
                    })?;
                    args = PyTuple::new(py, [path, PyBool::new(py, false).to_owned().into_any()])?;
                }
                py.import("shmarena")?.getattr(function)?.call1(args)?
            }
            PICKLE if self.pickle => {
                let pickle = py.import("pickle")?;
                pickle.call_method1("loads", (PyBytes::new(py, reader.blob()?),))?
            }
            PICKLE => {
                return Err(CorruptError::new_err(
                    "a stored pickle met a handle opened without pickle=True (not loaded)",
                ))
            }
            other => {
                return Err(CorruptError::new_err(format!(
                    "unknown stored type tag {other:#x}"
                )))
            }
        })
    }
}

/// `(function name, args...)` when `object` is a shmarena object (or region) that pickles
/// as a call of one of [`REBUILDERS`]; `None` for any other object.
fn reference<'py>(object: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let py = object.py();
    if let Ok(region) = object.cast::<PyRegion>() {
        let region = region.get();
        let path = region.region().path().to_string_lossy().into_owned();
        return Ok(Some(PyTuple::new(
            py,
            [
                "open_region".into_pyobject(py)?.into_any(),
                path.into_pyobject(py)?.into_any(),
                PyBool::new(py, region.allows_shared())
                    .to_owned()
                    .into_any(),
            ],
        )?));
    }
    let module: String = object.get_type().getattr("__module__")?.extract()?;
    if module != "shmarena" && module != "shmarena._shmarena" {
        return Ok(None);
    }
    let reduced = object.call_method0("__reduce__")?;
    let Ok((function, args)) = reduced.extract::<(Bound<'py, PyAny>, Bound<'py, PyTuple>)>() else {
        return Ok(None);
    };
    let shmarena = py.import("shmarena")?;
    for name in REBUILDERS {
        if shmarena.getattr(name)?.is(&function) {
            let head = PyTuple::new(py, [name])?;
            return Ok(Some(head.add(args)?.cast_into::<PyTuple>()?));
        }
    }
    Ok(None)
}

/// `encoded + delta` when `encoded` is an int that stays in 64 bits (what a counter
/// holds): the sum's encoding, computed without Python objects. `None` sends the caller
/// to Python's arithmetic (floats, big ints, other types).
pub fn add_small_int(encoded: &[u8], delta: i64) -> Option<(i64, Encoded)> {
    let (&tag, rest) = encoded.split_first()?;
    if tag != INT || rest.len() < 8 {
        return None;
    }
    let value = i64::from_le_bytes(rest[..8].try_into().ok()?);
    let sum = value.checked_add(delta)?;
    let mut out = Encoded::new();
    encode_int(sum, &mut out);
    Some((sum, out))
}

fn encode_int(value: i64, out: &mut Encoded) {
    let mut record = [INT; 9];
    record[1..].copy_from_slice(&value.to_le_bytes());
    out.extend_from_slice(&record);
}

/// An int (or subclass): in 64 bits as `INT`, else as `BIG_INT`.
fn encode_any_int(object: &Bound<'_, PyAny>, out: &mut Encoded) -> PyResult<()> {
    match object.extract::<i64>() {
        Ok(value) => {
            encode_int(value, out);
            Ok(())
        }
        Err(_) => encode_big_int(object, out),
    }
}

/// A str (or subclass), as its UTF-8 bytes.
fn encode_str(text: &Bound<'_, PyString>, out: &mut Encoded) -> PyResult<()> {
    encode_blob(STR, text.to_cow()?.as_bytes(), out)
}

fn encode_big_int(object: &Bound<'_, PyAny>, out: &mut Encoded) -> PyResult<()> {
    // Two's complement, little-endian, the fewest bytes that hold it (canonical).
    let bits: usize = object.call_method0("bit_length")?.extract()?;
    let length = bits / 8 + 1;
    let kwargs = pyo3::types::PyDict::new(object.py());
    kwargs.set_item("signed", true)?;
    let bytes = object.call_method("to_bytes", (length, "little"), Some(&kwargs))?;
    encode_blob(BIG_INT, bytes.cast::<PyBytes>()?.as_bytes(), out)
}

fn encode_blob(tag: u8, bytes: &[u8], out: &mut Encoded) -> PyResult<()> {
    let length = u32::try_from(bytes.len())
        .map_err(|_| PyValueError::new_err("objects over 4 GiB cannot be stored"))?;
    let [a, b, c, d] = length.to_le_bytes();
    let header = [tag, a, b, c, d];
    if out.is_empty() && HEADER + bytes.len() <= out.inline_size() {
        // A whole short encoding (a str or bytes key, most often) made on the stack at
        // once: `SmallVec`'s insertions each check and move on their own (measured: ~120
        // instructions for the header and 6 bytes).
        let mut record = [0u8; 48];
        record[..HEADER].copy_from_slice(&header);
        record[HEADER..HEADER + bytes.len()].copy_from_slice(bytes);
        *out = Encoded::from_buf_and_len(record, HEADER + bytes.len());
        return Ok(());
    }
    out.extend_from_slice(&header);
    out.extend_from_slice(bytes);
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> PyResult<&'a [u8]> {
        let end = self
            .at
            .checked_add(count)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| CorruptError::new_err("a stored object runs past its slot"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> PyResult<[u8; N]> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn blob(&mut self) -> PyResult<&'a [u8]> {
        let length = u32::from_le_bytes(self.array()?) as usize;
        self.take(length)
    }
}
