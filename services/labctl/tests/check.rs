//! `labctl check` over all three kinds of data source: PromQL and LogQL against a fake
//! Prometheus and Loki that answer every query with one number, SQL against a real
//! PostgreSQL with the shop's schema; the table, the JSON and the expectations.

mod common;

use common::{labctl, World};
use serde_json::Value;

async fn check(world: &World, args: &[&str]) -> std::process::Output {
    let db = shop_testkit::shared_postgres().create_migrated_database("labctl_check", |url| {
        shop_db::run_migrations(url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let mut all: Vec<String> = [
        "check",
        "--prometheus-url",
        &world.url,
        "--database-url",
        &db,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    all.extend(args.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || labctl().args(&all).output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_is_evaluated_as_grafana_would() {
    let world = World::start("admin").await;
    // Prometheus answers 1 to everything; Loki 3.
    let out = check(&world, &["--loki-url", &world.url.clone(), "--json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evals: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let state = |uid: &str| {
        let e = evals.iter().find(|e| e["uid"] == uid).unwrap();
        let instances = e["outcome"]["instances"]
            .as_array()
            .unwrap_or_else(|| panic!("{e}"));
        instances
            .iter()
            .map(|i| i["state"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(state("alertlab-service-down"), ["Normal"], "1 is not < 1");
    assert_eq!(state("alertlab-high-error-rate"), ["Firing"], "1 > 0.1");
    assert_eq!(state("alertlab-high-latency"), ["Normal"], "1 is not > 1");
    assert_eq!(state("alertlab-payment-failure-rate"), ["Firing"]);
    assert_eq!(state("alertlab-low-stock"), ["Firing"]);
    assert_eq!(
        state("alertlab-payment-errors-in-logs"),
        ["Normal"],
        "3 is not > 5"
    );
    assert_eq!(state("alertlab-frontend-errors-in-logs"), ["Normal"]);
    // SQL on the seeded catalog: one instance per product, none low.
    assert_eq!(state("alertlab-low-inventory"), vec!["Normal"; 24]);
    assert_eq!(state("alertlab-brute-force-login"), ["Normal"]);
    assert_eq!(state("alertlab-failed-orders"), ["Normal"]);
    // No orders at all: no drought (nothing completed in the last hour either).
    assert_eq!(state("alertlab-order-drought"), ["Normal"]);
    let low = evals
        .iter()
        .find(|e| e["uid"] == "alertlab-low-inventory")
        .unwrap();
    let first = &low["outcome"]["instances"][0];
    assert_eq!(first["labels"]["product_id"], "1");
    assert_eq!(
        first["labels"]["product_name"],
        "Aurora Wireless Headphones"
    );
    assert_eq!(first["inputs"]["A"], 160.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_loki_its_rules_are_listed_as_not_checked_and_expectations_fail_by_name() {
    let world = World::start("admin").await;
    let out = check(&world, &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let loki = stdout
        .lines()
        .find(|l| l.starts_with("alertlab-critical-stock-in-logs"))
        .unwrap();
    assert!(
        loki.contains("NOT CHECKED  Loki rule: not checked (no --loki-url given)"),
        "{loki}"
    );
    assert!(
        stdout.contains("10 rule(s) checked (3 true), 3 NOT CHECKED"),
        "{stdout}"
    );
    let error_rate = stdout
        .lines()
        .find(|l| l.starts_with("alertlab-high-error-rate"))
        .unwrap();
    assert!(error_rate.contains("Firing"), "{error_rate}");
    assert!(error_rate.contains("{} B=1"), "{error_rate}");

    let out = check(&world, &["--expect", "healthy"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap();
    assert_eq!(
        last,
        "labctl: check: expectation not met: still true (not healthy): alertlab-high-error-rate, alertlab-payment-failure-rate, alertlab-low-stock"
    );

    let out = check(&world, &["--expect", "scenario=stock-depletion", "--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let violations = report["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0]
        .as_str()
        .unwrap()
        .starts_with("alertlab-high-error-rate (scenario error-burst) is true at +0s outside the running scenario(s) stock-depletion"));
}
