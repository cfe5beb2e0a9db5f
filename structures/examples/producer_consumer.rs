//! A producer process and a consumer process hand items over through a small shared
//! buffer guarded by a mutex and a condition variable, as in Python's
//!
//! ```python
//! def producer(cv, buf):
//!     for item in range(1, 21):
//!         with cv:
//!             cv.wait_for(lambda: len(buf) < 4)
//!             buf.append(item)
//!             cv.notify_all()
//!
//! def consumer(cv, buf, out):
//!     for _ in range(20):
//!         with cv:
//!             cv.wait_for(lambda: len(buf) > 0)
//!             out.append(buf.pop(0))
//!             cv.notify_all()
//! ```
//!
//! The buffer is a struct of our own in a [`shmarena::Mutex`]; the condition variable is a
//! separate object that works with any mutex. (For plain hand-over, a
//! [`shmarena::Queue`] does all of this without a lock: see `queue_of_structs.rs`.)
//!
//! Run it with `cargo run -p shmarena --example producer_consumer`.

use std::process::Command;

use shmarena::{OwnerDied, Region, RegionExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const ITEMS: u64 = 20;
/// Room in the buffer: the producer waits when it is full.
const CAPACITY: usize = 4;

/// A ring buffer in shared memory: plain bytes (`Pod`), no pointers, `#[repr(C)]` so every
/// process agrees on its layout. The derives come from shmarena (no bytemuck dependency).
#[derive(Clone, Copy, Default, shmarena::Pod, shmarena::Zeroable)]
#[bytemuck(crate = "shmarena::bytemuck")]
#[repr(C)]
struct Buffer {
    items: [u64; CAPACITY],
    /// Index of the oldest item.
    head: u64,
    /// Items in the buffer.
    len: u64,
}

fn main() -> Result {
    // With `producer <region>` or `consumer <region>` the program is that child
    // (multiprocessing's spawn start method runs your program again in the same way).
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, region] if role == "producer" => producer(region),
        [_, role, region] if role == "consumer" => consumer(region),
        _ => parent(),
    }
}

/// Creates the region in /dev/shm, runs both children, prints what the consumer got,
/// removes the region.
fn parent() -> Result {
    let name = format!("shmarena-example-prodcons-{}", std::process::id());
    let region = Region::create(&name, 16 << 20)?;
    let outcome = run(&region, &name);
    Region::unlink(&name)?;
    outcome
}

fn run(region: &Region, name: &str) -> Result {
    region.mutex("buffer", Buffer::default())?;
    region.condvar("buffer-changed")?;
    // What the consumer took, in the order it took it.
    let consumed = region.list::<u64>("consumed", ITEMS)?;

    let exe = std::env::current_exe()?;
    let children = ["consumer", "producer"]
        .iter()
        .map(|role| Command::new(&exe).args([role, name]).spawn())
        .collect::<std::io::Result<Vec<_>>>()?;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a child failed: {status}").into());
        }
    }

    println!("consumed: {:?}", consumed.snapshot()?);
    Ok(())
}

/// `lock()` and the waits return `Err(OwnerDied)` when a process was killed holding the
/// lock, perhaps half-way through an update of the buffer. No process is killed here, so
/// it is an error; `killed_lock_holder.rs` shows how to repair the data instead.
fn died<G>(_: OwnerDied<G>) -> &'static str {
    "a process died holding the buffer's lock"
}

fn producer(name: &str) -> Result {
    let region = Region::open(name)?;
    let buffer = region.open_mutex::<Buffer>("buffer")?;
    let changed = region.open_condvar("buffer-changed")?;
    for item in 1..=ITEMS {
        // Sleep (releasing the lock) while the buffer is full.
        let guard = buffer.lock().map_err(died)?;
        let mut guard = changed
            .wait_while(guard, |b| b.len == CAPACITY as u64)
            .map_err(died)?;
        let tail = (guard.head + guard.len) as usize % CAPACITY;
        guard.items[tail] = item;
        guard.len += 1;
        drop(guard); // unlock before waking the other side
        changed.notify_all();
    }
    Ok(())
}

fn consumer(name: &str) -> Result {
    let region = Region::open(name)?;
    let buffer = region.open_mutex::<Buffer>("buffer")?;
    let changed = region.open_condvar("buffer-changed")?;
    let consumed = region.open_list::<u64>("consumed")?;
    for _ in 0..ITEMS {
        // Sleep (releasing the lock) while the buffer is empty.
        let guard = buffer.lock().map_err(died)?;
        let mut guard = changed.wait_while(guard, |b| b.len == 0).map_err(died)?;
        let item = guard.items[guard.head as usize];
        guard.head = (guard.head + 1) % CAPACITY as u64;
        guard.len -= 1;
        drop(guard);
        changed.notify_all();
        consumed.push(item)?;
    }
    Ok(())
}
