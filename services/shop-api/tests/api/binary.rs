//! The `shop-api` binary itself: migrations, settings errors, log file, SIGTERM.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use shop_testkit::shared_postgres;

use crate::helpers::{closed_port, migrated_database, spawn_payment, PAYMENT_TOKEN};

const BINARY: &str = env!("CARGO_BIN_EXE_shop-api");

#[test]
fn migrate_applies_the_schema_once_and_then_reports_it_up_to_date() {
    let url = shared_postgres().create_database();
    let first = Command::new(BINARY)
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied 5 migration(s)"));
    let second = Command::new(BINARY)
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("up to date"));
}

#[test]
fn bad_settings_are_one_clear_error_and_a_non_zero_exit() {
    let logs = tempfile_dir();
    let token = PAYMENT_TOKEN.path.to_str().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["--listen", "not-an-address"],
            "invalid value 'not-an-address' for '--listen",
        ),
        (
            &["--log-dir", logs.as_str()],
            "--database-url (or DATABASE_URL) is required",
        ),
        (
            &[
                "--database-url",
                "postgres://x@127.0.0.1:1/x",
                "--log-dir",
                logs.as_str(),
                "--payment-url",
                "ftp://x",
            ],
            "--payment-url must be an http(s) URL",
        ),
        (
            &[
                "--database-url",
                "postgres://x@127.0.0.1:1/x",
                "--log-dir",
                logs.as_str(),
            ],
            "--payment-token-file (or PAYMENT_TOKEN_FILE) is required",
        ),
        (
            &[
                "--database-url",
                "postgres://x@127.0.0.1:1/x",
                "--payment-token-file",
                token,
                "--log-dir",
                "/proc/no/such/dir",
            ],
            "cannot create log directory",
        ),
        (
            &[
                "--database-url",
                "postgres://x@127.0.0.1:1/x",
                "--payment-token-file",
                token,
                "--log-dir",
                logs.as_str(),
                "--enable-faults",
            ],
            "--enable-faults needs --fault-token-file",
        ),
        (
            &[
                "--database-url",
                "postgres://x@127.0.0.1:1/x",
                "--payment-token-file",
                token,
                "--keep-alive-timeout",
                "30",
            ],
            "--keep-alive-timeout (30 s) must not exceed --header-read-timeout (10 s)",
        ),
    ];
    for (args, expected) in cases {
        let output = Command::new(BINARY)
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("PAYMENT_TOKEN_FILE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(
            stderr.contains(expected),
            "{args:?}: `{stderr}` should contain `{expected}`"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn help_does_not_print_the_database_password_from_the_environment() {
    for args in [&["--help"][..], &["migrate", "--help"]] {
        let output = Command::new(BINARY)
            .args(args)
            .env("DATABASE_URL", "postgres://shop:hunter2@db.example/shop")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}");
        assert!(help.contains("[env: DATABASE_URL]"), "{args:?}: {help}");
        assert!(!help.contains("hunter2"), "{args:?}: {help}");
    }
}

#[test]
fn enabling_faults_without_a_token_file_is_one_line_and_exit_status_1() {
    let logs = tempfile_dir();
    let output = Command::new(BINARY)
        .args(["--database-url", "postgres://x@127.0.0.1:1/x"])
        .arg("--payment-token-file")
        .arg(&PAYMENT_TOKEN.path)
        .args(["--log-dir", &logs, "--enable-faults"])
        .env_remove("FAULT_TOKEN_FILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "shop-api: error: --enable-faults needs --fault-token-file: the fault API always requires its bearer token"
    );
}

#[test]
fn serving_an_unmigrated_database_is_refused() {
    let url = shared_postgres().create_database();
    let logs = tempfile_dir();
    let output = Command::new(BINARY)
        .args([
            "--database-url",
            &url,
            "--log-dir",
            &logs,
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--payment-token-file")
        .arg(&PAYMENT_TOKEN.path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("run `shop-api migrate` first"));
}

#[tokio::test]
async fn the_binary_logs_json_lines_and_stops_gracefully_on_sigterm() {
    let payment = spawn_payment(0.0).await;
    let logs = tempfile_dir();
    let port = closed_port();
    let mut child = Command::new(BINARY)
        .args(["--database-url", &migrated_database(), "--log-dir", &logs])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--payment-url",
            &format!("http://{payment}"),
        ])
        .arg("--payment-token-file")
        .arg(&PAYMENT_TOKEN.path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "shop-api did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = client
        .post(format!("{base}/orders"))
        .json(&json!({"product_id": 1, "quantity": 1, "payment_method": "gift_card"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let exit = shop_testkit::process::terminate(&mut child);
    assert!(
        exit.success(),
        "SIGTERM should stop shop-api cleanly, got {exit}"
    );

    let text = std::fs::read_to_string(format!("{logs}/api.log")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let completed = lines
        .iter()
        .find(|l| l["event"] == "order_completed")
        .unwrap_or_else(|| panic!("no order_completed line in {text}"));
    assert_eq!(completed["service"], "api");
    assert_eq!(completed["level"], "info");
    assert_eq!(completed["payment_method"], "gift_card");
    assert!(completed["order_id"].is_number());
    assert!(completed["timestamp"].is_string());
    assert!(lines
        .iter()
        .any(|l| l["event"] == "service_stopping" && l["signal"] == "SIGTERM"));
}

fn tempfile_dir() -> String {
    let dir = std::env::temp_dir().join(format!(
        "shop-api-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}
