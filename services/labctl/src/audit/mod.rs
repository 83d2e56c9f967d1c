//! `labctl audit`: the checks the NixOS VM tests make, as commands tested here, so that a VM
//! test script is a list of single calls. Each audit prints what it looked at, one line per
//! item, and fails (exit 1, `labctl: error: audit NAME: ...`) on any finding or when it cannot
//! look (a search that reaches nothing is a failure, never a pass).
//!
//! | audit | module |
//! |---|---|
//! | `store-secrets` | [`store_secrets`] |
//! | `exposure` | [`exposure`] |
//! | `listeners` | [`listeners`] |
//! | `db-role` | [`db_role`] |
//! | `fault-api` | [`fault_api`] |
//! | `log-lines` | [`log_lines`] |
//! | `grafana` | [`grafana_ready`] |
//! | `scrape` | [`scrape`] |
//! | `firing` | [`firing`] |
//! | `memory` | [`memory`] |

pub mod args;
pub mod db_role;
pub mod exposure;
pub mod fault_api;
pub mod firing;
pub mod grafana_ready;
pub mod listeners;
pub mod log_lines;
pub mod memory;
pub mod scrape;
pub mod store_secrets;

use std::{future::Future, process::ExitCode, time::Duration};

use anyhow::anyhow;
use tokio::time::Instant;

use self::args::{AuditArgs, AuditCheck};
use crate::cli::Targets;

pub async fn command(targets: &Targets, args: &AuditArgs) -> anyhow::Result<ExitCode> {
    match &args.check {
        AuditCheck::StoreSecrets(a) => store_secrets::command(a).await,
        AuditCheck::Exposure(a) => exposure::command(a).await,
        AuditCheck::Listeners(a) => listeners::command(a),
        AuditCheck::DbRole(a) => db_role::command(targets, a).await,
        AuditCheck::FaultApi(a) => fault_api::command(targets, a).await,
        AuditCheck::LogLines(a) => log_lines::command(targets, a).await,
        AuditCheck::Grafana(a) => grafana_ready::command(targets, a).await,
        AuditCheck::Scrape(a) => scrape::command(targets, a).await,
        AuditCheck::Firing(a) => firing::command(targets, a).await,
        AuditCheck::Memory(a) => memory::command(a),
    }
}

/// The verdict of an audit: success, or an error that names the audit and the findings.
pub fn verdict(audit: &str, findings: &[String]) -> anyhow::Result<ExitCode> {
    if findings.is_empty() {
        println!("audit {audit}: ok");
        return Ok(ExitCode::SUCCESS);
    }
    for finding in findings {
        println!("FINDING: {finding}");
    }
    Err(anyhow!(
        "audit {audit}: {} finding(s): {}",
        findings.len(),
        crate::http::excerpt(&findings.join("; "))
    ))
}

/// Calls `check` every `every` until it reports no findings or `wait` runs out; returns the
/// last findings (empty when it passed).
pub async fn poll<F, Fut>(wait: Duration, every: Duration, mut check: F) -> Vec<String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let deadline = Instant::now() + wait;
    loop {
        let findings = check().await;
        if findings.is_empty() || Instant::now() + every > deadline {
            return findings;
        }
        tokio::time::sleep(every).await;
    }
}
