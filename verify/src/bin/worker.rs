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
//!   list-append  <region> <worker> <count> <capacity>  push worker<<32|i onto List<u64> "results"
//!   create       <region> <prefix> <count>        get_or_create Values <prefix>0.. and check them
//!   map-*        see "Map commands" below
//! ```
//!
//! Lock commands (see `locks` below; times are CLOCK_MONOTONIC nanoseconds, comparable
//! across processes):
//!
//! ```text
//!   mutex-rmw      <region> <name> <count>            print "ready", wait for the Event "go",
//!                                                     then <count> non-atomic read-modify-writes
//!                                                     of a Mutex<[u64; 2]>: [0] += 1, [1] += 2
//!   ring-produce   <region> <producer> <count>        push <count> items (producer << 32 | seq)
//!                                                     into the Mutex<Ring> "ring", notify_all on
//!                                                     the Condvar "ring-changed" after each
//!   ring-consume   <region> <producers> <count>       pop until all <producers> x <count> items are
//!                                                     consumed; mark each in Array "seen"; print
//!                                                     "<count> <sum> <xor>"
//!   event-wait     <region> <name>                    print "ready", wait for the Event, print
//!                                                     "woke <ns>"
//!   sem-work       <region> <name> <k> <rounds> <us>  <rounds> times: acquire the bounded
//!                                                     Semaphore(k), count itself into Values
//!                                                     "inside"/"peak", sleep <us>, leave, release
//!   barrier-rounds <region> <name> <parties> <rounds> per round: Value "arrivals" += 1, wait,
//!                                                     then check P*(round+1) <= arrivals
//!   hold-mutex     <region> <name>                    lock a Mutex<u64>, store HELD_MARK, print
//!                                                     "locked", sleep until killed
//!   wait-mutex     <region> <name>                    print "waiting", lock, print
//!                                                     "acquired <ns> <died|clean> <value>", mark
//!                                                     consistent
//!   hold-permit    <region> <name> <k>                acquire a permit of the bounded Semaphore(k),
//!                                                     print "held", sleep until killed
//!   wait-permit    <region> <name> <k>                print "waiting", acquire, print "acquired <ns>"
//!   barrier-wait   <region> <name> <parties>          print "waiting", wait once, print
//!                                                     "passed <index> <ns>" or "broken <ns>"
//!   mutex-acked    <region> <index> [die-at]          RMW of Mutex<[u64; 2]> "m" ([1] == 2 * [0])
//!                                                     until the Event "stop" is set, storing the
//!                                                     running count in element <index> of Array
//!                                                     "acks" after each unlock; with <die-at>, SIGKILL
//!                                                     itself while holding the lock, between the
//!                                                     two writes, when the count is <die-at>;
//!                                                     OwnerDied: repair, mark consistent, count
//!                                                     in Value "recoveries"
//! ```
//!
//! Queue commands (the `Queue<u64>` "q", created by the test; items are `producer << 32 | seq`):
//!
//! ```text
//!   queue-produce  <region> <producer> <from> <to>    push seq <from>..<to> (blocking), storing
//!                                                     seq + 1 in element <producer> of Array
//!                                                     "acked" after each push returned
//!   queue-consume  <region> <out-file>                pop until the Event "stop" is set and a
//!                                                     pop times out; append each item (8 bytes,
//!                                                     little-endian, one write(2) per item) to
//!                                                     <out-file> right after its pop returned
//! ```
//!
//! Map commands (the `HashMap<u64, u64>` "m" and `HashMap<u64, [u64; 4]>` "w", with
//! `MAP_CAPACITY` slots, and the `Array<u64>` "acked" of 16 elements, created by the
//! test; the value stored for a key is `worker << 32 | key`, in every word for "w"):
//!
//! ```text
//!   map-insert      <region> <worker> <from> <to> [wide]  insert keys from..to, storing key + 1
//!                                                         in element <worker> of "acked" after
//!                                                         each insert returned
//!   map-try-insert  <region> <worker> <from> <to>         try_insert keys from..to; print the
//!                                                         number that were fresh
//!   map-remove      <region> <worker> <from> <to>         remove keys from..to, acking as above
//!   map-count       <region> <count> <keys>               fetch_add(i % keys, 1) for i in 0..count
//!   map-read        <region> <from> <to>                  get keys from..to of "m" and "w"; fail on
//!                                                         a value of another key or a torn one;
//!                                                         print how many were present
//! ```
//!
//! `SHMARENA_KILL_AT=<failpoint>[:<n>]` makes the worker SIGKILL itself the n-th time (default
//! first) it passes that failpoint: a death at an exact instruction of an algorithm.
//! `SHMARENA_STOP_AT=<failpoint>[:<n>]` makes it SIGSTOP itself there instead (frozen at that
//! instruction until someone sends SIGCONT). `SHMARENA_SLEEP_AT=<failpoint>:<ms>` makes it
//! sleep that many milliseconds each time it passes the failpoint (a slow step, widening a
//! race).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use shmarena::{Region, RegionExt};

fn arm_failpoints() {
    arm_failpoint("SHMARENA_KILL_AT", libc::SIGKILL);
    arm_failpoint("SHMARENA_STOP_AT", libc::SIGSTOP);
    if let Some((name, ms)) = std::env::var("SHMARENA_SLEEP_AT").ok().and_then(|spec| {
        spec.rsplit_once(':')
            .map(|(n, ms)| (n.to_owned(), ms.to_owned()))
    }) {
        let pause = std::time::Duration::from_millis(ms.parse().expect("SHMARENA_SLEEP_AT ms"));
        fail::cfg_callback(name, move || std::thread::sleep(pause)).expect("failpoint callback");
    }
}

fn arm_failpoint(variable: &str, signal: libc::c_int) {
    let Ok(spec) = std::env::var(variable) else {
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
        // `==`: a stopped worker that is continued goes on past later passes.
        if hits.fetch_add(1, Ordering::Relaxed) + 1 == nth {
            // SAFETY: kill(2) with our own pid and a valid signal number has no memory effects.
            unsafe { libc::kill(libc::getpid(), signal) };
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

/// Allocates, stamps and frees arena blocks; fails if a block is handed out twice.
fn alloc_churn(region: &Region, args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
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
    Ok(())
}

/// Appends `worker << 32 | i` for i in 0..count to the `List<u64>` "results".
fn list_append(region: &Region, args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let worker: u64 = arg(args, 2, "worker")?;
    let list = region.list::<u64>("results", arg(args, 4, "capacity")?)?;
    for i in 0..arg::<u64>(args, 3, "count")? {
        list.push(worker << 32 | i)?;
    }
    Ok(())
}

/// A struct this binary declares under the name another program's test uses, and one of the
/// same layout under another name.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Pair {
    a: u64,
    b: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Span {
    start: u64,
    end: u64,
}

/// `type-identity`: pops a `Pair` from the `Queue<Pair>` "pairs" and pushes it back with
/// its fields summed into `b`; prints whether "pairs" opens as a `Queue<Span>` and as a
/// `HashMap<i64, f64>` the map "scalars" (a `HashMap<u64, u64>`).
fn type_identity(region: &Region) -> Result<(), Box<dyn std::error::Error>> {
    let pairs = region.open_queue::<Pair>("pairs")?;
    let pair = pairs.try_pop().ok_or("no pair queued")?;
    pairs.push(Pair {
        a: pair.a,
        b: pair.a + pair.b,
    });
    let refused = |result: Result<(), shmarena::Error>| match result {
        Err(shmarena::Error::TypeMismatch { .. }) => "refused".to_owned(),
        other => format!("{other:?}"),
    };
    println!(
        "span {}",
        refused(region.open_queue::<Span>("pairs").map(drop))
    );
    println!(
        "scalars {}",
        refused(region.open_hash_map::<i64, f64>("scalars").map(drop))
    );
    Ok(())
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
    if let Some(outcome) = locks::run(command, &region, args) {
        return outcome;
    }
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
        "alloc-churn" => alloc_churn(&region, args)?,
        "queue-produce" | "queue-consume" => queue_command(command, &region, args)?,
        "list-append" => list_append(&region, args)?,
        "type-identity" => type_identity(&region)?,
        "grace-read" | "grace-hold" | "grace-churn" | "grace-retire" => {
            grace::run(command, &region, args)?;
        }
        command if command.starts_with("map-") => map::run(command, &region, args)?,
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

/// Grace periods: readers that follow a shared pointer to an arena block while pinned, and
/// a churner that replaces the block, retires the old one and frees it (stamping it
/// `FREED`) once its grace period has passed. Block word 0 holds a stamp unique to the
/// block's life; a reader that sees it change while pinned read a freed or reused block.
mod grace {
    use shmarena::engine::Memory;
    use shmarena::{Region, RegionExt};
    use std::sync::atomic::Ordering;

    use super::arg;

    /// What a freed block holds.
    pub const FREED: u64 = u64::MAX;
    const BLOCK: u64 = 64;

    type Outcome = Result<(), Box<dyn std::error::Error>>;

    pub fn run(command: &str, region: &Region, args: &[String]) -> Outcome {
        let pointer = region.value::<u64>("grace-pointer", 0)?;
        match command {
            // grace-read <region> <millis>: pinned reads until the time is up.
            "grace-read" => {
                let deadline = std::time::Instant::now()
                    + std::time::Duration::from_millis(arg(args, 2, "millis")?);
                let mut reads = 0u64;
                while std::time::Instant::now() < deadline {
                    let _pin = region.pin()?;
                    check_block(region, pointer.load(), 16)?;
                    reads += 1;
                }
                println!("{reads}");
            }
            // grace-hold <region>: pins once and reads the same block until killed.
            "grace-hold" => {
                let _pin = region.pin()?;
                let block = pointer.load();
                println!("pinned {block}");
                loop {
                    check_block(region, block, 1 << 10)?;
                }
            }
            // grace-churn <region> <count> [seconds]: replaces the block count times, then
            // waits (at most 20 s) for what it retired; prints how many blocks it freed.
            "grace-churn" => {
                let mut waiting = std::collections::VecDeque::new();
                let mut freed = 0u64;
                for stamp in 1..=arg::<u64>(args, 2, "count")? {
                    let block = region.arena().alloc(BLOCK)?.offset;
                    // Relaxed: published by the pointer's store below.
                    word(region, block)?.store(
                        stamp << 20 | u64::from(std::process::id()),
                        Ordering::Relaxed,
                    );
                    let old = pointer.swap(block);
                    if old != 0 {
                        waiting.push_back((old, region.grace_epoch()?));
                    }
                    freed += free_passed(region, &mut waiting)?;
                }
                // The readers pin briefly: what still waits passes soon.
                let wait = args.get(3).map_or(Ok(20), |s| s.parse())?;
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
                while !waiting.is_empty() && std::time::Instant::now() < deadline {
                    freed += free_passed(region, &mut waiting)?;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                println!("{freed}");
            }
            // grace-retire <region> <count> <bytes> <exit|stay>: allocates count blocks of
            // bytes and retires each; prints "retired", then returns (the handle's drop
            // frees what no pin holds back) or stays until killed.
            "grace-retire" => {
                let bytes = arg::<u64>(args, 3, "bytes")?;
                for _ in 0..arg::<u64>(args, 2, "count")? {
                    let block = region.arena().alloc(bytes)?.offset;
                    region.retire_block(block, bytes)?;
                }
                println!("retired");
                if args.get(4).map(String::as_str) != Some("exit") {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                }
            }
            other => return Err(format!("unknown command {other}").into()),
        }
        Ok(())
    }

    /// Frees (stamping `FREED`) the retired blocks at the front of `waiting` whose grace
    /// period has passed; how many. Retirement epochs only grow along the queue, so the
    /// first that has not passed ends the round.
    fn free_passed(
        region: &Region,
        waiting: &mut std::collections::VecDeque<(u64, u64)>,
    ) -> Result<u64, shmarena::Error> {
        let mut freed = 0;
        while let Some(&(old, retired)) = waiting.front() {
            if !region.grace_has_passed(retired)? {
                break;
            }
            // Relaxed: every reader that could reach it has unpinned.
            word(region, old)?.store(FREED, Ordering::Relaxed);
            region.arena().free(old, BLOCK)?;
            waiting.pop_front();
            freed += 1;
        }
        Ok(freed)
    }

    fn word(
        region: &Region,
        offset: u64,
    ) -> Result<&shmarena::engine::sync::AtomicU64, shmarena::Error> {
        region.memory().word(offset)
    }

    /// Reads the stamp of `block` `times` times (yielding between): it must not change,
    /// nor be `FREED`.
    fn check_block(region: &Region, block: u64, times: u32) -> Outcome {
        if block == 0 {
            return Ok(());
        }
        // Relaxed: the pin keeps the block from being freed; the stamp's value is what
        // is checked.
        let stamp = word(region, block)?.load(Ordering::Relaxed);
        for _ in 0..times {
            let now = word(region, block)?.load(Ordering::Relaxed);
            if stamp == FREED || now != stamp {
                return Err(format!(
                    "block {block} freed or reused under a pin: {stamp:#x} then {now:#x}"
                )
                .into());
            }
            std::thread::yield_now();
        }
        Ok(())
    }
}

/// The hash map commands.
mod map {
    use shmarena::{Region, RegionExt};

    use super::arg;

    /// Slots of the maps the commands use.
    pub const MAP_CAPACITY: u64 = 1 << 16;
    /// Initial slots of the growing map "g".
    pub const GROWN_CAPACITY: u64 = 16;

    type Outcome = Result<(), Box<dyn std::error::Error>>;

    fn value(worker: u64, key: u64) -> u64 {
        worker << 32 | key
    }

    pub fn run(command: &str, region: &Region, args: &[String]) -> Outcome {
        let narrow = region.hash_map::<u64, u64>("m", MAP_CAPACITY)?;
        let wide = region.hash_map::<u64, [u64; 4]>("w", MAP_CAPACITY)?;
        match command {
            "map-insert" | "map-try-insert" | "map-remove" => {
                let worker: u64 = arg(args, 2, "worker")?;
                let (from, to): (u64, u64) = (arg(args, 3, "from")?, arg(args, 4, "to")?);
                let is_wide = args.get(5).is_some_and(|a| a == "wide");
                let acked = region.open_array::<u64>("acked")?;
                let ack = acked.at(worker as usize)?;
                let mut fresh = 0u64;
                for key in from..to {
                    let v = value(worker, key);
                    match (command, is_wide) {
                        ("map-insert", false) => drop(narrow.insert(key, v)?),
                        ("map-insert", true) => drop(wide.insert(key, [v; 4])?),
                        ("map-try-insert", _) => {
                            fresh += u64::from(narrow.try_insert(key, v)?.is_none());
                        }
                        _ => drop(narrow.remove(&key)?),
                    }
                    ack.store(key + 1);
                }
                if command == "map-try-insert" {
                    println!("{fresh}");
                }
            }
            "map-count" => {
                let (count, keys): (u64, u64) = (arg(args, 2, "count")?, arg(args, 3, "keys")?);
                for i in 0..count {
                    narrow.fetch_add(i % keys, 1)?;
                }
            }
            "map-read" => {
                let (from, to): (u64, u64) = (arg(args, 2, "from")?, arg(args, 3, "to")?);
                let mut present = 0;
                for key in from..to {
                    if let Some(v) = narrow.get(&key)? {
                        if v & 0xffff_ffff != key {
                            return Err(format!("key {key} holds {v:#x}").into());
                        }
                        present += 1;
                    }
                    if let Some(v) = wide.get(&key)? {
                        if v[0] & 0xffff_ffff != key || v.iter().any(|w| *w != v[0]) {
                            return Err(format!("key {key} holds {v:x?}").into());
                        }
                    }
                }
                println!("{present}");
            }
            "map-grow-insert" => {
                // Inserts into map "g", created with 16 slots (it grows), acking each key.
                let grown = region.hash_map::<u64, u64>("g", GROWN_CAPACITY)?;
                let worker: u64 = arg(args, 2, "worker")?;
                let (from, to): (u64, u64) = (arg(args, 3, "from")?, arg(args, 4, "to")?);
                let acked = region.open_array::<u64>("acked")?;
                let ack = acked.at(worker as usize)?;
                for key in from..to {
                    grown.insert(key, value(worker, key))?;
                    ack.store(key + 1);
                }
            }
            "map-grow-read" => {
                // Reads map "g" until `stop` is set: a key once seen never disappears nor
                // changes its key half; prints the reads done.
                let grown = region.hash_map::<u64, u64>("g", GROWN_CAPACITY)?;
                let (from, to): (u64, u64) = (arg(args, 2, "from")?, arg(args, 3, "to")?);
                let stop = region.value::<u64>("stop", 0)?;
                let mut seen = vec![false; (to - from) as usize];
                let mut reads = 0u64;
                // Ends by itself if the test never says stop (it failed, or was killed).
                let deadline = std::time::Instant::now() + std::time::Duration::from_mins(5);
                while stop.load() == 0 {
                    if std::time::Instant::now() > deadline {
                        return Err("map-grow-read: never told to stop".into());
                    }
                    for key in from..to {
                        reads += 1;
                        match grown.get(&key)? {
                            Some(v) if v & 0xffff_ffff != key => {
                                return Err(format!("key {key} holds {v:#x}").into());
                            }
                            Some(_) => seen[(key - from) as usize] = true,
                            None if seen[(key - from) as usize] => {
                                return Err(format!("key {key} was present, then absent").into());
                            }
                            None => {}
                        }
                    }
                }
                println!("{reads}");
            }
            other => return Err(format!("unknown command {other}").into()),
        }
        Ok(())
    }
}

/// The queue commands.
fn queue_command(
    command: &str,
    region: &Region,
    args: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    if command == "queue-produce" {
        queue_produce(region, args)
    } else {
        queue_consume(region, args)
    }
}

/// The queue "q" of the queue commands: a bounded `Queue<u64>` or an unbounded queue of
/// 8-byte elements, whichever the region holds.
enum AnyQueue {
    Bounded(shmarena::Queue<u64>),
    Unbounded(shmarena::ByteUnboundedQueue),
}

impl AnyQueue {
    fn open(region: &Region) -> shmarena::Result<Self> {
        let kind = region.find_object("q")?.map(|entry| entry.descriptor.kind);
        Ok(if kind == Some(shmarena::ObjectKind::UnboundedQueue) {
            Self::Unbounded(shmarena::ByteUnboundedQueue::open(region, "q")?)
        } else {
            Self::Bounded(shmarena::Queue::<u64>::open(region, "q")?)
        })
    }

    fn push(&self, item: u64) -> shmarena::Result<()> {
        match self {
            Self::Bounded(queue) => {
                queue.push(item);
                Ok(())
            }
            Self::Unbounded(queue) => queue.push(&item.to_le_bytes()),
        }
    }

    fn pop_timeout(&self, timeout: std::time::Duration) -> shmarena::Result<Option<u64>> {
        Ok(match self {
            Self::Bounded(queue) => queue.pop_timeout(timeout),
            Self::Unbounded(queue) => queue
                .pop_timeout(Some(timeout))?
                .map(|bytes| u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))),
        })
    }
}

/// `queue-produce`: push seq from..to, acknowledging each push that returned.
fn queue_produce(region: &Region, args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let producer: u64 = arg(args, 2, "producer")?;
    let (from, to): (u64, u64) = (arg(args, 3, "from")?, arg(args, 4, "to")?);
    let queue = AnyQueue::open(region)?;
    let acked = region.open_array::<u64>("acked")?;
    let ack = acked.at(producer as usize)?;
    for seq in from..to {
        queue.push((producer << 32) | seq)?;
        ack.store(seq + 1);
    }
    Ok(())
}

/// `queue-consume`: pop until "stop" is set and a pop times out, reporting each item.
fn queue_consume(region: &Region, args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    let out: String = arg(args, 2, "out-file")?;
    let queue = AnyQueue::open(region)?;
    let stop = region.event("stop")?;
    // Unbuffered: one write(2) per item, so a kill loses at most the item popped and not
    // yet written.
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out)?;
    loop {
        // Read before the pop: "stop" set and then an empty pop means the end.
        let stopping = stop.is_set();
        match queue.pop_timeout(std::time::Duration::from_millis(20))? {
            Some(item) => file.write_all(&item.to_le_bytes())?,
            None if stopping => return Ok(()),
            None => {}
        }
    }
}

/// The lock commands.
mod locks {
    use std::hint::black_box;
    use std::time::Duration;

    use bytemuck::{Pod, Zeroable};
    use shmarena::{Error, LockResult, Region, RegionExt};

    use super::arg;

    type Outcome = Result<(), Box<dyn std::error::Error>>;

    /// What `hold-mutex` stores in the data before it waits to be killed.
    pub const HELD_MARK: u64 = 0xdead_beef;

    /// Slots of the producer/consumer ring (small, so producers block when it is full).
    pub const RING_SLOTS: usize = 4;

    /// The producer/consumer ring kept in a `Mutex<Ring>`; `head` and `tail` only grow
    /// (the slot of index i is `i % RING_SLOTS`).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Pod, Zeroable)]
    pub struct Ring {
        /// Index of the next item to pop.
        pub head: u64,
        /// Index of the next item to push.
        pub tail: u64,
        /// Items popped by all consumers together.
        pub consumed: u64,
        /// The items.
        pub slots: [u64; RING_SLOTS],
    }

    /// CLOCK_MONOTONIC in nanoseconds: the same clock in every process of the machine.
    pub fn monotonic_ns() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec that outlives the call.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    fn sleep_until_killed() -> ! {
        loop {
            std::thread::sleep(Duration::from_secs(1000));
        }
    }

    /// The guard of a lock whose previous owner must not have died (no test kills here).
    fn clean<G>(result: LockResult<G>) -> Result<G, String> {
        result.map_err(|_| "unexpected OwnerDied: no process died in this test".to_owned())
    }

    /// Runs `command` if it is a lock command.
    pub fn run(command: &str, region: &Region, args: &[String]) -> Option<Outcome> {
        let outcome = match command {
            "mutex-rmw" => mutex_rmw(region, args),
            "ring-produce" => ring_produce(region, args),
            "ring-consume" => ring_consume(region, args),
            "event-wait" => event_wait(region, args),
            "sem-work" => sem_work(region, args),
            "barrier-rounds" => barrier_rounds(region, args),
            "hold-mutex" => hold_mutex(region, args),
            "wait-mutex" => wait_mutex(region, args),
            "hold-permit" => hold_permit(region, args),
            "wait-permit" => wait_permit(region, args),
            "barrier-wait" => barrier_wait(region, args),
            "mutex-acked" => mutex_acked(region, args),
            _ => return None,
        };
        Some(outcome)
    }

    fn mutex_rmw(region: &Region, args: &[String]) -> Outcome {
        let mutex = region.mutex::<[u64; 2]>(&arg::<String>(args, 2, "name")?, [0, 0])?;
        let count: u64 = arg(args, 3, "count")?;
        let go = region.event("go")?;
        println!("ready");
        go.wait();
        for _ in 0..count {
            let mut guard = clean(mutex.lock())?;
            // A non-atomic read-modify-write: only mutual exclusion keeps the total exact.
            let [first, second] = *guard;
            black_box(&mut *guard);
            *guard = [first + 1, second + 2];
        }
        Ok(())
    }

    fn ring_produce(region: &Region, args: &[String]) -> Outcome {
        let producer: u64 = arg(args, 2, "producer")?;
        let count: u64 = arg(args, 3, "count")?;
        let ring = region.mutex::<Ring>("ring", Ring::zeroed())?;
        let changed = region.condvar("ring-changed")?;
        for seq in 0..count {
            let guard = clean(ring.lock())?;
            let mut guard = clean(
                changed.wait_while(guard, |r| r.tail.wrapping_sub(r.head) >= RING_SLOTS as u64),
            )?;
            let tail = guard.tail;
            guard.slots[tail as usize % RING_SLOTS] = (producer << 32) | seq;
            guard.tail = tail + 1;
            drop(guard);
            changed.notify_all();
        }
        Ok(())
    }

    fn ring_consume(region: &Region, args: &[String]) -> Outcome {
        let producers: u64 = arg(args, 2, "producers")?;
        let count: u64 = arg(args, 3, "count")?;
        let total = producers * count;
        let ring = region.mutex::<Ring>("ring", Ring::zeroed())?;
        let changed = region.condvar("ring-changed")?;
        let seen = region.array_zeroed::<u64>("seen", total as usize)?;
        // Each producer pushes in order into one FIFO: any consumer sees its items rising.
        let mut last: Vec<Option<u64>> = vec![None; producers as usize];
        let (mut mine, mut sum, mut xor) = (0u64, 0u64, 0u64);
        loop {
            let guard = clean(ring.lock())?;
            let mut guard =
                clean(changed.wait_while(guard, |r| r.head == r.tail && r.consumed < total))?;
            if guard.consumed >= total {
                break;
            }
            let (head, tail) = (guard.head, guard.tail);
            if tail.wrapping_sub(head) > RING_SLOTS as u64 {
                return Err(format!("ring holds head {head}, tail {tail}").into());
            }
            let item = guard.slots[head as usize % RING_SLOTS];
            guard.head = head + 1;
            guard.consumed += 1;
            drop(guard);
            changed.notify_all();
            let (producer, seq) = (item >> 32, item & u64::from(u32::MAX));
            if producer >= producers || seq >= count {
                return Err(format!("popped a foreign item {item:#x}").into());
            }
            let previous = &mut last[producer as usize];
            if previous.is_some_and(|p| p >= seq) {
                return Err(format!(
                    "producer {producer}: item {seq} popped after item {previous:?}"
                )
                .into());
            }
            *previous = Some(seq);
            seen.at((producer * count + seq) as usize)?.fetch_add(1);
            mine += 1;
            sum = sum.wrapping_add(item);
            xor ^= item;
        }
        // Wake any consumer still waiting: everything is consumed.
        changed.notify_all();
        println!("{mine} {sum} {xor}");
        Ok(())
    }

    fn event_wait(region: &Region, args: &[String]) -> Outcome {
        let event = region.event(&arg::<String>(args, 2, "name")?)?;
        println!("ready");
        event.wait();
        println!("woke {}", monotonic_ns());
        Ok(())
    }

    fn sem_work(region: &Region, args: &[String]) -> Outcome {
        let k: u32 = arg(args, 3, "k")?;
        let sem = region.bounded_semaphore(&arg::<String>(args, 2, "name")?, k)?;
        let rounds: u64 = arg(args, 4, "rounds")?;
        let hold = Duration::from_micros(arg(args, 5, "us")?);
        let inside = region.value::<u64>("inside", 0)?;
        let peak = region.value::<u64>("peak", 0)?;
        let done = region.value::<u64>("done", 0)?;
        for _ in 0..rounds {
            sem.acquire();
            let now = inside.fetch_add(1) + 1;
            peak.fetch_max(now);
            std::thread::sleep(hold);
            inside.fetch_sub(1);
            done.fetch_add(1);
            sem.release()?;
        }
        Ok(())
    }

    fn barrier_rounds(region: &Region, args: &[String]) -> Outcome {
        let parties: u32 = arg(args, 3, "parties")?;
        let barrier = region.barrier(&arg::<String>(args, 2, "name")?, parties)?;
        let arrivals = region.value::<u64>("arrivals", 0)?;
        let parties = u64::from(parties);
        for round in 0..arg::<u64>(args, 4, "rounds")? {
            arrivals.fetch_add(1);
            barrier.wait()?;
            // Everyone arrived in this round; nobody can have arrived twice in the next
            // one (it would need us at the next trip), and we have not arrived in it yet.
            let seen = arrivals.load();
            let (low, high) = (parties * (round + 1), parties * (round + 2) - 1);
            if !(low..=high).contains(&seen) {
                return Err(format!(
                    "round {round}: {seen} arrivals after the barrier, expected {low}..={high}"
                )
                .into());
            }
        }
        Ok(())
    }

    fn hold_mutex(region: &Region, args: &[String]) -> Outcome {
        let mutex = region.mutex::<u64>(&arg::<String>(args, 2, "name")?, 0)?;
        let mut guard = mutex.lock().unwrap_or_else(shmarena::OwnerDied::into_inner);
        *guard = HELD_MARK;
        println!("locked");
        std::mem::forget(guard);
        sleep_until_killed()
    }

    fn wait_mutex(region: &Region, args: &[String]) -> Outcome {
        let mutex = region.mutex::<u64>(&arg::<String>(args, 2, "name")?, 0)?;
        if mutex.try_lock().is_ok() {
            return Err("the mutex was free: the holder should hold it".into());
        }
        println!("waiting");
        let (guard, died) = match mutex.lock() {
            Ok(guard) => (guard, false),
            Err(died) => (died.into_inner(), true),
        };
        let at = monotonic_ns();
        println!(
            "acquired {at} {} {}",
            if died { "died" } else { "clean" },
            *guard
        );
        guard.mark_consistent();
        Ok(())
    }

    fn hold_permit(region: &Region, args: &[String]) -> Outcome {
        let sem = region.bounded_semaphore(&arg::<String>(args, 2, "name")?, arg(args, 3, "k")?)?;
        sem.acquire();
        println!("held");
        sleep_until_killed()
    }

    fn wait_permit(region: &Region, args: &[String]) -> Outcome {
        let sem = region.bounded_semaphore(&arg::<String>(args, 2, "name")?, arg(args, 3, "k")?)?;
        if sem.try_acquire() {
            return Err("a permit was free: the holders should hold them all".into());
        }
        println!("waiting");
        sem.acquire();
        println!("acquired {}", monotonic_ns());
        sem.release()?;
        Ok(())
    }

    fn barrier_wait(region: &Region, args: &[String]) -> Outcome {
        let barrier = region.barrier(&arg::<String>(args, 2, "name")?, arg(args, 3, "parties")?)?;
        println!("waiting");
        match barrier.wait() {
            Ok(index) => println!("passed {index} {}", monotonic_ns()),
            Err(Error::BrokenBarrier(_)) => println!("broken {}", monotonic_ns()),
            Err(other) => return Err(other.into()),
        }
        Ok(())
    }

    fn mutex_acked(region: &Region, args: &[String]) -> Outcome {
        let index: usize = arg(args, 2, "index")?;
        let die_at: Option<u64> = match args.get(3) {
            Some(_) => Some(arg(args, 3, "die-at")?),
            None => None,
        };
        let mutex = region.mutex::<[u64; 2]>("m", [0, 0])?;
        let recoveries = region.value::<u64>("recoveries", 0)?;
        let stop = region.event("stop")?;
        let acks = region.open_array::<u64>("acks")?;
        let ack = acks.at(index)?;
        let mut done = ack.load();
        println!("ready");
        while !stop.is_set() {
            let mut guard = match mutex.lock() {
                Ok(guard) => guard,
                Err(died) => {
                    // A previous owner died, maybe between the two writes: [0] is the
                    // truth (its increment happened), [1] is derived from it.
                    let mut guard = died.into_inner();
                    guard[1] = guard[0] * 2;
                    guard.mark_consistent();
                    recoveries.fetch_add(1);
                    guard
                }
            };
            let [value, double] = *guard;
            if double != value * 2 {
                return Err(
                    format!("inconsistent data under a clean lock: [{value}, {double}]").into(),
                );
            }
            black_box(&mut *guard);
            guard[0] = value + 1;
            if die_at == Some(done) {
                // SAFETY: kill(2) with our own pid and a valid signal has no memory effects.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            }
            // Some work inside the lock, so that random kills often land in it.
            for i in 0..32u64 {
                black_box(i);
            }
            guard[1] = (value + 1) * 2;
            drop(guard);
            done += 1;
            ack.store(done);
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    arm_failpoints();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shmarena-worker: {error}");
            ExitCode::FAILURE
        }
    }
}
