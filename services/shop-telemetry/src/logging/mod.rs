//! JSON-lines logging: one object per line in `<log dir>/<service>.log` and the same line on
//! stderr for the journal.
//!
//! A line starts with `timestamp` (RFC 3339, UTC, nanoseconds), then `event`, `level` (lower
//! case, so the log shipper can use it as a label), `message`, `service`, `target` and the
//! event's own key-values in name order, e.g.
//! `log::warn!(event = "payment_declined", order_ref = r.as_str(); "declined")`.
//! The file rotates by size and on SIGHUP ([`file`]), and is reopened when it is removed under
//! the running service.

mod file;

use std::{
    io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use chrono::{SecondsFormat, Utc};
use log::{kv, LevelFilter, Log, Metadata, Record};
use serde_json::{Map, Value};

use file::LogFile;
pub use file::{files_oldest_first, rotated_path, LogSize, Rotation, RotationReason};

/// Keys every line has; an event field with one of these names is kept under `field_<name>`.
const RESERVED_KEYS: [&str; 5] = ["timestamp", "level", "service", "target", "message"];

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot create log directory {dir}: {source}")]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("cannot open log file {path}: {source}")]
    OpenFile { path: PathBuf, source: io::Error },
    #[error("cannot listen for SIGHUP (log rotation on request): {0}")]
    Signal(io::Error),
    #[error("a logger is already installed in this process")]
    AlreadyInstalled,
}

/// Installs the process-wide logger for `service`; returns the log file's path. Inside a tokio
/// runtime, SIGHUP rotates the log file (`systemctl reload`).
pub fn init(
    service: &'static str,
    log_dir: &Path,
    level: LevelFilter,
    rotation: Rotation,
) -> Result<PathBuf, LoggingError> {
    let file = SharedLogFile(Arc::new(Mutex::new(LogFile::open(
        service, log_dir, rotation,
    )?)));
    let path = file.lock().path().to_owned();
    if tokio::runtime::Handle::try_current().is_ok() {
        rotate_on_sighup(file.clone())?;
    }
    fern::Dispatch::new()
        .level(level)
        // Libraries speak at warn and above only: the log is the shop's story, not hyper's.
        .level_for("hyper", LevelFilter::Warn)
        .level_for("hyper_util", LevelFilter::Warn)
        .level_for("reqwest", LevelFilter::Warn)
        .level_for("poem", LevelFilter::Warn)
        .level_for("h2", LevelFilter::Warn)
        // The newline is part of the line, so each output gets it in one write (fern's own
        // separator would be a second write system call per line and output).
        .format(move |out, message, record| {
            let mut line = format_line(service, record, &message.to_string());
            line.push('\n');
            out.finish(format_args!("{line}"))
        })
        .chain(fern::Output::stderr(""))
        .chain(Box::new(file) as Box<dyn Log>)
        .apply()
        .map_err(|_| LoggingError::AlreadyInstalled)?;
    Ok(path)
}

fn rotate_on_sighup(file: SharedLogFile) -> Result<(), LoggingError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).map_err(LoggingError::Signal)?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            // A failure is reported on stderr by `rotate`; the next SIGHUP tries again.
            let _ = file.lock().rotate(RotationReason::Signal);
        }
    });
    Ok(())
}

/// The log file behind a lock shared by the logger and the SIGHUP task: a rotation happens
/// between two whole lines, never inside one.
#[derive(Clone)]
struct SharedLogFile(Arc<Mutex<LogFile>>);

impl SharedLogFile {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogFile> {
        // A panic while holding the lock leaves the file usable: lines are written whole.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Log for SharedLogFile {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    /// fern hands over the formatted line (with its newline) as the record's message.
    fn log(&self, record: &Record<'_>) {
        let line = record.args().to_string();
        if let Err(err) = self.lock().append(line.as_bytes()) {
            // The same line is on stderr already; say why the file lacks it.
            eprintln!("shop-telemetry: cannot write the log file: {err}");
        }
    }

    fn flush(&self) {}
}

/// One log line as JSON (without the newline).
pub fn format_line(service: &str, record: &Record<'_>, message: &str) -> String {
    let mut line = Map::new();
    line.insert("timestamp".into(), Value::from(now_rfc3339()));
    line.insert("level".into(), Value::from(level_name(record.level())));
    line.insert("service".into(), Value::from(service));
    line.insert("target".into(), Value::from(record.target()));
    line.insert("message".into(), Value::from(message));
    let mut fields = FieldCollector(&mut line);
    // Visiting never fails: the collector accepts every value.
    let _ = record.key_values().visit(&mut fields);
    line_text(line)
}

/// The JSON text of a line, `timestamp` first: the start of every file is then unique, which
/// Alloy relies on to tell a new file at the path from the one it had open (it compares their
/// first bytes).
fn line_text(mut line: Map<String, Value>) -> String {
    let timestamp = line
        .remove("timestamp")
        .unwrap_or_else(|| Value::from(now_rfc3339()));
    let mut text = format!("{{\"timestamp\":{timestamp}");
    for (key, value) in line {
        text.push(',');
        text.push_str(&Value::from(key).to_string());
        text.push(':');
        text.push_str(&value.to_string());
    }
    text.push('}');
    text
}

pub fn level_name(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "error",
        log::Level::Warn => "warn",
        log::Level::Info => "info",
        log::Level::Debug => "debug",
        log::Level::Trace => "trace",
    }
}

/// Nanoseconds: Loki drops a line whose timestamp and text equal another's in the same
/// stream, so two identical events in one millisecond would otherwise count as one.
fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

struct FieldCollector<'a>(&'a mut Map<String, Value>);

impl<'kvs> kv::VisitSource<'kvs> for FieldCollector<'_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        let key = key.as_str();
        let key = if RESERVED_KEYS.contains(&key) {
            format!("field_{key}")
        } else {
            key.to_owned()
        };
        let value = serde_json::to_value(&value).unwrap_or_else(|_| Value::from(value.to_string()));
        self.0.insert(key, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_json_with_the_fixed_keys_and_the_event_fields() {
        let kvs: &[(&str, kv::Value)] = &[
            ("event", kv::Value::from("order_completed")),
            ("order_id", kv::Value::from(42_i64)),
            ("message", kv::Value::from("clash")),
        ];
        let record = Record::builder()
            .level(log::Level::Warn)
            .target("shop_api::orders")
            .key_values(&kvs)
            .build();
        let text = format_line("api", &record, "order 42 done");
        assert!(text.starts_with(r#"{"timestamp":""#), "{text}");
        let line: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["level"], "warn");
        assert_eq!(line["service"], "api");
        assert_eq!(line["target"], "shop_api::orders");
        assert_eq!(line["message"], "order 42 done");
        assert_eq!(line["event"], "order_completed");
        assert_eq!(line["order_id"], 42);
        assert_eq!(line["field_message"], "clash");
        assert!(chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap()).is_ok());
    }
}
