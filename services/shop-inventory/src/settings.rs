use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use shop_telemetry::CommonArgs;

/// The shop's inventory service.
#[derive(Debug, Clone, Parser)]
#[command(name = "shop-inventory", version, about)]
pub struct Cli {
    /// Address and port to listen on: loopback unless told otherwise (e.g. `0.0.0.0:<port>`
    /// to serve other hosts).
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8083")]
    pub listen: SocketAddr,

    /// PostgreSQL URL, e.g. postgres:///shop?host=/run/postgresql
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Seconds between stock refreshes (gauges, stock events, restocking).
    #[arg(long, env = "REFRESH_INTERVAL", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub refresh_interval: u64,

    /// Most database connections this service holds.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub database_pool_size: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub refresh_interval: Duration,
    pub database_pool_size: u32,
    pub common: CommonArgs,
}

impl Cli {
    pub fn into_settings(self) -> anyhow::Result<Settings> {
        let database_url = self
            .database_url
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| anyhow::anyhow!("--database-url (or DATABASE_URL) is required"))?;
        Ok(Settings {
            listen: self.listen,
            database_url,
            refresh_interval: Duration::from_secs(self.refresh_interval),
            database_pool_size: self.database_pool_size,
            common: self.common,
        })
    }
}
