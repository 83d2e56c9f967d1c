//! Running scenarios on this host: `<state-dir>/<scenario>.json` names the labctl process
//! that runs a scenario (foreground or detached), so that `labctl scenario stop` can find it
//! and signal it, and a second start of the same scenario is refused.
//!
//! labctl often runs as root, so the state directory must not be one another user can
//! prepare: `--state-dir`, else `$XDG_RUNTIME_DIR/labctl`, else `/run/user/<uid>/labctl` when
//! that runtime directory exists and is ours, else `<tmp>/labctl-<uid>`. Whichever it is, it
//! is created 0700 and then checked without following links (a directory, ours, no access for
//! group or others) before anything in it is read or written; its files are opened with
//! `O_NOFOLLOW`, and new ones with `O_EXCL`, so a planted symbolic link is refused, never
//! followed.

use std::{
    ffi::OsString,
    fs::{self, File, OpenOptions},
    io::{ErrorKind, Read, Write},
    os::unix::{
        fs::{DirBuilderExt, MetadataExt, OpenOptionsExt},
        process::CommandExt,
    },
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use nix::{
    libc,
    sys::signal::{kill, Signal},
    unistd::{Pid, Uid},
};
use serde::{Deserialize, Serialize};

use super::Scenario;
use crate::durations;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Running {
    pub scenario: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

pub struct StateDir {
    pub dir: PathBuf,
}

/// Where the state directory goes when `--state-dir` is not given: the user's runtime
/// directory (`$XDG_RUNTIME_DIR`, else `/run/user/<uid>` when it is ours), else a directory of
/// our own under `tmp`.
pub fn default_dir(xdg_runtime_dir: Option<OsString>, uid: Uid, tmp: &Path) -> PathBuf {
    if let Some(run) = xdg_runtime_dir.filter(|d| !d.is_empty()) {
        return PathBuf::from(run).join("labctl");
    }
    let run_user = PathBuf::from(format!("/run/user/{uid}"));
    let ours = fs::symlink_metadata(&run_user).is_ok_and(|m| m.is_dir() && m.uid() == uid.as_raw());
    if ours {
        return run_user.join("labctl");
    }
    tmp.join(format!("labctl-{uid}"))
}

/// Checks, without following links, that `dir` is a directory owned by `uid` that neither
/// group nor others can use.
pub fn check_private_dir(dir: &Path, uid: u32) -> anyhow::Result<()> {
    let meta = fs::symlink_metadata(dir)
        .with_context(|| format!("cannot inspect the state directory {}", dir.display()))?;
    let refuse = |why: String| {
        anyhow!(
            "refusing the state directory {}: {why}; another user may have prepared it (remove it, or give --state-dir)",
            dir.display()
        )
    };
    if meta.file_type().is_symlink() {
        return Err(refuse("it is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(refuse("it is not a directory".into()));
    }
    if meta.uid() != uid {
        return Err(refuse(format!(
            "it is owned by uid {}, not by this user (uid {uid})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "its mode {:o} lets group or others in (it must be 0700)",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Opens an existing file for reading without following a symbolic link.
fn open_nofollow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Creates `path` (0600), failing if anything, a symbolic link included, is already there.
fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

impl StateDir {
    /// `--state-dir`, else [`default_dir`]. Nothing is created or checked yet.
    pub fn new(explicit: Option<&Path>) -> Self {
        let dir = match explicit {
            Some(d) => d.to_path_buf(),
            None => default_dir(
                std::env::var_os("XDG_RUNTIME_DIR"),
                nix::unistd::getuid(),
                &std::env::temp_dir(),
            ),
        };
        Self { dir }
    }

    fn file(&self, scenario: Scenario) -> PathBuf {
        self.dir.join(format!("{}.json", scenario.name()))
    }

    pub fn log_file(&self, scenario: Scenario) -> PathBuf {
        self.dir.join(format!("{}.log", scenario.name()))
    }

    /// Creates the directory (0700) if missing, then checks it.
    fn ensure(&self) -> anyhow::Result<()> {
        match fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot create the state directory {}", self.dir.display())
                })
            }
        }
        check_private_dir(&self.dir, nix::unistd::getuid().as_raw())
    }

    /// The process running `scenario`, if one is alive (a stale file is removed). A missing
    /// directory means none; one that fails the checks is an error.
    pub fn running(&self, scenario: Scenario) -> anyhow::Result<Option<Running>> {
        if fs::symlink_metadata(&self.dir).is_err() {
            return Ok(None);
        }
        check_private_dir(&self.dir, nix::unistd::getuid().as_raw())?;
        let path = self.file(scenario);
        let mut text = String::new();
        match open_nofollow(&path) {
            Ok(mut file) => {
                file.read_to_string(&mut text)
                    .with_context(|| format!("cannot read {}", path.display()))?;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
        }
        let Ok(running) = serde_json::from_str::<Running>(&text) else {
            return Ok(None);
        };
        if alive(running.pid, scenario) {
            Ok(Some(running))
        } else {
            let _ = fs::remove_file(&path);
            Ok(None)
        }
    }

    /// Records this process as the one running `scenario`: written to a new file, then
    /// renamed over the old one (a rename replaces a link, it never follows one).
    pub fn register(&self, scenario: Scenario, duration: Duration) -> anyhow::Result<()> {
        self.ensure()?;
        let now = Utc::now();
        let running = Running {
            scenario: scenario.name().to_owned(),
            pid: std::process::id(),
            started_at: now,
            ends_at: now + chrono::Duration::milliseconds(duration.as_millis() as i64),
        };
        let path = self.file(scenario);
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        let written = create_new(&tmp)
            .and_then(|mut f| f.write_all(&serde_json::to_vec_pretty(&running)?))
            .and_then(|()| fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn unregister(&self, scenario: Scenario) {
        let _ = fs::remove_file(self.file(scenario));
    }

    /// Opens the scenario's log for appending (0600, created if missing), refusing a
    /// symbolic link.
    fn open_log(&self, scenario: Scenario) -> anyhow::Result<File> {
        let path = self.log_file(scenario);
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .with_context(|| {
                format!(
                    "cannot open {} (a symbolic link there is refused)",
                    path.display()
                )
            })
    }

    /// Starts `labctl` again with the same arguments minus `--detach`, in its own process
    /// group with output to the log file, and returns once it has registered.
    pub fn detach(&self, scenario: Scenario, duration: Duration) -> anyhow::Result<()> {
        self.ensure()?;
        let exe = std::env::current_exe().context("cannot find the labctl executable")?;
        let args: Vec<_> = std::env::args_os()
            .skip(1)
            .filter(|a| a != "--detach")
            .collect();
        let log_path = self.log_file(scenario);
        let mut log = self.open_log(scenario)?;
        let _ = writeln!(log, "--- {} labctl {:?}", Utc::now().to_rfc3339(), args);
        let mut child = Command::new(exe)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("cannot start the background labctl")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait()? {
                let mut tail = String::new();
                if let Ok(mut file) = open_nofollow(&log_path) {
                    let _ = file.read_to_string(&mut tail);
                }
                let last = tail
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("labctl: error"))
                    .unwrap_or("see the log");
                return Err(anyhow!(
                    "the background scenario exited at once ({status}): {last} ({})",
                    log_path.display()
                ));
            }
            if let Some(r) = self.running(scenario)? {
                if r.pid == child.id() {
                    // Started the scenario (or is about to): report and leave it running.
                    println!(
                        "{}: running in the background (pid {}) for {}, until {}; log {}; stop early with `labctl scenario stop {}`",
                        scenario.name(),
                        r.pid,
                        durations::human(duration),
                        r.ends_at.format("%H:%M:%S UTC"),
                        log_path.display(),
                        scenario.name()
                    );
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "the background scenario did not register within 20s (pid {}); see {}",
                    child.id(),
                    log_path.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM to the process running a scenario; waits until it has reverted and exited.
    pub async fn terminate(&self, running: &Running, timeout: Duration) -> anyhow::Result<()> {
        let scenario = Scenario::parse(&running.scenario)?;
        kill(Pid::from_raw(running.pid as i32), Signal::SIGTERM).map_err(|e| {
            anyhow!(
                "cannot signal the labctl process running {} (pid {}): {e}",
                running.scenario,
                running.pid
            )
        })?;
        let deadline = Instant::now() + timeout;
        while alive(running.pid, scenario) && self.file(scenario).exists() {
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "the labctl process running {} (pid {}) did not finish within {}",
                    running.scenario,
                    running.pid,
                    durations::human(timeout)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

/// The pid is a live (not zombie) labctl running `scenario start <scenario>`.
fn alive(pid: u32, scenario: Scenario) -> bool {
    if kill(Pid::from_raw(pid as i32), None).is_err() {
        return false;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("");
    if state == "Z" || state == "X" {
        return false;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let has = |word: &str| args.contains(&word.as_bytes());
    has("scenario") && has("start") && has(scenario.name())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn private_tempdir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn a_stale_state_file_is_not_a_running_scenario() {
        let dir = private_tempdir();
        let state = StateDir::new(Some(dir.path()));
        state
            .register(Scenario::BruteForce, Duration::from_secs(60))
            .unwrap();
        // This test process is not `labctl scenario start brute-force`.
        assert!(state.running(Scenario::BruteForce).unwrap().is_none());
        assert!(!dir.path().join("brute-force.json").exists());
    }

    #[test]
    fn the_runtime_directory_is_preferred_then_a_private_one_under_tmp() {
        let uid = nix::unistd::getuid();
        let tmp = Path::new("/some/tmp");
        assert_eq!(
            default_dir(Some("/run/user/1000".into()), uid, tmp),
            Path::new("/run/user/1000/labctl")
        );
        let without_xdg = default_dir(Some("".into()), uid, tmp);
        let run_user = PathBuf::from(format!("/run/user/{uid}"));
        if fs::symlink_metadata(&run_user).is_ok_and(|m| m.is_dir() && m.uid() == uid.as_raw()) {
            assert_eq!(without_xdg, run_user.join("labctl"));
        } else {
            assert_eq!(without_xdg, tmp.join(format!("labctl-{uid}")));
        }
    }

    #[test]
    fn the_directory_is_created_0700_and_a_shared_or_foreign_one_is_refused() {
        let parent = private_tempdir();
        let dir = parent.path().join("labctl-state");
        let state = StateDir::new(Some(&dir));
        state
            .register(Scenario::ErrorBurst, Duration::from_secs(60))
            .unwrap();
        let mode = fs::symlink_metadata(&dir).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        let file_mode = fs::symlink_metadata(dir.join("error-burst.json"))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(file_mode, 0o600);

        // A directory another user prepared (here: world-writable, like one made in /tmp).
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = state
            .register(Scenario::ErrorBurst, Duration::from_secs(60))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lets group or others in"), "{err}");
        assert!(state.running(Scenario::ErrorBurst).is_err());

        // Owned by someone else (checked as if this user had another uid).
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let other = nix::unistd::getuid().as_raw() + 1;
        let err = check_private_dir(&dir, other).unwrap_err().to_string();
        assert!(err.contains("is owned by uid"), "{err}");
    }

    #[test]
    fn a_symbolic_link_as_the_directory_or_its_files_is_refused_not_followed() {
        let parent = private_tempdir();
        let victim = parent.path().join("victim");
        fs::write(&victim, "root-only contents\n").unwrap();

        // The state directory is a link to a directory.
        let real = parent.path().join("real");
        fs::DirBuilder::new().mode(0o700).create(&real).unwrap();
        let linked = parent.path().join("linked");
        symlink(&real, &linked).unwrap();
        let err = StateDir::new(Some(&linked))
            .register(Scenario::ErrorBurst, Duration::from_secs(60))
            .unwrap_err()
            .to_string();
        assert!(err.contains("it is a symbolic link"), "{err}");

        // Links planted where the state and log files go.
        let dir = parent.path().join("state");
        fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let state = StateDir::new(Some(&dir));
        symlink(&victim, dir.join("error-burst.json")).unwrap();
        let err = format!("{:#}", state.running(Scenario::ErrorBurst).unwrap_err());
        assert!(err.contains("cannot open"), "{err}");
        symlink(&victim, dir.join("error-burst.log")).unwrap();
        let err = format!("{:#}", state.open_log(Scenario::ErrorBurst).unwrap_err());
        assert!(err.contains("a symbolic link there is refused"), "{err}");
        // A new file never reuses what is there.
        let tmp = dir.join("planted.tmp");
        symlink(&victim, &tmp).unwrap();
        assert_eq!(
            create_new(&tmp).unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root-only contents\n");
    }
}
