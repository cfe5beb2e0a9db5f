//! Four processes add overlapping ranges of numbers to one shared set, as in Python's
//! (3.14)
//!
//! ```python
//! def f(s, k):
//!     for x in range(2 * k, 2 * k + 5):
//!         s.add(x)
//!
//! with Manager() as manager:
//!     s = manager.set()
//!     ps = [Process(target=f, args=(s, k)) for k in range(4)]
//! ```
//!
//! Every number ends up in the set once, and exactly one `insert` of each number reports
//! it new, whichever process got there first.
//!
//! Run it with `cargo run -p shmarena --example set`.

use std::process::Command;

use shmarena::{Region, RegionExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const PROCESSES: u64 = 4;

fn main() -> Result {
    // With `child <region> <index>` the program is child number <index> (multiprocessing's
    // spawn start method runs your program again in the same way).
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, region, index] if role == "child" => child(region, index.parse()?),
        _ => parent(),
    }
}

/// Creates the region in /dev/shm, runs the children, prints the set, removes the region.
fn parent() -> Result {
    let name = format!("shmarena-example-set-{}", std::process::id());
    let region = Region::create(&name, 16 << 20)?;
    let outcome = run(&region, &name);
    Region::unlink(&name)?;
    outcome
}

fn run(region: &Region, name: &str) -> Result {
    // A set of u64 with 64 slots (a fixed capacity: inserting into a full set is an error).
    let numbers = region.hash_set::<u64>("numbers", 64)?;
    // How many inserts found their number new, summed over the children.
    let new_inserts = region.value::<u64>("new-inserts", 0)?;

    let exe = std::env::current_exe()?;
    let children = (0..PROCESSES)
        .map(|index| {
            Command::new(&exe)
                .args(["child", name, &index.to_string()])
                .spawn()
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a child failed: {status}").into());
        }
    }

    // The set iterates in slot order (hash order), and each item is a `Result` (an item
    // may be found half written by a process killed while inserting it): collect, then sort.
    let mut items = numbers.iter().collect::<shmarena::Result<Vec<u64>>>()?;
    items.sort_unstable();
    println!("items: {items:?}");
    println!("len: {}", numbers.len());
    println!("inserts: {}, new: {}", PROCESSES * 5, new_inserts.load());
    Ok(())
}

/// Child `index`: adds `2 * index .. 2 * index + 5`, overlapping its neighbours.
fn child(name: &str, index: u64) -> Result {
    let region = Region::open(name)?;
    let numbers = region.open_hash_set::<u64>("numbers")?;
    let new_inserts = region.open_value::<u64>("new-inserts")?;
    for x in 2 * index..2 * index + 5 {
        // `insert` says whether the number was new: true for exactly one process.
        if numbers.insert(x)? {
            new_inserts.fetch_add(1);
        }
    }
    Ok(())
}
