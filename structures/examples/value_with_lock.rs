//! Four processes add 1 to a shared counter 1000 times each, as in Python's
//!
//! ```python
//! def f(v):
//!     for _ in range(1000):
//!         with v.get_lock():
//!             v.value += 1
//!
//! v = Value('q', 0)
//! ps = [Process(target=f, args=(v,)) for _ in range(4)]
//! ```
//!
//! Twice: once with a lock around a read and a write (Python's `get_lock()`), and once
//! with `fetch_add`, one atomic instruction that needs no lock. Both end at exactly 4000.
//!
//! Run it with `cargo run -p shmarena --example value_with_lock`.

use std::process::Command;

use shmarena::{OwnerDied, Region, RegionExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const PROCESSES: usize = 4;
const INCREMENTS: i64 = 1000;

fn main() -> Result {
    // The program plays both parts: with `child <region>` it is a child (multiprocessing's
    // spawn start method runs your program again in the same way).
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, region] if role == "child" => child(region),
        _ => parent(),
    }
}

/// Creates the region, runs the children, prints the totals and removes the region.
fn parent() -> Result {
    // A fresh name: /dev/shm/<name>, so several runs never meet.
    let name = format!("shmarena-example-value-{}", std::process::id());
    let region = Region::create(&name, 16 << 20)?;
    let outcome = run(&region, &name);
    // The creator removes the name (processes that still map the region keep it).
    Region::unlink(&name)?;
    outcome
}

fn run(region: &Region, name: &str) -> Result {
    // Create the objects before the children start (a child could create them too: the
    // constructors are get-or-create, and every process gets the same object).
    let locked = region.value::<i64>("locked", 0)?;
    let atomic = region.value::<i64>("atomic", 0)?;
    region.lock("locked-lock")?;

    // Start the children (Process(...).start()), then wait for all (join()).
    let exe = std::env::current_exe()?;
    let children = (0..PROCESSES)
        .map(|_| Command::new(&exe).args(["child", name]).spawn())
        .collect::<std::io::Result<Vec<_>>>()?;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a child failed: {status}").into());
        }
    }

    println!("with a lock: {}", locked.load());
    println!("with fetch_add: {}", atomic.load());
    Ok(())
}

/// A child: opens the region and the objects by name, and counts.
fn child(name: &str) -> Result {
    let region = Region::open(name)?;
    // `open_*`: the objects must exist (a typo fails instead of creating a new one).
    let locked = region.open_value::<i64>("locked")?;
    let lock = region.open_lock("locked-lock")?;
    let atomic = region.open_value::<i64>("atomic")?;

    for _ in 0..INCREMENTS {
        // `with v.get_lock(): v.value += 1`. The guard unlocks when dropped, at the end of
        // the block. If a holder were killed, the next `lock()` would return
        // `Err(OwnerDied)` holding the lock all the same; a load and a store leave nothing
        // half done, so there is nothing to repair and we take the guard either way.
        {
            let _guard = lock.lock().unwrap_or_else(OwnerDied::into_inner);
            locked.store(locked.load() + 1);
        }
        // The same without a lock: one atomic read-modify-write, no update lost.
        atomic.fetch_add(1);
    }
    Ok(())
}
