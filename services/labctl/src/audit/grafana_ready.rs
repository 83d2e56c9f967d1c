//! `labctl audit grafana`: Grafana is ready for the alerting contract — it answers, reaches
//! every data source of the data sources file (its own health check of each), and has loaded
//! every rule of the rules file. Grafana provisions at start-up and data sources come up in
//! their own time, so it polls until all hold or `--wait` runs out.

use std::{process::ExitCode, time::Duration};

use super::{args::GrafanaAuditArgs, poll, verdict};
use crate::{
    cli::Targets,
    durations,
    grafana::{find_rule, Grafana},
    http,
    rules::Catalog,
};

/// The findings of one look.
pub async fn look(grafana: &Grafana, catalog: &Catalog) -> Vec<String> {
    if let Err(e) = grafana.health().await {
        return vec![http::one_line(&e)];
    }
    let mut findings = Vec::new();
    for uid in catalog.datasources.keys() {
        match grafana.datasource_health(uid).await {
            Ok(Ok(_)) => {}
            Ok(Err(problem)) => findings.push(format!("data source {uid}: {problem}")),
            Err(e) => return vec![http::one_line(&e)],
        }
    }
    match grafana.rules().await {
        Ok(rules) => {
            let missing: Vec<&str> = catalog
                .rules
                .iter()
                .filter(|r| find_rule(&rules, &r.uid, &r.title).is_none())
                .map(|r| r.uid.as_str())
                .collect();
            if !missing.is_empty() {
                findings.push(format!("rules not loaded: {}", missing.join(", ")));
            }
        }
        Err(e) => findings.push(http::one_line(&e)),
    }
    findings
}

pub async fn command(targets: &Targets, args: &GrafanaAuditArgs) -> anyhow::Result<ExitCode> {
    let wait = durations::parse("--wait", &args.wait)?;
    http::check_url("--grafana-url", &targets.grafana_url)?;
    // The profile does not matter here: only uids and titles are compared.
    let catalog = Catalog::load(
        args.rules_file.as_deref(),
        args.datasources_file.as_deref(),
        "demo",
    )?;
    let grafana = Grafana::new(
        http::client(Duration::from_secs(targets.timeout.max(1))),
        &targets.grafana_url,
        &targets.grafana_user,
        Grafana::password(targets.grafana_password_file.as_ref())?,
    );
    let findings = poll(wait, Duration::from_secs(2), || look(&grafana, &catalog)).await;
    if findings.is_empty() {
        println!(
            "Grafana at {}: {} data source(s) healthy, {} rule(s) loaded",
            grafana.base,
            catalog.datasources.len(),
            catalog.rules.len()
        );
    }
    verdict("grafana", &findings)
}
