//! Property tests: `Value` and `Array` operations in a region agree with plain Rust
//! arithmetic on a local model, for every operation and edge values.

#![cfg(not(loom))]

use proptest::prelude::*;
use shmarena::{Error, Region, RegionExt};

#[derive(Clone, Debug)]
enum Op {
    Store(i16),
    Swap(i16),
    FetchAdd(i16),
    FetchSub(i16),
    FetchMax(i16),
    FetchMin(i16),
    FetchAnd(i16),
    FetchOr(i16),
    FetchXor(i16),
    CheckedAdd(i16),
    CheckedSub(i16),
    CompareExchange(i16, i16),
}

fn op() -> impl Strategy<Value = Op> {
    let v = prop_oneof![
        any::<i16>(),
        Just(i16::MAX),
        Just(i16::MIN),
        Just(0),
        -3i16..3
    ];
    prop_oneof![
        v.clone().prop_map(Op::Store),
        v.clone().prop_map(Op::Swap),
        v.clone().prop_map(Op::FetchAdd),
        v.clone().prop_map(Op::FetchSub),
        v.clone().prop_map(Op::FetchMax),
        v.clone().prop_map(Op::FetchMin),
        v.clone().prop_map(Op::FetchAnd),
        v.clone().prop_map(Op::FetchOr),
        v.clone().prop_map(Op::FetchXor),
        v.clone().prop_map(Op::CheckedAdd),
        v.clone().prop_map(Op::CheckedSub),
        (v.clone(), v).prop_map(|(a, b)| Op::CompareExchange(a, b)),
    ]
}

fn temp_region(tag: &str) -> (Region, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("shmarena-props-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    (Region::create(&path, 1 << 20).unwrap(), path)
}

proptest! {
    #[test]
    fn integer_value_operations_match_wrapping_arithmetic(ops in prop::collection::vec(op(), 1..64)) {
        let (region, path) = temp_region("int");
        let value = region.value::<i16>("v", 0).unwrap();
        let mut model: i16 = 0;
        for op in ops {
            let before = model;
            match op {
                Op::Store(x) => { value.store(x); model = x; }
                Op::Swap(x) => { prop_assert_eq!(value.swap(x), before); model = x; }
                Op::FetchAdd(x) => { prop_assert_eq!(value.fetch_add(x), before); model = before.wrapping_add(x); }
                Op::FetchSub(x) => { prop_assert_eq!(value.fetch_sub(x), before); model = before.wrapping_sub(x); }
                Op::FetchMax(x) => { prop_assert_eq!(value.fetch_max(x), before); model = before.max(x); }
                Op::FetchMin(x) => { prop_assert_eq!(value.fetch_min(x), before); model = before.min(x); }
                Op::FetchAnd(x) => { prop_assert_eq!(value.fetch_and(x), before); model = before & x; }
                Op::FetchOr(x) => { prop_assert_eq!(value.fetch_or(x), before); model = before | x; }
                Op::FetchXor(x) => { prop_assert_eq!(value.fetch_xor(x), before); model = before ^ x; }
                Op::CheckedAdd(x) => match (value.checked_add(x), before.checked_add(x)) {
                    (Ok(new), Some(expected)) => { prop_assert_eq!(new, expected); model = expected; }
                    (Err(Error::Overflow), None) => {}
                    (got, expected) => prop_assert!(false, "checked_add: {:?} vs {:?}", got, expected),
                },
                Op::CheckedSub(x) => match (value.checked_sub(x), before.checked_sub(x)) {
                    (Ok(new), Some(expected)) => { prop_assert_eq!(new, expected); model = expected; }
                    (Err(Error::Overflow), None) => {}
                    (got, expected) => prop_assert!(false, "checked_sub: {:?} vs {:?}", got, expected),
                },
                Op::CompareExchange(current, new) => {
                    let result = value.compare_exchange(current, new);
                    if before == current {
                        prop_assert_eq!(result, Ok(before));
                        model = new;
                    } else {
                        prop_assert_eq!(result, Err(before));
                    }
                }
            }
            prop_assert_eq!(value.load(), model);
        }
        drop(value);
        drop(region);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn float_fetch_add_matches_sequential_float_addition(adds in prop::collection::vec(-1e6f64..1e6, 1..64)) {
        let (region, path) = temp_region("float");
        let value = region.value::<f64>("f", 0.0).unwrap();
        let mut model = 0.0f64;
        for x in adds {
            prop_assert_eq!(value.fetch_add(x).to_bits(), model.to_bits());
            model += x;
        }
        prop_assert_eq!(value.load().to_bits(), model.to_bits());
        drop(value);
        drop(region);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn array_matches_a_vec_model(initial in prop::collection::vec(any::<u32>(), 0..40),
                                 writes in prop::collection::vec((any::<usize>(), any::<u32>()), 0..40)) {
        let (region, path) = temp_region("array");
        let array = region.array::<u32>("a", &initial).unwrap();
        let mut model = initial.clone();
        prop_assert_eq!(array.len(), model.len());
        for (index, x) in writes {
            let index = if model.is_empty() { index } else { index % (model.len() + 1) };
            match (array.set(index, x), model.get_mut(index)) {
                (Ok(()), Some(slot)) => *slot = x,
                (Err(Error::IndexOutOfBounds { index: i, len }), None) => {
                    prop_assert_eq!(i, index as u64);
                    prop_assert_eq!(len, model.len() as u64);
                }
                (got, _) => prop_assert!(false, "set({}) gave {:?}", index, got),
            }
        }
        prop_assert_eq!(array.snapshot(), model.clone());
        // Reopening by name sees the same contents; a different length is refused.
        prop_assert_eq!(region.open_array::<u32>("a").unwrap().snapshot(), model.clone());
        let longer = vec![0u32; initial.len() + 1];
        prop_assert!(
            matches!(region.array::<u32>("a", &longer), Err(Error::LengthMismatch { .. })),
            "a different length must be refused"
        );
        drop(array);
        drop(region);
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn bool_and_char_reject_invalid_bits_written_by_another_process() {
    let (region, path) = temp_region("validate");
    let flag = region.value::<bool>("flag", true).unwrap();
    let letter = region.value::<char>("letter", '你').unwrap();
    assert!(flag.try_load().unwrap());
    assert_eq!(letter.try_load().unwrap(), '你');
    // Another process (or a corrupt file) writes raw bits through a differently typed view.
    let memory = region.memory();
    let flag_offset = region.find_object("flag").unwrap().unwrap().offset;
    let letter_offset = region.find_object("letter").unwrap().unwrap().offset;
    let word = |offset| shmarena::engine::Memory::word(memory, offset).unwrap();
    word(flag_offset).store(7, std::sync::atomic::Ordering::SeqCst);
    word(letter_offset).store(0xD800, std::sync::atomic::Ordering::SeqCst); // a surrogate
    assert!(matches!(
        flag.try_load(),
        Err(Error::InvalidValue {
            type_name: "bool",
            bits: 7
        })
    ));
    assert!(matches!(
        letter.try_load(),
        Err(Error::InvalidValue {
            type_name: "char",
            bits: 0xD800
        })
    ));
    flag.store(false);
    assert!(!flag.try_load().unwrap());
    drop((flag, letter, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn opening_a_name_as_another_type_is_a_type_mismatch() {
    let (region, path) = temp_region("mismatch");
    region.value::<u64>("x", 1).unwrap();
    assert!(matches!(
        region.value::<i64>("x", 1),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        region.open_array::<u64>("x"),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        region.sharded_counter("x"),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        region.open_value::<u64>("missing"),
        Err(Error::ObjectNotFound(_))
    ));
    assert!(matches!(
        region.value::<u64>("", 0),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        region.value::<u64>(&"n".repeat(65), 0),
        Err(Error::InvalidName { .. })
    ));
    drop(region);
    std::fs::remove_file(path).unwrap();
}
