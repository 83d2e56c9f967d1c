//! `labctl sink`: Grafana's webhook contact point posts here.
//!
//! - `POST /notifications`: a JSON object (Grafana's webhook payload) with
//!   `Content-Type: application/json` and `Authorization: Bearer <token>` (the token of
//!   `--token-file`, which Grafana's contact point sends as `authorization_credentials`);
//!   appended as one line `{"seq", "received_at", "payload"}` to
//!   `<data-dir>/notifications.jsonl` and fsynced before the 200 answer, so an acknowledged
//!   notification survives a crash. A web page can send neither header cross-origin without a
//!   CORS preflight, which the sink does not answer, so it cannot forge notifications.
//! - `GET /notifications[?since=T]`: `{"notifications": [...]}`, oldest first; `T` is RFC 3339
//!   or Unix seconds (records received at or after it).
//! - `GET /healthz`: `{"status": "ok", "notifications": N}`.
//!
//! Everything a client can grow is bounded ([`Limits`]): a body, the notifications held (the
//! oldest are forgotten first) and the file (rewritten with what is held when it grows to
//! twice that). On start the file is read back; a torn last line (a crash mid-write, never
//! acknowledged) is cut off.

use std::{
    collections::VecDeque,
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
    http::{header, StatusCode},
    web::{Data, Json, Query},
    EndpointExt, IntoResponse, Request, Response, Route,
};
use serde::Deserialize;
use serde_json::{json, Value};
use shop_telemetry::server::BoundListener;

use crate::{cli::SinkArgs, grafana::SinkRecord};

pub const FILE_NAME: &str = "notifications.jsonl";
/// How long a notification's body may take to arrive.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the sink holds at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest notification accepted (413 above).
    pub max_body: usize,
    /// Most notifications held; the oldest are forgotten first.
    pub max_records: usize,
    /// Most bytes of held notifications (as stored lines); the oldest are forgotten first.
    pub max_held_bytes: usize,
}

impl Default for Limits {
    /// A Grafana notification is a few KiB; a verify run makes a few dozen.
    fn default() -> Self {
        Self {
            max_body: 1024 * 1024,
            max_records: 10_000,
            max_held_bytes: 32 * 1024 * 1024,
        }
    }
}

pub struct Store {
    path: PathBuf,
    file: File,
    limits: Limits,
    records: VecDeque<(SinkRecord, usize)>,
    held_bytes: usize,
    next_seq: u64,
    /// Bytes in the file (held lines plus forgotten ones not yet compacted away).
    file_bytes: u64,
}

impl Store {
    /// Opens (creating) `<dir>/notifications.jsonl` and reads it back.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        Self::open_with(dir, Limits::default())
    }

    pub fn open_with(dir: &Path, limits: Limits) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --data-dir {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut store = Self {
            path: path.clone(),
            file: file.try_clone()?,
            limits,
            records: VecDeque::new(),
            held_bytes: 0,
            next_seq: 1,
            file_bytes: 0,
        };
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
                Ok(r) => store.hold(r, n),
                Err(e) => eprintln!("sink: {} line {number} skipped: {e}", path.display()),
            }
        }
        drop(reader);
        if file.metadata()?.len() != good_len {
            file.set_len(good_len)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        store.file = file;
        store.file_bytes = good_len;
        store.compact_if_grown()?;
        Ok(store)
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

    /// Keeps a record in memory, forgetting the oldest beyond the limits.
    fn hold(&mut self, record: SinkRecord, line_bytes: usize) {
        self.next_seq = self.next_seq.max(record.seq + 1);
        self.held_bytes += line_bytes;
        self.records.push_back((record, line_bytes));
        while self.records.len() > self.limits.max_records
            || (self.held_bytes > self.limits.max_held_bytes && self.records.len() > 1)
        {
            if let Some((_, bytes)) = self.records.pop_front() {
                self.held_bytes -= bytes;
            }
        }
    }

    /// Appends and fsyncs one record.
    pub fn append(&mut self, payload: Value, received_at: DateTime<Utc>) -> anyhow::Result<u64> {
        let seq = self.next_seq;
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
        self.file_bytes += line.len() as u64;
        self.hold(record, line.len());
        self.compact_if_grown()?;
        Ok(seq)
    }

    /// Rewrites the file with the held records once it has grown to twice their size, so it
    /// stays bounded: written to a new file, fsynced, renamed over the old one.
    fn compact_if_grown(&mut self) -> anyhow::Result<()> {
        if self.file_bytes <= 2 * self.limits.max_held_bytes.max(self.held_bytes) as u64 {
            return Ok(());
        }
        let tmp = self.path.with_extension("jsonl.compacting");
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        for (record, _) in &self.records {
            let mut line = serde_json::to_vec(record)?;
            line.push(b'\n');
            out.write_all(&line)?;
        }
        out.sync_all()?;
        fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot replace {}", self.path.display()))?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        file.seek(SeekFrom::End(0))?;
        self.file = file;
        self.file_bytes = self.held_bytes as u64;
        eprintln!(
            "sink: {} compacted to the {} notification(s) held",
            self.path.display(),
            self.records.len()
        );
        Ok(())
    }

    pub fn since(&self, since: Option<DateTime<Utc>>) -> Vec<SinkRecord> {
        self.records
            .iter()
            .map(|(r, _)| r)
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

/// Reads the token file (its first line).
pub fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read --token-file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        return Err(anyhow!("--token-file {} is empty", path.display()));
    }
    Ok(token)
}

struct Sink {
    store: Mutex<Store>,
    token: String,
    max_body: usize,
}

type Shared = Arc<Sink>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a notification is refused before its body is read.
fn refusal(req: &Request, token: &str) -> Option<Response> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| constant_time_eq(p.trim().as_bytes(), token.as_bytes())) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "a valid `Authorization: Bearer <token>` header is required (the token of labctl sink --token-file)",
        ));
    }
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "notifications must be sent as `Content-Type: application/json`",
        ));
    }
    None
}

#[handler]
async fn receive(req: &Request, sink: Data<&Shared>, body: poem::Body) -> Response {
    if let Some(refused) = refusal(req, &sink.token) {
        return refused;
    }
    let read = tokio::time::timeout(BODY_READ_TIMEOUT, body.into_bytes_limit(sink.max_body));
    let bytes = match read.await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("a notification must be at most {} bytes", sink.max_body),
            )
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "the notification's body did not arrive in time",
            )
        }
    };
    let payload: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        _ => return error(StatusCode::BAD_REQUEST, "expected a JSON object"),
    };
    let sink = sink.0.clone();
    let received_at = Utc::now();
    let result =
        tokio::task::spawn_blocking(move || lock(&sink.store).append(payload, received_at)).await;
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
fn list(sink: Data<&Shared>, query: Query<ListQuery>) -> Response {
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
    Json(json!({ "notifications": lock(&sink.store).since(since) })).into_response()
}

#[handler]
fn healthz(sink: Data<&Shared>) -> Json<Value> {
    Json(json!({"status": "ok", "notifications": lock(&sink.store).len()}))
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn command(args: &SinkArgs) -> anyhow::Result<ExitCode> {
    let token_file = args.token_file.as_deref().ok_or_else(|| {
        anyhow!("labctl sink needs --token-file (or LABCTL_SINK_TOKEN_FILE): Grafana's contact point presents that token as `Authorization: Bearer <token>`")
    })?;
    let token = read_token(token_file)?;
    let limits = Limits {
        max_records: args.max_notifications,
        ..Limits::default()
    };
    let store = Store::open_with(&args.data_dir, limits)?;
    let path = store.path().display().to_string();
    let count = store.len();
    let sink: Shared = Arc::new(Sink {
        store: Mutex::new(store),
        token,
        max_body: limits.max_body,
    });
    // The services' listener: bounded connections, header-read and keep-alive timeouts.
    let listener = BoundListener::bind(args.listen)
        .await
        .map_err(|e| anyhow!("cannot listen on {}: {e}", args.listen))?;
    let app = Route::new()
        .at("/notifications", get(list).post(receive))
        .at("/healthz", get(healthz))
        .data(sink);
    eprintln!(
        "sink: listening on http://{}; {count} notification(s) in {path}",
        args.listen
    );
    let served = listener
        .serve(app, async {
            let signal = crate::signals::received().await.unwrap_or("signal failure");
            eprintln!("sink: {signal}, stopping");
        })
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
    fn the_oldest_notifications_go_and_the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_body: 1024,
            max_records: 5,
            max_held_bytes: 4096,
        };
        let mut store = Store::open_with(dir.path(), limits).unwrap();
        let padding = "x".repeat(500);
        for n in 0..200 {
            store
                .append(json!({"n": n, "padding": padding}), Utc::now())
                .unwrap();
            let file = fs::metadata(store.path()).unwrap().len();
            assert!(file <= 2 * 4096 + 1024, "file grew to {file} bytes");
        }
        let held: Vec<u64> = store.since(None).iter().map(|r| r.seq).collect();
        assert!(held.len() <= 5, "{held:?}");
        assert_eq!(held.last(), Some(&200));
        // What is held is what a restart reads back, numbering going on.
        let mut reopened = Store::open_with(dir.path(), limits).unwrap();
        assert_eq!(
            reopened
                .since(None)
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>(),
            held
        );
        assert_eq!(reopened.append(json!({}), Utc::now()).unwrap(), 201);
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
