//! The service's log file: whole lines appended under one lock, rotated by size (and on SIGHUP)
//! in a way that neither log shipper of the lab loses or re-reads a line.
//!
//! Why this scheme (read in the shippers' source, see the README's "Log pipeline"): Promtail's
//! tailer (github.com/grafana/tail) and Alloy's `loki.source.file` poll the path every 250 ms; when it names
//! another file they read the file they hold open to its end, then open the path and start at
//! offset 0. So a rotation must (1) never write to the old file once the path names the new one,
//! (2) keep the path existing at every instant: both shippers stop tailing, and Promtail forgets
//! the position of, a path missing at one of their periodic globs. Hence: the new file is
//! created beside the path, the old one is hard-linked to `<name>.1`, and the new one renamed
//! over the path (atomic), all under the writer's lock. `logrotate`'s rename-then-create leaves a
//! gap and a writer that keeps writing into the renamed file until it notices.

use std::{
    fmt,
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    str::FromStr,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use super::{line_text, LoggingError};

/// How often the writer checks that its path still names its file (someone removed the
/// directory or moved the file).
const IDENTITY_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// After a failed rotation, how long the writer keeps appending before it tries again.
const ROTATION_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// When the log file rotates and how many rotated files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// A file never grows past this (unless a single line is longer).
    pub max_size: LogSize,
    /// Rotated files kept: `<name>.1` (newest) to `<name>.<keep>`; older ones are deleted.
    pub keep: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_size: LogSize(10 * MIB),
            keep: 4,
        }
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// A log file size: a number of bytes with an optional `B`, `KiB`, `MiB` or `GiB` unit, from
/// 1 KiB (so a rotated file holds more than a line; Alloy compares a file's first KiB to tell
/// a new file from an old one) to 1 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSize(u64);

impl LogSize {
    pub const MIN: u64 = KIB;
    pub const MAX: u64 = GIB;

    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for LogSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let unit_bytes = match unit.trim() {
            "" | "B" => 1,
            "KiB" => KIB,
            "MiB" => MIB,
            "GiB" => GIB,
            other => {
                return Err(format!(
                    "unknown unit `{other}` in `{text}`: use B, KiB, MiB or GiB (e.g. 10MiB)"
                ))
            }
        };
        let number: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a size such as 10MiB"))?;
        let bytes = number
            .checked_mul(unit_bytes)
            .filter(|bytes| (Self::MIN..=Self::MAX).contains(bytes))
            .ok_or_else(|| format!("`{text}` is out of range: a log file size is 1KiB to 1GiB"))?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for LogSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            bytes if bytes % GIB == 0 => write!(f, "{}GiB", bytes / GIB),
            bytes if bytes % MIB == 0 => write!(f, "{}MiB", bytes / MIB),
            bytes if bytes % KIB == 0 => write!(f, "{}KiB", bytes / KIB),
            bytes => write!(f, "{bytes}B"),
        }
    }
}

/// Why a rotation happened, as the `reason` of the `log_file_rotated` line.
#[derive(Debug, Clone, Copy)]
pub enum RotationReason {
    Size,
    Signal,
}

impl RotationReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Size => "size",
            Self::Signal => "signal",
        }
    }
}

/// `<dir>/<service>.log`, then the rotated files from the oldest kept to the newest, then the
/// live file: every file of the service, in the order its lines were written.
pub fn files_oldest_first(dir: &Path, service: &str) -> Vec<PathBuf> {
    let live = dir.join(format!("{service}.log"));
    let mut rotated: Vec<(u32, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let index = name
                .to_str()?
                .strip_prefix(&format!("{service}.log."))?
                .parse()
                .ok()?;
            Some((index, entry.path()))
        })
        .collect();
    rotated.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, path)| path).collect();
    if live.exists() {
        files.push(live);
    }
    files
}

/// The open log file of one service.
pub struct LogFile {
    service: &'static str,
    path: PathBuf,
    file: File,
    inode: u64,
    /// Bytes in the open file (it has one writer: this process).
    size: u64,
    rotation: Rotation,
    last_identity_check: Instant,
    /// Set after a failed rotation: no new attempt before then.
    next_rotation_attempt: Option<Instant>,
}

impl LogFile {
    pub fn open(
        service: &'static str,
        dir: &Path,
        rotation: Rotation,
    ) -> Result<Self, LoggingError> {
        fs::create_dir_all(dir).map_err(|source| LoggingError::CreateDir {
            dir: dir.to_owned(),
            source,
        })?;
        let path = dir.join(format!("{service}.log"));
        let (file, inode, size) = open_append(&path).map_err(|source| LoggingError::OpenFile {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            service,
            path,
            file,
            inode,
            size,
            rotation,
            last_identity_check: Instant::now(),
            next_rotation_attempt: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one whole line (with its newline), rotating first when it would not fit.
    pub fn append(&mut self, line: &[u8]) -> io::Result<()> {
        self.reopen_if_moved();
        let would_exceed = self.size + line.len() as u64 > self.rotation.max_size.bytes();
        let may_retry = self
            .next_rotation_attempt
            .is_none_or(|at| Instant::now() >= at);
        if self.size > 0 && would_exceed && may_retry {
            // A failed rotation is reported and the line still goes to the current file:
            // a full or read-only directory must not cost lines.
            let _ = self.rotate(RotationReason::Size);
        }
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Rotates now: `<name>.N` … `<name>.1` move up one (the one past `keep` is deleted), the
    /// current file becomes `<name>.1` and a new, empty file takes the path. The new file
    /// starts with a `log_file_rotated` line, which also goes to stderr.
    pub fn rotate(&mut self, reason: RotationReason) -> io::Result<()> {
        match self.try_rotate() {
            Ok(()) => {
                self.next_rotation_attempt = None;
                let rotated_to = rotated_path(&self.path, 1);
                let notice = self.notice(
                    "info",
                    "log_file_rotated",
                    "log file rotated; the previous lines are in the rotated file",
                    json!({ "reason": reason.as_str(), "rotated_to": rotated_to.display().to_string() }),
                );
                self.write_notice(&notice);
                Ok(())
            }
            Err(err) => {
                self.next_rotation_attempt = Some(Instant::now() + ROTATION_RETRY_INTERVAL);
                let notice = self.notice(
                    "error",
                    "log_rotation_failed",
                    "log file rotation failed; still appending to the current file",
                    json!({ "reason": reason.as_str(), "cause": err.to_string() }),
                );
                let _ = io::stderr().write_all(notice.as_bytes());
                Err(err)
            }
        }
    }

    fn try_rotate(&mut self) -> io::Result<()> {
        // The path must still name our file: never rotate someone else's.
        if fs::metadata(&self.path)?.ino() != self.inode {
            return Err(io::Error::other(
                "the log path names another file than the one being written",
            ));
        }
        let staged = staged_path(&self.path);
        let (file, inode, _) = open_truncate(&staged)?;
        if let Err(err) = self.shift_rotated_files() {
            let _ = fs::remove_file(&staged);
            return Err(err);
        }
        let newest = rotated_path(&self.path, 1);
        if let Err(err) = fs::hard_link(&self.path, &newest) {
            let _ = fs::remove_file(&staged);
            return Err(err);
        }
        if let Err(err) = fs::rename(&staged, &self.path) {
            // Undo the link: the file stays the live one, under one name.
            let _ = fs::remove_file(&newest);
            let _ = fs::remove_file(&staged);
            return Err(err);
        }
        self.file = file;
        self.inode = inode;
        self.size = 0;
        Ok(())
    }

    /// Deletes the oldest kept file and renames the others one up, leaving `<name>.1` free.
    fn shift_rotated_files(&self) -> io::Result<()> {
        ignore_missing(fs::remove_file(rotated_path(
            &self.path,
            self.rotation.keep,
        )))?;
        for index in (1..self.rotation.keep).rev() {
            ignore_missing(fs::rename(
                rotated_path(&self.path, index),
                rotated_path(&self.path, index + 1),
            ))?;
        }
        Ok(())
    }

    /// Reopens the path when it no longer names the open file (its directory was removed, or
    /// the file was moved by hand), writing one line that says so.
    fn reopen_if_moved(&mut self) {
        if self.last_identity_check.elapsed() < IDENTITY_CHECK_INTERVAL {
            return;
        }
        self.last_identity_check = Instant::now();
        let current = fs::metadata(&self.path).map(|m| m.ino()).ok();
        if current == Some(self.inode) {
            return;
        }
        if let Some(dir) = self.path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        // If the directory cannot be recreated the old handle keeps working; try again later.
        if let Ok((file, inode, size)) = open_append(&self.path) {
            self.file = file;
            self.inode = inode;
            self.size = size;
            let notice = self.notice(
                "warn",
                "log_file_reopened",
                "log file was removed or rotated; reopened it",
                json!({}),
            );
            self.write_notice(&notice);
        }
    }

    fn notice(&self, level: &str, event: &str, message: &str, fields: Value) -> String {
        let mut line = serde_json::Map::new();
        line.insert("level".into(), Value::from(level));
        line.insert("service".into(), Value::from(self.service));
        line.insert("target".into(), Value::from("shop_telemetry::logging"));
        line.insert("message".into(), Value::from(message));
        line.insert("event".into(), Value::from(event));
        line.insert("path".into(), Value::from(self.path.display().to_string()));
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        let mut text = line_text(line);
        text.push('\n');
        text
    }

    fn write_notice(&mut self, notice: &str) {
        if self.file.write_all(notice.as_bytes()).is_ok() {
            self.size += notice.len() as u64;
        }
        let _ = io::stderr().write_all(notice.as_bytes());
    }
}

/// `<path>.<index>`: `api.log.1` is the newest rotated file.
pub fn rotated_path(path: &Path, index: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

/// Where the next file is created before it is renamed over the path: a name no shipper tails.
fn staged_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn open_append(path: &Path) -> io::Result<(File, u64, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let metadata = file.metadata()?;
    Ok((file, metadata.ino(), metadata.len()))
}

fn open_truncate(path: &Path) -> io::Result<(File, u64, u64)> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    // Appending from here on, like the file it replaces.
    drop(file);
    open_append(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation(max: u64, keep: u32) -> Rotation {
        Rotation {
            max_size: LogSize(max),
            keep,
        }
    }

    #[test]
    fn sizes_parse_with_iec_units_and_refuse_the_rest_clearly() {
        assert_eq!("10MiB".parse::<LogSize>().unwrap().bytes(), 10 * MIB);
        assert_eq!("512 KiB".parse::<LogSize>().unwrap().bytes(), 512 * KIB);
        assert_eq!("4096".parse::<LogSize>().unwrap().bytes(), 4096);
        assert_eq!("1GiB".parse::<LogSize>().unwrap().to_string(), "1GiB");
        assert_eq!(LogSize(1536).to_string(), "1536B");
        for (bad, says) in [
            ("10MB", "unknown unit `MB`"),
            ("MiB", "is not a size"),
            ("1023", "out of range"),
            ("2GiB", "out of range"),
            ("99999999999999999999GiB", "is not a size"),
        ] {
            let err = bad.parse::<LogSize>().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn rotation_keeps_the_path_and_the_newest_files_up_to_keep() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = LogFile::open("payment", dir.path(), rotation(1024, 2)).unwrap();
        for round in 0..4 {
            file.append(format!("line {round}\n").as_bytes()).unwrap();
            file.rotate(RotationReason::Signal).unwrap();
        }
        let names: Vec<String> = files_oldest_first(dir.path(), "payment")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["payment.log.2", "payment.log.1", "payment.log"]);
        let text = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(text("payment.log.2").ends_with("line 2\n"));
        assert!(text("payment.log.1").ends_with("line 3\n"));
        let live = text("payment.log");
        assert_eq!(live.lines().count(), 1, "{live}");
        let notice: Value = serde_json::from_str(live.trim()).unwrap();
        assert_eq!(notice["event"], "log_file_rotated");
        assert_eq!(notice["reason"], "signal");
        assert!(!dir.path().join("payment.log.next").exists());
    }

    #[test]
    fn a_failed_rotation_keeps_appending_to_the_current_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = LogFile::open("api", dir.path(), rotation(1024, 1)).unwrap();
        file.append(b"before\n").unwrap();
        // A directory where the rotated file must go: the hard link fails.
        fs::create_dir(dir.path().join("api.log.1")).unwrap();
        fs::write(dir.path().join("api.log.1/keep"), b"").unwrap();
        assert!(file.rotate(RotationReason::Signal).is_err());
        file.append(b"after\n").unwrap();
        let live = fs::read_to_string(dir.path().join("api.log")).unwrap();
        assert_eq!(live, "before\nafter\n");
        assert!(!dir.path().join("api.log.next").exists());
    }

    #[test]
    fn the_file_is_reopened_after_its_directory_was_removed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("logs");
        let mut file = LogFile::open("payment", &dir, Rotation::default()).unwrap();
        file.append(b"first\n").unwrap();
        fs::remove_dir_all(&dir).unwrap();
        file.last_identity_check = Instant::now() - IDENTITY_CHECK_INTERVAL;
        file.append(b"second\n").unwrap();
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
        let err = LogFile::open("api", &blocker.join("logs"), Rotation::default())
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("cannot create log directory"),
            "{err}"
        );
    }
}
