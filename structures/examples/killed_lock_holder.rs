//! A process is killed while it holds a lock, half-way through an update; the next
//! process to lock is told, repairs the data and carries on. In Python's
//! `multiprocessing` the lock would stay taken forever and every other process would hang
//! at `with lock:`; with shmarena, `lock()` returns `Err(OwnerDied)` holding the lock.
//!
//! The data is `[count, total]`, where `total == 10 * count` whenever nobody holds the
//! lock. The child adds 1 to `count`, then, before it adds 10 to `total`, tells the parent
//! it holds the lock and waits; the parent kills it with SIGKILL (`Child::kill`).
//!
//! Run it with `cargo run -p shmarena --example killed_lock_holder`.

use std::process::Command;

use shmarena::{Region, RegionExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result {
    // With `child <region>` the program is the child (multiprocessing's spawn start method
    // runs your program again in the same way).
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, region] if role == "child" => child(region),
        _ => parent(),
    }
}

/// Creates the region in /dev/shm, runs and kills the child, recovers, removes the region.
fn parent() -> Result {
    let name = format!("shmarena-example-killed-{}", std::process::id());
    let region = Region::create(&name, 16 << 20)?;
    let outcome = run(&region, &name);
    Region::unlink(&name)?;
    outcome
}

fn run(region: &Region, name: &str) -> Result {
    let stats = region.mutex::<[u64; 2]>("stats", [0, 0])?; // [count, total]
    let holding = region.event("child-holds-the-lock")?;

    let mut child = Command::new(std::env::current_exe()?)
        .args(["child", name])
        .spawn()?;
    holding.wait();
    child.kill()?; // SIGKILL: no destructor, no unlock, no chance to finish the update
    let status = child.wait()?;
    println!("child killed holding the lock: {}", !status.success());

    // The lock is free to take again once the kernel notices the holder is gone (the
    // waiter checks its owner's liveness every few milliseconds).
    let mut guard = match stats.lock() {
        Ok(guard) => {
            println!("lock(): Ok");
            guard
        }
        // The holder died: the lock is ours all the same, but the data may be half
        // updated. Repair it, then say so: until `mark_consistent`, every later locker
        // is told too.
        Err(died) => {
            let mut guard = died.into_inner();
            println!("lock(): OwnerDied, data {:?}", *guard);
            guard[1] = 10 * guard[0];
            guard.mark_consistent();
            println!("repaired: {:?}", *guard);
            guard
        }
    };
    // And carry on with our own update.
    guard[0] += 1;
    guard[1] += 10;
    drop(guard); // unlocks

    match stats.lock() {
        Ok(guard) => println!("next lock(): Ok, data {:?}", *guard),
        Err(_) => return Err("still inconsistent after mark_consistent".into()),
    }
    Ok(())
}

fn child(name: &str) -> Result {
    let region = Region::open(name)?;
    let stats = region.open_mutex::<[u64; 2]>("stats")?;
    let holding = region.open_event("child-holds-the-lock")?;

    let mut guard = stats
        .lock()
        .map_err(|_| "the lock was inconsistent already")?;
    guard[0] += 1; // half of the update...
    holding.set(); // ...and the parent kills us here
    loop {
        std::thread::park();
    }
}
