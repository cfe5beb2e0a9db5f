//! The cross-process locks with real worker processes: exact totals under contention,
//! wake-ups across processes, and recovery from SIGKILL, with the recovery time measured
//! (run with `cargo test -p shmarena-verify --test locks_multiprocess -- --nocapture` to
//! see the times).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use common::{spawn, TempRegion};
use shmarena::{Error, Region, RegionExt, TryLockError};

/// The generous bound on any recovery from a death (the design target is about one
/// [`shmarena::mutex::CHECK_INTERVAL`], 10 ms, plus scheduling).
const RECOVERY_BOUND: Duration = Duration::from_millis(200);

/// How long any single step may take before the test gives up (instead of hanging).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The worker's `HELD_MARK` (verify/src/bin/worker.rs).
const HELD_MARK: u64 = 0xdead_beef;

/// The worker's ring layout (verify/src/bin/worker.rs, `locks::Ring`).
const RING_SLOTS: usize = 4;
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct Ring {
    head: u64,
    tail: u64,
    consumed: u64,
    slots: [u64; RING_SLOTS],
}

/// CLOCK_MONOTONIC in nanoseconds, the clock the workers print.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

/// A running worker whose stdout lines arrive on a channel (so a hung worker makes the
/// test fail after [`STEP_TIMEOUT`] instead of hanging). Killed when dropped.
struct Worker {
    child: Child,
    lines: Receiver<String>,
    what: String,
}

impl Worker {
    fn start(args: &[&str]) -> Self {
        let mut child = spawn(args);
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            what: format!("{args:?}"),
        }
    }

    /// The next line of output.
    fn line(&self) -> String {
        match self.lines.recv_timeout(STEP_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("worker {} printed nothing", self.what),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("worker {} exited without the expected line", self.what)
            }
        }
    }

    fn expect(&self, want: &str) {
        let line = self.line();
        assert_eq!(line, want, "worker {}", self.what);
    }

    /// The fields of the next line, which must start with `tag`.
    fn fields(&self, tag: &str) -> Vec<String> {
        let line = self.line();
        let mut fields = line.split_whitespace().map(str::to_owned);
        assert_eq!(
            fields.next().as_deref(),
            Some(tag),
            "worker {}: {line:?}",
            self.what
        );
        fields.collect()
    }

    /// Waits for the exit (at most `timeout`).
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "worker {} still running after {timeout:?}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn finish_ok(mut self) {
        let status = self.wait(STEP_TIMEOUT);
        assert!(status.success(), "worker {} failed: {status:?}", self.what);
    }

    /// SIGKILLs the worker and reaps it.
    fn kill(&mut self) {
        assert!(self.kill_if_running(), "worker {} had exited", self.what);
    }

    /// SIGKILLs the worker if it still runs and reaps it; whether the signal killed it
    /// (false: it had exited by itself, successfully).
    fn kill_if_running(&mut self) -> bool {
        self.child.kill().expect("kill");
        let status = self.wait(STEP_TIMEOUT);
        if status.signal() == Some(libc::SIGKILL) {
            return true;
        }
        assert!(status.success(), "worker {} failed: {status:?}", self.what);
        false
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn region(tag: &str) -> (TempRegion, Region) {
    let temp = TempRegion::new(tag);
    let region = Region::create(&temp.path, 4 << 20).unwrap();
    (temp, region)
}

// ---------------------------------------------------------------------------------------
// (a) mutual exclusion

#[test]
fn mutex_read_modify_writes_from_four_processes_give_the_exact_total() {
    const PROCESSES: u64 = 4;
    const COUNT: u64 = 5000;
    let (temp, region) = region("lock-rmw");
    let mutex = region.mutex::<[u64; 2]>("m", [0, 0]).unwrap();
    let go = region.event("go").unwrap();
    let workers: Vec<Worker> = (0..PROCESSES)
        .map(|_| Worker::start(&["mutex-rmw", temp.arg(), "m", &COUNT.to_string()]))
        .collect();
    // Start them together, so that they contend.
    for worker in &workers {
        worker.expect("ready");
    }
    let started = Instant::now();
    go.set();
    for worker in workers {
        worker.finish_ok();
    }
    eprintln!(
        "mutex rmw: {} locked updates from {PROCESSES} processes in {:.1} ms",
        PROCESSES * COUNT,
        started.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(
        *mutex.lock().unwrap(),
        [PROCESSES * COUNT, 2 * PROCESSES * COUNT]
    );
}

// ---------------------------------------------------------------------------------------
// (b) condition variable

#[test]
fn condvar_ring_across_processes_delivers_every_item_exactly_once() {
    const PRODUCERS: u64 = 3;
    const CONSUMERS: usize = 3;
    const COUNT: u64 = 2000;
    let (temp, region) = region("lock-ring");
    let ring = region.mutex::<Ring>("ring", Ring::zeroed()).unwrap();
    let (producers, count) = (PRODUCERS.to_string(), COUNT.to_string());
    let consumers: Vec<Worker> = (0..CONSUMERS)
        .map(|_| Worker::start(&["ring-consume", temp.arg(), &producers, &count]))
        .collect();
    let producer_workers: Vec<Worker> = (0..PRODUCERS)
        .map(|p| Worker::start(&["ring-produce", temp.arg(), &p.to_string(), &count]))
        .collect();
    for producer in producer_workers {
        producer.finish_ok();
    }
    let (mut items, mut sum, mut xor) = (0u64, 0u64, 0u64);
    let mut per_consumer = Vec::new();
    for consumer in consumers {
        let fields: Vec<u64> = consumer
            .line()
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        consumer.finish_ok();
        per_consumer.push(fields[0]);
        items += fields[0];
        sum = sum.wrapping_add(fields[1]);
        xor ^= fields[2];
    }
    let all = (0..PRODUCERS).flat_map(|p| (0..COUNT).map(move |s| (p << 32) | s));
    let expected_sum = all.clone().fold(0u64, u64::wrapping_add);
    let expected_xor = all.fold(0u64, |x, i| x ^ i);
    eprintln!("condvar ring: items per consumer {per_consumer:?}");
    assert_eq!(items, PRODUCERS * COUNT);
    assert_eq!(sum, expected_sum);
    assert_eq!(xor, expected_xor);
    let seen = region.open_array::<u64>("seen").unwrap().snapshot();
    assert_eq!(seen.len() as u64, PRODUCERS * COUNT);
    if let Some(i) = seen.iter().position(|&n| n != 1) {
        panic!(
            "item of producer {} seq {} consumed {} times",
            i as u64 / COUNT,
            i as u64 % COUNT,
            seen[i]
        );
    }
    let ring = *ring.lock().unwrap();
    assert_eq!(
        (ring.head, ring.tail, ring.consumed),
        (PRODUCERS * COUNT, PRODUCERS * COUNT, PRODUCERS * COUNT)
    );
}

// ---------------------------------------------------------------------------------------
// (c) event

#[test]
fn event_set_releases_every_waiting_process_promptly() {
    const WAITERS: usize = 4;
    let (temp, region) = region("lock-event");
    let event = region.event("go").unwrap();
    let mut waiters: Vec<Worker> = (0..WAITERS)
        .map(|_| Worker::start(&["event-wait", temp.arg(), "go"]))
        .collect();
    for waiter in &waiters {
        waiter.expect("ready");
    }
    // Let them reach the futex, and show that they stay there while the event is clear.
    std::thread::sleep(Duration::from_millis(50));
    for waiter in &mut waiters {
        assert!(
            waiter.child.try_wait().unwrap().is_none(),
            "a waiter left early"
        );
    }
    let set_at = monotonic_ns();
    event.set();
    let mut latencies = Vec::new();
    for waiter in &mut waiters {
        let woke: u64 = waiter.fields("woke")[0].parse().unwrap();
        latencies.push(woke.saturating_sub(set_at));
        assert!(waiter.wait(Duration::from_secs(5)).success());
    }
    let exited = monotonic_ns() - set_at;
    eprintln!(
        "event fan-out: {WAITERS} processes woke {:.3?} ms after set (all exited after {:.2} ms)",
        latencies.iter().map(|&n| ms(n)).collect::<Vec<_>>(),
        ms(exited)
    );
    let slowest = latencies.iter().copied().max().unwrap();
    assert!(
        Duration::from_nanos(slowest) < RECOVERY_BOUND,
        "a waiter woke {:.2} ms after set",
        ms(slowest)
    );
}

// ---------------------------------------------------------------------------------------
// (d) semaphore

#[test]
fn semaphore_of_two_never_admits_a_third_process() {
    const PROCESSES: u64 = 5;
    const ROUNDS: u64 = 40;
    let (temp, region) = region("lock-sem");
    let sem = region.bounded_semaphore("s", 2).unwrap();
    let workers: Vec<Worker> = (0..PROCESSES)
        .map(|_| Worker::start(&["sem-work", temp.arg(), "s", "2", &ROUNDS.to_string(), "300"]))
        .collect();
    for worker in workers {
        worker.finish_ok();
    }
    let peak = region.open_value::<u64>("peak").unwrap().load();
    eprintln!("semaphore(2): peak holders {peak}");
    assert!(peak <= 2, "{peak} processes held a permit of 2 at once");
    assert_eq!(peak, 2, "two holders should overlap while they sleep");
    assert_eq!(
        region.open_value::<u64>("done").unwrap().load(),
        PROCESSES * ROUNDS
    );
    assert_eq!(region.open_value::<u64>("inside").unwrap().load(), 0);
    assert_eq!(sem.available(), 2, "every permit came back");
}

// ---------------------------------------------------------------------------------------
// (e) barrier

#[test]
fn barrier_rounds_across_processes_never_let_one_run_ahead() {
    const PARTIES: u64 = 4;
    const ROUNDS: u64 = 200;
    let (temp, region) = region("lock-barrier");
    let barrier = region.barrier("b", PARTIES as u32).unwrap();
    let (parties, rounds) = (PARTIES.to_string(), ROUNDS.to_string());
    let started = Instant::now();
    let workers: Vec<Worker> = (0..PARTIES)
        .map(|_| Worker::start(&["barrier-rounds", temp.arg(), "b", &parties, &rounds]))
        .collect();
    for worker in workers {
        worker.finish_ok();
    }
    eprintln!(
        "barrier: {ROUNDS} rounds of {PARTIES} processes in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(
        region.open_value::<u64>("arrivals").unwrap().load(),
        PARTIES * ROUNDS
    );
    assert!(!barrier.is_broken());
    assert_eq!(barrier.n_waiting(), 0);
}

// ---------------------------------------------------------------------------------------
// (f) SIGKILL recovery, measured

#[test]
fn a_mutex_whose_owner_is_killed_is_taken_over_by_a_waiting_process_within_the_bound() {
    let (temp, region) = region("lock-kill-mutex");
    let mutex = region.mutex::<u64>("m", 0).unwrap();
    let mut times = Vec::new();
    for round in 0..5 {
        let mut holder = Worker::start(&["hold-mutex", temp.arg(), "m"]);
        holder.expect("locked");
        let mut waiter = Worker::start(&["wait-mutex", temp.arg(), "m"]);
        waiter.expect("waiting");
        // Let the waiter fall asleep on the futex (it rechecks the owner every 10 ms);
        // vary the phase of the kill against its check interval.
        std::thread::sleep(Duration::from_millis(20 + round * 3));
        assert!(matches!(mutex.try_lock(), Err(TryLockError::WouldBlock)));
        let killed_at = monotonic_ns();
        holder.kill();
        let fields = waiter.fields("acquired");
        let acquired: u64 = fields[0].parse().unwrap();
        assert_eq!(fields[1], "died", "the new owner must be told");
        assert_eq!(fields[2], HELD_MARK.to_string(), "the dead owner's write");
        assert!(waiter.wait(STEP_TIMEOUT).success());
        times.push(acquired.saturating_sub(killed_at));
        // The waiter marked it consistent: the next locker is told nothing.
        let mut guard = mutex.lock().unwrap();
        *guard = 0;
    }
    eprintln!(
        "mutex owner SIGKILLed -> waiter owns it: {:.2?} ms",
        times.iter().map(|&n| ms(n)).collect::<Vec<_>>()
    );
    for &t in &times {
        assert!(
            Duration::from_nanos(t) < RECOVERY_BOUND,
            "took {} ms",
            ms(t)
        );
    }

    // Nobody waiting at the death: the next locker takes over at once.
    let mut holder = Worker::start(&["hold-mutex", temp.arg(), "m"]);
    holder.expect("locked");
    holder.kill();
    let started = Instant::now();
    let guard = mutex.lock().expect_err("the owner died").into_inner();
    let late = started.elapsed();
    eprintln!("mutex of a dead owner, locked afterwards: {late:.2?}");
    assert!(late < Duration::from_millis(20), "took {late:?}");
    assert_eq!(*guard, HELD_MARK);
    guard.mark_consistent();
}

#[test]
fn a_semaphore_permit_of_a_killed_holder_returns_to_a_waiting_process_within_the_bound() {
    let (temp, region) = region("lock-kill-sem");
    let sem = region.bounded_semaphore("s", 1).unwrap();
    let mut times = Vec::new();
    for round in 0..5 {
        let mut holder = Worker::start(&["hold-permit", temp.arg(), "s", "1"]);
        holder.expect("held");
        let mut waiter = Worker::start(&["wait-permit", temp.arg(), "s", "1"]);
        waiter.expect("waiting");
        std::thread::sleep(Duration::from_millis(20 + round * 3));
        assert_eq!(sem.available(), 0);
        let killed_at = monotonic_ns();
        holder.kill();
        let acquired: u64 = waiter.fields("acquired")[0].parse().unwrap();
        assert!(waiter.wait(STEP_TIMEOUT).success());
        times.push(acquired.saturating_sub(killed_at));
        assert_eq!(sem.available(), 1, "the waiter released the permit it got");
    }
    eprintln!(
        "semaphore holder SIGKILLed -> waiter has the permit: {:.2?} ms",
        times.iter().map(|&n| ms(n)).collect::<Vec<_>>()
    );
    for &t in &times {
        assert!(
            Duration::from_nanos(t) < RECOVERY_BOUND,
            "took {} ms",
            ms(t)
        );
    }
}

#[test]
fn a_barrier_party_killed_while_another_waits_breaks_the_barrier_within_the_bound() {
    let (temp, region) = region("lock-kill-barrier");
    let mut times = Vec::new();
    for round in 0..5u64 {
        // A fresh barrier each round (a broken one stays broken until reset).
        let name = format!("b{round}");
        let barrier = region.barrier(&name, 3).unwrap();
        let mut victim = Worker::start(&["barrier-wait", temp.arg(), &name, "3"]);
        let mut waiter = Worker::start(&["barrier-wait", temp.arg(), &name, "3"]);
        victim.expect("waiting");
        waiter.expect("waiting");
        let deadline = Instant::now() + STEP_TIMEOUT;
        while barrier.n_waiting() < 2 {
            assert!(Instant::now() < deadline, "the two parties never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20 + round * 3));
        let killed_at = monotonic_ns();
        victim.kill();
        let broken: u64 = waiter.fields("broken")[0].parse().unwrap();
        assert!(waiter.wait(STEP_TIMEOUT).success());
        times.push(broken.saturating_sub(killed_at));
        assert!(barrier.is_broken());
        assert!(matches!(barrier.wait(), Err(Error::BrokenBarrier(_))));
    }
    eprintln!(
        "barrier party SIGKILLed -> waiter gets BrokenBarrier: {:.2?} ms",
        times.iter().map(|&n| ms(n)).collect::<Vec<_>>()
    );
    for &t in &times {
        assert!(
            Duration::from_nanos(t) < RECOVERY_BOUND,
            "took {} ms",
            ms(t)
        );
    }
}

// ---------------------------------------------------------------------------------------
// (g) owners killed at random moments during contention

#[test]
fn mutex_owners_killed_at_random_during_contention_lose_no_acknowledged_update() {
    const WORKERS: usize = 3;
    let (temp, region) = region("lock-kill-acked");
    let acks = region.array_zeroed::<u64>("acks", WORKERS).unwrap();
    let mutex = region.mutex::<[u64; 2]>("m", [0, 0]).unwrap();
    let stop = region.event("stop").unwrap();
    let start = |index: usize, die_at: Option<u64>| {
        let index = index.to_string();
        let die_at = die_at.map(|n| n.to_string());
        let mut args = vec!["mutex-acked", temp.arg(), &index];
        args.extend(die_at.as_deref());
        let worker = Worker::start(&args);
        worker.expect("ready");
        worker
    };
    let mut workers: Vec<Worker> = (0..WORKERS).map(|i| start(i, None)).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let (mut kills, mut self_kills) = (0u64, 0u64);
    for round in 0..30 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(300 + seed % 5000));
        let victim = (seed >> 32) as usize % WORKERS;
        workers[victim].kill();
        kills += 1;
        // Every third restart dies by its own hand a little later, holding the lock
        // between its two writes (a death at a known point of the critical section).
        if round % 3 == 0 {
            let die_at = acks.get(victim).unwrap() + 1 + seed % 50;
            let mut suicidal = start(victim, Some(die_at));
            let status = suicidal.wait(STEP_TIMEOUT);
            assert_eq!(status.signal(), Some(libc::SIGKILL), "died by its own hand");
            kills += 1;
            self_kills += 1;
        }
        workers[victim] = start(victim, None);
    }
    // The survivors (the last incarnation of each) finish cleanly.
    let before_stop: u64 = acks.snapshot().iter().sum();
    std::thread::sleep(Duration::from_millis(20));
    stop.set();
    for worker in workers {
        worker.finish_ok();
    }
    let acknowledged: u64 = acks.snapshot().iter().sum();
    let recoveries = region.open_value::<u64>("recoveries").unwrap().load();
    let [total, double] = match mutex.lock() {
        Ok(guard) => *guard,
        Err(died) => panic!("the last owners exited cleanly, yet: {died}"),
    };
    eprintln!(
        "random kills during contention: {kills} kills ({self_kills} inside the critical \
         section by the worker itself), {recoveries} OwnerDied recoveries, total {total} for \
         {acknowledged} acknowledged"
    );
    assert!(acknowledged > before_stop, "the survivors made progress");
    assert_eq!(double, 2 * total, "recovered data is consistent");
    assert!(
        (acknowledged..=acknowledged + kills).contains(&total),
        "total {total} outside acknowledged {acknowledged} + up to {kills} in flight"
    );
    assert!(
        recoveries >= self_kills,
        "each death inside the lock is reported to the next owner"
    );
}

// ---------------------------------------------------------------------------------------
// Waiters killed asleep

/// The sleeper count of object `name`: the high half of its body's first word (a u32 at
/// byte 4, for events and semaphores alike).
fn sleepers_of(region: &Region, name: &str) -> u32 {
    use shmarena::engine::Memory;
    let body = region.find_object(name).unwrap().unwrap().offset;
    let word = region.memory().word(body).unwrap();
    (word.load(std::sync::atomic::Ordering::Relaxed) >> 32) as u32
}

/// Starts `args` (a worker that announces itself with `ready`, then sleeps on object
/// `name`) and SIGKILLs it once its sleeper count shows; retried until the kill leaves the
/// count raised (a waiter of a timed wait leaves and comes back between its sleeps).
fn kill_asleep(region: &Region, name: &str, args: &[&str], ready: &str) {
    for _ in 0..20 {
        let mut waiter = Worker::start(args);
        waiter.expect(ready);
        let began = Instant::now();
        while sleepers_of(region, name) == 0 {
            assert!(began.elapsed() < STEP_TIMEOUT, "the waiter never slept");
            std::thread::sleep(Duration::from_millis(1));
        }
        waiter.kill();
        if sleepers_of(region, name) == 1 {
            return;
        }
    }
    panic!("no kill landed while the waiter slept");
}

/// A process SIGKILLed while asleep in `Event::wait` or a semaphore's `acquire` leaves its
/// sleeper count behind; `set` and `release` then find that their wake-up wakes nobody and
/// soon clear the dead sleeper's count (its registry entry names it), so they stop paying
/// a system call each.
#[test]
fn waiters_killed_asleep_stop_costing_setters_and_releasers() {
    let (temp, region) = region("lock-asleep");
    let event = region.event("e").unwrap();
    kill_asleep(&region, "e", &["event-wait", temp.arg(), "e"], "ready");
    for _ in 0..2 * shmarena::sleepers::REAP_EVERY {
        event.set();
        event.clear();
    }
    assert_eq!(
        sleepers_of(&region, "e"),
        0,
        "the dead waiter's count was cleared"
    );

    let sem = region.bounded_semaphore("s", 1).unwrap();
    assert!(sem.try_acquire(), "the test holds the only permit");
    kill_asleep(
        &region,
        "s",
        &["wait-permit", temp.arg(), "s", "1"],
        "waiting",
    );
    for _ in 0..2 * shmarena::sleepers::REAP_EVERY {
        sem.release().unwrap();
        assert!(sem.try_acquire());
    }
    assert_eq!(
        sleepers_of(&region, "s"),
        0,
        "the dead waiter's count was cleared"
    );
}
