use std::{net::SocketAddr, time::Duration};

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

    /// Most database connections this service holds. By default one per CPU core (at least
    /// 2): more only add threads competing for the same cores, which lengthens the latency
    /// tail without adding throughput (bench/README.md).
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = default_pool_size(), value_parser = clap::value_parser!(u32).range(1..=200))]
    pub database_pool_size: u32,

    #[command(flatten)]
    pub common: CommonArgs,
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
    pub database_pool_size: u32,
    pub common: CommonArgs,
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
        Ok(Settings {
            listen: serve.listen,
            database_url,
            payment_url,
            payment_timeout: Duration::from_secs(serve.payment_timeout),
            database_pool_size: serve.database_pool_size,
            common: serve.common,
        })
    }
}
