//! The traffic generator's control endpoint: `GET /status`, `POST /pause {"seconds": N}`,
//! `POST /resume`, `GET /healthz`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    get, handler,
    http::StatusCode,
    listener::{Listener, TcpListener},
    post,
    web::{Data, Json},
    EndpointExt, IntoResponse, Response, Route, Server,
};
use serde::Deserialize;
use serde_json::json;
use tokio::{sync::watch, task::JoinHandle};

use super::Shared;

#[derive(Debug, Deserialize)]
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
fn pause(shared: Data<&Arc<Shared>>, body: poem::Result<Json<Pause>>) -> Response {
    let Ok(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON body {\"seconds\": N} with N between 1 and 86400",
        );
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

/// Binds `addr` (failing at once if it cannot) and serves until `stop` turns true.
pub async fn serve(
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let acceptor = TcpListener::bind(addr)
        .into_acceptor()
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen: {e}"))?;
    let app = Route::new()
        .at("/status", get(get_status))
        .at("/healthz", get(healthz))
        .at("/pause", post(pause))
        .at("/resume", post(resume))
        .data(shared);
    Ok(tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor)
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
