//! Fuzz target `open_region`: a region file is untrusted input.
//!
//! Whatever bytes the file holds, `Region::open_with` and every read and write path of an
//! opened region must return `Ok` or `Err`: never panic, hang, or touch memory outside
//! the mapping. Bodies, blocks and free-list entries handed out must lie inside the arena.
//!
//! A plain byte fuzzer never gets past the header check (4096 bytes and an xxh3 checksum),
//! so the input is structured. Byte 0 is the mode:
//!
//! | bit | meaning |
//! |-----|---------|
//! | 0   | 0: the rest of the input is the file; 1: start from a valid region image (built once per process: 64 KiB, 4 participant slots, 8 catalog entries, four objects, one of them left CONSTRUCTING by a failed constructor, and blocks on three free lists) and apply the rest of the input to it as patches |
//! | 1   | after patching/resizing, recompute the header checksum, so the mutation reaches past validation |
//! | 2   | resize the file to `word 2 % (1 MiB + 1)` and store that length in words 2 (region size) and 9 (arena end) |
//! | 3   | (patch mode) apply the patches through the mapping after a successful open, like a hostile process would, instead of to the file before opening |
//!
//! A patch is 13 bytes: `op: u8, offset: u32 LE, value: u64 LE`. `op & 3` is the kind:
//! 0 store `value`, 1 wrapping add, 2 xor, 3 store a plausible block reference
//! (`value % (len / 64)`, as a free-list head index when bit 63 of `value` is set, else
//! times 64 as a byte offset). `(op >> 2) & 3` picks the zone the 8-aligned word offset
//! `offset % zone_words` falls in: 0 whole file, 1 header control words (bytes 0..1024),
//! 2 participant table and catalog, 3 arena.

#![no_main]

use std::fs::File;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shmarena_engine::arena::class_size;
use shmarena_engine::layout::{HEADER_FIELD_WORDS, SIZE_CLASSES};
use shmarena_engine::{
    Error, HeaderFields, Memory, Object, ObjectKind, Region, RegionOptions, SharedAtomic,
    TypeDescriptor,
};

/// Size of the valid region image the patch modes start from.
const BASE_SIZE: u64 = 64 * 1024;
/// Largest file the resize bit makes.
const MAX_RESIZED_LEN: u64 = 1 << 20;
/// Bytes per patch record.
const PATCH_LEN: usize = 13;
/// Header control words (state, bump, used, free-list heads and counts) end here.
const HEADER_CONTROL_END: u64 = 1024;

const MODE_PATCH: u8 = 1;
const MODE_FIX_CHECKSUM: u8 = 2;
const MODE_RESIZE: u8 = 4;
const MODE_LIVE: u8 = 8;
const MODE_STRUCTURES: u8 = 16;

/// Where this process's scratch files live: tmpfs when there is one.
fn scratch_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// The file every input is written to and opened from, one per fuzzing process: a memfd
/// (no name, so nothing is left behind however the process ends), reused by every input:
/// written with `pwrite` and sized with `ftruncate`, never created or removed, so its
/// pages stay in memory. `Region::open_with` opens it by its `/proc/self/fd` path, which
/// gives every open its own open file description, as a separate process would have.
struct RegionFile {
    file: File,
    path: PathBuf,
}

fn region_file() -> &'static RegionFile {
    static FILE: OnceLock<RegionFile> = OnceLock::new();
    FILE.get_or_init(|| {
        // SAFETY: a NUL-terminated name and valid flags; the call has no other
        // preconditions.
        let fd = unsafe { libc::memfd_create(c"shmarena-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        RegionFile {
            file,
            path: PathBuf::from(format!("/proc/self/fd/{fd}")),
        }
    })
}

/// Makes the region file hold exactly `bytes`; returns its path.
fn write_region_file(bytes: &[u8]) -> &'static Path {
    let RegionFile { file, path } = region_file();
    file.set_len(bytes.len() as u64)
        .expect("size the region file");
    file.write_all_at(bytes, 0).expect("write the region file");
    path
}

fn options() -> RegionOptions {
    RegionOptions {
        participant_capacity: 4,
        catalog_capacity: 8,
        // Zero: a region still INITIALIZING is reported at once instead of after a 20 ms
        // sleep (the wait loop itself is trivial; throughput matters more here).
        init_timeout: Duration::ZERO,
        // Zero: a forged owner that looks alive (it may even be us) makes a lookup wait,
        // and it now times out at once. With 1 ms, each wait slept 200 µs 4 or 5 times, and
        // in a deep corpus most inputs wait: the process slept 29% of a 35-minute run. The
        // wait loop itself (spin, yield, sleep) is the engine tests' (catalog_props).
        construct_timeout: Duration::ZERO,
        // The seed every base image has (see finish_base): maps hash alike before and
        // after the image is made reproducible.
        hash_seed: Some(BASE_SEED),
        // The fuzzer's own scratch file, whose mode follows the umask (0666 under umask
        // 0): the bytes, not the owner and mode, are under test.
        allow_shared: true,
        // Opening ignores it; nothing here is a default region.
        collectable: false,
    }
}

/// The hash seed of every base image.
const BASE_SEED: u64 = 0x5eed_5eed_5eed_5eed;

/// The valid region image and its layout, built once per process.
struct Base {
    bytes: Vec<u8>,
    fields: HeaderFields,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(build_base)
}

/// The second image (mode bit 4): one object of every `shmarena` structure.
fn structures_base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(build_structures_base)
}

/// Names of the objects in [`structures_base`].
const STRUCTURE_NAMES: &[&str] = &[
    "v.i64", "v.bool", "v.char", "v.f64", "v.u8", "a.i32", "a.f32", "counter", "lock", "mutex",
    "rlock", "condvar", "event", "sem", "bsem", "barrier", "queue", "queue16", "list", "list24",
    "map", "set",
];

fn structures_options() -> RegionOptions {
    RegionOptions {
        catalog_capacity: 32,
        ..options()
    }
}

fn build_structures_base() -> Base {
    use shmarena::RegionExt;
    let path = scratch_dir().join(format!("shmarena-fuzz-sbase-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let region = Region::create_with(&path, BASE_SIZE, &structures_options())
        .expect("create structures base region");
    let r = &region;
    r.value::<i64>("v.i64", -5).expect("v.i64");
    r.value::<bool>("v.bool", true).expect("v.bool");
    r.value::<char>("v.char", 'z').expect("v.char");
    r.value::<f64>("v.f64", 2.5).expect("v.f64");
    r.value::<u8>("v.u8", 200).expect("v.u8");
    r.array::<i32>("a.i32", &[1, -2, 3, -4, 5, -6, 7, -8])
        .expect("a.i32");
    r.array::<f32>("a.f32", &[0.5, 1.5]).expect("a.f32");
    r.sharded_counter("counter").expect("counter").add(3);
    r.lock("lock").expect("lock");
    r.mutex::<u64>("mutex", 99).expect("mutex");
    r.rlock("rlock").expect("rlock");
    r.condvar("condvar").expect("condvar");
    r.event("event").expect("event").set();
    r.semaphore("sem", 3).expect("sem");
    r.bounded_semaphore("bsem", 2).expect("bsem");
    r.barrier("barrier", 2).expect("barrier");
    let queue = r.queue::<u64>("queue", 4).expect("queue");
    queue.try_push(11).expect("queue push");
    queue.try_push(12).expect("queue push");
    let queue16 = r.queue::<[u8; 16]>("queue16", 3).expect("queue16");
    queue16.try_push([7; 16]).expect("queue16 push");
    let list = r.list::<u32>("list", 6).expect("list");
    list.extend([1, 2, 3]).expect("list extend");
    let list24 = r.list::<[u8; 24]>("list24", 2).expect("list24");
    list24.push([9; 24]).expect("list24 push");
    let map = r.hash_map::<u64, u64>("map", 16).expect("map");
    for key in 0..10 {
        map.insert(key, key * 3).expect("map insert");
    }
    map.remove(&4).expect("map remove");
    let set = r.hash_set::<[u8; 24]>("set", 64).expect("set");
    set.insert([7; 24]).expect("set insert");
    drop((queue, queue16, list, list24, map, set));
    assert_eq!(
        region.objects().expect("structures base objects").len(),
        STRUCTURE_NAMES.len()
    );
    let fields = *region.header();
    drop(region);
    finish_base(&path, fields)
}

fn value_descriptor() -> TypeDescriptor {
    TypeDescriptor::new(ObjectKind::Value, b'q', 8, 1)
}

fn fuzz_descriptor() -> TypeDescriptor {
    TypeDescriptor::new(ObjectKind::Array, b'Q', 8, 24)
}

fn build_base() -> Base {
    let path = scratch_dir().join(format!("shmarena-fuzz-base-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let region = Region::create_with(&path, BASE_SIZE, &options()).expect("create base region");
    let store_first = |object: &Object, value: u64| -> shmarena_engine::Result<()> {
        let word = object.atomics::<AtomicU64>(0, 1)?;
        // SAFETY: `atomics` checked the range lies inside the body; the region lives.
        unsafe { word.as_ref() }.store(value, Ordering::Relaxed);
        Ok(())
    };
    region
        .get_or_create_object("counter", &value_descriptor(), 8, |o| store_first(o, 42))
        .expect("counter");
    region
        .get_or_create_object(
            "array",
            &TypeDescriptor::new(ObjectKind::Array, b'i', 4, 32),
            128,
            |o| store_first(o, 7),
        )
        .expect("array");
    let map = TypeDescriptor {
        kind: ObjectKind::HashMap,
        elem_code: b'd',
        elem_size: 8,
        elem_tag: 0,
        key_code: b'q',
        key_size: 8,
        key_tag: 0,
        capacity: 16,
    };
    region
        .get_or_create_object("map", &map, 16 * 24, |o| store_first(o, 1))
        .expect("map");
    // A constructor that fails leaves its entry CONSTRUCTING with no owner: the takeover path.
    let broken = region.get_or_create_object(
        "broken",
        &TypeDescriptor::new(ObjectKind::Queue, b'q', 8, 8),
        256,
        |_| {
            Err(Error::InvalidArgument(
                "fuzz base: failed constructor".into(),
            ))
        },
    );
    assert!(broken.is_err());
    // Blocks on a few free lists, so list walks and pops have something to follow.
    let arena = region.arena();
    let mut blocks = Vec::new();
    for size in [64, 64, 64, 200, 200, 4096] {
        blocks.push((arena.alloc(size).expect("base alloc"), size));
    }
    for (block, size) in blocks {
        arena.free(block.offset, size).expect("base free");
    }
    let fields = *region.header();
    drop(region);
    finish_base(&path, fields)
}

/// Reads a base image back and makes it the same in every process.
fn finish_base(path: &Path, fields: HeaderFields) -> Base {
    let mut bytes = std::fs::read(path).expect("read base region");
    let _ = std::fs::remove_file(path);
    assert_eq!(bytes.len() as u64, BASE_SIZE);
    // Make the image the same in every process, so crash inputs reproduce: fixed hash
    // seed, creation time, creator pid and participant timestamps.
    set_word(&mut bytes, 3 * 8, BASE_SEED);
    set_word(&mut bytes, 10 * 8, 1_700_000_000_000_000_000);
    set_word(&mut bytes, 136, 1);
    for slot in 0..fields.participant_capacity {
        let at = fields.participants_offset + slot * 64;
        set_word(&mut bytes, at + 8, 0);
        set_word(&mut bytes, at + 16, 0);
    }
    fix_checksum(&mut bytes);
    let fields = read_fields(&bytes).expect("base header");
    Base { bytes, fields }
}

fn get_word(bytes: &[u8], offset: u64) -> u64 {
    let at = offset as usize;
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn set_word(bytes: &mut [u8], offset: u64, value: u64) {
    let at = offset as usize;
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn read_fields(bytes: &[u8]) -> Option<HeaderFields> {
    if bytes.len() < 8 * HEADER_FIELD_WORDS {
        return None;
    }
    let w = |i: u64| get_word(bytes, 8 * i);
    Some(HeaderFields {
        magic: w(0),
        layout_version: w(1),
        region_size: w(2),
        hash_seed: w(3),
        participants_offset: w(4),
        participant_capacity: w(5),
        catalog_offset: w(6),
        catalog_capacity: w(7),
        arena_offset: w(8),
        arena_end: w(9),
        created_at_nanos: w(10),
        checksum: w(11),
    })
}

/// Stores the checksum the header fields call for (word 11), if the file holds them.
fn fix_checksum(bytes: &mut [u8]) {
    if let Some(fields) = read_fields(bytes) {
        set_word(bytes, 11 * 8, fields.compute_checksum());
    }
}

/// Resizes the file to the length in word 2 (bounded) and makes words 2 and 9 agree.
fn resize(bytes: &mut Vec<u8>) {
    let wanted = if bytes.len() >= 24 {
        get_word(bytes, 16)
    } else {
        0
    };
    let len = wanted % (MAX_RESIZED_LEN + 1);
    bytes.resize(len as usize, 0);
    if bytes.len() >= 8 * HEADER_FIELD_WORDS {
        set_word(bytes, 2 * 8, len);
        set_word(bytes, 9 * 8, len);
    }
}

#[derive(Clone, Copy)]
struct Patch {
    op: u8,
    offset: u32,
    value: u64,
}

fn parse_patches(data: &[u8]) -> Vec<Patch> {
    data.chunks_exact(PATCH_LEN)
        .map(|c| Patch {
            op: c[0],
            offset: u32::from_le_bytes(c[1..5].try_into().expect("4 bytes")),
            value: u64::from_le_bytes(c[5..13].try_into().expect("8 bytes")),
        })
        .collect()
}

/// Applies patches to `len` bytes of words reached through `load`/`store`, with zones
/// laid out as in `layout`.
fn apply_patches(
    patches: &[Patch],
    len: u64,
    layout: &HeaderFields,
    load: impl Fn(u64) -> u64,
    mut store: impl FnMut(u64, u64),
) {
    let tables = layout.participants_offset.min(len);
    let arena = layout.arena_offset.min(len);
    let zones = [
        (0, len),
        (0, HEADER_CONTROL_END.min(len)),
        (tables, arena),
        (arena, len),
    ];
    for patch in patches {
        let (start, end) = zones[usize::from((patch.op >> 2) & 3)];
        let words = end.saturating_sub(start) / 8;
        if words == 0 {
            continue;
        }
        let offset = start + u64::from(patch.offset) % words * 8;
        let old = load(offset);
        let new = match patch.op & 3 {
            0 => patch.value,
            1 => old.wrapping_add(patch.value),
            2 => old ^ patch.value,
            _ => {
                let block = (patch.value & !(1 << 63)) % (len / 64).max(1);
                if patch.value >> 63 == 1 {
                    block
                } else {
                    block * 64
                }
            }
        };
        store(offset, new);
    }
}

/// Turns the input into the file's bytes. Returns the bytes and the patches still to
/// apply to the live mapping (mode bit 3).
fn build_file(mode: u8, rest: &[u8]) -> (Vec<u8>, Vec<Patch>) {
    let mut live = Vec::new();
    let mut bytes = if mode & MODE_PATCH == 0 {
        rest.to_vec()
    } else {
        let base = if mode & MODE_STRUCTURES != 0 {
            structures_base()
        } else {
            base()
        };
        let mut bytes = base.bytes.clone();
        let patches = parse_patches(rest);
        if mode & MODE_LIVE != 0 {
            live = patches;
        } else {
            let len = bytes.len() as u64;
            let cell = std::cell::RefCell::new(&mut bytes);
            apply_patches(
                &patches,
                len,
                &base.fields,
                |at| get_word(&cell.borrow(), at),
                |at, value| set_word(&mut cell.borrow_mut(), at, value),
            );
        }
        bytes
    };
    if mode & MODE_RESIZE != 0 {
        resize(&mut bytes);
    }
    if mode & MODE_FIX_CHECKSUM != 0 {
        fix_checksum(&mut bytes);
    }
    (bytes, live)
}

/// Address range of the mapping, for checking the pointers the engine hands out.
fn mapping_range(region: &Region) -> (usize, usize) {
    let memory = region.memory();
    let base = memory.word(0).expect("a region maps at least its header") as *const AtomicU64;
    (base as usize, base as usize + memory.len() as usize)
}

fn assert_in_arena(region: &Region, what: &str, offset: u64, size: u64) {
    let h = region.header();
    assert!(
        offset >= h.arena_offset
            && offset.is_multiple_of(64)
            && offset
                .checked_add(size)
                .is_some_and(|end| end <= h.arena_end),
        "{what}: {offset}+{size} is outside the arena {}..{}",
        h.arena_offset,
        h.arena_end
    );
}

/// Views a body as atomics of type `A`: every view must lie inside the object's body.
/// With `refusals`, also checks that views out of the body or misaligned are refused.
fn check_view<A: SharedAtomic>(
    region: &Region,
    object: &Object,
    refusals: bool,
    load: impl Fn(&A) -> u64,
) {
    let info = object.info();
    let size = size_of::<A>() as u64;
    let count = info.size / size;
    let (map_start, map_end) = mapping_range(region);
    match object.atomics::<A>(0, count) {
        Ok(ptr) => {
            let start = ptr.as_ptr() as usize;
            let body = map_start + info.offset as usize;
            assert_eq!(start, body, "atomics::<{size}B> does not start at the body");
            assert!(start + (count * size) as usize <= body + info.size as usize);
            assert!(
                body + info.size as usize <= map_end,
                "body leaves the mapping"
            );
            if count > 0 {
                // SAFETY: the engine checked (and we re-checked above) that `count`
                // atomics from `ptr` lie inside the body, which lies inside the mapping
                // held alive by `region`.
                let first = unsafe { ptr.as_ref() };
                // SAFETY: as above; `count - 1 < count`.
                let last = unsafe {
                    NonNull::new_unchecked(ptr.as_ptr().add(count as usize - 1)).as_ref()
                };
                std::hint::black_box(load(first) ^ load(last));
            }
        }
        Err(e) => panic!("atomics over the whole body of {:?} failed: {e}", info.name),
    }
    if !refusals {
        return;
    }
    // Out-of-body and misaligned views must be refused.
    assert!(object.atomics::<A>(0, count + 1).is_err());
    assert!(object.atomics::<A>(info.size, 1).is_err());
    assert!(object.atomics::<A>(0, u64::MAX).is_err());
    assert!(object.atomics::<A>(u64::MAX - size + 1, 1).is_err());
    if size > 1 {
        assert!(object.atomics::<A>(1, 1).is_err());
    }
}

/// Checks an object's body and its views. `sizes` lists the body sizes whose impossible
/// views this input already saw refused: whether a view is refused is arithmetic on the
/// view and the body size alone, so once per size and input is enough (each refusal
/// formats an error message: checking every object of every handle again was a fifth of
/// the target's time).
fn check_object(region: &Region, object: &Object, sizes: &mut Vec<u64>) {
    let info = object.info();
    assert_in_arena(region, "object body", info.offset, info.size);
    let refusals = !sizes.contains(&info.size);
    if refusals {
        sizes.push(info.size);
    }
    check_view::<AtomicU8>(region, object, refusals, |a| {
        a.load(Ordering::Relaxed).into()
    });
    check_view::<AtomicU16>(region, object, refusals, |a| {
        a.load(Ordering::Relaxed).into()
    });
    check_view::<AtomicU32>(region, object, refusals, |a| {
        a.load(Ordering::Relaxed).into()
    });
    check_view::<AtomicU64>(region, object, refusals, |a| a.load(Ordering::Relaxed));
}

/// Every read path, then allocation and object creation. Any panic is a finding.
/// `sizes` as in [`check_object`].
fn exercise(region: &Region, full: bool, sizes: &mut Vec<u64>) {
    let header = *region.header();
    assert!(
        header.validate(region.size()).is_ok(),
        "open accepted an invalid header"
    );
    let _ = region.creator_pid();
    let me = region.participant_id();
    assert!(region.is_alive(me));
    let _ = std::hint::black_box(note("participants", region.participants()));
    if let Ok(stats) = region.arena_stats() {
        assert!(stats.reserved <= stats.capacity);
        assert_eq!(stats.capacity, header.arena_end - header.arena_offset);
    }
    let arena = region.arena();
    for class in 0..SIZE_CLASSES {
        if let Ok(list) = note("free_list", arena.free_list(class)) {
            for offset in list {
                assert_in_arena(region, "free-list block", offset, class_size(class));
            }
        }
    }
    assert!(arena.free_list(SIZE_CLASSES).is_err());
    let objects = note("objects", region.objects()).unwrap_or_default();
    for entry in &objects {
        assert!(entry.index < header.catalog_capacity);
        if let Some(owner) = entry.owner {
            let _ = region.is_alive(owner);
        }
        if let Ok(Some(found)) = region.find_object(&entry.name) {
            assert_eq!(found.name, entry.name);
        }
        if let Ok(object) = note(
            "open_object",
            region.open_object(&entry.name, &entry.descriptor),
        ) {
            check_object(region, &object, sizes);
        }
    }
    let _ = region.find_object("");
    let _ = region.find_object("no such object");
    if !full {
        return;
    }
    // Allocation: every block handed out lies inside the arena; touch both ends.
    let memory = region.memory();
    for size in [0, 1, 64, 100, 200, 4096, 1 << 15, 1 << 40, u64::MAX] {
        if let Ok(block) = note("alloc", arena.alloc(size)) {
            assert!(block.size >= size.max(1) && block.size.is_power_of_two());
            assert_in_arena(region, "allocated block", block.offset, block.size);
            for at in [block.offset, block.offset + block.size - 8] {
                let word = memory.word(at).expect("block word inside the mapping");
                word.store(word.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            let _ = note("free", arena.free(block.offset, size));
        }
    }
    assert!(arena.free(0, 64).is_err());
    assert!(arena.free(header.arena_end, 64).is_err());
    assert!(arena.free(header.arena_offset + 1, 64).is_err());
    let _ = std::hint::black_box(arena.stats());
    // Object creation, and re-creation of every listed name (a dead constructor's entry is
    // taken over and built again).
    let init = |object: &Object| -> shmarena_engine::Result<()> {
        let words = object.atomics::<AtomicU64>(0, object.info().size / 8)?;
        for i in 0..object.info().size / 8 {
            // SAFETY: `atomics` checked that `size / 8` words from `words` lie in the body.
            unsafe { NonNull::new_unchecked(words.as_ptr().add(i as usize)).as_ref() }
                .store(i, Ordering::Relaxed);
        }
        Ok(())
    };
    if let Ok((object, _)) = note(
        "get_or_create",
        region.get_or_create_object("fuzz", &fuzz_descriptor(), 192, init),
    ) {
        check_object(region, &object, sizes);
    }
    for entry in &objects {
        let size = entry.size.min(4096);
        if let Ok((object, _)) = note(
            "get_or_create",
            region.get_or_create_object(&entry.name, &entry.descriptor, size, init),
        ) {
            check_object(region, &object, sizes);
        }
    }
    let _ = region.get_or_create_object("counter", &fuzz_descriptor(), 8, init);
    // (The listing after these creations is `exercise_structures`'s, which runs next.)
}

/// Error findings of a consistency check, as text.
fn errors_of(findings: &[shmarena_engine::Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.severity == shmarena_engine::Severity::Error)
        .map(|f| format!("{}: {}", f.place, f.message))
        .collect()
}

/// Runs the `shmarena` consistency check, then opens every READY entry with the typed
/// handle its descriptor names (where that needs no knowledge of the user's `T`) and
/// drives its read paths; waits only with a zero timeout. Returns how many handles opened.
fn exercise_structures(region: &Region) -> usize {
    let findings = shmarena::check::check_region(region);
    if trace() {
        for finding in &findings {
            eprintln!(
                "  check: {:?} {}: {}",
                finding.severity, finding.place, finding.message
            );
        }
    }
    std::hint::black_box(findings);
    let Ok(entries) = region.objects() else {
        return 0;
    };
    let mut opened = 0;
    for entry in entries.iter().filter(|e| e.ready) {
        let ok = open_typed(region, entry);
        if trace() {
            eprintln!(
                "  typed {:?} {:?}: {}",
                entry.descriptor.kind,
                entry.name,
                if ok { "opened" } else { "refused" }
            );
        }
        opened += usize::from(ok);
    }
    opened
}

fn typed_value<T: shmarena::Scalar>(region: &Region, name: &str) -> bool {
    let Ok(value) = note("Value::open", shmarena::Value::<T>::open(region, name)) else {
        return false;
    };
    let _ = std::hint::black_box(value.try_load().is_ok());
    true
}

fn typed_array<T: shmarena::Scalar>(region: &Region, name: &str) -> bool {
    let Ok(array) = note("Array::open", shmarena::Array::<T>::open(region, name)) else {
        return false;
    };
    let len = array.len();
    let _ = std::hint::black_box(array.try_snapshot().map(|v| v.len()));
    if len > 0 {
        let _ = array.try_get(0);
        let _ = array.try_get(len - 1);
    }
    assert!(array.try_get(len).is_err(), "Array::try_get past the end");
    assert!(array.at(len).is_err(), "Array::at past the end");
    assert_eq!(array.as_slice().len(), len);
    true
}

fn typed_mutex<T: bytemuck::Pod>(region: &Region, name: &str) -> bool {
    let Ok(mutex) = note("Mutex::open", shmarena::Mutex::<T>::open(region, name)) else {
        return false;
    };
    use shmarena::TryLockError;
    match mutex.try_lock() {
        Ok(guard) | Err(TryLockError::OwnerDied(guard)) => {
            std::hint::black_box(*guard);
        }
        Err(TryLockError::WouldBlock) => {}
    }
    match mutex.lock_timeout(Duration::ZERO) {
        Ok(guard) | Err(TryLockError::OwnerDied(guard)) => {
            std::hint::black_box(*guard);
        }
        Err(TryLockError::WouldBlock) => {}
    }
    true
}

fn typed_queue<const N: usize>(region: &Region, name: &str) -> bool {
    let Ok(queue) = note(
        "Queue::open",
        shmarena::Queue::<[u8; N]>::open(region, name),
    ) else {
        return byte_queue(region, name);
    };
    let _ = std::hint::black_box((queue.len(), queue.is_empty(), queue.capacity()));
    let _ = std::hint::black_box((queue.lost(), queue.skipped()));
    let _ = std::hint::black_box(queue.try_pop());
    let _ = std::hint::black_box(queue.pop_timeout(Duration::ZERO));
    let _ = std::hint::black_box(queue.len());
    true
}

fn typed_list<const N: usize>(region: &Region, name: &str) -> bool {
    let Ok(list) = note("List::open", shmarena::List::<[u8; N]>::open(region, name)) else {
        return byte_list(region, name);
    };
    let (len, capacity) = (list.len(), list.capacity());
    for index in [0, len.saturating_sub(1), len, capacity.saturating_sub(1)] {
        let _ = std::hint::black_box(list.get(index));
    }
    assert!(list.get(capacity).is_err() || list.get(capacity).is_ok_and(|v| v.is_none()));
    let _ = std::hint::black_box(list.snapshot().map(|v| v.len()));
    let _ = std::hint::black_box(list.iter().take(capacity.min(1 << 16)).count());
    true
}

fn typed_map<const K: usize, const V: usize>(region: &Region, name: &str) -> bool {
    let Ok(map) = note(
        "HashMap::open",
        shmarena::HashMap::<[u8; K], [u8; V]>::open(region, name),
    ) else {
        return byte_map(region, name);
    };
    let _ = std::hint::black_box((map.len(), map.capacity()));
    for byte in [0u8, 1, 2, 3, 7, 255] {
        let _ = std::hint::black_box(map.get(&[byte; K]));
        let _ = std::hint::black_box(map.contains_key(&[byte; K]));
    }
    let _ = std::hint::black_box(map.iter().take(1 << 16).count());
    true
}

fn typed_set<const K: usize>(region: &Region, name: &str) -> bool {
    let Ok(set) = note(
        "HashSet::open",
        shmarena::HashSet::<[u8; K]>::open(region, name),
    ) else {
        return byte_set(region, name);
    };
    for byte in [0u8, 1, 7] {
        let _ = std::hint::black_box(set.contains(&[byte; K]));
    }
    let _ = std::hint::black_box(set.iter().take(1 << 16).count());
    true
}

/// A queue of a type other than bytes (a `Queue<u64>`, whose `u64` a `[u8; 8]` handle is
/// refused as), through its byte view.
fn byte_queue(region: &Region, name: &str) -> bool {
    let Ok(queue) = note("ByteQueue::open", shmarena::ByteQueue::open(region, name)) else {
        return false;
    };
    let _ = std::hint::black_box((queue.len(), queue.is_empty(), queue.capacity()));
    let _ = std::hint::black_box((queue.lost(), queue.skipped()));
    let _ = std::hint::black_box(queue.try_pop());
    let _ = std::hint::black_box(queue.pop_timeout(Some(Duration::ZERO)));
    true
}

/// A list of a type other than bytes, through its byte view.
fn byte_list(region: &Region, name: &str) -> bool {
    let Ok(list) = note("ByteList::open", shmarena::ByteList::open(region, name)) else {
        return false;
    };
    let (len, capacity) = (list.len(), list.capacity());
    for index in [0, len.saturating_sub(1), len, capacity.saturating_sub(1)] {
        let _ = std::hint::black_box(list.get(index));
    }
    true
}

/// A map of types other than bytes, through its byte view.
fn byte_map(region: &Region, name: &str) -> bool {
    let Ok(map) = note("ByteMap::open", shmarena::ByteMap::open(region, name)) else {
        return false;
    };
    let _ = std::hint::black_box(map.len());
    for byte in [0u8, 1, 2, 3, 7, 255] {
        let _ = std::hint::black_box(map.get(&[byte; 8]));
    }
    let _ = std::hint::black_box(map.iter().take(1 << 16).count());
    true
}

/// A set of a type other than bytes, through its byte view.
fn byte_set(region: &Region, name: &str) -> bool {
    let Ok(set) = note("ByteSet::open", shmarena::ByteSet::open(region, name)) else {
        return false;
    };
    for byte in [0u8, 1, 7] {
        let _ = std::hint::black_box(set.contains(&[byte; 8]));
    }
    let _ = std::hint::black_box(set.iter().take(1 << 16).count());
    true
}

/// Dispatches an element size to a `[u8; N]` handle (the sizes the fuzzer is likely to
/// see: the base image's and a few common ones).
macro_rules! by_size {
    ($f:ident, $size:expr, $region:expr, $name:expr) => {
        match $size {
            1 => $f::<1>($region, $name),
            2 => $f::<2>($region, $name),
            4 => $f::<4>($region, $name),
            8 => $f::<8>($region, $name),
            16 => $f::<16>($region, $name),
            24 => $f::<24>($region, $name),
            32 => $f::<32>($region, $name),
            64 => $f::<64>($region, $name),
            _ => false,
        }
    };
}

/// Opens one entry with the handle its descriptor names; `false` when none applies or
/// the handle refused it.
fn open_typed(region: &Region, entry: &shmarena_engine::EntryInfo) -> bool {
    use shmarena::{Barrier, Condvar, Event, RLock, Semaphore, ShardedCounter};
    let name = entry.name.as_str();
    let d = &entry.descriptor;
    match d.kind {
        ObjectKind::Value | ObjectKind::Array => {
            let array = d.kind == ObjectKind::Array;
            macro_rules! scalar {
                ($t:ty) => {
                    if array {
                        typed_array::<$t>(region, name)
                    } else {
                        typed_value::<$t>(region, name)
                    }
                };
            }
            match d.elem_code {
                b'b' => scalar!(i8),
                b'B' => scalar!(u8),
                b'h' => scalar!(i16),
                b'H' => scalar!(u16),
                b'i' => scalar!(i32),
                b'I' => scalar!(u32),
                b'q' => scalar!(i64),
                b'Q' => scalar!(u64),
                b'f' => scalar!(f32),
                b'd' => scalar!(f64),
                b'?' => scalar!(bool),
                b'u' => scalar!(char),
                _ => false,
            }
        }
        ObjectKind::ShardedCounter => {
            match note("ShardedCounter::open", ShardedCounter::open(region, name)) {
                Ok(counter) => {
                    std::hint::black_box(counter.sum());
                    true
                }
                Err(_) => false,
            }
        }
        ObjectKind::Mutex if d.elem_code == b'r' => {
            match note("RLock", RLock::get_or_create(region, name)) {
                Ok(lock) => {
                    use shmarena::TryLockError;
                    match lock.try_lock() {
                        Ok(guard) | Err(TryLockError::OwnerDied(guard)) => {
                            // Re-entrant: a second lock by the holder succeeds at once.
                            let again = lock.lock_timeout(Duration::ZERO);
                            drop(again);
                            drop(guard);
                        }
                        Err(TryLockError::WouldBlock) => {}
                    }
                    true
                }
                Err(_) => false,
            }
        }
        ObjectKind::Mutex => match (d.elem_size, d.capacity) {
            (1, 0) => typed_mutex::<()>(region, name),
            (4, 4) => typed_mutex::<u32>(region, name),
            (8, 8) => typed_mutex::<u64>(region, name),
            (8, 32) => typed_mutex::<[u64; 4]>(region, name),
            (1, 16) => typed_mutex::<[u8; 16]>(region, name),
            _ => false,
        },
        ObjectKind::Condvar => note("Condvar", Condvar::get_or_create(region, name)).is_ok(),
        ObjectKind::Event => match note("Event", Event::get_or_create(region, name)) {
            Ok(event) => {
                std::hint::black_box(event.is_set());
                std::hint::black_box(event.wait_timeout(Duration::ZERO));
                true
            }
            Err(_) => false,
        },
        ObjectKind::Semaphore => {
            // An existing semaphore opens whatever capacity is asked (the stored one wins).
            let capacity = d.capacity.clamp(1, 1 << 16) as u32;
            match note(
                "Semaphore",
                Semaphore::get_or_create(region, name, 0, capacity),
            ) {
                Ok(semaphore) => {
                    std::hint::black_box((
                        semaphore.available(),
                        semaphore.held(),
                        semaphore.capacity(),
                    ));
                    if semaphore.try_acquire() {
                        let _ = note("Semaphore::release", semaphore.release());
                    }
                    if semaphore.acquire_timeout(Duration::ZERO) {
                        let _ = note("Semaphore::release", semaphore.release());
                    }
                    true
                }
                Err(_) => false,
            }
        }
        ObjectKind::Barrier => {
            let Ok(parties) = u32::try_from(d.capacity) else {
                return false;
            };
            if parties == 0 || parties > shmarena::barrier::MAX_PARTIES {
                return false;
            }
            match note("Barrier", Barrier::get_or_create(region, name, parties)) {
                Ok(barrier) => {
                    std::hint::black_box((
                        barrier.n_waiting(),
                        barrier.is_broken(),
                        barrier.parties(),
                    ));
                    true
                }
                Err(_) => false,
            }
        }
        ObjectKind::Queue => by_size!(typed_queue, d.elem_size, region, name),
        ObjectKind::List => by_size!(typed_list, d.elem_size, region, name),
        ObjectKind::HashMap => match (d.key_size, d.elem_size) {
            (8, 8) => typed_map::<8, 8>(region, name),
            (8, 24) => typed_map::<8, 24>(region, name),
            (24, 8) => typed_map::<24, 8>(region, name),
            _ => false,
        },
        ObjectKind::HashSet => by_size!(typed_set, d.key_size, region, name),
        _ => false,
    }
}

/// `SHMARENA_FUZZ_TRACE=1` prints what each input does (for reading a finding or a seed).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SHMARENA_FUZZ_TRACE").is_some_and(|v| v != "0"))
}

/// In trace mode, prints an operation's error; passes the result on.
fn note<T>(what: &str, result: shmarena_engine::Result<T>) -> shmarena_engine::Result<T> {
    if trace() {
        if let Err(e) = &result {
            eprintln!("  {what}: {e}");
        }
    }
    result
}

fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (bytes, live) = build_file(mode, rest);
    let path = write_region_file(&bytes);
    let opened = Region::open_with(path, &options());
    if trace() {
        eprintln!(
            "mode {mode:#06b}, file {} bytes, {} live patches: open -> {:?}",
            bytes.len(),
            live.len(),
            opened
                .as_ref()
                .map(|r| r.objects().map(|o| o.len()))
                .map_err(ToString::to_string)
        );
    }
    if let Ok(region) = opened {
        let mut sizes = Vec::new();
        if !live.is_empty() {
            let memory = region.memory();
            apply_patches(
                &live,
                memory.len(),
                region.header(),
                |at| {
                    memory
                        .word(at)
                        .expect("patch inside the mapping")
                        .load(Ordering::Relaxed)
                },
                |at, value| {
                    memory
                        .word(at)
                        .expect("patch inside the mapping")
                        .store(value, Ordering::Relaxed);
                },
            );
        }
        exercise(&region, true, &mut sizes);
        exercise_structures(&region);
        // A second attachment sees what the first one left (and takes another slot).
        if let Ok(second) = Region::open_with(path, &options()) {
            assert_ne!(second.participant_id(), region.participant_id());
            exercise(&second, false, &mut sizes);
        }
        if trace() {
            eprintln!(
                "  after: objects {:?}, stats {:?}",
                region.objects().map(|o| o
                    .iter()
                    .map(|e| (e.name.clone(), e.ready))
                    .collect::<Vec<_>>()),
                region.arena_stats()
            );
        }
    }
}

fuzz_target!(
    init: {
        // Build the base image now, and check that it opens and passes every check.
        let base = base();
        run(&[MODE_PATCH]);
        let path = write_region_file(&base.bytes);
        let region = Region::open_with(path, &options()).expect("the base region opens");
        assert_eq!(region.objects().expect("base objects").len(), 4);
        drop(region);
        // The structures image: every object opens with its typed handle, and the
        // consistency check finds nothing wrong.
        let path = write_region_file(&structures_base().bytes);
        let region = Region::open_with(path, &options()).expect("the structures base opens");
        let errors = errors_of(&shmarena::check::check_region(&region));
        assert!(errors.is_empty(), "structures base: {errors:?}");
        assert_eq!(exercise_structures(&region), STRUCTURE_NAMES.len());
        drop(region);
        run(&[MODE_PATCH | MODE_STRUCTURES]);
    },
    |data: &[u8]| run(data)
);
