//! `labctl`, the alertlab command-line tool.
//!
//! - [`traffic`]: healthy load (weighted user journeys) with a control endpoint.
//! - [`scenario`]: the failure scenarios, each reverting by itself.
//! - [`check`]: every rule's queries and expressions evaluated on the data sources directly.
//! - [`alerts`] and [`verify`]: the rules' state from Grafana, and the end-to-end contract.
//! - [`sink`]: the webhook sink Grafana notifies.
//! - [`audit`]: the checks the VM tests make (secrets, exposure, listeners, access, delivery).
//! - [`guard`]: what labctl's control endpoints check before answering.

pub mod alerts;
pub mod audit;
pub mod check;
pub mod cli;
pub mod durations;
pub mod grafana;
pub mod guard;
pub mod http;
pub mod rules;
pub mod scenario;
pub mod signals;
pub mod sink;
pub mod table;
pub mod traffic;
pub mod verify;

use std::process::ExitCode;

use cli::{Cli, Command};

/// Runs one command; an error is for the caller to print as one line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let targets = &cli.targets;
    match &cli.command {
        Command::Traffic(args) => traffic::command(targets, args).await,
        Command::Scenario(args) => scenario::command(targets, args).await,
        Command::Check(args) => check::run(targets, args).await,
        Command::Alerts(args) => alerts::command(targets, args).await,
        Command::Verify(args) => verify::command(targets, args).await,
        Command::Sink(args) => sink::command(args).await,
        Command::Audit(args) => audit::command(targets, args).await,
    }
}
