//! The consistency check of every object in a region (`shmarena inspect --verify`): the
//! engine's check of header, arena and catalog, plus each structure's own invariants,
//! read from the same layout its module writes. Read-only; other processes keep working.

use shmarena_engine::sync::Ordering;
use shmarena_engine::{EntryInfo, Error, Finding, Memory, ObjectKind, OwnerId, Region, Result};

/// Everything [`Region::verify`] finds, plus the findings of every structure.
pub fn check_region(region: &Region) -> Vec<Finding> {
    let mut findings = region.verify();
    match region.objects() {
        Ok(entries) => {
            for entry in entries.iter().filter(|entry| entry.ready) {
                if let Err(error) = check_object(region, entry, &mut findings) {
                    findings.push(Finding::error(
                        format!("object {:?}", entry.name),
                        error.to_string(),
                    ));
                }
            }
        }
        Err(error) => findings.push(Finding::error("catalog", error.to_string())),
    }
    findings
}

fn check_object(region: &Region, entry: &EntryInfo, findings: &mut Vec<Finding>) -> Result<()> {
    // Relaxed loads throughout: a snapshot.
    // The entry's offset comes from the mapping and can be anything (this check also reads
    // entries whose bodies the engine found outside the arena): a sum past u64::MAX is a
    // corruption error, not an overflow.
    let word = |offset: u64| {
        let at = entry.offset.checked_add(offset).ok_or_else(|| {
            Error::corrupt(
                "object body",
                format!("offset {} + {offset} overflows", entry.offset),
            )
        })?;
        region.memory().word(at).map(|w| w.load(Ordering::Relaxed))
    };
    let place = format!("{:?} {:?}", entry.descriptor.kind, entry.name);
    match entry.descriptor.kind {
        ObjectKind::Queue => crate::queue::check(region, entry, findings)?,
        ObjectKind::UnboundedQueue => crate::unbounded_queue::check(region, entry, findings)?,
        ObjectKind::List => crate::list::check(region, entry, findings)?,
        ObjectKind::HashMap | ObjectKind::HashSet => {
            crate::hash_map::check(region, entry, findings)?;
        }
        ObjectKind::Mutex => {
            let lock = word(0)? as u32 & !(1 << 31);
            if let Some(owner) = OwnerId::from_bits(lock) {
                if !region.is_alive(owner) {
                    findings.push(Finding::note(
                        place,
                        format!("held by dead participant {owner}: the next locker takes it over"),
                    ));
                }
            } else if lock != 0 {
                findings.push(Finding::error(
                    place,
                    format!("lock word {lock:#x} names no owner"),
                ));
            }
        }
        ObjectKind::Semaphore => {
            let capacity = entry.descriptor.capacity;
            let mut dead = 0;
            for token in 0..capacity {
                let offset = 64 + 4 * token;
                let value = (word(offset & !7)? >> (8 * (offset & 7))) as u32;
                match value {
                    crate::semaphore::FREE | crate::semaphore::ABSENT => {}
                    bits => match OwnerId::from_bits(bits) {
                        Some(owner) if !region.is_alive(owner) => dead += 1,
                        Some(_) => {}
                        None => findings.push(Finding::error(
                            &place,
                            format!("token {token} holds {bits:#x}"),
                        )),
                    },
                }
            }
            if dead != 0 {
                findings.push(Finding::note(
                    place,
                    format!("{dead} permits held by dead processes (returned at the next wait)"),
                ));
            }
        }
        ObjectKind::Barrier => {
            let state = word(0)? as u32;
            let arrived = (state >> 16) & 0x7fff;
            // `arrived == parties` while the last arrival runs an action.
            if u64::from(arrived) > entry.descriptor.capacity {
                findings.push(Finding::error(
                    place,
                    format!("{arrived} arrived of {} parties", entry.descriptor.capacity),
                ));
            } else if state >> 31 != 0 {
                findings.push(Finding::note(place, "broken (reset it to use it again)"));
            }
        }
        ObjectKind::Value if matches!(entry.descriptor.elem_code, b'?' | b'u') => {
            let bits = word(0)?;
            let valid = match entry.descriptor.elem_code {
                b'?' => bits as u8 <= 1,
                _ => char::from_u32(bits as u32).is_some(),
            };
            if !valid {
                findings.push(Finding::error(
                    place,
                    format!("holds bits {bits:#x}, no valid value"),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}
