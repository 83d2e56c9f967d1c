//! Test support: the labctl binary, free ports, and a fake lab ("world") on one port that
//! answers like Grafana (rules, Alertmanager, annotations, health), the webhook sink, Mailpit,
//! `labctl traffic`'s control endpoint, the services' fault API, the inventory, the API and
//! the frontend — and reacts to scenarios: a rule fires while its scenario's fault (or
//! action) is in force and resolves after, with notifications in both sinks.

#![allow(dead_code)]

use std::{
    collections::HashMap,
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use labctl::rules::Catalog;
use poem::{
    handler,
    http::{Method, StatusCode},
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
    Body, EndpointExt, IntoResponse, Request, Response, Route, Server,
};
use serde_json::{json, Value};

pub const BINARY: &str = env!("CARGO_BIN_EXE_labctl");

pub fn fixture(name: &str) -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A new directory only this user can use, as labctl requires of its state directory.
pub fn private_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir()
        .unwrap()
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `labctl` with no LABCTL_* variables from the environment.
pub fn labctl() -> Command {
    let mut cmd = Command::new(BINARY);
    for (k, _) in std::env::vars() {
        if k.starts_with("LABCTL_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Asserts a clean failure: exit 1, one line on stderr starting with `labctl: error:` that
/// contains `expected`, no panic.
pub fn assert_one_line_error(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(
        lines[0].starts_with("labctl: error: "),
        "not an error line: {}",
        lines[0]
    );
    assert!(
        lines[0].contains(expected),
        "`{}` does not contain `{expected}`",
        lines[0]
    );
}

#[derive(Default)]
pub struct WorldState {
    rules: Vec<(String, String, String, u64)>,
    faults: HashMap<String, Instant>,
    brute_last: Option<Instant>,
    stuffing_last: Option<Instant>,
    paused_until: Option<Instant>,
    down_flag: PathBuf,
    firing: HashMap<String, bool>,
    pub webhook: Vec<Value>,
    pub mail: Vec<Value>,
    /// Rule titles whose emails never arrive.
    pub drop_email_for: Vec<String>,
    pub annotations: Vec<Value>,
    pub logins: Vec<(String, bool)>,
    /// The `Authorization` header of every stock change.
    pub stock_authorizations: Vec<Option<String>>,
    /// The `Authorization` header of every checkout.
    pub checkout_authorizations: Vec<Option<String>>,
    pub requests: Vec<String>,
    pub password: String,
    /// The token the fake services' fault API requires, as the real ones do.
    pub fault_token: String,
    stock_7: i64,
}

impl WorldState {
    fn active(&mut self, scenario: &str) -> bool {
        let now = Instant::now();
        let fault = |kind: &str, faults: &HashMap<String, Instant>| {
            faults.get(kind).is_some_and(|until| *until > now)
        };
        match scenario {
            "error-burst" => fault("error_rate", &self.faults),
            "latency-spike" => fault("latency", &self.faults),
            "payment-outage" => fault("decline_rate", &self.faults),
            "stock-depletion" => fault("restock_paused", &self.faults),
            "brute-force" => self
                .brute_last
                .is_some_and(|t| now.duration_since(t) < Duration::from_millis(1500)),
            "credential-stuffing" => self
                .stuffing_last
                .is_some_and(|t| now.duration_since(t) < Duration::from_millis(1500)),
            "traffic-stop" => self.paused_until.is_some_and(|t| t > now),
            "service-down" => self.down_flag.exists(),
            _ => false,
        }
    }

    /// Rules follow their scenarios; transitions are notified.
    fn update(&mut self) {
        let rules = self.rules.clone();
        for (uid, title, scenario, _) in rules {
            let firing = self.active(&scenario);
            let was = self.firing.insert(uid.clone(), firing).unwrap_or(false);
            if firing == was {
                continue;
            }
            let status = if firing { "firing" } else { "resolved" };
            let seq = self.webhook.len() as u64 + 1;
            self.webhook.push(json!({
                "seq": seq,
                "received_at": Utc::now(),
                "payload": {
                    "receiver": "alertlab-webhook",
                    "status": status,
                    "alerts": [{"status": status, "labels": {"alertname": title, "scenario": scenario}}],
                    "title": format!("[{}] {title}", status.to_uppercase()),
                }
            }));
            if !self.drop_email_for.contains(&title) {
                let subject = if firing {
                    format!("[FIRING:1] {title}")
                } else {
                    format!("[RESOLVED] {title}")
                };
                self.mail.push(json!({
                    "ID": format!("m{}", self.mail.len()),
                    "Subject": subject,
                    "Created": Utc::now(),
                    "To": [{"Address": "oncall@alertlab.test"}],
                }));
            }
        }
    }

    fn rules_body(&mut self) -> Value {
        self.update();
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|(uid, title, scenario, for_s)| {
                let firing = self.firing.get(uid).copied().unwrap_or(false);
                json!({
                    "uid": uid,
                    "name": title,
                    "state": if firing { "firing" } else { "inactive" },
                    "health": "ok",
                    "lastError": "",
                    "type": "alerting",
                    "duration": for_s,
                    "labels": {"scenario": scenario},
                    "lastEvaluation": Utc::now(),
                    "alerts": [{
                        "labels": {"alertname": title, "grafana_folder": "alertlab"},
                        "state": if firing { "Alerting" } else { "Normal" },
                        "activeAt": Utc::now(),
                        "value": if firing { "1e+00" } else { "0e+00" },
                    }],
                })
            })
            .collect();
        json!({"status": "success", "data": {"groups": [
            {"name": "alertlab", "file": "alertlab", "interval": 10, "rules": rules}
        ]}})
    }

    fn am_body(&mut self) -> Value {
        self.update();
        let alerts: Vec<Value> = self
            .rules
            .iter()
            .filter(|(uid, ..)| self.firing.get(uid).copied().unwrap_or(false))
            .map(|(_, title, ..)| {
                json!({
                    "labels": {"alertname": title},
                    "receivers": [{"name": "alertlab-webhook"}, {"name": "alertlab-email"}],
                    "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
                })
            })
            .collect();
        Value::Array(alerts)
    }
}

const WORLD_FAULT_TOKEN: &str = "world-fault-token";

pub struct World {
    pub url: String,
    pub state: Arc<Mutex<WorldState>>,
    pub dir: tempfile::TempDir,
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

fn authorized(req: &Request, password: &str) -> bool {
    use base64_engine::encode;
    let expected = format!("Basic {}", encode(&format!("admin:{password}")));
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
}

/// A tiny base64 encoder (no extra dependency for one header).
mod base64_engine {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[handler]
async fn any(req: &Request, body: Body, state: Data<&Arc<Mutex<WorldState>>>) -> Response {
    let bytes = body.into_vec().await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let method = req.method().clone();
    let mut s = state.lock().unwrap();
    s.requests.push(format!("{method} {path}"));
    let password = s.password.clone();
    let grafana_auth = || authorized(req, &password);
    let unauthorized = || {
        json_response(
            StatusCode::UNAUTHORIZED,
            json!({"message": "invalid username or password"}),
        )
    };
    match (method, path.as_str()) {
        (Method::GET, "/api/health") => json_response(
            StatusCode::OK,
            serde_json::from_str(&fixture("health.json")).unwrap(),
        ),
        (Method::GET, "/api/prometheus/grafana/api/v1/rules") => {
            if !grafana_auth() {
                return unauthorized();
            }
            json_response(StatusCode::OK, s.rules_body())
        }
        (Method::GET, "/api/alertmanager/grafana/api/v2/alerts") => {
            if !grafana_auth() {
                return unauthorized();
            }
            json_response(StatusCode::OK, s.am_body())
        }
        (Method::POST, "/api/annotations") => {
            if !grafana_auth() {
                return unauthorized();
            }
            s.annotations.push(body);
            json_response(
                StatusCode::OK,
                json!({"id": s.annotations.len(), "message": "Annotation added"}),
            )
        }
        (Method::GET, "/healthz") => json_response(StatusCode::OK, json!({"status": "ok"})),
        (Method::GET, "/notifications") => {
            s.update();
            json_response(StatusCode::OK, json!({"notifications": s.webhook}))
        }
        (Method::GET, "/api/v1/messages") => {
            s.update();
            json_response(
                StatusCode::OK,
                json!({"total": s.mail.len(), "messages": s.mail}),
            )
        }
        (Method::GET, "/api/v1/query") => json_response(
            StatusCode::OK,
            json!({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [1.0, "1"]}
            ]}}),
        ),
        (Method::GET, "/loki/api/v1/query") => json_response(
            StatusCode::OK,
            json!({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [1.0, "3"]}
            ]}}),
        ),
        (Method::GET, "/status") => {
            let paused = s.paused_until.is_some_and(|t| t > Instant::now());
            json_response(
                StatusCode::OK,
                json!({"state": if paused { "paused" } else { "running" }}),
            )
        }
        (Method::POST, "/pause") => {
            let seconds = body["seconds"].as_u64().unwrap_or(0);
            s.paused_until = Some(Instant::now() + Duration::from_secs(seconds));
            json_response(StatusCode::OK, json!({"state": "paused"}))
        }
        (Method::POST, "/resume") => {
            s.paused_until = None;
            json_response(StatusCode::OK, json!({"state": "running"}))
        }
        (_, "/admin/faults")
            if req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                != Some(format!("Bearer {}", s.fault_token).as_str()) =>
        {
            json_response(
                StatusCode::UNAUTHORIZED,
                json!({"error": "a valid `Authorization: Bearer <token>` header is required"}),
            )
        }
        (Method::POST, "/admin/faults") => {
            let kind = body["kind"].as_str().unwrap_or("").to_owned();
            let seconds = body["duration_seconds"].as_u64().unwrap_or(0);
            s.faults
                .insert(kind, Instant::now() + Duration::from_secs(seconds));
            json_response(StatusCode::CREATED, body)
        }
        (Method::DELETE, "/admin/faults") => {
            let kind = query.strip_prefix("kind=").unwrap_or("").to_owned();
            let cleared = u64::from(s.faults.remove(&kind).is_some());
            json_response(StatusCode::OK, json!({"cleared": cleared}))
        }
        (Method::GET, "/stock") => json_response(
            StatusCode::OK,
            json!([{"product_id": 7, "product_name": "Summit Hiking Backpack",
                    "stock_level": s.stock_7, "low_stock_threshold": 12, "status": "ok"}]),
        ),
        (Method::PUT, "/stock/7") => {
            let authorization = header(req, "authorization");
            s.stock_authorizations.push(authorization);
            s.stock_7 = body["stock_level"].as_i64().unwrap_or(0);
            json_response(
                StatusCode::OK,
                json!({"product_id": 7, "stock_level": s.stock_7}),
            )
        }
        (Method::POST, "/login") => {
            let ip = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            if ip == "203.0.113.66" {
                s.brute_last = Some(Instant::now());
            }
            if ip.starts_with("192.0.2.") {
                s.stuffing_last = Some(Instant::now());
            }
            let ok = body["password"] == "alertlab-demo";
            s.logins.push((ip, ok));
            if ok {
                json_response(
                    StatusCode::OK,
                    json!({"customer_id": 1, "session_token": format!("session-{}", s.logins.len()),
                           "expires_at": Utc::now() + chrono::Duration::hours(1)}),
                )
            } else {
                json_response(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": "invalid email or password"}),
                )
            }
        }
        (Method::GET, "/products") => json_response(
            StatusCode::OK,
            json!([
                {"id": 1, "stock_level": 180, "low_stock_threshold": 20},
                {"id": 7, "stock_level": 13, "low_stock_threshold": 12},
            ]),
        ),
        (Method::GET, "/") | (Method::GET, "/cart") => Response::builder()
            .status(StatusCode::OK)
            .header("set-cookie", "shop_session=s1; Path=/; HttpOnly")
            .body("<html></html>"),
        (Method::GET, p) if p.starts_with("/products/") => Response::builder()
            .status(StatusCode::OK)
            .body("<html></html>"),
        (Method::POST, "/cart/items") => json_response(StatusCode::CREATED, json!({"items": []})),
        (Method::POST, "/checkout") => {
            let authorization = header(req, "authorization");
            s.checkout_authorizations.push(authorization);
            json_response(
                StatusCode::CREATED,
                json!({"status": "completed", "orders": []}),
            )
        }
        _ => json_response(StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
    .into_response()
}

impl World {
    pub async fn start(password: &str) -> World {
        let catalog = Catalog::load(None, None, "fast").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("fault-token"),
            format!("{WORLD_FAULT_TOKEN}\n"),
        )
        .unwrap();
        let state = Arc::new(Mutex::new(WorldState {
            rules: catalog
                .rules
                .iter()
                .map(|r| (r.uid.clone(), r.title.clone(), r.scenario.clone(), r.for_s))
                .collect(),
            down_flag: dir.path().join("inventory-down"),
            password: password.to_owned(),
            fault_token: WORLD_FAULT_TOKEN.to_owned(),
            stock_7: 120,
            ..WorldState::default()
        }));
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr: SocketAddr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let app = Route::new()
            .at("/*path", any)
            .at("/", any)
            .data(state.clone());
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        World {
            url: format!("http://{addr}"),
            state,
            dir,
        }
    }

    /// `Authorization` header value for the world's fault API.
    pub fn fault_bearer(&self) -> String {
        format!("Bearer {WORLD_FAULT_TOKEN}")
    }

    /// The file holding the fault API's token.
    pub fn fault_token_file(&self) -> PathBuf {
        self.dir.path().join("fault-token")
    }

    /// Every target of labctl pointed at this world, with the fault token.
    pub fn targets(&self) -> Vec<String> {
        let mut args = self.targets_without_token();
        args.push("--fault-token-file".to_owned());
        args.push(self.fault_token_file().display().to_string());
        args
    }

    /// Every target, but no fault token.
    pub fn targets_without_token(&self) -> Vec<String> {
        let mut args = Vec::new();
        for flag in [
            "--api-url",
            "--frontend-url",
            "--payment-url",
            "--inventory-url",
            "--grafana-url",
            "--prometheus-url",
            "--sink-url",
            "--mailpit-url",
            "--traffic-url",
        ] {
            args.push(flag.to_owned());
            args.push(self.url.clone());
        }
        args
    }

    pub fn down_flag(&self) -> PathBuf {
        self.state.lock().unwrap().down_flag.clone()
    }
}
