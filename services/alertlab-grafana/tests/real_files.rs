//! The real files under grafana/ pass every check and keep the lab's contract.

use std::collections::BTreeSet;

use alertlab_grafana::{
    lint::KNOWN_SCENARIOS, lint_repo, profile, repo_root, GrafanaFiles, Language, Profile,
};
use serde_json::Value;

fn files() -> GrafanaFiles {
    GrafanaFiles::load(&repo_root()).unwrap_or_else(|errors| {
        panic!(
            "cannot load grafana/:\n{}",
            errors
                .iter()
                .map(|e| format!("  {e}\n"))
                .collect::<String>()
        )
    })
}

#[test]
fn every_check_passes() {
    let findings = lint_repo(&repo_root());
    assert!(
        findings.is_empty(),
        "{} finding(s):\n{}",
        findings.len(),
        findings
            .iter()
            .map(|f| format!("  {f}\n"))
            .collect::<String>()
    );
}

#[test]
fn the_catalog_has_the_rules_of_the_design() {
    let files = files();
    let uids: BTreeSet<&str> = files.rules.rules().map(|r| r.uid.as_str()).collect();
    for uid in [
        "alertlab-service-down",
        "alertlab-high-error-rate",
        "alertlab-high-latency",
        "alertlab-payment-failure-rate",
        "alertlab-low-stock",
        "alertlab-payment-errors-in-logs",
        "alertlab-critical-stock-in-logs",
        "alertlab-frontend-errors-in-logs",
        "alertlab-low-inventory",
        "alertlab-brute-force-login",
        "alertlab-credential-stuffing",
        "alertlab-failed-orders",
        "alertlab-order-drought",
    ] {
        assert!(uids.contains(uid), "missing rule {uid}");
    }
    let scenarios: BTreeSet<&str> = files
        .rules
        .rules()
        .filter_map(|r| r.labels.get("scenario").map(String::as_str))
        .collect();
    for scenario in KNOWN_SCENARIOS {
        assert!(
            scenarios.contains(scenario),
            "no rule for scenario {scenario}"
        );
    }
    let sources: BTreeSet<&str> = files
        .rules
        .rules()
        .flat_map(|r| r.data.iter().map(|q| q.datasource_uid.as_str()))
        .collect();
    assert_eq!(
        sources,
        BTreeSet::from(["__expr__", "loki", "postgres", "prometheus"])
    );
}

#[test]
fn every_runbook_belongs_to_a_rule_and_the_readme_lists_every_rule() {
    let files = files();
    let uids: BTreeSet<String> = files.rules.rules().map(|r| r.uid.clone()).collect();
    let root = repo_root();
    for entry in std::fs::read_dir(root.join("docs/runbooks")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let uid = name.strip_suffix(".md").unwrap_or(&name);
        assert!(
            uids.contains(uid),
            "docs/runbooks/{name} belongs to no rule"
        );
    }
    let readme = std::fs::read_to_string(root.join("grafana/README.md")).unwrap();
    for uid in &uids {
        assert!(
            readme.contains(&format!("`{uid}`")),
            "grafana/README.md does not list {uid}"
        );
    }
}

#[test]
fn demo_profile_is_30s_and_fast_profile_is_10s() {
    let files = files();
    let demo = profile::apply(&files.rules_json, Profile::Demo).unwrap();
    assert_eq!(demo, files.rules_json, "demo is the file unchanged");
    let fast = profile::apply(&files.rules_json, Profile::Fast).unwrap();
    let groups = |v: &Value| v["groups"].as_array().unwrap().clone();
    for (d, f) in groups(&demo).iter().zip(groups(&fast).iter()) {
        assert_eq!(d["interval"], "30s", "demo interval of {}", d["name"]);
        assert_eq!(f["interval"], "10s", "fast interval of {}", f["name"]);
        for (dr, fr) in d["rules"]
            .as_array()
            .unwrap()
            .iter()
            .zip(f["rules"].as_array().unwrap())
        {
            let secs = |v: &Value| {
                alertlab_grafana::duration::parse_profile_duration(v["for"].as_str().unwrap())
                    .unwrap()
            };
            assert!(
                secs(dr) >= 30,
                "demo pending period of {} is at least 30s",
                dr["uid"]
            );
            assert_eq!(
                secs(fr),
                profile::fast_pending(secs(dr)),
                "fast pending period of {}",
                fr["uid"]
            );
            assert!(secs(fr) >= 10 && secs(fr) % 10 == 0 && secs(fr) < secs(dr));
            let without_timing = |mut v: Value| {
                v.as_object_mut().unwrap().remove("for");
                v
            };
            assert_eq!(
                without_timing(dr.clone()),
                without_timing(fr.clone()),
                "only `for` differs"
            );
        }
    }
}

/// The telemetry contract of DESIGN.md, to catch typos early. The authoritative check compares
/// against the services' real /metrics output (the services' own tests).
#[test]
fn queries_use_the_telemetry_contract() {
    let files = files();
    let contract: BTreeSet<&str> = [
        "up",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_count",
        "http_request_duration_seconds_sum",
        "orders_total",
        "page_views_total",
        "payments_total",
        "payment_amount_total",
        "inventory_stock_level",
        "inventory_low_stock_products",
    ]
    .into();
    let used = files.promql_metric_names();
    let used: BTreeSet<&str> = used.iter().map(String::as_str).collect();
    assert_eq!(
        used, contract,
        "the rules and dashboards use exactly the contract's metrics"
    );
    let labels = files.loki_selector_label_names();
    assert_eq!(
        labels,
        BTreeSet::from(["job".to_string(), "level".into(), "service".into()])
    );
    let sql = files.sql_queries();
    assert!(sql.iter().filter(|q| q.alerting).count() >= 5);
    for q in files.queries() {
        if q.alerting && q.language == Language::Sql {
            assert!(
                !q.text.contains("$__"),
                "{}: {}: alert SQL must run verbatim",
                q.subject,
                q.field
            );
        }
    }
}

/// Each runbook quotes its rule's queries as they are: a fenced block per data-source query,
/// word for word, so the page never shows a query the rule no longer runs.
#[test]
fn every_runbook_quotes_its_rules_queries() {
    let files = files();
    let root = repo_root();
    for rule in files.rules.rules() {
        let page = std::fs::read_to_string(root.join(format!("docs/runbooks/{}.md", rule.uid)))
            .unwrap_or_else(|e| panic!("runbook of {}: {e}", rule.uid));
        for (k, query) in rule.data.iter().enumerate() {
            let Some(text) = query.expr().or(query.raw_sql()) else {
                continue;
            };
            assert!(
                page.contains(&format!("```\n{text}\n```")),
                "docs/runbooks/{}.md does not quote data[{k}] as the rule runs it:\n{text}",
                rule.uid
            );
        }
    }
}
