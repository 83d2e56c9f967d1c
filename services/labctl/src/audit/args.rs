//! The command line of `labctl audit`: one subcommand per check. Targets (Grafana, Loki,
//! Prometheus, the database, the fault token) are labctl's global flags.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub check: AuditCheck,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AuditCheck {
    /// No secret in any file of the given store closures: every file up to --max-file-size
    /// is searched, and a control string must be found (proof the search reaches them).
    StoreSecrets(StoreSecretsArgs),
    /// `systemd-analyze security` of units: each at or below its maximum exposure level.
    Exposure(ExposureArgs),
    /// Listening TCP and UDP sockets (from /proc/net): any not bound to loopback must be
    /// allowed with --allow.
    Listeners(ListenersArgs),
    /// The read-only database role (--database-url): reads what it must, and every write
    /// and every read of a person's data is refused for lack of privilege.
    DbRole(DbRoleArgs),
    /// The services' fault API refuses requests without the token (or with a wrong one)
    /// and accepts the token of --fault-token-file.
    FaultApi(FaultApiArgs),
    /// Log lines: the lines each service wrote (with --with-rotated, its rotated files too)
    /// are in Loki (--loki-url), polling until the counts are equal or --wait runs out.
    LogLines(LogLinesArgs),
    /// Grafana answers, every data source is healthy through it and every rule of the
    /// rules file is loaded.
    Grafana(GrafanaAuditArgs),
    /// Prometheus scrapes every shop service (`up` is 1 for each).
    Scrape(ScrapeArgs),
    /// The given rules are firing in Grafana, within --within.
    Firing(FiringArgs),
    /// Each unit's memory from its cgroup: peak, limit, current; a unit without a limit
    /// (unless --without-limit), whose peak reached it or that the OOM killer hit is a
    /// finding.
    Memory(MemoryArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StoreSecretsArgs {
    /// A store path whose closure (`nix-store --query --requisites`) is searched
    /// (repeatable), e.g. /run/current-system.
    #[arg(long, value_name = "PATH")]
    pub closure: Vec<PathBuf>,

    /// A file or directory searched as it is, without a closure (repeatable).
    #[arg(long, value_name = "PATH")]
    pub path: Vec<PathBuf>,

    /// Directory whose every file holds one secret.
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,

    /// A file holding one secret (repeatable).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Vec<PathBuf>,

    /// Text that must be found in the searched files (repeatable, at least one): proves
    /// the search reaches the configuration where a secret would be.
    #[arg(long, value_name = "TEXT", required = true)]
    pub control: Vec<String>,

    /// Files larger than this many bytes are skipped (and counted).
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_file_size: u64,

    /// Secrets shorter than this are refused: they would match by chance.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub min_secret_length: usize,

    /// The nix-store program.
    #[arg(long, env = "LABCTL_NIX_STORE", default_value = "nix-store")]
    pub nix_store: String,
}

#[derive(Debug, Clone, Args)]
pub struct ExposureArgs {
    /// Units, each with its own maximum as `UNIT=LEVEL` or with --max.
    #[arg(value_name = "UNIT[=LEVEL]", required = true)]
    pub units: Vec<String>,

    /// Maximum exposure level for units given without one.
    #[arg(long, value_name = "LEVEL", default_value_t = 2.0)]
    pub max: f64,

    /// Read `systemd-analyze security` output from this file instead of running it (one
    /// unit).
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,

    /// The systemd-analyze program.
    #[arg(
        long,
        env = "LABCTL_SYSTEMD_ANALYZE",
        default_value = "systemd-analyze"
    )]
    pub systemd_analyze: String,
}

#[derive(Debug, Clone, Args)]
pub struct ListenersArgs {
    /// A listener allowed off loopback: `ADDR:PORT`, `*:PORT`, `[::]:PORT`, optionally
    /// ending in `/tcp` or `/udp` (repeatable).
    #[arg(long, value_name = "ADDR:PORT")]
    pub allow: Vec<String>,

    /// Directory holding tcp, tcp6, udp and udp6 tables (as /proc/net).
    #[arg(long, value_name = "DIR", default_value = "/proc/net")]
    pub proc_net: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct DbRoleArgs {
    /// A statement the role must be able to run (repeatable; replaces the built-in reads).
    #[arg(long, value_name = "SQL")]
    pub read: Vec<String>,

    /// A statement that must be refused for lack of privilege (repeatable; replaces the
    /// built-in list).
    #[arg(long, value_name = "SQL")]
    pub refuse: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct FaultApiArgs {
    /// A service's base URL, as `NAME=URL` (repeatable), e.g.
    /// `payment=http://192.168.1.2:8082`.
    #[arg(long, value_name = "NAME=URL", required = true)]
    pub service: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LogLinesArgs {
    /// A service and a log file it wrote, as `NAME=PATH` (repeatable; several files of one
    /// service add up): its lines must all be in Loki. `NAME` alone: it must have lines there.
    #[arg(long, value_name = "NAME[=PATH]", required = true)]
    pub service: Vec<String>,

    /// Count each PATH's rotated files too (`PATH.1` to `PATH.N`, as the services name them
    /// when they rotate `<name>.log`). Count once the services have stopped writing.
    #[arg(long)]
    pub with_rotated: bool,

    /// The Loki stream selector of the shop's lines.
    #[arg(long, default_value = "{job=\"alertlab\"}")]
    pub selector: String,

    /// The label that names the service.
    #[arg(long, default_value = "service")]
    pub label: String,

    /// How far back Loki counts (covering every line written).
    #[arg(long, value_name = "DURATION", default_value = "2h")]
    pub window: String,

    /// Keep polling until the counts are equal, at most this long.
    #[arg(long, value_name = "DURATION", default_value = "3m")]
    pub wait: String,
}

#[derive(Debug, Clone, Args)]
pub struct GrafanaAuditArgs {
    /// Keep polling until everything is ready, at most this long.
    #[arg(long, value_name = "DURATION", default_value = "3m")]
    pub wait: String,

    /// Alert rules file (default: the built-in grafana/alert-rules.json).
    #[arg(long, env = "LABCTL_RULES_FILE")]
    pub rules_file: Option<PathBuf>,

    /// Data sources file (default: the built-in grafana/datasources.json).
    #[arg(long, env = "LABCTL_DATASOURCES_FILE")]
    pub datasources_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ScrapeArgs {
    /// Keep polling until every service is up, at most this long.
    #[arg(long, value_name = "DURATION", default_value = "3m")]
    pub wait: String,
}

#[derive(Debug, Clone, Args)]
pub struct FiringArgs {
    /// Rule uids that must all be firing.
    #[arg(value_name = "RULE_UID", required = true)]
    pub rules: Vec<String>,

    /// At most this long.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub within: String,
}

#[derive(Debug, Clone, Args)]
pub struct MemoryArgs {
    /// Units that must have a memory limit (`MemoryMax`), e.g. shop-api.service.
    #[arg(value_name = "UNIT")]
    pub units: Vec<String>,

    /// A unit reported without needing a limit (repeatable).
    #[arg(long, value_name = "UNIT")]
    pub without_limit: Vec<String>,

    /// Directory holding the units' cgroups (cgroup v2).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/sys/fs/cgroup/system.slice"
    )]
    pub cgroup_root: PathBuf,

    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}
