//! `shmarena-worker`: the process that multi-process and kill tests start.
//!
//! ```text
//! shmarena-worker <command> <region> [args...]
//!   incr-value   <region> <name> <count>          fetch_add(1) on a Value<u64>
//!   incr-array   <region> <name> <len> <count>    fetch_add(1) on element i % len
//!   incr-sharded <region> <name> <count>          ShardedCounter::increment
//!   race         <region> <name>                  open_or_create the region, get_or_create
//!                                                 a Value<u64>; print "<region created> <object
//!                                                 created> <offset>"
//!   acked        <region> <kind> <index>          forever: one increment of the Value or
//!                                                 ShardedCounter "total", then store the running
//!                                                 count in element <index> of Array "acks"
//!   alloc-churn  <region> <count>                 allocate, stamp and free arena blocks
//!   create       <region> <prefix> <count>        get_or_create Values <prefix>0.. and check them
//! ```
//!
//! `SHMARENA_KILL_AT=<failpoint>[:<n>]` makes the worker SIGKILL itself the n-th time (default
//! first) it passes that failpoint: a death at an exact instruction of an algorithm.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use shmarena::{Region, RegionExt};

fn arm_failpoint() {
    let Ok(spec) = std::env::var("SHMARENA_KILL_AT") else {
        return;
    };
    // Failpoint names contain "::", so the count is whatever follows the last ':' if numeric.
    let (name, nth) = match spec
        .rsplit_once(':')
        .map(|(name, n)| (name, n.parse::<u64>()))
    {
        Some((name, Ok(n))) => (name.to_owned(), n),
        _ => (spec.clone(), 1),
    };
    let hits = AtomicU64::new(0);
    fail::cfg_callback(name, move || {
        if hits.fetch_add(1, Ordering::Relaxed) + 1 >= nth {
            // SAFETY: kill(2) with our own pid and a valid signal number has no memory effects.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    })
    .expect("failpoint callback");
}

fn arg<T: std::str::FromStr>(args: &[String], index: usize, what: &str) -> Result<T, String> {
    args.get(index)
        .ok_or_else(|| format!("missing argument {what}"))?
        .parse()
        .map_err(|_| format!("bad argument {what}: {:?}", args[index]))
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let command = args.first().ok_or("missing command")?;
    let path: String = arg(args, 1, "region")?;
    if command == "race" {
        let name: String = arg(args, 2, "name")?;
        let region = Region::open_or_create(&path, 1 << 20)?;
        let (object, outcome) = region.get_or_create_object(
            &name,
            &shmarena::Value::<u64>::descriptor(),
            64,
            |_| Ok(()),
        )?;
        println!(
            "{} {} {}",
            u8::from(region.is_creator()),
            u8::from(outcome == shmarena::engine::Outcome::Created),
            object.info().offset
        );
        return Ok(());
    }
    let region = Region::open(&path)?;
    match command.as_str() {
        "incr-value" => {
            let value = region.value::<u64>(&arg::<String>(args, 2, "name")?, 0)?;
            for _ in 0..arg::<u64>(args, 3, "count")? {
                value.fetch_add(1);
            }
        }
        "incr-array" => {
            let len: usize = arg(args, 3, "len")?;
            let array = region.array_zeroed::<u64>(&arg::<String>(args, 2, "name")?, len)?;
            for i in 0..arg::<usize>(args, 4, "count")? {
                array.at(i % len)?.fetch_add(1);
            }
        }
        "incr-sharded" => {
            let counter = region.sharded_counter(&arg::<String>(args, 2, "name")?)?;
            for _ in 0..arg::<u64>(args, 3, "count")? {
                counter.increment();
            }
        }
        "acked" => {
            let kind: String = arg(args, 2, "kind")?;
            let index: usize = arg(args, 3, "index")?;
            let acks = region.open_array::<u64>("acks")?;
            let ack = acks.at(index)?;
            let mut done = ack.load();
            let increment: Box<dyn Fn()> = match kind.as_str() {
                "value" => {
                    let total = region.value::<u64>("total", 0)?;
                    Box::new(move || {
                        total.fetch_add(1);
                    })
                }
                "sharded" => {
                    let total = region.sharded_counter("total")?;
                    Box::new(move || total.increment())
                }
                other => return Err(format!("unknown counter kind {other}").into()),
            };
            println!("ready");
            loop {
                increment();
                done += 1;
                ack.store(done);
            }
        }
        "alloc-churn" => {
            let arena = region.arena();
            let mut state = u64::from(std::process::id()) | 1;
            for _ in 0..arg::<u64>(args, 2, "count")? {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let size = 8 << (state % 10);
                let block = arena.alloc(size)?;
                // Stamp the block; a block handed out twice would show a foreign stamp.
                let word = shmarena::engine::Memory::word(region.memory(), block.offset)?;
                word.store(state, Ordering::Relaxed);
                std::thread::yield_now();
                if word.load(Ordering::Relaxed) != state {
                    return Err(format!("block {} was handed out twice", block.offset).into());
                }
                arena.free(block.offset, size)?;
            }
        }
        "create" => {
            let prefix: String = arg(args, 2, "prefix")?;
            for i in 0..arg::<u64>(args, 3, "count")? {
                let value = region.value::<u64>(&format!("{prefix}{i}"), i)?;
                if value.load() != i {
                    return Err(format!("{prefix}{i} holds {} instead of {i}", value.load()).into());
                }
            }
        }
        other => return Err(format!("unknown command {other}").into()),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    arm_failpoint();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shmarena-worker: {error}");
            ExitCode::FAILURE
        }
    }
}
