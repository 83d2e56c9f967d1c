//! The Grafana files against the real shop: every metric a rule or dashboard uses is one the
//! services really export (read from their `/metrics`, not from a list kept by hand), every
//! Loki selector label is one the Promtail configuration sets, and every SQL query runs on the
//! migrated schema — alert queries returning the shape Grafana needs, with rows in the healthy
//! state so no rule sits in NoData.

use std::{collections::BTreeSet, path::PathBuf, process::Command, time::Duration};

use alertlab_grafana::{query, repo_root, GrafanaFiles, Language};
use diesel::{connection::SimpleConnection, prelude::*, sql_query, sql_types::Text};
use serde_json::Value;
use shop_telemetry::CommonArgs;
use shop_testkit::shared_postgres;

fn common() -> CommonArgs {
    CommonArgs {
        log_dir: PathBuf::from("logs"),
        log_level: log::LevelFilter::Off,
        ..CommonArgs::default()
    }
}

fn migrated_database() -> String {
    shared_postgres().create_migrated_database("shop_template", |url| {
        shop_db::run_migrations(url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// Starts the four services in-process; returns their base URLs.
async fn start_shop(database_url: &str) -> Vec<String> {
    let any = || "127.0.0.1:0".parse().unwrap();
    let token = shop_testkit::secrets::token_file("payment-token");
    let payment = shop_payment::Application::build(shop_payment::Settings {
        listen: any(),
        decline_rate: 0.0,
        payment_token_file: token.path.clone(),
        common: common(),
    })
    .await
    .unwrap();
    let payment_url = format!("http://{}", payment.local_addr());
    let api = shop_api::Application::build(shop_api::Settings {
        listen: any(),
        database_url: database_url.to_owned(),
        payment_url: payment_url.clone(),
        payment_timeout: Duration::from_secs(5),
        payment_token_file: token.path.clone(),
        database_pool_size: 4,
        trusted_proxies: 1,
        session_ttl: Duration::from_secs(3600),
        order_limits: shop_api::OrderLimits::default(),
        login_limits: shop_api::LoginLimits::default(),
        common: common(),
    })
    .await
    .unwrap();
    let api_url = format!("http://{}", api.local_addr());
    let frontend = shop_frontend::Application::build(shop_frontend::Settings {
        listen: any(),
        api_url: api_url.clone(),
        api_timeout: 10,
        session_timeout: 1800,
        max_sessions: shop_frontend::MAX_SESSIONS,
        common: common(),
    })
    .await
    .unwrap();
    let frontend_url = format!("http://{}", frontend.local_addr());
    let inventory = shop_inventory::Application::build(shop_inventory::Settings {
        listen: any(),
        database_url: database_url.to_owned(),
        refresh_interval: Duration::from_secs(5),
        database_pool_size: 2,
        common: common(),
    })
    .await
    .unwrap();
    let inventory_url = format!("http://{}", inventory.local_addr());
    tokio::spawn(payment.run_until_stopped(std::future::pending()));
    tokio::spawn(api.run_until_stopped(std::future::pending()));
    tokio::spawn(frontend.run_until_stopped(std::future::pending()));
    tokio::spawn(inventory.run_until_stopped(std::future::pending()));
    vec![api_url, frontend_url, payment_url, inventory_url]
}

/// Metric names in Prometheus' text format, histogram series included.
fn exported_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_metric_the_files_use_is_exported_by_the_services() {
    let urls = start_shop(&migrated_database()).await;
    let client = reqwest::Client::new();
    // One request per service, so the request counters and histograms have series.
    for url in &urls {
        client.get(format!("{url}/healthz")).send().await.unwrap();
    }
    let mut exported = BTreeSet::from(["up".to_owned()]); // written by Prometheus itself
    for url in &urls {
        let text = client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        exported.extend(exported_names(&text));
    }
    let files = GrafanaFiles::load(&repo_root()).unwrap();
    let used = files.promql_metric_names();
    let missing: Vec<&String> = used.iter().filter(|m| !exported.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "used but not exported: {missing:?}\nexported: {exported:?}"
    );
    assert!(
        used.len() >= 10,
        "the files use the shop's metrics: {used:?}"
    );
}

#[test]
fn every_loki_selector_label_is_set_by_promtail() {
    let root = repo_root().canonicalize().unwrap();
    let output = Command::new(std::env::var("NIX_INSTANTIATE").unwrap_or_else(|_| "nix-instantiate".into()))
        .args(["--eval", "--strict", "--json", "--argstr", "root"])
        .arg(&root)
        .args([
            "-E",
            r#"{ root }: let shop = import (root + "/nixos-modules/lib"); in shop.promtailConfig {
                 inherit (shop) services; logDir = "/var/log/alertlab";
                 lokiUrl = "http://127.0.0.1:3100"; positionsFile = "/var/lib/promtail/positions.yaml"; }"#,
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run nix-instantiate ({e}): apt-get install -y nix-bin"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut labels = BTreeSet::from(["filename".to_owned()]);
    for scrape in config["scrape_configs"].as_array().unwrap() {
        for target in scrape["static_configs"].as_array().unwrap() {
            labels.extend(
                target["labels"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| !k.starts_with("__"))
                    .cloned(),
            );
        }
        for stage in scrape["pipeline_stages"].as_array().into_iter().flatten() {
            if let Some(promoted) = stage.get("labels").and_then(Value::as_object) {
                labels.extend(promoted.keys().cloned());
            }
        }
    }
    let files = GrafanaFiles::load(&repo_root()).unwrap();
    let used = files.loki_selector_label_names();
    let missing: Vec<&String> = used.iter().filter(|l| !labels.contains(*l)).collect();
    assert!(
        missing.is_empty(),
        "Loki selectors use labels Promtail never sets: {missing:?} (set: {labels:?})"
    );
    for label in ["service", "level"] {
        assert!(used.contains(label) && labels.contains(label), "{label}");
    }
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
}

#[derive(QueryableByName)]
struct Rows {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[test]
fn every_sql_query_runs_on_the_schema_and_alert_queries_have_grafanas_shape() {
    let url = migrated_database();
    let mut conn = PgConnection::establish(&url).unwrap();
    // Some history, as in a running lab: orders of every status, logins.
    conn.batch_execute(
        "INSERT INTO orders (product_id, quantity, total_amount, order_status, payment_method)
         VALUES (1, 1, 149.00, 'completed', 'card'), (2, 2, 239.00, 'failed', 'card');
         INSERT INTO login_attempts (email, ip_address, success, customer_id)
         SELECT email, '198.51.100.7', email <> 'bob@example.com', id FROM customers
         WHERE email IN ('alice@example.com', 'bob@example.com');
         INSERT INTO login_attempts (email, ip_address, success)
         VALUES ('nobody@example.net', '198.51.100.9', false);",
    )
    .unwrap();
    let files = GrafanaFiles::load(&repo_root()).unwrap();
    let queries: Vec<_> = files
        .queries()
        .into_iter()
        .filter(|q| q.language == Language::Sql)
        .collect();
    assert!(queries.iter().filter(|q| q.alerting).count() >= 4);
    for (i, q) in queries.iter().enumerate() {
        let where_ = format!("{}: {}: {}", q.file, q.subject, q.field);
        let sql = if q.alerting {
            q.text.clone()
        } else {
            query::expand_postgres_macros(&q.text, "2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z")
                .unwrap_or_else(|e| panic!("{where_}: {e}"))
        };
        let view = format!("q{i}");
        conn.batch_execute(&format!(
            "CREATE TEMP VIEW {view} AS {}",
            sql.trim().trim_end_matches(';')
        ))
        .unwrap_or_else(|e| panic!("{where_}: the query does not run: {e}\n{sql}"));
        let rows = sql_query(format!("SELECT count(*) AS n FROM {view}"))
            .get_result::<Rows>(&mut conn)
            .unwrap()
            .n;
        if q.alerting {
            let columns: Vec<Column> = sql_query(format!(
                "SELECT a.attname::text AS name, t.typname::text AS kind FROM pg_attribute a
                 JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attrelid = '{view}'::regclass AND a.attnum > 0 ORDER BY a.attnum"
            ))
            .load(&mut conn)
            .unwrap();
            let shape: Vec<(&str, &str)> = columns
                .iter()
                .map(|c| (c.name.as_str(), c.kind.as_str()))
                .collect();
            query::check_sql_alert_shape(&shape).unwrap_or_else(|e| panic!("{where_}: {e}"));
            assert!(
                rows >= 1,
                "{where_}: no rows in the healthy state (the rule would sit in NoData)"
            );
        }
    }
}
