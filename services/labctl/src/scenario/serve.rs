//! `labctl scenario serve`: the scenarios over HTTP, for a labctl that cannot act on the lab
//! itself (the host of the `nix run` VM reaches only a few forwarded ports; the fault API and
//! the units are inside). The scenarios run in this process, with this process's targets and
//! credentials; a client only names a scenario and a duration.
//!
//! - `GET /healthz`: `{"status": "ok"}` (no token needed).
//! - `GET /scenarios`: `{"running": [{"scenario", "ends_at"}]}`.
//! - `POST /scenarios/{name}/start` `{"seconds": N}` (1 to 86400): 200 with `ends_at` once the
//!   scenario is in force; 409 while it already runs; 502 when it cannot start (what was
//!   done is undone).
//! - `POST /scenarios/{name}/stop`: 200 with what the revert did (also when nothing runs it
//!   here: the revert is idempotent).
//!
//! Every request but `/healthz` needs the token; Host, Origin, body size and connections
//! are checked as for every control endpoint ([`crate::guard`]). On SIGTERM or SIGINT it stops
//! serving and reverts what still runs.

use std::{collections::HashMap, net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use poem::{
    get, handler,
    http::StatusCode,
    post,
    web::{Data, Json, Path},
    Body, EndpointExt, IntoResponse, Response, Route, Server,
};
use serde::Deserialize;
use serde_json::json;
use tokio::{
    sync::{oneshot, Mutex},
    task::JoinHandle,
};

use super::{begin, finish, state::StateDir, stop, Env, Scenario};
use crate::{
    guard::{Guard, LimitedAcceptor, Policy, Token, IDLE_TIMEOUT, MAX_CONNECTIONS},
    http,
};

/// Why a control request failed; each maps to one status.
#[derive(Debug)]
pub enum ControlError {
    UnknownScenario(String),
    BadBody(String),
    AlreadyRunning {
        scenario: Scenario,
        ends_at: DateTime<Utc>,
    },
    /// Starting or reverting failed in the lab (a service, a command): the cause chain.
    Lab(String),
}

impl ControlError {
    fn status(&self) -> StatusCode {
        match self {
            Self::UnknownScenario(_) => StatusCode::NOT_FOUND,
            Self::BadBody(_) => StatusCode::BAD_REQUEST,
            Self::AlreadyRunning { .. } => StatusCode::CONFLICT,
            Self::Lab(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::UnknownScenario(message) | Self::BadBody(message) | Self::Lab(message) => {
                message.clone()
            }
            Self::AlreadyRunning { scenario, ends_at } => format!(
                "scenario {} is already running here until {}; stop it first",
                scenario.name(),
                ends_at.format("%H:%M:%S UTC")
            ),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({ "error": self.message() }))).into_response()
    }
}

/// A scenario this process runs: its revert task ends it at `ends_at`, or at once on `stop`.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<String>>,
    ends_at: DateTime<Utc>,
}

struct Control {
    env: Env,
    state: StateDir,
    running: Mutex<HashMap<Scenario, Running>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    seconds: u64,
}

fn scenario_named(name: &str) -> Result<Scenario, ControlError> {
    Scenario::parse(name).map_err(|e| ControlError::UnknownScenario(e.to_string()))
}

#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

#[handler]
async fn list(control: Data<&Arc<Control>>) -> Json<serde_json::Value> {
    let running = control.running.lock().await;
    let mut items: Vec<_> = running
        .iter()
        .filter(|(_, r)| !r.task.is_finished())
        .map(|(s, r)| (*s, r.ends_at))
        .collect();
    items.sort();
    Json(json!({
        "running": items
            .into_iter()
            .map(|(s, ends_at)| json!({"scenario": s.name(), "ends_at": ends_at}))
            .collect::<Vec<_>>()
    }))
}

fn answer(result: Result<serde_json::Value, ControlError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(err) => err.into_response(),
    }
}

#[handler]
async fn start_handler(
    Path(name): Path<String>,
    body: Body,
    control: Data<&Arc<Control>>,
) -> Response {
    answer(start(&name, body, &control).await)
}

async fn start(
    name: &str,
    body: Body,
    control: &Control,
) -> Result<serde_json::Value, ControlError> {
    let scenario = scenario_named(name)?;
    let bytes = body
        .into_vec()
        .await
        .map_err(|e| ControlError::BadBody(format!("cannot read the body: {e}")))?;
    let bad = |detail: String| {
        ControlError::BadBody(format!(
            "expected a JSON object {{\"seconds\": N}} with N between 1 and 86400 ({detail})"
        ))
    };
    // An object only: serde would also read `[N]` as the struct.
    let body: StartBody = match serde_json::from_slice(&bytes) {
        Ok(value @ serde_json::Value::Object(_)) => {
            serde_json::from_value(value).map_err(|e| bad(e.to_string()))?
        }
        Ok(_) => return Err(bad("not an object".into())),
        Err(e) => return Err(bad(e.to_string())),
    };
    if !(1..=86_400).contains(&body.seconds) {
        return Err(ControlError::BadBody(format!(
            "`seconds` must be between 1 and 86400, got {}",
            body.seconds
        )));
    }
    let duration = Duration::from_secs(body.seconds);
    // Held while the scenario starts: two starts of one scenario cannot race.
    let mut running = control.running.lock().await;
    if let Some(r) = running.get(&scenario) {
        if !r.task.is_finished() {
            return Err(ControlError::AlreadyRunning {
                scenario,
                ends_at: r.ends_at,
            });
        }
    }
    let ends_at = Utc::now() + chrono::Duration::seconds(body.seconds as i64);
    let active = begin(&control.env, scenario, duration)
        .await
        .map_err(|e| ControlError::Lab(http::one_line(&e)))?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let env = control.env.clone();
    let task = tokio::spawn(async move {
        let reason = tokio::select! {
            _ = tokio::time::sleep(duration) => "its duration ran out",
            _ = stop_rx => "it was stopped",
        };
        finish(&env, active, reason).await
    });
    running.insert(
        scenario,
        Running {
            stop: stop_tx,
            task,
            ends_at,
        },
    );
    Ok(json!({
        "scenario": scenario.name(),
        "state": "running",
        "ends_at": ends_at,
        "description": scenario.description(&control.env.options),
    }))
}

/// Ends a scenario this process runs (its task reverts it), else reverts it directly.
async fn stop_one(control: &Control, scenario: Scenario) -> Result<String, ControlError> {
    let entry = control.running.lock().await.remove(&scenario);
    match entry {
        Some(r) if !r.task.is_finished() => {
            let _ = r.stop.send(());
            match r.task.await {
                Ok(Ok(what)) => Ok(what),
                Ok(Err(e)) => Err(ControlError::Lab(http::one_line(&e))),
                Err(e) => Err(ControlError::Lab(format!(
                    "the scenario's task failed: {e}"
                ))),
            }
        }
        _ => stop(&control.env, &control.state, scenario)
            .await
            .map_err(|e| ControlError::Lab(http::one_line(&e))),
    }
}

#[handler]
async fn stop_handler(Path(name): Path<String>, control: Data<&Arc<Control>>) -> Response {
    answer(
        async {
            let scenario = scenario_named(&name)?;
            let what = stop_one(&control, scenario).await?;
            Ok(json!({"scenario": scenario.name(), "reverted": what}))
        }
        .await,
    )
}

/// Serves until SIGTERM or SIGINT, then reverts the scenarios still running.
pub async fn command(
    env: Env,
    state: StateDir,
    listen: SocketAddr,
    allowed_hosts: &[String],
    token_file: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let token_file = token_file.ok_or_else(|| {
        anyhow!("scenario serve needs --scenario-token-file (the token its clients present)")
    })?;
    let token = Token::from_file("--scenario-token-file", token_file)?;
    let acceptor = LimitedAcceptor::bind(listen, MAX_CONNECTIONS)
        .await
        .map_err(|e| anyhow!("--listen {listen}: cannot listen: {e}"))?;
    let bound = acceptor.local_addr().unwrap_or(listen);
    let control = Arc::new(Control {
        env,
        state,
        running: Mutex::new(HashMap::new()),
    });
    let app = Route::new()
        .at("/healthz", get(healthz))
        .at("/scenarios", get(list))
        .at("/scenarios/:name/start", post(start_handler))
        .at("/scenarios/:name/stop", post(stop_handler))
        .data(control.clone())
        .with(Guard(Policy::new(listen, allowed_hosts, Some(token))));
    eprintln!("scenario serve: listening on http://{bound}");
    let signal = crate::signals::received();
    let served = Server::new_with_acceptor(acceptor)
        .idle_timeout(IDLE_TIMEOUT)
        .run_with_graceful_shutdown(
            app,
            async {
                let name = signal.await.unwrap_or("signal handler failure");
                eprintln!("scenario serve: {name}: stopping");
            },
            Some(Duration::from_secs(5)),
        )
        .await;
    let still: Vec<Scenario> = control.running.lock().await.keys().copied().collect();
    let mut failed = Vec::new();
    for scenario in still {
        if let Err(e) = stop_one(&control, scenario).await {
            eprintln!(
                "scenario serve: {}: revert FAILED: {}",
                scenario.name(),
                e.message()
            );
            failed.push(scenario.name());
        }
    }
    served.map_err(|e| anyhow!("serving on {bound}: {e}"))?;
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(anyhow!("could not revert: {}", failed.join(", ")))
    }
}
