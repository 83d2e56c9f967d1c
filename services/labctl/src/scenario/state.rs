//! Running scenarios on this host: `<state-dir>/<scenario>.json` names the labctl process
//! that runs a scenario (foreground or detached), so that `labctl scenario stop` can find it
//! and signal it, and a second start of the same scenario is refused.

use std::{
    fs,
    io::Write,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
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

impl StateDir {
    /// `--state-dir`, else `$XDG_RUNTIME_DIR/labctl`, else `/tmp/labctl-<uid>`.
    pub fn new(explicit: Option<&Path>) -> Self {
        let dir = match explicit {
            Some(d) => d.to_path_buf(),
            None => match std::env::var_os("XDG_RUNTIME_DIR") {
                Some(run) if !run.is_empty() => PathBuf::from(run).join("labctl"),
                _ => std::env::temp_dir().join(format!("labctl-{}", nix::unistd::getuid())),
            },
        };
        Self { dir }
    }

    fn file(&self, scenario: Scenario) -> PathBuf {
        self.dir.join(format!("{}.json", scenario.name()))
    }

    pub fn log_file(&self, scenario: Scenario) -> PathBuf {
        self.dir.join(format!("{}.log", scenario.name()))
    }

    fn ensure(&self) -> anyhow::Result<()> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create the state directory {}", self.dir.display()))
    }

    /// The process running `scenario`, if one is alive (a stale file is removed).
    pub fn running(&self, scenario: Scenario) -> Option<Running> {
        let text = fs::read_to_string(self.file(scenario)).ok()?;
        let running: Running = serde_json::from_str(&text).ok()?;
        if alive(running.pid, scenario) {
            Some(running)
        } else {
            let _ = fs::remove_file(self.file(scenario));
            None
        }
    }

    /// Records this process as the one running `scenario`.
    pub fn register(&self, scenario: Scenario, duration: Duration) -> anyhow::Result<()> {
        self.ensure()?;
        let now = Utc::now();
        let running = Running {
            scenario: scenario.name().to_owned(),
            pid: std::process::id(),
            started_at: now,
            ends_at: now + chrono::Duration::milliseconds(duration.as_millis() as i64),
        };
        let tmp = self.file(scenario).with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(&running)?)
            .and_then(|_| fs::rename(&tmp, self.file(scenario)))
            .with_context(|| format!("cannot write {}", self.file(scenario).display()))
    }

    pub fn unregister(&self, scenario: Scenario) {
        let _ = fs::remove_file(self.file(scenario));
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
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
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
                let tail = fs::read_to_string(&log_path).unwrap_or_default();
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
            if let Some(r) = self.running(scenario) {
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
    use super::*;

    #[test]
    fn a_stale_state_file_is_not_a_running_scenario() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(Some(dir.path()));
        state
            .register(Scenario::BruteForce, Duration::from_secs(60))
            .unwrap();
        // This test process is not `labctl scenario start brute-force`.
        assert!(state.running(Scenario::BruteForce).is_none());
        assert!(!dir.path().join("brute-force.json").exists());
    }
}
