//! The login flood of issue 14: many clients posting wrong passwords to an API of its own (a
//! fresh process, so its peak memory is the flood's), with its peak resident memory and
//! threads against the goal.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use crate::{
    load::{self, Load, Measured, Scripts},
    procs::{self, ServiceProcess},
};

/// Peak resident memory the API may reach under the flood (issue 14).
pub const PEAK_TARGET_MIB: f64 = 64.0;

/// How the flood is run, and against which binary.
pub struct FloodSetup<'a> {
    pub wrk: &'a Path,
    pub scripts: &'a Scripts,
    pub work: &'a Path,
    /// The `shop-api` binary flooded.
    pub binary: &'a Path,
    pub database_url: &'a str,
    /// Arguments added to the API's (`--login-flood-api-args`).
    pub extra_args: &'a [String],
    pub clients: u32,
    pub duration: Duration,
}

/// What a flood measured.
#[derive(Debug)]
pub struct LoginFlood {
    pub clients: u32,
    pub measured: Measured,
    /// Answers by status from the API's own `/metrics` (`http_requests_total` of `/login`).
    pub checked: u64,
    pub refused: u64,
    pub other: u64,
    pub peak_kib: Option<u64>,
    /// The most threads seen, sampled every 100 ms.
    pub peak_threads: u64,
    /// How the API ran: its extra arguments, a binary other than the run's, and
    /// `MALLOC_ARENA_MAX` when set.
    pub variant: String,
}

impl LoginFlood {
    pub fn refused_share(&self) -> f64 {
        self.refused as f64 / (self.checked + self.refused + self.other).max(1) as f64
    }

    pub fn peak_mib(&self) -> Option<f64> {
        self.peak_kib.map(|k| k as f64 / 1024.0)
    }

    pub fn met(&self) -> bool {
        self.peak_mib().is_some_and(|mib| mib <= PEAK_TARGET_MIB)
    }
}

pub async fn run(setup: FloodSetup<'_>, variant: String) -> anyhow::Result<LoginFlood> {
    let client = reqwest::Client::new();
    // Read at startup; logins never call the payment service.
    let payment_token = shop_testkit::secrets::token_file("payment-token");
    let mut api = ServiceProcess::spawn(
        "api-login-flood",
        setup.binary,
        setup.work,
        |listen, logs| {
            let mut args = vec![
                "--listen".into(),
                listen,
                "--log-dir".into(),
                logs,
                "--database-url".into(),
                setup.database_url.to_owned(),
                // Never called: logins need no payment. A closed port, so nothing answers.
                "--payment-url".into(),
                "http://127.0.0.1:9".into(),
                "--payment-token-file".into(),
                payment_token.path.display().to_string(),
            ];
            args.extend(setup.extra_args.iter().cloned());
            args
        },
    )?;
    api.wait_ready(&client).await?;
    let pid = api.pid();

    // Threads are sampled through the run: idle blocking threads end 10 s after their last
    // task, so the count at the end would miss the peak.
    let running = Arc::new(AtomicBool::new(true));
    let peak_threads = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (running, peak_threads) = (running.clone(), peak_threads.clone());
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                if let Some(n) = procs::threads(pid) {
                    peak_threads.fetch_max(n, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let measured = load::wrk(
        setup.wrk,
        &format!("{}/login", api.url),
        &setup.scripts.wrk_post_login,
        &setup.scripts.wrk_report,
        Load {
            connections: setup.clients,
            threads: 2,
            duration: setup.duration,
        },
        setup.work,
        "login-flood",
    )
    .await;
    running.store(false, Ordering::Relaxed);
    sampler.await?;
    let measured = measured?;
    api.ensure_running()?;
    let metrics = client
        .get(format!("{}/metrics", api.url))
        .send()
        .await?
        .text()
        .await?;
    let answers = |wanted: &dyn Fn(&str) -> bool| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("http_requests_total{") && l.contains("endpoint=\"/login\""))
            .filter(|l| {
                l.split("status=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .is_some_and(wanted)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    let flood = LoginFlood {
        clients: setup.clients,
        checked: answers(&|s| s == "401"),
        refused: answers(&|s| s == "429"),
        other: answers(&|s| s != "401" && s != "429"),
        peak_kib: procs::peak_rss_kib(pid),
        peak_threads: peak_threads.load(Ordering::Relaxed),
        measured,
        variant,
    };
    eprintln!(
        "shop-bench: login flood: {:.0} logins/s, p50 {:.2} ms, p99 {:.2} ms, {:.1} % refused, peak {} MiB, {} threads",
        flood.measured.per_second(),
        flood.measured.p50_ms,
        flood.measured.p99_ms,
        flood.refused_share() * 100.0,
        flood.peak_mib().map_or("?".into(), |m| format!("{m:.1}")),
        flood.peak_threads
    );
    Ok(flood)
}

/// How the API ran, for the report: the shipped settings unless told otherwise.
pub fn describe_variant(extra_args: &[String], other_binary: Option<&Path>) -> String {
    let mut parts = Vec::new();
    if extra_args.is_empty() {
        parts.push(match other_binary {
            None => "the shipped login settings".to_owned(),
            Some(_) => "its own defaults".to_owned(),
        });
    } else {
        parts.push(format!("`{}`", extra_args.join(" ")));
    }
    if let Some(binary) = other_binary {
        parts.push(format!("binary {}", binary.display()));
    }
    if let Some(arenas) = std::env::var_os("MALLOC_ARENA_MAX") {
        parts.push(format!("MALLOC_ARENA_MAX={}", arenas.to_string_lossy()));
    }
    parts.join(", ")
}
