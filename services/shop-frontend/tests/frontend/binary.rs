//! The `shop-frontend` binary itself: settings errors, its log file, SIGTERM.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::helpers::{browser, closed_port, spawn_backend};

const BINARY: &str = env!("CARGO_BIN_EXE_shop-frontend");
const SETTINGS_ENV: [&str; 8] = [
    "LISTEN",
    "API_URL",
    "API_TIMEOUT",
    "SESSION_TIMEOUT",
    "LOG_DIR",
    "LOG_LEVEL",
    "ENABLE_FAULTS",
    "FAULT_TOKEN_FILE",
];

fn command() -> Command {
    let mut command = Command::new(BINARY);
    for name in SETTINGS_ENV {
        command.env_remove(name);
    }
    command
}

#[test]
fn bad_settings_are_one_clear_error_and_a_non_zero_exit() {
    let logs = tempfile::tempdir().unwrap();
    let logs = logs.path().to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--api-url", "ftp://x", "--log-dir", logs],
            "--api-url must be an http(s) URL, got `ftp://x`",
        ),
        (
            &["--api-url", "not a url", "--log-dir", logs],
            "--api-url must be an http(s) URL",
        ),
        (
            &["--api-timeout", "0", "--log-dir", logs],
            "--api-timeout must be between 1 and 300 seconds, got 0",
        ),
        (
            &["--session-timeout", "0", "--log-dir", logs],
            "--session-timeout must be between",
        ),
        (
            &["--listen", "not-an-address"],
            "invalid value 'not-an-address' for '--listen",
        ),
        (
            &["--log-dir", "/proc/no/such/dir"],
            "cannot create log directory",
        ),
    ];
    for (args, expected) in cases {
        let output = command().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(
            stderr.contains(expected),
            "{args:?}: `{stderr}` should contain `{expected}`"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let output = command()
        .args(["--api-url", "ftp://x", "--log-dir", logs])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stderr)
            .trim()
            .lines()
            .count(),
        1,
        "one line"
    );
    assert!(
        !Path::new(logs).join("frontend.log").exists(),
        "settings are checked before anything is written"
    );
}

struct Running {
    child: Child,
    base: String,
    logs: tempfile::TempDir,
}

async fn start(api_url: &str) -> Running {
    let logs = tempfile::tempdir().unwrap();
    let port = closed_port();
    let child = command()
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--api-url",
            api_url,
        ])
        .args(["--log-dir", logs.path().to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "shop-frontend did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Running { child, base, logs }
}

impl Running {
    fn lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.logs.path().join("frontend.log")).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect()
    }

    fn events(&self, event: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["event"] == event)
            .collect()
    }

    fn errors(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["level"] == "error")
            .collect()
    }

    /// Sends SIGTERM and asserts a clean exit.
    fn terminate(mut self) -> Self {
        let exit = shop_testkit::process::terminate(&mut self.child);
        assert!(
            exit.success(),
            "SIGTERM should stop shop-frontend cleanly, got {exit}"
        );
        self
    }
}

#[tokio::test]
async fn the_binary_logs_page_views_as_json_lines_and_stops_gracefully_on_sigterm() {
    let backend = spawn_backend(0.0).await;
    let app = start(&backend.api_address).await;
    let client = browser();
    for path in ["/", "/products/1"] {
        let response = client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    // The lab's latency spike: the API answers 1.5 s late; pages are slow, not failed.
    let response = reqwest::Client::new()
        .post(format!("{}/admin/faults", backend.api_address))
        .header("authorization", shop_testkit::faults::fault_bearer())
        .json(&json!({"kind": "latency", "value": 1500, "duration_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = client
        .post(format!("{}/cart/items", app.base))
        .json(&json!({"product_id": 2, "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = client
        .post(format!("{}/checkout", app.base))
        .json(&json!({"payment_method": "paypal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let app = app.terminate();
    let rendered = app.events("page_rendered");
    assert_eq!(rendered.len(), 3, "{rendered:?}");
    let home = &rendered[0];
    assert_eq!(home["service"], "frontend");
    assert_eq!(home["level"], "info");
    assert_eq!(home["page"], "home");
    // Browsing needs no session: the first views have none, the checkout the one the cart
    // write made.
    assert_eq!(home["session"], "-");
    assert!(home["timestamp"].is_string());
    assert_eq!(rendered[1]["page"], "product");
    assert_eq!(rendered[1]["session"], "-");
    assert_eq!(rendered[2]["page"], "checkout");
    assert_eq!(rendered[2]["session"].as_str().unwrap().len(), 8);
    let completed = app.events("checkout_completed");
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["status"], "completed");
    assert_eq!(app.errors(), Vec::<Value>::new(), "no error lines");
    assert!(app
        .events("service_stopping")
        .iter()
        .any(|l| l["signal"] == "SIGTERM"));
}

#[tokio::test]
async fn declines_are_warnings_and_only_the_api_failing_is_an_error() {
    let mut backend = spawn_backend(1.0).await;
    let app = start(&backend.api_address).await;
    let client = browser();
    let response = client
        .post(format!("{}/cart/items", app.base))
        .json(&json!({"product_id": 1, "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = client
        .post(format!("{}/checkout", app.base))
        .json(&json!({"payment_method": "card"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 402);
    let response = client
        .get(format!("{}/products/99999", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let failed = app.events("checkout_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["level"], "warn");
    assert_eq!(failed[0]["reason"], "payment_declined");
    assert_eq!(app.errors(), Vec::<Value>::new());

    backend.stop().await;
    let response = client.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 502);
    let app = app.terminate();
    let errors = app.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["event"], "page_error");
    assert_eq!(errors[0]["page"], "home");
    assert!(
        errors[0]["cause"].as_str().unwrap().contains("unreachable"),
        "{}",
        errors[0]
    );
}
