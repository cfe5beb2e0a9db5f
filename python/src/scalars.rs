//! `Value` and `Array` for the typecodes of `multiprocessing` (`b B h H i I l L q Q f d`,
//! `c` one byte, `u` one character), with atomic arithmetic and, for arrays, the buffer
//! protocol.

use std::ffi::{c_int, c_void, CStr};

use pyo3::exceptions::{PyBufferError, PyIndexError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PySlice, PyString, PyTuple};
use shmarena::{Array, AtomicScalar, Scalar, Value};

use crate::errors::IntoPy;
use crate::region::PyRegion;

/// A typecode: the Rust type, and how Python sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
    /// `c`: one byte, seen as a `bytes` of length 1 (stored as `u8`).
    Byte,
    /// `u`: one character, seen as a `str` of length 1 (stored as `char`).
    Char,
}

impl Code {
    fn parse(typecode: &str) -> PyResult<Self> {
        Ok(match typecode {
            "b" => Code::I8,
            "B" => Code::U8,
            "h" => Code::I16,
            "H" => Code::U16,
            "i" => Code::I32,
            "I" => Code::U32,
            "l" | "q" => Code::I64,
            "L" | "Q" => Code::U64,
            "f" => Code::F32,
            "d" => Code::F64,
            "c" => Code::Byte,
            "u" => Code::Char,
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unsupported typecode {other:?}: use one of b B h H i I l L q Q f d c u"
                )))
            }
        })
    }

    /// The typecode as given back to Python (`l` and `q` are the same type here).
    fn letter(self) -> &'static str {
        match self {
            Code::I8 => "b",
            Code::U8 => "B",
            Code::I16 => "h",
            Code::U16 => "H",
            Code::I32 => "i",
            Code::U32 => "I",
            Code::I64 => "q",
            Code::U64 => "Q",
            Code::F32 => "f",
            Code::F64 => "d",
            Code::Byte => "c",
            Code::Char => "u",
        }
    }

    /// The struct-module format of one element, for the buffer protocol.
    fn format(self) -> &'static CStr {
        match self {
            Code::I8 => c"b",
            Code::U8 => c"B",
            Code::I16 => c"h",
            Code::U16 => c"H",
            Code::I32 => c"i",
            Code::U32 => c"I",
            Code::I64 => c"q",
            Code::U64 => c"Q",
            Code::F32 => c"f",
            Code::F64 => c"d",
            Code::Byte => c"c",
            Code::Char => c"w",
        }
    }
}

/// A Rust scalar as Python sees it.
trait PyScalar: Scalar {
    fn to_py(self, py: Python<'_>, code: Code) -> PyResult<Bound<'_, PyAny>>;
    fn from_py(object: &Bound<'_, PyAny>, code: Code) -> PyResult<Self>;
    /// `self + delta`, or `OverflowError` (ints) / `TypeError` (no arithmetic).
    fn plus(self, delta: &Bound<'_, PyAny>, code: Code) -> PyResult<Self>;
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl PyScalar for $t {
            fn to_py(self, py: Python<'_>, code: Code) -> PyResult<Bound<'_, PyAny>> {
                if code == Code::Byte {
                    return Ok(PyBytes::new(py, &[self as u8]).into_any());
                }
                Ok(self.into_pyobject(py)?.into_any())
            }
            fn from_py(object: &Bound<'_, PyAny>, code: Code) -> PyResult<Self> {
                if code == Code::Byte {
                    return match object.cast::<PyBytes>() {
                        Ok(bytes) if bytes.as_bytes().len() == 1 => Ok(bytes.as_bytes()[0] as $t),
                        _ => Err(PyTypeError::new_err("typecode 'c' takes a bytes of length 1")),
                    };
                }
                object.extract::<$t>().map_err(|error| {
                    if object.is_instance_of::<pyo3::types::PyInt>() {
                        PyOverflowError::new_err(format!(
                            "{} does not fit typecode {:?}",
                            object,
                            code.letter()
                        ))
                    } else {
                        error
                    }
                })
            }
            fn plus(self, delta: &Bound<'_, PyAny>, code: Code) -> PyResult<Self> {
                if code == Code::Byte {
                    return Err(PyTypeError::new_err("typecode 'c' has no arithmetic"));
                }
                let delta: i128 = delta.extract()?;
                i128::from(self)
                    .checked_add(delta)
                    .and_then(|sum| <$t>::try_from(sum).ok())
                    .ok_or_else(|| PyOverflowError::new_err(format!(
                        "{self} + {delta} does not fit typecode {:?}",
                        code.letter()
                    )))
            }
        }
    )*};
}
integer!(i8, u8, i16, u16, i32, u32, i64, u64);

macro_rules! float {
    ($($t:ty),*) => {$(
        impl PyScalar for $t {
            fn to_py(self, py: Python<'_>, _code: Code) -> PyResult<Bound<'_, PyAny>> {
                Ok(f64::from(self).into_pyobject(py)?.into_any())
            }
            fn from_py(object: &Bound<'_, PyAny>, _code: Code) -> PyResult<Self> {
                Ok(object.extract::<f64>()? as $t)
            }
            fn plus(self, delta: &Bound<'_, PyAny>, _code: Code) -> PyResult<Self> {
                Ok((f64::from(self) + delta.extract::<f64>()?) as $t)
            }
        }
    )*};
}
float!(f32, f64);

impl PyScalar for char {
    fn to_py(self, py: Python<'_>, _code: Code) -> PyResult<Bound<'_, PyAny>> {
        Ok(PyString::new(py, self.encode_utf8(&mut [0; 4])).into_any())
    }
    fn from_py(object: &Bound<'_, PyAny>, _code: Code) -> PyResult<Self> {
        let text: String = object
            .extract()
            .map_err(|_| PyTypeError::new_err("typecode 'u' takes a str of length 1"))?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(PyTypeError::new_err("typecode 'u' takes a str of length 1")),
        }
    }
    fn plus(self, _delta: &Bound<'_, PyAny>, _code: Code) -> PyResult<Self> {
        Err(PyTypeError::new_err("typecode 'u' has no arithmetic"))
    }
}

/// One shared cell, any typecode.
trait Cell: Send + Sync {
    fn get<'py>(&self, py: Python<'py>, code: Code) -> PyResult<Bound<'py, PyAny>>;
    fn set(&self, value: &Bound<'_, PyAny>, code: Code) -> PyResult<()>;
    /// Whether `value` can be stored (the error `set` would raise).
    fn check(&self, value: &Bound<'_, PyAny>, code: Code) -> PyResult<()>;
    /// Adds atomically; the previous value and the value stored.
    fn fetch_add<'py>(
        &self,
        py: Python<'py>,
        delta: &Bound<'py, PyAny>,
        code: Code,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)>;
    /// Stores `new` if the value is `current`; (whether it did, the value seen).
    fn compare_exchange<'py>(
        &self,
        py: Python<'py>,
        current: &Bound<'py, PyAny>,
        new: &Bound<'py, PyAny>,
        code: Code,
    ) -> PyResult<(bool, Bound<'py, PyAny>)>;
}

impl<T: PyScalar> Cell for AtomicScalar<T> {
    fn get<'py>(&self, py: Python<'py>, code: Code) -> PyResult<Bound<'py, PyAny>> {
        self.try_load().py()?.to_py(py, code)
    }

    fn set(&self, value: &Bound<'_, PyAny>, code: Code) -> PyResult<()> {
        self.store(T::from_py(value, code)?);
        Ok(())
    }

    fn check(&self, value: &Bound<'_, PyAny>, code: Code) -> PyResult<()> {
        T::from_py(value, code).map(|_| ())
    }

    fn fetch_add<'py>(
        &self,
        py: Python<'py>,
        delta: &Bound<'py, PyAny>,
        code: Code,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        // A compare-exchange loop: exact for any delta, and overflow leaves the value as
        // it was. (The bounded `Err` case is only another process's change: retry.)
        let mut current = self.try_load().py()?;
        loop {
            let new = current.plus(delta, code)?;
            match self.try_compare_exchange(current, new).py()? {
                Ok(previous) => return Ok((previous.to_py(py, code)?, new.to_py(py, code)?)),
                Err(actual) => current = actual,
            }
        }
    }

    fn compare_exchange<'py>(
        &self,
        py: Python<'py>,
        current: &Bound<'py, PyAny>,
        new: &Bound<'py, PyAny>,
        code: Code,
    ) -> PyResult<(bool, Bound<'py, PyAny>)> {
        let (current, new) = (T::from_py(current, code)?, T::from_py(new, code)?);
        Ok(match self.try_compare_exchange(current, new).py()? {
            Ok(previous) => (true, previous.to_py(py, code)?),
            Err(actual) => (false, actual.to_py(py, code)?),
        })
    }
}

macro_rules! dispatch {
    ($enum:ident, $value:expr, $handle:ident => $body:expr) => {
        match $value {
            $enum::I8($handle) => $body,
            $enum::U8($handle) => $body,
            $enum::I16($handle) => $body,
            $enum::U16($handle) => $body,
            $enum::I32($handle) => $body,
            $enum::U32($handle) => $body,
            $enum::I64($handle) => $body,
            $enum::U64($handle) => $body,
            $enum::F32($handle) => $body,
            $enum::F64($handle) => $body,
            $enum::Char($handle) => $body,
        }
    };
}

/// Builds the handle of `code`'s Rust type: `$make` is called with the type.
macro_rules! for_code {
    ($enum:ident, $code:expr, $make:ident) => {
        match $code {
            Code::I8 => $enum::I8($make!(i8)),
            Code::U8 | Code::Byte => $enum::U8($make!(u8)),
            Code::I16 => $enum::I16($make!(i16)),
            Code::U16 => $enum::U16($make!(u16)),
            Code::I32 => $enum::I32($make!(i32)),
            Code::U32 => $enum::U32($make!(u32)),
            Code::I64 => $enum::I64($make!(i64)),
            Code::U64 => $enum::U64($make!(u64)),
            Code::F32 => $enum::F32($make!(f32)),
            Code::F64 => $enum::F64($make!(f64)),
            Code::Char => $enum::Char($make!(char)),
        }
    };
}

macro_rules! handles {
    ($enum:ident, $handle:ident) => {
        enum $enum {
            I8($handle<i8>),
            U8($handle<u8>),
            I16($handle<i16>),
            U16($handle<u16>),
            I32($handle<i32>),
            U32($handle<u32>),
            I64($handle<i64>),
            U64($handle<u64>),
            F32($handle<f32>),
            F64($handle<f64>),
            Char($handle<char>),
        }
    };
}

handles!(Values, Value);
handles!(Arrays, Array);

impl Values {
    fn cell(&self) -> &dyn Cell {
        dispatch!(Values, self, value => &**value)
    }

    fn name(&self) -> &str {
        dispatch!(Values, self, value => value.name())
    }
}

/// `multiprocessing.Value`: one shared scalar. `.value` reads and writes it; `add`,
/// `fetch_add` and `compare_exchange` change it atomically (no `+=` race, no lock).
#[pyclass(module = "shmarena._shmarena", name = "Value", frozen, subclass)]
pub struct PyValue {
    value: Values,
    code: Code,
    region: Py<PyRegion>,
}

#[pymethods]
impl PyValue {
    /// Opens the Value `name` in `region`, creating it holding `initial` if absent.
    #[new]
    #[pyo3(signature = (region, name, typecode, initial = None))]
    fn new(
        region: &Bound<'_, PyRegion>,
        name: &str,
        typecode: &str,
        initial: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let code = Code::parse(typecode)?;
        let rust_region = region.get().region();
        macro_rules! make {
            ($t:ty) => {{
                let initial: $t = match initial {
                    Some(initial) => <$t as PyScalar>::from_py(initial, code)?,
                    None => bytemuck::Zeroable::zeroed(),
                };
                Value::get_or_create(rust_region, name, initial).py()?
            }};
        }
        let value = if code == Code::Char {
            let initial = match initial {
                Some(initial) => char::from_py(initial, code)?,
                None => '\0',
            };
            Values::Char(Value::get_or_create(rust_region, name, initial).py()?)
        } else {
            for_code!(Values, code, make)
        };
        Ok(Self {
            value,
            code,
            region: region.clone().unbind(),
        })
    }

    /// The current value.
    #[getter]
    fn get_value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.value.cell().get(py, self.code)
    }

    /// Stores a value (`OverflowError` if it does not fit the typecode).
    #[setter]
    fn set_value(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.value.cell().set(value, self.code)
    }

    /// The current value (`Manager().Value`'s proxy method; the same as `.value`).
    fn get<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.get_value(py)
    }

    /// Stores a value (`Manager().Value`'s proxy method; the same as `.value = value`).
    fn set(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set_value(value)
    }

    /// Adds `delta` atomically; the previous value. `OverflowError` leaves it unchanged.
    #[pyo3(signature = (delta = None))]
    fn fetch_add<'py>(
        &self,
        py: Python<'py>,
        delta: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let one = 1i64.into_pyobject(py)?.into_any();
        let (previous, _) = self
            .value
            .cell()
            .fetch_add(py, delta.unwrap_or(&one), self.code)?;
        Ok(previous)
    }

    /// Adds `delta` atomically; the new value (as stored: an 'f' sum is rounded to 32 bits).
    #[pyo3(signature = (delta = None))]
    fn add<'py>(
        &self,
        py: Python<'py>,
        delta: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let one = 1i64.into_pyobject(py)?.into_any();
        let (_, stored) = self
            .value
            .cell()
            .fetch_add(py, delta.unwrap_or(&one), self.code)?;
        Ok(stored)
    }

    /// Stores `new` if the value is `expected`: `(True, expected)` when it did, else
    /// `(False, actual)`.
    fn compare_exchange<'py>(
        &self,
        py: Python<'py>,
        expected: &Bound<'py, PyAny>,
        new: &Bound<'py, PyAny>,
    ) -> PyResult<(bool, Bound<'py, PyAny>)> {
        self.value
            .cell()
            .compare_exchange(py, expected, new, self.code)
    }

    /// The region holding the object.
    #[getter]
    fn region(&self, py: Python<'_>) -> Py<PyRegion> {
        self.region.clone_ref(py)
    }

    /// The typecode.
    #[getter]
    fn typecode(&self) -> &'static str {
        self.code.letter()
    }

    /// The object's name in its region.
    #[getter]
    fn name(&self) -> &str {
        self.value.name()
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        crate::region::reduce(
            slf.py(),
            "Value",
            &this.region,
            this.value.name(),
            (this.code.letter(),),
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<shmarena.Value {:?} {:?} {}>",
            self.value.name(),
            self.code.letter(),
            self.value.cell().get(py, self.code)?.repr()?
        ))
    }
}

impl Arrays {
    fn len(&self) -> usize {
        dispatch!(Arrays, self, array => array.len())
    }

    fn name(&self) -> &str {
        dispatch!(Arrays, self, array => array.name())
    }

    fn cell(&self, index: usize) -> PyResult<&dyn Cell> {
        dispatch!(Arrays, self, array => array.at(index).map(|cell| cell as &dyn Cell).py())
    }

    fn base(&self) -> *mut c_void {
        dispatch!(Arrays, self, array => array.as_slice().as_ptr() as *mut c_void)
    }
}

/// `multiprocessing.Array`: a fixed-length shared array of one typecode, with the
/// sequence protocol, slices, atomic element arithmetic and the buffer protocol
/// (`numpy.frombuffer(arr, dtype)` is a writable view of the shared memory).
#[pyclass(
    module = "shmarena._shmarena",
    name = "Array",
    frozen,
    sequence,
    subclass
)]
pub struct PyArray {
    array: Arrays,
    code: Code,
    /// Element count and size for buffer views (pointed to by `Py_buffer`).
    shape: [isize; 1],
    strides: [isize; 1],
    region: Py<PyRegion>,
}

impl PyArray {
    fn index(&self, index: isize) -> PyResult<usize> {
        let len = self.array.len() as isize;
        let index = if index < 0 { index + len } else { index };
        if (0..len).contains(&index) {
            Ok(index as usize)
        } else {
            Err(PyIndexError::new_err("array index out of range"))
        }
    }

    /// Every byte of a 'c' array.
    fn raw_bytes(&self, py: Python<'_>) -> PyResult<Vec<u8>> {
        if self.code != Code::Byte {
            return Err(PyTypeError::new_err(
                "only a 'c' array has bytes value and raw",
            ));
        }
        (0..self.array.len())
            .map(|index| {
                let item = self.array.cell(index)?.get(py, self.code)?;
                Ok(item.cast::<PyBytes>()?.as_bytes()[0])
            })
            .collect()
    }

    /// A slice's elements joined the way `multiprocessing` returns them: `bytes` for
    /// `c`, `str` for `u`, else a list.
    fn joined<'py>(
        &self,
        py: Python<'py>,
        items: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.code {
            Code::Byte => {
                let bytes: Vec<u8> = items
                    .iter()
                    .map(|item| Ok(item.cast::<PyBytes>()?.as_bytes()[0]))
                    .collect::<PyResult<_>>()?;
                Ok(PyBytes::new(py, &bytes).into_any())
            }
            Code::Char => {
                let text: String = items
                    .iter()
                    .map(PyAnyMethods::extract::<String>)
                    .collect::<PyResult<_>>()?;
                Ok(PyString::new(py, &text).into_any())
            }
            _ => Ok(pyo3::types::PyList::new(py, items)?.into_any()),
        }
    }
}

#[pymethods]
impl PyArray {
    /// Opens the Array `name` in `region`; creates it from `initializer` (an int: that
    /// many zeros; else a sequence) if absent.
    #[new]
    fn new(
        py: Python<'_>,
        region: &Bound<'_, PyRegion>,
        name: &str,
        typecode: &str,
        initializer: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let code = Code::parse(typecode)?;
        let rust_region = region.get().region();
        let length: Option<usize> =
            if initializer.is_instance_of::<pyo3::types::PyInt>() {
                Some(initializer.extract().map_err(|_| {
                    PyValueError::new_err("an Array's size must be a non-negative int")
                })?)
            } else {
                None
            };
        macro_rules! make {
            ($t:ty) => {{
                match length {
                    Some(length) => Array::<$t>::get_or_create_zeroed(rust_region, name, length),
                    None => {
                        // Iterating bytes gives ints: a 'c' array takes each as one byte.
                        let items: Vec<$t> = match initializer.cast::<PyBytes>() {
                            Ok(bytes) if code == Code::Byte => bytes
                                .as_bytes()
                                .iter()
                                .map(|&byte| {
                                    <$t as PyScalar>::from_py(
                                        PyBytes::new(initializer.py(), &[byte]).as_any(),
                                        code,
                                    )
                                })
                                .collect::<PyResult<_>>()?,
                            _ => initializer
                                .try_iter()?
                                .map(|item| <$t as PyScalar>::from_py(&item?, code))
                                .collect::<PyResult<_>>()?,
                        };
                        Array::<$t>::get_or_create(rust_region, name, &items)
                    }
                }
                .py()?
            }};
        }
        let array = for_code!(Arrays, code, make);
        let _ = py;
        let len = array.len() as isize;
        let item_size = match code {
            Code::I8 | Code::U8 | Code::Byte => 1,
            Code::I16 | Code::U16 => 2,
            Code::I32 | Code::U32 | Code::F32 | Code::Char => 4,
            Code::I64 | Code::U64 | Code::F64 => 8,
        };
        Ok(Self {
            array,
            code,
            shape: [len],
            strides: [item_size],
            region: region.clone().unbind(),
        })
    }

    fn __len__(&self) -> usize {
        self.array.len()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(slice) = key.cast::<PySlice>() {
            let indices = slice.indices(self.array.len() as isize)?;
            let mut items = Vec::with_capacity(indices.slicelength);
            let mut at = indices.start;
            for _ in 0..indices.slicelength {
                items.push(self.array.cell(at as usize)?.get(py, self.code)?);
                at += indices.step;
            }
            return self.joined(py, items);
        }
        let index = self.index(key.extract()?)?;
        self.array.cell(index)?.get(py, self.code)
    }

    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(slice) = key.cast::<PySlice>() {
            let indices = slice.indices(self.array.len() as isize)?;
            let values: Vec<Bound<'_, PyAny>> = if matches!(self.code, Code::Byte) {
                let bytes = value.cast::<PyBytes>()?.as_bytes();
                bytes
                    .iter()
                    .map(|b| PyBytes::new(value.py(), &[*b]).into_any())
                    .collect()
            } else {
                value.try_iter()?.collect::<PyResult<_>>()?
            };
            if values.len() != indices.slicelength {
                return Err(PyValueError::new_err(
                    "can only assign a sequence of the same length to an Array slice",
                ));
            }
            // Check every value first, so a bad one changes nothing.
            let mut at = indices.start;
            for value in &values {
                self.array.cell(at as usize)?.check(value, self.code)?;
                at += indices.step;
            }
            let mut at = indices.start;
            for value in &values {
                self.array.cell(at as usize)?.set(value, self.code)?;
                at += indices.step;
            }
            return Ok(());
        }
        let index = self.index(key.extract()?)?;
        self.array.cell(index)?.set(value, self.code)
    }

    /// A 'c' array's bytes up to the first zero byte (ctypes' `value`).
    #[getter]
    fn get_value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let raw = self.raw_bytes(py)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Ok(PyBytes::new(py, &raw[..end]).into_any())
    }

    /// Stores `value` in a 'c' array, followed by a zero byte when there is room.
    #[setter]
    fn set_value(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.code != Code::Byte {
            return Err(PyTypeError::new_err("only a 'c' array has a bytes value"));
        }
        let bytes = value.cast::<PyBytes>()?.as_bytes();
        if bytes.len() > self.array.len() {
            return Err(PyValueError::new_err("byte string too long"));
        }
        let py = value.py();
        for (index, &byte) in bytes.iter().chain([0u8].iter()).enumerate() {
            if index < self.array.len() {
                self.array
                    .cell(index)?
                    .set(PyBytes::new(py, &[byte]).as_any(), self.code)?;
            }
        }
        Ok(())
    }

    /// A 'c' array's bytes, all of them (ctypes' `raw`).
    #[getter]
    fn raw<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.raw_bytes(py)?))
    }

    /// Adds `delta` to element `index` atomically; the previous value.
    #[pyo3(signature = (index, delta = None))]
    fn fetch_add<'py>(
        &self,
        py: Python<'py>,
        index: isize,
        delta: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let one = 1i64.into_pyobject(py)?.into_any();
        let (previous, _) =
            self.array
                .cell(self.index(index)?)?
                .fetch_add(py, delta.unwrap_or(&one), self.code)?;
        Ok(previous)
    }

    /// Stores `new` at `index` if it holds `expected`: `(True, expected)` or
    /// `(False, actual)`.
    fn compare_exchange<'py>(
        &self,
        py: Python<'py>,
        index: isize,
        expected: &Bound<'py, PyAny>,
        new: &Bound<'py, PyAny>,
    ) -> PyResult<(bool, Bound<'py, PyAny>)> {
        self.array
            .cell(self.index(index)?)?
            .compare_exchange(py, expected, new, self.code)
    }

    /// The region holding the object.
    #[getter]
    fn region(&self, py: Python<'_>) -> Py<PyRegion> {
        self.region.clone_ref(py)
    }

    /// The typecode.
    #[getter]
    fn typecode(&self) -> &'static str {
        self.code.letter()
    }

    /// The object's name in its region.
    #[getter]
    fn name(&self) -> &str {
        self.array.name()
    }

    /// Exposes the elements as a writable buffer (plain loads and stores: use the atomic
    /// methods where processes race on one element).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("no buffer view to fill"));
        }
        let this = slf.get();
        let len = this.shape[0];
        let item_size = this.strides[0];
        let base = this.array.base();
        let format = this.code.format();
        // SAFETY: `view` is a valid Py_buffer to fill (the caller's contract). The buffer
        // is the array's elements in the shared mapping, which stays mapped while `obj`
        // (a new reference to this object, holding the region) lives; `shape` and
        // `strides` point into this frozen object, also kept alive by `obj`; CPython
        // never writes through `format`, `shape` or `strides`.
        unsafe {
            (*view).obj = slf.clone().into_any().into_ptr();
            (*view).buf = base;
            (*view).len = len * item_size;
            (*view).readonly = 0;
            (*view).itemsize = item_size;
            (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
                format.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND {
                this.shape.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                this.strides.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
        }
        Ok(())
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        crate::region::reduce(
            slf.py(),
            "Array",
            &this.region,
            this.array.name(),
            (this.code.letter(), this.array.len()),
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let everything = PySlice::full(py);
        Ok(format!(
            "<shmarena.Array {:?} {:?} {}>",
            self.array.name(),
            self.code.letter(),
            self.__getitem__(py, &everything)?.repr()?
        ))
    }
}
