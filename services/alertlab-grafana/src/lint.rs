//! Checks that catch what Grafana itself would only report at run time (or never): unknown
//! data-source uids, dangling refIds, bad intervals, missing labels and runbooks, NoData traps.
//!
//! Every check returns [`Finding`]s that name the file, the rule / dashboard / contact point and
//! the field, e.g.
//! `grafana/alert-rules.json: rule alertlab-high-latency: data[0].datasourceUid: unknown data source uid "promethus"`.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::{Path, PathBuf},
};

use serde_json::Value;

use crate::{
    duration::{parse_profile_duration, parse_prometheus_duration},
    logql,
    model::{
        template_names, ContactPointsFile, Dashboard, DatasourcesFile, PoliciesFile, Query, Route,
        Rule, RulesFile, TemplatesFile, EXPRESSION_UID,
    },
    query::{is_loki_metric_query, sql_macros},
    Language,
};

/// The failures the lab can inject; every rule's `scenario` label names one.
pub const KNOWN_SCENARIOS: [&str; 8] = [
    "service-down",
    "error-burst",
    "latency-spike",
    "payment-outage",
    "stock-depletion",
    "brute-force",
    "credential-stuffing",
    "traffic-stop",
];

pub const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];
pub const REQUIRED_LABELS: [&str; 2] = ["scenario", "severity"];
pub const REQUIRED_ANNOTATIONS: [&str; 3] = ["summary", "description", "runbook_url"];
pub const NO_DATA_STATES: [&str; 4] = ["NoData", "Alerting", "OK", "KeepLast"];
pub const EXEC_ERR_STATES: [&str; 4] = ["Error", "Alerting", "OK", "KeepLast"];
/// Where runbooks live in the repository; `runbook_url` must end in `docs/runbooks/<uid>.md`.
pub const RUNBOOK_DIR: &str = "docs/runbooks/";
/// Grafana's scheduler tick: group intervals must be non-zero multiples of it.
pub const SCHEDULER_TICK_MS: u64 = 10_000;
/// Uid limit of alert rules and dashboards.
pub const MAX_UID_LEN: usize = 40;
/// Lowest dashboard schemaVersion the lab writes.
pub const MIN_SCHEMA_VERSION: i64 = 39;

const PROMETHEUS: &str = "prometheus";
const LOKI: &str = "loki";
const POSTGRES: &str = "grafana-postgresql-datasource";
/// Data-source references Grafana resolves itself in dashboards.
const BUILTIN_DASHBOARD_DATASOURCES: [&str; 4] =
    ["-- Grafana --", "-- Mixed --", "-- Dashboard --", "grafana"];

/// One problem, located precisely enough to fix without searching.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Path relative to the repository root, e.g. `grafana/alert-rules.json`.
    pub file: String,
    /// What in the file: `rule alertlab-x`, `dashboard alertlab-y`, `contact point z`, `group g`;
    /// empty for the file as a whole.
    pub subject: String,
    /// The JSON path of the field inside the subject, e.g. `data[0].datasourceUid`.
    pub field: String,
    pub message: String,
}

impl Finding {
    pub fn new(
        file: impl Into<String>,
        subject: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            subject: subject.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if !self.subject.is_empty() {
            write!(f, "{}: ", self.subject)?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// What the checks of one file need to know about the others.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The repository root; runbook paths are resolved against it.
    pub repo_root: PathBuf,
    /// Data-source uid → type, from `grafana/datasources.json`.
    pub datasources: BTreeMap<String, String>,
    /// Uids of the dashboards under `grafana/dashboards/`.
    pub dashboard_uids: BTreeSet<String>,
}

impl Context {
    pub fn datasource_type(&self, uid: &str) -> Option<&str> {
        self.datasources.get(uid).map(String::as_str)
    }

    /// A dashboard panel target's query: its language (from the target's data source, else
    /// the panel's, `panel_uid`), the field that holds it (`rawSql` or `expr`) and its text.
    /// None for a target of a data source no lint knows, or without that field.
    pub fn panel_target_query<'a>(
        &self,
        panel_uid: Option<&str>,
        target: &'a Value,
    ) -> Option<(Language, &'static str, &'a str)> {
        let uid = target
            .pointer("/datasource/uid")
            .and_then(Value::as_str)
            .or(panel_uid)?;
        let language = Language::of(self.datasource_type(uid)?)?;
        let key = if language == Language::Sql {
            "rawSql"
        } else {
            "expr"
        };
        let text = target.get(key).and_then(Value::as_str)?;
        Some((language, key, text))
    }
}

/// Collects findings for one file and subject.
struct Sink<'a> {
    file: &'a str,
    out: Vec<Finding>,
}

impl<'a> Sink<'a> {
    fn new(file: &'a str) -> Self {
        Self {
            file,
            out: Vec::new(),
        }
    }

    fn push(&mut self, subject: &str, field: impl Into<String>, message: impl Into<String>) {
        self.out
            .push(Finding::new(self.file, subject, field, message));
    }
}

fn uid_is_valid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= MAX_UID_LEN
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_uid(sink: &mut Sink, subject: &str, field: &str, uid: &str, seen: &mut BTreeSet<String>) {
    if uid.is_empty() {
        sink.push(subject, field, "missing uid");
        return;
    }
    if !uid_is_valid(uid) {
        sink.push(
            subject,
            field,
            format!(
                "uid {uid:?} must match ^[a-zA-Z0-9-_]+$ and have at most {MAX_UID_LEN} characters"
            ),
        );
    }
    if !seen.insert(uid.to_string()) {
        sink.push(subject, field, format!("duplicate uid {uid:?}"));
    }
}

fn check_api_version(sink: &mut Sink, version: i64) {
    if version != 1 {
        sink.push("", "apiVersion", format!("must be 1, found {version}"));
    }
}

/// A `$` that Grafana's environment-variable interpolation would consume: labels, contact-point
/// settings and notification policies are interpolated, so a literal `$` must be written `$$`.
/// `$$`, `${NAME}`, `$__env{NAME}` and `$__file{path}` are deliberate and allowed.
pub fn unescaped_dollar(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let rest = &text[i + 1..];
        if rest.starts_with('$') {
            i += 2;
            continue;
        }
        if rest.starts_with('{') || rest.starts_with("__env{") || rest.starts_with("__file{") {
            i += 1;
            continue;
        }
        match rest.chars().next() {
            Some(c) if c.is_ascii_alphanumeric() || "_*#@!?-".contains(c) => {
                let snippet: String = text[i..].chars().take(16).collect();
                return Some(snippet);
            }
            _ => i += 1,
        }
    }
    None
}

// ------------------------------------------------------------------------------------------
// datasources.json

pub fn lint_datasources(file: &str, datasources: &DatasourcesFile) -> Vec<Finding> {
    let mut sink = Sink::new(file);
    check_api_version(&mut sink, datasources.api_version);
    let mut uids = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (i, ds) in datasources.datasources.iter().enumerate() {
        let subject = if ds.uid.is_empty() {
            format!("datasource datasources[{i}]")
        } else {
            format!("datasource {}", ds.uid)
        };
        check_uid(&mut sink, &subject, "uid", &ds.uid, &mut uids);
        if ds.name.is_empty() {
            sink.push(
                &subject,
                "name",
                "missing name (Grafana upserts data sources by name)",
            );
        } else if !names.insert(ds.name.clone()) {
            sink.push(&subject, "name", format!("duplicate name {:?}", ds.name));
        }
        if ds.kind.is_empty() {
            sink.push(&subject, "type", "missing type");
        }
        if ds.extra.contains_key("password") {
            sink.push(
                &subject,
                "password",
                "no passwords in the file; the NixOS module injects secureJsonData.password",
            );
        }
        if let Some(secure) = &ds.secure_json_data {
            for (key, value) in secure {
                let literal = value
                    .as_str()
                    .is_none_or(|s| !s.starts_with("$__file{") && !s.starts_with("$__env{"));
                if literal {
                    sink.push(
                        &subject,
                        format!("secureJsonData.{key}"),
                        "secrets must not be in the file; the NixOS module injects them (or use $__file{...})",
                    );
                }
            }
        }
        if ds.kind == POSTGRES || ds.kind == "postgres" {
            if ds
                .json_data
                .get("database")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                sink.push(&subject, "jsonData.database", "missing database name");
            }
            if ds.url.as_deref().is_some_and(|u| u.contains("://")) {
                sink.push(
                    &subject,
                    "url",
                    "PostgreSQL url is host:port, without a scheme",
                );
            }
        }
    }
    sink.out
}

// ------------------------------------------------------------------------------------------
// alert-rules.json

/// The refIds an expression step reads.
fn expression_inputs(query: &Query) -> Vec<(String, String)> {
    let model = &query.model;
    let mut refs = Vec::new();
    match query.expression_type().unwrap_or("") {
        "math" => {
            if let Some(expr) = model.get("expression").and_then(Value::as_str) {
                for var in math_variables(expr) {
                    refs.push(("model.expression".to_string(), var));
                }
            }
        }
        "classic_conditions" => {
            if let Some(conditions) = model.get("conditions").and_then(Value::as_array) {
                for (i, c) in conditions.iter().enumerate() {
                    if let Some(r) = c.pointer("/query/params/0").and_then(Value::as_str) {
                        refs.push((
                            format!("model.conditions[{i}].query.params[0]"),
                            r.to_string(),
                        ));
                    }
                }
            }
        }
        _ => {
            if let Some(expr) = model.get("expression").and_then(Value::as_str) {
                refs.push((
                    "model.expression".to_string(),
                    expr.trim().trim_start_matches('$').to_string(),
                ));
            }
        }
    }
    refs
}

/// `$A`, `${A}` variables of a math expression.
pub fn math_variables(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(pos) = rest.find('$') {
        rest = &rest[pos + 1..];
        if let Some(braced) = rest.strip_prefix('{') {
            if let Some(end) = braced.find('}') {
                out.push(braced[..end].to_string());
                rest = &braced[end + 1..];
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            rest = &rest[name.len()..];
            out.push(name);
        }
    }
    out
}

/// `$values.X` references in an annotation template.
fn annotation_value_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("$values.") {
        rest = &rest[pos + "$values.".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// Whether a data-source step returns series over time (which need a Reduce before a
/// threshold or math condition).
fn returns_time_series(query: &Query, ds_type: Option<&str>) -> bool {
    match ds_type {
        Some(PROMETHEUS) => query.model.get("instant").and_then(Value::as_bool) != Some(true),
        Some(LOKI) => query.model.get("queryType").and_then(Value::as_str) != Some("instant"),
        Some(POSTGRES) => query.model.get("format").and_then(Value::as_str) != Some("table"),
        _ => false,
    }
}

fn check_relative_time_range(sink: &mut Sink, subject: &str, field: &str, range: Option<&Value>) {
    let Some(range) = range else {
        sink.push(
            subject,
            field,
            "missing; data-source queries need integer seconds with from > to (e.g. {\"from\": 600, \"to\": 0})",
        );
        return;
    };
    let int = |key: &str| -> Result<i64, String> {
        match range.get(key) {
            None => Err(format!("missing {key}")),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| format!("{key} must be an integer number of seconds, found {v}")),
        }
    };
    match (int("from"), int("to")) {
        (Ok(from), Ok(to)) => {
            if to < 0 {
                sink.push(
                    subject,
                    format!("{field}.to"),
                    format!("must not be negative, found {to}"),
                );
            }
            if from <= to {
                sink.push(
                    subject,
                    field,
                    format!("from ({from}) must be greater than to ({to}); Grafana rejects the rule at startup"),
                );
            }
        }
        (from, to) => {
            for (key, result) in [("from", from), ("to", to)] {
                if let Err(message) = result {
                    sink.push(subject, format!("{field}.{key}"), message);
                }
            }
        }
    }
}

fn check_datasource_query(sink: &mut Sink, subject: &str, k: usize, query: &Query, ds_type: &str) {
    let at = |f: &str| format!("data[{k}].{f}");
    check_relative_time_range(
        sink,
        subject,
        &at("relativeTimeRange"),
        query.relative_time_range.as_ref(),
    );
    if let Some(model_ref) = query.model.get("refId").and_then(Value::as_str) {
        if model_ref != query.ref_id {
            sink.push(
                subject,
                at("model.refId"),
                format!(
                    "{model_ref:?} differs from the step's refId {:?}",
                    query.ref_id
                ),
            );
        }
    }
    if let Some(ds) = query.model.get("datasource") {
        if let Some(uid) = ds.get("uid").and_then(Value::as_str) {
            if uid != query.datasource_uid {
                sink.push(
                    subject,
                    at("model.datasource.uid"),
                    format!(
                        "{uid:?} differs from datasourceUid {:?}",
                        query.datasource_uid
                    ),
                );
            }
        }
        if let Some(kind) = ds.get("type").and_then(Value::as_str) {
            if kind != ds_type {
                sink.push(
                    subject,
                    at("model.datasource.type"),
                    format!(
                        "{kind:?} but data source {:?} has type {ds_type:?}",
                        query.datasource_uid
                    ),
                );
            }
        }
    }
    match ds_type {
        PROMETHEUS if query.expr().is_none_or(|e| e.trim().is_empty()) => {
            sink.push(subject, at("model.expr"), "missing PromQL expression");
        }
        LOKI => {
            match query.expr() {
                None => sink.push(subject, at("model.expr"), "missing LogQL expression"),
                Some(expr) => {
                    if !is_loki_metric_query(expr) {
                        sink.push(
                            subject,
                            at("model.expr"),
                            "alerting needs a metric query (count_over_time, rate, sum(...)), not a log query",
                        );
                    }
                    for problem in logql::pipeline_problems(expr) {
                        sink.push(subject, at("model.expr"), problem);
                    }
                }
            }
            let model_type = query.model.get("queryType").and_then(Value::as_str);
            match model_type {
                Some("instant" | "range") => {}
                Some(other) => sink.push(
                    subject,
                    at("model.queryType"),
                    format!("must be \"instant\" or \"range\", found {other:?}"),
                ),
                None => sink.push(
                    subject,
                    at("model.queryType"),
                    "missing; set \"instant\" (or \"range\" plus a Reduce)",
                ),
            }
            if let (Some(outer), Some(inner)) = (query.query_type.as_deref(), model_type) {
                if outer != inner {
                    sink.push(
                        subject,
                        at("queryType"),
                        format!("{outer:?} differs from model.queryType {inner:?}"),
                    );
                }
            }
        }
        POSTGRES => {
            match query.model.get("format").and_then(Value::as_str) {
                Some("table") => {}
                Some(other) => sink.push(
                    subject,
                    at("model.format"),
                    format!("must be \"table\" (one numeric column plus string label columns), found {other:?}"),
                ),
                None => sink.push(
                    subject,
                    at("model.format"),
                    "missing; Grafana then assumes time_series, which needs a time column: set \"table\"",
                ),
            }
            match query.raw_sql() {
                None => sink.push(subject, at("model.rawSql"), "missing SQL"),
                Some(sql) => {
                    let macros = sql_macros(sql);
                    if !macros.is_empty() {
                        sink.push(
                            subject,
                            at("model.rawSql"),
                            format!(
                                "uses Grafana macros ({}); alert SQL uses now() so the checks can run it verbatim",
                                macros.into_iter().collect::<Vec<_>>().join(", ")
                            ),
                        );
                    }
                }
            }
        }
        _ => {}
    }
}

fn check_expression(sink: &mut Sink, subject: &str, k: usize, query: &Query) {
    let at = |f: &str| format!("data[{k}].{f}");
    let model = &query.model;
    let kind = query.expression_type();
    match kind {
        None => sink.push(subject, at("model.type"), "missing expression type"),
        Some("reduce") => {
            let reducer = model.get("reducer").and_then(Value::as_str).unwrap_or("");
            const REDUCERS: [&str; 7] = ["sum", "mean", "min", "max", "count", "last", "median"];
            if !REDUCERS.contains(&reducer.to_ascii_lowercase().as_str()) {
                sink.push(
                    subject,
                    at("model.reducer"),
                    format!(
                        "unknown reducer {reducer:?}; expected one of {}",
                        REDUCERS.join(", ")
                    ),
                );
            }
        }
        Some("threshold") => {
            let conditions = model.get("conditions").and_then(Value::as_array);
            match conditions.map(Vec::as_slice) {
                Some([condition]) => {
                    let kind = condition
                        .pointer("/evaluator/type")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let params = condition
                        .pointer("/evaluator/params")
                        .and_then(Value::as_array)
                        .map(|p| p.iter().all(Value::is_number).then_some(p.len()));
                    let want = match kind {
                        "gt" | "lt" => Some(1),
                        "within_range" | "outside_range" => Some(2),
                        _ => None,
                    };
                    match want {
                        None => sink.push(
                            subject,
                            at("model.conditions[0].evaluator.type"),
                            format!("{kind:?} is not one of gt, lt, within_range, outside_range (the set every Grafana 12.x has)"),
                        ),
                        Some(n) if params != Some(Some(n)) => sink.push(
                            subject,
                            at("model.conditions[0].evaluator.params"),
                            format!("{kind} needs {n} numeric parameter(s)"),
                        ),
                        Some(_) => {}
                    }
                }
                _ => sink.push(
                    subject,
                    at("model.conditions"),
                    "a threshold needs exactly one condition",
                ),
            }
        }
        Some("math" | "classic_conditions" | "resample" | "sql") => {}
        Some(other) => sink.push(
            subject,
            at("model.type"),
            format!("unknown expression type {other:?}"),
        ),
    }
    if matches!(kind, Some("reduce" | "threshold" | "resample" | "math"))
        && model
            .get("expression")
            .and_then(Value::as_str)
            .is_none_or(|e| e.trim().is_empty())
    {
        sink.push(subject, at("model.expression"), "missing input refId");
    }
}

fn check_labels_and_annotations(
    sink: &mut Sink,
    subject: &str,
    rule: &Rule,
    ctx: &Context,
    steps: &BTreeSet<&str>,
) {
    for label in REQUIRED_LABELS {
        if rule.labels.get(label).is_none_or(|v| v.is_empty()) {
            sink.push(subject, format!("labels.{label}"), "missing required label");
        }
    }
    if let Some(scenario) = rule.labels.get("scenario").filter(|s| !s.is_empty()) {
        if !KNOWN_SCENARIOS.contains(&scenario.as_str()) {
            sink.push(
                subject,
                "labels.scenario",
                format!(
                    "unknown scenario {scenario:?}; expected one of {}",
                    KNOWN_SCENARIOS.join(", ")
                ),
            );
        }
    }
    if let Some(severity) = rule.labels.get("severity").filter(|s| !s.is_empty()) {
        if !SEVERITIES.contains(&severity.as_str()) {
            sink.push(
                subject,
                "labels.severity",
                format!(
                    "unknown severity {severity:?}; expected one of {}",
                    SEVERITIES.join(", ")
                ),
            );
        }
    }
    for (key, value) in &rule.labels {
        if value.contains("{{") {
            sink.push(
                subject,
                format!("labels.{key}"),
                "labels are env-interpolated at provisioning; keep {{ templating }} in annotations",
            );
        } else if let Some(snippet) = unescaped_dollar(value) {
            sink.push(
                subject,
                format!("labels.{key}"),
                format!("labels are env-interpolated: {snippet:?} would be replaced; write $$ for a literal $"),
            );
        }
    }
    for annotation in REQUIRED_ANNOTATIONS {
        if rule
            .annotations
            .get(annotation)
            .is_none_or(|v| v.trim().is_empty())
        {
            sink.push(
                subject,
                format!("annotations.{annotation}"),
                "missing required annotation",
            );
        }
    }
    for (key, value) in &rule.annotations {
        for reference in annotation_value_refs(value) {
            if !steps.contains(reference.as_str()) {
                sink.push(
                    subject,
                    format!("annotations.{key}"),
                    format!("$values.{reference} names no step of the rule"),
                );
            }
        }
    }
    if let Some(url) = rule
        .annotations
        .get("runbook_url")
        .filter(|u| !u.trim().is_empty())
    {
        match url.find(RUNBOOK_DIR) {
            None => sink.push(
                subject,
                "annotations.runbook_url",
                format!("{url:?} does not point into {RUNBOOK_DIR}"),
            ),
            Some(pos) => {
                let relative = &url[pos..];
                let expected = format!("{RUNBOOK_DIR}{}.md", rule.uid);
                if !ctx.repo_root.join(relative).is_file() {
                    sink.push(
                        subject,
                        "annotations.runbook_url",
                        format!("runbook file {relative} does not exist"),
                    );
                } else if relative != expected {
                    sink.push(
                        subject,
                        "annotations.runbook_url",
                        format!("points to {relative}; the rule's runbook is {expected}"),
                    );
                }
            }
        }
    }
    if let Some(dashboard) = rule.annotations.get("dashboard_uid") {
        if !ctx.dashboard_uids.contains(dashboard) {
            sink.push(
                subject,
                "annotations.dashboard_uid",
                format!("no dashboard under grafana/dashboards has uid {dashboard:?}"),
            );
        }
    }
}

fn lint_rule(sink: &mut Sink, subject: &str, rule: &Rule, ctx: &Context) {
    if rule.title.trim().is_empty() {
        sink.push(subject, "title", "missing title");
    }
    if rule.data.is_empty() {
        sink.push(subject, "data", "no queries");
    }
    // Steps and their refIds.
    let mut steps: BTreeSet<&str> = BTreeSet::new();
    for (k, query) in rule.data.iter().enumerate() {
        if query.ref_id.is_empty() {
            sink.push(subject, format!("data[{k}].refId"), "missing refId");
        } else if !steps.insert(query.ref_id.as_str()) {
            sink.push(
                subject,
                format!("data[{k}].refId"),
                format!("duplicate refId {:?}", query.ref_id),
            );
        }
    }
    if rule.condition.is_empty() {
        sink.push(subject, "condition", "missing condition");
    } else if !steps.contains(rule.condition.as_str()) {
        sink.push(
            subject,
            "condition",
            format!(
                "{:?} names no step (refIds: {})",
                rule.condition,
                steps.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    used.insert(rule.condition.clone());
    for (k, query) in rule.data.iter().enumerate() {
        let field = format!("data[{k}].datasourceUid");
        if query.is_expression() {
            check_expression(sink, subject, k, query);
            for (input_field, input) in expression_inputs(query) {
                used.insert(input.clone());
                match rule.step(&input) {
                    None => sink.push(
                        subject,
                        format!("data[{k}].{input_field}"),
                        format!("refId {input:?} names no step of the rule"),
                    ),
                    Some(source) if !source.is_expression() => {
                        let source_type = ctx.datasource_type(&source.datasource_uid);
                        let consumer = query.expression_type().unwrap_or("");
                        if matches!(consumer, "threshold" | "math")
                            && returns_time_series(source, source_type)
                        {
                            sink.push(
                                subject,
                                format!("data[{k}].{input_field}"),
                                format!(
                                    "{input:?} returns time series; reduce it before a {consumer}"
                                ),
                            );
                        }
                    }
                    Some(_) => {}
                }
            }
            if let Some(range) = &query.relative_time_range {
                // Harmless on expressions, but must still be integers if present.
                if range.get("from").is_some_and(|v| !v.is_i64())
                    || range.get("to").is_some_and(|v| !v.is_i64())
                {
                    sink.push(
                        subject,
                        format!("data[{k}].relativeTimeRange"),
                        "from/to must be integers",
                    );
                }
            }
        } else if query.datasource_uid.is_empty() {
            sink.push(subject, field, "missing data source uid");
        } else if let Some(ds_type) = ctx.datasource_type(&query.datasource_uid) {
            check_datasource_query(sink, subject, k, query, ds_type);
        } else {
            let known: Vec<&str> = ctx
                .datasources
                .keys()
                .map(String::as_str)
                .chain([EXPRESSION_UID])
                .collect();
            sink.push(
                subject,
                field,
                format!(
                    "unknown data source uid {:?} (known: {})",
                    query.datasource_uid,
                    known.join(", ")
                ),
            );
        }
    }
    for (k, query) in rule.data.iter().enumerate() {
        if !query.ref_id.is_empty() && !used.contains(&query.ref_id) {
            sink.push(
                subject,
                format!("data[{k}].refId"),
                format!(
                    "step {:?} is neither the condition nor an input of an expression",
                    query.ref_id
                ),
            );
        }
    }
    match rule.no_data_state.as_deref() {
        None => sink.push(
            subject,
            "noDataState",
            "missing; set it explicitly (the queries should never return no data)",
        ),
        Some(state) if !NO_DATA_STATES.contains(&state) => sink.push(
            subject,
            "noDataState",
            format!(
                "invalid value {state:?}; expected one of {}",
                NO_DATA_STATES.join(", ")
            ),
        ),
        Some(_) => {}
    }
    match rule.exec_err_state.as_deref() {
        None => sink.push(
            subject,
            "execErrState",
            "missing; Grafana's file default is Alerting, set Error",
        ),
        Some("Error") => {}
        Some(state) if EXEC_ERR_STATES.contains(&state) => sink.push(
            subject,
            "execErrState",
            format!(
                "{state:?}: the lab uses Error so a broken query never looks like a firing alert"
            ),
        ),
        Some(state) => sink.push(
            subject,
            "execErrState",
            format!(
                "invalid value {state:?}; expected one of {}",
                EXEC_ERR_STATES.join(", ")
            ),
        ),
    }
    match rule.pending.as_deref() {
        None => sink.push(subject, "for", "missing pending period"),
        Some(pending) if parse_profile_duration(pending).is_none() => sink.push(
            subject,
            "for",
            format!("{pending:?} is not a duration the profiles understand ([<n>h][<n>m][<n>s], e.g. 30s, 1m30s)"),
        ),
        Some(_) => {}
    }
    check_labels_and_annotations(sink, subject, rule, ctx, &steps);
}

pub fn lint_rules(file: &str, rules: &RulesFile, ctx: &Context) -> Vec<Finding> {
    let mut sink = Sink::new(file);
    check_api_version(&mut sink, rules.api_version);
    if rules.groups.is_empty() {
        sink.push("", "groups", "no rule groups");
    }
    let mut uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for (g, group) in rules.groups.iter().enumerate() {
        let subject = if group.name.is_empty() {
            format!("group groups[{g}]")
        } else {
            format!("group {}", group.name)
        };
        if group.name.is_empty() {
            sink.push(&subject, "name", "missing group name");
        } else if !groups.insert((group.folder.clone(), group.name.clone())) {
            sink.push(&subject, "name", "duplicate group name in the folder");
        }
        if group.folder.is_empty() {
            sink.push(&subject, "folder", "missing folder");
        }
        match parse_prometheus_duration(&group.interval) {
            None => sink.push(
                &subject,
                "interval",
                format!("{:?} is not a duration (e.g. 30s, 1m)", group.interval),
            ),
            Some(ms) if ms == 0 || ms % SCHEDULER_TICK_MS != 0 => sink.push(
                &subject,
                "interval",
                format!(
                    "interval ({}) should be non-zero and divided exactly by the scheduler interval: 10s",
                    group.interval
                ),
            ),
            Some(_) => {}
        }
        if group.rules.is_empty() {
            sink.push(&subject, "rules", "no rules");
        }
        for (r, rule) in group.rules.iter().enumerate() {
            let subject = if rule.uid.is_empty() {
                format!("rule groups[{g}].rules[{r}]")
            } else {
                format!("rule {}", rule.uid)
            };
            check_uid(&mut sink, &subject, "uid", &rule.uid, &mut uids);
            if !rule.title.is_empty() && !titles.insert((group.folder.clone(), rule.title.clone()))
            {
                sink.push(
                    &subject,
                    "title",
                    format!("duplicate title {:?} in the folder", rule.title),
                );
            }
            lint_rule(&mut sink, &subject, rule, ctx);
        }
    }
    sink.out
}

// ------------------------------------------------------------------------------------------
// templates.json, contact-points.json, policies.json

pub fn lint_templates(file: &str, templates: &TemplatesFile) -> Vec<Finding> {
    let mut sink = Sink::new(file);
    check_api_version(&mut sink, templates.api_version);
    let mut names = BTreeSet::new();
    let mut defined = BTreeSet::new();
    for (i, template) in templates.templates.iter().enumerate() {
        let subject = format!(
            "template {}",
            if template.name.is_empty() {
                format!("templates[{i}]")
            } else {
                template.name.clone()
            }
        );
        if template.name.is_empty() {
            sink.push(&subject, "name", "missing name");
        } else if !names.insert(template.name.clone()) {
            sink.push(&subject, "name", "duplicate template name");
        }
        if template.template.trim().is_empty() {
            sink.push(&subject, "template", "empty template");
        }
        if template.template.matches("{{").count() != template.template.matches("}}").count() {
            sink.push(&subject, "template", "unbalanced {{ and }}");
        }
        for name in template.defined_names() {
            if !defined.insert(name.clone()) {
                sink.push(&subject, "template", format!("{name:?} is defined twice"));
            }
        }
    }
    sink.out
}

/// Names defined with `{{ define }}` in every template.
pub fn defined_template_names(templates: &TemplatesFile) -> BTreeSet<String> {
    templates
        .templates
        .iter()
        .flat_map(|t| t.defined_names())
        .collect()
}

pub fn lint_contact_points(
    file: &str,
    contact_points: &ContactPointsFile,
    templates: &BTreeSet<String>,
) -> Vec<Finding> {
    let mut sink = Sink::new(file);
    check_api_version(&mut sink, contact_points.api_version);
    let mut names = BTreeSet::new();
    let mut uids = BTreeSet::new();
    for (i, cp) in contact_points.contact_points.iter().enumerate() {
        let subject = format!(
            "contact point {}",
            if cp.name.is_empty() {
                format!("contactPoints[{i}]")
            } else {
                cp.name.clone()
            }
        );
        if cp.name.is_empty() {
            sink.push(&subject, "name", "missing name");
        } else if !names.insert(cp.name.clone()) {
            sink.push(&subject, "name", "duplicate contact point name");
        }
        if cp.receivers.is_empty() {
            sink.push(&subject, "receivers", "no receivers");
        }
        for (j, receiver) in cp.receivers.iter().enumerate() {
            let at = |f: &str| format!("receivers[{j}].{f}");
            if receiver.uid.is_empty() {
                sink.push(&subject, at("uid"), "missing uid");
            } else {
                check_uid(&mut sink, &subject, &at("uid"), &receiver.uid, &mut uids);
            }
            if receiver.kind.is_empty() {
                sink.push(&subject, at("type"), "missing type");
            }
            if receiver.settings.is_empty() {
                sink.push(&subject, at("settings"), "settings must not be empty");
            }
            let required = match receiver.kind.as_str() {
                "webhook" => Some("url"),
                "email" => Some("addresses"),
                _ => None,
            };
            if let Some(key) = required {
                if receiver
                    .settings
                    .get(key)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    sink.push(
                        &subject,
                        at(&format!("settings.{key}")),
                        format!("a {} receiver needs {key}", receiver.kind),
                    );
                }
            }
            for (key, value) in &receiver.settings {
                let Some(text) = value.as_str() else { continue };
                if let Some(snippet) = unescaped_dollar(text) {
                    sink.push(
                        &subject,
                        at(&format!("settings.{key}")),
                        format!("contact-point settings are env-interpolated: {snippet:?} would be replaced; write $$"),
                    );
                }
                for used in template_names(text, "template") {
                    if !templates.contains(&used) {
                        sink.push(
                            &subject,
                            at(&format!("settings.{key}")),
                            format!("template {used:?} is not defined in grafana/templates.json"),
                        );
                    }
                }
            }
        }
    }
    sink.out
}

pub fn contact_point_names(contact_points: &ContactPointsFile) -> BTreeSet<String> {
    contact_points
        .contact_points
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

fn lint_route(
    sink: &mut Sink,
    path: &str,
    route: &Route,
    receivers: &BTreeSet<String>,
    root: bool,
) {
    let subject = "policy";
    match route.receiver.as_deref() {
        None | Some("") if root => sink.push(
            subject,
            format!("{path}.receiver"),
            "the root policy needs a receiver",
        ),
        None | Some("") => {}
        Some(name) if !receivers.contains(name) => sink.push(
            subject,
            format!("{path}.receiver"),
            format!(
                "contact point {name:?} does not exist (known: {})",
                receivers.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        ),
        Some(_) => {}
    }
    for (key, value) in [
        ("group_wait", &route.group_wait),
        ("group_interval", &route.group_interval),
        ("repeat_interval", &route.repeat_interval),
    ] {
        if let Some(text) = value {
            if parse_prometheus_duration(text).is_none() {
                sink.push(
                    subject,
                    format!("{path}.{key}"),
                    format!("{text:?} is not a duration"),
                );
            }
        }
    }
    if root && route.group_wait.is_none() {
        sink.push(
            subject,
            format!("{path}.group_wait"),
            "missing; Grafana's default is 30s, set a short one for the lab",
        );
    }
    for (i, matcher) in route.object_matchers.iter().enumerate() {
        let field = format!("{path}.object_matchers[{i}]");
        match matcher.as_slice() {
            [name, op, value] => {
                if name.is_empty() {
                    sink.push(subject, &field, "empty label name");
                }
                if !["=", "!=", "=~", "!~"].contains(&op.as_str()) {
                    sink.push(subject, &field, format!("unknown operator {op:?}"));
                }
                if let Some(snippet) = unescaped_dollar(value) {
                    sink.push(subject, &field, format!("policies are env-interpolated: {snippet:?} would be replaced; write $$"));
                }
            }
            _ => sink.push(subject, &field, "a matcher is [label, operator, value]"),
        }
    }
    for (i, child) in route.routes.iter().enumerate() {
        lint_route(
            sink,
            &format!("{path}.routes[{i}]"),
            child,
            receivers,
            false,
        );
    }
}

pub fn lint_policies(
    file: &str,
    policies: &PoliciesFile,
    receivers: &BTreeSet<String>,
) -> Vec<Finding> {
    let mut sink = Sink::new(file);
    check_api_version(&mut sink, policies.api_version);
    if policies.policies.is_empty() {
        sink.push(
            "",
            "policies",
            "no notification policy; Grafana 12.4+ then delivers nothing",
        );
    }
    let mut orgs = BTreeSet::new();
    for (i, route) in policies.policies.iter().enumerate() {
        if !orgs.insert(route.org_id.unwrap_or(1)) {
            sink.push(
                "policy",
                format!("policies[{i}].orgId"),
                "two policy trees for one organisation",
            );
        }
        lint_route(&mut sink, &format!("policies[{i}]"), route, receivers, true);
    }
    sink.out
}

// ------------------------------------------------------------------------------------------
// dashboards

/// Calls `f(path, value)` for every `"datasource"` value in a JSON tree.
fn datasource_refs<'v>(value: &'v Value, path: &str, out: &mut Vec<(String, &'v Value)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let inner_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if key == "datasource" {
                    out.push((inner_path.clone(), inner));
                }
                datasource_refs(inner, &inner_path, out);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                datasource_refs(inner, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

pub fn lint_dashboard(file: &str, dashboard: &Dashboard, ctx: &Context) -> Vec<Finding> {
    let mut sink = Sink::new(file);
    let subject = if dashboard.uid.is_empty() {
        "dashboard".to_string()
    } else {
        format!("dashboard {}", dashboard.uid)
    };
    if dashboard.uid.is_empty() {
        sink.push(
            &subject,
            "uid",
            "missing uid (links and alerts refer to dashboards by uid)",
        );
    } else if !uid_is_valid(&dashboard.uid) {
        sink.push(
            &subject,
            "uid",
            format!(
                "uid {:?} must match ^[a-zA-Z0-9-_]+$ and have at most {MAX_UID_LEN} characters",
                dashboard.uid
            ),
        );
    }
    if dashboard.title.trim().is_empty() {
        sink.push(&subject, "title", "missing title");
    }
    if dashboard.schema_version < MIN_SCHEMA_VERSION {
        sink.push(
            &subject,
            "schemaVersion",
            format!(
                "{} is older than {MIN_SCHEMA_VERSION}",
                dashboard.schema_version
            ),
        );
    }
    let mut ids = BTreeSet::new();
    for (path, panel) in dashboard.all_panels() {
        match panel.get("id").and_then(Value::as_i64) {
            None => sink.push(&subject, format!("{path}.id"), "missing panel id"),
            Some(id) if !ids.insert(id) => sink.push(
                &subject,
                format!("{path}.id"),
                format!("duplicate panel id {id}"),
            ),
            Some(_) => {}
        }
        if let Some(targets) = panel.get("targets").and_then(Value::as_array) {
            let panel_uid = panel.pointer("/datasource/uid").and_then(Value::as_str);
            let mut refs = BTreeSet::new();
            for (t, target) in targets.iter().enumerate() {
                let uid = target
                    .pointer("/datasource/uid")
                    .and_then(Value::as_str)
                    .or(panel_uid);
                let expr = target.get("expr").and_then(Value::as_str);
                if let (Some(LOKI), Some(expr)) = (uid.and_then(|u| ctx.datasource_type(u)), expr) {
                    for problem in logql::pipeline_problems(expr) {
                        sink.push(&subject, format!("{path}.targets[{t}].expr"), problem);
                    }
                }
                let ref_id = target.get("refId").and_then(Value::as_str).unwrap_or("");
                if ref_id.is_empty() {
                    sink.push(
                        &subject,
                        format!("{path}.targets[{t}].refId"),
                        "missing refId",
                    );
                } else if !refs.insert(ref_id.to_string()) {
                    sink.push(
                        &subject,
                        format!("{path}.targets[{t}].refId"),
                        format!("duplicate refId {ref_id:?}"),
                    );
                }
            }
        }
    }
    let whole = serde_json::to_value(dashboard).unwrap_or(Value::Null);
    let mut refs = Vec::new();
    datasource_refs(&whole, "", &mut refs);
    for (path, reference) in refs {
        match reference {
            Value::Null => {}
            Value::String(s) if s.starts_with('$') => {}
            Value::String(s) => sink.push(
                &subject,
                path,
                format!(
                    "data source referenced by name {s:?}; use {{\"type\": ..., \"uid\": ...}}"
                ),
            ),
            Value::Object(map) => {
                let uid = map.get("uid").and_then(Value::as_str).unwrap_or("");
                if uid.starts_with('$') || BUILTIN_DASHBOARD_DATASOURCES.contains(&uid) {
                    continue;
                }
                match ctx.datasource_type(uid) {
                    None => sink.push(
                        &subject,
                        format!("{path}.uid"),
                        format!(
                            "unknown data source uid {uid:?} (known: {})",
                            ctx.datasources
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                    Some(kind) => {
                        if let Some(declared) = map.get("type").and_then(Value::as_str) {
                            if declared != kind {
                                sink.push(
                                    &subject,
                                    format!("{path}.type"),
                                    format!(
                                        "{declared:?} but data source {uid:?} has type {kind:?}"
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            other => sink.push(
                &subject,
                path,
                format!("unexpected data source reference {other}"),
            ),
        }
    }
    sink.out
}

/// Lints every dashboard and checks their uids are unique across files.
pub fn lint_dashboards(dashboards: &[(String, Dashboard)], ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (file, dashboard) in dashboards {
        out.extend(lint_dashboard(file, dashboard, ctx));
        if dashboard.uid.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(&dashboard.uid, file) {
            out.push(Finding::new(
                file.as_str(),
                format!("dashboard {}", dashboard.uid),
                "uid",
                format!("duplicate uid {:?}, also used by {first}", dashboard.uid),
            ));
        }
    }
    out
}

/// Reads a repository-relative path for messages: forward slashes, no leading `./`.
pub fn display_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_escaping() {
        assert_eq!(unescaped_dollar("plain"), None);
        assert_eq!(unescaped_dollar("costs $$5"), None);
        assert_eq!(unescaped_dollar("$__env{URL}/x"), None);
        assert_eq!(unescaped_dollar("${URL}"), None);
        assert_eq!(unescaped_dollar("a $ b"), None);
        assert_eq!(
            unescaped_dollar("{{ $labels.x }}").as_deref(),
            Some("$labels.x }}")
        );
        assert_eq!(unescaped_dollar("$1").as_deref(), Some("$1"));
    }

    #[test]
    fn math_and_annotation_refs() {
        assert_eq!(
            math_variables("$A < 1 && ${B} > 0 && $C_2 > 0"),
            vec!["A", "B", "C_2"]
        );
        assert_eq!(
            annotation_value_refs("{{ $values.B.Value }} and {{ $values.A }}"),
            vec!["B", "A"]
        );
    }

    #[test]
    fn finding_display() {
        let f = Finding::new(
            "grafana/alert-rules.json",
            "rule alertlab-x",
            "data[0].datasourceUid",
            "unknown",
        );
        assert_eq!(
            f.to_string(),
            "grafana/alert-rules.json: rule alertlab-x: data[0].datasourceUid: unknown"
        );
        let f = Finding::new("grafana/x.json", "", "apiVersion", "must be 1");
        assert_eq!(f.to_string(), "grafana/x.json: apiVersion: must be 1");
    }
}
