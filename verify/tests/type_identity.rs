//! Type identity across programs: the worker binary declares its own `Pair` (same name and
//! layout as this test's) and a `Span` of the same layout; it shares the `Queue<Pair>` and
//! is refused the queue as `Queue<Span>` and a `HashMap<u64, u64>` as `HashMap<i64, f64>`.

mod common;

use common::{run_ok, TempRegion};
use shmarena::{Region, RegionExt};

#[derive(Clone, Copy, Debug, PartialEq, shmarena::Pod, shmarena::Zeroable)]
#[bytemuck(crate = "shmarena::bytemuck")]
#[repr(C)]
struct Pair {
    a: u64,
    b: u64,
}

#[test]
fn another_program_shares_a_struct_by_name_and_is_refused_other_types() {
    let temp = TempRegion::new("type-identity");
    let region = Region::create(&temp.path, 1 << 20).unwrap();
    let pairs = region.queue::<Pair>("pairs", 4).unwrap();
    pairs.push(Pair { a: 20, b: 22 });
    region.hash_map::<u64, u64>("scalars", 16).unwrap();

    let output = run_ok(&["type-identity", temp.arg()]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout, "span refused\nscalars refused\n");
    assert_eq!(pairs.try_pop(), Some(Pair { a: 20, b: 42 }));
}
