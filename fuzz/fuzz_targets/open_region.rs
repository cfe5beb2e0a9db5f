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

use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
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

/// Where this process's scratch files live: tmpfs when there is one.
fn scratch_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// The file every iteration writes, opens and removes (one per fuzzing process).
fn region_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| scratch_dir().join(format!("shmarena-fuzz-{}", std::process::id())))
}

fn options() -> RegionOptions {
    RegionOptions {
        participant_capacity: 4,
        catalog_capacity: 8,
        // Zero: a region still INITIALIZING is reported at once instead of after a 20 ms
        // sleep (the wait loop itself is trivial; throughput matters more here).
        init_timeout: Duration::ZERO,
        // Short: a forged owner that looks alive (it may even be us) makes lookups wait.
        construct_timeout: Duration::from_millis(1),
    }
}

/// The valid region image and its layout, built once per process.
struct Base {
    bytes: Vec<u8>,
    fields: HeaderFields,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(build_base)
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
        key_code: b'q',
        key_size: 8,
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
    let mut bytes = std::fs::read(&path).expect("read base region");
    let _ = std::fs::remove_file(&path);
    assert_eq!(bytes.len() as u64, BASE_SIZE);
    // Make the image the same in every process, so crash inputs reproduce: fixed hash
    // seed, creation time, creator pid and participant timestamps.
    set_word(&mut bytes, 3 * 8, 0x5eed_5eed_5eed_5eed);
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
        let base = base();
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
fn check_view<A: SharedAtomic>(region: &Region, object: &Object, load: impl Fn(&A) -> u64) {
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
    // Out-of-body and misaligned views must be refused.
    assert!(object.atomics::<A>(0, count + 1).is_err());
    assert!(object.atomics::<A>(info.size, 1).is_err());
    assert!(object.atomics::<A>(0, u64::MAX).is_err());
    assert!(object.atomics::<A>(u64::MAX - size + 1, 1).is_err());
    if size > 1 {
        assert!(object.atomics::<A>(1, 1).is_err());
    }
}

fn check_object(region: &Region, object: &Object) {
    let info = object.info();
    assert_in_arena(region, "object body", info.offset, info.size);
    check_view::<AtomicU8>(region, object, |a| a.load(Ordering::Relaxed).into());
    check_view::<AtomicU16>(region, object, |a| a.load(Ordering::Relaxed).into());
    check_view::<AtomicU32>(region, object, |a| a.load(Ordering::Relaxed).into());
    check_view::<AtomicU64>(region, object, |a| a.load(Ordering::Relaxed));
}

/// Every read path, then allocation and object creation. Any panic is a finding.
fn exercise(region: &Region, full: bool) {
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
                assert_in_arena(region, "free-list block", offset, 64 << class);
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
            check_object(region, &object);
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
        check_object(region, &object);
    }
    for entry in &objects {
        let size = entry.size.min(4096);
        if let Ok((object, _)) = note(
            "get_or_create",
            region.get_or_create_object(&entry.name, &entry.descriptor, size, init),
        ) {
            check_object(region, &object);
        }
    }
    let _ = region.get_or_create_object("counter", &fuzz_descriptor(), 8, init);
    let _ = region.objects();
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
    let path = region_path();
    std::fs::write(path, &bytes).expect("write the region file");
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
        exercise(&region, true);
        // A second attachment sees what the first one left (and takes another slot).
        if let Ok(second) = Region::open_with(path, &options()) {
            assert_ne!(second.participant_id(), region.participant_id());
            exercise(&second, false);
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
    // Every handle is gone (and with it the OFD locks): the name can go.
    let _ = std::fs::remove_file(path);
}

fuzz_target!(
    init: {
        // Leave no scratch file behind when a finding aborts the process.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = std::fs::remove_file(region_path());
            previous(info);
        }));
        // Build the base image now, and check that it opens and passes every check.
        let base = base();
        run(&[MODE_PATCH]);
        std::fs::write(region_path(), &base.bytes).expect("write the base region");
        let region = Region::open_with(region_path(), &options()).expect("the base region opens");
        assert_eq!(region.objects().expect("base objects").len(), 4);
        drop(region);
        let _ = std::fs::remove_file(region_path());
    },
    |data: &[u8]| run(data)
);
