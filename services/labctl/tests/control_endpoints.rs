//! labctl's control endpoints as a stranger meets them: `labctl scenario serve` runs every
//! scenario for a client with its token (service-down through its commands, the faults
//! through the fault API of the test world) and refuses everyone else; traffic's control
//! endpoint refuses foreign hosts and web pages; both bound bodies and connections.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Output, Stdio},
    time::{Duration, Instant},
};

use common::{closed_port, labctl, World};
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};

const TOKEN: &str = "scenario-token-0123456789abcdef";

/// One raw HTTP/1.1 exchange (the headers exactly as given); None when no answer arrives
/// within `wait`.
fn raw(port: u16, head: &str, body: &[u8], wait: Duration) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(wait)).ok()?;
    let mut request = head.replace('\n', "\r\n").into_bytes();
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    stream.write_all(&request).ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

fn request(port: u16, head: &str, body: &str) -> (u16, String) {
    let head = format!(
        "{head}\nContent-Type: application/json\nContent-Length: {}\nConnection: close\n",
        body.len()
    );
    raw(port, &head, body.as_bytes(), Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no answer to {head}"))
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

fn stop_process(mut child: Child) -> Output {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the process did not stop within 30 s of SIGTERM");
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `labctl scenario serve` against the world, on a free port.
fn serve(world: &World, dir: &Path) -> (Child, u16) {
    let port = closed_port();
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let flag = world.down_flag();
    let child = labctl()
        .args(world.targets())
        .args(["--scenario-token-file", token.to_str().unwrap()])
        .args([
            "scenario",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--state-dir", dir.join("state").to_str().unwrap()])
        .args(["--stop-command", &format!("touch {}", flag.display())])
        .args(["--start-command", &format!("rm -f {}", flag.display())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(port);
    (child, port)
}

/// labctl as a client of the endpoint (no targets of its own: everything goes there).
async fn client(port: u16, token: &Path, args: &[&str]) -> Output {
    let mut all: Vec<String> = vec![
        "--scenario-url".into(),
        format!("http://127.0.0.1:{port}"),
        "--scenario-token-file".into(),
        token.display().to_string(),
        // Nothing answers here: a client that acted itself would fail.
        "--api-url".into(),
        format!("http://127.0.0.1:{}", closed_port()),
        "--frontend-url".into(),
        format!("http://127.0.0.1:{}", closed_port()),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || labctl().args(&all).output().unwrap())
        .await
        .unwrap()
}

fn count(world: &World, request: &str) -> usize {
    world
        .state
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| *r == request)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_serve_runs_every_kind_of_scenario_for_a_client_with_the_token() {
    let world = World::start("admin").await;
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = serve(&world, dir.path());
    let token = dir.path().join("token");

    // A fault scenario: the server sets the fault, the client returns at once (detached).
    let started = client(
        port,
        &token,
        &[
            "scenario",
            "start",
            "payment-outage",
            "--for",
            "5m",
            "--detach",
        ],
    )
    .await;
    assert!(started.status.success(), "{}", text(&started));
    assert!(
        text(&started).contains("payment-outage: started by labctl scenario serve"),
        "{}",
        text(&started)
    );
    assert_eq!(count(&world, "POST /admin/faults"), 1);

    let again = client(
        port,
        &token,
        &["scenario", "start", "payment-outage", "--detach"],
    )
    .await;
    common::assert_one_line_error(
        &again,
        "answered HTTP 409 to /scenarios/payment-outage/start: scenario payment-outage is already running here until",
    );

    let (status, body) = request(
        port,
        &format!("GET /scenarios HTTP/1.1\nHost: 127.0.0.1:{port}\nAuthorization: Bearer {TOKEN}"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"scenario\":\"payment-outage\""), "{body}");

    let stopped = client(port, &token, &["scenario", "stop", "payment-outage"]).await;
    assert!(stopped.status.success(), "{}", text(&stopped));
    assert_eq!(
        String::from_utf8_lossy(&stopped.stdout).trim(),
        "payment-outage: cleared 1 decline_rate fault(s) on the payment service"
    );

    // service-down: the server's own commands stop and start the service.
    let flag = world.down_flag();
    let down = client(
        port,
        &token,
        &[
            "scenario",
            "start",
            "service-down",
            "--for",
            "5m",
            "--detach",
        ],
    )
    .await;
    assert!(down.status.success(), "{}", text(&down));
    assert!(flag.exists(), "the stop command did not run");
    let up = client(port, &token, &["scenario", "stop", "service-down"]).await;
    assert!(up.status.success(), "{}", text(&up));
    assert!(!flag.exists(), "the start command did not run");

    // traffic-stop through the server's --traffic-url; the foreground client waits and the
    // server reverts at the end.
    let resumed_before = count(&world, "POST /resume");
    let foreground = client(
        port,
        &token,
        &["scenario", "start", "traffic-stop", "--for", "1s"],
    )
    .await;
    assert!(foreground.status.success(), "{}", text(&foreground));
    assert_eq!(count(&world, "POST /pause"), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&world, "POST /resume") == resumed_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&world, "POST /resume"), resumed_before + 1);

    // Stopping the server reverts what it still runs.
    let burst = client(
        port,
        &token,
        &[
            "scenario",
            "start",
            "error-burst",
            "--for",
            "10m",
            "--detach",
        ],
    )
    .await;
    assert!(burst.status.success(), "{}", text(&burst));
    let deletes = count(&world, "DELETE /admin/faults");
    let out = stop_process(server);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count(&world, "DELETE /admin/faults"), deletes + 1);
    assert!(
        text(&out).contains("scenario error-burst: ended (it was stopped); reverted: cleared 1 error_rate fault(s) on the frontend service"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_serve_refuses_strangers_web_pages_and_bad_requests() {
    let world = World::start("admin").await;
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = serve(&world, dir.path());
    let start = "POST /scenarios/error-burst/start HTTP/1.1";
    let good_host = format!("Host: 127.0.0.1:{port}");
    let auth = format!("Authorization: Bearer {TOKEN}");
    let body = r#"{"seconds": 60}"#;
    for (head, expected, mentions) in [
        (
            format!("{start}\n{good_host}"),
            401,
            "missing `Authorization: Bearer <token>`",
        ),
        (
            format!("{start}\n{good_host}\nAuthorization: Bearer wrong-token-0123456789"),
            401,
            "wrong token",
        ),
        (
            format!("{start}\nHost: rebind.attacker.example:{port}\n{auth}"),
            403,
            "Host `rebind.attacker.example",
        ),
        (
            format!("{start}\n{good_host}\n{auth}\nOrigin: http://rebind.attacker.example"),
            403,
            "requests from web pages",
        ),
        (
            format!("{start}\n{good_host}\n{auth}\nSec-Fetch-Site: same-origin"),
            403,
            "requests from web pages",
        ),
        (
            format!("{start}\n{good_host}\n{auth}\nX-Forwarded-For: 203.0.113.9"),
            403,
            "forwarded requests",
        ),
        (
            format!("POST /scenarios/meltdown/start HTTP/1.1\n{good_host}\n{auth}"),
            404,
            "unknown scenario `meltdown`",
        ),
    ] {
        let (status, answer) = request(port, &head, body);
        assert_eq!(status, expected, "{head}: {answer}");
        assert!(answer.contains(mentions), "{head}: {answer}");
        assert!(answer.starts_with("{\"error\":"), "{head}: {answer}");
    }
    for bad in [
        r#"{"seconds": 0}"#,
        r#"{"seconds": 86401}"#,
        "{}",
        "[1]",
        r#"{"seconds": 1, "x": 2}"#,
    ] {
        let (status, answer) = request(port, &format!("{start}\n{good_host}\n{auth}"), bad);
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    // Over 4 KiB: refused with and without a Content-Length.
    let big = format!(r#"{{"seconds": 60, "pad": "{}"}}"#, "x".repeat(5000));
    let (status, answer) = request(port, &format!("{start}\n{good_host}\n{auth}"), &big);
    assert_eq!(status, 413, "{answer}");
    let chunked = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let (status, answer) = raw(
        port,
        &format!("{start}\n{good_host}\n{auth}\nTransfer-Encoding: chunked\nConnection: close\n"),
        chunked.as_bytes(),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(status, 413, "{answer}");
    // None of the refused requests reached the lab.
    assert_eq!(count(&world, "POST /admin/faults"), 0);
    // Health needs no token (and says nothing else).
    let (status, answer) = request(port, &format!("GET /healthz HTTP/1.1\n{good_host}"), "");
    assert_eq!((status, answer.as_str()), (200, r#"{"status":"ok"}"#));

    // A client without the token file is stopped before it sends anything.
    let out = tokio::task::spawn_blocking(move || {
        labctl()
            .args(["--scenario-url", &format!("http://127.0.0.1:{port}")])
            .args(["scenario", "stop", "error-burst"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    common::assert_one_line_error(&out, "--scenario-url needs --scenario-token-file");
    // And one with a wrong token hears why.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-token-0123456789").unwrap();
    let out = client(port, &wrong, &["scenario", "stop", "error-burst"]).await;
    common::assert_one_line_error(&out, "labctl scenario serve at http://127.0.0.1:");
    assert!(text(&out).contains("refused the credentials (HTTP 401): wrong token"));
    stop_process(server);
}

#[test]
fn scenario_serve_needs_a_token_file() {
    let out = labctl()
        .args(["scenario", "serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    common::assert_one_line_error(&out, "scenario serve needs --scenario-token-file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_bounded_and_closed() {
    let world = World::start("admin").await;
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = serve(&world, dir.path());
    // Every connection the endpoint serves at once, held silent.
    let silent: Vec<TcpStream> = (0..labctl::guard::MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let health = "GET /healthz HTTP/1.1\nHost: localhost\nConnection: close\n";
    assert_eq!(
        raw(port, health, b"", Duration::from_secs(2)),
        None,
        "a connection beyond the limit was served"
    );
    // The silent ones are closed after the idle timeout, and the endpoint answers again.
    let started = Instant::now();
    let answered = raw(
        port,
        health,
        b"",
        labctl::guard::IDLE_TIMEOUT + Duration::from_secs(10),
    );
    assert_eq!(answered.map(|(s, _)| s), Some(200));
    assert!(started.elapsed() < labctl::guard::IDLE_TIMEOUT + Duration::from_secs(10));
    let mut first = &silent[0];
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        first.read(&mut buf).unwrap_or(0),
        0,
        "a silent connection stayed open"
    );
    stop_process(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_control_refuses_foreign_hosts_web_pages_and_large_bodies() {
    let port = closed_port();
    let nowhere = format!("http://127.0.0.1:{}", closed_port());
    let traffic = labctl()
        .args(["--api-url", &nowhere, "--frontend-url", &nowhere])
        .args(["traffic", "--rate", "1", "--report-every", "0"])
        .args(["--control-listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let pause = "POST /pause HTTP/1.1";
    let body = r#"{"seconds": 600}"#;
    for (head, expected, mentions) in [
        (
            format!("{pause}\nHost: rebind.attacker.example:{port}"),
            403,
            "Host `rebind.attacker.example",
        ),
        (
            format!("{pause}\nHost: localhost:{port}\nOrigin: http://evil.example"),
            403,
            "requests from web pages",
        ),
    ] {
        let (status, answer) = request(port, &head, body);
        assert_eq!(status, expected, "{head}: {answer}");
        assert!(answer.contains(mentions), "{answer}");
    }
    let big = format!(r#"{{"seconds": 600, "pad": "{}"}}"#, "x".repeat(5000));
    let (status, answer) = request(port, &format!("{pause}\nHost: localhost:{port}"), &big);
    assert_eq!(status, 413, "{answer}");
    for bad in ["[600]", "{}", r#"{"seconds": 0}"#, "x"] {
        let (status, answer) = request(port, &format!("{pause}\nHost: localhost:{port}"), bad);
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    let (_, status_body) = request(
        port,
        &format!("GET /status HTTP/1.1\nHost: 127.0.0.1:{port}"),
        "",
    );
    assert!(
        status_body.contains("\"state\":\"running\""),
        "refused pauses took effect: {status_body}"
    );
    // The lab's own client is served.
    let (status, answer) = request(port, &format!("{pause}\nHost: 127.0.0.1:{port}"), body);
    assert_eq!(status, 200, "{answer}");
    stop_process(traffic);
}
