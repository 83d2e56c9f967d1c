//! The traffic generator's control endpoint: `GET /status`, `POST /pause {"seconds": N}`,
//! `POST /resume`, `GET /healthz`. It answers only requests that name this machine in `Host`
//! and come from no web page, with small bodies and few connections ([`crate::guard`]): a
//! page in the lab user's browser cannot pause the traffic, even through DNS rebinding.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    get, handler,
    http::StatusCode,
    post,
    web::{Data, Json},
    EndpointExt, IntoResponse, Response, Route, Server,
};
use serde::Deserialize;
use serde_json::json;
use tokio::{sync::watch, task::JoinHandle};

use super::Shared;
use crate::guard::{Guard, LimitedAcceptor, Policy, IDLE_TIMEOUT, MAX_CONNECTIONS};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pause {
    seconds: u64,
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

#[handler]
fn get_status(shared: Data<&Arc<Shared>>) -> Json<serde_json::Value> {
    Json(shared.status())
}

#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

#[handler]
async fn pause(shared: Data<&Arc<Shared>>, body: poem::Body) -> Response {
    let expected = "expected a JSON object {\"seconds\": N} with N between 1 and 86400";
    // An object only: serde would also read `[N]` as the struct.
    let parsed = match body.into_vec().await.map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(value @ serde_json::Value::Object(_))) => serde_json::from_value::<Pause>(value).ok(),
        _ => None,
    };
    let Some(body) = parsed else {
        return error(StatusCode::BAD_REQUEST, expected);
    };
    if !(1..=86_400).contains(&body.seconds) {
        return error(
            StatusCode::BAD_REQUEST,
            "`seconds` must be between 1 and 86400",
        );
    }
    shared.pause(body.seconds);
    Json(json!({"state": "paused", "paused_for_seconds": body.seconds})).into_response()
}

#[handler]
fn resume(shared: Data<&Arc<Shared>>) -> Json<serde_json::Value> {
    let was_paused = shared.resume();
    Json(json!({"state": "running", "was_paused": was_paused}))
}

/// Binds `addr` (failing at once if it cannot) and serves until `stop` turns true;
/// `allowed_hosts` are accepted in `Host` besides loopback names.
pub async fn serve(
    addr: SocketAddr,
    allowed_hosts: &[String],
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let acceptor = LimitedAcceptor::bind(addr, MAX_CONNECTIONS)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen: {e}"))?;
    let app = Route::new()
        .at("/status", get(get_status))
        .at("/healthz", get(healthz))
        .at("/pause", post(pause))
        .at("/resume", post(resume))
        .data(shared)
        .with(Guard(Policy::new(addr, allowed_hosts, None)));
    Ok(tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor)
            .idle_timeout(IDLE_TIMEOUT)
            .run_with_graceful_shutdown(
                app,
                async move {
                    while !*stop.borrow() {
                        if stop.changed().await.is_err() {
                            break;
                        }
                    }
                },
                Some(Duration::from_secs(1)),
            )
            .await;
    }))
}
