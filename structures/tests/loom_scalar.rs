//! Loom models of the shipping scalar operations (`AtomicScalar`, the cell behind `Value`
//! and every `Array` element). Run with `RUSTFLAGS="--cfg loom"`.

#![cfg(loom)]
#![allow(clippy::float_cmp)] // the values are exact binary fractions

use loom::sync::Arc;
use loom::thread;
use shmarena::AtomicScalar;

#[test]
fn concurrent_float_fetch_adds_lose_no_update() {
    loom::model(|| {
        let cell = Arc::new(AtomicScalar::new(0.5f64));
        let other = Arc::clone(&cell);
        let adder = thread::spawn(move || other.fetch_add(1.0));
        let mine = cell.fetch_add(2.0);
        let theirs = adder.join().unwrap();
        assert_eq!(cell.load(), 3.5);
        // Each saw the value before its own add: one saw the other's result or neither did.
        assert!((mine == 0.5 && theirs == 2.5) || (theirs == 0.5 && mine == 1.5));
    });
}

#[test]
fn checked_add_racing_a_fetch_add_never_overflows_silently() {
    loom::model(|| {
        let cell = Arc::new(AtomicScalar::new(250u8));
        let other = Arc::clone(&cell);
        let adder = thread::spawn(move || other.fetch_add(3));
        let checked = cell.checked_add(4);
        adder.join().unwrap();
        match checked {
            // Ran first (254) and the wrapping add then made 1, or ran second and refused.
            Ok(254) => assert_eq!(cell.load(), 1),
            Err(_) => assert_eq!(cell.load(), 253),
            other => panic!("impossible checked_add result {other:?}"),
        }
    });
}

#[test]
fn float_fetch_max_racing_fetch_add_keeps_a_sequential_result() {
    loom::model(|| {
        let cell = Arc::new(AtomicScalar::new(1.0f32));
        let other = Arc::clone(&cell);
        let maxer = thread::spawn(move || other.fetch_max(5.0));
        cell.fetch_add(10.0);
        maxer.join().unwrap();
        // max then add: 15; add then max: 11.
        let result = cell.load();
        assert!(result == 15.0 || result == 11.0, "got {result}");
    });
}
