//! `shmarena bench`: multi-process throughput.
//!
//! For each workload and each process count P in 1, 2, 4, ... up to `--max-procs` (and
//! `--max-procs` itself when it is no power of two):
//!
//! 1. The parent creates a fresh region in `/dev/shm` holding the control objects (start,
//!    stop and ready flags, per-worker result slots) and the workload's objects.
//! 2. It starts P copies of its own executable as hidden `bench-worker` processes. Each
//!    opens the region and its objects, reports ready, and spins on the start flag.
//! 3. When all P are ready the parent sets the start flag, sleeps `--seconds`, and sets
//!    the stop flag. Workers run the operation in a tight loop, looking at the stop flag
//!    once every [`CHECK_EVERY`] operations, then store their operation count and elapsed
//!    time in their slot and exit.
//! 4. The parent waits for every worker, checks the shared state against the reported
//!    counts (exactly, where the workload allows it), and unlinks the region.
//!
//! Workloads:
//!
//! - `private-atomic`: each process increments its own cache-padded `AtomicU64` in private
//!   heap memory (SeqCst `fetch_add`): what the machine does without sharing anything.
//! - `value-fetch-add`: every process `fetch_add(1)`s ONE shared `Value<u64>`, the
//!   contended case. The final value must equal the sum of the reported counts.
//! - `sharded-add`: `ShardedCounter::increment`. Its sum must equal the reported total.
//! - `array-get-set`: an `Array<u64>` of 4096 elements, 90% `get` and 10% `set` at indices
//!   drawn from a per-process xorshift generator.
//! - `mutex-lock-unlock`: every process locks ONE shared `Mutex<u64>`, increments the
//!   value inside, and unlocks (the contended lock). The final value must equal the sum
//!   of the reported counts.
//! - `mutex-yield`: as `mutex-lock-unlock`, but each process yields its CPU (`sched_yield`)
//!   while it holds the lock, so that nearly every lock finds it taken: the contended path
//!   (spinning, sleeping, waking) rather than the uncontended CAS.
//! - `std-mutex-lock-unlock`, `std-mutex-yield`: the same two on `std::sync::Mutex<u64>`,
//!   driven by threads of the parent (one thread per "process"), as a peer; its final
//!   value is checked against the counts as well.
//! - `mutex-handoff`: processes in pairs (P/2 pairs; P is rounded down to an even number,
//!   and at least one pair runs, so `--max-procs 1` still starts two) strictly alternate
//!   ownership of their pair's `Mutex` through a turn counter and a `Condvar`: a process
//!   waits until the turn is its own, increments it and notifies its partner. One
//!   operation is one hand-off (two make a round trip); each pair's turn counter must
//!   equal its two workers' counts. Below the table: round trips/s and the mean hand-off
//!   latency (the window over each pair's hand-offs), the wake-up cost of the locks.
//! - `queue-push-pop`: every process alternately `try_push`es and `try_pop`s ONE shared
//!   `Queue<u64>` of 1024 slots; one operation is one `try_push` plus one `try_pop` (either
//!   may find the queue full or empty). Each worker reports its successful pushes and pops;
//!   their difference must equal the elements left in the queue, drained and counted.
//!
//! - `map-read-heavy`, `map-exchange`, `map-rapid-grow`: `HashMap<u64, u64>` on the
//!   conc-map-bench mixes, and
//!   `papaya-*`, `dashmap-*`, `mutex-map-*`: the same mixes on in-process maps driven by
//!   threads of the parent (one thread per "process"); `map-probe-limit`: a read-only
//!   linear probe over a plain table, the limit of a map get. See [`crate::bench_map`].
//!
//! The table gives total and per-process Mops/s, the ratio of the total to
//! `private-atomic` at the same process count (when that workload was run), for shmarena's
//! map workloads the ratio to the best in-process peer on the same mix and count ("vs
//! peers", when peers were run), and `cpu%`:
//! the workers' mean share of a CPU while measuring. Well under 100% means the P processes
//! were time-sliced rather than running at once (more processes than free cores), so the
//! shared-cache-line workloads did not really contend.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use shmarena::{Array, Region, RegionExt, RegionOptions, ShardedCounter, Value};

use crate::bench_map::{self, Mix};

type Outcome = Result<ExitCode, Box<dyn std::error::Error>>;
type BoxError = Box<dyn std::error::Error>;

/// Operations between two looks at the stop flag (and the clock).
pub const CHECK_EVERY: u64 = 4096;

/// Elements of the `array-get-set` array (a power of two: indices are masked).
const DATA_LEN: usize = 4096;

/// Slots of the `queue-push-pop` queue.
const QUEUE_CAPACITY: u64 = 1024;

/// Bytes of each benchmark region (sparse: only touched pages cost memory).
const REGION_SIZE: u64 = 8 << 20;

/// The most processes one run may start (the region's participant table holds 4096).
const MAX_PROCS: usize = 4095;

/// How long the parent waits for the workers to attach, and they for the start flag.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Names of the objects in a benchmark region.
mod names {
    pub const START: &str = "bench.start";
    pub const STOP: &str = "bench.stop";
    pub const READY: &str = "bench.ready";
    pub const OPS: &str = "bench.ops";
    pub const NANOS: &str = "bench.nanos";
    pub const CPU_NANOS: &str = "bench.cpu_nanos";
    pub const COUNTER: &str = "bench.counter";
    pub const SHARDED: &str = "bench.sharded";
    pub const DATA: &str = "bench.data";
    pub const MUTEX: &str = "bench.mutex";
    pub const QUEUE: &str = "bench.queue";
    pub const QUEUE_PUSHES: &str = "bench.queue.pushes";
    pub const QUEUE_POPS: &str = "bench.queue.pops";

    /// The turn mutex of hand-off pair `pair`.
    pub fn turn(pair: usize) -> String {
        format!("bench.turn.{pair}")
    }

    /// The condition variable of hand-off pair `pair`.
    pub fn turn_changed(pair: usize) -> String {
        format!("bench.turn-changed.{pair}")
    }
}

/// A benchmark workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Every process `fetch_add(1)`s one shared `Value<u64>` (contended).
    ValueFetchAdd,
    /// Every process increments one `ShardedCounter` (its own cell).
    ShardedAdd,
    /// Every process increments its own private heap atomic: the machine's limit.
    PrivateAtomic,
    /// 90% get / 10% set at pseudo-random indices of a 4096-element `Array<u64>`.
    ArrayGetSet,
    /// Every process locks one shared `Mutex<u64>`, increments it, unlocks (contended).
    MutexLockUnlock,
    /// `std::sync::Mutex<u64>` (threads in one process), as `mutex-lock-unlock`.
    StdMutexLockUnlock,
    /// As `mutex-lock-unlock`, yielding the CPU while holding the lock (every lock waits).
    MutexYield,
    /// `std::sync::Mutex<u64>` (threads in one process), as `mutex-yield`.
    StdMutexYield,
    /// Pairs of processes strictly alternate ownership of a `Mutex` (turn + `Condvar`).
    MutexHandoff,
    /// Every process alternately `try_push`es and `try_pop`s one shared `Queue<u64>`.
    QueuePushPop,
    /// `HashMap<u64, u64>`, 98% get / 1% insert / 1% remove, load 0.75.
    MapReadHeavy,
    /// `HashMap<u64, u64>`, 10% get / 40% insert / 40% remove / 10% update.
    MapExchange,
    /// Read-only linear probes for present keys over a plain table: the limit of a get.
    MapProbeLimit,
    /// papaya (threads in one process), read-heavy.
    PapayaReadHeavy,
    /// papaya (threads in one process), exchange.
    PapayaExchange,
    /// dashmap (threads in one process), read-heavy.
    DashmapReadHeavy,
    /// dashmap (threads in one process), exchange.
    DashmapExchange,
    /// `Mutex<std::collections::HashMap>` (threads in one process), read-heavy.
    MutexMapReadHeavy,
    /// `Mutex<std::collections::HashMap>` (threads in one process), exchange.
    MutexMapExchange,
    /// `HashMap<u64, u64>`, 5% get / 80% insert / 5% remove / 10% update, from empty.
    MapRapidGrow,
    /// papaya (threads in one process), rapid-grow.
    PapayaRapidGrow,
    /// dashmap (threads in one process), rapid-grow.
    DashmapRapidGrow,
    /// `Mutex<std::collections::HashMap>` (threads in one process), rapid-grow.
    MutexMapRapidGrow,
}

impl Workload {
    /// Every workload, in the default order (the baseline first).
    pub const ALL: [Workload; 23] = [
        Workload::PrivateAtomic,
        Workload::ValueFetchAdd,
        Workload::ShardedAdd,
        Workload::ArrayGetSet,
        Workload::MutexLockUnlock,
        Workload::StdMutexLockUnlock,
        Workload::MutexYield,
        Workload::StdMutexYield,
        Workload::MutexHandoff,
        Workload::QueuePushPop,
        Workload::MapProbeLimit,
        Workload::MapReadHeavy,
        Workload::PapayaReadHeavy,
        Workload::DashmapReadHeavy,
        Workload::MutexMapReadHeavy,
        Workload::MapExchange,
        Workload::PapayaExchange,
        Workload::DashmapExchange,
        Workload::MutexMapExchange,
        Workload::MapRapidGrow,
        Workload::PapayaRapidGrow,
        Workload::DashmapRapidGrow,
        Workload::MutexMapRapidGrow,
    ];

    /// The name used on the command line and in the outputs.
    pub fn name(self) -> &'static str {
        match self {
            Workload::ValueFetchAdd => "value-fetch-add",
            Workload::ShardedAdd => "sharded-add",
            Workload::PrivateAtomic => "private-atomic",
            Workload::ArrayGetSet => "array-get-set",
            Workload::MutexLockUnlock => "mutex-lock-unlock",
            Workload::StdMutexLockUnlock => "std-mutex-lock-unlock",
            Workload::MutexYield => "mutex-yield",
            Workload::StdMutexYield => "std-mutex-yield",
            Workload::MutexHandoff => "mutex-handoff",
            Workload::QueuePushPop => "queue-push-pop",
            Workload::MapReadHeavy => "map-read-heavy",
            Workload::MapExchange => "map-exchange",
            Workload::MapProbeLimit => "map-probe-limit",
            Workload::PapayaReadHeavy => "papaya-read-heavy",
            Workload::PapayaExchange => "papaya-exchange",
            Workload::DashmapReadHeavy => "dashmap-read-heavy",
            Workload::DashmapExchange => "dashmap-exchange",
            Workload::MutexMapReadHeavy => "mutex-map-read-heavy",
            Workload::MutexMapExchange => "mutex-map-exchange",
            Workload::MapRapidGrow => "map-rapid-grow",
            Workload::PapayaRapidGrow => "papaya-rapid-grow",
            Workload::DashmapRapidGrow => "dashmap-rapid-grow",
            Workload::MutexMapRapidGrow => "mutex-map-rapid-grow",
        }
    }

    /// The map mix this workload runs, if it is a map workload.
    pub fn mix(self) -> Option<Mix> {
        match self {
            Workload::MapReadHeavy
            | Workload::PapayaReadHeavy
            | Workload::DashmapReadHeavy
            | Workload::MutexMapReadHeavy => Some(Mix::ReadHeavy),
            Workload::MapExchange
            | Workload::PapayaExchange
            | Workload::DashmapExchange
            | Workload::MutexMapExchange => Some(Mix::Exchange),
            Workload::MapRapidGrow
            | Workload::PapayaRapidGrow
            | Workload::DashmapRapidGrow
            | Workload::MutexMapRapidGrow => Some(Mix::RapidGrow),
            _ => None,
        }
    }

    /// Whether this is shmarena's own map workload (the one peers are compared with).
    pub fn is_shmarena_map(self) -> bool {
        matches!(
            self,
            Workload::MapReadHeavy | Workload::MapExchange | Workload::MapRapidGrow
        )
    }

    /// Whether this workload runs threads in the parent (an in-process peer) instead of
    /// worker processes.
    pub fn in_process(self) -> bool {
        (self.mix().is_some() && !self.is_shmarena_map())
            || matches!(self, Workload::StdMutexLockUnlock | Workload::StdMutexYield)
    }

    /// Bytes of the region a run of this workload needs (sparse).
    fn region_size(self) -> u64 {
        if self.mix().is_some() || self == Workload::MapProbeLimit {
            256 << 20
        } else {
            REGION_SIZE
        }
    }

    /// The process counts this workload runs for `--max-procs max`: [`proc_counts`], but
    /// even numbers of at least two (pairs) for `mutex-handoff`.
    pub fn proc_counts(self, max: usize) -> Vec<usize> {
        let mut counts = proc_counts(max);
        if self == Workload::MutexHandoff {
            counts = counts.into_iter().map(|p| (p - p % 2).max(2)).collect();
            counts.dedup();
        }
        counts
    }
}

/// Arguments of `shmarena bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Largest process count: runs 1, 2, 4, ... up to N, and N itself [default: the
    /// number of cores]
    #[arg(long, value_name = "N")]
    max_procs: Option<usize>,
    /// Seconds each run measures.
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    seconds: f64,
    /// Comma-separated workloads [default: all]
    #[arg(long, value_name = "LIST", value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Also write every row as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Also write every row as CSV to PATH.
    #[arg(long, value_name = "PATH")]
    csv: Option<PathBuf>,
    /// Also draw total Mops/s against processes, one line per workload, as SVG to PATH.
    #[arg(long, value_name = "PATH")]
    svg: Option<PathBuf>,
    /// Pin worker i to CPU i (mod the number of CPUs), so runs do not depend on where the
    /// scheduler happens to place processes.
    #[arg(long)]
    pin: bool,
    /// Ask for huge pages on every process's mapping of the benchmark regions
    /// (`Region::advise_huge_pages`; it takes effect on a tmpfs mounted with
    /// `huge=advise`, e.g. `mount -o remount,huge=advise /dev/shm`).
    #[arg(long)]
    huge_pages: bool,
}

/// Arguments of a bench worker process (started by `shmarena bench`).
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// Path of the benchmark region.
    #[arg(long)]
    region: PathBuf,
    /// The operation to run.
    #[arg(long, value_enum)]
    workload: Workload,
    /// This worker's result slot.
    #[arg(long)]
    index: usize,
    /// The run's length; the worker gives up (and fails) if the stop flag has not come
    /// long after it.
    #[arg(long)]
    seconds: f64,
    /// The CPU to pin this worker to.
    #[arg(long)]
    cpu: Option<usize>,
    /// Ask for huge pages on this worker's mapping (see `Args`).
    #[arg(long)]
    huge_pages: bool,
}

/// One result: a workload at one process count.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The workload.
    pub workload: Workload,
    /// Worker processes.
    pub procs: usize,
    /// The measured window (start flag set to stop flag set), in seconds.
    pub seconds: f64,
    /// Operations of all workers together.
    pub total_ops: u64,
    /// `total_ops / seconds`, in millions.
    pub total_mops: f64,
    /// `total_mops / procs`.
    pub per_proc_mops: f64,
    /// The slowest worker's own rate (its count over its own elapsed time), in millions.
    pub min_proc_mops: f64,
    /// The fastest worker's own rate, in millions.
    pub max_proc_mops: f64,
    /// `total_mops` over `private-atomic`'s at the same `procs`, if that was run.
    pub ratio_vs_private: Option<f64>,
    /// Map workloads of shmarena: `total_mops` over the best in-process peer's on the same
    /// mix at the same count, if peers were run.
    pub ratio_vs_best_peer: Option<f64>,
    /// Whether the shared state was checked against the reported counts exactly (all
    /// workloads but `array-get-set`, which has no total to check).
    pub checked_exact: bool,
    /// The workers' mean share of a CPU while measuring (their thread CPU time over
    /// their elapsed time). Well below 1.0 means the processes did not all run at once
    /// (more processes than free cores): the numbers then measure time-slicing, not
    /// concurrent sharing.
    pub cpu_share_mean: f64,
    /// The smallest worker's share of a CPU.
    pub cpu_share_min: f64,
    /// `mutex-handoff` only: the mean time of one hand-off in a pair, in nanoseconds (the
    /// window over the hand-offs of one pair, on average).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff_latency_ns: Option<f64>,
}

/// What `--json` writes.
#[derive(Serialize)]
struct Report<'a> {
    cpus: usize,
    max_procs: usize,
    seconds: f64,
    check_every: u64,
    rows: &'a [Row],
}

/// The process counts of a run: 1, 2, 4, ... up to `max`, and `max` itself.
pub fn proc_counts(max: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |&p| p.checked_mul(2))
        .take_while(|&p| p <= max)
        .collect();
    if counts.last() != Some(&max) {
        counts.push(max);
    }
    counts
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Runs `shmarena bench`.
pub fn run(args: &Args) -> Outcome {
    let max_procs = args.max_procs.unwrap_or_else(cpus);
    if !(1..=MAX_PROCS).contains(&max_procs) {
        return Err(format!("--max-procs must be 1 to {MAX_PROCS}, not {max_procs}").into());
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 86_400.0) {
        return Err(format!("--seconds must be positive, not {}", args.seconds).into());
    }
    let mut workloads: Vec<Workload> = Vec::new();
    let chosen = if args.workloads.is_empty() {
        &Workload::ALL[..]
    } else {
        &args.workloads[..]
    };
    for &workload in chosen {
        if !workloads.contains(&workload) {
            workloads.push(workload);
        }
    }
    let exe = std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))?;

    let runs: usize = workloads
        .iter()
        .map(|w| w.proc_counts(max_procs).len())
        .sum();
    let progress = ProgressBar::new(runs as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs  {msg}",
        )
        .expect("a valid template"),
    );
    progress.enable_steady_tick(Duration::from_millis(100));

    let mut rows = Vec::new();
    for &workload in &workloads {
        for procs in workload.proc_counts(max_procs) {
            progress.set_message(format!("{} × {procs} procs", workload.name()));
            let row = run_one(
                &exe,
                workload,
                procs,
                args.seconds,
                args.pin,
                args.huge_pages,
            )
            .inspect_err(|_| {
                progress.abandon();
            })?;
            rows.push(row);
            progress.inc(1);
        }
    }
    progress.finish_and_clear();

    fill_ratios(&mut rows);
    print!("{}", table(&rows, max_procs, args.seconds));
    if let Some(path) = &args.json {
        let report = Report {
            cpus: cpus(),
            max_procs,
            seconds: args.seconds,
            check_every: CHECK_EVERY,
            rows: &rows,
        };
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.csv {
        std::fs::write(path, csv(&rows)).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        let title = format!(
            "shmarena bench: {} CPUs, {} s per run",
            cpus(),
            args.seconds
        );
        std::fs::write(path, crate::chart::svg(&rows, &title))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn fill_ratios(rows: &mut [Row]) {
    let private: Vec<(usize, f64)> = rows
        .iter()
        .filter(|row| row.workload == Workload::PrivateAtomic)
        .map(|row| (row.procs, row.total_mops))
        .collect();
    let peers: Vec<(Option<Mix>, usize, f64)> = rows
        .iter()
        .filter(|row| row.workload.in_process())
        .map(|row| (row.workload.mix(), row.procs, row.total_mops))
        .collect();
    for row in rows {
        row.ratio_vs_private = private
            .iter()
            .find(|(procs, _)| *procs == row.procs)
            .map(|(_, mops)| row.total_mops / mops);
        if row.workload.is_shmarena_map() {
            let best = peers
                .iter()
                .filter(|(mix, procs, _)| *mix == row.workload.mix() && *procs == row.procs)
                .map(|(_, _, mops)| *mops)
                .fold(0.0, f64::max);
            row.ratio_vs_best_peer = (best > 0.0).then(|| row.total_mops / best);
        }
    }
}

fn table(rows: &[Row], max_procs: usize, seconds: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} cpus, up to {max_procs} processes, {seconds} s per run",
        cpus()
    );
    // 16 wide, as always, unless a longer workload name is in the table.
    let width = rows
        .iter()
        .map(|row| row.workload.name().len())
        .fold(16, usize::max);
    let _ = writeln!(
        out,
        "{:<width$} {:>5} {:>14} {:>16} {:>11} {:>10} {:>6}",
        "workload", "procs", "total Mops/s", "per-proc Mops/s", "vs private", "vs peers", "cpu%"
    );
    let show = |ratio: Option<f64>| ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"));
    for row in rows {
        let _ = writeln!(
            out,
            "{:<width$} {:>5} {:>14.2} {:>16.2} {:>11} {:>10} {:>6.0}",
            row.workload.name(),
            row.procs,
            row.total_mops,
            row.per_proc_mops,
            show(row.ratio_vs_private),
            show(row.ratio_vs_best_peer),
            row.cpu_share_mean * 100.0
        );
    }
    for row in rows {
        if let Some(latency) = row.handoff_latency_ns {
            let pairs = row.procs / 2;
            let _ = writeln!(
                out,
                "{} x {} procs: {pairs} pair{}, {:.0} round trips/s, mean hand-off {latency:.0} ns",
                row.workload.name(),
                row.procs,
                if pairs == 1 { "" } else { "s" },
                row.total_ops as f64 / 2.0 / row.seconds,
            );
        }
    }
    out
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "workload,procs,seconds,total_ops,total_mops,per_proc_mops,min_proc_mops,\
         max_proc_mops,ratio_vs_private,ratio_vs_best_peer,checked_exact,cpu_share_mean,\
         cpu_share_min\n",
    );
    for row in rows {
        let text = |ratio: Option<f64>| ratio.map(|r| r.to_string()).unwrap_or_default();
        let ratio = text(row.ratio_vs_private);
        let peer_ratio = text(row.ratio_vs_best_peer);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            row.workload.name(),
            row.procs,
            row.seconds,
            row.total_ops,
            row.total_mops,
            row.per_proc_mops,
            row.min_proc_mops,
            row.max_proc_mops,
            ratio,
            peer_ratio,
            row.checked_exact,
            row.cpu_share_mean,
            row.cpu_share_min
        );
    }
    out
}

/// Unlinks the region's name when dropped, so no run leaves a file in `/dev/shm`.
struct Unlink(PathBuf);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = Region::unlink(&self.0);
    }
}

/// The workers of one run; any still running when this drops (on an error) are killed.
struct Workers(Vec<(usize, Child)>);

impl Workers {
    /// An error if a worker has already exited (it cannot be ready or running).
    fn check_none_exited(&mut self) -> Result<(), BoxError> {
        for (index, child) in &mut self.0 {
            if let Some(status) = child.try_wait()? {
                return Err(format!("bench worker {index} exited early ({status})").into());
            }
        }
        Ok(())
    }

    /// Waits for every worker (killing all after `timeout`); an error unless all succeeded.
    fn wait_all(&mut self, timeout: Duration) -> Result<(), BoxError> {
        let deadline = Instant::now() + timeout;
        while let Some((index, child)) = self.0.last_mut() {
            match child.try_wait()? {
                Some(status) if status.success() => {
                    self.0.pop();
                }
                Some(status) => {
                    return Err(format!("bench worker {index} failed ({status})").into());
                }
                None if Instant::now() >= deadline => {
                    return Err(format!(
                        "bench worker {index} still running {} s after the stop flag",
                        timeout.as_secs()
                    )
                    .into());
                }
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        Ok(())
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The objects every run has.
struct Control {
    start: Value<u64>,
    stop: Value<u64>,
    ready: Value<u64>,
    ops: Array<u64>,
    nanos: Array<u64>,
    cpu_nanos: Array<u64>,
}

impl Control {
    fn create(region: &Region, procs: usize) -> shmarena::Result<Self> {
        Ok(Self {
            start: region.value(names::START, 0)?,
            stop: region.value(names::STOP, 0)?,
            ready: region.value(names::READY, 0)?,
            ops: region.array_zeroed(names::OPS, procs)?,
            nanos: region.array_zeroed(names::NANOS, procs)?,
            cpu_nanos: region.array_zeroed(names::CPU_NANOS, procs)?,
        })
    }

    fn open(region: &Region) -> shmarena::Result<Self> {
        Ok(Self {
            start: region.open_value(names::START)?,
            stop: region.open_value(names::STOP)?,
            ready: region.open_value(names::READY)?,
            ops: region.open_array(names::OPS)?,
            nanos: region.open_array(names::NANOS)?,
            cpu_nanos: region.open_array(names::CPU_NANOS)?,
        })
    }
}

fn unique_region_path(workload: Workload, procs: usize) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    PathBuf::from(format!(
        "/dev/shm/shmarena-bench-{}-{}-p{procs}-{nanos}",
        std::process::id(),
        workload.name()
    ))
}

fn spawn_worker(
    exe: &Path,
    region: &Path,
    workload: Workload,
    index: usize,
    seconds: f64,
    cpu: Option<usize>,
    huge_pages: bool,
) -> Result<Child, BoxError> {
    let mut command = Command::new(exe);
    command
        .arg("bench-worker")
        .arg("--region")
        .arg(region)
        .args(["--workload", workload.name()])
        .args(["--index", &index.to_string()])
        .args(["--seconds", &seconds.to_string()])
        .args(cpu.map(|cpu| format!("--cpu={cpu}")))
        .args(huge_pages.then_some("--huge-pages"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting bench worker {index} ({}): {e}", exe.display()).into())
}

/// Restricts this process to one CPU.
fn pin_to_cpu(cpu: usize) -> Result<(), BoxError> {
    // SAFETY: cpu_set_t is a plain bit set for which all-zero is valid; CPU_SET and
    // sched_setaffinity only read and write that set, which outlives the calls.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set)
    };
    if rc != 0 {
        return Err(format!("pinning to CPU {cpu}: {}", std::io::Error::last_os_error()).into());
    }
    Ok(())
}

/// The objects a workload works on, created by the parent before the workers start.
struct Shared {
    counter: Option<Value<u64>>,
    sharded: Option<ShardedCounter>,
    mutex: Option<shmarena::Mutex<u64>>,
    /// `mutex-handoff`: the turn counter of each pair.
    turns: Vec<shmarena::Mutex<u64>>,
    /// `queue-push-pop`: the queue, and each worker's successful pushes and pops.
    queue: Option<(shmarena::Queue<u64>, Array<u64>, Array<u64>)>,
    /// The map of the map workloads, and its region (checked after the run).
    map: Option<(shmarena::HashMap<u64, u64>, Region)>,
}

impl Shared {
    fn create(region: &Region, workload: Workload, procs: usize) -> Result<Self, BoxError> {
        let mut shared = Shared {
            counter: None,
            sharded: None,
            mutex: None,
            turns: Vec::new(),
            queue: None,
            map: None,
        };
        match workload {
            Workload::ValueFetchAdd => shared.counter = Some(region.value(names::COUNTER, 0)?),
            Workload::ShardedAdd => shared.sharded = Some(region.sharded_counter(names::SHARDED)?),
            Workload::ArrayGetSet => {
                let initial: Vec<u64> = (0..DATA_LEN as u64).collect();
                region.array(names::DATA, &initial)?;
            }
            Workload::MutexLockUnlock | Workload::MutexYield => {
                shared.mutex = Some(region.mutex(names::MUTEX, 0)?);
            }
            Workload::MutexHandoff => {
                if procs & 1 != 0 {
                    return Err(
                        format!("mutex-handoff needs pairs of processes, not {procs}").into(),
                    );
                }
                for pair in 0..procs / 2 {
                    region.condvar(&names::turn_changed(pair))?;
                    shared.turns.push(region.mutex(&names::turn(pair), 0)?);
                }
            }
            Workload::QueuePushPop => {
                shared.queue = Some((
                    region.queue(names::QUEUE, QUEUE_CAPACITY)?,
                    region.array_zeroed(names::QUEUE_PUSHES, procs)?,
                    region.array_zeroed(names::QUEUE_POPS, procs)?,
                ));
            }
            Workload::MapReadHeavy | Workload::MapExchange | Workload::MapRapidGrow => {
                let mix = workload.mix().expect("a map workload");
                let slots = if mix == bench_map::Mix::RapidGrow {
                    bench_map::GROW_FROM
                } else {
                    bench_map::MAP_SLOTS
                };
                let map = region.hash_map::<u64, u64>(bench_map::MAP, slots)?;
                bench_map::prefill(&map, &bench_map::universe(), mix);
                shared.map = Some((map, region.clone()));
            }
            Workload::MapProbeLimit => {
                bench_map::create_probe_table(region, &bench_map::universe())?;
            }
            Workload::PrivateAtomic
            | Workload::StdMutexLockUnlock
            | Workload::StdMutexYield
            | Workload::PapayaReadHeavy
            | Workload::PapayaExchange
            | Workload::DashmapReadHeavy
            | Workload::DashmapExchange
            | Workload::MutexMapReadHeavy
            | Workload::MutexMapExchange
            | Workload::PapayaRapidGrow
            | Workload::DashmapRapidGrow
            | Workload::MutexMapRapidGrow => {}
        }
        Ok(shared)
    }

    /// Checks the shared state against the workers' counts `ops`; whether the check was
    /// exact (see [`Row::checked_exact`]).
    fn check(&self, workload: Workload, ops: &[u64]) -> Result<bool, BoxError> {
        let procs = ops.len();
        let total_ops: u64 = ops.iter().sum();
        match workload {
            Workload::ValueFetchAdd => {
                let found = self.counter.as_ref().map_or(0, |c| c.load());
                if found != total_ops {
                    return Err(format!(
                        "LOST UPDATES: value-fetch-add with {procs} processes: the shared value \
                         is {found}, but the workers reported {total_ops} fetch_adds \
                         (difference {})",
                        i128::from(total_ops) - i128::from(found)
                    )
                    .into());
                }
            }
            Workload::ShardedAdd => {
                let found = self.sharded.as_ref().map_or(0, ShardedCounter::sum);
                if found as u64 != total_ops {
                    return Err(format!(
                        "LOST UPDATES: sharded-add with {procs} processes: the counter sums to \
                         {found}, but the workers reported {total_ops} increments"
                    )
                    .into());
                }
            }
            Workload::MutexLockUnlock | Workload::MutexYield => {
                let found = match self.mutex.as_ref().map(shmarena::Mutex::lock) {
                    Some(Ok(guard)) => *guard,
                    Some(Err(_)) => {
                        return Err("a mutex-lock-unlock worker died holding the lock".into())
                    }
                    None => 0,
                };
                if found != total_ops {
                    return Err(format!(
                        "LOST UPDATES: {} with {procs} processes: the value \
                         under the mutex is {found}, but the workers reported {total_ops} \
                         locked increments (difference {})",
                        workload.name(),
                        i128::from(total_ops) - i128::from(found)
                    )
                    .into());
                }
            }
            Workload::MutexHandoff => {
                for (pair, turn) in self.turns.iter().enumerate() {
                    let found = *turn
                        .lock()
                        .map_err(|_| "a mutex-handoff worker died holding the lock")?;
                    let reported = ops[2 * pair] + ops[2 * pair + 1];
                    if found != reported {
                        return Err(format!(
                            "LOST HAND-OFFS: mutex-handoff pair {pair}: the turn counter is \
                             {found}, but its workers reported {reported} hand-offs"
                        )
                        .into());
                    }
                }
            }
            Workload::QueuePushPop => {
                let Some((queue, pushes, pops)) = &self.queue else {
                    return Err("the queue-push-pop objects are missing".into());
                };
                let pushed: u64 = pushes.snapshot().iter().sum();
                let popped: u64 = pops.snapshot().iter().sum();
                let len = queue.len() as u64;
                let mut drained = 0u64;
                while queue.try_pop().is_some() {
                    drained += 1;
                }
                let (lost, skipped) = (queue.lost(), queue.skipped());
                if pushed.checked_sub(popped) != Some(len) || drained != len || lost + skipped != 0
                {
                    return Err(format!(
                        "LOST ELEMENTS: queue-push-pop with {procs} processes: the workers \
                         reported {pushed} pushes and {popped} pops, but the queue holds {len} \
                         elements ({drained} drained, {lost} lost, {skipped} skipped)"
                    )
                    .into());
                }
            }
            // Each worker checked its private atomic against its count before reporting.
            Workload::PrivateAtomic => {}
            Workload::MapReadHeavy | Workload::MapExchange | Workload::MapRapidGrow => {
                // No total to compare; the table must still be sound.
                let (_, region) = self.map.as_ref().ok_or("the bench map is missing")?;
                let errors: Vec<String> = shmarena::check::check_region(region)
                    .into_iter()
                    .filter(|f| f.severity == shmarena::engine::Severity::Error)
                    .map(|f| f.to_string())
                    .collect();
                if !errors.is_empty() {
                    return Err(format!("the bench map is inconsistent: {errors:?}").into());
                }
                return Ok(false);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// One workload at one process count.
fn run_one(
    exe: &Path,
    workload: Workload,
    procs: usize,
    seconds: f64,
    pin: bool,
    huge_pages: bool,
) -> Result<Row, BoxError> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let path = unique_region_path(workload, procs);
    let mut options = RegionOptions::default();
    // One participant slot per worker, plus this process.
    options.participant_capacity = options.participant_capacity.max(procs as u64 + 1);
    let region = Region::create_with(&path, workload.region_size(), &options)?;
    let _unlink = Unlink(path.clone());
    if huge_pages {
        // Before anything is written: a page takes its size when it is first touched.
        region.advise_huge_pages()?;
    }
    let control = Control::create(&region, procs)?;
    if workload.in_process() {
        let window = run_threads(&region, &control, workload, procs, seconds)?;
        return Ok(summarize(workload, window, &control, false));
    }
    let shared = Shared::create(&region, workload, procs)?;

    let mut workers = Workers(Vec::with_capacity(procs));
    for index in 0..procs {
        let cpu = pin.then_some(index % cpus);
        let child = spawn_worker(exe, &path, workload, index, seconds, cpu, huge_pages)?;
        workers.0.push((index, child));
    }
    let window = drive(&control, &mut workers, procs, seconds)?;

    let ops = control.ops.snapshot();
    if let Some((index, _)) = ops.iter().enumerate().find(|(_, &n)| n == 0) {
        return Err(format!("bench worker {index} reported no operations").into());
    }
    let checked_exact = shared.check(workload, &ops)?;
    let mut row = summarize(workload, window, &control, checked_exact);
    if workload == Workload::MutexHandoff {
        // Each pair hands off sequentially: its hand-offs divide the window.
        let per_pair = row.total_ops as f64 / (procs / 2) as f64;
        row.handoff_latency_ns = Some(window * 1e9 / per_pair.max(1.0));
    }
    Ok(row)
}

/// Starts the workers together once all are ready, stops them after `seconds`, and
/// waits for them. Returns the measured window in seconds.
fn drive(
    control: &Control,
    workers: &mut Workers,
    procs: usize,
    seconds: f64,
) -> Result<f64, BoxError> {
    let window = run_window(control, procs, seconds, || workers.check_none_exited())?;
    workers.wait_all(START_TIMEOUT)?;
    Ok(window)
}

/// Waits until `runners` workers are ready (calling `check` meanwhile), sets the start
/// flag, sleeps `seconds`, sets the stop flag; returns the window in seconds.
fn run_window(
    control: &Control,
    runners: usize,
    seconds: f64,
    mut check: impl FnMut() -> Result<(), BoxError>,
) -> Result<f64, BoxError> {
    // Start only when every worker is attached and spinning, so all run the same window.
    let waiting = Instant::now();
    while control.ready.load() < runners as u64 {
        check()?;
        if waiting.elapsed() > START_TIMEOUT {
            return Err(format!(
                "only {} of {runners} bench workers were ready after {} s",
                control.ready.load(),
                START_TIMEOUT.as_secs()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    control.start.store(1);
    std::thread::sleep(Duration::from_secs_f64(seconds));
    control.stop.store(1);
    Ok(started.elapsed().as_secs_f64())
}

/// The row of a finished run.
fn summarize(workload: Workload, window: f64, control: &Control, checked_exact: bool) -> Row {
    let ops = control.ops.snapshot();
    let nanos = control.nanos.snapshot();
    let cpu_nanos = control.cpu_nanos.snapshot();
    let procs = ops.len();
    let total_ops: u64 = ops.iter().sum();
    let rates = ops
        .iter()
        .zip(&nanos)
        .map(|(&n, &ns)| n as f64 * 1e3 / ns.max(1) as f64);
    let min_proc_mops = rates.clone().fold(f64::INFINITY, f64::min);
    let max_proc_mops = rates.fold(0.0, f64::max);
    let shares: Vec<f64> = cpu_nanos
        .iter()
        .zip(&nanos)
        .map(|(&cpu, &wall)| cpu as f64 / wall.max(1) as f64)
        .collect();
    let cpu_share_mean = shares.iter().sum::<f64>() / procs as f64;
    let cpu_share_min = shares.iter().copied().fold(f64::INFINITY, f64::min);
    let total_mops = total_ops as f64 / window / 1e6;
    Row {
        workload,
        procs,
        seconds: window,
        total_ops,
        total_mops,
        per_proc_mops: total_mops / procs as f64,
        min_proc_mops,
        max_proc_mops,
        ratio_vs_private: None,
        ratio_vs_best_peer: None,
        checked_exact,
        cpu_share_mean,
        cpu_share_min,
        handoff_latency_ns: None,
    }
}

/// What one worker measured.
struct Measured {
    ops: u64,
    elapsed: Duration,
    cpu: Duration,
}

/// CPU time the calling thread has used so far.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call; the clock id is
    // a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `op` in blocks of [`CHECK_EVERY`] until the stop flag is set. Returns the count,
/// the elapsed and the CPU time, or an error if `give_up` passes first (the parent is
/// gone).
#[inline]
fn measure(
    stop: &Value<u64>,
    give_up: Duration,
    mut op: impl FnMut(),
) -> Result<Measured, BoxError> {
    let cpu_started = thread_cpu_time();
    let started = Instant::now();
    let mut ops = 0u64;
    loop {
        for _ in 0..CHECK_EVERY {
            op();
        }
        ops += CHECK_EVERY;
        if stop.load() != 0 {
            let elapsed = started.elapsed();
            return Ok(Measured {
                ops,
                elapsed,
                cpu: thread_cpu_time().saturating_sub(cpu_started),
            });
        }
        if started.elapsed() > give_up {
            return Err(format!(
                "the stop flag did not come within {} s; is the parent gone?",
                give_up.as_secs()
            )
            .into());
        }
    }
}

/// A per-process xorshift64 generator (never zero).
fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Runs one bench worker process.
pub fn worker(args: &WorkerArgs) -> Outcome {
    if let Some(cpu) = args.cpu {
        pin_to_cpu(cpu)?;
    }
    let region = Region::open(&args.region)?;
    if args.huge_pages {
        region.advise_huge_pages()?;
    }
    let control = Control::open(&region)?;
    let len = control.ops.len();
    if args.index >= len || control.nanos.len() != len || control.cpu_nanos.len() != len {
        return Err(format!(
            "worker index {} out of range for {} workers",
            args.index,
            control.ops.len()
        )
        .into());
    }
    let give_up = Duration::from_secs_f64(args.seconds * 4.0) + START_TIMEOUT;

    // Open everything before reporting ready: the window measures the operation alone.
    let measured = match args.workload {
        Workload::ValueFetchAdd => {
            let counter = region.open_value::<u64>(names::COUNTER)?;
            wait_for_start(&control)?;
            measure(&control.stop, give_up, || {
                counter.fetch_add(1);
            })?
        }
        Workload::ShardedAdd => {
            let counter = ShardedCounter::open(&region, names::SHARDED)?;
            wait_for_start(&control)?;
            measure(&control.stop, give_up, || counter.increment())?
        }
        Workload::PrivateAtomic => {
            let boxed = Box::new(CachePadded::new(AtomicU64::new(0)));
            let cell: &AtomicU64 = black_box(&boxed);
            wait_for_start(&control)?;
            let result = measure(&control.stop, give_up, || {
                // SeqCst: the same ordering as shmarena's scalar operations.
                cell.fetch_add(1, Ordering::SeqCst);
            })?;
            let found = cell.load(Ordering::SeqCst);
            if found != result.ops {
                return Err(format!(
                    "private atomic holds {found}, but {} increments were counted",
                    result.ops
                )
                .into());
            }
            result
        }
        Workload::ArrayGetSet => array_worker(&region, &control, args.index, give_up)?,
        Workload::MutexLockUnlock | Workload::MutexYield => {
            let mutex = shmarena::Mutex::<u64>::open(&region, names::MUTEX)?;
            let mut owner_died = false;
            let hold_yields = args.workload == Workload::MutexYield;
            wait_for_start(&control)?;
            let result = measure(&control.stop, give_up, || {
                let mut guard = mutex.lock().unwrap_or_else(|died| {
                    owner_died = true;
                    died.into_inner()
                });
                *guard += 1;
                if hold_yields {
                    std::thread::yield_now();
                }
            })?;
            if owner_died {
                return Err("a process died holding the bench mutex".into());
            }
            result
        }
        Workload::MutexHandoff => handoff(&region, &control, args.index, give_up)?,
        Workload::QueuePushPop => queue_push_pop(&region, &control, args.index, give_up)?,
        Workload::MapReadHeavy | Workload::MapExchange | Workload::MapRapidGrow => {
            let map = region.open_hash_map::<u64, u64>(bench_map::MAP)?;
            let mix = args.workload.mix().expect("a map workload");
            map_worker(&map, mix, &control, args.index, give_up)?
        }
        Workload::MapProbeLimit => probe_worker(&region, &control, args.index, give_up)?,
        other => return Err(format!("{} runs in threads, not workers", other.name()).into()),
    };
    control
        .cpu_nanos
        .set(args.index, measured.cpu.as_nanos() as u64)?;
    control
        .nanos
        .set(args.index, measured.elapsed.as_nanos() as u64)?;
    control.ops.set(args.index, measured.ops)?;
    Ok(ExitCode::SUCCESS)
}

/// An `array-get-set` worker: 90% get, 10% set at pseudo-random indices.
fn array_worker(
    region: &Region,
    control: &Control,
    index: usize,
    give_up: Duration,
) -> Result<Measured, BoxError> {
    let data = region.open_array::<u64>(names::DATA)?;
    if data.len() != DATA_LEN {
        return Err(format!(
            "{} has {} elements, not {DATA_LEN}",
            names::DATA,
            data.len()
        )
        .into());
    }
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (index as u64 + 1);
    let mut sink = 0u64;
    wait_for_start(control)?;
    let result = measure(&control.stop, give_up, || {
        state = xorshift(state);
        let index = state as usize & (DATA_LEN - 1);
        if (state >> 32) < u64::from(u32::MAX / 10) {
            data.set(index, state).expect("index masked to the length");
        } else {
            sink ^= data.get(index).expect("index masked to the length");
        }
    })?;
    black_box(sink);
    Ok(result)
}

/// A `map-probe-limit` worker: read-only probes for random present keys.
fn probe_worker(
    region: &Region,
    control: &Control,
    index: usize,
    give_up: Duration,
) -> Result<Measured, BoxError> {
    let table = region.open_array::<u64>(bench_map::PROBE)?;
    let keys = bench_map::universe();
    let seed = region.hash_seed();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (index as u64 + 1);
    let mut sink = 0u64;
    wait_for_start(control)?;
    let result = measure(&control.stop, give_up, || {
        state = xorshift(state);
        let key = keys[(state % keys.len() as u64) as usize];
        sink ^= bench_map::probe(&table, seed, key);
    })?;
    black_box(sink);
    Ok(result)
}

/// Runs `mix` on a map until the stop flag; `index` seeds the key sequence.
fn map_worker(
    map: &impl bench_map::BenchMap,
    mix: Mix,
    control: &Control,
    index: usize,
    give_up: Duration,
) -> Result<Measured, BoxError> {
    let keys = bench_map::universe();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (index as u64 + 1);
    let mut sink = 0u64;
    wait_for_start(control)?;
    let result = measure(&control.stop, give_up, || {
        state = xorshift(state);
        sink ^= bench_map::step(map, &keys, mix, state);
    })?;
    black_box(sink);
    Ok(result)
}

/// Runs an in-process peer: `threads` threads of this process on one map, with the same
/// start and stop flags and result slots as worker processes. Returns the window.
fn run_threads(
    region: &Region,
    control: &Control,
    workload: Workload,
    threads: usize,
    seconds: f64,
) -> Result<f64, BoxError> {
    if matches!(
        workload,
        Workload::StdMutexLockUnlock | Workload::StdMutexYield
    ) {
        let mutex = std::sync::Mutex::new(0u64);
        let hold_yields = workload == Workload::StdMutexYield;
        let window = drive_threads(control, threads, seconds, |_, give_up| {
            wait_for_start(control)?;
            measure(&control.stop, give_up, || {
                let mut guard = mutex
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *guard += 1;
                if hold_yields {
                    std::thread::yield_now();
                }
            })
        })?;
        let counted: u64 = (0..threads)
            .map(|index| control.ops.get(index))
            .sum::<Result<u64, _>>()?;
        let found = *mutex
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if found != counted {
            return Err(format!(
                "LOST UPDATES: {} holds {found}, {counted} counted",
                workload.name()
            )
            .into());
        }
        return Ok(window);
    }
    let mix = workload.mix().ok_or("not a map workload")?;
    let seed = region.hash_seed();
    let keys = bench_map::universe();
    match workload {
        Workload::PapayaReadHeavy | Workload::PapayaExchange | Workload::PapayaRapidGrow => {
            let map = bench_map::papaya_map(seed, mix.initial_room());
            bench_map::prefill(&map, &keys, mix);
            drive_threads(control, threads, seconds, |index, give_up| {
                map_worker(&map, mix, control, index, give_up)
            })
        }
        Workload::DashmapReadHeavy | Workload::DashmapExchange | Workload::DashmapRapidGrow => {
            let map = bench_map::dash_map(seed, mix.initial_room());
            bench_map::prefill(&map, &keys, mix);
            drive_threads(control, threads, seconds, |index, give_up| {
                map_worker(&map, mix, control, index, give_up)
            })
        }
        _ => {
            let map = bench_map::mutex_map(seed, mix.initial_room());
            bench_map::prefill(&map, &keys, mix);
            drive_threads(control, threads, seconds, |index, give_up| {
                map_worker(&map, mix, control, index, give_up)
            })
        }
    }
}

/// Runs `work(index, give_up)` on `threads` threads inside the start/stop window, storing
/// each thread's measurement in its result slots. Returns the window.
fn drive_threads(
    control: &Control,
    threads: usize,
    seconds: f64,
    work: impl Fn(usize, Duration) -> Result<Measured, BoxError> + Sync,
) -> Result<f64, BoxError> {
    let give_up = Duration::from_secs_f64(seconds * 4.0) + START_TIMEOUT;
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|index| {
                scope.spawn(move || -> Result<(), String> {
                    let measured = work(index, give_up).map_err(|e| e.to_string())?;
                    let store = |array: &Array<u64>, value: u64| {
                        array.set(index, value).map_err(|e| e.to_string())
                    };
                    store(&control.cpu_nanos, measured.cpu.as_nanos() as u64)?;
                    store(&control.nanos, measured.elapsed.as_nanos() as u64)?;
                    store(&control.ops, measured.ops)
                })
            })
            .collect();
        let window = run_window(control, threads, seconds, || Ok(())).inspect_err(|_| {
            // Let the threads go, so that the scope can end.
            control.stop.store(1);
            control.start.store(1);
        })?;
        for handle in handles {
            handle
                .join()
                .map_err(|_| "a bench thread panicked")?
                .map_err(|e| format!("a bench thread failed: {e}"))?;
        }
        Ok(window)
    })
}

/// A `queue-push-pop` worker: one `try_push` and one `try_pop` per operation; stores its
/// successful pushes and pops for the parent's check.
fn queue_push_pop(
    region: &Region,
    control: &Control,
    index: usize,
    give_up: Duration,
) -> Result<Measured, BoxError> {
    let queue = shmarena::Queue::<u64>::open(region, names::QUEUE)?;
    let pushes = region.open_array::<u64>(names::QUEUE_PUSHES)?;
    let pops = region.open_array::<u64>(names::QUEUE_POPS)?;
    let (mut pushed, mut popped) = (0u64, 0u64);
    let tag = (index as u64) << 40;
    wait_for_start(control)?;
    let result = measure(&control.stop, give_up, || {
        if queue.try_push(tag | pushed).is_ok() {
            pushed += 1;
        }
        if queue.try_pop().is_some() {
            popped += 1;
        }
    })?;
    pushes.set(index, pushed)?;
    pops.set(index, popped)?;
    Ok(result)
}

/// How long a hand-off worker sleeps at most before it looks at the stop flag again (its
/// partner may have stopped and will never pass the turn back).
const HANDOFF_POLL: Duration = Duration::from_millis(5);

/// One side of a `mutex-handoff` pair: worker `index` is side `index % 2` of pair
/// `index / 2`; it may move when the turn counter's parity is its side. Counts the
/// hand-offs it made until the stop flag.
fn handoff(
    region: &Region,
    control: &Control,
    index: usize,
    give_up: Duration,
) -> Result<Measured, BoxError> {
    const DIED: &str = "a mutex-handoff partner died holding the lock";
    let (pair, side) = (index / 2, (index % 2) as u64);
    let turn = shmarena::Mutex::<u64>::open(region, &names::turn(pair))?;
    let changed = region.condvar(&names::turn_changed(pair))?;
    wait_for_start(control)?;
    let cpu_started = thread_cpu_time();
    let started = Instant::now();
    let mut ops = 0u64;
    let mut until_check = CHECK_EVERY;
    'run: loop {
        let mut guard = turn.lock().map_err(|_| DIED)?;
        while *guard % 2 != side {
            // Checked with the lock held, before each sleep: cheap next to a hand-off.
            if control.stop.load() != 0 {
                break 'run;
            }
            guard = match changed.wait_timeout(guard, HANDOFF_POLL) {
                Ok((guard, _)) => guard,
                Err(_) => return Err(DIED.into()),
            };
        }
        *guard += 1;
        drop(guard);
        changed.notify_one();
        ops += 1;
        until_check -= 1;
        if until_check == 0 {
            until_check = CHECK_EVERY;
            if started.elapsed() > give_up {
                return Err("the stop flag did not come; is the parent gone?".into());
            }
        }
    }
    Ok(Measured {
        ops,
        elapsed: started.elapsed(),
        cpu: thread_cpu_time().saturating_sub(cpu_started),
    })
}

/// Reports ready, then spins until the parent sets the start flag.
fn wait_for_start(control: &Control) -> Result<(), BoxError> {
    control.ready.fetch_add(1);
    let waiting = Instant::now();
    loop {
        for _ in 0..64 {
            if control.start.load() != 0 {
                return Ok(());
            }
            std::hint::spin_loop();
        }
        // Let the parent (and the other workers) run on a machine with few cores.
        std::thread::yield_now();
        if waiting.elapsed() > START_TIMEOUT {
            return Err("the start flag never came; is the parent gone?".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_counts_are_powers_of_two_and_max() {
        assert_eq!(proc_counts(1), [1]);
        assert_eq!(proc_counts(2), [1, 2]);
        assert_eq!(proc_counts(6), [1, 2, 4, 6]);
        assert_eq!(proc_counts(16), [1, 2, 4, 8, 16]);
    }

    #[test]
    fn handoff_runs_pairs() {
        assert_eq!(Workload::MutexHandoff.proc_counts(1), [2]);
        assert_eq!(Workload::MutexHandoff.proc_counts(2), [2]);
        assert_eq!(Workload::MutexHandoff.proc_counts(6), [2, 4, 6]);
        assert_eq!(Workload::MutexHandoff.proc_counts(7), [2, 4, 6]);
        assert_eq!(Workload::MutexHandoff.proc_counts(16), [2, 4, 8, 16]);
        assert_eq!(Workload::MutexLockUnlock.proc_counts(6), [1, 2, 4, 6]);
    }

    #[test]
    fn xorshift_never_sticks_at_zero() {
        let mut x = 1;
        for _ in 0..1000 {
            x = xorshift(x);
            assert_ne!(x, 0);
        }
    }
}
