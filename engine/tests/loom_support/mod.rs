//! Model runners shared by the loom tests.

#![allow(dead_code)]

use loom::thread;

/// Checks `f` under loom with a preemption bound of 2 unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise.
pub fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    model_up_to(usize::MAX, f);
}

/// [`model`] with the preemption bound capped at `most`: for a model whose waiter spins
/// through many states (at a bound of 3, minutes), checked deeper by hand when it changes.
pub fn model_up_to<F: Fn() + Sync + Send + 'static>(most: usize, f: F) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(2).min(most));
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        // Waiters spin (yielding) while another thread works: long paths.
        builder.max_branches = 10_000;
    }
    // How many executions loom explored, for the log (`--nocapture` shows it).
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&executions);
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    let executions = executions.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{executions} executions");
}

/// Runs `a` and `b` on two threads: `a` spawned and `b` on the model's main thread, or
/// the reverse when `swap`. Loom 0.7's DPOR remembers only the last access to each atomic,
/// so which side runs first by default changes which interleavings it reaches; the
/// asymmetric models run in both orders.
pub fn pair<RA, RB>(
    swap: bool,
    a: impl FnOnce() -> RA + Send + 'static,
    b: impl FnOnce() -> RB + Send + 'static,
) -> (RA, RB)
where
    RA: Send + 'static,
    RB: Send + 'static,
{
    if swap {
        let spawned = thread::spawn(b);
        let ra = a();
        (ra, spawned.join().unwrap())
    } else {
        let spawned = thread::spawn(a);
        let rb = b();
        (spawned.join().unwrap(), rb)
    }
}

/// Checks an asymmetric model in both thread orders (see [`pair`]).
pub fn model_both_orders<F: Fn(bool) + Sync + Send + Copy + 'static>(f: F) {
    model(move || f(false));
    model(move || f(true));
}
