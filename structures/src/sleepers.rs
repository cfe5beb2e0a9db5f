//! Who sleeps on a futex word, kept so that a sleeper's death does not leave its wakers
//! paying for a wake-up forever.
//!
//! ```text
//! count (u32)              sleepers announced: the hint a waker reads (one load)
//! registry (n x u64):
//!   word 0                 wake-ups that woke nobody (a counter; see `missed_wake`)
//!   words 1..n             two entries each (low, high half): the owner id of a sleeper,
//!                          0 for none
//! ```
//!
//! A waker (a push, a release, a `set`) reads `count` after its publication and wakes the
//! futex only when it is nonzero; a sleeper raises it, then passes the heavy barrier, then
//! looks once more before it sleeps (the Dekker pairing of `shmarena_engine::barrier`).
//! Nothing here changes that pairing: `count` is raised before the barrier and lowered
//! after the wait, as before.
//!
//! What the registry adds: a sleeper also writes its owner id into a free entry, and
//! clears it when it leaves. A process killed while it sleeps leaves its entry, and its
//! part of `count`, behind: every waker would then make a system call (and a shared
//! read-modify-write) on every operation, for good. A wake-up that woke nobody while the
//! count said someone sleeps is the sign: every [`REAP_EVERY`]th such waker looks at the
//! registry, and for each entry whose owner is dead (asking the kernel, as lock recovery
//! does) clears the entry and lowers the count for it. A live sleeper is never judged
//! dead, so its entry and count stay until it leaves (it never lowers the count twice: a
//! leave whose entry no longer names it finds it lowered already). Entries naming a
//! participant slot that the participant sweep retires are rewritten to the dead owner
//! ([`Sleepers::retire_owner_slot`]), like every owner field.
//!
//! A process killed between raising the count and writing its entry (or between clearing
//! it and lowering the count: a few instructions, once per sleep), or one that found every
//! entry taken, leaves a count nobody can attribute: that one stays, costing wakers a
//! system call per operation; the count is a hint, so nothing goes wrong but speed.

use shmarena_engine::sync::{AtomicU32, AtomicU64, Ordering};
use shmarena_engine::{Liveness, OwnerId};

/// Of the wake-ups that woke nobody, every `REAP_EVERY`th looks for dead sleepers (a live
/// sleeper about to sleep, or just woken, also makes a wake-up wake nobody: the reap's
/// system calls are spread over that many of them).
pub const REAP_EVERY: u64 = 64;

/// The sleeper count of one futex word and its registry (module docs). An empty registry
/// records no one (the count alone, as where there is no room for one).
#[derive(Clone, Copy, Debug)]
pub struct Sleepers<'a> {
    /// Sleepers announced.
    pub count: &'a AtomicU32,
    /// Word 0 the missed wake-ups, then two entries a word.
    pub registry: &'a [AtomicU64],
}

/// A sleeper's announcement: where it wrote its owner id, if anywhere. Given back to
/// [`Sleepers::leave`].
#[derive(Clone, Copy, Debug)]
#[must_use = "an announced sleeper must leave"]
pub struct Announced {
    entry: Option<(usize, u32)>,
}

impl Sleepers<'_> {
    /// Whether anyone may sleep: the waker's check (one load; its ordering comes from
    /// the barriers, see the module docs).
    #[inline]
    pub fn any(&self) -> bool {
        // Relaxed: ordered by the light and heavy barriers (see `shmarena_engine::barrier`).
        self.count.load(Ordering::Relaxed) != 0
    }

    /// Announces `me` as a sleeper: the count first (the caller then passes the heavy
    /// barrier), then an entry.
    pub fn enter(&self, me: OwnerId) -> Announced {
        // Relaxed: ordered by the caller's heavy barrier (see the module docs).
        self.count.fetch_add(1, Ordering::Relaxed);
        let bits = u64::from(me.bits());
        for (index, word) in self.registry.iter().enumerate().skip(1) {
            // Relaxed: an entry is only read by reapers, which judge its owner's liveness
            // from the participant table, not from anything the sleeper wrote.
            let mut seen = word.load(Ordering::Relaxed);
            loop {
                let shift = if seen as u32 == 0 {
                    0
                } else if seen >> 32 == 0 {
                    32
                } else {
                    break; // both entries taken
                };
                // Relaxed: as above.
                match word.compare_exchange_weak(
                    seen,
                    seen | bits << shift,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        return Announced {
                            entry: Some((index, shift)),
                        }
                    }
                    Err(now) => seen = now,
                }
            }
        }
        Announced { entry: None }
    }

    /// Ends the announcement `announced` of `me`: its entry cleared, then the count
    /// lowered (unless a reaper cleared the entry, and lowered the count, first).
    pub fn leave(&self, me: OwnerId, announced: Announced) {
        if let Some((index, shift)) = announced.entry {
            let cleared = self
                .registry
                .get(index)
                .is_some_and(|word| clear_entry(word, shift, me.bits()));
            if !cleared {
                return; // reaped: the reaper lowered the count
            }
        }
        lower(self.count);
    }

    /// Called by a waker whose wake-up woke nobody while the count was nonzero: every
    /// [`REAP_EVERY`]th call reaps (see [`Self::reap`]).
    #[cold]
    pub fn missed_wake(&self, liveness: &impl Liveness) {
        let Some(missed) = self.registry.first() else {
            return;
        };
        // Relaxed: a counter that only spaces the reaps out.
        if missed.fetch_add(1, Ordering::Relaxed) % REAP_EVERY == REAP_EVERY - 1 {
            self.reap(liveness);
        }
    }

    /// Clears every entry whose owner is dead and lowers the count for each; how many.
    pub fn reap(&self, liveness: &impl Liveness) -> u32 {
        let mut reaped = 0;
        for word in self.registry.iter().skip(1) {
            for shift in [0, 32] {
                // Relaxed: the entry is judged by its owner's liveness alone.
                let bits = (word.load(Ordering::Relaxed) >> shift) as u32;
                if bits == 0 {
                    continue;
                }
                let dead = OwnerId::from_bits(bits).is_none_or(|owner| !liveness.is_alive(owner));
                if dead && clear_entry(word, shift, bits) {
                    lower(self.count);
                    reaped += 1;
                }
            }
        }
        reaped
    }

    /// Rewrites entries naming an owner of participant `slot` (retired by the sweep) to
    /// the dead owner, which the next reap clears.
    ///
    /// # Errors
    /// As [`shmarena_engine::liveness::retire_owner_field`].
    pub fn retire_owner_slot(&self, slot: u32) -> shmarena_engine::Result<()> {
        for word in self.registry.iter().skip(1) {
            for shift in [0, 32] {
                shmarena_engine::liveness::retire_owner_field(word, shift, slot, |_| true)?;
            }
        }
        Ok(())
    }
}

/// Clears the entry at `shift` of `word` if it holds `bits`; whether it did.
fn clear_entry(word: &AtomicU64, shift: u32, bits: u32) -> bool {
    // Relaxed: as in `enter`.
    word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |seen| {
        ((seen >> shift) as u32 == bits).then_some(seen & !(0xffff_ffff << shift))
    })
    .is_ok()
}

/// Lowers a sleeper count by one, never below zero (a count read from the mapping may be
/// anything).
fn lower(count: &AtomicU32) {
    // Relaxed: only a hint for wakers (ordered by the barriers where it matters).
    let _ = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
}
