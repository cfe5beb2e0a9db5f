//! `shmarena`: run the demo, inspect a region, benchmark across processes, remove the
//! default regions of killed programs.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod bench_map;
mod chart;
mod demo;
mod gc;
mod inspect;
mod stress;

/// Shared-memory data structures for many processes.
#[derive(Parser)]
#[command(name = "shmarena", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Python's `Value`/`Array` example with real child processes.
    Demo(demo::Args),
    /// Print a region's header, arena, participants and catalog.
    Inspect(inspect::Args),
    /// Multi-process throughput benchmark (1, 2, 4, ... processes).
    Bench(bench::Args),
    /// Worker processes over every structure, killed and frozen at random; then checks.
    Stress(stress::Args),
    /// Remove the default regions of killed programs (no live process attached).
    Gc(gc::Args),
    /// Internal: a child process of `demo`.
    #[command(hide = true)]
    DemoChild(demo::ChildArgs),
    /// Internal: a child process of `bench`.
    #[command(hide = true)]
    BenchWorker(bench::WorkerArgs),
    /// Internal: a child process of `stress`.
    #[command(hide = true)]
    StressWorker(stress::WorkerArgs),
    /// Internal: holds a region open until killed (for gc's tests).
    #[command(hide = true)]
    GcHold(gc::HoldArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::DemoChild(args) => demo::child(&args),
        Command::BenchWorker(args) => bench::worker(&args),
        Command::Stress(args) => stress::run(&args),
        Command::StressWorker(args) => stress::worker(&args),
        Command::Gc(args) => gc::run(&args),
        Command::GcHold(args) => gc::hold(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("shmarena: {error}");
            ExitCode::FAILURE
        }
    }
}
