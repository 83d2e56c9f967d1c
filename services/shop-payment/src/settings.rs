use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use shop_telemetry::CommonArgs;

/// The shop's payment service.
#[derive(Debug, Clone, Parser)]
#[command(name = "shop-payment", version, about)]
pub struct Settings {
    /// Address and port to listen on: loopback unless told otherwise (e.g. `0.0.0.0:<port>`
    /// to serve other hosts).
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,

    /// Share (0..=1) of payments declined for ordinary reasons (insufficient funds, expired
    /// card) in healthy operation.
    #[arg(long, env = "DECLINE_RATE", default_value_t = 0.02, value_parser = share)]
    pub decline_rate: f64,

    /// File holding the bearer token callers of `/payments` and `/refunds` must send (the API
    /// service reads the same file). Required: the service takes no unauthenticated payments.
    #[arg(long, env = "PAYMENT_TOKEN_FILE")]
    pub payment_token_file: PathBuf,

    #[command(flatten)]
    pub common: CommonArgs,
}

fn share(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not a share between 0 and 1"))
    }
}
