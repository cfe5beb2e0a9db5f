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

fn temp_region(tag: &str) -> (Region, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("shmarena-ns-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    (Region::create(&path, 1 << 20).unwrap(), path)
}

#[test]
fn bool_and_char_attributes_read_back() {
    let (region, path) = temp_region("bool");
    let ns = region.namespace("flags").unwrap();
    ns.set("verbose", true).unwrap();
    ns.set("mode", 'x').unwrap();
    let seen = Region::open(&path).unwrap().namespace("flags").unwrap();
    assert!(seen.get::<bool>("verbose").unwrap());
    assert_eq!(seen.get::<char>("mode").unwrap(), 'x');
    ns.set("verbose", false).unwrap();
    assert!(!seen.get::<bool>("verbose").unwrap());
    assert!(matches!(
        seen.get::<u8>("verbose"),
        Err(Error::TypeMismatch { .. })
    ));
    drop((ns, seen, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn string_bytes_and_pod_attributes_are_shared_and_type_checked() {
    let (region, path) = temp_region("strings");
    let ns = region.namespace("cfg").unwrap();
    ns.set_str::<16>("name", "bob").unwrap();
    ns.set_bytes::<8>("key", b"\x00\x01\xff").unwrap();
    ns.set_pod("window", [1u32, 2, 3]).unwrap();

    let other = Region::open(&path).unwrap();
    let seen = other.namespace("cfg").unwrap();
    assert_eq!(seen.get_str::<16>("name").unwrap(), "bob");
    assert_eq!(seen.get_bytes::<8>("key").unwrap(), b"\x00\x01\xff");
    assert_eq!(seen.get_pod::<[u32; 3]>("window").unwrap(), [1, 2, 3]);

    seen.set_str::<16>("name", "alice").unwrap(); // replaced whole
    assert_eq!(ns.get_str::<16>("name").unwrap(), "alice");
    ns.set_str::<16>("name", "").unwrap();
    assert_eq!(seen.get_str::<16>("name").unwrap(), "");

    assert!(matches!(
        ns.set_str::<16>("name", "a string longer than 16 bytes"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        seen.get_str::<32>("name"),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        seen.get::<u64>("name"),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        seen.get_str::<16>("missing"),
        Err(Error::ObjectNotFound(_))
    ));
    let names: Vec<String> = seen
        .attributes()
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["key", "name", "window"]);
    drop((ns, seen, other, region));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn racing_first_sets_of_a_string_all_succeed() {
    let (region, path) = temp_region("race");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ns = region.namespace("race").unwrap();
            std::thread::spawn(move || {
                for round in 0..50 {
                    ns.set_str::<24>(&format!("a{round}"), &format!("thread {t}"))
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let ns = region.namespace("race").unwrap();
    for round in 0..50 {
        let got = ns.get_str::<24>(&format!("a{round}")).unwrap();
        assert!(got.starts_with("thread "), "{got}");
    }
    drop((ns, region));
    std::fs::remove_file(path).unwrap();
}
