//! Namespace: attributes set by one handle are seen by another, listed with their types,
//! and typed access refuses the wrong type.

#![cfg(not(loom))]

use shmarena::{Error, ObjectKind, Region, RegionExt};

#[test]
fn attributes_are_shared_listed_and_type_checked() {
    let path = std::env::temp_dir().join(format!("shmarena-ns-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let region = Region::create(&path, 1 << 20).unwrap();
    let other = Region::open(&path).unwrap(); // another process would do the same
    let ns = region.namespace("cfg").unwrap();
    ns.set("workers", 4u32).unwrap();
    ns.set("ratio", 0.5f64).unwrap();
    ns.set("workers", 8u32).unwrap(); // overwrite
    region.list::<u64>("cfg.results", 16).unwrap(); // any object under the prefix
    region.value::<u8>("elsewhere", 1).unwrap();

    let seen = other.namespace("cfg").unwrap();
    assert_eq!(seen.get::<u32>("workers").unwrap(), 8);
    assert_eq!(
        seen.get::<f64>("ratio").unwrap().to_bits(),
        0.5f64.to_bits()
    );
    assert!(seen.contains("ratio").unwrap());
    assert!(!seen.contains("missing").unwrap());
    assert!(matches!(
        seen.get::<u64>("workers"),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        seen.get::<u32>("missing"),
        Err(Error::ObjectNotFound(_))
    ));
    assert!(matches!(
        seen.set("workers", 1.0f32),
        Err(Error::TypeMismatch { .. })
    ));
    seen.value::<u32>("workers", 0).unwrap().fetch_add(1);
    assert_eq!(ns.get::<u32>("workers").unwrap(), 9);

    let attributes = seen.attributes().unwrap();
    let listed: Vec<(&str, ObjectKind)> = attributes
        .iter()
        .map(|(name, e)| (name.as_str(), e.descriptor.kind))
        .collect();
    assert_eq!(
        listed,
        [
            ("ratio", ObjectKind::Value),
            ("results", ObjectKind::List),
            ("workers", ObjectKind::Value)
        ]
    );
    // The empty namespace is the whole catalog.
    assert_eq!(region.namespace("").unwrap().attributes().unwrap().len(), 4);
    assert!(matches!(
        region.namespace(&"n".repeat(64)),
        Err(Error::InvalidName { .. })
    ));
    drop((ns, seen, other, region));
    std::fs::remove_file(path).unwrap();
}
