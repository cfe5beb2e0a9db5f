//! Fuzz target `catalog_ops`: named-object creation and lookup against a `HashMap` model
//! (differential).
//!
//! A region with an 8-entry catalog; names come from a pool of 12, kinds from
//! `Value<u64>`, `Value<i32>`, `Array<u8>` (length 0..=4), `List<u64>` and `Queue<u64>`
//! (capacity 1..=4; a list grows past it) and `Lock`. Each operation is 3 bytes: `op,
//! name, param`.
//! `op & 1`: 0 get_or_create, 1 open; `(op >> 1) % 6`: the kind; `op & 0x80`: after a
//! successful call, also mutate the object (store `param`, set element 0, push).
//!
//! Every result must be what the model says: created (the catalog grows by one, the
//! body holds the initial contents) or opened (the catalog does not grow, the body holds
//! what the model holds) exactly when the model says; `TypeMismatch` when the name holds
//! another kind (or a list/queue of another first capacity), `LengthMismatch` for an array of
//! another length, `CatalogFull` exactly when all 8 entries hold other names,
//! `ObjectNotFound` for opening an absent name. At the end `check_region` reports no
//! `Error` and every model object opens with its contents.

#![no_main]

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shmarena::{
    Array, Error, List, Lock, PushError, Queue, Region, RegionExt, RegionOptions, Value,
};

const CATALOG: usize = 8;
const NAMES: [&str; 12] = [
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
    "i",
    "j",
    "name.with.dots",
    "x",
];

/// The process's scratch region (256 KiB, an 8-entry catalog, reset before every input).
fn scratch() -> &'static common::Scratch {
    static SCRATCH: OnceLock<common::Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let options = RegionOptions {
            participant_capacity: 2,
            catalog_capacity: CATALOG as u64,
            ..RegionOptions::default()
        };
        common::Scratch::new("catalog", 256 * 1024, &options)
    })
}

/// What the model holds under a name.
#[derive(Debug, Clone, PartialEq)]
enum Obj {
    U64(u64),
    I32(i32),
    Bytes(Vec<u8>),
    List {
        capacity: usize,
        items: Vec<u64>,
    },
    Queue {
        capacity: usize,
        items: VecDeque<u64>,
    },
    Lock,
}

impl Obj {
    fn kind(&self) -> u8 {
        match self {
            Obj::U64(_) => 0,
            Obj::I32(_) => 1,
            Obj::Bytes(_) => 2,
            Obj::List { .. } => 3,
            Obj::Queue { .. } => 4,
            Obj::Lock => 5,
        }
    }

    /// The object a get_or_create of `kind` with `param` creates.
    fn initial(kind: u8, param: u8) -> Obj {
        match kind {
            0 => Obj::U64(u64::from(param) * 0x0101_0101),
            1 => Obj::I32(i32::from(param as i8)),
            2 => Obj::Bytes((0..param % 5).map(|i| param.wrapping_add(i)).collect()),
            3 => Obj::List {
                capacity: 1 + usize::from(param % 4),
                items: Vec::new(),
            },
            4 => Obj::Queue {
                capacity: 1 + usize::from(param % 4),
                items: VecDeque::new(),
            },
            _ => Obj::Lock,
        }
    }
}

/// A typed handle (for reading back and mutating).
enum Handle {
    U64(Value<u64>),
    I32(Value<i32>),
    Bytes(Array<u8>),
    List(List<u64>),
    Queue(Queue<u64>),
    Lock(Lock),
}

fn get_or_create(region: &Region, name: &str, kind: u8, param: u8) -> shmarena::Result<Handle> {
    Ok(match Obj::initial(kind, param) {
        Obj::U64(v) => Handle::U64(region.value(name, v)?),
        Obj::I32(v) => Handle::I32(region.value(name, v)?),
        Obj::Bytes(v) => Handle::Bytes(region.array(name, &v)?),
        Obj::List { capacity, .. } => Handle::List(region.list(name, capacity as u64)?),
        Obj::Queue { capacity, .. } => Handle::Queue(region.queue(name, capacity as u64)?),
        Obj::Lock => Handle::Lock(region.lock(name)?),
    })
}

fn open(region: &Region, name: &str, kind: u8) -> shmarena::Result<Handle> {
    Ok(match kind {
        0 => Handle::U64(region.open_value(name)?),
        1 => Handle::I32(region.open_value(name)?),
        2 => Handle::Bytes(region.open_array(name)?),
        3 => Handle::List(region.open_list(name)?),
        4 => Handle::Queue(Queue::open(region, name)?),
        _ => Handle::Lock(Lock::open(region, name)?),
    })
}

/// Reads a handle back as the model's type (draining nothing: a queue is compared by
/// length and drained only at the end).
fn read(handle: &Handle) -> Obj {
    match handle {
        Handle::U64(v) => Obj::U64(v.load()),
        Handle::I32(v) => Obj::I32(v.load()),
        Handle::Bytes(a) => Obj::Bytes(a.snapshot()),
        Handle::List(l) => Obj::List {
            capacity: l.initial_capacity(),
            items: l.snapshot().expect("list snapshot").into_iter().collect(),
        },
        Handle::Queue(q) => Obj::Queue {
            capacity: q.capacity(),
            items: VecDeque::new(),
        },
        Handle::Lock(_) => Obj::Lock,
    }
}

fn same_contents(handle: &Handle, model: &Obj) -> bool {
    match (read(handle), model) {
        (Obj::Queue { capacity, .. }, Obj::Queue { capacity: c, items }) => {
            let Handle::Queue(q) = handle else {
                unreachable!()
            };
            capacity == *c && q.len() == items.len()
        }
        (got, want) => got == *want,
    }
}

/// Mutates through the handle and the model alike.
fn mutate(handle: &Handle, model: &mut Obj, param: u8) {
    match (handle, model) {
        (Handle::U64(v), Obj::U64(m)) => {
            let new = u64::from(param) << 32 | u64::from(param);
            assert_eq!(v.swap(new), *m);
            *m = new;
        }
        (Handle::I32(v), Obj::I32(m)) => {
            assert_eq!(v.fetch_add(i32::from(param)), *m);
            *m = m.wrapping_add(i32::from(param));
        }
        (Handle::Bytes(a), Obj::Bytes(m)) => {
            if m.is_empty() {
                assert!(matches!(
                    a.set(0, param),
                    Err(Error::IndexOutOfBounds { index: 0, len: 0 })
                ));
            } else {
                a.set(0, param).expect("array set");
                m[0] = param;
            }
        }
        (Handle::List(l), Obj::List { items, .. }) => {
            // The list grows past its first capacity, while the region has room.
            match l.push(u64::from(param)) {
                Ok(index) => {
                    assert_eq!(index, items.len());
                    items.push(u64::from(param));
                }
                Err(Error::OutOfMemory { .. }) => {}
                Err(other) => panic!("list push: {other:?}"),
            }
        }
        (Handle::Queue(q), Obj::Queue { capacity, items }) => {
            if param & 1 == 0 {
                let result = q.try_push(u64::from(param));
                if items.len() == *capacity {
                    assert!(
                        matches!(result, Err(PushError::Full(back)) if back == u64::from(param)),
                        "queue push on full: {result:?}"
                    );
                } else {
                    result.expect("queue push");
                    items.push_back(u64::from(param));
                }
            } else {
                assert_eq!(q.try_pop(), items.pop_front());
            }
        }
        (Handle::Lock(l), Obj::Lock) => {
            let guard = l.try_lock().expect("an unheld lock locks");
            assert!(matches!(
                l.try_lock(),
                Err(shmarena::TryLockError::WouldBlock)
            ));
            drop(guard);
        }
        _ => unreachable!("handle and model kinds differ"),
    }
}

fn run(data: &[u8]) {
    let region = scratch().reset();
    let mut model: HashMap<&str, Obj> = HashMap::new();
    let trace = common::trace();
    assert!(region.objects().expect("objects").is_empty());
    for (step, op) in data.chunks_exact(3).enumerate() {
        let (code, name, param) = (op[0], NAMES[usize::from(op[1]) % NAMES.len()], op[2]);
        let kind = (code >> 1) % 6;
        let create = code & 1 == 0;
        // The catalog held as many entries as the model after the last step (checked
        // there, or above).
        let before = model.len();
        let mut mutated = false;
        let result = if create {
            get_or_create(region, name, kind, param)
        } else {
            open(region, name, kind)
        };
        if trace {
            eprintln!(
                "{step}: {} {name:?} kind {kind} param {param} -> {:?}",
                if create { "get_or_create" } else { "open" },
                result.as_ref().map(|_| ()).map_err(ToString::to_string)
            );
        }
        let after = region.objects().expect("objects").len();
        match model.get(name) {
            None if !create => {
                assert!(
                    matches!(&result, Err(Error::ObjectNotFound(n)) if n == name),
                    "step {step}"
                );
            }
            None if model.len() == CATALOG => {
                assert!(
                    matches!(result, Err(Error::CatalogFull { capacity }) if capacity == CATALOG as u64),
                    "step {step}: expected CatalogFull"
                );
            }
            None => {
                let handle =
                    result.unwrap_or_else(|e| panic!("step {step}: create {name:?} failed: {e}"));
                assert_eq!(
                    after,
                    before + 1,
                    "step {step}: created, but the catalog did not grow"
                );
                let mut obj = Obj::initial(kind, param);
                assert!(
                    same_contents(&handle, &obj),
                    "step {step}: fresh {name:?} holds no initial contents"
                );
                if code & 0x80 != 0 {
                    mutate(&handle, &mut obj, param);
                    mutated = true;
                }
                model.insert(name, obj);
            }
            Some(existing) if existing.kind() != kind => {
                assert!(
                    matches!(&result, Err(Error::TypeMismatch { name: n, .. }) if n == name),
                    "step {step}: expected TypeMismatch"
                );
            }
            Some(existing) => {
                let wanted = Obj::initial(kind, param);
                let shape_differs = create
                    && match (existing, &wanted) {
                        (Obj::Bytes(a), Obj::Bytes(b)) => a.len() != b.len(),
                        (Obj::List { capacity: a, .. }, Obj::List { capacity: b, .. })
                        | (Obj::Queue { capacity: a, .. }, Obj::Queue { capacity: b, .. }) => {
                            a != b
                        }
                        _ => false,
                    };
                if shape_differs {
                    match (existing, &wanted) {
                        (Obj::Bytes(a), Obj::Bytes(b)) => assert!(
                            matches!(result, Err(Error::LengthMismatch { expected, found }) if expected == b.len() as u64 && found == a.len() as u64),
                            "step {step}: expected LengthMismatch"
                        ),
                        _ => assert!(
                            matches!(&result, Err(Error::TypeMismatch { name: n, .. }) if n == name),
                            "step {step}: expected TypeMismatch"
                        ),
                    }
                } else {
                    let handle =
                        result.unwrap_or_else(|e| panic!("step {step}: open {name:?} failed: {e}"));
                    assert!(
                        same_contents(&handle, existing),
                        "step {step}: {name:?} does not hold the model's contents"
                    );
                    if code & 0x80 != 0 {
                        let obj = model.get_mut(name).expect("in the model");
                        mutate(&handle, obj, param);
                        mutated = true;
                    }
                }
            }
        }
        // A mutation must not change the catalog either.
        let now = if mutated {
            region.objects().expect("objects").len()
        } else {
            after
        };
        assert_eq!(now, model.len(), "step {step}: catalog size after");
    }
    common::assert_check_clean(region);
    for (name, obj) in &model {
        let handle = open(region, name, obj.kind()).expect("a model object opens");
        assert!(same_contents(&handle, obj), "{name:?} at the end");
        if let (Handle::Queue(q), Obj::Queue { items, .. }) = (&handle, obj) {
            for item in items {
                assert_eq!(q.try_pop(), Some(*item), "{name:?} drains in order");
            }
            assert_eq!(q.try_pop(), None);
        }
    }
}

fuzz_target!(
    init: {
        // Every kind created, mutated and reopened until the catalog is full, then a reset:
        // the region must be as new.
        let mut input = Vec::new();
        for name in 0..12u8 {
            let kind = name % 6;
            input.extend_from_slice(&[0x80 | kind << 1, name, name + 1, 0x81 | kind << 1, name, 2]);
        }
        run(&input);
        scratch().reset();
        scratch().assert_pristine();
    },
    |data: &[u8]| run(data)
);
