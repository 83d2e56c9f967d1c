//! The `sink` and `traffic` binaries: durable notifications across a restart; traffic's
//! journeys, client IPs and control endpoint; clean stops on SIGTERM.

mod common;

use std::{
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use common::{closed_port, labctl, World};
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use serde_json::{json, Value};

fn wait_until_answers(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if reqwest::blocking_get(url) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} did not answer");
}

/// Minimal blocking HTTP for the tests, over std only.
mod reqwest {
    use std::{
        io::{Read, Write},
        net::TcpStream,
    };

    pub fn request(method: &str, url: &str, body: Option<&str>) -> Option<(u16, String)> {
        request_with(
            method,
            url,
            &["Content-Type: application/json"],
            body.map(str::as_bytes),
        )
    }

    /// A request with exactly these extra header lines.
    pub fn request_with(
        method: &str,
        url: &str,
        headers: &[&str],
        body: Option<&[u8]>,
    ) -> Option<(u16, String)> {
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest
            .split_once('/')
            .map(|(h, p)| (h, format!("/{p}")))
            .unwrap_or((rest, "/".into()));
        let mut stream = TcpStream::connect(host).ok()?;
        let body = body.unwrap_or(b"");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
        for line in headers {
            head.push_str(line);
            head.push_str("\r\n");
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        stream.write_all(head.as_bytes()).ok()?;
        // The server may answer (and close) before taking a refused body.
        let _ = stream.write_all(body);
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        // Chunked bodies: take the JSON between the first `{`/`[` and the last `}`/`]`.
        let start = body.find(['{', '[']).unwrap_or(0);
        let end = body.rfind(['}', ']']).map(|e| e + 1).unwrap_or(body.len());
        Some((status, body[start..end].to_owned()))
    }

    pub fn blocking_get(url: &str) -> bool {
        request("GET", url, None).is_some()
    }
}

fn get_json(url: &str) -> Value {
    let (status, body) = reqwest::request("GET", url, None).unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let (status, text) = reqwest::request("POST", url, Some(&body.to_string())).unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

const SINK_TOKEN: &str = "sink-test-token";

/// A notification as Grafana sends it: JSON with the sink's token.
fn notify(url: &str, body: &Value) -> (u16, Value) {
    let bearer = format!("Authorization: Bearer {SINK_TOKEN}");
    let (status, text) = reqwest::request_with(
        "POST",
        url,
        &["Content-Type: application/json", &bearer],
        Some(body.to_string().as_bytes()),
    )
    .unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn terminate(mut child: Child) -> std::process::Output {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn start_sink(port: u16, dir: &std::path::Path) -> Child {
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{SINK_TOKEN}\n")).unwrap();
    let child = labctl()
        .args([
            "sink",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .arg("--token-file")
        .arg(&token_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_answers(&format!("http://127.0.0.1:{port}/healthz"));
    child
}

#[test]
fn the_sink_keeps_notifications_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let base = format!("http://127.0.0.1:{port}");
    let sink = start_sink(port, dir.path());
    let payload: Value = serde_json::from_str(&common::fixture("webhook-firing.json")).unwrap();
    let (status, answer) = notify(&format!("{base}/notifications"), &payload);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["seq"], 1);
    let (status, _) = notify(
        &format!("{base}/notifications"),
        &json!({"status": "resolved"}),
    );
    assert_eq!(status, 200);
    let (status, answer) = notify(&format!("{base}/notifications"), &json!([1, 2]));
    assert_eq!(status, 400, "{answer}");
    let out = terminate(sink);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let sink = start_sink(port, dir.path());
    let list = get_json(&format!("{base}/notifications"));
    let notifications = list["notifications"].as_array().unwrap();
    assert_eq!(notifications.len(), 2);
    assert_eq!(notifications[0]["payload"], payload);
    assert_eq!(notifications[1]["seq"], 2);
    let health = get_json(&format!("{base}/healthz"));
    assert_eq!(health, json!({"status": "ok", "notifications": 2}));
    let future = get_json(&format!("{base}/notifications?since=4000000000"));
    assert!(future["notifications"].as_array().unwrap().is_empty());
    let past = get_json(&format!("{base}/notifications?since=2020-01-01T00:00:00Z"));
    assert_eq!(past["notifications"].as_array().unwrap().len(), 2);
    assert!(terminate(sink).status.success());
    let lines = std::fs::read_to_string(dir.path().join("data/notifications.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2);
}

/// What a web page (or anyone without the token) can send is refused and stored nowhere: a
/// cross-origin `text/plain` form post, a request without the token or with a wrong one, and
/// oversized bodies.
#[test]
fn the_sink_takes_only_json_with_its_token_and_bounded_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/notifications");
    let sink = start_sink(port, dir.path());
    let forged =
        json!({"status": "firing", "alerts": [{"labels": {"alertname": "Forged"}}]}).to_string();
    let bearer = format!("Authorization: Bearer {SINK_TOKEN}");
    let cases: [(&[&str], Vec<u8>, u16, &str); 5] = [
        (
            &["Content-Type: text/plain", "Origin: http://evil.example"],
            forged.clone().into_bytes(),
            401,
            "Authorization: Bearer <token>",
        ),
        (
            &["Content-Type: application/json"],
            forged.clone().into_bytes(),
            401,
            "Authorization: Bearer <token>",
        ),
        (
            &[
                "Content-Type: application/json",
                "Authorization: Bearer wrong",
            ],
            forged.clone().into_bytes(),
            401,
            "Authorization: Bearer <token>",
        ),
        (
            &["Content-Type: text/plain", &bearer],
            forged.clone().into_bytes(),
            415,
            "application/json",
        ),
        (
            &["Content-Type: application/json", &bearer],
            format!("{{\"padding\": \"{}\"}}", "x".repeat(2 * 1024 * 1024)).into_bytes(),
            413,
            "at most 1048576 bytes",
        ),
    ];
    for (headers, body, expected, says) in cases {
        let (status, text) = reqwest::request_with("POST", &url, headers, Some(&body)).unwrap();
        assert_eq!(status, expected, "{headers:?}: {text}");
        assert!(text.contains(says), "{headers:?}: {text}");
    }
    let health = get_json(&format!("http://127.0.0.1:{port}/healthz"));
    assert_eq!(health["notifications"], 0);
    assert!(terminate(sink).status.success());
}

#[test]
fn the_sink_does_not_start_without_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = labctl()
        .args(["sink", "--listen", &format!("127.0.0.1:{}", closed_port())])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    common::assert_one_line_error(&out, "labctl sink needs --token-file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_runs_journeys_obeys_its_control_endpoint_and_stops_on_sigterm() {
    let world = World::start("admin").await;
    let control = closed_port();
    let url = world.url.clone();
    let child = labctl()
        .args(["traffic", "--rate", "40", "--report-every", "0"])
        .args(["--api-url", &url, "--frontend-url", &url])
        .args(["--control-listen", &format!("127.0.0.1:{control}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{control}");
    let status = tokio::task::spawn_blocking({
        let base = base.clone();
        move || {
            wait_until_answers(&format!("{base}/healthz"));
            std::thread::sleep(Duration::from_secs(3));
            get_json(&format!("{base}/status"))
        }
    })
    .await
    .unwrap();
    assert_eq!(status["state"], "running");
    assert!(
        status["journeys"]["login"]["started"].as_u64().unwrap() > 5,
        "{status}"
    );
    assert!(
        status["orders"]["completed"].as_u64().unwrap() > 0,
        "{status}"
    );
    assert_eq!(status["http"]["5xx"], 0);

    let paused = tokio::task::spawn_blocking({
        let base = base.clone();
        let world_requests = world.state.clone();
        move || {
            let (code, answer) = post_json(&format!("{base}/pause"), &json!({"seconds": 60}));
            assert_eq!(code, 200, "{answer}");
            let (code, _) = post_json(&format!("{base}/pause"), &json!({"seconds": 0}));
            assert_eq!(code, 400);
            std::thread::sleep(Duration::from_millis(800));
            let before = world_requests.lock().unwrap().requests.len();
            std::thread::sleep(Duration::from_secs(2));
            let after = world_requests.lock().unwrap().requests.len();
            let status = get_json(&format!("{base}/status"));
            let (code, _) = post_json(&format!("{base}/resume"), &json!({}));
            assert_eq!(code, 200);
            (after - before, status)
        }
    })
    .await
    .unwrap();
    assert_eq!(paused.0, 0, "no requests while paused");
    assert_eq!(paused.1["state"], "paused");
    assert!(paused.1["paused_for_seconds"].as_u64().unwrap() > 55);

    let out = tokio::task::spawn_blocking(move || terminate(child))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("stopping (SIGTERM)"), "{stderr}");
    assert!(stderr.contains("in total"), "{stderr}");

    // Logins come from the documentation range, and no IP fails more than twice.
    let s = world.state.lock().unwrap();
    let mut failures = std::collections::HashMap::new();
    for (ip, ok) in &s.logins {
        assert!(ip.starts_with("198.51.100."), "{ip}");
        if !ok {
            *failures.entry(ip.clone()).or_insert(0) += 1;
        }
    }
    assert!(failures.values().all(|n| *n <= 2), "{failures:?}");
    assert!(s.requests.iter().any(|r| r == "POST /checkout"));
    assert!(s.requests.iter().any(|r| r == "POST /cart/items"));
    // Customers check out with the session of their login, the others anonymously; a
    // customer's session is kept for their next checkouts.
    let with_session = s
        .checkout_authorizations
        .iter()
        .flatten()
        .filter(|a| a.starts_with("Bearer session-"))
        .count();
    let anonymous = s
        .checkout_authorizations
        .iter()
        .filter(|a| a.is_none())
        .count();
    assert!(with_session > 0, "{:?}", s.checkout_authorizations);
    assert!(anonymous > 0, "{:?}", s.checkout_authorizations);
    assert_eq!(with_session + anonymous, s.checkout_authorizations.len());
    assert!(
        status["sessions_opened"].as_u64().unwrap() <= 10,
        "one session per customer: {status}"
    );
}
