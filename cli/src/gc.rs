//! `shmarena gc`: removes the default regions of programs that were killed (see
//! `shmarena::engine::gc`), and says why it kept the others.

use std::path::PathBuf;
use std::process::ExitCode;

use shmarena::engine::gc::{self, Action};

/// Arguments of `shmarena gc`.
#[derive(clap::Args)]
pub struct Args {
    /// Only list what would be removed, and why the rest is kept.
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// The directory to sweep (default: $SHMARENA_REGION_DIR, else /dev/shm, else the
    /// temporary directory: where the Python package puts default regions).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Sweeps and prints one line per default region (or staging file) found.
pub fn run(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let dir = args.dir.clone().unwrap_or_else(gc::default_region_dir);
    let verdicts = gc::collect(&dir, args.dry_run)?;
    let mut removed = 0;
    for verdict in &verdicts {
        let what = match verdict.action {
            Action::Removed => {
                removed += 1;
                "removed"
            }
            Action::WouldRemove => {
                removed += 1;
                "would remove"
            }
            Action::Kept => "kept",
        };
        println!("{what} {}: {}", verdict.path.display(), verdict.reason);
    }
    let kept = verdicts.len() - removed;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "{}: {verb} {removed}, kept {kept} (default regions and staging files only)",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Arguments of the hidden `shmarena gc-hold` (for the tests: a process that creates or
/// opens a region and keeps it open until it is killed).
#[derive(clap::Args)]
pub struct HoldArgs {
    /// Open this region.
    #[arg(long, conflicts_with = "create_in")]
    open: Option<PathBuf>,
    /// Create a default region in this directory, named as the Python package names one
    /// (`shmarena-py-<pid>-<hex>`).
    #[arg(long)]
    create_in: Option<PathBuf>,
    /// With `--create-in`: without the collectable mark (as a region a program names).
    #[arg(long)]
    not_collectable: bool,
}

/// Creates or opens the region, prints `ready <path>`, then sleeps until killed.
pub fn hold(args: &HoldArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let region = match (&args.open, &args.create_in) {
        (Some(path), None) => shmarena::Region::open(path)?,
        (None, Some(dir)) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .subsec_nanos();
            let name = format!(
                "{}{}-{nanos:08x}",
                gc::DEFAULT_REGION_PREFIX,
                std::process::id()
            );
            let options = shmarena::RegionOptions {
                collectable: !args.not_collectable,
                ..shmarena::RegionOptions::default()
            };
            shmarena::Region::create_with(dir.join(name), 4 << 20, &options)?
        }
        _ => return Err("give --open PATH or --create-in DIR".into()),
    };
    println!("ready {}", region.path().display());
    std::io::Write::flush(&mut std::io::stdout())?;
    loop {
        std::thread::sleep(std::time::Duration::from_hours(1));
    }
}
