//! Grafana's HTTP API as labctl reads it (rules endpoint, Alertmanager alerts, annotations,
//! health), and the two notification sinks (our webhook sink and Mailpit).
//!
//! Shapes follow Grafana 12's `/api/prometheus/grafana/api/v1/rules` and Alertmanager v2; the
//! models are lenient (unknown fields ignored, most fields optional) and normalised into
//! [`RuleSnapshot`]s, which is what `alerts` and `verify` work with.

use std::{collections::BTreeMap, fs, path::PathBuf, time::Duration};

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http;

// ------------------------------------------------------------------------------------------
// Rules endpoint

#[derive(Debug, Clone, Deserialize)]
pub struct RulesResponse {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub data: Option<RulesData>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RulesData {
    #[serde(default)]
    pub groups: Vec<ApiGroup>,
    #[serde(default)]
    pub totals: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGroup {
    #[serde(default)]
    pub name: String,
    /// The folder's full path.
    #[serde(default)]
    pub file: String,
    /// Seconds.
    #[serde(default)]
    pub interval: Option<f64>,
    #[serde(default)]
    pub last_evaluation: Option<String>,
    #[serde(default)]
    pub rules: Vec<ApiRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRule {
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_evaluation: Option<String>,
    /// The pending period, seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub alerts: Vec<ApiAlert>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiAlert {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub active_at: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// A rule's state as the rules endpoint reports it (lower-case there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleState {
    Inactive,
    Pending,
    Firing,
    Recovering,
    Unknown,
}

impl RuleState {
    pub fn parse(text: &str) -> Self {
        match text.to_ascii_lowercase().as_str() {
            "inactive" | "normal" | "ok" => Self::Inactive,
            "pending" => Self::Pending,
            "firing" | "alerting" => Self::Firing,
            "recovering" => Self::Recovering,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Recovering => "recovering",
            Self::Unknown => "unknown",
        }
    }
}

/// An instance's state (`Alerting`, `Normal (MissingSeries)`, ...): the state and the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InstanceState {
    Normal,
    Pending,
    Alerting,
    NoData,
    Error,
    Recovering,
    Unknown,
}

impl InstanceState {
    /// Parses `Alerting`, `Alerting (NoData)`, `Normal (MissingSeries)` by prefix.
    pub fn parse(text: &str) -> (Self, Option<String>) {
        let (head, reason) = match text.split_once('(') {
            Some((h, r)) => (h.trim(), Some(r.trim_end_matches(')').trim().to_owned())),
            None => (text.trim(), None),
        };
        let state = match head {
            "Normal" => Self::Normal,
            "Pending" => Self::Pending,
            "Alerting" => Self::Alerting,
            "NoData" => Self::NoData,
            "Error" => Self::Error,
            "Recovering" => Self::Recovering,
            _ => Self::Unknown,
        };
        (state, reason)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub labels: BTreeMap<String, String>,
    pub state: InstanceState,
    pub reason: Option<String>,
    pub value: Option<String>,
}

/// One rule, normalised.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSnapshot {
    pub uid: Option<String>,
    pub title: String,
    pub group: String,
    pub folder: String,
    pub interval_s: Option<f64>,
    pub for_s: Option<f64>,
    pub state: RuleState,
    /// `ok`, `error`, `nodata`, `unknown`.
    pub health: String,
    pub last_error: Option<String>,
    /// None when never evaluated (Grafana reports `0001-01-01T00:00:00Z` then).
    pub last_evaluation: Option<DateTime<Utc>>,
    pub labels: BTreeMap<String, String>,
    pub instances: Vec<Instance>,
}

impl RuleSnapshot {
    /// Firing, by its own state or by an instance in `Alerting`.
    pub fn is_firing(&self) -> bool {
        self.state == RuleState::Firing
            || self
                .instances
                .iter()
                .any(|i| i.state == InstanceState::Alerting)
    }

    pub fn is_pending(&self) -> bool {
        self.state == RuleState::Pending
            || self
                .instances
                .iter()
                .any(|i| i.state == InstanceState::Pending)
    }

    /// Inactive: no instance Alerting, Pending or Recovering.
    pub fn is_normal(&self) -> bool {
        self.state == RuleState::Inactive
            && !self.instances.iter().any(|i| {
                matches!(
                    i.state,
                    InstanceState::Alerting | InstanceState::Pending | InstanceState::Recovering
                )
            })
    }

    /// Health is not ok, or an instance is in NoData / Error.
    pub fn health_problem(&self) -> Option<String> {
        let bad_instance = self
            .instances
            .iter()
            .find(|i| matches!(i.state, InstanceState::NoData | InstanceState::Error));
        if self.health.is_empty() || self.health == "ok" || self.health == "unknown" {
            if let Some(i) = bad_instance {
                return Some(format!("an instance is in {:?}", i.state));
            }
            return None;
        }
        Some(match self.last_error.as_deref().filter(|e| !e.is_empty()) {
            Some(err) => format!("health {}: {err}", self.health),
            None => format!("health {}", self.health),
        })
    }

    /// Instances that are not Normal, described with their own labels.
    pub fn active_instances(&self) -> Vec<&Instance> {
        self.instances
            .iter()
            .filter(|i| i.state != InstanceState::Normal)
            .collect()
    }
}

/// Labels Grafana adds to every instance or that every lab rule has; not worth showing.
pub const COMMON_LABELS: &[&str] = &["alertname", "grafana_folder", "scenario", "severity"];

/// `service=api, method=card`: an instance's distinguishing labels.
pub fn instance_labels(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels
        .iter()
        .filter(|(k, _)| !COMMON_LABELS.contains(&k.as_str()) && !k.starts_with("__"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

/// A Grafana time; the zero time (`0001-01-01...`) means "never".
pub fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(text?)
        .ok()?
        .with_timezone(&Utc);
    (t.timestamp() > 0).then_some(t)
}

impl RulesResponse {
    /// Every rule, normalised; an error answer is an error.
    pub fn snapshots(&self) -> anyhow::Result<Vec<RuleSnapshot>> {
        if self.status != "success" {
            return Err(anyhow!(
                "the rules endpoint answered status `{}`{}",
                self.status,
                self.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
        let mut out = Vec::new();
        for group in self.data.iter().flat_map(|d| d.groups.iter()) {
            let group_eval = parse_time(group.last_evaluation.as_deref());
            for rule in &group.rules {
                let instances = rule
                    .alerts
                    .iter()
                    .map(|a| {
                        let (state, reason) = InstanceState::parse(&a.state);
                        Instance {
                            labels: a.labels.clone(),
                            state,
                            reason,
                            value: a.value.clone(),
                        }
                    })
                    .collect();
                out.push(RuleSnapshot {
                    uid: rule.uid.clone().filter(|u| !u.is_empty()),
                    title: rule.name.clone(),
                    group: group.name.clone(),
                    folder: group.file.clone(),
                    interval_s: group.interval,
                    for_s: rule.duration,
                    state: RuleState::parse(&rule.state),
                    health: rule.health.clone(),
                    last_error: rule.last_error.clone().filter(|e| !e.is_empty()),
                    // The rule's own time when it has one (the zero time: never evaluated),
                    // else its group's.
                    last_evaluation: match rule.last_evaluation.as_deref() {
                        Some(t) => parse_time(Some(t)),
                        None => group_eval,
                    },
                    labels: rule.labels.clone(),
                    instances,
                });
            }
        }
        Ok(out)
    }
}

/// The snapshot of the rule with `uid` (or, for older Grafanas without uids, `title`).
pub fn find_rule<'a>(
    snapshots: &'a [RuleSnapshot],
    uid: &str,
    title: &str,
) -> Option<&'a RuleSnapshot> {
    snapshots
        .iter()
        .find(|s| s.uid.as_deref() == Some(uid))
        .or_else(|| {
            snapshots
                .iter()
                .find(|s| s.uid.is_none() && s.title == title)
        })
}

// ------------------------------------------------------------------------------------------
// Alertmanager

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmAlert {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub receivers: Vec<AmReceiver>,
    #[serde(default)]
    pub status: AmStatus,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AmReceiver {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmStatus {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub silenced_by: Vec<String>,
    #[serde(default)]
    pub inhibited_by: Vec<String>,
}

impl AmAlert {
    pub fn alertname(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn is_active(&self) -> bool {
        self.status.state == "active"
    }

    /// `DatasourceError` / `DatasourceNoData` alerts name their rule in `rulename`.
    pub fn datasource_problem(&self) -> Option<(&str, &str)> {
        let name = self.alertname();
        if name == "DatasourceError" || name == "DatasourceNoData" {
            Some((
                name,
                self.labels
                    .get("rulename")
                    .map(String::as_str)
                    .unwrap_or(""),
            ))
        } else {
            None
        }
    }
}

// ------------------------------------------------------------------------------------------
// Client

#[derive(Debug, Clone)]
pub struct Grafana {
    client: reqwest::Client,
    pub base: String,
    user: String,
    password: String,
}

pub const RULES_PATH: &str = "/api/prometheus/grafana/api/v1/rules";
pub const AM_ALERTS_PATH: &str = "/api/alertmanager/grafana/api/v2/alerts";

impl Grafana {
    pub fn new(client: reqwest::Client, base: &str, user: &str, password: String) -> Self {
        Self {
            client,
            base: http::base(base),
            user: user.to_owned(),
            password,
        }
    }

    /// The password: the file's first line, else $LABCTL_GRAFANA_PASSWORD, else `admin`.
    pub fn password(file: Option<&PathBuf>) -> anyhow::Result<String> {
        if let Some(path) = file {
            let text = fs::read_to_string(path).with_context(|| {
                format!("cannot read --grafana-password-file {}", path.display())
            })?;
            let password = text.lines().next().unwrap_or("").trim().to_owned();
            if password.is_empty() {
                return Err(anyhow!(
                    "--grafana-password-file {} is empty",
                    path.display()
                ));
            }
            return Ok(password);
        }
        Ok(std::env::var("LABCTL_GRAFANA_PASSWORD").unwrap_or_else(|_| "admin".into()))
    }

    fn auth(&self) -> Option<(&str, &str)> {
        Some((&self.user, &self.password))
    }

    /// `GET /api/health` (no auth): Grafana is up and its database is ok.
    pub async fn health(&self) -> anyhow::Result<Value> {
        let health: Value =
            http::get_json(&self.client, "Grafana", &self.base, "/api/health", None).await?;
        match health.get("database").and_then(Value::as_str) {
            Some("ok") | None => Ok(health),
            Some(other) => Err(anyhow!(
                "Grafana at {} reports its database as `{other}`",
                self.base
            )),
        }
    }

    pub async fn rules(&self) -> anyhow::Result<Vec<RuleSnapshot>> {
        let response: RulesResponse =
            http::get_json(&self.client, "Grafana", &self.base, RULES_PATH, self.auth()).await?;
        response
            .snapshots()
            .with_context(|| format!("Grafana at {}", self.base))
    }

    pub async fn alertmanager_alerts(&self) -> anyhow::Result<Vec<AmAlert>> {
        http::get_json(
            &self.client,
            "Grafana",
            &self.base,
            AM_ALERTS_PATH,
            self.auth(),
        )
        .await
    }

    /// `GET /api/datasources/uid/{uid}/health`: `Ok(message)` when Grafana reaches the data
    /// source, `Err(message)` when it answers that it cannot (an unreachable Grafana or
    /// refused credentials are the outer error).
    pub async fn datasource_health(&self, uid: &str) -> anyhow::Result<Result<String, String>> {
        let path = format!("/api/datasources/uid/{uid}/health");
        let request = self
            .client
            .get(format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password));
        let response = http::send("Grafana", &self.base, request).await?;
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403) {
            let body = response.text().await.unwrap_or_default();
            return Err(http::status_error(
                "Grafana", &self.base, &path, status, &body,
            ));
        }
        let body: Value = http::json("Grafana", &self.base, &path, response).await?;
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(
            if status.is_success() && body.get("status").and_then(Value::as_str) == Some("OK") {
                Ok(message)
            } else {
                Err(format!("HTTP {}: {message}", status.as_u16()))
            },
        )
    }

    /// Writes an annotation (`POST /api/annotations`); returns its id.
    pub async fn annotate(&self, tags: &[String], text: &str) -> anyhow::Result<i64> {
        let body = annotation_body(tags, text, Utc::now());
        let request = self
            .client
            .post(format!("{}/api/annotations", self.base))
            .basic_auth(&self.user, Some(&self.password))
            .timeout(Duration::from_secs(5))
            .json(&body);
        let response = http::send("Grafana", &self.base, request).await?;
        let response =
            http::expect_success("Grafana", &self.base, "/api/annotations", response).await?;
        let answer: AnnotationCreated =
            http::json("Grafana", &self.base, "/api/annotations", response).await?;
        Ok(answer.id)
    }
}

/// The body of `POST /api/annotations`: an organisation-wide annotation at `at`.
pub fn annotation_body(tags: &[String], text: &str, at: DateTime<Utc>) -> Value {
    json!({
        "time": at.timestamp_millis(),
        "tags": tags,
        "text": text,
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct AnnotationCreated {
    pub id: i64,
    #[serde(default)]
    pub message: String,
}

// ------------------------------------------------------------------------------------------
// Sinks

/// One record of the webhook sink (`GET /notifications`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SinkRecord {
    pub seq: u64,
    pub received_at: DateTime<Utc>,
    pub payload: Value,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SinkList {
    pub notifications: Vec<SinkRecord>,
}

/// What a Grafana webhook notification says about one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifiedAlert {
    pub alertname: String,
    /// `firing` or `resolved`.
    pub status: String,
}

/// The alerts of a Grafana webhook payload (`alerts[].labels.alertname` and `status`).
pub fn webhook_alerts(payload: &Value) -> Vec<NotifiedAlert> {
    let group_status = payload.get("status").and_then(Value::as_str).unwrap_or("");
    payload
        .get("alerts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let alertname = a.pointer("/labels/alertname")?.as_str()?.to_owned();
            let status = a
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or(group_status)
                .to_owned();
            Some(NotifiedAlert { alertname, status })
        })
        .collect()
}

/// Mailpit's `GET /api/v1/messages`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MailpitList {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub messages: Vec<MailMessage>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MailMessage {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Subject", default)]
    pub subject: String,
    #[serde(rename = "Created", default)]
    pub created: Option<DateTime<Utc>>,
    #[serde(rename = "To", default)]
    pub to: Vec<MailAddress>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MailAddress {
    #[serde(rename = "Address", default)]
    pub address: String,
}

/// What an alertlab email subject says: (`FIRING` | `RESOLVED`, alertname), from the
/// `alertlab.title` template: `[FIRING:2] High latency`, `[RESOLVED] High latency`.
pub fn parse_subject(subject: &str) -> Option<(String, String)> {
    let rest = subject.trim().strip_prefix('[')?;
    let (tag, name) = rest.split_once(']')?;
    let status = tag.split(':').next()?.trim().to_ascii_lowercase();
    Some((status, name.trim().to_owned()))
}

/// Reads the two sinks.
#[derive(Debug, Clone)]
pub struct Sinks {
    client: reqwest::Client,
    pub sink: String,
    pub mailpit: String,
}

impl Sinks {
    pub fn new(client: reqwest::Client, sink: &str, mailpit: &str) -> Self {
        Self {
            client,
            sink: http::base(sink),
            mailpit: http::base(mailpit),
        }
    }

    pub async fn sink_health(&self) -> anyhow::Result<Value> {
        http::get_json(
            &self.client,
            "the webhook sink",
            &self.sink,
            "/healthz",
            None,
        )
        .await
    }

    pub async fn webhook(&self, since: Option<DateTime<Utc>>) -> anyhow::Result<Vec<SinkRecord>> {
        let path = match since {
            Some(t) => format!("/notifications?since={}", t.timestamp()),
            None => "/notifications".into(),
        };
        let list: SinkList =
            http::get_json(&self.client, "the webhook sink", &self.sink, &path, None).await?;
        Ok(list.notifications)
    }

    pub async fn mail(&self) -> anyhow::Result<Vec<MailMessage>> {
        let list: MailpitList = http::get_json(
            &self.client,
            "Mailpit",
            &self.mailpit,
            "/api/v1/messages?limit=1000",
            None,
        )
        .await?;
        Ok(list.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_states_are_matched_by_prefix() {
        assert_eq!(
            InstanceState::parse("Alerting"),
            (InstanceState::Alerting, None)
        );
        assert_eq!(
            InstanceState::parse("Alerting (NoData)"),
            (InstanceState::Alerting, Some("NoData".into()))
        );
        assert_eq!(
            InstanceState::parse("Normal (MissingSeries)"),
            (InstanceState::Normal, Some("MissingSeries".into()))
        );
        assert_eq!(InstanceState::parse("Weird").0, InstanceState::Unknown);
    }

    #[test]
    fn subjects_name_status_and_rule() {
        assert_eq!(
            parse_subject("[FIRING:2] High latency"),
            Some(("firing".into(), "High latency".into()))
        );
        assert_eq!(
            parse_subject("[RESOLVED] Service down"),
            Some(("resolved".into(), "Service down".into()))
        );
        assert_eq!(parse_subject("hello"), None);
    }

    #[test]
    fn the_zero_time_means_never() {
        assert_eq!(parse_time(Some("0001-01-01T00:00:00Z")), None);
        assert!(parse_time(Some("2026-05-01T10:00:00Z")).is_some());
        assert_eq!(parse_time(None), None);
    }
}
