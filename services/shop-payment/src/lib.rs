//! The payment service: authorizes payments by method, refunds them, and fails on purpose —
//! a small share of ordinary declines in healthy traffic, and processor outages per method
//! through the fault API (`decline_rate`).

pub mod client;
mod metrics;
mod payments;
mod settings;
mod startup;

pub use client::{PaymentClient, PaymentMethod, PaymentRequest, PaymentResult};
pub use payments::all_methods;
pub use settings::Settings;
pub use startup::Application;

/// The service's name in logs, metrics and health.
pub const SERVICE: &str = "payment";
/// Default port (the seed's).
pub const DEFAULT_PORT: u16 = 8082;
