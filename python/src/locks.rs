//! Lock, RLock, Condition, Event, Semaphore, BoundedSemaphore and Barrier, with the
//! methods of their `multiprocessing` namesakes.

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use shmarena::condvar::Waited;
use shmarena::mutex::Acquired;

use crate::errors::{IntoPy, OwnerDiedError};
use crate::region::PyRegion;
use crate::wait::{blocking, timeout_of};

fn owner_died(name: &str) -> PyErr {
    OwnerDiedError::new_err(format!(
        "lock {name:?}: its previous owner died holding it; this process holds it now \
         (repair what it protects, then call mark_consistent())"
    ))
}

/// Takes `lock`, waiting as Python's `acquire(block, timeout)` says; whether it did.
fn acquire(py: Python<'_>, lock: &shmarena::Lock, timeout: Option<Duration>) -> PyResult<bool> {
    match blocking(py, timeout, |slice| lock.acquire(Some(slice)))? {
        None => Ok(false),
        Some(Acquired::Clean) => Ok(true),
        Some(Acquired::OwnerDied) => Err(owner_died(lock.name())),
    }
}

/// The owner `multiprocessing`'s reprs name for a lock held by the calling thread: the
/// process's name, then `|` and the thread's unless it is the main thread.
fn owner_here(py: Python<'_>) -> PyResult<String> {
    let mut name: String = py
        .import("multiprocessing")?
        .call_method0("current_process")?
        .getattr("name")?
        .extract()?;
    let thread: String = py
        .import("threading")?
        .call_method0("current_thread")?
        .getattr("name")?
        .extract()?;
    if thread != "MainThread" {
        name.push('|');
        name.push_str(&thread);
    }
    Ok(name)
}

/// A lock shared by processes: `multiprocessing.Lock` that survives its holder's death.
/// It records its holder, so that a lock whose holder died unreleased is taken over by the
/// next acquirer, but any thread of any process may release it, as Python's may.
#[pyclass(module = "shmarena._shmarena", name = "Lock", frozen)]
pub struct PyLock {
    pub(crate) lock: shmarena::Lock,
    /// The thread that took the lock through this handle (0: none), for the repr only.
    holder: AtomicU64,
    region: Py<PyRegion>,
}

impl PyLock {
    pub(crate) fn create(region: &Bound<'_, PyRegion>, name: &str) -> PyResult<Self> {
        Ok(Self {
            lock: shmarena::Lock::get_or_create(region.get().region(), name, ()).py()?,
            holder: AtomicU64::new(0),
            region: region.clone().unbind(),
        })
    }

    /// Takes the lock as `acquire` does, noting the thread for the repr.
    fn take(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<bool> {
        let taken = acquire(py, &self.lock, timeout);
        if self.lock.is_held() {
            // Relaxed: a hint for the repr, read by this process only.
            self.holder.store(current_thread(), Ordering::Relaxed);
        }
        taken
    }

    /// Releases the lock whoever holds it, as `multiprocessing.Lock` (a semaphore with no
    /// owner) does: this thread, another thread, or another process, alive or exited.
    /// `ValueError` with CPython's message if it is not locked.
    fn give_back(&self) -> PyResult<()> {
        if !self.lock.release_any() {
            return Err(PyValueError::new_err(
                "semaphore or lock released too many times",
            ));
        }
        // Relaxed: see `holder`.
        self.holder.store(0, Ordering::Relaxed);
        Ok(())
    }
}

#[pymethods]
impl PyLock {
    #[new]
    fn new(region: &Bound<'_, PyRegion>, name: &str) -> PyResult<Self> {
        Self::create(region, name)
    }

    /// Takes the lock; `False` if `block` is false or `timeout` passed first. Raises
    /// `OwnerDiedError` (holding the lock) when its previous owner died holding it.
    #[pyo3(signature = (block = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        self.take(py, timeout_of(block, timeout)?)
    }

    /// Releases the lock, whoever holds it; `ValueError` if it is not locked.
    fn release(&self) -> PyResult<()> {
        self.give_back()
    }

    /// Whether some process holds the lock.
    fn locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// After an `OwnerDiedError`: says that what the lock protects is whole again, so the
    /// next owners are no longer told.
    fn mark_consistent(&self) -> PyResult<()> {
        self.lock.mark_consistent().py()
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        self.take(py, None)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.give_back()
    }

    /// The region and name, for pickling.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        crate::region::reduce(slf.py(), "Lock", &this.region, this.lock.name(), ())
    }

    /// The object's name in its region.
    #[getter]
    fn name(&self) -> &str {
        self.lock.name()
    }

    /// As `multiprocessing`'s: `<Lock(owner=None)>`, `<Lock(owner=MainProcess)>` (the
    /// calling thread holds it), `SomeOtherThread`, `SomeOtherProcess`.
    fn __repr__(&self, py: Python<'_>) -> String {
        let owner = if self.lock.is_held() {
            // Relaxed: see `holder`.
            if self.holder.load(Ordering::Relaxed) == current_thread() {
                owner_here(py).unwrap_or_else(|_| "unknown".to_owned())
            } else {
                "SomeOtherThread".to_owned()
            }
        } else if self.lock.is_locked() {
            "SomeOtherProcess".to_owned()
        } else {
            "None".to_owned()
        };
        format!("<Lock(owner={owner})>")
    }
}

fn current_thread() -> u64 {
    thread_local! {
        /// This thread's id and the fork generation it was read in (a forked child's
        /// thread has another id, and inherits the parent thread's cache).
        static TID: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((u64::MAX, 0)) };
    }
    let generation = shmarena::engine::fork::generation();
    TID.with(|cached| {
        let (seen_in, tid) = cached.get();
        if seen_in == generation {
            return tid;
        }
        // SAFETY: gettid has no preconditions and cannot fail.
        let tid = u64::from(unsafe { libc::gettid() } as u32);
        cached.set((generation, tid));
        tid
    })
}

/// Which thread of this process holds an RLock, and how deep: process-local, because
/// only this process can hold the lock while they are set, and shared by every handle of
/// the lock in the process (a lock unpickled twice is still one lock).
#[derive(Default)]
struct Reentry {
    /// The holding thread (0: none).
    holder: AtomicU64,
    depth: AtomicU64,
}

/// Reentry records by region file (device, inode) and lock name.
type Records = Vec<((u64, u64), String, Arc<Reentry>)>;

/// The reentry record of the RLock `name` in the region file `file`, one per process.
fn reentry(file: (u64, u64), name: &str) -> Arc<Reentry> {
    static RECORDS: Mutex<Records> = Mutex::new(Vec::new());
    let mut records = RECORDS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, _, record)) = records
        .iter()
        .find(|(known, known_name, _)| *known == file && known_name == name)
    {
        return Arc::clone(record);
    }
    let record = Arc::new(Reentry::default());
    records.push((file, name.to_owned(), Arc::clone(&record)));
    record
}

/// A reentrant lock: `multiprocessing.RLock`. The holding thread may acquire it again and
/// must release it as often.
#[pyclass(module = "shmarena._shmarena", name = "RLock", frozen)]
pub struct PyRLock {
    pub(crate) lock: shmarena::Lock,
    reentry: Arc<Reentry>,
    region: Py<PyRegion>,
}

impl PyRLock {
    pub(crate) fn create(region: &Bound<'_, PyRegion>, name: &str) -> PyResult<Self> {
        let rust_region = region.get().region();
        let metadata = rust_region.file_metadata().py()?;
        Ok(Self {
            lock: shmarena::Lock::get_or_create(rust_region, name, ()).py()?,
            reentry: reentry((metadata.dev(), metadata.ino()), name),
            region: region.clone().unbind(),
        })
    }

    /// Whether the calling thread holds the lock.
    pub(crate) fn held_here(&self) -> bool {
        // Relaxed: only the holding thread writes `holder` while the lock is held.
        self.lock.is_held() && self.reentry.holder.load(Ordering::Relaxed) == current_thread()
    }

    fn enter(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<bool> {
        if self.held_here() {
            // Relaxed: only this thread touches the depth while it holds the lock.
            self.reentry.depth.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        let acquired = blocking(py, timeout, |slice| self.lock.acquire(Some(slice)))?;
        if acquired.is_none() {
            return Ok(false);
        }
        // Relaxed: as above; the lock's Acquire ordered the previous holder's writes.
        self.reentry
            .holder
            .store(current_thread(), Ordering::Relaxed);
        self.reentry.depth.store(1, Ordering::Relaxed);
        match acquired {
            Some(Acquired::OwnerDied) => Err(owner_died(self.lock.name())),
            _ => Ok(true),
        }
    }

    /// Forgets the calling thread's hold, keeping the lock itself (a Condition's wait
    /// then releases and retakes it); the depth to restore.
    pub(crate) fn forget_holder(&self) -> u64 {
        // Relaxed: see `holder`.
        let depth = self.reentry.depth.swap(0, Ordering::Relaxed);
        self.reentry.holder.store(0, Ordering::Relaxed);
        depth
    }

    /// Records the calling thread as holder at `depth` after a Condition's relock.
    pub(crate) fn restore(&self, depth: u64) {
        // Relaxed: see `holder`.
        self.reentry
            .holder
            .store(current_thread(), Ordering::Relaxed);
        self.reentry.depth.store(depth, Ordering::Relaxed);
    }
}

#[pymethods]
impl PyRLock {
    #[new]
    fn new(region: &Bound<'_, PyRegion>, name: &str) -> PyResult<Self> {
        Self::create(region, name)
    }

    /// Takes the lock (again, if this thread holds it); `False` on timeout. Raises
    /// `OwnerDiedError` (holding the lock) when its previous owner died holding it.
    #[pyo3(signature = (block = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        self.enter(py, timeout_of(block, timeout)?)
    }

    /// Releases one level; `NotOwnedError` (an `AssertionError` and a `RuntimeError`)
    /// unless this thread holds the lock.
    fn release(&self) -> PyResult<()> {
        if !self.held_here() {
            return Err(crate::errors::not_owned(
                "attempt to release recursive lock not owned by thread",
            ));
        }
        // Relaxed: see `holder`.
        if self.reentry.depth.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.reentry.holder.store(0, Ordering::Relaxed);
            self.lock.release().py()?;
        }
        Ok(())
    }

    /// See `Lock.mark_consistent`.
    fn mark_consistent(&self) -> PyResult<()> {
        self.lock.mark_consistent().py()
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        self.enter(py, None)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.release()
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        crate::region::reduce(slf.py(), "RLock", &this.region, this.lock.name(), ())
    }

    /// The object's name in its region.
    #[getter]
    fn name(&self) -> &str {
        self.lock.name()
    }

    /// As `multiprocessing`'s: `<RLock(None, 0)>`, `<RLock(MainProcess, 2)>` (the
    /// calling thread holds it twice), `<RLock(SomeOtherThread, nonzero)>`,
    /// `<RLock(SomeOtherProcess, nonzero)>`.
    fn __repr__(&self, py: Python<'_>) -> String {
        let (owner, count) = if self.held_here() {
            (
                owner_here(py).unwrap_or_else(|_| "unknown".to_owned()),
                // Relaxed: see `holder`.
                self.reentry.depth.load(Ordering::Relaxed).to_string(),
            )
        } else if self.lock.is_held() {
            ("SomeOtherThread".to_owned(), "nonzero".to_owned())
        } else if self.lock.is_locked() {
            ("SomeOtherProcess".to_owned(), "nonzero".to_owned())
        } else {
            ("None".to_owned(), "0".to_owned())
        };
        format!("<RLock({owner}, {count})>")
    }
}

/// A condition variable over a Lock or RLock: `multiprocessing.Condition`. `notify(n)`
/// wakes at most `n` of the waiters waiting at the time (a waiter that looks for Ctrl-C
/// every 50 ms returns only with a notification it claimed).
#[pyclass(module = "shmarena._shmarena", name = "Condition", frozen)]
pub struct PyCondition {
    condvar: shmarena::Condvar,
    lock: Py<PyAny>,
    region: Py<PyRegion>,
}

/// The lock under a condition, and (for an RLock) the depth to restore.
enum Held<'a> {
    Plain(&'a shmarena::Lock),
    Reentrant(&'a PyRLock),
}

impl PyCondition {
    fn held<'a>(&self, lock: &'a Bound<'_, PyAny>) -> PyResult<Held<'a>> {
        if let Ok(lock) = lock.cast::<PyLock>() {
            let lock = &lock.get().lock;
            if !lock.is_held() {
                return Err(crate::errors::not_owned("cannot wait on un-acquired lock"));
            }
            Ok(Held::Plain(lock))
        } else if let Ok(lock) = lock.cast::<PyRLock>() {
            let lock = lock.get();
            if !lock.held_here() {
                return Err(crate::errors::not_owned("cannot wait on un-acquired lock"));
            }
            Ok(Held::Reentrant(lock))
        } else {
            Err(PyTypeError::new_err(
                "a Condition needs a shmarena Lock or RLock",
            ))
        }
    }

    fn check_held(&self, py: Python<'_>) -> PyResult<()> {
        self.held(self.lock.bind(py)).map(|_| ())
    }
}

#[pymethods]
impl PyCondition {
    #[new]
    fn new(region: &Bound<'_, PyRegion>, name: &str, lock: Bound<'_, PyAny>) -> PyResult<Self> {
        if !lock.is_instance_of::<PyLock>() && !lock.is_instance_of::<PyRLock>() {
            return Err(PyTypeError::new_err(
                "a Condition needs a shmarena Lock or RLock",
            ));
        }
        Ok(Self {
            condvar: shmarena::Condvar::get_or_create(region.get().region(), name).py()?,
            lock: lock.unbind(),
            region: region.clone().unbind(),
        })
    }

    /// Releases the lock, waits for a notification or `timeout`, takes the lock again;
    /// `False` if the time ran out.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let lock = self.lock.bind(py);
        let held = self.held(lock)?;
        let (mutex, depth) = match held {
            Held::Plain(lock) => (lock, None),
            Held::Reentrant(lock) => {
                // Python's Condition releases every level and restores them after.
                let depth = lock.forget_holder();
                (&lock.lock, Some((lock, depth)))
            }
        };
        let timeout = timeout_of(true, timeout)?;
        // The lock stays released for the whole wait (no notification can slip between
        // slices); Ctrl-C ends the wait with the lock taken again, as in Python.
        let mut signal: Option<PyErr> = None;
        let waited = py.detach(|| {
            self.condvar.wait_held(mutex, timeout, &mut || {
                signal = Python::attach(|py| py.check_signals().err());
                signal.is_some()
            })
        });
        let result = match (waited, signal) {
            (_, Some(signal)) => Err(signal),
            (Err(error), None) => Err(crate::errors::to_py(error)),
            (Ok((Acquired::OwnerDied, _)), None) => Err(owner_died(mutex.name())),
            (Ok((Acquired::Clean, waited)), None) => Ok(waited != Waited::TimedOut),
        };
        if let Some((lock, depth)) = depth {
            lock.restore(depth);
        }
        result
    }

    /// Waits until `predicate()` is true (checked with the lock held); its last result.
    #[pyo3(signature = (predicate, timeout = None))]
    fn wait_for(
        &self,
        py: Python<'_>,
        predicate: Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let deadline = timeout
            .filter(|seconds| *seconds >= 0.0)
            .map(|seconds| Instant::now() + Duration::from_secs_f64(seconds.min(1e9)));
        loop {
            let result = predicate.call0()?;
            if result.is_truthy()? {
                return Ok(result.unbind());
            }
            let left = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(result.unbind());
                    }
                    Some(left.as_secs_f64())
                }
                None => None,
            };
            self.wait(py, left)?;
        }
    }

    /// Wakes up to `n` waiters; the lock must be held.
    #[pyo3(signature = (n = 1))]
    fn notify(&self, py: Python<'_>, n: usize) -> PyResult<()> {
        self.check_held(py)?;
        for _ in 0..n {
            self.condvar.notify_one();
        }
        Ok(())
    }

    /// Wakes every waiter; the lock must be held.
    fn notify_all(&self, py: Python<'_>) -> PyResult<()> {
        self.check_held(py)?;
        self.condvar.notify_all();
        Ok(())
    }

    /// Takes the underlying lock (`acquire(block, timeout)` of the lock).
    #[pyo3(signature = (*args))]
    fn acquire<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.lock.bind(py).call_method1("acquire", args)
    }

    /// Releases the underlying lock.
    fn release<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.lock.bind(py).call_method0("release")
    }

    fn __enter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.lock.bind(py).call_method0("__enter__")
    }

    #[pyo3(signature = (*args))]
    fn __exit__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.lock.bind(py).call_method1("__exit__", args)
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        let py = slf.py();
        crate::region::reduce(
            py,
            "Condition",
            &this.region,
            this.condvar.name(),
            (this.lock.clone_ref(py),),
        )
    }

    /// As `multiprocessing`'s, `<Condition(<Lock(owner=None)>, unknown)>`, but for the
    /// number of waiters, which the shared condition variable does not count.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<Condition({}, unknown)>",
            self.lock.bind(py).repr()?
        ))
    }
}

/// `multiprocessing.Event`.
#[pyclass(module = "shmarena._shmarena", name = "Event", frozen)]
pub struct PyEvent {
    event: shmarena::Event,
    region: Py<PyRegion>,
}

#[pymethods]
impl PyEvent {
    #[new]
    fn new(region: &Bound<'_, PyRegion>, name: &str) -> PyResult<Self> {
        Ok(Self {
            event: shmarena::Event::get_or_create(region.get().region(), name).py()?,
            region: region.clone().unbind(),
        })
    }

    fn is_set(&self) -> bool {
        self.event.is_set()
    }

    fn set(&self) {
        self.event.set();
    }

    fn clear(&self) {
        self.event.clear();
    }

    /// Waits until the flag is set or `timeout` passes; the flag.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let set = blocking(py, timeout_of(true, timeout)?, |slice| {
            self.event.wait_timeout(slice).then_some(())
        })?;
        Ok(set.is_some())
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        crate::region::reduce(slf.py(), "Event", &this.region, this.event.name(), ())
    }

    /// As `multiprocessing`'s: `<Event at 0x7f5e2c1d0b50 unset>`.
    fn __repr__(slf: &Bound<'_, Self>) -> String {
        format!(
            "<Event at {:#x} {}>",
            slf.as_ptr() as usize,
            if slf.get().event.is_set() {
                "set"
            } else {
                "unset"
            }
        )
    }
}

/// `multiprocessing.Semaphore` / `BoundedSemaphore`. Permits have no owner, as in
/// Python (a process may release what another acquired, and a consumer's acquire is
/// final); with `reclaim=True` every permit names its holder and a dead holder's permits
/// come back (for `with semaphore:` code that must survive a killed worker).
#[pyclass(module = "shmarena._shmarena", name = "Semaphore", frozen)]
pub struct PySemaphore {
    semaphore: shmarena::Semaphore,
    bounded: bool,
    reclaim: bool,
    /// A BoundedSemaphore(0): never has a permit, refuses every release.
    empty_bounded: bool,
    region: Py<PyRegion>,
}

#[pymethods]
impl PySemaphore {
    #[new]
    #[pyo3(signature = (region, name, value = 1, bounded = false, capacity = None, reclaim = false))]
    fn new(
        region: &Bound<'_, PyRegion>,
        name: &str,
        value: i64,
        bounded: bool,
        capacity: Option<u32>,
        reclaim: bool,
    ) -> PyResult<Self> {
        let value = u32::try_from(value)
            .map_err(|_| PyValueError::new_err("semaphore initial value must be >= 0"))?;
        // A bounded semaphore holds exactly its initial permits; an unbounded one has room
        // for releases beyond them (at least 64 permits in all).
        let capacity = capacity.unwrap_or(if bounded { value.max(1) } else { value.max(64) });
        let semaphore =
            shmarena::Semaphore::get_or_create(region.get().region(), name, value, capacity)
                .py()?;
        Ok(Self {
            semaphore,
            bounded,
            reclaim,
            empty_bounded: bounded && value == 0,
            region: region.clone().unbind(),
        })
    }

    /// Takes a permit; `False` if `block` is false or `timeout` passed first.
    #[pyo3(signature = (block = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        let got = blocking(py, timeout_of(block, timeout)?, |slice| {
            if self.empty_bounded {
                std::thread::sleep(slice);
                return None;
            }
            let got = if !self.reclaim {
                self.semaphore.acquire_unowned(Some(slice))
            } else if slice.is_zero() {
                self.semaphore.try_acquire()
            } else {
                self.semaphore.acquire_timeout(slice)
            };
            got.then_some(())
        })?;
        Ok(got.is_some())
    }

    /// Returns a permit (`ValueError` when that would exceed the semaphore's capacity).
    fn release(&self) -> PyResult<()> {
        if self.empty_bounded {
            return Err(PyValueError::new_err("Semaphore released too many times"));
        }
        self.semaphore.release().py()
    }

    /// Free permits right now.
    fn get_value(&self) -> usize {
        if self.empty_bounded {
            return 0;
        }
        self.semaphore.available()
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        self.acquire(py, true, None)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.release()
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        crate::region::reduce(
            slf.py(),
            "Semaphore",
            &this.region,
            this.semaphore.name(),
            (
                u32::from(!this.empty_bounded),
                this.bounded,
                this.semaphore.capacity(),
                this.reclaim,
            ),
        )
    }

    /// As `multiprocessing`'s: `<Semaphore(value=2)>`,
    /// `<BoundedSemaphore(value=1, maxvalue=2)>`.
    fn __repr__(&self) -> String {
        if self.bounded {
            let most = if self.empty_bounded {
                0
            } else {
                self.semaphore.capacity()
            };
            format!(
                "<BoundedSemaphore(value={}, maxvalue={most})>",
                self.get_value()
            )
        } else {
            format!("<Semaphore(value={})>", self.get_value())
        }
    }
}

/// `multiprocessing.Barrier`; a party that dies while others wait breaks it.
#[pyclass(module = "shmarena._shmarena", name = "Barrier", frozen)]
pub struct PyBarrier {
    barrier: shmarena::Barrier,
    timeout: Option<f64>,
    action: Option<Py<PyAny>>,
    region: Py<PyRegion>,
}

#[pymethods]
impl PyBarrier {
    #[new]
    #[pyo3(signature = (region, name, parties, action = None, timeout = None))]
    fn new(
        region: &Bound<'_, PyRegion>,
        name: &str,
        parties: u32,
        action: Option<Py<PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<Self> {
        Ok(Self {
            barrier: shmarena::Barrier::get_or_create(region.get().region(), name, parties).py()?,
            timeout,
            action,
            region: region.clone().unbind(),
        })
    }

    /// Waits until every party has called `wait`; returns this party's arrival index
    /// (0 .. parties-1). Raises `threading.BrokenBarrierError` when the barrier breaks.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<u32> {
        let timeout = timeout_of(true, timeout.or(self.timeout))?;
        // Ctrl-C breaks the barrier (as a timeout does) and raises KeyboardInterrupt.
        let mut signal: Option<PyErr> = None;
        // The last to arrive runs the action before any party leaves, as in Python; an
        // exception it raises breaks the barrier and is raised here.
        let mut raised: Option<PyErr> = None;
        let waited = py.detach(|| {
            let mut run_action = || {
                Python::attach(|py| match &self.action {
                    Some(action) => action.call0(py).map(drop).map_err(|error| {
                        raised = Some(error);
                        shmarena::Error::BrokenBarrier("the barrier's action raised")
                    }),
                    None => Ok(()),
                })
            };
            let action: Option<&mut dyn FnMut() -> shmarena::Result<()>> = match self.action {
                Some(_) => Some(&mut run_action),
                None => None,
            };
            self.barrier.wait_with_action(
                timeout,
                &mut || {
                    signal = Python::attach(|py| py.check_signals().err());
                    signal.is_some()
                },
                action,
            )
        });
        if let Some(signal) = signal {
            return Err(signal);
        }
        if let Some(raised) = raised {
            return Err(raised);
        }
        waited.py()
    }

    /// Breaks the barrier: waiters and later callers get `BrokenBarrierError`.
    fn abort(&self) {
        self.barrier.abort();
    }

    /// Returns the barrier to its initial, unbroken state.
    fn reset(&self) {
        self.barrier.reset();
    }

    #[getter]
    fn parties(&self) -> u32 {
        self.barrier.parties()
    }

    #[getter]
    fn n_waiting(&self) -> u32 {
        self.barrier.n_waiting()
    }

    #[getter]
    fn broken(&self) -> bool {
        self.barrier.is_broken()
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let this = slf.get();
        let py = slf.py();
        crate::region::reduce(
            py,
            "Barrier",
            &this.region,
            this.barrier.name(),
            (
                this.barrier.parties(),
                this.action.as_ref().map(|action| action.clone_ref(py)),
                this.timeout,
            ),
        )
    }

    /// As `multiprocessing`'s (`threading.Barrier`'s):
    /// `<shmarena._shmarena.Barrier at 0x7f5e2c1d0b50: waiters=1/3>`, or `: broken>`.
    fn __repr__(slf: &Bound<'_, Self>) -> String {
        let this = slf.get();
        let address = slf.as_ptr() as usize;
        if this.barrier.is_broken() {
            format!("<shmarena._shmarena.Barrier at {address:#x}: broken>")
        } else {
            format!(
                "<shmarena._shmarena.Barrier at {address:#x}: waiters={}/{}>",
                this.barrier.n_waiting(),
                this.barrier.parties()
            )
        }
    }
}
