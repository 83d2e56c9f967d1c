//! What `verify` concludes from what it observes, without any I/O: fed with rule snapshots,
//! Alertmanager alerts, webhook records and emails at given times, it tracks each rule
//! through its phase (fired? notified? back to Normal? resolved notifications?) and names
//! every miss.
//!
//! Deadlines, per rule, with I its group interval and F its pending period:
//! - firing: 2·I + F + margin after its scenario started (one interval for the first
//!   evaluation to see the data, F pending, one more interval of jitter; the margin covers
//!   the data's own lag — scrapes, rate windows, the 2-minute windows of the count rules);
//! - back to Normal: 2·I + margin after its scenario stopped;
//! - each notification: `notify` after the firing (or the return to Normal) was seen.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    durations::secs_between,
    grafana::{
        find_rule, parse_subject, webhook_alerts, AmAlert, MailMessage, RuleSnapshot, SinkRecord,
    },
};

/// Clock slack between labctl, Grafana, the sink and Mailpit.
const SLACK_S: i64 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct RuleSpec {
    pub uid: String,
    pub title: String,
    pub scenario: String,
    pub interval_s: f64,
    pub for_s: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timing {
    pub margin_s: f64,
    pub notify_s: f64,
}

impl Timing {
    pub fn fire_deadline_s(&self, spec: &RuleSpec) -> f64 {
        2.0 * spec.interval_s + spec.for_s + self.margin_s
    }

    pub fn resolve_deadline_s(&self, spec: &RuleSpec) -> f64 {
        2.0 * spec.interval_s + self.margin_s
    }
}

/// One rule's record.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub uid: String,
    pub title: String,
    pub scenario: String,
    /// 1-based phase that ran its scenario.
    pub phase: Option<usize>,
    pub fire_deadline_s: f64,
    pub resolve_deadline_s: f64,
    pub started_at: Option<DateTime<Utc>>,
    pub pending_at: Option<DateTime<Utc>>,
    pub firing_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub normal_at: Option<DateTime<Utc>>,
    pub webhook_firing_at: Option<DateTime<Utc>>,
    pub email_firing_at: Option<DateTime<Utc>>,
    pub webhook_resolved_at: Option<DateTime<Utc>>,
    pub email_resolved_at: Option<DateTime<Utc>>,
    /// Receivers the Alertmanager routed its alerts to.
    pub receivers: BTreeSet<String>,
    pub problems: Vec<String>,
}

impl Outcome {
    pub fn time_to_firing_s(&self) -> Option<f64> {
        Some(secs_between(self.started_at?, self.firing_at?))
    }

    pub fn time_to_normal_s(&self) -> Option<f64> {
        Some(secs_between(self.stopped_at?, self.normal_at?))
    }

    pub fn passed(&self) -> bool {
        self.phase.is_some() && self.problems.is_empty()
    }

    fn problem(&mut self, text: String) -> bool {
        if self.problems.contains(&text) {
            false
        } else {
            self.problems.push(text);
            true
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Stage {
    Baseline,
    Firing { phase: usize },
    Resolving { phase: usize },
    Between,
}

/// Why the baseline is not reached yet, per rule.
pub fn baseline_blockers(
    specs: &[RuleSpec],
    snapshots: &[RuleSnapshot],
    since: DateTime<Utc>,
) -> Vec<String> {
    let mut out = Vec::new();
    for spec in specs {
        let Some(s) = find_rule(snapshots, &spec.uid, &spec.title) else {
            out.push(format!("{}: not in Grafana's rules", spec.uid));
            continue;
        };
        if let Some(p) = s.health_problem() {
            out.push(format!("{}: {p}", spec.uid));
        } else if s.last_evaluation.is_none_or(|t| t < since) {
            out.push(format!("{}: not evaluated yet", spec.uid));
        } else if !s.is_normal() {
            out.push(format!("{}: {}", spec.uid, s.state.as_str()));
        }
    }
    out
}

pub struct Tracker {
    pub specs: Vec<RuleSpec>,
    pub timing: Timing,
    pub outcomes: Vec<Outcome>,
    pub stage: Stage,
    /// Scenarios of each phase (index 0 = phase 1).
    pub phases: Vec<Vec<String>>,
}

impl Tracker {
    pub fn new(specs: Vec<RuleSpec>, timing: Timing, phases: Vec<Vec<String>>) -> Self {
        let outcomes = specs
            .iter()
            .map(|s| Outcome {
                uid: s.uid.clone(),
                title: s.title.clone(),
                scenario: s.scenario.clone(),
                phase: None,
                fire_deadline_s: timing.fire_deadline_s(s),
                resolve_deadline_s: timing.resolve_deadline_s(s),
                started_at: None,
                pending_at: None,
                firing_at: None,
                stopped_at: None,
                normal_at: None,
                webhook_firing_at: None,
                email_firing_at: None,
                webhook_resolved_at: None,
                email_resolved_at: None,
                receivers: BTreeSet::new(),
                problems: Vec::new(),
            })
            .collect();
        Self {
            specs,
            timing,
            outcomes,
            stage: Stage::Baseline,
            phases,
        }
    }

    fn current_phase(&self) -> Option<usize> {
        match self.stage {
            Stage::Firing { phase } | Stage::Resolving { phase } => Some(phase),
            _ => None,
        }
    }

    /// The rules of `phase` (1-based) start now.
    pub fn start_phase(&mut self, phase: usize, now: DateTime<Utc>) {
        let scenarios = self.phases.get(phase - 1).cloned().unwrap_or_default();
        for o in &mut self.outcomes {
            if scenarios.contains(&o.scenario) {
                o.phase = Some(phase);
                o.started_at = Some(now);
            }
        }
        self.stage = Stage::Firing { phase };
    }

    /// The scenarios of the current phase were stopped now.
    pub fn start_resolving(&mut self, now: DateTime<Utc>) {
        if let Some(phase) = self.current_phase() {
            for o in self.outcomes.iter_mut().filter(|o| o.phase == Some(phase)) {
                o.stopped_at = Some(now);
            }
            self.stage = Stage::Resolving { phase };
        }
    }

    /// A problem outside the observations (a scenario that could not start, ...).
    pub fn add_problem(&mut self, scenario: &str, text: String) {
        for o in self.outcomes.iter_mut().filter(|o| o.scenario == scenario) {
            o.problem(text.clone());
        }
    }

    /// Takes one poll; returns what changed, for the progress view.
    pub fn observe(
        &mut self,
        now: DateTime<Utc>,
        snapshots: &[RuleSnapshot],
        alertmanager: &[AmAlert],
        webhook: &[SinkRecord],
        mail: &[MailMessage],
    ) -> Vec<String> {
        let mut events = Vec::new();
        let Some(phase) = self.current_phase() else {
            return events;
        };
        let resolving = matches!(self.stage, Stage::Resolving { .. });
        let phase_scenarios = self.phases.get(phase - 1).cloned().unwrap_or_default();
        for (spec, o) in self.specs.iter().zip(self.outcomes.iter_mut()) {
            let snapshot = find_rule(snapshots, &spec.uid, &spec.title);
            let Some(s) = snapshot else {
                if o.problem("not found in Grafana's rules".into()) {
                    events.push(format!("{}: not found in Grafana's rules", spec.uid));
                }
                continue;
            };
            if let Some(p) = s.health_problem() {
                if o.problem(format!("during phase {phase}: {p}")) {
                    events.push(format!("{}: {p}", spec.uid));
                }
            }
            for a in alertmanager.iter().filter(|a| a.is_active()) {
                if let Some((kind, rule)) = a.datasource_problem() {
                    if rule == spec.title && o.problem(format!("{kind} alert during phase {phase}"))
                    {
                        events.push(format!("{}: {kind} alert", spec.uid));
                    }
                }
            }
            let in_phase = o.phase == Some(phase);
            if !in_phase {
                // Rules of an earlier phase that never returned to Normal already failed.
                let stale = o.phase.is_some_and(|p| p < phase) && o.normal_at.is_none();
                if s.is_firing() && !stale {
                    let text = format!(
                        "fired during phase {phase} ({}), outside its scenario",
                        phase_scenarios.join(", ")
                    );
                    if o.problem(text.clone()) {
                        events.push(format!("{}: {text}", spec.uid));
                    }
                }
                continue;
            }
            let started = o.started_at.unwrap_or(now);
            let t = |at: DateTime<Utc>| secs_between(started, at);
            if !resolving {
                if o.pending_at.is_none() && (s.is_pending() || s.is_firing()) {
                    o.pending_at = Some(now);
                    if !s.is_firing() {
                        events.push(format!("{}: pending (+{:.0}s)", spec.uid, t(now)));
                    }
                }
                if o.firing_at.is_none() && s.is_firing() {
                    o.firing_at = Some(now);
                    events.push(format!("{}: FIRING (+{:.0}s)", spec.uid, t(now)));
                }
            } else if o.firing_at.is_some() && o.normal_at.is_none() && s.is_normal() {
                o.normal_at = Some(now);
                let stopped = o.stopped_at.unwrap_or(now);
                events.push(format!(
                    "{}: Normal again (+{:.0}s after the stop)",
                    spec.uid,
                    secs_between(stopped, now)
                ));
            }
            for a in alertmanager
                .iter()
                .filter(|a| a.is_active() && a.alertname() == spec.title)
            {
                o.receivers
                    .extend(a.receivers.iter().map(|r| r.name.clone()));
            }
            // Notifications.
            let after = |at: DateTime<Utc>, from: Option<DateTime<Utc>>| {
                from.is_some_and(|f| at >= f - chrono::Duration::seconds(SLACK_S))
            };
            for record in webhook {
                for alert in webhook_alerts(&record.payload) {
                    if alert.alertname != spec.title {
                        continue;
                    }
                    if alert.status == "firing"
                        && o.webhook_firing_at.is_none()
                        && after(record.received_at, o.started_at)
                    {
                        o.webhook_firing_at = Some(record.received_at);
                        events.push(format!(
                            "{}: firing notification at the webhook sink",
                            spec.uid
                        ));
                    }
                    if alert.status == "resolved"
                        && o.webhook_resolved_at.is_none()
                        && after(record.received_at, o.stopped_at)
                    {
                        o.webhook_resolved_at = Some(record.received_at);
                        events.push(format!(
                            "{}: resolved notification at the webhook sink",
                            spec.uid
                        ));
                    }
                }
            }
            for m in mail {
                let (Some((status, name)), Some(created)) = (parse_subject(&m.subject), m.created)
                else {
                    continue;
                };
                if name != spec.title {
                    continue;
                }
                if status == "firing" && o.email_firing_at.is_none() && after(created, o.started_at)
                {
                    o.email_firing_at = Some(created);
                    events.push(format!("{}: firing email in Mailpit", spec.uid));
                }
                if status == "resolved"
                    && o.email_resolved_at.is_none()
                    && after(created, o.stopped_at)
                {
                    o.email_resolved_at = Some(created);
                    events.push(format!("{}: resolved email in Mailpit", spec.uid));
                }
            }
        }
        events
    }

    fn phase_outcomes(&self) -> impl Iterator<Item = &Outcome> {
        let phase = self.current_phase();
        self.outcomes
            .iter()
            .filter(move |o| o.phase.is_some() && o.phase == phase)
    }

    /// Every rule of the phase fired and was notified, or its deadline passed.
    pub fn firing_done(&self, now: DateTime<Utc>) -> bool {
        self.phase_outcomes().all(|o| {
            let started = o.started_at.unwrap_or(now);
            match o.firing_at {
                None => secs_between(started, now) > o.fire_deadline_s,
                Some(fired) => {
                    (o.webhook_firing_at.is_some() && o.email_firing_at.is_some())
                        || secs_between(fired, now) > self.timing.notify_s
                }
            }
        })
    }

    /// Every fired rule of the phase is Normal again with both resolved notifications, or
    /// its deadline passed.
    pub fn resolving_done(&self, now: DateTime<Utc>) -> bool {
        self.phase_outcomes().all(|o| {
            if o.firing_at.is_none() {
                return true;
            }
            let stopped = o.stopped_at.unwrap_or(now);
            match o.normal_at {
                None => secs_between(stopped, now) > o.resolve_deadline_s,
                Some(normal) => {
                    (o.webhook_resolved_at.is_some() && o.email_resolved_at.is_some())
                        || secs_between(normal, now) > self.timing.notify_s
                }
            }
        })
    }

    /// Names what the phase's rules missed.
    pub fn finish_phase(&mut self) {
        let Some(phase) = self.current_phase() else {
            return;
        };
        let notify = self.timing.notify_s;
        for o in self.outcomes.iter_mut().filter(|o| o.phase == Some(phase)) {
            let mut misses = Vec::new();
            match o.firing_at {
                None => misses.push(match o.pending_at {
                    Some(p) => format!(
                        "did not fire within {:.0}s of its scenario's start (pending from +{:.0}s)",
                        o.fire_deadline_s,
                        secs_between(o.started_at.unwrap_or(p), p)
                    ),
                    None => format!(
                        "did not fire within {:.0}s of its scenario's start",
                        o.fire_deadline_s
                    ),
                }),
                Some(_) => {
                    if o.webhook_firing_at.is_none() {
                        misses.push(format!(
                            "no firing notification reached the webhook sink within {notify:.0}s"
                        ));
                    }
                    if o.email_firing_at.is_none() {
                        misses.push(format!(
                            "no firing email reached Mailpit within {notify:.0}s"
                        ));
                    }
                    match o.normal_at {
                        None => misses.push(format!(
                            "did not return to Normal within {:.0}s of its scenario's end",
                            o.resolve_deadline_s
                        )),
                        Some(_) => {
                            if o.webhook_resolved_at.is_none() {
                                misses.push(format!(
                                    "no resolved notification reached the webhook sink within {notify:.0}s"
                                ));
                            }
                            if o.email_resolved_at.is_none() {
                                misses.push(format!(
                                    "no resolved email reached Mailpit within {notify:.0}s"
                                ));
                            }
                        }
                    }
                }
            }
            for m in misses {
                o.problem(m);
            }
        }
        self.stage = Stage::Between;
    }

    /// Rules whose scenario no phase ran.
    pub fn mark_unexercised(&mut self, all_phases_ran: bool) {
        for o in self.outcomes.iter_mut().filter(|o| o.phase.is_none()) {
            if all_phases_ran {
                o.problem(format!("no phase runs its scenario `{}`", o.scenario));
            }
        }
    }

    /// Rules that missed, with what they missed.
    pub fn failures(&self) -> Vec<(&str, &[String])> {
        self.outcomes
            .iter()
            .filter(|o| !o.problems.is_empty())
            .map(|o| (o.uid.as_str(), o.problems.as_slice()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::grafana::{AmReceiver, AmStatus, Instance, InstanceState, RuleState};

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn spec(uid: &str, title: &str, scenario: &str) -> RuleSpec {
        RuleSpec {
            uid: uid.into(),
            title: title.into(),
            scenario: scenario.into(),
            interval_s: 10.0,
            for_s: 10.0,
        }
    }

    fn snap(uid: &str, title: &str, state: RuleState, evaluated: i64) -> RuleSnapshot {
        let instance_state = match state {
            RuleState::Firing => InstanceState::Alerting,
            RuleState::Pending => InstanceState::Pending,
            _ => InstanceState::Normal,
        };
        RuleSnapshot {
            uid: Some(uid.into()),
            title: title.into(),
            group: "g".into(),
            folder: "alertlab".into(),
            interval_s: Some(10.0),
            for_s: Some(10.0),
            state,
            health: "ok".into(),
            last_error: None,
            last_evaluation: Some(at(evaluated)),
            labels: BTreeMap::new(),
            instances: vec![Instance {
                labels: BTreeMap::from([("alertname".into(), title.into())]),
                state: instance_state,
                reason: None,
                value: None,
            }],
        }
    }

    fn record(t: i64, title: &str, status: &str) -> SinkRecord {
        SinkRecord {
            seq: t as u64,
            received_at: at(t),
            payload: json!({"status": status, "alerts": [{"status": status, "labels": {"alertname": title}}]}),
        }
    }

    fn mail(t: i64, subject: &str) -> MailMessage {
        MailMessage {
            id: t.to_string(),
            subject: subject.into(),
            created: Some(at(t)),
            to: vec![],
        }
    }

    fn am(title: &str) -> AmAlert {
        AmAlert {
            labels: BTreeMap::from([("alertname".into(), title.into())]),
            annotations: BTreeMap::new(),
            starts_at: None,
            ends_at: None,
            fingerprint: None,
            receivers: vec![
                AmReceiver {
                    name: "alertlab-webhook".into(),
                },
                AmReceiver {
                    name: "alertlab-email".into(),
                },
            ],
            status: AmStatus {
                state: "active".into(),
                ..AmStatus::default()
            },
        }
    }

    fn tracker() -> Tracker {
        Tracker::new(
            vec![
                spec("r-brute", "Brute-force login", "brute-force"),
                spec("r-down", "Service down", "service-down"),
            ],
            Timing {
                margin_s: 60.0,
                notify_s: 30.0,
            },
            vec![vec!["brute-force".into()], vec!["service-down".into()]],
        )
    }

    #[test]
    fn deadlines_come_from_interval_pending_period_and_margin() {
        let t = tracker();
        assert_eq!(t.outcomes[0].fire_deadline_s, 2.0 * 10.0 + 10.0 + 60.0);
        assert_eq!(t.outcomes[0].resolve_deadline_s, 2.0 * 10.0 + 60.0);
    }

    #[test]
    fn the_baseline_waits_for_a_fresh_healthy_evaluation_of_every_rule() {
        let t = tracker();
        let specs = &t.specs;
        let blockers = baseline_blockers(
            specs,
            &[snap(
                "r-brute",
                "Brute-force login",
                RuleState::Inactive,
                -5,
            )],
            at(0),
        );
        assert_eq!(
            blockers,
            vec![
                "r-brute: not evaluated yet",
                "r-down: not in Grafana's rules"
            ]
        );
        let mut erroring = snap("r-down", "Service down", RuleState::Inactive, 5);
        erroring.health = "error".into();
        erroring.last_error = Some("connection refused".into());
        let blockers = baseline_blockers(
            specs,
            &[
                snap("r-brute", "Brute-force login", RuleState::Pending, 5),
                erroring,
            ],
            at(0),
        );
        assert_eq!(
            blockers,
            vec![
                "r-brute: pending",
                "r-down: health error: connection refused"
            ]
        );
        assert!(baseline_blockers(
            specs,
            &[
                snap("r-brute", "Brute-force login", RuleState::Inactive, 5),
                snap("r-down", "Service down", RuleState::Inactive, 5)
            ],
            at(0)
        )
        .is_empty());
    }

    #[test]
    fn a_rule_that_fires_notifies_and_resolves_passes() {
        let mut t = tracker();
        t.start_phase(1, at(0));
        let normal_down = snap("r-down", "Service down", RuleState::Inactive, 0);
        let ev = t.observe(
            at(10),
            &[
                snap("r-brute", "Brute-force login", RuleState::Pending, 10),
                normal_down.clone(),
            ],
            &[],
            &[],
            &[],
        );
        assert_eq!(ev, vec!["r-brute: pending (+10s)"]);
        let ev = t.observe(
            at(20),
            &[
                snap("r-brute", "Brute-force login", RuleState::Firing, 20),
                normal_down.clone(),
            ],
            &[am("Brute-force login")],
            &[record(25, "Brute-force login", "firing")],
            &[mail(26, "[FIRING:1] Brute-force login")],
        );
        assert!(ev.contains(&"r-brute: FIRING (+20s)".to_string()), "{ev:?}");
        assert!(t.firing_done(at(27)));
        t.start_resolving(at(30));
        assert!(!t.resolving_done(at(31)));
        t.observe(
            at(60),
            &[
                snap("r-brute", "Brute-force login", RuleState::Inactive, 60),
                normal_down,
            ],
            &[],
            &[
                record(25, "Brute-force login", "firing"),
                record(70, "Brute-force login", "resolved"),
            ],
            &[mail(71, "[RESOLVED] Brute-force login")],
        );
        assert!(t.resolving_done(at(72)));
        t.finish_phase();
        let o = &t.outcomes[0];
        assert!(o.passed(), "{:?}", o.problems);
        assert_eq!(o.time_to_firing_s(), Some(20.0));
        assert_eq!(o.time_to_normal_s(), Some(30.0));
        assert_eq!(o.receivers.len(), 2);
        // The other rule's phase has not run.
        assert_eq!(t.outcomes[1].phase, None);
    }

    #[test]
    fn a_missing_notification_fails_the_rule_by_name() {
        let mut t = tracker();
        t.start_phase(1, at(0));
        let normal_down = snap("r-down", "Service down", RuleState::Inactive, 0);
        t.observe(
            at(20),
            &[
                snap("r-brute", "Brute-force login", RuleState::Firing, 20),
                normal_down.clone(),
            ],
            &[],
            // Old notifications from an earlier run do not count.
            &[record(-100, "Brute-force login", "firing")],
            &[mail(22, "[FIRING:1] Brute-force login")],
        );
        assert!(!t.firing_done(at(40)));
        assert!(t.firing_done(at(51)), "the notification deadline passed");
        t.start_resolving(at(51));
        t.observe(
            at(60),
            &[
                snap("r-brute", "Brute-force login", RuleState::Inactive, 60),
                normal_down,
            ],
            &[],
            &[],
            &[],
        );
        assert!(t.resolving_done(at(91)));
        t.finish_phase();
        let failures = t.failures();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, "r-brute");
        assert_eq!(
            failures[0].1,
            [
                "no firing notification reached the webhook sink within 30s",
                "no resolved notification reached the webhook sink within 30s",
                "no resolved email reached Mailpit within 30s"
            ]
        );
    }

    #[test]
    fn a_rule_that_never_fires_or_never_resolves_misses_its_deadline() {
        let mut t = tracker();
        t.start_phase(1, at(0));
        let normal_down = snap("r-down", "Service down", RuleState::Inactive, 0);
        t.observe(
            at(50),
            &[
                snap("r-brute", "Brute-force login", RuleState::Pending, 50),
                normal_down.clone(),
            ],
            &[],
            &[],
            &[],
        );
        assert!(!t.firing_done(at(90)));
        assert!(t.firing_done(at(91)));
        t.start_resolving(at(91));
        assert!(
            t.resolving_done(at(91)),
            "nothing fired, nothing to resolve"
        );
        t.finish_phase();
        assert_eq!(
            t.outcomes[0].problems,
            ["did not fire within 90s of its scenario's start (pending from +50s)"]
        );

        let mut t = tracker();
        t.start_phase(1, at(0));
        t.observe(
            at(20),
            &[
                snap("r-brute", "Brute-force login", RuleState::Firing, 20),
                normal_down.clone(),
            ],
            &[],
            &[record(21, "Brute-force login", "firing")],
            &[mail(21, "[FIRING:1] Brute-force login")],
        );
        t.start_resolving(at(30));
        t.observe(
            at(100),
            &[
                snap("r-brute", "Brute-force login", RuleState::Firing, 100),
                normal_down,
            ],
            &[],
            &[],
            &[],
        );
        assert!(!t.resolving_done(at(110)));
        assert!(t.resolving_done(at(111)));
        t.finish_phase();
        assert_eq!(
            t.outcomes[0].problems,
            ["did not return to Normal within 80s of its scenario's end"]
        );
    }

    #[test]
    fn a_rule_firing_outside_its_scenario_is_named() {
        let mut t = tracker();
        t.start_phase(1, at(0));
        let ev = t.observe(
            at(15),
            &[
                snap("r-brute", "Brute-force login", RuleState::Pending, 15),
                snap("r-down", "Service down", RuleState::Firing, 15),
            ],
            &[],
            &[],
            &[],
        );
        assert!(ev.contains(
            &"r-down: fired during phase 1 (brute-force), outside its scenario".to_string()
        ));
        assert_eq!(t.failures()[0].0, "r-down");
    }

    #[test]
    fn errors_and_datasource_alerts_are_problems() {
        let mut t = tracker();
        t.start_phase(2, at(0));
        let mut broken = snap("r-down", "Service down", RuleState::Inactive, 5);
        broken.health = "nodata".into();
        let mut ds = am("DatasourceNoData");
        ds.labels.insert("rulename".into(), "Service down".into());
        t.observe(
            at(5),
            &[
                snap("r-brute", "Brute-force login", RuleState::Inactive, 5),
                broken,
            ],
            &[ds],
            &[],
            &[],
        );
        assert_eq!(
            t.outcomes[1].problems,
            [
                "during phase 2: health nodata",
                "DatasourceNoData alert during phase 2"
            ]
        );
    }

    #[test]
    fn unexercised_rules_fail_only_when_every_phase_ran() {
        let mut t = tracker();
        t.start_phase(1, at(0));
        t.finish_phase();
        t.mark_unexercised(false);
        assert!(t.outcomes[1].problems.is_empty());
        t.mark_unexercised(true);
        assert_eq!(
            t.outcomes[1].problems,
            ["no phase runs its scenario `service-down`"]
        );
    }
}
