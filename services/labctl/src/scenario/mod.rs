//! The failure scenarios. Each is named after the `scenario` label of the rules it must fire,
//! acts through the services' fault API or a real action, and reverts by itself after its
//! duration:
//!
//! | scenario | action | revert |
//! |---|---|---|
//! | service-down | `--stop-command` (default `systemctl stop shop-inventory.service`) | `--start-command` |
//! | error-burst | frontend fault `error_rate` 0.5 | fault expires / cleared |
//! | latency-spike | API fault `latency` 1500 ms | fault expires / cleared |
//! | payment-outage | payment fault `decline_rate` 1.0 for `card` (other methods keep working) | fault expires / cleared |
//! | stock-depletion | inventory fault `restock_paused`, then product `--stock-product` (7) set to 0 (with the operator token) | fault cleared, product restocked to 10× its threshold |
//! | brute-force | ~5 failed `POST /login`/s with `X-Forwarded-For: 203.0.113.66`, each on a different email that is no account's | the loop stops |
//! | credential-stuffing | ~2 failed `POST /login`/s on one account (`--stuffing-account`), each from the next address of 192.0.2.0/24 | the loop stops |
//! | traffic-stop | `POST /pause` to `labctl traffic`'s control endpoint | `POST /resume` (the pause also expires) |
//!
//! A running scenario is a process (`labctl scenario start`, in the foreground or detached)
//! that holds a state file under `--state-dir`; `labctl scenario stop` signals it (SIGTERM) so
//! it reverts, or reverts directly when no process runs it. `labctl scenario serve` runs them
//! for clients over HTTP ([`serve`]); with `--scenario-url` start and stop go there
//! ([`remote`]).

pub mod faults;
pub mod remote;
pub mod serve;
pub mod state;

use std::{
    future::Future,
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::{anyhow, Context};
use chrono::Utc;
use serde_json::{json, Value};
use tokio::{sync::watch, task::JoinHandle};

use self::{
    faults::{Cleared, FaultApi, Service},
    state::StateDir,
};
use crate::{
    cli::{ScenarioAction, ScenarioArgs, ScenarioOptions, Targets},
    durations,
    grafana::Grafana,
    http,
    rules::Catalog,
    table::Table,
};

/// The documented source of the brute-force attempts (TEST-NET-3, a header value only).
pub const BRUTE_FORCE_IP: &str = "203.0.113.66";
/// The brute force tries emails of this domain, which no account has: one address against
/// many accounts, so no single account's failures pile up (that is credential stuffing).
pub const BRUTE_FORCE_DOMAIN: &str = "brute-force.invalid";
/// The addresses credential stuffing comes from, in turn (TEST-NET-1, header values only):
/// 254 of them, so at its rate none fails more than about twice in the rules' 2 minutes.
pub const STUFFING_NETWORK: &str = "192.0.2";
/// The seeded customers.
pub const CUSTOMERS: [&str; 10] = [
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@example.com",
    "erin@example.com",
    "frank@example.com",
    "grace@example.com",
    "heidi@example.com",
    "ivan@example.com",
    "judy@example.com",
];
/// Their password.
pub const PASSWORD: &str = "alertlab-demo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    ServiceDown,
    ErrorBurst,
    LatencySpike,
    PaymentOutage,
    StockDepletion,
    BruteForce,
    CredentialStuffing,
    TrafficStop,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::ServiceDown,
        Scenario::ErrorBurst,
        Scenario::LatencySpike,
        Scenario::PaymentOutage,
        Scenario::StockDepletion,
        Scenario::BruteForce,
        Scenario::CredentialStuffing,
        Scenario::TrafficStop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ServiceDown => "service-down",
            Self::ErrorBurst => "error-burst",
            Self::LatencySpike => "latency-spike",
            Self::PaymentOutage => "payment-outage",
            Self::StockDepletion => "stock-depletion",
            Self::BruteForce => "brute-force",
            Self::CredentialStuffing => "credential-stuffing",
            Self::TrafficStop => "traffic-stop",
        }
    }

    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name.trim())
            .ok_or_else(|| {
                anyhow!(
                    "unknown scenario `{name}`; known scenarios: {}",
                    Self::ALL.map(Self::name).join(", ")
                )
            })
    }

    /// Acts through the services' fault API (which always requires the token).
    pub fn uses_fault_api(self) -> bool {
        matches!(
            self,
            Self::ErrorBurst | Self::LatencySpike | Self::PaymentOutage | Self::StockDepletion
        )
    }

    pub fn description(self, options: &ScenarioOptions) -> String {
        match self {
            Self::ServiceDown => format!(
                "stops the inventory service (`{}`), starts it again at the end (`{}`)",
                options.stop_command, options.start_command
            ),
            Self::ErrorBurst => "frontend answers 50 % of its business requests with 500 (fault error_rate 0.5)".into(),
            Self::LatencySpike => "API adds 1500 ms to every business request (fault latency 1500)".into(),
            Self::PaymentOutage => "card payments fail: processor unavailable (fault decline_rate 1.0 for card); other methods work".into(),
            Self::StockDepletion => format!(
                "pauses restocking (fault restock_paused) and sets product {} to 0; at the end restocks it",
                options.stock_product
            ),
            Self::BruteForce => format!(
                "{:.0} failed logins per second from {BRUTE_FORCE_IP} (X-Forwarded-For), each on another email of no account",
                options.brute_force_rate
            ),
            Self::CredentialStuffing => format!(
                "{:.0} failed logins per second on {}, each from the next address of {STUFFING_NETWORK}.0/24 (X-Forwarded-For)",
                options.stuffing_rate, options.stuffing_account
            ),
            Self::TrafficStop => "pauses `labctl traffic` (its control endpoint): no orders".into(),
        }
    }
}

/// What scenarios act with.
#[derive(Clone)]
pub struct Env {
    pub client: reqwest::Client,
    pub targets: Targets,
    pub options: ScenarioOptions,
    pub faults: FaultApi,
    /// The operator token (`--fault-token-file`), which stock changes need as well.
    pub operator_token: Option<String>,
    /// None with --no-annotate.
    pub grafana: Option<Grafana>,
    /// Prefix of progress lines.
    pub quiet: bool,
}

impl Env {
    pub fn new(targets: &Targets, options: &ScenarioOptions) -> anyhow::Result<Self> {
        let client = http::client(Duration::from_secs(targets.timeout.max(1)));
        let token = faults::read_token(targets.fault_token_file.as_deref())?;
        let grafana = if options.no_annotate {
            None
        } else {
            Some(Grafana::new(
                client.clone(),
                &targets.grafana_url,
                &targets.grafana_user,
                Grafana::password(targets.grafana_password_file.as_ref())?,
            ))
        };
        if !(options.brute_force_rate > 0.0 && options.brute_force_rate <= 100.0) {
            return Err(anyhow!(
                "--brute-force-rate must be above 0 and at most 100, got {}",
                options.brute_force_rate
            ));
        }
        if !(options.stuffing_rate > 0.0 && options.stuffing_rate <= 100.0) {
            return Err(anyhow!(
                "--stuffing-rate must be above 0 and at most 100, got {}",
                options.stuffing_rate
            ));
        }
        let account = options.stuffing_account.trim();
        if account.len() < 3 || !account.contains('@') {
            return Err(anyhow!(
                "--stuffing-account must be an email, got `{}`",
                options.stuffing_account
            ));
        }
        Ok(Self {
            operator_token: token.clone(),
            faults: FaultApi::new(client.clone(), targets.clone(), token),
            client,
            targets: targets.clone(),
            options: options.clone(),
            grafana,
            quiet: false,
        })
    }

    /// Refuses, before anything is done, to run scenarios that set faults without the token.
    pub fn require_fault_token(
        &self,
        scenarios: impl IntoIterator<Item = Scenario>,
    ) -> anyhow::Result<()> {
        let needing: Vec<&str> = scenarios
            .into_iter()
            .filter(|s| s.uses_fault_api())
            .map(Scenario::name)
            .collect();
        if needing.is_empty() || self.faults.has_token() {
            return Ok(());
        }
        Err(anyhow!(
            "{} set faults through the services' fault API, which requires its token: {}",
            needing.join(", "),
            faults::TOKEN_HINT
        ))
    }

    fn say(&self, scenario: Scenario, text: &str) {
        if !self.quiet {
            eprintln!("scenario {}: {text}", scenario.name());
        }
    }

    /// Writes an annotation; an unreachable Grafana is a warning.
    pub async fn annotate(&self, scenario: Scenario, text: &str) {
        let Some(grafana) = &self.grafana else { return };
        let tags = vec![
            "alertlab".to_owned(),
            format!("scenario:{}", scenario.name()),
        ];
        if let Err(err) = grafana.annotate(&tags, text).await {
            eprintln!(
                "labctl: warning: no Grafana annotation for {}: {}",
                scenario.name(),
                http::one_line(&err)
            );
        }
    }
}

/// A scenario in force; `revert` ends it.
pub struct Active {
    pub scenario: Scenario,
    /// brute-force and credential-stuffing: the loop of failed logins.
    login_flood: Option<(watch::Sender<bool>, JoinHandle<LoginFloodStats>)>,
    /// stock-depletion: the product's level before it was set to 0.
    previous_level: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LoginFloodStats {
    pub attempts: u64,
    pub rejected: u64,
    pub other: u64,
}

fn fault_seconds(duration: Duration) -> u64 {
    duration.as_secs_f64().ceil().clamp(1.0, 86_400.0) as u64
}

/// Puts `scenario` in force for `duration` (faults carry the duration, so they end by
/// themselves even if labctl dies).
pub async fn apply(env: &Env, scenario: Scenario, duration: Duration) -> anyhow::Result<Active> {
    let seconds = fault_seconds(duration);
    let mut active = Active {
        scenario,
        login_flood: None,
        previous_level: None,
    };
    match scenario {
        Scenario::ServiceDown => {
            run_shell("--stop-command", &env.options.stop_command).await?;
        }
        Scenario::ErrorBurst => {
            env.faults
                .set(
                    Service::Frontend,
                    &json!({"kind": "error_rate", "value": 0.5, "duration_seconds": seconds}),
                )
                .await?;
        }
        Scenario::LatencySpike => {
            env.faults
                .set(
                    Service::Api,
                    &json!({"kind": "latency", "value": 1500, "duration_seconds": seconds}),
                )
                .await?;
        }
        Scenario::PaymentOutage => {
            env.faults
                .set(
                    Service::Payment,
                    &json!({"kind": "decline_rate", "value": 1.0, "method": "card", "duration_seconds": seconds}),
                )
                .await?;
        }
        Scenario::StockDepletion => {
            let product = env.options.stock_product;
            active.previous_level = Some(stock_item(env, product).await?.0);
            // Pause first, or the next refresh would restock the product at once.
            env.faults
                .set(
                    Service::Inventory,
                    &json!({"kind": "restock_paused", "value": 0, "duration_seconds": seconds}),
                )
                .await?;
            set_stock(env, product, 0).await?;
        }
        Scenario::BruteForce => {
            let (tx, rx) = watch::channel(false);
            let task = tokio::spawn(login_flood(
                env.client.clone(),
                http::base(&env.targets.api_url),
                env.options.brute_force_rate,
                brute_force_attempt,
                rx,
            ));
            active.login_flood = Some((tx, task));
        }
        Scenario::CredentialStuffing => {
            let (tx, rx) = watch::channel(false);
            let account = env.options.stuffing_account.trim().to_owned();
            let task = tokio::spawn(login_flood(
                env.client.clone(),
                http::base(&env.targets.api_url),
                env.options.stuffing_rate,
                move |n| stuffing_attempt(&account, n),
                rx,
            ));
            active.login_flood = Some((tx, task));
        }
        Scenario::TrafficStop => {
            traffic_control(env, "/pause", Some(json!({"seconds": seconds}))).await?;
        }
    }
    Ok(active)
}

/// Ends a scenario started by [`apply`] in this process.
pub async fn revert(env: &Env, active: Active) -> anyhow::Result<String> {
    if let Some((tx, task)) = active.login_flood {
        let _ = tx.send(true);
        let stats = task.await.unwrap_or_default();
        return Ok(format!(
            "stopped after {} attempts ({} rejected with 401, {} other answers)",
            stats.attempts, stats.rejected, stats.other
        ));
    }
    if active.scenario == Scenario::StockDepletion {
        let c = env
            .faults
            .clear(Service::Inventory, "restock_paused")
            .await?;
        let restocked =
            restock_if_low(env, env.options.stock_product, active.previous_level).await?;
        return Ok(format!(
            "{}; {restocked}",
            describe_cleared(c, "restock_paused", Service::Inventory)
        ));
    }
    revert_directly(env, active.scenario).await
}

fn describe_cleared(c: Cleared, kind: &str, service: Service) -> String {
    match c {
        Cleared::Count(0) => format!(
            "no {kind} fault was active on the {} service",
            service.name()
        ),
        Cleared::Count(n) => format!(
            "cleared {n} {kind} fault(s) on the {} service",
            service.name()
        ),
        Cleared::Disabled => format!("the {} service's fault API is disabled", service.name()),
    }
}

/// Reverts `scenario` without the process that started it (idempotent).
pub async fn revert_directly(env: &Env, scenario: Scenario) -> anyhow::Result<String> {
    let cleared = describe_cleared;
    Ok(match scenario {
        Scenario::ServiceDown => {
            run_shell("--start-command", &env.options.start_command).await?;
            format!("ran `{}`", env.options.start_command)
        }
        Scenario::ErrorBurst => cleared(
            env.faults.clear(Service::Frontend, "error_rate").await?,
            "error_rate",
            Service::Frontend,
        ),
        Scenario::LatencySpike => cleared(
            env.faults.clear(Service::Api, "latency").await?,
            "latency",
            Service::Api,
        ),
        Scenario::PaymentOutage => cleared(
            env.faults.clear(Service::Payment, "decline_rate").await?,
            "decline_rate",
            Service::Payment,
        ),
        Scenario::StockDepletion => {
            let c = env
                .faults
                .clear(Service::Inventory, "restock_paused")
                .await?;
            let restocked = restock_if_low(env, env.options.stock_product, None).await?;
            format!(
                "{}; {restocked}",
                cleared(c, "restock_paused", Service::Inventory)
            )
        }
        Scenario::BruteForce | Scenario::CredentialStuffing => format!(
            "no {} loop runs in this process; nothing to revert",
            scenario.name()
        ),
        Scenario::TrafficStop => match traffic_control(env, "/resume", None).await {
            Ok(_) => "traffic resumed".into(),
            Err(e) if e.to_string().starts_with("cannot reach") => {
                format!("traffic generator not reachable ({e}); nothing to resume")
            }
            Err(e) => return Err(e),
        },
    })
}

/// Runs a scenario for `duration` or until `stop` resolves, then reverts it; annotates both
/// ends. Returns what the revert did.
pub async fn run<S: Future<Output = ()>>(
    env: &Env,
    scenario: Scenario,
    duration: Duration,
    stop: S,
) -> anyhow::Result<String> {
    let active = begin(env, scenario, duration).await?;
    let reason = tokio::select! {
        _ = tokio::time::sleep(duration) => "its duration ran out",
        _ = stop => "it was stopped",
    };
    finish(env, active, reason).await
}

/// Puts `scenario` in force for `duration` and annotates its start; when it cannot start,
/// undoes what was done and says why.
pub async fn begin(env: &Env, scenario: Scenario, duration: Duration) -> anyhow::Result<Active> {
    let ends = Utc::now() + chrono::Duration::milliseconds(duration.as_millis() as i64);
    env.annotate(
        scenario,
        &format!(
            "scenario {} started for {}: {}",
            scenario.name(),
            durations::human(duration),
            scenario.description(&env.options)
        ),
    )
    .await;
    let active = match apply(env, scenario, duration).await {
        Ok(a) => a,
        Err(err) => {
            // Undo what may have been done (e.g. the pause before a failed stock update).
            let _ = revert_directly(env, scenario).await;
            env.annotate(
                scenario,
                &format!("scenario {} failed to start", scenario.name()),
            )
            .await;
            return Err(err.context(format!("scenario {} could not start", scenario.name())));
        }
    };
    env.say(
        scenario,
        &format!(
            "started: {}; reverts by itself at {} ({})",
            scenario.description(&env.options),
            ends.format("%H:%M:%S UTC"),
            durations::human(duration)
        ),
    );
    Ok(active)
}

/// Reverts a scenario [`begin`] started, saying why it ends, and annotates its end.
pub async fn finish(env: &Env, active: Active, reason: &str) -> anyhow::Result<String> {
    let scenario = active.scenario;
    let result = revert(env, active).await;
    let outcome = match &result {
        Ok(what) => format!("reverted: {what}"),
        Err(err) => format!("revert FAILED: {}", http::one_line(err)),
    };
    env.say(scenario, &format!("ended ({reason}); {outcome}"));
    env.annotate(
        scenario,
        &format!("scenario {} ended ({reason}); {outcome}", scenario.name()),
    )
    .await;
    result.with_context(|| format!("scenario {}: revert failed", scenario.name()))
}

/// Runs `sh -c COMMAND`; a failure names the flag and the command's stderr.
pub async fn run_shell(flag: &str, command: &str) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("{flag} `{command}`: cannot run sh"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(anyhow!(
        "{flag} `{command}` failed ({}): {}",
        output
            .status
            .code()
            .map(|c| format!("exit {c}"))
            .unwrap_or_else(|| "killed".into()),
        http::excerpt(&stderr)
    ))
}

async fn set_stock(env: &Env, product: i32, level: i32) -> anyhow::Result<Value> {
    let base = Service::Inventory.url(&env.targets);
    let path = format!("/stock/{product}");
    let mut request = env
        .client
        .put(format!("{base}{path}"))
        .json(&json!({ "stock_level": level }));
    // Stock changes are operator actions: the inventory wants the operator (fault) token.
    if let Some(token) = &env.operator_token {
        request = request.bearer_auth(token);
    }
    let response = http::send("the inventory service", &base, request).await?;
    let response = http::expect_success("the inventory service", &base, &path, response).await?;
    http::json("the inventory service", &base, &path, response).await
}

/// A product's (stock level, low-stock threshold) from the inventory's `GET /stock`.
async fn stock_item(env: &Env, product: i32) -> anyhow::Result<(i64, i64)> {
    let base = Service::Inventory.url(&env.targets);
    let stock: Vec<Value> =
        http::get_json(&env.client, "the inventory service", &base, "/stock", None).await?;
    let item = stock
        .iter()
        .find(|i| i.get("product_id").and_then(Value::as_i64) == Some(product as i64))
        .ok_or_else(|| {
            anyhow!("the inventory service at {base} has no product {product} (--stock-product)")
        })?;
    Ok((
        item.get("stock_level").and_then(Value::as_i64).unwrap_or(0),
        item.get("low_stock_threshold")
            .and_then(Value::as_i64)
            .unwrap_or(10),
    ))
}

/// Puts a depleted product back: to its level before the scenario when that was above the
/// threshold, else to ten times the threshold (what the inventory's restocking refills to).
async fn restock_if_low(env: &Env, product: i32, previous: Option<i64>) -> anyhow::Result<String> {
    let (level, threshold) = stock_item(env, product).await?;
    if level > threshold {
        return Ok(format!(
            "product {product} is at {level}, above its threshold {threshold}"
        ));
    }
    let target = previous
        .filter(|p| *p > threshold)
        .unwrap_or(threshold * 10)
        .clamp(1, 1_000_000) as i32;
    set_stock(env, product, target).await?;
    Ok(format!(
        "restocked product {product} from {level} to {target}"
    ))
}

async fn traffic_control(env: &Env, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let base = http::base(&env.targets.traffic_url);
    http::check_url("--traffic-url", &base)?;
    let mut request = env.client.post(format!("{base}{path}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let what = "labctl traffic (control endpoint)";
    let response = http::send(what, &base, request).await?;
    let response = http::expect_success(what, &base, path, response).await?;
    http::json(what, &base, path, response).await
}

/// One brute-force attempt: always from [`BRUTE_FORCE_IP`], each on a new email of
/// [`BRUTE_FORCE_DOMAIN`] (one address, many accounts).
pub fn brute_force_attempt(n: u64) -> LoginAttempt {
    LoginAttempt {
        email: format!("user{n}@{BRUTE_FORCE_DOMAIN}"),
        forwarded_for: BRUTE_FORCE_IP.to_owned(),
    }
}

/// One credential-stuffing attempt: always on `account`, each from the next address of
/// [`STUFFING_NETWORK`] (one account, many addresses).
pub fn stuffing_attempt(account: &str, n: u64) -> LoginAttempt {
    LoginAttempt {
        email: account.to_owned(),
        forwarded_for: format!("{STUFFING_NETWORK}.{}", n % 254 + 1),
    }
}

/// Who a failed login claims to be, and where it claims to come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    pub email: String,
    /// The `X-Forwarded-For` header: one entry, as the lab's proxies write it, so the API
    /// (trusting one proxy) records exactly this address.
    pub forwarded_for: String,
}

/// Failed logins at `rate` per second, the n-th as `attempt(n)` says, until `stop` says so.
async fn login_flood(
    client: reqwest::Client,
    api: String,
    rate: f64,
    attempt: impl Fn(u64) -> LoginAttempt + Send + 'static,
    mut stop: watch::Receiver<bool>,
) -> LoginFloodStats {
    let attempts = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            continue;
        };
        n += 1;
        let LoginAttempt {
            email,
            forwarded_for,
        } = attempt(n);
        let request = client
            .post(format!("{api}/login"))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"email": email, "password": format!("guess-{n}")}));
        let (attempts, rejected, other) = (attempts.clone(), rejected.clone(), other.clone());
        tokio::spawn(async move {
            attempts.fetch_add(1, Ordering::Relaxed);
            match request.send().await {
                Ok(r) if r.status().as_u16() == 401 => rejected.fetch_add(1, Ordering::Relaxed),
                _ => other.fetch_add(1, Ordering::Relaxed),
            };
            drop(permit);
        });
    }
    // Let the attempts under way finish.
    let _ = tokio::time::timeout(Duration::from_secs(5), in_flight.acquire_many(64)).await;
    LoginFloodStats {
        attempts: attempts.load(Ordering::Relaxed),
        rejected: rejected.load(Ordering::Relaxed),
        other: other.load(Ordering::Relaxed),
    }
}

// ------------------------------------------------------------------------------------------
// The command

pub async fn command(targets: &Targets, args: &ScenarioArgs) -> anyhow::Result<ExitCode> {
    let state = StateDir::new(args.options.state_dir.as_deref());
    if let ScenarioAction::Serve {
        listen,
        allowed_hosts,
    } = &args.action
    {
        let env = Env::new(targets, &args.options)?;
        return serve::command(
            env,
            state,
            *listen,
            allowed_hosts,
            targets.scenario_token_file.as_deref(),
        )
        .await;
    }
    if let Some(remote) = remote::RemoteScenarios::from_targets(targets)? {
        return match &args.action {
            ScenarioAction::Start {
                name,
                duration,
                detach,
            } => {
                let scenario = Scenario::parse(name)?;
                let duration = start_duration(duration)?;
                remote.start_command(scenario, duration, *detach).await
            }
            ScenarioAction::Stop { name } => {
                let scenario = Scenario::parse(name)?;
                let what = remote.stop(scenario).await?;
                println!("{}: {what}", scenario.name());
                Ok(ExitCode::SUCCESS)
            }
            ScenarioAction::StopAll => remote.stop_all().await,
            ScenarioAction::List | ScenarioAction::Serve { .. } => {
                list(&args.options);
                Ok(ExitCode::SUCCESS)
            }
        };
    }
    match &args.action {
        ScenarioAction::List => {
            list(&args.options);
            Ok(ExitCode::SUCCESS)
        }
        ScenarioAction::Serve { .. } => unreachable!("served above"),
        ScenarioAction::Start {
            name,
            duration,
            detach,
        } => {
            let scenario = Scenario::parse(name)?;
            let duration = start_duration(duration)?;
            if let Some(running) = state.running(scenario)? {
                return Err(anyhow!(
                    "scenario {} is already running (pid {}); stop it first with `labctl scenario stop {}`",
                    scenario.name(),
                    running.pid,
                    scenario.name()
                ));
            }
            let env = Env::new(targets, &args.options)?;
            env.require_fault_token([scenario])?;
            if *detach {
                state.detach(scenario, duration)?;
                return Ok(ExitCode::SUCCESS);
            }
            state.register(scenario, duration)?;
            let result = run(&env, scenario, duration, async {
                let _ = crate::signals::received().await;
            })
            .await;
            state.unregister(scenario);
            result.map(|_| ExitCode::SUCCESS)
        }
        ScenarioAction::Stop { name } => {
            let scenario = Scenario::parse(name)?;
            let env = Env::new(targets, &args.options)?;
            let what = stop(&env, &state, scenario).await?;
            println!("{}: {what}", scenario.name());
            Ok(ExitCode::SUCCESS)
        }
        ScenarioAction::StopAll => {
            let env = Env::new(targets, &args.options)?;
            let mut failed = Vec::new();
            for scenario in Scenario::ALL {
                match stop(&env, &state, scenario).await {
                    Ok(what) => println!("{}: {what}", scenario.name()),
                    Err(err) => {
                        println!("{}: FAILED: {}", scenario.name(), http::one_line(&err));
                        failed.push(scenario.name());
                    }
                }
            }
            if failed.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                Err(anyhow!("could not revert: {}", failed.join(", ")))
            }
        }
    }
}

/// `--for` of `scenario start`: at least 1 s, at most 24 h.
fn start_duration(text: &str) -> anyhow::Result<Duration> {
    let duration = durations::parse_positive("--for", text)?;
    if duration > Duration::from_secs(86_400) {
        return Err(anyhow!("--for must be at most 24h"));
    }
    Ok(duration)
}

/// Stops a scenario: signals the process running it, or reverts directly.
pub async fn stop(env: &Env, state: &StateDir, scenario: Scenario) -> anyhow::Result<String> {
    if let Some(running) = state.running(scenario)? {
        state.terminate(&running, Duration::from_secs(60)).await?;
        return Ok(format!(
            "stopped the labctl process running it (pid {}), which reverted it",
            running.pid
        ));
    }
    state.unregister(scenario);
    let what = revert_directly(env, scenario).await?;
    if !matches!(
        scenario,
        Scenario::BruteForce | Scenario::CredentialStuffing
    ) {
        env.annotate(
            scenario,
            &format!(
                "scenario {} stopped by labctl scenario stop: {what}",
                scenario.name()
            ),
        )
        .await;
    }
    Ok(what)
}

fn list(options: &ScenarioOptions) {
    let catalog = Catalog::load(None, None, "demo").ok();
    let mut table = Table::new(&["SCENARIO", "RULES IT FIRES", "WHAT IT DOES"]);
    for s in Scenario::ALL {
        let rules = catalog
            .as_ref()
            .map(|c| {
                c.for_scenario(s.name())
                    .map(|r| r.uid.trim_start_matches("alertlab-").to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        table.row(vec![s.name().to_owned(), rules, s.description(options)]);
    }
    print!("{}", table.render());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_listed() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()).unwrap(), s);
        }
        assert_eq!(
            Scenario::parse("meltdown").unwrap_err().to_string(),
            "unknown scenario `meltdown`; known scenarios: service-down, error-burst, latency-spike, payment-outage, stock-depletion, brute-force, credential-stuffing, traffic-stop"
        );
    }

    #[test]
    fn brute_force_is_one_address_on_many_accounts_and_stuffing_the_reverse() {
        use std::collections::{HashMap, HashSet};
        // Two minutes of each at its default rate: what the rules' windows see.
        let brute: Vec<LoginAttempt> = (1..=600).map(brute_force_attempt).collect();
        let addresses: HashSet<&str> = brute.iter().map(|a| a.forwarded_for.as_str()).collect();
        assert_eq!(addresses, HashSet::from([BRUTE_FORCE_IP]));
        let emails: HashSet<&str> = brute.iter().map(|a| a.email.as_str()).collect();
        assert_eq!(emails.len(), 600, "no email twice");
        assert!(emails.iter().all(|e| !CUSTOMERS.contains(e)));

        let stuffing: Vec<LoginAttempt> = (1..=240)
            .map(|n| stuffing_attempt("judy@example.com", n))
            .collect();
        assert!(stuffing.iter().all(|a| a.email == "judy@example.com"));
        let mut per_address: HashMap<&str, usize> = HashMap::new();
        for a in &stuffing {
            *per_address.entry(a.forwarded_for.as_str()).or_default() += 1;
            assert!(
                a.forwarded_for.parse::<std::net::Ipv4Addr>().is_ok(),
                "{a:?}"
            );
        }
        // The brute-force rule counts only addresses with more than 5 failures.
        assert!(per_address.values().all(|n| *n <= 2), "{per_address:?}");
        assert!(per_address.len() > 200);
    }

    #[test]
    fn fault_durations_are_whole_seconds_within_the_api_limits() {
        assert_eq!(fault_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(fault_seconds(Duration::from_millis(10)), 1);
        assert_eq!(fault_seconds(Duration::from_secs(100_000)), 86_400);
    }
}
