//! Moving a table's entries into the next, larger table: the per-slot protocol.
//!
//! A growing map is a chain of tables (see `grow.rs`); while a table has a next one it is
//! being migrated, slot by slot, by every operation that passes it (a chunk each, and the
//! probe range of the operation's own key). Migrating a slot:
//!
//! 1. A pending copy (`INSERTING`) or an unfinished removal (`REMOVING`) is settled first,
//!    as any operation on its key would; those two kinds are never frozen.
//! 2. The slot is **frozen**: its state gains `FROZEN` (one compare-exchange that keeps
//!    kind, key and value). From then on nothing changes it but the steps below: claims
//!    refuse it (and stop: a claim never passes a frozen slot), a `BUSY` slot's inserter
//!    fails to publish and goes on in the next table, every update's compare-exchange fails
//!    and finds the key `Moved`. A frozen member still counts as the key's member in this
//!    table, so a late copy of the key published here can never win.
//! 3. A frozen member is **copied**: any process reads its key and value (stable now),
//!    claims a slot in the next table, writes them there and publishes that slot as
//!    `MOVING` (not a member: lookups pass it), naming itself and the source slot.
//! 4. The copy is **committed** at the source: one compare-exchange from the frozen member
//!    to `COMMITTED` with word 1 naming the copy (slot and version). Exactly one copy of
//!    each member wins: a mover whose commit fails frees its own copy.
//! 5. The committed copy is **published** (`MOVING` -> `MEMBER` with `ARRIVED`): by the
//!    mover, or by anyone who finds the source committed (helping a frozen or dead mover).
//!
//! Why a key's operations may go on in the next table once its probe range here is
//! migrated (frozen, and every member in it committed and published): every claim of the
//! key scans the range from its home in probe order and stops at the first frozen slot,
//! and the migration freezes the range in the same order until a slot that was never
//! claimed when frozen (nothing of the key lies beyond it), so no insert of the key can
//! publish here afterwards; the key's member, if any, is published in the next table; no
//! copy of it here can be promoted (the frozen member beats it). So from then on the key
//! has one place, the next table, and each operation there is as on a single table.
//!
//! Kills and freezes: a slot frozen is final; a mover killed before its commit leaves an
//! uncommitted `MOVING` copy, and the next process that passes the source takes that copy
//! over (it names its source slot, and its mover is dead) and commits it rather than
//! making another (a copy it misses, published behind the bound it read, stays a slot lost
//! until this table is migrated in turn); a mover killed after its commit leaves a
//! committed source, and whoever passes it publishes the copy, also one that a mover which
//! read the source before that commit took over (its own commit fails on the commit that
//! names the same copy, and it publishes it instead of freeing it). A frozen mover holds
//! nothing up: others copy and commit the same slot (its own commit then fails and it
//! frees its copy).

use super::{
    aux, frozen, hint_of, identity, kind, tag, tag_of, version, with_kind, Claimed, KeyAccess,
    RawMap, Read, Shape, Slots, ARRIVED, COMMITTED, DELETED, FROZEN, INSERTING, MAX_RETRIES,
    MEMBER, MOVING, REMOVING,
};
use shmarena_engine::sync::Ordering;
use shmarena_engine::{Error, Liveness, OwnerId, Result};

/// Slots of a table one operation migrates when it helps. One slot under loom, so that
/// a model's small tables migrate over several operations (and a key's probe range is
/// not always migrated by the chunk that comes first).
pub const CHUNK: u64 = if cfg!(loom) { 1 } else { 64 };

/// Table header word: the id of the next table (0: none, the table is not migrating).
pub const NEXT: u64 = 0;
/// Table header word: chunks handed out to helpers so far.
pub const CURSOR: u64 = 1;
/// Table header word: the table's capacity (written before the table is linked).
pub const CAPACITY: u64 = 2;
/// Table header word of a table in the arena: the region offset of its slots, which lie
/// in an arena block of their own (written before the table is linked; 0 in the first
/// table, whose slots follow its hints).
pub const SLOTS: u64 = 3;
/// Table header words where a process making the next table records the blocks it has
/// taken for it (see `grow::Tables::make`).
pub const MADE: [u64; 2] = [4, 5];
/// First table header word of the bitmap of migrated chunks.
pub const BITMAP: u64 = 8;

/// Chunks of a table of `capacity` slots.
pub fn chunks(capacity: u64) -> u64 {
    capacity.div_ceil(CHUNK)
}

/// Header words of a table of `capacity` slots (the bitmap included), whole cache lines.
pub fn header_words(capacity: u64) -> u64 {
    (BITMAP + chunks(capacity).div_ceil(64)).next_multiple_of(8)
}

/// The word a commit writes into its source: the copy's slot in the next table (low
/// half) and the low half of its version (high half).
fn copy_name(slot: u64, state: u64) -> u64 {
    slot | (version(state) & 0xffff_ffff) << 32
}

/// Whether a slot in `state` is still the incarnation the commit word `dest` names.
pub(crate) fn names(dest: u64, state: u64) -> bool {
    version(state) & 0xffff_ffff == dest >> 32
}

/// Key and value buffers for moving entries.
pub(crate) struct Buffers {
    key: Vec<u64>,
    value: Vec<u64>,
}

impl Buffers {
    pub(crate) fn new<S: Slots, Sh: Shape>(map: &RawMap<S, Sh>) -> Self {
        Self {
            key: vec![0; map.key_words()],
            value: vec![0; map.value_words().max(1)],
        }
    }
}

impl<S: Slots, Sh: Shape> RawMap<S, Sh> {
    /// Header word `word` of this table.
    pub(crate) fn header(&self, word: u64) -> &shmarena_engine::sync::AtomicU64 {
        self.slots.header(word)
    }

    /// This table's [`MADE`] words: records of the blocks taken for its next table.
    pub(crate) fn made_records(&self) -> [&shmarena_engine::sync::AtomicU64; 2] {
        [self.header(MADE[0]), self.header(MADE[1])]
    }

    /// The slot the commit word `dest` names in this table.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a slot outside the table.
    pub(crate) fn named_slot(&self, dest: u64) -> Result<u64> {
        let slot = dest & 0xffff_ffff;
        if slot >= self.capacity() {
            return Err(Error::corrupt(
                "hash map migration",
                format!(
                    "a committed copy in slot {slot} of a table of {}",
                    self.capacity()
                ),
            ));
        }
        Ok(slot)
    }

    /// Migrates `slot` of this table into `next` (steps 1-5 of the module docs); does
    /// nothing more to a slot already migrated.
    ///
    /// # Errors
    /// [`Error::Full`] if the next table has no room for the member near its key's home
    /// (a hostile table's keys); [`Error::Contended`] if the slot keeps changing.
    pub(crate) fn migrate_slot<T: Slots>(
        &self,
        slot: u64,
        next: &RawMap<T, Sh>,
        liveness: &impl Liveness,
        buffers: &mut Buffers,
    ) -> Result<()> {
        let shard = liveness.me().slot() as usize;
        for _ in 0..MAX_RETRIES {
            // SeqCst: state changes take part in the uniqueness argument (module docs of
            // the map).
            let seen = self.pair(slot).load(Ordering::SeqCst);
            if frozen(seen[0]) {
                if kind(seen[0]) != MEMBER {
                    return Ok(());
                }
                if seen[0] & COMMITTED != 0 {
                    return next.publish_moved(seen[1]);
                }
                self.copy_member(slot, seen, next, liveness, buffers)?;
                continue;
            }
            match kind(seen[0]) {
                INSERTING | REMOVING => {
                    self.settle_copy(slot, seen, &mut buffers.key, shard)?;
                }
                _ => {
                    // SeqCst: a state change; the slot keeps kind, key and value. A failure
                    // (the slot changed) is judged again.
                    let _ = self.pair(slot).compare_exchange(
                        seen,
                        [seen[0] | FROZEN, seen[1]],
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
            }
        }
        Err(Error::Contended("hash map migration"))
    }

    /// Migrates the probe range of a key with `hash`: from its home in probe order up to
    /// the first slot that had never been claimed when it was frozen.
    ///
    /// # Errors
    /// As [`Self::migrate_slot`].
    pub(crate) fn migrate_key<T: Slots>(
        &self,
        hash: u64,
        next: &RawMap<T, Sh>,
        liveness: &impl Liveness,
    ) -> Result<()> {
        let home = hash & self.mask;
        let mut buffers = Buffers::new(self);
        for displacement in 0..self.max_probe {
            let slot = (home + displacement) & self.mask;
            self.migrate_slot(slot, next, liveness, &mut buffers)?;
            // SeqCst: read after the slot was frozen; a claim's hint is written before its
            // compare-exchange, which the freeze follows or made fail (module docs).
            let word = self.slots.hints(slot / 8).load(Ordering::SeqCst);
            let byte = (word >> (8 * (slot % 8))) & 0xff;
            if byte == 0 {
                break; // never claimed: nothing of the key lies beyond
            }
        }
        Ok(())
    }

    /// Migrates chunk `chunk` of this table into `next`.
    ///
    /// # Errors
    /// As [`Self::migrate_slot`].
    pub(crate) fn migrate_chunk<T: Slots>(
        &self,
        chunk: u64,
        next: &RawMap<T, Sh>,
        liveness: &impl Liveness,
    ) -> Result<()> {
        let mut buffers = Buffers::new(self);
        let end = ((chunk + 1) * CHUNK).min(self.capacity());
        for slot in chunk * CHUNK..end {
            self.migrate_slot(slot, next, liveness, &mut buffers)?;
        }
        Ok(())
    }

    /// Steps 3 to 5 for the frozen, uncommitted member in `slot` (seen as `seen`).
    fn copy_member<T: Slots>(
        &self,
        slot: u64,
        seen: [u64; 2],
        next: &RawMap<T, Sh>,
        liveness: &impl Liveness,
        buffers: &mut Buffers,
    ) -> Result<()> {
        let Buffers { key, value } = buffers;
        if self.read_slot(slot, seen, KeyAccess::Copy(key), Some(value)) != Read::Match {
            return Ok(()); // changed (committed, or a writer left): the caller looks again
        }
        let hash = self.hash(key);
        let word = u64::from(liveness.me().bits()) | slot << 32;
        let (copy_slot, copy) = match next.adopt_orphan(hash, key, word, liveness) {
            Some(adopted) => adopted,
            None => match self.place_copy(slot, seen, hash, next, word, liveness, buffers)? {
                Some(placed) => placed,
                None => return Ok(()),
            },
        };
        fail::fail_point!("hash_map::migrate_before_commit");
        let dest = copy_name(copy_slot, copy[0]);
        let mut now = seen;
        let outcome = loop {
            // SeqCst: the commit, a state change; only the bound may move under it.
            match self.pair(slot).compare_exchange(
                now,
                [now[0] | COMMITTED, dest],
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break None,
                Err(actual) if identity(actual[0]) == identity(now[0]) && actual[1] == now[1] => {
                    now = actual;
                }
                Err(actual) => break Some(actual),
            }
        };
        match outcome {
            None => {
                fail::fail_point!("hash_map::migrate_before_publish");
                next.publish_moved(dest)
            }
            Some(actual) => {
                let committed =
                    frozen(actual[0]) && kind(actual[0]) == MEMBER && actual[0] & COMMITTED != 0;
                // Another mover committed first (or a writer left the source): ours goes,
                // unless the commit names this very copy: one we took over from a mover that
                // committed it before it died (we read the source before that commit). That
                // copy is the key's entry now, and is published, never freed.
                if !committed || actual[1] != dest {
                    let _ = next.transition(copy_slot, copy, DELETED, 0);
                }
                if committed {
                    next.publish_moved(actual[1])?;
                }
                Ok(())
            }
        }
    }

    /// Step 3 proper: claims a slot for the frozen member of `slot` (seen as `seen`, its
    /// key and value in `buffers`) in `next` and publishes the copy there as `MOVING` with
    /// word 1 `word`; the copy's slot and pair, or `None` when there is nothing to place
    /// (the source was committed meanwhile, or the slot was frozen under the claim).
    ///
    /// # Errors
    /// As [`Self::migrate_slot`].
    #[allow(clippy::too_many_arguments)]
    fn place_copy<T: Slots>(
        &self,
        slot: u64,
        seen: [u64; 2],
        hash: u64,
        next: &RawMap<T, Sh>,
        word: u64,
        liveness: &impl Liveness,
        buffers: &Buffers,
    ) -> Result<Option<(u64, [u64; 2])>> {
        let claim = match next.claim(hash, u64::MAX, || false, liveness)? {
            Claimed::Slot(claim) => claim,
            // The next table is frozen only once this one is migrated: the source is
            // committed by now.
            Claimed::Moved => return Ok(None),
            Claimed::Full => {
                // Another mover may have committed (and others filled the next table)
                // since we read the source: then there is nothing to place.
                // SeqCst: as in `migrate_slot`.
                let now = self.pair(slot).load(Ordering::SeqCst);
                if identity(now[0]) != identity(seen[0]) || now[1] != seen[1] {
                    return Ok(None);
                }
                return Err(Error::Full {
                    capacity: next.capacity(),
                });
            }
        };
        let Buffers { key, value } = buffers;
        Ok(next
            .publish_as(claim, hash, key, value, MOVING, word)?
            .map(|copy| (claim.slot, copy)))
    }

    /// A copy that a mover published here as `MOVING` and died before committing: found in
    /// the probe range of `hash` by its key and its source slot (the high half of `word`),
    /// and taken over (word 1 becomes `word`, naming us) so that it is committed instead of
    /// a new copy. Without this, each mover killed between its copy and its commit would
    /// leave a slot of this table that nothing reaches until the table is migrated in turn.
    /// The copy's slot and pair, or `None` if there is no such copy.
    ///
    /// The orphan holds exactly what a new copy would: its source is frozen, so its key and
    /// value have not changed since the dead mover read them, and the mover wrote them
    /// before publishing the copy. Taking over is one compare-exchange of word 1 from the
    /// dead mover's name: of several movers that find the same orphan, one takes it, and a
    /// copy that a live (perhaps frozen) mover owns is never touched.
    fn adopt_orphan(
        &self,
        hash: u64,
        key: &[u64],
        word: u64,
        liveness: &impl Liveness,
    ) -> Option<(u64, [u64; 2])> {
        let home = hash & self.mask;
        // A copy raises its home's bound before it is published (SeqCst), so the bound
        // read here covers every copy published before this load (one published after it
        // may lie beyond: then it is not taken over, a slot left as before).
        let reach = self.bound_at(home);
        let source = word >> 32;
        for displacement in 0..reach {
            let slot = (home + displacement) & self.mask;
            // Relaxed: a filter; the copy is judged on its pair below.
            let hints = self.slots.hints(slot / 8).load(Ordering::Relaxed);
            if (hints >> (8 * (slot % 8))) & 0xff != hint_of(hash) {
                continue;
            }
            // SeqCst: as every state read of the uniqueness argument; it also makes the
            // key words the mover wrote before publishing visible.
            let seen = self.pair(slot).load(Ordering::SeqCst);
            let orphan = kind(seen[0]) == MOVING
                && !frozen(seen[0])
                && tag(seen[0]) == tag_of(hash)
                && seen[1] >> 32 == source
                && OwnerId::from_bits(seen[1] as u32).is_none_or(|mover| !liveness.is_alive(mover));
            if !orphan {
                continue;
            }
            // Relaxed: a check against a corrupted table only. A copy that names this source
            // slot was copied from the source's frozen, final content, so its key is ours.
            let same_key = self.slots.data(slot)[..self.key_words()]
                .iter()
                .zip(key)
                .all(|(cell, word)| cell.load(Ordering::Relaxed) == *word);
            if same_key {
                if let Ok(adopted) = self.transition(slot, seen, MOVING, word) {
                    return Some((slot, adopted));
                }
            }
        }
        None
    }

    /// Step 5: publishes the committed copy `dest` (slot and version, as a commit names
    /// it) in this table, if it is still unpublished.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a slot outside the table; [`Error::Contended`] if it keeps
    /// changing.
    pub(crate) fn publish_moved(&self, dest: u64) -> Result<()> {
        let slot = self.named_slot(dest)?;
        for _ in 0..MAX_RETRIES {
            // SeqCst: as every state read of the uniqueness argument.
            let seen = self.pair(slot).load(Ordering::SeqCst);
            if kind(seen[0]) != MOVING || frozen(seen[0]) || !names(dest, seen[0]) {
                return Ok(()); // published already (and perhaps changed since)
            }
            let word = if self.wide() {
                aux(0, None)
            } else {
                // Relaxed: written before the copy was published as MOVING (SeqCst), which
                // our load read.
                self.staging(slot).load(Ordering::Relaxed)
            };
            // SeqCst: a state change. The key was counted in the old table already.
            if self
                .pair(slot)
                .compare_exchange(
                    seen,
                    [with_kind(seen[0], MEMBER) | ARRIVED, word],
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(Error::Contended("hash map migration"))
    }
}
