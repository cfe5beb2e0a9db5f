//! `shmarena stress`: worker processes hammer every structure at once while the parent
//! SIGKILLs them (and restarts them) and freezes them (SIGSTOP, then SIGCONT) at random
//! times; at the end every invariant is checked.
//!
//! Each worker acknowledges an operation in its own cell of a shared array only after the
//! operation returned, so a worker killed mid-operation leaves at most one unacknowledged
//! effect. The checks allow exactly that slack:
//!
//! - `Value` and `ShardedCounter` totals lie in `[acknowledged, acknowledged + kills]`;
//! - the `Mutex<[u64; 2]>` pair is equal after a clean final lock (every section bumps
//!   both halves; a section cut by a kill is repaired by the next owner, told by
//!   `OwnerDied`);
//! - queue: popped + left in the queue lies in `[pushed - lost - kills, pushed + kills]`;
//! - list: acknowledged appends <= present elements + kills, indices <= appends + kills;
//! - hash map: every worker inserts and removes its own keys, recording after each
//!   operation returned what the key should hold; at most one key per kill differs from
//!   that record, no key appears twice, and `len` equals the entries after `recount`; the
//!   shared word-count keys (fetch_add) total within `[acknowledged, acknowledged + kills]`;
//! - semaphore(2): never more than 2 live holders at once (each holder reads the workers'
//!   owner ids, then sets its bit in a shared mask, and counts the other set bits whose
//!   owners are alive);
//! - `shmarena::check::check_region` finds no error.
//!
//! "Longest stall seen" is sampled: at each signal the parent looks at every worker's
//! heartbeat (stamped before each operation) and records how long the slowest one has
//! not moved, skipping the worker it just signalled. Waiting behind a frozen lock holder
//! shows up here; it is the price of mutual exclusion, not a lost wake-up.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use shmarena::check::check_region;
use shmarena::engine::Severity;
use shmarena::{Region, RegionExt};

type Outcome = Result<ExitCode, Box<dyn std::error::Error>>;

/// Arguments of `shmarena stress`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Worker processes.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Mean time between two signals, in milliseconds.
    #[arg(long, default_value_t = 100)]
    signal_every_ms: u64,
}

/// Arguments of a stress worker process.
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// Region path.
    #[arg(long)]
    region: PathBuf,
    /// This worker's index.
    #[arg(long)]
    index: usize,
}

/// Operation kinds, each with its own acknowledgement array.
const OPS: [&str; 8] = [
    "value", "sharded", "mutex", "push", "pop", "append", "map", "count",
];

/// Failpoints a worker may die at (with the `failpoints` feature): one is armed per worker
/// life, to fire after a random number of passes.
const FAILPOINTS: [&str; 12] = [
    "participants::after_lock",
    "hash_map::insert_after_claim",
    "hash_map::insert_before_publish",
    "hash_map::insert_before_settle",
    "hash_map::promote_before_count",
    "hash_map::remove_before_count",
    "hash_map::update_before_publish",
    "queue::push_after_claim",
    "queue::push_before_publish",
    "queue::pop_after_claim",
    "list::push_before_publish",
    "stress::inside_lock",
];

/// Arms one random failpoint to SIGKILL this worker after a random number of passes.
fn arm_failpoint(rng: &mut u64) {
    if !cfg!(feature = "failpoints") {
        return;
    }
    let name = FAILPOINTS[(xorshift(rng) % FAILPOINTS.len() as u64) as usize];
    let fire_at = 1 + xorshift(rng) % 20_000;
    let passes = std::sync::atomic::AtomicU64::new(0);
    let _ = fail::cfg_callback(name, move || {
        if passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == fire_at {
            // SAFETY: kill(2) on our own pid has no memory effects.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    });
}
const MAX_WORKERS: usize = 64;
const LIST_CAPACITY: u64 = 1 << 20;
/// Keys each worker owns in the map "map" (at most half the slots in use).
const MAP_KEYS_PER_WORKER: u64 = 32;
const MAP_CAPACITY: u64 = 4096;
/// Keys every worker counts into (fetch_add 1).
const COUNT_KEYS: u64 = 16;

fn acks_name(op: &str) -> String {
    format!("acks.{op}")
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn create_objects(region: &Region, workers: usize) -> Result<(), shmarena::Error> {
    region.value::<u64>("value", 0)?;
    region.sharded_counter("sharded")?;
    region.mutex::<[u64; 2]>("pair", [0, 0])?;
    region.queue::<u64>("queue", 256)?;
    region.bounded_semaphore("sem", 2)?;
    region.value::<u64>("inside", 0)?;
    region.array_zeroed::<u32>("owners", workers)?;
    region.value::<u64>("peak", 0)?;
    region.event("stop")?;
    region.list::<u64>("results", LIST_CAPACITY)?;
    region.array_zeroed::<u64>("heartbeat", workers)?;
    region.hash_map::<u64, u64>("map", MAP_CAPACITY)?;
    region.hash_map::<u64, [u64; 3]>("wide", MAP_CAPACITY)?;
    region.array_zeroed::<u64>("map.expect", workers * MAP_KEYS_PER_WORKER as usize)?;
    for op in OPS {
        region.array_zeroed::<u64>(&acks_name(op), workers)?;
    }
    Ok(())
}

fn now_ns(started: Instant) -> u64 {
    started.elapsed().as_nanos() as u64
}

/// Runs in a worker process until the stop event is set.
pub fn worker(args: &WorkerArgs) -> Outcome {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process: if the stress
    // parent dies, its workers die with it instead of running on.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let mut rng = ((args.index as u64 + 1) * 0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id());
    arm_failpoint(&mut rng);
    let region = Region::open(&args.region)?;
    let i = args.index;
    let value = region.open_value::<u64>("value")?;
    let sharded = region.sharded_counter("sharded")?;
    let pair = region.mutex::<[u64; 2]>("pair", [0, 0])?;
    let queue = region.queue::<u64>("queue", 256)?;
    let sem = region.bounded_semaphore("sem", 2)?;
    // Who holds a semaphore permit: bit i for worker i. A worker killed while holding one
    // leaves its bit set, so holders are counted only among live owners, and a new life of
    // worker i clears bit i before it announces its owner id.
    let inside = region.open_value::<u64>("inside")?;
    let owners = region.open_array::<u32>("owners")?;
    inside.fetch_and(!(1 << i));
    owners.set(i, region.participant_id().bits())?;
    let peak = region.open_value::<u64>("peak")?;
    let stop = region.event("stop")?;
    let results = region.list::<u64>("results", LIST_CAPACITY)?;
    let heartbeat = region.open_array::<u64>("heartbeat")?;
    let map = region.hash_map::<u64, u64>("map", MAP_CAPACITY)?;
    let wide = region.hash_map::<u64, [u64; 3]>("wide", MAP_CAPACITY)?;
    let expect = region.open_array::<u64>("map.expect")?;
    let acks: Vec<_> = OPS
        .iter()
        .map(|op| region.open_array::<u64>(&acks_name(op)))
        .collect::<Result<_, _>>()?;
    let ack = |op: usize| acks[op].at(i).map(|cell| cell.fetch_add(1));
    let started = Instant::now();
    let mut seq = acks[3].at(i)?.load();
    while !stop.is_set() {
        heartbeat.set(i, now_ns(started))?;
        match xorshift(&mut rng) % 9 {
            0 => {
                value.fetch_add(1);
                ack(0)?;
            }
            1 => {
                sharded.increment();
                ack(1)?;
            }
            2 => {
                let mut guard = pair.lock().unwrap_or_else(|died| {
                    let mut guard = died.into_inner();
                    guard[1] = guard[0]; // repair a section cut short by a death
                    guard.mark_consistent();
                    guard
                });
                guard[0] += 1;
                fail::fail_point!("stress::inside_lock");
                std::hint::black_box(&mut *guard);
                guard[1] += 1;
                drop(guard);
                ack(2)?;
            }
            3 => {
                if queue
                    .push_timeout((i as u64) << 40 | seq, Duration::from_millis(5))
                    .is_ok()
                {
                    seq += 1;
                    ack(3)?;
                }
            }
            4 => {
                if queue.pop_timeout(Duration::from_millis(5)).is_some() {
                    ack(4)?;
                }
            }
            5 => {
                if results.push((i as u64) << 40 | seq).is_ok() {
                    ack(5)?;
                }
            }
            7 => {
                map_step(&map, &wide, &expect, i, &mut seq, xorshift(&mut rng))?;
                ack(6)?;
            }
            8 => {
                map.fetch_add(xorshift(&mut rng) % COUNT_KEYS, 1)?;
                ack(7)?;
            }
            _ => semaphore_step(&region, &sem, &inside, &owners, &peak, i)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes a permit of the bounded semaphore(2) if one comes within 5 ms, and records how
/// many live workers held one at that moment (each holder sets its bit in "inside").
fn semaphore_step(
    region: &Region,
    sem: &shmarena::Semaphore,
    inside: &shmarena::Value<u64>,
    owners: &shmarena::Array<u32>,
    peak: &shmarena::Value<u64>,
    i: usize,
) -> Result<(), shmarena::Error> {
    if !sem.acquire_timeout(Duration::from_millis(5)) {
        return Ok(());
    }
    // Owners first, then the holder bits in one atomic snapshot: a new life of worker j
    // clears bit j before it publishes its owner id, so a bit in the snapshot was set by
    // the owner read here or by a later life (which set it holding a permit). Read the
    // other way round, a dead life's bit could be counted as its live successor's.
    let owner_ids = owners.snapshot();
    let others = inside.fetch_or(1 << i) & !(1 << i);
    let live_others = (0..owner_ids.len())
        .filter(|&j| others & (1 << j) != 0)
        .filter(|&j| shmarena::OwnerId::from_bits(owner_ids[j]).is_some_and(|o| region.is_alive(o)))
        .count() as u64;
    peak.fetch_max(1 + live_others);
    inside.fetch_and(!(1 << i));
    sem.release()
}

/// One hash map step on worker `i`'s own keys: insert or remove, then record what the key
/// holds now (0: absent, else value + 1). Wide values ride along (never torn, checked).
fn map_step(
    map: &shmarena::HashMap<u64, u64>,
    wide: &shmarena::HashMap<u64, [u64; 3]>,
    expect: &shmarena::Array<u64>,
    i: usize,
    seq: &mut u64,
    r: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let slot = (i as u64) * MAP_KEYS_PER_WORKER + r % MAP_KEYS_PER_WORKER;
    let key = COUNT_KEYS + slot;
    if (r >> 32).is_multiple_of(3) {
        map.remove(&key)?;
        wide.remove(&key)?;
        expect.set(slot as usize, 0)?;
    } else {
        let v = (i as u64) << 40 | *seq;
        *seq += 1;
        map.insert(key, v)?;
        if let Some(old) = wide.insert(key, [v, !v, v])? {
            if old[1] != !old[0] || old[2] != old[0] {
                return Err(format!("torn wide value {old:x?}").into());
            }
        }
        expect.set(slot as usize, v + 1)?;
    }
    Ok(())
}

fn spawn_worker(region: &std::path::Path, index: usize) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .arg("stress-worker")
        .arg("--region")
        .arg(region)
        .args(["--index", &index.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// Counters of one run.
#[derive(Default, Debug)]
struct Summary {
    operations: u64,
    kills: u64,
    failpoint_kills: u64,
    freezes: u64,
    longest_stall_ms: u64,
    violations: Vec<String>,
}

/// Runs the stress test.
pub fn run(args: &Args) -> Outcome {
    if args.workers == 0 || args.workers > MAX_WORKERS {
        return Err(format!("--workers must be 1 to {MAX_WORKERS}").into());
    }
    let path = PathBuf::from(format!("/dev/shm/shmarena-stress-{}", std::process::id()));
    let region = Region::create(&path, 64 << 20)?;
    let result = drive(&region, &path, args);
    let _ = Region::unlink(&path);
    let summary = result?;
    let ok = summary.violations.is_empty();
    println!(
        "stress: {} workers, {:.0} s, operations {}, kills {} ({} at failpoints), freezes {}, longest stall seen {} ms, violations {}",
        args.workers,
        args.seconds,
        summary.operations,
        summary.kills,
        summary.failpoint_kills,
        summary.freezes,
        summary.longest_stall_ms,
        summary.violations.len()
    );
    for violation in &summary.violations {
        println!("  VIOLATION: {violation}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn drive(
    region: &Region,
    path: &std::path::Path,
    args: &Args,
) -> Result<Summary, Box<dyn std::error::Error>> {
    create_objects(region, args.workers)?;
    let heartbeat = region.open_array::<u64>("heartbeat")?;
    let mut workers: Vec<Child> = (0..args.workers)
        .map(|i| spawn_worker(path, i))
        .collect::<Result<_, _>>()?;
    let mut summary = Summary::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    let progress = ProgressBar::new(args.seconds as u64);
    progress.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} s {msg}",
    )?);
    let mut rng = u64::from(std::process::id()) | 1;
    let mut last_beats = vec![(0u64, Instant::now()); args.workers];
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(
            1 + xorshift(&mut rng) % (2 * args.signal_every_ms.max(1)),
        ));
        // Longest gap between two heartbeats of a worker that was neither frozen nor dead.
        for (i, last) in last_beats.iter_mut().enumerate() {
            let beat = heartbeat.get(i)?;
            if beat == last.0 {
                let stalled = last.1.elapsed().as_millis() as u64;
                summary.longest_stall_ms = summary.longest_stall_ms.max(stalled);
            } else {
                *last = (beat, Instant::now());
            }
        }
        // Workers that died at a failpoint: count them as kills and start them again.
        for (index, worker) in workers.iter_mut().enumerate() {
            if let Some(status) = worker.try_wait()? {
                if status.signal() != Some(libc::SIGKILL) {
                    summary
                        .violations
                        .push(format!("worker {index} exited by itself: {status}"));
                }
                summary.kills += 1;
                summary.failpoint_kills += 1;
                *worker = spawn_worker(path, index)?;
            }
        }
        let victim = (xorshift(&mut rng) % args.workers as u64) as usize;
        if xorshift(&mut rng).is_multiple_of(2) {
            workers[victim].kill()?;
            workers[victim].wait()?;
            summary.kills += 1;
            workers[victim] = spawn_worker(path, victim)?;
        } else {
            signal(&workers[victim], libc::SIGSTOP);
            std::thread::sleep(Duration::from_millis(1 + xorshift(&mut rng) % 50));
            signal(&workers[victim], libc::SIGCONT);
            summary.freezes += 1;
        }
        last_beats[victim] = (heartbeat.get(victim)?, Instant::now());
        progress.set_position(started.elapsed().as_secs());
        progress.set_message(format!(
            "kills {} freezes {}",
            summary.kills, summary.freezes
        ));
    }
    progress.finish_and_clear();
    region.event("stop")?.set();
    for worker in &mut workers {
        let waited = Instant::now();
        while worker.try_wait()?.is_none() {
            if waited.elapsed() > Duration::from_secs(10) {
                summary
                    .violations
                    .push(format!("worker {} did not stop within 10 s", worker.id()));
                worker.kill()?;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    check_totals(region, &mut summary)?;
    Ok(summary)
}

fn acked(region: &Region, op: &str) -> Result<u64, shmarena::Error> {
    Ok(region
        .open_array::<u64>(&acks_name(op))?
        .snapshot()
        .iter()
        .sum())
}

fn check_totals(region: &Region, summary: &mut Summary) -> Result<(), Box<dyn std::error::Error>> {
    let kills = summary.kills;
    for op in OPS {
        summary.operations += acked(region, op)?;
    }
    let within = |name: &str, total: u64, acknowledged: u64, violations: &mut Vec<String>| {
        if !(acknowledged..=acknowledged + kills).contains(&total) {
            violations.push(format!(
                "{name}: total {total} outside acknowledged {acknowledged} + {kills} kills"
            ));
        }
    };
    within(
        "value",
        region.open_value::<u64>("value")?.load(),
        acked(region, "value")?,
        &mut summary.violations,
    );
    within(
        "sharded counter",
        region.sharded_counter("sharded")?.sum() as u64,
        acked(region, "sharded")?,
        &mut summary.violations,
    );
    let pair = region.mutex::<[u64; 2]>("pair", [0, 0])?;
    match pair.lock() {
        Ok(guard) if guard[0] != guard[1] => summary.violations.push(format!(
            "mutex pair {:?} unequal after a clean lock",
            *guard
        )),
        Ok(guard) => within(
            "mutex sections",
            guard[0],
            acked(region, "mutex")?,
            &mut summary.violations,
        ),
        Err(died) => died.into_inner().mark_consistent(), // the last holder died: nothing to compare
    }
    let queue = region.queue::<u64>("queue", 256)?;
    let mut left = 0;
    while queue.try_pop().is_some() {
        left += 1;
    }
    let (pushed, popped) = (acked(region, "push")?, acked(region, "pop")?);
    let out = popped + left;
    if out + queue.lost() + kills < pushed || out > pushed + kills {
        summary.violations.push(format!(
            "queue: {pushed} pushes acknowledged, {popped} pops acknowledged, {left} left, {} lost, {kills} kills",
            queue.lost()
        ));
    }
    let results = region.open_list::<u64>("results")?;
    let appended = acked(region, "append")?;
    let present = results.snapshot()?.len() as u64;
    let handed_out = results.len() as u64;
    if present < appended || present > appended + kills || handed_out > appended + kills {
        summary.violations.push(format!(
            "list: {appended} appends acknowledged, {handed_out} indices handed out, {present} present, {kills} kills"
        ));
    }
    check_map(region, summary)?;
    let peak = region.open_value::<u64>("peak")?.load();
    if peak > 2 {
        summary
            .violations
            .push(format!("semaphore(2) had {peak} holders at once"));
    }
    for finding in check_region(region)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
    {
        summary.violations.push(format!("check: {finding}"));
    }
    Ok(())
}

fn check_map(region: &Region, summary: &mut Summary) -> Result<(), Box<dyn std::error::Error>> {
    let kills = summary.kills;
    let map = region.hash_map::<u64, u64>("map", MAP_CAPACITY)?;
    let wide = region.hash_map::<u64, [u64; 3]>("wide", MAP_CAPACITY)?;
    let expect = region.open_array::<u64>("map.expect")?.snapshot();
    let entries: Vec<(u64, u64)> = map.iter().collect::<Result<_, _>>()?;
    let mut keys: Vec<u64> = entries.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    let distinct = {
        let mut d = keys.clone();
        d.dedup();
        d.len()
    };
    if distinct != keys.len() {
        summary.violations.push(format!(
            "hash map: {} keys appear twice",
            keys.len() - distinct
        ));
    }
    let counted = map.recount();
    if counted != entries.len() {
        summary.violations.push(format!(
            "hash map: {counted} members counted, {} iterated",
            entries.len()
        ));
    }
    let mut differ = 0u64;
    for (slot, &expected) in expect.iter().enumerate() {
        let key = COUNT_KEYS + slot as u64;
        let actual = map.get(&key)?.map_or(0, |v| v + 1);
        if actual != expected {
            differ += 1;
        }
        if let Some(v) = wide.get(&key)? {
            if v[1] != !v[0] || v[2] != v[0] {
                summary
                    .violations
                    .push(format!("hash map: torn wide value {v:x?}"));
            }
        }
    }
    if differ > kills {
        summary.violations.push(format!(
            "hash map: {differ} keys differ from their acknowledged state, {kills} kills"
        ));
    }
    let total: u64 = (0..COUNT_KEYS)
        .map(|key| map.get(&key).map(|v| v.unwrap_or(0)))
        .sum::<Result<_, _>>()?;
    let acknowledged = acked(region, "count")?;
    if !(acknowledged..=acknowledged + kills).contains(&total) {
        summary.violations.push(format!(
            "hash map counts: total {total} outside acknowledged {acknowledged} + {kills} kills"
        ));
    }
    Ok(())
}
