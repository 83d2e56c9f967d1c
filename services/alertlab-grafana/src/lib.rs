//! The Grafana files of the lab (`grafana/` at the repository root) as typed data, with the
//! checks that keep them loadable and meaningful.
//!
//! - [`model`]: serde models of datasources, alert rules, contact points, policies, templates and
//!   dashboards.
//! - [`profile`]: the `demo` / `fast` timing profiles, the same transformation as
//!   `grafana/profile.nix`.
//! - [`lint`]: structure and cross-reference checks returning [`Finding`]s that name file,
//!   rule (or dashboard) and field.
//! - [`logql`]: the log pipelines of LogQL expressions and the rules they follow.
//! - [`query`]: metric names, Loki selector labels and SQL used by the files, for tests against
//!   the real services, Promtail labels and PostgreSQL.
//!
//! - [`render`]: every panel query as Grafana sends it (variables, intervals, macros), to run
//!   the dashboards against real data sources.
//!
//! [`GrafanaFiles::load`] reads everything; [`lint_repo`] runs every check.

pub mod duration;
pub mod lint;
pub mod logql;
pub mod model;
pub mod profile;
pub mod query;
pub mod render;

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use lint::{Context, Finding};
use model::{
    ContactPointsFile, Dashboard, DatasourcesFile, PoliciesFile, RulesFile, TemplatesFile,
};
pub use profile::Profile;
pub use query::{loki_selector_labels, metric_names_in_promql};

pub const DATASOURCES: &str = "grafana/datasources.json";
pub const ALERT_RULES: &str = "grafana/alert-rules.json";
pub const CONTACT_POINTS: &str = "grafana/contact-points.json";
pub const POLICIES: &str = "grafana/policies.json";
pub const TEMPLATES: &str = "grafana/templates.json";
pub const DASHBOARDS_DIR: &str = "grafana/dashboards";
pub const PROFILE_NIX: &str = "grafana/profile.nix";

/// The repository root: `$ALERTLAB_REPO_ROOT` if set, else two levels above this crate.
pub fn repo_root() -> PathBuf {
    match std::env::var_os("ALERTLAB_REPO_ROOT") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    }
}

/// Reads and parses a JSON file given relative to `root`; a failure is a [`Finding`] on it.
pub fn read_json<T: DeserializeOwned>(root: &Path, relative: &str) -> Result<T, Finding> {
    let text = fs::read_to_string(root.join(relative))
        .map_err(|e| Finding::new(relative, "", "", format!("cannot read: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| Finding::new(relative, "", "", format!("cannot parse: {e}")))
}

/// Every Grafana file of the repository, parsed.
#[derive(Debug, Clone)]
pub struct GrafanaFiles {
    pub root: PathBuf,
    pub datasources: DatasourcesFile,
    pub rules: RulesFile,
    /// `grafana/alert-rules.json` as plain JSON, the input of [`profile::apply`].
    pub rules_json: Value,
    pub contact_points: ContactPointsFile,
    pub policies: PoliciesFile,
    pub templates: TemplatesFile,
    /// Repository-relative path and dashboard, sorted by path.
    pub dashboards: Vec<(String, Dashboard)>,
}

/// Repository-relative paths of the dashboard files, sorted.
pub fn dashboard_paths(root: &Path) -> Result<Vec<String>, Finding> {
    let dir = root.join(DASHBOARDS_DIR);
    let entries = fs::read_dir(&dir)
        .map_err(|e| Finding::new(DASHBOARDS_DIR, "", "", format!("cannot list: {e}")))?;
    let mut paths: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| lint::display_path(root, &p))
        .collect();
    paths.sort();
    Ok(paths)
}

impl GrafanaFiles {
    /// Loads every file; the error lists each file that could not be read or parsed.
    pub fn load(root: &Path) -> Result<Self, Vec<Finding>> {
        fn take<T>(errors: &mut Vec<Finding>, result: Result<T, Finding>) -> Option<T> {
            result.map_err(|e| errors.push(e)).ok()
        }
        let mut errors = Vec::new();
        let errs = &mut errors;
        let datasources = take(errs, read_json(root, DATASOURCES));
        let rules = take(errs, read_json(root, ALERT_RULES));
        let rules_json = take(errs, read_json(root, ALERT_RULES));
        let contact_points = take(errs, read_json(root, CONTACT_POINTS));
        let policies = take(errs, read_json(root, POLICIES));
        let templates = take(errs, read_json(root, TEMPLATES));
        let mut dashboards = Vec::new();
        if let Some(paths) = take(errs, dashboard_paths(root)) {
            for path in paths {
                if let Some(d) = take(errs, read_json(root, &path)) {
                    dashboards.push((path, d));
                }
            }
        }
        match (
            datasources,
            rules,
            rules_json,
            contact_points,
            policies,
            templates,
        ) {
            (
                Some(datasources),
                Some(rules),
                Some(rules_json),
                Some(contact_points),
                Some(policies),
                Some(templates),
            ) if errors.is_empty() => Ok(Self {
                root: root.to_path_buf(),
                datasources,
                rules,
                rules_json,
                contact_points,
                policies,
                templates,
                dashboards,
            }),
            _ => Err(errors),
        }
    }

    /// What the checks of one file need to know about the others.
    pub fn context(&self) -> Context {
        context_from(&self.root, &self.datasources, &self.dashboards)
    }

    /// Runs every check over every file.
    pub fn lint(&self) -> Vec<Finding> {
        let ctx = self.context();
        let mut out = lint::lint_datasources(DATASOURCES, &self.datasources);
        out.extend(lint::lint_rules(ALERT_RULES, &self.rules, &ctx));
        out.extend(lint::lint_templates(TEMPLATES, &self.templates));
        let templates = lint::defined_template_names(&self.templates);
        out.extend(lint::lint_contact_points(
            CONTACT_POINTS,
            &self.contact_points,
            &templates,
        ));
        let receivers = lint::contact_point_names(&self.contact_points);
        out.extend(lint::lint_policies(POLICIES, &self.policies, &receivers));
        out.extend(lint::lint_dashboards(&self.dashboards, &ctx));
        out
    }

    /// Every query of every rule and dashboard.
    pub fn queries(&self) -> Vec<QueryRef> {
        let ctx = self.context();
        let mut out = Vec::new();
        for rule in self.rules.rules() {
            for (k, q) in rule.data.iter().enumerate() {
                let Some(language) = ctx
                    .datasource_type(&q.datasource_uid)
                    .and_then(Language::of)
                else {
                    continue;
                };
                let (key, text) = match language {
                    Language::Sql => ("rawSql", q.raw_sql()),
                    _ => ("expr", q.expr()),
                };
                if let Some(text) = text {
                    out.push(QueryRef {
                        file: ALERT_RULES.to_string(),
                        subject: format!("rule {}", rule.uid),
                        field: format!("data[{k}].model.{key}"),
                        language,
                        text: text.to_string(),
                        alerting: true,
                    });
                }
            }
        }
        for (file, dashboard) in &self.dashboards {
            let subject = format!("dashboard {}", dashboard.uid);
            for (path, panel) in dashboard.all_panels() {
                let panel_uid = panel.pointer("/datasource/uid").and_then(Value::as_str);
                let Some(targets) = panel.get("targets").and_then(Value::as_array) else {
                    continue;
                };
                for (t, target) in targets.iter().enumerate() {
                    if let Some((language, key, text)) = ctx.panel_target_query(panel_uid, target) {
                        out.push(QueryRef {
                            file: file.clone(),
                            subject: subject.clone(),
                            field: format!("{path}.targets[{t}].{key}"),
                            language,
                            text: text.to_string(),
                            alerting: false,
                        });
                    }
                }
            }
            let variables = dashboard
                .templating
                .as_ref()
                .and_then(|t| t.get("list"))
                .and_then(Value::as_array);
            for (v, variable) in variables.into_iter().flatten().enumerate() {
                if variable.get("type").and_then(Value::as_str) != Some("query") {
                    continue;
                }
                let uid = variable.pointer("/datasource/uid").and_then(Value::as_str);
                let Some(language) = uid
                    .and_then(|u| ctx.datasource_type(u))
                    .and_then(Language::of)
                else {
                    continue;
                };
                let query = variable.get("query").and_then(|q| {
                    q.as_str()
                        .or_else(|| q.get("query").and_then(Value::as_str))
                });
                if let Some(text) = query {
                    out.push(QueryRef {
                        file: file.clone(),
                        subject: subject.clone(),
                        field: format!("templating.list[{v}].query"),
                        language,
                        text: strip_label_values(text),
                        alerting: false,
                    });
                }
            }
        }
        out
    }

    /// Metric names used by every PromQL query (rules and dashboards).
    pub fn promql_metric_names(&self) -> BTreeSet<String> {
        self.queries()
            .iter()
            .filter(|q| q.language == Language::PromQL)
            .flat_map(|q| metric_names_in_promql(&q.text))
            .collect()
    }

    /// Label names used in every Loki stream selector (rules and dashboards).
    pub fn loki_selector_label_names(&self) -> BTreeSet<String> {
        self.queries()
            .iter()
            .filter(|q| q.language == Language::LogQL)
            .flat_map(|q| loki_selector_labels(&q.text))
            .collect()
    }

    /// The SQL of every query (alert SQL is macro-free; dashboard SQL may need
    /// [`query::expand_postgres_macros`]).
    pub fn sql_queries(&self) -> Vec<QueryRef> {
        self.queries()
            .into_iter()
            .filter(|q| q.language == Language::Sql)
            .collect()
    }
}

/// `label_values(up{job="x"}, service)` → `up{job="x"}` (the metric part of a variable query).
fn strip_label_values(query: &str) -> String {
    let trimmed = query.trim();
    match trimmed
        .strip_prefix("label_values(")
        .and_then(|inner| inner.strip_suffix(')'))
    {
        Some(inner) => match inner.rfind(',') {
            Some(comma) => inner[..comma].trim().to_string(),
            None => String::new(),
        },
        None => trimmed.to_string(),
    }
}

fn context_from(
    root: &Path,
    datasources: &DatasourcesFile,
    dashboards: &[(String, Dashboard)],
) -> Context {
    Context {
        repo_root: root.to_path_buf(),
        datasources: datasources
            .datasources
            .iter()
            .map(|d| (d.uid.clone(), d.kind.clone()))
            .collect(),
        dashboard_uids: dashboards
            .iter()
            .map(|(_, d)| d.uid.clone())
            .filter(|u| !u.is_empty())
            .collect(),
    }
}

/// The query language of a data-source type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Language {
    PromQL,
    LogQL,
    Sql,
}

impl Language {
    pub fn of(datasource_type: &str) -> Option<Self> {
        match datasource_type {
            "prometheus" => Some(Language::PromQL),
            "loki" => Some(Language::LogQL),
            "grafana-postgresql-datasource" | "postgres" => Some(Language::Sql),
            _ => None,
        }
    }
}

/// One query found in the files, located like a [`Finding`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRef {
    pub file: String,
    pub subject: String,
    pub field: String,
    pub language: Language,
    pub text: String,
    /// True for alert-rule queries, false for dashboard queries.
    pub alerting: bool,
}

/// Runs every check on the repository at `root`. Files that cannot be read or parsed are
/// findings too.
pub fn lint_repo(root: &Path) -> Vec<Finding> {
    match GrafanaFiles::load(root) {
        Ok(files) => files.lint(),
        Err(errors) => errors,
    }
}

/// Context built from the repository's real datasources and dashboards, for checking one
/// other file (a fixture) against them.
pub fn repo_context(root: &Path) -> Result<Context, Finding> {
    let datasources: DatasourcesFile = read_json(root, DATASOURCES)?;
    let mut dashboards = Vec::new();
    for path in dashboard_paths(root)? {
        let dashboard: Dashboard = read_json(root, &path)?;
        dashboards.push((path, dashboard));
    }
    Ok(context_from(root, &datasources, &dashboards))
}

/// Lints one alert-rules file (relative to `root`) against the repository's data sources,
/// dashboards and runbooks.
pub fn lint_rules_file(root: &Path, relative: &str) -> Vec<Finding> {
    let ctx = match repo_context(root) {
        Ok(ctx) => ctx,
        Err(e) => return vec![e],
    };
    match read_json::<RulesFile>(root, relative) {
        Ok(rules) => lint::lint_rules(relative, &rules, &ctx),
        Err(e) => vec![e],
    }
}

/// Lints one policies file (relative to `root`) against the repository's contact points.
pub fn lint_policies_file(root: &Path, relative: &str) -> Vec<Finding> {
    let contact_points: ContactPointsFile = match read_json(root, CONTACT_POINTS) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    match read_json::<PoliciesFile>(root, relative) {
        Ok(policies) => lint::lint_policies(
            relative,
            &policies,
            &lint::contact_point_names(&contact_points),
        ),
        Err(e) => vec![e],
    }
}

/// Lints one contact-points file (relative to `root`) against the repository's templates.
pub fn lint_contact_points_file(root: &Path, relative: &str) -> Vec<Finding> {
    let templates: TemplatesFile = match read_json(root, TEMPLATES) {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    match read_json::<ContactPointsFile>(root, relative) {
        Ok(cps) => {
            lint::lint_contact_points(relative, &cps, &lint::defined_template_names(&templates))
        }
        Err(e) => vec![e],
    }
}

/// Lints one dashboard file (relative to `root`) against the repository's data sources.
pub fn lint_dashboard_file(root: &Path, relative: &str) -> Vec<Finding> {
    let ctx = match repo_context(root) {
        Ok(ctx) => ctx,
        Err(e) => return vec![e],
    };
    match read_json::<Dashboard>(root, relative) {
        Ok(d) => lint::lint_dashboard(relative, &d, &ctx),
        Err(e) => vec![e],
    }
}

/// Lints one datasources file (relative to `root`).
pub fn lint_datasources_file(root: &Path, relative: &str) -> Vec<Finding> {
    match read_json::<DatasourcesFile>(root, relative) {
        Ok(d) => lint::lint_datasources(relative, &d),
        Err(e) => vec![e],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_keeps_the_metric_part() {
        assert_eq!(
            strip_label_values(r#"label_values(up{job=~"a,b"}, service)"#),
            r#"up{job=~"a,b"}"#
        );
        assert_eq!(strip_label_values("up"), "up");
    }
}
