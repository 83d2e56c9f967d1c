//! `labctl check`: every rule's queries evaluated directly on the data sources, its
//! expression steps applied as Grafana applies them, and each rule's condition reported per
//! instance (Normal / Firing / NoData / Error). Loki rules are evaluated only with
//! `--loki-url`; without it they are listed as NOT CHECKED.
//!
//! With `--expect` it becomes a test: `healthy` (no rule true) or `scenario=a,b` (every rule
//! of those scenarios true at some evaluation, no other rule ever true), re-evaluated every
//! `--every` for up to `--wait`, then kept for `--hold`.

pub mod datasource;
pub mod expr;

use std::{
    collections::{BTreeMap, BTreeSet},
    process::ExitCode,
    time::Duration,
};

use alertlab_grafana::Language;
use anyhow::anyhow;
use chrono::{DateTime, Utc};
use serde::Serialize;

use self::{
    datasource::{InstantApi, Postgres},
    expr::{CondState, InstanceResult, Outcome, QueryResult},
};
use crate::{
    cli::{CheckArgs, Targets},
    durations,
    rules::{Catalog, RuleInfo},
    scenario::Scenario,
    table::Table,
};

/// The data sources labctl can reach.
pub struct Sources {
    pub prometheus: InstantApi,
    pub loki: Option<InstantApi>,
    pub postgres: Postgres,
}

impl Sources {
    pub fn from_targets(targets: &Targets, client: reqwest::Client) -> anyhow::Result<Self> {
        crate::http::check_url("--prometheus-url", &targets.prometheus_url)?;
        if let Some(loki) = &targets.loki_url {
            crate::http::check_url("--loki-url", loki)?;
        }
        Ok(Self {
            prometheus: InstantApi::prometheus(client.clone(), &targets.prometheus_url),
            loki: targets
                .loki_url
                .as_deref()
                .map(|u| InstantApi::loki(client, u)),
            postgres: Postgres::new(
                &targets.database_url,
                targets.database_password_file.as_deref(),
            )?,
        })
    }

    /// Every data source the rules need answers (one line naming the first that does not).
    pub async fn preflight(&self, catalog: &Catalog) -> anyhow::Result<()> {
        let languages: BTreeSet<Language> = catalog
            .rules
            .iter()
            .flat_map(|r| r.languages(&catalog.datasources))
            .collect();
        if languages.contains(&Language::PromQL) {
            self.prometheus.ping().await?;
        }
        if languages.contains(&Language::Sql) {
            self.postgres.ping().await?;
        }
        if let (Some(loki), true) = (&self.loki, languages.contains(&Language::LogQL)) {
            loki.ping().await?;
        }
        Ok(())
    }
}

/// How one rule came out.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RuleResult {
    Checked { outcome: Outcome },
    NotChecked { reason: String },
    Unsupported { reason: String },
}

/// One rule's evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct RuleEval {
    pub uid: String,
    pub title: String,
    pub scenario: String,
    pub data: Vec<String>,
    /// The rule-level verdict (Firing when any instance is).
    pub verdict: Verdict,
    #[serde(flatten)]
    pub result: RuleResult,
}

/// The rule-level verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    Normal,
    Firing,
    NoData,
    Error,
    NotChecked,
    Unsupported,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Firing => "Firing",
            Self::NoData => "NoData",
            Self::Error => "Error",
            Self::NotChecked => "NOT CHECKED",
            Self::Unsupported => "UNSUPPORTED",
        }
    }

    /// Checked and false / true.
    pub fn is_checked(self) -> bool {
        !matches!(self, Self::NotChecked)
    }
}

impl RuleEval {
    pub fn new(
        uid: &str,
        title: &str,
        scenario: &str,
        data: Vec<String>,
        result: RuleResult,
    ) -> Self {
        let mut e = Self {
            uid: uid.to_owned(),
            title: title.to_owned(),
            scenario: scenario.to_owned(),
            data,
            verdict: Verdict::Normal,
            result,
        };
        e.verdict = e.compute_verdict();
        e
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    fn compute_verdict(&self) -> Verdict {
        match &self.result {
            RuleResult::NotChecked { .. } => Verdict::NotChecked,
            RuleResult::Unsupported { .. } => Verdict::Unsupported,
            RuleResult::Checked { outcome } => match outcome {
                Outcome::Error(_) => Verdict::Error,
                Outcome::NoData { .. } => Verdict::NoData,
                Outcome::Instances(i) => {
                    if i.iter().any(|i| i.state == CondState::Firing) {
                        Verdict::Firing
                    } else if i.iter().any(|i| i.state == CondState::NoData) {
                        Verdict::NoData
                    } else {
                        Verdict::Normal
                    }
                }
            },
        }
    }

    /// A short account of the instances: the firing ones with values, or a count.
    pub fn summary(&self) -> String {
        match &self.result {
            RuleResult::NotChecked { reason } | RuleResult::Unsupported { reason } => {
                reason.clone()
            }
            RuleResult::Checked { outcome } => match outcome {
                Outcome::Error(e) => e.clone(),
                Outcome::NoData { ref_id } => format!("query {ref_id} returned no data"),
                Outcome::Instances(instances) => summarize_instances(instances),
            },
        }
    }
}

fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "null".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
    }
}

fn fmt_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        "{}".into()
    } else {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `service=api B=0.25`: an instance's labels and its input values.
fn fmt_instance(i: &InstanceResult) -> String {
    let values = if i.inputs.is_empty() {
        format!("value={}", fmt_value(i.value))
    } else {
        i.inputs
            .iter()
            .map(|(r, v)| format!("{r}={}", fmt_value(*v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!("{} {values}", fmt_labels(&i.labels))
}

fn summarize_instances(instances: &[InstanceResult]) -> String {
    let not_normal: Vec<&InstanceResult> = instances
        .iter()
        .filter(|i| i.state != CondState::Normal)
        .collect();
    if instances.len() <= 4 && not_normal.is_empty() {
        return instances
            .iter()
            .map(fmt_instance)
            .collect::<Vec<_>>()
            .join("; ");
    }
    if not_normal.is_empty() {
        return format!("{} instances, all Normal", instances.len());
    }
    let shown: Vec<String> = not_normal
        .iter()
        .take(4)
        .map(|i| format!("{} {}", i.state.as_str(), fmt_instance(i)))
        .collect();
    let more = if not_normal.len() > 4 {
        format!(" (+{} more)", not_normal.len() - 4)
    } else {
        String::new()
    };
    format!(
        "{} of {} not Normal: {}{more}",
        not_normal.len(),
        instances.len(),
        shown.join("; ")
    )
}

/// Evaluates one rule now.
pub async fn evaluate_rule(rule: &RuleInfo, catalog: &Catalog, sources: &Sources) -> RuleEval {
    let languages = rule.languages(&catalog.datasources);
    let data = languages
        .iter()
        .map(|l| match l {
            Language::PromQL => "promql",
            Language::LogQL => "logql",
            Language::Sql => "sql",
        })
        .map(str::to_owned)
        .collect();
    let base = |result| RuleEval::new(&rule.uid, &rule.title, &rule.scenario, data, result);
    let plan = match expr::plan(&rule.rule, &catalog.datasources) {
        Ok(p) => p,
        Err(reason) => return base(RuleResult::Unsupported { reason }),
    };
    if languages.contains(&Language::LogQL) && sources.loki.is_none() {
        return base(RuleResult::NotChecked {
            reason: "Loki rule: not checked (no --loki-url given)".into(),
        });
    }
    let now = Utc::now();
    let mut results = BTreeMap::new();
    for (ref_id, language) in plan.queries() {
        let Some(q) = rule.rule.step(&ref_id) else {
            continue;
        };
        let result = match language {
            Language::PromQL => match q.expr() {
                Some(e) => sources.prometheus.query(e, now).await,
                None => QueryResult::Error("no expr".into()),
            },
            Language::LogQL => match (q.expr(), &sources.loki) {
                (Some(e), Some(loki)) => loki.query(e, now).await,
                _ => QueryResult::Error("no expr".into()),
            },
            Language::Sql => match q.raw_sql() {
                Some(sql) => {
                    let from_s = q
                        .relative_time_range
                        .as_ref()
                        .and_then(|r| r.get("from"))
                        .and_then(serde_json::Value::as_i64)
                        .unwrap_or(600);
                    let from = now - chrono::Duration::seconds(from_s);
                    sources.postgres.query(sql, from, now).await
                }
                None => QueryResult::Error("no rawSql".into()),
            },
        };
        results.insert(ref_id, result);
    }
    base(RuleResult::Checked {
        outcome: expr::evaluate(&plan, &results),
    })
}

/// Evaluates every rule now.
pub async fn evaluate_all(catalog: &Catalog, sources: &Sources) -> Vec<RuleEval> {
    let mut out = Vec::new();
    for rule in &catalog.rules {
        out.push(evaluate_rule(rule, catalog, sources).await);
    }
    out
}

// ------------------------------------------------------------------------------------------
// Expectations

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Healthy,
    Scenarios(BTreeSet<String>),
}

impl Expect {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        if text == "healthy" {
            return Ok(Self::Healthy);
        }
        let list = text.strip_prefix("scenario=").ok_or_else(|| {
            anyhow!("--expect must be `healthy` or `scenario=NAME[,NAME...]`, got `{text}`")
        })?;
        let mut set = BTreeSet::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            set.insert(Scenario::parse(name)?.name().to_owned());
        }
        if set.is_empty() {
            return Err(anyhow!(
                "--expect scenario= needs at least one scenario name"
            ));
        }
        Ok(Self::Scenarios(set))
    }

    pub fn wants_firing(&self, scenario: &str) -> bool {
        match self {
            Self::Healthy => false,
            Self::Scenarios(s) => s.contains(scenario),
        }
    }
}

/// What was seen of one rule across evaluations.
#[derive(Debug, Clone, Serialize)]
pub struct RuleWatch {
    pub uid: String,
    pub title: String,
    pub scenario: String,
    pub checked: bool,
    pub expected_true: bool,
    /// Seconds from the start of the watch.
    pub first_true_s: Option<f64>,
    pub last_true_s: Option<f64>,
    /// From when on every evaluation was Normal (None while the last one was not).
    pub normal_since_s: Option<f64>,
    pub last_verdict: Verdict,
    pub last_summary: String,
}

/// An expectation followed over repeated evaluations.
#[derive(Debug, Clone, Serialize)]
pub struct Watch {
    pub expect: Expect,
    pub started_at: DateTime<Utc>,
    pub evaluations: usize,
    pub met_at_s: Option<f64>,
    pub rules: Vec<RuleWatch>,
    pub violations: Vec<String>,
}

impl Watch {
    pub fn new(expect: Expect, started_at: DateTime<Utc>) -> Self {
        Self {
            expect,
            started_at,
            evaluations: 0,
            met_at_s: None,
            rules: Vec::new(),
            violations: Vec::new(),
        }
    }

    fn violate(&mut self, text: String) {
        if !self.violations.contains(&text) {
            self.violations.push(text);
        }
    }

    /// Takes one evaluation of every rule at `at`.
    pub fn observe(&mut self, at: DateTime<Utc>, evals: &[RuleEval]) {
        let t = durations::secs_between(self.started_at, at);
        self.evaluations += 1;
        let holding = self.met_at_s.is_some();
        for eval in evals {
            let verdict = eval.verdict();
            let expected_true = self.expect.wants_firing(&eval.scenario);
            let idx = match self.rules.iter().position(|r| r.uid == eval.uid) {
                Some(i) => i,
                None => {
                    self.rules.push(RuleWatch {
                        uid: eval.uid.clone(),
                        title: eval.title.clone(),
                        scenario: eval.scenario.clone(),
                        checked: verdict.is_checked(),
                        expected_true,
                        first_true_s: None,
                        last_true_s: None,
                        normal_since_s: None,
                        last_verdict: verdict,
                        last_summary: String::new(),
                    });
                    self.rules.len() - 1
                }
            };
            let summary = eval.summary();
            {
                let w = &mut self.rules[idx];
                w.checked = verdict.is_checked();
                w.last_verdict = verdict;
                w.last_summary = summary.clone();
                match verdict {
                    Verdict::Firing => {
                        w.first_true_s.get_or_insert(t);
                        w.last_true_s = Some(t);
                        w.normal_since_s = None;
                    }
                    Verdict::Normal => {
                        w.normal_since_s.get_or_insert(t);
                    }
                    _ => w.normal_since_s = None,
                }
            }
            match verdict {
                Verdict::Error | Verdict::NoData | Verdict::Unsupported => self.violate(format!(
                    "{} is {} at +{t:.0}s: {summary}",
                    eval.uid,
                    verdict.as_str()
                )),
                Verdict::Firing if !expected_true => {
                    let unexpected = match &self.expect {
                        Expect::Scenarios(s) => Some(format!(
                            "{} (scenario {}) is true at +{t:.0}s outside the running scenario(s) {}: {summary}",
                            eval.uid,
                            eval.scenario,
                            s.iter().cloned().collect::<Vec<_>>().join(",")
                        )),
                        Expect::Healthy if holding => Some(format!(
                            "{} is true at +{t:.0}s in the healthy state: {summary}",
                            eval.uid
                        )),
                        Expect::Healthy => None,
                    };
                    if let Some(v) = unexpected {
                        self.violate(v);
                    }
                }
                _ => {}
            }
        }
        if self.met_at_s.is_none() && self.currently_met() {
            self.met_at_s = Some(t);
        }
    }

    fn currently_met(&self) -> bool {
        if !self.violations.is_empty() || self.rules.is_empty() {
            return false;
        }
        let checked = self.rules.iter().filter(|r| r.checked);
        match &self.expect {
            Expect::Healthy => {
                let mut any = false;
                for r in checked {
                    any = true;
                    if r.last_verdict != Verdict::Normal {
                        return false;
                    }
                }
                any
            }
            Expect::Scenarios(_) => {
                let mut any = false;
                for r in checked.filter(|r| r.expected_true) {
                    any = true;
                    if r.first_true_s.is_none() {
                        return false;
                    }
                }
                any
            }
        }
    }

    pub fn is_met(&self) -> bool {
        self.met_at_s.is_some() && self.violations.is_empty()
    }

    /// Checked rules the expectation still waits for.
    pub fn waiting_for(&self) -> Vec<&str> {
        self.rules
            .iter()
            .filter(|r| r.checked)
            .filter(|r| match &self.expect {
                Expect::Healthy => r.last_verdict != Verdict::Normal,
                Expect::Scenarios(_) => r.expected_true && r.first_true_s.is_none(),
            })
            .map(|r| r.uid.as_str())
            .collect()
    }

    /// The reason the expectation was not met, one line.
    pub fn failure(&self) -> Option<String> {
        if !self.violations.is_empty() {
            return Some(self.violations.join("; "));
        }
        if self.met_at_s.is_none() {
            let waiting = self.waiting_for();
            return Some(match &self.expect {
                Expect::Healthy => format!("still true (not healthy): {}", waiting.join(", ")),
                Expect::Scenarios(_) if waiting.is_empty() => {
                    "no checked rule belongs to the expected scenario(s)".into()
                }
                Expect::Scenarios(_) => format!("never became true: {}", waiting.join(", ")),
            });
        }
        None
    }
}

// ------------------------------------------------------------------------------------------
// The command

pub async fn run(targets: &Targets, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let catalog = Catalog::load(
        args.rules.rules_file.as_deref(),
        args.rules.datasources_file.as_deref(),
        &args.rules.profile,
    )?;
    let expect = args.expect.as_deref().map(Expect::parse).transpose()?;
    let wait = args
        .wait
        .as_deref()
        .map(|w| durations::parse("--wait", w))
        .transpose()?
        .unwrap_or_default();
    let hold = args
        .hold
        .as_deref()
        .map(|h| durations::parse("--hold", h))
        .transpose()?
        .unwrap_or_default();
    let every = durations::parse_interval("--every", &args.every)?;
    let client = crate::http::client(Duration::from_secs(targets.timeout.max(1)));
    let sources = Sources::from_targets(targets, client)?;
    sources.preflight(&catalog).await?;

    let Some(expect) = expect else {
        let evals = evaluate_all(&catalog, &sources).await;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&evals)?);
        } else {
            print_evaluation(&evals);
        }
        let bad: Vec<&str> = evals
            .iter()
            .filter(|e| {
                matches!(
                    e.verdict(),
                    Verdict::Error | Verdict::NoData | Verdict::Unsupported
                )
            })
            .map(|e| e.uid.as_str())
            .collect();
        if bad.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "labctl: check: {} rule(s) could not be evaluated: {}",
            bad.len(),
            bad.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    };

    let started = Utc::now();
    let start = tokio::time::Instant::now();
    let mut watch = Watch::new(expect, started);
    let mut hold_until: Option<tokio::time::Instant> = None;
    loop {
        let evals = evaluate_all(&catalog, &sources).await;
        watch.observe(Utc::now(), &evals);
        progress(&watch, start.elapsed());
        if !watch.violations.is_empty() {
            break;
        }
        if watch.met_at_s.is_some() {
            let until = *hold_until.get_or_insert_with(|| tokio::time::Instant::now() + hold);
            if tokio::time::Instant::now() >= until {
                break;
            }
        } else if start.elapsed() >= wait {
            break;
        }
        tokio::time::sleep(every).await;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&watch)?);
    } else {
        print_watch(&watch);
    }
    match watch.failure() {
        None => Ok(ExitCode::SUCCESS),
        Some(reason) => {
            eprintln!("labctl: check: expectation not met: {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn progress(watch: &Watch, elapsed: Duration) {
    let firing: Vec<&str> = watch
        .rules
        .iter()
        .filter(|r| r.last_verdict == Verdict::Firing)
        .map(|r| r.uid.as_str())
        .collect();
    let waiting = watch.waiting_for();
    eprintln!(
        "[+{}] true: {} | waiting for: {}{}",
        durations::human(elapsed),
        if firing.is_empty() {
            "-".into()
        } else {
            firing.join(", ")
        },
        if waiting.is_empty() {
            "-".into()
        } else {
            waiting.join(", ")
        },
        if watch.violations.is_empty() {
            String::new()
        } else {
            format!(" | VIOLATION: {}", watch.violations.join("; "))
        }
    );
}

pub fn print_evaluation(evals: &[RuleEval]) {
    let mut table = Table::new(&["RULE", "SCENARIO", "DATA", "CONDITION", "INSTANCES"]);
    for e in evals {
        table.row(vec![
            e.uid.clone(),
            e.scenario.clone(),
            e.data.join("+"),
            e.verdict().as_str().to_owned(),
            e.summary(),
        ]);
    }
    print!("{}", table.render());
    let checked = evals.iter().filter(|e| e.verdict().is_checked()).count();
    let firing = evals
        .iter()
        .filter(|e| e.verdict() == Verdict::Firing)
        .count();
    let not_checked = evals.len() - checked;
    println!(
        "{checked} rule(s) checked ({firing} true), {not_checked} NOT CHECKED{}",
        if not_checked > 0 {
            " (Loki rules need --loki-url)"
        } else {
            ""
        }
    );
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("+{s:.0}s")).unwrap_or_else(|| "-".into())
}

pub fn print_watch(watch: &Watch) {
    let mut table = Table::new(&[
        "RULE",
        "SCENARIO",
        "EXPECTED",
        "FIRST TRUE",
        "LAST TRUE",
        "NORMAL SINCE",
        "NOW",
    ]);
    for r in &watch.rules {
        table.row(vec![
            r.uid.clone(),
            r.scenario.clone(),
            if !r.checked {
                "-".into()
            } else if r.expected_true {
                "true".into()
            } else {
                "false".into()
            },
            secs(r.first_true_s),
            secs(r.last_true_s),
            secs(r.normal_since_s),
            r.last_verdict.as_str().to_owned(),
        ]);
    }
    print!("{}", table.render());
    let expect = match &watch.expect {
        Expect::Healthy => "healthy".to_owned(),
        Expect::Scenarios(s) => format!(
            "scenario={}",
            s.iter().cloned().collect::<Vec<_>>().join(",")
        ),
    };
    match (watch.met_at_s, watch.violations.is_empty()) {
        (Some(t), true) => println!(
            "expectation {expect} met at +{t:.0}s ({} evaluations)",
            watch.evaluations
        ),
        _ => println!(
            "expectation {expect} NOT met ({} evaluations)",
            watch.evaluations
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::expr::InstanceResult;

    fn eval(uid: &str, scenario: &str, state: Option<CondState>) -> RuleEval {
        RuleEval::new(
            uid,
            uid,
            scenario,
            vec![],
            match state {
                None => RuleResult::NotChecked {
                    reason: "Loki".into(),
                },
                Some(s) => RuleResult::Checked {
                    outcome: Outcome::Instances(vec![InstanceResult {
                        labels: Default::default(),
                        value: Some(if s == CondState::Firing { 1.0 } else { 0.0 }),
                        state: s,
                        inputs: Default::default(),
                    }]),
                },
            },
        )
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn expectations_parse() {
        assert_eq!(Expect::parse("healthy").unwrap(), Expect::Healthy);
        assert_eq!(
            Expect::parse("scenario=brute-force,error-burst").unwrap(),
            Expect::Scenarios(["brute-force".to_string(), "error-burst".into()].into())
        );
        assert!(Expect::parse("scenario=nope")
            .unwrap_err()
            .to_string()
            .contains("unknown scenario `nope`"));
        assert!(Expect::parse("firing").is_err());
    }

    #[test]
    fn a_scenario_is_met_when_each_of_its_rules_was_seen_true() {
        let mut w = Watch::new(
            Expect::parse("scenario=brute-force,error-burst").unwrap(),
            at(0),
        );
        let state = |a, b, c| {
            vec![
                eval("bf", "brute-force", Some(a)),
                eval("err", "error-burst", Some(b)),
                eval("other", "service-down", Some(c)),
                eval("loki", "error-burst", None),
            ]
        };
        use CondState::*;
        w.observe(at(5), &state(Firing, Normal, Normal));
        assert!(!w.is_met());
        assert_eq!(w.waiting_for(), vec!["err"]);
        w.observe(at(10), &state(Normal, Firing, Normal));
        assert!(w.is_met());
        assert_eq!(w.met_at_s, Some(10.0));
        assert_eq!(w.failure(), None);
        w.observe(at(15), &state(Firing, Firing, Firing));
        assert!(!w.is_met());
        let failure = w.failure().unwrap();
        assert!(
            failure.contains("other (scenario service-down) is true at +15s"),
            "{failure}"
        );
    }

    #[test]
    fn healthy_tolerates_recovering_rules_until_met_then_holds() {
        let mut w = Watch::new(Expect::Healthy, at(0));
        use CondState::*;
        w.observe(
            at(5),
            &[eval("a", "x", Some(Firing)), eval("b", "y", Some(Normal))],
        );
        assert!(!w.is_met());
        assert_eq!(w.failure().unwrap(), "still true (not healthy): a");
        w.observe(
            at(10),
            &[eval("a", "x", Some(Normal)), eval("b", "y", Some(Normal))],
        );
        assert!(w.is_met());
        assert_eq!(w.rules[0].normal_since_s, Some(10.0));
        assert_eq!(w.rules[0].last_true_s, Some(5.0));
        w.observe(
            at(15),
            &[eval("a", "x", Some(Normal)), eval("b", "y", Some(Firing))],
        );
        assert!(w
            .failure()
            .unwrap()
            .contains("b is true at +15s in the healthy state"));
    }

    #[test]
    fn errors_are_violations() {
        let mut w = Watch::new(Expect::Healthy, at(0));
        let e = RuleEval::new(
            "a",
            "a",
            "x",
            vec![],
            RuleResult::Checked {
                outcome: Outcome::Error("A: boom".into()),
            },
        );
        w.observe(at(1), &[e]);
        assert!(w.failure().unwrap().contains("a is Error at +1s: A: boom"));
    }
}
