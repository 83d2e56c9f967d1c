//! The rule catalog labctl works from: `grafana/alert-rules.json` (built in, or a file) in a
//! timing profile, with each rule's group interval, pending period, scenario and the kind of
//! each data source it queries.

use std::{collections::BTreeMap, fs, path::Path};

use alertlab_grafana::{
    duration::parse_prometheus_duration,
    model::{DatasourcesFile, Rule, RulesFile},
    profile, Language, Profile,
};
use anyhow::{anyhow, Context};
use serde_json::Value;

/// `grafana/alert-rules.json` as built into labctl.
pub const EMBEDDED_RULES: &str = include_str!("../../../grafana/alert-rules.json");
/// `grafana/datasources.json` as built into labctl.
pub const EMBEDDED_DATASOURCES: &str = include_str!("../../../grafana/datasources.json");

/// One rule with what labctl needs to know about it.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub uid: String,
    pub title: String,
    pub group: String,
    pub folder: String,
    /// The group's evaluation interval, seconds.
    pub interval_s: u64,
    /// The pending period (`for`), seconds.
    pub for_s: u64,
    /// The `scenario` label: the failure that must fire it.
    pub scenario: String,
    pub severity: String,
    pub rule: Rule,
}

impl RuleInfo {
    /// The query languages of the rule's data-source queries.
    pub fn languages(&self, datasources: &BTreeMap<String, String>) -> Vec<Language> {
        let mut out: Vec<Language> = self
            .rule
            .data
            .iter()
            .filter(|q| !q.is_expression())
            .filter_map(|q| {
                datasources
                    .get(&q.datasource_uid)
                    .and_then(|kind| Language::of(kind))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The rules and the data sources they refer to.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub profile: Profile,
    pub rules: Vec<RuleInfo>,
    /// Data-source uid → type (`prometheus`, `loki`, `grafana-postgresql-datasource`).
    pub datasources: BTreeMap<String, String>,
}

impl Catalog {
    /// Loads the rules (a file, or the built-in copy) in `profile`, and the data sources.
    pub fn load(
        rules_file: Option<&Path>,
        datasources_file: Option<&Path>,
        profile: &str,
    ) -> anyhow::Result<Self> {
        let profile: Profile = profile.parse().map_err(|e| anyhow!("--profile: {e}"))?;
        let rules_text = match rules_file {
            Some(path) => fs::read_to_string(path)
                .with_context(|| format!("cannot read the rules file {}", path.display()))?,
            None => EMBEDDED_RULES.to_owned(),
        };
        let datasources_text = match datasources_file {
            Some(path) => fs::read_to_string(path)
                .with_context(|| format!("cannot read the data sources file {}", path.display()))?,
            None => EMBEDDED_DATASOURCES.to_owned(),
        };
        let source = rules_file
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the built-in grafana/alert-rules.json".into());
        Self::from_texts(&rules_text, &datasources_text, profile)
            .with_context(|| format!("rules from {source}"))
    }

    pub fn from_texts(rules: &str, datasources: &str, profile: Profile) -> anyhow::Result<Self> {
        let json: Value = serde_json::from_str(rules).context("not JSON")?;
        let json = profile::apply(&json, profile).map_err(|e| anyhow!("{e}"))?;
        let file: RulesFile = serde_json::from_value(json).context("not a rules file")?;
        let ds: DatasourcesFile =
            serde_json::from_str(datasources).context("data sources: not a data sources file")?;
        let datasources = ds
            .datasources
            .into_iter()
            .map(|d| (d.uid, d.kind))
            .collect();
        let mut rules = Vec::new();
        for group in &file.groups {
            let interval_s = parse_prometheus_duration(&group.interval)
                .map(|ms| ms / 1000)
                .ok_or_else(|| {
                    anyhow!(
                        "group {}: interval `{}` is not a duration",
                        group.name,
                        group.interval
                    )
                })?;
            for rule in &group.rules {
                let for_s = match rule.pending.as_deref() {
                    None => 0,
                    Some(text) => parse_prometheus_duration(text)
                        .map(|ms| ms / 1000)
                        .ok_or_else(|| {
                            anyhow!("rule {}: `for` `{text}` is not a duration", rule.uid)
                        })?,
                };
                rules.push(RuleInfo {
                    uid: rule.uid.clone(),
                    title: rule.title.clone(),
                    group: group.name.clone(),
                    folder: group.folder.clone(),
                    interval_s,
                    for_s,
                    scenario: rule.labels.get("scenario").cloned().unwrap_or_default(),
                    severity: rule.labels.get("severity").cloned().unwrap_or_default(),
                    rule: rule.clone(),
                });
            }
        }
        if rules.is_empty() {
            return Err(anyhow!("no rules"));
        }
        Ok(Self {
            profile,
            rules,
            datasources,
        })
    }

    pub fn by_uid(&self, uid: &str) -> Option<&RuleInfo> {
        self.rules.iter().find(|r| r.uid == uid)
    }

    /// The rules whose scenario label is `scenario`.
    pub fn for_scenario<'a>(&'a self, scenario: &'a str) -> impl Iterator<Item = &'a RuleInfo> {
        self.rules.iter().filter(move |r| r.scenario == scenario)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rules_load_in_both_profiles() {
        let demo =
            Catalog::from_texts(EMBEDDED_RULES, EMBEDDED_DATASOURCES, Profile::Demo).unwrap();
        let fast =
            Catalog::from_texts(EMBEDDED_RULES, EMBEDDED_DATASOURCES, Profile::Fast).unwrap();
        assert_eq!(demo.rules.len(), fast.rules.len());
        let down = demo.by_uid("alertlab-service-down").unwrap();
        assert_eq!((down.interval_s, down.for_s), (30, 30));
        assert_eq!(down.scenario, "service-down");
        let fast_low = fast.by_uid("alertlab-low-stock").unwrap();
        assert_eq!((fast_low.interval_s, fast_low.for_s), (10, 20));
        for rule in &demo.rules {
            assert!(
                crate::scenario::Scenario::parse(&rule.scenario).is_ok(),
                "{} has scenario {:?}",
                rule.uid,
                rule.scenario
            );
        }
        let drought = demo.by_uid("alertlab-order-drought").unwrap();
        assert_eq!(
            drought.languages(&demo.datasources),
            vec![Language::PromQL, Language::Sql]
        );
    }

    #[test]
    fn a_bad_profile_is_named() {
        let err = Catalog::load(None, None, "slow").unwrap_err();
        assert!(
            err.to_string().starts_with("--profile: unknown profile"),
            "{err}"
        );
    }
}
