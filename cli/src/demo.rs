//! `shmarena demo`: Python's `multiprocessing` shared-memory example, with real processes.
//!
//! ```python
//! from multiprocessing import Process, Value, Array
//!
//! def f(n, a):
//!     n.value = 3.1415927
//!     for i in range(len(a)):
//!         a[i] = -a[i]
//!
//! if __name__ == '__main__':
//!     num = Value('d', 0.0)
//!     arr = Array('i', range(10))
//!     p = Process(target=f, args=(num, arr))
//!     p.start()
//!     p.join()
//!     print(num.value)
//!     print(arr[:])
//! ```
//!
//! Then a second round Python gets wrong without a lock: four processes each add one to
//! a shared counter 100,000 times (`counter.value += 1` loses updates; `fetch_add` does not).

use std::process::{Command, ExitCode};

use shmarena::{Region, RegionExt};

/// Arguments of `shmarena demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Region name (in /dev/shm) or path; a fresh name by default.
    #[arg(long)]
    region: Option<String>,
    /// Worker processes for the counter round.
    #[arg(long, default_value_t = 4)]
    processes: u32,
    /// Increments per worker in the counter round.
    #[arg(long, default_value_t = 100_000)]
    increments: u64,
    /// Leave the region in place afterwards (to look at it with `shmarena inspect`).
    #[arg(long)]
    keep: bool,
}

/// Arguments of a demo child process.
#[derive(clap::Args)]
pub struct ChildArgs {
    /// Region to open.
    #[arg(long)]
    region: String,
    /// `negate` (Python's `f`) or `count`.
    #[arg(long)]
    task: String,
    /// Increments for `count`.
    #[arg(long, default_value_t = 0)]
    increments: u64,
}

type Outcome = Result<ExitCode, Box<dyn std::error::Error>>;

fn spawn_child(region: &str, task: &str, increments: u64) -> std::io::Result<std::process::Child> {
    Command::new(std::env::current_exe()?)
        .args([
            "demo-child",
            "--region",
            region,
            "--task",
            task,
            "--increments",
            &increments.to_string(),
        ])
        .spawn()
}

/// Runs the demo in this (parent) process.
pub fn run(args: &Args) -> Outcome {
    let name = args
        .region
        .clone()
        .unwrap_or_else(|| format!("shmarena-demo-{}", std::process::id()));
    let region = Region::create(&name, 16 << 20)?;
    let result = parent(&region, &name, args);
    if !args.keep {
        Region::unlink(&name)?;
    }
    result
}

fn parent(region: &Region, name: &str, args: &Args) -> Outcome {
    // num = Value('d', 0.0); arr = Array('i', range(10))
    let num = region.value::<f64>("num", 0.0)?;
    let initial: Vec<i32> = (0..10).collect();
    let arr = region.array::<i32>("arr", &initial)?;

    // p = Process(target=f, args=(num, arr)); p.start(); p.join()
    let status = spawn_child(name, "negate", 0)?.wait()?;
    if !status.success() {
        return Err(format!("child process failed: {status}").into());
    }
    println!("{}", num.load());
    println!("{:?}", arr.snapshot());

    // The round Python needs a lock for.
    let counter = region.value::<u64>("counter", 0)?;
    let children = (0..args.processes)
        .map(|_| spawn_child(name, "count", args.increments))
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("child process failed: {status}").into());
        }
    }
    let expected = u64::from(args.processes) * args.increments;
    println!(
        "counter: {} ({} processes x {} fetch_add; expected {expected})",
        counter.load(),
        args.processes,
        args.increments
    );
    Ok(if counter.load() == expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs in a child process: opens the objects by name and does its task.
pub fn child(args: &ChildArgs) -> Outcome {
    let region = Region::open(&args.region)?;
    match args.task.as_str() {
        "negate" => {
            // def f(n, a): n.value = 3.1415927; a[i] = -a[i]
            let num = region.open_value::<f64>("num")?;
            let arr = region.open_array::<i32>("arr")?;
            #[allow(clippy::approx_constant)] // the value Python's example stores
            num.store(3.141_592_7);
            for cell in &arr {
                cell.store(-cell.load());
            }
        }
        "count" => {
            let counter = region.open_value::<u64>("counter")?;
            for _ in 0..args.increments {
                counter.fetch_add(1);
            }
        }
        other => return Err(format!("unknown demo task {other:?}").into()),
    }
    Ok(ExitCode::SUCCESS)
}
