//! Serde models of the provisioning files under `grafana/`: only the fields the lints and the
//! profile need are typed; everything else is kept in `extra` so a round trip loses nothing.
//!
//! The models are deliberately lenient (missing strings become `""`, free-form parts stay
//! [`Value`]) so that a broken file still parses and the lints can name the broken field instead
//! of stopping at the first serde error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The data-source uid of Grafana's server-side expressions.
pub const EXPRESSION_UID: &str = "__expr__";

/// `grafana/datasources.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DatasourcesFile {
    #[serde(rename = "apiVersion", default)]
    pub api_version: i64,
    #[serde(default)]
    pub datasources: Vec<Datasource>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Datasource {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(rename = "jsonData", default)]
    pub json_data: Map<String, Value>,
    #[serde(
        rename = "secureJsonData",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub secure_json_data: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `grafana/alert-rules.json` (Grafana's alerting provisioning format, apiVersion 1).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RulesFile {
    #[serde(rename = "apiVersion", default)]
    pub api_version: i64,
    #[serde(default)]
    pub groups: Vec<RuleGroup>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RulesFile {
    /// Every rule of every group, in file order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.groups.iter().flat_map(|g| g.rules.iter())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RuleGroup {
    #[serde(rename = "orgId", default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<i64>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub folder: String,
    #[serde(default)]
    pub interval: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Rule {
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub condition: String,
    #[serde(default)]
    pub data: Vec<Query>,
    #[serde(
        rename = "noDataState",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub no_data_state: Option<String>,
    #[serde(
        rename = "execErrState",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exec_err_state: Option<String>,
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Rule {
    /// The step whose refId is `ref_id`.
    pub fn step(&self, ref_id: &str) -> Option<&Query> {
        self.data.iter().find(|q| q.ref_id == ref_id)
    }
}

/// One entry of a rule's `data`: a data-source query or a server-side expression.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Query {
    #[serde(rename = "refId", default)]
    pub ref_id: String,
    #[serde(rename = "queryType", default, skip_serializing_if = "Option::is_none")]
    pub query_type: Option<String>,
    /// Kept as a [`Value`] so that a wrong type (`"600"`) is a lint finding, not a parse error.
    #[serde(
        rename = "relativeTimeRange",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub relative_time_range: Option<Value>,
    #[serde(rename = "datasourceUid", default)]
    pub datasource_uid: String,
    #[serde(default)]
    pub model: Value,
}

impl Query {
    pub fn is_expression(&self) -> bool {
        self.datasource_uid == EXPRESSION_UID
    }

    fn model_str(&self, key: &str) -> Option<&str> {
        self.model.get(key).and_then(Value::as_str)
    }

    /// `model.expr` (PromQL or LogQL).
    pub fn expr(&self) -> Option<&str> {
        self.model_str("expr")
    }

    /// `model.rawSql` (SQL data sources).
    pub fn raw_sql(&self) -> Option<&str> {
        self.model_str("rawSql")
    }

    /// `model.type` of a server-side expression (`reduce`, `threshold`, `math`, ...).
    pub fn expression_type(&self) -> Option<&str> {
        self.model_str("type")
    }
}

/// `grafana/contact-points.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ContactPointsFile {
    #[serde(rename = "apiVersion", default)]
    pub api_version: i64,
    #[serde(rename = "contactPoints", default)]
    pub contact_points: Vec<ContactPoint>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ContactPoint {
    #[serde(rename = "orgId", default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<i64>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Receiver {
    #[serde(default)]
    pub uid: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `grafana/policies.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PoliciesFile {
    #[serde(rename = "apiVersion", default)]
    pub api_version: i64,
    #[serde(default)]
    pub policies: Vec<Route>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A notification policy (the root of the tree, or a nested route).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Route {
    #[serde(rename = "orgId", default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_matchers: Vec<Vec<String>>,
    #[serde(rename = "continue", default)]
    pub continue_matching: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `grafana/templates.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TemplatesFile {
    #[serde(rename = "apiVersion", default)]
    pub api_version: i64,
    #[serde(default)]
    pub templates: Vec<Template>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Template {
    #[serde(rename = "orgId", default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<i64>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub template: String,
}

impl Template {
    /// Names defined with `{{ define "name" }}` in this template.
    pub fn defined_names(&self) -> Vec<String> {
        template_names(&self.template, "define")
    }
}

/// The quoted names of `{{ <action> "name" ... }}` actions (`define`, `template`) in a Go
/// template, with or without whitespace trimming (`{{-`).
pub fn template_names(text: &str, action: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        let inner = rest.trim_start_matches('-').trim_start();
        if let Some(after) = inner.strip_prefix(action) {
            let after = after.trim_start();
            if let Some(quoted) = after.strip_prefix('"') {
                if let Some(end) = quoted.find('"') {
                    names.push(quoted[..end].to_string());
                }
            }
        }
    }
    names
}

/// One file of `grafana/dashboards/`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Dashboard {
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub title: String,
    #[serde(rename = "schemaVersion", default)]
    pub schema_version: i64,
    #[serde(default)]
    pub panels: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templating: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Dashboard {
    /// Every panel with its JSON path, including panels nested in collapsed rows.
    pub fn all_panels(&self) -> Vec<(String, &Value)> {
        let mut out = Vec::new();
        for (i, panel) in self.panels.iter().enumerate() {
            let path = format!("panels[{i}]");
            if let Some(nested) = panel.get("panels").and_then(Value::as_array) {
                for (j, inner) in nested.iter().enumerate() {
                    out.push((format!("{path}.panels[{j}]"), inner));
                }
            }
            out.push((path, panel));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names_finds_defines_with_and_without_trimming() {
        let text = r#"{{ define "a" }}x{{ end }}{{- define "b.c" -}}{{ template "a" . }}{{ end }}"#;
        assert_eq!(template_names(text, "define"), vec!["a", "b.c"]);
        assert_eq!(template_names(text, "template"), vec!["a"]);
    }
}
