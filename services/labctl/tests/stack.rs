//! The stack test: real parts, no Grafana. A throwaway PostgreSQL, the four services
//! in-process on free ports, a real Prometheus scraping them every second with the scrape
//! configuration generated from `nixos-modules/lib/prometheus-scrape-configs.nix` (the source
//! the NixOS module uses), `labctl traffic` running — and `labctl check` proving that every
//! PromQL and SQL rule is false in the healthy state, true while its scenario runs, and false
//! again after. The Loki rules are listed as NOT CHECKED (no Loki here).
//!
//! After the healthy baseline, every dashboard panel is drawn against the same PostgreSQL and
//! Prometheus over a range that starts at hh:31 (`render`): each PromQL and SQL panel query
//! must return data; the LogQL panels are listed as NOT RUN. The database holds three hours
//! of order history before the traffic starts, as a lab that has run for a while.
//!
//! Phases (scenarios that do not set off each other's rules run together):
//! 1. error-burst, latency-spike, payment-outage, stock-depletion, brute-force
//! 2. service-down (the inventory is stopped and started through files the test watches),
//!    traffic-stop, credential-stuffing
//!
//! Needs `prometheus` (Debian: `apt-get install prometheus`, or $PROMETHEUS) and
//! `nix-instantiate` (`apt-get install nix-bin`, or $NIX_INSTANTIATE); it fails, never
//! skips, without them.

mod common;
mod render;

use std::{
    collections::BTreeMap,
    fs,
    net::SocketAddr,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{closed_port, labctl, BINARY};
use serde_json::Value;
use shop_telemetry::CommonArgs;
use tokio::sync::oneshot;

const PHASE_1: &[&str] = &[
    "error-burst",
    "latency-spike",
    "payment-outage",
    "stock-depletion",
    "brute-force",
];
const PHASE_2: &[&str] = &["service-down", "traffic-stop", "credential-stuffing"];

fn tool(env: &str, name: &str, install: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| panic!("the stack test needs `{name}` on PATH (or ${env}): {install}"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Kills a child process when dropped.
struct Guard(Option<Child>, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("stack: {} had to be killed", self.1);
        }
    }
}

/// The services' settings, with the lab's operator (fault) token.
fn common_args(log_dir: &Path, operator_token: &Path) -> CommonArgs {
    CommonArgs {
        log_dir: log_dir.to_path_buf(),
        log_level: log::LevelFilter::Off,
        enable_faults: true,
        fault_token_file: Some(operator_token.to_path_buf()),
        ..CommonArgs::default()
    }
}

fn free_addr() -> SocketAddr {
    format!("127.0.0.1:{}", closed_port()).parse().unwrap()
}

/// The scrape configuration, from the Nix function the NixOS module uses.
fn scrape_configs(nix: &Path, ports: &BTreeMap<&str, u16>, prometheus_port: u16) -> Value {
    let expr = r#"{ repo, ports, prometheusPort }:
      let
        lib = import "${repo}/nixos-modules/lib";
        p = builtins.fromJSON ports;
      in lib.prometheusScrapeConfigs {
        services = map (s: s // { port = p.${s.name}; }) lib.services;
        scrapeInterval = "1s";
        prometheusPort = builtins.fromJSON prometheusPort;
      }"#;
    let out = Command::new(nix)
        .args(["--eval", "--strict", "--json", "-E", expr])
        .args(["--argstr", "repo"])
        .arg(repo_root())
        .args(["--argstr", "ports", &serde_json::to_string(ports).unwrap()])
        .args(["--argstr", "prometheusPort", &prometheus_port.to_string()])
        .output()
        .expect("nix-instantiate runs");
    assert!(
        out.status.success(),
        "nix-instantiate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A labctl command with every target in the environment; killed after `limit`.
fn run_labctl(env: &[(String, String)], args: &[&str], limit: Duration) -> (bool, String, String) {
    let mut child = labctl()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out_thread =
        std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err_thread =
        std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out_thread.join().unwrap();
    let stderr = err_thread.join().unwrap();
    (
        status.is_some_and(|s| s.success()),
        stdout,
        if status.is_none() {
            format!("{stderr}\n(killed after {limit:?})")
        } else {
            stderr
        },
    )
}

async fn labctl_async(
    env: &[(String, String)],
    args: &[&str],
    limit: Duration,
) -> (bool, String, String) {
    let env = env.to_vec();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_labctl(&env, &refs, limit)
    })
    .await
    .unwrap()
}

/// Runs `labctl check --expect ... --json` and returns its report.
async fn check(env: &[(String, String)], args: &[&str], limit: Duration, what: &str) -> Value {
    let mut all = vec!["check", "--json", "--every", "3s"];
    all.extend_from_slice(args);
    let started = Instant::now();
    let (ok, stdout, stderr) = labctl_async(env, &all, limit).await;
    eprintln!(
        "stack: {what}: {} after {:.0}s",
        if ok { "met" } else { "NOT met" },
        started.elapsed().as_secs_f64()
    );
    assert!(
        ok,
        "{what}: labctl check failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{what}: {e}: {stdout}"))
}

/// Starts a scenario in the foreground as a child (it reverts by itself or on stop).
fn start_scenario(env: &[(String, String)], name: &str, logs: &Path) -> Guard {
    let log = fs::File::create(logs.join(format!("scenario-{name}.log"))).unwrap();
    let child = labctl()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["scenario", "start", name, "--for", "6m"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Guard(Some(child), "a scenario")
}

/// Waits until the scenario's process registered in the state dir.
async fn wait_registered(state: &Path, name: &str, logs: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !state.join(format!("{name}.json")).exists() {
        assert!(
            Instant::now() < deadline,
            "scenario {name} did not start: {}",
            fs::read_to_string(logs.join(format!("scenario-{name}.log"))).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Registered before applying; give the action a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn stop_scenarios(
    env: &[(String, String)],
    names: &[&str],
    mut guards: Vec<Guard>,
    logs: &Path,
) {
    for name in names {
        let (ok, stdout, stderr) =
            labctl_async(env, &["scenario", "stop", name], Duration::from_secs(90)).await;
        assert!(ok, "scenario stop {name}: {stdout}{stderr}");
        eprintln!("stack: {}", stdout.trim());
    }
    for g in &mut guards {
        if let Some(child) = g.0.as_mut() {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(
                        status.success(),
                        "a scenario process failed; logs in {}",
                        logs.display()
                    );
                    break;
                }
                assert!(Instant::now() < deadline, "a scenario process did not exit");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            g.0 = None;
        }
    }
}

/// The inventory, stopped and started when the service-down commands create files.
async fn inventory_controller(dir: PathBuf, settings: shop_inventory::Settings) {
    let start = |settings: shop_inventory::Settings| async move {
        let app = shop_inventory::Application::build(settings)
            .await
            .expect("the inventory starts");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
            Ok("test stop")
        }));
        (tx, task)
    };
    let mut running = Some(start(settings.clone()).await);
    let stop_file = dir.join("inventory.stop");
    let start_file = dir.join("inventory.start");
    loop {
        if stop_file.exists() {
            if let Some((tx, task)) = running.take() {
                let _ = tx.send(());
                let _ = task.await;
                eprintln!("stack: inventory stopped");
            }
            let _ = fs::remove_file(&stop_file);
        }
        if start_file.exists() {
            if running.is_none() {
                running = Some(start(settings.clone()).await);
                eprintln!("stack: inventory started");
            }
            let _ = fs::remove_file(&start_file);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Shell command that creates `file` and waits until the controller has acted on it.
fn handshake(file: &Path) -> String {
    let f = file.display();
    format!("touch '{f}' && i=0 && while [ -e '{f}' ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done && [ ! -e '{f}' ]")
}

/// Three hours of orders up to now, one every 2 s (the traffic generator's rate), one in fifty
/// failed (its ordinary declines): what a lab that has run for a while has.
async fn seed_order_history(database_url: &str) {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "INSERT INTO orders (product_id, quantity, total_amount, order_status, payment_method, failure_reason, order_time, updated_at)
             SELECT 1 + n % 24, 1, 19.90,
                    CASE WHEN n % 50 = 0 THEN 'failed' ELSE 'completed' END, 'card',
                    CASE WHEN n % 50 = 0 THEN 'declined' END,
                    now() - n * interval '2 seconds', now() - n * interval '2 seconds'
             FROM generate_series(1, 5400) AS n",
        )
        .await
        .unwrap();
}

/// Grafana's read-only role `grafana_ro`, made as the NixOS unit makes it: grafana/grafana-ro.sh
/// with grafana/grafana-ro.sql, so the rules run here with exactly the lab's privileges.
fn create_read_only_role(pg: &shop_testkit::TestPostgres, database: &str, dir: &Path) {
    let password_file = dir.join("grafana-ro-password");
    fs::write(&password_file, "stack-test-read-only\n").unwrap();
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("grafana/grafana-ro.sh"))
        .args(["--host", "127.0.0.1", "--port", &pg.port().to_string()])
        .args(["--username", "postgres", "--dbname", database])
        .env("GRAFANA_RO_ROLE", "grafana_ro")
        .env("GRAFANA_RO_PASSWORD_FILE", &password_file)
        .env("PSQL", pg.psql())
        .stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe. Without a terminal, psql's \password reads the
    // password from standard input, as in the unit, not from the developer's tty.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let output = command.output().expect("bash runs grafana-ro.sh");
    assert!(
        output.status.success(),
        "grafana-ro.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every dashboard panel against this stack's Prometheus (scraping every second) and
/// PostgreSQL (as Grafana's read-only role), over a range from hh:31: no PromQL or SQL panel
/// may come back empty or failing.
async fn draw_every_dashboard_panel(prometheus_url: &str, database_url: &str) {
    let files = alertlab_grafana::GrafanaFiles::load(&repo_root()).expect("grafana/ loads");
    let queries = alertlab_grafana::render::panel_queries(&files).expect("panel queries");
    let window = render::window(chrono::Utc::now());
    let drawn =
        render::draw_every_panel(queries, &window, prometheus_url, 1_000, database_url).await;
    eprintln!("stack: every dashboard panel:\n{}", render::table(&drawn));
    let not_run = drawn
        .iter()
        .filter(|d| d.found.is_none() && d.error.is_none())
        .count();
    eprintln!(
        "stack: !!! {not_run} LogQL panel quer(ies) NOT RUN: no Loki here (the VM tests evaluate the LogQL alert rules, not these panels)"
    );
    let empty: Vec<String> = drawn
        .iter()
        .filter(|d| d.error.is_some() || d.found == Some(0))
        .map(|d| {
            format!(
                "{}: {} ({})",
                d.query.dashboard, d.query.panel, d.query.ref_id
            )
        })
        .collect();
    assert!(
        empty.is_empty(),
        "panels without data under healthy traffic over {} .. {}:\n{}",
        window.from,
        window.to,
        empty.join("\n")
    );
    let ran = |language| {
        drawn
            .iter()
            .filter(|d| d.query.language == language && d.found.is_some())
            .count()
    };
    assert!(
        ran(alertlab_grafana::Language::PromQL) >= 20 && ran(alertlab_grafana::Language::Sql) >= 5,
        "too few panel queries drawn"
    );
}

#[derive(Default, Debug)]
struct Seen {
    baseline: String,
    phase: usize,
    true_after_s: Option<f64>,
    false_after_s: Option<f64>,
    checked: bool,
}

fn record(seen: &mut BTreeMap<String, Seen>, report: &Value, f: impl Fn(&mut Seen, &Value)) {
    for r in report["rules"].as_array().unwrap() {
        let uid = r["uid"].as_str().unwrap().to_owned();
        f(seen.entry(uid).or_default(), r);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_promql_and_sql_rule_goes_false_true_false() {
    let wall = Instant::now();
    let prometheus = tool("PROMETHEUS", "prometheus", "apt-get install prometheus");
    let nix = tool(
        "NIX_INSTANTIATE",
        "nix-instantiate",
        "apt-get install nix-bin",
    );
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let state = tmp.path().join("state");
    fs::create_dir_all(&logs).unwrap();

    // PostgreSQL with the schema, and Grafana's read-only role.
    let pg = shop_testkit::shared_postgres();
    let database_url = pg.create_migrated_database("shop_template", |url| {
        shop_db::run_migrations(url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let db_name = database_url.rsplit('/').next().unwrap().to_owned();
    create_read_only_role(pg, &db_name, tmp.path());
    seed_order_history(&database_url).await;
    // The test server trusts local connections, so no password is needed to log in.
    let ro_url = format!("postgres://grafana_ro@127.0.0.1:{}/{db_name}", pg.port());

    // The four services, with the lab's secrets.
    let payment_token = shop_testkit::secrets::token_file("payment-token");
    let operator_token = shop_testkit::secrets::token_file("fault-token");
    let common_args = |logs: &Path| common_args(logs, &operator_token.path);
    let payment = shop_payment::Application::build(shop_payment::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        decline_rate: 0.02,
        payment_token_file: payment_token.path.clone(),
        common: common_args(&logs),
    })
    .await
    .unwrap();
    let payment_addr = payment.local_addr();
    tokio::spawn(payment.run_until_stopped(std::future::pending()));
    let api = shop_api::Application::build(shop_api::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone(),
        payment_url: format!("http://{payment_addr}"),
        payment_timeout: Duration::from_secs(10),
        payment_token_file: payment_token.path.clone(),
        database_pool_size: 10,
        // As the lab's unit: one trusted proxy (the frontend, or labctl simulating clients).
        trusted_proxies: 1,
        session_ttl: Duration::from_secs(3600),
        order_limits: shop_api::OrderLimits::default(),
        login_limits: shop_api::LoginLimits::default(),
        common: common_args(&logs),
    })
    .await
    .unwrap();
    let api_addr = api.local_addr();
    tokio::spawn(api.run_until_stopped(std::future::pending()));
    let frontend = shop_frontend::Application::build(shop_frontend::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_url: format!("http://{api_addr}"),
        api_timeout: 10,
        session_timeout: 1800,
        max_sessions: shop_frontend::MAX_SESSIONS,
        common: common_args(&logs),
    })
    .await
    .unwrap();
    let frontend_addr = frontend.local_addr();
    tokio::spawn(frontend.run_until_stopped(std::future::pending()));
    let inventory_addr = free_addr();
    tokio::spawn(inventory_controller(
        tmp.path().to_path_buf(),
        shop_inventory::Settings {
            listen: inventory_addr,
            database_url: database_url.clone(),
            refresh_interval: Duration::from_secs(5),
            database_pool_size: 4,
            common: common_args(&logs),
        },
    ));

    // Prometheus, configured from the Nix source.
    let prom_port = closed_port();
    let ports = BTreeMap::from([
        ("api", api_addr.port()),
        ("frontend", frontend_addr.port()),
        ("payment", payment_addr.port()),
        ("inventory", inventory_addr.port()),
    ]);
    let scrape = scrape_configs(&nix, &ports, prom_port);
    assert_eq!(scrape.as_array().unwrap().len(), 5, "{scrape}");
    let config = serde_json::json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": scrape,
    });
    let config_path = tmp.path().join("prometheus.yml");
    fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let prom_log = fs::File::create(logs.join("prometheus.log")).unwrap();
    let _prometheus = Guard(
        Some(
            Command::new(&prometheus)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    tmp.path().join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
                .arg("--log.level=warn")
                .stdout(prom_log.try_clone().unwrap())
                .stderr(prom_log)
                .spawn()
                .expect("prometheus starts"),
        ),
        "prometheus",
    );
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up: Option<Value> = match client
            .get(format!("{prom_url}/api/v1/query"))
            .query(&[("query", r#"count(up{job=~"shop-.+"} == 1)"#)])
            .send()
            .await
        {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        let n = up
            .as_ref()
            .and_then(|v| v.pointer("/data/result/0/value/1"))
            .and_then(Value::as_str)
            .unwrap_or("0");
        if n == "4" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus does not see the four services up: {up:?}\n{}",
            fs::read_to_string(logs.join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "stack: services and Prometheus up after {:.0}s",
        wall.elapsed().as_secs_f64()
    );

    // Every labctl command sees the same targets.
    let control = closed_port();
    let env: Vec<(String, String)> = [
        ("LABCTL_API_URL", format!("http://{api_addr}")),
        ("LABCTL_FRONTEND_URL", format!("http://{frontend_addr}")),
        ("LABCTL_PAYMENT_URL", format!("http://{payment_addr}")),
        ("LABCTL_INVENTORY_URL", format!("http://{inventory_addr}")),
        ("LABCTL_PROMETHEUS_URL", prom_url.clone()),
        ("LABCTL_DATABASE_URL", ro_url.clone()),
        ("LABCTL_TRAFFIC_URL", format!("http://127.0.0.1:{control}")),
        (
            "LABCTL_GRAFANA_URL",
            format!("http://127.0.0.1:{}", closed_port()),
        ),
        ("LABCTL_NO_ANNOTATE", "true".into()),
        ("LABCTL_STATE_DIR", state.display().to_string()),
        (
            "LABCTL_SERVICE_STOP_COMMAND",
            handshake(&tmp.path().join("inventory.stop")),
        ),
        (
            "LABCTL_SERVICE_START_COMMAND",
            handshake(&tmp.path().join("inventory.start")),
        ),
        ("LABCTL_TIMEOUT", "10".into()),
        (
            "LABCTL_FAULT_TOKEN_FILE",
            operator_token.path.display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    // Healthy traffic.
    let traffic_log = fs::File::create(logs.join("traffic.log")).unwrap();
    let _traffic = Guard(
        Some(
            Command::new(BINARY)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .args(["traffic", "--report-every", "30"])
                .args(["--control-listen", &format!("127.0.0.1:{control}")])
                .stdout(traffic_log.try_clone().unwrap())
                .stderr(traffic_log)
                .spawn()
                .unwrap(),
        ),
        "labctl traffic",
    );
    tokio::time::sleep(Duration::from_secs(15)).await;

    // One plain evaluation: the table, with the Loki rules visibly not checked.
    let (ok, table, stderr) = labctl_async(&env, &["check"], Duration::from_secs(60)).await;
    assert!(ok, "labctl check: {table}{stderr}");
    eprintln!("stack: labctl check (healthy):\n{table}");
    for uid in [
        "alertlab-payment-errors-in-logs",
        "alertlab-critical-stock-in-logs",
        "alertlab-frontend-errors-in-logs",
    ] {
        let line = table.lines().find(|l| l.starts_with(uid)).unwrap();
        assert!(line.contains("NOT CHECKED"), "{line}");
    }
    assert!(
        table.contains("10 rule(s) checked (0 true), 3 NOT CHECKED"),
        "{table}"
    );

    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();

    // Baseline: nothing true for a while under healthy traffic.
    let baseline = check(
        &env,
        &["--expect", "healthy", "--wait", "60s", "--hold", "45s"],
        Duration::from_secs(180),
        "baseline (healthy, held 45s)",
    )
    .await;
    record(&mut seen, &baseline, |s, r| {
        s.checked = r["checked"].as_bool().unwrap();
        s.baseline = if s.checked {
            format!("false x{}", baseline["evaluations"])
        } else {
            "not checked".into()
        };
    });

    draw_every_dashboard_panel(&prom_url, &ro_url).await;

    for (phase, names) in [(1usize, PHASE_1), (2, PHASE_2)] {
        let mut guards = Vec::new();
        for name in names {
            guards.push(start_scenario(&env, name, &logs));
        }
        for name in names {
            wait_registered(&state, name, &logs).await;
        }
        let expect = format!("scenario={}", names.join(","));
        let firing = check(
            &env,
            &["--expect", &expect, "--wait", "5m"],
            Duration::from_secs(420),
            &format!("phase {phase}: {expect}"),
        )
        .await;
        record(&mut seen, &firing, |s, r| {
            if r["expected_true"].as_bool() == Some(true) && r["checked"].as_bool() == Some(true) {
                s.phase = phase;
                s.true_after_s = r["first_true_s"].as_f64();
            }
        });
        stop_scenarios(&env, names, guards, &logs).await;
        let after = check(
            &env,
            &["--expect", "healthy", "--wait", "5m"],
            Duration::from_secs(420),
            &format!("phase {phase}: healthy again"),
        )
        .await;
        record(&mut seen, &after, |s, r| {
            if s.phase == phase {
                s.false_after_s = r["normal_since_s"].as_f64();
            }
        });
    }

    let (ok, stdout, stderr) =
        labctl_async(&env, &["scenario", "stop-all"], Duration::from_secs(120)).await;
    assert!(ok, "stop-all: {stdout}{stderr}");

    // The record of every rule.
    let mut summary = String::from(
        "RULE                               BASELINE    PHASE  TRUE AFTER  FALSE AFTER (from the stop)\n",
    );
    for (uid, s) in &seen {
        summary.push_str(&format!(
            "{uid:<35}{:<12}{:<7}{:<12}{}\n",
            s.baseline,
            if s.phase == 0 {
                "-".into()
            } else {
                s.phase.to_string()
            },
            s.true_after_s
                .map(|t| format!("{t:.0}s"))
                .unwrap_or_else(|| "-".into()),
            s.false_after_s
                .map(|t| format!("{t:.0}s"))
                .unwrap_or_else(|| "-".into()),
        ));
    }
    eprintln!(
        "stack: every rule (wall time {:.0}s):\n{summary}\ntraffic:\n{}",
        wall.elapsed().as_secs_f64(),
        fs::read_to_string(logs.join("traffic.log")).unwrap_or_default()
    );
    let checked: Vec<&String> = seen
        .iter()
        .filter(|(_, s)| s.checked)
        .map(|(u, _)| u)
        .collect();
    assert_eq!(checked.len(), 10, "{summary}");
    for (uid, s) in &seen {
        if s.checked {
            assert!(
                s.true_after_s.is_some() && s.false_after_s.is_some(),
                "{uid} did not go false → true → false:\n{summary}"
            );
        } else {
            assert_eq!(s.phase, 0, "{uid}");
        }
    }
}
