//! Four processes fill one shared dict and one shared list, as in Python's
//!
//! ```python
//! def f(d, l, k):
//!     d[f'worker-{k}'] = k * k
//!     d['visits'] = d.get('visits', 0) + 1    # loses updates, even through a Manager
//!     if k == 0:
//!         d['你好世界'] = 2
//!     l.extend([10 * k, 10 * k + 1, 10 * k + 2])
//!
//! with Manager() as manager:
//!     d, l = manager.dict(), manager.list()
//!     ps = [Process(target=f, args=(d, l, k)) for k in range(4)]
//! ```
//!
//! The dict is a [`shmarena::HashMap`] with [`FixedStr`] keys (a `String` cannot live in
//! shared memory; a `FixedStr<N>` holds up to N bytes of UTF-8 inline), the list a
//! [`shmarena::List`]. There is no manager process: every operation is a direct
//! shared-memory access, and `fetch_add` counts without the get-then-set race.
//!
//! Run it with `cargo run -p shmarena --example dict_and_list`.

use std::collections::BTreeMap;
use std::process::Command;

use shmarena::{FixedStr, Region, RegionExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Dict keys: up to 16 bytes of UTF-8.
type Key = FixedStr<16>;

const PROCESSES: u64 = 4;

fn main() -> Result {
    // With `child <region> <index>` the program is child number <index> (multiprocessing's
    // spawn start method runs your program again in the same way).
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, region, index] if role == "child" => child(region, index.parse()?),
        _ => parent(),
    }
}

/// Creates the region in /dev/shm, runs the children, prints both, removes the region.
fn parent() -> Result {
    let name = format!("shmarena-example-dict-{}", std::process::id());
    let region = Region::create(&name, 16 << 20)?;
    let outcome = run(&region, &name);
    Region::unlink(&name)?;
    outcome
}

fn run(region: &Region, name: &str) -> Result {
    // Sizes are fixed at creation: 64 slots in the map, room for 100 list elements.
    let dict = region.hash_map::<Key, i64>("dict", 64)?;
    let list = region.list::<u64>("list", 100)?;

    let exe = std::env::current_exe()?;
    let children = (0..PROCESSES)
        .map(|index| {
            Command::new(&exe)
                .args(["child", name, &index.to_string()])
                .spawn()
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a child failed: {status}").into());
        }
    }

    // The map iterates in slot (hash) order, each entry a `Result` (an entry may be found
    // half written by a process killed while writing it); a BTreeMap sorts by key.
    let mut entries = BTreeMap::new();
    for entry in dict.iter() {
        let (key, value) = entry?;
        entries.insert(key.as_str()?.to_owned(), value);
    }
    println!("dict: {entries:?}");

    // The children's pushes interleave in any order: sort for a stable printout.
    let mut items = list.snapshot()?;
    items.sort_unstable();
    println!("list: {items:?}");
    Ok(())
}

/// Child `index`: one key of its own, one shared counter, three list elements.
fn child(name: &str, index: u64) -> Result {
    let region = Region::open(name)?;
    let dict = region.open_hash_map::<Key, i64>("dict")?;
    let list = region.open_list::<u64>("list")?;

    // d[f'worker-{k}'] = k * k
    let key = Key::new(&format!("worker-{index}"))?;
    dict.insert(key, (index * index) as i64)?;
    // d['visits'] += 1, atomically: exact however many processes count at once.
    dict.fetch_add(Key::new("visits")?, 1)?;
    if index == 0 {
        dict.insert(Key::new("你好世界")?, 2)?;
    }
    // l.extend(...): each push is atomic and returns the element's index.
    list.extend([10 * index, 10 * index + 1, 10 * index + 2])?;
    Ok(())
}
