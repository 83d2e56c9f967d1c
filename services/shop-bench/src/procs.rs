//! The processes under measurement: the service binaries (started and stopped here), and what
//! `/proc` says about them and about PostgreSQL: CPU time and peak resident memory.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

/// The API's order limits raised out of reach: a load generator orders from one address far
/// faster than the limits let any client (bench/README.md).
pub fn unlimited_orders() -> Vec<String> {
    [
        "--order-limit-per-ip",
        "--order-limit-per-customer",
        "--order-limit-global",
    ]
    .into_iter()
    .flat_map(|flag| [flag.to_owned(), "4000000000".to_owned()])
    .collect()
}

/// A service binary running as a child process, listening on 127.0.0.1.
pub struct ServiceProcess {
    pub name: &'static str,
    pub url: String,
    stderr_path: PathBuf,
    child: Child,
}

impl ServiceProcess {
    /// Starts `binary` with the arguments `args` gives for its listen address (a free port on
    /// 127.0.0.1) and its log directory (`<work>/logs`); its stderr (the journal's copy of the
    /// log) goes to `<work>/<name>.stderr`.
    pub fn spawn(
        name: &'static str,
        binary: &Path,
        work: &Path,
        args: impl FnOnce(String, String) -> Vec<String>,
    ) -> anyhow::Result<Self> {
        if !binary.is_file() {
            bail!(
                "{} is missing: build the services first (bench/run does: cargo build --release)",
                binary.display()
            );
        }
        let port = free_port()?;
        let stderr_path = work.join(format!("{name}.stderr"));
        let stderr = File::create(&stderr_path)?;
        let child = Command::new(binary)
            .args(args(
                format!("127.0.0.1:{port}"),
                work.join("logs").display().to_string(),
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        Ok(Self {
            name,
            url: format!("http://127.0.0.1:{port}"),
            stderr_path,
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `GET /healthz` answers 200.
    pub async fn wait_ready(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.ensure_running()?;
            let answered = client
                .get(format!("{}/healthz", self.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if answered {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not answer /healthz within 30 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An error when the process has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited ({status}); its stderr: {}\n{}",
                self.name,
                self.stderr_path.display(),
                tail(&self.stderr_path, 20)
            ),
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Peak resident set size (`VmHWM`) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

/// The threads a process has now (`Threads` of `/proc/<pid>/status`).
pub fn threads(pid: u32) -> Option<u64> {
    status_field(pid, "Threads:")
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Clock ticks per second of `/proc/<pid>/stat`'s times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

struct Stat {
    ppid: u32,
    /// utime + stime, in ticks.
    own: u64,
    /// cutime + cstime: children that have exited and been reaped, in ticks.
    reaped_children: u64,
}

fn stat(pid: &str) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the rest follows its closing parenthesis.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // Fields from 3 (state) on: ppid is 4, utime 14, stime 15, cutime 16, cstime 17.
    Some(Stat {
        ppid: num(1)? as u32,
        own: num(11)? + num(12)?,
        reaped_children: num(13)? + num(14)?,
    })
}

/// CPU seconds used so far by named processes, sampled before and after a load run.
#[derive(Clone)]
pub struct CpuMeter {
    ticks_per_second: f64,
    processes: Vec<(&'static str, u32)>,
    postmaster: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct CpuSample(BTreeMap<&'static str, f64>);

impl CpuSample {
    /// CPU seconds per process between `self` (earlier) and `later`.
    pub fn until(&self, later: &CpuSample) -> BTreeMap<&'static str, f64> {
        later
            .0
            .iter()
            .map(|(name, after)| (*name, after - self.0.get(name).copied().unwrap_or(0.0)))
            .collect()
    }
}

/// What the load generators (wrk, pgbench: this process's reaped children) are called.
pub const DRIVER: &str = "load generator";
pub const POSTGRES: &str = "postgresql";

impl CpuMeter {
    pub fn new(processes: Vec<(&'static str, u32)>, postgres_port: u16) -> Self {
        Self {
            ticks_per_second: clock_ticks(),
            processes,
            postmaster: find_postmaster(postgres_port),
        }
    }

    /// This meter, also measuring process `pid` as `name`.
    pub fn including(&self, name: &'static str, pid: u32) -> Self {
        let mut meter = self.clone();
        meter.processes.push((name, pid));
        meter
    }

    pub fn sample(&self) -> CpuSample {
        let mut sample = BTreeMap::new();
        let seconds = |ticks: u64| ticks as f64 / self.ticks_per_second;
        for (name, pid) in &self.processes {
            if let Some(s) = stat(&pid.to_string()) {
                sample.insert(*name, seconds(s.own));
            }
        }
        if let Some(s) = stat("self") {
            sample.insert(DRIVER, seconds(s.reaped_children));
        }
        if let Some(postmaster) = self.postmaster {
            // The postmaster, the backends it has reaped, and the live backends.
            let mut ticks = stat(&postmaster.to_string())
                .map(|s| s.own + s.reaped_children)
                .unwrap_or(0);
            for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if !name.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                if let Some(s) = stat(&name) {
                    if s.ppid == postmaster {
                        ticks += s.own;
                    }
                }
            }
            sample.insert(POSTGRES, seconds(ticks));
        }
        CpuSample(sample)
    }
}

/// The PostgreSQL server process listening on `port` (its command line has `-p <port>`).
fn find_postmaster(port: u16) -> Option<u32> {
    let wanted = format!("-p\0{port}\0");
    fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let text = String::from_utf8_lossy(&cmdline);
                text.split('\0')
                    .next()
                    .is_some_and(|argv0| argv0.ends_with("postgres"))
                    && text.contains(&wanted)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_peak_rss_and_cpu_time() {
        let pid = std::process::id();
        assert!(peak_rss_kib(pid).unwrap() > 0);
        let meter = CpuMeter::new(vec![("self", pid)], 1);
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(0);
        }
        assert!(meter.sample().0.contains_key("self"));
        assert!(meter.sample().0.contains_key(DRIVER));
    }
}
