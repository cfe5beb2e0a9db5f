//! Owner identities and the liveness question every recovery path asks.
//!
//! An [`OwnerId`] names one attachment of one process: the participant slot it holds and
//! the slot's generation at the time. Shared state that a process holds "in flight" (a
//! catalog entry under construction, later a lock or a slot being written) records the
//! owner id, so a survivor can ask [`Liveness::is_alive`] and recover instead of waiting.

/// One process attachment: `generation << 12 | slot`. Never zero for a real owner, and
/// always below 2^31, so a lock word can hold an owner and keep its top bit for a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerId(u32);

impl OwnerId {
    /// Bits of the participant slot index.
    pub const SLOT_BITS: u32 = 12;
    /// Largest generation; generations run 1..=MAX_GENERATION and then wrap to 1.
    pub const MAX_GENERATION: u32 = (1 << (31 - Self::SLOT_BITS)) - 1;

    /// The id of processes that could not attach as themselves (a forked child that found
    /// no free participant slot or no file description of its own). Its slot lies beyond
    /// every participant table (at most
    /// [`MAX_PARTICIPANTS`](crate::layout::MAX_PARTICIPANTS) slots), so no death of it can
    /// be seen: every process takes it for alive, and what an orphan holds is never taken
    /// over (a lock an orphan dies holding stays held, as in a region without liveness).
    pub const ORPHAN: OwnerId = OwnerId((1 << Self::SLOT_BITS) | ((1 << Self::SLOT_BITS) - 1));

    /// The owner holding `slot` in its `generation` (1..=[`Self::MAX_GENERATION`]).
    pub fn new(slot: u32, generation: u32) -> Self {
        debug_assert!(slot < 1 << Self::SLOT_BITS);
        debug_assert!((1..=Self::MAX_GENERATION).contains(&generation));
        Self((generation << Self::SLOT_BITS) | slot)
    }

    /// Reinterprets raw bits read from the region. `None` for zero (no owner) and for
    /// patterns no owner has (top bit set).
    pub fn from_bits(bits: u32) -> Option<Self> {
        (bits >> Self::SLOT_BITS != 0 && bits >> 31 == 0).then_some(Self(bits))
    }

    /// The raw bits, for storing in a shared word.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Participant slot index.
    pub fn slot(self) -> u32 {
        self.0 & ((1 << Self::SLOT_BITS) - 1)
    }

    /// Generation of the slot when this owner attached.
    pub fn generation(self) -> u32 {
        self.0 >> Self::SLOT_BITS
    }

    /// The generation after `generation`, skipping zero.
    pub fn next_generation(generation: u32) -> u32 {
        if generation >= Self::MAX_GENERATION {
            1
        } else {
            generation + 1
        }
    }
}

impl std::fmt::Display for OwnerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.slot(), self.generation())
    }
}

/// Who am I, and is that other owner still alive?
pub trait Liveness {
    /// The calling attachment's own id.
    fn me(&self) -> OwnerId;
    /// Whether `owner` is still attached and its process still running. May make a system
    /// call; used on slow paths only. A `false` answer is final: a dead owner never
    /// comes back (its slot's next holder gets a new generation).
    fn is_alive(&self, owner: OwnerId) -> bool;
}
