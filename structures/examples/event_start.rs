//! Three processes wait for a start signal from their parent, as in Python's
//!
//! ```python
//! def worker(start):
//!     start.wait()
//!     ...  # work
//!
//! start = Event()
//! ps = [Process(target=worker, args=(start,)) for _ in range(3)]
//! for p in ps: p.start()
//! start.set()
//! ```
//!
//! The parent waits until every child is at its `wait()`, checks that none got past it,
//! then sets the event: every child starts, and each one sees what the parent wrote
//! before setting it.
//!
//! Run it with `cargo run -p shmarena --example event_start`.

use std::process::Command;
use std::time::Duration;

use shmarena::{Region, RegionExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const PROCESSES: u64 = 3;

fn main() -> Result {
    // With `child <region>` the program is a child (multiprocessing's spawn start method
    // runs your program again in the same way).
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, region] if role == "child" => child(region),
        _ => parent(),
    }
}

/// Creates the region in /dev/shm, runs the children, prints what they saw, removes the
/// region.
fn parent() -> Result {
    let name = format!("shmarena-example-event-{}", std::process::id());
    let region = Region::create(&name, 16 << 20)?;
    let outcome = run(&region, &name);
    Region::unlink(&name)?;
    outcome
}

fn run(region: &Region, name: &str) -> Result {
    let start = region.event("start")?; // created clear
    let waiting = region.value::<u64>("waiting", 0)?; // children at their wait()
    let passed = region.value::<u64>("passed", 0)?; // children past it
    let signalled = region.value::<bool>("signalled", false)?; // written before the set
    let saw_signal = region.value::<u64>("saw-signal", 0)?; // children that read it true

    let exe = std::env::current_exe()?;
    let children = (0..PROCESSES)
        .map(|_| Command::new(&exe).args(["child", name]).spawn())
        .collect::<std::io::Result<Vec<_>>>()?;

    // Wait until every child is about to wait (a poll keeps the example short; a
    // `region.barrier(...)` would do it without one).
    while waiting.load() < PROCESSES {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("children waiting: {}", waiting.load());
    println!("started before the signal: {}", passed.load());

    signalled.store(true);
    start.set(); // wakes every waiter

    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a child failed: {status}").into());
        }
    }
    println!("started after the signal: {}", passed.load());
    let saw = saw_signal.load();
    println!("saw the write made before the signal: {saw}");
    Ok(())
}

fn child(name: &str) -> Result {
    let region = Region::open(name)?;
    let start = region.open_event("start")?;
    let waiting = region.open_value::<u64>("waiting")?;
    let passed = region.open_value::<u64>("passed")?;
    let signalled = region.open_value::<bool>("signalled")?;
    let saw_signal = region.open_value::<u64>("saw-signal")?;

    waiting.fetch_add(1);
    start.wait(); // sleeps until the parent sets the event
    passed.fetch_add(1);
    // A `bool` is validated on read: `try_load` errs on bits that are no bool.
    if signalled.try_load()? {
        saw_signal.fetch_add(1);
    }
    Ok(())
}
