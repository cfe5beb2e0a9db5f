//! `Queue<u64>` with real producer and consumer processes: every acknowledged item popped
//! exactly once and in per-producer order, SIGKILL at the queue's failpoints and at random
//! moments (with restarts), and a producer frozen with SIGSTOP in the middle of a push.
//!
//! Items are `producer << 32 | seq`. A producer stores `seq + 1` in element `producer` of
//! the Array "acked" after each push that returned; a consumer appends each item it popped
//! to its own file (one write per item), so the test sees every reported pop.

mod common;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{run_ok, spawn, spawn_with_env, TempRegion};
use shmarena::{Array, ByteUnboundedQueue, Event, Queue, Region, RegionExt};

const PRODUCERS: usize = 3;
const CONSUMERS: usize = 3;
const CAPACITY: u64 = 64;

/// How long a whole scenario may take before the test gives up instead of hanging.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(45);

fn item(producer: usize, seq: u64) -> u64 {
    ((producer as u64) << 32) | seq
}

fn split(item: u64) -> (usize, u64) {
    ((item >> 32) as usize, item & u64::from(u32::MAX))
}

/// The queue under test: bounded, or unbounded (rings from 4 slots, so it links rings).
enum UnderTest {
    Bounded(Queue<u64>),
    Unbounded(ByteUnboundedQueue),
}

impl UnderTest {
    fn len(&self) -> usize {
        match self {
            Self::Bounded(queue) => queue.len(),
            Self::Unbounded(queue) => queue.len().unwrap(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bounded(&self) -> &Queue<u64> {
        match self {
            Self::Bounded(queue) => queue,
            Self::Unbounded(_) => panic!("a test of the bounded queue"),
        }
    }

    fn lost(&self) -> u64 {
        match self {
            Self::Bounded(queue) => queue.lost(),
            Self::Unbounded(queue) => queue.lost(),
        }
    }

    fn skipped(&self) -> u64 {
        match self {
            Self::Bounded(queue) => queue.skipped(),
            Self::Unbounded(queue) => queue.skipped(),
        }
    }
}

/// What a process should do.
#[derive(Clone, Debug)]
enum Role {
    /// Push seq `from..to` as producer `id`.
    Producer { id: usize, from: u64, to: u64 },
    /// Pop into `out`.
    Consumer { out: PathBuf },
}

/// One worker process and what it was started to do.
struct Proc {
    child: Child,
    role: Role,
}

/// The scenario: the region, the queue, the workers; kills every worker still running
/// when dropped (a failing test does not leave processes behind).
struct Scenario {
    temp: TempRegion,
    queue: UnderTest,
    acked: Array<u64>,
    stop: Event,
    per_producer: u64,
    producers: Vec<Option<Proc>>,
    consumers: Vec<Option<Proc>>,
    /// Every consumer output file ever used.
    outputs: Vec<PathBuf>,
    /// Per producer, the seqs whose push a killed producer may or may not have finished.
    gaps: Vec<Vec<u64>>,
    started: Instant,
}

impl Scenario {
    fn new(tag: &str, per_producer: u64) -> Self {
        Self::with_queue(tag, per_producer, false)
    }

    fn unbounded(tag: &str, per_producer: u64) -> Self {
        Self::with_queue(tag, per_producer, true)
    }

    fn with_queue(tag: &str, per_producer: u64, unbounded: bool) -> Self {
        let temp = TempRegion::new(&format!("queue-{tag}"));
        let region = Region::create(&temp.path, 64 << 20).unwrap();
        let queue = if unbounded {
            UnderTest::Unbounded(ByteUnboundedQueue::get_or_create(&region, "q", 4, 8).unwrap())
        } else {
            UnderTest::Bounded(region.queue::<u64>("q", CAPACITY).unwrap())
        };
        let acked = region.array_zeroed::<u64>("acked", PRODUCERS).unwrap();
        let stop = region.event("stop").unwrap();
        Self {
            temp,
            queue,
            acked,
            stop,
            per_producer,
            producers: (0..PRODUCERS).map(|_| None).collect(),
            consumers: (0..CONSUMERS).map(|_| None).collect(),
            outputs: Vec::new(),
            gaps: vec![Vec::new(); PRODUCERS],
            started: Instant::now(),
        }
    }

    fn start(&mut self, role: Role, env: &[(&str, &str)]) -> Proc {
        let region = self.temp.arg().to_owned();
        let child = match &role {
            Role::Producer { id, from, to } => spawn_with_env(
                &[
                    "queue-produce",
                    &region,
                    &id.to_string(),
                    &from.to_string(),
                    &to.to_string(),
                ],
                env,
            ),
            Role::Consumer { out } => {
                self.outputs.push(out.clone());
                spawn_with_env(&["queue-consume", &region, out.to_str().unwrap()], env)
            }
        };
        Proc { child, role }
    }

    fn start_producer(&mut self, id: usize, env: &[(&str, &str)]) {
        let role = Role::Producer {
            id,
            from: 0,
            to: self.per_producer,
        };
        self.producers[id] = Some(self.start(role, env));
    }

    fn start_consumer(&mut self, index: usize, env: &[(&str, &str)]) {
        let out = PathBuf::from(format!(
            "{}-out-{index}-{}",
            self.temp.arg(),
            self.outputs.len()
        ));
        let _ = std::fs::remove_file(&out);
        self.consumers[index] = Some(self.start(Role::Consumer { out }, env));
    }

    /// After producer `id` died: the seq it may have been pushing becomes a gap, and a new
    /// producer goes on after it (none if nothing is left to push).
    fn restart_producer(&mut self, id: usize, dead_from: u64) {
        let acked = self.acked.get(id).unwrap();
        // The dead producer pushed dead_from.. in order and acknowledged up to acked - 1;
        // the next seq may or may not have been pushed.
        let gap = acked.max(dead_from);
        if gap >= self.per_producer {
            self.producers[id] = None;
            return;
        }
        self.gaps[id].push(gap);
        let role = Role::Producer {
            id,
            from: gap + 1,
            to: self.per_producer,
        };
        self.producers[id] = Some(self.start(role, &[]));
    }

    fn check_deadline(&self, what: &str) {
        assert!(
            self.started.elapsed() < SCENARIO_TIMEOUT,
            "stalled: {what} after {:?} (queue len {}, acked {:?}, lost {}, skipped {})",
            self.started.elapsed(),
            self.queue.len(),
            self.acked.snapshot(),
            self.queue.lost(),
            self.queue.skipped()
        );
    }

    /// Reaps exited workers: a producer that finished leaves its slot empty; a worker
    /// killed by SIGKILL (its own failpoint) is restarted without the failpoint. Returns
    /// the number of (producer, consumer) deaths seen.
    fn reap(&mut self) -> (u64, u64) {
        let mut deaths = (0, 0);
        for id in 0..PRODUCERS {
            let Some(proc) = self.producers[id].as_mut() else {
                continue;
            };
            let Some(status) = proc.child.try_wait().unwrap() else {
                continue;
            };
            let Role::Producer { from, .. } = proc.role else {
                unreachable!()
            };
            if status.success() {
                self.producers[id] = None;
            } else {
                assert_eq!(status.signal(), Some(libc::SIGKILL), "producer {id} failed");
                deaths.0 += 1;
                self.restart_producer(id, from);
            }
        }
        for index in 0..CONSUMERS {
            let Some(proc) = self.consumers[index].as_mut() else {
                continue;
            };
            let Some(status) = proc.child.try_wait().unwrap() else {
                continue;
            };
            if status.success() && self.stop.is_set() {
                self.consumers[index] = None; // drained and done
                continue;
            }
            assert_eq!(
                status.signal(),
                Some(libc::SIGKILL),
                "consumer {index} exited before the stop: {status:?}"
            );
            deaths.1 += 1;
            self.start_consumer(index, &[]);
        }
        deaths
    }

    /// Waits until every producer finished (restarting the killed ones), then sets
    /// "stop" and waits for the consumers to drain the queue and exit. Returns the deaths
    /// seen (producers, consumers).
    fn finish(&mut self) -> (u64, u64) {
        let mut deaths = (0, 0);
        while self.producers.iter().any(Option::is_some) {
            let (p, c) = self.reap();
            deaths = (deaths.0 + p, deaths.1 + c);
            self.check_deadline("waiting for the producers");
            std::thread::sleep(Duration::from_millis(2));
        }
        self.stop.set();
        while self.consumers.iter().any(Option::is_some) {
            let (p, c) = self.reap();
            deaths = (deaths.0 + p, deaths.1 + c);
            self.check_deadline("waiting for the consumers to drain");
            std::thread::sleep(Duration::from_millis(2));
        }
        deaths
    }

    /// Every consumer's pops, in pop order (a record cut short by a kill is dropped).
    fn popped(&self) -> Vec<Vec<u64>> {
        self.outputs
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path).unwrap_or_default();
                bytes
                    .chunks_exact(8)
                    .map(|chunk| u64::from_le_bytes(chunk.try_into().unwrap()))
                    .collect()
            })
            .collect()
    }

    fn popped_count(&self) -> usize {
        self.outputs
            .iter()
            .map(|path| std::fs::metadata(path).map_or(0, |m| m.len() as usize / 8))
            .sum()
    }

    /// The checks every scenario ends with. `gaps_popped` says whether a gap seq may be
    /// popped (a random kill may land after the push returned) or never (a failpoint kill
    /// inside the push). Returns the number of acknowledged items nobody reported popping.
    fn check(&self, gaps_popped: bool) -> u64 {
        let acked = self.acked.snapshot();
        assert!(
            acked.iter().all(|&a| a == self.per_producer),
            "every producer finished: {acked:?}"
        );
        let mut seen: HashMap<u64, u32> = HashMap::new();
        for (incarnation, items) in self.popped().iter().enumerate() {
            let mut last: Vec<Option<u64>> = vec![None; PRODUCERS];
            for &popped in items {
                let (producer, seq) = split(popped);
                assert!(
                    producer < PRODUCERS && seq < self.per_producer,
                    "popped a foreign item {popped:#x}"
                );
                let previous = &mut last[producer];
                assert!(
                    previous.is_none_or(|p| p < seq),
                    "consumer {incarnation}: producer {producer}'s item {seq} popped after {previous:?}"
                );
                *previous = Some(seq);
                *seen.entry(popped).or_default() += 1;
            }
        }
        let duplicates: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
        assert!(duplicates.is_empty(), "popped twice: {duplicates:x?}");
        let mut missing = Vec::new();
        for producer in 0..PRODUCERS {
            for seq in 0..self.per_producer {
                let gap = self.gaps[producer].contains(&seq);
                let popped = seen.contains_key(&item(producer, seq));
                if gap {
                    assert!(
                        gaps_popped || !popped,
                        "producer {producer}'s item {seq} was popped, but its push never returned"
                    );
                } else if !popped {
                    missing.push(item(producer, seq));
                }
            }
        }
        assert!(
            self.queue.is_empty(),
            "queue left with {} items",
            self.queue.len()
        );
        eprintln!(
            "popped {} items, {} acknowledged ones missing {missing:x?}, lost {}, skipped {}, gaps {:?}, in {:?}",
            seen.len(),
            missing.len(),
            self.queue.lost(),
            self.queue.skipped(),
            self.gaps,
            self.started.elapsed()
        );
        missing.len() as u64
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        for proc in self
            .producers
            .iter_mut()
            .chain(&mut self.consumers)
            .flatten()
        {
            let _ = proc.child.kill();
            let _ = proc.child.wait();
        }
        for path in &self.outputs {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[test]
fn three_producers_three_consumers_pop_every_item_once_in_producer_order() {
    let mut scenario = Scenario::new("plain", 20_000);
    for index in 0..CONSUMERS {
        scenario.start_consumer(index, &[]);
    }
    for id in 0..PRODUCERS {
        scenario.start_producer(id, &[]);
    }
    assert_eq!(scenario.finish(), (0, 0), "nobody died");
    assert_eq!(scenario.check(false), 0, "every item popped");
    assert_eq!(scenario.popped_count(), PRODUCERS * 20_000);
    assert_eq!((scenario.queue.lost(), scenario.queue.skipped()), (0, 0));
}

#[test]
fn sigkill_at_the_queue_failpoints_loses_only_what_the_guarantees_allow() {
    let mut scenario = Scenario::new("failpoints", 20_000);
    // Consumers 0 and 1 die holding a claimed element: each loses exactly that element.
    scenario.start_consumer(0, &[("SHMARENA_KILL_AT", "queue::pop_after_claim:300")]);
    scenario.start_consumer(1, &[("SHMARENA_KILL_AT", "queue::pop_after_claim:1000")]);
    scenario.start_consumer(2, &[]);
    // Producers 0 and 1 die inside a push that never returned: its item must not appear.
    scenario.start_producer(0, &[("SHMARENA_KILL_AT", "queue::push_after_claim:500")]);
    scenario.start_producer(1, &[("SHMARENA_KILL_AT", "queue::push_before_publish:700")]);
    scenario.start_producer(2, &[]);
    let (producer_deaths, consumer_deaths) = scenario.finish();
    assert_eq!((producer_deaths, consumer_deaths), (2, 2));
    assert_eq!(scenario.gaps, vec![vec![499], vec![699], vec![]]);
    let missing = scenario.check(false);
    assert_eq!(
        scenario.queue.lost(),
        2,
        "one element lost per consumer death"
    );
    assert_eq!(missing, 2, "exactly the lost elements are missing");
    assert_eq!(
        scenario.queue.skipped(),
        2,
        "one push skipped per producer death"
    );
}

#[test]
fn unbounded_three_producers_three_consumers_pop_every_item_once_in_producer_order() {
    let mut scenario = Scenario::unbounded("unbounded-plain", 20_000);
    // Producers first: the queue fills and links rings before the consumers cross them.
    for id in 0..PRODUCERS {
        scenario.start_producer(id, &[]);
    }
    std::thread::sleep(Duration::from_millis(20));
    for index in 0..CONSUMERS {
        scenario.start_consumer(index, &[]);
    }
    assert_eq!(scenario.finish(), (0, 0), "nobody died");
    assert_eq!(scenario.check(false), 0, "every item popped");
    assert_eq!(scenario.popped_count(), PRODUCERS * 20_000);
    assert_eq!((scenario.queue.lost(), scenario.queue.skipped()), (0, 0));
}

#[test]
fn unbounded_sigkill_at_the_failpoints_loses_only_what_the_guarantees_allow() {
    let mut scenario = Scenario::unbounded("unbounded-failpoints", 20_000);
    // Producer 1 alone fills the first ring (4 slots) and dies on its fifth push, between
    // making the next ring and linking it: the ring leaks, nothing is lost.
    scenario.start_producer(1, &[("SHMARENA_KILL_AT", "unbounded_queue::before_link:1")]);
    let mut deaths = (0, 0);
    while deaths.0 == 0 {
        deaths.0 += scenario.reap().0;
        scenario.check_deadline("waiting for producer 1 to die");
    }
    assert_eq!(scenario.gaps[1], vec![4]);
    // Producer 0 dies inside a push that never returned: its item must not appear.
    scenario.start_producer(0, &[("SHMARENA_KILL_AT", "queue::push_before_publish:700")]);
    scenario.start_producer(2, &[]);
    while scenario.producers.iter().any(Option::is_some) {
        deaths.0 += scenario.reap().0;
        scenario.check_deadline("waiting for the producers");
    }
    // The queue holds all of it in a dozen rings. Consumer 1 alone drains the first and
    // dies moving on from it, before retiring it: nothing lost. Then consumer 0 dies
    // holding a claimed element: that one is lost.
    scenario.start_consumer(
        1,
        &[("SHMARENA_KILL_AT", "unbounded_queue::before_unlink:1")],
    );
    while deaths.1 == 0 {
        deaths.1 += scenario.reap().1;
        scenario.check_deadline("waiting for consumer 1 to die");
    }
    scenario.start_consumer(0, &[("SHMARENA_KILL_AT", "queue::pop_after_claim:300")]);
    scenario.start_consumer(2, &[]);
    let (producer_deaths, consumer_deaths) = scenario.finish();
    assert_eq!(
        (deaths.0 + producer_deaths, deaths.1 + consumer_deaths),
        (2, 2)
    );
    assert_eq!(scenario.gaps, vec![vec![699], vec![4], vec![]]);
    let missing = scenario.check(false);
    assert_eq!(
        missing, 1,
        "exactly the element of the consumer killed holding it"
    );
    // (`lost` counts an element when a push takes its slot over: in a ring drained and
    // left behind that never happens.)
    assert!(scenario.queue.lost() <= 1);
    assert_eq!(scenario.queue.skipped(), 1, "one push skipped");
}

#[test]
fn unbounded_random_sigkill_and_sigstop_lose_no_acknowledged_item() {
    random_kills(Scenario::unbounded("unbounded-random", 100_000));
}

/// xorshift64: the test's pseudo-random choices, repeatable from the seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn random_sigkill_and_sigstop_of_producers_and_consumers_lose_no_acknowledged_item() {
    random_kills(Scenario::new("random", 100_000));
}

fn random_kills(mut scenario: Scenario) {
    for index in 0..CONSUMERS {
        scenario.start_consumer(index, &[]);
    }
    for id in 0..PRODUCERS {
        scenario.start_producer(id, &[]);
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let (mut producer_kills, mut consumer_kills, mut stops) = (0u64, 0u64, 0u64);
    for _ in 0..40 {
        std::thread::sleep(Duration::from_micros(500 + next(&mut seed) % 5000));
        let (p, c) = scenario.reap();
        assert_eq!((p, c), (0, 0), "only the test kills here");
        let victim = next(&mut seed) as usize % (PRODUCERS + CONSUMERS);
        let slot = if victim < PRODUCERS {
            &mut scenario.producers[victim]
        } else {
            &mut scenario.consumers[victim - PRODUCERS]
        };
        let Some(proc) = slot.as_mut() else {
            continue; // a producer that finished
        };
        let pid = proc.child.id() as libc::pid_t;
        if next(&mut seed) % 5 < 1 {
            // Freeze it wherever it is (maybe between claim and publish), then resume.
            // SAFETY: signals to our own child, which is not reaped yet.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            std::thread::sleep(Duration::from_millis(2 + next(&mut seed) % 20));
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGCONT) };
            stops += 1;
            continue;
        }
        proc.child.kill().unwrap();
        let status = proc.child.wait().unwrap();
        if status.success() {
            *slot = None; // finished just before the kill
            continue;
        }
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        if victim < PRODUCERS {
            let Role::Producer { from, .. } = proc.role else {
                unreachable!()
            };
            producer_kills += 1;
            scenario.restart_producer(victim, from);
        } else {
            consumer_kills += 1;
            scenario.start_consumer(victim - PRODUCERS, &[]);
        }
    }
    assert_eq!(scenario.finish(), (0, 0), "only the test kills");
    let missing = scenario.check(true);
    let (lost, skipped) = (scenario.queue.lost(), scenario.queue.skipped());
    eprintln!(
        "{producer_kills} producer kills, {consumer_kills} consumer kills, {stops} stops: \
         {missing} missing, lost {lost}, skipped {skipped}"
    );
    assert!(producer_kills + consumer_kills > 0);
    // A consumer killed inside pop loses its claimed element (counted in lost); one killed
    // after pop returned loses the element it had not written yet. Either way, one per kill.
    assert!(
        missing <= consumer_kills,
        "{missing} acknowledged items missing after {consumer_kills} consumer kills"
    );
    assert!(
        lost <= consumer_kills,
        "lost {lost} > {consumer_kills} consumer kills"
    );
    assert!(
        skipped <= producer_kills,
        "skipped {skipped} > {producer_kills} producer kills"
    );
}

/// The state letter of /proc/<pid>/stat ('T' when stopped).
fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.chars().next().unwrap()
}

#[test]
fn a_producer_frozen_between_claim_and_publish_delays_only_until_it_resumes() {
    let mut scenario = Scenario::new("sigstop", 20_000);
    for index in 0..CONSUMERS {
        scenario.start_consumer(index, &[]);
    }
    // Producer 0 stops itself right after claiming the slot of its 1000th push.
    scenario.start_producer(0, &[("SHMARENA_STOP_AT", "queue::push_after_claim:1000")]);
    scenario.start_producer(1, &[]);
    scenario.start_producer(2, &[]);
    let pid = scenario.producers[0].as_ref().unwrap().child.id();
    while proc_state(pid) != 'T' {
        scenario.check_deadline("waiting for producer 0 to stop itself");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        scenario.acked.get(0).unwrap(),
        999,
        "stopped inside push 1000"
    );
    // Everything pushed before the frozen slot is popped; then the consumers wait at that
    // slot (FIFO: nothing behind it comes out), the other producers fill the queue and
    // wait for room. Nobody dies or spins out: they all just wait.
    let mut settled = Instant::now();
    let mut last = (usize::MAX, Vec::new());
    while settled.elapsed() < Duration::from_millis(300) {
        let now = (scenario.popped_count(), scenario.acked.snapshot());
        if now != last {
            last = now;
            settled = Instant::now();
        }
        scenario.check_deadline("waiting for traffic to settle around the frozen producer");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (popped_while_frozen, acked_while_frozen) = last;
    eprintln!(
        "frozen: {popped_while_frozen} popped, acked {acked_while_frozen:?}, len {}",
        scenario.queue.len()
    );
    assert_eq!(scenario.queue.len() as u64, CAPACITY, "the queue filled up");
    assert!(
        popped_while_frozen >= 999,
        "producer 0's earlier items came out"
    );
    assert!(
        acked_while_frozen[1] + acked_while_frozen[2] > 0,
        "the other producers pushed meanwhile"
    );
    assert_eq!(scenario.reap(), (0, 0), "nobody died while it was frozen");
    // SAFETY: a signal to our own child, which is not reaped yet.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
    assert_eq!(scenario.finish(), (0, 0));
    assert_eq!(scenario.check(false), 0, "every item popped once");
    assert_eq!((scenario.queue.lost(), scenario.queue.skipped()), (0, 0));
}

/// A producer killed right after claiming the slot at `tail`, before it moved `tail` on,
/// on an otherwise idle queue: a consumer skips its slot (moving `head` past it), and the
/// next push must still find room, not a `tail` stuck behind a slot of the next lap.
#[test]
fn a_push_after_a_skipped_claim_of_a_dead_producer_finds_room() {
    let mut scenario = Scenario::new("skipped-claim", 1);
    scenario.start_producer(0, &[("SHMARENA_KILL_AT", "queue::push_after_claim:1")]);
    let status = scenario.producers[0].take().unwrap().child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // The consumer finds the dead claim at head and skips it.
    let queue = scenario.queue.bounded();
    assert_eq!(queue.pop_timeout(Duration::from_millis(50)), None);
    assert_eq!(queue.skipped(), 1);
    queue
        .try_push(item(1, 0))
        .expect("a push after the skipped claim finds room");
    assert_eq!(queue.try_pop(), Some(item(1, 0)));
}

/// Two real deaths in a row on a capacity-2 queue: a consumer SIGKILLed right after
/// claiming ticket 0 (its element still in the slot, the head word naming it), then a
/// producer SIGKILLed right after claiming ticket 1 (the tail word naming it). A pop skips
/// the dead push and moves head on, and the queue stays usable: the next push frees the
/// dead consumer's slot (its element lost) instead of finding the queue full forever.
#[test]
fn a_dead_pop_then_a_dead_push_leave_the_queue_usable() {
    let temp = TempRegion::new("queue-two-deaths");
    let region = Region::create(&temp.path, 1 << 20).unwrap();
    let queue = region.queue::<u64>("q", 2).unwrap();
    region.array_zeroed::<u64>("acked", PRODUCERS).unwrap();
    region.event("stop").unwrap();
    queue.try_push(4).unwrap();
    let out = std::env::temp_dir().join(format!("shmarena-two-deaths-{}", std::process::id()));
    let consumer = spawn_with_env(
        &["queue-consume", temp.arg(), out.to_str().unwrap()],
        &[("SHMARENA_KILL_AT", "queue::pop_after_claim:1")],
    );
    let status = consumer.wait_with_output().unwrap().status;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the consumer died at its claim"
    );
    let producer = spawn_with_env(
        &["queue-produce", temp.arg(), "0", "0", "1"],
        &[("SHMARENA_KILL_AT", "queue::push_after_claim:1")],
    );
    let status = producer.wait_with_output().unwrap().status;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the producer died at its claim"
    );
    let _ = std::fs::remove_file(&out);
    assert_eq!(
        queue.try_pop(),
        None,
        "the dead push is skipped, nothing is ready"
    );
    queue
        .try_push(7)
        .expect("the dead consumer's slot is freed, not full forever");
    assert_eq!(queue.try_pop(), Some(7));
    assert_eq!((queue.lost(), queue.skipped()), (1, 1));
    queue.try_push(8).unwrap();
    assert_eq!(queue.try_pop(), Some(8));
}

/// The sleeping-poppers count of the queue "q" (bounded or unbounded), read from the
/// mapping.
fn pop_sleepers(region: &Region, unbounded: bool) -> u32 {
    use shmarena::engine::Memory;
    let body = region.find_object("q").unwrap().unwrap().offset;
    let offset = if unbounded {
        shmarena::unbounded_queue::layout::POP_SLEEPERS
    } else {
        shmarena::queue::layout::POP_SLEEPERS
    };
    // The count is the high half of the word at offset - 4 (little-endian).
    let word = region.memory().word(body + offset - 4).unwrap();
    (word.load(std::sync::atomic::Ordering::Relaxed) >> 32) as u32
}

/// A consumer SIGKILLed while asleep in a pop leaves its sleeper count behind; pushes then
/// find the wake-up they make wakes nobody, and soon clear the dead sleeper's count (its
/// registry entry names it), so they stop paying a system call each. Bounded and
/// unbounded queues.
#[test]
fn a_consumer_killed_asleep_stops_costing_the_producers() {
    for unbounded in [false, true] {
        let temp = TempRegion::new(&format!("queue-asleep-{unbounded}"));
        let region = Region::create(&temp.path, 4 << 20).unwrap();
        let queue = if unbounded {
            UnderTest::Unbounded(ByteUnboundedQueue::get_or_create(&region, "q", 4, 8).unwrap())
        } else {
            UnderTest::Bounded(region.queue::<u64>("q", CAPACITY).unwrap())
        };
        region.event("stop").unwrap();
        let out = std::env::temp_dir().join(format!("shmarena-asleep-{}", std::process::id()));
        // Kill the consumer while its count is up (it sleeps nearly all the time; a kill
        // that lands between two of its 20 ms waits is tried again).
        let mut leaked = false;
        for _ in 0..20 {
            let mut consumer = spawn(&["queue-consume", temp.arg(), out.to_str().unwrap()]);
            let began = Instant::now();
            while pop_sleepers(&region, unbounded) == 0 {
                assert!(
                    began.elapsed() < SCENARIO_TIMEOUT,
                    "the consumer never slept"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            consumer.kill().unwrap();
            consumer.wait().unwrap();
            if pop_sleepers(&region, unbounded) == 1 {
                leaked = true;
                break;
            }
        }
        let _ = std::fs::remove_file(&out);
        assert!(leaked, "no kill landed while the consumer slept");
        for i in 0..2 * shmarena::sleepers::REAP_EVERY {
            match &queue {
                UnderTest::Bounded(queue) => {
                    queue.try_push(i).unwrap();
                    assert_eq!(queue.try_pop(), Some(i));
                }
                UnderTest::Unbounded(queue) => {
                    queue.push(&i.to_le_bytes()).unwrap();
                    assert_eq!(queue.try_pop().unwrap(), Some(i.to_le_bytes().to_vec()));
                }
            }
        }
        assert_eq!(
            pop_sleepers(&region, unbounded),
            0,
            "the dead sleeper's count was cleared (unbounded: {unbounded})"
        );
    }
}

/// An unbounded queue's producer killed while it makes the next ring (the arena has handed
/// the ring out, it is recorded and not linked) leaks nothing: the next producer to make a
/// ring gives the dead maker's back first. After the queue drained, the bytes in use equal
/// those of a run whose producer died just before making its ring.
#[test]
fn an_unbounded_producer_killed_while_making_a_ring_leaks_nothing() {
    let used_after_death_at = |point: &str| {
        let temp = TempRegion::new(&format!("queue-make-{}", point.replace("::", "-")));
        let region = Region::create(&temp.path, 64 << 20).unwrap();
        let queue = ByteUnboundedQueue::get_or_create(&region, "q", 4, 8).unwrap();
        region.array_zeroed::<u64>("acked", PRODUCERS).unwrap();
        // Fills the first ring (4 slots) and dies making the second.
        let dying = spawn_with_env(
            &["queue-produce", temp.arg(), "0", "0", "100"],
            &[("SHMARENA_KILL_AT", &format!("{point}:1"))],
        );
        let status = dying.wait_with_output().unwrap().status;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}");
        // A check writes nothing (the ring stays out); opening the queue gives a dead
        // producer's ring back (no push needed).
        drop(region.pin().unwrap()); // this slot's pin stripes (the check pins)
        let before_check = region.arena_stats().unwrap().used;
        drop(shmarena::check::check_region(&region));
        assert_eq!(region.arena_stats().unwrap().used, before_check, "{point}");
        drop(ByteUnboundedQueue::open(&region, "q").unwrap());
        let at_open = region.arena_stats().unwrap().used;
        run_ok(&["queue-produce", temp.arg(), "1", "0", "1000"]);
        let mut popped = 0;
        while queue.try_pop().unwrap().is_some() {
            popped += 1;
        }
        assert_eq!(popped, 4 + 1000, "{point}");
        // Empty polls put the first ring back; the later rings are retired and freed.
        for _ in 0..300 {
            assert_eq!(queue.try_pop().unwrap(), None);
        }
        region.reclaim().unwrap();
        (at_open, region.arena_stats().unwrap().used)
    };
    let control = used_after_death_at("unbounded_queue::before_make");
    assert_eq!(
        used_after_death_at("unbounded_queue::before_link"),
        control,
        "bytes in use after a death between making a ring and linking it"
    );
}
