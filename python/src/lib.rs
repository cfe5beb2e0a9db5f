//! The native part of the `shmarena` Python package: `multiprocessing`'s Value, Array
//! and Manager objects (dict, list, set, Queue, Lock, RLock, Condition, Event,
//! Semaphore, Barrier) as direct shared-memory operations on shmarena's structures.
//! The pure-Python part (`python/pysrc/shmarena`) adds the default region, `Manager()`,
//! `Namespace` and the `multiprocessing`-style constructors.

// Python methods keep the receivers and argument types Python's protocols and PyO3 give
// them, used or not.
#![allow(clippy::unused_self, clippy::needless_pass_by_value)]

mod codec;
mod collections;
mod errors;
mod locks;
mod region;
mod scalars;
mod spill;
mod wait;

use pyo3::prelude::*;

/// The extension module `shmarena._shmarena`.
#[pymodule]
fn _shmarena(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<region::PyRegion>()?;
    module.add_function(wrap_pyfunction!(region::collect_default_regions, module)?)?;
    module.add_class::<scalars::PyValue>()?;
    module.add_class::<scalars::PyArray>()?;
    module.add_class::<collections::PyDictProxy>()?;
    module.add_class::<collections::PyListProxy>()?;
    module.add_class::<collections::PySetProxy>()?;
    module.add_class::<collections::PyQueue>()?;
    module.add_class::<locks::PyLock>()?;
    module.add_class::<locks::PyRLock>()?;
    module.add_class::<locks::PyCondition>()?;
    module.add_class::<locks::PyEvent>()?;
    module.add_class::<locks::PySemaphore>()?;
    module.add_class::<locks::PyBarrier>()?;
    module.add("Error", py.get_type::<errors::ShmarenaError>())?;
    module.add("CorruptError", py.get_type::<errors::CorruptError>())?;
    module.add("FullError", py.get_type::<errors::FullError>())?;
    module.add("OwnerDiedError", py.get_type::<errors::OwnerDiedError>())?;
    module.add("NotOwnedError", errors::not_owned_type(py)?)?;
    module.add("RECORD_HEADER", codec::HEADER)?;
    Ok(())
}
