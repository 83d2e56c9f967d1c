//! What every shop service shares: the HTTP metrics middleware and `/metrics` endpoint, JSON-lines
//! logging, JSON error bodies for every failure poem produces, and serving with graceful shutdown
//! on SIGTERM and SIGINT.

pub mod errors;
pub mod logging;
pub mod metrics;
pub mod server;
pub mod shutdown;

pub use errors::{ErrorBody, JsonErrors};
pub use metrics::{HttpMetrics, MetricsEndpoint};
