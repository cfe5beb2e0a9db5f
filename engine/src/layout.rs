//! The region's layout: one source of truth for writers, readers and `inspect`.
//!
//! ```text
//! offset 0                                                          region size
//! +-----------+--------------------+----------------------+-----------------------+
//! |  header   | participant table  |       catalog        |  arena blocks ...     |
//! | 4096 B    | capacity x 64 B    | capacity x 128 B     |  (bump grows ->)      |
//! +-----------+--------------------+----------------------+-----------------------+
//!             ^ participants_offset ^ catalog_offset      ^ arena_offset (page-aligned)
//! ```
//!
//! Header (every field one little-endian 64-bit word, read and written atomically):
//!
//! ```text
//!   0 magic "SHMARENA"          immutable, covered by checksum
//!   8 layout version              "
//!  16 region size                 "
//!  24 hash seed                   "
//!  32 participants offset         "
//!  40 participant capacity        "
//!  48 catalog offset              "
//!  56 catalog capacity            "
//!  64 arena offset                "
//!  72 arena end                   "
//!  80 created at (unix ns)        "
//!  88 checksum: xxh3 of bytes 0..88
//! 128 state: 0 = zeroed, 1 = INITIALIZING, 2 = READY (stored with Release last)
//! 136 creator pid
//! 144 generation limit: attachments per participant slot before it is retired and swept
//!     (0: OwnerId::MAX_GENERATION; a tuning word, not trusted beyond that range)
//! 152 retired participant slots awaiting a sweep (at least their number)
//! 160 flags, written by the creator before READY: bit 0 = collectable (a program's
//!     default region, which `crate::gc` may remove once no process has it open)
//! 168 participant slots used: one more than the highest slot ever attached to (scans of
//!     the participants stop there; raised by every attach before it uses its slot)
//! 256 arena bump pointer (own cache line)
//! 384 arena bytes in use
//! 512 free-list heads, one per size class: (ABA tag << 32) | (block offset / 64)
//! 1024 grace epoch (own cache line; see crate::grace)
//! 1088 free-list lengths, one per size class (statistics)
//! ```

use bytemuck::{Pod, Zeroable};

/// `b"SHMARENA"` read as a little-endian word.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMARENA");
/// The layout version this build reads and writes.
pub const LAYOUT_VERSION: u64 = 9;
/// Size of the header page.
pub const HEADER_SIZE: u64 = 4096;
/// Page size used to align the arena.
pub const PAGE_SIZE: u64 = 4096;
/// Alignment (and smallest size) of every arena block.
pub const BLOCK_ALIGN: u64 = 64;
/// Number of size classes: 64 B, then every power of two and every power of two times 1.5
/// (128, 192, 256, 384, ...) up to 64 B << 32 (see `crate::arena::class_size`).
pub const SIZE_CLASSES: usize = 64;
/// Largest region: free-list heads keep block offsets / 64 in 32 bits.
pub const MAX_REGION_SIZE: u64 = BLOCK_ALIGN << 32;
/// Smallest arena a region may have.
pub const MIN_ARENA_SIZE: u64 = 4 * PAGE_SIZE;

/// Bytes per participant slot.
pub const PARTICIPANT_SLOT_SIZE: u64 = 64;
/// Largest participant table (owner ids keep the slot in 12 bits).
pub const MAX_PARTICIPANTS: u64 = 4095;
/// Default participant table size.
pub const DEFAULT_PARTICIPANTS: u64 = 256;

/// Bytes per catalog entry.
pub const CATALOG_ENTRY_SIZE: u64 = 128;
/// Largest catalog.
pub const MAX_CATALOG_ENTRIES: u64 = 1 << 20;
/// Default catalog size.
pub const DEFAULT_CATALOG_ENTRIES: u64 = 512;
/// Longest object name in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Word 0 of a participant slot (see [`crate::participants`]): one encoding for the table
/// and for the grace periods that read it.
#[cfg_attr(loom, allow(dead_code))] // the participant table is not built under loom
pub(crate) mod slot_word {
    use crate::liveness::OwnerId;

    pub(crate) const STATE_FREE: u64 = 0;
    pub(crate) const STATE_ACTIVE: u64 = 1;
    pub(crate) const STATE_RETIRED: u64 = 2;

    pub(crate) fn pack_slot(state: u64, generation: u32, pid: u32) -> u64 {
        state | (u64::from(generation) << 12) | (u64::from(pid) << 32)
    }

    pub(crate) fn slot_generation(word: u64) -> u32 {
        ((word >> 12) as u32) & OwnerId::MAX_GENERATION
    }

    /// The generation of an `ACTIVE` slot's holder; `None` for a slot without one.
    pub(crate) fn active_generation(word: u64) -> Option<u32> {
        let generation = slot_generation(word);
        (word & 0xff == STATE_ACTIVE && generation != 0).then_some(generation)
    }
}

/// Offsets of the header's mutable words.
pub mod header {
    /// Initialization state word.
    pub const STATE: u64 = 128;
    /// Pid of the creating process.
    pub const CREATOR_PID: u64 = 136;
    /// Attachments a participant slot takes before it is retired and swept (0: the most
    /// an owner id can count, `OwnerId::MAX_GENERATION`). Tests lower it to reach the
    /// retirement quickly.
    pub const GENERATION_LIMIT: u64 = 144;
    /// Participant slots retired and not yet swept (never fewer than there are).
    pub const RETIRED_SLOTS: u64 = 152;
    /// Flags the creator writes before READY (see [`FLAG_COLLECTABLE`]); zero in regions
    /// of builds before the flags existed.
    pub const FLAGS: u64 = 160;
    /// [`FLAGS`] bit: a program's default region (`RegionOptions::collectable`), which
    /// `crate::gc` may remove once no process has it open.
    pub const FLAG_COLLECTABLE: u64 = 1;
    /// One more than the highest participant slot ever attached to: every attach raises
    /// it before it uses its slot, so scans of the participants' pins and retire logs
    /// stop there (see `crate::grace`). Not trusted beyond the table's capacity.
    pub const PARTICIPANTS_USED: u64 = 168;
    /// Arena bump pointer: offset of the first never-allocated byte.
    pub const ARENA_BUMP: u64 = 256;
    /// Bytes handed out and not freed.
    pub const ARENA_USED: u64 = 384;
    /// First free-list head.
    pub const FREE_HEADS: u64 = 512;
    /// The grace epoch (see [`crate::grace`]), on a cache line of its own.
    pub const GRACE_EPOCH: u64 = 1024;
    /// First free-list length counter.
    pub const FREE_COUNTS: u64 = 1088;

    /// Region state: all zero, the creator has not written anything yet.
    pub const STATE_ZERO: u64 = 0;
    /// Region state: the creator is writing the header and tables.
    pub const STATE_INITIALIZING: u64 = 1;
    /// Region state: ready for use.
    pub const STATE_READY: u64 = 2;
}

/// The immutable header fields, as a plain value: written once by the creator, copied into
/// each process at open and validated there; processes use their copy, never the mapping.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct HeaderFields {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`LAYOUT_VERSION`] of the creator.
    pub layout_version: u64,
    /// Total size of the region file in bytes.
    pub region_size: u64,
    /// Seed for every hash computed over region contents (the same in all processes).
    pub hash_seed: u64,
    /// Byte offset of the participant table.
    pub participants_offset: u64,
    /// Number of participant slots.
    pub participant_capacity: u64,
    /// Byte offset of the catalog.
    pub catalog_offset: u64,
    /// Number of catalog entries.
    pub catalog_capacity: u64,
    /// Byte offset of the first arena block.
    pub arena_offset: u64,
    /// One past the last arena byte.
    pub arena_end: u64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_at_nanos: u64,
    /// xxh3 of the preceding fields' bytes.
    pub checksum: u64,
}

/// Number of header words that [`HeaderFields`] spans.
pub const HEADER_FIELD_WORDS: usize = size_of::<HeaderFields>() / 8;

const _: () = {
    assert!(size_of::<HeaderFields>() == 96);
    assert!(std::mem::offset_of!(HeaderFields, checksum) == 88);
    assert!(96 <= header::STATE);
    assert!(header::STATE + 8 <= header::CREATOR_PID + 8);
    assert!(header::CREATOR_PID + 8 <= header::GENERATION_LIMIT);
    assert!(header::RETIRED_SLOTS + 8 <= header::FLAGS);
    assert!(header::FLAGS + 8 <= header::PARTICIPANTS_USED);
    assert!(header::PARTICIPANTS_USED + 8 <= header::ARENA_BUMP);
    assert!(header::ARENA_BUMP + 128 <= header::ARENA_USED + 128);
    assert!(header::ARENA_USED + 128 <= header::FREE_HEADS);
    assert!(header::FREE_HEADS + 8 * SIZE_CLASSES as u64 <= header::GRACE_EPOCH);
    assert!(header::GRACE_EPOCH % 64 == 0 && header::GRACE_EPOCH + 64 <= header::FREE_COUNTS);
    assert!(header::FREE_COUNTS + 8 * SIZE_CLASSES as u64 <= HEADER_SIZE);
    // The last slot number is OwnerId::ORPHAN's, which no table has.
    assert!(MAX_PARTICIPANTS < 1 << crate::liveness::OwnerId::SLOT_BITS);
    assert!(MAX_NAME_LEN as u64 + 16 <= CATALOG_ENTRY_SIZE);
};

impl HeaderFields {
    /// The checksum the fields should carry.
    pub fn compute_checksum(&self) -> u64 {
        let bytes = bytemuck::bytes_of(self);
        xxhash_rust::xxh3::xxh3_64(&bytes[..88])
    }

    /// Computes the layout of a new region of `size` bytes.
    ///
    /// # Errors
    /// [`Error::InvalidSize`](crate::Error::InvalidSize) when the tables leave less than
    /// [`MIN_ARENA_SIZE`] for the arena or `size` exceeds [`MAX_REGION_SIZE`];
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for table sizes out of range.
    pub fn plan(
        size: u64,
        participant_capacity: u64,
        catalog_capacity: u64,
        hash_seed: u64,
        created_at_nanos: u64,
    ) -> crate::Result<Self> {
        use crate::Error;
        if !(1..=MAX_PARTICIPANTS).contains(&participant_capacity) {
            return Err(Error::InvalidArgument(format!(
                "participant capacity {participant_capacity} must be between 1 and {MAX_PARTICIPANTS}"
            )));
        }
        if !(1..=MAX_CATALOG_ENTRIES).contains(&catalog_capacity) {
            return Err(Error::InvalidArgument(format!(
                "catalog capacity {catalog_capacity} must be between 1 and {MAX_CATALOG_ENTRIES}"
            )));
        }
        if size > MAX_REGION_SIZE {
            return Err(Error::InvalidSize {
                size,
                reason: format!("the largest region is {MAX_REGION_SIZE} bytes"),
            });
        }
        let participants_offset = HEADER_SIZE;
        let catalog_offset = (participants_offset + participant_capacity * PARTICIPANT_SLOT_SIZE)
            .next_multiple_of(BLOCK_ALIGN);
        let arena_offset =
            (catalog_offset + catalog_capacity * CATALOG_ENTRY_SIZE).next_multiple_of(PAGE_SIZE);
        let needed = arena_offset + MIN_ARENA_SIZE;
        if size < needed {
            return Err(Error::InvalidSize {
                size,
                reason: format!(
                    "the header and tables need {arena_offset} bytes and the arena at least \
                     {MIN_ARENA_SIZE}: the region must be at least {needed} bytes"
                ),
            });
        }
        let mut fields = HeaderFields {
            magic: MAGIC,
            layout_version: LAYOUT_VERSION,
            region_size: size,
            hash_seed,
            participants_offset,
            participant_capacity,
            catalog_offset,
            catalog_capacity,
            arena_offset,
            arena_end: size,
            created_at_nanos,
            checksum: 0,
        };
        fields.checksum = fields.compute_checksum();
        Ok(fields)
    }

    /// Checks every invariant of a header read from a region of `file_len` bytes: magic,
    /// version, checksum and that each table lies inside the file without overlap.
    /// (Magic and version are checked by the caller first, to report them precisely.)
    ///
    /// # Errors
    /// [`Error::Corrupt`](crate::Error::Corrupt) naming the first field that is wrong.
    pub fn validate(&self, file_len: u64) -> crate::Result<()> {
        use crate::Error;
        let bad = |field: &'static str, detail: String| Err(Error::corrupt(field, detail));
        if self.checksum != self.compute_checksum() {
            return bad(
                "header checksum",
                format!(
                    "stored {:#x}, computed {:#x}",
                    self.checksum,
                    self.compute_checksum()
                ),
            );
        }
        if self.region_size != file_len {
            return bad(
                "region size",
                format!(
                    "header says {} bytes, file has {file_len}",
                    self.region_size
                ),
            );
        }
        if self.region_size > MAX_REGION_SIZE {
            return bad(
                "region size",
                format!("{} exceeds the maximum", self.region_size),
            );
        }
        if self.participants_offset != HEADER_SIZE {
            return bad(
                "participants offset",
                format!("{} != {HEADER_SIZE}", self.participants_offset),
            );
        }
        if !(1..=MAX_PARTICIPANTS).contains(&self.participant_capacity) {
            return bad(
                "participant capacity",
                format!("{} out of range", self.participant_capacity),
            );
        }
        let participants_end =
            self.participants_offset + self.participant_capacity * PARTICIPANT_SLOT_SIZE;
        if self.catalog_offset < participants_end || self.catalog_offset % BLOCK_ALIGN != 0 {
            return bad(
                "catalog offset",
                format!(
                    "{} overlaps the participants or is unaligned",
                    self.catalog_offset
                ),
            );
        }
        if !(1..=MAX_CATALOG_ENTRIES).contains(&self.catalog_capacity) {
            return bad(
                "catalog capacity",
                format!("{} out of range", self.catalog_capacity),
            );
        }
        // Cannot overflow: offset < 2^38 (checked against region size below) and capacity <= 2^20.
        let catalog_end = self
            .catalog_offset
            .checked_add(self.catalog_capacity * CATALOG_ENTRY_SIZE)
            .ok_or_else(|| Error::corrupt("catalog offset", "overflows"))?;
        if self.arena_offset < catalog_end || self.arena_offset % PAGE_SIZE != 0 {
            return bad(
                "arena offset",
                format!("{} overlaps the catalog or is unaligned", self.arena_offset),
            );
        }
        if self.arena_end != self.region_size {
            return bad(
                "arena end",
                format!("{} != region size {}", self.arena_end, self.region_size),
            );
        }
        if self.arena_offset > self.arena_end || self.arena_end - self.arena_offset < MIN_ARENA_SIZE
        {
            return bad(
                "arena offset",
                format!(
                    "{} leaves no arena before {}",
                    self.arena_offset, self.arena_end
                ),
            );
        }
        Ok(())
    }
}
