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
//!
//! And a third, Python's `Manager().dict()` without the broker: the same processes count
//! words into one shared `HashMap<FixedStr<16>, u64>` (`d[w] = d.get(w, 0) + 1` loses
//! updates even through a Manager; `fetch_add` does not).

use std::process::{Command, ExitCode};

use shmarena::{FixedStr, Region, RegionExt};

/// The text every child counts the words of, `WORD_ROUNDS` times.
const TEXT: &str = "the quick brown fox jumps over the lazy dog 你好世界 the end";
const WORD_ROUNDS: u64 = 1000;

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
    /// `negate` (Python's `f`), `count` or `words`.
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

    // d = Manager().dict(): word counts from every process, no broker, no lost update.
    let words = region.hash_map::<FixedStr<16>, u64>("words", 64)?;
    let children = (0..args.processes)
        .map(|_| spawn_child(name, "words", 0))
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("child process failed: {status}").into());
        }
    }
    let mut counts: Vec<(String, u64)> = words
        .iter()
        .map(|entry| entry.and_then(|(w, n)| Ok((w.as_str()?.to_owned(), n))))
        .collect::<Result<_, _>>()?;
    counts.sort();
    let per_round = u64::from(args.processes) * WORD_ROUNDS;
    let words_ok = counts
        .iter()
        .all(|(word, n)| *n == per_round * TEXT.split(' ').filter(|w| w == word).count() as u64)
        && counts.len() == 10;
    println!(
        "words: {} ({} processes x {WORD_ROUNDS} rounds of fetch_add)",
        counts
            .iter()
            .map(|(w, n)| format!("{w}={n}"))
            .collect::<Vec<_>>()
            .join(" "),
        args.processes
    );
    Ok(if counter.load() == expected && words_ok {
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
        "words" => {
            let words = region.hash_map::<FixedStr<16>, u64>("words", 64)?;
            for _ in 0..WORD_ROUNDS {
                for word in TEXT.split(' ') {
                    words.fetch_add(FixedStr::new(word)?, 1)?;
                }
            }
        }
        other => return Err(format!("unknown demo task {other:?}").into()),
    }
    Ok(ExitCode::SUCCESS)
}
