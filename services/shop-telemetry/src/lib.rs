//! What every shop service shares: the HTTP metrics middleware and `/metrics` endpoint, JSON-lines
//! logging, JSON error bodies for every failure poem produces, and serving with graceful shutdown
//! on SIGTERM and SIGINT.

pub mod app;
pub mod bearer;
pub mod body_limit;
pub mod cli;
pub mod errors;
pub mod health;
pub mod host;
pub mod logging;
pub mod metrics;
pub mod request_validation;
pub mod runtime;
pub mod server;
pub mod shutdown;

pub use bearer::BearerToken;
pub use body_limit::BodyLimit;
pub use cli::CommonArgs;
pub use errors::{ErrorBody, JsonErrors};
pub use health::{DependencyStatus, Health, HealthStatus};
pub use metrics::{HttpMetrics, MetricsEndpoint};

/// Ends a service binary: a startup error is one clear line on stderr (with its causes) and
/// exit status 1, never a panic or a backtrace.
pub fn exit_status(binary: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            log::error!(event = "service_failed", cause:% = format!("{err:#}"); "{binary} failed: {err:#}");
            eprintln!("{binary}: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
