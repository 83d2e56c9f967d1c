//! `labctl sink`: Grafana's webhook contact point posts here.
//!
//! - `POST /notifications`: any JSON object (Grafana's webhook payload); appended as one line
//!   `{"seq", "received_at", "payload"}` to `<data-dir>/notifications.jsonl` and fsynced before
//!   the 200 answer, so an acknowledged notification survives a crash.
//! - `GET /notifications[?since=T]`: `{"notifications": [...]}`, oldest first; `T` is RFC 3339
//!   or Unix seconds (records received at or after it).
//! - `GET /healthz`: `{"status": "ok", "notifications": N}`.
//!
//! On start the file is read back; a torn last line (a crash mid-write, never acknowledged)
//! is cut off.

use std::{
    fs::{self, File, OpenOptions},
    io::{BufRead, BufReader, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use poem::{
    get, handler,
    http::StatusCode,
    listener::{Listener, TcpListener},
    web::{Data, Json, Query},
    EndpointExt, IntoResponse, Response, Route, Server,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{cli::SinkArgs, grafana::SinkRecord};

pub const FILE_NAME: &str = "notifications.jsonl";
/// Largest notification accepted.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

pub struct Store {
    path: PathBuf,
    file: File,
    records: Vec<SinkRecord>,
}

impl Store {
    /// Opens (creating) `<dir>/notifications.jsonl` and reads it back.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --data-dir {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut records = Vec::new();
        let mut good_len: u64 = 0;
        let mut reader = BufReader::new(&file);
        let mut line = String::new();
        let mut number = 0;
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if n == 0 {
                break;
            }
            number += 1;
            if !line.ends_with('\n') {
                eprintln!(
                    "sink: {}: cutting off an incomplete last line (a write that never finished)",
                    path.display()
                );
                break;
            }
            good_len += n as u64;
            match serde_json::from_str::<SinkRecord>(line.trim_end()) {
                Ok(r) => records.push(r),
                Err(e) => eprintln!("sink: {} line {number} skipped: {e}", path.display()),
            }
        }
        drop(reader);
        if file.metadata()?.len() != good_len {
            file.set_len(good_len)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        Ok(Self {
            path,
            file,
            records,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Appends and fsyncs one record.
    pub fn append(&mut self, payload: Value, received_at: DateTime<Utc>) -> anyhow::Result<u64> {
        let seq = self.records.last().map(|r| r.seq + 1).unwrap_or(1);
        let record = SinkRecord {
            seq,
            received_at,
            payload,
        };
        let mut line = serde_json::to_vec(&record)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.records.push(record);
        Ok(seq)
    }

    pub fn since(&self, since: Option<DateTime<Utc>>) -> Vec<SinkRecord> {
        self.records
            .iter()
            .filter(|r| since.is_none_or(|t| r.received_at >= t))
            .cloned()
            .collect()
    }
}

/// `2026-01-01T00:00:00Z` or Unix seconds.
pub fn parse_since(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(secs) = text.trim().parse::<f64>() {
        return DateTime::from_timestamp_millis((secs * 1000.0) as i64);
    }
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

type Shared = Arc<Mutex<Store>>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

#[handler]
async fn receive(store: Data<&Shared>, body: poem::Body) -> Response {
    let bytes = match body.into_bytes_limit(MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body too large or unreadable",
            )
        }
    };
    let payload: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        _ => return error(StatusCode::BAD_REQUEST, "expected a JSON object"),
    };
    let store = store.0.clone();
    let received_at = Utc::now();
    let result =
        tokio::task::spawn_blocking(move || lock(&store).append(payload, received_at)).await;
    match result {
        Ok(Ok(seq)) => Json(json!({"seq": seq, "received_at": received_at})).into_response(),
        Ok(Err(e)) => {
            eprintln!("sink: {e:#}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot store the notification",
            )
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot store the notification",
        ),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    since: Option<String>,
}

#[handler]
fn list(store: Data<&Shared>, query: Query<ListQuery>) -> Response {
    let since = match query.0.since.as_deref() {
        None => None,
        Some(text) => match parse_since(text) {
            Some(t) => Some(t),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "`since` must be RFC 3339 or Unix seconds",
                )
            }
        },
    };
    Json(json!({ "notifications": lock(store.0).since(since) })).into_response()
}

#[handler]
fn healthz(store: Data<&Shared>) -> Json<Value> {
    Json(json!({"status": "ok", "notifications": lock(store.0).len()}))
}

fn lock(store: &Shared) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn command(args: &SinkArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&args.data_dir)?;
    let path = store.path().display().to_string();
    let count = store.len();
    let shared: Shared = Arc::new(Mutex::new(store));
    let acceptor = TcpListener::bind(args.listen)
        .into_acceptor()
        .await
        .map_err(|e| anyhow!("cannot listen on {}: {e}", args.listen))?;
    let app = Route::new()
        .at("/notifications", get(list).post(receive))
        .at("/healthz", get(healthz))
        .data(shared);
    eprintln!(
        "sink: listening on http://{}; {count} notification(s) in {path}",
        args.listen
    );
    let served = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app,
            async {
                let signal = crate::signals::received().await.unwrap_or("signal failure");
                eprintln!("sink: {signal}, stopping");
            },
            Some(Duration::from_secs(5)),
        )
        .await;
    served.map_err(|e| anyhow!("serving: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn records_survive_a_reopen_and_a_torn_line_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Utc::now();
        {
            let mut store = Store::open(dir.path()).unwrap();
            assert_eq!(store.append(json!({"status": "firing"}), t0).unwrap(), 1);
            assert_eq!(store.append(json!({"status": "resolved"}), t0).unwrap(), 2);
        }
        // A crash in the middle of a third write.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap();
        f.write_all(b"{\"seq\":3,\"rec").unwrap();
        drop(f);
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.append(json!({"status": "firing"}), t0).unwrap(), 3);
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(
            again
                .since(None)
                .iter()
                .map(|r| r.payload["status"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>(),
            ["firing", "resolved", "firing"]
        );
    }

    #[test]
    fn since_takes_rfc3339_or_unix_seconds() {
        assert_eq!(
            parse_since("1700000000").unwrap(),
            DateTime::from_timestamp(1_700_000_000, 0).unwrap()
        );
        assert!(parse_since("2026-01-01T00:00:00Z").is_some());
        assert!(parse_since("yesterday").is_none());
    }
}
