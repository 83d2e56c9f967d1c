//! `shop-bench`: how fast the shop is against the limits of this machine.
//!
//! `shop-bench run` starts a throwaway PostgreSQL (shop-testkit), the four service binaries
//! built next to it (release, by `bench/run`), drives them with `wrk` and PostgreSQL with
//! `pgbench` — the same work, the same number of connections — and prints the ratios measured
//! in the same run, with latencies, CPU per request and each service's peak resident memory.
//! `shop-bench serve` runs the same shop until it is stopped (for `bench/fuzz`).

mod load;
mod login_flood;
mod probe;
mod procs;
mod report;
mod run;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "shop-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the benchmarks and print the table of figures.
    Run(run::RunArgs),
    /// Run the four services on a throwaway PostgreSQL until SIGINT or SIGTERM; prints their
    /// URLs as one JSON line on stdout once they answer.
    Serve(serve::ServeArgs),
    /// The middleware benchmark's server: the services' endpoint stack serving `/healthz`.
    #[command(hide = true)]
    ProbeServer(probe::ProbeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => runtime(false).and_then(|rt| rt.block_on(run::run(args))),
        Command::Serve(args) => runtime(false).and_then(|rt| rt.block_on(serve::serve(args))),
        // Like the services.
        Command::ProbeServer(args) => runtime(true).and_then(|rt| rt.block_on(probe::serve(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shop-bench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime(multi_thread: bool) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(if multi_thread {
        // The services' own runtime.
        shop_telemetry::runtime::build(shop_telemetry::runtime::default_worker_threads())?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    })
}
