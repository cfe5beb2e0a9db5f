//! `RegionExt`'s openers: every kind has a get-or-create constructor named after it and an
//! `open_<kind>` that finds what the constructor made, and reports a missing name or an
//! object of another kind (or type) as such. A second region handle stands in for another
//! process.

#![cfg(not(loom))]

use std::time::Duration;

use shmarena::{Error, FixedStr, Region, RegionExt, Result};

fn temp_region(tag: &str) -> (Region, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("shmarena-openers-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    (Region::create(&path, 4 << 20).unwrap(), path)
}

/// Runs `f` with a fresh region and a second handle on it ("another process").
fn with_two_handles(tag: &str, f: impl FnOnce(&Region, &Region)) {
    let (region, path) = temp_region(tag);
    let other = Region::open(&path).unwrap();
    f(&region, &other);
    drop(other);
    drop(region);
    std::fs::remove_file(path).unwrap();
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T>, name: &str) {
    match result {
        Err(Error::ObjectNotFound(missing)) => {
            assert_eq!(missing, name);
            let message = Error::ObjectNotFound(missing).to_string();
            assert!(message.contains(name), "{message}");
        }
        other => panic!("expected ObjectNotFound({name:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_mismatch<T: std::fmt::Debug>(result: Result<T>, name: &str) {
    match result {
        Err(error @ Error::TypeMismatch { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains(&format!("{name:?}")),
                "the message names the object: {message}"
            );
            let Error::TypeMismatch {
                expected, found, ..
            } = error
            else {
                unreachable!()
            };
            assert_ne!(expected, found, "{message}");
        }
        other => panic!("expected TypeMismatch for {name:?}, got {other:?}"),
    }
}

#[test]
fn every_scalar_and_lock_opener_finds_what_its_constructor_made() {
    with_two_handles("finds-locks", |region, other| {
        let value = region.value::<i32>("value", 5).unwrap();
        other.open_value::<i32>("value").unwrap().store(6);
        assert_eq!(value.load(), 6);

        let array = region.array::<u16>("array", &[1, 2, 3]).unwrap();
        other
            .open_array::<u16>("array")
            .unwrap()
            .set(1, 20)
            .unwrap();
        assert_eq!(array.snapshot(), [1, 20, 3]);
        let zeros = region.array_zeroed::<f64>("zeros", 4).unwrap();
        assert_eq!(other.open_array::<f64>("zeros").unwrap().len(), zeros.len());

        let counter = region.sharded_counter("counter").unwrap();
        counter.add(2);
        other.open_sharded_counter("counter").unwrap().add(3);
        assert_eq!(counter.sum(), 5);

        let mutex = region.mutex::<[u64; 2]>("mutex", [1, 2]).unwrap();
        *other
            .open_mutex::<[u64; 2]>("mutex")
            .unwrap()
            .lock()
            .unwrap() = [3, 4];
        assert_eq!(*mutex.lock().unwrap(), [3, 4]);

        let lock = region.lock("lock").unwrap();
        let guard = lock.lock().unwrap();
        assert!(other.open_lock("lock").unwrap().is_locked());
        drop(guard);

        let rlock = region.rlock("rlock").unwrap();
        let guard = rlock.lock().unwrap();
        let theirs = other.open_rlock("rlock").unwrap();
        assert!(theirs.try_lock().is_err(), "held by the first handle");
        drop(guard);
        drop(theirs.try_lock().expect("free again"));

        let condvar = region.condvar("condvar").unwrap();
        let theirs = other.open_condvar("condvar").unwrap();
        assert_eq!(condvar.name(), theirs.name());
        let data = region.mutex::<u32>("condvar-data", 0).unwrap();
        let guard = data.lock().unwrap();
        let (guard, timeout) = theirs
            .wait_timeout(guard, Duration::from_millis(1))
            .unwrap();
        assert!(timeout.timed_out());
        drop(guard);

        let event = region.event("event").unwrap();
        other.open_event("event").unwrap().set();
        assert!(event.is_set());

        let semaphore = region.semaphore("semaphore", 2).unwrap();
        let bounded = region.bounded_semaphore("bounded", 1).unwrap();
        let theirs = other.open_semaphore("semaphore").unwrap();
        assert!(theirs.try_acquire());
        assert_eq!(semaphore.available(), 1);
        assert_eq!(theirs.capacity(), semaphore.capacity());
        let theirs = other.open_semaphore("bounded").unwrap();
        assert_eq!(theirs.capacity(), 1);
        assert!(theirs.try_acquire());
        assert!(!bounded.try_acquire());

        let barrier = region.barrier("barrier", 3).unwrap();
        let theirs = other.open_barrier("barrier").unwrap();
        assert_eq!(theirs.parties(), 3);
        assert_eq!(barrier.parties(), 3);
    });
}

#[test]
fn every_collection_opener_finds_what_its_constructor_made() {
    with_two_handles("finds-collections", |region, other| {
        let queue = region.queue::<[u32; 2]>("queue", 8).unwrap();
        queue.push([1, 2]);
        assert_eq!(other.open_queue::<[u32; 2]>("queue").unwrap().pop(), [1, 2]);
        let byte_queue = region.byte_queue("byte-queue", 8, 3).unwrap();
        byte_queue.try_push(b"abc").unwrap();
        let theirs = other.open_byte_queue("byte-queue").unwrap();
        assert_eq!(theirs.elem_size(), 3);
        assert_eq!(theirs.try_pop(), Some(b"abc".to_vec()));

        let list = region.list::<u64>("list", 8).unwrap();
        other.open_list::<u64>("list").unwrap().push(9).unwrap();
        assert_eq!(list.snapshot().unwrap(), [9]);
        let byte_list = region.byte_list("byte-list", 8, 2).unwrap();
        other
            .open_byte_list("byte-list")
            .unwrap()
            .push(b"hi")
            .unwrap();
        assert_eq!(byte_list.get(0).unwrap(), Some(b"hi".to_vec()));

        let map = region.hash_map::<FixedStr<8>, u64>("map", 16).unwrap();
        let key = FixedStr::new("one").unwrap();
        other
            .open_hash_map::<FixedStr<8>, u64>("map")
            .unwrap()
            .insert(key, 1)
            .unwrap();
        assert_eq!(map.get(&key).unwrap(), Some(1));
        let byte_map = region.byte_map("byte-map", 16, 4, 4).unwrap();
        other
            .open_byte_map("byte-map")
            .unwrap()
            .insert(b"k", b"v")
            .unwrap();
        assert!(byte_map.get(b"k").unwrap().is_some());

        let set = region.hash_set::<u64>("set", 16).unwrap();
        assert!(other
            .open_hash_set::<u64>("set")
            .unwrap()
            .insert(7)
            .unwrap());
        assert!(set.contains(&7).unwrap());
        let byte_set = region.byte_set("byte-set", 16, 4).unwrap();
        assert!(other
            .open_byte_set("byte-set")
            .unwrap()
            .insert(b"abc")
            .unwrap());
        assert!(byte_set.contains(b"abc").unwrap());

        region
            .namespace("config")
            .unwrap()
            .set("workers", 8u32)
            .unwrap();
        let theirs = other.open_namespace("config").unwrap();
        assert_eq!(theirs.get::<u32>("workers").unwrap(), 8);
    });
}

#[test]
fn every_opener_reports_a_missing_name() {
    with_two_handles("missing", |_, region| {
        let name = "nothing-by-this-name";
        assert_not_found(region.open_value::<u64>(name), name);
        assert_not_found(region.open_array::<u64>(name), name);
        assert_not_found(region.open_sharded_counter(name), name);
        assert_not_found(region.open_mutex::<u64>(name), name);
        assert_not_found(region.open_lock(name), name);
        assert_not_found(region.open_rlock(name), name);
        assert_not_found(region.open_condvar(name), name);
        assert_not_found(region.open_event(name), name);
        assert_not_found(region.open_semaphore(name), name);
        assert_not_found(region.open_barrier(name), name);
        assert_not_found(region.open_queue::<u64>(name), name);
        assert_not_found(region.open_byte_queue(name), name);
        assert_not_found(region.open_list::<u64>(name), name);
        assert_not_found(region.open_byte_list(name), name);
        assert_not_found(region.open_hash_map::<u64, u64>(name), name);
        assert_not_found(region.open_byte_map(name), name);
        assert_not_found(region.open_hash_set::<u64>(name), name);
        assert_not_found(region.open_byte_set(name), name);
        assert_not_found(region.open_namespace(name), name);
        // An opener creates nothing.
        assert!(region.objects().unwrap().is_empty());
    });
}

#[test]
fn every_opener_refuses_an_object_of_another_kind() {
    with_two_handles("kind", |region, other| {
        // An event is no other kind of object; a value is no event.
        region.event("event").unwrap();
        region.value::<u64>("value", 0).unwrap();
        let name = "event";
        assert_mismatch(other.open_value::<u64>(name), name);
        assert_mismatch(other.open_array::<u64>(name), name);
        assert_mismatch(other.open_sharded_counter(name), name);
        assert_mismatch(other.open_mutex::<u64>(name), name);
        assert_mismatch(other.open_lock(name), name);
        assert_mismatch(other.open_rlock(name), name);
        assert_mismatch(other.open_condvar(name), name);
        assert_mismatch(other.open_event("value"), "value");
        assert_mismatch(other.open_semaphore(name), name);
        assert_mismatch(other.open_barrier(name), name);
        assert_mismatch(other.open_queue::<u64>(name), name);
        assert_mismatch(other.open_byte_queue(name), name);
        assert_mismatch(other.open_list::<u64>(name), name);
        assert_mismatch(other.open_byte_list(name), name);
        assert_mismatch(other.open_hash_map::<u64, u64>(name), name);
        assert_mismatch(other.open_byte_map(name), name);
        assert_mismatch(other.open_hash_set::<u64>(name), name);
        assert_mismatch(other.open_byte_set(name), name);
        // A namespace is a name prefix: an object of that very name is not one.
        assert_mismatch(other.open_namespace(name), name);
    });
}

#[test]
fn openers_refuse_another_type_of_the_same_kind() {
    with_two_handles("type", |region, other| {
        region.mutex::<u64>("mutex", 0).unwrap();
        region.lock("lock").unwrap();
        region.rlock("rlock").unwrap();
        region.queue::<u64>("queue", 4).unwrap();
        region.list::<u64>("list", 4).unwrap();
        region.hash_map::<u64, u64>("map", 16).unwrap();
        region.hash_set::<u64>("set", 16).unwrap();
        region.value::<u32>("value", 0).unwrap();
        region.array::<i32>("array", &[0]).unwrap();

        assert_mismatch(other.open_mutex::<u32>("mutex"), "mutex");
        assert_mismatch(other.open_mutex::<[u64; 2]>("mutex"), "mutex");
        assert_mismatch(other.open_lock("mutex"), "mutex");
        assert_mismatch(other.open_lock("rlock"), "rlock");
        assert_mismatch(other.open_rlock("lock"), "lock");
        assert_mismatch(other.open_queue::<u32>("queue"), "queue");
        assert_mismatch(other.open_list::<[u64; 2]>("list"), "list");
        assert_mismatch(other.open_hash_map::<u64, u32>("map"), "map");
        assert_mismatch(other.open_hash_map::<u64, u64>("set"), "set");
        assert_mismatch(other.open_hash_set::<u64>("map"), "map");
        assert_mismatch(other.open_byte_set("map"), "map");
        assert_mismatch(other.open_byte_map("set"), "set");
        assert_mismatch(other.open_value::<i32>("value"), "value");
        assert_mismatch(other.open_array::<u32>("array"), "array");

        // Types of one size: scalars by their typecodes, user types by name.
        assert_mismatch(other.open_hash_map::<i64, f64>("map"), "map");
        assert_mismatch(other.open_hash_map::<u64, [u8; 8]>("map"), "map");
        assert_mismatch(other.open_hash_set::<f64>("set"), "set");
        assert_mismatch(other.open_queue::<i64>("queue"), "queue");
        assert_mismatch(other.open_list::<f64>("list"), "list");
        assert_mismatch(other.open_mutex::<i64>("mutex"), "mutex");
        region.queue::<Pair>("pairs", 4).unwrap();
        region.list::<Pair>("pair-list", 4).unwrap();
        region
            .mutex::<Pair>("pair-mutex", Pair { a: 1, b: 2 })
            .unwrap();
        region.hash_map::<Pair, Pair>("pair-map", 4).unwrap();
        assert_mismatch(other.open_queue::<[u64; 2]>("pairs"), "pairs");
        assert_mismatch(other.open_queue::<other_crate::Span>("pairs"), "pairs");
        assert_mismatch(
            other.open_list::<other_crate::Span>("pair-list"),
            "pair-list",
        );
        assert_mismatch(
            other.open_mutex::<other_crate::Span>("pair-mutex"),
            "pair-mutex",
        );
        assert_mismatch(
            other.open_hash_map::<Pair, other_crate::Span>("pair-map"),
            "pair-map",
        );
    });
}

/// A program that declares the same struct under the same name elsewhere (another crate,
/// another module) shares its objects; byte views open any type of their size, and typed
/// handles open objects made by byte views.
#[test]
fn a_type_is_known_by_its_name_and_layout_not_its_path() {
    with_two_handles("identity", |region, other| {
        let pairs = region.queue::<Pair>("pairs", 4).unwrap();
        pairs.push(Pair { a: 1, b: 2 });
        let theirs = other.open_queue::<other_crate::Pair>("pairs").unwrap();
        assert_eq!(theirs.try_pop(), Some(other_crate::Pair { a: 1, b: 2 }));
        let map = region.hash_map::<u64, Pair>("map", 16).unwrap();
        map.insert(7, Pair { a: 3, b: 4 }).unwrap();
        let their_map = other
            .open_hash_map::<u64, other_crate::Pair>("map")
            .unwrap();
        assert_eq!(
            their_map.get(&7).unwrap(),
            Some(other_crate::Pair { a: 3, b: 4 })
        );

        // Byte views match any type of their size, both ways.
        let bytes = other.open_byte_map("map").unwrap();
        assert_eq!(bytes.len(), 1);
        let raw = other.byte_queue("raw", 4, 16).unwrap();
        raw.try_push(&[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])
            .unwrap();
        assert_eq!(
            region.open_queue::<Pair>("raw").unwrap().try_pop(),
            Some(Pair { a: 1, b: 2 })
        );
        assert_eq!(region.open_queue::<[u64; 2]>("raw").unwrap().len(), 0);
    });
}

/// Types another program declares: `Pair` under the same name, `Span` of the same layout.
mod other_crate {
    #[derive(Clone, Copy, Debug, PartialEq, shmarena::Pod, shmarena::Zeroable)]
    #[bytemuck(crate = "shmarena::bytemuck")]
    #[repr(C)]
    pub struct Pair {
        pub a: u64,
        pub b: u64,
    }

    #[derive(Clone, Copy, Debug, PartialEq, shmarena::Pod, shmarena::Zeroable)]
    #[bytemuck(crate = "shmarena::bytemuck")]
    #[repr(C)]
    pub struct Span {
        pub start: u64,
        pub end: u64,
    }
}

/// The message of opening `name` with the wrong type, after the object's name, with each
/// user type's tag (`#` and 8 hex digits, a fingerprint of its name) shown as `#tag`.
fn mismatch_message<T: std::fmt::Debug>(result: Result<T>) -> String {
    match result {
        Err(error @ Error::TypeMismatch { .. }) => {
            let message = error.to_string();
            let mut out = String::new();
            let mut rest = message.as_str();
            while let Some(at) = rest.find('#') {
                let tag = rest.get(at + 1..at + 9).unwrap_or_default();
                assert!(tag.chars().all(|c| c.is_ascii_hexdigit()) && tag.len() == 8);
                out.push_str(&rest[..at]);
                out.push_str("#tag");
                rest = &rest[at + 9..];
            }
            out + rest
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, shmarena::Pod, shmarena::Zeroable)]
#[bytemuck(crate = "shmarena::bytemuck")]
#[repr(C)]
struct Pair {
    a: u64,
    b: u64,
}

#[test]
fn type_mismatch_messages_name_rust_types() {
    with_two_handles("messages", |region, other| {
        region.value::<i32>("v", 1).unwrap();
        assert_eq!(
            mismatch_message(other.open_value::<f64>("v")),
            "object \"v\" has type Value<i32> (Python typecode 'i'), \
             not Value<f64> (Python typecode 'd')"
        );
        assert_eq!(
            mismatch_message(other.value::<bool>("v", true)),
            "object \"v\" has type Value<i32> (Python typecode 'i'), not Value<bool>"
        );

        region.array::<u16>("a", &[1, 2, 3]).unwrap();
        assert_eq!(
            mismatch_message(other.open_array::<i16>("a")),
            "object \"a\" has type Array<u16> of length 3 (Python typecode 'H'), \
             not Array<i16> (Python typecode 'h')"
        );

        region.mutex::<Pair>("m", Pair { a: 1, b: 2 }).unwrap();
        assert_eq!(
            mismatch_message(other.open_mutex::<u32>("m")),
            "object \"m\" has type Mutex<16-byte type #tag, align 8>, not Mutex<u32>"
        );
        assert_eq!(
            mismatch_message(other.open_lock("m")),
            "object \"m\" has type Mutex<16-byte type #tag, align 8>, not Lock (a Mutex<()>)"
        );

        region.hash_map::<u64, Pair>("h", 16).unwrap();
        assert_eq!(
            mismatch_message(other.open_hash_map::<u64, u64>("h")),
            "object \"h\" has type HashMap<u64, 16-byte type #tag> with 16 slots, \
             not HashMap<u64, u64>"
        );
        region.hash_map::<u64, u64>("scalars", 16).unwrap();
        assert_eq!(
            mismatch_message(other.open_hash_map::<i64, f64>("scalars")),
            "object \"scalars\" has type HashMap<u64, u64> with 16 slots, \
             not HashMap<i64, f64>"
        );
        assert_eq!(
            mismatch_message(other.hash_set::<[u8; 8]>("scalars", 16)),
            "object \"scalars\" has type HashMap<u64, u64> with 16 slots, \
             not HashSet<[u8; 8]> with 16 slots"
        );

        region.queue::<Pair>("q", 4).unwrap();
        assert_eq!(
            mismatch_message(other.queue::<Pair>("q", 8)),
            "object \"q\" has type Queue<16-byte type #tag> of capacity 4, \
             not Queue<Pair> of capacity 8"
        );
        assert_eq!(
            mismatch_message(other.open_queue::<[u64; 2]>("q")),
            "object \"q\" has type Queue<16-byte type #tag> of capacity 4, not Queue<[u64; 2]>"
        );
        assert_eq!(
            mismatch_message(other.open_semaphore("q")),
            "object \"q\" has type Queue<16-byte type #tag> of capacity 4, not Semaphore"
        );
    });
}
