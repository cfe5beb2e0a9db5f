//! A child process sets attributes of a shared namespace and the parent reads them, as in
//! Python's
//!
//! ```python
//! def f(ns):
//!     ns.x = 10
//!     ns.ratio = 0.25
//!     ns.ready = True
//!
//! with Manager() as manager:
//!     ns = manager.Namespace()
//!     p = Process(target=f, args=(ns,))
//!     p.start(); p.join()
//!     print(ns.x, ns.ratio, ns.ready)
//! ```
//!
//! A namespace is a name prefix: attribute `x` of namespace `config` is the shared
//! [`shmarena::Value`] named `config.x`, which any process can also open by that name.
//! Attributes hold scalars (integers, floats, `bool`, `char`).
//!
//! Run it with `cargo run -p shmarena --example namespace`.

use std::process::Command;

use shmarena::{Error, Region, RegionExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result {
    // With `child <region>` the program is the child (multiprocessing's spawn start
    // method runs your program again in the same way).
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, region] if role == "child" => child(region),
        _ => parent(),
    }
}

/// Creates the region in /dev/shm, runs the child, prints the attributes, removes the
/// region.
fn parent() -> Result {
    let name = format!("shmarena-example-namespace-{}", std::process::id());
    let region = Region::create(&name, 16 << 20)?;
    let outcome = run(&region, &name);
    Region::unlink(&name)?;
    outcome
}

fn run(region: &Region, name: &str) -> Result {
    // p = Process(target=f, args=(ns,)); p.start(); p.join()
    let status = Command::new(std::env::current_exe()?)
        .args(["child", name])
        .status()?;
    if !status.success() {
        return Err(format!("the child failed: {status}").into());
    }

    // The child created the attributes: open the namespace, which must exist now.
    let ns = region.open_namespace("config")?;
    println!("x = {}", ns.get::<i64>("x")?);
    println!("ratio = {}", ns.get::<f64>("ratio")?);
    // `get` reads types whose every bit pattern is a value; a `bool` is checked on read
    // (`try_load`), through the value's full name.
    println!(
        "ready = {}",
        region.open_value::<bool>("config.ready")?.try_load()?
    );
    // Reading with another type than the attribute was set with is an error, not a
    // reinterpretation of its bits.
    let mismatch = matches!(ns.get::<f64>("x"), Err(Error::TypeMismatch { .. }));
    println!("x read as f64 is a type mismatch: {mismatch}");
    let names: Vec<String> = ns.attributes()?.into_iter().map(|(name, _)| name).collect();
    println!("attributes: {names:?}");
    Ok(())
}

/// The child: sets three attributes (each created on first set).
fn child(name: &str) -> Result {
    let region = Region::open(name)?;
    let ns = region.namespace("config")?;
    ns.set("x", 10i64)?;
    ns.set("ratio", 0.25f64)?;
    ns.set("ready", true)?;
    Ok(())
}
