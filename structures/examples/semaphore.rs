//! Five worker processes share two permits of a semaphore, as in Python's
//!
//! ```python
//! def worker(sem):
//!     with sem:
//!         ...  # at most two workers in here at once
//!
//! sem = Semaphore(2)
//! ps = [Process(target=worker, args=(sem,)) for _ in range(5)]
//! ```
//!
//! Each worker counts itself in and out of the guarded section and records the most
//! workers it ever saw inside. To make that maximum exact rather than a matter of timing,
//! a worker stays inside until a second one has joined it (or no worker is left to come):
//! so two are inside at once for certain, and the semaphore makes sure never three.
//!
//! Run it with `cargo run -p shmarena --example semaphore`.

use std::process::Command;
use std::time::Duration;

use shmarena::{Region, RegionExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const WORKERS: u64 = 5;
const PERMITS: u32 = 2;

fn main() -> Result {
    // With `worker <region>` the program is a worker (multiprocessing's spawn start method
    // runs your program again in the same way).
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, region] if role == "worker" => worker(region),
        _ => parent(),
    }
}

/// Creates the region in /dev/shm, runs the workers, prints the counts, removes the region.
fn parent() -> Result {
    let name = format!("shmarena-example-semaphore-{}", std::process::id());
    let region = Region::create(&name, 16 << 20)?;
    let outcome = run(&region, &name);
    Region::unlink(&name)?;
    outcome
}

fn run(region: &Region, name: &str) -> Result {
    // BoundedSemaphore(2): two permits, and releasing more than were taken is an error.
    region.bounded_semaphore("permits", PERMITS)?;
    region.value::<u64>("inside", 0)?; // workers inside now
    region.value::<u64>("entered", 0)?; // workers that have come in so far
    let most = region.value::<u64>("most-inside", 0)?;

    let exe = std::env::current_exe()?;
    let children = (0..WORKERS)
        .map(|_| Command::new(&exe).args(["worker", name]).spawn())
        .collect::<std::io::Result<Vec<_>>>()?;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a worker failed: {status}").into());
        }
    }

    println!("workers: {WORKERS}, permits: {PERMITS}");
    println!("max concurrent: {}", most.load());
    Ok(())
}

fn worker(name: &str) -> Result {
    let region = Region::open(name)?;
    let permits = region.open_semaphore("permits")?;
    let inside = region.open_value::<u64>("inside")?;
    let entered = region.open_value::<u64>("entered")?;
    let most = region.open_value::<u64>("most-inside")?;

    // `with sem:`. The guard gives the permit back when dropped, also on an early return
    // (`?`), and the permit of a process killed holding it comes back to the others.
    let permit = permits.acquire_guard();
    // fetch_add returns the value before: +1 is the count with us in it.
    most.fetch_max(inside.fetch_add(1) + 1);
    entered.fetch_add(1);
    // Stay until a second worker is inside, or every worker has come in (the last one
    // may be alone).
    while inside.load() < u64::from(PERMITS) && entered.load() < WORKERS {
        std::thread::sleep(Duration::from_millis(1));
    }
    inside.fetch_sub(1); // out before the permit goes back
    drop(permit);
    Ok(())
}
