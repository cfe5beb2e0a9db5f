//! Grace periods across processes: "free or reuse this only once nobody can still be
//! looking at it", over the participant table, with dead processes skipped.
//!
//! ```text
//! header byte 1024 (own cache line): the grace epoch, a counter that only grows
//! participant slot word 4 (byte 32): | pins counted at odd epochs: 32 | at even: 32 |
//! participant slot word 5 (byte 40): region offset of the slot's pin stripes (0: none)
//! pin stripes: 16 words of the same format, one per cache line (an arena block of 1 KiB)
//! ```
//!
//! A process's threads pin on the stripes, thread `t` on stripe `t % 16`, so that threads
//! of one process do not contend on one word; the slot's word 4 serves when the slot has
//! no stripes (the arena had no room for them). A slot gets its stripes at its holder's
//! first pin and keeps them for every later holder (each attach clears them). Word 5 goes
//! from 0 to a block once and never back, and a scan reads it (SeqCst, after its fence)
//! before the stripes: a scan that reads 0 comes before, in the total order, every pin
//! counted on the block, so it is one that may miss the pin anyway (see below).
//!
//! A reader **pins** before it looks at anything that may be retired, and unpins after:
//! it adds one to the count of the epoch's parity in its participant slot (on its
//! thread's stripe, see above). Something unlinked from every shared path is
//! **retired** with the epoch read after the unlink ([`Grace::epoch`]), and may be freed
//! or reused once the epoch is three past that ([`Grace::has_passed`]).
//!
//! The epoch moves from `e` to `e + 1` ([`Grace::try_advance`]) only when no *live*
//! participant counts a pin of the parity of `e + 1` (that is, of `e - 1`): a scan of the
//! participants, then a compare-exchange of the epoch. A participant whose process died
//! is skipped (liveness as for locks: its slot lock went with it), so a kill never holds
//! reclamation back.
//!
//! Why three: a reader's count is followed by a sequentially consistent fence, the
//! retirement's read of the epoch is preceded by one, and so is every scan's read of the
//! pin words (after its read of the epoch). If the reader's fence comes after the
//! retirement's, the reader's loads see the unlink and never reach what was retired.
//! Otherwise the retirement reads some `r` after the count, and the moves to `r + 2` and
//! `r + 3` each compare-exchange from an epoch their scan read after the move to `r + 1`,
//! which follows the retirement's read: both scans read the pin words after the count,
//! and one of them checks the reader's parity (whatever epoch the reader read when
//! pinning: a stale read costs progress, never safety). So nothing the reader can reach
//! is freed before it unpins. Two would not be enough: a scan that read the pin words
//! just before the count and moves the epoch afterwards counts as one of the two, and
//! the other checks the other parity (`tests/loom_grace.rs` finds that interleaving).
//!
//! A scan reads the pin words of the slots below the header's high-water mark of slots
//! ever attached to ([`header::PARTICIPANTS_USED`]), read after its fence, not of the
//! whole table: every attach raises the mark (a SeqCst read-modify-write,
//! [`Grace::note_attach`]) before its process counts a pin on the slot. A scan whose read
//! of the mark misses a raise comes before it in the total order, so before every pin
//! counted on that slot: it is a scan that may miss the pin anyway (the same case as a
//! scan that reads the stripes word as 0), and a scan that begins after a count sees the
//! raise before it and checks the slot. `tests/loom_grace.rs` races an attach and its
//! first pin against a scan.
//!
//! Costs and bounds: a pin is one uncontended read-modify-write and a fence on a line the
//! thread's stripe owns, an unpin one read-modify-write (no system call); advancing reads
//! the pin words of every slot ever attached to and asks the kernel about a participant
//! only when it counts a pin of the parity checked. A process frozen while pinned holds back only reclamation:
//! the epoch cannot move more than one step past the moment its count showed, so
//! everything retired since then waits until it resumes or dies (how much that is depends
//! on the structure; no operation waits for it). A hostile region (counts that never
//! drain) can stop reclamation, never make a reader of a region that follows this
//! protocol see freed memory.

use crate::error::{Error, Result};
use crate::layout::{header, PARTICIPANT_SLOT_SIZE};
use crate::liveness::{Liveness, OwnerId};
use crate::memory::Memory;
use crate::sync::{fence, AtomicU64, Ordering};

/// Byte offset of the pin word in a participant slot.
pub const PIN_WORD: u64 = 32;

/// Advances past a retirement's epoch after which it may be freed (module docs).
pub const GRACE_ADVANCES: u64 = 3;

/// Byte offset in a participant slot of the region offset of its pin stripes (0: none).
pub const STRIPES_WORD: u64 = 40;

/// Pin stripes of a participant slot.
pub const PIN_STRIPES: u64 = 16;

/// Bytes from one stripe to the next (a cache line each).
pub const STRIPE_STRIDE: u64 = 64;

/// Bytes of a slot's stripe block.
pub const STRIPE_BLOCK: u64 = PIN_STRIPES * STRIPE_STRIDE;

/// The grace-period protocol over a region's memory (or a loom model's).
#[derive(Clone, Copy, Debug)]
pub struct Grace<'a, M: Memory> {
    mem: &'a M,
    participants_offset: u64,
    participant_capacity: u64,
}

/// A pin taken by [`Grace::pin`]: the word it counts in and what it added there. Give it
/// back with [`PinToken::unpin`].
#[derive(Clone, Copy, Debug)]
pub struct PinToken<'a> {
    word: &'a AtomicU64,
    amount: u64,
    epoch: u64,
}

impl PinToken<'_> {
    /// The epoch read when pinning (the parity the pin counts at; possibly stale).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Gives the pin back. Every read made under the pin happens before a reclaimer that
    /// sees the count drop frees anything.
    #[inline]
    pub fn unpin(self) {
        // Release: pairs with the scan's SeqCst loads (see above).
        self.word.fetch_sub(self.amount, Ordering::Release);
    }
}

impl<'a, M: Memory> Grace<'a, M> {
    /// The protocol over `mem`, whose participant table of `participant_capacity` slots
    /// starts at `participants_offset`.
    #[inline]
    pub fn new(mem: &'a M, participants_offset: u64, participant_capacity: u64) -> Self {
        Self {
            mem,
            participants_offset,
            participant_capacity,
        }
    }

    #[inline]
    fn slot_word(&self, slot: u32, offset: u64) -> Result<&'a AtomicU64> {
        self.mem
            .word(self.participants_offset + u64::from(slot) * PARTICIPANT_SLOT_SIZE + offset)
    }

    /// The current epoch: what to record with something the caller has just unlinked
    /// (retired).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the header is out of reach (never for a validated region).
    pub fn epoch(&self) -> Result<u64> {
        // SeqCst fence: the caller's unlink (a store of any ordering) comes before it, and
        // a pin's fence after its count; of the two fences, whichever comes first in the
        // total order makes the other side see: the unlink (the reader never finds what
        // was retired) or the count (module docs).
        fence(Ordering::SeqCst);
        // SeqCst: one total order with the advances' compare-exchanges and scans.
        Ok(self.mem.word(header::GRACE_EPOCH)?.load(Ordering::SeqCst))
    }

    /// Pins participant `slot` (see the module docs): until the token is given back,
    /// nothing the caller reaches after this call is freed.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a slot outside the table.
    #[inline]
    pub fn pin(&self, slot: u32) -> Result<PinToken<'a>> {
        self.check_slot(slot)?;
        self.pin_word(self.slot_word(slot, PIN_WORD)?)
    }

    /// Pins participant `slot` on stripe `stripe % PIN_STRIPES` of its stripe block, or on
    /// its slot's pin word when it has none.
    ///
    /// # Errors
    /// As [`Self::pin`].
    #[inline]
    pub fn pin_stripe(&self, slot: u32, stripe: u64) -> Result<PinToken<'a>> {
        self.check_slot(slot)?;
        match self.stripes(slot)? {
            Some(block) => self.pin_in_block(block, stripe),
            None => self.pin_word(self.slot_word(slot, PIN_WORD)?),
        }
    }

    /// Pins on stripe `stripe % PIN_STRIPES` of the stripe block `block`, which
    /// [`Self::stripes`] returned for the caller's own slot.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the stripe is out of reach (never for a block `stripes`
    /// accepted).
    #[inline]
    pub fn pin_in_block(&self, block: u64, stripe: u64) -> Result<PinToken<'a>> {
        self.pin_word(
            self.mem
                .word(block + (stripe % PIN_STRIPES) * STRIPE_STRIDE)?,
        )
    }

    fn check_slot(&self, slot: u32) -> Result<()> {
        if u64::from(slot) >= self.participant_capacity {
            return Err(Error::corrupt(
                "participant slot",
                format!(
                    "slot {slot} outside a table of {}",
                    self.participant_capacity
                ),
            ));
        }
        Ok(())
    }

    /// The stripe block of participant `slot`, if it has a valid one (an offset that
    /// cannot be one counts as none, for pins and scans alike: no pin is ever counted
    /// there).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a slot outside the table.
    #[inline]
    pub fn stripes(&self, slot: u32) -> Result<Option<u64>> {
        // SeqCst: a scan's read of it is ordered with every pin counted on the block
        // (module docs).
        let block = self.slot_word(slot, STRIPES_WORD)?.load(Ordering::SeqCst);
        let valid = block != 0
            && block % 8 == 0
            && block
                .checked_add(STRIPE_BLOCK - 8)
                .is_some_and(|last| self.mem.word(last).is_ok());
        Ok(valid.then_some(block))
    }

    /// Gives participant `slot` the stripe block at `block` (`STRIPE_BLOCK` zeroed bytes,
    /// not yet reachable) unless it has one: the block it has now.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a slot outside the table.
    pub fn set_stripes(&self, slot: u32, block: u64) -> Result<u64> {
        self.check_slot(slot)?;
        // SeqCst: as in `stripes`; publishes the zeroed block.
        Ok(
            match self.slot_word(slot, STRIPES_WORD)?.compare_exchange(
                0,
                block,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => block,
                Err(current) => current,
            },
        )
    }

    #[inline]
    fn pin_word(&self, word: &'a AtomicU64) -> Result<PinToken<'a>> {
        // Relaxed: the parity only spares the next advance (module docs); safety comes
        // from the count and the fence below, whatever epoch was read.
        let epoch = self.mem.word(header::GRACE_EPOCH)?.load(Ordering::Relaxed);
        let amount = 1 << parity_shift(epoch);
        // SeqCst: a count the scans read in one total order with the epoch.
        word.fetch_add(amount, Ordering::SeqCst);
        // SeqCst fence: pairs with the one in `epoch` (see there), so the reads the caller
        // makes under the pin cannot miss an unlink retired before the count showed.
        fence_after_locked_rmw();
        Ok(PinToken {
            word,
            amount,
            epoch,
        })
    }

    /// Records that participant `slot` is attached to, before its holder counts a pin there
    /// (raises the high-water mark of slots scans read: see the module docs).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a slot outside the table.
    pub fn note_attach(&self, slot: u32) -> Result<()> {
        self.check_slot(slot)?;
        // SeqCst: in one total order with the scans' reads of the mark and the pins'
        // counts, which come after it in this process (module docs).
        self.mem
            .word(header::PARTICIPANTS_USED)?
            .fetch_max(u64::from(slot) + 1, Ordering::SeqCst);
        Ok(())
    }

    /// How many participant slots from 0 a scan reads: the high-water mark of slots ever
    /// attached to, within the table (a larger mark, from a corrupt header, is the
    /// table's size).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the header is out of reach (never for a validated region).
    pub fn slots_used(&self) -> Result<u32> {
        // SeqCst: after the scan's fence, in one total order with the attaches' raises
        // (module docs).
        let used = self
            .mem
            .word(header::PARTICIPANTS_USED)?
            .load(Ordering::SeqCst);
        Ok(used.min(self.participant_capacity) as u32)
    }

    /// Moves the epoch on by one if no live participant counts a pin of the parity the
    /// move checks; whether the epoch moved (by us or meanwhile by another process).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a table word is out of reach (never for a validated region).
    pub fn try_advance(&self, liveness: &impl Liveness) -> Result<bool> {
        let epoch_word = self.mem.word(header::GRACE_EPOCH)?;
        // SeqCst: as in `epoch`.
        let epoch = epoch_word.load(Ordering::SeqCst);
        // SeqCst fence: the scan reads the pin words after every fence that comes before
        // this one, a reader's after its count among them (module docs).
        fence(Ordering::SeqCst);
        let checked = parity_shift(epoch.wrapping_add(1));
        for slot in 0..self.slots_used()? {
            if self.pins_at(slot, checked)? && self.holder_is_alive(slot, liveness)? {
                return Ok(false);
            }
        }
        // SeqCst: as in `epoch`.
        Ok(
            match epoch_word.compare_exchange(
                epoch,
                epoch.wrapping_add(1),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => true,
                Err(now) => now != epoch,
            },
        )
    }

    /// Whether something retired at epoch `retired` may be freed now, trying to move the
    /// epoch on (at most [`GRACE_ADVANCES`] times) when it may not yet.
    ///
    /// # Errors
    /// As [`Self::try_advance`].
    pub fn has_passed(&self, retired: u64, liveness: &impl Liveness) -> Result<bool> {
        for _ in 0..GRACE_ADVANCES {
            if self.has_passed_already(retired)? {
                return Ok(true);
            }
            if !self.try_advance(liveness)? {
                return Ok(false);
            }
        }
        self.has_passed_already(retired)
    }

    /// [`Self::has_passed`] without trying to move the epoch on: one read of the epoch,
    /// no scan of the participant table.
    ///
    /// # Errors
    /// As [`Self::epoch`].
    pub fn has_passed_already(&self, retired: u64) -> Result<bool> {
        Ok(self.epoch()? >= retired.saturating_add(GRACE_ADVANCES))
    }

    /// Runs `f` on every word participant `slot` may count pins in, its slot's pin word
    /// and then its stripes (read after the stripes word: see the module docs), until `f`
    /// returns true; whether it did.
    fn any_pin_word(&self, slot: u32, mut f: impl FnMut(&AtomicU64) -> bool) -> Result<bool> {
        if f(self.slot_word(slot, PIN_WORD)?) {
            return Ok(true);
        }
        if let Some(block) = self.stripes(slot)? {
            for stripe in 0..PIN_STRIPES {
                if f(self.mem.word(block + stripe * STRIPE_STRIDE)?) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Whether participant `slot` counts a pin at the parity `shift` selects.
    fn pins_at(&self, slot: u32, shift: u32) -> Result<bool> {
        // SeqCst: after the epoch's load in the total order (module docs); pairs with
        // unpin's Release.
        self.any_pin_word(slot, |word| {
            (word.load(Ordering::SeqCst) >> shift) as u32 != 0
        })
    }

    /// Pins counted on participant `slot`'s words, both parities (a snapshot, for
    /// reports).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a slot outside the table.
    pub fn pins(&self, slot: u32) -> Result<u64> {
        let mut total = 0;
        self.any_pin_word(slot, |word| {
            // Relaxed: informational.
            let pins = word.load(Ordering::Relaxed);
            total += (pins & 0xffff_ffff) + (pins >> 32);
            false
        })?;
        Ok(total)
    }

    /// Whether the holder of participant `slot` is a live process. A slot not `ACTIVE`
    /// has no holder (its last one detached or died; the next attach clears its pins).
    fn holder_is_alive(&self, slot: u32, liveness: &impl Liveness) -> Result<bool> {
        // Acquire: the slot word as its holder published it.
        let word = self.slot_word(slot, 0)?.load(Ordering::Acquire);
        Ok(crate::layout::slot_word::active_generation(word)
            .is_some_and(|generation| liveness.is_alive(OwnerId::new(slot, generation))))
    }

    /// Clears the pins of participant `slot`, for the process attaching to it under the
    /// slot's lock (pins a dead holder left must not count for the newcomer).
    ///
    /// # Errors
    /// As [`Self::try_advance`].
    pub fn clear_pins(&self, slot: u32) -> Result<()> {
        self.any_pin_word(slot, |word| {
            // Release: ordered before the slot word that makes the newcomer ACTIVE.
            word.store(0, Ordering::Release);
            false
        })?;
        Ok(())
    }
}

/// A SeqCst fence right after a SeqCst read-modify-write. On x86-64 the RMW is a `lock`ed
/// instruction, a full barrier of the processor, so only the compiler has to be kept from
/// moving later accesses above it, and the `mfence` a fence emits only adds its cost
/// (measured: the unbounded queue's push+pop, two pins, 92 -> 81 ns). This leans on the
/// processor, not on the language model (which does not promise that a SeqCst RMW orders
/// later non-SeqCst accesses as a fence does): crossbeam-epoch's pin does the same on x86
/// for the same reason. Elsewhere, and in loom models (which check the protocol with the
/// fence), a real fence.
#[inline]
fn fence_after_locked_rmw() {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    fence(Ordering::SeqCst);
}

/// Where the count of pins at `epoch`'s parity lies in a pin word.
#[inline]
fn parity_shift(epoch: u64) -> u32 {
    32 * (epoch & 1) as u32
}
