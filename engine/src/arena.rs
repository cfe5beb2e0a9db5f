//! The arena allocator: a lock-free bump pointer plus one Treiber-stack free list per
//! size class.
//!
//! ```text
//! header word ARENA_BUMP ---------------------------------+
//!                                                         v
//! | block | block |  block  | block |   block   | ...    | never handed out (zero) |
//! arena_offset                                                               arena_end
//!
//! free-list head (one per class): | ABA tag: 32 bits | block offset / 64: 32 bits |
//! free block:                     | next free block offset in bytes (0 = end) | ...
//! ```
//!
//! Every block is 64-byte aligned and of its class's size: 64 B, then each power of two
//! and each power of two times 1.5 (128, 192, 256, 384, 512, 768, ...), so that a request
//! is rounded up by at most a third, not nearly doubled (with powers of two alone a grown
//! table of 48-byte slots wasted a quarter of its block, and 100,000 blobs of a 1 KiB
//! Python value took 195 MiB; now 146). Blocks carry no
//! header: the caller frees with the size it allocated (structures know it from their
//! catalog entry).
//!
//! Linearization points: `alloc` at the successful CAS of the free-list head (pop) or of
//! the bump pointer; `free` at the successful CAS of the head (push).
//!
//! A process that dies after its linearization point and before it records the block
//! somewhere leaks that block and nothing else: no other state is ever half-updated.
//! The statistics words (bytes in use, free-list lengths) are updated after the fact and
//! are approximate when a process dies between the two.
//!
//! ABA: the head carries a 32-bit tag bumped by every push and pop, so a head that was
//! popped and pushed back between a reader's load and its CAS no longer compares equal.
//! (A reader would have to sleep through exactly 2^32 list operations to be fooled.)

use crate::error::{Error, Result};
use crate::layout::{header, BLOCK_ALIGN, SIZE_CLASSES};
use crate::memory::Memory;
use crate::sync::{fence, Backoff, Ordering};

/// Retries of one CAS loop before an operation gives up with [`Error::Contended`] instead
/// of spinning forever (a hostile process can keep a head changing).
const MAX_RETRIES: u32 = 1 << 20;

/// A block handed out by [`Arena::alloc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Byte offset of the block in the region.
    pub offset: u64,
    /// Usable size: the size class, at least the size asked for.
    pub size: u64,
    /// Whether the block came fresh from the bump pointer (and so is still all zero).
    pub fresh: bool,
}

/// Arena statistics, read without stopping other processes (a consistent-enough snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArenaStats {
    /// Bytes between the arena start and end.
    pub capacity: u64,
    /// Bytes the bump pointer has handed out (allocated at some time).
    pub reserved: u64,
    /// Bytes in blocks currently allocated.
    pub used: u64,
    /// `(block size, blocks on the free list)` for each class with free blocks.
    pub free_blocks: Vec<(u64, u64)>,
}

/// Size class of a request: the smallest class whose blocks ([`class_size`]) hold `size`
/// bytes.
///
/// # Errors
/// [`Error::OutOfMemory`] when no class is large enough.
pub fn size_class(size: u64) -> Result<usize> {
    let at_least = size.max(BLOCK_ALIGN);
    let rounded = at_least
        .checked_next_power_of_two()
        .ok_or_else(|| Error::OutOfMemory {
            requested: size,
            available: 0,
            region: "the region".to_owned(),
        })?;
    // rounded = 64 << doublings; its class is the odd 2 * doublings - 1, and the class
    // below it (three quarters of it) the even 2 * doublings - 2.
    let doublings = (rounded.trailing_zeros() - BLOCK_ALIGN.trailing_zeros()) as usize;
    let class = match doublings {
        0 => 0,
        1 => 1,
        _ if at_least <= rounded / 4 * 3 => 2 * doublings - 2,
        _ => 2 * doublings - 1,
    };
    if class >= SIZE_CLASSES {
        return Err(Error::OutOfMemory {
            requested: size,
            available: 0,
            region: "the region".to_owned(),
        });
    }
    Ok(class)
}

/// Bytes in a block of `class`: 64 for class 0; `64 << (class + 1) / 2` for an odd class
/// (128, 256, 512, ...); `192 << (class - 2) / 2` for an even one (192, 384, 768, ...).
pub fn class_size(class: usize) -> u64 {
    match class {
        0 => BLOCK_ALIGN,
        odd if odd % 2 == 1 => BLOCK_ALIGN << odd.div_ceil(2),
        even => (3 * BLOCK_ALIGN) << ((even - 2) / 2),
    }
}

fn pack_head(offset: u64, tag: u32) -> u64 {
    (u64::from(tag) << 32) | (offset / BLOCK_ALIGN)
}

fn head_offset(head: u64) -> u64 {
    (head & u64::from(u32::MAX)) * BLOCK_ALIGN
}

fn head_tag(head: u64) -> u32 {
    (head >> 32) as u32
}

/// The arena over some [`Memory`]: the region's mapping, or heap memory in models.
#[derive(Debug)]
pub struct Arena<'m, M: Memory> {
    mem: &'m M,
    start: u64,
    end: u64,
}

impl<'m, M: Memory> Arena<'m, M> {
    /// The arena spanning bytes `start..end` of `mem`, with its control words in the header.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the bounds are unaligned or outside `mem`.
    pub fn new(mem: &'m M, start: u64, end: u64) -> Result<Self> {
        if start % BLOCK_ALIGN != 0
            || start < crate::layout::HEADER_SIZE
            || end < start
            || end > mem.len()
        {
            return Err(Error::corrupt(
                "arena bounds",
                format!("{start}..{end} in {} bytes", mem.len()),
            ));
        }
        Ok(Self { mem, start, end })
    }

    /// Region offset of the arena's first byte.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Region offset just past the arena's last byte.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Sets the bump pointer to the arena start. Only the region's creator calls this,
    /// before it publishes the region.
    pub fn initialize(&self) -> Result<()> {
        // Relaxed: the region is not published yet; the READY store (Release) publishes it.
        self.mem
            .word(header::ARENA_BUMP)?
            .store(self.start, Ordering::Relaxed);
        Ok(())
    }

    /// Checks that a block of `size` bytes (the size it was allocated with) can lie at
    /// `offset`, as [`Self::free`] will.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when it cannot.
    pub(crate) fn check_block_of_size(&self, offset: u64, size: u64) -> Result<()> {
        let class = size_class(size)
            .map_err(|_| Error::corrupt("arena block", format!("no block holds {size} bytes")))?;
        self.check_block(offset, class)
    }

    /// Whether `offset` can be the start of a block of `class`.
    fn check_block(&self, offset: u64, class: usize) -> Result<()> {
        let fits = offset >= self.start
            && offset % BLOCK_ALIGN == 0
            && offset
                .checked_add(class_size(class))
                .is_some_and(|end| end <= self.end);
        if fits {
            Ok(())
        } else {
            Err(Error::corrupt(
                "arena free list",
                format!("block offset {offset} of class {class} is outside the arena"),
            ))
        }
    }

    /// Allocates a block of at least `size` bytes, 64-byte aligned.
    ///
    /// A recycled block holds stale contents; a `fresh` one is zero.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when neither the free list nor the bump pointer has room;
    /// [`Error::Corrupt`] when the free list or bump pointer hold impossible values.
    pub fn alloc(&self, size: u64) -> Result<Block> {
        let class = size_class(size)
            .map_err(|_| Error::out_of_memory(size, self.unreserved(), self.mem))?;
        let block = match self.pop(class)? {
            Some(offset) => Block {
                offset,
                size: class_size(class),
                fresh: false,
            },
            None => Block {
                offset: self.bump(class)?,
                size: class_size(class),
                fresh: true,
            },
        };
        // Release fence: whatever this thread writes into the block from here on is seen,
        // by a reader whose load read it and who then fences with Acquire, after what
        // came before the block's free (a stale reader of a retired block validates
        // that way: `structures/src/hash_map/grow.rs`). A compiler fence on x86-64.
        fence(Ordering::Release);
        fail::fail_point!("arena::after_alloc");
        // Relaxed: statistics only.
        self.mem
            .word(header::ARENA_USED)?
            .fetch_add(block.size, Ordering::Relaxed);
        Ok(block)
    }

    /// Bytes the bump pointer can still hand out (0 if the pointer is corrupt).
    fn unreserved(&self) -> u64 {
        self.mem.word(header::ARENA_BUMP).map_or(0, |word| {
            // Relaxed: an estimate for an error message.
            self.end.saturating_sub(word.load(Ordering::Relaxed))
        })
    }

    /// Returns a block to its size class's free list.
    ///
    /// `size` is the size passed to [`alloc`](Self::alloc) (or the block's class size).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when `offset` cannot be a block of that size.
    pub fn free(&self, offset: u64, size: u64) -> Result<()> {
        let class = size_class(size)?;
        self.check_block(offset, class)?;
        self.push(offset, class)?;
        // Relaxed: statistics only.
        self.mem
            .word(header::ARENA_USED)?
            .fetch_sub(class_size(class), Ordering::Relaxed);
        Ok(())
    }

    fn pop(&self, class: usize) -> Result<Option<u64>> {
        let head_word = self.mem.word(header::FREE_HEADS + 8 * class as u64)?;
        let backoff = Backoff::new();
        for _ in 0..MAX_RETRIES {
            // Acquire: pairs with the Release CAS of the push that linked this head, so the
            // block's next word written before that push is visible below.
            let head = head_word.load(Ordering::Acquire);
            let offset = head_offset(head);
            if offset == 0 {
                return Ok(None); // the list is empty
            }
            self.check_block(offset, class)?;
            // Relaxed: ordered after the head load by the Acquire above. If the block was
            // popped and reused meanwhile this value is garbage, and the CAS below fails
            // because the tag moved on.
            let next = self.mem.word(offset)?.load(Ordering::Relaxed);
            if next != 0 && self.check_block(next, class).is_err() {
                // Acquire fence: if `next` is data written by whoever popped this block
                // after our head load, the Release fence that popper ran after its CAS now
                // happens-before the reload below, so the reload sees the head moved on
                // (without it a stale reload would report a healthy list as corrupt).
                fence(Ordering::Acquire);
                if head_word.load(Ordering::Acquire) == head {
                    // The head did not move, so `next` is what the list really holds.
                    return Err(Error::corrupt(
                        "arena free list",
                        format!("block {offset} links to impossible offset {next}"),
                    ));
                }
                backoff.spin();
                continue; // the block was reused under us: start over
            }
            let new_head = pack_head(next, head_tag(head).wrapping_add(1));
            // Acquire on success: we take ownership of the block and must see everything
            // the freeing process wrote to it before its push. Relaxed on failure: retry.
            match head_word.compare_exchange_weak(
                head,
                new_head,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // Release fence: orders this pop before every later write to the block
                    // by its new owner; pairs with the Acquire fence above in a racing pop.
                    fence(Ordering::Release);
                    fail::fail_point!("arena::after_pop");
                    // Relaxed: statistics only.
                    self.mem
                        .word(header::FREE_COUNTS + 8 * class as u64)?
                        .fetch_sub(1, Ordering::Relaxed);
                    return Ok(Some(offset));
                }
                Err(_) => backoff.spin(), // another process pushed or popped: retry
            }
        }
        // The list kept changing under us; the bump pointer is the fallback.
        Ok(None)
    }

    fn push(&self, offset: u64, class: usize) -> Result<()> {
        let head_word = self.mem.word(header::FREE_HEADS + 8 * class as u64)?;
        let next_word = self.mem.word(offset)?;
        let backoff = Backoff::new();
        // Relaxed: the value is only a CAS guess; the CAS orders what matters.
        let mut head = head_word.load(Ordering::Relaxed);
        for _ in 0..MAX_RETRIES {
            // Relaxed: published by the Release CAS below.
            next_word.store(head_offset(head), Ordering::Relaxed);
            let new_head = pack_head(offset, head_tag(head).wrapping_add(1));
            // Release on success: publishes the next word (and the caller's last writes to
            // the block) to the popper's Acquire. Relaxed on failure: we only retry.
            match head_word.compare_exchange_weak(
                head,
                new_head,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // Relaxed: statistics only.
                    self.mem
                        .word(header::FREE_COUNTS + 8 * class as u64)?
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(actual) => {
                    head = actual; // the head moved: link to the new one
                    backoff.spin();
                }
            }
        }
        Err(Error::Contended("arena free"))
    }

    fn bump(&self, class: usize) -> Result<u64> {
        let size = class_size(class);
        let bump_word = self.mem.word(header::ARENA_BUMP)?;
        let backoff = Backoff::new();
        // Relaxed throughout: the bump pointer only partitions address space; no data is
        // published through it, and fresh memory is zero from the start.
        let mut current = bump_word.load(Ordering::Relaxed);
        for _ in 0..MAX_RETRIES {
            if current < self.start || current > self.end || current % BLOCK_ALIGN != 0 {
                return Err(Error::corrupt(
                    "arena bump pointer",
                    format!("{current} outside {}..{}", self.start, self.end),
                ));
            }
            let available = self.end - current;
            if size > available {
                return Err(Error::out_of_memory(size, available, self.mem));
            }
            match bump_word.compare_exchange_weak(
                current,
                current + size,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(current),
                Err(actual) => {
                    current = actual; // another allocation moved it: retry from there
                    backoff.spin();
                }
            }
        }
        Err(Error::Contended("arena bump"))
    }

    /// Reads the statistics words and the bump pointer.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a header word is out of bounds (never for a validated region).
    pub fn stats(&self) -> Result<ArenaStats> {
        // Relaxed: a statistics snapshot; other processes keep allocating.
        let bump = self.mem.word(header::ARENA_BUMP)?.load(Ordering::Relaxed);
        let used = self.mem.word(header::ARENA_USED)?.load(Ordering::Relaxed);
        let mut free_blocks = Vec::new();
        for class in 0..SIZE_CLASSES {
            let count = self
                .mem
                .word(header::FREE_COUNTS + 8 * class as u64)?
                .load(Ordering::Relaxed);
            if count != 0 {
                free_blocks.push((class_size(class), count));
            }
        }
        Ok(ArenaStats {
            capacity: self.end - self.start,
            reserved: bump.clamp(self.start, self.end) - self.start,
            used,
            free_blocks,
        })
    }

    /// Walks one free list (bounded by the number of blocks that fit the arena) and returns
    /// its block offsets. For verification while no process frees or allocates in `class`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] on an out-of-range link or a cycle.
    pub fn free_list(&self, class: usize) -> Result<Vec<u64>> {
        if class >= SIZE_CLASSES {
            return Err(Error::InvalidArgument(format!(
                "size class {class} >= {SIZE_CLASSES}"
            )));
        }
        let limit = (self.end - self.start) / class_size(class);
        // Acquire: see the links written before the pushes.
        let mut offset = head_offset(
            self.mem
                .word(header::FREE_HEADS + 8 * class as u64)?
                .load(Ordering::Acquire),
        );
        let mut blocks = Vec::new();
        while offset != 0 {
            self.check_block(offset, class)?;
            if blocks.len() as u64 >= limit {
                return Err(Error::corrupt(
                    "arena free list",
                    format!("class {class} list has a cycle"),
                ));
            }
            blocks.push(offset);
            // Relaxed: ordered by the Acquire on the head.
            offset = self.mem.word(offset)?.load(Ordering::Relaxed);
        }
        Ok(blocks)
    }
}
