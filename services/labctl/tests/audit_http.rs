//! The audits that ask the lab's HTTP APIs: `fault-api` against the services' real fault
//! API (shop-faults), `scrape` against a real Prometheus, and — Grafana and Loki do not run
//! here — `grafana`, `firing` and `log-lines` against stand-ins that answer in the shapes of
//! Grafana's and Loki's HTTP APIs (the VM tests run them against the real ones).
//!
//! `scrape` needs `prometheus` (Debian: `apt-get install prometheus`, or $PROMETHEUS); it
//! fails, never skips, without it.

mod common;

use std::{
    io,
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Output, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::{closed_port, labctl, World};
use labctl::rules::Catalog;
use poem::{
    get, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    web::{Data, LocalAddr, Path, Query, RemoteAddr},
    EndpointExt, IntoResponse, Response, Route, Server,
};
use poem_openapi::OpenApiService;
use serde_json::{json, Value};
use shop_faults::{FaultAccess, FaultKind, Faults, FaultsApi};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || labctl().args(&args).output().unwrap())
        .await
        .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Serves `app` on a free loopback port; returns its base URL.
async fn serve<E: poem::Endpoint + 'static>(app: E) -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr: SocketAddr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor).run(app).await;
    });
    format!("http://{addr}")
}

// ------------------------------------------------------------------------------------------
// fault-api

/// Accepts over loopback TCP but tells the app the peer is a host on the network: what a
/// service sees when a client on another host asks (this machine may have no other address
/// to connect from, the Nix sandbox has none).
struct FromTheNetwork(TcpAcceptor);

impl Acceptor for FromTheNetwork {
    type Io = tokio::net::TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (io, local, _, scheme) = self.0.accept().await?;
        let peer: SocketAddr = "192.0.2.50:50000".parse().unwrap();
        Ok((io, local, RemoteAddr(peer.into()), scheme))
    }
}

/// The services' fault API (as each service mounts it), reached "from the network".
async fn fault_api(access: FaultAccess) -> String {
    let faults = Faults::new(&[FaultKind::Latency, FaultKind::ErrorRate], access);
    let service = OpenApiService::new(FaultsApi::new(faults), "faults", "1");
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr: SocketAddr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(async move {
        let _ = Server::new_with_acceptor(FromTheNetwork(acceptor))
            .run(Route::new().nest("/", service))
            .await;
    });
    format!("http://{addr}")
}

/// A broken fault API that answers everyone: what the audit must catch.
#[handler]
fn open_faults() -> Response {
    (StatusCode::OK, poem::web::Json(json!({"faults": []}))).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_api_refuses_without_the_token_and_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "fault-token-0123456789\n").unwrap();
    let token = token.display().to_string();
    let guarded = fault_api(FaultAccess {
        enabled: true,
        token: Some("fault-token-0123456789".into()),
        ..FaultAccess::default()
    })
    .await;
    let out = run(args(&[
        "--fault-token-file",
        &token,
        "audit",
        "fault-api",
        "--service",
        &format!("payment={guarded}"),
        "--service",
        &format!("api={guarded}/"),
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("payment: a fault without a token: 401 as it must"),
        "{all}"
    );
    assert!(
        all.contains("api: a listing with the token: 200 as it must"),
        "{all}"
    );

    // Each way a fault API can be wrong is named.
    let open = serve(Route::new().at("/admin/faults", get(open_faults).post(open_faults))).await;
    let no_token = fault_api(FaultAccess {
        enabled: true,
        token: None,
        ..FaultAccess::default()
    })
    .await;
    let disabled = fault_api(FaultAccess {
        enabled: false,
        token: Some("fault-token-0123456789".into()),
        ..FaultAccess::default()
    })
    .await;
    for (name, url, mentions) in [
        ("open", &open, "open (http://127.0.0.1:"),
        ("open", &open, "a listing without a token answered 200"),
        ("tokenless", &no_token, "a listing with the token answered 403 (the fault API has no token configured (--fault-token-file), so it refuses every request), not 200"),
        ("disabled", &disabled, "a listing with the token answered 403 (fault injection is disabled on this service"),
    ] {
        let out = run(args(&[
            "--fault-token-file",
            &token,
            "audit",
            "fault-api",
            "--service",
            &format!("{name}={url}"),
        ]))
        .await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(mentions), "{mentions}: {}", text(&out));
    }
    let out = run(args(&[
        "audit",
        "fault-api",
        "--service",
        &format!("payment={guarded}"),
    ]))
    .await;
    common::assert_one_line_error(&out, "audit fault-api needs --fault-token-file");
}

// ------------------------------------------------------------------------------------------
// log-lines

/// Loki's instant query (`/loki/api/v1/query`) answering `count_over_time` per service: the
/// api's count grows by one per query from `start`, the others are fixed.
struct LokiCounts {
    api: AtomicU64,
    queries: AtomicU64,
    last_query: std::sync::Mutex<String>,
}

#[handler]
fn loki_query(Query(q): Query<Vec<(String, String)>>, counts: Data<&Arc<LokiCounts>>) -> Response {
    let query = q
        .iter()
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    *counts.last_query.lock().unwrap() = query;
    counts.queries.fetch_add(1, Ordering::SeqCst);
    let api = counts.api.fetch_add(1, Ordering::SeqCst);
    let body = json!({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"service": "api"}, "value": [1767225600.0, api.to_string()]},
        {"metric": {"service": "payment"}, "value": [1767225600.0, "5"]},
    ]}});
    poem::web::Json(body).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_waits_until_loki_has_every_line_written() {
    let dir = tempfile::tempdir().unwrap();
    let api_log = dir.path().join("api.log");
    let rotated = dir.path().join("api.log.1");
    std::fs::write(&api_log, "a\nb\n").unwrap();
    std::fs::write(&rotated, "c\n").unwrap();
    let counts = Arc::new(LokiCounts {
        api: AtomicU64::new(1),
        queries: AtomicU64::new(0),
        last_query: Default::default(),
    });
    let loki = serve(
        Route::new()
            .at("/loki/api/v1/query", get(loki_query))
            .data(counts.clone()),
    )
    .await;
    let out = run(args(&[
        "--loki-url",
        &loki,
        "audit",
        "log-lines",
        "--service",
        &format!("api={}", api_log.display()),
        "--service",
        &format!("api={}", rotated.display()),
        "--service",
        "payment",
        "--wait",
        "30s",
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("api: 3 line(s) written, 3 in Loki"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("payment: 5 line(s) in Loki"),
        "{}",
        text(&out)
    );
    assert_eq!(
        counts.queries.load(Ordering::SeqCst),
        3,
        "it polled until the counts met"
    );
    assert_eq!(
        *counts.last_query.lock().unwrap(),
        "sum by (service) (count_over_time({job=\"alertlab\"}[2h]))"
    );

    // --with-rotated: the live file given, its rotated file found as the services name it.
    counts.api.store(3, Ordering::SeqCst);
    let out = run(args(&[
        "--loki-url",
        &loki,
        "audit",
        "log-lines",
        "--with-rotated",
        "--service",
        &format!("api={}", api_log.display()),
        "--wait",
        "5s",
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("api: 3 line(s) written, 3 in Loki"), "{all}");
    assert!(
        all.contains(&format!(
            "api: counted {} 1, {} 2",
            rotated.display(),
            api_log.display()
        )),
        "{all}"
    );
    // Without the flag the rotated file's line is missing from what was written.
    counts.api.store(3, Ordering::SeqCst);
    let out = run(args(&[
        "--loki-url",
        &loki,
        "audit",
        "log-lines",
        "--service",
        &format!("api={}", api_log.display()),
        "--wait",
        "1s",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("FINDING: api: 2 line(s) written, "),
        "{}",
        text(&out)
    );

    // A line that never arrives fails after --wait with both numbers.
    std::fs::write(&api_log, "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\n").unwrap();
    counts.api.store(1, Ordering::SeqCst);
    let started = Instant::now();
    let out = run(args(&[
        "--loki-url",
        &loki,
        "audit",
        "log-lines",
        "--service",
        &format!("api={}", api_log.display()),
        "--service",
        "frontend",
        "--wait",
        "3s",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(15));
    let all = text(&out);
    assert!(all.contains("FINDING: api: 14 line(s) written, "), "{all}");
    assert!(all.contains("FINDING: frontend: no line in Loki"), "{all}");

    let out = run(args(&["audit", "log-lines", "--service", "api"])).await;
    common::assert_one_line_error(&out, "audit log-lines needs --loki-url");
}

// ------------------------------------------------------------------------------------------
// grafana and firing

/// Grafana's health, data-source health and rules endpoints: data source `loki` becomes
/// healthy on the third look; `missing_rule` is left out of the rules.
struct GrafanaStandIn {
    looks: AtomicU64,
    missing_rule: Option<String>,
}

#[handler]
fn grafana_health() -> Response {
    poem::web::Json(json!({"database": "ok", "version": "12.4.0"})).into_response()
}

#[handler]
fn datasource_health(Path(uid): Path<String>, g: Data<&Arc<GrafanaStandIn>>) -> Response {
    if uid == "loki" && g.looks.fetch_add(1, Ordering::SeqCst) < 2 {
        return (
            StatusCode::BAD_REQUEST,
            poem::web::Json(json!({"status": "ERROR", "message": "Unable to connect with Loki"})),
        )
            .into_response();
    }
    poem::web::Json(json!({"status": "OK", "message": "Data source is working"})).into_response()
}

#[handler]
fn grafana_rules(g: Data<&Arc<GrafanaStandIn>>) -> Response {
    let catalog = Catalog::load(None, None, "demo").unwrap();
    let rules: Vec<Value> = catalog
        .rules
        .iter()
        .filter(|r| Some(&r.uid) != g.missing_rule.as_ref())
        .map(|r| json!({"uid": r.uid, "name": r.title, "state": "inactive", "health": "ok", "type": "alerting", "alerts": []}))
        .collect();
    poem::web::Json(json!({"status": "success", "data": {"groups": [
        {"name": "alertlab", "file": "alertlab", "interval": 30, "rules": rules}
    ]}}))
    .into_response()
}

async fn grafana_stand_in(missing_rule: Option<&str>) -> String {
    serve(
        Route::new()
            .at("/api/health", get(grafana_health))
            .at("/api/datasources/uid/:uid/health", get(datasource_health))
            .at(labctl::grafana::RULES_PATH, get(grafana_rules))
            .data(Arc::new(GrafanaStandIn {
                looks: AtomicU64::new(0),
                missing_rule: missing_rule.map(str::to_owned),
            })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_is_ready_once_every_data_source_is_healthy_and_every_rule_loaded() {
    let grafana = grafana_stand_in(None).await;
    let out = run(args(&[
        "--grafana-url",
        &grafana,
        "audit",
        "grafana",
        "--wait",
        "30s",
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let catalog = Catalog::load(None, None, "demo").unwrap();
    let expected = format!(
        "{} data source(s) healthy, {} rule(s) loaded",
        catalog.datasources.len(),
        catalog.rules.len()
    );
    assert!(text(&out).contains(&expected), "{}", text(&out));

    let grafana = grafana_stand_in(Some("alertlab-order-drought")).await;
    let out = run(args(&[
        "--grafana-url",
        &grafana,
        "audit",
        "grafana",
        "--wait",
        "1s",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("FINDING: data source loki: HTTP 400: Unable to connect with Loki"),
        "{all}"
    );
    assert!(
        all.contains("FINDING: rules not loaded: alertlab-order-drought"),
        "{all}"
    );

    let nowhere = format!("http://127.0.0.1:{}", closed_port());
    let out = run(args(&[
        "--grafana-url",
        &nowhere,
        "audit",
        "grafana",
        "--wait",
        "0s",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("cannot reach Grafana at"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_waits_for_every_named_rule() {
    // The test world fires a rule while its scenario's fault is in force.
    let world = World::start("admin").await;
    let client = reqwest::Client::new();
    client
        .post(format!("{}/admin/faults", world.url))
        .header("authorization", world.fault_bearer())
        .json(&json!({"kind": "decline_rate", "value": 1.0, "duration_seconds": 60}))
        .send()
        .await
        .unwrap();
    let out = run(args(&[
        "--grafana-url",
        &world.url,
        "audit",
        "firing",
        "alertlab-payment-failure-rate",
        "alertlab-failed-orders",
        "--within",
        "20s",
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("alertlab-failed-orders: firing"),
        "{}",
        text(&out)
    );

    let out = run(args(&[
        "--grafana-url",
        &world.url,
        "audit",
        "firing",
        "alertlab-payment-failure-rate",
        "alertlab-high-latency",
        "alertlab-no-such-rule",
        "--within",
        "2s",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("FINDING: alertlab-high-latency: inactive"),
        "{all}"
    );
    assert!(
        all.contains("FINDING: alertlab-no-such-rule: not loaded in Grafana"),
        "{all}"
    );
    assert!(
        !all.contains("FINDING: alertlab-payment-failure-rate"),
        "{all}"
    );
}

// ------------------------------------------------------------------------------------------
// scrape

fn prometheus_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMETHEUS") {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("prometheus"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "this test needs `prometheus` on PATH (or $PROMETHEUS): apt-get install prometheus"
            )
        })
}

struct Prometheus(Child, u16);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real Prometheus scraping `targets` (service name → address) every second, as jobs
/// `shop-<service>` with a `service` label, the way the lab's scrape configuration does.
fn prometheus(dir: &std::path::Path, targets: &[(&str, String)]) -> Prometheus {
    let port = closed_port();
    let jobs: Vec<Value> = targets
        .iter()
        .map(|(service, addr)| {
            json!({
                "job_name": format!("shop-{service}"),
                "scrape_interval": "1s",
                "static_configs": [{"targets": [addr], "labels": {"service": service}}],
            })
        })
        .collect();
    let config = dir.join(format!("prometheus-{port}.yml"));
    std::fs::write(&config, json!({"scrape_configs": jobs}).to_string()).unwrap();
    let child = std::process::Command::new(prometheus_binary())
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join(format!("data-{port}")).display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "Prometheus did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Prometheus(child, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_needs_every_shop_service_up_in_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    // Live targets: a tiny /metrics per service.
    #[handler]
    fn metrics() -> &'static str {
        "# TYPE x gauge\nx 1\n"
    }
    let live = serve(Route::new().at("/metrics", get(metrics))).await;
    let live = live.trim_start_matches("http://").to_owned();
    let all_up = prometheus(
        dir.path(),
        &[
            ("api", live.clone()),
            ("frontend", live.clone()),
            ("payment", live.clone()),
            ("inventory", live.clone()),
        ],
    );
    let out = run(args(&[
        "--prometheus-url",
        &format!("http://127.0.0.1:{}", all_up.1),
        "audit",
        "scrape",
        "--wait",
        "60s",
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("inventory: up 1"), "{}", text(&out));
    drop(all_up);

    let down = format!("127.0.0.1:{}", closed_port());
    let one_down = prometheus(
        dir.path(),
        &[
            ("api", live.clone()),
            ("frontend", live.clone()),
            ("payment", down),
        ],
    );
    let out = run(args(&[
        "--prometheus-url",
        &format!("http://127.0.0.1:{}", one_down.1),
        "audit",
        "scrape",
        "--wait",
        "8s",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("FINDING: payment: up is 0"), "{all}");
    assert!(
        all.contains("FINDING: inventory: not scraped (no `up` series)"),
        "{all}"
    );
    assert!(!all.contains("FINDING: api"), "{all}");
}
