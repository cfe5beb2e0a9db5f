//! Three processes square one third each of a shared array of floats, as in Python's
//!
//! ```python
//! def f(a, lo, hi):
//!     for i in range(lo, hi):
//!         a[i] = a[i] ** 2
//!
//! a = Array('d', range(12))
//! ps = [Process(target=f, args=(a, 4 * k, 4 * k + 4)) for k in range(3)]
//! ```
//!
//! Run it with `cargo run -p shmarena --example array`.

use std::process::Command;

use shmarena::{Region, RegionExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const PROCESSES: usize = 3;
const PER_PROCESS: usize = 4;

fn main() -> Result {
    // With `child <region> <index>` the program is child number <index> (multiprocessing's
    // spawn start method runs your program again in the same way).
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, region, index] if role == "child" => child(region, index.parse()?),
        _ => parent(),
    }
}

/// Creates the region in /dev/shm, runs the children, prints the array, removes the region.
fn parent() -> Result {
    let name = format!("shmarena-example-array-{}", std::process::id());
    let region = Region::create(&name, 16 << 20)?;
    let outcome = run(&region, &name);
    Region::unlink(&name)?;
    outcome
}

fn run(region: &Region, name: &str) -> Result {
    // Array('d', range(12)): an array of f64, created as a copy of the slice.
    let initial: Vec<f64> = (0..PROCESSES * PER_PROCESS).map(|i| i as f64).collect();
    let squares = region.array::<f64>("squares", &initial)?;

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

    // a[:]: a copy of every element.
    println!("{:?}", squares.snapshot());
    Ok(())
}

/// Child `index`: squares elements `4 * index .. 4 * index + 4`.
fn child(name: &str, index: usize) -> Result {
    let region = Region::open(name)?;
    // Opens the existing array, whatever its length.
    let squares = region.open_array::<f64>("squares")?;
    for i in index * PER_PROCESS..(index + 1) * PER_PROCESS {
        // a[i] = a[i] ** 2. No other process touches these elements; where several do,
        // `squares.at(i)?.fetch_update(...)` updates one atomically.
        let x = squares.get(i)?;
        squares.set(i, x * x)?;
    }
    Ok(())
}
