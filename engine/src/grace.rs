//! Grace periods across processes: "free or reuse this only once nobody can still be
//! looking at it", over the participant table, with dead processes skipped.
//!
//! ```text
//! header word 1024 (own cache line): the grace epoch, a counter that only grows
//! participant slot words 4..8: four lanes, each | pins at odd epochs: 32 | at even: 32 |
//! ```
//!
//! A reader **pins** before it looks at anything that may be retired, and unpins after:
//! it adds one to the count of the epoch's parity in a lane of its participant slot (a
//! thread keeps one lane; threads of one process spread over four). Something unlinked
//! from every shared path is **retired** with the epoch read after the unlink, and may be
//! freed or reused once the epoch is two past that ([`Grace::has_passed`]).
//!
//! The epoch moves from `e` to `e + 1` ([`Grace::try_advance`]) only when no *live*
//! participant still counts a pin of parity `e - 1`: every reader that pinned before the
//! epoch became `e` has left. A participant whose process died is skipped (liveness as
//! for locks: its slot lock went with it), so a kill never holds reclamation back.
//!
//! Why two epochs are enough: a reader pinned at `e` counts under parity `e` from before
//! it reads anything. Whatever it can see was not unlinked before it pinned, so was
//! retired with an epoch of at least `e` (a sequentially consistent fence after the pin's
//! count and one before the retirement's read of the epoch order the two), and waits for
//! the epoch to reach `e + 2`; the move from `e + 1` to `e + 2` needs parity `e` drained,
//! which our reader holds until it unpins.
//!
//! The parity a pin counts at does not matter for safety: once its count shows (at epoch
//! `f`, say), whatever the reader can still reach is retired at `f` or later and waits
//! for two more advances, and of any two advances in a row one needs the pin's parity
//! drained. It matters for progress: a pin at the current epoch's parity does not hold
//! back the next advance, so a reader reads the epoch first (a stale read costs only a
//! delay).
//!
//! Costs and bounds: a pin is one uncontended read-modify-write and a fence on a line the
//! process owns, an unpin one read-modify-write (no system call); advancing reads every participant's lanes and
//! asks the kernel about a participant only when it holds a stale pin. A process frozen
//! while pinned holds back only reclamation: the epoch cannot pass its pin's epoch + 1,
//! so everything retired since it pinned waits until it resumes or dies (what that is
//! depends on the structure; no operation ever waits for it). A hostile region (counts
//! that never drain) can stop reclamation, never make a reader see freed memory of a
//! region that follows this protocol.

use crate::error::{Error, Result};
use crate::layout::{header, PARTICIPANT_SLOT_SIZE};
use crate::liveness::{Liveness, OwnerId};
use crate::memory::Memory;
use crate::sync::{fence, Ordering};

/// Lanes per participant slot: words 4..8 of the slot.
pub const LANES: u64 = 4;
/// Byte offset of lane 0 in a participant slot.
pub const FIRST_LANE: u64 = 32;

/// A participant slot's word 0: ACTIVE in its low byte, the generation above.
const STATE_ACTIVE: u64 = 1;

/// The grace-period protocol over a region's memory (or a loom model's).
#[derive(Clone, Copy, Debug)]
pub struct Grace<'a, M: Memory> {
    mem: &'a M,
    participants_offset: u64,
    participant_capacity: u64,
}

/// A pin taken by [`Grace::pin`]: the lane word it counts in and the parity it counts at.
/// Give it back with [`Grace::unpin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinToken {
    lane: u64,
    shift: u32,
    /// The epoch read when pinning (the parity the pin counts at).
    pub epoch: u64,
}

impl<'a, M: Memory> Grace<'a, M> {
    /// The protocol over `mem`, whose participant table of `participant_capacity` slots
    /// starts at `participants_offset`.
    pub fn new(mem: &'a M, participants_offset: u64, participant_capacity: u64) -> Self {
        Self {
            mem,
            participants_offset,
            participant_capacity,
        }
    }

    #[inline]
    fn lane_word(&self, slot: u32, lane: u64) -> Result<&'a crate::sync::AtomicU64> {
        self.mem.word(
            self.participants_offset
                + u64::from(slot) * PARTICIPANT_SLOT_SIZE
                + FIRST_LANE
                + 8 * (lane % LANES),
        )
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
        // was retired) or the count (the epoch read here is at least the pin's).
        fence(Ordering::SeqCst);
        // SeqCst: compared with pins and advances in one total order (module docs).
        Ok(self.mem.word(header::GRACE_EPOCH)?.load(Ordering::SeqCst))
    }

    /// Pins participant `slot` in `lane` (see the module docs): until the token is given
    /// back, nothing the caller reaches after this call is freed.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a slot outside the table.
    #[inline]
    pub fn pin(&self, slot: u32, lane: u64) -> Result<PinToken> {
        if u64::from(slot) >= self.participant_capacity {
            return Err(Error::corrupt(
                "participant slot",
                format!(
                    "slot {slot} outside a table of {}",
                    self.participant_capacity
                ),
            ));
        }
        let word = self.lane_word(slot, lane)?;
        // Relaxed: the parity only spares the next advance (module docs); safety comes
        // from the count and the fence below whatever epoch was read.
        let epoch = self.mem.word(header::GRACE_EPOCH)?.load(Ordering::Relaxed);
        let shift = parity_shift(epoch);
        // SeqCst: a count that advances read in one total order with the epoch.
        word.fetch_add(1 << shift, Ordering::SeqCst);
        // SeqCst fence: pairs with the one in `epoch` (see there), so the reads the caller
        // makes under the pin cannot miss an unlink retired before the count showed.
        fence(Ordering::SeqCst);
        Ok(PinToken {
            lane: lane % LANES,
            shift,
            epoch,
        })
    }

    /// Gives back a pin of participant `slot` (taken by [`Self::pin`] for the same slot).
    #[inline]
    pub fn unpin(&self, slot: u32, token: PinToken) {
        if let Ok(word) = self.lane_word(slot, token.lane) {
            // Release: every read made under the pin happens before a reclaimer that sees
            // the count drop (it loads the lanes with SeqCst) frees anything.
            word.fetch_sub(1 << token.shift, Ordering::Release);
        }
    }

    /// Moves the epoch on by one if no live participant holds a pin of the previous
    /// epoch's parity; whether the epoch moved (by us or meanwhile by another process).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a table word is out of reach (never for a validated region).
    pub fn try_advance(&self, liveness: &impl Liveness) -> Result<bool> {
        let epoch_word = self.mem.word(header::GRACE_EPOCH)?;
        // SeqCst: as in `epoch`.
        let epoch = epoch_word.load(Ordering::SeqCst);
        let stale = parity_shift(epoch.wrapping_add(1));
        for slot in 0..self.participant_capacity as u32 {
            for lane in 0..LANES {
                // SeqCst: after the epoch's load, so a pin counted before the epoch became
                // `epoch` shows (module docs); pairs with unpin's Release.
                let pins = (self.lane_word(slot, lane)?.load(Ordering::SeqCst) >> stale) as u32;
                if pins != 0 && self.holder_is_alive(slot, liveness)? {
                    return Ok(false);
                }
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
    /// epoch on (at most twice) when it may not yet.
    ///
    /// # Errors
    /// As [`Self::try_advance`].
    pub fn has_passed(&self, retired: u64, liveness: &impl Liveness) -> Result<bool> {
        let due = retired.saturating_add(2);
        for _ in 0..2 {
            if self.epoch()? >= due {
                return Ok(true);
            }
            if !self.try_advance(liveness)? {
                return Ok(false);
            }
        }
        Ok(self.epoch()? >= due)
    }

    /// Whether the holder of participant `slot` is a live process. A slot not `ACTIVE`
    /// has no holder (its last one detached or died; the next attach clears its lanes).
    fn holder_is_alive(&self, slot: u32, liveness: &impl Liveness) -> Result<bool> {
        // Acquire: the slot word as its holder published it.
        let word = self
            .mem
            .word(self.participants_offset + u64::from(slot) * PARTICIPANT_SLOT_SIZE)?
            .load(Ordering::Acquire);
        if word & 0xff != STATE_ACTIVE {
            return Ok(false);
        }
        let generation = ((word >> 12) as u32) & OwnerId::MAX_GENERATION;
        Ok(generation != 0 && liveness.is_alive(OwnerId::new(slot, generation)))
    }

    /// Clears the lanes of participant `slot`, for the process attaching to it (pins a
    /// dead holder left must not count for the newcomer).
    ///
    /// # Errors
    /// As [`Self::try_advance`].
    pub fn clear_lanes(&self, slot: u32) -> Result<()> {
        for lane in 0..LANES {
            // Release: ordered before the slot word that makes the newcomer ACTIVE.
            self.lane_word(slot, lane)?.store(0, Ordering::Release);
        }
        Ok(())
    }
}

/// Where the count of pins at `epoch`'s parity lies in a lane word.
fn parity_shift(epoch: u64) -> u32 {
    32 * (epoch & 1) as u32
}
