//! The `shop-inventory` binary: stock events in its JSON-lines log, and `--help`.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::helpers::{migrated_database, OPERATOR_TOKEN};

const BINARY: &str = env!("CARGO_BIN_EXE_shop-inventory");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn depleting_a_product_logs_low_and_critical_stock_then_its_replenishment() {
    let logs = std::env::temp_dir().join(format!("shop-inventory-test-{}", std::process::id()));
    let port = free_port();
    let mut child = Command::new(BINARY)
        .args([
            "--database-url",
            &migrated_database(),
            "--refresh-interval",
            "1",
            "--enable-faults",
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--fault-token-file")
        .arg(&OPERATOR_TOKEN.path)
        .arg("--log-dir")
        .arg(&logs)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .post(format!("{base}/admin/faults"))
        .bearer_auth(&OPERATOR_TOKEN.token)
        .json(&json!({"kind": "restock_paused", "duration_seconds": 3}))
        .send()
        .await
        .unwrap();
    let depleted = client
        .put(format!("{base}/stock/7"))
        .bearer_auth(&OPERATOR_TOKEN.token)
        .json(&json!({"stock_level": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(depleted.status(), 200);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(shop_testkit::process::terminate(&mut child).success());

    let text = std::fs::read_to_string(logs.join("inventory.log")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events = |name: &str| {
        lines
            .iter()
            .filter(|l| l["event"] == name)
            .collect::<Vec<_>>()
    };
    let low = events("low_stock");
    assert_eq!(low.len(), 1, "low_stock once per transition: {text}");
    assert_eq!(
        (low[0]["level"].as_str(), low[0]["product_id"].as_i64()),
        (Some("warn"), Some(7))
    );
    let critical = events("critical_stock");
    assert!(
        critical.len() >= 2,
        "critical_stock on every refresh while critical: {text}"
    );
    assert_eq!(critical[0]["level"], "error");
    assert_eq!(critical[0]["product_name"], "Summit Hiking Backpack");
    let replenished = events("stock_replenished");
    assert!(
        replenished
            .iter()
            .any(|l| l["product_id"] == 7 && l["new_level"] == 120),
        "restocked to 10x the threshold once the fault ended: {text}"
    );
    assert!(events("stock_changed")
        .iter()
        .any(|l| l["product_id"] == 7 && l["new_level"] == 0));
    assert!(lines.iter().all(|l| l["service"] == "inventory"));
}

#[test]
fn help_does_not_print_the_database_password_from_the_environment() {
    let output = Command::new(BINARY)
        .arg("--help")
        .env("DATABASE_URL", "postgres://shop:hunter2@db.example/shop")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(help.contains("[env: DATABASE_URL]"), "{help}");
    assert!(!help.contains("hunter2"), "{help}");
}
