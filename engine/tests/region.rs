//! Regions on real files: create, open, validation errors, the initialization wait,
//! participants and named objects.
//!
//! Every test works on its own file in the temp directory (process id + test name), so
//! tests run in parallel and in parallel test processes.

#![cfg(not(loom))]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64 as StdAtomicU64, AtomicUsize};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use shmarena_engine::layout::{HeaderFields, LAYOUT_VERSION, MAGIC, MAX_NAME_LEN, MAX_REGION_SIZE};
use shmarena_engine::participants::INIT_LOCK;
use shmarena_engine::sync::Ordering;
use shmarena_engine::{
    resolve_path, Error, Memory, ObjectKind, Outcome, OwnerId, Region, RegionOptions,
    TypeDescriptor,
};

const SIZE: u64 = 1 << 20;

/// A unique path in the temp directory, removed when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(test: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("shmarena-test-{}-{test}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }
}

impl std::ops::Deref for TempPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_word(path: &Path, offset: u64, value: u64) {
    let file = File::options().write(true).open(path).unwrap();
    file.write_all_at(&value.to_le_bytes(), offset).unwrap();
}

fn read_fields(path: &Path) -> HeaderFields {
    let mut bytes = [0u8; size_of::<HeaderFields>()];
    File::open(path)
        .unwrap()
        .read_exact_at(&mut bytes, 0)
        .unwrap();
    bytemuck::pod_read_unaligned(&bytes)
}

fn write_fields(path: &Path, fields: &HeaderFields) {
    let file = File::options().write(true).open(path).unwrap();
    file.write_all_at(bytemuck::bytes_of(fields), 0).unwrap();
}

/// A region created and closed again: what another process later opens.
fn closed_region(path: &Path) {
    drop(Region::create(path, SIZE).unwrap());
}

fn open_error(path: &Path) -> Error {
    Region::open(path).expect_err("open must fail")
}

#[test]
fn create_open_unlink() {
    let path = TempPath::new("create_open_unlink");
    let region = Region::create(&*path, SIZE).unwrap();
    assert_eq!(region.size(), SIZE);
    assert_eq!(region.path(), &*path);
    assert_eq!(region.creator_pid(), std::process::id());
    let header = *region.header();
    assert_eq!(header.magic, MAGIC);
    assert_eq!(header.layout_version, LAYOUT_VERSION);
    assert_eq!(header.region_size, SIZE);
    assert_eq!(header.checksum, header.compute_checksum());
    header.validate(SIZE).unwrap();

    let metadata = std::fs::metadata(&*path).unwrap();
    assert_eq!(metadata.len(), SIZE);
    assert_eq!(
        metadata.permissions().mode() & 0o777,
        0o600,
        "private to the user"
    );

    let opened = Region::open(&*path).unwrap();
    assert_eq!(opened.hash_seed(), region.hash_seed());
    assert_eq!(*opened.header(), header);
    assert_eq!(read_fields(&path), header, "the file holds the header");

    // Memory is shared: a block allocated through one handle is seen by the other.
    let block = region.arena().alloc(100).unwrap();
    assert_eq!(opened.arena_stats().unwrap().used, 128);
    assert!(block.offset >= header.arena_offset);

    Region::unlink(&*path).unwrap();
    assert!(!path.exists());
    assert!(matches!(open_error(&path), Error::RegionNotFound(p) if p == *path));
    assert!(matches!(
        Region::unlink(&*path),
        Err(Error::RegionNotFound(_))
    ));
    // Attached handles keep working after the unlink.
    opened.arena().free(block.offset, 100).unwrap();
    assert_eq!(region.arena_stats().unwrap().used, 0);
}

#[test]
fn create_twice_is_already_exists() {
    let path = TempPath::new("create_twice");
    let first = Region::create(&*path, SIZE).unwrap();
    let second = Region::create(&*path, SIZE);
    assert!(matches!(second, Err(Error::AlreadyExists(p)) if p == *path));
    // The failed create left the existing region alone.
    assert_eq!(Region::open(&*path).unwrap().hash_seed(), first.hash_seed());
}

#[test]
fn open_missing_is_region_not_found() {
    let path = TempPath::new("open_missing");
    assert!(matches!(open_error(&path), Error::RegionNotFound(p) if p == *path));
}

#[test]
fn random_bytes_are_not_a_region() {
    let path = TempPath::new("random_bytes");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            // xorshift64: deterministic noise
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&*path, &bytes).unwrap();
    assert_ne!(&bytes[..8], &[0; 8]);
    assert!(matches!(open_error(&path), Error::NotARegion { path: p, .. } if p == *path));
}

#[test]
fn other_layout_version_is_version_mismatch() {
    let path = TempPath::new("version");
    closed_region(&path);
    write_word(&path, 8, LAYOUT_VERSION + 41);
    match open_error(&path) {
        Error::VersionMismatch {
            found, expected, ..
        } => assert_eq!((found, expected), (LAYOUT_VERSION + 41, LAYOUT_VERSION)),
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
}

#[test]
fn short_file_is_truncated() {
    let path = TempPath::new("truncated");
    closed_region(&path);
    let file = File::options().write(true).open(&*path).unwrap();
    file.set_len(SIZE / 2).unwrap();
    match open_error(&path) {
        Error::Truncated {
            file_len, needed, ..
        } => assert_eq!((file_len, needed), (SIZE / 2, SIZE)),
        other => panic!("expected Truncated, got {other:?}"),
    }
    // Shorter than the header page itself.
    file.set_len(100).unwrap();
    match open_error(&path) {
        Error::Truncated {
            file_len, needed, ..
        } => assert_eq!((file_len, needed), (100, 4096)),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn changed_immutable_field_fails_the_checksum() {
    let path = TempPath::new("checksum");
    closed_region(&path);
    let fields = read_fields(&path);
    write_word(&path, 56, fields.catalog_capacity + 1); // catalog capacity
    match open_error(&path) {
        Error::Corrupt { field, .. } => assert_eq!(field, "header checksum"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Fields changed with a matching checksum (a buggy or hostile writer): the error names
/// the field.
#[test]
fn bad_field_with_valid_checksum_is_named() {
    type Edit = fn(&mut HeaderFields);
    let cases: [(&str, Edit); 7] = [
        ("catalog capacity", |f| f.catalog_capacity = 0),
        ("participant capacity", |f| f.participant_capacity = 0),
        ("participants offset", |f| f.participants_offset = 0),
        ("catalog offset", |f| {
            f.catalog_offset = f.participants_offset;
        }),
        ("arena offset", |f| f.arena_offset = f.catalog_offset),
        ("arena end", |f| f.arena_end -= 4096),
        ("region size", |f| f.region_size -= 4096),
    ];
    for (expected, edit) in cases {
        let path = TempPath::new(&format!("field-{}", expected.replace(' ', "_")));
        closed_region(&path);
        let mut fields = read_fields(&path);
        edit(&mut fields);
        fields.checksum = fields.compute_checksum();
        write_fields(&path, &fields);
        match open_error(&path) {
            Error::Corrupt { field, detail } => {
                assert_eq!(field, expected, "{detail}");
            }
            other => panic!("{expected}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn unknown_state_is_corrupt() {
    let path = TempPath::new("state");
    closed_region(&path);
    write_word(&path, 128, 7);
    assert!(
        matches!(
            open_error(&path),
            Error::Corrupt {
                field: "region state",
                ..
            }
        ),
        "state word 7"
    );
}

/// Takes the creator's initialization lock on `file`, as a creator still at work does.
fn hold_init_lock(file: &File) {
    // SAFETY: all-zero is a valid `flock`.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = INIT_LOCK;
    lock.l_len = 1;
    // SAFETY: the fd is open while `file` lives; `lock` outlives the call.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

/// While the creator holds its lock, an opener waits for its timeout and then reports
/// the region as still initializing by a live creator.
#[test]
fn live_creator_makes_opener_wait_for_its_timeout() {
    let path = TempPath::new("init_live");
    let creator = File::create(&*path).unwrap();
    hold_init_lock(&creator);
    let options = RegionOptions {
        init_timeout: Duration::from_millis(150),
        ..RegionOptions::default()
    };
    let started = Instant::now();
    let error = Region::open_with(&*path, &options).expect_err("never ready");
    assert!(
        matches!(
            error,
            Error::Initializing {
                creator_dead: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn bad_sizes_and_options_are_rejected() {
    let path = TempPath::new("sizes");
    for size in [0, 4096, 64 * 1024, MAX_REGION_SIZE + 4096] {
        let result = Region::create(&*path, size);
        assert!(
            matches!(result, Err(Error::InvalidSize { size: s, .. }) if s == size),
            "size {size}: {result:?}"
        );
        assert!(!path.exists(), "a failed create leaves no file");
    }
    for options in [
        RegionOptions {
            participant_capacity: 0,
            ..RegionOptions::default()
        },
        RegionOptions {
            catalog_capacity: 0,
            ..RegionOptions::default()
        },
    ] {
        let result = Region::create_with(&*path, SIZE, &options);
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{result:?}"
        );
        assert!(!path.exists());
    }
}

#[test]
fn resolve_path_rules() {
    assert_eq!(resolve_path("name").unwrap(), Path::new("/dev/shm/name"));
    assert_eq!(resolve_path("/tmp/x").unwrap(), Path::new("/tmp/x"));
    assert_eq!(resolve_path("./x").unwrap(), Path::new("./x"));
    for bad in ["", ".", ".."] {
        assert!(matches!(resolve_path(bad), Err(Error::InvalidArgument(_))));
    }
}

/// Two handles in one process hold distinct participant slots and see each other alive;
/// a handle that is gone is dead for good, even after its slot is reused.
#[test]
fn participants_see_each_other_and_their_deaths() {
    let path = TempPath::new("participants");
    let first = Region::create(&*path, SIZE).unwrap();
    let second = Region::open(&*path).unwrap();
    let (a, b) = (first.participant_id(), second.participant_id());
    assert_ne!(a, b);
    assert!(first.is_alive(a) && first.is_alive(b));
    assert!(second.is_alive(a) && second.is_alive(b));
    let rows = first.participants().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.active && r.alive && r.pid == std::process::id()));

    // A clone is the same participant, not a new one.
    let clone = second.clone();
    assert_eq!(clone.participant_id(), b);
    drop(clone);
    assert!(first.is_alive(b), "dropping a clone keeps the participant");

    drop(second);
    assert!(!first.is_alive(b), "a dropped handle is dead");
    assert!(first.is_alive(a));
    let row = first
        .participants()
        .unwrap()
        .into_iter()
        .find(|r| r.slot == b.slot())
        .unwrap();
    assert!(!row.active && !row.alive);

    // The next attachment may take the slot, with a new generation: `b` stays dead.
    let third = Region::open(&*path).unwrap();
    let c = third.participant_id();
    assert_ne!(c, b);
    if c.slot() == b.slot() {
        assert_ne!(c.generation(), b.generation());
    }
    assert!(first.is_alive(c));
    assert!(!first.is_alive(b));
    assert!(!third.is_alive(b));
}

/// A region of three participant slots, each retired after `limit` attachments.
fn three_slots_with_generation_limit(path: &TempPath, limit: u64) -> Region {
    let options = RegionOptions {
        participant_capacity: 3,
        ..RegionOptions::default()
    };
    let first = Region::create_with(&**path, SIZE, &options).unwrap();
    first
        .memory()
        .word(shmarena_engine::layout::header::GENERATION_LIMIT)
        .unwrap()
        .store(limit, Ordering::SeqCst);
    first
}

/// An open that finds every participant slot held or retired (and one retired) waits for
/// a slot instead of failing: the handle reads the region but records no owner (it creates
/// nothing and names no slot), dropping it changes no slot, and it gets a slot a process
/// left, or takes the retired one from its own sweep. With no slot retired, the open
/// fails as before.
#[test]
fn an_open_that_finds_only_held_and_retired_slots_waits_for_a_slot() {
    let path = TempPath::new("waiting");
    let first = three_slots_with_generation_limit(&path, 2);
    let make = |region: &Region, name: &str| {
        region.get_or_create_object(name, &value_descriptor(), 8, |_| Ok(()))
    };
    make(&first, "v").unwrap();
    let second = Region::open(&*path).unwrap(); // slot 1
    for _ in 0..2 {
        drop(Region::open(&*path).unwrap()); // slot 2, both its generations
    }

    let waiting = Region::open(&*path).unwrap(); // retires slot 2
    assert!(waiting.is_waiting_for_slot());
    assert_eq!(waiting.participant_id(), OwnerId::ORPHAN, "names no slot");
    assert!(waiting.find_object("v").unwrap().is_some(), "it reads");
    assert_eq!(waiting.participants().unwrap().len(), 3);
    assert!(matches!(
        make(&waiting, "w"),
        Err(Error::ParticipantsFull { capacity: 3 })
    ));
    drop(Region::open(&*path).unwrap()); // another waiting handle: drops nothing
    assert!(first.has_retired_participants());
    assert!(first.is_alive(second.participant_id()));

    // A slot a process left: taken by the next object creation.
    drop(second);
    make(&waiting, "w").unwrap();
    assert_eq!(waiting.participant_id(), OwnerId::new(1, 2));
    assert!(first.is_alive(waiting.participant_id()));

    // The retired slot: taken by the sweep of a handle that waits, at generation 1.
    let third = Region::open(&*path).unwrap();
    assert!(third.is_waiting_for_slot());
    assert_eq!(third.sweep_retired_participants(|_| Ok(())).unwrap(), 1);
    assert!(!third.is_waiting_for_slot());
    assert_eq!(third.participant_id(), OwnerId::new(2, 1));
    assert!(first.is_alive(third.participant_id()));
    assert!(!first.has_retired_participants());
    make(&third, "x").unwrap();

    // Every slot held by a live process, none retired: no way in.
    assert!(matches!(
        Region::open(&*path),
        Err(Error::ParticipantsFull { capacity: 3 })
    ));
    drop(third);
    assert!(
        !first.is_alive(OwnerId::new(2, 1)),
        "its slot is let go on drop"
    );
}

/// A waiting handle keeps the slot its sweep took even when the sweep then fails on
/// another retired slot (which stays retired for a later sweep).
#[test]
fn a_waiting_handle_keeps_the_slot_its_sweep_took_when_a_later_slot_fails() {
    let path = TempPath::new("waiting-failure");
    let first = three_slots_with_generation_limit(&path, 1);
    drop(Region::open(&*path).unwrap()); // slot 1's only generation
    drop(Region::open(&*path).unwrap()); // retires slot 1; slot 2's only generation
    let waiting = Region::open(&*path).unwrap(); // retires slot 2
    assert!(waiting.is_waiting_for_slot());
    let failed = waiting.sweep_retired_participants(|slot| match slot {
        2 => Err(Error::Contended("test")),
        _ => Ok(()),
    });
    assert!(failed.is_err());
    // The failure is noted in this handle (and its clones) only.
    assert!(waiting.clone().sweep_failed_within(Duration::from_secs(60)));
    assert!(!first.sweep_failed_within(Duration::from_secs(60)));
    assert_eq!(waiting.participant_id(), OwnerId::new(1, 1));
    assert!(first.is_alive(waiting.participant_id()));
    assert!(first.has_retired_participants());
    assert_eq!(first.sweep_retired_participants(|_| Ok(())).unwrap(), 1);
    drop(waiting);
    assert!(
        !first.is_alive(OwnerId::new(1, 1)),
        "its slot is let go on drop"
    );
}

/// Eight threads race `open_or_create` on one path: all succeed on one region (one hash
/// seed, one creator), each with its own participant slot. Racers in one process start
/// within the clock's resolution of each other, so their staging names must differ by
/// more than the time.
#[test]
fn open_or_create_race_agrees_on_one_region() {
    for round in 0..16 {
        let path = Arc::new(TempPath::new(&format!("race-{round}")));
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Region::open_or_create(&**path, SIZE)
                })
            })
            .collect();
        let regions: Vec<Region> = handles
            .into_iter()
            .map(|h| h.join().unwrap().expect("every racer gets the region"))
            .collect();
        let seeds: std::collections::BTreeSet<u64> =
            regions.iter().map(Region::hash_seed).collect();
        assert_eq!(seeds.len(), 1, "round {round}: one region, one seed");
        let created: std::collections::BTreeSet<u64> = regions
            .iter()
            .map(|r| r.header().created_at_nanos)
            .collect();
        assert_eq!(created.len(), 1, "round {round}: one creation");
        let ids: std::collections::BTreeSet<_> =
            regions.iter().map(Region::participant_id).collect();
        assert_eq!(ids.len(), 8, "round {round}: distinct participants");
        // They share memory: an allocation through one is seen by all.
        regions[0].arena().alloc(64).unwrap();
        assert!(regions.iter().all(|r| r.arena_stats().unwrap().used == 64));
    }
}

fn value_descriptor() -> TypeDescriptor {
    TypeDescriptor::new(ObjectKind::Value, b'q', 8, 1)
}

/// `init` for a one-word body: stores 42 and counts its runs.
fn init_42(
    runs: &AtomicUsize,
) -> impl Fn(&shmarena_engine::Object) -> shmarena_engine::Result<()> + '_ {
    move |object| {
        runs.fetch_add(1, Ordering::Relaxed);
        let word = object.atomics::<StdAtomicU64>(0, 1)?;
        // SAFETY: `atomics` checked the word lies in the body; the region outlives this use.
        unsafe { word.as_ref() }.store(42, Ordering::Relaxed);
        Ok(())
    }
}

fn read_first_word(object: &shmarena_engine::Object) -> u64 {
    let word = object.atomics::<StdAtomicU64>(0, 1).unwrap();
    // SAFETY: as in `init_42`; `object` keeps the region mapped.
    unsafe { word.as_ref() }.load(Ordering::Relaxed)
}

#[test]
fn get_or_create_object_creates_once_then_opens() {
    let path = TempPath::new("objects");
    let region = Region::create(&*path, SIZE).unwrap();
    let other = Region::open(&*path).unwrap(); // as another process would
    let runs = AtomicUsize::new(0);

    let (created, outcome) = region
        .get_or_create_object("counter", &value_descriptor(), 8, init_42(&runs))
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    assert_eq!(read_first_word(&created), 42);
    assert_eq!(created.info().name, "counter");
    assert!(created.info().ready);

    for handle in [&region, &other] {
        let (opened, outcome) = handle
            .get_or_create_object("counter", &value_descriptor(), 8, init_42(&runs))
            .unwrap();
        assert_eq!(outcome, Outcome::Opened);
        assert_eq!(opened.info().offset, created.info().offset);
        assert_eq!(
            read_first_word(&opened),
            42,
            "the opener sees the initialized body"
        );
    }
    assert_eq!(runs.load(Ordering::Relaxed), 1, "init ran once");

    let found = other.open_object("counter", &value_descriptor()).unwrap();
    assert_eq!(found.info().offset, created.info().offset);
    let names: Vec<String> = other
        .objects()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["counter"]);
    assert!(matches!(
        other.open_object("missing", &value_descriptor()),
        Err(Error::ObjectNotFound(_))
    ));

    // Bodies are bounds-checked views.
    assert!(matches!(
        created.atomics::<StdAtomicU64>(8, 1),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        created.atomics::<StdAtomicU64>(4, 1),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn get_or_create_object_errors() {
    let path = TempPath::new("object_errors");
    let region = Region::create(&*path, SIZE).unwrap();
    let runs = AtomicUsize::new(0);
    region
        .get_or_create_object("typed", &value_descriptor(), 8, init_42(&runs))
        .unwrap();

    let array = TypeDescriptor::new(ObjectKind::Array, b'q', 8, 4);
    let mismatch = region.get_or_create_object("typed", &array, 32, init_42(&runs));
    assert!(
        matches!(&mismatch, Err(Error::TypeMismatch { name, .. }) if name == "typed"),
        "{mismatch:?}"
    );
    assert!(matches!(
        region.open_object("typed", &array),
        Err(Error::TypeMismatch { .. })
    ));

    let too_long = "n".repeat(MAX_NAME_LEN + 1);
    for bad in [too_long.as_str(), ""] {
        let result = region.get_or_create_object(bad, &value_descriptor(), 8, init_42(&runs));
        assert!(
            matches!(result, Err(Error::InvalidName { .. })),
            "{bad:?}: {result:?}"
        );
    }
    assert_eq!(
        runs.load(Ordering::Relaxed),
        1,
        "no init ran for the failures"
    );

    // Too large for the arena.
    let huge = region.get_or_create_object("huge", &array, SIZE, init_42(&runs));
    assert!(matches!(huge, Err(Error::OutOfMemory { .. })), "{huge:?}");
}

/// An `init` that fails leaves the name to be built again by the next caller; `init`
/// always starts from zeroed memory, also when the arena recycles a dirty block.
#[test]
fn failed_init_is_retried_and_init_sees_zeroed_memory() {
    let path = TempPath::new("failed_init");
    let region = Region::create(&*path, SIZE).unwrap();
    // Leave a dirty block on the free list of the 64-byte class.
    let dirty = region.arena().alloc(64).unwrap();
    for word in 0..8 {
        shmarena_engine::Memory::word(region.memory(), dirty.offset + 8 * word)
            .unwrap()
            .store(0xdead, Ordering::Relaxed);
    }
    region.arena().free(dirty.offset, 64).unwrap();

    let failed = region.get_or_create_object("flaky", &value_descriptor(), 16, |object| {
        assert_eq!(
            object.info().offset,
            dirty.offset,
            "the dirty block is recycled"
        );
        let words = object.atomics::<StdAtomicU64>(0, 2)?;
        for i in 0..2 {
            // SAFETY: checked by `atomics`; the region outlives this use.
            let word = unsafe { &*words.as_ptr().add(i) };
            assert_eq!(word.load(Ordering::Relaxed), 0, "init sees zeroed memory");
        }
        Err(Error::InvalidArgument("init failed".into()))
    });
    assert!(
        matches!(failed, Err(Error::InvalidArgument(_))),
        "{failed:?}"
    );
    let pending = region.objects().unwrap();
    assert_eq!(pending.len(), 1);
    assert!(!pending[0].ready);
    assert!(region.find_object("flaky").unwrap().is_none());

    let runs = AtomicUsize::new(0);
    let (object, outcome) = region
        .get_or_create_object("flaky", &value_descriptor(), 16, init_42(&runs))
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    assert_eq!(runs.load(Ordering::Relaxed), 1);
    assert_eq!(read_first_word(&object), 42);
    assert!(region.find_object("flaky").unwrap().unwrap().ready);
}

// ---- Opens that tell the truth: what a file that is no region is reported as ----

fn open_message(path: &Path) -> String {
    open_error(path).to_string()
}

/// Opens `path` on another thread and gives up after 5 s: an open that blocks (a FIFO
/// opened for reading) fails the test instead of hanging it.
fn open_message_within_5s(path: &Path) -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    let owned = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = sender.send(Region::open(&owned).map(|_| ()).map_err(|e| e.to_string()));
    });
    receiver
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("opening {} blocked", path.display()))
        .expect_err("must not open")
}

#[test]
fn character_devices_are_not_a_region_and_say_so() {
    for device in ["/dev/zero", "/dev/null", "/dev/urandom"] {
        let message = open_message_within_5s(Path::new(device));
        assert!(
            message.contains("not a shmarena region") && message.contains("character device"),
            "{device}: {message}"
        );
        assert!(!message.contains("unlink"), "{device}: {message}");
    }
}

#[test]
fn fifo_is_not_a_region_and_opening_it_does_not_block() {
    let path = TempPath::new("fifo");
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let message = open_message_within_5s(&path);
    assert!(
        message.contains("not a shmarena region") && message.contains("FIFO"),
        "{message}"
    );
}

#[test]
fn directory_and_socket_are_not_a_region_and_say_what_they_are() {
    let dir = TempPath::new("dir");
    std::fs::create_dir(&*dir).unwrap();
    let message = open_message_within_5s(&dir);
    std::fs::remove_dir(&*dir).unwrap();
    assert!(
        message.contains("not a shmarena region") && message.contains("directory"),
        "{message}"
    );

    let socket = TempPath::new("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&*socket).unwrap();
    let message = open_message_within_5s(&socket);
    assert!(
        message.contains("not a shmarena region") && message.contains("socket"),
        "{message}"
    );
}

/// `/proc/self/status` is a regular file of size 0 whose reads give text.
#[test]
fn proc_file_is_not_a_region() {
    let message = open_message_within_5s(Path::new("/proc/self/status"));
    assert!(
        message.contains("not a shmarena region") && message.contains("magic"),
        "{message}"
    );
    assert!(!message.contains("unlink"), "{message}");
}

/// A file without the magic number is no region, also when it is shorter than a header;
/// a short file that starts with (part of) the magic number is a truncated region.
#[test]
fn short_text_file_is_not_a_region_but_short_file_with_magic_is_truncated() {
    let path = TempPath::new("text");
    std::fs::write(&*path, "hello, world\n").unwrap();
    let message = open_message(&path);
    assert!(
        message.contains("not a shmarena region") && message.contains("magic"),
        "{message}"
    );
    for len in [3, 8, 100] {
        let mut bytes = MAGIC.to_le_bytes().to_vec();
        bytes.resize(len, 0);
        std::fs::write(&*path, &bytes[..len]).unwrap();
        match open_error(&path) {
            Error::Truncated {
                file_len, needed, ..
            } => assert_eq!((file_len, needed), (len as u64, 4096)),
            other => panic!("{len} bytes of magic: expected Truncated, got {other:?}"),
        }
    }
}

/// A dangling symbolic link at the name: `open` and `open_or_create` say so (the latter
/// used to give up with "the region keeps being unlinked").
#[test]
fn dangling_symlink_is_named_by_open_and_open_or_create() {
    let path = TempPath::new("dangling");
    let target = TempPath::new("dangling-target");
    std::os::unix::fs::symlink(&*target, &*path).unwrap();
    let messages = [
        open_message(&path),
        Region::open_or_create(&*path, SIZE)
            .expect_err("cannot create through a dangling link")
            .to_string(),
    ];
    for message in messages {
        assert!(
            message.contains("dangling symbolic link")
                && message.contains(&*target.to_string_lossy()),
            "{message}"
        );
    }
    assert!(!target.exists(), "nothing was created at the link's target");
}

/// Names as long as the file system takes (255 bytes) create, open and unlink; a longer
/// one fails naming the user's path, not a private staging file.
#[test]
fn names_of_up_to_255_bytes_work_and_longer_ones_name_the_users_path() {
    for len in [200, 221, 240, 255] {
        let name = format!("shmarena-test-{}-long-", std::process::id());
        let name = format!("{name}{}", "n".repeat(len - name.len()));
        let path = TempPath(std::env::temp_dir().join(&name));
        let region =
            Region::create(&*path, SIZE).unwrap_or_else(|e| panic!("a {len}-byte name: {e}"));
        let again = Region::open_or_create(&*path, SIZE).unwrap();
        assert_eq!(again.hash_seed(), region.hash_seed());
        Region::unlink(&*path).unwrap();
    }
    let name = format!("shmarena-test-{}-long-", std::process::id());
    let name = format!("{name}{}", "n".repeat(256 - name.len()));
    let path = std::env::temp_dir().join(&name);
    let message = Region::create(&path, SIZE)
        .expect_err("longer than NAME_MAX")
        .to_string();
    assert!(
        message.contains(&name) && !message.contains(".creating-"),
        "{message}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.contains(&format!("shmarena-test-{}-long-", std::process::id()))
        })
        .collect();
    assert!(leftovers.is_empty(), "no staging file is left behind");
}

/// An empty file, or one of zeros, that no process is initializing was never a region of
/// ours (a creator shows its region under the name only when it is READY): it is no region,
/// and no advice to unlink is given.
#[test]
fn blank_file_without_creator_is_not_a_region() {
    for (name, len) in [("init_empty", 0), ("init_zeroed", SIZE)] {
        let path = TempPath::new(name);
        File::create(&*path).unwrap().set_len(len).unwrap();
        let started = Instant::now();
        let message = open_message(&path);
        let elapsed = started.elapsed();
        assert!(
            message.contains("not a shmarena region") && !message.contains("unlink"),
            "{name}: {message}"
        );
        assert!(
            elapsed < Duration::from_millis(500),
            "{name}: took {elapsed:?}"
        );
    }
}

/// A region of ours left INITIALIZING (magic written, never READY) with no creator alive:
/// the opener says so at once and advises to unlink it.
#[test]
fn half_built_region_without_creator_is_initializing_creator_dead() {
    let path = TempPath::new("half_built");
    closed_region(&path);
    write_word(&path, 128, 1); // state INITIALIZING
    let started = Instant::now();
    let error = open_error(&path);
    assert!(
        matches!(
            error,
            Error::Initializing {
                creator_dead: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("unlink it"), "{error}");
    assert!(started.elapsed() < Duration::from_millis(500));
}

// ---- Opening a region someone else can write ----

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn group_or_other_writable_region_is_refused() {
    let path = TempPath::new("writable");
    closed_region(&path);
    for mode in [0o620, 0o602, 0o666] {
        chmod(&path, mode);
        let message = open_message(&path);
        assert!(
            message.contains(&*path.to_string_lossy())
                && message.contains(&format!("{mode:o}"))
                && message.contains("allow_shared"),
            "mode {mode:o}: {message}"
        );
        let message = Region::open_or_create(&*path, SIZE)
            .expect_err("refused")
            .to_string();
        assert!(message.contains("allow_shared"), "{message}");
    }
    chmod(&path, 0o644); // readable by others: they cannot change anything
    let private = Region::open(&*path).unwrap();
    private.check_owner_and_mode().unwrap();
    // Made writable after the open: a kept handle's re-check sees it.
    chmod(&path, 0o660);
    assert!(matches!(
        private.check_owner_and_mode(),
        Err(Error::WritableByOthers { mode: 0o660, .. })
    ));
}

#[test]
fn allow_shared_opens_a_region_others_can_write() {
    let path = TempPath::new("allow_shared");
    closed_region(&path);
    chmod(&path, 0o666);
    match open_error(&path) {
        Error::WritableByOthers {
            path: p,
            owner_uid,
            mode,
            euid,
        } => {
            assert_eq!((p, mode), (path.to_path_buf(), 0o666));
            assert_eq!(owner_uid, euid, "our own file");
        }
        other => panic!("expected WritableByOthers, got {other:?}"),
    }
    let shared = RegionOptions {
        allow_shared: true,
        ..RegionOptions::default()
    };
    let opened = Region::open_with(&*path, &shared).unwrap();
    let again = Region::open_or_create_with(&*path, SIZE, &shared).unwrap();
    assert!(!again.is_creator());
    assert_eq!(again.hash_seed(), opened.hash_seed());
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Root opening a region file owned by another user (chowned with fchown, as only root
/// can): refused like any other user's file.
#[test]
fn region_owned_by_another_user_is_refused_even_for_root() {
    if !is_root() {
        eprintln!("skipped: only root can give a file away (chown)");
        return;
    }
    let path = TempPath::new("foreign");
    closed_region(&path);
    let file = File::open(&*path).unwrap();
    // SAFETY: a valid descriptor; fchown has no other precondition.
    assert_eq!(unsafe { libc::fchown(file.as_raw_fd(), 65534, 65534) }, 0);
    let message = open_message(&path);
    assert!(
        message.contains(&*path.to_string_lossy())
            && message.contains("uid 65534")
            && message.contains("allow_shared"),
        "{message}"
    );
    assert!(matches!(
        Region::open_or_create(&*path, SIZE),
        Err(Error::WritableByOthers {
            owner_uid: 65534,
            euid: 0,
            ..
        })
    ));
    let shared = RegionOptions {
        allow_shared: true,
        ..RegionOptions::default()
    };
    Region::open_with(&*path, &shared).expect("opted in");
}

/// Set in the copy of this test binary that `as_another_user_*` starts as uid 65534; holds
/// the temp-file prefix of the parent.
const AS_NOBODY: &str = "SHMARENA_TEST_AS_NOBODY";

/// Another user (uid 65534, a root parent prepared the files) opening: a region of root's
/// that every user may write is refused (a pre-created file, say); one it may only read is
/// a permission error; a file it may only read that is no region (a text file, a file of
/// /proc) is still "not a region", not a permission error.
#[test]
fn as_another_user_foreign_writable_region_is_refused_and_readonly_files_tell_the_truth() {
    if let Ok(prefix) = std::env::var(AS_NOBODY) {
        let path = |name: &str| PathBuf::from(format!("{prefix}-{name}"));
        match open_error(&path("world-writable")) {
            Error::WritableByOthers {
                owner_uid: 0,
                mode: 0o666,
                euid: 65534,
                ..
            } => {}
            other => panic!("world-writable: {other:?}"),
        }
        let shared = RegionOptions {
            allow_shared: true,
            ..RegionOptions::default()
        };
        Region::open_with(path("world-writable"), &shared).expect("opted in");
        for not_ours in [path("text"), PathBuf::from("/proc/self/status")] {
            let error = open_error(&not_ours);
            assert!(
                matches!(error, Error::NotARegion { .. }),
                "{}: {error:?}",
                not_ours.display()
            );
        }
        let error = open_error(&path("readonly"));
        assert!(
            matches!(&error, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied),
            "{error:?}"
        );
        return;
    }
    if !is_root() {
        eprintln!("skipped: only root can run a test as another user");
        return;
    }
    let temp_mode = std::fs::metadata(std::env::temp_dir())
        .unwrap()
        .permissions()
        .mode();
    if temp_mode & 0o001 == 0 {
        eprintln!("skipped: other users cannot reach the temp directory");
        return;
    }
    let prefix = std::env::temp_dir().join(format!("shmarena-test-{}-nobody", std::process::id()));
    let prefix = prefix.to_string_lossy().into_owned();
    let world_writable = TempPath(PathBuf::from(format!("{prefix}-world-writable")));
    closed_region(&world_writable);
    chmod(&world_writable, 0o666);
    let readonly = TempPath(PathBuf::from(format!("{prefix}-readonly")));
    closed_region(&readonly);
    chmod(&readonly, 0o644);
    let text = TempPath(PathBuf::from(format!("{prefix}-text")));
    std::fs::write(&*text, "not a region\n").unwrap();
    chmod(&text, 0o644);
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "as_another_user_foreign_writable_region_is_refused_and_readonly_files_tell_the_truth",
            "--test-threads=1",
        ])
        .env(AS_NOBODY, &prefix)
        .uid(65534)
        .gid(65534)
        .status()
        .unwrap();
    assert!(status.success(), "the run as uid 65534 failed: {status}");
}

/// Huge-page advice changes the backing, never the contents: a region advised in one
/// handle reads and writes as before, in it and in another handle of the same file. A
/// kernel that refuses the advice answers with an `Io` error, not a panic.
#[cfg(target_os = "linux")]
#[test]
fn huge_page_advice_leaves_the_region_as_it_was() {
    let path = TempPath::new("huge_page_advice");
    let region = Region::create(&*path, SIZE).unwrap();
    match region.advise_huge_pages() {
        Ok(()) | Err(Error::Io { .. }) => {}
        Err(other) => panic!("a refused advice is an Io error, not {other:?}"),
    }
    let opened = Region::open(&*path).unwrap();
    let _ = opened.advise_huge_pages();
    let block = region.arena().alloc(100).unwrap();
    assert_eq!(opened.arena_stats().unwrap().used, 128);
    opened.arena().free(block.offset, 100).unwrap();
    assert_eq!(region.arena_stats().unwrap().used, 0);
    assert_eq!(*opened.header(), *region.header());
}
