//! Per-life records of `shmarena stress` and the checks of linearizability under kills
//! built on them (what each check proves is in the parent module's docs).
//!
//! ```text
//! stress.lives     LIFE_CAP records of LIFE_WORDS words, one per worker life (the
//!                  supervisor hands out life ids, one per spawn, never reused):
//!   0 OWNER        1 << 63 | worker index << 32 | participant owner id (written at start)
//!   1 OP           in flight: 1 bit | op seq: 23 | target: 4 | verb: 4 | key: 32
//!   2 VALUE        the unique value the op writes (0: none)
//!   3 START        the clock before the op
//!   4 AUX          results list: its length before the push
//!   5 GONE         !clock: the earliest end of an observation that began after this life's
//!                  death and did not see its in-flight write in place (0: none)
//!   6 GONE_VALUE   the value GONE is about (the in-flight write's)
//!   7 OBIT         1 + the next life id the supervisor hands out, written when it reaps
//!                  this life (0: not reaped yet)
//!   8 FLAGS        checks already counted against this life, one bit each
//! stress.current   per worker: 1 + the id of its current life
//! stress.watch     per (map, shared key) and (wide map, shared key): VALUE watched,
//!                  REMOVED (the watched value, once a live op reported taking it out)
//! stress.clock     the logical clock: every timestamp is one fetch_add (SeqCst)
//! stress.frontier  1 + the largest life id of a queue element whose pop has returned, per
//!                  queue (element 0: "queue", 1: "uqueue")
//! stress.violations  per check, how many were counted; stress.vlog: the first ones
//! ```
//!
//! A life writes OP last (after VALUE, START and AUX) and clears its in-flight bit only
//! after everything the op reports is recorded, so a life killed at any instruction leaves
//! OP in flight exactly when an op may have been cut short. Once its process is dead the
//! record never changes again: readers of a dead life's record check the death first, then
//! re-read the record, and trust it only if nothing moved.

use std::sync::atomic::{fence, Ordering};

use shmarena::{Array, AtomicScalar, OwnerId, Region, RegionExt, Value};

/// Bit 63 of every tracked value: a value with it was written by exactly one operation.
const TRACKED: u64 = 1 << 63;
/// Lives with a record; later lives still run, unchecked.
pub const LIFE_CAP: u64 = 1 << 17;
const LIFE_WORDS: u64 = 9;
const OWNER: u64 = 0;
const OP: u64 = 1;
const VALUE: u64 = 2;
const START: u64 = 3;
const AUX: u64 = 4;
const GONE: u64 = 5;
const GONE_VALUE: u64 = 6;
const OBIT: u64 = 7;
const FLAGS: u64 = 8;

const IN_FLIGHT: u64 = 1 << 63;
const OWNER_SET: u64 = 1 << 63;
const OP_SEQ_MASK: u64 = (1 << 23) - 1;

/// Shared keys of the maps: every worker writes, removes and reads all of them.
pub const SHARED_KEYS: u64 = 32;
/// The first shared key (far from the worker-owned and counting keys).
pub const SHARED_KEY_BASE: u64 = 1 << 32;
/// Indices of the list every worker sets and reads (pushed by the supervisor).
pub const LIST_SLOTS: u64 = 16;

const VLOG_CAP: u64 = 32;
const VLOG_WORDS: u64 = 5;
/// Observer id of the supervisor in violation records.
const SUPERVISOR: u64 = u64::MAX;

/// The value op `seq` of life `life` writes: unique to that one operation.
pub fn unique(life: u64, seq: u64) -> u64 {
    TRACKED | (life & 0x7fff_ffff) << 32 | (seq & 0xffff_ffff)
}

/// The life that wrote a tracked value.
pub fn life_of(value: u64) -> Option<u64> {
    (value & TRACKED != 0).then_some((value >> 32) & 0x7fff_ffff)
}

/// The structure an operation works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Shared keys of the map "map" (one-word values).
    Map = 1,
    /// Shared keys of the map "wide" (three-word values, two copies).
    Wide = 2,
    /// Indices of the list "shared.list" (two-word elements, two copies).
    List = 3,
    /// The queues "queue" (key 0) and "uqueue" (key 1).
    Queue = 4,
    /// The append-only list "results".
    Results = 5,
}

impl Target {
    fn from_bits(bits: u64) -> Option<Self> {
        [
            Self::Map,
            Self::Wide,
            Self::List,
            Self::Queue,
            Self::Results,
        ]
        .into_iter()
        .find(|t| *t as u64 == bits)
    }

    /// Keys (or indices) of this target that workers share.
    pub fn keys(self) -> u64 {
        match self {
            Self::Map | Self::Wide => SHARED_KEYS,
            Self::List => LIST_SLOTS,
            Self::Queue | Self::Results => 1,
        }
    }
}

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// Reads a key.
    Get = 1,
    /// Removes a key.
    Remove = 2,
    /// Inserts or replaces.
    Insert = 3,
    /// Inserts if absent.
    TryInsert = 4,
    /// Compare-exchange of a value.
    Cas = 5,
    /// Replaces a list element.
    Set = 6,
    /// Appends (queue, list).
    Push = 7,
    /// Takes the oldest queue element.
    Pop = 8,
}

impl Verb {
    fn from_bits(bits: u64) -> Option<Self> {
        [
            Self::Get,
            Self::Remove,
            Self::Insert,
            Self::TryInsert,
            Self::Cas,
            Self::Set,
            Self::Push,
            Self::Pop,
        ]
        .into_iter()
        .find(|v| *v as u64 == bits)
    }

    /// Whether the operation writes its own unique value.
    fn writes(self) -> bool {
        matches!(
            self,
            Self::Insert | Self::TryInsert | Self::Cas | Self::Set | Self::Push
        )
    }

    /// Whether the operation can take a map value out (remove or replace it).
    fn takes_out(self) -> bool {
        matches!(self, Self::Remove | Self::Insert | Self::Cas)
    }
}

/// The checks of linearizability under kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A dead write on a shared map key took effect after its death.
    MapWrite,
    /// The same on the wide map.
    WideWrite,
    /// A dead set of a shared list index took effect after its death.
    ListSet,
    /// A dead push onto the results list appeared after its death.
    ResultsPush,
    /// A dead queue push came out after an element pushed after its death.
    QueuePush,
    /// A dead remove on a shared map key took effect after its death.
    MapRemove,
    /// The same on the wide map.
    WideRemove,
}

/// Every check, in the order of the summary.
pub const CHECKS: [Check; 7] = [
    Check::MapWrite,
    Check::WideWrite,
    Check::ListSet,
    Check::ResultsPush,
    Check::QueuePush,
    Check::MapRemove,
    Check::WideRemove,
];

impl Check {
    /// The check's name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Self::MapWrite => "late map write",
            Self::WideWrite => "late wide write",
            Self::ListSet => "late list set",
            Self::ResultsPush => "late list push",
            Self::QueuePush => "late queue push",
            Self::MapRemove => "late map remove",
            Self::WideRemove => "late wide remove",
        }
    }

    fn bit(self) -> u64 {
        1 << self as u64
    }

    fn late_write(target: Target) -> Self {
        match target {
            Target::Map => Self::MapWrite,
            Target::Wide => Self::WideWrite,
            Target::List => Self::ListSet,
            Target::Queue => Self::QueuePush,
            Target::Results => Self::ResultsPush,
        }
    }

    fn from_bits(bits: u64) -> Option<Self> {
        CHECKS.into_iter().find(|c| *c as u64 == bits)
    }
}

fn op_word(seq: u64, target: Target, verb: Verb, key: u64) -> u64 {
    IN_FLIGHT | (seq & OP_SEQ_MASK) << 40 | (target as u64) << 36 | (verb as u64) << 32 | key
}

/// (target, verb, key) of an OP word.
fn decode(op: u64) -> Option<(Target, Verb, u64)> {
    Some((
        Target::from_bits((op >> 36) & 0xf)?,
        Verb::from_bits((op >> 32) & 0xf)?,
        op & 0xffff_ffff,
    ))
}

/// The shared records, as every process sees them.
#[derive(Clone)]
pub struct Records {
    region: Region,
    clock: Value<u64>,
    lives: Array<u64>,
    current: Array<u64>,
    watch: Array<u64>,
    frontier: Array<u64>,
    violations: Array<u64>,
    vlog: Array<u64>,
    vlog_len: Value<u64>,
}

impl Records {
    /// Creates the records of a run with `workers` workers.
    pub fn create(region: &Region, workers: usize) -> Result<(), shmarena::Error> {
        region.value::<u64>("stress.clock", 0)?;
        region.array_zeroed::<u64>("stress.lives", (LIFE_CAP * LIFE_WORDS) as usize)?;
        region.array_zeroed::<u64>("stress.current", workers)?;
        region.array_zeroed::<u64>("stress.watch", (4 * SHARED_KEYS) as usize)?;
        region.array_zeroed::<u64>("stress.frontier", 2)?;
        region.array_zeroed::<u64>("stress.violations", CHECKS.len())?;
        region.array_zeroed::<u64>("stress.vlog", (VLOG_CAP * VLOG_WORDS) as usize)?;
        region.value::<u64>("stress.vlog_len", 0)?;
        Ok(())
    }

    /// Opens the records.
    pub fn open(region: &Region) -> Result<Self, shmarena::Error> {
        Ok(Self {
            region: region.clone(),
            clock: region.open_value("stress.clock")?,
            lives: region.open_array("stress.lives")?,
            current: region.open_array("stress.current")?,
            watch: region.open_array("stress.watch")?,
            frontier: region.open_array("stress.frontier")?,
            violations: region.open_array("stress.violations")?,
            vlog: region.open_array("stress.vlog")?,
            vlog_len: region.open_value("stress.vlog_len")?,
        })
    }

    /// A timestamp: later than every timestamp taken before it returned.
    pub fn tick(&self) -> u64 {
        self.clock.fetch_add(1) + 1
    }

    fn cell(&self, life: u64, word: u64) -> Option<&AtomicScalar<u64>> {
        if life >= LIFE_CAP {
            return None;
        }
        self.lives.at((life * LIFE_WORDS + word) as usize).ok()
    }

    fn load(&self, life: u64, word: u64) -> u64 {
        self.cell(life, word).map_or(0, AtomicScalar::load)
    }

    fn store(&self, life: u64, word: u64, value: u64) {
        if let Some(cell) = self.cell(life, word) {
            cell.store(value);
        }
    }

    fn current_life(&self, worker: usize) -> Option<u64> {
        self.current.get(worker).ok()?.checked_sub(1)
    }

    fn watch_cell(&self, target: Target, key: u64, word: u64) -> Option<&AtomicScalar<u64>> {
        let base = match target {
            Target::Map => 0,
            Target::Wide => 2 * SHARED_KEYS,
            _ => return None,
        };
        self.watch.at((base + 2 * key + word) as usize).ok()
    }

    /// An observation of `seen` on `(target, key)` by an operation that began at `start`
    /// (taken before it started): a violation if `seen` is the value of a dead write that
    /// an observation finished before `start` saw not in place.
    pub fn check_seen(&self, target: Target, key: u64, seen: u64, start: u64, observer: u64) {
        let Some(life) = life_of(seen) else {
            return;
        };
        let gone = self.load(life, GONE);
        // GONE_VALUE is stored before GONE by every writer (SeqCst), all with one value.
        if gone != 0 && !gone < start && self.load(life, GONE_VALUE) == seen {
            self.report(Check::late_write(target), life, key, seen, observer);
        }
    }

    /// Records that an observation which began after `life` died and ended at `end` did
    /// not see `life`'s in-flight write of `value` in place: from then on, `value` must
    /// never be seen again.
    fn mark_gone(&self, life: u64, value: u64, end: u64) {
        self.store(life, GONE_VALUE, value);
        if let Some(cell) = self.cell(life, GONE) {
            cell.fetch_max(!end); // the earliest end wins
        }
    }

    /// Counts a violation of `check` blamed on `life` (once per life and check).
    fn report(&self, check: Check, life: u64, key: u64, value: u64, observer: u64) {
        if let Some(flags) = self.cell(life, FLAGS) {
            if flags.fetch_or(check.bit()) & check.bit() != 0 {
                return;
            }
        }
        self.count(check, life, key, value, observer);
    }

    fn count(&self, check: Check, life: u64, key: u64, value: u64, observer: u64) {
        if let Ok(cell) = self.violations.at(check as usize) {
            cell.fetch_add(1);
        }
        let entry = self.vlog_len.fetch_add(1);
        if entry < VLOG_CAP {
            for (i, word) in [check as u64, life, key, value, observer]
                .into_iter()
                .enumerate()
            {
                let _ = self.vlog.set((entry * VLOG_WORDS) as usize + i, word);
            }
        }
    }

    /// Violations counted per check, in the order of [`CHECKS`].
    pub fn counts(&self) -> Vec<u64> {
        self.violations.snapshot()
    }

    /// Descriptions of the first violations counted.
    pub fn details(&self) -> Vec<String> {
        let n = self.vlog_len.load().min(VLOG_CAP);
        (0..n)
            .filter_map(|entry| {
                let at = |i: u64| self.vlog.get((entry * VLOG_WORDS + i) as usize).ok();
                let check = Check::from_bits(at(0)?)?;
                let (life, key, value, observer) = (at(1)?, at(2)?, at(3)?, at(4)?);
                let by = if observer == SUPERVISOR {
                    "the supervisor".to_string()
                } else {
                    format!("life {observer}")
                };
                Some(match check {
                    Check::MapRemove | Check::WideRemove => format!(
                        "{}: key {key} held {value:#x} after a remove died on it, then lost it with no live or later-dead remover (seen by {by})",
                        check.name()
                    ),
                    Check::QueuePush => format!(
                        "{}: life {life} died pushing {value:#x}; {by} popped it after an element pushed after that death had been popped",
                        check.name()
                    ),
                    _ => format!(
                        "{}: life {life} died writing {value:#x} at key {key}; the value was seen absent after the death, then seen by {by}",
                        check.name()
                    ),
                })
            })
            .collect()
    }
}

/// An operation in flight, as its worker recorded it.
pub struct Op {
    target: Target,
    key: u64,
    start: u64,
    word: u64,
    /// Dead lives whose in-flight write on the same key this op can see or not see.
    candidates: Vec<(u64, u64)>,
}

/// A worker life's side of the records.
pub struct Tracker {
    records: Records,
    life: u64,
    index: usize,
    workers: usize,
    values: u64,
    ops: u64,
    /// Owner ids seen dead (a dead owner never comes back).
    dead: Vec<u32>,
    /// Per target and key, the value this life saw last (what its compare-exchanges expect).
    last_seen: Vec<u64>,
}

impl Tracker {
    /// The records of life `life`, worker `index` of `workers`.
    pub fn new(
        region: &Region,
        index: usize,
        life: u64,
        workers: usize,
    ) -> Result<Self, shmarena::Error> {
        let records = Records::open(region)?;
        let owner = u64::from(region.participant_id().bits());
        records.store(life, OWNER, OWNER_SET | (index as u64) << 32 | owner);
        Ok(Self {
            records,
            life,
            index,
            workers,
            values: 0,
            ops: 0,
            dead: Vec::new(),
            last_seen: vec![0; (3 * SHARED_KEYS) as usize],
        })
    }

    /// A value unique to one operation of this life.
    pub fn next_value(&mut self) -> u64 {
        self.values += 1;
        unique(self.life, self.values)
    }

    /// The value this life saw last at `(target, key)` (0: none).
    pub fn last_seen(&self, target: Target, key: u64) -> u64 {
        self.last_seen
            .get(((target as u64 - 1) * SHARED_KEYS + key) as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Records the intent of an operation before it starts.
    pub fn begin(&mut self, target: Target, verb: Verb, key: u64, value: u64, aux: u64) -> Op {
        let candidates = match target {
            Target::Map | Target::Wide | Target::List => self.dead_writers(target, key),
            Target::Queue | Target::Results => Vec::new(),
        };
        let start = self.records.tick();
        self.ops += 1;
        let word = op_word(self.ops, target, verb, key);
        self.records.store(self.life, VALUE, value);
        self.records.store(self.life, START, start);
        self.records.store(self.life, AUX, aux);
        self.records.store(self.life, OP, word);
        Op {
            target,
            key,
            start,
            word,
            candidates,
        }
    }

    /// Lives of other workers that died with a write of `(target, key)` in flight, with
    /// the value each was writing. Each death is seen before the op begins.
    fn dead_writers(&mut self, target: Target, key: u64) -> Vec<(u64, u64)> {
        let mut found = Vec::new();
        let me = self.index;
        for worker in (0..self.workers).filter(|&w| w != me) {
            let Some(life) = self.records.current_life(worker) else {
                continue;
            };
            let op = self.records.load(life, OP);
            let Some((t, verb, k)) = decode(op) else {
                continue;
            };
            if op & IN_FLIGHT == 0 || t != target || k != key || !verb.writes() {
                continue;
            }
            let value = self.records.load(life, VALUE);
            let owner = self.records.load(life, OWNER);
            let Some(id) = OwnerId::from_bits(owner as u32).filter(|_| owner & OWNER_SET != 0)
            else {
                continue;
            };
            if !self.is_dead(id) {
                continue;
            }
            // Dead now, so the record is final unless it moved before the death.
            if self.records.load(life, OP) == op && self.records.load(life, VALUE) == value {
                found.push((life, value));
            }
        }
        found
    }

    fn is_dead(&mut self, owner: OwnerId) -> bool {
        if self.dead.contains(&owner.bits()) {
            return true;
        }
        let dead = !self.records.region.is_alive(owner);
        if dead {
            self.dead.push(owner.bits());
        }
        dead
    }

    /// Records what the op saw at `(target, key)` when it took effect (`None`: absent).
    pub fn observed(&mut self, op: &Op, seen: Option<u64>) {
        let end = self.records.tick();
        if let Some(x) = seen {
            self.records
                .check_seen(op.target, op.key, x, op.start, self.life);
        }
        for &(life, value) in &op.candidates {
            if seen != Some(value) {
                self.records.mark_gone(life, value, end);
            }
        }
        if let Some(cell) = self
            .last_seen
            .get_mut(((op.target as u64 - 1) * SHARED_KEYS + op.key) as usize)
        {
            *cell = seen.unwrap_or(0);
        }
    }

    /// Reports that the op took `value` out of a map key (removed or replaced it).
    pub fn took_out(&self, op: &Op, value: u64) {
        // SeqCst fence: pairs with the supervisor's fence between arming a watch and
        // reading the key again; one of the two sees the other.
        fence(Ordering::SeqCst);
        let watched = self.records.watch_cell(op.target, op.key, 0);
        if watched.is_some_and(|cell| cell.load() == value) {
            if let Some(removed) = self.records.watch_cell(op.target, op.key, 1) {
                removed.store(value);
            }
        }
    }

    /// The frontier of queue `queue` (0 or 1): read before a pop starts.
    pub fn frontier(&self, queue: u64) -> u64 {
        self.records.frontier.get(queue as usize).unwrap_or(0)
    }

    /// Records an element popped from queue `queue`; `frontier` was read before the pop
    /// started.
    pub fn popped(&self, queue: u64, frontier: u64, element: u64) {
        check_popped(&self.records, queue, frontier, element, self.life);
    }

    /// Marks the op finished (everything it reports is recorded).
    pub fn end(&self, op: &Op) {
        self.records.store(self.life, OP, op.word & !IN_FLIGHT);
    }
}

/// The queue check of one element popped from queue `queue`, then that queue's frontier
/// moved past its life. (Per queue: FIFO order holds within one.)
fn check_popped(records: &Records, queue: u64, frontier: u64, element: u64, observer: u64) {
    let Some(life) = life_of(element) else {
        return;
    };
    let obit = records.load(life, OBIT);
    if obit != 0 {
        // `life` is dead and reaped; lives from `obit - 1` on started after its death.
        let op = records.load(life, OP);
        let pushing = op & IN_FLIGHT != 0
            && decode(op)
                .is_some_and(|(t, v, k)| t == Target::Queue && v == Verb::Push && k == queue)
            && records.load(life, VALUE) == element;
        if pushing && frontier > obit - 1 {
            records.report(Check::QueuePush, life, queue, element, observer);
        }
    }
    if let Ok(word) = records.frontier.at(queue as usize) {
        word.fetch_max(life + 1);
    }
}

/// A dead life's operation that was in flight, as the supervisor reaped it.
struct DeadOp {
    target: Target,
    verb: Verb,
    key: u64,
    start: u64,
    reaped: u64,
    life: u64,
}

/// In-flight operations at one moment: (worker, life, OP word).
type Pending = Vec<(usize, u64, u64)>;

enum Watch {
    Free,
    /// The key held `value` at `seen` (twice, around arming): a remove died on it before.
    Armed {
        value: u64,
        seen: u64,
    },
    /// `value` was gone at `gone`; waiting for the ops then in flight to report.
    Gone {
        value: u64,
        seen: u64,
        gone: u64,
        pending: Pending,
    },
    /// Released; reusable once the ops in flight then have finished.
    Draining {
        pending: Pending,
    },
}

/// A dead push onto the results list not found after the death.
struct ResultsGhost {
    value: u64,
    /// The list's length before the push.
    lo: u64,
}

/// Dead in-flight operations seen by the supervisor, per target.
#[derive(Default, Clone, Copy)]
pub struct Exercised {
    /// Deaths with a write (or push) in flight.
    pub dead_writes: u64,
    /// Of those, writes seen not in place after the death.
    pub seen_undone: u64,
    /// Deaths with a remove in flight.
    pub dead_removes: u64,
    /// Of those, removes whose key was watched (held a value after the death).
    pub watched: u64,
}

/// Handles of the structures the checks read.
pub struct Shared {
    /// The map "map".
    pub map: shmarena::HashMap<u64, u64>,
    /// The map "wide".
    pub wide: shmarena::HashMap<u64, [u64; 3]>,
    /// The list "shared.list".
    pub list: shmarena::List<[u64; 2]>,
    /// The list "results".
    pub results: shmarena::List<u64>,
}

/// A torn value read from a structure.
fn torn(what: &str, words: &[u64]) -> Box<dyn std::error::Error> {
    format!("torn {what} {words:x?}").into()
}

impl Shared {
    /// Opens (or creates) the structures.
    pub fn open(region: &Region, map_capacity: u64) -> Result<Self, shmarena::Error> {
        Ok(Self {
            map: region.hash_map("map", map_capacity)?,
            wide: region.hash_map("wide", map_capacity)?,
            list: region.open_list("shared.list")?,
            results: region.open_list("results")?,
        })
    }

    /// The value at a shared key (the first word of a wide value, checked untorn).
    pub fn read(
        &self,
        target: Target,
        key: u64,
    ) -> Result<Option<u64>, Box<dyn std::error::Error>> {
        Ok(match target {
            Target::Map => self.map.get(&(SHARED_KEY_BASE + key))?,
            Target::Wide => match self.wide.get(&(SHARED_KEY_BASE + key))? {
                Some(v) if v[1] != !v[0] || v[2] != v[0] => return Err(torn("wide value", &v)),
                v => v.map(|v| v[0]),
            },
            Target::List => match self.list.get(key as usize)? {
                Some(v) if v[1] != !v[0] => return Err(torn("list element", &v)),
                v => v.map(|v| v[0]),
            },
            Target::Queue | Target::Results => None,
        })
    }
}

/// The supervisor's side of the records.
pub struct Supervisor {
    records: Records,
    workers: usize,
    next_life: u64,
    dead_ops: Vec<DeadOp>,
    ghosts: Vec<ResultsGhost>,
    watches: Vec<Watch>,
    /// Watches armed, map and wide map.
    armed: [u64; 2],
}

impl Supervisor {
    /// The supervisor of a run with `workers` workers.
    pub fn new(region: &Region, workers: usize) -> Result<Self, shmarena::Error> {
        Ok(Self {
            records: Records::open(region)?,
            workers,
            next_life: 0,
            dead_ops: Vec::new(),
            ghosts: Vec::new(),
            watches: (0..2 * SHARED_KEYS).map(|_| Watch::Free).collect(),
            armed: [0; 2],
        })
    }

    /// The shared records.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// Lives handed out so far.
    pub fn lives(&self) -> u64 {
        self.next_life
    }

    /// Hands out the id of worker `worker`'s next life (before it is spawned).
    pub fn next_life(&mut self, worker: usize) -> u64 {
        let life = self.next_life;
        self.next_life += 1;
        let _ = self.records.current.set(worker, life + 1);
        life
    }

    /// Called once worker `worker`'s current life is known dead (waited for), before its
    /// next life is handed out: records its in-flight operation and observes its effect.
    pub fn reaped(
        &mut self,
        worker: usize,
        shared: &Shared,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let Some(life) = self.records.current_life(worker) else {
            return Ok(());
        };
        let reaped = self.records.tick();
        // Before any later life exists: lives from `next_life` on start after this death.
        self.records.store(life, OBIT, self.next_life + 1);
        let op = self.records.load(life, OP);
        let Some((target, verb, key)) = decode(op).filter(|_| op & IN_FLIGHT != 0) else {
            return Ok(());
        };
        let value = self.records.load(life, VALUE);
        self.dead_ops.push(DeadOp {
            target,
            verb,
            key,
            start: self.records.load(life, START),
            reaped,
            life,
        });
        match (target, verb) {
            (Target::Map | Target::Wide | Target::List, verb) if verb.writes() => {
                let start = self.records.tick();
                let seen = shared.read(target, key)?;
                let end = self.records.tick();
                if let Some(x) = seen {
                    self.records.check_seen(target, key, x, start, SUPERVISOR);
                }
                if seen != Some(value) {
                    self.records.mark_gone(life, value, end);
                }
            }
            (Target::Map | Target::Wide, Verb::Remove) => self.arm(target, key, shared)?,
            (Target::Results, Verb::Push) => {
                let lo = self.records.load(life, AUX);
                let hi = shared.results.len() as u64;
                if !Self::results_hold(shared, value, lo, hi)? {
                    self.ghosts.push(ResultsGhost { value, lo });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn results_hold(
        shared: &Shared,
        value: u64,
        lo: u64,
        hi: u64,
    ) -> Result<bool, shmarena::Error> {
        for index in lo..hi {
            if shared.results.get(index as usize)? == Some(value) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn watch_index(target: Target, key: u64) -> usize {
        (u64::from(target == Target::Wide) * SHARED_KEYS + key) as usize
    }

    /// Watches the value a dead remove left at `(target, key)`, if the key holds one.
    fn arm(
        &mut self,
        target: Target,
        key: u64,
        shared: &Shared,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let index = Self::watch_index(target, key);
        if !matches!(self.watches[index], Watch::Free) {
            return Ok(()); // one watch per key at a time
        }
        let Some(first) = shared.read(target, key)?.filter(|x| life_of(*x).is_some()) else {
            return Ok(());
        };
        let (Some(watched), Some(removed)) = (
            self.records.watch_cell(target, key, 0),
            self.records.watch_cell(target, key, 1),
        ) else {
            return Ok(());
        };
        removed.store(0);
        watched.store(first);
        // SeqCst fence: pairs with the one in `Tracker::took_out`. An op that takes
        // `first` out after the read below sees the watch and reports.
        fence(Ordering::SeqCst);
        let again = shared.read(target, key)?;
        let seen = self.records.tick();
        self.watches[index] = if again == Some(first) {
            self.armed[usize::from(target == Target::Wide)] += 1;
            Watch::Armed { value: first, seen }
        } else {
            watched.store(0);
            Watch::Draining {
                pending: self.in_flight(),
            }
        };
        Ok(())
    }

    /// Every worker's operation in flight now.
    fn in_flight(&self) -> Pending {
        (0..self.workers)
            .filter_map(|worker| {
                let life = self.records.current_life(worker)?;
                let op = self.records.load(life, OP);
                (op & IN_FLIGHT != 0).then_some((worker, life, op))
            })
            .collect()
    }

    /// Whether every operation of `pending` has finished (or its life ended).
    fn finished(&self, pending: &Pending) -> bool {
        pending.iter().all(|&(worker, life, op)| {
            self.records.current_life(worker) != Some(life) || self.records.load(life, OP) != op
        })
    }

    /// Reads every shared key (observations for the write checks) and moves the watches.
    pub fn observe(&mut self, shared: &Shared) -> Result<(), Box<dyn std::error::Error>> {
        self.observe_all(shared, false)
    }

    fn observe_all(
        &mut self,
        shared: &Shared,
        last: bool,
    ) -> Result<(), Box<dyn std::error::Error>> {
        for target in [Target::Map, Target::Wide, Target::List] {
            for key in 0..target.keys() {
                let start = self.records.tick();
                let seen = shared.read(target, key)?;
                let end = self.records.tick();
                if let Some(x) = seen {
                    self.records.check_seen(target, key, x, start, SUPERVISOR);
                }
                if target != Target::List {
                    self.step_watch(target, key, seen, end, last);
                }
            }
        }
        Ok(())
    }

    fn step_watch(
        &mut self,
        target: Target,
        key: u64,
        seen_now: Option<u64>,
        now: u64,
        last: bool,
    ) {
        let index = Self::watch_index(target, key);
        let watch = std::mem::replace(&mut self.watches[index], Watch::Free);
        self.watches[index] = match watch {
            Watch::Armed { value, seen } if seen_now != Some(value) => Watch::Gone {
                value,
                seen,
                gone: now,
                pending: self.in_flight(),
            },
            Watch::Gone {
                value,
                seen,
                gone,
                pending,
            } if last || self.finished(&pending) => {
                self.judge(target, key, value, seen, gone);
                if let Some(cell) = self.records.watch_cell(target, key, 0) {
                    cell.store(0);
                }
                Watch::Draining {
                    pending: self.in_flight(),
                }
            }
            Watch::Draining { pending } if last || self.finished(&pending) => Watch::Free,
            other => other,
        };
    }

    /// `value` was at `(target, key)` at `seen` and gone by `gone`; every op in flight at
    /// `gone` has finished. Someone must have taken it out: a live op that reported it, or
    /// one that died with a remove, insert or compare-exchange of the key in flight and
    /// might have run after `seen`.
    fn judge(&self, target: Target, key: u64, value: u64, seen: u64, gone: u64) {
        let reported = self
            .records
            .watch_cell(target, key, 1)
            .is_some_and(|cell| cell.load() == value);
        let explained = self.dead_ops.iter().any(|d| {
            d.target == target
                && d.key == key
                && d.verb.takes_out()
                && d.start < gone
                && d.reaped > seen
        });
        if !reported && !explained {
            let check = if target == Target::Wide {
                Check::WideRemove
            } else {
                Check::MapRemove
            };
            self.records
                .count(check, life_of(value).unwrap_or(0), key, value, SUPERVISOR);
        }
    }

    /// Checks an element of queue `queue` the supervisor pops at the end.
    pub fn popped(&self, queue: u64, element: u64) {
        let frontier = self.records.frontier.get(queue as usize).unwrap_or(0);
        check_popped(&self.records, queue, frontier, element, SUPERVISOR);
    }

    /// The final observations, once every worker has stopped: every shared key, every
    /// watch, every results push not found after its death.
    pub fn finish(&mut self, shared: &Shared) -> Result<(), Box<dyn std::error::Error>> {
        // Twice: an armed watch found gone is judged on the second pass.
        self.observe_all(shared, true)?;
        self.observe_all(shared, true)?;
        // A dead push's index lies in [lo, hi): anywhere else, its value was written by
        // someone else or later still. So look at the whole list.
        if !self.ghosts.is_empty() {
            let present: std::collections::HashSet<u64> =
                shared.results.snapshot()?.into_iter().collect();
            for ghost in self.ghosts.iter().filter(|g| present.contains(&g.value)) {
                let life = life_of(ghost.value).unwrap_or(0);
                self.records
                    .report(Check::ResultsPush, life, ghost.lo, ghost.value, SUPERVISOR);
            }
        }
        Ok(())
    }

    /// How often each target's checks had something to check.
    pub fn exercised(&self) -> Vec<(Target, Exercised)> {
        [
            Target::Map,
            Target::Wide,
            Target::List,
            Target::Results,
            Target::Queue,
        ]
        .into_iter()
        .map(|target| {
            let mut e = Exercised::default();
            for d in self.dead_ops.iter().filter(|d| d.target == target) {
                if d.verb.writes() {
                    e.dead_writes += 1;
                    if self.records.load(d.life, GONE) != 0 {
                        e.seen_undone += 1;
                    }
                } else if d.verb == Verb::Remove {
                    e.dead_removes += 1;
                }
            }
            match target {
                Target::Map => e.watched = self.armed[0],
                Target::Wide => e.watched = self.armed[1],
                Target::Results => e.seen_undone = self.ghosts.len() as u64,
                Target::List | Target::Queue => {}
            }
            (target, e)
        })
        .collect()
    }
}
