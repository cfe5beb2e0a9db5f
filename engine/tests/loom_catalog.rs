//! Loom models of the shipping catalog (`Catalog::get_or_create`) over [`HeapMemory`],
//! with a mock [`Liveness`] whose dead owners are fixed per model.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shmarena-engine --release --test loom_catalog`.
//! Without `LOOM_MAX_PREEMPTIONS` the models use a preemption bound of 2.
//!
//! A construct closure counts its runs in a shared word and writes a marker into the
//! object's body with a Relaxed store; an opener reads the marker (Relaxed) right after
//! `get_or_create` returns. Seeing it checks the READY Release / lookup Acquire pairing.

#![cfg(loom)]

mod loom_support;

use std::collections::BTreeSet;
use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use loom_support::{model, model_both_orders, pair};
use shmarena_engine::sync::Ordering;
use shmarena_engine::{
    Catalog, Error, HeapMemory, Liveness, Memory, ObjectKind, Outcome, OwnerId, TypeDescriptor,
};

/// The catalog sits at offset 0: 4 entries of 128 bytes.
const CAPACITY: u64 = 4;
const CATALOG_BYTES: u64 = CAPACITY * 128;
/// Run counter of construct closures.
const COUNTER: u64 = CATALOG_BYTES;
/// Two object bodies of one word each.
const BODY_A: u64 = CATALOG_BYTES + 64;
const BODY_B: u64 = CATALOG_BYTES + 128;
const MEM_LEN: u64 = CATALOG_BYTES + 192;
/// What a constructor writes into a body.
const MARKER: u64 = 0x5eed_cafe;
/// Long enough that no model ever times out.
const TIMEOUT: Duration = Duration::from_secs(3600);

/// Entry state word values (see the layout in `catalog.rs`): state in the low byte,
/// owner id in the high 32 bits.
const STATE_CLAIMED: u64 = 1;
const STATE_CONSTRUCTING: u64 = 2;

/// Liveness with a fixed set of dead owners.
#[derive(Clone, Debug)]
struct MockLiveness {
    me: OwnerId,
    dead: std::sync::Arc<BTreeSet<OwnerId>>,
}

impl MockLiveness {
    fn new(slot: u32, dead: &[OwnerId]) -> Self {
        Self {
            me: OwnerId::new(slot, 1),
            dead: std::sync::Arc::new(dead.iter().copied().collect()),
        }
    }
}

impl Liveness for MockLiveness {
    fn me(&self) -> OwnerId {
        self.me
    }

    fn is_alive(&self, owner: OwnerId) -> bool {
        !self.dead.contains(&owner)
    }
}

/// The owner that "died" in the recovery models.
fn dead_owner() -> OwnerId {
    OwnerId::new(9, 3)
}

fn descriptor() -> TypeDescriptor {
    TypeDescriptor::new(ObjectKind::Value, b'q', 8, 1)
}

fn catalog(mem: &HeapMemory) -> Catalog<'_, HeapMemory> {
    Catalog::new(mem, 0, CAPACITY).expect("the catalog fits")
}

/// `get_or_create(name)` whose constructor counts itself and writes `MARKER` to `body`.
/// Returns the outcome and the body offset; checks the body holds the marker.
fn get_or_create(
    mem: &HeapMemory,
    name: &str,
    body: u64,
    liveness: &MockLiveness,
) -> (Outcome, u64, u64) {
    let mut construct = || {
        // Relaxed: the count is read after the threads joined.
        mem.word(COUNTER)?.fetch_add(1, Ordering::Relaxed);
        // Relaxed on purpose: the catalog's READY store must publish it.
        mem.word(body)?.store(MARKER, Ordering::Relaxed);
        Ok((body, 8))
    };
    let (info, outcome) = catalog(mem)
        .get_or_create(name, &descriptor(), liveness, TIMEOUT, &mut construct)
        .expect("get_or_create succeeds");
    assert!(info.ready);
    assert_eq!(info.name, name);
    // Relaxed: visibility must come from get_or_create's Acquire of READY.
    let seen = mem.word(info.offset).unwrap().load(Ordering::Relaxed);
    assert_eq!(
        seen, MARKER,
        "{outcome:?} of {name:?} does not see the body its constructor wrote"
    );
    (outcome, info.offset, info.index)
}

fn construct_count(mem: &HeapMemory) -> u64 {
    mem.word(COUNTER).unwrap().load(Ordering::Relaxed)
}

/// Leaves `name` CONSTRUCTING by nobody, as a constructor that returned an error does.
fn leave_failed_construction(mem: &HeapMemory, name: &str) -> u64 {
    let liveness = MockLiveness::new(7, &[]);
    let mut failing = || Err(Error::InvalidArgument("construct fails on purpose".into()));
    let result = catalog(mem).get_or_create(name, &descriptor(), &liveness, TIMEOUT, &mut failing);
    assert!(matches!(result, Err(Error::InvalidArgument(_))));
    assert_eq!(catalog(mem).find(name).unwrap(), None, "not ready");
    let entries = catalog(mem).entries().unwrap();
    assert_eq!(entries.len(), 1);
    assert!(!entries[0].ready);
    assert_eq!(entries[0].owner, None);
    entries[0].index
}

/// Two threads race `get_or_create` of one name in `mem` (set up by the caller) and the
/// checks shared by all same-name models.
fn race_same_name(
    swap: bool,
    mem: &Arc<HeapMemory>,
    name: &'static str,
    first: MockLiveness,
    second: MockLiveness,
) -> u64 {
    let (mem_a, mem_b) = (mem.clone(), mem.clone());
    let (mine, theirs) = pair(
        swap,
        move || get_or_create(&mem_a, name, BODY_A, &first),
        move || get_or_create(&mem_b, name, BODY_A, &second),
    );
    let created = [mine.0, theirs.0]
        .iter()
        .filter(|&&o| o == Outcome::Created)
        .count();
    assert_eq!(created, 1, "exactly one Created: {mine:?} {theirs:?}");
    assert_eq!(construct_count(mem), 1, "the body was built exactly once");
    assert_eq!(mine.1, BODY_A);
    assert_eq!(theirs.1, BODY_A);
    assert_eq!(mine.2, theirs.2, "both got the same entry");
    let found = catalog(mem)
        .find(name)
        .unwrap()
        .expect("ready after the race");
    assert_eq!(found.offset, BODY_A);
    assert_eq!(
        catalog(mem).entries().unwrap().len(),
        1,
        "one entry for one name"
    );
    mine.2
}

/// Two participants race to create one name: exactly one constructs, both get the same
/// entry and offset, and the opener sees the body the creator initialized.
#[test]
fn same_name_race_constructs_once_and_publishes_body() {
    model_both_orders(|swap| {
        let mem = Arc::new(HeapMemory::new(MEM_LEN));
        race_same_name(
            swap,
            &mem,
            "shared",
            MockLiveness::new(1, &[]),
            MockLiveness::new(2, &[]),
        );
    });
}

/// Two threads of one participant (one `Region` shared by threads: the same owner id)
/// race to create one name: a thread must wait for its sibling, not take the entry over.
#[test]
fn same_name_race_within_one_participant() {
    model_both_orders(|swap| {
        let mem = Arc::new(HeapMemory::new(MEM_LEN));
        race_same_name(
            swap,
            &mem,
            "shared",
            MockLiveness::new(1, &[]),
            MockLiveness::new(1, &[]),
        );
    });
}

/// Finds two names whose probe sequences start at the same entry, and that entry, with
/// the public API only (one single-threaded model run, as loom atomics need a model).
fn colliding_names() -> (String, String, u64) {
    let found = std::sync::Arc::new(std::sync::Mutex::new(None));
    let out = found.clone();
    loom::model(move || {
        let start_index = |name: &str| {
            let mem = HeapMemory::new(MEM_LEN);
            get_or_create(&mem, name, BODY_A, &MockLiveness::new(1, &[])).2
        };
        let first = "obj-0".to_owned();
        let index = start_index(&first);
        let second = (1..1000)
            .map(|i| format!("obj-{i}"))
            .find(|name| start_index(name) == index)
            .expect("some name shares the first probe entry");
        *out.lock().unwrap() = Some((first, second, index));
    });
    let result = found.lock().unwrap().take();
    result.expect("the search ran")
}

/// Two names whose probes start at the same entry, created at once: both are created,
/// in distinct adjacent entries (the loser of the first entry probed on), each with its
/// own body.
#[test]
fn colliding_names_race_creates_both() {
    let (first, second, index) = colliding_names();
    let first: &'static str = Box::leak(first.into_boxed_str());
    let second: &'static str = Box::leak(second.into_boxed_str());
    model_both_orders(move |swap| {
        let mem = Arc::new(HeapMemory::new(MEM_LEN));
        let (mem_a, mem_b) = (mem.clone(), mem.clone());
        let (mine, theirs) = pair(
            swap,
            move || get_or_create(&mem_a, first, BODY_A, &MockLiveness::new(1, &[])),
            move || get_or_create(&mem_b, second, BODY_B, &MockLiveness::new(2, &[])),
        );
        assert_eq!(mine.0, Outcome::Created);
        assert_eq!(theirs.0, Outcome::Created);
        assert_eq!(construct_count(&mem), 2);
        assert_eq!((mine.1, theirs.1), (BODY_A, BODY_B));
        let indices = BTreeSet::from([mine.2, theirs.2]);
        assert_eq!(
            indices,
            BTreeSet::from([index, (index + 1) % CAPACITY]),
            "the names share a probe start, so they take it and the next entry"
        );
        let catalog = catalog(&mem);
        assert_eq!(catalog.find(first).unwrap().unwrap().offset, BODY_A);
        assert_eq!(catalog.find(second).unwrap().unwrap().offset, BODY_B);
        let names: BTreeSet<String> = catalog
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, BTreeSet::from([first.to_owned(), second.to_owned()]));
    });
}

/// A constructor that failed leaves the entry CONSTRUCTING by nobody; two participants
/// then race for the name: exactly one rebuilds it, the other opens that build.
#[test]
fn failed_construction_is_rebuilt_once() {
    model_both_orders(|swap| {
        let mem = Arc::new(HeapMemory::new(MEM_LEN));
        let index = leave_failed_construction(&mem, "retry");
        let won = race_same_name(
            swap,
            &mem,
            "retry",
            MockLiveness::new(1, &[]),
            MockLiveness::new(2, &[]),
        );
        assert_eq!(won, index, "the name keeps its entry");
    });
}

/// A constructor died while CONSTRUCTING (its owner id stays in the state word): two
/// survivors race; exactly one takes the entry over and builds it, the other opens it.
#[test]
fn dead_constructor_is_taken_over_once() {
    model_both_orders(|swap| {
        let mem = Arc::new(HeapMemory::new(MEM_LEN));
        let index = leave_failed_construction(&mem, "orphan");
        let state = mem.word(index * 128).unwrap();
        state.store(
            STATE_CONSTRUCTING | u64::from(dead_owner().bits()) << 32,
            Ordering::Release,
        );
        let entries = catalog(&mem).entries().unwrap();
        assert_eq!(entries[0].owner, Some(dead_owner()));
        let dead = [dead_owner()];
        let won = race_same_name(
            swap,
            &mem,
            "orphan",
            MockLiveness::new(1, &dead),
            MockLiveness::new(2, &dead),
        );
        assert_eq!(won, index);
    });
}

/// A claimer died in CLAIMED (before it wrote the name) on the very entry our name
/// starts probing at: two survivors race; the entry is given back and exactly one of
/// them creates the name there.
#[test]
fn dead_claimer_entry_is_reclaimed() {
    let (name, _, index) = colliding_names();
    let name: &'static str = Box::leak(name.into_boxed_str());
    model_both_orders(move |swap| {
        let mem = Arc::new(HeapMemory::new(MEM_LEN));
        mem.word(index * 128).unwrap().store(
            STATE_CLAIMED | u64::from(dead_owner().bits()) << 32,
            Ordering::Release,
        );
        assert!(
            catalog(&mem).entries().unwrap().is_empty(),
            "CLAIMED is unnamed"
        );
        let dead = [dead_owner()];
        let won = race_same_name(
            swap,
            &mem,
            name,
            MockLiveness::new(1, &dead),
            MockLiveness::new(2, &dead),
        );
        assert_eq!(won, index, "the reclaimed entry is reused");
    });
}

/// Checks what a concurrent `find` and `entries` of `name` returned: nothing, or the
/// ready object whose body the creator initialized (visible through the Acquire of READY).
fn check_concurrent_lookup(mem: &HeapMemory, name: &str) {
    if let Some(info) = catalog(mem).find(name).unwrap() {
        assert!(info.ready);
        assert_eq!(info.offset, BODY_A);
        assert_eq!(info.descriptor, descriptor());
        // Relaxed: visibility must come from find's Acquire of READY.
        let body = mem.word(info.offset).unwrap().load(Ordering::Relaxed);
        assert_eq!(
            body, MARKER,
            "find returned an object whose body it cannot see"
        );
    }
    // `entries` may run mid-construction: every entry it shows has its name published.
    for entry in catalog(mem).entries().unwrap() {
        assert_eq!(entry.name, name);
        assert_eq!(entry.descriptor, descriptor());
    }
}

/// `find` and `entries` racing a creator: they see nothing, or the entry with its name,
/// and `find` sees the ready object only together with the body the creator initialized.
#[test]
fn find_vs_create_sees_nothing_or_the_built_object() {
    model_both_orders(|swap| {
        let mem = Arc::new(HeapMemory::new(MEM_LEN));
        let (creator, finder) = (mem.clone(), mem.clone());
        let (created, ()) = pair(
            swap,
            move || get_or_create(&creator, "late", BODY_A, &MockLiveness::new(1, &[])),
            move || check_concurrent_lookup(&finder, "late"),
        );
        assert_eq!(created.0, Outcome::Created);
        assert!(catalog(&mem).find("late").unwrap().is_some());
    });
}

/// Two participants race to create one name while a third looks it up: exactly one
/// constructor, and the lookup sees nothing or the built object with its body.
///
/// (Only one thread here can be waiting for a constructor: loom cannot bound two threads
/// that spin-yield for a third, so three same-name creators exceed any branch limit.)
#[test]
fn same_name_race_with_concurrent_find() {
    model(|| {
        let mem = Arc::new(HeapMemory::new(MEM_LEN));
        let finder = {
            let mem = mem.clone();
            thread::spawn(move || check_concurrent_lookup(&mem, "shared"))
        };
        let (mem_a, mem_b) = (mem.clone(), mem.clone());
        let results = pair(
            false,
            move || get_or_create(&mem_a, "shared", BODY_A, &MockLiveness::new(2, &[])),
            move || get_or_create(&mem_b, "shared", BODY_A, &MockLiveness::new(1, &[])),
        );
        finder.join().unwrap();
        let created = [results.0 .0, results.1 .0]
            .iter()
            .filter(|&&o| o == Outcome::Created)
            .count();
        assert_eq!(created, 1, "exactly one Created: {results:?}");
        assert_eq!(construct_count(&mem), 1);
        assert_eq!(results.0 .2, results.1 .2, "both got the same entry");
    });
}

/// `get_or_create("typed")` as `descriptor` with body `body`: the descriptor and outcome.
fn create_typed(
    mem: &HeapMemory,
    descriptor: &TypeDescriptor,
    body: u64,
    slot: u32,
) -> Result<(TypeDescriptor, Outcome), Error> {
    let mut construct = || {
        // Relaxed: read after the threads joined.
        mem.word(COUNTER)?.fetch_add(1, Ordering::Relaxed);
        Ok((body, 8))
    };
    catalog(mem)
        .get_or_create(
            "typed",
            descriptor,
            &MockLiveness::new(slot, &[]),
            TIMEOUT,
            &mut construct,
        )
        .map(|(info, outcome)| (info.descriptor, outcome))
}

/// Two participants create one name as different types: one creates it, the other gets
/// `TypeMismatch` (never a second object, never an open of the wrong type).
#[test]
fn same_name_different_types_race() {
    model_both_orders(|swap| {
        let mem = Arc::new(HeapMemory::new(MEM_LEN));
        let value = descriptor();
        let array = TypeDescriptor::new(ObjectKind::Array, b'q', 8, 4);
        let (mem_a, mem_b) = (mem.clone(), mem.clone());
        let (mine, theirs) = pair(
            swap,
            move || create_typed(&mem_a, &value, BODY_A, 1),
            move || create_typed(&mem_b, &array, BODY_B, 2),
        );
        assert_eq!(construct_count(&mem), 1);
        match (&mine, &theirs) {
            (Ok((d, Outcome::Created)), Err(Error::TypeMismatch { .. })) => assert_eq!(*d, value),
            (Err(Error::TypeMismatch { .. }), Ok((d, Outcome::Created))) => assert_eq!(*d, array),
            other => panic!("expected one Created and one TypeMismatch, got {other:?}"),
        }
        assert_eq!(catalog(&mem).entries().unwrap().len(), 1);
    });
}

/// A constructor fails while another participant waits for the same name: the waiter
/// takes the entry over and creates it (or created it first, and the failing caller
/// opens it). The failed attempt never leaves the name unreadable or built twice.
#[test]
fn failing_constructor_vs_waiter() {
    model_both_orders(|swap| {
        let mem = Arc::new(HeapMemory::new(MEM_LEN));
        let (mem_a, mem_b) = (mem.clone(), mem.clone());
        let (failing, creator) = pair(
            swap,
            move || {
                let mut fail = || Err(Error::InvalidArgument("construct fails".into()));
                catalog(&mem_a)
                    .get_or_create(
                        "flaky",
                        &descriptor(),
                        &MockLiveness::new(1, &[]),
                        TIMEOUT,
                        &mut fail,
                    )
                    .map(|(info, outcome)| (info.offset, outcome))
            },
            move || get_or_create(&mem_b, "flaky", BODY_A, &MockLiveness::new(2, &[])),
        );
        assert_eq!(
            creator.0,
            Outcome::Created,
            "only the second caller can build"
        );
        assert_eq!(construct_count(&mem), 1);
        match failing {
            Err(Error::InvalidArgument(_)) => {}
            Ok((offset, Outcome::Opened)) => assert_eq!(offset, BODY_A),
            other => panic!("the failing caller got {other:?}"),
        }
        let entries = catalog(&mem).entries().unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].ready);
        assert_eq!(entries[0].offset, BODY_A);
    });
}
