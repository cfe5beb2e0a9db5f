//! `shmarena inspect`: the header, arena, participants and catalog of a region.

use std::process::ExitCode;

use shmarena::engine::layout::LAYOUT_VERSION;
use shmarena::engine::{Memory, Severity};
use shmarena::{EntryInfo, ObjectKind, OwnerId, Region};

/// Arguments of `shmarena inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// Region name (in /dev/shm) or path.
    region: String,
    /// Also check every invariant (header, arena, catalog, each structure) while other
    /// processes keep working; exit non-zero if anything is wrong.
    #[arg(long)]
    verify: bool,
    /// Open the region even if another user can write it (it belongs to another user, or
    /// its group or others may write it): root looking at a user's region, say. Such a
    /// user can change what is shown, or truncate the file and crash this inspect.
    #[arg(long)]
    allow_shared: bool,
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// What the shared words of an object say, read with the layout constants the structures
/// themselves use (a snapshot; other processes keep working).
fn details(region: &Region, entry: &EntryInfo) -> String {
    // Relaxed loads throughout: a snapshot for a person to read.
    let word = |offset: u64| {
        region
            .memory()
            .word(entry.offset + offset)
            .map(|w| w.load(std::sync::atomic::Ordering::Relaxed))
    };
    if !entry.ready {
        return String::new();
    }
    let result = match entry.descriptor.kind {
        ObjectKind::Queue => shmarena::ByteQueue::open(region, &entry.name).map(|queue| {
            format!(
                "len {}, lost with dead consumers {}, skipped for dead producers {}",
                queue.len(),
                queue.lost(),
                queue.skipped()
            )
        }),
        ObjectKind::UnboundedQueue => shmarena::ByteUnboundedQueue::open(region, &entry.name)
            .and_then(|queue| {
                Ok(format!(
                    "len {}, lost with dead consumers {}, skipped for dead producers {}",
                    queue.len()?,
                    queue.lost(),
                    queue.skipped()
                ))
            }),
        ObjectKind::List => shmarena::ByteList::open(region, &entry.name).map(|list| {
            format!(
                "len {}, room for {} (grows from {})",
                list.len(),
                list.capacity(),
                list.initial_capacity()
            )
        }),
        ObjectKind::HashMap | ObjectKind::HashSet => shmarena::hash_map::describe(region, entry),
        ObjectKind::Mutex => {
            word(0).map(
                |lock| match OwnerId::from_bits((lock as u32) & !(1 << 31)) {
                    None => "unlocked".to_owned(),
                    Some(owner) if region.is_alive(owner) => {
                        format!("locked by participant {owner}")
                    }
                    Some(owner) => {
                        format!("locked by DEAD participant {owner} (next locker takes over)")
                    }
                },
            )
        }
        _ => Ok(String::new()),
    };
    result.unwrap_or_else(|error| format!("unreadable: {error}"))
}

/// Prints the report.
pub fn run(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let options = shmarena::RegionOptions {
        allow_shared: args.allow_shared,
        ..shmarena::RegionOptions::default()
    };
    let region = Region::open_with(&args.region, &options)?;
    let header = region.header();
    println!("region {}", region.path().display());
    println!(
        "  size {} ({} bytes), layout version {LAYOUT_VERSION}, creator pid {}, hash seed {:#018x}",
        bytes(header.region_size),
        header.region_size,
        region.creator_pid(),
        header.hash_seed
    );
    println!(
        "  participants at {} ({} slots, {} ever used), catalog at {} ({} entries), arena at {}..{}",
        header.participants_offset,
        header.participant_capacity,
        region.participant_slots_used()?,
        header.catalog_offset,
        header.catalog_capacity,
        header.arena_offset,
        header.arena_end
    );

    let stats = region.arena_stats()?;
    println!("\narena");
    println!(
        "  capacity {}, reserved by the bump pointer {}, in use {}",
        bytes(stats.capacity),
        bytes(stats.reserved),
        bytes(stats.used)
    );
    for (size, count) in &stats.free_blocks {
        println!("  free: {count} blocks of {}", bytes(*size));
    }

    if region.is_waiting_for_slot() {
        println!("\nparticipants (this inspect waits for a slot: all are held or retired)");
    } else {
        println!(
            "\nparticipants (this inspect is slot {})",
            region.participant_id().slot()
        );
    }
    println!("  grace epoch {}", region.grace_epoch()?);
    println!(
        "  {:>5} {:>10} {:>8} {:>8} {:>6} {:>5} {:>8}",
        "slot", "generation", "pid", "state", "alive", "pins", "retired"
    );
    for p in region.participants()? {
        println!(
            "  {:>5} {:>10} {:>8} {:>8} {:>6} {:>5} {:>8}",
            p.slot,
            p.generation,
            p.pid,
            if p.active { "active" } else { "free" },
            match (p.active, p.alive) {
                (true, true) => "yes",
                (true, false) => "dead",
                (false, _) => "-",
            },
            p.pins,
            p.retired
        );
    }

    print_catalog(&region)?;
    if args.verify {
        return Ok(print_verify(&region));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the catalog as a table, with what each object's words say.
fn print_catalog(region: &Region) -> Result<(), Box<dyn std::error::Error>> {
    let header = region.header();
    let objects = region.objects()?;
    println!(
        "\ncatalog ({} of {} entries used)",
        objects.len(),
        header.catalog_capacity
    );
    println!(
        "  {:<24} {:<32} {:>12} {:>10} {:>12}  details",
        "name", "type", "offset", "size", "state"
    );
    for entry in objects {
        let state = if entry.ready {
            "ready".to_owned()
        } else {
            format!(
                "building by {}",
                entry
                    .owner
                    .map_or_else(|| "nobody".to_owned(), |o| o.to_string())
            )
        };
        println!(
            "  {:<24} {:<32} {:>12} {:>10} {:>12}  {}",
            entry.name,
            entry.descriptor.to_string(),
            entry.offset,
            bytes(entry.size),
            state,
            details(region, &entry)
        );
    }
    Ok(())
}

/// Runs the full consistency check and prints its findings; failure if any is an error.
fn print_verify(region: &Region) -> ExitCode {
    let findings = shmarena::check::check_region(region);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    println!(
        "\nverify: {errors} errors, {} notes",
        findings.len() - errors
    );
    for finding in &findings {
        println!("  {finding}");
    }
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn inspect_refuses_a_region_others_can_write_unless_allow_shared() {
        let path = std::env::temp_dir().join(format!("shmarena-inspect-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        drop(Region::create(&path, 1 << 20).unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut args = Args {
            region: path.to_string_lossy().into_owned(),
            verify: false,
            allow_shared: false,
        };
        let refused = run(&args).map(|_| ()).map_err(|e| e.to_string());
        args.allow_shared = true;
        let opened = run(&args).map(|_| ()).map_err(|e| e.to_string());
        std::fs::remove_file(&path).unwrap();
        assert!(
            refused.as_ref().is_err_and(|e| e.contains("allow_shared")),
            "{refused:?}"
        );
        opened.unwrap();
    }
}
