//! Owner identities and the liveness question every recovery path asks.
//!
//! An [`OwnerId`] names one attachment of one process: the participant slot it holds and
//! the slot's generation at the time. Shared state that a process holds "in flight" (a
//! catalog entry under construction, later a lock or a slot being written) records the
//! owner id, so a survivor can ask [`Liveness::is_alive`] and recover instead of waiting.
//!
//! # Ids never come back
//! An owner id has 31 bits (a lock word is a 32-bit futex word with a flag bit), so a slot's
//! generation runs out after [`OwnerId::MAX_GENERATION`] attachments. It never wraps
//! while a dead owner's id may still be recorded: the attach that would reuse a generation
//! retires the slot instead (it takes no new owner), and a retired slot returns to use only
//! after a sweep has rewritten every owner field that names any of its attachments to
//! [`OwnerId::DEAD`] (the catalog's entries under construction, and each structure's
//! fields that recovery asks about, with one compare-exchange per field: see
//! [`retire_owner_field`]). All its attachments are dead by then, so the sweep changes no
//! live process's state, and what the dead held is recovered as before. So a dead owner's
//! id never names a live process again, for the whole life of a region: no rate of
//! attaches wears it out (a slot is swept once per `MAX_GENERATION` attaches).
//!
//! The promise covers the owner fields the library keeps. A ready catalog entry keeps its
//! creator's id as a record nobody judges, and an id a program stores itself (in a value
//! or an array, say) is not swept: such copies may name a later attachment.

/// One process attachment: `generation << 12 | slot`. Never zero for a real owner, and
/// always below 2^31, so a lock word can hold an owner and keep its top bit for a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerId(u32);

impl OwnerId {
    /// Bits of the participant slot index.
    pub const SLOT_BITS: u32 = 12;
    /// Largest generation; generations run 1..=MAX_GENERATION, then the slot is retired
    /// until a sweep (module docs) starts it again at 1.
    pub const MAX_GENERATION: u32 = (1 << (31 - Self::SLOT_BITS)) - 1;

    /// The id of processes that could not attach as themselves (a forked child that found
    /// no free participant slot or no file description of its own). Its slot lies beyond
    /// every participant table (at most
    /// [`MAX_PARTICIPANTS`](crate::layout::MAX_PARTICIPANTS) slots), so no death of it can
    /// be seen: every process takes it for alive, and what an orphan holds is never taken
    /// over (a lock an orphan dies holding stays held, as in a region without liveness).
    pub const ORPHAN: OwnerId = OwnerId((1 << Self::SLOT_BITS) | ((1 << Self::SLOT_BITS) - 1));

    /// What a sweep writes over the owner fields of a retired participant slot (see the
    /// module docs): an owner that is never alive. It shares [`Self::ORPHAN`]'s slot beyond
    /// every table, with another generation, so every process takes it for dead.
    pub const DEAD: OwnerId = OwnerId((2 << Self::SLOT_BITS) | ((1 << Self::SLOT_BITS) - 1));

    /// The owner holding `slot` in its `generation` (1..=[`Self::MAX_GENERATION`]).
    pub fn new(slot: u32, generation: u32) -> Self {
        debug_assert!(slot < 1 << Self::SLOT_BITS);
        debug_assert!((1..=Self::MAX_GENERATION).contains(&generation));
        Self((generation << Self::SLOT_BITS) | slot)
    }

    /// Reinterprets raw bits read from the region. `None` for zero (no owner) and for
    /// patterns no owner has (top bit set).
    #[inline]
    pub fn from_bits(bits: u32) -> Option<Self> {
        (bits >> Self::SLOT_BITS != 0 && bits >> 31 == 0).then_some(Self(bits))
    }

    /// The raw bits, for storing in a shared word.
    #[inline]
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

    /// Whether `owner` may still be alive, judged from shared memory alone (no system
    /// call, so fit for a fast path): `false` means dead for sure (its participant slot
    /// has moved on to another generation or out of use, as it has before a sweep rewrites
    /// the slot's owner fields); `true` may be a process that died and is not yet seen
    /// dead. By default [`Self::is_alive`].
    fn may_be_alive(&self, owner: OwnerId) -> bool {
        self.is_alive(owner)
    }
}

/// Compare-exchanges a retiring slot's owner out of one shared field: while bits
/// `shift..shift + 31` of `word` name an owner in participant slot `slot` (and `holds_owner`
/// says the word's other bits make that field an owner), they are replaced by
/// [`OwnerId::DEAD`]'s, the rest of the word kept. Whether a field was rewritten.
///
/// # Errors
/// [`Error::Contended`](crate::Error::Contended) if the word keeps changing (a hostile
/// region; live owners change such a word a bounded number of times).
pub fn retire_owner_field(
    word: &crate::sync::AtomicU64,
    shift: u32,
    slot: u32,
    holds_owner: impl Fn(u64) -> bool,
) -> crate::Result<bool> {
    use crate::sync::Ordering;
    let field = 0x7fff_ffffu64 << shift;
    // Acquire: judge the field as its last writer left it.
    let mut seen = word.load(Ordering::Acquire);
    for _ in 0..RETIRE_ATTEMPTS {
        let owner = OwnerId::from_bits(((seen & field) >> shift) as u32);
        if !holds_owner(seen) || owner.is_none_or(|owner| owner.slot() != slot) {
            return Ok(false);
        }
        let dead = (seen & !field) | u64::from(OwnerId::DEAD.bits()) << shift;
        // SeqCst: the same order as the owners' own compare-exchanges on the word, so a
        // recovery racing with the sweep sees one of the two first and acts on it.
        match word.compare_exchange(seen, dead, Ordering::SeqCst, Ordering::Acquire) {
            Ok(_) => return Ok(true),
            Err(now) => seen = now,
        }
    }
    Err(crate::Error::Contended(
        "owner field during a participant sweep",
    ))
}

/// [`retire_owner_field`] for a 32-bit word holding an owner in its low 31 bits (a lock
/// word; the top bit is kept).
///
/// # Errors
/// As [`retire_owner_field`].
pub fn retire_owner_field_u32(word: &crate::sync::AtomicU32, slot: u32) -> crate::Result<bool> {
    use crate::sync::Ordering;
    // Acquire: as above.
    let mut seen = word.load(Ordering::Acquire);
    for _ in 0..RETIRE_ATTEMPTS {
        let owner = OwnerId::from_bits(seen & 0x7fff_ffff);
        if owner.is_none_or(|owner| owner.slot() != slot) {
            return Ok(false);
        }
        let dead = (seen & 0x8000_0000) | OwnerId::DEAD.bits();
        // SeqCst: as above.
        match word.compare_exchange(seen, dead, Ordering::SeqCst, Ordering::Acquire) {
            Ok(_) => return Ok(true),
            Err(now) => seen = now,
        }
    }
    Err(crate::Error::Contended(
        "owner field during a participant sweep",
    ))
}

/// Compare-exchanges a sweep tries on one field before it reports contention.
const RETIRE_ATTEMPTS: u32 = 1 << 16;
