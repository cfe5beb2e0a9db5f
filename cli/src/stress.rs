//! `shmarena stress`: worker processes hammer every structure at once while the parent
//! SIGKILLs them (and restarts them) and freezes them (SIGSTOP, then SIGCONT) at random
//! times; at the end every invariant is checked.
//!
//! # Totals
//!
//! Each worker acknowledges an operation in its own cell of a shared array only after the
//! operation returned, so a worker killed mid-operation leaves at most one unacknowledged
//! effect. The checks allow exactly that slack:
//!
//! - `Value` and `ShardedCounter` totals lie in `[acknowledged, acknowledged + kills]`;
//! - the `Mutex<[u64; 2]>` pair is equal after a clean final lock (every section bumps
//!   both halves; a section cut by a kill is repaired by the next owner, told by
//!   `OwnerDied`);
//! - queues (the bounded "queue" and the unbounded "uqueue", whose first ring of 4 slots
//!   makes it link and drain rings): popped + left lies in
//!   `[pushed - lost - kills, pushed + kills]`;
//! - list: acknowledged appends <= present elements + kills, indices <= appends + kills;
//! - hash map: every worker inserts and removes its own keys, recording after each
//!   operation returned what the key should hold; at most one key per kill differs from
//!   that record, no key appears twice, and `len` equals the entries after `recount`; the
//!   shared word-count keys (fetch_add) total within `[acknowledged, acknowledged + kills]`;
//! - semaphore(2): never more than 2 live holders at once (each holder reads the workers'
//!   owner ids, then sets its bit in a shared mask, and counts the other set bits whose
//!   owners are alive);
//! - out-of-line values: workers write, read and remove 16 shared keys of the map "blobs",
//!   whose value names a blob (offset, length, id) in which every word is the id; a read
//!   under a grace pin that finds another word read a block freed or reused under it
//!   (counted in "blobs.torn", which must stay 0: a kill leaks retired blocks, it never
//!   frees one early);
//! - `shmarena::check::check_region` finds no error.
//!
//! # Linearizability under kills
//!
//! Totals cannot tell an operation that took effect before its process died from one that
//! took effect later. Wanted (issue 13): an operation of a process that dies takes effect
//! before the death or never; a frozen process's operation may still be completed by
//! helpers. So workers also share keys: 32 keys of the map "map" and of the wide map
//! "wide" (three-word values, two copies), and 16 indices of the list "shared.list"
//! (two-word elements), on which every worker reads, inserts, inserts-if-absent,
//! compare-exchanges, removes (maps) and sets (list); and the queue and the list
//! "results" carry such values too. Every write carries a value unique to that one
//! operation (`1 << 63 | life << 32 | seq`; a *life* is one worker process, numbered by
//! the supervisor at spawn, never reused).
//!
//! Before each such operation a worker records its intent in its life's record in the
//! region (`records`: target, verb, key, the unique value, a start time from a shared
//! logical clock, one `fetch_add` per timestamp); after it returns, it records what it
//! saw, then clears the in-flight bit. A life that dies leaves its record frozen, in flight
//! exactly when an operation may have been cut short. Timestamps order operations in real
//! time: an operation that starts after another's end timestamp linearizes after it.
//!
//! An *observation* of a shared key is any result that tells what the key held when the
//! operation took effect: `get`, the old value returned by `insert`, `try_insert`,
//! `remove` and `compare_exchange`, a list `get`, and the supervisor's own reads (right
//! after it reaps a worker, before every signal, and at the end). What each check proves:
//!
//! - **late map write, late wide write, late list set**: a dead life had a write of value
//!   `u` in flight on a key. An observation that began after the death was certain (the
//!   observer found the dead life's owner id dead, or the supervisor had waited for the
//!   process) and saw the key without `u` marks `u` *gone* at its end time. From then on
//!   no observation that begins later may see `u`: if the write took effect before the
//!   death, `u` was since replaced or removed, and values are never written twice; if it
//!   had not, it must never. A later sighting is counted once per dead life: the dead
//!   write landed after its death (the issue's `try_insert` killed at
//!   `hash_map::insert_before_settle`, whose copy a later insert promotes).
//! - **late map remove, late wide remove** (the reverse): a dead life had a remove of a key
//!   in flight; after the death the supervisor reads the key, publishes the value `x` it
//!   holds as *watched*, and reads again: `x` both times means the remove had not taken
//!   `x` out. Every operation that takes a value out of a shared key (`remove`, replacing
//!   `insert`, `compare_exchange`) reports it on the watch if it is `x` (a SeqCst fence on
//!   both sides: a remover that linearized after the second read sees the watch). When
//!   the supervisor later finds `x` gone, it waits until every operation then in flight
//!   has finished or died, and counts a violation if nobody reported taking `x` out and no
//!   life that died with a remove, insert or compare-exchange of that key in flight could
//!   have run after `x` was seen: then the dead remove took effect after its death.
//! - **late list push**: a dead life had a push of `u` onto "results" in flight, with the
//!   list's length `lo` read before it. Its index lies in `[lo, hi)`, `hi` read after the
//!   death; if the supervisor finds `u` at no index there after the death, `u` must be
//!   nowhere in the list at the end (no other index can hold the dead push's value).
//! - **late queue push**: the queue is read only by popping, so "seen not there" is FIFO
//!   order: an element pushed by a life spawned after the death (the supervisor numbers
//!   lives in spawn order and records, when it reaps a life, the first id handed out
//!   after) was pushed after the dead push, so once a pop of such an element has returned,
//!   the dead push's element must not come out of a pop that starts later. Poppers publish
//!   the largest life popped (after the pop returns) and read it before each pop.
//!
//! No check flags a correct history: a write violation needs a unique value seen by an
//! operation that began after another operation, begun after the writer's death, had
//! ended without seeing it; a remove violation needs a value seen twice after the
//! remover's death to vanish while every operation that could have taken it out either
//! reported another value or died before it was seen. Not checked this way: queue pops
//! (no read leaves an element in place) and list sets not done (a set returns no old
//! value, so a vanished value has no reporter).
//!
//! The checks can fail: on the map before its fix (settles promoted a dead insert's
//! copy), a 60 s run counts dozens of late map and wide writes; with dead queue pushes,
//! results pushes and list sets landed later by hand, and removers' reports suppressed,
//! the other five fire too.
//!
//! "Longest stall seen" is sampled: at each signal the parent looks at every worker's
//! heartbeat (stamped before each operation) and records how long the slowest one has
//! not moved, skipping the worker it just signalled. Waiting behind a frozen lock holder
//! shows up here; it is the price of mutual exclusion, not a lost wake-up.

mod records;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use shmarena::check::check_region;
use shmarena::engine::Severity;
use shmarena::{Region, RegionExt};

use records::{
    Records, Shared, Supervisor, Target, Tracker, Verb, CHECKS, LIST_SLOTS, SHARED_KEYS,
    SHARED_KEY_BASE,
};

type Outcome = Result<ExitCode, Box<dyn std::error::Error>>;
type Fallible = Result<(), Box<dyn std::error::Error>>;

/// Arguments of `shmarena stress`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Worker processes.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Mean time between two signals, in milliseconds (each a SIGKILL or a freeze).
    #[arg(long, default_value_t = 100)]
    signal_every_ms: u64,
    /// Share of signals that are SIGKILLs (the others freeze), in percent.
    #[arg(long, default_value_t = 50)]
    kill_percent: u64,
    /// Share of worker lives that arm a failpoint to kill themselves at, in percent
    /// (with the `failpoints` feature).
    #[arg(long, default_value_t = 80)]
    failpoint_percent: u64,
    /// Failpoints lives may arm (comma-separated names; default: all of them).
    #[arg(long, value_delimiter = ',')]
    failpoints: Vec<String>,
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
    /// This life's id (one per spawn).
    #[arg(long)]
    life: u64,
    /// Number of workers.
    #[arg(long)]
    workers: usize,
    /// Share of lives that arm a failpoint, in percent.
    #[arg(long, default_value_t = 80)]
    failpoint_percent: u64,
    /// Failpoints this life may arm (default: all).
    #[arg(long, value_delimiter = ',')]
    failpoints: Vec<String>,
}

/// Operation kinds, each with its own acknowledgement array.
const OPS: [&str; 11] = [
    "value",
    "sharded",
    "mutex",
    "push",
    "pop",
    "append",
    "map",
    "count",
    "map.shared",
    "wide.shared",
    "list.shared",
];

/// Failpoints a worker may die at (with the `failpoints` feature), with a weight and the
/// largest pass to fire at: a life that arms one picks it by weight and dies at a random
/// pass up to that one. The map's insert path before its settle is weighted up: a death
/// there leaves an unsettled copy, the state issue 13's late write comes from.
const FAILPOINTS: [(&str, u64, u64); 27] = [
    ("participants::after_lock", 1, 20_000),
    ("hash_map::insert_after_claim", 1, 2_000),
    ("hash_map::insert_before_publish", 1, 2_000),
    ("hash_map::insert_before_settle", 6, 500),
    ("hash_map::promote_before_count", 1, 2_000),
    ("hash_map::remove_before_count", 2, 2_000),
    ("hash_map::remove_before_finish", 2, 2_000),
    ("hash_map::update_before_publish", 2, 2_000),
    // The maps start at 16 slots and grow in the first seconds: deaths inside growth.
    ("hash_map::grow_between_blocks", 1, 4),
    ("hash_map::grow_before_link", 1, 4),
    ("hash_map::migrate_before_commit", 2, 200),
    ("hash_map::migrate_before_publish", 2, 200),
    ("hash_map::migrate_before_chunk_done", 1, 8),
    ("hash_map::migrate_before_retire", 1, 2),
    ("queue::push_after_claim", 1, 5_000),
    ("queue::push_before_publish", 2, 5_000),
    ("queue::pop_after_claim", 1, 5_000),
    ("unbounded_queue::before_make", 1, 8),
    ("unbounded_queue::before_link", 1, 8),
    ("made::give_back_after_claim", 1, 1),
    ("unbounded_queue::before_unlink", 1, 8),
    ("unbounded_queue::put_back_after_claim", 1, 4),
    ("unbounded_queue::put_back_before_open", 1, 4),
    ("list::push_before_publish", 1, 100),
    ("list::grow_before_publish", 1, 4),
    ("list::set_before_publish", 2, 2_000),
    ("stress::inside_lock", 1, 5_000),
];

/// Arms (in `percent` of lives) one failpoint of `allowed` (empty: any) to SIGKILL this
/// worker at a random pass.
fn arm_failpoint(rng: &mut u64, percent: u64, allowed: &[String]) {
    if !cfg!(feature = "failpoints") || xorshift(rng) % 100 >= percent {
        return;
    }
    let choices: Vec<_> = FAILPOINTS
        .iter()
        .filter(|f| allowed.is_empty() || allowed.iter().any(|a| a == f.0))
        .collect();
    let total: u64 = choices.iter().map(|f| f.1).sum();
    if total == 0 {
        return;
    }
    let mut pick = xorshift(rng) % total;
    let Some(&&(name, _, most)) = choices.iter().find(|f| {
        let hit = pick < f.1;
        pick = pick.saturating_sub(f.1);
        hit
    }) else {
        return;
    };
    let fire_at = 1 + xorshift(rng) % most;
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
/// Keys each worker owns in the map "map".
const MAP_KEYS_PER_WORKER: u64 = 32;
/// The maps' initial slots: they grow while workers die and freeze.
const MAP_CAPACITY: u64 = 16;
/// Keys every worker counts into (fetch_add 1).
const COUNT_KEYS: u64 = 16;
/// Region size: the per-life records take 9.4 MiB, the results list 16 MiB.
const REGION_SIZE: u64 = 96 << 20;

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
    shmarena::UnboundedQueue::<u64>::get_or_create(region, "uqueue", 4)?;
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
    region.hash_map::<u64, [u64; 3]>("blobs", 16)?;
    region.array_zeroed::<u64>("blobs.torn", workers)?;
    let list = region.list::<[u64; 2]>("shared.list", LIST_SLOTS)?;
    for _ in 0..LIST_SLOTS {
        list.push([0, !0])?;
    }
    for op in OPS {
        region.array_zeroed::<u64>(&acks_name(op), workers)?;
    }
    Records::create(region, workers)
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
    arm_failpoint(&mut rng, args.failpoint_percent, &args.failpoints);
    let region = Region::open(&args.region)?;
    let i = args.index;
    let mut tracker = Tracker::new(&region, i, args.life, args.workers)?;
    let shared = Shared::open(&region, MAP_CAPACITY)?;
    let value = region.open_value::<u64>("value")?;
    let sharded = region.sharded_counter("sharded")?;
    let pair = region.mutex::<[u64; 2]>("pair", [0, 0])?;
    let queues = Queues {
        bounded: region.queue::<u64>("queue", 256)?,
        unbounded: region.open_unbounded_queue::<u64>("uqueue")?,
    };
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
    let heartbeat = region.open_array::<u64>("heartbeat")?;
    let expect = region.open_array::<u64>("map.expect")?;
    let blobs = Blobs::open(&region)?;
    let acks: Vec<_> = OPS
        .iter()
        .map(|op| region.open_array::<u64>(&acks_name(op)))
        .collect::<Result<_, _>>()?;
    let ack = |op: usize| acks[op].at(i).map(|cell| cell.fetch_add(1));
    let started = Instant::now();
    let mut seq = acks[6].at(i)?.load();
    while !stop.is_set() {
        heartbeat.set(i, now_ns(started))?;
        let r = xorshift(&mut rng);
        match r % 16 {
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
                if queue_push_step(&mut tracker, &queues, (r >> 8) & 1) {
                    ack(3)?;
                }
            }
            4 => {
                if queue_pop_step(&mut tracker, &queues, (r >> 8) & 1) {
                    ack(4)?;
                }
            }
            // Appends are rare enough that the list lasts a 30-minute run on 2 cores.
            5 if (r >> 8).is_multiple_of(128) => {
                if results_push_step(&mut tracker, &shared.results) {
                    ack(5)?;
                }
            }
            6 => semaphore_step(&region, &sem, &inside, &owners, &peak, i)?,
            7 => {
                map_step(&shared.map, &shared.wide, &expect, i, &mut seq, r >> 8)?;
                ack(6)?;
            }
            8 => {
                shared.map.fetch_add((r >> 8) % COUNT_KEYS, 1)?;
                ack(7)?;
            }
            9..=12 => {
                shared_map_step(&mut tracker, &shared.map, r >> 8)?;
                ack(8)?;
            }
            13 | 14 => {
                shared_wide_step(&mut tracker, &shared.wide, r >> 8)?;
                ack(9)?;
            }
            _ if (r >> 8) & 1 == 0 => blobs.step(&region, i, tracker.next_value(), r >> 9)?,
            _ => {
                shared_list_step(&mut tracker, &shared.list, r >> 8)?;
                ack(10)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Shared keys of the map "blobs".
const BLOB_KEYS: u64 = 16;

/// The blob a "blobs" value names.
fn blob_of(value: [u64; 3]) -> shmarena::Blob {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&value[0].to_le_bytes());
    bytes[8..].copy_from_slice(&value[1].to_le_bytes());
    shmarena::Blob::from_bytes(bytes)
}

/// The map "blobs" and the count of torn reads, per worker.
struct Blobs {
    map: shmarena::HashMap<u64, [u64; 3]>,
    torn: shmarena::Array<u64>,
}

impl Blobs {
    fn open(region: &Region) -> Result<Self, shmarena::Error> {
        Ok(Self {
            map: region.open_hash_map("blobs")?,
            torn: region.open_array("blobs.torn")?,
        })
    }

    /// Writes (a new blob whose every word is `id`), reads (under a pin, checking every
    /// word) or removes a shared key; a replaced or removed blob is retired. A read that
    /// finds a word other than its value's id counts one in worker `worker`'s cell.
    fn step(&self, region: &Region, worker: usize, id: u64, r: u64) -> Result<(), shmarena::Error> {
        let (blobs, torn) = (&self.map, &self.torn);
        let key = r % BLOB_KEYS;
        match (r >> 8) % 3 {
            0 => {
                let words = 8 + (r >> 12) % 56; // 64 to 512 bytes
                let bytes: Vec<u8> = (0..words).flat_map(|_| id.to_le_bytes()).collect();
                let staged = match region.stage_blob(&bytes) {
                    Ok(staged) => staged,
                    // Kills leak retired blocks: a long run may fill the region.
                    Err(shmarena::Error::OutOfMemory { .. }) => return Ok(()),
                    Err(error) => return Err(error),
                };
                let blob = staged.blob();
                let old = blobs.insert(key, [blob.offset(), blob.len(), id])?;
                staged.published();
                if let Some(old) = old {
                    region.retire_blob(blob_of(old))?;
                }
            }
            1 => {
                let pin = region.pin()?;
                if let Some(value) = blobs.get(&key)? {
                    let bytes = region.read_blob(blob_of(value), &pin)?;
                    let whole = bytes.len() as u64 == value[1]
                        && bytes.chunks(8).all(|word| word == value[2].to_le_bytes());
                    if !whole {
                        torn.at(worker)?.fetch_add(1);
                    }
                }
            }
            _ => {
                if let Some(old) = blobs.remove(&key)? {
                    region.retire_blob(blob_of(old))?;
                }
            }
        }
        Ok(())
    }
}

/// The two queues: 0 the bounded "queue", 1 the unbounded "uqueue".
struct Queues {
    bounded: shmarena::Queue<u64>,
    unbounded: shmarena::UnboundedQueue<u64>,
}

impl Queues {
    fn push(&self, queue: u64, element: u64) -> bool {
        if queue == 0 {
            self.bounded
                .push_timeout(element, Duration::from_millis(5))
                .is_ok()
        } else {
            self.unbounded.push(element).is_ok()
        }
    }

    fn pop(&self, queue: u64) -> Option<u64> {
        if queue == 0 {
            self.bounded.pop_timeout(Duration::from_millis(5))
        } else {
            self.unbounded
                .pop_timeout(Duration::from_millis(5))
                .ok()
                .flatten()
        }
    }
}

/// Pushes a unique value onto queue `queue` (5 ms at most); whether it went in.
fn queue_push_step(tracker: &mut Tracker, queues: &Queues, queue: u64) -> bool {
    let element = tracker.next_value();
    let op = tracker.begin(Target::Queue, Verb::Push, queue, element, 0);
    let pushed = queues.push(queue, element);
    tracker.end(&op);
    pushed
}

/// Pops an element from queue `queue` (5 ms at most) and checks it; whether there was one.
fn queue_pop_step(tracker: &mut Tracker, queues: &Queues, queue: u64) -> bool {
    let frontier = tracker.frontier(queue);
    let op = tracker.begin(Target::Queue, Verb::Pop, queue, 0, 0);
    let popped = queues.pop(queue);
    if let Some(element) = popped {
        tracker.popped(queue, frontier, element);
    }
    tracker.end(&op);
    popped.is_some()
}

/// Appends a unique value to the list "results"; whether it went in.
fn results_push_step(tracker: &mut Tracker, results: &shmarena::List<u64>) -> bool {
    let element = tracker.next_value();
    let lo = results.len() as u64;
    let op = tracker.begin(Target::Results, Verb::Push, 0, element, lo);
    let pushed = results.push(element).is_ok();
    tracker.end(&op);
    pushed
}

/// The verb of a shared-key map step: reads 3 in 10, the rest split between removes,
/// inserts-if-absent, inserts and compare-exchanges.
fn map_verb(r: u64) -> Verb {
    match r % 10 {
        0..=2 => Verb::Get,
        3 | 4 => Verb::Remove,
        5 | 6 => Verb::TryInsert,
        7 | 8 => Verb::Insert,
        _ => Verb::Cas,
    }
}

/// The operation `r` picks on a shared map key: the key's index, the key, the verb, and
/// the life's next unique value for a verb that writes one (0 otherwise).
fn shared_map_op(tracker: &mut Tracker, r: u64) -> (u64, u64, Verb, u64) {
    let key = r % SHARED_KEYS;
    let verb = map_verb(r / SHARED_KEYS);
    let value = if verb == Verb::Get || verb == Verb::Remove {
        0
    } else {
        tracker.next_value()
    };
    (key, SHARED_KEY_BASE + key, verb, value)
}

/// One operation on a shared key of "map", recorded in the life's record.
fn shared_map_step(tracker: &mut Tracker, map: &shmarena::HashMap<u64, u64>, r: u64) -> Fallible {
    let (key, k, verb, value) = shared_map_op(tracker, r);
    let expected = tracker.last_seen(Target::Map, key);
    let op = tracker.begin(Target::Map, verb, key, value, 0);
    let (seen, taken) = match verb {
        Verb::Get => (map.get(&k)?, None),
        Verb::Remove => {
            let old = map.remove(&k)?;
            (old, old)
        }
        Verb::TryInsert => (map.try_insert(k, value)?, None),
        Verb::Insert => {
            let old = map.insert(k, value)?;
            (old, old)
        }
        _ => match map.compare_exchange(&k, expected, value)? {
            Ok(previous) => (Some(previous), Some(previous)),
            Err(actual) => (actual, None),
        },
    };
    if let Some(taken) = taken {
        tracker.took_out(&op, taken);
    }
    tracker.observed(&op, seen);
    tracker.end(&op);
    Ok(())
}

/// A wide value: `[v, !v, v]`, so a torn read shows.
fn wide_of(v: u64) -> [u64; 3] {
    [v, !v, v]
}

/// The first word of a wide value read back, or an error if it is torn.
fn unwide(value: Option<[u64; 3]>) -> Result<Option<u64>, Box<dyn std::error::Error>> {
    match value {
        Some(v) if v[1] != !v[0] || v[2] != v[0] => Err(format!("torn wide value {v:x?}").into()),
        v => Ok(v.map(|v| v[0])),
    }
}

/// One operation on a shared key of "wide", recorded in the life's record.
fn shared_wide_step(
    tracker: &mut Tracker,
    wide: &shmarena::HashMap<u64, [u64; 3]>,
    r: u64,
) -> Fallible {
    let (key, k, verb, value) = shared_map_op(tracker, r);
    let expected = wide_of(tracker.last_seen(Target::Wide, key));
    let op = tracker.begin(Target::Wide, verb, key, value, 0);
    let (seen, taken) = match verb {
        Verb::Get => (unwide(wide.get(&k)?)?, None),
        Verb::Remove => {
            let old = unwide(wide.remove(&k)?)?;
            (old, old)
        }
        Verb::TryInsert => (unwide(wide.try_insert(k, wide_of(value))?)?, None),
        Verb::Insert => {
            let old = unwide(wide.insert(k, wide_of(value))?)?;
            (old, old)
        }
        _ => match wide.compare_exchange(&k, expected, wide_of(value))? {
            Ok(previous) => {
                let previous = unwide(Some(previous))?;
                (previous, previous)
            }
            Err(actual) => (unwide(actual)?, None),
        },
    };
    if let Some(taken) = taken {
        tracker.took_out(&op, taken);
    }
    tracker.observed(&op, seen);
    tracker.end(&op);
    Ok(())
}

/// One read or set of a shared index of "shared.list", recorded in the life's record.
fn shared_list_step(tracker: &mut Tracker, list: &shmarena::List<[u64; 2]>, r: u64) -> Fallible {
    let index = r % LIST_SLOTS;
    if (r / LIST_SLOTS).is_multiple_of(2) {
        let op = tracker.begin(Target::List, Verb::Get, index, 0, 0);
        let seen = match list.get(index as usize)? {
            Some(v) if v[1] != !v[0] => return Err(format!("torn list element {v:x?}").into()),
            v => v.map(|v| v[0]),
        };
        tracker.observed(&op, seen);
        tracker.end(&op);
    } else {
        let value = tracker.next_value();
        let op = tracker.begin(Target::List, Verb::Set, index, value, 0);
        list.set(index as usize, [value, !value])?;
        tracker.end(&op);
    }
    Ok(())
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

fn spawn_worker(
    region: &std::path::Path,
    index: usize,
    life: u64,
    args: &Args,
) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .arg("stress-worker")
        .arg("--region")
        .arg(region)
        .args(["--index", &index.to_string()])
        .args(["--life", &life.to_string()])
        .args(["--workers", &args.workers.to_string()])
        .args(["--failpoint-percent", &args.failpoint_percent.to_string()])
        .args(
            (!args.failpoints.is_empty())
                .then(|| format!("--failpoints={}", args.failpoints.join(","))),
        )
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
    lives: u64,
    elapsed_s: f64,
    /// Violations of the totals and other checks, described.
    violations: Vec<String>,
    /// Violations per check of linearizability under kills, in the order of `CHECKS`.
    late: Vec<u64>,
    /// Descriptions of the first of those.
    late_details: Vec<String>,
    /// What those checks had to work on.
    exercised: String,
}

/// Runs the stress test.
pub fn run(args: &Args) -> Outcome {
    if args.workers == 0 || args.workers > MAX_WORKERS {
        return Err(format!("--workers must be 1 to {MAX_WORKERS}").into());
    }
    if let Some(unknown) = args
        .failpoints
        .iter()
        .find(|name| !FAILPOINTS.iter().any(|f| f.0 == name.as_str()))
    {
        return Err(format!("--failpoints: no failpoint {unknown}").into());
    }
    let path = PathBuf::from(format!("/dev/shm/shmarena-stress-{}", std::process::id()));
    let region = Region::create(&path, REGION_SIZE)?;
    let result = drive(&region, &path, args);
    let _ = Region::unlink(&path);
    let summary = result?;
    let late_total: u64 = summary.late.iter().sum();
    let total = late_total + summary.violations.len() as u64;
    let per_check: Vec<String> = CHECKS
        .iter()
        .zip(&summary.late)
        .map(|(check, n)| format!("{} {n}", check.name()))
        .chain(std::iter::once(format!(
            "totals and others {}",
            summary.violations.len()
        )))
        .collect();
    println!(
        "stress: {} workers, {:.0} s, operations {}, kills {} ({} at failpoints), freezes {}, {:.1} kills+freezes/s, lives {}, longest stall seen {} ms, violations {total} ({})",
        args.workers,
        summary.elapsed_s,
        summary.operations,
        summary.kills,
        summary.failpoint_kills,
        summary.freezes,
        (summary.kills + summary.freezes) as f64 / summary.elapsed_s.max(1e-3),
        summary.lives,
        summary.longest_stall_ms,
        per_check.join(", ")
    );
    println!("  deaths checked: {}", summary.exercised);
    for detail in summary.late_details.iter().take(10) {
        println!("  VIOLATION: {detail}");
    }
    if late_total > summary.late_details.len().min(10) as u64 {
        println!(
            "  ... {} more violations of linearizability under kills",
            late_total - summary.late_details.len().min(10) as u64
        );
    }
    for violation in &summary.violations {
        println!("  VIOLATION: {violation}");
    }
    Ok(if total == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The supervisor's view of the workers.
struct Workers<'a> {
    path: &'a std::path::Path,
    args: &'a Args,
    children: Vec<Child>,
    supervisor: Supervisor,
    shared: Shared,
}

impl Workers<'_> {
    /// Worker `index` died (waited for): records its life's end and starts the next one.
    fn replace(&mut self, index: usize, summary: &mut Summary) -> Fallible {
        self.supervisor.reaped(index, &self.shared)?;
        let life = self.supervisor.next_life(index);
        self.children[index] = spawn_worker(self.path, index, life, self.args)?;
        summary.kills += 1;
        Ok(())
    }

    /// Workers that died by themselves (at a failpoint): count them and start them again.
    fn reap(&mut self, summary: &mut Summary) -> Fallible {
        for index in 0..self.children.len() {
            if let Some(status) = self.children[index].try_wait()? {
                if status.signal() != Some(libc::SIGKILL) {
                    summary
                        .violations
                        .push(format!("worker {index} exited by itself: {status}"));
                }
                summary.failpoint_kills += 1;
                self.replace(index, summary)?;
            }
        }
        Ok(())
    }

    /// Waits for every worker to stop (after the stop event), killing any that takes over
    /// 10 s; a worker killed meanwhile counts as a kill.
    fn stop(&mut self, summary: &mut Summary) -> Fallible {
        for index in 0..self.children.len() {
            let waited = Instant::now();
            let mut killed = false;
            let status = loop {
                if let Some(status) = self.children[index].try_wait()? {
                    break status;
                }
                if !killed && waited.elapsed() > Duration::from_secs(10) {
                    summary.violations.push(format!(
                        "worker {index} (pid {}) did not stop within 10 s",
                        self.children[index].id()
                    ));
                    self.children[index].kill()?;
                    killed = true;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            if status.signal() == Some(libc::SIGKILL) {
                // Killed while stopping (at a failpoint, or by us above): its operation in
                // flight counts as a kill's.
                summary.kills += 1;
                summary.failpoint_kills += u64::from(!killed);
                self.supervisor.reaped(index, &self.shared)?;
            }
        }
        Ok(())
    }
}

fn drive(
    region: &Region,
    path: &std::path::Path,
    args: &Args,
) -> Result<Summary, Box<dyn std::error::Error>> {
    create_objects(region, args.workers)?;
    let heartbeat = region.open_array::<u64>("heartbeat")?;
    let mut supervisor = Supervisor::new(region, args.workers)?;
    let mut children = Vec::with_capacity(args.workers);
    for index in 0..args.workers {
        let life = supervisor.next_life(index);
        children.push(spawn_worker(path, index, life, args)?);
    }
    let mut workers = Workers {
        path,
        args,
        children,
        supervisor,
        shared: Shared::open(region, MAP_CAPACITY)?,
    };
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
        // Until the next signal, reap workers that die at failpoints within 2 ms, so the
        // next life starts soon and the reap-time observation is close to the death.
        let next = Instant::now()
            + Duration::from_millis(1 + xorshift(&mut rng) % (2 * args.signal_every_ms.max(1)));
        loop {
            workers.reap(&mut summary)?;
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(2)));
        }
        workers.supervisor.observe(&workers.shared)?;
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
        let victim = (xorshift(&mut rng) % args.workers as u64) as usize;
        if xorshift(&mut rng) % 100 < args.kill_percent {
            workers.children[victim].kill()?;
            workers.children[victim].wait()?;
            workers.replace(victim, &mut summary)?;
        } else {
            signal(&workers.children[victim], libc::SIGSTOP);
            std::thread::sleep(Duration::from_millis(1 + xorshift(&mut rng) % 50));
            signal(&workers.children[victim], libc::SIGCONT);
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
    summary.elapsed_s = started.elapsed().as_secs_f64();
    region.event("stop")?.set();
    workers.stop(&mut summary)?;
    workers.supervisor.finish(&workers.shared)?;
    summary.lives = workers.supervisor.lives();
    check_totals(region, &workers.supervisor, &mut summary)?;
    let records = workers.supervisor.records();
    summary.late = records.counts();
    summary.late_details = records.details();
    summary.exercised = describe_exercised(&workers.supervisor);
    Ok(summary)
}

/// What the checks of linearizability under kills had to work on, per target.
fn describe_exercised(supervisor: &Supervisor) -> String {
    supervisor
        .exercised()
        .into_iter()
        .map(|(target, e)| match target {
            Target::Map | Target::Wide => format!(
                "{target:?} {} writes ({} seen without their value after the death), {} removes ({} watched)",
                e.dead_writes, e.seen_undone, e.dead_removes, e.watched
            ),
            Target::List => format!(
                "List {} sets ({} seen without their value after the death)",
                e.dead_writes, e.seen_undone
            ),
            Target::Results => format!(
                "Results {} pushes ({} not found after the death)",
                e.dead_writes, e.seen_undone
            ),
            Target::Queue => format!("Queue {} pushes", e.dead_writes),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn acked(region: &Region, op: &str) -> Result<u64, shmarena::Error> {
    Ok(region
        .open_array::<u64>(&acks_name(op))?
        .snapshot()
        .iter()
        .sum())
}

fn check_totals(region: &Region, supervisor: &Supervisor, summary: &mut Summary) -> Fallible {
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
    while let Some(element) = queue.try_pop() {
        supervisor.popped(0, element);
        left += 1;
    }
    let unbounded = region.open_unbounded_queue::<u64>("uqueue")?;
    while let Some(element) = unbounded.try_pop()? {
        supervisor.popped(1, element);
        left += 1;
    }
    let (pushed, popped) = (acked(region, "push")?, acked(region, "pop")?);
    let out = popped + left;
    let lost = queue.lost() + unbounded.lost();
    if out + lost + kills < pushed || out > pushed + kills {
        summary.violations.push(format!(
            "queues: {pushed} pushes acknowledged, {popped} pops acknowledged, {left} left, {lost} lost, {kills} kills"
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
    let torn: u64 = region
        .open_array::<u64>("blobs.torn")?
        .snapshot()
        .iter()
        .sum();
    if torn != 0 {
        summary.violations.push(format!(
            "blobs: {torn} reads under a pin found a block freed or reused under them"
        ));
    }
    Ok(())
}
