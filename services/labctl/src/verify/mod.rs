//! `labctl verify`: the alerting contract, end to end against Grafana.
//!
//! 1. Preflight: Grafana answers and takes the credentials, every rule of the catalog is
//!    loaded, the webhook sink and Mailpit answer, `labctl traffic` runs (a pause left over is
//!    lifted).
//! 2. Baseline: every rule evaluated since verify started, health ok, none pending or firing.
//! 3. Phases, each a set of scenarios that do not interfere, run concurrently:
//!    phase 1 error-burst, latency-spike, payment-outage, stock-depletion, brute-force;
//!    phase 2 service-down, traffic-stop, credential-stuffing (apart from brute-force, whose
//!    failed logins would blur which login rule answered which attack). While a phase runs, every rule of its scenarios
//!    must fire within its deadline and its notification reach the webhook sink and Mailpit;
//!    no other rule may fire. Then the scenarios are stopped (reverted) and each of those
//!    rules must return to Normal with resolved notifications in both sinks.
//! 4. The final table (rule, scenario, time to firing, time to normal, notified), `--report`
//!    JSON, and a non-zero exit naming each rule that missed.

pub mod tracker;

use std::{
    fs,
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::{sync::watch, task::JoinHandle};

use self::tracker::{baseline_blockers, Outcome, RuleSpec, Timing, Tracker};
use crate::{
    alerts::grafana_from,
    cli::{Targets, VerifyArgs},
    durations,
    grafana::{find_rule, Grafana, RuleSnapshot, Sinks},
    http,
    rules::Catalog,
    scenario::{self, Env, Scenario},
    table::Table,
};

/// The phases: scenarios in one phase run together and do not set off each other's rules.
pub fn default_phases() -> Vec<Vec<Scenario>> {
    vec![
        vec![
            Scenario::ErrorBurst,
            Scenario::LatencySpike,
            Scenario::PaymentOutage,
            Scenario::StockDepletion,
            Scenario::BruteForce,
        ],
        vec![
            Scenario::ServiceDown,
            Scenario::TrafficStop,
            Scenario::CredentialStuffing,
        ],
    ]
}

/// The JSON of `--report`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub grafana: String,
    pub profile: String,
    pub timing: Timing,
    pub phases: Vec<Vec<String>>,
    pub baseline_s: Option<f64>,
    pub passed: bool,
    #[serde(serialize_with = "rules_with_times")]
    pub rules: Vec<Outcome>,
    pub failures: Vec<String>,
}

/// Each rule's record plus the durations a reader of the report wants first.
fn rules_with_times<S: serde::Serializer>(
    rules: &[Outcome],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct WithTimes<'a> {
        #[serde(flatten)]
        outcome: &'a Outcome,
        time_to_firing_s: Option<f64>,
        time_to_normal_s: Option<f64>,
        passed: bool,
    }
    serializer.collect_seq(rules.iter().map(|outcome| WithTimes {
        outcome,
        time_to_firing_s: outcome.time_to_firing_s(),
        time_to_normal_s: outcome.time_to_normal_s(),
        passed: outcome.passed(),
    }))
}

fn fmt_secs(v: Option<f64>) -> String {
    v.map(|s| durations::human(Duration::from_secs_f64(s)))
        .unwrap_or_else(|| "-".into())
}

fn mark(firing: Option<DateTime<Utc>>, resolved: Option<DateTime<Utc>>) -> String {
    format!(
        "{}/{}",
        if firing.is_some() { "firing" } else { "-" },
        if resolved.is_some() { "resolved" } else { "-" }
    )
}

/// The final table.
pub fn render(outcomes: &[Outcome]) -> String {
    let mut table = Table::new(&[
        "RULE",
        "SCENARIO",
        "PHASE",
        "TO FIRING",
        "TO NORMAL",
        "WEBHOOK",
        "EMAIL",
        "RESULT",
    ]);
    for o in outcomes {
        table.row(vec![
            o.uid.clone(),
            o.scenario.clone(),
            o.phase.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            fmt_secs(o.time_to_firing_s()),
            fmt_secs(o.time_to_normal_s()),
            mark(o.webhook_firing_at, o.webhook_resolved_at),
            mark(o.email_firing_at, o.email_resolved_at),
            if o.phase.is_none() && o.problems.is_empty() {
                "skipped".into()
            } else if o.problems.is_empty() {
                "ok".into()
            } else {
                format!("MISSED: {}", o.problems.join("; "))
            },
        ]);
    }
    table.render()
}

struct Observed {
    rules: Vec<RuleSnapshot>,
    alertmanager: Vec<crate::grafana::AmAlert>,
    webhook: Vec<crate::grafana::SinkRecord>,
    mail: Vec<crate::grafana::MailMessage>,
}

/// Which half of a phase is being watched.
#[derive(Clone, Copy)]
enum Stage {
    Firing,
    Resolving,
}

/// Polls Grafana and the sinks during one phase.
struct Watch<'a> {
    grafana: &'a Grafana,
    sinks: &'a Sinks,
    since: DateTime<Utc>,
    phase: usize,
    interrupted: &'a AtomicBool,
    poll_every: Duration,
}

impl Watch<'_> {
    /// Polls until the tracker says `stage` is done (or the run is interrupted), printing
    /// every event and, every 15 s, what is still awaited.
    async fn until(&mut self, tracker: &mut Tracker, stage: Stage) {
        let phase = self.phase;
        let label = match stage {
            Stage::Firing => "",
            Stage::Resolving => " resolving",
        };
        let clock = tokio::time::Instant::now();
        let mut last_progress = tokio::time::Instant::now();
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                break;
            }
            match poll(self.grafana, self.sinks, self.since).await {
                Ok(o) => {
                    for event in
                        tracker.observe(Utc::now(), &o.rules, &o.alertmanager, &o.webhook, &o.mail)
                    {
                        eprintln!(
                            "verify: phase {phase}{label} +{}: {event}",
                            durations::human(clock.elapsed())
                        );
                    }
                }
                Err(e) => eprintln!("verify: warning: {}", http::one_line(&e)),
            }
            let done = match stage {
                Stage::Firing => tracker.firing_done(Utc::now()),
                Stage::Resolving => tracker.resolving_done(Utc::now()),
            };
            if done {
                break;
            }
            if last_progress.elapsed() > Duration::from_secs(15) {
                eprintln!(
                    "verify: phase {phase}{label} +{}: {}",
                    durations::human(clock.elapsed()),
                    waiting_line(tracker, phase, matches!(stage, Stage::Firing))
                );
                last_progress = tokio::time::Instant::now();
            }
            tokio::time::sleep(self.poll_every).await;
        }
    }
}

async fn poll(grafana: &Grafana, sinks: &Sinks, since: DateTime<Utc>) -> anyhow::Result<Observed> {
    let since = since - chrono::Duration::seconds(5);
    let (rules, alertmanager, webhook, mail) = tokio::join!(
        grafana.rules(),
        grafana.alertmanager_alerts(),
        sinks.webhook(Some(since)),
        sinks.mail()
    );
    Ok(Observed {
        rules: rules?,
        alertmanager: alertmanager?,
        webhook: webhook?,
        mail: mail?,
    })
}

/// The rules with Grafana's own interval and pending period when it reports them.
fn specs(catalog: &Catalog, snapshots: &[RuleSnapshot]) -> (Vec<RuleSpec>, Vec<String>) {
    let mut notes = Vec::new();
    let specs = catalog
        .rules
        .iter()
        .map(|r| {
            let live = find_rule(snapshots, &r.uid, &r.title);
            let interval = live
                .and_then(|s| s.interval_s)
                .unwrap_or(r.interval_s as f64);
            let pending = live.and_then(|s| s.for_s).unwrap_or(r.for_s as f64);
            if (interval - r.interval_s as f64).abs() > 0.5 || (pending - r.for_s as f64).abs() > 0.5 {
                notes.push(format!(
                    "{}: Grafana runs it every {interval:.0}s with for {pending:.0}s; the {} profile says {}s / {}s (Grafana's values are used)",
                    r.uid, catalog.profile, r.interval_s, r.for_s
                ));
            }
            RuleSpec {
                uid: r.uid.clone(),
                title: r.title.clone(),
                scenario: r.scenario.clone(),
                interval_s: interval,
                for_s: pending,
            }
        })
        .collect();
    (specs, notes)
}

async fn traffic_preflight(client: &reqwest::Client, targets: &Targets) -> anyhow::Result<()> {
    let base = http::base(&targets.traffic_url);
    http::check_url("--traffic-url", &base)?;
    let what = "labctl traffic (control endpoint)";
    let status: Value = http::get_json(client, what, &base, "/status", None)
        .await
        .map_err(|e| anyhow!("{e}; verify needs `labctl traffic` running"))?;
    if status.get("state").and_then(Value::as_str) == Some("paused") {
        eprintln!("verify: traffic was paused; resuming it");
        let response = http::send(what, &base, client.post(format!("{base}/resume"))).await?;
        http::expect_success(what, &base, "/resume", response).await?;
    }
    Ok(())
}

pub async fn command(targets: &Targets, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let started_at = Utc::now();
    let catalog = Catalog::load(
        args.rules.rules_file.as_deref(),
        args.rules.datasources_file.as_deref(),
        &args.rules.profile,
    )?;
    let timing = Timing {
        margin_s: durations::parse("--margin", &args.margin)?.as_secs_f64(),
        notify_s: durations::parse("--notify-timeout", &args.notify_timeout)?.as_secs_f64(),
    };
    let poll_every = durations::parse_interval("--poll", &args.poll)?;
    let all_phases = default_phases();
    for p in &args.phases {
        if *p == 0 || *p > all_phases.len() {
            return Err(anyhow!(
                "--phases: there are phases 1 to {}, got {p}",
                all_phases.len()
            ));
        }
    }
    let selected: Vec<usize> = if args.phases.is_empty() {
        (1..=all_phases.len()).collect()
    } else {
        args.phases.clone()
    };
    let grafana = grafana_from(targets)?;
    http::check_url("--sink-url", &targets.sink_url)?;
    http::check_url("--mailpit-url", &targets.mailpit_url)?;
    let client = http::client(Duration::from_secs(targets.timeout.max(1)));
    let sinks = Sinks::new(client.clone(), &targets.sink_url, &targets.mailpit_url);
    let env = Env::new(targets, &args.scenarios)?;
    env.require_fault_token(
        selected
            .iter()
            .flat_map(|&p| all_phases[p - 1].iter().copied()),
    )?;

    // 1. Preflight.
    grafana.health().await?;
    let snapshots = grafana.rules().await?;
    let missing: Vec<&str> = catalog
        .rules
        .iter()
        .filter(|r| find_rule(&snapshots, &r.uid, &r.title).is_none())
        .map(|r| r.uid.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(anyhow!(
            "Grafana at {} has not loaded these rules: {}",
            grafana.base,
            missing.join(", ")
        ));
    }
    sinks.sink_health().await?;
    sinks.mail().await?;
    traffic_preflight(&client, targets).await?;
    let (specs, notes) = specs(&catalog, &snapshots);
    for n in &notes {
        eprintln!("verify: note: {n}");
    }
    let phase_names: Vec<Vec<String>> = all_phases
        .iter()
        .map(|p| p.iter().map(|s| s.name().to_owned()).collect())
        .collect();
    let mut tracker = Tracker::new(specs.clone(), timing, phase_names.clone());

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        tokio::spawn(async move {
            if crate::signals::received().await.is_ok() {
                eprintln!("verify: interrupted; reverting the running scenarios");
                flag.store(true, Ordering::SeqCst);
            }
        });
    }

    // 2. Baseline.
    let baseline_timeout = specs
        .iter()
        .map(|s| timing.fire_deadline_s(s))
        .fold(0.0, f64::max);
    eprintln!(
        "verify: baseline: waiting (at most {}) until all {} rules were evaluated, healthy and Normal",
        durations::human(Duration::from_secs_f64(baseline_timeout)),
        specs.len()
    );
    let baseline_start = tokio::time::Instant::now();
    let mut last_blockers = Vec::new();
    let baseline_s = loop {
        if interrupted.load(Ordering::SeqCst) {
            return Err(anyhow!("interrupted during the baseline"));
        }
        match grafana.rules().await {
            Ok(snapshots) => {
                let blockers = baseline_blockers(&specs, &snapshots, started_at);
                if blockers.is_empty() {
                    break Some(baseline_start.elapsed().as_secs_f64());
                }
                if blockers != last_blockers {
                    eprintln!("verify: baseline: waiting for {}", blockers.join("; "));
                    last_blockers = blockers;
                }
            }
            Err(e) => eprintln!("verify: warning: {}", http::one_line(&e)),
        }
        if baseline_start.elapsed().as_secs_f64() > baseline_timeout {
            let report = finish(
                &tracker,
                args,
                targets,
                &catalog,
                started_at,
                None,
                &phase_names,
                &selected,
            )?;
            print!("{}", render(&report.rules));
            return Err(anyhow!(
                "no healthy baseline within {}: {}",
                durations::human(Duration::from_secs_f64(baseline_timeout)),
                last_blockers.join("; ")
            ));
        }
        tokio::time::sleep(poll_every).await;
    };
    eprintln!(
        "verify: baseline reached after {}: every rule evaluated, healthy, Normal",
        fmt_secs(baseline_s)
    );

    // 3. Phases.
    for &phase in &selected {
        let scenarios = &all_phases[phase - 1];
        let phase_rules: Vec<&RuleSpec> = specs
            .iter()
            .filter(|s| scenarios.iter().any(|sc| sc.name() == s.scenario))
            .collect();
        let run_for = phase_rules
            .iter()
            .map(|s| timing.fire_deadline_s(s) + timing.notify_s)
            .fold(0.0, f64::max)
            + 60.0;
        eprintln!(
            "verify: phase {phase}: starting {} (at most {} each); {} rule(s) must fire",
            scenarios
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", "),
            durations::human(Duration::from_secs_f64(run_for)),
            phase_rules.len()
        );
        let phase_start = Utc::now();
        tracker.start_phase(phase, phase_start);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks: Vec<(Scenario, JoinHandle<anyhow::Result<String>>)> = Vec::new();
        for &s in scenarios {
            let env = env.clone();
            let mut rx = stop_rx.clone();
            let duration = Duration::from_secs_f64(run_for);
            tasks.push((
                s,
                tokio::spawn(async move {
                    scenario::run(&env, s, duration, async move {
                        while !*rx.borrow() {
                            if rx.changed().await.is_err() {
                                break;
                            }
                        }
                    })
                    .await
                }),
            ));
        }
        // A scenario that could not start ends its task at once.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut finished = Vec::new();
        for (s, task) in tasks.iter() {
            if task.is_finished() {
                finished.push(*s);
            }
        }
        let mut remaining = Vec::new();
        for (s, task) in tasks {
            if finished.contains(&s) {
                if let Ok(Err(e)) = task.await {
                    tracker.add_problem(s.name(), http::one_line(&e));
                }
            } else {
                remaining.push((s, task));
            }
        }
        let mut watch = Watch {
            grafana: &grafana,
            sinks: &sinks,
            since: phase_start,
            phase,
            interrupted: &interrupted,
            poll_every,
        };
        watch.until(&mut tracker, Stage::Firing).await;
        eprintln!("verify: phase {phase}: stopping the scenarios");
        let _ = stop_tx.send(true);
        for (s, task) in remaining {
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracker.add_problem(s.name(), http::one_line(&e)),
                Err(e) => tracker.add_problem(s.name(), format!("scenario task failed: {e}")),
            }
        }
        if interrupted.load(Ordering::SeqCst) {
            tracker.finish_phase();
            break;
        }
        tracker.start_resolving(Utc::now());
        watch.until(&mut tracker, Stage::Resolving).await;
        tracker.finish_phase();
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
    }
    let all_ran = selected.len() == all_phases.len() && !interrupted.load(Ordering::SeqCst);
    tracker.mark_unexercised(all_ran);

    // 4. Report.
    let report = finish(
        &tracker,
        args,
        targets,
        &catalog,
        started_at,
        baseline_s,
        &phase_names,
        &selected,
    )?;
    print!("{}", render(&report.rules));
    if interrupted.load(Ordering::SeqCst) {
        return Err(anyhow!("interrupted"));
    }
    if report.passed {
        println!(
            "verify: passed: {} rule(s) fired, notified and resolved",
            report.rules.iter().filter(|o| o.passed()).count()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "labctl: verify failed: {} rule(s) missed: {}",
            report.failures.len(),
            report.failures.join("; ")
        );
        Ok(ExitCode::FAILURE)
    }
}

fn waiting_line(tracker: &Tracker, phase: usize, firing: bool) -> String {
    let waiting: Vec<String> = tracker
        .outcomes
        .iter()
        .filter(|o| o.phase == Some(phase))
        .filter_map(|o| {
            let mut what = Vec::new();
            if firing {
                if o.firing_at.is_none() {
                    what.push(if o.pending_at.is_some() {
                        "firing (pending)"
                    } else {
                        "firing"
                    });
                } else {
                    if o.webhook_firing_at.is_none() {
                        what.push("webhook");
                    }
                    if o.email_firing_at.is_none() {
                        what.push("email");
                    }
                }
            } else if o.firing_at.is_some() {
                if o.normal_at.is_none() {
                    what.push("Normal");
                } else {
                    if o.webhook_resolved_at.is_none() {
                        what.push("resolved webhook");
                    }
                    if o.email_resolved_at.is_none() {
                        what.push("resolved email");
                    }
                }
            }
            (!what.is_empty()).then(|| format!("{} ({})", o.uid, what.join(", ")))
        })
        .collect();
    if waiting.is_empty() {
        "waiting for nothing".into()
    } else {
        format!("waiting for {}", waiting.join(", "))
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    tracker: &Tracker,
    args: &VerifyArgs,
    targets: &Targets,
    catalog: &Catalog,
    started_at: DateTime<Utc>,
    baseline_s: Option<f64>,
    phases: &[Vec<String>],
    selected: &[usize],
) -> anyhow::Result<Report> {
    let failures: Vec<String> = tracker
        .failures()
        .into_iter()
        .map(|(uid, problems)| format!("{uid} ({})", problems.join("; ")))
        .collect();
    let report = Report {
        started_at,
        finished_at: Utc::now(),
        grafana: http::base(&targets.grafana_url),
        profile: catalog.profile.to_string(),
        timing: tracker.timing,
        phases: selected
            .iter()
            .filter_map(|p| phases.get(p - 1).cloned())
            .collect(),
        baseline_s,
        passed: failures.is_empty() && baseline_s.is_some(),
        rules: tracker.outcomes.clone(),
        failures,
    };
    if let Some(path) = &args.report {
        fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write --report {}", path.display()))?;
        eprintln!("verify: report written to {}", path.display());
    }
    Ok(report)
}
