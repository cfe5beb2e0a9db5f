//! Blocking calls from Python: the GIL is released while waiting, timeouts follow
//! Python's conventions, and Ctrl-C interrupts the wait.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The longest a wait runs without looking at Python's signal handlers (the latency of
/// Ctrl-C while blocked).
const SLICE: Duration = Duration::from_millis(50);

/// Python's `block` / `timeout` pair as a timeout: `None` waits forever.
/// `block=False` never waits; a `None` or negative timeout waits forever.
pub fn timeout_of(block: bool, timeout: Option<f64>) -> PyResult<Option<Duration>> {
    if !block {
        return Ok(Some(Duration::ZERO));
    }
    match timeout {
        None => Ok(None),
        Some(seconds) if seconds.is_nan() => Err(PyValueError::new_err("timeout is NaN")),
        Some(seconds) if seconds < 0.0 => Ok(None),
        // Beyond what a Duration holds is forever.
        Some(seconds) => Ok(Duration::try_from_secs_f64(seconds).ok()),
    }
}

/// Calls `attempt(slice)` with the GIL released until it returns `Some` or `timeout`
/// passes (`Ok(None)`); between slices of at most [`SLICE`] it runs Python's signal
/// handlers, so a `KeyboardInterrupt` ends the wait. `attempt(Duration::ZERO)` must not
/// wait.
pub fn blocking<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut attempt: impl FnMut(Duration) -> Option<T> + Send,
) -> PyResult<Option<T>> {
    // First one attempt that does not wait, keeping the GIL: an uncontended lock, a
    // queue with an item, costs no release and retake of the GIL (which cost more than the
    // operation itself).
    if let Some(done) = attempt(Duration::ZERO) {
        return Ok(Some(done));
    }
    if timeout == Some(Duration::ZERO) {
        return Ok(None); // no wait asked: that was the one attempt
    }
    // No deadline (none asked, or one past what `Instant` holds) waits forever.
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    loop {
        let slice = deadline.map_or(SLICE, |deadline| {
            deadline
                .saturating_duration_since(Instant::now())
                .min(SLICE)
        });
        if slice.is_zero() {
            // No time left (or none asked): one attempt without releasing the GIL.
            return Ok(attempt(Duration::ZERO));
        }
        if let Some(done) = py.detach(|| attempt(slice)) {
            return Ok(Some(done));
        }
        py.check_signals()?;
    }
}
