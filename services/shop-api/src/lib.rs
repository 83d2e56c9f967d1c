//! The API service: the product catalog, orders (stock is reserved and the payment taken in a
//! way that never leaves a completed order unpaid or stock taken for a failed one; attributed
//! only to a logged-in customer; rate-limited), order lookup by unguessable id for its owner,
//! and logins (every attempt recorded with the client's IP; a session token on success).

mod api;
mod auth;
mod client_ip;
mod login_gate;
mod metrics;
mod password;
mod rate_limit;
mod settings;
mod startup;
mod store;

pub use settings::{Cli, Command, LoginLimits, MigrateArgs, OrderLimits, Settings};
pub use startup::Application;

/// The service's name in logs, metrics and health.
pub const SERVICE: &str = "api";
/// Default port (the seed's).
pub const DEFAULT_PORT: u16 = 8080;
