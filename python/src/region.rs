//! The region as a Python object, and how objects pickle: as (region path, name).

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use shmarena::RegionExt;

use crate::errors::IntoPy;

/// A shared region: one file, mapped by every process that opens it.
#[pyclass(module = "shmarena._shmarena", name = "Region", frozen)]
pub struct PyRegion {
    region: shmarena::Region,
}

impl PyRegion {
    /// The Rust region.
    pub fn region(&self) -> &shmarena::Region {
        &self.region
    }
}

#[pymethods]
impl PyRegion {
    /// Opens the region at `path` (a name means a file in /dev/shm), creating it with
    /// `size` bytes if it does not exist and a size is given.
    #[new]
    #[pyo3(signature = (path, size = None))]
    fn new(py: Python<'_>, path: std::path::PathBuf, size: Option<u64>) -> PyResult<Self> {
        let region = py
            .detach(|| match size {
                Some(size) => shmarena::Region::open_or_create(&path, size),
                None => shmarena::Region::open(&path),
            })
            .py()?;
        Ok(Self { region })
    }

    /// The region file's path.
    #[getter]
    fn path(&self) -> std::path::PathBuf {
        self.region.path().to_owned()
    }

    /// The region's size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.region.size()
    }

    /// Whether this handle created the region.
    #[getter]
    fn is_creator(&self) -> bool {
        self.region.is_creator()
    }

    /// Removes the region's file name (processes that have it open keep using it).
    fn unlink(&self) -> PyResult<()> {
        shmarena::Region::unlink(self.region.path()).py()
    }

    /// Names of the objects in the region.
    fn objects(&self) -> PyResult<Vec<String>> {
        Ok(self
            .region
            .objects()
            .py()?
            .into_iter()
            .map(|entry| entry.name)
            .collect())
    }

    /// A number no other call in any process returns for this region (for object names).
    fn next_id(&self) -> PyResult<u64> {
        Ok(self
            .region
            .value::<u64>("shmarena.next-id", 0)
            .py()?
            .fetch_add(1))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyAny>, (std::path::PathBuf,)) {
        (
            slf.get_type().into_any(),
            (slf.get().region.path().to_owned(),),
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "<shmarena.Region '{}' {} MiB>",
            self.region.path().display(),
            self.region.size() >> 20
        )
    }
}

/// What `__reduce__` returns for the object `name` of `kind` in `region`:
/// `shmarena._rebuild(kind, path, name, *extra)` opens it again in the unpickling process.
pub fn reduce<'py>(
    py: Python<'py>,
    kind: &str,
    region: &Py<PyRegion>,
    name: &str,
    extra: impl IntoPyObject<'py, Target = PyTuple>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
    let rebuild = py.import("shmarena")?.getattr("_rebuild")?;
    let path = region.get().region.path().to_owned();
    let head = (kind, path, name).into_pyobject(py)?;
    let extra = pyo3::BoundObject::into_bound(extra.into_pyobject(py).map_err(Into::into)?);
    let args = head.add(extra)?.cast_into::<PyTuple>()?;
    Ok((rebuild, args))
}
