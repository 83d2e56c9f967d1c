//! The load generators: `wrk` against a service, `pgbench` against PostgreSQL, each a separate
//! process run for a fixed time, and what they measured.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context};
use tokio::process::Command;

/// The wrk and pgbench scripts, read from `bench/` (not compiled in, so a build needs only the
/// Rust sources).
pub struct Scripts {
    pub wrk_report: String,
    pub wrk_get: String,
    pub wrk_get_product: String,
    pub wrk_post_order: String,
    pub wrk_post_login: String,
    pub pgbench_catalog: String,
    pub pgbench_order: String,
}

impl Scripts {
    /// The repository's `bench/` directory, as seen when this binary was built.
    pub fn default_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench")
    }

    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            fs::read_to_string(&path)
                .with_context(|| format!("cannot read the script {}", path.display()))
        };
        Ok(Self {
            wrk_report: read("wrk/report.lua")?,
            wrk_get: read("wrk/get.lua")?,
            wrk_get_product: read("wrk/get-product.lua")?,
            wrk_post_order: read("wrk/post-order.lua")?,
            wrk_post_login: read("wrk/post-login.lua")?,
            pgbench_catalog: read("pgbench/catalog.sql")?,
            pgbench_order: read("pgbench/order.sql")?,
        })
    }
}

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub requests: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Non-2xx answers (wrk) or failed transactions (pgbench), plus socket errors.
    pub failures: u64,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// Several runs of the same load as one: totals, and the mean of their percentiles.
    pub fn combine(runs: &[Measured]) -> Measured {
        let n = runs.len().max(1) as f64;
        Measured {
            requests: runs.iter().map(|r| r.requests).sum(),
            seconds: runs.iter().map(|r| r.seconds).sum(),
            p50_ms: runs.iter().map(|r| r.p50_ms).sum::<f64>() / n,
            p99_ms: runs.iter().map(|r| r.p99_ms).sum::<f64>() / n,
            failures: runs.iter().map(|r| r.failures).sum(),
        }
    }
}

/// How hard to push: the same for wrk and pgbench.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub connections: u32,
    pub threads: u32,
    pub duration: Duration,
}

/// Finds a tool on PATH (or, for PostgreSQL's, in Debian's version directories).
pub fn find_tool(name: &str, install: &str) -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    let debian = || {
        let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin").join(name))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found.pop()
    };
    on_path
        .or_else(debian)
        .with_context(|| format!("`{name}` is not installed: {install}"))
}

/// Runs wrk with `script` (a Lua body; the report function is appended) against `url`.
pub async fn wrk(
    wrk: &Path,
    url: &str,
    script: &str,
    report: &str,
    load: Load,
    work: &Path,
    name: &str,
) -> anyhow::Result<Measured> {
    let script_path = work.join(format!("{name}.lua"));
    fs::write(&script_path, format!("{script}\n{report}"))?;
    let output = Command::new(wrk)
        .args(["-t", &load.threads.to_string()])
        .args(["-c", &load.connections.to_string()])
        .args(["-d", &format!("{}s", load.duration.as_secs().max(1))])
        .args(["--timeout", "10s", "--latency", "-s"])
        .arg(&script_path)
        .arg(url)
        .output()
        .await
        .context("cannot run wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    fs::write(work.join(format!("{name}.wrk.txt")), &stdout)?;
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_wrk(&stdout).with_context(|| format!("unexpected wrk output: {stdout}"))
}

fn parse_wrk(stdout: &str) -> Option<Measured> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("SHOP_BENCH "))?;
    let field = |key: &str| -> Option<f64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    Some(Measured {
        requests: field("requests")? as u64,
        seconds: field("duration_us")? / 1e6,
        p50_ms: field("p50_us")? / 1e3,
        p99_ms: field("p99_us")? / 1e3,
        failures: (field("non_2xx")? + field("socket_errors")?) as u64,
    })
}

/// Where pgbench connects.
pub struct PgTarget {
    pub port: u16,
    pub database: String,
}

/// Runs pgbench with `script` for the load's duration, with prepared statements (as diesel
/// sends the shop's queries).
/// Text values the pgbench scripts bind as parameters (`-D`), as the API binds them: pgbench's
/// `\set` only makes numbers, and a literal in the SQL would be planned for its value instead.
const PGBENCH_VARIABLES: [&str; 4] = [
    "pending=pending",
    "completed=completed",
    "method=card",
    "reference=txn_pgbench",
];

pub async fn pgbench(
    pgbench: &Path,
    target: &PgTarget,
    script: &str,
    load: Load,
    work: &Path,
    name: &str,
) -> anyhow::Result<Measured> {
    let script_path = work.join(format!("{name}.sql"));
    fs::write(&script_path, script)?;
    let log_dir = work.join(format!("{name}.pgbench-log"));
    let _ = fs::remove_dir_all(&log_dir);
    fs::create_dir_all(&log_dir)?;
    let output = Command::new(pgbench)
        .args(["-n", "-M", "prepared", "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &target.port.to_string()])
        .args(["-c", &load.connections.to_string()])
        .args(["-j", &load.threads.to_string()])
        .args(["-T", &load.duration.as_secs().max(1).to_string()])
        .args(PGBENCH_VARIABLES.iter().flat_map(|v| ["-D", v]))
        .arg("-f")
        .arg(&script_path)
        .arg("-l")
        .arg(format!("--log-prefix={}", log_dir.join("tx").display()))
        .arg(&target.database)
        .env_remove("PGPASSWORD")
        .output()
        .await
        .context("cannot run pgbench")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    fs::write(
        work.join(format!("{name}.pgbench.txt")),
        format!("{stdout}{stderr}"),
    )?;
    if !output.status.success() {
        bail!("pgbench failed ({}): {stdout}{stderr}", output.status);
    }
    let mut latencies_us = Vec::new();
    for entry in fs::read_dir(&log_dir)? {
        let text = fs::read_to_string(entry?.path())?;
        latencies_us.extend(
            text.lines()
                // client_id transaction_no latency_us script_no epoch epoch_us
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()),
        );
    }
    fs::remove_dir_all(&log_dir)?;
    parse_pgbench(&stdout, latencies_us)
        .with_context(|| format!("unexpected pgbench output: {stdout}{stderr}"))
}

fn parse_pgbench(stdout: &str, mut latencies_us: Vec<u64>) -> Option<Measured> {
    let number_after = |prefix: &str| -> Option<f64> {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let processed = number_after("number of transactions actually processed:").or_else(|| {
        // "number of transactions actually processed: 123/456" with -t
        stdout
            .lines()
            .find_map(|l| l.split("processed: ").nth(1))
            .and_then(|v| v.split('/').next()?.parse().ok())
    })?;
    let tps = number_after("tps = ")?;
    let failed = number_after("number of failed transactions:").unwrap_or(0.0);
    latencies_us.sort_unstable();
    Some(Measured {
        requests: processed as u64,
        seconds: processed / tps,
        p50_ms: percentile(&latencies_us, 50.0)? as f64 / 1e3,
        p99_ms: percentile(&latencies_us, 99.0)? as f64 / 1e3,
        failures: failed as u64,
    })
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], pct: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_report_line_is_parsed() {
        let out = "Running 1s test @ http://127.0.0.1:1/healthz\n  1 threads and 2 connections\n\
                   SHOP_BENCH requests=12000 duration_us=2000000 p50_us=150 p99_us=1200 non_2xx=3 socket_errors=1\n\
                   Requests/sec:   6000.00\n";
        let m = parse_wrk(out).unwrap();
        assert_eq!((m.requests, m.failures), (12000, 4));
        assert_eq!(m.per_second(), 6000.0);
        assert_eq!((m.p50_ms, m.p99_ms), (0.15, 1.2));
    }

    #[test]
    fn pgbench_summary_and_latencies_are_parsed() {
        let out = "transaction type: catalog.sql\nscaling factor: 1\nquery mode: prepared\n\
                   number of clients: 10\nnumber of threads: 1\nmaximum number of tries: 1\n\
                   duration: 10 s\nnumber of transactions actually processed: 200000\n\
                   number of failed transactions: 0 (0.000%)\nlatency average = 0.500 ms\n\
                   initial connection time = 12.000 ms\ntps = 20000.000000 (without initial connection time)\n";
        let m = parse_pgbench(out, (1..=100).rev().collect()).unwrap();
        assert_eq!((m.requests, m.failures), (200_000, 0));
        assert_eq!(m.seconds, 10.0);
        assert_eq!((m.p50_ms, m.p99_ms), (0.05, 0.099));
    }
}
