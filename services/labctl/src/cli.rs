//! Command line: every target is a flag with an environment fallback, so the same binary
//! works inside the lab VM, against the forwarded ports of `nix run`, and in the tests.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

/// The alertlab command-line tool: healthy traffic, failure scenarios, the webhook sink, and
/// the proof that every alert fires and resolves.
#[derive(Debug, Clone, Parser)]
#[command(name = "labctl", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub targets: Targets,

    #[command(subcommand)]
    pub command: Command,
}

/// Where the lab's parts answer. Defaults are the lab's ports on 127.0.0.1.
#[derive(Debug, Clone, Args)]
pub struct Targets {
    /// API service base URL.
    #[arg(
        long,
        env = "LABCTL_API_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub api_url: String,

    /// Frontend service base URL.
    #[arg(
        long,
        env = "LABCTL_FRONTEND_URL",
        default_value = "http://127.0.0.1:8081",
        global = true
    )]
    pub frontend_url: String,

    /// Payment service base URL.
    #[arg(
        long,
        env = "LABCTL_PAYMENT_URL",
        default_value = "http://127.0.0.1:8082",
        global = true
    )]
    pub payment_url: String,

    /// Inventory service base URL.
    #[arg(
        long,
        env = "LABCTL_INVENTORY_URL",
        default_value = "http://127.0.0.1:8083",
        global = true
    )]
    pub inventory_url: String,

    /// Grafana base URL.
    #[arg(
        long,
        env = "LABCTL_GRAFANA_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub grafana_url: String,

    /// Grafana user for basic auth.
    #[arg(
        long,
        env = "LABCTL_GRAFANA_USER",
        default_value = "admin",
        global = true
    )]
    pub grafana_user: String,

    /// File holding the Grafana password (else $LABCTL_GRAFANA_PASSWORD, else `admin`).
    #[arg(long, env = "LABCTL_GRAFANA_PASSWORD_FILE", global = true)]
    pub grafana_password_file: Option<PathBuf>,

    /// Prometheus base URL.
    #[arg(
        long,
        env = "LABCTL_PROMETHEUS_URL",
        default_value = "http://127.0.0.1:9090",
        global = true
    )]
    pub prometheus_url: String,

    /// Loki base URL. `check` evaluates the Loki rules only when this is given.
    #[arg(long, env = "LABCTL_LOKI_URL", global = true)]
    pub loki_url: Option<String>,

    /// PostgreSQL URL of the shop database, as Grafana's read-only role (a URL or a libpq
    /// key=value string; `postgres:///shop?host=/run/postgresql` uses the socket).
    #[arg(
        long,
        env = "LABCTL_DATABASE_URL",
        default_value = "postgres://grafana_ro@127.0.0.1:5432/shop",
        // It may hold a password: `--help` must not print it.
        hide_env_values = true,
        global = true
    )]
    pub database_url: String,

    /// File holding the database password (for a URL without one).
    #[arg(long, env = "LABCTL_DATABASE_PASSWORD_FILE", global = true)]
    pub database_password_file: Option<PathBuf>,

    /// Webhook sink base URL (`labctl sink`).
    #[arg(
        long,
        env = "LABCTL_SINK_URL",
        default_value = "http://127.0.0.1:9095",
        global = true
    )]
    pub sink_url: String,

    /// Mailpit base URL (its HTTP API).
    #[arg(
        long,
        env = "LABCTL_MAILPIT_URL",
        default_value = "http://127.0.0.1:8025",
        global = true
    )]
    pub mailpit_url: String,

    /// Control URL of the running `labctl traffic` (its --control-listen).
    #[arg(
        long,
        env = "LABCTL_TRAFFIC_URL",
        default_value = "http://127.0.0.1:9097",
        global = true
    )]
    pub traffic_url: String,

    /// File holding the bearer token of the services' fault API; every fault request needs it
    /// (on a host with the lab profile: /var/lib/alertlab-secrets/fault-token).
    #[arg(long, env = "LABCTL_FAULT_TOKEN_FILE", global = true)]
    pub fault_token_file: Option<PathBuf>,

    /// Control URL of a `labctl scenario serve` (e.g. the `nix run` VM's): when given,
    /// `scenario start`, `stop` and `stop-all` run the scenarios there instead of from here.
    #[arg(long, env = "LABCTL_SCENARIO_URL", global = true)]
    pub scenario_url: Option<String>,

    /// File holding the bearer token of `labctl scenario serve` (for --scenario-url, and the
    /// token `scenario serve` requires).
    #[arg(long, env = "LABCTL_SCENARIO_TOKEN_FILE", global = true)]
    pub scenario_token_file: Option<PathBuf>,

    /// Seconds one HTTP request to a target may take.
    #[arg(long, env = "LABCTL_TIMEOUT", default_value_t = 10, global = true)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Healthy traffic: weighted user journeys against the frontend and the API, until
    /// SIGTERM or SIGINT.
    Traffic(TrafficArgs),
    /// Failure scenarios: list, start, stop.
    Scenario(ScenarioArgs),
    /// Evaluate every rule's queries and expressions directly on Prometheus and PostgreSQL
    /// (and Loki with --loki-url), without Grafana.
    Check(CheckArgs),
    /// Every rule's state, health and active instances, from Grafana's API.
    Alerts(AlertsArgs),
    /// The whole contract against Grafana: baseline, scenarios, firing, notifications,
    /// resolution.
    Verify(VerifyArgs),
    /// The webhook sink: records Grafana's notifications and lists them over HTTP.
    Sink(SinkArgs),
    /// The lab's security and delivery checks, one per subcommand (what the VM tests run).
    Audit(crate::audit::args::AuditArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TrafficArgs {
    /// User journeys per second.
    #[arg(long, env = "LABCTL_TRAFFIC_RATE", default_value_t = 5.0)]
    pub rate: f64,

    /// Address of the control endpoint (GET /status, POST /pause, POST /resume); `none`
    /// disables it.
    #[arg(long, env = "LABCTL_TRAFFIC_CONTROL", default_value = "127.0.0.1:9097")]
    pub control_listen: String,

    /// A host name the control endpoint accepts in `Host` besides localhost and loopback
    /// addresses (repeatable); requests naming any other host are refused (DNS rebinding).
    #[arg(long = "control-allowed-host", value_name = "NAME")]
    pub control_allowed_hosts: Vec<String>,

    /// Stop after this long (e.g. 10m) instead of running until a signal.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,

    /// Seconds between one-line summaries on stderr (0: none).
    #[arg(long, default_value_t = 60)]
    pub report_every: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    #[command(subcommand)]
    pub action: ScenarioAction,

    #[command(flatten)]
    pub options: ScenarioOptions,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ScenarioAction {
    /// The scenarios, what each does, and the rules it must fire.
    List,
    /// Start a scenario; it reverts by itself after --for. Runs in the foreground until then
    /// (Ctrl-C reverts early) unless --detach.
    Start {
        /// Scenario name (see `labctl scenario list`).
        name: String,
        /// How long the failure lasts (e.g. 90s, 5m, 1m30s).
        #[arg(long = "for", value_name = "DURATION", default_value = "5m")]
        duration: String,
        /// Run in the background and return at once (log and state under --state-dir).
        #[arg(long)]
        detach: bool,
    },
    /// Stop a scenario now and revert it (also when labctl is no longer running it).
    Stop {
        /// Scenario name.
        name: String,
    },
    /// Stop and revert every scenario.
    StopAll,
    /// Serve start and stop of the scenarios over HTTP for `--scenario-url` clients, with
    /// the token of --scenario-token-file; runs them here until SIGTERM or SIGINT, then
    /// reverts what still runs.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "LABCTL_SCENARIO_LISTEN", default_value = "127.0.0.1:9098")]
        listen: SocketAddr,
        /// A host name accepted in `Host` besides localhost, loopback addresses and the
        /// listen address (repeatable); requests naming any other host are refused.
        #[arg(long = "allowed-host", value_name = "NAME")]
        allowed_hosts: Vec<String>,
    },
}

/// How scenarios act on the lab.
#[derive(Debug, Clone, Args)]
pub struct ScenarioOptions {
    /// Directory of the running scenarios' state and log files (default:
    /// $XDG_RUNTIME_DIR/labctl, else /run/user/<uid>/labctl, else <tmp>/labctl-<uid>); it must
    /// be this user's and mode 0700 (created so when missing).
    #[arg(long, env = "LABCTL_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,

    /// Shell command that stops the inventory service (service-down).
    #[arg(
        long,
        env = "LABCTL_SERVICE_STOP_COMMAND",
        default_value = "systemctl stop shop-inventory.service",
        global = true
    )]
    pub stop_command: String,

    /// Shell command that starts it again.
    #[arg(
        long,
        env = "LABCTL_SERVICE_START_COMMAND",
        default_value = "systemctl start shop-inventory.service",
        global = true
    )]
    pub start_command: String,

    /// Product the stock-depletion scenario sets to 0.
    #[arg(long, env = "LABCTL_STOCK_PRODUCT", default_value_t = 7, global = true)]
    pub stock_product: i32,

    /// Failed logins per second of the brute-force scenario.
    #[arg(
        long,
        env = "LABCTL_BRUTE_FORCE_RATE",
        default_value_t = 5.0,
        global = true
    )]
    pub brute_force_rate: f64,

    /// Failed logins per second of the credential-stuffing scenario.
    #[arg(
        long,
        env = "LABCTL_STUFFING_RATE",
        default_value_t = 2.0,
        global = true
    )]
    pub stuffing_rate: f64,

    /// The account (a seeded customer's email) the credential-stuffing scenario targets.
    #[arg(
        long,
        env = "LABCTL_STUFFING_ACCOUNT",
        default_value = "judy@example.com",
        global = true
    )]
    pub stuffing_account: String,

    /// Do not write Grafana annotations.
    #[arg(long, env = "LABCTL_NO_ANNOTATE", global = true)]
    pub no_annotate: bool,
}

/// Which rule files to use.
#[derive(Debug, Clone, Args)]
pub struct RuleSource {
    /// Alert rules file (default: the grafana/alert-rules.json built into labctl).
    #[arg(long, env = "LABCTL_RULES_FILE")]
    pub rules_file: Option<PathBuf>,

    /// Data sources file (default: the grafana/datasources.json built into labctl).
    #[arg(long, env = "LABCTL_DATASOURCES_FILE")]
    pub datasources_file: Option<PathBuf>,

    /// Timing profile of the rules Grafana runs: demo or fast.
    #[arg(long, env = "LABCTL_PROFILE", default_value = "demo")]
    pub profile: String,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub rules: RuleSource,

    /// What must hold: `healthy` (no rule true) or `scenario=NAME[,NAME...]` (every rule of
    /// those scenarios true, no other rule true). Without it: one evaluation, reported.
    #[arg(long)]
    pub expect: Option<String>,

    /// Keep evaluating until the expectation is met, at most this long (e.g. 3m).
    #[arg(long, value_name = "DURATION", requires = "expect")]
    pub wait: Option<String>,

    /// After the expectation is met, keep evaluating this long; it must keep holding.
    #[arg(long, value_name = "DURATION", requires = "expect")]
    pub hold: Option<String>,

    /// Time between evaluations with --wait / --hold.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub every: String,

    /// Print JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AlertsArgs {
    /// Print JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub rules: RuleSource,

    #[command(flatten)]
    pub scenarios: ScenarioOptions,

    /// Slack added to every deadline (interval and pending period are added from the rule).
    #[arg(long, value_name = "DURATION", default_value = "150s")]
    pub margin: String,

    /// How long after firing (or resolving) the notifications may take to arrive.
    #[arg(long, value_name = "DURATION", default_value = "90s")]
    pub notify_timeout: String,

    /// Time between polls of Grafana and the sinks.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub poll: String,

    /// Only these phases (1-based, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub phases: Vec<usize>,

    /// Write the final table as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    /// Address to listen on.
    #[arg(long, env = "LABCTL_SINK_LISTEN", default_value = "127.0.0.1:9095")]
    pub listen: SocketAddr,

    /// Directory of notifications.jsonl (created if missing).
    #[arg(long, env = "LABCTL_SINK_DATA_DIR", default_value = "sink-data")]
    pub data_dir: PathBuf,

    /// File holding the token every notification must present as
    /// `Authorization: Bearer <token>` (Grafana's contact point sends it). Required.
    #[arg(long, env = "LABCTL_SINK_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Most notifications kept; the oldest are forgotten first.
    #[arg(
        long,
        env = "LABCTL_SINK_MAX_NOTIFICATIONS",
        default_value_t = 10_000,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000)
    )]
    pub max_notifications: usize,
}
