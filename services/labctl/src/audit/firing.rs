//! `labctl audit firing RULE...`: the named rules are all firing in Grafana within
//! `--within` (polling its rules API); the findings name each rule's last state and health.

use std::{process::ExitCode, time::Duration};

use super::{args::FiringArgs, poll, verdict};
use crate::{
    cli::Targets,
    durations,
    grafana::{Grafana, RuleSnapshot},
    http,
};

/// Findings: each named rule that is not firing, with its state and health.
pub fn judge(rules: &[RuleSnapshot], uids: &[String]) -> Vec<String> {
    uids.iter()
        .filter_map(
            |uid| match rules.iter().find(|r| r.uid.as_deref() == Some(uid)) {
                None => Some(format!("{uid}: not loaded in Grafana")),
                Some(r) if r.is_firing() => None,
                Some(r) => Some(format!(
                    "{uid}: {}{}",
                    r.state.as_str(),
                    r.health_problem()
                        .map(|p| format!(" ({p})"))
                        .unwrap_or_default()
                )),
            },
        )
        .collect()
}

pub async fn command(targets: &Targets, args: &FiringArgs) -> anyhow::Result<ExitCode> {
    let within = durations::parse("--within", &args.within)?;
    http::check_url("--grafana-url", &targets.grafana_url)?;
    let grafana = Grafana::new(
        http::client(Duration::from_secs(targets.timeout.max(1))),
        &targets.grafana_url,
        &targets.grafana_user,
        Grafana::password(targets.grafana_password_file.as_ref())?,
    );
    let findings = poll(within, Duration::from_secs(2), || async {
        match grafana.rules().await {
            Ok(rules) => judge(&rules, &args.rules),
            Err(e) => vec![http::one_line(&e)],
        }
    })
    .await;
    if findings.is_empty() {
        for uid in &args.rules {
            println!("{uid}: firing");
        }
    }
    verdict("firing", &findings)
}
