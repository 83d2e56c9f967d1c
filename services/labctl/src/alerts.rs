//! `labctl alerts`: every rule with its state, health and active instances, from Grafana's
//! rules endpoint, and how many of its alerts the Alertmanager holds.

use std::{process::ExitCode, time::Duration};

use serde::Serialize;

use crate::{
    cli::{AlertsArgs, Targets},
    grafana::{instance_labels, AmAlert, Grafana, RuleSnapshot},
    http,
    table::Table,
};

#[derive(Debug, Clone, Serialize)]
pub struct AlertsReport {
    pub rules: Vec<RuleSnapshot>,
    pub alertmanager: Vec<AmAlert>,
}

pub fn grafana_from(targets: &Targets) -> anyhow::Result<Grafana> {
    http::check_url("--grafana-url", &targets.grafana_url)?;
    let client = http::client(Duration::from_secs(targets.timeout.max(1)));
    Ok(Grafana::new(
        client,
        &targets.grafana_url,
        &targets.grafana_user,
        Grafana::password(targets.grafana_password_file.as_ref())?,
    ))
}

/// The instances column: `2 Alerting: service=api; service=frontend`.
pub fn instances_cell(rule: &RuleSnapshot) -> String {
    let active = rule.active_instances();
    if active.is_empty() {
        return format!("{} Normal", rule.instances.len());
    }
    let mut by_state: Vec<(String, Vec<String>)> = Vec::new();
    for i in active {
        let state = match &i.reason {
            Some(r) => format!("{:?} ({r})", i.state),
            None => format!("{:?}", i.state),
        };
        let labels = instance_labels(&i.labels);
        match by_state.iter_mut().find(|(s, _)| *s == state) {
            Some((_, l)) => l.push(labels),
            None => by_state.push((state, vec![labels])),
        }
    }
    by_state
        .into_iter()
        .map(|(s, l)| format!("{} {s}: {}", l.len(), l.join("; ")))
        .collect::<Vec<_>>()
        .join(" | ")
}

pub fn render(report: &AlertsReport) -> String {
    let mut table = Table::new(&[
        "RULE",
        "TITLE",
        "SCENARIO",
        "STATE",
        "HEALTH",
        "AM",
        "INSTANCES",
    ]);
    for r in &report.rules {
        let am = report
            .alertmanager
            .iter()
            .filter(|a| a.alertname() == r.title && a.is_active())
            .count();
        let mut health = r.health.clone();
        if let Some(err) = &r.last_error {
            health = format!("{health} ({})", http::excerpt(err));
        }
        table.row(vec![
            r.uid.clone().unwrap_or_else(|| "-".into()),
            r.title.clone(),
            r.labels
                .get("scenario")
                .cloned()
                .unwrap_or_else(|| "-".into()),
            r.state.as_str().to_owned(),
            health,
            am.to_string(),
            instances_cell(r),
        ]);
    }
    let mut out = table.render();
    let firing = report.rules.iter().filter(|r| r.is_firing()).count();
    let pending = report.rules.iter().filter(|r| r.is_pending()).count();
    let unhealthy = report
        .rules
        .iter()
        .filter(|r| r.health_problem().is_some())
        .count();
    let active = report.alertmanager.iter().filter(|a| a.is_active()).count();
    out.push_str(&format!(
        "{} rule(s): {firing} firing, {pending} pending, {unhealthy} unhealthy; Alertmanager: {active} active alert(s)\n",
        report.rules.len()
    ));
    for a in &report.alertmanager {
        if let Some((kind, rule)) = a.datasource_problem() {
            out.push_str(&format!("{kind} for rule {rule}\n"));
        }
    }
    out
}

pub async fn command(targets: &Targets, args: &AlertsArgs) -> anyhow::Result<ExitCode> {
    let grafana = grafana_from(targets)?;
    grafana.health().await?;
    let rules = grafana.rules().await?;
    let alertmanager = grafana.alertmanager_alerts().await?;
    let report = AlertsReport {
        rules,
        alertmanager,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}
