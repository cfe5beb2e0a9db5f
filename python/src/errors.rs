//! shmarena's errors as Python exceptions.

use pyo3::exceptions::{
    PyException, PyIndexError, PyMemoryError, PyOverflowError, PyPermissionError, PyRuntimeError,
    PyTimeoutError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use shmarena::Error;

pyo3::create_exception!(
    _shmarena,
    ShmarenaError,
    PyException,
    "An error of the shared region (I/O, a full region, a corrupt file, ...)."
);
pyo3::create_exception!(
    _shmarena,
    CorruptError,
    ShmarenaError,
    "The region holds something no shmarena process wrote: it was corrupted."
);
pyo3::create_exception!(
    _shmarena,
    FullError,
    ShmarenaError,
    "A fixed-capacity object (dict, list, set) has no room left; create it with a larger capacity."
);
pyo3::create_exception!(
    _shmarena,
    OwnerDiedError,
    PyRuntimeError,
    "The lock was acquired, but its previous owner died holding it: what it protects may be \
     half updated. The caller now holds the lock; repair, then call mark_consistent() (or \
     release without it, and the next owner is told again)."
);

static NOT_OWNED: pyo3::sync::PyOnceLock<Py<pyo3::types::PyType>> = pyo3::sync::PyOnceLock::new();

/// `NotOwnedError`, a subclass of both `AssertionError` (what `multiprocessing`'s RLock
/// and Condition raise for a thread that does not hold the lock) and `RuntimeError`
/// (what `threading`'s, and so a manager's, raise): code written for either catches it.
pub fn not_owned_type(py: Python<'_>) -> PyResult<&Bound<'_, pyo3::types::PyType>> {
    NOT_OWNED
        .get_or_try_init(py, || {
            let builtins = py.import("builtins")?;
            let bases = (
                builtins.getattr("AssertionError")?,
                builtins.getattr("RuntimeError")?,
            );
            let namespace = pyo3::types::PyDict::new(py);
            namespace.set_item("__module__", "shmarena._shmarena")?;
            namespace.set_item(
                "__doc__",
                "A lock released, or a condition used, by a thread that does not hold the \
                 lock: an AssertionError as multiprocessing's and a RuntimeError as \
                 threading's.",
            )?;
            let class = builtins
                .getattr("type")?
                .call1(("NotOwnedError", bases, namespace))?;
            Ok(class.cast_into::<pyo3::types::PyType>()?.unbind())
        })
        .map(|class| class.bind(py))
}

/// A `NotOwnedError` with `message`.
pub fn not_owned(message: &'static str) -> PyErr {
    Python::attach(|py| match not_owned_type(py) {
        Ok(class) => PyErr::from_type(class.clone(), message),
        Err(error) => error,
    })
}

/// The Python exception for a shmarena error.
pub fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::InvalidArgument(_) | Error::InvalidName { .. } | Error::InvalidSize { .. } => {
            PyValueError::new_err(message)
        }
        Error::TypeMismatch { .. } => PyTypeError::new_err(message),
        Error::Overflow => PyOverflowError::new_err(message),
        Error::IndexOutOfBounds { .. } => PyIndexError::new_err(message),
        Error::Timeout { .. } => PyTimeoutError::new_err(message),
        Error::WritableByOthers { .. } => PyPermissionError::new_err(message),
        Error::NotHeld(_) => PyRuntimeError::new_err(message),
        Error::TooManyReleases { .. } => PyValueError::new_err("Semaphore released too many times"),
        Error::Full { .. } | Error::QueueFull => FullError::new_err(message),
        Error::OutOfMemory { .. } => PyMemoryError::new_err(message),
        Error::Corrupt { .. } | Error::InvalidValue { .. } => CorruptError::new_err(message),
        Error::BrokenBarrier(_) => broken_barrier(message),
        _ => ShmarenaError::new_err(message),
    }
}

/// `threading.BrokenBarrierError`, what `multiprocessing`'s barrier raises.
pub fn broken_barrier(message: String) -> PyErr {
    Python::attach(|py| {
        match py
            .import("threading")
            .and_then(|threading| threading.getattr("BrokenBarrierError"))
        {
            Ok(class) => PyErr::from_value(
                class
                    .call1((message,))
                    .unwrap_or_else(|error| error.into_value(py).into_bound(py).into_any()),
            ),
            Err(error) => error,
        }
    })
}

/// `queue.Full` or `queue.Empty`, what `multiprocessing.Queue` raises.
pub fn queue_error(py: Python<'_>, which: &str) -> PyErr {
    match py.import("queue").and_then(|queue| queue.getattr(which)) {
        Ok(class) => match class.call0() {
            Ok(instance) => PyErr::from_value(instance),
            Err(error) => error,
        },
        Err(error) => error,
    }
}

/// Converts a shmarena result.
pub trait IntoPy<T> {
    /// The value, or the Python exception for the error.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for shmarena::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
