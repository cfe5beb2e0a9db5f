//! The region as a Python object, and how objects pickle: as (region path, name).

use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, PoisonError};

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use shmarena::RegionExt;

use crate::errors::IntoPy;

/// A shared region: one file, mapped by every process that opens it.
#[pyclass(module = "shmarena._shmarena", name = "Region", frozen)]
pub struct PyRegion {
    region: shmarena::Region,
    /// Whether this handle was opened with `allow_shared=True` (pickles carry it).
    allow_shared: bool,
}

impl PyRegion {
    /// The Rust region.
    pub fn region(&self) -> &shmarena::Region {
        &self.region
    }

    /// Whether this handle accepts a region file other users can write.
    pub fn allows_shared(&self) -> bool {
        self.allow_shared
    }
}

#[pymethods]
impl PyRegion {
    /// Opens the region at `path` (a name means a file in /dev/shm), creating it with
    /// `size` bytes if it does not exist and a size is given. A new region's catalog holds
    /// `max_objects` named objects (by default one per 16 KiB of size, from 512 to 65536;
    /// a dict takes two, a list three, anything else one, plus one for a `get_lock()`).
    ///
    /// A region file that another user can write (owned by another user, or writable by
    /// its group or others) is refused with `PermissionError` unless `allow_shared` is
    /// true: such a user can read and change every object, and truncate the file to kill
    /// every process using it (SIGBUS).
    ///
    /// `_collectable` (private, for the package's default region) marks a new region as a
    /// program's default region, which `collect_default_regions` (and `shmarena gc`) may
    /// remove once no live process has it open.
    #[new]
    #[pyo3(signature = (path, size = None, max_objects = None, *, allow_shared = false, _collectable = false))]
    // The Python keyword is private (leading underscore), and PyO3 takes its name from
    // the binding's.
    #[allow(clippy::used_underscore_binding)]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        size: Option<u64>,
        max_objects: Option<u64>,
        allow_shared: bool,
        _collectable: bool,
    ) -> PyResult<Self> {
        let resolved = shmarena::engine::resolve_path(&path).py()?;
        if let Some(region) = std::fs::metadata(&resolved)
            .ok()
            .and_then(|metadata| attached(file_id(&metadata)))
        {
            // The handle kept may have been opened with allow_shared, or the file's owner
            // or mode changed since: this call's choice is checked again.
            if !allow_shared {
                region.check_owner_and_mode().py()?;
            }
            return Ok(Self {
                region,
                allow_shared,
            });
        }
        let opening = shmarena::RegionOptions {
            allow_shared,
            ..shmarena::RegionOptions::default()
        };
        let region = py
            .detach(|| match size {
                Some(size) => {
                    let options = shmarena::RegionOptions {
                        catalog_capacity: max_objects.unwrap_or((size / 16384).clamp(512, 65536)),
                        // Every process of a program (each fork child, each Pool worker) is a
                        // participant: the largest table (4095 slots of 64 bytes).
                        participant_capacity: shmarena::engine::layout::MAX_PARTICIPANTS,
                        collectable: _collectable,
                        ..opening
                    };
                    shmarena::Region::open_or_create_with(&resolved, size, &options)
                }
                None => shmarena::Region::open_with(&resolved, &opening),
            })
            .py()?;
        Ok(Self {
            region: remember(region),
            allow_shared,
        })
    }

    /// Whether this handle accepts a region file other users can write.
    #[getter]
    fn allow_shared(&self) -> bool {
        self.allow_shared
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

    /// Pickles as `shmarena.open_region(path, allow_shared)`: the unpickling process opens
    /// the same file, with the same choice about files other users can write.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (std::path::PathBuf, bool))> {
        let this = slf.get();
        Ok((
            slf.py().import("shmarena")?.getattr("open_region")?,
            (this.region.path().to_owned(), this.allow_shared),
        ))
    }

    fn __repr__(&self) -> String {
        format!(
            "<shmarena.Region '{}' {} MiB>",
            self.region.path().display(),
            self.region.size() >> 20
        )
    }
}

/// Regions this process has open, by file identity: opening a region again (for example
/// when unpickling an object) gives the same handle, so the process is one participant of
/// the region, and a lock it took through one object is released through another.
static ATTACHED: Mutex<Vec<((u64, u64), shmarena::Region)>> = Mutex::new(Vec::new());

fn file_id(metadata: &std::fs::Metadata) -> (u64, u64) {
    (metadata.dev(), metadata.ino())
}

/// The region this process has open as the file `id`, if its name still links to it (an
/// unlinked file's inode number may come back for a new file).
fn attached(id: (u64, u64)) -> Option<shmarena::Region> {
    find(
        &mut ATTACHED.lock().unwrap_or_else(PoisonError::into_inner),
        id,
    )
}

fn find(
    open: &mut Vec<((u64, u64), shmarena::Region)>,
    id: (u64, u64),
) -> Option<shmarena::Region> {
    open.retain(|(_, region)| {
        region
            .file_metadata()
            .is_ok_and(|metadata| metadata.nlink() > 0)
    });
    open.iter()
        .find(|(known, _)| *known == id)
        .map(|(_, region)| region.clone())
}

/// Keeps `region` for later opens of the same file, or gives the handle already kept.
fn remember(region: shmarena::Region) -> shmarena::Region {
    let Ok(metadata) = region.file_metadata() else {
        return region;
    };
    let id = file_id(&metadata);
    let mut open = ATTACHED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = find(&mut open, id) {
        return known;
    }
    open.push((id, region.clone()));
    region
}

/// Removes the default regions (`shmarena-py-<pid>-<hex>`) in `directory` that no live
/// process has open, as a killed program leaves them, and stale staging files of such
/// regions; with `dry_run`, removes nothing. One `(path, action, reason)` per file of
/// those names found, `action` being "removed", "would remove" or "kept". Never touches
/// another name, nor a region a process has open or whose creator runs (see the engine's
/// `gc` module).
#[pyfunction]
#[pyo3(signature = (directory, dry_run = false))]
pub fn collect_default_regions(
    _py: Python<'_>,
    directory: std::path::PathBuf,
    dry_run: bool,
) -> PyResult<Vec<(std::path::PathBuf, &'static str, String)>> {
    use shmarena::engine::gc::{collect, Action};
    // Holding the GIL (no detach): a thread of this program that forked while the sweep
    // ran would hand the child the collector's descriptors, with their exclusive locks,
    // keeping a removed region's memory alive and turning away every opener of a kept one
    // until the child exits or execs (see the engine's `gc` module). A sweep takes a few
    // system calls per file of a default region's name. (`_py`: the GIL, held throughout.)
    let verdicts = collect(&directory, dry_run).py()?;
    Ok(verdicts
        .into_iter()
        .map(|verdict| {
            let action = match verdict.action {
                Action::Removed => "removed",
                Action::WouldRemove => "would remove",
                Action::Kept => "kept",
            };
            (verdict.path, action, verdict.reason)
        })
        .collect())
}

/// What `__reduce__` returns for the object `name` of `kind` in `region`:
/// `shmarena._rebuild(kind, region, name, *extra)` opens it again in the unpickling process
/// (the region pickles itself, as its path and its `allow_shared`).
pub fn reduce<'py>(
    py: Python<'py>,
    kind: &str,
    region: &Py<PyRegion>,
    name: &str,
    extra: impl IntoPyObject<'py, Target = PyTuple>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
    let rebuild = py.import("shmarena")?.getattr("_rebuild")?;
    let head = (kind, region.clone_ref(py), name).into_pyobject(py)?;
    let extra = pyo3::BoundObject::into_bound(extra.into_pyobject(py).map_err(Into::into)?);
    let args = head.add(extra)?.cast_into::<PyTuple>()?;
    Ok((rebuild, args))
}
