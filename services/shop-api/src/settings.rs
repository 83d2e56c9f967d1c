use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use shop_telemetry::CommonArgs;

/// The shop's API service. Without a subcommand it serves; `migrate` prepares the database.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "shop-api",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Apply pending database migrations and exit (idempotent; run once before the services).
    Migrate(MigrateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// PostgreSQL URL, e.g. postgres:///shop?host=/run/postgresql
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on: loopback unless told otherwise (e.g. `0.0.0.0:<port>`
    /// to serve other hosts).
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// PostgreSQL URL, e.g. postgres:///shop?host=/run/postgresql
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Base URL of the payment service.
    #[arg(long, env = "PAYMENT_URL", default_value = "http://127.0.0.1:8082")]
    pub payment_url: String,

    /// Seconds a payment call may take before the order fails with 503.
    #[arg(long, env = "PAYMENT_TIMEOUT", default_value_t = 10)]
    pub payment_timeout: u64,

    /// File holding the bearer token the payment service requires (the payment service reads
    /// the same file). Required.
    #[arg(long, env = "PAYMENT_TOKEN_FILE")]
    pub payment_token_file: Option<PathBuf>,

    /// Reverse proxies in front of the API on this host. With N > 0, a request from a loopback
    /// peer is attributed to the N-th `X-Forwarded-For` entry from the right (the address the
    /// outermost trusted proxy saw); entries further left are the client's to forge. With 0,
    /// `X-Forwarded-For` is ignored and the peer address is the client's.
    #[arg(long, env = "TRUSTED_PROXIES", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub trusted_proxies: u8,

    /// Seconds a customer session from `POST /login` stays valid.
    #[arg(long, env = "SESSION_TTL", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(60..=604_800))]
    pub session_ttl: u64,

    /// Orders per minute one logged-in customer may place (up to a sixth of it at once).
    #[arg(long, env = "ORDER_LIMIT_PER_CUSTOMER", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub order_limit_per_customer: u32,

    /// Anonymous orders per minute from one client IP (up to a sixth of it at once).
    #[arg(long, env = "ORDER_LIMIT_PER_IP", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub order_limit_per_ip: u32,

    /// Orders per minute the whole API accepts (up to a sixth of it at once).
    #[arg(long, env = "ORDER_LIMIT_GLOBAL", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub order_limit_global: u32,

    /// Password checks run at once. Each takes 4 MiB (the shop's Argon2 hashes) and several
    /// milliseconds of a core, so more than one per core adds memory, not throughput. By
    /// default one per core, at most 4.
    #[arg(long, env = "LOGIN_HASHERS", default_value_t = default_login_hashers(), value_parser = clap::value_parser!(u32).range(1..=16))]
    pub login_hashers: u32,

    /// Logins that may wait for a password check; a login beyond them is refused at once
    /// (429 with `Retry-After`) and recorded as a failed attempt.
    #[arg(long, env = "LOGIN_QUEUE", default_value_t = LoginLimits::DEFAULT_QUEUE, value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub login_queue: u32,

    /// Most database connections this service holds. By default one per CPU core (at least
    /// 2): more only add threads competing for the same cores, which lengthens the latency
    /// tail without adding throughput (bench/README.md).
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = default_pool_size(), value_parser = clap::value_parser!(u32).range(1..=200))]
    pub database_pool_size: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}

fn default_login_hashers() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, |cores| u32::try_from(cores.get()).unwrap_or(u32::MAX))
        .clamp(1, LoginLimits::MAX_DEFAULT_HASHERS)
}

fn default_pool_size() -> u32 {
    std::thread::available_parallelism()
        .map_or(2, |cores| u32::try_from(cores.get()).unwrap_or(u32::MAX))
        .clamp(2, 32)
}

/// Validated settings for serving.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub payment_url: String,
    pub payment_timeout: Duration,
    pub payment_token_file: PathBuf,
    pub database_pool_size: u32,
    pub trusted_proxies: u8,
    pub session_ttl: Duration,
    pub order_limits: OrderLimits,
    pub login_limits: LoginLimits,
    pub common: CommonArgs,
}

/// How many password checks run at once, and how many logins may wait for one
/// ([`crate::login_gate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub hashers: u32,
    pub queue: u32,
}

impl LoginLimits {
    /// The default hashers' ceiling: 4 checks are 16 MiB.
    pub const MAX_DEFAULT_HASHERS: u32 = 4;
    /// Logins waiting for a check: with two hashers, about 16 checks' time for the last in
    /// line (about 0.1 s: two hashers checked about 280 logins a second in bench/run's login
    /// flood); the lab's own logins never come near it.
    pub const DEFAULT_QUEUE: u32 = 32;
}

impl Default for LoginLimits {
    /// The flags' defaults.
    fn default() -> Self {
        Self {
            hashers: default_login_hashers(),
            queue: Self::DEFAULT_QUEUE,
        }
    }
}

/// Orders per minute: per logged-in customer, per client IP for anonymous orders, and for the
/// whole API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLimits {
    pub per_customer: u32,
    pub per_ip: u32,
    pub global: u32,
}

impl Default for OrderLimits {
    /// The flags' defaults: at `labctl traffic`'s default rate the lab places about 2.4 orders a
    /// minute per customer, 6 anonymous ones (all from the frontend's one address) and 30 in
    /// all, so each limit is at least 4 times that (bench/README.md says how the benchmark
    /// raises them).
    fn default() -> Self {
        Self {
            per_customer: 30,
            per_ip: 30,
            global: 120,
        }
    }
}

impl Cli {
    pub fn into_settings(self) -> anyhow::Result<Settings> {
        let serve = self.serve;
        let database_url = serve
            .database_url
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| anyhow::anyhow!("--database-url (or DATABASE_URL) is required"))?;
        let payment_url = serve.payment_url.trim_end_matches('/').to_owned();
        if !(payment_url.starts_with("http://") || payment_url.starts_with("https://")) {
            anyhow::bail!("--payment-url must be an http(s) URL, got `{payment_url}`");
        }
        if serve.payment_timeout == 0 {
            anyhow::bail!("--payment-timeout must be at least 1 second");
        }
        let payment_token_file = serve.payment_token_file.ok_or_else(|| {
            anyhow::anyhow!(
                "--payment-token-file (or PAYMENT_TOKEN_FILE) is required: the payment service takes no unauthenticated calls"
            )
        })?;
        Ok(Settings {
            listen: serve.listen,
            database_url,
            payment_url,
            payment_timeout: Duration::from_secs(serve.payment_timeout),
            payment_token_file,
            database_pool_size: serve.database_pool_size,
            trusted_proxies: serve.trusted_proxies,
            session_ttl: Duration::from_secs(serve.session_ttl),
            order_limits: OrderLimits {
                per_customer: serve.order_limit_per_customer,
                per_ip: serve.order_limit_per_ip,
                global: serve.order_limit_global,
            },
            login_limits: LoginLimits {
                hashers: serve.login_hashers,
                queue: serve.login_queue,
            },
            common: serve.common,
        })
    }
}
