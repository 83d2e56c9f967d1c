//! JSON-lines logging: one object per line in `<log dir>/<service>.log` and the same line on
//! stderr for the journal.
//!
//! A line carries `timestamp` (RFC 3339, UTC, nanoseconds), `level` (lower case, so the log shipper can use it as a label),
//! `service`, `target`, `message` and the event's own key-values, e.g.
//! `log::warn!(event = "payment_declined", order_ref = r.as_str(); "declined")`.
//! The file is reopened when it is removed or rotated under the running service.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use chrono::{SecondsFormat, Utc};
use log::{kv, LevelFilter, Record};
use serde_json::{Map, Value};

/// Keys every line has; an event field with one of these names is kept under `field_<name>`.
const RESERVED_KEYS: [&str; 5] = ["timestamp", "level", "service", "target", "message"];

/// How often the writer checks that its file is still the one at its path.
const REOPEN_CHECK_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot create log directory {dir}: {source}")]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("cannot open log file {path}: {source}")]
    OpenFile { path: PathBuf, source: io::Error },
    #[error("a logger is already installed in this process")]
    AlreadyInstalled,
}

/// Installs the process-wide logger for `service`; returns the log file's path.
pub fn init(
    service: &'static str,
    log_dir: &Path,
    level: LevelFilter,
) -> Result<PathBuf, LoggingError> {
    let file = ReopeningFile::open(service, log_dir)?;
    let path = file.path.clone();
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
        .chain(fern::Output::writer(Box::new(file), ""))
        .apply()
        .map_err(|_| LoggingError::AlreadyInstalled)?;
    Ok(path)
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
    Value::Object(line).to_string()
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

/// An append-only log file that notices when its path no longer names the open file (removed
/// directory, logrotate's rename) and reopens it, writing one line that says so.
struct ReopeningFile {
    service: &'static str,
    path: PathBuf,
    file: File,
    inode: u64,
    last_check: Instant,
}

impl ReopeningFile {
    fn open(service: &'static str, dir: &Path) -> Result<Self, LoggingError> {
        fs::create_dir_all(dir).map_err(|source| LoggingError::CreateDir {
            dir: dir.to_owned(),
            source,
        })?;
        let path = dir.join(format!("{service}.log"));
        let (file, inode) = open_append(&path).map_err(|source| LoggingError::OpenFile {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            service,
            path,
            file,
            inode,
            last_check: Instant::now(),
        })
    }

    fn reopen_if_moved(&mut self) {
        if self.last_check.elapsed() < REOPEN_CHECK_INTERVAL {
            return;
        }
        self.last_check = Instant::now();
        let current = fs::metadata(&self.path).map(|m| m.ino()).ok();
        if current == Some(self.inode) {
            return;
        }
        if let Some(dir) = self.path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        // If the directory cannot be recreated the old handle keeps working; try again later.
        if let Ok((file, inode)) = open_append(&self.path) {
            self.file = file;
            self.inode = inode;
            let notice = serde_json::json!({
                "timestamp": now_rfc3339(),
                "level": "warn",
                "service": self.service,
                "target": "shop_telemetry::logging",
                "message": "log file was removed or rotated; reopened it",
                "event": "log_file_reopened",
                "path": self.path.display().to_string(),
            });
            let _ = writeln!(self.file, "{notice}");
            let _ = writeln!(io::stderr(), "{notice}");
        }
    }
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let inode = file.metadata()?.ino();
    Ok((file, inode))
}

impl Write for ReopeningFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.reopen_if_moved();
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
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
        let line: Value =
            serde_json::from_str(&format_line("api", &record, "order 42 done")).unwrap();
        assert_eq!(line["level"], "warn");
        assert_eq!(line["service"], "api");
        assert_eq!(line["target"], "shop_api::orders");
        assert_eq!(line["message"], "order 42 done");
        assert_eq!(line["event"], "order_completed");
        assert_eq!(line["order_id"], 42);
        assert_eq!(line["field_message"], "clash");
        assert!(chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn the_file_is_reopened_after_its_directory_was_removed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("logs");
        let mut file = ReopeningFile::open("payment", &dir).unwrap();
        writeln!(file, "first").unwrap();
        fs::remove_dir_all(&dir).unwrap();
        file.last_check = Instant::now() - REOPEN_CHECK_INTERVAL;
        writeln!(file, "second").unwrap();
        let text = fs::read_to_string(dir.join("payment.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("log_file_reopened"));
        assert_eq!(lines[1], "second");
    }

    #[test]
    fn an_unwritable_directory_is_a_clear_error() {
        let root = tempfile::tempdir().unwrap();
        let blocker = root.path().join("not-a-dir");
        fs::write(&blocker, b"").unwrap();
        let err = ReopeningFile::open("api", &blocker.join("logs"))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("cannot create log directory"),
            "{err}"
        );
    }
}
