//! Three producer processes send orders, structs of our own, through one shared queue to
//! a consumer process, as in Python's
//!
//! ```python
//! def producer(q, k):
//!     for i in range(100):
//!         q.put(Order(id=1000 * k + i, quantity=i + 1, price_cents=100 * (k + 1)))
//!
//! def consumer(q, n):
//!     for _ in range(n):
//!         order = q.get()
//!         ...
//! ```
//!
//! Where Python pickles each object, a shmarena queue holds any `Pod` type: a
//! `#[repr(C)]` struct of plain fields, copied in and out as bytes, lock-free. Its derives
//! come from shmarena, so `shmarena` is the only dependency.
//!
//! Run it with `cargo run -p shmarena --example queue_of_structs`.

use std::process::Command;

use shmarena::{Region, RegionExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const PRODUCERS: u64 = 3;
const PER_PRODUCER: u64 = 100;

/// One order. `#[repr(C)]` fixes the layout (every process must agree on it) and the
/// `Pod` derive checks that it is plain bytes: no pointers, no padding.
#[derive(Clone, Copy, Debug, shmarena::Pod, shmarena::Zeroable)]
#[bytemuck(crate = "shmarena::bytemuck")]
#[repr(C)]
struct Order {
    /// `1000 * producer + sequence number`.
    id: u64,
    quantity: u32,
    price_cents: u32,
}

fn main() -> Result {
    // With `producer <region> <index>` or `consumer <region>` the program is that child
    // (multiprocessing's spawn start method runs your program again in the same way).
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, region, index] if role == "producer" => producer(region, index.parse()?),
        [_, role, region] if role == "consumer" => consumer(region),
        _ => parent(),
    }
}

/// Creates the region in /dev/shm, runs the children, prints the consumer's totals,
/// removes the region.
fn parent() -> Result {
    let name = format!("shmarena-example-queue-{}", std::process::id());
    let region = Region::create(&name, 16 << 20)?;
    let outcome = run(&region, &name);
    Region::unlink(&name)?;
    outcome
}

fn run(region: &Region, name: &str) -> Result {
    // Queue(maxsize=64): smaller than the 300 orders, so producers wait for room.
    region.queue::<Order>("orders", 64)?;
    // The consumer's results.
    let count = region.value::<u64>("count", 0)?;
    let quantity = region.value::<u64>("quantity", 0)?;
    let value = region.value::<u64>("value-cents", 0)?;
    let in_order = region.value::<bool>("in-order", false)?;

    let exe = std::env::current_exe()?;
    let mut children = vec![Command::new(&exe).args(["consumer", name]).spawn()?];
    for index in 0..PRODUCERS {
        let index = index.to_string();
        children.push(
            Command::new(&exe)
                .args(["producer", name, &index])
                .spawn()?,
        );
    }
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a child failed: {status}").into());
        }
    }

    let value = value.load();
    println!("orders: {}", count.load());
    println!("total quantity: {}", quantity.load());
    println!("total value: {}.{:02}", value / 100, value % 100);
    println!("each producer's orders in order: {}", in_order.try_load()?);
    Ok(())
}

/// Producer `index`: puts its orders, waiting while the queue is full.
fn producer(name: &str, index: u64) -> Result {
    let region = Region::open(name)?;
    let orders = region.open_queue::<Order>("orders")?;
    for i in 0..PER_PRODUCER {
        orders.push(Order {
            id: 1000 * index + i,
            quantity: i as u32 + 1,
            price_cents: 100 * (index as u32 + 1),
        });
    }
    Ok(())
}

/// The consumer: gets every order, waiting while the queue is empty, and adds them up.
fn consumer(name: &str) -> Result {
    let region = Region::open(name)?;
    let orders = region.open_queue::<Order>("orders")?;
    let mut next = [0; PRODUCERS as usize]; // the sequence number expected from each
    let mut in_order = true;
    let (mut quantity, mut value) = (0, 0);
    for _ in 0..PRODUCERS * PER_PRODUCER {
        let order = orders.pop();
        // The queue is first in, first out: each producer's orders come in its order.
        let (from, sequence) = ((order.id / 1000) as usize, order.id % 1000);
        in_order &= sequence == next[from];
        next[from] = sequence + 1;
        quantity += u64::from(order.quantity);
        value += u64::from(order.quantity) * u64::from(order.price_cents);
    }
    region
        .open_value::<u64>("count")?
        .store(PRODUCERS * PER_PRODUCER);
    region.open_value::<u64>("quantity")?.store(quantity);
    region.open_value::<u64>("value-cents")?.store(value);
    region.open_value::<bool>("in-order")?.store(in_order);
    Ok(())
}
