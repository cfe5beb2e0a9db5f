//! Property tests of the catalog against a `std::collections::HashMap` model, plus the
//! recovery and hostile-input paths, over [`HeapMemory`] with a mock [`Liveness`].

#![cfg(not(loom))]

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use shmarena_engine::sync::Ordering;
use shmarena_engine::{
    Catalog, EntryInfo, Error, HeapMemory, Liveness, Memory, ObjectKind, Outcome, OwnerId,
    TypeDescriptor,
};

/// Catalog at this offset (any 8-aligned offset works; not 0, to catch offset slips).
const BASE: u64 = 256;
const ENTRY: u64 = 128;
/// Entry word offsets (the layout documented in `catalog.rs`).
const WORD_NAME_LEN: u64 = 8;
const WORD_NAME: u64 = 16;
const WORD_DESCRIPTOR: u64 = 80;
/// Entry states.
const STATE_CLAIMED: u64 = 1;
const STATE_CONSTRUCTING: u64 = 2;

const LONG: Duration = Duration::from_secs(3600);

/// Names used by the generated runs: short, long (64 bytes, the limit), multi-byte.
const NAMES: [&str; 10] = [
    "a",
    "counter",
    "queue:jobs",
    "ключ",
    "日本語の名前",
    "x-7",
    "0123456789012345678901234567890123456789012345678901234567890123",
    "name with spaces",
    "🦀",
    "z",
];

/// Mock liveness: a set of dead owners.
struct MockLiveness {
    me: OwnerId,
    dead: BTreeSet<OwnerId>,
}

impl MockLiveness {
    fn alive(slot: u32) -> Self {
        Self {
            me: OwnerId::new(slot, 1),
            dead: BTreeSet::new(),
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

fn descriptors() -> [TypeDescriptor; 3] {
    let mut map = TypeDescriptor::new(ObjectKind::HashMap, b'q', 8, 16);
    map.key_code = b'i';
    map.key_size = 4;
    [
        TypeDescriptor::new(ObjectKind::Value, b'q', 8, 1),
        TypeDescriptor::new(ObjectKind::Array, b'd', 8, 10),
        map,
    ]
}

fn memory(capacity: u64) -> HeapMemory {
    HeapMemory::new(BASE + capacity * ENTRY + 64)
}

#[derive(Clone, Debug)]
enum Op {
    /// `get_or_create(NAMES[name], descriptors()[kind] with capacity)`; the constructor
    /// fails when `fail`.
    GetOrCreate {
        name: usize,
        kind: usize,
        capacity: u64,
        fail: bool,
    },
    /// `find(NAMES[name])`.
    Find(usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..NAMES.len(), 0..3usize, 1..100u64, prop::bool::weighted(0.2)).prop_map(
            |(name, kind, capacity, fail)| Op::GetOrCreate { name, kind, capacity, fail }
        ),
        1 => (0..NAMES.len()).prop_map(Op::Find),
    ]
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    /// Named, constructor failed: CONSTRUCTING by nobody.
    Pending,
    /// Built with this body.
    Ready { offset: u64, size: u64 },
}

#[derive(Clone, Debug)]
struct ModelEntry {
    descriptor: TypeDescriptor,
    state: State,
}

fn check_entry_info(info: &EntryInfo, name: &str, entry: &ModelEntry, capacity: u64) {
    assert_eq!(info.name, name);
    assert_eq!(
        info.descriptor, entry.descriptor,
        "stored descriptor of {name:?}"
    );
    assert!(info.index < capacity);
    match entry.state {
        State::Ready { offset, size } => {
            assert!(info.ready);
            assert_eq!((info.offset, info.size), (offset, size));
            assert_eq!(info.owner, None);
        }
        State::Pending => {
            assert!(!info.ready);
            assert_eq!(info.owner, None, "a failed constructor leaves no owner");
        }
    }
}

/// The catalog under test, its memory's model and the next body offset to hand out.
struct Harness<'m> {
    catalog: Catalog<'m, HeapMemory>,
    capacity: u64,
    liveness: MockLiveness,
    model: HashMap<&'static str, ModelEntry>,
    next_body: u64,
}

impl Harness<'_> {
    fn get_or_create(&mut self, name: &'static str, descriptor: TypeDescriptor, fail: bool) {
        let body = (self.next_body * 64, descriptor.capacity * 8);
        let mut called = false;
        let mut construct = || {
            called = true;
            if fail {
                Err(Error::InvalidArgument("planned failure".into()))
            } else {
                Ok(body)
            }
        };
        let result =
            self.catalog
                .get_or_create(name, &descriptor, &self.liveness, LONG, &mut construct);
        let built = |descriptor| ModelEntry {
            descriptor,
            state: State::Ready {
                offset: body.0,
                size: body.1,
            },
        };
        let expected = match self.model.get(name).cloned() {
            Some(entry) if !entry.descriptor.same_type(&descriptor) => {
                assert!(
                    matches!(&result, Err(Error::TypeMismatch { name: n, .. }) if n == name),
                    "{name:?} is a {}, asked {descriptor}: {result:?}",
                    entry.descriptor
                );
                assert!(!called);
                return;
            }
            Some(
                entry @ ModelEntry {
                    state: State::Ready { .. },
                    ..
                },
            ) => {
                let (info, outcome) = result.expect("opening an existing object");
                assert_eq!(outcome, Outcome::Opened);
                assert!(!called, "opening must not construct");
                check_entry_info(&info, name, &entry, self.capacity);
                return;
            }
            // Pending: this call takes the entry over and builds it, keeping the
            // descriptor stored by the first attempt.
            Some(entry) => built(entry.descriptor),
            None if self.model.len() as u64 == self.capacity => {
                assert!(
                    matches!(result, Err(Error::CatalogFull { capacity }) if capacity == self.capacity),
                    "{result:?}"
                );
                assert!(!called);
                return;
            }
            None => built(descriptor),
        };
        assert!(called, "a new or pending name is constructed");
        if fail {
            assert!(
                matches!(result, Err(Error::InvalidArgument(_))),
                "{result:?}"
            );
            self.model.entry(name).or_insert(ModelEntry {
                descriptor,
                state: State::Pending,
            });
        } else {
            let (info, outcome) = result.expect("creating");
            assert_eq!(outcome, Outcome::Created);
            check_entry_info(&info, name, &expected, self.capacity);
            self.model.insert(name, expected);
            self.next_body += 1;
        }
    }

    fn find(&self, name: &str) {
        let found = self.catalog.find(name).unwrap();
        match self.model.get(name) {
            Some(
                entry @ ModelEntry {
                    state: State::Ready { .. },
                    ..
                },
            ) => check_entry_info(
                &found.expect("a ready object is found"),
                name,
                entry,
                self.capacity,
            ),
            _ => assert_eq!(found, None, "{name:?} is absent or not ready"),
        }
    }

    /// `entries` lists exactly the model, each name in its own entry, and `find` agrees
    /// for every name of the pool.
    fn check_all(&self) {
        let entries = self.catalog.entries().unwrap();
        assert_eq!(entries.len(), self.model.len());
        let indices: BTreeSet<u64> = entries.iter().map(|e| e.index).collect();
        assert_eq!(indices.len(), entries.len(), "two names in one entry");
        assert!(
            entries.windows(2).all(|w| w[0].index < w[1].index),
            "table order"
        );
        for info in &entries {
            let entry = self
                .model
                .get(info.name.as_str())
                .unwrap_or_else(|| panic!("entry {info:?} is not in the model"));
            check_entry_info(info, &info.name, entry, self.capacity);
        }
        for name in NAMES {
            self.find(name);
        }
    }
}

fn run(capacity: u64, ops: &[Op]) {
    let mem = memory(capacity);
    let catalog = Catalog::new(&mem, BASE, capacity).unwrap();
    assert_eq!(catalog.capacity(), capacity);
    let mut harness = Harness {
        catalog,
        capacity,
        liveness: MockLiveness::alive(1),
        model: HashMap::new(),
        next_body: 1,
    };
    for op in ops {
        match *op {
            Op::GetOrCreate {
                name,
                kind,
                capacity,
                fail,
            } => {
                let mut descriptor = descriptors()[kind];
                descriptor.capacity = capacity;
                harness.get_or_create(NAMES[name], descriptor, fail);
            }
            Op::Find(name) => harness.find(NAMES[name]),
        }
        harness.check_all();
    }
}

proptest! {
    /// Random get_or_create/find runs match the HashMap model: `Created` exactly when the
    /// name is new (or its earlier construction failed), `Opened` with the stored body
    /// otherwise, `TypeMismatch` for another type, `CatalogFull` when every entry is named.
    #[test]
    fn catalog_matches_hashmap_model(
        capacity in 1u64..=8,
        ops in prop::collection::vec(op_strategy(), 0..60),
    ) {
        run(capacity, &ops);
    }
}

fn value() -> TypeDescriptor {
    descriptors()[0]
}

fn ok_body(offset: u64) -> impl FnMut() -> shmarena_engine::Result<(u64, u64)> {
    move || Ok((offset, 8))
}

fn state_word(mem: &HeapMemory, index: u64) -> &shmarena_engine::sync::AtomicU64 {
    mem.word(BASE + index * ENTRY).unwrap()
}

/// Names must be 1 to 64 bytes without NUL, for every entry point.
#[test]
fn invalid_names_are_rejected() {
    let mem = memory(4);
    let catalog = Catalog::new(&mem, BASE, 4).unwrap();
    let liveness = MockLiveness::alive(1);
    let too_long = "n".repeat(65);
    let multibyte_too_long = format!("{}x", "é".repeat(32)); // 65 bytes, 33 chars
    for bad in [
        "",
        too_long.as_str(),
        multibyte_too_long.as_str(),
        "nul\0byte",
    ] {
        let mut construct =
            || -> shmarena_engine::Result<(u64, u64)> { panic!("must not construct {bad:?}") };
        let result = catalog.get_or_create(bad, &value(), &liveness, LONG, &mut construct);
        assert!(
            matches!(result, Err(Error::InvalidName { .. })),
            "{bad:?}: {result:?}"
        );
        assert!(matches!(catalog.find(bad), Err(Error::InvalidName { .. })));
    }
    assert!(catalog.entries().unwrap().is_empty());
    // The limits themselves are fine.
    let exactly_64 = "é".repeat(32);
    for good in ["n", exactly_64.as_str()] {
        let (info, outcome) = catalog
            .get_or_create(good, &value(), &liveness, LONG, &mut ok_body(4096))
            .unwrap();
        assert_eq!(outcome, Outcome::Created);
        assert_eq!(info.name, good);
        assert_eq!(catalog.find(good).unwrap().unwrap().name, good);
    }
}

/// A catalog that does not fit its memory is refused.
#[test]
fn catalog_bounds_are_checked() {
    let mem = memory(4);
    assert!(Catalog::new(&mem, BASE, 4).is_ok());
    assert!(matches!(
        Catalog::new(&mem, BASE, 0),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        Catalog::new(&mem, BASE, 5),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        Catalog::new(&mem, BASE + 4, 1),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        Catalog::new(&mem, u64::MAX - 7, 1),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        Catalog::new(&mem, BASE, u64::MAX / 64),
        Err(Error::Corrupt { .. })
    ));
}

/// A constructor that died mid-construction (its owner id still in the entry): a
/// survivor that knows it is dead takes the entry over at once; while it is alive, the
/// survivor waits and then reports `Timeout` naming it.
#[test]
fn dead_constructor_is_taken_over_live_one_times_out() {
    let mem = memory(1);
    let catalog = Catalog::new(&mem, BASE, 1).unwrap();
    let creator = OwnerId::new(5, 2);
    let mut fail = || Err(Error::InvalidArgument("fail".into()));
    assert!(catalog
        .get_or_create("obj", &value(), &MockLiveness::alive(5), LONG, &mut fail)
        .is_err());
    // As if `creator` were still constructing (or had died doing so).
    state_word(&mem, 0).store(
        STATE_CONSTRUCTING | u64::from(creator.bits()) << 32,
        Ordering::Release,
    );
    assert_eq!(catalog.entries().unwrap()[0].owner, Some(creator));
    assert_eq!(catalog.find("obj").unwrap(), None);

    let survivor = MockLiveness::alive(6);
    let started = Instant::now();
    let timeout = Duration::from_millis(50);
    let result = catalog.get_or_create("obj", &value(), &survivor, timeout, &mut ok_body(64));
    assert!(
        matches!(&result, Err(Error::Timeout { owner, .. }) if *owner == creator.bits()),
        "{result:?}"
    );
    assert!(started.elapsed() >= timeout);
    assert!(started.elapsed() < Duration::from_secs(5));

    // Another type is a mismatch even while under construction.
    let array = descriptors()[1];
    let result = catalog.get_or_create("obj", &array, &survivor, timeout, &mut ok_body(64));
    assert!(
        matches!(result, Err(Error::TypeMismatch { .. })),
        "{result:?}"
    );

    let survivor = MockLiveness {
        me: OwnerId::new(6, 1),
        dead: BTreeSet::from([creator]),
    };
    let (info, outcome) = catalog
        .get_or_create("obj", &value(), &survivor, LONG, &mut ok_body(64))
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    assert_eq!(info.offset, 64);
    assert!(catalog.find("obj").unwrap().unwrap().ready);
}

/// An entry CLAIMED by a dead owner (who died before naming it) is given back and reused;
/// one CLAIMED by a live owner makes creators wait (then `Timeout`) while `find` skips it.
#[test]
fn claimed_entries_wait_or_are_reclaimed() {
    let mem = memory(1);
    let catalog = Catalog::new(&mem, BASE, 1).unwrap();
    let claimer = OwnerId::new(3, 7);
    state_word(&mem, 0).store(
        STATE_CLAIMED | u64::from(claimer.bits()) << 32,
        Ordering::Release,
    );
    assert!(
        catalog.entries().unwrap().is_empty(),
        "CLAIMED entries are unnamed"
    );
    assert_eq!(catalog.find("obj").unwrap(), None);

    let me = MockLiveness::alive(1);
    let timeout = Duration::from_millis(30);
    let result = catalog.get_or_create("obj", &value(), &me, timeout, &mut ok_body(64));
    assert!(
        matches!(&result, Err(Error::Timeout { owner, .. }) if *owner == claimer.bits()),
        "{result:?}"
    );

    let me = MockLiveness {
        me: OwnerId::new(1, 1),
        dead: BTreeSet::from([claimer]),
    };
    let (info, outcome) = catalog
        .get_or_create("obj", &value(), &me, LONG, &mut ok_body(64))
        .unwrap();
    assert_eq!((info.index, outcome), (0, Outcome::Created));
    assert_eq!(catalog.entries().unwrap().len(), 1);
}

/// Hostile entry contents are `Corrupt` errors from every entry point, never a panic.
#[test]
fn corrupt_entries_are_errors() {
    type Damage = fn(&HeapMemory);
    let liveness = MockLiveness::alive(1);
    let cases: [(&str, Damage); 4] = [
        ("unknown state", |mem| {
            state_word(mem, 0).store(9, Ordering::Release);
        }),
        ("zero name length", |mem| {
            mem.word(BASE + WORD_NAME_LEN)
                .unwrap()
                .store(0, Ordering::Relaxed);
        }),
        ("name length past 64", |mem| {
            mem.word(BASE + WORD_NAME_LEN)
                .unwrap()
                .store(65, Ordering::Relaxed);
        }),
        ("unknown kind", |mem| {
            mem.word(BASE + WORD_DESCRIPTOR)
                .unwrap()
                .store(0xff << 32, Ordering::Relaxed);
        }),
    ];
    for (what, damage) in cases {
        let mem = memory(1);
        let catalog = Catalog::new(&mem, BASE, 1).unwrap();
        catalog
            .get_or_create("obj", &value(), &liveness, LONG, &mut ok_body(64))
            .unwrap();
        damage(&mem);
        let result = catalog.get_or_create("obj", &value(), &liveness, LONG, &mut ok_body(64));
        assert!(
            matches!(result, Err(Error::Corrupt { .. })),
            "{what}: {result:?}"
        );
        assert!(
            matches!(catalog.entries(), Err(Error::Corrupt { .. })),
            "{what}: entries"
        );
        assert!(
            matches!(catalog.find("obj"), Err(Error::Corrupt { .. })),
            "{what}: find"
        );
    }

    // A name that is not UTF-8 is reported by the readers that decode it.
    let mem = memory(1);
    let catalog = Catalog::new(&mem, BASE, 1).unwrap();
    catalog
        .get_or_create("obj", &value(), &liveness, LONG, &mut ok_body(64))
        .unwrap();
    mem.word(BASE + WORD_NAME).unwrap().store(
        u64::from_le_bytes(*b"\xff\xfe\xfd\0\0\0\0\0"),
        Ordering::Relaxed,
    );
    assert!(matches!(catalog.entries(), Err(Error::Corrupt { .. })));
    assert_eq!(
        catalog.find("obj").unwrap(),
        None,
        "the stored name is not \"obj\""
    );
}
