//! The sweep of retired participant slots: the structures' half of "an owner id never
//! names a live process once its owner died" (the engine's half, and why, is in
//! [`shmarena_engine::liveness`]).
//!
//! A participant slot whose generations are used up is retired by the attach that finds
//! it so, and takes no new owner until a sweep has rewritten every owner field that names
//! any of its (dead) owners to [`OwnerId::DEAD`](shmarena_engine::OwnerId::DEAD): the
//! catalog's (the engine does those) and every structure's, listed here by kind. Each
//! rewrite is one compare-exchange of the field as the structure's own recovery would
//! find it, so what the dead owner held is recovered exactly as before: a lock is taken
//! over with `OwnerDied`, a permit given back, a claimed queue slot skipped, a pushed list
//! index made a hole, a map slot freed or settled. Kinds without owner fields (values,
//! arrays, counters, condition variables, events) have nothing to sweep.
//!
//! Every object handle's constructor runs pending sweeps first (a few loads when no slot
//! waits), so a retired slot returns to use as soon as any process opens any object. That
//! is also how a process gets in when every participant slot is retired (or held):
//! [`Region::open`] then returns a handle that waits for a slot, and its first object open
//! sweeps a retired slot and takes it (or takes one freed meanwhile). An object open that
//! finds no slot for it fails with
//! [`Error::ParticipantsFull`](shmarena_engine::Error::ParticipantsFull): creating an
//! object records its creator's owner id, and most structures record their users'.

use shmarena_engine::{ObjectKind, Region, Result, TypeDescriptor};

/// Sweeps the region's retired participant slots, if any wait, and gives a handle that
/// waits for a participant slot (see [`Region::open`]) one if it can.
///
/// # Errors
/// [`Error::Contended`](shmarena_engine::Error::Contended) for an owner field that keeps
/// changing; catalog and object errors of a corrupted region. The slots stay retired (a
/// later sweep tries again).
pub fn sweep_if_needed(region: &Region) -> Result<()> {
    if region.has_retired_participants() || region.is_waiting_for_slot() {
        region.sweep_retired_participants(|slot| retire_owner_slot(region, slot))?;
    }
    Ok(())
}

/// The structures' purge of participant slot `slot`, what [`sweep_if_needed`] hands
/// [`Region::sweep_retired_participants`]: rewrites every owner field naming the slot in
/// every ready object to [`OwnerId::DEAD`](shmarena_engine::OwnerId::DEAD). Only for a
/// slot that is retired and whose sweep locks the caller holds (that is, from inside a
/// purge callback); anywhere else it would rewrite a live owner's fields.
///
/// # Errors
/// As [`sweep_if_needed`].
pub fn retire_owner_slot(region: &Region, slot: u32) -> Result<()> {
    for entry in region.objects()?.iter().filter(|entry| entry.ready) {
        let object = || region.open_object(&entry.name, &entry.descriptor);
        match entry.descriptor.kind {
            ObjectKind::Mutex => crate::mutex::retire_owner_slot(&object()?, slot)?,
            ObjectKind::Semaphore => crate::semaphore::retire_owner_slot(&object()?, slot)?,
            ObjectKind::Event => crate::event::Event::retire_owner_slot(&object()?, slot)?,
            ObjectKind::Barrier => crate::barrier::retire_owner_slot(&object()?, slot)?,
            ObjectKind::Queue => crate::queue::retire_owner_slot(&object()?, slot)?,
            ObjectKind::UnboundedQueue => {
                crate::unbounded_queue::retire_owner_slot(&object()?, slot)?;
            }
            ObjectKind::List => crate::list::retire_owner_slot(&object()?, slot)?,
            ObjectKind::HashMap | ObjectKind::HashSet => {
                crate::hash_map::retire_owner_slot(region, entry, slot)?;
            }
            // Values, arrays, counters, condition variables and events hold no owners.
            _ => {}
        }
    }
    Ok(())
}

/// Runs pending sweeps before an object is opened, and gives a handle that waits for a
/// participant slot (see [`Region::open`]) one: a slot free by now, or one it sweeps.
/// A sweep that fails (a corrupted object somewhere in the region) leaves its slot retired
/// and the open goes on: one bad object must not keep every process from opening the
/// others. After a failure this handle (and its clones) tries again at most once a second;
/// other handles, of this region or others, are not held back.
///
/// # Errors
/// [`Error::ParticipantsFull`](shmarena_engine::Error::ParticipantsFull) when the handle
/// still waits for a slot (creating an object records its creator's owner id, and most
/// structures record their users').
fn sweep_before_open(region: &Region) -> Result<()> {
    if (region.has_retired_participants() || region.is_waiting_for_slot())
        && !region.sweep_failed_within(std::time::Duration::from_secs(1))
    {
        // A failure is noted in the handle, for the rate limit.
        let _ = region.sweep_retired_participants(|slot| retire_owner_slot(region, slot));
    }
    if region.is_waiting_for_slot() {
        return Err(shmarena_engine::Error::ParticipantsFull {
            capacity: region.header().participant_capacity,
        });
    }
    Ok(())
}

/// [`Region::get_or_create_object`] after a sweep of retired participant slots.
pub(crate) fn get_or_create_object(
    region: &Region,
    name: &str,
    descriptor: &TypeDescriptor,
    body_size: u64,
    init: impl Fn(&shmarena_engine::Object) -> Result<()>,
) -> Result<(shmarena_engine::Object, shmarena_engine::Outcome)> {
    sweep_before_open(region)?;
    region.get_or_create_object(name, descriptor, body_size, init)
}

/// [`Region::open_object`] after a sweep of retired participant slots.
pub(crate) fn open_object(
    region: &Region,
    name: &str,
    expected: &TypeDescriptor,
) -> Result<shmarena_engine::Object> {
    sweep_before_open(region)?;
    region.open_object(name, expected)
}
