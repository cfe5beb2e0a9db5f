//! The record of an arena block being made: two words of a structure's own memory that
//! name the process making the block (an unbounded queue's next ring, a list's next
//! segment) from the moment the arena hands the block out until the maker publishes it, so
//! that a maker killed in between leaks nothing: whoever next makes such a block gives a
//! dead maker's back first, and so does every process that opens the structure.
//!
//! ```text
//! what word:   maker << 32 | what (what the block is: its size follows from it; < 2^31)
//!              while a give-back holds it: owner << 32 | GIVING_BACK | what
//!              0: no record
//! block word:  maker << 32 | region offset / 64 (arena blocks are 64-byte aligned, and a
//!              region is at most 2^38 bytes); 0 until the arena hands the block out
//! ```
//!
//! - A maker takes the what word from 0 ([`MadeRecord::begin`]): one maker records at a
//!   time; one that finds it taken makes its block unrecorded.
//! - It writes the block word as soon as the arena hands the block out, before zeroing
//!   it ([`MadeRecord::block_taken`], from `Region::alloc_zeroed_words_recorded`'s
//!   callback).
//! - It clears both before it publishes the block, the block word first
//!   ([`MadeRecord::clear`]). So a record still there names a block nobody published,
//!   and a dead maker's never will be.
//! - A give-back ([`MadeRecord::give_back`]) judges the maker dead, then takes the what
//!   word over from the record it judged: a compare-exchange to a claim of its own
//!   ([`GIVING_BACK`], keeping `what`). While the what word holds a record or a claim,
//!   only its holder writes the block word (the participant sweep rewrites only its
//!   owner), so the block word then holds the block of the record taken over, or nothing.
//!   The give-back swaps it to 0, frees that block as `what` says, and clears its claim:
//!   a block goes back once, and as the size it has. Judging the record and then reading
//!   the block word would not do: the same record value can come back (a maker alive at
//!   the first look may record again; the sweep writes [`OwnerId::DEAD`] for every dead
//!   maker), with another block. A give-back that dies holding the word is taken over
//!   in turn.
//! - The participant sweep rewrites a retired owner in both words, as in every other
//!   owner field (`retire_owner_field(word, 32, ..)`).
//!
//! What still leaks: a block taken in the few instructions before its record, or given up
//! after the clear and before the publication; a block whose give-back died between its
//! swap of the block word and its free; a block made unrecorded while another maker's
//! record stood. A dead maker's block waits until that structure's next make or open.

use shmarena_engine::sync::{AtomicU64, Ordering};
use shmarena_engine::{Liveness, OwnerId};

/// The flag of a what word that a give-back holds ([`MadeRecord::give_back`]): the
/// give-back's owner in the high half, this bit and `what` in the low half.
pub const GIVING_BACK: u64 = 1 << 31;

/// A word of a [`MadeRecord`]: `owner`'s bits in the high half, `low` (a what, or a region
/// offset / 64) in the low half.
#[inline]
pub fn made_record(owner: OwnerId, low: u64) -> u64 {
    u64::from(owner.bits()) << 32 | (low & 0xffff_ffff)
}

/// The owner's bits and the low half of a [`made_record`].
#[inline]
fn made_parts(record: u64) -> (u32, u64) {
    ((record >> 32) as u32, record & 0xffff_ffff)
}

/// The two words recording a block being made (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct MadeRecord<'a> {
    /// What the block is, and its maker (or the give-back holding the record).
    pub what: &'a AtomicU64,
    /// The block, and its maker.
    pub block: &'a AtomicU64,
}

impl MadeRecord<'_> {
    /// Takes the record for `me`, about to make a block described by `what` (below 2^31):
    /// whether it did (else another maker's record stands, and the block goes unrecorded).
    /// A dead maker's record is given back first, with `free` (see [`Self::give_back`]).
    pub fn begin(
        &self,
        me: OwnerId,
        what: u64,
        liveness: &impl Liveness,
        free: impl FnOnce(u64, u64),
    ) -> bool {
        if me == OwnerId::ORPHAN {
            // No slot: nobody could ever find this maker dead.
            return false;
        }
        // Relaxed: a hint; the compare-exchanges decide.
        if self.what.load(Ordering::Relaxed) != 0 {
            self.give_back(liveness, free);
        }
        // Acquire: the previous holder's clear of the block word (before its Release
        // clear of this one) comes before our record in it.
        self.what
            .compare_exchange(
                0,
                made_record(me, what & (GIVING_BACK - 1)),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Records block `offset` as `me`'s (called with the block the arena just handed out,
    /// before it is zeroed, by a maker whose [`Self::begin`] took the record).
    pub fn block_taken(&self, me: OwnerId, offset: u64) {
        // Relaxed: only a give-back reads it, after it took the what word over from a maker
        // it found dead (every store of a dead process is done); a live maker clears it.
        self.block
            .store(made_record(me, offset / 64), Ordering::Relaxed);
    }

    /// Clears `me`'s record: before the block is published, or given up on an error. The
    /// block word first, so that the what word, while it names a maker, names the maker of
    /// the block.
    pub fn clear(&self, me: OwnerId) {
        // Relaxed, then Release: the block word's clear comes before the next maker's
        // record in it (see `begin`). A claim ([`GIVING_BACK`]) is a give-back's, never
        // ours to clear; the flag means nothing in the block word (an offset / 64 of 2^31
        // or more).
        for (word, order, claim) in [
            (self.block, Ordering::Relaxed, 0),
            (self.what, Ordering::Release, GIVING_BACK),
        ] {
            let seen = word.load(Ordering::Relaxed);
            let (owner, low) = made_parts(seen);
            if seen != 0 && owner == me.bits() && low & claim == 0 {
                // A failure: cleared by another thread of this process (the same owner).
                let _ = word.compare_exchange(seen, 0, order, Ordering::Relaxed);
            }
        }
    }

    /// Gives back the block a dead maker recorded, calling `free(offset, what)`, and
    /// clears the record (see the module docs). A record or claim whose owner may be alive
    /// is left for a later look; one that names no owner (a hostile word) counts as dead.
    pub fn give_back(&self, liveness: &impl Liveness, free: impl FnOnce(u64, u64)) {
        // Acquire: a record the sweep rewrote (SeqCst) to name no live owner is judged
        // without a system call.
        let seen = self.what.load(Ordering::Acquire);
        let (owner, low) = made_parts(seen);
        if seen == 0 || OwnerId::from_bits(owner).is_some_and(|owner| liveness.is_alive(owner)) {
            return;
        }
        if liveness.me() == OwnerId::ORPHAN {
            return; // a claim nobody could ever find dead
        }
        let what = low & !GIVING_BACK;
        let mine = made_record(liveness.me(), what | GIVING_BACK);
        // Acquire: pairs with the sweep's SeqCst rewrite of a record it judged; a dead
        // maker's block store comes before its death, which `is_alive` saw (and the swap
        // below reads the word's latest value anyway). A failure: the record changed since
        // it was judged (taken over, cleared, or rewritten by the sweep), left for a later
        // look.
        if self
            .what
            .compare_exchange(seen, mine, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        fail::fail_point!("made::give_back_after_claim");
        // AcqRel: as the claim (and the sweep's rewrite, SeqCst, of its owner).
        let block = self.block.swap(0, Ordering::AcqRel);
        if block != 0 {
            free(made_parts(block).1 * 64, what);
        }
        // Release: as in `clear`. A failure: none (the word is ours, and the sweep rewrites
        // only dead owners); a hostile region's, left.
        let _ = self
            .what
            .compare_exchange(mine, 0, Ordering::Release, Ordering::Relaxed);
    }

    /// Rewrites the owner of both words to [`OwnerId::DEAD`] where it names participant
    /// `slot` (the participant sweep's purge).
    ///
    /// # Errors
    /// [`shmarena_engine::Error::Contended`] for a word that keeps changing.
    pub fn retire_owner_slot(&self, slot: u32) -> shmarena_engine::Result<()> {
        for word in [self.what, self.block] {
            shmarena_engine::liveness::retire_owner_field(word, 32, slot, |record| record != 0)?;
        }
        Ok(())
    }
}
