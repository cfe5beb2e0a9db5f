//! Out-of-line bytes and retirement: blobs round-trip, a retired block waits for every
//! pinned reader and then returns to the arena, a corrupt blob is an error, and a batch
//! of retirements frees itself.

#![cfg(not(loom))]

use shmarena_engine::{Blob, Error, Region};

struct Temp(std::path::PathBuf, Region);

fn region(tag: &str) -> Temp {
    let path = std::env::temp_dir().join(format!("shmarena-reclaim-{tag}-{}", std::process::id()));
    let _ = Region::unlink(&path);
    let region = Region::create(&path, 4 << 20).unwrap();
    Temp(path, region)
}

/// Bytes of a participant slot's retire log in `region` (a block the slot keeps from its
/// first retirement on).
fn log_bytes(region: &Region) -> u64 {
    shmarena_engine::retire_log::log_bytes(region.arena_stats().unwrap().capacity)
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = Region::unlink(&self.0);
    }
}

#[test]
fn blobs_round_trip_at_every_length() {
    let temp = region("round-trip");
    let region = &temp.1;
    for len in [0usize, 1, 7, 8, 9, 63, 64, 65, 1000, 100_000] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let blob = region.store_blob(&bytes).unwrap();
        assert_eq!(blob.len(), len as u64);
        let again = Blob::from_bytes(blob.to_bytes());
        assert_eq!(again, blob);
        let pin = region.pin().unwrap();
        assert_eq!(
            region.read_blob(again, &pin).unwrap(),
            bytes,
            "length {len}"
        );
        drop(pin);
        region.free_blob(blob).unwrap();
    }
}

#[test]
fn a_retired_blob_waits_for_a_pinned_reader_then_returns_to_the_arena() {
    let temp = region("waits");
    let region = &temp.1;
    // The first pin gives our participant slot its pin stripes (a block it keeps), the
    // first retirement its retire log.
    drop(region.pin().unwrap());
    let used = region.arena_stats().unwrap().used + log_bytes(region);
    let blob = region.store_blob(&[7; 1000]).unwrap();
    let reader = region.pin().unwrap();
    region.retire_blob(blob).unwrap();
    for _ in 0..10 {
        assert_eq!(region.reclaim().unwrap(), 1, "freed under a pinned reader");
    }
    // The reader still reads what it found before the retirement.
    assert_eq!(region.read_blob(blob, &reader).unwrap(), vec![7; 1000]);
    // A new blob of the same size does not get the retired block.
    let other = region.store_blob(&[8; 1000]).unwrap();
    assert_ne!(other.offset(), blob.offset());
    drop(reader);
    assert_eq!(region.reclaim().unwrap(), 0);
    region.free_blob(other).unwrap();
    assert_eq!(region.arena_stats().unwrap().used, used);
    // The freed block is handed out again.
    let reused = region.store_blob(&[9; 1000]).unwrap();
    assert!(reused.offset() == blob.offset() || reused.offset() == other.offset());
}

/// Scans read the pins of the slots up to the highest one ever attached to: a reader in
/// the highest slot, with the slots between it and the retirer vacant again, holds the
/// retired block back as one in slot 0 would.
#[test]
fn a_reader_in_the_highest_slot_attached_holds_a_retirement_back() {
    let temp = region("highest-slot");
    let region = &temp.1;
    let mut others: Vec<Region> = (0..4).map(|_| Region::open(&temp.0).unwrap()).collect();
    let reader = others.pop().unwrap();
    assert_eq!(reader.participant_id().slot(), 4);
    drop(others); // slots 1 to 3 vacant: the mark stays above slot 4
    let blob = region.store_blob(&[3; 500]).unwrap();
    let pin = reader.pin().unwrap();
    region.retire_blob(blob).unwrap();
    for _ in 0..10 {
        assert_eq!(region.reclaim().unwrap(), 1, "freed under a pinned reader");
    }
    assert_eq!(reader.read_blob(blob, &pin).unwrap(), vec![3; 500]);
    drop(pin);
    assert_eq!(region.reclaim().unwrap(), 0);
}

#[test]
fn a_batch_of_retirements_frees_itself_and_a_dropped_handle_frees_the_rest() {
    let temp = region("batch");
    let used = temp.1.arena_stats().unwrap().used;
    {
        let region = Region::open(&temp.0).unwrap();
        for _ in 0..1000 {
            let blob = region.store_blob(&[1; 100]).unwrap();
            region.retire_blob(blob).unwrap();
        }
        // Never more than a batch waits when nobody is pinned.
        assert!(region.reclaim().unwrap() == 0);
        let blob = region.store_blob(&[1; 100]).unwrap();
        region.retire_blob(blob).unwrap();
    }
    // The handle's drop freed its last retirement, and its slot's retire log (empty).
    assert_eq!(temp.1.arena_stats().unwrap().used, used);
}

#[test]
fn a_corrupt_blob_is_an_error_not_a_read_outside_the_arena() {
    let temp = region("corrupt");
    let region = &temp.1;
    let pin = region.pin().unwrap();
    let mut outside = [0u8; 16];
    outside[..8].copy_from_slice(&(region.size() - 8).to_le_bytes());
    outside[8..].copy_from_slice(&64u64.to_le_bytes());
    let huge = Blob::from_bytes([0xff; 16]);
    let at_zero = Blob::from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]);
    for blob in [Blob::from_bytes(outside), huge, at_zero] {
        assert!(
            matches!(region.read_blob(blob, &pin), Err(Error::Corrupt { .. })),
            "{blob:?}"
        );
        assert!(matches!(
            region.retire_blob(blob),
            Err(Error::Corrupt { .. })
        ));
    }
}

/// A large block retired and reclaimed gives its pages back to the file system (the
/// region file's allocated size drops by about its size), and a large recycled block
/// comes back zeroed (its pages punched, its ends stored).
#[test]
fn large_blocks_give_their_pages_back_and_come_back_zeroed() {
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    // In /dev/shm: tmpfs punches holes (not every file system under the temp dir does).
    let name = format!("shmarena-reclaim-punch-{}", std::process::id());
    let _ = Region::unlink(&name);
    let region = Region::create(&name, 16 << 20).unwrap();
    let path = region.path().to_path_buf();
    let allocated = || std::fs::metadata(&path).unwrap().blocks() * 512;
    let words = (1 << 20) / 8 + 3; // a little over 1 MiB: unaligned ends
    let block = region.alloc_zeroed_words(words).unwrap();
    let cells = region.arena_atomics::<AtomicU64>(block, words).unwrap();
    let cell = |i: u64| {
        // SAFETY: `cells` points at `words` checked atomics; i < words.
        unsafe { &*cells.as_ptr().add(i as usize) }
    };
    for i in 0..words {
        cell(i).store(!0, Ordering::Relaxed);
    }
    // The first retirement gives our participant slot its retire log (a page of it
    // written): one before the count.
    let small = region.alloc_zeroed_words(1).unwrap();
    region.retire_block(small, 8).unwrap();
    let before = allocated();
    region.retire_block(block, 8 * words).unwrap();
    assert_eq!(region.reclaim().unwrap(), 0, "nobody is pinned: freed");
    let after = allocated();
    assert!(
        after + (1 << 20) - (16 << 10) <= before,
        "{before} bytes allocated before the free, {after} after"
    );
    // The block comes back from its free list: every word zero.
    assert_eq!(region.alloc_zeroed_words(words).unwrap(), block);
    assert!((0..words).all(|i| cell(i).load(Ordering::Relaxed) == 0));
    drop(region);
    let _ = Region::unlink(&name);
}
